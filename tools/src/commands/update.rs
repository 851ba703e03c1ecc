//! `moodb update KEY VALUE`: sets a key only if it exists.

use std::error::Error;
use std::process::ExitCode;

use moodb_core::resp::Frame;

use crate::client::{format_reply, ClientArgs};

/// Sets KEY to VALUE only if KEY exists; prints OK, or exits with status 1 if it does not.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    client: ClientArgs,
    key: String,
    value: String,
}

pub fn run(args: Args) -> Result<ExitCode, Box<dyn Error>> {
    let mut client = args.client.connect()?;
    match client.call(&["UPDATE", args.key.as_str(), args.value.as_str()])? {
        Frame::Simple(s) => {
            println!("{s}");
            Ok(ExitCode::SUCCESS)
        }
        Frame::Null => {
            eprintln!("moodb: key {:?} does not exist: nothing updated", args.key);
            Ok(ExitCode::FAILURE)
        }
        other => Err(format_reply(&other).into()),
    }
}
