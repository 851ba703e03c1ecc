//! The in-memory key space: binary-safe keys mapped to values with an optional expiry. It is a
//! persistent map, so a clone is O(1) and the snapshotter can write a consistent view while the
//! store owner goes on applying writes.
//!
//! Layout, chosen by measurement (`cargo bench -p moodb-backends --bench paper`, 1,000,000 keys
//! of 16 B with 100 B values): the HAMT (`imbl`) holds one pointer per key, to a reference-counted
//! `(key, value)` pair, not the pair itself. A HAMT node reserves all 32 (or 16) of its slots, so
//! with the 80-byte pair inline the nodes cost ~356 B per key; with an 8-byte pointer ~76 B. The
//! map takes ~316 B/key resident instead of ~500 (key 32 + value 112 + pair 96 + nodes 76, glibc
//! chunk sizes), inserts ~1.5x faster, and copying a node shared with a snapshot only bumps
//! reference counts (cloning a `Vec`-backed `Bytes` allocates). The pointer is a
//! `triomphe::Arc` (no weak count: 16 B less per key than `std::sync::Arc`).
//! Measured and not kept: foldhash instead of SipHash (no gain beyond noise: the time goes to
//! node allocation, not hashing), mimalloc (-14 B/key but slower inserts), sorting a checkpoint's
//! entries into hash order before inserting, and decoding on a second thread while inserting
//! (no gain while the other core is busy).
//! Going below ~220 B/key needs a different `Value` (key, value and expiry in one allocation
//! instead of two `Bytes` and an `Option<u64>`, 80 B before any heap byte).

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};

use bytes::Bytes;
use triomphe::Arc;

use crate::record::Record;

/// A stored value and its absolute expiry time, if it has one.
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

/// One key and its value behind a shared pointer: the map's element. It hashes and compares as
/// its key bytes alone, so the map finds it from a `&[u8]`.
#[derive(Clone)]
struct Entry(Arc<(Bytes, Value)>);

impl Entry {
    fn new(key: Bytes, value: Value) -> Self {
        Entry(Arc::new((key, value)))
    }

    fn key(&self) -> &Bytes {
        &self.0 .0
    }

    fn value(&self) -> &Value {
        &self.0 .1
    }

    /// The value, without copying it when no snapshot shares this entry.
    fn into_value(self) -> Value {
        Arc::try_unwrap(self.0).map_or_else(|shared| shared.1.clone(), |(_, value)| value)
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Entry {}

impl Hash for Entry {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Must hash exactly as the `[u8]` it borrows as.
        self.key().as_ref().hash(state);
    }
}

impl Borrow<[u8]> for Entry {
    fn borrow(&self) -> &[u8] {
        self.key()
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
/// checkpoint; it costs about 60 B per key with a TTL (the time, the key's `Bytes` handle
/// sharing the key's bytes, and the tree node) and nothing for keys without one.
#[derive(Clone, Default)]
pub struct Keyspace {
    map: imbl::HashMap<Entry, ()>,
    expiries: imbl::OrdSet<(u64, Bytes)>,
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
        self.map.is_empty()
    }

    /// The value of `key`, whether or not it has expired.
    pub fn get(&self, key: &[u8]) -> Option<&Value> {
        self.map.get_key_value(key).map(|(e, ())| e.value())
    }

    /// The value of `key` if it exists and has not expired at `now_ms`.
    pub fn get_live(&self, key: &[u8], now_ms: u64) -> Option<&Value> {
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
        self.unindex(&key);
        if let Some(at) = value.expires_at_ms {
            self.expiries.insert((at, key.clone()));
        }
        self.map.insert(Entry::new(key, value), ());
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &[u8]) -> Option<Value> {
        let value = self
            .map
            .remove_with_key(key)
            .map(|(e, ())| e.into_value())?;
        if let Some(at) = value.expires_at_ms {
            self.expiries.remove(&(at, Bytes::copy_from_slice(key)));
        }
        Some(value)
    }

    /// Drops `key`'s entry from the expiry index, if it has one.
    fn unindex(&mut self, key: &Bytes) {
        if self.expiries.is_empty() {
            return;
        }
        if let Some(at) = self.get(key).and_then(|v| v.expires_at_ms) {
            self.expiries.remove(&(at, key.clone()));
        }
    }

    /// Every key and value, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Value)> {
        self.map.keys().map(|e| (e.key(), e.value()))
    }

