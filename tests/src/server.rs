//! The test harness: starts a real `moodb serve` process on 127.0.0.1 (an ephemeral port)
//! with a temporary data directory, captures its stderr, and can stop it, `kill -9` it and
//! restart it on the same data.
//!
//! The `moodb` binary comes from `MOODB_BIN` if set; otherwise the harness runs
//! `cargo build -p moodb` once per test process and uses `<target>/debug/moodb`, so a plain
//! `cargo test --workspace` always tests the current sources.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

/// How long a server may take to say it is ready.
const START_TIMEOUT: Duration = Duration::from_secs(60);

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
    #[error("moodb serve did not become ready: {reason}; its stderr:\n{stderr}")]
    NotReady { reason: String, stderr: String },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> HarnessError {
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
    child: Option<Child>,
    stderr: Arc<Mutex<String>>,
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
            child: None,
            stderr: Arc::new(Mutex::new(String::new())),
            _temp: None,
        };
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> Result<(), HarnessError> {
        let bin = moodb_binary()?;
        let mut cmd = Command::new(&bin);
        cmd.arg("serve")
            .arg("--addr")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&self.data_dir);
        if let Some(sync) = &self.options.sync {
            cmd.args(["--sync", sync]);
        }
        if let Some(backend) = &self.options.backend {
            cmd.args(["--backend", backend]);
        }
        if let Some(config) = &self.options.config {
            let parent = self.data_dir.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(parent).map_err(io("creating the data directory's parent"))?;
            let path = parent.join("moodb-test.ron");
            std::fs::write(&path, config).map_err(io("writing the configuration file"))?;
            cmd.arg("--config").arg(path);
        }
        cmd.args(&self.options.args);
        cmd.envs(self.options.env.iter().map(|(k, v)| (k, v)));
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io(format!("starting {}", bin.display())))?;
        let stderr = child.stderr.take();
        self.stderr = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        if let Some(stderr) = stderr {
            let log = Arc::clone(&self.stderr);
            std::thread::spawn(move || {
                let mut ready_tx = Some(ready_tx);
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    {
                        let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
                        log.push_str(&line);
                        log.push('\n');
                    }
                    if let Some(rest) = line.split("ready to accept connections at ").nth(1) {
                        let addr = rest.split_whitespace().next().unwrap_or_default();
                        if let (Some(tx), Ok(addr)) = (ready_tx.take(), addr.parse::<SocketAddr>())
                        {
                            let _ = tx.send(addr);
                        }
                    }
                }
            });
        }
        self.child = Some(child);
        match ready_rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => {
                self.addr = addr;
                Ok(())
            }
            Err(err) => {
                let reason = match self.child.as_mut().map(Child::wait) {
                    _ if matches!(err, mpsc::RecvTimeoutError::Timeout) => {
                        self.kill9()?;
                        format!("no ready line within {START_TIMEOUT:?}")
                    }
                    Some(Ok(status)) => format!("it exited with {status}"),
                    _ => "it exited".to_string(),
                };
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(50));
                Err(HarnessError::NotReady {
                    reason,
                    stderr: self.stderr(),
                })
            }
        }
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
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
        if let Some(mut child) = self.child.take() {
            child.kill().map_err(io("killing the server"))?;
            child.wait().map_err(io("waiting for the server"))?;
        }
        Ok(())
    }

    /// Stops the server with SIGTERM and returns its exit status.
    pub fn stop(&mut self) -> Result<Option<ExitStatus>, HarnessError> {
        let Some(mut child) = self.child.take() else {
            return Ok(None);
        };
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .map_err(io("sending SIGTERM"))?;
        if !status.success() {
            child.kill().map_err(io("killing the server"))?;
        }
        child.wait().map(Some).map_err(io("waiting for the server"))
    }

    /// Starts the server again on the same data directory and options (after `stop` or
    /// `kill9`; a running server is killed first). The address may change.
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        self.kill9()?;
        self.spawn()
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.kill9();
    }
}
