//! The Rust back end: turns validated kernel IR plus the runtime metadata of
//! each mechanism into the source of one self-contained Rust `cdylib` that
//! implements the `runtime::abi` kernel ABI (what `nrnivmodl-rs` compiles
//! into `libnrnmech.so`, and what the `mechanisms` build script compiles
//! into the object of the built-ins, [`emit_library_with_entry`]).
//!
//! # What the generated library is
//!
//! - It uses `core` only and depends on none of our crates: it re-declares
//!   the `#[repr(C)]` ABI structs and recomputes `LAYOUT_FINGERPRINT` from
//!   its own declarations with the runtime's formula, and a compile-time
//!   assertion compares that with the runtime's value at emit time. A layout
//!   drift therefore fails to compile instead of loading with a wrong layout.
//! - It exports one symbol, `nrnrs_mechanism_table`, returning a static
//!   `NrnMechanismTable` with one `NrnMechanism` per [`LibraryEntry`], in
//!   order. It checks nothing that the loader checks (ABI version,
//!   fingerprint).
//! - Each kernel is an `unsafe extern "C" fn` with the `NrnKernelFn` /
//!   `NrnNetReceiveFn` signature. Like the JIT, it first checks the pack
//!   (`struct_size` at least this ABI's `NrnMechPack`, and `n_fields`,
//!   `n_globals`, `n_ions`, `n_pointers` equal to the layout) and otherwise
//!   returns `STATUS_MECHANISM_ERROR` with `error_instance = u32::MAX`.
//! - Semantics are those of the IR specification (crate docs) and of
//!   [`crate::interp`]: the same evaluation order (Rust evaluates operands and
//!   call arguments left to right, `&&`, `||` and `if` short-circuit), a
//!   handle used twice is emitted (and evaluated) twice, no contraction into
//!   fused multiply-adds (Rust never contracts), array indices checked as
//!   `-1 < k < len` then truncated, null POINTERs give
//!   `STATUS_POINTER_UNSET`, loop caps and `error(status)` as specified, and
//!   `error_instance` set to the failing instance.
//!
//! # Math built-ins
//!
//! [`crate::math`] uses Rust's `f64` methods, which on every supported
//! target are calls of the C library's `exp`, `log`, `log10`, `pow`, `sin`,
//! `cos`, `tan`, `sinh`, `cosh`, `tanh`, `asin`, `acos`, `atan`, `atan2`,
//! `expm1` and `log1p`, or exact operations (`sqrt`, `fabs`, `floor`,
//! `ceil`, `fmod`). The generated code declares those C functions itself and
//! calls them, so both sides run the same machine code at run time. The crate
//! is `#![no_builtins]`: otherwise LLVM would constant-fold such calls with
//! the compiler's own libm and rewrite `pow(x, 2.0)` into `x * x`, which can
//! differ in the last bit. `fmin` / `fmax` are written out as comparisons
//! (a NaN operand is ignored; of two equal operands, such as `0.0` and
//! `-0.0`, the first is returned), which is what `f64::min` / `f64::max`
//! compile to in [`crate::math`] on x86-64; LLVM's constant folding of the
//! `minnum` intrinsic would instead prefer `-0.0`. `exprelr` is the same
//! formula as in [`crate::math`].
//!
//! `erf` and `erfc` are the exception: [`crate::math`] takes them from the
//! `libm` crate, which the generated code cannot depend on, and whose
//! results differ from the C library's in the last bit for a few percent of
//! arguments. The generated code calls the C library's `erf` / `erfc` (what
//! NEURON's generated C calls), so those two agree with the interpreter to
//! one ulp, not bit for bit, until [`crate::math`] also uses the C library.
//!
//! # Names
//!
//! NMODL names never become Rust identifiers on their own: every generated
//! identifier is a fixed prefix plus the IR handle's index (`m0_f3_`,
//! `l7_`, `a1_`), followed by the NMODL name reduced to `[A-Za-z0-9_]` for
//! readability only. Two identifiers can therefore never collide, and no
//! identifier is a keyword (`type`, `fn`, `loop`, … become `l3_type`).
//! Names in the metadata are emitted as escaped byte strings.
//!
//! # Shape of the output
//!
//! A preamble (ABI structs, fingerprint, C math declarations, a generic
//! context struct `Cx` holding the pack's pointers, small helpers), then per
//! mechanism `k`: its context type `Cx{k}`, one Rust function per IR
//! FUNCTION/PROCEDURE (`fn(cx, instance, args…) -> Result<f64, i32>`, the
//! `Err` being a status), one body function and one `extern "C"` wrapper per
//! kernel, and its metadata statics; finally the table and the entry symbol.
//! Expressions are written inline (`(l0_x / (exp((l0_x / l1_y)) -
//! 1.0f64))`), except those nested more than `MAX_INLINE_DEPTH` deep, which
//! become a block of `let`s in evaluation order (rustc's parser overflows on
//! a few thousand nested parentheses).
//!
//! `nrnivmodl-rs` builds the same code split for incremental builds: the
//! preamble's helpers as a support crate ([`emit_support`]), each
//! mechanism's kernels and lane bodies as units that use it
//! ([`emit_units`]), and the metadata and table as one more unit
//! ([`emit_table`]).

use std::fmt::Write as _;

use crate::ir::*;
use crate::valid::ValidModule;
use runtime::{abi, MechanismSpec};

mod lanes;

/// One mechanism of a library: its validated kernels and the runtime
/// metadata the lowering produced for it.
#[derive(Clone, Copy, Debug)]
pub struct LibraryEntry<'a> {
    /// The kernels and functions.
    pub module: &'a ValidModule,
    /// The metadata (name, kind, flags, fields, globals, ions, POINTERs).
    /// Its `fields` and `globals` must match `module`'s layout one to one
    /// (same names and array lengths), its ions and POINTERs likewise in
    /// number; `kernels`, `keepalive` and `library` are ignored.
    pub spec: &'a MechanismSpec,
    /// Stored in `NrnMechanism::source_fingerprint` (a hash of the .mod
    /// source; 0 when unknown).
    pub source_fingerprint: u64,
}

/// Why no source was emitted: the metadata does not describe the module, a
/// name cannot be stored as a C string, or two mechanisms share a name.
/// These are bugs of the caller (the lowering), never of the .mod file.
#[derive(Clone, Debug, PartialEq)]
pub struct EmitError {
    /// The mechanism concerned.
    pub mechanism: String,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for EmitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot emit Rust for mechanism `{}`: {}",
            self.mechanism, self.reason
        )
    }
}

impl std::error::Error for EmitError {}

/// Emits a library holding one mechanism (`source_fingerprint` 0). Runs at
/// build time; touches nothing but the returned string.
pub fn emit(module: &ValidModule, spec: &MechanismSpec) -> Result<String, EmitError> {
    emit_library(&[LibraryEntry {
        module,
        spec,
        source_fingerprint: 0,
    }])
}

/// Emits the source of one `cdylib` holding every mechanism of `entries`, in
/// order, behind the entry symbol `nrnrs_mechanism_table`. Compile it with
/// `rustc --crate-type cdylib --edition 2021 -C opt-level=3`. Runs at build
/// time; touches nothing but the returned string.
pub fn emit_library(entries: &[LibraryEntry]) -> Result<String, EmitError> {
    emit_library_with_entry(entries, "nrnrs_mechanism_table")
}

/// [`emit_library`] with another name for the entry symbol: for a library
/// linked into a program rather than loaded (the `mechanisms` crate's
/// built-ins), where the plugin entry's name would only invite confusion.
/// `entry_symbol` must be an identifier ([`is_identifier`]).
pub fn emit_library_with_entry(
    entries: &[LibraryEntry],
    entry_symbol: &str,
) -> Result<String, EmitError> {
    if !is_identifier(entry_symbol) {
        return Err(EmitError {
            mechanism: entries
                .first()
                .map_or(String::new(), |e| e.spec.name.clone()),
            reason: format!("the entry symbol `{entry_symbol}` is not an identifier"),
        });
    }
    for (k, e) in entries.iter().enumerate() {
        check_entry(e)?;
        if entries[..k].iter().any(|o| o.spec.name == e.spec.name) {
            return Err(EmitError {
                mechanism: e.spec.name.clone(),
                reason: "two mechanisms of one library have this name".into(),
            });
        }
    }
    let mut out = Out::default();
    preamble(&mut out, Part::Library);
    for (k, e) in entries.iter().enumerate() {
        Mech {
            vm: e.module,
            k,
            symbol_prefix: None,
        }
        .emit(&mut out);
        metadata(&mut out, k, e);
    }
    table(
        &mut out,
        entries,
        &|k, phase| format!("m{k}_k_{phase}"),
        Entry::Static(entry_symbol),
    );
    Ok(out.text)
}

/// Where a stretch of generated lines came from, for reporting a `rustc`
/// error in generated code against the .mod file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// The fixed declarations and helpers, the metadata or the table: code
    /// that comes from no particular .mod block.
    Support,
    /// An IR FUNCTION / PROCEDURE, by its IR name (`rates`, or a hidden
    /// helper such as `#deriv_states` or `#f_rates`).
    Function(String),
    /// A kernel of this phase.
    Kernel(Phase),
}

/// Part of one mechanism's kernels as a separately compiled unit: a library
/// crate whose only exported symbols are kernels, named
/// [`kernel_symbol`]`(prefix, phase)`, or (a lanes unit) the lane runners
/// those kernels call. Compile it with `rustc --crate-type lib --emit obj
/// --edition 2021 -C opt-level=3 -C panic=abort -C codegen-units=1`. The
/// code uses nothing of `core` or `std` that is not inlined (the `f64`
/// methods it calls compile to instructions), so the object references only
/// the C library's math functions (and, from a kernels unit, its lanes
/// unit's runners); linking with undefined symbols forbidden checks that.
/// [`emit_table`] emits the unit that links such objects into one library.
#[derive(Clone, Debug)]
pub struct Unit {
    /// Whether this is the lanes unit of its mechanism (see [`emit_units`]).
    pub lanes: bool,
    /// The Rust source.
    pub source: String,
    /// `(first line, origin)` for each stretch of `source`, ordered by line
    /// (1-based, as `rustc` counts).
    pub origins: Vec<(u32, Origin)>,
}

impl Unit {
    /// What generated line `line` (1-based) came from.
    pub fn origin_of(&self, line: u32) -> &Origin {
        self.origins
            .iter()
            .take_while(|(first, _)| *first <= line)
            .last()
            .map(|(_, o)| o)
            .unwrap_or(&Origin::Support)
    }
}

/// The exported name of the kernel of `phase` in a unit emitted with
/// `symbol_prefix`.
pub fn kernel_symbol(symbol_prefix: &str, phase: Phase) -> String {
    format!("{symbol_prefix}_k_{}", phase_name(phase))
}

