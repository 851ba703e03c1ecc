//! Server commands: PING, ECHO, INFO, COMMAND, CLIENT, SELECT, SAVE, BGSAVE, LASTSAVE, QUIT,
//! and AUTH/HELLO (answered by the session). Those with a fixed answer are answered here at
//! parse time; INFO (rendered in `info.rs`), CONFIG (`config.rs`), SLOWLOG / LATENCY /
//! WAITAOF (`diagnostics.rs`) and the checkpoint commands are answered by the store from its
//! state.

use bytes::Bytes;

use super::table::{self, CommandSpec};
use super::{exact, wrong_arity, Command, ReplyError};
use crate::resp::{Frame, Protocol};
use crate::store::clients::{ClientType, KillFilter, ReplyMode};

/// A server command, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerCommand {
    /// A reply that needs no state (PING, ECHO, CLIENT SETNAME, COMMAND, QUIT ...).
    Reply(Frame),
    /// INFO with the sections asked for (lower case; empty means the default set).
    Info(Vec<String>),
    /// CONFIG GET with its patterns.
    ConfigGet(Vec<Bytes>),
    /// SAVE: checkpoint now and reply when it is done.
    Save,
    /// BGSAVE: start a checkpoint and reply at once.
    BgSave,
    /// LASTSAVE: Unix time in seconds of the last checkpoint.
    LastSave,
    /// CONFIG SET with its parameter/value pairs (names in lower case).
    ConfigSet(Vec<(String, Bytes)>),
    /// CONFIG REWRITE: the configuration as it is now into the server's file.
    ConfigRewrite,
    /// CONFIG RESETSTAT: the statistics from zero.
    ConfigResetStat,
    /// SLOWLOG GET / LEN / RESET.
    SlowLog(super::diagnostics::SlowLogCommand),
    /// LATENCY LATEST / HISTORY / RESET / DOCTOR.
    Latency(super::diagnostics::LatencyCommand),
    /// WAITAOF numlocal numreplicas timeout (checked).
    WaitAof {
        numlocal: u8,
        numreplicas: u64,
    },
    /// WAIT numreplicas timeout (checked; timeout in ms, 0 for ever): answered by the store
    /// from the replicas' progress (`store/replica.rs`).
    Wait {
        numreplicas: i64,
        timeout_ms: u64,
    },
    /// SUBSCRIBE, PUBLISH, PUBSUB, ...
    PubSub(super::pubsub::PubSubCommand),
    /// CLIENT subcommands that read or change the connection's state in the store.
    Client(ClientCommand),
    /// `TIME`: the clock the server passed in.
    Time,
    /// `ROLE`: this node's part in replication (the store answers from what its caller told
    /// it, [`crate::store::Replication`]).
    Role,
    /// `READONLY` (true) / `READWRITE` (false). Only a cluster node has them (Redis without
    /// cluster support refuses both); the server's cluster glue keeps the session's mode, and
    /// answers a READONLY session's reads on a follower from the follower's own store.
    ReadOnly(bool),
    /// `RESET`: the store's part (the session resets the protocol and authentication).
    Reset,
    /// `MONITOR`.
    Monitor,
    Shutdown(ShutdownMode),
}

/// The CLIENT subcommands answered from the store's client registry
/// (`store/clients.rs`), parsed and checked as Redis 7 checks them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCommand {
    /// `CLIENT SETNAME name` (empty: no name).
    SetName(Bytes),
    GetName,
    Id,
    Info,
    /// `CLIENT LIST [TYPE type | ID id ...]`.
    List {
        kind: Option<ClientType>,
        ids: Option<Vec<i64>>,
    },
    /// `CLIENT SETINFO LIB-NAME | LIB-VER value` (Redis 7.2; empty: none).
    SetInfo {
        lib_ver: bool,
        value: Bytes,
    },
    /// `CLIENT KILL ip:port` or `CLIENT KILL filter value ...`.
    Kill(KillFilter),
    Reply(ReplyMode),
    NoEvict(bool),
    /// `CLIENT NO-TOUCH ON | OFF` (Redis 7.2; MooDB keeps no access times, so only the flag).
    NoTouch(bool),
}

