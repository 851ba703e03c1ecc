//! The store owner in cluster mode: its store is the raft state machine. As the ready leader
//! it executes batches as a single node does, but the tick's records go to the
//! [`Proposer`] instead of the WAL writer, and an LSN becomes durable when the entry holding
//! its record is applied (committed on a majority). As a follower it applies the committed
//! records others decided and forwards its sessions' batches to the leader ([`Forwarder`]).
//! Losing the leadership answers every reply still waiting with `-TRYAGAIN` and rebuilds the
//! store's key space from the committed state (snapshot + raft log up to the last applied
//! entry) before anything else is served.
//!
//! **Which applied entries the store already holds.** Within a term only its leader
//! proposes, and this node proposes only while it is the ready leader of the term; its
//! proposals reach the log in LSN order. So an entry of term T by this node, applied while
//! this node leads T and has proposals outstanding, is the oldest outstanding proposal: its
//! LSN is now durable. Every other normal entry (other leaders', or this node's from before
//! a rebuild) is applied to the store.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use moodb_core::backend::{BackendStatus, CheckpointReport};
use moodb_core::command::replication::{SentinelMember, SentinelView};
use moodb_core::command::txn::SessionId;
use moodb_core::command::{table, ReplyError};
use moodb_core::keyspace::Databases;
use moodb_core::record::Lsn;
use moodb_core::replicated::{RaftPayload, SnapshotCodec, SnapshotFiles};
use moodb_core::resp::Frame;
use moodb_core::store::{Release, Replica, Replication};
use moodb_core::Record;
use openraft::{BasicNode, LogId, Raft, ServerState, StoredMembership};
use tokio::sync::{oneshot, watch};

use super::proposals::Proposals;
use super::{now_ms, ReplyTo, StoreOwner};
use crate::actors::{Batch, Replies};
use crate::replication::forward::{Forwarder, Job, LeaderView, ELECTION_WAIT};
use crate::replication::proposer::Proposer;
use crate::replication::store_machine::{lock_meta, SharedMeta};
use crate::replication::types::{NodeId, TypeConfig};
use crate::replication::LogStore;

/// A node's two addresses: raft (peers) and client (RESP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAddrs {
    pub raft: String,
    pub client: String,
}

/// The store owner's cluster state.
pub struct ClusterLink {
    me: NodeId,
    /// Every member's addresses, from the membership (`refresh_nodes`).
    nodes: BTreeMap<NodeId, NodeAddrs>,
    /// The members the configuration lists (`--peers`), for the client addresses.
    configured: BTreeMap<NodeId, NodeAddrs>,
    password: Option<String>,
    raft: Option<Raft<TypeConfig>>,
    log: LogStore,
    meta: SharedMeta,
    codec: Arc<dyn SnapshotCodec>,
    databases: usize,
    proposer: Option<Proposer>,
    /// The entries proposed and not yet seen applied, and the ticks held for a free slot.
    proposals: Proposals,
    /// The term this node leads, as the raft metrics last said.
    leading: Option<u64>,
    /// The newest term whose uncommitted writes were given up: leading it serves nothing.
    abandoned_term: u64,
    /// The newest term of an applied entry this node proposed (its blank entry first).
    own_applied_term: u64,
    /// The last log index when this node's current leadership began: the store holds every
    /// committed write only once it applied that far. (openraft 0.9 restarts a node that led
    /// with a committed vote as the leader of the same term, with no new blank entry: an old
    /// entry of that term applied says nothing then.)
    lead_from_index: u64,
    leader: Option<NodeId>,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    matched: BTreeMap<NodeId, u64>,
    view: watch::Sender<LeaderView>,
    forwarders: HashMap<SessionId, Forwarder>,
    /// The sessions in READONLY mode: on a follower, their reads are answered from this
    /// node's own store (as a Redis Cluster replica does), possibly behind the leader.
    read_only: HashSet<SessionId>,
    /// Replies that may leave once a majority confirms, after they were computed, that this
    /// node still leads (ReadIndex); and those whose confirmation is under way.
    unconfirmed: Vec<Release<ReplyTo>>,
    confirming: Option<Vec<Release<ReplyTo>>>,
    /// The master name SENTINEL answers for (`cluster.sentinel_master_name`).
    master_name: String,
    /// (raft index, last LSN) of this node's entries applied in its current leadership, oldest
    /// first: which of this store's writes a replica holds, given its matched index (WAIT).
    own_entries: VecDeque<(u64, Lsn)>,
    files: Arc<dyn SnapshotFiles>,
    /// Snapshots cloned with proposals outstanding: each waits for the entry holding the tick
    /// that ends at its LSN to be applied (dropped, so failed, when leadership is lost).
    snapshot_waits: Vec<(Lsn, SnapshotWait)>,
}

/// The most entries `own_entries` keeps: a replica lagging further counts as holding none.
const OWN_ENTRIES_MAX: usize = 100_000;

/// Where a snapshot's raft log id (and the membership as of it) is sent once known.
pub type SnapshotWait = oneshot::Sender<(LogId<NodeId>, StoredMembership<NodeId, BasicNode>)>;

impl ClusterLink {
    /// A tick's records (ending at LSN `last`), proposed now or held for a slot; false when
    /// the proposer is gone.
    fn submit(&mut self, last: Lsn, records: Vec<Record>) -> bool {
        match self.proposals.submit(last, records, Instant::now()) {
            Some(now) => self.proposer.as_ref().is_some_and(|p| p.propose(now)),
            None => true,
        }
    }

