//! The same command lists, error cases included, sent to MooDB and to a real redis-server 7:
//! the replies must be equal byte for byte, in RESP2 and (after `HELLO 3`) in RESP3. Skipped (with a message) when
//! redis-server is not installed. Only what legitimately differs is left out of the
//! comparison, each marked where it is sent: replies that depend on the clock while time
//! passes (PTTL, OBJECT IDLETIME), and RANDOMKEY's choice
//! among several keys.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use moodb_tests::redis_server::RedisServer;
use moodb_tests::{ServerOptions, TestServer};

/// One raw connection (RESP2, or RESP3 after HELLO 3).
struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Conn {
            reader: BufReader::new(stream),
        }
    }

    /// Sends `args` as a RESP array of bulk strings and returns the whole reply's bytes.
    fn call(&mut self, args: &[&[u8]]) -> Vec<u8> {
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            req.extend_from_slice(a);
            req.extend_from_slice(b"\r\n");
        }
        self.reader.get_mut().write_all(&req).unwrap();
        let mut out = Vec::new();
        self.reply(&mut out);
        out
    }

    fn line(&mut self, out: &mut Vec<u8>) -> String {
        let mut line = Vec::new();
        self.reader.read_until(b'\n', &mut line).unwrap();
        assert!(line.ends_with(b"\r\n"), "truncated reply {line:?}");
        out.extend_from_slice(&line);
        String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned()
    }

    /// Reads one reply, nested aggregates included, into `out`.
    fn reply(&mut self, out: &mut Vec<u8>) {
        let at = out.len();
        let rest = self.line(out);
        match out[at] {
            b'$' | b'=' | b'!' => {
                let n: i64 = rest.parse().unwrap();
                if n >= 0 {
                    let mut body = vec![0u8; n as usize + 2];
                    self.reader.read_exact(&mut body).unwrap();
                    out.extend_from_slice(&body);
                }
            }
            b'*' | b'~' | b'>' | b'%' => {
                let n: i64 = rest.parse().unwrap();
                let items = if out[at] == b'%' { 2 * n } else { n };
                for _ in 0..items.max(0) {
                    self.reply(out);
                }
            }
            _ => {}
        }
    }
}

/// How a reply is compared.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Byte for byte.
    Exact,
    /// Only the reply's type (its first byte): the value depends on the clock or on chance.
    Kind,
}

/// Runs every case on both servers, in RESP2 and in RESP3, and collects the differences.
pub(crate) fn compare(cases: &[(Check, &[&str])]) {
    compare_in(cases, 2);
    compare_in(cases, 3);
}

