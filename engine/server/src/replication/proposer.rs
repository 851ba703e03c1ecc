//! The proposer (cluster mode, on the leader): takes the records of each store tick, in LSN
//! order, and proposes the tick as one raft entry (`client_write_ff`), so entries reach the raft
//! log in the order the store applied them; openraft appends what arrives together as one
//! batch (one fdatasync in [`super::LogStore`]). Commits are not learned here but from the
//! state machine's apply (`ApplyCommitted`), in log order; here only a refused proposal is
//! reported ([`ProposalFailed`]). Each batch carries the leadership generation it was made
//! in; once the store owner has moved on (leadership lost), older batches are dropped unsent.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix::Addr;
use moodb_core::Record;
use openraft::Raft;
use tokio::sync::mpsc;

use super::types::{TypeConfig, Write};
use crate::actors::store_owner::cluster::ProposalFailed;
use crate::actors::StoreOwner;

/// A tick's records as the one record of one raft entry: itself when alone, else one TXN of
/// them all in order (a TXN among them contributes its operations; TXNs do not nest). One entry
/// per tick is one append and one fdatasync on each node however many clients wrote; an entry
/// per record made openraft append and sync about two records at a time (strace: 5,743
/// fdatasyncs for ~14,000 SETs at -c 50). Every node applies the tick at once, in the order
/// the leader applied it.
fn one_entry(records: Vec<Record>) -> Option<Record> {
    if records.len() <= 1 {
        return records.into_iter().next();
    }
    let mut ops = Vec::with_capacity(records.len());
    for record in records {
        match record {
            Record::Txn(inner) => ops.extend(inner),
            other => ops.push(other),
        }
    }
    Some(Record::Txn(ops))
}

/// The store owner's end of the proposer.
pub struct Proposer {
    tx: mpsc::UnboundedSender<(u64, Vec<Record>)>,
    generation: Arc<AtomicU64>,
}

impl Proposer {
    /// Starts the proposer task for `raft` (on the current runtime: the actix arbiter's).
    pub fn spawn(raft: Raft<TypeConfig>, owner: Addr<StoreOwner>) -> Proposer {
        let (tx, rx) = mpsc::unbounded_channel();
        let generation = Arc::new(AtomicU64::new(0));
        actix::spawn(run(raft, owner, rx, generation.clone()));
        Proposer { tx, generation }
    }

    /// The leadership generation proposals are made in now.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Leadership changed: what is queued from before is not proposed.
    pub fn next_generation(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Proposes `records` (in LSN order) in the current generation.
    pub fn propose(&self, records: Vec<Record>) -> bool {
        self.tx.send((self.generation(), records)).is_ok()
    }
}

async fn run(
    raft: Raft<TypeConfig>,
    owner: Addr<StoreOwner>,
    mut rx: mpsc::UnboundedReceiver<(u64, Vec<Record>)>,
    generation: Arc<AtomicU64>,
) {
    while let Some((g, records)) = rx.recv().await {
        if let Some(record) = one_entry(records) {
            if generation.load(Ordering::SeqCst) != g {
                continue;
            }
            match raft.client_write_ff(Write(record)).await {
                Ok(response) => {
                    let owner = owner.clone();
                    actix::spawn(async move {
                        let failure = match response.await {
                            Ok(Ok(_)) => None,
                            Ok(Err(e)) => Some(e.to_string()),
                            Err(e) => Some(e.to_string()),
                        };
                        if let Some(reason) = failure {
                            owner.do_send(ProposalFailed {
                                generation: g,
                                reason,
                            });
                        }
                    });
                }
                Err(fatal) => owner.do_send(ProposalFailed {
                    generation: g,
                    reason: fatal.to_string(),
                }),
            }
        }
    }
}
