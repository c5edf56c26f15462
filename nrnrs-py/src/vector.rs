//! `h.Vector` and the references it records (`seg._ref_v`, `h._ref_t`,
//! `pp._ref_i`, `seg.hh._ref_m`).
//!
//! A vector either owns its numbers or is bound to something the simulator
//! fills: a recording (`vec.record(ref)`) or a NetCon's spike times
//! (`nc.record(vec)`). A bound vector reads the simulator's buffer each time
//! it is read, so it always shows what NEURON's vector would hold after the
//! same calls. A recording does not keep what it records alive: when the
//! section or point process is deleted, the recording stops and keeps its
//! samples; when the Vector dies, the recording stops.

use std::sync::Arc;

use pyo3::exceptions::{PyIndexError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PySlice};
use runtime::{Probe, RecordId, Sampling};

use crate::point::NetCon;
use crate::sim::{self, OrPy, PointOwner, SecOwner};

/// What a reference points at. Holding one (in a `Ref`) keeps its section
/// or point process alive; a recording only keeps the runtime probe.
#[derive(Debug, Clone)]
pub enum RefKind {
    /// `h._ref_t`.
    T,
    /// `seg._ref_v`.
    V(Arc<SecOwner>, f64),
    /// `seg._ref_ina`, `seg.hh._ref_m` (the NEURON name, `m_hh`).
    Range(Arc<SecOwner>, f64, String),
    /// `pp._ref_i`.
    Point(Arc<PointOwner>, String),
}

impl RefKind {
    /// The runtime probe for this reference.
    pub fn probe(&self) -> Probe {
        match self {
            RefKind::T => Probe::T,
            RefKind::V(o, x) => Probe::V(o.id, *x),
            RefKind::Range(o, x, n) => Probe::Range(o.id, *x, n.clone()),
            RefKind::Point(o, n) => Probe::Point(o.id, n.clone()),
        }
    }

    fn read(&self, s: &mut sim::Sim) -> PyResult<f64> {
        match self {
            RefKind::T => Ok(s.model.t()),
            RefKind::V(o, x) => s.model.get_range(o.id, *x, "v").py(),
            RefKind::Range(o, x, n) => s.model.get_range(o.id, *x, n).py(),
            RefKind::Point(o, n) => s.model.get_point(o.id, n).py(),
        }
    }

    fn write(&self, s: &mut sim::Sim, v: f64) -> PyResult<()> {
        match self {
            RefKind::T => Err(PyValueError::new_err(
                "setting t through a reference is not supported",
            )),
            RefKind::V(o, x) => s.model.set_range(o.id, *x, "v", v).py(),
            RefKind::Range(o, x, n) => s.model.set_range(o.id, *x, n, v).py(),
            RefKind::Point(o, n) => s.model.set_point(o.id, n, v).py(),
        }
    }
}

/// A pointer to a simulator variable (NEURON's `_ref_` objects);
/// `ref[0]` reads and writes the variable.
#[pyclass(name = "Ref", module = "nrnrs", frozen)]
pub struct Ref {
    pub kind: RefKind,
}

#[pymethods]
impl Ref {
    fn __getitem__(&self, i: isize) -> PyResult<f64> {
        if i != 0 {
            return Err(PyIndexError::new_err("a reference has only index 0"));
        }
        let k = self.kind.clone();
        sim::with(|s| k.read(s))
    }

    fn __setitem__(&self, i: isize, v: f64) -> PyResult<()> {
        if i != 0 {
            return Err(PyIndexError::new_err("a reference has only index 0"));
        }
        let k = self.kind.clone();
        sim::with(|s| k.write(s, v))
    }

    fn __repr__(&self) -> String {
        match &self.kind {
            RefKind::T => "<pointer to t>".into(),
            RefKind::V(_, x) => format!("<pointer to v at x = {x}>"),
            RefKind::Range(_, x, n) => format!("<pointer to {n} at x = {x}>"),
            RefKind::Point(p, n) => format!("<pointer to {}.{n}>", p.mech),
        }
    }
}

enum Data {
    Owned(Vec<f64>),
    Record(RecordId),
    Spikes(Py<NetCon>),
}

/// NEURON's `Vector`.
#[pyclass(name = "Vector", module = "nrnrs")]
pub struct Vector {
    data: Data,
}

impl Drop for Vector {
    /// A dying Vector stops its recording, as in NEURON.
    fn drop(&mut self) {
        if let Data::Record(id) = self.data {
            sim::schedule(sim::Deletion::Record(id));
        }
    }
}

