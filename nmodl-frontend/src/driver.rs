//! Reading `.mod` files from disk and splicing their INCLUDEs.
//!
//! [`load_file`] and [`load_source`] are the entry points the CLI and the
//! tests use. They add every file they read to the caller's [`SourceMap`],
//! parse it, and replace each `INCLUDE "file"` item by the included file's
//! items. Included files are searched, like nocmodl does, in the including
//! file's directory, then the current directory, then each directory of the
//! colon-separated `NRN_NMODL_PATH` environment variable.

use crate::ast::{ItemKind, Module};
use crate::diagnostic::Diagnostic;
use crate::parser;
use crate::source::{FileId, SourceMap, Span};
use std::path::{Path, PathBuf};

/// Deepest chain of nested INCLUDEs followed before giving up.
const MAX_INCLUDE_DEPTH: usize = 32;

/// Reads, decodes and parses the file at `path`, and splices its INCLUDEs.
/// Every file read is added to `sources`. I/O problems with `path` itself are
/// reported as an error diagnostic on an empty placeholder file named after
/// the path, so that callers only ever deal with diagnostics.
pub fn load_file(sources: &mut SourceMap, path: &Path) -> (Option<Module>, Vec<Diagnostic>) {
    let name = path.display().to_string();
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            let id = sources.add(name.clone(), Some(path), String::new());
            let d = Diagnostic::error(
                "io",
                Span::new(id, 0, 0),
                format!("cannot read `{name}`: {e}"),
            );
            return (None, vec![d]);
        }
    };
    let (text, bad) = decode(bytes);
    let id = sources.add(name, Some(path), text);
    let mut diags = encoding_warnings(sources, id, bad);
    let base = path.parent().map(Path::to_path_buf);
    let mut stack = vec![canonical(path)];
    let module = parse_and_splice(sources, id, base, &mut stack, &mut diags);
    (module, diags)
}

/// Parses in-memory text registered under the display name `name` (used by
/// `check_source`, tests and the fuzzer). INCLUDEs are searched in the
/// current directory and `NRN_NMODL_PATH`.
pub fn load_source(
    sources: &mut SourceMap,
    name: &str,
    text: &str,
) -> (Option<Module>, Vec<Diagnostic>) {
    let id = sources.add(name, None, text.to_string());
    let mut diags = Vec::new();
    let mut stack = Vec::new();
    let module = parse_and_splice(sources, id, None, &mut stack, &mut diags);
    (module, diags)
}

/// Decodes bytes as UTF-8, replacing invalid sequences by U+FFFD. Returns the
/// text and whether anything was replaced.
fn decode(bytes: Vec<u8>) -> (String, bool) {
    match String::from_utf8(bytes) {
        Ok(s) => (s, false),
        Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), true),
    }
}

/// Byte ranges of comments, TITLE lines and VERBATIM text, where any byte is
/// acceptable.
fn free_text_ranges(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let find = |from: usize, needle: &str| {
        text.get(from..)
            .and_then(|t| t.find(needle))
            .map(|p| p + from + needle.len())
            .unwrap_or(text.len())
    };
    while i < b.len() {
        match b[i] {
            b':' | b'?' => {
                let end = text[i..].find('\n').map_or(text.len(), |p| p + i);
                out.push((i, end));
                i = end;
            }
            c if c.is_ascii_alphabetic() => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                let end = match &text[start..i] {
                    "COMMENT" => find(i, "ENDCOMMENT"),
                    "VERBATIM" => find(i, "ENDVERBATIM"),
                    "TITLE" => text[i..].find('\n').map_or(text.len(), |p| p + i),
                    _ => continue,
                };
                out.push((start, end));
                i = end;
            }
            _ => i += 1,
        }
    }
    out
}

/// Warns about bytes that were not UTF-8 when they lie outside comments and
/// VERBATIM text (Latin-1 `µ` in a comment is common and harmless).
fn encoding_warnings(sources: &SourceMap, id: FileId, bad: bool) -> Vec<Diagnostic> {
    if !bad {
        return Vec::new();
    }
    let text = &sources.file(id).text;
    let free = free_text_ranges(text);
    let outside = text
        .char_indices()
        .filter(|&(_, c)| c == char::REPLACEMENT_CHARACTER)
        .map(|(i, _)| i)
        .find(|&i| !free.iter().any(|&(a, b)| a <= i && i < b));
    match outside {
        Some(i) => vec![Diagnostic::warning(
            "encoding",
            Span::new(id, i, i + char::REPLACEMENT_CHARACTER.len_utf8()),
            "this byte is not valid UTF-8 and was replaced by U+FFFD",
        )
        .with_note("save the file as UTF-8 (it is probably Latin-1)")],
        None => Vec::new(),
    }
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Where to look for an INCLUDEd file, in order.
fn search_dirs(base: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(b) = base {
        dirs.push(if b.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            b.to_path_buf()
        });
    }
    dirs.push(PathBuf::from("."));
    if let Ok(p) = std::env::var("NRN_NMODL_PATH") {
        dirs.extend(p.split(':').filter(|s| !s.is_empty()).map(PathBuf::from));
    }
    dirs
}

