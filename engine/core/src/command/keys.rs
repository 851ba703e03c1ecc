//! Key-space commands: DEL/DELETE/UNLINK, EXISTS, TOUCH, KEYS, SCAN, RANDOMKEY, DBSIZE,
//! FLUSHDB, TYPE, RENAME/RENAMENX, COPY, OBJECT, and the TTL commands (EXPIRE, PEXPIRE,
//! EXPIREAT, PEXPIREAT with NX/XX/GT/LT; TTL, PTTL, EXPIRETIME, PEXPIRETIME; PERSIST), with
//! Redis 7.0's semantics and error texts. Records stay physical: a TTL change is a SET of the
//! value with its new expiry (a DELETE when the time is already past, as Redis does), RENAME
//! is a TXN of the DELETE and the SET.
//!
//! COPY with a `DB` option is a [`super::DbCommand`], run by the store across databases.
//! Departures: OBJECT ENCODING is judged from the bytes
//! (`int` for a canonical integer of at most 20 bytes, `embstr` up to 44 bytes, else `raw`):
//! Redis also remembers how a value was made (APPEND and SETRANGE make `raw`, INCRBYFLOAT
//! `embstr`); access times are not tracked, so OBJECT IDLETIME answers 0; RANDOMKEY costs a
//! pass over the key space.

use bytes::Bytes;

use super::{
    data, exact, glob, parse_i64, read, syntax_error, write, wrong_arity, Access, Applied, Command,
    CommandSpec, DataOp, ReplyError, ServerCommand,
};
use crate::keyspace::{Keyspace, ValueRef};
use crate::record::Record;
use crate::resp::Frame;

/// The parsed arguments of SCAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanArgs {
    pub cursor: u64,
    pub pattern: Option<Bytes>,
    pub count: usize,
    /// TYPE named a type other than string: the keys are visited (the cursor advances as
    /// without it) but none is returned.
    pub other_type: bool,
}

/// `DEL key [key ...]` (and DELETE).
pub fn parse_del(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    data(spec, DataOp::Del(rest.to_vec()))
}

/// `EXISTS key [key ...]`.
pub fn parse_exists(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    data(spec, DataOp::Exists(rest.to_vec()))
}

/// `KEYS pattern`.
pub fn parse_keys(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let [pattern] = exact(spec, rest)?;
    data(spec, DataOp::Keys(pattern.clone()))
}

/// `DBSIZE`.
pub fn parse_dbsize(spec: &'static CommandSpec, _: &[Bytes]) -> Result<Command, Frame> {
    data(spec, DataOp::DbSize)
}

/// `FLUSHDB [ASYNC|SYNC]`: both flush at once; any other word is a syntax error, as in Redis.
pub fn parse_flushdb(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    match rest {
        [] => {}
        [mode] if matches!(mode.to_ascii_uppercase().as_slice(), b"ASYNC" | b"SYNC") => {}
        _ => return Err(syntax_error()),
    }
    data(spec, DataOp::FlushDb)
}

