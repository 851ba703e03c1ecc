//! Every configurable limit against a real `moodb serve`: each gives a clear error or a closed
//! connection, none brings the server down, and a normal client is served afterwards with its
//! data intact.

// Test helpers may panic on failure like the tests themselves.
#![allow(clippy::unwrap_used)]

use std::thread::sleep;
use std::time::{Duration, Instant};

use moodb_tests::raw::{request, resident_bytes, Raw, Reply};
use moodb_tests::{ServerOptions, TestServer};

fn with_config(ron: &str, args: &[&str]) -> TestServer {
    TestServer::start(ServerOptions {
        config: Some(ron.to_string()),
        args: args.iter().map(|a| a.to_string()).collect(),
        ..ServerOptions::default()
    })
    .unwrap()
}

/// A normal client still gets its data back.
fn still_serves(s: &TestServer, key: &str, want: &str) {
    let mut con = s.connect().unwrap();
    let got: Option<String> = redis::cmd("GET").arg(key).query(&mut con).unwrap();
    assert_eq!(got.as_deref(), Some(want), "server stderr:\n{}", s.stderr());
}

fn line(s: &str) -> Reply {
    Reply::Line(s.to_string())
}

#[test]
fn request_limits_give_protocol_errors_and_close_only_that_connection() {
    let s = with_config(
        "(limits: (max_bulk_len: 1024, max_args: 8, max_inline_len: 256, max_query_buffer: 4096))",
        &[],
    );
    let mut con = s.connect().unwrap();
    let _: () = redis::cmd("SET")
        .arg("kept")
        .arg("v")
        .query(&mut con)
        .unwrap();

    // A value of exactly the limit is fine; one byte more is not.
    let mut raw = Raw::connect(s.addr).unwrap();
    let exact = vec![b'x'; 1024];
    assert_eq!(
        raw.ask(&request(&[b"SET", b"big", &exact])).unwrap(),
        line("+OK")
    );
    let over = vec![b'x'; 1025];
    assert_eq!(
        raw.ask(&request(&[b"SET", b"big", &over])).unwrap(),
        line("-ERR Protocol error: invalid bulk length")
    );
    assert_eq!(raw.line().unwrap(), Reply::Closed);

    let cases: [(&[u8], &str); 5] = [
        (b"*9\r\n", "-ERR Protocol error: invalid multibulk length"),
        (b"*1\r\n$-7\r\n", "-ERR Protocol error: invalid bulk length"),
        (
            b"*2\r\n$99999999999999999999999\r\n",
            "-ERR Protocol error: invalid bulk length",
        ),
        (&[b'A'; 300], "-ERR Protocol error: too big inline request"),
        (
            b"SET a b c d e f g h i j\r\n",
            "-ERR Protocol error: invalid multibulk length",
        ),
    ];
    for (bytes, want) in cases {
        let mut raw = Raw::connect(s.addr).unwrap();
        assert_eq!(raw.ask(bytes).unwrap(), line(want), "for {bytes:?}");
        assert_eq!(raw.line().unwrap(), Reply::Closed, "for {bytes:?}");
    }

    // Arguments each within the limits, but a request larger than the query buffer.
    let mut raw = Raw::connect(s.addr).unwrap();
    let mut partial = b"*8\r\n".to_vec();
    for _ in 0..5 {
        partial.extend_from_slice(&request(&[&[b'y'; 1000]])[4..]);
    }
    let Reply::Line(got) = raw.ask(&partial).unwrap() else {
        panic!("closed without a reason")
    };
    assert!(got.contains("limits.max_query_buffer"), "{got}");
    assert_eq!(raw.line().unwrap(), Reply::Closed);

    still_serves(&s, "kept", "v");
    still_serves(&s, "big", std::str::from_utf8(&exact).unwrap());
}

