//! The `sled` backend: the key space stored in a sled 0.34 tree, for comparison with the paper
//! engine. sled is itself a log-structured store that compacts its own files, so this backend
//! has no checkpoints: every `append` becomes one sled [`sled::Batch`] and sled recovers it.
//!
//! Layout: one sled database in `<dir>/sled`, one tree (sled's default tree), two key prefixes
//! so that a single `Batch` (atomic across a crash) covers the data and the last LSN:
//!
//! | sled key             | sled value                                                    |
//! |----------------------|---------------------------------------------------------------|
//! | `d` + user key       | database 0: u64 LE expires-at ms (0 = never), then the value  |
//! | `D` + u16 BE db + user key | database `db` ≥ 1: the same value encoding              |
//! | `m` + `last_lsn`     | u64 LE: the LSN of the last record whose effect is stored     |
//!
//! Databases other than 0 came later under their own prefix, so a sled directory written
//! before them (database 0 only, under `d`) reads as it is. SWAPDB rewrites both databases'
//! keys in the batch (sled cannot rename a prefix): O(keys of both).
//!
//! A `Record::Txn` lies within one `append` and so within one batch: after a crash it is
//! recovered whole or not at all. Records of one `append` see each other's effects (an
//! `Update` after a `Set` of the same key in the same group applies), exactly as
//! [`moodb_core::Databases::apply`] would in LSN order.
//!
//! # What `sync` means here (differs from `paper`)
//!
//! - `always`: `append` calls sled's `flush()` (write out sled's IO buffers and fsync) before it
//!   returns, so one group costs one flush. sled's own background flusher is turned off.
//!   sled's flush writes whatever its page cache has dirtied, which can be more than the records
//!   of the group (segment headers, page fragments), so one flush may write and sync more
//!   bytes than paper's one `fdatasync` of an append-only file.
//! - `every:<ms>`: `append` flushes when the last flush is older than the interval, and sled's
//!   background flusher runs at the same interval, so a quiet period is flushed too.
//! - `never`: no explicit flush; sled's background flusher keeps its default (every 500 ms).
//!   Unlike paper, where every append is at least handed to the OS (so it survives `kill -9`
//!   of the process), sled keeps writes in its own in-memory IO buffers until they fill up or
//!   are flushed: under `never` a `kill -9` may lose up to ~500 ms of acknowledged writes.
//!
//! Flushes done by sled's background thread are not counted in [`BackendStatus::fsyncs`].
//! After a failed batch or flush the backend is poisoned and refuses further appends.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use moodb_core::{
    AppendReport, Backend, BackendStatus, CheckpointJob, CheckpointReport, Databases, LogEntry,
    Lsn, Record, Recovered, RecoveryReport, StorageError, SyncPolicy, Value,
};

use crate::BackendOptions;

/// Prefix of the sled keys that hold user keys of database 0.
const DATA_PREFIX: &[u8] = b"d";
/// Prefix of the sled keys that hold user keys of databases 1 and up (then the database as a
/// big-endian u16).
const DB_PREFIX: &[u8] = b"D";
/// The sled key holding the last stored LSN.
const LAST_LSN_KEY: &[u8] = b"mlast_lsn";
/// sled's own default background flush interval, kept under `sync = never`.
const SLED_DEFAULT_FLUSH_MS: u64 = 500;

/// The key space in a sled database. See the module doc for layout and sync semantics.
pub struct SledBackend {
    db: sled::Db,
    path: PathBuf,
    sync: SyncPolicy,
    last_lsn: Lsn,
    durable_lsn: Lsn,
    last_flush: Instant,
    fsyncs: u64,
    fsync_total: Duration,
    fsync_max: Duration,
    /// The first failed batch or flush; every later write is refused with it.
    poisoned: Option<StorageError>,
}

/// How long `open` waits for a lock that a just-closed handle in this process still holds.
const LOCK_WAIT: Duration = Duration::from_secs(3);

