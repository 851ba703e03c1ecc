//! The in-memory key space: binary-safe keys mapped to values with an optional expiry. A clone
//! is a consistent snapshot in O(1), so the snapshotter can write it while the store owner goes
//! on applying writes.
//!
//! Layout, chosen by measurement (`cargo bench -p moodb-backends --bench paper`, 1,000,000 keys
//! of 16 B with 100 B values, release, runs alternating before/after; callgrind instruction
//! counts at 200,000 keys; all figures in `bench/results-2026-12-01.md`, "Packed key space"):
//! each key is one packed [`entry`] (key, value and expiry in one allocation: a 144 B glibc
//! chunk) in a segmented hash [`table`] (~19 B per key of buckets, control bytes and
//! directory), copy-on-write by segment.
//!
//! | 1M keys (quiet run; instructions) | HAMT (before) | packed (now) |
//! |---|---|---|
//! | resident | 316 B/key | 163 B/key (redis 221) |
//! | GET lookup | 650–690 ns; 400 instructions | 148–174 ns; ~250 instructions |
//! | insert one by one | 0.58–0.62 µs; 1,413 instructions | 0.63–0.70 µs; 1,114 instructions |
//! | snapshot clone | < 1 µs | < 1 µs |
//! | a write while a snapshot is held | 1.15–1.3 µs | 0.69 µs; 99.9th percentile 8–13 µs |
//! | recovery, log / checkpoint (instructions) | 742 M / 834 M | 638 M / see the results |
//!
//! An insert costs fewer instructions but no less time: a segment split rehashes its keys,
//! and each rehash reads a key through its pointer (a cache miss the HAMT never pays). Storing
//! the hash beside the pointer would cost 8 B per slot (~175 B/key); recovery from a
//! checkpoint avoids the splits instead by sizing the table from the file's key count.
//!
//! Before: an `imbl` HAMT of `triomphe::Arc<(Bytes, Value)>` with SipHash: three allocations
//! per key plus ~76 B of trie nodes, and a lookup that walks nodes. Measured and not kept then:
//! foldhash in the HAMT (the time went to node allocation), mimalloc (-14 B/key, slower
//! inserts), sorting a checkpoint into hash order, decoding on a second thread. Measured and
//! not kept now: `triomphe::ThinArc` with the key length and expiry in its typed header (16 B
//! more per entry: 160 B chunks instead of 144); one `HashTable` for the whole key space (its
//! snapshot would be a full copy, and its growth rehashes every key at once); a `Bytes`
//! sharing the entry for every GET reply (150–200 ns against 11 ns for copying 100 B: replies
//! copy values up to [`SHARE_ABOVE`]). An own allocation with a 4-byte count and a 4-byte
//! length (`thin_bytes.rs`) was not worth unsafe code under glibc (134 or 126 bytes both take a
//! 144-byte chunk) and is kept with mimalloc, where it moves the entry from the 160-byte class
//! to the 128-byte one. A snapshot walk is slower (0.16 s against 0.10 s for 1M keys:
//! every entry is a pointer to follow) but runs on the snapshotter, not the store owner.
//!
//! Readers get a [`ValueRef`]: the value's bytes as a slice and its expiry; [`ValueRef::bytes`]
//! hands a reply a `Bytes`, copied when the value is small and sharing the entry when it is
//! large.
//!
//! Spilled values (issue 15, `store/spill.rs`): an entry may hold a [`ValuePtr`] instead of its
//! value ([`Keyspace::spill`], [`Keyspace::put_spilled`]); its [`ValueRef`] then has empty
//! `data` and says `spilled`. The store brings a spilled value back ([`Keyspace::unspill`])
//! before any command that names the key runs, so commands only ever see inline values. The key
//! space counts the bytes its entries hold and the spilled values' bytes as it changes
//! ([`Keyspace::memory`]), so the memory figure costs nothing to read.

mod entry;
mod table;
mod thin_bytes;

use std::fmt;

use bytes::Bytes;

use crate::record::{Record, RecordRef};
use crate::value_store::ValuePtr;
pub use entry::Stored;
use entry::{Entry, ValueOwner};
use table::Table;

/// A value and its absolute expiry time, if it has one, owned: what callers build and what
/// [`Keyspace::remove`] gives back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub data: Bytes,
    /// Unix time in milliseconds after which the key no longer exists.
    pub expires_at_ms: Option<u64>,
}

impl Value {
    /// A value that never expires.
    pub fn new(data: impl Into<Bytes>) -> Self {
        Value {
            data: data.into(),
            expires_at_ms: None,
        }
    }

    /// Whether the value has expired at `now_ms` (Unix milliseconds).
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_some_and(|at| at <= now_ms)
    }
}

