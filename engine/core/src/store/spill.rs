//! `maxmemory` and what the store does past it (issue 15): the settings ([`MemorySettings`],
//! [`MaxmemoryPolicy`]), the memory figure ([`Store::used_memory`]), Redis's `-OOM` refusal
//! under `noeviction`, and under `spill` moving values to the [`ValueStore`] in bounded steps
//! and bringing them back before a command that names their key runs.
//!
//! **Decision — values come back before the command, not inside it.** Commands read values as
//! slices of the entry; rather than teach every command to read from disk, the store looks at
//! the request's key positions (the command table's first/last/step, as COMMAND GETKEYS) and
//! brings each spilled value of those keys back inline first ([`Store::fault_in`]): one
//! positioned read per value. A queued MULTI command's keys are noted when it is queued and
//! brought back at EXEC, in every database (a queued SELECT may change which one). A damaged
//! value is the command's error reply, naming the file and offset; the command does not run.
//!
//! **Which values go.** Every write of a value of [`INLINE_BELOW`] bytes or more queues its
//! key (and a value brought back is queued again), so the queue runs from the least recently
//! written or read; a step pops keys from its front and moves their values to disk until the
//! memory figure is under [`SPILL_TARGET_PERCENT`] of `maxmemory`, or the step's byte budget
//! is spent ([`BATCH_BUDGET`] after each batch, [`TICK_BUDGET`] per tick): never a long stall.
//! Smaller values stay inline (a pointer is 20 bytes). A key queued twice costs a lookup when
//! popped; the queue is rebuilt from a walk of the key space when it holds more than twice the
//! keys (amortized O(1) per write). Nothing is queued while `maxmemory` is 0.
//!
//! The store stays deterministic and does no I/O: the value store is handed in with the
//! settings, as the host is.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

use super::Store;
use crate::command::table::{self, Flags};
use crate::command::txn::SessionId;
use crate::command::ReplyError;
use crate::record::Record;
use crate::resp::Frame;
use crate::value_store::SharedValueStore;

/// Values shorter than this stay inline: a pointer is 20 bytes and a read costs a syscall.
pub const INLINE_BELOW: usize = 64;
/// A spill step stops once the memory figure is under this share of `maxmemory`.
pub const SPILL_TARGET_PERCENT: u64 = 90;
/// Bytes of values one step after a batch moves at most.
pub const BATCH_BUDGET: u64 = 1 << 20;
/// Bytes of values one tick (100 ms) moves at most.
pub const TICK_BUDGET: u64 = 16 << 20;
/// Memory a queued key costs besides its bytes (the `Bytes` header, the queue slot, malloc).
const QUEUED_OVERHEAD: u64 = 48;

/// What happens to writes past `maxmemory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxmemoryPolicy {
    /// Redis's: writes that may grow memory get `-OOM`.
    NoEviction,
    /// Values move to disk; nothing is lost.
    Spill,
}

impl MaxmemoryPolicy {
    pub fn name(self) -> &'static str {
        match self {
            MaxmemoryPolicy::NoEviction => "noeviction",
            MaxmemoryPolicy::Spill => "spill",
        }
    }

    /// `noeviction` or `spill`, any case.
    pub fn parse(text: &str) -> Option<MaxmemoryPolicy> {
        match text.to_ascii_lowercase().as_str() {
            "noeviction" => Some(MaxmemoryPolicy::NoEviction),
            "spill" => Some(MaxmemoryPolicy::Spill),
            _ => None,
        }
    }
}

/// `maxmemory` (bytes, 0: no limit), `maxmemory-policy` (`None`: the default, `spill` when a
/// limit is set, else `noeviction` as Redis shows) and where spilled values go (`None`: a
/// backend without value segments, sled; `spill` is refused then).
#[derive(Debug, Clone, Default)]
pub struct MemorySettings {
    pub maxmemory: u64,
    pub policy: Option<MaxmemoryPolicy>,
    pub values: Option<SharedValueStore>,
}

impl MemorySettings {
    /// The policy in force.
    pub fn effective_policy(&self) -> MaxmemoryPolicy {
        self.policy.unwrap_or(if self.maxmemory > 0 {
            MaxmemoryPolicy::Spill
        } else {
            MaxmemoryPolicy::NoEviction
        })
    }

