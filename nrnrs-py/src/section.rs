//! `h.Section`, its segments (`sec(x)`) and a segment's view of one density
//! mechanism (`seg.hh`), with NEURON's attribute rules: range variables by
//! suffixed name on sections and segments, by bare name on a mechanism view,
//! `_ref_<name>` for recording references.

use std::sync::Arc;

use pyo3::exceptions::{PyAttributeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use runtime::{MechKind, SectionId};

use crate::point::DensityMech;
use crate::sim::{self, OrPy, SecOwner};
use crate::vector::{Ref, RefKind};

/// A section (`h.Section(name=..., cell=...)`). The section is deleted
/// when the last Python object referring to it (sections, segments,
/// recordings) is gone, as in NEURON.
#[pyclass(name = "Section", module = "nrnrs", frozen)]
pub struct Section {
    pub o: Arc<SecOwner>,
}

impl Section {
    pub fn id(&self) -> SectionId {
        self.o.id
    }

    /// A Python object for a section, sharing the owner.
    pub fn wrap(py: Python<'_>, o: Arc<SecOwner>) -> PyResult<Py<Section>> {
        Py::new(py, Section { o })
    }

    fn seg_centres(nseg: usize) -> impl Iterator<Item = f64> {
        (0..nseg).map(move |j| (j as f64 + 0.5) / nseg as f64)
    }

    fn name_of(&self) -> PyResult<String> {
        let id = self.id();
        sim::with(|s| Ok(s.model.name(id).py()?.to_string()))
    }
}

/// Reads a float argument with a NEURON-like message.
pub fn number(v: &Bound<'_, PyAny>, what: &str) -> PyResult<f64> {
    v.extract::<f64>()
        .map_err(|_| PyTypeError::new_err(format!("{what} must be a number")))
}

/// The density mechanism name in `insert(...)`: a string or `h.hh`.
fn mech_name(m: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = m.downcast::<PyString>() {
        return Ok(s.to_string());
    }
    if let Ok(d) = m.downcast::<DensityMech>() {
        return Ok(d.get().name.clone());
    }
    Err(PyTypeError::new_err(
        "insert() takes a mechanism name ('hh') or a mechanism type (h.hh)",
    ))
}

/// Inserts a density mechanism in a section, with NEURON's message for an
/// unknown name. `name` may be a library's `namespace::name`; the section
/// lists the mechanism by its NMODL name, which its range variables use.
pub fn insert_into(id: SectionId, name: &str) -> PyResult<()> {
    sim::with(|s| {
        let (kind, mech) = match s.spec(name) {
            Some(spec) => (Some(spec.kind), spec.name.clone()),
            None => (None, name.to_string()),
        };
        match kind {
            Some(MechKind::Density) => {}
            Some(_) => {
                return Err(PyValueError::new_err(format!(
                    "{name} is a point process, not a density mechanism: use h.{name}(sec(x))"
                )))
            }
            None => {
                return Err(PyValueError::new_err(format!(
                    "argument not a density mechanism name: '{name}' (no mechanism of that name is loaded)"
                )))
            }
        }
        s.model.insert(id, name).py()?;
        let list = s.inserted.entry(id).or_default();
        if !list.contains(&mech) {
            list.push(mech);
        }
        Ok(())
    })
}

#[pymethods]
impl Section {
    #[new]
    #[pyo3(signature = (name = None, cell = None))]
    fn new(py: Python<'_>, name: Option<String>, cell: Option<PyObject>) -> PyResult<Section> {
        let cell = cell.filter(|c| !c.is_none(py));
        let cell_name = match &cell {
            Some(c) => Some(c.bind(py).str()?.to_string()),
            None => None,
        };
        sim::with(|s| {
            let base = match name {
                Some(n) => n,
                None => {
                    s.anon += 1;
                    format!("__nrnsec_0x{:x}", s.anon)
                }
            };
            let full = match cell_name {
                Some(c) => format!("{c}.{base}"),
                None => base,
            };
            let id = s.model.create_section(&full).py()?;
            let o = Arc::new(SecOwner { id, cell });
            s.sec_owners.insert(id, Arc::downgrade(&o));
            Ok(Section { o })
        })
    }

    /// The section name.
    fn name(&self) -> PyResult<String> {
        self.name_of()
    }

    fn hname(&self) -> PyResult<String> {
        self.name_of()
    }

    fn __str__(&self) -> PyResult<String> {
        self.name_of()
    }

    fn __repr__(&self) -> PyResult<String> {
        self.name_of()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .downcast::<Section>()
            .is_ok_and(|o| o.get().id() == self.id())
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.id().hash(&mut h);
        h.finish()
    }

    /// The `cell=` object, or None.
    fn cell(&self, py: Python<'_>) -> PyObject {
        match &self.o.cell {
            Some(c) => c.clone_ref(py),
            None => py.None(),
        }
    }

    fn is_pysec(&self) -> bool {
        true
    }

    /// `sec(x)`: the segment containing x.
    fn __call__(&self, x: f64) -> PyResult<Segment> {
        let id = self.id();
        if !(0.0..=1.0).contains(&x) {
            return Err(sim::err(runtime::Error::BadLocation { x }));
        }
        sim::with(|s| s.model.nseg(id).py())?;
        Ok(Segment {
            sec: self.o.clone(),
            x,
        })
    }

    fn __len__(&self) -> PyResult<usize> {
        let id = self.id();
        sim::with(|s| s.model.nseg(id).py())
    }

    /// Iterates over the segments (their centres).
    fn __iter__(&self) -> PyResult<SegIter> {
        let id = self.id();
        let nseg = sim::with(|s| s.model.nseg(id).py())?;
        Ok(SegIter {
            sec: self.o.clone(),
            xs: Section::seg_centres(nseg).collect(),
            next: 0,
        })
    }

    /// The segments plus the two ends (x = 0 and x = 1).
    fn allseg(&self) -> PyResult<SegIter> {
        let id = self.id();
        let nseg = sim::with(|s| s.model.nseg(id).py())?;
        let mut xs = vec![0.0];
        xs.extend(Section::seg_centres(nseg));
        xs.push(1.0);
        Ok(SegIter {
            sec: self.o.clone(),
            xs,
            next: 0,
        })
    }

    #[getter(L)]
    fn get_l(&self) -> PyResult<f64> {
        let id = self.id();
        sim::with(|s| s.model.length(id).py())
    }

    #[getter]
    fn get_nseg(&self) -> PyResult<usize> {
        let id = self.id();
        sim::with(|s| s.model.nseg(id).py())
    }

    #[getter(Ra)]
    fn get_ra(&self) -> PyResult<f64> {
        let id = self.id();
        sim::with(|s| s.model.ra(id).py())
    }

    /// Every other attribute: a range variable at x = 0.5 (`sec.gnabar_hh`,
    /// `sec.diam`, `sec.v`), or `_ref_<name>` of x = 0.5.
    fn __getattr__(&self, py: Python<'_>, name: &str) -> PyResult<PyObject> {
        let seg = Segment {
            sec: self.o.clone(),
            x: 0.5,
        };
        seg.dynamic_attr(py, name)
    }

    /// `sec.L = ...`, `sec.nseg`, `sec.Ra`, `sec.cm`, `sec.diam`,
    /// `sec.rallbranch`, and range variables on every segment
    /// (`sec.gnabar_hh = 0.1`).
    fn __setattr__(&self, name: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let id = self.id();
        match name {
            "nseg" => {
                let n: f64 = number(value, "nseg")?;
                if n < 1.0 || n.fract() != 0.0 {
                    return Err(PyValueError::new_err(format!(
                        "nseg must be a positive integer (got {n})"
                    )));
                }
                sim::with(|s| s.model.set_nseg(id, n as usize).py())
            }
            "L" => {
                let v = number(value, "L")?;
                sim::with(|s| s.model.set_length(id, v).py())
            }
            "Ra" => {
                let v = number(value, "Ra")?;
                sim::with(|s| s.model.set_ra(id, v).py())
            }
            "rallbranch" => {
                let v = number(value, "rallbranch")?;
                sim::with(|s| s.model.set_rallbranch(id, v).py())
            }
            _ => {
                let v = number(value, name)?;
                sim::with(|s| {
                    let nseg = s.model.nseg(id).py()?;
                    for x in Section::seg_centres(nseg) {
                        s.model
                            .set_range(id, x, name, v)
                            .map_err(|e| range_error(e, name, s.model.name(id).unwrap_or("?")))?;
                    }
                    Ok(())
                })
            }
        }
    }

    /// `sec.insert('hh')` or `sec.insert(h.hh)`; returns the section.
    fn insert(slf: Py<Self>, py: Python<'_>, mech: &Bound<'_, PyAny>) -> PyResult<Py<Self>> {
        let name = mech_name(mech)?;
        insert_into(slf.get().id(), &name)?;
        let _ = py;
        Ok(slf)
    }

    /// `sec.uninsert('hh')`; returns the section.
    fn uninsert(slf: Py<Self>, mech: &Bound<'_, PyAny>) -> PyResult<Py<Self>> {
        let name = mech_name(mech)?;
        let id = slf.get().id();
        sim::with(|s| {
            s.model.uninsert(id, &name).py()?;
            let bare = s.spec(&name).map_or(name.clone(), |m| m.name.clone());
            if let Some(l) = s.inserted.get_mut(&id) {
                l.retain(|m| *m != bare);
            }
            Ok(())
        })?;
        Ok(slf)
    }

    /// Whether a density mechanism is inserted.
    fn has_membrane(&self, mech: &str) -> PyResult<bool> {
        let id = self.id();
        sim::with(|s| {
            s.model.nseg(id).py()?;
            let bare = s.spec(mech).map_or(mech, |m| m.name.as_str());
            Ok(s.inserted
                .get(&id)
                .is_some_and(|l| l.iter().any(|m| m == bare)))
        })
    }

    /// `child.connect(parent(x), childend=0)` or
    /// `child.connect(parent, x=1, childend=0)`; returns the child.
    #[pyo3(signature = (parent, x = None, childend = None))]
    fn connect(
        slf: Py<Self>,
        parent: &Bound<'_, PyAny>,
        x: Option<f64>,
        childend: Option<f64>,
    ) -> PyResult<Py<Self>> {
        let (pid, px, cend) = if let Ok(seg) = parent.downcast::<Segment>() {
            let seg = seg.borrow();
            // With a segment, the second positional argument is childend.
            (seg.sec.id, seg.x, childend.or(x).unwrap_or(0.0))
        } else if let Ok(sec) = parent.downcast::<Section>() {
            (sec.get().id(), x.unwrap_or(1.0), childend.unwrap_or(0.0))
        } else {
            return Err(PyTypeError::new_err(
                "connect() takes a parent segment (parent(x)) or a parent section",
            ));
        };
        if cend != 0.0 && cend != 1.0 {
            return Err(PyValueError::new_err(format!(
                "the child end must be 0 or 1 (got {cend})"
            )));
        }
        let cid = slf.get().id();
        sim::with(|s| s.model.connect(cid, cend, pid, px).py())?;
        Ok(slf)
    }

    /// Disconnects the section from its parent.
    fn disconnect(&self) -> PyResult<()> {
        let id = self.id();
        sim::with(|s| s.model.disconnect(id).py())
    }

    /// The parent segment, or None for a root section.
    fn parentseg(&self, py: Python<'_>) -> PyResult<PyObject> {
        let id = self.id();
        let p = sim::with(|s| {
            Ok(match s.model.parent(id).py()? {
                Some((p, x)) => s.owner_of(p).map(|o| (o, x)),
                None => None,
            })
        })?;
        Ok(match p {
            Some((o, x)) => Py::new(py, Segment { sec: o, x })?.into_any(),
            None => py.None(),
        })
    }

    /// Like `parentseg` (sections here are never attached through a
    /// parent's end other than by `connect`).
    fn trueparentseg(&self, py: Python<'_>) -> PyResult<PyObject> {
        self.parentseg(py)
    }

    /// The child sections, in creation order.
    fn children(&self, py: Python<'_>) -> PyResult<Vec<Py<Section>>> {
        let id = self.id();
        let kids = sim::with(|s| {
            s.model.nseg(id).py()?;
            let mut out = Vec::new();
            for o in s.live_sections() {
                if let Ok(Some((p, _))) = s.model.parent(o.id) {
                    if p == id {
                        out.push(o);
                    }
                }
            }
            Ok(out)
        })?;
        kids.into_iter().map(|o| Section::wrap(py, o)).collect()
    }

    /// This section and every section below it.
    fn subtree(&self, py: Python<'_>) -> PyResult<Vec<Py<Section>>> {
        let id = self.id();
        let secs = sim::with(|s| {
            s.model.nseg(id).py()?;
            let all = s.live_sections();
            let mut out = vec![];
            let mut stack = vec![id];
            while let Some(cur) = stack.pop() {
                if let Some(o) = s.owner_of(cur) {
                    out.push(o);
                }
                for o in &all {
                    if let Ok(Some((p, _))) = s.model.parent(o.id) {
                        if p == cur {
                            stack.push(o.id);
                        }
                    }
                }
            }
            Ok(out)
        })?;
        secs.into_iter().map(|o| Section::wrap(py, o)).collect()
    }

    /// Every section of the tree this section belongs to.
    fn wholetree(&self, py: Python<'_>) -> PyResult<Vec<Py<Section>>> {
        let id = self.id();
        let secs = sim::with(|s| {
            let mut root = id;
            s.model.nseg(id).py()?;
            while let Some((p, _)) = s.model.parent(root).py()? {
                root = p;
            }
            let all = s.live_sections();
            let mut out = vec![];
            for o in all {
                let mut r = o.id;
                while let Ok(Some((p, _))) = s.model.parent(r) {
                    r = p;
                }
                if r == root {
                    out.push(o);
                }
            }
            Ok(out)
        })?;
        secs.into_iter().map(|o| Section::wrap(py, o)).collect()
    }

    fn pt3dadd(&self, x: f64, y: f64, z: f64, d: f64) -> PyResult<()> {
        let id = self.id();
        sim::with(|s| s.model.pt3dadd(id, x, y, z, d).py())
    }

    fn pt3dclear(&self) -> PyResult<()> {
        let id = self.id();
        sim::with(|s| s.model.pt3dclear(id).py())
    }

    fn n3d(&self) -> PyResult<usize> {
        let id = self.id();
        sim::with(|s| Ok(s.model.pt3d(id).py()?.len()))
    }

    fn x3d(&self, i: usize) -> PyResult<f64> {
        self.pt(i).map(|p| p.0)
    }
    fn y3d(&self, i: usize) -> PyResult<f64> {
        self.pt(i).map(|p| p.1)
    }
    fn z3d(&self, i: usize) -> PyResult<f64> {
        self.pt(i).map(|p| p.2)
    }
    fn diam3d(&self, i: usize) -> PyResult<f64> {
        self.pt(i).map(|p| p.3)
    }
    fn arc3d(&self, i: usize) -> PyResult<f64> {
        self.pt(i).map(|p| p.4)
    }

    /// NEURON 9's `sec.psection()`: a dict describing the section.
    fn psection<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let id = self.id();
        let d = PyDict::new(py);
        let (name, nseg, l, ra, mechs, parent, pts) = sim::with(|s| {
            let name = s.model.name(id).py()?.to_string();
            let nseg = s.model.nseg(id).py()?;
            let l = s.model.length(id).py()?;
            let ra = s.model.ra(id).py()?;
            let mut mechs = Vec::new();
            for m in s.inserted.get(&id).cloned().unwrap_or_default() {
                let mut vals = Vec::new();
                for f in crate::hoc::user_fields(s, &m) {
                    let mut col = Vec::new();
                    for x in Section::seg_centres(nseg) {
                        col.push(s.model.get_range(id, x, &format!("{f}_{m}")).py()?);
                    }
                    vals.push((f, col));
                }
                mechs.push((m, vals));
            }
            let parent = match s.model.parent(id).py()? {
                Some((p, x)) => Some((s.model.name(p).py()?.to_string(), x)),
                None => None,
            };
            let pts = s.model.pt3d(id).py()?;
            Ok((name, nseg, l, ra, mechs, parent, pts))
        })?;
        let mut cm = Vec::new();
        let mut diam = Vec::new();
        for x in Section::seg_centres(nseg) {
            cm.push(sim::with(|s| s.model.get_range(id, x, "cm").py())?);
            diam.push(sim::with(|s| s.model.diam(id, x).py())?);
        }
        d.set_item("name", &name)?;
        d.set_item("nseg", nseg)?;
        d.set_item("Ra", ra)?;
        d.set_item("cm", cm)?;
        let dm = PyDict::new(py);
        for (m, vals) in mechs {
            let md = PyDict::new(py);
            for (f, col) in vals {
                md.set_item(f, col)?;
            }
            dm.set_item(m, md)?;
        }
        d.set_item("density_mechs", dm)?;
        let morph = PyDict::new(py);
        morph.set_item("L", l)?;
        morph.set_item("diam", diam)?;
        morph.set_item(
            "pts3d",
            pts.iter().map(|p| (p.0, p.1, p.2, p.3)).collect::<Vec<_>>(),
        )?;
        match parent {
            Some((p, x)) => morph.set_item("parent", format!("{p}({x})"))?,
            None => morph.set_item("parent", py.None())?,
        }
        d.set_item("morphology", morph)?;
        d.set_item("cell", self.cell(py))?;
        Ok(d)
    }
}

