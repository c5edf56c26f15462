//! Random well-typed kernel modules for the property tests of both back
//! ends (`agree.rs`: interpreter vs JIT; `rust_backend.rs`: interpreter vs
//! generated Rust). The math built-ins a module may call are the caller's
//! choice: all of them, or [`BIT_EXACT_MATH`] (without `erf` and `erfc`,
//! which the Rust back end takes from the C library and the interpreter from
//! the `libm` crate; they agree to one ulp, checked in `rust_backend.rs`).
#![allow(dead_code)]

use codegen::ir::*;
use proptest::prelude::*;

/// Every math built-in except `erf` and `erfc`.
pub const BIT_EXACT_MATH: [MathFn; 24] = {
    let mut out = [MathFn::Exp; 24];
    let mut i = 0;
    let mut k = 0;
    while i < MathFn::ALL.len() {
        if !matches!(MathFn::ALL[i], MathFn::Erf | MathFn::Erfc) {
            out[k] = MathFn::ALL[i];
            k += 1;
        }
        i += 1;
    }
    out
};

/// A generated f64 expression.
#[derive(Clone, Debug)]
pub enum GE {
    Const(f64),
    Field(u8),
    ArrField(Box<GE>),
    Global(u8),
    ArrGlobal(Box<GE>),
    Local(u8),
    Env(u8),
    NodeV,
    NodeArea,
    Ion(u8),
    Pointer,
    Valence,
    LocalArr(Box<GE>),
    Weight(u8),
    Random,
    Neg(Box<GE>),
    Bin(u8, Box<GE>, Box<GE>),
    Math(u8, Box<GE>, Box<GE>),
    Select(Box<GC>, Box<GE>, Box<GE>),
    Call(Box<GE>, Box<GE>),
    FromBool(Box<GC>),
}

/// A generated bool expression.
#[derive(Clone, Debug)]
pub enum GC {
    Lit(bool),
    Local,
    Cmp(u8, GE, GE),
    Not(Box<GC>),
    And(Box<GC>, Box<GC>),
    Or(Box<GC>, Box<GC>),
    FromF64(GE),
}

/// A generated statement.
#[derive(Clone, Debug)]
pub enum GS {
    Assign(u8, GE),
    AssignBool(GC),
    StoreField(u8, GE),
    StoreArrField(GE, GE),
    StoreGlobal(u8, GE),
    StoreArrGlobal(GE, GE),
    StoreIon(u8, GE),
    StorePointer(GE),
    StoreLocalArr(GE, GE),
    StoreWeight(u8, GE),
    Accum(u8, bool, GE),
    CallProc(GE),
    NetSend(GE, GE),
    NetEvent(GE),
    NetMove(GE),
    SetSeed(GE),
    If(GC, Vec<GS>, Vec<GS>),
    /// `l = 0; while (cond && l < 5) { body; l = l + 1 }`.
    While(GC, Vec<GS>, u8),
    /// `l = 0; while (l < bound) { body; l = l + 1 }`.
    CountedWhile(GE, Vec<GS>, u8),
    For(GE, GE, u8, Vec<GS>, u8),
    Return,
    Error(u8),
}

pub fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        6 => -100.0..100.0f64,
        1 => -2.0..2.0f64,
        1 => Just(0.0),
        1 => Just(-0.0),
        1 => Just(1.0),
        1 => Just(2.0),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(1e-300),
        1 => Just(1e300),
    ]
}

/// An array index: mostly in `0..len`, sometimes just outside.
fn index(len: u32) -> impl Strategy<Value = f64> {
    prop_oneof![
        40 => (0..len).prop_map(f64::from),
        1 => -1.5..f64::from(len) + 0.5,
        1 => Just(f64::NAN),
    ]
}

/// A loop iteration cap: mostly generous, sometimes small enough to trip.
fn cap() -> impl Strategy<Value = u8> {
    prop_oneof![
        15 => Just(200u8),
        1 => 0u8..12,
    ]
}

/// A loop bound: mostly a small constant, sometimes any expression.
fn bound() -> impl Strategy<Value = GE> {
    prop_oneof![
        8 => (-3.0..8.0f64).prop_map(GE::Const),
        1 => ge(),
    ]
}

