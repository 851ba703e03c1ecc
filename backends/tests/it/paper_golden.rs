//! Golden tests pinning the paper engine's file formats (FORMAT.md) byte by byte: a hex dump of
//! a small log written by the backend and of a small checkpoint, plus the messages an operator
//! reads when recovery meets damage. A change to any of them must be deliberate.
//!
//! Version 1 of both formats (before databases) is still read: its files are written here by
//! the same encoders at version 1 (`LogHeader { version: 1 }`, `encode_checkpoint_version`),
//! pinned by the snapshots the version 1 build had (so the fixture is exactly what it wrote),
//! and recovered.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::fmt::Write;

use crate::common::*;
use bytes::Bytes;
use moodb_backends::paper::checkpoint::{
    encode_checkpoint, encode_checkpoint_version, CheckpointReader, CHECKPOINT_VERSION_1,
    CHECKPOINT_VERSION_2,
};
use moodb_backends::paper::fs::SimFs;
use moodb_backends::paper::log::{encode_record, LogEnd, LogHeader, LogScanner, LOG_VERSION};
use moodb_backends::paper::FileKind;
use moodb_backends::BackendOptions;
use moodb_core::value_store::ValuePtr;
use moodb_core::{Backend, Databases, LogEntry, Record, Value};

fn hexdump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        let ascii: String = chunk
            .iter()
            .map(|b| {
                if b.is_ascii_graphic() {
                    *b as char
                } else {
                    '.'
                }
            })
            .collect();
        writeln!(out, "{:08x}  {:<47}  {ascii}", i * 16, hex.join(" ")).unwrap();
    }
    out
}

/// The groups of the small log: database 0 only, as version 1 could hold.
fn small_log_groups() -> Vec<Vec<Record>> {
    vec![
        vec![Record::Set {
            key: Bytes::from_static(b"k"),
            value: Bytes::from_static(b"v1"),
            expires_at_ms: Some(0x0102_0304_0506),
        }],
        vec![
            Record::Txn(vec![
                Record::Update {
                    key: Bytes::from_static(b"k"),
                    value: Bytes::from_static(b"v2"),
                },
                Record::Delete {
                    key: Bytes::from_static(b"x"),
                },
            ]),
            Record::Clear,
        ],
    ]
}

fn small_log() -> Vec<u8> {
    let fs = SimFs::new();
    let mut backend = open_sim(&fs, &BackendOptions::default());
    backend.recover().unwrap();
    let mut model = Model::default();
    append_groups(&mut backend, &mut model, &small_log_groups());
    let bytes = fs.file(&dir().join(FileKind::Log(1).name())).unwrap();
    let end = LogScanner::new(&bytes).unwrap().finish();
    assert_eq!(end, LogEnd::Clean { valid_end: 136 });
    bytes[..end.valid_end() as usize].to_vec()
}

#[test]
fn log_format_is_pinned() {
    insta::assert_snapshot!(hexdump(&small_log()));
}

/// The same records in a version 1 segment, as the version 1 build wrote it.
fn small_log_version_1() -> Vec<u8> {
    let mut out = LogHeader {
        version: 1,
        first_lsn: 1,
    }
    .encode()
    .to_vec();
    let mut lsn = 0;
    for group in small_log_groups() {
        for (i, record) in group.iter().enumerate() {
            lsn += 1;
            encode_record(&mut out, lsn, i as u32, record);
        }
    }
    out
}

#[test]
fn log_with_databases_is_pinned() {
    let fs = SimFs::new();
    let mut backend = open_sim(&fs, &BackendOptions::default());
    backend.recover().unwrap();
    let mut model = Model::default();
    let k = || Bytes::from_static(b"k");
    let groups = vec![vec![
        Record::in_db(
            3,
            Record::Set {
                key: k(),
                value: Bytes::from_static(b"v"),
                expires_at_ms: None,
            },
        ),
        Record::Txn(vec![
            Record::in_db(3, Record::Delete { key: k() }),
            Record::Set {
                key: k(),
                value: Bytes::from_static(b"v"),
                expires_at_ms: None,
            },
        ]),
        Record::SwapDb { a: 0, b: 15 },
        Record::in_db(15, Record::Clear),
        Record::ClearAll,
    ]];
    append_groups(&mut backend, &mut model, &groups);
    let bytes = fs.file(&dir().join(FileKind::Log(1).name())).unwrap();
    let end = LogScanner::new(&bytes).unwrap().finish();
    let bytes = &bytes[..end.valid_end() as usize];
    let kinds: Vec<String> = LogScanner::new(bytes)
        .unwrap()
        .map(|r| format!("{:?}", r.record))
        .collect();
    insta::assert_snapshot!(format!("{}\n{}", kinds.join("\n"), hexdump(bytes)));
}

