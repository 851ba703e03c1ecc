//! Pub/Sub commands: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH and PUBSUB
//! CHANNELS / NUMSUB / NUMPAT. Parsed here; the store answers them with its
//! [`crate::pubsub::PubSub`] broker.

use bytes::Bytes;

use super::server::ServerCommand;
use super::strings::SetExpiry;
use super::table::CommandSpec;
use super::{exact, Command, ReplyError};
use crate::pubsub::{KeyEvent, NotifyFlags};
use crate::record::Record;
use crate::resp::Frame;

/// A Pub/Sub command, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PubSubCommand {
    Subscribe(Vec<Bytes>),
    Unsubscribe(Vec<Bytes>),
    PSubscribe(Vec<Bytes>),
    PUnsubscribe(Vec<Bytes>),
    Publish { channel: Bytes, message: Bytes },
    Channels(Option<Bytes>),
    NumSub(Vec<Bytes>),
    NumPat,
}

fn cmd(c: PubSubCommand) -> Result<Command, Frame> {
    Ok(Command::Server(ServerCommand::PubSub(c)))
}

/// `SUBSCRIBE channel [channel ...]`.
pub fn parse_subscribe(_: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    cmd(PubSubCommand::Subscribe(rest.to_vec()))
}

/// `UNSUBSCRIBE [channel ...]`.
pub fn parse_unsubscribe(_: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    cmd(PubSubCommand::Unsubscribe(rest.to_vec()))
}

/// `PSUBSCRIBE pattern [pattern ...]`.
pub fn parse_psubscribe(_: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    cmd(PubSubCommand::PSubscribe(rest.to_vec()))
}

/// `PUNSUBSCRIBE [pattern ...]`.
pub fn parse_punsubscribe(_: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    cmd(PubSubCommand::PUnsubscribe(rest.to_vec()))
}

/// `PUBLISH channel message`.
pub fn parse_publish(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let [channel, message] = exact(spec, rest)?;
    cmd(PubSubCommand::Publish {
        channel: channel.clone(),
        message: message.clone(),
    })
}

/// `PUBSUB CHANNELS [pattern] | NUMSUB [channel ...] | NUMPAT`.
pub fn parse_pubsub(_: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let Some((sub, args)) = rest.split_first() else {
        return Err(ReplyError::WrongArity { name: "pubsub" }.into());
    };
    match (sub.to_ascii_uppercase().as_slice(), args) {
        (b"CHANNELS", []) => cmd(PubSubCommand::Channels(None)),
        (b"CHANNELS", [pattern]) => cmd(PubSubCommand::Channels(Some(pattern.clone()))),
        (b"NUMSUB", channels) => cmd(PubSubCommand::NumSub(channels.to_vec())),
        (b"NUMPAT", []) => cmd(PubSubCommand::NumPat),
        (b"HELP", []) => Ok(Command::Server(ServerCommand::Reply(Frame::Array(
            PUBSUB_HELP
                .iter()
                .map(|l| Frame::Simple((*l).into()))
                .collect(),
        )))),
        (b"HELP", _) => Err(ReplyError::WrongArity {
            name: "pubsub|help",
        }
        .into()),
        // NUMPAT's arity is fixed (Redis checks it before the command runs); CHANNELS's is
        // "at least", and CHANNELS itself refuses more than one pattern.
        (b"NUMPAT", _) => Err(ReplyError::WrongArity {
            name: "pubsub|numpat",
        }
        .into()),
        (b"CHANNELS", _) => Err(ReplyError::SubcommandArity {
            command: "PUBSUB",
            sub: String::from_utf8_lossy(sub).into_owned(),
        }
        .into()),
        _ => Err(ReplyError::unknown_subcommand("PUBSUB", sub).into()),
    }
}

/// PUBSUB HELP: Redis 7.0's text without the sharded subcommands, which MooDB does not have
/// (ARCHITECTURE.md, "Deliberately absent").
const PUBSUB_HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "HELP",
    "    Prints this help.",
];

/// The commands a RESP2 client may send while subscribed (Redis 7's list).
pub fn allowed_when_subscribed(name: &str) -> bool {
    matches!(
        name,
        "subscribe"
            | "unsubscribe"
            | "psubscribe"
            | "punsubscribe"
            | "ssubscribe"
            | "sunsubscribe"
            | "ping"
            | "quit"
            | "reset"
    )
}

