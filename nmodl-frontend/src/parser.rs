//! Source text → [`ast::Module`], with located, human-readable syntax errors.
//!
//! [`parse`] runs in three steps:
//! 1. a lexical pre-scan ([`prescan`]) that skips comments, strings and
//!    VERBATIM text and checks that brackets balance and nest at most
//!    [`MAX_NESTING`] deep, so that the recursive pest parser can never
//!    overflow the stack and a missing `}` is reported at the block it fails
//!    to close;
//! 2. the pest grammar in `grammar.pest`;
//! 3. lowering of pest pairs to the AST, one `parse_<rule>` function per rule,
//!    with expressions folded by a single Pratt parser.
//!
//! The parser never panics on input; on a syntax error it returns `None` and
//! one diagnostic.

use crate::ast::*;
use crate::diagnostic::Diagnostic;
use crate::source::{FileId, Span};
use pest::iterators::{Pair, Pairs};
use pest::pratt_parser::{Assoc, Op, PrattParser};
use pest::Parser as _;
use std::cell::Cell;
use std::sync::OnceLock;

/// The pest parser generated from `grammar.pest`.
#[derive(pest_derive::Parser)]
#[grammar = "grammar.pest"]
struct NmodlParser;

/// Deepest bracket nesting (`(`, `[`, `{` together) accepted. Real mod files
/// stay below 15; the limit protects the recursive-descent parser.
pub const MAX_NESTING: usize = 64;

/// Deepest expression tree accepted (operators nested in one another).
pub const MAX_EXPR_DEPTH: u32 = 500;

/// Longest chain of prefix operators or `^` in one expression (each level
/// recurses in the Pratt parser).
const MAX_OPERATOR_CHAIN: usize = 100;

/// Parses one file's text. `file` is the id the text has in the caller's
/// `SourceMap`; every span in the result and in the diagnostics points into it.
/// Returns the module when there was no syntax error, and the diagnostics
/// (errors and warnings) found while parsing.
pub fn parse(file: FileId, src: &str) -> (Option<Module>, Vec<Diagnostic>) {
    if src.len() > u32::MAX as usize / 2 {
        let d = Diagnostic::error(
            "file-too-large",
            Span::new(file, 0, 0),
            "file is too large to translate (more than 2 GiB)",
        );
        return (None, vec![d]);
    }
    let scan = prescan(file, src);
    if let Some(d) = scan.error {
        return (None, vec![d]);
    }
    let pairs = match NmodlParser::parse(Rule::file, src) {
        Ok(pairs) => pairs,
        Err(err) => return (None, vec![syntax_error(file, src, err)]),
    };
    let mut lower = Lower {
        file,
        diags: Vec::new(),
    };
    let Some(pair) = pairs.into_iter().next() else {
        return (None, lower.diags);
    };
    let module = lower.parse_file(pair, src.len());
    if lower.diags.iter().any(Diagnostic::is_error) {
        (None, lower.diags)
    } else {
        (Some(module), lower.diags)
    }
}

// ------------------------------------------------------------------ prescan

/// One open bracket found by the pre-scan.
#[derive(Debug, Clone)]
struct Open {
    ch: u8,
    offset: usize,
    /// For `{`: the keyword or name that introduces the block (e.g. `NEURON`,
    /// `if`, `states`), used in messages.
    owner: String,
}

/// What the pre-scan found.
#[derive(Debug, Default)]
struct Scan {
    error: Option<Diagnostic>,
}

/// Describes a `{` opener for messages: "the NEURON block", "the `if` block".
fn describe_open(open: &Open) -> String {
    match open.ch {
        b'{' if open.owner.is_empty() => "block".to_string(),
        b'{' => format!("{} block", open.owner),
        b'(' => "`(`".to_string(),
        _ => "`[`".to_string(),
    }
}

fn closer(ch: u8) -> u8 {
    match ch {
        b'{' => b'}',
        b'(' => b')',
        _ => b']',
    }
}

/// The keyword that names a block: the nearest preceding block keyword on the
/// stretch of text before `{` (e.g. `PROCEDURE rates(v (mV))` gives
/// `PROCEDURE rates`, `if (x)` gives `if`, `NEURON` gives `NEURON`).
fn block_owner(words: &[(&str, usize)]) -> String {
    const HEADS: &[&str] = &[
        "NEURON",
        "UNITS",
        "PARAMETER",
        "ASSIGNED",
        "STATE",
        "CONSTANT",
        "INDEPENDENT",
        "INITIAL",
        "BREAKPOINT",
        "CONSTRUCTOR",
        "DESTRUCTOR",
        "NET_RECEIVE",
        "FOR_NETCONS",
        "if",
        "IF",
        "else",
        "ELSE",
        "while",
        "WHILE",
        "FROM",
        "COMPARTMENT",
        "LONGITUDINAL_DIFFUSION",
        "IFERROR",
    ];
    const NAMED: &[&str] = &[
        "DERIVATIVE",
        "KINETIC",
        "LINEAR",
        "NONLINEAR",
        "DISCRETE",
        "PARTIAL",
        "PROCEDURE",
        "FUNCTION",
        "BEFORE",
        "AFTER",
    ];
    for (i, (w, _)) in words.iter().enumerate().rev().take(12) {
        if NAMED.contains(w) {
            return match words.get(i + 1) {
                Some((name, _)) => format!("{w} {name}"),
                None => w.to_string(),
            };
        }
        if HEADS.contains(w) {
            return w.to_string();
        }
    }
    String::new()
}

/// A byte scanner that skips comments, strings, TITLE lines and VERBATIM
/// text exactly as the grammar does.
struct Scanner<'a> {
    src: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn word_at(&self, pos: usize) -> &'a [u8] {
        let mut end = pos;
        while end < self.src.len() && is_ident_byte(self.src[end]) {
            end += 1;
        }
        &self.src[pos..end]
    }

    fn find(&self, from: usize, needle: &[u8]) -> Option<usize> {
        self.src
            .get(from..)?
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|p| p + from)
    }

    fn skip_to_eol(&mut self) {
        while self.pos < self.src.len() && self.src[self.pos] != b'\n' {
            self.pos += 1;
        }
    }
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Checks comments, VERBATIM blocks and bracket balance, without building
/// anything. Also bounds bracket nesting at [`MAX_NESTING`].
fn prescan(file: FileId, src: &str) -> Scan {
    Scan {
        error: scan_brackets(file, src, false).err(),
    }
}

/// The bracket and lexical pre-scan shared by [`prescan`] and
/// [`enclosing_block`]. It returns the brackets still open at the end of `src`.
/// With `prefix`, `src` is a prefix of a file that the full scan accepted, so
/// running off its end inside a string, COMMENT or VERBATIM, or with brackets
/// open, is not an error.
fn scan_brackets(file: FileId, src: &str, prefix: bool) -> Result<Vec<Open>, Diagnostic> {
    let mut s = Scanner {
        src: src.as_bytes(),
        pos: 0,
    };
    let mut stack: Vec<Open> = Vec::new();
    // Recent words, for naming blocks; cleared at each `{` and `}`.
    let mut words: Vec<(&str, usize)> = Vec::new();
    let span = |a: usize, b: usize| Span::new(file, a, b);
    let mut last_word: &[u8] = b"";
    while s.pos < s.src.len() {
        let b = s.src[s.pos];
        let start = s.pos;
        match b {
            b':' | b'?' => {
                // `REPRESENTS NCIT:C17145` is an id, not a comment.
                if last_word == b"REPRESENTS" && start > 0 && is_ident_byte(s.src[start - 1]) {
                    s.pos += 1;
                } else {
                    s.skip_to_eol();
                }
            }
            b'"' => {
                s.pos += 1;
                while s.pos < s.src.len() && s.src[s.pos] != b'"' && s.src[s.pos] != b'\n' {
                    if s.src[s.pos] == b'\\' {
                        s.pos += 1;
                    }
                    s.pos += 1;
                }
                if prefix && s.pos >= s.src.len() {
                    break;
                }
                if s.pos >= s.src.len() || s.src[s.pos] != b'"' {
                    let d = Diagnostic::error(
                        "syntax",
                        span(start, start + 1),
                        "string is not closed before the end of the line",
                    );
                    return Err(d);
                }
                s.pos += 1;
            }
            b'{' if stack.last().is_some_and(|o| o.ch != b'{') => {
                let open = stack.last().cloned().unwrap_or(Open {
                    ch: b'(',
                    offset: start,
                    owner: String::new(),
                });
                let what = describe_open(&open);
                let d = Diagnostic::error(
                    "syntax",
                    span(start, start + 1),
                    format!(
                        "expected `{}` to close the {what} opened at line {}, found `{{`",
                        closer(open.ch) as char,
                        line_of(src, open.offset)
                    ),
                )
                .with_label(
                    span(open.offset, open.offset + 1),
                    format!("{what} opened here"),
                );
                return Err(d);
            }
            b'{' | b'(' | b'[' => {
                let owner = if b == b'{' {
                    block_owner(&words)
                } else {
                    String::new()
                };
                if b == b'{' {
                    words.clear();
                }
                stack.push(Open {
                    ch: b,
                    offset: start,
                    owner,
                });
                if stack.len() > MAX_NESTING {
                    let d = Diagnostic::error(
                        "nesting-too-deep",
                        span(start, start + 1),
                        format!("brackets are nested more than {MAX_NESTING} levels deep"),
                    )
                    .with_note("simplify the expression or split the block into procedures");
                    return Err(d);
                }
                s.pos += 1;
            }
            b'}' | b')' | b']' => {
                if b == b'}' {
                    words.clear();
                }
                match stack.pop() {
                    None => {
                        let d = Diagnostic::error(
                            "syntax",
                            span(start, start + 1),
                            format!("unmatched `{}`", b as char),
                        )
                        .with_note("there is no open bracket for it to close");
                        return Err(d);
                    }
                    Some(open) if closer(open.ch) != b => {
                        let what = describe_open(&open);
                        let d = Diagnostic::error(
                            "syntax",
                            span(start, start + 1),
                            format!(
                                "expected `{}` to close the {what} opened at line {}, found `{}`",
                                closer(open.ch) as char,
                                line_of(src, open.offset),
                                b as char
                            ),
                        )
                        .with_label(
                            span(open.offset, open.offset + 1),
                            format!("{what} opened here"),
                        );
                        return Err(d);
                    }
                    Some(_) => {}
                }
                s.pos += 1;
            }
            _ if b.is_ascii_alphabetic() || b == b'_' => {
                let word = s.word_at(start);
                s.pos += word.len();
                // The grammar also skips prime marks after names.
                match word {
                    b"COMMENT" => match s.find(s.pos, b"ENDCOMMENT") {
                        Some(end) => s.pos = end + b"ENDCOMMENT".len(),
                        None if prefix => s.pos = s.src.len(),
                        None => {
                            let d = Diagnostic::error(
                                "syntax",
                                span(start, s.pos),
                                "COMMENT is never closed by ENDCOMMENT",
                            );
                            return Err(d);
                        }
                    },
                    b"VERBATIM" => match s.find(s.pos, b"ENDVERBATIM") {
                        Some(end) => s.pos = end + b"ENDVERBATIM".len(),
                        None if prefix => s.pos = s.src.len(),
                        None => {
                            let d = Diagnostic::error(
                                "syntax",
                                span(start, s.pos),
                                "VERBATIM is never closed by ENDVERBATIM",
                            );
                            return Err(d);
                        }
                    },
                    b"TITLE" => s.skip_to_eol(),
                    _ => {}
                }
                if words.len() > 64 {
                    words.drain(..32);
                }
                // Names are ASCII, so the slice is on character boundaries.
                words.push((&src[start..start + word.len()], start));
                last_word = word;
            }
            _ => s.pos += 1,
        }
    }
    if let Some(open) = stack.last().filter(|_| !prefix) {
        let what = describe_open(open);
        // Point just after the last token rather than past trailing newlines.
        let end = src.trim_end().len();
        let d = Diagnostic::error(
            "syntax",
            span(end, end),
            format!(
                "expected `{}` to close the {what} opened at line {}, found end of file",
                closer(open.ch) as char,
                line_of(src, open.offset)
            ),
        )
        .with_label(
            span(open.offset, open.offset + 1),
            format!("{what} opened here"),
        );
        return Err(d);
    }
    Ok(stack)
}

