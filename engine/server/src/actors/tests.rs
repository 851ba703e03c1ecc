//! Actor tests with an in-memory backend double: group commit (one append per tick), reply
//! order, a failed append refusing writes while reads go on, and transactions (EXEC is one
//! record, WATCH sees other sessions' writes, a closed session's transaction is dropped).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;

use super::*;
use crate::config::CheckpointConfig;
use moodb_core::backend::{
    AppendReport, Backend, BackendStatus, CheckpointJob, CheckpointReport, LogEntry, Recovered,
    RecoveryReport, SyncPolicy,
};
use moodb_core::error::StorageError;
use moodb_core::keyspace::Databases;
use moodb_core::record::Lsn;
use moodb_core::resp::{Frame, Limits};

#[derive(Default)]
struct Shared {
    /// Number of entries of each append call.
    appends: Vec<usize>,
    fail: bool,
    /// How long each append takes (a slow fdatasync).
    delay: Duration,
    /// The last LSN appended.
    last_lsn: Lsn,
    /// Each checkpoint begun: its LSN, or why it was refused (as the paper backend refuses one
    /// whose LSN is not the last appended).
    checkpoints: Vec<Result<Lsn, String>>,
}

/// Keeps nothing but counts; fails every append once told to.
struct MemBackend(Arc<Mutex<Shared>>);

impl Backend for MemBackend {
    fn name(&self) -> &'static str {
        "mem"
    }
    fn set_sync_policy(&mut self, _: SyncPolicy) {}
    fn recover(&mut self) -> Result<Recovered, StorageError> {
        Ok(Recovered {
            state: Databases::default(),
            last_lsn: 0,
            report: RecoveryReport::default(),
        })
    }
    fn append(&mut self, entries: &[LogEntry]) -> Result<AppendReport, StorageError> {
        let delay = self.0.lock().unwrap().delay;
        std::thread::sleep(delay);
        let mut s = self.0.lock().unwrap();
        if s.fail {
            return Err(StorageError::io(
                "fsync",
                std::io::Error::other("injected fsync failure"),
            ));
        }
        s.appends.push(entries.len());
        if let Some(last) = entries.last() {
            s.last_lsn = last.lsn;
        }
        Ok(AppendReport {
            bytes: 0,
            synced: true,
        })
    }
    fn sync(&mut self) -> Result<(), StorageError> {
        Ok(())
    }
    fn begin_checkpoint(
        &mut self,
        lsn: Lsn,
    ) -> Result<Option<Box<dyn CheckpointJob>>, StorageError> {
        let mut s = self.0.lock().unwrap();
        let begun = if lsn == s.last_lsn {
            Ok(lsn)
        } else {
            Err(format!(
                "as of {lsn}, but the last appended is {}",
                s.last_lsn
            ))
        };
        s.checkpoints.push(begun);
        Ok(None)
    }
    fn checkpoint_finished(&mut self, _: &CheckpointReport) {}
    fn status(&self) -> BackendStatus {
        BackendStatus::default()
    }
}

/// Replies received, with their batch numbers.
type Received = Arc<Mutex<Vec<(u64, Vec<Frame>)>>>;

/// Stands in for a session: collects replies.
struct Collector(Received);

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<Replies> for Collector {
    type Result = ();
    fn handle(&mut self, msg: Replies, _: &mut Context<Self>) {
        self.0.lock().unwrap().push((msg.seq, msg.frames));
    }
}

fn settings() -> StoreSettings {
    StoreSettings {
        notify_keyspace_events: Default::default(),
        sync: SyncPolicy::Always,
        checkpoint: CheckpointConfig {
            log_bytes: 0,
            interval_ms: 0,
            write_rate: 0,
        },
        limits: Limits::default(),
        databases: 16,
        backend: "mem".into(),
        data_dir: ".".into(),
        port: 0,
        process_id: std::process::id(),
        recovery: String::new(),
        ..StoreSettings::default()
    }
}

fn req(words: &[&str]) -> Vec<Bytes> {
    words
        .iter()
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect()
}

fn start(shared: &Arc<Mutex<Shared>>) -> Addr<StoreOwner> {
    start_with(shared, false)
}

/// A store owner and WAL writer over `shared`; with `sync_thread`, busy groups are committed on
/// a sync thread.
fn start_with(shared: &Arc<Mutex<Shared>>, sync_thread: bool) -> Addr<StoreOwner> {
    let backend = MemBackend(Arc::clone(shared));
    let snapshotter = SyncArbiter::start(1, || Snapshotter);
    StoreOwner::create(move |ctx| {
        let mut owner = StoreOwner::new(
            Databases::default(),
            0,
            BackendStatus::default(),
            settings(),
        );
        owner.set_wal(
            WalWriter::new(
                moodb_core::group_commit::GroupCommit::new(Box::new(backend)),
                SyncPolicy::Always,
                ctx.address(),
                snapshotter,
                sync_thread,
            )
            .start(),
        );
        owner
    })
}

