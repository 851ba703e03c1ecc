//! Commands across databases: SELECT, MOVE, SWAPDB, FLUSHALL and COPY … DB. They are parsed
//! here and applied by the store ([`apply`]), which knows the session's database and the
//! `databases` setting; like data commands they change the state only through records
//! ([`Databases::apply`]). Error texts are Redis 7's.
//!
//! - SELECT is per session; inside MULTI it is queued and takes effect at EXEC, in order.
//! - MOVE is a DELETE in the source and a SET (with the key's expiry) in the target, one
//!   `Record::Txn`; SWAPDB and FLUSHALL are one record each (`SwapDb`, `ClearAll`).

use bytes::Bytes;

use super::{parse_i64, CommandSpec, ReplyError};
use super::{syntax_error, wrong_arity, Command};
use crate::keyspace::Databases;
use crate::record::Record;
use crate::resp::Frame;

/// A command across databases, parsed; indexes are checked against `databases` when it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbCommand {
    Select(i64),
    Move {
        key: Bytes,
        db: i64,
    },
    SwapDb(i64, i64),
    FlushAll,
    /// COPY with a DB option.
    CopyTo {
        from: Bytes,
        to: Bytes,
        db: i64,
        replace: bool,
        /// Indexes of earlier DB options, checked before `db` (Redis checks each in order).
        earlier: Vec<i64>,
        /// An option after a DB option was a syntax error: answered after the indexes are
        /// checked, as Redis parses the options in order.
        syntax_error: bool,
    },
}

impl DbCommand {
    /// Whether it may change the state (refused after a storage failure).
    pub fn is_write(&self) -> bool {
        !matches!(self, DbCommand::Select(_))
    }
}

fn db_command(cmd: DbCommand) -> Result<Command, Frame> {
    Ok(Command::Db(cmd))
}

/// Parses an index as Redis's `getIntFromObjectOrReply` does (an `int`).
fn parse_index(arg: &[u8]) -> Result<i64, Frame> {
    let n = parse_i64(arg)?;
    if i32::try_from(n).is_err() {
        return Err(ReplyError::IntOutOfRange.into());
    }
    Ok(n)
}

/// `SELECT index`.
pub fn parse_select(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let [db] = rest else {
        return Err(wrong_arity(spec.name));
    };
    db_command(DbCommand::Select(parse_index(db)?))
}

/// `MOVE key db`.
pub fn parse_move(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let [key, db] = rest else {
        return Err(wrong_arity(spec.name));
    };
    db_command(DbCommand::Move {
        key: key.clone(),
        db: parse_index(db)?,
    })
}

/// `SWAPDB index1 index2`.
pub fn parse_swapdb(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let [a, b] = rest else {
        return Err(wrong_arity(spec.name));
    };
    let a = parse_index(a).map_err(|_| Frame::from(ReplyError::InvalidFirstDbIndex))?;
    let b = parse_index(b).map_err(|_| Frame::from(ReplyError::InvalidSecondDbIndex))?;
    db_command(DbCommand::SwapDb(a, b))
}

/// `FLUSHALL [ASYNC | SYNC]` (both flush at once).
pub fn parse_flushall(_: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    match rest {
        [] => {}
        [mode] if matches!(mode.to_ascii_uppercase().as_slice(), b"ASYNC" | b"SYNC") => {}
        _ => return Err(syntax_error()),
    }
    db_command(DbCommand::FlushAll)
}

/// What applying a [`DbCommand`] did.
#[derive(Debug)]
pub struct DbApplied {
    pub reply: Frame,
    pub record: Option<Record>,
    /// The (database, key)s the reply read, for the durability gate.
    pub reads: Vec<(u16, Bytes)>,
}

fn reply(reply: Frame) -> DbApplied {
    DbApplied {
        reply,
        record: None,
        reads: Vec::new(),
    }
}

/// `db` as an index below `count`, or Redis's error.
fn index(db: i64, count: usize) -> Result<u16, Frame> {
    u16::try_from(db)
        .ok()
        .filter(|d| usize::from(*d) < count)
        .ok_or_else(|| ReplyError::DbIndexOutOfRange.into())
}

/// Applies `cmd` for a session whose database is `*current`, with `count` databases, at
/// `now_ms`.
pub fn apply(
    cmd: DbCommand,
    dbs: &mut Databases,
    current: &mut u16,
    count: usize,
    now_ms: u64,
) -> DbApplied {
    match run(cmd, dbs, current, count, now_ms) {
        Ok(applied) => applied,
        Err(frame) => reply(frame),
    }
}

