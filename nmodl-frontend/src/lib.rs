//! The NMODL front end: source text → AST with spans → resolved mechanism model.
//!
//! See ARCHITECTURE.md for where this sits in the data flow.

pub mod ast;
pub mod diagnostic;
pub mod driver;
pub mod model;
pub mod parser;
pub mod render;
pub mod resolve;
pub mod source;
pub mod units;
