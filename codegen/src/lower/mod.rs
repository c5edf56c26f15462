//! Lowering: the front end's resolved [`Mechanism`] → one kernel-IR
//! [`Module`] plus the runtime metadata ([`MechanismSpec`] without kernels).
//!
//! This is the only lowering; the JIT and the Rust back end both consume its
//! output. It follows NEURON's generated code (nocmodl 9.0.2) so that the
//! numbers match:
//!
//! - **Storage.** RANGE parameters, assigned variables and states are fields
//!   in declaration order; GLOBALs are global slots. Every ion variable the
//!   mechanism uses, and `v`, get a hidden per-instance field (named with a
//!   leading `#`, which no NMODL name can have), exactly like nocmodl's
//!   per-instance copies: kernels copy the ion columns (and the node voltage)
//!   in first, FUNCTIONs read the copies, and written concentrations and
//!   reversal potentials are copied back at the end of INITIAL and of the
//!   state update.
//! - **INITIAL** (`init`): `v` and ions in, every state `s = s0`, the INITIAL
//!   body, ions out.
//! - **BREAKPOINT currents** (`cur`): the BREAKPOINT statements after SOLVE
//!   run at `v + 0.001` and at `v`; `g = (I(v+0.001) − I(v))/0.001`, and the
//!   same per ion for `di/dv`; `rhs −= I`, `d += g` (signs flipped for
//!   ELECTRODE_CURRENT; point processes scale by `1e2/area`). A mechanism
//!   without currents runs those statements after its SOLVEs instead.
//! - **SOLVE** (`state`): `cnexp` is the exact exponential update
//!   `s += (1 − exp(dt·a))·(−b/a − s)` for `s' = a·s + b` (a, b found by
//!   symbolic differentiation, [`sym`]); when an equation is not linear in
//!   its own state the block falls back to `derivimplicit` with warning
//!   W0401, as nocmodl does. `derivimplicit` and KINETIC `sparse` are
//!   backward Euler solved by Newton's method with a central-difference
//!   Jacobian ([`newton`]); `euler` is forward Euler.
//! - **TABLE**: tables of WITH+1 points in hidden globals, rebuilt by the
//!   `table_check` kernel when a DEPEND value changed, looked up with linear
//!   interpolation and end clamping unless `usetable` is 0 ([`table`]).
//! - **NET_RECEIVE**: the weight-vector arguments are [`Place::Weight`]s and
//!   `flag` is [`EnvVar::Flag`].
//!
//! What cannot be lowered (VERBATIM, WATCH, FOR_NETCONS, FUNCTION_TABLE,
//! LINEAR/NONLINEAR blocks, `runge`, …) is rejected with a located error
//! (`E04xx`) instead of a wrong kernel.

mod inline;
mod kernels;
pub use kernels::before_after_phase;
mod newton;
mod promote;
pub mod sym;
mod table;

use std::collections::{HashMap, HashSet};

use nmodl_frontend::ast::{self, Expr, ExprKind, Ident, Stmt, StmtKind};
use nmodl_frontend::diagnostic::Diagnostic;
use nmodl_frontend::model::{
    Builtin, IonRole, Mechanism, MechanismKind, SymbolId, SymbolKind, Visibility,
};
use nmodl_frontend::source::Span;
use runtime::{abi, FieldSpec, IonUse, MechKind, MechanismSpec};

use crate::ir::{
    AccumOp, Block, Body, EnvVar, FieldDecl, Function, GlobalDecl, Handle, IonDecl, IonVar, Local,
    LocalArray, MathFn, Module, PointerDecl, Statement, Type, UnaryOp,
};
use sym::{emit, Sym, Var};

/// Diagnostic codes of the lowering.
pub mod codes {
    /// A construct the code generator does not support (yet).
    pub const UNSUPPORTED: &str = "E0401";
    /// A call of a function that has no implementation here.
    pub const UNKNOWN_FUNCTION: &str = "E0402";
    /// A TABLE whose body cannot be tabulated.
    pub const BAD_TABLE: &str = "E0403";
    /// Generated IR failed validation: a bug of ours.
    pub const INTERNAL: &str = "E0499";
    /// `cnexp` could not be used; derivimplicit instead.
    pub const CNEXP_FALLBACK: &str = "W0401";
    /// A call that does nothing in this simulator (printf, …).
    pub const IGNORED_CALL: &str = "W0402";
}

/// The result of lowering one mechanism.
#[derive(Debug)]
pub struct Lowered {
    /// The kernels and functions.
    pub module: Module,
    /// The runtime metadata (its `kernels` are empty; the back end fills them).
    pub spec: MechanismSpec,
    /// Warnings (never errors).
    pub warnings: Vec<Diagnostic>,
}

type Res<T> = Result<T, Diagnostic>;

fn unsupported(span: Span, what: impl Into<String>) -> Diagnostic {
    Diagnostic::error(codes::UNSUPPORTED, span, what.into())
}

/// How a global-scope symbol is stored.
#[derive(Clone, Debug)]
enum Storage {
    Field(Handle<FieldDecl>),
    Global(Handle<GlobalDecl>),
    Pointer(Handle<PointerDecl>),
    Const(f64),
    Env(EnvVar),
    NodeArea,
    NodeDiam,
}

/// How the statements of a body treat `x' = e` and reactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Ordinary code: derivative equations are an error.
    Plain,
    /// `cnexp`: each `x' = a·x + b` becomes the exact update, in order.
    Cnexp,
    /// Derivative evaluation: `x' = e` stores `e` into `D<x>`.
    Deriv,
    /// KINETIC flux evaluation: reactions add to `D<species>`; CONSERVE and
    /// COMPARTMENT are recorded by the caller.
    Kinetic,
    /// LINEAR / NONLINEAR residuals: the k-th `~ lhs = rhs` stores
    /// `lhs − rhs` into the k-th unknown's `D` field.
    Algebraic,
}

/// Per-body name bindings.
#[derive(Default)]
struct Scope {
    locals: HashMap<SymbolId, Handle<Local>>,
    arrays: HashMap<SymbolId, Handle<LocalArray>>,
    /// A FUNCTION's own name, bound to its result local.
    result: Option<(SymbolId, Handle<Local>)>,
    /// NET_RECEIVE arguments → weight index.
    weights: HashMap<SymbolId, u32>,
    /// Symbols rebound for this body (TABLE builds).
    overrides: HashMap<SymbolId, Var>,
    /// Event kernels may use weights, flag and net_send.
    event: bool,
    /// Kernels (not functions) may call net_send / net_event / net_move.
    kernel: bool,
    mode: Option<Mode>,
    /// f_flux / b_flux of the last reaction (KINETIC).
    flux: Option<(Handle<Local>, Handle<Local>)>,
    /// KINETIC: the volume factor of each compartmentalised species.
    /// (state, element for the indexed form, volume).
    compartments: Vec<(SymbolId, Option<usize>, Sym)>,
    /// KINETIC: CONSERVE equations, (terms, total).
    conserves: Vec<(Vec<(f64, Var)>, Sym)>,
    /// LINEAR/NONLINEAR: the residual slot of each equation, in order.
    equation_rows: Vec<Var>,
    /// LINEAR/NONLINEAR: equations seen so far.
    equations: usize,
    /// KINETIC: the solved species in row order, and the hidden n×n field
    /// array the reactions add their analytic Jacobian ∂D_i/∂x_j to.
    kinetic_rows: Vec<Var>,
    jacobian: Option<Handle<FieldDecl>>,
    net_event_used: bool,
}

impl Scope {
    fn mode(&self) -> Mode {
        self.mode.unwrap_or(Mode::Plain)
    }
}

