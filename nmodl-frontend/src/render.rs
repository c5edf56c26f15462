//! The one place that turns [`Diagnostic`]s into text.
//!
//! Each diagnostic starts with a gcc-style line that editors can jump to,
//! `path:line:col: error: message` (1-based line and column, the column
//! counted in characters), followed by an ariadne snippet of the source with
//! the span underlined, the labels and the notes.

use crate::diagnostic::{Diagnostic, Severity};
use crate::source::{SourceMap, Span};
use ariadne::{Color, Config, IndexType, Label, Report, ReportKind};
use std::ops::Range;

/// Renders diagnostics in order, separated by blank lines. With `color`,
/// severities and labels are coloured with ANSI escapes. Called by the CLI and
/// by the snapshot tests (with colour off); it only reads `sources`.
pub fn render(sources: &SourceMap, diags: &[Diagnostic], color: bool) -> String {
    let mut out = String::new();
    for d in diags {
        out.push_str(&render_one(sources, d, color));
    }
    out
}

/// The gcc-style first line of a diagnostic, without colour.
pub fn header(sources: &SourceMap, d: &Diagnostic) -> String {
    let (name, line, col) = location(sources, d.span);
    let sev = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    format!("{name}:{line}:{col}: {sev}: {}", d.message)
}

fn location(sources: &SourceMap, span: Span) -> (String, usize, usize) {
    match sources.get(span.file) {
        Some(f) => {
            let (line, col) = f.line_col(span.start);
            (f.name.clone(), line, col)
        }
        None => ("<unknown>".to_string(), 1, 1),
    }
}

/// Clamps a span to its file and to character boundaries, and widens an empty
/// span to one character where possible so that it can be underlined.
fn range(sources: &SourceMap, span: Span) -> Range<usize> {
    let Some(f) = sources.get(span.file) else {
        return 0..0;
    };
    let text = &f.text;
    let floor = |mut i: usize| {
        i = i.min(text.len());
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let start = floor(span.start as usize);
    let mut end = floor(span.end as usize).max(start);
    if end == start {
        if let Some(c) = text[start..].chars().next() {
            end = start + c.len_utf8();
        }
    }
    start..end
}

fn render_one(sources: &SourceMap, d: &Diagnostic, color: bool) -> String {
    let (sev_word, kind, main_color) = match d.severity {
        Severity::Error => ("error", ReportKind::Error, Color::Red),
        Severity::Warning => ("warning", ReportKind::Warning, Color::Yellow),
    };
    let (name, line, col) = location(sources, d.span);
    let mut out = if color {
        let c = if d.severity == Severity::Error {
            31
        } else {
            33
        };
        format!(
            "\x1b[1m{name}:{line}:{col}:\x1b[0m \x1b[1;{c}m{sev_word}:\x1b[0m \x1b[1m{}\x1b[0m\n",
            d.message
        )
    } else {
        format!("{name}:{line}:{col}: {sev_word}: {}\n", d.message)
    };
    let Some(file) = sources.get(d.span.file) else {
        return out;
    };
    if file.text.is_empty() {
        for n in &d.notes {
            out.push_str(&format!("  = note: {n}\n"));
        }
        return out;
    }
    let id = |s: Span| {
        sources
            .get(s.file)
            .map_or_else(String::new, |f| f.name.clone())
    };
    let main_id = id(d.span);
    let main_range = range(sources, d.span);
    let config = Config::default()
        .with_color(color)
        .with_index_type(IndexType::Byte)
        .with_compact(false);
    let mut report = Report::build(kind, (main_id.clone(), main_range.clone()))
        .with_config(config)
        .with_message(&d.message)
        .with_label(
            Label::new((main_id, main_range))
                .with_message("here")
                .with_color(main_color),
        );
    for (span, text) in &d.labels {
        if sources.get(span.file).is_none() {
            continue;
        }
        report = report.with_label(
            Label::new((id(*span), range(sources, *span)))
                .with_message(text)
                .with_color(Color::Blue),
        );
    }
    for n in &d.notes {
        report = report.with_note(n);
    }
    // The snippet may involve several files (labels in an INCLUDEd file).
    let mut files: Vec<(String, String)> = Vec::new();
    let mut add = |s: Span| {
        if let Some(f) = sources.get(s.file) {
            if !files.iter().any(|(n, _)| *n == f.name) {
                files.push((f.name.clone(), f.text.clone()));
            }
        }
    };
    add(d.span);
    for (s, _) in &d.labels {
        add(*s);
    }
    let mut buf = Vec::new();
    if report
        .finish()
        .write(ariadne::sources(files), &mut buf)
        .is_ok()
    {
        let text = String::from_utf8_lossy(&buf);
        // Ariadne's own first line repeats the message; ours replaces it.
        let snippet = text.split_once('\n').map_or("", |(_, rest)| rest);
        out.push_str(snippet);
    }
    out
}