impl SledBackend {
    /// Opens (creating if missing) the sled database in `<dir>/sled`.
    pub fn open(dir: &Path, options: &BackendOptions) -> Result<Self, StorageError> {
        let path = dir.join("sled");
        std::fs::create_dir_all(&path)
            .map_err(|err| StorageError::io(format!("create sled directory {path:?}"), err))?;
        let flush_every_ms = match options.sync {
            SyncPolicy::Always => None,
            SyncPolicy::Every(interval) => Some(
                u64::try_from(interval.as_millis())
                    .unwrap_or(u64::MAX)
                    .max(1),
            ),
            SyncPolicy::Never => Some(SLED_DEFAULT_FLUSH_MS),
        };
        let config = sled::Config::new()
            .path(&path)
            .flush_every_ms(flush_every_ms);
        // sled releases its file lock from background threads after the last handle is
        // dropped, so a reopen right after a close can find it still held: retry briefly.
        let deadline = Instant::now() + LOCK_WAIT;
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                Err(sled::Error::Io(err))
                    if Instant::now() < deadline
                        && err.to_string().contains("could not acquire lock") =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(err) => {
                    return Err(sled_error(
                        &path,
                        format!("open sled database {path:?} (is another process using it?)"),
                        err,
                    ))
                }
            }
        };
        Ok(SledBackend {
            db,
            path,
            sync: options.sync,
            last_lsn: 0,
            durable_lsn: 0,
            last_flush: Instant::now(),
            fsyncs: 0,
            fsync_total: Duration::ZERO,
            fsync_max: Duration::ZERO,
            poisoned: None,
        })
    }

    /// The directory sled keeps its files in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn check_not_poisoned(&self) -> Result<(), StorageError> {
        match &self.poisoned {
            Some(first) => Err(StorageError::poisoned(first)),
            None => Ok(()),
        }
    }

    /// Flushes and fsyncs sled's buffers; a failure poisons the backend.
    fn flush(&mut self) -> Result<(), StorageError> {
        self.check_not_poisoned()?;
        let started = Instant::now();
        if let Err(err) = self.db.flush() {
            let err = sled_error(
                &self.path,
                format!("flush (fsync) sled database {:?}", self.path),
                err,
            );
            self.poisoned = Some(err.clone());
            return Err(err);
        }
        let took = started.elapsed();
        self.fsyncs += 1;
        self.fsync_total += took;
        self.fsync_max = self.fsync_max.max(took);
        self.last_flush = Instant::now();
        self.durable_lsn = self.last_lsn;
        Ok(())
    }

    fn scan_error(&self, err: sled::Error) -> StorageError {
        sled_error(
            &self.path,
            format!("scan sled database {:?}", self.path),
            err,
        )
    }

    /// Whether user key `key` of database `db` exists, given the pending effects of the
    /// current group.
    fn exists(&self, pending: &Pending, db: u16, key: &Bytes) -> Result<bool, StorageError> {
        if let Some(value) = pending.writes.get(&(db, key.clone())) {
            return Ok(value.is_some());
        }
        if pending.is_cleared(db) {
            return Ok(false);
        }
        self.db.contains_key(data_key(db, key)).map_err(|err| {
            sled_error(
                &self.path,
                format!("read key from sled database {:?}", self.path),
                err,
            )
        })
    }

    /// Every key and value of database `db`, given the pending effects of the group.
    fn contents(&self, pending: &Pending, db: u16) -> Result<Vec<(Bytes, Value)>, StorageError> {
        let mut out: HashMap<Bytes, Value> = HashMap::new();
        if !pending.is_cleared(db) {
            let prefix = db_prefix(db);
            for item in self.db.scan_prefix(&prefix) {
                let (key, value) = item.map_err(|e| self.scan_error(e))?;
                if let Some(value) = decode_value(&value) {
                    out.insert(Bytes::copy_from_slice(&key[prefix.len()..]), value);
                }
            }
        }
        for ((d, key), value) in &pending.writes {
            if *d != db {
                continue;
            }
            match value {
                Some(v) => out.insert(key.clone(), v.clone()),
                None => out.remove(key),
            };
        }
        Ok(out.into_iter().collect())
    }

    /// Folds one record into the pending effects of the group.
    fn stage(&self, pending: &mut Pending, record: &Record) -> Result<(), StorageError> {
        self.stage_in(pending, 0, record)
    }

    fn stage_in(
        &self,
        pending: &mut Pending,
        db: u16,
        record: &Record,
    ) -> Result<(), StorageError> {
        match record {
            Record::Set {
                key,
                value,
                expires_at_ms,
            } => {
                pending.bytes += (key.len() + value.len() + 8) as u64;
                pending.writes.insert(
                    (db, key.clone()),
                    Some(Value {
                        data: value.clone(),
                        expires_at_ms: *expires_at_ms,
                    }),
                );
            }
            Record::Update { key, value } => {
                if self.exists(pending, db, key)? {
                    pending.bytes += (key.len() + value.len() + 8) as u64;
                    pending
                        .writes
                        .insert((db, key.clone()), Some(Value::new(value.clone())));
                }
            }
            Record::Delete { key } => {
                pending.bytes += key.len() as u64;
                pending.writes.insert((db, key.clone()), None);
            }
            Record::Clear => pending.clear(db),
            Record::ClearAll => {
                pending.cleared_all = true;
                pending.cleared.clear();
                pending.writes.clear();
            }
            Record::SwapDb { a, b } => {
                let (in_a, in_b) = (self.contents(pending, *a)?, self.contents(pending, *b)?);
                pending.clear(*a);
                pending.clear(*b);
                for (to, entries) in [(*b, in_a), (*a, in_b)] {
                    for (key, value) in entries {
                        pending.bytes += (key.len() + value.data.len() + 8) as u64;
                        pending.writes.insert((to, key), Some(value));
                    }
                }
            }
            Record::InDb { db, record } => self.stage_in(pending, *db, record)?,
            Record::Txn(ops) => {
                for op in ops {
                    self.stage_in(pending, db, op)?;
                }
            }
        }
        Ok(())
    }

    /// Turns the pending effects into one sled batch.
    fn batch(&self, pending: Pending, last_lsn: Lsn) -> Result<sled::Batch, StorageError> {
        let mut batch = sled::Batch::default();
        // Removals first: a later insert of the same key in the batch replaces its removal.
        let mut prefixes: Vec<Vec<u8>> = Vec::new();
        if pending.cleared_all {
            prefixes.push(DATA_PREFIX.to_vec());
            prefixes.push(DB_PREFIX.to_vec());
        } else {
            prefixes.extend(pending.cleared.iter().map(|db| db_prefix(*db)));
        }
        for prefix in prefixes {
            for item in self.db.scan_prefix(&prefix) {
                let (key, _) = item.map_err(|err| {
                    sled_error(
                        &self.path,
                        format!("scan sled database {:?} to clear it", self.path),
                        err,
                    )
                })?;
                batch.remove(key);
            }
        }
        for ((db, key), value) in pending.writes {
            match value {
                Some(value) => batch.insert(data_key(db, &key), encode_value(&value)),
                None => batch.remove(data_key(db, &key)),
            }
        }
        batch.insert(LAST_LSN_KEY, &last_lsn.to_le_bytes());
        Ok(batch)
    }
}

