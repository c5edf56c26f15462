//! The resolved mechanism model: the contract between the front end and code
//! generation.
//!
//! [`crate::resolve::resolve`] builds one [`Mechanism`] per mod file after the
//! parser has produced an AST, and only when it found no errors. Code generation
//! reads it and never looks at the AST `Module` again. What it may rely on:
//!
//! - **Names.** Every name the mod file declares or uses is in [`Mechanism::symbols`]
//!   ([`SymbolTable`]), with its [`SymbolKind`]. Block bodies are kept as AST blocks
//!   (cloned from the module, unchanged); the meaning of each identifier in them is
//!   in the side table [`Mechanism::refs`] ([`Refs::get`] by the identifier's span).
//!   Every name in an expression, every assignment target, every derivative state,
//!   every reaction species and every called function in a kept body has an entry
//!   there, so a code generator never looks a name up by string. Calls to NEURON's
//!   or the C++ library's functions resolve to [`SymbolKind::BuiltinFunction`]
//!   symbols; names that only VERBATIM code can declare resolve to
//!   [`SymbolKind::VerbatimName`] (the file then has a W0305 warning).
//! - **Scopes.** LOCALs and arguments are symbols too, with [`Symbol::owner`] naming
//!   the block that declares them (`"PROCEDURE rates"`, `"NET_RECEIVE"`, …); a
//!   LOCAL or argument shadows a global of the same name (an argument `v` is not the
//!   membrane potential). NET_RECEIVE has an implicit `flag` argument (no span).
//!   Top-level LOCALs are [`SymbolKind::Local`] without an owner (file-scope).
//! - **NEURON's variables.** `v`, `t`, `dt`, `celsius`, `diam`, `area` (and
//!   `secondorder`, `usetable`, `f_flux`, `b_flux`) are [`SymbolKind::Builtin`],
//!   whether or not the file declares them (a declaration keeps its units and span).
//! - **Storage.** Parameters, assigned variables and states with
//!   [`Visibility::Range`] are per instance; with [`Visibility::Global`] they are
//!   one value per mechanism. Unlisted PARAMETERs are GLOBAL; unlisted ASSIGNED and
//!   all STATEs are per instance (NEURON's rules). Ion variables ([`Symbol::ion`])
//!   have no visibility unless listed: they are read from and written to the ion
//!   (see [`IonUse`]). A STATE that is also an ion concentration is integrated per
//!   instance and written back to the ion.
//! - **Blocks.** At most one INITIAL, BREAKPOINT and NET_RECEIVE: when a file has
//!   two INITIAL or BREAKPOINT blocks their statements are concatenated in file
//!   order, as nocmodl does (warning W0317). SOLVE statements name a block in
//!   [`Mechanism::solve_blocks`] or a PROCEDURE in [`Mechanism::callables`]
//!   ([`SolveTarget`]); the method has been checked against the block kind, and
//!   [`Solve::method`] is the method NEURON uses when none was written
//!   (derivimplicit for DERIVATIVE, `_advance` for KINETIC).
//! - **Constants.** UNITS factors are evaluated to `f64` exactly as nocmodl 9.0.2
//!   does (bit for bit); DEFINE values are integers. Both are in the symbol table.
//! - **Order.** Symbols are in declaration order (implicit and built-in symbols are
//!   appended when first met); [`Mechanism::states`] lists the states in the order
//!   of the STATE block, which is the order NEURON uses; [`SolveBlock::states`] is
//!   in the same order.
//!
//! Nothing here is mutated after `resolve` returns.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::ast::{BaPhase, BaWhen, Block, Expr};
use crate::source::Span;

/// What kind of NEURON mechanism a mod file defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum MechanismKind {
    /// `SUFFIX name` (or no NEURON block): a distributed mechanism, values per
    /// segment, currents in mA/cm².
    Density,
    /// `POINT_PROCESS name`: one instance at a location, currents in nA.
    PointProcess,
    /// `ARTIFICIAL_CELL name`: a point process without voltage, driven by events.
    ArtificialCell,
}

