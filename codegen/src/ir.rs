//! The kernel IR: arenas of typed handles holding the kernels and helper
//! functions of one mechanism. The crate-level documentation (`lib.rs`) is the
//! specification of what every construct means; this file only defines the
//! data types and small construction helpers.

use std::fmt;
use std::marker::PhantomData;

/// A typed index into an [`Arena`].
///
/// Handles are created by [`Arena::append`]; [`Handle::from_index`] exists so
/// that tests and deserialisers can build arbitrary (possibly invalid) handles,
/// which the validator then rejects.
pub struct Handle<T> {
    index: u32,
    marker: PhantomData<fn() -> T>,
}

impl<T> Handle<T> {
    /// Builds a handle from a raw index. Nothing is checked here; the
    /// validator checks that every handle is in range.
    pub fn from_index(index: usize) -> Self {
        Handle {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            marker: PhantomData,
        }
    }

    /// The raw index of this handle in its arena.
    pub fn index(self) -> usize {
        self.index as usize
    }
}

impl<T> Clone for Handle<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Handle<T> {}
impl<T> PartialEq for Handle<T> {
    fn eq(&self, other: &Self) -> bool {
        self.index == other.index
    }
}
impl<T> Eq for Handle<T> {}
impl<T> std::hash::Hash for Handle<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.index.hash(state)
    }
}
impl<T> fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]", self.index)
    }
}

/// An append-only vector addressed by [`Handle`]s.
#[derive(Clone, PartialEq)]
pub struct Arena<T> {
    data: Vec<T>,
}

impl<T> Default for Arena<T> {
    fn default() -> Self {
        Arena { data: Vec::new() }
    }
}

impl<T: fmt::Debug> fmt::Debug for Arena<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.data.iter().enumerate()).finish()
    }
}

impl<T> Arena<T> {
    /// An empty arena.
    pub fn new() -> Self {
        Arena { data: Vec::new() }
    }

    /// Adds `value` and returns its handle.
    pub fn append(&mut self, value: T) -> Handle<T> {
        let handle = Handle::from_index(self.data.len());
        self.data.push(value);
        handle
    }

    /// The number of items.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the arena is empty.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The item behind `handle`, or `None` when the handle is out of range.
    pub fn try_get(&self, handle: Handle<T>) -> Option<&T> {
        self.data.get(handle.index())
    }

    /// Iterates over `(handle, item)` pairs in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (Handle<T>, &T)> {
        self.data
            .iter()
            .enumerate()
            .map(|(i, v)| (Handle::from_index(i), v))
    }

    /// Iterates mutably over `(handle, item)` pairs in insertion order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (Handle<T>, &mut T)> {
        self.data
            .iter_mut()
            .enumerate()
            .map(|(i, v)| (Handle::from_index(i), v))
    }
}

impl<T> std::ops::Index<Handle<T>> for Arena<T> {
    type Output = T;
    fn index(&self, handle: Handle<T>) -> &T {
        &self.data[handle.index()]
    }
}

impl<T> std::ops::IndexMut<Handle<T>> for Arena<T> {
    fn index_mut(&mut self, handle: Handle<T>) -> &mut T {
        &mut self.data[handle.index()]
    }
}

/// The two value types of the IR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    /// An IEEE-754 double.
    F64,
    /// A truth value (comparisons, logical operators, conditions).
    Bool,
}

/// One RANGE field of the mechanism: `array_len` consecutive columns of
/// `NrnMechPack::fields`, in declaration order.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldDecl {
    /// The NMODL name.
    pub name: String,
    /// 1 for a scalar, N for `x[N]`.
    pub array_len: u32,
}

/// One GLOBAL of the mechanism: `array_len` consecutive slots of
/// `NrnMechPack::globals`, in declaration order.
#[derive(Clone, Debug, PartialEq)]
pub struct GlobalDecl {
    /// The NMODL name.
    pub name: String,
    /// 1 for a scalar, N for `x[N]` (TABLE storage uses long arrays).
    pub array_len: u32,
}

/// One ion used by the mechanism, in `NrnMechPack::ions` order.
#[derive(Clone, Debug, PartialEq)]
pub struct IonDecl {
    /// The ion name (`na`, `k`, `ca`, …).
    pub name: String,
}

/// One POINTER variable, in `NrnMechPack::pointers` order.
#[derive(Clone, Debug, PartialEq)]
pub struct PointerDecl {
    /// The NMODL name.
    pub name: String,
}

