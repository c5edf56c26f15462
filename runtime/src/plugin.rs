//! The only module with `unsafe`: building an [`abi::NrnMechPack`] from the
//! runtime's storage and calling kernels through it, reading an
//! [`abi::NrnMechanism`] descriptor, the host callbacks, and the safe
//! [`PackView`] that Rust-written kernels use instead of raw pointers.
//!
//! # Writing a kernel in Rust without `unsafe`
//!
//! ```
//! use runtime::plugin::{KernelResult, PackView};
//!
//! // A leak current i = g·(v − e) with g in column 0 and e in column 1.
//! fn leak_cur(p: &PackView) -> KernelResult {
//!     let (g, e) = (p.field(0), p.field(1));
//!     let (v, rhs, d) = (p.v(), p.rhs(), p.d());
//!     for (i, &node) in p.node_index().iter().enumerate() {
//!         let node = node as usize;
//!         let i_leak = g[i].get() * (v[node].get() - e[i].get());
//!         rhs[node].set(rhs[node].get() - i_leak);
//!         d[node].set(d[node].get() + g[i].get());
//!     }
//!     Ok(())
//! }
//! runtime::kernel!(pub fn leak_cur_kernel = leak_cur;);
//! let _k: runtime::abi::NrnKernelFn = leak_cur_kernel;
//! ```

use smallvec::SmallVec;
use std::cell::Cell;
use std::ffi::{c_void, CStr};

use crate::abi;
use crate::mechanism::{Column, FieldSpec, IonUse, MechKind, MechanismSpec};
use crate::{Error, Result};

/// Why a Rust kernel failed: the instance and an `abi::STATUS_*` code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelFailure {
    /// The failing instance.
    pub instance: u32,
    /// The status to return (not `STATUS_OK`).
    pub status: i32,
}

/// What a Rust kernel body returns.
pub type KernelResult = std::result::Result<(), KernelFailure>;

/// One ion as seen by a kernel: columns of the ion storage, indexed through
/// `index` (mechanism instance → ion instance).
#[derive(Debug, Clone, Copy)]
pub struct IonView<'a> {
    /// Instance → ion instance.
    pub index: &'a [u32],
    /// `e<ion>` [mV].
    pub erev: &'a [Cell<f64>],
    /// `<ion>i` [mM].
    pub conc_i: &'a [Cell<f64>],
    /// `<ion>o` [mM].
    pub conc_o: &'a [Cell<f64>],
    /// `i<ion>` [mA/cm²].
    pub cur: &'a [Cell<f64>],
    /// `di<ion>_dv_` [S/cm²].
    pub dcurdv: &'a [Cell<f64>],
    /// The valence.
    pub valence: f64,
}

/// A safe view of a [`abi::NrnMechPack`] for kernels written in Rust. Every
/// array is a slice of the right length; writable arrays are slices of
/// `Cell<f64>`, so several may be held at once.
#[derive(Debug)]
pub struct PackView<'a> {
    mech_id: u32,
    count: usize,
    t: f64,
    dt: f64,
    celsius: f64,
    secondorder: i32,
    node_index: &'a [u32],
    v: &'a [Cell<f64>],
    rhs: &'a [Cell<f64>],
    d: &'a [Cell<f64>],
    area: &'a [f64],
    diam: &'a [f64],
    fields: &'a [*mut f64],
    globals: &'a [Cell<f64>],
    ions: &'a [abi::NrnIonPack],
    host: *const abi::NrnHostApi,
}

/// Builds a slice of cells from a raw column.
///
/// # Safety
/// `ptr` must be valid for reads and writes of `len` f64s for `'a`, or `len` is 0.
unsafe fn cells<'a>(ptr: *mut f64, len: usize) -> &'a [Cell<f64>] {
    if len == 0 || ptr.is_null() {
        return &[];
    }
    // SAFETY: the caller guarantees `len` valid f64s; Cell<f64> has the layout of f64.
    unsafe { std::slice::from_raw_parts(ptr.cast::<Cell<f64>>(), len) }
}

/// # Safety
/// `ptr` must be valid for reads of `len` elements for `'a`, or `len` is 0.
unsafe fn slice<'a, T>(ptr: *const T, len: usize) -> &'a [T] {
    if len == 0 || ptr.is_null() {
        return &[];
    }
    // SAFETY: guaranteed by the caller.
    unsafe { std::slice::from_raw_parts(ptr, len) }
}