    /// Proposes the held ticks that fit in the slots free; false when the proposer is gone.
    fn send_held(&mut self) -> bool {
        while let Some(records) = self.proposals.next_ready(Instant::now()) {
            if !self.proposer.as_ref().is_some_and(|p| p.propose(records)) {
                return false;
            }
        }
        true
    }

    /// The cluster state of node `me` of `nodes`, whose raft log is `log` and whose snapshots
    /// `codec` writes; `password` is what the forwarders AUTH with on the leader.
    pub fn new(
        me: NodeId,
        nodes: BTreeMap<NodeId, NodeAddrs>,
        password: Option<String>,
        log: LogStore,
        meta: SharedMeta,
        codec: Arc<dyn SnapshotCodec>,
        databases: usize,
    ) -> ClusterLink {
        ClusterLink {
            me,
            configured: nodes.clone(),
            nodes,
            password,
            raft: None,
            meta,
            codec,
            databases,
            proposer: None,
            proposals: Proposals::default(),
            leading: None,
            abandoned_term: 0,
            own_applied_term: 0,
            lead_from_index: 0,
            leader: None,
            last_applied: None,
            membership: StoredMembership::default(),
            matched: BTreeMap::new(),
            view: watch::Sender::new(LeaderView::default()),
            forwarders: HashMap::new(),
            read_only: HashSet::new(),
            unconfirmed: Vec::new(),
            confirming: None,
            master_name: "mymaster".into(),
            own_entries: VecDeque::new(),
            files: log.snapshot_files(),
            snapshot_waits: Vec::new(),
            log,
        }
    }

    /// The master name SENTINEL answers for (default `mymaster`).
    pub fn with_master_name(mut self, name: String) -> ClusterLink {
        self.master_name = name;
        self
    }

    /// Per replica (the other voters, while this node leads), the newest LSN of this store it
    /// holds: the last own entry at or below its matched index. Also forgets the entries every
    /// replica holds (but the newest of them).
    fn replica_progress(&mut self) -> Vec<Lsn> {
        if self.leading.is_none() {
            self.own_entries.clear();
            return Vec::new();
        }
        let matched: Vec<u64> = self
            .nodes
            .keys()
            .filter(|id| **id != self.me)
            .map(|id| self.matched.get(id).copied().unwrap_or(0))
            .collect();
        let lowest = matched.iter().copied().min().unwrap_or(0);
        while self.own_entries.len() > 1 && self.own_entries[1].0 <= lowest {
            self.own_entries.pop_front();
        }
        matched
            .iter()
            .map(|m| {
                let n = self.own_entries.partition_point(|(index, _)| index <= m);
                n.checked_sub(1).map_or(0, |i| self.own_entries[i].1)
            })
            .collect()
    }

    /// What SENTINEL says: every member, the leader as the master.
    fn sentinel_view(&self) -> SentinelView {
        let applied = self.last_applied.map_or(0, |l| l.index);
        SentinelView {
            master_name: self.master_name.clone(),
            me: self.me,
            leader: self.leader,
            members: self
                .nodes
                .iter()
                .map(|(id, n)| {
                    let (ip, port) = split_addr(&n.client);
                    let offset = if *id == self.me {
                        applied
                    } else {
                        self.matched.get(id).copied().unwrap_or(0)
                    };
                    SentinelMember {
                        id: *id,
                        ip,
                        port,
                        offset,
                    }
                })
                .collect(),
        }
    }

    /// This node leads and its store holds every committed write: it may serve.
    fn ready(&self) -> bool {
        self.leading
            .is_some_and(|t| t > self.abandoned_term && self.own_applied_term >= t)
            && self.last_applied.map_or(0, |l| l.index) >= self.lead_from_index
    }

    fn client_addr(&self, id: NodeId) -> Option<String> {
        self.nodes.get(&id).map(|n| n.client.clone())
    }

    /// What ROLE / INFO say, and what the forwarders go by.
    fn publish(&self) -> Option<Replication> {
        let offset = self.last_applied.map_or(0, |l| l.index);
        let ready = self.ready();
        let remote = match self.leader {
            Some(l) if l != self.me => self.client_addr(l).map(|a| (l, a)),
            _ => None,
        };
        self.view.send_if_modified(|v| {
            let next = LeaderView {
                remote: remote.clone(),
                here: ready,
                me: (self.me, self.client_addr(self.me).unwrap_or_default()),
            };
            let changed = *v != next;
            *v = next;
            changed
        });
        if self.leading.is_some() {
            let replicas = self
                .nodes
                .iter()
                .filter(|(id, _)| **id != self.me)
                .map(|(id, n)| {
                    let (ip, port) = split_addr(&n.client);
                    Replica {
                        ip,
                        port,
                        offset: self.matched.get(id).copied().unwrap_or(0),
                    }
                })
                .collect();
            Some(Replication::Leader { offset, replicas })
        } else {
            let (host, port) = remote
                .as_ref()
                .map(|(_, a)| split_addr(a))
                .unwrap_or_default();
            Some(Replication::Follower {
                host,
                port,
                connected: remote.is_some(),
                offset,
            })
        }
    }

