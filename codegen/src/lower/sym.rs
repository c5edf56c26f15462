//! Symbolic expressions: the lowering's intermediate form between the AST and
//! IR expressions. Names are already resolved to storage ([`Var`]), so the
//! solvers can differentiate, substitute and test linearity before anything
//! is emitted. Emission ([`emit`]) appends IR expressions in evaluation order.

use crate::ir::{
    BinaryOp, Body, EnvVar, Expression, FieldDecl, Function, GlobalDecl, Handle, IonDecl, IonVar,
    Local, LocalArray, MathFn, Place, PointerDecl, Type, UnaryOp,
};

/// A storage location or simulator value an expression can read.
#[derive(Clone, Debug, PartialEq)]
pub enum Var {
    /// A field of the current instance, with its element index for arrays.
    Field(Handle<FieldDecl>, Option<Box<Sym>>),
    /// A global, with its element index for arrays.
    Global(Handle<GlobalDecl>, Option<Box<Sym>>),
    /// A local of the body being built.
    Local(Handle<Local>),
    /// An element of a local array.
    LocalArray(Handle<LocalArray>, Box<Sym>),
    /// The node's area.
    NodeArea,
    /// The node's diameter.
    NodeDiam,
    /// An ion column.
    Ion(Handle<IonDecl>, IonVar),
    /// An ion's valence.
    IonValence(Handle<IonDecl>),
    /// A POINTER target.
    Pointer(Handle<PointerDecl>),
    /// A NET_RECEIVE weight-vector element.
    Weight(u32),
    /// A simulator scalar.
    Env(EnvVar),
}

impl Var {
    /// The IR place of a storable or loadable variable (not locals or env).
    pub fn place(&self, body: &mut Body) -> Option<Place> {
        Some(match self {
            Var::Field(f, i) => Place::Field {
                field: *f,
                index: i.as_ref().map(|e| emit(e, body)),
            },
            Var::Global(g, i) => Place::Global {
                global: *g,
                index: i.as_ref().map(|e| emit(e, body)),
            },
            Var::LocalArray(a, i) => Place::LocalArray {
                array: *a,
                index: emit(i, body),
            },
            Var::NodeArea => Place::NodeArea,
            Var::NodeDiam => Place::NodeDiam,
            Var::Ion(ion, var) => Place::Ion {
                ion: *ion,
                var: *var,
            },
            Var::IonValence(ion) => Place::IonValence(*ion),
            Var::Pointer(p) => Place::Pointer(*p),
            Var::Weight(k) => Place::Weight(*k),
            Var::Local(_) | Var::Env(_) => return None,
        })
    }
}

/// A symbolic expression over [`Var`]s.
#[derive(Clone, Debug, PartialEq)]
pub enum Sym {
    /// An f64 constant.
    Num(f64),
    /// A bool constant.
    Bool(bool),
    /// A variable read.
    Var(Var),
    /// A unary operator.
    Unary(UnaryOp, Box<Sym>),
    /// A binary operator.
    Binary(BinaryOp, Box<Sym>, Box<Sym>),
    /// `c ? a : b`.
    Select(Box<Sym>, Box<Sym>, Box<Sym>),
    /// A math built-in.
    Math(MathFn, Vec<Sym>),
    /// A FUNCTION call.
    Call(Handle<Function>, Vec<Sym>),
    /// A uniform deviate.
    Random,
    /// bool → f64.
    BoolToF64(Box<Sym>),
    /// f64 → bool.
    F64ToBool(Box<Sym>),
}

impl Sym {
    /// A variable.
    pub fn var(v: Var) -> Sym {
        Sym::Var(v)
    }

    /// `l op r`.
    pub fn bin(op: BinaryOp, l: Sym, r: Sym) -> Sym {
        Sym::Binary(op, Box::new(l), Box::new(r))
    }

    /// `-x`.
    pub fn neg(x: Sym) -> Sym {
        Sym::Unary(UnaryOp::Neg, Box::new(x))
    }

