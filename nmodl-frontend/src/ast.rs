//! The syntax tree of an NMODL file, as written (before any name resolution).
//!
//! [`crate::parser::parse`] builds it; [`crate::driver`] splices INCLUDEd files
//! into it; [`crate::resolve`] reads it. Every node carries a [`Span`] into the
//! file it came from (included items keep spans into the included file), and
//! every name is an [`Ident`]. Comments, `COMMENT … ENDCOMMENT` and units after
//! numeric literals in expressions (`2 (mV)`, which nocmodl also drops) do not
//! appear in the tree.
//!
//! This module is append-only: later changes add variants and fields, they do
//! not rename or remove them.

use crate::source::{FileId, Span};
use serde::Serialize;

/// A name as written, with its location.
#[derive(Debug, Clone, Serialize)]
pub struct Ident {
    /// The name (case-sensitive, as in NEURON).
    pub name: String,
    /// Where it is written.
    pub span: Span,
}

/// A numeric literal in a declaration, with an optional leading minus sign
/// already applied to `value`.
#[derive(Debug, Clone, Serialize)]
pub struct Number {
    /// The value.
    pub value: f64,
    /// The literal as written (including a leading `-`), e.g. `"-65"` or `".12"`.
    pub text: String,
    /// Where it is written.
    pub span: Span,
}

/// A unit expression in parentheses, such as `(mA/cm2)`. The text is what
/// stands between the parentheses, trimmed; the span covers the parentheses.
#[derive(Debug, Clone, Serialize)]
pub struct Units {
    /// The unit text, e.g. `"mA/cm2"`, `"/ms"`, `"1"`, `"k-mole"`.
    pub text: String,
    /// Where it is written, parentheses included.
    pub span: Span,
}

/// A whole `.mod` file after parsing (and, from the driver, after INCLUDE
/// splicing).
#[derive(Debug, Clone, Serialize)]
pub struct Module {
    /// The file the module was parsed from.
    pub file: FileId,
    /// Top-level items in source order.
    pub items: Vec<Item>,
    /// The whole file.
    pub span: Span,
}

/// One top-level item.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// What it is.
    pub kind: ItemKind,
    /// From its keyword to its closing brace (or end of line).
    pub span: Span,
}

/// The kinds of top-level item.
#[derive(Debug, Clone, Serialize)]
pub enum ItemKind {
    /// `TITLE rest of line` (the text is trimmed).
    Title(String),
    /// `DEFINE NAME integer`.
    Define(Define),
    /// `INCLUDE "file"`. The driver replaces it by the included file's items,
    /// so resolved modules normally contain none.
    Include(Include),
    /// `UNITS { … }`.
    Units(Vec<UnitDef>),
    /// `NEURON { … }`.
    Neuron(Vec<NeuronStmt>),
    /// `PARAMETER { … }`.
    Parameter(Vec<VarDecl>),
    /// `ASSIGNED { … }`.
    Assigned(Vec<VarDecl>),
    /// `STATE { … }`.
    State(Vec<VarDecl>),
    /// `CONSTANT { name = number (units) … }`.
    Constant(Vec<VarDecl>),
    /// `INDEPENDENT { t FROM 0 TO 1 WITH 1 (ms) }`.
    Independent(Vec<IndependentDecl>),
    /// `INITIAL { … }`.
    Initial(Block),
    /// `BREAKPOINT { … }`.
    Breakpoint(Block),
    /// `DERIVATIVE`, `KINETIC`, `LINEAR`, `NONLINEAR`, `DISCRETE` or `PARTIAL`
    /// `name { … }`: a block that a SOLVE statement can name.
    Solvable(SolvableBlock),
    /// `PROCEDURE name(args) { … }`.
    Procedure(Procedure),
    /// `FUNCTION name(args) (units) { … }`.
    Function(Function),
    /// `FUNCTION_TABLE name(args) (units)`.
    FunctionTable(FunctionTable),
    /// `NET_RECEIVE(args) { … }`.
    NetReceive(NetReceive),
    /// `BEFORE|AFTER BREAKPOINT|SOLVE|INITIAL|STEP { … }`.
    BeforeAfter(BeforeAfter),
    /// `CONSTRUCTOR { … }`.
    Constructor(Block),
    /// `DESTRUCTOR { … }`.
    Destructor(Block),
    /// `VERBATIM … ENDVERBATIM` at top level.
    Verbatim(Verbatim),
    /// Top-level `LOCAL a, b[3]` (file-scope variables).
    Local(Vec<LocalVar>),
    /// `UNITSON` at top level (affects only units checking, which nocmodl does not do).
    UnitsOn,
    /// `UNITSOFF` at top level.
    UnitsOff,
}