/// A SCAN cursor as Redis 7.0 reads it (`strtoul`, refusing a leading space, trailing bytes
/// and overflow): so `""` is 0, `+5` and `007` are 5 and 7, and `-1` wraps to `u64::MAX`.
fn scan_cursor(arg: &[u8]) -> Option<u64> {
    if arg.is_empty() {
        return Some(0);
    }
    if matches!(arg[0], b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r') {
        return None;
    }
    let (negative, digits) = match arg[0] {
        b'-' => (true, &arg[1..]),
        b'+' => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(if negative { n.wrapping_neg() } else { n })
}

/// Parses `SCAN cursor [MATCH pattern] [COUNT n] [TYPE string]`.
pub fn parse_scan(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let [cursor, rest @ ..] = rest else {
        return Err(wrong_arity(spec.name));
    };
    let cursor = scan_cursor(cursor).ok_or(ReplyError::InvalidCursor)?;
    let mut args = ScanArgs {
        cursor,
        pattern: None,
        count: 10,
        other_type: false,
    };
    let mut opts = rest.chunks(2);
    for pair in opts.by_ref() {
        let [name, value] = pair else {
            return Err(syntax_error());
        };
        match name.to_ascii_uppercase().as_slice() {
            b"MATCH" => args.pattern = Some(value.clone()),
            b"COUNT" => {
                let n = parse_i64(value)?;
                if n < 1 {
                    return Err(syntax_error());
                }
                args.count = usize::try_from(n).unwrap_or(usize::MAX);
            }
            // Every value is a string.
            b"TYPE" => args.other_type = !value.eq_ignore_ascii_case(b"string"),
            _ => return Err(syntax_error()),
        }
    }
    data(spec, DataOp::Scan(args))
}

pub(super) fn del(ks: &mut Keyspace, keys: Vec<Bytes>, now_ms: u64) -> Applied {
    let mut ops: Vec<Record> = Vec::new();
    for key in &keys {
        let live = ks.get_live(key, now_ms).is_some();
        let already = ops
            .iter()
            .any(|op| matches!(op, Record::Delete { key: k } if k == key));
        if live && !already {
            ops.push(Record::Delete { key: key.clone() });
        }
    }
    let n = ops.len() as i64;
    let record = match ops.len() {
        0 => return read(Frame::Integer(0), keys),
        1 => ops.remove(0),
        _ => Record::Txn(ops),
    };
    write(ks, record, Frame::Integer(n), keys)
}

pub(super) fn exists(ks: &Keyspace, keys: Vec<Bytes>, now_ms: u64) -> Applied {
    let n = keys
        .iter()
        .filter(|k| ks.get_live(k, now_ms).is_some())
        .count();
    read(Frame::Integer(n as i64), keys)
}

fn whole(reply: Frame) -> Applied {
    Applied {
        reply,
        record: None,
        access: Access::All,
    }
}

pub(super) fn keys(ks: &Keyspace, pattern: &[u8], now_ms: u64) -> Applied {
    let all = pattern == b"*";
    let found = ks
        .iter()
        .filter(|(k, v)| !v.is_expired(now_ms) && (all || glob::matches(pattern, k)))
        .map(|(k, _)| Frame::Bulk(Bytes::copy_from_slice(k)))
        .collect();
    whole(Frame::Array(found))
}

/// The SCAN position of a key: a stable 64-bit hash (FNV-1a), never 0 (0 means "start").
fn scan_position(key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.max(1)
}

/// SCAN visits keys in the order of their hash; the cursor is the hash to resume from, so
/// every key present for the whole iteration is returned once (barring a 64-bit collision at
/// a page boundary), whatever writes happen in between. Each call costs one pass over the
/// key space.
pub(super) fn scan(ks: &Keyspace, args: ScanArgs, now_ms: u64) -> Applied {
    let mut page: Vec<(u64, &[u8])> = ks
        .iter()
        .filter(|(_, v)| !v.is_expired(now_ms))
        .map(|(k, _)| (scan_position(k), k))
        .filter(|(pos, _)| *pos >= args.cursor)
        .collect();
    let next = if page.len() > args.count {
        page.select_nth_unstable(args.count);
        let next = page[args.count].0;
        page.truncate(args.count);
        next
    } else {
        0
    };
    let keys = page
        .into_iter()
        .filter(|(_, k)| {
            !args.other_type && args.pattern.as_ref().is_none_or(|p| glob::matches(p, k))
        })
        .map(|(_, k)| Frame::Bulk(Bytes::copy_from_slice(k)))
        .collect();
    whole(Frame::Array(vec![
        Frame::Bulk(Bytes::from(next.to_string())),
        Frame::Array(keys),
    ]))
}

pub(super) fn dbsize(ks: &Keyspace, now_ms: u64) -> Applied {
    whole(Frame::Integer(ks.live_len(now_ms) as i64))
}

/// Which EXPIRE variant: the unit of its number and whether it is relative to now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpireKind {
    pub seconds: bool,
    pub relative: bool,
}

/// EXPIRE's condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpireIf {
    Always,
    /// NX: the key has no TTL.
    NoTtl,
    /// XX: the key has a TTL.
    HasTtl,
    /// GT: the new time is later than the current one (no TTL counts as infinite).
    Later,
    /// LT: the new time is earlier (no TTL counts as infinite).
    Earlier,
    /// XX and GT.
    HasTtlAndLater,
    /// XX and LT.
    HasTtlAndEarlier,
}

/// The parsed arguments of EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpireArgs {
    pub key: Bytes,
    pub kind: ExpireKind,
    /// The number as given (seconds or milliseconds), checked against the clock when applied.
    pub when: i64,
    pub condition: ExpireIf,
}

