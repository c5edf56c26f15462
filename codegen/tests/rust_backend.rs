//! The Rust back end (`codegen::rust`): generated libraries compile with
//! plain `rustc`, load through the runtime's loader (entry symbol, ABI
//! version, layout fingerprint), carry the metadata they were given, and
//! their kernels agree with the reference interpreter bit for bit (NaN-aware)
//! on every column, host call, status and error instance: on hand-built hh,
//! on every math built-in over special values, on NMODL names that are Rust
//! keywords, on the edge cases of the IR specification (index checks, loop
//! caps, errors and returns), on random well-typed modules, and on every
//! lowered .mod file of the repository (plus the registry corpus in
//! `.cache/corpus` when it has been fetched).
//!
//! Each `rustc` run costs about a second, so modules are batched: one
//! library for the fixed modules, one for the random ones, one for the
//! lowered .mod files.

mod common;
#[path = "rust_backend/harness.rs"]
mod harness;

use std::path::Path;
use std::sync::{Arc, OnceLock};

use codegen::interp::{self, MechData};
use codegen::ir::*;
use codegen::rust::{emit_library, LibraryEntry};
use codegen::valid::{validate, ValidModule};
use common::gen;
use common::{diff_data, diff_slices, mod_files, same};
use harness::{build_and_load, run_event, run_kernel, run_kernel_tampered};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use runtime::abi;
use runtime::plugin::LoadedLibrary;
use runtime::{FieldSpec, IonUse, MechKind, MechanismSpec};

/// Metadata describing `m`'s layout: every field an ASSIGNED with default
/// 0, every global a PARAMETER, every ion read and written with valence 2.
fn spec_for(name: &str, m: &Module) -> MechanismSpec {
    let field = |name: &str, kind: u32, len: u32| FieldSpec {
        name: name.to_string(),
        units: String::new(),
        kind,
        array_len: len,
        default_value: 0.0,
    };
    let mut spec = MechanismSpec::new(name, MechKind::Density);
    spec.fields = m
        .layout
        .fields
        .iter()
        .map(|(_, f)| field(&f.name, abi::FIELD_ASSIGNED, f.array_len))
        .collect();
    spec.globals = m
        .layout
        .globals
        .iter()
        .map(|(_, g)| field(&g.name, abi::FIELD_PARAMETER, g.array_len))
        .collect();
    spec.ions = m
        .layout
        .ions
        .iter()
        .map(|(_, i)| IonUse {
            name: i.name.clone(),
            valence: Some(2.0),
            flags: abi::ION_READ_E | abi::ION_WRITE_I,
        })
        .collect();
    spec.pointers = m
        .layout
        .pointers
        .iter()
        .map(|(_, p)| p.name.clone())
        .collect();
    spec
}

/// A loaded library and the modules it was generated from, in table order.
struct Built {
    lib: Arc<LoadedLibrary>,
    modules: Vec<ValidModule>,
    specs: Vec<MechanismSpec>,
}

impl Built {
    fn new(name: &str, mechs: Vec<(ValidModule, MechanismSpec)>) -> Built {
        let entries: Vec<LibraryEntry> = mechs
            .iter()
            .enumerate()
            .map(|(k, (vm, spec))| LibraryEntry {
                module: vm,
                spec,
                source_fingerprint: 0x1000 + k as u64,
            })
            .collect();
        let source = emit_library(&entries).expect("emit");
        let lib = build_and_load(name, &source);
        let (modules, specs) = mechs.into_iter().unzip();
        Built {
            lib,
            modules,
            specs,
        }
    }

    /// The module, loaded kernels and metadata of mechanism `name`.
    fn get(&self, name: &str) -> (&ValidModule, &abi::NrnKernels, &MechanismSpec) {
        let k = self
            .specs
            .iter()
            .position(|s| s.name == name)
            .unwrap_or_else(|| panic!("no mechanism {name}"));
        (&self.modules[k], &self.lib.specs[k].kernels, &self.specs[k])
    }
}

// ---------------------------------------------------------------------------
// The fixed library: hh, the math built-ins, keyword names.

const MATH_VALUES: [f64; 16] = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    2.0,
    3.7,
    -12.5,
    1e-300,
    1e300,
    700.0,
    -745.5,
    1e-8,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
];

/// `out_j = f_j(x, y)` for every built-in, then `out_pow = x ^ y`, per
/// instance; fields `x`, `y` first.
fn math_module() -> Module {
    let mut m = Module {
        name: "mathfns".into(),
        ..Module::default()
    };
    let mut fd = |name: &str| {
        m.layout.fields.append(FieldDecl {
            name: name.into(),
            array_len: 1,
        })
    };
    let x = fd("x");
    let y = fd("y");
    let outs: Vec<_> = MathFn::ALL.iter().map(|f| fd(f.name())).collect();
    let out_pow = fd("caret");
    let mut body = Body::default();
    let place = |f| Place::Field {
        field: f,
        index: None,
    };
    for (fun, out) in MathFn::ALL.iter().zip(&outs) {
        let a = body.load(place(x));
        let b = body.load(place(y));
        let args = if fun.arity() == 2 {
            vec![a, b]
        } else {
            vec![a]
        };
        let value = body.math(*fun, &args);
        body.block.push(Statement::Store {
            place: place(*out),
            value,
        });
    }
    let a = body.load(place(x));
    let b = body.load(place(y));
    let value = body.binary(BinaryOp::Pow, a, b);
    body.block.push(Statement::Store {
        place: place(out_pow),
        value,
    });
    m.kernels.push(Kernel {
        phase: Phase::Cur,
        body,
    });
    m
}

/// Rust keywords, and names the generated code uses itself, as NMODL names
/// of the mechanism, fields, globals, an ion, a POINTER, functions,
/// parameters, locals and a local array.
const NASTY: [&str; 40] = [
    "type", "fn", "loop", "in", "ref", "self", "Self", "super", "crate", "async", "await", "dyn",
    "match", "mod", "move", "return", "static", "struct", "trait", "true", "unsafe", "use",
    "where", "while", "i", "iu", "cx", "pack", "flag", "w", "nw", "l0_type", "a0p", "k_p", "k_x",
    "Ok", "Err", "f64", "m0_k_cur", "k_it0",
];

