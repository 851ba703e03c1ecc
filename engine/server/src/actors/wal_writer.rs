//! The WAL writer: the actor around the core's [`GroupCommit`], the one writer of the log. It
//! commits once per tick: the first `Append` of a tick schedules a commit that runs after
//! tokio has polled the sockets once more, so everything queued meanwhile shares one write and
//! one sync (group commit). It also drives checkpoints (begin on the backend, hand the job to
//! the snapshotter, report the outcome) and the `every:<ms>` sync timer.

use std::time::Duration;

use actix::prelude::*;
use moodb_core::backend::{CheckpointReport, SyncPolicy};
use moodb_core::error::StorageError;
use moodb_core::failpoint;
use moodb_core::group_commit::GroupCommit;

use super::{
    Append, Appended, CheckpointDone, CheckpointWritten, Snapshotter, StartCheckpoint, StoreOwner,
    SyncNow, WriteCheckpoint,
};

/// Under the `server::ack_before_write` failpoint (a deliberately broken build for the crash
/// test), how long the records wait after their replies were released before they are written.
const ACK_BEFORE_WRITE_DELAY: Duration = Duration::from_millis(50);

/// The one writer of the log.
pub struct WalWriter {
    log: GroupCommit,
    sync: SyncPolicy,
    store: Addr<StoreOwner>,
    snapshotter: Addr<Snapshotter>,
    commit_scheduled: bool,
}

impl WalWriter {
    pub fn new(
        log: GroupCommit,
        sync: SyncPolicy,
        store: Addr<StoreOwner>,
        snapshotter: Addr<Snapshotter>,
    ) -> Self {
        WalWriter {
            log,
            sync,
            store,
            snapshotter,
            commit_scheduled: false,
        }
    }

    /// Appends everything queued as one group and tells the store owner.
    fn commit(&mut self) {
        self.commit_scheduled = false;
        if let Some(result) = self.log.commit() {
            self.report(result);
        }
    }

    fn report(&self, result: Result<u64, StorageError>) {
        self.store.do_send(Appended {
            result,
            status: self.log.status(),
        });
    }

    fn checkpoint_done(&self, result: Result<CheckpointReport, StorageError>) {
        self.store.do_send(CheckpointDone {
            result,
            status: self.log.status(),
        });
    }
}

impl Actor for WalWriter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let SyncPolicy::Every(period) = self.sync {
            ctx.run_interval(period.max(Duration::from_millis(1)), |w, _| {
                if w.log.unsynced() {
                    if let Err(err) = w.log.sync() {
                        w.report(Err(err));
                    }
                }
            });
        }
    }
}

impl Handler<Append> for WalWriter {
    type Result = ();

    fn handle(&mut self, msg: Append, ctx: &mut Context<Self>) {
        if failpoint::enabled(failpoint::SERVER_ACK_BEFORE_WRITE) {
            // Broken on purpose: release the replies now, write the records a little later.
            if let Some(last) = msg.0.last().map(|e| e.lsn) {
                self.report(Ok(last));
            }
            self.log.queue(msg.0);
            if !self.commit_scheduled {
                self.commit_scheduled = true;
                ctx.run_later(ACK_BEFORE_WRITE_DELAY, |w, _| w.commit());
            }
            return;
        }
        self.log.queue(msg.0);
        if !self.commit_scheduled {
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

impl Handler<SyncNow> for WalWriter {
    type Result = Result<(), StorageError>;

    fn handle(&mut self, _: SyncNow, _: &mut Context<Self>) -> Result<(), StorageError> {
        self.commit();
        self.log.sync()
    }
}

impl Handler<StartCheckpoint> for WalWriter {
    type Result = ();

    fn handle(&mut self, msg: StartCheckpoint, ctx: &mut Context<Self>) {
        // The checkpoint covers everything through msg.lsn: append it first.
        self.commit();
        match self.log.begin_checkpoint(msg.lsn) {
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

impl Handler<CheckpointWritten> for WalWriter {
    type Result = ();

    fn handle(&mut self, msg: CheckpointWritten, _: &mut Context<Self>) {
        if let Ok(report) = &msg.0 {
            self.log.checkpoint_finished(report);
        }
        self.checkpoint_done(msg.0);
    }
}