/// `SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE]`: whether to checkpoint first (`SAVE` or neither:
/// MooDB's persistence is always on, as Redis saves when save points are configured).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownMode {
    pub save: bool,
    /// `FORCE`: exit even if the checkpoint fails.
    pub force: bool,
}

fn reply(f: Frame) -> Result<Command, Frame> {
    Ok(Command::Server(ServerCommand::Reply(f)))
}

/// `PING [message]`.
pub fn parse_ping(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    match rest {
        [] => reply(Frame::Simple("PONG".into())),
        [msg] => reply(Frame::Bulk(msg.clone())),
        _ => Err(wrong_arity(spec.name)),
    }
}

/// `ECHO message`.
pub fn parse_echo(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let [msg] = exact(spec, rest)?;
    reply(Frame::Bulk(msg.clone()))
}

/// `QUIT`: answered by the session; a store owner that gets one answers `+OK`.
pub fn parse_quit(_: &'static CommandSpec, _: &[Bytes]) -> Result<Command, Frame> {
    reply(Frame::ok())
}

/// `AUTH`: answered by the session, never by the store owner.
pub fn parse_auth(spec: &'static CommandSpec, _: &[Bytes]) -> Result<Command, Frame> {
    Err(ReplyError::SessionOnly { name: spec.name }.into())
}

/// `HELLO`: answered by the session (it holds the connection's protocol, its name and whether
/// it has authenticated), with [`hello_version`], [`hello_options`] and [`hello_reply`]; a
/// store owner that gets one refuses it.
pub fn parse_hello(spec: &'static CommandSpec, _: &[Bytes]) -> Result<Command, Frame> {
    Err(ReplyError::SessionOnly { name: spec.name }.into())
}

/// The Redis version MooDB answers as (INFO's `redis_version`, HELLO's `version`).
pub const REDIS_VERSION: &str = "7.0.0";

/// HELLO's `protover` (the first argument after HELLO, if any): `None` when absent (keep the
/// connection's protocol). Redis 7.0's checks: a decimal integer without sign or leading
/// zero, then 2 or 3.
pub fn hello_version(rest: &[Bytes]) -> Result<Option<Protocol>, ReplyError> {
    let Some(version) = rest.first() else {
        return Ok(None);
    };
    let canonical = std::str::from_utf8(version)
        .ok()
        .and_then(|t| t.parse::<i64>().ok().filter(|n| n.to_string() == t));
    let Some(n) = canonical else {
        return Err(ReplyError::HelloBadVersion);
    };
    Protocol::from_version(n)
        .map(Some)
        .ok_or(ReplyError::NoProto)
}

/// One option of HELLO, in the order sent; Redis 7.0 applies each as it reads it, so an
/// error stops there and what came before it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelloOption<'a> {
    /// `AUTH username password`.
    Auth { user: &'a Bytes, pass: &'a Bytes },
    /// `SETNAME clientname` (already checked: no spaces or special characters).
    SetName(&'a Bytes),
}

/// The options after HELLO's `protover` (`rest` is everything after HELLO): each one, or the
/// error that stops the command.
pub fn hello_options(rest: &[Bytes]) -> impl Iterator<Item = Result<HelloOption<'_>, ReplyError>> {
    let mut args = rest.get(1..).unwrap_or_default();
    std::iter::from_fn(move || {
        let (opt, more) = args.split_first()?;
        let option = if opt.eq_ignore_ascii_case(b"AUTH") && more.len() >= 2 {
            args = &more[2..];
            Ok(HelloOption::Auth {
                user: &more[0],
                pass: &more[1],
            })
        } else if opt.eq_ignore_ascii_case(b"SETNAME") && !more.is_empty() {
            args = &more[1..];
            if valid_client_name(&more[0]) {
                Ok(HelloOption::SetName(&more[0]))
            } else {
                Err(ReplyError::BadClientName)
            }
        } else {
            Err(ReplyError::HelloSyntax {
                option: String::from_utf8_lossy(opt).into_owned(),
            })
        };
        if option.is_err() {
            args = &[];
        }
        Some(option)
    })
}

