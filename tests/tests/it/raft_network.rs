//! Raft nodes in one test process talking over the real peer transport: each node has the
//! paper raft log on real files in its own temp dir and the key-space state machine, dials its
//! peers with `PeerNetwork` and answers them with `serve_peers` on a 127.0.0.1:0 listener,
//! authenticated with the cluster secret. Election, replication and failover after the
//! leader is killed; a node with the wrong secret refused (and the refusal logged); the
//! leader isolated by in-test TCP proxies and healed; a new node brought up to date by a
//! snapshot streamed in chunks after the leader purged its log. Every wait is bounded.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moodb_backends::paper::fs::StdFs;
use moodb_backends::paper::raft_log::{PaperRaftLog, PaperSnapshotCodec};
use moodb_core::Record;
use moodb_server::replication::types::{NodeId, TypeConfig};
use moodb_server::replication::{
    serve_peers_with, ClusterSecret, LogStore, PeerLog, PeerNetwork, PeerOptions, StateMachine,
    Write,
};
use moodb_tests::proxy::Proxy;
use openraft::error::RPCError;
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::VoteRequest;
use openraft::{BasicNode, Config, Raft, Vote};

const WAIT: Duration = Duration::from_secs(10);
/// The whole of one test, at most.
const TEST_BOUND: Duration = Duration::from_secs(90);

type Lines = Arc<Mutex<Vec<String>>>;

/// One node: its raft, state machine, peer server task and, in proxied clusters, the proxy
/// its peers reach it through.
struct Node {
    id: NodeId,
    raft: Raft<TypeConfig>,
    sm: StateMachine,
    server: tokio::task::JoinHandle<()>,
    /// The address peers dial (the proxy's when there is one).
    addr: String,
    proxy: Option<Proxy>,
    /// The address this node's outgoing connections come from.
    source: IpAddr,
    log: Lines,
    _dir: tempfile::TempDir,
}

impl Node {
    fn lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    fn value(&self, key: &str) -> Option<Vec<u8>> {
        let (dbs, _) = self.sm.state();
        dbs.db0().get(key.as_bytes()).map(|v| v.data.to_vec())
    }

    /// Kills the node: raft shut down, peer server aborted (its connections close).
    async fn kill(&self) {
        self.raft.shutdown().await.unwrap();
        self.server.abort();
    }
}

fn config() -> Arc<Config> {
    Arc::new(
        Config {
            cluster_name: "moodb-net-test".into(),
            heartbeat_interval: 100,
            election_timeout_min: 400,
            election_timeout_max: 800,
            install_snapshot_timeout: 2000,
            // Small chunks: a snapshot of a few dozen keys crosses the wire in several.
            snapshot_max_chunk_size: 4096,
            max_in_snapshot_log_to_keep: 0,
            ..Config::default()
        }
        .validate()
        .unwrap(),
    )
}

/// Starts node `id` with `secret`; `proxied`: peers reach it through a proxy and it dials
/// from a loopback address of its own (127.0.0.(10 + id)), so proxies can cut it off.
async fn start_node(id: NodeId, secret: &str, proxied: bool) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listen = listener.local_addr().unwrap();
    let proxy = proxied.then(|| Proxy::start(listen).unwrap());
    let addr = proxy.as_ref().map_or(listen, |p| p.addr()).to_string();
    let source: IpAddr = if proxied {
        format!("127.0.0.{}", 10 + id).parse().unwrap()
    } else {
        "127.0.0.1".parse().unwrap()
    };
    let log: Lines = Arc::default();
    let options = PeerOptions {
        source_ip: proxied.then_some(source),
        log: {
            let log = log.clone();
            PeerLog::new(move |line| log.lock().unwrap().push(line.to_string()))
        },
        ..PeerOptions::default()
    };
    let secret = ClusterSecret::new(secret).unwrap();
    let store = PaperRaftLog::open(Box::new(StdFs), dir.path()).unwrap();
    let sm = StateMachine::new(16, Arc::new(PaperSnapshotCodec));
    let raft = Raft::new(
        id,
        config(),
        PeerNetwork::with_options(id, secret.clone(), options.clone()),
        LogStore::new(Box::new(store)),
        sm.clone(),
    )
    .await
    .unwrap();
    let server = tokio::spawn(serve_peers_with(listener, raft.clone(), secret, options));
    Node {
        id,
        raft,
        sm,
        server,
        addr,
        proxy,
        source,
        log,
        _dir: dir,
    }
}