    /// The value type.
    pub fn ty(&self) -> Type {
        match self {
            Sym::Bool(_) | Sym::F64ToBool(_) => Type::Bool,
            Sym::Unary(UnaryOp::Not, _) => Type::Bool,
            Sym::Binary(op, ..) => op.types().1,
            Sym::Select(_, a, _) => a.ty(),
            Sym::Var(Var::Local(_)) => Type::F64,
            _ => Type::F64,
        }
    }

    /// This expression as an f64 (bool → 1/0).
    pub fn as_f64(self) -> Sym {
        match self.ty() {
            Type::F64 => self,
            Type::Bool => Sym::BoolToF64(Box::new(self)),
        }
    }

    /// This expression as a bool (f64 → `!= 0`).
    pub fn as_bool(self) -> Sym {
        match self.ty() {
            Type::Bool => self,
            Type::F64 => Sym::F64ToBool(Box::new(self)),
        }
    }

    /// Whether this is an operation (not a constant or a variable) without
    /// effects: no FUNCTION call and no random deviate anywhere, so that
    /// computing it once and reusing the value is what computing it twice
    /// would give.
    pub fn is_pure_operation(&self) -> bool {
        fn pure(s: &Sym) -> bool {
            match s {
                Sym::Num(_) | Sym::Bool(_) => true,
                Sym::Random | Sym::Call(..) => false,
                Sym::Var(x) => match x {
                    Var::Field(_, Some(i)) | Var::Global(_, Some(i)) => pure(i),
                    Var::LocalArray(_, i) => pure(i),
                    _ => true,
                },
                Sym::Unary(_, a) | Sym::BoolToF64(a) | Sym::F64ToBool(a) => pure(a),
                Sym::Binary(_, a, b) => pure(a) && pure(b),
                Sym::Select(c, a, b) => pure(c) && pure(a) && pure(b),
                Sym::Math(_, args) => args.iter().all(pure),
            }
        }
        !matches!(self, Sym::Num(_) | Sym::Bool(_) | Sym::Var(_)) && pure(self)
    }

    /// Whether the expression reads `v` anywhere (including indices).
    pub fn depends_on(&self, v: &Var) -> bool {
        match self {
            Sym::Num(_) | Sym::Bool(_) | Sym::Random => false,
            Sym::Var(x) => {
                x == v
                    || match x {
                        Var::Field(_, Some(i)) | Var::Global(_, Some(i)) => i.depends_on(v),
                        Var::LocalArray(_, i) => i.depends_on(v),
                        _ => false,
                    }
            }
            Sym::Unary(_, a) | Sym::BoolToF64(a) | Sym::F64ToBool(a) => a.depends_on(v),
            Sym::Binary(_, a, b) => a.depends_on(v) || b.depends_on(v),
            Sym::Select(c, a, b) => c.depends_on(v) || a.depends_on(v) || b.depends_on(v),
            Sym::Math(_, args) | Sym::Call(_, args) => args.iter().any(|a| a.depends_on(v)),
        }
    }

    /// Replaces every read of `v` by `with`.
    pub fn substitute(&self, v: &Var, with: &Sym) -> Sym {
        let s = |x: &Sym| Box::new(x.substitute(v, with));
        match self {
            Sym::Var(x) if x == v => with.clone(),
            Sym::Var(Var::Field(f, Some(i))) => Sym::Var(Var::Field(*f, Some(s(i)))),
            Sym::Var(Var::Global(g, Some(i))) => Sym::Var(Var::Global(*g, Some(s(i)))),
            Sym::Var(Var::LocalArray(a, i)) => Sym::Var(Var::LocalArray(*a, s(i))),
            Sym::Num(_) | Sym::Bool(_) | Sym::Random | Sym::Var(_) => self.clone(),
            Sym::Unary(op, a) => Sym::Unary(*op, s(a)),
            Sym::BoolToF64(a) => Sym::BoolToF64(s(a)),
            Sym::F64ToBool(a) => Sym::F64ToBool(s(a)),
            Sym::Binary(op, a, b) => Sym::Binary(*op, s(a), s(b)),
            Sym::Select(c, a, b) => Sym::Select(s(c), s(a), s(b)),
            Sym::Math(f, args) => {
                Sym::Math(*f, args.iter().map(|a| a.substitute(v, with)).collect())
            }
            Sym::Call(f, args) => {
                Sym::Call(*f, args.iter().map(|a| a.substitute(v, with)).collect())
            }
        }
    }