/// The exported name of the lane runner of `phase` in a lanes unit emitted
/// with `symbol_prefix`: `extern "C" fn(pack, i, n) -> u32` runs groups of
/// four instances from `i` while the lanes can, and returns where
/// it stopped (a group the scalar body must run, or fewer than a group
/// before `n`).
pub fn lane_runner_symbol(symbol_prefix: &str, phase: Phase) -> String {
    format!("{symbol_prefix}_g_{}", phase_name(phase))
}

/// Emits the kernels of `module` as the units of one mechanism, exporting
/// them as [`kernel_symbol`]`(symbol_prefix, phase)`. The mechanism's source
/// fingerprint is not in them: the table reads it from the `u64` symbol
/// [`fingerprint_symbol`]`(symbol_prefix)`, which the builder defines in an
/// object of its own, so that an edit which changes no code (a comment)
/// recompiles no unit.
///
/// The first unit holds the kernels. When some per-step kernel can run four
/// instances at a time, a second unit (`lanes`) holds those lane bodies
/// behind [`lane_runner_symbol`]s, which the kernels call: the two compile
/// in parallel, and both must be linked. Each source depends on `module`
/// and `symbol_prefix` only (not on the .mod file's name, location or
/// comments), so a content hash of it is a sound cache key. Runs at build
/// time; touches nothing but the returned value.
///
/// `symbol_prefix` must be an identifier (`[A-Za-z_][A-Za-z0-9_]*`) unique
/// among the units linked together; otherwise an [`EmitError`].
pub fn emit_units(module: &ValidModule, symbol_prefix: &str) -> Result<Vec<Unit>, EmitError> {
    check_prefix(&module.module().name, symbol_prefix)?;
    let mech = Mech {
        vm: module,
        k: 0,
        symbol_prefix: Some(symbol_prefix),
    };
    let mut out = Out::default();
    out.mark(Origin::Support);
    unit_header(&mut out);
    mech.emit(&mut out);
    let mut units = vec![Unit {
        lanes: false,
        source: out.text,
        origins: out.origins,
    }];
    if module.module().kernels.iter().any(has_lanes) {
        let mut out = Out::default();
        out.mark(Origin::Support);
        unit_header(&mut out);
        mech.emit_lanes(&mut out);
        units.push(Unit {
            lanes: true,
            source: out.text,
            origins: out.origins,
        });
    }
    Ok(units)
}

/// The crate name of [`emit_support`]'s source, which units refer to.
pub const SUPPORT_CRATE: &str = "nrnrs_support";

/// Emits the library crate every [`emit_units`] unit uses: the ABI
/// declarations, the context type, the C math functions, `exp` and the lane
/// helpers, all public (the units' code is inlined from them). Compile it
/// once, with the units' flags, as `rustc --crate-type rlib --crate-name`
/// [`SUPPORT_CRATE`] `--emit obj=…,metadata=…`, pass the metadata to each
/// unit's `rustc` as `--extern`, and link its object with the units'.
/// Compiling what every unit shares once saves each unit's `rustc` about a
/// third of its time. Runs at build time; touches nothing but the returned
/// string.
pub fn emit_support() -> String {
    let mut out = Out::default();
    preamble(&mut out, Part::Support);
    publish(&out.text)
}

/// The start of a unit: it uses [`emit_support`]'s crate.
fn unit_header(out: &mut Out) {
    out.raw(PREAMBLE_HEAD);
    let _ = writeln!(
        out.text,
        "extern crate {SUPPORT_CRATE};\nuse {SUPPORT_CRATE}::*;"
    );
}

/// `src` (preamble text) with every item, struct field and method made
/// `pub`, for [`emit_support`]: top-level items, items of the top-level
/// modules and the methods of `impl` blocks (four spaces in), and fields
/// of the top-level structs. The preamble is written for this: one item
/// per line start, and `struct`s opened and closed on lines of their own.
fn publish(src: &str) -> String {
    const ITEMS: [&str; 9] = [
        "fn ",
        "unsafe fn ",
        "const fn ",
        "static ",
        "struct ",
        "type ",
        "mod ",
        "enum ",
        "use lane::",
    ];
    let mut out = String::with_capacity(src.len() + 4096);
    let mut in_struct = false;
    for line in src.lines() {
        let body = line.trim_start();
        let indent = line.len() - body.len();
        let is_item = ITEMS.iter().any(|k| body.starts_with(k))
            || (body.starts_with("const ") && !body.starts_with("const _"));
        let is_field = in_struct
            && indent == 4
            && body
                .split_once(':')
                .is_some_and(|(name, _)| is_identifier(name));
        if (is_item && (indent == 0 || indent == 4)) || is_field {
            out.push_str(&line[..indent]);
            out.push_str("pub ");
            out.push_str(body);
        } else {
            out.push_str(line);
        }
        out.push('\n');
        let declared = body.strip_prefix("pub ").unwrap_or(body);
        if indent == 0 && declared.starts_with("struct ") && body.ends_with('{') {
            in_struct = true;
        } else if indent == 0 && body.starts_with('}') {
            in_struct = false;
        }
    }
    out
}

/// Whether `kernel` gets a lane body (see [`lanes`]): a per-step,
/// per-instance kernel whose statements the lanes can run.
fn has_lanes(kernel: &Kernel) -> bool {
    kernel.phase.shape() == Shape::PerInstance
        && kernel.phase.every_step()
        && lanes::supported(&kernel.body)
}

/// The exported name of the source fingerprint of the mechanism whose
/// units were emitted with `symbol_prefix`.
pub fn fingerprint_symbol(symbol_prefix: &str) -> String {
    format!("{symbol_prefix}_source_fingerprint")
}

/// One mechanism of a library whose kernels live in a separate [`Unit`].
#[derive(Clone, Copy, Debug)]
pub struct TableEntry<'a> {
    /// The mechanism (its module tells which kernels exist).
    pub entry: LibraryEntry<'a>,
    /// The `symbol_prefix` its unit was emitted with.
    pub symbol_prefix: &'a str,
}

/// Emits the unit holding the metadata of every mechanism of `entries`, in
/// order, and the entry symbol `nrnrs_mechanism_table`; the kernels and the
/// source fingerprints are declared `extern "C"` and come from the
/// [`emit_units`] objects and the fingerprints' object linked with it
/// (`entry.source_fingerprint` is not
/// used: the table depends on no .mod text that the metadata does not
/// show). Compile it like a unit (`--emit obj`), or as the `cdylib` root
/// with the units' objects as link arguments. Runs at build time; touches
/// nothing but the returned string.
pub fn emit_table(entries: &[TableEntry]) -> Result<String, EmitError> {
    for (k, t) in entries.iter().enumerate() {
        check_entry(&t.entry)?;
        check_prefix(&t.entry.spec.name, t.symbol_prefix)?;
        if entries[..k]
            .iter()
            .any(|o| o.entry.spec.name == t.entry.spec.name)
        {
            return Err(EmitError {
                mechanism: t.entry.spec.name.clone(),
                reason: "two mechanisms of one library have this name".into(),
            });
        }
        if entries[..k]
            .iter()
            .any(|o| o.symbol_prefix == t.symbol_prefix)
        {
            return Err(EmitError {
                mechanism: t.entry.spec.name.clone(),
                reason: format!("the symbol prefix `{}` is used twice", t.symbol_prefix),
            });
        }
    }
    let mut out = Out::default();
    preamble(&mut out, Part::Table);
    out.line("");
    out.open("extern \"C\" {");
    for t in entries {
        for kernel in &t.entry.module.module().kernels {
            let params = if kernel.phase.shape() == Shape::Event {
                "pack: *mut NrnMechPack, instance: u32, w: *mut f64, nw: u32, flag: f64"
            } else {
                "pack: *mut NrnMechPack"
            };
            out.line(&format!(
                "fn {}({params}) -> i32;",
                kernel_symbol(t.symbol_prefix, kernel.phase)
            ));
        }
    }
    for t in entries {
        out.line(&format!(
            "static {}: u64;",
            fingerprint_symbol(t.symbol_prefix)
        ));
    }
    out.close("}");
    let plain: Vec<LibraryEntry> = entries
        .iter()
        .map(|t| LibraryEntry {
            source_fingerprint: 0,
            ..t.entry
        })
        .collect();
    for (k, e) in plain.iter().enumerate() {
        metadata(&mut out, k, e);
    }
    let fingerprints: Vec<String> = entries
        .iter()
        .map(|t| fingerprint_symbol(t.symbol_prefix))
        .collect();
    table(
        &mut out,
        &plain,
        &|k, phase| format!("{}_k_{phase}", entries[k].symbol_prefix),
        Entry::Filled(&fingerprints),
    );
    Ok(out.text)
}