    /// Whether values are to be spilled.
    fn spilling(&self) -> bool {
        self.maxmemory > 0 && self.effective_policy() == MaxmemoryPolicy::Spill
    }

    /// Why these settings cannot run: `spill` with a limit but nowhere to spill to.
    pub fn check(&self, backend: &str) -> Result<(), String> {
        if self.spilling() && self.values.is_none() {
            return Err(format!(
                "maxmemory-policy spill needs value segments, which the {backend} backend does \
                 not have: use the paper backend, or maxmemory-policy noeviction"
            ));
        }
        Ok(())
    }
}

/// The spiller's state and figures (INFO memory).
#[derive(Debug, Default)]
pub struct Spiller {
    /// Keys whose values may go to disk, least recently written or read first.
    queue: VecDeque<(u16, Bytes)>,
    queued_bytes: u64,
    /// The queue holds every candidate (set by the walk that fills it).
    seeded: bool,
    /// Some value may be on disk: set when one spills, or at start when the recovered state
    /// holds pointers. While it is false and no limit is set, a request pays no spill check.
    pub may_hold_spilled: bool,
    /// Values moved to disk and brought back, since start.
    pub spilled_total: u64,
    pub read_back: u64,
    /// The last value store error (a failed put stops the step; the next one tries again).
    pub last_error: Option<String>,
    /// Per session in MULTI: the queued commands' keys, and whether one is flagged denyoom.
    txn: HashMap<SessionId, (Vec<Bytes>, bool)>,
}

impl Spiller {
    /// A spiller for a state that may already hold values on disk (recovered pointers).
    pub(super) fn new(may_hold_spilled: bool) -> Self {
        Spiller {
            may_hold_spilled,
            ..Spiller::default()
        }
    }

    /// A closed session's MULTI notes.
    pub(super) fn forget(&mut self, session: SessionId) {
        self.txn.remove(&session);
    }
}

/// Whether a command reads the values of its keys (those that look only at a key's existence,
/// type or expiry, or replace it whole, do not: a damaged value can still be deleted).
fn needs_values(name: &str, request: &[Bytes]) -> bool {
    match name {
        "del" | "unlink" | "exists" | "type" | "ttl" | "pttl" | "expiretime" | "pexpiretime"
        | "touch" => false,
        "set" => request
            .iter()
            .skip(3)
            .any(|a| a.eq_ignore_ascii_case(b"GET")),
        _ => true,
    }
}

/// The key arguments of `request` by `row`'s key positions (Redis's first, last, step).
fn key_args<'r>(row: &table::CommandSpec, request: &'r [Bytes]) -> impl Iterator<Item = &'r Bytes> {
    let argc = request.len() as i64;
    let first = row.first_key;
    let last = if row.last_key < 0 {
        argc + row.last_key
    } else {
        row.last_key
    };
    let step = row.key_step.max(1) as usize;
    let range = if first > 0 && last >= first {
        first as usize..(last.min(argc - 1) + 1).max(first) as usize
    } else {
        0..0
    };
    range.step_by(step).filter_map(|i| request.get(i))
}

/// `key` as Redis quotes bytes (`sdscatrepr`), for an error text.
fn repr(key: &[u8]) -> String {
    let mut out = String::new();
    crate::repr::escape_into(key, &mut out);
    out
}

impl<T> Store<T> {
    /// The memory figure `maxmemory` is compared with and INFO's `used_memory`: per database
    /// the bytes its entries hold + [`super::stats::ENTRY_OVERHEAD`] per key +
    /// [`super::stats::TTL_OVERHEAD`] per key with a TTL; and the spill queue.
    pub fn used_memory(&self) -> u64 {
        super::stats::estimate_memory(&self.dbs) + self.spiller.queued_bytes
    }

    /// Spilled keys and their values' bytes, in every database.
    pub(super) fn spilled_figures(&self) -> (u64, u64) {
        self.dbs.iter().fold((0, 0), |(k, b), (_, ks)| {
            let m = ks.memory();
            (k + m.spilled_keys, b + m.spilled_bytes)
        })
    }