impl<'a> PackView<'a> {
    /// Wraps a raw pack. Returns `None` for a null pointer or a pack older than
    /// ABI 0.2 (which lacks the array lengths).
    ///
    /// # Safety
    /// `pack` must point to a pack built by this runtime (or one honouring the
    /// same contract: every pointer valid for the lengths the pack states) and
    /// stay valid, without other access to the arrays, for `'a`.
    pub unsafe fn from_raw(pack: *mut abi::NrnMechPack) -> Option<PackView<'a>> {
        if pack.is_null() {
            return None;
        }
        // SAFETY: non-null and valid by the caller's contract.
        let p = unsafe { &*pack };
        if (p.struct_size as usize) < std::mem::size_of::<abi::NrnMechPack>() {
            return None;
        }
        let n = p.n_nodes as usize;
        let count = p.count as usize;
        // SAFETY: the contract says each array holds the stated number of elements.
        unsafe {
            Some(PackView {
                mech_id: p.mech_id,
                count,
                t: p.t,
                dt: p.dt,
                celsius: p.celsius,
                secondorder: p.secondorder,
                node_index: slice(p.node_index, count),
                v: cells(p.vec_v, n),
                rhs: cells(p.vec_rhs, n),
                d: cells(p.vec_d, n),
                area: slice(p.vec_area, n),
                diam: slice(p.vec_diam, n),
                fields: slice(p.fields, p.n_fields as usize),
                globals: cells(p.globals, p.n_globals as usize),
                ions: slice(p.ions, p.n_ions as usize),
                host: p.host,
            })
        }
    }

    /// The number of instances.
    pub fn count(&self) -> usize {
        self.count
    }
    /// The time [ms].
    pub fn t(&self) -> f64 {
        self.t
    }
    /// The time step [ms].
    pub fn dt(&self) -> f64 {
        self.dt
    }
    /// The temperature [°C].
    pub fn celsius(&self) -> f64 {
        self.celsius
    }
    /// NEURON's `secondorder`.
    pub fn secondorder(&self) -> i32 {
        self.secondorder
    }
    /// Instance → node.
    pub fn node_index(&self) -> &'a [u32] {
        self.node_index
    }
    /// Node voltages [mV].
    pub fn v(&self) -> &'a [Cell<f64>] {
        self.v
    }
    /// Node right-hand sides [mA/cm²].
    pub fn rhs(&self) -> &'a [Cell<f64>] {
        self.rhs
    }
    /// Node diagonals [S/cm²].
    pub fn d(&self) -> &'a [Cell<f64>] {
        self.d
    }
    /// Node areas [µm²].
    pub fn area(&self) -> &'a [f64] {
        self.area
    }
    /// Node diameters [µm].
    pub fn diam(&self) -> &'a [f64] {
        self.diam
    }
    /// Column `k` (instances `0..count`); empty if there is no such column.
    pub fn field(&self, k: usize) -> &'a [Cell<f64>] {
        match self.fields.get(k) {
            // SAFETY: each column holds at least `count` values (pack contract).
            Some(&ptr) => unsafe { cells(ptr, self.count) },
            None => &[],
        }
    }
    /// The globals.
    pub fn globals(&self) -> &'a [Cell<f64>] {
        self.globals
    }
    /// Ion `k` in the mechanism's ion order; `None` if there is no such ion.
    pub fn ion(&self, k: usize) -> Option<IonView<'a>> {
        let ion = self.ions.get(k)?;
        let n = ion.n_instances as usize;
        // SAFETY: the index has `count` entries and each ion column `n_instances` values.
        unsafe {
            Some(IonView {
                index: slice(ion.index, self.count),
                erev: cells(ion.erev, n),
                conc_i: cells(ion.conc_i, n),
                conc_o: cells(ion.conc_o, n),
                cur: cells(ion.cur, n),
                dcurdv: cells(ion.dcurdv, n),
                valence: ion.valence,
            })
        }
    }

    /// `net_send(delay, flag)` from `instance` (a self-event); `weights` is
    /// the weight vector of the event being handled, if any.
    pub fn net_send(&self, instance: usize, delay: f64, flag: f64) {
        if self.host.is_null() {
            return;
        }
        // SAFETY: the host table and its ctx are valid during the kernel call.
        unsafe {
            let h = &*self.host;
            (h.net_send)(
                h.ctx,
                self.mech_id,
                instance as u32,
                std::ptr::null_mut(),
                delay,
                flag,
            );
        }
    }

    /// `net_event(t)` from `instance`: a spike on every NetCon it is the source of.
    pub fn net_event(&self, instance: usize, t: f64) {
        if self.host.is_null() {
            return;
        }
        // SAFETY: as in `net_send`.
        unsafe {
            let h = &*self.host;
            (h.net_event)(h.ctx, self.mech_id, instance as u32, t);
        }
    }
}

/// Runs a Rust kernel body over a raw pack; used by [`kernel!`](crate::kernel).
/// A failure sets `pack.error_instance` and returns its status; a panic in the
/// body is caught and reported as `STATUS_MECHANISM_ERROR`.
///
/// # Safety
/// As for [`PackView::from_raw`].
pub unsafe fn run_kernel(pack: *mut abi::NrnMechPack, body: fn(&PackView) -> KernelResult) -> i32 {
    // SAFETY: forwarded contract.
    let Some(view) = (unsafe { PackView::from_raw(pack) }) else {
        return abi::STATUS_MECHANISM_ERROR;
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&view)));
    let failure = match outcome {
        Ok(Ok(())) => return abi::STATUS_OK,
        Ok(Err(f)) => f,
        Err(_) => KernelFailure {
            instance: 0,
            status: abi::STATUS_MECHANISM_ERROR,
        },
    };
    // SAFETY: `pack` is valid (checked non-null above); no view borrows error_instance.
    unsafe { (*pack).error_instance = failure.instance };
    failure.status
}

