//! Raft snapshots and log purge, end to end on three real `moodb serve` processes with a small
//! snapshot threshold: snapshots are written as `raftsnap-*` files on every node and the raft
//! log files stay bounded while writes go on; restarting every node (kill -9, then a clean
//! stop) loads the newest snapshot, replays the log after it, and every acknowledged value is
//! there; a follower stopped while the others take writes past a purge catches up by a
//! snapshot install when it returns. Every wait is bounded.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::time::Duration;

use moodb_tests::cluster::{eventually, run_writers, until_served, ELECT};
use moodb_tests::{ClusterNode, TestCluster};

/// A snapshot every 100 entries, 20 kept below it, 4 KiB segments.
const SMALL: &[&str] = &[
    "--snapshot-logs",
    "100",
    "--snapshot-keep-logs",
    "20",
    "--raft-segment-bytes",
    "4096",
];

/// Bytes the raft log segments of a node may hold with purging: the entries since the last
/// snapshot plus those kept, in whole 4 KiB segments, with room to spare. Unpurged, the writes
/// of these tests take well over 100 KB.
const LOG_BOUND: u64 = 40_000;

fn leader_con(cluster: &TestCluster) -> (usize, redis::Connection) {
    let at = cluster
        .leader(None, ELECT)
        .unwrap_or_else(|| panic!("no leader:\n{}", cluster.outputs()));
    let mut con = cluster.nodes[at].connect().unwrap();
    until_served(&mut con, &["SET", "warmup", "1"]);
    (at, con)
}

/// `count` SETs, one at a time (one raft entry each), over `keys` keys; returns each key's
/// last acknowledged value.
fn write(
    con: &mut redis::Connection,
    from: u64,
    count: u64,
    keys: u64,
    acked: &mut BTreeMap<String, u64>,
) {
    for i in from..from + count {
        let key = format!("k{}", i % keys);
        let () = redis::cmd("SET").arg(&key).arg(i).query(con).unwrap();
        acked.insert(key, i);
    }
}

fn keys_in_own_store(node: &ClusterNode) -> u64 {
    let Ok(mut con) = node.connect() else {
        return 0;
    };
    let text: String = redis::cmd("INFO")
        .arg("keyspace")
        .query(&mut con)
        .unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("db0:keys="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap_or(0))
}

/// The index of the entry a `raftsnap-` / `raftlog-` file name starts at.
fn index_of(name: &str) -> u64 {
    name.rsplit('-').next().unwrap().parse().unwrap()
}

/// Whether the node's files say: one snapshot at index ≥ `at_least`, the raft log bounded.
fn snapshotted_and_bounded(node: &ClusterNode, at_least: u64) -> bool {
    let snaps = node.files("raftsnap-");
    let log: u64 = node.files("raftlog-").iter().map(|(_, len)| len).sum();
    snaps.len() == 1 && index_of(&snaps[0].0) >= at_least && log <= LOG_BOUND
}

fn assert_values(cluster: &TestCluster, acked: &BTreeMap<String, u64>) {
    let (_, mut con) = leader_con(cluster);
    for (k, v) in acked {
        let got: Option<u64> = redis::cmd("GET").arg(k).query(&mut con).unwrap();
        assert_eq!(
            got,
            Some(*v),
            "{k} after the restart\n{}",
            cluster.outputs()
        );
    }
}

#[test]
fn snapshots_bound_the_raft_log_and_restarts_keep_every_acknowledged_write() {
    let mut cluster = TestCluster::start(3, SMALL).unwrap();
    let (_, mut con) = leader_con(&cluster);
    let mut acked = BTreeMap::new();
    write(&mut con, 0, 1500, 300, &mut acked);
    // Bounded all along the writes above and after them: one snapshot file per node, at
    // least as recent as most of the writes, and a log of a few segments.
    for node in &cluster.nodes {
        eventually(
            &format!("node {}: a recent snapshot and a bounded log", node.id),
            Duration::from_secs(20),
            || snapshotted_and_bounded(node, 1000),
        );
        let log: Vec<_> = node.files("raftlog-");
        assert!(log.len() <= 10, "node {}: {log:?}", node.id);
    }
    drop(con);

    // Every node killed with SIGKILL, then started again on its data.
    for node in &mut cluster.nodes {
        node.kill9().unwrap();
    }
    for node in &mut cluster.nodes {
        node.start().unwrap();
    }
    assert_values(&cluster, &acked);
    for node in &cluster.nodes {
        assert!(
            node.output().contains("loaded the raft snapshot as of"),
            "node {} did not load its snapshot:\n{}",
            node.id,
            node.output()
        );
        eventually(
            &format!("node {} holding every key itself", node.id),
            Duration::from_secs(20),
            // The 300 keys and `warmup`.
            || keys_in_own_store(node) == 301,
        );
    }

    // More writes, then a clean stop of every node and a start again.
    let (_, mut con) = leader_con(&cluster);
    write(&mut con, 1500, 500, 300, &mut acked);
    drop(con);
    for node in &mut cluster.nodes {
        node.stop().unwrap();
    }
    for node in &mut cluster.nodes {
        node.start().unwrap();
    }
    assert_values(&cluster, &acked);
    for node in &cluster.nodes {
        assert!(node.output().contains("loaded the raft snapshot as of"));
        assert!(snapshotted_and_bounded(node, 1500), "node {}", node.id);
    }
}

