//! Comparing a [`RunResult`] with the NEURON reference it was built from.

use crate::reference::Reference;
use crate::run::{RunResult, Trace, TraceKind};
use std::fmt;

/// Absolute tolerances by [`TraceKind`].
///
/// The defaults are issue 4's acceptance: |ΔV| ≤ 1e-6 mV for membrane and
/// reversal potentials and 1e-9 for STATEs (gating variables, synaptic
/// conductance states, ion concentrations in mM). Currents (mA/cm² for
/// density mechanisms, nA for point processes), conductances and other
/// ASSIGNED variables get 1e-6 in their NEURON units: they are products of
/// voltages and states, and with conductances of at most ~0.1 S/cm² or a few
/// µS a 1e-6 mV voltage error moves them by less than 1e-6, so 1e-6 fails
/// only on a real difference. `t` gets 1e-9 ms: it is a sum of dt's and
/// should agree to the last bits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerances {
    /// For `t` [ms].
    pub time: f64,
    /// For membrane and reversal potentials [mV].
    pub voltage: f64,
    /// For STATEs and ion concentrations.
    pub state: f64,
    /// For currents, conductances and other ASSIGNED variables.
    pub other: f64,
}

impl Default for Tolerances {
    fn default() -> Self {
        Tolerances {
            time: 1e-9,
            voltage: 1e-6,
            state: 1e-9,
            other: 1e-6,
        }
    }
}

impl Tolerances {
    /// The tolerance of a trace of this kind.
    pub fn for_kind(&self, kind: TraceKind) -> f64 {
        match kind {
            TraceKind::Time => self.time,
            TraceKind::Voltage => self.voltage,
            TraceKind::State => self.state,
            TraceKind::Other => self.other,
        }
    }
}

/// How one trace compared.
#[derive(Debug, Clone, PartialEq)]
pub enum TraceStatus {
    /// Both sides have the same number of samples.
    Compared {
        /// max |ours − NEURON| over all samples (infinite if ours is not finite).
        max_abs_diff: f64,
        /// The sample index of that maximum.
        worst_index: usize,
        /// Our value there.
        ours: f64,
        /// NEURON's value there.
        neuron: f64,
        /// The first sample index where the difference exceeds the tolerance.
        first_exceeding: Option<usize>,
    },
    /// The sample counts differ.
    LengthMismatch {
        /// Ours.
        ours: usize,
        /// NEURON's.
        neuron: usize,
    },
    /// The runner could not probe this variable.
    Unsupported(String),
    /// The run result has no trace of this name.
    Missing,
}

/// One trace's comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceComparison {
    /// The trace name of the reference (ion checks after `finitialize` end in
    /// ` @init`).
    pub name: String,
    /// What it measures, when known.
    pub kind: Option<TraceKind>,
    /// The absolute tolerance applied.
    pub tolerance: f64,
    /// The outcome.
    pub status: TraceStatus,
}

impl TraceComparison {
    /// Whether the trace was compared and stayed within its tolerance.
    pub fn passed(&self) -> bool {
        matches!(
            self.status,
            TraceStatus::Compared {
                first_exceeding: None,
                ..
            }
        )
    }

    /// The max |Δ| if the trace was compared.
    pub fn max_abs_diff(&self) -> Option<f64> {
        match self.status {
            TraceStatus::Compared { max_abs_diff, .. } => Some(max_abs_diff),
            _ => None,
        }
    }
}

/// One spike source's comparison: same count, and every spike within dt/2
/// of NEURON's (the same step).
#[derive(Debug, Clone, PartialEq)]
pub struct SpikeComparison {
    /// The source name (`soma(0.5)`, `ns`).
    pub source: String,
    /// Our spike times, `None` if we recorded none for this source.
    pub ours: Option<Vec<f64>>,
    /// NEURON's spike times.
    pub neuron: Vec<f64>,
    /// max |Δt| over the paired spikes (0 if there are none).
    pub max_abs_diff: f64,
    /// Same count and every |Δt| < dt/2.
    pub passed: bool,
}

/// The comparison of one protocol; `Display` prints a table that says what
/// failed and where.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The protocol name.
    pub protocol: String,
    /// The time step [ms] (spikes must agree within dt/2).
    pub dt: f64,
    /// NEURON's `t` at each sample index, when the reference has it.
    pub times: Vec<f64>,
    /// Every trace, in name order, then the ion checks after `finitialize`.
    pub traces: Vec<TraceComparison>,
    /// Every spike source.
    pub spikes: Vec<SpikeComparison>,
    /// The runner's notes.
    pub notes: Vec<String>,
}

impl Comparison {
    /// Whether every trace was compared and within tolerance, and every
    /// spike source matched. An unsupported or missing trace fails.
    pub fn passed(&self) -> bool {
        self.traces.iter().all(TraceComparison::passed) && self.spikes.iter().all(|s| s.passed)
    }