pub fn ge() -> BoxedStrategy<GE> {
    let leaf = prop_oneof![
        3 => value().prop_map(GE::Const),
        2 => any::<u8>().prop_map(GE::Field),
        1 => any::<u8>().prop_map(GE::Global),
        3 => any::<u8>().prop_map(GE::Local),
        1 => any::<u8>().prop_map(GE::Env),
        1 => Just(GE::NodeV),
        1 => Just(GE::NodeArea),
        1 => any::<u8>().prop_map(GE::Ion),
        1 => Just(GE::Pointer),
        1 => Just(GE::Valence),
        2 => index(4).prop_map(|x| GE::LocalArr(Box::new(GE::Const(x)))),
        1 => (0u8..4).prop_map(GE::Weight),
        1 => Just(GE::Random),
        1 => index(3).prop_map(|x| GE::ArrField(Box::new(GE::Const(x)))),
        1 => index(5).prop_map(|x| GE::ArrGlobal(Box::new(GE::Const(x)))),
    ];
    leaf.prop_recursive(4, 48, 3, |inner| {
        let gc = gc(inner.clone());
        prop_oneof![
            1 => inner.clone().prop_map(|a| GE::Neg(Box::new(a))),
            6 => (0u8..5, inner.clone(), inner.clone())
                .prop_map(|(o, a, b)| GE::Bin(o, Box::new(a), Box::new(b))),
            3 => (any::<u8>(), inner.clone(), inner.clone())
                .prop_map(|(f, a, b)| GE::Math(f, Box::new(a), Box::new(b))),
            1 => (gc.clone(), inner.clone(), inner.clone())
                .prop_map(|(c, a, b)| GE::Select(Box::new(c), Box::new(a), Box::new(b))),
            1 => (inner.clone(), inner.clone()).prop_map(|(a, b)| GE::Call(Box::new(a), Box::new(b))),
            1 => gc.prop_map(|c| GE::FromBool(Box::new(c))),
        ]
    })
    .boxed()
}

fn gc(e: impl Strategy<Value = GE> + Clone + 'static) -> BoxedStrategy<GC> {
    let cmp = (0u8..6, e.clone(), e.clone()).prop_map(|(o, a, b)| GC::Cmp(o, a, b));
    let base = prop_oneof![
        1 => any::<bool>().prop_map(GC::Lit),
        1 => Just(GC::Local),
        6 => cmp,
        1 => e.prop_map(GC::FromF64),
    ];
    base.prop_recursive(2, 8, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|a| GC::Not(Box::new(a))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| GC::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner).prop_map(|(a, b)| GC::Or(Box::new(a), Box::new(b))),
        ]
    })
    .boxed()
}

pub fn gs() -> BoxedStrategy<GS> {
    let e = ge();
    let leaf = prop_oneof![
        6 => (any::<u8>(), e.clone()).prop_map(|(l, x)| GS::Assign(l, x)),
        1 => gc(e.clone()).prop_map(GS::AssignBool),
        4 => (any::<u8>(), e.clone()).prop_map(|(f, x)| GS::StoreField(f, x)),
        1 => (index(3).prop_map(GE::Const), e.clone()).prop_map(|(i, x)| GS::StoreArrField(i, x)),
        2 => (any::<u8>(), e.clone()).prop_map(|(g, x)| GS::StoreGlobal(g, x)),
        1 => (index(5).prop_map(GE::Const), e.clone()).prop_map(|(i, x)| GS::StoreArrGlobal(i, x)),
        1 => (any::<u8>(), e.clone()).prop_map(|(k, x)| GS::StoreIon(k, x)),
        1 => e.clone().prop_map(GS::StorePointer),
        2 => (index(4).prop_map(GE::Const), e.clone()).prop_map(|(i, x)| GS::StoreLocalArr(i, x)),
        1 => (0u8..4, e.clone()).prop_map(|(k, x)| GS::StoreWeight(k, x)),
        2 => (any::<u8>(), any::<bool>(), e.clone()).prop_map(|(t, s, x)| GS::Accum(t, s, x)),
        1 => e.clone().prop_map(GS::CallProc),
        1 => (e.clone(), e.clone()).prop_map(|(a, b)| GS::NetSend(a, b)),
        1 => e.clone().prop_map(GS::NetEvent),
        1 => e.clone().prop_map(GS::NetMove),
        1 => e.clone().prop_map(GS::SetSeed),
        1 => Just(GS::Return),
        1 => (1u8..5).prop_map(GS::Error).prop_filter("rare", |_| true),
    ];
    leaf.prop_recursive(3, 24, 4, move |inner| {
        let block = prop::collection::vec(inner, 0..4);
        prop_oneof![
            8 => (gc(ge()), block.clone(), block.clone()).prop_map(|(c, a, b)| GS::If(c, a, b)),
            1 => (gc(ge()), block.clone(), cap()).prop_map(|(c, b, n)| GS::While(c, b, n)),
            3 => (bound(), block.clone(), cap())
                .prop_map(|(x, b, n)| GS::CountedWhile(x, b, n)),
            3 => (bound(), bound(), any::<u8>(), block, cap())
                .prop_map(|(s, e, st, b, n)| GS::For(s, e, st, b, n)),
        ]
    })
    .boxed()
}