#[test]
fn a_follower_stopped_past_a_purge_catches_up_by_snapshot_install() {
    let mut cluster = TestCluster::start(3, SMALL).unwrap();
    let (leader, mut con) = leader_con(&cluster);
    let mut acked = BTreeMap::new();
    write(&mut con, 0, 50, 200, &mut acked);
    let f = (leader + 1) % 3;
    let follower = &cluster.nodes[f];
    eventually("the follower applying the first writes", ELECT, || {
        follower.offset().unwrap_or(0) >= 50
    });
    let before = follower.offset().unwrap() as u64;
    cluster.nodes[f].kill9().unwrap();
    write(&mut con, 50, 1000, 200, &mut acked);
    // The leader's log no longer holds the entries after the follower's last one.
    let leader_node = &cluster.nodes[leader];
    eventually(
        "the leader purging past the stopped follower",
        ELECT,
        || {
            leader_node
                .files("raftlog-")
                .first()
                .is_some_and(|(name, _)| index_of(name) > before + 1)
        },
    );
    cluster.nodes[f].start().unwrap();
    let follower = &cluster.nodes[f];
    let leader_node = &cluster.nodes[leader];
    eventually("the follower catching up", Duration::from_secs(20), || {
        let (Some(l), Some(o)) = (leader_node.offset(), follower.offset()) else {
            return false;
        };
        o >= l && keys_in_own_store(follower) == 201
    });
    assert!(
        follower
            .output()
            .contains("installed the raft snapshot as of"),
        "the follower did not catch up by a snapshot:\n{}",
        follower.output()
    );
    let snaps = follower.files("raftsnap-");
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    assert!(index_of(&snaps[0].0) > before, "{snaps:?}");
    // The cluster's values, read through the leader, are the acknowledged ones.
    for (k, v) in &acked {
        let got: Option<u64> = redis::cmd("GET").arg(k).query(&mut con).unwrap();
        assert_eq!(got, Some(*v), "{k}");
    }
}

/// Writers on every node under the small snapshot threshold, so snapshots are taken while the
/// leader has proposals in flight; the leader is killed with SIGKILL midway (a snapshot may be
/// waiting for its writes then) and restarted. Every acknowledged value is on the cluster
/// afterwards, every node holds the same keys itself, and no node stopped its raft.
#[test]
fn snapshots_under_concurrent_writes_and_a_killed_leader_lose_no_acknowledged_write() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let mut cluster = TestCluster::start(3, SMALL).unwrap();
    let (leader, _) = leader_con(&cluster);
    let urls: Vec<String> = cluster.nodes.iter().map(ClusterNode::url).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let (writers, acked) = run_writers(urls, 6, 40, Arc::clone(&stop));
    std::thread::sleep(Duration::from_secs(3));
    cluster.nodes[leader].kill9().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    cluster.nodes[leader].start().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 100, "only {} keys acknowledged", acked.len());
    let (_, mut con) = leader_con(&cluster);
    for (k, v) in &acked {
        let got: Option<u64> = redis::cmd("GET").arg(k).query(&mut con).unwrap();
        assert!(
            got.is_some_and(|g| g >= *v),
            "{k} is {got:?}, acknowledged {v}\n{}",
            cluster.outputs()
        );
    }
    let expected = keys_in_own_store(&cluster.nodes[cluster.leader(None, ELECT).unwrap()]);
    for node in &cluster.nodes {
        eventually(
            &format!("node {} holding the same keys", node.id),
            Duration::from_secs(20),
            || keys_in_own_store(node) == expected,
        );
        assert!(!node.output().contains("fatal"), "{}", node.output());
        assert!(!node.files("raftsnap-").is_empty(), "node {}", node.id);
    }
}