    /// The traces and spike sources that did not pass.
    pub fn failures(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .traces
            .iter()
            .filter(|t| !t.passed())
            .map(|t| t.name.clone())
            .collect();
        out.extend(
            self.spikes
                .iter()
                .filter(|s| !s.passed)
                .map(|s| format!("spikes {}", s.source)),
        );
        out
    }

    /// The largest max |ΔV| over membrane-potential traces (`….v`), if any
    /// was compared.
    pub fn max_v_diff(&self) -> Option<f64> {
        self.traces
            .iter()
            .filter(|t| t.name.ends_with(".v") && t.kind == Some(TraceKind::Voltage))
            .filter_map(TraceComparison::max_abs_diff)
            .reduce(f64::max)
    }

    /// A one-line description of the first failure, for tables.
    pub fn first_failure(&self) -> Option<String> {
        if let Some(t) = self.traces.iter().find(|t| !t.passed()) {
            return Some(match &t.status {
                TraceStatus::Compared {
                    max_abs_diff,
                    first_exceeding,
                    ..
                } => format!(
                    "{}: max |Δ| {max_abs_diff:.3e} > {:.0e}{}",
                    t.name,
                    t.tolerance,
                    first_exceeding
                        .map(|k| format!(" from {}", self.when(k)))
                        .unwrap_or_default()
                ),
                TraceStatus::LengthMismatch { ours, neuron } => {
                    format!("{}: {ours} samples, NEURON {neuron}", t.name)
                }
                TraceStatus::Unsupported(r) => format!("{}: unsupported: {r}", t.name),
                TraceStatus::Missing => format!("{}: not recorded", t.name),
            });
        }
        self.spikes.iter().find(|s| !s.passed).map(|s| {
            format!(
                "spikes {}: {} vs NEURON {}",
                s.source,
                s.ours
                    .as_ref()
                    .map_or("none recorded".into(), |o| format!("{} spikes", o.len())),
                s.neuron.len()
            )
        })
    }

    /// "index k (t = …)" for sample k.
    fn when(&self, k: usize) -> String {
        match self.times.get(k) {
            Some(t) => format!("index {k} (t = {t})"),
            None => format!("index {k}"),
        }
    }
}

fn compare_values(ours: &[f64], neuron: &[f64], tol: f64) -> TraceStatus {
    if ours.len() != neuron.len() {
        return TraceStatus::LengthMismatch {
            ours: ours.len(),
            neuron: neuron.len(),
        };
    }
    let mut worst = (0.0f64, 0usize);
    let mut first_exceeding = None;
    for (k, (a, b)) in ours.iter().zip(neuron).enumerate() {
        let d = (a - b).abs();
        // A NaN or infinity of ours must never look like agreement.
        let d = if d.is_finite() { d } else { f64::INFINITY };
        if d > worst.0 {
            worst = (d, k);
        }
        if d > tol && first_exceeding.is_none() {
            first_exceeding = Some(k);
        }
    }
    let (max_abs_diff, worst_index) = worst;
    TraceStatus::Compared {
        max_abs_diff,
        worst_index,
        ours: ours.get(worst_index).copied().unwrap_or(f64::NAN),
        neuron: neuron.get(worst_index).copied().unwrap_or(f64::NAN),
        first_exceeding,
    }
}

