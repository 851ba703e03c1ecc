//! The `moodb` command. Each subcommand is a module under `commands/` exposing a clap `Args`
//! struct and `run(args) -> Result<ExitCode, Box<dyn Error>>`; names clap does not know run
//! `moodb-<name>` from PATH, as git and cargo do.

use std::process::ExitCode;

use clap::Parser;

mod bench;
mod client;
mod commands;
mod inspect;

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("moodb: error: {err}");
            ExitCode::FAILURE
        }
    }
}