/// The fixed layout of the generated modules.
struct Ctx {
    scalars: Vec<Handle<FieldDecl>>,
    arr_field: Handle<FieldDecl>,
    globals: Vec<Handle<GlobalDecl>>,
    arr_global: Handle<GlobalDecl>,
    ion: Handle<IonDecl>,
    pointer: Handle<PointerDecl>,
    func: Option<Handle<Function>>,
    proc: Option<Handle<Function>>,
    locals: Vec<Handle<Local>>,
    loop_vars: Vec<Handle<Local>>,
    local_array: Handle<LocalArray>,
    bool_local: Handle<Local>,
    event: bool,
    in_function: bool,
    math: &'static [MathFn],
}

fn build_e(b: &mut Body, c: &Ctx, e: &GE) -> Handle<Expression> {
    let ex = match e {
        GE::Const(x) => Expression::Constant(*x),
        GE::Field(k) => Expression::Load(Place::Field {
            field: c.scalars[*k as usize % c.scalars.len()],
            index: None,
        }),
        GE::ArrField(i) => {
            let i = build_e(b, c, i);
            Expression::Load(Place::Field {
                field: c.arr_field,
                index: Some(i),
            })
        }
        GE::Global(k) => Expression::Load(Place::Global {
            global: c.globals[*k as usize % c.globals.len()],
            index: None,
        }),
        GE::ArrGlobal(i) => {
            let i = build_e(b, c, i);
            Expression::Load(Place::Global {
                global: c.arr_global,
                index: Some(i),
            })
        }
        GE::Local(k) => Expression::Local(c.locals[*k as usize % c.locals.len()]),
        GE::Env(k) => {
            let vars = [
                EnvVar::T,
                EnvVar::Dt,
                EnvVar::Celsius,
                EnvVar::SecondOrder,
                EnvVar::Flag,
            ];
            let var = vars[*k as usize % vars.len()];
            if var == EnvVar::Flag && !c.event {
                Expression::Constant(7.0)
            } else {
                Expression::Env(var)
            }
        }
        GE::NodeV => Expression::Load(Place::NodeV),
        GE::NodeArea => Expression::Load(Place::NodeArea),
        GE::Ion(k) => {
            let vars = [
                IonVar::Erev,
                IonVar::ConcI,
                IonVar::ConcO,
                IonVar::Cur,
                IonVar::DcurDv,
            ];
            Expression::Load(Place::Ion {
                ion: c.ion,
                var: vars[*k as usize % vars.len()],
            })
        }
        GE::Pointer => Expression::Load(Place::Pointer(c.pointer)),
        GE::Valence => Expression::Load(Place::IonValence(c.ion)),
        GE::LocalArr(i) => {
            let i = build_e(b, c, i);
            Expression::Load(Place::LocalArray {
                array: c.local_array,
                index: i,
            })
        }
        GE::Weight(k) => {
            if c.event {
                Expression::Load(Place::Weight(u32::from(*k)))
            } else {
                Expression::Constant(f64::from(*k))
            }
        }
        GE::Random => Expression::RandomUniform,
        GE::Neg(a) => {
            let a = build_e(b, c, a);
            Expression::Unary {
                op: UnaryOp::Neg,
                arg: a,
            }
        }
        GE::Bin(o, x, y) => {
            let ops = [
                BinaryOp::Add,
                BinaryOp::Sub,
                BinaryOp::Mul,
                BinaryOp::Div,
                BinaryOp::Pow,
            ];
            let (x, y) = (build_e(b, c, x), build_e(b, c, y));
            Expression::Binary {
                op: ops[*o as usize % ops.len()],
                left: x,
                right: y,
            }
        }
        GE::Math(f, x, y) => {
            let fun = c.math[*f as usize % c.math.len()];
            let mut args = vec![build_e(b, c, x)];
            if fun.arity() == 2 {
                args.push(build_e(b, c, y));
            }
            Expression::Math { fun, args }
        }
        GE::Select(k, x, y) => {
            let k = build_c(b, c, k);
            let (x, y) = (build_e(b, c, x), build_e(b, c, y));
            Expression::Select {
                condition: k,
                accept: x,
                reject: y,
            }
        }
        GE::Call(x, y) => match (c.in_function, c.func) {
            (false, Some(f)) => {
                let (x, y) = (build_e(b, c, x), build_e(b, c, y));
                Expression::Call {
                    function: f,
                    args: vec![x, y],
                }
            }
            _ => return build_e(b, c, x),
        },
        GE::FromBool(k) => {
            let k = build_c(b, c, k);
            Expression::BoolToF64(k)
        }
    };
    b.expr(ex)
}

