//! Raft nodes in one test process talking over the real peer transport: each node has the
//! paper raft log on real files in its own temp dir and the key-space state machine, dials its
//! peers with `PeerNetwork` and answers them with `serve_peers` on a 127.0.0.1:0 listener,
//! authenticated with the cluster secret. Election, replication and failover after the
//! leader is killed; a node with the wrong secret refused (and the refusal logged); the
//! leader isolated by in-test TCP proxies and healed, a follower isolated and healed, a
//! follower restarted from its directory; a new node brought up to date by a snapshot streamed
//! in chunks after the leader purged its log; strangers on the peer port, the connection limit
//! and the frame bounds on both sides. Every wait is bounded.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
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
use openraft::raft::{AppendEntriesRequest, VoteRequest};
use openraft::{BasicNode, CommittedLeaderId, Config, Entry, EntryPayload, LogId, Raft, Vote};

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
    /// The peer server task (taken when killed).
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The address peers dial (the proxy's when there is one).
    addr: String,
    /// The address its peer server listens on.
    listen: SocketAddr,
    secret: String,
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

    /// Kills the node: raft shut down, peer server aborted (its listener and connections
    /// closed when this returns).
    async fn kill(&self) {
        self.raft.shutdown().await.unwrap();
        let server = self.server.lock().unwrap().take();
        if let Some(server) = server {
            server.abort();
            assert!(server.await.unwrap_err().is_cancelled());
        }
    }
}

fn config() -> Arc<Config> {
    Arc::new(
        Config {
            cluster_name: "moodb-net-test".into(),
            heartbeat_interval: 100,
            // A follower campaigns after its leader lease (the max) plus a random timeout:
            // a new leader within 1.2 s and some.
            election_timeout_min: 300,
            election_timeout_max: 600,
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = proxied.then(|| Proxy::start(listener.local_addr().unwrap()).unwrap());
    boot(id, secret, tempfile::tempdir().unwrap(), listener, proxy).await
}

/// Starts `node` again after [`Node::kill`]: the same directory (its raft log and vote), the
/// same address, the same proxy.
async fn restart(node: Node) -> Node {
    let Node {
        id,
        secret,
        listen,
        proxy,
        _dir: dir,
        ..
    } = node;
    let listener = tokio::net::TcpListener::bind(listen).await.unwrap();
    boot(id, &secret, dir, listener, proxy).await
}

async fn boot(
    id: NodeId,
    secret: &str,
    dir: tempfile::TempDir,
    listener: tokio::net::TcpListener,
    proxy: Option<Proxy>,
) -> Node {
    let listen = listener.local_addr().unwrap();
    let addr = proxy.as_ref().map_or(listen, |p| p.addr()).to_string();
    let source: IpAddr = if proxy.is_some() {
        format!("127.0.0.{}", 10 + id).parse().unwrap()
    } else {
        "127.0.0.1".parse().unwrap()
    };
    let log: Lines = Arc::default();
    let options = PeerOptions {
        source_ip: proxy.is_some().then_some(source),
        log: collect(&log),
        ..PeerOptions::default()
    };
    let cluster_secret = ClusterSecret::new(secret).unwrap();
    let store = PaperRaftLog::open(Box::new(StdFs), dir.path()).unwrap();
    let sm = StateMachine::new(16, Arc::new(PaperSnapshotCodec));
    let raft = Raft::new(
        id,
        config(),
        PeerNetwork::with_options(id, cluster_secret.clone(), options.clone()),
        LogStore::new(Box::new(store)),
        sm.clone(),
    )
    .await
    .unwrap();
    let server = tokio::spawn(serve_peers_with(
        listener,
        raft.clone(),
        cluster_secret,
        options,
    ));
    Node {
        id,
        raft,
        sm,
        server: Mutex::new(Some(server)),
        addr,
        listen,
        secret: secret.to_string(),
        proxy,
        source,
        log,
        _dir: dir,
    }
}

/// A log sink that keeps the lines in `lines`.
fn collect(lines: &Lines) -> PeerLog {
    let lines = lines.clone();
    PeerLog::new(move |line| lines.lock().unwrap().push(line.to_string()))
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
            first_write < Duration::from_secs(2),
            "a new leader after {took:?}, its first write after {first_write:?}"
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

#[test]
fn an_isolated_follower_and_a_restarted_follower_catch_up() {
    run(async {
        let mut nodes = cluster("s3cret", true).await;
        let leader_id = leader_of(&nodes[0].raft, None).await;
        let followers: Vec<NodeId> = nodes
            .iter()
            .map(|n| n.id)
            .filter(|id| *id != leader_id)
            .collect();
        let (cut, other) = (followers[0], followers[1]);

        // One follower cut off both ways: the leader commits with the other.
        let isolated = node(&nodes, cut);
        isolated.proxy.as_ref().unwrap().partition();
        for n in nodes.iter().filter(|n| n.id != cut) {
            n.proxy.as_ref().unwrap().block(isolated.source);
        }
        let mut last = 0;
        for i in 0..10 {
            last = node(&nodes, leader_id)
                .raft
                .client_write(set(&format!("i{i}"), "during"))
                .await
                .unwrap()
                .data
                .index;
        }
        applied(&node(&nodes, other).raft, last, "the other follower").await;
        assert_eq!(isolated.value("i0"), None);
        for n in &nodes {
            n.proxy.as_ref().unwrap().heal();
        }
        applied(&isolated.raft, last, "the isolated follower caught up").await;
        for i in 0..10 {
            assert_eq!(
                isolated.value(&format!("i{i}")).as_deref(),
                Some(&b"during"[..])
            );
        }
        // A leader again (the cut follower's higher term may have forced an election).
        let leader_now = leader_of(&isolated.raft, None).await;

        // The other follower is killed, misses writes, restarts from its directory on the
        // same address; the leader's stale connection to it is replaced.
        let at = nodes.iter().position(|n| n.id == other).unwrap();
        let down = nodes.remove(at);
        down.kill().await;
        let mut missed = 0;
        for i in 0..5 {
            missed = node(&nodes, leader_now)
                .raft
                .client_write(set(&format!("d{i}"), "down"))
                .await
                .unwrap()
                .data
                .index;
        }
        let back = restart(down).await;
        applied(&back.raft, missed, "the restarted follower caught up").await;
        for i in 0..10 {
            assert_eq!(
                back.value(&format!("i{i}")).as_deref(),
                Some(&b"during"[..])
            );
        }
        for i in 0..5 {
            assert_eq!(back.value(&format!("d{i}")).as_deref(), Some(&b"down"[..]));
        }
        nodes.push(back);
        for n in &nodes {
            n.kill().await;
        }
    });
}

/// A connection to `to` from the loopback address `from`.
async fn connect_from(from: &str, to: SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(from.parse().unwrap(), 0))
        .unwrap();
    socket.connect(to).await.unwrap()
}

/// Reads until the other end closes; bounded by `within`.
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0; 64];
    let read = tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(read.is_ok(), "still open after {within:?}");
}

