//! Server commands: PING, ECHO, INFO, CONFIG GET, COMMAND, CLIENT, SELECT, SAVE, BGSAVE,
//! LASTSAVE, QUIT, and AUTH/HELLO (answered by the session). Those with a fixed answer are
//! answered here at parse time; INFO, CONFIG
//! GET and the checkpoint commands are answered by the store owner from its state, with the
//! renderers below.

use bytes::Bytes;

use super::table::{self, CommandSpec};
use super::{exact, glob, wrong_arity, Command, ReplyError};
use crate::resp::{Frame, Protocol};

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
    /// SUBSCRIBE, PUBLISH, PUBSUB, ...
    PubSub(super::pubsub::PubSubCommand),
    /// CLIENT subcommands that read or change the connection's state in the store.
    Client(ClientCommand),
}

/// `CLIENT SETNAME name` (empty: no name), `CLIENT GETNAME`, `CLIENT ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCommand {
    SetName(Bytes),
    GetName,
    Id,
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

/// `CONFIG GET pattern ...`; RESETSTAT and REWRITE do nothing; SET is refused.
pub fn parse_config(_: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    parse_config_sub(rest).map(Command::Server)
}

fn parse_config_sub(rest: &[Bytes]) -> Result<ServerCommand, Frame> {
    match sub(rest).as_slice() {
        b"GET" if rest.len() >= 2 => Ok(ServerCommand::ConfigGet(rest[1..].to_vec())),
        b"GET" => Err(wrong_arity("config|get")),
        b"RESETSTAT" | b"REWRITE" => Ok(ServerCommand::Reply(Frame::ok())),
        b"SET" => parse_config_set(&rest[1..]),
        _ => Err(unknown_sub("CONFIG", rest)),
    }
}

/// `CONFIG SET parameter value [parameter value ...]`: a duplicate parameter is refused, as
/// Redis does; which parameters exist the store decides.
fn parse_config_set(args: &[Bytes]) -> Result<ServerCommand, Frame> {
    if args.is_empty() || !args.len().is_multiple_of(2) {
        return Err(wrong_arity("config|set"));
    }
    let mut pairs: Vec<(String, Bytes)> = Vec::with_capacity(args.len() / 2);
    for pair in args.chunks(2) {
        let name = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
        if pairs.iter().any(|(n, _)| *n == name) {
            return Err(ReplyError::ConfigSetFailed {
                name,
                reason: "duplicate parameter",
            }
            .into());
        }
        pairs.push((name, pair[1].clone()));
    }
    Ok(ServerCommand::ConfigSet(pairs))
}

/// `CLIENT SETNAME | SETINFO | GETNAME | ID | INFO | LIST | ...`: fixed answers.
pub fn parse_client(_: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let client = |cmd| Ok(Command::Server(ServerCommand::Client(cmd)));
    let reply = match sub(rest).as_slice() {
        b"SETNAME" => {
            return match rest {
                [_, name] if valid_client_name(name) => {
                    client(ClientCommand::SetName(name.clone()))
                }
                [_, _] => Err(ReplyError::BadClientName.into()),
                _ => Err(wrong_arity("client|setname")),
            }
        }
        b"GETNAME" if rest.len() == 1 => return client(ClientCommand::GetName),
        b"GETNAME" => return Err(wrong_arity("client|getname")),
        b"ID" if rest.len() == 1 => return client(ClientCommand::Id),
        b"ID" => return Err(wrong_arity("client|id")),
        b"SETINFO" | b"REPLY" | b"NO-EVICT" | b"NO-TOUCH" => Frame::ok(),
        // A verbatim string in RESP3, as Redis 7 answers them.
        b"INFO" | b"LIST" => Frame::verbatim_text(&b"id=1 name= db=0\n"[..]),
        _ => return Err(unknown_sub("CLIENT", rest)),
    };
    Ok(Command::Server(ServerCommand::Reply(reply)))
}

/// The figures INFO reports, gathered by the store owner.
#[derive(Debug, Clone, Default)]
pub struct InfoFigures {
    pub process_id: u32,
    pub tcp_port: u16,
    pub uptime_s: u64,
    pub backend: String,
    pub sync: String,
    pub data_dir: String,
    pub keys: u64,
    /// Keys with a TTL (expired ones not yet deleted included, as Redis counts them).
    pub expires: u64,
    /// Each database holding keys: its number, keys and keys with a TTL.
    pub keyspace: Vec<(u16, u64, u64)>,
    /// Keys deleted because they expired, lazily or by the active cycle.
    pub expired_keys: u64,
    pub last_lsn: u64,
    pub durable_lsn: u64,
    pub log_bytes: u64,
    pub last_checkpoint_lsn: Option<u64>,
    pub last_checkpoint_unix_ms: Option<u64>,
    pub checkpoint_in_progress: bool,
    pub checkpoints_completed: u64,
    pub checkpoints_failed: u64,
    pub fsyncs: u64,
    pub fsync_total_us: u64,
    pub fsync_max_us: u64,
    pub storage_error: Option<String>,
    pub connected_clients: u64,
    pub total_connections: u64,
    /// Channels and patterns with a subscriber.
    pub pubsub_channels: u64,
    pub pubsub_patterns: u64,
    pub total_commands: u64,
    pub total_writes: u64,
    pub recovery: String,
}