/// A stored value as the key space lends it: its bytes and expiry, decoded from the packed
/// entry once. Cheap to copy; [`ValueRef::bytes`] and [`ValueRef::to_value`] give owned
/// `Bytes` (a copy of a small value, a handle sharing the entry for a large one).
#[derive(Clone, Copy)]
pub struct ValueRef<'a> {
    entry: &'a Entry,
    pub data: &'a [u8],
    /// Unix time in milliseconds after which the key no longer exists.
    pub expires_at_ms: Option<u64>,
    /// Where the value is when it is on disk (`data` is empty then).
    pub spilled: Option<ValuePtr>,
}

impl<'a> ValueRef<'a> {
    fn of(entry: &'a Entry) -> Self {
        let (_, stored, expires_at_ms) = entry.parts();
        let (data, spilled) = match stored {
            Stored::Inline(data) => (data, None),
            Stored::OnDisk(ptr) => (&[][..], Some(ptr)),
        };
        ValueRef {
            entry,
            data,
            expires_at_ms,
            spilled,
        }
    }

    /// Whether the value has expired at `now_ms` (Unix milliseconds).
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_some_and(|at| at <= now_ms)
    }

    /// The value's bytes as a `Bytes`: a copy up to [`SHARE_ABOVE`] bytes, else a handle
    /// sharing the entry (no copy of the value).
    pub fn bytes(&self) -> Bytes {
        value_bytes(self.entry, self.data)
    }

    /// An owned copy of the handle: [`Value`] with [`ValueRef::bytes`].
    pub fn to_value(&self) -> Value {
        Value {
            data: self.bytes(),
            expires_at_ms: self.expires_at_ms,
        }
    }
}

/// Values up to this many bytes are copied into the `Bytes` a reply gets; larger ones are
/// shared with the entry. Measured (`cargo bench -p moodb-backends --bench paper`, 100 B
/// values): a copy costs ~11 ns, a `Bytes::from_owner` handle ~150–200 ns (its allocation, two
/// atomic counts and the indirect drop). 4 KiB is an estimate of the crossover (a 4 KiB copy
/// at memory speed is ~100–200 ns), not measured itself.
pub const SHARE_ABOVE: usize = 4096;

fn value_bytes(entry: &Entry, data: &[u8]) -> Bytes {
    if data.len() <= SHARE_ABOVE {
        Bytes::copy_from_slice(data)
    } else {
        Bytes::from_owner(ValueOwner(entry.clone()))
    }
}

impl PartialEq for ValueRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.data == other.data
            && self.expires_at_ms == other.expires_at_ms
            && self.spilled == other.spilled
    }
}

impl Eq for ValueRef<'_> {}

impl PartialEq<Value> for ValueRef<'_> {
    fn eq(&self, other: &Value) -> bool {
        self.spilled.is_none()
            && self.data == other.data
            && self.expires_at_ms == other.expires_at_ms
    }
}

impl fmt::Debug for ValueRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Value")
            .field("data", &Bytes::copy_from_slice(self.data))
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

/// The whole state of the database. Applying a record is deterministic and ignores the clock,
/// so replaying the same log gives the same map; expiry is applied by readers through
/// [`Keyspace::get_live`] and by the store, which deletes expired keys with logged DELETE
/// records (lazily when a command touches one, and in its active cycle).
///
/// Keys with a TTL are also in `expiries`, ordered by expiry time: the active cycle takes the
/// soonest-expiring keys from its front, and DBSIZE counts the expired ones there. It is a
/// persistent B-tree (`imbl::OrdSet`), so the key space still clones in O(1) for a
/// checkpoint; it costs about 60 B per key with a TTL (the time, a copy of the key in a
/// `Bytes`, and the tree node) and nothing for keys without one.
#[derive(Clone, Default)]
pub struct Keyspace {
    map: Table,
    expiries: imbl::OrdSet<(u64, Bytes)>,
    memory: KeyspaceMemory,
    /// Per value segment, the values of this key space that live there (compaction's figures:
    /// `store/spill.rs`); empty while nothing is spilled.
    segments: SegmentFigures,
}

/// Live values per value segment: segment number → (values, bytes of their records, the
/// value and its [`SEGMENT_RECORD_OVERHEAD`]). Kept by every change of an entry that points
/// to disk, so recovery rebuilds it from a checkpoint's pointers as it loads them.
pub type SegmentFigures = std::collections::BTreeMap<u32, (u64, u64)>;

/// Bytes a value segment's record takes besides the value (its length and CRC32C).
pub const SEGMENT_RECORD_OVERHEAD: u64 = 8;

fn segments_add(figures: &mut SegmentFigures, e: &Entry) {
    if let Some(ptr) = e.spilled_ptr() {
        let f = figures.entry(ptr.segment).or_default();
        f.0 += 1;
        f.1 += u64::from(ptr.len) + SEGMENT_RECORD_OVERHEAD;
    }
}

fn segments_sub(figures: &mut SegmentFigures, e: &Entry) {
    if let Some(ptr) = e.spilled_ptr() {
        if let Some(f) = figures.get_mut(&ptr.segment) {
            f.0 = f.0.saturating_sub(1);
            f.1 =
                f.1.saturating_sub(u64::from(ptr.len) + SEGMENT_RECORD_OVERHEAD);
            if f.0 == 0 {
                figures.remove(&ptr.segment);
            }
        }
    }
}

