//! A linearizability checker for key-value histories recorded from real concurrent clients.
//!
//! A [`Recorder`] collects operations as clients run them: the time each was invoked, the time
//! its answer came back and what the answer was. An operation with no answer is *pending*: it
//! may or may not have taken effect. [`Recorder::crash`] marks the moment the server was killed:
//! every operation pending then took effect before that moment or never (so it cannot be placed
//! after operations invoked after the restart).
//!
//! [`check`] verifies the history against a sequential model of one string key
//! (get/set/del/incr/update/cas, and MULTI/EXEC transactions of those on that one key). Linearizability is compositional (Herlihy & Wing's locality,
//! Porcupine's "P-compositionality"), so each key is checked on its own, which keeps the search
//! small. The search is the Wing & Gong / Lowe / Porcupine one: repeatedly pick an operation
//! that no remaining operation precedes in real time, apply it to the model if its answer
//! matches, and memoize visited (linearized-set bitset, model state) pairs so that each
//! configuration is explored once. A pending operation may be applied (with any answer) or
//! dropped.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

pub mod client;

/// The bytes of a key or a value.
pub type Bytes = Vec<u8>;

/// An operation on one key, as a client invoked it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Op {
    /// GET: answers the value or nil.
    Get,
    /// SET key value: answers OK.
    Set(Bytes),
    /// DEL key: answers the number of keys removed (0 or 1).
    Del,
    /// INCR key: answers the new value, or an error when the value is not an integer.
    Incr,
    /// UPDATE key value (MooDB's set-if-exists, redis' SET XX): answers OK, or nil when the key
    /// is absent (and then changes nothing).
    Update(Bytes),
    /// Compare-and-set (MooDB's `CAS key expected new`): if the key holds `expected`, set it to
    /// `new`; answers 1 if it did, 0 otherwise (also when the key is absent).
    Cas { expected: Bytes, new: Bytes },
    /// MULTI, these operations on the same key, EXEC: applied as one step, answered by
    /// [`Output::Txn`] with one answer per operation. (Transactions over several keys are not
    /// expressible: per-key checking needs each operation to touch one key.)
    Txn(Vec<Op>),
}

/// The answer to an operation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Output {
    /// A bulk string or nil (GET).
    Value(Option<Bytes>),
    /// `+OK`.
    Ok,
    /// A nil reply to a write (UPDATE of an absent key).
    Nil,
    /// An integer reply (DEL, INCR, CAS).
    Int(i64),
    /// An error reply (INCR of a value that is not an integer).
    Error,
    /// The answers of a transaction's operations, in order.
    Txn(Vec<Output>),
}

/// What became of an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// The answer arrived at `at` (nanoseconds since the recorder started).
    Returned { at: u64, output: Output },
    /// No answer: the operation may or may not have taken effect. With a `deadline` (the crash),
    /// it took effect before the deadline or never.
    Pending { deadline: Option<u64> },
}

/// One operation of a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Which client ran it (a client runs one operation at a time).
    pub client: u64,
    pub key: Bytes,
    pub op: Op,
    /// When it was sent, in nanoseconds since the recorder started.
    pub invoked: u64,
    pub completion: Completion,
}

impl Operation {
    /// The latest moment the operation can have taken effect.
    fn deadline(&self) -> u64 {
        match self.completion {
            Completion::Returned { at, .. } => at,
            Completion::Pending { deadline } => deadline.unwrap_or(u64::MAX),
        }
    }
}

/// Identifies an operation inside a [`Recorder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OpId(usize);