    /// INFO memory's spill figures.
    pub(super) fn spill_info(&self) -> crate::command::info::SpillFigures {
        let (spilled_keys, spilled_bytes) = self.spilled_figures();
        let vs = self
            .settings
            .memory
            .values
            .as_ref()
            .map(|v| v.stats())
            .unwrap_or_default();
        crate::command::info::SpillFigures {
            spilled_keys,
            spilled_bytes,
            segments: vs.segments,
            segment_bytes: vs.bytes,
            spilled_total: self.spiller.spilled_total,
            read_back: self.spiller.read_back,
            last_error: self.spiller.last_error.clone(),
        }
    }

    /// What runs before a request: the `-OOM` refusal, the MULTI key notes, and bringing the
    /// request's spilled values back. `Err` is the reply to give instead of running it.
    pub(super) fn before_request(
        &mut self,
        session: SessionId,
        request: &[Bytes],
        named: Option<table::Named>,
    ) -> Result<(), Frame> {
        let Some(named) = named else {
            return Ok(());
        };
        let row = named.row();
        if !row.arity_fits(request.len()) {
            return Ok(());
        }
        let in_multi = self.txns.in_multi(session);
        // Without a limit and with nothing on disk (every server that does not use this), a
        // request costs this and one lookup; MULTI's notes are still taken, in case a limit
        // is set before its EXEC.
        if self.settings.memory.maxmemory == 0 && !self.spiller.may_hold_spilled && !in_multi {
            return Ok(());
        }
        let name = named.spec.name;
        let denyoom = row.is(Flags::DENYOOM) || named.spec.is(Flags::DENYOOM);
        if self.settings.memory.maxmemory > 0 {
            let exec_denyoom =
                name == "exec" && self.spiller.txn.get(&session).is_some_and(|(_, d)| *d);
            let refuse = denyoom
                || exec_denyoom
                || (in_multi && !matches!(name, "exec" | "discard" | "quit" | "reset"));
            if let (true, Some(err)) = (refuse, self.out_of_memory()) {
                let err: Frame = err.into();
                return Err(if in_multi && name != "exec" {
                    self.txns.queue(session, Err(err))
                } else {
                    err
                });
            }
        }
        let queued = in_multi && !row.is(Flags::NOT_QUEUED);
        match name {
            "multi" | "discard" | "reset" => {
                self.spiller.txn.remove(&session);
            }
            "exec" => {
                if let Some((keys, _)) = self.spiller.txn.remove(&session) {
                    let dbs: Vec<u16> = self.dbs.iter().map(|(db, _)| db).collect();
                    for key in &keys {
                        for &db in &dbs {
                            self.fault_in(db, key)?;
                        }
                    }
                }
                return Ok(());
            }
            _ => {}
        }
        if queued {
            let note = self.spiller.txn.entry(session).or_default();
            note.0.extend(key_args(row, request).cloned());
            note.1 |= denyoom;
            return Ok(());
        }
        if self.spilled_figures().0 == 0 || !needs_values(name, request) {
            return Ok(());
        }
        let db = self.selected_db(session);
        for key in key_args(row, request) {
            self.fault_in(db, key)?;
        }
        Ok(())
    }

    /// Why a write that may grow memory is refused: past `maxmemory` under `noeviction`;
    /// under `spill`, past it with nothing left to move (the keys and pointers alone).
    fn out_of_memory(&mut self) -> Option<ReplyError> {
        let max = self.settings.memory.maxmemory;
        if self.used_memory() <= max {
            return None;
        }
        match self.settings.memory.effective_policy() {
            MaxmemoryPolicy::NoEviction => Some(ReplyError::Oom),
            MaxmemoryPolicy::Spill => {
                self.spill_step(BATCH_BUDGET);
                let used = self.used_memory();
                (used > max && self.spiller.queue.is_empty())
                    .then_some(ReplyError::OomKeys { used, max })
            }
        }
    }

    /// Brings `key`'s value in database `db` back inline if it is on disk.
    fn fault_in(&mut self, db: u16, key: &Bytes) -> Result<(), Frame> {
        let Some(ptr) = self.dbs.get(db).and_then(|ks| ks.spilled(key)) else {
            return Ok(());
        };
        let Some(values) = self.settings.memory.values.clone() else {
            return Err(ReplyError::ValueUnreadable {
                key: repr(key),
                reason: "no value store is configured".into(),
            }
            .into());
        };
        match values.get(ptr) {
            Ok(bytes) => {
                self.dbs.db_mut(db).unspill(key, &bytes);
                self.spiller.read_back += 1;
                if self.settings.memory.spilling() && bytes.len() >= INLINE_BELOW {
                    self.queue(db, key);
                }
                Ok(())
            }
            Err(e) => Err(ReplyError::ValueUnreadable {
                key: repr(key),
                reason: e.to_string(),
            }
            .into()),
        }
    }

