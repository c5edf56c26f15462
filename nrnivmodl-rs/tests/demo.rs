//! Runs `nrnivmodl-rs demo` in temporary folders and checks its files and
//! output against NEURON 9.0.2's run of the same model
//! (`tests/data/neuron/demo.json`), and that it never replaces a file it did
//! not write.

use std::path::{Path, PathBuf};
use std::process::Command;

const CSV_HEADER: &str = "t [ms],soma(0.5).v [mV]";

/// Runs the binary in `dir` and returns (exit code, stdout, stderr).
fn run_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nrnivmodl-rs"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run nrnivmodl-rs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// NEURON's reference: (nsteps, dt, t trace, v trace, spike times).
struct Reference {
    nsteps: usize,
    dt: f64,
    t: Vec<f64>,
    v: Vec<f64>,
    spikes: Vec<f64>,
}

fn reference() -> Reference {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/neuron/demo.json");
    let d: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let floats = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    Reference {
        nsteps: d["nsteps"].as_u64().unwrap() as usize,
        dt: d["dt"].as_f64().unwrap(),
        t: floats(&d["traces"]["t"]),
        v: floats(&d["traces"]["soma(0.5).v"]),
        spikes: floats(&d["spikes"]["soma(0.5)"]),
    }
}

fn out_dir(tmp: &tempfile::TempDir) -> PathBuf {
    tmp.path().join("out")
}

#[test]
fn demo_matches_neuron_and_writes_csv_and_png() {
    let r = reference();
    let tmp = tempfile::tempdir().unwrap();
    let out = out_dir(&tmp);
    let (code, stdout, stderr) = run_in(tmp.path(), &["demo", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");

    // CSV: header, then one row per sample (nsteps + 1).
    let csv = std::fs::read_to_string(out.join("demo_voltage.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some(CSV_HEADER));
    let rows: Vec<(f64, f64)> = lines
        .map(|l| {
            let (a, b) = l.split_once(',').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect();
    assert_eq!(rows.len(), r.nsteps + 1);
    assert_eq!(rows.len(), 1981);
    let max_dt = rows
        .iter()
        .zip(&r.t)
        .map(|((t, _), tn)| (t - tn).abs())
        .fold(0.0, f64::max);
    assert!(max_dt <= 1e-9, "t differs from NEURON's by {max_dt} ms");
    let max_dv = rows
        .iter()
        .zip(&r.v)
        .map(|((_, v), vn)| (v - vn).abs())
        .fold(0.0, f64::max);
    assert!(max_dv <= 1e-6, "v differs from NEURON's by {max_dv} mV");

    // Printed spike times fall on NEURON's steps.
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("spikes [ms]: "))
        .unwrap_or_else(|| panic!("no spike line in:\n{stdout}"));
    let spikes: Vec<f64> = line.split(", ").map(|s| s.parse().unwrap()).collect();
    let step = |t: &f64| (t / r.dt).round() as i64;
    assert_eq!(
        spikes.iter().map(step).collect::<Vec<_>>(),
        r.spikes.iter().map(step).collect::<Vec<_>>(),
        "ours {spikes:?}, NEURON {:?}",
        r.spikes
    );
    assert_eq!(spikes.len(), 3);

    // The summary names both files, the peak and the comparison (the
    // reference is found through the source tree: the cwd is a temp dir).
    for needle in [
        "demo_voltage.csv",
        "demo_voltage.png",
        "peak v: ",
        "NEURON 9.0.2",
        "max |ΔV| = ",
        "spikes on the same steps as NEURON's",
    ] {
        assert!(
            stdout.contains(needle),
            "`{needle}` missing from:\n{stdout}"
        );
    }

    // PNG: decodes, has the promised size, and shows the trace.
    let bytes = std::fs::read(out.join("demo_voltage.png")).unwrap();
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (900, 500));
    assert_eq!(info.color_type, png::ColorType::Rgb);
    let trace_pixels = buf[..info.buffer_size()]
        .chunks(3)
        .filter(|p| *p == [31, 119, 180])
        .count();
    assert!(trace_pixels > 1000, "only {trace_pixels} trace pixels");

    // Only the two files were written.
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["demo_voltage.csv", "demo_voltage.png"]);
}

#[test]
fn default_folder_is_demo_output_and_reruns_replace_their_own_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run_in(tmp.path(), &["demo"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let csv = tmp.path().join("demo-output/demo_voltage.csv");
    let first = std::fs::read(&csv).unwrap();
    assert!(stdout.contains("demo-output/demo_voltage.csv"), "{stdout}");
    let (code, stdout, stderr) = run_in(tmp.path(), &["demo"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        std::fs::read(&csv).unwrap(),
        first,
        "the run is deterministic"
    );
}

#[test]
fn out_naming_a_file_is_a_usage_error_and_the_file_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("results.txt");
    std::fs::write(&file, "precious\n").unwrap();
    let (code, stdout, stderr) = run_in(tmp.path(), &["demo", "--out", "results.txt"]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stderr.contains("--out results.txt: exists and is not a folder"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious\n");
}

#[test]
fn foreign_files_with_the_output_names_are_left_alone() {
    for (name, content) in [
        ("demo_voltage.csv", b"my own measurements\n1,2\n".as_slice()),
        ("demo_voltage.png", b"\x89PNG\r\n\x1a\nnot ours".as_slice()),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let out = out_dir(&tmp);
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join(name), content).unwrap();
        let (code, stdout, stderr) = run_in(tmp.path(), &["demo", "--out", "out"]);
        assert_eq!(code, 2, "{name}: {stdout}{stderr}");
        assert!(
            stderr.contains(&format!(
                "out/{name} exists and was not written by `nrnivmodl-rs demo`; it is left alone"
            )),
            "{stderr}"
        );
        assert_eq!(std::fs::read(out.join(name)).unwrap(), content);
        // Nothing else was written either.
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1, "{name}");
    }
}

#[test]
fn unknown_options_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run_in(tmp.path(), &["demo", "--bogus"]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, stderr) = run_in(tmp.path(), &["demo", "--out"]);
    assert_eq!(code, 2, "{stderr}");
}
