//! NEURON's built-in mechanisms, written by us as `.mod` files
//! (`mechanisms/mod/`) from the published equations and compiled by our own
//! compiler.
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
//!
//! # Two compiled forms, the same bits
//!
//! - **Ahead of time** (the default). The build script compiles the sources
//!   with our front end and Rust back end, as `nrnivmodl-rs` would, into a
//!   library linked into this crate (with FMA and AVX2 where the build
//!   machine has them). Nothing is compiled at run time.
//! - **JIT.** The same sources compiled by the cranelift JIT the first time
//!   they are needed in a process (a few milliseconds).
//!
//! Both run the same kernel IR with the same IEEE operations, and the test
//! suites check them against each other and against NEURON bit for bit.
//! [`specs`] uses the ahead-of-time form unless the environment variable
//! `NRNRS_BUILTINS=jit` asks for the JIT (`aot` or unset: the default;
//! another value is reported on standard error and ignored), the build
//! could not compile it (a build warning says so; and only Linux targets
//! get it), or it was compiled with FMA and AVX2 and this processor or C
//! library cannot run it; [`backend`] says which and why.

use std::sync::OnceLock;

use runtime::{MechanismSpec, Model};

// The entry of the built-ins' library, the object the build script
// compiled and linked in.
#[cfg(nrnrs_builtins_aot)]
extern "C" {
    fn nrnrs_builtin_mechanism_table() -> *const runtime::abi::NrnMechanismTable;
}

include!("sources.rs");

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

/// Which compiled form of the built-ins [`specs`] gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Compiled at build time by the Rust back end and linked in.
    Aot,
    /// Compiled at run time by the cranelift JIT.
    Jit,
}

/// The form [`specs`] uses, and, for [`Backend::Jit`], why the
/// ahead-of-time form is not used.
pub fn backend() -> (Backend, Option<&'static str>) {
    static CHOICE: OnceLock<(Backend, Option<&'static str>)> = OnceLock::new();
    *CHOICE.get_or_init(|| {
        let asked = std::env::var("NRNRS_BUILTINS").unwrap_or_default();
        match asked.to_ascii_lowercase().as_str() {
            "jit" => return (Backend::Jit, Some("NRNRS_BUILTINS=jit")),
            "" | "aot" => {}
            _ => eprintln!(
                "nrnrs: NRNRS_BUILTINS={asked:?} is neither `jit` nor `aot`; \
                 using the default (ahead of time where it can run)"
            ),
        }
        match aot_specs() {
            Ok(_) => (Backend::Aot, None),
            Err(why) => (Backend::Jit, Some(why)),
        }
    })
}

/// The compiled built-ins, in [`SOURCES`] order, in the form [`backend`]
/// chooses; compiled or read once per process and shared.
pub fn specs() -> Result<&'static [MechanismSpec], BuiltinError> {
    specs_from(backend().0)
}

/// The compiled built-ins in the form `backend`, whichever [`backend`]
/// would choose; an error for [`Backend::Aot`] where it cannot run.
pub fn specs_from(backend: Backend) -> Result<&'static [MechanismSpec], BuiltinError> {
    match backend {
        Backend::Aot => aot_specs().map_err(|why| {
            BuiltinError(format!("the ahead-of-time built-ins cannot be used: {why}"))
        }),
        Backend::Jit => jit_specs(),
    }
}

/// The built-ins compiled by the cranelift JIT (compiled once per process;
/// the specs hold the JIT code alive).
pub fn jit_specs() -> Result<&'static [MechanismSpec], BuiltinError> {
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

/// The built-ins compiled ahead of time, or why they cannot be used here.
pub fn aot_specs() -> Result<&'static [MechanismSpec], &'static str> {
    static SPECS: OnceLock<Result<Vec<MechanismSpec>, &'static str>> = OnceLock::new();
    SPECS
        .get_or_init(read_aot)
        .as_ref()
        .map(|v| v.as_slice())
        .map_err(|e| *e)
}

