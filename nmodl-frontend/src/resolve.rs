//! Name resolution and the semantic checks NEURON 9 makes, from an AST
//! [`Module`] to a [`Mechanism`].
//!
//! [`resolve`] runs once per mod file, after parsing and INCLUDE splicing. It
//! reads only the module and the source map, and returns the model plus every
//! diagnostic it found. Errors are what nocmodl 9.0.2 rejects, or what it
//! translates into C++ that then fails to compile (an undeclared name, a call with
//! the wrong number of arguments). Warnings are what nocmodl accepts with a
//! "Warning:" or "Notice:", plus a few mistakes it accepts silently. Each error
//! kind has a stable code (see [`codes`]) and one fixture in
//! `tests/fixtures/errors/semantic_*.mod` saying what nocmodl did with it.
//!
//! The pass order: mechanism kind and name; UNITS; declarations (DEFINE,
//! CONSTANT, PARAMETER, STATE, ASSIGNED, top-level LOCAL, INDEPENDENT); callables
//! and named blocks; NEURON-block statements (USEION, RANGE, GLOBAL, POINTER, …);
//! then every body, resolving each identifier into [`Refs`].

use std::collections::{HashMap, HashSet};

use crate::ast::{
    self, Arg, ArrayDim, Block, Expr, ExprKind, Ident, ItemKind, Module, NeuronStmtKind,
    SolvableKind, Stmt, StmtKind, UnitDefKind, VarDecl,
};
use crate::diagnostic::{has_errors, Diagnostic};
use crate::model::{
    BeforeAfter, Breakpoint, Builtin, Callable, ConductanceHint, FunctionTableDef, IonBinding,
    IonRole, IonSummary, IonUse, Mechanism, MechanismKind, Method, NetReceive, Param, Refs, Solve,
    SolveBlock, SolveBlockKind, SolveTarget, Symbol, SymbolId, SymbolKind, SymbolTable, TableSpec,
    Verbatim, Visibility,
};
use crate::source::{SourceMap, Span};
use crate::units::{Mode, UnitDb, UnitError};

/// Stable diagnostic codes of the resolver. Errors are `E02xx`, warnings `W03xx`.
pub mod codes {
    /// A name used in an expression or assigned is declared nowhere.
    pub const UNDECLARED: &str = "E0201";
    /// A name is declared twice.
    pub const DUPLICATE: &str = "E0202";
    /// A FUNCTION or PROCEDURE is called with the wrong number of arguments.
    pub const ARITY: &str = "E0203";
    /// A call to a function that is defined nowhere.
    pub const UNDEFINED_FUNCTION: &str = "E0204";
    /// A STATE listed in GLOBAL.
    pub const STATE_GLOBAL: &str = "E0205";
    /// SOLVE names no block.
    pub const SOLVE_UNDEFINED: &str = "E0206";
    /// METHOD names no method.
    pub const UNKNOWN_METHOD: &str = "E0207";
    /// METHOD cannot solve that kind of block.
    pub const METHOD_MISMATCH: &str = "E0208";
    /// More than one of SUFFIX / POINT_PROCESS / ARTIFICIAL_CELL.
    pub const MULTIPLE_KINDS: &str = "E0209";
    /// net_send / net_move / net_event / WATCH outside the blocks that allow them.
    pub const EVENT_CONTEXT: &str = "E0210";
    /// An ion variable declared in CONSTANT.
    pub const ION_CONSTANT: &str = "E0211";
    /// A USEION READ/WRITE name that is not a variable of that ion.
    pub const ION_VARIABLE: &str = "E0212";
    /// `x' = …` for an x that is not a STATE.
    pub const DERIV_NOT_STATE: &str = "E0213";
    /// TABLE in a FUNCTION/PROCEDURE without exactly one argument.
    pub const TABLE_ARGS: &str = "E0214";
    /// NET_RECEIVE in a density mechanism.
    pub const NET_RECEIVE_DENSITY: &str = "E0215";
    /// `x[i]` for a scalar x.
    pub const INDEX_SCALAR: &str = "E0216";
    /// An array used without an index.
    pub const ARRAY_NO_INDEX: &str = "E0217";
    /// A name used both as a variable and as a function.
    pub const VAR_AND_FUNCTION: &str = "E0218";
    /// Assignment to t, dt, celsius, diam or area.
    pub const ASSIGN_SPECIAL: &str = "E0219";
    /// diam or area listed in RANGE or GLOBAL.
    pub const SPECIAL_RANGE: &str = "E0220";
    /// NET_RECEIVE without arguments.
    pub const NET_RECEIVE_ARGS: &str = "E0221";
    /// More than one NET_RECEIVE block.
    pub const NET_RECEIVE_TWICE: &str = "E0222";
    /// The same ion in two USEION statements.
    pub const ION_TWICE: &str = "E0223";
    /// SOLVE of something that is neither a solvable block nor a PROCEDURE.
    pub const SOLVE_NOT_BLOCK: &str = "E0224";
    /// A UNITS-block unit NEURON's table does not know.
    pub const UNKNOWN_UNIT: &str = "E0225";
    /// A UNITS-block definition of a unit name that already exists.
    pub const UNIT_REDEFINED: &str = "E0226";
    /// A GLOBAL name that is used but declared nowhere.
    pub const GLOBAL_UNDECLARED: &str = "E0227";
    /// More than one TABLE statement in one FUNCTION or PROCEDURE.
    pub const TABLE_TWICE: &str = "E0228";
    /// An array size that is not a positive integer or a DEFINEd name.
    pub const ARRAY_SIZE: &str = "E0229";
    /// A TABLE statement outside a FUNCTION or PROCEDURE, or a malformed one.
    pub const TABLE_PLACE: &str = "E0230";
    /// FUNCTION_TABLE without arguments.
    pub const FUNCTION_TABLE_ARGS: &str = "E0231";
    /// FOR_NETCONS with a different number of arguments than NET_RECEIVE.
    pub const FOR_NETCONS_ARGS: &str = "E0232";

    /// VERBATIM without THREADSAFE.
    pub const VERBATIM_THREADS: &str = "W0301";
    /// A PARAMETER assigned in a block.
    pub const PARAMETER_WRITTEN: &str = "W0302";
    /// A RANGE or GLOBAL name declared nowhere (NEURON ignores it).
    pub const LISTED_UNDECLARED: &str = "W0303";
    /// Assignment to a GLOBAL without THREADSAFE.
    pub const GLOBAL_WRITTEN: &str = "W0304";
    /// An undeclared name in a file with VERBATIM (it may be declared there).
    pub const UNDECLARED_VERBATIM: &str = "W0305";
    /// Assignment to an ion variable that is only READ.
    pub const ION_READ_ONLY: &str = "W0306";
    /// USEION of an ion other than na, k, ca without VALENCE.
    pub const NO_VALENCE: &str = "W0307";
    /// POINTER, BBCOREPOINTER or EXTERNAL without THREADSAFE.
    pub const POINTER_THREADS: &str = "W0308";
    /// UNITS factor whose two units have different dimensions.
    pub const UNITS_DIMENSIONS: &str = "W0309";
    /// UNITS factor containing `1e-3`-style numbers, which NEURON misreads.
    pub const UNITS_E_NOTATION: &str = "W0310";
    /// A PROCEDURE used as a value.
    pub const PROCEDURE_VALUE: &str = "W0311";
    /// A PARAMETER default of an ion variable or of v, t, dt, celsius, diam,
    /// area, which NEURON ignores.
    pub const ION_DEFAULT_IGNORED: &str = "W0312";
    /// Assignment to a CONSTANT or UNITS constant.
    pub const CONSTANT_WRITTEN: &str = "W0313";
    /// A method that is not thread safe (runge, KINETIC without sparse, LINEAR, NONLINEAR).
    pub const METHOD_THREADS: &str = "W0315";
    /// A second INITIAL or BREAKPOINT block (nocmodl concatenates them).
    pub const SECOND_BLOCK: &str = "W0317";
    /// An undeclared NONSPECIFIC_CURRENT / ELECTRODE_CURRENT / USEION name that is used.
    pub const IMPLICIT_DECLARATION: &str = "W0316";
}

/// Functions NEURON's translator knows (nocmodl `extdef.h`, the RANDOM API and
/// the event functions).
const NEURON_FUNCTIONS: &[&str] = &[
    "first_time",
    "error",
    "f_flux",
    "b_flux",
    "fabs",
    "sqrt",
    "sin",
    "cos",
    "tan",
    "acos",
    "asin",
    "atan",
    "atan2",
    "sinh",
    "cosh",
    "tanh",
    "floor",
    "ceil",
    "fmod",
    "log10",
    "log",
    "pow",
    "printf",
    "prterr",
    "exp",
    "threshold",
    "force",
    "deflate",
    "expfit",
    "derivs",
    "spline",
    "hyperbol",
    "revhyperbol",
    "sigmoid",
    "revsigmoid",
    "harmonic",
    "squarewave",
    "sawtooth",
    "revsawtooth",
    "ramp",
    "pulse",
    "perpulse",
    "step",
    "perstep",
    "erf",
    "exprand",
    "factorial",
    "gauss",
    "normrand",
    "poisrand",
    "poisson",
    "setseed",
    "scop_random",
    "boundary",
    "romberg",
    "legendre",
    "invert",
    "stepforce",
    "schedule",
    "set_seed",
    "nrn_pointing",
    "state_discontinuity",
    "net_send",
    "net_move",
    "net_event",
    "nrn_random_play",
    "at_time",
    "nrn_ghk",
    "random_setseq",
    "random_setids",
    "random_uniform",
    "random_negexp",
    "random_normal",
    "random_ipick",
    "random_dpick",
];

/// C/C++ math functions that nocmodl does not know (it prints "undefined") but
/// that compile, because the generated C++ includes `<cmath>`.
const C_MATH_FUNCTIONS: &[&str] = &[
    "fmin",
    "fmax",
    "round",
    "trunc",
    "hypot",
    "cbrt",
    "expm1",
    "log1p",
    "log2",
    "exp2",
    "erfc",
    "lgamma",
    "tgamma",
    "copysign",
    "fdim",
    "nearbyint",
    "rint",
    "abs",
    "lround",
];

/// Where a statement sits, for the context rules (net_send, TABLE, FUNCTION return).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Initial,
    Breakpoint,
    Solvable(SolvableKind),
    Function,
    Procedure,
    NetReceive,
    NetReceiveInitial,
    Other,
}

/// Resolves a parsed mod file. Runs after parsing (and INCLUDE splicing); reads
/// `module` and `sources` only. Returns the mechanism, or `None` when any error
/// was found, and all diagnostics (errors and warnings) in source order.
pub fn resolve(sources: &SourceMap, module: &Module) -> (Option<Mechanism>, Vec<Diagnostic>) {
    let mut r = Resolver::new(sources, module);
    r.run();
    let mut diags = std::mem::take(&mut r.diags);
    diags.sort_by_key(|d| (d.span.file, d.span.start));
    if has_errors(&diags) {
        return (None, diags);
    }
    (Some(r.finish()), diags)
}

