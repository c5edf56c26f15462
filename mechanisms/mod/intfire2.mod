TITLE IntFire2: an integrate-and-fire cell driven by a decaying synaptic current

COMMENT
Written for nrnivmodl-rs. The membrane state m relaxes towards the total
current with time constant taum, and the synaptic current i decays towards
the bias ib with time constant taus (taus > taum):

    taum dm/dt = i - m        taus di/dt = ib - i

Each input event adds its weight to i. Between events both are known in
closed form, so the cell needs no integration step: when the trajectory of m
will cross 1, the cell schedules a self-event at the crossing time (found by
Newton's method), fires there and restarts m at 0; the crossing is bracketed and bisected to
about 1e-12 relative. There is no refractory
period. M() and I() give the present values for plotting. Names and defaults
are those of NEURON's IntFire2.
ENDCOMMENT

NEURON {
    ARTIFICIAL_CELL IntFire2
    RANGE taus, taum, ib, i, m
    THREADSAFE
}

PARAMETER {
    taus = 20 (ms) <1e-9, 1e9>
    taum = 10 (ms) <1e-9, 1e9>
    ib = 0
}

ASSIGNED {
    i
    m
    t0 (ms)
    pending
}

INITIAL {
    if (taus <= taum) {
        taus = taum + 0.01
        printf("IntFire2: taus must be greater than taum; taus set to %g\n", taus)
    }
    i = ib
    m = 0
    t0 = t
    pending = 0
    if (ib >= 1) {
        net_send(firetime(), 1)
        pending = 1
    }
}

: m at s ms after t0, from the closed-form solution.
FUNCTION mcurve(s (ms)) {
    LOCAL c
    c = (i - ib) * taus / (taus - taum)
    mcurve = ib + c * exp(-s / taus) + (m - ib - c) * exp(-s / taum)
}

: dm/ds of mcurve.
FUNCTION mslope(s (ms)) {
    LOCAL c
    c = (i - ib) * taus / (taus - taum)
    mslope = -c / taus * exp(-s / taus) - (m - ib - c) / taum * exp(-s / taum)
}

: i at s ms after t0.
FUNCTION icurve(s (ms)) {
    icurve = ib + (i - ib) * exp(-s / taus)
}

FUNCTION M() {
    M = mcurve(t - t0)
}

FUNCTION I() {
    I = icurve(t - t0)
}

: Brings m and i up to time t.
PROCEDURE advance() {
    LOCAL s
    s = t - t0
    m = mcurve(s)
    i = icurve(s)
    t0 = t
}

: The first time after t0 at which m reaches 1, or -1 if it never does.
: m(s) rises to at most one maximum and then relaxes towards ib, so a
: crossing exists only if ib >= 1 or the maximum exceeds 1.
FUNCTION firetime() (ms) {
    LOCAL s, smax, f, k
    firetime = -1
    if (ib >= 1) {
        smax = 1e9
    } else {
        : the time of the maximum of m, where mslope changes sign: bracket
        : it by doubling, then bisect
        smax = 0
        if (mslope(0) > 0) {
            s = 0
            f = taum
            k = 0
            WHILE (mslope(f) > 0 && k < 100) {
                s = f
                f = 2 * f
                k = k + 1
            }
            k = 0
            WHILE (k < 200 && f - s > 1e-12 * (1 + f)) {
                smax = 0.5 * (s + f)
                if (mslope(smax) > 0) {
                    s = smax
                } else {
                    f = smax
                }
                k = k + 1
            }
            smax = f
        }
        if (mcurve(smax) < 1) {
            smax = -1
        }
    }
    if (smax >= 0) {
        : bisection on [0, smax] for the first crossing of 1
        s = 0
        k = 0
        WHILE (k < 200 && smax - s > 1e-12 * (1 + smax)) {
            f = 0.5 * (s + smax)
            if (mcurve(f) >= 1) {
                smax = f
            } else {
                s = f
            }
            k = k + 1
        }
        firetime = smax
    }
}

NET_RECEIVE (w) {
    LOCAL s
    advance()
    if (flag == 1) {
        pending = 0
        net_event(t)
        m = 0
    } else {
        i = i + w
    }
    : schedule the next firing as a self-event with flag 1: a new one, or by
    : moving the one already pending (far into the future when m will not
    : reach 1 any more)
    s = firetime()
    if (pending) {
        if (s >= 0) {
            net_move(t + s)
        } else {
            net_move(t + 1e9)
        }
    } else if (s >= 0) {
        net_send(s, 1)
        pending = 1
    }
}
