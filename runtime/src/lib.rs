//! The simulator: sections, segments, NEURON's fixed-step cable numerics on
//! structure-of-arrays mechanism storage, ions, events and recording.
//!
//! See ARCHITECTURE.md for where this sits in the data flow.

pub mod abi;
