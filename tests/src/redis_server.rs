//! A real `redis-server` on 127.0.0.1 for tests that compare MooDB with Redis: started on a
//! free port with no persistence in a temporary directory, killed when dropped. `start`
//! returns `None` (and says so on stderr) when redis-server is not installed, so such tests
//! skip cleanly.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running redis-server.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts redis-server and waits until it answers PING; `None` if it is not installed.
    pub fn start() -> Option<RedisServer> {
        let dir = tempfile::tempdir().ok()?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .ok()?
            .port();
        let child = match Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(err) => {
                eprintln!("skipping: redis-server is not installed or would not start ({err})");
                return None;
            }
        };
        let server = RedisServer {
            child,
            port,
            _dir: dir,
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
        eprintln!("skipping: redis-server did not answer PING within 10 s");
        None
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

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
