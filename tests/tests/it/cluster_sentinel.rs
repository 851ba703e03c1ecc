//! What Sentinel-aware clients and WAIT see. A single node answers WAIT and SENTINEL as a
//! redis-server 7.0 with no replicas that is no sentinel does (compared live, byte for
//! byte, RESP2 and RESP3); a three-process cluster answers `SENTINEL get-master-addr-by-name`
//! with the leader's client address on every node, `WAIT 2 1000` with 2 after a write (on
//! the leader and through a follower), and redis-py 8's `Sentinel` class pointed at the three
//! nodes finds the master, writes, reads, and after kill -9 of the leader finds the new one.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use moodb_tests::cluster::TestCluster;
use moodb_tests::{ServerOptions, TestServer};

use crate::commands_redis::{compare, Check::Exact as E};

#[test]
fn wait_and_sentinel_on_a_single_node_answer_as_redis_7_without_replicas() {
    compare(&[
        (E, &["WAIT", "0", "0"]),
        (E, &["WAIT", "-1", "0"]),
        (E, &["WAIT", "1", "100"]),
        (E, &["SET", "k", "v"]),
        (E, &["WAIT", "1", "50"]),
        (E, &["WAIT", "0", "1000"]),
        (E, &["WAIT"]),
        (E, &["WAIT", "1"]),
        (E, &["WAIT", "a", "1"]),
        (E, &["WAIT", "1", "a"]),
        (E, &["WAIT", "1", "1.5"]),
        (E, &["WAIT", "1", "-1"]),
        (E, &["MULTI"]),
        (E, &["WAIT", "1", "0"]),
        (E, &["EXEC"]),
        (E, &["COMMAND", "INFO", "wait"]),
        (E, &["SENTINEL", "get-master-addr-by-name", "mymaster"]),
        (E, &["SENTINEL"]),
        (E, &["sentinel", "masters"]),
    ]);
}

#[test]
fn wait_on_a_single_node_blocks_for_its_timeout_without_blocking_others() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    let mut waiter = server.connect().unwrap();
    let mut other = server.connect().unwrap();
    let started = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let n: i64 = redis::cmd("WAIT")
            .arg(1)
            .arg(1500)
            .query(&mut waiter)
            .unwrap();
        tx.send(started.elapsed()).unwrap();
        n
    });
    // Meanwhile the store serves everyone else.
    std::thread::sleep(Duration::from_millis(50));
    let t = Instant::now();
    let _: () = redis::cmd("SET")
        .arg("a")
        .arg("1")
        .query(&mut other)
        .unwrap();
    // Well inside the WAIT's 1.5 s, with room for a busy machine.
    assert!(
        t.elapsed() < Duration::from_millis(1000),
        "a WAIT blocked the store"
    );
    assert_eq!(handle.join().unwrap(), 0);
    let took = rx.recv().unwrap();
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(6),
        "WAIT 1 1500 took {took:?}"
    );
}

/// SENTINEL get-master-addr-by-name mymaster on `node`, as "host:port".
fn master_addr(con: &mut redis::Connection) -> Option<String> {
    let v: Option<(String, String)> = redis::cmd("SENTINEL")
        .arg("get-master-addr-by-name")
        .arg("mymaster")
        .query(con)
        .ok()?;
    v.map(|(h, p)| format!("{h}:{p}"))
}

