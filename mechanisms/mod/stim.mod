TITLE IClamp: a rectangular current pulse

COMMENT
Written for nrnivmodl-rs. Injects amp (nA) into the cell from del to del + dur
(ms). Positive amp depolarises, as for an electrode. Names and defaults are
those of NEURON's built-in IClamp.
ENDCOMMENT

UNITS {
    (nA) = (nanoamp)
}

NEURON {
    POINT_PROCESS IClamp
    RANGE del, dur, amp, i
    ELECTRODE_CURRENT i
    THREADSAFE
}

PARAMETER {
    del (ms)
    dur (ms) <0, 1e9>
    amp (nA)
}

ASSIGNED {
    i (nA)
}

INITIAL {
    i = 0
}

BREAKPOINT {
    at_time(del)
    at_time(del + dur)
    if (t < del + dur && t >= del) {
        i = amp
    } else {
        i = 0
    }
}
