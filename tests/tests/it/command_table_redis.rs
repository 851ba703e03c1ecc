//! COMMAND COUNT / LIST / INFO / DOCS from MooDB and from a real redis-server 7 have the same
//! reply shapes (what clients such as redis-cli parse), for GET and SET; where MooDB gives the
//! same facts (arity, flags, key positions, ACL categories, summary, since) they are equal.
//! Skipped (with a message) when redis-server is not installed.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

use moodb_tests::redis_server::RedisServer;
use moodb_tests::{query as q, ServerOptions, TestServer};
use redis::Value;

/// The structure of a reply with the leaves replaced by their types; an array whose elements
/// all have one shape is `[shape*]` whatever its length.
fn shape(v: &Value) -> String {
    match v {
        Value::Nil => "nil".into(),
        Value::Int(_) => "int".into(),
        Value::BulkString(_) => "bulk".into(),
        Value::SimpleString(_) | Value::Okay => "simple".into(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(shape).collect();
            match parts.first() {
                Some(first) if parts.iter().all(|p| p == first) => format!("[{first}*]"),
                _ => format!("[{}]", parts.join(",")),
            }
        }
        other => format!("{other:?}"),
    }
}

fn array(v: &Value) -> &[Value] {
    match v {
        Value::Array(items) => items,
        other => panic!("not an array: {other:?}"),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        other => panic!("not a string: {other:?}"),
    }
}

/// A RESP2 map (alternating keys and values) as pairs.
fn pairs(v: &Value) -> Vec<(String, &Value)> {
    let items = array(v);
    assert!(items.len().is_multiple_of(2), "not a map: {v:?}");
    items.chunks(2).map(|p| (text(&p[0]), &p[1])).collect()
}

/// `ours` is a map whose every key Redis' map has too, with the same shape; Redis may have
/// more keys, but only from `extra`.
fn same_map_shape(ours: &Value, theirs: &Value, extra: &[&str], what: &str) {
    let ours = pairs(ours);
    let theirs = pairs(theirs);
    for (k, v) in &ours {
        let Some((_, t)) = theirs.iter().find(|(tk, _)| tk == k) else {
            panic!("{what}: redis has no {k:?}");
        };
        assert_eq!(shape(v), shape(t), "{what}: {k}");
    }
    for (k, _) in &theirs {
        assert!(
            ours.iter().any(|(ok, _)| ok == k) || extra.contains(&k.as_str()),
            "{what}: MooDB lacks {k:?}"
        );
    }
}