/// Three nodes (ids 1..=3) with `secret`, initialized as one cluster.
async fn cluster(secret: &str, proxied: bool) -> Vec<Node> {
    let mut nodes = Vec::new();
    for id in 1..=3 {
        nodes.push(start_node(id, secret, proxied).await);
    }
    let members: BTreeMap<NodeId, BasicNode> = nodes
        .iter()
        .map(|n| (n.id, BasicNode::new(&n.addr)))
        .collect();
    nodes[0].raft.initialize(members).await.unwrap();
    nodes
}

fn node(nodes: &[Node], id: NodeId) -> &Node {
    nodes.iter().find(|n| n.id == id).unwrap()
}

fn set(key: &str, value: &str) -> Write {
    Write(Record::Set {
        key: key.as_bytes().to_vec().into(),
        value: value.as_bytes().to_vec().into(),
        expires_at_ms: None,
    })
}

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

async fn applied(raft: &Raft<TypeConfig>, index: u64, what: &str) {
    raft.wait(Some(WAIT))
        .applied_index_at_least(Some(index), what)
        .await
        .unwrap();
}

/// Runs `test` on a multi-threaded runtime, bounded by [`TEST_BOUND`].
fn run<F: std::future::Future<Output = ()>>(test: F) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        tokio::time::timeout(TEST_BOUND, test)
            .await
            .expect("the test finished in time");
    });
}

#[test]
fn three_nodes_over_tcp_elect_replicate_and_fail_over_within_two_seconds() {
    run(async {
        let nodes = cluster("s3cret", false).await;
        let leader = leader_of(&nodes[0].raft, None).await;
        let mut last = 0;
        for i in 0..5 {
            let reply = node(&nodes, leader)
                .raft
                .client_write(set(&format!("k{i}"), &format!("v{i}")))
                .await
                .unwrap();
            last = reply.data.index;
        }
        for n in &nodes {
            applied(&n.raft, last, "the writes applied").await;
            for i in 0..5 {
                assert_eq!(
                    n.value(&format!("k{i}")).as_deref(),
                    Some(format!("v{i}").as_bytes()),
                    "node {}",
                    n.id
                );
            }
        }

        node(&nodes, leader).kill().await;
        let killed = Instant::now();
        let survivor = nodes.iter().find(|n| n.id != leader).unwrap();
        let new_leader = leader_of(&survivor.raft, Some(leader)).await;
        let took = killed.elapsed();
        assert_ne!(new_leader, leader);
        let reply = node(&nodes, new_leader)
            .raft
            .client_write(set("after", "failover"))
            .await
            .unwrap();
        let first_write = killed.elapsed();
        eprintln!("failover: a new leader after {took:?}, its first write after {first_write:?}");
        assert!(
            took < Duration::from_secs(2),
            "a new leader after {took:?} (first write after {first_write:?})"
        );
        for n in nodes.iter().filter(|n| n.id != leader) {
            applied(&n.raft, reply.data.index, "the write after failover").await;
            assert_eq!(n.value("after").as_deref(), Some(&b"failover"[..]));
            for i in 0..5 {
                assert!(n.value(&format!("k{i}")).is_some(), "node {}", n.id);
            }
        }
        for n in nodes.iter().filter(|n| n.id != leader) {
            n.kill().await;
        }
    });
}

