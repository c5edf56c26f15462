//! The one error type of the runtime: every misuse of the public API and every
//! failing kernel becomes an [`Error`], never a panic.

use std::fmt;

/// What went wrong, with enough context to name the culprit.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// A handle refers to a section, point process or recording that was
    /// deleted (its generation no longer matches).
    StaleHandle {
        /// What kind of object the handle named ("section", "point process", ...).
        what: &'static str,
    },
    /// A location `x` outside [0, 1] (or not a number).
    BadLocation {
        /// The offending value.
        x: f64,
    },
    /// An argument outside its domain (nseg 0, negative L, dt ≤ 0, ...).
    BadValue {
        /// The parameter name.
        name: String,
        /// The offending value.
        value: f64,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// A mechanism name that is not registered (or of the wrong kind).
    UnknownMechanism {
        /// The name asked for.
        name: String,
    },
    /// A range variable or field name that does not exist at that place.
    UnknownField {
        /// The name asked for.
        name: String,
        /// Where it was looked up (a mechanism or section name).
        context: String,
    },
    /// A mechanism registered twice, or a descriptor that is inconsistent.
    BadMechanism {
        /// The mechanism name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A structural request that cannot be honoured (a connection loop, an
    /// ion-using point process at a section end, ...).
    Structure {
        /// The explanation.
        reason: String,
    },
    /// A kernel returned a non-OK status.
    Kernel {
        /// The mechanism name.
        mechanism: String,
        /// The phase (`init`, `cur`, `state`, ...).
        phase: &'static str,
        /// The failing instance, as reported by the kernel.
        instance: u32,
        /// The status code (`abi::STATUS_*`).
        status: i32,
    },
    /// A mechanism library could not be loaded or failed the ABI check.
    Library {
        /// The explanation.
        reason: String,
    },
    /// Writing output failed.
    Io {
        /// The explanation.
        reason: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::StaleHandle { what } => {
                write!(f, "the {what} this handle refers to was deleted")
            }
            Error::BadLocation { x } => write!(f, "location x = {x} is outside 0 <= x <= 1"),
            Error::BadValue {
                name,
                value,
                reason,
            } => write!(f, "{name} = {value}: {reason}"),
            Error::UnknownMechanism { name } => {
                write!(f, "no mechanism named `{name}` is registered")
            }
            Error::UnknownField { name, context } => {
                write!(f, "`{name}` is not a variable of {context}")
            }
            Error::BadMechanism { name, reason } => write!(f, "mechanism `{name}`: {reason}"),
            Error::Structure { reason } => write!(f, "{reason}"),
            Error::Kernel {
                mechanism,
                phase,
                instance,
                status,
            } => {
                let what = match *status {
                    crate::abi::STATUS_NEWTON_FAILED => "Newton iteration did not converge",
                    crate::abi::STATUS_POINTER_UNSET => "a POINTER variable is not set",
                    crate::abi::STATUS_SINGULAR => "singular matrix",
                    crate::abi::STATUS_MECHANISM_ERROR => "the mechanism raised an error",
                    _ => "unknown status",
                };
                write!(f, "mechanism `{mechanism}` failed in `{phase}` at instance {instance}: {what} (status {status})")
            }
            Error::Library { reason } => write!(f, "mechanism library: {reason}"),
            Error::Io { reason } => write!(f, "i/o error: {reason}"),
        }
    }
}

impl std::error::Error for Error {}

/// The runtime's result type.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn check_x(x: f64) -> Result<f64> {
    if (0.0..=1.0).contains(&x) {
        Ok(x)
    } else {
        Err(Error::BadLocation { x })
    }
}