/// What a key space's entries hold, kept up to date by every change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyspaceMemory {
    /// Bytes of every entry's slice (keys, expiries, inline values, pointers).
    pub entry_bytes: u64,
    /// Entries whose value is on disk, and those values' bytes.
    pub spilled_keys: u64,
    pub spilled_bytes: u64,
}

impl KeyspaceMemory {
    fn add(&mut self, e: &Entry) {
        self.entry_bytes += e.heap_len() as u64;
        if let Some(ptr) = e.spilled_ptr() {
            self.spilled_keys += 1;
            self.spilled_bytes += u64::from(ptr.len);
        }
    }

    fn sub(&mut self, e: &Entry) {
        self.entry_bytes -= e.heap_len() as u64;
        if let Some(ptr) = e.spilled_ptr() {
            self.spilled_keys -= 1;
            self.spilled_bytes -= u64::from(ptr.len);
        }
    }
}

impl Keyspace {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of keys held, expired ones not yet removed included.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// Sizes an empty key space for about `keys` keys (recovery, from a checkpoint's key
    /// count), so loading them splits no segment; a key space holding keys is left as it is.
    pub fn reserve(&mut self, keys: usize) {
        self.map.reserve(keys);
    }

    /// Gives back what [`Keyspace::reserve`] set aside for keys that never came (a replayed
    /// log that overwrote few keys many times); see `Table::shrink_to_fit`.
    pub fn shrink_to_fit(&mut self) {
        self.map.shrink_to_fit();
    }

