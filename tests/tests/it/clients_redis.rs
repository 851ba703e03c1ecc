//! The client commands against a real redis-server 7: CLIENT INFO / LIST (field names, order
//! and format; values that differ by nature, such as addresses, ages and buffer sizes, are
//! normalised), CLIENT KILL (replies, and the connections really close), CLIENT REPLY,
//! RESET, TIME, MONITOR's lines and SHUTDOWN, in RESP2 and RESP3. Skipped (with a message)
//! when redis-server is not installed; the MooDB-only parts (CLIENT SETINFO, Redis 7.2's,
//! and SHUTDOWN keeping every acknowledged write across a restart) always run.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::time::Duration;

use moodb_core::resp::Frame;
use moodb_tests::redis_server::RedisServer;
use moodb_tests::{query as q, ServerOptions, TestServer};

use crate::commands_redis::{compare, Check::Exact as E, Check::Kind as K};
use crate::resp3::Wire;

/// Fields whose values differ between two servers by nature: identities, addresses, times
/// and the buffer figures MooDB renders as 0.
const NORMALISED: &[&str] = &[
    "id",
    "addr",
    "laddr",
    "fd",
    "age",
    "idle",
    "qbuf",
    "qbuf-free",
    "rbs",
    "rbp",
    "obl",
    "oll",
    "omem",
    "tot-mem",
];

/// The fields MooDB adds after Redis 7.0's (Redis 7.2's CLIENT SETINFO).
const MOODB_EXTRA: &[&str] = &["lib-name", "lib-ver"];

fn text(frame: &Frame) -> String {
    match frame {
        Frame::Bulk(b) | Frame::Verbatim { text: b, .. } => String::from_utf8_lossy(b).into(),
        Frame::Simple(s) => s.to_string(),
        other => panic!("not a string: {other:?}"),
    }
}

