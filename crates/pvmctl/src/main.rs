//! `pvmctl`: the command-line client of pipewire-volume-mixer.

mod cli;
mod commands;
mod control;
mod failure;
mod level;
mod render;
mod setup;
mod snapshot;
mod stats;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if !matches!(failure, failure::Failure::OutputClosed) {
                let _ = writeln!(std::io::stderr(), "pvmctl: {failure}");
            }
            ExitCode::from(failure.exit_code())
        }
    }
}
