//! Every lowered mechanism (our built-ins, the codegen fixtures, and the
//! registry corpus when it has been fetched) runs through the reference interpreter and the JIT in
//! lockstep — table check, INITIAL, 40 steps of currents and states, and
//! NET_RECEIVE events — and the two agree bit for bit after every phase.

mod common;

use std::path::Path;

use codegen::ir::Phase;
use codegen::{jit, lower, valid};
use common::mod_files;
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
    common::lockstep(
        &vm,
        &lowered.spec,
        &|p, d| jit::run_kernel(&jit, &vm, p, d).map_err(|e| e.0),
        &|d, w| jit::run_event(&jit, &vm, Phase::NetReceive, d, 1, w, 0.0).map_err(|e| e.0),
    )?;
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