/// Waits (bounded) until `lines` holds a line with `what`.
async fn logged(lines: &Lines, what: &str) {
    let deadline = Instant::now() + WAIT;
    while !lines.lock().unwrap().iter().any(|l| l.contains(what)) {
        assert!(
            Instant::now() < deadline,
            "no line with {what:?} in {:?}",
            lines.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn append_of(entries: usize, value_len: usize) -> AppendEntriesRequest<TypeConfig> {
    AppendEntriesRequest {
        vote: Vote::new(0, 2),
        prev_log_id: None,
        entries: (1..=entries as u64)
            .map(|index| Entry {
                log_id: LogId::new(CommittedLeaderId::new(0, 2), index),
                payload: EntryPayload::Normal(set("k", &"v".repeat(value_len))),
            })
            .collect(),
        leader_commit: None,
    }
}

#[test]
fn the_peer_port_refuses_strangers_and_bounds_connections_and_frames() {
    run(async {
        let lines: Lines = Arc::default();
        let secret = ClusterSecret::new("s3cret").unwrap();
        let options = PeerOptions {
            handshake_timeout: Duration::from_millis(500),
            max_connections: 3,
            max_frame: 64 << 10,
            log: collect(&lines),
            ..PeerOptions::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let raft = Raft::new(
            1,
            config(),
            PeerNetwork::with_options(1, secret.clone(), options.clone()),
            LogStore::new(Box::new(
                PaperRaftLog::open(Box::new(StdFs), dir.path()).unwrap(),
            )),
            StateMachine::new(16, Arc::new(PaperSnapshotCodec)),
        )
        .await
        .unwrap();
        raft.initialize(BTreeMap::from([(1, BasicNode::new(addr.to_string()))]))
            .await
            .unwrap();
        leader_of(&raft, None).await;
        let server = tokio::spawn(serve_peers_with(
            listener,
            raft.clone(),
            secret.clone(),
            options,
        ));

        // Something that is not a raft peer is closed on and logged.
        let mut http = connect_from("127.0.0.21", addr).await;
        tokio::io::AsyncWriteExt::write_all(&mut http, b"GET / HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        closed_within(&mut http, Duration::from_secs(2)).await;
        logged(
            &lines,
            &format!(
                "moodb: refused raft peer {}: not a moodb raft peer (an unreadable hello)",
                http.local_addr().unwrap()
            ),
        )
        .await;

        // Three silent connections fill the limit; a fourth is closed at once; the silent
        // ones are closed after the handshake timeout.
        let mut silent = Vec::new();
        for _ in 0..3 {
            silent.push(connect_from("127.0.0.22", addr).await);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut fourth = connect_from("127.0.0.23", addr).await;
        let started = Instant::now();
        closed_within(&mut fourth, Duration::from_millis(400)).await;
        assert!(started.elapsed() < Duration::from_millis(400));
        logged(
            &lines,
            &format!(
                "moodb: refused raft peer {}: 3 connections already",
                fourth.local_addr().unwrap()
            ),
        )
        .await;
        for s in &mut silent {
            closed_within(s, Duration::from_secs(3)).await;
        }
        logged(&lines, ": no handshake within 500ms").await;
        // One line for the three, the others counted when the next is logged.
        let about_22 = lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("127.0.0.22:"))
            .count();
        assert_eq!(about_22, 1, "{:?}", lines.lock().unwrap());

        // An authenticated peer is served once they are gone.
        let quiet = || PeerOptions {
            log: PeerLog::new(|_| {}),
            ..PeerOptions::default()
        };
        let node1 = BasicNode::new(addr.to_string());
        let mut net = PeerNetwork::with_options(2, secret.clone(), quiet());
        let mut client = net.new_client(1, &node1).await;
        let answer = client
            .vote(
                VoteRequest::new(Vote::new(0, 2), None),
                RPCOption::new(Duration::from_secs(1)),
            )
            .await
            .unwrap();
        assert!(!answer.vote_granted, "{answer:?}");

        // The dialer splits a batch too large for its frames and refuses a single entry
        // that cannot fit; the listener closes on a frame above its own limit.
        let mut small = PeerNetwork::with_options(
            2,
            secret.clone(),
            PeerOptions {
                max_frame: 16 << 10,
                ..quiet()
            },
        );
        let mut client = small.new_client(1, &node1).await;
        let opt = RPCOption::new(Duration::from_secs(1));
        match client
            .append_entries(append_of(100, 1000), opt.clone())
            .await
        {
            Err(RPCError::PayloadTooLarge(p)) => assert_eq!(p.entries_hint(), 50),
            other => panic!("{other:?}"),
        }
        match client
            .append_entries(append_of(1, 32 << 10), opt.clone())
            .await
        {
            Err(RPCError::Unreachable(u)) => {
                assert!(u.to_string().contains("exceeds the limit of 16384"), "{u}")
            }
            other => panic!("{other:?}"),
        }
        let mut client = net.new_client(1, &node1).await;
        match client.append_entries(append_of(1, 100 << 10), opt).await {
            Err(RPCError::Network(_)) => {}
            other => panic!("{other:?}"),
        }
        logged(&lines, "exceeds the limit of 65536").await;
        // And the node goes on serving.
        let mut client = net.new_client(1, &node1).await;
        client
            .vote(
                VoteRequest::new(Vote::new(0, 2), None),
                RPCOption::new(Duration::from_secs(1)),
            )
            .await
            .unwrap();

        raft.shutdown().await.unwrap();
        server.abort();
    });
}

#[test]
fn a_pooled_connection_that_died_while_idle_is_redialed_transparently() {
    run(async {
        let secret = ClusterSecret::new("s3cret").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let raft = Raft::new(
            1,
            config(),
            PeerNetwork::new(1, secret.clone()),
            LogStore::new(Box::new(
                PaperRaftLog::open(Box::new(StdFs), dir.path()).unwrap(),
            )),
            StateMachine::new(16, Arc::new(PaperSnapshotCodec)),
        )
        .await
        .unwrap();
        let lines: Lines = Arc::default();
        let options = PeerOptions {
            log: collect(&lines),
            ..PeerOptions::default()
        };
        let server = tokio::spawn(serve_peers_with(
            listener,
            raft.clone(),
            secret.clone(),
            options.clone(),
        ));
        let mut net = PeerNetwork::with_options(2, secret.clone(), options.clone());
        let node1 = BasicNode::new(addr.to_string());
        let vote = |term| VoteRequest::new(Vote::new(term, 2), None);
        let opt = RPCOption::new(Duration::from_secs(1));
        // A vote client, dropped after its request: its connection goes to the pool.
        let granted = net
            .new_client(1, &node1)
            .await
            .vote(vote(1), opt.clone())
            .await
            .unwrap();
        assert!(granted.vote_granted, "{granted:?}");

        // The peer server restarts on the same address: the pooled connection is dead.
        server.abort();
        assert!(server.await.unwrap_err().is_cancelled());
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let server = tokio::spawn(serve_peers_with(
            listener,
            raft.clone(),
            secret.clone(),
            options,
        ));
        let again = net
            .new_client(1, &node1)
            .await
            .vote(vote(2), opt)
            .await
            .unwrap();
        assert!(again.vote_granted, "{again:?}");
        assert_eq!(raft.metrics().borrow().current_term, 2);
        assert!(
            lines.lock().unwrap().is_empty(),
            "{:?}",
            lines.lock().unwrap()
        );
        raft.shutdown().await.unwrap();
        server.abort();
    });
}
