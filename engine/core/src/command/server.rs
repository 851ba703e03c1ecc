//! Server commands: PING, ECHO, INFO, CONFIG GET, COMMAND, CLIENT, SELECT, SAVE, BGSAVE,
//! LASTSAVE, QUIT, and AUTH/HELLO (answered by the session). Those with a fixed answer are
//! answered here at parse time; INFO, CONFIG
//! GET and the checkpoint commands are answered by the store owner from its state, with the
//! renderers below.

use bytes::Bytes;

use super::table::{self, CommandSpec};
use super::{exact, glob, wrong_arity, Command, ReplyError};
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
    /// SUBSCRIBE, PUBLISH, PUBSUB, ...
    PubSub(super::pubsub::PubSubCommand),
    /// CLIENT subcommands that read or change the connection's state in the store.
    Client(ClientCommand),
    /// `TIME`: the clock the server passed in.
    Time,
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
