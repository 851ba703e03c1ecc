//! Golden tests pinning the paper engine's file formats (FORMAT.md) byte by byte: a hex dump of
//! a small log written by the backend and of a small checkpoint, plus the messages an operator
//! reads when recovery meets damage. A change to any of them must be deliberate.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::fmt::Write;

use crate::common::*;
use bytes::Bytes;
use moodb_backends::paper::checkpoint::{encode_checkpoint, CheckpointReader};
use moodb_backends::paper::fs::SimFs;
use moodb_backends::paper::log::{LogEnd, LogScanner};
use moodb_backends::paper::FileKind;
use moodb_backends::BackendOptions;
use moodb_core::{Backend, Record, Value};

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

fn small_log() -> Vec<u8> {
    let fs = SimFs::new();
    let mut backend = open_sim(&fs, &BackendOptions::default());
    backend.recover().unwrap();
    let mut model = Model::default();
    let groups = vec![
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
    ];
    append_groups(&mut backend, &mut model, &groups);
    let bytes = fs.file(&dir().join(FileKind::Log(1).name())).unwrap();
    let end = LogScanner::new(&bytes).unwrap().finish();
    assert_eq!(end, LogEnd::Clean { valid_end: 136 });
    bytes[..end.valid_end() as usize].to_vec()
}

#[test]
fn log_format_is_pinned() {
    insta::assert_snapshot!(hexdump(&small_log()));
}

#[test]
fn checkpoint_format_is_pinned() {
    let entries = [
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
    ];
    let bytes =
        encode_checkpoint(7, 1_700_000_000_123, 2, entries.iter().map(|(k, v)| (k, v))).unwrap();
    let reader = CheckpointReader::new(&bytes).unwrap();
    assert_eq!(reader.verify().unwrap(), 2);
    insta::assert_snapshot!(hexdump(&bytes));
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