/// A client name is printable ASCII without spaces (Redis' `validateClientName`).
pub fn valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|b| (b'!'..=b'~').contains(b))
}

/// HELLO's answer: the server map, as Redis 7.0 gives it (a map in RESP3, a flat array in
/// RESP2), for connection `id` now speaking `proto`.
pub fn hello_reply(id: u64, proto: Protocol) -> Frame {
    Frame::map([
        ("server", Frame::bulk("redis")),
        ("version", Frame::bulk(REDIS_VERSION)),
        ("proto", Frame::Integer(proto.version())),
        ("id", Frame::Integer(i64::try_from(id).unwrap_or(i64::MAX))),
        ("mode", Frame::bulk("standalone")),
        ("role", Frame::bulk("master")),
        ("modules", Frame::Array(Vec::new())),
    ])
}

/// `INFO [section ...]`.
pub fn parse_info(_: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    Ok(Command::Server(ServerCommand::Info(
        rest.iter()
            .map(|s| String::from_utf8_lossy(s).to_lowercase())
            .collect(),
    )))
}

/// `SAVE`.
pub fn parse_save(_: &'static CommandSpec, _: &[Bytes]) -> Result<Command, Frame> {
    Ok(Command::Server(ServerCommand::Save))
}

/// `BGSAVE [SCHEDULE]` (any one word is accepted, unlike Redis).
pub fn parse_bgsave(_: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    if rest.len() > 1 {
        return Err(ReplyError::Syntax.into());
    }
    Ok(Command::Server(ServerCommand::BgSave))
}

/// `LASTSAVE`.
pub fn parse_lastsave(_: &'static CommandSpec, _: &[Bytes]) -> Result<Command, Frame> {
    Ok(Command::Server(ServerCommand::LastSave))
}

/// `COMMAND [COUNT | LIST | INFO name ... | DOCS [name ...]]`, from the command table.
pub fn parse_command(_: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    table::render_command(rest).and_then(reply)
}

/// `ERR unknown subcommand 'x'. Try CONFIG HELP.`
fn unknown_sub(command: &'static str, rest: &[Bytes]) -> Frame {
    let sub = rest.first().map_or(&b""[..], |s| &s[..]);
    ReplyError::unknown_subcommand(command, sub).into()
}

fn sub(rest: &[Bytes]) -> Vec<u8> {
    rest.first()
        .map(|s| s.to_ascii_uppercase())
        .unwrap_or_default()
}