fn parse_expire_generic(
    spec: &'static CommandSpec,
    rest: &[Bytes],
    kind: ExpireKind,
) -> Result<Command, Frame> {
    let [key, when, opts @ ..] = rest else {
        return Err(wrong_arity(spec.name));
    };
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for opt in opts {
        match opt.to_ascii_uppercase().as_slice() {
            b"NX" => nx = true,
            b"XX" => xx = true,
            b"GT" => gt = true,
            b"LT" => lt = true,
            _ => {
                return Err(ReplyError::UnsupportedOption {
                    option: String::from_utf8_lossy(opt).into_owned(),
                }
                .into())
            }
        }
    }
    if nx && (xx || gt || lt) {
        return Err(ReplyError::ExpireNxAndOthers.into());
    }
    if gt && lt {
        return Err(ReplyError::ExpireGtAndLt.into());
    }
    let when = parse_i64(when)?;
    let condition = match (nx, xx, gt, lt) {
        (true, ..) => ExpireIf::NoTtl,
        (_, true, true, _) => ExpireIf::HasTtlAndLater,
        (_, true, _, true) => ExpireIf::HasTtlAndEarlier,
        (_, true, ..) => ExpireIf::HasTtl,
        (_, _, true, _) => ExpireIf::Later,
        (_, _, _, true) => ExpireIf::Earlier,
        _ => ExpireIf::Always,
    };
    data(
        spec,
        DataOp::Expire(ExpireArgs {
            key: key.clone(),
            kind,
            when,
            condition,
        }),
    )
}

/// `EXPIRE key seconds [NX|XX|GT|LT]`.
pub fn parse_expire(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let kind = ExpireKind {
        seconds: true,
        relative: true,
    };
    parse_expire_generic(spec, rest, kind)
}

/// `PEXPIRE key milliseconds [NX|XX|GT|LT]`.
pub fn parse_pexpire(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let kind = ExpireKind {
        seconds: false,
        relative: true,
    };
    parse_expire_generic(spec, rest, kind)
}

/// `EXPIREAT key unix-seconds [NX|XX|GT|LT]`.
pub fn parse_expireat(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let kind = ExpireKind {
        seconds: true,
        relative: false,
    };
    parse_expire_generic(spec, rest, kind)
}

/// `PEXPIREAT key unix-milliseconds [NX|XX|GT|LT]`.
pub fn parse_pexpireat(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let kind = ExpireKind {
        seconds: false,
        relative: false,
    };
    parse_expire_generic(spec, rest, kind)
}

/// EXPIRE and its variants (Redis 7.0's `expireGenericCommand`): the time in ms, overflow
/// refused; 0 for a missing key or an unmet condition; a time not in the future deletes the
/// key; otherwise a SET of the value with the new expiry.
pub(super) fn expire(
    ks: &mut Keyspace,
    args: ExpireArgs,
    now_ms: u64,
    command: &'static str,
) -> Applied {
    let key = args.key;
    let invalid = || {
        read(
            ReplyError::InvalidExpire { command }.into(),
            vec![key.clone()],
        )
    };
    let mut when = args.when;
    if args.kind.seconds {
        match when.checked_mul(1000) {
            Some(ms) => when = ms,
            None => return invalid(),
        }
    }
    if args.kind.relative {
        match when.checked_add(now_ms as i64) {
            Some(at) => when = at,
            None => return invalid(),
        }
    }
    let Some(old) = ks.get_live(&key, now_ms) else {
        return read(Frame::Integer(0), key);
    };
    let current = old.expires_at_ms.map(|at| at as i64);
    let later = current.is_some_and(|c| when > c);
    let earlier = current.is_none_or(|c| when < c);
    let applies = match args.condition {
        ExpireIf::Always => true,
        ExpireIf::NoTtl => current.is_none(),
        ExpireIf::HasTtl => current.is_some(),
        ExpireIf::Later => later,
        ExpireIf::Earlier => earlier,
        ExpireIf::HasTtlAndLater => current.is_some() && later,
        ExpireIf::HasTtlAndEarlier => current.is_some() && earlier,
    };
    if !applies {
        return read(Frame::Integer(0), key);
    }
    let record = if when <= now_ms as i64 {
        Record::Delete { key: key.clone() }
    } else {
        Record::Set {
            key: key.clone(),
            value: old.bytes(),
            expires_at_ms: Some(when as u64),
        }
    };
    write(ks, record, Frame::Integer(1), key)
}

/// What TTL and its variants report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlKind {
    pub ms: bool,
    /// EXPIRETIME / PEXPIRETIME: the absolute time, not the time left.
    pub absolute: bool,
}

