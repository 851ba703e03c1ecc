//! `moodb serve`: loads the configuration (file, then flags), opens and recovers the backend,
//! and runs the server until SIGINT/SIGTERM.

use std::error::Error;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::collections::BTreeMap;
use std::sync::Arc;

use moodb_backends::paper::fs::StdFs;
use moodb_backends::paper::raft_log::{PaperRaftLog, PaperSnapshotCodec};
use moodb_backends::paper::SpareMode;
use moodb_backends::BackendOptions;
use moodb_core::backend::RecoveryReport;
use moodb_core::SyncPolicy;
use moodb_server::config::{Config, EventLoopCpu};
use moodb_server::server::Server;

/// Runs the MooDB server. With no arguments it listens on 127.0.0.1:6380, keeps its data in
/// ./moodb-data and syncs every write before acknowledging it.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Flags override the configuration file, which overrides the defaults.
Once ready it prints `moodb: ready to accept connections at ADDR ...` to stderr, and with
--ready-file PATH it also writes one JSON object to PATH (to PATH.tmp, then renamed):
{\"addr\":\"127.0.0.1:PORT\",\"pid\":N,\"backend\":...,\"sync\":...,\"data_dir\":...,\"recovery\":{...}}."
)]
pub struct Args {
    /// Configuration file (RON); every field is optional.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on (port 0: any free port) [default: 127.0.0.1:6380].
    #[arg(long, value_name = "HOST:PORT")]
    addr: Option<String>,
    /// Directory of the log and checkpoints [default: ./moodb-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// When writes reach the disk: always (before each reply), every:<ms>, never [default: always].
    #[arg(long, value_name = "POLICY")]
    sync: Option<SyncPolicy>,
    /// Storage backend: paper or sled [default: paper].
    #[arg(long, value_name = "NAME")]
    backend: Option<String>,
    /// Checkpoint when the log reaches this many bytes (0: never on size).
    #[arg(long, value_name = "BYTES")]
    checkpoint_log_bytes: Option<u64>,
    /// Checkpoint this often, if there were writes (0: never on time).
    #[arg(long, value_name = "MS")]
    checkpoint_interval_ms: Option<u64>,
    /// Write a checkpoint at most this many bytes per second (0: unpaced) [default: 67108864].
    #[arg(long, value_name = "BYTES")]
    checkpoint_write_rate: Option<u64>,
    /// Start even if the log is damaged in the middle, keeping its valid prefix.
    #[arg(long)]
    salvage: bool,
    /// Number of databases, SELECT 0 to N-1 [default: 16].
    #[arg(long, value_name = "N")]
    databases: Option<usize>,
    /// Clients must AUTH with this password first (other users of the machine can see
    /// command lines: prefer `requirepass` in the configuration file).
    #[arg(long, value_name = "PASSWORD")]
    requirepass: Option<String>,
    /// Listen on a non-loopback address without a password (only on a trusted network).
    #[arg(long)]
    insecure: bool,
    /// Most clients connected at once [default: 10000].
    #[arg(long, value_name = "N")]
    max_clients: Option<usize>,
    /// Disconnect clients idle this many seconds (0: never) [default: 0].
    #[arg(long, value_name = "SECONDS")]
    idle_timeout: Option<u64>,
    /// Bound the key space's memory: past it values spill to disk (or writes get -OOM
    /// under --maxmemory-policy noeviction); Redis's units: 64mb, 1gb [default: 0, no limit].
    #[arg(long, value_name = "BYTES", value_parser = memory_value)]
    maxmemory: Option<u64>,
    /// What happens past --maxmemory: spill (values to disk) or noeviction [default: spill].
    #[arg(long, value_name = "POLICY")]
    maxmemory_policy: Option<String>,
    /// Compact a value segment once its live values fill less than N% of it (0: never)
    /// [default: 33].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=100))]
    maxmemory_compact_below: Option<u8>,
    /// Pin the event loop to a CPU: auto (a single node on two or more CPUs: the last one),
    /// off (on a machine shared with other busy processes), or a CPU number; helper threads
    /// stay free [default: auto].
    #[arg(long, value_name = "auto|off|CPU")]
    event_loop_cpu: Option<EventLoopCpu>,
    /// Once listening, write the address, pid and recovery figures as JSON to this file
    /// (removed at start if it exists).
    #[arg(long, value_name = "PATH")]
    ready_file: Option<PathBuf>,
    /// Cluster mode: this node's id among --peers.
    #[arg(long, value_name = "ID")]
    node_id: Option<u64>,
    /// Cluster mode: where this node listens for its peers [default: its address in --peers].
    #[arg(long, value_name = "HOST:PORT")]
    raft_addr: Option<String>,
    /// Cluster mode: every member, ID=RAFT_ADDR[/CLIENT_ADDR],... (the client address is
    /// where followers forward requests while that node leads; this node's is --addr).
    #[arg(long, value_name = "LIST")]
    peers: Option<String>,
    /// Cluster mode: the secret every member shares (required with --peers; prefer `secret`
    /// in the configuration file, which other users cannot see).
    #[arg(long, value_name = "SECRET")]
    cluster_secret: Option<String>,
    /// Cluster mode: build a raft snapshot (a checkpoint) every N applied entries and purge
    /// the raft log before it [default: 50000].
    #[arg(long, value_name = "N")]
    snapshot_logs: Option<u64>,
    /// Cluster mode: raft log entries kept below the last snapshot [default: 1000].
    #[arg(long, value_name = "N")]
    snapshot_keep_logs: Option<u64>,
    /// Cluster mode: close a raft log segment after this many bytes [default: 64 MiB].
    #[arg(long, value_name = "BYTES")]
    raft_segment_bytes: Option<u64>,
    /// Cluster mode: join a running cluster (never form one); `moodb cluster add-node` on
    /// any member adds this node.
    #[arg(long)]
    join: bool,
}

