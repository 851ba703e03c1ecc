//! `moodb bench` end to end: its help text (a golden file), a tiny in-process run per
//! workload kind, the recovery benchmark, and a run over RESP against a real redis-server.

use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn moodb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_moodb"))
        .args(args)
        .output()
        .expect("run moodb")
}

fn stdout_of(args: &[&str]) -> String {
    let out = moodb(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "moodb {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The data rows of the Markdown table in `stdout` (header and rule excluded).
fn table_rows(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .filter(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

#[test]
fn help_text() {
    insta::assert_snapshot!(stdout_of(&["bench", "--help"]));
}

#[test]
fn a_tiny_in_process_run_prints_a_table_for_every_workload() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    for (workload, sync) in [
        ("write", "always"),
        ("read", "never"),
        ("mixed50", "every:5"),
        ("mixed95", "always"),
    ] {
        let stdout = stdout_of(&[
            "bench",
            "--backend",
            "sled",
            "--workload",
            workload,
            "--sync",
            sync,
            "--ops",
            "200",
            "--clients",
            "2",
            "--keys",
            "50",
            "--data-dir",
            data_dir,
        ]);
        let rows = table_rows(&stdout);
        assert_eq!(rows.len(), 1, "{stdout}");
        let row = &rows[0];
        assert_eq!(row[..5], ["sled", workload, sync, "2", "200"], "{stdout}");
        let fsyncs: u64 = row[10].parse().unwrap();
        match (workload, sync) {
            ("read", _) => assert_eq!(fsyncs, 0, "{stdout}"),
            (_, "always") => assert!(fsyncs > 0, "{stdout}"),
            _ => {}
        }
    }
    // Every temporary data directory was removed.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn the_recovery_benchmark_recovers_every_key() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = stdout_of(&[
        "bench",
        "--backend",
        "sled",
        "--workload",
        "recovery",
        "--keys",
        "3000",
        "--sync",
        "never",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    let rows = table_rows(&stdout);
    assert_eq!(rows.len(), 1, "{stdout}");
    assert_eq!(rows[0][..3], ["sled", "3000", "100"], "{stdout}");
    assert!(stdout.contains("sled: loaded checkpoint"), "{stdout}");
}

#[test]
fn unknown_backends_and_recovery_over_resp_are_refused() {
    let out = moodb(&["bench", "--backend", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown backend \"nope\""));
    let out = moodb(&["bench", "--workload", "recovery", "--server", "127.0.0.1:1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("in-process only"));
}

/// A redis-server on a free port of 127.0.0.1, killed on drop.
struct Redis(Child);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_tiny_run_over_resp_against_redis_server() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server must be installed (apt-get install redis-server)");
    let _redis = Redis(child);
    let addr = format!("127.0.0.1:{port}");
    let started = Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "redis-server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let stdout = stdout_of(&[
        "bench",
        "--server",
        &addr,
        "--workload",
        "mixed50",
        "--ops",
        "300",
        "--clients",
        "3",
        "--keys",
        "100",
    ]);
    let rows = table_rows(&stdout);
    assert_eq!(rows.len(), 1, "{stdout}");
    assert_eq!(rows[0][0], format!("server {addr}"), "{stdout}");
    assert_eq!(rows[0][4], "300", "{stdout}");
}
