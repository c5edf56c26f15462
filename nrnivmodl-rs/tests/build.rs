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
    let mut jit = mechanisms::new_model_from(mechanisms::Backend::Jit).unwrap();
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

/// The `(compiled, cached)` counts of a verbose build's report.
fn units(text: &str) -> (usize, usize) {
    let line = text
        .lines()
        .find(|l| l.contains("unit(s) to compile"))
        .unwrap_or_else(|| panic!("no unit count in:\n{text}"));
    let n: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    // "rustc (opt-level 3): A unit(s) to compile, B cached, J job(s)"
    (n[1], n[2])
}

/// The cached unit objects of a build folder, by mechanism name, with
/// `_lanes` for a lanes unit (the objects of the table, the fingerprints
/// and the support crate, `nrnrs_<hash>_{table,fingerprints,support}.o`,
/// left out).
fn cached_objects(dir: &Path) -> Vec<String> {
    let cache = dir.join(runtime::arch_dir()).join(".nrnivmodl-rs-cache");
    let mut v: Vec<String> = std::fs::read_dir(cache)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".o")?.strip_prefix("nrnrs_")?;
            Some(stem.split_once('_')?.1.to_string())
        })
        .filter(|name| !["table", "fingerprints", "support"].contains(&name.as_str()))
        .collect();
    v.sort();
    v
}

fn hh_demo(lib: &Path) -> Vec<f64> {
    let mut m = Model::new();
    m.load_library(lib).unwrap();
    demo(&mut m).1
}

