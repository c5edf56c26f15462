//! `nrnivmodl-rs [PATH...]`: NEURON's `nrnivmodl`, building
//! `<arch>/libnrnmech.so` from .mod files.
//!
//! 1. Collect the .mod files: the current folder's when no path is given,
//!    else every named file and the `*.mod` files of every named folder.
//! 2. Check and lower every file (in parallel). All diagnostics are printed,
//!    in file order, before any build step; one error stops the build.
//! 3. Emit each mechanism's kernels as its own Rust unit
//!    ([`codegen::rust::emit_units`]: a second unit holds the lane bodies of
//!    the per-step kernels that have them), exporting them under a prefix made
//!    from the mechanism's name, and compile the units that are not cached,
//!    in parallel, with `rustc --emit obj` (opt-level 3). A unit's object is
//!    cached in `<out>/<arch>/.nrnivmodl-rs-cache/nrnrs_<hash>_<name>.o`,
//!    where the hash covers the unit's source, the compiler's version and
//!    the flags, so an edit of a file recompiles the units whose code it
//!    changes, and only those.
//! 4. Emit the metadata and mechanism table ([`codegen::rust::emit_table`]),
//!    which names the kernels and fingerprints by their stable prefixes, so
//!    that an edit which changes no metadata (a kernel, a comment) leaves it
//!    unchanged; it is cached like a unit. Write the object defining every
//!    file's source fingerprint (the hash of its text, which any edit
//!    changes) directly, without rustc, so that a comment recompiles
//!    nothing. Link the table, the fingerprints and the units' objects with the system C compiler (`$CC`, else `cc`) into
//!    `<out>/<arch>/libnrnmech.so` (`.dylib` on macOS), exporting only
//!    `nrnrs_mechanism_table`. The whole build is keyed on the objects'
//!    names: an unchanged folder is not rebuilt. Cache entries the library
//!    no longer uses are then deleted.
//! 5. A `rustc` failure on generated code is a bug of nrnivmodl-rs and is
//!    reported as one: rustc's message, and for each generated line it
//!    names, the .mod file, line and block the code came from.
//!
//! The output folder is only ever written inside `<out>/<arch>/`, and an
//! existing `libnrnmech.so` that nrnivmodl-rs did not build (one made by
//! NEURON's nrnivmodl) is never replaced: the build stops and says so.
//!
//! Exit codes: 0 built (or up to date), 1 errors in the .mod files or a
//! failed build, 2 usage or I/O problems.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Mutex;
use std::time::Instant;

use codegen::ir::Phase;
use codegen::rust::{LibraryEntry, Origin, TableEntry, Unit};
use codegen::valid::ValidModule;
use nmodl_frontend::diagnostic::{has_errors, Diagnostic};
use nmodl_frontend::model::Mechanism;
use nmodl_frontend::render::render;
use nmodl_frontend::source::{SourceMap, Span};
use rayon::prelude::*;
use runtime::MechanismSpec;

use crate::BuildArgs;

/// The marker file next to a library nrnivmodl-rs built; it holds the build
/// key.
const STAMP: &str = ".nrnivmodl-rs-build";

/// The folder (inside `<arch>/`) holding the compiled units and the table.
const CACHE: &str = ".nrnivmodl-rs-cache";

/// The work folder of earlier versions (one source for the whole library);
/// removed when found.
const OLD_WORK: &str = ".nrnivmodl-rs-work";

/// The flags every generated unit is compiled with (part of the cache key).
const RUSTC_FLAGS: &[&str] = &[
    "--edition",
    "2021",
    "-C",
    "opt-level=3",
    "-C",
    "panic=abort",
    "-C",
    "debuginfo=0",
    "-C",
    "codegen-units=1",
    "--error-format=json",
];

/// Whether the units get the inline `exp` (compiled with FMA): where
/// such code runs and gives the C library's bits
/// ([`codegen::rust::fma_code_runs_here`]).
fn inline_exp() -> bool {
    codegen::rust::fma_code_runs_here().is_ok()
}

/// What a source is compiled as: a mechanism unit (with FMA where
/// [`inline_exp`] says so) or the table (never with FMA: it checks the
/// processor before the units' code runs).
#[derive(Clone, Copy)]
enum Part {
    Unit,
    Table,
}

/// The flags `part` is compiled with (part of the cache key).
fn rustc_flags(part: Part) -> Vec<&'static str> {
    let mut flags = RUSTC_FLAGS.to_vec();
    if inline_exp() {
        flags.extend(match part {
            Part::Unit => ["-C", codegen::rust::EXP_TARGET_FEATURE],
            Part::Table => ["--cfg", codegen::rust::TABLE_FMA_CFG],
        });
    }
    flags
}

/// The stem of the table unit's files in the cache folder of earlier
/// versions (removed when found).
const OLD_TABLE: &str = "nrnmech_table";

