//! The paper backend on real files in a temporary directory: round trips with group commit and
//! expiry, checkpoints while appends go on, torn tails, mid-log damage and salvage, damaged
//! checkpoints, misuse, and arbitrary bytes in place of its files (never a panic).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use bytes::Bytes;
use moodb_backends::paper::files::SPARE_NAME;
use moodb_backends::paper::fs::{Fs, StdFs};
use moodb_backends::paper::log::LogScanner;
use moodb_backends::paper::{FileKind, PaperBackend, PaperTuning, SpareMode};
use moodb_backends::BackendOptions;
use moodb_core::{Backend, LogEntry, Record, StorageError, SyncPolicy};
use proptest::prelude::*;

fn open(dir: &Path, options: &BackendOptions) -> PaperBackend {
    PaperBackend::open(dir, options).unwrap()
}

fn sample_groups() -> Vec<Vec<Record>> {
    let mut groups = vec![
        vec![set("a", "1")],
        vec![Record::Set {
            key: Bytes::from_static(b"exp"),
            value: Bytes::from_static(b"soon"),
            expires_at_ms: Some(1_700_000_000_000),
        }],
        vec![Record::Txn(vec![
            set("b", "2"),
            Record::Delete {
                key: Bytes::from_static(b"a"),
            },
        ])],
    ];
    groups.push(
        (0..64)
            .map(|i| set(&format!("k{i}"), &format!("v{i}")))
            .collect(),
    );
    groups
}

#[test]
fn appends_survive_a_reopen_with_expiry_and_one_sync_per_group() {
    let tmp = tempfile::tempdir().unwrap();
    let mut backend = open(tmp.path(), &BackendOptions::default());
    let recovered = backend.recover().unwrap();
    assert_eq!(recovered.last_lsn, 0);
    assert!(recovered.state.is_empty());
    let mut model = Model::default();
    let before = backend.status().fsyncs;
    append_groups(&mut backend, &mut model, &sample_groups());
    let status = backend.status();
    assert_eq!(
        status.fsyncs - before,
        4,
        "one fdatasync per append, 64 records included"
    );
    assert_eq!(status.durable_lsn, model.last_lsn());
    assert!(status.log_bytes > 0);
    drop(backend);

    let mut again = open(tmp.path(), &BackendOptions::default());
    let recovered = again.recover().unwrap();
    assert_eq!(&recovered.state, model.current());
    assert_eq!(recovered.last_lsn, model.last_lsn());
    assert_eq!(recovered.report.records_replayed, model.last_lsn());
    assert_eq!(recovered.report.bytes_truncated, 0);
    assert_eq!(
        recovered.state.db0().get(b"exp").unwrap().expires_at_ms,
        Some(1_700_000_000_000)
    );
}

/// Recovery reads a segment without its zero tail (`Fs::read_into`): a last record whose value
/// ends in zeros, more of them than the piece the tail is searched with, is still read whole,
/// and so is one after a damaged record.
#[test]
fn records_ending_in_zero_bytes_are_recovered_whole() {
    let zeros = |n: usize| Record::Set {
        key: Bytes::from_static(b"z"),
        value: Bytes::from(vec![0u8; n]),
        expires_at_ms: None,
    };
    // A data directory holding `groups`, and the state they make.
    let written = |groups: &[Vec<Record>]| {
        let tmp = tempfile::tempdir().unwrap();
        let mut backend = open(tmp.path(), &BackendOptions::default());
        backend.recover().unwrap();
        let mut model = Model::default();
        append_groups(&mut backend, &mut model, groups);
        (tmp, model)
    };
    let (tmp, model) = written(&[vec![set("a", "1")], vec![zeros(3 << 20)]]);
    let recovered = open(tmp.path(), &BackendOptions::default())
        .recover()
        .unwrap();
    assert_eq!(&recovered.state, model.current());
    assert_eq!(recovered.report.bytes_truncated, 0);

    // Damage in an earlier group (a zeroed length: the chain of record lengths breaks there),
    // a record of zeros after it: mid-log damage, not a torn tail.
    let (tmp, _) = written(&[
        vec![set("a", "1")],
        vec![set("b", "2")],
        vec![zeros(3 << 20)],
    ]);
    let log = tmp.path().join(FileKind::Log(1).name());
    let second = scan(&log)[1].offset;
    let mut bytes = std::fs::read(&log).unwrap();
    bytes[second as usize..second as usize + 4].fill(0);
    std::fs::write(&log, &bytes).unwrap();
    match open(tmp.path(), &BackendOptions::default()).recover() {
        Err(StorageError::Corrupt { offset, .. }) => assert_eq!(offset, second),
        other => panic!("expected mid-log damage at {second}, got {other:?}"),
    }
}