/// A mechanism named `fn` whose every name is in [`NASTY`]: fields (one an
/// array), globals, an ion `type`, a POINTER `box`, a FUNCTION `fn(in)`
/// with result local `fn`, a PROCEDURE `m0_k_cur(i)`, and a `cur` kernel
/// whose locals (`loop` the FROM variable, `true` a bool, `match` an array)
/// use all of them.
fn keyword_module() -> Module {
    let mut m = Module {
        name: "fn".into(),
        ..Module::default()
    };
    let fields: Vec<_> = NASTY
        .iter()
        .map(|n| {
            m.layout.fields.append(FieldDecl {
                name: n.to_string(),
                array_len: if *n == "loop" { 2 } else { 1 },
            })
        })
        .collect();
    let globals: Vec<_> = ["impl", "let", "const", "k_end0"]
        .iter()
        .map(|n| {
            m.layout.globals.append(GlobalDecl {
                name: n.to_string(),
                array_len: 1,
            })
        })
        .collect();
    let ion = m.layout.ions.append(IonDecl {
        name: "type".into(),
    });
    let ptr = m.layout.pointers.append(PointerDecl { name: "box".into() });
    let fplace = |k: usize| Place::Field {
        field: fields[k],
        index: None,
    };

    // FUNCTION fn(in) { fn = in * 2 + type_field }
    let mut body = Body::default();
    let p_in = body.local("in", Type::F64);
    let r = body.local("fn", Type::F64);
    let a = body.read(p_in);
    let two = body.constant(2.0);
    let prod = body.binary(BinaryOp::Mul, a, two);
    let t = body.load(fplace(0));
    let v = body.binary(BinaryOp::Add, prod, t);
    body.block.push(Statement::Assign { local: r, value: v });
    let f_fn = m.functions.append(Function {
        name: "fn".into(),
        params: vec![p_in],
        result: Some(r),
        body,
    });

    // PROCEDURE m0_k_cur(i) { LOCAL cx; cx = i + 1; impl = cx; box = cx }
    let mut body = Body::default();
    let p_i = body.local("i", Type::F64);
    let cx = body.local("cx", Type::F64);
    let a = body.read(p_i);
    let one = body.constant(1.0);
    let v = body.binary(BinaryOp::Add, a, one);
    body.block.push(Statement::Assign {
        local: cx,
        value: v,
    });
    let v = body.read(cx);
    body.block.push(Statement::Store {
        place: Place::Global {
            global: globals[0],
            index: None,
        },
        value: v,
    });
    let v = body.read(cx);
    body.block.push(Statement::Store {
        place: Place::Pointer(ptr),
        value: v,
    });
    let f_proc = m.functions.append(Function {
        name: "m0_k_cur".into(),
        params: vec![p_i],
        result: None,
        body,
    });

    // cur kernel.
    let mut body = Body::default();
    let l_type = body.local("type", Type::F64);
    let l_loop = body.local("loop", Type::F64);
    let l_true = body.local("true", Type::Bool);
    let l_i = body.local("i", Type::F64);
    let arr = body.array("match", 3);
    // type = fn(fn_field)
    let a = body.load(fplace(1));
    let v = body.call(f_fn, &[a]);
    body.block.push(Statement::Assign {
        local: l_type,
        value: v,
    });
    // FROM loop = 0 TO 2 { match[loop] = type * loop; loop_field[loop % 2 via floor]… }
    let mut inner = Vec::new();
    let idx = body.read(l_loop);
    let a = body.read(l_type);
    let b = body.read(l_loop);
    let v = body.binary(BinaryOp::Mul, a, b);
    inner.push(Statement::Store {
        place: Place::LocalArray {
            array: arr,
            index: idx,
        },
        value: v,
    });
    let zero = body.constant(0.0);
    let two = body.constant(2.0);
    body.block.push(Statement::ForRange {
        var: l_loop,
        start: zero,
        end: two,
        step: 1.0,
        body: inner,
        max_iterations: 10,
    });
    // true = match[2] > in_field
    let k2 = body.constant(2.0);
    let m2 = body.load(Place::LocalArray {
        array: arr,
        index: k2,
    });
    let fin = body.load(fplace(3));
    let c = body.binary(BinaryOp::Gt, m2, fin);
    body.block.push(Statement::Assign {
        local: l_true,
        value: c,
    });
    // while (i < 3) { i = i + 1 }
    let li = body.read(l_i);
    let three = body.constant(3.0);
    let cond = body.binary(BinaryOp::Lt, li, three);
    let li = body.read(l_i);
    let one = body.constant(1.0);
    let next = body.binary(BinaryOp::Add, li, one);
    body.block.push(Statement::While {
        condition: cond,
        body: vec![Statement::Assign {
            local: l_i,
            value: next,
        }],
        max_iterations: 5,
    });
    // m0_k_cur(i)
    let li = body.read(l_i);
    body.block.push(Statement::Call {
        function: f_proc,
        args: vec![li],
    });
    // Every scalar field k ≥ 4: field = field + k * (true ? type : -type) + match[1]
    for (k, f) in fields.iter().enumerate().skip(4) {
        if NASTY[k] == "loop" {
            continue;
        }
        let old = body.load(fplace(k));
        let kk = body.constant(k as f64);
        let c = body.read(l_true);
        let t = body.read(l_type);
        let t2 = body.read(l_type);
        let nt = body.unary(UnaryOp::Neg, t2);
        let s = body.expr(Expression::Select {
            condition: c,
            accept: t,
            reject: nt,
        });
        let prod = body.binary(BinaryOp::Mul, kk, s);
        let sum = body.binary(BinaryOp::Add, old, prod);
        let one = body.constant(1.0);
        let m1 = body.load(Place::LocalArray {
            array: arr,
            index: one,
        });
        let v = body.binary(BinaryOp::Add, sum, m1);
        body.block.push(Statement::Store {
            place: Place::Field {
                field: *f,
                index: None,
            },
            value: v,
        });
    }
    // loop[1] = let + erev(type) * valence(type); k_end0 = i; rhs -= type
    let k1 = body.constant(1.0);
    let g = body.load(Place::Global {
        global: globals[1],
        index: None,
    });
    let e = body.load(Place::Ion {
        ion,
        var: IonVar::Erev,
    });
    let z = body.load(Place::IonValence(ion));
    let ez = body.binary(BinaryOp::Mul, e, z);
    let v = body.binary(BinaryOp::Add, g, ez);
    let loop_field = fields[NASTY.iter().position(|n| *n == "loop").unwrap()];
    body.block.push(Statement::Store {
        place: Place::Field {
            field: loop_field,
            index: Some(k1),
        },
        value: v,
    });
    let li = body.read(l_i);
    body.block.push(Statement::Store {
        place: Place::Global {
            global: globals[3],
            index: None,
        },
        value: li,
    });
    let t = body.read(l_type);
    body.block.push(Statement::Accumulate {
        target: AccumTarget::NodeRhs,
        op: AccumOp::Sub,
        value: t,
    });
    let t = body.read(l_type);
    body.block.push(Statement::Accumulate {
        target: AccumTarget::IonCur(ion),
        op: AccumOp::Add,
        value: t,
    });
    m.kernels.push(Kernel {
        phase: Phase::Cur,
        body,
    });
    m
}

