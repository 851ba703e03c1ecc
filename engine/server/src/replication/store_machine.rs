//! [`StoreMachine`]: openraft's `RaftStateMachine` over the server's own [`Store`] (cluster
//! mode), so the data is held once. Committed entries go to the store owner
//! ([`ApplyCommitted`]), which skips the ones its store already applied as leader and applies
//! the others ([`Store::apply_committed`]). Installing a snapshot replaces the store's key
//! space. Every snapshot built or installed is written durably as a `raftsnap-<index>` file
//! (a checkpoint with its raft log id and membership, [`SnapshotFiles`]) before openraft is
//! told of it, so the log prefix openraft then purges is always covered by a file; the
//! current snapshot and a restart read it back from disk.
//!
//! **Decision — a snapshot of a store that holds uncommitted writes.** Waiting for a moment
//! with no uncommitted write may never come under constant load. So the builder takes the
//! O(1) clone of the key space as it is ([`SnapshotClone`]), which on the leader may include
//! the ticks it proposed and raft has not committed yet, and waits (bounded by
//! [`SNAPSHOT_COMMIT_WAIT`]) until they are. The store's LSNs are local, not raft indexes
//! (one tick = one raft entry, proposed asynchronously), so the raft index L of the clone is
//! not known when it is taken: it is the index of the entry that holds the clone's last
//! proposed tick, learnt when that entry is applied (the store owner resolves the wait
//! then, with the membership as of that entry). Everything the clone holds is then
//! committed, and nothing committed through L is missing from it: within the leader's term
//! only its own ticks carry data, and entries before them were applied before the clone.
//! Leadership lost (or a snapshot installed, or no commit within the wait) first: the wait
//! fails, this clone is given up and a new one taken (the store has been rebuilt to the
//! committed state by then). **Not** an error returned to openraft, as first planned:
//! openraft 0.9's core treats a failed `build_snapshot` as a fatal storage error
//! (`raft_core.rs`, `command_result.result?`) and stops the node; only after 60 s of
//! failed clones does the build fail. On a follower (or a leader with nothing outstanding)
//! the clone is the state as of the last applied entry.
//!
//! [`Store`]: moodb_core::store::Store
//! [`Store::apply_committed`]: moodb_core::store::Store::apply_committed

use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix::Addr;
use moodb_core::replicated::{SnapshotCodec, SnapshotFiles, StoredRaftSnapshot};
use moodb_core::Record;
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, RaftSnapshotBuilder,
    SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};

use super::types::{to_core_id, Applied, NodeId, TypeConfig};
use crate::actors::store_owner::cluster::{
    ApplyCommitted, ClonedAt, CommittedSnapshot, InstallState, SnapshotClone,
};
use crate::actors::StoreOwner;