/// One lowered file.
struct Lowered {
    file: PathBuf,
    module: ValidModule,
    spec: MechanismSpec,
    fingerprint: u64,
    /// Where each kernel and function of `module` comes from in the .mod
    /// file (`file:line (block)`).
    locations: HashMap<Origin, String>,
}

impl Lowered {
    /// The .mod location of generated code from `origin`.
    fn location(&self, origin: &Origin) -> String {
        match self.locations.get(origin) {
            Some(l) => l.clone(),
            None => format!(
                "{} (support code of mechanism {})",
                self.file.display(),
                self.spec.name
            ),
        }
    }
}

fn fnv1a(bytes: &[u8], mut h: u64) -> u64 {
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A 128-bit content hash (two FNV-1a runs with different seeds), as 32 hex
/// digits.
fn hash_hex(parts: &[&[u8]]) -> String {
    let (mut a, mut b) = (0xcbf2_9ce4_8422_2325u64, 0x6c62_272e_07bb_0142u64);
    for p in parts {
        // Lengths separate the parts, so ("ab", "c") and ("a", "bc") differ.
        a = fnv1a(p, fnv1a(&(p.len() as u64).to_le_bytes(), a));
        b = fnv1a(p, fnv1a(&(p.len() as u64).to_le_bytes(), b));
    }
    format!("{a:016x}{b:016x}")
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

/// Where the kernels and functions of `model` come from: `file:line
/// (block)` for each [`Origin`] the lowering can produce.
fn locations(sources: &SourceMap, model: &Mechanism) -> HashMap<Origin, String> {
    let at = |span: Span, what: &str| {
        let (line, name) = match sources.get(span.file) {
            Some(f) => (f.line_col(span.start).0, f.name.clone()),
            None => (0, "?".into()),
        };
        format!("{name}:{line} ({what})")
    };
    let mut map = HashMap::new();
    for c in &model.callables {
        let l = at(c.span, &c.name);
        map.insert(Origin::Function(format!("#f_{}", c.name)), l.clone());
        map.insert(Origin::Function(c.name.clone()), l);
    }
    for b in &model.solve_blocks {
        let l = at(b.span, &b.name);
        map.insert(Origin::Function(format!("#deriv_{}", b.name)), l.clone());
        map.insert(Origin::Function(b.name.clone()), l);
    }
    if let Some(i) = &model.initial {
        map.insert(Origin::Kernel(Phase::Init), at(i.span, "INITIAL"));
    }
    if let Some(b) = &model.breakpoint {
        map.insert(Origin::Kernel(Phase::Cur), at(b.body.span, "BREAKPOINT"));
        let solved = b.solves.iter().find_map(|s| {
            model
                .solve_blocks
                .iter()
                .find(|blk| blk.name == s.block)
                .map(|blk| at(blk.span, &format!("SOLVE {}", blk.name)))
        });
        map.insert(
            Origin::Kernel(Phase::State),
            solved.unwrap_or_else(|| at(b.body.span, "BREAKPOINT")),
        );
    }
    if let Some(t) = model.tables.first() {
        map.insert(Origin::Kernel(Phase::TableCheck), at(t.span, "TABLE"));
    }
    if let Some(n) = &model.net_receive {
        map.insert(Origin::Kernel(Phase::NetReceive), at(n.span, "NET_RECEIVE"));
        if let Some(i) = &n.initial {
            map.insert(
                Origin::Kernel(Phase::NetReceiveInit),
                at(i.span, "NET_RECEIVE INITIAL"),
            );
        }
    }
    for ba in &model.before_after {
        let Some(phase) = codegen::lower::before_after_phase(ba.when, ba.phase) else {
            continue;
        };
        map.insert(
            Origin::Kernel(phase),
            at(
                ba.body.span,
                &format!("{:?} {:?}", ba.when, ba.phase).to_uppercase(),
            ),
        );
    }
    if let Some(c) = &model.constructor {
        map.insert(
            Origin::Kernel(Phase::Constructor),
            at(c.span, "CONSTRUCTOR"),
        );
    }
    if let Some(d) = &model.destructor {
        map.insert(Origin::Kernel(Phase::Destructor), at(d.span, "DESTRUCTOR"));
    }
    map
}

/// Checks and lowers one file; the diagnostics are rendered against its own
/// source map.
fn lower_file(path: &Path) -> (Option<Lowered>, String, bool) {
    let mut sources = SourceMap::new();
    let result = nmodl_frontend::check_file(&mut sources, path);
    let mut diags: Vec<Diagnostic> = result.diagnostics;
    let fingerprint = std::fs::read(path)
        .map(|b| runtime::abi::fnv1a_bytes(&b))
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
                            locations: locations(&sources, &model),
                        })
                    }
                    Err(e) => diags.push(
                        Diagnostic::error(
                            codegen::lower::codes::INTERNAL,
                            model
                                .breakpoint
                                .as_ref()
                                .map(|b| b.body.span)
                                .unwrap_or(Span::new(nmodl_frontend::source::FileId(0), 0, 0)),
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

/// The compiler a build runs: the program, and its version (part of every
/// cache key).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Compiler {
    program: PathBuf,
    version: String,
}

/// The file in the cache folder naming the compiler of the last build.
const COMPILER: &str = "compiler";

/// Finds the compiler `rustc` stands for. Given with `--rustc` (`explicit`)
/// it is run as it is; otherwise as the toolchain's own `<sysroot>/bin/rustc`
/// when that exists, which skips rustup's proxy (about 25 ms a run).
fn identify(rustc: &Path, explicit: bool) -> Result<Compiler, String> {
    let mut program = rustc.to_path_buf();
    if !explicit {
        let sysroot = Command::new(rustc)
            .args(["--print", "sysroot"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
        if let Some(root) = sysroot {
            let own = root
                .join("bin")
                .join(format!("rustc{}", std::env::consts::EXE_SUFFIX));
            if own.is_file() {
                program = own;
            }
        }
    }
    let version = rustc_version(&program)?;
    Ok(Compiler { program, version })
}

/// The compiler the last build in `cache` used for `rustc`, if recorded.
/// With the [`resolution`] recorded with it.
fn last_compiler(cache: &Path, rustc: &Path) -> Option<(Compiler, String)> {
    let text = std::fs::read_to_string(cache.join(COMPILER)).ok()?;
    let mut lines = text.lines();
    if Path::new(lines.next()?) != rustc {
        return None;
    }
    let program = PathBuf::from(lines.next()?);
    let version = lines.next()?.to_string();
    let stamp = lines.next().unwrap_or("").to_string();
    program
        .is_file()
        .then_some((Compiler { program, version }, stamp))
}

/// What decides which compiler `rustc` stands for and what `program` is,
/// read from the environment and the file system without running
/// anything: the file `rustc` resolves to on `PATH`; rustup's inputs
/// (`RUSTUP_TOOLCHAIN`, `RUSTUP_HOME`, `CARGO_HOME`, its settings file and
/// any `rust-toolchain` file from the working folder up); `program` and the
/// compiler library next to it. Each file is named with its size and
/// modification time. When all of it equals what the last build recorded,
/// its compiler is used without asking `rustc` again (two process starts,
/// about 40 ms of a 2-core machine's time during an edit's build); any
/// change (a `rustup default`, a toolchain update, another `PATH`) makes
/// the build identify the compiler again.
fn resolution(rustc: &Path, program: &Path) -> String {
    fn stat(out: &mut String, p: &Path) {
        let _ = write!(out, "{}:", p.display());
        match std::fs::metadata(p) {
            Ok(m) => {
                let t = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                let _ = write!(out, "{}/{t};", m.len());
            }
            Err(_) => out.push_str("-;"),
        }
    }
    let mut out = String::new();
    let resolved = if rustc.components().count() > 1 {
        Some(rustc.to_path_buf())
    } else {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(rustc))
                .find(|p| p.is_file())
        })
    };
    match &resolved {
        Some(p) => stat(&mut out, p),
        None => out.push_str("unresolved;"),
    }
    for var in ["RUSTUP_TOOLCHAIN", "RUSTUP_HOME", "CARGO_HOME"] {
        let _ = write!(out, "{var}={:?};", std::env::var_os(var));
    }
    let rustup_home = std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".rustup")));
    if let Some(home) = rustup_home {
        stat(&mut out, &home.join("settings.toml"));
    }
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            for name in ["rust-toolchain", "rust-toolchain.toml"] {
                let p = dir.join(name);
                if p.exists() {
                    stat(&mut out, &p);
                }
            }
        }
    }
    stat(&mut out, program);
    if let Some(lib) = program
        .parent()
        .and_then(Path::parent)
        .map(|r| r.join("lib"))
    {
        let mut drivers: Vec<PathBuf> = std::fs::read_dir(&lib)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("librustc_driver"))
            })
            .collect();
        drivers.sort();
        for d in &drivers {
            stat(&mut out, d);
        }
    }
    out
}

