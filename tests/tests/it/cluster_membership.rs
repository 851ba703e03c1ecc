//! Cluster membership end to end on real `moodb serve` processes: a fourth node started with
//! `--join` forms nothing and waits; `RAFT ADD-NODE` sent to a follower (forwarded to the
//! leader) makes it a learner, catches it up from a snapshot (the log it would need is
//! purged), then a voter; it holds every key in its own store with lag 0 and serves writes.
//! `moodb cluster remove-node` takes a member out; `RAFT STATUS` and `moodb cluster status`
//! show the membership before and after. A single node answers RAFT with a clear error.
//! Every wait is bounded.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use moodb_tests::cluster::{eventually, until_served, ELECT};
use moodb_tests::{moodb_binary, ClusterNode, ServerOptions, TestCluster, TestServer};
use redis::Value;

const SMALL: &[&str] = &[
    "--snapshot-logs",
    "100",
    "--snapshot-keep-logs",
    "20",
    "--raft-segment-bytes",
    "4096",
];

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

/// `RAFT STATUS` as key → value (RESP2: a flat array of pairs), nodes by id.
#[derive(Debug)]
struct Status {
    top: BTreeMap<String, Value>,
    nodes: BTreeMap<i64, BTreeMap<String, Value>>,
}

fn pairs(v: &Value) -> BTreeMap<String, Value> {
    let Value::Array(items) = v else {
        panic!("not a map: {v:?}");
    };
    items
        .chunks(2)
        .map(|c| {
            let Value::BulkString(k) = &c[0] else {
                panic!("key {:?}", c[0]);
            };
            (String::from_utf8_lossy(k).into_owned(), c[1].clone())
        })
        .collect()
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(n) => *n,
        other => panic!("not an integer: {other:?}"),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("not a string: {other:?}"),
    }
}

fn status(node: &ClusterNode) -> Status {
    let mut con = node.connect().unwrap();
    let v = until_served(&mut con, &["RAFT", "STATUS"]);
    let top = pairs(&v);
    let Value::Array(list) = &top["nodes"] else {
        panic!("nodes: {:?}", top["nodes"]);
    };
    let nodes = list
        .iter()
        .map(|n| {
            let n = pairs(n);
            (int(&n["id"]), n)
        })
        .collect();
    Status { top, nodes }
}

fn moodb_cluster(args: &[&str]) -> String {
    let out = std::process::Command::new(moodb_binary().unwrap())
        .arg("cluster")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "moodb cluster {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_joining_node_catches_up_from_a_snapshot_becomes_a_voter_and_a_node_is_removed() {
    let mut cluster = TestCluster::start(3, SMALL).unwrap();
    let leader = cluster
        .leader(None, ELECT)
        .unwrap_or_else(|| panic!("no leader:\n{}", cluster.outputs()));
    let leader_id = cluster.nodes[leader].id as i64;
    let mut con = cluster.nodes[leader].connect().unwrap();
    until_served(&mut con, &["SET", "warmup", "1"]);
    for i in 0..600u64 {
        let () = redis::cmd("SET")
            .arg(format!("k{}", i % 100))
            .arg(i)
            .query(&mut con)
            .unwrap();
    }
    let follower = (leader + 1) % 3;
    let before = status(&cluster.nodes[follower]);
    assert_eq!(int(&before.top["leader"]), leader_id, "{before:?}");
    assert_eq!(before.nodes.len(), 3, "{before:?}");
    assert!(before.nodes.values().all(|n| text(&n["role"]) == "voter"));
    assert!(int(&before.top["purged_index"]) > 0, "{before:?}");

    let new = cluster.add_joining(SMALL).unwrap();
    let (new_id, new_raft, new_client) = {
        let n = &cluster.nodes[new];
        (n.id, n.raft_addr.to_string(), n.addr.to_string())
    };
    eventually("the new node waiting to be added", ELECT, || {
        cluster.nodes[new]
            .output()
            .contains("joining: waiting to be added")
    });
    assert_eq!(keys_in_own_store(&cluster.nodes[new]), 0);
    // Through a follower, which forwards it to the leader.
    let mut fcon = cluster.nodes[follower].connect().unwrap();
    fcon.set_read_timeout(Some(Duration::from_secs(70)))
        .unwrap();
    let ok: String = redis::cmd("RAFT")
        .arg("ADD-NODE")
        .arg(new_id)
        .arg(&new_raft)
        .arg(&new_client)
        .query(&mut fcon)
        .unwrap();
    assert_eq!(ok, "OK");
    let node = &cluster.nodes[new];
    eventually("the new node holding every key, lag 0", ELECT, || {
        let s = status(&cluster.nodes[leader]);
        keys_in_own_store(node) == 101
            && s.nodes
                .get(&(new_id as i64))
                .is_some_and(|n| int(&n["lag"]) == 0 && text(&n["role"]) == "voter")
    });
    assert!(
        node.output().contains("installed the raft snapshot as of"),
        "{}",
        node.output()
    );
    let after = status(&cluster.nodes[new]);
    assert_eq!(after.nodes.len(), 4, "{after:?}");
    assert_eq!(
        text(&after.nodes[&(new_id as i64)]["client_addr"]),
        new_client
    );
    // It serves: a write through it is forwarded, committed, and in its own store.
    let mut ncon = node.connect().unwrap();
    let () = redis::cmd("SET")
        .arg("via-new")
        .arg("x")
        .query(&mut ncon)
        .unwrap();
    eventually("the write through the new node in its store", ELECT, || {
        keys_in_own_store(node) == 102
    });
    let printed = moodb_cluster(&["status", "--addr", &new_client]);
    assert!(
        printed.starts_with(&format!("leader {leader_id}  term ")),
        "{printed}"
    );
    assert_eq!(printed.matches(" voter ").count(), 4, "{printed}");

    // Remove a follower that is not the one asked.
    let gone = cluster.nodes[(leader + 2) % 3].id;
    let said = moodb_cluster(&["remove-node", "--addr", &new_client, &gone.to_string()]);
    assert_eq!(said.trim(), "OK");
    let s = status(&cluster.nodes[leader]);
    assert_eq!(s.nodes.len(), 3, "{s:?}");
    assert!(!s.nodes.contains_key(&(gone as i64)), "{s:?}");
    let printed = moodb_cluster(&["status", "--addr", &new_client]);
    assert_eq!(printed.matches(" voter ").count(), 3, "{printed}");
    // ROLE on the leader lists the two other members only.
    let Value::Array(role) = redis::cmd("ROLE").query::<Value>(&mut con).unwrap() else {
        panic!("ROLE");
    };
    let Value::Array(replicas) = &role[2] else {
        panic!("ROLE replicas {role:?}");
    };
    assert_eq!(replicas.len(), 2, "{role:?}");
    // The three left still commit.
    let () = redis::cmd("SET")
        .arg("after-remove")
        .arg("y")
        .query(&mut con)
        .unwrap();
    let got: String = redis::cmd("GET")
        .arg("after-remove")
        .query(&mut ncon)
        .unwrap();
    assert_eq!(got, "y");
}

