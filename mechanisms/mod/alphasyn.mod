TITLE AlphaSynapse: an alpha-function synaptic conductance

COMMENT
Written for nrnivmodl-rs. The conductance follows an alpha function that
starts at onset (ms) and peaks at gmax (uS) tau ms later:
g(t) = gmax * s * exp(1 - s), with s = (t - onset) / tau for
0 <= s <= 10; as in NEURON, g is zero from ten time constants after the
onset on. The current is i = g (v - e). Names and defaults are those of NEURON's
built-in AlphaSynapse.
ENDCOMMENT

UNITS {
    (nA) = (nanoamp)
    (mV) = (millivolt)
    (uS) = (microsiemens)
}

NEURON {
    POINT_PROCESS AlphaSynapse
    RANGE onset, tau, gmax, e, i
    NONSPECIFIC_CURRENT i
    THREADSAFE
}

PARAMETER {
    onset = 0 (ms)
    tau = 0.1 (ms) <1e-3, 1e6>
    gmax = 0 (uS) <0, 1e9>
    e = 0 (mV)
}

ASSIGNED {
    v (mV)
    i (nA)
    g (uS)
}

BREAKPOINT {
    if (gmax) {
        at_time(onset)
    }
    g = gmax * alpha((t - onset) / tau)
    i = g * (v - e)
}

: The unit alpha function s exp(1 - s), zero before the onset and from ten
: time constants after it.
FUNCTION alpha(s) {
    if (s < 0 || s > 10) {
        alpha = 0
    } else {
        alpha = s * exp(1 - s)
    }
}
