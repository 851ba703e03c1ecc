//! Recovery bugs found by the fuzz targets (fuzz/), each as a readable directory image: a gap
//! between log segments, and LSN 2^64-1 in a checkpoint or a record. The raw fuzz inputs are
//! also kept in fuzz/regressions/ and replayed by fuzz_corpus.rs.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use crate::common::*;
use bytes::Bytes;
use moodb_backends::paper::checkpoint::encode_checkpoint;
use moodb_backends::paper::fs::SimFs;
use moodb_backends::paper::log::{encode_record, LogEnd, LogHeader, LogScanner, LOG_VERSION};
use moodb_backends::paper::FileKind;
use moodb_backends::BackendOptions;
use moodb_core::{Backend, Databases, LogEntry, Lsn, Record, StorageError};

fn log_file(first_lsn: Lsn, records: &[(Lsn, Record)]) -> Vec<u8> {
    let mut out = LogHeader {
        version: LOG_VERSION,
        first_lsn,
    }
    .encode()
    .to_vec();
    for (lsn, record) in records {
        encode_record(&mut out, *lsn, 0, record);
    }
    out
}

fn empty_checkpoint(lsn: Lsn) -> Vec<u8> {
    let state = Databases::default();
    encode_checkpoint(lsn, 0, 0, state.entries()).unwrap()
}

fn corrupt_reason(err: StorageError) -> String {
    match err {
        StorageError::Corrupt { reason, .. } => reason,
        other => panic!("expected a corruption error, got {other}"),
    }
}

/// Found by `paper_recover`: checkpoint 3, then segments starting at 1 (records up to 3), 10
/// and 20. Recovery used to open log-20 for appending and write LSN 4 into it; the next
/// recovery dropped that acknowledged record as out of order.
#[test]
fn a_gap_between_log_segments_is_damage_not_a_place_to_append() {
    let fs = SimFs::new();
    fs.put_file(
        &dir().join(FileKind::Checkpoint(3).name()),
        &empty_checkpoint(3),
    );
    let records: Vec<(Lsn, Record)> = (1..=3).map(|l| (l, set(&format!("k{l}"), "v"))).collect();
    fs.put_file(&dir().join(FileKind::Log(1).name()), &log_file(1, &records));
    fs.put_file(&dir().join(FileKind::Log(10).name()), &log_file(10, &[]));
    fs.put_file(&dir().join(FileKind::Log(20).name()), &log_file(20, &[]));

    let err = open_sim(&fs, &BackendOptions::default())
        .recover()
        .unwrap_err();
    assert!(
        corrupt_reason(err).contains("starts at lsn 10 but the records before it end at lsn 3"),
        "the error names the gap"
    );

    // Salvage keeps what is before the gap, sets the rest aside, and appends after lsn 3.
    let mut backend = open_sim(&fs, &salvage());
    let recovered = backend.recover().unwrap();
    assert_eq!(recovered.last_lsn, 3);
    assert!(recovered.report.salvaged.is_some());
    assert!(fs.file(&dir().join(FileKind::Log(10).name())).is_none());
    assert!(fs
        .file(&dir().join(FileKind::LogDiscarded(20).name()))
        .is_some());
    let record = set("after", "gap");
    backend
        .append(&[LogEntry {
            lsn: 4,
            record: record.clone(),
        }])
        .unwrap();
    let again = open_sim(&fs, &BackendOptions::default()).recover().unwrap();
    assert_eq!(again.last_lsn, 4);
    assert_eq!(
        again.state.db0().get(b"after").unwrap().data,
        Bytes::from("gap")
    );
}

/// Found by `paper_recover`: a checkpoint named and headed with LSN 2^64-1 made recovery
/// overflow computing the next LSN.
#[test]
fn a_checkpoint_at_the_last_lsn_is_refused() {
    let fs = SimFs::new();
    fs.put_file(
        &dir().join(FileKind::Checkpoint(Lsn::MAX).name()),
        &empty_checkpoint(Lsn::MAX),
    );
    let err = open_sim(&fs, &BackendOptions::default())
        .recover()
        .unwrap_err();
    assert!(corrupt_reason(err).contains("no room for another record"));
}

/// A log record with LSN 2^64-1 leaves no LSN for the next append.
#[test]
fn a_record_at_the_last_lsn_is_refused() {
    let fs = SimFs::new();
    let records = [(1, set("a", "1")), (Lsn::MAX, set("b", "2"))];
    fs.put_file(&dir().join(FileKind::Log(1).name()), &log_file(1, &records));
    let err = open_sim(&fs, &BackendOptions::default())
        .recover()
        .unwrap_err();
    assert!(corrupt_reason(err).contains("no room for another record"));
}

/// Found by `paper_recover`: recovery ending at lsn 2^64-2 let the backend append lsn 2^64-1,
/// which the next recovery refuses. The append is refused instead.
#[test]
fn an_append_of_the_last_lsn_is_refused() {
    let fs = SimFs::new();
    let records = [(Lsn::MAX - 1, set("a", "1"))];
    fs.put_file(&dir().join(FileKind::Log(1).name()), &log_file(1, &records));
    let mut backend = open_sim(&fs, &BackendOptions::default());
    assert_eq!(backend.recover().unwrap().last_lsn, Lsn::MAX - 1);
    let err = backend
        .append(&[LogEntry {
            lsn: Lsn::MAX,
            record: set("b", "2"),
        }])
        .unwrap_err();
    assert!(matches!(err, StorageError::InvalidInput(_)), "{err}");
}

/// Found by `log_scan`: a record after one with lsn 2^64-1 made the scanner overflow computing
/// the next expected lsn; it is out-of-order damage.
#[test]
fn the_scanner_treats_a_record_after_the_last_lsn_as_damage() {
    let records = [(Lsn::MAX, set("a", "1")), (5, set("b", "2"))];
    let bytes = log_file(1, &records);
    let mut scanner = LogScanner::new(&bytes).unwrap();
    assert_eq!(scanner.by_ref().count(), 1);
    match scanner.finish() {
        LogEnd::TornTail { reason, .. } | LogEnd::MidLogDamage { reason, .. } => {
            assert!(reason.contains("out of order"), "{reason}")
        }
        end => panic!("expected damage, got {end:?}"),
    }
}

/// Found reviewing the scanner for the fuzz targets: after damage, every probed offset checked
/// whether the rest of the file was zeros by reading up to its last non-zero byte, so a zero run
/// before a stray byte took quadratic time (256 KiB: 64 s; a torn multi-page group write leaves
/// such runs). The scan is now linear: this 4 MiB run is classified in milliseconds (it took
/// hours before).
#[test]
fn a_long_zero_run_before_a_stray_byte_is_a_torn_tail() {
    let mut bytes = log_file(1, &[(1, set("a", "1"))]);
    let damage = bytes.len();
    bytes.extend_from_slice(&[100, 0, 0, 0, 1, 2, 3, 4]);
    bytes.resize(damage + (4 << 20), 0);
    bytes.push(1);
    let mut scanner = LogScanner::new(&bytes).unwrap();
    assert_eq!(scanner.by_ref().count(), 1);
    match scanner.finish() {
        LogEnd::TornTail {
            offset,
            damaged_bytes,
            ..
        } => {
            assert_eq!(offset, damage as u64);
            assert_eq!(damaged_bytes, (bytes.len() - damage) as u64);
        }
        end => panic!("expected a torn tail, got {end:?}"),
    }
}
