//! The raft storage (issue 14, first step) on real files: openraft's storage conformance suite
//! (`openraft::testing::Suite::test_all`) against the paper raft log in a temp dir and the
//! key-space state machine, then the same log reopened after appends, a truncate, a purge and a
//! vote, and a snapshot of real keys carried from one state machine to another.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test
#![allow(clippy::result_large_err)] // openraft's StorageError, as its StoreBuilder returns it

use std::collections::BTreeSet;
use std::sync::Arc;

use moodb_backends::paper::fs::StdFs;
use moodb_backends::paper::raft_log::{PaperRaftLog, PaperSnapshotCodec};
use moodb_core::Record;
use moodb_server::replication::types::{NodeId, TypeConfig};
use moodb_server::replication::{LogStore, StateMachine, Write};
use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{
    CommittedLeaderId, Entry, EntryPayload, LogId, Membership, RaftLogReader, RaftSnapshotBuilder,
    StorageError, StorageIOError, Vote,
};

/// Builds a log store on a fresh temp dir (the guard) and an empty state machine.
struct Builder;

fn open(dir: &std::path::Path, segment_bytes: u64) -> Result<LogStore, StorageError<NodeId>> {
    let log = PaperRaftLog::open_with(Box::new(StdFs), dir, segment_bytes)
        .map_err(|e| StorageIOError::write_logs(&e))?;
    Ok(LogStore::new(Box::new(log)))
}

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<NodeId>> {
        let dir = tempfile::tempdir().map_err(|e| StorageIOError::write_logs(&e))?;
        // Small segments, so the suite's purges and truncates cross segment boundaries.
        let log = open(dir.path(), 300)?;
        let sm = StateMachine::new(16, Arc::new(PaperSnapshotCodec));
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite_on_real_files() {
    Suite::test_all(Builder).unwrap();
}

fn id(term: u64, node: u64, index: u64) -> LogId<NodeId> {
    LogId::new(CommittedLeaderId::new(term, node), index)
}

fn set(key: &str, value: &str) -> Record {
    Record::Set {
        key: key.as_bytes().to_vec().into(),
        value: value.as_bytes().to_vec().into(),
        expires_at_ms: None,
    }
}

fn normal(term: u64, index: u64, record: Record) -> Entry<TypeConfig> {
    Entry {
        log_id: id(term, 1, index),
        payload: EntryPayload::Normal(Write(record)),
    }
}

/// Appends `entries` and waits for the flush callback.
async fn append(store: &mut LogStore, entries: Vec<Entry<TypeConfig>>) {
    store.blocking_append(entries).await.unwrap();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn raft_log_survives_a_restart_after_truncate_purge_and_vote() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        {
            let mut store = open(dir.path(), 200).unwrap();
            let members = Membership::new(vec![BTreeSet::from([1, 2, 3])], None);
            append(
                &mut store,
                vec![Entry {
                    log_id: id(1, 1, 1),
                    payload: EntryPayload::Membership(members),
                }],
            )
            .await;
            // Batches of three, so the 200-byte segments roll and a purge can drop some.
            for first in (2..=20).step_by(3) {
                let batch: Vec<_> = (first..(first + 3).min(21))
                    .map(|i| normal(1, i, set(&format!("k{i}"), "v")))
                    .collect();
                append(&mut store, batch).await;
            }
            // A new leader of term 2 replaces 15.. and the prefix up to 5 is purged.
            store.truncate(id(1, 1, 15)).await.unwrap();
            append(&mut store, vec![normal(2, 15, set("k15", "new"))]).await;
            store.purge(id(1, 1, 5)).await.unwrap();
            store.save_vote(&Vote::new_committed(2, 3)).await.unwrap();
        }
        let mut store = open(dir.path(), 200).unwrap();
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(id(1, 1, 5)));
        assert_eq!(state.last_log_id, Some(id(2, 1, 15)));
        assert_eq!(
            store.read_vote().await.unwrap(),
            Some(Vote::new_committed(2, 3))
        );
        let entries = store.try_get_log_entries(0..100).await.unwrap();
        let ids: Vec<u64> = entries.iter().map(|e| e.log_id.index).collect();
        assert_eq!(ids, (6..=15).collect::<Vec<_>>());
        match &entries.last().unwrap().payload {
            EntryPayload::Normal(w) => assert_eq!(w.0, set("k15", "new")),
            other => panic!("entry 15 is {other:?}"),
        }
        // The purge removed whole segments from the directory.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("raftlog-"))
            .collect();
        assert!(
            !names.contains(&"raftlog-00000000000000000001".to_string()),
            "{names:?}"
        );
    });
}

#[test]
fn snapshot_of_real_keys_installs_on_another_state_machine() {
    runtime().block_on(async {
        let codec = Arc::new(PaperSnapshotCodec);
        let mut leader = StateMachine::new(16, codec.clone());
        let entries = vec![
            normal(1, 1, set("a", "1")),
            normal(1, 2, Record::in_db(3, set("b", "2"))),
            normal(
                1,
                3,
                Record::Txn(vec![
                    set("c", "3"),
                    Record::Delete {
                        key: b"a".to_vec().into(),
                    },
                ]),
            ),
        ];
        let applied = leader.apply(entries).await.unwrap();
        assert_eq!(
            applied.iter().map(|a| a.index).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        let snapshot = leader
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        assert_eq!(snapshot.meta.last_log_id, Some(id(1, 1, 3)));
        // The bytes are a checkpoint as of index 3.
        assert_eq!(&snapshot.snapshot.get_ref()[0..8], b"MOODBCKP");

        let mut follower = StateMachine::new(16, codec);
        let mut data = follower.begin_receiving_snapshot().await.unwrap();
        *data = *snapshot.snapshot;
        follower
            .install_snapshot(&snapshot.meta, data)
            .await
            .unwrap();
        let (dbs, last) = follower.state();
        assert_eq!(last, Some(id(1, 1, 3)));
        assert!(dbs.db0().get(b"a").is_none());
        assert_eq!(dbs.db0().get(b"c").unwrap().data, b"3");
        assert_eq!(dbs.get(3).unwrap().get(b"b").unwrap().data, b"2");
    });
}
