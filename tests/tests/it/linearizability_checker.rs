//! Unit tests of the linearizability checker on hand-made histories, known linearizable and
//! known not.

use std::collections::HashMap;

use moodb_tests::linearizability::{check, check_bounded, Completion, Op, Operation, Output};

fn done(client: u64, key: &str, op: Op, invoked: u64, at: u64, output: Output) -> Operation {
    Operation {
        client,
        key: key.as_bytes().to_vec(),
        op,
        invoked,
        completion: Completion::Returned { at, output },
    }
}

fn pending(client: u64, key: &str, op: Op, invoked: u64, deadline: Option<u64>) -> Operation {
    Operation {
        client,
        key: key.as_bytes().to_vec(),
        op,
        invoked,
        completion: Completion::Pending { deadline },
    }
}

fn set(v: &str) -> Op {
    Op::Set(v.as_bytes().to_vec())
}

fn val(v: &str) -> Output {
    Output::Value(Some(v.as_bytes().to_vec()))
}

fn none() -> HashMap<Vec<u8>, Option<Vec<u8>>> {
    HashMap::new()
}

#[test]
fn sequential_history_is_linearizable() {
    let h = vec![
        done(1, "k", set("a"), 0, 10, Output::Ok),
        done(1, "k", Op::Get, 20, 30, val("a")),
        done(1, "k", Op::Del, 40, 50, Output::Int(1)),
        done(1, "k", Op::Get, 60, 70, Output::Value(None)),
        done(1, "k", Op::Incr, 80, 90, Output::Int(1)),
        done(1, "k", Op::Update("x".into()), 100, 110, Output::Ok),
        done(1, "k", Op::Incr, 120, 130, Output::Error),
        done(1, "k", Op::Del, 140, 150, Output::Int(1)),
        done(1, "k", Op::Update("y".into()), 160, 170, Output::Nil),
    ];
    let r = check(&h, &none());
    assert!(r.ok(), "{:?}", r.violations);
    assert_eq!(r.linearizable, 1);
}

#[test]
fn stale_read_after_completed_write_is_rejected() {
    let h = vec![
        done(1, "k", set("a"), 0, 10, Output::Ok),
        done(1, "k", set("b"), 20, 30, Output::Ok),
        done(2, "k", Op::Get, 40, 50, val("a")),
    ];
    let r = check(&h, &none());
    assert_eq!(r.violations.len(), 1);
    assert_eq!(r.violations[0].key, b"k");
    assert!(r.violations[0].to_string().contains("not linearizable"));
}

#[test]
fn concurrent_reads_may_see_either_order() {
    // Write of b overlaps both reads: one sees a, a later one sees b. Fine.
    let h = vec![
        done(1, "k", set("a"), 0, 10, Output::Ok),
        done(1, "k", set("b"), 20, 100, Output::Ok),
        done(2, "k", Op::Get, 30, 40, val("a")),
        done(3, "k", Op::Get, 50, 60, val("b")),
    ];
    assert!(check(&h, &none()).ok());
}

#[test]
fn read_going_back_in_time_is_rejected() {
    // Once a reader saw b, a later read (strictly after) cannot see a again.
    let h = vec![
        done(1, "k", set("a"), 0, 10, Output::Ok),
        done(1, "k", set("b"), 20, 100, Output::Ok),
        done(2, "k", Op::Get, 30, 40, val("b")),
        done(3, "k", Op::Get, 50, 60, val("a")),
    ];
    assert!(!check(&h, &none()).ok());
}

#[test]
fn read_of_a_value_never_written_is_rejected() {
    let h = vec![
        done(1, "k", set("a"), 0, 10, Output::Ok),
        done(2, "k", Op::Get, 20, 30, val("zzz")),
    ];
    assert!(!check(&h, &none()).ok());
}

#[test]
fn lost_increment_is_rejected_and_concurrent_ones_accepted() {
    let ok = vec![
        done(1, "n", Op::Incr, 0, 50, Output::Int(2)),
        done(2, "n", Op::Incr, 10, 40, Output::Int(1)),
        done(3, "n", Op::Get, 60, 70, val("2")),
    ];
    assert!(check(&ok, &none()).ok());
    let lost = vec![
        done(1, "n", Op::Incr, 0, 10, Output::Int(1)),
        done(2, "n", Op::Incr, 20, 30, Output::Int(1)),
    ];
    assert!(!check(&lost, &none()).ok());
}

#[test]
fn pending_write_may_or_may_not_take_effect() {
    let seen = vec![
        done(1, "k", set("a"), 0, 10, Output::Ok),
        pending(2, "k", set("b"), 20, None),
        done(3, "k", Op::Get, 30, 40, val("b")),
    ];
    assert!(check(&seen, &none()).ok());
    let not_seen = vec![
        done(1, "k", set("a"), 0, 10, Output::Ok),
        pending(2, "k", set("b"), 20, None),
        done(3, "k", Op::Get, 30, 40, val("a")),
    ];
    assert!(check(&not_seen, &none()).ok());
}