/// Whether `s` is an ASCII identifier, `[A-Za-z_][A-Za-z0-9_]*` (what a
/// symbol prefix must be).
pub fn is_identifier(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks that `prefix` is an identifier.
fn check_prefix(mechanism: &str, prefix: &str) -> Result<(), EmitError> {
    if is_identifier(prefix) {
        Ok(())
    } else {
        Err(EmitError {
            mechanism: mechanism.to_string(),
            reason: format!("the symbol prefix {prefix:?} is not an identifier"),
        })
    }
}

/// Checks that `e.spec` describes `e.module`'s layout and that every name
/// can be a C string.
fn check_entry(e: &LibraryEntry) -> Result<(), EmitError> {
    let spec = e.spec;
    let layout = &e.module.module().layout;
    let err = |reason: String| {
        Err(EmitError {
            mechanism: spec.name.clone(),
            reason,
        })
    };
    let pairs = |what: &str, specs: &[runtime::FieldSpec], decls: Vec<(&str, u32)>| {
        if specs.len() != decls.len() {
            return Err(format!(
                "the metadata has {} {what}, the kernels' layout {}",
                specs.len(),
                decls.len()
            ));
        }
        for (s, (name, len)) in specs.iter().zip(decls) {
            if s.name != name || s.array_len != len {
                return Err(format!(
                    "{what}: metadata `{}[{}]` but layout `{name}[{len}]`",
                    s.name, s.array_len
                ));
            }
        }
        Ok(())
    };
    let fields = layout
        .fields
        .iter()
        .map(|(_, f)| (f.name.as_str(), f.array_len))
        .collect();
    if let Err(r) = pairs("fields", &spec.fields, fields) {
        return err(r);
    }
    let globals = layout
        .globals
        .iter()
        .map(|(_, g)| (g.name.as_str(), g.array_len))
        .collect();
    if let Err(r) = pairs("globals", &spec.globals, globals) {
        return err(r);
    }
    if spec.ions.len() != layout.ions.len() {
        return err(format!(
            "the metadata has {} ions, the layout {}",
            spec.ions.len(),
            layout.ions.len()
        ));
    }
    if spec.pointers.len() != layout.pointers.len() {
        return err(format!(
            "the metadata has {} POINTERs, the layout {}",
            spec.pointers.len(),
            layout.pointers.len()
        ));
    }
    let names = std::iter::once(&spec.name)
        .chain(spec.fields.iter().flat_map(|f| [&f.name, &f.units]))
        .chain(spec.globals.iter().flat_map(|f| [&f.name, &f.units]))
        .chain(spec.ions.iter().map(|i| &i.name))
        .chain(spec.pointers.iter());
    for n in names {
        if n.contains('\0') {
            return err(format!("the name {n:?} contains a NUL byte"));
        }
    }
    Ok(())
}

/// The output text with indentation, and where each part came from.
#[derive(Default)]
struct Out {
    text: String,
    indent: usize,
    /// The origins of the text so far: `(first line, origin)`, by line.
    origins: Vec<(u32, Origin)>,
}

impl Out {
    /// Appends one line at the current indentation.
    fn line(&mut self, s: &str) {
        if !s.is_empty() {
            for _ in 0..self.indent {
                self.text.push_str("    ");
            }
        }
        self.text.push_str(s);
        self.text.push('\n');
    }

    /// Appends a block of lines verbatim (used for the fixed preamble).
    fn raw(&mut self, s: &str) {
        self.text.push_str(s);
    }

    /// Records that the text from the next line on comes from `origin`.
    fn mark(&mut self, origin: Origin) {
        let line = self.text.bytes().filter(|&b| b == b'\n').count() as u32 + 1;
        self.origins.push((line, origin));
    }

    /// Opens a brace block.
    fn open(&mut self, s: &str) {
        self.line(s);
        self.indent += 1;
    }

    /// Closes a brace block with `s` (normally `}`).
    fn close(&mut self, s: &str) {
        self.indent -= 1;
        self.line(s);
    }
}

/// An NMODL name reduced to an identifier tail: `[A-Za-z0-9_]`, at most 32
/// characters. Only for readability: uniqueness comes from the index prefix.
fn tail(name: &str) -> String {
    name.chars()
        .take(32)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A comment-safe rendering of an NMODL name.
fn comment(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// An f64 literal that evaluates to exactly `x` (bits included).
fn lit(x: f64) -> String {
    if x.is_nan() {
        return format!("f64::from_bits({:#018x})", x.to_bits());
    }
    if x.is_infinite() {
        return if x > 0.0 {
            "f64::INFINITY".into()
        } else {
            "f64::NEG_INFINITY".into()
        };
    }
    let s = format!("{x:?}");
    if s.parse::<f64>().map(f64::to_bits) != Ok(x.to_bits()) {
        return format!("f64::from_bits({:#018x})", x.to_bits());
    }
    if x.is_sign_negative() {
        format!("({s}f64)")
    } else {
        format!("{s}f64")
    }
}

/// A C string literal holding `s` (which has no NUL byte), as a C string
/// pointer expression. (`c"…".as_ptr()` type-checks about twice as fast
/// as a byte string cast to a pointer, which matters for the table unit
/// that is recompiled on every rebuild.)
fn cstr(s: &str) -> String {
    let mut o = String::from("c\"");
    for b in s.bytes() {
        match b {
            b'"' => o.push_str("\\\""),
            b'\\' => o.push_str("\\\\"),
            0x20..=0x7e => o.push(b as char),
            _ => {
                let _ = write!(o, "\\x{b:02x}");
            }
        }
    }
    o.push_str("\".as_ptr()");
    o
}

/// Whether resolving `place` evaluates an index or runs a check (so that it
/// must happen before the stored value is evaluated).
fn checked(place: &Place) -> bool {
    match place {
        Place::Field { index, .. } | Place::Global { index, .. } => index.is_some(),
        Place::LocalArray { .. } | Place::Pointer(_) | Place::Weight(_) => true,
        Place::NodeV
        | Place::NodeArea
        | Place::NodeDiam
        | Place::Ion { .. }
        | Place::IonValence(_) => false,
    }
}

/// The Rust name of a kernel phase, used in generated identifiers.
fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Init => "init",
        Phase::Cur => "cur",
        Phase::State => "state",
        Phase::TableCheck => "table_check",
        Phase::NetReceive => "net_receive",
        Phase::NetReceiveInit => "net_receive_init",
        Phase::BeforeInitial => "before_initial",
        Phase::AfterInitial => "after_initial",
        Phase::BeforeBreakpoint => "before_breakpoint",
        Phase::AfterSolve => "after_solve",
        Phase::BeforeStep => "before_step",
        Phase::Constructor => "constructor",
        Phase::Destructor => "destructor",
    }
}

/// The fixed part of every library: ABI declarations, the fingerprint,
/// the C math functions and the helpers kernels use.
fn preamble(out: &mut Out, part: Part) {
    out.raw(PREAMBLE_HEAD);
    out.raw(PREAMBLE_USES);
    let _ = writeln!(
        out.text,
        "const ABI_MAJOR: u32 = {};\nconst ABI_MINOR: u32 = {};",
        abi::ABI_MAJOR,
        abi::ABI_MINOR
    );
    out.raw(PREAMBLE_ABI);
    // The declarations are checked once per library, where the table is;
    // the units are emitted with the same text (and skip the ~10 ms the
    // check costs rustc).
    if matches!(part, Part::Library | Part::Table) {
        out.raw(PREAMBLE_FINGERPRINT);
        let _ = writeln!(
            out.text,
            "const _: () = assert!(\n    LAYOUT_FINGERPRINT == {:#018x},\n    \"the ABI declarations above differ from the runtime's: a bug of the Rust back end\"\n);",
            abi::LAYOUT_FINGERPRINT
        );
    }
    match part {
        Part::Library => {
            out.raw(PREAMBLE_HELPERS);
            out.raw(&preamble_exp());
            out.raw(lanes::PREAMBLE);
            out.raw(PREAMBLE_SY);
        }
        Part::Support => {
            out.raw(PREAMBLE_HELPERS);
            out.raw(&preamble_exp());
            out.raw(lanes::PREAMBLE);
        }
        Part::Table => {
            out.raw(PREAMBLE_SY);
            out.raw(PREAMBLE_CPU_CHECK);
        }
    }
}

/// Which source [`preamble`] starts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    /// A whole library ([`emit_library`]).
    Library,
    /// What the units share ([`emit_support`]).
    Support,
    /// The metadata and table of a split library ([`emit_table`]).
    Table,
}

const PREAMBLE_HEAD: &str = r#"// Generated by nrnivmodl-rs (codegen::rust) from the kernel IR. Do not edit.
//
// SAFETY (whole file): every `unsafe` operation dereferences pointers of the
// `NrnMechPack` the runtime passes to a kernel. The runtime guarantees that
// each array holds the number of elements the pack states (columns at least
// `count`, node arrays `n_nodes`, ion columns `n_instances`, with every
// index array entry in range). Kernels check the pack's counts against the
// layout they were compiled for before reading anything else, check every
// computed array index and every POINTER for null, and never write past
// `count`.
#![no_builtins]
#![allow(warnings)]
"#;

const PREAMBLE_USES: &str = r#"
use core::ffi::{c_char, c_void};
use core::mem::{offset_of, size_of};

"#;

const PREAMBLE_ABI: &str = r#"const STATUS_OK: i32 = 0;
const STATUS_POINTER_UNSET: i32 = 2;
const STATUS_MECHANISM_ERROR: i32 = 4;

type NrnKernelFn = unsafe extern "C" fn(pack: *mut NrnMechPack) -> i32;
type NrnNetReceiveFn = unsafe extern "C" fn(
    pack: *mut NrnMechPack,
    instance: u32,
    weights: *mut f64,
    n_weights: u32,
    flag: f64,
) -> i32;

#[repr(C)]
struct NrnFieldInfo {
    name: *const c_char,
    units: *const c_char,
    kind: u32,
    array_len: u32,
    default_value: f64,
    range_lo: f64,
    range_hi: f64,
}

#[repr(C)]
struct NrnIonInfo {
    name: *const c_char,
    valence: f64,
    flags: u32,
}

#[repr(C)]
struct NrnKernels {
    init: Option<NrnKernelFn>,
    cur: Option<NrnKernelFn>,
    state: Option<NrnKernelFn>,
    table_check: Option<NrnKernelFn>,
    net_receive: Option<NrnNetReceiveFn>,
    net_receive_init: Option<NrnNetReceiveFn>,
    before_initial: Option<NrnKernelFn>,
    after_initial: Option<NrnKernelFn>,
    before_breakpoint: Option<NrnKernelFn>,
    after_solve: Option<NrnKernelFn>,
    before_step: Option<NrnKernelFn>,
    constructor: Option<NrnKernelFn>,
    destructor: Option<NrnKernelFn>,
}

#[repr(C)]
struct NrnMechanism {
    name: *const c_char,
    kind: u32,
    flags: u32,
    fields: *const NrnFieldInfo,
    n_fields: u32,
    globals: *const NrnFieldInfo,
    n_globals: u32,
    ions: *const NrnIonInfo,
    n_ions: u32,
    pointer_names: *const *const c_char,
    n_pointers: u32,
    n_weights: u32,
    source_fingerprint: u64,
    kernels: NrnKernels,
}