/// Compares a run with its reference, trace by trace and spike source by
/// spike source. Runs after [`crate::build_and_run`]; pure.
///
/// Every reference trace is compared with the run's trace of the same name
/// (max |Δ|, where it is largest, and the first index beyond the tolerance
/// of its kind); the ion variables the reference lists under
/// `ions_after_init` are compared as one-sample traces named
/// `<sec>(<x>).<var> @init`. Spike sources pass with the same count and
/// every time within dt/2 of NEURON's (the same step).
pub fn compare(reference: &Reference, result: &RunResult, tolerances: &Tolerances) -> Comparison {
    let mut traces = Vec::new();
    for (name, neuron) in &reference.traces {
        let (kind, status) = match result.traces.get(name) {
            Some(Trace::Recorded { kind, values }) => (
                Some(*kind),
                compare_values(values, neuron, tolerances.for_kind(*kind)),
            ),
            Some(Trace::Unsupported { reason }) => (None, TraceStatus::Unsupported(reason.clone())),
            None => (None, TraceStatus::Missing),
        };
        traces.push(TraceComparison {
            name: name.clone(),
            kind,
            tolerance: kind.map_or(0.0, |k| tolerances.for_kind(k)),
            status,
        });
    }
    if let Some(sim) = &reference.simulation {
        for sec in &sim.model.sections {
            for vars in sec.ions_after_init.values() {
                for (var, value) in vars {
                    for k in 0..sec.nseg {
                        let x = (k as f64 + 0.5) / sec.nseg as f64;
                        let key = format!("{}({x}).{var}", sec.name);
                        let kind = if var.starts_with('e') {
                            TraceKind::Voltage
                        } else {
                            TraceKind::State
                        };
                        let tol = tolerances.for_kind(kind);
                        let status = match (result.ions_after_init.get(&key), value.at(k)) {
                            (Some(Ok(ours)), Some(neuron)) => {
                                compare_values(&[*ours], &[neuron], tol)
                            }
                            (Some(Err(e)), _) => TraceStatus::Unsupported(e.clone()),
                            (None, _) => TraceStatus::Missing,
                            (_, None) => TraceStatus::LengthMismatch {
                                ours: sec.nseg,
                                neuron: 0,
                            },
                        };
                        traces.push(TraceComparison {
                            name: format!("{key} @init"),
                            kind: Some(kind),
                            tolerance: tol,
                            status,
                        });
                    }
                }
            }
        }
    }
    let dt = reference.simulation.as_ref().map_or(0.0, |s| s.dt);
    let mut sources: Vec<&String> = reference
        .spikes
        .keys()
        .chain(result.spikes.keys())
        .collect();
    sources.sort();
    sources.dedup();
    let spikes = sources
        .into_iter()
        .map(|src| {
            let neuron = reference.spikes.get(src).cloned().unwrap_or_default();
            let ours = result.spikes.get(src).cloned();
            let (max_abs_diff, passed) = match &ours {
                Some(o) if o.len() == neuron.len() => {
                    let d = o
                        .iter()
                        .zip(&neuron)
                        .map(|(a, b)| {
                            let d = (a - b).abs();
                            if d.is_finite() {
                                d
                            } else {
                                f64::INFINITY
                            }
                        })
                        .fold(0.0, f64::max);
                    (d, d < dt / 2.0)
                }
                _ => (f64::INFINITY, false),
            };
            SpikeComparison {
                source: src.clone(),
                ours,
                neuron,
                max_abs_diff,
                passed,
            }
        })
        .collect();
    Comparison {
        protocol: reference.protocol.clone(),
        dt,
        times: reference.traces.get("t").cloned().unwrap_or_default(),
        traces,
        spikes,
        notes: result.notes.clone(),
    }
}

fn list(times: &[f64]) -> String {
    const SHOWN: usize = 6;
    let mut s: Vec<String> = times.iter().take(SHOWN).map(|t| format!("{t}")).collect();
    if times.len() > SHOWN {
        s.push(format!("… ({} in all)", times.len()));
    }
    format!("[{}]", s.join(", "))
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} ({} traces, {} spike sources)",
            self.protocol,
            if self.passed() { "PASS" } else { "FAIL" },
            self.traces.len(),
            self.spikes.len()
        )?;
        let width = self
            .traces
            .iter()
            .map(|t| t.name.chars().count())
            .chain(Some(5))
            .max()
            .unwrap_or(5);
        writeln!(
            f,
            "  {:<width$}  {:<7}  {:>10}  {:>7}  result",
            "trace", "kind", "max |Δ|", "tol"
        )?;
        for t in &self.traces {
            let kind = t.kind.map_or("-".to_string(), |k| k.to_string());
            match &t.status {
                TraceStatus::Compared {
                    max_abs_diff,
                    worst_index,
                    ours,
                    neuron,
                    first_exceeding,
                } => {
                    write!(
                        f,
                        "  {:<width$}  {kind:<7}  {max_abs_diff:>10.3e}  {:>7.0e}  ",
                        t.name, t.tolerance
                    )?;
                    match first_exceeding {
                        None => writeln!(f, "ok")?,
                        Some(k) => writeln!(
                            f,
                            "FAIL: exceeds from {}; worst at {}: ours {ours}, NEURON {neuron}",
                            self.when(*k),
                            self.when(*worst_index)
                        )?,
                    }
                }
                TraceStatus::LengthMismatch { ours, neuron } => writeln!(
                    f,
                    "  {:<width$}  {kind:<7}  {:>10}  {:>7}  FAIL: {ours} samples, NEURON {neuron}",
                    t.name, "-", "-"
                )?,
                TraceStatus::Unsupported(reason) => writeln!(
                    f,
                    "  {:<width$}  {kind:<7}  {:>10}  {:>7}  UNSUPPORTED: {reason}",
                    t.name, "-", "-"
                )?,
                TraceStatus::Missing => writeln!(
                    f,
                    "  {:<width$}  {kind:<7}  {:>10}  {:>7}  FAIL: not in the run result",
                    t.name, "-", "-"
                )?,
            }
        }
        for s in &self.spikes {
            let ours = s.ours.as_deref().map_or("none recorded".to_string(), list);
            writeln!(
                f,
                "  spikes {}: {} — ours {ours}, NEURON {}, max |Δt| {:.3e} (limit dt/2 = {})",
                s.source,
                if s.passed { "ok" } else { "FAIL" },
                list(&s.neuron),
                s.max_abs_diff,
                self.dt / 2.0
            )?;
        }
        for n in &self.notes {
            writeln!(f, "  note: {n}")?;
        }
        Ok(())
    }
}
