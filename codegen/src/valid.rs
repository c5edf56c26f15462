//! The validator: runs once on a [`Module`], and its [`ValidModule`] is what
//! the interpreter and the JIT accept. Back ends trust validated IR: handles
//! are in range, expressions are well typed, calls have the right arity and
//! constructs appear only where the phase allows them.

use crate::ir::*;
use std::fmt;

/// The longest local array (they live on the native stack).
pub const MAX_LOCAL_ARRAY: u32 = 1 << 16;

/// What is wrong, and where.
#[derive(Clone, Debug, PartialEq)]
pub struct IrError {
    /// The function or kernel the error is in, e.g. `function rates` or `kernel Cur`.
    pub context: String,
    /// The problem.
    pub kind: IrErrorKind,
}

/// The kinds of validation errors.
#[derive(Clone, Debug, PartialEq)]
pub enum IrErrorKind {
    /// A handle points past the end of its arena (arena name, index).
    BadHandle(&'static str, usize),
    /// An expression uses an expression with an equal or larger index.
    ForwardReference(usize),
    /// A value has the wrong type.
    TypeMismatch {
        /// What was needed.
        expected: Type,
        /// What was found.
        found: Type,
    },
    /// A call or built-in has the wrong number of arguments.
    Arity {
        /// The callee.
        callee: String,
        /// The declared arity.
        expected: usize,
        /// The number passed.
        found: usize,
    },
    /// A PROCEDURE was used as a value.
    ProcedureAsValue(String),
    /// An array field or global was used without an index, or a scalar with one.
    IndexMismatch(String),
    /// A store to a place that cannot be written.
    NotStorable(String),
    /// Functions call each other in a cycle (recursion is not supported).
    Recursion(String),
    /// A construct appears where its phase or context forbids it.
    NotAllowedHere(&'static str),
    /// Two kernels for the same phase.
    DuplicatePhase(Phase),
    /// A FROM loop step that is zero or not finite.
    BadStep(f64),
    /// `Statement::Error` with status 0.
    ZeroStatus,
    /// A parameter or result local that is not f64, or a parameter listed twice.
    BadSignature(String),
    /// A field or global with `array_len == 0`, or a local array that is
    /// empty or longer than [`MAX_LOCAL_ARRAY`].
    EmptyArray(String),
}

impl fmt::Display for IrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {:?}", self.context, self.kind)
    }
}

impl std::error::Error for IrError {}

/// Facts about one body, computed by the validator.
#[derive(Clone, Debug, Default)]
pub struct BodyInfo {
    /// The type of each expression.
    pub expr_types: Vec<Type>,
}

/// A module that passed validation, with the facts the back ends use.
#[derive(Clone, Debug)]
pub struct ValidModule {
    module: Module,
    function_info: Vec<BodyInfo>,
    kernel_info: Vec<BodyInfo>,
    field_columns: Vec<usize>,
    global_slots: Vec<usize>,
}

impl ValidModule {
    /// The validated module.
    pub fn module(&self) -> &Module {
        &self.module
    }

    /// Facts about a function's body.
    pub fn function_info(&self, f: Handle<Function>) -> &BodyInfo {
        &self.function_info[f.index()]
    }

    /// Facts about the body of `module().kernels[k]`.
    pub fn kernel_info(&self, k: usize) -> &BodyInfo {
        &self.kernel_info[k]
    }

    /// The first column of a field.
    pub fn field_column(&self, f: Handle<FieldDecl>) -> usize {
        self.field_columns[f.index()]
    }

    /// The first slot of a global.
    pub fn global_slot(&self, g: Handle<GlobalDecl>) -> usize {
        self.global_slots[g.index()]
    }
}

/// Where a body sits, which decides what it may use.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Function,
    Kernel(Shape),
}