/// The lowering state of one mechanism.
struct Lower<'a> {
    mech: &'a Mechanism,
    module: Module,
    spec: MechanismSpec,
    storage: HashMap<SymbolId, Storage>,
    /// The derivative field `D<x>` of every state.
    dfield: HashMap<SymbolId, Handle<FieldDecl>>,
    /// Callable symbol → the IR function its calls go to.
    functions: HashMap<SymbolId, Handle<Function>>,
    /// For TABLE'd callables: the un-tabulated body.
    raw_functions: HashMap<SymbolId, Handle<Function>>,
    /// The hidden per-instance copy of `v`.
    v_field: Option<Handle<FieldDecl>>,
    /// Ion decls in `mech.ions` order.
    ions: Vec<Handle<IonDecl>>,
    usetable: Option<Handle<GlobalDecl>>,
    warnings: Vec<Diagnostic>,
    net_event_used: bool,
    /// TABLEs whose lookup function exists, for the table_check kernel.
    pending_tables: Vec<(SymbolId, usize, table::TableGlobals)>,
    /// Every `WATCH (cond) flag` of NET_RECEIVE: its span, condition, and
    /// the hidden fields holding its state (0 off, 1 armed and false,
    /// 2 armed and true) and its flag.
    watches: Vec<Watch<'a>>,
}

/// One WATCH condition (see [`Lower::watches`]).
struct Watch<'a> {
    span: Span,
    cond: &'a Expr,
    state: Handle<FieldDecl>,
    flag: Handle<FieldDecl>,
}

/// Lowers a resolved mechanism. Errors are located diagnostics; the first
/// unsupported construct stops the lowering.
pub fn lower(mech: &Mechanism) -> Result<Lowered, Vec<Diagnostic>> {
    let mut l = Lower::new(mech);
    let run = (|| -> Res<()> {
        l.check_unsupported()?;
        l.layout()?;
        l.declare_functions();
        l.lower_functions()?;
        l.kernels()?;
        inline::inline_calls(&mut l.module.kernels, &l.module.functions);
        let function_fields = promote::function_fields(&l.module.functions);
        for k in &mut l.module.kernels {
            if k.phase.shape() == crate::ir::Shape::PerInstance {
                promote::promote_fields(&mut k.body, &function_fields);
            }
        }
        // Scalar fields no user can name: above all the per-instance copies
        // of `v` and of ion variables.
        let copies: HashSet<Handle<FieldDecl>> = l
            .module
            .layout
            .fields
            .iter()
            .filter(|(h, f)| {
                f.array_len == 1 && l.spec.fields[h.index()].kind == abi::FIELD_INTERNAL
            })
            .map(|(h, _)| h)
            .collect();
        let module = &mut l.module;
        promote::drop_dead_stores(
            module
                .kernels
                .iter_mut()
                .map(|k| &mut k.body)
                .chain(module.functions.iter_mut().map(|(_, f)| &mut f.body)),
            &copies,
        );
        for k in &mut module.kernels {
            promote::drop_dead_assignments(&mut k.body);
        }
        Ok(())
    })();
    match run {
        Ok(()) => {
            if l.net_event_used {
                l.spec.flags |= abi::MECH_HAS_NET_EVENT;
            }
            l.spec.n_weights = mech
                .net_receive
                .as_ref()
                .map_or(0, |nr| nr.params.len() as u32);
            Ok(Lowered {
                module: l.module,
                spec: l.spec,
                warnings: l.warnings,
            })
        }
        Err(d) => {
            let mut all = l.warnings;
            all.push(d);
            Err(all)
        }
    }
}

impl<'a> Lower<'a> {
    fn new(mech: &'a Mechanism) -> Lower<'a> {
        let kind = match mech.kind {
            MechanismKind::Density => MechKind::Density,
            MechanismKind::PointProcess => MechKind::PointProcess,
            MechanismKind::ArtificialCell => MechKind::ArtificialCell,
        };
        let mut spec = MechanismSpec::new(&mech.name, kind);
        if mech.thread_safe {
            spec.flags |= abi::MECH_THREADSAFE;
        }
        if !mech.electrode_currents.is_empty() {
            spec.flags |= abi::MECH_ELECTRODE_CURRENT;
        }
        if mech.ion_summary.writes_concentration {
            spec.flags |= abi::MECH_WRITES_CONC;
        }
        Lower {
            mech,
            module: Module {
                name: mech.name.clone(),
                ..Module::default()
            },
            spec,
            storage: HashMap::new(),
            dfield: HashMap::new(),
            functions: HashMap::new(),
            raw_functions: HashMap::new(),
            v_field: None,
            ions: Vec::new(),
            usetable: None,
            warnings: Vec::new(),
            net_event_used: false,
            pending_tables: Vec::new(),
            watches: Vec::new(),
        }
    }

    fn sym(&self, id: SymbolId) -> &'a nmodl_frontend::model::Symbol {
        self.mech.symbols.get(id)
    }

    /// Rejects what the code generator cannot do, at its location.
    fn check_unsupported(&self) -> Res<()> {
        let m = self.mech;
        if let Some(v) = m.verbatim.first() {
            return Err(unsupported(
                v.span,
                "VERBATIM blocks (C code) cannot be compiled by nrnivmodl-rs",
            )
            .with_note("rewrite the C code in NMODL; see the README's corpus table for examples"));
        }
        if let Some(f) = m.function_tables.first() {
            return Err(unsupported(f.span, "FUNCTION_TABLE is not supported yet"));
        }
        for b in &m.solve_blocks {
            if b.kind == nmodl_frontend::model::SolveBlockKind::Discrete {
                return Err(unsupported(
                    b.span,
                    format!("{} blocks are not supported yet", b.kind.keyword()),
                ));
            }
        }
        if let Some(&p) = m.randoms.first() {
            return Err(unsupported(
                self.sym(p).span.unwrap_or(m_span(m)),
                "RANDOM variables are not supported yet",
            ));
        }
        if let Some(&p) = m.bbcore_pointers.first() {
            return Err(unsupported(
                self.sym(p).span.unwrap_or(m_span(m)),
                "BBCOREPOINTER is not supported",
            ));
        }
        Ok(())
    }

    // -----------------------------------------------------------------
    // Layout

    fn add_field(
        &mut self,
        name: &str,
        units: &str,
        kind: u32,
        len: u32,
        default: f64,
    ) -> Handle<FieldDecl> {
        self.spec.fields.push(FieldSpec {
            name: name.to_string(),
            units: units.to_string(),
            kind,
            array_len: len,
            default_value: default,
        });
        self.module.layout.fields.append(FieldDecl {
            name: name.to_string(),
            array_len: len,
        })
    }

    fn add_global(
        &mut self,
        name: &str,
        units: &str,
        len: u32,
        default: f64,
    ) -> Handle<GlobalDecl> {
        self.spec.globals.push(FieldSpec {
            name: name.to_string(),
            units: units.to_string(),
            kind: abi::FIELD_PARAMETER,
            array_len: len,
            default_value: default,
        });
        self.module.layout.globals.append(GlobalDecl {
            name: name.to_string(),
            array_len: len,
        })
    }

