//! Every construct fixture parses (with its INCLUDEs) without a diagnostic,
//! and the ASTs of a few small fixtures are snapshotted.
//!
//! The fixtures in `tests/fixtures/constructs/` are our own files, one per
//! NMODL construct, written in the syntax NEURON 9.0.2's nocmodl accepts.

use nmodl_frontend::ast::{ItemKind, Module, StmtKind};
use nmodl_frontend::driver::load_file;
use nmodl_frontend::render::render;
use nmodl_frontend::source::SourceMap;
use std::path::{Path, PathBuf};

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/constructs");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixture folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "mod"))
        .collect();
    v.sort();
    v
}

fn load(path: &Path) -> Module {
    let mut sources = SourceMap::new();
    let (module, diags) = load_file(&mut sources, path);
    assert!(
        diags.is_empty(),
        "{} should parse cleanly:\n{}",
        path.display(),
        render(&sources, &diags, false)
    );
    module.expect("a module when there are no diagnostics")
}

#[test]
fn every_construct_fixture_parses_without_diagnostics() {
    let files = fixtures();
    assert!(
        files.len() >= 20,
        "expected the construct fixtures, found {}",
        files.len()
    );
    for f in files {
        let m = load(&f);
        assert!(!m.items.is_empty(), "{} parsed to nothing", f.display());
    }
}

#[test]
fn include_items_are_spliced_from_the_included_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/constructs");
    let m = load(&dir.join("include_main.mod"));
    assert!(!m
        .items
        .iter()
        .any(|i| matches!(i.kind, ItemKind::Include(_))));
    let units = m
        .items
        .iter()
        .find(|i| matches!(i.kind, ItemKind::Units(_)))
        .expect("the UNITS block of include_common.inc");
    // Its span points into the included file, not the main one.
    assert_ne!(units.span.file, m.file);
}

#[test]
fn kinetic_fixture_has_each_reaction_form() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/constructs");
    let m = load(&dir.join("kinetic_scheme.mod"));
    let body = m
        .items
        .iter()
        .find_map(|i| match &i.kind {
            ItemKind::Solvable(b) => Some(&b.body),
            _ => None,
        })
        .expect("the KINETIC block");
    let kinds: Vec<&str> = body
        .stmts
        .iter()
        .map(|s| match &s.kind {
            StmtKind::Assign { .. } => "assign",
            StmtKind::Compartment { .. } => "compartment",
            StmtKind::Reaction(r) if r.rhs.is_empty() => "flux",
            StmtKind::Reaction(r) if r.lhs[0].coef == 2 => "reaction 2x",
            StmtKind::Reaction(_) => "reaction",
            StmtKind::Conserve { .. } => "conserve",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "assign",
            "compartment",
            "reaction",
            "reaction",
            "reaction 2x",
            "flux",
            "conserve",
            "assign"
        ]
    );
}

/// AST snapshots of small fixtures, headed by the input path.
#[test]
fn ast_snapshots() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/constructs");
    for name in [
        "point_process.mod",
        "expressions.mod",
        "net_receive_watch.mod",
    ] {
        let m = load(&dir.join(name));
        insta::with_settings!({ description => format!("tests/fixtures/constructs/{name}"), omit_expression => true }, {
            insta::assert_json_snapshot!(name, m);
        });
    }
}