    /// The value of `key`, whether or not it has expired.
    pub fn get(&self, key: &[u8]) -> Option<ValueRef<'_>> {
        self.map.get(key).map(ValueRef::of)
    }

    /// The value of `key` if it exists and has not expired at `now_ms`.
    pub fn get_live(&self, key: &[u8], now_ms: u64) -> Option<ValueRef<'_>> {
        self.get(key).filter(|v| !v.is_expired(now_ms))
    }

    /// Number of keys that exist at `now_ms`: expired ones not yet removed are left out.
    pub fn live_len(&self, now_ms: u64) -> usize {
        self.len() - self.expired_count(now_ms)
    }

    /// Number of keys whose expiry is at or before `now_ms`.
    fn expired_count(&self, now_ms: u64) -> usize {
        match self.expiries.get_min() {
            Some((at, _)) if *at <= now_ms => self
                .expiries
                .iter()
                .take_while(|(at, _)| *at <= now_ms)
                .count(),
            _ => 0,
        }
    }

    /// Whether some key has expired at `now_ms` and is still held (cheap: the index's first
    /// entry).
    pub fn has_expired(&self, now_ms: u64) -> bool {
        self.expiries.get_min().is_some_and(|(at, _)| *at <= now_ms)
    }

    /// Up to `limit` keys expired at `now_ms`, the longest expired first.
    pub fn expired_keys(&self, now_ms: u64, limit: usize) -> Vec<Bytes> {
        self.expiries
            .iter()
            .take_while(|(at, _)| *at <= now_ms)
            .take(limit)
            .map(|(_, key)| key.clone())
            .collect()
    }

    /// Number of keys with a TTL (expired ones included).
    pub fn volatile_len(&self) -> usize {
        self.expiries.len()
    }

    /// Inserts or replaces `key` (used by recovery to load a checkpoint, and by tests).
    pub fn insert(&mut self, key: Bytes, value: Value) {
        self.put(&key, &value.data, value.expires_at_ms);
    }

    /// Inserts or replaces `key` with copies of `key` and `value` (recovery loads a checkpoint
    /// straight from the file's bytes with it), keeping the expiry index in step.
    pub fn put(&mut self, key: &[u8], value: &[u8], expires_at_ms: Option<u64>) {
        self.put_entry(Entry::new(key, value, expires_at_ms));
    }

    /// Inserts or replaces `key` with its value on disk at `ptr` (recovery, from a
    /// checkpoint that holds a pointer).
    pub fn put_spilled(&mut self, key: &[u8], ptr: ValuePtr, expires_at_ms: Option<u64>) {
        self.put_entry(Entry::spilled(key, ptr, expires_at_ms));
    }

    /// Inserts or replaces the key of an entry built elsewhere ([`PreparedEntry`]).
    pub fn put_prepared(&mut self, entry: PreparedEntry) {
        self.put_entry(entry.0);
    }

    fn put_entry(&mut self, entry: Entry) {
        self.memory.add(&entry);
        segments_add(&mut self.segments, &entry);
        let expires_at_ms = entry.expires_at_ms();
        // The expiry index needs the key only when an expiry is set or was: no copy otherwise.
        let probe = (expires_at_ms.is_some() || self.volatile_len() > 0).then(|| entry.clone());
        let old = self.map.insert(entry);
        if let Some(old) = &old {
            self.memory.sub(old);
            segments_sub(&mut self.segments, old);
        }
        let old_at = old.and_then(|e| e.expires_at_ms());
        if let (true, Some(probe)) = (old_at != expires_at_ms, probe) {
            let key = Bytes::copy_from_slice(probe.key());
            if let Some(at) = old_at {
                self.expiries.remove(&(at, key.clone()));
            }
            if let Some(at) = expires_at_ms {
                self.expiries.insert((at, key));
            }
        }
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &[u8]) -> Option<Value> {
        let entry = self.map.remove(key)?;
        self.memory.sub(&entry);
        segments_sub(&mut self.segments, &entry);
        let expires_at_ms = entry.expires_at_ms();
        if let Some(at) = expires_at_ms {
            self.expiries.remove(&(at, Bytes::copy_from_slice(key)));
        }
        let data = value_bytes(&entry, entry.inline_value());
        Some(Value {
            data,
            expires_at_ms,
        })
    }

    /// What the entries hold (bytes, spilled keys and their values' bytes).
    pub fn memory(&self) -> KeyspaceMemory {
        self.memory
    }

    /// Where `key`'s value is, when it is on disk.
    pub fn spilled(&self, key: &[u8]) -> Option<ValuePtr> {
        self.map.get(key).and_then(Entry::spilled_ptr)
    }

    /// Moves `key`'s inline value to `ptr` (the caller wrote it there): the entry keeps its
    /// key and expiry. False when the key is gone or its value is not inline.
    pub fn spill(&mut self, key: &[u8], ptr: ValuePtr) -> bool {
        match self.map.get(key) {
            Some(e) if e.spilled_ptr().is_none() && e.inline_value().len() == ptr.len as usize => {
                let at = e.expires_at_ms();
                self.replace_entry(Entry::spilled(key, ptr, at));
                true
            }
            _ => false,
        }
    }

    /// Brings `key`'s spilled value back inline (`value`, read from where the entry points).
    /// False when the key is gone or its value is inline.
    pub fn unspill(&mut self, key: &[u8], value: &[u8]) -> bool {
        match self.map.get(key) {
            Some(e) if e.spilled_ptr().is_some() => {
                let at = e.expires_at_ms();
                self.replace_entry(Entry::new(key, value, at));
                true
            }
            _ => false,
        }
    }

    /// Replaces an entry by one with the same key and expiry (the expiry index is unchanged).
    fn replace_entry(&mut self, entry: Entry) {
        self.memory.add(&entry);
        segments_add(&mut self.segments, &entry);
        if let Some(old) = self.map.insert(entry) {
            self.memory.sub(&old);
            segments_sub(&mut self.segments, &old);
        }
    }

    /// The live values per value segment (see [`SegmentFigures`]).
    pub fn segment_figures(&self) -> &SegmentFigures {
        &self.segments
    }

    /// Points `key`'s spilled value at `to` (compaction wrote a copy there) if it is still at
    /// `from`; false when the key is gone or points elsewhere.
    pub fn repoint(&mut self, key: &[u8], from: ValuePtr, to: ValuePtr) -> bool {
        match self.map.get(key) {
            Some(e) if e.spilled_ptr() == Some(from) && from.len == to.len => {
                let at = e.expires_at_ms();
                self.replace_entry(Entry::spilled(key, to, at));
                true
            }
            _ => false,
        }
    }

    /// Number of table segments, for a walk in bounded steps ([`Keyspace::spilled_in`]).
    pub fn table_segments(&self) -> usize {
        self.map.segment_count()
    }

    /// The spilled entries of table segment `index`: key and pointer.
    pub fn spilled_in(&self, index: usize) -> impl Iterator<Item = (&[u8], ValuePtr)> {
        self.map
            .segment(index)
            .filter_map(|e| e.spilled_ptr().map(|p| (e.key(), p)))
    }

    /// Every key and value, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], ValueRef<'_>)> {
        self.map.iter().map(|e| (e.key(), ValueRef::of(e)))
    }

    /// The key space taken apart, a table segment at a time, for a checkpoint that writes a
    /// snapshot out: each part's entries are released when the part is dropped, so the live
    /// key space stops sharing (and copying on its next write) what is already written, and
    /// what it copied before is freed then rather than at the end of the checkpoint.
    pub fn into_parts(self) -> impl Iterator<Item = KeyspacePart> {
        self.map.into_segments().map(KeyspacePart)
    }

    /// Applies one record. Replaying the records of a history in LSN order rebuilds the state
    /// that history produced. The map stores its own copies of the record's keys and values
    /// (each entry is one new allocation): a `Bytes` the server decoded is a slice of a
    /// session's read buffer, and keeping it would keep that whole buffer alive for as long as
    /// the key lives.
    pub fn apply(&mut self, record: &Record) {
        self.apply_any(record);
    }

    /// [`Keyspace::apply`] of a record borrowed from a log file (recovery's replay).
    pub fn apply_borrowed(&mut self, record: &RecordRef<'_>) {
        self.apply_any(record);
    }

    fn apply_any<B: AsRef<[u8]>>(&mut self, record: &Record<B>) {
        match record {
            Record::Set {
                key,
                value,
                expires_at_ms,
            } => self.put(key.as_ref(), value.as_ref(), *expires_at_ms),
            Record::Update { key, value } => {
                if self.map.get(key.as_ref()).is_some() {
                    self.put(key.as_ref(), value.as_ref(), None);
                }
            }
            Record::Delete { key } => {
                self.remove(key.as_ref());
            }
            Record::Clear | Record::ClearAll => {
                self.map.clear();
                self.expiries.clear();
                self.memory = KeyspaceMemory::default();
                self.segments.clear();
            }
            Record::Txn(ops) => ops.iter().for_each(|op| self.apply_any(op)),
            // Which database a record names is [`Databases`]'s business: a lone key space
            // applies the record inside, and a swap does not change it.
            Record::InDb { record, .. } => self.apply_any(record),
            Record::SwapDb { .. } => {}
        }
    }

    /// Applies one record (recovery's replay). The entry copies the bytes either way, so this
    /// is [`Keyspace::apply`] taking ownership.
    pub fn apply_owned(&mut self, record: Record) {
        self.apply(&record);
    }
}

