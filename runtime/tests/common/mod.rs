//! Test fixtures: Hodgkin–Huxley, passive and IClamp kernels written from the
//! published equations in NEURON's hh.mod / pas.mod / stim.mod conventions,
//! over the safe `PackView` (no `unsafe` here), plus the NEURON reference-data
//! loader.
#![allow(dead_code)]

use runtime::abi;
use runtime::plugin::{KernelResult, PackView};
use runtime::{MechKind, MechanismSpec, Model};

// ---------------------------------------------------------------------------
// hh: columns gnabar, gkbar, gl, el, gna, gk, il, m, h, n; ions na (0), k (1).

const GNABAR: usize = 0;
const GKBAR: usize = 1;
const GL: usize = 2;
const EL: usize = 3;
const GNA: usize = 4;
const GK: usize = 5;
const IL: usize = 6;
const M: usize = 7;
const H: usize = 8;
const N: usize = 9;

fn vtrap(x: f64, y: f64) -> f64 {
    if (x / y).abs() < 1e-6 {
        y * (1.0 - x / y / 2.0)
    } else {
        x / ((x / y).exp() - 1.0)
    }
}

/// (minf, mtau, hinf, htau, ninf, ntau) at v, as hh.mod's `rates`.
fn rates(v: f64, celsius: f64) -> [f64; 6] {
    let q10 = 3f64.powf((celsius - 6.3) / 10.0);
    let alpha = 0.1 * vtrap(-(v + 40.0), 10.0);
    let beta = 4.0 * (-(v + 65.0) / 18.0).exp();
    let sum = alpha + beta;
    let mtau = 1.0 / (q10 * sum);
    let minf = alpha / sum;
    let alpha = 0.07 * (-(v + 65.0) / 20.0).exp();
    let beta = 1.0 / ((-(v + 35.0) / 10.0).exp() + 1.0);
    let sum = alpha + beta;
    let htau = 1.0 / (q10 * sum);
    let hinf = alpha / sum;
    let alpha = 0.01 * vtrap(-(v + 55.0), 10.0);
    let beta = 0.125 * (-(v + 65.0) / 80.0).exp();
    let sum = alpha + beta;
    let ntau = 1.0 / (q10 * sum);
    let ninf = alpha / sum;
    [minf, mtau, hinf, htau, ninf, ntau]
}

/// hh.mod's `TABLE minf, mtau, hinf, htau, ninf, ntau DEPEND celsius FROM
/// -100 TO 100 WITH 200`, used when the GLOBAL `usetable` is nonzero: the
/// table holds `rates` at 201 points x = -100 + i (the generated code steps
/// x by dx = 1, exactly), and a lookup clamps below the first and above the
/// last point and interpolates linearly in between.
fn rates_lookup(p: &PackView, v: f64) -> [f64; 6] {
    if p.globals()[0].get() == 0.0 {
        return rates(v, p.celsius());
    }
    let (tmin, tmax) = (-100.0, 100.0);
    let dx = (tmax - tmin) / 200.0;
    let xi = (1.0 / dx) * (v - tmin);
    let at = |i: usize| rates(tmin + i as f64 * dx, p.celsius());
    if xi <= 0.0 {
        return at(0);
    }
    if xi >= 200.0 {
        return at(200);
    }
    let i = xi as usize;
    let theta = xi - i as f64;
    let (lo, hi) = (at(i), at(i + 1));
    std::array::from_fn(|k| lo[k] + theta * (hi[k] - lo[k]))
}

fn hh_init(p: &PackView) -> KernelResult {
    let (m, h, n) = (p.field(M), p.field(H), p.field(N));
    for (i, &node) in p.node_index().iter().enumerate() {
        let r = rates_lookup(p, p.v()[node as usize].get());
        m[i].set(r[0]);
        h[i].set(r[2]);
        n[i].set(r[4]);
    }
    Ok(())
}