/// The storage layout a module is compiled against: it must match the
/// `NrnMechanism` metadata the runtime allocates from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Layout {
    /// RANGE fields in column order.
    pub fields: Arena<FieldDecl>,
    /// GLOBALs in storage order.
    pub globals: Arena<GlobalDecl>,
    /// Ions in pack order.
    pub ions: Arena<IonDecl>,
    /// POINTER variables in pack order.
    pub pointers: Arena<PointerDecl>,
}

impl Layout {
    /// The first column of `field` in `NrnMechPack::fields`.
    pub fn field_column(&self, field: Handle<FieldDecl>) -> usize {
        self.fields
            .iter()
            .take_while(|(h, _)| *h != field)
            .map(|(_, f)| f.array_len as usize)
            .sum()
    }

    /// The total number of field columns.
    pub fn n_columns(&self) -> usize {
        self.fields.iter().map(|(_, f)| f.array_len as usize).sum()
    }

    /// The first slot of `global` in `NrnMechPack::globals`.
    pub fn global_slot(&self, global: Handle<GlobalDecl>) -> usize {
        self.globals
            .iter()
            .take_while(|(h, _)| *h != global)
            .map(|(_, g)| g.array_len as usize)
            .sum()
    }

    /// The total number of global slots.
    pub fn n_global_slots(&self) -> usize {
        self.globals.iter().map(|(_, g)| g.array_len as usize).sum()
    }
}

/// A mutable local variable (LOCAL, a function argument, a hidden temporary).
/// Every local starts at `0.0` (or `false`) each time its body starts running.
#[derive(Clone, Debug, PartialEq)]
pub struct Local {
    /// A name for diagnostics and dumps.
    pub name: String,
    /// The local's type.
    pub ty: Type,
}

/// A local array (NMODL `LOCAL x[N]`, or scratch such as a Newton
/// Jacobian): `len` f64 elements, all `0.0` each time its body starts.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalArray {
    /// A name for diagnostics and dumps.
    pub name: String,
    /// The number of elements (at least 1).
    pub len: u32,
}

/// A column of an ion as seen through `NrnIonPack`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IonVar {
    /// `e<ion>` [mV].
    Erev,
    /// `<ion>i` [mM].
    ConcI,
    /// `<ion>o` [mM].
    ConcO,
    /// `i<ion>` [mA/cm²].
    Cur,
    /// `di<ion>/dv` [S/cm²].
    DcurDv,
}

/// Something that can be loaded (and, for some variants, stored).
#[derive(Clone, Debug, PartialEq)]
pub enum Place {
    /// A field of the current instance; `index` selects the element of an
    /// array field (required exactly when `array_len > 1`), bounds-checked.
    Field {
        /// The field.
        field: Handle<FieldDecl>,
        /// The element index for array fields.
        index: Option<Handle<Expression>>,
    },
    /// A global; `index` as for fields.
    Global {
        /// The global.
        global: Handle<GlobalDecl>,
        /// The element index for array globals.
        index: Option<Handle<Expression>>,
    },
    /// The membrane potential of the current instance's node [mV]. Load only.
    NodeV,
    /// The area of the current instance's node [µm²]. Load only.
    NodeArea,
    /// The diameter of the current instance's node [µm]. Load only.
    NodeDiam,
    /// An ion column at the current instance's ion index.
    Ion {
        /// The ion.
        ion: Handle<IonDecl>,
        /// Which column.
        var: IonVar,
    },
    /// The target of a POINTER of the current instance; an unset (null)
    /// pointer makes the kernel fail with `STATUS_POINTER_UNSET`.
    Pointer(Handle<PointerDecl>),
    /// Element `index` of a local array of the current body (zeroed when the
    /// body starts), bounds-checked like array fields.
    LocalArray {
        /// The array.
        array: Handle<LocalArray>,
        /// The f64 element index.
        index: Handle<Expression>,
    },
    /// The valence of an ion (`NrnIonPack::valence`). Load only.
    IonValence(Handle<IonDecl>),
    /// Element `k` of the NET_RECEIVE weight vector (event kernels only);
    /// `k >= n_weights` fails with `STATUS_MECHANISM_ERROR`.
    Weight(u32),
}