    fn layout(&mut self) -> Res<()> {
        let m = self.mech;
        // Ions first, in USEION order.
        for u in &m.ions {
            let mut flags = 0;
            for (list, write) in [(&u.read, false), (&u.write, true)] {
                for &id in list.iter() {
                    let role = self.sym(id).ion.as_ref().map(|b| b.role);
                    flags |= match (role, write) {
                        (Some(IonRole::Reversal), false) => abi::ION_READ_E,
                        (Some(IonRole::Reversal), true) => abi::ION_WRITE_E,
                        (Some(IonRole::ConcentrationInside), false) => abi::ION_READ_CI,
                        (Some(IonRole::ConcentrationInside), true) => abi::ION_WRITE_CI,
                        (Some(IonRole::ConcentrationOutside), false) => abi::ION_READ_CO,
                        (Some(IonRole::ConcentrationOutside), true) => abi::ION_WRITE_CO,
                        (Some(IonRole::Current), false) => abi::ION_READ_I,
                        (Some(IonRole::Current), true) => abi::ION_WRITE_I,
                        _ => 0,
                    };
                }
            }
            // Several USEION statements for one ion share one decl.
            if let Some(k) = self.spec.ions.iter().position(|i| i.name == u.ion) {
                self.spec.ions[k].flags |= flags;
                let h = self.ions[k];
                self.ions.push(h);
                continue;
            }
            self.spec.ions.push(IonUse {
                name: u.ion.clone(),
                valence: if u.valence_explicit { u.valence } else { None },
                flags,
            });
            self.ions.push(self.module.layout.ions.append(IonDecl {
                name: u.ion.clone(),
            }));
        }
        // `v` copy for everything with a node.
        if m.kind != MechanismKind::ArtificialCell {
            self.v_field = Some(self.add_field("#v", "mV", abi::FIELD_INTERNAL, 1, 0.0));
        }
        for (i, s) in m.symbols.symbols.iter().enumerate() {
            let id = SymbolId(i as u32);
            if s.owner.is_some() {
                continue;
            }
            let units = s.units.clone().unwrap_or_default();
            let len = s.array_len.unwrap_or(1).max(1) as u32;
            let storage = match &s.kind {
                SymbolKind::Parameter | SymbolKind::Assigned | SymbolKind::State => {
                    let vis = if s.ion.is_some() && s.visibility.is_none() {
                        None
                    } else {
                        Some(s.visibility.unwrap_or(if s.kind == SymbolKind::Parameter {
                            Visibility::Global
                        } else {
                            Visibility::Range
                        }))
                    };
                    let default = s.default.unwrap_or(0.0);
                    match vis {
                        None => Storage::Field(self.add_field(
                            &format!("#{}", s.name),
                            &units,
                            abi::FIELD_INTERNAL,
                            len,
                            default,
                        )),
                        Some(Visibility::Range) => {
                            let kind = match s.kind {
                                SymbolKind::Parameter => abi::FIELD_PARAMETER,
                                SymbolKind::State => abi::FIELD_STATE,
                                _ => abi::FIELD_ASSIGNED,
                            };
                            Storage::Field(self.add_field(&s.name, &units, kind, len, default))
                        }
                        Some(Visibility::Global) => {
                            Storage::Global(self.add_global(&s.name, &units, len, default))
                        }
                    }
                }
                SymbolKind::IonVariable => Storage::Field(self.add_field(
                    &format!("#{}", s.name),
                    &units,
                    abi::FIELD_INTERNAL,
                    len,
                    0.0,
                )),
                SymbolKind::Pointer => {
                    self.spec.pointers.push(s.name.clone());
                    Storage::Pointer(self.module.layout.pointers.append(PointerDecl {
                        name: s.name.clone(),
                    }))
                }
                SymbolKind::Constant { value } | SymbolKind::UnitsConstant { value } => {
                    Storage::Const(*value)
                }
                SymbolKind::Define { value } => Storage::Const(*value as f64),
                SymbolKind::Local => {
                    // A file-scope LOCAL: one value per mechanism (a C static).
                    Storage::Global(self.add_global(&format!("#{}", s.name), "", len, 0.0))
                }
                SymbolKind::Builtin(b) => match b {
                    Builtin::V => match self.v_field {
                        Some(f) => Storage::Field(f),
                        None => continue,
                    },
                    Builtin::T => Storage::Env(EnvVar::T),
                    Builtin::Dt => Storage::Env(EnvVar::Dt),
                    Builtin::Celsius => Storage::Env(EnvVar::Celsius),
                    Builtin::Secondorder => Storage::Env(EnvVar::SecondOrder),
                    Builtin::Area => Storage::NodeArea,
                    Builtin::Diam => Storage::NodeDiam,
                    Builtin::Usetable | Builtin::FFlux | Builtin::BFlux => continue,
                },
                _ => continue,
            };
            self.storage.insert(id, storage);
        }
        // Derivative fields for every state.
        for &st in &m.states {
            let s = self.sym(st);
            let len = s.array_len.unwrap_or(1).max(1) as u32;
            let f = self.add_field(&format!("#D{}", s.name), "", abi::FIELD_INTERNAL, len, 0.0);
            self.dfield.insert(st, f);
        }
        if let Some(nr) = &m.net_receive {
            let mut items = Vec::new();
            collect_watches(&nr.body.stmts, &mut items);
            for w in items {
                let k = self.watches.len();
                let state = self.add_field(&format!("#watch{k}"), "", abi::FIELD_INTERNAL, 1, 0.0);
                let flag =
                    self.add_field(&format!("#watchflag{k}"), "", abi::FIELD_INTERNAL, 1, 0.0);
                self.watches.push(Watch {
                    span: w.span,
                    cond: &w.cond,
                    state,
                    flag,
                });
            }
        }
        if !m.tables.is_empty() {
            let g = self.add_global("usetable", "", 1, 1.0);
            self.usetable = Some(g);
            // `usetable_<suffix>` resolves to the same global.
            for (i, s) in m.symbols.symbols.iter().enumerate() {
                if s.kind == SymbolKind::Builtin(Builtin::Usetable) {
                    self.storage.insert(SymbolId(i as u32), Storage::Global(g));
                }
            }
        }
        Ok(())
    }

    /// The storage var of a global-scope symbol.
    fn storage_var(&self, id: SymbolId, index: Option<Sym>, span: Span) -> Res<Sym> {
        let s = self.sym(id);
        let st = self.storage.get(&id).ok_or_else(|| {
            unsupported(
                span,
                format!("`{}` cannot be used here by the code generator", s.name),
            )
        })?;
        let idx = index.map(Box::new);
        Ok(match st {
            Storage::Field(f) => Sym::Var(Var::Field(*f, idx)),
            Storage::Global(g) => Sym::Var(Var::Global(*g, idx)),
            Storage::Pointer(p) => Sym::Var(Var::Pointer(*p)),
            Storage::Const(c) => Sym::Num(*c),
            Storage::Env(e) => Sym::Var(Var::Env(*e)),
            Storage::NodeArea => Sym::Var(Var::NodeArea),
            Storage::NodeDiam => Sym::Var(Var::NodeDiam),
        })
    }

    // -----------------------------------------------------------------
    // Functions

    fn declare_functions(&mut self) {
        for c in &self.mech.callables {
            let f = self.module.functions.append(Function {
                name: c.name.clone(),
                ..Function::default()
            });
            self.functions.insert(c.symbol, f);
            if c.table.is_some() {
                let raw = self.module.functions.append(Function {
                    name: format!("#f_{}", c.name),
                    ..Function::default()
                });
                self.raw_functions.insert(c.symbol, raw);
            }
        }
    }

    fn lower_functions(&mut self) -> Res<()> {
        for c in &self.mech.callables {
            let (body, params, result) = self.lower_callable(c, Scope::default())?;
            let target = match self.raw_functions.get(&c.symbol) {
                Some(&raw) => raw,
                None => self.functions[&c.symbol],
            };
            let f = &mut self.module.functions[target];
            f.body = body;
            f.params = params;
            f.result = result;
            if let Some(t) = c.table {
                self.table_lookup_function(c, t)?;
            }
        }
        Ok(())
    }

    /// Lowers a FUNCTION or PROCEDURE body into a fresh body.
    fn lower_callable(
        &mut self,
        c: &nmodl_frontend::model::Callable,
        mut sc: Scope,
    ) -> Res<(Body, Vec<Handle<Local>>, Option<Handle<Local>>)> {
        let mut body = Body::default();
        let mut params = Vec::new();
        for p in &c.params {
            let l = body.local(&p.name, Type::F64);
            sc.locals.insert(p.symbol, l);
            params.push(l);
        }
        let result = if c.is_function {
            let r = body.local(&c.name, Type::F64);
            sc.result = Some((c.symbol, r));
            Some(r)
        } else {
            None
        };
        let block = self.stmts(&mut sc, &mut body, &c.body.stmts)?;
        body.block = block;
        Ok((body, params, result))
    }

    // -----------------------------------------------------------------
    // Names