/// 1-based line of a byte offset.
fn line_of(src: &str, offset: usize) -> usize {
    src.as_bytes()[..offset.min(src.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

// ------------------------------------------------------------------ syntax errors

/// Punctuation worth naming in "expected …" lists (pest also reports the
/// characters inside numbers, names and comments, which would only confuse).
const STRUCTURAL: &[&str] = &[
    "{", "}", "(", ")", "[", "]", "=", ",", "<", ">", "~", "<->", "<<", "->", "-", "!",
];

/// Keywords that may start a top-level item.
const TOP_KEYWORDS: &[&str] = &[
    "TITLE",
    "DEFINE",
    "INCLUDE",
    "UNITS",
    "NEURON",
    "PARAMETER",
    "ASSIGNED",
    "STATE",
    "CONSTANT",
    "INDEPENDENT",
    "INITIAL",
    "BREAKPOINT",
    "DERIVATIVE",
    "KINETIC",
    "LINEAR",
    "NONLINEAR",
    "DISCRETE",
    "PROCEDURE",
    "FUNCTION",
    "FUNCTION_TABLE",
    "NET_RECEIVE",
    "BEFORE",
    "AFTER",
    "CONSTRUCTOR",
    "DESTRUCTOR",
    "VERBATIM",
    "LOCAL",
    "UNITSON",
    "UNITSOFF",
    "COMMENT",
];

/// Keywords that may start a NEURON-block statement.
const NEURON_KEYWORDS: &[&str] = &[
    "SUFFIX",
    "POINT_PROCESS",
    "ARTIFICIAL_CELL",
    "USEION",
    "NONSPECIFIC_CURRENT",
    "ELECTRODE_CURRENT",
    "RANGE",
    "GLOBAL",
    "POINTER",
    "BBCOREPOINTER",
    "EXTERNAL",
    "THREADSAFE",
    "REPRESENTS",
    "RANDOM",
    "CONDUCTANCE",
    "READ",
    "WRITE",
    "VALENCE",
];

/// Keywords that may start (or appear early in) a statement.
const STMT_KEYWORDS: &[&str] = &[
    "LOCAL",
    "SOLVE",
    "METHOD",
    "STEADYSTATE",
    "TABLE",
    "DEPEND",
    "CONSERVE",
    "COMPARTMENT",
    "LONGITUDINAL_DIFFUSION",
    "WATCH",
    "FOR_NETCONS",
    "PROTECT",
    "MUTEXLOCK",
    "MUTEXUNLOCK",
    "VERBATIM",
    "INITIAL",
    "CONDUCTANCE",
    "UNITSON",
    "UNITSOFF",
    "FROM",
    "TO",
    "WITH",
    "BY",
];

/// Levenshtein distance, case-insensitive, on ASCII.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<u8> = a.bytes().map(|c| c.to_ascii_uppercase()).collect();
    let b: Vec<u8> = b.bytes().map(|c| c.to_ascii_uppercase()).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let sub = prev[j - 1] + usize::from(a[i - 1] != b[j - 1]);
            cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest keyword to `word`, if it is close enough to be a likely typo.
fn suggest(word: &str, candidates: &[&'static str]) -> Option<&'static str> {
    if word.len() > 40 {
        return None;
    }
    let limit = if word.len() <= 4 { 1 } else { 2 };
    let mut best: Option<(usize, &'static str)> = None;
    for &c in candidates {
        let d = edit_distance(word, c);
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// The innermost open `{` block at byte offset `pos`, if any, as
/// (owner description, offset of the `{`). It runs the pre-scan over the
/// prefix up to `pos`, which the full pre-scan already accepted.
fn enclosing_block(file: FileId, src: &str, pos: usize) -> Option<Open> {
    let prefix = &src[..floor_char_boundary(src, pos)];
    scan_brackets(file, prefix, true)
        .ok()?
        .into_iter()
        .rev()
        .find(|open| open.ch == b'{')
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// True for nocmodl's reserved words.
fn is_reserved(word: &str) -> bool {
    !word.is_empty()
        && matches!(
            NmodlParser::parse(Rule::keyword, word),
            Ok(p) if p.as_str().len() == word.len()
        )
}

/// A short description of the token at `pos`: "`word`", "`}`" or "end of file".
fn found_token(src: &str, pos: usize) -> (String, usize) {
    let pos = floor_char_boundary(src, pos);
    let rest = &src[pos..];
    let Some(c) = rest.chars().next() else {
        return ("end of file".to_string(), 0);
    };
    if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
        let len = rest
            .bytes()
            .take_while(|&b| is_ident_byte(b) || b == b'.')
            .count()
            .min(40);
        (format!("`{}`", &rest[..len]), len)
    } else if c == '\n' || c == '\r' {
        ("end of line".to_string(), 0)
    } else {
        (format!("`{}`", c.escape_debug()), c.len_utf8())
    }
}

/// The identifier ending just before `pos` (skipping spaces), if any.
fn word_before(src: &str, pos: usize) -> Option<(usize, &str)> {
    let bytes = src.as_bytes();
    let mut end = floor_char_boundary(src, pos);
    while end > 0 && (bytes[end - 1] == b' ' || bytes[end - 1] == b'\t') {
        end -= 1;
    }
    let mut start = end;
    while start > 0 && is_ident_byte(bytes[start - 1]) {
        start -= 1;
    }
    (start < end).then(|| (start, &src[start..end]))
}

/// Human-readable name of a grammar rule, used in "expected …" lists. Returns
/// `None` for rules that should not be listed (they are implied by others).
fn rule_name(rule: Rule) -> Option<&'static str> {
    use Rule as R;
    Some(match rule {
        R::EOI => "end of file",
        R::COMMENT | R::ident_char | R::keyword => return None,
        R::item | R::unit_def => "a block such as NEURON, PARAMETER or BREAKPOINT",
        R::neuron_stmt => "a NEURON statement",
        R::decl_item => "a declaration",
        R::stmt | R::keyword_stmt => "a statement",
        R::prefix_op => "`-` or `!`",
        R::infix_op => "an operator",
        R::primary => "an operand",
        R::call_arg => "an argument",
        R::file => "a block such as NEURON, PARAMETER or BREAKPOINT",
        R::ident => "a name",
        R::number | R::signed_number | R::number_lit => "a number",
        R::integer => "an integer",
        R::string | R::string_inner => "a string",
        R::units | R::units_text => "units such as `(mV)`",
        R::ontology_id => "an ontology id such as `NCIT:C17145`",
        R::k_title => "`TITLE`",
        R::k_define => "`DEFINE`",
        R::k_include => "`INCLUDE`",
        R::k_units => "`UNITS`",
        R::k_neuron => "`NEURON`",
        R::k_parameter => "`PARAMETER`",
        R::k_assigned => "`ASSIGNED`",
        R::k_state => "`STATE`",
        R::k_constant => "`CONSTANT`",
        R::k_independent => "`INDEPENDENT`",
        R::k_initial => "`INITIAL`",
        R::k_breakpoint => "`BREAKPOINT`",
        R::k_derivative => "`DERIVATIVE`",
        R::k_kinetic => "`KINETIC`",
        R::k_linear => "`LINEAR`",
        R::k_nonlinear => "`NONLINEAR`",
        R::k_discrete => "`DISCRETE`",
        R::k_partial => "`PARTIAL`",
        R::k_solvefor => "`SOLVEFOR`",
        R::k_procedure => "`PROCEDURE`",
        R::k_function => "`FUNCTION`",
        R::k_function_table => "`FUNCTION_TABLE`",
        R::k_net_receive => "`NET_RECEIVE`",
        R::k_before => "`BEFORE`",
        R::k_after => "`AFTER`",
        R::k_step => "`STEP`",
        R::k_constructor => "`CONSTRUCTOR`",
        R::k_destructor => "`DESTRUCTOR`",
        R::k_verbatim => "`VERBATIM`",
        R::k_endverbatim => "`ENDVERBATIM`",
        R::k_local => "`LOCAL`",
        R::k_unitson => "`UNITSON`",
        R::k_unitsoff => "`UNITSOFF`",
        R::k_suffix => "`SUFFIX`",
        R::k_point_process => "`POINT_PROCESS`",
        R::k_artificial_cell => "`ARTIFICIAL_CELL`",
        R::k_useion => "`USEION`",
        R::k_read => "`READ`",
        R::k_write => "`WRITE`",
        R::k_valence => "`VALENCE`",
        R::k_represents => "`REPRESENTS`",
        R::k_nonspecific_current => "`NONSPECIFIC_CURRENT`",
        R::k_electrode_current => "`ELECTRODE_CURRENT`",
        R::k_range => "`RANGE`",
        R::k_global => "`GLOBAL`",
        R::k_pointer => "`POINTER`",
        R::k_bbcorepointer => "`BBCOREPOINTER`",
        R::k_external => "`EXTERNAL`",
        R::k_threadsafe => "`THREADSAFE`",
        R::k_random => "`RANDOM`",
        R::k_conductance => "`CONDUCTANCE`",
        R::k_from => "`FROM`",
        R::k_to => "`TO`",
        R::k_with => "`WITH`",
        R::k_by => "`BY`",
        R::k_start => "`START`",
        R::k_sweep => "`SWEEP`",
        R::k_if => "`if`",
        R::k_else => "`else`",
        R::k_while => "`while`",
        R::k_solve => "`SOLVE`",
        R::k_method => "`METHOD`",
        R::k_steadystate => "`STEADYSTATE`",
        R::k_iferror => "`IFERROR`",
        R::k_table => "`TABLE`",
        R::k_depend => "`DEPEND`",
        R::k_conserve => "`CONSERVE`",
        R::k_compartment => "`COMPARTMENT`",
        R::k_longitudinal_diffusion => "`LONGITUDINAL_DIFFUSION`",
        R::k_watch => "`WATCH`",
        R::k_for_netcons => "`FOR_NETCONS`",
        R::k_protect => "`PROTECT`",
        R::k_mutexlock => "`MUTEXLOCK`",
        R::k_mutexunlock => "`MUTEXUNLOCK`",
        R::k_lag => "`LAG`",
        R::title | R::title_text => "a TITLE line",
        R::define => "a DEFINE",
        R::include => "an INCLUDE",
        R::units_block => "a UNITS block",
        R::unit_alias | R::unit_conversion | R::unit_constant => "a unit definition",
        R::neuron_block => "a NEURON block",
        R::nrn_mechanism
        | R::nrn_useion
        | R::nrn_nonspecific
        | R::nrn_electrode
        | R::nrn_range
        | R::nrn_global
        | R::nrn_pointer
        | R::nrn_bbcorepointer
        | R::nrn_external
        | R::nrn_threadsafe
        | R::nrn_represents
        | R::nrn_random
        | R::nrn_conductance => "a NEURON statement",
        R::useion_read => "`READ`",
        R::useion_write => "`WRITE`",
        R::useion_valence => "`VALENCE`",
        R::useion_represents => "`REPRESENTS`",
        R::ident_list | R::table_names | R::state_names => "a name",
        R::conductance_ion => "`USEION`",
        R::parameter_block => "a PARAMETER block",
        R::assigned_block => "an ASSIGNED block",
        R::state_block => "a STATE block",
        R::constant_block => "a CONSTANT block",
        R::var_decl => "a declaration",
        R::array_dim => "`[`",
        R::decl_value => "`=`",
        R::decl_from_to => "`FROM`",
        R::decl_start => "`START`",
        R::decl_limits => "limits such as `<0, 1e9>`",
        R::decl_tolerance => "a tolerance such as `<1e-6>`",
        R::independent_block => "an INDEPENDENT block",
        R::independent_decl => "an independent-variable declaration",
        R::initial_block => "an INITIAL block",
        R::breakpoint_block => "a BREAKPOINT block",
        R::solvable_block => "a DERIVATIVE, KINETIC, LINEAR or NONLINEAR block",
        R::solvable_kw => "a block keyword",
        R::solvefor => "`SOLVEFOR`",
        R::procedure => "a PROCEDURE",
        R::function => "a FUNCTION",
        R::function_table => "a FUNCTION_TABLE",
        R::arg_list | R::arg => "an argument name",
        R::net_receive => "a NET_RECEIVE block",
        R::before_after => "a BEFORE or AFTER block",
        R::ba_phase => "`BREAKPOINT`, `SOLVE`, `INITIAL` or `STEP`",
        R::constructor => "a CONSTRUCTOR block",
        R::destructor => "a DESTRUCTOR block",
        R::verbatim | R::verbatim_text => "a VERBATIM block",
        R::units_on => "`UNITSON`",
        R::units_off => "`UNITSOFF`",
        R::block => "`{`",
        R::local_stmt | R::local_var => "a LOCAL declaration",
        R::if_stmt => "an if statement",
        R::else_if | R::else_clause => "`else`",
        R::while_stmt => "a while loop",
        R::from_stmt => "a FROM loop",
        R::by_clause => "`BY`",
        R::solve_stmt => "a SOLVE statement",
        R::solve_method => "`METHOD`",
        R::solve_steadystate => "`STEADYSTATE`",
        R::solve_iferror => "`IFERROR`",
        R::table_stmt => "a TABLE statement",
        R::table_depend => "`DEPEND`",
        R::conserve_stmt => "a CONSERVE statement",
        R::compartment_stmt => "a COMPARTMENT statement",
        R::ldifus_stmt => "a LONGITUDINAL_DIFFUSION statement",
        R::loop_index => "a name",
        R::watch_stmt => "a WATCH statement",
        R::watch_item => "`(`",
        R::for_netcons_stmt => "a FOR_NETCONS loop",
        R::protect_stmt => "a PROTECT statement",
        R::mutex_lock => "`MUTEXLOCK`",
        R::mutex_unlock => "`MUTEXUNLOCK`",
        R::initial_stmt => "an INITIAL block",
        R::conductance_stmt => "a CONDUCTANCE hint",
        R::lag_stmt => "a LAG statement",
        R::reaction_stmt => "a reaction",
        R::react_bidir => "`<->`",
        R::react_flux => "`<<`",
        R::react_forward => "`->`",
        R::react_terms | R::react_term => "a species name",
        R::linear_eq => "an equation",
        R::diff_eq => "a differential equation",
        R::primed | R::primes => "`'`",
        R::assign_stmt | R::assign_target => "an assignment",
        R::call_stmt | R::call => "a call",
        R::expr => "an expression",
        R::name_expr => "a name",
        // Implied by the operators that may follow a name.
        R::call_args | R::index => return None,
        R::paren => "`(`",
        R::neg => "`-`",
        R::not => "`!`",
        R::or => "`||`",
        R::and => "`&&`",
        R::le => "`<=`",
        R::ge => "`>=`",
        R::eq => "`==`",
        R::ne => "`!=`",
        R::lt => "`<`",
        R::gt => "`>`",
        R::add => "`+`",
        R::sub => "`-`",
        R::mul => "`*`",
        R::div => "`/`",
        R::rem => "`%`",
        R::pow => "`^`",
    })
}

/// Joins "a", "b", "c" as "a, b or c".
fn or_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// Turns a pest error into one diagnostic with a specific message.
fn syntax_error(file: FileId, src: &str, err: pest::error::Error<Rule>) -> Diagnostic {
    let pos = match err.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((a, _)) => a,
    };
    // Literal tokens (`}`, `=`, …) are only known with error detail on; parse
    // again with it (error paths only, so the cost does not matter).
    pest::set_error_detail(true);
    let detailed = NmodlParser::parse(Rule::file, src).err();
    pest::set_error_detail(false);
    let mut expected: Vec<String> = Vec::new();
    let mut push = |s: String| {
        if !expected.contains(&s) {
            expected.push(s);
        }
    };
    let mut pos = pos;
    if let Some(attempts) = detailed.as_ref().and_then(|e| e.parse_attempts()) {
        pos = attempts.max_position.max(pos).min(src.len());
        for t in attempts.expected_tokens() {
            // `ParsingToken` is not exported; its Display shows the literal.
            let token = t.to_string();
            let t = token.trim();
            if t.is_empty() || t == "'" || t == "BUILTIN_RULE" || t.contains("..") {
                continue;
            }
            // Reserved words reach here as literals of the keyword rules;
            // keyword rules are listed by name below instead.
            if t.len() > 1
                && t.chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
            {
                continue;
            }
            if matches!(t, "if" | "else" | "while" | "IF" | "ELSE" | "WHILE") {
                continue;
            }
            if !STRUCTURAL.contains(&t) {
                continue;
            }
            push(format!("`{t}`"));
        }
    }
    if let pest::error::ErrorVariant::ParsingError { positives, .. } = &err.variant {
        // An operand is expected: say "an expression" once instead of listing
        // `(`, `-`, `!`, numbers, names and calls.
        let operand = [
            Rule::neg,
            Rule::not,
            Rule::number_lit,
            Rule::call,
            Rule::name_expr,
            Rule::paren,
            Rule::expr,
        ];
        if positives.iter().any(|r| operand.contains(r)) {
            expected.retain(|e| !matches!(e.as_str(), "`(`" | "`-`" | "`!`"));
            expected.insert(0, "an expression".to_string());
        }
        let wants_operand = positives.iter().any(|r| operand.contains(r));
        for &r in positives {
            if operand.contains(&r) || (wants_operand && matches!(r, Rule::ident | Rule::number)) {
                continue;
            }
            if let Some(name) = rule_name(r) {
                if !expected.iter().any(|e| e == name) {
                    expected.push(name.to_string());
                }
            }
        }
    }
    // Operators can always continue an operand; when something else was
    // expected too, listing them only hides it.
    let operators = [
        "`+`",
        "`-`",
        "`*`",
        "`/`",
        "`^`",
        "`%`",
        "`<`",
        "`>`",
        "`<=`",
        "`>=`",
        "`==`",
        "`!=`",
        "`||`",
        "`&&`",
        "`[`",
        "`(`",
        "units such as `(mV)`",
    ];
    if expected.iter().any(|e| !operators.contains(&e.as_str())) {
        expected.retain(|e| !operators.contains(&e.as_str()));
    } else {
        // The grammar tries the operators most frequent first; list them
        // loosest first, as nocmodl's table orders them.
        const BINARY: [&str; 14] = [
            "`||`", "`&&`", "`<=`", "`>=`", "`==`", "`!=`", "`<`", "`>`", "`+`", "`-`", "`*`",
            "`/`", "`%`", "`^`",
        ];
        let slots: Vec<usize> = (0..expected.len())
            .filter(|&i| BINARY.contains(&expected[i].as_str()))
            .collect();
        let mut ops: Vec<String> = slots.iter().map(|&i| expected[i].clone()).collect();
        ops.sort_by_key(|o| BINARY.iter().position(|b| b == o));
        for (&i, op) in slots.iter().zip(ops) {
            expected[i] = op;
        }
    }
    let orig_pos = floor_char_boundary(src, pos);
    while pos < src.len() && src.as_bytes()[pos].is_ascii_whitespace() {
        pos += 1;
    }
    // A reserved word where a name was expected: `TABLE = 3`.
    if expected.iter().any(|e| e == "a name") {
        let p = floor_char_boundary(src, pos);
        let word_start = p;
        let word: String = src[p..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        // pest stops right after a reserved word it refused as a name.
        let before = word_before(src, orig_pos).filter(|(ws, w)| ws + w.len() == orig_pos);
        let candidates = [(word_start, word.as_str())].into_iter().chain(before);
        for (wstart, w) in candidates {
            if is_reserved(w) {
                return Diagnostic::error(
                    "syntax",
                    Span::new(file, wstart, wstart + w.len()),
                    format!("`{w}` is a reserved word in NMODL and cannot be used as a name"),
                );
            }
        }
    }
    let (found, found_len) = found_token(src, pos);
    let here = Span::new(file, pos, pos + found_len);
    let block = enclosing_block(file, src, pos);
    let in_block = block.as_ref().map(describe_open).unwrap_or_default();
    let found_word = src
        .get(pos..)
        .map(|r| {
            let n = r.bytes().take_while(|&b| is_ident_byte(b)).count();
            &r[..n]
        })
        .filter(|w| w.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'))
        .unwrap_or("");

    // A misspelled keyword where a keyword is expected.
    let keyword_set: Option<(&[&str], String)> = match &block {
        None => Some((TOP_KEYWORDS, "at top level".to_string())),
        Some(b) if b.owner == "NEURON" => Some((NEURON_KEYWORDS, "in NEURON block".to_string())),
        Some(b) => Some((STMT_KEYWORDS, format!("in {}", describe_open(b)))),
    };
    if let Some((set, where_)) = &keyword_set {
        if !found_word.is_empty()
            && (block.is_none() || block.as_ref().is_some_and(|b| b.owner == "NEURON"))
        {
            let what = if block.is_none() { "block" } else { "keyword" };
            let mut d = match suggest(found_word, set) {
                Some(k) if k != found_word => Diagnostic::error(
                    "syntax",
                    here,
                    format!("unknown {what} `{found_word}` {where_}; did you mean `{k}`?"),
                ),
                _ => Diagnostic::error(
                    "syntax",
                    here,
                    format!("unknown {what} `{found_word}` {where_}"),
                )
                .with_note(format!("expected {}", or_list(&expected))),
            };
            if let Some(b) = &block {
                d = d.with_label(
                    Span::new(file, b.offset, b.offset + 1),
                    format!("{in_block} opened here"),
                );
            }
            return d;
        }
        // In a statement block: `SOVLE states METHOD cnexp` fails after the
        // unknown word, when `=` was expected.
        if let Some((wstart, word)) = word_before(src, pos) {
            let upper = word.len() > 2
                && word
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit());
            if upper && expected.iter().any(|e| e == "`=`") {
                if let Some(k) = suggest(word, set).filter(|k| *k != word) {
                    return Diagnostic::error(
                        "syntax",
                        Span::new(file, wstart, wstart + word.len()),
                        format!("unknown keyword `{word}` {where_}; did you mean `{k}`?"),
                    );
                }
            }
        }
    }

    let mut message = if expected.is_empty() {
        format!("unexpected {found}")
    } else {
        let mut shown: Vec<String> = expected.iter().take(8).cloned().collect();
        if expected.len() > 8 {
            shown.push("…".to_string());
        }
        format!("expected {}, found {found}", or_list(&shown))
    };
    if !in_block.is_empty() {
        message.push_str(&format!(" in {in_block}"));
    }
    let mut d = Diagnostic::error("syntax", here, message);
    if let Some(b) = &block {
        d = d.with_label(
            Span::new(file, b.offset, b.offset + 1),
            format!("{in_block} opened here"),
        );
    }
    d
}

// ------------------------------------------------------------------ lowering

/// The operator table: loosest first, as in nocmodl's parse1.ypp
/// (`||`; `&&`; comparisons; `+ -`; `* / %`; unary `-` and `!`; `^` right).
fn pratt() -> &'static PrattParser<Rule> {
    static PRATT: OnceLock<PrattParser<Rule>> = OnceLock::new();
    PRATT.get_or_init(|| {
        PrattParser::new()
            .op(Op::infix(Rule::or, Assoc::Left))
            .op(Op::infix(Rule::and, Assoc::Left))
            .op(Op::infix(Rule::lt, Assoc::Left)
                | Op::infix(Rule::le, Assoc::Left)
                | Op::infix(Rule::gt, Assoc::Left)
                | Op::infix(Rule::ge, Assoc::Left)
                | Op::infix(Rule::eq, Assoc::Left)
                | Op::infix(Rule::ne, Assoc::Left))
            .op(Op::infix(Rule::add, Assoc::Left) | Op::infix(Rule::sub, Assoc::Left))
            .op(Op::infix(Rule::mul, Assoc::Left)
                | Op::infix(Rule::div, Assoc::Left)
                | Op::infix(Rule::rem, Assoc::Left))
            .op(Op::prefix(Rule::neg) | Op::prefix(Rule::not))
            .op(Op::infix(Rule::pow, Assoc::Right))
    })
}

/// Lowering state: the file and the diagnostics found while lowering.
struct Lower {
    file: FileId,
    diags: Vec<Diagnostic>,
}

/// The end of a pair's last real token: pest's implicit whitespace before a
/// repetition that matched nothing stays inside the parent pair, so the raw
/// end may include trailing blanks and comments.
fn trimmed_end(pair: &Pair<Rule>) -> usize {
    let span = pair.as_span();
    let end = span.end();
    let text = pair.get_input().as_bytes();
    // Fast path: skipped text can only end in whitespace, at the end of the
    // file (a `:` comment without a newline) or with `ENDCOMMENT`; any other
    // last byte is a real token, so the pair already ends there.
    if end == span.start()
        || (end < text.len()
            && !matches!(text[end - 1], b' ' | b'\t'..=b'\r')
            && !text[..end].ends_with(b"ENDCOMMENT"))
    {
        return end;
    }
    let mut i = match pair.clone().into_inner().next_back() {
        Some(last) => trimmed_end(&last),
        None => return end,
    };
    let mut real_end = i;
    while i < end {
        match text[i] {
            b' ' | b'\t' | b'\r' | b'\n' | 0x0c => i += 1,
            b':' | b'?' => {
                while i < end && text[i] != b'\n' {
                    i += 1;
                }
            }
            b'C' if text[i..end].starts_with(b"COMMENT") => {
                i = text[i..end]
                    .windows(10)
                    .position(|w| w == b"ENDCOMMENT")
                    .map_or(end, |p| i + p + 10);
            }
            _ => {
                i += 1;
                real_end = i;
            }
        }
    }
    // Stay on a character boundary.
    while real_end < end && (text[real_end] & 0xC0) == 0x80 {
        real_end += 1;
    }
    real_end
}

/// Takes the next child; the grammar guarantees it exists.
fn next<'i>(pairs: &mut Pairs<'i, Rule>) -> Pair<'i, Rule> {
    pairs.next().expect("grammar guarantees this child")
}

impl Lower {
    /// The span of a pair, without the whitespace and comments that pest
    /// includes after a trailing optional or repeated element.
    fn span(&self, pair: &Pair<Rule>) -> Span {
        let s = pair.as_span();
        Span::new(self.file, s.start(), trimmed_end(pair))
    }

    fn ident(&self, pair: Pair<Rule>) -> Ident {
        assert_eq!(pair.as_rule(), Rule::ident);
        Ident {
            name: pair.as_str().to_string(),
            span: self.span(&pair),
        }
    }

    fn ident_list(&self, pair: Pair<Rule>) -> Vec<Ident> {
        pair.into_inner()
            .filter(|p| p.as_rule() == Rule::ident)
            .map(|p| self.ident(p))
            .collect()
    }

    // signed_number = @{ ("-" ~ (" " | "\t")*)? ~ number }
    fn number(&mut self, pair: Pair<Rule>) -> Number {
        assert!(matches!(
            pair.as_rule(),
            Rule::signed_number | Rule::number | Rule::integer
        ));
        let text: String = pair
            .as_str()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let span = self.span(&pair);
        let value = match text.parse::<f64>() {
            Ok(v) => v,
            Err(_) => {
                self.diags.push(Diagnostic::error(
                    "syntax",
                    span,
                    format!("`{text}` is not a valid number"),
                ));
                0.0
            }
        };
        Number { value, text, span }
    }

    // units = ${ "(" ~ units_text ~ ")" }
    fn units(&self, pair: Pair<Rule>) -> Units {
        assert_eq!(pair.as_rule(), Rule::units);
        let span = self.span(&pair);
        let text = pair
            .into_inner()
            .next()
            .map(|p| p.as_str().trim().to_string())
            .unwrap_or_default();
        Units { text, span }
    }

    // file = { SOI ~ item* ~ EOI }
    fn parse_file(&mut self, pair: Pair<Rule>, len: usize) -> Module {
        assert_eq!(pair.as_rule(), Rule::file);
        let mut items = Vec::new();
        for p in pair.into_inner() {
            if p.as_rule() == Rule::EOI {
                continue;
            }
            items.push(self.parse_item(p));
        }
        Module {
            file: self.file,
            items,
            span: Span::new(self.file, 0, len),
        }
    }

    fn parse_item(&mut self, pair: Pair<Rule>) -> Item {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let mut inner = pair.into_inner();
        let kind = match rule {
            // title = ${ k_title ~ title_text }
            Rule::title => {
                next(&mut inner);
                ItemKind::Title(next(&mut inner).as_str().trim().to_string())
            }
            // define = { k_define ~ ident ~ signed_number }
            Rule::define => {
                next(&mut inner);
                let name = self.ident(next(&mut inner));
                let value = self.number(next(&mut inner));
                if value.value.fract() != 0.0 || value.text.contains(['.', 'e', 'E']) {
                    self.diags.push(Diagnostic::error(
                        "syntax",
                        value.span,
                        format!("DEFINE needs an integer, found `{}`", value.text),
                    ));
                }
                ItemKind::Define(Define { name, value })
            }
            // include = { k_include ~ string }
            Rule::include => {
                next(&mut inner);
                let s = next(&mut inner);
                let path_span = self.span(&s);
                let path = s
                    .into_inner()
                    .next()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_default();
                ItemKind::Include(Include { path, path_span })
            }
            // units_block = { k_units ~ "{" ~ (unit_def | units_on | units_off)* ~ "}" }
            Rule::units_block => {
                next(&mut inner);
                ItemKind::Units(
                    inner
                        .filter(|p| !matches!(p.as_rule(), Rule::units_on | Rule::units_off))
                        .map(|p| self.parse_unit_def(p))
                        .collect(),
                )
            }
            // neuron_block = { k_neuron ~ "{" ~ neuron_stmt* ~ "}" }
            Rule::neuron_block => {
                next(&mut inner);
                ItemKind::Neuron(
                    inner
                        .filter(|p| !matches!(p.as_rule(), Rule::units_on | Rule::units_off))
                        .map(|p| self.parse_neuron_stmt(p))
                        .collect(),
                )
            }
            // parameter_block = { k_parameter ~ "{" ~ decl_item* ~ "}" }
            Rule::parameter_block => ItemKind::Parameter(self.decls(inner)),
            Rule::assigned_block => ItemKind::Assigned(self.decls(inner)),
            Rule::state_block => ItemKind::State(self.decls(inner)),
            Rule::constant_block => ItemKind::Constant(self.decls(inner)),
            // independent_block = { k_independent ~ "{" ~ (independent_decl | units_on | units_off)* ~ "}" }
            Rule::independent_block => {
                next(&mut inner);
                ItemKind::Independent(
                    inner
                        .filter(|p| p.as_rule() == Rule::independent_decl)
                        .map(|p| self.parse_independent_decl(p))
                        .collect(),
                )
            }
            // initial_block = { k_initial ~ block }
            Rule::initial_block => {
                next(&mut inner);
                ItemKind::Initial(self.parse_block(next(&mut inner)))
            }
            // breakpoint_block = { k_breakpoint ~ block }
            Rule::breakpoint_block => {
                next(&mut inner);
                ItemKind::Breakpoint(self.parse_block(next(&mut inner)))
            }
            // solvable_block = { solvable_kw ~ ident ~ solvefor? ~ block }
            Rule::solvable_block => {
                let kw = next(&mut inner);
                let kind = match next(&mut kw.into_inner()).as_rule() {
                    Rule::k_derivative => SolvableKind::Derivative,
                    Rule::k_kinetic => SolvableKind::Kinetic,
                    Rule::k_linear => SolvableKind::Linear,
                    Rule::k_nonlinear => SolvableKind::NonLinear,
                    Rule::k_discrete => SolvableKind::Discrete,
                    _ => SolvableKind::Partial,
                };
                let name = self.ident(next(&mut inner));
                let mut solvefor = Vec::new();
                let mut p = next(&mut inner);
                if p.as_rule() == Rule::solvefor {
                    let mut sf = p.into_inner();
                    next(&mut sf);
                    solvefor = self.ident_list(next(&mut sf));
                    p = next(&mut inner);
                }
                let body = self.parse_block(p);
                ItemKind::Solvable(SolvableBlock {
                    kind,
                    name,
                    solvefor,
                    body,
                })
            }
            // procedure = { k_procedure ~ ident ~ "(" ~ arg_list? ~ ")" ~ units? ~ block }
            Rule::procedure => {
                next(&mut inner);
                let name = self.ident(next(&mut inner));
                let (args, units, body) = self.signature(inner);
                ItemKind::Procedure(Procedure {
                    name,
                    args,
                    units,
                    body: body.unwrap_or_else(|| self.empty_block(span)),
                })
            }
            // function = { k_function ~ ident ~ "(" ~ arg_list? ~ ")" ~ units? ~ block }
            Rule::function => {
                next(&mut inner);
                let name = self.ident(next(&mut inner));
                let (args, units, body) = self.signature(inner);
                ItemKind::Function(Function {
                    name,
                    args,
                    units,
                    body: body.unwrap_or_else(|| self.empty_block(span)),
                })
            }
            // function_table = { k_function_table ~ ident ~ "(" ~ arg_list? ~ ")" ~ units? }
            Rule::function_table => {
                next(&mut inner);
                let name = self.ident(next(&mut inner));
                let (args, units, _) = self.signature(inner);
                ItemKind::FunctionTable(FunctionTable { name, args, units })
            }
            // net_receive = { k_net_receive ~ "(" ~ arg_list? ~ ")" ~ block }
            Rule::net_receive => {
                next(&mut inner);
                let (args, _, body) = self.signature(inner);
                ItemKind::NetReceive(NetReceive {
                    args,
                    body: body.unwrap_or_else(|| self.empty_block(span)),
                })
            }
            // before_after = { (k_before | k_after) ~ ba_phase ~ block }
            Rule::before_after => {
                let when = match next(&mut inner).as_rule() {
                    Rule::k_before => BaWhen::Before,
                    _ => BaWhen::After,
                };
                let phase = match next(&mut next(&mut inner).into_inner()).as_rule() {
                    Rule::k_breakpoint => BaPhase::Breakpoint,
                    Rule::k_solve => BaPhase::Solve,
                    Rule::k_initial => BaPhase::Initial,
                    _ => BaPhase::Step,
                };
                let body = self.parse_block(next(&mut inner));
                ItemKind::BeforeAfter(BeforeAfter { when, phase, body })
            }
            // constructor = { k_constructor ~ block }
            Rule::constructor => {
                next(&mut inner);
                ItemKind::Constructor(self.parse_block(next(&mut inner)))
            }
            // destructor = { k_destructor ~ block }
            Rule::destructor => {
                next(&mut inner);
                ItemKind::Destructor(self.parse_block(next(&mut inner)))
            }
            // verbatim = ${ k_verbatim ~ verbatim_text ~ k_endverbatim }
            Rule::verbatim => {
                next(&mut inner);
                ItemKind::Verbatim(self.verbatim_text(next(&mut inner)))
            }
            // local_stmt = { k_local ~ local_var ~ ("," ~ local_var)* }
            Rule::local_stmt => {
                next(&mut inner);
                ItemKind::Local(inner.map(|p| self.parse_local_var(p)).collect())
            }
            Rule::units_on => ItemKind::UnitsOn,
            Rule::units_off => ItemKind::UnitsOff,
            other => unreachable!("not an item: {other:?}"),
        };
        Item { kind, span }
    }

    fn empty_block(&self, span: Span) -> Block {
        Block {
            stmts: Vec::new(),
            span: Span::new(self.file, span.end as usize, span.end as usize),
        }
    }

    /// `"(" ~ arg_list? ~ ")" ~ units? ~ block?`: the rest of a procedure,
    /// function, FUNCTION_TABLE or NET_RECEIVE header.
    fn signature(&mut self, inner: Pairs<Rule>) -> (Vec<Arg>, Option<Units>, Option<Block>) {
        let mut args = Vec::new();
        let mut units = None;
        let mut body = None;
        for p in inner {
            match p.as_rule() {
                Rule::arg_list => args = p.into_inner().map(|a| self.parse_arg(a)).collect(),
                Rule::units => units = Some(self.units(p)),
                Rule::block => body = Some(self.parse_block(p)),
                other => unreachable!("unexpected {other:?} in a signature"),
            }
        }
        (args, units, body)
    }

    // arg = { ident ~ units? }
    fn parse_arg(&mut self, pair: Pair<Rule>) -> Arg {
        assert_eq!(pair.as_rule(), Rule::arg);
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let name = self.ident(next(&mut inner));
        let units = inner.next().map(|u| self.units(u));
        Arg { name, units, span }
    }

    fn verbatim_text(&self, pair: Pair<Rule>) -> Verbatim {
        assert_eq!(pair.as_rule(), Rule::verbatim_text);
        Verbatim {
            text: pair.as_str().to_string(),
            span: self.span(&pair),
        }
    }

    // unit_alias = { units ~ "=" ~ units }
    // unit_conversion = { ident ~ "=" ~ units ~ ("-" ~ ">")? ~ units }
    // unit_constant = { ident ~ "=" ~ signed_number ~ units }
    fn parse_unit_def(&mut self, pair: Pair<Rule>) -> UnitDef {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let mut inner = pair.into_inner();
        let kind = match rule {
            Rule::unit_alias => UnitDefKind::Alias {
                name: self.units(next(&mut inner)),
                definition: self.units(next(&mut inner)),
            },
            Rule::unit_conversion => UnitDefKind::Conversion {
                name: self.ident(next(&mut inner)),
                from: self.units(next(&mut inner)),
                to: self.units(next(&mut inner)),
            },
            Rule::unit_constant => UnitDefKind::Constant {
                name: self.ident(next(&mut inner)),
                value: self.number(next(&mut inner)),
                units: self.units(next(&mut inner)),
            },
            other => unreachable!("not a unit definition: {other:?}"),
        };
        UnitDef { kind, span }
    }

    fn parse_neuron_stmt(&mut self, pair: Pair<Rule>) -> NeuronStmt {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let mut inner = pair.into_inner();
        let kw = next(&mut inner);
        let kind = match rule {
            // nrn_mechanism = { (k_suffix | k_point_process | k_artificial_cell) ~ ident }
            Rule::nrn_mechanism => NeuronStmtKind::Mechanism {
                kind: match kw.as_rule() {
                    Rule::k_suffix => MechanismKind::Suffix,
                    Rule::k_point_process => MechanismKind::PointProcess,
                    _ => MechanismKind::ArtificialCell,
                },
                name: self.ident(next(&mut inner)),
            },
            // nrn_useion = { k_useion ~ ident ~ useion_read? ~ useion_write? ~ useion_valence? ~ useion_represents? }
            Rule::nrn_useion => {
                let ion = self.ident(next(&mut inner));
                let mut u = UseIon {
                    ion,
                    read: Vec::new(),
                    write: Vec::new(),
                    valence: None,
                    represents: None,
                };
                for p in inner {
                    let r = p.as_rule();
                    let mut pi = p.into_inner();
                    next(&mut pi);
                    let v = next(&mut pi);
                    match r {
                        Rule::useion_read => u.read = self.ident_list(v),
                        Rule::useion_write => u.write = self.ident_list(v),
                        Rule::useion_valence => u.valence = Some(self.number(v)),
                        _ => u.represents = Some(self.ontology(v)),
                    }
                }
                NeuronStmtKind::UseIon(u)
            }
            Rule::nrn_nonspecific => {
                NeuronStmtKind::NonspecificCurrent(self.ident_list(next(&mut inner)))
            }
            Rule::nrn_electrode => {
                NeuronStmtKind::ElectrodeCurrent(self.ident_list(next(&mut inner)))
            }
            Rule::nrn_range => NeuronStmtKind::Range(self.ident_list(next(&mut inner))),
            Rule::nrn_global => NeuronStmtKind::Global(self.ident_list(next(&mut inner))),
            Rule::nrn_pointer => NeuronStmtKind::Pointer(self.ident_list(next(&mut inner))),
            Rule::nrn_bbcorepointer => {
                NeuronStmtKind::BbcorePointer(self.ident_list(next(&mut inner)))
            }
            Rule::nrn_external => NeuronStmtKind::External(self.ident_list(next(&mut inner))),
            // nrn_threadsafe = { k_threadsafe ~ ident_list? }
            Rule::nrn_threadsafe => NeuronStmtKind::ThreadSafe(
                inner.next().map(|l| self.ident_list(l)).unwrap_or_default(),
            ),
            Rule::nrn_represents => NeuronStmtKind::Represents(self.ontology(next(&mut inner))),
            Rule::nrn_random => NeuronStmtKind::Random(self.ident_list(next(&mut inner))),
            // nrn_conductance = { k_conductance ~ ident ~ conductance_ion? }
            Rule::nrn_conductance => NeuronStmtKind::Conductance(self.conductance(inner)),
            other => unreachable!("not a NEURON statement: {other:?}"),
        };
        NeuronStmt { kind, span }
    }

    fn conductance(&self, mut inner: Pairs<Rule>) -> Conductance {
        let name = self.ident(next(&mut inner));
        let ion = inner.next().map(|p| {
            let mut pi = p.into_inner();
            next(&mut pi);
            self.ident(next(&mut pi))
        });
        Conductance { name, ion }
    }

    fn ontology(&self, pair: Pair<Rule>) -> Ontology {
        assert_eq!(pair.as_rule(), Rule::ontology_id);
        Ontology {
            id: pair.as_str().to_string(),
            span: self.span(&pair),
        }
    }

    fn decls(&mut self, mut inner: Pairs<Rule>) -> Vec<VarDecl> {
        next(&mut inner);
        inner
            .filter(|p| p.as_rule() == Rule::var_decl)
            .map(|p| self.parse_var_decl(p))
            .collect()
    }

    // var_decl = { ident ~ array_dim? ~ decl_value? ~ decl_from_to? ~ decl_start? ~ units? ~ decl_limits? ~ decl_tolerance? }
    fn parse_var_decl(&mut self, pair: Pair<Rule>) -> VarDecl {
        assert_eq!(pair.as_rule(), Rule::var_decl);
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let mut d = VarDecl {
            name: self.ident(next(&mut inner)),
            array: None,
            value: None,
            from_to: None,
            start: None,
            units: None,
            limits: None,
            tolerance: None,
            span,
        };
        for p in inner {
            match p.as_rule() {
                Rule::array_dim => d.array = Some(self.parse_array_dim(p)),
                Rule::decl_value => d.value = Some(self.number(next(&mut p.into_inner()))),
                Rule::decl_from_to => {
                    let mut pi = p.into_inner();
                    next(&mut pi);
                    let lo = self.number(next(&mut pi));
                    next(&mut pi);
                    let hi = self.number(next(&mut pi));
                    d.from_to = Some((lo, hi));
                }
                Rule::decl_start => {
                    let mut pi = p.into_inner();
                    next(&mut pi);
                    d.start = Some(self.number(next(&mut pi)));
                }
                Rule::units => d.units = Some(self.units(p)),
                Rule::decl_limits => {
                    let mut pi = p.into_inner();
                    let lo = self.number(next(&mut pi));
                    let hi = self.number(next(&mut pi));
                    d.limits = Some((lo, hi));
                }
                Rule::decl_tolerance => d.tolerance = Some(self.number(next(&mut p.into_inner()))),
                other => unreachable!("unexpected {other:?} in a declaration"),
            }
        }
        d
    }

    // array_dim = { "[" ~ (integer | ident) ~ "]" }
    fn parse_array_dim(&mut self, pair: Pair<Rule>) -> ArrayDim {
        assert_eq!(pair.as_rule(), Rule::array_dim);
        let p = next(&mut pair.into_inner());
        let span = self.span(&p);
        match p.as_rule() {
            Rule::integer => match p.as_str().parse::<i64>() {
                Ok(value) => ArrayDim::Literal { value, span },
                Err(_) => {
                    self.diags.push(Diagnostic::error(
                        "syntax",
                        span,
                        format!("array size `{}` is too large", p.as_str()),
                    ));
                    ArrayDim::Literal { value: 1, span }
                }
            },
            _ => ArrayDim::Define(self.ident(p)),
        }
    }

    // independent_decl = { k_sweep? ~ ident ~ k_from ~ signed_number ~ k_to ~ signed_number ~ k_with ~ signed_number ~ decl_start? ~ units? }
    fn parse_independent_decl(&mut self, pair: Pair<Rule>) -> IndependentDecl {
        assert_eq!(pair.as_rule(), Rule::independent_decl);
        let span = self.span(&pair);
        let mut inner = pair.into_inner().peekable();
        let sweep = inner.next_if(|p| p.as_rule() == Rule::k_sweep).is_some();
        let mut inner: Vec<Pair<Rule>> = inner.collect();
        inner.reverse();
        let mut pop = || inner.pop().expect("grammar guarantees this child");
        let name = self.ident(pop());
        pop();
        let from = self.number(pop());
        pop();
        let to = self.number(pop());
        pop();
        let with = self.number(pop());
        let mut start = None;
        let mut units = None;
        while let Some(p) = inner.pop() {
            match p.as_rule() {
                Rule::decl_start => {
                    let mut pi = p.into_inner();
                    next(&mut pi);
                    start = Some(self.number(next(&mut pi)));
                }
                _ => units = Some(self.units(p)),
            }
        }
        IndependentDecl {
            name,
            from,
            to,
            with,
            start,
            units,
            sweep,
            span,
        }
    }

    // local_var = { ident ~ array_dim? }
    fn parse_local_var(&mut self, pair: Pair<Rule>) -> LocalVar {
        assert_eq!(pair.as_rule(), Rule::local_var);
        let mut inner = pair.into_inner();
        let name = self.ident(next(&mut inner));
        let array = inner.next().map(|p| self.parse_array_dim(p));
        LocalVar { name, array }
    }

    // block = { "{" ~ stmt* ~ "}" }
    fn parse_block(&mut self, pair: Pair<Rule>) -> Block {
        assert_eq!(pair.as_rule(), Rule::block);
        let span = self.span(&pair);
        let stmts: Vec<Stmt> = pair.into_inner().map(|p| self.parse_stmt(p)).collect();
        // nocmodl accepts LOCAL only at the start of a block (parse1.ypp:
        // `stmtlist: '{' locallist stmtlist1`).
        let mut seen_other = false;
        for s in &stmts {
            match s.kind {
                StmtKind::Local(_) if seen_other => {
                    self.diags.push(
                        Diagnostic::error(
                            "local-not-first",
                            s.span,
                            "LOCAL declarations must come before the other statements of a block",
                        )
                        .with_note("NEURON accepts LOCAL only at the start of a `{ }` block"),
                    );
                }
                StmtKind::Local(_) => {}
                _ => seen_other = true,
            }
        }
        Block { stmts, span }
    }

    fn parse_stmt(&mut self, pair: Pair<Rule>) -> Stmt {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        if rule == Rule::block {
            return Stmt {
                kind: StmtKind::Block(self.parse_block(pair)),
                span,
            };
        }
        let mut inner = pair.into_inner();
        let kind = match rule {
            // local_stmt = { k_local ~ local_var ~ ("," ~ local_var)* }
            Rule::local_stmt => {
                next(&mut inner);
                StmtKind::Local(inner.map(|p| self.parse_local_var(p)).collect())
            }
            // if_stmt = { k_if ~ "(" ~ expr ~ ")" ~ block ~ else_if* ~ else_clause? }
            Rule::if_stmt => {
                next(&mut inner);
                let cond = self.parse_expr(next(&mut inner));
                let then_block = self.parse_block(next(&mut inner));
                let mut else_ifs = Vec::new();
                let mut else_block = None;
                for p in inner {
                    let pspan = self.span(&p);
                    match p.as_rule() {
                        // else_if = { k_else ~ k_if ~ "(" ~ expr ~ ")" ~ block }
                        Rule::else_if => {
                            let mut pi = p.into_inner();
                            next(&mut pi);
                            next(&mut pi);
                            let cond = self.parse_expr(next(&mut pi));
                            let body = self.parse_block(next(&mut pi));
                            else_ifs.push(ElseIf {
                                cond,
                                body,
                                span: pspan,
                            });
                        }
                        // else_clause = { k_else ~ block }
                        _ => {
                            let mut pi = p.into_inner();
                            next(&mut pi);
                            else_block = Some(self.parse_block(next(&mut pi)));
                        }
                    }
                }
                StmtKind::If {
                    cond,
                    then_block,
                    else_ifs,
                    else_block,
                }
            }
            // while_stmt = { k_while ~ "(" ~ expr ~ ")" ~ block }
            Rule::while_stmt => {
                next(&mut inner);
                StmtKind::While {
                    cond: self.parse_expr(next(&mut inner)),
                    body: self.parse_block(next(&mut inner)),
                }
            }
            // from_stmt = { k_from ~ ident ~ "=" ~ expr ~ k_to ~ expr ~ by_clause? ~ block }
            Rule::from_stmt => {
                next(&mut inner);
                let var = self.ident(next(&mut inner));
                let from = self.parse_expr(next(&mut inner));
                next(&mut inner);
                let to = self.parse_expr(next(&mut inner));
                let mut p = next(&mut inner);
                let mut by = None;
                if p.as_rule() == Rule::by_clause {
                    let mut pi = p.into_inner();
                    next(&mut pi);
                    by = Some(self.parse_expr(next(&mut pi)));
                    p = next(&mut inner);
                }
                let body = self.parse_block(p);
                StmtKind::From {
                    var,
                    from,
                    to,
                    by,
                    body,
                }
            }
            // solve_stmt = { k_solve ~ ident ~ solve_method? ~ solve_steadystate? ~ solve_iferror? }
            Rule::solve_stmt => {
                next(&mut inner);
                let name = self.ident(next(&mut inner));
                let mut method = None;
                let mut steadystate = None;
                let mut if_error = None;
                for p in inner {
                    let r = p.as_rule();
                    let mut pi = p.into_inner();
                    next(&mut pi);
                    let v = next(&mut pi);
                    match r {
                        Rule::solve_method => method = Some(self.ident(v)),
                        Rule::solve_steadystate => steadystate = Some(self.ident(v)),
                        _ => if_error = Some(self.parse_block(v)),
                    }
                }
                StmtKind::Solve {
                    name,
                    method,
                    steadystate,
                    if_error,
                }
            }
            // table_stmt = { k_table ~ table_names? ~ table_depend? ~ k_from ~ expr ~ k_to ~ expr ~ k_with ~ expr }
            Rule::table_stmt => {
                next(&mut inner);
                let mut names = Vec::new();
                let mut depend = Vec::new();
                let mut exprs = Vec::new();
                for p in inner {
                    match p.as_rule() {
                        Rule::table_names => names = self.ident_list(p),
                        Rule::table_depend => depend = self.ident_list(p),
                        Rule::expr => exprs.push(self.parse_expr(p)),
                        _ => {}
                    }
                }
                let mut exprs = exprs.into_iter();
                let (Some(from), Some(to), Some(with)) = (exprs.next(), exprs.next(), exprs.next())
                else {
                    unreachable!("TABLE has three expressions")
                };
                StmtKind::Table {
                    names,
                    depend,
                    from,
                    to,
                    with,
                }
            }
            // conserve_stmt = { k_conserve ~ react_terms ~ "=" ~ expr }
            Rule::conserve_stmt => {
                next(&mut inner);
                let terms = self.parse_react_terms(next(&mut inner));
                let rhs = self.parse_expr(next(&mut inner));
                StmtKind::Conserve { terms, rhs }
            }
            // compartment_stmt = { k_compartment ~ loop_index? ~ expr ~ "{" ~ state_names ~ "}" }
            Rule::compartment_stmt | Rule::ldifus_stmt => {
                next(&mut inner);
                let mut p = next(&mut inner);
                let mut index = None;
                if p.as_rule() == Rule::loop_index {
                    index = Some(self.ident(next(&mut p.into_inner())));
                    p = next(&mut inner);
                }
                let e = self.parse_expr(p);
                let states = self.ident_list(next(&mut inner));
                if rule == Rule::compartment_stmt {
                    StmtKind::Compartment {
                        index,
                        volume: e,
                        states,
                    }
                } else {
                    StmtKind::LongitudinalDiffusion {
                        index,
                        rate: e,
                        states,
                    }
                }
            }
            // watch_stmt = { k_watch ~ watch_item ~ ("," ~ watch_item)* }
            Rule::watch_stmt => {
                next(&mut inner);
                StmtKind::Watch(
                    inner
                        .map(|p| {
                            // watch_item = { "(" ~ expr ~ ")" ~ expr }
                            let wspan = self.span(&p);
                            let mut pi = p.into_inner();
                            let cond = self.parse_expr(next(&mut pi));
                            let flag = self.parse_expr(next(&mut pi));
                            Watch {
                                cond,
                                flag,
                                span: wspan,
                            }
                        })
                        .collect(),
                )
            }
            // for_netcons_stmt = { k_for_netcons ~ "(" ~ arg_list? ~ ")" ~ block }
            Rule::for_netcons_stmt => {
                next(&mut inner);
                let (args, _, body) = self.signature(inner);
                StmtKind::ForNetcons {
                    args,
                    body: body.unwrap_or_else(|| self.empty_block(span)),
                }
            }
            // protect_stmt = { k_protect ~ assign_stmt }
            Rule::protect_stmt => {
                next(&mut inner);
                StmtKind::Protect(Box::new(self.parse_stmt(next(&mut inner))))
            }
            Rule::mutex_lock => StmtKind::MutexLock,
            Rule::mutex_unlock => StmtKind::MutexUnlock,
            // verbatim = ${ k_verbatim ~ verbatim_text ~ k_endverbatim }
            Rule::verbatim => {
                next(&mut inner);
                StmtKind::Verbatim(self.verbatim_text(next(&mut inner)))
            }
            // initial_stmt = { k_initial ~ block }
            Rule::initial_stmt => {
                next(&mut inner);
                StmtKind::Initial(self.parse_block(next(&mut inner)))
            }
            // conductance_stmt = { k_conductance ~ ident ~ conductance_ion? }
            Rule::conductance_stmt => {
                next(&mut inner);
                StmtKind::Conductance(self.conductance(inner))
            }
            // lag_stmt = { k_lag ~ ident ~ k_by ~ ident }
            Rule::lag_stmt => {
                next(&mut inner);
                let name = self.ident(next(&mut inner));
                next(&mut inner);
                let by = self.ident(next(&mut inner));
                StmtKind::Lag { name, by }
            }
            Rule::units_on => StmtKind::UnitsOn,
            Rule::units_off => StmtKind::UnitsOff,
            // reaction_stmt = { "~" ~ react_terms ~ (react_bidir | react_flux | react_forward) }
            Rule::reaction_stmt => {
                let lhs = self.parse_react_terms(next(&mut inner));
                let tail = next(&mut inner);
                let tail_rule = tail.as_rule();
                let mut rhs = Vec::new();
                let mut rates = Vec::new();
                for p in tail.into_inner() {
                    match p.as_rule() {
                        Rule::react_terms => rhs = self.parse_react_terms(p),
                        _ => rates.push(self.parse_expr(p)),
                    }
                }
                let op = match tail_rule {
                    Rule::react_bidir => ReactOp::Bidirectional,
                    Rule::react_flux => ReactOp::Flux,
                    _ => ReactOp::Forward,
                };
                StmtKind::Reaction(Reaction {
                    lhs,
                    op,
                    rhs,
                    rates,
                })
            }
            // linear_eq = { "~" ~ expr ~ "=" ~ expr }
            Rule::linear_eq => StmtKind::LinearEq {
                lhs: self.parse_expr(next(&mut inner)),
                rhs: self.parse_expr(next(&mut inner)),
            },
            // diff_eq = { primed ~ ("[" ~ expr ~ "]")? ~ "=" ~ expr }
            Rule::diff_eq => {
                let primed = next(&mut inner);
                let mut pi = primed.into_inner();
                let state = self.ident(next(&mut pi));
                let order = next(&mut pi).as_str().len().min(u8::MAX as usize) as u8;
                let a = self.parse_expr(next(&mut inner));
                let (index, rhs) = match inner.next() {
                    Some(b) => (Some(a), self.parse_expr(b)),
                    None => (None, a),
                };
                StmtKind::DiffEq {
                    state,
                    order,
                    index,
                    rhs,
                }
            }
            // assign_stmt = { assign_target ~ "=" ~ !"=" ~ expr }
            Rule::assign_stmt => {
                let target = next(&mut inner);
                let tspan = self.span(&target);
                let mut ti = target.into_inner();
                let name = self.ident(next(&mut ti));
                let lhs = match ti.next() {
                    Some(ix) => Expr {
                        kind: ExprKind::Indexed(name, Box::new(self.parse_expr(ix))),
                        span: tspan,
                    },
                    None => Expr {
                        span: name.span,
                        kind: ExprKind::Name(name),
                    },
                };
                let rhs = self.parse_expr(next(&mut inner));
                StmtKind::Assign { lhs, rhs }
            }
            // call_stmt = { call }
            Rule::call_stmt => StmtKind::Expr(self.parse_call(next(&mut inner))),
            other => unreachable!("not a statement: {other:?}"),
        };
        Stmt { kind, span }
    }

    // react_terms = { react_term ~ ("+" ~ react_term)* }
    // react_term = { integer? ~ ident ~ ("[" ~ expr ~ "]")? }
    fn parse_react_terms(&mut self, pair: Pair<Rule>) -> Vec<ReactTerm> {
        assert_eq!(pair.as_rule(), Rule::react_terms);
        let mut out = Vec::new();
        for t in pair.into_inner() {
            let span = self.span(&t);
            let mut ti = t.into_inner().peekable();
            let mut coef = 1;
            if let Some(c) = ti.next_if(|p| p.as_rule() == Rule::integer) {
                match c.as_str().parse::<u32>() {
                    Ok(v) => coef = v,
                    Err(_) => self.diags.push(Diagnostic::error(
                        "syntax",
                        self.span(&c),
                        format!("stoichiometric coefficient `{}` is too large", c.as_str()),
                    )),
                }
            }
            let name = self.ident(ti.next().expect("grammar guarantees a species name"));
            let index = ti.next().map(|e| self.parse_expr(e));
            out.push(ReactTerm {
                coef,
                name,
                index,
                span,
            });
        }
        out
    }

    // call = { ident ~ "(" ~ (call_arg ~ ("," ~ call_arg)*)? ~ ")" }
    fn parse_call(&mut self, pair: Pair<Rule>) -> Expr {
        assert_eq!(pair.as_rule(), Rule::call);
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let name = self.ident(next(&mut inner));
        self.call_with_args(name, inner, span)
    }

    /// A call of `name` with the argument pairs `args` (the children of
    /// `call` after the name, or of `call_args`).
    fn call_with_args(&mut self, name: Ident, args: Pairs<Rule>, span: Span) -> Expr {
        let args = args
            .map(|a| match a.as_rule() {
                Rule::string => Expr {
                    span: self.span(&a),
                    kind: ExprKind::String(
                        a.into_inner()
                            .next()
                            .map(|s| s.as_str().to_string())
                            .unwrap_or_default(),
                    ),
                },
                _ => self.parse_expr(a),
            })
            .collect();
        Expr {
            kind: ExprKind::Call(name, args),
            span,
        }
    }

    /// expr = { prefix_op* ~ primary ~ (infix_op ~ prefix_op* ~ primary)* }
    fn parse_expr(&mut self, pair: Pair<Rule>) -> Expr {
        assert_eq!(pair.as_rule(), Rule::expr);
        let span = self.span(&pair);
        // Each prefix operator and each `^` adds a level of recursion in the
        // Pratt parser; refuse absurd chains before folding.
        let mut run = 0usize;
        let mut longest = 0usize;
        let mut pows = 0usize;
        for p in pair.clone().into_inner() {
            match p.as_rule() {
                Rule::neg | Rule::not => {
                    run += 1;
                    longest = longest.max(run);
                }
                Rule::pow => {
                    pows += 1;
                    run = 0;
                }
                _ => run = 0,
            }
        }
        if longest + pows > MAX_OPERATOR_CHAIN {
            self.diags.push(Diagnostic::error(
                "expr-too-deep",
                span,
                format!(
                    "expression has more than {MAX_OPERATOR_CHAIN} chained unary operators or `^`"
                ),
            ));
            return Expr {
                kind: ExprKind::Number(0.0),
                span,
            };
        }
        let too_deep = Cell::new(false);
        let file = self.file;
        let limit = |e: Expr, depth: u32| -> (Expr, u32) {
            if depth > MAX_EXPR_DEPTH {
                too_deep.set(true);
                (
                    Expr {
                        kind: ExprKind::Number(0.0),
                        span: e.span,
                    },
                    1,
                )
            } else {
                (e, depth)
            }
        };
        let (expr, _) = pratt()
            .map_primary(|p| self.parse_primary(p))
            .map_prefix(|op, (rhs, d): (Expr, u32)| {
                let s = op.as_span();
                let span = Span::new(file, s.start(), rhs.span.end as usize);
                let uop = match op.as_rule() {
                    Rule::neg => UnaryOp::Neg,
                    _ => UnaryOp::Not,
                };
                limit(
                    Expr {
                        kind: ExprKind::Unary(uop, Box::new(rhs)),
                        span,
                    },
                    d + 1,
                )
            })
            .map_infix(|(lhs, dl): (Expr, u32), op, (rhs, dr): (Expr, u32)| {
                let span = lhs.span.to(rhs.span);
                let bop = match op.as_rule() {
                    Rule::or => BinaryOp::Or,
                    Rule::and => BinaryOp::And,
                    Rule::lt => BinaryOp::Lt,
                    Rule::le => BinaryOp::Le,
                    Rule::gt => BinaryOp::Gt,
                    Rule::ge => BinaryOp::Ge,
                    Rule::eq => BinaryOp::Eq,
                    Rule::ne => BinaryOp::Ne,
                    Rule::add => BinaryOp::Add,
                    Rule::sub => BinaryOp::Sub,
                    Rule::mul => BinaryOp::Mul,
                    Rule::div => BinaryOp::Div,
                    Rule::rem => BinaryOp::Rem,
                    _ => BinaryOp::Pow,
                };
                limit(
                    Expr {
                        kind: ExprKind::Binary(bop, Box::new(lhs), Box::new(rhs)),
                        span,
                    },
                    dl.max(dr) + 1,
                )
            })
            .parse(pair.into_inner());
        if too_deep.get() {
            self.diags.push(Diagnostic::error(
                "expr-too-deep",
                span,
                format!("expression is nested more than {MAX_EXPR_DEPTH} operators deep"),
            ));
        }
        expr
    }

    /// One operand, with its depth (1 for leaves).
    fn parse_primary(&mut self, pair: Pair<Rule>) -> (Expr, u32) {
        // A plain name's span is its identifier's; the others are computed
        // only when needed, as trailing blanks make `span` walk the children.
        if pair.as_rule() == Rule::name_expr {
            let mut inner = pair.clone().into_inner();
            let name = self.ident(next(&mut inner));
            let Some(tail) = inner.next() else {
                let e = Expr {
                    span: name.span,
                    kind: ExprKind::Name(name),
                };
                return (e, 1);
            };
            let span = Span::new(self.file, name.span.start as usize, trimmed_end(&tail));
            let e = match tail.as_rule() {
                // call_args = { "(" ~ (call_arg ~ ("," ~ call_arg)*)? ~ ")" }
                Rule::call_args => self.call_with_args(name, tail.into_inner(), span),
                // index = { "[" ~ expr ~ "]" }
                _ => {
                    let ix = self.parse_expr(next(&mut tail.into_inner()));
                    Expr {
                        kind: ExprKind::Indexed(name, Box::new(ix)),
                        span,
                    }
                }
            };
            return (e, 1);
        }
        let span = self.span(&pair);
        match pair.as_rule() {
            // number_lit = { number ~ units? }
            Rule::number_lit => {
                let n = self.number(next(&mut pair.into_inner()));
                (
                    Expr {
                        kind: ExprKind::Number(n.value),
                        span,
                    },
                    1,
                )
            }
            // paren = { "(" ~ expr ~ ")" }
            Rule::paren => {
                let e = self.parse_expr(next(&mut pair.into_inner()));
                (
                    Expr {
                        kind: ExprKind::Paren(Box::new(e)),
                        span,
                    },
                    1,
                )
            }
            other => unreachable!("not an operand: {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(src: &str) -> Module {
        let (m, d) = parse(FileId(0), src);
        assert!(d.is_empty(), "unexpected diagnostics: {d:#?}");
        m.expect("module")
    }

    fn first_error(src: &str) -> String {
        let (m, d) = parse(FileId(0), src);
        assert!(m.is_none());
        d[0].message.clone()
    }

    /// Renders an expression with full parentheses, to check precedence.
    fn show(e: &Expr) -> String {
        match &e.kind {
            ExprKind::Number(v) => format!("{v}"),
            ExprKind::Name(n) => n.name.clone(),
            ExprKind::Indexed(n, i) => format!("{}[{}]", n.name, show(i)),
            ExprKind::Call(n, a) => format!(
                "{}({})",
                n.name,
                a.iter().map(show).collect::<Vec<_>>().join(", ")
            ),
            ExprKind::String(s) => format!("{s:?}"),
            ExprKind::Unary(op, x) => format!("({op:?} {})", show(x)),
            ExprKind::Binary(op, a, b) => format!("({} {op:?} {})", show(a), show(b)),
            ExprKind::Paren(x) => show(x),
        }
    }

    fn expr_of(src: &str) -> String {
        let m = parse_ok(&format!("INITIAL {{ x = {src} }}"));
        let ItemKind::Initial(b) = &m.items[0].kind else {
            panic!()
        };
        let StmtKind::Assign { rhs, .. } = &b.stmts[0].kind else {
            panic!()
        };
        show(rhs)
    }

    #[test]
    fn precedence_follows_nocmodl() {
        let cases = [
            ("-x^2", "(Neg (x Pow 2))"),
            ("a^b^c", "(a Pow (b Pow c))"),
            ("a - b - c", "((a Sub b) Sub c)"),
            ("a + b * c", "(a Add (b Mul c))"),
            ("a < b && c || d", "(((a Lt b) And c) Or d)"),
            ("!a == b", "((Not a) Eq b)"),
            ("2^-3", "(2 Pow (Neg 3))"),
            (
                "1e-3 * .5 + 1. + 1E+3",
                "(((0.001 Mul 0.5) Add 1) Add 1000)",
            ),
            ("exp(-v/10 (mV))", "exp(((Neg v) Div 10))"),
            ("a % b", "(a Rem b)"),
            ("v<-50", "(v Lt (Neg 50))"),
        ];
        for (src, want) in cases {
            assert_eq!(expr_of(src), want, "for {src}");
        }
    }

    #[test]
    fn deep_parentheses_are_an_error_not_a_crash() {
        let src = format!(
            "INITIAL {{ x = {}1{} }}",
            "(".repeat(10_000),
            ")".repeat(10_000)
        );
        assert!(first_error(&src).contains("nested more than"));
        let src = format!("INITIAL {{ x = {}1 }}", "-".repeat(100_000));
        assert!(first_error(&src).contains("chained"));
        let src = format!("INITIAL {{ x = 1{} }}", "+1".repeat(5_000));
        assert!(first_error(&src).contains("nested more than 500"));
    }

    #[test]
    fn messages_name_the_problem() {
        assert_eq!(
            first_error("NEURON {\n RANG x\n}"),
            "unknown keyword `RANG` in NEURON block; did you mean `RANGE`?"
        );
        assert_eq!(
            first_error("NEURON {\n SUFFIX x\n\nPARAMETER { a = 1 }"),
            "expected `}` to close the NEURON block opened at line 1, found end of file"
        );
        assert_eq!(
            first_error("PARAMETR { a = 1 }"),
            "unknown block `PARAMETR` at top level; did you mean `PARAMETER`?"
        );
    }
}
