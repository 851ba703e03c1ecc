//! INFO: the figures the store gathers ([`InfoFigures`]) rendered as Redis 7.0 renders them:
//! `# Section` headers and `name:value` lines, CRLF-separated, sections in Redis's order
//! whatever order they were asked in (`default`, `all`, `everything` or names; unknown names
//! give nothing). Field names and formats are Redis's; figures MooDB cannot have are left out
//! (ARCHITECTURE.md, "Deliberately absent"), MooDB's own are prefixed `moodb_` and come last in
//! their section.

use std::fmt::Write as _;

use super::server::REDIS_VERSION;
use crate::resp::Frame;
use crate::store::host::Resources;
use crate::store::stats::CommandStat;

/// INFO replication: Redis 7.0's fields for a lone master, a master with replicas (one
/// `slaveN` line each) or a replica (`master_host`, `master_port`, link state, offsets), but
/// the backlog figures (there is no backlog: followers catch up from the raft log).
fn replication_lines(f: &InfoFigures) -> Vec<(&'static str, String)> {
    use crate::store::Replication;
    let mut lines: Vec<(&'static str, String)> = Vec::new();
    let offset = match &f.replication {
        None => {
            lines.push(("role", "master".into()));
            lines.push(("connected_slaves", "0".into()));
            f.last_lsn
        }
        Some(Replication::Leader { offset, replicas }) => {
            lines.push(("role", "master".into()));
            lines.push(("connected_slaves", replicas.len().to_string()));
            for (i, r) in replicas.iter().enumerate() {
                let name: &'static str = SLAVE_NAMES.get(i).copied().unwrap_or("slaveN");
                lines.push((
                    name,
                    format!(
                        "ip={},port={},state=online,offset={},lag=0",
                        r.ip, r.port, r.offset
                    ),
                ));
            }
            *offset
        }
        Some(Replication::Follower {
            host,
            port,
            connected,
            offset,
        }) => {
            lines.push(("role", "slave".into()));
            lines.push(("master_host", host.clone()));
            lines.push(("master_port", port.to_string()));
            lines.push((
                "master_link_status",
                if *connected { "up" } else { "down" }.into(),
            ));
            lines.push(("master_last_io_seconds_ago", "0".into()));
            lines.push(("master_sync_in_progress", "0".into()));
            lines.push(("slave_read_repl_offset", offset.to_string()));
            lines.push(("slave_repl_offset", offset.to_string()));
            lines.push(("slave_priority", "100".into()));
            lines.push(("slave_read_only", "1".into()));
            lines.push(("replica_announced", "1".into()));
            lines.push(("connected_slaves", "0".into()));
            *offset
        }
    };
    lines.push(("master_failover_state", "no-failover".into()));
    lines.push(("master_replid", f.run_id.clone()));
    lines.push(("master_replid2", "0".repeat(40)));
    lines.push(("master_repl_offset", offset.to_string()));
    lines.push(("second_repl_offset", "-1".into()));
    let backlog = if f.replication.is_some() { "1" } else { "0" };
    lines.push(("repl_backlog_active", backlog.into()));
    lines
}

/// INFO's names for the first replicas (`slave0`, ...); a cluster has a handful of nodes.
const SLAVE_NAMES: [&str; 8] = [
    "slave0", "slave1", "slave2", "slave3", "slave4", "slave5", "slave6", "slave7",
];

/// The figures INFO reports, gathered by the store.
/// INFO memory's figures of spilled values: keys and bytes on disk (the live bytes), the value
/// segments' files and bytes (stale = segment bytes − live: replaced or deleted values and
/// record headers, until compaction exists), values moved out and read back since start.
#[derive(Debug, Clone, Default)]
pub struct SpillFigures {
    pub spilled_keys: u64,
    pub spilled_bytes: u64,
    pub segments: u64,
    pub segment_bytes: u64,
    pub spilled_total: u64,
    pub read_back: u64,
    /// Values copied out of mostly stale segments, and segments retired, since start.
    pub compacted_values: u64,
    pub retired_segments: u64,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct InfoFigures {
    pub process_id: u32,
    pub run_id: String,
    pub tcp_port: u16,
    pub now_ms: u64,
    pub uptime_s: u64,
    pub backend: String,
    pub sync: String,
    pub aof_enabled: bool,
    pub data_dir: String,
    pub recovery: String,
    // clients
    pub connected_clients: u64,
    pub maxclients: usize,
    // memory
    /// The key space's estimated size ([`crate::store::Store`]'s `used_memory`).
    pub used_memory: u64,
    pub used_memory_peak: u64,
    pub maxmemory: u64,
    pub maxmemory_policy: &'static str,
    /// Values on disk (issue 15): see [`SpillFigures`].
    pub spill: SpillFigures,
    pub resources: Resources,
    // persistence
    pub last_lsn: u64,
    /// Cluster mode: this node's role (`None`: a single node, Redis's lone master).
    pub replication: Option<crate::store::Replication>,
    pub durable_lsn: u64,
    pub log_bytes: u64,
    pub last_checkpoint_lsn: Option<u64>,
    pub last_checkpoint_unix_ms: Option<u64>,
    pub checkpoint_in_progress: bool,
    pub checkpoints_completed: u64,
    pub checkpoints_failed: u64,
    pub last_checkpoint_failed: bool,
    pub fsyncs: u64,
    pub fsync_total_us: u64,
    pub fsync_max_us: u64,
    pub storage_error: Option<String>,
    // stats
    pub total_connections: u64,
    pub total_commands: u64,
    pub ops_per_sec: u64,
    pub expired_keys: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub pubsub_channels: u64,
    pub pubsub_patterns: u64,
    pub total_error_replies: u64,
    pub rejected_calls: u64,
    pub total_writes: u64,
    // commandstats, errorstats
    pub commands: Vec<(String, CommandStat)>,
    pub errors: Vec<(String, u64)>,
    // keyspace
    pub keys: u64,
    /// Keys with a TTL (expired ones not yet deleted included, as Redis counts them).
    pub expires: u64,
    /// Each database holding keys: its number, keys and keys with a TTL.
    pub keyspace: Vec<(u16, u64, u64)>,
}

/// The sections, in Redis 7.0's order, and which sets hold them.
const SECTIONS: &[(&str, Set)] = &[
    ("Server", Set::Default),
    ("Clients", Set::Default),
    ("Memory", Set::Default),
    ("Persistence", Set::Default),
    ("Stats", Set::Default),
    ("Replication", Set::Default),
    ("CPU", Set::Default),
    ("Modules", Set::Default),
    ("Commandstats", Set::All),
    ("Errorstats", Set::Default),
    ("Cluster", Set::Default),
    ("Keyspace", Set::Default),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Set {
    Default,
    All,
}

/// Which sections `asked` (lower case) selects: none asked is `default`.
fn selected(asked: &[String]) -> Vec<&'static str> {
    let default = asked.is_empty();
    let has = |w: &str| asked.iter().any(|a| a == w);
    let all = has("all") || has("everything");
    SECTIONS
        .iter()
        .filter(|(name, set)| {
            all || ((default || has("default")) && *set == Set::Default)
                || has(&name.to_ascii_lowercase())
        })
        .map(|(name, _)| *name)
        .collect()
}

/// Redis's `bytesToHuman`: `943.19K`, `6.31M`, `12B`.
pub fn human_bytes(n: u64) -> String {
    let units = [
        (1u64 << 50, 'P'),
        (1 << 40, 'T'),
        (1 << 30, 'G'),
        (1 << 20, 'M'),
        (1 << 10, 'K'),
    ];
    for (size, unit) in units {
        if n >= size {
            return format!("{:.2}{unit}", n as f64 / size as f64);
        }
    }
    format!("{n}B")
}

fn seconds(us: u64) -> String {
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

/// INFO's text for the sections `asked` (lower case); a verbatim string (`=txt:` in RESP3, a
/// bulk string in RESP2).
pub fn render_info(f: &InfoFigures, asked: &[String]) -> Frame {
    let mut out = String::new();
    for name in selected(asked) {
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        let _ = write!(out, "# {name}\r\n");
        for (k, v) in section(f, name) {
            let _ = write!(out, "{k}:{v}\r\n");
        }
    }
    Frame::verbatim_text(out)
}

fn section(f: &InfoFigures, name: &str) -> Vec<(String, String)> {
    let opt = |v: Option<u64>| v.map_or_else(|| "-1".to_string(), |v| v.to_string());
    let ok = |failed: bool| if failed { "err" } else { "ok" }.to_string();
    let lines: Vec<(&str, String)> = match name {
        "Server" => vec![
            ("redis_version", REDIS_VERSION.into()),
            ("redis_mode", "standalone".into()),
            ("arch_bits", (usize::BITS).to_string()),
            ("process_id", f.process_id.to_string()),
            ("run_id", f.run_id.clone()),
            ("tcp_port", f.tcp_port.to_string()),
            ("server_time_usec", (f.now_ms * 1000).to_string()),
            ("uptime_in_seconds", f.uptime_s.to_string()),
            ("uptime_in_days", (f.uptime_s / 86_400).to_string()),
            ("hz", "10".into()),
            ("configured_hz", "10".into()),
            ("moodb_version", env!("CARGO_PKG_VERSION").into()),
            ("moodb_backend", f.backend.clone()),
            ("moodb_data_dir", f.data_dir.clone()),
            ("moodb_recovery", f.recovery.clone()),
        ],
        "Clients" => vec![
            ("connected_clients", f.connected_clients.to_string()),
            ("maxclients", f.maxclients.to_string()),
            ("blocked_clients", "0".into()),
            ("tracking_clients", "0".into()),
        ],
        "Memory" => {
            let rss = f.resources.rss_bytes;
            let mut v = vec![
                ("used_memory", f.used_memory.to_string()),
                ("used_memory_human", human_bytes(f.used_memory)),
            ];
            if let Some(rss) = rss {
                v.push(("used_memory_rss", rss.to_string()));
                v.push(("used_memory_rss_human", human_bytes(rss)));
            }
            v.push(("used_memory_peak", f.used_memory_peak.to_string()));
            v.push(("used_memory_peak_human", human_bytes(f.used_memory_peak)));
            v.push(("maxmemory", f.maxmemory.to_string()));
            v.push(("maxmemory_human", human_bytes(f.maxmemory)));
            v.push(("maxmemory_policy", f.maxmemory_policy.into()));
            if let (Some(rss), true) = (rss, f.used_memory > 0) {
                v.push((
                    "mem_fragmentation_ratio",
                    format!("{:.2}", rss as f64 / f.used_memory as f64),
                ));
            }
            let sp = &f.spill;
            v.extend([
                ("moodb_spilled_keys", sp.spilled_keys.to_string()),
                ("moodb_spilled_bytes", sp.spilled_bytes.to_string()),
                ("moodb_value_segments", sp.segments.to_string()),
                ("moodb_value_segment_bytes", sp.segment_bytes.to_string()),
                ("moodb_value_live_bytes", sp.spilled_bytes.to_string()),
                (
                    "moodb_value_stale_bytes",
                    sp.segment_bytes.saturating_sub(sp.spilled_bytes).to_string(),
                ),
                ("moodb_values_spilled", sp.spilled_total.to_string()),
                ("moodb_values_read_back", sp.read_back.to_string()),
                ("moodb_values_compacted", sp.compacted_values.to_string()),
                ("moodb_value_segments_retired", sp.retired_segments.to_string()),
                (
                    "moodb_spill_error",
                    sp.last_error.clone().unwrap_or_else(|| "none".into()),
                ),
            ]);
            v
        }
        "Persistence" => {
            let avg_us = f.fsync_total_us.checked_div(f.fsyncs).unwrap_or(0);
            vec![
                ("loading", "0".into()),
                ("async_loading", "0".into()),
                (
                    "rdb_changes_since_last_save",
                    f.last_lsn
                        .saturating_sub(f.last_checkpoint_lsn.unwrap_or(0))
                        .to_string(),
                ),
                (
                    "rdb_bgsave_in_progress",
                    u8::from(f.checkpoint_in_progress).to_string(),
                ),
                (
                    "rdb_last_save_time",
                    opt(f.last_checkpoint_unix_ms.map(|ms| ms / 1000)),
                ),
                ("rdb_last_bgsave_status", ok(f.last_checkpoint_failed)),
                ("rdb_saves", f.checkpoints_completed.to_string()),
                ("aof_enabled", u8::from(f.aof_enabled).to_string()),
                ("aof_last_write_status", ok(f.storage_error.is_some())),
                ("moodb_sync", f.sync.clone()),
                ("moodb_last_lsn", f.last_lsn.to_string()),
                ("moodb_durable_lsn", f.durable_lsn.to_string()),
                ("moodb_log_bytes", f.log_bytes.to_string()),
                ("moodb_last_checkpoint_lsn", opt(f.last_checkpoint_lsn)),
                ("moodb_last_checkpoint_unix_ms", opt(f.last_checkpoint_unix_ms)),
                ("moodb_checkpoints_failed", f.checkpoints_failed.to_string()),
                ("moodb_fsync_count", f.fsyncs.to_string()),
                ("moodb_fsync_avg_latency_us", avg_us.to_string()),
                ("moodb_fsync_max_latency_us", f.fsync_max_us.to_string()),
                (
                    "moodb_storage_error",
                    f.storage_error.clone().unwrap_or_else(|| "none".into()),
                ),
            ]
        }
        "Stats" => vec![
            (
                "total_connections_received",
                f.total_connections.to_string(),
            ),
            ("total_commands_processed", f.total_commands.to_string()),
            ("instantaneous_ops_per_sec", f.ops_per_sec.to_string()),
            ("expired_keys", f.expired_keys.to_string()),
            ("evicted_keys", "0".into()),
            ("keyspace_hits", f.keyspace_hits.to_string()),
            ("keyspace_misses", f.keyspace_misses.to_string()),
            ("pubsub_channels", f.pubsub_channels.to_string()),
            ("pubsub_patterns", f.pubsub_patterns.to_string()),
            ("total_error_replies", f.total_error_replies.to_string()),
            ("moodb_rejected_calls", f.rejected_calls.to_string()),
            ("moodb_total_writes", f.total_writes.to_string()),
        ],
        "Replication" => replication_lines(f),
        "CPU" => {
            let r = &f.resources;
            vec![
                ("used_cpu_sys", seconds(r.cpu_sys_us)),
                ("used_cpu_user", seconds(r.cpu_user_us)),
                ("used_cpu_sys_children", seconds(r.cpu_sys_children_us)),
                ("used_cpu_user_children", seconds(r.cpu_user_children_us)),
            ]
        }
        "Modules" => vec![],
        "Commandstats" => {
            return f
                .commands
                .iter()
                .map(|(name, s)| {
                    let per_call = if s.calls == 0 {
                        0.0
                    } else {
                        s.usec as f64 / s.calls as f64
                    };
                    (
                        format!("cmdstat_{name}"),
                        format!(
                            "calls={},usec={},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}",
                            s.calls, s.usec, s.rejected, s.failed
                        ),
                    )
                })
                .collect()
        }
        "Errorstats" => {
            return f
                .errors
                .iter()
                .map(|(kind, n)| (format!("errorstat_{kind}"), format!("count={n}")))
                .collect()
        }
        "Cluster" => vec![("cluster_enabled", "0".into())],
        "Keyspace" => {
            return f
                .keyspace
                .iter()
                .map(|(db, keys, expires)| {
                    (
                        format!("db{db}"),
                        format!("keys={keys},expires={expires},avg_ttl=0"),
                    )
                })
                .collect()
        }
        _ => vec![],
    };
    lines.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: &InfoFigures, asked: &[&str]) -> String {
        let asked: Vec<String> = asked.iter().map(|s| s.to_string()).collect();
        let Frame::Verbatim { text, .. } = render_info(f, &asked) else {
            panic!()
        };
        String::from_utf8_lossy(&text).into_owned()
    }

    fn headers(t: &str) -> Vec<&str> {
        t.lines().filter(|l| l.starts_with('#')).collect()
    }

    #[test]
    fn sections_come_in_redis_order_from_each_set() {
        let f = InfoFigures::default();
        let default = [
            "# Server",
            "# Clients",
            "# Memory",
            "# Persistence",
            "# Stats",
            "# Replication",
            "# CPU",
            "# Modules",
            "# Errorstats",
            "# Cluster",
            "# Keyspace",
        ];
        assert_eq!(headers(&text(&f, &[])), default);
        assert_eq!(headers(&text(&f, &["default"])), default);
        let all_text = text(&f, &["all"]);
        let all = headers(&all_text);
        assert_eq!(all.len(), 12);
        assert_eq!(all[8], "# Commandstats");
        assert_eq!(headers(&text(&f, &["everything"])), all);
        assert_eq!(
            headers(&text(&f, &["cpu", "server"])),
            ["# Server", "# CPU"]
        );
        assert_eq!(text(&f, &["nosuch"]), "");
    }

    #[test]
    fn command_and_error_stats_use_redis_formats() {
        let f = InfoFigures {
            commands: vec![(
                "get".into(),
                CommandStat {
                    calls: 3,
                    usec: 10,
                    rejected: 1,
                    failed: 0,
                },
            )],
            errors: vec![("ERR".into(), 2)],
            fsyncs: 2,
            fsync_total_us: 100,
            ..Default::default()
        };
        let t = text(&f, &["commandstats", "errorstats", "persistence"]);
        assert!(t.contains(
            "cmdstat_get:calls=3,usec=10,usec_per_call=3.33,rejected_calls=1,failed_calls=0\r\n"
        ));
        assert!(t.contains("errorstat_ERR:count=2\r\n"));
        assert!(t.contains("moodb_fsync_avg_latency_us:50\r\n"));
    }

    #[test]
    fn human_sizes_are_redis_s() {
        assert_eq!(human_bytes(965_824), "943.19K");
        assert_eq!(human_bytes(6_619_136), "6.31M");
        assert_eq!(human_bytes(200), "200B");
    }
}
