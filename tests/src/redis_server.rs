//! A real `redis-server` on 127.0.0.1 for tests that compare MooDB with Redis: started on a
//! free port with no persistence in a temporary directory, killed when dropped. `start`
//! returns `None` (and says so on stderr) when redis-server is not installed, so such tests
//! skip cleanly.

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::process::Process;

/// A running redis-server (killed when dropped, as every [`Process`] is).
pub struct RedisServer {
    process: Process,
    pub port: u16,
    _data: tempfile::TempDir,
}

impl RedisServer {
    /// Starts redis-server and waits until it answers PING; `None` if it is not installed.
    pub fn start() -> Option<RedisServer> {
        Self::start_with(&[])
    }

    /// [`start`](Self::start) with further configuration on the command line, e.g.
    /// `["--notify-keyspace-events", "KEA"]`.
    pub fn start_with(extra: &[&str]) -> Option<RedisServer> {
        let data = tempfile::tempdir().ok()?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .ok()?
            .port();
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(extra)
            .arg("--dir")
            .arg(data.path());
        let process = match Process::scratch_dir().and_then(|dir| Process::spawn(cmd, dir)) {
            Ok(process) => process,
            Err(err) => {
                eprintln!("skipping: redis-server is not installed or would not start ({err})");
                return None;
            }
        };
        let server = RedisServer {
            process,
            port,
            _data: data,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(mut con) = server.connect() {
                if redis::cmd("PING").query::<String>(&mut con).is_ok() {
                    return Some(server);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "skipping: redis-server did not answer PING within 10 s; output:\n{}",
            server.process.output_tail(crate::process::TAIL_LINES)
        );
        None
    }

    /// `host:port` of the server.
    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `redis://` URL of the server.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A new connection through the `redis` crate.
    pub fn connect(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(self.url())?.get_connection()
    }
}
