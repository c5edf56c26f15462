TITLE NetStim: a generator of spike events

COMMENT
Written for nrnivmodl-rs. Emits `number` events, the first at `start` (ms) and
then every `interval` ms. With 0 < noise <= 1, each interval is
(1 - noise) * interval plus noise * interval times an exponential deviate of
mean 1, so noise = 1 gives a Poisson train. An input event of positive weight
restarts the sequence; one of negative weight stops it. Names, parameters and
defaults are those of NEURON's built-in NetStim.
ENDCOMMENT

NEURON {
    ARTIFICIAL_CELL NetStim
    RANGE interval, number, start, noise
    THREADSAFE
}

PARAMETER {
    interval = 10 (ms) <1e-9, 1e9>
    number = 10 <0, 1e9>
    start = 50 (ms)
    noise = 0 <0, 1>
}

ASSIGNED {
    event (ms)
    on
    ispike
}

INITIAL {
    if (noise < 0) {
        noise = 0
    }
    if (noise > 1) {
        noise = 1
    }
    if (start >= 0 && number > 0) {
        on = 1
        : the first event comes at start, shifted by the noisy part of an interval
        event = start + invl(interval) - interval * (1 - noise)
        if (event < 0) {
            event = 0
        }
        net_send(event, 3)
    }
}

: Restarts the count of emitted events at time t.
PROCEDURE init_sequence(t (ms)) {
    if (number > 0) {
        on = 1
        event = 0
        ispike = 0
    }
}

: The interval to the next event: fixed, or with an exponential part.
FUNCTION invl(mean (ms)) (ms) {
    if (mean <= 0) {
        mean = 0.01
    }
    if (noise == 0) {
        invl = mean
    } else {
        invl = (1 - noise) * mean + noise * mean * exprand(1)
    }
}

: Counts an emitted event and draws the time to the next one.
PROCEDURE next_invl() {
    if (number > 0) {
        event = invl(interval)
    }
    if (ispike >= number) {
        on = 0
    }
}

NET_RECEIVE (w) {
    if (flag == 0) {
        : an external event switches the generator on or off
        if (w > 0 && on == 0) {
            init_sequence(t)
            next_invl()
            event = event - interval * (1 - noise)
            net_send(event, 1)
        } else if (w < 0) {
            on = 0
        }
    }
    if (flag == 3) {
        : the first event after INITIAL
        if (on == 1) {
            init_sequence(t)
            net_send(0, 1)
        }
    }
    if (flag == 1 && on == 1) {
        ispike = ispike + 1
        net_event(t)
        next_invl()
        if (on == 1) {
            net_send(event, 1)
        }
    }
}