fn hh_cur(p: &PackView) -> KernelResult {
    let f = |k| p.field(k);
    let (na, k) = (p.ion(0).expect("na"), p.ion(1).expect("k"));
    for (i, &node) in p.node_index().iter().enumerate() {
        let node = node as usize;
        let v = p.v()[node].get();
        let ena = na.erev[na.index[i] as usize].get();
        let ek = k.erev[k.index[i] as usize].get();
        let current = |v: f64| {
            let gna =
                f(GNABAR)[i].get() * f(M)[i].get() * f(M)[i].get() * f(M)[i].get() * f(H)[i].get();
            let ina = gna * (v - ena);
            let n = f(N)[i].get();
            let gk = f(GKBAR)[i].get() * n * n * n * n;
            let ik = gk * (v - ek);
            let il = f(GL)[i].get() * (v - f(EL)[i].get());
            (gna, gk, ina, ik, il, 0.0 + ina + ik + il)
        };
        let (_, _, dina, dik, _, g1) = current(v + 0.001);
        let (gna, gk, ina, ik, il, rhs) = current(v);
        f(GNA)[i].set(gna);
        f(GK)[i].set(gk);
        f(IL)[i].set(il);
        let (ki, nai) = (k.index[i] as usize, na.index[i] as usize);
        k.dcurdv[ki].set(k.dcurdv[ki].get() + (dik - ik) / 0.001);
        na.dcurdv[nai].set(na.dcurdv[nai].get() + (dina - ina) / 0.001);
        let g = (g1 - rhs) / 0.001;
        na.cur[nai].set(na.cur[nai].get() + ina);
        k.cur[ki].set(k.cur[ki].get() + ik);
        p.rhs()[node].set(p.rhs()[node].get() - rhs);
        p.d()[node].set(p.d()[node].get() + g);
    }
    Ok(())
}

fn hh_state(p: &PackView) -> KernelResult {
    let dt = p.dt();
    for (i, &node) in p.node_index().iter().enumerate() {
        let r = rates_lookup(p, p.v()[node as usize].get());
        for (col, inf, tau) in [(M, r[0], r[1]), (H, r[2], r[3]), (N, r[4], r[5])] {
            let s = &p.field(col)[i];
            let x = s.get();
            s.set(x + (1.0 - (dt * (-1.0 / tau)).exp()) * (-(inf / tau) / (-1.0 / tau) - x));
        }
    }
    Ok(())
}

runtime::kernel!(pub fn hh_init_k = hh_init;);
runtime::kernel!(pub fn hh_cur_k = hh_cur;);
runtime::kernel!(pub fn hh_state_k = hh_state;);

/// The hh mechanism spec (fields in hh.mod's RANGE order plus states).
pub fn hh_spec() -> MechanismSpec {
    use abi::{FIELD_ASSIGNED as A, FIELD_PARAMETER as P, FIELD_STATE as S};
    MechanismSpec::new("hh", MechKind::Density)
        .field("gnabar", P, 0.12)
        .field("gkbar", P, 0.036)
        .field("gl", P, 0.0003)
        .field("el", P, -54.3)
        .field("gna", A, 0.0)
        .field("gk", A, 0.0)
        .field("il", A, 0.0)
        .field("m", S, 0.0)
        .field("h", S, 0.0)
        .field("n", S, 0.0)
        .global("usetable", 0.0)
        .ion("na", abi::ION_READ_E | abi::ION_WRITE_I, None)
        .ion("k", abi::ION_READ_E | abi::ION_WRITE_I, None)
        .flags(abi::MECH_THREADSAFE)
        .kernels(abi::NrnKernels {
            init: Some(hh_init_k),
            cur: Some(hh_cur_k),
            state: Some(hh_state_k),
            ..Default::default()
        })
}

// ---------------------------------------------------------------------------
// pas: g, e, i.

fn pas_cur(p: &PackView) -> KernelResult {
    let (g, e, ic) = (p.field(0), p.field(1), p.field(2));
    for (i, &node) in p.node_index().iter().enumerate() {
        let node = node as usize;
        let v = p.v()[node].get();
        let g1 = 0.0 + g[i].get() * (v + 0.001 - e[i].get());
        let rhs = 0.0 + g[i].get() * (v - e[i].get());
        ic[i].set(rhs);
        let gg = (g1 - rhs) / 0.001;
        p.rhs()[node].set(p.rhs()[node].get() - rhs);
        p.d()[node].set(p.d()[node].get() + gg);
    }
    Ok(())
}
runtime::kernel!(pub fn pas_cur_k = pas_cur;);

