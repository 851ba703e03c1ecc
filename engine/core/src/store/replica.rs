//! The store as a replicated state machine (cluster mode): applying the physical records a
//! majority committed ([`Store::apply_committed`]), giving up what this node applied but never
//! got committed when it loses leadership ([`Store::abandon_uncommitted`],
//! [`Store::replace_state`]), and what ROLE and INFO replication say ([`Replication`], set by
//! the caller). Without a cluster none of this runs: the single-node path does not look here.
//!
//! Also what clients ask about replication: `WAIT numreplicas timeout` ([`Waits`]: each
//! session's last write, how far each replica holds this store's writes as the caller says,
//! and the batches blocked in WAIT until enough replicas hold the write or the timeout
//! passes; the caller passes the time in and wakes the store at [`Store::next_wait_deadline`])
//! and `SENTINEL` (answered from the [`SentinelView`] the caller sets; none on a single node,
//! which then answers as a redis-server that is no sentinel).

use bytes::Bytes;

use crate::command::replication::{parse_sentinel, SentinelView};
use crate::command::table;
use crate::command::txn::{Emptying, SessionId};
use crate::fast_map::FastMap;
use crate::keyspace::Databases;
use crate::record::{Lsn, Record};
use crate::resp::Frame;

use super::gate::{DurabilityGate, Release, Waiting};
use super::Store;

/// A WAIT in a batch: its reply's position, how many replicas it asks for and the write
/// (this store's LSN) they must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WaitSlot {
    pub at: usize,
    pub numreplicas: i64,
    pub target: Lsn,
}

/// A batch blocked in WAIT: its replies (the WAIT slots filled when it unblocks), until when.
#[derive(Debug)]
struct Blocked<T> {
    session: SessionId,
    waiting: Waiting<T>,
    slots: Vec<WaitSlot>,
    /// Unix ms; `None`: WAIT ... 0, for ever.
    deadline: Option<u64>,
}

/// WAIT's and SENTINEL's state in the store (see the module documentation).
#[derive(Debug)]
pub(crate) struct Waits<T> {
    /// Each session's last write (Redis's `c->woff`), for the sessions that wrote.
    last_write: FastMap<SessionId, Lsn>,
    /// Per replica, the newest LSN of this store it holds (empty: no replicas).
    replicas: Vec<Lsn>,
    blocked: Vec<Blocked<T>>,
    /// The WAIT of the request executing, when it must block (taken by `execute_in`).
    pub pending: Option<(i64, Lsn, u64)>,
    pub sentinel: Option<SentinelView>,
    /// The leader last known (SENTINEL keeps naming it during an election).
    last_master: Option<u64>,
}

impl<T> Default for Waits<T> {
    fn default() -> Self {
        Waits {
            last_write: FastMap::default(),
            replicas: Vec::new(),
            blocked: Vec::new(),
            pending: None,
            sentinel: None,
            last_master: None,
        }
    }
}

impl<T> Waits<T> {
    /// Replicas holding every write through `target`.
    fn acks(&self, target: Lsn) -> i64 {
        self.replicas.iter().filter(|&&l| l >= target).count() as i64
    }

    pub fn note_write(&mut self, session: SessionId, lsn: Lsn) {
        self.last_write.insert(session, lsn);
    }

    pub fn session_closed(&mut self, session: SessionId) {
        self.last_write.remove(&session);
        self.blocked.retain(|b| b.session != session);
    }

