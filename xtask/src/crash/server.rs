//! Starting, killing and restarting the server under test (`moodb serve`, or `redis-server` as a
//! known-good baseline), and reading what it says about its recovery.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use moodb_tests::linearizability::client::{Conn, Dialect};

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
    pub moodb_bin: PathBuf,
    pub backend: String,
    /// `always`, `every:<ms>` or `never`.
    pub sync: String,
    pub checkpoint_log_bytes: u64,
    pub checkpoint_interval_ms: u64,
    /// Extra environment (e.g. `MOODB_FAULT`).
    pub env: Vec<(String, String)>,
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// What it said about recovery at start-up (the `moodb: recovery:` line, or redis' lines).
    pub recovery: Recovery,
}

/// What the server reported about its recovery.
#[derive(Debug, Clone, Default)]
pub struct Recovery {
    /// The report text (empty if the server printed none).
    pub report: String,
    /// Bytes of torn tail truncated, if the report says so.
    pub truncated_bytes: u64,
    /// Log records replayed.
    pub records_replayed: u64,
    /// Whether recovery started from a checkpoint.
    pub from_checkpoint: bool,
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

fn spawn_line_reader(
    stream: impl Read + Send + 'static,
    lines: Arc<Mutex<Vec<String>>>,
    tx: mpsc::Sender<String>,
) {
    thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            lines
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(line.clone());
            let _ = tx.send(line);
        }
    });
}

/// Starts the server on `dir`; `salvage` asks moodb to salvage a damaged log.
pub fn start(cfg: &ServerConfig, dir: &Path, salvage: bool) -> Result<Started, CrashError> {
    let mut cmd;
    let mut port = 0;
    match cfg.target {
        Target::Moodb => {
            cmd = Command::new(&cfg.moodb_bin);
            cmd.arg("serve")
                .args(["--addr", "127.0.0.1:0", "--data-dir"])
                .arg(dir)
                .args(["--sync", &cfg.sync, "--backend", &cfg.backend])
                .args([
                    "--checkpoint-log-bytes",
                    &cfg.checkpoint_log_bytes.to_string(),
                    "--checkpoint-interval-ms",
                    &cfg.checkpoint_interval_ms.to_string(),
                ]);
            if salvage {
                cmd.arg("--salvage");
            }
        }
        Target::Redis => {
            port = free_port()?;
            let fsync = match cfg.sync.as_str() {
                "always" => "always",
                "never" => "no",
                _ => "everysec",
            };
            cmd = Command::new("redis-server");
            cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "yes", "--appendfsync", fsync])
                .args(["--aof-load-truncated", "yes"])
                .args(["--auto-aof-rewrite-percentage", "10"])
                .args([
                    "--auto-aof-rewrite-min-size",
                    &cfg.checkpoint_log_bytes.to_string(),
                ])
                .arg("--dir")
                .arg(dir);
        }
    }
    for (k, v) in &cfg.env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        CrashError::Start(format!(
            "could not run {:?}: {e} (is it built / installed?)",
            cmd.get_program()
        ))
    })?;
    let output = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    if let Some(out) = child.stdout.take() {
        spawn_line_reader(out, output.clone(), tx.clone());
    }
    if let Some(err) = child.stderr.take() {
        spawn_line_reader(err, output.clone(), tx);
    }
    match cfg.target {
        Target::Moodb => wait_moodb(child, rx, output),
        Target::Redis => wait_redis(child, rx, output, port),
    }
}

fn all_output(output: &Arc<Mutex<Vec<String>>>) -> String {
    output
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .join("\n")
}

fn exited(child: &mut Child, output: &Arc<Mutex<Vec<String>>>) -> Option<Started> {
    match child.try_wait() {
        Ok(Some(status)) => {
            // Let the readers drain what the process printed last.
            thread::sleep(Duration::from_millis(50));
            Some(Started::Refused {
                code: status.code(),
                output: all_output(output),
            })
        }
        _ => None,
    }
}

const START_TIMEOUT: Duration = Duration::from_secs(60);

