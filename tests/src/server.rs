//! Starting a real `moodb serve`: [`Launch`] runs it on 127.0.0.1 (an ephemeral port) with
//! `--ready-file` in the process's own temporary directory and waits, bounded, for that JSON
//! ([`Ready`]: address, pid, recovery figures) or for the process to exit. [`TestServer`] is
//! what the integration tests use: a temporary data directory, `stop`, `kill -9`, `restart`
//! on the same data, and the server's stderr. The crash harness (`xtask/src/crash/server.rs`)
//! drives [`Launch`] directly.
//!
//! The `moodb` binary comes from `MOODB_BIN` if set; otherwise the harness runs
//! `cargo build -p moodb` once per test process and uses `<target>/debug/moodb`, so a plain
//! `cargo test --workspace` always tests the current sources.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::process::{Process, TAIL_LINES};

/// How long a server may take to become ready.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// What went wrong while driving a server process.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("building moodb failed: {0}")]
    Build(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("moodb serve did not become ready: {reason}; the last lines of its output:\n{stderr}")]
    NotReady { reason: String, stderr: String },
    #[error("the ready file {path} is not what moodb serve writes: {message}")]
    ReadyFile { path: PathBuf, message: String },
}

pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> HarnessError {
    let what = what.into();
    move |source| HarnessError::Io { what, source }
}

/// The `moodb` binary to run (built once per process unless `MOODB_BIN` is set).
pub fn moodb_binary() -> Result<PathBuf, HarnessError> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("MOODB_BIN") {
            return Ok(PathBuf::from(bin));
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args(["build", "--quiet", "-p", "moodb", "--bin", "moodb"])
            .current_dir(&root)
            .output()
            .map_err(|e| format!("running cargo: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        Ok(target.join("debug").join("moodb"))
    })
    .clone()
    .map_err(HarnessError::Build)
}

/// What `moodb serve --ready-file` writes once it listens (`tools/src/commands/serve.rs`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ready {
    pub addr: SocketAddr,
    pub pid: u32,
    pub backend: String,
    pub sync: String,
    pub data_dir: PathBuf,
    pub recovery: ReadyRecovery,
}

/// The figures of the server's recovery report.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadyRecovery {
    /// The checkpoint loaded, if any, and the LSN it covers.
    pub checkpoint: Option<PathBuf>,
    pub checkpoint_lsn: Option<u64>,
    pub checkpoint_keys: u64,
    pub records_replayed: u64,
    pub log_bytes_replayed: u64,
    /// Bytes of torn tail cut off the end of the log.
    pub bytes_truncated: u64,
    /// What salvage discarded, when it did.
    pub salvaged: Option<String>,
    pub seconds: f64,
    /// The text of the `moodb: recovery:` line.
    pub report: String,
}

/// How to run one `moodb serve` process.
#[derive(Debug, Clone)]
pub struct Launch {
    pub bin: PathBuf,
    pub data_dir: PathBuf,
    /// `--addr` (default `127.0.0.1:0`: an ephemeral port; a cluster member needs a fixed one,
    /// the one its peers know).
    pub addr: String,
    /// Contents of a RON configuration file, written to the process's directory and passed
    /// with `--config`.
    pub config: Option<String>,
    /// Further flags, e.g. `--sync never`. Unless they (or `config`) say where the event loop
    /// runs, the server gets `--event-loop-cpu off`: tests run many servers at once, and the
    /// default would pin every one's loop to the same CPU.
    pub args: Vec<String>,
    /// Extra environment variables (e.g. `MOODB_FAILPOINTS`).
    pub env: Vec<(String, String)>,
    /// How long to wait for the ready file.
    pub timeout: Duration,
}

/// How a start ended.
#[derive(Debug)]
pub enum Launched {
    Ready(Box<Running>),
    /// The process exited before it was ready (e.g. recovery refused a damaged log).
    Exited {
        status: ExitStatus,
        output: String,
    },
}

/// A `moodb serve` that has written its ready file.
#[derive(Debug)]
pub struct Running {
    pub process: Process,
    pub ready: Ready,
}

impl Launch {
    pub fn new(bin: impl Into<PathBuf>, data_dir: impl Into<PathBuf>) -> Launch {
        Launch {
            bin: bin.into(),
            data_dir: data_dir.into(),
            addr: "127.0.0.1:0".into(),
            config: None,
            args: Vec::new(),
            env: Vec::new(),
            timeout: START_TIMEOUT,
        }
    }

