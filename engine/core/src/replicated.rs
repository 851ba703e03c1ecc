//! What replication needs from a backend, in the core's own words and with no consensus library
//! in sight: [`RaftLog`], a log whose records carry a raft log id (term, leader node, index)
//! with a durable vote, suffix truncation and prefix purge; and [`SnapshotCodec`], the
//! checkpoint format a raft snapshot is written in; and [`SnapshotFiles`], where a raft
//! snapshot is kept durably (a checkpoint with its raft log id and membership). The paper
//! backend implements them (`moodb_backends::paper::raft_log`); the server's `replication` module adapts them to
//! openraft. They live here because the server may depend on the core only (ARCHITECTURE.md).

use crate::error::StorageError;
use crate::keyspace::Databases;
use crate::record::{Lsn, Record};

/// The id of a raft log entry: the term and node of the leader that proposed it, and its
/// index, which is its LSN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RaftLogId {
    pub term: u64,
    pub node: u64,
    pub index: Lsn,
}

/// What one raft log entry holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RaftPayload {
    /// A leader's first entry of its term.
    Blank,
    /// One physical record (several writes are one `Record::Txn`), as in the single-node log.
    Record(Record),
    /// A cluster membership, encoded by the replication layer (opaque here).
    Membership(Vec<u8>),
}

/// One entry of the raft log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftRecord {
    pub id: RaftLogId,
    pub payload: RaftPayload,
}

/// The bounds of a raft log: the last entry removed by a purge and the last entry held (the
/// purged one when nothing is held after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RaftLogState {
    pub last_purged: Option<RaftLogId>,
    pub last: Option<RaftLogId>,
}

/// A durable raft log. Every mutating call is durable when it returns `Ok`; an `Err` means the
/// log no longer knows what is on disk and refuses further writes
/// ([`StorageError::Poisoned`]), as [`crate::Backend::append`] does.
pub trait RaftLog: Send {
    /// The bounds of the log.
    fn state(&self) -> RaftLogState;

    /// The entries with `from <= index < until`, in index order (those held).
    fn entries(&self, from: Lsn, until: Lsn) -> Vec<RaftRecord>;

    /// Appends `records` (indexes increasing; the first one follows the last entry held, or
    /// anything above it after a purge) with one write and one fdatasync.
    fn append(&mut self, records: &[RaftRecord]) -> Result<(), StorageError>;

    /// Removes every entry with index `>= from` (a conflicting suffix).
    fn truncate(&mut self, from: Lsn) -> Result<(), StorageError>;

    /// Removes every entry up to and including `upto`, which becomes `last_purged`.
    fn purge(&mut self, upto: RaftLogId) -> Result<(), StorageError>;

    /// The vote saved last, as the replication layer encoded it.
    fn vote(&self) -> Option<Vec<u8>>;

    /// Replaces the saved vote, durably.
    fn save_vote(&mut self, vote: &[u8]) -> Result<(), StorageError>;

    /// Where this log's snapshots are kept (the same directory), usable without the log.
    fn snapshot_files(&self) -> Box<dyn SnapshotFiles>;
}

/// A raft snapshot as stored: the last log id it includes, the replication layer's meta
/// (membership, snapshot id; opaque here) and the checkpoint bytes ([`SnapshotCodec`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRaftSnapshot {
    pub last: Option<RaftLogId>,
    pub meta: Vec<u8>,
    pub checkpoint: Vec<u8>,
}

/// Durable raft snapshots: the newest one saved is current, older ones are removed.
pub trait SnapshotFiles: Send + Sync + std::fmt::Debug {
    /// Writes `snapshot` durably (temporary file, fsync, rename, directory fsync), then removes
    /// the older ones. A power cut leaves the previous snapshot or this one current.
    fn save(&self, snapshot: &StoredRaftSnapshot) -> Result<(), StorageError>;

    /// The newest snapshot saved, its raft header checked (the checkpoint's own checksums are
    /// checked when it is decoded).
    fn newest(&self) -> Result<Option<StoredRaftSnapshot>, StorageError>;
}

/// The format a raft snapshot is written in: the backend's checkpoint format, whose LSN is the
/// snapshot's last applied index.
pub trait SnapshotCodec: Send + Sync + std::fmt::Debug {
    /// The bytes of a checkpoint of `state` as of `last_index`, created at `created_unix_ms`.
    fn encode(
        &self,
        state: &Databases,
        last_index: Lsn,
        created_unix_ms: u64,
    ) -> Result<Vec<u8>, StorageError>;

    /// The state and last index of a checkpoint's bytes, every checksum verified.
    fn decode(&self, bytes: &[u8]) -> Result<(Databases, Lsn), StorageError>;
}