/// A resolved mod file. See the module documentation for the guarantees.
#[derive(Debug, Clone, Serialize)]
pub struct Mechanism {
    /// The mechanism name: the SUFFIX / POINT_PROCESS / ARTIFICIAL_CELL name, or
    /// the file stem when there is no NEURON block (as nocmodl does).
    pub name: String,
    pub kind: MechanismKind,
    /// The path of the main mod file, as given to the source map.
    pub file: String,
    /// The TITLE line, trimmed.
    pub title: Option<String>,
    /// `THREADSAFE` was written in the NEURON block.
    pub threadsafe_keyword: bool,
    /// True when NEURON would consider the mechanism thread safe: no VERBATIM,
    /// POINTER, or solver methods that are not thread safe, unless THREADSAFE.
    pub thread_safe: bool,
    /// The file has at least one VERBATIM block (top level or inside a block).
    pub has_verbatim: bool,
    pub symbols: SymbolTable,
    /// The side table from identifier spans in the bodies to symbols.
    pub refs: Refs,
    /// USEION statements, in order.
    pub ions: Vec<IonUse>,
    /// NONSPECIFIC_CURRENT names.
    pub nonspecific_currents: Vec<SymbolId>,
    /// ELECTRODE_CURRENT names.
    pub electrode_currents: Vec<SymbolId>,
    /// CONDUCTANCE hints.
    pub conductance_hints: Vec<ConductanceHint>,
    /// Names listed in RANGE statements (and declared).
    pub range: Vec<SymbolId>,
    /// Names listed in GLOBAL statements (and declared).
    pub global: Vec<SymbolId>,
    pub pointers: Vec<SymbolId>,
    pub bbcore_pointers: Vec<SymbolId>,
    pub randoms: Vec<SymbolId>,
    pub externals: Vec<SymbolId>,
    /// STATE variables in declaration order.
    pub states: Vec<SymbolId>,
    /// For each STATE `x` (in order), its initial-value variable `x0`: a
    /// PARAMETER (0 unless the file sets it) that NEURON assigns to `x` at
    /// finitialize, before the INITIAL block runs. Implicit ones have no span.
    pub state_initial_values: Vec<(SymbolId, SymbolId)>,
    /// FUNCTION and PROCEDURE definitions, in file order.
    pub callables: Vec<Callable>,
    pub function_tables: Vec<FunctionTableDef>,
    pub initial: Option<Body>,
    pub breakpoint: Option<Breakpoint>,
    /// DERIVATIVE, KINETIC, LINEAR, NONLINEAR and DISCRETE blocks.
    pub solve_blocks: Vec<SolveBlock>,
    pub net_receive: Option<NetReceive>,
    /// BEFORE / AFTER blocks.
    pub before_after: Vec<BeforeAfter>,
    pub constructor: Option<Body>,
    pub destructor: Option<Body>,
    /// Every TABLE statement (also reachable from its [`Callable`]).
    pub tables: Vec<TableSpec>,
    /// Top-level VERBATIM blocks (those inside bodies stay in the bodies).
    pub verbatim: Vec<Verbatim>,
    /// Derived facts about ion usage.
    pub ion_summary: IonSummary,
}

/// Whether a variable is stored per instance or once per mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Visibility {
    Range,
    Global,
}

/// Index of a symbol in [`SymbolTable::symbols`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct SymbolId(pub u32);

/// All names of a mechanism.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SymbolTable {
    /// Symbols in the order they were declared (built-ins first).
    pub symbols: Vec<Symbol>,
    /// Global-scope names (not LOCALs or arguments) to their symbol.
    #[serde(skip)]
    pub by_name: std::collections::HashMap<String, SymbolId>,
}

impl SymbolTable {
    /// The symbol with this id.
    pub fn get(&self, id: SymbolId) -> &Symbol {
        &self.symbols[id.0 as usize]
    }

    /// The global-scope symbol with this name, if any.
    pub fn lookup(&self, name: &str) -> Option<SymbolId> {
        self.by_name.get(name).copied()
    }

    /// Adds a symbol; global-scope ones (owner `None`) also become findable by name.
    pub fn push(&mut self, symbol: Symbol) -> SymbolId {
        let id = SymbolId(self.symbols.len() as u32);
        if symbol.owner.is_none() {
            self.by_name.insert(symbol.name.clone(), id);
        }
        self.symbols.push(symbol);
        id
    }

