//! Replays the committed fuzz corpus (fuzz/corpus/<target>/) and the inputs of past findings
//! (fuzz/regressions/<target>/) through the same checks the cargo-fuzz targets run
//! (fuzz/src/checks.rs, included by path), on the stable toolchain, in the normal `cargo test`.
//!
//! `cargo test -p moodb-backends --test it -- --ignored write_seed_corpus` writes the
//! hand-made seeds (real files of a paper directory on the simulated disk) into fuzz/corpus/.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

#[path = "../../../fuzz/src/checks.rs"]
#[allow(dead_code)]
mod checks;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use moodb_backends::paper::fs::{Fs, SimFs};
use moodb_backends::paper::{FileKind, PaperBackend, PaperTuning, SpareMode};
use moodb_backends::BackendOptions;
use moodb_core::{Backend, LogEntry, Record};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `dir`, sorted, or none if it does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str) {
    let corpus = inputs(&fuzz_dir().join("corpus").join(target));
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{target} is empty: the committed corpus is missing"
    );
    let regressions = inputs(&fuzz_dir().join("regressions").join(target));
    for path in corpus.iter().chain(&regressions) {
        let data = std::fs::read(path).unwrap();
        let outcome = std::panic::catch_unwind(|| checks::run(target, &data));
        assert!(
            outcome.is_ok(),
            "fuzz target {target} fails on {}",
            path.display()
        );
    }
}

#[test]
fn record_decode_corpus() {
    replay("record_decode");
}

#[test]
fn log_scan_corpus() {
    replay("log_scan");
}

#[test]
fn checkpoint_corpus() {
    replay("checkpoint");
}

#[test]
fn paper_recover_corpus() {
    replay("paper_recover");
}

#[test]
fn resp_request_corpus() {
    replay("resp_request");
}

#[test]
fn resp_frame_corpus() {
    replay("resp_frame");
}

#[test]
fn every_target_has_a_replay_test() {
    assert_eq!(
        checks::TARGETS,
        [
            "record_decode",
            "log_scan",
            "checkpoint",
            "paper_recover",
            "resp_request",
            "resp_frame"
        ]
    );
}

/// A declared bulk length of 2^40 with no bulk limit: the decoder waits for the bytes and
/// reserves nothing (with the default limits it is a protocol error).
#[test]
fn a_declared_bulk_of_2_pow_40_allocates_nothing() {
    use bytes::BytesMut;
    use moodb_core::resp::{decode_request, Limits};
    let header = b"*1\r\n$1099511627776\r\nabc";
    let mut buf = BytesMut::with_capacity(header.len());
    buf.extend_from_slice(header);
    let capacity = buf.capacity();
    let unlimited = checks::resp_limits(2);
    assert_eq!(unlimited.max_bulk_len, usize::MAX);
    assert!(decode_request(&mut buf, &unlimited).unwrap().is_none());
    assert_eq!(
        buf.capacity(),
        capacity,
        "the declared length reserved memory"
    );
    assert_eq!(&buf[..], header, "nothing consumed");
    assert!(decode_request(&mut buf, &Limits::default()).is_err());
    let mut input = vec![2, 1];
    input.extend_from_slice(header);
    checks::resp_request(&input);
}

