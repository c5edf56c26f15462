//! Every registry-corpus .mod file (scripts/fetch_corpus.py) ends one of
//! two ways: compiled by our JIT and run in NEURON's single-compartment
//! protocol with traces matching NEURON 9.0.2 (issue 4's tolerances), or
//! rejected with a located diagnostic. Files NEURON itself could not
//! simulate (a POINTER needing set-up, a name clash with a NEURON built-in)
//! must still compile or be rejected with a diagnostic.
//!
//! Set `NRNRS_CORPUS_TABLE=<file>` to write the README's Markdown table.

mod common;

use std::path::Path;

use runtime::MechanismSpec;
use tests::{
    corpus_cases, corpus_dir, corpus_table, data_dir, fetched_corpus_dir, run_corpus_case,
    CorpusOutcome,
};

/// Compiles with our JIT; an error is its first line, with the path shown
/// relative to the corpus root.
fn compile(path: &Path) -> Result<Vec<MechanismSpec>, String> {
    let root = format!("{}/", corpus_dir().display());
    codegen::load::compile_file(path)
        .map(|c| vec![c.spec])
        .map_err(|e| e.headline.replace(&root, ""))
}

#[test]
fn every_corpus_file_matches_neuron_or_is_rejected_with_a_location() {
    let root = fetched_corpus_dir();
    let cases = corpus_cases(&root, &data_dir());
    assert_eq!(cases.len(), 71, "the pinned corpus has 71 files");
    let mut outcomes = Vec::new();
    for case in cases {
        let outcome = run_corpus_case(&case, &common::builtin_specs, &compile);
        outcomes.push((case, outcome));
    }
    let table = corpus_table(&outcomes);
    if let Some(path) = std::env::var_os("NRNRS_CORPUS_TABLE") {
        std::fs::write(&path, &table).unwrap();
    }
    let mut bad = Vec::new();
    for (case, outcome) in &outcomes {
        match outcome {
            CorpusOutcome::Matches(_) | CorpusOutcome::NoReference(_) => {}
            // A rejection must name file:line:col.
            CorpusOutcome::Rejected(msg) => {
                let located = msg.split(": ").next().is_some_and(|loc| {
                    loc.matches(':').count() >= 2 && loc.ends_with(|c: char| c.is_ascii_digit())
                });
                if !located {
                    bad.push(format!(
                        "{}: rejected without a location: {msg}",
                        case.mod_file
                    ));
                }
            }
            CorpusOutcome::Differs(c) => {
                bad.push(format!("{}: differs from NEURON:\n{c}", case.mod_file))
            }
            CorpusOutcome::RunFailed(e) => bad.push(format!("{}: run failed: {e}", case.mod_file)),
        }
    }
    assert!(bad.is_empty(), "{}\n\n{table}", bad.join("\n"));
}
