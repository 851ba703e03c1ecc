//! `moodb delete KEY`: deletes a key.

use std::error::Error;
use std::process::ExitCode;

use moodb_core::resp::Frame;

use crate::client::{format_reply, ClientArgs};

/// Deletes KEY; prints the number of keys deleted (1 or 0) and exits with status 1 if it did
/// not exist.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    client: ClientArgs,
    key: String,
}

pub fn run(args: Args) -> Result<ExitCode, Box<dyn Error>> {
    let mut client = args.client.connect()?;
    match client.call(&["DEL", args.key.as_str()])? {
        Frame::Integer(n) => {
            println!("{n}");
            Ok(if n > 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        other => Err(format_reply(&other).into()),
    }
}