impl Section {
    fn pt(&self, i: usize) -> PyResult<(f64, f64, f64, f64, f64)> {
        let id = self.id();
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
}

/// Turns an unknown-field error into an AttributeError naming the place.
pub fn range_error(e: runtime::Error, name: &str, place: &str) -> PyErr {
    match e {
        runtime::Error::UnknownField { .. } => PyAttributeError::new_err(format!(
            "'{name}' is not a range variable of {place} (is the mechanism inserted? density \
             variables are spelled <name>_<suffix>, e.g. gnabar_hh)"
        )),
        e => sim::err(e),
    }
}

/// An iterator over segments.
#[pyclass(module = "nrnrs")]
pub struct SegIter {
    sec: Arc<SecOwner>,
    xs: Vec<f64>,
    next: usize,
}

#[pymethods]
impl SegIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }
    fn __next__(&mut self) -> Option<Segment> {
        let x = *self.xs.get(self.next)?;
        self.next += 1;
        Some(Segment {
            sec: self.sec.clone(),
            x,
        })
    }
    fn __len__(&self) -> usize {
        self.xs.len()
    }
}

/// A location on a section (`sec(x)`).
#[pyclass(name = "Segment", module = "nrnrs", frozen)]
pub struct Segment {
    pub sec: Arc<SecOwner>,
    pub x: f64,
}

