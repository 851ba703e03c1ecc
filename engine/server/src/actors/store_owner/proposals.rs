//! [`Proposals`]: the leader's raft entries in flight and the ticks held for a free slot.
//!
//! openraft 0.9 appends each proposal on its own, and its core waits for that append's
//! fdatasync before it reads the next message (`RaftCore::append_to_log`): proposing every
//! store tick at once made about three syncs on the leader per replication round, one after
//! the other, before it sent anything to the followers. So at most [`MAX_IN_FLIGHT`] entries
//! are proposed and not yet applied; the ticks that come meanwhile are held and merged, and go
//! as one entry when a slot frees. With two in flight, the leader syncs the next entry while
//! the followers sync the one before.
//!
//! A snapshot clone must end exactly at an entry's last record: [`Proposals::seal`] closes the
//! batch being held, so that later ticks start another.

use std::collections::VecDeque;
use std::time::Instant;

use moodb_core::record::Lsn;
use moodb_core::Record;

/// How many entries a leader has proposed and not yet seen applied, at most.
pub const MAX_IN_FLIGHT: usize = 2;

/// Ticks held to become one entry.
#[derive(Debug)]
struct Held {
    records: Vec<Record>,
    last: Lsn,
    /// A snapshot clone ends at `last`: nothing more joins this batch.
    sealed: bool,
}

/// The proposals of one leadership (cleared when it ends).
#[derive(Debug)]
pub struct Proposals {
    /// The last LSN of each entry proposed and not yet applied, oldest first, with when it
    /// was proposed.
    in_flight: VecDeque<(Lsn, Instant)>,
    held: VecDeque<Held>,
    max_in_flight: usize,
}

impl Default for Proposals {
    fn default() -> Self {
        Proposals::new(MAX_IN_FLIGHT)
    }
}

impl Proposals {
    pub fn new(max_in_flight: usize) -> Self {
        Proposals {
            in_flight: VecDeque::new(),
            held: VecDeque::new(),
            max_in_flight: max_in_flight.max(1),
        }
    }

    /// A tick's records, ending at `last`: returned when they are to be proposed now (counted
    /// in flight), else held with the ticks before them.
    pub fn submit(&mut self, last: Lsn, records: Vec<Record>, now: Instant) -> Option<Vec<Record>> {
        if self.held.is_empty() && self.in_flight.len() < self.max_in_flight {
            self.in_flight.push_back((last, now));
            return Some(records);
        }
        match self.held.back_mut() {
            Some(batch) if !batch.sealed => {
                batch.records.extend(records);
                batch.last = last;
            }
            _ => self.held.push_back(Held {
                records,
                last,
                sealed: false,
            }),
        }
        None
    }

    /// This leader's oldest entry in flight was applied: its last LSN.
    pub fn applied(&mut self) -> Option<Lsn> {
        self.in_flight.pop_front().map(|(lsn, _)| lsn)
    }

    /// A held batch to propose now that a slot is free (counted in flight), if any.
    pub fn next_ready(&mut self, now: Instant) -> Option<Vec<Record>> {
        if self.in_flight.len() >= self.max_in_flight {
            return None;
        }
        let batch = self.held.pop_front()?;
        self.in_flight.push_back((batch.last, now));
        Some(batch.records)
    }

    /// The last LSN proposed or held, for a snapshot cloned now: the held batch is sealed, so
    /// the entry it becomes ends there. `None` when nothing is outstanding.
    pub fn seal(&mut self) -> Option<Lsn> {
        if let Some(batch) = self.held.back_mut() {
            batch.sealed = true;
            return Some(batch.last);
        }
        self.in_flight.back().map(|(lsn, _)| *lsn)
    }

    /// When the oldest entry in flight was proposed.
    pub fn oldest(&self) -> Option<Instant> {
        self.in_flight.front().map(|(_, at)| *at)
    }

    /// Whether an entry of this leader is in flight.
    pub fn has_in_flight(&self) -> bool {
        !self.in_flight.is_empty()
    }

    pub fn is_empty(&self) -> bool {
        self.in_flight.is_empty() && self.held.is_empty()
    }

    /// Forgets everything (leadership lost, a snapshot installed).
    pub fn clear(&mut self) {
        self.in_flight.clear();
        self.held.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn set(key: &str) -> Record {
        Record::Set {
            key: Bytes::copy_from_slice(key.as_bytes()),
            value: Bytes::from_static(b"v"),
            expires_at_ms: None,
        }
    }

    #[test]
    fn ticks_beyond_the_window_are_merged_and_go_one_entry_per_free_slot() {
        let now = Instant::now();
        let mut p = Proposals::new(2);
        assert_eq!(p.submit(1, vec![set("a")], now), Some(vec![set("a")]));
        assert_eq!(p.submit(2, vec![set("b")], now), Some(vec![set("b")]));
        assert_eq!(p.submit(3, vec![set("c")], now), None);
        assert_eq!(p.submit(5, vec![set("d"), set("e")], now), None);
        assert_eq!(p.next_ready(now), None, "no slot free yet");
        assert_eq!(p.applied(), Some(1));
        assert_eq!(
            p.next_ready(now),
            Some(vec![set("c"), set("d"), set("e")]),
            "the held ticks, as one entry"
        );
        assert_eq!(p.applied(), Some(2));
        assert_eq!(p.applied(), Some(5));
        assert!(p.is_empty());
        // With the window free again, a tick goes at once.
        assert_eq!(p.submit(6, vec![set("f")], now), Some(vec![set("f")]));
    }

    #[test]
    fn a_tick_never_overtakes_held_ones() {
        let now = Instant::now();
        let mut p = Proposals::new(1);
        assert!(p.submit(1, vec![set("a")], now).is_some());
        assert!(p.submit(2, vec![set("b")], now).is_none());
        assert_eq!(p.applied(), Some(1));
        // A slot is free, but b waits: c joins it rather than going first.
        assert!(p.submit(3, vec![set("c")], now).is_none());
        assert_eq!(p.next_ready(now), Some(vec![set("b"), set("c")]));
    }

    #[test]
    fn a_sealed_batch_ends_where_the_snapshot_was_cloned() {
        let now = Instant::now();
        let mut p = Proposals::new(1);
        assert_eq!(p.seal(), None, "nothing outstanding");
        assert!(p.submit(1, vec![set("a")], now).is_some());
        assert_eq!(p.seal(), Some(1), "the entry in flight");
        assert!(p.submit(2, vec![set("b")], now).is_none());
        assert_eq!(p.seal(), Some(2));
        assert!(p.submit(3, vec![set("c")], now).is_none());
        assert_eq!(p.applied(), Some(1));
        assert_eq!(p.next_ready(now), Some(vec![set("b")]));
        assert_eq!(p.applied(), Some(2), "the entry the snapshot waits for");
        assert_eq!(p.next_ready(now), Some(vec![set("c")]));
        assert_eq!(p.applied(), Some(3));
    }
}
