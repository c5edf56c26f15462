TITLE Exp2Syn: a synaptic conductance with separate rise and decay

COMMENT
Written for nrnivmodl-rs. The conductance is the difference of two
exponentials, g = B - A, with rise time constant tau1 and decay time constant
tau2 (tau1 < tau2). Both A and B jump by w * factor at each event, where the
factor normalises the peak of g to w (uS). When tau1/tau2 is close to 1,
tau1 is nudged below tau2 to keep the difference defined. Names and defaults
are those of NEURON's built-in Exp2Syn.
ENDCOMMENT

UNITS {
    (nA) = (nanoamp)
    (mV) = (millivolt)
    (uS) = (microsiemens)
}

NEURON {
    POINT_PROCESS Exp2Syn
    RANGE tau1, tau2, e, i
    NONSPECIFIC_CURRENT i
    RANGE g
    THREADSAFE
}

PARAMETER {
    tau1 = 0.1 (ms) <1e-9, 1e9>
    tau2 = 10 (ms) <1e-9, 1e9>
    e = 0 (mV)
}

ASSIGNED {
    v (mV)
    i (nA)
    g (uS)
    factor
}

STATE {
    A (uS)
    B (uS)
}

INITIAL {
    LOCAL tpeak
    if (tau1 / tau2 > 0.9999) {
        tau1 = 0.9999 * tau2
    }
    if (tau1 / tau2 < 1e-9) {
        tau1 = tau2 * 1e-9
    }
    A = 0
    B = 0
    : time of the peak of exp(-t/tau2) - exp(-t/tau1), and its height
    tpeak = (tau1 * tau2) / (tau2 - tau1) * log(tau2 / tau1)
    factor = -exp(-tpeak / tau1) + exp(-tpeak / tau2)
    factor = 1 / factor
}

BREAKPOINT {
    SOLVE decay METHOD cnexp
    g = B - A
    i = g * (v - e)
}

DERIVATIVE decay {
    A' = -A / tau1
    B' = -B / tau2
}

NET_RECEIVE(weight (uS)) {
    A = A + weight * factor
    B = B + weight * factor
}