fn parse_ttl_generic(
    spec: &'static CommandSpec,
    rest: &[Bytes],
    kind: TtlKind,
) -> Result<Command, Frame> {
    let [key] = exact(spec, rest)?;
    data(
        spec,
        DataOp::Ttl {
            key: key.clone(),
            kind,
        },
    )
}

/// `TTL key`.
pub fn parse_ttl(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    parse_ttl_generic(
        spec,
        rest,
        TtlKind {
            ms: false,
            absolute: false,
        },
    )
}

/// `PTTL key`.
pub fn parse_pttl(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    parse_ttl_generic(
        spec,
        rest,
        TtlKind {
            ms: true,
            absolute: false,
        },
    )
}

/// `EXPIRETIME key`.
pub fn parse_expiretime(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    parse_ttl_generic(
        spec,
        rest,
        TtlKind {
            ms: false,
            absolute: true,
        },
    )
}

/// `PEXPIRETIME key`.
pub fn parse_pexpiretime(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    parse_ttl_generic(
        spec,
        rest,
        TtlKind {
            ms: true,
            absolute: true,
        },
    )
}

/// -2 for a missing key, -1 without a TTL, else the time (seconds rounded to nearest).
pub(super) fn ttl(ks: &Keyspace, key: Bytes, kind: TtlKind, now_ms: u64) -> Applied {
    let reply = match ks.get_live(&key, now_ms) {
        None => -2,
        Some(ValueRef {
            expires_at_ms: None,
            ..
        }) => -1,
        Some(ValueRef {
            expires_at_ms: Some(at),
            ..
        }) => {
            let t = if kind.absolute {
                at as i64
            } else {
                (at as i64).saturating_sub(now_ms as i64)
            }
            .max(0);
            if kind.ms {
                t
            } else {
                // As Redis computes it, without overflowing near i64::MAX.
                ((i128::from(t) + 500) / 1000) as i64
            }
        }
    };
    read(Frame::Integer(reply), key)
}

/// `PERSIST key`.
pub fn parse_persist(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let [key] = exact(spec, rest)?;
    data(spec, DataOp::Persist(key.clone()))
}

pub(super) fn persist(ks: &mut Keyspace, key: Bytes, now_ms: u64) -> Applied {
    match ks.get_live(&key, now_ms) {
        Some(
            value @ ValueRef {
                expires_at_ms: Some(_),
                ..
            },
        ) => {
            let record = Record::Set {
                key: key.clone(),
                value: value.bytes(),
                expires_at_ms: None,
            };
            write(ks, record, Frame::Integer(1), key)
        }
        _ => read(Frame::Integer(0), key),
    }
}

/// `TYPE key`.
pub fn parse_type(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let [key] = exact(spec, rest)?;
    data(spec, DataOp::Type(key.clone()))
}

pub(super) fn type_of(ks: &Keyspace, key: Bytes, now_ms: u64) -> Applied {
    let name = if ks.get_live(&key, now_ms).is_some() {
        "string"
    } else {
        "none"
    };
    read(Frame::Simple(name.into()), key)
}

/// `RENAME key newkey`.
pub fn parse_rename(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let [from, to] = exact(spec, rest)?;
    data(
        spec,
        DataOp::Rename {
            from: from.clone(),
            to: to.clone(),
            nx: false,
        },
    )
}

/// `RENAMENX key newkey`.
pub fn parse_renamenx(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let [from, to] = exact(spec, rest)?;
    data(
        spec,
        DataOp::Rename {
            from: from.clone(),
            to: to.clone(),
            nx: true,
        },
    )
}

/// RENAME / RENAMENX: `no such key` for a missing source; the same name changes nothing;
/// otherwise one TXN record [DELETE from, SET to value expiry].
pub(super) fn rename(ks: &mut Keyspace, from: Bytes, to: Bytes, nx: bool, now_ms: u64) -> Applied {
    let keys = vec![from.clone(), to.clone()];
    let Some(value) = ks.get_live(&from, now_ms).map(|v| v.to_value()) else {
        return read(ReplyError::NoSuchKey.into(), keys);
    };
    let done = if nx { Frame::Integer(1) } else { Frame::ok() };
    if from == to {
        return read(if nx { Frame::Integer(0) } else { Frame::ok() }, keys);
    }
    if nx && ks.get_live(&to, now_ms).is_some() {
        return read(Frame::Integer(0), keys);
    }
    let record = Record::Txn(vec![
        Record::Delete { key: from },
        Record::Set {
            key: to,
            value: value.data,
            expires_at_ms: value.expires_at_ms,
        },
    ]);
    write(ks, record, done, keys)
}