impl Vector {
    /// Runs `f` on the numbers, wherever they live.
    fn with_slice<R>(&self, f: impl FnOnce(&[f64]) -> R) -> PyResult<R> {
        match &self.data {
            Data::Owned(v) => Ok(f(v)),
            Data::Record(id) => {
                let id = *id;
                sim::with(|s| Ok(f(s.model.recorded(id).py()?)))
            }
            Data::Spikes(nc) => {
                let idx = nc.get().idx;
                sim::with(|s| {
                    let rec = &s.netcons[idx];
                    match s.model.spikes(rec.rt) {
                        Ok(sp) if rec.alive => Ok(f(sp)),
                        _ => Ok(f(&rec.spikes_cache)),
                    }
                })
            }
        }
    }

    pub fn to_vec(&self) -> PyResult<Vec<f64>> {
        self.with_slice(<[f64]>::to_vec)
    }

    fn owned_mut(&mut self) -> PyResult<&mut Vec<f64>> {
        match &mut self.data {
            Data::Owned(v) => Ok(v),
            _ => Err(PyRuntimeError::new_err(
                "this Vector is being filled by the simulator (record); copy it with vec.c() \
                 before changing it",
            )),
        }
    }

    /// Binds the vector to a NetCon's spike times (`nc.record(vec)`),
    /// stopping a recording it had.
    pub fn bind_spikes(&mut self, nc: Py<NetCon>) {
        if let Data::Record(id) = std::mem::replace(&mut self.data, Data::Spikes(nc)) {
            sim::schedule(sim::Deletion::Record(id));
        }
    }

    fn index(len: usize, i: isize) -> PyResult<usize> {
        let j = if i < 0 { i + len as isize } else { i };
        if j < 0 || j as usize >= len {
            return Err(PyIndexError::new_err(format!(
                "Vector index {i} out of range (size {len})"
            )));
        }
        Ok(j as usize)
    }
}

#[pymethods]
impl Vector {
    /// `h.Vector()`, `h.Vector(n)`, `h.Vector(n, value)` or
    /// `h.Vector(iterable)` (a list, a numpy array, another Vector).
    #[new]
    #[pyo3(signature = (arg = None, value = 0.0))]
    fn new(arg: Option<&Bound<'_, PyAny>>, value: f64) -> PyResult<Vector> {
        let data = match arg {
            None => Vec::new(),
            Some(a) => {
                if let Ok(n) = a.extract::<usize>() {
                    vec![value; n]
                } else if let Ok(v) = a.downcast::<Vector>() {
                    v.borrow().to_vec()?
                } else {
                    let mut out = Vec::new();
                    for item in a.try_iter().map_err(|_| {
                        PyTypeError::new_err("Vector() takes a size or an iterable of numbers")
                    })? {
                        out.push(item?.extract::<f64>().map_err(|_| {
                            PyTypeError::new_err("Vector() elements must be numbers")
                        })?);
                    }
                    out
                }
            }
        };
        Ok(Vector {
            data: Data::Owned(data),
        })
    }

