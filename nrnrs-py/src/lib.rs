//! NEURON's Python scripting interface on the nrnivmodl-rs simulator:
//! `from nrnrs import h`.
//!
//! The extension module `nrnrs._nrnrs` holds one simulator per process
//! (`sim`), like NEURON's `h`. Python objects hold generational handles into
//! it (`section`, `point`), recordings read the simulator's buffers
//! (`vector`), and `hoc` is the `h` object with run control and globals.
//! Every misuse becomes a Python exception; nothing here panics on input.

use pyo3::prelude::*;

mod hoc;
mod point;
mod section;
mod sim;
mod vector;

/// JIT-compiles every .mod file of `folder` and registers the mechanisms
/// (the nrnrs counterpart of running nrnivmodl and `nrn_load_dll`).
/// Returns the names of the mechanisms loaded.
#[pyfunction]
fn load_mechanisms(folder: std::path::PathBuf) -> PyResult<Vec<String>> {
    hoc::load_mod_folder(&folder)
}

/// The names of every mechanism the simulator knows, in registration order.
#[pyfunction]
fn mechanism_names() -> PyResult<Vec<String>> {
    sim::with(|s| {
        Ok(s.model
            .mechanism_names()
            .into_iter()
            .filter(|n| !n.starts_with('#'))
            .map(str::to_string)
            .collect())
    })
}

/// The mechanism libraries loaded (the working directory's
/// `<arch>/libnrnmech.so` at import, then `h.nrn_load_dll`), as
/// `(namespace, path, mechanism names)` tuples in load order.
#[pyfunction]
fn libraries() -> PyResult<Vec<(String, std::path::PathBuf, Vec<String>)>> {
    sim::with(|s| {
        Ok(s.model
            .libraries()
            .into_iter()
            .map(|l| (l.namespace, l.path, l.mechanisms))
            .collect())
    })
}

/// How the built-in mechanisms were compiled: `("aot", None)` when ahead
/// of time, as the package was built (the default), or `("jit", why)`
/// when JIT-compiled at import (`why`: `NRNRS_BUILTINS=jit` in the
/// environment, or why the ahead-of-time code cannot run here).
#[pyfunction]
fn builtin_backend() -> (&'static str, Option<&'static str>) {
    match mechanisms::backend() {
        (mechanisms::Backend::Aot, why) => ("aot", why),
        (mechanisms::Backend::Jit, why) => ("jit", why),
    }
}

#[pymodule]
fn _nrnrs(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<hoc::Hoc>()?;
    m.add_class::<section::Section>()?;
    m.add_class::<section::Segment>()?;
    m.add_class::<section::MechView>()?;
    m.add_class::<vector::Vector>()?;
    m.add_class::<vector::Ref>()?;
    m.add_class::<point::PointProcess>()?;
    m.add_class::<point::NetCon>()?;
    m.add_class::<point::ParallelContext>()?;
    m.add("h", Py::new(m.py(), hoc::Hoc {})?)?;
    m.add_function(wrap_pyfunction!(load_mechanisms, m)?)?;
    m.add_function(wrap_pyfunction!(mechanism_names, m)?)?;
    m.add_function(wrap_pyfunction!(libraries, m)?)?;
    m.add_function(wrap_pyfunction!(builtin_backend, m)?)?;
    // Make the simulator now, as `import neuron` does: the built-ins and
    // the working directory's <arch>/libnrnmech.so are loaded at import.
    sim::with(|_| Ok(()))?;
    Ok(())
}
