//! Databases (SELECT 0 to `databases - 1`) in a real `moodb serve`: keys written in databases
//! 0, 3 and 15 come back each in its own database after `kill -9` (log replay) and after a
//! checkpoint and another `kill -9`; SWAPDB and FLUSHDB survive a restart; a `redis` crate
//! client opening `redis://host:port/3` works in database 3; `databases` bounds SELECT.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

use moodb_tests::{ServerOptions, TestServer};
use redis::cmd;

fn select(con: &mut redis::Connection, db: u16) {
    let _: () = cmd("SELECT").arg(db).query(con).unwrap();
}

fn get(con: &mut redis::Connection, key: &str) -> Option<String> {
    cmd("GET").arg(key).query(con).unwrap()
}

fn dbsize(con: &mut redis::Connection) -> u64 {
    cmd("DBSIZE").query(con).unwrap()
}

/// Each database holds its own `k` and one key only it has.
fn assert_each_in_its_db(s: &TestServer) {
    let mut con = s.connect().unwrap();
    for db in [0u16, 3, 15] {
        select(&mut con, db);
        assert_eq!(
            get(&mut con, "k").as_deref(),
            Some(&*format!("in{db}")),
            "db {db}"
        );
        assert_eq!(
            get(&mut con, &format!("only{db}")).as_deref(),
            Some("x"),
            "db {db}"
        );
        assert_eq!(dbsize(&mut con), 2, "db {db}");
    }
    select(&mut con, 1);
    assert_eq!(dbsize(&mut con), 0);
    let info: String = cmd("INFO").arg("keyspace").query(&mut con).unwrap();
    for db in [0, 3, 15] {
        assert!(info.contains(&format!("db{db}:keys=2,")), "{info}");
    }
}

#[test]
fn keys_in_databases_0_3_and_15_survive_kill_9_and_a_checkpoint() {
    let mut s = TestServer::start(ServerOptions::default()).unwrap();
    let mut con = s.connect().unwrap();
    for db in [0u16, 3, 15] {
        select(&mut con, db);
        let _: () = cmd("SET")
            .arg("k")
            .arg(format!("in{db}"))
            .query(&mut con)
            .unwrap();
        let _: () = cmd("SET")
            .arg(format!("only{db}"))
            .arg("x")
            .query(&mut con)
            .unwrap();
    }
    drop(con);
    s.kill9().unwrap();
    s.restart().unwrap();
    assert_each_in_its_db(&s);

    // Through a checkpoint (the version 2 format) and the log after it.
    let mut con = s.connect().unwrap();
    let _: () = cmd("SAVE").query(&mut con).unwrap();
    select(&mut con, 7);
    let _: () = cmd("SET").arg("after").arg("save").query(&mut con).unwrap();
    drop(con);
    s.kill9().unwrap();
    s.restart().unwrap();
    assert_each_in_its_db(&s);
    let mut con = s.connect().unwrap();
    select(&mut con, 7);
    assert_eq!(get(&mut con, "after").as_deref(), Some("save"));
}

#[test]
fn swapdb_move_and_flushdb_survive_kill_9() {
    let mut s = TestServer::start(ServerOptions::default()).unwrap();
    let mut con = s.connect().unwrap();
    let _: () = cmd("SET").arg("a").arg("0").query(&mut con).unwrap();
    let _: () = cmd("SET").arg("m").arg("moved").query(&mut con).unwrap();
    let moved: i64 = cmd("MOVE").arg("m").arg(2).query(&mut con).unwrap();
    assert_eq!(moved, 1);
    select(&mut con, 1);
    let _: () = cmd("SET").arg("a").arg("1").query(&mut con).unwrap();
    let _: () = cmd("SWAPDB").arg(0).arg(1).query(&mut con).unwrap();
    select(&mut con, 2);
    let _: () = cmd("SET").arg("gone").arg("x").query(&mut con).unwrap();
    select(&mut con, 4);
    let _: () = cmd("SET").arg("gone").arg("x").query(&mut con).unwrap();
    let _: () = cmd("FLUSHDB").query(&mut con).unwrap();
    drop(con);
    s.kill9().unwrap();
    s.restart().unwrap();
    let mut con = s.connect().unwrap();
    assert_eq!(get(&mut con, "a").as_deref(), Some("1"));
    select(&mut con, 1);
    assert_eq!(get(&mut con, "a").as_deref(), Some("0"));
    select(&mut con, 2);
    assert_eq!(get(&mut con, "m").as_deref(), Some("moved"));
    assert_eq!(get(&mut con, "gone").as_deref(), Some("x"));
    select(&mut con, 4);
    assert_eq!(dbsize(&mut con), 0);
}

#[test]
fn a_redis_url_with_a_database_number_selects_it() {
    let s = TestServer::start(ServerOptions::default()).unwrap();
    let url = format!("redis://{}/3", s.addr);
    let mut in3 = redis::Client::open(url).unwrap().get_connection().unwrap();
    let _: () = cmd("SET").arg("k").arg("three").query(&mut in3).unwrap();
    assert_eq!(get(&mut in3, "k").as_deref(), Some("three"));
    let mut in0 = s.connect().unwrap();
    assert_eq!(get(&mut in0, "k"), None);
    select(&mut in0, 3);
    assert_eq!(get(&mut in0, "k").as_deref(), Some("three"));
}

#[test]
fn the_databases_setting_bounds_select_and_is_checked_against_the_data() {
    let mut s = TestServer::start(ServerOptions {
        args: vec!["--databases".into(), "4".into()],
        ..ServerOptions::default()
    })
    .unwrap();
    let mut con = s.connect().unwrap();
    select(&mut con, 3);
    let err = cmd("SELECT").arg(4).query::<()>(&mut con).unwrap_err();
    assert!(
        err.to_string().contains("DB index is out of range"),
        "{err}"
    );
    let got: Vec<String> = cmd("CONFIG")
        .arg("GET")
        .arg("databases")
        .query(&mut con)
        .unwrap();
    assert_eq!(got, ["databases", "4"]);
    let _: () = cmd("SET").arg("k").arg("v").query(&mut con).unwrap();
    drop(con);
    s.stop().unwrap();

    // The same data directory with fewer databases than it uses: refused, with a reason.
    let data_dir = s.data_dir.clone();
    let refused = TestServer::start_in(
        &data_dir,
        ServerOptions {
            args: vec!["--databases".into(), "2".into()],
            ..ServerOptions::default()
        },
    );
    let Err(err) = refused else {
        panic!("a server with 2 databases started on data in database 3");
    };
    assert!(err.to_string().contains("database 3"), "{err}");
}
