//! Real clients against a real server: `redis-cli` and `redis-benchmark` (skipped, with a
//! message, when not installed), and the `moodb` client subcommands.

// Test helpers may panic on failure like the tests themselves.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output, Stdio};

use moodb_tests::{have_program, moodb_binary, ServerOptions, TestServer};

fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn redis_cli_works_unchanged() {
    if !have_program("redis-cli") {
        eprintln!("redis-cli not installed: skipped");
        return;
    }
    let s = TestServer::start(ServerOptions::default()).unwrap();
    let port = s.addr.port().to_string();
    let cli = |args: &[&str]| {
        let mut all = vec!["-h", "127.0.0.1", "-p", port.as_str()];
        all.extend_from_slice(args);
        text(&run("redis-cli", &all, None))
    };
    assert_eq!(cli(&["set", "greeting", "hello world"]), "OK\n");
    assert_eq!(cli(&["get", "greeting"]), "hello world\n");
    assert_eq!(cli(&["update", "nobody", "x"]), "\n");
    assert_eq!(cli(&["dbsize"]), "1\n");
    assert!(cli(&["info", "server"]).contains("moodb_version"));
    // Commands from stdin, the way scripts use it.
    let out = run(
        "redis-cli",
        &["-h", "127.0.0.1", "-p", &port],
        Some("incr n\nincr n\nget n\n"),
    );
    assert_eq!(text(&out), "1\n2\n2\n");
}

#[test]
fn redis_benchmark_runs_against_it() {
    if !have_program("redis-benchmark") {
        eprintln!("redis-benchmark not installed: skipped");
        return;
    }
    let s = TestServer::start(ServerOptions::default()).unwrap();
    let port = s.addr.port().to_string();
    let out = run(
        "redis-benchmark",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            "set,get",
            "-n",
            "10000",
            "-q",
        ],
        None,
    );
    let stdout = text(&out);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("SET: ") && stdout.contains("GET: "),
        "{stdout}"
    );
    let mut con = s.connect().unwrap();
    let size: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert!(size >= 1, "redis-benchmark's SETs are stored");
}

#[test]
fn moodb_client_subcommands() {
    let s = TestServer::start(ServerOptions::default()).unwrap();
    let bin = moodb_binary().unwrap();
    let bin = bin.to_str().unwrap();
    let addr = s.addr.to_string();
    let moodb = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--addr", &addr]);
        run(bin, &all, None)
    };
    let out = moodb(&["update", "k", "v"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&moodb(&["set", "k", "v 1"])), "OK\n");
    assert_eq!(text(&moodb(&["get", "k"])), "v 1\n");
    assert_eq!(text(&moodb(&["update", "k", "v2"])), "OK\n");
    assert_eq!(text(&moodb(&["get", "k"])), "v2\n");
    assert_eq!(text(&moodb(&["delete", "k"])), "1\n");
    assert_eq!(moodb(&["get", "k"]).status.code(), Some(1));
    let out = run(
        bin,
        &["cli", "--addr", &addr],
        Some("set a \"x y\"\nget a\nmget a b\nfrob\n"),
    );
    assert_eq!(
        text(&out),
        "OK\n\"x y\"\n1) \"x y\"\n2) (nil)\n(error) ERR unknown command 'frob', with args beginning with: \n"
    );
    for sub in ["serve", "get", "set", "update", "delete", "cli"] {
        let out = run(bin, &[sub, "--help"], None);
        assert!(
            out.status.success() && text(&out).contains("Usage"),
            "{sub} --help"
        );
    }
}