    fn ref_of(&self, ident: &Ident) -> Res<SymbolId> {
        self.mech.refs.get(ident.span).ok_or_else(|| {
            Diagnostic::error(
                codes::INTERNAL,
                ident.span,
                format!("internal error: `{}` was not resolved", ident.name),
            )
        })
    }

    /// The variable a name denotes in this scope (for reading or writing).
    fn var_of(
        &mut self,
        sc: &mut Scope,
        body: &mut Body,
        ident: &Ident,
        index: Option<&Expr>,
    ) -> Res<Sym> {
        let id = self.ref_of(ident)?;
        let idx = match index {
            Some(e) => Some(self.expr(sc, body, e)?.as_f64()),
            None => None,
        };
        if let Some(v) = sc.overrides.get(&id) {
            return Ok(Sym::Var(v.clone()));
        }
        if let Some(&l) = sc.locals.get(&id) {
            return Ok(Sym::Var(Var::Local(l)));
        }
        if let Some(&a) = sc.arrays.get(&id) {
            let i = idx.ok_or_else(|| unsupported(ident.span, "a LOCAL array needs an index"))?;
            return Ok(Sym::Var(Var::LocalArray(a, Box::new(i))));
        }
        if let Some((r, l)) = sc.result {
            if r == id {
                return Ok(Sym::Var(Var::Local(l)));
            }
        }
        if let Some(&k) = sc.weights.get(&id) {
            return Ok(Sym::Var(Var::Weight(k)));
        }
        let s = self.sym(id);
        match &s.kind {
            SymbolKind::Argument if s.owner.is_some() => Err(unsupported(
                ident.span,
                format!(
                    "the argument `{}` of {} cannot be used here",
                    s.name,
                    s.owner.as_deref().unwrap_or("a block")
                ),
            )),
            SymbolKind::Local if s.owner.is_some() => {
                // A LOCAL used before (or without) its declaration statement
                // in this body: give it a slot now.
                if let Some(n) = s.array_len {
                    let a = body.array(&s.name, n.max(1) as u32);
                    sc.arrays.insert(id, a);
                    let i =
                        idx.ok_or_else(|| unsupported(ident.span, "a LOCAL array needs an index"))?;
                    return Ok(Sym::Var(Var::LocalArray(a, Box::new(i))));
                }
                let l = body.local(&s.name, Type::F64);
                sc.locals.insert(id, l);
                Ok(Sym::Var(Var::Local(l)))
            }
            SymbolKind::Builtin(Builtin::FFlux) | SymbolKind::Builtin(Builtin::BFlux) => {
                let (f, b) = sc.flux.ok_or_else(|| {
                    unsupported(ident.span, "f_flux / b_flux outside a KINETIC block")
                })?;
                Ok(Sym::Var(Var::Local(
                    if s.kind == SymbolKind::Builtin(Builtin::FFlux) {
                        f
                    } else {
                        b
                    },
                )))
            }
            _ => self.storage_var(id, idx, ident.span),
        }
    }

    // -----------------------------------------------------------------
    // Expressions

    fn expr(&mut self, sc: &mut Scope, body: &mut Body, e: &Expr) -> Res<Sym> {
        use crate::ir::BinaryOp as B;
        use ast::BinaryOp as A;
        Ok(match &e.kind {
            ExprKind::Number(x) => Sym::Num(*x),
            ExprKind::Paren(inner) => self.expr(sc, body, inner)?,
            ExprKind::Name(id) => self.var_of(sc, body, id, None)?,
            ExprKind::Indexed(id, index) => self.var_of(sc, body, id, Some(index))?,
            ExprKind::String(_) => {
                return Err(unsupported(
                    e.span,
                    "a string can only be a printf argument",
                ))
            }
            ExprKind::Unary(op, a) => {
                let a = self.expr(sc, body, a)?;
                match op {
                    ast::UnaryOp::Neg => Sym::neg(a.as_f64()),
                    ast::UnaryOp::Not => Sym::Unary(UnaryOp::Not, Box::new(a.as_bool())),
                }
            }
            ExprKind::Binary(op, a, b) => {
                let (a, b) = (self.expr(sc, body, a)?, self.expr(sc, body, b)?);
                let op = match op {
                    A::Or => B::Or,
                    A::And => B::And,
                    A::Lt => B::Lt,
                    A::Le => B::Le,
                    A::Gt => B::Gt,
                    A::Ge => B::Ge,
                    A::Eq => B::Eq,
                    A::Ne => B::Ne,
                    A::Add => B::Add,
                    A::Sub => B::Sub,
                    A::Mul => B::Mul,
                    A::Div => B::Div,
                    A::Pow => B::Pow,
                    A::Rem => {
                        return Ok(Sym::Math(MathFn::Fmod, vec![a.as_f64(), b.as_f64()]));
                    }
                };
                match op {
                    B::And | B::Or => Sym::bin(op, a.as_bool(), b.as_bool()),
                    _ => Sym::bin(op, a.as_f64(), b.as_f64()),
                }
            }
            ExprKind::Call(name, args) => self.call(sc, body, name, args, e.span)?,
        })
    }

    fn args(&mut self, sc: &mut Scope, body: &mut Body, args: &[Expr]) -> Res<Vec<Sym>> {
        args.iter()
            .map(|a| Ok(self.expr(sc, body, a)?.as_f64()))
            .collect()
    }

    /// A call in an expression.
    fn call(
        &mut self,
        sc: &mut Scope,
        body: &mut Body,
        name: &Ident,
        args: &[Expr],
        span: Span,
    ) -> Res<Sym> {
        let id = self.ref_of(name)?;
        let s = self.sym(id);
        match &s.kind {
            SymbolKind::Function { .. } | SymbolKind::Procedure { .. } => {
                let f = self.functions[&id];
                let a = self.args(sc, body, args)?;
                if matches!(s.kind, SymbolKind::Procedure { .. }) {
                    // A PROCEDURE used as a value: nocmodl returns 0 after the call.
                    return Err(unsupported(
                        span,
                        format!("PROCEDURE `{}` has no value", s.name),
                    ));
                }
                Ok(Sym::Call(f, a))
            }
            SymbolKind::BuiltinFunction => {
                let a = self.args(sc, body, args)?;
                let n = name.name.as_str();
                if let Some(f) = MathFn::from_name(n) {
                    if a.len() != f.arity() {
                        return Err(unsupported(
                            span,
                            format!("`{n}` takes {} argument(s)", f.arity()),
                        ));
                    }
                    return Ok(Sym::Math(f, a));
                }
                let one = |a: &Vec<Sym>| -> Res<Sym> {
                    a.first()
                        .cloned()
                        .ok_or_else(|| unsupported(span, format!("`{n}` needs an argument")))
                };
                Ok(match n {
                    "scop_random" | "random_uniform" if a.is_empty() => Sym::Random,
                    // exprand(mean) = -mean * ln(1 - u), u uniform in [0, 1).
                    "exprand" | "random_negexp" => Sym::bin(
                        crate::ir::BinaryOp::Mul,
                        Sym::neg(if n == "random_negexp" && a.is_empty() {
                            Sym::Num(1.0)
                        } else {
                            one(&a)?
                        }),
                        Sym::Math(
                            MathFn::Log,
                            vec![Sym::bin(
                                crate::ir::BinaryOp::Sub,
                                Sym::Num(1.0),
                                Sym::Random,
                            )],
                        ),
                    ),
                    // normrand(mean, sd): Box–Muller on two uniform deviates.
                    "normrand" if a.len() == 2 => Sym::bin(
                        crate::ir::BinaryOp::Add,
                        a[0].clone(),
                        Sym::bin(
                            crate::ir::BinaryOp::Mul,
                            a[1].clone(),
                            Sym::bin(
                                crate::ir::BinaryOp::Mul,
                                Sym::Math(
                                    MathFn::Sqrt,
                                    vec![Sym::bin(
                                        crate::ir::BinaryOp::Mul,
                                        Sym::Num(-2.0),
                                        Sym::Math(
                                            MathFn::Log,
                                            vec![Sym::bin(
                                                crate::ir::BinaryOp::Sub,
                                                Sym::Num(1.0),
                                                Sym::Random,
                                            )],
                                        ),
                                    )],
                                ),
                                Sym::Math(
                                    MathFn::Cos,
                                    vec![Sym::bin(
                                        crate::ir::BinaryOp::Mul,
                                        Sym::Num(2.0 * std::f64::consts::PI),
                                        Sym::Random,
                                    )],
                                ),
                            ),
                        ),
                    ),
                    "abs" => Sym::Math(MathFn::Fabs, vec![one(&a)?]),
                    // In fixed step, at_time only reports whether t is the
                    // given time; nothing uses the value for control flow
                    // that matters here: NEURON returns 0 unless t == arg.
                    "at_time" => Sym::BoolToF64(Box::new(Sym::bin(
                        crate::ir::BinaryOp::Eq,
                        Sym::Var(Var::Env(EnvVar::T)),
                        one(&a)?,
                    ))),
                    _ => {
                        return Err(Diagnostic::error(
                            codes::UNKNOWN_FUNCTION,
                            span,
                            format!(
                                "the built-in function `{n}` is not supported by nrnivmodl-rs yet"
                            ),
                        ))
                    }
                })
            }
            SymbolKind::FunctionTable { .. } => {
                Err(unsupported(span, "FUNCTION_TABLE is not supported yet"))
            }
            SymbolKind::VerbatimName => Err(unsupported(
                span,
                format!("`{}` is defined only in VERBATIM C code", s.name),
            )),
            _ => Err(unsupported(span, format!("`{}` is not a function", s.name))),
        }
    }