    /// The derivative with respect to `v`, simplified; `None` when the
    /// expression depends on `v` through something that cannot be
    /// differentiated symbolically (a FUNCTION call, a comparison, an index).
    pub fn diff(&self, v: &Var) -> Option<Sym> {
        use BinaryOp::*;
        if !self.depends_on(v) {
            return Some(Sym::Num(0.0));
        }
        let d = match self {
            Sym::Var(x) if x == v => Sym::Num(1.0),
            Sym::Unary(UnaryOp::Neg, a) => simplify(Sym::neg(a.diff(v)?)),
            Sym::Binary(op, a, b) => {
                let (da, db) = (a.diff(v)?, b.diff(v)?);
                let (a, b) = ((**a).clone(), (**b).clone());
                match op {
                    Add | Sub => Sym::bin(*op, da, db),
                    Mul => Sym::bin(Add, Sym::bin(Mul, da, b), Sym::bin(Mul, a, db)),
                    Div => {
                        if is_zero(&db) {
                            Sym::bin(Div, da, b)
                        } else {
                            // (da*b - a*db) / b^2
                            Sym::bin(
                                Div,
                                Sym::bin(Sub, Sym::bin(Mul, da, b.clone()), Sym::bin(Mul, a, db)),
                                Sym::bin(Mul, b.clone(), b),
                            )
                        }
                    }
                    Pow => {
                        if is_zero(&db) {
                            // n * a^(n-1) * da
                            Sym::bin(
                                Mul,
                                Sym::bin(
                                    Mul,
                                    b.clone(),
                                    Sym::bin(Pow, a, Sym::bin(Sub, b, Sym::Num(1.0))),
                                ),
                                da,
                            )
                        } else {
                            // a^b * (db ln a + b da / a)
                            Sym::bin(
                                Mul,
                                Sym::bin(Pow, a.clone(), b.clone()),
                                Sym::bin(
                                    Add,
                                    Sym::bin(Mul, db, Sym::Math(MathFn::Log, vec![a.clone()])),
                                    Sym::bin(Div, Sym::bin(Mul, b, da), a),
                                ),
                            )
                        }
                    }
                    _ => return None,
                }
            }
            Sym::Math(f, args) => {
                let a = args.first()?.clone();
                let da = a.diff(v)?;
                let inner = match f {
                    MathFn::Exp => Sym::Math(MathFn::Exp, vec![a]),
                    MathFn::Log => Sym::bin(Div, Sym::Num(1.0), a),
                    MathFn::Sqrt => Sym::bin(Div, Sym::Num(0.5), Sym::Math(MathFn::Sqrt, vec![a])),
                    MathFn::Sin => Sym::Math(MathFn::Cos, vec![a]),
                    MathFn::Cos => Sym::neg(Sym::Math(MathFn::Sin, vec![a])),
                    MathFn::Tanh => {
                        let t = Sym::Math(MathFn::Tanh, vec![a]);
                        Sym::bin(Sub, Sym::Num(1.0), Sym::bin(Mul, t.clone(), t))
                    }
                    MathFn::Pow => {
                        let p = Sym::bin(Pow, args[0].clone(), args[1].clone());
                        return p.diff(v);
                    }
                    _ => return None,
                };
                Sym::bin(Mul, inner, da)
            }
            _ => return None,
        };
        Some(simplify(d))
    }

    /// `(a, b)` with `self == a*v + b`, both free of `v`, when the expression
    /// is linear in `v`.
    pub fn linear_in(&self, v: &Var) -> Option<(Sym, Sym)> {
        let a = self.diff(v)?;
        if a.depends_on(v) {
            return None;
        }
        let b = simplify(self.substitute(v, &Sym::Num(0.0)));
        Some((a, b))
    }
}

/// What nocmodl's `diffeq.ypp` grammar derives from a DERIVATIVE right-hand
/// side `f` for the state `v`, which is what its `cnexp` uses:
/// the derivative `de = ∂f/∂v` (`None` when it cannot be formed: `v` inside
/// a function argument or a power, or in a denominator — then nocmodl falls
/// back to derivimplicit), and the split `f = a·v + b` (`None` when `f` is
/// not linear in `v` — nocmodl then still uses `de` and drops `b`).
pub struct CnexpParts {
    /// `∂f/∂v`, possibly depending on `v`.
    pub de: Sym,
    /// `(a, b)` with `f = a·v + b`.
    pub linear: Option<(Sym, Sym)>,
}

