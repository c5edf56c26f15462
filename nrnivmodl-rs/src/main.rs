//! `nrnivmodl-rs`: the command-line front of the NMODL compiler.
//!
//! Subcommands: `check` parses and resolves `.mod` files and prints every
//! diagnostic; `demo` compiles the bundled mechanisms, runs the seed example
//! of NEURON's scripting tutorial and writes its voltage trace as CSV and
//! PNG. A later issue adds `build` (the default, nrnivmodl-compatible
//! invocation).

mod check;
mod demo;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// NMODL compiler for the nrnivmodl-rs simulator.
#[derive(Debug, Parser)]
#[command(name = "nrnivmodl-rs", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Parse and check .mod files, printing every error and warning.
    Check(CheckArgs),
    /// Run NEURON's tutorial example (an hh soma with four current pulses)
    /// and write its voltage trace as CSV and PNG.
    Demo(DemoArgs),
}

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

/// Arguments of `demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Folder for demo_voltage.csv and demo_voltage.png (created if missing).
    #[arg(long, value_name = "DIR", default_value = "demo-output")]
    pub out: PathBuf,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Demo(args) => demo::run(&args),
    }
}
