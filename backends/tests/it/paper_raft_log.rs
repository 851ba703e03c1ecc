//! The paper raft log on the simulated disk: a power cut at every file operation of a history
//! of appends, truncates, purges and votes (each image under several seeds: unsynced writes
//! dropped, torn, reordered) opens to a state between the one before the interrupted
//! operation and the one after it, with every completed operation kept; damage in an older
//! segment refuses to open, naming the file.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::set;
use moodb_backends::paper::fs::{Fault, FaultKind, FaultOp, Fs, SimFs};
use moodb_backends::paper::raft_log::PaperRaftLog;
use moodb_backends::paper::SpareMode;
use moodb_core::replicated::{RaftLog, RaftLogId, RaftPayload, RaftRecord};
use moodb_core::StorageError;

const DIR: &str = "/raft";
/// Small segments, so the history rolls segments and purges whole ones.
const SEGMENT: u64 = 160;

#[derive(Debug, Clone)]
enum Op {
    Vote(&'static [u8]),
    Append(u64, u64, u64), // term, first index, count
    Truncate(u64),
    Purge(u64, u64), // term, index
}

fn history() -> Vec<Op> {
    vec![
        Op::Vote(b"vote-1"),
        Op::Append(1, 0, 4),
        Op::Append(1, 4, 3),
        Op::Append(1, 7, 3),
        Op::Truncate(5),
        Op::Append(2, 5, 3),
        Op::Vote(b"vote-2"),
        Op::Purge(1, 4),
        Op::Append(2, 8, 4),
        Op::Purge(2, 8),
        Op::Truncate(11),
        Op::Append(3, 11, 2),
    ]
}

fn record(term: u64, index: u64) -> RaftRecord {
    let payload = match index % 3 {
        0 => RaftPayload::Blank,
        1 => RaftPayload::Record(set(&format!("k{index}"), &format!("t{term}"))),
        _ => RaftPayload::Membership(format!("members-{term}-{index}").into_bytes()),
    };
    RaftRecord {
        id: RaftLogId {
            term,
            node: term % 3 + 1,
            index,
        },
        payload,
    }
}

/// What the log should hold: entries above the purge point, the purge point, the vote.
#[derive(Debug, Clone, Default, PartialEq)]
struct Model {
    entries: BTreeMap<u64, RaftRecord>,
    purged: Option<RaftLogId>,
    vote: Option<Vec<u8>>,
}

impl Model {
    fn apply(&mut self, op: &Op) {
        match op {
            Op::Vote(v) => self.vote = Some(v.to_vec()),
            Op::Append(term, first, n) => {
                self.entries.split_off(first);
                for i in *first..first + n {
                    self.entries.insert(i, record(*term, i));
                }
            }
            Op::Truncate(from) => {
                self.entries.split_off(from);
            }
            Op::Purge(term, index) => {
                self.purged = Some(self.entries.get(index).map_or(
                    RaftLogId {
                        term: *term,
                        node: 0,
                        index: *index,
                    },
                    |r| r.id,
                ));
                self.entries = self.entries.split_off(&(index + 1));
            }
        }
    }