fn build_c(b: &mut Body, c: &Ctx, g: &GC) -> Handle<Expression> {
    let ex = match g {
        GC::Lit(v) => Expression::Bool(*v),
        GC::Local => Expression::Local(c.bool_local),
        GC::Cmp(o, x, y) => {
            let ops = [
                BinaryOp::Lt,
                BinaryOp::Le,
                BinaryOp::Gt,
                BinaryOp::Ge,
                BinaryOp::Eq,
                BinaryOp::Ne,
            ];
            let (x, y) = (build_e(b, c, x), build_e(b, c, y));
            Expression::Binary {
                op: ops[*o as usize % ops.len()],
                left: x,
                right: y,
            }
        }
        GC::Not(a) => {
            let a = build_c(b, c, a);
            Expression::Unary {
                op: UnaryOp::Not,
                arg: a,
            }
        }
        GC::And(x, y) | GC::Or(x, y) => {
            let (l, r) = (build_c(b, c, x), build_c(b, c, y));
            Expression::Binary {
                op: if matches!(g, GC::And(..)) {
                    BinaryOp::And
                } else {
                    BinaryOp::Or
                },
                left: l,
                right: r,
            }
        }
        GC::FromF64(x) => {
            let x = build_e(b, c, x);
            Expression::F64ToBool(x)
        }
    };
    b.expr(ex)
}

fn build_block(b: &mut Body, c: &Ctx, stmts: &[GS], depth: usize) -> Block {
    stmts.iter().map(|s| build_s(b, c, s, depth)).collect()
}