/// `DEFINE NAME integer`.
#[derive(Debug, Clone, Serialize)]
pub struct Define {
    /// The defined name.
    pub name: Ident,
    /// Its integer value (may be negative).
    pub value: Number,
}

/// `INCLUDE "file"`.
#[derive(Debug, Clone, Serialize)]
pub struct Include {
    /// The path between the quotes.
    pub path: String,
    /// The span of the quoted string.
    pub path_span: Span,
}

/// One line of a UNITS block.
#[derive(Debug, Clone, Serialize)]
pub struct UnitDef {
    /// What the line defines.
    pub kind: UnitDefKind,
    /// The whole line.
    pub span: Span,
}

/// The forms a UNITS-block line can take.
#[derive(Debug, Clone, Serialize)]
pub enum UnitDefKind {
    /// `(mA) = (milliamp)`: a new unit name.
    Alias {
        /// The unit being named.
        name: Units,
        /// Its definition.
        definition: Units,
    },
    /// `FARADAY = (faraday) (coulomb)`, `FARADAY = (faraday) -> (coulomb)`:
    /// a constant equal to one `from` expressed in `to`.
    Conversion {
        /// The constant's name.
        name: Ident,
        /// The unit whose size is taken.
        from: Units,
        /// The unit it is expressed in.
        to: Units,
    },
    /// `FARADAY = 96485.3 (coul)`: a constant with a literal value.
    Constant {
        /// The constant's name.
        name: Ident,
        /// Its value.
        value: Number,
        /// Its units.
        units: Units,
    },
}

/// One statement of the NEURON block.
#[derive(Debug, Clone, Serialize)]
pub struct NeuronStmt {
    /// What it declares.
    pub kind: NeuronStmtKind,
    /// The whole statement.
    pub span: Span,
}

/// Which of `SUFFIX`, `POINT_PROCESS`, `ARTIFICIAL_CELL` names the mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum MechanismKind {
    /// `SUFFIX name`: a density mechanism.
    Suffix,
    /// `POINT_PROCESS name`.
    PointProcess,
    /// `ARTIFICIAL_CELL name`.
    ArtificialCell,
}

/// The statements of the NEURON block.
#[derive(Debug, Clone, Serialize)]
pub enum NeuronStmtKind {
    /// `SUFFIX`, `POINT_PROCESS` or `ARTIFICIAL_CELL` and the mechanism name.
    Mechanism {
        /// Which keyword.
        kind: MechanismKind,
        /// The mechanism's name.
        name: Ident,
    },
    /// `USEION x READ … WRITE … VALENCE z REPRESENTS id`.
    UseIon(UseIon),
    /// `NONSPECIFIC_CURRENT i, …`.
    NonspecificCurrent(Vec<Ident>),
    /// `ELECTRODE_CURRENT i, …`.
    ElectrodeCurrent(Vec<Ident>),
    /// `RANGE a, b, …`.
    Range(Vec<Ident>),
    /// `GLOBAL a, …`.
    Global(Vec<Ident>),
    /// `POINTER p, …`.
    Pointer(Vec<Ident>),
    /// `BBCOREPOINTER p, …`.
    BbcorePointer(Vec<Ident>),
    /// `EXTERNAL a, …`.
    External(Vec<Ident>),
    /// `THREADSAFE` (optionally followed by names, as the NMODL framework allows).
    ThreadSafe(Vec<Ident>),
    /// `REPRESENTS ontology:id`.
    Represents(Ontology),
    /// `RANDOM r, …` (NEURON 9).
    Random(Vec<Ident>),
    /// `CONDUCTANCE g [USEION x]`.
    Conductance(Conductance),
}