impl Segment {
    fn place(&self) -> PyResult<String> {
        let id = self.sec.id;
        let x = self.x;
        sim::with(|s| Ok(format!("{}({x})", s.model.name(id).py()?)))
    }
}

/// Names `Segment` defines itself (methods and getters).
const SEGMENT_OWN: &[&str] = &[
    "x",
    "sec",
    "v",
    "diam",
    "cm",
    "area",
    "ri",
    "volume",
    "point_processes",
];

/// `object.__getattribute__`, looked up once.
fn object_getattribute(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static F: pyo3::sync::GILOnceCell<PyObject> = pyo3::sync::GILOnceCell::new();
    let f = F.get_or_try_init(py, || -> PyResult<PyObject> {
        Ok(py
            .import("builtins")?
            .getattr("object")?
            .getattr("__getattribute__")?
            .unbind())
    })?;
    Ok(f.bind(py))
}

impl Segment {
    /// `seg.gnabar_hh`, `seg.ina`, `seg.hh`, `seg._ref_<name>`.
    pub fn dynamic_attr(&self, py: Python<'_>, name: &str) -> PyResult<PyObject> {
        let (id, x) = (self.sec.id, self.x);
        if let Some(var) = name.strip_prefix("_ref_") {
            let kind = if var == "v" {
                sim::with(|s| s.model.get_range(id, x, "v").py())?;
                RefKind::V(self.sec.clone(), x)
            } else {
                sim::with(|s| {
                    s.model.get_range(id, x, var).map_err(|e| {
                        range_error(e, var, &format!("{}({x})", s.model.name(id).unwrap_or("?")))
                    })
                })?;
                RefKind::Range(self.sec.clone(), x, var.to_string())
            };
            return Ok(Py::new(py, Ref { kind })?.into_any());
        }
        enum Got {
            Val(f64),
            Mech,
        }
        let got = sim::with(|s| {
            if let Some(info) = s.spec(name) {
                if info.kind == MechKind::Density {
                    return if s
                        .inserted
                        .get(&id)
                        .is_some_and(|l| l.iter().any(|m| m == name))
                    {
                        Ok(Got::Mech)
                    } else {
                        Err(PyAttributeError::new_err(format!(
                            "'{name}' mechanism not inserted in section {}",
                            s.model.name(id).py()?
                        )))
                    };
                }
            }
            let v = if name == "diam" {
                s.model.diam(id, x)
            } else {
                s.model.get_range(id, x, name)
            };
            match v {
                Ok(v) => Ok(Got::Val(v)),
                Err(e) => {
                    let place = format!("{}({x})", s.model.name(id).unwrap_or("?"));
                    Err(range_error(e, name, &place))
                }
            }
        })?;
        Ok(match got {
            Got::Val(v) => v.into_pyobject(py)?.into_any().unbind(),
            Got::Mech => Py::new(
                py,
                MechView {
                    sec: self.sec.clone(),
                    x,
                    mech: name.to_string(),
                },
            )?
            .into_any(),
        })
    }
}

