//! The store as a replicated state machine (cluster mode): applying the physical records a
//! majority committed ([`Store::apply_committed`]), giving up what this node applied but never
//! got committed when it loses leadership ([`Store::abandon_uncommitted`],
//! [`Store::replace_state`]), and what ROLE and INFO replication say ([`Replication`], set by
//! the caller). Without a cluster none of this runs: the single-node path does not look here.

use crate::command::txn::Emptying;
use crate::keyspace::Databases;
use crate::record::{Lsn, Record};
use crate::resp::Frame;

use super::gate::{DurabilityGate, Release};
use super::Store;

/// This node's part in replication, as the caller (the server's raft glue) sees it; the store
/// only reports it (ROLE, INFO replication). Offsets are raft log indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replication {
    /// The leader, with the other voters and how far each has replicated.
    Leader { offset: u64, replicas: Vec<Replica> },
    /// A follower of the leader at `host:port` (its client address); `connected` while that
    /// leader is known and heard from.
    Follower {
        host: String,
        port: u16,
        connected: bool,
        offset: u64,
    },
}

/// A replica as its leader sees it: its client address and its matched log index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    pub ip: String,
    pub port: u16,
    pub offset: u64,
}

impl<T> Store<T> {
    /// Applies `records`, which another node decided and a majority committed, in order: each
    /// gets the next LSN, is shown to WATCH and is released at once (nothing from the future:
    /// they are committed). No replies: the node that executed them answered. Returns the
    /// store's last LSN.
    pub fn apply_committed(&mut self, records: Vec<Record>, out: &mut Vec<Release<T>>) -> Lsn {
        for record in records {
            self.txns.touch(&record);
            self.dbs.apply_owned(record);
            self.last_lsn += 1;
        }
        self.gate.release(self.last_lsn, self.last_lsn, out);
        self.release_pushes();
        self.last_lsn
    }

    /// Leadership was lost before the writes after the last committed one were: every batch
    /// still waiting (for such a write, or for a read of one) is answered with `refusal`
    /// instead, its messages dropped; records not yet taken are dropped. The caller then
    /// rebuilds the committed state and installs it with [`Store::replace_state`] before the
    /// store serves anything.
    pub fn abandon_uncommitted(&mut self, refusal: &Frame, out: &mut Vec<Release<T>>) {
        self.refuse_waiting(refusal, out);
    }

    /// Replaces the key space with `state` (the committed state: a snapshot and the committed
    /// log after it), as of LSN `last_lsn`. Every watcher is dirtied (any key may have
    /// changed); nothing waits any more (call [`Store::abandon_uncommitted`] first).
    pub fn replace_state(&mut self, state: Databases, last_lsn: Lsn) {
        let now_ms = self.now_ms;
        self.txns.emptying(Emptying::All, &self.dbs, now_ms);
        let mut dbs = state;
        dbs.grow_to(self.settings.databases);
        self.txns.emptying(Emptying::All, &dbs, now_ms);
        self.dbs = dbs;
        self.last_lsn = last_lsn;
        self.gate = DurabilityGate::new(last_lsn);
    }

    /// The O(1) clone of the key space as it is now (for a raft snapshot when every write
    /// applied is committed).
    pub fn state(&self) -> Databases {
        self.dbs.clone()
    }

    /// Whether every write applied is released (nothing waits to be committed).
    pub fn all_released(&self) -> bool {
        self.gate.released_lsn() >= self.last_lsn
    }

    /// What ROLE and INFO replication say from now on (`None`: a single node).
    pub fn set_replication(&mut self, replication: Option<Replication>) {
        self.replication = replication;
    }