/// The grammar's four-slot value of a subexpression: the expression, its
/// derivative, its linear coefficient and its state-free part; `None` in a
/// slot is nocmodl's `"0.0"`.
struct Parts {
    de: Option<Sym>,
    a: Option<Sym>,
    b: Option<Sym>,
}

/// Follows `diffeq.ypp` rule by rule (see [`CnexpParts`]). `Err(())` is its
/// `d_invalid`.
pub fn cnexp_parts(f: &Sym, v: &Var) -> Result<CnexpParts, ()> {
    let mut eq_invalid = false;
    let p = parts(f, v, &mut eq_invalid)?;
    let de = p.de.unwrap_or(Sym::Num(0.0));
    let linear = if eq_invalid {
        None
    } else {
        Some((p.a.unwrap_or(Sym::Num(0.0)), p.b.unwrap_or(Sym::Num(0.0))))
    };
    Ok(CnexpParts { de, linear })
}

fn parts(f: &Sym, v: &Var, eq_invalid: &mut bool) -> Result<Parts, ()> {
    use BinaryOp::*;
    let mul = |x: Sym, y: Sym| Sym::bin(Mul, x, y);
    Ok(match f {
        Sym::Var(x) if x == v => Parts {
            de: Some(Sym::Num(1.0)),
            a: Some(Sym::Num(1.0)),
            b: None,
        },
        _ if !f.depends_on(v) => Parts {
            de: None,
            a: None,
            b: if matches!(f, Sym::Num(z) if *z == 0.0) {
                None
            } else {
                Some(f.clone())
            },
        },
        Sym::Unary(UnaryOp::Neg, e) => {
            let p = parts(e, v, eq_invalid)?;
            Parts {
                de: p.de.map(Sym::neg),
                a: p.a.map(Sym::neg),
                b: p.b.map(Sym::neg),
            }
        }
        Sym::Binary(op @ (Add | Sub), l, r) => {
            let (p, q) = (parts(l, v, eq_invalid)?, parts(r, v, eq_invalid)?);
            let join = |x: Option<Sym>, y: Option<Sym>| match (x, y) {
                (Some(x), Some(y)) => Some(Sym::bin(*op, x, y)),
                (Some(x), None) => Some(x),
                (None, Some(y)) => Some(if *op == Sub { Sym::neg(y) } else { y }),
                (None, None) => None,
            };
            Parts {
                de: join(p.de, q.de),
                a: join(p.a, q.a),
                b: join(p.b, q.b),
            }
        }
        Sym::Binary(Mul, l, r) => {
            let (p, q) = (parts(l, v, eq_invalid)?, parts(r, v, eq_invalid)?);
            let (e1, e2) = ((**l).clone(), (**r).clone());
            let de = match (p.de, q.de) {
                (Some(d1), Some(d2)) => Some(Sym::bin(Add, mul(d1, e2), mul(e1, d2))),
                (Some(d1), None) => Some(mul(d1, e2)),
                (None, Some(d2)) => Some(mul(e1, d2)),
                (None, None) => None,
            };
            let a = match (&p.a, &q.a) {
                (Some(_), Some(_)) => {
                    *eq_invalid = true;
                    None
                }
                (Some(a1), None) => q.b.clone().map(|b2| mul(a1.clone(), b2)),
                (None, Some(a2)) => p.b.clone().map(|b1| mul(b1, a2.clone())),
                (None, None) => None,
            };
            let b = match (p.b, q.b) {
                (Some(b1), Some(b2)) => Some(mul(b1, b2)),
                _ => None,
            };
            Parts { de, a, b }
        }
        Sym::Binary(Div, l, r) => {
            let (p, q) = (parts(l, v, eq_invalid)?, parts(r, v, eq_invalid)?);
            if q.de.is_some() {
                return Err(());
            }
            let e2 = (**r).clone();
            if q.a.is_some() {
                *eq_invalid = true;
            }
            Parts {
                de: p.de.map(|d| Sym::bin(Div, d, e2.clone())),
                a: if q.a.is_some() {
                    None
                } else {
                    p.a.map(|a| Sym::bin(Div, a, e2.clone()))
                },
                b: p.b.map(|b| Sym::bin(Div, b, e2)),
            }
        }
        // Calls, powers (nocmodl's pow()), comparisons, selects with the
        // state inside: the grammar cannot differentiate them.
        _ => return Err(()),
    })
}

