//! CONFIG GET / SET / REWRITE / RESETSTAT: the parameters a client can read and change, by
//! their Redis names, over the store's [`StoreSettings`]. One row per parameter (its name, how
//! to print it, how to parse a new value); CONFIG SET applies every pair to a copy and keeps it
//! only if all succeed, so a bad value changes nothing (Redis's error texts). What changes
//! reaches the sessions, the listener and the WAL writer through the store owner
//! ([`crate::store::Store::take_settings_change`]).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{glob, wrong_arity, Command, ReplyError, ServerCommand};
use crate::backend::SyncPolicy;
use crate::pubsub::NotifyFlags;
use crate::resp::Frame;
use crate::store::{MaxmemoryPolicy, StoreSettings};

/// A subscriber whose unread output passes `hard_bytes`, or stays above `soft_bytes` for
/// `soft_seconds`, is disconnected (0: no such limit); Redis's `client-output-buffer-limit
/// pubsub`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PubSubLimits {
    pub hard_bytes: usize,
    pub soft_bytes: usize,
    pub soft_seconds: u64,
}

impl Default for PubSubLimits {
    /// Redis's defaults: 32 MB hard, 8 MB for 60 s.
    fn default() -> Self {
        PubSubLimits {
            hard_bytes: 32 << 20,
            soft_bytes: 8 << 20,
            soft_seconds: 60,
        }
    }
}

/// `CONFIG GET pattern ...`, `CONFIG SET parameter value ...`, `CONFIG REWRITE`,
/// `CONFIG RESETSTAT`.
pub fn parse_config(
    _: &'static super::table::CommandSpec,
    rest: &[Bytes],
) -> Result<Command, Frame> {
    let sub = rest
        .first()
        .map(|s| s.to_ascii_uppercase())
        .unwrap_or_default();
    let cmd = match sub.as_slice() {
        b"GET" if rest.len() >= 2 => ServerCommand::ConfigGet(rest[1..].to_vec()),
        b"GET" => return Err(wrong_arity("config|get")),
        b"SET" => parse_config_set(&rest[1..])?,
        b"RESETSTAT" if rest.len() == 1 => ServerCommand::ConfigResetStat,
        b"RESETSTAT" => return Err(wrong_arity("config|resetstat")),
        b"REWRITE" if rest.len() == 1 => ServerCommand::ConfigRewrite,
        b"REWRITE" => return Err(wrong_arity("config|rewrite")),
        b"HELP" if rest.len() == 1 => ServerCommand::Reply(Frame::Array(
            HELP.iter().map(|l| Frame::Simple((*l).into())).collect(),
        )),
        b"HELP" => return Err(wrong_arity("config|help")),
        _ => {
            let sub = rest.first().map_or(&b""[..], |s| &s[..]);
            return Err(ReplyError::unknown_subcommand("CONFIG", sub).into());
        }
    };
    Ok(Command::Server(cmd))
}

/// CONFIG HELP, as Redis 7.0 words it.
const HELP: &[&str] = &[
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
    "HELP",
    "    Prints this help.",
];

/// `CONFIG SET parameter value [parameter value ...]`: a duplicate parameter is refused, as
/// Redis does; which parameters exist [`config_set`] decides.
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
                reason: "duplicate parameter".into(),
            }
            .into());
        }
        pairs.push((name, pair[1].clone()));
    }
    Ok(ServerCommand::ConfigSet(pairs))
}

type Getter = fn(&StoreSettings) -> String;
/// Sets the parameter from the value, or says why not (the text after Redis's `- `).
type Setter = fn(&mut StoreSettings, &[u8]) -> Result<(), String>;

/// One parameter: its Redis name, how it prints, how it is set (`None`: immutable).
struct Param {
    name: &'static str,
    get: Getter,
    set: Option<Setter>,
}

const fn param(name: &'static str, get: Getter, set: Option<Setter>) -> Param {
    Param { name, get, set }
}

