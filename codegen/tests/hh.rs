//! Hodgkin–Huxley (nrn's hh.mod semantics) through the interpreter, the JIT
//! and a plain Rust evaluation of the same equations.

mod common;

use codegen::interp::{self, MechData};
use codegen::ir::Phase;
use codegen::jit;
use codegen::valid::validate;
use common::hh::hh_module;
use common::{diff_data, same};

const N: usize = 300;
const NODES: usize = 120;

/// Instance data with varied voltages (including vtrap's removable
/// singularities at -40 and -55 mV) and hh's default parameters.
fn setup(vm: &codegen::valid::ValidModule, celsius: f64) -> MechData {
    let mut d = MechData::new(vm, N, NODES);
    d.celsius = celsius;
    d.dt = 0.025;
    for (n, v) in d.v.iter_mut().enumerate() {
        *v = match n {
            0 => -40.0,
            1 => -55.0,
            2 => -40.0 + 1e-9,
            3 => -55.0 - 1e-8,
            4 => -65.0,
            _ => -100.0 + 160.0 * (n as f64) / (NODES as f64),
        };
    }
    let cols = [0.12, 0.036, 0.0003, -54.3];
    for (c, x) in cols.iter().enumerate() {
        for i in 0..N {
            d.fields[c][i] = *x * (1.0 + 0.01 * (i % 7) as f64);
        }
    }
    for n in 0..NODES {
        d.ions[0].erev[n] = 50.0;
        d.ions[1].erev[n] = -77.0 + (n % 3) as f64;
    }
    d
}

/// Runs init, then `steps` × (cur, state), through `run`.
fn simulate(d: &mut MechData, steps: usize, mut run: impl FnMut(Phase, &mut MechData) -> i32) {
    assert_eq!(run(Phase::Init, d), 0);
    for _ in 0..steps {
        for x in d.rhs.iter_mut().chain(d.d.iter_mut()) {
            *x = 0.0;
        }
        for ion in &mut d.ions {
            ion.cur.iter_mut().for_each(|x| *x = 0.0);
            ion.dcurdv.iter_mut().for_each(|x| *x = 0.0);
        }
        assert_eq!(run(Phase::Cur, d), 0);
        assert_eq!(run(Phase::State, d), 0);
        d.t += d.dt;
    }
}

#[test]
fn interpreter_and_jit_agree_bit_for_bit_on_hh() {
    let (module, _) = hh_module();
    let vm = validate(&module).expect("hh validates");
    let jit = jit::compile(&vm).expect("hh compiles");
    for celsius in [6.3, 16.3, 37.0] {
        let mut a = setup(&vm, celsius);
        let mut b = a.clone();
        simulate(&mut a, 5, |p, d| interp::run_kernel(&vm, p, d).unwrap());
        simulate(&mut b, 5, |p, d| jit::run_kernel(&jit, &vm, p, d).unwrap());
        let diffs = diff_data(&a, &b);
        assert!(diffs.is_empty(), "celsius {celsius}: {diffs:#?}");
        // The run did something: states moved and currents were accumulated.
        assert!(a.rhs.iter().any(|x| *x != 0.0));
        assert!(a.ions[0].dcurdv.iter().any(|x| *x != 0.0));
    }
}

// ---- A plain Rust evaluation of hh.mod, written from the .mod source. ----

fn vtrap(x: f64, y: f64) -> f64 {
    if (x / y).abs() < 1e-6 {
        y * (1.0 - x / y / 2.0)
    } else {
        x / ((x / y).exp() - 1.0)
    }
}

/// (minf, hinf, ninf, mtau, htau, ntau)
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
    [minf, hinf, ninf, mtau, htau, ntau]
}

struct Inst {
    gnabar: f64,
    gkbar: f64,
    gl: f64,
    el: f64,
    m: f64,
    h: f64,
    n: f64,
}

/// (ina, ik, il, total) at v.
fn currents(s: &Inst, v: f64, ena: f64, ek: f64) -> (f64, f64, f64, f64) {
    let gna = s.gnabar * s.m * s.m * s.m * s.h;
    let ina = gna * (v - ena);
    let gk = s.gkbar * s.n * s.n * s.n * s.n;
    let ik = gk * (v - ek);
    let il = s.gl * (v - s.el);
    (ina, ik, il, ((0.0 + ina) + ik) + il)
}

fn cnexp(s: f64, inf: f64, tau: f64, dt: f64) -> f64 {
    s + (1.0 - (dt * (-1.0 / tau)).exp()) * (-(inf / tau) / (-1.0 / tau) - s)
}

