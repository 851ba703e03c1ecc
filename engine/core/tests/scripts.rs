//! Golden-script tests: each file in `tests/scripts/` is a script of commands run against the
//! core's [`Store`] directly (no process, no socket), and its transcript — every command with
//! its reply as `redis-cli` prints it — is pinned by an insta snapshot in `tests/snapshots/`.
//! A new command's behaviour is a few lines of script; review a change with `cargo insta
//! review` (or read the `.snap.new` file).
//!
//! Script lines:
//! - `SET k "a b"`: a command of session 1; arguments split on spaces, `"..."` quotes with
//!   redis-cli's escapes (`\"`, `\\`, `\n`, `\r`, `\t`, `\xHH`).
//! - `@2 GET k`: the same from session 2 (WATCH and MULTI are per session).
//! - `!hold` / `!durable`: stop making logged records durable after each command / make
//!   everything logged so far durable now. A reply that must wait prints `(waiting #n)`, and
//!   `#n -> reply` when it is released.
//! - `!fail TEXT`: the storage fails with an I/O error TEXT (as a failed fsync would).
//! - `!clock +MS`: time passes (expiry).
//! - `!records`: prints the records logged since the last `!records`, one line per LSN.
//! - `!checkpoint`: a due checkpoint starts and completes at once (SAVE, BGSAVE, triggers).
//! - `!close 2`: session 2's connection closes.
//! - `!expire`: one run of the active expiry cycle (`Store::expire_cycle`) at the current time;
//!   prints how many keys it deleted.
//! - Pub/Sub messages for other sessions than the one whose command runs print as
//!   `@2 <- message ch hi` when they may leave (messages for the session running print
//!   among its replies).
//! - `# ...` and blank lines are copied to the transcript as they are.
//!
//! Replies print as redis-cli prints them, INFO's and CLIENT INFO / LIST's text raw
//! (redis-cli does so too). The keys
//! of a KEYS or SCAN reply print sorted: their order is the hash map's, which varies.

// Test code may panic on failure.
#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use moodb_core::backend::{BackendStatus, CheckpointReport, LogEntry, SyncPolicy};
use moodb_core::error::StorageError;
use moodb_core::keyspace::Keyspace;
use moodb_core::record::Record;
use moodb_core::resp::{Frame, Limits};
use moodb_core::store::spill::INLINE_BELOW;
use moodb_core::store::{CheckpointConfig, MemorySettings, Release, Store, StoreSettings};
use moodb_core::value_store::{MemValueStore, SharedValueStore};

/// Time at the start of every script (Unix ms).
const START_MS: u64 = 1_700_000_000_000;

/// A reply's tag: which line of the script it answers.
type Tag = usize;

struct Runner {
    store: Store<Tag>,
    now_ms: u64,
    hold: bool,
    /// Records logged and not yet durable (under `!hold`), and all logged since `!records`.
    logged: Vec<LogEntry>,
    unprinted: Vec<LogEntry>,
    status: BackendStatus,
    next_tag: Tag,
    /// Replies printed raw, as redis-cli prints INFO's.
    raw: std::collections::HashSet<Tag>,
    /// KEYS and SCAN replies, whose keys print sorted.
    sorted: std::collections::HashSet<Tag>,
    out: String,
    /// Spilled mode: values go to a value store after each command (those of at least this
    /// many bytes); how many went.
    spill: Option<usize>,
    spilled: u64,
}

impl Runner {
    fn new(spill: Option<usize>) -> Self {
        let settings = StoreSettings {
            notify_keyspace_events: Default::default(),
            sync: SyncPolicy::Always,
            checkpoint: CheckpointConfig {
                log_bytes: 0,
                interval_ms: 0,
                write_rate: 0,
            },
            limits: Limits::default(),
            databases: 16,
            backend: "paper".into(),
            data_dir: PathBuf::from("moodb-data"),
            port: 6380,
            process_id: 4242,
            recovery: "no checkpoint, replayed 0 records".into(),
            memory: MemorySettings {
                values: spill.map(|_| MemValueStore::shared() as SharedValueStore),
                ..MemorySettings::default()
            },
            ..StoreSettings::default()
        };
        let status = BackendStatus {
            name: "paper",
            ..BackendStatus::default()
        };
        Runner {
            store: Store::new(Keyspace::new(), 0, status.clone(), settings, START_MS),
            now_ms: START_MS,
            hold: false,
            logged: Vec::new(),
            unprinted: Vec::new(),
            status,
            next_tag: 1,
            raw: Default::default(),
            sorted: Default::default(),
            out: String::new(),
            spill,
            spilled: 0,
        }
    }