/// Every parameter, in the order CONFIG GET lists them.
const PARAMS: &[Param] = &[
    param("save", |_| String::new(), None),
    param(
        "appendonly",
        |s| yes_no(s.sync != SyncPolicy::Never).into(),
        None,
    ),
    param(
        "appendfsync",
        |s| appendfsync(s.sync).into(),
        Some(set_appendfsync),
    ),
    param("port", |s| s.port.to_string(), None),
    param("databases", |s| s.databases.to_string(), None),
    param("dir", |s| s.data_dir.display().to_string(), None),
    param(
        "maxmemory",
        |s| s.memory.maxmemory.to_string(),
        Some(|s, v| {
            s.memory.maxmemory = memory(v, 0)?;
            Ok(())
        }),
    ),
    param(
        "maxmemory-policy",
        |s| s.memory.effective_policy().name().into(),
        Some(|s, v| {
            let policy = MaxmemoryPolicy::parse(&String::from_utf8_lossy(v))
                .ok_or("argument(s) must be one of the following: noeviction, spill")?;
            s.memory.policy = Some(policy);
            Ok(())
        }),
    ),
    param(
        "maxmemory-compact-below",
        |s| s.memory.compact_below_percent.to_string(),
        Some(|s, v| {
            s.memory.compact_below_percent = int(v, 0, 100)? as u8;
            Ok(())
        }),
    ),
    param(
        "maxclients",
        |s| s.limits.max_clients.to_string(),
        Some(|s, v| {
            s.limits.max_clients = int(v, 1, u32::MAX.into())? as usize;
            Ok(())
        }),
    ),
    param(
        "timeout",
        |s| s.limits.idle_timeout_s.to_string(),
        Some(|s, v| {
            s.limits.idle_timeout_s = int(v, 0, i32::MAX.into())? as u64;
            Ok(())
        }),
    ),
    param(
        "proto-max-bulk-len",
        |s| s.limits.max_bulk_len.to_string(),
        Some(|s, v| {
            s.limits.max_bulk_len = memory(v, 1 << 20)? as usize;
            Ok(())
        }),
    ),
    param(
        "client-query-buffer-limit",
        |s| s.limits.max_query_buffer.to_string(),
        Some(|s, v| {
            s.limits.max_query_buffer = memory(v, 1 << 20)? as usize;
            Ok(())
        }),
    ),
    param(
        "client-output-buffer-limit",
        output_limits,
        Some(set_output_limits),
    ),
    param(
        "requirepass",
        |s| s.requirepass.clone().unwrap_or_default(),
        Some(|s, v| {
            let text = String::from_utf8_lossy(v).into_owned();
            s.requirepass = (!text.is_empty()).then_some(text);
            Ok(())
        }),
    ),
    param(
        "notify-keyspace-events",
        |s| s.notify_keyspace_events.to_string(),
        Some(|s, v| {
            s.notify_keyspace_events = NotifyFlags::parse(v)
                .ok_or("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")?;
            Ok(())
        }),
    ),
    param(
        "slowlog-log-slower-than",
        |s| s.slowlog_log_slower_than.to_string(),
        Some(|s, v| {
            s.slowlog_log_slower_than = int(v, -1, i64::MAX)?;
            Ok(())
        }),
    ),
    param(
        "slowlog-max-len",
        |s| s.slowlog_max_len.to_string(),
        Some(|s, v| {
            s.slowlog_max_len = int(v, 0, i64::MAX)? as u64;
            Ok(())
        }),
    ),
    param(
        "latency-monitor-threshold",
        |s| s.latency_monitor_threshold.to_string(),
        Some(|s, v| {
            s.latency_monitor_threshold = int(v, 0, i64::MAX)? as u64;
            Ok(())
        }),
    ),
    param("moodb-backend", |s| s.backend.clone(), None),
    param(
        "moodb-sync",
        |s| s.sync.to_string(),
        Some(|s, v| {
            s.sync = String::from_utf8_lossy(v).parse()?;
            Ok(())
        }),
    ),
    param(
        "moodb-checkpoint-log-bytes",
        |s| s.checkpoint.log_bytes.to_string(),
        Some(|s, v| {
            s.checkpoint.log_bytes = memory(v, 0)?;
            Ok(())
        }),
    ),
    param(
        "moodb-checkpoint-interval-ms",
        |s| s.checkpoint.interval_ms.to_string(),
        Some(|s, v| {
            s.checkpoint.interval_ms = int(v, 0, i64::MAX)? as u64;
            Ok(())
        }),
    ),
];

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// Redis's name for the sync policy: `every:<ms>` of any period is `everysec`.
fn appendfsync(p: SyncPolicy) -> &'static str {
    match p {
        SyncPolicy::Always => "always",
        SyncPolicy::Every(_) => "everysec",
        SyncPolicy::Never => "no",
    }
}