    /// Every blocked batch, for a refusal (storage failure, leadership lost).
    pub fn take_blocked(&mut self) -> impl Iterator<Item = Waiting<T>> + '_ {
        self.blocked.drain(..).map(|b| b.waiting)
    }
}

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

    /// WAIT's reply now, or (`pending` set) the placeholder of a WAIT that blocks: inside
    /// MULTI, with numreplicas already held, or (Redis) numreplicas ≤ 0, it answers at once
    /// how many replicas hold the session's last write.
    pub(super) fn wait_command(
        &mut self,
        session: SessionId,
        numreplicas: i64,
        timeout_ms: u64,
        now_ms: u64,
        in_exec: bool,
    ) -> Frame {
        let target = self.waits.last_write.get(&session).copied().unwrap_or(0);
        let acks = self.waits.acks(target);
        if acks >= numreplicas || in_exec {
            return Frame::Integer(acks);
        }
        let deadline = (timeout_ms > 0).then(|| now_ms.saturating_add(timeout_ms));
        self.waits.pending = Some((numreplicas, target, deadline.unwrap_or(0)));
        Frame::Null
    }

    /// `batch` (of `session`) holds WAITs that block at `slots`: it waits until each has its
    /// replicas or the earliest deadline passes.
    pub(super) fn block_in_wait(
        &mut self,
        session: SessionId,
        waiting: Waiting<T>,
        slots: Vec<WaitSlot>,
        deadline: Option<u64>,
    ) {
        self.waits.blocked.push(Blocked {
            session,
            waiting,
            slots,
            deadline,
        });
    }

    /// The caller's news of the replicas: `held[i]` is the newest LSN of this store replica
    /// `i` holds. Batches whose WAITs are satisfied move on (to `out`, or to the durability
    /// gate when they wait for a write too).
    pub fn set_replica_progress(&mut self, held: Vec<Lsn>, now_ms: u64, out: &mut Vec<Release<T>>) {
        self.waits.replicas = held;
        self.unblock_waits(now_ms, out);
    }

    /// Batches blocked in WAIT whose deadline passed by `now_ms` (or whose replicas arrived)
    /// move on with the counts of now.
    pub fn expire_waits(&mut self, now_ms: u64, out: &mut Vec<Release<T>>) {
        self.unblock_waits(now_ms, out);
    }

    /// The earliest deadline of a blocked WAIT (Unix ms), for the caller's timer.
    pub fn next_wait_deadline(&self) -> Option<u64> {
        self.waits.blocked.iter().filter_map(|b| b.deadline).min()
    }

    fn unblock_waits(&mut self, now_ms: u64, out: &mut Vec<Release<T>>) {
        if self.waits.blocked.is_empty() {
            return;
        }
        let blocked = std::mem::take(&mut self.waits.blocked);
        for mut b in blocked {
            let expired = b.deadline.is_some_and(|d| d <= now_ms);
            let done = b
                .slots
                .iter()
                .all(|s| self.waits.acks(s.target) >= s.numreplicas);
            if !(done || expired) {
                self.waits.blocked.push(b);
                continue;
            }
            for s in &b.slots {
                if let Some(f) = b.waiting.frames.get_mut(s.at) {
                    *f = Frame::Integer(self.waits.acks(s.target));
                }
            }
            if b.waiting.wait_lsn <= self.gate.released_lsn() {
                out.push(b.waiting.release());
            } else {
                self.gate.hold(b.waiting);
            }
        }
    }

    /// What SENTINEL answers from now on (`None`: a single node, no SENTINEL command).
    pub fn set_sentinel(&mut self, view: Option<SentinelView>) {
        if let Some(l) = view.as_ref().and_then(|v| v.leader) {
            self.waits.last_master = Some(l);
        }
        self.waits.sentinel = view;
    }

    /// SENTINEL, when this node has a [`SentinelView`]; `None` otherwise (the command is then
    /// unknown, as on a redis-server that is not a sentinel).
    pub(super) fn sentinel_command(&self, request: &[Bytes]) -> Option<Frame> {
        let view = self.waits.sentinel.as_ref()?;
        let name = request.first()?;
        if !name.eq_ignore_ascii_case(b"sentinel") || table::lookup(name).is_some() {
            return None;
        }
        Some(match parse_sentinel(&request[1..]) {
            Ok(cmd) => view.answer(&cmd, self.waits.last_master),
            Err(reply) => reply,
        })
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
    use crate::command::ReplyError;
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
    fn a_follower_hides_an_expired_key_without_writing_its_delete() {
        let mut s = store();
        let mut out = Vec::new();
        let expiring = Record::Set {
            key: Bytes::from_static(b"k"),
            value: Bytes::from_static(b"v"),
            expires_at_ms: Some(1_500),
        };
        s.apply_committed(vec![expiring], &mut out);
        let follower = Replication::Follower {
            host: "127.0.0.1".into(),
            port: 7000,
            connected: true,
            offset: 1,
        };
        s.set_replication(Some(follower));
        let r = s.execute(1, &[req(&["GET", "k"])], 9, 2_000).unwrap();
        assert_eq!(r.frames, vec![Frame::Null]);
        assert!(!s.has_records(), "a follower logged a DELETE of its own");
        // The leader's DELETE comes committed; as the leader, the same read deletes (and its
        // reply waits for the DELETE to be durable).
        s.set_replication(Some(Replication::Leader {
            offset: 1,
            replicas: Vec::new(),
        }));
        assert!(s.execute(1, &[req(&["GET", "k"])], 9, 2_000).is_none());
        assert_eq!(s.take_records().len(), 1);
    }

    #[test]
    fn readonly_and_readwrite_need_a_cluster() {
        let mut s = store();
        let r = s
            .execute(1, &[req(&["READONLY"]), req(&["READWRITE"])], 9, 1_000)
            .unwrap();
        let disabled = Frame::from(ReplyError::ClusterDisabled);
        assert_eq!(r.frames, vec![disabled.clone(), disabled]);
        s.set_replication(Some(Replication::Leader {
            offset: 0,
            replicas: Vec::new(),
        }));
        let r = s
            .execute(1, &[req(&["READONLY"]), req(&["READWRITE"])], 9, 1_000)
            .unwrap();
        assert_eq!(r.frames, vec![Frame::ok(), Frame::ok()]);
    }

    #[test]
    fn a_readonly_client_shows_redis_r_flag_until_readwrite_or_reset() {
        let mut s = store();
        s.set_replication(Some(Replication::Follower {
            host: "127.0.0.1".into(),
            port: 7000,
            connected: true,
            offset: 0,
        }));
        s.session_opened(1, crate::store::clients::Peer::default(), 1_000);
        let flags = |s: &mut Store<u32>, first: &str| {
            let r = s
                .execute(1, &[req(&[first]), req(&["CLIENT", "INFO"])], 9, 1_000)
                .unwrap();
            let (Frame::Bulk(line) | Frame::Verbatim { text: line, .. }) = &r.frames[1] else {
                panic!("CLIENT INFO answered {:?}", r.frames[1]);
            };
            let line = String::from_utf8_lossy(line).into_owned();
            line.split(' ')
                .find_map(|f| f.strip_prefix("flags="))
                .map(str::to_owned)
        };
        // As redis-server --cluster-enabled yes prints it.
        assert_eq!(flags(&mut s, "READONLY").as_deref(), Some("r"));
        assert_eq!(flags(&mut s, "READWRITE").as_deref(), Some("N"));
        assert_eq!(flags(&mut s, "READONLY").as_deref(), Some("r"));
        assert_eq!(flags(&mut s, "RESET").as_deref(), Some("N"));
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
    fn wait_blocks_until_the_replicas_hold_the_sessions_last_write_or_its_timeout() {
        let mut s = store();
        let mut out = Vec::new();
        // No replicas (a single node): numreplicas 0 at once, 1 blocks until the timeout.
        let r = s.execute(1, &[req(&["WAIT", "0", "0"])], 1, 1_000).unwrap();
        assert_eq!(r.frames, vec![Frame::Integer(0)]);
        assert!(s
            .execute(1, &[req(&["WAIT", "1", "100"])], 2, 1_000)
            .is_none());
        assert_eq!(s.next_wait_deadline(), Some(1_100));
        s.expire_waits(1_099, &mut out);
        assert!(out.is_empty());
        s.expire_waits(1_100, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].to, out[0].frames.clone()),
            (2, vec![Frame::Integer(0)])
        );
        out.clear();

        // Two replicas; session 1 writes (LSN 1, released), session 2 does not.
        s.set_replica_progress(vec![0, 0], 1_000, &mut out);
        assert!(s.execute(1, &[req(&["SET", "a", "1"])], 3, 1_000).is_none());
        s.take_records();
        s.on_durable(1, BackendStatus::default(), &mut out);
        out.clear();
        let r = s.execute(2, &[req(&["WAIT", "2", "0"])], 4, 1_000).unwrap();
        assert_eq!(
            r.frames,
            vec![Frame::Integer(2)],
            "nothing written: every replica holds it"
        );
        // A batch: a read, WAIT for ever, a read; the replies stay in order.
        let batch = [
            req(&["GET", "a"]),
            req(&["WAIT", "2", "0"]),
            req(&["GET", "a"]),
        ];
        assert!(s.execute(1, &batch, 5, 1_000).is_none());
        assert_eq!(s.next_wait_deadline(), None);
        s.set_replica_progress(vec![1, 0], 1_001, &mut out);
        assert!(out.is_empty(), "one replica of two");
        s.set_replica_progress(vec![1, 1], 1_002, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].frames,
            vec![Frame::bulk("1"), Frame::Integer(2), Frame::bulk("1")]
        );
        out.clear();
        // Inside MULTI WAIT answers at once; a closed session's blocked WAIT is dropped.
        let txn = [req(&["MULTI"]), req(&["WAIT", "3", "0"]), req(&["EXEC"])];
        let r = s.execute(1, &txn, 6, 1_000).unwrap();
        assert_eq!(r.frames[2], Frame::Array(vec![Frame::Integer(2)]));
        assert!(s
            .execute(1, &[req(&["WAIT", "3", "0"])], 7, 1_000)
            .is_none());
        s.session_closed(1);
        s.set_replica_progress(vec![5, 5, 5], 1_003, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn sentinel_is_unknown_without_a_view_and_answers_with_one() {
        use crate::command::replication::{SentinelMember, SentinelView};
        let mut s = store();
        let ask = [req(&["SENTINEL", "get-master-addr-by-name", "mymaster"])];
        let r = s.execute(1, &ask, 1, 1_000).unwrap();
        assert!(
            matches!(&r.frames[0], Frame::Error(e) if e.starts_with("ERR unknown command 'SENTINEL'"))
        );
        let member = |id: u64| SentinelMember {
            id,
            ip: "127.0.0.1".into(),
            port: 7000 + id as u16,
            offset: 0,
        };
        s.set_sentinel(Some(SentinelView {
            master_name: "mymaster".into(),
            me: 1,
            leader: Some(2),
            members: vec![member(1), member(2), member(3)],
        }));
        let r = s.execute(1, &ask, 2, 1_000).unwrap();
        let addr = Frame::Array(vec![Frame::bulk("127.0.0.1"), Frame::bulk("7002")]);
        assert_eq!(r.frames[0], addr);
        // During an election: still the last leader.
        s.set_sentinel(Some(SentinelView {
            master_name: "mymaster".into(),
            me: 1,
            leader: None,
            members: vec![member(1), member(2), member(3)],
        }));
        let r = s.execute(1, &ask, 3, 1_000).unwrap();
        assert_eq!(r.frames[0], addr);
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
