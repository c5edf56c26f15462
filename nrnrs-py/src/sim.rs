//! The one simulator of the process (NEURON's `h` has one too) and the
//! bookkeeping the Python objects need: which density mechanisms each section
//! has, the mechanism catalogue, the NetCons, stdrun's variables, and the
//! deletions that Python objects asked for when they died.
//!
//! Everything goes through [`with`], which locks the simulator. Python
//! objects never hold a borrow of the model: they hold generational handles
//! (`SectionId`, `PointId`) wrapped in owners whose `Drop` schedules the
//! deletion, as NEURON deletes a Python-created section or point process when
//! its last reference goes away.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use pyo3::exceptions::{PyAttributeError, PyReferenceError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use runtime::{MechKind, MechanismSpec, Model, NetConId, NetSource, PointId, SectionId};

use crate::vector::RefKind;

/// What the bindings know about a registered mechanism.
#[derive(Debug, Clone)]
pub struct MechInfo {
    /// SUFFIX / POINT_PROCESS / ARTIFICIAL_CELL name.
    pub name: String,
    /// Density, point process or artificial cell.
    pub kind: MechKind,
    /// RANGE fields and their array lengths, in column order.
    pub fields: Vec<(String, usize)>,
    /// The number of NET_RECEIVE arguments (the NetCon weight vector length).
    pub n_weights: usize,
    /// Whether it has a NET_RECEIVE block (can be a NetCon target).
    pub net_receive: bool,
}

impl MechInfo {
    fn from_spec(spec: &MechanismSpec, n_weights: Option<usize>) -> MechInfo {
        let net_receive = spec.kernels.net_receive.is_some();
        MechInfo {
            name: spec.name.clone(),
            kind: spec.kind,
            fields: spec
                .fields
                .iter()
                .map(|f| (f.name.clone(), f.array_len.max(1) as usize))
                .collect(),
            n_weights: n_weights.unwrap_or(usize::from(net_receive)),
            net_receive,
        }
    }

    /// Whether `name` is a RANGE field.
    pub fn has_field(&self, name: &str) -> bool {
        self.fields.iter().any(|(f, _)| f == name)
    }
}

/// Owns a section on behalf of Python objects; the last owner to die
/// schedules the section's deletion.
#[derive(Debug)]
pub struct SecOwner {
    /// The generational handle.
    pub id: SectionId,
    /// The `cell=` object given to `h.Section`, if any.
    pub cell: Option<PyObject>,
}

impl Drop for SecOwner {
    fn drop(&mut self) {
        schedule(Deletion::Section(self.id));
    }
}

/// Owns a point process or artificial cell on behalf of Python objects.
#[derive(Debug)]
pub struct PointOwner {
    /// The generational handle.
    pub id: PointId,
    /// The mechanism name (`IClamp`).
    pub mech: String,
}

impl Drop for PointOwner {
    fn drop(&mut self) {
        schedule(Deletion::Point(self.id));
    }
}

/// A deletion requested by a dying Python object.
#[derive(Debug, Clone, Copy)]
pub enum Deletion {
    Section(SectionId),
    Point(PointId),
    NetCon(usize),
}

/// Where a NetCon's events come from, as the bindings keep it.
#[derive(Debug, Clone)]
pub enum NcSource {
    /// A membrane potential (`sec(x)._ref_v`), with the section owner
    /// held weakly (a NetCon does not keep its source section alive).
    Voltage(Weak<SecOwner>, SectionId, f64),
    /// A point process or artificial cell.
    Point(Weak<PointOwner>, PointId),
    /// `None`: a NetCon that only receives `event()` calls.
    None,
}

/// One NetCon: what Python set, and the runtime NetCon made from it.
#[derive(Debug)]
pub struct NcRec {
    pub source: NcSource,
    pub target: Option<(Weak<PointOwner>, PointId)>,
    pub threshold: f64,
    pub delay: f64,
    pub weights: Vec<f64>,
    /// The runtime NetCon, None after deletion.
    pub rt: Option<NetConId>,
    /// Threshold or delay changed since `rt` was made.
    pub dirty: bool,
    pub alive: bool,
    /// The spike times saved when the source was deleted, so that a
    /// recording vector keeps its data (as NEURON's Vector does).
    pub spikes_cache: Vec<f64>,
}