    /// Mutable access, used only while resolving.
    pub fn get_mut(&mut self, id: SymbolId) -> &mut Symbol {
        &mut self.symbols[id.0 as usize]
    }
}

/// One name.
#[derive(Debug, Clone, Serialize)]
pub struct Symbol {
    pub name: String,
    pub kind: SymbolKind,
    /// RANGE or GLOBAL, for parameters, assigned variables and states.
    pub visibility: Option<Visibility>,
    /// The unit text as written, without parentheses.
    pub units: Option<String>,
    /// The default value (PARAMETER `= value`, STATE/ASSIGNED have none).
    pub default: Option<f64>,
    /// `<lo, hi>` limits.
    pub limits: Option<(f64, f64)>,
    /// Array length for `x[n]`.
    pub array_len: Option<usize>,
    /// Where it is declared; `None` for built-ins and implicit declarations.
    pub span: Option<Span>,
    /// The ion this variable belongs to, when it is named in a USEION.
    pub ion: Option<IonBinding>,
    /// Assigned somewhere (an assignment, a derivative or kinetic equation, a
    /// SOLVEFOR target, or the ion's WRITE list).
    pub written: bool,
    /// Read somewhere in an expression.
    pub read: bool,
    /// For LOCALs and arguments: the block that owns them (e.g. `FUNCTION rates`).
    pub owner: Option<String>,
}

/// What a name is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum SymbolKind {
    Parameter,
    Assigned,
    State,
    /// CONSTANT block entry.
    Constant {
        value: f64,
    },
    /// UNITS-block factor, evaluated as nocmodl does.
    UnitsConstant {
        value: f64,
    },
    /// DEFINE name value.
    Define {
        value: i64,
    },
    /// A USEION read/write name that no PARAMETER/ASSIGNED/STATE declares.
    IonVariable,
    Pointer,
    BbcorePointer,
    Random,
    External,
    Local,
    Argument,
    Function {
        arity: usize,
    },
    Procedure {
        arity: usize,
    },
    FunctionTable {
        arity: usize,
    },
    /// A named block: DERIVATIVE, KINETIC, LINEAR, NONLINEAR, DISCRETE.
    Block(SolveBlockKind),
    /// A variable NEURON provides.
    Builtin(Builtin),
    /// A function NEURON or the C++ math library provides (exp, fabs, net_send, …).
    BuiltinFunction,
    /// A name declared nowhere in NMODL, in a file with VERBATIM: assumed to be
    /// a C++ variable or function that the VERBATIM code declares (warning W0305).
    /// Code generation passes it through by name.
    VerbatimName,
}

/// Variables NEURON provides to every mod file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Builtin {
    /// Membrane potential (mV).
    V,
    /// Time (ms).
    T,
    /// Time step (ms).
    Dt,
    /// Temperature (degC), a global of NEURON.
    Celsius,
    /// Segment area (µm²), only when declared.
    Area,
    /// Segment diameter (µm), only when declared.
    Diam,
    /// Integration order flag of NEURON (0, 1 or 2).
    Secondorder,
    /// Switch for TABLE use, `usetable_<suffix>`.
    Usetable,
    /// In KINETIC, the forward flux of the reaction just above (`f_flux`).
    FFlux,
    /// In KINETIC, the backward flux of the reaction just above (`b_flux`).
    BFlux,
}

/// How a symbol is tied to an ion by a USEION statement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IonBinding {
    pub ion: String,
    pub role: IonRole,
    pub read: bool,
    pub write: bool,
}

/// Which of the ion's variables a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum IonRole {
    /// `xi`
    ConcentrationInside,
    /// `xo`
    ConcentrationOutside,
    /// `ex`
    Reversal,
    /// `ix`
    Current,
    /// `dixdv` (kept by NEURON; not writable from mod files).
    CurrentDerivative,
}

/// One USEION statement.
#[derive(Debug, Clone, Serialize)]
pub struct IonUse {
    pub ion: String,
    pub read: Vec<SymbolId>,
    pub write: Vec<SymbolId>,
    /// The valence: VALENCE if given, else NEURON's default for na, k (1) and
    /// ca (2), else `None` (NEURON registers the ion with an undefined valence).
    pub valence: Option<f64>,
    /// VALENCE was written.
    pub valence_explicit: bool,
    /// REPRESENTS ontology id, if given.
    pub represents: Option<String>,
    pub span: Span,
}

