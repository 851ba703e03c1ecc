//! The commands: parsing a request into a [`Command`], and applying data commands to the key
//! space. Applying a write returns the [`Record`] to log; the key space is changed only through
//! [`Keyspace::apply`], so the in-memory state is always what replaying the log rebuilds.
//!
//! One file per family: `strings` (GET, SET, UPDATE, CAS, INCR, ...), `keys` (DEL, EXISTS,
//! KEYS, SCAN, DBSIZE, FLUSHDB), `server` (PING, INFO, CONFIG, COMMAND, SAVE, ...), whose
//! commands need the store owner's state and are answered there, and `txn` (MULTI, EXEC,
//! DISCARD, WATCH, UNWATCH): EXEC applies the queued commands in a row and joins their records
//! into one `Record::Txn`, so a transaction is logged, and recovered, whole or not at all.
//!
//! MooDB extensions to the Redis command set:
//! - `UPDATE key value`: set `key` only if it exists (like `SET key value XX`); `+OK`, or nil
//!   when the key is absent.
//! - `CAS key expected new`: compare-and-set without a transaction. If `key` holds exactly
//!   `expected`, set it to `new` (clearing any expiry, as SET does) and reply `:1`; reply `:0`
//!   if the value differs or the key is missing (or expired). One record in the log, like SET.

pub mod glob;
pub mod keys;
pub mod server;
pub mod strings;
pub mod txn;

use bytes::Bytes;

use crate::keyspace::Keyspace;
use crate::record::Record;
use crate::resp::Frame;

pub use server::ServerCommand;
pub use txn::TxnCommand;

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Reads or writes the key space; see [`DataCommand::apply`].
    Data(DataCommand),
    /// Answered by the store owner from its own state (INFO, SAVE, CONFIG, ...).
    Server(ServerCommand),
    /// MULTI, EXEC, DISCARD, WATCH, UNWATCH: handled by the store owner with
    /// [`txn::Transactions`].
    Txn(TxnCommand),
}

/// A command on the key space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataCommand {
    Get(Bytes),
    Set(strings::SetArgs),
    Update {
        key: Bytes,
        value: Bytes,
    },
    Cas {
        key: Bytes,
        expected: Bytes,
        new: Bytes,
    },
    Append {
        key: Bytes,
        value: Bytes,
    },
    Strlen(Bytes),
    IncrBy {
        key: Bytes,
        by: i64,
    },
    MGet(Vec<Bytes>),
    MSet(Vec<(Bytes, Bytes)>),
    Del(Vec<Bytes>),
    Exists(Vec<Bytes>),
    Keys(Bytes),
    Scan(keys::ScanArgs),
    DbSize,
    FlushDb,
}

/// What a reply depends on, so that it waits until every write it saw is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// These keys.
    Keys(Vec<Bytes>),
    /// The whole key space (DBSIZE, KEYS, SCAN).
    All,
}

/// The result of applying a data command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub reply: Frame,
    /// The change to log, if the command changed anything.
    pub record: Option<Record>,
    pub access: Access,
}

impl DataCommand {
    /// Whether the command may change the key space (refused when storage has failed).
    pub fn is_write(&self) -> bool {
        use DataCommand::*;
        matches!(
            self,
            Set(_)
                | Update { .. }
                | Cas { .. }
                | Append { .. }
                | IncrBy { .. }
                | MSet(_)
                | Del(_)
                | FlushDb
        )
    }

    /// Applies the command to `ks` at wall-clock time `now_ms` (Unix milliseconds).
    pub fn apply(self, ks: &mut Keyspace, now_ms: u64) -> Applied {
        match self {
            DataCommand::Get(key) => strings::get(ks, key, now_ms),
            DataCommand::Set(args) => strings::set(ks, args, now_ms),
            DataCommand::Update { key, value } => strings::update(ks, key, value, now_ms),
            DataCommand::Cas { key, expected, new } => strings::cas(ks, key, expected, new, now_ms),
            DataCommand::Append { key, value } => strings::append(ks, key, value, now_ms),
            DataCommand::Strlen(key) => strings::strlen(ks, key, now_ms),
            DataCommand::IncrBy { key, by } => strings::incr_by(ks, key, by, now_ms),
            DataCommand::MGet(keys) => strings::mget(ks, keys, now_ms),
            DataCommand::MSet(pairs) => strings::mset(ks, pairs),
            DataCommand::Del(keys) => keys::del(ks, keys, now_ms),
            DataCommand::Exists(keys) => keys::exists(ks, keys, now_ms),
            DataCommand::Keys(pattern) => keys::keys(ks, &pattern, now_ms),
            DataCommand::Scan(args) => keys::scan(ks, args, now_ms),
            DataCommand::DbSize => keys::dbsize(ks),
            DataCommand::FlushDb => keys::flushdb(ks),
        }
    }
}

