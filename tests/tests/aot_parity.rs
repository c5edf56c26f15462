//! Issue 5's equivalence: the protocols of `codegen_parity.rs` run with the
//! nrnivmodl-rs path instead of JIT kernels. Our built-ins
//! (`mechanisms/mod/*.mod`) and the code-generation fixtures are built into
//! one library by nrnivmodl-rs's own build (`nrnivmodl_rs::build::run`:
//! one Rust unit per mechanism compiled by `rustc`, the table, linked by the
//! C compiler) and loaded with `Model::load_library`. Each protocol then
//!
//! - matches NEURON 9.0.2 with the same tolerances as the JIT suite, and
//! - agrees with the JIT run of the same protocol: every recorded value
//!   within 1e-12 of the trace's largest magnitude, and identical spike
//!   times.
//!
//! The same two checks run for the built-ins as the `mechanisms` crate
//! links them (compiled ahead of time by its build script: the default
//! form of the built-ins in every program).

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use runtime::{Model, NetSource};
use tests::{
    build_and_run, compare, data_dir, load_reference, RunOptions, RunResult, Tolerances, Trace,
};

/// The library of every built-in and fixture, built once per test process.
fn library() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let started = std::time::Instant::now();
        let lib = common::nrnivmodl_rs(
            "aot_parity",
            &[
                root.join("mechanisms/mod"),
                root.join("codegen/tests/fixtures/mod"),
            ],
        );
        eprintln!("AOT library built in {:.1?}", started.elapsed());
        lib
    })
}