/// `CLIENT subcommand ...`: every subcommand's arity and arguments are checked here, as Redis
/// 7 checks them; the store answers from its client registry.
pub fn parse_client(_: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let client = |cmd| Ok(Command::Server(ServerCommand::Client(cmd)));
    // Arity of each subcommand (the words after CLIENT included, as Redis counts them).
    let arity = |name: &'static str, n: i64| {
        let argc = rest.len() as i64 + 1;
        let fits = if n >= 0 { argc == n } else { argc >= -n };
        if fits {
            Ok(())
        } else {
            Err(wrong_arity(name))
        }
    };
    let on_off = |v: &Bytes| {
        if v.eq_ignore_ascii_case(b"on") {
            Ok(true)
        } else if v.eq_ignore_ascii_case(b"off") {
            Ok(false)
        } else {
            Err(Frame::from(ReplyError::Syntax))
        }
    };
    match sub(rest).as_slice() {
        b"SETNAME" => {
            arity("client|setname", 3)?;
            if valid_client_name(&rest[1]) {
                client(ClientCommand::SetName(rest[1].clone()))
            } else {
                Err(ReplyError::BadClientName.into())
            }
        }
        b"GETNAME" => arity("client|getname", 2).and_then(|()| client(ClientCommand::GetName)),
        b"ID" => arity("client|id", 2).and_then(|()| client(ClientCommand::Id)),
        b"INFO" => arity("client|info", 2).and_then(|()| client(ClientCommand::Info)),
        b"LIST" => {
            arity("client|list", -2)?;
            parse_client_list(&rest[1..]).and_then(client)
        }
        b"SETINFO" => {
            arity("client|setinfo", 4)?;
            let (attr, value) = (&rest[1], &rest[2]);
            let text = || String::from_utf8_lossy(attr).into_owned();
            let lib_ver = if attr.eq_ignore_ascii_case(b"lib-name") {
                false
            } else if attr.eq_ignore_ascii_case(b"lib-ver") {
                true
            } else {
                return Err(ReplyError::SetInfoOption { attr: text() }.into());
            };
            if !valid_client_name(value) {
                return Err(ReplyError::SetInfoChars { attr: text() }.into());
            }
            client(ClientCommand::SetInfo {
                lib_ver,
                value: value.clone(),
            })
        }
        b"KILL" => {
            arity("client|kill", -3)?;
            parse_client_kill(&rest[1..]).and_then(client)
        }
        b"REPLY" => {
            arity("client|reply", 3)?;
            let mode = match rest[1].to_ascii_uppercase().as_slice() {
                b"ON" => ReplyMode::On,
                b"OFF" => ReplyMode::Off,
                b"SKIP" => ReplyMode::SkipNext,
                _ => return Err(ReplyError::Syntax.into()),
            };
            client(ClientCommand::Reply(mode))
        }
        b"NO-EVICT" => {
            arity("client|no-evict", 3)?;
            client(ClientCommand::NoEvict(on_off(&rest[1])?))
        }
        b"NO-TOUCH" => {
            arity("client|no-touch", 3)?;
            client(ClientCommand::NoTouch(on_off(&rest[1])?))
        }
        _ => Err(unknown_sub("CLIENT", rest)),
    }
}

/// The arguments after `CLIENT LIST`.
fn parse_client_list(args: &[Bytes]) -> Result<ClientCommand, Frame> {
    match args {
        [] => Ok(ClientCommand::List {
            kind: None,
            ids: None,
        }),
        [word, name] if word.eq_ignore_ascii_case(b"type") => Ok(ClientCommand::List {
            kind: Some(client_type(name)?),
            ids: None,
        }),
        [word, ids @ ..] if word.eq_ignore_ascii_case(b"id") && !ids.is_empty() => {
            let ids = ids
                .iter()
                .map(|id| parse_i64(id).ok_or(ReplyError::InvalidClientId))
                .collect::<Result<Vec<i64>, ReplyError>>()?;
            Ok(ClientCommand::List {
                kind: None,
                ids: Some(ids),
            })
        }
        _ => Err(ReplyError::Syntax.into()),
    }
}

fn client_type(name: &Bytes) -> Result<ClientType, Frame> {
    ClientType::parse(name).ok_or_else(|| {
        ReplyError::UnknownClientType {
            name: String::from_utf8_lossy(name).into_owned(),
        }
        .into()
    })
}

/// A decimal integer as Redis's `string2ll` reads it.
fn parse_i64(b: &[u8]) -> Option<i64> {
    let t = std::str::from_utf8(b).ok()?;
    t.parse::<i64>().ok().filter(|n| n.to_string() == t)
}