/// A CLIENT line's `name=value` fields, in order.
fn fields(line: &str) -> Vec<(String, String)> {
    line.split(' ')
        .map(|f| {
            let (k, v) = f.split_once('=').unwrap_or((f, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// Compares one CLIENT INFO / LIST line of each server: the same fields in the same order
/// (MooDB's two extra ones last), the same values but for `NORMALISED` and `also`.
fn same_line(ours: &str, theirs: &str, also: &[&str], what: &str) {
    let (mut o, t) = (fields(ours), fields(theirs));
    let extra: Vec<String> = o.iter().skip(t.len()).map(|(k, _)| k.clone()).collect();
    assert_eq!(
        extra, MOODB_EXTRA,
        "{what}: the fields after Redis 7.0's\n{ours}"
    );
    o.truncate(t.len());
    let names = |f: &[(String, String)]| f.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(names(&o), names(&t), "{what}: field names and order");
    for ((k, ov), (_, tv)) in o.iter().zip(&t) {
        if NORMALISED.contains(&k.as_str()) || also.contains(&k.as_str()) {
            assert!(
                !ov.is_empty() || k == "name",
                "{what}: {k} is empty\n{ours}"
            );
            continue;
        }
        assert_eq!(
            ov, tv,
            "{what}: field {k}\n  moodb: {ours}\n  redis: {theirs}"
        );
    }
}

/// The lines of a CLIENT INFO / LIST reply, checking the reply's type and that every line
/// ends with a newline, as Redis sends them.
fn lines(reply: &(Vec<u8>, Frame), proto: u8) -> Vec<String> {
    let want = if proto == 3 { b'=' } else { b'$' };
    assert_eq!(reply.0.first(), Some(&want), "{:?}", reply.1);
    let all = text(&reply.1);
    assert!(all.is_empty() || all.ends_with('\n'), "{all:?}");
    all.lines().map(str::to_string).collect()
}

fn connect(addr: SocketAddr, proto: u8) -> Wire {
    let mut w = Wire::connect(addr);
    if proto == 3 {
        w.ask(&["HELLO", "3"]);
    }
    w
}

fn id_of(w: &mut Wire) -> String {
    match w.ask(&["CLIENT", "ID"]).1 {
        Frame::Integer(n) => n.to_string(),
        other => panic!("{other:?}"),
    }
}

/// The value of `field` in a connection's own CLIENT INFO.
fn own(w: &mut Wire, field: &str) -> String {
    let line = text(&w.ask(&["CLIENT", "INFO"]).1);
    fields(line.trim_end())
        .into_iter()
        .find(|(k, _)| k == field)
        .map(|(_, v)| v)
        .unwrap()
}

/// Three connections in known states, then what the third sees with CLIENT INFO and CLIENT
/// LIST: a named client in database 3 in MULTI, whose watched key was changed, with
/// NO-EVICT; one in MULTI with two commands queued; a subscriber to a channel and a pattern.
fn client_views(addr: SocketAddr, proto: u8) -> Vec<(Vec<u8>, Frame)> {
    let mut a = connect(addr, proto);
    let mut c = connect(addr, proto);
    let mut d = connect(addr, proto);
    let mut b = connect(addr, proto);
    let ids = [id_of(&mut a), id_of(&mut c), id_of(&mut d), id_of(&mut b)];
    a.ask(&["CLIENT", "SETNAME", "app"]);
    a.ask(&["SELECT", "3"]);
    a.ask(&["WATCH", "k"]);
    a.ask(&["CLIENT", "NO-EVICT", "on"]);
    b.ask(&["SELECT", "3"]);
    b.ask(&["SET", "k", "1"]);
    a.ask(&["MULTI"]);
    a.ask(&["SET", "x", "1"]);
    a.ask(&["GET", "x"]);
    // Redis stops queueing once a watched key changed: `a` shows multi=0, `d` its queue.
    d.ask(&["MULTI"]);
    d.ask(&["SET", "x", "1"]);
    d.ask(&["INCRBY", "counter", "12"]);
    c.ask(&["SUBSCRIBE", "ch"]);
    c.ask(&["PSUBSCRIBE", "p*"]);
    let mut list = vec!["CLIENT", "LIST", "ID"];
    list.extend(ids.iter().map(String::as_str));
    vec![
        b.ask(&["CLIENT", "INFO"]),
        b.ask(&list),
        b.ask(&["CLIENT", "LIST", "TYPE", "pubsub"]),
        b.ask(&["CLIENT", "LIST", "TYPE", "master"]),
        b.ask(&["CLIENT", "LIST", "ID", "999999", "-1"]),
    ]
}

#[test]
fn client_info_and_list_have_redis_7s_fields_and_values() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let moodb = TestServer::start(ServerOptions::default()).unwrap();
    for proto in [2, 3] {
        let ours = client_views(moodb.addr, proto);
        let theirs = client_views(redis.addr(), proto);
        for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
            let what = format!("RESP{proto} view {i}");
            let (o, t) = (lines(o, proto), lines(t, proto));
            assert_eq!(o.len(), t.len(), "{what}: lines\n{o:?}\n{t:?}");
            for (ol, tl) in o.iter().zip(&t) {
                // CLIENT LIST ID's own argv-mem counts the ids, whose digits differ.
                let also: &[&str] = if i == 1 { &["argv-mem"] } else { &[] };
                same_line(ol, tl, also, &what);
            }
        }
    }
}

#[test]
fn client_commands_and_their_errors_answer_as_redis_7_does() {
    compare(&[
        (E, &["CLIENT", "INFO", "x"]),
        (E, &["CLIENT", "LIST", "TYPE"]),
        (E, &["CLIENT", "LIST", "foo"]),
        (E, &["CLIENT", "LIST", "TYPE", "foo"]),
        (E, &["CLIENT", "LIST", "TYPE", "replica"]),
        (E, &["CLIENT", "LIST", "ID", "abc"]),
        (E, &["CLIENT", "LIST", "ID", "1", "x"]),
        (E, &["CLIENT", "LIST", "ID", "0", "999999"]),
        (E, &["CLIENT", "KILL"]),
        (E, &["CLIENT", "KILL", "1.2.3.4:5"]),
        (E, &["CLIENT", "KILL", "ID", "0"]),
        (E, &["CLIENT", "KILL", "ID", "x"]),
        (E, &["CLIENT", "KILL", "ID", "999999"]),
        (E, &["CLIENT", "KILL", "TYPE", "foo"]),
        (E, &["CLIENT", "KILL", "TYPE", "master"]),
        (E, &["CLIENT", "KILL", "USER", "bob"]),
        (E, &["CLIENT", "KILL", "USER", "default", "ID", "999999"]),
        (E, &["CLIENT", "KILL", "SKIPME", "maybe"]),
        (E, &["CLIENT", "KILL", "ADDR", "1.2.3.4:5", "SKIPME", "no"]),
        (E, &["CLIENT", "KILL", "LADDR", "1.2.3.4:5"]),
        (E, &["CLIENT", "KILL", "foo", "bar"]),
        (E, &["CLIENT", "KILL", "ID", "1", "TYPE"]),
        (E, &["CLIENT", "REPLY"]),
        (E, &["CLIENT", "REPLY", "maybe"]),
        (E, &["CLIENT", "REPLY", "ON"]),
        (E, &["CLIENT", "NO-EVICT"]),
        (E, &["CLIENT", "NO-EVICT", "maybe"]),
        (E, &["CLIENT", "NO-EVICT", "ON"]),
        (E, &["CLIENT", "NO-EVICT", "off"]),
        (E, &["CLIENT", "FROB"]),
        (K, &["TIME"]),
        (E, &["TIME", "x"]),
        (E, &["MONITOR", "x"]),
        (E, &["SHUTDOWN", "foo"]),
        (E, &["SHUTDOWN", "ABORT"]),
        (E, &["SHUTDOWN", "SAVE", "NOSAVE"]),
        (E, &["SHUTDOWN", "ABORT", "NOW"]),
        (E, &["RESET", "x"]),
    ]);
}

#[test]
fn reset_leaves_every_connection_state_as_redis_does() {
    // Each list runs in RESP2 and after HELLO 3; RESET goes back to RESP2 in both.
    compare(&[
        (E, &["CLIENT", "SETNAME", "n"]),
        (E, &["SELECT", "2"]),
        (E, &["SET", "a", "1"]),
        (E, &["WATCH", "a"]),
        (E, &["CLIENT", "NO-EVICT", "on"]),
        (E, &["MULTI"]),
        (E, &["SET", "b", "1"]),
        (E, &["RESET"]),
        (E, &["EXEC"]),
        (E, &["CLIENT", "GETNAME"]),
        (E, &["GET", "a"]),
        (E, &["GET", "b"]),
        (E, &["SUBSCRIBE", "ch"]),
        (E, &["PSUBSCRIBE", "p*"]),
        (E, &["RESET"]),
        (E, &["PING"]),
        (E, &["PUBSUB", "NUMSUB", "ch"]),
        (E, &["PUBSUB", "NUMPAT"]),
        // (HELLO's id and version differ: resp3.rs compares the rest.)
        (K, &["HELLO", "3", "SETNAME", "again"]),
        (E, &["CLIENT", "GETNAME"]),
    ]);
}

/// A connection that authenticated, then RESET: unauthenticated again when a password is set.
fn reset_after_auth(addr: SocketAddr) -> Vec<Vec<u8>> {
    let mut w = Wire::connect(addr);
    [
        &["AUTH", "pw"][..],
        &["GET", "a"],
        &["RESET"],
        &["GET", "a"],
        &["AUTH", "pw"],
        &["GET", "a"],
    ]
    .iter()
    .map(|words| w.ask(words).0)
    .collect()
}

#[test]
fn reset_forgets_authentication_as_redis_does() {
    let moodb = TestServer::start(ServerOptions {
        args: vec!["--requirepass".into(), "pw".into()],
        ..ServerOptions::default()
    })
    .unwrap();
    let ours = reset_after_auth(moodb.addr);
    assert_eq!(ours[3], b"-NOAUTH Authentication required.\r\n");
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mut admin = redis.connect().unwrap();
    let _: () = q(&mut admin, &["CONFIG", "SET", "requirepass", "pw"]).unwrap();
    assert_eq!(ours, reset_after_auth(redis.addr()));
}

/// CLIENT REPLY OFF / SKIP / ON on a pipeline: the replies that arrive, up to a PING's.
fn reply_modes(addr: SocketAddr) -> Vec<Vec<u8>> {
    let mut w = Wire::connect(addr);
    let steps: &[&[&str]] = &[
        &["CLIENT", "REPLY", "SKIP"],
        &["SET", "a", "1"],
        &["GET", "a"],
        &["CLIENT", "REPLY", "OFF"],
        &["INCR", "a"],
        &["CLIENT", "REPLY", "SKIP"],
        &["GET", "nosuchcommand", "x"],
        &["CLIENT", "REPLY", "ON"],
        &["GET", "a"],
        &["PING"],
    ];
    for words in steps {
        w.send(words);
    }
    let mut replies = Vec::new();
    loop {
        let (bytes, _) = w.reply();
        let last = bytes == b"+PONG\r\n";
        replies.push(bytes);
        if last {
            return replies;
        }
    }
}

#[test]
fn client_reply_skips_and_silences_replies_as_redis_does() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let moodb = TestServer::start(ServerOptions::default()).unwrap();
    let ours = reply_modes(moodb.addr);
    assert_eq!(ours.len(), 4, "{ours:?}");
    assert_eq!(ours, reply_modes(redis.addr()));
}

/// Kills connections of a server by each filter; the replies, and whether each victim's
/// connection closed, in order.
fn kill_story(addr: SocketAddr) -> Vec<String> {
    let mut k = Wire::connect(addr);
    let mut victims: Vec<Wire> = (0..4).map(|_| Wire::connect(addr)).collect();
    let ids: Vec<String> = victims.iter_mut().map(id_of).collect();
    let addrs: Vec<String> = victims.iter_mut().map(|w| own(w, "addr")).collect();
    let laddr = own(&mut victims[3], "laddr");
    let own_id = id_of(&mut k);
    let mut story = Vec::new();
    let ask = |k: &mut Wire, words: &[&str]| String::from_utf8_lossy(&k.ask(words).0).into_owned();
    for words in [
        &["CLIENT", "KILL", "ID", &ids[0]][..],
        &["CLIENT", "KILL", "ADDR", &addrs[1], "SKIPME", "yes"],
        &["CLIENT", "KILL", &addrs[2]],
        &["CLIENT", "KILL", &addrs[2]],
        &["CLIENT", "KILL", "LADDR", &laddr, "ID", &ids[3]],
        &["CLIENT", "KILL", "USER", "default", "ID", &own_id],
    ] {
        story.push(ask(&mut k, words));
    }
    let mut list = vec!["CLIENT", "LIST", "ID"];
    list.extend(ids.iter().map(String::as_str));
    let (_, reply) = k.ask(&list);
    story.push(format!("listed {}", text(&reply).lines().count()));
    for (i, v) in victims.iter_mut().enumerate() {
        story.push(format!("victim {i} closed: {}", v.closed()));
    }
    story.push(ask(
        &mut k,
        &["CLIENT", "KILL", "ID", &own_id, "SKIPME", "no"],
    ));
    story.push(format!("killer closed: {}", k.closed()));
    story
}

#[test]
fn client_kill_closes_the_connections_it_names() {
    let moodb = TestServer::start(ServerOptions::default()).unwrap();
    let ours = kill_story(moodb.addr);
    for i in 0..4 {
        assert!(
            ours.contains(&format!("victim {i} closed: true")),
            "{ours:?}"
        );
    }
    assert_eq!(ours.last().unwrap(), "killer closed: true", "{ours:?}");
    // Another connection can still work (and sees the others gone).
    let mut c = moodb.connect().unwrap();
    assert_eq!(q::<String>(&mut c, &["PING"]).unwrap(), "PONG");
    let Some(redis) = RedisServer::start() else {
        return;
    };
    assert_eq!(ours, kill_story(redis.addr()));
}

/// What a monitor sees while another connection runs a mix of commands, with the time and
/// the client's address normalised: `+T [db ADDR] "ARG" ...`.
fn monitor_lines(addr: SocketAddr, proto: u8) -> Vec<String> {
    let mut m = connect(addr, proto);
    assert_eq!(m.ask(&["MONITOR"]).0, b"+OK\r\n");
    let mut c = Wire::connect(addr);
    let steps: &[&[&str]] = &[
        &["SET", "k", "a b\"c\\"],
        &["GET", "k"],
        &["SELECT", "2"],
        &["SET", "x\n\té", "1"],
        &["MULTI"],
        &["SET", "q", "1"],
        &["GET", "q"],
        &["EXEC"],
        &["MULTI"],
        &["SET", "z", "1"],
        &["DISCARD"],
        &["CONFIG", "GET", "save"],
        &["CLIENT", "LIST"],
        &["CLIENT", "INFO"],
        &["FROB"],
        &["GET"],
        &["SET", "k", "v", "EX", "0"],
        &["PING"],
    ];
    for words in steps {
        c.ask(words);
    }
    let mut out = Vec::new();
    loop {
        let line = String::from_utf8_lossy(&m.reply().0).into_owned();
        let (time, rest) = line.split_once(' ').unwrap();
        let (secs, micros) = time.trim_start_matches('+').split_once('.').unwrap();
        assert!(secs.parse::<u64>().is_ok() && micros.len() == 6, "{line:?}");
        let (db, rest) = rest.trim_start_matches('[').split_once(' ').unwrap();
        let (_, args) = rest.split_once("] ").unwrap();
        let done = args == "\"PING\"\r\n";
        out.push(format!("+T [{db} ADDR] {args}"));
        if done {
            return out;
        }
    }
}

#[test]
fn monitor_shows_commands_as_redis_prints_them() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let moodb = TestServer::start(ServerOptions::default()).unwrap();
    for proto in [2, 3] {
        let ours = monitor_lines(moodb.addr, proto);
        assert!(ours.len() > 10, "{ours:?}");
        assert_eq!(ours, monitor_lines(redis.addr(), proto), "RESP{proto}");
    }
}

#[test]
fn client_setinfo_is_stored_and_shown() {
    let moodb = TestServer::start(ServerOptions::default()).unwrap();
    let mut w = Wire::connect(moodb.addr);
    let ok = b"+OK\r\n".to_vec();
    assert_eq!(w.ask(&["CLIENT", "SETINFO", "LIB-NAME", "mylib"]).0, ok);
    assert_eq!(w.ask(&["client", "setinfo", "lib-ver", "1.2.3"]).0, ok);
    assert_eq!(own(&mut w, "lib-name"), "mylib");
    assert_eq!(own(&mut w, "lib-ver"), "1.2.3");
    // Redis 7.2's errors: the attribute as sent, then the value's check.
    assert_eq!(
        w.ask(&["CLIENT", "SETINFO", "lib-Name", "a b"]).0,
        b"-ERR lib-Name cannot contain spaces, newlines or special characters.\r\n"
    );
    assert_eq!(
        w.ask(&["CLIENT", "SETINFO", "foo", "x"]).0,
        b"-ERR Unrecognized option 'foo'\r\n"
    );
    assert_eq!(
        w.ask(&["CLIENT", "SETINFO", "lib-name"]).0,
        b"-ERR wrong number of arguments for 'client|setinfo' command\r\n"
    );
    assert_eq!(own(&mut w, "lib-name"), "mylib");
    assert_eq!(w.ask(&["CLIENT", "SETINFO", "LIB-NAME", ""]).0, ok);
    assert_eq!(own(&mut w, "lib-name"), "");
    // NO-TOUCH (Redis 7.2) sets the T flag.
    assert_eq!(w.ask(&["CLIENT", "NO-TOUCH", "ON"]).0, ok);
    assert_eq!(own(&mut w, "flags"), "T");
    assert_eq!(
        w.ask(&["CLIENT", "NO-TOUCH", "maybe"]).0,
        b"-ERR syntax error\r\n"
    );
    // The `redis` crate sends its name and version on every connection.
    let mut c = moodb.connect().unwrap();
    let info: String = q(&mut c, &["CLIENT", "INFO"]).unwrap();
    assert!(info.contains(" lib-name=redis-rs lib-ver="), "{info}");
}

/// Writes `n` keys through the `redis` crate (each acknowledged), then SHUTDOWN with `args`;
/// the server must close the connection without a reply and exit 0.
fn write_then_shutdown(moodb: &mut TestServer, prefix: &str, n: usize, args: &[&str]) {
    let mut c = moodb.connect().unwrap();
    for i in 0..n {
        let _: () = q(&mut c, &["SET", &format!("{prefix}{i}"), &i.to_string()]).unwrap();
    }
    let mut w = Wire::connect(moodb.addr);
    let mut words = vec!["SHUTDOWN"];
    words.extend(args);
    w.send(&words);
    assert!(w.closed(), "SHUTDOWN {args:?} answered instead of closing");
    let status = moodb.wait_exit(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "SHUTDOWN {args:?}: {status:?}\n{}",
        moodb.stderr()
    );
}

fn checkpoints(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("checkpoint-"))
        })
        .count()
}