/// Applies `record` to `ks` and returns the outcome: the only way commands change the state.
fn write(ks: &mut Keyspace, record: Record, reply: Frame, access: Vec<Bytes>) -> Applied {
    ks.apply(&record);
    Applied {
        reply,
        record: Some(record),
        access: Access::Keys(access),
    }
}

fn read(reply: Frame, access: Vec<Bytes>) -> Applied {
    Applied {
        reply,
        record: None,
        access: Access::Keys(access),
    }
}

/// Parses a request (command name first, matched case-insensitively).
pub fn parse(args: &[Bytes]) -> Result<Command, Frame> {
    let Some((name, rest)) = args.split_first() else {
        return Err(Frame::err("empty command"));
    };
    // Upper-case the name on the stack (every command name fits); the lower-case form is
    // only built for error messages and server commands.
    let mut stack = [0u8; 16];
    let heap;
    let upper: &[u8] = if name.len() <= stack.len() {
        let upper = &mut stack[..name.len()];
        upper.copy_from_slice(name);
        upper.make_ascii_uppercase();
        upper
    } else {
        heap = name.to_ascii_uppercase();
        &heap
    };
    let data = |c: Result<DataCommand, Frame>| c.map(Command::Data);
    let lower = || String::from_utf8_lossy(name).to_lowercase();
    let arity = |ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(wrong_arity(&lower()))
        }
    };
    match upper {
        b"GET" => arity(rest.len() == 1).and_then(|_| data(Ok(DataCommand::Get(rest[0].clone())))),
        b"SET" => arity(rest.len() >= 2).and_then(|_| data(strings::parse_set(rest))),
        b"UPDATE" => arity(rest.len() == 2).and_then(|_| {
            data(Ok(DataCommand::Update {
                key: rest[0].clone(),
                value: rest[1].clone(),
            }))
        }),
        b"CAS" => arity(rest.len() == 3).and_then(|_| {
            data(Ok(DataCommand::Cas {
                key: rest[0].clone(),
                expected: rest[1].clone(),
                new: rest[2].clone(),
            }))
        }),
        b"APPEND" => arity(rest.len() == 2).and_then(|_| {
            data(Ok(DataCommand::Append {
                key: rest[0].clone(),
                value: rest[1].clone(),
            }))
        }),
        b"STRLEN" => {
            arity(rest.len() == 1).and_then(|_| data(Ok(DataCommand::Strlen(rest[0].clone()))))
        }
        b"INCR" | b"DECR" => arity(rest.len() == 1).and_then(|_| {
            data(Ok(DataCommand::IncrBy {
                key: rest[0].clone(),
                by: if upper == b"INCR" { 1 } else { -1 },
            }))
        }),
        b"INCRBY" | b"DECRBY" => arity(rest.len() == 2).and_then(|_| {
            let by = parse_i64(&rest[1])?;
            let by = if upper == b"INCRBY" {
                by
            } else {
                by.checked_neg()
                    .ok_or_else(|| Frame::err("decrement would overflow"))?
            };
            data(Ok(DataCommand::IncrBy {
                key: rest[0].clone(),
                by,
            }))
        }),
        b"MGET" => arity(!rest.is_empty()).and_then(|_| data(Ok(DataCommand::MGet(rest.to_vec())))),
        b"MSET" => arity(!rest.is_empty() && rest.len() % 2 == 0).and_then(|_| {
            let pairs = rest
                .chunks_exact(2)
                .map(|p| (p[0].clone(), p[1].clone()))
                .collect();
            data(Ok(DataCommand::MSet(pairs)))
        }),
        b"DEL" | b"DELETE" => {
            arity(!rest.is_empty()).and_then(|_| data(Ok(DataCommand::Del(rest.to_vec()))))
        }
        b"EXISTS" => {
            arity(!rest.is_empty()).and_then(|_| data(Ok(DataCommand::Exists(rest.to_vec()))))
        }
        b"KEYS" => {
            arity(rest.len() == 1).and_then(|_| data(Ok(DataCommand::Keys(rest[0].clone()))))
        }
        b"SCAN" => arity(!rest.is_empty()).and_then(|_| data(keys::parse_scan(rest))),
        b"DBSIZE" => arity(rest.is_empty()).and_then(|_| data(Ok(DataCommand::DbSize))),
        b"FLUSHDB" | b"FLUSHALL" => {
            // ASYNC / SYNC are accepted and mean the same here.
            arity(rest.len() <= 1).and_then(|_| data(Ok(DataCommand::FlushDb)))
        }
        _ => {
            let lower = lower();
            match txn::parse(upper, &lower, rest) {
                Some(parsed) => parsed.map(Command::Txn),
                None => server::parse(upper, &lower, rest).map(Command::Server),
            }
        }
    }
}

