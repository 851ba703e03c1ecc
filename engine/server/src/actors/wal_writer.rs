//! The WAL writer: the actor around the core's [`GroupCommit`], the one writer of the log, and
//! its sync thread.
//!
//! It commits once per tick: the first `Append` of a tick schedules a commit that runs after
//! tokio has polled the sockets once more, so everything queued meanwhile shares one write and
//! one sync (group commit); under light load (one record, after a group of one) it commits at
//! once, since no one else is there to wait for. A group is committed one of two ways:
//! - **on the sync thread** ([`SyncThread`]) while requests keep coming: the event loop goes on
//!   reading, applying and answering during the write and fdatasync, and what arrives
//!   meanwhile becomes the next group (pipelined group commit). The sync thread takes that
//!   group itself the moment the last one is synced ([`Handoff`]), so the disk does not wait
//!   for a round trip through the event loop's mailbox. One group at a time holds the log, so
//!   groups reach it in LSN order;
//! - **inline**, on the event loop, when the load is light (this group and the last one held
//!   one record each): one client waiting for its own write gains nothing from the overlap
//!   and would pay two thread wake-ups; and always under `every`/`never`, where a group is a
//!   write into the page cache, cheaper than the two wake-ups (SET -P1 -c 50: 1.41× the
//!   requests/s under `never`, 1.19× under `every:1000`, bench/results-2026-12-03.md).
//!
//! It also drives checkpoints (begin on the backend once every record they cover is appended,
//! hand the job to the snapshotter, report the outcome) and the `every:<ms>` sync timer.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use actix::prelude::*;
use moodb_core::backend::{BackendStatus, CheckpointReport, LogEntry, SyncPolicy};
use moodb_core::error::StorageError;
use moodb_core::failpoint;
use moodb_core::group_commit::GroupCommit;
use moodb_core::record::Lsn;

use super::{
    Append, Appended, CheckpointDone, CheckpointWritten, SetSync, Snapshotter, StartCheckpoint,
    StoreOwner, SyncNow, WriteCheckpoint,
};

/// Under the `server::ack_before_write` failpoint (a deliberately broken build for the crash
/// test), how long the records wait after their replies were released before they are written.
const ACK_BEFORE_WRITE_DELAY: Duration = Duration::from_millis(50);

/// A group this small, after a group as small, is committed inline.
const INLINE_MAX_RECORDS: usize = 1;

/// The records waiting for the next group, shared by the WAL writer (which adds them) and its
/// sync thread (which, when a group is synced, takes them as the next one unless `hold` is set:
/// a checkpoint waits for the log to be quiet). The sync thread takes them while it holds the
/// log, so no group can be appended in between and LSN order holds. Locked after the log, never
/// before it.
#[derive(Debug, Default)]
struct Queue {
    queue: Vec<LogEntry>,
    hold: bool,
    /// A group the WAL writer gave the sync thread, not taken yet.
    given: Option<Vec<LogEntry>>,
    /// The WAL writer is gone: the sync thread ends.
    closed: bool,
}

/// The [`Queue`] and the condition variable the sync thread sleeps on until it is given a
/// group. A plain futex wait: a channel's receiver (actix's `SyncArbiter` runs on crossbeam's)
/// spins with `sched_yield` before it sleeps, and on a machine whose two cores are busy (a
/// checkpoint running) each yield gave the core away for a scheduler slice: `perf trace`
/// showed the sync thread's `sched_yield` calls taking 2–5 ms, with a group waiting.
#[derive(Debug, Default)]
struct Handoff {
    state: Mutex<Queue>,
    given: Condvar,
}

