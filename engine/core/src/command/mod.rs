//! The commands: parsing a request into a [`Command`], and applying data commands to the key
//! space. Applying a write returns the [`Record`] to log; the key space is changed only through
//! [`Keyspace::apply`], so the in-memory state is always what replaying the log rebuilds.
//!
//! Every command is one row of the [`table`] (name, arity, flags, key positions, parser,
//! docs), which drives parsing, arity errors, COMMAND and the pre-auth and MULTI checks; see
//! its doc for how to add one.
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

pub mod config;
pub mod databases;
pub mod diagnostics;
pub mod glob;
pub mod info;
pub mod keys;
pub mod long_double;
pub mod pubsub;
pub mod replication;
pub mod reply_error;
pub mod server;
pub mod strings;
pub mod table;
pub mod txn;

use bytes::Bytes;

use crate::keyspace::Keyspace;
use crate::record::Record;
use crate::resp::Frame;

pub use databases::DbCommand;
pub use reply_error::ReplyError;
pub use server::ServerCommand;
pub use table::{CommandSpec, Flags, SessionCommand};
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
    /// SELECT, MOVE, SWAPDB, FLUSHALL, COPY … DB: run by the store across databases
    /// ([`databases::apply`]).
    Db(DbCommand),
}

/// A command on the key space, as parsed: its table row and what it does.
#[derive(Debug, Clone)]
pub struct DataCommand {
    spec: &'static CommandSpec,
    pub op: DataOp,
}

impl PartialEq for DataCommand {
    fn eq(&self, other: &Self) -> bool {
        self.spec.name == other.spec.name && self.op == other.op
    }
}

impl Eq for DataCommand {}

/// What a data command does, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataOp {
    Get(Bytes),
    Set(strings::SetArgs),
    SetNx {
        key: Bytes,
        value: Bytes,
    },
    GetDel(Bytes),
    GetEx {
        key: Bytes,
        expiry: strings::GetExExpiry,
    },
    GetRange {
        key: Bytes,
        start: i64,
        end: i64,
    },
    SetRange {
        key: Bytes,
        offset: u64,
        value: Bytes,
    },
    IncrByFloat {
        key: Bytes,
        by: Bytes,
    },
    MSetNx(Vec<(Bytes, Bytes)>),
    Lcs(strings::LcsArgs),
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
    RandomKey,
    Expire(keys::ExpireArgs),
    Ttl {
        key: Bytes,
        kind: keys::TtlKind,
    },
    Persist(Bytes),
    Type(Bytes),
    Rename {
        from: Bytes,
        to: Bytes,
        nx: bool,
    },
    Copy {
        from: Bytes,
        to: Bytes,
        replace: bool,
    },
    Object {
        key: Bytes,
        query: keys::ObjectQuery,
    },
    DbSize,
    FlushDb,
}

/// What a data command may know besides the key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    /// Wall-clock time, Unix milliseconds (expiry).
    pub now_ms: u64,
    /// The longest string a command may build (SETRANGE, APPEND; `limits.max_bulk_len`).
    pub max_bulk_len: usize,
    /// A random number drawn for this command (RANDOMKEY); the store draws it from a seeded
    /// generator, so a run is reproducible.
    pub random: u64,
}

impl Context {
    /// At `now_ms`, with the default limits and random number 0.
    pub fn at(now_ms: u64) -> Self {
        Context {
            now_ms,
            max_bulk_len: crate::resp::Limits::default().max_bulk_len,
            random: 0,
        }
    }
}

/// What a reply depends on, so that it waits until every write it saw is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// This one key (most commands: no allocation for the list).
    Key(Bytes),
    /// These keys.
    Keys(Vec<Bytes>),
    /// The whole key space (DBSIZE, KEYS, SCAN).
    All,
}

impl Access {
    /// The keys it names (none for the whole key space).
    pub fn keys(&self) -> &[Bytes] {
        match self {
            Access::Key(key) => std::slice::from_ref(key),
            Access::Keys(keys) => keys,
            Access::All => &[],
        }
    }
}

impl From<Bytes> for Access {
    fn from(key: Bytes) -> Self {
        Access::Key(key)
    }
}

impl From<Vec<Bytes>> for Access {
    fn from(keys: Vec<Bytes>) -> Self {
        Access::Keys(keys)
    }
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
    pub fn new(spec: &'static CommandSpec, op: DataOp) -> Self {
        DataCommand { spec, op }
    }

