TITLE ExpSyn: a synaptic conductance with a single exponential decay

COMMENT
Written for nrnivmodl-rs. Each event of weight w (uS) raises the conductance
g by w; g then decays with time constant tau. The current is
i = g (v - e). Names and defaults are those of NEURON's built-in ExpSyn.
ENDCOMMENT

UNITS {
    (nA) = (nanoamp)
    (mV) = (millivolt)
    (uS) = (microsiemens)
}

NEURON {
    POINT_PROCESS ExpSyn
    RANGE tau, e, i
    NONSPECIFIC_CURRENT i
    THREADSAFE
}

PARAMETER {
    tau = 0.1 (ms) <1e-9, 1e9>
    e = 0 (mV)
}

ASSIGNED {
    v (mV)
    i (nA)
}

STATE {
    g (uS)
}

INITIAL {
    g = 0
}

BREAKPOINT {
    SOLVE decay METHOD cnexp
    i = g * (v - e)
}

DERIVATIVE decay {
    g' = -g / tau
}

NET_RECEIVE(weight (uS)) {
    g = g + weight
}
