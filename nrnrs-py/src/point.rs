//! Mechanism types as `h` attributes (`h.hh`, `h.IClamp`), point processes
//! and artificial cells, `h.NetCon` and `h.ParallelContext`.

use std::sync::{Arc, Weak};

use pyo3::exceptions::{
    PyAttributeError, PyIndexError, PyReferenceError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use runtime::{MechKind, PointId};

use crate::section::{insert_into, number, Section, Segment};
use crate::sim::{self, NcRec, NcSource, OrPy, PointOwner};
use crate::vector::{Ref, RefKind, Vector};

/// A density mechanism type (`h.hh`): `sec.insert(h.hh)` and
/// `h.hh.insert(sections)`.
#[pyclass(name = "DensityMechanism", module = "nrnrs", frozen)]
pub struct DensityMech {
    pub name: String,
}

#[pymethods]
impl DensityMech {
    /// Inserts the mechanism into a section or every section of an iterable.
    fn insert(&self, secs: &Bound<'_, PyAny>) -> PyResult<()> {
        if let Ok(s) = secs.downcast::<Section>() {
            return insert_into(s.get().id(), &self.name);
        }
        for item in secs.try_iter()? {
            let item = item?;
            let s = item.downcast::<Section>().map_err(|_| {
                PyTypeError::new_err("insert() takes a section or an iterable of sections")
            })?;
            insert_into(s.get().id(), &self.name)?;
        }
        Ok(())
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn __repr__(&self) -> String {
        self.name.clone()
    }
}

/// A point-process or artificial-cell type (`h.IClamp`, `h.NetStim`):
/// calling it makes an instance.
#[pyclass(name = "PointProcessType", module = "nrnrs", frozen)]
pub struct PointClass {
    pub name: String,
    pub artificial: bool,
}

#[pymethods]
impl PointClass {
    /// `h.IClamp(seg)`, `h.IClamp(x, sec=sec)`, `h.NetStim()`.
    #[pyo3(signature = (*args, **kwargs))]
    fn __call__(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PointProcess> {
        let name = self.name.clone();
        if self.artificial {
            if !args.is_empty() {
                return Err(PyTypeError::new_err(format!(
                    "{name} is an ARTIFICIAL_CELL and takes no location: use h.{name}()"
                )));
            }
            let id = sim::with(|s| s.model.artificial_cell(&name).py())?;
            return Ok(PointProcess::made(py, id, name));
        }
        let sec_kw = kwargs.and_then(|k| k.get_item("sec").ok().flatten());
        let (sec, x) = match (args.len(), sec_kw) {
            (1, None) => {
                let a = args.get_item(0)?;
                let seg = a.downcast::<Segment>().map_err(|_| {
                    PyTypeError::new_err(format!(
                        "{name}() takes a segment: h.{name}(sec(x)), or h.{name}(x, sec=sec)"
                    ))
                })?;
                let seg = seg.get();
                (seg.sec.id, seg.x)
            }
            (1, Some(sec)) => {
                let x = number(&args.get_item(0)?, "x")?;
                let sec = sec
                    .downcast::<Section>()
                    .map_err(|_| PyTypeError::new_err("sec= must be a Section"))?;
                (sec.get().id(), x)
            }
            (0, _) => {
                return Err(PyTypeError::new_err(format!(
                    "{name} needs a location: h.{name}(sec(x)) (unlocated point processes are \
                     not supported by nrnrs)"
                )))
            }
            _ => {
                return Err(PyTypeError::new_err(format!(
                    "{name}() takes one segment argument"
                )))
            }
        };
        let id = sim::with(|s| s.model.point_process(&name, sec, x).py())?;
        Ok(PointProcess::made(py, id, name))
    }

    fn __repr__(&self) -> String {
        self.name.clone()
    }
}

/// A point process or artificial cell. It is deleted when the last Python
/// reference to it is gone (as in NEURON), and with its section.
#[pyclass(name = "PointProcess", module = "nrnrs", frozen)]
pub struct PointProcess {
    pub o: Arc<PointOwner>,
    pub index: usize,
}

impl PointProcess {
    fn made(_py: Python<'_>, id: PointId, mech: String) -> PointProcess {
        let index = sim::with(|s| {
            let c = s.pp_count.entry(mech.clone()).or_insert(0);
            *c += 1;
            Ok(*c - 1)
        })
        .unwrap_or(0);
        PointProcess {
            o: Arc::new(PointOwner { id, mech }),
            index,
        }
    }

    /// NEURON's Python spelling `delay` for IClamp's `del`.
    fn field<'a>(&self, s: &sim::Sim, name: &'a str) -> &'a str {
        if name == "delay" {
            if let Some(spec) = s.spec(&self.o.mech) {
                let has = |f: &str| spec.fields.iter().any(|x| x.name == f);
                if has("del") && !has("delay") {
                    return "del";
                }
            }
        }
        name
    }

    fn field_error(&self, e: runtime::Error, name: &str) -> PyErr {
        match e {
            runtime::Error::UnknownField { .. } => PyAttributeError::new_err(format!(
                "'{}' object has no attribute '{name}'",
                self.o.mech
            )),
            runtime::Error::StaleHandle { .. } => PyReferenceError::new_err(format!(
                "{}[{}] was deleted (its section was deleted)",
                self.o.mech, self.index
            )),
            e => sim::err(e),
        }
    }
}

#[pymethods]
impl PointProcess {
    fn hname(&self) -> String {
        format!("{}[{}]", self.o.mech, self.index)
    }

    fn __repr__(&self) -> String {
        self.hname()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .downcast::<PointProcess>()
            .is_ok_and(|o| o.get().o.id == self.o.id)
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.o.id.hash(&mut h);
        h.finish()
    }

    /// The location's x (the centre of its segment, or 0 / 1).
    fn get_loc(&self) -> PyResult<f64> {
        let id = self.o.id;
        let loc = sim::with(|s| {
            s.model
                .point_location(id)
                .map_err(|e| self.field_error(e, ""))
        })?;
        loc.map(|(_, x)| x)
            .ok_or_else(|| PyValueError::new_err(format!("{} has no location", self.hname())))
    }

    fn has_loc(&self) -> PyResult<bool> {
        let id = self.o.id;
        let loc = sim::with(|s| {
            s.model
                .point_location(id)
                .map_err(|e| self.field_error(e, ""))
        })?;
        Ok(loc.is_some())
    }

    /// The segment the point process is in, or None for an artificial cell.
    fn get_segment(&self, py: Python<'_>) -> PyResult<PyObject> {
        let id = self.o.id;
        let loc = sim::with(|s| {
            Ok(
                match s
                    .model
                    .point_location(id)
                    .map_err(|e| self.field_error(e, ""))?
                {
                    Some((sec, x)) => s.owner_of(sec).map(|o| (o, x)),
                    None => None,
                },
            )
        })?;
        Ok(match loc {
            Some((o, x)) => Py::new(py, Segment { sec: o, x })?.into_any(),
            None => py.None(),
        })
    }

    fn __getattr__(&self, py: Python<'_>, name: &str) -> PyResult<PyObject> {
        let id = self.o.id;
        if let Some(var) = name.strip_prefix("_ref_") {
            let f = sim::with(|s| {
                let f = self.field(s, var).to_string();
                s.model
                    .get_point(id, &f)
                    .map_err(|e| self.field_error(e, var))?;
                Ok(f)
            })?;
            return Ok(Py::new(
                py,
                Ref {
                    kind: RefKind::Point(self.o.clone(), f),
                },
            )?
            .into_any());
        }
        let v = sim::with(|s| {
            let f = self.field(s, name);
            s.model
                .get_point(id, f)
                .map_err(|e| self.field_error(e, name))
        })?;
        Ok(v.into_pyobject(py)?.into_any().unbind())
    }

    fn __setattr__(&self, name: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = number(value, name)?;
        let id = self.o.id;
        sim::with(|s| {
            let f = self.field(s, name);
            s.model
                .set_point(id, f, v)
                .map_err(|e| self.field_error(e, name))
        })
    }
}

/// `h.NetCon(source, target, threshold, delay, weight, sec=...)`.
#[pyclass(name = "NetCon", module = "nrnrs", frozen)]
pub struct NetCon {
    pub idx: usize,
}

impl Drop for NetCon {
    fn drop(&mut self) {
        sim::schedule(sim::Deletion::NetCon(self.idx));
    }
}

/// Checks that a NetCon and its ends are still alive.
fn check(s: &mut sim::Sim, idx: usize) -> PyResult<()> {
    let rec = &s.netcons[idx];
    if !rec.alive {
        return Err(PyReferenceError::new_err(
            "this NetCon is no longer valid: its source or target was deleted",
        ));
    }
    if let Some((_, t)) = &rec.target {
        if s.model.point_location(*t).is_err() {
            return Err(PyReferenceError::new_err(
                "the NetCon's target point process was deleted",
            ));
        }
    }
    match &rec.source {
        NcSource::Voltage(_, sec, _) if s.model.nseg(*sec).is_err() => Err(
            PyReferenceError::new_err("the NetCon's source section was deleted"),
        ),
        NcSource::Point(_, p) if s.model.point_location(*p).is_err() => Err(
            PyReferenceError::new_err("the NetCon's source point process was deleted"),
        ),
        _ => Ok(()),
    }
}

/// NEURON's default NetCon threshold [mV].
const DEFAULT_THRESHOLD: f64 = 10.0;

#[pymethods]
impl NetCon {
    /// `h.NetCon(source, target, threshold, delay, weight)`. Without a
    /// threshold, a source that already has NetCons keeps its threshold and
    /// a new one gets 10 mV, as in NEURON; with one, every NetCon on the
    /// source gets it.
    #[new]
    #[pyo3(signature = (source, target, threshold = None, delay = None, weight = None, sec = None))]
    fn new(
        source: &Bound<'_, PyAny>,
        target: &Bound<'_, PyAny>,
        threshold: Option<f64>,
        delay: Option<f64>,
        weight: Option<f64>,
        sec: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<NetCon> {
        let _ = sec;
        let src = if source.is_none() {
            NcSource::None
        } else if let Ok(r) = source.downcast::<Ref>() {
            match &r.get().kind {
                RefKind::V(o, x) => NcSource::Voltage(Arc::downgrade(o), o.id, *x),
                _ => {
                    return Err(PyValueError::new_err(
                        "NetCon sources must be a membrane potential (sec(x)._ref_v), a point \
                         process or an artificial cell (other variables are not supported by nrnrs)",
                    ))
                }
            }
        } else if let Ok(p) = source.downcast::<PointProcess>() {
            let o = &p.get().o;
            NcSource::Point(Arc::downgrade(o), o.id)
        } else {
            return Err(PyTypeError::new_err(
                "NetCon source must be sec(x)._ref_v, a point process, an artificial cell or None",
            ));
        };
        let (tgt, mech) = if target.is_none() {
            (None, None)
        } else if let Ok(p) = target.downcast::<PointProcess>() {
            let o = &p.get().o;
            (Some((Arc::downgrade(o), o.id)), Some(o.mech.clone()))
        } else {
            return Err(PyTypeError::new_err(
                "NetCon target must be a point process, an artificial cell or None",
            ));
        };
        sim::with(|s| {
            let n_weights = match &mech {
                None => 1,
                Some(mech) => {
                    let spec = s.spec(mech).ok_or_else(|| {
                        PyValueError::new_err(format!("argument not a mechanism name: {mech}"))
                    })?;
                    match s.n_weights(spec) {
                        0 => {
                            return Err(PyValueError::new_err(format!(
                                "{mech} cannot be a NetCon target: it has no NET_RECEIVE block"
                            )))
                        }
                        n => n,
                    }
                }
            };
            let mut weights = vec![0.0; n_weights];
            if let Some(w) = weight {
                weights[0] = w;
            }
            let inherited = s
                .netcons
                .iter()
                .rev()
                .filter(|nc| nc.alive && nc.source.same(&src))
                .find_map(|nc| s.model.netcon_threshold(nc.rt).ok().flatten());
            let thr = threshold.or(inherited).unwrap_or(DEFAULT_THRESHOLD);
            let source = match &src {
                NcSource::Voltage(_, sec, x) => runtime::NetSource::Voltage(*sec, *x),
                NcSource::Point(_, p) => runtime::NetSource::Point(*p),
                NcSource::None => runtime::NetSource::None,
            };
            let target = tgt.as_ref().map(|(_, p)| *p);
            let rt = s
                .model
                .netcon(source, target, thr, delay.unwrap_or(1.0), &weights)
                .py()?;
            s.netcons.push(NcRec {
                source: src,
                target: tgt,
                rt,
                free_threshold: thr,
                alive: true,
                spikes_cache: Vec::new(),
            });
            Ok(NetCon {
                idx: s.netcons.len() - 1,
            })
        })
    }

    /// The source's threshold [mV] (shared by every NetCon on it).
    #[getter]
    fn get_threshold(&self) -> PyResult<f64> {
        sim::with(|s| {
            check(s, self.idx)?;
            let nc = &s.netcons[self.idx];
            Ok(s.model
                .netcon_threshold(nc.rt)
                .py()?
                .unwrap_or(nc.free_threshold))
        })
    }

    /// Sets the source's threshold, for every NetCon on that source.
    #[setter]
    fn set_threshold(&self, v: f64) -> PyResult<()> {
        sim::with(|s| {
            check(s, self.idx)?;
            let rt = s.netcons[self.idx].rt;
            s.model.set_netcon_threshold(rt, v).py()?;
            s.netcons[self.idx].free_threshold = v;
            Ok(())
        })
    }

    /// The delay [ms].
    #[getter]
    fn get_delay(&self) -> PyResult<f64> {
        sim::with(|s| {
            check(s, self.idx)?;
            s.model.netcon_delay(s.netcons[self.idx].rt).py()
        })
    }

    /// Sets the delay [ms]; events already in flight keep their times.
    #[setter]
    fn set_delay(&self, v: f64) -> PyResult<()> {
        sim::with(|s| {
            check(s, self.idx)?;
            s.model.set_netcon_delay(s.netcons[self.idx].rt, v).py()
        })
    }

    /// The weight vector: `nc.weight[0] = 0.5`.
    #[getter]
    fn weight(&self) -> WeightView {
        WeightView { idx: self.idx }
    }

    /// `nc.record(vec)`: the vector receives the source's spike times.
    #[pyo3(signature = (vec = None))]
    fn record(slf: Py<Self>, py: Python<'_>, vec: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let idx = slf.get().idx;
        sim::with(|s| check(s, idx))?;
        let Some(vec) = vec else {
            return Err(PyTypeError::new_err(
                "nc.record() needs a Vector: nc.record(vec)",
            ));
        };
        let v = vec
            .downcast::<Vector>()
            .map_err(|_| PyTypeError::new_err("nc.record() takes a Vector"))?;
        v.borrow_mut().bind_spikes(slf.clone_ref(py));
        Ok(())
    }

    /// The source point process or artificial cell, or None.
    fn pre(&self, py: Python<'_>) -> PyResult<PyObject> {
        let src = sim::with(|s| Ok(s.netcons[self.idx].source.clone()))?;
        Ok(match src {
            NcSource::Point(w, _) => match Weak::upgrade(&w) {
                Some(o) => Py::new(py, PointProcess { o, index: 0 })?.into_any(),
                None => py.None(),
            },
            _ => py.None(),
        })
    }

    /// The target point process, or None.
    fn syn(&self, py: Python<'_>) -> PyResult<PyObject> {
        let t = sim::with(|s| Ok(s.netcons[self.idx].target.clone()))?;
        Ok(match t.and_then(|(w, _)| w.upgrade()) {
            Some(o) => Py::new(py, PointProcess { o, index: 0 })?.into_any(),
            None => py.None(),
        })
    }

    /// The source segment of a voltage source, or None.
    fn preseg(&self, py: Python<'_>) -> PyResult<PyObject> {
        let src = sim::with(|s| Ok(s.netcons[self.idx].source.clone()))?;
        Ok(match src {
            NcSource::Voltage(w, _, x) => match w.upgrade() {
                Some(o) => Py::new(py, Segment { sec: o, x })?.into_any(),
                None => py.None(),
            },
            _ => py.None(),
        })
    }

    /// Whether source and target are still alive.
    fn valid(&self) -> PyResult<bool> {
        sim::with(|s| Ok(check(s, self.idx).is_ok()))
    }
}

/// `nc.weight`: index access to a NetCon's weight vector.
#[pyclass(name = "NetConWeight", module = "nrnrs", frozen)]
pub struct WeightView {
    idx: usize,
}

impl WeightView {
    /// The weight vector, or why it is gone.
    fn weights(s: &mut sim::Sim, idx: usize) -> PyResult<&[f64]> {
        check(s, idx)?;
        s.model.weights(s.netcons[idx].rt).py()
    }

    fn index_error(i: usize, len: usize) -> PyErr {
        PyIndexError::new_err(format!(
            "weight index {i} out of range (the target's NET_RECEIVE has {len} arguments)"
        ))
    }
}

#[pymethods]
impl WeightView {
    fn __len__(&self) -> PyResult<usize> {
        sim::with(|s| Ok(WeightView::weights(s, self.idx)?.len()))
    }

    fn __getitem__(&self, i: usize) -> PyResult<f64> {
        sim::with(|s| {
            let w = WeightView::weights(s, self.idx)?;
            w.get(i)
                .copied()
                .ok_or_else(|| WeightView::index_error(i, w.len()))
        })
    }

    fn __setitem__(&self, i: usize, v: f64) -> PyResult<()> {
        sim::with(|s| {
            let len = WeightView::weights(s, self.idx)?.len();
            if i >= len {
                return Err(WeightView::index_error(i, len));
            }
            s.model.set_weight(s.netcons[self.idx].rt, i, v).py()
        })
    }
}

/// `h.ParallelContext()`: threads only (one host).
#[pyclass(name = "ParallelContext", module = "nrnrs", frozen)]
pub struct ParallelContext {}

#[pymethods]
impl ParallelContext {
    #[new]
    fn new() -> Self {
        ParallelContext {}
    }

    /// `pc.nthread(n)` sets the number of threads; `pc.nthread()` reads it.
    #[pyo3(signature = (n = None, parallel = None))]
    fn nthread(&self, n: Option<f64>, parallel: Option<f64>) -> PyResult<usize> {
        let _ = parallel;
        sim::with(|s| {
            if let Some(n) = n {
                if n < 1.0 || n.fract() != 0.0 {
                    return Err(PyValueError::new_err(format!(
                        "nthread must be a positive integer (got {n})"
                    )));
                }
                s.model.set_nthread(n as usize).py()?;
            }
            Ok(s.model.nthread())
        })
    }

    fn id(&self) -> usize {
        0
    }

    fn nhost(&self) -> usize {
        1
    }

    fn barrier(&self) -> f64 {
        0.0
    }

    /// Accepted for scripts that call it; fixed step needs no max step.
    #[pyo3(signature = (*_args))]
    fn set_maxstep(&self, _args: &Bound<'_, PyTuple>) -> f64 {
        0.0
    }

    /// `pc.psolve(tstop)`: continue the run until tstop.
    fn psolve(&self, py: Python<'_>, tstop: f64) -> PyResult<()> {
        crate::hoc::continuerun(py, tstop)
    }
}

/// Whether a catalogue kind is a point type and which.
pub fn point_class(kind: MechKind) -> Option<bool> {
    match kind {
        MechKind::PointProcess => Some(false),
        MechKind::ArtificialCell => Some(true),
        _ => None,
    }
}