/// The arguments after `CLIENT KILL`: the old form `ip:port`, or filter/value pairs.
fn parse_client_kill(args: &[Bytes]) -> Result<ClientCommand, Frame> {
    if let [addr] = args {
        return Ok(ClientCommand::Kill(KillFilter {
            addr: Some(addr.clone()),
            old_form: true,
            ..KillFilter::default()
        }));
    }
    let mut filter = KillFilter {
        skipme: true,
        ..KillFilter::default()
    };
    let mut i = 0;
    while i < args.len() {
        let Some(value) = args.get(i + 1) else {
            return Err(ReplyError::Syntax.into());
        };
        match args[i].to_ascii_lowercase().as_slice() {
            b"id" => {
                let id = parse_i64(value)
                    .filter(|&id| id >= 1)
                    .ok_or(ReplyError::ClientIdRange)?;
                filter.id = Some(id as u64);
            }
            b"type" => filter.kind = Some(client_type(value)?),
            b"addr" => filter.addr = Some(value.clone()),
            b"laddr" => filter.laddr = Some(value.clone()),
            // One user, `default`: it matches every client.
            b"user" if &value[..] == b"default" => {}
            b"user" => {
                return Err(ReplyError::NoSuchUser {
                    name: String::from_utf8_lossy(value).into_owned(),
                }
                .into())
            }
            b"skipme" if value.eq_ignore_ascii_case(b"yes") => filter.skipme = true,
            b"skipme" if value.eq_ignore_ascii_case(b"no") => filter.skipme = false,
            _ => return Err(ReplyError::Syntax.into()),
        }
        i += 2;
    }
    Ok(ClientCommand::Kill(filter))
}

/// `TIME`.
pub fn parse_time(_: &'static CommandSpec, _: &[Bytes]) -> Result<Command, Frame> {
    Ok(Command::Server(ServerCommand::Time))
}

/// `RAFT STATUS | ADD-NODE id raft-addr client-addr | REMOVE-NODE id`: checked here; the
/// store owner of a node in cluster mode answers it (`actors/store_owner/cluster.rs`)
/// before it reaches the store, so what reaches the store is a single node's (or a
/// pipelined) RAFT, answered with an error.
pub fn parse_raft(_: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let sub = String::from_utf8_lossy(&rest[0]).into_owned();
    let want = match sub.to_ascii_lowercase().as_str() {
        "help" => {
            let lines = [
                "RAFT <subcommand> [<arg> ...]. Subcommands are:",
                "STATUS",
                "    Leader, term, commit index, and each node's last log index and lag.",
                "ADD-NODE <id> <raft-addr> <client-addr>",
                "    Add a node started with --join: a learner until caught up, then a voter.",
                "REMOVE-NODE <id>",
                "    Remove a node from the membership.",
            ];
            return Ok(Command::Server(ServerCommand::Reply(Frame::Array(
                lines.iter().map(|l| Frame::Simple((*l).into())).collect(),
            ))));
        }
        "status" => 1,
        "add-node" => 4,
        "remove-node" => 2,
        _ => {
            return Err(ReplyError::UnknownSubcommand {
                command: "RAFT",
                sub,
            }
            .into())
        }
    };
    if rest.len() != want {
        return Err(ReplyError::SubcommandArity {
            command: "RAFT",
            sub,
        }
        .into());
    }
    Ok(Command::Server(ServerCommand::Reply(
        ReplyError::RaftUnavailable.into(),
    )))
}

/// Redis 7.0's CLUSTER subcommands: each is answered as a redis-server without
/// `cluster-enabled` answers it (MooDB is no Redis Cluster; its own is `RAFT`).
const REDIS_CLUSTER_SUBS: &[&str] = &[
    "addslots",
    "addslotsrange",
    "bumpepoch",
    "count-failure-reports",
    "countkeysinslot",
    "delslots",
    "delslotsrange",
    "failover",
    "flushslots",
    "forget",
    "getkeysinslot",
    "help",
    "info",
    "keyslot",
    "links",
    "meet",
    "myid",
    "nodes",
    "replicas",
    "replicate",
    "reset",
    "saveconfig",
    "set-config-epoch",
    "setslot",
    "shards",
    "slaves",
    "slots",
];

