//! `moodb set KEY VALUE`: sets a key.

use std::error::Error;
use std::process::ExitCode;

use moodb_core::resp::Frame;

use crate::client::{format_reply, ClientArgs};

/// Sets KEY to VALUE (creating it or replacing its value); prints OK once it is durable.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    client: ClientArgs,
    key: String,
    value: String,
}

pub fn run(args: Args) -> Result<ExitCode, Box<dyn Error>> {
    let mut client = args.client.connect()?;
    match client.call(&["SET", args.key.as_str(), args.value.as_str()])? {
        Frame::Simple(s) => {
            println!("{s}");
            Ok(ExitCode::SUCCESS)
        }
        other => Err(format_reply(&other).into()),
    }
}
