//! The WAL writer: owns the [`Backend`] and appends what the store owner queues. It commits
//! once per tick: the first `Append` of a tick schedules a commit that runs after tokio has
//! polled the sockets once more, so everything queued meanwhile shares one write and one sync
//! (group commit).
//! It also drives checkpoints (begin on the backend, hand the job to the snapshotter, report
//! the outcome) and the `every:<ms>` sync timer.

use std::time::Duration;

use actix::prelude::*;

use super::{
    Append, Appended, CheckpointDone, CheckpointWritten, Snapshotter, StartCheckpoint, StoreOwner,
    SyncNow, WriteCheckpoint,
};
use moodb_core::backend::{Backend, CheckpointReport, LogEntry, SyncPolicy};
use moodb_core::failpoint;

/// Under the `server::ack_before_write` failpoint (a deliberately broken build for the crash
/// test), how long the records wait after their replies were released before they are written.
const ACK_BEFORE_WRITE_DELAY: Duration = Duration::from_millis(50);

/// The one writer of the log.
pub struct WalWriter {
    backend: Box<dyn Backend>,
    sync: SyncPolicy,
    store: Addr<StoreOwner>,
    snapshotter: Addr<Snapshotter>,
    queue: Vec<LogEntry>,
    commit_scheduled: bool,
    /// Appended but not synced (policies other than `always`).
    unsynced: bool,
    /// Set after a failed append or sync: the backend refuses writes from then on.
    failed: Option<String>,
}

impl WalWriter {
    pub fn new(
        backend: Box<dyn Backend>,
        sync: SyncPolicy,
        store: Addr<StoreOwner>,
        snapshotter: Addr<Snapshotter>,
    ) -> Self {
        WalWriter {
            backend,
            sync,
            store,
            snapshotter,
            queue: Vec::new(),
            commit_scheduled: false,
            unsynced: false,
            failed: None,
        }
    }

    /// Appends everything queued as one group and tells the store owner.
    fn commit(&mut self) {
        self.commit_scheduled = false;
        let Some(last) = self.queue.last().map(|e| e.lsn) else {
            return;
        };
        let entries = std::mem::take(&mut self.queue);
        let result = match &self.failed {
            Some(err) => Err(err.clone()),
            None => match self.backend.append(&entries) {
                Ok(report) => {
                    self.unsynced |= !report.synced;
                    Ok(last)
                }
                Err(err) => {
                    let err = err.to_string();
                    self.failed = Some(err.clone());
                    Err(err)
                }
            },
        };
        self.store.do_send(Appended {
            result,
            status: self.backend.status(),
        });
    }

    fn sync_now(&mut self) -> Result<(), String> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        match self.backend.sync() {
            Ok(()) => {
                self.unsynced = false;
                Ok(())
            }
            Err(err) => {
                let err = err.to_string();
                self.failed = Some(err.clone());
                Err(err)
            }
        }
    }
}

impl Actor for WalWriter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let SyncPolicy::Every(period) = self.sync {
            ctx.run_interval(period.max(Duration::from_millis(1)), |w, _| {
                if w.unsynced {
                    if let Err(err) = w.sync_now() {
                        w.store.do_send(Appended {
                            result: Err(err),
                            status: w.backend.status(),
                        });
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
                self.store.do_send(Appended {
                    result: Ok(last),
                    status: self.backend.status(),
                });
            }
            self.queue.extend(msg.0);
            if !self.commit_scheduled {
                self.commit_scheduled = true;
                ctx.run_later(ACK_BEFORE_WRITE_DELAY, |w, _| w.commit());
            }
            return;
        }
        self.queue.extend(msg.0);
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
    type Result = Result<(), String>;

    fn handle(&mut self, _: SyncNow, _: &mut Context<Self>) -> Result<(), String> {
        self.commit();
        self.sync_now()
    }
}

impl Handler<StartCheckpoint> for WalWriter {
    type Result = ();

    fn handle(&mut self, msg: StartCheckpoint, ctx: &mut Context<Self>) {
        // The checkpoint covers everything through msg.lsn: append it first.
        self.commit();
        let fail = |w: &mut Self, err: String| {
            w.store.do_send(CheckpointDone {
                result: Err(err),
                status: w.backend.status(),
            })
        };
        if let Some(err) = self.failed.clone() {
            return fail(self, err);
        }
        match self.backend.begin_checkpoint(msg.lsn) {
            Ok(Some(job)) => self.snapshotter.do_send(WriteCheckpoint {
                job,
                state: msg.state,
                reply_to: ctx.address().recipient(),
            }),
            Ok(None) => {
                // The backend compacts by itself: nothing to write.
                let report = CheckpointReport {
                    lsn: msg.lsn,
                    keys: msg.state.len() as u64,
                    bytes: 0,
                    path: None,
                    elapsed: Duration::ZERO,
                };
                self.store.do_send(CheckpointDone {
                    result: Ok(report),
                    status: self.backend.status(),
                });
            }
            Err(err) => fail(self, err.to_string()),
        }
    }
}

impl Handler<CheckpointWritten> for WalWriter {
    type Result = ();

    fn handle(&mut self, msg: CheckpointWritten, _: &mut Context<Self>) {
        if let Ok(report) = &msg.0 {
            self.backend.checkpoint_finished(report);
        }
        self.store.do_send(CheckpointDone {
            result: msg.0,
            status: self.backend.status(),
        });
    }
}