/// Parses file `id`, then replaces each INCLUDE item by the items of the
/// included file (recursively). `stack` holds the canonical paths of the files
/// being included, to detect cycles.
fn parse_and_splice(
    sources: &mut SourceMap,
    id: FileId,
    base: Option<PathBuf>,
    stack: &mut Vec<PathBuf>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Module> {
    let (module, parse_diags) = parser::parse(id, &sources.file(id).text.clone());
    diags.extend(parse_diags);
    let mut module = module?;
    if !module
        .items
        .iter()
        .any(|i| matches!(i.kind, ItemKind::Include(_)))
    {
        return Some(module);
    }
    let mut items = Vec::with_capacity(module.items.len());
    let mut failed = false;
    for item in std::mem::take(&mut module.items) {
        let ItemKind::Include(inc) = &item.kind else {
            items.push(item);
            continue;
        };
        let candidates: Vec<PathBuf> = if Path::new(&inc.path).is_absolute() {
            vec![PathBuf::from(&inc.path)]
        } else {
            search_dirs(base.as_deref())
                .into_iter()
                .map(|d| d.join(&inc.path))
                .collect()
        };
        let Some(found) = candidates.iter().find(|p| p.is_file()) else {
            let mut dirs: Vec<String> = Vec::new();
            for c in &candidates {
                let d = c.parent().unwrap_or(Path::new(".")).display().to_string();
                let d = if d.is_empty() { ".".to_string() } else { d };
                if !dirs.contains(&d) {
                    dirs.push(d);
                }
            }
            diags.push(
                Diagnostic::error(
                    "include-not-found",
                    inc.path_span,
                    format!("cannot find INCLUDE file \"{}\"", inc.path),
                )
                .with_note(format!("searched: {}", dirs.join(", "))),
            );
            failed = true;
            continue;
        };
        let canon = canonical(found);
        if stack.contains(&canon) {
            diags.push(Diagnostic::error(
                "include-cycle",
                inc.path_span,
                format!(
                    "INCLUDE \"{}\" includes a file that is already being included (a cycle)",
                    inc.path
                ),
            ));
            failed = true;
            continue;
        }
        if stack.len() >= MAX_INCLUDE_DEPTH {
            diags.push(Diagnostic::error(
                "include-too-deep",
                inc.path_span,
                format!("INCLUDEs are nested more than {MAX_INCLUDE_DEPTH} levels deep"),
            ));
            failed = true;
            continue;
        }
        let bytes = match std::fs::read(found) {
            Ok(b) => b,
            Err(e) => {
                diags.push(Diagnostic::error(
                    "io",
                    inc.path_span,
                    format!("cannot read INCLUDE file `{}`: {e}", found.display()),
                ));
                failed = true;
                continue;
            }
        };
        let (text, bad) = decode(bytes);
        let child = match sources.find_path(found) {
            Some(existing) => existing,
            None => sources.add(found.display().to_string(), Some(found), text),
        };
        diags.extend(encoding_warnings(sources, child, bad));
        stack.push(canon);
        let included = parse_and_splice(
            sources,
            child,
            found.parent().map(Path::to_path_buf),
            stack,
            diags,
        );
        stack.pop();
        match included {
            Some(m) => items.extend(m.items),
            None => failed = true,
        }
    }
    module.items = items;
    (!failed).then_some(module)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_in_comments_is_silent_but_outside_warns() {
        let mut map = SourceMap::new();
        let (text, bad) = decode(b"PARAMETER { d = 1 (um) : 1 \xb5m\n}\n".to_vec());
        assert!(bad);
        let id = map.add("a.mod", None, text);
        assert!(encoding_warnings(&map, id, bad).is_empty());
        let (text, bad) = decode(b"PARAMETER { d = 1 (\xb5m) }\n".to_vec());
        let id = map.add("b.mod", None, text);
        assert_eq!(encoding_warnings(&map, id, bad).len(), 1);
    }
}