/// One kernel per specified edge case, each reading its input from field
/// `x` of instance 0 (fields `x`, `arr[3]`, `out`; global `ga[2]`; a
/// local array `la[2]`; FUNCTION `f(a)`):
///
/// - Init: `out = arr[x]` (load, index checked then truncated),
/// - Cur: `arr[x] = out + 1` (store),
/// - State: `ga[x] = 1`,
/// - BeforeStep: `la[x] = 1; out = la[1]`,
/// - AfterSolve: `l = 0; while (l < x) { l = l + 1 }` capped at 3; `out = l`,
/// - BeforeBreakpoint: `FROM l = 1 TO x BY 1 { out = out + l }` capped at 2,
/// - AfterInitial: `if (x == 5) { return }; out = f(x)` with
///   `f(a) { if (a > 1) { error(3) }; f = -1; if (a < 0) { return }; f = a * 2 }`,
/// - NetReceive: `out = weight[2]`.
fn edge_module() -> Module {
    let mut m = Module {
        name: "edges".into(),
        ..Module::default()
    };
    let x = m.layout.fields.append(FieldDecl {
        name: "x".into(),
        array_len: 1,
    });
    let arr = m.layout.fields.append(FieldDecl {
        name: "arr".into(),
        array_len: 3,
    });
    let out = m.layout.fields.append(FieldDecl {
        name: "out".into(),
        array_len: 1,
    });
    let ga = m.layout.globals.append(GlobalDecl {
        name: "ga".into(),
        array_len: 2,
    });
    let sc = |f| Place::Field {
        field: f,
        index: None,
    };

    // FUNCTION f(a)
    let mut body = Body::default();
    let a = body.local("a", Type::F64);
    let r = body.local("f", Type::F64);
    let (ra, one) = (body.read(a), body.constant(1.0));
    let gt = body.binary(BinaryOp::Gt, ra, one);
    body.block.push(Statement::If {
        condition: gt,
        accept: vec![Statement::Error { status: 3 }],
        reject: vec![],
    });
    let minus = body.constant(-1.0);
    body.block.push(Statement::Assign {
        local: r,
        value: minus,
    });
    let (ra, zero) = (body.read(a), body.constant(0.0));
    let lt = body.binary(BinaryOp::Lt, ra, zero);
    body.block.push(Statement::If {
        condition: lt,
        accept: vec![Statement::Return],
        reject: vec![],
    });
    let (ra, two) = (body.read(a), body.constant(2.0));
    let v = body.binary(BinaryOp::Mul, ra, two);
    body.block.push(Statement::Assign { local: r, value: v });
    let f = m.functions.append(Function {
        name: "f".into(),
        params: vec![a],
        result: Some(r),
        body,
    });

    let mut kernel = |phase: Phase, build: &dyn Fn(&mut Body)| {
        let mut body = Body::default();
        build(&mut body);
        m.kernels.push(Kernel { phase, body });
    };
    kernel(Phase::Init, &|b| {
        let k = b.load(sc(x));
        let v = b.load(Place::Field {
            field: arr,
            index: Some(k),
        });
        b.block.push(Statement::Store {
            place: sc(out),
            value: v,
        });
    });
    kernel(Phase::Cur, &|b| {
        let k = b.load(sc(x));
        let (o, one) = (b.load(sc(out)), b.constant(1.0));
        let v = b.binary(BinaryOp::Add, o, one);
        b.block.push(Statement::Store {
            place: Place::Field {
                field: arr,
                index: Some(k),
            },
            value: v,
        });
    });
    kernel(Phase::State, &|b| {
        let (k, one) = (b.load(sc(x)), b.constant(1.0));
        b.block.push(Statement::Store {
            place: Place::Global {
                global: ga,
                index: Some(k),
            },
            value: one,
        });
    });
    kernel(Phase::BeforeStep, &|b| {
        let la = b.array("la", 2);
        let (k, one) = (b.load(sc(x)), b.constant(1.0));
        b.block.push(Statement::Store {
            place: Place::LocalArray {
                array: la,
                index: k,
            },
            value: one,
        });
        let one = b.constant(1.0);
        let v = b.load(Place::LocalArray {
            array: la,
            index: one,
        });
        b.block.push(Statement::Store {
            place: sc(out),
            value: v,
        });
    });
    kernel(Phase::AfterSolve, &|b| {
        let l = b.local("l", Type::F64);
        let (rl, k) = (b.read(l), b.load(sc(x)));
        let c = b.binary(BinaryOp::Lt, rl, k);
        let (rl, one) = (b.read(l), b.constant(1.0));
        let next = b.binary(BinaryOp::Add, rl, one);
        b.block.push(Statement::While {
            condition: c,
            body: vec![Statement::Assign {
                local: l,
                value: next,
            }],
            max_iterations: 3,
        });
        let rl = b.read(l);
        b.block.push(Statement::Store {
            place: sc(out),
            value: rl,
        });
    });
    kernel(Phase::BeforeBreakpoint, &|b| {
        let l = b.local("l", Type::F64);
        let (start, end) = (b.constant(1.0), b.load(sc(x)));
        let (o, rl) = (b.load(sc(out)), b.read(l));
        let v = b.binary(BinaryOp::Add, o, rl);
        b.block.push(Statement::ForRange {
            var: l,
            start,
            end,
            step: 1.0,
            body: vec![Statement::Store {
                place: sc(out),
                value: v,
            }],
            max_iterations: 2,
        });
    });
    kernel(Phase::AfterInitial, &|b| {
        let (k, five) = (b.load(sc(x)), b.constant(5.0));
        let c = b.binary(BinaryOp::Eq, k, five);
        b.block.push(Statement::If {
            condition: c,
            accept: vec![Statement::Return],
            reject: vec![],
        });
        let k = b.load(sc(x));
        let v = b.call(f, &[k]);
        b.block.push(Statement::Store {
            place: sc(out),
            value: v,
        });
    });
    kernel(Phase::NetReceive, &|b| {
        let v = b.load(Place::Weight(2));
        b.block.push(Statement::Store {
            place: sc(out),
            value: v,
        });
    });
    m
}