fn run(
    cmd: DbCommand,
    dbs: &mut Databases,
    current: &mut u16,
    count: usize,
    now_ms: u64,
) -> Result<DbApplied, Frame> {
    let src = *current;
    Ok(match cmd {
        DbCommand::Select(db) => {
            *current = index(db, count)?;
            reply(Frame::ok())
        }
        DbCommand::SwapDb(a, b) => {
            let (a, b) = (index(a, count)?, index(b, count)?);
            write(dbs, Record::SwapDb { a, b }, Frame::ok(), Vec::new())
        }
        DbCommand::FlushAll => write(dbs, Record::ClearAll, Frame::ok(), Vec::new()),
        DbCommand::Move { key, db } => {
            let dst = index(db, count)?;
            if dst == src {
                return Err(ReplyError::SameObject.into());
            }
            let reads = vec![(src, key.clone()), (dst, key.clone())];
            let live = |db: u16| {
                dbs.get(db)
                    .and_then(|ks| ks.get_live(&key, now_ms))
                    .map(|v| v.to_value())
            };
            let Some(value) = live(src) else {
                return Ok(read(Frame::Integer(0), reads));
            };
            if live(dst).is_some() {
                return Ok(read(Frame::Integer(0), reads));
            }
            let record = Record::Txn(vec![
                Record::in_db(src, Record::Delete { key: key.clone() }),
                Record::in_db(
                    dst,
                    Record::Set {
                        key,
                        value: value.data,
                        expires_at_ms: value.expires_at_ms,
                    },
                ),
            ]);
            write(dbs, record, Frame::Integer(1), reads)
        }
        DbCommand::CopyTo {
            from,
            to,
            db,
            replace,
            earlier,
            syntax_error,
        } => {
            for earlier in earlier {
                index(earlier, count)?;
            }
            let dst = index(db, count)?;
            if syntax_error {
                return Err(super::syntax_error());
            }
            if dst == src && from == to {
                return Err(ReplyError::SameObject.into());
            }
            let reads = vec![(src, from.clone()), (dst, to.clone())];
            let Some(value) = dbs
                .get(src)
                .and_then(|ks| ks.get_live(&from, now_ms))
                .map(|v| v.to_value())
            else {
                return Ok(read(Frame::Integer(0), reads));
            };
            let exists = dbs
                .get(dst)
                .and_then(|ks| ks.get_live(&to, now_ms))
                .is_some();
            if exists && !replace {
                return Ok(read(Frame::Integer(0), reads));
            }
            let record = Record::in_db(
                dst,
                Record::Set {
                    key: to,
                    value: value.data,
                    expires_at_ms: value.expires_at_ms,
                },
            );
            write(dbs, record, Frame::Integer(1), reads)
        }
    })
}

fn read(reply: Frame, reads: Vec<(u16, Bytes)>) -> DbApplied {
    DbApplied {
        reply,
        record: None,
        reads,
    }
}

fn write(dbs: &mut Databases, record: Record, reply: Frame, reads: Vec<(u16, Bytes)>) -> DbApplied {
    dbs.apply(&record);
    DbApplied {
        reply,
        record: Some(record),
        reads,
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::super::test_support::req;
    use super::*;

    fn run_words(dbs: &mut Databases, current: &mut u16, words: &[&str]) -> Frame {
        match parse(&req(words)) {
            Ok(Command::Db(cmd)) => apply(cmd, dbs, current, 16, 0).reply,
            Ok(other) => panic!("not a database command: {other:?}"),
            Err(f) => f,
        }
    }

    #[test]
    fn select_move_swap_and_errors() {
        let mut dbs = Databases::new(16);
        let mut cur = 0;
        dbs.apply(&Record::Set {
            key: Bytes::from_static(b"k"),
            value: Bytes::from_static(b"v"),
            expires_at_ms: Some(10),
        });
        let err = |s: &str| Frame::Error(s.into());
        assert_eq!(
            run_words(&mut dbs, &mut cur, &["select", "16"]),
            err("ERR DB index is out of range")
        );
        assert_eq!(
            run_words(&mut dbs, &mut cur, &["select", "x"]),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(
            run_words(&mut dbs, &mut cur, &["move", "k", "0"]),
            err("ERR source and destination objects are the same")
        );
        assert_eq!(
            run_words(&mut dbs, &mut cur, &["move", "k", "3"]),
            Frame::Integer(1)
        );
        assert_eq!(
            dbs.get(3)
                .and_then(|ks| ks.get(b"k"))
                .and_then(|v| v.expires_at_ms),
            Some(10)
        );
        assert_eq!(
            run_words(&mut dbs, &mut cur, &["swapdb", "a", "1"]),
            err("ERR invalid first DB index")
        );
        assert_eq!(
            run_words(&mut dbs, &mut cur, &["swapdb", "1", "a"]),
            err("ERR invalid second DB index")
        );
        assert_eq!(
            run_words(&mut dbs, &mut cur, &["swapdb", "3", "0"]),
            Frame::ok()
        );
        assert_eq!(dbs.db0().len(), 1);
        assert_eq!(run_words(&mut dbs, &mut cur, &["select", "5"]), Frame::ok());
        assert_eq!(cur, 5);
        assert_eq!(
            run_words(&mut dbs, &mut cur, &["flushall", "async"]),
            Frame::ok()
        );
        assert!(dbs.is_empty());
    }
}