/// `--peers`: `ID=RAFT_ADDR[/CLIENT_ADDR]`, comma-separated.
fn parse_peers(text: &str) -> Result<BTreeMap<u64, (String, String)>, String> {
    let mut peers = BTreeMap::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (id, addrs) = item
            .split_once('=')
            .ok_or_else(|| format!("--peers: {item:?} is not ID=RAFT_ADDR[/CLIENT_ADDR]"))?;
        let id: u64 = id
            .trim()
            .parse()
            .map_err(|_| format!("--peers: {id:?} is not a node id (a number)"))?;
        let (raft, client) = match addrs.split_once('/') {
            Some((r, c)) => (r.to_string(), c.to_string()),
            None => (addrs.to_string(), String::new()),
        };
        if peers.insert(id, (raft, client)).is_some() {
            return Err(format!("--peers: node {id} is listed twice"));
        }
    }
    Ok(peers)
}

impl Args {
    /// The configuration: defaults, then the file, then the flags.
    fn config(&self) -> Result<Config, Box<dyn Error>> {
        let mut config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        if let Some(addr) = &self.addr {
            config.addr = addr.clone();
        }
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(sync) = self.sync {
            config.sync = sync;
        }
        if let Some(backend) = &self.backend {
            config.backend = backend.clone();
        }
        if let Some(bytes) = self.checkpoint_log_bytes {
            config.checkpoint.log_bytes = bytes;
        }
        if let Some(ms) = self.checkpoint_interval_ms {
            config.checkpoint.interval_ms = ms;
        }
        if let Some(rate) = self.checkpoint_write_rate {
            config.checkpoint.write_rate = rate;
        }
        config.salvage |= self.salvage;
        if let Some(n) = self.databases {
            config.databases = n;
        }
        if let Some(password) = &self.requirepass {
            config.requirepass = Some(password.clone());
        }
        config.insecure |= self.insecure;
        if let Some(n) = self.max_clients {
            config.limits.max_clients = n;
        }
        if let Some(s) = self.idle_timeout {
            config.limits.idle_timeout_s = s;
        }
        if let Some(path) = &self.ready_file {
            config.ready_file = Some(path.clone());
        }
        if let Some(bytes) = self.maxmemory {
            config.maxmemory = bytes;
        }
        if let Some(policy) = &self.maxmemory_policy {
            config.maxmemory_policy = Some(policy.clone());
        }
        if let Some(percent) = self.maxmemory_compact_below {
            config.maxmemory_compact_below = percent;
        }
        if let Some(cpu) = self.event_loop_cpu {
            config.event_loop_cpu = cpu;
        }
        let cluster_flags = self.node_id.is_some()
            || self.raft_addr.is_some()
            || self.peers.is_some()
            || self.cluster_secret.is_some()
            || self.join;
        if cluster_flags {
            let mut c = config.cluster.take().unwrap_or_default();
            if let Some(id) = self.node_id {
                c.node_id = id;
            }
            if let Some(peers) = &self.peers {
                c.peers = parse_peers(peers)?;
                if self.raft_addr.is_none() {
                    if let Some((raft, _)) = c.peers.get(&c.node_id) {
                        c.raft_addr = raft.clone();
                    }
                }
            }
            if let Some(addr) = &self.raft_addr {
                c.raft_addr = addr.clone();
            }
            if let Some(secret) = &self.cluster_secret {
                c.secret = secret.clone();
            }
            if let Some(n) = self.snapshot_logs {
                c.snapshot_logs = n;
            }
            if let Some(n) = self.snapshot_keep_logs {
                c.snapshot_keep_logs = n;
            }
            if let Some(n) = self.raft_segment_bytes {
                c.segment_bytes = n;
            }
            c.join |= self.join;
            if let Some(me) = c.peers.get_mut(&c.node_id) {
                if me.1.is_empty() {
                    me.1 = config.addr.clone();
                }
            }
            config.cluster = Some(c);
        }
        Ok(config)
    }
}