fn is_zero(s: &Sym) -> bool {
    matches!(s, Sym::Num(x) if *x == 0.0)
}

fn is_one(s: &Sym) -> bool {
    matches!(s, Sym::Num(x) if *x == 1.0)
}

/// Removes the identities a derivative or a substitution introduces
/// (`0 + x`, `x * 1`, `0 * x`, `x - 0`, `--x`) and folds constant operands.
/// Folding evaluates with the same IEEE operations the kernels would.
pub fn simplify(s: Sym) -> Sym {
    use BinaryOp::*;
    match s {
        Sym::Unary(UnaryOp::Neg, a) => match simplify(*a) {
            Sym::Num(x) => Sym::Num(-x),
            Sym::Unary(UnaryOp::Neg, b) => *b,
            a => Sym::neg(a),
        },
        Sym::Binary(op, a, b) => {
            let (a, b) = (simplify(*a), simplify(*b));
            match (op, &a, &b) {
                (Add, Sym::Num(x), Sym::Num(y)) => Sym::Num(x + y),
                (Sub, Sym::Num(x), Sym::Num(y)) => Sym::Num(x - y),
                (Mul, Sym::Num(x), Sym::Num(y)) => Sym::Num(x * y),
                (Div, Sym::Num(x), Sym::Num(y)) if *y != 0.0 => Sym::Num(x / y),
                (Add, _, _) if is_zero(&a) => b,
                (Add | Sub, _, _) if is_zero(&b) => a,
                (Sub, _, _) if is_zero(&a) => simplify(Sym::neg(b)),
                (Mul, _, _) if is_zero(&a) || is_zero(&b) => Sym::Num(0.0),
                (Mul, _, _) if is_one(&a) => b,
                (Mul | Div, _, _) if is_one(&b) => a,
                (Div, _, _) if is_zero(&a) => Sym::Num(0.0),
                (Pow, _, _) if is_one(&b) => a,
                _ => Sym::bin(op, a, b),
            }
        }
        Sym::Unary(op, a) => Sym::Unary(op, Box::new(simplify(*a))),
        Sym::Select(c, a, b) => Sym::Select(
            Box::new(simplify(*c)),
            Box::new(simplify(*a)),
            Box::new(simplify(*b)),
        ),
        Sym::Math(f, args) => Sym::Math(f, args.into_iter().map(simplify).collect()),
        Sym::Call(f, args) => Sym::Call(f, args.into_iter().map(simplify).collect()),
        other => other,
    }
}

