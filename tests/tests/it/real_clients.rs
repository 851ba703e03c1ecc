//! Real client libraries against a real `moodb serve`, with their default options: redis-py 8
//! (tests/clients/python) and node-redis 6 (tests/clients/node), which open every connection
//! with `HELLO 3` and speak RESP3, and ioredis 6 (tests/clients/node), which speaks RESP2.
//! Each script does ping, set, get, incr, mget, del, a pipeline, a transaction and an aborted
//! WATCH (ioredis also PTTL, GETDEL, INCRBYFLOAT and RENAME; redis-py also Pub/Sub with
//! keyspace notifications, in RESP3 push frames), and prints `ok`.
//!
//! A library that is not installed skips its test with a message, except under CI (`CI` set),
//! where .ci/run installs them all and a missing one is a failure.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;

use moodb_tests::{ServerOptions, TestServer};

/// tests/clients/
fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients")
}

/// Says why a client test cannot run: skipped locally, a failure under CI.
fn unavailable(what: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{what}; .ci/run should have installed it");
    }
    eprintln!("skipping: {what}");
}

/// Runs `program args... PORT [PASSWORD]` against a fresh server, with and without a
/// password, and expects `ok`.
fn run_against_moodb(program: &str, args: &[PathBuf]) {
    for password in [None, Some("s3cret")] {
        let mut options = ServerOptions::default();
        if let Some(pw) = password {
            options.args = vec!["--requirepass".into(), pw.into()];
        }
        let server = TestServer::start(options).unwrap();
        let mut cmd = Command::new(program);
        cmd.args(args).arg(server.addr.port().to_string());
        if let Some(pw) = password {
            cmd.arg(pw);
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.trim_end() == "ok",
            "{program} {args:?} (password: {}) failed with {}:\nstdout:\n{stdout}\nstderr:\n{}\nserver stderr:\n{}",
            password.is_some(),
            out.status,
            String::from_utf8_lossy(&out.stderr),
            server.stderr()
        );
    }
}

#[test]
fn redis_py_8_speaks_resp3_with_moodb() {
    let probe = Command::new("python3")
        .args([
            "-c",
            "import redis, sys; sys.exit(0 if int(redis.__version__.split('.')[0]) >= 8 else 3)",
        ])
        .output();
    match probe {
        Err(err) => return unavailable(&format!("python3 does not run ({err})")),
        Ok(out) if !out.status.success() => {
            return unavailable(&format!(
                "redis-py 8 is not installed (python3 -m pip install 'redis>=8.1,<9'): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
        Ok(_) => {}
    }
    run_against_moodb(
        "python3",
        &[clients_dir().join("python").join("redis_py_client.py")],
    );
}

#[test]
fn node_redis_6_speaks_resp3_with_moodb() {
    let node_dir = clients_dir().join("node");
    if Command::new("node").arg("--version").output().is_err() {
        return unavailable("node is not installed");
    }
    if !node_dir.join("node_modules").join("redis").is_dir() {
        return unavailable(&format!(
            "node-redis is not installed (npm ci --prefix {})",
            node_dir.display()
        ));
    }
    run_against_moodb("node", &[node_dir.join("node_redis_client.mjs")]);
}

#[test]
fn ioredis_6_works_with_moodb() {
    let node_dir = clients_dir().join("node");
    if Command::new("node").arg("--version").output().is_err() {
        return unavailable("node is not installed");
    }
    if !node_dir.join("node_modules").join("ioredis").is_dir() {
        return unavailable(&format!(
            "ioredis is not installed (npm ci --prefix {})",
            node_dir.display()
        ));
    }
    run_against_moodb("node", &[node_dir.join("ioredis_client.mjs")]);
}
