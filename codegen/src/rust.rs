//! The Rust back end (being written).