#[test]
fn interpreter_matches_a_direct_evaluation_of_hh() {
    let (module, f) = hh_module();
    let vm = validate(&module).expect("hh validates");
    let col = |h| vm.field_column(h);
    for celsius in [6.3, 30.0] {
        let mut d = setup(&vm, celsius);
        let start = d.clone();
        // INITIAL.
        assert_eq!(interp::run_kernel(&vm, Phase::Init, &mut d).unwrap(), 0);
        let mut st: Vec<Inst> = (0..N)
            .map(|i| {
                let v = start.v[start.node_index[i] as usize];
                let r = rates(v, celsius);
                Inst {
                    gnabar: start.fields[col(f.gnabar)][i],
                    gkbar: start.fields[col(f.gkbar)][i],
                    gl: start.fields[col(f.gl)][i],
                    el: start.fields[col(f.el)][i],
                    m: r[0],
                    h: r[1],
                    n: r[2],
                }
            })
            .collect();
        for (i, s) in st.iter().enumerate() {
            assert!(same(d.fields[col(f.m)][i], s.m), "m[{i}]");
            assert!(same(d.fields[col(f.h)][i], s.h), "h[{i}]");
            assert!(same(d.fields[col(f.n)][i], s.n), "n[{i}]");
        }
        // BREAKPOINT currents.
        assert_eq!(interp::run_kernel(&vm, Phase::Cur, &mut d).unwrap(), 0);
        let mut rhs = vec![0.0; NODES];
        let mut dd = vec![0.0; NODES];
        let mut ina_ion = vec![0.0; NODES];
        let mut ik_ion = vec![0.0; NODES];
        let mut dina_ion = vec![0.0; NODES];
        let mut dik_ion = vec![0.0; NODES];
        for (i, s) in st.iter().enumerate() {
            let node = start.node_index[i] as usize;
            let (v, ena, ek) = (
                start.v[node],
                start.ions[0].erev[node],
                start.ions[1].erev[node],
            );
            let (dina, dik, _, g1) = currents(s, v + 0.001, ena, ek);
            let (ina, ik, il, r) = currents(s, v, ena, ek);
            dina_ion[node] += (dina - ina) / 0.001;
            dik_ion[node] += (dik - ik) / 0.001;
            ina_ion[node] += ina;
            ik_ion[node] += ik;
            rhs[node] -= r;
            dd[node] += (g1 - r) / 0.001;
            assert!(same(d.fields[col(f.ina)][i], ina), "ina[{i}]");
            assert!(same(d.fields[col(f.il)][i], il), "il[{i}]");
        }
        for (name, got, want) in [
            ("rhs", &d.rhs, &rhs),
            ("d", &d.d, &dd),
            ("ina", &d.ions[0].cur, &ina_ion),
            ("ik", &d.ions[1].cur, &ik_ion),
            ("dinadv", &d.ions[0].dcurdv, &dina_ion),
            ("dikdv", &d.ions[1].dcurdv, &dik_ion),
        ] {
            assert!(common::diff_slices(name, got, want).is_none(), "{name}");
        }
        // SOLVE states METHOD cnexp.
        assert_eq!(interp::run_kernel(&vm, Phase::State, &mut d).unwrap(), 0);
        for (i, s) in st.iter_mut().enumerate() {
            let v = start.v[start.node_index[i] as usize];
            let r = rates(v, celsius);
            s.m = cnexp(s.m, r[0], r[3], d.dt);
            s.h = cnexp(s.h, r[1], r[4], d.dt);
            s.n = cnexp(s.n, r[2], r[5], d.dt);
            assert!(same(d.fields[col(f.m)][i], s.m), "m[{i}] after state");
            assert!(same(d.fields[col(f.h)][i], s.h), "h[{i}] after state");
            assert!(same(d.fields[col(f.n)][i], s.n), "n[{i}] after state");
        }
    }
}

/// NEURON's steady-state gates at -65 mV and 6.3 °C (`finitialize(-65)` with
/// hh: m = 0.0529325, h = 0.596121, n = 0.317677).
#[test]
fn hh_steady_state_gates_match_neuron() {
    let (module, f) = hh_module();
    let vm = validate(&module).expect("hh validates");
    let mut d = MechData::new(&vm, 1, 1);
    d.v[0] = -65.0;
    d.celsius = 6.3;
    assert_eq!(interp::run_kernel(&vm, Phase::Init, &mut d).unwrap(), 0);
    for (h, want) in [(f.m, 0.0529325), (f.h, 0.596121), (f.n, 0.317677)] {
        let got = d.fields[vm.field_column(h)][0];
        assert!(
            (got - want).abs() <= 1e-6 * want.abs() + 1e-6,
            "{got} vs {want}"
        );
    }
}