/// A batch of `requests` from `session`, its replies going to `reply_to`.
fn batch(
    session: u64,
    seq: u64,
    requests: Vec<Vec<Bytes>>,
    reply_to: &Recipient<Replies>,
) -> Batch {
    Batch {
        session,
        seq,
        requests: requests.into_iter().map(Into::into).collect(),
        reply_to: std::sync::Arc::new(reply_to.clone()),
        proto: Default::default(),
    }
}

/// The two-request batch number `seq` of session 1: `SET k<seq> v`, `INCR n`.
fn set_and_incr(seq: u64, reply_to: &Recipient<Replies>) -> Batch {
    let requests = vec![req(&["SET", &format!("k{seq}"), "v"]), req(&["INCR", "n"])];
    batch(1, seq, requests, reply_to)
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}

#[test]
fn batches_of_one_tick_share_one_append() {
    let shared = Arc::new(Mutex::new(Shared::default()));
    let replies = Arc::new(Mutex::new(Vec::new()));
    System::new().block_on(async {
        let store = start(&shared);
        let me = Collector(Arc::clone(&replies)).start().recipient();
        for seq in 0..3 {
            store.do_send(set_and_incr(seq, &me));
        }
        settle().await;
    });
    assert_eq!(
        shared.lock().unwrap().appends,
        vec![6],
        "one group of six records"
    );
    let replies = replies.lock().unwrap();
    assert_eq!(replies.len(), 3);
    assert_eq!(replies[2], (2, vec![Frame::ok(), Frame::Integer(3)]));
}

#[test]
fn while_a_group_syncs_on_the_sync_thread_the_next_one_gathers() {
    let shared = Arc::new(Mutex::new(Shared {
        delay: Duration::from_millis(40),
        ..Shared::default()
    }));
    let replies = Arc::new(Mutex::new(Vec::new()));
    System::new().block_on(async {
        let store = start_with(&shared, true);
        let me = Collector(Arc::clone(&replies)).start().recipient();
        let send = |seq: u64| store.do_send(set_and_incr(seq, &me));
        (0..3).for_each(send);
        tokio::time::sleep(Duration::from_millis(10)).await;
        // The first group is being synced off the event loop: the loop still answers...
        assert!(replies.lock().unwrap().is_empty(), "nothing is durable yet");
        // ... and applies what comes meanwhile, which waits to be the next group.
        (3..6).for_each(send);
        tokio::time::sleep(Duration::from_millis(200)).await;
    });
    assert_eq!(
        shared.lock().unwrap().appends,
        vec![6, 6],
        "two groups, in order"
    );
    let replies = replies.lock().unwrap();
    assert_eq!(replies.len(), 6);
    assert_eq!(replies[5], (5, vec![Frame::ok(), Frame::Integer(6)]));
}

/// Stands in for a session: notes, with each reply, how many groups were durable by then.
struct DurableWatcher {
    shared: Arc<Mutex<Shared>>,
    seen: Arc<Mutex<Vec<(u64, usize)>>>,
}

impl Actor for DurableWatcher {
    type Context = Context<Self>;
}

impl Handler<Replies> for DurableWatcher {
    type Result = ();
    fn handle(&mut self, msg: Replies, _: &mut Context<Self>) {
        let durable = self.shared.lock().unwrap().appends.len();
        self.seen.lock().unwrap().push((msg.seq, durable));
    }
}

#[test]
fn the_sync_thread_takes_the_next_group_itself_and_each_waits_for_its_own_sync() {
    let shared = Arc::new(Mutex::new(Shared {
        delay: Duration::from_millis(40),
        ..Shared::default()
    }));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let appends_while_blocked = System::new().block_on(async {
        let store = start_with(&shared, true);
        let me = DurableWatcher {
            shared: Arc::clone(&shared),
            seen: Arc::clone(&seen),
        }
        .start()
        .recipient();
        let send = |seq: u64| store.do_send(set_and_incr(seq, &me));
        (0..3).for_each(send);
        tokio::time::sleep(Duration::from_millis(10)).await;
        (3..6).for_each(send);
        tokio::time::sleep(Duration::from_millis(10)).await;
        // The event loop stops here (as if busy) while the first group syncs: the second one,
        // queued meanwhile, is appended by the sync thread without the loop.
        std::thread::sleep(Duration::from_millis(300));
        let appends = shared.lock().unwrap().appends.clone();
        tokio::time::sleep(Duration::from_millis(100)).await;
        appends
    });
    assert_eq!(appends_while_blocked, vec![6, 6]);
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_unstable();
    assert_eq!(seen.len(), 6);
    for (seq, durable) in seen {
        let group = if seq < 3 { 1 } else { 2 };
        assert!(
            durable >= group,
            "batch {seq} answered before its group was durable"
        );
    }
}