/// `CLUSTER sub ...`: `-ERR This instance has cluster support disabled`, as Redis without
/// cluster support; the subcommands clients probe (INFO, MYID, NODES, SHARDS, SLOTS) have
/// their arity checked first, an unknown one is Redis's unknown-subcommand error.
pub fn parse_cluster(_: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let sub = rest[0].to_ascii_lowercase();
    let probed: Option<&'static str> = match sub.as_slice() {
        b"info" => Some("cluster|info"),
        b"myid" => Some("cluster|myid"),
        b"nodes" => Some("cluster|nodes"),
        b"shards" => Some("cluster|shards"),
        b"slots" => Some("cluster|slots"),
        _ => None,
    };
    if let Some(name) = probed {
        if rest.len() != 1 {
            return Err(wrong_arity(name));
        }
    } else if !REDIS_CLUSTER_SUBS
        .iter()
        .any(|s| s.as_bytes() == sub.as_slice())
    {
        return Err(ReplyError::unknown_subcommand("CLUSTER", &rest[0]).into());
    }
    Ok(Command::Server(ServerCommand::Reply(
        ReplyError::ClusterDisabled.into(),
    )))
}

/// `READONLY`: in cluster mode, this connection's reads may be answered by a follower from
/// its own store ([`ServerCommand::ReadOnly`]).
pub fn parse_readonly(_: &'static CommandSpec, _: &[Bytes]) -> Result<Command, Frame> {
    Ok(Command::Server(ServerCommand::ReadOnly(true)))
}

/// `READWRITE`: back to every request going to the leader.
pub fn parse_readwrite(_: &'static CommandSpec, _: &[Bytes]) -> Result<Command, Frame> {
    Ok(Command::Server(ServerCommand::ReadOnly(false)))
}

/// `ROLE`.
pub fn parse_role(_: &'static CommandSpec, _: &[Bytes]) -> Result<Command, Frame> {
    Ok(Command::Server(ServerCommand::Role))
}

/// `RESET`: the session resets its own part (protocol, authentication) and sends it on.
pub fn parse_reset(_: &'static CommandSpec, _: &[Bytes]) -> Result<Command, Frame> {
    Ok(Command::Server(ServerCommand::Reset))
}

/// `MONITOR`.
pub fn parse_monitor(_: &'static CommandSpec, _: &[Bytes]) -> Result<Command, Frame> {
    Ok(Command::Server(ServerCommand::Monitor))
}