#[pymethods]
impl Segment {
    #[getter]
    fn x(&self) -> f64 {
        self.x
    }

    #[getter]
    fn sec(&self, py: Python<'_>) -> PyResult<Py<Section>> {
        Section::wrap(py, self.sec.clone())
    }

    /// The membrane potential [mV] of the node at x.
    #[getter]
    fn v(&self) -> PyResult<f64> {
        let (id, x) = (self.sec.id, self.x);
        sim::with(|s| s.model.get_range(id, x, "v").py())
    }

    /// The diameter [µm] of the segment.
    #[getter]
    fn diam(&self) -> PyResult<f64> {
        let (id, x) = (self.sec.id, self.x);
        sim::with(|s| s.model.diam(id, x).py())
    }

    /// The specific capacitance [µF/cm²] of the segment.
    #[getter]
    fn cm(&self) -> PyResult<f64> {
        let (id, x) = (self.sec.id, self.x);
        sim::with(|s| s.model.get_range(id, x, "cm").py())
    }

    fn __repr__(&self) -> PyResult<String> {
        self.place()
    }

    fn __str__(&self) -> PyResult<String> {
        self.place()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .downcast::<Segment>()
            .is_ok_and(|o| o.get().sec.id == self.sec.id && o.get().x == self.x)
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.sec.id.hash(&mut h);
        self.x.to_bits().hash(&mut h);
        h.finish()
    }

