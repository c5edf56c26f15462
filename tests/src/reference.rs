//! The NEURON 9.0.2 reference files of `tests/data/neuron/` (format:
//! `tests/data/neuron/README.md`, `format_version` 1) as Rust values.
//!
//! Nothing here simulates: [`load_reference`] reads and checks one file, and
//! the structs mirror the JSON keys one to one so that the README is the
//! documentation of every field.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One reference file.
#[derive(Debug, Clone)]
pub struct Reference {
    /// The file it was read from.
    pub path: PathBuf,
    /// The protocol name (the file stem, or `corpus/<path>` for corpus files).
    pub protocol: String,
    /// `h.nrnversion()` of the NEURON that wrote it (absent in corpus
    /// failure files).
    pub neuron_version: Option<String>,
    /// The script that wrote it, relative to the repository root.
    pub script: Option<String>,
    /// What to build and how to run it; `None` when the file records no
    /// simulation (a corpus file whose `status` is not `"ok"`).
    pub simulation: Option<Simulation>,
    /// Trace name → values at every `sample_every`-th step.
    pub traces: BTreeMap<String, Vec<f64>>,
    /// Spike source name → spike times [ms].
    pub spikes: BTreeMap<String, Vec<f64>>,
    /// Free-text remarks of the script.
    pub notes: Vec<String>,
    /// The corpus-only keys, `None` for the hand-made protocols.
    pub corpus: Option<CorpusInfo>,
    /// POINTER links made with `h.setpointer` (top-level `pointers`).
    pub pointers: Vec<PointerLink>,
}

/// `h.setpointer(<target>, "<pointer>", <point>)`: the POINTER `pointer`
/// of point process `point` refers to `target` (`"<sec>(<x>).v"`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct PointerLink {
    /// The point process name.
    pub point: String,
    /// The POINTER variable.
    pub pointer: String,
    /// What it points to, in trace-name form.
    pub target: String,
}

/// How a protocol was run.
#[derive(Debug, Clone)]
pub struct Simulation {
    /// The time step [ms].
    pub dt: f64,
    /// The end time [ms].
    pub tstop: f64,
    /// The number of `fadvance` calls after `finitialize`.
    pub nsteps: usize,
    /// `h.secondorder` (0 or 2).
    pub secondorder: i32,
    /// `h.celsius` [°C].
    pub celsius: f64,
    /// The argument of `finitialize` [mV].
    pub v_init: f64,
    /// Traces keep every `sample_every`-th step (1 unless a corpus file).
    pub sample_every: usize,
    /// What was built.
    pub model: ModelBlock,
}

impl Simulation {
    /// The number of samples every trace holds: `nsteps / sample_every + 1`.
    pub fn samples(&self) -> usize {
        self.nsteps / self.sample_every + 1
    }
}

/// The corpus-only keys of a reference file.
#[derive(Debug, Clone, Deserialize)]
pub struct CorpusInfo {
    /// The .mod file, relative to `.cache/corpus`.
    pub mod_file: String,
    /// The SUFFIX / POINT_PROCESS / ARTIFICIAL_CELL name (absent when the
    /// script found none).
    pub mechanism: Option<String>,
    /// What the mechanism is (absent when the script found none).
    pub kind: Option<CorpusKind>,
    /// `"ok"`, or why NEURON made no simulation.
    pub status: String,
    /// Whether pas was inserted next to the mechanism.
    #[serde(default)]
    pub with_pas: Option<bool>,
}

impl CorpusInfo {
    /// Whether the file holds a simulation.
    pub fn is_ok(&self) -> bool {
        self.status == "ok"
    }
}

/// The kind of a corpus mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CorpusKind {
    /// `SUFFIX`.
    Density,
    /// `POINT_PROCESS`.
    PointProcess,
    /// `ARTIFICIAL_CELL`.
    ArtificialCell,
}

impl std::fmt::Display for CorpusKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CorpusKind::Density => "density",
            CorpusKind::PointProcess => "point process",
            CorpusKind::ArtificialCell => "artificial cell",
        })
    }
}

/// The `model` block: everything the script built.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelBlock {
    /// Sections in creation order.
    pub sections: Vec<SectionBlock>,
    /// Point processes.
    #[serde(default)]
    pub point_processes: Vec<PointBlock>,
    /// Artificial cells.
    #[serde(default)]
    pub artificial_cells: Vec<PointBlock>,
    /// NetCons, synaptic (`nc`) and spike recorders (`spikes:<source>`).
    #[serde(default)]
    pub netcons: Vec<NetConBlock>,
    /// Mechanism globals by NEURON name (`usetable_hh`).
    #[serde(default)]
    pub globals: BTreeMap<String, f64>,
}

