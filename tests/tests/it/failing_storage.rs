//! A disk that fails under a real `moodb serve`, through the failpoints of the paper backend
//! (`MOODB_FAILPOINTS`): the failing write and every later one get `-ERR` naming the cause,
//! no client sees a value that was not durable, reads of what was durable go on, and after a
//! restart without the failpoint every acknowledged write is there. A disk that fills up
//! during a checkpoint leaves the server writable and the previous checkpoint and log whole.

// Test helpers may panic on failure like the tests themselves.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use moodb_tests::{ServerOptions, TestServer};
use redis::{Connection, RedisResult};

fn start(dir: &Path, failpoints: Option<&str>) -> TestServer {
    let env = failpoints
        .map(|f| vec![("MOODB_FAILPOINTS".to_string(), f.to_string())])
        .unwrap_or_default();
    TestServer::start_in(
        dir,
        ServerOptions {
            env,
            // Checkpoints only when asked, so the failpoints count only what the test does.
            args: [
                "--checkpoint-log-bytes",
                "0",
                "--checkpoint-interval-ms",
                "0",
            ]
            .map(String::from)
            .to_vec(),
            ..ServerOptions::default()
        },
    )
    .unwrap()
}

fn set(con: &mut Connection, key: &str, value: &str) -> RedisResult<()> {
    redis::cmd("SET").arg(key).arg(value).query(con)
}

fn get(con: &mut Connection, key: &str) -> RedisResult<Option<String>> {
    redis::cmd("GET").arg(key).query(con)
}

/// Writes until the storage fails; returns what was acknowledged and the first error.
fn write_until_failure(con: &mut Connection, acked: &mut BTreeMap<String, String>) -> String {
    for i in 0..1000 {
        let (key, value) = (format!("k{i}"), format!("value {i}"));
        match set(con, &key, &value) {
            Ok(()) => {
                acked.insert(key, value);
            }
            Err(err) => return err.to_string(),
        }
    }
    panic!("the failpoint never fired in 1000 writes");
}

/// The whole scenario for one failing log operation.
fn failed_log_operation(failpoint: &str, names: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut acked = BTreeMap::new();
    // A durable value that the refused overwrite below must leave as it was.
    let mut s = start(&data, Some(failpoint));
    let mut con = s.connect().unwrap();
    set(&mut con, "victim", "durable").unwrap();
    acked.insert("victim".to_string(), "durable".to_string());
    let first = write_until_failure(&mut con, &mut acked);
    for name in names {
        assert!(first.contains(name), "{first:?} does not name {name:?}");
    }
    assert!(
        first.contains("restart"),
        "{first:?} does not say what to do"
    );

    // Every later write is refused with the cause, by a new client too.
    let mut other = s.connect().unwrap();
    for c in [&mut con, &mut other] {
        let err = set(c, "victim", "lost").unwrap_err().to_string();
        assert!(err.contains("storage refuses writes"), "{err}");
        assert!(err.contains(names[0]), "{err}");
        let err = redis::cmd("DEL")
            .arg("k0")
            .query::<i64>(c)
            .unwrap_err()
            .to_string();
        assert!(err.contains("storage refuses writes"), "{err}");
    }
    // Reads of what was acknowledged go on.
    for (k, v) in &acked {
        assert_eq!(get(&mut other, k).unwrap().as_ref(), Some(v), "key {k}");
    }
    let info: String = redis::cmd("INFO").query(&mut other).unwrap();
    assert!(
        info.contains(names[0]),
        "INFO shows the storage error:\n{info}"
    );
    assert!(s.is_running());

    // kill -9 (the log is as the failure left it) and start without the failpoint.
    s.kill9().unwrap();
    let s = start(&data, None);
    let mut con = s.connect().unwrap();
    for (k, v) in &acked {
        assert_eq!(
            get(&mut con, k).unwrap().as_ref(),
            Some(v),
            "key {k} after restart"
        );
    }
    set(&mut con, "after", "restart").unwrap();
    assert_eq!(get(&mut con, "after").unwrap().as_deref(), Some("restart"));
}

#[test]
fn a_failed_fsync_refuses_writes_keeps_reads_and_loses_nothing_acknowledged() {
    failed_log_operation("wal::fsync=eio@25", &["fdatasync", "EIO"]);
}

#[test]
fn a_failed_log_write_refuses_writes_keeps_reads_and_loses_nothing_acknowledged() {
    failed_log_operation("wal::write=enospc@25", &["write", "ENOSPC"]);
}

#[test]
fn a_value_whose_write_failed_is_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The first append's fsync fails: the SET of "k" is never durable.
    let s = start(&data, Some("wal::fsync=eio"));
    let mut con = s.connect().unwrap();
    assert!(set(&mut con, "k", "never durable").is_err());
    let err = get(&mut con, "k").unwrap_err().to_string();
    assert!(err.contains("storage refuses writes"), "{err}");
    let err = redis::cmd("DBSIZE")
        .query::<i64>(&mut con)
        .unwrap_err()
        .to_string();
    assert!(err.contains("storage refuses writes"), "{err}");
    // A key never written is answered: nothing lost can show there.
    assert_eq!(get(&mut con, "other").unwrap(), None);
}

#[test]
fn a_disk_full_during_a_checkpoint_keeps_the_server_writable_and_the_old_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut expected = BTreeMap::new();
    let mut write = |con: &mut Connection, range: std::ops::Range<u32>| {
        for i in range {
            let (k, v) = (format!("k{i}"), format!("v{i}"));
            set(con, &k, &v).unwrap();
            expected.insert(k, v);
        }
    };

    // A good checkpoint, then more log.
    let mut s = start(&data, None);
    let mut con = s.connect().unwrap();
    write(&mut con, 0..50);
    let ok: String = redis::cmd("SAVE").query(&mut con).unwrap();
    assert_eq!(ok, "OK");
    write(&mut con, 50..100);
    s.kill9().unwrap();
    let checkpoints = |data: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(data)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("checkpoint-"))
            .collect();
        names.sort();
        names
    };
    let good = checkpoints(&data);
    assert_eq!(good.len(), 1, "{good:?}");

    // Now the disk is full for checkpoints.
    let mut s = start(&data, Some("checkpoint::write=enospc"));
    let mut con = s.connect().unwrap();
    write(&mut con, 100..120);
    let err = redis::cmd("SAVE")
        .query::<String>(&mut con)
        .unwrap_err()
        .to_string();
    assert!(err.contains("checkpoint failed"), "{err}");
    assert!(err.contains("ENOSPC"), "{err}");
    // Still writable and readable.
    write(&mut con, 120..150);
    assert_eq!(get(&mut con, "k3").unwrap().as_deref(), Some("v3"));
    assert_eq!(checkpoints(&data), good, "no partial checkpoint is left");
    s.kill9().unwrap();

    let s = start(&data, None);
    let mut con = s.connect().unwrap();
    for (k, v) in &expected {
        assert_eq!(get(&mut con, k).unwrap().as_ref(), Some(v), "key {k}");
    }
    let n: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(n, expected.len() as i64);
}