#[test]
fn a_checkpoint_runs_on_another_thread_while_appends_go_on() {
    let tmp = tempfile::tempdir().unwrap();
    let mut backend = open(tmp.path(), &BackendOptions::default());
    backend.recover().unwrap();
    let mut model = Model::default();
    append_groups(&mut backend, &mut model, &sample_groups());
    let lsn = model.last_lsn();
    let job = backend.begin_checkpoint(lsn).unwrap().unwrap();
    let snapshot = model.current().clone();
    let worker = std::thread::spawn(move || job.write(snapshot));
    append_groups(
        &mut backend,
        &mut model,
        &[vec![set("after", "ckpt")], vec![set("a", "9")]],
    );
    let report = worker.join().unwrap().unwrap();
    assert_eq!(report.lsn, lsn);
    assert_eq!(report.keys, model.state(lsn).len() as u64);
    backend.checkpoint_finished(&report);
    assert_eq!(backend.status().last_checkpoint_lsn, Some(lsn));
    assert!(backend.status().last_checkpoint_unix_ms.is_some());

    let mut names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            FileKind::Checkpoint(lsn).name(),
            FileKind::Log(lsn + 1).name()
        ],
        "old files deleted"
    );
    drop(backend);

    let mut again = open(tmp.path(), &BackendOptions::default());
    let recovered = again.recover().unwrap();
    assert_eq!(&recovered.state, model.current());
    assert_eq!(recovered.report.checkpoint.as_ref().map(|c| c.1), Some(lsn));
    assert_eq!(
        recovered.report.checkpoint_keys,
        model.state(lsn).len() as u64
    );
    assert_eq!(recovered.report.records_replayed, 2);
    assert_eq!(again.status().last_checkpoint_lsn, Some(lsn));
}

fn write_log(dir: &Path, groups: &[Vec<Record>]) -> (Model, std::path::PathBuf) {
    let mut backend = open(dir, &BackendOptions::default());
    backend.recover().unwrap();
    let mut model = Model::default();
    append_groups(&mut backend, &mut model, groups);
    (model, dir.join(FileKind::Log(1).name()))
}

fn scan(path: &Path) -> Vec<moodb_backends::paper::log::ScannedRecord> {
    let bytes = std::fs::read(path).unwrap();
    moodb_backends::paper::log::LogScanner::new(&bytes)
        .unwrap()
        .collect()
}

#[test]
fn a_torn_tail_is_cut_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let (model, path) = write_log(tmp.path(), &sample_groups());
    let records = scan(&path);
    let last = records.last().unwrap();
    // Tear the last record in half; the zero tail of the preallocated file stays.
    let bytes = std::fs::read(&path).unwrap();
    let mut torn = bytes.clone();
    let half = (last.offset + last.len / 2) as usize;
    torn[half..(last.offset + last.len) as usize].fill(0);
    std::fs::write(&path, &torn).unwrap();
    let mut backend = open(tmp.path(), &BackendOptions::default());
    let recovered = backend.recover().unwrap();
    assert_eq!(recovered.last_lsn, last.lsn - 1);
    assert_eq!(&recovered.state, model.state(last.lsn - 1));
    assert_eq!(recovered.report.bytes_truncated, half as u64 - last.offset);
    assert!(recovered.report.to_string().contains("truncated"));
    // The cut file accepts the next record where the torn one was.
    backend
        .append(&[LogEntry {
            lsn: last.lsn,
            record: set("z", "z"),
        }])
        .unwrap();
    assert_eq!(scan(&path).last().unwrap().offset, last.offset);
}

