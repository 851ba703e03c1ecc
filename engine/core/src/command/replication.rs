//! The replication commands clients send to find and trust a replicated MooDB: `WAIT
//! numreplicas timeout` (parsed here with Redis 7.0's errors, answered by the store from what
//! its caller says the replicas hold, `store/replica.rs`) and the part of Redis Sentinel's
//! `SENTINEL` command that Sentinel-aware clients send while discovering a master
//! (`GET-MASTER-ADDR-BY-NAME`, `MASTERS`, `MASTER`, `SENTINELS`, `SLAVES` / `REPLICAS`),
//! rendered from a [`SentinelView`] of the cluster's members in Sentinel 7.0's reply shapes.
//! A single node has no SENTINEL at all: as a redis-server not in sentinel mode, it answers
//! the unknown-command error.

use bytes::Bytes;

use super::table::CommandSpec;
use super::{server::ServerCommand, Command, ReplyError};
use crate::resp::Frame;

/// `WAIT numreplicas timeout`: numreplicas any integer (≤ 0 is answered at once), timeout in
/// milliseconds, 0 for ever; Redis 7.0's error texts.
pub fn parse_wait(_: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let int = |b: &Bytes| {
        std::str::from_utf8(b)
            .ok()
            .and_then(|t| t.parse::<i64>().ok())
    };
    let numreplicas = int(&rest[0]).ok_or(ReplyError::NotInteger)?;
    let timeout = int(&rest[1]).ok_or(ReplyError::TimeoutNotInteger)?;
    if timeout < 0 {
        return Err(ReplyError::TimeoutNegative.into());
    }
    Ok(Command::Server(ServerCommand::Wait {
        numreplicas,
        timeout_ms: timeout as u64,
    }))
}

/// One member of the cluster as SENTINEL shows it: its raft node id, client address and the
/// raft index it has replicated (its ROLE offset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelMember {
    pub id: u64,
    pub ip: String,
    pub port: u16,
    pub offset: u64,
}

/// What SENTINEL answers from (set by the caller in cluster mode): every member is both a
/// data node and a sentinel watching the one master, the raft leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelView {
    /// The master's name clients ask for (`cluster.sentinel_master_name`, "mymaster").
    pub master_name: String,
    /// This node's id.
    pub me: u64,
    /// The leader now; `None` during an election.
    pub leader: Option<u64>,
    /// Every member (this node included).
    pub members: Vec<SentinelMember>,
}

/// A SENTINEL subcommand, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SentinelCommand {
    GetMasterAddrByName(Bytes),
    Masters,
    Master(Bytes),
    Sentinels(Bytes),
    Replicas(Bytes),
}

/// `SENTINEL ...` (`rest` after the name), with Sentinel's errors for a wrong count or an
/// unknown subcommand.
pub fn parse_sentinel(rest: &[Bytes]) -> Result<SentinelCommand, Frame> {
    let Some(sub) = rest.first() else {
        return Err(ReplyError::WrongArity { name: "sentinel" }.into());
    };
    let upper = sub.to_ascii_uppercase();
    // A wrong count names the subcommand, as Sentinel 7.0's table does: 'sentinel|masters'.
    let arity = |n: usize, name: &'static str, cmd: SentinelCommand| {
        if rest.len() == n {
            Ok(cmd)
        } else {
            Err(Frame::from(ReplyError::WrongArity { name }))
        }
    };
    let name = || rest.get(1).cloned().unwrap_or_default();
    match upper.as_slice() {
        b"GET-MASTER-ADDR-BY-NAME" => arity(
            2,
            "sentinel|get-master-addr-by-name",
            SentinelCommand::GetMasterAddrByName(name()),
        ),
        b"MASTERS" => arity(1, "sentinel|masters", SentinelCommand::Masters),
        b"MASTER" => arity(2, "sentinel|master", SentinelCommand::Master(name())),
        b"SENTINELS" => arity(2, "sentinel|sentinels", SentinelCommand::Sentinels(name())),
        b"SLAVES" => arity(2, "sentinel|slaves", SentinelCommand::Replicas(name())),
        b"REPLICAS" => arity(2, "sentinel|replicas", SentinelCommand::Replicas(name())),
        _ => Err(ReplyError::unknown_subcommand("SENTINEL", sub).into()),
    }
}

/// The id Sentinel calls a run id (40 hex digits) for member `id`: stable across restarts.
fn run_id(id: u64) -> String {
    format!("{id:040x}")
}

