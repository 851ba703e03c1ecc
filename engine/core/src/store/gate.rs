//! The durability gate: which replies may leave. A reply waits for the LSN it depends on to be
//! released (synced under `always`, appended under `every`/`never`); this module tracks what
//! each read depends on and holds the batches that wait.
//!
//! **Invariant (nothing from the future):** a write depends on its own LSN; a read depends on
//! the last unreleased write to each (database, key) it read (or on the last LSN, for
//! DBSIZE/KEYS/SCAN), and after FLUSHDB, FLUSHALL or SWAPDB in any database every read depends
//! on it until it is released (conservative, and simple). So a reader never sees a
//! value that a crash could still take back.

use std::collections::hash_map::Entry;
use std::collections::VecDeque;

use bytes::Bytes;

use crate::command::Access;
use crate::fast_map::FastMap;
use crate::record::{Lsn, Record};
use crate::resp::Frame;

/// The replies to one batch, addressed to `to`, which may leave now.
#[derive(Debug)]
pub struct Release<T> {
    pub to: T,
    pub frames: Vec<Frame>,
}

/// A batch of replies waiting for `wait_lsn` to be released.
#[derive(Debug)]
pub(crate) struct Waiting<T> {
    pub to: T,
    pub frames: Vec<Frame>,
    pub wait_lsn: Lsn,
    /// Positions of SAVE replies, which wait for the next checkpoint to finish.
    pub saves: Vec<usize>,
}

impl<T> Waiting<T> {
    pub fn release(self) -> Release<T> {
        Release {
            to: self.to,
            frames: self.frames,
        }
    }
}

/// What each reply depends on, and the batches waiting; see the module documentation.
#[derive(Debug)]
pub(crate) struct DurabilityGate<T> {
    /// Writes through this LSN may be acknowledged.
    released_lsn: Lsn,
    /// Last unreleased write to each key, one map per database (indexed by number, grown on
    /// demand: database 0's lookups cost what they did before databases), and the same in
    /// LSN order for cleaning up.
    unreleased: Vec<FastMap<Bytes, Lsn>>,
    unreleased_order: VecDeque<(Lsn, u16, Bytes)>,
    /// LSN of the last FLUSHDB / FLUSHALL / SWAPDB, which every read depends on until it is
    /// released.
    clear_lsn: Lsn,
    waiting: Vec<Waiting<T>>,
    /// Empty; keeps its capacity for the next [`DurabilityGate::release`].
    spare: Vec<Waiting<T>>,
}

/// Unreleased keys the gate keeps room for once everything is released (a larger burst's
/// capacity is given back).
const KEEP_UNRELEASED: usize = 16 * 1024;

impl<T> DurabilityGate<T> {
    /// A gate where everything through `released_lsn` is already durable.
    pub fn new(released_lsn: Lsn) -> Self {
        DurabilityGate {
            released_lsn,
            unreleased: vec![FastMap::default()],
            unreleased_order: VecDeque::new(),
            clear_lsn: 0,
            waiting: Vec::new(),
            spare: Vec::new(),
        }
    }

    pub fn released_lsn(&self) -> Lsn {
        self.released_lsn
    }

    /// The LSN a reply touching `access` in database `db` must wait for (0: none);
    /// `last_lsn` is the LSN of the last write applied.
    pub fn read_dependency(&self, db: u16, access: &Access, last_lsn: Lsn) -> Lsn {
        let clear = if self.clear_lsn > self.released_lsn {
            self.clear_lsn
        } else {
            0
        };
        match access {
            Access::All => last_lsn,
            Access::Key(_) | Access::Keys(_) => match self.unreleased.get(usize::from(db)) {
                Some(map) => access
                    .keys()
                    .iter()
                    .filter_map(|k| map.get(k).copied())
                    .fold(clear, Lsn::max),
                None => clear,
            },
        }
    }

    /// Notes that `record`, logged at `lsn`, is not yet released.
    pub fn note_write(&mut self, lsn: Lsn, record: &Record) {
        self.note_write_in(0, lsn, record);
    }

    fn note_write_in(&mut self, db: u16, lsn: Lsn, record: &Record) {
        match record {
            Record::Set { key, .. } | Record::Update { key, .. } | Record::Delete { key } => {
                let i = usize::from(db);
                if self.unreleased.len() <= i {
                    self.unreleased.resize_with(i + 1, FastMap::default);
                }
                self.unreleased[i].insert(key.clone(), lsn);
                self.unreleased_order.push_back((lsn, db, key.clone()));
            }
            Record::Clear | Record::ClearAll | Record::SwapDb { .. } => self.clear_lsn = lsn,
            Record::InDb { db, record } => self.note_write_in(*db, lsn, record),
            Record::Txn(ops) => ops.iter().for_each(|op| self.note_write_in(db, lsn, op)),
        }
    }

    /// Holds `waiting` until its LSN is released.
    pub fn hold(&mut self, waiting: Waiting<T>) {
        self.waiting.push(waiting);
    }

    /// Everything through `lsn` is released (`last_lsn`: the last applied): moves every batch
    /// that may now leave into `out`, in the order they were held.
    pub fn release(&mut self, lsn: Lsn, last_lsn: Lsn, out: &mut Vec<Release<T>>) {
        self.released_lsn = self.released_lsn.max(lsn);
        let released = self.released_lsn;
        if released >= last_lsn {
            // Everything is released (the usual case after a group commit): drop the tracking
            // wholesale instead of one hash lookup and removal per key.
            self.unreleased.iter_mut().for_each(FastMap::clear);
            self.unreleased_order.clear();
            // A burst's tracking does not pin its capacity for the life of the process.
            self.unreleased
                .iter_mut()
                .for_each(|m| m.shrink_to(KEEP_UNRELEASED));
            self.unreleased_order.shrink_to(KEEP_UNRELEASED);
        }
        while let Some((lsn, _, _)) = self.unreleased_order.front() {
            if *lsn > released {
                break;
            }
            if let Some((lsn, db, key)) = self.unreleased_order.pop_front() {
                let Some(map) = self.unreleased.get_mut(usize::from(db)) else {
                    continue;
                };
                if let Entry::Occupied(e) = map.entry(key) {
                    if *e.get() == lsn {
                        e.remove();
                    }
                }
            }
        }
        // One pass, keeping order, instead of a `Vec::remove` (a shift) per released batch.
        let mut still = std::mem::take(&mut self.spare);
        for w in self.waiting.drain(..) {
            if w.wait_lsn <= released {
                out.push(w.release());
            } else {
                still.push(w);
            }
        }
        self.spare = std::mem::replace(&mut self.waiting, still);
    }

    /// Takes every waiting batch (the storage failed: none of them may be acknowledged).
    pub fn take_all(&mut self) -> impl Iterator<Item = Waiting<T>> + '_ {
        self.waiting.drain(..)
    }
}