/// The simulator-wide scalars a kernel can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EnvVar {
    /// `t` [ms].
    T,
    /// `dt` [ms].
    Dt,
    /// `celsius` [degC].
    Celsius,
    /// `secondorder` (as f64).
    SecondOrder,
    /// The NET_RECEIVE `flag` (event kernels only).
    Flag,
}

/// Unary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `-x` on f64.
    Neg,
    /// `!b` on bool.
    Not,
}

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// f64 `+`.
    Add,
    /// f64 `-`.
    Sub,
    /// f64 `*`.
    Mul,
    /// f64 `/`.
    Div,
    /// f64 `^`, the same function as [`MathFn::Pow`].
    Pow,
    /// f64 `<` → bool.
    Lt,
    /// f64 `<=` → bool.
    Le,
    /// f64 `>` → bool.
    Gt,
    /// f64 `>=` → bool.
    Ge,
    /// f64 `==` → bool (false when either is NaN).
    Eq,
    /// f64 `!=` → bool (true when either is NaN).
    Ne,
    /// bool `&&`, short-circuit.
    And,
    /// bool `||`, short-circuit.
    Or,
}

impl BinaryOp {
    /// The operand and result types of the operator.
    pub fn types(self) -> (Type, Type) {
        use BinaryOp::*;
        match self {
            Add | Sub | Mul | Div | Pow => (Type::F64, Type::F64),
            Lt | Le | Gt | Ge | Eq | Ne => (Type::F64, Type::Bool),
            And | Or => (Type::Bool, Type::Bool),
        }
    }
}

/// The math built-ins. Both back ends call the same `extern "C"` functions in
/// [`crate::math`], so results are bit-identical.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MathFn {
    /// `exp(x)`.
    Exp,
    /// `log(x)`, natural.
    Log,
    /// `log10(x)`.
    Log10,
    /// `sqrt(x)`.
    Sqrt,
    /// `pow(x, y)`.
    Pow,
    /// `fabs(x)`.
    Fabs,
    /// `sin(x)`.
    Sin,
    /// `cos(x)`.
    Cos,
    /// `tan(x)`.
    Tan,
    /// `tanh(x)`.
    Tanh,
    /// `sinh(x)`.
    Sinh,
    /// `cosh(x)`.
    Cosh,
    /// `asin(x)`.
    Asin,
    /// `acos(x)`.
    Acos,
    /// `atan(x)`.
    Atan,
    /// `atan2(y, x)`.
    Atan2,
    /// `floor(x)`.
    Floor,
    /// `ceil(x)`.
    Ceil,
    /// `fmod(x, y)`.
    Fmod,
    /// `fmin(x, y)` (C semantics: a NaN argument is ignored).
    Fmin,
    /// `fmax(x, y)`.
    Fmax,
    /// `exprelr(x) = x / (exp(x) - 1)`, 1 where `1 + x == 1`.
    Exprelr,
    /// `expm1(x)`.
    Expm1,
    /// `log1p(x)`.
    Log1p,
    /// `erf(x)`.
    Erf,
    /// `erfc(x)`.
    Erfc,
}

impl MathFn {
    /// Every built-in, for registration and random testing.
    pub const ALL: [MathFn; 26] = [
        MathFn::Exp,
        MathFn::Log,
        MathFn::Log10,
        MathFn::Sqrt,
        MathFn::Pow,
        MathFn::Fabs,
        MathFn::Sin,
        MathFn::Cos,
        MathFn::Tan,
        MathFn::Tanh,
        MathFn::Sinh,
        MathFn::Cosh,
        MathFn::Asin,
        MathFn::Acos,
        MathFn::Atan,
        MathFn::Atan2,
        MathFn::Floor,
        MathFn::Ceil,
        MathFn::Fmod,
        MathFn::Fmin,
        MathFn::Fmax,
        MathFn::Exprelr,
        MathFn::Expm1,
        MathFn::Log1p,
        MathFn::Erf,
        MathFn::Erfc,
    ];

    /// The number of f64 arguments (1 or 2).
    pub fn arity(self) -> usize {
        match self {
            MathFn::Pow | MathFn::Atan2 | MathFn::Fmod | MathFn::Fmin | MathFn::Fmax => 2,
            _ => 1,
        }
    }