/// Facts about the ions code generation needs without walking [`IonUse`]s.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IonSummary {
    /// For each ion, the current variables written (`ina`, …).
    pub currents_written: BTreeMap<String, Vec<SymbolId>>,
    /// Some concentration (inside or outside) is read.
    pub reads_concentration: bool,
    /// Some concentration is written.
    pub writes_concentration: bool,
    /// Some reversal potential is written.
    pub writes_reversal: bool,
}

/// `CONDUCTANCE g [USEION ion]`.
#[derive(Debug, Clone, Serialize)]
pub struct ConductanceHint {
    pub conductance: SymbolId,
    pub ion: Option<String>,
    pub span: Span,
}

/// A body: the AST block cloned from the module, unchanged (it carries its span).
pub type Body = Block;

/// A FUNCTION or PROCEDURE.
#[derive(Debug, Clone, Serialize)]
pub struct Callable {
    pub name: String,
    pub symbol: SymbolId,
    pub is_function: bool,
    pub params: Vec<Param>,
    /// FUNCTION return units, as written.
    pub return_units: Option<String>,
    /// Index into [`Mechanism::tables`] of this callable's TABLE, if any.
    pub table: Option<usize>,
    pub body: Body,
    pub span: Span,
}

/// A formal argument.
#[derive(Debug, Clone, Serialize)]
pub struct Param {
    pub name: String,
    pub symbol: SymbolId,
    pub units: Option<String>,
}

/// A FUNCTION_TABLE declaration (data supplied at run time).
#[derive(Debug, Clone, Serialize)]
pub struct FunctionTableDef {
    pub name: String,
    pub symbol: SymbolId,
    pub params: Vec<Param>,
    pub return_units: Option<String>,
    pub span: Span,
}

/// `TABLE names DEPEND deps FROM lo TO hi WITH n` inside a FUNCTION or PROCEDURE.
#[derive(Debug, Clone, Serialize)]
pub struct TableSpec {
    /// The tabulated variables (empty for a FUNCTION: its return value is).
    pub names: Vec<SymbolId>,
    pub depend: Vec<SymbolId>,
    pub from: Expr,
    pub to: Expr,
    /// The number of intervals; the table has `with + 1` points.
    pub with: i64,
    /// The FUNCTION or PROCEDURE holding the statement.
    pub owner: String,
    pub span: Span,
}

/// The BREAKPOINT block.
#[derive(Debug, Clone, Serialize)]
pub struct Breakpoint {
    /// The whole block, SOLVE statements included.
    pub body: Body,
    /// The SOLVE statements, in order.
    pub solves: Vec<Solve>,
}

/// `SOLVE block [METHOD m | STEADYSTATE m]`.
#[derive(Debug, Clone, Serialize)]
pub struct Solve {
    pub block: String,
    pub target: SolveTarget,
    /// The method NEURON uses: as written, or the default for the block kind.
    pub method: Method,
    /// A METHOD was written.
    pub method_explicit: bool,
    /// STEADYSTATE was written (then `method` is the steady-state method).
    pub steadystate: bool,
    pub span: Span,
}

/// What a SOLVE statement names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SolveTarget {
    /// Index into [`Mechanism::solve_blocks`].
    Block(usize),
    /// Index into [`Mechanism::callables`] (a PROCEDURE).
    Procedure(usize),
}

/// Integration and solution methods NEURON 9 accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Method {
    Cnexp,
    Derivimplicit,
    Euler,
    Runge,
    Sparse,
    /// KINETIC without a METHOD (nocmodl's `_advance`).
    Advance,
    Newton,
    Simeq,
    AfterCvode,
    CvodeT,
    CvodeTV,
    /// A PROCEDURE or DISCRETE block solved without a method.
    None,
}