/// The built-ins of `builtins` and the JIT-compiled fixtures.
fn with_builtins(m: &mut Model, builtins: &[runtime::MechanismSpec]) -> Result<(), String> {
    for s in builtins {
        m.register(s.clone()).map_err(|e| e.to_string())?;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../codegen/tests/fixtures/mod");
    for (p, r) in codegen::load::load_folder(&dir).map_err(|e| e.to_string())? {
        let spec = r.map_err(|e| format!("{}: {e}", p.display()))?.spec;
        m.register(spec).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn jit(m: &mut Model) -> Result<(), String> {
    with_builtins(m, mechanisms::jit_specs().map_err(|e| e.to_string())?)
}

/// The built-ins as the `mechanisms` crate links them (compiled ahead of
/// time by its build script; `mechanisms::backend` must choose them here).
fn linked(m: &mut Model) -> Result<(), String> {
    with_builtins(m, mechanisms::aot_specs()?)
}

fn aot(m: &mut Model) -> Result<(), String> {
    m.load_library(library()).map_err(|e| e.to_string())?;
    Ok(())
}

/// Every recorded value of `b` within 1e-12 of the largest magnitude of
/// the trace in `a`, the same traces, and identical spike times.
fn agree(a: &RunResult, b: &RunResult) -> Result<f64, String> {
    let mut worst = 0.0f64;
    for (name, ta) in &a.traces {
        let tb = b.traces.get(name).ok_or(format!("{name}: missing"))?;
        match (ta, tb) {
            (Trace::Recorded { values: va, .. }, Trace::Recorded { values: vb, .. }) => {
                if va.len() != vb.len() {
                    return Err(format!("{name}: {} vs {} samples", va.len(), vb.len()));
                }
                let scale = va.iter().fold(0.0f64, |s, x| s.max(x.abs())).max(1e-300);
                for (k, (x, y)) in va.iter().zip(vb).enumerate() {
                    let rel = (x - y).abs() / scale;
                    if !(rel <= 1e-12) {
                        return Err(format!("{name}[{k}]: JIT {x:e}, AOT {y:e}"));
                    }
                    worst = worst.max(rel);
                }
            }
            (Trace::Unsupported { .. }, Trace::Unsupported { .. }) => {}
            _ => return Err(format!("{name}: recorded by one back end only")),
        }
    }
    if a.spikes != b.spikes {
        return Err(format!(
            "spikes differ: JIT {:?}, AOT {:?}",
            a.spikes, b.spikes
        ));
    }
    Ok(worst)
}

fn check(file: &str, nthread: usize) {
    let mut reference = load_reference(data_dir().join(file)).unwrap();
    reference
        .traces
        .retain(|name, _| !(name.ends_with(".M") || name.ends_with(".I")));
    let options = RunOptions { nthread };
    let with_aot = build_and_run(&reference, &aot, &options).unwrap();
    let c = compare(&reference, &with_aot, &Tolerances::default());
    assert!(c.passed(), "{file} (AOT):\n{c}");
    let with_jit = build_and_run(&reference, &jit, &options).unwrap();
    let worst = agree(&with_jit, &with_aot).unwrap_or_else(|e| panic!("{file}: AOT vs JIT: {e}"));
    eprintln!(
        "{file}: AOT max |dV| vs NEURON = {:?}, max relative AOT-JIT difference = {worst:e}",
        c.max_v_diff()
    );
    let with_linked = build_and_run(&reference, &linked, &options).unwrap();
    let c = compare(&reference, &with_linked, &Tolerances::default());
    assert!(c.passed(), "{file} (linked built-ins):\n{c}");
    let worst = agree(&with_jit, &with_linked)
        .unwrap_or_else(|e| panic!("{file}: linked built-ins vs JIT: {e}"));
    eprintln!("{file}: max relative linked-JIT difference = {worst:e}");
}

macro_rules! protocols {
    ($($name:ident => $file:expr),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check($file, 1);
            }
        )*
    };
}

protocols!(
    demo => "demo.json",
    hh_single_so0 => "hh_single_so0.json",
    hh_single_so2 => "hh_single_so2.json",
    hh_axon_so0 => "hh_axon_so0.json",
    hh_axon_so2 => "hh_axon_so2.json",
    hh_axon_ra35 => "hh_axon_ra35.json",
    hh_axon_ra100 => "hh_axon_ra100.json",
    hh_soma_iclamp => "hh_soma_iclamp.json",
    hh_soma_iclamp_notable => "hh_soma_iclamp_notable.json",
    pas_single => "pas_single.json",
    iclamp_alone => "iclamp_alone.json",
    two_cells_expsyn => "two_cells_expsyn.json",
    netstim_expsyn => "netstim_expsyn.json",
    expsyn_alone => "expsyn_alone.json",
    exp2syn_alone => "exp2syn_alone.json",
    pas_alphasynapse => "pas_alphasynapse.json",
    seclamp_hh => "seclamp_hh.json",
    seclamp_alone => "seclamp_alone.json",
    netstim_alone => "netstim_alone.json",
    intfire1_alone => "intfire1_alone.json",
    intfire2_alone => "intfire2_alone.json",
    fixture_wdet => "codegen/fixture_wdet.json",
    fixture_kdi => "codegen/fixture_kdi.json",
    fixture_nlg => "codegen/fixture_nlg.json",
    fixture_nlr => "codegen/fixture_nlr.json",
    fixture_chain => "codegen/fixture_chain.json",
    fixture_c3 => "codegen/fixture_c3.json",
    fixture_cabuf => "codegen/fixture_cabuf.json",
    fixture_gap => "codegen/fixture_gap.json",
);

#[test]
fn two_cells_expsyn_on_two_threads() {
    check("two_cells_expsyn.json", 2);
}

/// A network for [`lanes_compute_the_scalar_bits`]: an hh axon whose
/// segment count is not a multiple of the lane width, a pas dendrite, and a
/// hub section whose nodes carry five ExpSyns, five Exp2Syns and six
/// IClamps each, so that lane groups add into the same `rhs` and `d`
/// entries. Each node has currents of one mechanism type only besides the
/// axon's hh and one IClamp: the JIT and a loaded library register the
/// mechanisms in different orders, and with three or more mechanism types
/// on one node the sum of their currents would depend on that order (as it
/// does in NEURON).
fn lane_model(m: &mut Model, usetable: f64) -> Result<(), runtime::Error> {
    m.set_global("hh", "usetable", usetable)?;
    let axon = m.create_section("axon")?;
    m.set_nseg(axon, 103)?;
    m.set_length(axon, 1000.0)?;
    m.set_diam(axon, 1.0)?;
    m.insert(axon, "hh")?;
    let clamp = m.point_process("IClamp", axon, 0.0)?;
    m.set_point(clamp, "del", 0.5)?;
    m.set_point(clamp, "dur", 1.0)?;
    m.set_point(clamp, "amp", 0.2)?;
    let dend = m.create_section("dend")?;
    m.set_nseg(dend, 37)?;
    m.set_length(dend, 300.0)?;
    m.set_diam(dend, 2.0)?;
    m.connect(dend, 0.0, axon, 1.0)?;
    m.insert(dend, "pas")?;
    let hub = m.create_section("hub")?;
    m.set_nseg(hub, 3)?;
    m.set_length(hub, 10.0)?;
    m.set_diam(hub, 2.0)?;
    m.connect(hub, 0.0, axon, 0.5)?;
    let stim = m.artificial_cell("NetStim")?;
    m.set_point(stim, "interval", 3.0)?;
    m.set_point(stim, "number", 20.0)?;
    m.set_point(stim, "start", 1.0)?;
    m.set_point(stim, "noise", 0.0)?;
    for (name, x, weight) in [("ExpSyn", 0.1, 0.002), ("Exp2Syn", 0.5, 0.003)] {
        for k in 0..5 {
            let syn = m.point_process(name, hub, x)?;
            m.netcon(
                NetSource::Point(stim),
                Some(syn),
                10.0,
                1.0 + k as f64 * 0.1,
                &[weight],
            )?;
        }
    }
    for k in 0..6 {
        let clamp = m.point_process("IClamp", hub, 0.9)?;
        m.set_point(clamp, "del", 2.0 + k as f64)?;
        m.set_point(clamp, "dur", 4.0)?;
        m.set_point(clamp, "amp", 0.05)?;
    }
    Ok(())
}

/// The AOT kernels (the library's and the linked built-ins') run four
/// instances at a time where they can (`codegen::rust` lanes), and must
/// still compute exactly what the scalar JIT kernels compute: every node voltage at every step, bit for bit, with
/// the TABLE (lanes) and without it (`usetable_hh = 0`: each lane group
/// reaches the call of the untabled `rates` and falls back to the scalar
/// body).
#[test]
fn lanes_compute_the_scalar_bits() {
    for usetable in [1.0, 0.0] {
        let mut runs = Vec::new();
        for register in [jit as fn(&mut Model) -> Result<(), String>, aot, linked] {
            let mut m = Model::new();
            register(&mut m).unwrap();
            lane_model(&mut m, usetable).unwrap();
            m.finitialize(-65.0).unwrap();
            let mut trace: Vec<u64> = Vec::new();
            for _ in 0..800 {
                m.fadvance().unwrap();
                trace.extend(m.node_voltages().unwrap().iter().map(|v| v.to_bits()));
            }
            runs.push(trace);
        }
        let a = &runs[0];
        for (b, what) in [
            (&runs[1], "the library's"),
            (&runs[2], "the linked built-ins'"),
        ] {
            assert_eq!(a.len(), b.len());
            let first = a.iter().zip(b).position(|(x, y)| x != y);
            assert_eq!(
                first, None,
                "usetable {usetable}: the JIT's and {what} voltages differ"
            );
        }
        // The model fires: the comparison covers spikes, not just rest.
        let top = a
            .iter()
            .map(|x| f64::from_bits(*x))
            .fold(f64::MIN, f64::max);
        assert!(top > 0.0, "usetable {usetable}: peak {top} mV");
    }
}
