//! String commands: GET, SET (NX/XX/EX/PX/EXAT/PXAT/KEEPTTL/GET), GETSET, SETNX, SETEX,
//! PSETEX, GETDEL, GETEX, GETRANGE/SUBSTR, SETRANGE, UPDATE, CAS, APPEND, STRLEN,
//! INCR/DECR/INCRBY/DECRBY, INCRBYFLOAT, MGET, MSET, MSETNX, LCS. Semantics and error texts
//! are Redis 7.0's; every write is one physical record (SET, DELETE, or MSET's TXN).

use bytes::{Bytes, BytesMut};

use super::long_double::LongDouble;
use super::{
    data, exact, parse_i64, read, syntax_error, write, wrong_arity, Access, Applied, Command,
    CommandSpec, Context, DataCommand, DataOp, ReplyError,
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

/// The options of SET and GETEX as Redis 7 parses them (`parseExtendedStringArgumentsOrReply`):
/// every flag first, then the expiry's number. A flag may repeat (`NX NX`, `EX 1 EX 2`: the
/// last wins); conflicting ones (`NX XX`, `EX 1 PX 2`, `KEEPTTL EX 1`, `PERSIST EX 1`) are a
/// syntax error; SET takes `NX XX GET KEEPTTL`, GETEX `PERSIST`.
#[derive(Debug, Default)]
struct Extended<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    /// `EX`, `PX`, `EXAT` or `PXAT` (upper case) and its argument.
    expire: Option<(&'static str, &'a Bytes)>,
}

fn parse_extended<'a>(rest: &'a [Bytes], set: bool) -> Result<Extended<'a>, Frame> {
    let mut ext = Extended::default();
    let mut i = 0;
    while i < rest.len() {
        let opt = rest[i].to_ascii_uppercase();
        let next = rest.get(i + 1);
        let timed = |ext: &Extended, unit: &str| {
            !ext.keepttl && !ext.persist && ext.expire.is_none_or(|(u, _)| u == unit)
        };
        match (opt.as_slice(), next) {
            (b"NX", _) if set && !ext.xx => ext.nx = true,
            (b"XX", _) if set && !ext.nx => ext.xx = true,
            (b"GET", _) if set => ext.get = true,
            (b"KEEPTTL", _) if set && !ext.persist && ext.expire.is_none() => ext.keepttl = true,
            (b"PERSIST", _) if !set && !ext.keepttl && ext.expire.is_none() => ext.persist = true,
            (b"EX" | b"PX" | b"EXAT" | b"PXAT", Some(arg)) => {
                let unit = match opt.as_slice() {
                    b"EX" => "EX",
                    b"PX" => "PX",
                    b"EXAT" => "EXAT",
                    _ => "PXAT",
                };
                if !timed(&ext, unit) {
                    return Err(syntax_error());
                }
                ext.expire = Some((unit, arg));
                i += 1;
            }
            _ => return Err(syntax_error()),
        }
        i += 1;
    }
    Ok(ext)
}

/// The expiry an `EX`/`PX`/`EXAT`/`PXAT` argument asks for (`getExpireMillisecondsOrReply`):
/// a positive integer whose milliseconds fit an i64.
fn parse_expiry(unit: &str, arg: &[u8], command: &'static str) -> Result<SetExpiry, Frame> {
    let n = parse_i64(arg)?;
    let seconds = matches!(unit, "EX" | "EXAT");
    if n <= 0 || (seconds && n > i64::MAX / 1000) {
        return Err(ReplyError::InvalidExpire { command }.into());
    }
    let ms = if seconds { n * 1000 } else { n } as u64;
    Ok(match unit {
        "EX" | "PX" => SetExpiry::InMs(ms),
        _ => SetExpiry::AtMs(ms),
    })
}

