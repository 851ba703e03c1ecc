//! The server's actors (actix) and the messages they exchange; they share nothing else.
//!
//! ```text
//!  client ──TCP── Session ──Batch──▶ StoreOwner ──Append / StartCheckpoint──▶ WalWriter ──▶ Backend
//!                   ▲                  │    ▲                                    │    ▲
//!                   └──────Replies─────┘    └──────Appended / CheckpointDone─────┘    │
//!                                                        WriteCheckpoint ▼            │ CheckpointWritten
//!                                                                   Snapshotter (own thread)
//! ```
//!
//! Sessions, the store owner and the WAL writer run on one arbiter (thread): the WAL writer
//! commits once per tick, after its mailbox has drained, for every record queued in that tick
//! (group commit). The snapshotter runs on its own thread so writes never wait for a checkpoint.

pub mod session;
pub mod snapshotter;
pub mod store_owner;
mod ticker;
pub mod wal_writer;

use std::sync::Arc;

use actix::prelude::*;

use moodb_core::backend::{BackendStatus, CheckpointJob, CheckpointReport, LogEntry};
use moodb_core::command::txn::SessionId;
use moodb_core::error::StorageError;
use moodb_core::keyspace::Databases;
use moodb_core::record::Lsn;
use moodb_core::resp::{Frame, Protocol, Request};

pub use moodb_core::store::clients::Peer;
pub use moodb_core::store::StoreSettings;
pub use session::Session;
pub use snapshotter::Snapshotter;
pub use store_owner::StoreOwner;
pub use wal_writer::WalWriter;

/// Session → store owner: every complete request a session decoded from one read, in order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Batch {
    /// The session that sent it (its transaction state lives in the store owner).
    pub session: SessionId,
    /// Position of this batch in the session's stream of batches.
    pub seq: u64,
    pub requests: Vec<Request>,
    /// The session's reply address, shared (cloning a `Recipient` allocates).
    pub reply_to: Arc<Recipient<Replies>>,
    /// The session's protocol when it read these requests (subscribed mode is RESP2's).
    pub proto: Protocol,
}

/// Store owner → session: the replies to batch `seq`, one frame per request (after any
/// Pub/Sub messages for the session published while it ran), released once every write they
/// depend on is durable. With `push`, `frames` are Pub/Sub messages published after batch
/// `seq` ran, to be written after its replies.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Replies {
    pub seq: u64,
    pub frames: Vec<Frame>,
    pub push: bool,
}

/// Session → store owner: a connection opened, from `peer`; `control` reaches the session
/// for CLIENT KILL and MONITOR.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SessionOpened {
    pub session: SessionId,
    pub peer: Peer,
    pub control: Recipient<Control>,
}

/// Store owner → session: close (CLIENT KILL; with `after_seq`, once that batch's replies
/// are written), or it is now a monitor (MONITOR: its output is bounded as a Pub/Sub
/// client's).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub enum Control {
    Close { after_seq: Option<u64> },
    Monitor,
}

/// Session → store owner: HELLO ... SETNAME named the connection (empty: no name), as CLIENT
/// SETNAME does in the store.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SessionNamed {
    pub session: SessionId,
    pub name: bytes::Bytes,
}

/// Store owner → WAL writer: CONFIG SET changed the sync policy.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetSync(pub moodb_core::backend::SyncPolicy);

/// Session → store owner: the connection closed; forget its transaction and watches.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SessionClosed(pub SessionId);

/// Store owner → WAL writer: records to append, in LSN order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Append(pub Vec<LogEntry>);

/// WAL writer → store owner: records through `Ok(lsn)` are appended (and synced when the
/// policy is `always`), or the storage failed and refuses writes from now on.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Appended {
    pub result: Result<Lsn, StorageError>,
    pub status: BackendStatus,
}

/// Store owner → WAL writer: checkpoint `state`, which is the key space as of `lsn`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StartCheckpoint {
    pub lsn: Lsn,
    pub state: Databases,
}

/// WAL writer → snapshotter: run `job` on `state`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WriteCheckpoint {
    pub job: Box<dyn CheckpointJob>,
    pub state: Databases,
    pub reply_to: Recipient<CheckpointWritten>,
}

/// Snapshotter → WAL writer: how the job went.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CheckpointWritten(pub Result<CheckpointReport, StorageError>);

/// WAL writer → store owner: a checkpoint finished (or failed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CheckpointDone {
    pub result: Result<CheckpointReport, StorageError>,
    pub status: BackendStatus,
}

/// To the store owner (at shutdown): send what is queued to the WAL writer and sync the log.
#[derive(Message)]
#[rtype(result = "Result<(), ShutdownError>")]
pub struct Shutdown;

/// Why the log could not be synced at shutdown.
#[derive(Debug, thiserror::Error)]
pub enum ShutdownError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the WAL writer stopped before it synced: {0}")]
    WalWriterGone(#[from] MailboxError),
}

/// Store owner → WAL writer: commit what is queued and sync, whatever the policy.
#[derive(Message)]
#[rtype(result = "Result<(), StorageError>")]
pub struct SyncNow;

#[cfg(test)]
mod tests;