/// `COPY source destination [DB 0] [REPLACE]`.
pub fn parse_copy(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let [from, to, opts @ ..] = rest else {
        return Err(wrong_arity(spec.name));
    };
    let mut replace = false;
    let mut dbs = Vec::new();
    let mut syntax = false;
    let mut i = 0;
    while i < opts.len() {
        match opts[i].to_ascii_uppercase().as_slice() {
            b"REPLACE" => replace = true,
            b"DB" if i + 1 < opts.len() => {
                let n = parse_i64(&opts[i + 1])?;
                if i32::try_from(n).is_err() {
                    return Err(ReplyError::IntOutOfRange.into());
                }
                dbs.push(n);
                i += 1;
            }
            // After a DB option, the store checks its index before this error is answered.
            _ if !dbs.is_empty() => {
                syntax = true;
                break;
            }
            _ => return Err(syntax_error()),
        }
        i += 1;
    }
    if let Some(db) = dbs.pop() {
        // Across databases: the store checks the index and the same-object case.
        return Ok(Command::Db(super::DbCommand::CopyTo {
            from: from.clone(),
            to: to.clone(),
            db,
            replace,
            earlier: dbs,
            syntax_error: syntax,
        }));
    }
    if from == to {
        return Err(ReplyError::SameObject.into());
    }
    data(
        spec,
        DataOp::Copy {
            from: from.clone(),
            to: to.clone(),
            replace,
        },
    )
}

pub(super) fn copy(
    ks: &mut Keyspace,
    from: Bytes,
    to: Bytes,
    replace: bool,
    now_ms: u64,
) -> Applied {
    let keys = vec![from.clone(), to.clone()];
    let Some(value) = ks.get_live(&from, now_ms).map(|v| v.to_value()) else {
        return read(Frame::Integer(0), keys);
    };
    if !replace && ks.get_live(&to, now_ms).is_some() {
        return read(Frame::Integer(0), keys);
    }
    let record = Record::Set {
        key: to,
        value: value.data,
        expires_at_ms: value.expires_at_ms,
    };
    write(ks, record, Frame::Integer(1), keys)
}

/// `TOUCH key [key ...]`: the number of the keys that exist (a key named twice counts twice).
pub fn parse_touch(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    data(spec, DataOp::Exists(rest.to_vec()))
}

/// `RANDOMKEY`.
pub fn parse_randomkey(spec: &'static CommandSpec, _: &[Bytes]) -> Result<Command, Frame> {
    data(spec, DataOp::RandomKey)
}

/// A live key chosen with `random`, or nil when there is none.
pub(super) fn randomkey(ks: &Keyspace, random: u64, now_ms: u64) -> Applied {
    let live = ks.live_len(now_ms);
    if live == 0 {
        return whole(Frame::Null);
    }
    let n = (random % live as u64) as usize;
    let key = ks
        .iter()
        .filter(|(_, v)| !v.is_expired(now_ms))
        .nth(n)
        .map(|(k, _)| Bytes::copy_from_slice(k));
    whole(key.map_or(Frame::Null, Frame::Bulk))
}

/// What OBJECT asks about a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectQuery {
    Encoding,
    RefCount,
    Freq,
    IdleTime,
}

const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
];

/// `OBJECT ENCODING|REFCOUNT|FREQ|IDLETIME key` and `OBJECT HELP`.
pub fn parse_object(_: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let Some((sub, args)) = rest.split_first() else {
        return Err(wrong_arity("object"));
    };
    let upper = sub.to_ascii_uppercase();
    let (query, name) = match upper.as_slice() {
        b"HELP" if args.is_empty() => {
            let lines = OBJECT_HELP
                .iter()
                .map(|l| Frame::Simple((*l).into()))
                .collect();
            return Ok(Command::Server(ServerCommand::Reply(Frame::Array(lines))));
        }
        b"HELP" => return Err(wrong_arity("object|help")),
        b"ENCODING" => (ObjectQuery::Encoding, "object|encoding"),
        b"REFCOUNT" => (ObjectQuery::RefCount, "object|refcount"),
        b"FREQ" => (ObjectQuery::Freq, "object|freq"),
        b"IDLETIME" => (ObjectQuery::IdleTime, "object|idletime"),
        _ => return Err(ReplyError::unknown_subcommand("OBJECT", sub).into()),
    };
    let [key] = args else {
        return Err(wrong_arity(name));
    };
    let spec = super::table::lookup(b"object").ok_or_else(|| wrong_arity(name))?;
    data(
        spec,
        DataOp::Object {
            key: key.clone(),
            query,
        },
    )
}