#[test]
fn command_info_docs_and_count_have_redis_7s_shapes() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let moodb = TestServer::start(ServerOptions::default()).unwrap();
    let mut theirs = redis.connect().unwrap();
    let mut ours = moodb.connect().unwrap();
    let both = |args: &[&str],
                ours: &mut redis::Connection,
                theirs: &mut redis::Connection|
     -> (Value, Value) { (q(ours, args).unwrap(), q(theirs, args).unwrap()) };

    let (o, t) = both(&["COMMAND", "COUNT"], &mut ours, &mut theirs);
    assert!(
        matches!((&o, &t), (Value::Int(_), Value::Int(_))),
        "{o:?} {t:?}"
    );
    let (o, t) = both(&["COMMAND", "LIST"], &mut ours, &mut theirs);
    assert_eq!((shape(&o), shape(&t)), ("[bulk*]".into(), "[bulk*]".into()));

    for name in ["get", "set"] {
        // COMMAND INFO: [name, arity, flags, first, last, step, acl, tips, key specs, subs].
        let (o, t) = both(&["COMMAND", "INFO", name, "nosuch"], &mut ours, &mut theirs);
        let (o, t) = (array(&o), array(&t));
        assert_eq!((o.len(), t.len()), (2, 2));
        assert_eq!((&o[1], &t[1]), (&Value::Nil, &Value::Nil));
        let (o, t) = (array(&o[0]), array(&t[0]));
        assert_eq!(o.len(), 10, "{name}: {o:?}");
        assert_eq!(t.len(), 10, "{name}: {t:?}");
        for i in [0, 1, 2, 3, 4, 5, 6, 7, 9] {
            assert_eq!(shape(&o[i]), shape(&t[i]), "{name}: field {i}");
        }
        // The same facts: name, arity, flags, key positions, ACL categories.
        assert_eq!(&o[..7], &t[..7], "{name}");
        let (o_specs, t_specs) = (array(&o[8]), array(&t[8]));
        assert_eq!(o_specs.len(), t_specs.len(), "{name}: key specs");
        for (os, ts) in o_specs.iter().zip(t_specs) {
            same_map_shape(os, ts, &["notes"], &format!("{name} key spec"));
            let spec = |v| pairs(v).into_iter().map(|(k, v)| (k, v.clone())).collect();
            let (os, ts): (Vec<_>, Vec<_>) = (spec(os), spec(ts));
            let find = |m: &[(String, Value)], k: &str| {
                m.iter().find(|(mk, _)| mk == k).map(|(_, v)| v.clone())
            };
            for k in ["flags", "begin_search", "find_keys"] {
                assert_eq!(find(&os, k), find(&ts, k), "{name} key spec {k}");
            }
        }

        // COMMAND DOCS: a map of name to a map of docs.
        let (o, t) = both(&["COMMAND", "DOCS", name, "nosuch"], &mut ours, &mut theirs);
        let (o, t) = (pairs(&o), pairs(&t));
        assert_eq!(o.len(), 1, "{name}: {o:?}");
        assert_eq!(t.len(), 1, "{name}: {t:?}");
        assert_eq!((o[0].0.as_str(), t[0].0.as_str()), (name, name));
        same_map_shape(o[0].1, t[0].1, &["arguments", "history"], name);
        // The same summary, since, group and complexity.
        let docs = |v: &Value| -> Vec<(String, String)> {
            pairs(v)
                .into_iter()
                .filter(|(k, _)| !["arguments", "history"].contains(&k.as_str()))
                .map(|(k, v)| (k, text(v)))
                .collect()
        };
        let (od, td) = (docs(o[0].1), docs(t[0].1));
        assert_eq!(od, td, "{name}: summary, since, group, complexity");
    }

    // Every command without names, and nothing for unknown names.
    let (o, t) = both(&["COMMAND", "DOCS", "nosuch"], &mut ours, &mut theirs);
    assert_eq!((array(&o).len(), array(&t).len()), (0, 0));
    let (o, t) = both(&["COMMAND", "INFO"], &mut ours, &mut theirs);
    assert_eq!(shape(&o).starts_with("[["), shape(&t).starts_with("[["));
}

/// The error reply to `args`, as text.
fn error_text(con: &mut redis::Connection, args: &[&str]) -> String {
    match q::<Value>(con, args) {
        Err(e) => {
            // The crate splits `ERR text` into a kind and a detail; put them back together.
            let kind = e.code().unwrap_or("?").to_string();
            format!("{kind} {}", e.detail().unwrap_or_default())
        }
        Ok(v) => format!("not an error: {v:?}"),
    }
}

/// The first line the server sends back to `bytes` on a fresh connection.
fn raw_reply(port: u16, bytes: &[u8]) -> String {
    use std::io::{BufRead, BufReader, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    stream.write_all(bytes).unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line
}

#[test]
fn error_replies_are_redis_7s_byte_for_byte() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let moodb = TestServer::start(ServerOptions::default()).unwrap();
    let mut theirs = redis.connect().unwrap();
    let mut ours = moodb.connect().unwrap();
    for con in [&mut ours, &mut theirs] {
        let _: () = q(con, &["SET", "max", "9223372036854775807"]).unwrap();
        let _: () = q(con, &["SET", "s", "abc"]).unwrap();
    }
    let long = "x".repeat(200);
    let cases: &[&[&str]] = &[
        &["GET"],
        &["FROB", "a", "b"],
        &["frob"],
        &["f", "ab", &long, "never"],
        &["SET", "k", "v", "EX", "0"],
        &["SET", "k", "v", "EX", "abc"],
        &["SET", "k", "v", "PX"],
        &["SET", "k", "v", "NX", "XX"],
        &["INCR", "max"],
        &["INCR", "s"],
        &["INCRBY", "a", "x"],
        &["DECRBY", "a", "-9223372036854775808"],
        &["MSET", "a"],
        &["SCAN", "x"],
        &["SCAN", "0", "COUNT", "0"],
        &["SCAN", "0", "COUNT"],
        &["SELECT", "99"],
        &["SELECT", "x"],
        &["PING", "a", "b"],
        &["ECHO"],
        &["LASTSAVE", "x"],
        &["CONFIG"],
        &["CONFIG", "FOO"],
        &["config", "foo"],
        &["CONFIG", "GET"],
        &["CLIENT", "Foo"],
        &["COMMAND", "foo"],
        &["AUTH", "x"],
        &["AUTH", "a", "b", "c"],
        &["FLUSHDB", "a", "b"],
        &["BGSAVE", "x", "y"],
        &["EXEC"],
        &["DISCARD"],
        // A transaction: nested MULTI, WATCH and SAVE inside, then EXEC aborts.
        &["MULTI"],
        &["MULTI"],
        &["WATCH", "a"],
        &["SAVE"],
        &["EXEC"],
    ];
    for args in cases {
        let o = error_text(&mut ours, args);
        let t = error_text(&mut theirs, args);
        if args == &["MULTI"] && t.starts_with("not an error") {
            continue;
        }
        assert_eq!(o, t, "{args:?}");
    }
    let moodb_port = moodb.addr.port();
    for bytes in [
        &b"*1\r\n$-7\r\n"[..],
        b"*1\r\nx\r\n",
        b"*99999999999\r\n",
        b"*1\r\n$99999999999\r\n",
    ] {
        assert_eq!(
            raw_reply(moodb_port, bytes),
            raw_reply(redis.port, bytes),
            "{bytes:?}"
        );
    }
}