fn build_s(b: &mut Body, c: &Ctx, s: &GS, depth: usize) -> Statement {
    match s {
        GS::Assign(l, x) => Statement::Assign {
            local: c.locals[*l as usize % c.locals.len()],
            value: build_e(b, c, x),
        },
        GS::AssignBool(k) => Statement::Assign {
            local: c.bool_local,
            value: build_c(b, c, k),
        },
        GS::StoreField(f, x) => Statement::Store {
            place: Place::Field {
                field: c.scalars[*f as usize % c.scalars.len()],
                index: None,
            },
            value: build_e(b, c, x),
        },
        GS::StoreArrField(i, x) => {
            let i = build_e(b, c, i);
            Statement::Store {
                place: Place::Field {
                    field: c.arr_field,
                    index: Some(i),
                },
                value: build_e(b, c, x),
            }
        }
        GS::StoreGlobal(g, x) => Statement::Store {
            place: Place::Global {
                global: c.globals[*g as usize % c.globals.len()],
                index: None,
            },
            value: build_e(b, c, x),
        },
        GS::StoreArrGlobal(i, x) => {
            let i = build_e(b, c, i);
            Statement::Store {
                place: Place::Global {
                    global: c.arr_global,
                    index: Some(i),
                },
                value: build_e(b, c, x),
            }
        }
        GS::StoreIon(k, x) => {
            let vars = [
                IonVar::Erev,
                IonVar::ConcI,
                IonVar::ConcO,
                IonVar::Cur,
                IonVar::DcurDv,
            ];
            Statement::Store {
                place: Place::Ion {
                    ion: c.ion,
                    var: vars[*k as usize % vars.len()],
                },
                value: build_e(b, c, x),
            }
        }
        GS::StoreLocalArr(i, x) => {
            let i = build_e(b, c, i);
            Statement::Store {
                place: Place::LocalArray {
                    array: c.local_array,
                    index: i,
                },
                value: build_e(b, c, x),
            }
        }
        GS::StorePointer(x) => Statement::Store {
            place: Place::Pointer(c.pointer),
            value: build_e(b, c, x),
        },
        GS::StoreWeight(k, x) => {
            if c.event {
                Statement::Store {
                    place: Place::Weight(u32::from(*k)),
                    value: build_e(b, c, x),
                }
            } else {
                Statement::Assign {
                    local: c.locals[0],
                    value: build_e(b, c, x),
                }
            }
        }
        GS::Accum(t, sub, x) => {
            let targets = [
                AccumTarget::NodeRhs,
                AccumTarget::NodeD,
                AccumTarget::IonCur(c.ion),
                AccumTarget::IonDcurDv(c.ion),
            ];
            Statement::Accumulate {
                target: targets[*t as usize % targets.len()],
                op: if *sub { AccumOp::Sub } else { AccumOp::Add },
                value: build_e(b, c, x),
            }
        }
        GS::CallProc(x) => match (c.in_function, c.proc) {
            (false, Some(p)) => Statement::Call {
                function: p,
                args: vec![build_e(b, c, x)],
            },
            _ => Statement::SetSeed {
                seed: build_e(b, c, x),
            },
        },
        GS::NetSend(d, f) => {
            if c.in_function {
                Statement::NetEvent {
                    time: build_e(b, c, d),
                }
            } else {
                let d = build_e(b, c, d);
                Statement::NetSend {
                    delay: d,
                    flag: build_e(b, c, f),
                }
            }
        }
        GS::NetEvent(x) => Statement::NetEvent {
            time: build_e(b, c, x),
        },
        GS::NetMove(x) => Statement::NetMove {
            time: build_e(b, c, x),
        },
        GS::SetSeed(x) => Statement::SetSeed {
            seed: build_e(b, c, x),
        },
        GS::If(k, a, r) => {
            let k = build_c(b, c, k);
            Statement::If {
                condition: k,
                accept: build_block(b, c, a, depth),
                reject: build_block(b, c, r, depth),
            }
        }
        GS::While(k, body, cap) => {
            // A random condition, conjoined with a counter so that most
            // loops end before their cap.
            let l = c.loop_vars[depth % c.loop_vars.len()];
            let zero = b.constant(0.0);
            let init = Statement::Assign {
                local: l,
                value: zero,
            };
            let k = build_c(b, c, k);
            let lv = b.read(l);
            let five = b.constant(5.0);
            let below = b.binary(BinaryOp::Lt, lv, five);
            let cond = b.binary(BinaryOp::And, k, below);
            let mut body = build_block(b, c, body, depth + 1);
            let lv = b.read(l);
            let one = b.constant(1.0);
            let next = b.binary(BinaryOp::Add, lv, one);
            body.push(Statement::Assign {
                local: l,
                value: next,
            });
            let yes = b.expr(Expression::Bool(true));
            Statement::If {
                condition: yes,
                accept: vec![
                    init,
                    Statement::While {
                        condition: cond,
                        body,
                        max_iterations: u32::from(*cap),
                    },
                ],
                reject: vec![],
            }
        }
        GS::CountedWhile(bound, body, cap) => {
            // Loop counters are reserved locals the random statements never
            // assign, so most loops terminate normally.
            let l = c.loop_vars[depth % c.loop_vars.len()];
            let zero = b.constant(0.0);
            let init = Statement::Assign {
                local: l,
                value: zero,
            };
            let lv = b.read(l);
            let x = build_e(b, c, bound);
            let cond = b.binary(BinaryOp::Lt, lv, x);
            let mut body = build_block(b, c, body, depth + 1);
            let lv = b.read(l);
            let one = b.constant(1.0);
            let next = b.binary(BinaryOp::Add, lv, one);
            body.push(Statement::Assign {
                local: l,
                value: next,
            });
            let yes = b.expr(Expression::Bool(true));
            Statement::If {
                condition: yes,
                accept: vec![
                    init,
                    Statement::While {
                        condition: cond,
                        body,
                        max_iterations: u32::from(*cap),
                    },
                ],
                reject: vec![],
            }
        }
        GS::For(s, e, st, body, cap) => {
            let steps = [1.0, 0.5, -1.0, 2.0, -0.25];
            let (s, e) = (build_e(b, c, s), build_e(b, c, e));
            Statement::ForRange {
                var: c.loop_vars[depth % c.loop_vars.len()],
                start: s,
                end: e,
                step: steps[*st as usize % steps.len()],
                body: build_block(b, c, body, depth + 1),
                max_iterations: u32::from(*cap),
            }
        }
        GS::Return => Statement::Return,
        GS::Error(k) => Statement::Error {
            status: i32::from(*k),
        },
    }
}

