//! Loom models of what the paper engine shares between threads: the directory (here the
//! simulated disk, whose lock is loom's with the `loom` feature, see `crate::sync`). In the server a
//! checkpoint job runs on the snapshotter's thread (write the temporary file, fsync, rename,
//! fsync the directory, list it, delete superseded files) while the WAL writer goes on
//! appending to the segment `begin_checkpoint` started. Loom runs the real job and the real
//! appends in every interleaving of their file operations, with a power cut observed at any
//! point, and checks that recovery from each image gives exactly the state of some LSN at or
//! after the last acknowledged one, and that the live segment is never deleted.
//!
//! Run with `cargo test -p moodb-backends --features loom --lib loom`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::Path;

use bytes::Bytes;
use loom::sync::atomic::{AtomicU64, Ordering};
use moodb_core::{Backend, CheckpointJob, Databases, LogEntry, Lsn, Record, SyncPolicy};

use super::fs::SimFs;
use super::{PaperBackend, PaperTuning, SpareMode};
use crate::BackendOptions;

fn set(k: &str, v: &str) -> Record {
    Record::Set {
        key: Bytes::copy_from_slice(k.as_bytes()),
        value: Bytes::copy_from_slice(v.as_bytes()),
        expires_at_ms: None,
    }
}

fn open(fs: &SimFs) -> PaperBackend {
    let options = BackendOptions {
        sync: SyncPolicy::Always,
        ..BackendOptions::default()
    };
    let tuning = PaperTuning {
        prealloc_bytes: 512,
        spare: SpareMode::Off,
    };
    PaperBackend::open_with(
        std::sync::Arc::new(fs.clone()),
        Path::new("/db"),
        &options,
        tuning,
    )
    .unwrap()
}

#[test]
fn loom_checkpoint_job_races_appends_and_a_power_cut() {
    // records[i] has LSN i + 1; states[n] is the state after LSN n.
    let records = vec![
        set("a", "1"),
        Record::Txn(vec![set("b", "1"), set("c", "1")]),
        set("a", "2"),
        Record::Txn(vec![Record::Delete { key: "b".into() }, set("c", "2")]),
    ];
    let mut states = vec![Databases::default()];
    for r in &records {
        let mut next = states[states.len() - 1].clone();
        next.apply(r);
        states.push(next);
    }
    let checkpoint_lsn: Lsn = 2;

    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(move || {
        RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let fs = SimFs::new();
        let mut backend = open(&fs);
        backend.recover().unwrap();
        let entry = |lsn: Lsn| LogEntry {
            lsn,
            record: records[lsn as usize - 1].clone(),
        };
        backend.append(&[entry(1), entry(2)]).unwrap();
        let job: Box<dyn CheckpointJob> =
            backend.begin_checkpoint(checkpoint_lsn).unwrap().unwrap();
        let acked = loom::sync::Arc::new(AtomicU64::new(checkpoint_lsn));

        // The snapshotter's thread.
        let snapshot = states[checkpoint_lsn as usize].clone();
        let job = loom::thread::spawn(move || job.write(snapshot).map(|r| r.lsn));
        // A power cut at any moment: what was acknowledged before it must survive it.
        let cut = {
            let (fs, acked) = (fs.clone(), loom::sync::Arc::clone(&acked));
            loom::thread::spawn(move || {
                let acked = acked.load(Ordering::SeqCst);
                (acked, fs.crash_image(0))
            })
        };
        // The WAL writer goes on appending to the new segment.
        for lsn in checkpoint_lsn + 1..=records.len() as Lsn {
            backend.append(&[entry(lsn)]).unwrap();
            acked.store(lsn, Ordering::SeqCst);
        }

        assert_eq!(job.join().unwrap().unwrap(), checkpoint_lsn);
        let (acked_at_cut, image) = cut.join().unwrap();
        let recovered = open(&image).recover().unwrap();
        assert!(
            recovered.last_lsn >= acked_at_cut,
            "acknowledged lsn {acked_at_cut} lost: recovered through {}",
            recovered.last_lsn
        );
        assert_eq!(recovered.state, states[recovered.last_lsn as usize]);

        // After both finished: the checkpoint is current and the live segment still there.
        let last = records.len() as Lsn;
        let recovered = open(&fs.crash_image(0)).recover().unwrap();
        assert_eq!(recovered.last_lsn, last);
        assert_eq!(recovered.state, states[last as usize]);
        assert_eq!(
            recovered.report.checkpoint.map(|c| c.1),
            Some(checkpoint_lsn)
        );
        assert_eq!(recovered.report.records_replayed, last - checkpoint_lsn);
    });
    let runs = RUNS.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("loom explored {runs} interleavings");
    assert!(
        runs > 100,
        "the model should branch at every file operation ({runs})"
    );
}

/// The `Backend` contract lets a second checkpoint begin while the first job still runs (the
/// server does not: its one snapshotter thread runs jobs in turn). Both jobs list and delete
/// in the same directory, in any order, while appends go on: the newest checkpoint wins and
/// nothing acknowledged is lost.
#[test]
fn loom_two_checkpoint_jobs_overlap() {
    let records: Vec<Record> = (1..=5)
        .map(|i| set(&format!("k{}", i % 3), &i.to_string()))
        .collect();
    let mut states = vec![Databases::default()];
    for r in &records {
        let mut next = states[states.len() - 1].clone();
        next.apply(r);
        states.push(next);
    }
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(move || {
        let fs = SimFs::new();
        let mut backend = open(&fs);
        backend.recover().unwrap();
        let entry = |lsn: Lsn| LogEntry {
            lsn,
            record: records[lsn as usize - 1].clone(),
        };
        let mut jobs = Vec::new();
        for (from, to) in [(1, 2), (3, 4)] {
            let entries: Vec<LogEntry> = (from..=to).map(entry).collect();
            backend.append(&entries).unwrap();
            let job = backend.begin_checkpoint(to).unwrap().unwrap();
            let snapshot = states[to as usize].clone();
            jobs.push(loom::thread::spawn(move || {
                job.write(snapshot).map(|r| r.lsn)
            }));
        }
        backend.append(&[entry(5)]).unwrap();
        for job in jobs {
            job.join().unwrap().unwrap();
        }
        let recovered = open(&fs.crash_image(0)).recover().unwrap();
        assert_eq!(recovered.last_lsn, 5);
        assert_eq!(recovered.state, states[5]);
        assert_eq!(recovered.report.checkpoint.map(|c| c.1), Some(4));
    });
}
