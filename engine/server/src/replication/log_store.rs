//! [`LogStore`]: openraft's `RaftLogStorage` over the backend's [`RaftLog`]. The log's file I/O
//! runs on tokio's blocking pool; an append batch is one `RaftLog::append` (one write, one
//! fdatasync) and its `LogFlushed` callback completes after that sync.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex, MutexGuard};

use moodb_core::replicated::{RaftLog, SnapshotFiles};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    AnyError, Entry, ErrorSubject, ErrorVerb, LogId, RaftLogReader, StorageError, StorageIOError,
    Vote,
};

use super::types::{
    decode_vote, encode_vote, to_core_id, to_entry, to_raft_id, to_record, NodeId, TypeConfig,
};

/// The raft log storage; clones share the log (the reader openraft asks for is a clone).
#[derive(Clone)]
pub struct LogStore {
    log: Arc<Mutex<Box<dyn RaftLog>>>,
    files: Arc<dyn SnapshotFiles>,
}

impl Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore").finish_non_exhaustive()
    }
}

/// An openraft storage error for a failure of `verb` on `subject`.
fn io_error(
    subject: ErrorSubject<NodeId>,
    verb: ErrorVerb,
    e: &moodb_core::StorageError,
) -> StorageError<NodeId> {
    StorageIOError::new(subject, verb, AnyError::new(e)).into()
}

impl LogStore {
    pub fn new(log: Box<dyn RaftLog>) -> Self {
        let files = Arc::from(log.snapshot_files());
        LogStore {
            log: Arc::new(Mutex::new(log)),
            files,
        }
    }

    /// Where the snapshots of this log are kept (no lock on the log needed).
    pub fn snapshot_files(&self) -> Arc<dyn SnapshotFiles> {
        self.files.clone()
    }

    /// The stored records of indexes `from..until` (held in memory: no disk read), for
    /// rebuilding the committed state after a lost leadership.
    pub fn records(&self, from: u64, until: u64) -> Vec<moodb_core::replicated::RaftRecord> {
        Self::lock(&self.log).entries(from, until)
    }

    fn lock(log: &Mutex<Box<dyn RaftLog>>) -> MutexGuard<'_, Box<dyn RaftLog>> {
        // A panic while holding the lock is a bug already reported; the log's own state is
        // consistent between calls (a failed call poisons it), so go on.
        log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the log on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn RaftLog) -> T + Send + 'static,
    ) -> Result<T, StorageError<NodeId>> {
        let log = self.log.clone();
        tokio::task::spawn_blocking(move || f(&mut **Self::lock(&log)))
            .await
            .map_err(|e| {
                StorageIOError::new(ErrorSubject::Logs, ErrorVerb::Write, AnyError::new(&e)).into()
            })
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        let from = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let until = match range.end_bound() {
            Bound::Included(i) => i.saturating_add(1),
            Bound::Excluded(i) => *i,
            Bound::Unbounded => u64::MAX,
        };
        let records = Self::lock(&self.log).entries(from, until);
        records.into_iter().map(to_entry).collect()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let state = Self::lock(&self.log).state();
        Ok(LogState {
            last_purged_log_id: state.last_purged.as_ref().map(to_raft_id),
            last_log_id: state.last.as_ref().map(to_raft_id),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let bytes = encode_vote(vote)?;
        self.blocking(move |log| log.save_vote(&bytes))
            .await?
            .map_err(|e| io_error(ErrorSubject::Vote, ErrorVerb::Write, &e))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        let bytes = Self::lock(&self.log).vote();
        bytes.map(|b| decode_vote(&b)).transpose()
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let records = entries
            .into_iter()
            .map(|e| to_record(&e))
            .collect::<Result<Vec<_>, _>>()?;
        let result = self.blocking(move |log| log.append(&records)).await?;
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(io_error(ErrorSubject::Logs, ErrorVerb::Write, &e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let from = log_id.index;
        self.blocking(move |log| log.truncate(from))
            .await?
            .map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Delete, &e))
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let upto = to_core_id(&log_id);
        self.blocking(move |log| log.purge(upto))
            .await?
            .map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Delete, &e))
    }
}
