//! [`StoreMachine`]: openraft's `RaftStateMachine` over the server's own [`Store`] (cluster
//! mode), so the data is held once. Committed entries go to the store owner
//! ([`ApplyCommitted`]), which skips the ones its store already applied as leader and applies
//! the others ([`Store::apply_committed`]). A snapshot is the O(1) clone of the store's key
//! space when every write it applied is committed, in the checkpoint format
//! ([`SnapshotCodec`]); installing one replaces the store's key space.
//!
//! [`Store`]: moodb_core::store::Store
//! [`Store::apply_committed`]: moodb_core::store::Store::apply_committed

use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix::Addr;
use moodb_core::replicated::SnapshotCodec;
use moodb_core::Record;
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, RaftSnapshotBuilder,
    SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};

use super::types::{Applied, NodeId, TypeConfig};
use crate::actors::store_owner::cluster::{ApplyCommitted, CommittedState, InstallState};
use crate::actors::StoreOwner;

/// The snapshot last built or installed: its meta and its checkpoint bytes.
#[derive(Debug, Clone)]
pub struct StoredSnapshot {
    pub meta: SnapshotMeta<NodeId, BasicNode>,
    pub data: Arc<Vec<u8>>,
}

/// What the state machine reports to openraft and keeps between calls (the data itself is in
/// the store). Shared with the store owner, which rebuilds from `snapshot`.
#[derive(Debug, Default)]
pub struct MachineMeta {
    pub last_applied: Option<LogId<NodeId>>,
    pub membership: StoredMembership<NodeId, BasicNode>,
    pub snapshot: Option<StoredSnapshot>,
}

/// Shared [`MachineMeta`].
pub type SharedMeta = Arc<Mutex<MachineMeta>>;

/// Locks `meta`; each holder leaves it whole.
pub fn lock_meta(meta: &SharedMeta) -> MutexGuard<'_, MachineMeta> {
    meta.lock().unwrap_or_else(|e| e.into_inner())
}

/// The state machine; clones share it (the snapshot builder is a clone).
#[derive(Clone)]
pub struct StoreMachine {
    owner: Addr<StoreOwner>,
    meta: SharedMeta,
    codec: Arc<dyn SnapshotCodec>,
    built: Arc<AtomicU64>,
}

fn sm_error(verb: ErrorVerb, e: &dyn std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::new(
        ErrorSubject::StateMachine,
        verb,
        AnyError::error(e.to_string()),
    )
    .into()
}

/// How long a snapshot waits for a moment when every write the store applied is committed.
const SNAPSHOT_QUIET_WAIT: Duration = Duration::from_secs(5);

impl StoreMachine {
    pub fn new(owner: Addr<StoreOwner>, meta: SharedMeta, codec: Arc<dyn SnapshotCodec>) -> Self {
        StoreMachine {
            owner,
            meta,
            codec,
            built: Arc::new(AtomicU64::new(0)),
        }
    }
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl RaftSnapshotBuilder<TypeConfig> for StoreMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        // The store's key space holds writes not yet committed while it leads: wait (bounded)
        // for a moment when it holds none.
        let deadline = tokio::time::Instant::now() + SNAPSHOT_QUIET_WAIT;
        let state = loop {
            let answer = self
                .owner
                .send(CommittedState)
                .await
                .map_err(|e| sm_error(ErrorVerb::Read, &e))?;
            if let Some(state) = answer {
                break state;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(sm_error(
                    ErrorVerb::Read,
                    &"no moment without uncommitted writes to snapshot",
                ));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let codec = self.codec.clone();
        let index = state.last_applied.map_or(0, |l| l.index);
        let dbs = state.dbs;
        let data = tokio::task::spawn_blocking(move || codec.encode(&dbs, index, now_unix_ms()))
            .await
            .map_err(|e| sm_error(ErrorVerb::Read, &e))?
            .map_err(|e| sm_error(ErrorVerb::Read, &e))?;
        let n = self.built.fetch_add(1, Ordering::Relaxed) + 1;
        let snapshot_id = match state.last_applied {
            Some(l) => format!(
                "{}-{}-{}-{n}",
                l.leader_id.term, l.leader_id.node_id, l.index
            ),
            None => format!("--{n}"),
        };
        let meta = SnapshotMeta {
            last_log_id: state.last_applied,
            last_membership: state.membership,
            snapshot_id,
        };
        let data = Arc::new(data);
        lock_meta(&self.meta).snapshot = Some(StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        });
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data.to_vec())),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StoreMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>>
    {
        let meta = lock_meta(&self.meta);
        Ok((meta.last_applied, meta.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut batch: Vec<(LogId<NodeId>, Option<Record>)> = Vec::new();
        let mut membership = None;
        for entry in entries {
            match entry.payload {
                EntryPayload::Blank => batch.push((entry.log_id, None)),
                EntryPayload::Normal(write) => batch.push((entry.log_id, Some(write.0))),
                EntryPayload::Membership(m) => {
                    membership = Some(StoredMembership::new(Some(entry.log_id), m));
                    batch.push((entry.log_id, None));
                }
            }
        }
        let out: Vec<Applied> = batch
            .iter()
            .map(|(id, _)| Applied { index: id.index })
            .collect();
        let Some(last) = batch.last().map(|(id, _)| *id) else {
            return Ok(out);
        };
        self.owner
            .send(ApplyCommitted {
                entries: batch,
                membership: membership.clone(),
            })
            .await
            .map_err(|e| sm_error(ErrorVerb::Write, &e))?;
        let mut meta = lock_meta(&self.meta);
        meta.last_applied = Some(last);
        if let Some(m) = membership {
            meta.membership = m;
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        let subject = || ErrorSubject::Snapshot(Some(meta.signature()));
        let (dbs, index) = self.codec.decode(&data).map_err(|e| {
            StorageError::from(StorageIOError::new(
                subject(),
                ErrorVerb::Read,
                AnyError::new(&e),
            ))
        })?;
        let expected = meta.last_log_id.map_or(0, |l| l.index);
        if index != expected {
            return Err(StorageIOError::new(
                subject(),
                ErrorVerb::Read,
                AnyError::error(format!(
                    "the snapshot's checkpoint is as of index {index}, its meta says {expected}"
                )),
            )
            .into());
        }
        self.owner
            .send(InstallState {
                dbs,
                last_applied: meta.last_log_id,
                membership: meta.last_membership.clone(),
            })
            .await
            .map_err(|e| sm_error(ErrorVerb::Write, &e))?;
        let mut m = lock_meta(&self.meta);
        m.last_applied = meta.last_log_id;
        m.membership = meta.last_membership.clone();
        m.snapshot = Some(StoredSnapshot {
            meta: meta.clone(),
            data: Arc::new(data),
        });
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let snapshot = lock_meta(&self.meta).snapshot.clone();
        Ok(snapshot.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data.to_vec())),
        }))
    }
}