/// A key with its value and expiry, built into its entry away from the key space: recovery
/// builds a checkpoint's entries (an allocation and a copy each) on a second thread while the
/// first puts them in ([`Keyspace::put_prepared`]).
pub struct PreparedEntry(Entry);

impl PreparedEntry {
    /// `key` with copies of its value's bytes.
    pub fn inline(key: &[u8], value: &[u8], expires_at_ms: Option<u64>) -> PreparedEntry {
        PreparedEntry(Entry::new(key, value, expires_at_ms))
    }

    /// `key` with the pointer to its value on disk.
    pub fn spilled(key: &[u8], ptr: ValuePtr, expires_at_ms: Option<u64>) -> PreparedEntry {
        PreparedEntry(Entry::spilled(key, ptr, expires_at_ms))
    }
}

/// A part of a key space taken apart by [`Keyspace::into_parts`]: one table segment's keys.
pub struct KeyspacePart(table::SegmentEntries);

impl KeyspacePart {
    /// Every key and value of the part, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], ValueRef<'_>)> {
        self.0.iter().map(|e| (e.key(), ValueRef::of(e)))
    }
}

/// Every database (SELECT's 0 to `databases - 1`): one [`Keyspace`] each, so a clone is still
/// O(1) per database and the checkpoint job gets the whole set. It routes each record to the
/// database it names ([`Record::InDb`]; no wrapper is database 0) and grows when a record
/// names a database past the end (replaying a log); the store checks indexes against its
/// `databases` setting before it builds a record.
#[derive(Clone, Debug)]
pub struct Databases {
    dbs: Vec<Keyspace>,
}

impl Default for Databases {
    fn default() -> Self {
        Databases::new(1)
    }
}

impl From<Keyspace> for Databases {
    /// `ks` as database 0.
    fn from(ks: Keyspace) -> Self {
        Databases { dbs: vec![ks] }
    }
}

impl Databases {
    /// `count` empty databases (at least one).
    pub fn new(count: usize) -> Self {
        Databases {
            dbs: vec![Keyspace::new(); count.max(1)],
        }
    }

    /// Number of databases held (empty ones included).
    pub fn count(&self) -> usize {
        self.dbs.len()
    }

    /// Makes room for databases `0..count`.
    pub fn grow_to(&mut self, count: usize) {
        if self.dbs.len() < count {
            self.dbs.resize_with(count, Keyspace::new);
        }
    }

    /// Database `db`, if it is held.
    pub fn get(&self, db: u16) -> Option<&Keyspace> {
        self.dbs.get(usize::from(db))
    }

    /// Database `db`, grown into existence if needed.
    pub fn db_mut(&mut self, db: u16) -> &mut Keyspace {
        self.grow_to(usize::from(db) + 1);
        &mut self.dbs[usize::from(db)]
    }

    /// Database 0.
    pub fn db0(&self) -> &Keyspace {
        &self.dbs[0]
    }

