//! What the benchmark clients do: the operation mix, the key space, the values, and when a
//! run stops. Generation is deterministic for a given seed, so two backends see the same
//! sequence of operations.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;

/// The kinds of workload `--workload` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WorkloadKind {
    /// Writes only (SET of random keys).
    Write,
    /// Reads only (GET of random keys, all of them present).
    Read,
    /// 50% reads, 50% writes.
    Mixed50,
    /// 95% reads, 5% writes.
    Mixed95,
    /// Fill N keys, close, reopen and time recovery (in-process only).
    Recovery,
    /// Transactions of --txn-size SETs of random keys: in-process one `Record::Txn` per
    /// transaction, over --server MULTI, SET..., EXEC (pipelined). One op = one transaction.
    Txn,
}

impl WorkloadKind {
    /// Percentage of operations that are reads.
    pub fn read_percent(self) -> u64 {
        match self {
            WorkloadKind::Write | WorkloadKind::Recovery | WorkloadKind::Txn => 0,
            WorkloadKind::Read => 100,
            WorkloadKind::Mixed50 => 50,
            WorkloadKind::Mixed95 => 95,
        }
    }

    /// Whether the key space is filled before measuring (so that reads find their keys).
    pub fn needs_prefill(self) -> bool {
        self.read_percent() > 0
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WorkloadKind::Write => "write",
            WorkloadKind::Read => "read",
            WorkloadKind::Mixed50 => "mixed50",
            WorkloadKind::Mixed95 => "mixed95",
            WorkloadKind::Recovery => "recovery",
            WorkloadKind::Txn => "txn",
        })
    }
}

/// When a run stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// This many operations in total, shared evenly among the clients.
    Ops(u64),
    /// Every client runs until this much time has passed.
    Duration(Duration),
}

impl Limit {
    /// The number of operations client `index` of `clients` does, if the limit is a count.
    pub fn ops_for_client(self, index: usize, clients: usize) -> Option<u64> {
        match self {
            Limit::Ops(total) => {
                let clients = clients.max(1) as u64;
                let index = index as u64;
                Some(total / clients + u64::from(index < total % clients))
            }
            Limit::Duration(_) => None,
        }
    }
}

/// Everything that defines a workload.
#[derive(Debug, Clone)]
pub struct Workload {
    pub kind: WorkloadKind,
    /// Keys are drawn uniformly from `0..keys`.
    pub keys: u64,
    pub value_size: usize,
    pub clients: usize,
    pub limit: Limit,
    pub seed: u64,
    /// SETs per transaction (workload `txn`).
    pub txn_size: usize,
    /// A hot set: `(percent of keys, percent of operations)`; the operations in the second
    /// share go to the first keys of that share of the key space, the rest anywhere.
    pub hot: Option<(u64, u64)>,
}

/// One operation a client executes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Get(Bytes),
    Set(Bytes, Bytes),
    /// One transaction of these SETs, applied and logged as one unit.
    Txn(Vec<(Bytes, Bytes)>),
}

/// The name of key number `n`: fixed width, so every key has the same size.
pub fn key(n: u64) -> Bytes {
    Bytes::from(format!("key:{n:012}"))
}

/// A value of `size` bytes; `salt` varies its content between clients.
pub fn value(size: usize, salt: u64) -> Bytes {
    Bytes::from(
        (0..size)
            .map(|i| b'a' + ((i as u64 + salt) % 26) as u8)
            .collect::<Vec<u8>>(),
    )
}

/// The operations of one client.
pub struct OpStream {
    rng: SplitMix64,
    keys: u64,
    read_percent: u64,
    value: Bytes,
    /// `Some(n)`: every op is a transaction of n SETs.
    txn_size: Option<usize>,
    /// Hot keys (`0..hot_keys`) and the percentage of operations that go to them.
    hot: Option<(u64, u64)>,
}

