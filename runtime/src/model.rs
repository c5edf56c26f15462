//! The model: sections, mechanisms, ions, the tree matrix and NEURON's fixed
//! step. [`Model`] is the whole public simulator API.
//!
//! Storage is structure-of-arrays and authoritative: every range variable of a
//! mechanism lives in one column of its [`MechStore`]; sections remember which
//! instance belongs to which of their segments. Structural edits (new
//! sections, `connect`, `nseg`, `insert`, diameters, 3-D points) mark the model
//! dirty; the node arrays, geometry and instance→node indices are rebuilt
//! ("compiled") lazily before the next query that needs them or the next step.

use std::collections::HashMap;

use crate::abi;
use crate::error::check_x;
use crate::ion::{self, IonStore};
use crate::mechanism::{MechKind, MechStore, MechanismSpec, NodeVec, Owner};
use crate::morphology::{self, Pt3d};
use crate::plugin::{self, HostCtx, HostRequest, IonArgs, KernelArgs, KernelKind};
use crate::{Error, Result};

mod group;
mod libraries;

pub use group::PhaseTimes;
pub use libraries::{arch_dir, library_file_name, LibraryInfo};

/// A generational handle to a section. A handle to a deleted section is
/// rejected with [`Error::StaleHandle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SectionId {
    slot: u32,
    generation: u32,
}

/// A generational handle to a point process or artificial cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PointId {
    slot: u32,
    generation: u32,
}

/// A handle to a recording made with [`Model::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordId(usize);

/// What a recording samples.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// The time `t` [ms].
    T,
    /// The membrane potential at a location [mV].
    V(SectionId, f64),
    /// A range variable by NEURON name at a location (`gna_hh`, `ena`, `cm`, ...).
    Range(SectionId, f64, String),
    /// A field of a point process (`i` of an IClamp).
    Point(PointId, String),
}

/// Which ion column `name` is for ion `ion` (`e<ion>`, `<ion>i`, `<ion>o`,
/// `i<ion>`, `di<ion>_dv_`), without allocating: range lookups run once per
/// segment in user loops.
fn ion_var_index(ion: &str, name: &str) -> Option<usize> {
    if let Some(rest) = name.strip_prefix('e') {
        if rest == ion {
            return Some(0);
        }
    }
    if let Some(rest) = name.strip_prefix(ion) {
        match rest {
            "i" => return Some(1),
            "o" => return Some(2),
            _ => {}
        }
    }
    if let Some(rest) = name.strip_prefix('i') {
        if rest == ion {
            return Some(3);
        }
    }
    if let Some(rest) = name.strip_prefix("di").and_then(|r| r.strip_suffix("_dv_")) {
        if rest == ion {
            return Some(4);
        }
    }
    None
}

/// Where in the run loop [`Model::sample`] is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SampleAt {
    Init,
    StepStart,
    StepEnd,
}

/// When a recording samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampling {
    /// At `finitialize` and after every step (NEURON's `Vector.record(&var)`).
    EveryStep,
    /// At t = 0, Δ, 2Δ, ... (NEURON's `Vector.record(&var, Δ)`): a sample is
    /// taken at the end of the first step whose t is within dt/2 of k·Δ.
    Interval(f64),
}

/// The target of a POINTER variable.
#[derive(Debug, Clone, PartialEq)]
pub enum PointerTarget {
    /// The membrane potential at a location.
    V(SectionId, f64),
    /// A range variable at a location.
    Range(SectionId, f64, String),
    /// A field of a point process.
    Point(PointId, String),
}

/// In `Section::ions`, a segment without an instance of that ion.
const NO_ION: u32 = u32::MAX;

#[derive(Debug, Clone)]
struct Section {
    name: String,
    nseg: usize,
    length: f64,
    ra: f64,
    rallbranch: f64,
    /// Per node (NEURON node order).
    diam: Vec<f64>,
    cm: Vec<f64>,
    pts: Vec<Pt3d>,
    /// Parent slot and the location on the parent.
    parent: Option<(u32, f64)>,
    /// Connected by its 1 end (NEURON's orientation flag).
    reversed: bool,
    connect_seq: u64,
    /// (mechanism, instance per node).
    mechs: Vec<(usize, Vec<u32>)>,
    /// (ion, instance per node, or [`NO_ION`] where no mechanism of that
    /// segment uses the ion: NEURON creates ions only where they are used).
    ions: Vec<(usize, Vec<u32>)>,
    points: Vec<u32>,
}

#[derive(Debug)]
struct SectionSlot {
    generation: u32,
    sec: Option<Section>,
}

#[derive(Debug, Clone)]
struct PointProcess {
    mech: usize,
    inst: u32,
    /// Section slot and snapped location; None for artificial cells.
    loc: Option<(u32, f64)>,
}

#[derive(Debug)]
struct PointSlot {
    generation: u32,
    pp: Option<PointProcess>,
}

/// Where a resolved variable lives.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Place {
    T,
    Node(usize),
    Cm {
        sec: u32,
        seg: usize,
    },
    Diam {
        sec: u32,
        seg: usize,
    },
    Mech {
        mech: usize,
        col: usize,
        inst: usize,
    },
    Ion {
        ion: usize,
        which: usize,
        inst: usize,
    },
}

#[derive(Debug)]
struct Recording {
    probe: Probe,
    sampling: Sampling,
    place: Option<Place>,
    next: f64,
    data: Vec<f64>,
    /// Removed by `unrecord`, or its target was deleted: it keeps its data
    /// and takes no more samples (a NEURON Vector whose variable went away).
    stopped: bool,
}

/// The compiled node arrays (NEURON's `NrnThread` node vectors).
#[derive(Debug, Default)]
struct Compiled {
    ncell: usize,
    parent: Vec<u32>,
    a: NodeVec,
    b: NodeVec,
    area: NodeVec,
    rinv: NodeVec,
    diam: NodeVec,
    v: NodeVec,
    rhs: NodeVec,
    d: NodeVec,
    /// Nodes with capacitance (segment nodes), each section's in order.
    cap_nodes: Vec<u32>,
    /// The capacitance [µF/cm²] of each of `cap_nodes`: a copy of the
    /// sections' `cm` kept contiguous for the step (`write_place` updates
    /// both).
    cap_cm: Vec<f64>,
    /// Per section slot: the index of its first segment in `cap_nodes`
    /// (its segments follow in order).
    cap_first: HashMap<u32, u32>,
    /// Per section slot: node of each local node (nseg segment nodes + end).
    sec_nodes: HashMap<u32, Vec<u32>>,
    /// Per root section slot: its root node.
    root_node: HashMap<u32, u32>,
    /// Per mechanism, per POINTER: target addresses.
    pointers: Vec<plugin::PointerTable>,
    /// The cell groups (one per thread), in node order.
    groups: Vec<group::GroupLayout>,
}

/// The simulator: a NEURON-compatible model with sections, mechanisms, ions,
/// recordings and the fixed-step integrator.
///
/// ```
/// use runtime::Model;
/// let mut m = Model::new();
/// let soma = m.create_section("soma").unwrap();
/// m.set_nseg(soma, 3).unwrap();
/// m.set_length(soma, 30.0).unwrap();
/// m.set_diam(soma, 10.0).unwrap();
/// // A cylinder: area = π·d·L/nseg.
/// let a = m.area(soma, 0.5).unwrap();
/// assert!((a - std::f64::consts::PI * 10.0 * 10.0).abs() < 1e-9);
/// assert_eq!(m.topology().unwrap(), "\n|---|       soma(0-1)\n\n");
/// // Misuse is an error, not a panic.
/// assert!(m.set_nseg(soma, 0).is_err());
/// assert!(m.area(soma, 1.5).is_err());
/// ```
#[derive(Debug)]
pub struct Model {
    slots: Vec<SectionSlot>,
    section_list: Vec<u32>,
    points: Vec<PointSlot>,
    mechs: Vec<MechStore>,
    /// Bare names of mechanisms without a library, and `namespace::name`
    /// of library mechanisms.
    mech_by_name: HashMap<String, usize>,
    /// Bare name → every library mechanism with that name.
    lib_names: HashMap<String, Vec<usize>>,
    /// Loaded mechanism libraries, in load order.
    libraries: Vec<libraries::ModelLibrary>,
    ions: Vec<IonStore>,
    ion_by_name: HashMap<String, usize>,
    celsius: f64,
    dt: f64,
    secondorder: i32,
    t: f64,
    comp: Compiled,
    dirty: bool,
    host: HostCtx,
    records: Vec<Recording>,
    connect_counter: u64,
    pub(crate) events: crate::events::EventState,
    /// The requested number of threads (cell groups).
    nthread: usize,
    /// The n − 1 worker threads when `nthread` = n > 1 (the calling thread
    /// runs group 0, as NEURON's main thread runs thread 0).
    pool: Option<rayon::ThreadPool>,
    /// Host contexts of the groups when there are several.
    group_hosts: Vec<HostCtx>,
    /// Private GLOBAL copies of groups 1.. (group 0 uses the model's).
    group_globals: Vec<Vec<Vec<f64>>>,
    phase_times: PhaseTimes,
}

impl Default for Model {
    fn default() -> Self {
        Model::new()
    }
}

const PHASES: [&str; 9] = [
    "init",
    "cur",
    "state",
    "table_check",
    "before_initial",
    "after_initial",
    "before_breakpoint",
    "after_solve",
    "before_step",
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Phase {
    Init,
    Cur,
    State,
    TableCheck,
    BeforeInitial,
    AfterInitial,
    BeforeBreakpoint,
    AfterSolve,
    BeforeStep,
}

impl Phase {
    fn name(self) -> &'static str {
        PHASES[self as usize]
    }
    fn kernel(self, k: &abi::NrnKernels) -> Option<abi::NrnKernelFn> {
        match self {
            Phase::Init => k.init,
            Phase::Cur => k.cur,
            Phase::State => k.state,
            Phase::TableCheck => k.table_check,
            Phase::BeforeInitial => k.before_initial,
            Phase::AfterInitial => k.after_initial,
            Phase::BeforeBreakpoint => k.before_breakpoint,
            Phase::AfterSolve => k.after_solve,
            Phase::BeforeStep => k.before_step,
        }
    }
}