/// Expressions nested 300 deep (split into `let`s: rustc cannot parse a
/// few thousand nested parentheses): `out = chain(x)` where the chain mixes `+`, `*`, selects on a
/// bool local, calls of `f(a)` (which also counts its calls in field `cnt`)
/// and loads of `cnt` (so evaluation order shows), then `arr[chain·0 + 1] =
/// 1` (a deep index) and `b2 = b && (chain > 0)` (a deep short-circuit
/// operand).
fn deep_module() -> Module {
    let mut m = Module {
        name: "deep".into(),
        ..Module::default()
    };
    let mut fd = |name: &str, len: u32| {
        m.layout.fields.append(FieldDecl {
            name: name.into(),
            array_len: len,
        })
    };
    let (x, out, cnt, arr, b2) = (
        fd("x", 1),
        fd("out", 1),
        fd("cnt", 1),
        fd("arr", 3),
        fd("b2", 1),
    );
    let sc = |f| Place::Field {
        field: f,
        index: None,
    };
    // FUNCTION f(a) { cnt = cnt + 1; f = a * 0.5 }
    let mut body = Body::default();
    let a = body.local("a", Type::F64);
    let r = body.local("f", Type::F64);
    let (c, one) = (body.load(sc(cnt)), body.constant(1.0));
    let v = body.binary(BinaryOp::Add, c, one);
    body.block.push(Statement::Store {
        place: sc(cnt),
        value: v,
    });
    let (ra, half) = (body.read(a), body.constant(0.5));
    let v = body.binary(BinaryOp::Mul, ra, half);
    body.block.push(Statement::Assign { local: r, value: v });
    let f = m.functions.append(Function {
        name: "f".into(),
        params: vec![a],
        result: Some(r),
        body,
    });

    let mut b = Body::default();
    let flag = b.local("b", Type::Bool);
    let (xv, zero) = (b.load(sc(x)), b.constant(0.0));
    let pos = b.binary(BinaryOp::Gt, xv, zero);
    b.block.push(Statement::Assign {
        local: flag,
        value: pos,
    });
    let chain = |b: &mut Body| {
        let mut e = b.load(sc(x));
        for k in 0..300 {
            let c = b.constant(1.0 + k as f64 * 1e-5);
            e = match k % 50 {
                0 => b.call(f, &[e]),
                25 => {
                    let n = b.load(sc(cnt));
                    b.binary(BinaryOp::Add, e, n)
                }
                _ if k % 3 == 2 => {
                    let cond = b.read(flag);
                    b.expr(Expression::Select {
                        condition: cond,
                        accept: e,
                        reject: c,
                    })
                }
                _ if k % 2 == 0 => b.binary(BinaryOp::Add, e, c),
                _ => b.binary(BinaryOp::Mul, e, c),
            };
        }
        e
    };
    let e = chain(&mut b);
    b.block.push(Statement::Store {
        place: sc(out),
        value: e,
    });
    let e = chain(&mut b);
    let (zero, one) = (b.constant(0.0), b.constant(1.0));
    let z = b.binary(BinaryOp::Mul, e, zero);
    let ix = b.binary(BinaryOp::Add, z, one);
    let one = b.constant(1.0);
    b.block.push(Statement::Store {
        place: Place::Field {
            field: arr,
            index: Some(ix),
        },
        value: one,
    });
    let e = chain(&mut b);
    let zero = b.constant(0.0);
    let gt = b.binary(BinaryOp::Gt, e, zero);
    let l = b.read(flag);
    let both = b.binary(BinaryOp::And, l, gt);
    let v = b.expr(Expression::BoolToF64(both));
    b.block.push(Statement::Store {
        place: sc(b2),
        value: v,
    });
    m.kernels.push(Kernel {
        phase: Phase::Cur,
        body: b,
    });
    m
}

/// hh's metadata: parameters with NEURON's defaults and units, states,
/// assigned variables, the rate globals, na and k read and written.
fn hh_spec(m: &Module) -> MechanismSpec {
    let mut spec = spec_for("hh", m);
    let params = [
        ("gnabar", 0.12, "S/cm2"),
        ("gkbar", 0.036, "S/cm2"),
        ("gl", 0.0003, "S/cm2"),
        ("el", -54.3, "mV"),
    ];
    for f in &mut spec.fields {
        if let Some((_, d, u)) = params.iter().find(|p| p.0 == f.name) {
            f.kind = abi::FIELD_PARAMETER;
            f.default_value = *d;
            f.units = u.to_string();
        } else if ["m", "h", "n"].contains(&f.name.as_str()) {
            f.kind = abi::FIELD_STATE;
        }
    }
    for ion in &mut spec.ions {
        ion.valence = None;
        ion.flags = abi::ION_READ_E | abi::ION_WRITE_I;
    }
    spec.flags = abi::MECH_THREADSAFE;
    spec
}