/// Redis's `string2l`: a canonical decimal i64 (no sign but `-`, no leading zero, not `-0`).
fn is_canonical_integer(bytes: &[u8]) -> Option<i64> {
    parse_i64(bytes).ok()
}

pub(super) fn object(ks: &Keyspace, key: Bytes, query: ObjectQuery, now_ms: u64) -> Applied {
    let Some(value) = ks.get_live(&key, now_ms) else {
        return read(Frame::Null, key);
    };
    let int = (value.data.len() <= 20)
        .then(|| is_canonical_integer(value.data))
        .flatten();
    let reply = match query {
        ObjectQuery::Encoding => Frame::bulk(match int {
            Some(_) => "int",
            None if value.data.len() <= 44 => "embstr",
            None => "raw",
        }),
        // Redis shares one object for each integer below 10,000, with an "infinite" count.
        ObjectQuery::RefCount => Frame::Integer(match int {
            Some(n) if (0..10_000).contains(&n) => i64::from(i32::MAX),
            _ => 1,
        }),
        ObjectQuery::Freq => ReplyError::NoLfuPolicy.into(),
        ObjectQuery::IdleTime => Frame::Integer(0),
    };
    read(reply, key)
}

pub(super) fn flushdb(ks: &mut Keyspace) -> Applied {
    ks.apply(&Record::Clear);
    Applied {
        reply: Frame::ok(),
        record: Some(Record::Clear),
        access: Access::All,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::req;
    use super::super::{parse, Command};
    use super::*;
    use std::collections::BTreeSet;

    fn run(ks: &mut Keyspace, words: &[&str]) -> Frame {
        match parse(&req(words)) {
            Ok(Command::Data(c)) => c.apply(ks, 0).reply,
            Ok(Command::Server(_) | Command::Txn(_) | Command::Db(_)) => {
                panic!("not a data command")
            }
            Err(f) => f,
        }
    }

    #[test]
    fn del_exists_dbsize_flushdb() {
        let mut ks = Keyspace::new();
        run(&mut ks, &["mset", "a", "1", "b", "2", "c", "3"]);
        assert_eq!(run(&mut ks, &["exists", "a", "a", "x"]), Frame::Integer(2));
        assert_eq!(run(&mut ks, &["del", "a", "a", "x"]), Frame::Integer(1));
        assert_eq!(run(&mut ks, &["delete", "b"]), Frame::Integer(1));
        assert_eq!(run(&mut ks, &["dbsize"]), Frame::Integer(1));
        assert_eq!(run(&mut ks, &["flushdb"]), Frame::ok());
        assert_eq!(run(&mut ks, &["dbsize"]), Frame::Integer(0));
    }

    fn bulks(f: &Frame) -> BTreeSet<String> {
        let Frame::Array(items) = f else {
            panic!("{f:?}")
        };
        items
            .iter()
            .map(|i| match i {
                Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn keys_and_scan_visit_every_key_once() {
        let mut ks = Keyspace::new();
        for i in 0..100 {
            run(&mut ks, &["set", &format!("user:{i}"), "x"]);
            run(&mut ks, &["set", &format!("other:{i}"), "x"]);
        }
        assert_eq!(bulks(&run(&mut ks, &["keys", "user:*"])).len(), 100);
        let mut seen = Vec::new();
        let mut cursor = "0".to_string();
        loop {
            let reply = run(&mut ks, &["scan", &cursor, "match", "user:*", "count", "7"]);
            let Frame::Array(parts) = &reply else {
                panic!()
            };
            let Frame::Bulk(next) = &parts[0] else {
                panic!()
            };
            seen.extend(bulks(&parts[1]));
            cursor = String::from_utf8_lossy(next).into_owned();
            if cursor == "0" {
                break;
            }
        }
        let unique: BTreeSet<_> = seen.iter().cloned().collect();
        assert_eq!((seen.len(), unique.len()), (100, 100));
        assert!(unique.iter().all(|k| k.starts_with("user:")));
        assert_eq!(run(&mut ks, &["scan", "0", "count"]), syntax_error());
    }
}