    // -----------------------------------------------------------------
    // Statements

    fn stmts(&mut self, sc: &mut Scope, body: &mut Body, stmts: &[Stmt]) -> Res<Block> {
        let mut out = Block::new();
        for s in stmts {
            self.stmt(sc, body, s, &mut out)?;
        }
        Ok(out)
    }

    fn assign(
        &mut self,
        body: &mut Body,
        target: Sym,
        value: Sym,
        span: Span,
        out: &mut Block,
    ) -> Res<()> {
        match target {
            Sym::Var(Var::Local(l)) => {
                let value = emit(&value.as_f64(), body);
                out.push(Statement::Assign { local: l, value });
            }
            Sym::Var(
                v @ (Var::Field(..)
                | Var::Global(..)
                | Var::LocalArray(..)
                | Var::Pointer(_)
                | Var::Weight(_)),
            ) => {
                let place = v.place(body).expect("storable");
                let value = emit(&value.as_f64(), body);
                out.push(Statement::Store { place, value });
            }
            _ => return Err(unsupported(span, "this variable cannot be assigned")),
        }
        Ok(())
    }

    fn stmt(&mut self, sc: &mut Scope, body: &mut Body, s: &Stmt, out: &mut Block) -> Res<()> {
        match &s.kind {
            StmtKind::Assign { lhs, rhs } => {
                let target = match &lhs.kind {
                    ExprKind::Name(id) => self.var_of(sc, body, id, None)?,
                    ExprKind::Indexed(id, i) => self.var_of(sc, body, id, Some(i))?,
                    _ => return Err(unsupported(lhs.span, "cannot assign to this expression")),
                };
                let value = self.expr(sc, body, rhs)?;
                self.assign(body, target, value, s.span, out)?;
            }
            StmtKind::Local(vars) => {
                for v in vars {
                    let id = self.ref_of(&v.name)?;
                    let sym = self.sym(id);
                    match sym.array_len {
                        Some(n) => {
                            let a = body.array(&v.name.name, n.max(1) as u32);
                            sc.arrays.insert(id, a);
                        }
                        None => {
                            let l = body.local(&v.name.name, Type::F64);
                            sc.locals.insert(id, l);
                        }
                    }
                }
            }
            StmtKind::If {
                cond,
                then_block,
                else_ifs,
                else_block,
            } => {
                let c = self.expr(sc, body, cond)?.as_bool();
                let condition = emit(&c, body);
                let accept = self.stmts(sc, body, &then_block.stmts)?;
                // else-if chains nest in the reject branch.
                let mut reject = match else_block {
                    Some(b) => self.stmts(sc, body, &b.stmts)?,
                    None => Block::new(),
                };
                for ei in else_ifs.iter().rev() {
                    let c = self.expr(sc, body, &ei.cond)?.as_bool();
                    let condition = emit(&c, body);
                    let accept = self.stmts(sc, body, &ei.body.stmts)?;
                    reject = vec![Statement::If {
                        condition,
                        accept,
                        reject,
                    }];
                }
                out.push(Statement::If {
                    condition,
                    accept,
                    reject,
                });
            }
            StmtKind::While { cond, body: b } => {
                let c = self.expr(sc, body, cond)?.as_bool();
                let condition = emit(&c, body);
                let inner = self.stmts(sc, body, &b.stmts)?;
                out.push(Statement::While {
                    condition,
                    body: inner,
                    max_iterations: 100_000_000,
                });
            }
            StmtKind::From {
                var,
                from,
                to,
                by,
                body: b,
            } => {
                let id = self.ref_of(var)?;
                let l = match sc.locals.get(&id) {
                    Some(&l) => l,
                    None => {
                        let l = body.local(&var.name, Type::F64);
                        sc.locals.insert(id, l);
                        l
                    }
                };
                let start = self.expr(sc, body, from)?.as_f64();
                let end = self.expr(sc, body, to)?.as_f64();
                let step = match by {
                    None => 1.0,
                    Some(e) => match sym::simplify(self.expr(sc, body, e)?) {
                        Sym::Num(x) if x != 0.0 && x.is_finite() => x,
                        _ => {
                            return Err(unsupported(
                                e.span,
                                "FROM … BY needs a nonzero constant step",
                            ))
                        }
                    },
                };
                let start = emit(&start, body);
                let end = emit(&end, body);
                let inner = self.stmts(sc, body, &b.stmts)?;
                out.push(Statement::ForRange {
                    var: l,
                    start,
                    end,
                    step,
                    body: inner,
                    max_iterations: 100_000_000,
                });
            }
            StmtKind::Block(b) => {
                let inner = self.stmts(sc, body, &b.stmts)?;
                out.extend(inner);
            }
            StmtKind::Protect(inner) => self.stmt(sc, body, inner, out)?,
            StmtKind::MutexLock
            | StmtKind::MutexUnlock
            | StmtKind::UnitsOn
            | StmtKind::UnitsOff
            | StmtKind::Table { .. }
            | StmtKind::Conductance(_) => {}
            StmtKind::Solve { name, .. } => {
                // SOLVE in BREAKPOINT is handled by the state kernel (which
                // skips these statements); anywhere else (INITIAL, a
                // FUNCTION computing a steady state, …) it runs in place.
                let solve = self.find_solve(&name.name, s)?;
                self.solve(sc, body, &solve, out)?;
            }
            StmtKind::Expr(e) => self.call_stmt(sc, body, e, out)?,
            StmtKind::DiffEq {
                state,
                order,
                index,
                rhs,
            } => {
                if *order != 1 {
                    return Err(unsupported(
                        s.span,
                        "second-order equations (x'') are not supported",
                    ));
                }
                self.diffeq(sc, body, state, index.as_ref(), rhs, s.span, out)?;
            }
            StmtKind::Reaction(r) => self.reaction(sc, body, r, s.span, out)?,
            StmtKind::Conserve { terms, rhs } => self.conserve(sc, body, terms, rhs, s.span)?,
            StmtKind::Compartment {
                index,
                volume,
                states,
            } => self.compartment(sc, body, index.as_ref(), volume, states, s.span)?,
            StmtKind::LinearEq { lhs, rhs } => {
                if sc.mode() != Mode::Algebraic {
                    return Err(unsupported(
                        s.span,
                        "a `~ … = …` equation outside LINEAR/NONLINEAR",
                    ));
                }
                let row = sc.equation_rows.get(sc.equations).cloned().ok_or_else(|| {
                    unsupported(
                        s.span,
                        "more equations than unknowns in this LINEAR/NONLINEAR block",
                    )
                })?;
                sc.equations += 1;
                let l = self.expr(sc, body, lhs)?.as_f64();
                let r = self.expr(sc, body, rhs)?.as_f64();
                let place = row.place(body).expect("field");
                let value = emit(&Sym::bin(crate::ir::BinaryOp::Sub, l, r), body);
                out.push(Statement::Store { place, value });
            }
            StmtKind::LongitudinalDiffusion { .. } => {
                return Err(unsupported(
                    s.span,
                    "LONGITUDINAL_DIFFUSION is not supported yet",
                ))
            }
            StmtKind::Watch(items) => {
                if !sc.event {
                    return Err(unsupported(s.span, "WATCH outside NET_RECEIVE"));
                }
                for w in items {
                    let k = self
                        .watches
                        .iter()
                        .position(|x| x.span == w.span)
                        .ok_or_else(|| unsupported(w.span, "WATCH in an unexpected place"))?;
                    let (state, flag) = (self.watches[k].state, self.watches[k].flag);
                    // Arming records whether the condition already holds, so
                    // only a later false → true change triggers (NEURON's
                    // WatchCondition::activate).
                    let c = self.expr(sc, body, &w.cond)?.as_bool();
                    let armed = Sym::Select(
                        Box::new(c),
                        Box::new(Sym::Num(2.0)),
                        Box::new(Sym::Num(1.0)),
                    );
                    let value = emit(&armed, body);
                    out.push(Statement::Store {
                        place: crate::ir::Place::Field {
                            field: state,
                            index: None,
                        },
                        value,
                    });
                    let f = self.expr(sc, body, &w.flag)?.as_f64();
                    let value = emit(&f, body);
                    out.push(Statement::Store {
                        place: crate::ir::Place::Field {
                            field: flag,
                            index: None,
                        },
                        value,
                    });
                }
            }
            StmtKind::ForNetcons { .. } => {
                return Err(unsupported(s.span, "FOR_NETCONS is not supported yet"))
            }
            StmtKind::Verbatim(v) => {
                return Err(unsupported(
                    v.span,
                    "VERBATIM blocks (C code) cannot be compiled by nrnivmodl-rs",
                ))
            }
            StmtKind::Initial(_) => {}
            StmtKind::Lag { .. } => return Err(unsupported(s.span, "LAG is not supported")),
        }
        Ok(())
    }

