//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod gen;
pub mod hh;

use std::path::{Path, PathBuf};

use codegen::interp::MechData;
use codegen::valid;

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

/// Every `.mod` file under `dir`, recursively, in name order.
pub fn mod_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut v: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    v.sort();
    for p in v {
        if p.is_dir() {
            mod_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "mod") {
            out.push(p);
        }
    }
}

/// Plausible data for a lowered mechanism: parameter defaults, voltages
/// spread over the range a neuron visits, NEURON's default ion values.
pub fn lowered_data(vm: &valid::ValidModule, spec: &runtime::MechanismSpec) -> MechData {
    let mut d = MechData::new(vm, 5, 3);
    let mut col = 0;
    for f in &spec.fields {
        for _ in 0..f.array_len {
            d.fields[col].iter_mut().for_each(|x| *x = f.default_value);
            col += 1;
        }
    }
    let mut slot = 0;
    for g in &spec.globals {
        for _ in 0..g.array_len {
            d.globals[slot] = g.default_value;
            slot += 1;
        }
    }
    d.v = vec![-65.0, -20.0, 25.0];
    d.area = vec![314.159, 100.0, 1256.6];
    d.diam = vec![10.0, 1.0, 20.0];
    for (k, ion) in d.ions.iter_mut().enumerate() {
        let (e, ci, co) = match spec.ions[k].name.as_str() {
            "na" => (50.0, 10.0, 140.0),
            "k" => (-77.0, 54.4, 2.5),
            "ca" => (132.5, 5e-5, 2.0),
            _ => (0.0, 1.0, 1.0),
        };
        ion.erev.iter_mut().for_each(|x| *x = e);
        ion.conc_i.iter_mut().for_each(|x| *x = ci);
        ion.conc_o.iter_mut().for_each(|x| *x = co);
        ion.valence = spec.ions[k].valence.unwrap_or(1.0);
    }
    d
}

/// Runs a lowered mechanism through the interpreter and another back end in
/// lockstep — TABLE check, INITIAL, 40 steps of currents and states, a
/// NET_RECEIVE event every 10 steps — and reports the first phase where
/// statuses, data or weights differ. `other` runs a non-event phase,
/// `other_event` one NET_RECEIVE event at instance 1 with flag 0.
pub fn lockstep(
    vm: &valid::ValidModule,
    spec: &runtime::MechanismSpec,
    other: &dyn Fn(codegen::ir::Phase, &mut MechData) -> Result<i32, String>,
    other_event: &dyn Fn(&mut MechData, &mut [f64]) -> Result<i32, String>,
) -> Result<(), String> {
    use codegen::interp;
    use codegen::ir::Phase;
    let mut a = lowered_data(vm, spec);
    let mut b = a.clone();
    let has = |p: Phase| vm.module().kernel(p).is_some();
    let step = |a: &mut MechData, b: &mut MechData, p: Phase, what: &str| -> Result<(), String> {
        if !has(p) {
            return Ok(());
        }
        let sa = interp::run_kernel(vm, p, a).map_err(|e| e.0)?;
        let sb = other(p, b)?;
        let diffs = diff_data(a, b);
        if sa != sb || !diffs.is_empty() {
            return Err(format!("{what} {p:?}: status {sa} vs {sb}; {diffs:?}"));
        }
        Ok(())
    };
    step(&mut a, &mut b, Phase::TableCheck, "initial")?;
    step(&mut a, &mut b, Phase::Init, "initial")?;
    for k in 0..40 {
        for d in [&mut a, &mut b] {
            d.t = k as f64 * 0.025;
            d.rhs.iter_mut().for_each(|x| *x = 0.0);
            d.d.iter_mut().for_each(|x| *x = 0.0);
            for ion in &mut d.ions {
                ion.cur.iter_mut().for_each(|x| *x = 0.0);
                ion.dcurdv.iter_mut().for_each(|x| *x = 0.0);
            }
        }
        let what = format!("step {k}");
        step(&mut a, &mut b, Phase::TableCheck, &what)?;
        step(&mut a, &mut b, Phase::Cur, &what)?;
        step(&mut a, &mut b, Phase::State, &what)?;
        if has(Phase::NetReceive) && k % 10 == 5 {
            let mut wa = vec![0.01; 8];
            let mut wb = wa.clone();
            let sa = interp::run_event(vm, Phase::NetReceive, &mut a, 1, &mut wa, 0.0)
                .map_err(|e| e.0)?;
            let sb = other_event(&mut b, &mut wb)?;
            let mut diffs = diff_data(&a, &b);
            diffs.extend(diff_slices("weights", &wa, &wb));
            if sa != sb || !diffs.is_empty() {
                return Err(format!(
                    "{what} NET_RECEIVE: status {sa} vs {sb}; {diffs:?}"
                ));
            }
        }
    }
    Ok(())
}
