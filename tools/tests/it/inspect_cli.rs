//! `moodb wal dump` and `moodb snapshot inspect` end to end, over files the tests write with
//! the paper backend and its encoders: golden text output (clean, torn tail, mid-log
//! corruption, clean and corrupt checkpoint, data directories, help), JSON read back with
//! serde_json, exit codes, and that the files are left byte for byte as they were. Raft log
//! segments are written through `PaperRaftLog` (with and without pre-zeroed spares), and what
//! the dump says of damage is checked against what reopening the raft log does.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use moodb_backends::paper::checkpoint::encode_checkpoint;
use moodb_backends::paper::fs::StdFs;
use moodb_backends::paper::raft_log::{self, PaperRaftLog, RAFT_SPARE_NAME, VOTE_NAME};
use moodb_backends::paper::{FileKind, PaperBackend, PaperTuning, SpareMode};
use moodb_backends::BackendOptions;
use moodb_core::replicated::{RaftLog, RaftLogId, RaftPayload, RaftRecord};
use moodb_core::{Backend, LogEntry, Record, StorageError, Value};

/// Runs `moodb` with `args`; returns the exit code, stdout and stderr.
fn moodb(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_moodb"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Runs `moodb` on `path`, checks the exit code and returns stdout with the temp dir hidden.
fn run_on(args: &[&str], path: &Path, code: i32) -> String {
    let mut all: Vec<&str> = args.to_vec();
    all.push(path.to_str().unwrap());
    let (got, stdout, stderr) = moodb(&all);
    assert_eq!(got, code, "moodb {all:?}: {stdout}\n{stderr}");
    let dir = path.parent().unwrap().to_str().unwrap();
    stdout
        .replace(path.to_str().unwrap(), "[PATH]")
        .replace(dir, "[DIR]")
}

fn b(s: &[u8]) -> Bytes {
    Bytes::copy_from_slice(s)
}

/// The groups of records the log tests append: each inner Vec is one `append` call.
fn groups() -> Vec<Vec<Record>> {
    vec![
        vec![Record::Set {
            key: b(b"user:1"),
            value: b(b"say \"hi\"\n"),
            expires_at_ms: Some(1_700_000_000_000),
        }],
        vec![
            Record::Txn(vec![
                Record::Update {
                    key: b(b"bin\x00\xff"),
                    value: b(&[b'v'; 100]),
                },
                Record::Delete { key: b(b"gone") },
            ]),
            Record::Set {
                key: b(b"k2"),
                value: b(b"tab\there"),
                expires_at_ms: None,
            },
        ],
        vec![Record::Clear],
        vec![Record::Delete { key: b(b"last") }],
    ]
}

/// Writes `groups` with the paper backend into `dir` (4 KiB preallocation); returns the LSN of
/// the last record.
fn append_all(backend: &mut PaperBackend, first_lsn: u64, groups: &[Vec<Record>]) -> u64 {
    let mut lsn = first_lsn;
    for group in groups {
        let entries: Vec<LogEntry> = group
            .iter()
            .map(|record| {
                lsn += 1;
                LogEntry {
                    lsn: lsn - 1,
                    record: record.clone(),
                }
            })
            .collect();
        backend.append(&entries).unwrap();
    }
    lsn - 1
}

fn open_backend(dir: &Path) -> PaperBackend {
    let tuning = PaperTuning {
        prealloc_bytes: 4096,
        spare: SpareMode::Off,
    };
    let mut backend =
        PaperBackend::open_with(Arc::new(StdFs), dir, &BackendOptions::default(), tuning).unwrap();
    backend.recover().unwrap();
    backend
}

/// A log segment holding [`groups`], in a fresh temp dir.
fn clean_log() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let mut backend = open_backend(dir.path());
    append_all(&mut backend, 1, &groups());
    drop(backend);
    let path = dir.path().join(FileKind::Log(1).name());
    (dir, path)
}

/// Offsets of the records of the clean log, read back through the scanner.
fn record_offsets(path: &Path) -> Vec<(u64, u64)> {
    let bytes = std::fs::read(path).unwrap();
    moodb_backends::paper::log::LogScanner::new(&bytes)
        .unwrap()
        .map(|r| (r.offset, r.len))
        .collect()
}

fn modify(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).unwrap();
    f(&mut bytes);
    std::fs::write(path, bytes).unwrap();
}

/// A log whose last record (its own group) lost its last 6 bytes: a power cut mid-write.
fn torn_log() -> (tempfile::TempDir, PathBuf) {
    let (dir, path) = clean_log();
    let (offset, len) = *record_offsets(&path).last().unwrap();
    modify(&path, |bytes| {
        let end = (offset + len) as usize;
        bytes[end - 6..end].fill(0);
    });
    (dir, path)
}