    /// A call used as a statement.
    fn call_stmt(&mut self, sc: &mut Scope, body: &mut Body, e: &Expr, out: &mut Block) -> Res<()> {
        let ExprKind::Call(name, args) = &e.kind else {
            // A bare expression statement: evaluate nothing (no side effects).
            return Ok(());
        };
        let id = self.ref_of(name)?;
        let s = self.sym(id);
        match (&s.kind, name.name.as_str()) {
            (SymbolKind::Procedure { .. } | SymbolKind::Function { .. }, _) => {
                let f = self.functions[&id];
                let a = self.args(sc, body, args)?;
                let args = a.iter().map(|a| emit(a, body)).collect();
                out.push(Statement::Call { function: f, args });
            }
            (SymbolKind::BuiltinFunction, n @ ("net_send" | "net_event" | "net_move")) => {
                if !sc.kernel {
                    return Err(unsupported(
                        e.span,
                        format!("{n} in a FUNCTION or PROCEDURE is not supported"),
                    ));
                }
                let a = self.args(sc, body, args)?;
                match (n, a.as_slice()) {
                    ("net_send", [d, f]) => {
                        let delay = emit(d, body);
                        let flag = emit(f, body);
                        out.push(Statement::NetSend { delay, flag });
                    }
                    ("net_event", [t]) => {
                        let time = emit(t, body);
                        out.push(Statement::NetEvent { time });
                        sc.net_event_used = true;
                        self.net_event_used = true;
                    }
                    ("net_move", [t]) => {
                        let time = emit(t, body);
                        out.push(Statement::NetMove { time });
                    }
                    _ => {
                        return Err(unsupported(
                            e.span,
                            format!("wrong number of arguments to {n}"),
                        ))
                    }
                }
            }
            (SymbolKind::BuiltinFunction, "set_seed" | "setseed") => {
                let a = self.args(sc, body, args)?;
                let seed = emit(
                    a.first()
                        .ok_or_else(|| unsupported(e.span, "set_seed needs a seed"))?,
                    body,
                );
                out.push(Statement::SetSeed { seed });
            }
            (SymbolKind::BuiltinFunction, "printf" | "prterr") => {
                self.warnings.push(Diagnostic::warning(
                    codes::IGNORED_CALL,
                    e.span,
                    format!(
                        "`{}` output is not printed by nrnivmodl-rs kernels",
                        name.name
                    ),
                ));
            }
            (SymbolKind::BuiltinFunction, "error" | "abort") => {
                out.push(Statement::Error {
                    status: abi::STATUS_MECHANISM_ERROR,
                });
            }
            _ => {
                // Any other call: evaluate it (for its effects) and discard.
                let v = self.call(sc, body, name, args, e.span)?;
                let l = body.local("#discard", Type::F64);
                let value = emit(&v.as_f64(), body);
                out.push(Statement::Assign { local: l, value });
            }
        }
        Ok(())
    }

    /// The state variable and its derivative field, for `x'` or a reaction
    /// species. A species that is not a STATE (a PARAMETER reservoir) has no
    /// derivative: reactions treat it as a constant, as nocmodl does.
    fn state_vars(
        &mut self,
        sc: &mut Scope,
        body: &mut Body,
        ident: &Ident,
        index: Option<&Expr>,
    ) -> Res<(Sym, Option<Var>)> {
        let id = self.ref_of(ident)?;
        let x = self.var_of(sc, body, ident, index)?;
        let Some(&d) = self.dfield.get(&id) else {
            return Ok((x, None));
        };
        let idx = match index {
            Some(e) => Some(Box::new(self.expr(sc, body, e)?.as_f64())),
            None => None,
        };
        Ok((x, Some(Var::Field(d, idx))))
    }

    #[allow(clippy::too_many_arguments)]
    fn diffeq(
        &mut self,
        sc: &mut Scope,
        body: &mut Body,
        state: &Ident,
        index: Option<&Expr>,
        rhs: &Expr,
        span: Span,
        out: &mut Block,
    ) -> Res<()> {
        use crate::ir::BinaryOp as B;
        let (x, dvar) = self.state_vars(sc, body, state, index)?;
        let dvar = dvar
            .ok_or_else(|| unsupported(state.span, format!("`{}` is not a STATE", state.name)))?;
        let f = self.expr(sc, body, rhs)?.as_f64();
        match sc.mode() {
            Mode::Deriv => {
                let place = dvar.place(body).expect("field");
                let value = emit(&f, body);
                out.push(Statement::Store { place, value });
            }
            Mode::Cnexp => {
                // nocmodl's cnexp (deriv.cpp cvode_cnexp_success with the
                // diffeq.ypp grammar): x += (1 - exp(dt*de))*(-(b)/(a) - x)
                // with de = ∂f/∂x; when f is not linear in x, nocmodl drops
                // the -(b)/(a) term (x += (1 - exp(dt*de))*(-x)), and when
                // de is 0, x -= dt*(-(b)). Only an underivable f falls back.
                let Sym::Var(xv) = &x else { unreachable!() };
                let parts = sym::cnexp_parts(&f, xv).map_err(|()| {
                    Diagnostic::warning(codes::CNEXP_FALLBACK, span, "cannot differentiate")
                })?;
                let dt = Sym::Var(Var::Env(EnvVar::Dt));
                let de = sym::simplify(parts.de);
                let new = if matches!(de, Sym::Num(z) if z == 0.0) {
                    let b = parts.linear.map(|(_, b)| b).unwrap_or(Sym::Num(0.0));
                    Sym::bin(B::Sub, x.clone(), Sym::bin(B::Mul, dt, Sym::neg(b)))
                } else {
                    // `de` and `a` are the same coefficient (for hh's
                    // gates, −1/mtau): computed once into a local, which
                    // saves a division and is bit for bit the same value.
                    let (de, a) = match parts.linear {
                        Some((ref a, _))
                            if de.is_pure_operation() && sym::simplify(a.clone()) == de =>
                        {
                            let l = body.local("cnexp_de", Type::F64);
                            let value = emit(&de, body);
                            out.push(Statement::Assign { local: l, value });
                            let v = Sym::Var(Var::Local(l));
                            (v.clone(), Some(v))
                        }
                        Some((ref a, _)) => (de, Some(sym::simplify(a.clone()))),
                        None => (de, None),
                    };
                    let target = match (parts.linear, a) {
                        (Some((_, b)), Some(a)) => Sym::bin(
                            B::Sub,
                            Sym::bin(B::Div, Sym::neg(sym::simplify(b)), a),
                            x.clone(),
                        ),
                        _ => Sym::neg(x.clone()),
                    };
                    Sym::bin(
                        B::Add,
                        x.clone(),
                        Sym::bin(
                            B::Mul,
                            Sym::bin(
                                B::Sub,
                                Sym::Num(1.0),
                                Sym::Math(MathFn::Exp, vec![Sym::bin(B::Mul, dt, de)]),
                            ),
                            target,
                        ),
                    )
                };
                self.assign(body, x, new, span, out)?;
            }
            Mode::Plain | Mode::Kinetic | Mode::Algebraic => {
                return Err(unsupported(
                    span,
                    "a derivative equation outside a DERIVATIVE block",
                ))
            }
        }
        Ok(())
    }