    /// The NMODL spelling.
    pub fn name(self) -> &'static str {
        use MathFn::*;
        match self {
            Exp => "exp",
            Log => "log",
            Log10 => "log10",
            Sqrt => "sqrt",
            Pow => "pow",
            Fabs => "fabs",
            Sin => "sin",
            Cos => "cos",
            Tan => "tan",
            Tanh => "tanh",
            Sinh => "sinh",
            Cosh => "cosh",
            Asin => "asin",
            Acos => "acos",
            Atan => "atan",
            Atan2 => "atan2",
            Floor => "floor",
            Ceil => "ceil",
            Fmod => "fmod",
            Fmin => "fmin",
            Fmax => "fmax",
            Exprelr => "exprelr",
            Expm1 => "expm1",
            Log1p => "log1p",
            Erf => "erf",
            Erfc => "erfc",
        }
    }

    /// Looks a built-in up by its NMODL name.
    pub fn from_name(name: &str) -> Option<MathFn> {
        MathFn::ALL.iter().copied().find(|f| f.name() == name)
    }
}

/// An expression node. Children are handles into the same body's expression
/// arena and must have smaller indices than their parent (so the arena is a
/// DAG in evaluation order). An expression is evaluated each time a statement
/// (or parent expression) that uses it is evaluated, operands left to right.
#[derive(Clone, Debug, PartialEq)]
pub enum Expression {
    /// An f64 literal.
    Constant(f64),
    /// A bool literal.
    Bool(bool),
    /// The current value of a local.
    Local(Handle<Local>),
    /// A load from a [`Place`].
    Load(Place),
    /// A simulator scalar.
    Env(EnvVar),
    /// A unary operator.
    Unary {
        /// The operator.
        op: UnaryOp,
        /// The operand.
        arg: Handle<Expression>,
    },
    /// A binary operator.
    Binary {
        /// The operator.
        op: BinaryOp,
        /// The left operand.
        left: Handle<Expression>,
        /// The right operand.
        right: Handle<Expression>,
    },
    /// `condition ? accept : reject`; only the chosen operand is evaluated.
    Select {
        /// A bool.
        condition: Handle<Expression>,
        /// Evaluated when `condition` is true.
        accept: Handle<Expression>,
        /// Evaluated when `condition` is false.
        reject: Handle<Expression>,
    },
    /// A math built-in; `args.len() == fun.arity()`.
    Math {
        /// The built-in.
        fun: MathFn,
        /// The f64 arguments.
        args: Vec<Handle<Expression>>,
    },
    /// A call of a FUNCTION (one with a result) of the same module.
    Call {
        /// The callee.
        function: Handle<Function>,
        /// The f64 arguments, by value.
        args: Vec<Handle<Expression>>,
    },
    /// A uniform deviate in [0, 1) from the host's generator.
    RandomUniform,
    /// bool → f64 (1.0 / 0.0).
    BoolToF64(Handle<Expression>),
    /// f64 → bool (`x != 0.0`, so NaN is true, as in C).
    F64ToBool(Handle<Expression>),
}

/// What an accumulating store adds to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccumTarget {
    /// The node's right-hand side `rhs[node]`.
    NodeRhs,
    /// The node's diagonal `d[node]`.
    NodeD,
    /// The ion's current column at the instance's ion index.
    IonCur(Handle<IonDecl>),
    /// The ion's dI/dv column.
    IonDcurDv(Handle<IonDecl>),
}

/// The operator of an accumulating store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccumOp {
    /// `target += value`.
    Add,
    /// `target -= value`.
    Sub,
}

/// A sequence of statements.
pub type Block = Vec<Statement>;