/// The absolute expiry of `expiry` at `now_ms`; `Err` when it does not fit an i64 (Redis
/// adds the relative time to the clock and refuses a sum that overflows).
fn resolve_expiry(
    expiry: SetExpiry,
    now_ms: u64,
    command: &'static str,
) -> Result<Option<u64>, Frame> {
    match expiry {
        SetExpiry::InMs(ms) => match now_ms.checked_add(ms) {
            Some(at) if at <= i64::MAX as u64 => Ok(Some(at)),
            _ => Err(ReplyError::InvalidExpire { command }.into()),
        },
        SetExpiry::AtMs(at) => Ok(Some(at)),
        SetExpiry::None | SetExpiry::Keep => Ok(None),
    }
}

/// Parses `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]`.
pub fn parse_set(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let [key, value, rest @ ..] = rest else {
        return Err(wrong_arity(spec.name));
    };
    let ext = parse_extended(rest, true)?;
    let expiry = match ext.expire {
        Some((unit, arg)) => parse_expiry(unit, arg, "set")?,
        None if ext.keepttl => SetExpiry::Keep,
        None => SetExpiry::None,
    };
    let condition = match (ext.nx, ext.xx) {
        (true, _) => SetCondition::IfAbsent,
        (_, true) => SetCondition::IfPresent,
        _ => SetCondition::Always,
    };
    let args = SetArgs {
        key: key.clone(),
        value: value.clone(),
        condition,
        expiry,
        get: ext.get,
    };
    data(spec, DataOp::Set(args))
}

/// `GETSET key value`: SET key value GET.
pub fn parse_getset(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let [key, value] = exact(spec, rest)?;
    data(
        spec,
        DataOp::Set(SetArgs {
            key: key.clone(),
            value: value.clone(),
            condition: SetCondition::Always,
            expiry: SetExpiry::None,
            get: true,
        }),
    )
}

/// `SETNX key value`: SET NX, answering 1 or 0.
pub fn parse_setnx(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let [key, value] = exact(spec, rest)?;
    data(
        spec,
        DataOp::SetNx {
            key: key.clone(),
            value: value.clone(),
        },
    )
}

fn set_with_expiry(
    spec: &'static CommandSpec,
    rest: &[Bytes],
    unit: &str,
) -> Result<Command, Frame> {
    let [key, time, value] = exact(spec, rest)?;
    let expiry = parse_expiry(unit, time, spec.name)?;
    data(
        spec,
        DataOp::Set(SetArgs {
            key: key.clone(),
            value: value.clone(),
            condition: SetCondition::Always,
            expiry,
            get: false,
        }),
    )
}

/// `SETEX key seconds value`.
pub fn parse_setex(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    set_with_expiry(spec, rest, "EX")
}

/// `PSETEX key milliseconds value`.
pub fn parse_psetex(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    set_with_expiry(spec, rest, "PX")
}

/// `GETDEL key`.
pub fn parse_getdel(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let [key] = exact(spec, rest)?;
    data(spec, DataOp::GetDel(key.clone()))
}

/// What GETEX does to the expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetExExpiry {
    /// No option: a plain GET.
    Unchanged,
    Persist,
    /// `EX`/`PX`/`EXAT`/`PXAT` and its argument, checked only when the key exists (as Redis
    /// 7.0 does: GETEX of a missing key is nil whatever the number).
    Set {
        unit: &'static str,
        arg: Bytes,
    },
}

/// `GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST]`.
pub fn parse_getex(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let [key, rest @ ..] = rest else {
        return Err(wrong_arity(spec.name));
    };
    let ext = parse_extended(rest, false)?;
    let expiry = match ext.expire {
        Some((unit, arg)) => GetExExpiry::Set {
            unit,
            arg: arg.clone(),
        },
        None if ext.persist => GetExExpiry::Persist,
        None => GetExExpiry::Unchanged,
    };
    data(
        spec,
        DataOp::GetEx {
            key: key.clone(),
            expiry,
        },
    )
}

/// `GETRANGE key start end` (and SUBSTR).
pub fn parse_getrange(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let [key, start, end] = exact(spec, rest)?;
    let (start, end) = (parse_i64(start)?, parse_i64(end)?);
    data(
        spec,
        DataOp::GetRange {
            key: key.clone(),
            start,
            end,
        },
    )
}