#[repr(C)]
pub struct NrnMechanismTable {
    abi_major: u32,
    abi_minor: u32,
    layout_fingerprint: u64,
    mechanisms: *const NrnMechanism,
    n_mechanisms: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct NrnIonPack {
    index: *const u32,
    erev: *mut f64,
    conc_i: *mut f64,
    conc_o: *mut f64,
    cur: *mut f64,
    dcurdv: *mut f64,
    valence: f64,
    n_instances: u32,
    reserved: u32,
}

#[repr(C)]
struct NrnHostApi {
    ctx: *mut c_void,
    net_send: unsafe extern "C" fn(*mut c_void, u32, u32, *mut f64, f64, f64),
    net_event: unsafe extern "C" fn(*mut c_void, u32, u32, f64),
    net_move: unsafe extern "C" fn(*mut c_void, u32, u32, f64),
    random_uniform: unsafe extern "C" fn(*mut c_void) -> f64,
    set_seed: unsafe extern "C" fn(*mut c_void, f64),
}

#[repr(C)]
pub struct NrnMechPack {
    struct_size: u32,
    mech_id: u32,
    count: u32,
    secondorder: i32,
    t: f64,
    dt: f64,
    celsius: f64,
    node_index: *const u32,
    vec_v: *mut f64,
    vec_rhs: *mut f64,
    vec_d: *mut f64,
    vec_area: *const f64,
    vec_diam: *const f64,
    fields: *const *mut f64,
    globals: *mut f64,
    ions: *const NrnIonPack,
    pointers: *const *const *mut f64,
    host: *const NrnHostApi,
    error_instance: u32,
    reserved: u32,
    n_nodes: u32,
    n_fields: u32,
    n_globals: u32,
    n_ions: u32,
    n_pointers: u32,
    padded_count: u32,
}
"#;

const PREAMBLE_FINGERPRINT: &str = r#"
// The runtime's layout fingerprint, recomputed from the declarations above.
const fn fnv1a(values: &[u64]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < values.len() {
        let mut v = values[i];
        let mut b = 0;
        while b < 8 {
            hash ^= v & 0xff;
            hash = hash.wrapping_mul(0x0100_0000_01b3);
            v >>= 8;
            b += 1;
        }
        i += 1;
    }
    hash
}

macro_rules! layout {
    ($t:ty; $($f:ident),*) => {
        [size_of::<$t>() as u64, $(offset_of!($t, $f) as u64),*]
    };
}

const LAYOUT_FINGERPRINT: u64 = {
    let field =
        layout!(NrnFieldInfo; name, units, kind, array_len, default_value, range_lo, range_hi);
    let ion = layout!(NrnIonInfo; name, valence, flags);
    let kernels = layout!(NrnKernels; init, cur, state, table_check, net_receive, net_receive_init,
        before_initial, after_initial, before_breakpoint, after_solve, before_step, constructor, destructor);
    let mech = layout!(NrnMechanism; name, kind, flags, fields, n_fields, globals, n_globals, ions,
        n_ions, pointer_names, n_pointers, n_weights, source_fingerprint, kernels);
    let table = layout!(NrnMechanismTable; abi_major, abi_minor, layout_fingerprint, mechanisms, n_mechanisms);
    let ionpack = layout!(NrnIonPack; index, erev, conc_i, conc_o, cur, dcurdv, valence,
        n_instances, reserved);
    let host = layout!(NrnHostApi; ctx, net_send, net_event, net_move, random_uniform, set_seed);
    let pack = layout!(NrnMechPack; struct_size, mech_id, count, secondorder, t, dt, celsius,
        node_index, vec_v, vec_rhs, vec_d, vec_area, vec_diam, fields, globals, ions, pointers, host,
        error_instance, reserved, n_nodes, n_fields, n_globals, n_ions, n_pointers, padded_count);
    let parts = [
        fnv1a(&field),
        fnv1a(&ion),
        fnv1a(&kernels),
        fnv1a(&mech),
        fnv1a(&table),
        fnv1a(&ionpack),
        fnv1a(&host),
        fnv1a(&pack),
        ABI_MAJOR as u64,
        ABI_MINOR as u64,
    ];
    fnv1a(&parts)
};
"#;

/// `exp`: the C library's, or, when the source is compiled with FMA
/// (`-C target-feature=+fma`, which [`EXP_TARGET_FEATURE`] names; callers
/// pass it only where [`crate::math::table_exp_matches_libm`] holds), the
/// same computation inline, as [`crate::math::exp_table_driven`] and the
/// JIT do it.
fn preamble_exp() -> String {
    use crate::math::exp_consts::*;
    let mut table = String::new();
    for pair in crate::math::EXP_TABLE.chunks(2) {
        let _ = writeln!(table, "    {:#018x}, {:#018x},", pair[0], pair[1]);
    }
    let c = |x: f64| format!("f64::from_bits({:#018x})", x.to_bits());
    format!(
        r#"
/// e^x as the C library computes it. Compiled with FMA, the C library's
/// table-driven algorithm (glibc 2.28 and later) inline, which the build
/// checked gives the C library's results bit for bit; else a call.
#[inline(always)]
unsafe fn exp(x: f64) -> f64 {{
    #[cfg(all(target_arch = "x86_64", target_feature = "fma"))]
    {{
        if exp_inside(x) {{
            return exp_table_driven(x);
        }}
    }}
    cm::exp(x)
}}

/// Whether `x` is in the range of [`exp_table_driven`].
#[cfg(all(target_arch = "x86_64", target_feature = "fma"))]
#[inline(always)]
fn exp_inside(x: f64) -> bool {{
    ((x.to_bits() >> 52) & 0x7ff).wrapping_sub(EXP_TOP_MIN) <= EXP_TOP_SPAN
}}

#[cfg(all(target_arch = "x86_64", target_feature = "fma"))]
#[inline(always)]
fn fma(a: f64, b: f64, c: f64) -> f64 {{
    use core::arch::x86_64::{{_mm_cvtsd_f64, _mm_fmadd_sd, _mm_set_sd}};
    // SAFETY: the unit is compiled with FMA (the cfg above).
    unsafe {{ _mm_cvtsd_f64(_mm_fmadd_sd(_mm_set_sd(a), _mm_set_sd(b), _mm_set_sd(c))) }}
}}

const EXP_INV_LN2_N: f64 = {inv};
const EXP_SHIFT: f64 = {shift};
const EXP_NEG_LN2_HI_N: f64 = {hi};
const EXP_NEG_LN2_LO_N: f64 = {lo};
const EXP_C2: f64 = {c2};
const EXP_C3: f64 = {c3};
const EXP_C4: f64 = {c4};
const EXP_C5: f64 = {c5};
const EXP_TOP_MIN: u64 = {TOP_MIN:#x};
const EXP_TOP_SPAN: u64 = {TOP_SPAN:#x};

#[cfg(all(target_arch = "x86_64", target_feature = "fma"))]
#[inline(always)]
fn exp_table_driven(x: f64) -> f64 {{
    let kd = fma(x, EXP_INV_LN2_N, EXP_SHIFT);
    let ki = kd.to_bits();
    let kd = kd - EXP_SHIFT;
    let r = fma(kd, EXP_NEG_LN2_HI_N, x);
    let r = fma(kd, EXP_NEG_LN2_LO_N, r);
    let idx = 2 * (ki & 127) as usize;
    let tail = f64::from_bits(EXP_TABLE[idx]);
    let sbits = EXP_TABLE[idx + 1].wrapping_add(ki << 45);
    let r2 = r * r;
    let low = fma(r, EXP_C3, EXP_C2);
    let high = fma(r, EXP_C5, EXP_C4);
    let tmp = fma(r2 * r2, high, fma(low, r2, tail + r));
    let scale = f64::from_bits(sbits);
    fma(scale, tmp, scale)
}}

#[cfg(all(target_arch = "x86_64", target_feature = "fma"))]
static EXP_TABLE: [u64; 256] = [
{table}];
"#,
        inv = c(INV_LN2_N),
        shift = c(SHIFT),
        hi = c(NEG_LN2_HI_N),
        lo = c(NEG_LN2_LO_N),
        c2 = c(C2),
        c3 = c(C3),
        c4 = c(C4),
        c5 = c(C5),
    )
}

/// The `rustc` flag that compiles units with FMA, and so with the inline
/// `exp` (see [`preamble_exp`]), and with AVX2, so that lane bodies
/// ([`lanes`]) use 256-bit vectors for integers too; a library built with it
/// refuses to load on a processor without them ([`TABLE_FMA_CFG`]).
pub const EXP_TARGET_FEATURE: &str = "target-feature=+fma,+avx2";

/// Whether code compiled with [`EXP_TARGET_FEATURE`] runs here and gives
/// the C library's bits: an x86-64 processor with FMA and AVX2, whose C
/// library `exp` the inline one matches bit for bit
/// ([`crate::math::table_exp_matches_libm`]), as on the machine NEURON's
/// own builds run on. Otherwise why not. Cheap after the first call.
pub fn fma_code_runs_here() -> Result<(), &'static str> {
    #[cfg(target_arch = "x86_64")]
    {
        if !(std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("avx2"))
        {
            return Err("they were compiled with FMA and AVX2, which this processor lacks");
        }
        if !crate::math::table_exp_matches_libm() {
            return Err(
                "they were compiled with an inline exp that this C library's exp does not match",
            );
        }
        Ok(())
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Err("they were compiled with FMA and AVX2, which only x86-64 processors have")
    }
}

/// The `--cfg` under which the table unit checks, before handing out the
/// table, that the processor has FMA and AVX2 (pass it with units built with
/// [`EXP_TARGET_FEATURE`]).
pub const TABLE_FMA_CFG: &str = "nrnrs_fma";

const PREAMBLE_CPU_CHECK: &str = r#"
/// Whether this processor can run units compiled with FMA and AVX2: CPUID
/// leaf 1 reports FMA, AVX and OSXSAVE, the system saves the AVX registers
/// (XCR0 bits 1 and 2), and leaf 7 reports AVX2.
#[cfg(nrnrs_fma)]
fn cpu_runs_units() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{__cpuid, __cpuid_count, _xgetbv};
        // SAFETY: CPUID leaf 1 exists on every x86-64 processor.
        let ecx = unsafe { __cpuid(1) }.ecx;
        let want = (1 << 12) | (1 << 27) | (1 << 28);
        if ecx & want != want {
            return false;
        }
        // SAFETY: OSXSAVE (checked above) means XGETBV is enabled.
        let xcr0 = unsafe { _xgetbv(0) };
        // SAFETY: leaf 7 exists where the highest leaf (leaf 0's eax) is 7
        // or more, which is checked first.
        let avx2 = unsafe { __cpuid(0) }.eax >= 7 && unsafe { __cpuid_count(7, 0) }.ebx & (1 << 5) != 0;
        xcr0 & 6 == 6 && avx2
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(not(nrnrs_fma))]
fn cpu_runs_units() -> bool {
    true
}
"#;

const PREAMBLE_HELPERS: &str = r#"
/// The C library's math functions: the same code the interpreter's
/// `f64` methods call (see codegen::rust's docs).
mod cm {
    extern "C" {
        pub fn exp(x: f64) -> f64;
        pub fn log(x: f64) -> f64;
        pub fn log10(x: f64) -> f64;
        pub fn pow(x: f64, y: f64) -> f64;
        pub fn sin(x: f64) -> f64;
        pub fn cos(x: f64) -> f64;
        pub fn tan(x: f64) -> f64;
        pub fn tanh(x: f64) -> f64;
        pub fn sinh(x: f64) -> f64;
        pub fn cosh(x: f64) -> f64;
        pub fn asin(x: f64) -> f64;
        pub fn acos(x: f64) -> f64;
        pub fn atan(x: f64) -> f64;
        pub fn atan2(y: f64, x: f64) -> f64;
        pub fn expm1(x: f64) -> f64;
        pub fn log1p(x: f64) -> f64;
        pub fn erf(x: f64) -> f64;
        pub fn erfc(x: f64) -> f64;
    }
}

/// `fmin`: a NaN operand is ignored; of equal operands the first.
#[inline(always)]
fn fmin(x: f64, y: f64) -> f64 {
    if x.is_nan() {
        y
    } else if y.is_nan() {
        x
    } else if y < x {
        y
    } else {
        x
    }
}

/// `fmax`: a NaN operand is ignored; of equal operands the first.
#[inline(always)]
fn fmax(x: f64, y: f64) -> f64 {
    if x.is_nan() {
        y
    } else if y.is_nan() {
        x
    } else if y > x {
        y
    } else {
        x
    }
}

/// `exprelr(x) = x / (exp(x) - 1)`, 1 where `1 + x == 1`.
#[inline(always)]
unsafe fn exprelr(x: f64) -> f64 {
    if 1.0 + x == 1.0 {
        1.0
    } else {
        x / cm::expm1(x)
    }
}

/// An f64 array index: `0 <= trunc(k) < len` (NaN fails), as C's `(int)`.
#[inline(always)]
fn idx(k: f64, len: u32) -> Result<usize, i32> {
    if k > -1.0 && k < len as f64 {
        Ok(k as usize)
    } else {
        Err(STATUS_MECHANISM_ERROR)
    }
}

/// Element `k` of the NET_RECEIVE weight vector, or an error past its end.
#[inline(always)]
unsafe fn weight(w: *mut f64, nw: u32, k: u32) -> Result<*mut f64, i32> {
    if k < nw {
        Ok(w.add(k as usize))
    } else {
        Err(STATUS_MECHANISM_ERROR)
    }
}

/// What a kernel call sees, read once from the pack: `NC` field columns,
/// `NI` ions and `NP` POINTERs.
struct Cx<const NC: usize, const NI: usize, const NP: usize> {
    cols: [*mut f64; NC],
    globals: *mut f64,
    node_index: *const u32,
    v: *mut f64,
    rhs: *mut f64,
    d: *mut f64,
    area: *const f64,
    diam: *const f64,
    ions: [NrnIonPack; NI],
    pointers: [*const *mut f64; NP],
    host: *const NrnHostApi,
    mech_id: u32,
    t: f64,
    dt: f64,
    celsius: f64,
    secondorder: i32,
}

impl<const NC: usize, const NI: usize, const NP: usize> Cx<NC, NI, NP> {
    /// Reads the pack, or `None` when its size or counts do not match.
    #[inline(always)]
    unsafe fn new(pack: *const NrnMechPack, n_globals: u32) -> Option<Self> {
        let p = &*pack;
        if (p.struct_size as usize) < size_of::<NrnMechPack>()
            || p.n_fields as usize != NC
            || p.n_globals != n_globals
            || p.n_ions as usize != NI
            || p.n_pointers as usize != NP
        {
            return None;
        }
        Some(Cx {
            cols: core::array::from_fn(|k| *p.fields.add(k)),
            globals: p.globals,
            node_index: p.node_index,
            v: p.vec_v,
            rhs: p.vec_rhs,
            d: p.vec_d,
            area: p.vec_area,
            diam: p.vec_diam,
            ions: core::array::from_fn(|k| *p.ions.add(k)),
            pointers: core::array::from_fn(|k| *p.pointers.add(k)),
            host: p.host,
            mech_id: p.mech_id,
            t: p.t,
            dt: p.dt,
            celsius: p.celsius,
            secondorder: p.secondorder,
        })
    }

