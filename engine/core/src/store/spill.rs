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
//! **Compaction.** Each key space counts, per value segment, the values it points to and their
//! record bytes (`Keyspace::segment_figures`, kept by every change of an entry, so recovery
//! rebuilds them while it loads a checkpoint's pointers); a value replaced, deleted or read
//! back inline leaves stale bytes behind. Each tick, [`Store::compact_step`] compares the
//! figures with the segments' sizes: a segment nothing points to is retired; one whose live
//! share is under `maxmemory-compact-below` (default [`COMPACT_BELOW_PERCENT`]) is a victim,
//! and a walk over the key space by table segment (bounded: [`TICK_BUDGET`] bytes copied, a
//! share of the table looked through per step) copies its live values to the current segment
//! and repoints their entries; the next step retires it. A current segment of
//! [`ROLL_STALE_AFTER`] bytes or more that is as stale is ended first, so overwrites of the
//! same keys cannot grow one segment forever. A value that cannot be read back marks its
//! segment stuck: kept, never compacted.
//!
//! **Decision — the checkpoint job deletes, not the store.** Retiring deletes nothing: the
//! checkpoint on disk may still point into the segment. The paper backend's checkpoint job,
//! after its rename and directory fsync and after removing the older checkpoints, deletes the
//! retired segments that the state it just wrote points to nowhere, then syncs the directory
//! again. That is safe at any crash point: a retired segment is not current, so nothing in the
//! store's state will point there again; a checkpoint whose state was taken before the
//! retirement points there and keeps it; the log never holds pointers (its records carry
//! whole values). Segments left behind by a crash before a delete have no pointers in the
//! recovered state, are retired by the first step and deleted by the next checkpoint.
//!
//! The store stays deterministic and does no I/O: the value store is handed in with the
//! settings, as the host is.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use bytes::Bytes;

use super::Store;
use crate::command::table::{self, Flags};
use crate::command::txn::SessionId;
use crate::command::ReplyError;
use crate::record::Record;
use crate::resp::Frame;
use crate::value_store::{SharedValueStore, ValuePtr};

/// Values shorter than this stay inline: a pointer is 20 bytes and a read costs a syscall.
pub const INLINE_BELOW: usize = 64;
/// A spill step stops once the memory figure is under this share of `maxmemory`.
pub const SPILL_TARGET_PERCENT: u64 = 90;
/// Bytes of values one step after a batch moves at most.
pub const BATCH_BUDGET: u64 = 1 << 20;
/// Bytes of values one tick (100 ms) moves at most.
pub const TICK_BUDGET: u64 = 16 << 20;
/// The default `maxmemory-compact-below`: a segment whose live values fill less than this
/// share of it is compacted.
pub const COMPACT_BELOW_PERCENT: u8 = 33;
/// A current segment of at least this many bytes whose live share is under the threshold is
/// ended ([`crate::value_store::ValueStore::roll`]) so that it can be compacted too.
pub const ROLL_STALE_AFTER: u64 = 1 << 20;
/// Table segments a compaction step looks through per byte of its budget: a tick's 16 MiB
/// allows 256 (about 230,000 keys); each costs a pointer walk, no I/O.
const WALK_BYTES_PER_TABLE_SEGMENT: u64 = 64 << 10;
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
/// limit is set, else `noeviction` as Redis shows), `maxmemory-compact-below` (percent: a value
/// segment whose live share falls under it is compacted; 0: never) and where spilled values
/// go (`None`: a backend without value segments, sled; `spill` is refused then).
#[derive(Debug, Clone)]
pub struct MemorySettings {
    pub maxmemory: u64,
    pub policy: Option<MaxmemoryPolicy>,
    pub compact_below_percent: u8,
    pub values: Option<SharedValueStore>,
}

impl Default for MemorySettings {
    fn default() -> Self {
        MemorySettings {
            maxmemory: 0,
            policy: None,
            compact_below_percent: COMPACT_BELOW_PERCENT,
            values: None,
        }
    }
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
    /// The compaction walk under way, if any.
    compaction: Option<Compaction>,
    /// Segments holding a value that could not be read back (damaged): never compacted, so
    /// the damage stays where `moodb segment inspect` reports it.
    stuck: BTreeSet<u32>,
    /// Values copied by compaction, and segments retired, since start.
    pub compacted_values: u64,
    pub retired_segments: u64,
}

/// A walk over every database's table segments, copying the values that live in `victims`
/// to the current value segment.
#[derive(Debug)]
struct Compaction {
    victims: BTreeSet<u32>,
    db: usize,
    table_segment: usize,
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
            compacted_values: self.spiller.compacted_values,
            retired_segments: self.spiller.retired_segments,
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