/// `SETRANGE key offset value`.
pub fn parse_setrange(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let [key, offset, value] = exact(spec, rest)?;
    let offset = parse_i64(offset)?;
    let offset = u64::try_from(offset).map_err(|_| Frame::from(ReplyError::OffsetOutOfRange))?;
    data(
        spec,
        DataOp::SetRange {
            key: key.clone(),
            offset,
            value: value.clone(),
        },
    )
}

/// `MSETNX key value [key value ...]`.
pub fn parse_msetnx(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let Ok(Command::Data(DataCommand {
        op: DataOp::MSet(pairs),
        ..
    })) = parse_mset(spec, rest)
    else {
        return Err(wrong_arity(spec.name));
    };
    data(spec, DataOp::MSetNx(pairs))
}

/// `INCRBYFLOAT key increment`: the increment is checked when applied, after the stored
/// value, as Redis checks them.
pub fn parse_incrbyfloat(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let [key, by] = exact(spec, rest)?;
    data(
        spec,
        DataOp::IncrByFloat {
            key: key.clone(),
            by: by.clone(),
        },
    )
}

/// The parsed arguments of LCS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LcsArgs {
    pub a: Bytes,
    pub b: Bytes,
    pub len: bool,
    pub idx: bool,
    pub min_match_len: u64,
    pub with_match_len: bool,
}

/// `LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]`.
pub fn parse_lcs(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let [a, b, opts @ ..] = rest else {
        return Err(wrong_arity(spec.name));
    };
    let mut args = LcsArgs {
        a: a.clone(),
        b: b.clone(),
        len: false,
        idx: false,
        min_match_len: 0,
        with_match_len: false,
    };
    let mut i = 0;
    while i < opts.len() {
        match opts[i].to_ascii_uppercase().as_slice() {
            b"IDX" => args.idx = true,
            b"LEN" => args.len = true,
            b"WITHMATCHLEN" => args.with_match_len = true,
            b"MINMATCHLEN" if i + 1 < opts.len() => {
                // A negative length means none, as in Redis.
                args.min_match_len = parse_i64(&opts[i + 1])?.max(0) as u64;
                i += 1;
            }
            _ => return Err(syntax_error()),
        }
        i += 1;
    }
    if args.len && args.idx {
        return Err(ReplyError::LcsLenAndIdx.into());
    }
    data(spec, DataOp::Lcs(args))
}

fn value_or_nil(v: Option<crate::keyspace::ValueRef<'_>>) -> Frame {
    v.map_or(Frame::Null, |v| Frame::Bulk(v.bytes()))
}

pub(super) fn get(ks: &Keyspace, key: Bytes, now_ms: u64) -> Applied {
    let reply = value_or_nil(ks.get_live(&key, now_ms));
    read(reply, key)
}

pub(super) fn set(ks: &mut Keyspace, args: SetArgs, now_ms: u64, command: &'static str) -> Applied {
    let old = ks.get_live(&args.key, now_ms);
    let old_reply = value_or_nil(old);
    let applies = match args.condition {
        SetCondition::Always => true,
        SetCondition::IfAbsent => old.is_none(),
        SetCondition::IfPresent => old.is_some(),
    };
    let expires_at_ms = match args.expiry {
        SetExpiry::Keep => old.and_then(|v| v.expires_at_ms),
        other => match resolve_expiry(other, now_ms, command) {
            Ok(at) => at,
            Err(e) => return read(e, args.key),
        },
    };
    let reply = match (args.get, applies) {
        (true, _) => old_reply,
        (false, true) => Frame::ok(),
        (false, false) => Frame::Null,
    };
    if !applies {
        return read(reply, args.key);
    }
    let record = Record::Set {
        key: args.key.clone(),
        value: args.value,
        expires_at_ms,
    };
    write(ks, record, reply, args.key)
}