    /// The membrane area [µm²] (0 at the section ends).
    fn area(&self) -> PyResult<f64> {
        let (id, x) = (self.sec.id, self.x);
        sim::with(|s| s.model.area(id, x).py())
    }

    /// The axial resistance to the parent node [MΩ].
    fn ri(&self) -> PyResult<f64> {
        let (id, x) = (self.sec.id, self.x);
        sim::with(|s| s.model.ri(id, x).py())
    }

    /// The volume [µm³].
    fn volume(&self) -> PyResult<f64> {
        let (id, x) = (self.sec.id, self.x);
        sim::with(|s| s.model.volume(id, x).py())
    }

    /// The density mechanisms of the segment.
    fn __iter__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let id = self.sec.id;
        let names = sim::with(|s| {
            s.model.nseg(id).py()?;
            Ok(s.inserted.get(&id).cloned().unwrap_or_default())
        })?;
        let views: Vec<MechView> = names
            .into_iter()
            .map(|mech| MechView {
                sec: self.sec.clone(),
                x: self.x,
                mech,
            })
            .collect();
        let list = PyList::new(
            py,
            views
                .into_iter()
                .map(|v| Py::new(py, v))
                .collect::<PyResult<Vec<_>>>()?,
        )?;
        Ok(list.as_any().try_iter()?.into_any().unbind())
    }

    /// Attribute lookup: the segment's own attributes and methods first,
    /// then `seg.gnabar_hh`, `seg.ina`, `seg.hh` (a mechanism view) and
    /// `seg._ref_<name>`. Done here rather than in `__getattr__` so that the
    /// dynamic names, the hot path of model-building loops, cost no failed
    /// lookup.
    fn __getattribute__(slf: &Bound<'_, Self>, name: &Bound<'_, PyString>) -> PyResult<PyObject> {
        let py = slf.py();
        let n = name.to_cow()?;
        let n: &str = &n;
        let seg = slf.get();
        match n {
            "x" => return Ok(seg.x.into_pyobject(py)?.into_any().unbind()),
            "v" => return Ok(seg.v()?.into_pyobject(py)?.into_any().unbind()),
            "diam" => return Ok(seg.diam()?.into_pyobject(py)?.into_any().unbind()),
            "cm" => return Ok(seg.cm()?.into_pyobject(py)?.into_any().unbind()),
            _ => {}
        }
        if n.starts_with("__") || SEGMENT_OWN.contains(&n) {
            return Ok(object_getattribute(py)?.call1((slf, name))?.unbind());
        }
        slf.get().dynamic_attr(py, n)
    }

    /// Only reached when `__getattribute__` failed (pyo3 then replaces the
    /// error with a bare one): recomputes the explanatory error.
    fn __getattr__(&self, py: Python<'_>, name: &str) -> PyResult<PyObject> {
        self.dynamic_attr(py, name)
    }

    fn __setattr__(&self, name: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        if name == "x" || name == "sec" {
            return Err(PyAttributeError::new_err(format!(
                "segment attribute '{name}' is read-only"
            )));
        }
        let v = number(value, name)?;
        let (id, x) = (self.sec.id, self.x);
        sim::with(|s| {
            s.model.set_range(id, x, name, v).map_err(|e| {
                range_error(
                    e,
                    name,
                    &format!("{}({x})", s.model.name(id).unwrap_or("?")),
                )
            })
        })
    }

    /// The point processes located in this segment.
    fn point_processes(&self) -> PyResult<Vec<PyObject>> {
        // Point processes are not indexed by location in the runtime; the
        // bindings do not keep a registry of them either.
        Err(pyo3::exceptions::PyNotImplementedError::new_err(
            "seg.point_processes() is not supported by nrnrs yet",
        ))
    }
}

