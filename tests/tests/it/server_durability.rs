//! Durability of a real `moodb serve` (paper backend, sync always): a restart, clean or after
//! `kill -9`, keeps every acknowledged write; a checkpoint taken during a write load shows in
//! the data, in INFO and in the log size; a corrupt log stops start-up with a clear error.

// Test helpers may panic on failure like the tests themselves.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use moodb_tests::{ServerOptions, TestServer};
use redis::cmd;

fn info_field(con: &mut redis::Connection, name: &str) -> u64 {
    let info: String = cmd("INFO").arg("persistence").query(con).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in INFO:\n{info}"))
        .trim()
        .parse()
        .unwrap_or(0)
}

/// Writers that record each acknowledged SET, until told to stop or the server dies.
fn run_writers(
    url: String,
    clients: usize,
    per_client: usize,
) -> Arc<Mutex<HashMap<String, String>>> {
    let acked = Arc::new(Mutex::new(HashMap::new()));
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let url = url.clone();
            let acked = Arc::clone(&acked);
            std::thread::spawn(move || {
                let Ok(mut con) = redis::Client::open(url).and_then(|c| c.get_connection()) else {
                    return;
                };
                for i in 0..per_client {
                    let (k, v) = (format!("w{c}:{}", i % 40), format!("{i}"));
                    match cmd("SET").arg(&k).arg(&v).query::<()>(&mut con) {
                        Ok(()) => {
                            acked.lock().unwrap().insert(k, v);
                        }
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    acked
}

/// Every key holds its last acknowledged value or a later one: each writer writes increasing
/// numbers, and a write in flight at a crash may or may not have reached the log.
fn assert_all_present(s: &TestServer, acked: &HashMap<String, String>) {
    let mut con = s.connect().unwrap();
    for (k, v) in acked {
        let got: Option<String> = cmd("GET").arg(k).query(&mut con).unwrap();
        let got = got.unwrap_or_else(|| panic!("acknowledged {k}={v} lost"));
        let (got, want): (u64, u64) = (got.parse().unwrap(), v.parse().unwrap());
        assert!(
            got >= want,
            "acknowledged {k}={v} lost: found the older {got}"
        );
    }
}

#[test]
fn clean_restart_keeps_every_write() {
    let mut s = TestServer::start(ServerOptions::default()).unwrap();
    let acked = run_writers(s.url(), 4, 200);
    let mut con = s.connect().unwrap();
    let _: () = cmd("SET")
        .arg("ttl")
        .arg("x")
        .arg("EX")
        .arg(1000)
        .query(&mut con)
        .unwrap();
    let status = s.stop().unwrap().unwrap();
    assert!(status.success(), "{status}: {}", s.stderr());
    assert!(s.stderr().contains("stopped cleanly"), "{}", s.stderr());
    s.restart().unwrap();
    assert!(s.stderr().contains("moodb: recovery: "), "{}", s.stderr());
    assert_all_present(&s, &acked.lock().unwrap());
    let mut con = s.connect().unwrap();
    assert_eq!(
        cmd("GET").arg("ttl").query::<String>(&mut con).unwrap(),
        "x"
    );
}

#[test]
fn kill_9_during_writes_loses_no_acknowledged_write() {
    let mut s = TestServer::start(ServerOptions {
        args: vec!["--checkpoint-log-bytes".into(), "20000".into()],
        ..Default::default()
    })
    .unwrap();
    let url = s.url();
    let writers = std::thread::spawn(move || run_writers(url, 8, 100_000));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    s.kill9().unwrap();
    let acked = writers.join().unwrap();
    let acked = acked.lock().unwrap();
    assert!(!acked.is_empty());
    s.restart().unwrap();
    assert_all_present(&s, &acked);
}

#[test]
fn checkpoint_during_write_load_compacts_the_log() {
    let mut s = TestServer::start(ServerOptions {
        args: vec!["--checkpoint-log-bytes".into(), "30000".into()],
        ..Default::default()
    })
    .unwrap();
    let acked = run_writers(s.url(), 4, 1000);
    let mut con = s.connect().unwrap();
    assert!(info_field(&mut con, "rdb_saves") >= 1);
    let ckpt_lsn = info_field(&mut con, "moodb_last_checkpoint_lsn");
    let last_lsn = info_field(&mut con, "moodb_last_lsn");
    assert!(ckpt_lsn > 0 && ckpt_lsn <= last_lsn);
    // 4000 writes of ~30 bytes each would be >120 kB of log without compaction.
    let log_bytes = info_field(&mut con, "moodb_log_bytes");
    assert!(log_bytes < 100_000, "log not compacted: {log_bytes} bytes");
    let files: Vec<String> = std::fs::read_dir(&s.data_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files.iter().any(|f| f.starts_with("checkpoint")),
        "{files:?}"
    );
    s.kill9().unwrap();
    s.restart().unwrap();
    assert!(s.stderr().contains("loaded checkpoint"), "{}", s.stderr());
    assert_all_present(&s, &acked.lock().unwrap());
}

#[test]
fn corrupt_log_stops_start_up_with_file_and_offset() {
    let mut s = TestServer::start(ServerOptions {
        args: vec!["--checkpoint-log-bytes".into(), "0".into()],
        ..Default::default()
    })
    .unwrap();
    let mut con = s.connect().unwrap();
    for i in 0..20 {
        let _: () = cmd("SET")
            .arg(format!("k{i}"))
            .arg("v".repeat(50))
            .query(&mut con)
            .unwrap();
    }
    s.stop().unwrap();
    let log = std::fs::read_dir(&s.data_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("log"))
        .expect("a log file");
    let mut bytes = std::fs::read(&log).unwrap();
    // Damage a record in the middle: valid records follow it.
    let at = bytes
        .windows(3)
        .position(|w| w == b"k10")
        .expect("record k10");
    bytes[at + 4] ^= 0xff;
    std::fs::write(&log, bytes).unwrap();
    let err = match TestServer::start_in(&s.data_dir, ServerOptions::default()) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("started on a corrupt log"),
    };
    assert!(err.contains("exit status: 1"), "{err}");
    assert!(err.contains("corrupt at byte offset"), "{err}");
    assert!(
        err.contains(&log.file_name().unwrap().to_string_lossy().into_owned()),
        "{err}"
    );
}

#[test]
fn every_sync_mode_and_backend_serves_and_survives_a_clean_restart() {
    for (backend, sync) in [
        ("paper", "every:20"),
        ("paper", "never"),
        ("sled", "always"),
    ] {
        let mut s = TestServer::start(ServerOptions {
            sync: Some(sync.into()),
            backend: Some(backend.into()),
            ..Default::default()
        })
        .unwrap();
        let stderr = s.stderr();
        assert!(
            stderr.contains(&format!("(backend {backend}, sync {sync}, data ")),
            "{stderr}"
        );
        let acked = run_writers(s.url(), 2, 50);
        assert!(s.stop().unwrap().unwrap().success(), "{}", s.stderr());
        s.restart().unwrap();
        assert_all_present(&s, &acked.lock().unwrap());
    }
}

/// With every fdatasync slowed by the `wal::fsync_slow` failpoint, no write's reply leaves
/// before its sync has ended: one at a time, and a pipelined batch whose last request reads
/// the key its own writes made (the read waits for them too).
#[test]
fn replies_are_held_until_a_slowed_sync_ends() {
    use moodb_core::failpoint::FSYNC_SLOW_DELAY;
    use std::time::Instant;
    let s = TestServer::start(ServerOptions {
        env: vec![("MOODB_FAILPOINTS".into(), "wal::fsync_slow=on".into())],
        ..ServerOptions::default()
    })
    .unwrap();
    let mut con = s.connect().unwrap();
    for i in 0..5 {
        let start = Instant::now();
        let _: () = cmd("SET").arg("k").arg(i).query(&mut con).unwrap();
        let took = start.elapsed();
        assert!(took >= FSYNC_SLOW_DELAY, "SET answered after {took:?}");
    }
    let mut pipe = redis::pipe();
    for i in 0..16 {
        pipe.cmd("SET").arg(format!("p{i}")).arg(i).ignore();
    }
    pipe.cmd("GET").arg("p15");
    let start = Instant::now();
    let (value,): (String,) = pipe.query(&mut con).unwrap();
    let took = start.elapsed();
    assert_eq!(value, "15");
    assert!(
        took >= FSYNC_SLOW_DELAY,
        "the batch answered after {took:?}"
    );
    assert!(info_field(&mut con, "moodb_fsync_count") >= 6);
}