#[test]
fn shutdown_exits_cleanly_and_keeps_every_acknowledged_write() {
    let mut moodb = TestServer::start(ServerOptions::default()).unwrap();
    // NOSAVE: the log is synced, no checkpoint is written.
    write_then_shutdown(&mut moodb, "a", 200, &["NOSAVE"]);
    assert_eq!(checkpoints(&moodb.data_dir), 0);
    moodb.restart().unwrap();
    let mut c = moodb.connect().unwrap();
    for i in 0..200 {
        let v: Option<String> = q(&mut c, &["GET", &format!("a{i}")]).unwrap();
        assert_eq!(v, Some(i.to_string()), "a{i} lost after SHUTDOWN NOSAVE");
    }
    drop(c);
    // The default (and SAVE, NOW, FORCE): a checkpoint first.
    write_then_shutdown(&mut moodb, "b", 100, &[]);
    assert_eq!(checkpoints(&moodb.data_dir), 1);
    moodb.restart().unwrap();
    write_then_shutdown(&mut moodb, "c", 100, &["SAVE", "NOW", "FORCE"]);
    moodb.restart().unwrap();
    let mut c = moodb.connect().unwrap();
    for (prefix, n) in [("a", 200), ("b", 100), ("c", 100)] {
        for i in 0..n {
            let v: Option<String> = q(&mut c, &["GET", &format!("{prefix}{i}")]).unwrap();
            assert_eq!(v, Some(i.to_string()), "{prefix}{i} lost");
        }
    }
}

