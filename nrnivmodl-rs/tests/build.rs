//! `nrnivmodl-rs [PATH...]` builds `<arch>/libnrnmech.so`; the runtime loads
//! it (NEURON's nrn_load_dll) and the compiled kernels reproduce NEURON
//! 9.0.2 and agree with the JIT. Also: diagnostics before any build step,
//! up-to-date detection, `--jit-only`, `--emit rust`, and a library the
//! tool did not build is never replaced.

use std::path::{Path, PathBuf};
use std::process::Command;

use runtime::{Model, NetSource, Probe, Sampling};

fn run_in(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nrnivmodl-rs"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run nrnivmodl-rs");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

fn builtin_mods(dir: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../mechanisms/mod");
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "mod") {
            std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
        }
    }
}

fn library(dir: &Path) -> PathBuf {
    dir.join(runtime::arch_dir())
        .join(runtime::library_file_name())
}

/// NEURON's tutorial model (tests/data/neuron/demo.json) on `m`.
fn demo(m: &mut Model) -> (Vec<f64>, Vec<f64>) {
    let soma = m.create_section("soma").unwrap();
    m.set_length(soma, 100.0).unwrap();
    m.set_diam(soma, 500.0).unwrap();
    m.insert(soma, "hh").unwrap();
    for delay in [2.0, 13.0, 27.0, 40.0] {
        let s = m.point_process("IClamp", soma, 0.5).unwrap();
        m.set_point(s, "del", delay).unwrap();
        m.set_point(s, "dur", 0.5).unwrap();
        m.set_point(s, "amp", 50.0).unwrap();
    }
    let nc = m
        .netcon(NetSource::Voltage(soma, 0.5), None, 10.0, 1.0, &[0.0])
        .unwrap();
    let v = m.record(Probe::V(soma, 0.5), Sampling::EveryStep).unwrap();
    m.finitialize(-65.0).unwrap();
    for _ in 0..1980 {
        m.fadvance().unwrap();
    }
    (
        m.recorded(v).unwrap().to_vec(),
        m.spikes(nc).unwrap().to_vec(),
    )
}

fn neuron_demo() -> (Vec<f64>, Vec<f64>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/neuron/demo.json");
    let d: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let floats = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let spikes = d["spikes"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .map(floats)
        .unwrap();
    (floats(&d["traces"]["soma(0.5).v"]), spikes)
}

#[test]
fn built_library_loads_and_matches_neuron_and_the_jit() {
    let dir = tempfile::tempdir().unwrap();
    builtin_mods(dir.path());
    let (code, text) = run_in(dir.path(), &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("built"), "{text}");
    let lib = library(dir.path());
    assert!(lib.is_file());

    // A model with nothing but the library: its mechanisms are hh, IClamp, ...
    let mut aot = Model::new();
    let names = aot.load_library(&lib).unwrap();
    assert!(names.iter().any(|n| n.ends_with("::hh")), "{names:?}");
    // Loading it again is a no-op.
    assert_eq!(aot.load_library(&lib).unwrap(), names);
    let (v_aot, spikes_aot) = demo(&mut aot);

    let (v_nrn, spikes_nrn) = neuron_demo();
    assert_eq!(v_aot.len(), v_nrn.len());
    let max_dv = v_aot
        .iter()
        .zip(&v_nrn)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(max_dv <= 1e-6, "AOT vs NEURON: max |dV| {max_dv}");
    assert_eq!(spikes_aot.len(), spikes_nrn.len());
    for (a, b) in spikes_aot.iter().zip(&spikes_nrn) {
        assert!((a - b).abs() < 0.0125, "spike {a} vs NEURON {b}");
    }

    // The JIT-compiled built-ins: the same IR, so the same numbers.
    let mut jit = mechanisms::new_model().unwrap();
    let (v_jit, _) = demo(&mut jit);
    for (a, b) in v_aot.iter().zip(&v_jit) {
        assert!(
            (a - b).abs() <= 1e-12 * b.abs().max(1.0),
            "AOT {a} vs JIT {b}"
        );
    }
}

#[test]
fn an_unchanged_folder_is_up_to_date_and_other_modes_write_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    builtin_mods(dir.path());
    let (code, text) = run_in(dir.path(), &["--jit-only"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        !dir.path().join(runtime::arch_dir()).exists(),
        "--jit-only wrote files"
    );
    let (code, text) = run_in(dir.path(), &["--emit", "rust"]);
    assert_eq!(code, 0, "{text}");
    assert!(dir
        .path()
        .join(runtime::arch_dir())
        .join("nrnmech.rs")
        .is_file());
    assert!(!library(dir.path()).exists());
    let (code, text) = run_in(dir.path(), &[]);
    assert_eq!(code, 0, "{text}");
    let (code, text) = run_in(dir.path(), &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("up to date"), "{text}");
}

#[test]
fn errors_stop_the_build_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.mod"),
        "NEURON { SUFFIX bad }\nBREAKPOINT {\n  x = 1\n}\n",
    )
    .unwrap();
    let (code, text) = run_in(dir.path(), &[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("bad.mod:3:"), "{text}");
    assert!(!dir.path().join(runtime::arch_dir()).exists());
}

#[test]
fn a_library_nrnivmodl_rs_did_not_build_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    builtin_mods(dir.path());
    let arch = dir.path().join(runtime::arch_dir());
    std::fs::create_dir_all(&arch).unwrap();
    std::fs::write(library(dir.path()), b"built by NEURON's nrnivmodl").unwrap();
    let (code, text) = run_in(dir.path(), &[]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("not built by nrnivmodl-rs"), "{text}");
    assert_eq!(
        std::fs::read(library(dir.path())).unwrap(),
        b"built by NEURON's nrnivmodl"
    );
}