    /// Records a variable every step (or every `Dt` ms) from the next
    /// `finitialize`, stopping what the vector recorded before; returns the
    /// vector.
    #[pyo3(signature = (r, dt = None, sec = None))]
    fn record<'py>(
        mut slf: PyRefMut<'py, Self>,
        r: &Bound<'py, PyAny>,
        dt: Option<&Bound<'py, PyAny>>,
        sec: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<PyRefMut<'py, Self>> {
        let _ = sec;
        let kind = r
            .downcast::<Ref>()
            .map_err(|_| {
                PyTypeError::new_err(
                    "record() takes a reference such as seg._ref_v, h._ref_t or pp._ref_i",
                )
            })?
            .get()
            .kind
            .clone();
        let sampling = match dt {
            None => Sampling::EveryStep,
            Some(d) => match d.extract::<f64>() {
                Ok(d) => Sampling::Interval(d),
                Err(_) => {
                    return Err(PyTypeError::new_err(
                        "record(ref, tvec) with a time vector is not supported by nrnrs; \
                         use record(ref) or record(ref, Dt)",
                    ))
                }
            },
        };
        let probe = kind.probe();
        let old = match slf.data {
            Data::Record(id) => Some(id),
            _ => None,
        };
        let id = sim::with(|s| {
            let id = s.model.record(probe, sampling).py()?;
            if let Some(old) = old {
                s.model.unrecord(old).py()?;
            }
            Ok(id)
        })?;
        slf.data = Data::Record(id);
        Ok(slf)
    }

    fn __len__(&self) -> PyResult<usize> {
        self.with_slice(<[f64]>::len)
    }

    fn size(&self) -> PyResult<usize> {
        self.__len__()
    }

    fn __getitem__(&self, py: Python<'_>, i: &Bound<'_, PyAny>) -> PyResult<PyObject> {
        if let Ok(s) = i.downcast::<PySlice>() {
            let v = self.to_vec()?;
            let ind = s.indices(v.len() as isize)?;
            let mut out = Vec::new();
            let mut k = ind.start;
            for _ in 0..ind.slicelength {
                out.push(v[k as usize]);
                k += ind.step;
            }
            return Ok(Py::new(
                py,
                Vector {
                    data: Data::Owned(out),
                },
            )?
            .into_any());
        }
        let i: isize = i
            .extract()
            .map_err(|_| PyTypeError::new_err("Vector indices must be integers or slices"))?;
        let v = self.with_slice(|d| Vector::index(d.len(), i).map(|j| d[j]))??;
        Ok(v.into_pyobject(py)?.into_any().unbind())
    }

    fn __setitem__(&mut self, i: isize, v: f64) -> PyResult<()> {
        let d = self.owned_mut()?;
        let j = Vector::index(d.len(), i)?;
        d[j] = v;
        Ok(())
    }

    /// `vec.x[i]`: NEURON's element access; the vector itself.
    #[getter]
    fn x(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __iter__(&self, py: Python<'_>) -> PyResult<PyObject> {
        let list = pyo3::types::PyList::new(py, self.to_vec()?)?;
        Ok(list.as_any().try_iter()?.into_any().unbind())
    }

    /// The numbers as a Python list.
    fn to_python(&self) -> PyResult<Vec<f64>> {
        self.to_vec()
    }

    /// The numbers as a numpy float64 array (a copy: the simulator's buffer
    /// keeps growing while it records, so it cannot be shared safely).
    fn as_numpy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let bytes = self.with_slice(|d| {
            let mut b = Vec::with_capacity(d.len() * 8);
            for x in d {
                b.extend_from_slice(&x.to_ne_bytes());
            }
            b
        })?;
        let np = py.import("numpy").map_err(|_| {
            pyo3::exceptions::PyImportError::new_err("as_numpy() needs numpy (pip install numpy)")
        })?;
        let buf = PyByteArray::new(py, &bytes);
        np.call_method1("frombuffer", (buf, "float64"))
    }

    #[pyo3(signature = (dtype = None, copy = None))]
    fn __array__<'py>(
        &self,
        py: Python<'py>,
        dtype: Option<&Bound<'py, PyAny>>,
        copy: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let _ = copy;
        let a = self.as_numpy(py)?;
        match dtype {
            Some(d) if !d.is_none() => a.call_method1("astype", (d,)),
            _ => Ok(a),
        }
    }

    /// A copy that owns its numbers.
    #[pyo3(name = "c")]
    fn copy(&self) -> PyResult<Vector> {
        Ok(Vector {
            data: Data::Owned(self.to_vec()?),
        })
    }

    /// Appends numbers; returns the vector.
    #[pyo3(signature = (*vals))]
    fn append<'py>(mut slf: PyRefMut<'py, Self>, vals: Vec<f64>) -> PyResult<PyRefMut<'py, Self>> {
        slf.owned_mut()?.extend(vals);
        Ok(slf)
    }

    fn resize(mut slf: PyRefMut<'_, Self>, n: usize) -> PyResult<PyRefMut<'_, Self>> {
        slf.owned_mut()?.resize(n, 0.0);
        Ok(slf)
    }

    fn fill(mut slf: PyRefMut<'_, Self>, v: f64) -> PyResult<PyRefMut<'_, Self>> {
        slf.owned_mut()?.iter_mut().for_each(|x| *x = v);
        Ok(slf)
    }

    fn max(&self) -> PyResult<f64> {
        self.with_slice(|d| d.iter().copied().fold(f64::NEG_INFINITY, f64::max))
    }

    fn min(&self) -> PyResult<f64> {
        self.with_slice(|d| d.iter().copied().fold(f64::INFINITY, f64::min))
    }

    fn sum(&self) -> PyResult<f64> {
        self.with_slice(|d| d.iter().sum())
    }

    fn mean(&self) -> PyResult<f64> {
        let (s, n) = self.with_slice(|d| (d.iter().sum::<f64>(), d.len()))?;
        if n == 0 {
            return Err(PyValueError::new_err("mean() of an empty Vector"));
        }
        Ok(s / n as f64)
    }

    fn __repr__(&self) -> PyResult<String> {
        Ok(format!("Vector[{}]", self.__len__()?))
    }
}
