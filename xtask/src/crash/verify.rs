//! The checks after a restart: every acknowledged write is present or superseded, nothing was
//! written that was never sent, transactions are all or nothing, nothing a client read before
//! the crash has vanished, counters kept every acknowledged increment, and (with `sync =
//! always` and no damage) the whole history across the crash is linearizable.
//!
//! The model per key is the set of writes that may be the latest: a write `W` (acknowledged or
//! in doubt) may be the final value unless some acknowledged event that *started after `W`
//! returned* (a write, or a read) showed another state. An in-doubt write's deadline is the
//! kill. Under `sync = every/never` an acknowledgement inside the documented loss window counts
//! as in doubt, and a loss that needed that allowance is reported as such.

use std::collections::{BTreeMap, HashMap, HashSet};

use moodb_tests::linearizability::{self, Bytes, Completion, Op, Operation, Output};

use super::workload::{is_counter, txn_of};

/// Everything the checks need for one iteration.
pub struct Input<'a> {
    /// The load's operations (all invoked before the kill).
    pub load: &'a [Operation],
    /// The reads made after the restart (also recorded, for the linearizability check).
    pub final_reads: &'a [Operation],
    pub initial: &'a HashMap<Bytes, Option<Bytes>>,
    pub final_state: &'a HashMap<Bytes, Option<Bytes>>,
    /// Every (key, value) any client ever sent in this run.
    pub sent: &'a HashSet<(Bytes, Bytes)>,
    pub kill_at: u64,
    /// Acknowledgements at or after this moment may be lost (sync every/never).
    pub window_start: Option<u64>,
    /// Injected damage that recovery reported (truncation or refusal): losses are allowed.
    pub loss_allowed: bool,
    pub linearizability: bool,
}

/// What the checks found.
#[derive(Debug, Default, Clone)]
pub struct Findings {
    pub lost_acked: u64,
    pub lost_read: u64,
    pub phantoms: u64,
    pub partial_txns: u64,
    pub nonlinearizable: u64,
    /// Damaged logs that recovery served without reporting a truncation or refusing.
    pub unreported_damage: u64,
    /// Allowed losses: inside the sync loss window, or after reported damage.
    pub lost_in_window: u64,
    pub lost_to_damage: u64,
    pub messages: Vec<String>,
}

impl Findings {
    pub fn violations(&self) -> u64 {
        self.lost_acked
            + self.lost_read
            + self.phantoms
            + self.partial_txns
            + self.nonlinearizable
            + self.unreported_damage
    }

    pub fn add(&mut self, other: &Findings) {
        self.lost_acked += other.lost_acked;
        self.lost_read += other.lost_read;
        self.phantoms += other.phantoms;
        self.partial_txns += other.partial_txns;
        self.nonlinearizable += other.nonlinearizable;
        self.unreported_damage += other.unreported_damage;
        self.lost_in_window += other.lost_in_window;
        self.lost_to_damage += other.lost_to_damage;
    }
}

struct Write {
    state: Option<Bytes>,
    /// Latest moment it can have taken effect.
    deadline: u64,
    /// The same, ignoring the loss window (the acknowledgement time).
    strict_deadline: u64,
}

struct Witness {
    state: Option<Bytes>,
    invoked: u64,
    is_write: bool,
    /// Acknowledged inside the loss window (only a witness in strict mode).
    in_window: bool,
}

fn show(v: &Option<Bytes>) -> String {
    match v {
        None => "(absent)".into(),
        Some(b) => format!("{:?}", String::from_utf8_lossy(b).trim_end_matches('x')),
    }
}

/// Runs every check.
pub fn verify(input: &Input<'_>) -> Findings {
    let mut f = Findings::default();
    let mut by_key: BTreeMap<&[u8], Vec<&Operation>> = BTreeMap::new();
    for op in input.load {
        by_key.entry(&op.key).or_default().push(op);
    }
    for (key, final_value) in input.final_state {
        let ops = by_key.get(key.as_slice()).cloned().unwrap_or_default();
        let initial = input.initial.get(key).cloned().flatten();
        if is_counter(key) {
            check_counter(input, key, &ops, initial, final_value, &mut f);
        } else {
            check_value(input, key, &ops, initial, final_value, &mut f);
        }
    }
    check_transactions(input, &mut f);
    if input.linearizability {
        let mut history: Vec<Operation> = input.load.to_vec();
        history.extend_from_slice(input.final_reads);
        let report = linearizability::check(&history, input.initial);
        f.nonlinearizable += report.violations.len() as u64;
        for v in report.violations.iter().take(3) {
            let text = v.to_string();
            let mut lines: Vec<&str> = text.lines().take(40).collect();
            if text.lines().count() > 40 {
                lines.push("  …");
            }
            f.messages.push(lines.join("\n"));
        }
        if !report.undecided.is_empty() {
            f.messages.push(format!(
                "note: linearizability undecided (search bound) for {} keys",
                report.undecided.len()
            ));
        }
    }
    f
}