pub fn run(args: Args) -> Result<ExitCode, Box<dyn Error>> {
    let config = args.config()?;
    let config_file = args.config.clone();
    // Before touching the data: a server that must not start should leave no trace.
    config.validate()?;
    let ready_file = config.ready_file.clone();
    if let Some(path) = &ready_file {
        // A file left by an earlier run must not announce this one before it listens.
        remove_stale(path)?;
    }
    if config.cluster.is_some() {
        return run_cluster(config, config_file, ready_file);
    }
    let options = BackendOptions {
        sync: config.sync,
        salvage: config.salvage,
        checkpoint_write_rate: config.checkpoint.write_rate,
    };
    let mut backend = moodb_backends::open(&config.backend, &config.data_dir, &options)?;
    let recovered = backend.recover()?;
    eprintln!("moodb: recovery: {}", recovered.report);
    let report = recovered.report.clone();
    let name = backend.name();
    let (sync, dir) = (config.sync, config.data_dir.clone());
    let server = Server::bind(config, backend, recovered)?.with_config_file(config_file);
    let addr = server.local_addr();
    eprintln!(
        "moodb: ready to accept connections at {addr} (backend {name}, sync {sync}, data {})",
        dir.display()
    );
    if let Some(path) = &ready_file {
        let ready = serde_json::to_string(&ready_info(addr, name, sync, &dir, &report))?;
        write_atomically(path, &ready)?;
    }
    server.run()?;
    Ok(ExitCode::SUCCESS)
}

/// `--maxmemory`'s value: bytes, or Redis's units (b, k, kb, m, mb, g, gb).
fn memory_value(text: &str) -> Result<u64, String> {
    moodb_core::command::config::memtoull(text.as_bytes())
        .ok_or_else(|| format!("{text:?} is not a memory value (bytes, or b, k, kb, m, mb, g, gb)"))
}