/// A CURIE-style ontology id such as `NCIT:C17145`.
#[derive(Debug, Clone, Serialize)]
pub struct Ontology {
    /// The id as written.
    pub id: String,
    /// Where it is written.
    pub span: Span,
}

/// `USEION x READ … WRITE … VALENCE z REPRESENTS id`.
#[derive(Debug, Clone, Serialize)]
pub struct UseIon {
    /// The ion name (`na`, `k`, `ca`, or any other).
    pub ion: Ident,
    /// Names after READ.
    pub read: Vec<Ident>,
    /// Names after WRITE.
    pub write: Vec<Ident>,
    /// The number after VALENCE (or its synonym CHARGE), sign applied.
    pub valence: Option<Number>,
    /// The id after REPRESENTS.
    pub represents: Option<Ontology>,
}

/// `CONDUCTANCE g [USEION x]`.
#[derive(Debug, Clone, Serialize)]
pub struct Conductance {
    /// The conductance variable.
    pub name: Ident,
    /// The ion it belongs to, if given.
    pub ion: Option<Ident>,
}

/// An array dimension in a declaration: a literal or a DEFINEd name.
#[derive(Debug, Clone, Serialize)]
pub enum ArrayDim {
    /// `x[4]`.
    Literal {
        /// The size as written (resolution checks that it is ≥ 1).
        value: i64,
        /// Where it is written.
        span: Span,
    },
    /// `x[NANN]` with `DEFINE NANN 10`.
    Define(Ident),
}

/// One declaration in PARAMETER, ASSIGNED, STATE or CONSTANT. Which optional
/// parts may appear depends on the block; the parser accepts the union and
/// keeps what it saw:
/// `name[dim] = value FROM lo TO hi START s (units) <lo, hi> <tolerance>`.
#[derive(Debug, Clone, Serialize)]
pub struct VarDecl {
    /// The declared name.
    pub name: Ident,
    /// `[n]` after the name.
    pub array: Option<ArrayDim>,
    /// `= value` (PARAMETER, CONSTANT).
    pub value: Option<Number>,
    /// `FROM lo TO hi` (STATE, ASSIGNED).
    pub from_to: Option<(Number, Number)>,
    /// `START value` (STATE, ASSIGNED).
    pub start: Option<Number>,
    /// `(units)`.
    pub units: Option<Units>,
    /// `<lo, hi>` (PARAMETER).
    pub limits: Option<(Number, Number)>,
    /// `<tolerance>` (STATE).
    pub tolerance: Option<Number>,
    /// The whole declaration.
    pub span: Span,
}

/// `[SWEEP] t FROM 0 TO 1 WITH 1 [START 0] (ms)` in INDEPENDENT.
#[derive(Debug, Clone, Serialize)]
pub struct IndependentDecl {
    /// The independent variable (NEURON accepts only `t`).
    pub name: Ident,
    /// FROM value.
    pub from: Number,
    /// TO value.
    pub to: Number,
    /// WITH value.
    pub with: Number,
    /// START value.
    pub start: Option<Number>,
    /// Units.
    pub units: Option<Units>,
    /// True when preceded by SWEEP.
    pub sweep: bool,
    /// The whole declaration.
    pub span: Span,
}

/// Which keyword introduces a [`SolvableBlock`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SolvableKind {
    /// `DERIVATIVE name { x' = … }`.
    Derivative,
    /// `KINETIC name { ~ … }`.
    Kinetic,
    /// `LINEAR name { ~ … = … }`.
    Linear,
    /// `NONLINEAR name { ~ … = … }`.
    NonLinear,
    /// `DISCRETE name { … }`.
    Discrete,
    /// `PARTIAL name { … }` (parsed only).
    Partial,
}

