//! `moodb serve --ready-file`: what the harness reads instead of parsing stderr. Its fields
//! match the server it came from and the figures of the recovery line, and a server that
//! exits before it is ready is reported with the end of its output.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

use moodb_tests::{query, HarnessError, ServerOptions, TestServer};

#[test]
fn the_ready_file_names_the_server_and_its_recovery() {
    let mut s = TestServer::start(ServerOptions {
        sync: Some("never".into()),
        ..ServerOptions::default()
    })
    .unwrap();
    let ready = s.ready().unwrap().clone();
    assert_eq!(ready.addr, s.addr);
    assert!(ready.addr.ip().is_loopback() && ready.addr.port() != 0);
    assert_eq!(Some(ready.pid), s.pid());
    assert_eq!(
        (ready.backend.as_str(), ready.sync.as_str()),
        ("paper", "never")
    );
    assert_eq!(ready.data_dir, s.data_dir);
    assert_eq!(ready.recovery.checkpoint, None);
    assert_eq!(ready.recovery.records_replayed, 0);
    assert!(
        s.stderr().contains(&ready.recovery.report),
        "{}",
        s.stderr()
    );

    let mut con = s.connect().unwrap();
    for i in 0..3 {
        let _: () = query(&mut con, &["SET", &format!("k{i}"), "v"]).unwrap();
    }
    let _: () = query(&mut con, &["SAVE"]).unwrap();
    let _: () = query(&mut con, &["SET", "after", "v"]).unwrap();
    assert!(s.stop().unwrap().unwrap().success(), "{}", s.stderr());
    s.restart().unwrap();
    let r = &s.ready().unwrap().recovery;
    assert_eq!(r.checkpoint_lsn, Some(3), "{r:?}");
    assert_eq!(r.checkpoint_keys, 3, "{r:?}");
    assert!(r.checkpoint.is_some(), "{r:?}");
    assert_eq!(r.records_replayed, 1, "{r:?}");
    assert!(r.log_bytes_replayed > 0, "{r:?}");
    assert_eq!(r.bytes_truncated, 0, "{r:?}");
    assert!(r.report.starts_with("loaded checkpoint"), "{r:?}");
    assert!(s.stderr().contains(&r.report), "{}", s.stderr());
}

#[test]
fn a_server_that_exits_before_it_is_ready_is_reported_with_its_output() {
    let err = TestServer::start(ServerOptions {
        config: Some("(adress: \"x\")".into()),
        ..ServerOptions::default()
    })
    .err()
    .unwrap();
    let HarnessError::NotReady { reason, stderr } = &err else {
        panic!("{err}");
    };
    assert!(reason.contains("exited"), "{err}");
    assert!(stderr.contains("adress"), "{err}");
}
