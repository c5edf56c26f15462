//! Robustness: damaged versions of every fixture go through `check_source`
//! without a panic, and every diagnostic's span lies inside its file.
//!
//! Mutations: truncation at many offsets, single-byte replacements, each `{`
//! or `}` deleted, each keyword deleted. Plus pathological inputs (deep
//! nesting, long operator chains) and random token soup (proptest).

use nmodl_frontend::check_source;
use nmodl_frontend::render::render;
use nmodl_frontend::source::SourceMap;
use proptest::prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn fixture_texts() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out = Vec::new();
    for sub in ["constructs", "errors"] {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(root.join(sub))
            .expect("fixture folder")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "mod"))
            .collect();
        paths.sort();
        for p in paths {
            let text = String::from_utf8_lossy(&std::fs::read(&p).expect("read")).into_owned();
            out.push((p, text));
        }
    }
    out
}

/// Runs the whole front end and the renderer on `text`; panics (with the
/// input) if anything panics or a span falls outside its file.
fn check_no_panic(text: &str, what: &str) {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut sources = SourceMap::new();
        let r = check_source(&mut sources, "mutant.mod", text);
        for d in &r.diagnostics {
            let file = sources
                .get(d.span.file)
                .unwrap_or_else(|| panic!("diagnostic in an unknown file: {d:?}"));
            assert!(
                d.span.start <= d.span.end && d.span.end as usize <= file.text.len(),
                "span {:?} outside the file ({} bytes): {}",
                d.span,
                file.text.len(),
                d.message
            );
            for (s, _) in &d.labels {
                let f = sources.get(s.file).expect("label file");
                assert!(s.start <= s.end && s.end as usize <= f.text.len());
            }
        }
        let _ = render(&sources, &r.diagnostics, false);
    }));
    if outcome.is_err() {
        panic!("front end panicked on {what}:\n{text}");
    }
}

/// Positions spread over the text: every `step` bytes plus the ends.
fn offsets(len: usize, count: usize) -> Vec<usize> {
    let step = (len / count).max(1);
    let mut v: Vec<usize> = (0..len).step_by(step).collect();
    v.extend(len.saturating_sub(3)..len);
    v
}

fn floor(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[test]
fn truncations_do_not_panic() {
    for (path, text) in fixture_texts() {
        for at in offsets(text.len(), 120) {
            let cut = &text[..floor(&text, at)];
            check_no_panic(cut, &format!("{} cut at {at}", path.display()));
        }
    }
}

#[test]
fn byte_replacements_do_not_panic() {
    let replacements: &[u8] = b"{}()[]=~'\":?-^<>!0a\n\xb5\xff\x00";
    for (path, text) in fixture_texts() {
        let bytes = text.as_bytes();
        for at in offsets(bytes.len(), 40) {
            for &r in replacements {
                let mut b = bytes.to_vec();
                b[at] = r;
                let mutated = String::from_utf8_lossy(&b);
                check_no_panic(&mutated, &format!("{} byte {at} -> {r:#x}", path.display()));
            }
        }
    }
}

#[test]
fn deleted_braces_and_keywords_do_not_panic() {
    let keywords = [
        "NEURON",
        "PARAMETER",
        "ASSIGNED",
        "STATE",
        "BREAKPOINT",
        "INITIAL",
        "DERIVATIVE",
        "KINETIC",
        "PROCEDURE",
        "FUNCTION",
        "SOLVE",
        "METHOD",
        "TABLE",
        "FROM",
        "TO",
        "WITH",
        "if",
        "else",
        "LOCAL",
        "ENDCOMMENT",
        "ENDVERBATIM",
        "NET_RECEIVE",
        "UNITS",
        "USEION",
        "READ",
        "WRITE",
        "DEPEND",
        "CONSERVE",
        "COMPARTMENT",
        "WATCH",
        "INCLUDE",
    ];
    for (path, text) in fixture_texts() {
        for (i, c) in text.char_indices() {
            if c == '{' || c == '}' || c == '(' || c == ')' {
                let mut t = text.clone();
                t.remove(i);
                check_no_panic(&t, &format!("{} without `{c}` at {i}", path.display()));
            }
        }
        for kw in keywords {
            for (i, _) in text.match_indices(kw) {
                let t = format!("{}{}", &text[..i], &text[i + kw.len()..]);
                check_no_panic(&t, &format!("{} without {kw} at {i}", path.display()));
            }
        }
    }
}

#[test]
fn pathological_nesting_is_an_error_not_a_crash() {
    let cases = [
        format!(
            "INITIAL {{ x = {}1{} }}",
            "(".repeat(10_000),
            ")".repeat(10_000)
        ),
        format!("INITIAL {{ x = {}1 }}", "-".repeat(100_000)),
        format!("INITIAL {{ x = 1{} }}", "^2".repeat(10_000)),
        format!("INITIAL {{ x = 1{} }}", "+1".repeat(20_000)),
        format!(
            "INITIAL {}x = 1{}",
            "{ ".repeat(10_000),
            " }".repeat(10_000)
        ),
        format!(
            "INITIAL {{ x = {}1{} }}",
            "f(".repeat(10_000),
            ")".repeat(10_000)
        ),
        format!(
            "INITIAL {{ x = a{} }}",
            "[a".repeat(10_000) + &"]".repeat(10_000)
        ),
        "COMMENT never closed".repeat(1000),
        "\u{0}\u{ffff}".repeat(1000),
    ];
    for text in &cases {
        let mut sources = SourceMap::new();
        let r = check_source(&mut sources, "deep.mod", text);
        assert!(
            r.has_errors(),
            "expected an error for {}",
            &text[..40.min(text.len())]
        );
    }
}

/// Tokens that make up random "almost NMODL" programs.
const TOKENS: &[&str] = &[
    "NEURON",
    "SUFFIX",
    "x",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "=",
    "1",
    "-2.5e3",
    "v",
    "'",
    "~",
    "<->",
    "<<",
    "->",
    ",",
    "+",
    "-",
    "*",
    "/",
    "^",
    "STATE",
    "PARAMETER",
    "BREAKPOINT",
    "SOLVE",
    "METHOD",
    "cnexp",
    "DERIVATIVE",
    "KINETIC",
    "if",
    "else",
    "while",
    "FROM",
    "TO",
    "\n",
    ":",
    "COMMENT",
    "ENDCOMMENT",
    "VERBATIM",
    "ENDVERBATIM",
    "\"s\"",
    "(mV)",
    "<",
    ">",
    "TABLE",
    "DEPEND",
    "WITH",
    "LOCAL",
    "INITIAL",
    "NET_RECEIVE",
    "WATCH",
    "CONSERVE",
    "µ",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn token_soup_does_not_panic(ix in proptest::collection::vec(0..TOKENS.len(), 0..200)) {
        let text: Vec<&str> = ix.iter().map(|&i| TOKENS[i]).collect();
        check_no_panic(&text.join(" "), "token soup");
    }
}