/// A log with one flipped bit in the payload of its second record, valid groups after it.
fn corrupt_log() -> (tempfile::TempDir, PathBuf) {
    let (dir, path) = clean_log();
    let (offset, _) = record_offsets(&path)[1];
    modify(&path, |bytes| bytes[offset as usize + 30] ^= 0x04);
    (dir, path)
}

fn entries() -> Vec<(Bytes, Value)> {
    vec![
        (b(b"a"), Value::new(b(b"1"))),
        (
            b(b"bb\n"),
            Value {
                data: b(b"22"),
                expires_at_ms: Some(1_700_000_000_000),
            },
        ),
        (b(&[b'k'; 80]), Value::new(b(&[0u8; 1000]))),
        (b(b"\x00\x01"), Value::new(b(b""))),
    ]
}

/// A checkpoint as of `lsn` holding [`entries`], created at a fixed time.
fn write_checkpoint(dir: &Path, lsn: u64) -> PathBuf {
    let entries = entries();
    let bytes = encode_checkpoint(
        lsn,
        1_700_000_000_123,
        entries.len() as u64,
        entries.iter().map(|(k, v)| (0, k, v)),
    )
    .unwrap();
    let path = dir.join(FileKind::Checkpoint(lsn).name());
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn help_texts() {
    let (code, wal, _) = moodb(&["wal", "dump", "--help"]);
    assert_eq!(code, 0);
    insta::assert_snapshot!("wal_dump_help", wal);
    let (code, snapshot, _) = moodb(&["snapshot", "inspect", "--help"]);
    assert_eq!(code, 0);
    insta::assert_snapshot!("snapshot_inspect_help", snapshot);
}

#[test]
fn wal_dump_of_a_clean_log() {
    let (_dir, path) = clean_log();
    insta::assert_snapshot!(run_on(&["wal", "dump"], &path, 0));
    let full = run_on(&["wal", "dump", "--full"], &path, 0);
    assert!(
        full.contains(&format!("\"{}\"\n", "v".repeat(100))),
        "{full}"
    );
}

#[test]
fn wal_dump_of_a_torn_tail() {
    let (_dir, path) = torn_log();
    insta::assert_snapshot!(run_on(&["wal", "dump"], &path, 2));
}

#[test]
fn wal_dump_of_mid_log_corruption() {
    let (_dir, path) = corrupt_log();
    insta::assert_snapshot!(run_on(&["wal", "dump"], &path, 2));
}

#[test]
fn wal_dump_of_a_data_directory_goes_through_the_segments_in_lsn_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut backend = open_backend(dir.path());
    let last = append_all(&mut backend, 1, &groups()[..2]);
    // Starts log-<last+1>; the job that would remove log-1 is never run.
    let job = backend.begin_checkpoint(last).unwrap();
    drop(job);
    append_all(&mut backend, last + 1, &groups()[2..]);
    drop(backend);
    std::fs::write(dir.path().join(FileKind::LogDamaged(1).name()), b"x").unwrap();
    let out = run_on(
        &["wal", "dump"],
        &dir.path().join(FileKind::Log(1).name()),
        0,
    );
    assert!(!out.contains("lsn 4"), "{out}");
    insta::assert_snapshot!(run_on(&["wal", "dump"], dir.path(), 0));
}

#[test]
fn wal_dump_json_reads_back() {
    let (_dir, path) = corrupt_log();
    let offsets = record_offsets(&clean_log().1);
    let (code, stdout, _) = moodb(&["wal", "dump", "--json", path.to_str().unwrap()]);
    assert_eq!(code, 2);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let segment = &json["segments"][0];
    assert_eq!(segment["first_lsn"], 1);
    assert_eq!(segment["records"].as_array().unwrap().len(), 1);
    let first = &segment["records"][0];
    assert_eq!(first["kind"], "set");
    assert_eq!(first["key"]["escaped"], "user:1");
    assert_eq!(first["value"]["escaped"], "say \\\"hi\\\"\\n");
    assert_eq!(first["expires_at_ms"], 1_700_000_000_000u64);
    assert_eq!(segment["end"]["status"], "mid_log_damage");
    assert_eq!(segment["end"]["offset"], offsets[1].0);
    assert_eq!(segment["end"]["reason"], "record checksum mismatch");
    assert_eq!(segment["end"]["next_valid_offset"], offsets[2].0);
    assert_eq!(segment["end"]["valid_records_after"], 3);
    assert_eq!(json["summary"]["damaged"], true);

    let (_dir, path) = clean_log();
    let (code, stdout, _) = moodb(&["wal", "dump", "--json", path.to_str().unwrap()]);
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let txn = &json["segments"][0]["records"][1];
    assert_eq!(txn["kind"], "txn");
    assert_eq!(txn["records"][0]["kind"], "update");
    assert_eq!(txn["records"][0]["key"]["escaped"], "bin\\x00\\xff");
    assert_eq!(txn["records"][0]["value"]["len"], 100);
    assert_eq!(txn["records"][0]["value"]["cut"], true);
    assert_eq!(txn["records"][1]["kind"], "delete");
    assert_eq!(json["summary"]["records"], 5);
    assert_eq!(json["summary"]["first_lsn"], 1);
    assert_eq!(json["summary"]["last_lsn"], 5);
    assert_eq!(json["segments"][0]["end"]["status"], "clean");
}