impl OpStream {
    pub fn new(workload: &Workload, client: usize) -> Self {
        let salt = client as u64;
        OpStream {
            rng: SplitMix64(
                workload
                    .seed
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .wrapping_add(salt),
            ),
            keys: workload.keys.max(1),
            read_percent: workload.kind.read_percent(),
            value: value(workload.value_size, salt),
            txn_size: (workload.kind == WorkloadKind::Txn).then_some(workload.txn_size.max(1)),
            hot: workload.hot.map(|(keys_pct, ops_pct)| {
                ((workload.keys.max(1) * keys_pct / 100).max(1), ops_pct)
            }),
        }
    }

    /// The next key: in the hot set for its share of operations, else uniform.
    fn next_key(&mut self) -> u64 {
        match self.hot {
            Some((hot_keys, ops_pct)) if self.rng.next() % 100 < ops_pct => {
                self.rng.next() % hot_keys
            }
            _ => self.rng.next() % self.keys,
        }
    }

    pub fn next_op(&mut self) -> Op {
        if let Some(n) = self.txn_size {
            let sets = (0..n)
                .map(|_| (key(self.next_key()), self.value.clone()))
                .collect();
            return Op::Txn(sets);
        }
        let key = key(self.next_key());
        if self.rng.next() % 100 < self.read_percent {
            Op::Get(key)
        } else {
            Op::Set(key, self.value.clone())
        }
    }
}

/// A small fast generator (splitmix64); statistical quality is plenty for picking keys.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(kind: WorkloadKind) -> Workload {
        Workload {
            kind,
            keys: 100,
            value_size: 10,
            clients: 3,
            limit: Limit::Ops(10),
            seed: 7,
            txn_size: 3,
            hot: None,
        }
    }

    #[test]
    fn a_hot_set_takes_its_share_of_operations() {
        let w = Workload {
            hot: Some((20, 80)),
            keys: 1000,
            ..workload(WorkloadKind::Read)
        };
        let mut ops = OpStream::new(&w, 0);
        let hot = (0..10_000)
            .filter(|_| match ops.next_op() {
                Op::Get(k) => k < key(200),
                _ => false,
            })
            .count();
        // 80% aimed at the hot fifth, plus a fifth of the other 20%.
        assert!((8_200..8_600).contains(&hot), "{hot} of 10000 on hot keys");
    }

    #[test]
    fn ops_are_shared_evenly_among_clients() {
        let limit = Limit::Ops(10);
        let per: Vec<u64> = (0..3).filter_map(|i| limit.ops_for_client(i, 3)).collect();
        assert_eq!(per, vec![4, 3, 3]);
    }

    #[test]
    fn mixes_follow_the_read_percentage() {
        for (kind, low, high) in [
            (WorkloadKind::Write, 0, 0),
            (WorkloadKind::Read, 1000, 1000),
            (WorkloadKind::Mixed50, 400, 600),
            (WorkloadKind::Mixed95, 920, 980),
        ] {
            let mut ops = OpStream::new(&workload(kind), 0);
            let reads = (0..1000)
                .filter(|_| matches!(ops.next_op(), Op::Get(_)))
                .count();
            assert!((low..=high).contains(&reads), "{kind}: {reads} reads");
        }
    }

    #[test]
    fn txn_workload_makes_transactions_of_the_given_size() {
        let mut ops = OpStream::new(&workload(WorkloadKind::Txn), 0);
        for _ in 0..10 {
            assert!(matches!(ops.next_op(), Op::Txn(sets) if sets.len() == 3));
        }
    }

    #[test]
    fn keys_and_values_have_fixed_sizes() {
        let mut ops = OpStream::new(&workload(WorkloadKind::Write), 1);
        for _ in 0..100 {
            let Op::Set(k, v) = ops.next_op() else {
                panic!("write workload produced a read")
            };
            assert_eq!(k.len(), 16);
            assert_eq!(v.len(), 10);
        }
    }
}