/// A block that SOLVE can name.
#[derive(Debug, Clone, Serialize)]
pub struct SolvableBlock {
    /// Which keyword.
    pub kind: SolvableKind,
    /// The block's name.
    pub name: Ident,
    /// `SOLVEFOR a, b` (KINETIC, LINEAR, NONLINEAR); empty when absent.
    pub solvefor: Vec<Ident>,
    /// The body.
    pub body: Block,
}

/// A formal argument: `name (units)`.
#[derive(Debug, Clone, Serialize)]
pub struct Arg {
    /// The argument name.
    pub name: Ident,
    /// Its units, if given.
    pub units: Option<Units>,
    /// Name and units.
    pub span: Span,
}

/// `PROCEDURE name(args) { … }`.
#[derive(Debug, Clone, Serialize)]
pub struct Procedure {
    /// The procedure's name.
    pub name: Ident,
    /// Formal arguments.
    pub args: Vec<Arg>,
    /// Units after the argument list (allowed, and ignored, by nocmodl).
    pub units: Option<Units>,
    /// The body.
    pub body: Block,
}

/// `FUNCTION name(args) (units) { … }`. The body assigns the function's name
/// to set the return value.
#[derive(Debug, Clone, Serialize)]
pub struct Function {
    /// The function's name.
    pub name: Ident,
    /// Formal arguments.
    pub args: Vec<Arg>,
    /// Return units.
    pub units: Option<Units>,
    /// The body.
    pub body: Block,
}

/// `FUNCTION_TABLE name(args) (units)`: data supplied at run time.
#[derive(Debug, Clone, Serialize)]
pub struct FunctionTable {
    /// The table function's name.
    pub name: Ident,
    /// Formal arguments.
    pub args: Vec<Arg>,
    /// Return units.
    pub units: Option<Units>,
}

/// `NET_RECEIVE(args) { … }`.
#[derive(Debug, Clone, Serialize)]
pub struct NetReceive {
    /// Formal arguments (the weight vector); `flag` is implicit.
    pub args: Vec<Arg>,
    /// The body (may contain an `INITIAL { }` statement).
    pub body: Block,
}

/// BEFORE or AFTER.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum BaWhen {
    /// `BEFORE`.
    Before,
    /// `AFTER`.
    After,
}

/// The phase a BEFORE/AFTER block attaches to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum BaPhase {
    /// `BREAKPOINT`.
    Breakpoint,
    /// `SOLVE`.
    Solve,
    /// `INITIAL`.
    Initial,
    /// `STEP`.
    Step,
}

/// `BEFORE|AFTER BREAKPOINT|SOLVE|INITIAL|STEP { … }`.
#[derive(Debug, Clone, Serialize)]
pub struct BeforeAfter {
    /// BEFORE or AFTER.
    pub when: BaWhen,
    /// Which phase.
    pub phase: BaPhase,
    /// The body.
    pub body: Block,
}

/// `VERBATIM … ENDVERBATIM`: C/C++ text kept as written.
#[derive(Debug, Clone, Serialize)]
pub struct Verbatim {
    /// The text between the keywords, exactly as written.
    pub text: String,
    /// The span of that text (not including the keywords).
    pub span: Span,
}

/// One name in a LOCAL declaration: `a` or `a[3]`.
#[derive(Debug, Clone, Serialize)]
pub struct LocalVar {
    /// The local's name.
    pub name: Ident,
    /// Array size, if any.
    pub array: Option<ArrayDim>,
}

/// A `{ … }` statement list.
#[derive(Debug, Clone, Serialize)]
pub struct Block {
    /// Statements in order.
    pub stmts: Vec<Stmt>,
    /// From `{` to `}`.
    pub span: Span,
}

/// One statement.
#[derive(Debug, Clone, Serialize)]
pub struct Stmt {
    /// What it does.
    pub kind: StmtKind,
    /// The whole statement.
    pub span: Span,
}