#[test]
fn mid_log_damage_is_an_error_naming_file_and_offset_unless_salvaged() {
    let tmp = tempfile::tempdir().unwrap();
    let (model, path) = write_log(tmp.path(), &sample_groups());
    let records = scan(&path);
    let victim = &records[1];
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[(victim.offset + 22) as usize] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();

    let err = open(tmp.path(), &BackendOptions::default())
        .recover()
        .unwrap_err();
    match &err {
        StorageError::Corrupt {
            file,
            offset,
            reason,
        } => {
            assert_eq!(file, &path);
            assert_eq!(*offset, victim.offset);
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(err
        .to_string()
        .contains(&format!("offset {}", victim.offset)));

    let mut salvaging = open(tmp.path(), &salvage());
    let recovered = salvaging.recover().unwrap();
    assert_eq!(&recovered.state, model.state(victim.lsn - 1));
    let note = recovered.report.salvaged.clone().unwrap();
    assert!(
        note.contains(&format!("offset {}", victim.offset)),
        "{note}"
    );
    assert!(tmp.path().join(FileKind::LogDamaged(1).name()).exists());
    drop(salvaging);
    // After salvage the log is clean again.
    let recovered = open(tmp.path(), &BackendOptions::default())
        .recover()
        .unwrap();
    assert_eq!(recovered.last_lsn, victim.lsn - 1);
}

#[test]
fn a_damaged_checkpoint_is_detected_never_half_loaded() {
    let tmp = tempfile::tempdir().unwrap();
    let mut backend = open(tmp.path(), &BackendOptions::default());
    backend.recover().unwrap();
    let mut model = Model::default();
    append_groups(&mut backend, &mut model, &sample_groups());
    let lsn = model.last_lsn();
    let job = backend.begin_checkpoint(lsn).unwrap().unwrap();
    job.write(model.current().clone()).unwrap();
    drop(backend);
    let path = tmp.path().join(FileKind::Checkpoint(lsn).name());
    let good = std::fs::read(&path).unwrap();
    for at in (0..good.len()).step_by(7) {
        let mut bad = good.clone();
        bad[at] ^= 0x01;
        std::fs::write(&path, &bad).unwrap();
        match open(tmp.path(), &BackendOptions::default()).recover() {
            Err(StorageError::Corrupt { file, .. }) => assert_eq!(file, path),
            other => panic!("flip at {at}: expected Corrupt, got {other:?}"),
        }
    }
    std::fs::write(&path, &good[..good.len() - 1]).unwrap();
    assert!(open(tmp.path(), &BackendOptions::default())
        .recover()
        .is_err());
    std::fs::write(&path, &good).unwrap();
    let recovered = open(tmp.path(), &BackendOptions::default())
        .recover()
        .unwrap();
    assert_eq!(&recovered.state, model.current());
}

#[test]
fn misuse_is_refused_with_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let mut backend = open(tmp.path(), &BackendOptions::default());
    let entry = |lsn| LogEntry {
        lsn,
        record: set("a", "1"),
    };
    assert!(matches!(
        backend.append(&[entry(1)]),
        Err(StorageError::InvalidInput(_))
    ));
    backend.recover().unwrap();
    assert!(backend.recover().is_err());
    backend.append(&[entry(1)]).unwrap();
    assert!(matches!(
        backend.append(&[entry(1)]),
        Err(StorageError::InvalidInput(_))
    ));
    assert!(matches!(
        backend.begin_checkpoint(7),
        Err(StorageError::InvalidInput(_))
    ));
    // A refused input is not a storage failure: the backend goes on.
    backend.append(&[entry(2)]).unwrap();
}

#[test]
fn sync_policies_never_and_every_defer_the_sync() {
    let tmp = tempfile::tempdir().unwrap();
    for (sync, synced) in [
        (SyncPolicy::Never, false),
        (
            SyncPolicy::Every(std::time::Duration::from_secs(3600)),
            false,
        ),
        (SyncPolicy::Always, true),
    ] {
        let dir = tmp.path().join(sync.to_string().replace(':', "_"));
        let options = BackendOptions {
            sync,
            ..BackendOptions::default()
        };
        let mut backend = open(&dir, &options);
        backend.recover().unwrap();
        let report = backend
            .append(&[LogEntry {
                lsn: 1,
                record: set("a", "1"),
            }])
            .unwrap();
        assert_eq!(report.synced, synced, "{sync}");
        assert_eq!(backend.status().durable_lsn, u64::from(synced));
        backend.sync().unwrap();
        assert_eq!(backend.status().durable_lsn, 1);
    }
}

/// The log files in `dir`: (first LSN, file length), ascending.
fn segments(dir: &Path) -> Vec<(u64, u64)> {
    let mut logs: Vec<(u64, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            match FileKind::parse(e.file_name().to_str()?) {
                Some(FileKind::Log(first)) => Some((first, e.metadata().unwrap().len())),
                _ => None,
            }
        })
        .collect();
    logs.sort_unstable();
    logs
}