/// How a section's geometry was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GeometryKind {
    /// `L` and `diam` set.
    Cylinder,
    /// `L` set, then `seg.diam` per segment.
    SegDiam,
    /// `pt3dadd` points.
    Pt3d,
}

/// A value that is either uniform or one per segment.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum PerSegment {
    /// The same value in every segment.
    Uniform(f64),
    /// One value per segment, in increasing x.
    List(Vec<f64>),
}

impl PerSegment {
    /// The value of segment `k`, or `None` if the list is too short.
    pub fn at(&self, k: usize) -> Option<f64> {
        match self {
            PerSegment::Uniform(v) => Some(*v),
            PerSegment::List(l) => l.get(k).copied(),
        }
    }
}

/// A density-mechanism PARAMETER: a scalar (uniform or per segment) or an
/// array PARAMETER (one array per segment).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// A scalar, the same in every segment.
    Uniform(f64),
    /// A scalar per segment.
    PerSegment(Vec<f64>),
    /// An array PARAMETER: one array per segment.
    ArrayPerSegment(Vec<Vec<f64>>),
}

/// A point-process PARAMETER: a scalar or an array.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum PointParam {
    /// A scalar.
    Scalar(f64),
    /// An array PARAMETER.
    Array(Vec<f64>),
}

/// One section of the `model` block.
#[derive(Debug, Clone, Deserialize)]
pub struct SectionBlock {
    /// The section name.
    pub name: String,
    /// The number of segments.
    pub nseg: usize,
    /// The length [µm] (computed from the points for pt3d sections).
    #[serde(rename = "L")]
    pub length: f64,
    /// Axial resistivity [Ω·cm].
    #[serde(rename = "Ra")]
    pub ra: f64,
    /// Specific capacitance [µF/cm²].
    pub cm: PerSegment,
    /// How the geometry was given.
    pub geometry: GeometryKind,
    /// `seg.diam` of every segment [µm] (input for cylinder and seg_diam,
    /// derived for pt3d).
    pub diam: PerSegment,
    /// The 3-D points `[x, y, z, diam]` of a pt3d section.
    #[serde(default)]
    pub pt3d: Option<Vec<[f64; 4]>>,
    /// The parent section, `None` for a root.
    pub parent: Option<String>,
    /// Where on the parent it is attached.
    pub parent_x: Option<f64>,
    /// Which end of this section is attached.
    pub child_x: Option<f64>,
    /// Density mechanism → PARAMETER name (without suffix) → value.
    #[serde(default)]
    pub mechanisms: BTreeMap<String, BTreeMap<String, ParamValue>>,
    /// Ion → variable (`ena`, `nai`, `nao`) → value right after
    /// `finitialize`.
    #[serde(default)]
    pub ions_after_init: BTreeMap<String, BTreeMap<String, PerSegment>>,
}

/// A point process or artificial cell.
#[derive(Debug, Clone, Deserialize)]
pub struct PointBlock {
    /// The name traces and NetCons use.
    pub name: String,
    /// The NEURON class (`IClamp`, `NetStim`, ...).
    #[serde(rename = "type")]
    pub type_name: String,
    /// True for artificial cells.
    pub artificial: bool,
    /// The section it sits in (point processes only).
    pub section: Option<String>,
    /// The location as passed (point processes only).
    pub x: Option<f64>,
    /// The node NEURON placed it on.
    #[serde(default)]
    pub node_x: Option<f64>,
    /// Every PARAMETER by NMODL name (IClamp's `del`).
    #[serde(default)]
    pub params: BTreeMap<String, PointParam>,
}

/// Where a NetCon's events come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NetConSource {
    /// A voltage threshold detector at `section(x)`.
    Voltage {
        /// The section.
        section: String,
        /// The location as passed.
        x: f64,
        /// The node NEURON used.
        #[serde(default)]
        node_x: Option<f64>,
    },
    /// A point process or artificial cell that calls `net_event`.
    Object {
        /// The point name.
        name: String,
    },
}

/// One NetCon.
#[derive(Debug, Clone, Deserialize)]
pub struct NetConBlock {
    /// `nc` for synaptic connections, `spikes:<source>` for recorders.
    pub name: String,
    /// The source.
    pub source: NetConSource,
    /// The target point name, `None` for a spike recorder.
    pub target: Option<String>,
    /// The threshold [mV].
    pub threshold: f64,
    /// The delay [ms].
    pub delay: f64,
    /// The weight vector.
    pub weight: Vec<f64>,
}