    /// ROLE, as Redis 7 answers it: `master`, offset, `[ip, port, offset]` per replica (bulk
    /// strings); `slave`, leader host, port, state, offset. A single node is a master with
    /// offset 0 and no replicas (Redis keeps no backlog without replicas).
    pub(super) fn role(&self) -> Frame {
        match &self.replication {
            None => Frame::Array(vec![
                Frame::bulk("master"),
                Frame::Integer(0),
                Frame::Array(Vec::new()),
            ]),
            Some(Replication::Leader { offset, replicas }) => Frame::Array(vec![
                Frame::bulk("master"),
                Frame::Integer(*offset as i64),
                Frame::Array(
                    replicas
                        .iter()
                        .map(|r| {
                            Frame::Array(vec![
                                Frame::bulk(r.ip.clone()),
                                Frame::bulk(r.port.to_string()),
                                Frame::bulk(r.offset.to_string()),
                            ])
                        })
                        .collect(),
                ),
            ]),
            Some(Replication::Follower {
                host,
                port,
                connected,
                offset,
            }) => Frame::Array(vec![
                Frame::bulk("slave"),
                Frame::bulk(host.clone()),
                Frame::Integer(i64::from(*port)),
                Frame::bulk(if *connected { "connected" } else { "connect" }),
                Frame::Integer(*offset as i64),
            ]),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

    use bytes::Bytes;

    use super::*;
    use crate::backend::BackendStatus;
    use crate::store::test_settings;

    fn req(args: &[&str]) -> Vec<Bytes> {
        args.iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect()
    }

    fn set(key: &str, value: &str) -> Record {
        Record::Set {
            key: Bytes::copy_from_slice(key.as_bytes()),
            value: Bytes::copy_from_slice(value.as_bytes()),
            expires_at_ms: None,
        }
    }

    fn store() -> Store<u32> {
        Store::new(
            Databases::new(16),
            0,
            BackendStatus::default(),
            test_settings(),
            1_000,
        )
    }

    fn get(s: &mut Store<u32>, key: &str) -> Frame {
        let r = s.execute(1, &[req(&["GET", key])], 9, 1_000).unwrap();
        r.frames.into_iter().next().unwrap()
    }

    #[test]
    fn committed_records_are_applied_released_and_seen_by_watch() {
        let mut s = store();
        let mut out = Vec::new();
        let r = s.execute(2, &[req(&["WATCH", "a"])], 1, 1_000).unwrap();
        assert_eq!(r.frames, vec![Frame::ok()]);
        let lsn = s.apply_committed(
            vec![set("a", "1"), Record::in_db(3, set("b", "2"))],
            &mut out,
        );
        assert_eq!(lsn, 2);
        assert!(out.is_empty());
        assert_eq!(get(&mut s, "a"), Frame::bulk("1"));
        let r = s
            .execute(
                2,
                &[req(&["MULTI"]), req(&["GET", "a"]), req(&["EXEC"])],
                2,
                1_000,
            )
            .unwrap();
        assert_eq!(
            r.frames[2],
            Frame::NullArray,
            "WATCH saw the committed write"
        );
        let r = s
            .execute(3, &[req(&["SELECT", "3"]), req(&["GET", "b"])], 3, 1_000)
            .unwrap();
        assert_eq!(r.frames[1], Frame::bulk("2"));
        assert!(s.all_released());
    }

    #[test]
    fn leadership_lost_answers_waiting_batches_and_the_committed_state_replaces_the_rest() {
        let mut s = store();
        let mut out = Vec::new();
        s.apply_committed(vec![set("a", "committed")], &mut out);
        let committed = s.state();
        // An optimistic write, its reply waiting, and a read that depends on it.
        assert!(s
            .execute(1, &[req(&["SET", "a", "lost"])], 1, 1_000)
            .is_none());
        assert!(s.execute(2, &[req(&["GET", "a"])], 2, 1_000).is_none());
        assert_eq!(s.take_records().len(), 1);
        assert!(!s.all_released());
        let refusal = Frame::Error("TRYAGAIN leadership changed".into());
        s.abandon_uncommitted(&refusal, &mut out);
        let to: Vec<u32> = out.iter().map(|r| r.to).collect();
        assert_eq!(to, vec![1, 2]);
        assert!(out.iter().all(|r| r.frames == vec![refusal.clone()]));
        s.replace_state(committed, 1);
        assert_eq!(s.last_lsn(), 1);
        assert_eq!(get(&mut s, "a"), Frame::bulk("committed"));
        assert!(!s.has_records());
    }

    #[test]
    fn role_without_replication_is_a_lone_master() {
        let mut s = store();
        let r = s.execute(1, &[req(&["ROLE"])], 1, 1_000).unwrap();
        assert_eq!(
            r.frames[0],
            Frame::Array(vec![
                Frame::bulk("master"),
                Frame::Integer(0),
                Frame::Array(vec![])
            ])
        );
        s.set_replication(Some(Replication::Follower {
            host: "127.0.0.1".into(),
            port: 6380,
            connected: true,
            offset: 7,
        }));
        let r = s.execute(1, &[req(&["ROLE"])], 1, 1_000).unwrap();
        assert_eq!(
            r.frames[0],
            Frame::Array(vec![
                Frame::bulk("slave"),
                Frame::bulk("127.0.0.1"),
                Frame::Integer(6380),
                Frame::bulk("connected"),
                Frame::Integer(7),
            ])
        );
    }
}