/// The process-wide simulator state.
pub struct Sim {
    pub model: Model,
    pub mechs: HashMap<String, MechInfo>,
    /// Mechanism names in registration order.
    pub mech_order: Vec<String>,
    /// Density mechanisms inserted in each section, in insertion order.
    pub inserted: HashMap<SectionId, Vec<String>>,
    /// Python owners of live sections (for `allsec`, `parentseg`, ...).
    pub sec_owners: HashMap<SectionId, Weak<SecOwner>>,
    pub netcons: Vec<NcRec>,
    /// stdrun.hoc's variables.
    pub tstop: f64,
    pub v_init: f64,
    pub steps_per_ms: f64,
    pub nstep_steprun: usize,
    /// Sections named without `name=`: the counter for `__nrnsec_<n>`.
    pub anon: u64,
    /// Instances made of each point type (for `IClamp[3]` names).
    pub pp_count: HashMap<String, usize>,
    /// The .mod file each JIT-loaded mechanism came from.
    pub loaded_from: HashMap<String, std::path::PathBuf>,
    /// What recordings of dead Vectors refer to. The runtime cannot stop a
    /// recording, and a recording of a deleted object fails the next run,
    /// so these objects are kept; see [`Sim::collect`].
    pub graveyard: Vec<RefKind>,
    /// Sections no Python object refers to any more but that an old
    /// recording still samples: disconnected and hidden from `allsec`,
    /// `topology` and the tree queries.
    pub retired: std::collections::HashSet<SectionId>,
    /// Graveyard entries whose objects are retired for good (no longer
    /// scanned by [`Sim::collect`]).
    pub settled: Vec<RefKind>,
}

static SIM: Mutex<Option<Sim>> = Mutex::new(None);
static PENDING: Mutex<Vec<Deletion>> = Mutex::new(Vec::new());
static BURY: Mutex<Vec<RefKind>> = Mutex::new(Vec::new());
/// Set when PENDING or BURY may hold something (saves two locks per call).
static DEFERRED: AtomicBool = AtomicBool::new(false);

/// Keeps what a dead Vector's recording refers to (see [`Sim::graveyard`]).
pub fn bury(k: RefKind) {
    if matches!(k, RefKind::T) {
        return;
    }
    match SIM.try_lock() {
        Ok(mut g) => match g.as_mut() {
            Some(sim) => sim.graveyard.push(k),
            None => drop(g),
        },
        Err(_) => {
            lock(&BURY).push(k);
            DEFERRED.store(true, Ordering::Release);
        }
    }
}

