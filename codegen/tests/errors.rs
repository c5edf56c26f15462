//! Error paths: bad indices, runaway loops, unset POINTERs and bad IR give the
//! right status or validation error in both back ends, never a crash or hang.

mod common;

use codegen::interp::{self, MechData};
use codegen::ir::*;
use codegen::jit;
use codegen::valid::{validate, IrErrorKind, ValidModule};
use common::diff_data;
use runtime::abi::{STATUS_MECHANISM_ERROR, STATUS_OK, STATUS_POINTER_UNSET};

/// Runs `phase` through both back ends on copies of `data`, asserts they
/// agree on everything, and returns the status and the interpreter's data.
fn run_both(vm: &ValidModule, phase: Phase, data: &MechData) -> (i32, MechData) {
    let jit = jit::compile(vm).expect("compiles");
    let mut a = data.clone();
    let mut b = data.clone();
    let sa = interp::run_kernel(vm, phase, &mut a).expect("data fits");
    let sb = jit::run_kernel(&jit, vm, phase, &mut b).expect("data fits");
    assert_eq!(sa, sb, "status");
    let diffs = diff_data(&a, &b);
    assert!(diffs.is_empty(), "{diffs:#?}");
    (sa, a)
}

fn module_with_fields(arrays: &[(&str, u32)]) -> (Module, Vec<Handle<FieldDecl>>) {
    let mut m = Module {
        name: "t".into(),
        ..Module::default()
    };
    let fields = arrays
        .iter()
        .map(|(n, len)| {
            m.layout.fields.append(FieldDecl {
                name: (*n).into(),
                array_len: *len,
            })
        })
        .collect();
    (m, fields)
}

fn scalar(f: Handle<FieldDecl>) -> Place {
    Place::Field {
        field: f,
        index: None,
    }
}

#[test]
fn array_index_is_truncated_and_bounds_checked() {
    // x[k] = 10 + k for k read from a field: per instance.
    let (mut m, f) = module_with_fields(&[("k", 1), ("x", 3)]);
    let mut body = Body::default();
    let k = body.load(scalar(f[0]));
    let ten = body.constant(10.0);
    let k2 = body.load(scalar(f[0]));
    let v = body.binary(BinaryOp::Add, ten, k2);
    body.block.push(Statement::Store {
        place: Place::Field {
            field: f[1],
            index: Some(k),
        },
        value: v,
    });
    m.kernels.push(Kernel {
        phase: Phase::Init,
        body,
    });
    let vm = validate(&m).expect("valid");
    let check = |ks: &[f64], status: i32, error_instance: Option<u32>| {
        let mut d = MechData::new(&vm, ks.len(), 1);
        d.fields[0][..ks.len()].copy_from_slice(ks);
        let (s, out) = run_both(&vm, Phase::Init, &d);
        assert_eq!(s, status, "k = {ks:?}");
        if let Some(e) = error_instance {
            assert_eq!(out.error_instance, e);
        }
        out
    };
    // In range, with C `(int)` truncation: 2.9 → 2, -0.5 → 0.
    let out = check(&[0.0, 2.9, -0.5, 1.0], STATUS_OK, None);
    let x = vm.field_column(f[1]);
    assert_eq!(out.fields[x][0], 10.0);
    assert_eq!(out.fields[x + 2][1], 12.9);
    assert_eq!(out.fields[x][2], 9.5);
    assert_eq!(out.fields[x + 1][3], 11.0);
    // Out of range at instance 1: instance 0 ran, the kernel stopped there.
    for bad in [3.0, -1.0, f64::NAN, f64::INFINITY, 1e300] {
        let out = check(&[1.0, bad, 2.0], STATUS_MECHANISM_ERROR, Some(1));
        assert_eq!(out.fields[x + 1][0], 11.0);
        assert_eq!(out.fields[x + 2][2], 0.0, "instance 2 did not run");
    }
}

#[test]
fn local_arrays_start_at_zero_and_are_bounds_checked() {
    // LOCAL a[40] (zeroed by a loop in the JIT), a[k] = a[k] + 1 twice per
    // instance, y = a[k]; k from a field, out of range for instance 2.
    let (mut m, f) = module_with_fields(&[("k", 1), ("y", 1)]);
    let mut body = Body::default();
    let a = body.array("a", 40);
    let mut bump = Vec::new();
    for _ in 0..2 {
        let k = body.load(scalar(f[0]));
        let k2 = body.load(scalar(f[0]));
        let old = body.load(Place::LocalArray {
            array: a,
            index: k2,
        });
        let one = body.constant(1.0);
        let new = body.binary(BinaryOp::Add, old, one);
        bump.push(Statement::Store {
            place: Place::LocalArray { array: a, index: k },
            value: new,
        });
    }
    body.block.extend(bump);
    let k = body.load(scalar(f[0]));
    let x = body.load(Place::LocalArray { array: a, index: k });
    body.block.push(Statement::Store {
        place: scalar(f[1]),
        value: x,
    });
    m.kernels.push(Kernel {
        phase: Phase::Init,
        body,
    });
    let vm = validate(&m).expect("valid");
    let mut d = MechData::new(&vm, 3, 1);
    d.fields[0][..3].copy_from_slice(&[39.0, 0.0, 40.0]);
    let (s, out) = run_both(&vm, Phase::Init, &d);
    assert_eq!(s, STATUS_MECHANISM_ERROR);
    assert_eq!(out.error_instance, 2);
    assert_eq!(
        &out.fields[1][..2],
        &[2.0, 2.0],
        "fresh zeros for each instance"
    );
}