#[test]
fn crash_pending_write_cannot_appear_after_the_restart_read_missed_it() {
    // The write was pending at the crash (deadline 50). After restart a read sees a, then a
    // later read sees b: b cannot have taken effect after the crash.
    let h = vec![
        done(1, "k", set("a"), 0, 10, Output::Ok),
        pending(2, "k", set("b"), 20, Some(50)),
        done(3, "k", Op::Get, 60, 70, val("a")),
        done(3, "k", Op::Get, 80, 90, val("b")),
    ];
    assert!(!check(&h, &none()).ok());
    // Without the crash deadline (still pending, could land any time) it is fine.
    let h2 = vec![
        done(1, "k", set("a"), 0, 10, Output::Ok),
        pending(2, "k", set("b"), 20, None),
        done(3, "k", Op::Get, 60, 70, val("a")),
        done(3, "k", Op::Get, 80, 90, val("b")),
    ];
    assert!(check(&h2, &none()).ok());
}

#[test]
fn acknowledged_write_lost_across_crash_is_rejected() {
    let h = vec![
        done(1, "k", set("a"), 0, 10, Output::Ok),
        done(1, "k", set("b"), 20, 30, Output::Ok),
        pending(1, "k", set("c"), 40, Some(50)),
        done(2, "k", Op::Get, 60, 70, val("a")),
    ];
    assert!(!check(&h, &none()).ok());
}

#[test]
fn initial_state_is_honoured() {
    let mut init = HashMap::new();
    init.insert(b"k".to_vec(), Some(b"old".to_vec()));
    let h = vec![
        done(1, "k", Op::Get, 0, 10, val("old")),
        done(1, "k", Op::Update("new".into()), 20, 30, Output::Ok),
    ];
    assert!(check(&h, &init).ok());
    assert!(!check(&h, &none()).ok());
}

#[test]
fn cas_follows_the_model() {
    let h = vec![
        done(1, "k", set("a"), 0, 10, Output::Ok),
        done(
            2,
            "k",
            Op::Cas {
                expected: b"a".to_vec(),
                new: b"b".to_vec(),
            },
            20,
            30,
            Output::Int(1),
        ),
        done(
            3,
            "k",
            Op::Cas {
                expected: b"a".to_vec(),
                new: b"c".to_vec(),
            },
            40,
            50,
            Output::Int(1),
        ),
    ];
    assert!(!check(&h, &none()).ok());
}

#[test]
fn cas_of_an_absent_key_never_swaps() {
    let cas = || Op::Cas {
        expected: Vec::new(),
        new: b"x".to_vec(),
    };
    let ok = vec![done(1, "k", cas(), 0, 10, Output::Int(0))];
    assert!(check(&ok, &none()).ok());
    let bad = vec![done(1, "k", cas(), 0, 10, Output::Int(1))];
    assert!(!check(&bad, &none()).ok());
}

#[test]
fn a_transaction_is_one_step() {
    // MULTI GET INCR EXEC: the read and the increment are adjacent in every linearization.
    let txn = || Op::Txn(vec![Op::Get, Op::Incr]);
    let answer = |v: &str, n: i64| Output::Txn(vec![val(v), Output::Int(n)]);
    let h = vec![
        done(1, "k", set("1"), 0, 10, Output::Ok),
        done(2, "k", txn(), 20, 50, answer("1", 2)),
        done(3, "k", txn(), 25, 55, answer("2", 3)),
    ];
    assert!(check(&h, &none()).ok());
    // Two overlapping transactions that both read 1: the second increment would have read 2.
    let h = vec![
        done(1, "k", set("1"), 0, 10, Output::Ok),
        done(2, "k", txn(), 20, 50, answer("1", 2)),
        done(3, "k", txn(), 25, 55, answer("1", 3)),
    ];
    assert!(!check(&h, &none()).ok());
}

#[test]
fn keys_are_checked_independently() {
    let h = vec![
        done(1, "x", set("a"), 0, 10, Output::Ok),
        done(1, "y", set("a"), 0, 10, Output::Ok),
        done(2, "x", Op::Get, 20, 30, val("a")),
        done(2, "y", Op::Get, 20, 30, Output::Value(None)),
    ];
    let r = check(&h, &none());
    assert_eq!(r.linearizable, 1);
    assert_eq!(r.violations.len(), 1);
    assert_eq!(r.violations[0].key, b"y");
}

#[test]
fn many_concurrent_clients_stay_tractable() {
    // 8 clients each doing 40 overlapping SET/GET rounds on one key, generated from a real
    // sequential execution with overlapping intervals: linearizable by construction.
    let mut h = Vec::new();
    let mut t = 0u64;
    let mut current: Option<Vec<u8>> = None;
    for round in 0..40u64 {
        for c in 0..8u64 {
            // Each op takes effect at t + 5; intervals overlap with neighbours.
            let (op, out) = if (round + c) % 3 == 0 {
                (Op::Get, Output::Value(current.clone()))
            } else {
                let v = format!("{c}-{round}").into_bytes();
                current = Some(v.clone());
                (Op::Set(v), Output::Ok)
            };
            h.push(done(c, "k", op, t, t + 25, out));
            t += 10;
        }
    }
    let r = check_bounded(&h, &none(), 500_000);
    assert!(
        r.ok(),
        "{:?}",
        r.violations.first().map(ToString::to_string)
    );
    assert_eq!(r.linearizable, 1, "undecided: {:?}", r.undecided.len());
}