/// The keyspace notifications Redis 7 sends for a data command `op` that wrote `record`
/// (only commands that wrote something notify). FLUSHDB sends none, as in Redis.
pub fn key_events(op: &super::DataOp, record: &Record, out: &mut Vec<KeyEvent>) {
    use super::DataOp as D;
    let g = NotifyFlags::GENERIC;
    let s = NotifyFlags::STRING;
    let mut ev = |class, event, key: &Bytes| {
        out.push(KeyEvent {
            class,
            event,
            key: key.clone(),
        })
    };
    let mut ops = Vec::new();
    flatten(record, &mut ops);
    match op {
        D::Rename { .. } => {
            // One TXN: DELETE src, SET dst.
            for r in ops {
                match r {
                    Record::Delete { key } => ev(g, "rename_from", key),
                    Record::Set { key, .. } | Record::Update { key, .. } => ev(g, "rename_to", key),
                    _ => {}
                }
            }
        }
        _ => {
            for r in ops {
                let (key, deleted, expires) = match r {
                    Record::Set {
                        key, expires_at_ms, ..
                    } => (key, false, expires_at_ms.is_some()),
                    Record::Update { key, .. } => (key, false, false),
                    Record::Delete { key } => (key, true, false),
                    Record::Clear
                    | Record::Txn(_)
                    | Record::InDb { .. }
                    | Record::SwapDb { .. }
                    | Record::ClearAll => continue,
                };
                if deleted {
                    ev(g, "del", key);
                    continue;
                }
                match op {
                    D::Set(args) => {
                        ev(s, "set", key);
                        if matches!(args.expiry, SetExpiry::AtMs(_) | SetExpiry::InMs(_)) {
                            ev(g, "expire", key);
                        }
                    }
                    D::SetNx { .. } | D::Update { .. } | D::Cas { .. } => ev(s, "set", key),
                    D::MSet(_) | D::MSetNx(_) => ev(s, "set", key),
                    D::GetEx { .. } if expires => ev(g, "expire", key),
                    D::GetEx { .. } => ev(g, "persist", key),
                    D::SetRange { .. } => ev(s, "setrange", key),
                    D::IncrBy { .. } => ev(s, "incrby", key),
                    D::IncrByFloat { .. } => ev(s, "incrbyfloat", key),
                    D::Append { .. } => ev(s, "append", key),
                    D::Expire(_) => ev(g, "expire", key),
                    D::Persist(_) => ev(g, "persist", key),
                    D::Copy { .. } => ev(g, "copy_to", key),
                    _ => {}
                }
            }
        }
    }
}

/// The keyspace notifications of a cross-database command `cmd` that succeeded (wrote), run
/// from database `src`, each with the database it is sent in, as Redis 7 sends them: MOVE
/// `move_from` in the source and `move_to` in the target, COPY ... DB `copy_to` in the target.
/// SWAPDB and FLUSHALL send none.
pub fn db_key_events(cmd: &super::DbCommand, src: u16) -> Vec<(u16, KeyEvent)> {
    use super::DbCommand as D;
    let g = NotifyFlags::GENERIC;
    let ev = |event, key: &Bytes| KeyEvent {
        class: g,
        event,
        key: key.clone(),
    };
    let target = |db: i64| u16::try_from(db).unwrap_or(src);
    match cmd {
        D::Move { key, db } => vec![
            (src, ev("move_from", key)),
            (target(*db), ev("move_to", key)),
        ],
        D::CopyTo { to, db, .. } => vec![(target(*db), ev("copy_to", to))],
        D::Select(_) | D::SwapDb(..) | D::FlushAll => Vec::new(),
    }
}

/// The records `record` is made of (a COPY to another database notifies as in the source's:
/// events carry the database the command ran in).
fn flatten<'a>(record: &'a Record, out: &mut Vec<&'a Record>) {
    match record {
        Record::Txn(inner) => inner.iter().for_each(|r| flatten(r, out)),
        Record::InDb { record, .. } => flatten(record, out),
        other => out.push(other),
    }
}