#[test]
fn global_array_index_out_of_range_fails_in_an_instance_less_kernel() {
    let mut m = Module::default();
    let g = m.layout.globals.append(GlobalDecl {
        name: "tab".into(),
        array_len: 4,
    });
    let mut body = Body::default();
    let i = body.local("i", Type::F64);
    let start = body.constant(0.0);
    let end = body.constant(4.0); // one past the end: the last store fails
    let iv = body.read(i);
    let val = body.read(i);
    body.block.push(Statement::ForRange {
        var: i,
        start,
        end,
        step: 1.0,
        body: vec![Statement::Store {
            place: Place::Global {
                global: g,
                index: Some(iv),
            },
            value: val,
        }],
        max_iterations: 100,
    });
    m.kernels.push(Kernel {
        phase: Phase::TableCheck,
        body,
    });
    let vm = validate(&m).expect("valid");
    let d = MechData::new(&vm, 3, 1);
    let (s, out) = run_both(&vm, Phase::TableCheck, &d);
    assert_eq!(s, STATUS_MECHANISM_ERROR);
    // table_check runs per instance; the first one fails.
    assert_eq!(out.error_instance, 0);
    assert_eq!(out.globals, vec![0.0, 1.0, 2.0, 3.0]);
}

#[test]
fn runaway_loops_hit_their_cap() {
    // A PROCEDURE with `while (1) {}` called from the kernel, and a FROM loop
    // to infinity: both fail with STATUS_MECHANISM_ERROR instead of hanging.
    let (mut m, f) = module_with_fields(&[("n", 1)]);
    let spin = {
        let mut body = Body::default();
        let yes = body.expr(Expression::Bool(true));
        body.block.push(Statement::While {
            condition: yes,
            body: vec![],
            max_iterations: 1_000_000,
        });
        m.functions.append(Function {
            name: "spin".into(),
            params: vec![],
            result: None,
            body,
        })
    };
    let mut body = Body::default();
    let i = body.local("i", Type::F64);
    let start = body.constant(0.0);
    let end = body.constant(f64::INFINITY);
    let n = body.load(scalar(f[0]));
    let one = body.constant(1.0);
    let n1 = body.binary(BinaryOp::Add, n, one);
    body.block.push(Statement::ForRange {
        var: i,
        start,
        end,
        step: 1.0,
        body: vec![Statement::Store {
            place: scalar(f[0]),
            value: n1,
        }],
        max_iterations: 1000,
    });
    m.kernels.push(Kernel {
        phase: Phase::State,
        body,
    });
    let mut body = Body::default();
    body.block.push(Statement::Call {
        function: spin,
        args: vec![],
    });
    m.kernels.push(Kernel {
        phase: Phase::Init,
        body,
    });
    let vm = validate(&m).expect("valid");
    let d = MechData::new(&vm, 2, 1);
    let (s, out) = run_both(&vm, Phase::State, &d);
    assert_eq!(s, STATUS_MECHANISM_ERROR);
    assert_eq!(out.error_instance, 0);
    assert_eq!(
        out.fields[0][0], 1000.0,
        "exactly the capped number of iterations ran"
    );
    let (s, out) = run_both(&vm, Phase::Init, &d);
    assert_eq!(s, STATUS_MECHANISM_ERROR);
    assert_eq!(out.error_instance, 0);
}

