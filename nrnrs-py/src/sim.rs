//! The one simulator of the process (NEURON's `h` has one too) and the
//! bookkeeping the Python objects need: which density mechanisms each section
//! has, the NetCons, stdrun's variables, and the deletions that Python
//! objects asked for when they died.
//!
//! Everything goes through [`with`], which locks the simulator. Python
//! objects never hold a borrow of the model: they hold generational handles
//! (`SectionId`, `PointId`, `RecordId`) wrapped in owners whose `Drop`
//! schedules the deletion, as NEURON deletes a Python-created section or
//! point process when its last reference goes away, and stops a recording
//! when its Vector goes away. What mechanisms exist and what they hold comes
//! from the runtime (`Model::mechanism_spec`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use pyo3::exceptions::{
    PyAttributeError, PyImportError, PyReferenceError, PyRuntimeError, PyValueError,
};
use pyo3::prelude::*;
use runtime::{MechanismSpec, Model, NetConId, PointId, RecordId, SectionId};

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
    /// A recording Vector died: the recording stops.
    Record(RecordId),
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

impl NcSource {
    /// Whether two sources are the same detector (NEURON's PreSyn).
    pub fn same(&self, other: &NcSource) -> bool {
        match (self, other) {
            (NcSource::Voltage(_, a, x), NcSource::Voltage(_, b, y)) => a == b && x == y,
            (NcSource::Point(_, a), NcSource::Point(_, b)) => a == b,
            _ => false,
        }
    }
}

/// One NetCon: its ends as Python gave them, and the runtime NetCon.
/// Threshold, delay and weights live in the runtime.
#[derive(Debug)]
pub struct NcRec {
    pub source: NcSource,
    pub target: Option<(Weak<PointOwner>, PointId)>,
    /// The runtime NetCon.
    pub rt: NetConId,
    /// The threshold of a NetCon without a source: NEURON keeps one
    /// (default 10 mV) although nothing detects it, and the runtime has no
    /// detector to hold it.
    pub free_threshold: f64,
    pub alive: bool,
    /// The spike times saved when the source was deleted, so that a
    /// recording vector keeps its data (as NEURON's Vector does).
    pub spikes_cache: Vec<f64>,
}

/// The process-wide simulator state.
pub struct Sim {
    pub model: Model,
    /// Density mechanisms inserted in each section (their NMODL names), in
    /// insertion order.
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
    pub loaded_from: HashMap<String, PathBuf>,
}

static SIM: Mutex<Option<Sim>> = Mutex::new(None);
static PENDING: Mutex<Vec<Deletion>> = Mutex::new(Vec::new());
/// Set when PENDING may hold something (saves a lock per call).
static DEFERRED: AtomicBool = AtomicBool::new(false);

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

/// Runs `f` on the simulator, creating it on first use (see [`Sim::new`])
/// and doing pending deletions first.
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
    }
    f(sim)
}

impl Sim {
    /// A simulator with NEURON's built-in mechanisms and, as NEURON does at
    /// start-up, the `<arch>/libnrnmech.so` of the working directory when
    /// there is one. A library that cannot be loaded is an ImportError
    /// naming it.
    fn new() -> PyResult<Sim> {
        let mut model =
            mechanisms::new_model().map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        if let Ok(cwd) = std::env::current_dir() {
            model.load_default_library(&cwd).map_err(|e| {
                PyImportError::new_err(format!(
                    "cannot load the mechanism library {} of the working directory: {e}",
                    cwd.join(runtime::arch_dir())
                        .join(runtime::library_file_name())
                        .display()
                ))
            })?;
        }
        Ok(Sim {
            model,
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
        })
    }

    /// The spec of a registered mechanism, by any name `insert` accepts.
    pub fn spec(&self, name: &str) -> Option<&MechanismSpec> {
        self.model.mechanism_spec(name).ok()
    }

    /// The NET_RECEIVE argument count of a mechanism (the NetCon weight
    /// vector length); 0 without NET_RECEIVE.
    pub fn n_weights(&self, spec: &MechanismSpec) -> usize {
        if spec.kernels.net_receive.is_none() {
            return 0;
        }
        (spec.n_weights as usize).max(1)
    }

    /// Loads a library built by nrnivmodl-rs (`h.nrn_load_dll`); returns
    /// the names of its mechanisms.
    pub fn load_library(&mut self, path: &Path) -> PyResult<Vec<String>> {
        let names = self.model.load_library(path).map_err(|e| {
            PyRuntimeError::new_err(format!("nrn_load_dll({}): {e}", path.display()))
        })?;
        Ok(names)
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
                if let Ok(sp) = self.model.spikes(nc.rt) {
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
        // Errors mean it is gone already (h.delete_section, a deleted
        // section's point processes).
        match d {
            Deletion::Section(id) => {
                let _ = self.model.delete_section(id);
                self.inserted.remove(&id);
                self.sec_owners.remove(&id);
            }
            Deletion::Point(id) => {
                let _ = self.model.delete_point(id);
            }
            Deletion::NetCon(i) => {
                if let Some(nc) = self.netcons.get_mut(i) {
                    if nc.alive {
                        nc.alive = false;
                        let _ = self.model.delete_netcon(nc.rt);
                    }
                }
            }
            Deletion::Record(id) => {
                let _ = self.model.unrecord(id);
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

    /// A Python `Section` for a live section, sharing its owner.
    pub fn owner_of(&self, id: SectionId) -> Option<Arc<SecOwner>> {
        self.sec_owners.get(&id).and_then(Weak::upgrade)
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