fn check_value(
    input: &Input<'_>,
    key: &[u8],
    ops: &[&Operation],
    initial: Option<Bytes>,
    final_value: &Option<Bytes>,
    f: &mut Findings,
) {
    let k = String::from_utf8_lossy(key);
    if let Some(v) = final_value {
        if !input.sent.contains(&(key.to_vec(), v.clone())) {
            f.phantoms += 1;
            f.messages.push(format!(
                "phantom: key {k} holds {} which no client ever sent to it",
                show(final_value)
            ));
            return;
        }
    }
    let window = input.window_start.unwrap_or(u64::MAX);
    let mut writes = vec![Write {
        state: initial,
        deadline: 0,
        strict_deadline: 0,
    }];
    let mut witnesses = Vec::new();
    for op in ops {
        let (state, answered) = match (&op.op, &op.completion) {
            (Op::Set(v), Completion::Returned { at, .. }) => (Some(Some(v.clone())), Some(*at)),
            (Op::Update(v), Completion::Returned { at, output }) => {
                if *output == Output::Ok {
                    (Some(Some(v.clone())), Some(*at))
                } else {
                    witnesses.push(Witness {
                        state: None,
                        invoked: op.invoked,
                        is_write: false,
                        in_window: *at >= window,
                    });
                    (None, None)
                }
            }
            (Op::Del, Completion::Returned { at, .. }) => (Some(None), Some(*at)),
            (Op::Set(v) | Op::Update(v), Completion::Pending { .. }) => {
                (Some(Some(v.clone())), None)
            }
            (Op::Del, Completion::Pending { .. }) => (Some(None), None),
            (
                Op::Get,
                Completion::Returned {
                    at,
                    output: Output::Value(v),
                },
            ) => {
                witnesses.push(Witness {
                    state: v.clone(),
                    invoked: op.invoked,
                    is_write: false,
                    in_window: *at >= window,
                });
                (None, None)
            }
            _ => (None, None),
        };
        let Some(state) = state else { continue };
        match answered {
            Some(at) => {
                witnesses.push(Witness {
                    state: state.clone(),
                    invoked: op.invoked,
                    is_write: true,
                    in_window: at >= window,
                });
                let deadline = if at >= window { input.kill_at } else { at };
                writes.push(Write {
                    state,
                    deadline,
                    strict_deadline: at,
                });
            }
            None => writes.push(Write {
                state,
                deadline: input.kill_at,
                strict_deadline: input.kill_at,
            }),
        }
    }
    // May `w` be the latest write? `strict` ignores the loss window.
    let contradiction = |w: &Write, strict: bool| -> Option<&Witness> {
        let deadline = if strict {
            w.strict_deadline
        } else {
            w.deadline
        };
        witnesses
            .iter()
            .find(|e| (strict || !e.in_window) && e.invoked > deadline && e.state != *final_value)
    };
    let candidates: Vec<&Write> = writes.iter().filter(|w| w.state == *final_value).collect();
    let allowed = candidates.iter().any(|w| contradiction(w, false).is_none());
    if allowed {
        let strict = candidates.iter().any(|w| contradiction(w, true).is_none());
        if !strict {
            f.lost_in_window += 1;
        }
        return;
    }
    if input.loss_allowed {
        f.lost_to_damage += 1;
        return;
    }
    // Explain with the latest candidate.
    let latest = candidates.iter().max_by_key(|w| w.deadline);
    let witness = latest.and_then(|w| contradiction(w, false));
    match witness {
        Some(e) if e.is_write => {
            f.lost_acked += 1;
            f.messages.push(format!(
                "acknowledged write lost: key {k} came back as {} but a write of {} invoked at {} ns was acknowledged after it",
                show(final_value), show(&e.state), e.invoked
            ));
        }
        Some(e) => {
            f.lost_read += 1;
            f.messages.push(format!(
                "value shown then lost: key {k} came back as {} but a read invoked at {} ns had already shown {}",
                show(final_value), e.invoked, show(&e.state)
            ));
        }
        None => {
            f.lost_acked += 1;
            f.messages.push(format!(
                "acknowledged write lost: key {k} came back as {} which was never a possible latest state",
                show(final_value)
            ));
        }
    }
}

fn parse_counter(v: &Option<Bytes>) -> Option<i64> {
    match v {
        None => Some(0),
        Some(b) => std::str::from_utf8(b).ok()?.parse().ok(),
    }
}