/// A statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Statement {
    /// `local = value`.
    Assign {
        /// The local written.
        local: Handle<Local>,
        /// The new value (same type as the local).
        value: Handle<Expression>,
    },
    /// `place = value` for a storable place (fields, globals, ion columns,
    /// POINTER targets, weights).
    Store {
        /// Where.
        place: Place,
        /// An f64.
        value: Handle<Expression>,
    },
    /// `target += value` or `target -= value`.
    Accumulate {
        /// Where.
        target: AccumTarget,
        /// Add or subtract.
        op: AccumOp,
        /// An f64.
        value: Handle<Expression>,
    },
    /// `if condition { accept } else { reject }`.
    If {
        /// A bool.
        condition: Handle<Expression>,
        /// Run when true.
        accept: Block,
        /// Run when false.
        reject: Block,
    },
    /// `while condition { body }`, failing with `STATUS_MECHANISM_ERROR` when
    /// the condition is still true after `max_iterations` runs of the body.
    While {
        /// A bool, evaluated before each iteration.
        condition: Handle<Expression>,
        /// The loop body.
        body: Block,
        /// The iteration cap.
        max_iterations: u32,
    },
    /// NMODL `FROM var = start TO end BY step { body }`: `end` is evaluated
    /// once; then while `var <= end` (`>=` for a negative step) the body runs
    /// and `var += step`. More than `max_iterations` iterations fail with
    /// `STATUS_MECHANISM_ERROR`.
    ForRange {
        /// An f64 local, the loop variable.
        var: Handle<Local>,
        /// The first value (f64).
        start: Handle<Expression>,
        /// The inclusive last value (f64).
        end: Handle<Expression>,
        /// A finite, nonzero constant step.
        step: f64,
        /// The loop body.
        body: Block,
        /// The iteration cap.
        max_iterations: u32,
    },
    /// A call whose result (if any) is discarded (PROCEDURE calls).
    Call {
        /// The callee.
        function: Handle<Function>,
        /// The f64 arguments, by value.
        args: Vec<Handle<Expression>>,
    },
    /// `net_send(delay, flag)` (kernels with an instance only, not in functions).
    NetSend {
        /// Delay [ms].
        delay: Handle<Expression>,
        /// The flag the self-event will carry.
        flag: Handle<Expression>,
    },
    /// `net_event(time)`.
    NetEvent {
        /// Spike time [ms].
        time: Handle<Expression>,
    },
    /// `net_move(time)`.
    NetMove {
        /// New delivery time [ms].
        time: Handle<Expression>,
    },
    /// `set_seed(seed)`.
    SetSeed {
        /// The seed.
        seed: Handle<Expression>,
    },
    /// Ends the current body normally: a function returns its result local,
    /// a per-instance kernel continues with the next instance, other kernels
    /// return `STATUS_OK`.
    Return,
    /// Aborts the whole kernel with `status` (nonzero), propagating through
    /// function calls.
    Error {
        /// One of the `runtime::abi::STATUS_*` error codes.
        status: i32,
    },
}

/// The locals, expressions and statements of one function or kernel.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Body {
    /// Locals, each starting at 0 / false.
    pub locals: Arena<Local>,
    /// Local arrays, each starting all zero.
    pub arrays: Arena<LocalArray>,
    /// Expressions; children precede parents.
    pub expressions: Arena<Expression>,
    /// The statements.
    pub block: Block,
}

impl Body {
    /// Adds a local.
    pub fn local(&mut self, name: &str, ty: Type) -> Handle<Local> {
        self.locals.append(Local {
            name: name.to_string(),
            ty,
        })
    }

    /// Adds a local array of `len` elements.
    pub fn array(&mut self, name: &str, len: u32) -> Handle<LocalArray> {
        self.arrays.append(LocalArray {
            name: name.to_string(),
            len,
        })
    }

    /// Adds an expression.
    pub fn expr(&mut self, e: Expression) -> Handle<Expression> {
        self.expressions.append(e)
    }

    /// Adds an f64 constant.
    pub fn constant(&mut self, x: f64) -> Handle<Expression> {
        self.expr(Expression::Constant(x))
    }

    /// Adds a read of `local`.
    pub fn read(&mut self, local: Handle<Local>) -> Handle<Expression> {
        self.expr(Expression::Local(local))
    }

    /// Adds a load from `place`.
    pub fn load(&mut self, place: Place) -> Handle<Expression> {
        self.expr(Expression::Load(place))
    }

    /// Adds a binary operation.
    pub fn binary(
        &mut self,
        op: BinaryOp,
        left: Handle<Expression>,
        right: Handle<Expression>,
    ) -> Handle<Expression> {
        self.expr(Expression::Binary { op, left, right })
    }

    /// Adds a unary operation.
    pub fn unary(&mut self, op: UnaryOp, arg: Handle<Expression>) -> Handle<Expression> {
        self.expr(Expression::Unary { op, arg })
    }

    /// Adds a math built-in call.
    pub fn math(&mut self, fun: MathFn, args: &[Handle<Expression>]) -> Handle<Expression> {
        self.expr(Expression::Math {
            fun,
            args: args.to_vec(),
        })
    }

