//! A small blocking RESP2 client that records every operation it runs in a [`Recorder`], for
//! linearizability checks and the crash test. It speaks to moodb or to redis-server (whose
//! UPDATE is spelled `SET key value XX`).

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::{Op, Output, Recorder};

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

/// Errors of the client: the connection failed, or the server sent bytes that are not RESP2.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connection to the server failed: {0}")]
    Io(#[from] io::Error),
    #[error("the server sent a reply that is not RESP2: {0}")]
    Protocol(String),
    #[error("unexpected reply {reply:?} to {command}")]
    Unexpected { command: String, reply: Reply },
}

/// Which server is on the other end (they spell UPDATE differently).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// moodb: `UPDATE key value`.
    Moodb,
    /// redis-server: `SET key value XX`.
    Redis,
}

/// One blocking RESP2 connection.
#[derive(Debug)]
pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    /// Connects to `addr`; every read waits at most `timeout`.
    pub fn connect(addr: SocketAddr, timeout: Duration) -> Result<Conn, ClientError> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        let writer = stream.try_clone()?;
        Ok(Conn {
            reader: BufReader::new(stream),
            writer,
        })
    }

    /// Sends one command without waiting for its reply.
    pub fn send(&mut self, args: &[&[u8]]) -> Result<(), ClientError> {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            buf.extend_from_slice(a);
            buf.extend_from_slice(b"\r\n");
        }
        self.writer.write_all(&buf)?;
        Ok(())
    }

    /// Reads one reply.
    pub fn read_reply(&mut self) -> Result<Reply, ClientError> {
        let line = self.read_line()?;
        let (kind, rest) = line.split_at(1);
        let int = |s: &str| {
            s.parse::<i64>()
                .map_err(|_| ClientError::Protocol(format!("bad integer {s:?}")))
        };
        match kind {
            "+" => Ok(Reply::Simple(rest.to_string())),
            "-" => Ok(Reply::Error(rest.to_string())),
            ":" => Ok(Reply::Int(int(rest)?)),
            "$" => {
                let len = int(rest)?;
                if len < 0 {
                    return Ok(Reply::Bulk(None));
                }
                let len = usize::try_from(len)
                    .map_err(|_| ClientError::Protocol(format!("bad length {len}")))?;
                let mut data = vec![0u8; len + 2];
                io::Read::read_exact(&mut self.reader, &mut data)?;
                data.truncate(len);
                Ok(Reply::Bulk(Some(data)))
            }
            "*" => {
                let len = int(rest)?;
                if len < 0 {
                    return Ok(Reply::Array(None));
                }
                let mut items = Vec::new();
                for _ in 0..len {
                    items.push(self.read_reply()?);
                }
                Ok(Reply::Array(Some(items)))
            }
            _ => Err(ClientError::Protocol(format!("bad reply line {line:?}"))),
        }
    }

    fn read_line(&mut self) -> Result<String, ClientError> {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line)?;
        if n == 0 {
            return Err(ClientError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            )));
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            return Err(ClientError::Protocol("empty reply line".into()));
        }
        Ok(line)
    }

    /// Sends one command and reads its reply.
    pub fn command(&mut self, args: &[&[u8]]) -> Result<Reply, ClientError> {
        self.send(args)?;
        self.read_reply()
    }
}

/// The wire form of an operation on `key` for `dialect`.
pub fn op_command(dialect: Dialect, key: &[u8], op: &Op) -> Vec<Vec<u8>> {
    let k = key.to_vec();
    match (op, dialect) {
        (Op::Get, _) => vec![b"GET".to_vec(), k],
        (Op::Set(v), _) => vec![b"SET".to_vec(), k, v.clone()],
        (Op::Del, _) => vec![b"DEL".to_vec(), k],
        (Op::Incr, _) => vec![b"INCR".to_vec(), k],
        (Op::Update(v), Dialect::Moodb) => vec![b"UPDATE".to_vec(), k, v.clone()],
        (Op::Update(v), Dialect::Redis) => vec![b"SET".to_vec(), k, v.clone(), b"XX".to_vec()],
        // MooDB only (redis-server has no CAS).
        (Op::Cas { expected, new }, _) => vec![b"CAS".to_vec(), k, expected.clone(), new.clone()],
        // Sent as MULTI, each operation, EXEC: see `RecordingClient::run`.
        (Op::Txn(_), _) => vec![b"EXEC".to_vec()],
    }
}