    fn line(&mut self, line: &str) {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            self.out.push_str(line);
            self.out.push('\n');
            return;
        }
        writeln!(self.out, "> {trimmed}").unwrap();
        if let Some(directive) = trimmed.strip_prefix('!') {
            self.directive(directive);
        } else {
            self.command(trimmed);
        }
        self.print_pushes();
    }

    fn command(&mut self, line: &str) {
        let (session, rest) = match line.strip_prefix('@') {
            Some(rest) => {
                let (n, rest) = rest.split_once(' ').unwrap_or((rest, ""));
                (n.parse::<u64>().expect("session number after @"), rest)
            }
            None => (1, line),
        };
        let request = split_args(rest);
        let tag = self.next_tag;
        self.next_tag += 1;
        let client_text = request
            .first()
            .is_some_and(|n| n.eq_ignore_ascii_case(b"CLIENT"))
            && request.get(1).is_some_and(|s| {
                s.eq_ignore_ascii_case(b"INFO") || s.eq_ignore_ascii_case(b"LIST")
            });
        if client_text
            || request
                .first()
                .is_some_and(|n| n.eq_ignore_ascii_case(b"INFO"))
        {
            self.raw.insert(tag);
        }
        if request
            .first()
            .is_some_and(|n| n.eq_ignore_ascii_case(b"KEYS") || n.eq_ignore_ascii_case(b"SCAN"))
        {
            self.sorted.insert(tag);
        }
        let released = self.store.execute(session, &[request], tag, self.now_ms);
        let logged = self.store.take_records();
        self.unprinted.extend(logged.iter().cloned());
        self.logged.extend(logged);
        match released {
            Some(release) => self.print_release(&release, false),
            None if self.hold => writeln!(self.out, "(waiting #{tag})").unwrap(),
            None => {}
        }
        if !self.hold {
            self.make_durable(false);
        }
        if let Some(min_len) = self.spill {
            self.spilled += self.store.spill_all(min_len);
        }
    }

    /// Prints the Pub/Sub messages that may leave now.
    fn print_pushes(&mut self) {
        for (to, frame) in self.store.take_pushes() {
            writeln!(self.out, "@{to} <- {}", words(&frame)).unwrap();
        }
    }

    fn directive(&mut self, directive: &str) {
        let (name, arg) = directive.split_once(' ').unwrap_or((directive, ""));
        match name {
            "hold" => self.hold = true,
            "durable" => {
                self.hold = false;
                self.make_durable(true);
            }
            "fail" => {
                let err = StorageError::io("fdatasync log", std::io::Error::other(arg.to_string()));
                self.logged.clear();
                let mut out = Vec::new();
                self.store
                    .on_storage_failure(err, self.status.clone(), &mut out);
                self.print_releases(&out);
            }
            "clock" => {
                let ms: u64 = arg.trim_start_matches('+').parse().expect("!clock +MS");
                self.now_ms += ms;
            }
            "records" => {
                for entry in std::mem::take(&mut self.unprinted) {
                    writeln!(
                        self.out,
                        "lsn {}: {}",
                        entry.lsn,
                        record_text(&entry.record)
                    )
                    .unwrap();
                }
            }
            "checkpoint" => match self.store.checkpoint_due(self.now_ms) {
                Some(start) => {
                    self.logged.extend(start.records);
                    self.make_durable(true);
                    writeln!(
                        self.out,
                        "checkpoint at lsn {} ({} keys)",
                        start.lsn,
                        start.state.len()
                    )
                    .unwrap();
                    self.status.last_checkpoint_lsn = Some(start.lsn);
                    self.status.last_checkpoint_unix_ms = Some(self.now_ms);
                    let report = CheckpointReport {
                        lsn: start.lsn,
                        keys: start.state.len() as u64,
                        bytes: 0,
                        path: None,
                        elapsed: Duration::ZERO,
                    };
                    let mut out = Vec::new();
                    self.store
                        .on_checkpoint_done(Ok(report), self.status.clone(), &mut out);
                    self.print_releases(&out);
                }
                None => writeln!(self.out, "(no checkpoint due)").unwrap(),
            },
            "close" => self.store.session_closed(arg.parse().expect("!close N")),
            "expire" => {
                let n = self.store.expire_cycle(self.now_ms);
                writeln!(self.out, "(expired {n})").unwrap();
                let logged = self.store.take_records();
                self.unprinted.extend(logged.iter().cloned());
                self.logged.extend(logged);
                if !self.hold {
                    self.make_durable(false);
                }
            }
            other => panic!("unknown directive !{other}"),
        }
    }

    /// Everything logged becomes durable; prints the replies released when `print_tags`.
    fn make_durable(&mut self, print_tags: bool) {
        let Some(last) = self.logged.last().map(|e| e.lsn) else {
            return;
        };
        self.logged.clear();
        self.status.fsyncs += 1;
        self.status.durable_lsn = last;
        let mut out = Vec::new();
        self.store.on_durable(last, self.status.clone(), &mut out);
        if print_tags || self.hold {
            self.print_releases(&out);
        } else {
            for release in &out {
                self.print_release(release, false);
            }
        }
    }

    fn print_releases(&mut self, releases: &[Release<Tag>]) {
        for release in releases {
            self.print_release(release, true);
        }
    }

    fn print_release(&mut self, release: &Release<Tag>, tagged: bool) {
        for frame in &release.frames {
            let text = match frame {
                Frame::Bulk(b) | Frame::Verbatim { text: b, .. }
                    if self.raw.contains(&release.to) =>
                {
                    String::from_utf8_lossy(b)
                        .replace("\r\n", "\n")
                        .trim_end()
                        .to_string()
                }
                frame if self.sorted.contains(&release.to) => render(&sorted_keys(frame)),
                frame => render(frame),
            };
            if tagged {
                writeln!(self.out, "#{} -> {text}", release.to).unwrap();
            } else {
                writeln!(self.out, "{text}").unwrap();
            }
        }
    }
}

