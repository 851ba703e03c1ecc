//! String commands: GET, SET (NX/XX/EX/PX/EXAT/PXAT/KEEPTTL/GET), UPDATE, CAS, APPEND, STRLEN,
//! INCR/DECR/INCRBY/DECRBY, MGET, MSET.

use bytes::{Bytes, BytesMut};

use super::{
    data, exact, parse_i64, read, syntax_error, write, wrong_arity, Access, Applied, Command,
    CommandSpec, DataOp, ReplyError,
};
use crate::keyspace::Keyspace;
use crate::record::Record;
use crate::resp::Frame;

/// When SET applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetCondition {
    Always,
    /// NX: only if the key does not exist.
    IfAbsent,
    /// XX: only if it exists.
    IfPresent,
}

/// What SET does with the expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetExpiry {
    /// No expiry (the default: an old one is cleared).
    None,
    /// KEEPTTL.
    Keep,
    /// Expire at this Unix time in ms (EX/PX are turned into this at apply time).
    AtMs(u64),
    /// Expire this many ms after the command is applied.
    InMs(u64),
}

/// The parsed arguments of SET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetArgs {
    pub key: Bytes,
    pub value: Bytes,
    pub condition: SetCondition,
    pub expiry: SetExpiry,
    /// GET: reply with the old value.
    pub get: bool,
}

/// `GET key`.
pub fn parse_get(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let [key] = exact(spec, rest)?;
    data(spec, DataOp::Get(key.clone()))
}

/// `UPDATE key value`.
pub fn parse_update(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let [key, value] = exact(spec, rest)?;
    data(
        spec,
        DataOp::Update {
            key: key.clone(),
            value: value.clone(),
        },
    )
}

/// `CAS key expected new`.
pub fn parse_cas(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let [key, expected, new] = exact(spec, rest)?;
    data(
        spec,
        DataOp::Cas {
            key: key.clone(),
            expected: expected.clone(),
            new: new.clone(),
        },
    )
}

/// `APPEND key value`.
pub fn parse_append(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let [key, value] = exact(spec, rest)?;
    data(
        spec,
        DataOp::Append {
            key: key.clone(),
            value: value.clone(),
        },
    )
}

/// `STRLEN key`.
pub fn parse_strlen(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let [key] = exact(spec, rest)?;
    data(spec, DataOp::Strlen(key.clone()))
}

fn incr_by_const(spec: &'static CommandSpec, rest: &[Bytes], by: i64) -> Result<Command, Frame> {
    let [key] = exact(spec, rest)?;
    data(
        spec,
        DataOp::IncrBy {
            key: key.clone(),
            by,
        },
    )
}

/// `INCR key`.
pub fn parse_incr(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    incr_by_const(spec, rest, 1)
}

/// `DECR key`.
pub fn parse_decr(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    incr_by_const(spec, rest, -1)
}

/// `INCRBY key n`.
pub fn parse_incrby(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let [key, by] = exact(spec, rest)?;
    let by = parse_i64(by)?;
    data(
        spec,
        DataOp::IncrBy {
            key: key.clone(),
            by,
        },
    )
}

/// `DECRBY key n`.
pub fn parse_decrby(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let [key, by] = exact(spec, rest)?;
    let by = parse_i64(by)?
        .checked_neg()
        .ok_or(ReplyError::DecrementOverflow)?;
    data(
        spec,
        DataOp::IncrBy {
            key: key.clone(),
            by,
        },
    )
}

/// `MGET key [key ...]`.
pub fn parse_mget(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    data(spec, DataOp::MGet(rest.to_vec()))
}