fn fixed() -> &'static Built {
    static FIXED: OnceLock<Built> = OnceLock::new();
    FIXED.get_or_init(|| {
        let (hh, _) = common::hh::hh_module();
        let hh_spec = hh_spec(&hh);
        let math = math_module();
        let kw = keyword_module();
        let edges = edge_module();
        let deep = deep_module();
        let mut spec_kw = spec_for("fn", &kw);
        spec_kw.kind = MechKind::PointProcess;
        let mechs = vec![
            (validate(&hh).expect("hh validates"), hh_spec),
            (
                validate(&math).expect("math validates"),
                spec_for("mathfns", &math),
            ),
            (validate(&kw).expect("keyword module validates"), spec_kw),
            (
                validate(&edges).expect("edge module validates"),
                spec_for("edges", &edges),
            ),
            (
                validate(&deep).expect("deep module validates"),
                spec_for("deep", &deep),
            ),
        ];
        let built = Built::new("fixed", mechs);
        // FIXME: a library held until the process exits is never dropped, so
        // the loader's private copy (`<tmp>/nrnrs-<pid>-<hash>.<ext>`,
        // deleted in `LoadedLibrary::drop`) would stay behind after every
        // run. Unlinking it now is harmless on Unix (the mapping stays);
        // the runtime could do this itself right after loading.
        let ext = std::env::consts::DLL_EXTENSION;
        let copy = std::env::temp_dir().join(format!(
            "nrnrs-{}-{:016x}.{ext}",
            std::process::id(),
            built.lib.hash
        ));
        if cfg!(unix) {
            let _ = std::fs::remove_file(copy);
        }
        built
    })
}

#[test]
fn the_loader_accepts_the_library_and_reads_back_its_metadata() {
    let b = fixed();
    assert_eq!(b.lib.specs.len(), 5);
    for (loaded, given) in b.lib.specs.iter().zip(&b.specs) {
        assert_eq!(loaded.name, given.name);
        assert_eq!(loaded.kind, given.kind);
        assert_eq!(loaded.flags, given.flags);
        assert_eq!(loaded.fields, given.fields);
        assert_eq!(loaded.globals, given.globals);
        assert_eq!(loaded.ions, given.ions);
        assert_eq!(loaded.pointers, given.pointers);
    }
    let (_, k, spec) = b.get("hh");
    assert_eq!(spec.fields[0].units, "S/cm2");
    assert!(k.init.is_some() && k.cur.is_some() && k.state.is_some());
    assert!(k.net_receive.is_none() && k.table_check.is_none());
}

/// hh data as in `tests/hh.rs`: varied voltages (including vtrap's removable
/// singularities) and the default parameters, varied per instance.
fn hh_data(vm: &ValidModule, celsius: f64) -> MechData {
    let (n, nodes) = (300, 120);
    let mut d = MechData::new(vm, n, nodes);
    d.celsius = celsius;
    for (k, v) in d.v.iter_mut().enumerate() {
        *v = match k {
            0 => -40.0,
            1 => -55.0,
            2 => -40.0 + 1e-9,
            3 => -55.0 - 1e-8,
            _ => -100.0 + 160.0 * (k as f64) / (nodes as f64),
        };
    }
    for (c, x) in [0.12, 0.036, 0.0003, -54.3].iter().enumerate() {
        for i in 0..n {
            d.fields[c][i] = *x * (1.0 + 0.01 * (i % 7) as f64);
        }
    }
    for k in 0..nodes {
        d.ions[0].erev[k] = 50.0;
        d.ions[1].erev[k] = -77.0 + (k % 3) as f64;
    }
    d
}

#[test]
fn hh_agrees_with_the_interpreter_bit_for_bit() {
    let b = fixed();
    let (vm, k, _) = b.get("hh");
    for celsius in [6.3, 37.0] {
        let mut a = hh_data(vm, celsius);
        let mut c = a.clone();
        let check = |phase: Phase, a: &mut MechData, c: &mut MechData, what: &str| {
            let sa = interp::run_kernel(vm, phase, a).unwrap();
            let sc = run_kernel(k, vm, phase, c).unwrap();
            assert_eq!((sa, sc), (0, 0), "{what} {phase:?}");
            let diffs = diff_data(a, c);
            assert!(
                diffs.is_empty(),
                "celsius {celsius}, {what} {phase:?}: {diffs:#?}"
            );
        };
        check(Phase::Init, &mut a, &mut c, "initial");
        for step in 0..20 {
            for d in [&mut a, &mut c] {
                d.rhs.iter_mut().for_each(|x| *x = 0.0);
                d.d.iter_mut().for_each(|x| *x = 0.0);
                for ion in &mut d.ions {
                    ion.cur.iter_mut().for_each(|x| *x = 0.0);
                    ion.dcurdv.iter_mut().for_each(|x| *x = 0.0);
                }
            }
            let what = format!("step {step}");
            check(Phase::Cur, &mut a, &mut c, &what);
            check(Phase::State, &mut a, &mut c, &what);
            a.t += a.dt;
            c.t += c.dt;
        }
        // The run did something.
        assert!(a.rhs.iter().any(|x| *x != 0.0));
        assert!(a.ions[1].dcurdv.iter().any(|x| *x != 0.0));
    }
}

/// The distance in ulps between two finite doubles of the same sign, or 0
/// for two NaNs or equal bits.
fn ulps(a: f64, b: f64) -> u64 {
    if same(a, b) {
        return 0;
    }
    if a.is_nan() || b.is_nan() || a.is_sign_negative() != b.is_sign_negative() {
        return u64::MAX;
    }
    a.to_bits().abs_diff(b.to_bits())
}

