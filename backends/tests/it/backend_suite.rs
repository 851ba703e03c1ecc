//! One behavioural test suite for every backend: each scenario below runs against every name in
//! `moodb_backends::BACKEND_NAMES`, opened through `moodb_backends::open`, and compares what the
//! backend recovers with a model `Databases` that applied the same records. What is special to
//! one backend is tested in that backend's own module.

#![allow(clippy::unwrap_used)] // tests may unwrap; helpers outside #[test] fns too

use std::path::Path;

use bytes::Bytes;
use moodb_backends::{BackendOptions, BACKEND_NAMES};
use moodb_core::{Backend, Databases, LogEntry, Lsn, Record, SyncPolicy};

/// Opens backend `name` in `dir`; a backend that fails to open fails the suite.
fn open(name: &str, dir: &Path, sync: SyncPolicy) -> Box<dyn Backend> {
    let options = BackendOptions {
        sync,
        ..BackendOptions::default()
    };
    moodb_backends::open(name, dir, &options)
        .unwrap_or_else(|err| panic!("open {name} in {dir:?}: {err}"))
}

/// A backend under test together with the model of what it must hold.
struct Subject {
    name: &'static str,
    dir: tempfile::TempDir,
    sync: SyncPolicy,
    /// `None` only while reopening.
    backend: Option<Box<dyn Backend>>,
    model: Databases,
    last_lsn: Lsn,
}

impl Subject {
    fn new(name: &'static str, sync: SyncPolicy) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut backend = open(name, dir.path(), sync);
        let recovered = backend.recover().unwrap();
        assert!(recovered.state.is_empty(), "{name}: fresh dir not empty");
        assert_eq!(recovered.last_lsn, 0, "{name}: fresh dir has an LSN");
        Subject {
            name,
            dir,
            sync,
            backend: Some(backend),
            model: Databases::default(),
            last_lsn: 0,
        }
    }

    fn backend(&mut self) -> &mut dyn Backend {
        self.backend
            .as_deref_mut()
            .unwrap_or_else(|| panic!("backend reopened"))
    }

    /// Appends `records` as one group, applying them to the model too.
    fn append(&mut self, records: Vec<Record>) {
        let entries: Vec<LogEntry> = records
            .into_iter()
            .map(|record| {
                self.last_lsn += 1;
                self.model.apply(&record);
                LogEntry {
                    lsn: self.last_lsn,
                    record,
                }
            })
            .collect();
        let name = self.name;
        self.backend()
            .append(&entries)
            .unwrap_or_else(|err| panic!("{name}: append: {err}"));
    }

    /// Closes the backend (syncing first unless every append already did) and reopens it,
    /// checking that recovery gives exactly the model and the last LSN.
    fn reopen(&mut self) {
        if self.sync != SyncPolicy::Always {
            self.backend().sync().unwrap();
        }
        // The old instance must be gone before the new one opens the same files.
        self.backend = None;
        self.backend = Some(open(self.name, self.dir.path(), self.sync));
        let recovered = self
            .backend()
            .recover()
            .unwrap_or_else(|err| panic!("{}: recover: {err}", self.name));
        assert_eq!(recovered.last_lsn, self.last_lsn, "{}: last LSN", self.name);
        assert_eq!(
            recovered.state, self.model,
            "{}: recovered state",
            self.name
        );
    }

    /// Checkpoints as of the last LSN when the backend uses checkpoints.
    fn checkpoint(&mut self) {
        let lsn = self.last_lsn;
        if let Some(job) = self.backend().begin_checkpoint(lsn).unwrap() {
            let report = job.write(self.model.clone()).unwrap();
            assert_eq!(report.lsn, self.last_lsn, "{}: checkpoint LSN", self.name);
            self.backend().checkpoint_finished(&report);
        }
    }
}

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

/// Runs `scenario` against every backend this build knows.
fn for_each_backend(sync: SyncPolicy, scenario: impl Fn(&mut Subject)) {
    for name in BACKEND_NAMES {
        scenario(&mut Subject::new(name, sync));
    }
}

#[test]
fn writes_round_trip_through_a_reopen() {
    for_each_backend(SyncPolicy::Always, |s| {
        s.append(vec![set("a", "1")]);
        s.append(vec![
            Record::Set {
                key: Bytes::from_static(b"bin\0\xff"),
                value: Bytes::from_static(b"\0\x01\x02"),
                expires_at_ms: Some(4_102_444_800_000),
            },
            set("empty", ""),
            set("", "empty key"),
            set("b", "2"),
        ]);
        s.append(vec![Record::Delete { key: b("b") }, set("a", "replaced")]);
        s.reopen();
        assert_eq!(s.model.len(), 4);
    });
}

#[test]
fn update_applies_only_to_existing_keys() {
    for_each_backend(SyncPolicy::Always, |s| {
        s.append(vec![Record::Set {
            key: b("k"),
            value: b("v"),
            expires_at_ms: Some(4_102_444_800_000),
        }]);
        s.append(vec![
            Record::Update {
                key: b("k"),
                value: b("v2"),
            },
            Record::Update {
                key: b("missing"),
                value: b("x"),
            },
        ]);
        // Within one group: set then update of a new key, update after delete.
        s.append(vec![
            set("n", "1"),
            Record::Update {
                key: b("n"),
                value: b("2"),
            },
            Record::Delete { key: b("k") },
            Record::Update {
                key: b("k"),
                value: b("ghost"),
            },
        ]);
        s.reopen();
        assert!(s.model.db0().get(b"missing").is_none() && s.model.db0().get(b"k").is_none());
    });
}

