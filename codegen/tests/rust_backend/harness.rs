//! Test harness for the Rust back end: compiles generated source with
//! `rustc` into a cdylib, loads it through the runtime's loader
//! (`runtime::plugin::open_library`, which checks the entry symbol, the ABI
//! version and the layout fingerprint with `specs_from_table`), and runs its
//! kernels over the interpreter's `MechData` through a real `NrnMechPack`
//! with `codegen::jit::run_native_kernel` / `run_native_event`, the same
//! runner the JIT's tests use.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use codegen::interp::{DataError, MechData};
use codegen::ir::{Phase, Shape};
use codegen::valid::ValidModule;
use runtime::abi::{NrnKernelFn, NrnKernels, NrnMechPack, NrnNetReceiveFn, STATUS_OK};
use runtime::plugin::LoadedLibrary;

/// A fresh, unique scratch folder.
fn scratch(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "nrnrs-rust-backend-{}-{name}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("create a scratch folder");
    dir
}

/// The source lines around `line` (1-based), numbered, for failure messages.
fn excerpt(source: &str, line: usize) -> String {
    source
        .lines()
        .enumerate()
        .skip(line.saturating_sub(6))
        .take(12)
        .map(|(k, l)| format!("{:5} | {l}\n", k + 1))
        .collect()
}

/// Compiles `source` as `rustc --crate-type cdylib -C opt-level=3 --edition
/// 2021`, returning the library path, or rustc's diagnostics (with the
/// generated lines they point at) on failure. The source is kept next to
/// the library.
pub fn compile(name: &str, source: &str) -> Result<PathBuf, String> {
    let dir = scratch(name);
    let src = dir.join(format!("{name}.rs"));
    std::fs::write(&src, source).map_err(|e| e.to_string())?;
    let lib = dir.join(format!(
        "{}{name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let started = std::time::Instant::now();
    let output = std::process::Command::new(rustc)
        .args([
            "--crate-type",
            "cdylib",
            "-C",
            "opt-level=3",
            "--edition",
            "2021",
        ])
        .args(["--crate-name", name, "-o"])
        .arg(&lib)
        .arg(&src)
        .output()
        .map_err(|e| format!("cannot run rustc: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let mut msg = format!("rustc failed on {}:\n{stderr}", src.display());
        // Show the generated code at the first error location.
        if let Some(pos) = stderr.find(&format!("{name}.rs:")) {
            let rest = &stderr[pos + name.len() + 4..];
            if let Some(line) = rest.split(':').next().and_then(|l| l.parse().ok()) {
                msg.push_str(&excerpt(source, line));
            }
        }
        return Err(msg);
    }
    eprintln!(
        "rustc {name}: {} lines in {:.1?}",
        source.lines().count(),
        started.elapsed()
    );
    Ok(lib)
}

/// Compiles and loads `source`; panics with rustc's or the loader's message
/// on failure. The scratch folder is removed once the library is loaded (the
/// loader works on a private copy).
pub fn build_and_load(name: &str, source: &str) -> Arc<LoadedLibrary> {
    let path = compile(name, source).unwrap_or_else(|e| panic!("{e}"));
    let lib = runtime::plugin::open_library(&path)
        .unwrap_or_else(|e| panic!("the runtime refused {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
    lib
}

/// Removes the scratch folder of a library path (after a failed load test).
pub fn remove(path: &Path) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The kernel of a non-event `phase` in `k`.
pub fn phase_kernel(k: &NrnKernels, phase: Phase) -> Option<NrnKernelFn> {
    match phase {
        Phase::Init => k.init,
        Phase::Cur => k.cur,
        Phase::State => k.state,
        Phase::TableCheck => k.table_check,
        Phase::BeforeInitial => k.before_initial,
        Phase::AfterInitial => k.after_initial,
        Phase::BeforeBreakpoint => k.before_breakpoint,
        Phase::AfterSolve => k.after_solve,
        Phase::BeforeStep => k.before_step,
        Phase::Constructor => k.constructor,
        Phase::Destructor => k.destructor,
        Phase::NetReceive | Phase::NetReceiveInit => None,
    }
}

/// The kernel of an event `phase` in `k`.
pub fn event_kernel(k: &NrnKernels, phase: Phase) -> Option<NrnNetReceiveFn> {
    match phase {
        Phase::NetReceive => k.net_receive,
        Phase::NetReceiveInit => k.net_receive_init,
        _ => None,
    }
}

/// Runs the library kernel of a non-event `phase` over `data` (the
/// counterpart of `codegen::interp::run_kernel`).
pub fn run_kernel(
    kernels: &NrnKernels,
    vm: &ValidModule,
    phase: Phase,
    data: &mut MechData,
) -> Result<i32, DataError> {
    run_kernel_tampered(kernels, vm, phase, data, |_| {})
}

/// As [`run_kernel`], letting `tamper` change the pack before the call.
pub fn run_kernel_tampered(
    kernels: &NrnKernels,
    vm: &ValidModule,
    phase: Phase,
    data: &mut MechData,
    tamper: impl FnOnce(&mut NrnMechPack),
) -> Result<i32, DataError> {
    assert_ne!(phase.shape(), Shape::Event);
    let Some(kernel) = phase_kernel(kernels, phase) else {
        data.check(vm)?;
        return Ok(STATUS_OK);
    };
    // SAFETY: the library was generated from `vm`, and the caller keeps it
    // loaded for the call.
    unsafe { codegen::jit::run_native_kernel(kernel, vm, data, tamper) }
}

/// Runs the library kernel of an event `phase` for one event (the
/// counterpart of `codegen::interp::run_event`).
pub fn run_event(
    kernels: &NrnKernels,
    vm: &ValidModule,
    phase: Phase,
    data: &mut MechData,
    instance: u32,
    weights: &mut [f64],
    flag: f64,
) -> Result<i32, DataError> {
    let Some(kernel) = event_kernel(kernels, phase) else {
        data.check(vm)?;
        if instance as usize >= data.count {
            return Err(DataError(format!("instance {instance} out of range")));
        }
        return Ok(STATUS_OK);
    };
    // SAFETY: as in `run_kernel_tampered`.
    unsafe { codegen::jit::run_native_event(kernel, vm, data, instance, weights, flag) }
}