fn fmt_g(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

impl Model {
    /// An empty model with NEURON's defaults: celsius 6.3 °C, dt 0.025 ms,
    /// secondorder 0, t 0.
    pub fn new() -> Model {
        Model {
            slots: Vec::new(),
            section_list: Vec::new(),
            points: Vec::new(),
            mechs: Vec::new(),
            mech_by_name: HashMap::new(),
            lib_names: HashMap::new(),
            libraries: Vec::new(),
            ions: Vec::new(),
            ion_by_name: HashMap::new(),
            celsius: 6.3,
            dt: 0.025,
            secondorder: 0,
            t: 0.0,
            comp: Compiled::default(),
            dirty: true,
            host: HostCtx::new(),
            records: Vec::new(),
            connect_counter: 0,
            events: crate::events::EventState::default(),
            nthread: 1,
            pool: None,
            group_hosts: Vec::new(),
            group_globals: Vec::new(),
            phase_times: PhaseTimes::default(),
        }
    }

    // ------------------------------------------------------------------
    // Globals.

    /// The current time [ms].
    pub fn t(&self) -> f64 {
        self.t
    }
    /// The time step [ms].
    pub fn dt(&self) -> f64 {
        self.dt
    }
    /// Sets the time step [ms]; must be positive and finite.
    pub fn set_dt(&mut self, dt: f64) -> Result<()> {
        if !(dt > 0.0 && dt.is_finite()) {
            return Err(Error::BadValue {
                name: "dt".into(),
                value: dt,
                reason: "must be positive",
            });
        }
        self.dt = dt;
        Ok(())
    }
    /// The temperature [°C].
    pub fn celsius(&self) -> f64 {
        self.celsius
    }
    /// Sets the temperature [°C].
    pub fn set_celsius(&mut self, celsius: f64) -> Result<()> {
        if !celsius.is_finite() || celsius <= -273.15 {
            return Err(Error::BadValue {
                name: "celsius".into(),
                value: celsius,
                reason: "must be above absolute zero",
            });
        }
        self.celsius = celsius;
        Ok(())
    }
    /// NEURON's `secondorder`.
    pub fn secondorder(&self) -> i32 {
        self.secondorder
    }
    /// Sets `secondorder`: 0 (backward Euler), 1 or 2 (Crank–Nicolson; 2 also
    /// corrects ionic currents by dI/dv·Δv).
    pub fn set_secondorder(&mut self, s: i32) -> Result<()> {
        if !(0..=2).contains(&s) {
            return Err(Error::BadValue {
                name: "secondorder".into(),
                value: f64::from(s),
                reason: "must be 0, 1 or 2",
            });
        }
        self.secondorder = s;
        Ok(())
    }

    // ------------------------------------------------------------------
    // Mechanism registration.

    /// Registers a mechanism type. Ions it uses are created with NEURON's
    /// defaults; a valence that contradicts an earlier one is an error.
    /// Returns the mechanism id passed to kernels as `pack.mech_id`.
    pub fn register(&mut self, spec: MechanismSpec) -> Result<u32> {
        spec.validate()?;
        if self.mech_by_name.contains_key(&spec.key())
            || self
                .ion_by_name
                .contains_key(spec.name.trim_end_matches("_ion"))
                && spec.name.ends_with("_ion")
        {
            return Err(Error::BadMechanism {
                name: spec.name.clone(),
                reason: "already registered".into(),
            });
        }
        let mut ion_types = Vec::new();
        for u in &spec.ions {
            let idx = self.ion_index_or_create(&u.name);
            let store = &mut self.ions[idx];
            match (store.valence, u.valence) {
                (Some(a), Some(b)) if a != b => {
                    return Err(Error::BadMechanism {
                        name: spec.name.clone(),
                        reason: format!(
                        "{} ion charge defined differently in two USEION statements ({b} and {a})",
                        u.name
                    ),
                    })
                }
                (None, Some(b)) => store.valence = Some(b),
                _ => {}
            }
            ion_types.push(idx);
        }
        let id = self.mechs.len();
        self.mech_by_name.insert(spec.key(), id);
        if spec.library.is_some() {
            self.lib_names
                .entry(spec.name.clone())
                .or_default()
                .push(id);
        }
        self.mechs.push(MechStore::new(spec, ion_types));
        self.comp.pointers.push(plugin::PointerTable::default());
        Ok(id as u32)
    }

    fn ion_index_or_create(&mut self, name: &str) -> usize {
        if let Some(&i) = self.ion_by_name.get(name) {
            return i;
        }
        let i = self.ions.len();
        self.ions.push(IonStore::new(name));
        self.ion_by_name.insert(name.to_string(), i);
        i
    }

    /// The names of the registered mechanisms, in registration (call) order.
    pub fn mechanism_names(&self) -> Vec<&str> {
        self.mechs.iter().map(|m| m.spec.name.as_str()).collect()
    }

    /// Sets a GLOBAL of a mechanism (`name` as in NMODL, e.g. `usetable`).
    pub fn set_global(&mut self, mechanism: &str, name: &str, value: f64) -> Result<()> {
        let (m, g) = self.find_global(mechanism, name)?;
        self.mechs[m].globals[g] = value;
        Ok(())
    }

    /// Reads a GLOBAL of a mechanism.
    pub fn global(&self, mechanism: &str, name: &str) -> Result<f64> {
        let (m, g) = self.find_global(mechanism, name)?;
        Ok(self.mechs[m].globals[g])
    }

    fn find_global(&self, mechanism: &str, name: &str) -> Result<(usize, usize)> {
        let m = self.mech_id(mechanism)?;
        let (base, idx) = split_index(name);
        let (g, len) = self.mechs[m]
            .spec
            .global_of(base)
            .ok_or_else(|| Error::UnknownField {
                name: name.into(),
                context: format!("mechanism `{mechanism}` (globals)"),
            })?;
        if idx >= len {
            return Err(Error::UnknownField {
                name: name.into(),
                context: format!("mechanism `{mechanism}` (index out of range)"),
            });
        }
        Ok((m, g + idx))
    }

    /// Sets an ion's initial concentrations (`nai0_na_ion`, `nao0_na_ion`),
    /// used at `finitialize` where a mechanism writes the concentration.
    pub fn set_ion_initial_conc(&mut self, ion: &str, ci0: f64, co0: f64) -> Result<()> {
        let &i = self
            .ion_by_name
            .get(ion)
            .ok_or_else(|| Error::UnknownMechanism {
                name: format!("{ion}_ion"),
            })?;
        self.ions[i].ci0 = ci0;
        self.ions[i].co0 = co0;
        Ok(())
    }

    // ------------------------------------------------------------------
    // Sections.

    fn sec(&self, id: SectionId) -> Result<&Section> {
        match self.slots.get(id.slot as usize) {
            Some(SectionSlot {
                generation,
                sec: Some(s),
            }) if *generation == id.generation => Ok(s),
            _ => Err(Error::StaleHandle { what: "section" }),
        }
    }

    fn sec_mut(&mut self, id: SectionId) -> Result<&mut Section> {
        match self.slots.get_mut(id.slot as usize) {
            Some(SectionSlot {
                generation,
                sec: Some(s),
            }) if *generation == id.generation => Ok(s),
            _ => Err(Error::StaleHandle { what: "section" }),
        }
    }

    fn sec_at(&self, slot: u32) -> &Section {
        self.slots[slot as usize]
            .sec
            .as_ref()
            .expect("live section slot")
    }

    /// Creates a section with NEURON's defaults (nseg 1, L 100 µm, diam 500 µm,
    /// Ra 35.4 Ω·cm, cm 1 µF/cm²).
    pub fn create_section(&mut self, name: &str) -> Result<SectionId> {
        let sec = Section {
            name: name.to_string(),
            nseg: 1,
            length: morphology::DEF_L,
            ra: morphology::DEF_RA,
            rallbranch: 1.0,
            diam: vec![morphology::DEF_DIAM],
            cm: vec![morphology::DEF_CM],
            pts: Vec::new(),
            parent: None,
            reversed: false,
            connect_seq: 0,
            mechs: Vec::new(),
            ions: Vec::new(),
            points: Vec::new(),
        };
        let slot = match self.slots.iter().position(|s| s.sec.is_none()) {
            Some(i) => {
                self.slots[i].sec = Some(sec);
                i
            }
            None => {
                self.slots.push(SectionSlot {
                    generation: 0,
                    sec: Some(sec),
                });
                self.slots.len() - 1
            }
        };
        self.section_list.push(slot as u32);
        self.dirty = true;
        Ok(SectionId {
            slot: slot as u32,
            generation: self.slots[slot].generation,
        })
    }

    /// The live sections in creation order.
    pub fn sections(&self) -> Vec<SectionId> {
        self.section_list
            .iter()
            .map(|&s| SectionId {
                slot: s,
                generation: self.slots[s as usize].generation,
            })
            .collect()
    }

    /// The section's name.
    pub fn name(&self, sec: SectionId) -> Result<&str> {
        Ok(&self.sec(sec)?.name)
    }

    /// Deletes a section. Its children become root sections (as in NEURON);
    /// its point processes are deleted, so their handles become stale.
    pub fn delete_section(&mut self, id: SectionId) -> Result<()> {
        self.sec(id)?;
        let slot = id.slot;
        // Disconnect children.
        for &s in &self.section_list.clone() {
            let child = self.slots[s as usize].sec.as_mut().expect("live");
            if child.parent.is_some_and(|(p, _)| p == slot) {
                child.parent = None;
                child.reversed = false;
            }
        }
        let sec = self.slots[slot as usize].sec.clone().expect("live");
        // DESTRUCTORs first; the section goes away even if one fails, and the
        // first failure is reported.
        let mut result = Ok(());
        for &p in &sec.points {
            if let Some(pp) = self.points[p as usize].pp.clone() {
                let r = self.run_destructor(pp.mech, &[pp.inst]);
                result = result.and(r);
            }
        }
        for (m, inst) in &sec.mechs {
            let r = self.run_destructor(*m, inst);
            result = result.and(r);
        }
        for &p in &sec.points {
            self.remove_point(p);
        }
        for (m, inst) in &sec.mechs {
            self.remove_mech_instances(*m, inst.clone());
        }
        for (ion, inst) in &sec.ions {
            let live: Vec<u32> = inst.iter().copied().filter(|&i| i != NO_ION).collect();
            self.remove_ion_instances(*ion, live);
        }
        let s = &mut self.slots[slot as usize];
        s.sec = None;
        s.generation += 1;
        self.section_list.retain(|&x| x != slot);
        self.dirty = true;
        result
    }

    fn remove_mech_instances(&mut self, m: usize, mut inst: Vec<u32>) {
        // Remove from the highest index down so swap-removal never moves an
        // instance that is still to be removed into a removed slot unnoticed.
        inst.sort_unstable_by(|a, b| b.cmp(a));
        for i in inst {
            if let Some(moved) = self.mechs[m].swap_remove(i as usize) {
                self.retarget_mech_owner(m, moved, i);
            }
        }
    }

    fn retarget_mech_owner(&mut self, m: usize, owner: Owner, new_index: u32) {
        match owner {
            Owner::Segment { sec, seg } => {
                if let Some(s) = self.slots[sec as usize].sec.as_mut() {
                    if let Some((_, v)) = s.mechs.iter_mut().find(|(mm, _)| *mm == m) {
                        v[seg as usize] = new_index;
                    }
                }
            }
            Owner::Point { slot } => {
                if let Some(pp) = self.points[slot as usize].pp.as_mut() {
                    pp.inst = new_index;
                }
            }
        }
    }

    fn remove_ion_instances(&mut self, ion: usize, mut inst: Vec<u32>) {
        inst.sort_unstable_by(|a, b| b.cmp(a));
        for i in inst {
            if let Some(Owner::Segment { sec, seg }) = self.ions[ion].swap_remove(i as usize) {
                if let Some(s) = self.slots[sec as usize].sec.as_mut() {
                    if let Some((_, v)) = s.ions.iter_mut().find(|(ii, _)| *ii == ion) {
                        v[seg as usize] = i;
                    }
                }
            }
        }
    }

    /// The number of segments.
    pub fn nseg(&self, sec: SectionId) -> Result<usize> {
        Ok(self.sec(sec)?.nseg)
    }

    /// Sets the number of segments. Range variables keep their values: each
    /// new segment takes the values of the old segment containing its centre
    /// (NEURON's behaviour); point processes move to the new segment containing
    /// their location.
    pub fn set_nseg(&mut self, id: SectionId, nseg: usize) -> Result<()> {
        if nseg == 0 || nseg > 32767 {
            return Err(Error::BadValue {
                name: "nseg".into(),
                value: nseg as f64,
                reason: "must be between 1 and 32767",
            });
        }
        let old = self.sec(id)?.clone();
        if old.nseg == nseg {
            return Ok(());
        }
        let map: Vec<usize> = (0..nseg)
            .map(|j| {
                let c = (j as f64 + 0.5) / nseg as f64;
                let x = if old.reversed { 1.0 - c } else { c };
                morphology::node_index(old.nseg, x, old.reversed)
            })
            .collect();
        // Mechanisms.
        let mut new_mechs = Vec::new();
        for (m, inst) in &old.mechs {
            let rows: Vec<Vec<f64>> = inst
                .iter()
                .map(|&i| self.mechs[*m].row(i as usize))
                .collect();
            self.remove_mech_instances(*m, inst.clone());
            let mut v = Vec::with_capacity(nseg);
            for (j, &o) in map.iter().enumerate() {
                let i = self.mechs[*m].push(Owner::Segment {
                    sec: id.slot,
                    seg: j as u32,
                });
                self.mechs[*m].set_row(i, &rows[o]);
                v.push(i as u32);
            }
            new_mechs.push((*m, v));
        }
        let mut new_ions = Vec::new();
        for (ion, inst) in &old.ions {
            let rows: Vec<Option<[f64; 5]>> = inst
                .iter()
                .map(|&i| (i != NO_ION).then(|| self.ions[*ion].row(i as usize)))
                .collect();
            let live: Vec<u32> = inst.iter().copied().filter(|&i| i != NO_ION).collect();
            self.remove_ion_instances(*ion, live);
            let mut v = Vec::with_capacity(nseg);
            for (j, &o) in map.iter().enumerate() {
                match rows[o] {
                    Some(row) => {
                        let i = self.ions[*ion].push(Owner::Segment {
                            sec: id.slot,
                            seg: j as u32,
                        });
                        self.ions[*ion].set_row(i, row);
                        v.push(i as u32);
                    }
                    None => v.push(NO_ION),
                }
            }
            new_ions.push((*ion, v));
        }
        let sec = self.sec_mut(id)?;
        sec.diam = map.iter().map(|&o| old.diam[o]).collect();
        sec.cm = map.iter().map(|&o| old.cm[o]).collect();
        sec.nseg = nseg;
        sec.mechs = new_mechs;
        sec.ions = new_ions;
        for &p in &old.points {
            if let Some(PointProcess {
                loc: Some((_, x)), ..
            }) = self.points[p as usize].pp.as_mut()
            {
                *x = snap(*x, nseg);
            }
        }
        self.ensure_section_ions(id)?;
        self.dirty = true;
        Ok(())
    }

    /// The section length [µm] (the arc length of the 3-D points if any).
    pub fn length(&self, sec: SectionId) -> Result<f64> {
        let s = self.sec(sec)?;
        Ok(morphology::clamp_length(section_length(s)))
    }

    /// Sets L [µm]. With 3-D points, the points are scaled about the first
    /// one, as NEURON does.
    pub fn set_length(&mut self, id: SectionId, l: f64) -> Result<()> {
        if !(l > 0.0 && l.is_finite()) {
            return Err(Error::BadValue {
                name: "L".into(),
                value: l,
                reason: "must be positive",
            });
        }
        let s = self.sec_mut(id)?;
        if s.pts.is_empty() {
            s.length = l;
        } else {
            let p0 = s.pts[0];
            let last = s.pts[s.pts.len() - 1].arc;
            let fac = l / last;
            for p in &mut s.pts {
                p.arc *= fac;
                p.x = (f64::from(p0.x) + (f64::from(p.x) - f64::from(p0.x)) * fac) as f32;
                p.y = (f64::from(p0.y) + (f64::from(p.y) - f64::from(p0.y)) * fac) as f32;
                p.z = (f64::from(p0.z) + (f64::from(p.z) - f64::from(p0.z)) * fac) as f32;
            }
            s.length = s.pts[s.pts.len() - 1].arc;
        }
        self.dirty = true;
        Ok(())
    }

    /// Sets the diameter [µm] of every segment.
    pub fn set_diam(&mut self, id: SectionId, diam: f64) -> Result<()> {
        let n = self.sec(id)?.nseg;
        for j in 0..n {
            let x = (j as f64 + 0.5) / n as f64;
            self.set_range(id, x, "diam", diam)?;
        }
        Ok(())
    }

    /// Sets Ra [Ω·cm].
    pub fn set_ra(&mut self, id: SectionId, ra: f64) -> Result<()> {
        if !(ra > 0.0 && ra.is_finite()) {
            return Err(Error::BadValue {
                name: "Ra".into(),
                value: ra,
                reason: "must be positive",
            });
        }
        self.sec_mut(id)?.ra = ra;
        self.dirty = true;
        Ok(())
    }

    /// Ra [Ω·cm].
    pub fn ra(&self, id: SectionId) -> Result<f64> {
        Ok(self.sec(id)?.ra)
    }

    /// Sets cm [µF/cm²] of every segment.
    pub fn set_cm(&mut self, id: SectionId, cm: f64) -> Result<()> {
        let n = self.sec(id)?.nseg;
        for j in 0..n {
            self.set_range(id, (j as f64 + 0.5) / n as f64, "cm", cm)?;
        }
        Ok(())
    }

    /// Sets `rallbranch`.
    pub fn set_rallbranch(&mut self, id: SectionId, r: f64) -> Result<()> {
        if !(r > 0.0 && r.is_finite()) {
            return Err(Error::BadValue {
                name: "rallbranch".into(),
                value: r,
                reason: "must be positive",
            });
        }
        self.sec_mut(id)?.rallbranch = r;
        self.dirty = true;
        Ok(())
    }

    /// Appends a 3-D point (NEURON's `pt3dadd`); coordinates and diameter are
    /// stored in single precision as NEURON does.
    pub fn pt3dadd(&mut self, id: SectionId, x: f64, y: f64, z: f64, d: f64) -> Result<()> {
        for (name, v) in [("x", x), ("y", y), ("z", z), ("diam", d)] {
            if !v.is_finite() {
                return Err(Error::BadValue {
                    name: format!("pt3dadd {name}"),
                    value: v,
                    reason: "must be finite",
                });
            }
        }
        if d < 0.0 {
            return Err(Error::BadValue {
                name: "pt3dadd diam".into(),
                value: d,
                reason: "Diameter less than 0",
            });
        }
        let s = self.sec_mut(id)?;
        s.pts.push(Pt3d {
            x: x as f32,
            y: y as f32,
            z: z as f32,
            d: d as f32,
            arc: 0.0,
        });
        let n = s.pts.len();
        morphology::recompute_arcs(&mut s.pts, n - 1);
        s.length = s.pts[n - 1].arc;
        self.dirty = true;
        Ok(())
    }

    /// Removes all 3-D points (NEURON's `pt3dclear`); L and diam keep their
    /// last values.
    pub fn pt3dclear(&mut self, id: SectionId) -> Result<()> {
        let s = self.sec_mut(id)?;
        s.pts.clear();
        self.dirty = true;
        Ok(())
    }

    /// The 3-D points (x, y, z, diam, arc).
    pub fn pt3d(&self, id: SectionId) -> Result<Vec<(f64, f64, f64, f64, f64)>> {
        Ok(self
            .sec(id)?
            .pts
            .iter()
            .map(|p| {
                (
                    f64::from(p.x),
                    f64::from(p.y),
                    f64::from(p.z),
                    f64::from(p.d),
                    p.arc,
                )
            })
            .collect())
    }

    /// Connects `child`'s end `child_end` (0 or 1) to `parent` at `x`
    /// (NEURON's `child.connect(parent(x), child_end)`). A connection that
    /// would make a loop is an error; an existing parent is replaced.
    pub fn connect(
        &mut self,
        child: SectionId,
        child_end: f64,
        parent: SectionId,
        x: f64,
    ) -> Result<()> {
        check_x(x)?;
        if child_end != 0.0 && child_end != 1.0 {
            return Err(Error::BadValue {
                name: "child_end".into(),
                value: child_end,
                reason: "must be 0 or 1",
            });
        }
        self.sec(child)?;
        self.sec(parent)?;
        let mut p = Some(parent.slot);
        while let Some(s) = p {
            if s == child.slot {
                return Err(Error::Structure {
                    reason: format!(
                        "connecting {} to {} would make a loop",
                        self.sec_at(child.slot).name,
                        self.sec_at(parent.slot).name
                    ),
                });
            }
            p = self.sec_at(s).parent.map(|(q, _)| q);
        }
        self.connect_counter += 1;
        let seq = self.connect_counter;
        let c = self.sec_mut(child)?;
        c.parent = Some((parent.slot, x));
        c.reversed = child_end == 1.0;
        c.connect_seq = seq;
        self.dirty = true;
        Ok(())
    }

    /// Disconnects a section from its parent.
    pub fn disconnect(&mut self, id: SectionId) -> Result<()> {
        let s = self.sec_mut(id)?;
        s.parent = None;
        s.reversed = false;
        self.dirty = true;
        Ok(())
    }

    /// The parent section and location, if connected.
    pub fn parent(&self, id: SectionId) -> Result<Option<(SectionId, f64)>> {
        Ok(self.sec(id)?.parent.map(|(p, x)| {
            (
                SectionId {
                    slot: p,
                    generation: self.slots[p as usize].generation,
                },
                x,
            )
        }))
    }

    // ------------------------------------------------------------------
    // Mechanisms in sections.

    /// A mechanism by name: `name` for built-ins and JIT-compiled ones,
    /// `namespace::name` for a library's, or a bare `name` when exactly one
    /// library defines it (two libraries defining it make the bare name an
    /// error that lists the qualified names).
    fn mech_id(&self, name: &str) -> Result<usize> {
        if let Some(&m) = self.mech_by_name.get(name) {
            return Ok(m);
        }
        match self.lib_names.get(name).map(Vec::as_slice) {
            Some([m]) => Ok(*m),
            Some(several) if !several.is_empty() => Err(Error::UnknownMechanism {
                name: format!(
                    "{name} (ambiguous: defined by {}; use the qualified name)",
                    several
                        .iter()
                        .map(|&m| format!("`{}`", self.mechs[m].spec.key()))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
            }),
            _ => Err(Error::UnknownMechanism { name: name.into() }),
        }
    }

    /// Inserts a density mechanism in every segment of a section (NEURON's
    /// `insert`); inserting it again does nothing.
    pub fn insert(&mut self, id: SectionId, name: &str) -> Result<()> {
        let m = self.mech_id(name)?;
        if self.mechs[m].spec.kind != MechKind::Density {
            return Err(Error::UnknownMechanism {
                name: format!("{name} (a point process cannot be inserted; use point_process)"),
            });
        }
        let s = self.sec(id)?;
        if s.mechs.iter().any(|(mm, _)| *mm == m) {
            return Ok(());
        }
        let nseg = s.nseg;
        let inst: Vec<u32> = (0..nseg)
            .map(|j| {
                self.mechs[m].push(Owner::Segment {
                    sec: id.slot,
                    seg: j as u32,
                }) as u32
            })
            .collect();
        if let Err(e) = self.run_constructor(m, &inst) {
            self.remove_mech_instances(m, inst);
            return Err(e);
        }
        self.sec_mut(id)?.mechs.push((m, inst));
        for ion in self.mechs[m].ion_type.clone() {
            self.ensure_ion(id, ion, None)?;
        }
        self.dirty = true;
        Ok(())
    }

    /// Removes a density mechanism from a section (NEURON's `uninsert`).
    pub fn uninsert(&mut self, id: SectionId, name: &str) -> Result<()> {
        let m = self.mech_id(name)?;
        let s = self.sec_mut(id)?;
        let Some(pos) = s.mechs.iter().position(|(mm, _)| *mm == m) else {
            return Ok(());
        };
        let (_, inst) = s.mechs.remove(pos);
        let result = self.run_destructor(m, &inst);
        self.remove_mech_instances(m, inst);
        self.dirty = true;
        result
    }

    fn run_constructor(&mut self, m: usize, inst: &[u32]) -> Result<()> {
        match self.mechs[m].spec.kernels.constructor {
            Some(k) => self.run_on_instances(m, k, inst, "constructor"),
            None => Ok(()),
        }
    }

    fn run_destructor(&mut self, m: usize, inst: &[u32]) -> Result<()> {
        match self.mechs[m].spec.kernels.destructor {
            Some(k) => self.run_on_instances(m, k, inst, "destructor"),
            None => Ok(()),
        }
    }

    /// Calls a CONSTRUCTOR or DESTRUCTOR kernel once per instance, each
    /// with a pack of `count` 1 over that instance's fields and the
    /// mechanism's globals. Instances are created and deleted between
    /// compiles, when they have no node yet (or no longer): the pack's node
    /// arrays and ion columns are then one scratch element each (v = 0), and
    /// POINTERs are unset. Host requests are acted on at the current t.
    fn run_on_instances(
        &mut self,
        m: usize,
        k: abi::NrnKernelFn,
        inst: &[u32],
        phase: &'static str,
    ) -> Result<()> {
        let time = self.t;
        for &i in inst {
            let i = i as usize;
            let (mut v, mut rhs, mut d) = ([0.0], [0.0], [0.0]);
            let (area, diam) = ([100.0], [1.0]);
            let store = &mut self.mechs[m];
            let n_ions = store.ion_type.len();
            let mut scratch_ions = vec![[[0.0f64; 1]; 5]; n_ions];
            let zero_index = [0u32];
            let null_ptrs: Vec<[*mut f64; 1]> =
                vec![[std::ptr::null_mut()]; store.spec.pointers.len()];
            let ions = scratch_ions
                .iter_mut()
                .zip(&store.ion_type)
                .map(|(cols, &it)| {
                    let [e, ci, co, cur, dcur] = cols;
                    IonArgs {
                        index: &zero_index,
                        cols: [
                            &mut e[..],
                            &mut ci[..],
                            &mut co[..],
                            &mut cur[..],
                            &mut dcur[..],
                        ],
                        count: 1,
                        valence: self.ions[it].valence.unwrap_or(f64::NAN),
                    }
                })
                .collect();
            let args = KernelArgs {
                mech_id: m as u32,
                count: 1,
                t: time,
                dt: self.dt,
                celsius: self.celsius,
                secondorder: self.secondorder,
                node_index: &zero_index,
                v: &mut v,
                rhs: &mut rhs,
                d: &mut d,
                area: &area,
                diam: &diam,
                fields: store
                    .cols
                    .iter_mut()
                    .map(|c| &mut plugin::column_slice(c)[i..])
                    .collect(),
                globals: &mut store.globals,
                ions,
                pointers: null_ptrs.iter().map(|p| &p[..]).collect(),
                host: &mut self.host,
            };
            let (status, _) = plugin::invoke(args, KernelKind::Phase(k), &mut [])?;
            if status != abi::STATUS_OK {
                self.host.requests.clear();
                return Err(Error::Kernel {
                    mechanism: self.mechs[m].spec.name.clone(),
                    phase,
                    instance: i as u32,
                    status,
                });
            }
            let reqs: Vec<HostRequest> = std::mem::take(&mut self.host.requests);
            for r in reqs {
                crate::events::handle_request(self, r, time)?;
            }
        }
        Ok(())
    }

    /// Makes sure ion `ion` has an instance on segment `seg` of a section,
    /// or on every segment when `seg` is None (a density mechanism).
    fn ensure_ion(&mut self, id: SectionId, ion: usize, seg: Option<usize>) -> Result<()> {
        let n = self.sec(id)?.nseg;
        let pos = match self.sec(id)?.ions.iter().position(|(i, _)| *i == ion) {
            Some(p) => p,
            None => {
                let s = self.sec_mut(id)?;
                s.ions.push((ion, vec![NO_ION; n]));
                s.ions.len() - 1
            }
        };
        let segs: Vec<usize> = match seg {
            Some(j) => vec![j],
            None => (0..n).collect(),
        };
        for j in segs {
            if self.sec(id)?.ions[pos].1[j] == NO_ION {
                let i = self.ions[ion].push(Owner::Segment {
                    sec: id.slot,
                    seg: j as u32,
                }) as u32;
                self.sec_mut(id)?.ions[pos].1[j] = i;
            }
        }
        Ok(())
    }

    /// Creates the ion instances a section's mechanisms and point processes
    /// need (after `nseg` changed).
    fn ensure_section_ions(&mut self, id: SectionId) -> Result<()> {
        let s = self.sec(id)?.clone();
        for (m, _) in &s.mechs {
            for ion in self.mechs[*m].ion_type.clone() {
                self.ensure_ion(id, ion, None)?;
            }
        }
        for &p in &s.points {
            let Some(pp) = self.points[p as usize].pp.clone() else {
                continue;
            };
            if let Some((_, x)) = pp.loc {
                let seg = morphology::node_index(s.nseg, x, s.reversed);
                for ion in self.mechs[pp.mech].ion_type.clone() {
                    self.ensure_ion(id, ion, Some(seg))?;
                }
            }
        }
        Ok(())
    }

    /// Creates a point process of type `name` at `x` of a section. Its
    /// location snaps to the centre of the segment containing `x` (or stays at
    /// 0 or 1), as NEURON's `get_loc()` reports.
    pub fn point_process(&mut self, name: &str, id: SectionId, x: f64) -> Result<PointId> {
        check_x(x)?;
        let m = self.mech_id(name)?;
        if self.mechs[m].spec.kind != MechKind::PointProcess {
            return Err(Error::UnknownMechanism {
                name: format!("{name} (not a POINT_PROCESS)"),
            });
        }
        let nseg = self.sec(id)?.nseg;
        if (x == 0.0 || x == 1.0) && !self.mechs[m].spec.ions.is_empty() {
            return Err(Error::Structure {
                reason: format!("{name} uses ions and cannot be placed at a section end (x = {x})"),
            });
        }
        let sx = snap(x, nseg);
        let pid = self.new_point(m, Some((id.slot, sx)));
        let inst = self.pp(pid)?.inst;
        if let Err(e) = self.run_constructor(m, &[inst]) {
            self.remove_point(pid.slot);
            return Err(e);
        }
        self.sec_mut(id)?.points.push(pid.slot);
        let s = self.sec(id)?;
        let seg = morphology::node_index(s.nseg, sx, s.reversed);
        for ion in self.mechs[m].ion_type.clone() {
            self.ensure_ion(id, ion, Some(seg))?;
        }
        self.dirty = true;
        Ok(pid)
    }

    /// Creates an artificial cell (no location).
    pub fn artificial_cell(&mut self, name: &str) -> Result<PointId> {
        let m = self.mech_id(name)?;
        if self.mechs[m].spec.kind != MechKind::ArtificialCell {
            return Err(Error::UnknownMechanism {
                name: format!("{name} (not an ARTIFICIAL_CELL)"),
            });
        }
        let pid = self.new_point(m, None);
        let inst = self.pp(pid)?.inst;
        if let Err(e) = self.run_constructor(m, &[inst]) {
            self.remove_point(pid.slot);
            return Err(e);
        }
        self.dirty = true;
        Ok(pid)
    }

    fn new_point(&mut self, m: usize, loc: Option<(u32, f64)>) -> PointId {
        let slot = match self.points.iter().position(|p| p.pp.is_none()) {
            Some(i) => i,
            None => {
                self.points.push(PointSlot {
                    generation: 0,
                    pp: None,
                });
                self.points.len() - 1
            }
        };
        let inst = self.mechs[m].push(Owner::Point { slot: slot as u32 }) as u32;
        self.points[slot].pp = Some(PointProcess { mech: m, inst, loc });
        PointId {
            slot: slot as u32,
            generation: self.points[slot].generation,
        }
    }

    fn pp(&self, id: PointId) -> Result<&PointProcess> {
        match self.points.get(id.slot as usize) {
            Some(PointSlot {
                generation,
                pp: Some(p),
            }) if *generation == id.generation => Ok(p),
            _ => Err(Error::StaleHandle {
                what: "point process",
            }),
        }
    }

    /// Deletes a point process; its handle (and NetCons to or from it) become stale.
    pub fn delete_point(&mut self, id: PointId) -> Result<()> {
        let pp = self.pp(id)?.clone();
        if let Some((sec, _)) = pp.loc {
            if let Some(s) = self.slots[sec as usize].sec.as_mut() {
                s.points.retain(|&p| p != id.slot);
            }
        }
        let result = self.run_destructor(pp.mech, &[pp.inst]);
        self.remove_point(id.slot);
        result
    }

    fn remove_point(&mut self, slot: u32) {
        let Some(pp) = self.points[slot as usize].pp.take() else {
            return;
        };
        self.points[slot as usize].generation += 1;
        if let Some(moved) = self.mechs[pp.mech].swap_remove(pp.inst as usize) {
            self.retarget_mech_owner(pp.mech, moved, pp.inst);
        }
        self.events.forget_point(slot);
        self.dirty = true;
    }

    /// The section and snapped location of a point process (`get_loc()`).
    pub fn point_location(&self, id: PointId) -> Result<Option<(SectionId, f64)>> {
        let pp = self.pp(id)?;
        Ok(pp.loc.map(|(s, x)| {
            (
                SectionId {
                    slot: s,
                    generation: self.slots[s as usize].generation,
                },
                x,
            )
        }))
    }

    /// Sets a field of a point process (`name` or `name[k]`).
    pub fn set_point(&mut self, id: PointId, name: &str, value: f64) -> Result<()> {
        let place = self.point_place(id, name)?;
        self.write_place(place, value)
    }

    /// Reads a field of a point process.
    pub fn get_point(&mut self, id: PointId, name: &str) -> Result<f64> {
        let place = self.point_place(id, name)?;
        Ok(self.read_place(place))
    }

    fn point_place(&self, id: PointId, name: &str) -> Result<Place> {
        let pp = self.pp(id)?;
        let spec = &self.mechs[pp.mech].spec;
        let (base, idx) = split_index(name);
        match spec.column_of(base) {
            Some((col, len)) if idx < len => Ok(Place::Mech {
                mech: pp.mech,
                col: col + idx,
                inst: pp.inst as usize,
            }),
            _ => Err(Error::UnknownField {
                name: name.into(),
                context: format!("point process {}", spec.name),
            }),
        }
    }

    /// Links POINTER `pointer` of a point process to a target variable
    /// (NEURON's `setpointer`). The link is resolved whenever the model is compiled.
    pub fn set_pointer(&mut self, id: PointId, pointer: &str, target: PointerTarget) -> Result<()> {
        let pp = self.pp(id)?.clone();
        let spec = &self.mechs[pp.mech].spec;
        let p = spec
            .pointers
            .iter()
            .position(|n| n == pointer)
            .ok_or_else(|| Error::UnknownField {
                name: pointer.into(),
                context: format!("POINTERs of {}", spec.name),
            })?;
        // Validate the target now so that errors show up here.
        self.resolve_pointer_target(&target)?;
        self.mechs[pp.mech].pointer_targets[p][pp.inst as usize] = Some(target);
        self.dirty = true;
        Ok(())
    }

    fn resolve_pointer_target(&mut self, target: &PointerTarget) -> Result<Place> {
        match target {
            PointerTarget::V(s, x) => self.range_place(*s, *x, "v"),
            PointerTarget::Range(s, x, n) => self.range_place(*s, *x, n),
            PointerTarget::Point(p, n) => self.point_place(*p, n),
        }
    }

    // ------------------------------------------------------------------
    // Range variables.

    /// Sets a range variable at `x` by NEURON name: `v`, `diam`, `cm`, ion
    /// variables (`ena`, `nai`, `nao`, `ina`), or `<field>_<suffix>` (with
    /// `[k]` for array elements), e.g. `gnabar_hh`.
    pub fn set_range(&mut self, id: SectionId, x: f64, name: &str, value: f64) -> Result<()> {
        let place = self.range_place(id, x, name)?;
        match place {
            Place::Diam { sec, seg } => {
                if !(value > 0.0 && value.is_finite()) {
                    return Err(Error::BadValue {
                        name: "diam".into(),
                        value,
                        reason: "diameter must be positive",
                    });
                }
                let s = self.slots[sec as usize].sec.as_mut().expect("live");
                s.diam[seg] = value;
                if !s.pts.is_empty() {
                    // NEURON's nrn_diam_change: 3-D diameters follow the segments.
                    let l = section_length(s);
                    let (n, rev) = (s.nseg, s.reversed);
                    let diams = s.diam.clone();
                    for p in &mut s.pts {
                        let xx = (p.arc / l).min(1.0);
                        p.d = diams[morphology::node_index(n, xx, rev)] as f32;
                    }
                }
                self.dirty = true;
                Ok(())
            }
            _ => self.write_place(place, value),
        }
    }

    /// Reads a range variable at `x` by NEURON name (see [`Model::set_range`]).
    pub fn get_range(&mut self, id: SectionId, x: f64, name: &str) -> Result<f64> {
        let place = self.range_place(id, x, name)?;
        Ok(self.read_place(place))
    }

    fn range_place(&mut self, id: SectionId, x: f64, name: &str) -> Result<Place> {
        check_x(x)?;
        let s = self.sec(id)?;
        let seg = morphology::node_index(s.nseg, x, s.reversed);
        match name {
            "v" => {
                self.ensure_compiled()?;
                return Ok(Place::Node(self.node_exact(id.slot, x)));
            }
            "diam" => return Ok(Place::Diam { sec: id.slot, seg }),
            "cm" => return Ok(Place::Cm { sec: id.slot, seg }),
            _ => {}
        }
        // Ion variables.
        for (ion, inst) in &s.ions {
            if inst[seg] == NO_ION {
                continue;
            }
            let which = ion_var_index(&self.ions[*ion].name, name);
            if let Some(which) = which {
                return Ok(Place::Ion {
                    ion: *ion,
                    which,
                    inst: inst[seg] as usize,
                });
            }
        }
        let (base, idx) = split_index(name);
        for (m, inst) in &s.mechs {
            let spec = &self.mechs[*m].spec;
            if let Some(field) = base
                .strip_suffix(spec.name.as_str())
                .and_then(|f| f.strip_suffix('_'))
            {
                if let Some((col, len)) = spec.column_of(field) {
                    if idx < len {
                        return Ok(Place::Mech {
                            mech: *m,
                            col: col + idx,
                            inst: inst[seg] as usize,
                        });
                    }
                }
            }
        }
        Err(Error::UnknownField {
            name: name.into(),
            context: format!("section {}", s.name),
        })
    }

    fn read_place(&self, place: Place) -> f64 {
        match place {
            Place::T => self.t,
            Place::Node(i) => self.comp.v[i],
            Place::Cm { sec, seg } => self.sec_at(sec).cm[seg],
            Place::Diam { sec, seg } => self.sec_at(sec).diam[seg],
            Place::Mech { mech, col, inst } => self.mechs[mech].cols[col].get(inst),
            Place::Ion { ion, which, inst } => self.ions[ion].row(inst)[which],
        }
    }

    fn write_place(&mut self, place: Place, value: f64) -> Result<()> {
        match place {
            Place::T => self.t = value,
            Place::Node(i) => self.comp.v[i] = value,
            Place::Cm { sec, seg } => {
                self.slots[sec as usize].sec.as_mut().expect("live").cm[seg] = value;
                // The step reads the compiled copy; a dirty model rebuilds it.
                if !self.dirty {
                    if let Some(&k) = self.comp.cap_first.get(&sec) {
                        if let Some(c) = self.comp.cap_cm.get_mut(k as usize + seg) {
                            *c = value;
                        }
                    }
                }
            }
            Place::Diam { .. } => unreachable!("handled by set_range"),
            Place::Mech { mech, col, inst } => self.mechs[mech].cols[col].set(inst, value),
            Place::Ion { ion, which, inst } => {
                let mut row = self.ions[ion].row(inst);
                row[which] = value;
                self.ions[ion].set_row(inst, row);
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------------
    // Geometry queries.

    /// The area [µm²] of the segment containing `x`; 0 at x = 0 and x = 1.
    pub fn area(&mut self, id: SectionId, x: f64) -> Result<f64> {
        check_x(x)?;
        self.sec(id)?;
        if x == 0.0 || x == 1.0 {
            return Ok(0.0);
        }
        self.ensure_compiled()?;
        Ok(self.comp.area[self.node_exact(id.slot, x)])
    }

    /// The axial resistance [MΩ] between the node at `x` and its parent node
    /// (NEURON's `seg.ri()`); 1e30 for a root node.
    pub fn ri(&mut self, id: SectionId, x: f64) -> Result<f64> {
        check_x(x)?;
        self.sec(id)?;
        self.ensure_compiled()?;
        let r = self.comp.rinv[self.node_exact(id.slot, x)];
        Ok(if r != 0.0 { 1.0 / r } else { 1e30 })
    }

    /// The volume [µm³] of the segment containing `x` (NEURON's `seg.volume()`);
    /// 0 at x = 0 and x = 1.
    pub fn volume(&mut self, id: SectionId, x: f64) -> Result<f64> {
        check_x(x)?;
        self.sec(id)?;
        if x == 0.0 || x == 1.0 {
            return Ok(0.0);
        }
        self.ensure_compiled()?;
        let s = self.sec(id)?;
        let iseg = ((x * s.nseg as f64) as usize).min(s.nseg - 1);
        let l = morphology::clamp_length(section_length(s));
        let node = morphology::node_index(s.nseg, x, s.reversed);
        Ok(morphology::segment_volume(
            &s.pts,
            l,
            s.nseg,
            iseg,
            s.diam[node],
        ))
    }

    /// The diameter [µm] of the segment containing `x` (after 3-D averaging).
    pub fn diam(&mut self, id: SectionId, x: f64) -> Result<f64> {
        self.ensure_compiled()?;
        self.get_range(id, x, "diam")
    }

    /// NEURON's `topology()` printout, exactly (including the leading and
    /// trailing blank lines).
    pub fn topology(&self) -> Result<String> {
        let mut out = String::from("\n");
        let children = self.children_lists();
        for &s in &self.section_list {
            if self.sec_at(s).parent.is_none() {
                out.push('|');
                self.dashes(&mut out, &children, s, 0, '-');
            }
        }
        out.push('\n');
        Ok(out)
    }

    fn dashes(
        &self,
        out: &mut String,
        children: &HashMap<u32, Vec<u32>>,
        slot: u32,
        offset: i64,
        first: char,
    ) {
        let s = self.sec_at(slot);
        let i = i32::from(s.reversed);
        for _ in 0..offset.max(0) {
            out.push(' ');
        }
        out.push(first);
        for _ in 1..s.nseg {
            out.push('-');
        }
        if s.rallbranch == 1.0 {
            out.push_str(&format!("|       {}({}-{})\n", s.name, i, 1 - i));
        } else {
            out.push_str(&format!(
                "|       {}({}-{}) with {} rall branches\n",
                s.name,
                i,
                1 - i,
                fmt_g(s.rallbranch)
            ));
        }
        if let Some(ch) = children.get(&slot) {
            for &c in ch.iter().rev() {
                let x = self.sec_at(c).parent.expect("child").1;
                let idx = node_index_exact(s, x);
                out.push(' ');
                self.dashes(out, children, c, idx + offset + 1, '`');
            }
        }
    }

    /// Children of each section in NEURON's sibling order: increasing distance
    /// from the parent's 0 end, the most recently connected first among equals.
    fn children_lists(&self) -> HashMap<u32, Vec<u32>> {
        let mut map: HashMap<u32, Vec<u32>> = HashMap::new();
        for &s in &self.section_list {
            if let Some((p, _)) = self.sec_at(s).parent {
                map.entry(p).or_default().push(s);
            }
        }
        for (p, ch) in map.iter_mut() {
            let prev = self.sec_at(*p).reversed;
            ch.sort_by(|&a, &b| {
                let xa = self.sec_at(a).parent.expect("child").1;
                let xb = self.sec_at(b).parent.expect("child").1;
                let (xa, xb) = if prev { (1.0 - xa, 1.0 - xb) } else { (xa, xb) };
                xa.partial_cmp(&xb)
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then(self.sec_at(b).connect_seq.cmp(&self.sec_at(a).connect_seq))
            });
        }
        map
    }

    // ------------------------------------------------------------------
    // Compilation.

    fn node_exact(&self, slot: u32, x: f64) -> usize {
        let s = self.sec_at(slot);
        let nodes = &self.comp.sec_nodes[&slot];
        if x <= 0.0 || x >= 1.0 {
            let mut xx = x.clamp(0.0, 1.0);
            if s.reversed {
                xx = 1.0 - xx;
            }
            if xx == 0.0 {
                self.parent_node(slot) as usize
            } else {
                nodes[s.nseg] as usize
            }
        } else {
            nodes[morphology::node_index(s.nseg, x, s.reversed)] as usize
        }
    }

    fn parent_node(&self, slot: u32) -> u32 {
        match self.sec_at(slot).parent {
            None => self.comp.root_node[&slot],
            Some((p, x)) => self.node_exact(p, x) as u32,
        }
    }

    /// Rebuilds nodes, geometry and indices if anything structural changed.
    pub(crate) fn ensure_compiled(&mut self) -> Result<()> {
        if self.dirty {
            self.compile()?;
        }
        Ok(())
    }

    fn compile(&mut self) -> Result<()> {
        // Ion instances where point processes now sit (a reconnection may
        // have flipped a section's orientation).
        for id in self.sections() {
            self.ensure_section_ions(id)?;
        }
        // Keep voltages of nodes that survive.
        let mut old_v: HashMap<(u32, u32), f64> = HashMap::new();
        for (&slot, nodes) in &self.comp.sec_nodes {
            for (k, &n) in nodes.iter().enumerate() {
                if let Some(&v) = self.comp.v.get(n as usize) {
                    old_v.insert((slot, k as u32), v);
                }
            }
        }
        for (&slot, &n) in &self.comp.root_node {
            if let Some(&v) = self.comp.v.get(n as usize) {
                old_v.insert((slot, u32::MAX), v);
            }
        }
        let children = self.children_lists();
        // Cells (connected trees) in root creation order, each with its
        // sections breadth first and its node count.
        let roots: Vec<u32> = self
            .section_list
            .iter()
            .copied()
            .filter(|&s| self.sec_at(s).parent.is_none())
            .collect();
        let ncell = roots.len();
        let mut cell_of: HashMap<u32, usize> = HashMap::new();
        let mut cell_weight = vec![1usize; ncell];
        for (c, &r) in roots.iter().enumerate() {
            let mut queue = vec![r];
            let mut k = 0;
            while k < queue.len() {
                let sec = queue[k];
                cell_of.insert(sec, c);
                cell_weight[c] += self.sec_at(sec).nseg + 1;
                if let Some(ch) = children.get(&sec) {
                    queue.extend(ch.iter().copied());
                }
                k += 1;
            }
        }
        // Cell groups: contiguous runs of cells with about equal node counts.
        let ngroups = self.group_count(ncell);
        let group_cells = group::partition(&cell_weight, ngroups);
        let mut comp = Compiled {
            ncell,
            ..Compiled::default()
        };
        comp.pointers = std::mem::take(&mut self.comp.pointers);
        self.comp = comp;
        // Node order per group (NEURON's per-thread layout): the group's root
        // nodes, then its sections breadth first, parents before children.
        let mut node_key: Vec<(u32, u32)> = Vec::new();
        let mut order: Vec<u32> = Vec::new();
        let mut group_nodes = Vec::with_capacity(group_cells.len());
        for cells in &group_cells {
            let start = node_key.len();
            let first_sec = order.len();
            for c in cells.clone() {
                let s = roots[c];
                self.comp.root_node.insert(s, node_key.len() as u32);
                node_key.push((s, u32::MAX));
                self.comp.parent.push(0);
                order.push(s);
            }
            let mut k = first_sec;
            while k < order.len() {
                if let Some(ch) = children.get(&order[k]) {
                    order.extend(ch.iter().copied());
                }
                k += 1;
            }
            for k in first_sec..order.len() {
                let s = order[k];
                let sec = self.sec_at(s);
                let pnode = self.parent_node(s);
                let base = node_key.len() as u32;
                let nodes: Vec<u32> = (0..=sec.nseg as u32).map(|j| base + j).collect();
                for j in 0..=sec.nseg as u32 {
                    node_key.push((s, j));
                    self.comp
                        .parent
                        .push(if j == 0 { pnode } else { base + j - 1 });
                }
                self.comp.sec_nodes.insert(s, nodes);
            }
            group_nodes.push((start..node_key.len(), cells.len()));
        }
        // Instances in cell order (artificial cells first), the same for any
        // thread count, so each group's instances are one contiguous run.
        self.sort_instances_by_cell(&cell_of);
        let n = node_key.len();
        let c = &mut self.comp;
        c.area = NodeVec::filled(morphology::END_NODE_AREA, n);
        c.rinv = NodeVec::filled(0.0, n);
        c.diam = NodeVec::filled(0.0, n);
        c.a = NodeVec::filled(0.0, n);
        c.b = NodeVec::filled(0.0, n);
        c.rhs = NodeVec::filled(0.0, n);
        c.d = NodeVec::filled(0.0, n);
        c.v = node_key
            .iter()
            .map(|k| old_v.get(k).copied().unwrap_or(-65.0))
            .collect();
        // Geometry (nrn_area_ri).
        for &s in &order {
            let sec = self.slots[s as usize].sec.as_mut().expect("live");
            if let Some(j) = sec.diam.iter().position(|&d| d <= 0.0) {
                if sec.pts.len() < 2 {
                    return Err(Error::BadValue {
                        name: format!("{}.diam[{j}]", sec.name),
                        value: sec.diam[j],
                        reason: "diameter must be positive",
                    });
                }
            }
            let g = if sec.pts.len() > 1 {
                morphology::pt3d_geometry(&sec.pts, &mut sec.diam, sec.ra)
            } else {
                morphology::cylinder_geometry(
                    morphology::clamp_length(section_length(sec)),
                    &sec.diam,
                    sec.ra,
                )
            };
            let nodes = &self.comp.sec_nodes[&s];
            for j in 0..sec.nseg {
                let nd = nodes[j] as usize;
                self.comp.area[nd] = g.area[j];
                self.comp.diam[nd] = sec.diam[j];
            }
            for j in 0..=sec.nseg {
                self.comp.rinv[nodes[j] as usize] = g.rinv[j];
            }
        }
        // Connection coefficients (connection_coef).
        for &s in &order {
            let sec = self.slots[s as usize].sec.as_ref().expect("live");
            let nodes = self.comp.sec_nodes[&s].clone();
            let nd0 = nodes[0] as usize;
            let parea = self.comp.area[self.comp.parent[nd0] as usize];
            self.comp.a[nd0] = -1.0e2 * sec.rallbranch * self.comp.rinv[nd0] / parea;
            for j in 1..=sec.nseg {
                let nd = nodes[j] as usize;
                let area = self.comp.area[nodes[j - 1] as usize];
                self.comp.a[nd] = -1.0e2 * self.comp.rinv[nd] / area;
            }
            for j in 0..=sec.nseg {
                let nd = nodes[j] as usize;
                self.comp.b[nd] = -1.0e2 * self.comp.rinv[nd] / self.comp.area[nd];
            }
            self.comp
                .cap_first
                .insert(s, self.comp.cap_nodes.len() as u32);
            for j in 0..sec.nseg {
                self.comp.cap_nodes.push(nodes[j]);
                self.comp.cap_cm.push(sec.cm[j]);
            }
        }
        // Instance → node and → ion instance; ion styles.
        for ion in &mut self.ions {
            for st in &mut ion.style {
                *st = 0;
            }
            for i in 0..ion.count {
                if let Owner::Segment { sec, seg } = ion.owners[i] {
                    ion.node_index[i] = self.comp.sec_nodes[&sec][seg as usize];
                }
            }
        }
        for m in 0..self.mechs.len() {
            for i in 0..self.mechs[m].count {
                let (node, sec, seg) = match self.mechs[m].owners[i] {
                    Owner::Segment { sec, seg } => {
                        (self.comp.sec_nodes[&sec][seg as usize], sec, seg as usize)
                    }
                    Owner::Point { slot } => {
                        let pp = self.points[slot as usize].pp.as_ref().expect("live point");
                        match pp.loc {
                            Some((sec, x)) => {
                                let s = self.sec_at(sec);
                                (
                                    self.node_exact(sec, x) as u32,
                                    sec,
                                    morphology::node_index(s.nseg, x, s.reversed),
                                )
                            }
                            None => (0, u32::MAX, 0),
                        }
                    }
                };
                self.mechs[m].node_index[i] = node;
                for u in 0..self.mechs[m].ion_type.len() {
                    let ion = self.mechs[m].ion_type[u];
                    if sec == u32::MAX {
                        return Err(Error::Structure {
                            reason: format!(
                                "artificial cell {} cannot use ions",
                                self.mechs[m].spec.name
                            ),
                        });
                    }
                    let s = self.sec_at(sec);
                    let inst = s
                        .ions
                        .iter()
                        .find(|(ii, _)| *ii == ion)
                        .map_or(NO_ION, |(_, v)| v[seg]);
                    if inst == NO_ION {
                        return Err(Error::Structure {
                            reason: format!(
                                "internal: no {} ion instance for {} in section {}",
                                self.ions[ion].name, self.mechs[m].spec.name, s.name
                            ),
                        });
                    }
                    self.mechs[m].ion_index[u][i] = inst;
                    let use_ = &self.mechs[m].spec.ions[u];
                    let (cl, rl) = (use_.conc_level(), use_.rev_level());
                    let st = &mut self.ions[ion].style[inst as usize];
                    *st = ion::promote(*st, cl, rl);
                }
            }
        }
        // Artificial cells have no node; give them an empty node array? They
        // are indexed to node 0, which exists whenever any section exists.
        if n == 0
            && self
                .mechs
                .iter()
                .any(|m| m.count > 0 && m.spec.kind == MechKind::ArtificialCell)
        {
            self.comp.v = NodeVec::filled(0.0, 1);
            self.comp.rhs = NodeVec::filled(0.0, 1);
            self.comp.d = NodeVec::filled(0.0, 1);
            self.comp.area = NodeVec::filled(morphology::END_NODE_AREA, 1);
            self.comp.rinv = NodeVec::filled(0.0, 1);
            self.comp.diam = NodeVec::filled(0.0, 1);
            self.comp.a = NodeVec::filled(0.0, 1);
            self.comp.b = NodeVec::filled(0.0, 1);
            self.comp.parent = vec![0];
            self.comp.ncell = 1;
            group_nodes = vec![(0..1, 1)];
        }
        self.build_groups(&group_nodes)?;
        self.dirty = false;
        // POINTER tables.
        for m in 0..self.mechs.len() {
            let mut table = Vec::new();
            for p in 0..self.mechs[m].spec.pointers.len() {
                let mut col = Vec::with_capacity(self.mechs[m].count);
                for i in 0..self.mechs[m].count {
                    let addr = match self.mechs[m].pointer_targets[p][i].clone() {
                        None => std::ptr::null_mut(),
                        Some(t) => {
                            let place = self.resolve_pointer_target(&t)?;
                            self.check_pointer_group(m, p, i, place)?;
                            self.place_ptr(place)
                        }
                    };
                    col.push(addr);
                }
                table.push(col);
            }
            self.comp.pointers[m] = plugin::PointerTable(table);
        }
        for r in &mut self.records {
            r.place = None;
        }
        self.events.invalidate();
        Ok(())
    }

    fn place_ptr(&mut self, place: Place) -> *mut f64 {
        match place {
            Place::Node(i) => self.comp.v[i..].as_mut_ptr(),
            Place::Mech { mech, col, inst } => {
                self.mechs[mech].cols[col].as_mut_ptr().wrapping_add(inst)
            }
            Place::Ion { ion, which, inst } => self.ions[ion].columns_mut()[which]
                .as_mut_ptr()
                .wrapping_add(inst),
            Place::Cm { .. } | Place::Diam { .. } | Place::T => std::ptr::null_mut(),
        }
    }

    // ------------------------------------------------------------------
    // Kernels.

    pub(crate) fn call_phase(&mut self, m: usize, phase: Phase) -> Result<()> {
        let Some(k) = phase.kernel(&self.mechs[m].spec.kernels) else {
            return Ok(());
        };
        self.call_kernel(m, KernelKind::Phase(k), phase.name(), &mut [])
    }

    pub(crate) fn call_kernel(
        &mut self,
        m: usize,
        kind: KernelKind,
        phase: &'static str,
        weights: &mut [f64],
    ) -> Result<()> {
        let time = self.t;
        let store = &mut self.mechs[m];
        if store.count == 0 {
            return Ok(());
        }
        let mut slots: Vec<Option<&mut IonStore>> = self.ions.iter_mut().map(Some).collect();
        let mut ions = smallvec::SmallVec::new();
        for (u, &it) in store.ion_type.iter().enumerate() {
            let ion = slots[it].take().expect("distinct ions");
            let count = ion.count;
            let valence = ion.valence.unwrap_or(f64::NAN);
            ions.push(IonArgs {
                index: &store.ion_index[u],
                cols: ion.columns_mut().map(plugin::column_slice),
                count,
                valence,
            });
        }
        // NEURON checks a mechanism's TABLEs once per thread, through its
        // first instance (`_check_table_thread` with instance 0): DEPEND
        // variables are GLOBALs, so one instance decides for all.
        let count = if phase == Phase::TableCheck.name() {
            1
        } else {
            store.count
        };
        let c = &mut self.comp;
        let args = KernelArgs {
            mech_id: m as u32,
            count,
            t: time,
            dt: self.dt,
            celsius: self.celsius,
            secondorder: self.secondorder,
            node_index: &store.node_index,
            v: &mut c.v,
            rhs: &mut c.rhs,
            d: &mut c.d,
            area: &c.area,
            diam: &c.diam,
            fields: store.cols.iter_mut().map(plugin::column_slice).collect(),
            globals: &mut store.globals,
            ions,
            pointers: c.pointers[m].0.iter().map(Vec::as_slice).collect(),
            host: &mut self.host,
        };
        let (status, inst) = plugin::invoke(args, kind, weights)?;
        if status != abi::STATUS_OK {
            return Err(Error::Kernel {
                mechanism: self.mechs[m].spec.name.clone(),
                phase,
                instance: inst,
                status,
            });
        }
        if !self.host.requests.is_empty() {
            let reqs: Vec<HostRequest> = std::mem::take(&mut self.host.requests);
            for r in reqs {
                crate::events::handle_request(self, r, time)?;
            }
        }
        Ok(())
    }

    fn all_phase(&mut self, phase: Phase) -> Result<()> {
        for m in 0..self.mechs.len() {
            self.call_phase(m, phase)?;
        }
        Ok(())
    }

    fn init_ions(&mut self) -> Result<()> {
        let celsius = self.celsius;
        for ion in &mut self.ions {
            if ion.count == 0 {
                continue;
            }
            let Some(z) = ion.valence else {
                return Err(Error::Structure { reason: format!("{}_ion USEION CHARGE (or VALENCE) must be defined in at least one model using this ion", ion.name) });
            };
            for i in 0..ion.count {
                if ion.style[i] & ion::STYLE_CINIT != 0 {
                    ion.ci.set(i, ion.ci0);
                    ion.co.set(i, ion.co0);
                }
            }
            for i in 0..ion.count {
                if ion.style[i] & ion::STYLE_EINIT != 0 {
                    let e = ion::nernst(ion.ci.get(i), ion.co.get(i), z, celsius);
                    ion.erev.set(i, e);
                }
            }
        }
        Ok(())
    }

    /// NEURON's `finitialize(v_init)`: t = 0, every node's v = `v_init`, ions
    /// initialised, INITIAL blocks (mechanisms that write concentrations
    /// first, then the rest in registration order), NET_RECEIVE INITIAL
    /// blocks, the currents at t = 0, and the t = 0 sample of every recording.
    pub fn finitialize(&mut self, v_init: f64) -> Result<()> {
        if !v_init.is_finite() {
            return Err(Error::BadValue {
                name: "v_init".into(),
                value: v_init,
                reason: "must be finite",
            });
        }
        self.ensure_compiled()?;
        self.t = 0.0;
        self.all_phase(Phase::TableCheck)?;
        self.events.clear_queue();
        self.comp.v.iter_mut().for_each(|v| *v = v_init);
        self.all_phase(Phase::BeforeInitial)?;
        self.init_ions()?;
        let order: Vec<usize> = (0..self.mechs.len())
            .filter(|&m| self.mechs[m].spec.flags & abi::MECH_WRITES_CONC != 0)
            .chain(
                (0..self.mechs.len())
                    .filter(|&m| self.mechs[m].spec.flags & abi::MECH_WRITES_CONC == 0),
            )
            .collect();
        for m in order {
            self.call_phase(m, Phase::Init)?;
        }
        crate::events::init_net_events(self)?;
        self.all_phase(Phase::AfterInitial)?;
        crate::events::deliver_until(self, self.t)?;
        self.run_groups(group::Job::Init)?;
        for k in 0..self.records.len() {
            // A recording whose object was deleted keeps its samples.
            let probe = self.records[k].probe.clone();
            if !self.records[k].stopped
                && matches!(self.resolve_probe(&probe), Err(Error::StaleHandle { .. }))
            {
                self.records[k].stopped = true;
            }
            let r = &mut self.records[k];
            if !r.stopped {
                r.data.clear();
            }
            r.next = 0.0;
        }
        self.sample(SampleAt::Init)?;
        Ok(())
    }

    /// One fixed step of NEURON's `fadvance()` (see the crate docs for the
    /// order). The matrix, solve and state phases run on every cell group,
    /// in parallel when [`Model::set_nthread`] asked for several; events are
    /// handled before and after, from one queue.
    pub fn fadvance(&mut self) -> Result<()> {
        self.ensure_compiled()?;
        self.sample(SampleAt::StepStart)?;
        self.all_phase(Phase::TableCheck)?;
        let t0 = std::time::Instant::now();
        crate::events::deliver_net_events(self)?;
        self.phase_times.events += t0.elapsed();
        self.t += 0.5 * self.dt;
        self.run_groups(group::Job::Step)?;
        self.t += 0.5 * self.dt;
        self.sample(SampleAt::StepEnd)?;
        let t0 = std::time::Instant::now();
        crate::events::deliver_until(self, self.t)?;
        self.phase_times.events += t0.elapsed();
        self.phase_times.steps += 1;
        Ok(())
    }

    /// Sets the number of threads (NEURON's `ParallelContext.nthread(n)`):
    /// cells are split into at most `n` groups of contiguous cells with
    /// about equal node counts, advanced in parallel. Results are
    /// bit-identical for every `n`. Takes effect at the next compile (the
    /// model is marked dirty). 0 is an error.
    pub fn set_nthread(&mut self, n: usize) -> Result<()> {
        if n == 0 {
            return Err(Error::BadValue {
                name: "nthread".into(),
                value: 0.0,
                reason: "must be at least 1",
            });
        }
        if n > 1
            && self
                .pool
                .as_ref()
                .is_none_or(|p| p.current_num_threads() != n - 1)
        {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n - 1)
                .thread_name(|i| format!("nrn-group-{i}"))
                .build()
                .map_err(|e| Error::Structure {
                    reason: format!("cannot start {n} threads: {e}"),
                })?;
            self.pool = Some(pool);
        }
        if n == 1 {
            self.pool = None;
        }
        self.nthread = n;
        self.dirty = true;
        Ok(())
    }

    /// The number of threads asked for with [`Model::set_nthread`] (default 1).
    pub fn nthread(&self) -> usize {
        self.nthread
    }

    /// The number of cell groups actually used: at most `nthread`, at most
    /// the number of cells, and 1 when a mechanism in use with per-step
    /// kernels is not flagged `MECH_THREADSAFE`. Compiles the model if needed.
    pub fn ngroups(&mut self) -> Result<usize> {
        self.ensure_compiled()?;
        Ok(self.comp.groups.len().max(1))
    }

    /// Time spent in each part of the fixed step since creation or the last
    /// [`Model::reset_phase_times`]. Measuring costs a few clock reads per
    /// step; reading is free.
    pub fn phase_times(&self) -> PhaseTimes {
        self.phase_times
    }

    /// Zeroes the counters of [`Model::phase_times`].
    pub fn reset_phase_times(&mut self) {
        self.phase_times = PhaseTimes::default();
    }

    /// NEURON's `continuerun(tstop)`: `fadvance()` while t < tstop − dt/2.
    pub fn continuerun(&mut self, tstop: f64) -> Result<()> {
        if !tstop.is_finite() {
            return Err(Error::BadValue {
                name: "tstop".into(),
                value: tstop,
                reason: "must be finite",
            });
        }
        while self.t < tstop - self.dt / 2.0 {
            self.fadvance()?;
        }
        Ok(())
    }

    /// `finitialize(v_init)` then `continuerun(tstop)` (NEURON's `run()`).
    pub fn run(&mut self, v_init: f64, tstop: f64) -> Result<()> {
        self.finitialize(v_init)?;
        self.continuerun(tstop)
    }

    /// The voltage of every node (node order), for diagnostics.
    pub fn node_voltages(&mut self) -> Result<&[f64]> {
        self.ensure_compiled()?;
        Ok(&self.comp.v)
    }

    pub(crate) fn v_at_node(&self, node: usize) -> f64 {
        self.comp.v[node]
    }

    pub(crate) fn point_mech_inst(&self, id: PointId) -> Result<(usize, u32)> {
        let pp = self.pp(id)?;
        Ok((pp.mech, pp.inst))
    }

    pub(crate) fn point_of_instance(&self, mech: usize, inst: u32) -> Option<u32> {
        match self.mechs.get(mech)?.owners.get(inst as usize)? {
            Owner::Point { slot } => Some(*slot),
            Owner::Segment { .. } => None,
        }
    }

    pub(crate) fn mech_kernels(&self, mech: usize) -> abi::NrnKernels {
        self.mechs[mech].spec.kernels
    }

    pub(crate) fn mech_name(&self, mech: usize) -> &str {
        &self.mechs[mech].spec.name
    }

    pub(crate) fn section_node(&mut self, id: SectionId, x: f64) -> Result<usize> {
        check_x(x)?;
        self.sec(id)?;
        self.ensure_compiled()?;
        Ok(self.node_exact(id.slot, x))
    }

    pub(crate) fn section_alive(&self, id: SectionId) -> bool {
        self.sec(id).is_ok()
    }

    pub(crate) fn point_alive(&self, id: PointId) -> bool {
        self.pp(id).is_ok()
    }

    // ------------------------------------------------------------------
    // Recording.

    /// Records a variable; returns a handle for [`Model::recorded`]. Samples
    /// start at the next `finitialize`.
    pub fn record(&mut self, probe: Probe, sampling: Sampling) -> Result<RecordId> {
        if let Sampling::Interval(d) = sampling {
            if !(d > 0.0 && d.is_finite()) {
                return Err(Error::BadValue {
                    name: "record interval".into(),
                    value: d,
                    reason: "must be positive",
                });
            }
        }
        // Validate now.
        self.resolve_probe(&probe)?;
        self.records.push(Recording {
            probe,
            sampling,
            place: None,
            next: 0.0,
            data: Vec::new(),
            stopped: false,
        });
        Ok(RecordId(self.records.len() - 1))
    }

    fn resolve_probe(&mut self, probe: &Probe) -> Result<Place> {
        match probe {
            Probe::T => Ok(Place::T),
            Probe::V(s, x) => self.range_place(*s, *x, "v"),
            Probe::Range(s, x, n) => self.range_place(*s, *x, n),
            Probe::Point(p, n) => self.point_place(*p, n),
        }
    }

    /// Takes the samples due. `EveryStep` recordings sample at
    /// `finitialize` and at the end of every step. `Interval(Δ)` recordings
    /// behave like NEURON's record events at t = 0, Δ, 2Δ, …: one sample per
    /// event, taken at `finitialize` for t = 0, then when the event is
    /// delivered — at the end of the step whose t reached it, or, when
    /// roundoff left t just short, at the start of the next step (events up
    /// to t + dt/2). A run whose accumulated t stops short of k·Δ has no
    /// sample there, exactly as in NEURON.
    fn sample(&mut self, when: SampleAt) -> Result<()> {
        let half = self.dt / 2.0;
        // The delivery times of the record events of one step (t itself is
        // recorded as the event's time, as NEURON sets t to it).
        let mut event_times: Vec<f64> = Vec::new();
        for k in 0..self.records.len() {
            if self.records[k].stopped {
                continue;
            }
            let take = match (self.records[k].sampling, when) {
                (Sampling::EveryStep, SampleAt::Init | SampleAt::StepEnd) => 1,
                (Sampling::EveryStep, SampleAt::StepStart) => 0,
                (Sampling::Interval(d), SampleAt::Init) => {
                    self.records[k].next = d;
                    1
                }
                (Sampling::Interval(d), SampleAt::StepStart | SampleAt::StepEnd) => {
                    let limit = if when == SampleAt::StepStart {
                        self.t + half
                    } else {
                        self.t
                    };
                    let mut n = 0;
                    event_times.clear();
                    while self.records[k].next <= limit {
                        event_times.push(self.records[k].next);
                        self.records[k].next += d;
                        n += 1;
                    }
                    n
                }
            };
            if take == 0 {
                continue;
            }
            let place = match self.records[k].place {
                Some(p) => p,
                None => {
                    let probe = self.records[k].probe.clone();
                    match self.resolve_probe(&probe) {
                        Ok(p) => {
                            self.records[k].place = Some(p);
                            p
                        }
                        // The recorded object was deleted: stop recording.
                        Err(Error::StaleHandle { .. }) => {
                            self.records[k].stopped = true;
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                }
            };
            let v = self.read_place(place);
            let interval = matches!(self.records[k].sampling, Sampling::Interval(_));
            for j in 0..take {
                let value = if interval && place == Place::T && when != SampleAt::Init {
                    event_times[j]
                } else {
                    v
                };
                self.records[k].data.push(value);
            }
        }
        Ok(())
    }

    /// Stops a recording; its samples stay readable (NEURON's
    /// `Vector.play_remove`/dropping the recording Vector).
    pub fn unrecord(&mut self, id: RecordId) -> Result<()> {
        let r = self
            .records
            .get_mut(id.0)
            .ok_or(Error::StaleHandle { what: "recording" })?;
        r.stopped = true;
        r.place = None;
        Ok(())
    }

    /// Sets `t` [ms] (NEURON's `h.t = …`), e.g. before continuing a run from
    /// a later time. Must be finite.
    pub fn set_t(&mut self, t: f64) -> Result<()> {
        if !t.is_finite() {
            return Err(Error::BadValue {
                name: "t".into(),
                value: t,
                reason: "must be finite",
            });
        }
        self.t = t;
        Ok(())
    }

    /// The spec of a registered mechanism (fields, globals, ions, kind,
    /// NET_RECEIVE argument count), by any name `insert` accepts.
    pub fn mechanism_spec(&self, name: &str) -> Result<&MechanismSpec> {
        Ok(&self.mechs[self.mech_id(name)?].spec)
    }

    /// The samples of a recording so far.
    pub fn recorded(&self, id: RecordId) -> Result<&[f64]> {
        self.records
            .get(id.0)
            .map(|r| r.data.as_slice())
            .ok_or(Error::StaleHandle { what: "recording" })
    }

    /// Writes recordings as CSV columns with a header line of `names`
    /// (shorter columns are padded with empty cells).
    pub fn write_csv<W: std::io::Write>(
        &self,
        out: &mut W,
        columns: &[(&str, RecordId)],
    ) -> Result<()> {
        let io = |e: std::io::Error| Error::Io {
            reason: e.to_string(),
        };
        let data: Vec<&[f64]> = columns
            .iter()
            .map(|(_, id)| self.recorded(*id))
            .collect::<Result<_>>()?;
        let header: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
        writeln!(out, "{}", header.join(",")).map_err(io)?;
        let rows = data.iter().map(|d| d.len()).max().unwrap_or(0);
        for r in 0..rows {
            let line: Vec<String> = data
                .iter()
                .map(|d| d.get(r).map(|v| format!("{v:.17e}")).unwrap_or_default())
                .collect();
            writeln!(out, "{}", line.join(",")).map_err(io)?;
        }
        Ok(())
    }
}

pub(crate) fn point_slot(p: PointId) -> u32 {
    p.slot
}

pub(crate) fn point_id_of_slot(m: &Model, slot: u32) -> PointId {
    PointId {
        slot,
        generation: m.points[slot as usize].generation,
    }
}

impl Model {
    pub(crate) fn set_t_internal(&mut self, t: f64) {
        self.t = t;
    }
}

fn section_length(s: &Section) -> f64 {
    if s.pts.is_empty() {
        s.length
    } else {
        s.pts[s.pts.len() - 1].arc
    }
}

/// NEURON's `node_index_exact` for the topology printout (−1 for the parent end).
fn node_index_exact(s: &Section, x: f64) -> i64 {
    let nseg = s.nseg as i64;
    if x == 0.0 {
        if s.reversed {
            nseg
        } else {
            -1
        }
    } else if x == 1.0 {
        if s.reversed {
            -1
        } else {
            nseg
        }
    } else {
        morphology::node_index(s.nseg, x, s.reversed) as i64
    }
}

/// The centre of the segment containing `x` (0 and 1 stay).
fn snap(x: f64, nseg: usize) -> f64 {
    if x == 0.0 || x == 1.0 {
        x
    } else {
        (morphology::node_index(nseg, x, false) as f64 + 0.5) / nseg as f64
    }
}

/// Splits `name[k]` into (`name`, k); plain names give index 0.
fn split_index(name: &str) -> (&str, usize) {
    if let Some(open) = name.find('[') {
        if let Some(inner) = name[open + 1..].strip_suffix(']') {
            if let Ok(k) = inner.trim().parse::<usize>() {
                return (&name[..open], k);
            }
            return (name, usize::MAX);
        }
    }
    (name, 0)
}
