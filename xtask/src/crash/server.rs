//! Starting, killing and restarting the server under test (`moodb serve`, or `redis-server` as a
//! known-good baseline), and what it reports about its recovery. moodb is started through the
//! shared harness (`moodb_tests::Launch`: `--ready-file` JSON, bounded wait, output captured);
//! redis-server is ready when it answers PING.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use moodb_tests::linearizability::client::{Conn, Dialect, Reply};
use moodb_tests::{Launch, Launched, Process};

use super::CrashError;

/// Which server the harness drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    Moodb,
    Redis,
}

impl Target {
    pub fn dialect(self) -> Dialect {
        match self {
            Target::Moodb => Dialect::Moodb,
            Target::Redis => Dialect::Redis,
        }
    }
}

/// How the server is started: everything but the data directory.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub target: Target,
    pub moodb_bin: std::path::PathBuf,
    pub backend: String,
    /// `always`, `every:<ms>` or `never`.
    pub sync: String,
    pub checkpoint_log_bytes: u64,
    pub checkpoint_interval_ms: u64,
    /// Extra environment (e.g. `MOODB_FAILPOINTS`).
    pub env: Vec<(String, String)>,
    /// moodb's `--maxmemory`, if set.
    pub maxmemory: Option<String>,
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    process: Process,
    pub addr: SocketAddr,
    /// What it reported about recovery at start-up (moodb's ready file, or redis' lines).
    pub recovery: Recovery,
}

/// What the server reported about its recovery.
#[derive(Debug, Clone, Default)]
pub struct Recovery {
    /// The report text (empty if the server printed none).
    pub report: String,
    /// Bytes of torn tail truncated (redis: 1 if it says it truncated).
    pub truncated_bytes: u64,
    /// Log records replayed.
    pub records_replayed: u64,
    /// Whether recovery started from a checkpoint.
    pub from_checkpoint: bool,
    /// Whether salvage discarded damaged records.
    pub salvaged: bool,
}

/// How a start attempt ended.
#[derive(Debug)]
pub enum Started {
    Ready(Server),
    /// The server exited before it was ready (e.g. recovery refused a damaged log).
    Refused {
        code: Option<i32>,
        output: String,
    },
}

fn free_port() -> Result<u16, CrashError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(CrashError::io("bind a free port"))?;
    let port = listener
        .local_addr()
        .map_err(CrashError::io("read the free port"))?
        .port();
    Ok(port)
}

const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts the server on `dir`; `salvage` asks moodb to salvage a damaged log.
pub fn start(cfg: &ServerConfig, dir: &Path, salvage: bool) -> Result<Started, CrashError> {
    match cfg.target {
        Target::Moodb => start_moodb(cfg, dir, salvage),
        Target::Redis => start_redis(cfg, dir),
    }
}

fn start_moodb(cfg: &ServerConfig, dir: &Path, salvage: bool) -> Result<Started, CrashError> {
    let mut launch = Launch::new(&cfg.moodb_bin, dir);
    launch.args = vec![
        "--sync".into(),
        cfg.sync.clone(),
        "--backend".into(),
        cfg.backend.clone(),
        "--checkpoint-log-bytes".into(),
        cfg.checkpoint_log_bytes.to_string(),
        "--checkpoint-interval-ms".into(),
        cfg.checkpoint_interval_ms.to_string(),
    ];
    if let Some(limit) = &cfg.maxmemory {
        launch.args.extend(["--maxmemory".into(), limit.clone()]);
    }
    if salvage {
        launch.args.push("--salvage".into());
    }
    launch.env.clone_from(&cfg.env);
    launch.timeout = START_TIMEOUT;
    Ok(match launch.start()? {
        Launched::Ready(running) => {
            let r = &running.ready.recovery;
            let recovery = Recovery {
                report: r.report.clone(),
                truncated_bytes: r.bytes_truncated,
                records_replayed: r.records_replayed,
                from_checkpoint: r.checkpoint.is_some(),
                salvaged: r.salvaged.is_some(),
            };
            let addr = running.ready.addr;
            Started::Ready(Server {
                process: running.process,
                addr,
                recovery,
            })
        }
        Launched::Exited { status, output } => Started::Refused {
            code: status.code(),
            output,
        },
    })
}

fn start_redis(cfg: &ServerConfig, dir: &Path) -> Result<Started, CrashError> {
    let port = free_port()?;
    let fsync = match cfg.sync.as_str() {
        "always" => "always",
        "never" => "no",
        _ => "everysec",
    };
    let mut cmd = Command::new("redis-server");
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "yes", "--appendfsync", fsync])
        .args(["--aof-load-truncated", "yes"])
        .args(["--auto-aof-rewrite-percentage", "10"])
        .args([
            "--auto-aof-rewrite-min-size",
            &cfg.checkpoint_log_bytes.to_string(),
        ])
        .arg("--dir")
        .arg(dir)
        .envs(cfg.env.iter().map(|(k, v)| (k, v)));
    let mut process = Process::spawn(cmd, Process::scratch_dir()?)?;
    let deadline = Instant::now() + START_TIMEOUT;
    let addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1], port));
    while Instant::now() < deadline {
        if let Some(status) = process.exit_status()? {
            return Ok(Started::Refused {
                code: status.code(),
                output: process.output(),
            });
        }
        if let Ok(mut conn) = Conn::connect(addr, Duration::from_secs(1)) {
            // PING answers -LOADING while the AOF is read; wait for +PONG.
            if matches!(conn.command(&[b"PING"]), Ok(Reply::Simple(s)) if s == "PONG") {
                let text = process.output();
                let report: Vec<&str> = text
                    .lines()
                    .filter(|l| {
                        l.contains("AOF") || l.contains("append only") || l.contains("loaded")
                    })
                    .collect();
                let truncated = text.contains("short read") || text.contains("truncated");
                let recovery = Recovery {
                    report: report.join(" | "),
                    truncated_bytes: u64::from(truncated),
                    ..Recovery::default()
                };
                return Ok(Started::Ready(Server {
                    process,
                    addr,
                    recovery,
                }));
            }
        }
        thread::sleep(Duration::from_millis(20));
    }
    process.kill9()?;
    Err(CrashError::Start(format!(
        "redis-server did not answer PING within {START_TIMEOUT:?}; output:\n{}",
        process.output_tail(moodb_tests::process::TAIL_LINES)
    )))
}

impl Server {
    /// `kill -9`: the process gets no chance to flush or clean up.
    pub fn kill9(mut self) -> Result<(), CrashError> {
        self.process.kill9()?;
        Ok(())
    }
}
