//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod hh;

use codegen::interp::MechData;

/// Whether two f64 agree bit for bit, or are both NaN.
pub fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// The first difference between two f64 slices, NaN-aware.
pub fn diff_slices(name: &str, a: &[f64], b: &[f64]) -> Option<String> {
    if a.len() != b.len() {
        return Some(format!("{name}: lengths {} vs {}", a.len(), b.len()));
    }
    a.iter().zip(b).position(|(x, y)| !same(*x, *y)).map(|i| {
        format!(
            "{name}[{i}]: {:e} ({:#x}) vs {:e} ({:#x})",
            a[i],
            a[i].to_bits(),
            b[i],
            b[i].to_bits()
        )
    })
}

/// Every difference between two data sets (all columns, host calls,
/// error instance), NaN-aware and bit-exact otherwise.
pub fn diff_data(a: &MechData, b: &MechData) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |d: Option<String>| out.extend(d);
    push(diff_slices("v", &a.v, &b.v));
    push(diff_slices("rhs", &a.rhs, &b.rhs));
    push(diff_slices("d", &a.d, &b.d));
    push(diff_slices("globals", &a.globals, &b.globals));
    push(diff_slices(
        "pointer_pool",
        &a.pointer_pool,
        &b.pointer_pool,
    ));
    for (c, (x, y)) in a.fields.iter().zip(&b.fields).enumerate() {
        push(diff_slices(&format!("field column {c}"), x, y));
    }
    for (k, (x, y)) in a.ions.iter().zip(&b.ions).enumerate() {
        push(diff_slices(&format!("ion {k} erev"), &x.erev, &y.erev));
        push(diff_slices(
            &format!("ion {k} conc_i"),
            &x.conc_i,
            &y.conc_i,
        ));
        push(diff_slices(
            &format!("ion {k} conc_o"),
            &x.conc_o,
            &y.conc_o,
        ));
        push(diff_slices(&format!("ion {k} cur"), &x.cur, &y.cur));
        push(diff_slices(
            &format!("ion {k} dcurdv"),
            &x.dcurdv,
            &y.dcurdv,
        ));
    }
    if a.host.calls.len() != b.host.calls.len() {
        out.push(format!(
            "host calls {:?} vs {:?}",
            a.host.calls, b.host.calls
        ));
    } else {
        for (x, y) in a.host.calls.iter().zip(&b.host.calls) {
            if format!("{x:?}") != format!("{y:?}") {
                out.push(format!("host call {x:?} vs {y:?}"));
            }
        }
    }
    if a.host.rng_state != b.host.rng_state {
        out.push("rng state differs".into());
    }
    if a.error_instance != b.error_instance {
        out.push(format!(
            "error_instance {} vs {}",
            a.error_instance, b.error_instance
        ));
    }
    out
}
