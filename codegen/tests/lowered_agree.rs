//! Every lowered mechanism (our built-ins, the codegen fixtures, and the
//! registry corpus when it has been fetched) runs through the reference interpreter and the JIT in
//! lockstep — table check, INITIAL, 40 steps of currents and states, and
//! NET_RECEIVE events — and the two agree bit for bit after every phase.

mod common;

use std::path::{Path, PathBuf};

use codegen::interp::{self, MechData};
use codegen::ir::Phase;
use codegen::{jit, lower, valid};
use common::diff_data;
use nmodl_frontend::source::SourceMap;

fn mod_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
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

/// Plausible data: parameter defaults, voltages spread over the range a
/// neuron visits, NEURON's default ion values.
fn data_for(vm: &valid::ValidModule, spec: &runtime::MechanismSpec) -> MechData {
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

fn check_file(path: &Path) -> Result<bool, String> {
    let mut sources = SourceMap::new();
    let r = nmodl_frontend::check_file(&mut sources, path);
    let Some(model) = r.model else { return Ok(false) };
    let Ok(lowered) = lower::lower(&model) else { return Ok(false) };
    let vm = valid::validate(&lowered.module).map_err(|e| format!("{e:?}"))?;
    let jit = jit::compile(&vm).map_err(|e| e.0)?;
    let mut a = data_for(&vm, &lowered.spec);
    let mut b = a.clone();
    let has = |p: Phase| vm.module().kernel(p).is_some();
    let step = |a: &mut MechData, b: &mut MechData, p: Phase, what: &str| -> Result<(), String> {
        if !has(p) {
            return Ok(());
        }
        let sa = interp::run_kernel(&vm, p, a).map_err(|e| e.0)?;
        let sb = jit::run_kernel(&jit, &vm, p, b).map_err(|e| e.0)?;
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
            let sa = interp::run_event(&vm, Phase::NetReceive, &mut a, 1, &mut wa, 0.0).map_err(|e| e.0)?;
            let sb = jit::run_event(&jit, &vm, Phase::NetReceive, &mut b, 1, &mut wb, 0.0).map_err(|e| e.0)?;
            let diffs = diff_data(&a, &b);
            if sa != sb || !diffs.is_empty() || wa.iter().zip(&wb).any(|(x, y)| x.to_bits() != y.to_bits()) {
                return Err(format!("{what} NET_RECEIVE: status {sa} vs {sb}; {diffs:?}"));
            }
        }
    }
    Ok(true)
}

#[test]
fn interpreter_and_jit_agree_bit_for_bit_on_every_lowered_mechanism() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    mod_files(&root.join("mechanisms/mod"), &mut files);
    mod_files(&root.join("codegen/tests/fixtures/mod"), &mut files);
    let builtins = files.len();
    mod_files(&root.join(".cache/corpus"), &mut files);
    let mut failures = Vec::new();
    let mut checked = 0;
    for f in &files {
        match check_file(f) {
            Ok(true) => checked += 1,
            Ok(false) => {}
            Err(e) => failures.push(format!("{}: {e}", f.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= builtins, "only {checked} files checked");
    eprintln!("{checked} mechanisms agree");
}