/// INFO's text: `# Section` headers and `name:value` lines, CRLF-separated, as Redis does; a
/// verbatim string (`=txt:` in RESP3, a bulk string in RESP2).
pub fn render_info(f: &InfoFigures, sections: &[String]) -> Frame {
    let want = |s: &str| {
        sections.is_empty()
            || sections
                .iter()
                .any(|w| w == s || w == "all" || w == "everything" || w == "default")
    };
    let mut out = String::new();
    let mut section = |name: &str, lines: Vec<(&str, String)>| {
        if want(&name.to_lowercase()) {
            if !out.is_empty() {
                out.push_str("\r\n");
            }
            out.push_str(&format!("# {name}\r\n"));
            for (k, v) in lines {
                out.push_str(&format!("{k}:{v}\r\n"));
            }
        }
    };
    let opt = |v: Option<u64>| v.map_or_else(|| "-1".to_string(), |v| v.to_string());
    section(
        "Server",
        vec![
            ("redis_version", REDIS_VERSION.into()),
            ("moodb_version", env!("CARGO_PKG_VERSION").into()),
            ("process_id", f.process_id.to_string()),
            ("tcp_port", f.tcp_port.to_string()),
            ("uptime_in_seconds", f.uptime_s.to_string()),
            ("backend", f.backend.clone()),
            ("data_dir", f.data_dir.clone()),
            ("recovery", f.recovery.clone()),
        ],
    );
    section(
        "Clients",
        vec![("connected_clients", f.connected_clients.to_string())],
    );
    let avg_us = f.fsync_total_us.checked_div(f.fsyncs).unwrap_or(0);
    section(
        "Persistence",
        vec![
            ("loading", "0".into()),
            ("sync", f.sync.clone()),
            ("aof_enabled", "1".into()),
            ("last_lsn", f.last_lsn.to_string()),
            ("durable_lsn", f.durable_lsn.to_string()),
            ("log_bytes", f.log_bytes.to_string()),
            ("last_checkpoint_lsn", opt(f.last_checkpoint_lsn)),
            ("last_checkpoint_unix_ms", opt(f.last_checkpoint_unix_ms)),
            (
                "rdb_last_save_time",
                opt(f.last_checkpoint_unix_ms.map(|ms| ms / 1000)),
            ),
            (
                "rdb_bgsave_in_progress",
                u8::from(f.checkpoint_in_progress).to_string(),
            ),
            ("checkpoints_completed", f.checkpoints_completed.to_string()),
            ("checkpoints_failed", f.checkpoints_failed.to_string()),
            ("fsync_count", f.fsyncs.to_string()),
            ("fsync_avg_latency_us", avg_us.to_string()),
            ("fsync_max_latency_us", f.fsync_max_us.to_string()),
            (
                "storage_error",
                f.storage_error.clone().unwrap_or_else(|| "none".into()),
            ),
        ],
    );
    section(
        "Stats",
        vec![
            (
                "total_connections_received",
                f.total_connections.to_string(),
            ),
            ("total_commands_processed", f.total_commands.to_string()),
            ("total_writes", f.total_writes.to_string()),
            ("expired_keys", f.expired_keys.to_string()),
            ("pubsub_channels", f.pubsub_channels.to_string()),
            ("pubsub_patterns", f.pubsub_patterns.to_string()),
            ("keys", f.keys.to_string()),
        ],
    );
    let dbs: Vec<(String, String)> = f
        .keyspace
        .iter()
        .map(|(db, keys, expires)| {
            (
                format!("db{db}"),
                format!("keys={keys},expires={expires},avg_ttl=0"),
            )
        })
        .collect();
    section(
        "Keyspace",
        dbs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect(),
    );
    Frame::verbatim_text(out)
}

/// CONFIG GET: a map of name to value (flat in RESP2) for every known parameter matching one
/// of `patterns`.
pub fn render_config_get(params: &[(&str, String)], patterns: &[Bytes]) -> Frame {
    Frame::map(
        params
            .iter()
            .filter(|(name, _)| {
                patterns
                    .iter()
                    .any(|p| glob::matches(&p.to_ascii_lowercase(), name.as_bytes()))
            })
            .map(|(name, value)| (name, Frame::bulk(value))),
    )
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
        let ok = Ok(ServerCommand::Reply(Frame::ok()));
        assert_eq!(server(&["CLIENT", "SETINFO", "LIB-NAME", "redis-rs"]), ok);
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
    fn config_get_matches_patterns() {
        let params = [("save", String::new()), ("appendonly", "yes".into())];
        assert_eq!(
            render_config_get(&params, &req(&["APPEND*"])),
            Frame::map([("appendonly", Frame::bulk("yes"))])
        );
        assert_eq!(
            render_config_get(&params, &req(&["nope"])),
            Frame::Map(vec![])
        );
    }

    #[test]
    fn info_sections_are_selectable() {
        let f = InfoFigures {
            keys: 3,
            fsyncs: 2,
            fsync_total_us: 100,
            ..Default::default()
        };
        let Frame::Verbatim { text: all, .. } = render_info(&f, &[]) else {
            panic!()
        };
        let all = String::from_utf8_lossy(&all).into_owned();
        assert!(all.contains("# Persistence\r\n") && all.contains("fsync_avg_latency_us:50\r\n"));
        let Frame::Verbatim { text: one, .. } = render_info(&f, &["stats".into()]) else {
            panic!()
        };
        let one = String::from_utf8_lossy(&one).into_owned();
        assert!(one.starts_with("# Stats\r\n") && !one.contains("# Server"));
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