#[test]
fn math_builtins_agree_with_the_interpreter_on_special_values() {
    let b = fixed();
    let (vm, k, _) = b.get("mathfns");
    let n = MATH_VALUES.len() * MATH_VALUES.len();
    let mut a = MechData::new(vm, n, 1);
    for (i, (x, y)) in MATH_VALUES
        .iter()
        .flat_map(|x| MATH_VALUES.iter().map(move |y| (*x, *y)))
        .enumerate()
    {
        a.fields[0][i] = x;
        a.fields[1][i] = y;
    }
    let mut c = a.clone();
    assert_eq!(interp::run_kernel(vm, Phase::Cur, &mut a).unwrap(), 0);
    assert_eq!(run_kernel(k, vm, Phase::Cur, &mut c).unwrap(), 0);
    let names: Vec<&str> = MathFn::ALL.iter().map(|f| f.name()).chain(["^"]).collect();
    let mut erf_differences = 0;
    for (j, name) in names.iter().enumerate() {
        let (x, y) = (&a.fields[2 + j][..n], &c.fields[2 + j][..n]);
        if matches!(*name, "erf" | "erfc") {
            // FIXME: bit for bit once codegen::math takes erf/erfc from the
            // C library (as NEURON does) instead of the libm crate.
            for i in 0..n {
                let d = ulps(x[i], y[i]);
                assert!(
                    d <= 1,
                    "{name}({:e}): {:e} vs {:e}",
                    a.fields[0][i],
                    x[i],
                    y[i]
                );
                erf_differences += usize::from(d != 0);
            }
        } else {
            assert_eq!(diff_slices(name, x, y), None, "x, y = {:?}", MATH_VALUES);
        }
    }
    eprintln!(
        "erf/erfc: {erf_differences} of {} values differ by one ulp",
        2 * n
    );
}

#[test]
fn keywords_and_internal_names_as_nmodl_names_compile_and_agree() {
    let b = fixed();
    let (vm, k, spec) = b.get("fn");
    assert_eq!(b.lib.specs[2].name, "fn");
    assert_eq!(spec.fields.len(), NASTY.len());
    let mut a = MechData::new(vm, 7, 3);
    for (c, col) in a.fields.iter_mut().enumerate() {
        for (i, x) in col.iter_mut().enumerate().take(7) {
            *x = (c as f64) * 0.5 - (i as f64) * 1.25;
        }
    }
    a.globals = vec![1.0, 2.0, 3.0, 4.0];
    a.ions[0].erev = vec![10.0, 20.0, 30.0];
    a.ions[0].valence = 2.0;
    a.pointer_pool = vec![0.0; 3];
    a.pointers[0] = (0..7).map(|i| Some(i % 3)).collect();
    let mut c = a.clone();
    let sa = interp::run_kernel(vm, Phase::Cur, &mut a).unwrap();
    let sc = run_kernel(k, vm, Phase::Cur, &mut c).unwrap();
    assert_eq!((sa, sc), (0, 0));
    assert_eq!(diff_data(&a, &c), Vec::<String>::new());
    // The kernel ran: the procedure wrote the POINTER targets.
    assert_eq!(a.pointer_pool, vec![4.0; 3]);
    // A pointer left unset is STATUS_POINTER_UNSET at that instance.
    let mut a2 = a.clone();
    a2.pointers[0][4] = None;
    let mut c2 = a2.clone();
    let sa = interp::run_kernel(vm, Phase::Cur, &mut a2).unwrap();
    let sc = run_kernel(k, vm, Phase::Cur, &mut c2).unwrap();
    assert_eq!(
        (sa, sc),
        (abi::STATUS_POINTER_UNSET, abi::STATUS_POINTER_UNSET)
    );
    assert_eq!(a2.error_instance, 4);
    assert_eq!(diff_data(&a2, &c2), Vec::<String>::new());
}

#[test]
fn index_checks_loop_caps_errors_and_returns_follow_the_spec() {
    let b = fixed();
    let (vm, k, _) = b.get("edges");
    const OK: i32 = abi::STATUS_OK;
    const BAD: i32 = abi::STATUS_MECHANISM_ERROR;
    let nan = f64::NAN;
    // (phase, x, the status the IR specification prescribes)
    let cases: &[(Phase, f64, i32)] = &[
        (Phase::Init, 0.0, OK),
        (Phase::Init, 2.9, OK),
        (Phase::Init, -0.5, OK),
        (Phase::Init, -0.99, OK),
        (Phase::Init, -1.0, BAD),
        (Phase::Init, 3.0, BAD),
        (Phase::Init, nan, BAD),
        (Phase::Init, f64::INFINITY, BAD),
        (Phase::Cur, -0.5, OK),
        (Phase::Cur, 2.5, OK),
        (Phase::Cur, 3.0, BAD),
        (Phase::Cur, -1.0, BAD),
        (Phase::State, 1.9, OK),
        (Phase::State, 2.0, BAD),
        (Phase::State, -1.5, BAD),
        (Phase::BeforeStep, 1.0, OK),
        (Phase::BeforeStep, -0.7, OK),
        (Phase::BeforeStep, 2.0, BAD),
        (Phase::BeforeStep, nan, BAD),
        (Phase::AfterSolve, 3.0, OK),
        (Phase::AfterSolve, 2.5, OK),
        (Phase::AfterSolve, 3.5, BAD),
        (Phase::AfterSolve, nan, OK),
        (Phase::BeforeBreakpoint, 2.0, OK),
        (Phase::BeforeBreakpoint, 2.9, OK),
        (Phase::BeforeBreakpoint, 3.0, BAD),
        (Phase::BeforeBreakpoint, -4.0, OK),
        (Phase::AfterInitial, 0.5, OK),
        (Phase::AfterInitial, 1.5, 3),
        (Phase::AfterInitial, 5.0, OK),
        (Phase::AfterInitial, -2.0, OK),
    ];
    for &(phase, x, want) in cases {
        // Instance 1 carries the case; instance 0 is a harmless 0.
        let mut a = MechData::new(vm, 3, 1);
        a.fields[0][1] = x;
        for j in 0..3 {
            a.fields[1 + j][..3].fill(10.0 * (j + 1) as f64);
        }
        a.error_instance = 77;
        let mut c = a.clone();
        let sa = interp::run_kernel(vm, phase, &mut a).unwrap();
        let sc = run_kernel(k, vm, phase, &mut c).unwrap();
        assert_eq!((sa, sc), (want, want), "{phase:?} x = {x}");
        let want_instance = if want == OK { 77 } else { 1 };
        assert_eq!(c.error_instance, want_instance, "{phase:?} x = {x}");
        assert_eq!(diff_data(&a, &c), Vec::<String>::new(), "{phase:?} x = {x}");
    }
    for (n_weights, want) in [(3, OK), (2, BAD)] {
        let mut a = MechData::new(vm, 3, 1);
        let mut c = a.clone();
        let (mut wa, mut wc) = (vec![1.0, 2.0, 3.0], vec![1.0, 2.0, 3.0]);
        wa.truncate(n_weights);
        wc.truncate(n_weights);
        let sa = interp::run_event(vm, Phase::NetReceive, &mut a, 2, &mut wa, 0.0).unwrap();
        let sc = run_event(k, vm, Phase::NetReceive, &mut c, 2, &mut wc, 0.0).unwrap();
        assert_eq!((sa, sc), (want, want), "{n_weights} weights");
        assert_eq!(diff_data(&a, &c), Vec::<String>::new());
        if want == BAD {
            assert_eq!(c.error_instance, 2);
        } else {
            assert_eq!(c.fields[4][2], 3.0);
        }
    }
}