impl Handoff {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

type SharedHandoff = Arc<Handoff>;

/// The commit path, shared by the WAL writer and its sync thread (only one of them uses it at a
/// time: the WAL writer never touches it while a group is in flight, but for shutdown and the
/// `every` timer, which wait for the group).
type SharedLog = Arc<Mutex<GroupCommit>>;

fn lock(log: &SharedLog) -> MutexGuard<'_, GroupCommit> {
    // A panic while committing leaves the backend as it was: use it (it refuses writes if it
    // failed).
    log.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Appends `entries` as one group; the outcome and the backend's figures after it.
fn commit_group(
    log: &SharedLog,
    entries: &[LogEntry],
) -> Option<(Result<Lsn, StorageError>, BackendStatus)> {
    commit_locked(&mut lock(log), entries)
}

fn commit_locked(
    log: &mut GroupCommit,
    entries: &[LogEntry],
) -> Option<(Result<Lsn, StorageError>, BackendStatus)> {
    let result = log.commit(entries)?;
    Some((result, log.status()))
}

/// The one writer of the log.
pub struct WalWriter {
    log: SharedLog,
    sync: SyncPolicy,
    store: Addr<StoreOwner>,
    snapshotter: Addr<Snapshotter>,
    /// Whether busy groups go to a sync thread.
    pipelined: bool,
    /// The sync thread, once started; `None`: every group is committed inline.
    syncer: Option<SyncThread>,
    /// Records waiting for the next group, in LSN order.
    handoff: SharedHandoff,
    commit_scheduled: bool,
    /// A group is being committed on the sync thread (its last completion, one not followed
    /// by another group, has not been handled yet).
    in_flight: bool,
    /// Records in the last group committed.
    last_group: usize,
    /// A checkpoint that waits for the group in flight.
    checkpoint_waiting: Option<StartCheckpoint>,
    /// The `every:<ms>` timer, while that is the policy.
    every_timer: Option<SpawnHandle>,
}

impl WalWriter {
    /// A WAL writer over `log`; when `pipelined`, busy groups are committed on a sync thread
    /// of its own.
    pub fn new(
        log: GroupCommit,
        sync: SyncPolicy,
        store: Addr<StoreOwner>,
        snapshotter: Addr<Snapshotter>,
        pipelined: bool,
    ) -> Self {
        WalWriter {
            log: Arc::new(Mutex::new(log)),
            sync,
            store,
            snapshotter,
            pipelined,
            syncer: None,
            handoff: SharedHandoff::default(),
            commit_scheduled: false,
            in_flight: false,
            last_group: 0,
            checkpoint_waiting: None,
            every_timer: None,
        }
    }

    /// Starts the `every:<ms>` sync timer if that is the policy.
    fn start_every_timer(&mut self, ctx: &mut Context<Self>) {
        if let SyncPolicy::Every(period) = self.sync {
            let timer = ctx.run_interval(period.max(Duration::from_millis(1)), |w, _| {
                let mut log = lock(&w.log);
                if log.unsynced() {
                    if let Err(err) = log.sync() {
                        let status = log.status();
                        drop(log);
                        w.report(Err(err), status);
                    }
                }
            });
            self.every_timer = Some(timer);
        }
    }

    /// Commits everything queued as one group, inline or on the sync thread, unless a group is
    /// in flight (then this one follows when it completes).
    fn commit(&mut self) {
        self.commit_scheduled = false;
        if self.in_flight {
            return;
        }
        let entries = std::mem::take(&mut self.handoff.lock().queue);
        if entries.is_empty() {
            return;
        }
        let light = self.light(entries.len());
        self.last_group = entries.len();
        match &self.syncer {
            // Only a sync is worth the trip to another thread.
            Some(syncer) if !light && self.sync == SyncPolicy::Always => {
                self.in_flight = true;
                syncer.give(entries);
            }
            _ => self.commit_inline(entries),
        }
    }

    /// Light load: a group of `records` after a group as small (one client waiting for its
    /// own write). Such a group is committed inline, without the yield first.
    fn light(&self, records: usize) -> bool {
        records <= INLINE_MAX_RECORDS && self.last_group <= INLINE_MAX_RECORDS
    }

    fn commit_inline(&mut self, entries: Vec<LogEntry>) {
        if let Some((result, status)) = commit_group(&self.log, &entries) {
            self.report(result, status);
        }
    }

    fn report(&self, result: Result<Lsn, StorageError>, status: BackendStatus) {
        self.store.do_send(Appended { result, status });
    }

    fn checkpoint_done(&self, result: Result<CheckpointReport, StorageError>) {
        self.store.do_send(CheckpointDone {
            result,
            status: lock(&self.log).status(),
        });
    }

    /// Appends what the checkpoint covers, then begins it and hands the job to the snapshotter.
    /// Records queued after the checkpoint's LSN (they arrived while it waited for a group in
    /// flight) stay queued for the next group: the checkpoint's log segment starts after them.
    fn start_checkpoint(&mut self, msg: StartCheckpoint, ctx: &mut Context<Self>) {
        let entries = {
            let mut h = self.handoff.lock();
            h.hold = false;
            let after = h.queue.partition_point(|e| e.lsn <= msg.lsn);
            let later = h.queue.split_off(after);
            std::mem::replace(&mut h.queue, later)
        };
        self.commit_inline(entries);
        let begun = lock(&self.log).begin_checkpoint(msg.lsn);
        match begun {
            Ok(Some(job)) => self.snapshotter.do_send(WriteCheckpoint {
                job,
                state: msg.state,
                reply_to: ctx.address().recipient(),
            }),
            // The backend compacts by itself: nothing to write.
            Ok(None) => self.checkpoint_done(Ok(CheckpointReport {
                lsn: msg.lsn,
                keys: msg.state.len() as u64,
                bytes: 0,
                path: None,
                elapsed: Duration::ZERO,
            })),
            Err(err) => self.checkpoint_done(Err(err)),
        }
    }
}

impl Actor for WalWriter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.start_every_timer(ctx);
        if self.pipelined {
            let spawned = SyncThread::spawn(
                Arc::clone(&self.log),
                Arc::clone(&self.handoff),
                ctx.address().recipient(),
            );
            match spawned {
                Ok(thread) => self.syncer = Some(thread),
                // Every group is then committed inline: slower under load, as correct.
                Err(err) => eprintln!(
                    "moodb: no sync thread ({err}): every group is written and synced on the event loop"
                ),
            }
        }
    }
}