fn pairs(fields: Vec<(&'static str, String)>) -> Frame {
    Frame::Map(
        fields
            .into_iter()
            .map(|(k, v)| (Frame::bulk(k), Frame::bulk(v)))
            .collect(),
    )
}

/// The fields every instance reply of Sentinel starts with, in its order (Redis's
/// `addReplySentinelRedisInstance`): the master's, a replica's and a sentinel's.
fn instance_fields(name: String, m: &SentinelMember, flags: &str) -> Vec<(&'static str, String)> {
    vec![
        ("name", name),
        ("ip", m.ip.clone()),
        ("port", m.port.to_string()),
        ("runid", run_id(m.id)),
        ("flags", flags.into()),
        ("link-pending-commands", "0".into()),
        ("link-refcount", "1".into()),
        ("last-ping-sent", "0".into()),
        ("last-ok-ping-reply", "0".into()),
        ("last-ping-reply", "0".into()),
        ("down-after-milliseconds", "30000".into()),
    ]
}

impl SentinelView {
    fn member(&self, id: u64) -> Option<&SentinelMember> {
        self.members.iter().find(|m| m.id == id)
    }

    fn is_master(&self, name: &[u8]) -> bool {
        name == self.master_name.as_bytes()
    }

    /// Answers `cmd`. `last_master` is the leader last known (Sentinel keeps answering the
    /// old master's address until a failover elects another).
    pub fn answer(&self, cmd: &SentinelCommand, last_master: Option<u64>) -> Frame {
        let master = self.leader.or(last_master);
        let no_such = || Frame::from(ReplyError::NoSuchMaster);
        match cmd {
            SentinelCommand::GetMasterAddrByName(name) => {
                match master
                    .and_then(|id| self.member(id))
                    .filter(|_| self.is_master(name))
                {
                    Some(m) => Frame::Array(vec![
                        Frame::bulk(m.ip.clone()),
                        Frame::bulk(m.port.to_string()),
                    ]),
                    None => Frame::NullArray,
                }
            }
            SentinelCommand::Masters => {
                Frame::Array(self.master_state(master).into_iter().collect())
            }
            SentinelCommand::Master(name) if self.is_master(name) => {
                self.master_state(master).unwrap_or_else(no_such)
            }
            SentinelCommand::Sentinels(name) if self.is_master(name) => Frame::Array(
                self.members
                    .iter()
                    .filter(|m| m.id != self.me)
                    .map(|m| self.sentinel_state(m))
                    .collect(),
            ),
            SentinelCommand::Replicas(name) if self.is_master(name) => Frame::Array(
                self.members
                    .iter()
                    .filter(|m| Some(m.id) != master)
                    .map(|m| self.replica_state(m, master))
                    .collect(),
            ),
            _ => no_such(),
        }
    }

    /// Sentinel's fields for the master, in its order; `s_down,o_down` while no leader is
    /// elected (clients then look again rather than connect to a node that cannot serve).
    fn master_state(&self, master: Option<u64>) -> Option<Frame> {
        let m = self.member(master?)?;
        let flags = if self.leader.is_some() {
            "master"
        } else {
            "master,s_down,o_down"
        };
        let others = self.members.iter().filter(|x| x.id != self.me).count();
        let replicas = self.members.len().saturating_sub(1);
        let mut fields = instance_fields(self.master_name.clone(), m, flags);
        fields.extend([
            ("info-refresh", "0".into()),
            ("role-reported", "master".into()),
            ("role-reported-time", "0".into()),
            ("config-epoch", "0".into()),
            ("num-slaves", replicas.to_string()),
            ("num-other-sentinels", others.to_string()),
            ("quorum", (self.members.len() / 2 + 1).to_string()),
            ("failover-timeout", "180000".into()),
            ("parallel-syncs", "1".into()),
        ]);
        Some(pairs(fields))
    }

    fn replica_state(&self, r: &SentinelMember, master: Option<u64>) -> Frame {
        let (host, port) = master
            .and_then(|id| self.member(id))
            .map_or(("?".to_string(), 0), |m| (m.ip.clone(), m.port));
        let link = if self.leader.is_some() { "ok" } else { "err" };
        let mut fields = instance_fields(format!("{}:{}", r.ip, r.port), r, "slave");
        fields.extend([
            ("info-refresh", "0".into()),
            ("role-reported", "slave".into()),
            ("role-reported-time", "0".into()),
            ("master-link-down-time", "0".into()),
            ("master-link-status", link.into()),
            ("master-host", host),
            ("master-port", port.to_string()),
            ("slave-priority", "100".into()),
            ("slave-repl-offset", r.offset.to_string()),
            ("replica-announced", "1".into()),
        ]);
        pairs(fields)
    }

    fn sentinel_state(&self, s: &SentinelMember) -> Frame {
        let mut fields = instance_fields(run_id(s.id), s, "sentinel");
        fields.extend([
            ("last-hello-message", "0".into()),
            ("voted-leader", "?".into()),
            ("voted-leader-epoch", "0".into()),
        ]);
        pairs(fields)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

    use super::*;
    use crate::command::table;

    fn b(args: &[&str]) -> Vec<Bytes> {
        args.iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect()
    }

    fn wait(args: &[&str]) -> Result<Command, Frame> {
        let spec = table::lookup(b"wait").unwrap();
        parse_wait(spec, &b(args))
    }

    #[test]
    fn wait_parses_as_redis_7_0_does() {
        assert_eq!(
            wait(&["-1", "0"]),
            Ok(Command::Server(ServerCommand::Wait {
                numreplicas: -1,
                timeout_ms: 0
            }))
        );
        assert_eq!(wait(&["a", "1"]), Err(ReplyError::NotInteger.into()));
        assert_eq!(
            wait(&["1", "1.5"]),
            Err(ReplyError::TimeoutNotInteger.into())
        );
        assert_eq!(wait(&["1", "-1"]), Err(ReplyError::TimeoutNegative.into()));
    }

    fn view(leader: Option<u64>) -> SentinelView {
        SentinelView {
            master_name: "mymaster".into(),
            me: 2,
            leader,
            members: (1..=3)
                .map(|id| SentinelMember {
                    id,
                    ip: "127.0.0.1".into(),
                    port: 6380 + id as u16,
                    offset: 10 * id,
                })
                .collect(),
        }
    }

    fn field(state: &Frame, name: &str) -> String {
        let Frame::Map(pairs) = state else {
            panic!("not a map: {state:?}")
        };
        pairs
            .iter()
            .find(|(k, _)| *k == Frame::bulk(name))
            .map(|(_, v)| match v {
                Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
                other => panic!("{other:?}"),
            })
            .unwrap()
    }

    #[test]
    fn sentinel_answers_the_leader_and_the_other_members() {
        let v = view(Some(3));
        let get = parse_sentinel(&b(&["get-master-addr-by-name", "mymaster"])).unwrap();
        assert_eq!(
            v.answer(&get, None),
            Frame::Array(vec![Frame::bulk("127.0.0.1"), Frame::bulk("6383")])
        );
        let other = parse_sentinel(&b(&["GET-MASTER-ADDR-BY-NAME", "other"])).unwrap();
        assert_eq!(v.answer(&other, None), Frame::NullArray);
        let Frame::Array(masters) = v.answer(&SentinelCommand::Masters, None) else {
            panic!()
        };
        assert_eq!(field(&masters[0], "flags"), "master");
        assert_eq!(field(&masters[0], "num-other-sentinels"), "2");
        let Frame::Array(replicas) = v.answer(&SentinelCommand::Replicas("mymaster".into()), None)
        else {
            panic!()
        };
        let ports: Vec<String> = replicas.iter().map(|r| field(r, "port")).collect();
        assert_eq!(ports, vec!["6381", "6382"]);
        let Frame::Array(sentinels) =
            v.answer(&SentinelCommand::Sentinels("mymaster".into()), None)
        else {
            panic!()
        };
        assert_eq!(sentinels.len(), 2, "every member but this one");
        assert_eq!(
            v.answer(&SentinelCommand::Sentinels("nope".into()), None),
            ReplyError::NoSuchMaster.into()
        );
        // During an election: the last master, marked down.
        let e = view(None);
        assert_eq!(
            e.answer(&get, Some(3)),
            Frame::Array(vec![Frame::bulk("127.0.0.1"), Frame::bulk("6383")])
        );
        let Frame::Array(masters) = e.answer(&SentinelCommand::Masters, Some(3)) else {
            panic!()
        };
        assert_eq!(field(&masters[0], "flags"), "master,s_down,o_down");
        assert_eq!(e.answer(&get, None), Frame::NullArray);
        assert_eq!(
            parse_sentinel(&b(&["foo"])),
            Err(ReplyError::unknown_subcommand("SENTINEL", b"foo").into())
        );
        assert_eq!(
            parse_sentinel(&b(&["masters", "x"])),
            Err(ReplyError::WrongArity {
                name: "sentinel|masters"
            }
            .into())
        );
    }
}