    /// The committed state as of the last applied entry: the last snapshot and the raft
    /// log's entries after it.
    fn committed_state(&self) -> Result<Databases, String> {
        let until = self.last_applied.map_or(0, |l| l.index);
        let has_snapshot = lock_meta(&self.meta).snapshot.is_some();
        let file = if has_snapshot {
            self.files.newest().map_err(|e| e.to_string())?
        } else {
            None
        };
        let (mut dbs, from) = match file {
            Some(f) if f.last.map_or(0, |l| l.index) <= until => {
                let (dbs, index) = self
                    .codec
                    .decode(&f.checkpoint)
                    .map_err(|e| e.to_string())?;
                (dbs, index + 1)
            }
            // The log before it may be purged: the state cannot be rebuilt from the log.
            Some(f) => {
                return Err(format!(
                    "the raft snapshot is as of index {}, after the last applied {until}",
                    f.last.map_or(0, |l| l.index)
                ))
            }
            None => (Databases::new(self.databases), 0),
        };
        dbs.grow_to(self.databases);
        if until >= from {
            for record in self.log.records(from, until + 1) {
                if let RaftPayload::Record(r) = record.payload {
                    dbs.apply_owned(r);
                }
            }
        }
        Ok(dbs)
    }
}

/// `host:port` split (port 0 when it has none).
fn split_addr(addr: &str) -> (String, u16) {
    match addr.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().unwrap_or(0)),
        None => (addr.to_string(), 0),
    }
}

/// State machine → store owner: committed entries, in log order (`None`: a blank or
/// membership entry), and the memberships the membership entries among them set, in order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ApplyCommitted {
    pub entries: Vec<(LogId<NodeId>, Option<Record>)>,
    pub memberships: Vec<StoredMembership<NodeId, BasicNode>>,
}

/// The store's key space as of the last applied entry, for a snapshot.
pub struct CommittedSnapshot {
    pub dbs: Databases,
    pub last_applied: Option<LogId<NodeId>>,
    pub membership: StoredMembership<NodeId, BasicNode>,
}

/// State machine → store owner: the O(1) clone of the key space now, for a snapshot.
#[derive(Message)]
#[rtype(result = "Result<ClonedState, String>")]
pub struct SnapshotClone;

/// A clone of the key space and what it holds.
pub struct ClonedState {
    pub dbs: Databases,
    pub at: ClonedAt,
}

/// What a [`ClonedState`] holds: exactly the applied entries, or also ticks proposed and not
/// yet committed, whose raft log id the receiver gets when they are.
pub enum ClonedAt {
    Applied {
        last_applied: Option<LogId<NodeId>>,
        membership: StoredMembership<NodeId, BasicNode>,
    },
    Proposed(oneshot::Receiver<(LogId<NodeId>, StoredMembership<NodeId, BasicNode>)>),
}

/// State machine → store owner: a snapshot from the leader replaces the key space.
#[derive(Message)]
#[rtype(result = "()")]
pub struct InstallState {
    pub dbs: Databases,
    pub last_applied: Option<LogId<NodeId>>,
    pub membership: StoredMembership<NodeId, BasicNode>,
}

/// Server → store owner: the raft node is running.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AttachRaft(pub Raft<TypeConfig>);

/// Metrics watcher → store owner: leadership and replication as raft sees them now.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct RaftStatus {
    pub leading: Option<u64>,
    pub leader: Option<NodeId>,
    pub matched: BTreeMap<NodeId, u64>,
    /// The last applied index (ROLE's offset is refreshed with it).
    pub applied: u64,
    /// The last log index.
    pub last_log: u64,
}

/// Proposer → store owner: a proposal of `generation` was refused (not the leader any more).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ProposalFailed {
    pub generation: u64,
    pub reason: String,
}

/// Confirmation task → store owner: whether a majority still follows this node.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReadsConfirmed(pub Result<(), String>);

impl Handler<ReadsConfirmed> for StoreOwner {
    type Result = ();

    fn handle(&mut self, msg: ReadsConfirmed, ctx: &mut Context<Self>) {
        let Some(link) = self.cluster.as_mut() else {
            return;
        };
        let held = link.confirming.take().unwrap_or_default();
        match msg.0 {
            Ok(()) => self.released.extend(held),
            Err(cause) => {
                let refusal = Frame::from(ReplyError::LeadershipUnconfirmed { cause });
                for mut r in held {
                    for f in &mut r.frames {
                        *f = refusal.clone();
                    }
                    self.released.push(r);
                }
            }
        }
        self.send_released();
        self.cluster_confirm_reads(ctx);
    }
}

/// Forwarder → store owner: this node is the ready leader now; run the batch here.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ExecuteHere(pub Job);

/// Commands a follower answers itself (about itself, or node-local: Pub/Sub is not
/// replicated; SHUTDOWN stops the node it is sent to); a batch of only these is not
/// forwarded.
const LOCAL: &[&[u8]] = &[
    b"role",
    b"info",
    b"ping",
    b"subscribe",
    b"unsubscribe",
    b"psubscribe",
    b"punsubscribe",
    b"publish",
    b"pubsub",
    b"shutdown",
    b"sentinel",
    b"readonly",
    b"readwrite",
];

fn is_local(request: &[bytes::Bytes]) -> bool {
    request
        .first()
        .is_some_and(|name| LOCAL.iter().any(|l| name.eq_ignore_ascii_case(l)))
}

fn local_only(batch: &Batch) -> bool {
    batch.requests.iter().all(|r| is_local(r))
}

