//! The openraft type configuration of MooDB and the conversions between openraft's entries and
//! the core's [`RaftRecord`]: a normal entry is one physical [`Record`], a membership entry is
//! its JSON, the vote is JSON too.

use std::fmt;
use std::io::Cursor;

use moodb_core::replicated::{RaftLogId, RaftPayload, RaftRecord};
use moodb_core::Record;
use openraft::{BasicNode, Entry, EntryPayload, LogId, StorageError, StorageIOError, Vote};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A node's id in the cluster.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// MooDB's raft types: entries carry physical records, snapshots are checkpoint bytes.
    pub TypeConfig:
        D = Write,
        R = Applied,
        NodeId = NodeId,
        Node = BasicNode,
        SnapshotData = Cursor<Vec<u8>>,
);

/// What a leader proposes: one physical record, exactly what every node applies.
#[derive(Clone, PartialEq, Eq)]
pub struct Write(pub Record);

impl fmt::Debug for Write {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Write({})", self.0.kind())
    }
}

impl fmt::Display for Write {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.kind())
    }
}

impl Serialize for Write {
    /// As the bytes of `Record::encode` (the log's payload encoding).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0.to_bytes())
    }
}

impl<'de> Deserialize<'de> for Write {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes = Vec::<u8>::deserialize(d)?;
        Record::decode(&bytes)
            .map(Write)
            .map_err(serde::de::Error::custom)
    }
}

/// What applying an entry gives back: the index (LSN) it was applied at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Applied {
    pub index: u64,
}

/// The core's log id of an openraft log id.
pub fn to_core_id(id: &LogId<NodeId>) -> RaftLogId {
    RaftLogId {
        term: id.leader_id.term,
        node: id.leader_id.node_id,
        index: id.index,
    }
}

/// The openraft log id of a core log id.
pub fn to_raft_id(id: &RaftLogId) -> LogId<NodeId> {
    LogId::new(openraft::CommittedLeaderId::new(id.term, id.node), id.index)
}

/// The record the raft log stores for `entry`.
pub fn to_record(entry: &Entry<TypeConfig>) -> Result<RaftRecord, StorageError<NodeId>> {
    let payload = match &entry.payload {
        EntryPayload::Blank => RaftPayload::Blank,
        EntryPayload::Normal(w) => RaftPayload::Record(w.0.clone()),
        EntryPayload::Membership(m) => RaftPayload::Membership(
            serde_json::to_vec(m).map_err(|e| StorageIOError::write_logs(&e))?,
        ),
    };
    Ok(RaftRecord {
        id: to_core_id(&entry.log_id),
        payload,
    })
}

/// The openraft entry of a stored record.
pub fn to_entry(record: RaftRecord) -> Result<Entry<TypeConfig>, StorageError<NodeId>> {
    let payload = match record.payload {
        RaftPayload::Blank => EntryPayload::Blank,
        RaftPayload::Record(r) => EntryPayload::Normal(Write(r)),
        RaftPayload::Membership(bytes) => EntryPayload::Membership(
            serde_json::from_slice(&bytes).map_err(|e| StorageIOError::read_logs(&e))?,
        ),
    };
    Ok(Entry {
        log_id: to_raft_id(&record.id),
        payload,
    })
}

/// The bytes a vote is saved as.
pub fn encode_vote(vote: &Vote<NodeId>) -> Result<Vec<u8>, StorageError<NodeId>> {
    Ok(serde_json::to_vec(vote).map_err(|e| StorageIOError::write_vote(&e))?)
}

/// The vote saved as `bytes`.
pub fn decode_vote(bytes: &[u8]) -> Result<Vote<NodeId>, StorageError<NodeId>> {
    Ok(serde_json::from_slice(bytes).map_err(|e| StorageIOError::read_vote(&e))?)
}
