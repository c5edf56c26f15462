//! Every lowered mechanism (our built-ins, the codegen fixtures, and the
//! registry corpus when it has been fetched) runs through the reference interpreter and the JIT in
//! lockstep — table check, INITIAL, 40 steps of currents and states, and
//! NET_RECEIVE events — and the two agree bit for bit after every phase.

mod common;

use std::path::Path;

use codegen::interp::{self, MechData};
use codegen::ir::Phase;
use codegen::{jit, lower, valid};
use common::{diff_data, lowered_data, mod_files};
use nmodl_frontend::source::SourceMap;

fn check_file(path: &Path) -> Result<bool, String> {
    let mut sources = SourceMap::new();
    let r = nmodl_frontend::check_file(&mut sources, path);
    let Some(model) = r.model else {
        return Ok(false);
    };
    let Ok(lowered) = lower::lower(&model) else {
        return Ok(false);
    };
    let vm = valid::validate(&lowered.module).map_err(|e| format!("{e:?}"))?;
    let jit = jit::compile(&vm).map_err(|e| e.0)?;
    let mut a = lowered_data(&vm, &lowered.spec);
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
            let sa = interp::run_event(&vm, Phase::NetReceive, &mut a, 1, &mut wa, 0.0)
                .map_err(|e| e.0)?;
            let sb = jit::run_event(&jit, &vm, Phase::NetReceive, &mut b, 1, &mut wb, 0.0)
                .map_err(|e| e.0)?;
            let diffs = diff_data(&a, &b);
            if sa != sb
                || !diffs.is_empty()
                || wa.iter().zip(&wb).any(|(x, y)| x.to_bits() != y.to_bits())
            {
                return Err(format!(
                    "{what} NET_RECEIVE: status {sa} vs {sb}; {diffs:?}"
                ));
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