fn set_appendfsync(s: &mut StoreSettings, v: &[u8]) -> Result<(), String> {
    s.sync = match v.to_ascii_lowercase().as_slice() {
        b"always" => SyncPolicy::Always,
        b"everysec" => SyncPolicy::Every(std::time::Duration::from_secs(1)),
        b"no" => SyncPolicy::Never,
        _ => return Err("argument(s) must be one of the following: everysec, always, no".into()),
    };
    Ok(())
}

/// Redis's `client-output-buffer-limit`: the normal class is MooDB's `max_output_buffer` (a
/// hard limit only), the pubsub class its Pub/Sub limits; there are no replicas, so the slave
/// class shows Redis's default and cannot be changed.
fn output_limits(s: &StoreSettings) -> String {
    let p = s.pubsub;
    format!(
        "normal {} 0 0 slave {REPLICA_LIMITS} pubsub {} {} {}",
        s.limits.max_output_buffer, p.hard_bytes, p.soft_bytes, p.soft_seconds
    )
}

const REPLICA_LIMITS: &str = "268435456 67108864 60";

fn set_output_limits(s: &mut StoreSettings, v: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(v);
    let words: Vec<&str> = text.split_ascii_whitespace().collect();
    if words.is_empty() || !words.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let bad_value = || "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
    for quad in words.chunks(4) {
        let hard = memtoull(quad[1].as_bytes()).ok_or_else(bad_value)?;
        let soft = memtoull(quad[2].as_bytes()).ok_or_else(bad_value)?;
        let secs: u64 = quad[3].parse().map_err(|_| bad_value())?;
        match quad[0].to_ascii_lowercase().as_str() {
            "normal" => {
                if soft != 0 || secs != 0 {
                    return Err("MooDB's normal class has a hard limit only: soft and \
                                soft_seconds must be 0"
                        .into());
                }
                s.limits.max_output_buffer = hard as usize;
            }
            "pubsub" => {
                s.pubsub = PubSubLimits {
                    hard_bytes: hard as usize,
                    soft_bytes: soft as usize,
                    soft_seconds: secs,
                }
            }
            "slave" | "replica" => {
                if format!("{hard} {soft} {secs}") != REPLICA_LIMITS {
                    return Err("MooDB has no replicas: the slave class cannot be changed".into());
                }
            }
            _ => {
                return Err("Invalid client class specified in buffer limit configuration.".into())
            }
        }
    }
    Ok(())
}

/// An integer parameter in `min..=max` (Redis's texts).
fn int(v: &[u8], min: i64, max: i64) -> Result<i64, String> {
    let n: i64 = std::str::from_utf8(v)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or("argument couldn't be parsed into an integer")?;
    if n < min || n > max {
        return Err(format!(
            "argument must be between {min} and {max} inclusive"
        ));
    }
    Ok(n)
}