struct Resolver<'a> {
    sources: &'a SourceMap,
    module: &'a Module,
    diags: Vec<Diagnostic>,
    symbols: SymbolTable,
    refs: Refs,
    has_verbatim: bool,
    threadsafe: bool,
    kind: MechanismKind,
    name: String,
    title: Option<String>,
    ions: Vec<IonUse>,
    nonspecific: Vec<SymbolId>,
    electrode: Vec<SymbolId>,
    conductance: Vec<ConductanceHint>,
    range: Vec<SymbolId>,
    global: Vec<SymbolId>,
    pointers: Vec<SymbolId>,
    bbcore_pointers: Vec<SymbolId>,
    randoms: Vec<SymbolId>,
    externals: Vec<SymbolId>,
    states: Vec<SymbolId>,
    callables: Vec<Callable>,
    function_tables: Vec<FunctionTableDef>,
    initial: Option<Block>,
    breakpoint: Option<Breakpoint>,
    solve_blocks: Vec<SolveBlock>,
    net_receive: Option<NetReceive>,
    before_after: Vec<BeforeAfter>,
    constructor: Option<Block>,
    destructor: Option<Block>,
    tables: Vec<TableSpec>,
    verbatim: Vec<Verbatim>,
    /// LOCAL and argument scopes, innermost last.
    scopes: Vec<HashMap<String, SymbolId>>,
    /// The owner label of the block being walked (for LOCAL symbols).
    owner: String,
    /// The FUNCTION being walked (its name may be assigned).
    current_function: Option<String>,
    /// TABLE statements seen in the current callable.
    tables_in_callable: usize,
    /// Names listed in GLOBAL but declared nowhere.
    global_undeclared: HashSet<String>,
    /// Undeclared names already reported (one diagnostic per name).
    reported_undeclared: HashSet<String>,
    /// DEFINE values, for array sizes and TABLE WITH.
    defines: HashMap<String, i64>,
    /// The number of NET_RECEIVE arguments (for FOR_NETCONS).
    net_receive_arity: Option<usize>,
    /// Something other than VERBATIM makes the mechanism not thread safe (a
    /// SOLVE method, POINTER/BBCOREPOINTER/EXTERNAL, a written GLOBAL).
    unsafe_method: bool,
    /// Each STATE and its initial-value variable `x0`.
    state_inits: Vec<(SymbolId, SymbolId)>,
    /// Inside a PROTECT statement.
    in_protect: bool,
    /// GLOBALs assigned somewhere, with the first assignment.
    global_writes: Vec<(SymbolId, Span)>,
    /// GLOBALs assigned under PROTECT.
    protected_globals: HashSet<SymbolId>,
}