/// The effects of one group of records, before they become a sled batch.
#[derive(Default)]
struct Pending {
    /// Final value of each (database, key) written (None = removed).
    writes: HashMap<(u16, Bytes), Option<Value>>,
    /// Databases cleared: every stored key of theirs not in `writes` is gone.
    cleared: HashSet<u16>,
    /// A `ClearAll` happened: every stored key not in `writes` is gone.
    cleared_all: bool,
    bytes: u64,
}

impl Pending {
    fn is_cleared(&self, db: u16) -> bool {
        self.cleared_all || self.cleared.contains(&db)
    }

    fn clear(&mut self, db: u16) {
        self.cleared.insert(db);
        self.writes.retain(|(d, _), _| *d != db);
    }
}

/// The prefix of database `db`'s sled keys.
fn db_prefix(db: u16) -> Vec<u8> {
    if db == 0 {
        return DATA_PREFIX.to_vec();
    }
    let mut out = Vec::with_capacity(DB_PREFIX.len() + 2);
    out.extend_from_slice(DB_PREFIX);
    out.extend_from_slice(&db.to_be_bytes());
    out
}

fn data_key(db: u16, key: &[u8]) -> Vec<u8> {
    let mut out = db_prefix(db);
    out.extend_from_slice(key);
    out
}

fn encode_value(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + value.data.len());
    out.extend_from_slice(&value.expires_at_ms.unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&value.data);
    out
}

fn decode_value(bytes: &[u8]) -> Option<Value> {
    let (expiry, data) = bytes.split_first_chunk::<8>()?;
    let expires = u64::from_le_bytes(*expiry);
    Some(Value {
        data: Bytes::copy_from_slice(data),
        expires_at_ms: (expires != 0).then_some(expires),
    })
}