/// Follows `batch` through a session's READONLY mode (on when it starts as `read_only`;
/// READONLY sets it, READWRITE and RESET clear it): the mode after the batch, and whether a
/// follower may answer the whole batch itself (node-local commands, and read-only commands
/// while the mode is on).
fn read_only_pass(batch: &Batch, mut read_only: bool) -> (bool, bool) {
    let mut here = true;
    for request in &batch.requests {
        let spec = request.first().and_then(|name| table::lookup(name));
        match spec.map(|s| s.name) {
            Some("readonly") if request.len() == 1 => read_only = true,
            Some("readwrite" | "reset") if request.len() == 1 => read_only = false,
            _ => {}
        }
        here = here
            && (read_only && spec.is_some_and(|s| s.is(table::Flags::READONLY))
                || is_local(request));
    }
    (read_only, here)
}

/// How long a leader's write may wait for its commit before the leader gives up its term.
pub const COMMIT_WAIT: Duration = Duration::from_secs(5);

/// How often ROLE's figures (matched indexes) are refreshed from the raft metrics.
const STATUS_REFRESH: Duration = Duration::from_millis(100);

impl StoreOwner {
    fn link(&mut self) -> Option<&mut ClusterLink> {
        self.cluster.as_mut()
    }

    /// Cluster mode: whether `batch` runs here now; otherwise it went to its session's
    /// forwarder (which waits for a leader, relays to it, or sends it back when this node
    /// leads).
    pub(super) fn cluster_admits(&mut self, batch: Batch) -> Option<Batch> {
        if self.cluster.is_none() {
            return Some(batch);
        }
        let owner = self.own_addr.clone();
        let Some(link) = self.cluster.as_mut() else {
            return Some(batch);
        };
        let was_read_only = link.read_only.contains(&batch.session);
        let (read_only, reads_here) = read_only_pass(&batch, was_read_only);
        if read_only != was_read_only {
            if read_only {
                link.read_only.insert(batch.session);
            } else {
                link.read_only.remove(&batch.session);
            }
        }
        // Every request node-local is a case of `reads_here` (which is false for most batches).
        if reads_here && local_only(&batch) {
            return Some(batch);
        }
        let idle = link.forwarders.get(&batch.session).is_none_or(|f| f.idle());
        // A READONLY session's reads on a follower: answered from this store, in order (nothing
        // of the session's is on its way to the leader, nor does its connection there hold a
        // database or a transaction).
        if reads_here && idle && link.leading.is_none() {
            return Some(batch);
        }
        if link.ready() && idle {
            if let Some(admin) = RaftAdmin::parse(&batch) {
                link.forwarders.remove(&batch.session);
                self.cluster_raft_admin(admin, batch);
                return None;
            }
        }
        if link.ready() && idle {
            link.forwarders.remove(&batch.session);
            return Some(batch);
        }
        let Some(owner) = owner else {
            return Some(batch);
        };
        let view = link.view.subscribe();
        let password = link.password.clone();
        let forwarder = link
            .forwarders
            .entry(batch.session)
            .or_insert_with(|| Forwarder::spawn(view, owner, password));
        forwarder.send(Job {
            session: batch.session,
            seq: batch.seq,
            requests: batch.requests,
            reply_to: batch.reply_to,
            proto: batch.proto,
            deadline: tokio::time::Instant::now() + ELECTION_WAIT,
        });
        None
    }

    /// Cluster mode: the tick's records go to the proposer. False when not in cluster mode.
    pub(super) fn cluster_propose(&mut self) -> bool {
        let Some(link) = self.cluster.as_mut() else {
            return false;
        };
        let records = self.store.take_records();
        if records.is_empty() {
            return true;
        }
        // The tick joins a raft entry (the proposer's `one_entry`), alone or with the ticks
        // held before it: its last LSN is released when that entry is applied.
        let last = records.last().map_or(0, |e| e.lsn);
        let rs = records.into_iter().map(|e| e.record).collect();
        if !link.submit(last, rs) {
            self.lose_leadership("the proposer is gone");
        }
        true
    }

    /// Cluster mode, on the leader: a reply the store released at once (it read only committed
    /// state) is held until a majority confirms this node still leads; returns it when it may
    /// leave now (a single node, a follower answering ROLE or INFO).
    pub(super) fn cluster_hold(&mut self, release: Release<ReplyTo>) -> Option<Release<ReplyTo>> {
        match self.cluster.as_mut() {
            Some(link) if link.ready() => {
                link.unconfirmed.push(release);
                None
            }
            _ => Some(release),
        }
    }

    /// Starts a leadership confirmation (heartbeats to a majority) for every reply held since
    /// the last one started; one at a time, so reads arriving meanwhile share the next.
    pub(super) fn cluster_confirm_reads(&mut self, ctx: &mut Context<Self>) {
        let Some(link) = self.cluster.as_mut() else {
            return;
        };
        if link.confirming.is_some() || link.unconfirmed.is_empty() {
            return;
        }
        let Some(raft) = link.raft.clone() else {
            return;
        };
        link.confirming = Some(std::mem::take(&mut link.unconfirmed));
        let owner = ctx.address();
        actix::spawn(async move {
            let result = raft
                .get_read_log_id()
                .await
                .map(|_| ())
                .map_err(|e| e.to_string());
            owner.do_send(ReadsConfirmed(result));
        });
    }