/// Collects the operations of several concurrent clients; cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct Recorder {
    start: Instant,
    ops: Arc<Mutex<Vec<Operation>>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// A recorder whose clock starts now.
    pub fn new() -> Self {
        Recorder {
            start: Instant::now(),
            ops: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Nanoseconds since the recorder started.
    pub fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Operation>> {
        self.ops.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that `client` is about to send `op` on `key`; call just before sending.
    pub fn invoke(&self, client: u64, key: &[u8], op: Op) -> OpId {
        let invoked = self.now();
        let mut ops = self.lock();
        ops.push(Operation {
            client,
            key: key.to_vec(),
            op,
            invoked,
            completion: Completion::Pending { deadline: None },
        });
        OpId(ops.len() - 1)
    }

    /// Records the answer to `id`; call just after it was read.
    pub fn complete(&self, id: OpId, output: Output) {
        let at = self.now();
        if let Some(op) = self.lock().get_mut(id.0) {
            op.completion = Completion::Returned { at, output };
        }
    }

    /// Records an operation that completed at once at the current time (e.g. the known state of
    /// a key at the start).
    pub fn record(&self, client: u64, key: &[u8], op: Op, output: Output) {
        let id = self.invoke(client, key, op);
        self.complete(id, output);
    }

    /// Marks a crash now: every operation still pending took effect before now or never.
    pub fn crash(&self) {
        let now = self.now();
        for op in self.lock().iter_mut() {
            if let Completion::Pending { deadline: None } = op.completion {
                op.completion = Completion::Pending {
                    deadline: Some(now),
                };
            }
        }
    }

    /// A copy of the history recorded so far.
    pub fn history(&self) -> Vec<Operation> {
        self.lock().clone()
    }
}

/// Why a key's history is not linearizable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub key: Bytes,
    /// How many operations (of `ops`) the longest linearization found could place.
    pub placed: usize,
    /// The operations of this key, in invocation order.
    pub ops: Vec<Operation>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "key {:?}: not linearizable ({} operations, at most {} could be ordered); history:",
            String::from_utf8_lossy(&self.key),
            self.ops.len(),
            self.placed
        )?;
        for op in &self.ops {
            writeln!(f, "  {}", DisplayOp(op))?;
        }
        Ok(())
    }
}

struct DisplayOp<'a>(&'a Operation);

impl fmt::Display for DisplayOp<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = self.0;
        let s = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
        let what = match &op.op {
            Op::Get => "get".to_string(),
            Op::Set(v) => format!("set {}", s(v)),
            Op::Del => "del".to_string(),
            Op::Incr => "incr".to_string(),
            Op::Update(v) => format!("update {}", s(v)),
            Op::Cas { expected, new } => format!("cas {} -> {}", s(expected), s(new)),
            Op::Txn(ops) => format!("multi {ops:?} exec"),
        };
        match &op.completion {
            Completion::Returned { at, output } => write!(
                f,
                "client {} [{} .. {}] {what} => {output:?}",
                op.client, op.invoked, at
            ),
            Completion::Pending { deadline } => write!(
                f,
                "client {} [{} .. {:?}] {what} => (no answer)",
                op.client, op.invoked, deadline
            ),
        }
    }
}

/// The result of checking a whole history.
#[derive(Debug, Default)]
pub struct Report {
    /// Keys whose history was checked and found linearizable.
    pub linearizable: usize,
    /// Keys whose history is not linearizable.
    pub violations: Vec<Violation>,
    /// Keys whose search gave up after `max_states` configurations (neither proved nor refuted).
    pub undecided: Vec<Bytes>,
}

impl Report {
    /// True when no key was found non-linearizable.
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }

    /// Panics, naming the first violation or the undecided keys, unless all `keys` keys were
    /// proved linearizable (for tests).
    pub fn assert_all_linearizable(&self, keys: usize) {
        if let Some(first) = self.violations.first() {
            panic!("not linearizable: {first}");
        }
        assert_eq!(
            self.linearizable, keys,
            "undecided keys: {:?}",
            self.undecided
        );
    }
}

/// The default bound on configurations explored per key.
pub const DEFAULT_MAX_STATES: usize = 2_000_000;

/// Checks `history` key by key. `initial` gives the state of keys known before the history
/// starts (absent keys start as nil).
pub fn check(history: &[Operation], initial: &HashMap<Bytes, Option<Bytes>>) -> Report {
    check_bounded(history, initial, DEFAULT_MAX_STATES)
}

/// As [`check`], exploring at most `max_states` configurations per key.
pub fn check_bounded(
    history: &[Operation],
    initial: &HashMap<Bytes, Option<Bytes>>,
    max_states: usize,
) -> Report {
    let mut by_key: BTreeMap<&[u8], Vec<&Operation>> = BTreeMap::new();
    for op in history {
        by_key.entry(&op.key).or_default().push(op);
    }
    let mut report = Report::default();
    for (key, ops) in by_key {
        let init = initial.get(key).cloned().flatten();
        match check_key(&ops, init, max_states) {
            KeyResult::Linearizable => report.linearizable += 1,
            KeyResult::Undecided => report.undecided.push(key.to_vec()),
            KeyResult::Violation { placed } => {
                let mut ops: Vec<Operation> = ops.into_iter().cloned().collect();
                ops.sort_by_key(|o| o.invoked);
                report.violations.push(Violation {
                    key: key.to_vec(),
                    placed,
                    ops,
                });
            }
        }
    }
    report
}