/// Reaction arrows in KINETIC blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ReactOp {
    /// `<->` with forward and backward rates.
    Bidirectional,
    /// `->`: a one-way flux (nocmodl: `~ A -> (rate)`; the NMODL framework also
    /// allows products).
    Forward,
    /// `<<`: an explicit flux `~ ca << (f)`.
    Flux,
}

/// One term of a reaction or CONSERVE: `2 A` or `c[i]`.
#[derive(Debug, Clone, Serialize)]
pub struct ReactTerm {
    /// Stoichiometric coefficient (1 when not written).
    pub coef: u32,
    /// The species.
    pub name: Ident,
    /// Array index, for `c[i]`.
    pub index: Option<Expr>,
    /// Coefficient, name and index.
    pub span: Span,
}

/// `~ lhs <-> rhs (kf, kb)`, `~ lhs -> (k)`, `~ lhs << (f)`.
#[derive(Debug, Clone, Serialize)]
pub struct Reaction {
    /// Left-hand species.
    pub lhs: Vec<ReactTerm>,
    /// The arrow.
    pub op: ReactOp,
    /// Right-hand species (empty for `<<` and nocmodl's `->`).
    pub rhs: Vec<ReactTerm>,
    /// Rate expressions: two for `<->`, one for `->` and `<<`.
    pub rates: Vec<Expr>,
}

/// One `WATCH (lhs > rhs) flag`.
#[derive(Debug, Clone, Serialize)]
pub struct Watch {
    /// The condition, a `>` or `<` comparison.
    pub cond: Expr,
    /// The flag sent to NET_RECEIVE.
    pub flag: Expr,
    /// From `(` to the flag.
    pub span: Span,
}

/// One `else if (cond) { … }` branch.
#[derive(Debug, Clone, Serialize)]
pub struct ElseIf {
    /// The condition.
    pub cond: Expr,
    /// The body.
    pub body: Block,
    /// From `else` to `}`.
    pub span: Span,
}

