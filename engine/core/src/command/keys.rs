//! Key-space commands: DEL/DELETE, EXISTS, KEYS, SCAN, DBSIZE, FLUSHDB.

use bytes::Bytes;

use super::{
    data, exact, glob, parse_i64, read, syntax_error, write, wrong_arity, Access, Applied, Command,
    CommandSpec, DataOp, ReplyError,
};
use crate::keyspace::Keyspace;
use crate::record::Record;
use crate::resp::Frame;

/// The parsed arguments of SCAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanArgs {
    pub cursor: u64,
    pub pattern: Option<Bytes>,
    pub count: usize,
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

/// `FLUSHDB [ASYNC|SYNC]` (and FLUSHALL): ASYNC and SYNC are accepted and mean the same here
/// (so is any one word, unlike Redis, which answers a syntax error).
pub fn parse_flushdb(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    if rest.len() > 1 {
        return Err(syntax_error());
    }
    data(spec, DataOp::FlushDb)
}

/// Parses `SCAN cursor [MATCH pattern] [COUNT n] [TYPE string]`.
pub fn parse_scan(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let [cursor, rest @ ..] = rest else {
        return Err(wrong_arity(spec.name));
    };
    let cursor = std::str::from_utf8(cursor)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or(ReplyError::InvalidCursor)?;
    let mut args = ScanArgs {
        cursor,
        pattern: None,
        count: 10,
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
            b"TYPE" if value.eq_ignore_ascii_case(b"string") => {}
            b"TYPE" => args.count = 0,
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
        .map(|(k, _)| Frame::Bulk(k.clone()))
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
    let mut page: Vec<(u64, &Bytes)> = ks
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
        .filter(|(_, k)| args.pattern.as_ref().is_none_or(|p| glob::matches(p, k)))
        .map(|(_, k)| Frame::Bulk(k.clone()))
        .collect();
    whole(Frame::Array(vec![
        Frame::Bulk(Bytes::from(next.to_string())),
        Frame::Array(keys),
    ]))
}

pub(super) fn dbsize(ks: &Keyspace) -> Applied {
    whole(Frame::Integer(ks.len() as i64))
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
            Ok(Command::Server(_) | Command::Txn(_)) => panic!("not a data command"),
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
