//! The registry corpus under NEURON parity: each `.mod` file of
//! `.cache/corpus/` with its reference file under
//! `tests/data/neuron/corpus/`, run through a caller-supplied compiler.

use crate::compare::{compare, Comparison, Tolerances};
use crate::reference::{load_reference, CorpusKind};
use crate::run::{build_and_run, RunOptions};
use runtime::{MechanismSpec, Model};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// One corpus mechanism: a reference file (or its absence) and the .mod
/// file it was made from.
#[derive(Debug, Clone, PartialEq)]
pub struct CorpusCase {
    /// The .mod file, relative to the corpus root (`bmtk-1.2.0/…/NaTa.mod`).
    pub mod_file: String,
    /// The .mod file on disk.
    pub mod_path: PathBuf,
    /// The reference JSON, `None` if the .mod file has none.
    pub reference_path: Option<PathBuf>,
    /// The mechanism name, when the reference gives one.
    pub mechanism: Option<String>,
    /// The mechanism kind, when the reference gives one.
    pub kind: Option<CorpusKind>,
    /// The reference's status: `"ok"`, why NEURON made no simulation, or
    /// why the reference could not be read.
    pub status: String,
}

/// How one corpus case ended.
#[derive(Debug, Clone, PartialEq)]
pub enum CorpusOutcome {
    /// The file compiled and every trace and spike matched NEURON.
    Matches(Comparison),
    /// The file compiled and ran, but some trace or spike differs.
    Differs(Comparison),
    /// The compiler rejected the file; the text is its diagnostic.
    Rejected(String),
    /// The file compiled, but NEURON made no reference run (the reason is
    /// the reference's status).
    NoReference(String),
    /// Building or running the model failed.
    RunFailed(String),
}

impl CorpusOutcome {
    /// A short label for tables and counts.
    pub fn label(&self) -> &'static str {
        match self {
            CorpusOutcome::Matches(_) => "matches NEURON",
            CorpusOutcome::Differs(_) => "differs",
            CorpusOutcome::Rejected(_) => "rejected",
            CorpusOutcome::NoReference(_) => "no reference",
            CorpusOutcome::RunFailed(_) => "run failed",
        }
    }
}

fn walk(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, ext, out);
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
}