fn small_checkpoint_entries() -> [(Bytes, Value); 2] {
    [
        (
            Bytes::from_static(b"a"),
            Value::new(Bytes::from_static(b"1")),
        ),
        (
            Bytes::from_static(b"bb"),
            Value {
                data: Bytes::from_static(b"22"),
                expires_at_ms: Some(1_700_000_000_000),
            },
        ),
    ]
}

/// Version 2 (databases, no pointers): what the build before value segments wrote, still
/// read.
#[test]
fn checkpoint_format_is_pinned() {
    let entries = small_checkpoint_entries();
    let bytes = encode_checkpoint_version(
        CHECKPOINT_VERSION_2,
        7,
        1_700_000_000_123,
        2,
        entries.iter().map(|(k, v)| (0, k, v)),
    )
    .unwrap();
    let reader = CheckpointReader::new(&bytes).unwrap();
    assert_eq!(reader.verify().unwrap(), 2);
    insta::assert_snapshot!(hexdump(&bytes));
}

#[test]
fn checkpoint_with_databases_is_pinned() {
    let entries = small_checkpoint_entries();
    let in_dbs = [
        (0, &entries[0].0, &entries[0].1),
        (5, &entries[1].0, &entries[1].1),
    ];
    let bytes = encode_checkpoint_version(
        CHECKPOINT_VERSION_2,
        7,
        1_700_000_000_123,
        2,
        in_dbs.into_iter(),
    )
    .unwrap();
    let loaded = CheckpointReader::new(&bytes).unwrap().load().unwrap();
    assert_eq!(
        (loaded.db0().len(), loaded.get(5).map(|ks| ks.len())),
        (1, Some(1))
    );
    insta::assert_snapshot!(hexdump(&bytes));
}

/// Version 3: an inline value and a spilled one (its pointer instead of its bytes).
#[test]
fn checkpoint_with_pointers_is_pinned() {
    let ptr = ValuePtr {
        segment: 2,
        offset: 0x1234,
        len: 5000,
        crc: 0xcafe_f00d,
    };
    let mut state = Databases::default();
    state.db_mut(0).put(b"a", b"1", None);
    state
        .db_mut(0)
        .put_spilled(b"big", ptr, Some(1_700_000_000_000));
    let mut entries: Vec<_> = state.entries().collect();
    entries.sort_by_key(|(_, k, _)| k.to_vec());
    let bytes = encode_checkpoint(7, 1_700_000_000_123, 2, entries.into_iter()).unwrap();
    let reader = CheckpointReader::new(&bytes).unwrap();
    assert_eq!(reader.header().version, 3);
    let loaded = reader.load().unwrap();
    assert_eq!(loaded.db0().spilled(b"big"), Some(ptr));
    assert_eq!(
        loaded.db0().get(b"a").map(|v| v.data.to_vec()),
        Some(b"1".to_vec())
    );
    let listed: Vec<_> = reader.entries_with_pointers().map(Result::unwrap).collect();
    assert_eq!(listed[1].3, Some(ptr));
    // Version 2 cannot hold a pointer.
    let again: Vec<_> = state.entries().collect();
    assert!(encode_checkpoint_version(CHECKPOINT_VERSION_2, 7, 0, 2, again.into_iter()).is_err());
    insta::assert_snapshot!(hexdump(&bytes));
}

