//! Rebuilding a reference protocol in a [`runtime::Model`] and running it
//! exactly as NEURON did: `finitialize(v_init)` then `nsteps` fixed steps,
//! recording every trace the reference names.

use crate::reference::{
    GeometryKind, NetConSource, ParamValue, PerSegment, PointParam, Reference, SectionBlock,
};
use runtime::{abi, Model, NetConId, NetSource, PointId, Probe, RecordId, Sampling, SectionId};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// How to run a protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// Worker threads (`Model::set_nthread`); 1 runs on the caller's thread.
    pub nthread: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { nthread: 1 }
    }
}

/// What a trace measures, which picks its tolerance (see
/// [`crate::Tolerances`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceKind {
    /// `t` [ms].
    Time,
    /// A membrane potential or reversal potential [mV].
    Voltage,
    /// A STATE of a mechanism, or an ion concentration [mM].
    State,
    /// Anything else: currents [mA/cm² or nA], conductances, ASSIGNED
    /// variables.
    Other,
}

impl std::fmt::Display for TraceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TraceKind::Time => "time",
            TraceKind::Voltage => "voltage",
            TraceKind::State => "state",
            TraceKind::Other => "other",
        })
    }
}

/// One trace of a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Trace {
    /// Samples at the reference's indices (every `sample_every`-th step).
    Recorded {
        /// What it measures.
        kind: TraceKind,
        /// The samples.
        values: Vec<f64>,
    },
    /// Our API cannot probe this variable; the reason says why (e.g. IntFire
    /// `M()` is a FUNCTION, not a stored variable).
    Unsupported {
        /// Why.
        reason: String,
    },
}

/// The outcome of [`build_and_run`].
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    /// Every trace named in the reference, by the same name.
    pub traces: BTreeMap<String, Trace>,
    /// Spike times [ms] of every recorded source (`spikes:<source>` NetCons).
    pub spikes: BTreeMap<String, Vec<f64>>,
    /// Ion variables right after `finitialize`, for the reference's
    /// `ions_after_init`: `<sec>(<x>).<var>` at each segment centre → value
    /// (or why it could not be read).
    pub ions_after_init: BTreeMap<String, Result<f64, String>>,
    /// Remarks on what the runner did (globals skipped, ...).
    pub notes: Vec<String>,
}

/// The x of the centre of segment `k` of `nseg`.
fn seg_x(k: usize, nseg: usize) -> f64 {
    (k as f64 + 0.5) / nseg as f64
}

/// `<field>_<suffix>` with an array index kept at the end (`a_mech[2]`).
fn range_name(var: &str, mech: &str) -> String {
    match var.find('[') {
        Some(open) => format!("{}_{mech}{}", &var[..open], &var[open..]),
        None => format!("{var}_{mech}"),
    }
}

/// A model built from a reference's `model` block, with its named handles,
/// before `finitialize`.
pub struct BuiltModel {
    /// The model.
    pub model: Model,
    /// Section name → handle.
    pub sections: HashMap<String, SectionId>,
    /// Point name → (handle, NEURON class).
    pub points: HashMap<String, (PointId, String)>,
    /// Spike recorder NetCons (`spikes:<source>`) as (source name, handle).
    pub spike_recorders: Vec<(String, NetConId)>,
    /// Remarks (globals that no registered mechanism owns).
    pub notes: Vec<String>,
}

fn section_geometry(m: &mut Model, id: SectionId, sec: &SectionBlock) -> Result<(), String> {
    let name = &sec.name;
    let err = |what: &str, e: runtime::Error| format!("section {name}: {what}: {e}");
    m.set_nseg(id, sec.nseg).map_err(|e| err("nseg", e))?;
    match sec.geometry {
        GeometryKind::Cylinder => {
            let PerSegment::Uniform(d) = sec.diam else {
                return Err(format!("section {name}: a cylinder needs one diam"));
            };
            m.set_length(id, sec.length).map_err(|e| err("L", e))?;
            m.set_diam(id, d).map_err(|e| err("diam", e))?;
        }
        GeometryKind::SegDiam => {
            m.set_length(id, sec.length).map_err(|e| err("L", e))?;
            for k in 0..sec.nseg {
                let d = sec
                    .diam
                    .at(k)
                    .ok_or_else(|| format!("section {name}: diam has fewer than nseg values"))?;
                m.set_range(id, seg_x(k, sec.nseg), "diam", d)
                    .map_err(|e| err("seg.diam", e))?;
            }
        }
        GeometryKind::Pt3d => {
            let pts = sec
                .pt3d
                .as_ref()
                .ok_or_else(|| format!("section {name}: geometry pt3d without `pt3d` points"))?;
            for p in pts {
                m.pt3dadd(id, p[0], p[1], p[2], p[3])
                    .map_err(|e| err("pt3dadd", e))?;
            }
        }
    }
    m.set_ra(id, sec.ra).map_err(|e| err("Ra", e))?;
    if let PerSegment::Uniform(cm) = sec.cm {
        m.set_cm(id, cm).map_err(|e| err("cm", e))?;
    }
    Ok(())
}

