//! Throws a catalogue of bad requests at one live `moodb serve` (truncated frames, negative and
//! huge lengths, binary garbage, a million-argument header, slow byte-at-a-time clients,
//! connect-and-vanish floods within the client limit), then checks that the server still
//! answers a normal client and that everything written before is intact.

// Test helpers may panic on failure like the tests themselves.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::Duration;

use moodb_tests::raw::{request, Raw, Reply};
use moodb_tests::{ServerOptions, TestServer};
use rand::{Rng, SeedableRng};

const KEYS: usize = 200;

fn check_data(s: &TestServer, when: &str) {
    let mut con = connect_when_a_slot_frees(s, when);
    let mut pipe = redis::pipe();
    for i in 0..KEYS {
        pipe.cmd("GET").arg(format!("key:{i}"));
    }
    let values: Vec<Option<String>> = pipe.query(&mut con).unwrap();
    for (i, v) in values.iter().enumerate() {
        assert_eq!(v.as_deref(), Some(format!("value {i}").as_str()), "{when}");
    }
    let n: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(n, KEYS as i64, "{when}");
}

/// A connection that answers PING. Right after a flood of vanished clients the server may not
/// yet have seen all of them close, so it can still refuse a client for `max-clients`: retry
/// for a bounded time.
fn connect_when_a_slot_frees(s: &TestServer, when: &str) -> redis::Connection {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let attempt = s.connect().and_then(|mut con| {
            redis::cmd("PING").query::<String>(&mut con)?;
            Ok(con)
        });
        match attempt {
            Ok(con) => return con,
            Err(err) if std::time::Instant::now() < deadline => {
                eprintln!("{when}: not admitted yet ({err}), retrying");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(err) => panic!("{when}: no client slot freed within 5 s: {err}"),
        }
    }
}

/// Sends `bytes`, then reads until the server closes or stops answering; never hangs.
fn throw(s: &TestServer, bytes: &[u8]) -> Vec<Reply> {
    let mut raw = Raw::connect(s.addr).unwrap();
    raw.stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    // The server may close mid-send after an error: that is fine.
    let _ = raw.send(bytes);
    let mut replies = Vec::new();
    while let Ok(reply) = raw.line() {
        let closed = reply == Reply::Closed;
        replies.push(reply);
        if closed || replies.len() > 100 {
            break;
        }
    }
    replies
}

#[test]
fn a_catalogue_of_bad_requests_leaves_the_server_serving_and_the_data_intact() {
    let mut s = TestServer::start(ServerOptions {
        args: vec!["--max-clients".into(), "64".into()],
        ..ServerOptions::default()
    })
    .unwrap();
    {
        let mut con = s.connect().unwrap();
        let mut pipe = redis::pipe();
        for i in 0..KEYS {
            pipe.cmd("SET")
                .arg(format!("key:{i}"))
                .arg(format!("value {i}"))
                .ignore();
        }
        let _: () = pipe.query(&mut con).unwrap();
    }

    let protocol_error = |replies: &[Reply], what: &str| {
        assert!(
            replies
                .iter()
                .any(|r| matches!(r, Reply::Line(l) if l.starts_with("-ERR Protocol error"))),
            "{what}: {replies:?}"
        );
        assert_eq!(replies.last(), Some(&Reply::Closed), "{what}: {replies:?}");
    };
    // Hostile lengths and malformed frames: each an error and a closed connection.
    let bad: [(&str, &[u8]); 10] = [
        ("negative bulk length", b"*2\r\n$3\r\nGET\r\n$-2\r\nk\r\n"),
        ("huge bulk length", b"*2\r\n$3\r\nGET\r\n$99999999999\r\n"),
        ("bulk length past i64", b"*1\r\n$18446744073709551617\r\n"),
        ("huge multibulk count", b"*99999999999\r\n"),
        ("non-numeric count", b"*abc\r\n"),
        ("bulk not where expected", b"*2\r\n$3\r\nGET\r\n:12\r\n"),
        ("bulk longer than said", b"*1\r\n$2\r\nPING\r\n"),
        ("endless header line", &[b'*'; 100_000]),
        ("endless inline command", &[b'G'; 100_000]),
        ("million-argument header", b"*1048577\r\n$1\r\nx\r\n"),
    ];
    for (what, bytes) in bad {
        protocol_error(&throw(&s, bytes), what);
    }
    // Truncated frames: the client goes away mid-request; the server forgets it.
    for cut in [1, 3, 7, 12, 20] {
        let full = request(&[b"SET", b"key:0", b"overwritten?"]);
        let mut c = TcpStream::connect(s.addr).unwrap();
        c.write_all(&full[..cut]).unwrap();
        drop(c);
    }
    // A million-argument header that is allowed, whose arguments never come.
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.write_all(b"*1000000\r\n$1\r\nx\r\n$1\r\ny\r\n").unwrap();
    drop(c);
    // Binary garbage, seeded so a failure can be replayed.
    let seed = rand::random::<u64>();
    eprintln!("garbage seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for _ in 0..30 {
        let len = rng.gen_range(1..4096);
        let mut junk: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        if rng.gen_bool(0.5) {
            junk[0] = b'*';
        }
        let _ = throw(&s, &junk);
    }
    check_data(&s, "after malformed requests");

    // Slow clients, one byte at a time, while a normal client is served alongside.
    let slow: Vec<_> = (0..4)
        .map(|i| {
            let addr = s.addr;
            thread::spawn(move || {
                let mut raw = Raw::connect(addr).unwrap();
                let req = request(&[b"GET", format!("key:{i}").as_bytes()]);
                for b in &req {
                    raw.send(&[*b]).unwrap();
                    thread::sleep(Duration::from_millis(40));
                }
                assert_eq!(raw.line().unwrap(), Reply::Line(format!("${}", 7)));
                assert_eq!(raw.line().unwrap(), Reply::Line(format!("value {i}")));
            })
        })
        .collect();
    for _ in 0..10 {
        check_data(&s, "while slow clients trickle");
        thread::sleep(Duration::from_millis(50));
    }
    for t in slow {
        t.join().unwrap();
    }

    // Connect-and-vanish floods, within the client limit: some close at once, some half
    // close, some ask and vanish before the reply (the server's write meets a reset).
    for round in 0..10 {
        let conns: Vec<TcpStream> = (0..50)
            .map(|_| TcpStream::connect(s.addr).unwrap())
            .collect();
        for (i, mut c) in conns.into_iter().enumerate() {
            match (i + round) % 3 {
                0 => {
                    let _ = c.write_all(&request(&[b"GET", b"key:1"]).repeat(100));
                }
                1 => {
                    let _ = c.shutdown(Shutdown::Write);
                }
                _ => {}
            }
        }
    }
    check_data(&s, "after connect floods");

    // The data survives a restart too: nothing malformed reached the log.
    assert!(s.is_running());
    s.stop().unwrap();
    s.restart().unwrap();
    check_data(&s, "after a restart");
}