    fn reaction(
        &mut self,
        sc: &mut Scope,
        body: &mut Body,
        r: &ast::Reaction,
        span: Span,
        out: &mut Block,
    ) -> Res<()> {
        use crate::ir::BinaryOp as B;
        if sc.mode() != Mode::Kinetic {
            return Err(unsupported(span, "a reaction outside a KINETIC block"));
        }
        let (fl, bl) = match sc.flux {
            Some(p) => p,
            None => {
                let p = (
                    body.local("f_flux", Type::F64),
                    body.local("b_flux", Type::F64),
                );
                sc.flux = Some(p);
                p
            }
        };
        // Mass action: f = kf * Π lhs^coef, b = kb * Π rhs^coef.
        type Species = Vec<(f64, Sym, Option<Var>)>;
        let product = |this: &mut Self,
                       sc: &mut Scope,
                       body: &mut Body,
                       k: Sym,
                       terms: &[ast::ReactTerm]|
         -> Res<(Sym, Species)> {
            let mut p = k;
            let mut species = Vec::new();
            for t in terms {
                let (x, d) = this.state_vars(sc, body, &t.name, t.index.as_ref())?;
                for _ in 0..t.coef {
                    p = Sym::bin(B::Mul, p, x.clone());
                }
                species.push((t.coef as f64, x, d));
            }
            Ok((p, species))
        };
        let rates = self.args(sc, body, &r.rates)?;
        let (ffl, left, bfl, right) = match r.op {
            ast::ReactOp::Bidirectional => {
                let (f, left) = product(self, sc, body, rates[0].clone(), &r.lhs)?;
                let (b, right) = product(self, sc, body, rates[1].clone(), &r.rhs)?;
                (f, left, b, right)
            }
            ast::ReactOp::Forward => {
                let (f, left) = product(self, sc, body, rates[0].clone(), &r.lhs)?;
                let (_, right) = product(self, sc, body, Sym::Num(0.0), &r.rhs)?;
                (f, left, Sym::Num(0.0), right)
            }
            ast::ReactOp::Flux => {
                // `~ x << (f)`: f is added to dx/dt directly.
                let (_, left) = product(self, sc, body, Sym::Num(1.0), &r.lhs)?;
                let mut flux = rates[0].clone();
                // The flux of a compartmentalised species is not scaled.
                let fv = emit(&flux, body);
                out.push(Statement::Assign {
                    local: fl,
                    value: fv,
                });
                let zero = body.constant(0.0);
                out.push(Statement::Assign {
                    local: bl,
                    value: zero,
                });
                for (_, _, d) in left
                    .into_iter()
                    .filter_map(|(c, x, d)| d.map(|d| (c, x, d)))
                {
                    flux = Sym::Var(Var::Local(fl));
                    let place = d.place(body).expect("field");
                    let cur = Sym::Var(d.clone());
                    let value = emit(&Sym::bin(B::Add, cur, flux.clone()), body);
                    out.push(Statement::Store { place, value });
                }
                return Ok(());
            }
        };
        // The rates once, into locals (the fluxes and their derivatives use
        // them; NEURON's Jacobian treats them as constants).
        let kf_local = body.local("#kf", Type::F64);
        let kb_local = body.local("#kb", Type::F64);
        let (ffl, bfl) = {
            let split = |p: Sym, k: Handle<Local>, body: &mut Body, out: &mut Block| -> Sym {
                // p = rate * x * x ...: peel the rate (the innermost left operand).
                fn peel(p: Sym, k: Handle<Local>, rate: &mut Option<Sym>) -> Sym {
                    match p {
                        Sym::Binary(crate::ir::BinaryOp::Mul, l, r) => {
                            Sym::bin(crate::ir::BinaryOp::Mul, peel(*l, k, rate), *r)
                        }
                        other => {
                            *rate = Some(other);
                            Sym::Var(Var::Local(k))
                        }
                    }
                }
                let mut rate = None;
                let q = peel(p, k, &mut rate);
                let value = emit(&rate.unwrap_or(Sym::Num(0.0)), body);
                out.push(Statement::Assign { local: k, value });
                q
            };
            (
                split(ffl, kf_local, body, out),
                split(bfl, kb_local, body, out),
            )
        };
        let fv = emit(&ffl, body);
        out.push(Statement::Assign {
            local: fl,
            value: fv,
        });
        let bv = emit(&bfl, body);
        out.push(Statement::Assign {
            local: bl,
            value: bv,
        });
        let net = Sym::bin(B::Sub, Sym::Var(Var::Local(fl)), Sym::Var(Var::Local(bl)));
        // Analytic Jacobian of the mass-action fluxes (scopmath sparse).
        if let Some(jac) = sc.jacobian {
            let n = sc.kinetic_rows.len();
            // The row of a species: fixed for scalars and constant indices,
            // `first row of the array + index` for `x[i]` in a FROM loop.
            let row_of = |x: &Sym| -> Option<Sym> {
                let Sym::Var(v) = x else { return None };
                if let Some(r) = sc.kinetic_rows.iter().position(|r| r == v) {
                    return Some(Sym::Num(r as f64));
                }
                if let Var::Field(f, Some(idx)) = v {
                    let first = sc
                        .kinetic_rows
                        .iter()
                        .position(|r| matches!(r, Var::Field(g, Some(_)) if g == f))?;
                    return Some(Sym::bin(B::Add, Sym::Num(first as f64), (**idx).clone()));
                }
                None
            };
            let mut cols: Vec<(Sym, Var)> = Vec::new();
            for (_, x, _) in left.iter().chain(right.iter()) {
                if let (Some(j), Sym::Var(v)) = (row_of(x), x) {
                    if !cols.iter().any(|(_, c)| c == v) {
                        cols.push((j, v.clone()));
                    }
                }
            }
            for (j, xj) in &cols {
                let dnet = sym::simplify(Sym::bin(
                    B::Sub,
                    ffl.diff(xj).unwrap_or(Sym::Num(0.0)),
                    bfl.diff(xj).unwrap_or(Sym::Num(0.0)),
                ));
                if matches!(dnet, Sym::Num(z) if z == 0.0) {
                    continue;
                }
                let dl = body.local("#dnet", Type::F64);
                let value = emit(&dnet, body);
                out.push(Statement::Assign { local: dl, value });
                for (sign, side) in [(-1.0, &left), (1.0, &right)] {
                    for (coef, x, _) in side.iter() {
                        let Some(i) = row_of(x) else { continue };
                        let idx = sym::simplify(Sym::bin(
                            B::Add,
                            Sym::bin(B::Mul, i, Sym::Num(n as f64)),
                            j.clone(),
                        ));
                        let place = Var::Field(jac, Some(Box::new(idx)));
                        let term =
                            Sym::bin(B::Mul, Sym::Num(sign * coef), Sym::Var(Var::Local(dl)));
                        let value = emit(&Sym::bin(B::Add, Sym::Var(place.clone()), term), body);
                        let place = place.place(body).expect("field");
                        out.push(Statement::Store { place, value });
                    }
                }
            }
        }
        let left = left
            .into_iter()
            .filter_map(|(c, x, d)| d.map(|d| (c, x, d)));
        let right = right
            .into_iter()
            .filter_map(|(c, x, d)| d.map(|d| (c, x, d)));
        for (coef, _, d) in left {
            let place = d.place(body).expect("field");
            let value = emit(
                &Sym::bin(
                    B::Sub,
                    Sym::Var(d.clone()),
                    Sym::bin(B::Mul, Sym::Num(coef), net.clone()),
                ),
                body,
            );
            out.push(Statement::Store { place, value });
        }
        for (coef, _, d) in right {
            let place = d.place(body).expect("field");
            let value = emit(
                &Sym::bin(
                    B::Add,
                    Sym::Var(d.clone()),
                    Sym::bin(B::Mul, Sym::Num(coef), net.clone()),
                ),
                body,
            );
            out.push(Statement::Store { place, value });
        }
        Ok(())
    }