/// Builds a module with a random FUNCTION f(a, b), a random PROCEDURE p(a),
/// and the same random body as a per-instance `cur` kernel and a
/// NET_RECEIVE kernel.
/// Builds a module from generated statements; `math` is the set of
/// built-ins its expressions draw from.
pub fn build_module(
    func: &[GS],
    func_ret: &GE,
    proc: &[GS],
    kernel: &[GS],
    math: &'static [MathFn],
) -> Module {
    let mut m = Module {
        name: "random".into(),
        ..Module::default()
    };
    let scalars = (0..4)
        .map(|k| {
            m.layout.fields.append(FieldDecl {
                name: format!("f{k}"),
                array_len: 1,
            })
        })
        .collect();
    let arr_field = m.layout.fields.append(FieldDecl {
        name: "fa".into(),
        array_len: 3,
    });
    let globals = (0..3)
        .map(|k| {
            m.layout.globals.append(GlobalDecl {
                name: format!("g{k}"),
                array_len: 1,
            })
        })
        .collect();
    let arr_global = m.layout.globals.append(GlobalDecl {
        name: "ga".into(),
        array_len: 5,
    });
    let ion = m.layout.ions.append(IonDecl { name: "ca".into() });
    let pointer = m.layout.pointers.append(PointerDecl { name: "p".into() });
    let mut ctx = Ctx {
        scalars,
        arr_field,
        globals,
        arr_global,
        ion,
        pointer,
        func: None,
        proc: None,
        locals: Vec::new(),
        loop_vars: Vec::new(),
        local_array: Handle::from_index(0),
        bool_local: Handle::from_index(0),
        event: false,
        in_function: true,
        math,
    };
    let new_body = |ctx: &mut Ctx, params: usize| {
        let mut body = Body::default();
        ctx.locals = (0..4)
            .map(|k| body.local(&format!("l{k}"), Type::F64))
            .collect();
        ctx.bool_local = body.local("b", Type::Bool);
        ctx.local_array = body.array("la", 4);
        ctx.loop_vars = (0..4)
            .map(|k| body.local(&format!("i{k}"), Type::F64))
            .collect();
        let params = ctx.locals[..params].to_vec();
        (body, params)
    };
    // FUNCTION f(l0, l1) { ...; f = ret }
    let (mut body, params) = new_body(&mut ctx, 2);
    let result = body.local("f", Type::F64);
    body.block = build_block(&mut body, &ctx, func, 0);
    let r = build_e(&mut body, &ctx, func_ret);
    body.block.push(Statement::Assign {
        local: result,
        value: r,
    });
    ctx.func = Some(m.functions.append(Function {
        name: "f".into(),
        params,
        result: Some(result),
        body,
    }));
    // PROCEDURE p(l0) { ... }
    let (mut body, params) = new_body(&mut ctx, 1);
    body.block = build_block(&mut body, &ctx, proc, 0);
    ctx.proc = Some(m.functions.append(Function {
        name: "p".into(),
        params,
        result: None,
        body,
    }));
    ctx.in_function = false;
    for (phase, event) in [(Phase::Cur, false), (Phase::NetReceive, true)] {
        ctx.event = event;
        let (mut body, _) = new_body(&mut ctx, 0);
        body.block = build_block(&mut body, &ctx, kernel, 0);
        m.kernels.push(Kernel { phase, body });
    }
    m
}

pub fn data_strategy() -> impl Strategy<Value = (Vec<f64>, Vec<f64>)> {
    (
        prop::collection::vec(value(), 8 * 7),
        prop::collection::vec(value(), 16),
    )
}
