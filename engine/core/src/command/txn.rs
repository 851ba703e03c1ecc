//! Transactions: MULTI / EXEC / DISCARD / WATCH / UNWATCH, with Redis' semantics and error
//! texts. [`Transactions`] holds every session's transaction state (the commands queued since
//! MULTI, the keys it watches and whether one of them changed) and the watch table; the store
//! owner feeds it every record it applies ([`Transactions::touch`]) and runs the commands
//! [`Transactions::exec`] hands back in one go, joining their writes into one `Record::Txn`.
//!
//! - A command sent after MULTI is parsed and queued (`+QUEUED`); an unknown command or a
//!   wrong number of arguments is answered with its error and makes EXEC fail whole with
//!   `-EXECABORT`; any other parse error (syntax, not an integer, ...) is queued as that
//!   error, which EXEC's array then holds in the command's place, as in Redis.
//! - A watched key *changed* since WATCH (a write record names it, a FLUSHDB ran, or it was
//!   live at WATCH and has expired since) makes EXEC answer a nil array and run nothing.
//!   FLUSHDB, FLUSHALL and SWAPDB dirty, as Redis 7's `touchAllWatchedKeysInDb`, only the
//!   watchers of keys that exist when they run (for SWAPDB: in either database); the store
//!   calls [`Transactions::emptying`] before it runs them, since afterwards the keys are gone.
//! - EXEC, DISCARD and a closed connection drop the session's watches.
//! - Departures from Redis: SAVE cannot be queued (its reply waits for a checkpoint; BGSAVE
//!   can), and AUTH and QUIT are answered by the session at once, never queued.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;

use super::table::{self, CommandSpec, Flags};
use super::{Command, DataOp, DbCommand, ReplyError, ServerCommand};
use crate::fast_map::FastMap;
use crate::keyspace::{Databases, Keyspace};
use crate::record::Record;
use crate::resp::Frame;

/// Identifies a client connection (a session) to the store owner.
pub type SessionId = u64;

/// A transaction command, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnCommand {
    Multi,
    Exec,
    Discard,
    Watch(Vec<Bytes>),
    Unwatch,
}

fn txn(cmd: TxnCommand) -> Result<Command, Frame> {
    Ok(Command::Txn(cmd))
}

/// `MULTI`.
pub fn parse_multi(_: &'static CommandSpec, _: &[Bytes]) -> Result<Command, Frame> {
    txn(TxnCommand::Multi)
}

/// `EXEC`.
pub fn parse_exec(_: &'static CommandSpec, _: &[Bytes]) -> Result<Command, Frame> {
    txn(TxnCommand::Exec)
}

/// `DISCARD`.
pub fn parse_discard(_: &'static CommandSpec, _: &[Bytes]) -> Result<Command, Frame> {
    txn(TxnCommand::Discard)
}

/// `WATCH key [key ...]`.
pub fn parse_watch(_: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    txn(TxnCommand::Watch(rest.to_vec()))
}

/// `UNWATCH`.
pub fn parse_unwatch(_: &'static CommandSpec, _: &[Bytes]) -> Result<Command, Frame> {
    txn(TxnCommand::Unwatch)
}

/// `-EXECABORT Transaction discarded because of previous errors.`
pub fn exec_abort() -> Frame {
    ReplyError::ExecAbort.into()
}

#[derive(Debug, Default)]
struct Queue {
    commands: Vec<Command>,
    /// A command failed to queue: EXEC must fail whole.
    failed: bool,
}

#[derive(Debug, Default)]
struct SessionTxn {
    /// Set between MULTI and EXEC/DISCARD.
    queue: Option<Queue>,
    /// Watched (database, key)s, each with whether it was live when watched (to notice
    /// expiry).
    watched: Vec<((u16, Bytes), bool)>,
    /// A watched key changed since it was watched.
    dirty: bool,
}

impl SessionTxn {
    fn is_idle(&self) -> bool {
        self.queue.is_none() && self.watched.is_empty()
    }
}

/// A command about to empty or swap databases (see [`Transactions::emptying`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emptying {
    /// FLUSHDB of this database.
    Db(u16),
    /// SWAPDB of two databases.
    Swap(u16, u16),
    /// FLUSHALL.
    All,
}

impl Emptying {
    /// What the data command `op`, run in database `db`, empties.
    pub fn of_data(op: &DataOp, db: u16) -> Option<Emptying> {
        matches!(op, DataOp::FlushDb).then_some(Emptying::Db(db))
    }

