//! Authentication against a real `moodb serve`: `requirepass` (flag and configuration file),
//! AUTH in both forms, `-NOAUTH` for everything else, pipelines that authenticate midway, and
//! the refusal to listen on an exposed address without a password.

// Test helpers may panic on failure like the tests themselves.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use moodb_tests::raw::{request, Raw, Reply};
use moodb_tests::{moodb_binary, ServerOptions, TestServer};

fn line(s: &str) -> Reply {
    Reply::Line(s.to_string())
}

fn protected(password: &str) -> TestServer {
    TestServer::start(ServerOptions {
        args: vec!["--requirepass".into(), password.into()],
        ..ServerOptions::default()
    })
    .unwrap()
}

#[test]
fn unauthenticated_clients_get_noauth_for_everything_but_auth_and_quit() {
    let s = protected("s3cret pass");
    let mut raw = Raw::connect(s.addr).unwrap();
    for req in [
        &b"PING\r\n"[..],
        &request(&[b"GET", b"k"]),
        &request(&[b"SET", b"k", b"v"]),
        &request(&[b"CONFIG", b"GET", b"save"]),
        &request(&[b"INFO"]),
        &request(&[b"FLUSHDB"]),
    ] {
        assert_eq!(
            raw.ask(req).unwrap(),
            line("-NOAUTH Authentication required."),
            "for {req:?}"
        );
    }
    let wrong = "-WRONGPASS invalid username-password pair or user is disabled.";
    assert_eq!(
        raw.ask(&request(&[b"AUTH", b"s3cret"])).unwrap(),
        line(wrong)
    );
    assert_eq!(
        raw.ask(&request(&[b"AUTH", b"admin", b"s3cret pass"]))
            .unwrap(),
        line(wrong)
    );
    assert_eq!(
        raw.ask(&request(&[b"HELLO", b"3"])).unwrap(),
        line("-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
    );
    assert_eq!(
        raw.ask(&request(&[b"AUTH", b"s3cret pass"])).unwrap(),
        line("+OK")
    );
    assert_eq!(raw.ask(b"PING\r\n").unwrap(), line("+PONG"));
    assert_eq!(
        raw.ask(&request(&[b"SET", b"k", b"v"])).unwrap(),
        line("+OK")
    );

    // The two-argument form, and QUIT before authenticating.
    let mut raw = Raw::connect(s.addr).unwrap();
    assert_eq!(
        raw.ask(&request(&[b"AUTH", b"default", b"s3cret pass"]))
            .unwrap(),
        line("+OK")
    );
    assert_eq!(raw.ask(&request(&[b"GET", b"k"])).unwrap(), line("$1"));
    let mut raw = Raw::connect(s.addr).unwrap();
    assert_eq!(raw.ask(b"QUIT\r\n").unwrap(), line("+OK"));
    assert_eq!(raw.line().unwrap(), Reply::Closed);
}

#[test]
fn a_pipeline_is_refused_until_its_auth_and_served_after_it() {
    let s = protected("pw");
    let mut raw = Raw::connect(s.addr).unwrap();
    let mut pipeline = request(&[b"SET", b"a", b"1"]);
    pipeline.extend(request(&[b"AUTH", b"pw"]));
    pipeline.extend(request(&[b"SET", b"a", b"2"]));
    pipeline.extend(request(&[b"GET", b"a"]));
    raw.send(&pipeline).unwrap();
    assert_eq!(
        raw.line().unwrap(),
        line("-NOAUTH Authentication required.")
    );
    assert_eq!(raw.line().unwrap(), line("+OK"));
    assert_eq!(raw.line().unwrap(), line("+OK"));
    assert_eq!(raw.line().unwrap(), line("$1"));
    assert_eq!(raw.line().unwrap(), line("2"));
}

#[test]
fn clients_with_the_password_in_the_url_work_and_without_it_fail() {
    let s = TestServer::start(ServerOptions {
        config: Some(r#"(requirepass: Some("from the file"))"#.into()),
        ..ServerOptions::default()
    })
    .unwrap();
    let url = format!("redis://:from%20the%20file@{}/", s.addr);
    let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
    let _: () = redis::cmd("SET").arg("x").arg("1").query(&mut con).unwrap();
    let got: String = redis::cmd("GET").arg("x").query(&mut con).unwrap();
    assert_eq!(got, "1");

    let mut anon = s.connect().unwrap();
    let err = redis::cmd("GET")
        .arg("x")
        .query::<String>(&mut anon)
        .unwrap_err();
    assert_eq!(err.code(), Some("NOAUTH"), "{err}");
}

#[test]
fn auth_without_a_configured_password_says_so() {
    let s = TestServer::start(ServerOptions::default()).unwrap();
    let mut raw = Raw::connect(s.addr).unwrap();
    let Reply::Line(got) = raw.ask(&request(&[b"AUTH", b"x"])).unwrap() else {
        panic!("closed")
    };
    assert!(got.contains("without any password configured"), "{got}");
    assert_eq!(raw.ask(b"PING\r\n").unwrap(), line("+PONG"));
}

#[test]
fn an_exposed_address_without_a_password_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = Command::new(moodb_binary().unwrap())
        .args(["serve", "--addr", "0.0.0.0:0", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0 without a password"),
        "{stderr}"
    );
    assert!(stderr.contains("--requirepass"), "{stderr}");
    assert!(stderr.contains("--insecure"), "{stderr}");
    assert!(
        !data.exists(),
        "nothing is created by a server that does not start"
    );
}

#[test]
fn client_subcommands_authenticate_with_password() {
    let s = protected("sesame");
    let bin = moodb_binary().unwrap();
    let addr = s.addr.to_string();
    let moodb = |args: &[&str]| {
        Command::new(&bin)
            .args(args)
            .args(["--addr", &addr])
            .output()
            .unwrap()
    };
    let out = moodb(&["set", "k", "v", "--password", "sesame"]);
    assert!(out.status.success(), "{out:?}");
    let out = moodb(&["get", "k", "--password", "sesame"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "v\n");
    let out = moodb(&["get", "k", "--password", "wrong"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("authentication failed"),
        "{out:?}"
    );
    let out = moodb(&["get", "k"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("NOAUTH"),
        "{out:?}"
    );
}