impl Handler<Append> for WalWriter {
    type Result = ();

    fn handle(&mut self, msg: Append, ctx: &mut Context<Self>) {
        if failpoint::enabled(failpoint::SERVER_ACK_BEFORE_WRITE) {
            // Broken on purpose: release the replies now, write the records a little later.
            if let Some(last) = msg.0.last().map(|e| e.lsn) {
                let status = lock(&self.log).status();
                self.report(Ok(last), status);
            }
            self.handoff.lock().queue.extend(msg.0);
            if !self.commit_scheduled {
                self.commit_scheduled = true;
                ctx.run_later(ACK_BEFORE_WRITE_DELAY, |w, _| w.commit());
            }
            return;
        }
        let queued = {
            let mut h = self.handoff.lock();
            h.queue.extend(msg.0);
            h.queue.len()
        };
        // In flight: the sync thread takes what is queued when its group is synced (or, if it
        // finished first, the completion on its way commits it).
        if self.commit_scheduled || self.in_flight {
            return;
        }
        if self.light(queued) {
            // Light load (one client waiting for its own write): nothing else is coming this
            // tick, and the yield below would cost a poll of the sockets (an epoll_wait) per
            // request.
            self.commit();
        } else {
            self.commit_scheduled = true;
            // Yield once first: tokio runs a yielded task after it has polled the sockets, so
            // requests that arrived meanwhile are decoded, applied and join this group (as
            // redis syncs only after handling every ready event of an epoll round).
            ctx.spawn(
                tokio::task::yield_now()
                    .into_actor(self)
                    .map(|_, w, _| w.commit()),
            );
        }
    }
}

impl Handler<GroupCommitted> for WalWriter {
    type Result = ();

    fn handle(&mut self, msg: GroupCommitted, ctx: &mut Context<Self>) {
        self.report(msg.result, msg.status);
        self.last_group = msg.entries.len();
        // The records are dropped here, on the event loop; a spare Vec is kept for the queue.
        let mut spent = msg.entries;
        spent.clear();
        if msg.next_taken {
            // The sync thread went on with the next group: still in flight.
            return;
        }
        self.in_flight = false;
        {
            let mut h = self.handoff.lock();
            if h.queue.is_empty() && h.queue.capacity() < spent.capacity() {
                h.queue = spent;
            }
        }
        if let Some(checkpoint) = self.checkpoint_waiting.take() {
            self.start_checkpoint(checkpoint, ctx);
        }
        // What arrived after the sync thread looked is the next group: commit it now.
        self.commit();
    }
}

impl Handler<SetSync> for WalWriter {
    type Result = ();

    /// The new policy holds for the groups appended from now on (a group in flight holds the
    /// log: this waits for it). Switching to `always` syncs what came before at once.
    fn handle(&mut self, msg: SetSync, ctx: &mut Context<Self>) {
        if msg.0 == self.sync {
            return;
        }
        self.sync = msg.0;
        if let Some(timer) = self.every_timer.take() {
            ctx.cancel_future(timer);
        }
        self.start_every_timer(ctx);
        let mut log = lock(&self.log);
        log.set_sync_policy(msg.0);
        if msg.0 == SyncPolicy::Always && log.unsynced() {
            if let Err(err) = log.sync() {
                let status = log.status();
                drop(log);
                self.report(Err(err), status);
            }
        }
    }
}

impl Handler<SyncNow> for WalWriter {
    type Result = Result<(), StorageError>;

    fn handle(&mut self, _: SyncNow, _: &mut Context<Self>) -> Result<(), StorageError> {
        // Waits for a group in flight (it holds the log), then appends what is queued. Nothing is
        // queued between the two (this handler runs to its end), so the sync thread, which
        // takes only what is queued, cannot append anything after these records.
        let entries = std::mem::take(&mut self.handoff.lock().queue);
        self.commit_inline(entries);
        lock(&self.log).sync()
    }
}

