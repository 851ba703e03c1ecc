//! RESP3 and HELLO on the wire, byte for byte against a real redis-server 7: the same
//! requests go to both over raw TCP and the replies must be the same bytes, in RESP2 and in
//! RESP3, but for the fields that legitimately differ (HELLO's `id` and `version`, INFO's
//! figures, CONFIG GET appendonly, COMMAND DOCS' `arguments`), which are normalized first.
//! Skipped (with a message) when redis-server is not installed.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use moodb_core::resp::{decode_frame, Frame};
use moodb_tests::raw::request;
use moodb_tests::redis_server::RedisServer;
use moodb_tests::{ServerOptions, TestServer};

/// A raw connection that reads whole replies (RESP2 or RESP3).
pub(crate) struct Wire {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Wire {
    pub(crate) fn connect(addr: SocketAddr) -> Wire {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Wire {
            stream,
            buf: Vec::new(),
        }
    }

    pub(crate) fn send(&mut self, words: &[&str]) {
        let args: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        self.stream.write_all(&request(&args)).unwrap();
    }

    /// The bytes of the next reply, and the reply.
    pub(crate) fn reply(&mut self) -> (Vec<u8>, Frame) {
        loop {
            if let Some((frame, used)) = decode_frame(&self.buf).unwrap() {
                let bytes = self.buf.drain(..used).collect();
                return (bytes, frame);
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = self.stream.read(&mut chunk).unwrap();
            assert!(n > 0, "the server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Whether the server closes the connection without sending anything more (waits up to
    /// the read timeout).
    pub(crate) fn closed(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut chunk = [0u8; 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => true,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                false
            }
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }

    pub(crate) fn ask(&mut self, words: &[&str]) -> (Vec<u8>, Frame) {
        self.send(words);
        self.reply()
    }
}

/// `frame` with the value under each of `keys` (in a map, or a RESP2 flat map) replaced by
/// `"*"`, and the map entries named in `drop` left out.
fn normalize(frame: &Frame, keys: &[&str], drop: &[&str]) -> Frame {
    let key_is = |k: &Frame, names: &[&str]| matches!(k, Frame::Bulk(b) if names.iter().any(|n| n.as_bytes() == &b[..]));
    let norm = |f: &Frame| normalize(f, keys, drop);
    match frame {
        Frame::Map(pairs) => Frame::Map(
            pairs
                .iter()
                .filter(|(k, _)| !key_is(k, drop))
                .map(|(k, v)| {
                    let v = if key_is(k, keys) {
                        Frame::bulk("*")
                    } else {
                        norm(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        // A RESP2 map: a flat array with one of the names at an even position.
        Frame::Array(items)
            if items.len() % 2 == 0
                && items
                    .chunks(2)
                    .any(|p| key_is(&p[0], keys) || key_is(&p[0], drop)) =>
        {
            Frame::Array(
                items
                    .chunks(2)
                    .filter(|p| !key_is(&p[0], drop))
                    .flat_map(|p| {
                        let v = if key_is(&p[0], keys) {
                            Frame::bulk("*")
                        } else {
                            norm(&p[1])
                        };
                        [p[0].clone(), v]
                    })
                    .collect(),
            )
        }
        Frame::Array(items) => Frame::Array(items.iter().map(norm).collect()),
        Frame::Set(items) => Frame::Set(items.iter().map(norm).collect()),
        // `text`: a text whose figures differ (INFO), in either protocol.
        Frame::Verbatim { format, .. } if keys.contains(&"text") => Frame::Verbatim {
            format: *format,
            text: "*".into(),
        },
        Frame::Bulk(_) if keys.contains(&"text") => Frame::bulk("*"),
        other => other.clone(),
    }
}

/// What one step compares: the bytes, or the bytes after normalizing some fields.
enum Check {
    Bytes,
    Normalized {
        keys: &'static [&'static str],
        drop: &'static [&'static str],
    },
}

const HELLO_FIELDS: Check = Check::Normalized {
    keys: &["id", "version"],
    drop: &[],
};

fn compare(what: &str, ours: (Vec<u8>, Frame), theirs: (Vec<u8>, Frame), check: &Check) {
    match check {
        Check::Bytes => assert_eq!(
            String::from_utf8_lossy(&ours.0),
            String::from_utf8_lossy(&theirs.0),
            "{what}: MooDB's bytes (left) differ from redis-server's (right)"
        ),
        Check::Normalized { keys, drop } => {
            // The type byte says the protocol (`%` or `*` for HELLO); the decoded frames tell
            // a map from an array, a set from an array, a verbatim string from a bulk one.
            assert_eq!(
                ours.0.first(),
                theirs.0.first(),
                "{what}: not the same type: {:?} vs {:?}",
                String::from_utf8_lossy(&ours.0),
                String::from_utf8_lossy(&theirs.0)
            );
            assert_eq!(
                normalize(&ours.1, keys, drop),
                normalize(&theirs.1, keys, drop),
                "{what}: MooDB (left) differs from redis-server (right) after normalizing {keys:?}"
            );
        }
    }
}

/// Runs the same steps on a connection to each server.
fn both(ours: &mut Wire, theirs: &mut Wire, steps: &[(&[&str], Check)]) {
    for (words, check) in steps {
        let what = words.join(" ");
        compare(&what, ours.ask(words), theirs.ask(words), check);
    }
}

#[test]
fn hello_and_replies_in_both_protocols_are_redis_7s_bytes() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let moodb = TestServer::start(ServerOptions::default()).unwrap();
    let mut ours = Wire::connect(moodb.addr);
    let mut theirs = Wire::connect(format!("127.0.0.1:{}", redis.port).parse().unwrap());
    let keys_on_both = [
        (&["SET", "k", "v"][..], Check::Bytes),
        (&["DEL", "n"][..], Check::Bytes),
    ];
    both(&mut ours, &mut theirs, &keys_on_both);
    // Everything but HELLO's reply is the same in both protocols for these.
    let common: Vec<(&[&str], Check)> = vec![
        (&["PING"], Check::Bytes),
        (&["ECHO", "hi"], Check::Bytes),
        (&["GET", "k"], Check::Bytes),
        (&["GET", "missing"], Check::Bytes),
        (&["SET", "k2", "x", "XX"], Check::Bytes),
        (&["SET", "k", "x", "NX"], Check::Bytes),
        (&["MGET", "k", "missing"], Check::Bytes),
        (&["INCR", "n"], Check::Bytes),
        (&["EXISTS", "k", "missing"], Check::Bytes),
        (&["CONFIG", "GET", "save"], Check::Bytes),
        (&["CONFIG", "GET", "nosuch"], Check::Bytes),
        (
            &["CONFIG", "GET", "appendonly"],
            Check::Normalized {
                keys: &["appendonly"],
                drop: &[],
            },
        ),
        (&["COMMAND", "INFO", "get", "nosuch"], Check::Bytes),
        (
            &["COMMAND", "DOCS", "get"],
            Check::Normalized {
                keys: &[],
                drop: &["arguments"],
            },
        ),
        (
            &["INFO", "keyspace"],
            Check::Normalized {
                keys: &["text"],
                drop: &[],
            },
        ),
        (&["CLIENT", "GETNAME"], Check::Bytes),
        (&["MULTI"], Check::Bytes),
        (&["GET", "k"], Check::Bytes),
        (&["GET", "missing"], Check::Bytes),
        (&["EXEC"], Check::Bytes),
        (&["HELLO", "4"], Check::Bytes),
        (&["HELLO", "1"], Check::Bytes),
        (&["HELLO", "x"], Check::Bytes),
        (&["HELLO", "03"], Check::Bytes),
        (&["HELLO", "3", "FOO"], Check::Bytes),
        (&["HELLO", "3", "AUTH", "default"], Check::Bytes),
        (&["HELLO", "3", "SETNAME", "a b"], Check::Bytes),
        (&["HELLO", "3", "AUTH", "nobody", "x"], Check::Bytes),
    ];
    // RESP2 first (the default), then RESP3, then back.
    both(&mut ours, &mut theirs, &common);
    both(
        &mut ours,
        &mut theirs,
        &[(&["HELLO"], HELLO_FIELDS), (&["HELLO", "3"], HELLO_FIELDS)],
    );
    both(&mut ours, &mut theirs, &common);
    let resp3_only: Vec<(&[&str], Check)> = vec![
        (&["HELLO"], HELLO_FIELDS),
        (&["HELLO", "3", "SETNAME", "app"], HELLO_FIELDS),
        (&["HELLO", "3", "AUTH", "default", "any"], HELLO_FIELDS),
        (&["HELLO", "2"], HELLO_FIELDS),
        (&["GET", "missing"], Check::Bytes),
        (
            &["HELLO", "2", "AUTH", "default", "x", "SETNAME", "b"],
            HELLO_FIELDS,
        ),
        (&["CONFIG", "GET", "save"], Check::Bytes),
    ];
    both(&mut ours, &mut theirs, &resp3_only);

    // Pipelined across a switch: the reply to what came before HELLO is in the old protocol.
    for wire in [&mut ours, &mut theirs] {
        wire.send(&["GET", "missing"]);
        wire.send(&["HELLO", "3"]);
        wire.send(&["GET", "missing"]);
        wire.send(&["HELLO", "2"]);
        wire.send(&["GET", "missing"]);
    }
    for (i, check) in [
        Check::Bytes,
        HELLO_FIELDS,
        Check::Bytes,
        HELLO_FIELDS,
        Check::Bytes,
    ]
    .iter()
    .enumerate()
    {
        compare(
            &format!("pipelined reply {i}"),
            ours.reply(),
            theirs.reply(),
            check,
        );
    }
}

/// EXEC of a transaction a WATCH aborted: `*-1` in RESP2, `_` in RESP3.
#[test]
fn an_aborted_exec_is_the_null_of_the_protocol() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let moodb = TestServer::start(ServerOptions::default()).unwrap();
    for version in ["2", "3"] {
        let mut replies = Vec::new();
        for addr in [
            moodb.addr,
            format!("127.0.0.1:{}", redis.port).parse().unwrap(),
        ] {
            let mut a = Wire::connect(addr);
            let mut b = Wire::connect(addr);
            a.ask(&["HELLO", version]);
            let steps: Vec<(Vec<u8>, Frame)> = vec![
                a.ask(&["WATCH", "w"]),
                a.ask(&["MULTI"]),
                a.ask(&["SET", "w", "mine"]),
                b.ask(&["SET", "w", "theirs"]),
                a.ask(&["EXEC"]),
                a.ask(&["GET", "w"]),
            ];
            replies.push(
                steps
                    .into_iter()
                    .map(|(bytes, _)| String::from_utf8_lossy(&bytes).into_owned())
                    .collect::<Vec<_>>(),
            );
        }
        assert_eq!(
            replies[0], replies[1],
            "HELLO {version}: MooDB (left), redis (right)"
        );
        let null = if version == "2" { "*-1\r\n" } else { "_\r\n" };
        assert_eq!(replies[0][4], null);
    }
}

/// With a password: HELLO before AUTH is refused unless it carries the right credentials,
/// as Redis refuses it; HELLO 4 is refused for its version first.
#[test]
fn hello_authenticates_as_redis_does() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let moodb = TestServer::start(ServerOptions {
        args: vec!["--requirepass".into(), "pw".into()],
        ..ServerOptions::default()
    })
    .unwrap();
    let redis_addr: SocketAddr = format!("127.0.0.1:{}", redis.port).parse().unwrap();
    let mut setup = Wire::connect(redis_addr);
    assert_eq!(
        setup.ask(&["CONFIG", "SET", "requirepass", "pw"]).1,
        Frame::ok()
    );
    let mut ours = Wire::connect(moodb.addr);
    let mut theirs = Wire::connect(redis_addr);
    both(
        &mut ours,
        &mut theirs,
        &[
            (&["HELLO", "3"], Check::Bytes),
            (&["HELLO", "4"], Check::Bytes),
            (&["HELLO", "3", "SETNAME", "app"], Check::Bytes),
            (&["GET", "k"], Check::Bytes),
            (&["HELLO", "3", "AUTH", "default", "wrong"], Check::Bytes),
            (&["GET", "k"], Check::Bytes),
            (&["HELLO", "3", "AUTH", "default", "pw"], HELLO_FIELDS),
            (&["GET", "k"], Check::Bytes),
            (&["HELLO", "2", "AUTH", "default", "wrong"], Check::Bytes),
            (&["GET", "k"], Check::Bytes),
            (&["HELLO"], HELLO_FIELDS),
        ],
    );
}
