//! Compiles the built-in mechanisms ahead of time: our own front end and
//! lowering turn `mod/*.mod` into kernel IR, the Rust back end
//! (`codegen::rust`) turns that into one library source, and this script
//! compiles it with the same `rustc` that builds the crate into one object
//! file (`rustc --emit obj`, as nrnivmodl-rs compiles its units), which the
//! crate links as a native library. The kernels are then native code in
//! every program that uses the built-ins, with no compiler needed at run
//! time and nothing to JIT at start-up. (An object rather than an rlib:
//! the crate's metadata then names no extra Rust crate, which `rustdoc`,
//! given no library search path by cargo, could not find.)
//!
//! Where the build machine has FMA and AVX2, and the C library's `exp` is
//! the one the generated inline `exp` reproduces bit for bit, the library is
//! compiled with `+fma,+avx2` (as `nrnivmodl-rs` does for the machine it
//! runs on), and the crate checks the processor and the C library again at
//! run time before it uses them.
//!
//! If anything here fails (it never should: the sources are ours and
//! tested), the build goes on with a warning and the crate JIT-compiles the
//! built-ins at run time instead; results are the same bits either way.
//! `NRNRS_BUILTINS_AOT=0` skips this step on purpose. Only Linux targets
//! get it (the object is linked with GNU-style `-l:file`); elsewhere the
//! built-ins are JIT-compiled.

use std::path::{Path, PathBuf};
use std::process::Command;

include!("src/sources.rs");

/// The crate name of the compiled library, and the stem of its object.
const CRATE: &str = "nrnrs_builtin_kernels";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/sources.rs");
    println!("cargo:rerun-if-changed=mod");
    println!("cargo:rerun-if-env-changed=NRNRS_BUILTINS_AOT");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    println!("cargo::rustc-check-cfg=cfg(nrnrs_builtins_aot)");
    println!("cargo::rustc-check-cfg=cfg(nrnrs_builtins_fma)");
    if std::env::var_os("NRNRS_BUILTINS_AOT").is_some_and(|v| v == "0")
        || std::env::var("CARGO_CFG_TARGET_OS").map_or(true, |os| os != "linux")
    {
        return;
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    match build(&out) {
        Ok(fma) => {
            // Not bundled into the rlib (rustc would read it as an archive):
            // the program's link finds it on this path, under its own name.
            println!("cargo:rustc-link-search=native={}", out.display());
            println!("cargo:rustc-link-lib=static:-bundle,+verbatim={CRATE}.o");
            println!("cargo:rustc-cfg=nrnrs_builtins_aot");
            if fma {
                println!("cargo:rustc-cfg=nrnrs_builtins_fma");
            }
        }
        Err(e) => {
            println!(
                "cargo:warning=the built-in mechanisms could not be compiled ahead of time \
                 (a bug of nrnivmodl-rs; they will be JIT-compiled at run time):"
            );
            // One `cargo:warning` per line: cargo shows one line each.
            for line in e.lines().take(40) {
                println!("cargo:warning=  {line}");
            }
        }
    }
}

/// Emits and compiles the library; returns whether it was compiled with
/// FMA and AVX2.
fn build(out: &Path) -> Result<bool, String> {
    let mut lowered = Vec::new();
    for (name, text) in SOURCES {
        let mut sources = nmodl_frontend::source::SourceMap::new();
        let checked = nmodl_frontend::check_source(&mut sources, name, text);
        let model = checked
            .model
            .filter(|_| !nmodl_frontend::diagnostic::has_errors(&checked.diagnostics))
            .ok_or_else(|| nmodl_frontend::render::render(&sources, &checked.diagnostics, false))?;
        let l = codegen::lower::lower(&model)
            .map_err(|d| nmodl_frontend::render::render(&sources, &d, false))?;
        let module = codegen::valid::validate(&l.module)
            .map_err(|e| format!("{name}: the generated kernel IR is invalid: {e:?}"))?;
        lowered.push((module, l.spec, runtime::abi::fnv1a_bytes(text.as_bytes())));
    }
    let entries: Vec<codegen::rust::LibraryEntry> = lowered
        .iter()
        .map(|(module, spec, fp)| codegen::rust::LibraryEntry {
            module,
            spec,
            source_fingerprint: *fp,
        })
        .collect();
    let text =
        codegen::rust::emit_library_with_entry(&entries, AOT_ENTRY).map_err(|e| e.to_string())?;
    let source = out.join(format!("{CRATE}.rs"));
    std::fs::write(&source, text).map_err(|e| format!("{}: {e}", source.display()))?;

    let fma = build_has_fma();
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let mut cmd = Command::new(rustc);
    // The flags the crate itself is compiled with (RUSTFLAGS and the
    // like) come first, so that the library is compiled as the crate is;
    // the back end's own flags below come later and so take precedence.
    if let Ok(flags) = std::env::var("CARGO_ENCODED_RUSTFLAGS") {
        cmd.args(flags.split('\x1f').filter(|f| !f.is_empty()));
    }
    cmd.args([
        "--crate-name",
        CRATE,
        "--crate-type",
        "rlib",
        "--edition",
        "2021",
    ])
    .args([
        "-C",
        "opt-level=3",
        "-C",
        "codegen-units=1",
        "-C",
        "debuginfo=0",
    ])
    .args(["--cap-lints", "allow"])
    .arg(format!(
        "--emit=obj={}",
        out.join(format!("{CRATE}.o")).display()
    ));
    if let Ok(target) = std::env::var("TARGET") {
        cmd.args(["--target", &target]);
    }
    // The program's panic strategy (the generated code never panics).
    if let Ok(panic) = std::env::var("CARGO_CFG_PANIC") {
        cmd.args(["-C", &format!("panic={panic}")]);
    }
    if fma {
        cmd.args(["-C", codegen::rust::EXP_TARGET_FEATURE]);
    }
    cmd.arg(&source);
    let result = cmd.output().map_err(|e| format!("cannot run rustc: {e}"))?;
    if !result.status.success() {
        return Err(format!(
            "rustc failed on {}:\n{}",
            source.display(),
            String::from_utf8_lossy(&result.stderr)
        ));
    }
    Ok(fma)
}

/// Whether the library is compiled with FMA and AVX2: the build runs on
/// the machine it builds for (no cross-compilation), where such code runs
/// and gives the C library's bits.
fn build_has_fma() -> bool {
    std::env::var("HOST").ok() == std::env::var("TARGET").ok()
        && codegen::rust::fma_code_runs_here().is_ok()
}
