//! `moodb cluster status | add-node | remove-node`: cluster administration through any member,
//! as the `RAFT` command (a follower forwards it to the leader). `status` prints the leader,
//! term, commit index and each node's last log index and lag; `add-node` adds a node started
//! with `moodb serve --join` (a learner until caught up, then a voter); `remove-node` takes one
//! out of the membership.

use std::error::Error;
use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use moodb_core::resp::Frame;

use crate::client::{format_reply, ClientArgs};

/// Administers a MooDB cluster through any of its members.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Prints the leader, term, commit index, and each node's last log index and lag.
    Status {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Adds node ID (started with `moodb serve --join`): a learner until it has caught up,
    /// then a voter. Returns once the membership holding it is committed.
    AddNode {
        #[command(flatten)]
        client: ClientArgs,
        /// The new node's id.
        id: u64,
        /// Where its peers reach it (its --raft-addr).
        raft_addr: String,
        /// Where clients reach it (its --addr): followers forward there while it leads.
        client_addr: String,
    },
    /// Removes node ID from the membership.
    RemoveNode {
        #[command(flatten)]
        client: ClientArgs,
        id: u64,
    },
}

/// The pairs of a map reply (RESP3 map, or RESP2's flat array of keys and values).
fn pairs(frame: &Frame) -> Vec<(String, &Frame)> {
    let key = |f: &Frame| match f {
        Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        Frame::Simple(s) => s.to_string(),
        other => format_reply(other),
    };
    match frame {
        Frame::Map(items) => items.iter().map(|(k, v)| (key(k), v)).collect(),
        Frame::Array(items) => items
            .chunks(2)
            .filter(|c| c.len() == 2)
            .map(|c| (key(&c[0]), &c[1]))
            .collect(),
        _ => Vec::new(),
    }
}

fn field<'a>(pairs: &'a [(String, &'a Frame)], name: &str) -> String {
    match pairs.iter().find(|(k, _)| k == name).map(|(_, v)| *v) {
        Some(Frame::Integer(n)) => n.to_string(),
        Some(Frame::Bulk(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(Frame::Null) | None => "-".into(),
        Some(other) => format_reply(other),
    }
}

/// The text `moodb cluster status` prints for a `RAFT STATUS` reply.
pub fn render_status(reply: &Frame) -> Result<String, String> {
    let top = pairs(reply);
    if top.is_empty() {
        return Err(format!(
            "unexpected reply to RAFT STATUS: {}",
            format_reply(reply)
        ));
    }
    let mut out = String::new();
    out.push_str(&format!(
        "leader {}  term {}  commit index {}  (asked node {}: applied {}, last log {}, snapshot {}, purged {})\n",
        field(&top, "leader"),
        field(&top, "term"),
        field(&top, "commit_index"),
        field(&top, "node"),
        field(&top, "applied_index"),
        field(&top, "last_log_index"),
        field(&top, "snapshot_index"),
        field(&top, "purged_index"),
    ));
    out.push_str(&format!(
        "{:>4}  {:<8} {:<22} {:<22} {:>14} {:>8}\n",
        "id", "role", "raft addr", "client addr", "last log index", "lag"
    ));
    let nodes = match top.iter().find(|(k, _)| k == "nodes").map(|(_, v)| *v) {
        Some(Frame::Array(nodes)) => nodes.as_slice(),
        _ => &[],
    };
    for node in nodes {
        let n = pairs(node);
        out.push_str(&format!(
            "{:>4}  {:<8} {:<22} {:<22} {:>14} {:>8}\n",
            field(&n, "id"),
            field(&n, "role"),
            field(&n, "raft_addr"),
            field(&n, "client_addr"),
            field(&n, "last_log_index"),
            field(&n, "lag"),
        ));
    }
    Ok(out)
}

pub fn run(args: ClusterArgs) -> Result<ExitCode, Box<dyn Error>> {
    match args.command {
        ClusterCommand::Status { client } => {
            let reply = client.connect()?.call(&["RAFT", "STATUS"])?;
            if let Frame::Error(e) = &reply {
                return Err(e.clone().into());
            }
            let text = render_status(&reply)?;
            std::io::stdout().lock().write_all(text.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        ClusterCommand::AddNode {
            client,
            id,
            raft_addr,
            client_addr,
        } => ok_or_err(client.connect()?.call(&[
            "RAFT",
            "ADD-NODE",
            &id.to_string(),
            &raft_addr,
            &client_addr,
        ])?),
        ClusterCommand::RemoveNode { client, id } => {
            ok_or_err(
                client
                    .connect()?
                    .call(&["RAFT", "REMOVE-NODE", &id.to_string()])?,
            )
        }
    }
}

fn ok_or_err(reply: Frame) -> Result<ExitCode, Box<dyn Error>> {
    match reply {
        Frame::Simple(s) => {
            println!("{s}");
            Ok(ExitCode::SUCCESS)
        }
        Frame::Error(e) => Err(e.into()),
        other => Err(format!("unexpected reply: {}", format_reply(&other)).into()),
    }
}