    /// Keys held in every database, expired ones not yet removed included.
    pub fn len(&self) -> usize {
        self.dbs.iter().map(Keyspace::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.dbs.iter().all(Keyspace::is_empty)
    }

    /// Each database with its index, empty ones included.
    pub fn iter(&self) -> impl Iterator<Item = (u16, &Keyspace)> {
        self.dbs.iter().enumerate().map(|(i, ks)| (i as u16, ks))
    }

    /// Every database taken apart ([`Keyspace::into_parts`]), database by database, each part
    /// with its database's index.
    pub fn into_parts(self) -> impl Iterator<Item = (u16, KeyspacePart)> {
        self.dbs
            .into_iter()
            .enumerate()
            .flat_map(|(i, ks)| ks.into_parts().map(move |part| (i as u16, part)))
    }

    /// Every key and value with its database, database by database.
    pub fn entries(&self) -> impl Iterator<Item = (u16, &[u8], ValueRef<'_>)> {
        self.iter()
            .flat_map(|(db, ks)| ks.iter().map(move |(k, v)| (db, k, v)))
    }

    /// The number of the highest database holding a key, if any.
    pub fn highest_used(&self) -> Option<u16> {
        self.iter()
            .filter(|(_, ks)| !ks.is_empty())
            .map(|(i, _)| i)
            .last()
    }

    /// Applies one record to the database it names; see [`Keyspace::apply`].
    pub fn apply(&mut self, record: &Record) {
        self.apply_any(record);
    }

    /// [`Databases::apply`] of a record borrowed from a log file (recovery's replay).
    pub fn apply_borrowed(&mut self, record: &RecordRef<'_>) {
        self.apply_any(record);
    }

    fn apply_any<B: AsRef<[u8]>>(&mut self, record: &Record<B>) {
        match record {
            Record::InDb { db, record } => self.db_mut(*db).apply_any(record),
            Record::Txn(ops) => ops.iter().for_each(|op| self.apply_any(op)),
            Record::SwapDb { a, b } => self.swap(*a, *b),
            Record::ClearAll => self.dbs.iter_mut().for_each(|ks| ks.apply(&Record::Clear)),
            r => self.dbs[0].apply_any(r),
        }
    }

    /// Applies one record, moving its keys and values in (recovery's replay).
    pub fn apply_owned(&mut self, record: Record) {
        match record {
            Record::InDb { db, record } => self.db_mut(db).apply_owned(*record),
            Record::Txn(ops) => ops.into_iter().for_each(|op| self.apply_owned(op)),
            Record::SwapDb { a, b } => self.swap(a, b),
            Record::ClearAll => self.dbs.iter_mut().for_each(|ks| ks.apply(&Record::Clear)),
            r => self.dbs[0].apply_owned(r),
        }
    }

    fn swap(&mut self, a: u16, b: u16) {
        let top = a.max(b);
        self.grow_to(usize::from(top) + 1);
        self.dbs.swap(usize::from(a), usize::from(b));
    }
}

impl PartialEq for Databases {
    /// The same keys in the same databases (trailing empty databases do not count).
    fn eq(&self, other: &Self) -> bool {
        let n = self.dbs.len().max(other.dbs.len());
        let empty = Keyspace::new();
        (0..n).all(|i| self.dbs.get(i).unwrap_or(&empty) == other.dbs.get(i).unwrap_or(&empty))
    }
}

impl Eq for Databases {}

impl FromIterator<(u16, Bytes, Value)> for Databases {
    fn from_iter<I: IntoIterator<Item = (u16, Bytes, Value)>>(iter: I) -> Self {
        let mut dbs = Databases::default();
        for (db, key, value) in iter {
            dbs.db_mut(db).insert(key, value);
        }
        dbs
    }
}

impl PartialEq for Keyspace {
    /// Same keys with the same values and expiry times.
    fn eq(&self, other: &Self) -> bool {
        self.map.ptr_eq(&other.map)
            || (self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v)))
    }
}

impl Eq for Keyspace {}

impl fmt::Debug for Keyspace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(k, v)| (Bytes::copy_from_slice(k), v)))
            .finish()
    }
}

impl FromIterator<(Bytes, Value)> for Keyspace {
    fn from_iter<I: IntoIterator<Item = (Bytes, Value)>>(iter: I) -> Self {
        let mut ks = Keyspace::new();
        ks.extend(iter);
        ks
    }
}

