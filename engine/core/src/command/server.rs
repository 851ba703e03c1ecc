//! Server commands: PING, ECHO, INFO, COMMAND, CLIENT, SELECT, SAVE, BGSAVE, LASTSAVE, QUIT,
//! and AUTH/HELLO (answered by the session). Those with a fixed answer are answered here at
//! parse time; INFO (rendered in `info.rs`), CONFIG (`config.rs`), SLOWLOG / LATENCY /
//! WAITAOF (`diagnostics.rs`) and the checkpoint commands are answered by the store from its
//! state.

use bytes::Bytes;

use super::table::{self, CommandSpec};
use super::{exact, wrong_arity, Command, ReplyError};
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
    /// CONFIG REWRITE: the configuration as it is now into the server's file.
    ConfigRewrite,
    /// CONFIG RESETSTAT: the statistics from zero.
    ConfigResetStat,
    /// SLOWLOG GET / LEN / RESET.
    SlowLog(super::diagnostics::SlowLogCommand),
    /// LATENCY LATEST / HISTORY / RESET / DOCTOR.
    Latency(super::diagnostics::LatencyCommand),
    /// WAITAOF numlocal numreplicas timeout (checked).
    WaitAof { numlocal: u8, numreplicas: u64 },
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