#[cfg(not(nrnrs_builtins_aot))]
fn read_aot() -> Result<Vec<MechanismSpec>, &'static str> {
    Err("the build did not compile them ahead of time: see its warning, or NRNRS_BUILTINS_AOT=0")
}

#[cfg(nrnrs_builtins_aot)]
fn read_aot() -> Result<Vec<MechanismSpec>, &'static str> {
    #[cfg(nrnrs_builtins_fma)]
    codegen::rust::fma_code_runs_here()?;
    // SAFETY: the entry is the one the build script generated with our Rust
    // back end from `SOURCES` and linked into this crate: the same code and
    // contract as a library loaded by `runtime::plugin` (a function without
    // preconditions returning a static table), linked instead of loaded.
    // Its code needs FMA and AVX2 only when built with them, which was
    // checked above.
    let specs = unsafe { runtime::plugin::specs_from_table(nrnrs_builtin_mechanism_table()) }
        .map_err(|_| "their table does not match the runtime (a bug of nrnivmodl-rs)")?;
    // The build script reruns whenever `mod/` or `sources.rs` change, so the
    // table holds `SOURCES` in order; a check that costs nothing.
    if specs.len() == SOURCES.len() {
        Ok(specs)
    } else {
        Err("their table does not hold the built-in sources (a bug of nrnivmodl-rs)")
    }
}

/// Registers every built-in with `model`, in the form [`backend`] chooses.
pub fn register_builtins(model: &mut Model) -> Result<(), BuiltinError> {
    register_builtins_from(model, backend().0)
}

/// Registers every built-in with `model`, in the form `backend`.
pub fn register_builtins_from(model: &mut Model, backend: Backend) -> Result<(), BuiltinError> {
    for s in specs_from(backend)? {
        model
            .register(s.clone())
            .map_err(|e| BuiltinError(e.to_string()))?;
    }
    Ok(())
}

/// A new model with every built-in mechanism registered, in the form
/// [`backend`] chooses.
///
/// ```
/// let mut m = mechanisms::new_model().unwrap();
/// let soma = m.create_section("soma").unwrap();
/// m.insert(soma, "hh").unwrap();
/// m.finitialize(-65.0).unwrap();
/// m.fadvance().unwrap();
/// ```
pub fn new_model() -> Result<Model, BuiltinError> {
    new_model_from(backend().0)
}

/// A new model with every built-in mechanism registered, in the form
/// `backend`.
pub fn new_model_from(backend: Backend) -> Result<Model, BuiltinError> {
    let mut m = Model::new();
    register_builtins_from(&mut m, backend)?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The build compiles the built-ins ahead of time, and this machine
    /// runs them: the default everywhere the tests run (x86-64 with FMA
    /// and AVX2 and glibc, or any machine without them, where the build
    /// compiles them without). Unless the environment asks for the JIT.
    #[test]
    fn the_ahead_of_time_builtins_are_the_default() {
        if std::env::var("NRNRS_BUILTINS").is_ok_and(|v| v.eq_ignore_ascii_case("jit")) {
            assert_eq!(backend(), (Backend::Jit, Some("NRNRS_BUILTINS=jit")));
            return;
        }
        assert_eq!(backend(), (Backend::Aot, None));
        let names = |s: &[MechanismSpec]| s.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
        let (aot, jit) = (aot_specs().unwrap(), jit_specs().unwrap());
        assert_eq!(names(aot), names(jit));
        for (a, j) in aot.iter().zip(jit) {
            assert!(
                a.keepalive.is_none(),
                "{}: linked code needs no keepalive",
                a.name
            );
            assert_eq!(
                (a.kind, a.flags, a.n_weights),
                (j.kind, j.flags, j.n_weights),
                "{}",
                a.name
            );
            assert_eq!(a.fields, j.fields, "{}", a.name);
            assert_eq!(a.globals, j.globals, "{}", a.name);
        }
    }

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