/// One density mechanism at one segment (`seg.hh`): its variables by bare
/// name (`seg.hh.gnabar`, `seg.hh.m`, `seg.hh._ref_m`).
#[pyclass(name = "Mechanism", module = "nrnrs", frozen)]
pub struct MechView {
    pub sec: Arc<SecOwner>,
    pub x: f64,
    pub mech: String,
}

#[pymethods]
impl MechView {
    fn name(&self) -> String {
        self.mech.clone()
    }

    fn __repr__(&self) -> PyResult<String> {
        let id = self.sec.id;
        let x = self.x;
        let m = self.mech.clone();
        sim::with(|s| Ok(format!("{}({x}).{m}", s.model.name(id).py()?)))
    }

    /// The segment this view belongs to.
    fn segment(&self) -> Segment {
        Segment {
            sec: self.sec.clone(),
            x: self.x,
        }
    }

    fn __getattr__(&self, py: Python<'_>, name: &str) -> PyResult<PyObject> {
        let (id, x) = (self.sec.id, self.x);
        if let Some(var) = name.strip_prefix("_ref_") {
            let full = format!("{var}_{}", self.mech);
            sim::with(|s| {
                s.model
                    .get_range(id, x, &full)
                    .map_err(|e| self.field_error(e, var))
            })?;
            return Ok(Py::new(
                py,
                Ref {
                    kind: RefKind::Range(self.sec.clone(), x, full),
                },
            )?
            .into_any());
        }
        let full = format!("{name}_{}", self.mech);
        let v = sim::with(|s| {
            s.model
                .get_range(id, x, &full)
                .map_err(|e| self.field_error(e, name))
        })?;
        Ok(v.into_pyobject(py)?.into_any().unbind())
    }

    fn __setattr__(&self, name: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = number(value, name)?;
        let (id, x) = (self.sec.id, self.x);
        let full = format!("{name}_{}", self.mech);
        sim::with(|s| {
            s.model
                .set_range(id, x, &full, v)
                .map_err(|e| self.field_error(e, name))
        })
    }
}

impl MechView {
    fn field_error(&self, e: runtime::Error, name: &str) -> PyErr {
        match e {
            runtime::Error::UnknownField { .. } => PyAttributeError::new_err(format!(
                "'{}' mechanism has no range variable '{name}'",
                self.mech
            )),
            e => sim::err(e),
        }
    }
}
