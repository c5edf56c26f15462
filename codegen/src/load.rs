//! The runtime-facing entry point: .mod files → JIT kernels → mechanism
//! specs a [`runtime::Model`] can register (the JIT analogue of
//! `nrn_load_dll`).
//!
//! [`compile_file`] / [`compile_source`] run the front end, the lowering,
//! the IR validator and the cranelift JIT, and return one
//! [`runtime::MechanismSpec`] per file whose `keepalive` owns the machine
//! code, so the kernels live exactly as long as some model holds the spec.
//! [`load_folder`] does that for every `.mod` file of a folder and
//! [`register_all`] registers the results.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use nmodl_frontend::diagnostic::{Diagnostic, Severity};
use nmodl_frontend::source::SourceMap;
use runtime::{KeepAlive, MechanismSpec, Model};

use crate::jit::{Compiler, OptLevel};
use crate::lower;

/// Why a file could not be turned into kernels: rendered diagnostics
/// (file:line:col, the reason and a snippet), ready to print.
#[derive(Debug, Clone)]
pub struct CompileError {
    /// The file.
    pub file: PathBuf,
    /// The rendered diagnostics (errors and the warnings before them).
    pub rendered: String,
    /// The first error's one-line header, `file:line:col: error[E…]: …`.
    pub headline: String,
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.rendered)
    }
}

impl std::error::Error for CompileError {}

/// A compiled mechanism and the warnings met on the way.
#[derive(Debug)]
pub struct Compiled {
    /// The spec, kernels included, ready for [`Model::register`].
    pub spec: MechanismSpec,
    /// Rendered warnings (front end and lowering), possibly empty.
    pub warnings: String,
}

fn fail(sources: &SourceMap, file: &Path, diags: &[Diagnostic]) -> CompileError {
    let headline = diags
        .iter()
        .find(|d| d.severity == Severity::Error)
        .map(|d| nmodl_frontend::render::header(sources, d))
        .unwrap_or_default();
    CompileError {
        file: file.to_path_buf(),
        rendered: nmodl_frontend::render::render(sources, diags, false),
        headline,
    }
}

/// Compiles one .mod file.
pub fn compile_file(path: &Path) -> Result<Compiled, CompileError> {
    let mut sources = SourceMap::new();
    let result = nmodl_frontend::check_file(&mut sources, path);
    finish(&sources, path, result)
}

/// Compiles NMODL text (`name` is used in messages).
pub fn compile_source(name: &str, text: &str) -> Result<Compiled, CompileError> {
    let mut sources = SourceMap::new();
    let result = nmodl_frontend::check_source(&mut sources, name, text);
    finish(&sources, Path::new(name), result)
}

fn finish(
    sources: &SourceMap,
    path: &Path,
    result: nmodl_frontend::CheckResult,
) -> Result<Compiled, CompileError> {
    let mut diags = result.diagnostics;
    let model = match result.model {
        Some(m) if !nmodl_frontend::diagnostic::has_errors(&diags) => m,
        _ => return Err(fail(sources, path, &diags)),
    };
    let lowered = match lower::lower(&model) {
        Ok(l) => l,
        Err(d) => {
            diags.extend(d);
            return Err(fail(sources, path, &diags));
        }
    };
    diags.extend(lowered.warnings);
    let internal = |msg: String| {
        let span = model
            .breakpoint
            .as_ref()
            .map(|b| b.body.span)
            .or(model.initial.as_ref().map(|b| b.span))
            .unwrap_or(nmodl_frontend::source::Span::new(
                nmodl_frontend::source::FileId(0),
                0,
                0,
            ));
        let mut d = diags.clone();
        d.push(
            Diagnostic::error(lower::codes::INTERNAL, span, msg)
                .with_note("this is a bug in nrnivmodl-rs, not in your file; please report it"),
        );
        fail(sources, path, &d)
    };
    let valid = crate::valid::validate(&lowered.module).map_err(|errs| {
        internal(format!(
            "internal error: generated kernel IR is invalid: {}",
            errs.iter()
                .map(|e| format!("{e:?}"))
                .collect::<Vec<_>>()
                .join("; ")
        ))
    })?;
    let jit = Compiler::new(OptLevel::Speed)
        .and_then(|mut c| c.compile(&valid))
        .map_err(|e| internal(format!("internal error: JIT compilation failed: {}", e.0)))?;
    let mut spec = lowered.spec;
    spec.kernels = jit.kernels();
    spec.keepalive = Some(KeepAlive(Arc::new(jit)));
    let warnings = if diags.is_empty() {
        String::new()
    } else {
        nmodl_frontend::render::render(sources, &diags, false)
    };
    Ok(Compiled { spec, warnings })
}

/// Compiles every `.mod` file directly in `dir` (sorted by name), in
/// parallel on the rayon pool. Each file's outcome is returned separately,
/// in name order, so one bad file does not hide the others.
pub fn load_folder(dir: &Path) -> std::io::Result<Vec<(PathBuf, Result<Compiled, CompileError>)>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "mod"))
        .collect();
    files.sort();
    use rayon::prelude::*;
    Ok(files
        .into_par_iter()
        .map(|p| {
            let r = compile_file(&p);
            (p, r)
        })
        .collect())
}

/// Registers compiled specs with a model, in order.
pub fn register_all(model: &mut Model, specs: Vec<MechanismSpec>) -> runtime::Result<()> {
    for s in specs {
        model.register(s)?;
    }
    Ok(())
}
