//! The commit path: the one writer of the log. It queues the records the store decided on
//! and appends everything queued as one group, with one `Backend::append` (one write, and one
//! sync under `always`): group commit. It also syncs on demand (the `every:<ms>` timer,
//! shutdown) and begins checkpoints after committing what they must cover. The server's WAL
//! writer actor and the in-process bench both drive it.
//!
//! The backend owns the failed state: after a failed append or sync it refuses every later
//! write with [`StorageError::Poisoned`], so nothing is retried and forgotten here.

use crate::backend::{Backend, BackendStatus, CheckpointJob, CheckpointReport, LogEntry};
use crate::error::StorageError;
use crate::record::Lsn;

/// What one commit did, for the bench and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// `append` calls (groups holding at least one record).
    pub groups: u64,
    /// Records appended.
    pub records: u64,
}

/// Queues records and appends them in groups; see the module documentation.
pub struct GroupCommit {
    backend: Box<dyn Backend>,
    queue: Vec<LogEntry>,
    /// Appended but not synced (policies other than `always`).
    unsynced: bool,
    stats: CommitStats,
}

impl GroupCommit {
    pub fn new(backend: Box<dyn Backend>) -> Self {
        GroupCommit {
            backend,
            queue: Vec::new(),
            unsynced: false,
            stats: CommitStats::default(),
        }
    }

    /// Adds `entries` (LSN order, after those queued) to the next group.
    pub fn queue(&mut self, entries: Vec<LogEntry>) {
        if self.queue.is_empty() {
            self.queue = entries;
        } else {
            self.queue.extend(entries);
        }
    }

    /// Whether records wait for the next commit.
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty()
    }

    /// Appends everything queued as one group. `None` when nothing was queued; otherwise the
    /// LSN of the last record, now appended (and synced under `always`), or why not: then none
    /// of the group may be acknowledged.
    pub fn commit(&mut self) -> Option<Result<Lsn, StorageError>> {
        let last = self.queue.last()?.lsn;
        let result = self.backend.append(&self.queue).map(|report| {
            self.unsynced |= !report.synced;
            self.stats.groups += 1;
            self.stats.records += self.queue.len() as u64;
            last
        });
        self.queue.clear();
        Some(result)
    }

    /// Whether something was appended and not yet synced (for the `every:<ms>` timer).
    pub fn unsynced(&self) -> bool {
        self.unsynced
    }

    /// Commits what is queued, then syncs everything appended, whatever the policy.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        if let Some(Err(err)) = self.commit() {
            return Err(err);
        }
        self.backend.sync()?;
        self.unsynced = false;
        Ok(())
    }

    /// Commits what is queued (a checkpoint as of `lsn` covers it), then begins the
    /// checkpoint on the backend. `Ok(None)`: the backend compacts by itself.
    pub fn begin_checkpoint(
        &mut self,
        lsn: Lsn,
    ) -> Result<Option<Box<dyn CheckpointJob>>, StorageError> {
        if let Some(Err(err)) = self.commit() {
            return Err(err);
        }
        self.backend.begin_checkpoint(lsn)
    }

    /// Tells the backend a checkpoint job finished.
    pub fn checkpoint_finished(&mut self, report: &CheckpointReport) {
        self.backend.checkpoint_finished(report);
    }

    pub fn status(&self) -> BackendStatus {
        self.backend.status()
    }

    pub fn stats(&self) -> CommitStats {
        self.stats
    }

    /// Gives the backend back (the bench reuses it between runs).
    pub fn into_backend(self) -> Box<dyn Backend> {
        self.backend
    }
}