    /// The id a purge op uses (the entry's own id, as openraft passes it).
    fn purge_id(&self, term: u64, index: u64) -> RaftLogId {
        self.entries.get(&index).map_or(
            RaftLogId {
                term,
                node: term % 3 + 1,
                index,
            },
            |r| r.id,
        )
    }
}

fn run(log: &mut PaperRaftLog, model: &Model, op: &Op) -> Result<(), StorageError> {
    match op {
        Op::Vote(v) => log.save_vote(v),
        Op::Append(term, first, n) => {
            let records: Vec<_> = (*first..first + n).map(|i| record(*term, i)).collect();
            log.append(&records)
        }
        Op::Truncate(from) => log.truncate(*from),
        Op::Purge(term, index) => log.purge(model.purge_id(*term, *index)),
    }
}

fn open(fs: &SimFs) -> Result<PaperRaftLog, StorageError> {
    open_spared(fs, SpareMode::Off)
}

/// With `SpareMode::Inline` the log moves to pre-zeroed spare segments, made at once (so
/// deterministically) when it asks for one.
fn open_spared(fs: &SimFs, spare: SpareMode) -> Result<PaperRaftLog, StorageError> {
    PaperRaftLog::open_tuned(Box::new(fs.clone()), Path::new(DIR), SEGMENT, spare)
}

fn held(log: &PaperRaftLog) -> Vec<RaftRecord> {
    log.entries(0, u64::MAX)
}

/// `got` lies between `before` and `after`: purge point and vote are one of theirs, and the
/// entries above the purge point are a prefix of the longer list that holds the shorter one.
fn check_between(got: &PaperRaftLog, before: &Model, after: &Model, what: &str) {
    let state = got.state();
    let purged_ok = state.last_purged == before.purged || state.last_purged == after.purged;
    assert!(purged_ok, "{what}: purge point {:?}", state.last_purged);
    let vote = got.vote();
    assert!(
        vote == before.vote || vote == after.vote,
        "{what}: vote {vote:?}"
    );
    // Entries at or below a purge point (the interrupted purge's too) are garbage either way.
    let floor = [state.last_purged, before.purged, after.purged]
        .iter()
        .filter_map(|p| p.map(|p| p.index))
        .max();
    let kept = |index: u64| floor.is_none_or(|f| index > f);
    let above = |m: &Model| -> Vec<RaftRecord> {
        m.entries
            .values()
            .filter(|r| kept(r.id.index))
            .cloned()
            .collect()
    };
    let (b, a) = (above(before), above(after));
    let (short, long) = if b.len() <= a.len() { (b, a) } else { (a, b) };
    let all = held(got);
    assert!(
        all.iter()
            .all(|r| state.last_purged.is_none_or(|p| r.id.index > p.index)),
        "{what}: holds purged entries"
    );
    let entries: Vec<RaftRecord> = all.into_iter().filter(|r| kept(r.id.index)).collect();
    assert!(
        entries.len() >= short.len() && entries.len() <= long.len(),
        "{what}: {} entries, expected {} to {}",
        entries.len(),
        short.len(),
        long.len()
    );
    assert_eq!(
        entries[..],
        long[..entries.len()],
        "{what}: not a prefix of the longer state"
    );
    assert_eq!(
        entries[..short.len()],
        short[..],
        "{what}: lost entries of the shorter state"
    );
}

#[test]
fn a_power_cut_at_any_operation_of_appends_truncates_purges_and_votes_recovers_a_prefix() {
    power_cuts_recover_a_prefix(SpareMode::Off);
}

#[test]
fn with_spare_segments_a_power_cut_at_any_operation_recovers_a_prefix() {
    power_cuts_recover_a_prefix(SpareMode::Inline);
}

fn power_cuts_recover_a_prefix(spare: SpareMode) {
    let ops = history();
    let mut cuts = 0;
    for (i, op) in ops.iter().enumerate() {
        for k in 0.. {
            let fs = SimFs::new();
            let mut log = open_spared(&fs, spare).unwrap();
            let mut before = Model::default();
            for done in &ops[..i] {
                run(&mut log, &before, done).unwrap();
                before.apply(done);
            }
            let mut after = before.clone();
            after.apply(op);
            fs.inject(Fault {
                op: FaultOp::Any,
                nth: k,
                kind: FaultKind::Crash,
            });
            let result = run(&mut log, &before, op);
            if !fs.crashed() {
                result.unwrap();
                break;
            }
            // With spares, the crash can come while the next spare is made, once the op is
            // durable (a spare that cannot be made is no error): every image then holds it.
            let done = result.is_ok();
            assert!(
                !done || spare != SpareMode::Off,
                "op {i} {op:?} returned Ok through a crash"
            );
            if !done {
                // A failed log refuses everything after.
                assert!(log.save_vote(b"x").is_err());
            }
            let before = if done { &after } else { &before };
            cuts += 1;
            for seed in 0..12 {
                let image = fs.crash_image(seed);
                let what = format!("op {i} {op:?}, cut at fs op {k}, seed {seed}");
                let reopened = open_spared(&image, spare).unwrap_or_else(|e| panic!("{what}: {e}"));
                check_between(&reopened, before, &after, &what);
                // Recovery is idempotent, and the log goes on: the interrupted op can be redone.
                drop(reopened);
                let mut again =
                    open_spared(&image, spare).unwrap_or_else(|e| panic!("{what}, twice: {e}"));
                check_between(&again, before, &after, &what);
                run(&mut again, before, op).unwrap_or_else(|e| panic!("{what}, redo: {e}"));
                drop(again);
                let redone = open_spared(&image, spare)
                    .unwrap_or_else(|e| panic!("{what}, after redo: {e}"));
                check_between(&redone, &after, &after, &what);
            }
        }
    }
    assert!(cuts > 50, "only {cuts} power cuts were tried");
}

#[test]
fn a_completed_history_reopens_to_exactly_its_model() {
    let fs = SimFs::new();
    let mut log = open(&fs).unwrap();
    let mut model = Model::default();
    for op in history() {
        run(&mut log, &model, &op).unwrap();
        model.apply(&op);
    }
    drop(log);
    let log = open(&fs.crash_image(0)).unwrap();
    assert_eq!(
        held(&log),
        model.entries.values().cloned().collect::<Vec<_>>()
    );
    assert_eq!(log.state().last_purged, model.purged);
    assert_eq!(log.vote(), model.vote);
    // Purged segments are gone from the directory.
    let names = fs.list_dir(Path::new(DIR)).unwrap();
    let segments: Vec<_> = names.iter().filter(|n| n.starts_with("raftlog-")).collect();
    assert!(
        !segments
            .iter()
            .any(|n| n.as_str() == "raftlog-00000000000000000000"),
        "{names:?}"
    );
}

#[test]
fn damage_in_an_older_segment_refuses_to_open_naming_the_file() {
    let fs = SimFs::new();
    let mut log = open(&fs).unwrap();
    let mut model = Model::default();
    for op in [
        Op::Append(1, 0, 4),
        Op::Append(1, 4, 3),
        Op::Append(1, 7, 3),
    ] {
        run(&mut log, &model, &op).unwrap();
        model.apply(&op);
    }
    drop(log);
    let first = Path::new(DIR).join("raftlog-00000000000000000000");
    let mut bytes = fs.file(&first).unwrap();
    let at = bytes.len() - 5;
    bytes[at] ^= 0xff;
    fs.put_file(&first, &bytes);
    match open(&fs) {
        Err(StorageError::Corrupt { file, .. }) => assert_eq!(file, first),
        other => panic!("expected Corrupt naming {first:?}, got {other:?}"),
    }
}

#[test]
fn an_append_below_the_purge_point_reopens_without_stale_segments() {
    // openraft's storage suite does this after a state machine ran ahead of an empty log.
    let fs = SimFs::new();
    let mut log = open(&fs).unwrap();
    log.append(&(0..3).map(|i| record(1, i)).collect::<Vec<_>>())
        .unwrap();
    let upto = record(1, 2).id;
    log.purge(upto).unwrap();
    log.append(&[record(2, 1)]).unwrap();
    log.append(&[record(2, 2), record(2, 3)]).unwrap();
    drop(log);
    let log = open(&fs.crash_image(0)).unwrap_or_else(|e| panic!("reopen: {e}"));
    assert_eq!(log.state().last_purged, Some(upto));
    // Entries at or below the purge point are not kept across a restart; the rest is.
    assert_eq!(held(&log), vec![record(2, 3)]);
}

#[test]
fn an_append_batch_costs_one_sync_however_many_entries_it_holds() {
    let fs = SimFs::new();
    let mut log = PaperRaftLog::open_with(Box::new(fs.clone()), Path::new(DIR), 1 << 20).unwrap();
    log.append(&[record(1, 0)]).unwrap(); // the segment exists: no header or directory sync
                                          // The second sync from now fails: a batch of 64 that synced twice would fail.
    fs.inject(Fault {
        op: FaultOp::Sync,
        nth: 1,
        kind: FaultKind::Eio,
    });
    let batch: Vec<_> = (1..=64).map(|i| record(1, i)).collect();
    log.append(&batch).unwrap();
    let next: Vec<_> = (65..=66).map(|i| record(1, i)).collect();
    assert!(
        log.append(&next).is_err(),
        "the next batch's sync is the failing one"
    );
    // After the failure the log refuses writes, and what was synced reopens whole.
    assert!(log.append(&[record(1, 67)]).is_err());
    fs.clear_fault();
    let reopened = open(&fs.crash_image(0)).unwrap();
    assert_eq!(reopened.state().last.map(|l| l.index), Some(64));
}

/// The log moves to a spare as soon as one is ready, and its appends then overwrite zeros
/// within the file's size (an fdatasync with no metadata to commit) until the spare is full.
#[test]
fn appends_go_into_a_pre_zeroed_spare_without_growing_the_file() {
    const BIG: u64 = 4096;
    let fs = SimFs::new();
    let dir = Path::new(DIR);
    let mut log =
        PaperRaftLog::open_tuned(Box::new(fs.clone()), dir, BIG, SpareMode::Inline).unwrap();
    log.append(&[record(1, 0)]).unwrap(); // a plain segment; it asks for a spare
    assert!(
        fs.file(&dir.join("raftlog-spare")).is_some(),
        "no spare made"
    );
    log.append(&[record(1, 1)]).unwrap(); // moves to the spare
    let seg = dir.join("raftlog-00000000000000000001");
    let sizes: Vec<usize> = (2..10)
        .map(|i| {
            log.append(&[record(1, i)]).unwrap();
            fs.file(&seg).map_or(0, |b| b.len())
        })
        .collect();
    assert!(
        sizes.iter().all(|n| *n == BIG as usize),
        "the spare segment's size changed: {sizes:?}"
    );
    drop(log);
    let reopened = open(&fs.crash_image(0)).unwrap();
    assert_eq!(
        held(&reopened),
        (0..10).map(|i| record(1, i)).collect::<Vec<_>>()
    );
}

fn snapshot(index: u64, fill: u8) -> moodb_core::replicated::StoredRaftSnapshot {
    moodb_core::replicated::StoredRaftSnapshot {
        last: Some(RaftLogId {
            term: 2,
            node: 1,
            index,
        }),
        meta: format!("{{\"index\":{index}}}").into_bytes(),
        checkpoint: vec![fill; 300],
    }
}

#[test]
fn a_power_cut_while_saving_a_raft_snapshot_leaves_the_old_one_or_the_new_one() {
    let old = snapshot(10, 1);
    let new = snapshot(20, 2);
    let mut cuts = 0;
    for k in 0.. {
        let fs = SimFs::new();
        let files = open(&fs).unwrap().snapshot_files();
        files.save(&old).unwrap();
        fs.inject(Fault {
            op: FaultOp::Any,
            nth: k,
            kind: FaultKind::Crash,
        });
        let result = files.save(&new);
        if !fs.crashed() {
            result.unwrap();
            assert_eq!(files.newest().unwrap(), Some(new.clone()));
            // The older one is gone once the new one is current.
            let names = fs.list_dir(Path::new(DIR)).unwrap();
            assert!(!names.iter().any(|n| n.ends_with("00010")), "{names:?}");
            break;
        }
        cuts += 1;
        for seed in 0..12 {
            let image = fs.crash_image(seed);
            let got = open(&image).unwrap().snapshot_files().newest().unwrap();
            assert!(
                got == Some(old.clone()) || got == Some(new.clone()),
                "cut at fs op {k}, seed {seed}: {got:?}"
            );
        }
    }
    assert!(cuts >= 4, "only {cuts} power cuts were tried");
}

#[test]
fn a_damaged_raft_snapshot_header_is_refused_naming_the_file() {
    let fs = SimFs::new();
    let files = open(&fs).unwrap().snapshot_files();
    files.save(&snapshot(7, 3)).unwrap();
    let path = Path::new(DIR).join("raftsnap-00000000000000000007");
    let mut bytes = fs.read(&path).unwrap();
    bytes[20] ^= 0x40; // inside the node id
    let mut file = fs.create(&path).unwrap();
    file.write_all_at(&bytes, 0).unwrap();
    file.sync_all().unwrap();
    match files.newest() {
        Err(StorageError::Corrupt { file, offset, .. }) => {
            assert_eq!(file, path);
            assert_eq!(offset, 44);
        }
        other => panic!("{other:?}"),
    }
}
