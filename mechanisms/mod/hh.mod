TITLE hh: Hodgkin-Huxley sodium, potassium and leak channels

COMMENT
Written for nrnivmodl-rs from A. L. Hodgkin and A. F. Huxley (1952),
J. Physiol. 117:500-544, in NEURON's conventions: membrane potential in mV
with rest near -65 mV, rates in 1/ms, and rates scaled by a Q10 of 3 from the
6.3 degC of the original experiments. The names, parameters and defaults are
those of NEURON's built-in hh, because user scripts rely on them.
ENDCOMMENT

UNITS {
    (mA) = (milliamp)
    (mV) = (millivolt)
    (S) = (siemens)
}

NEURON {
    SUFFIX hh
    USEION na READ ena WRITE ina
    USEION k READ ek WRITE ik
    NONSPECIFIC_CURRENT il
    RANGE gnabar, gkbar, gl, el, gna, gk
    RANGE minf, hinf, ninf, mtau, htau, ntau
    THREADSAFE
}

PARAMETER {
    gnabar = 0.12 (S/cm2) <0, 1e9>
    gkbar = 0.036 (S/cm2) <0, 1e9>
    gl = 0.0003 (S/cm2) <0, 1e9>
    el = -54.3 (mV)
}

STATE {
    m
    h
    n
}

ASSIGNED {
    v (mV)
    celsius (degC)
    ena (mV)
    ek (mV)
    gna (S/cm2)
    gk (S/cm2)
    ina (mA/cm2)
    ik (mA/cm2)
    il (mA/cm2)
    minf
    hinf
    ninf
    mtau (ms)
    htau (ms)
    ntau (ms)
}

BREAKPOINT {
    SOLVE gates METHOD cnexp
    gna = gnabar * m * m * m * h
    ina = gna * (v - ena)
    gk = gkbar * n * n * n * n
    ik = gk * (v - ek)
    il = gl * (v - el)
}

INITIAL {
    rates(v)
    m = minf
    h = hinf
    n = ninf
}

DERIVATIVE gates {
    rates(v)
    m' = (minf - m) / mtau
    h' = (hinf - h) / htau
    n' = (ninf - n) / ntau
}

: Steady states and time constants of the three gates at membrane potential u.
PROCEDURE rates(u (mV)) {
    LOCAL a, b, sum, phi
    TABLE minf, mtau, hinf, htau, ninf, ntau DEPEND celsius FROM -100 TO 100 WITH 200

UNITSOFF
    phi = 3 ^ ((celsius - 6.3) / 10)

    : sodium activation
    a = 0.1 * linoid(-(u + 40), 10)
    b = 4 * exp(-(u + 65) / 18)
    sum = a + b
    mtau = 1 / (phi * sum)
    minf = a / sum

    : sodium inactivation
    a = 0.07 * exp(-(u + 65) / 20)
    b = 1 / (exp(-(u + 35) / 10) + 1)
    sum = a + b
    htau = 1 / (phi * sum)
    hinf = a / sum

    : potassium activation
    a = 0.01 * linoid(-(u + 55), 10)
    b = 0.125 * exp(-(u + 65) / 80)
    sum = a + b
    ntau = 1 / (phi * sum)
    ninf = a / sum
UNITSON
}

: x / (exp(x/y) - 1), continued by its Taylor expansion where x/y is tiny.
FUNCTION linoid(x, y) {
    if (fabs(x / y) < 1e-6) {
        linoid = y * (1 - x / y / 2)
    } else {
        linoid = x / (exp(x / y) - 1)
    }
}