#[test]
fn deeply_nested_expressions_compile_and_agree() {
    let b = fixed();
    let (vm, k, _) = b.get("deep");
    let mut a = MechData::new(vm, 4, 1);
    a.fields[0][..4].copy_from_slice(&[1.5, -2.0, 0.0, 3.25]);
    let mut c = a.clone();
    let sa = interp::run_kernel(vm, Phase::Cur, &mut a).unwrap();
    let sc = run_kernel(k, vm, Phase::Cur, &mut c).unwrap();
    assert_eq!((sa, sc), (0, 0));
    assert_eq!(diff_data(&a, &c), Vec::<String>::new());
    // f runs 6 times per chain, three chains, when x > 0; otherwise the
    // outermost select drops the whole chain and `&&` the third one.
    assert_eq!(&a.fields[2][..4], &[18.0, 0.0, 0.0, 18.0]);
}

#[test]
fn kernels_refuse_a_pack_that_does_not_fit_their_layout() {
    let b = fixed();
    let (vm, k, _) = b.get("hh");
    let fresh = hh_data(vm, 6.3);
    type Tamper = fn(&mut abi::NrnMechPack);
    let cases: [(&str, Tamper); 5] = [
        ("struct_size", |p| p.struct_size -= 8),
        ("n_fields", |p| p.n_fields -= 1),
        ("n_globals", |p| p.n_globals += 1),
        ("n_ions", |p| p.n_ions -= 1),
        ("n_pointers", |p| p.n_pointers += 1),
    ];
    for (what, tamper) in cases {
        let mut d = fresh.clone();
        let status = run_kernel_tampered(k, vm, Phase::Init, &mut d, tamper).unwrap();
        assert_eq!(status, abi::STATUS_MECHANISM_ERROR, "{what}");
        assert_eq!(d.error_instance, u32::MAX, "{what}");
        let mut unchanged = fresh.clone();
        unchanged.error_instance = u32::MAX;
        assert_eq!(diff_data(&unchanged, &d), Vec::<String>::new(), "{what}");
    }
}

