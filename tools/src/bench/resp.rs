//! The RESP target: one TCP connection per client to a running server (moodb or redis),
//! sending GET and SET as RESP2 arrays and reading one reply each. A deliberately small
//! client: it encodes commands and decodes the reply types a server may send, nothing more.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::TcpStream;

use super::workload::{self, Op};
use super::{BenchError, Client};

/// Commands sent per round trip while filling the key space.
const FILL_PIPELINE: u64 = 1000;

/// A reply, reduced to what the benchmark checks.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    Simple(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

/// One connection speaking RESP2.
pub struct RespClient {
    addr: String,
    reader: BufReader<TcpStream>,
    writer: BufWriter<TcpStream>,
}

impl RespClient {
    pub fn connect(addr: &str) -> Result<Self, BenchError> {
        let io = |context: &str| {
            let context = format!("{context} {addr}");
            move |source| BenchError::Io { context, source }
        };
        let stream = TcpStream::connect(addr).map_err(io("connect to"))?;
        stream.set_nodelay(true).map_err(io("set TCP_NODELAY on"))?;
        let reader = stream.try_clone().map_err(io("clone the socket to"))?;
        Ok(RespClient {
            addr: addr.to_string(),
            reader: BufReader::new(reader),
            writer: BufWriter::new(stream),
        })
    }

    fn io_error(&self, what: &str) -> impl FnOnce(std::io::Error) -> BenchError {
        let context = format!("{what} server {}", self.addr);
        move |source| BenchError::Io { context, source }
    }

    fn server_error(&self, message: String) -> BenchError {
        BenchError::Server {
            addr: self.addr.clone(),
            message,
        }
    }

    /// Queues one command (not yet sent: see [`RespClient::flush`]).
    pub fn queue(&mut self, args: &[&[u8]]) -> Result<(), BenchError> {
        let mut buf = Vec::with_capacity(16 + args.iter().map(|a| a.len() + 16).sum::<usize>());
        buf.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for arg in args {
            buf.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            buf.extend_from_slice(arg);
            buf.extend_from_slice(b"\r\n");
        }
        let err = self.io_error("write to");
        self.writer.write_all(&buf).map_err(err)
    }

    pub fn flush(&mut self) -> Result<(), BenchError> {
        let err = self.io_error("write to");
        self.writer.flush().map_err(err)
    }

    /// Reads one reply; an error reply becomes `BenchError::Server`.
    pub fn read_reply(&mut self) -> Result<Reply, BenchError> {
        let line = self.read_line()?;
        let (kind, rest) = line.split_at(1);
        let number = |client: &Self| {
            rest.parse::<i64>().map_err(|_| {
                client.server_error(format!("bad length or integer in reply {line:?}"))
            })
        };
        match kind {
            "+" => Ok(Reply::Simple(rest.to_string())),
            "-" => Err(self.server_error(format!("error reply: {rest}"))),
            ":" => Ok(Reply::Integer(number(self)?)),
            "$" => match usize::try_from(number(self)?) {
                Err(_) => Ok(Reply::Bulk(None)),
                Ok(len) => {
                    let mut data = vec![0; len + 2];
                    let err = self.io_error("read from");
                    self.reader.read_exact(&mut data).map_err(err)?;
                    data.truncate(len);
                    Ok(Reply::Bulk(Some(data)))
                }
            },
            "*" => match usize::try_from(number(self)?) {
                Err(_) => Ok(Reply::Array(None)),
                Ok(len) => {
                    let items = (0..len)
                        .map(|_| self.read_reply())
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(Reply::Array(Some(items)))
                }
            },
            _ => Err(self.server_error(format!("unexpected reply {line:?}"))),
        }
    }

    fn read_line(&mut self) -> Result<String, BenchError> {
        let mut line = Vec::new();
        let err = self.io_error("read from");
        let n = self.reader.read_until(b'\n', &mut line).map_err(err)?;
        if n == 0 || !line.ends_with(b"\r\n") || line.len() < 3 {
            return Err(self.server_error(format!(
                "connection closed or malformed reply line {:?}",
                String::from_utf8_lossy(&line)
            )));
        }
        line.truncate(line.len() - 2);
        String::from_utf8(line).map_err(|_| self.server_error("reply line is not UTF-8".into()))
    }

    /// Sends one command and reads its reply.
    pub fn call(&mut self, args: &[&[u8]]) -> Result<Reply, BenchError> {
        self.queue(args)?;
        self.flush()?;
        self.read_reply()
    }

    fn expect_ok(&self, reply: Reply) -> Result<(), BenchError> {
        match reply {
            Reply::Simple(s) if s == "OK" => Ok(()),
            other => Err(self.server_error(format!("SET replied {other:?}, expected OK"))),
        }
    }

    /// Sets keys `0..keys`, pipelining `FILL_PIPELINE` SETs per round trip.
    pub fn fill(&mut self, keys: u64, value_size: usize) -> Result<(), BenchError> {
        let value = workload::value(value_size, 0);
        let mut next = 0;
        while next < keys {
            let end = keys.min(next + FILL_PIPELINE);
            for n in next..end {
                self.queue(&[b"SET", &workload::key(n), &value])?;
            }
            self.flush()?;
            for _ in next..end {
                let reply = self.read_reply()?;
                self.expect_ok(reply)?;
            }
            next = end;
        }
        Ok(())
    }
}

impl Client for RespClient {
    fn execute(&mut self, op: &Op) -> Result<(), BenchError> {
        match op {
            Op::Get(key) => match self.call(&[b"GET", key])? {
                Reply::Bulk(_) => Ok(()),
                other => {
                    Err(self.server_error(format!("GET replied {other:?}, expected a bulk string")))
                }
            },
            Op::Set(key, value) => {
                let reply = self.call(&[b"SET", key, value])?;
                self.expect_ok(reply)
            }
            Op::Txn(sets) => {
                // MULTI, SET..., EXEC in one write; then every reply.
                self.queue(&[b"MULTI"])?;
                for (key, value) in sets {
                    self.queue(&[b"SET", key, value])?;
                }
                self.queue(&[b"EXEC"])?;
                self.flush()?;
                let reply = self.read_reply()?;
                self.expect_ok(reply)?;
                for _ in sets {
                    match self.read_reply()? {
                        Reply::Simple(s) if s == "QUEUED" => {}
                        other => {
                            return Err(self.server_error(format!(
                                "SET after MULTI replied {other:?}, expected QUEUED"
                            )))
                        }
                    }
                }
                match self.read_reply()? {
                    Reply::Array(Some(items)) if items.len() == sets.len() => Ok(()),
                    other => Err(self.server_error(format!(
                        "EXEC replied {other:?}, expected {} replies",
                        sets.len()
                    ))),
                }
            }
        }
    }
}