    /// The functions this body calls directly (in statements and in
    /// expressions).
    pub fn callees(&self) -> std::collections::HashSet<Handle<Function>> {
        let mut out: std::collections::HashSet<Handle<Function>> = self
            .expressions
            .iter()
            .filter_map(|(_, e)| match e {
                Expression::Call { function, .. } => Some(*function),
                _ => None,
            })
            .collect();
        each_statement(&self.block, &mut |s| {
            if let Statement::Call { function, .. } = s {
                out.insert(*function);
            }
        });
        out
    }

    /// Adds a FUNCTION call.
    pub fn call(
        &mut self,
        function: Handle<Function>,
        args: &[Handle<Expression>],
    ) -> Handle<Expression> {
        self.expr(Expression::Call {
            function,
            args: args.to_vec(),
        })
    }
}

/// Calls `f` on every statement of `b`, nested blocks included.
pub fn each_statement(b: &[Statement], f: &mut dyn FnMut(&Statement)) {
    for s in b {
        f(s);
        match s {
            Statement::If { accept, reject, .. } => {
                each_statement(accept, f);
                each_statement(reject, f);
            }
            Statement::While { body, .. } | Statement::ForRange { body, .. } => {
                each_statement(body, f)
            }
            _ => {}
        }
    }
}

/// A FUNCTION or PROCEDURE of the mechanism, called with f64 arguments by
/// value (or inlined into the kernels that call it, by `lower::inline`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Function {
    /// The NMODL name.
    pub name: String,
    /// The parameters: f64 locals of `body`, bound to the arguments at entry.
    pub params: Vec<Handle<Local>>,
    /// For a FUNCTION, the f64 local whose value is returned; `None` for a
    /// PROCEDURE (which can only be called by [`Statement::Call`]).
    pub result: Option<Handle<Local>>,
    /// The body. It runs with the caller's current instance.
    pub body: Body,
}

/// The ABI phase a kernel implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// INITIAL (`NrnKernels::init`).
    Init,
    /// BREAKPOINT currents (`cur`).
    Cur,
    /// BREAKPOINT SOLVE (`state`).
    State,
    /// TABLE rebuild (`table_check`): a per-instance body that the runtime
    /// calls with the first instance only, as NEURON's `_check_table_thread`
    /// checks through instance 0 (DEPEND variables are GLOBALs).
    TableCheck,
    /// NET_RECEIVE (`net_receive`), run once per event for its instance.
    NetReceive,
    /// NET_RECEIVE's INITIAL (`net_receive_init`), once per NetCon.
    NetReceiveInit,
    /// BEFORE INITIAL.
    BeforeInitial,
    /// AFTER INITIAL.
    AfterInitial,
    /// BEFORE BREAKPOINT.
    BeforeBreakpoint,
    /// AFTER SOLVE.
    AfterSolve,
    /// BEFORE STEP.
    BeforeStep,
    /// CONSTRUCTOR.
    Constructor,
    /// DESTRUCTOR.
    Destructor,
}

/// How often a kernel body runs per call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shape {
    /// `for i in 0..count`, as an `NrnKernelFn`.
    PerInstance,
    /// Once for the given instance, as an `NrnNetReceiveFn`.
    Event,
    /// Once, with no current instance, as an `NrnKernelFn`.
    Once,
}

impl Phase {
    /// Whether the simulator runs this phase at every time step (BREAKPOINT,
    /// SOLVE and the BEFORE/AFTER blocks around them), where speed matters
    /// more than the time to compile.
    pub fn every_step(self) -> bool {
        matches!(
            self,
            Phase::Cur
                | Phase::State
                | Phase::BeforeBreakpoint
                | Phase::AfterSolve
                | Phase::BeforeStep
        )
    }

    /// The body shape of this phase.
    pub fn shape(self) -> Shape {
        match self {
            Phase::NetReceive | Phase::NetReceiveInit => Shape::Event,
            _ => Shape::PerInstance,
        }
    }
}

/// One ABI phase kernel.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    /// Which phase.
    pub phase: Phase,
    /// The body.
    pub body: Body,
}

/// The kernels and helper functions of one mechanism.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Module {
    /// The mechanism name (for symbol names and messages).
    pub name: String,
    /// The storage layout.
    pub layout: Layout,
    /// FUNCTIONs and PROCEDUREs.
    pub functions: Arena<Function>,
    /// At most one kernel per phase.
    pub kernels: Vec<Kernel>,
}

impl Module {
    /// The kernel for `phase`, if any.
    pub fn kernel(&self, phase: Phase) -> Option<&Kernel> {
        self.kernels.iter().find(|k| k.phase == phase)
    }
}