fn bytes(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn sample_records() -> Vec<Record> {
    vec![
        Record::Set {
            key: bytes("k1"),
            value: bytes("v1"),
            expires_at_ms: None,
        },
        Record::Set {
            key: bytes("k2"),
            value: bytes("value two"),
            expires_at_ms: Some(1_700_000_000_000),
        },
        Record::Update {
            key: bytes("k1"),
            value: bytes("v1'"),
        },
        Record::Delete { key: bytes("k2") },
        Record::Clear,
        Record::Txn(vec![
            Record::Set {
                key: bytes("a"),
                value: bytes("1"),
                expires_at_ms: None,
            },
            Record::Delete { key: bytes("b") },
            Record::Clear,
        ]),
    ]
}

/// Appends the sample records in groups, checkpoints after `checkpoint_after` groups, and
/// returns the directory's files.
fn sample_directory(checkpoint_after: usize) -> Vec<(String, Vec<u8>)> {
    let fs = SimFs::new();
    let dir = Path::new("/db");
    let tuning = PaperTuning {
        prealloc_bytes: 512,
        spare: SpareMode::Off,
    };
    let mut backend = PaperBackend::open_with(
        Arc::new(fs.clone()),
        dir,
        &BackendOptions::default(),
        tuning,
    )
    .unwrap();
    let mut state = backend.recover().unwrap().state;
    let mut lsn = 0;
    for (g, group) in sample_records().chunks(2).enumerate() {
        if g == checkpoint_after {
            if let Some(job) = backend.begin_checkpoint(lsn).unwrap() {
                job.write(state.clone()).unwrap();
            }
        }
        let entries: Vec<LogEntry> = group
            .iter()
            .map(|record| {
                lsn += 1;
                state.apply(record);
                LogEntry {
                    lsn,
                    record: record.clone(),
                }
            })
            .collect();
        backend.append(&entries).unwrap();
    }
    fs.list_dir(dir)
        .unwrap()
        .into_iter()
        .map(|name| {
            let content = fs.file(&dir.join(&name)).unwrap();
            (name, content)
        })
        .collect()
}

/// Encodes a directory as a `paper_recover` input (LSNs in names must be below 64).
fn recovery_input(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = vec![0u8];
    for (name, content) in files {
        let (kind, lsn) = match FileKind::parse(name) {
            Some(FileKind::Log(lsn)) => (0u8, lsn),
            Some(FileKind::Checkpoint(lsn)) => (1u8, lsn),
            other => panic!("{name}: not a log or a checkpoint ({other:?})"),
        };
        assert!(lsn < 64);
        out.extend_from_slice(&[kind, lsn as u8, 0]);
        out.extend_from_slice(&(content.len() as u16).to_le_bytes());
        out.extend_from_slice(content);
    }
    out
}

#[test]
#[ignore = "writes the seed corpus into fuzz/corpus; run by hand"]
fn write_seed_corpus() {
    let mut seeds: Vec<(&str, String, Vec<u8>)> = Vec::new();
    for (i, r) in sample_records().iter().enumerate() {
        seeds.push(("record_decode", format!("seed-{i}"), r.to_bytes()));
    }
    for (c, files) in [sample_directory(usize::MAX), sample_directory(2)]
        .into_iter()
        .enumerate()
    {
        for (name, content) in &files {
            let target = if matches!(FileKind::parse(name), Some(FileKind::Log(_))) {
                "log_scan"
            } else {
                "checkpoint"
            };
            let mut input = vec![0u8];
            input.extend_from_slice(content);
            seeds.push((target, format!("seed-{c}-{name}"), input));
        }
        seeds.push(("paper_recover", format!("seed-{c}"), recovery_input(&files)));
    }
    let requests: &[&[u8]] = &[
        b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",
        b"set a b\n*0\r\n\r\n*-1\r\n",
        b"*1\r\n$1099511627776\r\n",
    ];
    for (i, request) in requests.iter().enumerate() {
        for mode in 0..3u8 {
            let mut input = vec![mode, 3];
            input.extend_from_slice(request);
            seeds.push(("resp_request", format!("seed-{i}-{mode}"), input));
        }
    }
    let frames: &[&[u8]] = &[
        b"+OK\r\n",
        b"-ERR unknown command\r\n",
        b":-42\r\n",
        b"$3\r\nabc\r\n",
        b"$-1\r\n",
        b"*-1\r\n",
        b"*3\r\n$1\r\na\r\n:1\r\n*1\r\n+x\r\n",
        // RESP3 (redis-server 7.0's replies after HELLO 3).
        b"%2\r\n$5\r\nproto\r\n:3\r\n$7\r\nmodules\r\n*0\r\n",
        b"_\r\n",
        b"~2\r\n+readonly\r\n+fast\r\n",
        b",0.10000000000000001\r\n",
        b",-inf\r\n",
        b"#t\r\n",
        b"=8\r\ntxt:a:b\r\n\r\n",
        b"(-3492890328409238509324850943850943825024385\r\n",
        b">2\r\n$7\r\nmessage\r\n_\r\n",
    ];
    for (i, frame) in frames.iter().enumerate() {
        seeds.push(("resp_frame", format!("seed-{i}"), frame.to_vec()));
    }
    for (target, name, data) in seeds {
        checks::run(target, &data);
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), data).unwrap();
    }
}