/// Records the compiler of a build in `cache`.
fn record_compiler(cache: &Path, rustc: &Path, c: &Compiler) {
    let _ = std::fs::write(
        cache.join(COMPILER),
        format!(
            "{}\n{}\n{}\n{}\n",
            rustc.display(),
            c.program.display(),
            c.version,
            resolution(rustc, &c.program)
        ),
    );
}

/// An identifier tail for a mechanism name: `[A-Za-z0-9_]`, at most 24
/// characters.
fn ident_tail(name: &str) -> String {
    name.chars()
        .take(24)
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The prefix of the symbols a mechanism's unit exports: stable across
/// edits of the mechanism (so that the table, which names them, is not
/// recompiled when only kernels change) and unique within a library
/// (mechanism names are).
fn symbol_prefix(name: &str) -> String {
    if codegen::rust::is_identifier(name) {
        format!("nrnrs_m_{name}")
    } else {
        // Two names that sanitise alike keep apart by the hash of the name.
        format!(
            "nrnrs_m_{}_{}",
            ident_tail(name),
            &hash_hex(&[name.as_bytes()])[..16]
        )
    }
}

/// The cache file stem of a unit or of the table: the hash of its source,
/// the compiler's version and the flags, and a readable tail.
fn object_stem(source: &str, version: &str, part: Part, tail: &str) -> String {
    object_stem_with(source, "", version, part, tail)
}

/// [`object_stem`] of a unit compiled against the support crate
/// `support_stem` (whose symbols its object names).
fn object_stem_with(
    source: &str,
    support_stem: &str,
    version: &str,
    part: Part,
    tail: &str,
) -> String {
    let flags = rustc_flags(part).join(" ");
    let h = hash_hex(&[
        source.as_bytes(),
        support_stem.as_bytes(),
        version.as_bytes(),
        flags.as_bytes(),
    ]);
    format!("nrnrs_{h}_{tail}")
}

/// What a failed `rustc` run on generated code said, with each generated
/// line it names traced back to the .mod file; `None` when it succeeded.
struct RustcFailure {
    /// The report to print (rustc's messages and the .mod locations).
    report: String,
}

/// What [`compile_object`] makes of a source.
#[derive(Clone, Copy)]
enum Output<'a> {
    /// An object (a unit, with the support crate's metadata when given, or
    /// the table).
    Object { support: Option<&'a Path> },
    /// The support crate ([`codegen::rust::emit_support`]): its object and
    /// its metadata `rmeta`, which the units are compiled against.
    Support { rmeta: &'a Path },
}

/// Compiles one generated source `src` to the object `obj` (and what else
/// `output` says) with `rustc`, writing it to `src_path` first. On a
/// compile error, the report maps each line rustc names back through
/// `unit` (when given) to `lowered`'s .mod locations. Runs at build time;
/// writes `src_path`, `obj` and a support crate's metadata only.
fn compile_object(
    rustc: &Path,
    part: Part,
    output: Output,
    source: &str,
    src_path: &Path,
    obj: &Path,
    trace: Option<(&Unit, &Lowered)>,
) -> Result<(), RustcFailure> {
    let fail = |report: String| Err(RustcFailure { report });
    if let Err(e) = std::fs::write(src_path, source) {
        return fail(format!("{}: cannot write: {e}", src_path.display()));
    }
    let stem = obj
        .file_stem()
        .map(|s| s.to_string_lossy().replace(['.', '-'], "_"))
        .unwrap_or_else(|| "nrnmech".into());
    let tmp = obj.with_extension(format!("o.{}.tmp", std::process::id()));
    let mut cmd = Command::new(rustc);
    cmd.args(rustc_flags(part));
    // Outputs written under temporary names, then renamed into place.
    let mut outputs = vec![(tmp.clone(), obj.to_path_buf())];
    match output {
        Output::Object { support } => {
            cmd.args([
                "--crate-type",
                "lib",
                "--emit",
                "obj",
                "--crate-name",
                &stem,
            ])
            .arg("-o")
            .arg(&tmp);
            if let Some(rmeta) = support {
                let mut arg =
                    std::ffi::OsString::from(format!("{}=", codegen::rust::SUPPORT_CRATE));
                arg.push(rmeta);
                cmd.arg("--extern").arg(arg);
            }
        }
        Output::Support { rmeta } => {
            let tmp_meta = rmeta.with_extension(format!("rmeta.{}.tmp", std::process::id()));
            let mut emit = std::ffi::OsString::from("obj=");
            emit.push(&tmp);
            emit.push(",metadata=");
            emit.push(&tmp_meta);
            cmd.args([
                "--crate-type",
                "rlib",
                "--crate-name",
                codegen::rust::SUPPORT_CRATE,
            ])
            .args(["-C", &format!("metadata={stem}")])
            .arg("--emit")
            .arg(emit);
            outputs.push((tmp_meta, rmeta.to_path_buf()));
        }
    }
    let result = cmd.arg(src_path).output();
    let result = match result {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot run `{}`: {e}", rustc.display())),
    };
    if result.status.success() {
        for (tmp, path) in &outputs {
            if let Err(e) = std::fs::rename(tmp, path) {
                for (tmp, _) in &outputs {
                    let _ = std::fs::remove_file(tmp);
                }
                return fail(format!("{}: cannot write: {e}", path.display()));
            }
        }
        return Ok(());
    }
    for (tmp, _) in &outputs {
        let _ = std::fs::remove_file(tmp);
    }
    fail(explain_rustc_errors(
        &String::from_utf8_lossy(&result.stderr),
        src_path,
        trace,
    ))
}

/// Turns rustc's JSON diagnostics into text: each error as rustc renders
/// it, then the .mod location of every generated line its spans name.
fn explain_rustc_errors(stderr: &str, src_path: &Path, trace: Option<(&Unit, &Lowered)>) -> String {
    let mut report = String::new();
    let mut shown = 0;
    for line in stderr.lines() {
        let Ok(d) = serde_json::from_str::<serde_json::Value>(line) else {
            // Not a diagnostic (a crash message of rustc itself): keep it.
            report.push_str(line);
            report.push('\n');
            continue;
        };
        if d["level"] != "error"
            || d["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("aborting"))
        {
            continue;
        }
        shown += 1;
        if shown > 10 {
            continue;
        }
        if let Some(r) = d["rendered"].as_str() {
            report.push_str(r.trim_end());
            report.push('\n');
        }
        let mut seen = HashSet::new();
        for span in d["spans"].as_array().into_iter().flatten() {
            let Some(gen_line) = span["line_start"].as_u64() else {
                continue;
            };
            if !seen.insert(gen_line) {
                continue;
            }
            let gen = format!("{}:{gen_line}", src_path.display());
            match trace {
                Some((unit, lowered)) => {
                    let origin = unit.origin_of(gen_line as u32);
                    let _ = writeln!(
                        report,
                        "  = generated line {gen} comes from {}",
                        lowered.location(origin)
                    );
                }
                None => {
                    let _ = writeln!(report, "  = generated line {gen} (the mechanism table)");
                }
            }
        }
    }
    if shown > 10 {
        let _ = writeln!(report, "... and {} more error(s)", shown - 10);
    }
    report
}

/// The system C compiler that links the objects.
fn c_compiler() -> PathBuf {
    std::env::var_os("CC")
        .filter(|c| !c.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("cc"))
}

/// What [`write_fingerprints`] writes (part of its objects' names): bump
/// when the layout changes.
const FINGERPRINTS_FORMAT: &str = "fingerprints object 1";

/// Writes the relocatable object `path` (ELF, or Mach-O on macOS) that
/// defines, for each `(symbol, value)`, a global read-only `u64` `symbol`
/// holding `value` in the target's byte order: what the table reads the
/// source fingerprints from. Writes `path` only.
fn write_fingerprints(path: &Path, entries: &[(String, u64)]) -> Result<(), String> {
    use object::write::{Object, StandardSection, Symbol, SymbolSection};
    use object::{Architecture, BinaryFormat, Endianness, SymbolFlags, SymbolKind, SymbolScope};
    let format = if cfg!(target_os = "macos") {
        BinaryFormat::MachO
    } else {
        BinaryFormat::Elf
    };
    let arch = if cfg!(target_arch = "x86_64") {
        Architecture::X86_64
    } else if cfg!(target_arch = "aarch64") {
        Architecture::Aarch64
    } else {
        return Err(format!(
            "cannot write {}: this processor architecture is not supported",
            path.display()
        ));
    };
    let endian = if cfg!(target_endian = "little") {
        Endianness::Little
    } else {
        Endianness::Big
    };
    let mut obj = Object::new(format, arch, endian);
    let section = obj.section_id(StandardSection::ReadOnlyData);
    for (name, value) in entries {
        let bytes = match endian {
            Endianness::Little => value.to_le_bytes(),
            Endianness::Big => value.to_be_bytes(),
        };
        let offset = obj.append_section_data(section, &bytes, 8);
        obj.add_symbol(Symbol {
            name: name.as_bytes().to_vec(),
            value: offset,
            size: 8,
            kind: SymbolKind::Data,
            scope: SymbolScope::Linkage,
            weak: false,
            section: SymbolSection::Section(section),
            flags: SymbolFlags::None,
        });
    }
    let bytes = obj
        .write()
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let tmp = path.with_extension(format!("o.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("{}: cannot write: {e}", path.display())
        })
}

/// Links `objects` into the shared library `lib`, exporting only
/// `nrnrs_mechanism_table`. Writes `lib` and, on Linux, a version script
/// in `cache`.
fn link(cc: &Path, objects: &[PathBuf], cache: &Path, lib: &Path) -> Result<(), String> {
    let mut cmd = Command::new(cc);
    if cfg!(target_os = "macos") {
        cmd.args([
            "-dynamiclib",
            "-Wl,-exported_symbol,_nrnrs_mechanism_table",
            "-Wl,-dead_strip",
        ]);
    } else {
        let script = cache.join("exports.map");
        std::fs::write(&script, "{ global: nrnrs_mechanism_table; local: *; };\n")
            .map_err(|e| format!("{}: cannot write: {e}", script.display()))?;
        cmd.arg("-shared")
            .arg(format!("-Wl,--version-script={}", script.display()))
            .args(["-Wl,--no-undefined", "-Wl,--gc-sections", "-s"]);
    }
    cmd.arg("-o").arg(lib).args(objects).arg("-lm");
    let out = cmd.output().map_err(|e| {
        format!(
            "cannot run the C compiler `{}` to link: {e} (set CC)",
            cc.display()
        )
    })?;
    if !out.status.success() {
        return Err(format!(
            "linking with `{}` failed:\n{}",
            cc.display(),
            String::from_utf8_lossy(&out.stderr).trim_end()
        ));
    }
    Ok(())
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
    let rustc = args.rustc.clone().unwrap_or_else(|| PathBuf::from("rustc"));
    let out_root = args.output.clone().unwrap_or_else(|| PathBuf::from("."));
    let arch = out_root.join(runtime::arch_dir());
    let cache = arch.join(CACHE);
    // The compiler the last build used, trusted as it is when nothing that
    // decides what `rustc` stands for has changed since ([`resolution`]).
    let wanted = !args.jit_only && args.emit.is_none();
    let recorded = wanted.then(|| last_compiler(&cache, &rustc)).flatten();
    let trusted = recorded
        .as_ref()
        .filter(|(c, stamp)| *stamp == resolution(&rustc, &c.program))
        .map(|(c, _)| c.clone());
    // Otherwise identifying the compiler takes two process starts: it runs
    // in the background, and the build goes ahead with the compiler the last
    // build used (checked against it before the build is recorded).
    let identity = {
        let rustc = rustc.clone();
        let explicit = args.rustc.is_some();
        let wanted = wanted && trusted.is_none();
        std::thread::spawn(move || wanted.then(|| identify(&rustc, explicit)))
    };
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
    let internal = |out: &mut std::io::StdoutLock, e: &dyn std::fmt::Display| {
        let _ = writeln!(
            out,
            "nrnivmodl-rs: internal error: {e} (a bug in nrnivmodl-rs; please report it)"
        );
        ExitCode::from(1)
    };
    if args.emit == Some(crate::BuildEmit::Rust) {
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
            Err(e) => return internal(&mut out, &e),
        };
        if let Err(e) = std::fs::create_dir_all(&arch) {
            return usage(format!("{}: cannot create: {e}", arch.display()));
        }
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
    let join = |identity: std::thread::JoinHandle<Option<Result<Compiler, String>>>| match identity
        .join()
    {
        Ok(Some(r)) => r,
        _ => Err(format!("cannot run `{}`", rustc.display())),
    };
    let (compiler, mut identity) = match (trusted, recorded) {
        (Some(c), _) => (c, None),
        (None, Some((c, _))) => (c, Some(identity)),
        (None, None) => match join(identity) {
            Ok(c) => (c, None),
            Err(e) => return usage(e),
        },
    };
    // Whether the compiler the build assumed is the one `rustc` stands for
    // now; when it is not, the build is redone with the right one.
    let mut confirm = |out: &mut std::io::StdoutLock| -> Option<ExitCode> {
        let actual = join(identity.take()?);
        match actual {
            Ok(c) if c == compiler => None,
            Ok(c) => {
                let _ = writeln!(
                    out,
                    "  rustc is now {} ({}), not {}: building again with it",
                    c.version,
                    c.program.display(),
                    compiler.version
                );
                record_compiler(&cache, &rustc, &c);
                Some(run(args))
            }
            // `rustc` no longer runs, but the recorded compiler just did.
            Err(_) => None,
        }
    };
    let version = compiler.version.clone();
    // Units, named by content; their symbols by mechanism.
    let prefixes: Vec<String> = lowered
        .iter()
        .map(|l| symbol_prefix(&l.spec.name))
        .collect();
    // Each mechanism has one unit, or two (kernels and lanes), which compile
    // in parallel; `owner[u]` is the mechanism of unit `u`.
    let units: Result<Vec<Vec<Unit>>, _> = lowered
        .par_iter()
        .zip(&prefixes)
        .map(|(l, p)| codegen::rust::emit_units(&l.module, p))
        .collect();
    let (owner, units): (Vec<usize>, Vec<Unit>) = match units {
        Ok(u) => u
            .into_iter()
            .enumerate()
            .flat_map(|(k, us)| us.into_iter().map(move |u| (k, u)))
            .unzip(),
        Err(e) => return internal(&mut out, &e),
    };
    // What every unit uses, compiled once (its name also keys the units).
    let support_source = codegen::rust::emit_support();
    let support_stem = object_stem(&support_source, &version, Part::Unit, "support");
    let stems: Vec<String> = units
        .par_iter()
        .zip(&owner)
        .map(|(u, &k)| {
            let tail = ident_tail(&lowered[k].spec.name);
            let tail = if u.lanes { tail + "_lanes" } else { tail };
            object_stem_with(&u.source, &support_stem, &version, Part::Unit, &tail)
        })
        .collect();
    // What a unit is, in messages.
    let unit_name = |u: usize| {
        let l = &lowered[owner[u]];
        let lanes = if units[u].lanes { " lanes" } else { "" };
        format!("{}{lanes} ({})", l.spec.name, l.file.display())
    };
    let table_entries: Vec<TableEntry> = lowered
        .iter()
        .zip(&prefixes)
        .map(|(l, p)| TableEntry {
            entry: LibraryEntry {
                module: &l.module,
                spec: &l.spec,
                source_fingerprint: l.fingerprint,
            },
            symbol_prefix: p,
        })
        .collect();
    let table_source = match codegen::rust::emit_table(&table_entries) {
        Ok(s) => s,
        Err(e) => return internal(&mut out, &e),
    };
    let table_stem = object_stem(&table_source, &version, Part::Table, "table");
    // The fingerprints of the .mod files: an object of their own, so that a
    // comment recompiles nothing.
    let fingerprints: Vec<(String, u64)> = prefixes
        .iter()
        .zip(&lowered)
        .map(|(p, l)| (codegen::rust::fingerprint_symbol(p), l.fingerprint))
        .collect();
    let fp_text: String = fingerprints
        .iter()
        .map(|(name, fp)| format!("{name} {fp:#018x}\n"))
        .collect();
    let fp_stem = format!(
        "nrnrs_{}_fingerprints",
        hash_hex(&[fp_text.as_bytes(), FINGERPRINTS_FORMAT.as_bytes()])
    );
    if args.verbose {
        let _ = writeln!(
            out,
            "  emitted {} unit(s) and the table at {:.0} ms",
            units.len(),
            t0.elapsed().as_secs_f64() * 1e3
        );
    }
    let cc = c_compiler();
    let key = hash_hex(&[
        table_source.as_bytes(),
        stems.join(" ").as_bytes(),
        fp_stem.as_bytes(),
        version.as_bytes(),
        rustc_flags(Part::Unit).join(" ").as_bytes(),
        rustc_flags(Part::Table).join(" ").as_bytes(),
        cc.as_os_str().as_encoded_bytes(),
    ]);
    if lib.exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == key) {
        let _ = writeln!(
            out,
            "nrnivmodl-rs: {} is up to date ({:.0} ms)",
            lib.display(),
            t0.elapsed().as_secs_f64() * 1e3
        );
        return ExitCode::SUCCESS;
    }
    if let Err(e) = std::fs::create_dir_all(&cache) {
        return usage(format!("{}: cannot create: {e}", cache.display()));
    }
    let _ = std::fs::remove_dir_all(arch.join(OLD_WORK));
    for ext in ["o", "rs"] {
        let _ = std::fs::remove_file(cache.join(format!("{OLD_TABLE}.{ext}")));
    }
    let object = |stem: &str| cache.join(format!("{stem}.o"));
    let todo: Vec<usize> = (0..units.len())
        .filter(|&u| !object(&stems[u]).is_file())
        .collect();
    let table_cached = object(&table_stem).is_file();
    // (rustc takes metadata only from files named `lib*.rmeta`.)
    let support_rmeta = cache.join(format!("lib{support_stem}.rmeta"));
    let support_cached = object(&support_stem).is_file() && support_rmeta.is_file();
    if !object(&fp_stem).is_file() {
        if let Err(e) = write_fingerprints(&object(&fp_stem), &fingerprints) {
            return usage(e);
        }
    }
    let _ = writeln!(
        out,
        "  rustc (opt-level 3): {} unit(s) to compile, {} cached, the table {}, the support crate {}, {} job(s)",
        todo.len(),
        units.len() - todo.len(),
        if table_cached { "cached" } else { "to compile" },
        if support_cached { "cached" } else { "to compile" },
        rayon::current_num_threads()
    );
    if args.verbose {
        for (u, stem) in stems.iter().enumerate() {
            let state = if object(stem).is_file() {
                "cached"
            } else {
                "compile"
            };
            let _ = writeln!(out, "    {state} {} as {stem}.o", unit_name(u));
        }
    }
    let _ = out.flush();
    drop(out);
    let t1 = Instant::now();
    // The support crate first: the units are compiled against it.
    if !support_cached {
        let t = Instant::now();
        let src = cache.join(format!("{support_stem}.rs"));
        let r = compile_object(
            &compiler.program,
            Part::Unit,
            Output::Support {
                rmeta: &support_rmeta,
            },
            &support_source,
            &src,
            &object(&support_stem),
            None,
        );
        let mut out = std::io::stdout().lock();
        match r {
            Ok(()) => {
                let _ = std::fs::remove_file(&src);
                let _ = writeln!(
                    out,
                    "  the support crate {:.2} s",
                    t.elapsed().as_secs_f64()
                );
            }
            Err(f) => {
                if let Some(code) = confirm(&mut out) {
                    return code;
                }
                let _ = writeln!(
                    out,
                    "nrnivmodl-rs: internal error: the Rust support crate does not compile.\n\
                     This is a bug in nrnivmodl-rs, not in your files; please report it.\n\
                     The generated source is kept in {}.\nrustc said:\n{}",
                    src.display(),
                    f.report
                );
                return ExitCode::from(1);
            }
        }
    }
    // The units and the table compile in parallel.
    #[derive(Clone, Copy)]
    enum Job {
        Unit(usize),
        Table,
    }
    let done = Mutex::new(0usize);
    let jobs: Vec<Job> = todo
        .iter()
        .map(|&u| Job::Unit(u))
        .chain((!table_cached).then_some(Job::Table))
        .collect();
    let total = jobs.len();
    let failures: Vec<(String, String)> = jobs
        .par_iter()
        .filter_map(|job| {
            let t = Instant::now();
            let (what, result) = match *job {
                Job::Unit(u) => {
                    let l = &lowered[owner[u]];
                    let unit = &units[u];
                    let stem = &stems[u];
                    let what = unit_name(u);
                    let src = cache.join(format!("{stem}.rs"));
                    let r = compile_object(
                        &compiler.program,
                        Part::Unit,
                        Output::Object {
                            support: Some(&support_rmeta),
                        },
                        &unit.source,
                        &src,
                        &object(stem),
                        Some((unit, l)),
                    );
                    if r.is_ok() {
                        let _ = std::fs::remove_file(&src);
                    }
                    (what, r)
                }
                Job::Table => {
                    let src = cache.join(format!("{table_stem}.rs"));
                    let r = compile_object(
                        &compiler.program,
                        Part::Table,
                        Output::Object { support: None },
                        &table_source,
                        &src,
                        &object(&table_stem),
                        None,
                    );
                    if r.is_ok() {
                        let _ = std::fs::remove_file(&src);
                    }
                    ("the mechanism table".to_string(), r)
                }
            };
            let mut n = done.lock().unwrap_or_else(|e| e.into_inner());
            *n += 1;
            let status = if result.is_ok() { "" } else { "  FAILED" };
            println!(
                "  [{}/{}] {what} {:.2} s{status}",
                *n,
                total,
                t.elapsed().as_secs_f64()
            );
            result.err().map(|f| (what, f.report))
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if let Some(code) = confirm(&mut out) {
        return code;
    }
    if !failures.is_empty() {
        for (what, report) in &failures {
            let _ = writeln!(
                out,
                "nrnivmodl-rs: internal error: the Rust generated for {what} does not compile.\n\
                 This is a bug in nrnivmodl-rs, not in your files; please report it with the .mod file(s).\n\
                 The generated source is kept in {}.\nrustc said:\n{report}",
                cache.display()
            );
        }
        return ExitCode::from(1);
    }
    let t2 = Instant::now();
    let mut objects: Vec<PathBuf> =
        vec![object(&table_stem), object(&fp_stem), object(&support_stem)];
    objects.extend(stems.iter().map(|stem| object(stem)));
    let tmp_lib = cache.join(format!(
        "{}.{}.tmp",
        runtime::library_file_name(),
        std::process::id()
    ));
    if let Err(e) = link(&cc, &objects, &cache, &tmp_lib) {
        let _ = std::fs::remove_file(&tmp_lib);
        let _ = writeln!(out, "nrnivmodl-rs: error: {e}");
        return ExitCode::from(1);
    }
    // Replace atomically, then record what was built.
    if let Err(e) = std::fs::rename(&tmp_lib, &lib) {
        return usage(format!("{}: cannot replace: {e}", lib.display()));
    }
    let _ = std::fs::write(&stamp, format!("{key}\n"));
    record_compiler(&cache, &rustc, &compiler);
    // Prune what the library no longer uses (only files named like ours).
    let keep: HashSet<PathBuf> = objects
        .iter()
        .cloned()
        .chain([support_rmeta.clone()])
        .collect();
    if let Ok(rd) = std::fs::read_dir(&cache) {
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let ours = name.starts_with("nrnrs_") || name.starts_with("libnrnrs_");
            if ours && !keep.contains(&p) {
                if args.verbose {
                    let _ = writeln!(out, "    pruned {name}");
                }
                let _ = std::fs::remove_file(&p);
            }
        }
    }
    let _ = writeln!(
        out,
        "nrnivmodl-rs: built {} in {:.2} s (rustc {:.2} s for {} unit(s) and the table, link {:.2} s)",
        lib.display(),
        t0.elapsed().as_secs_f64(),
        (t2 - t1).as_secs_f64(),
        todo.len(),
        t2.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}
