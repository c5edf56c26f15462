//! `nrnivmodl-rs`: the command-line front of the NMODL compiler.
//!
//! Without a subcommand it is NEURON's `nrnivmodl`: it builds
//! `<arch>/libnrnmech.so` from the .mod files of the current folder or of the
//! folders and files named (`build` is the same, spelled out). `check` parses
//! and resolves `.mod` files and prints every diagnostic; `demo` compiles the
//! bundled mechanisms, runs the seed example of NEURON's scripting tutorial
//! and writes its voltage trace as CSV and PNG.

//!
//! The library half holds the commands themselves, so that the test suites
//! build libraries exactly as the command does ([`build::run`]).

pub mod build;
pub mod check;
pub mod demo;

use clap::ValueEnum;
use std::path::PathBuf;

/// When to colour the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour when standard output is a terminal.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// What to print as JSON for each file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Emit {
    /// The syntax tree (INCLUDEs spliced).
    Ast,
    /// The resolved mechanism model.
    Model,
}

/// Arguments of `check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// .mod files, or folders whose *.mod files are checked.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Also look for .mod files in subfolders of the given folders.
    #[arg(long)]
    pub recursive: bool,
    /// Colour the diagnostics.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Print the AST or the resolved model of each file as JSON.
    #[arg(long, value_enum)]
    pub emit: Option<Emit>,
}

/// What `--emit` writes instead of building.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BuildEmit {
    /// The generated Rust source.
    Rust,
}

/// Arguments of the build (the default command).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BuildArgs {
    /// .mod files, or folders whose *.mod files are built (default: the
    /// current folder).
    pub paths: Vec<PathBuf>,
    /// Write <arch>/libnrnmech.so under DIR instead of the current folder.
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Parallel jobs (lowering threads and concurrent rustc runs).
    #[arg(short = 'j', long)]
    pub jobs: Option<usize>,
    /// `--emit rust`: write the generated Rust source to <arch>/nrnmech.rs
    /// and stop.
    #[arg(long, value_enum, value_name = "WHAT")]
    pub emit: Option<BuildEmit>,
    /// Check that every file lowers and JIT-compiles; build nothing.
    #[arg(long)]
    pub jit_only: bool,
    /// Print which units are cached, compiled and pruned.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// The rustc to use (default: `rustc` on PATH). The compiler it stands
    /// for is identified once and recorded in the build folder, then
    /// identified again only when the file it resolves to, rustup's
    /// settings and overrides or the toolchain's files change.
    #[arg(long, value_name = "PATH")]
    pub rustc: Option<PathBuf>,
}

/// Arguments of `demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Folder for demo_voltage.csv and demo_voltage.png (created if missing).
    #[arg(long, value_name = "DIR", default_value = "demo-output")]
    pub out: PathBuf,
}