/// Turns a reply to `op` into the model's [`Output`].
pub fn reply_output(op: &Op, reply: Reply) -> Result<Output, ClientError> {
    match (op, reply) {
        (Op::Get, Reply::Bulk(v)) => Ok(Output::Value(v)),
        (Op::Set(_) | Op::Update(_), Reply::Simple(s)) if s == "OK" => Ok(Output::Ok),
        (Op::Update(_), Reply::Bulk(None)) => Ok(Output::Nil),
        (Op::Del | Op::Incr | Op::Cas { .. }, Reply::Int(n)) => Ok(Output::Int(n)),
        // (A TRYAGAIN from a cluster is no answer: the INCR may or may not have been applied.)
        (Op::Incr, Reply::Error(e)) if !e.starts_with("TRYAGAIN") => Ok(Output::Error),
        (Op::Txn(ops), Reply::Array(Some(replies))) if replies.len() == ops.len() => ops
            .iter()
            .zip(replies)
            .map(|(op, reply)| reply_output(op, reply))
            .collect::<Result<Vec<_>, _>>()
            .map(Output::Txn),
        (op, reply) => Err(ClientError::Unexpected {
            command: format!("{op:?}"),
            reply,
        }),
    }
}

/// A connection whose every operation is recorded as client `id` in a [`Recorder`].
#[derive(Debug)]
pub struct RecordingClient {
    pub conn: Conn,
    pub id: u64,
    pub dialect: Dialect,
    recorder: Recorder,
}

impl RecordingClient {
    pub fn new(conn: Conn, id: u64, dialect: Dialect, recorder: Recorder) -> Self {
        RecordingClient {
            conn,
            id,
            dialect,
            recorder,
        }
    }

    /// Runs `op` on `key`, recording it. On a connection error the operation stays pending in
    /// the history (it may or may not have taken effect) and the error is returned.
    ///
    /// An [`Op::Txn`] is sent as MULTI, its operations and EXEC in one write; its invocation is
    /// recorded before MULTI is sent and its return when the EXEC reply is read.
    pub fn run(&mut self, key: &[u8], op: Op) -> Result<Output, ClientError> {
        let id = self.recorder.invoke(self.id, key, op.clone());
        let reply = match &op {
            Op::Txn(ops) => self.transaction(key, ops)?,
            _ => {
                let cmd = op_command(self.dialect, key, &op);
                let args: Vec<&[u8]> = cmd.iter().map(Vec::as_slice).collect();
                self.conn.command(&args)?
            }
        };
        let output = reply_output(&op, reply)?;
        self.recorder.complete(id, output.clone());
        Ok(output)
    }

    /// Sends MULTI, `ops` on `key`, EXEC (pipelined) and returns the EXEC reply.
    fn transaction(&mut self, key: &[u8], ops: &[Op]) -> Result<Reply, ClientError> {
        let unexpected = |command: &str, reply| ClientError::Unexpected {
            command: command.to_string(),
            reply,
        };
        self.conn.send(&[b"MULTI"])?;
        for op in ops {
            let cmd = op_command(self.dialect, key, op);
            let args: Vec<&[u8]> = cmd.iter().map(Vec::as_slice).collect();
            self.conn.send(&args)?;
        }
        self.conn.send(&[b"EXEC"])?;
        match self.conn.read_reply()? {
            Reply::Simple(s) if s == "OK" => {}
            reply => return Err(unexpected("MULTI", reply)),
        }
        for op in ops {
            match self.conn.read_reply()? {
                Reply::Simple(s) if s == "QUEUED" => {}
                reply => return Err(unexpected(&format!("{op:?} after MULTI"), reply)),
            }
        }
        self.conn.read_reply()
    }
}