/// The pas mechanism spec.
pub fn pas_spec() -> MechanismSpec {
    MechanismSpec::new("pas", MechKind::Density)
        .field("g", abi::FIELD_PARAMETER, 0.001)
        .field("e", abi::FIELD_PARAMETER, -70.0)
        .field("i", abi::FIELD_ASSIGNED, 0.0)
        .flags(abi::MECH_THREADSAFE)
        .kernels(abi::NrnKernels {
            cur: Some(pas_cur_k),
            ..Default::default()
        })
}

// ---------------------------------------------------------------------------
// IClamp: del, dur, amp, i (ELECTRODE_CURRENT, nA).

fn iclamp_init(p: &PackView) -> KernelResult {
    for c in p.field(3) {
        c.set(0.0);
    }
    Ok(())
}

fn iclamp_cur(p: &PackView) -> KernelResult {
    let (del, dur, amp, ic) = (p.field(0), p.field(1), p.field(2), p.field(3));
    let t = p.t();
    for (i, &node) in p.node_index().iter().enumerate() {
        let node = node as usize;
        let i_at = |_: f64| {
            if t < del[i].get() + dur[i].get() && t >= del[i].get() {
                amp[i].get()
            } else {
                0.0
            }
        };
        let v = p.v()[node].get();
        let g1 = 0.0 + i_at(v + 0.001);
        let cur = i_at(v);
        ic[i].set(cur);
        let mut rhs = 0.0 + cur;
        let mut g = (g1 - rhs) / 0.001;
        let f = 1.0e2 / p.area()[node];
        g *= f;
        rhs *= f;
        p.rhs()[node].set(p.rhs()[node].get() + rhs);
        p.d()[node].set(p.d()[node].get() - g);
    }
    Ok(())
}
runtime::kernel!(pub fn iclamp_init_k = iclamp_init;);
runtime::kernel!(pub fn iclamp_cur_k = iclamp_cur;);

/// The IClamp spec.
pub fn iclamp_spec() -> MechanismSpec {
    MechanismSpec::new("IClamp", MechKind::PointProcess)
        .field("del", abi::FIELD_PARAMETER, 0.0)
        .field("dur", abi::FIELD_PARAMETER, 0.0)
        .field("amp", abi::FIELD_PARAMETER, 0.0)
        .field("i", abi::FIELD_ASSIGNED, 0.0)
        .flags(abi::MECH_ELECTRODE_CURRENT | abi::MECH_THREADSAFE)
        .kernels(abi::NrnKernels {
            init: Some(iclamp_init_k),
            cur: Some(iclamp_cur_k),
            ..Default::default()
        })
}

/// A model with hh, pas and IClamp registered in NEURON's built-in order
/// (hh, then pas... the order only matters for sums of three or more
/// currents at one node).
pub fn model_with_builtins() -> Model {
    let mut m = Model::new();
    m.register(hh_spec()).unwrap();
    m.register(pas_spec()).unwrap();
    m.register(iclamp_spec()).unwrap();
    m
}

/// The NEURON reference-data directory.
pub fn data_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/neuron"))
}

// ---------------------------------------------------------------------------
// ExpSyn (NEURON's expsyn.mod): tau (ms), e (mV), i (nA), g (uS, STATE).
// g' = -g/tau integrated by cnexp; NET_RECEIVE(weight) { g = g + weight };
// i = g·(v − e) as a NONSPECIFIC_CURRENT of a point process. NEURON applies
// its NET_RECEIVE half-step state adjustment only when the global
// `nrn_netrec_state_adjust` is set, which is 0 by default, so the jump is
// plain `g += weight`.

fn expsyn_init(p: &PackView) -> KernelResult {
    for g in p.field(3) {
        g.set(0.0);
    }
    Ok(())
}

fn expsyn_cur(p: &PackView) -> KernelResult {
    let (e, ic, g) = (p.field(1), p.field(2), p.field(3));
    for (k, &node) in p.node_index().iter().enumerate() {
        let node = node as usize;
        let v = p.v()[node].get();
        let g1 = 0.0 + g[k].get() * (v + 0.001 - e[k].get());
        let cur = g[k].get() * (v - e[k].get());
        ic[k].set(cur);
        let mut rhs = 0.0 + cur;
        let mut gg = (g1 - rhs) / 0.001;
        let f = 1.0e2 / p.area()[node];
        gg *= f;
        rhs *= f;
        p.rhs()[node].set(p.rhs()[node].get() - rhs);
        p.d()[node].set(p.d()[node].get() + gg);
    }
    Ok(())
}