pub(super) fn setnx(ks: &mut Keyspace, key: Bytes, value: Bytes, now_ms: u64) -> Applied {
    if ks.get_live(&key, now_ms).is_some() {
        return read(Frame::Integer(0), key);
    }
    let record = Record::Set {
        key: key.clone(),
        value,
        expires_at_ms: None,
    };
    write(ks, record, Frame::Integer(1), key)
}

pub(super) fn getdel(ks: &mut Keyspace, key: Bytes, now_ms: u64) -> Applied {
    let Some(old) = ks.get_live(&key, now_ms) else {
        return read(Frame::Null, key);
    };
    let reply = Frame::Bulk(old.bytes());
    write(ks, Record::Delete { key: key.clone() }, reply, key)
}

/// GETEX: the value, and the expiry changed as asked; an absolute time already past deletes
/// the key (as Redis does), PERSIST of a key without a TTL changes nothing.
pub(super) fn getex(ks: &mut Keyspace, key: Bytes, expiry: GetExExpiry, now_ms: u64) -> Applied {
    let Some(old) = ks.get_live(&key, now_ms) else {
        return read(Frame::Null, key);
    };
    let reply = Frame::Bulk(old.bytes());
    let record = match expiry {
        GetExExpiry::Unchanged => None,
        GetExExpiry::Persist => old.expires_at_ms.map(|_| Record::Set {
            key: key.clone(),
            value: old.bytes(),
            expires_at_ms: None,
        }),
        GetExExpiry::Set { unit, arg } => match parse_expiry(unit, &arg, "getex")
            .and_then(|expiry| resolve_expiry(expiry, now_ms, "getex"))
        {
            Err(e) => return read(e, key),
            Ok(Some(at)) if at <= now_ms => Some(Record::Delete { key: key.clone() }),
            Ok(at) => Some(Record::Set {
                key: key.clone(),
                value: old.bytes(),
                expires_at_ms: at,
            }),
        },
    };
    match record {
        Some(record) => write(ks, record, reply, key),
        None => read(reply, key),
    }
}

/// GETRANGE with Redis 7.0's index rules (negative from the end, clamped; a missing key is
/// an empty string).
pub(super) fn getrange(ks: &Keyspace, key: Bytes, start: i64, end: i64, now_ms: u64) -> Applied {
    let data = ks
        .get_live(&key, now_ms)
        .map_or_else(Bytes::new, |v| v.bytes());
    let len = data.len() as i64;
    let reply = if start < 0 && end < 0 && start > end {
        Frame::Bulk(Bytes::new())
    } else {
        let from_end = |i: i64| if i < 0 { (len + i).max(0) } else { i };
        let (start, end) = (from_end(start), from_end(end).min(len - 1));
        if start > end || len == 0 {
            Frame::Bulk(Bytes::new())
        } else {
            Frame::Bulk(data.slice(start as usize..=end as usize))
        }
    };
    read(reply, key)
}

/// Whether a string of `size + append` bytes is within the bulk limit (`checkStringLength`).
fn check_length(size: u64, append: u64, max_bulk_len: usize) -> Result<usize, Frame> {
    size.checked_add(append)
        .filter(|total| *total <= max_bulk_len as u64)
        .map(|total| total as usize)
        .ok_or_else(|| ReplyError::StringTooLong.into())
}

/// SETRANGE: overwrites from `offset`, padding with zero bytes; keeps the TTL.
pub(super) fn setrange(
    ks: &mut Keyspace,
    key: Bytes,
    offset: u64,
    value: Bytes,
    ctx: &Context,
) -> Applied {
    let old = ks.get_live(&key, ctx.now_ms);
    let old_len = old.map_or(0, |v| v.data.len());
    if value.is_empty() {
        return read(Frame::Integer(old_len as i64), key);
    }
    let total = match check_length(offset, value.len() as u64, ctx.max_bulk_len) {
        Ok(total) => total,
        Err(e) => return read(e, key),
    };
    let offset = offset as usize;
    let mut out = BytesMut::zeroed(total.max(old_len));
    if let Some(old) = old {
        out[..old_len].copy_from_slice(old.data);
    }
    out[offset..total].copy_from_slice(&value);
    let len = out.len() as i64;
    let record = Record::Set {
        key: key.clone(),
        value: out.freeze(),
        expires_at_ms: old.and_then(|v| v.expires_at_ms),
    };
    write(ks, record, Frame::Integer(len), key)
}