    /// Applies one record. Replaying the records of a history in LSN order rebuilds the state
    /// that history produced. The map stores its own copies of the record's keys and values:
    /// a `Bytes` the server decoded is a slice of a session's read buffer, and keeping it would
    /// keep that whole buffer alive for as long as the key lives.
    pub fn apply(&mut self, record: &Record) {
        self.apply_owned(detached(record));
    }

    /// Applies one record, moving its keys and values into the map (recovery's replay).
    pub fn apply_owned(&mut self, record: Record) {
        match record {
            Record::Set {
                key,
                value,
                expires_at_ms,
            } => self.insert(
                key,
                Value {
                    data: value,
                    expires_at_ms,
                },
            ),
            Record::Update { key, value } => {
                self.unindex(&key);
                // Take the entry out to reuse its key without cloning it, then put it back.
                if let Some((old, ())) = self.map.remove_with_key(&key[..]) {
                    let (key, _) = Arc::try_unwrap(old.0).unwrap_or_else(|s| (*s).clone());
                    self.insert(key, Value::new(value));
                }
            }
            Record::Delete { key } => {
                self.remove(&key);
            }
            Record::Clear | Record::ClearAll => {
                self.map.clear();
                self.expiries.clear();
            }
            Record::Txn(ops) => ops.into_iter().for_each(|op| self.apply_owned(op)),
            // Which database a record names is [`Databases`]'s business: a lone key space
            // applies the record inside, and a swap does not change it.
            Record::InDb { record, .. } => self.apply_owned(*record),
            Record::SwapDb { .. } => {}
        }
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

    /// Every key and value with its database, database by database.
    pub fn entries(&self) -> impl Iterator<Item = (u16, &Bytes, &Value)> {
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
        match record {
            Record::InDb { db, record } => self.db_mut(*db).apply(record),
            Record::Txn(ops) => ops.iter().for_each(|op| self.apply(op)),
            Record::SwapDb { a, b } => self.swap(*a, *b),
            Record::ClearAll => self.dbs.iter_mut().for_each(|ks| ks.apply(&Record::Clear)),
            r => self.dbs[0].apply(r),
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
        f.debug_map().entries(self.iter()).finish()
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

/// A copy of `record` whose keys and values own exactly their bytes.
fn detached(record: &Record) -> Record {
    let copy = |b: &Bytes| Bytes::copy_from_slice(b);
    match record {
        Record::Set {
            key,
            value,
            expires_at_ms,
        } => Record::Set {
            key: copy(key),
            value: copy(value),
            expires_at_ms: *expires_at_ms,
        },
        Record::Update { key, value } => Record::Update {
            key: copy(key),
            value: copy(value),
        },
        Record::Delete { key } => Record::Delete { key: key.clone() },
        Record::Clear => Record::Clear,
        Record::Txn(ops) => Record::Txn(ops.iter().map(detached).collect()),
        Record::InDb { db, record } => Record::InDb {
            db: *db,
            record: Box::new(detached(record)),
        },
        Record::SwapDb { a, b } => Record::SwapDb { a: *a, b: *b },
        Record::ClearAll => Record::ClearAll,
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
        assert_eq!(&value.data[..], b"xxxxxxx");
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
        assert_eq!(ks.get(b"a"), Some(&Value::new(b("2"))));
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
        assert_eq!(ks.get(b"b"), Some(&Value::new(b("2"))));
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
                snapshot.get(format!("k{i}").as_bytes()),
                Some(&Value::new(b("v")))
            );
        }
        assert_eq!(ks.len(), 98);
        assert_eq!(ks.get(b"k1"), Some(&Value::new(b("new"))));
        assert_eq!(ks.get(b"k4"), Some(&Value::new(b("four"))));
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
    fn iter_yields_every_key_once_with_its_value() {
        let mut ks = Keyspace::new();
        ks.extend((0..1000u32).map(|i| (b(&i.to_string()), Value::new(b(&(i * 2).to_string())))));
        let mut seen: Vec<(u32, u32)> = ks
            .iter()
            .map(|(k, v)| {
                let parse = |x: &[u8]| std::str::from_utf8(x).unwrap().parse::<u32>().unwrap();
                (parse(k), parse(&v.data))
            })
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..1000).map(|i| (i, i * 2)).collect::<Vec<_>>());
    }
}