    /// Cluster mode, every 100 ms: a leader whose oldest proposal has waited [`COMMIT_WAIT`]
    /// without being committed (a majority unreachable) gives up its uncommitted writes
    /// (`-TRYAGAIN`, rebuild) and asks raft for a new election, so that its clients get an
    /// answer and the cluster a leader that can serve once a majority is back.
    pub(super) fn cluster_watchdog(&mut self) {
        let Some(link) = self.cluster.as_ref() else {
            return;
        };
        let stuck = link.ready()
            && link
                .proposals
                .oldest()
                .is_some_and(|at| at.elapsed() >= COMMIT_WAIT);
        if !stuck {
            return;
        }
        let raft = link.raft.clone();
        self.lose_leadership("nothing committed for 5 s: a majority is unreachable");
        self.publish_role();
        if let Some(raft) = raft {
            actix::spawn(async move {
                if let Err(e) = raft.trigger().elect().await {
                    eprintln!("moodb: cluster: cannot start an election: {e}");
                }
            });
        }
    }

    /// Cluster mode: a session closed; its forwarder (if any) ends once its queue is done.
    pub(super) fn cluster_session_closed(&mut self, session: SessionId) {
        if let Some(link) = self.cluster.as_mut() {
            link.forwarders.remove(&session);
            link.read_only.remove(&session);
        }
    }

    /// Cluster mode: may the periodic work that writes (active expiry) run here?
    pub(super) fn cluster_may_write(&self) -> bool {
        self.cluster.as_ref().is_none_or(ClusterLink::ready)
    }

    /// Cluster mode: the raft log is the durable state, so a checkpoint the store asks for
    /// (SAVE, BGSAVE, the triggers) is answered at once with the last applied index: the
    /// writes before it are committed on a majority, which is what SAVE promises. Returns
    /// false when not in cluster mode.
    pub(super) fn cluster_checkpoint(&mut self) -> bool {
        let Some(link) = self.cluster.as_ref() else {
            return false;
        };
        let lsn = link.last_applied.map_or(0, |l| l.index);
        if let Some(start) = self.store.checkpoint_due(now_ms()) {
            if !start.records.is_empty() {
                // Records the checkpoint start took: propose them as a tick would.
                let Some(link) = self.cluster.as_mut() else {
                    return true;
                };
                let last = start.records.last().map_or(0, |e| e.lsn);
                let rs = start.records.into_iter().map(|e| e.record).collect();
                link.submit(last, rs);
            }
            let report = CheckpointReport {
                lsn,
                keys: start.state.len() as u64,
                bytes: 0,
                path: None,
                elapsed: Duration::ZERO,
            };
            self.store
                .on_checkpoint_done(Ok(report), BackendStatus::default(), &mut self.released);
            self.send_released();
        }
        true
    }

    /// Leadership is gone (or a proposal was refused): every reply waiting on a write not
    /// committed gets `-TRYAGAIN`, and the store is rebuilt to the committed state.
    fn lose_leadership(&mut self, why: &str) {
        let Some(link) = self.cluster.as_mut() else {
            return;
        };
        if let Some(t) = link.leading {
            link.abandoned_term = link.abandoned_term.max(t);
        }
        if let Some(p) = &link.proposer {
            p.next_generation();
        }
        // Snapshots holding the uncommitted writes are given up.
        link.snapshot_waits.clear();
        let dirty = !link.proposals.is_empty() || !self.store.all_released();
        link.proposals.clear();
        if !dirty {
            return;
        }
        eprintln!("moodb: cluster: leadership lost ({why}): answering uncommitted writes with TRYAGAIN and rebuilding the committed state");
        let refusal = Frame::from(ReplyError::LeadershipChanged);
        self.store.abandon_uncommitted(&refusal, &mut self.released);
        let Some(link) = self.cluster.as_ref() else {
            return;
        };
        match link.committed_state() {
            Ok(dbs) => {
                let lsn = self.store.last_lsn();
                self.store.replace_state(dbs, lsn);
            }
            Err(e) => {
                // The snapshot this node holds does not decode: nothing it could serve is
                // vouched for.
                eprintln!("moodb: cluster: cannot rebuild the committed state ({e}); stopping");
                std::process::exit(1);
            }
        }
        self.send_released();
    }

    fn publish_role(&mut self) {
        if let Some(link) = self.cluster.as_mut() {
            let role = link.publish();
            let sentinel = link.sentinel_view();
            let progress = link.replica_progress();
            self.store.set_replication(role);
            self.store.set_sentinel(Some(sentinel));
            let mut unblocked = Vec::new();
            self.store
                .set_replica_progress(progress, super::now_ms(), &mut unblocked);
            for release in unblocked {
                if let Some(release) = self.cluster_hold(release) {
                    self.released.push(release);
                }
            }
        }
    }
}

impl Handler<ApplyCommitted> for StoreOwner {
    type Result = ();