fn lock<T>(m: &'static Mutex<T>) -> MutexGuard<'static, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Asks for a deletion: done now if the simulator is free, else at the
/// start of the next [`with`] (a Python object can die while the
/// simulator is locked).
pub fn schedule(d: Deletion) {
    match SIM.try_lock() {
        Ok(mut g) => {
            if let Some(sim) = g.as_mut() {
                sim.delete(d);
            }
        }
        Err(_) => {
            lock(&PENDING).push(d);
            DEFERRED.store(true, Ordering::Release);
        }
    }
}

/// Runs `f` on the simulator, creating it (with NEURON's built-in
/// mechanisms) on first use and doing pending deletions first.
pub fn with<R>(f: impl FnOnce(&mut Sim) -> PyResult<R>) -> PyResult<R> {
    let mut g = lock(&SIM);
    if g.is_none() {
        *g = Some(Sim::new()?);
    }
    let sim = g.as_mut().expect("initialised above");
    if DEFERRED.swap(false, Ordering::AcqRel) {
        let pending: Vec<Deletion> = std::mem::take(&mut *lock(&PENDING));
        for d in pending {
            sim.delete(d);
        }
        let buried: Vec<RefKind> = std::mem::take(&mut *lock(&BURY));
        sim.graveyard.extend(buried);
    }
    if !sim.graveyard.is_empty() {
        sim.collect();
    }
    f(sim)
}

impl Sim {
    fn new() -> PyResult<Sim> {
        let model = mechanisms::new_model().map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        let specs = mechanisms::specs().map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        let mut sim = Sim {
            model,
            mechs: HashMap::new(),
            mech_order: Vec::new(),
            inserted: HashMap::new(),
            sec_owners: HashMap::new(),
            netcons: Vec::new(),
            tstop: 5.0,
            v_init: -65.0,
            steps_per_ms: 40.0,
            nstep_steprun: 1,
            anon: 0,
            pp_count: HashMap::new(),
            loaded_from: HashMap::new(),
            graveyard: Vec::new(),
            retired: Default::default(),
            settled: Vec::new(),
        };
        for (spec, (_, text)) in specs.iter().zip(mechanisms::SOURCES) {
            sim.catalogue(spec, net_receive_args(text));
        }
        Ok(sim)
    }

    /// Adds a registered mechanism to the catalogue.
    pub fn catalogue(&mut self, spec: &MechanismSpec, n_weights: Option<usize>) {
        let info = MechInfo::from_spec(spec, n_weights);
        if !self.mechs.contains_key(&info.name) {
            self.mech_order.push(info.name.clone());
        }
        self.mechs.insert(info.name.clone(), info);
    }

    /// The catalogue entry of a mechanism.
    pub fn mech(&self, name: &str) -> Option<&MechInfo> {
        self.mechs.get(name)
    }

    /// Saves the spike times of the NetCons whose source is about to go.
    fn snapshot_spikes(&mut self, d: Deletion) {
        for nc in &mut self.netcons {
            let hit = match (&nc.source, d) {
                (NcSource::Voltage(_, s, _), Deletion::Section(id)) => *s == id,
                (NcSource::Point(_, p), Deletion::Point(id)) => *p == id,
                _ => false,
            };
            if hit {
                if let Some(Ok(sp)) = nc.rt.map(|rt| self.model.spikes(rt)) {
                    nc.spikes_cache = sp.to_vec();
                }
            }
        }
        // Point processes on a deleted section go with it.
        if let Deletion::Section(id) = d {
            let points: Vec<PointId> = self
                .netcons
                .iter()
                .filter_map(|nc| match &nc.source {
                    NcSource::Point(_, p) => Some(*p),
                    _ => None,
                })
                .filter(|p| matches!(self.model.point_location(*p), Ok(Some((s, _))) if s == id))
                .collect();
            for p in points {
                self.snapshot_spikes(Deletion::Point(p));
            }
        }
    }

    fn delete(&mut self, d: Deletion) {
        self.snapshot_spikes(d);
        match d {
            Deletion::Section(id) => {
                // Errors mean it is gone already (h.delete_section).
                let _ = self.model.delete_section(id);
                self.inserted.remove(&id);
                self.sec_owners.remove(&id);
            }
            Deletion::Point(id) => {
                let _ = self.model.delete_point(id);
            }
            Deletion::NetCon(i) => {
                if let Some(nc) = self.netcons.get_mut(i) {
                    nc.alive = false;
                    if let Some(rt) = nc.rt.take() {
                        let _ = self.model.delete_netcon(rt);
                    }
                }
            }
        }
    }

    /// Deletes a section now (`h.delete_section`); Python objects naming
    /// it become stale.
    pub fn delete_section_now(&mut self, id: SectionId) -> PyResult<()> {
        self.snapshot_spikes(Deletion::Section(id));
        self.model.delete_section(id).map_err(err)?;
        self.inserted.remove(&id);
        self.sec_owners.remove(&id);
        Ok(())
    }

    /// Makes the runtime NetCons agree with what Python set: NetCons whose
    /// threshold or delay changed are made again, and so is every NetCon
    /// created after the first changed one, so that the runtime keeps
    /// NEURON's creation order (it orders simultaneous events).
    pub fn sync_netcons(&mut self) -> PyResult<()> {
        let Some(first) = self.netcons.iter().position(|n| n.alive && n.dirty) else {
            return Ok(());
        };
        for i in first..self.netcons.len() {
            if !self.netcons[i].alive {
                continue;
            }
            if let Some(rt) = self.netcons[i].rt.take() {
                let _ = self.model.delete_netcon(rt);
            }
            let nc = &self.netcons[i];
            let source = match &nc.source {
                NcSource::Voltage(_, s, x) => NetSource::Voltage(*s, *x),
                NcSource::Point(_, p) => NetSource::Point(*p),
                NcSource::None => NetSource::None,
            };
            let target = nc.target.as_ref().map(|(_, p)| *p);
            let made =
                self.model
                    .netcon(source, target, nc.threshold, nc.delay, &nc.weights.clone());
            let nc = &mut self.netcons[i];
            nc.dirty = false;
            match made {
                Ok(id) => nc.rt = Some(id),
                // Its source or target was deleted: NEURON drops it too.
                Err(_) => nc.alive = false,
            }
        }
        Ok(())
    }

    /// Retires the sections and deletes the point processes that only the
    /// graveyard still refers to. A retired section is disconnected (its
    /// children become roots, as when NEURON deletes it) and keeps being
    /// simulated alone, which changes no other cell. A point process in a
    /// section that is still in use is deleted, as NEURON would; the old
    /// recording of it then makes the next run fail with an explanation.
    pub fn collect(&mut self) {
        if self.graveyard.is_empty() {
            return;
        }
        let mut held: HashMap<usize, usize> = HashMap::new();
        for k in &self.graveyard {
            let p = match k {
                RefKind::V(o, _) | RefKind::Range(o, _, _) => Arc::as_ptr(o) as usize,
                RefKind::Point(o, _) => Arc::as_ptr(o) as usize,
                RefKind::T => continue,
            };
            *held.entry(p).or_default() += 1;
        }
        let mut to_retire = Vec::new();
        for k in &self.graveyard {
            if let RefKind::V(o, _) | RefKind::Range(o, _, _) = k {
                if Arc::strong_count(o) == held[&(Arc::as_ptr(o) as usize)]
                    && !self.retired.contains(&o.id)
                {
                    to_retire.push(o.id);
                }
            }
        }
        for id in to_retire {
            if self.retired.insert(id) {
                let _ = self.model.disconnect(id);
                for other in self.model.sections() {
                    if matches!(self.model.parent(other), Ok(Some((p, _))) if p == id) {
                        let _ = self.model.disconnect(other);
                    }
                }
            }
        }
        let mut to_delete = Vec::new();
        for k in &self.graveyard {
            if let RefKind::Point(o, _) = k {
                if Arc::strong_count(o) == held[&(Arc::as_ptr(o) as usize)] {
                    if let Ok(Some((sec, _))) = self.model.point_location(o.id) {
                        if self.owner_of(sec).is_some() {
                            to_delete.push(o.id);
                        }
                    }
                }
            }
        }
        for id in to_delete {
            let _ = self.model.delete_point(id);
        }
        // Entries on retired sections need no more scanning.
        let (done, open): (Vec<RefKind>, Vec<RefKind>) = std::mem::take(&mut self.graveyard)
            .into_iter()
            .partition(|k| match k {
                RefKind::V(o, _) | RefKind::Range(o, _, _) => self.retired.contains(&o.id),
                RefKind::Point(o, _) => match self.model.point_location(o.id) {
                    Ok(Some((sec, _))) => self.retired.contains(&sec),
                    _ => true,
                },
                RefKind::T => true,
            });
        self.settled.extend(done);
        self.graveyard = open;
    }

    /// A Python `Section` for a live section, sharing its owner.
    pub fn owner_of(&self, id: SectionId) -> Option<Arc<SecOwner>> {
        if self.retired.contains(&id) {
            return None;
        }
        self.sec_owners.get(&id).and_then(Weak::upgrade)
    }

    /// NEURON's topology text without the retired sections.
    pub fn topology(&self) -> runtime::Result<String> {
        let mut text = self.model.topology()?;
        for id in &self.retired {
            if let (Ok(name), Ok(nseg)) = (self.model.name(*id), self.model.nseg(*id)) {
                let line = format!("|{}|       {name}(0-1)\n", "-".repeat(nseg));
                if let Some(i) = text.find(&line) {
                    text.replace_range(i..i + line.len(), "");
                }
            }
        }
        Ok(text)
    }

    /// The live sections that have Python owners, in creation order.
    pub fn live_sections(&self) -> Vec<Arc<SecOwner>> {
        self.model
            .sections()
            .into_iter()
            .filter_map(|id| self.owner_of(id))
            .collect()
    }
}

/// The number of NET_RECEIVE arguments of an NMODL text, from the front end.
pub fn net_receive_args(text: &str) -> Option<usize> {
    let mut sources = nmodl_frontend::source::SourceMap::new();
    let r = nmodl_frontend::check_source(&mut sources, "mechanism.mod", text);
    r.model
        .and_then(|m| m.net_receive.as_ref().map(|n| n.params.len()))
}

/// Converts a runtime error into the Python exception a NEURON user expects.
pub fn err(e: runtime::Error) -> PyErr {
    use runtime::Error as E;
    match e {
        E::StaleHandle { what } => {
            let what = if what == "section" {
                "can't access a deleted section".to_string()
            } else {
                format!("the {what} was deleted")
            };
            PyReferenceError::new_err(what)
        }
        E::BadLocation { x } => PyValueError::new_err(format!(
            "segment position range is 0 <= x <= 1 (got x = {x})"
        )),
        E::BadValue {
            name,
            value,
            reason,
        } => {
            if name == "nseg" {
                PyValueError::new_err(format!(
                    "nseg must be positive and at most 32767 (got {value})"
                ))
            } else {
                PyValueError::new_err(format!("{name} = {value}: {reason}"))
            }
        }
        E::UnknownMechanism { name } => {
            PyValueError::new_err(format!("argument not a mechanism name: {name}"))
        }
        E::UnknownField { name, context } => {
            PyAttributeError::new_err(format!("'{name}' is not a variable of {context}"))
        }
        other => PyRuntimeError::new_err(other.to_string()),
    }
}

/// `Result` conversion shorthand.
pub trait OrPy<T> {
    fn py(self) -> PyResult<T>;
}

impl<T> OrPy<T> for runtime::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(err)
    }
}