/// INCRBYFLOAT in Redis's `long double` arithmetic ([`LongDouble`]); the record is a SET of
/// the formatted sum, keeping the TTL.
pub(super) fn incr_by_float(ks: &mut Keyspace, key: Bytes, by: Bytes, now_ms: u64) -> Applied {
    let old = ks.get_live(&key, now_ms);
    let current = match old {
        None => Some(LongDouble::ZERO),
        Some(v) => LongDouble::parse(v.data),
    };
    let (Some(current), Some(by)) = (current, LongDouble::parse(&by)) else {
        return read(ReplyError::NotFloat.into(), key);
    };
    let Ok(sum) = current.add(&by) else {
        return read(ReplyError::NanOrInfinity.into(), key);
    };
    let value = Bytes::from(sum.to_human_string());
    let record = Record::Set {
        key: key.clone(),
        value: value.clone(),
        expires_at_ms: old.and_then(|v| v.expires_at_ms),
    };
    write(ks, record, Frame::Bulk(value), key)
}

/// LCS, as Redis 7.0 computes it (the same table walk, so the same matches in the same
/// order); missing keys are empty strings. The table takes 4 bytes per cell and, as in
/// Redis, may not exceed the bulk limit.
pub(super) fn lcs(ks: &Keyspace, args: LcsArgs, ctx: &Context) -> Applied {
    let keys = vec![args.a.clone(), args.b.clone()];
    let get = |k: &Bytes| {
        ks.get_live(k, ctx.now_ms)
            .map_or_else(Bytes::new, |v| v.bytes())
    };
    let (a, b) = (get(&args.a), get(&args.b));
    let (alen, blen) = (a.len(), b.len());
    let cells = (alen as u64 + 1).saturating_mul(blen as u64 + 1);
    if cells.saturating_mul(4) > ctx.max_bulk_len as u64 {
        return read(ReplyError::LcsTooLarge.into(), keys);
    }
    let width = blen + 1;
    let mut dp = vec![0u32; cells as usize];
    for i in 1..=alen {
        for j in 1..=blen {
            dp[i * width + j] = if a[i - 1] == b[j - 1] {
                dp[(i - 1) * width + j - 1] + 1
            } else {
                dp[(i - 1) * width + j].max(dp[i * width + j - 1])
            };
        }
    }
    let total = dp[alen * width + blen];
    if args.len {
        return read(Frame::Integer(i64::from(total)), keys);
    }
    let mut result = vec![0u8; total as usize];
    let mut matches = Vec::new();
    let mut idx = total as usize;
    // `None`: no range open; otherwise (a_start, a_end, b_start, b_end).
    let mut range: Option<(usize, usize, usize, usize)> = None;
    let (mut i, mut j) = (alen, blen);
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            result[idx - 1] = a[i - 1];
            range = match range {
                None => Some((i - 1, i - 1, j - 1, j - 1)),
                Some((a_start, a_end, b_start, b_end)) if a_start == i && b_start == j => {
                    Some((a_start - 1, a_end, b_start - 1, b_end))
                }
                Some(r) => {
                    emit = true;
                    Some(r)
                }
            };
            if range.is_some_and(|(a_start, _, b_start, _)| a_start == 0 || b_start == 0) {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            j -= 1;
        } else {
            if dp[(i - 1) * width + j] > dp[i * width + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            emit |= range.is_some();
        }
        if let (true, Some((a_start, a_end, b_start, b_end))) = (emit, range) {
            let match_len = (a_end - a_start + 1) as u64;
            if args.min_match_len == 0 || match_len >= args.min_match_len {
                let pos = |s: usize, e: usize| {
                    Frame::Array(vec![Frame::Integer(s as i64), Frame::Integer(e as i64)])
                };
                let mut entry = vec![pos(a_start, a_end), pos(b_start, b_end)];
                if args.with_match_len {
                    entry.push(Frame::Integer(match_len as i64));
                }
                matches.push(Frame::Array(entry));
            }
            range = None;
        }
    }
    let reply = if args.idx {
        // A map, as Redis builds it (a flat array under RESP2).
        Frame::Map(vec![
            (Frame::bulk("matches"), Frame::Array(matches)),
            (Frame::bulk("len"), Frame::Integer(i64::from(total))),
        ])
    } else {
        Frame::Bulk(Bytes::from(result))
    };
    read(reply, keys)
}