/// Validates `module`, returning every error found.
///
/// Runs once, before any back end; it does not modify the module.
pub fn validate(module: &Module) -> Result<ValidModule, Vec<IrError>> {
    let mut errors = Vec::new();
    for (_, f) in module.layout.fields.iter() {
        if f.array_len == 0 {
            errors.push(IrError {
                context: "layout".into(),
                kind: IrErrorKind::EmptyArray(f.name.clone()),
            });
        }
    }
    for (_, g) in module.layout.globals.iter() {
        if g.array_len == 0 {
            errors.push(IrError {
                context: "layout".into(),
                kind: IrErrorKind::EmptyArray(g.name.clone()),
            });
        }
    }

    let mut function_info = Vec::new();
    let mut callees: Vec<Vec<usize>> = Vec::new();
    // Which functions need a current instance, directly.
    let mut needs_instance: Vec<bool> = Vec::new();
    for (_, f) in module.functions.iter() {
        let context = format!("function {}", f.name);
        let mut v = BodyValidator::new(module, &f.body, Context::Function, context.clone());
        for &p in &f.params {
            v.check_signature_local(p, "parameter");
        }
        for (i, p) in f.params.iter().enumerate() {
            if f.params[..i].contains(p) {
                v.error(IrErrorKind::BadSignature(format!(
                    "parameter {} listed twice",
                    p.index()
                )));
            }
        }
        if let Some(r) = f.result {
            v.check_signature_local(r, "result");
        }
        v.run();
        callees.push(v.callees.clone());
        needs_instance.push(v.uses_instance);
        errors.append(&mut v.errors);
        function_info.push(BodyInfo {
            expr_types: v.types,
        });
    }

    // Recursion check: a depth-first search for cycles in the call graph.
    let n = callees.len();
    let mut state = vec![0u8; n]; // 0 new, 1 on stack, 2 done
    fn dfs(u: usize, callees: &[Vec<usize>], state: &mut [u8]) -> bool {
        state[u] = 1;
        for &c in &callees[u] {
            if c >= state.len() {
                continue;
            }
            if state[c] == 1 || (state[c] == 0 && dfs(c, callees, state)) {
                return true;
            }
        }
        state[u] = 2;
        false
    }
    for u in 0..n {
        if state[u] == 0 && dfs(u, &callees, &mut state) {
            errors.push(IrError {
                context: format!("function {}", module.functions[Handle::from_index(u)].name),
                kind: IrErrorKind::Recursion(module.functions[Handle::from_index(u)].name.clone()),
            });
            break;
        }
    }
    // Propagate instance use through calls (the graph is acyclic when no
    // recursion error was reported; iterate to a fixed point regardless).
    loop {
        let mut changed = false;
        for u in 0..n {
            if !needs_instance[u] && callees[u].iter().any(|&c| c < n && needs_instance[c]) {
                needs_instance[u] = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }

    let mut kernel_info = Vec::new();
    for (k, kernel) in module.kernels.iter().enumerate() {
        let context = format!("kernel {:?}", kernel.phase);
        if module.kernels[..k].iter().any(|o| o.phase == kernel.phase) {
            errors.push(IrError {
                context: context.clone(),
                kind: IrErrorKind::DuplicatePhase(kernel.phase),
            });
        }
        let shape = kernel.phase.shape();
        let mut v = BodyValidator::new(module, &kernel.body, Context::Kernel(shape), context);
        v.run();
        if shape == Shape::Once && v.callees.iter().any(|&c| c < n && needs_instance[c]) {
            v.error(IrErrorKind::NotAllowedHere(
                "a call to a function that needs an instance, in an instance-less kernel",
            ));
        }
        errors.append(&mut v.errors);
        kernel_info.push(BodyInfo {
            expr_types: v.types,
        });
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    let field_columns = module
        .layout
        .fields
        .iter()
        .map(|(h, _)| module.layout.field_column(h))
        .collect();
    let global_slots = module
        .layout
        .globals
        .iter()
        .map(|(h, _)| module.layout.global_slot(h))
        .collect();
    Ok(ValidModule {
        module: module.clone(),
        function_info,
        kernel_info,
        field_columns,
        global_slots,
    })
}

struct BodyValidator<'a> {
    module: &'a Module,
    body: &'a Body,
    context: Context,
    name: String,
    types: Vec<Type>,
    errors: Vec<IrError>,
    callees: Vec<usize>,
    uses_instance: bool,
}

impl<'a> BodyValidator<'a> {
    fn new(module: &'a Module, body: &'a Body, context: Context, name: String) -> Self {
        BodyValidator {
            module,
            body,
            context,
            name,
            types: Vec::new(),
            errors: Vec::new(),
            callees: Vec::new(),
            uses_instance: false,
        }
    }

    fn error(&mut self, kind: IrErrorKind) {
        self.errors.push(IrError {
            context: self.name.clone(),
            kind,
        });
    }

    fn check_signature_local(&mut self, local: Handle<Local>, what: &str) {
        match self.body.locals.try_get(local) {
            None => self.error(IrErrorKind::BadHandle("locals", local.index())),
            Some(l) if l.ty != Type::F64 => self.error(IrErrorKind::BadSignature(format!(
                "{what} {} is not f64",
                l.name
            ))),
            Some(_) => {}
        }
    }

    fn has_instance(&self) -> bool {
        !matches!(self.context, Context::Kernel(Shape::Once))
    }

    fn need_instance(&mut self, what: &'static str) {
        self.uses_instance = true;
        if !self.has_instance() {
            self.error(IrErrorKind::NotAllowedHere(what));
        }
    }

    fn run(&mut self) {
        // Type every expression in order; children must come first.
        for (h, e) in self.body.expressions.iter() {
            let ty = self.type_of(h.index(), e);
            self.types.push(ty);
        }
        let block = &self.body.block;
        self.block(block);
    }

    /// The type of an already-typed child, checking that it precedes `parent`.
    fn child(&mut self, parent: usize, child: Handle<Expression>) -> Option<Type> {
        if child.index() >= self.body.expressions.len() {
            self.error(IrErrorKind::BadHandle("expressions", child.index()));
            None
        } else if child.index() >= parent {
            self.error(IrErrorKind::ForwardReference(child.index()));
            None
        } else {
            Some(self.types[child.index()])
        }
    }

    fn expect_child(&mut self, parent: usize, child: Handle<Expression>, ty: Type) {
        if let Some(found) = self.child(parent, child) {
            if found != ty {
                self.error(IrErrorKind::TypeMismatch {
                    expected: ty,
                    found,
                });
            }
        }
    }

    fn type_of(&mut self, index: usize, e: &Expression) -> Type {
        match e {
            Expression::Constant(_) => Type::F64,
            Expression::Bool(_) => Type::Bool,
            Expression::Local(l) => match self.body.locals.try_get(*l) {
                Some(local) => local.ty,
                None => {
                    self.error(IrErrorKind::BadHandle("locals", l.index()));
                    Type::F64
                }
            },
            Expression::Load(place) => {
                self.place(place, Some(index), false);
                Type::F64
            }
            Expression::Env(var) => {
                if *var == EnvVar::Flag && !self.is_event_kernel() {
                    self.error(IrErrorKind::NotAllowedHere(
                        "flag outside a NET_RECEIVE kernel",
                    ));
                }
                Type::F64
            }
            Expression::Unary { op, arg } => {
                let ty = match op {
                    UnaryOp::Neg => Type::F64,
                    UnaryOp::Not => Type::Bool,
                };
                self.expect_child(index, *arg, ty);
                ty
            }
            Expression::Binary { op, left, right } => {
                let (operand, result) = op.types();
                self.expect_child(index, *left, operand);
                self.expect_child(index, *right, operand);
                result
            }
            Expression::Select {
                condition,
                accept,
                reject,
            } => {
                self.expect_child(index, *condition, Type::Bool);
                let a = self.child(index, *accept);
                let b = self.child(index, *reject);
                match (a, b) {
                    (Some(a), Some(b)) if a != b => {
                        self.error(IrErrorKind::TypeMismatch {
                            expected: a,
                            found: b,
                        });
                        a
                    }
                    (Some(a), _) => a,
                    (None, Some(b)) => b,
                    (None, None) => Type::F64,
                }
            }
            Expression::Math { fun, args } => {
                if args.len() != fun.arity() {
                    self.error(IrErrorKind::Arity {
                        callee: fun.name().into(),
                        expected: fun.arity(),
                        found: args.len(),
                    });
                }
                for &a in args {
                    self.expect_child(index, a, Type::F64);
                }
                Type::F64
            }
            Expression::Call { function, args } => {
                for &a in args {
                    self.expect_child(index, a, Type::F64);
                }
                if let Some(f) = self.callee(*function, args.len()) {
                    if f.result.is_none() {
                        self.error(IrErrorKind::ProcedureAsValue(f.name.clone()));
                    }
                }
                Type::F64
            }
            Expression::RandomUniform => Type::F64,
            Expression::BoolToF64(a) => {
                self.expect_child(index, *a, Type::Bool);
                Type::F64
            }
            Expression::F64ToBool(a) => {
                self.expect_child(index, *a, Type::F64);
                Type::Bool
            }
        }
    }

    fn is_event_kernel(&self) -> bool {
        self.context == Context::Kernel(Shape::Event)
    }

    fn callee(&mut self, function: Handle<Function>, n_args: usize) -> Option<&'a Function> {
        let module = self.module;
        match module.functions.try_get(function) {
            None => {
                self.error(IrErrorKind::BadHandle("functions", function.index()));
                None
            }
            Some(f) => {
                self.callees.push(function.index());
                if f.params.len() != n_args {
                    self.error(IrErrorKind::Arity {
                        callee: f.name.clone(),
                        expected: f.params.len(),
                        found: n_args,
                    });
                }
                Some(f)
            }
        }
    }

    /// Checks a place. `parent` is the index of the loading expression (for
    /// the index-before-parent rule), or `None` in a statement.
    fn place(&mut self, place: &Place, parent: Option<usize>, store: bool) {
        let parent = parent.unwrap_or(usize::MAX);
        let layout = &self.module.layout;
        match place {
            Place::Field { field, index } => {
                self.need_instance("a field access in an instance-less kernel");
                match layout.fields.try_get(*field) {
                    None => self.error(IrErrorKind::BadHandle("fields", field.index())),
                    Some(decl) => {
                        if (decl.array_len > 1) != index.is_some() {
                            self.error(IrErrorKind::IndexMismatch(decl.name.clone()));
                        }
                    }
                }
                if let Some(i) = index {
                    self.expect_child(parent, *i, Type::F64);
                }
            }
            Place::Global { global, index } => {
                match layout.globals.try_get(*global) {
                    None => self.error(IrErrorKind::BadHandle("globals", global.index())),
                    Some(decl) => {
                        if (decl.array_len > 1) != index.is_some() {
                            self.error(IrErrorKind::IndexMismatch(decl.name.clone()));
                        }
                    }
                }
                if let Some(i) = index {
                    self.expect_child(parent, *i, Type::F64);
                }
            }
            Place::NodeV | Place::NodeArea | Place::NodeDiam => {
                self.need_instance("a node access in an instance-less kernel");
                if store {
                    self.error(IrErrorKind::NotStorable(format!("{place:?}")));
                }
            }
            Place::Ion { ion, .. } => {
                self.need_instance("an ion access in an instance-less kernel");
                if layout.ions.try_get(*ion).is_none() {
                    self.error(IrErrorKind::BadHandle("ions", ion.index()));
                }
            }
            Place::LocalArray { array, index } => {
                match self.body.arrays.try_get(*array) {
                    None => self.error(IrErrorKind::BadHandle("arrays", array.index())),
                    Some(a) if a.len == 0 || a.len > MAX_LOCAL_ARRAY => {
                        self.error(IrErrorKind::EmptyArray(a.name.clone()))
                    }
                    Some(_) => {}
                }
                self.expect_child(parent, *index, Type::F64);
            }
            Place::IonValence(ion) => {
                if layout.ions.try_get(*ion).is_none() {
                    self.error(IrErrorKind::BadHandle("ions", ion.index()));
                }
                if store {
                    self.error(IrErrorKind::NotStorable(format!("{place:?}")));
                }
            }
            Place::Pointer(p) => {
                self.need_instance("a POINTER access in an instance-less kernel");
                if layout.pointers.try_get(*p).is_none() {
                    self.error(IrErrorKind::BadHandle("pointers", p.index()));
                }
            }
            Place::Weight(_) => {
                if !self.is_event_kernel() {
                    self.error(IrErrorKind::NotAllowedHere(
                        "a weight access outside a NET_RECEIVE kernel",
                    ));
                }
            }
        }
    }

    fn expect(&mut self, e: Handle<Expression>, ty: Type) {
        if e.index() >= self.types.len() {
            self.error(IrErrorKind::BadHandle("expressions", e.index()));
        } else if self.types[e.index()] != ty {
            self.error(IrErrorKind::TypeMismatch {
                expected: ty,
                found: self.types[e.index()],
            });
        }
    }

    fn local(&mut self, l: Handle<Local>) -> Option<Type> {
        match self.body.locals.try_get(l) {
            Some(local) => Some(local.ty),
            None => {
                self.error(IrErrorKind::BadHandle("locals", l.index()));
                None
            }
        }
    }

    fn block(&mut self, block: &'a [Statement]) {
        for s in block {
            self.statement(s);
        }
    }

    fn statement(&mut self, s: &'a Statement) {
        match s {
            Statement::Assign { local, value } => {
                if let Some(ty) = self.local(*local) {
                    self.expect(*value, ty);
                }
            }
            Statement::Store { place, value } => {
                self.place(place, None, true);
                self.expect(*value, Type::F64);
            }
            Statement::Accumulate { target, value, .. } => {
                self.need_instance("an accumulating store in an instance-less kernel");
                match target {
                    AccumTarget::NodeRhs | AccumTarget::NodeD => {}
                    AccumTarget::IonCur(ion) | AccumTarget::IonDcurDv(ion) => {
                        if self.module.layout.ions.try_get(*ion).is_none() {
                            self.error(IrErrorKind::BadHandle("ions", ion.index()));
                        }
                    }
                }
                self.expect(*value, Type::F64);
            }
            Statement::If {
                condition,
                accept,
                reject,
            } => {
                self.expect(*condition, Type::Bool);
                self.block(accept);
                self.block(reject);
            }
            Statement::While {
                condition, body, ..
            } => {
                self.expect(*condition, Type::Bool);
                self.block(body);
            }
            Statement::ForRange {
                var,
                start,
                end,
                step,
                body,
                ..
            } => {
                if let Some(ty) = self.local(*var) {
                    if ty != Type::F64 {
                        self.error(IrErrorKind::TypeMismatch {
                            expected: Type::F64,
                            found: ty,
                        });
                    }
                }
                self.expect(*start, Type::F64);
                self.expect(*end, Type::F64);
                if !(step.is_finite() && *step != 0.0) {
                    self.error(IrErrorKind::BadStep(*step));
                }
                self.block(body);
            }
            Statement::Call { function, args } => {
                for &a in args {
                    self.expect(a, Type::F64);
                }
                self.callee(*function, args.len());
            }
            Statement::NetSend { delay, flag } => {
                if self.context == Context::Function {
                    self.error(IrErrorKind::NotAllowedHere("net_send in a function"));
                }
                self.need_instance("net_send in an instance-less kernel");
                self.expect(*delay, Type::F64);
                self.expect(*flag, Type::F64);
            }
            Statement::NetEvent { time } | Statement::NetMove { time } => {
                self.need_instance("net_event/net_move in an instance-less kernel");
                self.expect(*time, Type::F64);
            }
            Statement::SetSeed { seed } => self.expect(*seed, Type::F64),
            Statement::Return => {}
            Statement::Error { status } => {
                if *status == 0 {
                    self.error(IrErrorKind::ZeroStatus);
                }
            }
        }
    }
}
