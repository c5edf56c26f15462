//! The diagnostic type shared by every front-end stage.
//!
//! Stages return `(Option<T>, Vec<Diagnostic>)` and never print; only
//! [`crate::render`] turns diagnostics into text.

use crate::source::Span;

/// How bad a diagnostic is. An `Error` means NEURON's nocmodl would reject the
/// file (or we cannot translate it); a `Warning` means it would accept it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Severity {
    /// The file cannot be translated.
    Error,
    /// The file is accepted, but something is probably wrong.
    Warning,
}

/// One message about the input, located by a primary span.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// A short stable code such as `"E-parse"` or `"unknown-name"`, used in tests
    /// and by tools that filter diagnostics.
    pub code: &'static str,
    /// The one-line message (no trailing period, no location).
    pub message: String,
    /// Where the problem is.
    pub span: Span,
    /// Secondary locations with a short explanation each.
    pub labels: Vec<(Span, String)>,
    /// Extra lines of explanation or advice shown after the snippet.
    pub notes: Vec<String>,
}

impl Diagnostic {
    /// An error at `span`.
    pub fn error(code: &'static str, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            span,
            labels: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// A warning at `span`.
    pub fn warning(code: &'static str, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, span, message)
        }
    }

    /// Adds a secondary location with an explanation.
    pub fn with_label(mut self, span: Span, label: impl Into<String>) -> Diagnostic {
        self.labels.push((span, label.into()));
        self
    }

    /// Adds a note shown after the snippet.
    pub fn with_note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// True when any diagnostic in the list is an error.
pub fn has_errors(diags: &[Diagnostic]) -> bool {
    diags.iter().any(Diagnostic::is_error)
}