    fn queue(&mut self, db: u16, key: &Bytes) {
        self.spiller.queued_bytes += QUEUED_OVERHEAD + key.len() as u64;
        self.spiller
            .queue
            .push_back((db, Bytes::copy_from_slice(key)));
        if self.spiller.queue.len() > 2 * self.dbs.len() + 1024 {
            self.seed();
        }
    }

    /// Queues the keys of `record` (applied to database `db`) whose new values may spill.
    pub(super) fn note_written(&mut self, db: u16, record: &Record) {
        if !self.settings.memory.spilling() || !self.spiller.seeded {
            return;
        }
        match record {
            Record::Set { key, value, .. } | Record::Update { key, value }
                if value.len() >= INLINE_BELOW =>
            {
                self.queue(db, key);
            }
            Record::InDb { db, record } => self.note_written(*db, record),
            Record::Txn(ops) => ops.iter().for_each(|op| self.note_written(db, op)),
            _ => {}
        }
    }

    /// Refills the queue with every inline value of [`INLINE_BELOW`] bytes or more (at the
    /// first step, and when the queue has grown past twice the keys).
    fn seed(&mut self) {
        let queue: VecDeque<(u16, Bytes)> = self
            .dbs
            .entries()
            .filter(|(_, _, v)| v.spilled.is_none() && v.data.len() >= INLINE_BELOW)
            .map(|(db, k, _)| (db, Bytes::copy_from_slice(k)))
            .collect();
        self.spiller.queued_bytes = queue
            .iter()
            .map(|(_, k)| QUEUED_OVERHEAD + k.len() as u64)
            .sum();
        self.spiller.queue = queue;
        self.spiller.seeded = true;
    }

    /// One bounded step: moves values to disk, front of the queue first, until the memory
    /// figure is under the target or `budget` bytes of values have moved.
    pub(super) fn spill_step(&mut self, budget: u64) {
        let target = self.settings.memory.maxmemory / 100 * SPILL_TARGET_PERCENT;
        self.spill_until(target, budget);
    }