#[test]
fn an_edit_recompiles_only_the_mechanism_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    builtin_mods(dir.path());
    let (code, text) = run_in(dir.path(), &["-v"]);
    assert_eq!(code, 0, "{text}");
    // One kernels unit per mechanism, and a lanes unit for those whose
    // per-step kernels run four instances at a time (hh's do).
    let objects = cached_objects(dir.path());
    let mechanisms: Vec<&String> = objects.iter().filter(|o| !o.ends_with("_lanes")).collect();
    assert_eq!(mechanisms.len(), 10, "{objects:?}");
    assert!(objects.contains(&"hh_lanes".to_string()), "{objects:?}");
    assert!(
        !objects.contains(&"NetStim_lanes".to_string()),
        "{objects:?}"
    );
    let n = objects.len();
    assert_eq!(units(&text), (n, 0), "{text}");
    let before = hh_demo(&library(dir.path()));

    // A comment changes the file but no code: no unit and not the table is
    // recompiled; the library is relinked with the file's new fingerprint.
    let hh = dir.path().join("hh.mod");
    let fingerprints = || {
        let mut v: Vec<String> = std::fs::read_dir(
            dir.path()
                .join(runtime::arch_dir())
                .join(".nrnivmodl-rs-cache"),
        )
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with("_fingerprints.o"))
        .collect();
        v.sort();
        v
    };
    let fp_before = fingerprints();
    assert_eq!(fp_before.len(), 1, "{fp_before:?}");
    let mut text_hh = std::fs::read_to_string(&hh).unwrap();
    text_hh.push_str("\n: an edit\n");
    std::fs::write(&hh, &text_hh).unwrap();
    let (code, text) = run_in(dir.path(), &["-v"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(units(&text), (0, n), "{text}");
    assert!(text.contains("cached hh (./hh.mod)"), "{text}");
    assert!(text.contains("the table cached"), "{text}");
    assert!(text.contains("nrnivmodl-rs: built"), "{text}");
    let fp_after = fingerprints();
    assert_eq!(
        fp_after.len(),
        1,
        "the old fingerprints are pruned: {fp_after:?}"
    );
    assert_ne!(fp_after, fp_before, "a new fingerprint");
    assert_eq!(hh_demo(&library(dir.path())), before);

    // A rate constant: hh's kernels unit alone is recompiled, and the new
    // library runs the new kernel. (`rates` fills hh's TABLEs, which the
    // kernels unit computes; the lane bodies only read them, so the lanes
    // unit is unchanged.)
    let edited = text_hh.replace(
        "b = 0.125 * exp(-(u + 65) / 80)",
        "b = 0.25 * exp(-(u + 65) / 80)",
    );
    assert_ne!(
        edited, text_hh,
        "hh.mod no longer has the line this test edits"
    );
    std::fs::write(&hh, &edited).unwrap();
    let (code, text) = run_in(dir.path(), &["-v"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(units(&text), (1, n - 1), "{text}");
    assert!(text.contains("compile hh (./hh.mod)"), "{text}");
    assert!(text.contains("cached hh lanes (./hh.mod)"), "{text}");
    // The table names kernels by mechanism, so it is not recompiled; the
    // support crate the units share is compiled once.
    assert!(text.contains("the table cached"), "{text}");
    assert!(text.contains("the support crate cached"), "{text}");
    assert_ne!(hh_demo(&library(dir.path())), before);
    // The objects of the old hh are gone.
    assert_eq!(cached_objects(dir.path()), objects);

    // A file removed: nothing compiled, its objects pruned.
    std::fs::remove_file(dir.path().join("pas.mod")).unwrap();
    let (code, text) = run_in(dir.path(), &["-v"]);
    assert_eq!(code, 0, "{text}");
    let left = cached_objects(dir.path());
    assert!(
        left.iter().all(|o| o != "pas" && o != "pas_lanes"),
        "{left:?}"
    );
    assert_eq!(units(&text), (0, left.len()), "{text}");
    assert!(text.contains("the table to compile"), "{text}");
    let mut m = Model::new();
    m.load_library(&library(dir.path())).unwrap();
    let s = m.create_section("s").unwrap();
    let err = m.insert(s, "pas").unwrap_err().to_string();
    assert!(err.contains("pas"), "{err}");
}

/// Writes the executable script `path` (a stand-in for `rustc`).
#[cfg(unix)]
fn script(path: &Path, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_path_buf()
}

/// A `rustc` that fails on hh's unit with an error inside the state
/// kernel, as a bug of the Rust back end would.
#[cfg(unix)]
#[test]
fn a_rustc_error_in_generated_code_names_the_mod_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    builtin_mods(dir.path());
    let fake = script(
        &dir.path().join("fake-rustc"),
        "#!/bin/sh\n\
         for a in \"$@\"; do last=\"$a\"; done\n\
         case \"$last\" in *_hh.rs)\n\
           sed -i 's/^\\(pub unsafe extern \"C\" fn .*_hh_k_state(.*{\\)$/\\1 let _bad: u8 = 1.5;/' \"$last\";;\n\
         esac\n\
         exec rustc \"$@\"\n",
    );
    let (code, text) = run_in(dir.path(), &["--rustc", fake.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("internal error"), "{text}");
    assert!(text.contains("not in your files"), "{text}");
    assert!(text.contains("mismatched types"), "{text}");
    // hh.mod's BREAKPOINT solves `gates`, its DERIVATIVE block.
    let gates_line = std::fs::read_to_string(dir.path().join("hh.mod"))
        .unwrap()
        .lines()
        .position(|l| l.starts_with("DERIVATIVE gates"))
        .unwrap()
        + 1;
    assert!(
        text.contains(&format!("hh.mod:{gates_line} (SOLVE gates)")),
        "{text}"
    );
    assert!(!library(dir.path()).exists());
}

/// The NetCon weight vector of a library mechanism is as long as its
/// NET_RECEIVE argument list (the ABI carries the count), and every weight
/// reaches the compiled NET_RECEIVE, as in the JIT and in NEURON 9.0.2
/// (which gives `total` = 321 for this model).
#[test]
fn a_library_mechanism_receives_every_netcon_weight() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("acc.mod"),
        "NEURON { POINT_PROCESS Acc RANGE total }\n\
         ASSIGNED { total }\n\
         INITIAL { total = 0 }\n\
         NET_RECEIVE(w, tau, d) { total = total + w + 10 * tau + 100 * d }\n",
    )
    .unwrap();
    let (code, text) = run_in(dir.path(), &[]);
    assert_eq!(code, 0, "{text}");
    let jit = || {
        let mut m = mechanisms::new_model().unwrap();
        for (_, r) in codegen::load::load_folder(dir.path()).unwrap() {
            m.register(r.unwrap().spec).unwrap();
        }
        m
    };
    let aot = || {
        let mut m = mechanisms::new_model().unwrap();
        let names = m.load_library(&library(dir.path())).unwrap();
        let key = names.iter().find(|n| n.ends_with("Acc")).unwrap();
        assert_eq!(m.mechanism_spec(key).unwrap().n_weights, 3);
        m
    };
    for (what, mut m) in [("JIT", jit()), ("AOT", aot())] {
        let s = m.create_section("soma").unwrap();
        let acc = m.point_process("Acc", s, 0.5).unwrap();
        let stim = m.artificial_cell("NetStim").unwrap();
        m.set_point(stim, "number", 1.0).unwrap();
        m.set_point(stim, "start", 0.1).unwrap();
        let nc = m
            .netcon(
                NetSource::Point(stim),
                Some(acc),
                0.0,
                0.0,
                &[1.0, 0.0, 0.0],
            )
            .unwrap();
        m.finitialize(-65.0).unwrap();
        // finitialize zeroes every weight but the first (NEURON does, for a
        // NET_RECEIVE without INITIAL): set them after it, as NEURON users do.
        m.set_weight(nc, 1, 2.0).unwrap();
        m.set_weight(nc, 2, 3.0).unwrap();
        for _ in 0..8 {
            m.fadvance().unwrap();
        }
        assert_eq!(m.get_point(acc, "total").unwrap(), 321.0, "{what}");
    }
}

/// The build goes ahead with the compiler the last build used and checks
/// it in the background; when `rustc` now stands for another compiler (a
/// toolchain update), it builds again with that one and records it.
#[test]
fn a_changed_rustc_is_noticed_and_the_build_redone_with_it() {
    let dir = tempfile::tempdir().unwrap();
    builtin_mods(dir.path());
    let (code, text) = run_in(dir.path(), &[]);
    assert_eq!(code, 0, "{text}");
    let record = dir
        .path()
        .join(runtime::arch_dir())
        .join(".nrnivmodl-rs-cache/compiler");
    let real = std::fs::read_to_string(&record).unwrap();
    let lines: Vec<&str> = real.lines().collect();
    assert_eq!(lines.len(), 4, "{real}");
    assert!(lines[2].starts_with("rustc "), "{real}");
    // As if the last build had used an older toolchain, since replaced
    // (what decides the compiler, the last line, changed).
    std::fs::write(
        &record,
        format!(
            "{}\n{}\nrustc 1.0.0 (an older toolchain)\n{}/changed\n",
            lines[0], lines[1], lines[3]
        ),
    )
    .unwrap();
    let hh = dir.path().join("hh.mod");
    let mut text_hh = std::fs::read_to_string(&hh).unwrap();
    text_hh.push_str("\n: an edit\n");
    std::fs::write(&hh, &text_hh).unwrap();
    let (code, text) = run_in(dir.path(), &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("building again"), "{text}");
    assert_eq!(std::fs::read_to_string(&record).unwrap(), real);
    let mut m = Model::new();
    m.load_library(&library(dir.path())).unwrap();
}

/// When nothing that decides what `rustc` stands for has changed (the file
/// it resolves to, rustup's settings and overrides, the compiler's files),
/// an edit's build runs no `rustc --version`: only the compiles.
#[cfg(unix)]
#[test]
fn an_unchanged_rustc_is_not_asked_again() {
    let dir = tempfile::tempdir().unwrap();
    builtin_mods(dir.path());
    let log = dir.path().join("rustc.log");
    let fake = script(
        &dir.path().join("logging-rustc"),
        &format!(
            "#!/bin/sh\necho \"$1\" >> '{}'\nexec rustc \"$@\"\n",
            log.display()
        ),
    );
    let rustc = fake.to_str().unwrap();
    let (code, text) = run_in(dir.path(), &["--rustc", rustc]);
    assert_eq!(code, 0, "{text}");
    let first = std::fs::read_to_string(&log).unwrap();
    assert!(first.lines().any(|l| l == "--version"), "{first}");
    std::fs::remove_file(&log).unwrap();
    let hh = dir.path().join("hh.mod");
    let edited = std::fs::read_to_string(&hh).unwrap().replace(
        "b = 0.125 * exp(-(u + 65) / 80)",
        "b = 0.25 * exp(-(u + 65) / 80)",
    );
    std::fs::write(&hh, edited).unwrap();
    let (code, text) = run_in(dir.path(), &["--rustc", rustc]);
    assert_eq!(code, 0, "{text}");
    let second = std::fs::read_to_string(&log).unwrap();
    assert!(!second.lines().any(|l| l == "--version"), "{second}");
    assert_eq!(second.lines().count(), 1, "one unit compiled: {second}");
}