    /// Column `c` (an index already checked against the layout).
    #[inline(always)]
    unsafe fn col(&self, c: usize) -> *mut f64 {
        *self.cols.get_unchecked(c)
    }

    /// The node of instance `i`.
    #[inline(always)]
    unsafe fn node(&self, i: usize) -> usize {
        *self.node_index.add(i) as usize
    }

    /// The row of ion `k` used by instance `i`.
    #[inline(always)]
    unsafe fn ion(&self, k: usize, i: usize) -> usize {
        *self.ions[k].index.add(i) as usize
    }

    /// The target of POINTER `k` of instance `i`, or an error when unset.
    #[inline(always)]
    unsafe fn pointer(&self, k: usize, i: usize) -> Result<*mut f64, i32> {
        let p = *self.pointers[k].add(i);
        if p.is_null() {
            Err(STATUS_POINTER_UNSET)
        } else {
            Ok(p)
        }
    }

    #[inline(always)]
    unsafe fn random(&self) -> f64 {
        let h = &*self.host;
        (h.random_uniform)(h.ctx)
    }

    #[inline(always)]
    unsafe fn net_send(&self, i: u32, w: *mut f64, delay: f64, flag: f64) {
        let h = &*self.host;
        (h.net_send)(h.ctx, self.mech_id, i, w, delay, flag)
    }

    #[inline(always)]
    unsafe fn net_event(&self, i: u32, t: f64) {
        let h = &*self.host;
        (h.net_event)(h.ctx, self.mech_id, i, t)
    }

    #[inline(always)]
    unsafe fn net_move(&self, i: u32, t: f64) {
        let h = &*self.host;
        (h.net_move)(h.ctx, self.mech_id, i, t)
    }

    #[inline(always)]
    unsafe fn set_seed(&self, seed: f64) {
        let h = &*self.host;
        (h.set_seed)(h.ctx, seed)
    }
}

/// Reports a pack that does not fit the kernel.
#[inline(never)]
unsafe fn bad_pack(pack: *mut NrnMechPack) -> i32 {
    (*pack).error_instance = u32::MAX;
    STATUS_MECHANISM_ERROR
}
"#;

const PREAMBLE_SY: &str = r#"
/// Lets statics hold raw pointers (they only point at other statics).
#[repr(transparent)]
struct Sy<T>(T);
unsafe impl<T> Sync for Sy<T> {}
"#;

/// The emitter of one mechanism's code.
struct Mech<'a> {
    vm: &'a ValidModule,
    k: usize,
    /// For a unit: the prefix of the exported kernel symbols; `None` for a
    /// whole library (kernels private, named `m{k}_k_{phase}`).
    symbol_prefix: Option<&'a str>,
}

/// Where a body sits: which extra names it has and what `return` means.
#[derive(Clone, Copy)]
enum Role {
    /// A FUNCTION / PROCEDURE with its result local.
    Function(Option<Handle<Local>>),
    /// A kernel body of this shape.
    Kernel(Shape),
}