fn expsyn_state(p: &PackView) -> KernelResult {
    let (tau, g) = (p.field(0), p.field(3));
    let dt = p.dt();
    for k in 0..p.count() {
        let x = g[k].get();
        let rate = -1.0 / tau[k].get();
        g[k].set(x + (1.0 - (dt * rate).exp()) * (-(0.0) / rate - x));
    }
    Ok(())
}

fn expsyn_receive(
    p: &PackView,
    instance: usize,
    w: &[std::cell::Cell<f64>],
    _flag: f64,
) -> KernelResult {
    let g = &p.field(3)[instance];
    g.set(g.get() + w[0].get());
    Ok(())
}

runtime::kernel!(pub fn expsyn_init_k = expsyn_init;);
runtime::kernel!(pub fn expsyn_cur_k = expsyn_cur;);
runtime::kernel!(pub fn expsyn_state_k = expsyn_state;);
runtime::net_receive_kernel!(pub fn expsyn_receive_k = expsyn_receive;);

/// The ExpSyn spec: columns tau, e, i, g.
pub fn expsyn_spec() -> MechanismSpec {
    MechanismSpec::new("ExpSyn", MechKind::PointProcess)
        .field("tau", abi::FIELD_PARAMETER, 0.1)
        .field("e", abi::FIELD_PARAMETER, 0.0)
        .field("i", abi::FIELD_ASSIGNED, 0.0)
        .field("g", abi::FIELD_STATE, 0.0)
        .flags(abi::MECH_THREADSAFE)
        .kernels(abi::NrnKernels {
            init: Some(expsyn_init_k),
            cur: Some(expsyn_cur_k),
            state: Some(expsyn_state_k),
            net_receive: Some(expsyn_receive_k),
            ..Default::default()
        })
}

// ---------------------------------------------------------------------------
// Exp2Syn (NEURON's exp2syn.mod): tau1, tau2, e (PARAMETER), i, g, factor
// (ASSIGNED), A, B (STATE). INITIAL clamps tau1/tau2 into [1e-9, 0.9999],
// zeroes A and B and computes the factor that normalises the peak of
// B − A to 1; A' = −A/tau1, B' = −B/tau2 by cnexp; g = B − A and
// i = g·(v − e) in BREAKPOINT; NET_RECEIVE(weight) adds weight·factor to A
// and B.

const E2_TAU1: usize = 0;
const E2_TAU2: usize = 1;
const E2_E: usize = 2;
const E2_I: usize = 3;
const E2_G: usize = 4;
const E2_FACTOR: usize = 5;
const E2_A: usize = 6;
const E2_B: usize = 7;

fn exp2syn_init(p: &PackView) -> KernelResult {
    for k in 0..p.count() {
        let (tau1, tau2) = (&p.field(E2_TAU1)[k], p.field(E2_TAU2)[k].get());
        if tau1.get() / tau2 > 0.9999 {
            tau1.set(0.9999 * tau2);
        }
        if tau1.get() / tau2 < 1e-9 {
            tau1.set(tau2 * 1e-9);
        }
        let tau1 = tau1.get();
        p.field(E2_A)[k].set(0.0);
        p.field(E2_B)[k].set(0.0);
        let tp = (tau1 * tau2) / (tau2 - tau1) * (tau2 / tau1).ln();
        let factor = -(-tp / tau1).exp() + (-tp / tau2).exp();
        p.field(E2_FACTOR)[k].set(1.0 / factor);
    }
    Ok(())
}

fn exp2syn_cur(p: &PackView) -> KernelResult {
    let f = |c| p.field(c);
    for (k, &node) in p.node_index().iter().enumerate() {
        let node = node as usize;
        let v = p.v()[node].get();
        let current = |v: f64| {
            let g = f(E2_B)[k].get() - f(E2_A)[k].get();
            f(E2_G)[k].set(g);
            let i = g * (v - f(E2_E)[k].get());
            f(E2_I)[k].set(i);
            0.0 + i
        };
        let g1 = current(v + 0.001);
        let mut rhs = current(v);
        let mut gg = (g1 - rhs) / 0.001;
        let a = 1.0e2 / p.area()[node];
        gg *= a;
        rhs *= a;
        p.rhs()[node].set(p.rhs()[node].get() - rhs);
        p.d()[node].set(p.d()[node].get() + gg);
    }
    Ok(())
}