    /// Starts the server and waits until it has written its ready file or exited. Past the
    /// deadline the process is killed and the error quotes the end of its output.
    pub fn start(&self) -> Result<Launched, HarnessError> {
        let dir = Process::scratch_dir()?;
        let ready_path = dir.path().join("ready.json");
        let mut cmd = Command::new(&self.bin);
        cmd.arg("serve")
            .arg("--addr")
            .arg(&self.addr)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--ready-file")
            .arg(&ready_path);
        if let Some(config) = &self.config {
            let path = dir.path().join("moodb-test.ron");
            std::fs::write(&path, config).map_err(io("writing the configuration file"))?;
            cmd.arg("--config").arg(path);
        }
        cmd.args(&self.args);
        let placed = self.args.iter().any(|a| a.starts_with("--event-loop-cpu"))
            || self
                .config
                .as_deref()
                .is_some_and(|c| c.contains("event_loop_cpu"));
        if !placed {
            cmd.args(["--event-loop-cpu", "off"]);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        let mut process = Process::spawn(cmd, dir)?;
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(ready) = read_ready(&ready_path)? {
                if ready.pid != process.id() {
                    return Err(HarnessError::ReadyFile {
                        path: ready_path,
                        message: format!(
                            "it names pid {}, the server started is {}",
                            ready.pid,
                            process.id()
                        ),
                    });
                }
                return Ok(Launched::Ready(Box::new(Running { process, ready })));
            }
            if let Some(status) = process.exit_status()? {
                let output = process.output();
                return Ok(Launched::Exited { status, output });
            }
            if Instant::now() >= deadline {
                process.kill9()?;
                return Err(HarnessError::NotReady {
                    reason: format!("no ready file within {:?}", self.timeout),
                    stderr: process.output_tail(TAIL_LINES),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The ready file's contents, or `None` while it does not exist.
fn read_ready(path: &Path) -> Result<Option<Ready>, HarnessError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(format!("reading {}", path.display()))(e)),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| HarnessError::ReadyFile {
            path: path.to_path_buf(),
            message: format!("{e}: {text:?}"),
        })
}

/// How to start the server. Every field has a default suited to tests.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// `--sync` (default: the server's, `always`).
    pub sync: Option<String>,
    /// `--backend` (default: the server's, `paper`).
    pub backend: Option<String>,
    /// Contents of a RON configuration file passed with `--config`.
    pub config: Option<String>,
    /// Further flags, e.g. `--checkpoint-log-bytes 4096`.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

/// A running `moodb serve`. Killed (SIGKILL) when dropped if still running.
pub struct TestServer {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Its data directory.
    pub data_dir: PathBuf,
    options: ServerOptions,
    /// The last process started (kept after it stops, for its output).
    running: Option<Running>,
    /// Owns the temporary directory (removed on drop) when the harness made it.
    _temp: Option<tempfile::TempDir>,
}

impl TestServer {
    /// Starts a server on a fresh temporary data directory.
    pub fn start(options: ServerOptions) -> Result<TestServer, HarnessError> {
        let temp = tempfile::Builder::new()
            .prefix("moodb-test-")
            .tempdir()
            .map_err(io("creating a temporary data directory"))?;
        let data_dir = temp.path().join("data");
        let mut server = TestServer::start_in(&data_dir, options)?;
        server._temp = Some(temp);
        Ok(server)
    }

    /// Starts a server on `data_dir` (kept after the server stops).
    pub fn start_in(data_dir: &Path, options: ServerOptions) -> Result<TestServer, HarnessError> {
        let mut server = TestServer {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.to_path_buf(),
            options,
            running: None,
            _temp: None,
        };
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> Result<(), HarnessError> {
        let mut launch = Launch::new(moodb_binary()?, &self.data_dir);
        if let Some(sync) = &self.options.sync {
            launch.args.extend(["--sync".to_string(), sync.clone()]);
        }
        if let Some(backend) = &self.options.backend {
            launch
                .args
                .extend(["--backend".to_string(), backend.clone()]);
        }
        launch.args.extend(self.options.args.iter().cloned());
        launch.config.clone_from(&self.options.config);
        launch.env.clone_from(&self.options.env);
        match launch.start()? {
            Launched::Ready(running) => {
                self.addr = running.ready.addr;
                self.running = Some(*running);
                Ok(())
            }
            Launched::Exited { status, output } => {
                let tail: Vec<&str> = output.lines().collect();
                Err(HarnessError::NotReady {
                    reason: format!("it exited with {status}"),
                    stderr: tail[tail.len().saturating_sub(TAIL_LINES)..].join("\n"),
                })
            }
        }
    }

    /// What the server wrote to its ready file when it started last.
    pub fn ready(&self) -> Option<&Ready> {
        self.running.as_ref().map(|r| &r.ready)
    }

    /// Everything the server wrote to stderr (and stdout) since it started last.
    pub fn stderr(&self) -> String {
        self.running
            .as_ref()
            .map(|r| r.process.output())
            .unwrap_or_default()
    }

    /// `redis://` URL of the server.
    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// A new connection through the `redis` crate.
    pub fn connect(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(self.url())?.get_connection()
    }

    /// Kills the server with SIGKILL (no chance to sync) and waits for it.
    pub fn kill9(&mut self) -> Result<(), HarnessError> {
        if let Some(running) = &mut self.running {
            running.process.kill9()?;
        }
        Ok(())
    }

    /// Stops the server with SIGTERM and returns its exit status (`None` if it was not
    /// running: already stopped or killed).
    pub fn stop(&mut self) -> Result<Option<ExitStatus>, HarnessError> {
        match &mut self.running {
            Some(running) if !running.process.reaped() => running.process.terminate().map(Some),
            _ => Ok(None),
        }
    }

    /// Starts the server again on the same data directory and options (after `stop` or
    /// `kill9`; a running server is killed first). The address may change.
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        self.kill9()?;
        self.spawn()
    }

    /// The server's process id, until it is stopped or killed.
    pub fn pid(&self) -> Option<u32> {
        self.running
            .as_ref()
            .filter(|r| !r.process.reaped())
            .map(|r| r.process.id())
    }

    /// Waits up to `timeout` for the process to exit by itself (SHUTDOWN); its exit status,
    /// or `None` if it is still running then (or was never started).
    pub fn wait_exit(&mut self, timeout: std::time::Duration) -> Option<ExitStatus> {
        let running = self.running.as_mut()?;
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = running.process.exit_status() {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.running
            .as_mut()
            .is_some_and(|r| r.process.is_running())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.kill9();
    }
}