/// Sets per-segment cm and inserts the density mechanisms with their
/// parameters; runs after every section is connected, as NEURON's scripts
/// insert after building.
fn section_mechanisms(m: &mut Model, id: SectionId, sec: &SectionBlock) -> Result<(), String> {
    let name = &sec.name;
    if let PerSegment::List(_) = sec.cm {
        for k in 0..sec.nseg {
            let cm = sec
                .cm
                .at(k)
                .ok_or_else(|| format!("section {name}: cm has fewer than nseg values"))?;
            m.set_range(id, seg_x(k, sec.nseg), "cm", cm)
                .map_err(|e| format!("section {name}: cm: {e}"))?;
        }
    }
    for (mech, params) in &sec.mechanisms {
        m.insert(id, mech)
            .map_err(|e| format!("section {name}: insert {mech}: {e}"))?;
        for (p, value) in params {
            for k in 0..sec.nseg {
                let x = seg_x(k, sec.nseg);
                let mut set = |field: String, v: f64| {
                    m.set_range(id, x, &field, v)
                        .map_err(|e| format!("section {name}({x}): {field}: {e}"))
                };
                let short = || format!("section {name}: {p}_{mech} has fewer than nseg values");
                match value {
                    ParamValue::Uniform(v) => set(range_name(p, mech), *v)?,
                    ParamValue::PerSegment(l) => {
                        set(range_name(p, mech), *l.get(k).ok_or_else(short)?)?
                    }
                    ParamValue::ArrayPerSegment(l) => {
                        for (j, v) in l.get(k).ok_or_else(short)?.iter().enumerate() {
                            set(range_name(&format!("{p}[{j}]"), mech), *v)?;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Builds the model a reference describes, without running it (what
/// [`build_and_run`] does before recording). Runs once per protocol.
/// `setup` receives an empty [`Model`] and must register every mechanism
/// the protocol uses; then dt, celsius and secondorder are set, sections are
/// created in order (geometry: cylinder, seg_diam or pt3d; Ra; uniform cm)
/// and each is connected to its parent right away, then per-segment cm and
/// the density mechanisms with every PARAMETER (`<name>_<suffix>`, arrays
/// as `<name>_<suffix>[k]`) are set, point processes and artificial cells
/// are created with their parameters, then the NetCons, then the globals
/// whose mechanism is registered (others get a note: every reference lists
/// `usetable_hh` because NEURON has hh built in).
pub fn build_model(
    reference: &Reference,
    setup: &dyn Fn(&mut Model) -> Result<(), String>,
) -> Result<BuiltModel, String> {
    let sim = reference
        .simulation
        .as_ref()
        .ok_or_else(|| match &reference.corpus {
            Some(c) => format!(
                "{}: no simulation in the reference ({})",
                reference.protocol, c.status
            ),
            None => format!("{}: no simulation in the reference", reference.protocol),
        })?;
    let mut m = Model::new();
    setup(&mut m).map_err(|e| format!("setting up the model: {e}"))?;
    m.set_dt(sim.dt).map_err(|e| format!("dt: {e}"))?;
    m.set_celsius(sim.celsius)
        .map_err(|e| format!("celsius: {e}"))?;
    m.set_secondorder(sim.secondorder)
        .map_err(|e| format!("secondorder: {e}"))?;
    let model = &sim.model;
    let mut notes = Vec::new();

    // Sections, in creation order; each is connected right after it is
    // built, as the reference scripts do (so a parent precedes its children).
    let mut secs: HashMap<String, SectionId> = HashMap::new();
    for sec in &model.sections {
        if secs.contains_key(&sec.name) {
            return Err(format!("section {} is listed twice", sec.name));
        }
        let id = m
            .create_section(&sec.name)
            .map_err(|e| format!("section {}: {e}", sec.name))?;
        section_geometry(&mut m, id, sec)?;
        secs.insert(sec.name.clone(), id);
        if sec.parent.is_some() {
            connect(&mut m, &secs, sec)?;
        }
    }
    for sec in &model.sections {
        section_mechanisms(&mut m, secs[&sec.name], sec)?;
    }

    // Point processes and artificial cells.
    let mut points = HashMap::new();
    for p in model.point_processes.iter().chain(&model.artificial_cells) {
        let id = if p.artificial {
            m.artificial_cell(&p.type_name)
        } else {
            let sec = p
                .section
                .as_ref()
                .ok_or_else(|| format!("point {}: no section", p.name))?;
            let sid = *secs
                .get(sec)
                .ok_or_else(|| format!("point {}: unknown section {sec}", p.name))?;
            let x = p.x.ok_or_else(|| format!("point {}: no x", p.name))?;
            m.point_process(&p.type_name, sid, x)
        }
        .map_err(|e| format!("point {} ({}): {e}", p.name, p.type_name))?;
        for (param, value) in &p.params {
            let mut set = |field: String, v: f64| {
                m.set_point(id, &field, v)
                    .map_err(|e| format!("point {} ({}): {field}: {e}", p.name, p.type_name))
            };
            match value {
                PointParam::Scalar(v) => set(param.clone(), *v)?,
                PointParam::Array(l) => {
                    for (j, v) in l.iter().enumerate() {
                        set(format!("{param}[{j}]"), *v)?;
                    }
                }
            }
        }
        if points
            .insert(p.name.clone(), (id, p.type_name.clone()))
            .is_some()
        {
            return Err(format!("point {} is listed twice", p.name));
        }
    }

    // NetCons.
    let mut spike_ncs = Vec::new();
    for nc in &model.netcons {
        let source = match &nc.source {
            NetConSource::Voltage { section, x, .. } => NetSource::Voltage(
                *secs
                    .get(section)
                    .ok_or_else(|| format!("NetCon {}: unknown section {section}", nc.name))?,
                *x,
            ),
            NetConSource::Object { name } => NetSource::Point(
                points
                    .get(name)
                    .ok_or_else(|| format!("NetCon {}: unknown source {name}", nc.name))?
                    .0,
            ),
        };
        let target = match &nc.target {
            Some(t) => Some(
                points
                    .get(t)
                    .ok_or_else(|| format!("NetCon {}: unknown target {t}", nc.name))?
                    .0,
            ),
            None => None,
        };
        let id = m
            .netcon(source, target, nc.threshold, nc.delay, &nc.weight)
            .map_err(|e| format!("NetCon {}: {e}", nc.name))?;
        if let Some(src) = nc.recorded_source() {
            spike_ncs.push((src.to_string(), id));
        }
    }

    // Globals such as `usetable_hh`.
    let registered: BTreeSet<String> = m.mechanism_names().iter().map(|s| s.to_string()).collect();
    for (g, v) in &model.globals {
        let split = registered.iter().find_map(|mech| {
            g.strip_suffix(mech.as_str())
                .and_then(|var| var.strip_suffix('_'))
                .filter(|var| !var.is_empty())
                .map(|var| (mech.clone(), var.to_string()))
        });
        match split {
            Some((mech, var)) => m
                .set_global(&mech, &var, *v)
                .map_err(|e| format!("global {g}: {e}"))?,
            // NEURON has hh built in, so every reference lists usetable_hh;
            // without that mechanism the global has no effect on this model.
            None => notes.push(format!(
                "global {g} = {v} not set: no registered mechanism owns it"
            )),
        }
    }
    // POINTER links (only voltages are used by the reference data).
    for link in &reference.pointers {
        let (pid, _) = points
            .get(&link.point)
            .ok_or_else(|| format!("pointer of unknown point process {}", link.point))?;
        let target = link
            .target
            .strip_suffix(").v")
            .and_then(|t| t.split_once('('))
            .and_then(|(sec, x)| Some((*secs.get(sec)?, x.parse::<f64>().ok()?)))
            .ok_or_else(|| format!("pointer target {} is not `<sec>(<x>).v`", link.target))?;
        m.set_pointer(
            *pid,
            &link.pointer,
            runtime::PointerTarget::V(target.0, target.1),
        )
        .map_err(|e| format!("setpointer {}.{}: {e}", link.point, link.pointer))?;
    }
    Ok(BuiltModel {
        model: m,
        sections: secs,
        points,
        spike_recorders: spike_ncs,
        notes,
    })
}

fn connect(
    m: &mut Model,
    secs: &HashMap<String, SectionId>,
    sec: &SectionBlock,
) -> Result<(), String> {
    let parent = sec.parent.as_deref().unwrap_or_default();
    let parent_id = *secs.get(parent).ok_or_else(|| {
        format!(
            "section {}: parent {parent} is not a section listed before it",
            sec.name
        )
    })?;
    let (px, cx) = (
        sec.parent_x
            .ok_or_else(|| format!("section {}: parent without parent_x", sec.name))?,
        sec.child_x
            .ok_or_else(|| format!("section {}: parent without child_x", sec.name))?,
    );
    m.connect(secs[&sec.name], cx, parent_id, px)
        .map_err(|e| format!("section {}: connect to {parent}({px}): {e}", sec.name))
}

/// The ion names of every registered mechanism.
fn ion_names(m: &Model) -> BTreeSet<String> {
    m.mechanism_names()
        .iter()
        .filter_map(|n| m.mechanism_spec(n).ok())
        .flat_map(|s| s.ions.iter().map(|i| i.name.clone()))
        .collect()
}

/// The kind of an ion variable (`ena`, `nai`, `nao`, `ina`), if it is one.
fn ion_var_kind(ions: &BTreeSet<String>, var: &str) -> Option<TraceKind> {
    ions.iter().find_map(|ion| {
        if var.strip_prefix('e') == Some(ion.as_str()) {
            Some(TraceKind::Voltage)
        } else if var
            .strip_prefix(ion.as_str())
            .is_some_and(|r| r == "i" || r == "o")
        {
            Some(TraceKind::State)
        } else if var.strip_prefix('i') == Some(ion.as_str()) {
            Some(TraceKind::Other)
        } else {
            None
        }
    })
}

/// The kind of field `var` (without `[k]`) of mechanism `mech`.
fn field_kind(m: &Model, mech: &str, var: &str) -> TraceKind {
    let base = var.split('[').next().unwrap_or(var);
    match m.mechanism_spec(mech) {
        Ok(spec) => match spec.fields.iter().find(|f| f.name == base) {
            Some(f) if f.kind == abi::FIELD_STATE => TraceKind::State,
            _ => TraceKind::Other,
        },
        Err(_) => TraceKind::Other,
    }
}

/// The probe and kind for a trace name of the reference format, or why it
/// cannot be probed. An `Err` from the outer result is a name that does not
/// refer to anything of the model (a reference/runner mismatch).
fn probe(
    b: &BuiltModel,
    ions: &BTreeSet<String>,
    name: &str,
) -> Result<Result<(Probe, TraceKind), String>, String> {
    if name == "t" {
        return Ok(Ok((Probe::T, TraceKind::Time)));
    }
    if let Some((loc, rest)) = name.split_once(").") {
        let (sec, x) = loc
            .split_once('(')
            .ok_or_else(|| format!("trace {name}: expected <sec>(<x>).<var>"))?;
        let sid = *b
            .sections
            .get(sec)
            .ok_or_else(|| format!("trace {name}: unknown section {sec}"))?;
        let x: f64 = x
            .parse()
            .map_err(|_| format!("trace {name}: {x} is not a number"))?;
        return Ok(Ok(match rest.split_once('.') {
            None if rest == "v" => (Probe::V(sid, x), TraceKind::Voltage),
            None => (
                Probe::Range(sid, x, rest.to_string()),
                ion_var_kind(ions, rest).unwrap_or(TraceKind::Other),
            ),
            Some((mech, var)) => (
                Probe::Range(sid, x, range_name(var, mech)),
                field_kind(&b.model, mech, var),
            ),
        }));
    }
    let (point, var) = name
        .split_once('.')
        .ok_or_else(|| format!("trace {name}: expected <point>.<var>"))?;
    let (pid, ty) = b
        .points
        .get(point)
        .ok_or_else(|| format!("trace {name}: unknown point {point}"))?;
    if (var == "M" || var == "I") && ty.starts_with("IntFire") {
        return Ok(Err(format!(
            "{ty}'s {var}() is a FUNCTION of the cell's state at t, which the runtime cannot record (only stored fields)"
        )));
    }
    Ok(Ok((
        Probe::Point(*pid, var.to_string()),
        field_kind(&b.model, ty, var),
    )))
}

/// Builds the model a reference describes and runs it as NEURON did.
///
/// Runs once per protocol, single-threaded unless `options.nthread > 1`.
/// `setup` receives an empty [`Model`] and must register every mechanism
/// the protocol uses (built-ins, JIT-compiled ones, test kernels); the model
/// is built by [`build_model`]. Then every trace of the reference is
/// recorded, `finitialize(v_init)` is called, the ion variables listed in
/// `ions_after_init` are read, and `fadvance` is called exactly `nsteps`
/// times. Traces are kept at every `sample_every`-th step to line up with
/// the reference. A trace our API cannot probe becomes
/// [`Trace::Unsupported`] instead of an error; anything else that fails is
/// an `Err` naming the protocol, the object and the runtime's reason.
pub fn build_and_run(
    reference: &Reference,
    setup: &dyn Fn(&mut Model) -> Result<(), String>,
    options: &RunOptions,
) -> Result<RunResult, String> {
    let ctx = |e: String| format!("{}: {e}", reference.protocol);
    let mut b = build_model(reference, setup).map_err(ctx)?;
    let sim = reference
        .simulation
        .as_ref()
        .expect("build_model checked it");
    if options.nthread > 1 {
        b.model
            .set_nthread(options.nthread)
            .map_err(|e| ctx(format!("set_nthread({}): {e}", options.nthread)))?;
    }
    let ions = ion_names(&b.model);
    let mut traces = BTreeMap::new();
    let mut recorded: Vec<(String, RecordId, TraceKind)> = Vec::new();
    // Variables of artificial cells (and `t` in a model without sections)
    // were read by NEURON's script in Python after `finitialize` and after
    // each `fadvance`, i.e. after the events delivered at the end of the
    // step; read ours at the same moments instead of recording them.
    let artificial: BTreeSet<&str> = sim
        .model
        .artificial_cells
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    let mut sampled: Vec<(String, runtime::PointId, String, TraceKind, Vec<f64>)> = Vec::new();
    for name in reference.traces.keys() {
        if let Some((point, var)) = name.split_once('.') {
            if artificial.contains(point) && !name.contains(").") {
                if let Ok(Ok((Probe::Point(pid, _), kind))) = probe(&b, &ions, name) {
                    sampled.push((name.clone(), pid, var.to_string(), kind, Vec::new()));
                    continue;
                }
            }
        }
        match probe(&b, &ions, name).map_err(ctx)? {
            Ok((p, kind)) => match b.model.record(p, Sampling::EveryStep) {
                Ok(id) => recorded.push((name.clone(), id, kind)),
                Err(e) => {
                    traces.insert(
                        name.clone(),
                        Trace::Unsupported {
                            reason: format!("the runtime cannot record it: {e}"),
                        },
                    );
                }
            },
            Err(reason) => {
                traces.insert(name.clone(), Trace::Unsupported { reason });
            }
        }
    }
    b.model
        .finitialize(sim.v_init)
        .map_err(|e| ctx(format!("finitialize({}): {e}", sim.v_init)))?;
    let mut ions_after_init = BTreeMap::new();
    for sec in &sim.model.sections {
        let sid = b.sections[&sec.name];
        for vars in sec.ions_after_init.values() {
            for var in vars.keys() {
                for k in 0..sec.nseg {
                    let x = seg_x(k, sec.nseg);
                    let value = b.model.get_range(sid, x, var).map_err(|e| e.to_string());
                    ions_after_init.insert(format!("{}({x}).{var}", sec.name), value);
                }
            }
        }
    }
    let sample = |b: &mut BuiltModel,
                  sampled: &mut Vec<(String, runtime::PointId, String, TraceKind, Vec<f64>)>|
     -> Result<(), String> {
        for (name, pid, var, _, values) in sampled.iter_mut() {
            let v = b
                .model
                .get_point(*pid, var)
                .map_err(|e| ctx(format!("{name}: {e}")))?;
            values.push(v);
        }
        Ok(())
    };
    sample(&mut b, &mut sampled)?;
    for step in 0..sim.nsteps {
        b.model.fadvance().map_err(|e| {
            ctx(format!(
                "fadvance (step {} of {}): {e}",
                step + 1,
                sim.nsteps
            ))
        })?;
        sample(&mut b, &mut sampled)?;
    }
    for (name, _, _, kind, values) in sampled {
        let values: Vec<f64> = values.iter().step_by(sim.sample_every).copied().collect();
        traces.insert(name, Trace::Recorded { kind, values });
    }
    for (name, id, kind) in recorded {
        let all = b
            .model
            .recorded(id)
            .map_err(|e| ctx(format!("{name}: {e}")))?;
        let values: Vec<f64> = all.iter().step_by(sim.sample_every).copied().collect();
        traces.insert(name, Trace::Recorded { kind, values });
    }
    let mut spikes = BTreeMap::new();
    for (src, id) in &b.spike_recorders {
        let times = b
            .model
            .spikes(*id)
            .map_err(|e| ctx(format!("spikes of {src}: {e}")))?;
        spikes.insert(src.clone(), times.to_vec());
    }
    Ok(RunResult {
        traces,
        spikes,
        ions_after_init,
        notes: b.notes,
    })
}