fn exp2syn_state(p: &PackView) -> KernelResult {
    let dt = p.dt();
    for k in 0..p.count() {
        for (col, tau) in [(E2_A, E2_TAU1), (E2_B, E2_TAU2)] {
            let s = &p.field(col)[k];
            let x = s.get();
            let rate = -1.0 / p.field(tau)[k].get();
            s.set(x + (1.0 - (dt * rate).exp()) * (-(0.0) / rate - x));
        }
    }
    Ok(())
}

fn exp2syn_receive(
    p: &PackView,
    instance: usize,
    w: &[std::cell::Cell<f64>],
    _flag: f64,
) -> KernelResult {
    let factor = p.field(E2_FACTOR)[instance].get();
    for col in [E2_A, E2_B] {
        let s = &p.field(col)[instance];
        s.set(s.get() + w[0].get() * factor);
    }
    Ok(())
}

runtime::kernel!(pub fn exp2syn_init_k = exp2syn_init;);
runtime::kernel!(pub fn exp2syn_cur_k = exp2syn_cur;);
runtime::kernel!(pub fn exp2syn_state_k = exp2syn_state;);
runtime::net_receive_kernel!(pub fn exp2syn_receive_k = exp2syn_receive;);

/// The Exp2Syn spec: columns tau1, tau2, e, i, g, factor, A, B.
pub fn exp2syn_spec() -> MechanismSpec {
    use abi::{FIELD_ASSIGNED as A, FIELD_PARAMETER as P, FIELD_STATE as S};
    MechanismSpec::new("Exp2Syn", MechKind::PointProcess)
        .field("tau1", P, 0.1)
        .field("tau2", P, 10.0)
        .field("e", P, 0.0)
        .field("i", A, 0.0)
        .field("g", A, 0.0)
        .field("factor", A, 0.0)
        .field("A", S, 0.0)
        .field("B", S, 0.0)
        .flags(abi::MECH_THREADSAFE)
        .kernels(abi::NrnKernels {
            init: Some(exp2syn_init_k),
            cur: Some(exp2syn_cur_k),
            state: Some(exp2syn_state_k),
            net_receive: Some(exp2syn_receive_k),
            ..Default::default()
        })
}

// ---------------------------------------------------------------------------
// AlphaSynapse (NEURON's syn.mod): onset, tau, gmax, e (PARAMETER), i, g
// (ASSIGNED). BREAKPOINT: g = gmax·alpha((t − onset)/tau) with
// alpha(x) = x·exp(1 − x) for 0 ≤ x ≤ 10, else 0; i = g·(v − e).
// (`at_time(onset)` only matters to the variable-step integrator.)

fn alpha(x: f64) -> f64 {
    if !(0.0..=10.0).contains(&x) {
        0.0
    } else {
        x * (1.0 - x).exp()
    }
}

fn alphasyn_cur(p: &PackView) -> KernelResult {
    let f = |c| p.field(c);
    let t = p.t();
    for (k, &node) in p.node_index().iter().enumerate() {
        let node = node as usize;
        let v = p.v()[node].get();
        let current = |v: f64| {
            let g = f(2)[k].get() * alpha((t - f(0)[k].get()) / f(1)[k].get());
            f(5)[k].set(g);
            let i = g * (v - f(3)[k].get());
            f(4)[k].set(i);
            0.0 + i
        };
        let g1 = current(v + 0.001);
        let mut rhs = current(v);
        let mut gg = (g1 - rhs) / 0.001;
        let a = 1.0e2 / p.area()[node];
        gg *= a;
        rhs *= a;
        p.rhs()[node].set(p.rhs()[node].get() - rhs);
        p.d()[node].set(p.d()[node].get() + gg);
    }
    Ok(())
}
runtime::kernel!(pub fn alphasyn_cur_k = alphasyn_cur;);

/// The AlphaSynapse spec: columns onset, tau, gmax, e, i, g.
pub fn alphasynapse_spec() -> MechanismSpec {
    use abi::{FIELD_ASSIGNED as A, FIELD_PARAMETER as P};
    MechanismSpec::new("AlphaSynapse", MechKind::PointProcess)
        .field("onset", P, 0.0)
        .field("tau", P, 0.1)
        .field("gmax", P, 0.0)
        .field("e", P, 0.0)
        .field("i", A, 0.0)
        .field("g", A, 0.0)
        .flags(abi::MECH_THREADSAFE)
        .kernels(abi::NrnKernels {
            cur: Some(alphasyn_cur_k),
            ..Default::default()
        })
}

