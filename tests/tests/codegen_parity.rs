//! NEURON parity of mechanisms compiled from .mod files by our own compiler
//! (front end → lowering → cranelift JIT), against the committed NEURON
//! 9.0.2 reference data (tests/data/neuron/README.md), with issue 4's
//! tolerances: |ΔV| ≤ 1e-6 mV, states within 1e-9, spikes on the same step.
//!
//! - Every built-in mechanism (mechanisms/mod/*.mod) in every protocol:
//!   hh (tables on and off, secondorder 0 and 2, axons), pas, IClamp,
//!   ExpSyn, Exp2Syn, AlphaSynapse, SEClamp, NetStim, IntFire1, IntFire2.
//! - The code-generation fixtures (codegen/tests/fixtures/mod/): WATCH,
//!   derivimplicit, nocmodl's cnexp on a nonlinear equation and its
//!   derivimplicit fallback, euler with arrays and a FUNCTION TABLE,
//!   KINETIC with LINEAR initial states, COMPARTMENT/CONSERVE/`<<`, and a
//!   POINTER gap junction.

use std::path::Path;

use runtime::{MechanismSpec, Model};
use tests::{build_and_run, compare, data_dir, load_reference, RunOptions, Tolerances};

/// The JIT-compiled built-ins (`aot_parity.rs` runs the same protocols
/// with the linked ones).
fn builtins(m: &mut Model) -> Result<(), String> {
    mechanisms::register_builtins_from(m, mechanisms::Backend::Jit).map_err(|e| e.to_string())
}

fn fixtures() -> Vec<MechanismSpec> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../codegen/tests/fixtures/mod");
    codegen::load::load_folder(&dir)
        .unwrap()
        .into_iter()
        .map(|(p, r)| r.unwrap_or_else(|e| panic!("{}: {e}", p.display())).spec)
        .collect()
}

/// Runs one protocol with the given set-up and asserts parity. IntFire's
/// `M` and `I` are FUNCTIONs in NEURON (computed on demand, never stored):
/// nothing can record them, so those two traces are left out and the
/// states and spikes are compared instead.
fn check(file: &str, setup: &dyn Fn(&mut Model) -> Result<(), String>, nthread: usize) {
    let mut reference = load_reference(data_dir().join(file)).unwrap();
    reference
        .traces
        .retain(|name, _| !(name.ends_with(".M") || name.ends_with(".I")));
    let result = build_and_run(&reference, setup, &RunOptions { nthread }).unwrap();
    let c = compare(&reference, &result, &Tolerances::default());
    assert!(c.passed(), "{file}:\n{c}");
    eprintln!("{file}: max |dV| = {:?}", c.max_v_diff());
}

macro_rules! builtin_protocols {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check(concat!(stringify!($name), ".json"), &builtins, 1);
            }
        )*
    };
}

builtin_protocols!(
    demo,
    hh_single_so0,
    hh_single_so2,
    hh_axon_so0,
    hh_axon_so2,
    hh_axon_ra35,
    hh_axon_ra100,
    hh_soma_iclamp,
    hh_soma_iclamp_notable,
    pas_single,
    iclamp_alone,
    two_cells_expsyn,
    netstim_expsyn,
    expsyn_alone,
    exp2syn_alone,
    pas_alphasynapse,
    seclamp_hh,
    seclamp_alone,
    netstim_alone,
    intfire1_alone,
    intfire2_alone,
);

#[test]
fn two_cells_expsyn_on_two_threads() {
    check("two_cells_expsyn.json", &builtins, 2);
}

macro_rules! fixture_protocols {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let specs = fixtures();
                let setup = move |m: &mut Model| -> Result<(), String> {
                    builtins(m)?;
                    for s in &specs {
                        m.register(s.clone()).map_err(|e| e.to_string())?;
                    }
                    Ok(())
                };
                check(concat!("codegen/", stringify!($name), ".json"), &setup, 1);
            }
        )*
    };
}

fixture_protocols!(
    fixture_wdet,
    fixture_kdi,
    fixture_nlg,
    fixture_nlr,
    fixture_chain,
    fixture_c3,
    fixture_cabuf,
    fixture_gap,
);