/// Runs every case on both servers over connections speaking `proto`.
fn compare_in(cases: &[(Check, &[&str])], proto: u8) {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let moodb = TestServer::start(ServerOptions::default()).unwrap();
    let theirs_addr: SocketAddr = format!("127.0.0.1:{}", redis.port).parse().unwrap();
    let mut ours = Conn::open(moodb.addr);
    let mut theirs = Conn::open(theirs_addr);
    if proto == 3 {
        // The HELLO replies differ (id, version): resp3.rs compares them.
        ours.call(&[b"HELLO", b"3"]);
        theirs.call(&[b"HELLO", b"3"]);
    }
    let mut differences = Vec::new();
    for (check, words) in cases {
        let args: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        let o = ours.call(&args);
        let t = theirs.call(&args);
        let same = match check {
            Check::Exact => o == t,
            Check::Kind => o.first() == t.first(),
        };
        if !same {
            differences.push(format!(
                "RESP{proto} {words:?}\n  moodb: {:?}\n  redis: {:?}",
                String::from_utf8_lossy(&o),
                String::from_utf8_lossy(&t)
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "{} replies differ:\n{}",
        differences.len(),
        differences.join("\n")
    );
}

use Check::{Exact as E, Kind as K};

#[test]
fn string_commands_answer_as_redis_7_does() {
    let big_offset = "536870912";
    compare(&[
        // SET's options.
        (E, &["SET", "k", "v", "NX", "NX"]),
        (E, &["SET", "k", "v", "GET", "GET"]),
        (E, &["SET", "k", "v", "XX", "KEEPTTL", "KEEPTTL"]),
        (E, &["SET", "k", "v", "EX", "10", "EX", "20"]),
        (E, &["SET", "k", "v", "EX", "10", "PX", "20"]),
        (E, &["SET", "k", "v", "EX", "abc", "BOGUS"]),
        (E, &["SET", "k", "v", "KEEPTTL", "EX", "1"]),
        (E, &["SET", "k", "v", "PX", "9223372036854775807"]),
        (E, &["SET", "k", "v", "EX", "9223372036854775"]),
        (E, &["SET", "k", "v", "EXAT", "9223372036854775"]),
        (E, &["SET", "k", "v", "PXAT", "9223372036854775807"]),
        (E, &["SET", "k", "v", "EXAT", "1"]),
        (E, &["GET", "k"]),
        (E, &["SET", "k", "v", "NX", "GET"]),
        // GETSET, SETNX, SETEX, PSETEX.
        (E, &["GETSET", "gs", "1"]),
        (E, &["GETSET", "gs", "2"]),
        (E, &["GETSET"]),
        (E, &["SETNX", "nx", "1"]),
        (E, &["SETNX", "nx", "2"]),
        (E, &["GET", "nx"]),
        (E, &["SETEX", "se", "100", "v"]),
        (E, &["PSETEX", "pse", "100000", "v"]),
        (E, &["SETEX", "se", "0", "v"]),
        (E, &["SETEX", "se", "-1", "v"]),
        (E, &["SETEX", "se", "abc", "v"]),
        (E, &["PSETEX", "se", "0", "v"]),
        (E, &["SETEX", "se", "9223372036854775807", "v"]),
        (E, &["SETEX", "se", "1"]),
        // GETDEL, GETEX.
        (E, &["SET", "gd", "v"]),
        (E, &["GETDEL", "gd"]),
        (E, &["GETDEL", "gd"]),
        (E, &["GETDEL"]),
        (E, &["SET", "ge", "v"]),
        (E, &["GETEX", "ge"]),
        (E, &["GETEX", "ge", "EX", "100"]),
        (E, &["GETEX", "ge", "PERSIST"]),
        (E, &["GETEX", "ge", "PXAT", "99999999999999"]),
        (E, &["GETEX", "ge", "EXAT", "1"]),
        (E, &["EXISTS", "ge"]),
        (E, &["GETEX", "nokey", "EX", "10"]),
        (E, &["GETEX", "nokey", "EX", "0"]),
        (E, &["GETEX", "ge", "PX", "0"]),
        (E, &["GETEX", "ge", "EX", "-1"]),
        (E, &["GETEX", "ge", "EX", "abc"]),
        (E, &["GETEX", "ge", "EX", "10", "PX", "10"]),
        (E, &["GETEX", "ge", "PERSIST", "EX", "10"]),
        (E, &["GETEX", "ge", "KEEPTTL"]),
        (E, &["GETEX", "ge", "EX"]),
        (E, &["GETEX", "ge", "EX", "9223372036854775807"]),
        // GETRANGE / SUBSTR / SETRANGE.
        (E, &["SET", "s", "Hello World"]),
        (E, &["GETRANGE", "s", "0", "4"]),
        (E, &["GETRANGE", "s", "-5", "-1"]),
        (E, &["GETRANGE", "s", "0", "-1"]),
        (E, &["GETRANGE", "s", "5", "2"]),
        (E, &["GETRANGE", "s", "100", "200"]),
        (E, &["GETRANGE", "s", "-100", "-50"]),
        (E, &["GETRANGE", "s", "-100", "2"]),
        (E, &["GETRANGE", "s", "-1", "-2"]),
        (E, &["GETRANGE", "s", "0", "9223372036854775807"]),
        (E, &["GETRANGE", "nokey", "0", "-1"]),
        (E, &["GETRANGE", "s", "a", "1"]),
        (E, &["GETRANGE", "s", "0"]),
        (E, &["SUBSTR", "s", "0", "4"]),
        (E, &["SETRANGE", "s", "6", "Redis"]),
        (E, &["GET", "s"]),
        (E, &["SETRANGE", "pad", "5", "x"]),
        (E, &["GET", "pad"]),
        (E, &["SETRANGE", "empty", "5", ""]),
        (E, &["EXISTS", "empty"]),
        (E, &["SETRANGE", "s", "2", ""]),
        (E, &["SETRANGE", "s", "-1", "x"]),
        (E, &["SETRANGE", "s", big_offset, "x"]),
        (E, &["SETRANGE", "s", "a", "x"]),
        // MSETNX.
        (E, &["MSETNX", "m1", "1", "m2", "2"]),
        (E, &["MSETNX", "m2", "3", "m3", "4"]),
        (E, &["MGET", "m1", "m2", "m3"]),
        (E, &["MSETNX", "m1"]),
        (E, &["MSETNX", "m1", "1", "m2"]),
        // INCRBYFLOAT.
        (E, &["SET", "f", "10.50"]),
        (E, &["INCRBYFLOAT", "f", "0.1"]),
        (E, &["INCRBYFLOAT", "f", "-5"]),
        (E, &["INCRBYFLOAT", "f", "5.0e3"]),
        (E, &["INCRBYFLOAT", "f", "3.0e-10"]),
        (E, &["INCRBYFLOAT", "f", "1e400"]),
        (E, &["INCRBYFLOAT", "f2", "0.1"]),
        (E, &["INCRBYFLOAT", "f2", "0.2"]),
        (E, &["INCRBYFLOAT", "f3", "3.14159265358979323846"]),
        (E, &["INCRBYFLOAT", "f4", "-1.5e-7"]),
        (E, &["INCRBYFLOAT", "f5", "12345678901234567890123"]),
        (E, &["INCRBYFLOAT", "f6", "0x10"]),
        (E, &["INCRBYFLOAT", "f6", "0x1.8p3"]),
        (E, &["INCRBYFLOAT", "f7", "1e-20"]),
        (E, &["INCRBYFLOAT", "f7", "-0"]),
        (E, &["INCRBYFLOAT", "f8", "1e308"]),
        (E, &["INCRBYFLOAT", "f8", "1e308"]),
        (E, &["INCRBYFLOAT", "f9", "1e-4940"]),
        (E, &["INCRBYFLOAT", "f9", "7"]),
        (E, &["INCRBYFLOAT", "f", "abc"]),
        (E, &["INCRBYFLOAT", "f", " 1"]),
        (E, &["INCRBYFLOAT", "f", "1 "]),
        (E, &["INCRBYFLOAT", "f", ""]),
        (E, &["INCRBYFLOAT", "f", "nan"]),
        (E, &["INCRBYFLOAT", "f", "inf"]),
        (E, &["INCRBYFLOAT", "f", "-infinity"]),
        (E, &["INCRBYFLOAT", "f", "1e5000"]),
        (E, &["INCRBYFLOAT", "f", "1e-5000"]),
        (E, &["INCRBYFLOAT", "s", "1"]),
        (E, &["INCRBYFLOAT", "f"]),
        (E, &["SET", "fx", "1.5e3"]),
        (E, &["INCRBYFLOAT", "fx", ".5"]),
        // LCS.
        (E, &["MSET", "key1", "ohmytext", "key2", "mynewtext"]),
        (E, &["LCS", "key1", "key2"]),
        (E, &["LCS", "key1", "key2", "LEN"]),
        (E, &["LCS", "key1", "key2", "IDX"]),
        (E, &["LCS", "key1", "key2", "IDX", "MINMATCHLEN", "4"]),
        (
            E,
            &[
                "LCS",
                "key1",
                "key2",
                "IDX",
                "MINMATCHLEN",
                "4",
                "WITHMATCHLEN",
            ],
        ),
        (E, &["LCS", "key1", "key2", "IDX", "WITHMATCHLEN"]),
        (E, &["LCS", "key1", "key2", "MINMATCHLEN", "-5", "IDX"]),
        (E, &["LCS", "key1", "key2", "LEN", "IDX"]),
        (E, &["LCS", "key1", "key2", "idx", "len"]),
        (E, &["LCS", "key1", "key2", "MINMATCHLEN"]),
        (E, &["LCS", "key1", "key2", "MINMATCHLEN", "x"]),
        (E, &["LCS", "key1", "key2", "FOO"]),
        (E, &["LCS", "key1", "key2", "WITHMATCHLEN"]),
        (E, &["LCS", "key1", "nokey"]),
        (E, &["LCS", "nokey", "nokey2", "IDX"]),
        (E, &["LCS", "key1"]),
        (E, &["MSET", "a", "abcdef", "b", "abzdxf"]),
        (E, &["LCS", "a", "b", "IDX", "WITHMATCHLEN"]),
        (
            E,
            &[
                "MSET",
                "x",
                "GATTACA-ACGT-TTAGGC",
                "y",
                "TAGACCA-AGCT-GGATTC",
            ],
        ),
        (E, &["LCS", "x", "y", "IDX", "WITHMATCHLEN"]),
        (E, &["LCS", "x", "y"]),
        // APPEND past the bulk limit is refused before anything is built.
        (E, &["APPEND", "s", "!"]),
        (E, &["TTL", "se"]),
        (K, &["PTTL", "se"]),
    ]);
}

#[test]
fn client_names_answer_as_redis_7_does() {
    compare(&[
        (E, &["CLIENT", "GETNAME"]),
        (E, &["CLIENT", "SETNAME", "app-1"]),
        (E, &["CLIENT", "GETNAME"]),
        (E, &["CLIENT", "SETNAME", "a b"]),
        (E, &["CLIENT", "SETNAME", "new\nline"]),
        (E, &["CLIENT", "SETNAME"]),
        (E, &["CLIENT", "SETNAME", "a", "b"]),
        (E, &["CLIENT", "GETNAME", "x"]),
        (E, &["CLIENT", "GETNAME"]),
        (E, &["CLIENT", "SETNAME", ""]),
        (E, &["CLIENT", "GETNAME"]),
        // The id is the connection's number: its type only.
        (K, &["CLIENT", "ID"]),
        (E, &["CLIENT", "ID", "x"]),
        // HELLO's SETNAME names the connection too (its reply holds the id: type only).
        (K, &["HELLO", "2", "SETNAME", "via-hello"]),
        (E, &["CLIENT", "GETNAME"]),
    ]);
}

#[test]
fn key_commands_answer_as_redis_7_does() {
    compare(&[
        // EXPIRE and its variants, NX/XX/GT/LT, errors.
        (E, &["SET", "k", "v"]),
        (E, &["EXPIRE", "k", "100"]),
        (E, &["TTL", "k"]),
        (K, &["PTTL", "k"]),
        (E, &["EXPIRE", "k", "50", "GT"]),
        (E, &["EXPIRE", "k", "200", "GT"]),
        (E, &["EXPIRE", "k", "300", "LT"]),
        (E, &["EXPIRE", "k", "50", "LT"]),
        (E, &["EXPIRE", "k", "10", "NX"]),
        (E, &["EXPIRE", "k", "10", "XX"]),
        (E, &["TTL", "k"]),
        (E, &["SET", "p", "v"]),
        (E, &["EXPIRE", "p", "10", "XX"]),
        (E, &["EXPIRE", "p", "10", "GT"]),
        (E, &["EXPIRE", "p", "10", "LT"]),
        (E, &["EXPIRE", "p", "20", "XX", "GT"]),
        (E, &["EXPIRE", "p", "5", "xx", "lt"]),
        (E, &["EXPIRE", "p", "10", "NX", "XX"]),
        (E, &["EXPIRE", "p", "10", "GT", "LT"]),
        (E, &["EXPIRE", "p", "10", "NX", "GT"]),
        (E, &["EXPIRE", "p", "10", "Foo"]),
        (E, &["EXPIRE", "p", "abc"]),
        (E, &["EXPIRE", "p", "abc", "Foo"]),
        (E, &["EXPIRE", "p"]),
        (E, &["EXPIRE", "p", "9223372036854775807"]),
        (E, &["EXPIRE", "p", "-9223372036854775807"]),
        (E, &["PEXPIRE", "p", "9223372036854775807"]),
        (E, &["EXPIREAT", "p", "9223372036854775807"]),
        (E, &["PEXPIREAT", "p", "9223372036854775807"]),
        (E, &["PEXPIRETIME", "p"]),
        (E, &["EXPIRETIME", "p"]),
        (E, &["EXPIREAT", "p", "99999999999"]),
        (E, &["EXPIRETIME", "p"]),
        (E, &["PEXPIREAT", "p", "99999999999999"]),
        (E, &["PEXPIRETIME", "p"]),
        (E, &["EXPIRE", "nokey", "10"]),
        (E, &["EXPIRE", "p", "-1"]),
        (E, &["EXISTS", "p"]),
        (E, &["SET", "p", "v"]),
        (E, &["EXPIRE", "p", "0"]),
        (E, &["EXISTS", "p"]),
        (E, &["SET", "p", "v"]),
        (E, &["PEXPIREAT", "p", "1"]),
        (E, &["GET", "p"]),
        // TTL family and PERSIST.
        (E, &["TTL", "nokey"]),
        (E, &["PTTL", "nokey"]),
        (E, &["EXPIRETIME", "nokey"]),
        (E, &["PEXPIRETIME", "nokey"]),
        (E, &["SET", "q", "v"]),
        (E, &["TTL", "q"]),
        (E, &["PTTL", "q"]),
        (E, &["EXPIRETIME", "q"]),
        (E, &["PEXPIRETIME", "q"]),
        (E, &["TTL"]),
        (E, &["EXPIRE", "q", "100"]),
        (E, &["PERSIST", "q"]),
        (E, &["PERSIST", "q"]),
        (E, &["PERSIST", "nokey"]),
        (E, &["TTL", "q"]),
        // TYPE, RENAME, RENAMENX.
        (E, &["TYPE", "q"]),
        (E, &["TYPE", "nokey"]),
        (E, &["RENAME", "q", "r"]),
        (E, &["GET", "r"]),
        (E, &["RENAME", "nokey", "x"]),
        (E, &["RENAME", "r", "r"]),
        (E, &["RENAME", "nokey", "nokey"]),
        (E, &["RENAMENX", "r", "r"]),
        (E, &["SET", "s", "v"]),
        (E, &["RENAMENX", "r", "s"]),
        (E, &["RENAMENX", "r", "t"]),
        (E, &["RENAMENX", "nokey", "t"]),
        (E, &["SETEX", "ex", "100", "v"]),
        (E, &["RENAME", "ex", "ex2"]),
        (E, &["TTL", "ex2"]),
        (E, &["EXISTS", "ex"]),
        (E, &["RENAME", "ex2", "s"]),
        (E, &["TTL", "s"]),
        // TOUCH, UNLINK.
        (E, &["TOUCH", "s", "t", "nokey", "t"]),
        (E, &["UNLINK", "s", "t", "nokey"]),
        (E, &["UNLINK"]),
        (E, &["TOUCH"]),
        // COPY (only DB 0: Redis has 16, MooDB one).
        (E, &["SETEX", "src", "100", "v"]),
        (E, &["COPY", "src", "c"]),
        (E, &["TTL", "c"]),
        (E, &["COPY", "src", "c"]),
        (E, &["COPY", "src", "c", "REPLACE"]),
        (E, &["COPY", "src", "c", "DB", "0"]),
        (E, &["COPY", "src", "c", "DB", "0", "REPLACE"]),
        (E, &["COPY", "src", "c", "DB", "x"]),
        (E, &["COPY", "src", "c", "DB", "-1"]),
        (E, &["COPY", "src", "c", "DB", "99999999999"]),
        (E, &["COPY", "src", "c", "DB"]),
        (E, &["COPY", "src", "c", "FOO"]),
        (E, &["COPY", "nokey", "c"]),
        (E, &["COPY", "src", "src"]),
        (E, &["COPY", "src", "src", "REPLACE"]),
        (E, &["COPY", "src"]),
        // OBJECT (values made by SET: Redis also remembers how a value was built).
        (E, &["SET", "i", "12345"]),
        (E, &["SET", "small", "5"]),
        (E, &["SET", "e", "short"]),
        (
            E,
            &[
                "SET",
                "raw",
                "123456789012345678901234567890123456789012345",
            ],
        ),
        (
            E,
            &[
                "SET",
                "emb44",
                "12345678901234567890123456789012345678901234",
            ],
        ),
        (E, &["SET", "neg", "-5"]),
        (E, &["SET", "lead", "012"]),
        (E, &["SET", "big", "9223372036854775807"]),
        (E, &["SET", "big2", "9223372036854775808"]),
        (E, &["SET", "plus", "+1"]),
        (E, &["SET", "mz", "-0"]),
        (E, &["SET", "sp", " 1"]),
        (E, &["OBJECT", "ENCODING", "i"]),
        (E, &["OBJECT", "ENCODING", "small"]),
        (E, &["OBJECT", "ENCODING", "e"]),
        (E, &["OBJECT", "ENCODING", "raw"]),
        (E, &["OBJECT", "ENCODING", "emb44"]),
        (E, &["OBJECT", "ENCODING", "neg"]),
        (E, &["OBJECT", "ENCODING", "lead"]),
        (E, &["OBJECT", "ENCODING", "big"]),
        (E, &["OBJECT", "ENCODING", "big2"]),
        (E, &["OBJECT", "ENCODING", "plus"]),
        (E, &["OBJECT", "ENCODING", "mz"]),
        (E, &["OBJECT", "ENCODING", "sp"]),
        (E, &["OBJECT", "ENCODING", "nokey"]),
        (E, &["object", "encoding", "i"]),
        (E, &["OBJECT", "REFCOUNT", "i"]),
        (E, &["OBJECT", "REFCOUNT", "small"]),
        (E, &["OBJECT", "REFCOUNT", "e"]),
        (E, &["OBJECT", "REFCOUNT", "nokey"]),
        (E, &["OBJECT", "FREQ", "e"]),
        (E, &["OBJECT", "FREQ", "nokey"]),
        (K, &["OBJECT", "IDLETIME", "e"]),
        (E, &["OBJECT", "IDLETIME", "nokey"]),
        (E, &["OBJECT", "FOO", "e"]),
        (E, &["OBJECT"]),
        (E, &["OBJECT", "ENCODING"]),
        (E, &["OBJECT", "ENCODING", "a", "b"]),
        (E, &["OBJECT", "HELP"]),
        (E, &["OBJECT", "HELP", "x"]),
        // RANDOMKEY (which key, among several, is chance), DBSIZE counting live keys.
        (K, &["RANDOMKEY"]),
        (E, &["RANDOMKEY", "x"]),
        (E, &["DBSIZE"]),
        (E, &["FLUSHDB"]),
        (E, &["RANDOMKEY"]),
        (E, &["SET", "only", "1"]),
        (E, &["RANDOMKEY"]),
        (E, &["DBSIZE"]),
    ]);
}

#[test]
fn database_commands_answer_as_redis_7_does() {
    compare(&[
        // SELECT: range and parse errors, arity; keys are per database.
        (E, &["SET", "k", "zero"]),
        (E, &["SELECT", "3"]),
        (E, &["GET", "k"]),
        (E, &["SET", "k", "three"]),
        (E, &["INFO", "keyspace"]),
        // avg_ttl depends on Redis' expiry sampling: INFO keyspace is compared exactly only
        // while no key has a TTL.
        (E, &["SET", "t", "v", "EX", "100"]),
        (E, &["DBSIZE"]),
        (E, &["DBSIZE", "x"]),
        (E, &["SELECT", "16"]),
        (E, &["SELECT", "-1"]),
        (E, &["SELECT", "x"]),
        (E, &["SELECT", "99999999999999999999"]),
        (E, &["SELECT"]),
        (E, &["SELECT", "1", "2"]),
        (E, &["GET", "k"]),
        (E, &["SELECT", "0"]),
        (E, &["GET", "k"]),
        (E, &["DBSIZE"]),
        (K, &["INFO", "keyspace"]),
        (E, &["CONFIG", "GET", "databases"]),
        // MOVE: the TTL goes along; not over an existing key; not to the same database.
        (E, &["SELECT", "3"]),
        (E, &["MOVE", "t", "5"]),
        (E, &["TTL", "t"]),
        (E, &["MOVE", "t", "3"]),
        (E, &["MOVE", "missing", "5"]),
        (E, &["MOVE", "k", "0"]),
        (E, &["MOVE", "k", "16"]),
        (E, &["MOVE", "k", "-1"]),
        (E, &["MOVE", "k", "x"]),
        (E, &["MOVE", "k"]),
        (E, &["SELECT", "5"]),
        (E, &["TTL", "t"]),
        (E, &["MOVE", "t", "1"]),
        (E, &["SELECT", "1"]),
        (E, &["GET", "t"]),
        (E, &["TTL", "t"]),
        // COPY ... DB.
        (E, &["COPY", "t", "t", "DB", "2"]),
        (E, &["COPY", "t", "t", "DB", "2"]),
        (E, &["COPY", "t", "t", "DB", "2", "REPLACE"]),
        (E, &["COPY", "t", "t", "DB", "1"]),
        (E, &["COPY", "t", "u", "DB", "1"]),
        (E, &["COPY", "t", "t", "DB", "16"]),
        (E, &["COPY", "t", "t", "DB", "x"]),
        (E, &["COPY", "t", "t", "DB"]),
        (E, &["SELECT", "2"]),
        (E, &["GET", "t"]),
        (E, &["TTL", "t"]),
        // SWAPDB.
        (E, &["SWAPDB", "0", "3"]),
        (E, &["SELECT", "0"]),
        (E, &["GET", "k"]),
        (E, &["SWAPDB", "0", "0"]),
        (E, &["SWAPDB", "0", "16"]),
        (E, &["SWAPDB", "-1", "0"]),
        (E, &["SWAPDB", "a", "1"]),
        (E, &["SWAPDB", "1", "b"]),
        (E, &["SWAPDB", "1"]),
        (E, &["SWAPDB", "3", "0"]),
        (E, &["GET", "k"]),
        // SELECT in a transaction applies from there on.
        (E, &["MULTI"]),
        (E, &["SET", "m", "0"]),
        (E, &["SELECT", "9"]),
        (E, &["SET", "m", "9"]),
        (E, &["EXEC"]),
        (E, &["GET", "m"]),
        (E, &["SELECT", "0"]),
        (E, &["GET", "m"]),
        (K, &["INFO", "keyspace"]),
        // FLUSHDB only the current database, FLUSHALL every one.
        (E, &["SELECT", "9"]),
        (E, &["FLUSHDB", "BOGUS"]),
        (E, &["FLUSHDB", "SYNC"]),
        (E, &["DBSIZE"]),
        (E, &["SELECT", "0"]),
        (E, &["DBSIZE"]),
        (E, &["FLUSHDB", "ASYNC"]),
        (E, &["DBSIZE"]),
        (E, &["SELECT", "3"]),
        (E, &["DBSIZE"]),
        (E, &["FLUSHALL", "x", "y"]),
        (E, &["FLUSHALL", "BOGUS"]),
        (E, &["FLUSHALL", "SYNC"]),
        (E, &["DBSIZE"]),
        (E, &["INFO", "keyspace"]),
        (E, &["SELECT", "0"]),
    ]);
}
