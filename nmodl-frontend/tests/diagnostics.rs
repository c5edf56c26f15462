//! The rendered diagnostics of every file in `tests/fixtures/errors/`, colour
//! off, as snapshots. `syntax_*.mod` files (parse errors) are ours;
//! `semantic_*.mod` files exercise the resolver. Each must produce at least one
//! diagnostic, and every error must start with the clickable
//! `path:line:col: error:` line.

use nmodl_frontend::check_file;
use nmodl_frontend::render::render;
use nmodl_frontend::source::SourceMap;

#[test]
fn error_fixtures_render() {
    insta::glob!("fixtures/errors/*.mod", |path| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        // Relative paths keep the snapshots independent of the checkout.
        let rel = path.strip_prefix(root).unwrap_or(path);
        let mut sources = SourceMap::new();
        let result = check_file(&mut sources, rel);
        assert!(
            !result.diagnostics.is_empty(),
            "{} produced no diagnostic",
            rel.display()
        );
        let text = render(&sources, &result.diagnostics, false);
        let name = rel
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        if name.starts_with("syntax_") {
            assert!(result.has_errors(), "{name} should be a syntax error");
            let first = text.lines().next().unwrap_or_default();
            assert!(
                first.starts_with(&format!("{}:", rel.display())) && first.contains(": error: "),
                "first line is not gcc-style: {first}"
            );
        }
        insta::assert_snapshot!(text);
    });
}

#[test]
fn colour_adds_escapes_but_keeps_the_text() {
    let mut sources = SourceMap::new();
    let r = nmodl_frontend::check_source(&mut sources, "x.mod", "NEURON {\n  RANG x\n}\n");
    let plain = render(&sources, &r.diagnostics, false);
    let coloured = render(&sources, &r.diagnostics, true);
    assert!(plain.starts_with("x.mod:2:3: error: unknown keyword `RANG`"));
    assert!(coloured.contains("\x1b["));
    assert!(!plain.contains("\x1b["));
}
