//! [`StateMachine`]: openraft's `RaftStateMachine` over the key space. It applies committed
//! entries (the physical records the leader decided) to [`Databases`], reports the last
//! applied log id and membership, builds a snapshot from the O(1) clone of the key space in
//! the checkpoint format (its LSN is the last applied index), and installs one.

use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use moodb_core::replicated::SnapshotCodec;
use moodb_core::Databases;
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, RaftSnapshotBuilder,
    SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};

use super::types::{Applied, NodeId, TypeConfig};

/// The snapshot last built or installed: its meta and its checkpoint bytes.
#[derive(Debug, Clone)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: Arc<Vec<u8>>,
}

#[derive(Debug)]
struct Inner {
    dbs: Databases,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    snapshot: Option<StoredSnapshot>,
}

/// The state machine; clones share it (the snapshot builder is a clone).
#[derive(Debug, Clone)]
pub struct StateMachine {
    inner: Arc<Mutex<Inner>>,
    codec: Arc<dyn SnapshotCodec>,
    built: Arc<AtomicU64>,
}

fn sm_error(verb: ErrorVerb, e: &moodb_core::StorageError) -> StorageError<NodeId> {
    StorageIOError::new(ErrorSubject::StateMachine, verb, AnyError::new(e)).into()
}

impl StateMachine {
    /// An empty state machine of `databases` databases whose snapshots `codec` writes.
    pub fn new(databases: usize, codec: Arc<dyn SnapshotCodec>) -> Self {
        StateMachine {
            inner: Arc::new(Mutex::new(Inner {
                dbs: Databases::new(databases),
                last_applied: None,
                membership: StoredMembership::default(),
                snapshot: None,
            })),
            codec,
            built: Arc::new(AtomicU64::new(0)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Each call leaves the state whole before it returns; a panic elsewhere leaves it so.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The O(1) clone of the state as of the last applied entry.
    pub fn state(&self) -> (Databases, Option<LogId<NodeId>>) {
        let inner = self.lock();
        (inner.dbs.clone(), inner.last_applied)
    }
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let (dbs, last_applied, membership) = {
            let inner = self.lock();
            (
                inner.dbs.clone(),
                inner.last_applied,
                inner.membership.clone(),
            )
        };
        let codec = self.codec.clone();
        let index = last_applied.map_or(0, |l| l.index);
        let data = tokio::task::spawn_blocking(move || codec.encode(&dbs, index, now_unix_ms()))
            .await
            .map_err(|e| {
                StorageError::from(StorageIOError::new(
                    ErrorSubject::StateMachine,
                    ErrorVerb::Read,
                    AnyError::new(&e),
                ))
            })?
            .map_err(|e| sm_error(ErrorVerb::Read, &e))?;
        let n = self.built.fetch_add(1, Ordering::Relaxed) + 1;
        let snapshot_id = match last_applied {
            Some(l) => format!(
                "{}-{}-{}-{n}",
                l.leader_id.term, l.leader_id.node_id, l.index
            ),
            None => format!("--{n}"),
        };
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership: membership,
            snapshot_id,
        };
        let data = Arc::new(data);
        self.lock().snapshot = Some(StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        });
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data.to_vec())),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>>
    {
        let inner = self.lock();
        Ok((inner.last_applied, inner.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut inner = self.lock();
        let mut out = Vec::new();
        for entry in entries {
            inner.last_applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(write) => inner.dbs.apply_owned(write.0),
                EntryPayload::Membership(m) => {
                    inner.membership = StoredMembership::new(Some(entry.log_id), m);
                }
            }
            out.push(Applied {
                index: entry.log_id.index,
            });
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
        let (dbs, index) = self.codec.decode(&data).map_err(|e| {
            StorageError::from(StorageIOError::new(
                ErrorSubject::Snapshot(Some(meta.signature())),
                ErrorVerb::Read,
                AnyError::new(&e),
            ))
        })?;
        let expected = meta.last_log_id.map_or(0, |l| l.index);
        if index != expected {
            return Err(StorageIOError::new(
                ErrorSubject::Snapshot(Some(meta.signature())),
                ErrorVerb::Read,
                AnyError::error(format!(
                    "the snapshot's checkpoint is as of index {index}, its meta says {expected}"
                )),
            )
            .into());
        }
        let mut inner = self.lock();
        let count = inner.dbs.count();
        let mut dbs = dbs;
        dbs.grow_to(count);
        inner.dbs = dbs;
        inner.last_applied = meta.last_log_id;
        inner.membership = meta.last_membership.clone();
        inner.snapshot = Some(StoredSnapshot {
            meta: meta.clone(),
            data: Arc::new(data),
        });
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let snapshot = self.lock().snapshot.clone();
        Ok(snapshot.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data.to_vec())),
        }))
    }
}