impl Mech<'_> {
    fn module(&self) -> &Module {
        self.vm.module()
    }

    fn cx_type(&self) -> String {
        format!("Cx{}", self.k)
    }

    fn function_name(&self, h: Handle<Function>) -> String {
        let f = &self.module().functions[h];
        format!("m{}_f{}_{}", self.k, h.index(), tail(&f.name))
    }

    /// The mechanism's banner (`what` after its name), its context type
    /// and its GLOBAL slot count, which its kernels and lane bodies use.
    fn header(&self, out: &mut Out, what: &str) {
        let m = self.module();
        let layout = &m.layout;
        out.line("");
        out.line(&format!(
            "// ---- mechanism {} `{}`{what} ----",
            self.k,
            comment(&m.name)
        ));
        out.line(&format!(
            "type {} = Cx<{}, {}, {}>;",
            self.cx_type(),
            layout.n_columns(),
            layout.ions.len(),
            layout.pointers.len()
        ));
        out.line(&format!(
            "const M{}_N_GLOBALS: u32 = {};",
            self.k,
            layout.n_global_slots()
        ));
    }

    fn emit(&self, out: &mut Out) {
        let m = self.module();
        self.header(out, "");
        for (h, f) in m.functions.iter() {
            out.mark(Origin::Function(f.name.clone()));
            self.function(out, h, f);
        }
        for kernel in &m.kernels {
            out.mark(Origin::Kernel(kernel.phase));
            self.kernel(out, kernel);
        }
        out.mark(Origin::Support);
    }

    /// The lanes unit of this mechanism (see [`emit_units`]): each lane
    /// body, and its runner exported as [`lane_runner_symbol`].
    fn emit_lanes(&self, out: &mut Out) {
        let m = self.module();
        self.header(out, ": lane bodies");
        let Some(prefix) = self.symbol_prefix else {
            return;
        };
        for kernel in m.kernels.iter().filter(|k| has_lanes(k)) {
            let phase = phase_name(kernel.phase);
            out.mark(Origin::Kernel(kernel.phase));
            out.line("");
            self.lane_runner(out, kernel);
            out.line("");
            out.line("#[no_mangle]");
            out.open(&format!(
                "pub unsafe extern \"C\" fn {}(pack: *mut NrnMechPack, i: u32, n: u32) -> u32 {{",
                lane_runner_symbol(prefix, kernel.phase)
            ));
            // The kernel calling this has checked the pack already.
            out.open(&format!(
                "match {}::new(pack, M{}_N_GLOBALS) {{",
                self.cx_type(),
                self.k
            ));
            out.line(&format!("Some(cx) => m{}_g_{phase}(&cx, i, n),", self.k));
            out.line("None => i,");
            out.close("}");
            out.close("}");
        }
        out.mark(Origin::Support);
    }

    /// The lane body of `kernel` (`m{k}_v_{phase}`) and its runner
    /// `m{k}_g_{phase}(cx, i, n) -> u32`: groups of [`lanes::WIDTH`] from `i`
    /// while the lanes can; returns where it stopped.
    fn lane_runner(&self, out: &mut Out, kernel: &Kernel) {
        let phase = phase_name(kernel.phase);
        let lane_fn = format!("m{}_v_{phase}", self.k);
        lanes::emit_body(self, out, kernel, &lane_fn);
        out.line("");
        out.line("#[inline(always)]");
        out.open(&format!(
            "unsafe fn m{}_g_{phase}(cx: &{}, mut i: u32, n: u32) -> u32 {{",
            self.k,
            self.cx_type()
        ));
        out.open(&format!("while n - i >= {} {{", lanes::WIDTH));
        out.open(&format!("if !{lane_fn}(cx, i) {{"));
        out.line("break;");
        out.close("}");
        out.line(&format!("i += {};", lanes::WIDTH));
        out.close("}");
        out.line("i");
        out.close("}");
    }

    fn function(&self, out: &mut Out, h: Handle<Function>, f: &Function) {
        out.line("");
        let kind = if f.result.is_some() {
            "FUNCTION"
        } else {
            "PROCEDURE"
        };
        let params: Vec<String> = f
            .params
            .iter()
            .map(|p| comment(&f.body.locals[*p].name))
            .collect();
        out.line(&format!(
            "// {kind} {}({})",
            comment(&f.name),
            params.join(", ")
        ));
        let args: String = (0..f.params.len())
            .map(|k| format!(", p{k}: f64"))
            .collect();
        out.line("#[inline]");
        out.open(&format!(
            "unsafe fn {}(cx: &{}, i: u32{args}) -> Result<f64, i32> {{",
            self.function_name(h),
            self.cx_type()
        ));
        let b = BodyEmitter::new(self, &f.body, Role::Function(f.result));
        b.locals(out);
        for (k, p) in f.params.iter().enumerate() {
            out.line(&format!("{} = p{k};", b.local(*p)));
        }
        b.block(out, &f.body.block);
        out.line(&format!("Ok({})", b.result()));
        out.close("}");
    }

    fn kernel(&self, out: &mut Out, kernel: &Kernel) {
        let phase = phase_name(kernel.phase);
        let shape = kernel.phase.shape();
        let body_fn = format!("m{}_b_{phase}", self.k);
        let (kernel_fn, export) = match self.symbol_prefix {
            Some(p) => (kernel_symbol(p, kernel.phase), "#[no_mangle]\npub "),
            None => (format!("m{}_k_{phase}", self.k), ""),
        };
        let cx = self.cx_type();
        out.line("");
        out.line(&format!("// kernel {phase}"));
        out.line("#[inline(always)]");
        let extra = if shape == Shape::Event {
            ", w: *mut f64, nw: u32, flag: f64"
        } else {
            ""
        };
        out.open(&format!(
            "unsafe fn {body_fn}(cx: &{cx}, i: u32{extra}) -> Result<(), i32> {{"
        ));
        let b = BodyEmitter::new(self, &kernel.body, Role::Kernel(shape));
        b.locals(out);
        b.block(out, &kernel.body.block);
        out.line("Ok(())");
        out.close("}");
        // Per-step kernels run four instances at a time where they can: the
        // lane runner runs groups while the lanes can, the scalar body the
        // group they cannot and the rest.
        let runner = has_lanes(kernel).then(|| match self.symbol_prefix {
            Some(p) => {
                // In the mechanism's lanes unit ([`Mech::emit_lanes`]).
                let runner = lane_runner_symbol(p, kernel.phase);
                out.line("");
                out.open("extern \"C\" {");
                out.line(&format!(
                    "fn {runner}(pack: *mut NrnMechPack, i: u32, n: u32) -> u32;"
                ));
                out.close("}");
                format!("{runner}(pack, i, n)")
            }
            None => {
                out.line("");
                self.lane_runner(out, kernel);
                format!("m{}_g_{phase}(&cx, i, n)", self.k)
            }
        });
        out.line("");
        let new_cx = format!(
            "let Some(cx) = {cx}::new(pack, M{}_N_GLOBALS) else {{ return bad_pack(pack) }};",
            self.k
        );
        match shape {
            Shape::PerInstance => {
                out.raw(export);
                out.open(&format!(
                    "unsafe extern \"C\" fn {kernel_fn}(pack: *mut NrnMechPack) -> i32 {{"
                ));
                out.line(&new_cx);
                out.line("let n = (*pack).count;");
                out.line("let mut i: u32 = 0;");
                let end = match &runner {
                    Some(runner) => {
                        out.open("while i < n {");
                        out.line(&format!("i = {runner};"));
                        out.line(&format!(
                            "let end = if n - i >= {w} {{ i + {w} }} else {{ n }};",
                            w = lanes::WIDTH
                        ));
                        "end"
                    }
                    None => "n",
                };
                out.open(&format!("while i < {end} {{"));
                out.open(&format!("if let Err(s) = {body_fn}(&cx, i) {{"));
                out.line("(*pack).error_instance = i;");
                out.line("return s;");
                out.close("}");
                out.line("i += 1;");
                out.close("}");
                if runner.is_some() {
                    out.close("}");
                }
                out.line("STATUS_OK");
                out.close("}");
            }
            Shape::Once => {
                out.raw(export);
                out.open(&format!(
                    "unsafe extern \"C\" fn {kernel_fn}(pack: *mut NrnMechPack) -> i32 {{"
                ));
                out.line(&new_cx);
                out.open(&format!("match {body_fn}(&cx, u32::MAX) {{"));
                out.line("Ok(()) => STATUS_OK,");
                out.open("Err(s) => {");
                out.line("(*pack).error_instance = u32::MAX;");
                out.line("s");
                out.close("}");
                out.close("}");
                out.close("}");
            }
            Shape::Event => {
                out.raw(export);
                out.open(&format!(
                    "unsafe extern \"C\" fn {kernel_fn}(pack: *mut NrnMechPack, instance: u32, w: *mut f64, nw: u32, flag: f64) -> i32 {{"
                ));
                out.line(&new_cx);
                out.open(&format!("match {body_fn}(&cx, instance, w, nw, flag) {{"));
                out.line("Ok(()) => STATUS_OK,");
                out.open("Err(s) => {");
                out.line("(*pack).error_instance = instance;");
                out.line("s");
                out.close("}");
                out.close("}");
                out.close("}");
            }
        }
    }
}

/// Emits the statements and expressions of one body.
struct BodyEmitter<'a> {
    mech: &'a Mech<'a>,
    body: &'a Body,
    role: Role,
    /// The next loop number (for the counters of nested loops).
    loops: std::cell::Cell<usize>,
    /// The next temporary number (for expressions split into `let`s).
    temps: std::cell::Cell<usize>,
    /// The nesting depth of each expression when written inline.
    depth: Vec<u32>,
}

/// Expressions nested deeper than this are split into a block of `let`s
/// (in evaluation order): rustc's parser overflows its stack on a few
/// thousand nested parentheses.
const MAX_INLINE_DEPTH: u32 = 48;

impl<'a> BodyEmitter<'a> {
    fn new(mech: &'a Mech<'a>, body: &'a Body, role: Role) -> Self {
        let mut depth: Vec<u32> = Vec::with_capacity(body.expressions.len());
        for (_, e) in body.expressions.iter() {
            // Children precede parents (validated), so their depths are known.
            let d = |h: &Handle<Expression>| depth.get(h.index()).copied().unwrap_or(0);
            let place = |p: &Place| match p {
                Place::Field { index: Some(h), .. }
                | Place::Global { index: Some(h), .. }
                | Place::LocalArray { index: h, .. } => d(h),
                _ => 0,
            };
            let children = match e {
                Expression::Load(p) => place(p),
                Expression::Unary { arg, .. }
                | Expression::BoolToF64(arg)
                | Expression::F64ToBool(arg) => d(arg),
                Expression::Binary { left, right, .. } => d(left).max(d(right)),
                Expression::Select {
                    condition,
                    accept,
                    reject,
                } => d(condition).max(d(accept)).max(d(reject)),
                Expression::Math { args, .. } | Expression::Call { args, .. } => {
                    args.iter().map(d).max().unwrap_or(0)
                }
                _ => 0,
            };
            depth.push(children + 1);
        }
        BodyEmitter {
            mech,
            body,
            role,
            loops: std::cell::Cell::new(0),
            temps: std::cell::Cell::new(0),
            depth,
        }
    }

    fn local(&self, l: Handle<Local>) -> String {
        format!("l{}_{}", l.index(), tail(&self.body.locals[l].name))
    }

    fn array(&self, a: Handle<LocalArray>) -> String {
        format!("a{}p", a.index())
    }

    /// Declares every local (zero / false) and local array (zeroed).
    fn locals(&self, out: &mut Out) {
        out.line("let iu = i as usize;");
        for (h, l) in self.body.locals.iter() {
            let (ty, zero) = match l.ty {
                Type::F64 => ("f64", "0.0"),
                Type::Bool => ("bool", "false"),
            };
            out.line(&format!(
                "let mut {}: {ty} = {zero}; // {}",
                self.local(h),
                comment(&l.name)
            ));
        }
        for (h, a) in self.body.arrays.iter() {
            out.line(&format!(
                "let mut a{}_{}: [f64; {}] = [0.0; {}];",
                h.index(),
                tail(&a.name),
                a.len,
                a.len
            ));
            out.line(&format!(
                "let {} = a{}_{}.as_mut_ptr();",
                self.array(h),
                h.index(),
                tail(&a.name)
            ));
        }
    }

    /// What a function returns.
    fn result(&self) -> String {
        match self.role {
            Role::Function(Some(r)) => self.local(r),
            _ => "0.0f64".into(),
        }
    }

    /// The `return` of this body.
    fn ret(&self) -> String {
        match self.role {
            Role::Function(_) => format!("return Ok({});", self.result()),
            Role::Kernel(_) => "return Ok(());".into(),
        }
    }

    fn block(&self, out: &mut Out, block: &[Statement]) {
        for s in block {
            self.statement(out, s);
        }
    }

    fn next_loop(&self) -> usize {
        let n = self.loops.get();
        self.loops.set(n + 1);
        n
    }