    fn handle(&mut self, msg: ApplyCommitted, ctx: &mut Context<Self>) {
        let Some(link) = self.link() else {
            return;
        };
        let me = link.me;
        let was_ready = link.ready();
        let mut durable = None;
        let mut foreign = Vec::new();
        let membership_changed = !msg.memberships.is_empty();
        let mut memberships = msg.memberships.into_iter().peekable();
        for (id, record) in msg.entries {
            let own = id.leader_id.node_id == me;
            if own {
                link.own_applied_term = link.own_applied_term.max(id.leader_id.term);
            }
            link.last_applied = Some(id);
            if let Some(m) = memberships.next_if(|m| m.log_id() == &Some(id)) {
                link.membership = m;
            }
            let Some(record) = record else { continue };
            let mine = own
                && link.leading == Some(id.leader_id.term)
                && link.leading.is_some_and(|t| t > link.abandoned_term)
                && link.proposals.has_in_flight();
            if mine {
                durable = link.proposals.applied();
                if let Some(lsn) = durable {
                    link.own_entries.push_back((id.index, lsn));
                    if link.own_entries.len() > OWN_ENTRIES_MAX {
                        link.own_entries.pop_front();
                    }
                    if link.snapshot_waits.iter().any(|(l, _)| *l == lsn) {
                        let membership = link.membership.clone();
                        for (_, wait) in link.snapshot_waits.extract_if(.., |(l, _)| *l == lsn) {
                            let _ = wait.send((id, membership.clone()));
                        }
                    }
                }
            } else {
                foreign.push(record);
            }
        }
        if let Some(m) = memberships.last() {
            link.membership = m;
        }
        // Slots freed: the ticks held meanwhile go, merged.
        if durable.is_some() && !link.send_held() {
            self.lose_leadership("the proposer is gone");
            return;
        }
        let Some(link) = self.link() else {
            return;
        };
        if membership_changed {
            link.refresh_nodes();
        }
        let now_ready = link.ready();
        if !foreign.is_empty() {
            self.store.apply_committed(foreign, &mut self.released);
        }
        if let Some(lsn) = durable {
            self.store
                .on_durable(lsn, BackendStatus::default(), &mut self.released);
        }
        if now_ready && !was_ready {
            eprintln!("moodb: cluster: leading, serving requests");
        }
        // ROLE's and INFO's offset is the last applied index: refreshed with every apply, so a
        // leader never shows less than its followers (it showed the index of its last metrics
        // change).
        self.publish_role();
        self.send_released();
        self.cluster_confirm_reads(ctx);
    }
}

impl Handler<SnapshotClone> for StoreOwner {
    type Result = Result<ClonedState, String>;

    fn handle(&mut self, _: SnapshotClone, _: &mut Context<Self>) -> Self::Result {
        if self.cluster.is_none() {
            return Err("not in cluster mode".into());
        }
        // Records applied this tick and not yet proposed: propose them now, so that every
        // write the clone holds is in a proposal.
        if self.store.has_records() {
            self.flush_tick();
        }
        let Some(link) = self.cluster.as_mut() else {
            return Err("not in cluster mode".into());
        };
        let dbs = self.store.state();
        let at = match link.proposals.seal() {
            None => ClonedAt::Applied {
                last_applied: link.last_applied,
                membership: link.membership.clone(),
            },
            Some(lsn) => {
                let (tx, rx) = oneshot::channel();
                link.snapshot_waits.push((lsn, tx));
                ClonedAt::Proposed(rx)
            }
        };
        Ok(ClonedState { dbs, at })
    }
}

impl Handler<InstallState> for StoreOwner {
    type Result = ();

    fn handle(&mut self, msg: InstallState, _: &mut Context<Self>) {
        let refusal = Frame::from(ReplyError::LeadershipChanged);
        self.store.abandon_uncommitted(&refusal, &mut self.released);
        let lsn = self.store.last_lsn();
        self.store.replace_state(msg.dbs, lsn);
        if let Some(link) = self.cluster.as_mut() {
            link.proposals.clear();
            link.snapshot_waits.clear();
            link.last_applied = msg.last_applied;
            link.membership = msg.membership;
            link.refresh_nodes();
        }
        self.send_released();
    }
}

impl Handler<AttachRaft> for StoreOwner {
    type Result = ();

    fn handle(&mut self, msg: AttachRaft, ctx: &mut Context<Self>) {
        let owner = ctx.address();
        let Some(link) = self.cluster.as_mut() else {
            return;
        };
        let raft = msg.0;
        link.proposer = Some(Proposer::spawn(raft.clone(), owner.clone()));
        link.raft = Some(raft.clone());
        actix::spawn(watch_metrics(raft, owner));
        self.publish_role();
    }
}

/// Sends the store owner a [`RaftStatus`] whenever leadership changes, and the matched
/// indexes at most every [`STATUS_REFRESH`].
async fn watch_metrics(raft: Raft<TypeConfig>, owner: Addr<StoreOwner>) {
    let mut rx = raft.metrics();
    let mut last: Option<RaftStatus> = None;
    let mut last_sent = tokio::time::Instant::now();
    loop {
        let status = {
            let m = rx.borrow_and_update();
            RaftStatus {
                leading: (m.state == ServerState::Leader).then_some(m.current_term),
                leader: m.current_leader,
                matched: m
                    .replication
                    .as_ref()
                    .map(|r| {
                        r.iter()
                            .map(|(id, l)| (*id, l.map_or(0, |l| l.index)))
                            .collect()
                    })
                    .unwrap_or_default(),
                applied: m.last_applied.map_or(0, |l| l.index),
                last_log: m.last_log_index.unwrap_or(0),
            }
        };
        let leadership_changed = last
            .as_ref()
            .is_none_or(|l| l.leading != status.leading || l.leader != status.leader);
        let figures_changed = last.as_ref() != Some(&status);
        if leadership_changed || (figures_changed && last_sent.elapsed() >= STATUS_REFRESH) {
            if !owner.connected() {
                return;
            }
            // Not `try_send`: a full mailbox must not drop a change of leadership.
            owner.do_send(status.clone());
            last = Some(status);
            last_sent = tokio::time::Instant::now();
        }
        match tokio::time::timeout(STATUS_REFRESH, rx.changed()).await {
            Ok(Ok(())) | Err(_) => {}
            Ok(Err(_)) => return, // raft stopped
        }
    }
}