#[test]
fn shutdown_closes_the_connection_without_a_reply_in_redis_too() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mut w = Wire::connect(redis.addr());
    w.send(&["SHUTDOWN", "NOSAVE"]);
    assert!(w.closed());
}

#[test]
fn a_monitor_that_never_reads_is_bounded_as_a_subscriber() {
    use moodb_tests::raw::{request, Raw};
    let moodb = TestServer::start(ServerOptions {
        config: Some("(pubsub: (hard_bytes: 4194304))".into()),
        ..ServerOptions::default()
    })
    .unwrap();
    let mut monitor = Raw::connect(moodb.addr).unwrap();
    monitor.send(&request(&[b"MONITOR"])).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let mut c = moodb.connect().unwrap();
    let value = "v".repeat(256 << 10);
    // 200 lines of 256 KiB: 50 MB for a monitor that reads none of it.
    for i in 0..200 {
        let _: () = q(&mut c, &["SET", &format!("k{i}"), &value]).unwrap();
    }
    let got = monitor.drain_to_close(Duration::from_secs(20)).unwrap();
    assert!(got < 200 * (256 << 10), "all {got} bytes were sent");
    assert!(
        moodb.stderr().contains("pubsub.hard_bytes"),
        "{}",
        moodb.stderr()
    );
    // The writer and the server go on.
    let v: Option<String> = q(&mut c, &["GET", "k199"]).unwrap();
    assert_eq!(v.map(|v| v.len()), Some(256 << 10));
}
