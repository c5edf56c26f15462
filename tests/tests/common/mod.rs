//! What the library-building test suites share: building a library with
//! nrnivmodl-rs itself, lowering a .mod file the way nrnivmodl-rs does, and
//! compiling generated Rust with `rustc` into a cdylib in the test's scratch
//! folder.

#![allow(dead_code)] // each suite uses some of these helpers

use std::path::{Path, PathBuf};

use codegen::valid::ValidModule;
use runtime::MechanismSpec;

/// The built-in mechanisms' specs (JIT-compiled once per process).
pub fn builtin_specs() -> Result<Vec<MechanismSpec>, String> {
    mechanisms::jit_specs()
        .map(|s| s.to_vec())
        .map_err(|e| e.to_string())
}

/// Checks, lowers and validates one .mod file; panics with the diagnostics.
pub fn lower_file(path: &Path) -> (ValidModule, MechanismSpec) {
    let mut sources = nmodl_frontend::source::SourceMap::new();
    let checked = nmodl_frontend::check_file(&mut sources, path);
    let model = checked
        .model
        .unwrap_or_else(|| panic!("{}: {:?}", path.display(), checked.diagnostics));
    let lowered =
        codegen::lower::lower(&model).unwrap_or_else(|d| panic!("{}: {d:?}", path.display()));
    let valid = codegen::valid::validate(&lowered.module)
        .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
    (valid, lowered.spec)
}

/// Compiles `source` with `rustc --crate-type cdylib -C panic=abort` at
/// `opt_level` into `<scratch>/<dir>/lib<name>.so`; panics with rustc's
/// diagnostics on failure.
pub fn compile_cdylib(dir: &str, name: &str, source: &str, opt_level: u32) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join(format!("{name}.rs"));
    std::fs::write(&src, source).unwrap();
    let lib = dir.join(format!(
        "{}{name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = std::process::Command::new(rustc)
        .args([
            "--crate-type",
            "cdylib",
            "--edition",
            "2021",
            "-C",
            "panic=abort",
        ])
        .arg(format!("-Copt-level={opt_level}"))
        .args(["--crate-name", name, "-o"])
        .arg(&lib)
        .arg(&src)
        .output()
        .expect("rustc runs");
    assert!(
        out.status.success(),
        "rustc failed on {}:\n{}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    lib
}

/// Builds `paths` (.mod files and folders) with nrnivmodl-rs's own build
/// (`nrnivmodl_rs::build::run`, what the command runs) into
/// `<scratch>/<dir>/<arch>/libnrnmech.so`; panics when the build fails.
pub fn nrnivmodl_rs(dir: &str, paths: &[PathBuf]) -> PathBuf {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(dir);
    let args = nrnivmodl_rs::BuildArgs {
        paths: paths.to_vec(),
        output: Some(out.clone()),
        ..Default::default()
    };
    let code = nrnivmodl_rs::build::run(&args);
    assert_eq!(
        code,
        std::process::ExitCode::SUCCESS,
        "nrnivmodl-rs failed on {paths:?}"
    );
    out.join(runtime::arch_dir())
        .join(runtime::library_file_name())
}