#[test]
fn a_declared_length_is_not_allocated_before_the_bytes_arrive() {
    let s = TestServer::start(ServerOptions::default()).unwrap();
    let pid = s.pid().unwrap();
    let before = resident_bytes(pid).unwrap();
    // Twenty clients each announce a value of almost 512 MB and send none of it.
    let mut clients: Vec<Raw> = (0..20)
        .map(|_| {
            let mut raw = Raw::connect(s.addr).unwrap();
            raw.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870000\r\nsome bytes")
                .unwrap();
            raw
        })
        .collect();
    // Let the server read them all: a PING behind them is answered after they were read.
    still_answers_ping(&s);
    let after = resident_bytes(pid).unwrap();
    assert!(
        after < before + 64 * 1024 * 1024,
        "resident memory went from {before} to {after} bytes for 20 announced 512 MB values"
    );
    clients.clear();
    still_answers_ping(&s);
}

fn still_answers_ping(s: &TestServer) {
    let mut con = s.connect().unwrap();
    let pong: String = redis::cmd("PING").query(&mut con).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn one_client_over_max_clients_is_told_and_a_freed_slot_is_reused() {
    let s = with_config("()", &["--max-clients", "4"]);
    let mut held: Vec<Raw> = (0..4)
        .map(|_| {
            let mut raw = Raw::connect(s.addr).unwrap();
            assert_eq!(raw.ask(b"PING\r\n").unwrap(), line("+PONG"));
            raw
        })
        .collect();
    let mut extra = Raw::connect(s.addr).unwrap();
    assert_eq!(
        extra.line().unwrap(),
        line("-ERR max number of clients reached")
    );
    assert_eq!(extra.line().unwrap(), Reply::Closed);
    // Give one back: a new client gets in once the server has seen it go.
    held.pop();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut raw = Raw::connect(s.addr).unwrap();
        match raw.ask(b"PING\r\n").unwrap() {
            Reply::Line(l) if l == "+PONG" => break,
            other => assert!(Instant::now() < deadline, "slot never freed: {other:?}"),
        }
        sleep(Duration::from_millis(50));
    }
    for raw in &mut held {
        assert_eq!(raw.ask(b"PING\r\n").unwrap(), line("+PONG"));
    }
}

#[test]
fn idle_clients_are_disconnected_and_busy_ones_are_not() {
    let s = with_config("(limits: (idle_timeout_s: 1))", &[]);
    let mut idle = Raw::connect(s.addr).unwrap();
    let mut busy = Raw::connect(s.addr).unwrap();
    assert_eq!(idle.ask(b"PING\r\n").unwrap(), line("+PONG"));
    for _ in 0..12 {
        assert_eq!(busy.ask(b"PING\r\n").unwrap(), line("+PONG"));
        sleep(Duration::from_millis(250));
    }
    // Three seconds later: the idle one was closed (the read sees EOF, not a timeout).
    assert_eq!(idle.line().unwrap(), Reply::Closed);
    assert_eq!(busy.ask(b"PING\r\n").unwrap(), line("+PONG"));
}

#[test]
fn a_client_that_never_reads_its_replies_is_disconnected() {
    let s = with_config("(limits: (max_output_buffer: 1048576))", &[]);
    let mut con = s.connect().unwrap();
    let value = "v".repeat(300 * 1024);
    let _: () = redis::cmd("SET")
        .arg("big")
        .arg(&value)
        .query(&mut con)
        .unwrap();
    // Twenty GETs of 300 KB in one write: 6 MB of replies for a 1 MB output limit.
    let mut raw = Raw::connect(s.addr).unwrap();
    raw.send(&request(&[b"GET", b"big"]).repeat(20)).unwrap();
    sleep(Duration::from_millis(300));
    let got = raw.drain_to_close(Duration::from_secs(20)).unwrap();
    assert!(got < 20 * value.len(), "all {got} reply bytes were sent");
    assert!(
        s.stderr().contains("limits.max_output_buffer"),
        "{}",
        s.stderr()
    );
    // A client that reads as it goes gets everything.
    let mut pipe = redis::pipe();
    for _ in 0..3 {
        pipe.cmd("GET").arg("big");
    }
    let values: Vec<String> = pipe.query(&mut con).unwrap();
    assert!(values.iter().all(|v| *v == value));
}
