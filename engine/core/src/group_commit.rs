//! The commit path: the one writer of the log. It appends a group of records (what the
//! caller gathered: the server's WAL writer queues them per tick, the in-process bench per
//! round) with one `Backend::append` (one write, and one sync under `always`): group commit.
//! It also syncs on demand (the `every:<ms>` timer, shutdown) and begins checkpoints, and
//! counts what it appended. The server's WAL writer actor and the in-process bench both drive
//! it.
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

/// Appends records in groups; see the module documentation.
pub struct GroupCommit {
    backend: Box<dyn Backend>,
    /// Appended but not synced (policies other than `always`).
    unsynced: bool,
    stats: CommitStats,
}

impl GroupCommit {
    pub fn new(backend: Box<dyn Backend>) -> Self {
        GroupCommit {
            backend,
            unsynced: false,
            stats: CommitStats::default(),
        }
    }

    /// Appends `group` (LSN order, after everything appended before) as one group. `None`
    /// when it is empty; otherwise the LSN of its last record, now appended (and synced under
    /// `always`), or why not: then none of the group may be acknowledged.
    pub fn commit(&mut self, group: &[LogEntry]) -> Option<Result<Lsn, StorageError>> {
        let last = group.last()?.lsn;
        let result = self.backend.append(group).map(|report| {
            self.unsynced |= !report.synced;
            self.stats.groups += 1;
            self.stats.records += group.len() as u64;
            last
        });
        Some(result)
    }

    /// Whether something was appended and not yet synced (for the `every:<ms>` timer).
    pub fn unsynced(&self) -> bool {
        self.unsynced
    }

    /// Changes the backend's sync policy (see [`Backend::set_sync_policy`]).
    pub fn set_sync_policy(&mut self, policy: crate::backend::SyncPolicy) {
        self.backend.set_sync_policy(policy);
    }

    /// Syncs everything appended, whatever the policy.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.backend.sync()?;
        self.unsynced = false;
        Ok(())
    }

    /// Begins a checkpoint as of `lsn` on the backend; every record through `lsn` must be
    /// committed first. `Ok(None)`: the backend compacts by itself.
    pub fn begin_checkpoint(
        &mut self,
        lsn: Lsn,
    ) -> Result<Option<Box<dyn CheckpointJob>>, StorageError> {
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