/// A value segment: header, then (length, CRC32C, bytes) per value.
#[test]
fn value_segment_format_is_pinned() {
    use moodb_backends::paper::values::{check_segment, segment_name, PaperValues};
    use moodb_core::value_store::ValueStore;
    let dir = tempfile::tempdir().unwrap();
    let values = PaperValues::open(dir.path()).unwrap();
    let a = values.put(b"hello, value").unwrap();
    let b = values.put(&[0xabu8; 20]).unwrap();
    values.sync().unwrap();
    assert_eq!((a.offset, b.offset), (16, 36));
    let bytes = std::fs::read(dir.path().join(segment_name(0))).unwrap();
    let check = check_segment(&segment_name(0), &bytes).unwrap();
    assert_eq!(
        (check.values, check.value_bytes, check.torn_bytes),
        (2, 32, 0)
    );
    insta::assert_snapshot!(hexdump(&bytes));
}

#[test]
fn version_1_files_are_byte_for_byte_what_the_version_1_build_wrote() {
    insta::assert_snapshot!("log_format_version_1", hexdump(&small_log_version_1()));
    let entries = small_checkpoint_entries();
    let v1 = encode_checkpoint_version(
        CHECKPOINT_VERSION_1,
        7,
        1_700_000_000_123,
        2,
        entries.iter().map(|(k, v)| (0, k, v)),
    )
    .unwrap();
    insta::assert_snapshot!("checkpoint_format_version_1", hexdump(&v1));
    // Version 1 holds database 0 only.
    let other_db = [(1, &entries[0].0, &entries[0].1)];
    assert!(
        encode_checkpoint_version(CHECKPOINT_VERSION_1, 7, 0, 1, other_db.into_iter()).is_err()
    );
}

#[test]
fn a_version_1_data_directory_recovers_and_new_records_go_to_a_version_2_segment() {
    let fs = SimFs::new();
    // checkpoint-3 (version 1) with a and bb; log-4 (version 1) with two records after it.
    let entries = small_checkpoint_entries();
    let checkpoint = encode_checkpoint_version(
        CHECKPOINT_VERSION_1,
        3,
        1_700_000_000_123,
        2,
        entries.iter().map(|(k, v)| (0, k, v)),
    )
    .unwrap();
    fs.put_file(&dir().join(FileKind::Checkpoint(3).name()), &checkpoint);
    let mut log = LogHeader {
        version: 1,
        first_lsn: 4,
    }
    .encode()
    .to_vec();
    encode_record(&mut log, 4, 0, &set("k", "v"));
    encode_record(
        &mut log,
        5,
        0,
        &Record::Delete {
            key: Bytes::from_static(b"a"),
        },
    );
    fs.put_file(&dir().join(FileKind::Log(4).name()), &log);

    let mut backend = open_sim(&fs, &BackendOptions::default());
    let recovered = backend.recover().unwrap();
    assert_eq!(recovered.last_lsn, 5);
    let mut want = Databases::default();
    want.db_mut(0)
        .insert(entries[1].0.clone(), entries[1].1.clone());
    want.db_mut(0).insert(
        Bytes::from_static(b"k"),
        Value::new(Bytes::from_static(b"v")),
    );
    assert_eq!(recovered.state, want);

    // A record of database 2 goes into a new segment of the current version.
    let record = Record::in_db(2, set("two", "2"));
    backend
        .append(&[LogEntry {
            lsn: 6,
            record: record.clone(),
        }])
        .unwrap();
    backend.sync().unwrap();
    let new = fs.file(&dir().join(FileKind::Log(6).name())).unwrap();
    assert_eq!(LogScanner::new(&new).unwrap().header().version, LOG_VERSION);
    assert_eq!(
        fs.file(&dir().join(FileKind::Log(4).name())).unwrap()[..log.len()],
        log[..]
    );
    drop(backend);
    want.apply(&record);
    let again = open_sim(&fs, &BackendOptions::default()).recover().unwrap();
    assert_eq!((again.state, again.last_lsn), (want, 6));
}

#[test]
fn recovery_messages_are_pinned() {
    let mut log = small_log();
    let fs = SimFs::new();
    log[60] ^= 0x10; // inside the first record, with the second group after it
    fs.put_file(&dir().join(FileKind::Log(1).name()), &log);
    let err = open_sim(&fs, &BackendOptions::default())
        .recover()
        .unwrap_err();
    let salvaged = open_sim(&fs, &salvage()).recover().unwrap();
    let mut report = salvaged.report.clone();
    report.elapsed = std::time::Duration::ZERO;
    insta::assert_snapshot!(format!("{err}\n\n{report}"));
}