    /// Moves every inline value of `min_len` bytes or more (at least 1) to the value store
    /// now, whatever `maxmemory` says (the golden scripts' spilled mode checks that commands
    /// answer the same with values on disk, [`INLINE_BELOW`] and up or every one); returns how
    /// many moved. Nothing without a value store; a failed put stops it.
    pub fn spill_all(&mut self, min_len: usize) -> u64 {
        let min_len = min_len.max(1);
        let Some(values) = self.settings.memory.values.clone() else {
            return 0;
        };
        let inline: Vec<(u16, Bytes, Bytes)> = self
            .dbs
            .entries()
            .filter(|(_, _, v)| v.spilled.is_none() && v.data.len() >= min_len)
            .map(|(db, k, v)| {
                (
                    db,
                    Bytes::copy_from_slice(k),
                    Bytes::copy_from_slice(v.data),
                )
            })
            .collect();
        let mut moved = 0;
        for (db, key, value) in inline {
            match values.put(&value) {
                Ok(ptr) => {
                    self.dbs.db_mut(db).spill(&key, ptr);
                    self.spiller.spilled_total += 1;
                    self.spiller.may_hold_spilled = true;
                    moved += 1;
                }
                Err(e) => {
                    self.spiller.last_error = Some(e.to_string());
                    break;
                }
            }
        }
        moved
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

impl<T> Store<T> {
    /// The live values and bytes per value segment, over every database.
    pub fn segment_live(&self) -> BTreeMap<u32, (u64, u64)> {
        let mut live = BTreeMap::new();
        for (_, ks) in self.dbs.iter() {
            for (&n, &(values, bytes)) in ks.segment_figures() {
                let e: &mut (u64, u64) = live.entry(n).or_default();
                e.0 += values;
                e.1 += bytes;
            }
        }
        live
    }

    /// One bounded step of compaction (each tick): retires the segments nothing points to,
    /// picks the mostly stale ones, and walks the key space a part at a time, copying their
    /// live values to the current segment, until `budget` bytes have moved or the walk has
    /// looked through its share of the table.
    pub(super) fn compact_step(&mut self, budget: u64) {
        let percent = u64::from(self.settings.memory.compact_below_percent);
        let Some(values) = self.settings.memory.values.clone() else {
            return;
        };
        if percent == 0 {
            self.spiller.compaction = None;
            return;
        }
        if self.spiller.compaction.is_none() {
            if values.stats().segments == 0 {
                return;
            }
            let live = self.segment_live();
            let mut victims = BTreeSet::new();
            for seg in values.segments() {
                if seg.retired || self.spiller.stuck.contains(&seg.segment) {
                    continue;
                }
                let (count, bytes) = live.get(&seg.segment).copied().unwrap_or((0, 0));
                let sparse = bytes * 100 < seg.bytes * percent;
                if seg.current {
                    if sparse && seg.bytes >= ROLL_STALE_AFTER {
                        values.roll();
                    }
                } else if count == 0 {
                    values.retire(seg.segment);
                    self.spiller.retired_segments += 1;
                } else if sparse {
                    victims.insert(seg.segment);
                }
            }
            if victims.is_empty() {
                return;
            }
            self.spiller.compaction = Some(Compaction {
                victims,
                db: 0,
                table_segment: 0,
            });
        }
        let mut walk_left = (budget / WALK_BYTES_PER_TABLE_SEGMENT).max(1);
        let mut moved = 0u64;
        while moved < budget && walk_left > 0 {
            let Some(c) = self.spiller.compaction.as_mut() else {
                return;
            };
            let Some((db, ks)) = self.dbs.iter().nth(c.db) else {
                // The walk is over: the next step retires what it emptied.
                self.spiller.compaction = None;
                return;
            };
            if c.table_segment >= ks.table_segments() {
                c.db += 1;
                c.table_segment = 0;
                continue;
            }
            let found: Vec<(Bytes, ValuePtr)> = ks
                .spilled_in(c.table_segment)
                .filter(|(_, p)| c.victims.contains(&p.segment))
                .map(|(k, p)| (Bytes::copy_from_slice(k), p))
                .collect();
            c.table_segment += 1;
            walk_left -= 1;
            for (key, from) in found {
                let copied = values.get(from).and_then(|bytes| values.put(&bytes));
                match copied {
                    Ok(to) => {
                        self.dbs.db_mut(db).repoint(&key, from, to);
                        self.spiller.compacted_values += 1;
                        moved += u64::from(from.len);
                    }
                    Err(e) => {
                        self.spiller.last_error = Some(e.to_string());
                        if let crate::value_store::ValueError::Checksum { .. }
                        | crate::value_store::ValueError::Truncated { .. } = e
                        {
                            self.spiller.stuck.insert(from.segment);
                            if let Some(c) = self.spiller.compaction.as_mut() {
                                c.victims.remove(&from.segment);
                            }
                        } else {
                            // The disk refused: try again from the start next tick.
                            self.spiller.compaction = None;
                            return;
                        }
                    }
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
    use crate::value_store::{MemValueStore, ValueStore};

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
            ..MemorySettings::default()
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

    /// The per-segment figures a key space keeps, against a recount of its entries after
    /// every kind of change: spill, replace, delete, read back, repoint, flush.
    #[test]
    fn segment_figures_follow_every_change_of_a_spilled_entry() {
        let ptr = |segment, offset, len| ValuePtr {
            segment,
            offset,
            len,
            crc: 7,
        };
        let recount = |ks: &Keyspace| {
            let mut m: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
            for (_, v) in ks.iter() {
                if let Some(p) = v.spilled {
                    let e = m.entry(p.segment).or_default();
                    e.0 += 1;
                    e.1 += u64::from(p.len) + 8;
                }
            }
            m
        };
        let mut ks = Keyspace::new();
        ks.put_spilled(b"a", ptr(0, 16, 100), None);
        ks.put_spilled(b"b", ptr(0, 124, 50), Some(5));
        ks.put_spilled(b"c", ptr(1, 16, 70), None);
        assert_eq!(ks.segment_figures(), &recount(&ks));
        assert_eq!(ks.segment_figures()[&0], (2, 166));
        ks.put(b"a", b"inline now", None);
        ks.remove(b"c");
        assert_eq!(ks.segment_figures(), &recount(&ks));
        assert!(!ks.segment_figures().contains_key(&1));
        assert!(ks.unspill(b"b", &[1u8; 50]));
        assert!(ks.segment_figures().is_empty());
        assert!(ks.spill(b"b", ptr(2, 16, 50)));
        assert!(
            !ks.repoint(b"b", ptr(0, 124, 50), ptr(3, 16, 50)),
            "not where it was"
        );
        assert!(ks.repoint(b"b", ptr(2, 16, 50), ptr(3, 16, 50)));
        assert_eq!(ks.segment_figures(), &recount(&ks));
        assert_eq!(ks.segment_figures()[&3], (1, 58));
        assert_eq!(ks.get(b"b").map(|v| v.expires_at_ms), Some(Some(5)));
        ks.apply(&Record::Clear);
        assert!(ks.segment_figures().is_empty());
    }

    /// Overwriting the same keys under a small limit leaves older segments mostly stale; ticks
    /// copy their live values out and retire them, every value reads back as last written,
    /// and the figures equal a recount.
    #[test]
    fn compaction_copies_live_values_out_and_retires_emptied_segments() {
        let values = MemValueStore::shared();
        let mut s = store(MemorySettings {
            maxmemory: 20_000,
            values: Some(values.clone()),
            ..MemorySettings::default()
        });
        let w = |words: &[&str]| -> Vec<String> { words.iter().map(|w| w.to_string()).collect() };
        let value = |round: usize, key: usize| format!("{round:04}-{key:04}-").repeat(100);
        let keys = 200;
        let mut now = 1_000_000;
        for round in 0..40 {
            for key in 0..keys {
                let reply = run(
                    &mut s,
                    1,
                    &w(&["SET", &format!("k{key}"), &value(round, key)]),
                );
                assert_eq!(reply, Frame::ok());
            }
            now += 100;
            s.tick(now);
        }
        for _ in 0..200 {
            now += 100;
            s.tick(now);
        }
        assert!(s.spiller.compacted_values > 0, "nothing compacted");
        let segments = values.segments();
        let retired = segments.iter().filter(|g| g.retired).count();
        assert!(
            retired >= 3,
            "{retired} of {} segments retired",
            segments.len()
        );
        let live = s.segment_live();
        for g in &segments {
            let (_, bytes) = live.get(&g.segment).copied().unwrap_or_default();
            if g.retired {
                assert_eq!(bytes, 0, "a retired segment is pointed to");
            } else if !g.current {
                assert!(
                    bytes * 100 >= g.bytes * 33,
                    "{g:?} holds {bytes} live bytes"
                );
            }
        }
        let mut recount: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
        for (_, _, v) in s.dbs.entries() {
            if let Some(p) = v.spilled {
                let e = recount.entry(p.segment).or_default();
                e.0 += 1;
                e.1 += u64::from(p.len) + 8;
            }
        }
        assert_eq!(live, recount);
        assert!(s.spilled_figures().0 > 100);
        for key in 0..keys {
            let reply = run(&mut s, 1, &w(&["GET", &format!("k{key}")]));
            assert_eq!(reply, Frame::bulk(value(39, key).as_str()), "k{key}");
        }
    }

    /// `maxmemory-compact-below 0` stops compaction: nothing is copied or retired.
    #[test]
    fn a_threshold_of_zero_compacts_nothing() {
        let values = MemValueStore::shared();
        let mut s = store(MemorySettings {
            maxmemory: 20_000,
            compact_below_percent: 0,
            values: Some(values.clone()),
            ..MemorySettings::default()
        });
        let big = "v".repeat(1000);
        let w = |words: &[&str]| -> Vec<String> { words.iter().map(|w| w.to_string()).collect() };
        for round in 0..30 {
            for key in 0..100 {
                run(&mut s, 1, &w(&["SET", &format!("k{key}"), &big]));
            }
            s.tick(1_000_000 + round * 100);
        }
        assert!(values.segments().len() > 2);
        assert_eq!(
            (s.spiller.compacted_values, s.spiller.retired_segments),
            (0, 0)
        );
    }

    #[test]
    fn keys_alone_past_the_limit_get_oom_with_the_figures() {
        let mut s = store(MemorySettings {
            maxmemory: 2000,
            policy: None,
            values: Some(MemValueStore::shared()),
            ..MemorySettings::default()
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
            ..MemorySettings::default()
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