impl Handler<StartCheckpoint> for WalWriter {
    type Result = ();

    fn handle(&mut self, msg: StartCheckpoint, ctx: &mut Context<Self>) {
        // The checkpoint covers everything through msg.lsn: the group in flight first, and the
        // sync thread stops taking groups so that the log becomes quiet.
        if self.in_flight {
            self.handoff.lock().hold = true;
            self.checkpoint_waiting = Some(msg);
        } else {
            self.start_checkpoint(msg, ctx);
        }
    }
}

impl Handler<CheckpointWritten> for WalWriter {
    type Result = ();

    fn handle(&mut self, msg: CheckpointWritten, _: &mut Context<Self>) {
        if let Ok(report) = &msg.0 {
            lock(&self.log).checkpoint_finished(report);
        }
        self.checkpoint_done(msg.0);
    }
}

/// The sync thread: commits the groups the WAL writer gives it off the event loop, and after
/// each the records that waited meanwhile ([`Queue`]), until none wait; then it sleeps until it
/// is given the next. Dropped with the WAL writer: it finishes the group in hand and ends.
struct SyncThread {
    handoff: SharedHandoff,
    thread: Option<JoinHandle<()>>,
}

impl SyncThread {
    fn spawn(
        log: SharedLog,
        handoff: SharedHandoff,
        reply_to: Recipient<GroupCommitted>,
    ) -> std::io::Result<SyncThread> {
        let shared = Arc::clone(&handoff);
        let thread = std::thread::Builder::new()
            .name("moodb-sync".into())
            .spawn(move || {
                // Started from the event loop: free of its pin, when it has one.
                moodb_core::cpus::enter_helper_thread();
                sync_thread(&log, &shared, &reply_to)
            })?;
        Ok(SyncThread {
            handoff,
            thread: Some(thread),
        })
    }

    /// Hands `entries` to the thread as its next group (the WAL writer gives one only when
    /// none is in flight).
    fn give(&self, entries: Vec<LogEntry>) {
        self.handoff.lock().given = Some(entries);
        self.handoff.given.notify_one();
    }
}

impl Drop for SyncThread {
    fn drop(&mut self) {
        self.handoff.lock().closed = true;
        self.handoff.given.notify_one();
        if let Some(thread) = self.thread.take() {
            // Joined: a group in hand is finished before the log goes. Its panic (there is no
            // one left to tell) is dropped.
            let _ = thread.join();
        }
    }
}

/// The sync thread's loop: wait to be given a group, commit it and then the records queued
/// meanwhile, answer each.
fn sync_thread(log: &SharedLog, handoff: &Handoff, reply_to: &Recipient<GroupCommitted>) {
    loop {
        let entries = {
            let mut q = handoff.lock();
            loop {
                if let Some(entries) = q.given.take() {
                    break entries;
                }
                if q.closed {
                    return;
                }
                q = handoff
                    .given
                    .wait(q)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        commit_groups(log, handoff, entries, reply_to);
    }
}

/// Commits `entries`, then, as long as records were queued meanwhile and no checkpoint holds
/// the log, those as the next group; one `GroupCommitted` per group.
fn commit_groups(
    log: &SharedLog,
    handoff: &Handoff,
    mut entries: Vec<LogEntry>,
    reply_to: &Recipient<GroupCommitted>,
) {
    // The log stays locked from group to group: nothing else appends in between.
    let mut log = lock(log);
    loop {
        let (result, status) =
            commit_locked(&mut log, &entries).unwrap_or_else(|| (Ok(0), log.status()));
        let next = {
            let mut q = handoff.lock();
            (!q.hold && !q.queue.is_empty()).then(|| std::mem::take(&mut q.queue))
        };
        // Always answer: the WAL writer waits for the last group before it commits again.
        reply_to.do_send(GroupCommitted {
            result,
            status,
            entries,
            next_taken: next.is_some(),
        });
        match next {
            Some(next) => entries = next,
            None => return,
        }
    }
}

/// Sync thread → WAL writer: the group is appended (and synced under `always`), or failed.
#[derive(Message)]
#[rtype(result = "()")]
struct GroupCommitted {
    result: Result<Lsn, StorageError>,
    status: BackendStatus,
    /// The group's records, given back to be dropped on the event loop: their keys and
    /// values share the sessions' read buffers, whose reference counts and memory then stay
    /// on one core (dropped here they cost cross-core cache misses and frees).
    entries: Vec<LogEntry>,
    /// The sync thread took the records queued meanwhile as its next group: the WAL writer
    /// waits for that one's completion.
    next_taken: bool,
}