impl Extend<(Bytes, Value)> for Keyspace {
    fn extend<I: IntoIterator<Item = (Bytes, Value)>>(&mut self, iter: I) {
        for (key, value) in iter {
            self.insert(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn databases_route_records_swap_and_clear_all() {
        let set = |db: u16, k: &str| {
            Record::in_db(
                db,
                Record::Set {
                    key: b(k),
                    value: b("v"),
                    expires_at_ms: None,
                },
            )
        };
        let mut dbs = Databases::new(4);
        dbs.apply(&set(0, "a"));
        dbs.apply(&Record::Txn(vec![set(2, "b"), set(2, "c")]));
        assert_eq!(
            (dbs.db0().len(), dbs.get(2).map(Keyspace::len)),
            (1, Some(2))
        );
        let snapshot = dbs.clone();
        dbs.apply(&Record::SwapDb { a: 0, b: 2 });
        assert_eq!(
            (dbs.db0().len(), dbs.get(2).map(Keyspace::len)),
            (2, Some(1))
        );
        dbs.apply(&Record::in_db(2, Record::Clear));
        assert_eq!((dbs.len(), dbs.highest_used()), (2, Some(0)));
        dbs.apply_owned(set(9, "far"));
        assert_eq!((dbs.count(), dbs.highest_used()), (10, Some(9)));
        dbs.apply(&Record::ClearAll);
        assert!(dbs.is_empty());
        assert_eq!(snapshot.len(), 3);
        assert_eq!(Databases::new(16), Databases::new(1));
    }

    #[test]
    fn applied_records_do_not_pin_the_buffer_they_were_decoded_from() {
        let buffer = Bytes::from(vec![b'x'; 64 * 1024]);
        let range = buffer.as_ptr() as usize..buffer.as_ptr() as usize + buffer.len();
        let mut ks = Keyspace::new();
        ks.apply(&Record::Set {
            key: buffer.slice(0..3),
            value: buffer.slice(3..10),
            expires_at_ms: None,
        });
        let (key, value) = ks.iter().next().expect("one key");
        assert!(!range.contains(&(key.as_ptr() as usize)));
        assert!(!range.contains(&(value.data.as_ptr() as usize)));
        assert_eq!(value.data, b"xxxxxxx");
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn update_applies_only_to_existing_keys() {
        let mut ks = Keyspace::new();
        ks.apply(&Record::Update {
            key: b("a"),
            value: b("1"),
        });
        assert!(ks.get(b"a").is_none());
        ks.apply(&Record::Set {
            key: b("a"),
            value: b("1"),
            expires_at_ms: Some(5),
        });
        ks.apply(&Record::Update {
            key: b("a"),
            value: b("2"),
        });
        assert_eq!(ks.get(b"a").map(|v| v.to_value()), Some(Value::new(b("2"))));
    }

    #[test]
    fn transaction_applies_all_its_records() {
        let mut ks = Keyspace::new();
        ks.apply(&Record::Txn(vec![
            Record::Set {
                key: b("a"),
                value: b("1"),
                expires_at_ms: None,
            },
            Record::Set {
                key: b("b"),
                value: b("2"),
                expires_at_ms: None,
            },
            Record::Delete { key: b("a") },
        ]));
        assert_eq!(ks.len(), 1);
        assert_eq!(ks.get(b"b").map(|v| v.to_value()), Some(Value::new(b("2"))));
    }

    #[test]
    fn expired_values_are_hidden_from_live_reads() {
        let mut ks = Keyspace::new();
        ks.apply(&Record::Set {
            key: b("a"),
            value: b("1"),
            expires_at_ms: Some(100),
        });
        assert!(ks.get_live(b"a", 99).is_some());
        assert!(ks.get_live(b"a", 100).is_none());
        assert!(ks.get(b"a").is_some());
    }

    #[test]
    fn the_expiry_index_follows_every_record() {
        let mut ks = Keyspace::new();
        let set = |k: &str, at: Option<u64>| Record::Set {
            key: b(k),
            value: b("v"),
            expires_at_ms: at,
        };
        ks.apply(&set("a", Some(10)));
        ks.apply(&set("b", Some(20)));
        ks.apply(&set("c", None));
        ks.apply(&set("d", Some(5)));
        assert_eq!(
            (ks.volatile_len(), ks.live_len(0), ks.live_len(10)),
            (3, 4, 2)
        );
        assert_eq!(ks.expired_keys(20, 10), vec![b("d"), b("a"), b("b")]);
        assert_eq!(ks.expired_keys(20, 1), vec![b("d")]);
        assert!(ks.has_expired(5) && !ks.has_expired(4));
        // A new expiry replaces the old one; UPDATE and a SET without one clear it.
        ks.apply(&set("a", Some(30)));
        ks.apply(&Record::Update {
            key: b("b"),
            value: b("w"),
        });
        ks.apply(&set("d", None));
        assert_eq!(ks.expired_keys(100, 10), vec![b("a")]);
        ks.apply(&Record::Delete { key: b("a") });
        assert_eq!(ks.volatile_len(), 0);
        ks.apply(&set("e", Some(1)));
        let snapshot = ks.clone();
        ks.apply(&Record::Clear);
        assert_eq!((ks.volatile_len(), snapshot.volatile_len()), (0, 1));
        assert_eq!(snapshot.live_len(1), 3);
    }

    #[test]
    fn a_clone_is_a_snapshot_that_later_writes_do_not_change() {
        let mut ks: Keyspace = (0..100)
            .map(|i| (b(&format!("k{i}")), Value::new(b("v"))))
            .collect();
        let snapshot = ks.clone();
        assert_eq!(ks, snapshot);
        ks.apply(&Record::Update {
            key: b("k1"),
            value: b("new"),
        });
        ks.apply_owned(Record::Delete { key: b("k2") });
        assert_eq!(ks.remove(b"k3"), Some(Value::new(b("v"))));
        ks.insert(b("k4"), Value::new(b("four")));
        assert_ne!(ks, snapshot);
        assert_eq!(snapshot.len(), 100);
        for i in 0..100 {
            assert_eq!(
                snapshot
                    .get(format!("k{i}").as_bytes())
                    .map(|v| v.to_value()),
                Some(Value::new(b("v")))
            );
        }
        assert_eq!(ks.len(), 98);
        assert_eq!(
            ks.get(b"k1").map(|v| v.to_value()),
            Some(Value::new(b("new")))
        );
        assert_eq!(
            ks.get(b"k4").map(|v| v.to_value()),
            Some(Value::new(b("four")))
        );
        assert!(ks.get(b"k2").is_none() && ks.get(b"k3").is_none());
    }

    #[test]
    fn equality_compares_values_and_expiry_not_only_keys() {
        let a: Keyspace = [(b("k"), Value::new(b("1")))].into_iter().collect();
        let mut other = a.clone();
        other.insert(b("k"), Value::new(b("2")));
        assert_ne!(a, other);
        other.insert(
            b("k"),
            Value {
                data: b("1"),
                expires_at_ms: Some(7),
            },
        );
        assert_ne!(a, other);
        other.insert(b("k"), Value::new(b("1")));
        assert_eq!(a, other);
        assert_eq!(
            format!("{a:?}"),
            r#"{b"k": Value { data: b"1", expires_at_ms: None }}"#
        );
    }

    #[test]
    fn random_writes_match_a_model_and_snapshots_stay_frozen() {
        use std::collections::BTreeMap;
        type Model = BTreeMap<Vec<u8>, (Vec<u8>, Option<u64>)>;
        let check = |ks: &Keyspace, model: &Model| {
            assert_eq!(ks.len(), model.len());
            assert_eq!(
                ks.volatile_len(),
                model.values().filter(|(_, at)| at.is_some()).count()
            );
            for (k, (v, at)) in model {
                let got = ks.get(k).expect("key present");
                assert_eq!((got.data, got.expires_at_ms), (&v[..], *at));
            }
            let mut keys: Vec<&[u8]> = ks.iter().map(|(k, _)| k).collect();
            keys.sort_unstable();
            assert!(keys.iter().copied().eq(model.keys().map(|k| &k[..])));
        };
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut ks = Keyspace::new();
        let mut model = Model::new();
        let mut snapshots: Vec<(Keyspace, Model)> = Vec::new();
        for round in 0..40_000u64 {
            let key = format!("k{}", next(12_000)).into_bytes();
            match next(10) {
                0..=5 => {
                    let value = vec![b'v'; next(300) as usize];
                    let at = (next(3) == 0).then(|| next(1000));
                    ks.apply(&Record::Set {
                        key: Bytes::from(key.clone()),
                        value: Bytes::from(value.clone()),
                        expires_at_ms: at,
                    });
                    model.insert(key, (value, at));
                }
                6 => {
                    let value = vec![b'u'; next(20) as usize];
                    ks.apply(&Record::Update {
                        key: Bytes::from(key.clone()),
                        value: Bytes::from(value.clone()),
                    });
                    if let Some(slot) = model.get_mut(&key) {
                        *slot = (value, None);
                    }
                }
                _ => {
                    let removed = ks.remove(&key).map(|v| (v.data.to_vec(), v.expires_at_ms));
                    assert_eq!(removed, model.remove(&key));
                }
            }
            if round % 5_000 == 0 {
                snapshots.push((ks.clone(), model.clone()));
            }
        }
        check(&ks, &model);
        for (snapshot, frozen) in &snapshots {
            check(snapshot, frozen);
        }
    }

    #[test]
    fn large_values_are_shared_with_their_entry_small_ones_copied() {
        let mut ks = Keyspace::new();
        let big = vec![b'b'; SHARE_ABOVE + 1];
        ks.insert(b("big"), Value::new(big.clone()));
        ks.insert(b("small"), Value::new(b("s")));
        let held = ks.get(b"big").expect("present");
        let (shared, copied) = (held.bytes(), ks.get(b"small").expect("present").bytes());
        assert_eq!(shared.as_ptr(), held.data.as_ptr());
        assert_eq!((&shared[..], &copied[..]), (&big[..], &b"s"[..]));
        // The shared handle outlives the key.
        let removed = ks.remove(b"big").expect("present");
        ks.apply(&Record::Clear);
        assert_eq!((&shared[..], &removed.data[..]), (&big[..], &big[..]));
    }

    #[test]
    fn iter_yields_every_key_once_with_its_value() {
        let mut ks = Keyspace::new();
        ks.extend((0..1000u32).map(|i| (b(&i.to_string()), Value::new(b(&(i * 2).to_string())))));
        let mut seen: Vec<(u32, u32)> = ks
            .iter()
            .map(|(k, v)| {
                let parse = |x: &[u8]| std::str::from_utf8(x).unwrap().parse::<u32>().unwrap();
                (parse(k), parse(v.data))
            })
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..1000).map(|i| (i, i * 2)).collect::<Vec<_>>());
    }
}