/// `MSET key value [key value ...]`: the pairs must be whole.
pub fn parse_mset(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    if rest.is_empty() || !rest.len().is_multiple_of(2) {
        return Err(wrong_arity(spec.name));
    }
    let pairs = rest
        .chunks_exact(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect();
    data(spec, DataOp::MSet(pairs))
}

/// Parses `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]`.
pub fn parse_set(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let [key, value, rest @ ..] = rest else {
        return Err(wrong_arity(spec.name));
    };
    let mut args = SetArgs {
        key: key.clone(),
        value: value.clone(),
        condition: SetCondition::Always,
        expiry: SetExpiry::None,
        get: false,
    };
    let invalid_expire = || Frame::from(ReplyError::InvalidExpire { command: "set" });
    let mut i = 0;
    while i < rest.len() {
        let opt = rest[i].to_ascii_uppercase();
        match opt.as_slice() {
            b"NX" if args.condition == SetCondition::Always => {
                args.condition = SetCondition::IfAbsent
            }
            b"XX" if args.condition == SetCondition::Always => {
                args.condition = SetCondition::IfPresent
            }
            b"GET" => args.get = true,
            b"KEEPTTL" if args.expiry == SetExpiry::None => args.expiry = SetExpiry::Keep,
            b"EX" | b"PX" | b"EXAT" | b"PXAT" if args.expiry == SetExpiry::None => {
                let n = rest.get(i + 1).ok_or_else(syntax_error)?;
                let n = parse_i64(n)?;
                if n <= 0 {
                    return Err(invalid_expire());
                }
                let n = n as u64;
                let scale = |n: u64| n.checked_mul(1000).ok_or_else(invalid_expire);
                args.expiry = match opt.as_slice() {
                    b"EX" => SetExpiry::InMs(scale(n)?),
                    b"PX" => SetExpiry::InMs(n),
                    b"EXAT" => SetExpiry::AtMs(scale(n)?),
                    _ => SetExpiry::AtMs(n),
                };
                i += 1;
            }
            _ => return Err(syntax_error()),
        }
        i += 1;
    }
    data(spec, DataOp::Set(args))
}

fn value_or_nil(v: Option<&crate::keyspace::Value>) -> Frame {
    v.map_or(Frame::Null, |v| Frame::Bulk(v.data.clone()))
}

pub(super) fn get(ks: &Keyspace, key: Bytes, now_ms: u64) -> Applied {
    let reply = value_or_nil(ks.get_live(&key, now_ms));
    read(reply, vec![key])
}

pub(super) fn set(ks: &mut Keyspace, args: SetArgs, now_ms: u64) -> Applied {
    let old = ks.get_live(&args.key, now_ms);
    let old_reply = value_or_nil(old);
    let applies = match args.condition {
        SetCondition::Always => true,
        SetCondition::IfAbsent => old.is_none(),
        SetCondition::IfPresent => old.is_some(),
    };
    let expires_at_ms = match args.expiry {
        SetExpiry::None => None,
        SetExpiry::Keep => old.and_then(|v| v.expires_at_ms),
        SetExpiry::AtMs(at) => Some(at),
        SetExpiry::InMs(ms) => Some(now_ms.saturating_add(ms)),
    };
    let reply = match (args.get, applies) {
        (true, _) => old_reply,
        (false, true) => Frame::ok(),
        (false, false) => Frame::Null,
    };
    if !applies {
        return read(reply, vec![args.key]);
    }
    let record = Record::Set {
        key: args.key.clone(),
        value: args.value,
        expires_at_ms,
    };
    write(ks, record, reply, vec![args.key])
}

pub(super) fn update(ks: &mut Keyspace, key: Bytes, value: Bytes, now_ms: u64) -> Applied {
    if ks.get_live(&key, now_ms).is_none() {
        return read(Frame::Null, vec![key]);
    }
    let record = Record::Update {
        key: key.clone(),
        value,
    };
    write(ks, record, Frame::ok(), vec![key])
}

/// CAS key expected new: swaps in `new` (no expiry) only if the live value is `expected`.
pub(super) fn cas(
    ks: &mut Keyspace,
    key: Bytes,
    expected: Bytes,
    new: Bytes,
    now_ms: u64,
) -> Applied {
    if ks.get_live(&key, now_ms).is_none_or(|v| v.data != expected) {
        return read(Frame::Integer(0), vec![key]);
    }
    let record = Record::Set {
        key: key.clone(),
        value: new,
        expires_at_ms: None,
    };
    write(ks, record, Frame::Integer(1), vec![key])
}

pub(super) fn append(ks: &mut Keyspace, key: Bytes, value: Bytes, now_ms: u64) -> Applied {
    let old = ks.get_live(&key, now_ms);
    let expires_at_ms = old.and_then(|v| v.expires_at_ms);
    let mut joined = BytesMut::with_capacity(old.map_or(0, |v| v.data.len()) + value.len());
    if let Some(old) = old {
        joined.extend_from_slice(&old.data);
    }
    joined.extend_from_slice(&value);
    let len = joined.len() as i64;
    let record = Record::Set {
        key: key.clone(),
        value: joined.freeze(),
        expires_at_ms,
    };
    write(ks, record, Frame::Integer(len), vec![key])
}

pub(super) fn strlen(ks: &Keyspace, key: Bytes, now_ms: u64) -> Applied {
    let len = ks.get_live(&key, now_ms).map_or(0, |v| v.data.len());
    read(Frame::Integer(len as i64), vec![key])
}

pub(super) fn incr_by(ks: &mut Keyspace, key: Bytes, by: i64, now_ms: u64) -> Applied {
    let old = ks.get_live(&key, now_ms);
    let current = match old {
        None => 0,
        Some(v) => match parse_i64(&v.data) {
            Ok(n) => n,
            Err(e) => return read(e.into(), vec![key]),
        },
    };
    let Some(new) = current.checked_add(by) else {
        return read(ReplyError::Overflow.into(), vec![key]);
    };
    let record = Record::Set {
        key: key.clone(),
        value: Bytes::from(new.to_string()),
        expires_at_ms: old.and_then(|v| v.expires_at_ms),
    };
    write(ks, record, Frame::Integer(new), vec![key])
}

pub(super) fn mget(ks: &Keyspace, keys: Vec<Bytes>, now_ms: u64) -> Applied {
    let reply = Frame::Array(
        keys.iter()
            .map(|k| value_or_nil(ks.get_live(k, now_ms)))
            .collect(),
    );
    read(reply, keys)
}

pub(super) fn mset(ks: &mut Keyspace, pairs: Vec<(Bytes, Bytes)>) -> Applied {
    let keys: Vec<Bytes> = pairs.iter().map(|(k, _)| k.clone()).collect();
    let mut ops: Vec<Record> = pairs
        .into_iter()
        .map(|(key, value)| Record::Set {
            key,
            value,
            expires_at_ms: None,
        })
        .collect();
    let record = if ops.len() == 1 {
        ops.remove(0)
    } else {
        Record::Txn(ops)
    };
    let mut applied = write(ks, record, Frame::ok(), Vec::new());
    applied.access = Access::Keys(keys);
    applied
}

#[cfg(test)]
mod tests {
    use super::super::test_support::req;
    use super::super::{parse, Command};
    use super::*;

    fn run(ks: &mut Keyspace, now: u64, words: &[&str]) -> (Frame, Option<Record>) {
        match parse(&req(words)) {
            Ok(Command::Data(c)) => {
                let a = c.apply(ks, now);
                (a.reply, a.record)
            }
            Ok(Command::Server(_) | Command::Txn(_)) => panic!("not a data command"),
            Err(f) => (f, None),
        }
    }

    #[test]
    fn set_conditions_and_get_option() {
        let mut ks = Keyspace::new();
        assert_eq!(run(&mut ks, 0, &["set", "k", "1", "xx"]).0, Frame::Null);
        assert_eq!(run(&mut ks, 0, &["set", "k", "1", "nx"]).0, Frame::ok());
        let (reply, record) = run(&mut ks, 0, &["set", "k", "2", "nx"]);
        assert_eq!((reply, record), (Frame::Null, None));
        assert_eq!(
            run(&mut ks, 0, &["set", "k", "3", "xx", "get"]).0,
            Frame::bulk("1")
        );
        assert_eq!(run(&mut ks, 0, &["get", "k"]).0, Frame::bulk("3"));
        assert_eq!(
            run(&mut ks, 0, &["set", "k", "3", "nx", "xx"]).0,
            syntax_error()
        );
        assert_eq!(
            run(&mut ks, 0, &["set", "k", "3", "bogus"]).0,
            syntax_error()
        );
    }

    #[test]
    fn expiry_is_logged_as_an_absolute_time() {
        let mut ks = Keyspace::new();
        let (_, rec) = run(&mut ks, 5_000, &["set", "k", "v", "ex", "10"]);
        assert_eq!(
            rec,
            Some(Record::Set {
                key: Bytes::from_static(b"k"),
                value: Bytes::from_static(b"v"),
                expires_at_ms: Some(15_000)
            })
        );
        assert_eq!(run(&mut ks, 14_999, &["get", "k"]).0, Frame::bulk("v"));
        assert_eq!(run(&mut ks, 15_000, &["get", "k"]).0, Frame::Null);
        assert_eq!(run(&mut ks, 15_000, &["update", "k", "x"]).0, Frame::Null);
        assert_eq!(
            run(&mut ks, 0, &["set", "k", "v", "px", "0"]).0,
            Frame::err("invalid expire time in 'set' command")
        );
        run(&mut ks, 0, &["set", "k", "v", "pxat", "100"]);
        run(&mut ks, 0, &["set", "k", "w", "keepttl"]);
        assert_eq!(ks.get(b"k").and_then(|v| v.expires_at_ms), Some(100));
    }

    #[test]
    fn update_sets_only_existing_keys() {
        let mut ks = Keyspace::new();
        assert_eq!(run(&mut ks, 0, &["update", "k", "1"]), (Frame::Null, None));
        run(&mut ks, 0, &["set", "k", "0"]);
        assert_eq!(run(&mut ks, 0, &["update", "k", "1"]).0, Frame::ok());
        assert_eq!(run(&mut ks, 0, &["get", "k"]).0, Frame::bulk("1"));
    }

    #[test]
    fn counters_append_and_strlen() {
        let mut ks = Keyspace::new();
        assert_eq!(run(&mut ks, 0, &["incr", "n"]).0, Frame::Integer(1));
        assert_eq!(
            run(&mut ks, 0, &["incrby", "n", "10"]).0,
            Frame::Integer(11)
        );
        assert_eq!(run(&mut ks, 0, &["decrby", "n", "2"]).0, Frame::Integer(9));
        assert_eq!(run(&mut ks, 0, &["decr", "n"]).0, Frame::Integer(8));
        run(&mut ks, 0, &["set", "n", "9223372036854775807"]);
        assert_eq!(
            run(&mut ks, 0, &["incr", "n"]).0,
            Frame::err("increment or decrement would overflow")
        );
        run(&mut ks, 0, &["set", "s", "abc"]);
        assert_eq!(
            run(&mut ks, 0, &["incr", "s"]).0,
            Frame::err("value is not an integer or out of range")
        );
        assert_eq!(run(&mut ks, 0, &["append", "s", "de"]).0, Frame::Integer(5));
        assert_eq!(run(&mut ks, 0, &["strlen", "s"]).0, Frame::Integer(5));
        assert_eq!(run(&mut ks, 0, &["strlen", "none"]).0, Frame::Integer(0));
    }

    #[test]
    fn cas_swaps_only_the_expected_value() {
        let mut ks = Keyspace::new();
        assert_eq!(
            run(&mut ks, 0, &["cas", "k", "", "x"]),
            (Frame::Integer(0), None)
        );
        run(&mut ks, 0, &["set", "k", "a", "px", "100"]);
        assert_eq!(
            run(&mut ks, 0, &["cas", "k", "b", "c"]).0,
            Frame::Integer(0)
        );
        let (reply, rec) = run(&mut ks, 0, &["cas", "k", "a", "c"]);
        assert_eq!(reply, Frame::Integer(1));
        assert!(matches!(
            rec,
            Some(Record::Set {
                expires_at_ms: None,
                ..
            })
        ));
        assert_eq!(run(&mut ks, 1_000, &["get", "k"]).0, Frame::bulk("c"));
        run(&mut ks, 0, &["set", "k", "a", "pxat", "100"]);
        assert_eq!(
            run(&mut ks, 100, &["cas", "k", "a", "d"]).0,
            Frame::Integer(0),
            "an expired key is missing"
        );
        assert_eq!(
            run(&mut ks, 0, &["cas", "k", "a"]).0,
            Frame::err("wrong number of arguments for 'cas' command")
        );
    }

    #[test]
    fn mset_is_one_transaction_record() {
        let mut ks = Keyspace::new();
        let (reply, rec) = run(&mut ks, 0, &["mset", "a", "1", "b", "2"]);
        assert_eq!(reply, Frame::ok());
        assert!(matches!(rec, Some(Record::Txn(ops)) if ops.len() == 2));
        assert_eq!(
            run(&mut ks, 0, &["mget", "a", "x", "b"]).0,
            Frame::Array(vec![Frame::bulk("1"), Frame::Null, Frame::bulk("2")])
        );
    }
}