fn slash_path(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Lists the corpus: every reference JSON under `data_dir/corpus/` (hidden
/// folders included, e.g. the neuron wheel's `.data/`), with its .mod file
/// under `corpus_root`, plus a case with `reference_path: None` for every
/// .mod file that has no reference. Runs once per suite; reads every
/// reference file. Sorted by .mod path, then mechanism.
pub fn corpus_cases(corpus_root: &Path, data_dir: &Path) -> Vec<CorpusCase> {
    let mut jsons = Vec::new();
    walk(&data_dir.join("corpus"), "json", &mut jsons);
    let mut cases = Vec::new();
    let mut covered = BTreeSet::new();
    for json in jsons {
        let case = match load_reference(&json) {
            Ok(r) => match r.corpus {
                Some(c) => CorpusCase {
                    mod_path: corpus_root.join(&c.mod_file),
                    mod_file: c.mod_file,
                    reference_path: Some(json),
                    mechanism: c.mechanism,
                    kind: c.kind,
                    status: c.status,
                },
                None => CorpusCase {
                    mod_file: String::new(),
                    mod_path: PathBuf::new(),
                    reference_path: Some(json.clone()),
                    mechanism: None,
                    kind: None,
                    status: format!("invalid reference: {} has no `mod_file`", json.display()),
                },
            },
            Err(e) => CorpusCase {
                mod_file: String::new(),
                mod_path: PathBuf::new(),
                reference_path: Some(json),
                mechanism: None,
                kind: None,
                status: format!("invalid reference: {e}"),
            },
        };
        covered.insert(case.mod_file.clone());
        cases.push(case);
    }
    let mut mods = Vec::new();
    walk(corpus_root, "mod", &mut mods);
    for m in mods {
        let rel = slash_path(m.strip_prefix(corpus_root).unwrap_or(&m));
        if !covered.contains(&rel) {
            cases.push(CorpusCase {
                mod_file: rel,
                mod_path: m,
                reference_path: None,
                mechanism: None,
                kind: None,
                status: "no reference file in tests/data/neuron/corpus (rerun scripts/neuron_reference/corpus.py)"
                    .into(),
            });
        }
    }
    cases.sort_by(|a, b| (&a.mod_file, &a.mechanism).cmp(&(&b.mod_file, &b.mechanism)));
    cases
}

/// Runs one corpus case. Runs once per case, single-threaded; reads the
/// .mod file (through `compile`) and the reference. A missing .mod file is
/// [`CorpusOutcome::RunFailed`], never `Rejected`.
///
/// `compile` turns the .mod file into its mechanism specs; an `Err` is the
/// compiler's diagnostic and gives [`CorpusOutcome::Rejected`], whatever
/// the reference says. `builtins` supplies the mechanisms the protocol uses
/// besides the file's own (pas, IClamp, NetStim, hh for `usetable_hh`); they
/// are registered first, as NEURON's built-ins precede user mechanisms,
/// except those whose name the file itself defines (NEURON's own
/// `netstim.mod` drives itself with its own NetStim, as NEURON did). Then
/// the protocol is built, run and compared with [`Tolerances::default`].
pub fn run_corpus_case(
    case: &CorpusCase,
    builtins: &dyn Fn() -> Result<Vec<MechanismSpec>, String>,
    compile: &dyn Fn(&Path) -> Result<Vec<MechanismSpec>, String>,
) -> CorpusOutcome {
    if !case.mod_path.is_file() {
        return CorpusOutcome::RunFailed(format!(
            "{} is missing (run scripts/fetch_corpus.py, or set NRNRS_CORPUS)",
            case.mod_path.display()
        ));
    }
    let specs = match compile(&case.mod_path) {
        Ok(s) => s,
        Err(e) => return CorpusOutcome::Rejected(e),
    };
    let Some(reference_path) = &case.reference_path else {
        return CorpusOutcome::NoReference(case.status.clone());
    };
    if case.status != "ok" {
        return CorpusOutcome::NoReference(case.status.clone());
    }
    let names: BTreeSet<String> = specs.iter().map(|s| s.name.clone()).collect();
    if let Some(mech) = &case.mechanism {
        if !names.contains(mech) {
            return CorpusOutcome::RunFailed(format!(
                "{} compiled to {:?}, which lacks the mechanism {mech}",
                case.mod_file, names
            ));
        }
    }
    let reference = match load_reference(reference_path) {
        Ok(r) => r,
        Err(e) => return CorpusOutcome::RunFailed(e),
    };
    let builtin_specs = match builtins() {
        Ok(b) => b,
        Err(e) => return CorpusOutcome::RunFailed(format!("built-in mechanisms: {e}")),
    };
    let setup = |m: &mut Model| -> Result<(), String> {
        for spec in builtin_specs.iter().filter(|s| !names.contains(&s.name)) {
            m.register(spec.clone())
                .map_err(|e| format!("registering built-in {}: {e}", spec.name))?;
        }
        for spec in &specs {
            m.register(spec.clone())
                .map_err(|e| format!("registering {} from {}: {e}", spec.name, case.mod_file))?;
        }
        Ok(())
    };
    match build_and_run(&reference, &setup, &RunOptions::default()) {
        Ok(result) => {
            let c = compare(&reference, &result, &Tolerances::default());
            if c.passed() {
                CorpusOutcome::Matches(c)
            } else {
                CorpusOutcome::Differs(c)
            }
        }
        Err(e) => CorpusOutcome::RunFailed(e),
    }
}

/// Makes text safe for one Markdown table cell: the first line only, pipes
/// escaped, at most 160 characters.
fn cell(text: &str) -> String {
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let mut s: String = line.chars().take(160).collect();
    if line.chars().count() > 160 {
        s.push('…');
    }
    s.replace('|', "\\|")
}

/// Renders corpus outcomes as a Markdown table (file, mechanism, kind,
/// outcome, max |ΔV|, reason) for the README, followed by a count per
/// outcome. Pure.
pub fn corpus_table(outcomes: &[(CorpusCase, CorpusOutcome)]) -> String {
    let mut out = String::from(
        "| file | mechanism | kind | outcome | max \\|ΔV\\| (mV) | reason |\n|---|---|---|---|---|---|\n",
    );
    for (case, outcome) in outcomes {
        let (dv, reason) = match outcome {
            CorpusOutcome::Matches(c) => (c.max_v_diff(), String::new()),
            CorpusOutcome::Differs(c) => (c.max_v_diff(), c.first_failure().unwrap_or_default()),
            CorpusOutcome::Rejected(e)
            | CorpusOutcome::NoReference(e)
            | CorpusOutcome::RunFailed(e) => (None, e.clone()),
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            case.mod_file,
            case.mechanism.as_deref().unwrap_or("-"),
            case.kind.map_or("-".to_string(), |k| k.to_string()),
            outcome.label(),
            dv.map_or("-".to_string(), |d| format!("{d:.1e}")),
            cell(&reason)
        ));
    }
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for (_, o) in outcomes {
        match counts.iter_mut().find(|(l, _)| *l == o.label()) {
            Some((_, n)) => *n += 1,
            None => counts.push((o.label(), 1)),
        }
    }
    let summary: Vec<String> = counts.iter().map(|(l, n)| format!("{n} {l}")).collect();
    out.push_str(&format!(
        "\n{} cases: {}.\n",
        outcomes.len(),
        summary.join(", ")
    ));
    out
}
