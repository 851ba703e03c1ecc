//! SLOWLOG, LATENCY and WAITAOF: their parsers and the renderers of the store's slow log and
//! latency monitor ([`crate::store::stats`]), in Redis's reply shapes and error texts
//! (WAITAOF is Redis 7.2's; redis-server 7.0 has none to compare with).

use bytes::Bytes;

use super::table::CommandSpec;
use super::{wrong_arity, Command, ReplyError, ServerCommand};
use crate::resp::Frame;
use crate::store::stats::{LatencyMonitor, SlowLog};

/// `SLOWLOG GET [count] | LEN | RESET | HELP`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlowLogCommand {
    /// The newest `count` entries (`None`: all).
    Get(Option<usize>),
    Len,
    Reset,
}

/// `LATENCY LATEST | HISTORY event | RESET [event ...] | DOCTOR | HELP`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LatencyCommand {
    Latest,
    History(Bytes),
    Reset(Vec<Bytes>),
    Doctor,
}

fn upper(rest: &[Bytes]) -> Vec<u8> {
    rest.first()
        .map(|s| s.to_ascii_uppercase())
        .unwrap_or_default()
}

fn help(lines: &[&'static str]) -> Result<Command, Frame> {
    Ok(Command::Server(ServerCommand::Reply(Frame::Array(
        lines.iter().map(|l| Frame::Simple((*l).into())).collect(),
    ))))
}

const SLOWLOG_HELP: &[&str] = &[
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
];

const LATENCY_HELP: &[&str] = &[
    "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HELP",
    "    Prints this help.",
];

/// `SLOWLOG ...`, with Redis 7.0's arity errors per subcommand.
pub fn parse_slowlog(_: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let cmd = |c| Ok(Command::Server(ServerCommand::SlowLog(c)));
    match (upper(rest).as_slice(), rest.len()) {
        (b"GET", 1) => cmd(SlowLogCommand::Get(Some(10))),
        (b"GET", 2) => {
            let count = std::str::from_utf8(&rest[1])
                .ok()
                .and_then(|t| t.parse::<i64>().ok())
                .filter(|n| *n >= -1)
                .ok_or(ReplyError::SlowLogCount)?;
            cmd(SlowLogCommand::Get(usize::try_from(count).ok()))
        }
        // Redis's `slowlog|get` takes any number of words and then refuses the extra ones.
        (b"GET", _) => Err(ReplyError::SubcommandArity {
            command: "SLOWLOG",
            sub: String::from_utf8_lossy(&rest[0]).into_owned(),
        }
        .into()),
        (b"LEN", 1) => cmd(SlowLogCommand::Len),
        (b"LEN", _) => Err(wrong_arity("slowlog|len")),
        (b"RESET", 1) => cmd(SlowLogCommand::Reset),
        (b"RESET", _) => Err(wrong_arity("slowlog|reset")),
        (b"HELP", 1) => help(SLOWLOG_HELP),
        (b"HELP", _) => Err(wrong_arity("slowlog|help")),
        _ => Err(ReplyError::unknown_subcommand("SLOWLOG", &rest[0]).into()),
    }
}

/// `LATENCY ...`, with Redis 7.0's arity errors per subcommand.
pub fn parse_latency(_: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let cmd = |c| Ok(Command::Server(ServerCommand::Latency(c)));
    match (upper(rest).as_slice(), rest.len()) {
        (b"LATEST", 1) => cmd(LatencyCommand::Latest),
        (b"LATEST", _) => Err(wrong_arity("latency|latest")),
        (b"HISTORY", 2) => cmd(LatencyCommand::History(rest[1].clone())),
        (b"HISTORY", _) => Err(wrong_arity("latency|history")),
        (b"RESET", _) => cmd(LatencyCommand::Reset(rest[1..].to_vec())),
        (b"DOCTOR", 1) => cmd(LatencyCommand::Doctor),
        (b"DOCTOR", _) => Err(wrong_arity("latency|doctor")),
        (b"HELP", 1) => help(LATENCY_HELP),
        (b"HELP", _) => Err(wrong_arity("latency|help")),
        _ => Err(ReplyError::unknown_subcommand("LATENCY", &rest[0]).into()),
    }
}

/// `WAITAOF numlocal numreplicas timeout` (Redis 7.2): numlocal 0 or 1, numreplicas at least
/// 0, timeout a non-negative integer of milliseconds.
pub fn parse_waitaof(_: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame> {
    let int = |b: &Bytes| {
        std::str::from_utf8(b)
            .ok()
            .and_then(|t| t.parse::<i64>().ok())
    };
    let numlocal = int(&rest[0]).ok_or(ReplyError::NotInteger)?;
    if !(0..=1).contains(&numlocal) {
        return Err(ReplyError::WaitAofRange.into());
    }
    let numreplicas = int(&rest[1]).ok_or(ReplyError::NotInteger)?;
    if numreplicas < 0 {
        return Err(ReplyError::MustBePositive.into());
    }
    let timeout = int(&rest[2]).ok_or(ReplyError::TimeoutNotInteger)?;
    if timeout < 0 {
        return Err(ReplyError::TimeoutNegative.into());
    }
    Ok(Command::Server(ServerCommand::WaitAof {
        numlocal: numlocal as u8,
        numreplicas: numreplicas as u64,
    }))
}

/// SLOWLOG GET's reply: `[id, unix time, µs, [args], "ip:port", name]` per entry, newest first.
pub fn render_slowlog(log: &SlowLog, count: Option<usize>) -> Frame {
    Frame::Array(
        log.newest(count)
            .map(|e| {
                Frame::Array(vec![
                    Frame::Integer(e.id as i64),
                    Frame::Integer(e.unix_s as i64),
                    Frame::Integer(e.micros as i64),
                    Frame::Array(e.args.iter().cloned().map(Frame::Bulk).collect()),
                    Frame::Bulk(e.addr.clone()),
                    Frame::Bulk(e.name.clone()),
                ])
            })
            .collect(),
    )
}

/// LATENCY LATEST: `[event, unix time, latest ms, max ms]` per event.
pub fn render_latest(m: &LatencyMonitor) -> Frame {
    Frame::Array(
        m.events
            .iter()
            .filter_map(|(name, e)| {
                let (at, ms) = *e.samples.back()?;
                Some(Frame::Array(vec![
                    Frame::bulk(*name),
                    Frame::Integer(at as i64),
                    Frame::Integer(ms as i64),
                    Frame::Integer(e.max_ms as i64),
                ]))
            })
            .collect(),
    )
}

/// LATENCY HISTORY event: `[unix time, ms]` per sample, oldest first.
pub fn render_history(m: &LatencyMonitor, event: &[u8]) -> Frame {
    let samples = m
        .events
        .iter()
        .find(|(name, _)| name.as_bytes().eq_ignore_ascii_case(event))
        .map(|(_, e)| {
            e.samples
                .iter()
                .map(|(at, ms)| {
                    Frame::Array(vec![Frame::Integer(*at as i64), Frame::Integer(*ms as i64)])
                })
                .collect()
        })
        .unwrap_or_default();
    Frame::Array(samples)
}

/// LATENCY DOCTOR, brief: Redis's sentence when nothing was seen, else one line per event
/// with its samples, average and worst (Redis's report also gives advice; this one does not).
pub fn render_doctor(m: &LatencyMonitor, threshold_ms: u64) -> Frame {
    if m.events.is_empty() {
        let text = if threshold_ms == 0 {
            "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis \
             instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in \
             order to enable it. If we weren't in a deep space mission I'd suggest to take a \
             look at https://redis.io/topics/latency-monitor.\n"
        } else {
            "Dave, no latency spike was observed during the lifetime of this Redis instance, \
             not in the slightest bit. I honestly think you ought to sit down calmly, take a \
             stress pill, and think things over.\n"
        };
        return Frame::verbatim_text(text.to_string());
    }
    let mut out = String::from("Dave, I have observed latency spikes in this Redis instance.\n\n");
    for (i, (name, e)) in m.events.iter().enumerate() {
        let n = e.samples.len() as u64;
        let avg = e.samples.iter().map(|(_, ms)| ms).sum::<u64>() / n.max(1);
        let first = e.samples.front().map_or(0, |s| s.0);
        out.push_str(&format!(
            "{}. {name}: {n} latency spikes (average {avg}ms, worst {}ms) since {first} \
             (Unix time); threshold {threshold_ms}ms.\n",
            i + 1,
            e.max_ms
        ));
    }
    Frame::verbatim_text(out)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::req;
    use super::super::{parse, Command};
    use super::*;

    fn server(words: &[&str]) -> Result<ServerCommand, String> {
        match parse(&req(words)) {
            Ok(Command::Server(s)) => Ok(s),
            Ok(other) => panic!("{other:?}"),
            Err(Frame::Error(e)) => Err(e),
            Err(f) => panic!("{f:?}"),
        }
    }

    #[test]
    fn slowlog_and_latency_parse_with_redis_errors() {
        assert_eq!(
            server(&["slowlog", "get"]),
            Ok(ServerCommand::SlowLog(SlowLogCommand::Get(Some(10))))
        );
        assert_eq!(
            server(&["SLOWLOG", "GET", "-1"]),
            Ok(ServerCommand::SlowLog(SlowLogCommand::Get(None)))
        );
        assert_eq!(
            server(&["slowlog", "get", "x"]),
            Err("ERR count should be greater than or equal to -1".into())
        );
        assert_eq!(
            server(&["slowlog", "len", "x"]),
            Err("ERR wrong number of arguments for 'slowlog|len' command".into())
        );
        assert_eq!(
            server(&["slowlog", "foo"]),
            Err("ERR unknown subcommand 'foo'. Try SLOWLOG HELP.".into())
        );
        assert_eq!(
            server(&["latency", "history", "command"]),
            Ok(ServerCommand::Latency(LatencyCommand::History(
                "command".into()
            )))
        );
        assert_eq!(
            server(&["waitaof", "2", "0", "0"]),
            Err("ERR value is out of range, value must between 0 and 1".into())
        );
        assert_eq!(
            server(&["waitaof", "1", "0", "-1"]),
            Err("ERR timeout is negative".into())
        );
        assert_eq!(
            server(&["waitaof", "1", "0", "0"]),
            Ok(ServerCommand::WaitAof {
                numlocal: 1,
                numreplicas: 0
            })
        );
    }
}