/// `-ERR wrong number of arguments for 'get' command`.
pub fn wrong_arity(name: &str) -> Frame {
    Frame::err(format!("wrong number of arguments for '{name}' command"))
}

/// `-ERR syntax error`.
pub fn syntax_error() -> Frame {
    Frame::err("syntax error")
}

/// Parses a decimal i64 argument, with Redis' error text.
pub fn parse_i64(arg: &[u8]) -> Result<i64, Frame> {
    std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| Frame::err("value is not an integer or out of range"))
}

#[cfg(test)]
pub(crate) mod test_support {
    use bytes::Bytes;

    /// Builds a request from words.
    pub fn req(words: &[&str]) -> Vec<Bytes> {
        words
            .iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::req;
    use super::*;

    fn run(ks: &mut Keyspace, words: &[&str]) -> Frame {
        match parse(&req(words)) {
            Ok(Command::Data(c)) => c.apply(ks, 1_000).reply,
            Ok(Command::Server(_) | Command::Txn(_)) => panic!("not a data command"),
            Err(f) => f,
        }
    }

    #[test]
    fn names_are_case_insensitive_and_arity_is_checked() {
        let mut ks = Keyspace::new();
        assert_eq!(run(&mut ks, &["set", "k", "v"]), Frame::ok());
        assert_eq!(run(&mut ks, &["GeT", "k"]), Frame::bulk("v"));
        assert_eq!(
            run(&mut ks, &["get"]),
            Frame::Error("ERR wrong number of arguments for 'get' command".into())
        );
        assert_eq!(
            run(&mut ks, &["mset", "a"]),
            Frame::Error("ERR wrong number of arguments for 'mset' command".into())
        );
    }

    #[test]
    fn unknown_commands_name_themselves() {
        assert_eq!(
            parse(&req(&["frob", "a", "b"])),
            Err(Frame::Error(
                "ERR unknown command 'frob', with args beginning with: 'a' 'b' ".into()
            ))
        );
    }

    #[test]
    fn replaying_the_records_rebuilds_the_state() {
        let mut ks = Keyspace::new();
        let mut log = Vec::new();
        for words in [
            &["set", "z", "1"][..],
            &["flushdb"],
            &["set", "a", "1"],
            &["incrby", "a", "41"],
            &["append", "a", "!"],
            &["mset", "b", "2", "c", "3"],
            &["update", "b", "20"],
            &["update", "zz", "1"],
            &["del", "c", "nope"],
            &["set", "e", "x", "px", "100000"],
        ] {
            let Ok(Command::Data(c)) = parse(&req(words)) else {
                panic!("{words:?}")
            };
            if let Some(r) = c.apply(&mut ks, 1_000).record {
                log.push(r);
            }
        }
        let mut replayed = Keyspace::new();
        log.iter().for_each(|r| replayed.apply(r));
        assert_eq!(replayed, ks);
    }
}