    /// Its row in the command table.
    pub fn spec(&self) -> &'static CommandSpec {
        self.spec
    }

    /// Whether the command may change the key space (refused when storage has failed): the
    /// row's `write` flag.
    pub fn is_write(&self) -> bool {
        self.spec.is(Flags::WRITE)
    }

    /// Applies the command to `ks` at wall-clock time `now_ms` (Unix milliseconds), with the
    /// default limits.
    pub fn apply(self, ks: &mut Keyspace, now_ms: u64) -> Applied {
        self.apply_in(ks, &Context::at(now_ms))
    }

    /// Applies the command to `ks` in `ctx`.
    pub fn apply_in(self, ks: &mut Keyspace, ctx: &Context) -> Applied {
        let now_ms = ctx.now_ms;
        match self.op {
            DataOp::Get(key) => strings::get(ks, key, now_ms),
            DataOp::Set(args) => strings::set(ks, args, now_ms, self.spec.name),
            DataOp::SetNx { key, value } => strings::setnx(ks, key, value, now_ms),
            DataOp::GetDel(key) => strings::getdel(ks, key, now_ms),
            DataOp::GetEx { key, expiry } => strings::getex(ks, key, expiry, now_ms),
            DataOp::GetRange { key, start, end } => strings::getrange(ks, key, start, end, now_ms),
            DataOp::SetRange { key, offset, value } => {
                strings::setrange(ks, key, offset, value, ctx)
            }
            DataOp::IncrByFloat { key, by } => strings::incr_by_float(ks, key, by, now_ms),
            DataOp::MSetNx(pairs) => strings::msetnx(ks, pairs, now_ms),
            DataOp::Lcs(args) => strings::lcs(ks, args, ctx),
            DataOp::Update { key, value } => strings::update(ks, key, value, now_ms),
            DataOp::Cas { key, expected, new } => strings::cas(ks, key, expected, new, now_ms),
            DataOp::Append { key, value } => strings::append(ks, key, value, ctx),
            DataOp::Strlen(key) => strings::strlen(ks, key, now_ms),
            DataOp::IncrBy { key, by } => strings::incr_by(ks, key, by, now_ms),
            DataOp::MGet(keys) => strings::mget(ks, keys, now_ms),
            DataOp::MSet(pairs) => strings::mset(ks, pairs),
            DataOp::Del(keys) => keys::del(ks, keys, now_ms),
            DataOp::Exists(keys) => keys::exists(ks, keys, now_ms),
            DataOp::Keys(pattern) => keys::keys(ks, &pattern, now_ms),
            DataOp::Scan(args) => keys::scan(ks, args, now_ms),
            DataOp::RandomKey => keys::randomkey(ks, ctx.random, now_ms),
            DataOp::Expire(args) => keys::expire(ks, args, now_ms, self.spec.name),
            DataOp::Ttl { key, kind } => keys::ttl(ks, key, kind, now_ms),
            DataOp::Persist(key) => keys::persist(ks, key, now_ms),
            DataOp::Type(key) => keys::type_of(ks, key, now_ms),
            DataOp::Rename { from, to, nx } => keys::rename(ks, from, to, nx, now_ms),
            DataOp::Copy { from, to, replace } => keys::copy(ks, from, to, replace, now_ms),
            DataOp::Object { key, query } => keys::object(ks, key, query, now_ms),
            DataOp::DbSize => keys::dbsize(ks, now_ms),
            DataOp::FlushDb => keys::flushdb(ks),
        }
    }
}

/// Applies `record` to `ks` and returns the outcome: the only way commands change the state.
fn write(ks: &mut Keyspace, record: Record, reply: Frame, access: impl Into<Access>) -> Applied {
    ks.apply(&record);
    Applied {
        reply,
        record: Some(record),
        access: access.into(),
    }
}

fn read(reply: Frame, access: impl Into<Access>) -> Applied {
    Applied {
        reply,
        record: None,
        access: access.into(),
    }
}

/// Parses a request (command name first, matched case-insensitively): finds its row in the
/// [`table`], checks the number of arguments against the row's arity, then runs the row's
/// parser on the arguments after the name.
pub fn parse(args: &[Bytes]) -> Result<Command, Frame> {
    parse_as(args.first().and_then(|name| table::lookup(name)), args)
}

/// [`parse`] for a request whose row the caller has looked up already (`spec`: `None` for an
/// unknown command), so a request costs one table lookup.
pub fn parse_as(spec: Option<&'static CommandSpec>, args: &[Bytes]) -> Result<Command, Frame> {
    let Some((name, rest)) = args.split_first() else {
        return Err(ReplyError::EmptyCommand.into());
    };
    let Some(spec) = spec else {
        return Err(ReplyError::unknown_command(name, rest).into());
    };
    if !spec.arity_fits(args.len()) {
        return Err(wrong_arity(spec.name));
    }
    (spec.parse)(spec, rest)
}

/// A data command's parse result.
fn data(spec: &'static CommandSpec, op: DataOp) -> Result<Command, Frame> {
    Ok(Command::Data(DataCommand::new(spec, op)))
}

/// The arguments of a command of fixed arity, as an array (the table checked their number;
/// a row whose arity disagrees with its parser gets an error, never a panic).
fn exact<'a, const N: usize>(
    spec: &CommandSpec,
    rest: &'a [Bytes],
) -> Result<&'a [Bytes; N], Frame> {
    rest.try_into().map_err(|_| wrong_arity(spec.name))
}

/// `-ERR wrong number of arguments for 'get' command`.
pub fn wrong_arity(name: &'static str) -> Frame {
    ReplyError::WrongArity { name }.into()
}

/// `-ERR syntax error`.
pub fn syntax_error() -> Frame {
    ReplyError::Syntax.into()
}

/// Parses a decimal i64 argument (or stored value) as Redis's `string2ll` does: only the
/// canonical form, so no `+`, no leading zero, no `-0`, no spaces; with Redis' error text.
pub fn parse_i64(arg: &[u8]) -> Result<i64, ReplyError> {
    std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.parse::<i64>().ok().filter(|n| n.to_string() == s))
        .ok_or(ReplyError::NotInteger)
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
            Ok(Command::Server(_) | Command::Txn(_) | Command::Db(_)) => {
                panic!("not a data command")
            }
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