    fn statement(&self, out: &mut Out, s: &Statement) {
        match s {
            Statement::Assign { local, value } => {
                out.line(&format!("{} = {};", self.local(*local), self.expr(*value)));
            }
            Statement::Store { place, value } if !checked(place) => {
                // The address cannot fail and reads nothing a call could change.
                out.line(&format!("*{} = {};", self.place(place), self.expr(*value)));
            }
            Statement::Store { place, value } => {
                // The place (index, bounds, POINTER link) first, then the
                // value: Rust's `*p = v` would evaluate `v` first.
                out.open("{");
                out.line(&format!("let k_p: *mut f64 = {};", self.place(place)));
                out.line(&format!("let k_x: f64 = {};", self.expr(*value)));
                out.line("*k_p = k_x;");
                out.close("}");
            }
            Statement::Accumulate { target, op, value } => {
                out.open("{");
                out.line(&format!("let k_x: f64 = {};", self.expr(*value)));
                let p = match target {
                    AccumTarget::NodeRhs => "cx.rhs.add(cx.node(iu))".to_string(),
                    AccumTarget::NodeD => "cx.d.add(cx.node(iu))".to_string(),
                    AccumTarget::IonCur(ion) => self.ion_ptr(*ion, IonVar::Cur),
                    AccumTarget::IonDcurDv(ion) => self.ion_ptr(*ion, IonVar::DcurDv),
                };
                out.line(&format!("let k_p: *mut f64 = {p};"));
                let op = match op {
                    AccumOp::Add => '+',
                    AccumOp::Sub => '-',
                };
                out.line(&format!("*k_p = *k_p {op} k_x;"));
                out.close("}");
            }
            Statement::If {
                condition,
                accept,
                reject,
            } => {
                out.open(&format!("if {} {{", self.expr(*condition)));
                self.block(out, accept);
                if reject.is_empty() {
                    out.close("}");
                } else {
                    out.close("} else {");
                    out.indent += 1;
                    self.block(out, reject);
                    out.close("}");
                }
            }
            Statement::While {
                condition,
                body,
                max_iterations,
            } => {
                let n = self.next_loop();
                out.open("{");
                out.line(&format!("let mut k_it{n}: u32 = 0;"));
                out.open(&format!("while {} {{", self.expr(*condition)));
                out.line(&format!(
                    "if k_it{n} == {max_iterations} {{ return Err(STATUS_MECHANISM_ERROR); }}"
                ));
                out.line(&format!("k_it{n} += 1;"));
                self.block(out, body);
                out.close("}");
                out.close("}");
            }
            Statement::ForRange {
                var,
                start,
                end,
                step,
                body,
                max_iterations,
            } => {
                let n = self.next_loop();
                let v = self.local(*var);
                let cmp = if *step > 0.0 { "<=" } else { ">=" };
                out.open("{");
                out.line(&format!("{v} = {};", self.expr(*start)));
                out.line(&format!("let k_end{n}: f64 = {};", self.expr(*end)));
                out.line(&format!("let mut k_it{n}: u32 = 0;"));
                out.open(&format!("while {v} {cmp} k_end{n} {{"));
                out.line(&format!(
                    "if k_it{n} == {max_iterations} {{ return Err(STATUS_MECHANISM_ERROR); }}"
                ));
                out.line(&format!("k_it{n} += 1;"));
                self.block(out, body);
                out.line(&format!("{v} = {v} + {};", lit(*step)));
                out.close("}");
                out.close("}");
            }
            Statement::Call { function, args } => {
                out.line(&format!("{};", self.call(*function, args)));
            }
            Statement::NetSend { delay, flag } => {
                let w = match self.role {
                    Role::Kernel(Shape::Event) => "w",
                    _ => "core::ptr::null_mut()",
                };
                out.line(&format!(
                    "cx.net_send(i, {w}, {}, {});",
                    self.expr(*delay),
                    self.expr(*flag)
                ));
            }
            Statement::NetEvent { time } => {
                out.line(&format!("cx.net_event(i, {});", self.expr(*time)));
            }
            Statement::NetMove { time } => {
                out.line(&format!("cx.net_move(i, {});", self.expr(*time)));
            }
            Statement::SetSeed { seed } => {
                out.line(&format!("cx.set_seed({});", self.expr(*seed)));
            }
            Statement::Return => out.line(&self.ret()),
            Statement::Error { status } => out.line(&format!("return Err({status});")),
        }
    }

    /// A call of a module function: `f(cx, i, args…)?`.
    fn call(&self, function: Handle<Function>, args: &[Handle<Expression>]) -> String {
        let args = args.iter().map(|a| self.expr(*a)).collect();
        self.call_with(function, args)
    }

    /// A call with rendered arguments.
    fn call_with(&self, function: Handle<Function>, args: Vec<String>) -> String {
        let mut s = format!("{}(cx, i", self.mech.function_name(function));
        for a in args {
            s.push_str(", ");
            s.push_str(&a);
        }
        s.push_str(")?");
        s
    }

    fn ion_ptr(&self, ion: Handle<IonDecl>, var: IonVar) -> String {
        ion_ptr(ion, var, "iu")
    }

    /// A pointer expression for a place, with its index evaluated and its
    /// checks done (`?` on failure).
    fn place(&self, place: &Place) -> String {
        let index = match place {
            Place::Field { index, .. } | Place::Global { index, .. } => index.map(|h| self.expr(h)),
            Place::LocalArray { index, .. } => Some(self.expr(*index)),
            _ => None,
        };
        self.place_with(place, index)
    }

    /// [`Self::place`] with the index expression already rendered.
    fn place_with(&self, place: &Place, index: Option<String>) -> String {
        let vm = self.mech.vm;
        let layout = &vm.module().layout;
        match place {
            Place::Field { field, .. } => {
                let c = vm.field_column(*field);
                match index {
                    None => format!("cx.cols[{c}].add(iu)"),
                    Some(ix) => format!(
                        "cx.col({c} + idx({ix}, {})?).add(iu)",
                        layout.fields[*field].array_len
                    ),
                }
            }
            Place::Global { global, .. } => {
                let s = vm.global_slot(*global);
                match index {
                    None => format!("cx.globals.add({s})"),
                    Some(ix) => format!(
                        "cx.globals.add({s} + idx({ix}, {})?)",
                        layout.globals[*global].array_len
                    ),
                }
            }
            Place::NodeV => "cx.v.add(cx.node(iu))".into(),
            Place::NodeArea => "cx.area.add(cx.node(iu))".into(),
            Place::NodeDiam => "cx.diam.add(cx.node(iu))".into(),
            Place::Ion { ion, var } => self.ion_ptr(*ion, *var),
            Place::IonValence(ion) => format!("(&cx.ions[{}].valence as *const f64)", ion.index()),
            Place::LocalArray { array, .. } => format!(
                "{}.add(idx({}, {})?)",
                self.array(*array),
                index.unwrap_or_default(),
                self.body.arrays[*array].len
            ),
            Place::Pointer(p) => format!("cx.pointer({}, iu)?", p.index()),
            Place::Weight(k) => format!("weight(w, nw, {k})?"),
        }
    }

    fn math(&self, fun: MathFn, args: &[Handle<Expression>]) -> String {
        math_call(fun, args.iter().map(|a| self.expr(*a)).collect())
    }

    /// The Rust expression for `h` (an f64 or a bool): written inline, or
    /// as a block of `let`s when it is nested too deeply.
    fn expr(&self, h: Handle<Expression>) -> String {
        if self.depth[h.index()] <= MAX_INLINE_DEPTH {
            return self.inline(h);
        }
        let mut lines = Vec::new();
        let atom = self.flat(h, &mut lines);
        format!("{{\n{}\n{atom}\n}}", lines.join("\n"))
    }

    /// A fresh temporary.
    fn temp(&self) -> String {
        let n = self.temps.get();
        self.temps.set(n + 1);
        format!("t{n}")
    }

    /// Binds `value` to a fresh temporary and returns its name.
    fn bind(&self, value: String, lines: &mut Vec<String>) -> String {
        let t = self.temp();
        lines.push(format!("let {t} = {value};"));
        t
    }

    /// A block `{ lets…; value }` evaluating `h` (for conditional operands).
    fn flat_block(&self, h: Handle<Expression>) -> String {
        let mut lines = Vec::new();
        let atom = self.flat(h, &mut lines);
        lines.push(atom);
        format!("{{\n{}\n}}", lines.join("\n"))
    }

    /// Evaluates `h` into `let` lines, in the order the specification
    /// prescribes; returns a name or literal holding the value. Operands are
    /// bound before their parent runs, so later operands (function calls
    /// that write fields, host calls) cannot change an earlier one.
    fn flat(&self, h: Handle<Expression>, lines: &mut Vec<String>) -> String {
        let e = &self.body.expressions[h];
        if self.depth[h.index()] <= MAX_INLINE_DEPTH {
            return match e {
                Expression::Constant(_)
                | Expression::Bool(_)
                | Expression::Local(_)
                | Expression::Env(_) => self.inline(h),
                _ => self.bind(self.inline(h), lines),
            };
        }
        let value = match e {
            Expression::Load(place) => {
                let index = match place {
                    Place::Field { index, .. } | Place::Global { index, .. } => {
                        index.map(|ix| self.flat(ix, lines))
                    }
                    Place::LocalArray { index, .. } => Some(self.flat(*index, lines)),
                    _ => None,
                };
                format!("(*{})", self.place_with(place, index))
            }
            Expression::Unary { op, arg } => {
                let a = self.flat(*arg, lines);
                match op {
                    UnaryOp::Neg => format!("(-{a})"),
                    UnaryOp::Not => format!("(!{a})"),
                }
            }
            Expression::Binary {
                op: op @ (BinaryOp::And | BinaryOp::Or),
                left,
                right,
            } => {
                let l = self.flat(*left, lines);
                let r = self.flat_block(*right);
                if *op == BinaryOp::And {
                    format!("if {l} {r} else {{ false }}")
                } else {
                    format!("if {l} {{ true }} else {r}")
                }
            }
            Expression::Binary { op, left, right } => {
                let l = self.flat(*left, lines);
                let r = self.flat(*right, lines);
                self.binary(*op, l, r)
            }
            Expression::Select {
                condition,
                accept,
                reject,
            } => {
                let c = self.flat(*condition, lines);
                format!(
                    "if {c} {} else {}",
                    self.flat_block(*accept),
                    self.flat_block(*reject)
                )
            }
            Expression::Math { fun, args } => {
                let a = args.iter().map(|a| self.flat(*a, lines)).collect();
                math_call(*fun, a)
            }
            Expression::Call { function, args } => {
                let a = args.iter().map(|a| self.flat(*a, lines)).collect();
                self.call_with(*function, a)
            }
            Expression::BoolToF64(a) => {
                let a = self.flat(*a, lines);
                format!("(if {a} {{ 1.0f64 }} else {{ 0.0f64 }})")
            }
            Expression::F64ToBool(a) => {
                let a = self.flat(*a, lines);
                format!("({a} != 0.0f64)")
            }
            _ => self.inline(h),
        };
        self.bind(value, lines)
    }

    /// A binary operator on rendered operands (not `&&` / `||`).
    fn binary(&self, op: BinaryOp, l: String, r: String) -> String {
        let sym = match op {
            BinaryOp::Pow => return format!("cm::pow({l}, {r})"),
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::And => "&&",
            BinaryOp::Or => "||",
        };
        format!("({l} {sym} {r})")
    }

    /// `h` written as one nested Rust expression.
    fn inline(&self, h: Handle<Expression>) -> String {
        match &self.body.expressions[h] {
            Expression::Constant(x) => lit(*x),
            Expression::Bool(b) => b.to_string(),
            Expression::Local(l) => self.local(*l),
            Expression::Load(Place::IonValence(ion)) => {
                format!("cx.ions[{}].valence", ion.index())
            }
            Expression::Load(place) => format!("(*{})", self.place(place)),
            Expression::Env(var) => match var {
                EnvVar::T => "cx.t".into(),
                EnvVar::Dt => "cx.dt".into(),
                EnvVar::Celsius => "cx.celsius".into(),
                EnvVar::SecondOrder => "(cx.secondorder as f64)".into(),
                EnvVar::Flag => "flag".into(),
            },
            Expression::Unary { op, arg } => match op {
                UnaryOp::Neg => format!("(-{})", self.expr(*arg)),
                UnaryOp::Not => format!("(!{})", self.expr(*arg)),
            },
            Expression::Binary { op, left, right } => {
                self.binary(*op, self.expr(*left), self.expr(*right))
            }
            Expression::Select {
                condition,
                accept,
                reject,
            } => format!(
                "(if {} {{ {} }} else {{ {} }})",
                self.expr(*condition),
                self.expr(*accept),
                self.expr(*reject)
            ),
            Expression::Math { fun, args } => self.math(*fun, args),
            Expression::Call { function, args } => self.call(*function, args),
            Expression::RandomUniform => "cx.random()".into(),
            Expression::BoolToF64(a) => {
                format!("(if {} {{ 1.0f64 }} else {{ 0.0f64 }})", self.expr(*a))
            }
            Expression::F64ToBool(a) => format!("({} != 0.0f64)", self.expr(*a)),
        }
    }
}

