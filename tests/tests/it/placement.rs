//! Where `moodb serve` runs its threads (`--event-loop-cpu`): by default a single node on two or
//! more CPUs pins its event loop (the main thread) to the last CPU it may use, leaves the
//! helper threads, the sync thread among them, free on all of them and keeps the snapshotter
//! off the loop's CPU; `off` pins nothing. Read
//! from the kernel's view of each thread (`/proc/<pid>/task/<tid>/status`).

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

use std::time::{Duration, Instant};

use moodb_tests::{query, ServerOptions, TestServer};

/// `Cpus_allowed_list` ("0-3,6") as CPU numbers.
fn cpu_list(text: &str) -> Vec<usize> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.parse::<usize>().unwrap()..=b.parse().unwrap()),
            None => cpus.push(part.parse().unwrap()),
        }
    }
    cpus
}

/// The value of `name` ("Cpus_allowed_list:") in a `/proc/.../status` text.
fn field<'a>(status: &'a str, name: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .unwrap()
        .trim()
}

/// Each thread of `pid`: its name and the CPUs it may run on.
fn threads(pid: u32) -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        // A thread that ended meanwhile (the spare-segment zeroer) is skipped.
        let Ok(status) = std::fs::read_to_string(task.unwrap().path().join("status")) else {
            continue;
        };
        let cpus = cpu_list(field(&status, "Cpus_allowed_list:"));
        out.push((field(&status, "Name:").to_string(), cpus));
    }
    out
}

/// The CPUs the main thread (the event loop) may run on.
fn event_loop_cpus(pid: u32) -> Vec<usize> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/status")).unwrap();
    cpu_list(field(&status, "Cpus_allowed_list:"))
}

fn start(placement: &str) -> TestServer {
    TestServer::start(ServerOptions {
        args: vec!["--event-loop-cpu".into(), placement.into()],
        ..ServerOptions::default()
    })
    .unwrap()
}

#[test]
fn by_default_the_event_loop_keeps_the_last_cpu_and_the_helpers_stay_free() {
    let allowed = moodb_core::cpus::allowed().unwrap();
    let s = start("auto");
    let pid = s.pid().unwrap();
    // The loop is pinned as it starts, just after the ready file is written.
    let want = if allowed.len() >= 2 {
        vec![*allowed.last().unwrap()]
    } else {
        allowed.clone()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while event_loop_cpus(pid) != want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(event_loop_cpus(pid), want, "{}", s.stderr());
    // A durable write goes through the sync thread.
    let mut con = s.connect().unwrap();
    let _: () = query(&mut con, &["SET", "k", "v"]).unwrap();
    let threads = threads(pid);
    let sync = threads.iter().find(|(name, _)| name == "moodb-sync");
    assert_eq!(
        sync.map(|(_, cpus)| cpus),
        Some(&allowed),
        "the sync thread is free: {threads:?}"
    );
    if allowed.len() >= 2 {
        // The snapshotter (an unnamed thread) runs off the loop's CPU.
        let others: Vec<usize> = allowed
            .iter()
            .copied()
            .filter(|&c| Some(&c) != allowed.last())
            .collect();
        assert!(
            threads.iter().any(|(_, cpus)| *cpus == others),
            "a thread on {others:?}: {threads:?}"
        );
        assert!(
            s.stderr().contains("event loop pinned to CPU"),
            "{}",
            s.stderr()
        );
    }
}

#[test]
fn off_pins_nothing() {
    let allowed = moodb_core::cpus::allowed().unwrap();
    let s = start("off");
    let mut con = s.connect().unwrap();
    let _: () = query(&mut con, &["SET", "k", "v"]).unwrap();
    let pid = s.pid().unwrap();
    for (name, cpus) in threads(pid) {
        assert_eq!(cpus, allowed, "{name}");
    }
    assert!(!s.stderr().contains("pinned"), "{}", s.stderr());
}

#[test]
fn a_cpu_the_server_may_not_use_is_reported_and_it_serves_unpinned() {
    let allowed = moodb_core::cpus::allowed().unwrap();
    let s = start("100000");
    let mut con = s.connect().unwrap();
    let _: () = query(&mut con, &["SET", "k", "v"]).unwrap();
    assert_eq!(event_loop_cpus(s.pid().unwrap()), allowed);
    assert!(
        s.stderr().contains("event loop not pinned to CPU 100000"),
        "{}",
        s.stderr()
    );
}