impl Method {
    /// Parses a METHOD name as written in a mod file.
    pub fn from_name(name: &str) -> Option<Method> {
        Some(match name {
            "cnexp" => Method::Cnexp,
            "derivimplicit" => Method::Derivimplicit,
            "euler" => Method::Euler,
            "runge" => Method::Runge,
            "sparse" => Method::Sparse,
            "_advance" => Method::Advance,
            "newton" => Method::Newton,
            "simeq" => Method::Simeq,
            "after_cvode" => Method::AfterCvode,
            "cvode_t" => Method::CvodeT,
            "cvode_t_v" => Method::CvodeTV,
            _ => return None,
        })
    }

    /// The name as written in a mod file.
    pub fn name(self) -> &'static str {
        match self {
            Method::Cnexp => "cnexp",
            Method::Derivimplicit => "derivimplicit",
            Method::Euler => "euler",
            Method::Runge => "runge",
            Method::Sparse => "sparse",
            Method::Advance => "_advance",
            Method::Newton => "newton",
            Method::Simeq => "simeq",
            Method::AfterCvode => "after_cvode",
            Method::CvodeT => "cvode_t",
            Method::CvodeTV => "cvode_t_v",
            Method::None => "none",
        }
    }
}

/// The kinds of named blocks SOLVE can target (besides PROCEDUREs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SolveBlockKind {
    Derivative,
    Kinetic,
    Linear,
    Nonlinear,
    Discrete,
}

impl SolveBlockKind {
    /// The keyword of the block.
    pub fn keyword(self) -> &'static str {
        match self {
            SolveBlockKind::Derivative => "DERIVATIVE",
            SolveBlockKind::Kinetic => "KINETIC",
            SolveBlockKind::Linear => "LINEAR",
            SolveBlockKind::Nonlinear => "NONLINEAR",
            SolveBlockKind::Discrete => "DISCRETE",
        }
    }

    /// The methods nocmodl 9.0.2 accepts for this block kind, and the default.
    pub fn methods(self) -> (&'static [Method], Method) {
        match self {
            SolveBlockKind::Derivative => (
                &[
                    Method::Cnexp,
                    Method::Derivimplicit,
                    Method::Euler,
                    Method::Runge,
                ],
                Method::Derivimplicit,
            ),
            SolveBlockKind::Kinetic => (
                &[Method::Sparse, Method::Euler, Method::Advance],
                Method::Advance,
            ),
            SolveBlockKind::Linear => (&[Method::Simeq], Method::Simeq),
            SolveBlockKind::Nonlinear => (&[Method::Newton], Method::Newton),
            SolveBlockKind::Discrete => (&[], Method::None),
        }
    }
}

/// A DERIVATIVE, KINETIC, LINEAR, NONLINEAR or DISCRETE block.
#[derive(Debug, Clone, Serialize)]
pub struct SolveBlock {
    pub name: String,
    pub kind: SolveBlockKind,
    pub body: Body,
    /// The states it solves for: primed states (DERIVATIVE), reaction species
    /// (KINETIC), SOLVEFOR names or `~` equation states (LINEAR/NONLINEAR).
    pub states: Vec<SymbolId>,
    pub span: Span,
}

/// The NET_RECEIVE block.
#[derive(Debug, Clone, Serialize)]
pub struct NetReceive {
    pub params: Vec<Param>,
    pub body: Body,
    /// The `INITIAL { }` block inside NET_RECEIVE (per-NetCon initialisation).
    pub initial: Option<Body>,
    pub span: Span,
}

/// `BEFORE|AFTER INITIAL|BREAKPOINT|SOLVE|STEP { }`.
#[derive(Debug, Clone, Serialize)]
pub struct BeforeAfter {
    pub when: BaWhen,
    pub phase: BaPhase,
    pub body: Body,
}

/// A top-level VERBATIM block, kept as opaque text.
#[derive(Debug, Clone, Serialize)]
pub struct Verbatim {
    pub text: String,
    pub span: Span,
}

/// The side table of name resolutions: for each identifier occurrence in a kept
/// body (keyed by its span's file and byte range), the symbol it denotes.
/// Entries are sorted by key, so lookups are binary searches.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Refs {
    pub entries: Vec<(RefKey, SymbolId)>,
}