#[test]
fn a_cluster_names_its_leader_to_sentinel_clients_and_waits_for_its_replicas() {
    let mut cluster = TestCluster::start(3, &[]).unwrap();
    let leader = cluster
        .leader(None, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no leader\n{}", cluster.outputs()));
    let leader_addr = cluster.nodes[leader].addr.to_string();
    // Every node names the leader (each refreshes what it knows as raft tells it).
    for node in &cluster.nodes {
        let mut con = node.connect().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while master_addr(&mut con).as_deref() != Some(leader_addr.as_str()) {
            assert!(
                Instant::now() < deadline,
                "node {} names {:?}",
                node.id,
                master_addr(&mut con)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let unknown: redis::Value = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg("other")
            .query(&mut con)
            .unwrap();
        assert_eq!(unknown, redis::Value::Nil);
        let replicas: Vec<redis::Value> = redis::cmd("SENTINEL")
            .arg("replicas")
            .arg("mymaster")
            .query(&mut con)
            .unwrap();
        assert_eq!(replicas.len(), 2);
    }
    // WAIT on the leader and through a follower (forwarded with the session's writes).
    let follower = (0..3).find(|i| *i != leader).unwrap();
    for at in [leader, follower] {
        let mut con = cluster.nodes[at].connect().unwrap();
        let _: () = redis::cmd("SET").arg("w").arg(at).query(&mut con).unwrap();
        let n: i64 = redis::cmd("WAIT").arg(2).arg(1000).query(&mut con).unwrap();
        assert_eq!(n, 2, "WAIT 2 1000 after a write on node {}", at + 1);
        let t = Instant::now();
        let n: i64 = redis::cmd("WAIT").arg(3).arg(200).query(&mut con).unwrap();
        assert_eq!(n, 2, "only two replicas exist");
        assert!(t.elapsed() >= Duration::from_millis(200));
    }
    // Kill the leader: the survivors name the new one.
    cluster.nodes[leader].kill9().unwrap();
    let next = cluster
        .leader(Some(leader), Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no new leader\n{}", cluster.outputs()));
    let next_addr = cluster.nodes[next].addr.to_string();
    for (i, node) in cluster.nodes.iter().enumerate() {
        if i == leader {
            continue;
        }
        let mut con = node.connect().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while master_addr(&mut con).as_deref() != Some(next_addr.as_str()) {
            assert!(
                Instant::now() < deadline,
                "node {} still names {:?}",
                node.id,
                master_addr(&mut con)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Whether redis-py 8 can run here (a missing one skips, except under CI).
fn redis_py() -> bool {
    let probe = Command::new("python3")
        .args([
            "-c",
            "import redis, sys; sys.exit(0 if int(redis.__version__.split('.')[0]) >= 8 else 3)",
        ])
        .output();
    let ok = probe.is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "redis-py 8 is missing; .ci/run should have installed it"
        );
        eprintln!("skipping: redis-py 8 is not installed");
    }
    ok
}

#[test]
fn redis_py_sentinel_finds_the_leader_and_follows_a_failover() {
    if !redis_py() {
        return;
    }
    let mut cluster = TestCluster::start(3, &[]).unwrap();
    cluster
        .leader(None, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no leader\n{}", cluster.outputs()));
    let ports: Vec<String> = cluster
        .nodes
        .iter()
        .map(|n| n.addr.port().to_string())
        .collect();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/python/sentinel_client.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(ports.join(","))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let first = line.trim().strip_prefix("master ").map(str::to_string);
    let Some(first) = first else {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!(
            "no master line: {line:?}\nstderr:\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            cluster.outputs()
        );
    };
    let victim = cluster
        .nodes
        .iter()
        .position(|n| n.addr.to_string() == first)
        .unwrap_or_else(|| panic!("redis-py found {first}, not a node"));
    assert_eq!(cluster.leader(None, Duration::from_secs(1)), Some(victim));
    cluster.nodes[victim].kill9().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "killed").unwrap();
    let mut rest = String::new();
    let started = Instant::now();
    for _ in 0..2 {
        let mut l = String::new();
        if stdout.read_line(&mut l).unwrap() == 0 {
            break;
        }
        rest.push_str(&l);
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && rest.trim_end().ends_with("ok"),
        "redis-py Sentinel after {:?}: {}\n{rest}\nstderr:\n{}\n{}",
        started.elapsed(),
        out.status,
        String::from_utf8_lossy(&out.stderr),
        cluster.outputs()
    );
    let second = rest
        .lines()
        .next()
        .unwrap()
        .trim()
        .strip_prefix("master ")
        .unwrap();
    assert_ne!(second, first);
    let next = cluster
        .leader(Some(victim), Duration::from_secs(5))
        .unwrap();
    assert_eq!(cluster.nodes[next].addr.to_string(), second);
}