/// Splits a command line as redis-cli does: spaces separate, `"..."` quotes with escapes.
fn split_args(line: &str) -> Vec<Bytes> {
    let mut args = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            return args;
        };
        let mut arg = Vec::new();
        if first == '"' {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => match chars.next() {
                        Some('n') => arg.push(b'\n'),
                        Some('r') => arg.push(b'\r'),
                        Some('t') => arg.push(b'\t'),
                        Some('x') => {
                            let hex: String = chars.by_ref().take(2).collect();
                            arg.push(u8::from_str_radix(&hex, 16).expect("\\xHH"));
                        }
                        Some(c) => arg.extend(c.to_string().bytes()),
                        None => break,
                    },
                    c => arg.extend(c.to_string().bytes()),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                arg.extend(c.to_string().bytes());
                chars.next();
            }
        }
        args.push(Bytes::from(arg));
    }
}

/// A bulk string as redis-cli prints it: quoted, non-printable bytes escaped.
fn quoted(bytes: &[u8]) -> String {
    let mut s = String::from("\"");
    for &b in bytes {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            0x07 => s.push_str("\\a"),
            0x08 => s.push_str("\\b"),
            0x20..=0x7e => s.push(b as char),
            _ => write!(s, "\\x{b:02x}").unwrap(),
        }
    }
    s.push('"');
    s
}

/// A push frame's words on one line (nil as `(nil)`).
fn words(frame: &Frame) -> String {
    match frame {
        Frame::Push(items) | Frame::Array(items) => {
            items.iter().map(words).collect::<Vec<_>>().join(" ")
        }
        Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        other => render(other),
    }
}

/// A KEYS reply (an array of keys) or a SCAN reply (cursor, keys) with its keys sorted.
fn sorted_keys(frame: &Frame) -> Frame {
    let sort = |keys: &[Frame]| {
        let mut keys = keys.to_vec();
        keys.sort_by(|a, b| match (a, b) {
            (Frame::Bulk(a), Frame::Bulk(b)) => a.cmp(b),
            _ => std::cmp::Ordering::Equal,
        });
        Frame::Array(keys)
    };
    match frame {
        Frame::Array(items) => match items.as_slice() {
            [cursor @ Frame::Bulk(_), Frame::Array(keys)] => {
                Frame::Array(vec![cursor.clone(), sort(keys)])
            }
            keys => sort(keys),
        },
        other => other.clone(),
    }
}