/// What the state machine reports to openraft and keeps between calls (the data itself is in
/// the store, the snapshot's bytes in its file). Shared with the store owner, which rebuilds
/// from the snapshot file.
#[derive(Debug, Default)]
pub struct MachineMeta {
    pub last_applied: Option<LogId<NodeId>>,
    pub membership: StoredMembership<NodeId, BasicNode>,
    /// The meta of the snapshot last built or installed (its file is the newest).
    pub snapshot: Option<SnapshotMeta<NodeId, BasicNode>>,
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
    files: Arc<dyn SnapshotFiles>,
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

/// How long a snapshot taken with uncommitted writes in it waits for their commit.
pub const SNAPSHOT_COMMIT_WAIT: Duration = Duration::from_secs(10);

/// How long a snapshot build may go on cloning again before it fails (fatal for openraft).
pub const SNAPSHOT_BUILD_WAIT: Duration = Duration::from_secs(60);

/// The meta of a snapshot file, as the replication layer writes it.
fn encode_meta(meta: &SnapshotMeta<NodeId, BasicNode>) -> Result<Vec<u8>, StorageError<NodeId>> {
    serde_json::to_vec(meta).map_err(|e| sm_error(ErrorVerb::Write, &e))
}

/// The snapshot of a file: its meta, checked against the file's raft header.
pub fn decode_meta(
    file: &StoredRaftSnapshot,
) -> Result<SnapshotMeta<NodeId, BasicNode>, StorageError<NodeId>> {
    let meta: SnapshotMeta<NodeId, BasicNode> =
        serde_json::from_slice(&file.meta).map_err(|e| sm_error(ErrorVerb::Read, &e))?;
    if meta.last_log_id.map(|l| to_core_id(&l)) != file.last {
        return Err(sm_error(
            ErrorVerb::Read,
            &"a raft snapshot file whose header and meta name different log ids",
        ));
    }
    Ok(meta)
}

impl StoreMachine {
    pub fn new(
        owner: Addr<StoreOwner>,
        meta: SharedMeta,
        codec: Arc<dyn SnapshotCodec>,
        files: Arc<dyn SnapshotFiles>,
    ) -> Self {
        StoreMachine {
            owner,
            meta,
            codec,
            files,
            built: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Writes `meta` and `checkpoint` as the current snapshot file, on the blocking pool.
    async fn save(
        &self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        checkpoint: Vec<u8>,
    ) -> Result<Vec<u8>, StorageError<NodeId>> {
        let file = StoredRaftSnapshot {
            last: meta.last_log_id.map(|l| to_core_id(&l)),
            meta: encode_meta(meta)?,
            checkpoint,
        };
        let files = self.files.clone();
        tokio::task::spawn_blocking(move || files.save(&file).map(|()| file.checkpoint))
            .await
            .map_err(|e| sm_error(ErrorVerb::Write, &e))?
            .map_err(|e| {
                StorageIOError::new(
                    ErrorSubject::Snapshot(Some(meta.signature())),
                    ErrorVerb::Write,
                    AnyError::new(&e),
                )
                .into()
            })
    }

    /// Hands a snapshot's state to the store owner (its key space is replaced) and makes `meta`
    /// the state machine's applied state and current snapshot.
    async fn take_state(
        &self,
        dbs: moodb_core::keyspace::Databases,
        meta: &SnapshotMeta<NodeId, BasicNode>,
    ) -> Result<(), StorageError<NodeId>> {
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
        m.snapshot = Some(meta.clone());
        Ok(())
    }

    /// Restart: the newest snapshot file fills the store and says what is applied (openraft
    /// then re-applies the raft log after it). Returns its last log id.
    pub async fn load_newest(&self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        let files = self.files.clone();
        let codec = self.codec.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let Some(file) = files.newest().map_err(|e| e.to_string())? else {
                return Ok(None);
            };
            let (dbs, index) = codec.decode(&file.checkpoint).map_err(|e| e.to_string())?;
            Ok::<_, String>(Some((file, dbs, index)))
        })
        .await
        .map_err(|e| sm_error(ErrorVerb::Read, &e))?
        .map_err(|e| sm_error(ErrorVerb::Read, &e))?;
        let Some((file, dbs, index)) = loaded else {
            return Ok(None);
        };
        let meta = decode_meta(&file)?;
        if file.last.map_or(0, |l| l.index) != index {
            return Err(sm_error(
                ErrorVerb::Read,
                &format!("the raft snapshot's checkpoint is as of index {index}, its header says otherwise"),
            ));
        }
        self.take_state(dbs, &meta).await?;
        Ok(meta.last_log_id)
    }
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl RaftSnapshotBuilder<TypeConfig> for StoreMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        // A clone whose writes were given up (leadership lost, a snapshot installed, no commit
        // within the wait) is dropped and the clone taken again: by then the store has been
        // rebuilt to the committed state. Not an error: openraft 0.9 treats a failed
        // build_snapshot as a fatal storage error and stops the node.
        let deadline = tokio::time::Instant::now() + SNAPSHOT_BUILD_WAIT;
        let mut waited = false;
        let state = loop {
            let cloned = self
                .owner
                .send(SnapshotClone)
                .await
                .map_err(|e| sm_error(ErrorVerb::Read, &e))?
                .map_err(|e| sm_error(ErrorVerb::Read, &e))?;
            let dbs = cloned.dbs;
            match cloned.at {
                ClonedAt::Applied {
                    last_applied,
                    membership,
                } => {
                    break CommittedSnapshot {
                        dbs,
                        last_applied,
                        membership,
                    }
                }
                ClonedAt::Proposed(wait) => {
                    waited = true;
                    if let Ok(Ok((id, membership))) =
                        tokio::time::timeout(SNAPSHOT_COMMIT_WAIT, wait).await
                    {
                        break CommittedSnapshot {
                            dbs,
                            last_applied: Some(id),
                            membership,
                        };
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(sm_error(
                    ErrorVerb::Read,
                    &"no snapshot whose writes were committed within 60 s",
                ));
            }
            eprintln!("moodb: cluster: a snapshot's writes were given up; cloning again");
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
        let data = self.save(&meta, data).await?;
        lock_meta(&self.meta).snapshot = Some(meta.clone());
        eprintln!(
            "moodb: cluster: raft snapshot {} written ({} bytes{})",
            meta.snapshot_id,
            data.len(),
            if waited {
                ", cloned with writes in flight, handed out once committed"
            } else {
                ""
            }
        );
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
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
        let mut memberships = Vec::new();
        for entry in entries {
            match entry.payload {
                EntryPayload::Blank => batch.push((entry.log_id, None)),
                EntryPayload::Normal(write) => batch.push((entry.log_id, Some(write.0))),
                EntryPayload::Membership(m) => {
                    memberships.push(StoredMembership::new(Some(entry.log_id), m));
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
                memberships: memberships.clone(),
            })
            .await
            .map_err(|e| sm_error(ErrorVerb::Write, &e))?;
        let mut meta = lock_meta(&self.meta);
        meta.last_applied = Some(last);
        if let Some(m) = memberships.pop() {
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
        // Decoding a whole key space (every checksum checked) is off the event loop, as the
        // snapshot loaded at start is.
        let codec = self.codec.clone();
        let (data, decoded) = tokio::task::spawn_blocking(move || {
            let decoded = codec.decode(&data);
            (data, decoded)
        })
        .await
        .map_err(|e| sm_error(ErrorVerb::Read, &e))?;
        let (dbs, index) = decoded.map_err(|e| {
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
        // Durable before the store takes it: openraft purges the log it covers next.
        self.save(meta, data).await?;
        self.take_state(dbs, meta).await?;
        eprintln!(
            "moodb: cluster: installed the raft snapshot as of {}",
            meta.last_log_id
                .map_or("nothing".to_string(), |l| l.to_string())
        );
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let files = self.files.clone();
        let newest = tokio::task::spawn_blocking(move || files.newest())
            .await
            .map_err(|e| sm_error(ErrorVerb::Read, &e))?
            .map_err(|e| sm_error(ErrorVerb::Read, &e))?;
        let Some(file) = newest else {
            return Ok(None);
        };
        let meta = decode_meta(&file)?;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(file.checkpoint)),
        }))
    }
}
