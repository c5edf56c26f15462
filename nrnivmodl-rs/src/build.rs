//! `nrnivmodl-rs [PATH...]`: NEURON's `nrnivmodl`, building
//! `<arch>/libnrnmech.so` from .mod files.
//!
//! 1. Collect the .mod files: the current folder's when no path is given,
//!    else every named file and the `*.mod` files of every named folder.
//! 2. Check and lower every file (in parallel). All diagnostics are printed,
//!    in file order, before any build step; one error stops the build.
//! 3. Emit one Rust source for all mechanisms (`codegen::rust`), and compile
//!    it with `rustc` (`cdylib`, opt-level 3) into
//!    `<out>/<arch>/libnrnmech.so` (`.dylib` on macOS). The build is keyed
//!    on a hash of the generated source and the compiler's version: an
//!    unchanged folder is not rebuilt.
//! 4. A `rustc` failure on generated code is a bug of nrnivmodl-rs and is
//!    reported as one, naming the .mod files it came from.
//!
//! The output folder is only ever written inside `<out>/<arch>/`, and an
//! existing `libnrnmech.so` that nrnivmodl-rs did not build (one made by
//! NEURON's nrnivmodl) is never replaced: the build stops and says so.
//!
//! Exit codes: 0 built (or up to date), 1 errors in the .mod files or a
//! failed build, 2 usage or I/O problems.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use codegen::rust::LibraryEntry;
use codegen::valid::ValidModule;
use nmodl_frontend::diagnostic::{has_errors, Diagnostic};
use nmodl_frontend::render::render;
use nmodl_frontend::source::SourceMap;
use rayon::prelude::*;
use runtime::MechanismSpec;

use crate::BuildArgs;

/// The marker file next to a library nrnivmodl-rs built; it holds the build
/// key.
const STAMP: &str = ".nrnivmodl-rs-build";

/// One lowered file.
struct Lowered {
    file: PathBuf,
    module: ValidModule,
    spec: MechanismSpec,
    fingerprint: u64,
}

fn fnv1a(bytes: &[u8], mut h: u64) -> u64 {
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("nrnivmodl-rs: error: {msg}");
    ExitCode::from(2)
}

fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    let cwd = [PathBuf::from(".")];
    let paths = if paths.is_empty() { &cwd[..] } else { paths };
    for p in paths {
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| format!("{}: cannot read folder: {e}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file() && f.extension().is_some_and(|x| x == "mod"))
                .collect();
            v.sort();
            files.extend(v);
        } else if p.is_file() {
            files.push(p.clone());
        } else {
            return Err(format!("{}: no such file or folder", p.display()));
        }
    }
    if files.is_empty() {
        return Err("no .mod files found (give .mod files or folders that hold them)".into());
    }
    Ok(files)
}

/// Checks and lowers one file; the diagnostics are rendered against its own
/// source map.
fn lower_file(path: &Path) -> (Option<Lowered>, String, bool) {
    let mut sources = SourceMap::new();
    let result = nmodl_frontend::check_file(&mut sources, path);
    let mut diags: Vec<Diagnostic> = result.diagnostics;
    let fingerprint = std::fs::read(path)
        .map(|b| fnv1a(&b, 0xcbf2_9ce4_8422_2325))
        .unwrap_or(0);
    let mut lowered = None;
    if let (Some(model), false) = (result.model, has_errors(&diags)) {
        match codegen::lower::lower(&model) {
            Ok(l) => {
                diags.extend(l.warnings);
                match codegen::valid::validate(&l.module) {
                    Ok(vm) => {
                        lowered = Some(Lowered {
                            file: path.to_path_buf(),
                            module: vm,
                            spec: l.spec,
                            fingerprint,
                        })
                    }
                    Err(e) => diags.push(
                        Diagnostic::error(
                            codegen::lower::codes::INTERNAL,
                            model.breakpoint.as_ref().map(|b| b.body.span).unwrap_or(
                                nmodl_frontend::source::Span::new(
                                    nmodl_frontend::source::FileId(0),
                                    0,
                                    0,
                                ),
                            ),
                            format!("internal error: the generated kernel IR is invalid: {e:?}"),
                        )
                        .with_note(
                            "this is a bug in nrnivmodl-rs, not in your file; please report it",
                        ),
                    ),
                }
            }
            Err(d) => diags.extend(d),
        }
    }
    let failed = lowered.is_none();
    let text = if diags.is_empty() {
        String::new()
    } else {
        render(&sources, &diags, false)
    };
    (lowered, text, failed)
}