#[test]
fn snapshot_inspect_of_a_clean_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_checkpoint(dir.path(), 7);
    insta::assert_snapshot!(run_on(&["snapshot", "inspect", "--keys"], &path, 0));
}

#[test]
fn snapshot_inspect_of_a_corrupt_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_checkpoint(dir.path(), 7);
    modify(&path, |bytes| bytes[70] ^= 0x01); // inside the first block's body
    insta::assert_snapshot!(run_on(&["snapshot", "inspect"], &path, 2));
}

#[test]
fn snapshot_inspect_of_a_data_directory_takes_the_newest_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    write_checkpoint(dir.path(), 3);
    write_checkpoint(dir.path(), 12);
    std::fs::write(dir.path().join(FileKind::CheckpointTmp(20).name()), b"half").unwrap();
    let out = run_on(&["snapshot", "inspect"], dir.path(), 0);
    assert!(
        out.starts_with(
            "checkpoint-00000000000000000012: 1241 bytes, the newest of 2 checkpoints in [PATH]"
        ),
        "{out}"
    );
    let (code, stdout, _) = moodb(&[
        "snapshot",
        "inspect",
        "--json",
        "--keys",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["header"]["lsn"], 12);
    assert_eq!(json["header"]["key_count"], 4);
    assert_eq!(json["header"]["created_at"], "2023-11-14T22:13:20.123Z");
    assert_eq!(json["verdict"], "ok");
    assert_eq!(json["keys_with_expiry"], 1);
    assert_eq!(json["value_bytes"]["max"], 1000);
    assert_eq!(json["key_bytes"]["min"], 1);
    assert_eq!(json["keys"][1]["key"]["escaped"], "bb\\n");
    assert_eq!(json["keys"][2]["key"]["cut"], true);
}