#[test]
fn emit_rejects_metadata_that_does_not_describe_the_module() {
    let (hh, _) = common::hh::hh_module();
    let vm = validate(&hh).unwrap();
    let good = hh_spec(&hh);
    let emit = |spec: &MechanismSpec| {
        codegen::rust::emit(&vm, spec)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    assert_eq!(emit(&good), Ok(()));
    let mut s = good.clone();
    s.fields.pop();
    assert!(emit(&s).unwrap_err().contains("fields"), "{:?}", emit(&s));
    let mut s = good.clone();
    s.globals[1].array_len = 3;
    assert!(emit(&s).unwrap_err().contains("hinf"), "{:?}", emit(&s));
    let mut s = good.clone();
    s.ions.pop();
    assert!(emit(&s).unwrap_err().contains("ions"));
    let mut s = good.clone();
    s.fields[0].units = "S\0cm2".into();
    assert!(emit(&s).unwrap_err().contains("NUL"));
    let twice = [LibraryEntry {
        module: &vm,
        spec: &good,
        source_fingerprint: 0,
    }; 2];
    let e = emit_library(&twice).unwrap_err();
    assert!(e.to_string().contains("two mechanisms"), "{e}");
}

// ---------------------------------------------------------------------------
// Random modules, batched into one library.

/// How many random modules one run checks (one rustc run for all).
const RANDOM_CASES: usize = 32;

#[test]
fn random_modules_agree_with_the_interpreter_bit_for_bit() {
    // A fresh seed each run (printed on failure); RUST_BACKEND_SEED=<u64>
    // replays one.
    let seed: u64 = std::env::var("RUST_BACKEND_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let strategy = (
        proptest::collection::vec(gen::gs(), 0..4),
        gen::ge(),
        proptest::collection::vec(gen::gs(), 0..4),
        proptest::collection::vec(gen::gs(), 1..8),
        gen::data_strategy(),
        0u32..6,
        gen::value(),
    );
    let cases: Vec<_> = (0..RANDOM_CASES)
        .map(|_| strategy.new_tree(&mut runner).expect("generate").current())
        .collect();
    let mechs: Vec<(ValidModule, MechanismSpec)> = cases
        .iter()
        .enumerate()
        .map(|(k, (func, ret, proc, kernel, _, _, _))| {
            let m = gen::build_module(func, ret, proc, kernel, &gen::BIT_EXACT_MATH);
            let spec = spec_for(&format!("r{k}"), &m);
            (validate(&m).expect("generated IR validates"), spec)
        })
        .collect();
    let b = Built::new("random", mechs);
    let mut failures = Vec::new();
    for (k, (_, _, _, _, (field_values, other_values), instance, flag)) in cases.iter().enumerate()
    {
        let (vm, kernels, _) = b.get(&format!("r{k}"));
        // The data of agree.rs, plus an unset POINTER in every other case.
        let count = 6;
        let mut a = MechData::new(vm, count, 3);
        for (c, col) in a.fields.iter_mut().enumerate() {
            for (i, x) in col.iter_mut().enumerate().take(count) {
                *x = field_values[(c * 8 + i) % field_values.len()];
            }
        }
        let ng = a.globals.len();
        a.globals.copy_from_slice(&other_values[..ng]);
        a.v.copy_from_slice(&other_values[8..11]);
        a.ions[0].erev.copy_from_slice(&other_values[11..14]);
        a.ions[0].conc_i[0] = other_values[14];
        a.t = other_values[15];
        a.secondorder = 1;
        a.pointer_pool = vec![1.5, -2.5];
        a.pointers[0] = (0..count)
            .map(|i| (k % 2 == 0 || i != 4).then_some(i % 2))
            .collect();
        a.host.rng_state = 42;
        a.ions[0].valence = 2.0;
        let mut c = a.clone();

        let sa = interp::run_kernel(vm, Phase::Cur, &mut a).unwrap();
        let sc = run_kernel(kernels, vm, Phase::Cur, &mut c).unwrap();
        let mut diffs = diff_data(&a, &c);
        if sa != sc {
            diffs.push(format!("cur status {sa} vs {sc}"));
        }
        let mut wa = vec![0.5, -1.0, 3.0];
        let mut wc = wa.clone();
        let sa =
            interp::run_event(vm, Phase::NetReceive, &mut a, *instance, &mut wa, *flag).unwrap();
        let sc = run_event(
            kernels,
            vm,
            Phase::NetReceive,
            &mut c,
            *instance,
            &mut wc,
            *flag,
        )
        .unwrap();
        diffs.extend(diff_data(&a, &c));
        diffs.extend(diff_slices("weights", &wa, &wc));
        if sa != sc {
            diffs.push(format!("net_receive status {sa} vs {sc}"));
        }
        if !diffs.is_empty() {
            failures.push(format!("case r{k}: {diffs:#?}\nmodule: {:#?}", vm.module()));
        }
    }
    assert!(
        failures.is_empty(),
        "seed {seed} (replay with RUST_BACKEND_SEED={seed}):\n{}",
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------
// Every lowered .mod file of the repository, in one library.

/// Every .mod file that lowers, in one library, run in lockstep with the
/// interpreter as `lowered_agree.rs` runs the JIT.
#[test]
fn every_lowered_mod_file_agrees_with_the_interpreter_bit_for_bit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    mod_files(&root.join("mechanisms/mod"), &mut files);
    mod_files(&root.join("codegen/tests/fixtures/mod"), &mut files);
    let builtins = files.len();
    mod_files(&root.join(".cache/corpus"), &mut files);
    let mut mechs = Vec::new();
    let mut skipped = Vec::new();
    let mut names = Vec::new();
    for f in &files {
        let mut sources = nmodl_frontend::source::SourceMap::new();
        let r = nmodl_frontend::check_file(&mut sources, f);
        let Some(model) = r.model else { continue };
        let Ok(lowered) = codegen::lower::lower(&model) else {
            continue;
        };
        let vm = validate(&lowered.module).expect("lowered IR validates");
        let mut spec = lowered.spec;
        // FIXME: the lowering declares the hidden Jacobian field of a
        // KINETIC block solved twice (`#J_<block>`) twice; the runtime
        // refuses such metadata (and with it the whole library), so those
        // files are left out until the lowering is fixed.
        let mut seen = std::collections::HashSet::new();
        let twice = spec
            .fields
            .iter()
            .chain(&spec.globals)
            .find(|x| !seen.insert(x.name.as_str()));
        if let Some(x) = twice {
            assert!(
                x.name.starts_with("#J_"),
                "{}: `{}` twice",
                f.display(),
                x.name
            );
            skipped.push(format!("{} (`{}` twice)", f.display(), x.name));
            continue;
        }
        // Two files may define the same mechanism; one library cannot.
        if mechs
            .iter()
            .any(|(_, s): &(ValidModule, MechanismSpec)| s.name == spec.name)
        {
            spec.name = format!("{}_{}", spec.name, mechs.len());
        }
        names.push((spec.name.clone(), f.clone()));
        mechs.push((vm, spec));
    }
    assert!(
        mechs.len() >= builtins,
        "only {} files lowered",
        mechs.len()
    );
    assert!(skipped.len() <= 2, "left out: {skipped:#?}");
    let b = Built::new("lowered", mechs);
    let mut failures = Vec::new();
    for (name, file) in &names {
        let (vm, k, spec) = b.get(name);
        if let Err(e) = lockstep(vm, k, spec) {
            failures.push(format!("{}: {e}", file.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("{} mechanisms agree; left out: {skipped:#?}", names.len());
}

/// TABLE check, INITIAL, 40 steps of currents and states and a few
/// NET_RECEIVE events, interpreter and library in lockstep.
fn lockstep(vm: &ValidModule, k: &abi::NrnKernels, spec: &MechanismSpec) -> Result<(), String> {
    common::lockstep(
        vm,
        spec,
        &|p, d| run_kernel(k, vm, p, d).map_err(|e| e.0),
        &|d, w| run_event(k, vm, Phase::NetReceive, d, 1, w, 0.0).map_err(|e| e.0),
    )
}