/// Cluster mode: opens the raft log in the data directory and runs the node.
fn run_cluster(
    config: Config,
    config_file: Option<PathBuf>,
    ready_file: Option<PathBuf>,
) -> Result<ExitCode, Box<dyn Error>> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        format!(
            "cannot create the data directory {}: {e}",
            config.data_dir.display()
        )
    })?;
    let segment_bytes = config.cluster.as_ref().map_or(
        moodb_backends::paper::raft_log::DEFAULT_SEGMENT_BYTES,
        |c| c.segment_bytes,
    );
    let log = PaperRaftLog::open_tuned(
        Box::new(StdFs),
        &config.data_dir,
        segment_bytes,
        SpareMode::Background,
    )?;
    let recovery = log.recovery().clone();
    eprintln!("moodb: cluster: raft log recovered: {recovery:?}");
    let (sync, dir) = (config.sync, config.data_dir.clone());
    let node = config.cluster.as_ref().map_or(0, |c| c.node_id);
    let server = Server::bind_cluster(config, Box::new(log), Arc::new(PaperSnapshotCodec))?
        .with_config_file(config_file);
    let addr = server.local_addr();
    eprintln!(
        "moodb: ready to accept connections at {addr} (cluster node {node}, backend paper, data {})",
        dir.display()
    );
    if let Some(path) = &ready_file {
        let report = RecoveryReport {
            checkpoint: None,
            checkpoint_keys: 0,
            records_replayed: recovery.entries,
            log_bytes_replayed: 0,
            bytes_truncated: recovery.bytes_truncated,
            salvaged: None,
            elapsed: std::time::Duration::ZERO,
        };
        let ready = serde_json::to_string(&ready_info(addr, "paper", sync, &dir, &report))?;
        write_atomically(path, &ready)?;
    }
    server.run()?;
    Ok(ExitCode::SUCCESS)
}

/// What `--ready-file` receives: where the server listens, who it is, and what recovery did
/// (the figures of the `moodb: recovery:` line, and that line's text as `report`).
#[derive(Debug, serde::Serialize)]
struct Ready {
    addr: String,
    pid: u32,
    backend: String,
    sync: String,
    data_dir: String,
    recovery: ReadyRecovery,
}

/// The figures of a [`RecoveryReport`], flattened for JSON.
#[derive(Debug, serde::Serialize)]
struct ReadyRecovery {
    checkpoint: Option<String>,
    checkpoint_lsn: Option<u64>,
    checkpoint_keys: u64,
    records_replayed: u64,
    log_bytes_replayed: u64,
    bytes_truncated: u64,
    salvaged: Option<String>,
    seconds: f64,
    report: String,
}

fn ready_info(
    addr: SocketAddr,
    backend: &str,
    sync: SyncPolicy,
    data_dir: &Path,
    report: &RecoveryReport,
) -> Ready {
    let checkpoint = report.checkpoint.as_ref();
    Ready {
        addr: addr.to_string(),
        pid: std::process::id(),
        backend: backend.to_string(),
        sync: sync.to_string(),
        data_dir: data_dir.to_string_lossy().into_owned(),
        recovery: ReadyRecovery {
            checkpoint: checkpoint.map(|(path, _)| path.to_string_lossy().into_owned()),
            checkpoint_lsn: checkpoint.map(|(_, lsn)| *lsn),
            checkpoint_keys: report.checkpoint_keys,
            records_replayed: report.records_replayed,
            log_bytes_replayed: report.log_bytes_replayed,
            bytes_truncated: report.bytes_truncated,
            salvaged: report.salvaged.clone(),
            seconds: report.elapsed.as_secs_f64(),
            report: report.to_string(),
        },
    }
}

/// `path` with `.tmp` after its file name.
fn tmp_path(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(".tmp");
    PathBuf::from(name)
}