#[test]
fn a_single_node_answers_raft_with_a_clear_error() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    let mut con = server.connect().unwrap();
    let err = redis::cmd("RAFT")
        .arg("STATUS")
        .query::<Value>(&mut con)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("RAFT is answered only by a node in cluster mode"),
        "{err}"
    );
    let err = redis::cmd("RAFT")
        .arg("NOPE")
        .query::<Value>(&mut con)
        .unwrap_err();
    assert!(
        err.to_string().contains("unknown subcommand 'NOPE'"),
        "{err}"
    );
}

/// Redis Cluster's CLUSTER probes (`CLUSTER SLOTS`, `CLUSTER INFO`, ...) get the bytes a
/// redis-server without cluster support answers, in RESP2 and RESP3, on a single node and on
/// a node in cluster mode alike; so do READONLY and READWRITE with an argument, and on a
/// single node without one (a cluster node answers those `+OK`: cluster.rs). Skipped (with
/// a message) without redis-server.
#[test]
fn cluster_probes_answer_as_a_redis_server_without_cluster_support() {
    use crate::resp3::Wire;
    let Some(redis) = moodb_tests::redis_server::RedisServer::start() else {
        return;
    };
    let single = TestServer::start(ServerOptions::default()).unwrap();
    let cluster = TestCluster::start(3, &[]).unwrap();
    let leader = cluster
        .leader(None, ELECT)
        .unwrap_or_else(|| panic!("no leader:\n{}", cluster.outputs()));
    let follower = cluster.nodes[(leader + 1) % 3].addr;
    let cases: &[&[&str]] = &[
        &["CLUSTER", "SLOTS"],
        &["CLUSTER", "INFO"],
        &["cluster", "info"],
        &["CLUSTER", "NODES"],
        &["CLUSTER", "SHARDS"],
        &["CLUSTER", "MYID"],
        &["CLUSTER", "RESET"],
        &["CLUSTER", "INFO", "x"],
        &["CLUSTER", "FOO"],
        &["CLUSTER"],
        &["READONLY", "x"],
        &["READWRITE", "x"],
    ];
    for proto in ["2", "3"] {
        let mut theirs = Wire::connect(redis.addr());
        theirs.ask(&["HELLO", proto]);
        for addr in [single.addr, follower] {
            let mut ours = Wire::connect(addr);
            ours.ask(&["HELLO", proto]);
            for case in cases {
                let (t, _) = theirs.ask(case);
                // A follower forwards to a leader that may still be taking office.
                let deadline = Instant::now() + ELECT;
                let o = loop {
                    let (o, _) = ours.ask(case);
                    if !o.starts_with(b"-TRYAGAIN") || Instant::now() > deadline {
                        break o;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                };
                assert_eq!(
                    String::from_utf8_lossy(&o),
                    String::from_utf8_lossy(&t),
                    "RESP{proto} {case:?} on {addr}"
                );
            }
        }
        let mut ours = Wire::connect(single.addr);
        ours.ask(&["HELLO", proto]);
        for case in [&["READONLY"], &["READWRITE"], &["readonly"]] {
            let (t, _) = theirs.ask(case);
            let (o, _) = ours.ask(case);
            assert_eq!(
                String::from_utf8_lossy(&o),
                String::from_utf8_lossy(&t),
                "RESP{proto} {case:?} on a single node"
            );
        }
    }
}
