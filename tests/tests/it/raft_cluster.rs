//! Three raft nodes in one test process, each with the paper raft log on real files in its own
//! temp dir and the key-space state machine, over an in-memory `RaftNetwork` (calls go straight
//! to the target's `Raft`; a node taken out of the router is unreachable). A leader is
//! elected, a few physical records are replicated and applied on every node, then the leader
//! is shut down, the two others elect a new one and go on, and the old leader restarts from
//! its raft log on disk and catches up. Every wait is bounded.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moodb_backends::paper::fs::StdFs;
use moodb_backends::paper::raft_log::{PaperRaftLog, PaperSnapshotCodec};
use moodb_core::Record;
use moodb_server::replication::types::{NodeId, TypeConfig};
use moodb_server::replication::{LogStore, StateMachine, Write};
use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Config, Raft};

type Rpc<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

/// The in-memory network: node id → its `Raft`.
#[derive(Clone, Default)]
struct Router {
    nodes: Arc<Mutex<BTreeMap<NodeId, Raft<TypeConfig>>>>,
}

impl Router {
    fn get(&self, id: NodeId) -> Result<Raft<TypeConfig>, Unreachable> {
        let nodes = self.nodes.lock().unwrap();
        nodes.get(&id).cloned().ok_or_else(|| {
            Unreachable::new(&std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                format!("node {id} is not in the router"),
            ))
        })
    }
}

struct Connection {
    router: Router,
    target: NodeId,
}

impl RaftNetworkFactory<TypeConfig> for Router {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Connection {
        Connection {
            router: self.clone(),
            target,
        }
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Rpc<AppendEntriesResponse<NodeId>> {
        let raft = self
            .router
            .get(self.target)
            .map_err(RPCError::Unreachable)?;
        raft.append_entries(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Rpc<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        let raft = self
            .router
            .get(self.target)
            .map_err(RPCError::Unreachable)?;
        raft.install_snapshot(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Rpc<VoteResponse<NodeId>> {
        let raft = self
            .router
            .get(self.target)
            .map_err(RPCError::Unreachable)?;
        raft.vote(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

fn set(key: &str, value: &str) -> Record {
    Record::Set {
        key: key.as_bytes().to_vec().into(),
        value: value.as_bytes().to_vec().into(),
        expires_at_ms: None,
    }
}

const WAIT: Duration = Duration::from_secs(10);

/// Waits (bounded) until `raft` sees a leader other than `not`, and returns it.
async fn leader_of(raft: &Raft<TypeConfig>, not: Option<NodeId>) -> NodeId {
    let metrics = raft
        .wait(Some(WAIT))
        .metrics(
            |m| m.current_leader.is_some() && m.current_leader != not,
            "a leader",
        )
        .await
        .unwrap();
    metrics.current_leader.unwrap()
}

#[test]
fn three_nodes_elect_a_leader_replicate_writes_and_fail_over() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let config = Arc::new(
            Config {
                cluster_name: "moodb-test".into(),
                heartbeat_interval: 50,
                election_timeout_min: 200,
                election_timeout_max: 400,
                ..Config::default()
            }
            .validate()
            .unwrap(),
        );
        let router = Router::default();
        let mut dirs = Vec::new();
        let mut machines = BTreeMap::new();
        for id in 1..=3u64 {
            let dir = tempfile::tempdir().unwrap();
            let log = PaperRaftLog::open(Box::new(StdFs), dir.path()).unwrap();
            let sm = StateMachine::new(16, Arc::new(PaperSnapshotCodec));
            let raft = Raft::new(
                id,
                config.clone(),
                router.clone(),
                LogStore::new(Box::new(log)),
                sm.clone(),
            )
            .await
            .unwrap();
            router.nodes.lock().unwrap().insert(id, raft);
            machines.insert(id, sm);
            dirs.push(dir);
        }
        let members: BTreeMap<NodeId, BasicNode> =
            (1..=3).map(|id| (id, BasicNode::default())).collect();
        router.get(1).unwrap().initialize(members).await.unwrap();

        let leader = leader_of(&router.get(1).unwrap(), None).await;
        let raft = router.get(leader).unwrap();
        let mut last = 0;
        for i in 0..5 {
            let reply = raft
                .client_write(Write(set(&format!("k{i}"), &format!("v{i}"))))
                .await
                .unwrap();
            last = reply.data.index;
        }
        for id in 1..=3 {
            router
                .get(id)
                .unwrap()
                .wait(Some(WAIT))
                .applied_index_at_least(Some(last), "the writes applied")
                .await
                .unwrap();
            let (dbs, _) = machines[&id].state();
            for i in 0..5 {
                let value = dbs
                    .db0()
                    .get(format!("k{i}").as_bytes())
                    .map(|v| v.data.to_vec());
                assert_eq!(
                    value.as_deref(),
                    Some(format!("v{i}").as_bytes()),
                    "node {id}"
                );
            }
        }

        // The leader goes away; the two others elect a new one and take a write.
        let old = router.nodes.lock().unwrap().remove(&leader).unwrap();
        old.shutdown().await.unwrap();
        let survivor = (1..=3).find(|id| *id != leader).unwrap();
        let new_leader = leader_of(&router.get(survivor).unwrap(), Some(leader)).await;
        assert_ne!(new_leader, leader);
        let reply = router
            .get(new_leader)
            .unwrap()
            .client_write(Write(set("after", "failover")))
            .await
            .unwrap();
        for id in (1..=3).filter(|id| *id != leader) {
            router
                .get(id)
                .unwrap()
                .wait(Some(WAIT))
                .applied_index_at_least(Some(reply.data.index), "the write after failover")
                .await
                .unwrap();
            let (dbs, _) = machines[&id].state();
            assert_eq!(
                dbs.db0().get(b"after").map(|v| v.data.to_vec()).as_deref(),
                Some(&b"failover"[..]),
                "node {id}"
            );
            assert_eq!(dbs.db0().len(), 6, "node {id}");
        }
        // The old leader restarts from its raft log on disk (vote and entries) with an empty
        // state machine, rejoins and catches up.
        drop(old);
        let log = PaperRaftLog::open(Box::new(StdFs), dirs[(leader - 1) as usize].path()).unwrap();
        assert!(log.recovery().entries >= last, "{:?}", log.recovery());
        let sm = StateMachine::new(16, Arc::new(PaperSnapshotCodec));
        let rejoined = Raft::new(
            leader,
            config.clone(),
            router.clone(),
            LogStore::new(Box::new(log)),
            sm.clone(),
        )
        .await
        .unwrap();
        router
            .nodes
            .lock()
            .unwrap()
            .insert(leader, rejoined.clone());
        rejoined
            .wait(Some(WAIT))
            .applied_index_at_least(Some(reply.data.index), "the rejoined node caught up")
            .await
            .unwrap();
        let (dbs, _) = sm.state();
        assert_eq!(dbs.db0().len(), 6);
        assert_eq!(
            dbs.db0().get(b"after").map(|v| v.data.to_vec()).as_deref(),
            Some(&b"failover"[..])
        );
        for id in 1..=3 {
            router.get(id).unwrap().shutdown().await.unwrap();
        }
    });
}
