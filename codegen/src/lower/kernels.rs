//! The ABI phase kernels: INITIAL, BREAKPOINT currents, SOLVE, NET_RECEIVE,
//! BEFORE/AFTER, CONSTRUCTOR/DESTRUCTOR (see the module docs of `lower`).

use nmodl_frontend::ast::{BaPhase, BaWhen, Stmt, StmtKind};
use nmodl_frontend::diagnostic::Diagnostic;
use nmodl_frontend::model::{
    MechanismKind, Method, Solve, SolveBlockKind, SolveTarget, SymbolId, SymbolKind,
};

use super::sym::{emit, Sym, Var};
use super::{codes, unsupported, Lower, Mode, Res, Scope};
use crate::ir::{
    AccumOp, AccumTarget, BinaryOp as B, Block, Body, EnvVar, Function, Handle, IonDecl, Kernel,
    Local, Phase, Place, Statement, Type,
};

/// One scalar element of a state: its value and its derivative field.
#[derive(Clone, Debug)]
pub(super) struct StateElem {
    pub x: Var,
    pub d: Var,
    pub id: SymbolId,
}

impl<'a> Lower<'a> {
    pub(super) fn kernels(&mut self) -> Res<()> {
        self.init_kernel()?;
        self.cur_kernel()?;
        self.state_kernel()?;
        self.net_receive_kernels()?;
        self.before_after_kernels()?;
        self.table_check_kernel()?;
        for (phase, b) in [
            (Phase::Constructor, self.mech.constructor.as_ref()),
            (Phase::Destructor, self.mech.destructor.as_ref()),
        ] {
            if let Some(b) = b {
                let mut sc = self.kernel_scope();
                let mut body = Body::default();
                let mut out = Block::new();
                self.load_v(&mut body, &mut out);
                out.extend(self.stmts(&mut sc, &mut body, &b.stmts)?);
                body.block = out;
                self.push_kernel(phase, body);
            }
        }
        Ok(())
    }

    fn kernel_scope(&self) -> Scope {
        Scope {
            kernel: true,
            ..Scope::default()
        }
    }

    fn push_kernel(&mut self, phase: Phase, body: Body) {
        self.module.kernels.push(Kernel { phase, body });
    }

    /// The scalar elements of `states`, in order (arrays element by element).
    pub(super) fn elems(&self, states: &[SymbolId]) -> Vec<StateElem> {
        let mut v = Vec::new();
        for &id in states {
            let Some(super::Storage::Field(f)) = self.storage.get(&id).cloned() else {
                continue;
            };
            let d = self.dfield[&id];
            match self.sym(id).array_len {
                None => v.push(StateElem {
                    x: Var::Field(f, None),
                    d: Var::Field(d, None),
                    id,
                }),
                Some(n) => {
                    for k in 0..n {
                        let i = || Some(Box::new(Sym::Num(k as f64)));
                        v.push(StateElem {
                            x: Var::Field(f, i()),
                            d: Var::Field(d, i()),
                            id,
                        });
                    }
                }
            }
        }
        v
    }

    // -----------------------------------------------------------------
    // INITIAL

    fn init_kernel(&mut self) -> Res<()> {
        let m = self.mech;
        let mut sc = self.kernel_scope();
        let mut body = Body::default();
        let mut out = Block::new();
        self.load_v(&mut body, &mut out);
        self.load_ions(&mut body, &mut out);
        // finitialize removes every WATCH.
        for w in &self.watches {
            let zero = body.constant(0.0);
            out.push(Statement::Store {
                place: Place::Field {
                    field: w.state,
                    index: None,
                },
                value: zero,
            });
        }
        // s = s0 for every state that is not an ion concentration (those
        // start from the ion's value, loaded above).
        for &(st, x0) in &m.state_initial_values {
            if self.sym(st).ion.is_some() {
                continue;
            }
            let Some(super::Storage::Field(f)) = self.storage.get(&st).cloned() else {
                continue;
            };
            let n = self.sym(st).array_len.unwrap_or(1).max(1);
            for k in 0..n {
                let index = self.sym(st).array_len.map(|_| body.constant(k as f64));
                let src =
                    self.storage_var(x0, None, self.sym(st).span.unwrap_or(super::m_span(m)))?;
                let value = emit(&src, &mut body);
                out.push(Statement::Store {
                    place: Place::Field { field: f, index },
                    value,
                });
            }
        }
        if let Some(init) = &m.initial {
            for s in &init.stmts {
                self.stmt(&mut sc, &mut body, s, &mut out)?;
            }
        }
        self.store_ions(&mut body, &mut out);
        body.block = out;
        self.push_kernel(Phase::Init, body);
        Ok(())
    }