fn check_counter(
    input: &Input<'_>,
    key: &[u8],
    ops: &[&Operation],
    initial: Option<Bytes>,
    final_value: &Option<Bytes>,
    f: &mut Findings,
) {
    let k = String::from_utf8_lossy(key);
    let window = input.window_start.unwrap_or(u64::MAX);
    let init = parse_counter(&initial).unwrap_or(0);
    let Some(value) = parse_counter(final_value) else {
        f.phantoms += 1;
        f.messages.push(format!(
            "phantom: counter {k} holds {} which is not an integer",
            show(final_value)
        ));
        return;
    };
    let (mut acked, mut acked_window, mut doubt, mut seen_max, mut seen_max_window) =
        (0i64, 0i64, 0i64, init, init);
    for op in ops {
        match (&op.op, &op.completion) {
            (
                Op::Incr,
                Completion::Returned {
                    at,
                    output: Output::Int(n),
                },
            ) => {
                if *at < window {
                    acked += 1;
                    seen_max = seen_max.max(*n);
                } else {
                    acked_window += 1;
                    seen_max_window = seen_max_window.max(*n);
                }
            }
            (Op::Incr, Completion::Pending { .. }) => doubt += 1,
            (
                Op::Get,
                Completion::Returned {
                    at,
                    output: Output::Value(v),
                },
            ) => {
                let n = parse_counter(v).unwrap_or(0);
                if *at < window {
                    seen_max = seen_max.max(n);
                } else {
                    seen_max_window = seen_max_window.max(n);
                }
            }
            _ => {}
        }
    }
    let low = seen_max.max(init + acked);
    let high = init + acked + acked_window + doubt;
    if value > high {
        f.phantoms += 1;
        f.messages.push(format!(
            "phantom increments: counter {k} is {value} but at most {high} increments could have happened"
        ));
    } else if value < low {
        if input.loss_allowed {
            f.lost_to_damage += 1;
        } else {
            f.lost_acked += 1;
            f.messages.push(format!(
                "acknowledged increments lost: counter {k} came back as {value}, below {low} (initial {init}, {acked} acknowledged, max seen {seen_max})"
            ));
        }
    } else if value < low.max(seen_max_window).max(init + acked + acked_window) {
        f.lost_in_window += 1;
    }
}

/// A transaction's earliest invocation, its declared size and its (key, value) writes.
type TxnWrites = (u64, usize, Vec<(Bytes, Bytes)>);

fn check_transactions(input: &Input<'_>, f: &mut Findings) {
    // Transactions of this iteration: id -> (invoked, [(key, value)]).
    let mut txns: HashMap<String, TxnWrites> = HashMap::new();
    for op in input.load {
        if let Op::Set(v) = &op.op {
            if let Some((id, size)) = txn_of(v) {
                let e = txns.entry(id).or_insert((op.invoked, size, Vec::new()));
                e.0 = e.0.min(op.invoked);
                e.2.push((op.key.clone(), v.clone()));
            }
        }
    }
    let visible: HashSet<String> = input
        .final_state
        .values()
        .filter_map(|v| v.as_ref().and_then(|v| txn_of(v)).map(|(id, _)| id))
        .collect();
    for id in visible {
        let Some((invoked, size, writes)) = txns.get(&id) else {
            continue; // from an earlier iteration, checked then
        };
        if writes.len() != *size {
            f.messages.push(format!(
                "note: transaction {id} recorded {} writes for size {size}",
                writes.len()
            ));
        }
        for (key, value) in writes {
            let final_value = input.final_state.get(key).cloned().flatten();
            if final_value.as_ref() == Some(value) {
                continue;
            }
            if !could_follow(input, key, &final_value, *invoked) {
                f.partial_txns += 1;
                f.messages.push(format!(
                    "partial transaction {id}: visible on some keys, but key {} holds {}, written before the transaction started",
                    String::from_utf8_lossy(key),
                    show(&final_value)
                ));
                break;
            }
        }
    }
}

/// Could the write that left `value` on `key` have taken effect after a transaction invoked at
/// `txn_invoked` (so that it legitimately overwrote the transaction's write)?
fn could_follow(input: &Input<'_>, key: &[u8], value: &Option<Bytes>, txn_invoked: u64) -> bool {
    input.load.iter().any(|op| {
        if op.key != key {
            return false;
        }
        let writes = match &op.op {
            Op::Set(v) | Op::Update(v) => value.as_ref() == Some(v),
            Op::Del => value.is_none(),
            _ => false,
        };
        let deadline = match &op.completion {
            Completion::Returned { at, output } => {
                if matches!(op.op, Op::Update(_)) && *output != Output::Ok {
                    return false;
                }
                *at
            }
            Completion::Pending { .. } => input.kill_at,
        };
        writes && deadline > txn_invoked
    })
}
