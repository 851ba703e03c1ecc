//! A raw TCP client for tests that send what no well-behaved client would: truncated frames,
//! hostile lengths, binary garbage. It reads replies with a timeout, so a test never hangs on
//! a server that stopped answering.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long a read waits before the test calls the server unresponsive.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// One raw connection.
pub struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

/// What came back on a raw connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// One reply line (`+OK`, `-ERR ...`, `:1`, `$3`), without its CRLF.
    Line(String),
    /// The server closed the connection.
    Closed,
}

impl Raw {
    pub fn connect(addr: SocketAddr) -> std::io::Result<Raw> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Raw {
            stream,
            buf: Vec::new(),
        })
    }

    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// The next line the server sent, or `Closed` (EOF or reset) once it closed.
    pub fn line(&mut self) -> std::io::Result<Reply> {
        loop {
            if let Some(at) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..at]).into_owned();
                self.buf.drain(..at + 2);
                return Ok(Reply::Line(line));
            }
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(Reply::Closed),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return Ok(Reply::Closed),
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends `bytes` and returns the first reply line.
    pub fn ask(&mut self, bytes: &[u8]) -> std::io::Result<Reply> {
        self.send(bytes)?;
        self.line()
    }

    /// Reads until the server closes; returns how many bytes came (errors count as closed).
    pub fn drain_to_close(&mut self, timeout: Duration) -> std::io::Result<usize> {
        let deadline = Instant::now() + timeout;
        let mut total = std::mem::take(&mut self.buf).len();
        let mut chunk = vec![0u8; 256 * 1024];
        loop {
            if Instant::now() > deadline {
                return Err(std::io::Error::new(
                    ErrorKind::TimedOut,
                    format!("server did not close the connection within {timeout:?}"),
                ));
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(total),
                Ok(n) => total += n,
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return Ok(total),
                Err(e) => return Err(e),
            }
        }
    }
}

/// A request as RESP: an array of bulk strings.
pub fn request(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Resident memory of process `pid` in bytes (Linux `/proc`), if it can be read.
pub fn resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