/// Runs a Rust NET_RECEIVE body; used by [`net_receive_kernel!`](crate::net_receive_kernel).
///
/// # Safety
/// As for [`PackView::from_raw`]; `weights` valid for `n_weights` values.
pub unsafe fn run_net_receive(
    pack: *mut abi::NrnMechPack,
    instance: u32,
    weights: *mut f64,
    n_weights: u32,
    flag: f64,
    body: fn(&PackView, usize, &[Cell<f64>], f64) -> KernelResult,
) -> i32 {
    // SAFETY: forwarded contract.
    let Some(view) = (unsafe { PackView::from_raw(pack) }) else {
        return abi::STATUS_MECHANISM_ERROR;
    };
    // SAFETY: forwarded contract.
    let w = unsafe { cells(weights, n_weights as usize) };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        body(&view, instance as usize, w, flag)
    }));
    let failure = match outcome {
        Ok(Ok(())) => return abi::STATUS_OK,
        Ok(Err(f)) => f,
        Err(_) => KernelFailure {
            instance,
            status: abi::STATUS_MECHANISM_ERROR,
        },
    };
    // SAFETY: `pack` is valid (checked non-null above).
    unsafe { (*pack).error_instance = failure.instance };
    failure.status
}

/// Defines an `extern "C"` phase kernel ([`abi::NrnKernelFn`]) from a safe
/// Rust function `fn(&PackView) -> KernelResult`.
///
/// `runtime::kernel!(pub fn hh_cur = hh_cur_body;);`
#[macro_export]
macro_rules! kernel {
    ($(#[$m:meta])* $vis:vis fn $name:ident = $body:path;) => {
        $(#[$m])*
        $vis unsafe extern "C" fn $name(pack: *mut $crate::abi::NrnMechPack) -> i32 {
            // SAFETY: the runtime calls kernels only with packs it built
            // (runtime::plugin::invoke validates every length and index).
            unsafe { $crate::plugin::run_kernel(pack, $body) }
        }
    };
}

/// Defines an `extern "C"` NET_RECEIVE kernel ([`abi::NrnNetReceiveFn`]) from
/// a safe `fn(&PackView, instance, weights, flag) -> KernelResult`.
#[macro_export]
macro_rules! net_receive_kernel {
    ($(#[$m:meta])* $vis:vis fn $name:ident = $body:path;) => {
        $(#[$m])*
        $vis unsafe extern "C" fn $name(
            pack: *mut $crate::abi::NrnMechPack,
            instance: u32,
            weights: *mut f64,
            n_weights: u32,
            flag: f64,
        ) -> i32 {
            // SAFETY: the runtime passes a pack it built and the NetCon's own weight vector.
            unsafe { $crate::plugin::run_net_receive(pack, instance, weights, n_weights, flag, $body) }
        }
    };
}

// ---------------------------------------------------------------------------
// Host callbacks.

/// A request a kernel made through [`abi::NrnHostApi`] during one call; the
/// runtime acts on it after the kernel returns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum HostRequest {
    NetSend {
        mech: u32,
        instance: u32,
        delay: f64,
        flag: f64,
    },
    NetEvent {
        mech: u32,
        instance: u32,
        t: f64,
    },
    NetMove {
        mech: u32,
        instance: u32,
        t: f64,
    },
}

/// The runtime side of the host callbacks: requests made during a kernel call
/// and the random stream.
#[derive(Debug)]
pub(crate) struct HostCtx {
    pub requests: Vec<HostRequest>,
    pub rng_state: u64,
    /// Set for the context of one cell group among several running in
    /// parallel: the shared random stream cannot be used there without making
    /// results depend on the thread count.
    pub parallel: bool,
    /// A kernel asked for a random number while `parallel` was set.
    pub random_in_parallel: bool,
}

impl HostCtx {
    pub(crate) fn new() -> HostCtx {
        HostCtx {
            requests: Vec::new(),
            rng_state: 0x853c_49e6_748f_ea9b,
            parallel: false,
            random_in_parallel: false,
        }
    }

    fn next_uniform(&mut self) -> f64 {
        // splitmix64
        self.rng_state = self.rng_state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng_state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

unsafe extern "C" fn host_net_send(
    ctx: *mut c_void,
    mech: u32,
    instance: u32,
    _w: *mut f64,
    delay: f64,
    flag: f64,
) {
    // SAFETY: ctx is the HostCtx the runtime put in the table for this call.
    let h = unsafe { &mut *ctx.cast::<HostCtx>() };
    h.requests.push(HostRequest::NetSend {
        mech,
        instance,
        delay,
        flag,
    });
}
unsafe extern "C" fn host_net_event(ctx: *mut c_void, mech: u32, instance: u32, t: f64) {
    // SAFETY: as above.
    let h = unsafe { &mut *ctx.cast::<HostCtx>() };
    h.requests.push(HostRequest::NetEvent { mech, instance, t });
}
unsafe extern "C" fn host_net_move(ctx: *mut c_void, mech: u32, instance: u32, t: f64) {
    // SAFETY: as above.
    let h = unsafe { &mut *ctx.cast::<HostCtx>() };
    h.requests.push(HostRequest::NetMove { mech, instance, t });
}
unsafe extern "C" fn host_random_uniform(ctx: *mut c_void) -> f64 {
    // SAFETY: as above.
    let h = unsafe { &mut *ctx.cast::<HostCtx>() };
    if h.parallel {
        h.random_in_parallel = true;
        return f64::NAN;
    }
    h.next_uniform()
}
unsafe extern "C" fn host_set_seed(ctx: *mut c_void, seed: f64) {
    // SAFETY: as above.
    let h = unsafe { &mut *ctx.cast::<HostCtx>() };
    if h.parallel {
        h.random_in_parallel = true;
        return;
    }
    // The seed is truncated to an integer (NaN gives 0, infinities
    // saturate), as NEURON's set_seed takes an integer: every NaN payload
    // then seeds the same stream, whichever back end produced it.
    h.rng_state = seed as i64 as u64;
}

// ---------------------------------------------------------------------------
// Kernel invocation.

/// One ion's arrays for one kernel call.
pub(crate) struct IonArgs<'a> {
    pub index: &'a [u32],
    /// erev, conc_i, conc_o, cur, dcurdv; each at least `count` long.
    pub cols: [&'a mut [f64]; 5],
    pub count: usize,
    pub valence: f64,
}

/// Everything one kernel call needs, as safe borrows; [`invoke`] turns it into
/// a pack after checking every length and index.
///
/// A call over a whole mechanism passes whole columns (padded to
/// [`abi::COLUMN_PADDING`]); a call over one cell group of a threaded run
/// passes the group's sub-slices, whose elements past `count` belong to the
/// next group (see [`abi::NrnMechPack::padded_count`]).
pub(crate) struct KernelArgs<'a> {
    pub mech_id: u32,
    pub count: usize,
    pub t: f64,
    pub dt: f64,
    pub celsius: f64,
    pub secondorder: i32,
    pub node_index: &'a [u32],
    pub v: &'a mut [f64],
    pub rhs: &'a mut [f64],
    pub d: &'a mut [f64],
    pub area: &'a [f64],
    pub diam: &'a [f64],
    pub fields: SmallVec<[&'a mut [f64]; 32]>,
    pub globals: &'a mut [f64],
    pub ions: SmallVec<[IonArgs<'a>; 4]>,
    /// Per POINTER: target addresses (instances `0..count`), resolved from
    /// the runtime's own arrays.
    pub pointers: SmallVec<[&'a [*mut f64]; 4]>,
    pub host: &'a mut HostCtx,
}

/// A whole column as a slice of its padded length.
pub(crate) fn column_slice(c: &mut Column) -> &mut [f64] {
    let len = c.padded_len();
    if len == 0 {
        return &mut [];
    }
    // SAFETY: a column is a Vec of `Chunk`s, each `#[repr(C)]` around
    // `[f64; COLUMN_PADDING]` with size 64 and no padding, so the chunks are
    // `padded_len()` contiguous, initialised f64s; the exclusive borrow of the
    // column is carried by the returned slice.
    unsafe { std::slice::from_raw_parts_mut(c.as_mut_ptr(), len) }
}

/// Which kernel to call.
#[derive(Clone, Copy)]
pub(crate) enum KernelKind {
    Phase(abi::NrnKernelFn),
    NetReceive {
        f: abi::NrnNetReceiveFn,
        instance: u32,
        flag: f64,
    },
}

/// Checks the arguments, builds the pack and calls the kernel. Returns the
/// kernel's status and the instance it reported.
pub(crate) fn invoke(
    mut args: KernelArgs<'_>,
    kernel: KernelKind,
    weights: &mut [f64],
) -> Result<(i32, u32)> {
    let n = args.v.len();
    let count = args.count;
    let padded = count.div_ceil(abi::COLUMN_PADDING) * abi::COLUMN_PADDING;
    let bad = |what: &str| {
        Err(Error::Structure {
            reason: format!("internal: kernel arguments inconsistent ({what})"),
        })
    };
    if args.rhs.len() != n || args.d.len() != n || args.area.len() != n || args.diam.len() != n {
        return bad("node arrays");
    }
    // `max` (not `any`) so the scans vectorise: they run on every call.
    let max_index = |ix: &[u32]| ix.iter().copied().max().map_or(0, |m| m as usize + 1);
    if args.node_index.len() < count || max_index(&args.node_index[..count]) > n {
        return bad("node index");
    }
    if args.fields.iter().any(|c| c.len() < count) {
        return bad("column length");
    }
    for ion in &args.ions {
        if ion.index.len() < count || max_index(&ion.index[..count]) > ion.count {
            return bad("ion index");
        }
        if ion.cols.iter().any(|c| c.len() < ion.count) {
            return bad("ion columns");
        }
    }
    for p in &args.pointers {
        if p.len() < count {
            return bad("pointer column");
        }
    }
    if let KernelKind::NetReceive { instance, .. } = kernel {
        if instance as usize >= count {
            return bad("event instance");
        }
    }
    // Small vectors: a kernel call allocates nothing for ordinary mechanisms.
    let mut field_ptrs: SmallVec<[*mut f64; 32]> =
        args.fields.iter_mut().map(|c| c.as_mut_ptr()).collect();
    let mut ion_packs: SmallVec<[abi::NrnIonPack; 4]> = args
        .ions
        .into_iter()
        .map(|ion| {
            let [e, ci, co, cur, dcur] = ion.cols;
            abi::NrnIonPack {
                index: ion.index.as_ptr(),
                erev: e.as_mut_ptr(),
                conc_i: ci.as_mut_ptr(),
                conc_o: co.as_mut_ptr(),
                cur: cur.as_mut_ptr(),
                dcurdv: dcur.as_mut_ptr(),
                valence: ion.valence,
                n_instances: ion.count as u32,
                reserved: 0,
            }
        })
        .collect();
    let pointer_cols: SmallVec<[*const *mut f64; 4]> =
        args.pointers.iter().map(|p| p.as_ptr()).collect();
    let host = abi::NrnHostApi {
        ctx: (args.host as *mut HostCtx).cast::<c_void>(),
        net_send: host_net_send,
        net_event: host_net_event,
        net_move: host_net_move,
        random_uniform: host_random_uniform,
        set_seed: host_set_seed,
    };
    let mut pack = abi::NrnMechPack {
        struct_size: std::mem::size_of::<abi::NrnMechPack>() as u32,
        mech_id: args.mech_id,
        count: count as u32,
        secondorder: args.secondorder,
        t: args.t,
        dt: args.dt,
        celsius: args.celsius,
        node_index: args.node_index.as_ptr(),
        vec_v: args.v.as_mut_ptr(),
        vec_rhs: args.rhs.as_mut_ptr(),
        vec_d: args.d.as_mut_ptr(),
        vec_area: args.area.as_ptr(),
        vec_diam: args.diam.as_ptr(),
        fields: field_ptrs.as_mut_ptr().cast_const(),
        globals: args.globals.as_mut_ptr(),
        ions: ion_packs.as_mut_ptr().cast_const(),
        pointers: pointer_cols.as_ptr(),
        host: &host,
        error_instance: 0,
        reserved: 0,
        n_nodes: n as u32,
        n_fields: field_ptrs.len() as u32,
        n_globals: args.globals.len() as u32,
        n_ions: ion_packs.len() as u32,
        n_pointers: pointer_cols.len() as u32,
        padded_count: padded as u32,
    };
    let status = match kernel {
        // SAFETY: every pointer in `pack` comes from a live borrow held for
        // the duration of this call, and the checks above guarantee the
        // lengths the pack states (node indices < n_nodes, columns ≥
        // padded_count, ion indices < n_instances). Nothing else touches
        // these arrays while the kernel runs. The kernel itself must honour
        // the ABI contract (it is trusted code loaded or built by the user).
        KernelKind::Phase(f) => unsafe { f(&mut pack) },
        // SAFETY: as above; `weights` is a live, exclusive slice.
        KernelKind::NetReceive { f, instance, flag } => unsafe {
            f(
                &mut pack,
                instance,
                weights.as_mut_ptr(),
                weights.len() as u32,
                flag,
            )
        },
    };
    Ok((status, pack.error_instance))
}

/// A table of raw POINTER targets that may cross threads with the model.
/// The addresses point into the model's own node and column arrays.
#[derive(Debug, Default, Clone)]
pub(crate) struct PointerTable(pub Vec<Vec<*mut f64>>);

// SAFETY: the addresses are only dereferenced by kernels called through
// `invoke` while the model is exclusively borrowed, so moving the table to
// another thread together with the model cannot create a data race.
unsafe impl Send for PointerTable {}
// SAFETY: shared references to the table never dereference the addresses.
unsafe impl Sync for PointerTable {}

// ---------------------------------------------------------------------------
// Descriptors.

/// # Safety
/// `p` is null or a valid NUL-terminated string.
unsafe fn c_str(p: *const std::ffi::c_char, what: &str) -> Result<String> {
    if p.is_null() {
        return Err(Error::Library {
            reason: format!("{what}: null string"),
        });
    }
    // SAFETY: by the caller's contract.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().map(str::to_string).map_err(|_| Error::Library {
        reason: format!("{what}: not UTF-8"),
    })
}

/// # Safety
/// `fields` valid for `n` entries with valid strings.
unsafe fn read_fields(
    fields: *const abi::NrnFieldInfo,
    n: u32,
    what: &str,
) -> Result<Vec<FieldSpec>> {
    // SAFETY: by the caller's contract.
    let raw = unsafe { slice(fields, n as usize) };
    raw.iter()
        .map(|f| {
            Ok(FieldSpec {
                // SAFETY: strings valid by contract.
                name: unsafe { c_str(f.name, what)? },
                units: if f.units.is_null() {
                    String::new()
                } else {
                    unsafe { c_str(f.units, what)? }
                },
                kind: f.kind,
                array_len: f.array_len,
                default_value: f.default_value,
            })
        })
        .collect()
}

/// Reads an ABI descriptor into an owned [`MechanismSpec`] (kernels are copied
/// as function pointers; the library must stay loaded while they are used).
///
/// # Safety
/// `m` must point to a valid `NrnMechanism` whose strings and arrays are
/// valid for the lengths it states.
pub unsafe fn spec_from_abi(m: *const abi::NrnMechanism) -> Result<MechanismSpec> {
    if m.is_null() {
        return Err(Error::Library {
            reason: "null mechanism descriptor".into(),
        });
    }
    // SAFETY: non-null and valid by contract.
    let m = unsafe { &*m };
    // SAFETY: by contract.
    let name = unsafe { c_str(m.name, "mechanism name")? };
    let kind = match m.kind {
        abi::KIND_DENSITY => MechKind::Density,
        abi::KIND_POINT_PROCESS => MechKind::PointProcess,
        abi::KIND_ARTIFICIAL_CELL => MechKind::ArtificialCell,
        k => {
            return Err(Error::BadMechanism {
                name,
                reason: format!("unknown kind {k}"),
            })
        }
    };
    // SAFETY: by contract.
    let fields = unsafe { read_fields(m.fields, m.n_fields, &name)? };
    // SAFETY: by contract.
    let globals = unsafe { read_fields(m.globals, m.n_globals, &name)? };
    // SAFETY: by contract.
    let ions = unsafe { slice(m.ions, m.n_ions as usize) }
        .iter()
        .map(|i| {
            Ok(IonUse {
                // SAFETY: by contract.
                name: unsafe { c_str(i.name, "ion name")? },
                valence: if i.valence.is_nan() {
                    None
                } else {
                    Some(i.valence)
                },
                flags: i.flags,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    // SAFETY: by contract.
    let pointers = unsafe { slice(m.pointer_names, m.n_pointers as usize) }
        .iter()
        // SAFETY: by contract.
        .map(|&p| unsafe { c_str(p, "pointer name") })
        .collect::<Result<Vec<_>>>()?;
    if m.n_weights > abi::MAX_WEIGHTS {
        return Err(Error::BadMechanism {
            name,
            reason: format!(
                "{} NET_RECEIVE weights (at most {} are accepted)",
                m.n_weights,
                abi::MAX_WEIGHTS
            ),
        });
    }
    let spec = MechanismSpec {
        name,
        kind,
        flags: m.flags,
        fields,
        globals,
        ions,
        pointers,
        kernels: m.kernels,
        keepalive: None,
        n_weights: m.n_weights,
        library: None,
    };
    spec.validate()?;
    Ok(spec)
}

/// Checks a mechanism table's versions and layout fingerprint and reads all
/// its mechanisms.
///
/// # Safety
/// `table` must point to a valid table whose descriptors are valid (see
/// [`spec_from_abi`]).
pub unsafe fn specs_from_table(table: *const abi::NrnMechanismTable) -> Result<Vec<MechanismSpec>> {
    if table.is_null() {
        return Err(Error::Library {
            reason: "the mechanism table is null: the library was built for a processor \
                     with FMA and AVX2 (nrnivmodl-rs builds for the machine it runs on) and \
                     this one lacks them; build it again on this machine"
                .into(),
        });
    }
    // SAFETY: by contract.
    let t = unsafe { &*table };
    if t.abi_major != abi::ABI_MAJOR || t.abi_minor > abi::ABI_MINOR {
        return Err(Error::Library {
            reason: format!(
                "ABI {}.{} is not compatible with the runtime's {}.{}",
                t.abi_major,
                t.abi_minor,
                abi::ABI_MAJOR,
                abi::ABI_MINOR
            ),
        });
    }
    if t.layout_fingerprint != abi::LAYOUT_FINGERPRINT {
        return Err(Error::Library {
            reason: "layout fingerprint differs from the runtime's".into(),
        });
    }
    // SAFETY: by contract.
    let mechs = unsafe { slice(t.mechanisms, t.n_mechanisms as usize) };
    // SAFETY: by contract.
    mechs.iter().map(|m| unsafe { spec_from_abi(m) }).collect()
}

// ---------------------------------------------------------------------------
// Shared libraries (`nrn_load_dll`).

/// A mechanism library (`libnrnmech.so` built by `nrnivmodl-rs`) loaded into
/// the process. It is shared (`Arc`) by every model that registered its
/// mechanisms, through their specs' `keepalive`; when the last user lets go
/// the library is closed and its private copy deleted.
///
/// The library is opened from a private copy named by its content hash, so a
/// rebuilt library at the same path is a different file to the dynamic
/// loader: both builds can be loaded at once (by different models), and
/// closing an old build never needs the loader to forget a path.
pub struct LoadedLibrary {
    /// The path the user gave, canonicalised.
    pub path: std::path::PathBuf,
    /// FNV-1a hash of the file's bytes.
    pub hash: u64,
    copy: std::path::PathBuf,
    lib: Option<libloading::Library>,
    /// The mechanisms, with `keepalive` unset (models set it to this library).
    pub specs: Vec<MechanismSpec>,
}

impl std::fmt::Debug for LoadedLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedLibrary")
            .field("path", &self.path)
            .field("hash", &format_args!("{:016x}", self.hash))
            .field(
                "mechanisms",
                &self.specs.iter().map(|s| &s.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Drop for LoadedLibrary {
    fn drop(&mut self) {
        // Close first, then delete the private copy.
        drop(self.lib.take());
        let _ = std::fs::remove_file(&self.copy);
    }
}

/// For a 64-bit little-endian ELF file (Linux on x86_64 and arm64): every
/// program header's file range, and the section header table, lie inside
/// the file. The dynamic loader maps a truncated library without complaint,
/// and touching a page past the end of the file kills the process with
/// SIGBUS; this check turns that into an error. Other files pass through
/// (the loader refuses what it cannot read).
fn elf_is_complete(b: &[u8]) -> std::result::Result<(), String> {
    if !b.starts_with(b"\x7fELF") || b.get(4) != Some(&2) || b.get(5) != Some(&1) {
        return Ok(());
    }
    let u16_at = |o: usize| {
        b.get(o..o + 2)
            .map(|x| u16::from_le_bytes([x[0], x[1]]) as u64)
    };
    let u64_at = |o: usize| {
        b.get(o..o + 8)
            .map(|x| u64::from_le_bytes(x.try_into().expect("8 bytes")))
    };
    let len = b.len() as u64;
    let short = |need: u64| {
        format!("the file is truncated or damaged: {len} bytes, but its headers describe data up to byte {need}")
    };
    let header = || short(64);
    let phoff = u64_at(0x20).ok_or_else(header)?;
    let shoff = u64_at(0x28).ok_or_else(header)?;
    let phentsize = u16_at(0x36).ok_or_else(header)?;
    let phnum = u16_at(0x38).ok_or_else(header)?;
    let shentsize = u16_at(0x3a).ok_or_else(header)?;
    let shnum = u16_at(0x3c).ok_or_else(header)?;
    let end = |off: u64, size: u64| off.checked_add(size).filter(|&e| e <= len);
    end(phoff, phentsize * phnum).ok_or_else(|| short(phoff.saturating_add(phentsize * phnum)))?;
    if shnum > 0 {
        end(shoff, shentsize * shnum)
            .ok_or_else(|| short(shoff.saturating_add(shentsize * shnum)))?;
    }
    for k in 0..phnum {
        let ph = (phoff + k * phentsize) as usize;
        let offset = u64_at(ph + 8).ok_or_else(header)?;
        let filesz = u64_at(ph + 32).ok_or_else(header)?;
        end(offset, filesz).ok_or_else(|| short(offset.saturating_add(filesz)))?;
    }
    Ok(())
}

type Registry = std::sync::Mutex<Vec<std::sync::Weak<LoadedLibrary>>>;

fn registry() -> &'static Registry {
    static R: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();
    R.get_or_init(Default::default)
}

/// Opens a mechanism library, or returns the already-open one when the same
/// file (same canonical path and same bytes) is loaded in this process.
///
/// Every failure is an [`Error::Library`] naming the file: a missing file,
/// a file that is not a shared library, one without the
/// `nrnrs_mechanism_table` entry symbol (not one of ours), an ABI version or
/// layout mismatch, or a malformed descriptor.
pub fn open_library(path: &std::path::Path) -> Result<std::sync::Arc<LoadedLibrary>> {
    let err = |reason: String| Error::Library {
        reason: format!("{}: {reason}", path.display()),
    };
    let canonical = std::fs::canonicalize(path).map_err(|e| err(format!("cannot open: {e}")))?;
    let bytes = std::fs::read(&canonical).map_err(|e| err(format!("cannot read: {e}")))?;
    let hash = abi::fnv1a_bytes(&bytes);
    elf_is_complete(&bytes).map_err(|e| err(format!("not a loadable shared library: {e}")))?;
    let mut reg = registry().lock().unwrap_or_else(|p| p.into_inner());
    reg.retain(|w| w.strong_count() > 0);
    if let Some(lib) = reg
        .iter()
        .filter_map(|w| w.upgrade())
        .find(|l| l.path == canonical && l.hash == hash)
    {
        return Ok(lib);
    }
    let ext = canonical
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("so");
    // A name no other open can use, not even one of the same file: a
    // library dropped by another thread deletes its own copy after the
    // registry lock is released, and must never delete this one.
    static OPENED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = OPENED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let copy = std::env::temp_dir().join(format!(
        "nrnrs-{}-{hash:016x}-{n}.{ext}",
        std::process::id()
    ));
    std::fs::write(&copy, &bytes).map_err(|e| err(format!("cannot make a private copy: {e}")))?;
    let remove_copy = |e: Error| {
        let _ = std::fs::remove_file(&copy);
        e
    };
    // SAFETY: loading a shared library runs its initialisers. Libraries are
    // expected to be built by nrnivmodl-rs, whose generated code has no
    // initialisers beyond Rust's std runtime; a foreign library with
    // arbitrary initialisers is the user's explicit choice, as with NEURON's
    // nrn_load_dll.
    let lib = unsafe { libloading::Library::new(&copy) }
        .map_err(|e| remove_copy(err(format!("not a loadable shared library: {e}"))))?;
    // On Unix the mapping outlives the file: unlink the copy now, so that
    // nothing is left in the temporary folder however the process ends.
    #[cfg(unix)]
    let _ = std::fs::remove_file(&copy);
    // SAFETY: the symbol, when present, is the ABI's entry point with
    // signature `extern "C" fn() -> *const NrnMechanismTable`.
    let entry: libloading::Symbol<unsafe extern "C" fn() -> *const abi::NrnMechanismTable> =
        unsafe { lib.get(abi::ENTRY_SYMBOL) }.map_err(|_| {
            remove_copy(err(
                "not an nrnivmodl-rs mechanism library (no `nrnrs_mechanism_table` symbol); \
                 libraries built by NEURON's nrnivmodl cannot be loaded: build the .mod folder with nrnivmodl-rs"
                    .into(),
            ))
        })?;
    // SAFETY: calling the entry point has no preconditions; it returns a
    // pointer to a static table that lives as long as the library.
    let table = unsafe { entry() };
    // SAFETY: the table comes from a library that passed the symbol check;
    // specs_from_table validates versions and the layout fingerprint before
    // reading any descriptor.
    let specs = unsafe { specs_from_table(table) }.map_err(|e| remove_copy(err(e.to_string())))?;
    let loaded = std::sync::Arc::new(LoadedLibrary {
        path: canonical,
        hash,
        copy,
        lib: Some(lib),
        specs,
    });
    reg.push(std::sync::Arc::downgrade(&loaded));
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_foreign_files_are_clear_errors() {
        let e = open_library(std::path::Path::new("/no/such/libnrnmech.so")).unwrap_err();
        assert!(e.to_string().contains("/no/such/libnrnmech.so"), "{e}");
        assert!(e.to_string().contains("cannot open"), "{e}");
        let dir = std::env::temp_dir().join(format!("nrnrs-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("libnotalib.so");
        std::fs::write(&f, b"this is not an ELF file").unwrap();
        let e = open_library(&f).unwrap_err();
        assert!(
            e.to_string().contains("not a loadable shared library"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn descriptor_round_trip() {
        let fields = [
            abi::NrnFieldInfo {
                name: c"gbar".as_ptr(),
                units: c"S/cm2".as_ptr(),
                kind: abi::FIELD_PARAMETER,
                array_len: 1,
                default_value: 0.5,
                range_lo: f64::NAN,
                range_hi: f64::NAN,
            },
            abi::NrnFieldInfo {
                name: c"x".as_ptr(),
                units: std::ptr::null(),
                kind: abi::FIELD_STATE,
                array_len: 3,
                default_value: 0.0,
                range_lo: f64::NAN,
                range_hi: f64::NAN,
            },
        ];
        let ions = [abi::NrnIonInfo {
            name: c"ca".as_ptr(),
            valence: f64::NAN,
            flags: abi::ION_READ_CI,
        }];
        let m = abi::NrnMechanism {
            name: c"cat".as_ptr(),
            kind: abi::KIND_DENSITY,
            flags: 0,
            fields: fields.as_ptr(),
            n_fields: 2,
            globals: std::ptr::null(),
            n_globals: 0,
            ions: ions.as_ptr(),
            n_ions: 1,
            pointer_names: std::ptr::null(),
            n_pointers: 0,
            n_weights: 0,
            source_fingerprint: 7,
            kernels: abi::NrnKernels::default(),
        };
        // SAFETY: every pointer above refers to a live local array or a static string.
        let spec = unsafe { spec_from_abi(&m) }.unwrap();
        assert_eq!(spec.name, "cat");
        assert_eq!(spec.n_columns(), 4);
        assert_eq!(spec.column_of("x"), Some((1, 3)));
        assert_eq!(spec.fields[0].units, "S/cm2");
        assert_eq!(spec.ions[0].valence, None);

        let table = abi::NrnMechanismTable {
            abi_major: abi::ABI_MAJOR,
            abi_minor: abi::ABI_MINOR + 1,
            layout_fingerprint: abi::LAYOUT_FINGERPRINT,
            mechanisms: &m,
            n_mechanisms: 1,
        };
        // SAFETY: as above.
        let err = unsafe { specs_from_table(&table) }.unwrap_err();
        assert!(err.to_string().contains("not compatible"), "{err}");
        let table = abi::NrnMechanismTable {
            abi_minor: abi::ABI_MINOR,
            layout_fingerprint: 1,
            ..table
        };
        // SAFETY: as above.
        let err = unsafe { specs_from_table(&table) }.unwrap_err();
        assert!(err.to_string().contains("fingerprint"), "{err}");
    }
}
