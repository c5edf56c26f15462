//! NEURON's built-in mechanisms, written by us as `.mod` files
//! (`mechanisms/mod/`) from the published equations and compiled by our own
//! compiler (front end → lowering → cranelift JIT) the first time they are
//! needed in a process.
//!
//! [`new_model`] gives a [`Model`] with every built-in registered, in
//! NEURON's order, which is what a NEURON user expects from an empty
//! simulator: `insert("hh")`, `point_process("IClamp", …)` just work.
//!
//! | file | mechanism | kind |
//! |---|---|---|
//! | `hh.mod` | `hh` | density |
//! | `pas.mod` | `pas` | density |
//! | `stim.mod` | `IClamp` | point process |
//! | `expsyn.mod` | `ExpSyn` | point process |
//! | `exp2syn.mod` | `Exp2Syn` | point process |
//! | `alphasyn.mod` | `AlphaSynapse` | point process |
//! | `svclmp.mod` | `SEClamp` | point process |
//! | `netstim.mod` | `NetStim` | artificial cell |
//! | `intfire1.mod` | `IntFire1` | artificial cell |
//! | `intfire2.mod` | `IntFire2` | artificial cell |

use std::sync::OnceLock;

use runtime::{MechanismSpec, Model};

/// The bundled sources: (file name, text), in registration order (NEURON
/// registers pas and hh before the point processes).
pub const SOURCES: &[(&str, &str)] = &[
    ("pas.mod", include_str!("../mod/pas.mod")),
    ("hh.mod", include_str!("../mod/hh.mod")),
    ("stim.mod", include_str!("../mod/stim.mod")),
    ("alphasyn.mod", include_str!("../mod/alphasyn.mod")),
    ("expsyn.mod", include_str!("../mod/expsyn.mod")),
    ("exp2syn.mod", include_str!("../mod/exp2syn.mod")),
    ("svclmp.mod", include_str!("../mod/svclmp.mod")),
    ("netstim.mod", include_str!("../mod/netstim.mod")),
    ("intfire1.mod", include_str!("../mod/intfire1.mod")),
    ("intfire2.mod", include_str!("../mod/intfire2.mod")),
];

/// Why the built-ins could not be compiled (always a bug of ours: the
/// sources are fixed and tested).
#[derive(Debug, Clone)]
pub struct BuiltinError(pub String);

impl std::fmt::Display for BuiltinError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "built-in mechanisms failed to compile (a bug of nrnivmodl-rs): {}",
            self.0
        )
    }
}

impl std::error::Error for BuiltinError {}

/// The compiled built-ins, compiled once per process and shared (the specs
/// hold the JIT code alive).
pub fn specs() -> Result<&'static [MechanismSpec], BuiltinError> {
    static SPECS: OnceLock<Result<Vec<MechanismSpec>, BuiltinError>> = OnceLock::new();
    SPECS
        .get_or_init(|| {
            SOURCES
                .iter()
                .map(|(name, text)| {
                    codegen::load::compile_source(name, text)
                        .map(|c| c.spec)
                        .map_err(|e| BuiltinError(e.rendered))
                })
                .collect()
        })
        .as_ref()
        .map(|v| v.as_slice())
        .map_err(Clone::clone)
}

/// Registers every built-in with `model`.
pub fn register_builtins(model: &mut Model) -> Result<(), BuiltinError> {
    for s in specs()? {
        model
            .register(s.clone())
            .map_err(|e| BuiltinError(e.to_string()))?;
    }
    Ok(())
}

/// A new model with every built-in mechanism registered.
pub fn new_model() -> Result<Model, BuiltinError> {
    let mut m = Model::new();
    register_builtins(&mut m)?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    #[test]
    fn all_builtins_register() {
        let m = super::new_model().unwrap();
        let names = m.mechanism_names();
        for n in [
            "hh",
            "pas",
            "IClamp",
            "ExpSyn",
            "Exp2Syn",
            "AlphaSynapse",
            "SEClamp",
            "NetStim",
            "IntFire1",
            "IntFire2",
        ] {
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
    }
}