/// Spare segments on real files: a thread zeroes one ahead of need, the log moves on to it
/// (when the active segment was not pre-zeroed or is full), the segment sizes add up in
/// `log_bytes`, recovery replays every segment and removes a leftover spare, and a checkpoint
/// supersedes the rolled segments.
#[test]
fn the_log_rolls_onto_pre_zeroed_spares_and_recovers_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let tuning = PaperTuning {
        prealloc_bytes: 64 << 10,
        spare: SpareMode::Background,
    };
    let options = BackendOptions::default();
    let mut backend = PaperBackend::open_with(Arc::new(StdFs), dir, &options, tuning).unwrap();
    backend.recover().unwrap();
    let mut model = Model::default();
    let value = "v".repeat(200);
    let deadline = Instant::now() + Duration::from_secs(30);
    while segments(dir).len() < 4 {
        assert!(
            Instant::now() < deadline,
            "no spare taken in 30 s: {:?}",
            segments(dir)
        );
        let group: Vec<Record> = (0..10).map(|i| set(&format!("k{i}"), &value)).collect();
        append_groups(&mut backend, &mut model, &[group]);
    }
    let logs = segments(dir);
    // Every segment after the first was a spare: made at the spare size.
    assert!(
        logs[1..].iter().all(|(_, len)| *len >= 64 << 10),
        "{logs:?}"
    );
    let valid: u64 = logs
        .iter()
        .map(|(first, _)| {
            let bytes = std::fs::read(dir.join(FileKind::Log(*first).name())).unwrap();
            LogScanner::new(&bytes).unwrap().finish().valid_end()
        })
        .sum();
    assert_eq!(backend.status().log_bytes, valid);
    drop(backend);

    std::fs::write(dir.join(SPARE_NAME), b"half a spare").unwrap();
    let mut backend = open(dir, &options);
    let recovered = backend.recover().unwrap();
    assert_eq!(recovered.last_lsn, model.last_lsn());
    assert_eq!(&recovered.state, model.current());
    assert!(
        !dir.join(SPARE_NAME).exists(),
        "recovery removes a leftover spare"
    );

    let job = backend.begin_checkpoint(model.last_lsn()).unwrap().unwrap();
    job.write(model.current().clone()).unwrap();
    assert_eq!(segments(dir).len(), 1, "{:?}", segments(dir));
    let again = open(dir, &options).recover().unwrap();
    assert_eq!(&again.state, model.current());
}

/// LSNs may skip numbers; a segment the log rolls to still starts right after the last record
/// written, so recovery sees no gap between segments.
#[test]
fn a_roll_after_skipped_lsns_recovers_every_record() {
    let fs = moodb_backends::paper::fs::SimFs::new();
    let mut backend = open_sim_with(&fs, &BackendOptions::default(), rolling_tuning());
    backend.recover().unwrap();
    let mut expected = moodb_core::Databases::default();
    let mut lsn = 0;
    for i in 0..40 {
        lsn += 1 + i % 3;
        let record = set(&format!("k{i}"), &"v".repeat(40));
        expected.apply(&record);
        backend.append(&[LogEntry { lsn, record }]).unwrap();
    }
    let logs = fs
        .list_dir(Path::new(DIR))
        .unwrap()
        .into_iter()
        .filter(|n| matches!(FileKind::parse(n), Some(FileKind::Log(_))))
        .count();
    assert!(logs > 2, "the history rolled: {logs} segments");
    let recovered = open_sim(&fs, &BackendOptions::default()).recover().unwrap();
    assert_eq!(recovered.last_lsn, lsn);
    assert_eq!(recovered.state, expected);
}

/// `StdFs::read` skips copying a zero tail but returns exactly what `std::fs::read` does.
#[test]
fn reading_a_file_with_a_zero_tail_gives_every_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("f");
    let mib = 1 << 20;
    for (len, data) in [
        (0, 0..0),
        (10, 0..0),
        (10, 0..10),
        (mib + 7, 3..5),
        (3 * mib, 0..mib),
        (3 * mib, mib - 1..mib + 1),
        (3 * mib + 100, 2 * mib + 50..2 * mib + 51),
        (3 * mib, 3 * mib - 1..3 * mib),
    ] {
        let mut bytes = vec![0u8; len];
        bytes[data.clone()].iter_mut().for_each(|b| *b = 0xa5);
        std::fs::write(&path, &bytes).unwrap();
        let read = StdFs.read(&path).unwrap();
        assert!(read == bytes, "len {len}, data {data:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_as_files_give_errors_never_panics(
        junk in proptest::collection::vec(any::<u8>(), 0..300),
        keep_header in any::<bool>(),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = Vec::new();
        if keep_header {
            log.extend_from_slice(&moodb_backends::paper::log::LogHeader {
                version: 1,
                first_lsn: 1,
            }.encode());
        }
        log.extend_from_slice(&junk);
        std::fs::write(tmp.path().join(FileKind::Log(1).name()), &log).unwrap();
        let _ = open(tmp.path(), &BackendOptions::default()).recover();
        let _ = open(tmp.path(), &salvage()).recover();
        std::fs::write(tmp.path().join(FileKind::Checkpoint(3).name()), &junk).unwrap();
        let _ = open(tmp.path(), &BackendOptions::default()).recover();
    }
}
