//! The registry corpus: every real `.mod` file that `scripts/fetch_corpus.py`
//! extracts (NEURON 9.0.2's own mechanisms and those shipped by bluepyopt,
//! bmtk and hnn-core) must be accepted by the front end without an error,
//! since NEURON 9.0.2 accepts them all.
//!
//! The corpus lives in `.cache/corpus/` (never committed); set `NRNRS_CORPUS`
//! to use another folder.

use nmodl_frontend::check_file;
use nmodl_frontend::render::render;
use nmodl_frontend::source::SourceMap;
use std::path::{Path, PathBuf};

/// The number of .mod files the pinned packages contain.
const EXPECTED_FILES: usize = 71;

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "mod") {
            out.push(p);
        }
    }
}

#[test]
fn every_corpus_file_checks_without_errors() {
    let dir = tests::fetched_corpus_dir();
    let mut files = Vec::new();
    walk(&dir, &mut files);
    files.sort();
    assert!(
        files.len() >= EXPECTED_FILES,
        "found {} .mod files in {}, expected at least {EXPECTED_FILES}; run `scripts/fetch_corpus.py`",
        files.len(),
        dir.display()
    );
    let mut failures = String::new();
    let mut failed = 0;
    for f in &files {
        let mut sources = SourceMap::new();
        let result = check_file(&mut sources, f);
        if result.has_errors() {
            failed += 1;
            let errors: Vec<_> = result
                .diagnostics
                .iter()
                .filter(|d| d.is_error())
                .cloned()
                .collect();
            failures.push_str(&render(&sources, &errors, false));
        } else {
            assert!(
                result.model.is_some(),
                "{} resolved to no model",
                f.display()
            );
        }
    }
    assert!(
        failed == 0,
        "{failed} of {} corpus files have errors:\n{failures}",
        files.len()
    );
}
