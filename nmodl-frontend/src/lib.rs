//! The NMODL front end: source text → AST with spans → resolved mechanism model.
//!
//! See ARCHITECTURE.md for where this sits in the data flow. The usual entry
//! points are [`check_file`] (a path on disk) and [`check_source`] (text in
//! memory); both never panic on input and return every problem as a
//! [`diagnostic::Diagnostic`], which [`render::render`] formats.

pub mod ast;
pub mod diagnostic;
pub mod driver;
pub mod model;
pub mod parser;
pub mod render;
pub mod resolve;
pub mod source;
pub mod units;

use std::path::Path;

/// What checking one file produced.
#[derive(Debug)]
pub struct CheckResult {
    /// The syntax tree with INCLUDEs spliced, if the file parsed.
    pub ast: Option<ast::Module>,
    /// The resolved mechanism, if resolution succeeded.
    pub model: Option<model::Mechanism>,
    /// Every error and warning, in the order found.
    pub diagnostics: Vec<diagnostic::Diagnostic>,
}

impl CheckResult {
    /// True when any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        diagnostic::has_errors(&self.diagnostics)
    }
}

/// Reads, parses and resolves the `.mod` file at `path`. Every file read
/// (the file and its INCLUDEs) is added to `sources`, which the caller needs
/// to render the diagnostics.
pub fn check_file(sources: &mut source::SourceMap, path: &Path) -> CheckResult {
    let (ast, diagnostics) = driver::load_file(sources, path);
    finish(sources, ast, diagnostics)
}

/// Like [`check_file`] for text in memory, registered in `sources` under the
/// display name `name`.
pub fn check_source(sources: &mut source::SourceMap, name: &str, text: &str) -> CheckResult {
    let (ast, diagnostics) = driver::load_source(sources, name, text);
    finish(sources, ast, diagnostics)
}

fn finish(
    sources: &source::SourceMap,
    ast: Option<ast::Module>,
    mut diagnostics: Vec<diagnostic::Diagnostic>,
) -> CheckResult {
    let mut model = None;
    if let Some(module) = &ast {
        let (m, d) = resolve::resolve(sources, module);
        model = m;
        diagnostics.extend(d);
    }
    CheckResult {
        ast,
        model,
        diagnostics,
    }
}