enum KeyResult {
    Linearizable,
    Violation { placed: usize },
    Undecided,
}

/// Applies `op` to the model state; returns the new state and the answer it gives.
fn step(state: &Option<Bytes>, op: &Op) -> (Option<Bytes>, Output) {
    match op {
        Op::Get => (state.clone(), Output::Value(state.clone())),
        Op::Set(v) => (Some(v.clone()), Output::Ok),
        Op::Del => (None, Output::Int(i64::from(state.is_some()))),
        Op::Incr => {
            let current = match state {
                None => Some(0i64),
                Some(v) => std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok()),
            };
            match current.and_then(|n| n.checked_add(1)) {
                Some(n) => (Some(n.to_string().into_bytes()), Output::Int(n)),
                None => (state.clone(), Output::Error),
            }
        }
        Op::Update(v) => match state {
            Some(_) => (Some(v.clone()), Output::Ok),
            None => (None, Output::Nil),
        },
        Op::Cas { expected, new } => {
            if state.as_ref() == Some(expected) {
                (Some(new.clone()), Output::Int(1))
            } else {
                (state.clone(), Output::Int(0))
            }
        }
        Op::Txn(ops) => {
            let mut state = state.clone();
            let mut outputs = Vec::with_capacity(ops.len());
            for op in ops {
                let (next, output) = step(&state, op);
                state = next;
                outputs.push(output);
            }
            (state, Output::Txn(outputs))
        }
    }
}

fn check_key(ops: &[&Operation], initial: Option<Bytes>, max_states: usize) -> KeyResult {
    let mut ops: Vec<&Operation> = ops.to_vec();
    ops.sort_by_key(|o| o.invoked);
    let n = ops.len();
    let words = n.div_ceil(64);
    let full: Vec<u64> = (0..words)
        .map(|w| {
            let bits = (n - w * 64).min(64);
            if bits == 64 {
                u64::MAX
            } else {
                (1u64 << bits) - 1
            }
        })
        .collect();

    let is_set = |set: &[u64], i: usize| set[i / 64] & (1 << (i % 64)) != 0;
    let mut seen: HashSet<(Vec<u64>, Option<Bytes>)> = HashSet::new();
    let start = (vec![0u64; words], initial);
    seen.insert(start.clone());
    let mut stack = vec![start];
    let mut placed_max = 0usize;
    while let Some((set, state)) = stack.pop() {
        if set == full {
            return KeyResult::Linearizable;
        }
        let placed: usize = set.iter().map(|w| w.count_ones() as usize).sum();
        placed_max = placed_max.max(placed);
        // Real-time order: an op can go next only if no remaining op returned before it was
        // invoked.
        let min_deadline = (0..n)
            .filter(|&i| !is_set(&set, i))
            .map(|i| ops[i].deadline())
            .min()
            .unwrap_or(u64::MAX);
        for i in 0..n {
            if is_set(&set, i) {
                continue;
            }
            let op = ops[i];
            if op.invoked > min_deadline {
                // Ops are sorted by invocation: no later one can go next either.
                break;
            }
            let mut next_set = set.clone();
            next_set[i / 64] |= 1 << (i % 64);
            let (next_state, output) = step(&state, &op.op);
            let mut successors = Vec::with_capacity(2);
            match &op.completion {
                Completion::Returned {
                    output: seen_output,
                    ..
                } => {
                    if *seen_output == output {
                        successors.push(next_state);
                    }
                }
                Completion::Pending { .. } => {
                    // It took effect (answer unknown) or it never did.
                    successors.push(next_state);
                    successors.push(state.clone());
                }
            }
            for s in successors {
                let config = (next_set.clone(), s);
                if !seen.contains(&config) {
                    if seen.len() >= max_states {
                        return KeyResult::Undecided;
                    }
                    seen.insert(config.clone());
                    stack.push(config);
                }
            }
        }
    }
    KeyResult::Violation { placed: placed_max }
}