impl Handler<RaftStatus> for StoreOwner {
    type Result = ();

    fn handle(&mut self, msg: RaftStatus, ctx: &mut Context<Self>) {
        let Some(link) = self.cluster.as_mut() else {
            return;
        };
        let lost = link.leading.is_some() && link.leading != msg.leading;
        if msg.leader != link.leader {
            match msg.leader {
                Some(l) if l == link.me && msg.leading.is_some() => {
                    eprintln!("moodb: cluster: this node (node {l}) leads")
                }
                Some(l) => eprintln!("moodb: cluster: node {l} leads"),
                None => eprintln!("moodb: cluster: no leader (election)"),
            }
        }
        if lost {
            self.lose_leadership("raft reports another leader or none");
        }
        let Some(link) = self.cluster.as_mut() else {
            return;
        };
        if msg.leading.is_some() && msg.leading != link.leading {
            link.lead_from_index = msg.last_log;
        }
        link.leading = msg.leading;
        link.leader = msg.leader;
        link.matched = msg.matched;
        self.publish_role();
        self.send_released();
        self.cluster_confirm_reads(ctx);
    }
}

impl Handler<ProposalFailed> for StoreOwner {
    type Result = ();

    fn handle(&mut self, msg: ProposalFailed, _: &mut Context<Self>) {
        let current = self
            .cluster
            .as_ref()
            .and_then(|l| l.proposer.as_ref())
            .map(Proposer::generation);
        if current == Some(msg.generation) {
            self.lose_leadership(&msg.reason);
            self.publish_role();
        }
    }
}

impl Handler<ExecuteHere> for StoreOwner {
    type Result = ();

    fn handle(&mut self, msg: ExecuteHere, ctx: &mut Context<Self>) {
        let job = msg.0;
        let batch = Batch {
            session: job.session,
            seq: job.seq,
            requests: job.requests,
            reply_to: job.reply_to,
            proto: job.proto,
        };
        let ready = self.cluster.as_ref().is_some_and(ClusterLink::ready);
        if ready {
            if let Some(admin) = RaftAdmin::parse(&batch) {
                self.cluster_raft_admin(admin, batch);
                return;
            }
            self.execute_batch(batch, ctx);
        } else if let Some(batch) = self.cluster_admits(batch) {
            self.execute_batch(batch, ctx);
        }
    }
}

/// `RAFT` as the store owner answers it (the ready leader; a follower forwards it there):
/// a batch of exactly one well-formed `RAFT` request. Anything else reaches the store, whose
/// parser answers the arity and subcommand errors (or that RAFT must come alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RaftAdmin {
    Status,
    AddNode {
        id: NodeId,
        raft: String,
        client: String,
    },
    RemoveNode(NodeId),
}

impl RaftAdmin {
    fn parse(batch: &Batch) -> Option<RaftAdmin> {
        let [request] = batch.requests.as_slice() else {
            return None;
        };
        if !request.first()?.eq_ignore_ascii_case(b"raft") {
            return None;
        }
        let text = |i: usize| {
            request
                .get(i)
                .map(|b| String::from_utf8_lossy(b).into_owned())
        };
        let id = |i: usize| text(i).and_then(|t| t.parse::<NodeId>().ok());
        match (text(1)?.to_ascii_lowercase().as_str(), request.len()) {
            ("status", 2) => Some(RaftAdmin::Status),
            ("add-node", 5) => Some(RaftAdmin::AddNode {
                id: id(2)?,
                raft: text(3)?,
                client: text(4)?,
            }),
            ("remove-node", 3) => Some(RaftAdmin::RemoveNode(id(2)?)),
            _ => None,
        }
    }
}

/// How long ADD-NODE waits for the new node to catch up, and each membership change to commit.
pub const MEMBERSHIP_WAIT: Duration = Duration::from_secs(60);

/// A node's addresses as its membership entry carries them: `raft|client` for a node added
/// with `RAFT ADD-NODE`, the raft address alone for a member listed in `--peers` (its client
/// address is in the configuration).
pub fn member_addrs(addr: &str) -> (String, Option<String>) {
    match addr.split_once('|') {
        Some((raft, client)) => (raft.to_string(), Some(client.to_string())),
        None => (addr.to_string(), None),
    }
}

impl ClusterLink {
    /// Every member's addresses from the membership, the configured ones filling in the
    /// client addresses a `--peers` member's entry does not carry.
    fn refresh_nodes(&mut self) {
        let membership = self.membership.membership();
        let mut nodes = BTreeMap::new();
        for (id, node) in membership.nodes() {
            let (raft, client) = member_addrs(&node.addr);
            let client = client
                .or_else(|| self.configured.get(id).map(|n| n.client.clone()))
                .unwrap_or_default();
            nodes.insert(*id, NodeAddrs { raft, client });
        }
        if nodes.is_empty() {
            return;
        }
        // This node's own client address is where it listens, whatever the entry says.
        if let (Some(n), Some(me)) = (nodes.get_mut(&self.me), self.configured.get(&self.me)) {
            n.client = me.client.clone();
        }
        self.nodes = nodes;
    }