    /// A SOLVE statement outside BREAKPOINT, resolved like BREAKPOINT's.
    pub(super) fn find_solve(&self, name: &str, s: &Stmt) -> Res<Solve> {
        let StmtKind::Solve {
            method,
            steadystate,
            ..
        } = &s.kind
        else {
            unreachable!()
        };
        let target = if let Some(i) = self.mech.solve_blocks.iter().position(|b| b.name == name) {
            SolveTarget::Block(i)
        } else if let Some(i) = self.mech.callables.iter().position(|c| c.name == name) {
            SolveTarget::Procedure(i)
        } else {
            return Err(unsupported(
                s.span,
                format!("SOLVE of unknown block `{name}`"),
            ));
        };
        let written = steadystate.as_ref().or(method.as_ref());
        let method = match (written, target) {
            (Some(m), _) => Method::from_name(&m.name)
                .ok_or_else(|| unsupported(m.span, format!("unknown method `{}`", m.name)))?,
            (None, SolveTarget::Block(i)) => self.mech.solve_blocks[i].kind.methods().1,
            (None, SolveTarget::Procedure(_)) => Method::None,
        };
        Ok(Solve {
            block: name.to_string(),
            target,
            method,
            method_explicit: written.is_some(),
            steadystate: steadystate.is_some(),
            span: s.span,
        })
    }

    // -----------------------------------------------------------------
    // BREAKPOINT currents

    /// The current variables in nocmodl's order: ion currents (USEION order),
    /// then NONSPECIFIC_CURRENT, then ELECTRODE_CURRENT.
    fn currents(&self) -> Vec<(SymbolId, Option<Handle<IonDecl>>)> {
        let mut v: Vec<(SymbolId, Option<Handle<IonDecl>>)> = Vec::new();
        for (k, u) in self.mech.ions.iter().enumerate() {
            for &id in &u.write {
                if self.sym(id).ion.as_ref().map(|b| b.role)
                    == Some(nmodl_frontend::model::IonRole::Current)
                    && !v.iter().any(|(x, _)| *x == id)
                {
                    v.push((id, Some(self.ions[k])));
                }
            }
        }
        for &id in self
            .mech
            .nonspecific_currents
            .iter()
            .chain(&self.mech.electrode_currents)
        {
            if !v.iter().any(|(x, _)| *x == id) {
                v.push((id, None));
            }
        }
        v
    }