/// `SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE] [ABORT]`, with Redis 7.0's checks; ABORT answers
/// that no shutdown is in progress (one never waits here).
pub fn parse_shutdown(_: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let (mut nosave, mut save, mut force, mut abort, mut now) = (false, false, false, false, false);
    for arg in rest {
        match arg.to_ascii_lowercase().as_slice() {
            b"nosave" => nosave = true,
            b"save" => save = true,
            b"now" => now = true,
            b"force" => force = true,
            b"abort" => abort = true,
            _ => return Err(ReplyError::Syntax.into()),
        }
    }
    if (abort && (nosave || save || now || force)) || (nosave && save) {
        return Err(ReplyError::Syntax.into());
    }
    if abort {
        return Err(ReplyError::NoShutdown.into());
    }
    Ok(Command::Server(ServerCommand::Shutdown(ShutdownMode {
        save: !nosave,
        force,
    })))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::req;
    use super::super::{parse as parse_request, Command};
    use super::*;

    fn server(words: &[&str]) -> Result<ServerCommand, Frame> {
        match parse_request(&req(words)) {
            Ok(Command::Server(s)) => Ok(s),
            Ok(other) => panic!("{other:?}"),
            Err(f) => Err(f),
        }
    }

    #[test]
    fn what_real_clients_send_is_answered() {
        assert_eq!(
            server(&["CLIENT", "SETINFO", "LIB-NAME", "redis-rs"]),
            Ok(ServerCommand::Client(ClientCommand::SetInfo {
                lib_ver: false,
                value: Bytes::from_static(b"redis-rs")
            }))
        );
        // CLIENT SETNAME / GETNAME / ID are answered by the store from the connection's state.
        assert_eq!(
            server(&["client", "setname", "x"]),
            Ok(ServerCommand::Client(ClientCommand::SetName(
                Bytes::from_static(b"x")
            )))
        );
        assert_eq!(
            server(&["CLIENT", "GETNAME"]),
            Ok(ServerCommand::Client(ClientCommand::GetName))
        );
        assert_eq!(
            server(&["ping"]),
            Ok(ServerCommand::Reply(Frame::Simple("PONG".into())))
        );
        // COMMAND DOCS used to be empty; it now documents every command (see table.rs).
        assert!(matches!(
            server(&["COMMAND", "DOCS"]),
            Ok(ServerCommand::Reply(Frame::Map(v))) if v.len() == table::TABLE.len()
        ));
        assert!(matches!(
            server(&["command"]),
            Ok(ServerCommand::Reply(Frame::Array(v))) if v.len() == table::TABLE.len()
        ));
        assert_eq!(
            server(&["config", "get", "save"]),
            Ok(ServerCommand::ConfigGet(req(&["save"])))
        );
    }

    #[test]
    fn hello_checks_its_version_then_its_options_in_order() {
        let v = |words: &[&str]| hello_version(&req(words));
        assert_eq!(v(&[]), Ok(None));
        assert_eq!(v(&["2"]), Ok(Some(Protocol::Resp2)));
        assert_eq!(v(&["3", "AUTH"]), Ok(Some(Protocol::Resp3)));
        for bad in ["4", "1", "0", "-1"] {
            assert_eq!(v(&[bad]), Err(ReplyError::NoProto), "{bad}");
        }
        // Redis' string2ll: no sign, no leading zero, no spaces, in range.
        for bad in ["x", "03", "+3", " 3", "", "99999999999999999999"] {
            assert_eq!(v(&[bad]), Err(ReplyError::HelloBadVersion), "{bad:?}");
        }
        let opts = |words: &[&str]| -> Vec<Result<String, String>> {
            let args = req(words);
            hello_options(&args)
                .map(|o| {
                    o.map(|o| format!("{o:?}").replace("b\"", "\""))
                        .map_err(|e| e.to_string())
                })
                .collect()
        };
        assert_eq!(opts(&["3"]), Vec::<Result<String, String>>::new());
        assert_eq!(
            opts(&["3", "auth", "default", "pw", "SetName", "app"]),
            vec![
                Ok("Auth { user: \"default\", pass: \"pw\" }".into()),
                Ok("SetName(\"app\")".into())
            ]
        );
        // An error stops the list; what came before it stands.
        assert_eq!(
            opts(&["3", "SETNAME", "a", "AUTH", "default"]),
            vec![
                Ok("SetName(\"a\")".into()),
                Err("ERR Syntax error in HELLO option 'AUTH'".into())
            ]
        );
        assert_eq!(
            opts(&["3", "SETNAME"]),
            vec![Err("ERR Syntax error in HELLO option 'SETNAME'".into())]
        );
        assert_eq!(
            opts(&["3", "SETNAME", "a b", "AUTH", "default", "pw"]),
            vec![Err(
                "ERR Client names cannot contain spaces, newlines or special characters.".into()
            )]
        );
    }

    #[test]
    fn hello_answers_the_server_map() {
        let reply = hello_reply(7, Protocol::Resp3);
        assert_eq!(
            reply,
            Frame::map([
                ("server", Frame::bulk("redis")),
                ("version", Frame::bulk("7.0.0")),
                ("proto", Frame::Integer(3)),
                ("id", Frame::Integer(7)),
                ("mode", Frame::bulk("standalone")),
                ("role", Frame::bulk("master")),
                ("modules", Frame::Array(vec![])),
            ])
        );
        assert!(
            matches!(hello_reply(7, Protocol::Resp2), Frame::Map(p) if p[2].1 == Frame::Integer(2))
        );
    }
}
