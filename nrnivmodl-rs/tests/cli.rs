//! Runs the built `nrnivmodl-rs` binary on good and bad fixtures and checks
//! exit codes and the output format.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../nmodl-frontend/tests/fixtures")
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nrnivmodl-rs"))
        .args(args)
        .output()
        .expect("run nrnivmodl-rs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn good_file_exits_zero_with_a_summary() {
    let f = fixtures().join("constructs/neuron_density.mod");
    let (code, out, _) = run(&["check", "--color", "never", f.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.trim_end(),
        "checked 1 file: 0 errors, 0 warnings (0 files with errors)"
    );
}

#[test]
fn bad_file_exits_one_with_a_gcc_style_line() {
    let f = fixtures().join("errors/syntax_misspelled_neuron_keyword.mod");
    let path = f.to_str().unwrap();
    let (code, out, _) = run(&["check", "--color", "never", path]);
    assert_eq!(code, 1, "{out}");
    let first = out.lines().next().unwrap();
    assert_eq!(
        first,
        format!("{path}:4:5: error: unknown keyword `RANG` in NEURON block; did you mean `RANGE`?")
    );
    assert!(out.contains("    RANG g"), "snippet missing:\n{out}");
    assert!(out
        .trim_end()
        .ends_with("checked 1 file: 1 error, 0 warnings (1 file with errors)"));
    assert!(!out.contains("\x1b["), "colour with --color never");
}

#[test]
fn folders_expand_to_their_mod_files() {
    let dir = fixtures().join("constructs");
    let n = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "mod")
        })
        .count();
    let (code, out, _) = run(&["check", "--color", "never", dir.to_str().unwrap()]);
    assert!(out.contains(&format!("checked {n} files:")), "{out}");
    assert!(code == 0 || code == 1);
    // Not recursive by default: the parent folder holds no .mod files itself.
    let (_, out, _) = run(&["check", "--color", "never", fixtures().to_str().unwrap()]);
    assert!(out.contains("checked 0 files:"), "{out}");
    let (_, out, _) = run(&[
        "check",
        "--recursive",
        "--color",
        "never",
        fixtures().to_str().unwrap(),
    ]);
    assert!(!out.contains("checked 0 files:"), "{out}");
}

#[test]
fn missing_path_and_bad_usage_exit_two() {
    let (code, _, err) = run(&["check", "/no/such/file.mod"]);
    assert_eq!(code, 2);
    assert!(err.contains("/no/such/file.mod"), "{err}");
    let (code, _, _) = run(&["check", "--color", "sometimes", "x.mod"]);
    assert_eq!(code, 2);
    let (code, _, _) = run(&[]);
    assert_eq!(code, 2);
}

#[test]
fn emit_ast_prints_json() {
    let f = fixtures().join("constructs/point_process.mod");
    let (code, out, _) = run(&[
        "check",
        "--emit",
        "ast",
        "--color",
        "never",
        f.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let json_end = out.rfind("checked").unwrap();
    let v: serde_json::Value = serde_json::from_str(&out[..json_end]).expect("valid JSON");
    assert!(v["items"].as_array().is_some_and(|a| !a.is_empty()));
    let (code, out, _) = run(&[
        "check",
        "--emit",
        "model",
        "--color",
        "never",
        f.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let json_end = out.rfind("checked").unwrap();
    serde_json::from_str::<serde_json::Value>(&out[..json_end]).expect("valid model JSON");
}
