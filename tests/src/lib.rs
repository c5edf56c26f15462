//! NEURON-parity machinery shared by the suites in `tests/tests/`.
//!
//! A protocol of `tests/data/neuron/` (format: that folder's README) is
//! loaded with [`load_reference`], rebuilt and run with [`build_and_run`]
//! (the caller's `setup` closure registers the mechanisms: hand-written test
//! kernels, JIT-compiled .mod files, built-ins), and checked with
//! [`compare`], whose [`Comparison`] prints a table of every trace's max
//! |Δ| against its tolerance. The corpus side lists every third-party
//! mechanism with [`corpus_cases`], runs one with [`run_corpus_case`] given
//! a compiler closure, and renders the README table with [`corpus_table`].
//!
//! Nothing here knows where mechanisms come from, and no expected value
//! comes from this project's own output: every number compared is NEURON's.

pub mod compare;
pub mod corpus;
pub mod reference;
pub mod run;

pub use compare::{compare, Comparison, SpikeComparison, Tolerances, TraceComparison, TraceStatus};
pub use corpus::{corpus_cases, corpus_table, run_corpus_case, CorpusCase, CorpusOutcome};
pub use reference::{load_reference, CorpusKind, PointerLink, Reference, Simulation};
pub use run::{build_and_run, build_model, BuiltModel, RunOptions, RunResult, Trace, TraceKind};

/// The reference-data folder, `tests/data/neuron/`.
pub fn data_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/neuron")
}

/// The corpus folder: `$NRNRS_CORPUS` if set, else `.cache/corpus/` at the
/// repository root (made by `scripts/fetch_corpus.py`, never committed).
pub fn corpus_dir() -> std::path::PathBuf {
    match std::env::var_os("NRNRS_CORPUS") {
        Some(p) => std::path::PathBuf::from(p),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/corpus"),
    }
}

/// [`corpus_dir`], for a test that needs it: panics, saying how to fetch
/// the corpus, when the folder is missing.
pub fn fetched_corpus_dir() -> std::path::PathBuf {
    let root = corpus_dir();
    assert!(
        root.is_dir(),
        "{} is missing: run `python3 scripts/fetch_corpus.py` (scripts/test does)",
        root.display()
    );
    root
}