/// A pointer to ion column `var` of `ion` at the row of instance `instance`
/// (a `usize` expression).
fn ion_ptr(ion: Handle<IonDecl>, var: IonVar, instance: &str) -> String {
    let col = match var {
        IonVar::Erev => "erev",
        IonVar::ConcI => "conc_i",
        IonVar::ConcO => "conc_o",
        IonVar::Cur => "cur",
        IonVar::DcurDv => "dcurdv",
    };
    let k = ion.index();
    format!("cx.ions[{k}].{col}.add(cx.ion({k}, {instance}))")
}

/// A math built-in applied to rendered arguments.
fn math_call(fun: MathFn, a: Vec<String>) -> String {
    let one = |f: &str| format!("{f}({})", a[0]);
    let two = |f: &str| format!("{f}({}, {})", a[0], a[1]);
    use MathFn::*;
    match fun {
        Exp => one("exp"),
        Log => one("cm::log"),
        Log10 => one("cm::log10"),
        Sqrt => one("f64::sqrt"),
        Pow => two("cm::pow"),
        Fabs => one("f64::abs"),
        Sin => one("cm::sin"),
        Cos => one("cm::cos"),
        Tan => one("cm::tan"),
        Tanh => one("cm::tanh"),
        Sinh => one("cm::sinh"),
        Cosh => one("cm::cosh"),
        Asin => one("cm::asin"),
        Acos => one("cm::acos"),
        Atan => one("cm::atan"),
        Atan2 => two("cm::atan2"),
        Floor => one("f64::floor"),
        Ceil => one("f64::ceil"),
        Fmod => format!("({} % {})", a[0], a[1]),
        Fmin => two("fmin"),
        Fmax => two("fmax"),
        Exprelr => one("exprelr"),
        Expm1 => one("cm::expm1"),
        Log1p => one("cm::log1p"),
        Erf => one("cm::erf"),
        Erfc => one("cm::erfc"),
    }
}

/// The metadata statics of mechanism `k`.
fn metadata(out: &mut Out, k: usize, e: &LibraryEntry) {
    let spec = e.spec;
    let fields = |out: &mut Out, name: &str, list: &[runtime::FieldSpec]| {
        out.open(&format!(
            "static {name}: Sy<[NrnFieldInfo; {}]> = Sy([",
            list.len()
        ));
        for f in list {
            out.line(&format!(
                "NrnFieldInfo {{ name: {}, units: {}, kind: {}, array_len: {}, default_value: {}, range_lo: f64::NAN, range_hi: f64::NAN }},",
                cstr(&f.name),
                cstr(&f.units),
                f.kind,
                f.array_len,
                lit(f.default_value)
            ));
        }
        out.close("]);");
    };
    out.line("");
    fields(out, &format!("M{k}_FIELDS"), &spec.fields);
    fields(out, &format!("M{k}_GLOBALS"), &spec.globals);
    out.open(&format!(
        "static M{k}_IONS: Sy<[NrnIonInfo; {}]> = Sy([",
        spec.ions.len()
    ));
    for ion in &spec.ions {
        out.line(&format!(
            "NrnIonInfo {{ name: {}, valence: {}, flags: {} }},",
            cstr(&ion.name),
            lit(ion.valence.unwrap_or(f64::NAN)),
            ion.flags
        ));
    }
    out.close("]);");
    out.open(&format!(
        "static M{k}_POINTERS: Sy<[*const c_char; {}]> = Sy([",
        spec.pointers.len()
    ));
    for p in &spec.pointers {
        out.line(&format!("{},", cstr(p)));
    }
    out.close("]);");
}

/// How [`table`] gets the source fingerprints, and what its entry symbol is.
#[derive(Clone, Copy)]
enum Entry<'a> {
    /// The entries' `source_fingerprint`s, in an immutable table behind the
    /// entry symbol of that name.
    Static(&'a str),
    /// One extern `u64` static per entry, copied into the table by the first
    /// call of `nrnrs_mechanism_table` (a split library's table unit).
    Filled(&'a [String]),
}

/// The mechanism table and the entry symbol (see [`Entry`]).
fn table(
    out: &mut Out,
    entries: &[LibraryEntry],
    kernel_fn: &dyn Fn(usize, &str) -> String,
    entry: Entry,
) {
    let (fingerprints, entry_symbol) = match entry {
        Entry::Static(symbol) => (None, symbol),
        Entry::Filled(fps) => (Some(fps), "nrnrs_mechanism_table"),
    };
    out.line("");
    if fingerprints.is_some() {
        out.open(&format!(
            "static MECHANISMS: Sy<core::cell::UnsafeCell<[NrnMechanism; {}]>> = Sy(core::cell::UnsafeCell::new([",
            entries.len()
        ));
    } else {
        out.open(&format!(
            "static MECHANISMS: Sy<[NrnMechanism; {}]> = Sy([",
            entries.len()
        ));
    }
    for (k, e) in entries.iter().enumerate() {
        let spec = e.spec;
        let m = e.module.module();
        out.open("NrnMechanism {");
        out.line(&format!("name: {},", cstr(&spec.name)));
        out.line(&format!("kind: {},", spec.kind.to_abi()));
        out.line(&format!("flags: {},", spec.flags));
        out.line(&format!("fields: M{k}_FIELDS.0.as_ptr(),"));
        out.line(&format!("n_fields: {},", spec.fields.len()));
        out.line(&format!("globals: M{k}_GLOBALS.0.as_ptr(),"));
        out.line(&format!("n_globals: {},", spec.globals.len()));
        out.line(&format!("ions: M{k}_IONS.0.as_ptr(),"));
        out.line(&format!("n_ions: {},", spec.ions.len()));
        out.line(&format!("pointer_names: M{k}_POINTERS.0.as_ptr(),"));
        out.line(&format!("n_pointers: {},", spec.pointers.len()));
        out.line(&format!("n_weights: {},", spec.n_weights));
        out.line(&format!(
            "source_fingerprint: {:#018x},",
            e.source_fingerprint
        ));
        out.open("kernels: NrnKernels {");
        let phases = [
            Phase::Init,
            Phase::Cur,
            Phase::State,
            Phase::TableCheck,
            Phase::NetReceive,
            Phase::NetReceiveInit,
            Phase::BeforeInitial,
            Phase::AfterInitial,
            Phase::BeforeBreakpoint,
            Phase::AfterSolve,
            Phase::BeforeStep,
            Phase::Constructor,
            Phase::Destructor,
        ];
        for p in phases {
            let name = phase_name(p);
            let ty = if p.shape() == Shape::Event {
                "NrnNetReceiveFn"
            } else {
                "NrnKernelFn"
            };
            if m.kernel(p).is_some() {
                out.line(&format!("{name}: Some({} as {ty}),", kernel_fn(k, name)));
            } else {
                out.line(&format!("{name}: None,"));
            }
        }
        out.close("},");
        out.close("},");
    }
    out.close(if fingerprints.is_some() {
        "]));"
    } else {
        "]);"
    });
    out.line("");
    out.open("static TABLE: Sy<NrnMechanismTable> = Sy(NrnMechanismTable {");
    out.line("abi_major: ABI_MAJOR,");
    out.line("abi_minor: ABI_MINOR,");
    out.line("layout_fingerprint: LAYOUT_FINGERPRINT,");
    if fingerprints.is_some() {
        out.line("mechanisms: MECHANISMS.0.get() as *const NrnMechanism,");
    } else {
        out.line("mechanisms: MECHANISMS.0.as_ptr(),");
    }
    out.line(&format!("n_mechanisms: {},", entries.len()));
    out.close("});");
    out.line("");
    match fingerprints {
        None => {
            out.line("/// The library's one entry point: the static mechanism table.");
            out.line("#[no_mangle]");
            out.open(&format!(
                "pub extern \"C\" fn {entry_symbol}() -> *const NrnMechanismTable {{"
            ));
            out.line("&TABLE.0");
            out.close("}");
        }
        Some(fps) => {
            out.line("/// 0: not filled, 1: being filled, 2: filled.");
            out.line("static FILLED: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);");
            out.line("");
            out.line("/// The library's one entry point: the mechanism table, whose source");
            out.line("/// fingerprints the first call copies from the units.");
            out.line("#[no_mangle]");
            out.open("pub extern \"C\" fn nrnrs_mechanism_table() -> *const NrnMechanismTable {");
            out.open("if !cpu_runs_units() {");
            out.line("// Units compiled with FMA cannot run here (see cpu_runs_units).");
            out.line("return core::ptr::null();");
            out.close("}");
            out.line("use core::sync::atomic::Ordering::{Acquire, Release};");
            out.open("if FILLED.compare_exchange(0, 1, Acquire, Acquire).is_ok() {");
            out.line("// SAFETY: only this call writes, and no reader runs before FILLED is 2.");
            out.open("unsafe {");
            out.line("let m = &mut *MECHANISMS.0.get();");
            for (k, fp) in fps.iter().enumerate() {
                out.line(&format!("m[{k}].source_fingerprint = {fp};"));
            }
            out.close("}");
            out.line("FILLED.store(2, Release);");
            out.close("}");
            out.open("while FILLED.load(Acquire) != 2 {");
            out.line("core::hint::spin_loop();");
            out.close("}");
            out.line("&TABLE.0");
            out.close("}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_round_trip_exactly() {
        for x in [0.0, -0.0, 1.0, -1.5, 0.1, 1e-300, 1e300, 5e-324, f64::MAX] {
            let s = lit(x);
            assert!(!s.contains("from_bits"), "{s}");
            let t = s.trim_start_matches('(').trim_end_matches(')');
            let t = t.trim_end_matches("f64");
            assert_eq!(t.parse::<f64>().unwrap().to_bits(), x.to_bits(), "{s}");
        }
        assert_eq!(lit(f64::INFINITY), "f64::INFINITY");
        assert!(lit(f64::NAN).starts_with("f64::from_bits(0x7ff8"));
    }

    #[test]
    fn names_are_reduced_to_identifier_tails() {
        assert_eq!(tail("type"), "type");
        assert_eq!(tail("#ina"), "_ina");
        assert_eq!(tail("a.b-c"), "a_b_c");
        assert_eq!(cstr("k\"\\\u{e9}"), r#"c"k\"\\\xc3\xa9".as_ptr()"#);
    }
}