/// Appends the IR expressions computing `s` to `body` (children first) and
/// returns the root.
pub fn emit(s: &Sym, body: &mut Body) -> Handle<Expression> {
    let e = match s {
        Sym::Num(x) => Expression::Constant(*x),
        Sym::Bool(b) => Expression::Bool(*b),
        Sym::Var(Var::Local(l)) => Expression::Local(*l),
        Sym::Var(Var::Env(e)) => Expression::Env(*e),
        Sym::Var(v) => {
            let place = v.place(body).expect("every non-local variable has a place");
            Expression::Load(place)
        }
        Sym::Unary(op, a) => {
            let arg = emit(a, body);
            Expression::Unary { op: *op, arg }
        }
        Sym::Binary(op, a, b) => {
            let left = emit(a, body);
            let right = emit(b, body);
            Expression::Binary {
                op: *op,
                left,
                right,
            }
        }
        Sym::Select(c, a, b) => {
            let condition = emit(c, body);
            let accept = emit(a, body);
            let reject = emit(b, body);
            Expression::Select {
                condition,
                accept,
                reject,
            }
        }
        Sym::Math(f, args) => {
            let args = args.iter().map(|a| emit(a, body)).collect();
            Expression::Math { fun: *f, args }
        }
        Sym::Call(f, args) => {
            let args = args.iter().map(|a| emit(a, body)).collect();
            Expression::Call { function: *f, args }
        }
        Sym::Random => Expression::RandomUniform,
        Sym::BoolToF64(a) => Expression::BoolToF64(emit(a, body)),
        Sym::F64ToBool(a) => Expression::F64ToBool(emit(a, body)),
    };
    body.expr(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x() -> Var {
        Var::Field(Handle::from_index(0), None)
    }
    fn y() -> Sym {
        Sym::Var(Var::Field(Handle::from_index(1), None))
    }

    #[test]
    fn hh_gate_is_linear_with_nocmodl_coefficients() {
        // (inf - x) / tau
        let f = Sym::bin(
            BinaryOp::Div,
            Sym::bin(BinaryOp::Sub, y(), Sym::var(x())),
            Sym::Var(Var::Field(Handle::from_index(2), None)),
        );
        let (a, b) = f.linear_in(&x()).unwrap();
        assert_eq!(
            a,
            Sym::bin(
                BinaryOp::Div,
                Sym::Num(-1.0),
                Sym::Var(Var::Field(Handle::from_index(2), None))
            )
        );
        assert_eq!(
            b,
            Sym::bin(
                BinaryOp::Div,
                y(),
                Sym::Var(Var::Field(Handle::from_index(2), None))
            )
        );
    }

    #[test]
    fn nonlinear_terms_are_detected() {
        let sq = Sym::bin(BinaryOp::Mul, Sym::var(x()), Sym::var(x()));
        assert!(sq.linear_in(&x()).is_none());
        let e = Sym::Math(MathFn::Exp, vec![Sym::var(x())]);
        assert!(e.linear_in(&x()).is_none());
        let c = Sym::Call(Handle::from_index(0), vec![Sym::var(x())]);
        assert!(c.diff(&x()).is_none());
        // A call that does not involve x is a constant.
        let c = Sym::Call(Handle::from_index(0), vec![y()]);
        assert_eq!(c.diff(&x()), Some(Sym::Num(0.0)));
    }

    #[test]
    fn derivatives_match_finite_differences() {
        // f(x) = exp(2x) * x^3 / (1 + x)
        let xs = || Sym::var(x());
        let f = Sym::bin(
            BinaryOp::Div,
            Sym::bin(
                BinaryOp::Mul,
                Sym::Math(
                    MathFn::Exp,
                    vec![Sym::bin(BinaryOp::Mul, Sym::Num(2.0), xs())],
                ),
                Sym::bin(BinaryOp::Pow, xs(), Sym::Num(3.0)),
            ),
            Sym::bin(BinaryOp::Add, Sym::Num(1.0), xs()),
        );
        let df = f.diff(&x()).unwrap();
        let eval = |s: &Sym, at: f64| eval(s, at);
        for at in [0.3, 1.1, -0.4] {
            let h = 1e-6;
            let fd = (eval(&f, at + h) - eval(&f, at - h)) / (2.0 * h);
            let exact = eval(&df, at);
            assert!(
                (fd - exact).abs() < 1e-6 * exact.abs().max(1.0),
                "{fd} {exact}"
            );
        }
    }

    fn eval(s: &Sym, at: f64) -> f64 {
        match s {
            Sym::Num(v) => *v,
            Sym::Var(_) => at,
            Sym::Unary(UnaryOp::Neg, a) => -eval(a, at),
            Sym::Binary(op, a, b) => {
                let (a, b) = (eval(a, at), eval(b, at));
                match op {
                    BinaryOp::Add => a + b,
                    BinaryOp::Sub => a - b,
                    BinaryOp::Mul => a * b,
                    BinaryOp::Div => a / b,
                    BinaryOp::Pow => a.powf(b),
                    _ => unreachable!(),
                }
            }
            Sym::Math(MathFn::Exp, a) => eval(&a[0], at).exp(),
            Sym::Math(MathFn::Log, a) => eval(&a[0], at).ln(),
            _ => unreachable!("{s:?}"),
        }
    }
}