    /// [`Store::spill_step`] down to `target` bytes.
    fn spill_until(&mut self, target: u64, budget: u64) {
        let memory = &self.settings.memory;
        if !memory.spilling() {
            if self.spiller.seeded {
                self.spiller.queue = VecDeque::new();
                self.spiller.queued_bytes = 0;
                self.spiller.seeded = false;
            }
            return;
        }
        let Some(values) = memory.values.clone() else {
            return;
        };
        if self.used_memory() <= target {
            return;
        }
        if !self.spiller.seeded {
            self.seed();
        }
        let mut moved = 0u64;
        while moved < budget && self.used_memory() > target {
            let Some((db, key)) = self.spiller.queue.pop_front() else {
                break;
            };
            self.spiller.queued_bytes -= QUEUED_OVERHEAD + key.len() as u64;
            let Some(ks) = self.dbs.get(db) else {
                continue;
            };
            let value = match ks.get(&key) {
                Some(v) if v.spilled.is_none() && v.data.len() >= INLINE_BELOW => v.data,
                _ => continue,
            };
            match values.put(value) {
                Ok(ptr) => {
                    moved += u64::from(ptr.len);
                    self.dbs.db_mut(db).spill(&key, ptr);
                    self.spiller.spilled_total += 1;
                    self.spiller.may_hold_spilled = true;
                }
                Err(e) => {
                    self.spiller.last_error = Some(e.to_string());
                    self.spiller.queue.push_front((db, key.clone()));
                    self.spiller.queued_bytes += QUEUED_OVERHEAD + key.len() as u64;
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BackendStatus;
    use crate::keyspace::Keyspace;
    use crate::value_store::MemValueStore;

    fn run(store: &mut Store<()>, session: SessionId, words: &[String]) -> Frame {
        let req: Vec<Bytes> = words
            .iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect();
        let release = match store.execute(session, &[req], (), 1_000_000) {
            Some(r) => r,
            None => {
                store.take_records();
                let mut out = Vec::new();
                store.on_durable(store.last_lsn(), BackendStatus::default(), &mut out);
                out.pop().expect("released")
            }
        };
        release.frames.into_iter().next().expect("one reply")
    }

    fn store(memory: MemorySettings) -> Store<()> {
        let settings = crate::store::StoreSettings {
            memory,
            ..crate::store::test_settings()
        };
        Store::new(
            Keyspace::new(),
            0,
            BackendStatus::default(),
            settings,
            1_000_000,
        )
    }

    /// The same random commands to a store that keeps everything in memory and to one that
    /// spills every value of 64 bytes or more after each batch: the replies are equal, so
    /// every command sees a spilled value as it was (the key positions cover what it reads).
    #[test]
    fn a_store_that_spills_everything_answers_as_one_that_spills_nothing() {
        let values = MemValueStore::shared();
        let mut plain = store(MemorySettings::default());
        // A limit never reached, and every value moved out after each command.
        let mut spilling = store(MemorySettings {
            maxmemory: 1 << 40,
            policy: Some(MaxmemoryPolicy::Spill),
            values: Some(values.clone()),
        });
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut max_spilled = 0;
        for _ in 0..6000 {
            let k = |n: u64| format!("k{n}");
            let key = k(next(40));
            let other = k(next(40));
            let value: String = (0..40 + next(200))
                .map(|i| (b'a' + ((i + next(3)) % 26) as u8) as char)
                .collect();
            let words: Vec<String> = match next(22) {
                0..=3 => vec!["SET".into(), key, value],
                4..=6 => vec!["GET".into(), key],
                7 => vec!["APPEND".into(), key, value],
                8 => vec!["GETRANGE".into(), key, "3".into(), "70".into()],
                9 => vec!["STRLEN".into(), key],
                10 => vec!["MGET".into(), key, other],
                11 => vec!["GETSET".into(), key, value],
                12 => vec!["COPY".into(), key, other, "REPLACE".into()],
                13 => vec!["RENAME".into(), key, other],
                14 => vec!["SETRANGE".into(), key, "10".into(), "XY".into()],
                15 => vec!["EXPIRE".into(), key, "1000".into()],
                16 => vec!["PERSIST".into(), key],
                17 => vec!["SET".into(), key, value, "GET".into()],
                18 => vec!["LCS".into(), key, other, "LEN".into()],
                19 => vec!["MOVE".into(), key, "1".into()],
                20 => vec!["DEL".into(), key],
                _ => vec!["GETDEL".into(), key],
            };
            let session = if next(8) == 0 { 2 } else { 1 };
            let multi = next(10) == 0;
            if multi {
                let m = vec!["MULTI".to_string()];
                assert_eq!(
                    run(&mut plain, session, &m),
                    run(&mut spilling, session, &m)
                );
            }
            assert_eq!(
                run(&mut plain, session, &words),
                run(&mut spilling, session, &words),
                "{words:?}"
            );
            if multi {
                let get = vec!["GET".to_string(), k(next(40))];
                assert_eq!(
                    run(&mut plain, session, &get),
                    run(&mut spilling, session, &get)
                );
                let exec = vec!["EXEC".to_string()];
                assert_eq!(
                    run(&mut plain, session, &exec),
                    run(&mut spilling, session, &exec)
                );
            }
            spilling.spill_until(0, u64::MAX);
            max_spilled = max_spilled.max(spilling.spilled_figures().0);
            if next(50) == 0 {
                let db = if next(2) == 0 { "0" } else { "1" };
                for s in [&mut plain, &mut spilling] {
                    run(s, 1, &["SELECT".into(), db.into()]);
                }
            }
        }
        assert_eq!(plain.spilled_figures(), (0, 0));
        assert!(max_spilled > 10, "{max_spilled} keys spilled at most");
        assert!(spilling.spiller.read_back > 100);
    }

    #[test]
    fn keys_alone_past_the_limit_get_oom_with_the_figures() {
        let mut s = store(MemorySettings {
            maxmemory: 2000,
            policy: None,
            values: Some(MemValueStore::shared()),
        });
        let big = "x".repeat(500);
        let w = |words: &[&str]| -> Vec<String> { words.iter().map(|w| w.to_string()).collect() };
        // Large values spill: far more than 2,000 bytes of them fit.
        for i in 0..20 {
            assert_eq!(
                run(&mut s, 1, &w(&["SET", &format!("big{i}"), &big])),
                Frame::ok()
            );
        }
        assert!(s.spilled_figures().0 >= 15);
        // Small ones cannot: the keys alone pass the limit.
        let mut refused = None;
        for i in 0..100 {
            match run(&mut s, 1, &w(&["SET", &format!("small{i}"), "v"])) {
                Frame::Error(text) => {
                    refused = Some(text);
                    break;
                }
                reply => assert_eq!(reply, Frame::ok()),
            }
        }
        let text = refused.expect("refused before 100 small keys");
        assert!(text.starts_with("OOM command not allowed when used memory > 'maxmemory': "));
        assert!(text.contains("maxmemory 2000; raise maxmemory"), "{text}");
        // Reads and deletes go on.
        assert_eq!(
            run(&mut s, 1, &w(&["GET", "big3"])),
            Frame::bulk(big.as_str())
        );
        assert_eq!(run(&mut s, 1, &w(&["DEL", "small0"])), Frame::Integer(1));
    }

    #[test]
    fn a_damaged_value_is_an_error_reply_and_the_key_can_still_go() {
        let values = MemValueStore::shared();
        let mut s = store(MemorySettings {
            maxmemory: 1,
            policy: None,
            values: Some(values.clone()),
        });
        let big = "x".repeat(100);
        let w = |words: &[&str]| -> Vec<String> { words.iter().map(|w| w.to_string()).collect() };
        run(&mut s, 1, &w(&["SET", "k", &big]));
        let ptr = s.dbs.db0().spilled(b"k").expect("spilled after the batch");
        values.damage(ptr);
        assert_eq!(
            run(&mut s, 1, &w(&["GET", "k"])),
            Frame::Error(
                "ERR the value of 'k' cannot be read: mem-values-0 at offset 0: checksum \
                 mismatch (value damaged)"
                    .into()
            )
        );
        assert_eq!(run(&mut s, 1, &w(&["EXISTS", "k"])), Frame::Integer(1));
        assert_eq!(run(&mut s, 1, &w(&["DEL", "k"])), Frame::Integer(1));
        assert_eq!(s.spilled_figures(), (0, 0));
    }

    #[test]
    fn key_positions_follow_the_table() {
        let req = |args: &[&str]| -> Vec<Bytes> {
            args.iter()
                .map(|a| Bytes::copy_from_slice(a.as_bytes()))
                .collect()
        };
        let keys = |args: &[&str]| -> Vec<String> {
            let r = req(args);
            let named = table::resolve(&r).expect("known");
            key_args(named.row(), &r)
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .collect()
        };
        assert_eq!(keys(&["GET", "a"]), ["a"]);
        assert_eq!(keys(&["MSET", "a", "1", "b", "2"]), ["a", "b"]);
        assert_eq!(keys(&["MGET", "a", "b", "c"]), ["a", "b", "c"]);
        assert_eq!(keys(&["COPY", "a", "b", "DB", "1"]), ["a", "b"]);
        assert!(keys(&["PING"]).is_empty());
    }

    #[test]
    fn the_default_policy_is_spill_once_a_limit_is_set() {
        let mut m = MemorySettings::default();
        assert_eq!(m.effective_policy(), MaxmemoryPolicy::NoEviction);
        assert!(m.check("sled").is_ok());
        m.maxmemory = 1 << 20;
        assert_eq!(m.effective_policy(), MaxmemoryPolicy::Spill);
        assert!(m.check("sled").is_err_and(|e| e.contains("sled backend")));
        m.policy = Some(MaxmemoryPolicy::NoEviction);
        assert!(m.check("sled").is_ok());
        assert_eq!(
            MaxmemoryPolicy::parse("SPILL"),
            Some(MaxmemoryPolicy::Spill)
        );
        assert_eq!(MaxmemoryPolicy::parse("allkeys-lru"), None);
    }
}