/// A memory parameter (`1048576`, `10mb`, `1gb`) of at least `min` bytes.
fn memory(v: &[u8], min: u64) -> Result<u64, String> {
    let n = memtoull(v).ok_or("argument must be a memory value")?;
    if n < min || n > i64::MAX as u64 {
        return Err(format!(
            "argument must be between {min} and {} inclusive",
            i64::MAX
        ));
    }
    Ok(n)
}

/// Redis's `memtoull`: digits with an optional unit `b`, `k` (1000), `kb` (1024), `m`, `mb`,
/// `g`, `gb`, any case.
pub fn memtoull(v: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(v).ok()?.to_ascii_lowercase();
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &text[digits.len()..];
    let mul: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1 << 20,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1 << 30,
        _ => return None,
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(mul)
}

/// CONFIG GET: a map of name to value (flat in RESP2) for every parameter matching one of
/// `patterns` (glob, case-insensitive), each once. A pattern without glob characters names
/// its parameter as the client spelled it, as Redis 7.0 answers (`SLOWLOG-MAX-LEN`).
pub fn config_get(s: &StoreSettings, patterns: &[Bytes]) -> Frame {
    let mut pairs: Vec<(Frame, Frame)> = Vec::new();
    let mut seen = vec![false; PARAMS.len()];
    for pattern in patterns {
        let lower = pattern.to_ascii_lowercase();
        let exact = !pattern.iter().any(|b| b"*?[\\".contains(b));
        for (i, p) in PARAMS.iter().enumerate() {
            let hit = if exact {
                lower == p.name.as_bytes()
            } else {
                glob::matches(&lower, p.name.as_bytes())
            };
            if hit && !seen[i] {
                seen[i] = true;
                let name = if exact {
                    Frame::Bulk(pattern.clone())
                } else {
                    Frame::bulk(p.name)
                };
                pairs.push((name, Frame::bulk((p.get)(s))));
            }
        }
    }
    Frame::Map(pairs)
}

/// CONFIG SET: `settings` with every pair applied, or the error for the first that cannot be
/// (nothing applied then). Besides each value's own range, the limits must fit together as
/// at start-up (`client-query-buffer-limit` above `proto-max-bulk-len`), so CONFIG REWRITE
/// always writes a file the server can start from.
pub fn config_set(
    settings: &StoreSettings,
    pairs: &[(String, Bytes)],
) -> Result<StoreSettings, ReplyError> {
    let mut rows = Vec::with_capacity(pairs.len());
    for (name, _) in pairs {
        let Some(p) = PARAMS.iter().find(|p| p.name == name) else {
            return Err(ReplyError::ConfigSetUnknown { name: name.clone() });
        };
        if p.set.is_none() {
            return Err(ReplyError::ConfigSetFailed {
                name: name.clone(),
                reason: "can't set immutable config".into(),
            });
        }
        rows.push(p);
    }
    let mut next = settings.clone();
    for (p, (name, value)) in rows.iter().zip(pairs) {
        if let Some(set) = p.set {
            set(&mut next, value).map_err(|reason| ReplyError::ConfigSetFailed {
                name: name.clone(),
                reason,
            })?;
        }
    }
    if next.limits.max_query_buffer <= next.limits.max_bulk_len {
        let name = pairs
            .iter()
            .map(|(n, _)| n.clone())
            .find(|n| n == "client-query-buffer-limit" || n == "proto-max-bulk-len")
            .unwrap_or_default();
        return Err(ReplyError::ConfigSetFailed {
            name,
            reason: "client-query-buffer-limit must be larger than proto-max-bulk-len".into(),
        });
    }
    if let Err(reason) = next.memory.check(&next.backend) {
        let name = pairs
            .iter()
            .map(|(n, _)| n.clone())
            .find(|n| n.starts_with("maxmemory"))
            .unwrap_or_default();
        return Err(ReplyError::ConfigSetFailed { name, reason });
    }
    Ok(next)
}

