//! Test harness for the Rust back end: compiles generated source with
//! `rustc` into a cdylib, loads it through the runtime's loader
//! (`runtime::plugin::open_library`, which checks the entry symbol, the ABI
//! version and the layout fingerprint with `specs_from_table`), and runs its
//! kernels over the interpreter's `MechData` through a real `NrnMechPack`,
//! built the same way as `codegen::jit`'s test runners build theirs.
//!
//! FIXME: the pack building below duplicates `codegen::jit::build_pack`
//! (private); once codegen exports a runner that takes a raw
//! `NrnKernelFn`, this file needs no `unsafe` of its own.
#![allow(dead_code)]

use std::ffi::c_void;
use std::mem::size_of;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use codegen::interp::{padded, DataError, HostCall, MechData, RecordingHost};
use codegen::ir::{Phase, Shape};
use codegen::valid::ValidModule;
use runtime::abi::{
    NrnHostApi, NrnIonPack, NrnKernelFn, NrnKernels, NrnMechPack, NrnNetReceiveFn, STATUS_OK,
};
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

unsafe extern "C" fn host_net_send(
    ctx: *mut c_void,
    _mech: u32,
    instance: u32,
    weights: *mut f64,
    delay: f64,
    flag: f64,
) {
    // SAFETY: `ctx` is the `&mut RecordingHost` the runner put in the pack; it
    // is live and not otherwise borrowed for the duration of the kernel call.
    let host = unsafe { &mut *ctx.cast::<RecordingHost>() };
    host.calls.push(HostCall::NetSend {
        instance,
        has_weights: !weights.is_null(),
        delay,
        flag,
    });
}

unsafe extern "C" fn host_net_event(ctx: *mut c_void, _mech: u32, instance: u32, t: f64) {
    // SAFETY: as in `host_net_send`.
    let host = unsafe { &mut *ctx.cast::<RecordingHost>() };
    host.calls.push(HostCall::NetEvent { instance, t });
}

unsafe extern "C" fn host_net_move(ctx: *mut c_void, _mech: u32, instance: u32, t: f64) {
    // SAFETY: as in `host_net_send`.
    let host = unsafe { &mut *ctx.cast::<RecordingHost>() };
    host.calls.push(HostCall::NetMove { instance, t });
}

unsafe extern "C" fn host_random_uniform(ctx: *mut c_void) -> f64 {
    // SAFETY: as in `host_net_send`.
    let host = unsafe { &mut *ctx.cast::<RecordingHost>() };
    host.random_uniform()
}

unsafe extern "C" fn host_set_seed(ctx: *mut c_void, seed: f64) {
    // SAFETY: as in `host_net_send`.
    let host = unsafe { &mut *ctx.cast::<RecordingHost>() };
    host.set_seed(seed);
}

/// The raw arrays a pack points into; they must outlive the call.
#[derive(Default)]
struct PackStorage {
    field_ptrs: Vec<*mut f64>,
    ion_packs: Vec<NrnIonPack>,
    pointer_cols: Vec<Vec<*mut f64>>,
    pointer_ptrs: Vec<*const *mut f64>,
}

/// Builds a pack over `data` (all pointers derive from the one `&mut data`)
/// and calls `call` with it. `tamper` may change the pack first (to test the
/// kernels' own pack check).
fn with_pack(
    data: &mut MechData,
    tamper: impl FnOnce(&mut NrnMechPack),
    call: impl FnOnce(&mut NrnMechPack) -> i32,
) -> i32 {
    let mut s = PackStorage {
        field_ptrs: data.fields.iter_mut().map(|c| c.as_mut_ptr()).collect(),
        ..PackStorage::default()
    };
    s.ion_packs = data
        .ions
        .iter_mut()
        .map(|ion| NrnIonPack {
            index: ion.index.as_ptr(),
            erev: ion.erev.as_mut_ptr(),
            conc_i: ion.conc_i.as_mut_ptr(),
            conc_o: ion.conc_o.as_mut_ptr(),
            cur: ion.cur.as_mut_ptr(),
            dcurdv: ion.dcurdv.as_mut_ptr(),
            valence: ion.valence,
            n_instances: ion.erev.len() as u32,
            reserved: 0,
        })
        .collect();
    let pool = data.pointer_pool.as_mut_ptr();
    s.pointer_cols = data
        .pointers
        .iter()
        .map(|col| {
            col.iter()
                .map(|p| match p {
                    // `MechData::check` verified `k < pointer_pool.len()`.
                    Some(k) => pool.wrapping_add(*k),
                    None => std::ptr::null_mut(),
                })
                .collect()
        })
        .collect();
    s.pointer_ptrs = s.pointer_cols.iter().map(|c| c.as_ptr()).collect();
    let host = NrnHostApi {
        ctx: (&mut data.host as *mut RecordingHost).cast(),
        net_send: host_net_send,
        net_event: host_net_event,
        net_move: host_net_move,
        random_uniform: host_random_uniform,
        set_seed: host_set_seed,
    };
    let mut pack = NrnMechPack {
        struct_size: size_of::<NrnMechPack>() as u32,
        mech_id: data.mech_id,
        count: data.count as u32,
        secondorder: data.secondorder,
        t: data.t,
        dt: data.dt,
        celsius: data.celsius,
        node_index: data.node_index.as_ptr(),
        vec_v: data.v.as_mut_ptr(),
        vec_rhs: data.rhs.as_mut_ptr(),
        vec_d: data.d.as_mut_ptr(),
        vec_area: data.area.as_ptr(),
        vec_diam: data.diam.as_ptr(),
        fields: s.field_ptrs.as_ptr(),
        globals: data.globals.as_mut_ptr(),
        ions: s.ion_packs.as_ptr(),
        pointers: s.pointer_ptrs.as_ptr(),
        host: &host,
        error_instance: data.error_instance,
        reserved: 0,
        n_nodes: data.v.len() as u32,
        n_fields: s.field_ptrs.len() as u32,
        n_globals: data.globals.len() as u32,
        n_ions: s.ion_packs.len() as u32,
        n_pointers: s.pointer_ptrs.len() as u32,
        padded_count: padded(data.count) as u32,
    };
    tamper(&mut pack);
    let status = call(&mut pack);
    data.error_instance = pack.error_instance;
    status
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
    data.check(vm)?;
    assert_ne!(phase.shape(), Shape::Event);
    let Some(kernel) = phase_kernel(kernels, phase) else {
        return Ok(STATUS_OK);
    };
    // SAFETY: `data.check` verified every column length and index against
    // the layout the library was generated from (the kernel itself checks the
    // pack's counts against that layout); the pack and its storage live
    // until the call returns; the caller keeps the library loaded.
    Ok(with_pack(data, tamper, |pack| unsafe { kernel(pack) }))
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
    data.check(vm)?;
    if instance as usize >= data.count {
        return Err(DataError(format!("instance {instance} out of range")));
    }
    let Some(kernel) = event_kernel(kernels, phase) else {
        return Ok(STATUS_OK);
    };
    let n = weights.len() as u32;
    let w = weights.as_mut_ptr();
    // SAFETY: as in `run_kernel_tampered`; additionally `instance < count`
    // and `weights` is a live, exclusive slice of `n` elements.
    Ok(with_pack(
        data,
        |_| {},
        |pack| unsafe { kernel(pack, instance, w, n, flag) },
    ))
}