pub(super) fn update(ks: &mut Keyspace, key: Bytes, value: Bytes, now_ms: u64) -> Applied {
    if ks.get_live(&key, now_ms).is_none() {
        return read(Frame::Null, key);
    }
    let record = Record::Update {
        key: key.clone(),
        value,
    };
    write(ks, record, Frame::ok(), key)
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
        return read(Frame::Integer(0), key);
    }
    let record = Record::Set {
        key: key.clone(),
        value: new,
        expires_at_ms: None,
    };
    write(ks, record, Frame::Integer(1), key)
}

pub(super) fn append(ks: &mut Keyspace, key: Bytes, value: Bytes, ctx: &Context) -> Applied {
    let old = ks.get_live(&key, ctx.now_ms);
    let old_len = old.map_or(0, |v| v.data.len()) as u64;
    if let Err(e) = check_length(old_len, value.len() as u64, ctx.max_bulk_len) {
        return read(e, key);
    }
    let expires_at_ms = old.and_then(|v| v.expires_at_ms);
    let mut joined = BytesMut::with_capacity(old.map_or(0, |v| v.data.len()) + value.len());
    if let Some(old) = old {
        joined.extend_from_slice(old.data);
    }
    joined.extend_from_slice(&value);
    let len = joined.len() as i64;
    let record = Record::Set {
        key: key.clone(),
        value: joined.freeze(),
        expires_at_ms,
    };
    write(ks, record, Frame::Integer(len), key)
}

pub(super) fn strlen(ks: &Keyspace, key: Bytes, now_ms: u64) -> Applied {
    let len = ks.get_live(&key, now_ms).map_or(0, |v| v.data.len());
    read(Frame::Integer(len as i64), key)
}

pub(super) fn incr_by(ks: &mut Keyspace, key: Bytes, by: i64, now_ms: u64) -> Applied {
    let old = ks.get_live(&key, now_ms);
    let current = match old {
        None => 0,
        Some(v) => match parse_i64(v.data) {
            Ok(n) => n,
            Err(e) => return read(e.into(), key),
        },
    };
    let Some(new) = current.checked_add(by) else {
        return read(ReplyError::Overflow.into(), key);
    };
    let record = Record::Set {
        key: key.clone(),
        value: Bytes::from(new.to_string()),
        expires_at_ms: old.and_then(|v| v.expires_at_ms),
    };
    write(ks, record, Frame::Integer(new), key)
}

pub(super) fn mget(ks: &Keyspace, keys: Vec<Bytes>, now_ms: u64) -> Applied {
    let reply = Frame::Array(
        keys.iter()
            .map(|k| value_or_nil(ks.get_live(k, now_ms)))
            .collect(),
    );
    read(reply, keys)
}

/// MSETNX: every pair or none, when no key exists; one record, as MSET.
pub(super) fn msetnx(ks: &mut Keyspace, pairs: Vec<(Bytes, Bytes)>, now_ms: u64) -> Applied {
    if pairs.iter().any(|(k, _)| ks.get_live(k, now_ms).is_some()) {
        let keys: Vec<Bytes> = pairs.into_iter().map(|(k, _)| k).collect();
        return read(Frame::Integer(0), keys);
    }
    let mut applied = mset(ks, pairs);
    applied.reply = Frame::Integer(1);
    applied
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
            Ok(Command::Server(_) | Command::Txn(_) | Command::Db(_)) => {
                panic!("not a data command")
            }
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