#[test]
fn a_node_with_the_wrong_secret_cannot_join_and_is_logged() {
    run(async {
        let nodes = cluster("right secret", false).await;
        let leader = leader_of(&nodes[0].raft, None).await;
        let reply = node(&nodes, leader)
            .raft
            .client_write(set("k", "v"))
            .await
            .unwrap();
        for n in &nodes {
            applied(&n.raft, reply.data.index, "the write").await;
        }

        // A fourth node with another secret is added as a learner: the leader's replication
        // to it is refused at every attempt, on both sides.
        let intruder = start_node(4, "wrong secret", false).await;
        node(&nodes, leader)
            .raft
            .add_learner(4, BasicNode::new(&intruder.addr), false)
            .await
            .unwrap();
        let refused_us = format!(
            "moodb: raft node 4: raft peer {} refused us: wrong cluster secret",
            intruder.addr
        );
        let deadline = Instant::now() + WAIT;
        loop {
            let here = intruder.lines();
            let there = node(&nodes, leader).lines();
            let refused = here.iter().any(|l| {
                l.starts_with("moodb: refused raft peer 127.0.0.1:")
                    && l.ends_with(": wrong cluster secret")
            });
            if refused && there.contains(&refused_us) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no refusal logged: intruder {here:?}, leader {there:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Logged once per address and window, not once per retry.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(intruder.lines().len(), 1, "{:?}", intruder.lines());
        assert_eq!(
            node(&nodes, leader)
                .lines()
                .iter()
                .filter(|l| **l == refused_us)
                .count(),
            1
        );
        // It got nothing: no entry, no leader, no key.
        let m = intruder.raft.metrics().borrow().clone();
        assert_eq!(m.last_log_index, None);
        assert_eq!(m.current_leader, None);
        assert_eq!(intruder.value("k"), None);
        let lm = node(&nodes, leader).raft.metrics().borrow().clone();
        assert_eq!(lm.replication.unwrap().get(&4), Some(&None));

        // Dialing a member with the wrong secret: a clear error, and the request (a vote of a
        // far higher term) never reaches the member's raft.
        let target = &nodes[0];
        let term = target.raft.metrics().borrow().current_term;
        let mut net = PeerNetwork::with_options(
            9,
            ClusterSecret::new("guess").unwrap(),
            PeerOptions {
                log: PeerLog::new(|_| {}),
                ..PeerOptions::default()
            },
        );
        let mut client = net
            .new_client(target.id, &BasicNode::new(&target.addr))
            .await;
        let err = client
            .vote(
                VoteRequest::new(Vote::new(term + 100, 9), None),
                RPCOption::new(Duration::from_secs(1)),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, RPCError::Unreachable(_)), "{err:?}");
        assert!(
            err.to_string().contains(&format!(
                "raft peer {} refused us: wrong cluster secret",
                target.addr
            )),
            "{err}"
        );
        assert!(target.raft.metrics().borrow().current_term < term + 100);

        intruder.kill().await;
        for n in &nodes {
            n.kill().await;
        }
    });
}

#[test]
fn an_isolated_leader_cannot_commit_and_converges_after_healing() {
    run(async {
        let nodes = cluster("s3cret", true).await;
        let old = leader_of(&nodes[0].raft, None).await;
        let before = node(&nodes, old)
            .raft
            .client_write(set("before", "1"))
            .await
            .unwrap();
        for n in &nodes {
            applied(&n.raft, before.data.index, "the write before").await;
        }

        // The leader is cut off both ways: nobody reaches it, it reaches nobody.
        let isolated = node(&nodes, old);
        isolated.proxy.as_ref().unwrap().partition();
        for n in nodes.iter().filter(|n| n.id != old) {
            n.proxy.as_ref().unwrap().block(isolated.source);
        }
        let majority: Vec<&Node> = nodes.iter().filter(|n| n.id != old).collect();
        let new = leader_of(&majority[0].raft, Some(old)).await;
        assert_ne!(new, old);
        // The old leader's write never commits (it cannot reach a majority).
        let lost = tokio::time::timeout(
            Duration::from_millis(1500),
            isolated.raft.client_write(set("lost", "x")),
        )
        .await;
        assert!(!matches!(lost, Ok(Ok(_))), "{lost:?}");
        let after = node(&nodes, new)
            .raft
            .client_write(set("after", "2"))
            .await
            .unwrap();
        for n in &majority {
            applied(&n.raft, after.data.index, "the majority's write").await;
            assert_eq!(n.value("lost"), None);
        }
        assert_eq!(isolated.value("after"), None);

        for n in &nodes {
            n.proxy.as_ref().unwrap().heal();
        }
        // The old leader follows the new one, drops its uncommitted entry and catches up.
        isolated
            .raft
            .wait(Some(WAIT))
            .metrics(
                |m| {
                    m.current_leader == Some(new)
                        && m.last_applied.map(|l| l.index) >= Some(after.data.index)
                },
                "the old leader follows and caught up",
            )
            .await
            .unwrap();
        let last = node(&nodes, new)
            .raft
            .client_write(set("healed", "3"))
            .await
            .unwrap();
        for n in &nodes {
            applied(&n.raft, last.data.index, "the write after healing").await;
            assert_eq!(
                n.value("before").as_deref(),
                Some(&b"1"[..]),
                "node {}",
                n.id
            );
            assert_eq!(
                n.value("after").as_deref(),
                Some(&b"2"[..]),
                "node {}",
                n.id
            );
            assert_eq!(
                n.value("healed").as_deref(),
                Some(&b"3"[..]),
                "node {}",
                n.id
            );
            assert_eq!(n.value("lost"), None, "node {}", n.id);
        }
        for n in &nodes {
            n.kill().await;
        }
    });
}

#[test]
fn a_new_node_is_brought_up_to_date_by_a_snapshot_over_the_network() {
    run(async {
        let nodes = cluster("s3cret", false).await;
        let leader_id = leader_of(&nodes[0].raft, None).await;
        let leader = node(&nodes, leader_id);
        // About 20 KB of values: the snapshot crosses the wire in several 4 KiB chunks.
        let value = "x".repeat(500);
        let mut last = 0;
        for i in 0..40 {
            last = leader
                .raft
                .client_write(set(&format!("k{i:02}"), &format!("{i}{value}")))
                .await
                .unwrap()
                .data
                .index;
        }
        for n in &nodes {
            applied(&n.raft, last, "the writes").await;
        }
        leader.raft.trigger().snapshot().await.unwrap();
        leader
            .raft
            .wait(Some(WAIT))
            .metrics(
                |m| m.snapshot.map(|s| s.index) >= Some(last),
                "the leader's snapshot",
            )
            .await
            .unwrap();
        leader.raft.trigger().purge_log(last).await.unwrap();
        leader
            .raft
            .wait(Some(WAIT))
            .metrics(
                |m| m.purged.map(|p| p.index) >= Some(last),
                "the leader's log purged",
            )
            .await
            .unwrap();

        // The new node can only be given the snapshot: the entries are gone.
        let fresh = start_node(4, "s3cret", false).await;
        tokio::time::timeout(
            WAIT,
            leader
                .raft
                .add_learner(4, BasicNode::new(&fresh.addr), true),
        )
        .await
        .unwrap()
        .unwrap();
        applied(&fresh.raft, last, "the new node caught up").await;
        let m = fresh.raft.metrics().borrow().clone();
        assert!(m.snapshot.map(|s| s.index) >= Some(last), "{m:?}");
        for i in 0..40 {
            assert_eq!(
                fresh.value(&format!("k{i:02}")),
                Some(format!("{i}{value}").into_bytes()),
                "k{i:02}"
            );
        }
        // And it follows what comes next through plain appends.
        let next = leader
            .raft
            .client_write(set("next", "after the snapshot"))
            .await
            .unwrap();
        applied(&fresh.raft, next.data.index, "the entry after the snapshot").await;
        assert_eq!(
            fresh.value("next").as_deref(),
            Some(&b"after the snapshot"[..])
        );

        fresh.kill().await;
        for n in &nodes {
            n.kill().await;
        }
    });
}