impl<'a> Resolver<'a> {
    fn new(sources: &'a SourceMap, module: &'a Module) -> Resolver<'a> {
        Resolver {
            sources,
            module,
            diags: Vec::new(),
            symbols: SymbolTable::default(),
            refs: Refs::default(),
            has_verbatim: false,
            threadsafe: false,
            kind: MechanismKind::Density,
            name: String::new(),
            title: None,
            ions: Vec::new(),
            nonspecific: Vec::new(),
            electrode: Vec::new(),
            conductance: Vec::new(),
            range: Vec::new(),
            global: Vec::new(),
            pointers: Vec::new(),
            bbcore_pointers: Vec::new(),
            randoms: Vec::new(),
            externals: Vec::new(),
            states: Vec::new(),
            callables: Vec::new(),
            function_tables: Vec::new(),
            initial: None,
            breakpoint: None,
            solve_blocks: Vec::new(),
            net_receive: None,
            before_after: Vec::new(),
            constructor: None,
            destructor: None,
            tables: Vec::new(),
            verbatim: Vec::new(),
            scopes: Vec::new(),
            owner: String::new(),
            current_function: None,
            tables_in_callable: 0,
            global_undeclared: HashSet::new(),
            reported_undeclared: HashSet::new(),
            defines: HashMap::new(),
            net_receive_arity: None,
            unsafe_method: false,
            state_inits: Vec::new(),
            in_protect: false,
            global_writes: Vec::new(),
            protected_globals: HashSet::new(),
        }
    }

    fn error(&mut self, code: &'static str, span: Span, msg: impl Into<String>) -> &mut Diagnostic {
        self.diags.push(Diagnostic::error(code, span, msg));
        self.diags.last_mut().expect("just pushed")
    }

    fn warning(
        &mut self,
        code: &'static str,
        span: Span,
        msg: impl Into<String>,
    ) -> &mut Diagnostic {
        self.diags.push(Diagnostic::warning(code, span, msg));
        self.diags.last_mut().expect("just pushed")
    }

    fn run(&mut self) {
        self.has_verbatim = module_has_verbatim(self.module);
        self.mechanism_header();
        self.units_block();
        self.declarations();
        self.state_initials();
        self.callables_and_blocks();
        self.neuron_statements();
        self.bodies();
        self.after_bodies();
    }

    // ----- NEURON block: kind, name, THREADSAFE --------------------------------

    fn mechanism_header(&mut self) {
        let mut seen: Option<(ast::MechanismKind, Ident, Span)> = None;
        for item in &self.module.items {
            match &item.kind {
                ItemKind::Title(t) if self.title.is_none() => {
                    self.title = Some(t.trim().to_string());
                }
                ItemKind::Neuron(stmts) => {
                    for st in stmts {
                        match &st.kind {
                            NeuronStmtKind::Mechanism { kind, name } => {
                                if let Some((_, prev, prev_span)) = &seen {
                                    let (prev_name, prev_span) = (prev.name.clone(), *prev_span);
                                    self.error(
                                        codes::MULTIPLE_KINDS,
                                        st.span,
                                        format!(
                                            "a mod file defines one mechanism, but `{}` is declared after `{}`",
                                            name.name, prev_name
                                        ),
                                    )
                                    .labels
                                    .push((prev_span, "mechanism first named here".into()));
                                    self.diags.last_mut().unwrap().notes.push(
                                        "keep one of SUFFIX, POINT_PROCESS or ARTIFICIAL_CELL (nocmodl silently uses the last one)".into(),
                                    );
                                } else {
                                    seen = Some((*kind, name.clone(), st.span));
                                }
                            }
                            NeuronStmtKind::ThreadSafe(_) => self.threadsafe = true,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        match seen {
            Some((kind, name, _)) => {
                self.kind = match kind {
                    ast::MechanismKind::Suffix => MechanismKind::Density,
                    ast::MechanismKind::PointProcess => MechanismKind::PointProcess,
                    ast::MechanismKind::ArtificialCell => MechanismKind::ArtificialCell,
                };
                self.name = name.name;
            }
            None => {
                // nocmodl names a mechanism without a NEURON block after the file.
                self.kind = MechanismKind::Density;
                self.name = file_stem(self.sources, self.module);
            }
        }
    }

    // ----- UNITS ----------------------------------------------------------------

    fn units_block(&mut self) {
        let mut db = UnitDb::new(Mode::Neuron);
        for item in &self.module.items {
            let ItemKind::Units(defs) = &item.kind else {
                continue;
            };
            for def in defs {
                match &def.kind {
                    UnitDefKind::Alias { name, definition } => {
                        match db.define(&name.text, &definition.text) {
                            Ok(_) => {}
                            Err(UnitError::Redefinition { existing, .. }) => {
                                self.error(
                                    codes::UNIT_REDEFINED,
                                    name.span,
                                    format!("the unit `{}` is already defined", name.text),
                                )
                                .notes
                                .push(format!(
                                    "NEURON's units table defines it as {existing}; remove this line (nocmodl stops with \"Units redefinition\")"
                                ));
                            }
                            Err(e) => self.unit_error(&e, definition),
                        }
                    }
                    UnitDefKind::Conversion { name, from, to } => {
                        let e_notation: Vec<&ast::Units> = [from, to]
                            .into_iter()
                            .filter(|u| has_e_notation(&u.text))
                            .collect();
                        match db.factor_checked(&from.text, &to.text) {
                            Ok((value, f, t)) => {
                                for u in &e_notation {
                                    self.warning(
                                        codes::UNITS_E_NOTATION,
                                        u.span,
                                        format!("NEURON reads `{}` as a number times the elementary charge `e`, not as a power of ten", u.text),
                                    )
                                    .notes
                                    .push(format!("`{}` gets NEURON's value, {value:e}; write the number without units instead (`{} = 0.001`), or use NEURON's exponent form (`1-3`)", name.name, name.name));
                                }
                                if f.dims != t.dims && e_notation.is_empty() {
                                    self.warning(
                                        codes::UNITS_DIMENSIONS,
                                        def.span,
                                        format!(
                                            "`({})` and `({})` have different dimensions",
                                            from.text, to.text
                                        ),
                                    )
                                    .notes
                                    .push(format!(
                                        "`{}` is {} and `{}` is {}; nocmodl divides the two factors anyway, giving {value:e}",
                                        from.text, dims_or_number(&f), to.text, dims_or_number(&t)
                                    ));
                                }
                                self.declare(
                                    &name.clone(),
                                    SymbolKind::UnitsConstant { value },
                                    Some(to.text.clone()),
                                    None,
                                    def.span,
                                );
                            }
                            Err(e) => {
                                let u = if db.parse(&from.text).is_err() {
                                    from
                                } else {
                                    to
                                };
                                self.unit_error(&e, u);
                                // Declare it anyway so that uses do not cascade.
                                self.declare(
                                    &name.clone(),
                                    SymbolKind::UnitsConstant { value: f64::NAN },
                                    Some(to.text.clone()),
                                    None,
                                    def.span,
                                );
                            }
                        }
                    }
                    UnitDefKind::Constant { name, value, units } => {
                        self.declare(
                            &name.clone(),
                            SymbolKind::UnitsConstant { value: value.value },
                            Some(units.text.clone()),
                            None,
                            def.span,
                        );
                    }
                }
            }
        }
    }

    fn unit_error(&mut self, e: &UnitError, u: &ast::Units) {
        match e {
            UnitError::Unknown { name } => {
                self.error(
                    codes::UNKNOWN_UNIT,
                    u.span,
                    format!("NEURON's units table does not know `{name}`"),
                )
                .notes
                .push(format!(
                    "define it first in the UNITS block, e.g. `({name}) = (...)`; common ones: (mV) = (millivolt), (mA) = (milliamp), (um) = (micron), (mM) = (milli/liter), (S) = (siemens)"
                ));
            }
            other => {
                self.error(codes::UNKNOWN_UNIT, u.span, other.to_string());
            }
        }
    }

    // ----- Declarations -----------------------------------------------------------

    /// Adds a global-scope symbol, reporting a duplicate declaration.
    fn declare(
        &mut self,
        name: &Ident,
        kind: SymbolKind,
        units: Option<String>,
        default: Option<f64>,
        span: Span,
    ) -> Option<SymbolId> {
        let _ = span;
        if let Some(prev) = self.symbols.lookup(&name.name) {
            let prev_span = self.symbols.get(prev).span;
            let what = kind_word(&self.symbols.get(prev).kind);
            let d = self.error(
                codes::DUPLICATE,
                name.span,
                format!("`{}` is declared more than once", name.name),
            );
            if let Some(ps) = prev_span {
                d.labels
                    .push((ps, format!("first declared here as {what}")));
            }
            d.notes.push(
                "NEURON 9 rejects duplicate names (\"Multiple declaration\"); rename one of them"
                    .into(),
            );
            return None;
        }
        let builtin = builtin_of(&name.name);
        let kind = match (builtin, &kind) {
            (Some(b), SymbolKind::Parameter | SymbolKind::Assigned) => SymbolKind::Builtin(b),
            _ => kind,
        };
        Some(self.symbols.push(Symbol {
            name: name.name.clone(),
            kind,
            visibility: None,
            units,
            default,
            limits: None,
            array_len: None,
            span: Some(name.span),
            ion: None,
            written: false,
            read: false,
            owner: None,
        }))
    }

    fn declarations(&mut self) {
        let items = &self.module.items;
        for item in items {
            if let ItemKind::Define(d) = &item.kind {
                let v = d.value.value as i64;
                self.defines.insert(d.name.name.clone(), v);
                self.declare(
                    &d.name,
                    SymbolKind::Define { value: v },
                    None,
                    None,
                    item.span,
                );
            }
        }
        for item in items {
            match &item.kind {
                ItemKind::Constant(decls) => {
                    for d in decls {
                        let v = d.value.as_ref().map(|n| n.value).unwrap_or(0.0);
                        self.var_decl(d, SymbolKind::Constant { value: v });
                    }
                }
                ItemKind::Parameter(decls) => {
                    for d in decls {
                        self.var_decl(d, SymbolKind::Parameter);
                    }
                }
                ItemKind::State(decls) => {
                    for d in decls {
                        if let Some(id) = self.var_decl(d, SymbolKind::State) {
                            self.states.push(id);
                        }
                    }
                }
                ItemKind::Assigned(decls) => {
                    for d in decls {
                        self.var_decl(d, SymbolKind::Assigned);
                    }
                }
                ItemKind::Local(vars) => {
                    for v in vars {
                        let len = self.array_len(v.array.as_ref());
                        if let Some(id) =
                            self.declare(&v.name, SymbolKind::Local, None, None, v.name.span)
                        {
                            self.symbols.get_mut(id).array_len = len;
                        }
                    }
                }
                ItemKind::Independent(decls) => {
                    for d in decls {
                        // `t` is NEURON's time; declaring it here is allowed.
                        if self.symbols.lookup(&d.name.name).is_none() {
                            self.declare(
                                &d.name,
                                SymbolKind::Builtin(Builtin::T),
                                d.units.as_ref().map(|u| u.text.clone()),
                                None,
                                d.span,
                            );
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Every STATE `x` has an initial-value variable `x0` (a PARAMETER, 0 by
    /// default, GLOBAL unless listed in RANGE); nocmodl assigns `x = x0` before
    /// the user's INITIAL code. A file may declare `x0` itself.
    fn state_initials(&mut self) {
        for i in 0..self.states.len() {
            let state = self.states[i];
            let name = format!("{}0", self.symbols.get(state).name);
            let init = match self.symbols.lookup(&name) {
                Some(id) => id,
                None => self.symbols.push(Symbol {
                    name,
                    kind: SymbolKind::Parameter,
                    visibility: None,
                    units: self.symbols.get(state).units.clone(),
                    default: Some(0.0),
                    limits: None,
                    array_len: None,
                    span: None,
                    ion: None,
                    written: false,
                    read: false,
                    owner: None,
                }),
            };
            self.state_inits.push((state, init));
        }
    }

    fn var_decl(&mut self, d: &VarDecl, kind: SymbolKind) -> Option<SymbolId> {
        let units = d.units.as_ref().map(|u| u.text.clone());
        let default = d.value.as_ref().map(|n| n.value);
        // nocmodl (warn_ignore): a nonzero default of a PARAMETER that NEURON
        // itself sets is ignored.
        if let (SymbolKind::Parameter, Some(def)) = (&kind, default) {
            let set_by_neuron = matches!(
                builtin_of(&d.name.name),
                Some(
                    Builtin::V
                        | Builtin::T
                        | Builtin::Dt
                        | Builtin::Celsius
                        | Builtin::Diam
                        | Builtin::Area
                )
            );
            if set_by_neuron && def != 0.0 {
                self.warning(
                    codes::ION_DEFAULT_IGNORED,
                    d.name.span,
                    format!(
                        "the default {def} of PARAMETER `{}` is ignored; NEURON sets it",
                        d.name.name
                    ),
                )
                .notes
                .push(format!(
                    "set `{}` from hoc or Python instead (e.g. `h.celsius = ...`)",
                    d.name.name
                ));
            }
        }
        let len = self.array_len(d.array.as_ref());
        let id = self.declare(&d.name, kind, units, default, d.span)?;
        let s = self.symbols.get_mut(id);
        s.array_len = len;
        s.limits = d.limits.as_ref().map(|(a, b)| (a.value, b.value));
        Some(id)
    }

    fn array_len(&mut self, dim: Option<&ArrayDim>) -> Option<usize> {
        match dim? {
            ArrayDim::Literal { value, span } => {
                if *value >= 1 {
                    Some(*value as usize)
                } else {
                    self.error(
                        codes::ARRAY_SIZE,
                        *span,
                        format!("array size {value} is not a positive integer"),
                    );
                    None
                }
            }
            ArrayDim::Define(id) => match self.defines.get(&id.name) {
                Some(v) if *v >= 1 => Some(*v as usize),
                Some(v) => {
                    let v = *v;
                    self.error(
                        codes::ARRAY_SIZE,
                        id.span,
                        format!("array size `{}` = {v} is not a positive integer", id.name),
                    );
                    None
                }
                None => {
                    self.error(
                        codes::ARRAY_SIZE,
                        id.span,
                        format!("array size `{}` is not a DEFINEd name", id.name),
                    )
                    .notes
                    .push(format!(
                        "add `DEFINE {} <size>` before this declaration",
                        id.name
                    ));
                    None
                }
            },
        }
    }

    // ----- Callables and named blocks ------------------------------------------------

    fn callables_and_blocks(&mut self) {
        for item in &self.module.items {
            match &item.kind {
                ItemKind::Function(f) => {
                    self.declare(
                        &f.name,
                        SymbolKind::Function {
                            arity: f.args.len(),
                        },
                        f.units.as_ref().map(|u| u.text.clone()),
                        None,
                        item.span,
                    );
                }
                ItemKind::Procedure(p) => {
                    self.declare(
                        &p.name,
                        SymbolKind::Procedure {
                            arity: p.args.len(),
                        },
                        None,
                        None,
                        item.span,
                    );
                }
                ItemKind::FunctionTable(f) => {
                    if f.args.is_empty() {
                        self.error(
                            codes::FUNCTION_TABLE_ARGS,
                            f.name.span,
                            format!(
                                "FUNCTION_TABLE `{}` must have one or more arguments",
                                f.name.name
                            ),
                        );
                    }
                    if let Some(id) = self.declare(
                        &f.name,
                        SymbolKind::FunctionTable {
                            arity: f.args.len(),
                        },
                        f.units.as_ref().map(|u| u.text.clone()),
                        None,
                        item.span,
                    ) {
                        let params = f
                            .args
                            .iter()
                            .map(|a| Param {
                                name: a.name.name.clone(),
                                symbol: id,
                                units: a.units.as_ref().map(|u| u.text.clone()),
                            })
                            .collect();
                        self.function_tables.push(FunctionTableDef {
                            name: f.name.name.clone(),
                            symbol: id,
                            params,
                            return_units: f.units.as_ref().map(|u| u.text.clone()),
                            span: item.span,
                        });
                    }
                }
                ItemKind::Solvable(b) => {
                    if let Some(kind) = solve_block_kind(b.kind) {
                        self.declare(&b.name, SymbolKind::Block(kind), None, None, item.span);
                    }
                }
                _ => {}
            }
        }
    }

    // ----- NEURON-block statements ------------------------------------------------------

    fn neuron_statements(&mut self) {
        let stmts: Vec<&ast::NeuronStmt> = self
            .module
            .items
            .iter()
            .filter_map(|i| match &i.kind {
                ItemKind::Neuron(s) => Some(s.iter()),
                _ => None,
            })
            .flatten()
            .collect();
        let mut listed_range: Vec<Ident> = Vec::new();
        // First POINTER, BBCOREPOINTER and EXTERNAL names, for nocmodl's notices.
        let mut first_pointer: Option<Span> = None;
        let mut first_bbcore: Option<Span> = None;
        let mut first_external: Option<Span> = None;
        let mut listed_global: Vec<Ident> = Vec::new();
        for st in &stmts {
            match &st.kind {
                NeuronStmtKind::UseIon(u) => self.use_ion(u, st.span),
                NeuronStmtKind::NonspecificCurrent(names) => {
                    for n in names {
                        let id = self.implicit(n, SymbolKind::Assigned);
                        self.symbols.get_mut(id).written = true;
                        self.nonspecific.push(id);
                    }
                }
                NeuronStmtKind::ElectrodeCurrent(names) => {
                    for n in names {
                        let id = self.implicit(n, SymbolKind::Assigned);
                        self.symbols.get_mut(id).written = true;
                        self.electrode.push(id);
                    }
                }
                NeuronStmtKind::Range(names) => listed_range.extend(names.iter().cloned()),
                NeuronStmtKind::Global(names) => listed_global.extend(names.iter().cloned()),
                NeuronStmtKind::Pointer(names) => {
                    for n in names {
                        first_pointer.get_or_insert(n.span);
                        let id = self.retype(n, SymbolKind::Pointer);
                        self.pointers.push(id);
                    }
                }
                NeuronStmtKind::BbcorePointer(names) => {
                    for n in names {
                        first_bbcore.get_or_insert(n.span);
                        let id = self.retype(n, SymbolKind::BbcorePointer);
                        self.bbcore_pointers.push(id);
                    }
                }
                NeuronStmtKind::External(names) => {
                    for n in names {
                        first_external.get_or_insert(n.span);
                        let id = self.retype(n, SymbolKind::External);
                        self.externals.push(id);
                    }
                }
                NeuronStmtKind::Random(names) => {
                    for n in names {
                        if let Some(id) = self.declare(n, SymbolKind::Random, None, None, n.span) {
                            self.randoms.push(id);
                        }
                    }
                }
                NeuronStmtKind::Conductance(c) => {
                    let id = self.implicit(&c.name, SymbolKind::Assigned);
                    self.conductance.push(ConductanceHint {
                        conductance: id,
                        ion: c.ion.as_ref().map(|i| i.name.clone()),
                        span: st.span,
                    });
                }
                NeuronStmtKind::Mechanism { .. }
                | NeuronStmtKind::ThreadSafe(_)
                | NeuronStmtKind::Represents(_) => {}
            }
        }
        for n in &listed_range {
            self.visibility(n, Visibility::Range);
        }
        for n in &listed_global {
            self.visibility(n, Visibility::Global);
        }
        // Default visibility: PARAMETERs are GLOBAL unless RANGE; ASSIGNED and
        // STATE are per instance. Ion variables live in the ion, not in the
        // mechanism, unless listed.
        for s in &mut self.symbols.symbols {
            if s.visibility.is_none() && s.ion.is_none() {
                s.visibility = match s.kind {
                    SymbolKind::Parameter => Some(Visibility::Global),
                    SymbolKind::Assigned | SymbolKind::State => Some(Visibility::Range),
                    _ => None,
                };
            }
        }
        for (first, word) in [
            (first_pointer, "POINTER"),
            (first_bbcore, "BBCOREPOINTER"),
            (first_external, "EXTERNAL"),
        ] {
            if let (Some(span), false) = (first, self.threadsafe) {
                self.unsafe_method = true;
                self.warning(codes::POINTER_THREADS, span, format!("use of {word} is not thread safe"))
                    .notes
                    .push("NEURON runs this mechanism in thread 0 only; add THREADSAFE to the NEURON block if the access is safe".into());
            }
        }
    }

    /// A name listed in the NEURON block that should also be declared in a block;
    /// creates an implicit symbol when it is not.
    fn implicit(&mut self, n: &Ident, kind: SymbolKind) -> SymbolId {
        if let Some(id) = self.symbols.lookup(&n.name) {
            return id;
        }
        self.symbols.push(Symbol {
            name: n.name.clone(),
            kind,
            visibility: None,
            units: None,
            default: None,
            limits: None,
            array_len: None,
            span: Some(n.span),
            ion: None,
            written: false,
            read: false,
            owner: None,
        })
    }

    /// POINTER / BBCOREPOINTER / EXTERNAL names: declared in ASSIGNED (usually)
    /// and given their special kind here.
    fn retype(&mut self, n: &Ident, kind: SymbolKind) -> SymbolId {
        match self.symbols.lookup(&n.name) {
            Some(id) => {
                let s = self.symbols.get_mut(id);
                if matches!(s.kind, SymbolKind::Assigned | SymbolKind::Parameter) {
                    s.kind = kind;
                    s.visibility = None;
                }
                id
            }
            None => self.implicit(n, kind),
        }
    }

    fn visibility(&mut self, n: &Ident, vis: Visibility) {
        let word = if vis == Visibility::Range {
            "RANGE"
        } else {
            "GLOBAL"
        };
        if n.name == "diam" || n.name == "area" {
            self.error(
                codes::SPECIAL_RANGE,
                n.span,
                format!(
                    "`{}` is NEURON's own variable and cannot be {word} in a mechanism",
                    n.name
                ),
            )
            .notes
            .push(format!(
                "declare `{}` in ASSIGNED to read it; remove it from {word}",
                n.name
            ));
            return;
        }
        let Some(id) = self.symbols.lookup(&n.name) else {
            if vis == Visibility::Global {
                // nocmodl rejects this even when the name is never used.
                self.global_undeclared.insert(n.name.clone());
                self.error(
                    codes::GLOBAL_UNDECLARED,
                    n.span,
                    format!("`{}` is listed in GLOBAL but declared nowhere", n.name),
                )
                .notes
                .push(format!(
                    "declare `{}` in PARAMETER or ASSIGNED (nocmodl: \"does not have a proper declaration\")",
                    n.name
                ));
                return;
            }
            self.warning(
                codes::LISTED_UNDECLARED,
                n.span,
                format!("`{}` is listed in {word} but declared nowhere", n.name),
            )
            .notes
            .push(format!(
                "NEURON ignores it; declare `{}` in PARAMETER or ASSIGNED, or remove it from {word}",
                n.name
            ));
            return;
        };
        let sym = self.symbols.get(id);
        let decl = sym.span;
        match (&sym.kind, vis) {
            (SymbolKind::State, Visibility::Global) => {
                let d = self.error(
                    codes::STATE_GLOBAL,
                    n.span,
                    format!("`{}` is a STATE variable and cannot be GLOBAL", n.name),
                );
                if let Some(s) = decl {
                    d.labels.push((s, "declared as STATE here".into()));
                }
                d.notes
                    .push("states are always per instance; use RANGE to make it visible".into());
                return;
            }
            (
                SymbolKind::Parameter
                | SymbolKind::Assigned
                | SymbolKind::State
                | SymbolKind::IonVariable
                | SymbolKind::Builtin(_),
                _,
            ) => {}
            _ => return,
        }
        self.symbols.get_mut(id).visibility = Some(vis);
        match vis {
            Visibility::Range => self.range.push(id),
            Visibility::Global => self.global.push(id),
        }
    }

    fn use_ion(&mut self, u: &ast::UseIon, span: Span) {
        let ion = u.ion.name.clone();
        if let Some(prev) = self.ions.iter().find(|i| i.ion == ion) {
            let prev_span = prev.span;
            self.error(
                codes::ION_TWICE,
                u.ion.span,
                format!("ion `{ion}` is used in two USEION statements"),
            )
            .labels
            .push((prev_span, "first USEION here".into()));
            self.diags
                .last_mut()
                .unwrap()
                .notes
                .push("merge them into one `USEION ... READ ... WRITE ...` (nocmodl: \"merging of neuron models not supported\")".into());
            return;
        }
        let mut read = Vec::new();
        let mut write = Vec::new();
        for (names, is_write) in [(&u.read, false), (&u.write, true)] {
            for n in names {
                let Some(role) = ion_role(&ion, &n.name) else {
                    self.error(
                        codes::ION_VARIABLE,
                        n.span,
                        format!("`{}` is not a variable of the ion `{ion}`", n.name),
                    )
                    .notes
                    .push(format!(
                        "the variables of `{ion}` are e{ion} (reversal potential), {ion}i and {ion}o (concentrations) and i{ion} (current)"
                    ));
                    continue;
                };
                let id = match self.symbols.lookup(&n.name) {
                    Some(id) => id,
                    None => self.implicit(n, SymbolKind::IonVariable),
                };
                let sym = self.symbols.get(id).clone();
                if let SymbolKind::Constant { .. } = sym.kind {
                    let d = self.error(
                        codes::ION_CONSTANT,
                        sym.span.unwrap_or(n.span),
                        format!(
                            "`{}` is an ion variable and cannot be declared in CONSTANT",
                            n.name
                        ),
                    );
                    d.labels
                        .push((n.span, format!("used by USEION {ion} here")));
                    d.notes.push("declare it in ASSIGNED (or STATE, for a concentration this mechanism integrates)".into());
                    continue;
                }
                if let (SymbolKind::Parameter, Some(def), Some(s)) =
                    (&sym.kind, sym.default, sym.span)
                {
                    // nocmodl (warn_ignore) warns for any nonzero default.
                    let _ = role;
                    if def != 0.0 {
                        self.warning(
                            codes::ION_DEFAULT_IGNORED,
                            s,
                            format!("the default {def} of PARAMETER `{}` is ignored; NEURON sets it from the `{ion}` ion", n.name),
                        );
                    }
                }
                let s = self.symbols.get_mut(id);
                match &mut s.ion {
                    Some(b) => {
                        b.read |= !is_write;
                        b.write |= is_write;
                    }
                    None => {
                        s.ion = Some(IonBinding {
                            ion: ion.clone(),
                            role,
                            read: !is_write,
                            write: is_write,
                        })
                    }
                }
                if is_write {
                    s.written = true;
                    write.push(id);
                } else {
                    read.push(id);
                }
            }
        }
        let valence = match (&u.valence, ion.as_str()) {
            (Some(v), _) => Some(v.value),
            (None, "na" | "k") => Some(1.0),
            (None, "ca") => Some(2.0),
            (None, _) => {
                self.warning(codes::NO_VALENCE, u.ion.span, format!("USEION `{ion}` gives no VALENCE"))
                    .notes
                    .push(format!(
                        "NEURON knows the valence of na, k and ca only; unless another loaded mechanism gives `VALENCE` for `{ion}`, NEURON stops when it loads the mechanisms"
                    ));
                None
            }
        };
        self.ions.push(IonUse {
            ion,
            read,
            write,
            valence,
            valence_explicit: u.valence.is_some(),
            represents: u.represents.as_ref().map(|r| r.id.clone()),
            span,
        });
    }

    // ----- Bodies ----------------------------------------------------------------------------

    fn bodies(&mut self) {
        let module = self.module;
        let mut net_receive_seen: Option<Span> = None;
        for item in &module.items {
            match &item.kind {
                ItemKind::Initial(b) => {
                    self.walk_top(b, Ctx::Initial, "INITIAL", &[]);
                    // SOLVE … STEADYSTATE in INITIAL: checked like BREAKPOINT's.
                    let _ = self.solves(b);
                    match &mut self.initial {
                        None => self.initial = Some(b.clone()),
                        Some(first) => {
                            // nocmodl runs the blocks one after the other.
                            first.stmts.extend(b.stmts.iter().cloned());
                            let first_span = first.span;
                            self.second_block("INITIAL", item.span, first_span);
                        }
                    }
                }
                ItemKind::Breakpoint(b) => {
                    self.walk_top(b, Ctx::Breakpoint, "BREAKPOINT", &[]);
                    let solves = self.solves(b);
                    match &mut self.breakpoint {
                        None => {
                            self.breakpoint = Some(Breakpoint {
                                body: b.clone(),
                                solves,
                            })
                        }
                        Some(first) => {
                            first.body.stmts.extend(b.stmts.iter().cloned());
                            first.solves.extend(solves);
                            let first_span = first.body.span;
                            self.second_block("BREAKPOINT", item.span, first_span);
                        }
                    }
                }
                ItemKind::Solvable(sb) => {
                    let label = format!("{} {}", solvable_word(sb.kind), sb.name.name);
                    self.walk_top(&sb.body, Ctx::Solvable(sb.kind), &label, &[]);
                    if let Some(kind) = solve_block_kind(sb.kind) {
                        let states = self.solved_states(sb);
                        self.solve_blocks.push(SolveBlock {
                            name: sb.name.name.clone(),
                            kind,
                            body: sb.body.clone(),
                            states,
                            span: item.span,
                        });
                    }
                }
                ItemKind::Function(f) => {
                    self.current_function = Some(f.name.name.clone());
                    let label = format!("FUNCTION {}", f.name.name);
                    let params = self.walk_callable(&f.body, Ctx::Function, &label, &f.args);
                    self.current_function = None;
                    if let Some(id) = self.symbols.lookup(&f.name.name) {
                        let table = self.table_of(&label);
                        self.callables.push(Callable {
                            name: f.name.name.clone(),
                            symbol: id,
                            is_function: true,
                            params,
                            return_units: f.units.as_ref().map(|u| u.text.clone()),
                            table,
                            body: f.body.clone(),
                            span: item.span,
                        });
                    }
                }
                ItemKind::Procedure(p) => {
                    let label = format!("PROCEDURE {}", p.name.name);
                    let params = self.walk_callable(&p.body, Ctx::Procedure, &label, &p.args);
                    if let Some(id) = self.symbols.lookup(&p.name.name) {
                        let table = self.table_of(&label);
                        self.callables.push(Callable {
                            name: p.name.name.clone(),
                            symbol: id,
                            is_function: false,
                            params,
                            return_units: None,
                            table,
                            body: p.body.clone(),
                            span: item.span,
                        });
                    }
                }
                ItemKind::NetReceive(nr) => {
                    if let Some(prev) = net_receive_seen {
                        self.error(
                            codes::NET_RECEIVE_TWICE,
                            item.span,
                            "only one NET_RECEIVE block is allowed",
                        )
                        .labels
                        .push((prev, "first NET_RECEIVE here".into()));
                        continue;
                    }
                    net_receive_seen = Some(item.span);
                    if self.kind == MechanismKind::Density {
                        self.error(
                            codes::NET_RECEIVE_DENSITY,
                            item.span,
                            format!("NET_RECEIVE in the density mechanism `{}`", self.name),
                        )
                        .notes
                        .push("events can only be delivered to a POINT_PROCESS or ARTIFICIAL_CELL; replace SUFFIX by POINT_PROCESS".into());
                    }
                    if nr.args.is_empty() {
                        self.error(codes::NET_RECEIVE_ARGS, item.span, "NET_RECEIVE must have at least one argument")
                            .notes
                            .push("the first argument receives the NetCon weight, e.g. `NET_RECEIVE(weight (uS))`".into());
                    }
                    self.net_receive_arity = Some(nr.args.len());
                    self.owner = "NET_RECEIVE".into();
                    self.scopes.push(HashMap::new());
                    let params = self.push_args(&nr.args);
                    // `flag` is an implicit argument.
                    if !nr.args.iter().any(|a| a.name.name == "flag") {
                        let id = self.symbols.push(Symbol {
                            name: "flag".into(),
                            kind: SymbolKind::Argument,
                            visibility: None,
                            units: None,
                            default: None,
                            limits: None,
                            array_len: None,
                            span: None,
                            ion: None,
                            written: false,
                            read: false,
                            owner: Some("NET_RECEIVE".into()),
                        });
                        self.scopes
                            .last_mut()
                            .expect("a scope is open")
                            .insert("flag".into(), id);
                    }
                    self.walk_block(&nr.body, Ctx::NetReceive);
                    self.scopes.pop();
                    let initial = nr.body.stmts.iter().find_map(|s| match &s.kind {
                        StmtKind::Initial(b) => Some(b.clone()),
                        _ => None,
                    });
                    self.net_receive = Some(NetReceive {
                        params,
                        body: nr.body.clone(),
                        initial,
                        span: item.span,
                    });
                }
                ItemKind::BeforeAfter(ba) => {
                    self.walk_top(&ba.body, Ctx::Other, "BEFORE/AFTER", &[]);
                    self.before_after.push(BeforeAfter {
                        when: ba.when,
                        phase: ba.phase,
                        body: ba.body.clone(),
                    });
                }
                ItemKind::Constructor(b) => {
                    self.walk_top(b, Ctx::Other, "CONSTRUCTOR", &[]);
                    self.constructor = Some(b.clone());
                }
                ItemKind::Destructor(b) => {
                    self.walk_top(b, Ctx::Other, "DESTRUCTOR", &[]);
                    self.destructor = Some(b.clone());
                }
                ItemKind::Verbatim(v) => {
                    self.verbatim.push(Verbatim {
                        text: v.text.clone(),
                        span: v.span,
                    });
                }
                _ => {}
            }
        }
    }

    fn second_block(&mut self, keyword: &str, span: Span, first: Span) {
        let d = Diagnostic::warning(codes::SECOND_BLOCK, span, format!("a second {keyword} block"))
            .with_label(first, format!("first {keyword} block here"))
            .with_note(format!(
                "NEURON runs the {keyword} blocks one after the other, in file order; merge them to make that explicit"
            ));
        self.diags.push(d);
    }

    fn table_of(&self, label: &str) -> Option<usize> {
        self.tables.iter().position(|t| t.owner == label)
    }

    fn walk_top(&mut self, b: &Block, ctx: Ctx, owner: &str, args: &[Arg]) {
        self.owner = owner.to_string();
        self.scopes.push(HashMap::new());
        self.push_args(args);
        self.walk_block(b, ctx);
        self.scopes.pop();
    }

    fn walk_callable(&mut self, b: &Block, ctx: Ctx, owner: &str, args: &[Arg]) -> Vec<Param> {
        self.owner = owner.to_string();
        self.tables_in_callable = 0;
        self.scopes.push(HashMap::new());
        let params = self.push_args(args);
        // TABLE needs exactly one argument.
        for st in &b.stmts {
            if let StmtKind::Table { with, .. } = &st.kind {
                if args.len() != 1 {
                    self.error(
                        codes::TABLE_ARGS,
                        Span { end: with.span.end, ..st.span },
                        format!("a TABLE needs a FUNCTION or PROCEDURE with exactly one argument, and `{}` has {}", owner, args.len()),
                    )
                    .notes
                    .push("tables interpolate over one argument; move the other inputs into DEPEND variables".into());
                }
            }
        }
        self.walk_block(b, ctx);
        self.scopes.pop();
        params
    }

    fn push_args(&mut self, args: &[Arg]) -> Vec<Param> {
        let mut params = Vec::new();
        for a in args {
            let units = a.units.as_ref().map(|u| u.text.clone());
            let id = self.push_local(&a.name, SymbolKind::Argument, units.clone());
            params.push(Param {
                name: a.name.name.clone(),
                symbol: id,
                units,
            });
        }
        params
    }

    fn push_local(&mut self, n: &Ident, kind: SymbolKind, units: Option<String>) -> SymbolId {
        let id = self.symbols.push(Symbol {
            name: n.name.clone(),
            kind,
            visibility: None,
            units,
            default: None,
            limits: None,
            array_len: None,
            span: Some(n.span),
            ion: None,
            written: false,
            read: false,
            owner: Some(self.owner.clone()),
        });
        self.refs.insert(n.span, id);
        self.scopes
            .last_mut()
            .expect("a scope is open")
            .insert(n.name.clone(), id);
        id
    }

    fn walk_block(&mut self, b: &Block, ctx: Ctx) {
        self.scopes.push(HashMap::new());
        for st in &b.stmts {
            self.walk_stmt(st, ctx);
        }
        self.scopes.pop();
    }

    fn walk_stmt(&mut self, st: &Stmt, ctx: Ctx) {
        match &st.kind {
            StmtKind::Assign { lhs, rhs } => {
                self.walk_expr(rhs, ctx);
                self.write_target(lhs, ctx);
            }
            StmtKind::DiffEq {
                state, index, rhs, ..
            } => {
                self.walk_expr(rhs, ctx);
                if let Some(i) = index {
                    self.walk_expr(i, ctx);
                }
                match self.lookup(&state.name) {
                    Some(id) if self.symbols.get(id).kind == SymbolKind::State => {
                        self.refs.insert(state.span, id);
                        self.symbols.get_mut(id).written = true;
                    }
                    other => {
                        let decl = other.and_then(|id| self.symbols.get(id).span);
                        let d = self.error(
                            codes::DERIV_NOT_STATE,
                            state.span,
                            format!(
                                "`{}'` is a derivative, but `{}` is not a STATE variable",
                                state.name, state.name
                            ),
                        );
                        if let Some(s) = decl {
                            d.labels.push((s, "declared here".into()));
                        }
                        d.notes
                            .push(format!("declare `{}` in the STATE block", state.name));
                    }
                }
            }
            StmtKind::Reaction(r) => {
                for t in r.lhs.iter().chain(r.rhs.iter()) {
                    self.react_term(t, ctx);
                }
                for e in &r.rates {
                    self.walk_expr(e, ctx);
                }
            }
            StmtKind::LinearEq { lhs, rhs } => {
                self.walk_expr(lhs, ctx);
                self.walk_expr(rhs, ctx);
            }
            StmtKind::Conserve { terms, rhs } => {
                for t in terms {
                    self.react_term(t, ctx);
                }
                self.walk_expr(rhs, ctx);
            }
            StmtKind::Compartment {
                index,
                volume,
                states,
            }
            | StmtKind::LongitudinalDiffusion {
                index,
                rate: volume,
                states,
            } => {
                self.scopes.push(HashMap::new());
                if let Some(i) = index {
                    self.push_local(i, SymbolKind::Local, None);
                }
                self.walk_expr(volume, ctx);
                for s in states {
                    self.read_name(s, ctx, None);
                }
                self.scopes.pop();
            }
            StmtKind::Solve {
                name,
                method,
                steadystate,
                if_error,
            } => {
                // BREAKPOINT and INITIAL SOLVEs are checked in `solves`; a SOLVE
                // elsewhere (e.g. in a PROCEDURE) is checked here.
                if let Some(id) = self.symbols.lookup(&name.name) {
                    self.refs.insert(name.span, id);
                }
                if !matches!(ctx, Ctx::Breakpoint | Ctx::Initial) {
                    let _ = self.solve(name, method.as_ref(), steadystate.as_ref(), st.span);
                }
                if let Some(b) = if_error {
                    self.walk_block(b, ctx);
                }
            }
            StmtKind::If {
                cond,
                then_block,
                else_ifs,
                else_block,
            } => {
                self.walk_expr(cond, ctx);
                self.walk_block(then_block, ctx);
                for ei in else_ifs {
                    self.walk_expr(&ei.cond, ctx);
                    self.walk_block(&ei.body, ctx);
                }
                if let Some(b) = else_block {
                    self.walk_block(b, ctx);
                }
            }
            StmtKind::While { cond, body } => {
                self.walk_expr(cond, ctx);
                self.walk_block(body, ctx);
            }
            StmtKind::From {
                var,
                from,
                to,
                by,
                body,
            } => {
                self.walk_expr(from, ctx);
                self.walk_expr(to, ctx);
                if let Some(b) = by {
                    self.walk_expr(b, ctx);
                }
                // The loop variable is usually a LOCAL declared before the loop;
                // NEURON also accepts an undeclared one (it becomes a local int).
                self.scopes.push(HashMap::new());
                match self.lookup(&var.name) {
                    Some(id) => {
                        self.refs.insert(var.span, id);
                        self.symbols.get_mut(id).written = true;
                    }
                    None => {
                        let id = self.push_local(var, SymbolKind::Local, None);
                        self.symbols.get_mut(id).written = true;
                    }
                }
                self.walk_block(body, ctx);
                self.scopes.pop();
            }
            StmtKind::Local(vars) => {
                for v in vars {
                    let len = self.array_len(v.array.as_ref());
                    let id = self.push_local(&v.name, SymbolKind::Local, None);
                    self.symbols.get_mut(id).array_len = len;
                }
            }
            StmtKind::Table {
                names,
                depend,
                from,
                to,
                with,
            } => {
                let span = Span {
                    end: with.span.end,
                    ..st.span
                };
                self.table_stmt(span, names, depend, from, to, with, ctx)
            }
            StmtKind::Watch(ws) => {
                // nocmodl treats the INITIAL block inside NET_RECEIVE as part of it.
                if !matches!(ctx, Ctx::NetReceive | Ctx::NetReceiveInitial) {
                    self.error(codes::EVENT_CONTEXT, st.span, "WATCH is only allowed in NET_RECEIVE")
                        .notes
                        .push("start watching from NET_RECEIVE, e.g. on an initialising self-event sent from INITIAL".into());
                }
                for w in ws {
                    self.walk_expr(&w.cond, ctx);
                    self.walk_expr(&w.flag, ctx);
                }
            }
            StmtKind::ForNetcons { args, body } => {
                if let Some(n) = self.net_receive_arity {
                    if n != args.len() {
                        self.error(
                            codes::FOR_NETCONS_ARGS,
                            st.span,
                            format!(
                                "FOR_NETCONS has {} argument{} but NET_RECEIVE has {n}",
                                args.len(),
                                plural(args.len())
                            ),
                        )
                        .notes
                        .push("FOR_NETCONS iterates over the NetCon weight vectors, so it takes the same arguments as NET_RECEIVE".into());
                    }
                }
                self.scopes.push(HashMap::new());
                self.push_args(args);
                self.walk_block(body, ctx);
                self.scopes.pop();
            }
            StmtKind::Protect(inner) => {
                self.in_protect = true;
                self.walk_stmt(inner, ctx);
                self.in_protect = false;
            }
            StmtKind::Expr(e) => match &e.kind {
                ExprKind::Call(f, args) => {
                    for a in args {
                        self.call_arg(a, ctx);
                    }
                    self.call(f, args.len(), ctx, false);
                }
                _ => self.walk_expr(e, ctx),
            },
            StmtKind::Block(b) => self.walk_block(b, ctx),
            StmtKind::Initial(b) => {
                let inner = if ctx == Ctx::NetReceive {
                    Ctx::NetReceiveInitial
                } else {
                    Ctx::Initial
                };
                self.walk_block(b, inner);
            }
            StmtKind::Conductance(c) => {
                self.read_name(&c.name, ctx, Some(false));
            }
            StmtKind::Lag { name, by } => {
                // `LAG v BY d` defines the variable `lag_v_d` (nocmodl).
                let lag = format!("lag_{}_{}", name.name, by.name);
                if self.symbols.lookup(&lag).is_none() {
                    self.symbols.push(Symbol {
                        name: lag,
                        kind: SymbolKind::Assigned,
                        visibility: Some(Visibility::Range),
                        units: None,
                        default: None,
                        limits: None,
                        array_len: None,
                        span: Some(st.span),
                        ion: None,
                        written: true,
                        read: false,
                        owner: None,
                    });
                }
                self.read_name(name, ctx, Some(false));
                self.read_name(by, ctx, Some(false));
            }
            StmtKind::Verbatim(_)
            | StmtKind::MutexLock
            | StmtKind::MutexUnlock
            | StmtKind::UnitsOn
            | StmtKind::UnitsOff => {}
        }
    }

    fn react_term(&mut self, t: &ast::ReactTerm, ctx: Ctx) {
        if let Some(i) = &t.index {
            self.walk_expr(i, ctx);
        }
        if let Some(id) = self.read_name(&t.name, ctx, Some(t.index.is_some())) {
            self.symbols.get_mut(id).written = true;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn table_stmt(
        &mut self,
        span: Span,
        names: &[Ident],
        depend: &[Ident],
        from: &Expr,
        to: &Expr,
        with: &Expr,
        ctx: Ctx,
    ) {
        if !matches!(ctx, Ctx::Function | Ctx::Procedure) {
            self.error(
                codes::TABLE_PLACE,
                span,
                "TABLE is only allowed in a FUNCTION or PROCEDURE",
            );
            return;
        }
        self.tables_in_callable += 1;
        if self.tables_in_callable > 1 {
            self.error(codes::TABLE_TWICE, span, format!("`{}` has more than one TABLE", self.owner))
                .notes
                .push("NEURON allows one TABLE per FUNCTION or PROCEDURE; list all tabulated variables in it".into());
            return;
        }
        let mut ids = Vec::new();
        for n in names {
            if let Some(id) = self.read_name(n, ctx, None) {
                self.symbols.get_mut(id).written = true;
                ids.push(id);
            }
        }
        let mut deps = Vec::new();
        for n in depend {
            if let Some(id) = self.read_name(n, ctx, None) {
                deps.push(id);
            }
        }
        self.walk_expr(from, ctx);
        self.walk_expr(to, ctx);
        self.walk_expr(with, ctx);
        let with_n = match self.const_int(with) {
            Some(n) if n >= 1 => n,
            _ => {
                self.error(
                    codes::TABLE_PLACE,
                    with.span,
                    "WITH must be a positive integer (the number of table intervals)",
                );
                return;
            }
        };
        self.tables.push(TableSpec {
            names: ids,
            depend: deps,
            from: from.clone(),
            to: to.clone(),
            with: with_n,
            owner: self.owner.clone(),
            span,
        });
    }

    fn const_int(&self, e: &Expr) -> Option<i64> {
        match &e.kind {
            ExprKind::Number(v) if v.fract() == 0.0 => Some(*v as i64),
            ExprKind::Name(n) => self.defines.get(&n.name).copied(),
            ExprKind::Paren(inner) => self.const_int(inner),
            _ => None,
        }
    }

    fn lookup(&self, name: &str) -> Option<SymbolId> {
        for scope in self.scopes.iter().rev() {
            if let Some(id) = scope.get(name) {
                return Some(*id);
            }
        }
        self.symbols.lookup(name)
    }

    /// Resolves a name read in an expression (or named in a statement). Reports
    /// undeclared names and index misuse. Returns the symbol when resolved.
    fn read_name(&mut self, n: &Ident, _ctx: Ctx, indexed: Option<bool>) -> Option<SymbolId> {
        let id = match self.lookup(&n.name) {
            Some(id) => id,
            None => match self.builtin_symbol(&n.name) {
                Some(id) => id,
                None => {
                    self.undeclared(n, false);
                    return None;
                }
            },
        };
        self.refs.insert(n.span, id);
        let sym = self.symbols.get(id);
        match &sym.kind {
            SymbolKind::Function { .. } if self.current_function.as_deref() == Some(&n.name) => {}
            SymbolKind::Function { .. }
            | SymbolKind::Procedure { .. }
            | SymbolKind::FunctionTable { .. }
            | SymbolKind::BuiltinFunction => {
                let decl = sym.span;
                let d = self.error(
                    codes::VAR_AND_FUNCTION,
                    n.span,
                    format!("`{}` is a function, but it is used as a variable", n.name),
                );
                if let Some(s) = decl {
                    d.labels.push((s, "defined here".into()));
                }
                d.notes
                    .push(format!("call it with arguments, `{}(...)`", n.name));
                return None;
            }
            SymbolKind::Block(_) => {
                self.error(
                    codes::VAR_AND_FUNCTION,
                    n.span,
                    format!("`{}` is a block name, not a variable", n.name),
                );
                return None;
            }
            _ => {}
        }
        if let Some(indexed) = indexed {
            self.index_check(n, id, indexed);
        }
        self.symbols.get_mut(id).read = true;
        Some(id)
    }

    fn index_check(&mut self, n: &Ident, id: SymbolId, indexed: bool) {
        let sym = self.symbols.get(id);
        if sym.kind == SymbolKind::VerbatimName {
            return;
        }
        let decl = sym.span;
        match (sym.array_len, indexed) {
            (None, true) => {
                let d = self.error(
                    codes::INDEX_SCALAR,
                    n.span,
                    format!("`{}` is not an array, but it is indexed", n.name),
                );
                if let Some(s) = decl {
                    d.labels.push((s, "declared without a size here".into()));
                }
                d.notes
                    .push(format!("declare it as `{}[n]` to make it an array", n.name));
            }
            (Some(len), false) => {
                let d = self.error(
                    codes::ARRAY_NO_INDEX,
                    n.span,
                    format!(
                        "`{}` is an array of {len}, but it is used without an index",
                        n.name
                    ),
                );
                if let Some(s) = decl {
                    d.labels.push((s, "declared here".into()));
                }
                d.notes.push(format!("write `{}[i]`", n.name));
            }
            _ => {}
        }
    }

    fn undeclared(&mut self, n: &Ident, call: bool) {
        if !self.reported_undeclared.insert(n.name.clone()) {
            return;
        }
        let what = if call { "function" } else { "name" };
        if self.global_undeclared.contains(&n.name) {
            // Already reported at the GLOBAL statement.
            return;
        }
        if self.has_verbatim {
            // Give the name a symbol so that codegen can pass it through to the
            // C++ that VERBATIM declares; later uses find it by name.
            let id = self.symbols.push(Symbol {
                name: n.name.clone(),
                kind: SymbolKind::VerbatimName,
                visibility: None,
                units: None,
                default: None,
                limits: None,
                array_len: None,
                span: None,
                ion: None,
                written: false,
                read: true,
                owner: None,
            });
            self.refs.insert(n.span, id);
            self.warning(
                codes::UNDECLARED_VERBATIM,
                n.span,
                format!("undeclared {what} `{}`; it must be declared in a VERBATIM block", n.name),
            )
            .notes
            .push("nocmodl only warns (\"declared within VERBATIM?\"); the C++ compiler fails if VERBATIM does not declare it".into());
            return;
        }
        let (code, msg, note) = if call {
            (
                codes::UNDEFINED_FUNCTION,
                format!("call to undefined function `{}`", n.name),
                format!("define `FUNCTION {}(...)` or `PROCEDURE {}(...)`; nocmodl only warns, and the generated C++ does not compile", n.name, n.name),
            )
        } else {
            (
                codes::UNDECLARED,
                format!("`{}` is not declared", n.name),
                format!("declare `{}` in PARAMETER, ASSIGNED or STATE, or as LOCAL; nocmodl only warns, and the generated C++ does not compile", n.name),
            )
        };
        let mut d = Diagnostic::error(code, n.span, msg).with_note(note);
        if let Some(similar) = self.similar_name(&n.name) {
            d = d.with_note(format!("a similar name is declared: `{similar}`"));
        }
        self.diags.push(d);
    }

    fn similar_name(&self, name: &str) -> Option<String> {
        let lower = name.to_lowercase();
        self.symbols
            .by_name
            .keys()
            .find(|k| k.to_lowercase() == lower && k.as_str() != name)
            .cloned()
    }

    /// NEURON's own variables, created on first use when the file does not
    /// declare them.
    fn builtin_symbol(&mut self, name: &str) -> Option<SymbolId> {
        let b = builtin_of(name)?;
        if let Some(id) = self.symbols.lookup(name) {
            return Some(id);
        }
        Some(self.symbols.push(Symbol {
            name: name.to_string(),
            kind: SymbolKind::Builtin(b),
            visibility: None,
            units: None,
            default: None,
            limits: None,
            array_len: None,
            span: None,
            ion: None,
            written: false,
            read: false,
            owner: None,
        }))
    }

    fn write_target(&mut self, lhs: &Expr, ctx: Ctx) {
        let (n, indexed) = match &lhs.kind {
            ExprKind::Name(n) => (n, false),
            ExprKind::Indexed(n, i) => {
                self.walk_expr(i, ctx);
                (n, true)
            }
            ExprKind::Paren(inner) => return self.write_target(inner, ctx),
            _ => {
                self.walk_expr(lhs, ctx);
                return;
            }
        };
        let id = match self.lookup(&n.name) {
            Some(id) => id,
            None => match self.builtin_symbol(&n.name) {
                Some(id) => id,
                None => {
                    self.undeclared(n, false);
                    return;
                }
            },
        };
        self.refs.insert(n.span, id);
        let sym = self.symbols.get(id).clone();
        match &sym.kind {
            SymbolKind::Function { .. } if self.current_function.as_deref() == Some(&n.name) => {
                self.symbols.get_mut(id).written = true;
                return;
            }
            SymbolKind::Function { .. }
            | SymbolKind::Procedure { .. }
            | SymbolKind::FunctionTable { .. }
            | SymbolKind::Block(_) => {
                self.error(
                    codes::VAR_AND_FUNCTION,
                    n.span,
                    format!(
                        "`{}` is a function or block, and cannot be assigned",
                        n.name
                    ),
                );
                return;
            }
            SymbolKind::Builtin(
                b @ (Builtin::T | Builtin::Dt | Builtin::Celsius | Builtin::Area | Builtin::Diam),
            ) => {
                let _ = b;
                self.error(
                    codes::ASSIGN_SPECIAL,
                    n.span,
                    format!("`{}` is a NEURON variable that a mod file must not assign", n.name),
                )
                .notes
                .push("NEURON owns t, dt, celsius, diam and area; copy the value into your own ASSIGNED variable instead".into());
                return;
            }
            SymbolKind::Parameter => {
                if sym.visibility == Some(Visibility::Global) && !self.threadsafe {
                    self.global_written(n, id);
                } else {
                    let d = Diagnostic::warning(
                        codes::PARAMETER_WRITTEN,
                        n.span,
                        format!("the PARAMETER `{}` is assigned here", n.name),
                    )
                    .with_note("parameters are meant to be set by the user; declare it in ASSIGNED if the model computes it");
                    let d = match sym.span {
                        Some(s) => d.with_label(s, "declared as PARAMETER here"),
                        None => d,
                    };
                    self.diags.push(d);
                }
            }
            SymbolKind::Assigned
                if sym.visibility == Some(Visibility::Global) && !self.threadsafe =>
            {
                self.global_written(n, id);
            }
            SymbolKind::Constant { .. }
            | SymbolKind::UnitsConstant { .. }
            | SymbolKind::Define { .. } => {
                let d = Diagnostic::warning(codes::CONSTANT_WRITTEN, n.span, format!("the constant `{}` is assigned here", n.name))
                    .with_note("nocmodl accepts this, but the constant then changes for every instance; use an ASSIGNED variable");
                let d = match sym.span {
                    Some(s) => d.with_label(s, "declared as a constant here"),
                    None => d,
                };
                self.diags.push(d);
            }
            _ => {}
        }
        if let Some(b) = &sym.ion {
            if !b.write {
                let d = Diagnostic::warning(
                    codes::ION_READ_ONLY,
                    n.span,
                    format!("`{}` is only READ from the `{}` ion, but it is assigned here", n.name, b.ion),
                )
                .with_note(format!(
                    "the new value stays in this mechanism and is not passed to the `{}` ion; add `WRITE {}` to the USEION statement if it should be",
                    b.ion, n.name
                ));
                self.diags.push(d);
            }
        }
        self.index_check(n, id, indexed);
        self.symbols.get_mut(id).written = true;
    }

    /// Records an assignment to a GLOBAL; the notice is given after all bodies
    /// are walked, once per variable, and not at all when some assignment to it
    /// is under PROTECT (nocmodl's rule).
    fn global_written(&mut self, n: &Ident, id: SymbolId) {
        if self.in_protect {
            self.protected_globals.insert(id);
        }
        if !self.global_writes.iter().any(|(g, _)| *g == id) {
            self.global_writes.push((id, n.span));
        }
    }

    fn walk_expr(&mut self, e: &Expr, ctx: Ctx) {
        match &e.kind {
            ExprKind::Number(_) | ExprKind::String(_) => {}
            ExprKind::Name(n) => {
                self.read_name(n, ctx, Some(false));
            }
            ExprKind::Indexed(n, i) => {
                self.walk_expr(i, ctx);
                self.read_name(n, ctx, Some(true));
            }
            ExprKind::Call(f, args) => {
                for a in args {
                    self.call_arg(a, ctx);
                }
                self.call(f, args.len(), ctx, true);
            }
            ExprKind::Unary(_, x) | ExprKind::Paren(x) => self.walk_expr(x, ctx),
            ExprKind::Binary(_, a, b) => {
                self.walk_expr(a, ctx);
                self.walk_expr(b, ctx);
            }
        }
    }

    /// Call arguments may name an array or a function without index or call
    /// (NEURON's extdef2 functions take them), so those are not errors here.
    fn call_arg(&mut self, a: &Expr, ctx: Ctx) {
        if let ExprKind::Name(n) = &a.kind {
            if let Some(id) = self.lookup(&n.name) {
                let sym = self.symbols.get(id);
                if sym.array_len.is_some()
                    || matches!(
                        sym.kind,
                        SymbolKind::Function { .. }
                            | SymbolKind::Procedure { .. }
                            | SymbolKind::Random
                    )
                {
                    self.refs.insert(n.span, id);
                    self.symbols.get_mut(id).read = true;
                    return;
                }
            }
        }
        self.walk_expr(a, ctx);
    }

    fn call(&mut self, f: &Ident, nargs: usize, ctx: Ctx, value: bool) {
        match f.name.as_str() {
            "net_send"
                if !matches!(ctx, Ctx::Initial | Ctx::NetReceive | Ctx::NetReceiveInitial) =>
            {
                self.error(codes::EVENT_CONTEXT, f.span, "net_send is only allowed in INITIAL and NET_RECEIVE")
                    .notes
                    .push("NEURON schedules self-events only from those blocks (nocmodl: \"net_send allowed only in INITIAL and NET_RECEIVE blocks\")".into());
                return;
            }
            "net_move" | "net_event"
                if !matches!(ctx, Ctx::NetReceive | Ctx::NetReceiveInitial) =>
            {
                self.error(
                    codes::EVENT_CONTEXT,
                    f.span,
                    format!("{} is only allowed in NET_RECEIVE", f.name),
                );
                return;
            }
            _ => {}
        }
        match self.lookup(&f.name) {
            Some(id) => {
                self.refs.insert(f.span, id);
                let sym = self.symbols.get(id).clone();
                let arity = match sym.kind {
                    SymbolKind::BuiltinFunction | SymbolKind::VerbatimName => return,
                    SymbolKind::Function { arity } | SymbolKind::FunctionTable { arity } => arity,
                    SymbolKind::Procedure { arity } => {
                        if value {
                            self.warning(
                                codes::PROCEDURE_VALUE,
                                f.span,
                                format!("the PROCEDURE `{}` is used as a value", f.name),
                            )
                            .notes
                            .push("a PROCEDURE returns no value (NEURON gives 0); make it a FUNCTION and assign its name".into());
                        }
                        arity
                    }
                    _ => {
                        let d = Diagnostic::error(
                            codes::VAR_AND_FUNCTION,
                            f.span,
                            format!(
                                "`{}` is a variable, but it is called like a function",
                                f.name
                            ),
                        );
                        let d = match sym.span {
                            Some(s) => d.with_label(s, "declared here"),
                            None => d,
                        };
                        self.diags.push(d);
                        return;
                    }
                };
                if matches!(sym.kind, SymbolKind::FunctionTable { .. }) && nargs == 0 {
                    // `table_f()` style access is not a plain call; accept.
                }
                if nargs != arity {
                    let kind = if matches!(sym.kind, SymbolKind::Procedure { .. }) {
                        "PROCEDURE"
                    } else {
                        "FUNCTION"
                    };
                    let d = Diagnostic::error(
                        codes::ARITY,
                        f.span,
                        format!("`{}` takes {arity} argument{} but is called with {nargs}", f.name, plural(arity)),
                    )
                    .with_note(format!("nocmodl translates this, but the generated C++ fails to compile (\"too {} arguments\")", if nargs > arity { "many" } else { "few" }));
                    let d = match sym.span {
                        Some(s) => d.with_label(s, format!("{kind} defined here")),
                        None => d,
                    };
                    self.diags.push(d);
                }
                self.symbols.get_mut(id).read = true;
            }
            None => {
                if NEURON_FUNCTIONS.contains(&f.name.as_str())
                    || C_MATH_FUNCTIONS.contains(&f.name.as_str())
                {
                    let id = self.symbols.push(Symbol {
                        name: f.name.clone(),
                        kind: SymbolKind::BuiltinFunction,
                        visibility: None,
                        units: None,
                        default: None,
                        limits: None,
                        array_len: None,
                        span: None,
                        ion: None,
                        written: false,
                        read: true,
                        owner: None,
                    });
                    self.refs.insert(f.span, id);
                    return;
                }
                self.undeclared(f, true);
            }
        }
    }

    // ----- SOLVE -----------------------------------------------------------------------------

    fn solves(&mut self, b: &Block) -> Vec<Solve> {
        let mut out = Vec::new();
        for st in &b.stmts {
            let StmtKind::Solve {
                name,
                method,
                steadystate,
                ..
            } = &st.kind
            else {
                continue;
            };
            if let Some(s) = self.solve(name, method.as_ref(), steadystate.as_ref(), st.span) {
                out.push(s);
            }
        }
        out
    }

    fn solve(
        &mut self,
        name: &Ident,
        method: Option<&Ident>,
        steady: Option<&Ident>,
        span: Span,
    ) -> Option<Solve> {
        let written = steady.or(method);
        let parsed = match written {
            Some(m) => match Method::from_name(&m.name) {
                Some(x) => Some(x),
                None => {
                    self.error(codes::UNKNOWN_METHOD, m.span, format!("unknown METHOD `{}`", m.name))
                        .notes
                        .push("NEURON 9 knows cnexp, derivimplicit, euler, runge (DERIVATIVE); sparse, euler (KINETIC); simeq (LINEAR); newton (NONLINEAR); after_cvode, cvode_t, cvode_t_v (PROCEDURE)".into());
                    return None;
                }
            },
            None => None,
        };
        let Some(id) = self.symbols.lookup(&name.name) else {
            self.error(
                codes::SOLVE_UNDEFINED,
                name.span,
                format!("SOLVE names `{}`, which is not defined", name.name),
            )
            .notes
            .push(format!(
                "define `DERIVATIVE {} {{ ... }}` (or KINETIC, LINEAR, NONLINEAR, PROCEDURE)",
                name.name
            ));
            return None;
        };
        let sym = self.symbols.get(id).clone();
        let (target, method) = match sym.kind {
            SymbolKind::Block(kind) => {
                let idx = self.solve_blocks.iter().position(|b| b.name == name.name);
                let (allowed, default) = kind.methods();
                let m = parsed.unwrap_or(default);
                if parsed.is_some() && !allowed.contains(&m) {
                    let d = Diagnostic::error(
                        codes::METHOD_MISMATCH,
                        written.map(|w| w.span).unwrap_or(span),
                        format!(
                            "METHOD {} cannot solve the {} block `{}`",
                            m.name(),
                            kind.keyword(),
                            name.name
                        ),
                    )
                    .with_note(format!(
                        "use one of: {}",
                        allowed
                            .iter()
                            .map(|m| m.name())
                            .filter(|n| *n != "_advance")
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                    let d = match sym.span {
                        Some(s) => {
                            d.with_label(s, format!("{} block defined here", kind.keyword()))
                        }
                        None => d,
                    };
                    self.diags.push(d);
                    return None;
                }
                if steady.is_some()
                    && !matches!(
                        (kind, m),
                        (SolveBlockKind::Kinetic, Method::Sparse)
                            | (SolveBlockKind::Derivative, Method::Derivimplicit)
                    )
                {
                    self.error(
                        codes::METHOD_MISMATCH,
                        written.map(|w| w.span).unwrap_or(span),
                        format!(
                            "STEADYSTATE {} is not available for the {} block `{}`",
                            m.name(),
                            kind.keyword(),
                            name.name
                        ),
                    )
                    .notes
                    .push(
                        "STEADYSTATE takes sparse for KINETIC and derivimplicit for DERIVATIVE"
                            .into(),
                    );
                    return None;
                }
                if !self.threadsafe {
                    let why = match (kind, m) {
                        (_, Method::Runge) => Some("runge is not thread safe"),
                        (SolveBlockKind::Kinetic, m) if m != Method::Sparse => {
                            Some("KINETIC is thread safe only with METHOD sparse")
                        }
                        (SolveBlockKind::Linear, _) => Some("LINEAR is not thread safe"),
                        (SolveBlockKind::Nonlinear, _) => Some("NONLINEAR is not thread safe"),
                        _ => None,
                    };
                    if let Some(why) = why {
                        self.unsafe_method = true;
                        self.warning(codes::METHOD_THREADS, name.span, why)
                            .notes
                            .push("NEURON then runs this mechanism in thread 0 only (nocmodl prints a Notice)".into());
                    }
                }
                // The block may come later in the file; its index is fixed up in `finish`.
                (SolveTarget::Block(idx.unwrap_or(usize::MAX)), m)
            }
            SymbolKind::Procedure { .. } => {
                let m = parsed.unwrap_or(Method::None);
                if !matches!(
                    m,
                    Method::None | Method::AfterCvode | Method::CvodeT | Method::CvodeTV
                ) {
                    self.error(
                        codes::METHOD_MISMATCH,
                        written.map(|w| w.span).unwrap_or(span),
                        format!(
                            "METHOD {} cannot be used with the PROCEDURE `{}`",
                            m.name(),
                            name.name
                        ),
                    )
                    .notes
                    .push(
                        "a SOLVEd PROCEDURE takes no METHOD, or after_cvode, cvode_t or cvode_t_v"
                            .into(),
                    );
                    return None;
                }
                (SolveTarget::Procedure(usize::MAX), m)
            }
            _ => {
                let d = Diagnostic::error(
                    codes::SOLVE_NOT_BLOCK,
                    name.span,
                    format!("`{}` cannot be SOLVEd: it is {}", name.name, kind_word(&sym.kind)),
                )
                .with_note("SOLVE takes a DERIVATIVE, KINETIC, LINEAR, NONLINEAR or DISCRETE block, or a PROCEDURE");
                let d = match sym.span {
                    Some(s) => d.with_label(s, "declared here"),
                    None => d,
                };
                self.diags.push(d);
                return None;
            }
        };
        if let (
            Some(m @ (Method::AfterCvode | Method::CvodeT | Method::CvodeTV)),
            SolveTarget::Block(_),
        ) = (parsed, target)
        {
            self.error(
                codes::METHOD_MISMATCH,
                written.map(|w| w.span).unwrap_or(span),
                format!(
                    "METHOD {} applies to a PROCEDURE, not to `{}`",
                    m.name(),
                    name.name
                ),
            );
            return None;
        }
        Some(Solve {
            block: name.name.clone(),
            target,
            method,
            method_explicit: written.is_some(),
            steadystate: steady.is_some(),
            span,
        })
    }

    fn solved_states(&mut self, sb: &ast::SolvableBlock) -> Vec<SymbolId> {
        let mut out: Vec<SymbolId> = Vec::new();
        let add = |id: Option<SymbolId>, out: &mut Vec<SymbolId>| {
            if let Some(id) = id {
                if !out.contains(&id) {
                    out.push(id);
                }
            }
        };
        for n in &sb.solvefor {
            let id = self.symbols.lookup(&n.name);
            if id.is_none() {
                self.undeclared(n, false);
            }
            add(id, &mut out);
        }
        if !sb.solvefor.is_empty() {
            return out;
        }
        let mut stack: Vec<&Block> = vec![&sb.body];
        while let Some(b) = stack.pop() {
            for st in &b.stmts {
                match &st.kind {
                    StmtKind::DiffEq { state, .. } => add(self.state_id(&state.name), &mut out),
                    StmtKind::Reaction(r) => {
                        for t in r.lhs.iter().chain(r.rhs.iter()) {
                            add(self.state_id(&t.name.name), &mut out);
                        }
                    }
                    StmtKind::LinearEq { lhs, rhs } => {
                        for e in [lhs, rhs] {
                            let mut names = Vec::new();
                            collect_names(e, &mut names);
                            for n in names {
                                add(self.state_id(&n), &mut out);
                            }
                        }
                    }
                    StmtKind::If {
                        then_block,
                        else_ifs,
                        else_block,
                        ..
                    } => {
                        stack.push(then_block);
                        for ei in else_ifs {
                            stack.push(&ei.body);
                        }
                        if let Some(e) = else_block {
                            stack.push(e);
                        }
                    }
                    StmtKind::Block(b)
                    | StmtKind::While { body: b, .. }
                    | StmtKind::From { body: b, .. } => stack.push(b),
                    _ => {}
                }
            }
        }
        for id in &out {
            self.symbols.get_mut(*id).written = true;
        }
        // Keep STATE declaration order.
        out.sort_by_key(|id| {
            self.states
                .iter()
                .position(|s| s == id)
                .unwrap_or(usize::MAX)
        });
        out
    }

    fn state_id(&self, name: &str) -> Option<SymbolId> {
        self.symbols
            .lookup(name)
            .filter(|id| self.symbols.get(*id).kind == SymbolKind::State)
    }

    // ----- After bodies ----------------------------------------------------------------------

    fn after_bodies(&mut self) {
        for (id, span) in std::mem::take(&mut self.global_writes) {
            if self.protected_globals.contains(&id) {
                continue;
            }
            self.unsafe_method = true;
            let name = self.symbols.get(id).name.clone();
            let d = Diagnostic::warning(
                codes::GLOBAL_WRITTEN,
                span,
                format!("assignment to the GLOBAL variable `{name}` is not thread safe"),
            )
            .with_note("all instances share one value; make it RANGE, or add THREADSAFE to the NEURON block to give each thread its own copy");
            self.diags.push(d);
        }
        if self.has_verbatim && !self.threadsafe {
            let span = first_verbatim_span(self.module).unwrap_or(self.module.span);
            self.warning(codes::VERBATIM_THREADS, span, "VERBATIM blocks are not thread safe")
                .notes
                .push("NEURON runs this mechanism in thread 0 only; if the C++ code is thread safe, add THREADSAFE to the NEURON block".into());
        }
        // Names declared only in the NEURON block and used in a body: nocmodl
        // prints "<name> undefined".
        let used: HashSet<SymbolId> = self.refs.entries.iter().map(|(_, id)| *id).collect();
        let implicit: Vec<SymbolId> = (0..self.symbols.symbols.len())
            .map(|i| SymbolId(i as u32))
            .filter(|id| {
                let s = self.symbols.get(*id);
                s.owner.is_none()
                    && matches!(s.kind, SymbolKind::IonVariable | SymbolKind::Assigned)
                    && used.contains(id)
                    && self.is_implicit(s)
            })
            .collect();
        for id in implicit {
            let s = self.symbols.get(id).clone();
            self.warning(
                codes::IMPLICIT_DECLARATION,
                s.span.expect("implicit symbols have a span"),
                format!(
                    "`{}` is named in the NEURON block but not declared in ASSIGNED",
                    s.name
                ),
            )
            .notes
            .push(format!(
                "nocmodl warns \"{} undefined\"; declare it in ASSIGNED with its units",
                s.name
            ));
        }
    }

    /// True when the symbol was created from a NEURON-block name rather than a
    /// declaration block.
    fn is_implicit(&self, s: &Symbol) -> bool {
        let Some(span) = s.span else { return false };
        self.module.items.iter().any(|i| {
            matches!(i.kind, ItemKind::Neuron(_))
                && i.span.file == span.file
                && i.span.start <= span.start
                && span.end <= i.span.end
        })
    }

    fn finish(mut self) -> Mechanism {
        self.refs.finish();
        // Fix up SOLVE targets now that every block and callable is known.
        if let Some(bp) = &mut self.breakpoint {
            for s in &mut bp.solves {
                s.target = match s.target {
                    SolveTarget::Block(_) => SolveTarget::Block(
                        self.solve_blocks
                            .iter()
                            .position(|b| b.name == s.block)
                            .unwrap_or(usize::MAX),
                    ),
                    SolveTarget::Procedure(_) => SolveTarget::Procedure(
                        self.callables
                            .iter()
                            .position(|c| c.name == s.block)
                            .unwrap_or(usize::MAX),
                    ),
                };
            }
        }
        let mut summary = IonSummary::default();
        for u in &self.ions {
            for &id in &u.write {
                match self.symbols.get(id).ion.as_ref().map(|b| b.role) {
                    Some(IonRole::Current) => summary
                        .currents_written
                        .entry(u.ion.clone())
                        .or_default()
                        .push(id),
                    Some(IonRole::ConcentrationInside | IonRole::ConcentrationOutside) => {
                        summary.writes_concentration = true
                    }
                    Some(IonRole::Reversal) => summary.writes_reversal = true,
                    _ => {}
                }
            }
            for &id in &u.read {
                if matches!(
                    self.symbols.get(id).ion.as_ref().map(|b| b.role),
                    Some(IonRole::ConcentrationInside | IonRole::ConcentrationOutside)
                ) {
                    summary.reads_concentration = true;
                }
            }
        }
        let uses_unsafe_method = self.unsafe_method;
        let thread_safe = self.threadsafe
            || !(self.has_verbatim || !self.pointers.is_empty() || uses_unsafe_method);
        let file = self
            .sources
            .get(self.module.file)
            .map(|f| f.name.clone())
            .unwrap_or_default();
        Mechanism {
            name: self.name,
            kind: self.kind,
            file,
            title: self.title,
            threadsafe_keyword: self.threadsafe,
            thread_safe,
            has_verbatim: self.has_verbatim,
            symbols: self.symbols,
            refs: self.refs,
            ions: self.ions,
            nonspecific_currents: self.nonspecific,
            electrode_currents: self.electrode,
            conductance_hints: self.conductance,
            range: self.range,
            global: self.global,
            pointers: self.pointers,
            bbcore_pointers: self.bbcore_pointers,
            randoms: self.randoms,
            externals: self.externals,
            states: self.states,
            state_initial_values: self.state_inits,
            callables: self.callables,
            function_tables: self.function_tables,
            initial: self.initial,
            breakpoint: self.breakpoint,
            solve_blocks: self.solve_blocks,
            net_receive: self.net_receive,
            before_after: self.before_after,
            constructor: self.constructor,
            destructor: self.destructor,
            tables: self.tables,
            verbatim: self.verbatim,
            ion_summary: summary,
        }
    }
}

// ----- Helpers ----------------------------------------------------------------------------

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn dims_or_number(u: &crate::units::Unit) -> String {
    let d = u.dims_string();
    if d.is_empty() {
        "a pure number".into()
    } else {
        format!("in {d}")
    }
}

/// True when a unit text has a number written with `e` exponent (`1e-3`).
fn has_e_notation(text: &str) -> bool {
    let b = text.as_bytes();
    (1..b.len()).any(|i| {
        (b[i] == b'e' || b[i] == b'E')
            && b[i - 1].is_ascii_digit()
            && (i < 2 || !b[i - 2].is_ascii_alphabetic())
            && b.get(i + 1)
                .is_some_and(|c| c.is_ascii_digit() || *c == b'-' || *c == b'+')
    })
}

fn builtin_of(name: &str) -> Option<Builtin> {
    Some(match name {
        "v" => Builtin::V,
        "t" => Builtin::T,
        "dt" => Builtin::Dt,
        "celsius" => Builtin::Celsius,
        "area" => Builtin::Area,
        "diam" => Builtin::Diam,
        "secondorder" => Builtin::Secondorder,
        "usetable" => Builtin::Usetable,
        "f_flux" => Builtin::FFlux,
        "b_flux" => Builtin::BFlux,
        _ => return None,
    })
}

fn ion_role(ion: &str, var: &str) -> Option<IonRole> {
    if var == format!("e{ion}") {
        Some(IonRole::Reversal)
    } else if var == format!("{ion}i") {
        Some(IonRole::ConcentrationInside)
    } else if var == format!("{ion}o") {
        Some(IonRole::ConcentrationOutside)
    } else if var == format!("i{ion}") {
        Some(IonRole::Current)
    } else {
        None
    }
}

fn solve_block_kind(k: SolvableKind) -> Option<SolveBlockKind> {
    Some(match k {
        SolvableKind::Derivative => SolveBlockKind::Derivative,
        SolvableKind::Kinetic => SolveBlockKind::Kinetic,
        SolvableKind::Linear => SolveBlockKind::Linear,
        SolvableKind::NonLinear => SolveBlockKind::Nonlinear,
        SolvableKind::Discrete => SolveBlockKind::Discrete,
        SolvableKind::Partial => return None,
    })
}

fn solvable_word(k: SolvableKind) -> &'static str {
    match k {
        SolvableKind::Derivative => "DERIVATIVE",
        SolvableKind::Kinetic => "KINETIC",
        SolvableKind::Linear => "LINEAR",
        SolvableKind::NonLinear => "NONLINEAR",
        SolvableKind::Discrete => "DISCRETE",
        SolvableKind::Partial => "PARTIAL",
    }
}

fn kind_word(k: &SymbolKind) -> &'static str {
    match k {
        SymbolKind::Parameter => "a PARAMETER",
        SymbolKind::Assigned => "an ASSIGNED variable",
        SymbolKind::State => "a STATE",
        SymbolKind::Constant { .. } => "a CONSTANT",
        SymbolKind::UnitsConstant { .. } => "a UNITS constant",
        SymbolKind::Define { .. } => "a DEFINE",
        SymbolKind::IonVariable => "an ion variable",
        SymbolKind::Pointer => "a POINTER",
        SymbolKind::BbcorePointer => "a BBCOREPOINTER",
        SymbolKind::Random => "a RANDOM variable",
        SymbolKind::External => "an EXTERNAL",
        SymbolKind::Local => "a LOCAL",
        SymbolKind::Argument => "an argument",
        SymbolKind::Function { .. } => "a FUNCTION",
        SymbolKind::Procedure { .. } => "a PROCEDURE",
        SymbolKind::FunctionTable { .. } => "a FUNCTION_TABLE",
        SymbolKind::Block(_) => "a block",
        SymbolKind::Builtin(_) => "a NEURON variable",
        SymbolKind::BuiltinFunction => "a built-in function",
        SymbolKind::VerbatimName => "a name from VERBATIM",
    }
}

fn collect_names(e: &Expr, out: &mut Vec<String>) {
    match &e.kind {
        ExprKind::Name(n) | ExprKind::Indexed(n, _) => out.push(n.name.clone()),
        ExprKind::Call(_, args) => args.iter().for_each(|a| collect_names(a, out)),
        ExprKind::Unary(_, x) | ExprKind::Paren(x) => collect_names(x, out),
        ExprKind::Binary(_, a, b) => {
            collect_names(a, out);
            collect_names(b, out);
        }
        ExprKind::Number(_) | ExprKind::String(_) => {}
    }
}

fn file_stem(sources: &SourceMap, module: &Module) -> String {
    let name = sources
        .get(module.file)
        .map(|f| f.name.clone())
        .unwrap_or_default();
    std::path::Path::new(&name)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or(name)
}

fn block_has_verbatim(b: &Block) -> bool {
    b.stmts.iter().any(stmt_has_verbatim)
}

fn stmt_has_verbatim(s: &Stmt) -> bool {
    match &s.kind {
        StmtKind::Verbatim(_) => true,
        StmtKind::If {
            then_block,
            else_ifs,
            else_block,
            ..
        } => {
            block_has_verbatim(then_block)
                || else_ifs.iter().any(|e| block_has_verbatim(&e.body))
                || else_block.as_ref().is_some_and(block_has_verbatim)
        }
        StmtKind::While { body, .. }
        | StmtKind::From { body, .. }
        | StmtKind::ForNetcons { body, .. }
        | StmtKind::Block(body)
        | StmtKind::Initial(body) => block_has_verbatim(body),
        StmtKind::Solve {
            if_error: Some(b), ..
        } => block_has_verbatim(b),
        StmtKind::Protect(inner) => stmt_has_verbatim(inner),
        _ => false,
    }
}

fn item_blocks(kind: &ItemKind) -> Vec<&Block> {
    match kind {
        ItemKind::Initial(b)
        | ItemKind::Breakpoint(b)
        | ItemKind::Constructor(b)
        | ItemKind::Destructor(b) => vec![b],
        ItemKind::Solvable(s) => vec![&s.body],
        ItemKind::Procedure(p) => vec![&p.body],
        ItemKind::Function(f) => vec![&f.body],
        ItemKind::NetReceive(n) => vec![&n.body],
        ItemKind::BeforeAfter(b) => vec![&b.body],
        _ => vec![],
    }
}

fn module_has_verbatim(m: &Module) -> bool {
    m.items.iter().any(|i| {
        matches!(i.kind, ItemKind::Verbatim(_))
            || item_blocks(&i.kind).into_iter().any(block_has_verbatim)
    })
}

fn first_verbatim_span(m: &Module) -> Option<Span> {
    for i in &m.items {
        if let ItemKind::Verbatim(v) = &i.kind {
            return Some(i.span.to(v.span));
        }
        for b in item_blocks(&i.kind) {
            if let Some(s) = first_verbatim_in_block(b) {
                return Some(s);
            }
        }
    }
    None
}

fn first_verbatim_in_block(b: &Block) -> Option<Span> {
    for s in &b.stmts {
        if let StmtKind::Verbatim(_) = s.kind {
            return Some(s.span);
        }
        if stmt_has_verbatim(s) {
            // Descend into nested blocks.
            let inner: Vec<&Block> = match &s.kind {
                StmtKind::If {
                    then_block,
                    else_ifs,
                    else_block,
                    ..
                } => {
                    let mut v = vec![then_block];
                    v.extend(else_ifs.iter().map(|e| &e.body));
                    v.extend(else_block.iter());
                    v
                }
                StmtKind::While { body, .. }
                | StmtKind::From { body, .. }
                | StmtKind::ForNetcons { body, .. }
                | StmtKind::Block(body)
                | StmtKind::Initial(body) => vec![body],
                _ => vec![],
            };
            for b in inner {
                if let Some(sp) = first_verbatim_in_block(b) {
                    return Some(sp);
                }
            }
            return Some(s.span);
        }
    }
    None
}
