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
    sim::with(|s| Ok(s.mech_order.clone()))
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
    Ok(())
}