    fn breakpoint_stmts(&self) -> Vec<&'a Stmt> {
        match &self.mech.breakpoint {
            Some(bp) => bp
                .body
                .stmts
                .iter()
                .filter(|s| !matches!(s.kind, StmtKind::Solve { .. }))
                .collect(),
            None => Vec::new(),
        }
    }

    fn cur_kernel(&mut self) -> Res<()> {
        let currents = self.currents();
        if currents.is_empty() || self.mech.kind == MechanismKind::ArtificialCell {
            return Ok(());
        }
        let Some(vf) = self.v_field else {
            return Ok(());
        };
        let point = self.mech.kind == MechanismKind::PointProcess;
        let electrode = !self.mech.electrode_currents.is_empty();
        let stmts = self.breakpoint_stmts();
        let mut sc = self.kernel_scope();
        let mut body = Body::default();
        let mut out = Block::new();
        self.load_ions(&mut body, &mut out);
        let vloc = body.local("#vnode", Type::F64);
        let nv = body.load(Place::NodeV);
        out.push(Statement::Assign {
            local: vloc,
            value: nv,
        });
        let vplace = || Place::Field {
            field: vf,
            index: None,
        };
        let sum = |this: &Self, body: &mut Body| -> Res<Sym> {
            let mut s = Sym::Num(0.0);
            for (id, _) in &currents {
                let c = this.storage_var(*id, None, super::m_span(this.mech))?;
                s = Sym::bin(B::Add, s, c);
            }
            let _ = body;
            Ok(s)
        };
        // I(v + 0.001)
        let vp = emit(
            &Sym::bin(B::Add, Sym::Var(Var::Local(vloc)), Sym::Num(0.001)),
            &mut body,
        );
        out.push(Statement::Store {
            place: vplace(),
            value: vp,
        });
        for s in &stmts {
            self.stmt(&mut sc, &mut body, s, &mut out)?;
        }
        let g = body.local("#g", Type::F64);
        let gv = emit(&sum(self, &mut body)?, &mut body);
        out.push(Statement::Assign {
            local: g,
            value: gv,
        });
        let mut dion: Vec<(Handle<Local>, Sym, Handle<IonDecl>)> = Vec::new();
        for (id, ion) in &currents {
            if let Some(ion) = ion {
                let c = self.storage_var(*id, None, super::m_span(self.mech))?;
                let l = body.local("#di", Type::F64);
                let value = emit(&c, &mut body);
                out.push(Statement::Assign { local: l, value });
                dion.push((l, c, *ion));
            }
        }
        // I(v)
        let vv = body.read(vloc);
        out.push(Statement::Store {
            place: vplace(),
            value: vv,
        });
        for s in &stmts {
            self.stmt(&mut sc, &mut body, s, &mut out)?;
        }
        let rhs = body.local("#rhs", Type::F64);
        let rv = emit(&sum(self, &mut body)?, &mut body);
        out.push(Statement::Assign {
            local: rhs,
            value: rv,
        });
        let area = || Sym::Var(Var::NodeArea);
        for (l, c, ion) in &dion {
            // (di - i)/.001 [* 1.e2/area]
            let mut x = Sym::bin(
                B::Div,
                Sym::bin(B::Sub, Sym::Var(Var::Local(*l)), c.clone()),
                Sym::Num(0.001),
            );
            if point {
                x = Sym::bin(B::Div, Sym::bin(B::Mul, x, Sym::Num(1.0e2)), area());
            }
            self.accumulate(
                &mut body,
                AccumTarget::IonDcurDv(*ion),
                AccumOp::Add,
                x,
                &mut out,
            );
        }
        let gnew = emit(
            &Sym::bin(
                B::Div,
                Sym::bin(B::Sub, Sym::Var(Var::Local(g)), Sym::Var(Var::Local(rhs))),
                Sym::Num(0.001),
            ),
            &mut body,
        );
        out.push(Statement::Assign {
            local: g,
            value: gnew,
        });
        for (_, c, ion) in &dion {
            let mut x = c.clone();
            if point {
                x = Sym::bin(B::Div, Sym::bin(B::Mul, x, Sym::Num(1.0e2)), area());
            }
            self.accumulate(
                &mut body,
                AccumTarget::IonCur(*ion),
                AccumOp::Add,
                x,
                &mut out,
            );
        }
        if point {
            let mfact = || Sym::bin(B::Div, Sym::Num(1.0e2), area());
            for l in [g, rhs] {
                let value = emit(
                    &Sym::bin(B::Mul, Sym::Var(Var::Local(l)), mfact()),
                    &mut body,
                );
                out.push(Statement::Assign { local: l, value });
            }
        }
        let (rop, dop) = if electrode {
            (AccumOp::Add, AccumOp::Sub)
        } else {
            (AccumOp::Sub, AccumOp::Add)
        };
        self.accumulate(
            &mut body,
            AccumTarget::NodeRhs,
            rop,
            Sym::Var(Var::Local(rhs)),
            &mut out,
        );
        self.accumulate(
            &mut body,
            AccumTarget::NodeD,
            dop,
            Sym::Var(Var::Local(g)),
            &mut out,
        );
        body.block = out;
        self.push_kernel(Phase::Cur, body);
        Ok(())
    }

    // -----------------------------------------------------------------
    // SOLVE

    fn state_kernel(&mut self) -> Res<()> {
        let empty;
        let bp = match &self.mech.breakpoint {
            Some(bp) => bp,
            None if !self.watches.is_empty() => {
                empty = nmodl_frontend::model::Breakpoint {
                    body: nmodl_frontend::ast::Block {
                        stmts: Vec::new(),
                        span: self.watches[0].span,
                    },
                    solves: Vec::new(),
                };
                &empty
            }
            None => return Ok(()),
        };
        let no_currents = self.currents().is_empty();
        let stmts = self.breakpoint_stmts();
        if bp.solves.is_empty() && (!no_currents || stmts.is_empty()) && self.watches.is_empty() {
            return Ok(());
        }
        let mut sc = self.kernel_scope();
        let mut body = Body::default();
        let mut out = Block::new();
        self.load_v(&mut body, &mut out);
        self.load_ions(&mut body, &mut out);
        for solve in &bp.solves {
            self.solve(&mut sc, &mut body, solve, &mut out)?;
        }
        if no_currents {
            for s in &stmts {
                self.stmt(&mut sc, &mut body, s, &mut out)?;
            }
        }
        self.store_ions(&mut body, &mut out);
        self.watch_checks(&mut sc, &mut body, &mut out)?;
        body.block = out;
        self.push_kernel(Phase::State, body);
        Ok(())
    }

    /// Emits one SOLVE statement.
    pub(super) fn solve(
        &mut self,
        sc: &mut Scope,
        body: &mut Body,
        solve: &Solve,
        out: &mut Block,
    ) -> Res<()> {
        let block = match solve.target {
            SolveTarget::Procedure(i) => {
                let c = &self.mech.callables[i];
                let function = self.functions[&c.symbol];
                out.push(Statement::Call {
                    function,
                    args: Vec::new(),
                });
                return Ok(());
            }
            SolveTarget::Block(i) => &self.mech.solve_blocks[i],
        };
        let elems = self.elems(&block.states);
        match (block.kind, solve.method) {
            (SolveBlockKind::Derivative, Method::Cnexp) if !solve.steadystate => {
                let mut try_sc = Scope {
                    mode: Some(Mode::Cnexp),
                    kernel: sc.kernel,
                    ..Scope::default()
                };
                let mut try_body = body.clone();
                match self.stmts(&mut try_sc, &mut try_body, &block.body.stmts) {
                    Ok(b) => {
                        *body = try_body;
                        out.extend(b);
                        Ok(())
                    }
                    Err(d) if d.code == codes::CNEXP_FALLBACK => {
                        self.warnings.push(
                            Diagnostic::warning(
                                codes::CNEXP_FALLBACK,
                                solve.span,
                                format!(
                                    "could not translate `{}` using cnexp; using derivimplicit (as NEURON does)",
                                    block.name
                                ),
                            )
                            .with_label(
                                d.span,
                                "the state appears inside a function call, a power or a denominator",
                            ),
                        );
                        self.newton(body, block, &elems, Mode::Deriv, false, out)
                    }
                    Err(d) => Err(d),
                }
            }
            (SolveBlockKind::Derivative, Method::Euler) if !solve.steadystate => {
                let f = self.deriv_function(block, Mode::Deriv)?.0;
                out.push(Statement::Call {
                    function: f,
                    args: Vec::new(),
                });
                for e in &elems {
                    let new = Sym::bin(
                        B::Add,
                        Sym::Var(e.x.clone()),
                        Sym::bin(
                            B::Mul,
                            Sym::Var(Var::Env(EnvVar::Dt)),
                            Sym::Var(e.d.clone()),
                        ),
                    );
                    let place = e.x.place(body).expect("field");
                    let value = emit(&new, body);
                    out.push(Statement::Store { place, value });
                }
                Ok(())
            }
            (SolveBlockKind::Derivative, Method::Derivimplicit | Method::Cnexp) => {
                self.newton(body, block, &elems, Mode::Deriv, solve.steadystate, out)
            }
            (SolveBlockKind::Kinetic, Method::Sparse | Method::Advance | Method::Derivimplicit) => {
                self.newton(body, block, &elems, Mode::Kinetic, solve.steadystate, out)
            }
            (SolveBlockKind::Linear | SolveBlockKind::Nonlinear, _) => {
                // The equations are the residual; Newton solves them exactly
                // for LINEAR (one step) and to tolerance for NONLINEAR.
                self.newton(body, block, &elems, Mode::Algebraic, true, out)
            }
            (_, m) => Err(unsupported(
                solve.span,
                format!(
                    "METHOD {} for a {} block is not supported yet",
                    m.name(),
                    block.kind.keyword()
                ),
            )),
        }
    }

    /// The function evaluating a DERIVATIVE (Mode::Deriv) or KINETIC
    /// (Mode::Kinetic) block into the `D` fields, with the KINETIC block's
    /// CONSERVE and COMPARTMENT statements.
    pub(super) fn deriv_function(
        &mut self,
        block: &nmodl_frontend::model::SolveBlock,
        mode: Mode,
    ) -> Res<(Handle<Function>, Scope)> {
        let mut sc = Scope {
            mode: Some(mode),
            ..Scope::default()
        };
        if mode == Mode::Algebraic {
            sc.equation_rows = self.elems(&block.states).into_iter().map(|e| e.d).collect();
        }
        let mut body = Body::default();
        let mut out = Block::new();
        if mode == Mode::Kinetic {
            let elems = self.elems(&block.states);
            let n = elems.len();
            // One Jacobian field per block, however often it is SOLVEd.
            let jname = format!("#J_{}", block.name);
            let existing = self
                .module
                .layout
                .fields
                .iter()
                .find(|(_, f)| f.name == jname)
                .map(|(h, _)| h);
            let jac = match existing {
                Some(h) => h,
                None => self.add_field(
                    &jname,
                    "",
                    runtime::abi::FIELD_INTERNAL,
                    (n * n).max(1) as u32,
                    0.0,
                ),
            };
            sc.jacobian = Some(jac);
            sc.kinetic_rows = elems.iter().map(|e| e.x.clone()).collect();
            for e in &elems {
                let place = e.d.place(&mut body).expect("field");
                let value = body.constant(0.0);
                out.push(Statement::Store { place, value });
            }
            for k in 0..n * n {
                let index = Some(body.constant(k as f64));
                let value = body.constant(0.0);
                out.push(Statement::Store {
                    place: Place::Field { field: jac, index },
                    value,
                });
            }
        }
        out.extend(self.stmts(&mut sc, &mut body, &block.body.stmts)?);
        body.block = out;
        let f = self.module.functions.append(Function {
            name: format!("#deriv_{}", block.name),
            params: Vec::new(),
            result: None,
            body,
        });
        Ok((f, sc))
    }

    /// At the end of the step, every armed WATCH whose condition turned
    /// true sends its flag to NET_RECEIVE (delivered at this t, before the
    /// next step, where NEURON's check at the start of the next step
    /// delivers it too).
    fn watch_checks(&mut self, sc: &mut Scope, body: &mut Body, out: &mut Block) -> Res<()> {
        for k in 0..self.watches.len() {
            let (state, flag, cond) = (
                self.watches[k].state,
                self.watches[k].flag,
                self.watches[k].cond,
            );
            let st = || Sym::Var(Var::Field(state, None));
            let c = body.local("#wc", Type::Bool);
            let cv = self.expr(sc, body, cond)?.as_bool();
            let mut armed = Block::new();
            let value = emit(&cv, body);
            armed.push(Statement::Assign { local: c, value });
            let fire = emit(
                &Sym::bin(
                    B::And,
                    Sym::Var(Var::Local(c)),
                    Sym::bin(B::Eq, st(), Sym::Num(1.0)),
                ),
                body,
            );
            let delay = body.constant(0.0);
            let f = emit(&Sym::Var(Var::Field(flag, None)), body);
            armed.push(Statement::If {
                condition: fire,
                accept: vec![Statement::NetSend { delay, flag: f }],
                reject: Vec::new(),
            });
            let value = emit(
                &Sym::Select(
                    Box::new(Sym::Var(Var::Local(c))),
                    Box::new(Sym::Num(2.0)),
                    Box::new(Sym::Num(1.0)),
                ),
                body,
            );
            armed.push(Statement::Store {
                place: Place::Field {
                    field: state,
                    index: None,
                },
                value,
            });
            let on = emit(&Sym::bin(B::Ne, st(), Sym::Num(0.0)), body);
            out.push(Statement::If {
                condition: on,
                accept: armed,
                reject: Vec::new(),
            });
        }
        Ok(())
    }

    // -----------------------------------------------------------------
    // NET_RECEIVE

    fn net_receive_kernels(&mut self) -> Res<()> {
        let Some(nr) = &self.mech.net_receive else {
            return Ok(());
        };
        let scope = |this: &Self| {
            let mut sc = this.kernel_scope();
            sc.event = true;
            for (k, p) in nr.params.iter().enumerate() {
                sc.weights.insert(p.symbol, k as u32);
            }
            // The implicit `flag` argument.
            for (i, s) in this.mech.symbols.symbols.iter().enumerate() {
                if s.name == "flag"
                    && s.kind == SymbolKind::Argument
                    && s.owner.as_deref() == Some("NET_RECEIVE")
                {
                    sc.overrides
                        .insert(SymbolId(i as u32), Var::Env(EnvVar::Flag));
                }
            }
            sc
        };
        let mut sc = scope(self);
        let mut body = Body::default();
        let mut out = Block::new();
        self.load_v(&mut body, &mut out);
        out.extend(self.stmts(&mut sc, &mut body, &nr.body.stmts)?);
        body.block = out;
        self.push_kernel(Phase::NetReceive, body);
        if let Some(init) = &nr.initial {
            let mut sc = scope(self);
            let mut body = Body::default();
            let mut out = Block::new();
            self.load_v(&mut body, &mut out);
            out.extend(self.stmts(&mut sc, &mut body, &init.stmts)?);
            body.block = out;
            self.push_kernel(Phase::NetReceiveInit, body);
        }
        Ok(())
    }

    fn before_after_kernels(&mut self) -> Res<()> {
        for ba in &self.mech.before_after {
            let phase = match before_after_phase(ba.when, ba.phase) {
                Some(phase) => phase,
                None => {
                    let (w, p) = (ba.when, ba.phase);
                    return Err(unsupported(
                        ba.body.span,
                        format!(
                            "{w:?} {p:?} blocks are not supported (NEURON has no such hook either)"
                        ),
                    ));
                }
            };
            if self.module.kernel(phase).is_some() {
                return Err(unsupported(
                    ba.body.span,
                    "a second block for the same BEFORE/AFTER hook",
                ));
            }
            let mut sc = self.kernel_scope();
            let mut body = Body::default();
            let mut out = Block::new();
            self.load_v(&mut body, &mut out);
            self.load_ions(&mut body, &mut out);
            out.extend(self.stmts(&mut sc, &mut body, &ba.body.stmts)?);
            self.store_ions(&mut body, &mut out);
            body.block = out;
            self.push_kernel(phase, body);
        }
        Ok(())
    }
}

/// The kernel phase of a BEFORE/AFTER block; `None` for the combinations
/// NEURON has no hook for.
pub fn before_after_phase(when: BaWhen, phase: BaPhase) -> Option<Phase> {
    Some(match (when, phase) {
        (BaWhen::Before, BaPhase::Initial) => Phase::BeforeInitial,
        (BaWhen::After, BaPhase::Initial) => Phase::AfterInitial,
        (BaWhen::Before, BaPhase::Breakpoint) => Phase::BeforeBreakpoint,
        (BaWhen::After, BaPhase::Solve) => Phase::AfterSolve,
        (BaWhen::Before, BaPhase::Step) => Phase::BeforeStep,
        _ => return None,
    })
}
