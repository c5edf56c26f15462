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

fn hh_init(p: &PackView) -> KernelResult {
    let (m, h, n) = (p.field(M), p.field(H), p.field(N));
    for (i, &node) in p.node_index().iter().enumerate() {
        let r = rates(p.v()[node as usize].get(), p.celsius());
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
        let r = rates(p.v()[node as usize].get(), p.celsius());
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