/// Writes `line` and a newline to `path.tmp` and renames it to `path`, so a reader sees
/// either no file or all of it.
fn write_atomically(path: &Path, line: &str) -> Result<(), Box<dyn Error>> {
    let tmp = tmp_path(path);
    std::fs::write(&tmp, format!("{line}\n"))
        .map_err(|e| format!("cannot write the ready file {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| format!("cannot rename {} to {}: {e}", tmp.display(), path.display()))?;
    Ok(())
}

/// Removes a ready file (and its temporary) left by an earlier run.
fn remove_stale(path: &Path) -> Result<(), Box<dyn Error>> {
    for p in [path.to_path_buf(), tmp_path(path)] {
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(format!("cannot remove the old ready file {}: {e}", p.display()).into())
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

    use std::time::Duration;

    use super::*;

    fn report(checkpoint: Option<(PathBuf, u64)>, keys: u64, replayed: u64) -> RecoveryReport {
        RecoveryReport {
            checkpoint,
            checkpoint_keys: keys,
            records_replayed: replayed,
            log_bytes_replayed: 340,
            bytes_truncated: if replayed > 0 { 7 } else { 0 },
            salvaged: None,
            elapsed: Duration::from_millis(12),
        }
    }

    #[test]
    fn peers_are_id_raft_address_and_optional_client_address() {
        let p = parse_peers("1=127.0.0.1:7101/127.0.0.1:6380, 2=127.0.0.1:7102").unwrap();
        assert_eq!(p[&1], ("127.0.0.1:7101".into(), "127.0.0.1:6380".into()));
        assert_eq!(p[&2], ("127.0.0.1:7102".into(), String::new()));
        assert!(parse_peers("1=a,1=b").unwrap_err().contains("listed twice"));
        assert!(parse_peers("x=a").unwrap_err().contains("not a node id"));
        assert!(parse_peers("127.0.0.1:7101")
            .unwrap_err()
            .contains("ID=RAFT_ADDR"));
    }

    #[test]
    fn the_ready_file_carries_the_recovery_figures() {
        let addr: SocketAddr = "127.0.0.1:4242".parse().unwrap();
        let r = report(Some(("d/ckpt.3".into(), 9)), 4, 12);
        let v = ready_info(addr, "paper", SyncPolicy::Always, Path::new("d"), &r);
        let v = serde_json::to_value(v).unwrap();
        assert_eq!(v["addr"], "127.0.0.1:4242");
        assert_eq!(v["pid"], std::process::id());
        assert_eq!(
            (v["backend"].as_str(), v["sync"].as_str()),
            (Some("paper"), Some("always"))
        );
        assert_eq!(v["data_dir"], "d");
        let rec = &v["recovery"];
        assert_eq!(rec["checkpoint"], "d/ckpt.3");
        assert_eq!(rec["checkpoint_lsn"], 9);
        assert_eq!(rec["checkpoint_keys"], 4);
        assert_eq!(rec["records_replayed"], 12);
        assert_eq!(rec["log_bytes_replayed"], 340);
        assert_eq!(rec["bytes_truncated"], 7);
        assert_eq!(rec["salvaged"], serde_json::Value::Null);
        assert_eq!(rec["seconds"], 0.012);
        assert_eq!(rec["report"], r.to_string());

        let r = report(None, 0, 0);
        let v = ready_info(addr, "sled", SyncPolicy::Never, Path::new("d"), &r);
        let v = serde_json::to_value(v).unwrap();
        assert_eq!(v["recovery"]["checkpoint"], serde_json::Value::Null);
        assert_eq!(v["recovery"]["checkpoint_lsn"], serde_json::Value::Null);
        assert_eq!(v["recovery"]["bytes_truncated"], 0);
    }

    #[test]
    fn the_ready_file_appears_whole_and_replaces_a_stale_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ready.json");
        std::fs::write(&path, "stale").unwrap();
        std::fs::write(tmp_path(&path), "half").unwrap();
        remove_stale(&path).unwrap();
        assert!(!path.exists() && !tmp_path(&path).exists());
        remove_stale(&path).unwrap();
        write_atomically(&path, r#"{"addr":"127.0.0.1:1"}"#).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"addr\":\"127.0.0.1:1\"}\n"
        );
        assert!(!tmp_path(&path).exists());
    }
}
