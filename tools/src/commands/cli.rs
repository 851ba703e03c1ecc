//! `moodb cli`: an interactive client: reads commands line by line, prints replies as
//! redis-cli does. Also reads commands from a pipe, one per line.

use std::error::Error;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use crate::client::{format_reply, split_line, ClientArgs};

/// Interactive client: type commands (`SET k v`, `GET k`, `INFO`, ...), `quit` or Ctrl-D to
/// leave. Quote words with spaces: `SET k "a b"`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    client: ClientArgs,
}

pub fn run(args: Args) -> Result<ExitCode, Box<dyn Error>> {
    let mut client = args.client.connect()?;
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    let mut out = std::io::stdout();
    let mut line = String::new();
    loop {
        if interactive {
            write!(out, "{}> ", args.client.addr)?;
            out.flush()?;
        }
        line.clear();
        if stdin.lock().read_line(&mut line)? == 0 {
            return Ok(ExitCode::SUCCESS);
        }
        let words = match split_line(&line) {
            Ok(words) if words.is_empty() => continue,
            Ok(words) => words,
            Err(err) => {
                eprintln!("Invalid argument(s): {err}");
                continue;
            }
        };
        let reply = client.call(&words)?;
        writeln!(out, "{}", format_reply(&reply))?;
        if words[0].eq_ignore_ascii_case(b"quit") {
            return Ok(ExitCode::SUCCESS);
        }
    }
}
