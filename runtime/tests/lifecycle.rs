//! CONSTRUCTOR and DESTRUCTOR kernels: called once per instance at creation
//! (insert, point_process, artificial_cell) and deletion (uninsert,
//! delete_point, delete_section), with the instance's own fields; a failing
//! constructor leaves nothing behind.
mod common;

use runtime::plugin::{KernelFailure, KernelResult, PackView};
use runtime::{abi, Error, MechKind, MechanismSpec};

// Globals: 0 = constructors run, 1 = destructors run, 2 = fail constructors.
// Field 0 `tag` is set by the constructor to the running constructor count.
fn ctor(p: &PackView) -> KernelResult {
    let g = p.globals();
    if g[2].get() != 0.0 {
        return Err(KernelFailure {
            instance: 0,
            status: abi::STATUS_MECHANISM_ERROR,
        });
    }
    assert_eq!(p.count(), 1, "one instance per call");
    g[0].set(g[0].get() + 1.0);
    p.field(0)[0].set(g[0].get());
    Ok(())
}

fn dtor(p: &PackView) -> KernelResult {
    let g = p.globals();
    g[1].set(g[1].get() + 1.0);
    Ok(())
}

runtime::kernel!(fn ctor_k = ctor;);
runtime::kernel!(fn dtor_k = dtor;);

fn spec(name: &str, kind: MechKind) -> MechanismSpec {
    MechanismSpec::new(name, kind)
        .field("tag", abi::FIELD_ASSIGNED, 0.0)
        .global("made", 0.0)
        .global("gone", 0.0)
        .global("fail", 0.0)
        .flags(abi::MECH_THREADSAFE)
        .kernels(abi::NrnKernels {
            constructor: Some(ctor_k),
            destructor: Some(dtor_k),
            ..Default::default()
        })
}

#[test]
fn constructors_and_destructors_run_once_per_instance() {
    let mut m = common::model_with_builtins();
    m.register(spec("dens", MechKind::Density)).unwrap();
    m.register(spec("pnt", MechKind::PointProcess)).unwrap();
    let s = m.create_section("s").unwrap();
    m.set_nseg(s, 3).unwrap();
    m.insert(s, "dens").unwrap();
    assert_eq!(m.global("dens", "made").unwrap(), 3.0);
    // Each instance saw its own fields: tags 1, 2, 3 in segment order.
    let tags: Vec<f64> = [1.0 / 6.0, 0.5, 5.0 / 6.0]
        .iter()
        .map(|&x| m.get_range(s, x, "tag_dens").unwrap())
        .collect();
    assert_eq!(tags, vec![1.0, 2.0, 3.0]);
    let p = m.point_process("pnt", s, 0.5).unwrap();
    assert_eq!(m.global("pnt", "made").unwrap(), 1.0);
    assert_eq!(m.get_point(p, "tag").unwrap(), 1.0);
    m.delete_point(p).unwrap();
    assert_eq!(m.global("pnt", "gone").unwrap(), 1.0);
    m.uninsert(s, "dens").unwrap();
    assert_eq!(m.global("dens", "gone").unwrap(), 3.0);
    // delete_section destroys what the section holds.
    m.insert(s, "dens").unwrap();
    m.point_process("pnt", s, 0.2).unwrap();
    m.delete_section(s).unwrap();
    assert_eq!(m.global("dens", "gone").unwrap(), 6.0);
    assert_eq!(m.global("pnt", "gone").unwrap(), 2.0);
}

#[test]
fn a_failing_constructor_is_an_error_and_leaves_nothing() {
    let mut m = common::model_with_builtins();
    m.register(spec("dens", MechKind::Density)).unwrap();
    m.register(spec("pnt", MechKind::PointProcess)).unwrap();
    let s = m.create_section("s").unwrap();
    m.set_global("dens", "fail", 1.0).unwrap();
    m.set_global("pnt", "fail", 1.0).unwrap();
    let e = m.insert(s, "dens").unwrap_err();
    assert!(
        matches!(
            &e,
            Error::Kernel {
                phase: "constructor",
                ..
            }
        ),
        "{e}"
    );
    assert!(m.get_range(s, 0.5, "tag_dens").is_err(), "not inserted");
    assert!(m.point_process("pnt", s, 0.5).is_err());
    m.set_global("dens", "fail", 0.0).unwrap();
    m.insert(s, "dens").unwrap();
    assert_eq!(m.global("dens", "made").unwrap(), 1.0);
    m.run(-65.0, 0.1).unwrap();
}
