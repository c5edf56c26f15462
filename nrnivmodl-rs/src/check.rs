//! `nrnivmodl-rs check PATH...`: parse and resolve .mod files and report.
//!
//! Exit codes: 0 when no file has an error, 1 when some file has an error,
//! 2 for usage or I/O problems (a path that does not exist, an unreadable
//! folder).

use crate::{CheckArgs, ColorChoice, Emit};
use nmodl_frontend::render::render;
use nmodl_frontend::source::SourceMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Collects the .mod files named by `paths`: files as given, folders
/// expanded to their `*.mod` files in name order (subfolders too with
/// `recursive`). Problems are returned as messages.
fn collect(paths: &[PathBuf], recursive: bool) -> (Vec<PathBuf>, Vec<String>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, recursive, &mut files, &mut problems);
        } else if p.exists() {
            files.push(p.clone());
        } else {
            problems.push(format!("{}: no such file or folder", p.display()));
        }
    }
    (files, problems)
}

fn walk(dir: &Path, recursive: bool, files: &mut Vec<PathBuf>, problems: &mut Vec<String>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            problems.push(format!("{}: cannot read folder: {e}", dir.display()));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            if recursive {
                walk(&p, recursive, files, problems);
            }
        } else if p.extension().is_some_and(|e| e == "mod") {
            files.push(p);
        }
    }
}

/// Runs `check` and returns the process exit code.
pub fn run(args: &CheckArgs) -> ExitCode {
    let color = match args.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => std::io::stdout().is_terminal(),
    };
    let (files, problems) = collect(&args.paths, args.recursive);
    for p in &problems {
        eprintln!("nrnivmodl-rs: {p}");
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let (mut errors, mut warnings, mut bad_files) = (0usize, 0usize, 0usize);
    let mut io_problem = !problems.is_empty();
    for file in &files {
        let mut sources = SourceMap::new();
        let result = nmodl_frontend::check_file(&mut sources, file);
        let e = result.diagnostics.iter().filter(|d| d.is_error()).count();
        errors += e;
        warnings += result.diagnostics.len() - e;
        if e > 0 {
            bad_files += 1;
        }
        if result.diagnostics.iter().any(|d| d.code == "io") {
            io_problem = true;
        }
        let _ = write!(out, "{}", render(&sources, &result.diagnostics, color));
        if let Some(emit) = args.emit {
            let json = match emit {
                Emit::Ast => result.ast.as_ref().map(serde_json::to_string_pretty),
                Emit::Model => result.model.as_ref().map(serde_json::to_string_pretty),
            };
            match json {
                Some(Ok(j)) => {
                    let _ = writeln!(out, "{j}");
                }
                Some(Err(e)) => {
                    eprintln!("nrnivmodl-rs: {}: cannot write JSON: {e}", file.display())
                }
                None => {}
            }
        }
    }
    let _ = writeln!(
        out,
        "checked {} file{}: {errors} error{}, {warnings} warning{} ({bad_files} file{} with errors)",
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        if errors == 1 { "" } else { "s" },
        if warnings == 1 { "" } else { "s" },
        if bad_files == 1 { "" } else { "s" },
    );
    if io_problem {
        ExitCode::from(2)
    } else if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