/// The statement kinds.
#[derive(Debug, Clone, Serialize)]
pub enum StmtKind {
    /// `lhs = rhs`, where lhs is a [`ExprKind::Name`] or [`ExprKind::Indexed`].
    Assign {
        /// The assigned variable.
        lhs: Expr,
        /// The value.
        rhs: Expr,
    },
    /// `x' = e`, `x'' = e`, `x'[i] = e`.
    DiffEq {
        /// The state (without primes).
        state: Ident,
        /// Number of primes (1 or 2).
        order: u8,
        /// Array index, if any.
        index: Option<Expr>,
        /// The right-hand side.
        rhs: Expr,
    },
    /// A KINETIC reaction.
    Reaction(Reaction),
    /// `~ e1 = e2` in LINEAR or NONLINEAR.
    LinearEq {
        /// Left side.
        lhs: Expr,
        /// Right side.
        rhs: Expr,
    },
    /// `CONSERVE a + b + 2c = total`.
    Conserve {
        /// The conserved species with coefficients.
        terms: Vec<ReactTerm>,
        /// The conserved total.
        rhs: Expr,
    },
    /// `COMPARTMENT [i,] volume { states }`.
    Compartment {
        /// The loop index name for the indexed form.
        index: Option<Ident>,
        /// The volume expression.
        volume: Expr,
        /// The states it applies to.
        states: Vec<Ident>,
    },
    /// `LONGITUDINAL_DIFFUSION [i,] rate { states }`.
    LongitudinalDiffusion {
        /// The loop index name for the indexed form.
        index: Option<Ident>,
        /// The diffusion-rate expression.
        rate: Expr,
        /// The states it applies to.
        states: Vec<Ident>,
    },
    /// `SOLVE name [METHOD m] [STEADYSTATE m] [IFERROR { … }]`.
    Solve {
        /// The solved block.
        name: Ident,
        /// The METHOD name.
        method: Option<Ident>,
        /// The STEADYSTATE method name.
        steadystate: Option<Ident>,
        /// An IFERROR block (NMODL framework syntax).
        if_error: Option<Block>,
    },
    /// `if (c) { } else if (c) { } else { }`.
    If {
        /// The condition.
        cond: Expr,
        /// The first branch.
        then_block: Block,
        /// `else if` branches, in order.
        else_ifs: Vec<ElseIf>,
        /// The final `else` branch.
        else_block: Option<Block>,
    },
    /// `while (c) { }`.
    While {
        /// The condition.
        cond: Expr,
        /// The body.
        body: Block,
    },
    /// `FROM i = a TO b [BY c] { }` (bounds inclusive).
    From {
        /// The integer loop variable (local to the loop).
        var: Ident,
        /// Start.
        from: Expr,
        /// Inclusive end.
        to: Expr,
        /// Step.
        by: Option<Expr>,
        /// The body.
        body: Block,
    },
    /// `LOCAL a, b[3]`.
    Local(Vec<LocalVar>),
    /// `TABLE a, b DEPEND x, y FROM lo TO hi WITH n`.
    Table {
        /// Tabulated variables (empty in a FUNCTION: the return value is tabulated).
        names: Vec<Ident>,
        /// DEPEND names.
        depend: Vec<Ident>,
        /// Lower bound of the argument.
        from: Expr,
        /// Upper bound.
        to: Expr,
        /// Number of intervals.
        with: Expr,
    },
    /// `WATCH (a > b) flag, (c < d) flag2`.
    Watch(Vec<Watch>),
    /// `FOR_NETCONS(args) { }`.
    ForNetcons {
        /// Arguments like NET_RECEIVE's.
        args: Vec<Arg>,
        /// The body.
        body: Block,
    },
    /// `PROTECT stmt`.
    Protect(Box<Stmt>),
    /// `MUTEXLOCK`.
    MutexLock,
    /// `MUTEXUNLOCK`.
    MutexUnlock,
    /// `VERBATIM … ENDVERBATIM` inside a block.
    Verbatim(Verbatim),
    /// A call used as a statement (`net_send(0, 1)`, `rates(v)`, `printf("…")`).
    Expr(Expr),
    /// A nested `{ }` block.
    Block(Block),
    /// `UNITSON`.
    UnitsOn,
    /// `UNITSOFF`.
    UnitsOff,
    /// `INITIAL { }` inside NET_RECEIVE.
    Initial(Block),
    /// `CONDUCTANCE g [USEION x]` as a BREAKPOINT statement (nocmodl's form).
    Conductance(Conductance),
    /// `LAG name BY delay` (rare).
    Lag {
        /// The lagged variable.
        name: Ident,
        /// The delay name.
        by: Ident,
    },
}

/// An expression.
#[derive(Debug, Clone, Serialize)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// The whole expression.
    pub span: Span,
}

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum UnaryOp {
    /// `-x`.
    Neg,
    /// `!x`.
    Not,
}

/// Binary operators, loosest first: `||`; `&&`; comparisons; `+ -`;
/// `* / %`; (unary `-` and `!`); `^` (right-associative).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum BinaryOp {
    /// `||`.
    Or,
    /// `&&`.
    And,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `==`.
    Eq,
    /// `!=`.
    Ne,
    /// `+`.
    Add,
    /// `-`.
    Sub,
    /// `*`.
    Mul,
    /// `/`.
    Div,
    /// `%`.
    Rem,
    /// `^` (power).
    Pow,
}

/// Expression kinds.
#[derive(Debug, Clone, Serialize)]
pub enum ExprKind {
    /// A numeric literal (units written after it are dropped).
    Number(f64),
    /// A variable.
    Name(Ident),
    /// `x[i]`.
    Indexed(Ident, Box<Expr>),
    /// `f(a, b)`.
    Call(Ident, Vec<Expr>),
    /// A string literal (only as a call argument, e.g. `printf("%g\n", x)`),
    /// without its quotes and with escapes kept as written.
    String(String),
    /// `-x`, `!x`.
    Unary(UnaryOp, Box<Expr>),
    /// `a op b`.
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `(e)`.
    Paren(Box<Expr>),
}