    /// `RAFT STATUS`: this node's raft metrics, as the leader sees every member.
    fn status(&self) -> Frame {
        let Some(raft) = &self.raft else {
            return Frame::from(ReplyError::NoLeader);
        };
        let m = raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: std::collections::BTreeSet<NodeId> = membership.voter_ids().collect();
        let last = m.last_log_index.unwrap_or(0);
        let matched = |id: &NodeId| -> u64 {
            if *id == m.id {
                return last;
            }
            m.replication
                .as_ref()
                .and_then(|r| r.get(id).copied().flatten())
                .map_or(0, |l| l.index)
        };
        // The highest index a majority of the voters holds.
        let mut acked: Vec<u64> = voters.iter().map(matched).collect();
        acked.sort_unstable_by(|a, b| b.cmp(a));
        let commit = acked.get(acked.len() / 2).copied().unwrap_or(0);
        let int = |n: u64| Frame::Integer(i64::try_from(n).unwrap_or(i64::MAX));
        let bulk = |s: &str| Frame::bulk(s);
        let nodes = membership
            .nodes()
            .map(|(id, node)| {
                let (raft_addr, client) = member_addrs(&node.addr);
                let client = client
                    .or_else(|| self.nodes.get(id).map(|n| n.client.clone()))
                    .unwrap_or_default();
                let at = matched(id);
                Frame::Map(vec![
                    (bulk("id"), int(*id)),
                    (bulk("raft_addr"), bulk(&raft_addr)),
                    (bulk("client_addr"), bulk(&client)),
                    (
                        bulk("role"),
                        bulk(if voters.contains(id) {
                            "voter"
                        } else {
                            "learner"
                        }),
                    ),
                    (bulk("last_log_index"), int(at)),
                    (bulk("lag"), int(last.saturating_sub(at))),
                ])
            })
            .collect();
        Frame::Map(vec![
            (bulk("node"), int(m.id)),
            (bulk("leader"), m.current_leader.map_or(Frame::Null, int)),
            (bulk("term"), int(m.current_term)),
            (bulk("commit_index"), int(commit)),
            (
                bulk("applied_index"),
                int(m.last_applied.map_or(0, |l| l.index)),
            ),
            (bulk("last_log_index"), int(last)),
            (
                bulk("snapshot_index"),
                int(m.snapshot.map_or(0, |l| l.index)),
            ),
            (bulk("purged_index"), int(m.purged.map_or(0, |l| l.index))),
            (bulk("nodes"), Frame::Array(nodes)),
        ])
    }
}

/// Runs a membership change on `raft`, bounded by [`MEMBERSHIP_WAIT`] per step.
async fn change_membership(raft: Raft<TypeConfig>, admin: RaftAdmin) -> Result<(), String> {
    use openraft::ChangeMembers;
    use std::collections::BTreeSet;
    let bounded = |what: &'static str| move |_| format!("{what} did not finish within 60 s");
    match admin {
        RaftAdmin::Status => Ok(()),
        RaftAdmin::AddNode {
            id,
            raft: addr,
            client,
        } => {
            let node = BasicNode::new(format!("{addr}|{client}"));
            // As a learner first, until it has caught up (from a snapshot when the log it
            // needs is purged); then a voter.
            tokio::time::timeout(MEMBERSHIP_WAIT, raft.add_learner(id, node, true))
                .await
                .map_err(bounded("catching the new node up"))?
                .map_err(|e| e.to_string())?;
            tokio::time::timeout(
                MEMBERSHIP_WAIT,
                raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false),
            )
            .await
            .map_err(bounded("making the new node a voter"))?
            .map_err(|e| e.to_string())?;
            Ok(())
        }
        RaftAdmin::RemoveNode(id) => {
            let voter = raft
                .metrics()
                .borrow()
                .membership_config
                .membership()
                .voter_ids()
                .any(|v| v == id);
            let change = if voter {
                ChangeMembers::RemoveVoters(BTreeSet::from([id]))
            } else {
                ChangeMembers::RemoveNodes(BTreeSet::from([id]))
            };
            tokio::time::timeout(MEMBERSHIP_WAIT, raft.change_membership(change, false))
                .await
                .map_err(bounded("removing the node"))?
                .map_err(|e| e.to_string())?;
            Ok(())
        }
    }
}

impl StoreOwner {
    /// Answers a `RAFT` batch on the ready leader: STATUS at once, a membership change when
    /// openraft has committed it (the reply leaves then, on its own task).
    fn cluster_raft_admin(&mut self, admin: RaftAdmin, batch: Batch) {
        let Some(link) = self.cluster.as_ref() else {
            return;
        };
        let reply = move |frame: Frame| {
            batch.reply_to.do_send(Replies {
                seq: batch.seq,
                frames: vec![frame],
                push: false,
            })
        };
        if admin == RaftAdmin::Status {
            reply(link.status());
            return;
        }
        let Some(raft) = link.raft.clone() else {
            reply(Frame::from(ReplyError::NoLeader));
            return;
        };
        let sub = match admin {
            RaftAdmin::AddNode { .. } => "ADD-NODE",
            _ => "REMOVE-NODE",
        };
        eprintln!("moodb: cluster: RAFT {sub}: {admin:?}");
        actix::spawn(async move {
            let frame = match change_membership(raft, admin).await {
                Ok(()) => Frame::Simple("OK".into()),
                Err(cause) => Frame::from(ReplyError::RaftFailed { sub, cause }),
            };
            reply(frame);
        });
    }
}