impl NetConBlock {
    /// The source name of a spike recorder (`spikes:<source>`), if it is one.
    pub fn recorded_source(&self) -> Option<&str> {
        self.name.strip_prefix("spikes:")
    }
}

/// The file as written, every top-level key optional so that corpus
/// failure files (which hold no simulation) parse too.
#[derive(Deserialize)]
struct RawReference {
    format_version: u32,
    protocol: String,
    #[serde(default)]
    neuron_version: Option<String>,
    #[serde(default)]
    script: Option<String>,
    #[serde(default)]
    dt: Option<f64>,
    #[serde(default)]
    tstop: Option<f64>,
    #[serde(default)]
    nsteps: Option<usize>,
    #[serde(default)]
    secondorder: Option<i32>,
    #[serde(default)]
    celsius: Option<f64>,
    #[serde(default)]
    v_init: Option<f64>,
    #[serde(default)]
    sample_every: Option<usize>,
    #[serde(default)]
    model: Option<ModelBlock>,
    #[serde(default)]
    pointers: Vec<PointerLink>,
    #[serde(default)]
    traces: BTreeMap<String, Vec<f64>>,
    #[serde(default)]
    spikes: BTreeMap<String, Vec<f64>>,
    #[serde(default)]
    notes: Vec<String>,
    #[serde(default)]
    mod_file: Option<String>,
    #[serde(default)]
    mechanism: Option<String>,
    #[serde(default)]
    kind: Option<CorpusKind>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    with_pas: Option<bool>,
}

/// Reads and checks one reference file. Runs once per protocol; touches
/// only the file. Errors name the file and say what is wrong: unreadable,
/// invalid JSON, an unknown `format_version`, a missing run key, or a trace
/// whose length is not `nsteps / sample_every + 1`.
pub fn load_reference(path: impl AsRef<Path>) -> Result<Reference, String> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read the NEURON reference: {e}", path.display()))?;
    let raw: RawReference = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}: not a reference file of the documented format: {e}",
            path.display()
        )
    })?;
    if raw.format_version != 1 {
        return Err(format!(
            "{}: format_version {} is not supported (only 1)",
            path.display(),
            raw.format_version
        ));
    }
    let corpus = match (raw.mod_file, raw.status) {
        (Some(mod_file), Some(status)) => Some(CorpusInfo {
            mod_file,
            mechanism: raw.mechanism,
            kind: raw.kind,
            status,
            with_pas: raw.with_pas,
        }),
        (None, None) => None,
        _ => {
            return Err(format!(
                "{}: a corpus file needs both `mod_file` and `status`",
                path.display()
            ))
        }
    };
    let simulated = match &corpus {
        Some(c) => c.is_ok(),
        None => true,
    };
    let simulation = if simulated {
        let missing = |key: &str| format!("{}: the key `{key}` is missing", path.display());
        let sim = Simulation {
            dt: raw.dt.ok_or_else(|| missing("dt"))?,
            tstop: raw.tstop.ok_or_else(|| missing("tstop"))?,
            nsteps: raw.nsteps.ok_or_else(|| missing("nsteps"))?,
            secondorder: raw.secondorder.ok_or_else(|| missing("secondorder"))?,
            celsius: raw.celsius.ok_or_else(|| missing("celsius"))?,
            v_init: raw.v_init.ok_or_else(|| missing("v_init"))?,
            sample_every: raw.sample_every.unwrap_or(1),
            model: raw.model.ok_or_else(|| missing("model"))?,
        };
        if sim.sample_every == 0 {
            return Err(format!("{}: sample_every is 0", path.display()));
        }
        for (name, values) in &raw.traces {
            if values.len() != sim.samples() {
                return Err(format!(
                    "{}: trace {name} has {} values, expected nsteps / sample_every + 1 = {}",
                    path.display(),
                    values.len(),
                    sim.samples()
                ));
            }
        }
        Some(sim)
    } else {
        None
    };
    Ok(Reference {
        path: path.to_path_buf(),
        protocol: raw.protocol,
        neuron_version: raw.neuron_version,
        script: raw.script,
        simulation,
        traces: raw.traces,
        spikes: raw.spikes,
        notes: raw.notes,
        corpus,
        pointers: raw.pointers,
    })
}