fn wait_moodb(
    mut child: Child,
    rx: Receiver<String>,
    output: Arc<Mutex<Vec<String>>>,
) -> Result<Started, CrashError> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut recovery = Recovery::default();
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(line) => {
                if let Some(report) = line.strip_prefix("moodb: recovery: ") {
                    recovery = parse_report(report);
                }
                if let Some(rest) = line.strip_prefix("moodb: ready to accept connections at ") {
                    let addr_text = rest.split_whitespace().next().unwrap_or_default();
                    let addr = addr_text.parse().map_err(|_| {
                        CrashError::Start(format!("cannot parse the address in {line:?}"))
                    })?;
                    return Ok(Started::Ready(Server {
                        child,
                        addr,
                        recovery,
                    }));
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                thread::sleep(Duration::from_millis(20));
            }
        }
        if let Some(refused) = exited(&mut child, &output) {
            return Ok(refused);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(CrashError::Start(format!(
        "moodb serve printed no ready line within {START_TIMEOUT:?}; output:\n{}",
        all_output(&output)
    )))
}

fn wait_redis(
    mut child: Child,
    rx: Receiver<String>,
    output: Arc<Mutex<Vec<String>>>,
    port: u16,
) -> Result<Started, CrashError> {
    let deadline = Instant::now() + START_TIMEOUT;
    let addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1], port));
    while Instant::now() < deadline {
        while rx.try_recv().is_ok() {}
        if let Some(refused) = exited(&mut child, &output) {
            return Ok(refused);
        }
        if let Ok(mut conn) = Conn::connect(addr, Duration::from_secs(1)) {
            // PING answers -LOADING while the AOF is read; wait for +PONG.
            if let Ok(moodb_tests::linearizability::client::Reply::Simple(s)) =
                conn.command(&[b"PING"])
            {
                if s == "PONG" {
                    let text = all_output(&output);
                    let report: Vec<&str> = text
                        .lines()
                        .filter(|l| {
                            l.contains("AOF") || l.contains("append only") || l.contains("loaded")
                        })
                        .collect();
                    let truncated = text.contains("short read") || text.contains("truncated");
                    return Ok(Started::Ready(Server {
                        child,
                        addr,
                        recovery: Recovery {
                            report: report.join(" | "),
                            truncated_bytes: u64::from(truncated),
                            ..Recovery::default()
                        },
                    }));
                }
            }
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(CrashError::Start(format!(
        "redis-server did not answer PING within {START_TIMEOUT:?}"
    )))
}

/// Extracts the truncation from a moodb recovery report such as "loaded checkpoint … replayed 12
/// records (340 bytes of log), truncated 7 bytes of torn tail in 0.012s".
pub fn parse_report(report: &str) -> Recovery {
    let words: Vec<&str> = report.split_whitespace().collect();
    let number_after = |word: &str| {
        words
            .iter()
            .position(|w| *w == word)
            .and_then(|i| words.get(i + 1))
            .and_then(|w| w.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Recovery {
        report: report.to_string(),
        truncated_bytes: number_after("truncated"),
        records_replayed: number_after("replayed"),
        from_checkpoint: report.starts_with("loaded checkpoint"),
    }
}

impl Server {
    /// `kill -9`: the process gets no chance to flush or clean up.
    pub fn kill9(mut self) -> Result<(), CrashError> {
        self.child
            .kill()
            .map_err(CrashError::io("kill -9 the server"))?;
        self.child
            .wait()
            .map_err(CrashError::io("wait for the killed server"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::parse_report;

    #[test]
    fn report_truncation_is_read() {
        let r = parse_report(
            "loaded checkpoint d/ckpt.3 (lsn 9, 4 keys), replayed 12 records (340 bytes of log), truncated 7 bytes of torn tail in 0.012s",
        );
        assert_eq!(r.truncated_bytes, 7);
        assert_eq!(r.records_replayed, 12);
        assert!(r.from_checkpoint);
        let r = parse_report("no checkpoint, replayed 0 records (0 bytes of log), truncated 0 bytes of torn tail in 0.001s");
        assert_eq!(r.truncated_bytes, 0);
        assert!(!r.from_checkpoint);
    }
}
