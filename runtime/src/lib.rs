//! The simulator: sections, segments, NEURON's fixed-step cable numerics on
//! structure-of-arrays mechanism storage, ions, events and recording.
//!
//! See ARCHITECTURE.md for where this sits in the data flow.
//!
//! # The fixed step (NEURON 9.0.2's `nrn_fixed_step_thread`)
//!
//! [`Model::fadvance`] does, in this order: TABLE checks; threshold detection
//! and delivery of events up to t + dt/2; t += dt/2; `setup_tree_matrix`
//! (rhs and d zeroed, BEFORE BREAKPOINT, ion currents zeroed and reversal
//! potentials recomputed where a concentration is written, every
//! mechanism's `cur` in registration order, capacitance `d += 0.001·cj·cm`,
//! axial terms); the Hines solve; for secondorder 2 the ionic currents
//! `+= dI/dv·Δv`; `v += rhs` (or `v += 2·rhs` for secondorder ≥ 1, with
//! cj = 2/dt); t += dt/2; every mechanism's `state`; AFTER SOLVE; BEFORE STEP;
//! recording; delivery of events up to t.
//!
//! # Threads
//!
//! [`Model::set_nthread`] splits the cells into groups advanced in parallel
//! (NEURON's `ParallelContext.nthread`); from t + dt/2 to the end of
//! BEFORE STEP each group runs on its own thread, and everything to do with
//! events runs from one queue on the calling thread. Results are
//! bit-identical for every thread count. [`Model::phase_times`] reports
//! where the time goes.
//!
//! # Example
//!
//! ```
//! use runtime::{Model, Probe, Sampling};
//! let mut m = Model::new();
//! let soma = m.create_section("soma")?;
//! m.set_length(soma, 10.0)?;
//! m.set_diam(soma, 10.0)?;
//! let v = m.record(Probe::V(soma, 0.5), Sampling::EveryStep)?;
//! m.run(-65.0, 1.0)?;
//! // No membrane current: v stays at v_init.
//! assert!(m.recorded(v)?.iter().all(|&x| x == -65.0));
//! assert_eq!(m.recorded(v)?.len(), 41);
//! # Ok::<(), runtime::Error>(())
//! ```

#![allow(clippy::needless_range_loop)] // index loops mirror NEURON's node loops

pub mod abi;
mod error;
mod events;
pub mod ion;
mod mechanism;
mod model;
pub mod morphology;
pub mod plugin;

pub use error::{Error, Result};
pub use events::{NetConId, NetSource};
pub use mechanism::{FieldSpec, IonUse, KeepAlive, MechKind, MechanismSpec};
pub use model::{
    arch_dir, library_file_name, LibraryInfo, Model, PhaseTimes, PointId, PointerTarget, Probe,
    RecordId, Sampling, SectionId,
};