#[test]
fn a_checkpoint_asked_while_a_group_syncs_covers_exactly_its_lsn() {
    let shared = Arc::new(Mutex::new(Shared {
        delay: Duration::from_millis(40),
        ..Shared::default()
    }));
    let replies = Arc::new(Mutex::new(Vec::new()));
    System::new().block_on(async {
        let store = start_with(&shared, true);
        let me = Collector(Arc::clone(&replies)).start().recipient();
        let send = |seq: u64| store.do_send(set_and_incr(seq, &me));
        (0..3).for_each(send);
        tokio::time::sleep(Duration::from_millis(10)).await;
        // While the first group syncs: two more writes, BGSAVE (a checkpoint as of LSN 10),
        // then writes that come after the checkpoint's LSN and must not be appended before it.
        (3..5).for_each(send);
        store.do_send(batch(1, 5, vec![req(&["BGSAVE"])], &me));
        tokio::time::sleep(Duration::from_millis(5)).await;
        (6..9).for_each(send);
        tokio::time::sleep(Duration::from_millis(300)).await;
    });
    let shared = shared.lock().unwrap();
    assert_eq!(shared.checkpoints, vec![Ok(10)]);
    assert_eq!(
        shared.last_lsn, 16,
        "the writes after the checkpoint were appended too"
    );
    assert_eq!(replies.lock().unwrap().len(), 9);
}

#[test]
fn a_failed_append_refuses_writes_but_reads_go_on() {
    let shared = Arc::new(Mutex::new(Shared::default()));
    let replies = Arc::new(Mutex::new(Vec::new()));
    System::new().block_on(async {
        let store = start(&shared);
        let me = Collector(Arc::clone(&replies)).start().recipient();
        let send = |seq, words: &[&str]| store.do_send(batch(1, seq, vec![req(words)], &me));
        send(0, &["SET", "a", "1"]);
        settle().await;
        shared.lock().unwrap().fail = true;
        send(1, &["SET", "b", "2"]);
        settle().await;
        send(2, &["GET", "a"]);
        send(3, &["GET", "b"]);
        send(4, &["SET", "c", "3"]);
        settle().await;
    });
    let replies = replies.lock().unwrap();
    let by_seq = |seq| {
        replies
            .iter()
            .find(|r| r.0 == seq)
            .map(|r| r.1[0].clone())
            .unwrap()
    };
    assert_eq!(by_seq(0), Frame::ok());
    assert!(matches!(by_seq(1), Frame::Error(e) if e.contains("injected fsync failure")));
    assert_eq!(by_seq(2), Frame::bulk("1"));
    // b's write was never durable: nobody may see it.
    assert!(matches!(by_seq(3), Frame::Error(_)));
    assert!(matches!(by_seq(4), Frame::Error(e) if e.contains("refuses writes")));
}

#[test]
fn exec_is_one_record_and_watch_sees_other_sessions() {
    let shared = Arc::new(Mutex::new(Shared::default()));
    let replies = Arc::new(Mutex::new(Vec::new()));
    System::new().block_on(async {
        let store = start(&shared);
        let me = Collector(Arc::clone(&replies)).start().recipient();
        let send = |session, seq, words: &[&[&str]]| {
            store.do_send(batch(
                session,
                seq,
                words.iter().map(|w| req(w)).collect(),
                &me,
            ))
        };
        // Session 1: three writes in one transaction.
        send(
            1,
            0,
            &[
                &["MULTI"],
                &["SET", "a", "1"],
                &["MSET", "b", "2", "c", "3"],
                &["INCR", "a"],
                &["EXEC"],
            ],
        );
        settle().await;
        // Session 2 watches a; session 3 changes it; session 2's EXEC is refused.
        send(2, 1, &[&["WATCH", "a"], &["MULTI"], &["SET", "a", "mine"]]);
        send(3, 2, &[&["SET", "a", "theirs"]]);
        send(2, 3, &[&["EXEC"], &["GET", "a"]]);
        settle().await;
        // A closed session's transaction is gone: its EXEC is now without MULTI.
        send(4, 4, &[&["MULTI"]]);
        store.do_send(SessionClosed(4));
        send(4, 5, &[&["EXEC"]]);
        settle().await;
    });
    assert_eq!(
        shared.lock().unwrap().appends,
        vec![1, 1],
        "the transaction is one record; the aborted one appends nothing"
    );
    let replies = replies.lock().unwrap();
    let by_seq = |seq| replies.iter().find(|r| r.0 == seq).unwrap().1.clone();
    let queued = Frame::Simple("QUEUED".into());
    assert_eq!(
        by_seq(0),
        vec![
            Frame::ok(),
            queued.clone(),
            queued.clone(),
            queued.clone(),
            Frame::Array(vec![Frame::ok(), Frame::ok(), Frame::Integer(2)]),
        ]
    );
    assert_eq!(by_seq(1), vec![Frame::ok(), Frame::ok(), queued]);
    assert_eq!(by_seq(3), vec![Frame::NullArray, Frame::bulk("theirs")]);
    assert_eq!(by_seq(5), vec![Frame::err("EXEC without MULTI")]);
}
