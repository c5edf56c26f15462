TITLE pas: passive membrane leak

COMMENT
Written for nrnivmodl-rs. A linear leak current i = g (v - e). Names and
defaults are those of NEURON's built-in pas.
ENDCOMMENT

UNITS {
    (mV) = (millivolt)
    (mA) = (milliamp)
    (S) = (siemens)
}

NEURON {
    SUFFIX pas
    NONSPECIFIC_CURRENT i
    RANGE g, e
    THREADSAFE
}

PARAMETER {
    g = 0.001 (S/cm2) <0, 1e9>
    e = -70 (mV)
}

ASSIGNED {
    v (mV)
    i (mA/cm2)
}

BREAKPOINT {
    i = g * (v - e)
}