/// A reply as redis-cli prints it.
fn render(frame: &Frame) -> String {
    match frame {
        Frame::Simple(s) => s.to_string(),
        Frame::Error(e) => format!("(error) {e}"),
        Frame::Integer(n) => format!("(integer) {n}"),
        Frame::Bulk(b) => quoted(b),
        Frame::Null | Frame::NullArray => "(nil)".into(),
        Frame::Array(items) if items.is_empty() => "(empty array)".into(),
        Frame::Array(items) => {
            let width = items.len().to_string().len();
            let mut out = String::new();
            for (i, item) in items.iter().enumerate() {
                let prefix = format!("{:>width$}) ", i + 1);
                let indent = " ".repeat(prefix.len());
                for (j, line) in render(item).lines().enumerate() {
                    if i > 0 || j > 0 {
                        out.push('\n');
                    }
                    out.push_str(if j == 0 { &prefix } else { &indent });
                    out.push_str(line);
                }
            }
            out
        }
        // RESP3 types as a RESP2 client (redis-cli without -3) sees them.
        resp3 => render(&resp3.to_resp2()),
    }
}

/// A record on one line, as `moodb wal dump` shows its kind, key and value.
fn record_text(record: &Record) -> String {
    match record {
        Record::Set {
            key,
            value,
            expires_at_ms,
        } => match expires_at_ms {
            Some(at) => format!(
                "SET {} {} expires at +{}ms",
                quoted(key),
                quoted(value),
                at.saturating_sub(START_MS)
            ),
            None => format!("SET {} {}", quoted(key), quoted(value)),
        },
        Record::Update { key, value } => format!("UPDATE {} {}", quoted(key), quoted(value)),
        Record::Delete { key } => format!("DELETE {}", quoted(key)),
        Record::Clear => "CLEAR".into(),
        Record::Txn(ops) => {
            let inner: Vec<String> = ops.iter().map(record_text).collect();
            format!("TXN [{}]", inner.join(", "))
        }
        Record::InDb { db, record } => format!("db{db} {}", record_text(record)),
        Record::SwapDb { a, b } => format!("SWAPDB {a} {b}"),
        Record::ClearAll => "CLEARALL".into(),
    }
}

/// The transcript of script `name`, and how many values spilled mode moved (0 without it).
fn run_script(name: &str, spill: Option<usize>) -> (String, u64) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scripts")
        .join(format!("{name}.txt"));
    let script = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut runner = Runner::new(spill);
    for line in script.lines() {
        runner.line(line);
    }
    (runner.out, runner.spilled)
}

/// Fails naming the first line where the spilled transcript differs.
fn assert_same(name: &str, plain: &str, spilled: &str, moved: u64) {
    let first = plain
        .lines()
        .zip(spilled.lines())
        .enumerate()
        .find(|(_, (a, b))| a != b);
    if let Some((i, (a, b))) = first {
        panic!("{name} with every value spilled ({moved} moved), line {}:\n  plain:   {a}\n  spilled: {b}", i + 1);
    }
    assert_eq!(
        plain.lines().count(),
        spilled.lines().count(),
        "{name}: lengths differ"
    );
}

/// Each script's transcript is pinned by its snapshot, and the same script run with every
/// value of `INLINE_BELOW` bytes or more on disk after each command (`Store::spill_all` into
/// a `MemValueStore`), and again with every value on disk, gives the same transcript, byte
/// for byte.
macro_rules! scripts {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let (plain, _) = run_script(stringify!($name), None);
                insta::assert_snapshot!(stringify!($name), plain);
                // As the spill step would (values of INLINE_BELOW bytes and up), then every
                // value: few script values are that long.
                for min_len in [INLINE_BELOW, 1] {
                    let (spilled, moved) = run_script(stringify!($name), Some(min_len));
                    assert_same(stringify!($name), &plain, &spilled, moved);
                    if min_len == 1 {
                        assert!(moved > 0 || !plain.contains("OK"), "nothing spilled");
                    }
                }
            }
        )*
    };
}

scripts!(
    strings,
    keys,
    expiry,
    transactions,
    server,
    durability,
    databases,
    pubsub,
    clients,
    introspection
);
