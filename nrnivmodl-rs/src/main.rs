//! The `nrnivmodl-rs` executable: parses the command line and runs the
//! command (see the library's docs).

use clap::{Parser, Subcommand};
use nrnivmodl_rs::{build, check, demo, BuildArgs, CheckArgs, DemoArgs};
use std::process::ExitCode;

/// NMODL compiler for the nrnivmodl-rs simulator.
#[derive(Debug, Parser)]
#[command(
    name = "nrnivmodl-rs",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    build: BuildArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Build <arch>/libnrnmech.so (what nrnivmodl-rs does with no subcommand).
    Build(BuildArgs),
    /// Parse and check .mod files, printing every error and warning.
    Check(CheckArgs),
    /// Run NEURON's tutorial example (an hh soma with four current pulses)
    /// and write its voltage trace as CSV and PNG.
    Demo(DemoArgs),
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
        None => build::run(&cli.build),
        Some(Command::Build(args)) => build::run(&args),
        Some(Command::Check(args)) => check::run(&args),
        Some(Command::Demo(args)) => demo::run(&args),
    }
}
