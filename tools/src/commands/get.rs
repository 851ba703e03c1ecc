//! `moodb get KEY`: prints the value of a key (exit status 1 if it does not exist).

use std::error::Error;
use std::io::Write;
use std::process::ExitCode;

use moodb_core::resp::Frame;

use crate::client::{format_reply, ClientArgs};

/// Prints the value of KEY to stdout as raw bytes; exits with status 1 if the key does not
/// exist.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    client: ClientArgs,
    key: String,
}

pub fn run(args: Args) -> Result<ExitCode, Box<dyn Error>> {
    let mut client = args.client.connect()?;
    match client.call(&["GET", args.key.as_str()])? {
        Frame::Bulk(value) => {
            let mut out = std::io::stdout().lock();
            out.write_all(&value)?;
            out.write_all(b"\n")?;
            Ok(ExitCode::SUCCESS)
        }
        Frame::Null => {
            eprintln!("moodb: key {:?} does not exist", args.key);
            Ok(ExitCode::FAILURE)
        }
        other => Err(format_reply(&other).into()),
    }
}