/// Whether CONFIG SET `name`'s value is a secret the slow log must not keep.
pub fn is_secret(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"requirepass")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::test_support::req;
    use crate::store::test_settings;

    fn set(s: &StoreSettings, words: &[&str]) -> Result<StoreSettings, String> {
        let pairs: Vec<(String, Bytes)> = words
            .chunks(2)
            .map(|p| (p[0].to_string(), Bytes::copy_from_slice(p[1].as_bytes())))
            .collect();
        config_set(s, &pairs).map_err(|e| e.to_string())
    }

    #[test]
    fn set_is_all_or_nothing_with_redis_texts() {
        let s = test_settings();
        let next = set(
            &s,
            &["maxclients", "5", "timeout", "7", "appendfsync", "no"],
        )
        .unwrap();
        assert_eq!(next.limits.max_clients, 5);
        assert_eq!(next.limits.idle_timeout_s, 7);
        assert_eq!(next.sync, SyncPolicy::Never);
        assert_eq!(
            set(&s, &["timeout", "5", "maxclients", "x"]).unwrap_err(),
            "ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument couldn't be parsed into an integer"
        );
        assert_eq!(
            set(&s, &["databases", "3"]).unwrap_err(),
            "ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config"
        );
        assert_eq!(
            set(&s, &["nosuch", "1"]).unwrap_err(),
            "ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'"
        );
        assert_eq!(
            set(&s, &["maxclients", "0"]).unwrap_err(),
            "ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument must be between 1 and 4294967295 inclusive"
        );
        assert_eq!(
            set(&s, &["proto-max-bulk-len", "1"]).unwrap_err(),
            "ERR CONFIG SET failed (possibly related to argument 'proto-max-bulk-len') - argument must be between 1048576 and 9223372036854775807 inclusive"
        );
        let next = set(&s, &["proto-max-bulk-len", "10mb"]).unwrap();
        assert_eq!(next.limits.max_bulk_len, 10 << 20);
        assert!(set(&s, &["client-query-buffer-limit", "1mb"]).is_err());
    }

    #[test]
    fn output_buffer_limit_sets_the_pubsub_class() {
        let s = test_settings();
        let next = set(&s, &["client-output-buffer-limit", "pubsub 1mb 512kb 5"]).unwrap();
        assert_eq!(
            next.pubsub,
            PubSubLimits {
                hard_bytes: 1 << 20,
                soft_bytes: 512 << 10,
                soft_seconds: 5
            }
        );
        assert!(output_limits(&next).ends_with("pubsub 1048576 524288 5"));
        assert_eq!(
            set(&s, &["client-output-buffer-limit", "pubsub 1mb 5"]).unwrap_err(),
            "ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - Wrong number of arguments in buffer limit configuration."
        );
    }

    #[test]
    fn get_matches_globs_and_several_patterns() {
        let s = test_settings();
        let Frame::Map(pairs) =
            config_get(&s, &req(&["slowlog*", "MAXCLIENTS", "slowlog-max-len"]))
        else {
            panic!()
        };
        let names: Vec<String> = pairs
            .iter()
            .map(|(k, _)| match k {
                Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
                other => panic!("{other:?}"),
            })
            .collect();
        // In the order asked, each once; an exact name as the client spelled it.
        assert_eq!(
            names,
            ["slowlog-log-slower-than", "slowlog-max-len", "MAXCLIENTS"]
        );
    }

    #[test]
    fn memory_values_use_redis_units() {
        assert_eq!(memtoull(b"1kb"), Some(1024));
        assert_eq!(memtoull(b"1K"), Some(1000));
        assert_eq!(memtoull(b"2GB"), Some(2 << 30));
        assert_eq!(memtoull(b"12"), Some(12));
        assert_eq!(memtoull(b"mb"), None);
        assert_eq!(memtoull(b"-1"), None);
        assert_eq!(memtoull(b"1tb"), None);
    }
}