/// A Frame's elements (array, set or push).
fn items(f: &moodb_core::resp::Frame) -> &[moodb_core::resp::Frame] {
    use moodb_core::resp::Frame;
    match f {
        Frame::Array(v) | Frame::Set(v) | Frame::Push(v) => v,
        other => panic!("not an aggregate: {other:?}"),
    }
}

fn name_of(entry: &moodb_core::resp::Frame) -> String {
    use moodb_core::resp::Frame;
    match &items(entry)[0] {
        Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("no name: {other:?}"),
    }
}

/// COMMAND and COMMAND INFO print Redis 7.0.15's whole ten-field entry for every command
/// MooDB shares with it, in RESP2 and RESP3 (where flags, tips, key specs and subcommands
/// are sets): name, arity, flags, key positions, ACL categories, tips and key specs equal;
/// each of MooDB's subcommand entries equals Redis's of that name (MooDB lists only the
/// subcommands it has, in table order; Redis lists all of them, in hash order). COMMAND's
/// entries are COMMAND INFO's.
#[test]
fn command_entries_are_redis_7s_ten_fields() {
    use crate::resp3::Wire;
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let moodb = TestServer::start(ServerOptions::default()).unwrap();
    for proto in ["2", "3"] {
        let mut ours = Wire::connect(moodb.addr);
        let mut theirs = Wire::connect(redis.addr());
        ours.ask(&["HELLO", proto]);
        theirs.ask(&["HELLO", proto]);
        let (_, all) = ours.ask(&["COMMAND"]);
        let (_, listed) = ours.ask(&["COMMAND", "LIST"]);
        assert_eq!(items(&all).len(), items(&listed).len());
        let mut compared = 0;
        for entry in items(&all) {
            let name = name_of(entry);
            let (_, info) = ours.ask(&["COMMAND", "INFO", &name]);
            assert_eq!(
                &items(&info)[0],
                entry,
                "RESP{proto} {name}: COMMAND vs INFO"
            );
            let (_, t) = theirs.ask(&["COMMAND", "INFO", &name]);
            let t = &items(&t)[0];
            if *t == moodb_core::resp::Frame::Null {
                continue; // MooDB's own (UPDATE, CAS, DELETE)
            }
            let (o, t) = (items(entry), items(t));
            assert_eq!((o.len(), t.len()), (10, 10), "RESP{proto} {name}");
            assert_eq!(&o[..9], &t[..9], "RESP{proto} {name}");
            assert_eq!(
                std::mem::discriminant(&o[9]),
                std::mem::discriminant(&t[9]),
                "RESP{proto} {name}: subcommands' type"
            );
            for sub in items(&o[9]) {
                let sub_name = name_of(sub);
                let theirs_sub = items(&t[9]).iter().find(|s| name_of(s) == sub_name);
                // CLIENT SETINFO and NO-TOUCH are Redis 7.2's.
                if ["client|setinfo", "client|no-touch"].contains(&sub_name.as_str()) {
                    assert!(theirs_sub.is_none());
                    continue;
                }
                assert_eq!(Some(sub), theirs_sub, "RESP{proto} {sub_name}");
            }
            compared += 1;
        }
        assert!(compared > 70, "only {compared} commands compared");
    }
}
