TITLE IntFire1: a leaky integrate-and-fire artificial cell

COMMENT
Written for nrnivmodl-rs. The membrane state m decays to 0 with time
constant tau between events and jumps by the weight of each input event.
When m exceeds 1 the cell fires, and then ignores input for refrac ms, after
which m restarts at 0. m is computed analytically at each event, so the cell
needs no integration step. M() gives the present value for plotting: the
decayed m, or 2 during the first half millisecond of refractoriness and -1
for the rest of it. Names and defaults are those of NEURON's IntFire1.
ENDCOMMENT

NEURON {
    ARTIFICIAL_CELL IntFire1
    RANGE tau, refrac, m
    THREADSAFE
}

PARAMETER {
    tau = 10 (ms)
    refrac = 5 (ms)
}

ASSIGNED {
    m
    t0 (ms)
    refractory
}

INITIAL {
    m = 0
    t0 = 0
    refractory = 0
}

FUNCTION M() {
    if (refractory == 0) {
        M = m * exp(-(t - t0) / tau)
    } else if (refractory == 1) {
        if (t - t0 < 0.5) {
            M = 2
        } else {
            M = -1
        }
    }
}

NET_RECEIVE (w) {
    if (refractory == 0) {
        m = m * exp(-(t - t0) / tau)
        t0 = t
        m = m + w
        if (m > 1) {
            refractory = 1
            m = 2
            net_send(refrac, refractory)
            net_event(t)
        }
    } else if (flag == 1) {
        : end of the refractory period
        refractory = 0
        m = 0
        t0 = t
    }
}