#[test]
fn clear_removes_every_key() {
    for_each_backend(SyncPolicy::Always, |s| {
        s.append((0..50).map(|i| set(&format!("k{i}"), "v")).collect());
        s.append(vec![set("x", "1"), Record::Clear, set("after", "1")]);
        s.reopen();
        assert_eq!(s.model.len(), 1);
        s.append(vec![Record::Clear]);
        s.reopen();
        assert!(s.model.is_empty());
    });
}

#[test]
fn a_transaction_is_recovered_whole() {
    for_each_backend(SyncPolicy::Always, |s| {
        s.append(vec![set("from", "10"), set("to", "0")]);
        s.append(vec![Record::Txn(vec![
            set("from", "5"),
            set("to", "5"),
            Record::Delete { key: b("tmp") },
            Record::Update {
                key: b("to"),
                value: b("6"),
            },
        ])]);
        s.append(vec![Record::Txn(vec![])]);
        s.reopen();
        assert_eq!(s.model.db0().get(b"to").map(|v| v.bytes()), Some(b("6")));
    });
}

#[test]
fn lsns_continue_after_a_reopen() {
    for_each_backend(SyncPolicy::Always, |s| {
        s.append(vec![set("a", "1"), set("b", "2")]);
        s.reopen();
        s.append(vec![set("c", "3")]);
        s.reopen();
        assert_eq!(s.last_lsn, 3);
        assert_eq!(s.backend().status().durable_lsn, 3, "{}", s.name);
    });
}

#[test]
fn sync_always_syncs_every_group() {
    for_each_backend(SyncPolicy::Always, |s| {
        let before = s.backend().status().fsyncs;
        s.append(vec![set("a", "1"), set("b", "2"), set("c", "3")]);
        s.append(vec![set("d", "4")]);
        let status = s.backend().status();
        assert_eq!(status.name, s.name);
        assert!(
            status.fsyncs >= before + 2,
            "{}: {} fsyncs",
            s.name,
            status.fsyncs
        );
        assert_eq!(status.durable_lsn, 4, "{}", s.name);
    });
}

#[test]
fn every_sync_policy_recovers_after_an_explicit_sync() {
    for sync in [
        SyncPolicy::Never,
        SyncPolicy::Every(std::time::Duration::from_millis(20)),
    ] {
        for_each_backend(sync, |s| {
            s.append((0..20).map(|i| set(&format!("k{i}"), "v")).collect());
            s.append(vec![Record::Delete { key: b("k3") }]);
            s.reopen();
        });
    }
}

#[test]
fn checkpoints_and_later_appends_are_recovered() {
    for_each_backend(SyncPolicy::Always, |s| {
        s.append((0..100).map(|i| set(&format!("k{i}"), "before")).collect());
        s.checkpoint();
        s.append(vec![set("k1", "after"), Record::Delete { key: b("k2") }]);
        s.reopen();
        s.checkpoint();
        s.reopen();
        s.append(vec![set("k3", "last")]);
        s.reopen();
    });
}

/// A small deterministic generator (splitmix64), so failures replay.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn op(&mut self) -> Record {
        let key = Bytes::from(format!("key{}", self.below(40)));
        let value = Bytes::from(vec![self.below(256) as u8; self.below(64) as usize]);
        match self.below(100) {
            0..=54 => Record::Set {
                key,
                value,
                expires_at_ms: (self.below(4) == 0).then(|| 1 + self.below(1 << 40)),
            },
            55..=74 => Record::Update { key, value },
            75..=98 => Record::Delete { key },
            _ => Record::Clear,
        }
    }

    /// An operation in one of four databases, now and then a SWAPDB or a FLUSHALL.
    fn op_in_db(&mut self) -> Record {
        match self.below(60) {
            0..=1 => Record::SwapDb {
                a: self.below(4) as u16,
                b: self.below(4) as u16,
            },
            2 => Record::ClearAll,
            _ => {
                let db = self.below(4) as u16;
                Record::in_db(db, self.op())
            }
        }
    }
}

#[test]
fn every_database_is_recovered_with_its_own_keys() {
    for seed in 1..=3u64 {
        for_each_backend(SyncPolicy::Always, |s| {
            random_history(s, seed, Rng::op_in_db);
            assert!(
                s.model.highest_used() > Some(0),
                "the history used several databases"
            );
        });
    }
}

#[test]
fn random_histories_are_recovered_exactly() {
    for seed in 1..=3u64 {
        for_each_backend(SyncPolicy::Always, |s| random_history(s, seed, Rng::op));
    }
}

/// Four rounds of ten random groups of records made by `op` (some joined into transactions),
/// a checkpoint every second round and a reopen after each: the suite checks every recovery
/// against its model.
fn random_history(s: &mut Subject, seed: u64, op: fn(&mut Rng) -> Record) {
    let mut rng = Rng(seed);
    for round in 0..4 {
        for _ in 0..10 {
            let group = (0..1 + rng.below(8))
                .map(|_| {
                    if rng.below(6) == 0 {
                        Record::Txn((0..rng.below(4)).map(|_| op(&mut rng)).collect())
                    } else {
                        op(&mut rng)
                    }
                })
                .collect();
            s.append(group);
        }
        if round % 2 == 1 {
            s.checkpoint();
        }
        s.reopen();
    }
}