    /// What `cmd` empties or swaps, with `count` databases (`None` for invalid indexes: the
    /// command will fail and touch nothing).
    pub fn of_db(cmd: &DbCommand, count: usize) -> Option<Emptying> {
        let index = |i: i64| u16::try_from(i).ok().filter(|d| usize::from(*d) < count);
        match cmd {
            DbCommand::SwapDb(a, b) => Some(Emptying::Swap(index(*a)?, index(*b)?)),
            DbCommand::FlushAll => Some(Emptying::All),
            _ => None,
        }
    }
}

/// Every session's transaction state and the table of watched keys; see the module doc.
#[derive(Debug, Default)]
pub struct Transactions {
    sessions: FastMap<SessionId, SessionTxn>,
    /// Sessions watching each (database, key).
    watchers: HashMap<(u16, Bytes), HashSet<SessionId>>,
}

impl Transactions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `session` is between MULTI and EXEC/DISCARD (its commands are queued).
    pub fn in_multi(&self, session: SessionId) -> bool {
        self.sessions
            .get(&session)
            .is_some_and(|s| s.queue.is_some())
    }

    /// How many commands `session` has queued, when it is in MULTI (CLIENT LIST's `multi`).
    pub fn queued(&self, session: SessionId) -> Option<usize> {
        self.sessions
            .get(&session)
            .and_then(|s| s.queue.as_ref())
            .map(|q| q.commands.len())
    }

    /// Whether a key `session` watches changed (CLIENT LIST's flag `d`).
    pub fn is_dirty(&self, session: SessionId) -> bool {
        self.sessions.get(&session).is_some_and(|s| s.dirty)
    }

    /// Number of keys watched by any session (for INFO and tests).
    pub fn watched_keys(&self) -> usize {
        self.watchers.len()
    }

    /// MULTI.
    pub fn multi(&mut self, session: SessionId) -> Frame {
        let s = self.sessions.entry(session).or_default();
        if s.queue.is_some() {
            return ReplyError::NestedMulti.into();
        }
        s.queue = Some(Queue::default());
        Frame::ok()
    }

    /// Queues a command sent after MULTI: `+QUEUED`, or the parse error, which makes EXEC fail.
    /// Call only when [`in_multi`](Self::in_multi).
    pub fn queue(&mut self, session: SessionId, parsed: Result<Command, Frame>) -> Frame {
        let Some(queue) = self
            .sessions
            .get_mut(&session)
            .and_then(|s| s.queue.as_mut())
        else {
            return ReplyError::QueueOutsideMulti.into();
        };
        match parsed {
            Ok(cmd) => {
                queue.commands.push(cmd);
                Frame::Simple("QUEUED".into())
            }
            Err(err) => {
                queue.failed = true;
                err
            }
        }
    }

    /// Decides what `request` (parsed into `parsed`) comes to for `session`: `Ok` is the
    /// command to run now (any command outside MULTI; inside it, those whose row is flagged
    /// `NOT_QUEUED`: MULTI, EXEC, DISCARD, WATCH); `Err` is the reply to give now: `+QUEUED`,
    /// or the error of a command that failed to parse or whose row is flagged `NO_MULTI`
    /// (SAVE), which makes EXEC fail.
    pub fn admit(
        &mut self,
        session: SessionId,
        request: &[Bytes],
        spec: Option<&'static table::CommandSpec>,
        parsed: Result<Command, Frame>,
    ) -> Result<Command, Frame> {
        if let (Some(spec), Err(Frame::Error(text))) = (spec, &parsed) {
            if spec.name == "exec" {
                // Redis answers an EXEC it refuses (wrong arity) with EXECABORT and discards
                // the transaction and the watches, inside MULTI or not.
                let reason = text.strip_prefix("ERR ").unwrap_or(text).to_string();
                self.end(session);
                return Err(ReplyError::ExecAbortBecause { reason }.into());
            }
        }
        if !self.in_multi(session) {
            return parsed;
        }
        let flagged = |f: Flags| spec.is_some_and(|s| s.is(f));
        match parsed {
            Ok(cmd) if flagged(Flags::NOT_QUEUED) => Ok(cmd),
            Ok(_) if flagged(Flags::NO_MULTI) => {
                Err(self.queue(session, Err(ReplyError::NotAllowedInMulti.into())))
            }
            // Redis refuses at queueing time only an unknown command or subcommand or a wrong
            // number of arguments by the table; any other error (syntax, a bad number, an
            // out-of-range database, MSET's odd count) is queued and becomes that command's
            // reply inside EXEC's array.
            Err(err)
                if spec.is_some_and(|s| s.arity_fits(request.len()))
                    && !ReplyError::refuses_queueing(&err) =>
            {
                let queued = Ok(Command::Server(ServerCommand::Reply(err)));
                Err(self.queue(session, queued))
            }
            other => Err(self.queue(session, other)),
        }
    }

    /// DISCARD.
    pub fn discard(&mut self, session: SessionId) -> Frame {
        if !self.in_multi(session) {
            return ReplyError::DiscardWithoutMulti.into();
        }
        self.end(session);
        Frame::ok()
    }

    /// WATCH `keys` of database `db`, as of time `now_ms` in `ks` (that database).
    pub fn watch(
        &mut self,
        session: SessionId,
        db: u16,
        keys: Vec<Bytes>,
        ks: &Keyspace,
        now_ms: u64,
    ) -> Frame {
        let s = self.sessions.entry(session).or_default();
        if s.queue.is_some() {
            return ReplyError::WatchInsideMulti.into();
        }
        for key in keys {
            let live = ks.get_live(&key, now_ms).is_some();
            let key = (db, key);
            if s.watched.iter().any(|(k, _)| *k == key) {
                continue;
            }
            self.watchers
                .entry(key.clone())
                .or_default()
                .insert(session);
            s.watched.push((key, live));
        }
        Frame::ok()
    }

    /// UNWATCH (outside MULTI; inside, it is queued and answers OK at EXEC).
    pub fn unwatch(&mut self, session: SessionId) -> Frame {
        self.unwatch_all(session);
        if self.sessions.get(&session).is_some_and(SessionTxn::is_idle) {
            self.sessions.remove(&session);
        }
        Frame::ok()
    }

    /// EXEC: ends the transaction and drops the watches. `Ok` holds the queued commands to run
    /// now, as one unit; `Err` the whole reply (EXEC without MULTI, EXECABORT, or a nil array
    /// when a watched key changed).
    pub fn exec(
        &mut self,
        session: SessionId,
        dbs: &Databases,
        now_ms: u64,
    ) -> Result<Vec<Command>, Frame> {
        let Some(s) = self.sessions.get_mut(&session) else {
            return Err(ReplyError::ExecWithoutMulti.into());
        };
        let Some(queue) = s.queue.take() else {
            return Err(ReplyError::ExecWithoutMulti.into());
        };
        let expired = s.watched.iter().any(|((db, key), live)| {
            *live
                && dbs
                    .get(*db)
                    .and_then(|ks| ks.get_live(key, now_ms))
                    .is_none()
        });
        let dirty = s.dirty || expired;
        self.end(session);
        if queue.failed {
            Err(exec_abort())
        } else if dirty {
            Err(Frame::NullArray)
        } else {
            Ok(queue.commands)
        }
    }

    /// Before `what` runs on `dbs` at `now_ms`: dirties the watchers of the keys it will empty
    /// that exist now (for SWAPDB, a key watched in either database that exists in either),
    /// as Redis 7's `touchAllWatchedKeysInDb`. SWAPDB of a database with itself changes
    /// nothing.
    pub fn emptying(&mut self, what: Emptying, dbs: &Databases, now_ms: u64) {
        if self.watchers.is_empty() {
            return;
        }
        let exists = |db: u16, key: &Bytes| {
            dbs.get(db)
                .and_then(|ks| ks.get_live(key, now_ms))
                .is_some()
        };
        let mut dirty = Vec::new();
        for ((db, key), sessions) in &self.watchers {
            let hit = match what {
                Emptying::Db(d) => *db == d && exists(d, key),
                Emptying::All => exists(*db, key),
                Emptying::Swap(a, b) => {
                    a != b && (*db == a || *db == b) && (exists(a, key) || exists(b, key))
                }
            };
            if hit {
                dirty.extend(sessions.iter().copied());
            }
        }
        for id in dirty {
            if let Some(s) = self.sessions.get_mut(&id) {
                s.dirty = true;
            }
        }
    }

    /// Notes that `record` was applied: every session watching a key it changes is dirtied.
    pub fn touch(&mut self, record: &Record) {
        if self.watchers.is_empty() {
            return;
        }
        self.touch_in(0, record);
    }

    fn touch_in(&mut self, db: u16, record: &Record) {
        match record {
            Record::Set { key, .. } | Record::Update { key, .. } | Record::Delete { key } => {
                if let Some(sessions) = self.watchers.get(&(db, key.clone())) {
                    for id in sessions {
                        if let Some(s) = self.sessions.get_mut(id) {
                            s.dirty = true;
                        }
                    }
                }
            }
            // FLUSHDB, SWAPDB and FLUSHALL: `emptying` saw the keys before they ran.
            Record::Clear | Record::SwapDb { .. } | Record::ClearAll => {}
            Record::InDb { db, record } => self.touch_in(*db, record),
            Record::Txn(ops) => ops.iter().for_each(|op| self.touch_in(db, op)),
        }
    }

    /// The connection closed: forget its transaction and watches.
    pub fn session_closed(&mut self, session: SessionId) {
        self.end(session);
    }

    fn end(&mut self, session: SessionId) {
        self.unwatch_all(session);
        self.sessions.remove(&session);
    }

    fn unwatch_all(&mut self, session: SessionId) {
        let Some(s) = self.sessions.get_mut(&session) else {
            return;
        };
        s.dirty = false;
        for (key, _) in s.watched.drain(..) {
            if let Some(set) = self.watchers.get_mut(&key) {
                set.remove(&session);
                if set.is_empty() {
                    self.watchers.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::req;
    use super::super::{parse as parse_command, DataCommand, DataOp};
    use super::*;
    use crate::keyspace::Value;

    fn key(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn set(k: &str) -> Record {
        Record::Set {
            key: key(k),
            value: key("v"),
            expires_at_ms: None,
        }
    }

    #[test]
    fn parse_checks_arity() {
        // Transaction commands only: anything else is `None`.
        let p = |w: &[&str]| match parse_command(&req(w)) {
            Ok(Command::Txn(t)) => Some(Ok(t)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        };
        assert_eq!(p(&["multi"]), Some(Ok(TxnCommand::Multi)));
        assert_eq!(
            p(&["exec", "x"]),
            Some(Err(Frame::err(
                "wrong number of arguments for 'exec' command"
            )))
        );
        assert_eq!(
            p(&["watch"]),
            Some(Err(Frame::err(
                "wrong number of arguments for 'watch' command"
            )))
        );
        assert_eq!(
            p(&["watch", "a", "b"]),
            Some(Ok(TxnCommand::Watch(vec![key("a"), key("b")])))
        );
        assert_eq!(p(&["get", "a"]), None);
    }

    #[test]
    fn admit_queues_runs_or_refuses_by_the_table_flags() {
        let mut t = Transactions::new();
        let admit = |t: &mut Transactions, w: &[&str]| {
            let r = req(w);
            t.admit(
                1,
                &r,
                r.first().and_then(|n| table::lookup(n)),
                parse_command(&r),
            )
        };
        // Outside MULTI everything runs.
        assert!(matches!(admit(&mut t, &["save"]), Ok(Command::Server(_))));
        assert_eq!(t.multi(1), Frame::ok());
        assert_eq!(
            admit(&mut t, &["set", "a", "1"]),
            Err(Frame::Simple("QUEUED".into()))
        );
        assert_eq!(
            admit(&mut t, &["unwatch"]),
            Err(Frame::Simple("QUEUED".into()))
        );
        assert!(matches!(
            admit(&mut t, &["watch", "a"]),
            Ok(Command::Txn(TxnCommand::Watch(_)))
        ));
        assert!(matches!(admit(&mut t, &["SAVE"]), Err(Frame::Error(_))));
        assert!(matches!(
            admit(&mut t, &["exec"]),
            Ok(Command::Txn(TxnCommand::Exec))
        ));
        assert_eq!(t.exec(1, &Databases::default(), 0), Err(exec_abort()));
    }

    #[test]
    fn misuse_gets_redis_errors() {
        let mut t = Transactions::new();
        let ks = Keyspace::new();
        assert_eq!(
            t.exec(1, &Databases::from(ks.clone()), 0),
            Err(Frame::err("EXEC without MULTI"))
        );
        assert_eq!(t.discard(1), Frame::err("DISCARD without MULTI"));
        assert_eq!(t.multi(1), Frame::ok());
        assert_eq!(t.multi(1), Frame::err("MULTI calls can not be nested"));
        assert_eq!(
            t.watch(1, 0, vec![key("a")], &ks, 0),
            Frame::err("WATCH inside MULTI is not allowed")
        );
        // Neither error aborts the transaction.
        assert_eq!(t.exec(1, &Databases::from(ks.clone()), 0), Ok(vec![]));
        assert!(!t.in_multi(1));
    }

    #[test]
    fn a_queueing_error_aborts_exec() {
        let mut t = Transactions::new();
        let ks = Keyspace::new();
        t.multi(1);
        let queued = t.queue(1, parse_command(&req(&["set", "a", "1"])));
        assert_eq!(queued, Frame::Simple("QUEUED".into()));
        let err = t.queue(1, parse_command(&req(&["frob"])));
        assert!(matches!(err, Frame::Error(_)));
        assert_eq!(
            t.exec(1, &Databases::from(ks.clone()), 0),
            Err(exec_abort())
        );
        assert!(!t.in_multi(1));
    }

    #[test]
    fn queued_commands_come_back_in_order() {
        let mut t = Transactions::new();
        let ks = Keyspace::new();
        t.multi(1);
        t.queue(1, parse_command(&req(&["set", "a", "1"])));
        t.queue(1, parse_command(&req(&["get", "a"])));
        let cmds = t.exec(1, &Databases::from(ks.clone()), 0).unwrap();
        assert_eq!(cmds.len(), 2);
        assert!(matches!(
            cmds[1],
            Command::Data(DataCommand {
                op: DataOp::Get(_),
                ..
            })
        ));
    }

    #[test]
    fn a_write_to_a_watched_key_aborts_only_its_watchers() {
        let mut t = Transactions::new();
        let ks = Keyspace::new();
        t.watch(1, 0, vec![key("a")], &ks, 0);
        t.watch(2, 0, vec![key("b")], &ks, 0);
        t.touch(&Record::Txn(vec![set("a"), set("c")]));
        t.multi(1);
        t.multi(2);
        assert_eq!(
            t.exec(1, &Databases::from(ks.clone()), 0),
            Err(Frame::NullArray)
        );
        assert_eq!(t.exec(2, &Databases::from(ks.clone()), 0), Ok(vec![]));
        assert_eq!(t.watched_keys(), 0);
    }

    #[test]
    fn discard_and_unwatch_forget_the_watch() {
        let mut t = Transactions::new();
        let ks = Keyspace::new();
        t.watch(1, 0, vec![key("a")], &ks, 0);
        t.unwatch(1);
        t.touch(&set("a"));
        t.multi(1);
        assert_eq!(t.exec(1, &Databases::from(ks.clone()), 0), Ok(vec![]));

        t.watch(1, 0, vec![key("a")], &ks, 0);
        t.multi(1);
        assert_eq!(t.discard(1), Frame::ok());
        t.touch(&set("a"));
        t.multi(1);
        assert_eq!(t.exec(1, &Databases::from(ks.clone()), 0), Ok(vec![]));
        assert_eq!(t.watched_keys(), 0);
    }

    #[test]
    fn flushdb_of_an_existing_key_and_expiry_dirty_watchers() {
        let mut t = Transactions::new();
        let mut ks = Keyspace::new();
        // A FLUSHDB of a key that does not exist changes nothing watched (Redis 7).
        t.watch(1, 0, vec![key("gone")], &ks, 0);
        t.emptying(Emptying::Db(0), &Databases::from(ks.clone()), 0);
        t.multi(1);
        assert_eq!(t.exec(1, &Databases::from(ks.clone()), 0), Ok(vec![]));
        ks.insert(key("here"), Value::new("x"));
        t.watch(1, 0, vec![key("here")], &ks, 0);
        t.emptying(Emptying::Swap(0, 0), &Databases::from(ks.clone()), 0);
        t.emptying(Emptying::Db(1), &Databases::from(ks.clone()), 0);
        t.multi(1);
        assert_eq!(t.exec(1, &Databases::from(ks.clone()), 0), Ok(vec![]));
        for what in [Emptying::Db(0), Emptying::All, Emptying::Swap(0, 1)] {
            t.watch(1, 0, vec![key("here")], &ks, 0);
            t.emptying(what, &Databases::from(ks.clone()), 0);
            t.multi(1);
            assert_eq!(
                t.exec(1, &Databases::from(ks.clone()), 0),
                Err(Frame::NullArray),
                "{what:?}"
            );
        }

        let mut v = Value::new("x");
        v.expires_at_ms = Some(100);
        ks.insert(key("e"), v);
        t.watch(1, 0, vec![key("e")], &ks, 50);
        t.multi(1);
        assert_eq!(
            t.exec(1, &Databases::from(ks.clone()), 150),
            Err(Frame::NullArray)
        );
        // Watched after it expired: its absence is what was seen, and still holds.
        t.watch(1, 0, vec![key("e")], &ks, 150);
        t.multi(1);
        assert_eq!(t.exec(1, &Databases::from(ks.clone()), 200), Ok(vec![]));
    }

    #[test]
    fn a_closed_session_leaves_nothing_behind() {
        let mut t = Transactions::new();
        let ks = Keyspace::new();
        t.watch(7, 0, vec![key("a"), key("a"), key("b")], &ks, 0);
        t.multi(7);
        t.session_closed(7);
        assert_eq!(t.watched_keys(), 0);
        assert!(!t.in_multi(7));
    }
}