fn rustc_version(rustc: &Path) -> Result<String, String> {
    let out = Command::new(rustc).arg("--version").output().map_err(|e| {
        format!(
            "cannot run `{}`: {e} (install Rust with rustup, or pass --rustc)",
            rustc.display()
        )
    })?;
    if !out.status.success() {
        return Err(format!("`{} --version` failed", rustc.display()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Runs the build; see the module docs.
pub fn run(args: &BuildArgs) -> ExitCode {
    let t0 = Instant::now();
    let files = match collect(&args.paths) {
        Ok(f) => f,
        Err(e) => return usage(e),
    };
    if let Some(j) = args.jobs {
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(j.max(1))
            .build_global();
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "nrnivmodl-rs: {} .mod file(s)", files.len());
    let results: Vec<(Option<Lowered>, String, bool)> =
        files.par_iter().map(|f| lower_file(f)).collect();
    let mut failed = Vec::new();
    let mut lowered = Vec::new();
    for (f, (l, text, bad)) in files.iter().zip(results) {
        if !text.is_empty() {
            let _ = write!(out, "{text}");
        }
        if bad {
            failed.push(f.clone());
        }
        if let Some(l) = l {
            lowered.push(l);
        }
    }
    // Two files defining one mechanism cannot share a library.
    for (k, a) in lowered.iter().enumerate() {
        if let Some(b) = lowered[..k].iter().find(|b| b.spec.name == a.spec.name) {
            let _ = writeln!(
                out,
                "{}: error: mechanism `{}` is also defined by {}; a library holds each name once",
                a.file.display(),
                a.spec.name,
                b.file.display()
            );
            failed.push(a.file.clone());
        }
    }
    if !failed.is_empty() {
        let _ = writeln!(
            out,
            "nrnivmodl-rs: not built: {} of {} file(s) have errors (see above)",
            failed.len(),
            files.len()
        );
        return ExitCode::from(1);
    }
    let _ = writeln!(
        out,
        "  checked and lowered {} mechanism(s) in {:.0} ms",
        lowered.len(),
        t0.elapsed().as_secs_f64() * 1e3
    );
    if args.jit_only {
        for l in &lowered {
            if let Err(e) = codegen::jit::compile(&l.module) {
                let _ = writeln!(
                    out,
                    "{}: error: internal: JIT compilation failed: {}",
                    l.file.display(),
                    e.0
                );
                return ExitCode::from(1);
            }
        }
        let _ = writeln!(
            out,
            "nrnivmodl-rs: --jit-only: every mechanism lowers and JIT-compiles; nothing written"
        );
        return ExitCode::SUCCESS;
    }
    let entries: Vec<LibraryEntry> = lowered
        .iter()
        .map(|l| LibraryEntry {
            module: &l.module,
            spec: &l.spec,
            source_fingerprint: l.fingerprint,
        })
        .collect();
    let source = match codegen::rust::emit_library(&entries) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(
                out,
                "nrnivmodl-rs: internal error: {e} (a bug in nrnivmodl-rs; please report it)"
            );
            return ExitCode::from(1);
        }
    };
    let out_root = args.output.clone().unwrap_or_else(|| PathBuf::from("."));
    let arch = out_root.join(runtime::arch_dir());
    if let Err(e) = std::fs::create_dir_all(&arch) {
        return usage(format!("{}: cannot create: {e}", arch.display()));
    }
    if args.emit == Some(crate::BuildEmit::Rust) {
        let path = arch.join("nrnmech.rs");
        if let Err(e) = std::fs::write(&path, &source) {
            return usage(format!("{}: cannot write: {e}", path.display()));
        }
        let _ = writeln!(
            out,
            "wrote {} ({} bytes); not compiled (--emit rust)",
            path.display(),
            source.len()
        );
        return ExitCode::SUCCESS;
    }
    let lib = arch.join(runtime::library_file_name());
    let stamp = arch.join(STAMP);
    let ours = |p: &Path| {
        std::fs::read(p).is_ok_and(|b| b.windows(21).any(|w| w == b"nrnrs_mechanism_table"))
    };
    if lib.exists() && !ours(&lib) {
        let _ = writeln!(
            out,
            "nrnivmodl-rs: error: {} exists and was not built by nrnivmodl-rs (NEURON's nrnivmodl?); \
             it is left alone: remove it, or build elsewhere with -o DIR",
            lib.display()
        );
        return ExitCode::from(2);
    }
    let rustc = args.rustc.clone().unwrap_or_else(|| PathBuf::from("rustc"));
    let version = match rustc_version(&rustc) {
        Ok(v) => v,
        Err(e) => return usage(e),
    };
    let key = format!(
        "{:016x}",
        fnv1a(
            version.as_bytes(),
            fnv1a(source.as_bytes(), 0xcbf2_9ce4_8422_2325)
        )
    );
    if lib.exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == key) {
        let _ = writeln!(
            out,
            "nrnivmodl-rs: {} is up to date ({:.0} ms)",
            lib.display(),
            t0.elapsed().as_secs_f64() * 1e3
        );
        return ExitCode::SUCCESS;
    }
    let work = arch.join(".nrnivmodl-rs-work");
    if let Err(e) = std::fs::create_dir_all(&work) {
        return usage(format!("{}: cannot create: {e}", work.display()));
    }
    let src_path = work.join("nrnmech.rs");
    let tmp_lib = work.join(runtime::library_file_name());
    if let Err(e) = std::fs::write(&src_path, &source) {
        return usage(format!("{}: cannot write: {e}", src_path.display()));
    }
    let _ = writeln!(
        out,
        "  rustc (opt-level 3): {} mechanism(s) → {}",
        lowered.len(),
        lib.display()
    );
    let _ = out.flush();
    let t1 = Instant::now();
    let mut cmd = Command::new(&rustc);
    cmd.args([
        "--edition",
        "2021",
        "--crate-type",
        "cdylib",
        "--crate-name",
        "nrnmech",
    ])
    .args([
        "-C",
        "opt-level=3",
        "-C",
        "panic=abort",
        "-C",
        "debuginfo=0",
        "-C",
        "strip=symbols",
    ])
    .arg("-o")
    .arg(&tmp_lib)
    .arg(&src_path);
    if let Some(j) = args.jobs {
        cmd.arg("-C").arg(format!("codegen-units={}", j.max(1)));
    }
    let result = match cmd.output() {
        Ok(r) => r,
        Err(e) => return usage(format!("cannot run `{}`: {e}", rustc.display())),
    };
    if !result.status.success() {
        let stderr = String::from_utf8_lossy(&result.stderr);
        let excerpt: String = stderr.lines().take(40).collect::<Vec<_>>().join("\n");
        let _ = writeln!(
            out,
            "nrnivmodl-rs: internal error: the Rust generated from these .mod files does not compile.\n\
             This is a bug in nrnivmodl-rs, not in your files; please report it with the files:\n{}\n\
             The generated source is kept at {}.\nrustc said:\n{excerpt}",
            lowered
                .iter()
                .map(|l| format!("  {} (mechanism {})", l.file.display(), l.spec.name))
                .collect::<Vec<_>>()
                .join("\n"),
            src_path.display()
        );
        return ExitCode::from(1);
    }
    // Replace atomically, then record what was built.
    if let Err(e) = std::fs::rename(&tmp_lib, &lib) {
        return usage(format!("{}: cannot replace: {e}", lib.display()));
    }
    let _ = std::fs::write(&stamp, format!("{key}\n"));
    let _ = writeln!(
        out,
        "nrnivmodl-rs: built {} in {:.2} s (rustc {:.2} s)",
        lib.display(),
        t0.elapsed().as_secs_f64(),
        t1.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}