#[test]
fn unset_pointer_fails_with_pointer_unset() {
    let (mut m, f) = module_with_fields(&[("y", 1)]);
    let p = m.layout.pointers.append(PointerDecl { name: "p".into() });
    // y = p; p = y + 1
    let mut body = Body::default();
    let x = body.load(Place::Pointer(p));
    body.block.push(Statement::Store {
        place: scalar(f[0]),
        value: x,
    });
    let y = body.load(scalar(f[0]));
    let one = body.constant(1.0);
    let y1 = body.binary(BinaryOp::Add, y, one);
    body.block.push(Statement::Store {
        place: Place::Pointer(p),
        value: y1,
    });
    m.kernels.push(Kernel {
        phase: Phase::Cur,
        body,
    });
    let vm = validate(&m).expect("valid");
    let mut d = MechData::new(&vm, 3, 1);
    d.pointer_pool = vec![5.0, 7.0];
    d.pointers[0] = vec![Some(0), Some(1), None];
    let (s, out) = run_both(&vm, Phase::Cur, &d);
    assert_eq!(s, STATUS_POINTER_UNSET);
    assert_eq!(out.error_instance, 2);
    assert_eq!(out.pointer_pool, vec![6.0, 8.0]);
    assert_eq!(&out.fields[0][..3], &[5.0, 7.0, 0.0]);
}

#[test]
fn weight_index_past_n_weights_fails_and_error_status_propagates() {
    let mut m = Module::default();
    let fail = {
        let mut body = Body::default();
        body.block.push(Statement::Error { status: 3 });
        let r = body.local("r", Type::F64);
        m.functions.append(Function {
            name: "fail".into(),
            params: vec![],
            result: Some(r),
            body,
        })
    };
    let mut body = Body::default();
    let w = body.load(Place::Weight(2));
    body.block.push(Statement::Store {
        place: Place::Weight(0),
        value: w,
    });
    let flag = body.expr(Expression::Env(EnvVar::Flag));
    let one = body.constant(1.0);
    let is_one = body.binary(BinaryOp::Eq, flag, one);
    let call = body.call(fail, &[]);
    body.block.push(Statement::If {
        condition: is_one,
        accept: vec![Statement::Store {
            place: Place::Weight(1),
            value: call,
        }],
        reject: vec![],
    });
    m.kernels.push(Kernel {
        phase: Phase::NetReceive,
        body,
    });
    let vm = validate(&m).expect("valid");
    let jit = jit::compile(&vm).expect("compiles");
    let d = MechData::new(&vm, 4, 1);
    for (weights, flag, status) in [
        (vec![1.0, 2.0, 3.0], 0.0, STATUS_OK),
        (vec![1.0, 2.0], 0.0, STATUS_MECHANISM_ERROR),
        (vec![1.0, 2.0, 3.0], 1.0, 3),
    ] {
        let (mut a, mut b) = (d.clone(), d.clone());
        let (mut wa, mut wb) = (weights.clone(), weights.clone());
        let sa = interp::run_event(&vm, Phase::NetReceive, &mut a, 3, &mut wa, flag).unwrap();
        let sb = jit::run_event(&jit, &vm, Phase::NetReceive, &mut b, 3, &mut wb, flag).unwrap();
        assert_eq!(
            (sa, sb),
            (status, status),
            "weights {weights:?} flag {flag}"
        );
        assert_eq!(wa, wb);
        assert!(diff_data(&a, &b).is_empty());
        if status != STATUS_OK {
            assert_eq!(a.error_instance, 3);
        } else {
            assert_eq!(wa[0], 3.0);
        }
    }
}

#[test]
fn mismatched_data_is_reported_not_read() {
    let (mut m, f) = module_with_fields(&[("y", 1)]);
    let mut body = Body::default();
    let v = body.load(Place::NodeV);
    body.block.push(Statement::Store {
        place: scalar(f[0]),
        value: v,
    });
    m.kernels.push(Kernel {
        phase: Phase::Init,
        body,
    });
    let vm = validate(&m).expect("valid");
    let jit = jit::compile(&vm).expect("compiles");
    let mut d = MechData::new(&vm, 4, 2);
    d.node_index[3] = 9;
    assert!(interp::run_kernel(&vm, Phase::Init, &mut d.clone()).is_err());
    assert!(jit::run_kernel(&jit, &vm, Phase::Init, &mut d).is_err());
    let mut d = MechData::new(&vm, 4, 2);
    d.fields.clear();
    assert!(jit::run_kernel(&jit, &vm, Phase::Init, &mut d).is_err());
}

/// One validation case: a module builder and the error kind it must produce.
fn check_invalid(build: impl FnOnce(&mut Module), want: impl Fn(&IrErrorKind) -> bool) {
    let mut m = Module::default();
    m.layout.fields.append(FieldDecl {
        name: "x".into(),
        array_len: 1,
    });
    m.layout.fields.append(FieldDecl {
        name: "arr".into(),
        array_len: 2,
    });
    build(&mut m);
    let errors = validate(&m).expect_err("must be rejected");
    assert!(errors.iter().any(|e| want(&e.kind)), "{errors:#?}");
}

fn kernel(m: &mut Module, phase: Phase, f: impl FnOnce(&mut Body)) {
    let mut body = Body::default();
    f(&mut body);
    m.kernels.push(Kernel { phase, body });
}

