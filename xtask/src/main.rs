//! `cargo xtask`: project automation. One clap subcommand per action; `crash-test` kills a real
//! server at random moments and verifies what survives.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod crash;

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "MooDB project automation")]
struct Cli {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Kill -9 a real server under concurrent load at random moments, restart it, and verify
    /// that no acknowledged write is lost, nothing phantom appears and transactions are atomic.
    CrashTest(crash::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.action {
        Action::CrashTest(args) => match crash::run(args) {
            Ok(code) => code,
            Err(err) => {
                eprintln!("crash-test: error: {err}");
                ExitCode::FAILURE
            }
        },
    }
}