// ---------------------------------------------------------------------------
// NetStim (NEURON's netstim.mod) with noise = 0 only (the random stream is
// not modelled; the builder refuses noise ≠ 0): interval, number, start,
// noise (PARAMETER), event, on, ispike (ASSIGNED). INITIAL sends a self-event
// with flag 3 after `start + interval − interval·(1 − noise)`; flag 3 starts
// the sequence and sends flag 1 at once; each flag-1 event counts a spike,
// calls net_event(t) and, while fewer than `number` spikes were sent,
// schedules the next one `interval` later.

const NS_INTERVAL: usize = 0;
const NS_NUMBER: usize = 1;
const NS_START: usize = 2;
const NS_NOISE: usize = 3;
const NS_EVENT: usize = 4;
const NS_ON: usize = 5;
const NS_ISPIKE: usize = 6;

fn netstim_init(p: &PackView) -> KernelResult {
    let f = |c| p.field(c);
    for k in 0..p.count() {
        assert_eq!(
            f(NS_NOISE)[k].get(),
            0.0,
            "test NetStim supports noise 0 only"
        );
        f(NS_ON)[k].set(0.0);
        f(NS_ISPIKE)[k].set(0.0);
        let (start, number, interval) = (
            f(NS_START)[k].get(),
            f(NS_NUMBER)[k].get(),
            f(NS_INTERVAL)[k].get(),
        );
        if start >= 0.0 && number > 0.0 {
            f(NS_ON)[k].set(1.0);
            let mut event = start + interval - interval * (1.0 - 0.0);
            if event < 0.0 {
                event = 0.0;
            }
            f(NS_EVENT)[k].set(event);
            p.net_send(k, event, 3.0);
        }
    }
    Ok(())
}

fn netstim_receive(p: &PackView, k: usize, _w: &[std::cell::Cell<f64>], flag: f64) -> KernelResult {
    let f = |c| p.field(c);
    let next_invl = || {
        if f(NS_NUMBER)[k].get() > 0.0 {
            f(NS_EVENT)[k].set(f(NS_INTERVAL)[k].get());
        }
        if f(NS_ISPIKE)[k].get() >= f(NS_NUMBER)[k].get() {
            f(NS_ON)[k].set(0.0);
        }
    };
    if flag == 3.0 && f(NS_ON)[k].get() == 1.0 {
        // init_sequence(t)
        if f(NS_NUMBER)[k].get() > 0.0 {
            f(NS_ON)[k].set(1.0);
            f(NS_EVENT)[k].set(0.0);
            f(NS_ISPIKE)[k].set(0.0);
        }
        p.net_send(k, 0.0, 1.0);
    }
    if flag == 1.0 && f(NS_ON)[k].get() == 1.0 {
        f(NS_ISPIKE)[k].set(f(NS_ISPIKE)[k].get() + 1.0);
        p.net_event(k, p.t());
        next_invl();
        if f(NS_ON)[k].get() == 1.0 {
            p.net_send(k, f(NS_EVENT)[k].get(), 1.0);
        }
    }
    Ok(())
}

runtime::kernel!(pub fn netstim_init_k = netstim_init;);
runtime::net_receive_kernel!(pub fn netstim_receive_k = netstim_receive;);

/// The NetStim spec: columns interval, number, start, noise, event, on, ispike.
pub fn netstim_spec() -> MechanismSpec {
    use abi::{FIELD_ASSIGNED as A, FIELD_PARAMETER as P};
    MechanismSpec::new("NetStim", MechKind::ArtificialCell)
        .field("interval", P, 10.0)
        .field("number", P, 10.0)
        .field("start", P, 50.0)
        .field("noise", P, 0.0)
        .field("event", A, 0.0)
        .field("on", A, 0.0)
        .field("ispike", A, 0.0)
        .flags(abi::MECH_THREADSAFE)
        .kernels(abi::NrnKernels {
            init: Some(netstim_init_k),
            net_receive: Some(netstim_receive_k),
            ..Default::default()
        })
}