#[test]
fn exit_codes_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let (code, _, stderr) = moodb(&["wal", "dump", missing.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("cannot read") && stderr.contains("nope"),
        "{stderr}"
    );

    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello world").unwrap();
    let (code, _, stderr) = moodb(&["wal", "dump", text.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("not a MooDB log segment: bad magic \"hello wo\""),
        "{stderr}"
    );
    let (code, _, stderr) = moodb(&["snapshot", "inspect", text.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("not a MooDB checkpoint: bad magic"),
        "{stderr}"
    );

    let empty_dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = moodb(&["wal", "dump", empty_dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("no log segment in data directory"),
        "{stderr}"
    );
    let (code, _, stderr) = moodb(&["snapshot", "inspect", empty_dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("no checkpoint in data directory"),
        "{stderr}"
    );

    // An all-zero segment: an interrupted creation, reported as damage of the header.
    let zeros = dir.path().join(FileKind::Log(9).name());
    std::fs::write(&zeros, [0u8; 20]).unwrap();
    let out = run_on(&["wal", "dump"], &zeros, 2);
    assert!(out.contains("interrupted creation"), "{out}");

    // The same of a raft log segment: only zeros, no longer than its header.
    let zeros = dir.path().join(raft_log::segment_name(9));
    std::fs::write(&zeros, [0u8; 20]).unwrap();
    let out = run_on(&["wal", "dump"], &zeros, 2);
    assert!(out.contains("interrupted creation"), "{out}");
    let text = dir.path().join(raft_log::segment_name(10));
    std::fs::write(&text, "hello world").unwrap();
    let (code, _, stderr) = moodb(&["wal", "dump", text.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("not a MooDB raft log segment: bad magic \"hello wo\""),
        "{stderr}"
    );

    // A checkpoint cut short.
    let path = write_checkpoint(dir.path(), 5);
    modify(&path, |bytes| bytes.truncate(bytes.len() - 10));
    let out = run_on(&["snapshot", "inspect"], &path, 2);
    assert!(out.contains("DAMAGE at offset"), "{out}");
}

#[test]
fn dumping_leaves_the_files_byte_identical() {
    let (_dir, log) = corrupt_log();
    let ckpt_dir = tempfile::tempdir().unwrap();
    let ckpt = write_checkpoint(ckpt_dir.path(), 7);
    let (_raft_dir, raft) = raft_segment();
    let (offset, len) = *raft_offsets(&raft).last().unwrap();
    modify(&raft, |bytes| bytes.truncate((offset + len) as usize - 6)); // torn: recovery cuts
    for (path, args) in [
        (&log, &["wal", "dump", "--json"][..]),
        (&log, &["wal", "dump", "--full"][..]),
        (&raft, &["wal", "dump"][..]),
        (&raft, &["wal", "dump", "--json"][..]),
        (&ckpt, &["snapshot", "inspect", "--keys"][..]),
        (&ckpt, &["snapshot", "inspect", "--json"][..]),
    ] {
        let before = std::fs::read(path).unwrap();
        let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
        let mut all = args.to_vec();
        all.push(path.to_str().unwrap());
        let (code, _, stderr) = moodb(&all);
        assert!(code == 0 || code == 2, "{stderr}");
        assert_eq!(std::fs::read(path).unwrap(), before);
        assert_eq!(std::fs::metadata(path).unwrap().modified().unwrap(), mtime);
    }
}

#[test]
fn wal_dump_and_snapshot_inspect_show_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let mut backend = open_backend(dir.path());
    let set = |k: &[u8]| Record::Set {
        key: b(k),
        value: b(b"v"),
        expires_at_ms: None,
    };
    let groups = vec![vec![
        Record::in_db(3, set(b"k3")),
        Record::Txn(vec![
            Record::in_db(15, Record::Delete { key: b(b"k") }),
            set(b"k0"),
        ]),
        Record::SwapDb { a: 0, b: 15 },
        Record::in_db(9, Record::Clear),
        Record::ClearAll,
    ]];
    append_all(&mut backend, 1, &groups);
    drop(backend);
    let dump = run_on(
        &["wal", "dump"],
        &dir.path().join(FileKind::Log(1).name()),
        0,
    );
    for want in [
        "db3 set \"k3\"",
        "db15 delete \"k\"",
        "swapdb 0 15",
        "db9 clear",
        "clearall",
    ] {
        assert!(dump.contains(want), "no {want:?} in:\n{dump}");
    }
    let (code, json, _) = moodb(&[
        "wal",
        "dump",
        "--json",
        dir.path().join(FileKind::Log(1).name()).to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let records = &json["segments"][0]["records"];
    assert_eq!(records[0]["db"], 3);
    assert_eq!(records[1]["records"][0]["db"], 15);
    assert!(records[1]["records"][1].get("db").is_none());
    assert_eq!(records[2]["swap"], serde_json::json!([0, 15]));

    let entries = entries();
    let in_dbs = [
        (0, &entries[0].0, &entries[0].1),
        (5, &entries[1].0, &entries[1].1),
    ];
    let bytes = encode_checkpoint(7, 1_700_000_000_123, 2, in_dbs.into_iter()).unwrap();
    let path = dir.path().join(FileKind::Checkpoint(7).name());
    std::fs::write(&path, bytes).unwrap();
    let out = run_on(&["snapshot", "inspect", "--keys"], &path, 0);
    assert!(out.contains("db0             1 key (0 expiring)"), "{out}");
    assert!(out.contains("db5             1 key (1 expiring)"), "{out}");
    assert!(out.contains("  db5  \"bb\\n\""), "{out}");
}

/// A raft snapshot (`raftsnap-<index>`) as a cluster node writes it: the raft header with its
/// last log id and openraft's meta (membership), then a checkpoint of [`entries`].
fn write_raft_snapshot(dir: &Path, index: u64) -> PathBuf {
    use moodb_backends::paper::raft_log::PaperSnapshotFiles;
    use moodb_core::replicated::StoredRaftSnapshot;
    let entries = entries();
    let checkpoint = encode_checkpoint(
        index,
        1_700_000_000_123,
        entries.len() as u64,
        entries.iter().map(|(k, v)| (0, k, v)),
    )
    .unwrap();
    let meta = format!(
        r#"{{"last_log_id":{{"leader_id":{{"term":3,"node_id":2}},"index":{index}}},"last_membership":{{"log_id":{{"leader_id":{{"term":1,"node_id":1}},"index":0}},"membership":{{"configs":[[1,2,3]],"nodes":{{"1":{{"addr":"127.0.0.1:7101"}},"2":{{"addr":"127.0.0.1:7102"}},"3":{{"addr":"127.0.0.1:7103|127.0.0.1:6383"}}}}}}}},"snapshot_id":"3-2-{index}-1"}}"#
    );
    let log = PaperRaftLog::open(Box::new(StdFs), dir).unwrap();
    log.snapshot_files()
        .save(&StoredRaftSnapshot {
            last: Some(RaftLogId {
                term: 3,
                node: 2,
                index,
            }),
            meta: meta.into_bytes(),
            checkpoint,
        })
        .unwrap();
    let names = PaperSnapshotFiles::names(&StdFs, dir).unwrap();
    dir.join(&names.last().unwrap().1)
}

#[test]
fn snapshot_inspect_of_a_raft_snapshot_shows_its_log_id_and_membership() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_raft_snapshot(dir.path(), 42);
    insta::assert_snapshot!(run_on(&["snapshot", "inspect"], &path, 0));
    // A cluster node's data directory: its raft snapshot.
    let text = run_on(&["snapshot", "inspect"], dir.path(), 0);
    assert!(text.contains("the newest of 1 raft snapshot"), "{text}");
    let json = run_on(&["snapshot", "inspect", "--json"], &path, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["raft"]["last_index"], 42);
    assert_eq!(v["raft"]["last_term"], 3);
    assert_eq!(v["raft"]["voters"], serde_json::json!([[1, 2, 3]]));
    assert_eq!(v["header"]["lsn"], 42);
    // The raft header's checksum covers the meta.
    modify(&path, |bytes| bytes[60] ^= 0x01);
    let damaged = run_on(&["snapshot", "inspect"], &path, 2);
    assert!(
        damaged.contains("raft header checksum mismatch"),
        "{damaged}"
    );
}

/// openraft's membership of nodes 1, 2, 3, as the replication layer stores it (JSON).
const MEMBERSHIP: &str = r#"{"configs":[[1,2,3]],"nodes":{"1":{"addr":"127.0.0.1:7101"},"2":{"addr":"127.0.0.1:7102"},"3":{"addr":"127.0.0.1:7103"}}}"#;
/// openraft's vote, as the replication layer saves it (JSON).
const VOTE: &str = r#"{"leader_id":{"term":2,"node_id":2},"committed":true}"#;

fn raft_entry(term: u64, node: u64, index: u64, payload: RaftPayload) -> RaftRecord {
    RaftRecord {
        id: RaftLogId { term, node, index },
        payload,
    }
}

/// The appends the raft log tests make (each inner Vec is one `append`): node 1's blank and
/// membership in term 1, a SET, then node 2's term-2 batch of a transaction and a DELETE.
fn raft_groups() -> Vec<Vec<RaftRecord>> {
    let groups = groups();
    vec![
        vec![
            raft_entry(1, 1, 1, RaftPayload::Blank),
            raft_entry(1, 1, 2, RaftPayload::Membership(MEMBERSHIP.into())),
        ],
        vec![raft_entry(
            1,
            1,
            3,
            RaftPayload::Record(groups[0][0].clone()),
        )],
        vec![
            raft_entry(2, 2, 4, RaftPayload::Record(groups[1][0].clone())),
            raft_entry(2, 2, 5, RaftPayload::Record(groups[3][0].clone())),
        ],
    ]
}

/// A raft log written through `PaperRaftLog` into `dir`: [`raft_groups`] and the vote.
fn write_raft_log(dir: &Path, log: &mut PaperRaftLog) {
    for group in raft_groups() {
        log.append(&group).unwrap();
    }
    log.save_vote(VOTE.as_bytes()).unwrap();
    assert!(dir.join(VOTE_NAME).exists());
}

/// One raft segment, `raftlog-1`, with no spare (its file ends at its last record).
fn raft_segment() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PaperRaftLog::open_with(Box::new(StdFs), dir.path(), 1 << 20).unwrap();
    write_raft_log(dir.path(), &mut log);
    assert_eq!(log.segment_names(), vec![raft_log::segment_name(1)]);
    drop(log);
    let path = dir.path().join(raft_log::segment_name(1));
    (dir, path)
}

/// (offset, len) of each entry of a raft segment, read back through the raft log's scanner.
fn raft_offsets(path: &Path) -> Vec<(u64, u64)> {
    let bytes = std::fs::read(path).unwrap();
    raft_log::scan_segment(&bytes, None, None)
        .unwrap()
        .records
        .iter()
        .map(|r| (r.offset, r.len))
        .collect()
}

#[test]
fn wal_dump_of_a_raft_log_segment_shows_each_entry_with_its_log_id() {
    let (_dir, path) = raft_segment();
    let offsets = raft_offsets(&path);
    let text = run_on(&["wal", "dump"], &path, 0);
    insta::assert_snapshot!(text);
    // offset, index, term, node, group, crc, then the entry.
    let line = |i: usize| {
        let prefix = format!("{:>10} {:>10} ", offsets[i].0, i + 1);
        text.lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no line for index {}: {text}", i + 1))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(line(0)[2..], ["1", "1", "1", "ok", "blank"]);
    assert_eq!(line(1)[2..7], ["1", "1", "1", "ok", "membership"]);
    assert!(
        text.contains(&format!("membership {MEMBERSHIP}\n")),
        "{text}"
    );
    assert_eq!(line(2)[2..8], ["1", "1", "3", "ok", "set", "\"user:1\""]);
    assert_eq!(line(3)[2..7], ["2", "2", "4", "ok", "txn"]);
    assert_eq!(line(4)[2..8], ["2", "2", "4", "ok", "delete", "\"last\""]);
    let file_len = std::fs::metadata(&path).unwrap().len();
    assert!(
        text.contains(&format!(
            "end: clean at offset {file_len}, the end of the file"
        )),
        "{text}"
    );
    let full = run_on(&["wal", "dump", "--full"], &path, 0);
    assert!(
        full.contains(&format!("\"{}\"\n", "v".repeat(100))),
        "{full}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&run_on(&["wal", "dump", "--json"], &path, 0)).unwrap();
    let segment = &json["raft_segments"][0];
    assert_eq!(segment["first_index"], 1);
    assert_eq!(segment["format_version"], 1);
    let records = segment["records"].as_array().unwrap();
    assert_eq!(records.len(), 5);
    assert_eq!(records[0]["kind"], "blank");
    assert_eq!(records[1]["kind"], "membership");
    assert_eq!(records[1]["membership"], MEMBERSHIP);
    let set = &records[2];
    assert_eq!(
        (
            &set["offset"],
            &set["index"],
            &set["term"],
            &set["node"],
            &set["group"]
        ),
        (
            &offsets[2].0.into(),
            &3.into(),
            &1.into(),
            &1.into(),
            &3.into()
        )
    );
    assert_eq!(set["kind"], "record");
    assert_eq!(set["record"]["kind"], "set");
    assert_eq!(set["record"]["key"]["escaped"], "user:1");
    assert_eq!(set["record"]["expires_at_ms"], 1_700_000_000_000u64);
    let txn = &records[3]["record"];
    assert_eq!(txn["kind"], "txn");
    assert_eq!(txn["records"][0]["key"]["escaped"], "bin\\x00\\xff");
    assert_eq!(txn["records"][0]["value"]["cut"], true);
    assert_eq!(records[4]["group"], 4);
    assert_eq!(records[4]["term"], 2);
    assert_eq!(records[4]["node"], 2);
    assert_eq!(segment["end"]["status"], "clean");
    assert_eq!(segment["end"]["valid_end"], file_len);
    assert_eq!(json["summary"]["raft"]["entries"], 5);
    assert_eq!(json["summary"]["raft"]["first_index"], 1);
    assert_eq!(json["summary"]["raft"]["last_index"], 5);
    assert_eq!(json["summary"]["damaged"], false);
    assert!(json["segments"].as_array().unwrap().is_empty());
}

/// With spares the log moves to a pre-zeroed segment: its records end at a zero tail, which
/// the dump reports as the clean end without printing it.
#[test]
fn wal_dump_of_a_pre_zeroed_raft_segment_ends_cleanly_at_the_zeros() {
    const SEGMENT: u64 = 4 << 20;
    let dir = tempfile::tempdir().unwrap();
    let mut log =
        PaperRaftLog::open_tuned(Box::new(StdFs), dir.path(), SEGMENT, SpareMode::Inline).unwrap();
    write_raft_log(dir.path(), &mut log);
    // The first append made raftlog-1 and asked for a spare; the second moved to it.
    let names = log.segment_names();
    assert_eq!(
        names,
        [raft_log::segment_name(1), raft_log::segment_name(3)]
    );
    drop(log);
    let path = dir.path().join(raft_log::segment_name(3));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), SEGMENT);
    let offsets = raft_offsets(&path);
    let valid_end = offsets.last().map(|(o, l)| o + l).unwrap();
    let text = run_on(&["wal", "dump"], &path, 0);
    insta::assert_snapshot!(text);
    assert!(
        text.contains(&format!(
            "end: clean at offset {valid_end}, then {} bytes of zeros",
            SEGMENT - valid_end
        )),
        "{text}"
    );
    assert!(text.len() < 2000, "{} bytes of output", text.len());
    let json: serde_json::Value =
        serde_json::from_str(&run_on(&["wal", "dump", "--json"], &path, 0)).unwrap();
    let segment = &json["raft_segments"][0];
    assert_eq!(segment["first_index"], 3);
    assert_eq!(segment["records"][0]["index"], 3);
    assert_eq!(segment["records"][0]["record"]["key"]["escaped"], "user:1");
    assert_eq!(segment["end"]["status"], "clean");
    assert_eq!(segment["end"]["valid_end"], valid_end);
    assert_eq!(segment["end"]["zero_bytes_after"], SEGMENT - valid_end);
}

#[test]
fn wal_dump_of_a_torn_raft_tail_says_where_recovery_cuts() {
    let (dir, path) = raft_segment();
    let (offset, len) = *raft_offsets(&path).last().unwrap();
    modify(&path, |bytes| bytes.truncate((offset + len) as usize - 6));
    // Up to the last non-zero byte of what is left.
    let bytes = std::fs::read(&path).unwrap();
    let damaged = bytes.iter().rposition(|b| *b != 0).unwrap() as u64 + 1 - offset;
    let text = run_on(&["wal", "dump"], &path, 2);
    insta::assert_snapshot!(text);
    assert!(
        text.contains(&format!("DAMAGE at offset {offset}: incomplete record"))
            && text.contains(&format!(
                "torn tail: no valid record of another group follows ({damaged} damaged bytes"
            ))
            && text.contains(&format!("Recovery cuts the segment at offset {offset}")),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&run_on(&["wal", "dump", "--json"], &path, 2)).unwrap();
    let end = &json["raft_segments"][0]["end"];
    assert_eq!(end["status"], "torn_tail");
    assert_eq!(end["offset"], offset);
    assert_eq!(end["newest_segment"], true);
    assert_eq!(end["damaged_bytes"], damaged);
    assert_eq!(
        json["raft_segments"][0]["records"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    // Recovery does what the dump says: it cuts there and keeps the four entries before.
    let log = PaperRaftLog::open_with(Box::new(StdFs), dir.path(), 1 << 20).unwrap();
    assert_eq!(log.recovery().bytes_truncated, damaged);
    assert_eq!(log.recovery().entries, 4);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), offset);
}

#[test]
fn wal_dump_of_a_flipped_byte_mid_raft_segment_is_corruption_recovery_refuses() {
    let (dir, path) = raft_segment();
    let offsets = raft_offsets(&path);
    // Inside the SET's payload (index 3): the term-2 append after it is still valid.
    let (offset, _) = offsets[2];
    modify(&path, |bytes| bytes[offset as usize + 50] ^= 0x04);
    let text = run_on(&["wal", "dump"], &path, 2);
    insta::assert_snapshot!(text);
    assert!(
        text.contains(&format!(
            "DAMAGE at offset {offset}: record checksum mismatch"
        )) && text.contains(&format!(
            "mid-log corruption: 2 valid records follow, the first at offset {}",
            offsets[3].0
        )) && text.contains("Recovery refuses to open the raft log"),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&run_on(&["wal", "dump", "--json"], &path, 2)).unwrap();
    let end = &json["raft_segments"][0]["end"];
    assert_eq!(end["status"], "mid_log_damage");
    assert_eq!(end["offset"], offset);
    assert_eq!(end["next_valid_offset"], offsets[3].0);
    assert_eq!(end["valid_records_after"], 2);
    assert_eq!(json["summary"]["damaged"], true);
    // Recovery refuses, naming the same offset.
    match PaperRaftLog::open_with(Box::new(StdFs), dir.path(), 1 << 20) {
        Err(StorageError::Corrupt { offset: at, .. }) => assert_eq!(at, offset),
        other => panic!("recovery opened a damaged raft log: {other:?}"),
    }
}

#[test]
fn wal_dump_of_a_cluster_data_directory_shows_the_raft_segments_vote_and_purge_point() {
    const SEGMENT: u64 = 64 << 10;
    let dir = tempfile::tempdir().unwrap();
    let mut log =
        PaperRaftLog::open_tuned(Box::new(StdFs), dir.path(), SEGMENT, SpareMode::Inline).unwrap();
    write_raft_log(dir.path(), &mut log);
    // A value past an eighth of the segment: the log asks for the next spare.
    let big = Record::Set {
        key: b(b"big"),
        value: b(&vec![b'b'; (SEGMENT / 8) as usize]),
        expires_at_ms: None,
    };
    log.append(&[raft_entry(2, 2, 6, RaftPayload::Record(big))])
        .unwrap();
    let purged = RaftLogId {
        term: 1,
        node: 1,
        index: 1,
    };
    log.purge(purged).unwrap();
    drop(log);
    assert!(dir.path().join(RAFT_SPARE_NAME).exists());
    let text = run_on(&["wal", "dump"], dir.path(), 0);
    insta::assert_snapshot!(text);
    let first = text.find("raftlog-00000000000000000001:").unwrap();
    let second = text.find("raftlog-00000000000000000003:").unwrap();
    assert!(first < second, "{text}");
    assert!(
        text.contains(&format!("raft vote (raft-vote): {VOTE}\n")),
        "{text}"
    );
    assert!(
        text.contains("raft purge point (raft-purged): index 1, term 1"),
        "{text}"
    );
    assert!(text.contains("not dumped: raftlog-spare ("), "{text}");
    assert!(
        text.contains(&format!("\"{}\"… (8192 bytes)", "b".repeat(64))),
        "{text}"
    );

    let (code, stdout, _) = moodb(&["wal", "dump", "--json", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["raft_vote"]["vote"], VOTE);
    assert_eq!(
        json["raft_purged"]["last_purged"],
        serde_json::json!({"index": 1, "term": 1, "node": 1})
    );
    assert_eq!(json["not_dumped"], serde_json::json!([RAFT_SPARE_NAME]));
    let segments = json["raft_segments"].as_array().unwrap();
    assert_eq!(segments.len(), 2);
    assert_eq!(segments[0]["records"][0]["purged"], true);
    assert!(segments[0]["records"][1].get("purged").is_none());
    assert_eq!(segments[1]["records"][3]["index"], 6);
    assert_eq!(json["summary"]["raft"]["segments"], 2);
    assert_eq!(json["summary"]["raft"]["last_index"], 6);

    // A damaged vote is damage: recovery would refuse to open the raft log.
    modify(&dir.path().join(VOTE_NAME), |bytes| bytes[18] ^= 0x01);
    let text = run_on(&["wal", "dump"], dir.path(), 2);
    assert!(
        text.contains("raft vote (raft-vote): DAMAGE at offset"),
        "{text}"
    );
    // The spare alone holds no record.
    let spare = run_on(&["wal", "dump"], &dir.path().join(RAFT_SPARE_NAME), 0);
    assert!(spare.starts_with("not dumped: raftlog-spare ("), "{spare}");
}

/// An append's first record torn while a later page of the same append reached the disk (a
/// power cut keeps unsynced pages in any order), in a segment that append started: a torn
/// tail, which recovery cuts, not mid-log damage.
#[test]
fn wal_dump_of_a_torn_first_record_of_a_segment_is_a_torn_tail_recovery_cuts() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PaperRaftLog::open_with(Box::new(StdFs), dir.path(), 1 << 20).unwrap();
    let set = |i: u64| {
        let record = Record::Set {
            key: b(format!("k{i}").as_bytes()),
            value: b(&[b'x'; 2000]),
            expires_at_ms: None,
        };
        raft_entry(1, 1, i, RaftPayload::Record(record))
    };
    log.append(&[set(1), set(2), set(3)]).unwrap();
    drop(log);
    let path = dir.path().join(raft_log::segment_name(1));
    let offsets = raft_offsets(&path);
    modify(&path, |bytes| bytes[offsets[0].0 as usize + 100] ^= 0x10);
    let text = run_on(&["wal", "dump"], &path, 2);
    assert!(
        text.contains("DAMAGE at offset 32: record checksum mismatch")
            && text.contains("torn tail: no valid record of another group follows")
            && text.contains("Recovery cuts the segment at offset 32"),
        "{text}"
    );
    let log = PaperRaftLog::open_with(Box::new(StdFs), dir.path(), 1 << 20).unwrap();
    assert_eq!(log.recovery().entries, 0);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 32);
}

/// Damage followed by one valid record of another group whose frame ends in zero bytes (a SET
/// without expiry): the record is still found, so this is mid-log damage recovery refuses,
/// not a torn tail to cut (cutting would drop a synced entry).
#[test]
fn wal_dump_finds_a_valid_record_ending_in_zeros_after_damage() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PaperRaftLog::open_with(Box::new(StdFs), dir.path(), 1 << 20).unwrap();
    let set = |i: u64| {
        let record = Record::Set {
            key: b(format!("k{i}").as_bytes()),
            value: b(b"v"),
            expires_at_ms: None,
        };
        raft_entry(1, 1, i, RaftPayload::Record(record))
    };
    for i in 1..=3 {
        log.append(&[set(i)]).unwrap();
    }
    drop(log);
    let path = dir.path().join(raft_log::segment_name(1));
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        bytes.last(),
        Some(&0),
        "the last frame should end in a zero byte"
    );
    let offsets = raft_offsets(&path);
    modify(&path, |bytes| bytes[offsets[1].0 as usize + 50] ^= 0x01);
    let text = run_on(&["wal", "dump"], &path, 2);
    assert!(
        text.contains(&format!(
            "mid-log corruption: 1 valid record follows, the first at offset {}",
            offsets[2].0
        )),
        "{text}"
    );
    match PaperRaftLog::open_with(Box::new(StdFs), dir.path(), 1 << 20) {
        Err(StorageError::Corrupt { offset, .. }) => assert_eq!(offset, offsets[1].0),
        other => panic!("recovery opened a damaged raft log: {other:?}"),
    }
}