    fn conserve(
        &mut self,
        sc: &mut Scope,
        body: &mut Body,
        terms: &[ast::ReactTerm],
        rhs: &Expr,
        span: Span,
    ) -> Res<()> {
        if sc.mode() != Mode::Kinetic {
            return Err(unsupported(span, "CONSERVE outside a KINETIC block"));
        }
        let mut ts = Vec::new();
        for t in terms {
            let (x, _) = self.state_vars(sc, body, &t.name, t.index.as_ref())?;
            let Sym::Var(v) = x else { unreachable!() };
            ts.push((t.coef as f64, v));
        }
        let total = self.expr(sc, body, rhs)?.as_f64();
        sc.conserves.push((ts, total));
        Ok(())
    }

    fn compartment(
        &mut self,
        sc: &mut Scope,
        body: &mut Body,
        index: Option<&Ident>,
        volume: &Expr,
        states: &[Ident],
        span: Span,
    ) -> Res<()> {
        if sc.mode() != Mode::Kinetic {
            return Err(unsupported(span, "COMPARTMENT outside a KINETIC block"));
        }
        match index {
            None => {
                let vol = self.expr(sc, body, volume)?.as_f64();
                for s in states {
                    let id = self.ref_of(s)?;
                    sc.compartments.push((id, None, vol.clone()));
                }
            }
            Some(ix) => {
                // `COMPARTMENT i, vol(i) { x }`: element k of each array
                // state x gets vol(k).
                let iid = self.ref_of(ix)?;
                let l = body.local(&ix.name, Type::F64);
                sc.locals.insert(iid, l);
                let vol = self.expr(sc, body, volume)?.as_f64();
                for s in states {
                    let id = self.ref_of(s)?;
                    let n = self.sym(id).array_len.unwrap_or(1);
                    for k in 0..n {
                        let v = sym::simplify(vol.substitute(&Var::Local(l), &Sym::Num(k as f64)));
                        sc.compartments.push((id, Some(k), v));
                    }
                }
            }
        }
        Ok(())
    }

    // -----------------------------------------------------------------
    // Shared kernel pieces

    /// `#v = node v` (or `v + dv`), for kernels with a node.
    fn load_v(&self, body: &mut Body, out: &mut Block) {
        if let Some(f) = self.v_field {
            let v = body.load(crate::ir::Place::NodeV);
            out.push(Statement::Store {
                place: crate::ir::Place::Field {
                    field: f,
                    index: None,
                },
                value: v,
            });
        }
    }

    /// The ion variables (symbol, ion decl, column) the mechanism uses.
    fn ion_vars(&self) -> Vec<(SymbolId, Handle<IonDecl>, IonVar, bool, bool)> {
        let mut v = Vec::new();
        for (k, u) in self.mech.ions.iter().enumerate() {
            for (list, write) in [(&u.read, false), (&u.write, true)] {
                for &id in list.iter() {
                    let Some(b) = self.sym(id).ion.as_ref() else {
                        continue;
                    };
                    let col = match b.role {
                        IonRole::Reversal => IonVar::Erev,
                        IonRole::ConcentrationInside => IonVar::ConcI,
                        IonRole::ConcentrationOutside => IonVar::ConcO,
                        IonRole::Current => IonVar::Cur,
                        IonRole::CurrentDerivative => IonVar::DcurDv,
                    };
                    v.push((id, self.ions[k], col, !write, write));
                }
            }
        }
        v
    }

    /// Copies ion columns into the instance copies: every variable read, and
    /// written concentrations and reversal potentials (which start from the
    /// ion's value). Currents that are written are not read.
    fn load_ions(&self, body: &mut Body, out: &mut Block) {
        let mut done = Vec::new();
        for (id, ion, col, read, write) in self.ion_vars() {
            if done.contains(&id) {
                continue;
            }
            let wants = read || (write && col != IonVar::Cur);
            if !wants || (col == IonVar::Cur && !read) {
                continue;
            }
            if let Some(Storage::Field(f)) = self.storage.get(&id) {
                done.push(id);
                let value = body.load(crate::ir::Place::Ion { ion, var: col });
                out.push(Statement::Store {
                    place: crate::ir::Place::Field {
                        field: *f,
                        index: None,
                    },
                    value,
                });
            }
        }
    }

    /// Writes written concentrations and reversal potentials back to the ion.
    fn store_ions(&self, body: &mut Body, out: &mut Block) {
        let mut done = Vec::new();
        for (id, ion, col, _, write) in self.ion_vars() {
            if !write || col == IonVar::Cur || col == IonVar::DcurDv || done.contains(&id) {
                continue;
            }
            if let Some(Storage::Field(f)) = self.storage.get(&id) {
                done.push(id);
                let value = body.load(crate::ir::Place::Field {
                    field: *f,
                    index: None,
                });
                out.push(Statement::Store {
                    place: crate::ir::Place::Ion { ion, var: col },
                    value,
                });
            }
        }
    }

    fn accumulate(
        &self,
        body: &mut Body,
        target: crate::ir::AccumTarget,
        op: AccumOp,
        value: Sym,
        out: &mut Block,
    ) {
        let value = emit(&value, body);
        out.push(Statement::Accumulate { target, op, value });
    }
}

fn collect_watches<'m>(stmts: &'m [Stmt], out: &mut Vec<&'m ast::Watch>) {
    for s in stmts {
        match &s.kind {
            StmtKind::Watch(items) => out.extend(items.iter()),
            StmtKind::Block(b)
            | StmtKind::While { body: b, .. }
            | StmtKind::From { body: b, .. } => collect_watches(&b.stmts, out),
            StmtKind::If {
                then_block,
                else_ifs,
                else_block,
                ..
            } => {
                collect_watches(&then_block.stmts, out);
                for e in else_ifs {
                    collect_watches(&e.body.stmts, out);
                }
                if let Some(b) = else_block {
                    collect_watches(&b.stmts, out);
                }
            }
            _ => {}
        }
    }
}

fn m_span(m: &Mechanism) -> Span {
    m.initial
        .as_ref()
        .map(|b| b.span)
        .or_else(|| m.breakpoint.as_ref().map(|b| b.body.span))
        .or_else(|| m.callables.first().map(|c| c.span))
        .unwrap_or(Span::new(nmodl_frontend::source::FileId(0), 0, 0))
}