/// Converts a sled error into a storage error that says what was being done.
fn sled_error(path: &Path, context: String, err: sled::Error) -> StorageError {
    match err {
        sled::Error::Io(source) => StorageError::io(context, source),
        sled::Error::Corruption { .. } => StorageError::Corrupt {
            file: path.to_path_buf(),
            offset: 0,
            reason: format!("{context}: sled reports {err}"),
        },
        other => StorageError::io(context, io::Error::other(other.to_string())),
    }
}

impl Backend for SledBackend {
    fn name(&self) -> &'static str {
        "sled"
    }

    fn recover(&mut self) -> Result<Recovered, StorageError> {
        let started = Instant::now();
        let corrupt = |reason: String| StorageError::Corrupt {
            file: self.path.clone(),
            offset: 0,
            reason,
        };
        let last_lsn = match self.db.get(LAST_LSN_KEY).map_err(|err| {
            sled_error(
                &self.path,
                format!("read last LSN from sled database {:?}", self.path),
                err,
            )
        })? {
            None => 0,
            Some(bytes) => {
                let le: [u8; 8] = bytes.as_ref().try_into().map_err(|_| {
                    corrupt(format!("last LSN is {} bytes long, not 8", bytes.len()))
                })?;
                u64::from_le_bytes(le)
            }
        };
        let mut state = Databases::default();
        for prefix in [DATA_PREFIX, DB_PREFIX] {
            for item in self.db.scan_prefix(prefix) {
                let (key, value) = item.map_err(|err| {
                    sled_error(
                        &self.path,
                        format!("scan sled database {:?}", self.path),
                        err,
                    )
                })?;
                let (db, user_key) = if prefix == DB_PREFIX {
                    let Some((db, rest)) = key[DB_PREFIX.len()..].split_first_chunk::<2>() else {
                        return Err(corrupt(format!(
                            "sled key {:?} is too short to name a database",
                            String::from_utf8_lossy(&key)
                        )));
                    };
                    (u16::from_be_bytes(*db), rest)
                } else {
                    (0, &key[DATA_PREFIX.len()..])
                };
                let value = decode_value(&value).ok_or_else(|| {
                    corrupt(format!(
                        "value of key {:?} is {} bytes long, shorter than its 8-byte expiry",
                        String::from_utf8_lossy(user_key),
                        value.len()
                    ))
                })?;
                state
                    .db_mut(db)
                    .insert(Bytes::copy_from_slice(user_key), value);
            }
        }
        self.last_lsn = last_lsn;
        self.durable_lsn = last_lsn;
        let report = RecoveryReport {
            checkpoint: Some((self.path.clone(), last_lsn)),
            checkpoint_keys: state.len() as u64,
            records_replayed: 0,
            // sled's tree is a materialised state, not a log: nothing is replayed.
            log_bytes_replayed: 0,
            bytes_truncated: 0,
            salvaged: None,
            elapsed: started.elapsed(),
        };
        Ok(Recovered {
            state,
            last_lsn,
            report,
        })
    }

    fn append(&mut self, entries: &[LogEntry]) -> Result<AppendReport, StorageError> {
        self.check_not_poisoned()?;
        let Some(last) = entries.last() else {
            return Ok(AppendReport::default());
        };
        let mut previous = self.last_lsn;
        for entry in entries {
            if entry.lsn <= previous {
                return Err(StorageError::InvalidInput(format!(
                    "append of LSN {} after LSN {previous}: LSNs must increase",
                    entry.lsn
                )));
            }
            previous = entry.lsn;
        }
        let mut pending = Pending::default();
        for entry in entries {
            self.stage(&mut pending, &entry.record)?;
        }
        let bytes = pending.bytes + 8;
        let batch = self.batch(pending, last.lsn)?;
        if let Err(err) = self.db.apply_batch(batch) {
            let err = sled_error(
                &self.path,
                format!("apply batch to sled database {:?}", self.path),
                err,
            );
            self.poisoned = Some(err.clone());
            return Err(err);
        }
        self.last_lsn = last.lsn;
        let due = match self.sync {
            SyncPolicy::Always => true,
            SyncPolicy::Every(interval) => self.last_flush.elapsed() >= interval,
            SyncPolicy::Never => false,
        };
        if due {
            self.flush()?;
        }
        Ok(AppendReport { bytes, synced: due })
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.flush()
    }

    fn begin_checkpoint(
        &mut self,
        _lsn: Lsn,
    ) -> Result<Option<Box<dyn CheckpointJob>>, StorageError> {
        Ok(None)
    }

    fn checkpoint_finished(&mut self, _report: &CheckpointReport) {}

    fn set_sync_policy(&mut self, policy: SyncPolicy) {
        self.sync = policy;
    }

    fn status(&self) -> BackendStatus {
        BackendStatus {
            name: "sled",
            log_bytes: self.db.size_on_disk().unwrap_or(0),
            last_checkpoint_lsn: None,
            last_checkpoint_unix_ms: None,
            fsyncs: self.fsyncs,
            fsync_total: self.fsync_total,
            fsync_max: self.fsync_max,
            durable_lsn: self.durable_lsn,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn set(key: &str, value: &str) -> Record {
        Record::Set {
            key: b(key),
            value: b(value),
            expires_at_ms: None,
        }
    }

    fn entries(first: Lsn, records: Vec<Record>) -> Vec<LogEntry> {
        records
            .into_iter()
            .zip(first..)
            .map(|(record, lsn)| LogEntry { lsn, record })
            .collect()
    }

    fn open(dir: &Path, sync: SyncPolicy) -> SledBackend {
        let options = BackendOptions {
            sync,
            ..BackendOptions::default()
        };
        SledBackend::open(dir, &options).unwrap()
    }

    #[test]
    fn records_of_one_group_see_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let records = vec![
            set("a", "1"),
            Record::Update {
                key: b("a"),
                value: b("2"),
            },
            set("gone", "x"),
            Record::Clear,
            set("b", "3"),
            Record::Update {
                key: b("gone"),
                value: b("back?"),
            },
        ];
        let mut model = Databases::default();
        model.apply(&set("old", "o"));
        records.iter().for_each(|r| model.apply(r));
        {
            let mut backend = open(dir.path(), SyncPolicy::Always);
            backend.recover().unwrap();
            backend.append(&entries(1, vec![set("old", "o")])).unwrap();
            backend.append(&entries(2, records)).unwrap();
        }
        let mut backend = open(dir.path(), SyncPolicy::Always);
        let recovered = backend.recover().unwrap();
        assert_eq!(recovered.state, model);
        assert_eq!(recovered.state.len(), 1);
        assert_eq!(recovered.last_lsn, 7);
    }

    #[test]
    fn decreasing_lsns_are_refused_without_poisoning() {
        let dir = tempfile::tempdir().unwrap();
        let mut backend = open(dir.path(), SyncPolicy::Never);
        backend.recover().unwrap();
        backend.append(&entries(5, vec![set("a", "1")])).unwrap();
        let err = backend
            .append(&entries(5, vec![set("a", "2")]))
            .unwrap_err();
        assert!(matches!(err, StorageError::InvalidInput(_)), "{err}");
        backend.append(&entries(6, vec![set("a", "3")])).unwrap();
    }

    #[test]
    fn sync_always_flushes_once_per_group_and_never_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut always = open(&dir.path().join("always"), SyncPolicy::Always);
        always.recover().unwrap();
        let report = always
            .append(&entries(
                1,
                vec![set("a", "1"), set("b", "2"), set("c", "3")],
            ))
            .unwrap();
        assert!(report.synced);
        let status = always.status();
        assert_eq!(status.fsyncs, 1);
        assert_eq!(status.durable_lsn, 3);
        assert!(status.log_bytes > 0);

        let mut never = open(&dir.path().join("never"), SyncPolicy::Never);
        never.recover().unwrap();
        let report = never.append(&entries(1, vec![set("a", "1")])).unwrap();
        assert!(!report.synced);
        assert_eq!(never.status().fsyncs, 0);
        assert_eq!(never.status().durable_lsn, 0);
        never.sync().unwrap();
        assert_eq!(never.status().durable_lsn, 1);
    }

    #[test]
    fn values_keep_their_expiry_and_binary_data() {
        let value = Value {
            data: Bytes::from_static(&[0, 255, 1]),
            expires_at_ms: Some(1_700_000_000_000),
        };
        assert_eq!(decode_value(&encode_value(&value)), Some(value));
        assert_eq!(decode_value(&[1, 2, 3]), None);
    }
}
