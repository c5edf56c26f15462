//! `h`: NEURON's top-level interpreter object, with the globals, the run
//! control of stdrun.hoc, mechanism types as attributes and the functions
//! models call. HOC code itself is not supported: `h("...")` and loading any
//! HOC file other than stdrun.hoc raise a clear error.

use std::path::{Path, PathBuf};

use pyo3::exceptions::{PyAttributeError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::point::{point_class, DensityMech, NetCon, ParallelContext, PointClass};
use crate::section::{number, Section};
use crate::sim::{self, OrPy};
use crate::vector::{Ref, RefKind, Vector};

/// HOC files that scripts load for the standard run system, which nrnrs
/// provides natively.
const STDRUN_FILES: &[&str] = &["stdrun.hoc", "nrngui.hoc", "stdlib.hoc", "stdgui.hoc"];

/// The `h` object.
#[pyclass(name = "HocObject", module = "nrnrs", frozen)]
pub struct Hoc {}

/// `h.finitialize(v)`.
pub fn finitialize(v: f64) -> PyResult<()> {
    sim::with(|s| s.model.finitialize(v).py())
}

/// stdrun's `continuerun(tstop)`: steps of `nstep_steprun` fadvances while
/// t < tstop − dt/2. Ctrl-C stops the run between steps.
pub fn continuerun(py: Python<'_>, tstop: f64) -> PyResult<()> {
    if !tstop.is_finite() {
        return Err(PyValueError::new_err(format!(
            "tstop must be finite (got {tstop})"
        )));
    }
    let mut n = 0u64;
    loop {
        let more = sim::with(|s| {
            let ts = tstop - s.model.dt() / 2.0;
            if s.model.t() >= ts {
                return Ok(false);
            }
            for _ in 0..s.nstep_steprun.max(1) {
                s.model.fadvance().py()?;
            }
            Ok(true)
        })?;
        if !more {
            return Ok(());
        }
        n += 1;
        if n == 256 {
            n = 0;
            py.check_signals()?;
        }
    }
}

/// stdrun's `setdt()`: makes dt divide 1/steps_per_ms (NEURON prints
/// "Changed dt" when it has to change it).
fn setdt(py: Python<'_>) -> PyResult<()> {
    let changed = sim::with(|s| {
        let big = 1.0 / s.steps_per_ms;
        let dt = s.model.dt();
        let mut n = (big / dt) as usize;
        if n == 0 {
            n = 1;
        }
        s.nstep_steprun = n;
        if (dt * n as f64 * s.steps_per_ms - 1.0).abs() > 1e-6 {
            s.model.set_dt(big / n as f64).py()?;
            return Ok(true);
        }
        Ok(false)
    })?;
    if changed {
        py.import("builtins")?
            .call_method1("print", ("Changed dt",))?;
    }
    Ok(())
}

/// The section of a `sec=` keyword argument.
fn sec_kw(kwargs: Option<&Bound<'_, PyDict>>, what: &str) -> PyResult<runtime::SectionId> {
    let s = kwargs
        .and_then(|k| k.get_item("sec").ok().flatten())
        .ok_or_else(|| {
            PyTypeError::new_err(format!(
                "h.{what}() needs sec=section (nrnrs has no currently accessed section)"
            ))
        })?;
    let s = s
        .downcast::<Section>()
        .map_err(|_| PyTypeError::new_err("sec= must be a Section"))?;
    Ok(s.get().id())
}

/// Splits `usetable_hh` into (`hh`, `usetable`) when `hh` is a mechanism
/// with that GLOBAL.
fn global_name(s: &sim::Sim, name: &str) -> Option<(String, String)> {
    let mut idx = name.len();
    while let Some(i) = name[..idx].rfind('_') {
        let (g, m) = (&name[..i], &name[i + 1..]);
        if !g.is_empty() && s.spec(m).is_some() && s.model.global(m, g).is_ok() {
            return Some((m.to_string(), g.to_string()));
        }
        idx = i;
    }
    None
}

fn print(py: Python<'_>, text: &str) -> PyResult<()> {
    let kw = PyDict::new(py);
    kw.set_item("end", "")?;
    py.import("builtins")?
        .getattr("print")?
        .call((text,), Some(&kw))?;
    Ok(())
}

/// JIT-compiles every .mod file of a folder and registers the mechanisms.
/// A file that fails to compile raises with its rendered diagnostics
/// (file:line:col and the reason); the files that compiled stay loaded.
pub fn load_mod_folder(dir: &Path) -> PyResult<Vec<String>> {
    if !dir.is_dir() {
        return Err(PyValueError::new_err(format!(
            "load_mechanisms: {} is not a folder",
            dir.display()
        )));
    }
    let results = codegen::load::load_folder(dir).map_err(|e| {
        PyRuntimeError::new_err(format!(
            "load_mechanisms: cannot read {}: {e}",
            dir.display()
        ))
    })?;
    let mut errors = Vec::new();
    let mut names = Vec::new();
    sim::with(|s| {
        for (path, r) in results {
            match r {
                Err(e) => errors.push(e.rendered),
                Ok(c) => {
                    let name = c.spec.name.clone();
                    if s.spec(&name).is_some() {
                        if s.loaded_from.get(&name) == Some(&path) {
                            continue;
                        }
                        errors.push(format!(
                            "{}: a mechanism named {name} is already loaded",
                            path.display()
                        ));
                        continue;
                    }
                    s.model.register(c.spec).py()?;
                    s.loaded_from.insert(name.clone(), path);
                    names.push(name);
                }
            }
        }
        Ok(())
    })?;
    if !errors.is_empty() {
        return Err(PyRuntimeError::new_err(format!(
            "load_mechanisms: some .mod files did not compile:\n{}",
            errors.join("\n")
        )));
    }
    Ok(names)
}

#[pymethods]
impl Hoc {
    /// `h.finitialize(v)`: t = 0, every v = v_init, INITIAL blocks, and the
    /// first sample of every recording. Without an argument, `h.v_init`.
    #[pyo3(signature = (v = None))]
    fn finitialize(&self, v: Option<f64>) -> PyResult<f64> {
        let v = match v {
            Some(v) => v,
            None => sim::with(|s| Ok(s.v_init))?,
        };
        finitialize(v)?;
        Ok(1.0)
    }

    /// One fixed step.
    fn fadvance(&self) -> PyResult<f64> {
        sim::with(|s| s.model.fadvance().py())?;
        Ok(1.0)
    }

    /// stdrun's `continuerun(tstop)`.
    fn continuerun(&self, py: Python<'_>, tstop: f64) -> PyResult<f64> {
        continuerun(py, tstop)?;
        Ok(1.0)
    }

    /// `h.nrnrs_phase_times()` (nrnrs only, not in NEURON): the time the
    /// fixed step spent in each of its parts since the simulator was made
    /// or `h.nrnrs_reset_phase_times()` was called, as a dict of seconds
    /// with keys `currents`, `matrix_setup`, `solve`, `states`, `events`,
    /// and `steps` (the number of fadvance steps counted, an int). With
    /// several threads each parallel part counts its slowest thread of each
    /// step. Reads the runtime's counters; changes nothing.
    fn nrnrs_phase_times<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let p = sim::with(|s| Ok(s.model.phase_times()))?;
        let d = PyDict::new(py);
        d.set_item("currents", p.currents.as_secs_f64())?;
        d.set_item("matrix_setup", p.matrix_setup.as_secs_f64())?;
        d.set_item("solve", p.solve.as_secs_f64())?;
        d.set_item("states", p.states.as_secs_f64())?;
        d.set_item("events", p.events.as_secs_f64())?;
        d.set_item("steps", p.steps)?;
        Ok(d)
    }

    /// `h.nrnrs_reset_phase_times()` (nrnrs only): zeroes the counters that
    /// `h.nrnrs_phase_times()` reads.
    fn nrnrs_reset_phase_times(&self) -> PyResult<f64> {
        sim::with(|s| {
            s.model.reset_phase_times();
            Ok(())
        })?;
        Ok(1.0)
    }

    /// stdrun's `run()`: setdt, finitialize(v_init), continuerun(tstop).
    #[pyo3(signature = (tstop = None))]
    fn run(&self, py: Python<'_>, tstop: Option<f64>) -> PyResult<f64> {
        if let Some(t) = tstop {
            sim::with(|s| {
                s.tstop = t;
                Ok(())
            })?;
        }
        self.stdinit(py)?;
        let t = sim::with(|s| Ok(s.tstop))?;
        continuerun(py, t)?;
        Ok(1.0)
    }

    /// stdrun's `stdinit()`: setdt, then finitialize(v_init).
    fn stdinit(&self, py: Python<'_>) -> PyResult<f64> {
        setdt(py)?;
        let v = sim::with(|s| Ok(s.v_init))?;
        finitialize(v)?;
        Ok(1.0)
    }

    /// stdrun's `init()`: finitialize(v_init).
    fn init(&self) -> PyResult<f64> {
        let v = sim::with(|s| Ok(s.v_init))?;
        finitialize(v)?;
        Ok(1.0)
    }

    fn setdt(&self, py: Python<'_>) -> PyResult<f64> {
        setdt(py)?;
        Ok(1.0)
    }

    /// Accepts stdrun.hoc (and nrngui.hoc, stdlib.hoc), whose run control
    /// nrnrs provides; any other HOC file is an error.
    #[pyo3(signature = (*args))]
    fn load_file(&self, args: &Bound<'_, PyTuple>) -> PyResult<f64> {
        let name: String = args
            .iter()
            .find_map(|a| a.extract::<String>().ok())
            .ok_or_else(|| PyTypeError::new_err("load_file() takes a file name"))?;
        let base = Path::new(&name)
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or(&name);
        if STDRUN_FILES.contains(&base) {
            return Ok(1.0);
        }
        Err(PyRuntimeError::new_err(format!(
            "HOC is not supported by nrnrs: cannot load '{name}'. Only stdrun.hoc (the standard \
             run system, built in) is accepted; port the HOC code to Python"
        )))
    }

    /// HOC statements (`h("...")`) are not supported.
    #[pyo3(signature = (*_args))]
    fn __call__(&self, _args: &Bound<'_, PyTuple>) -> PyResult<f64> {
        Err(PyRuntimeError::new_err(
            "HOC is not supported by nrnrs: h(\"...\") cannot run HOC code; write it in Python",
        ))
    }

    /// Loads a mechanism library built by nrnivmodl-rs (its mechanisms
    /// are then `h.<name>`); loading it again does nothing. A missing file
    /// or one that is not an nrnivmodl-rs library raises RuntimeError
    /// (NEURON returns 0 and prints the reason).
    fn nrn_load_dll(&self, path: PathBuf) -> PyResult<f64> {
        sim::with(|s| s.load_library(&path))?;
        Ok(1.0)
    }

    /// Prints the tree of sections (NEURON's format).
    fn topology(&self, py: Python<'_>) -> PyResult<f64> {
        let t = sim::with(|s| s.model.topology().py())?;
        print(py, &t)?;
        Ok(1.0)
    }

    /// Prints a section in the HOC-like form of NEURON's `psection`.
    #[pyo3(signature = (**kwargs))]
    fn psection(&self, py: Python<'_>, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<f64> {
        let id = sec_kw(kwargs, "psection")?;
        let text = sim::with(|s| {
            let m = &mut s.model;
            let name = m.name(id).py()?.to_string();
            let mut t = format!(
                "{name} {{ nseg={}  L={}  Ra={}\n",
                m.nseg(id).py()?,
                m.length(id).py()?,
                m.ra(id).py()?
            );
            match m.parent(id).py()? {
                Some((p, x)) => t += &format!("\t{} connect {name} (0), {x}\n", m.name(p).py()?),
                None => t += "\t/*location 0 attached to cell 0*/\n",
            }
            t += "\t/* First segment only */\n";
            let nseg = m.nseg(id).py()?;
            let x0 = 0.5 / nseg as f64;
            t += &format!("\tinsert morphology {{ diam={}}}\n", m.diam(id, x0).py()?);
            t += &format!(
                "\tinsert capacitance {{ cm={}}}\n",
                m.get_range(id, x0, "cm").py()?
            );
            for mech in s.inserted.get(&id).cloned().unwrap_or_default() {
                let mut vals = Vec::new();
                for f in user_fields(s, &mech) {
                    let full = format!("{f}_{mech}");
                    if let Ok(v) = s.model.get_range(id, x0, &full) {
                        vals.push(format!("{full}={v}"));
                    }
                }
                t += &format!("\tinsert {mech} {{ {}}}\n", vals.join(" "));
            }
            t += "}\n";
            Ok(t)
        })?;
        print(py, &text)?;
        Ok(1.0)
    }

    /// Every section, in creation order.
    fn allsec(&self, py: Python<'_>) -> PyResult<Vec<Py<Section>>> {
        let owners = sim::with(|s| Ok(s.live_sections()))?;
        owners.into_iter().map(|o| Section::wrap(py, o)).collect()
    }

    /// Deletes a section now; Python objects naming it raise afterwards.
    #[pyo3(signature = (**kwargs))]
    fn delete_section(&self, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<f64> {
        let id = sec_kw(kwargs, "delete_section")?;
        sim::with(|s| s.delete_section_now(id))?;
        Ok(1.0)
    }

    #[pyo3(signature = (x, y, z, d, **kwargs))]
    fn pt3dadd(
        &self,
        x: f64,
        y: f64,
        z: f64,
        d: f64,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<f64> {
        let id = sec_kw(kwargs, "pt3dadd")?;
        sim::with(|s| s.model.pt3dadd(id, x, y, z, d).py())?;
        Ok(1.0)
    }

    #[pyo3(signature = (*_args, **kwargs))]
    fn pt3dclear(
        &self,
        _args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<f64> {
        let id = sec_kw(kwargs, "pt3dclear")?;
        sim::with(|s| s.model.pt3dclear(id).py())?;
        Ok(1.0)
    }

    #[pyo3(signature = (**kwargs))]
    fn n3d(&self, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<usize> {
        let id = sec_kw(kwargs, "n3d")?;
        sim::with(|s| Ok(s.model.pt3d(id).py()?.len()))
    }

    #[pyo3(signature = (i, **kwargs))]
    fn x3d(&self, i: usize, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<f64> {
        pt(kwargs, "x3d", i).map(|p| p.0)
    }
    #[pyo3(signature = (i, **kwargs))]
    fn y3d(&self, i: usize, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<f64> {
        pt(kwargs, "y3d", i).map(|p| p.1)
    }
    #[pyo3(signature = (i, **kwargs))]
    fn z3d(&self, i: usize, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<f64> {
        pt(kwargs, "z3d", i).map(|p| p.2)
    }
    #[pyo3(signature = (i, **kwargs))]
    fn diam3d(&self, i: usize, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<f64> {
        pt(kwargs, "diam3d", i).map(|p| p.3)
    }
    #[pyo3(signature = (i, **kwargs))]
    fn arc3d(&self, i: usize, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<f64> {
        pt(kwargs, "arc3d", i).map(|p| p.4)
    }

    /// `h.area(x, sec=sec)` [µm²].
    #[pyo3(signature = (x, **kwargs))]
    fn area(&self, x: f64, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<f64> {
        let id = sec_kw(kwargs, "area")?;
        sim::with(|s| s.model.area(id, x).py())
    }

    /// `h.ri(x, sec=sec)` [MΩ].
    #[pyo3(signature = (x, **kwargs))]
    fn ri(&self, x: f64, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<f64> {
        let id = sec_kw(kwargs, "ri")?;
        sim::with(|s| s.model.ri(id, x).py())
    }

    #[pyo3(signature = (*_args))]
    fn nrnversion(&self, _args: &Bound<'_, PyTuple>) -> String {
        format!(
            "nrnrs {} (NEURON 9.0.2 compatible Python interface)",
            env!("CARGO_PKG_VERSION")
        )
    }

    /// Only the fixed step exists: `cvode_active(0)` is accepted.
    #[pyo3(signature = (on = None))]
    fn cvode_active(&self, on: Option<f64>) -> PyResult<f64> {
        match on {
            Some(v) if v != 0.0 => Err(PyRuntimeError::new_err(
                "CVode (variable step) is not supported by nrnrs; only the fixed step is",
            )),
            _ => Ok(0.0),
        }
    }

    /// Nothing to pop: nrnrs has no section stack.
    #[pyo3(signature = (*_args))]
    fn pop_section(&self, _args: &Bound<'_, PyTuple>) -> f64 {
        0.0
    }

    /// 3-d shapes are not generated; accepted for scripts that call it.
    #[pyo3(signature = (*_args))]
    fn define_shape(&self, _args: &Bound<'_, PyTuple>) -> f64 {
        0.0
    }

    #[getter]
    fn get_t(&self) -> PyResult<f64> {
        sim::with(|s| Ok(s.model.t()))
    }

    #[getter]
    fn get_dt(&self) -> PyResult<f64> {
        sim::with(|s| Ok(s.model.dt()))
    }

    #[getter]
    fn get_celsius(&self) -> PyResult<f64> {
        sim::with(|s| Ok(s.model.celsius()))
    }

    #[getter]
    fn get_secondorder(&self) -> PyResult<f64> {
        sim::with(|s| Ok(f64::from(s.model.secondorder())))
    }

    #[getter]
    fn get_tstop(&self) -> PyResult<f64> {
        sim::with(|s| Ok(s.tstop))
    }

    #[getter]
    fn get_v_init(&self) -> PyResult<f64> {
        sim::with(|s| Ok(s.v_init))
    }

    #[getter]
    fn get_steps_per_ms(&self) -> PyResult<f64> {
        sim::with(|s| Ok(s.steps_per_ms))
    }

    #[getter(_ref_t)]
    fn ref_t(&self) -> Ref {
        Ref { kind: RefKind::T }
    }

    /// Types and mechanisms: `h.Section`, `h.Vector`, `h.NetCon`,
    /// `h.ParallelContext`, `h.hh`, `h.IClamp`, ...; globals like
    /// `h.usetable_hh`.
    fn __getattr__(&self, py: Python<'_>, name: &str) -> PyResult<PyObject> {
        match name {
            "Section" => return Ok(py.get_type::<Section>().into_any().unbind()),
            "Vector" => return Ok(py.get_type::<Vector>().into_any().unbind()),
            "NetCon" => return Ok(py.get_type::<NetCon>().into_any().unbind()),
            "ParallelContext" => return Ok(py.get_type::<ParallelContext>().into_any().unbind()),
            _ => {}
        }
        enum Found {
            Density,
            Point(bool),
            Global(f64),
        }
        let found = sim::with(|s| {
            if let Some(m) = s.spec(name) {
                return Ok(Some(match point_class(m.kind) {
                    None => Found::Density,
                    Some(a) => Found::Point(a),
                }));
            }
            Ok(global_name(s, name)
                .map(|(m, g)| Found::Global(s.model.global(&m, &g).unwrap_or(f64::NAN))))
        })?;
        match found {
            Some(Found::Density) => Ok(Py::new(
                py,
                DensityMech {
                    name: name.to_string(),
                },
            )?
            .into_any()),
            Some(Found::Point(artificial)) => Ok(Py::new(
                py,
                PointClass {
                    name: name.to_string(),
                    artificial,
                },
            )?
            .into_any()),
            Some(Found::Global(v)) => Ok(v.into_pyobject(py)?.into_any().unbind()),
            None => Err(PyAttributeError::new_err(format!(
                "'hoc.HocObject' object has no attribute '{name}' (not a mechanism, global or \
                 function nrnrs knows)"
            ))),
        }
    }

    fn __setattr__(&self, name: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = number(value, name)?;
        sim::with(|s| match name {
            "dt" => s.model.set_dt(v).py(),
            "celsius" => s.model.set_celsius(v).py(),
            "secondorder" => {
                if v.fract() != 0.0 {
                    return Err(PyValueError::new_err("secondorder must be 0, 1 or 2"));
                }
                s.model.set_secondorder(v as i32).py()
            }
            "tstop" => {
                s.tstop = v;
                Ok(())
            }
            "v_init" => {
                s.v_init = v;
                Ok(())
            }
            "steps_per_ms" => {
                if v.is_nan() || v <= 0.0 {
                    return Err(PyValueError::new_err("steps_per_ms must be positive"));
                }
                s.steps_per_ms = v;
                Ok(())
            }
            "t" => s.model.set_t(v).py(),
            _ => match global_name(s, name) {
                Some((m, g)) => s.model.set_global(&m, &g, v).py(),
                None => Err(PyAttributeError::new_err(format!(
                    "cannot set h.{name}: not a global nrnrs knows (globals are spelled \
                     <name>_<mechanism>, e.g. usetable_hh)"
                ))),
            },
        })
    }
}

fn pt(
    kwargs: Option<&Bound<'_, PyDict>>,
    what: &str,
    i: usize,
) -> PyResult<(f64, f64, f64, f64, f64)> {
    let id = sec_kw(kwargs, what)?;
    sim::with(|s| {
        let pts = s.model.pt3d(id).py()?;
        pts.get(i).copied().ok_or_else(|| {
            PyValueError::new_err(format!(
                "3-d point index {i} out of range (the section has {} points)",
                pts.len()
            ))
        })
    })
}

/// The scalar RANGE fields of a density mechanism that NEURON shows, in
/// NEURON's order: parameters, then assigned variables, then states (never
/// internal fields).
pub fn user_fields(s: &sim::Sim, mech: &str) -> Vec<String> {
    use runtime::abi::{FIELD_ASSIGNED, FIELD_PARAMETER, FIELD_STATE};
    let Some(spec) = s.spec(mech) else {
        return Vec::new();
    };
    let mut fields: Vec<_> = spec
        .fields
        .iter()
        .filter(|f| {
            f.array_len <= 1
                && [FIELD_PARAMETER, FIELD_ASSIGNED, FIELD_STATE].contains(&f.kind)
                && !f.name.starts_with('#')
        })
        .collect();
    fields.sort_by_key(|f| f.kind);
    fields.into_iter().map(|f| f.name.clone()).collect()
}