impl Refs {
    /// The symbol an identifier written at `span` denotes, if it was resolved.
    pub fn get(&self, span: Span) -> Option<SymbolId> {
        let key = RefKey::of(span);
        self.entries
            .binary_search_by(|(k, _)| k.cmp(&key))
            .ok()
            .map(|i| self.entries[i].1)
    }

    /// Records a resolution (used while resolving; call [`Refs::finish`] after).
    pub fn insert(&mut self, span: Span, id: SymbolId) {
        self.entries.push((RefKey::of(span), id));
    }

    /// Sorts the entries so that [`Refs::get`] works.
    pub fn finish(&mut self) {
        self.entries.sort_by_key(|e| e.0);
        self.entries.dedup_by(|a, b| a.0 == b.0);
    }
}

/// The key of an identifier occurrence: file index and byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct RefKey {
    pub file: u32,
    pub start: u32,
    pub end: u32,
}

impl RefKey {
    /// The key of the identifier written at `span`.
    pub fn of(span: Span) -> RefKey {
        RefKey {
            file: span.file.0,
            start: span.start,
            end: span.end,
        }
    }
}

impl Mechanism {
    /// A human-readable summary of the resolved model (symbols with kinds and
    /// units, ions, blocks, signatures, SOLVE methods, tables), one fact per line.
    /// Used by the snapshot tests and for `--explain`-style output; expressions
    /// are shown as their source text, so `sources` must be the map the module was
    /// parsed from.
    pub fn summary(&self, sources: &crate::source::SourceMap) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let name_of = |id: &SymbolId| self.symbols.get(*id).name.clone();
        let names = |ids: &[SymbolId]| ids.iter().map(name_of).collect::<Vec<_>>().join(", ");
        let _ = writeln!(out, "mechanism {} ({:?})", self.name, self.kind);
        if let Some(t) = &self.title {
            let _ = writeln!(out, "title: {t}");
        }
        let _ = writeln!(
            out,
            "threadsafe keyword: {}, thread safe: {}, verbatim: {}",
            self.threadsafe_keyword, self.thread_safe, self.has_verbatim
        );
        let _ = writeln!(out, "symbols:");
        for s in &self.symbols.symbols {
            let mut line = format!("  {}", s.name);
            if let Some(o) = &s.owner {
                let _ = write!(line, " (in {o})");
            }
            let kind = match &s.kind {
                SymbolKind::Constant { value } => format!("Constant = {value}"),
                SymbolKind::UnitsConstant { value } => format!("UnitsConstant = {value:e}"),
                SymbolKind::Define { value } => format!("Define = {value}"),
                SymbolKind::Function { arity } => format!("Function/{arity}"),
                SymbolKind::Procedure { arity } => format!("Procedure/{arity}"),
                SymbolKind::FunctionTable { arity } => format!("FunctionTable/{arity}"),
                SymbolKind::Block(k) => format!("Block {}", k.keyword()),
                SymbolKind::Builtin(b) => format!("Builtin {b:?}"),
                other => format!("{other:?}"),
            };
            let _ = write!(line, ": {kind}");
            if let Some(v) = s.visibility {
                let _ = write!(line, " {v:?}");
            }
            if let Some(n) = s.array_len {
                let _ = write!(line, " [{n}]");
            }
            if let Some(u) = &s.units {
                let _ = write!(line, " ({u})");
            }
            if let Some(d) = s.default {
                let _ = write!(line, " default {d}");
            }
            if let Some((lo, hi)) = s.limits {
                let _ = write!(line, " <{lo}, {hi}>");
            }
            if let Some(b) = &s.ion {
                let rw = match (b.read, b.write) {
                    (true, true) => "read+write",
                    (false, true) => "write",
                    _ => "read",
                };
                let _ = write!(line, " ion {} {:?} {rw}", b.ion, b.role);
            }
            if s.written {
                line.push_str(" written");
            }
            let _ = writeln!(out, "{line}");
        }
        for u in &self.ions {
            let _ = writeln!(
                out,
                "ion {}: read [{}] write [{}] valence {}{}",
                u.ion,
                names(&u.read),
                names(&u.write),
                u.valence
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "undefined".into()),
                u.represents
                    .as_ref()
                    .map(|r| format!(" represents {r}"))
                    .unwrap_or_default()
            );
        }
        let lists: [(&str, &[SymbolId]); 9] = [
            ("range", &self.range),
            ("global", &self.global),
            ("nonspecific currents", &self.nonspecific_currents),
            ("electrode currents", &self.electrode_currents),
            ("pointers", &self.pointers),
            ("bbcore pointers", &self.bbcore_pointers),
            ("randoms", &self.randoms),
            ("externals", &self.externals),
            ("states", &self.states),
        ];
        for (label, ids) in lists {
            if !ids.is_empty() {
                let _ = writeln!(out, "{label}: {}", names(ids));
            }
        }
        for c in &self.conductance_hints {
            let _ = writeln!(
                out,
                "conductance hint: {}{}",
                name_of(&c.conductance),
                c.ion
                    .as_ref()
                    .map(|i| format!(" (ion {i})"))
                    .unwrap_or_default()
            );
        }
        let s = &self.ion_summary;
        if !self.ions.is_empty() {
            let currents: Vec<String> = s
                .currents_written
                .iter()
                .map(|(ion, ids)| format!("{ion}: {}", names(ids)))
                .collect();
            let _ = writeln!(
                out,
                "ion summary: currents written [{}], reads conc {}, writes conc {}, writes erev {}",
                currents.join("; "),
                s.reads_concentration,
                s.writes_concentration,
                s.writes_reversal
            );
        }
        for c in &self.callables {
            let params: Vec<String> = c
                .params
                .iter()
                .map(|p| match &p.units {
                    Some(u) => format!("{} ({u})", p.name),
                    None => p.name.clone(),
                })
                .collect();
            let _ = writeln!(
                out,
                "{} {}({}){}{}",
                if c.is_function {
                    "FUNCTION"
                } else {
                    "PROCEDURE"
                },
                c.name,
                params.join(", "),
                c.return_units
                    .as_ref()
                    .map(|u| format!(" ({u})"))
                    .unwrap_or_default(),
                c.table
                    .map(|t| format!(" with TABLE #{t}"))
                    .unwrap_or_default()
            );
        }
        for f in &self.function_tables {
            let params: Vec<&str> = f.params.iter().map(|p| p.name.as_str()).collect();
            let _ = writeln!(out, "FUNCTION_TABLE {}({})", f.name, params.join(", "));
        }
        if self.initial.is_some() {
            let _ = writeln!(out, "INITIAL");
        }
        if let Some(bp) = &self.breakpoint {
            let _ = writeln!(out, "BREAKPOINT");
            for s in &bp.solves {
                let _ = writeln!(
                    out,
                    "  SOLVE {} {} {}{}",
                    s.block,
                    if s.steadystate {
                        "STEADYSTATE"
                    } else {
                        "METHOD"
                    },
                    s.method.name(),
                    if s.method_explicit { "" } else { " (default)" }
                );
            }
        }
        for b in &self.solve_blocks {
            let _ = writeln!(
                out,
                "{} {} solves [{}]",
                b.kind.keyword(),
                b.name,
                names(&b.states)
            );
        }
        if let Some(nr) = &self.net_receive {
            let params: Vec<&str> = nr.params.iter().map(|p| p.name.as_str()).collect();
            let _ = writeln!(
                out,
                "NET_RECEIVE({}){}",
                params.join(", "),
                if nr.initial.is_some() {
                    " with INITIAL"
                } else {
                    ""
                }
            );
        }
        for ba in &self.before_after {
            let _ = writeln!(out, "{:?} {:?}", ba.when, ba.phase);
        }
        if self.constructor.is_some() {
            let _ = writeln!(out, "CONSTRUCTOR");
        }
        if self.destructor.is_some() {
            let _ = writeln!(out, "DESTRUCTOR");
        }
        for (i, t) in self.tables.iter().enumerate() {
            let _ = writeln!(
                out,
                "TABLE #{i} in {}: [{}] DEPEND [{}] FROM {} TO {} WITH {}",
                t.owner,
                names(&t.names),
                names(&t.depend),
                sources.text(t.from.span),
                sources.text(t.to.span),
                t.with
            );
        }
        for v in &self.verbatim {
            let _ = writeln!(out, "VERBATIM ({} bytes)", v.text.len());
        }
        out
    }
}