#[test]
fn validator_rejects_bad_ir() {
    let x = Handle::<FieldDecl>::from_index(0);
    let arr = Handle::<FieldDecl>::from_index(1);
    // A field handle past the layout.
    check_invalid(
        |m| {
            kernel(m, Phase::Init, |b| {
                b.load(scalar(Handle::from_index(7)));
            })
        },
        |k| matches!(k, IrErrorKind::BadHandle("fields", 7)),
    );
    // A child expression after its parent.
    check_invalid(
        |m| {
            kernel(m, Phase::Init, |b| {
                b.expr(Expression::Unary {
                    op: UnaryOp::Neg,
                    arg: Handle::from_index(1),
                });
                b.constant(1.0);
            })
        },
        |k| matches!(k, IrErrorKind::ForwardReference(1)),
    );
    // A bool where an f64 is stored.
    check_invalid(
        |m| {
            kernel(m, Phase::Init, |b| {
                let t = b.expr(Expression::Bool(true));
                b.block.push(Statement::Store {
                    place: scalar(x),
                    value: t,
                });
            })
        },
        |k| matches!(k, IrErrorKind::TypeMismatch { .. }),
    );
    // An array field without an index.
    check_invalid(
        |m| {
            kernel(m, Phase::Init, |b| {
                b.load(scalar(arr));
            })
        },
        |k| matches!(k, IrErrorKind::IndexMismatch(_)),
    );
    // A math built-in with the wrong arity.
    check_invalid(
        |m| {
            kernel(m, Phase::Init, |b| {
                let one = b.constant(1.0);
                b.math(MathFn::Atan2, &[one]);
            })
        },
        |k| matches!(k, IrErrorKind::Arity { .. }),
    );
    // A call with the wrong arity, a procedure used as a value.
    check_invalid(
        |m| {
            let p = m.functions.append(Function {
                name: "p".into(),
                ..Function::default()
            });
            kernel(m, Phase::Init, |b| {
                b.call(p, &[]);
            })
        },
        |k| matches!(k, IrErrorKind::ProcedureAsValue(_)),
    );
    check_invalid(
        |m| {
            let p = m.functions.append(Function {
                name: "p".into(),
                ..Function::default()
            });
            kernel(m, Phase::Init, |b| {
                let one = b.constant(1.0);
                b.block.push(Statement::Call {
                    function: p,
                    args: vec![one],
                });
            })
        },
        |k| matches!(k, IrErrorKind::Arity { .. }),
    );
    // Recursion.
    check_invalid(
        |m| {
            let mut body = Body::default();
            body.block.push(Statement::Call {
                function: Handle::from_index(0),
                args: vec![],
            });
            m.functions.append(Function {
                name: "r".into(),
                body,
                ..Function::default()
            });
        },
        |k| matches!(k, IrErrorKind::Recursion(_)),
    );
    // Weights outside NET_RECEIVE, net_send in a function.
    check_invalid(
        |m| {
            kernel(m, Phase::Cur, |b| {
                b.load(Place::Weight(0));
            })
        },
        |k| matches!(k, IrErrorKind::NotAllowedHere(_)),
    );
    check_invalid(
        |m| {
            let mut body = Body::default();
            let z = body.constant(0.0);
            body.block.push(Statement::NetSend { delay: z, flag: z });
            m.functions.append(Function {
                name: "s".into(),
                body,
                ..Function::default()
            });
        },
        |k| matches!(k, IrErrorKind::NotAllowedHere(_)),
    );
    // Two kernels for one phase; storing v; status 0; a zero FROM step.
    check_invalid(
        |m| {
            kernel(m, Phase::Cur, |_| {});
            kernel(m, Phase::Cur, |_| {});
        },
        |k| matches!(k, IrErrorKind::DuplicatePhase(Phase::Cur)),
    );
    check_invalid(
        |m| {
            kernel(m, Phase::Cur, |b| {
                let z = b.constant(0.0);
                b.block.push(Statement::Store {
                    place: Place::NodeV,
                    value: z,
                });
            })
        },
        |k| matches!(k, IrErrorKind::NotStorable(_)),
    );
    check_invalid(
        |m| {
            kernel(m, Phase::Cur, |b| {
                b.block.push(Statement::Error { status: 0 })
            })
        },
        |k| matches!(k, IrErrorKind::ZeroStatus),
    );
    check_invalid(
        |m| {
            kernel(m, Phase::Cur, |b| {
                let i = b.local("i", Type::F64);
                let z = b.constant(0.0);
                b.block.push(Statement::ForRange {
                    var: i,
                    start: z,
                    end: z,
                    step: 0.0,
                    body: vec![],
                    max_iterations: 1,
                });
            })
        },
        |k| matches!(k, IrErrorKind::BadStep(_)),
    );
}
