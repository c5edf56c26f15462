//! Issue 5's corpus acceptance: nrnivmodl-rs builds the registry corpus
//! folders, and the libraries load and reproduce NEURON 9.0.2.
//!
//! Each corpus folder is built by nrnivmodl-rs's own build
//! (`nrnivmodl_rs::build::run`) from the files our compiler accepts (the
//! others, VERBATIM C above all, are rejected with a located diagnostic;
//! `corpus_parity.rs` checks that). The library is loaded with
//! `Model::load_library`, and each file's mechanism, taken from the library
//! instead of the JIT, runs NEURON's single-compartment protocol against the
//! NEURON reference with the same tolerances as the JIT suite.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use runtime::{MechanismSpec, Model};
use tests::{corpus_cases, data_dir, fetched_corpus_dir, run_corpus_case, CorpusOutcome};

#[test]
fn every_corpus_folder_builds_loads_and_matches_neuron() {
    let root = fetched_corpus_dir();
    let cases = corpus_cases(&root, &data_dir());
    // Folder → (file, mechanism name) of every file the compiler accepts.
    let mut folders: BTreeMap<PathBuf, Vec<(PathBuf, String)>> = BTreeMap::new();
    let mut rejected = 0;
    for case in &cases {
        match codegen::load::compile_file(&case.mod_path) {
            Ok(c) => folders
                .entry(case.mod_path.parent().unwrap().to_path_buf())
                .or_default()
                .push((case.mod_path.clone(), c.spec.name.clone())),
            Err(_) => rejected += 1,
        }
    }
    let accepted: usize = folders.values().map(Vec::len).sum();
    eprintln!(
        "{accepted} accepted files in {} folders ({rejected} rejected)",
        folders.len()
    );
    assert!(accepted >= 50, "only {accepted} corpus files compile");

    let mut bad = Vec::new();
    let mut matched = 0;
    for (k, (folder, files)) in folders.iter().enumerate() {
        let paths: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
        let lib = common::nrnivmodl_rs(&format!("corpus_aot/{k}"), &paths);
        let mut m = Model::new();
        let keys = m
            .load_library(&lib)
            .unwrap_or_else(|e| panic!("{}: {e}", folder.display()));
        let specs: BTreeMap<String, MechanismSpec> = keys
            .iter()
            .map(|key| {
                let spec = m.mechanism_spec(key).unwrap().clone();
                (spec.name.clone(), spec)
            })
            .collect();
        assert_eq!(specs.len(), files.len(), "{}", folder.display());
        let from_library = |path: &Path| -> Result<Vec<MechanismSpec>, String> {
            let (_, name) = files.iter().find(|(p, _)| p == path).unwrap();
            specs
                .get(name)
                .map(|s| vec![s.clone()])
                .ok_or_else(|| format!("{name} is not in {}", lib.display()))
        };
        for case in cases.iter().filter(|c| paths.contains(&c.mod_path)) {
            match run_corpus_case(case, &common::builtin_specs, &from_library) {
                CorpusOutcome::Matches(_) => matched += 1,
                CorpusOutcome::NoReference(_) => {}
                other => bad.push(format!("{}: {other:?}", case.mod_file)),
            }
        }
    }
    eprintln!("{matched} files match NEURON through the compiled libraries");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
