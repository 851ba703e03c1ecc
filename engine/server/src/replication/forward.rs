//! Forwarding on a follower (cluster mode): each client session that sends requests while
//! this node does not lead gets a [`Forwarder`], a task that relays its batches, in order,
//! over one RESP3 connection of its own to the leader's client address and hands the leader's
//! replies back unchanged (as frames: the session encodes them in its protocol). The
//! connection keeps the session's state on the leader (SELECT, MULTI, WATCH). While no leader
//! is known a batch waits up to [`ELECTION_WAIT`], then gets `-TRYAGAIN`; when this node
//! becomes the ready leader the batch goes back to the store owner to run here
//! ([`ExecuteHere`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::{Addr, Recipient};
use bytes::BytesMut;
use moodb_core::command::txn::SessionId;
use moodb_core::command::ReplyError;
use moodb_core::resp::encode::encode_request;
use moodb_core::resp::{decode_frame, Frame, Protocol, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::types::NodeId;
use crate::actors::store_owner::cluster::ExecuteHere;
use crate::actors::{Replies, StoreOwner};

/// How long a request waits for a leader before it gets `-TRYAGAIN`.
pub const ELECTION_WAIT: Duration = Duration::from_secs(2);
/// How long connecting to the leader, or one of its replies, may take.
const LEADER_IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Who leads, as the store owner last saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderView {
    /// Another node leads, at this client address.
    pub remote: Option<(NodeId, String)>,
    /// This node leads and its store holds every committed write: run requests here.
    pub here: bool,
}

/// One batch of a session on its way to the leader.
pub struct Job {
    pub session: SessionId,
    pub seq: u64,
    pub requests: Vec<Request>,
    pub reply_to: Recipient<Replies>,
    pub proto: Protocol,
    /// When waiting for a leader gives up.
    pub deadline: Instant,
}

/// A session's forwarding task.
pub struct Forwarder {
    tx: mpsc::UnboundedSender<Job>,
    pending: Arc<AtomicUsize>,
}

impl Forwarder {
    /// Starts the task (on the current runtime: the actix arbiter's).
    pub fn spawn(
        view: watch::Receiver<LeaderView>,
        owner: Addr<StoreOwner>,
        password: Option<String>,
    ) -> Forwarder {
        let (tx, rx) = mpsc::unbounded_channel();
        let pending = Arc::new(AtomicUsize::new(0));
        let task = Task {
            view,
            owner,
            password,
            conn: None,
            pending: pending.clone(),
        };
        actix::spawn(task.run(rx));
        Forwarder { tx, pending }
    }

    /// Queues `job` behind the session's earlier batches.
    pub fn send(&self, job: Job) {
        self.pending.fetch_add(1, Ordering::SeqCst);
        if let Err(e) = self.tx.send(job) {
            // The task ended (it never does while its sender lives); answer rather than hang.
            self.pending.fetch_sub(1, Ordering::SeqCst);
            let job = e.0;
            reply_all(&job, ReplyError::NoLeader.into());
        }
    }

    /// No batch of the session is queued or on its way.
    pub fn idle(&self) -> bool {
        self.pending.load(Ordering::SeqCst) == 0
    }
}

fn reply_all(job: &Job, frame: Frame) {
    job.reply_to.do_send(Replies {
        seq: job.seq,
        frames: vec![frame; job.requests.len()],
        push: false,
    });
}

/// A connection to the leader: its node id, address, stream and unread bytes.
struct Conn {
    leader: NodeId,
    addr: String,
    stream: TcpStream,
    buf: BytesMut,
}

struct Task {
    view: watch::Receiver<LeaderView>,
    owner: Addr<StoreOwner>,
    password: Option<String>,
    conn: Option<Conn>,
    pending: Arc<AtomicUsize>,
}

/// Why relaying failed.
#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("timed out")]
    Timeout,
    #[error("the leader closed the connection")]
    Closed,
    #[error("the leader's reply is not RESP: {0}")]
    Protocol(String),
    #[error("the leader refused the connection's setup: {0}")]
    Setup(String),
}

impl Task {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Job>) {
        while let Some(job) = rx.recv().await {
            self.handle(job).await;
            self.pending.fetch_sub(1, Ordering::SeqCst);
        }
    }

    async fn handle(&mut self, job: Job) {
        loop {
            let view = self.view.borrow_and_update().clone();
            if view.here {
                self.conn = None;
                self.owner.do_send(ExecuteHere(job));
                return;
            }
            if let Some((leader, addr)) = view.remote {
                self.relay(job, leader, addr).await;
                return;
            }
            match tokio::time::timeout_at(job.deadline, self.view.changed()).await {
                Ok(Ok(())) => continue,
                _ => {
                    reply_all(&job, ReplyError::NoLeader.into());
                    return;
                }
            }
        }
    }

    async fn relay(&mut self, job: Job, leader: NodeId, addr: String) {
        if self
            .conn
            .as_ref()
            .is_some_and(|c| c.leader != leader || c.addr != addr)
        {
            self.conn = None;
        }
        let mut replies = Vec::with_capacity(job.requests.len());
        let result = self.exchange(&job, leader, &addr, &mut replies).await;
        if let Err(err) = result {
            self.conn = None;
            let refusal: Frame = ReplyError::LeaderUnreachable {
                addr: addr.clone(),
                cause: err.to_string(),
            }
            .into();
            replies.resize(job.requests.len(), refusal);
        }
        job.reply_to.do_send(Replies {
            seq: job.seq,
            frames: replies,
            push: false,
        });
    }

    /// Sends the batch and reads one reply per request into `replies`.
    async fn exchange(
        &mut self,
        job: &Job,
        leader: NodeId,
        addr: &str,
        replies: &mut Vec<Frame>,
    ) -> Result<(), RelayError> {
        if self.conn.is_none() {
            self.conn = Some(connect(leader, addr, self.password.as_deref()).await?);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(RelayError::Closed);
        };
        let mut out = BytesMut::new();
        for request in &job.requests {
            encode_request(request, &mut out);
        }
        timed(conn.stream.write_all(&out)).await??;
        while replies.len() < job.requests.len() {
            let frame = read_frame(conn).await?;
            if matches!(frame, Frame::Push(_)) {
                // Out of band (a Pub/Sub message on the leader): not a reply.
                continue;
            }
            replies.push(frame);
        }
        Ok(())
    }
}

async fn timed<F: std::future::Future>(f: F) -> Result<F::Output, RelayError> {
    tokio::time::timeout(LEADER_IO_TIMEOUT, f)
        .await
        .map_err(|_| RelayError::Timeout)
}

/// Reads one whole reply from `conn`.
async fn read_frame(conn: &mut Conn) -> Result<Frame, RelayError> {
    loop {
        match decode_frame(&conn.buf) {
            Ok(Some((frame, used))) => {
                let _ = conn.buf.split_to(used);
                return Ok(frame);
            }
            Ok(None) => {}
            Err(e) => return Err(RelayError::Protocol(e.to_string())),
        }
        let n = timed(conn.stream.read_buf(&mut conn.buf)).await??;
        if n == 0 {
            return Err(RelayError::Closed);
        }
    }
}

/// Connects to the leader's client address and switches the connection to RESP3 (with
/// `AUTH default <password>` when the cluster's nodes require one).
async fn connect(leader: NodeId, addr: &str, password: Option<&str>) -> Result<Conn, RelayError> {
    let stream = timed(TcpStream::connect(addr)).await??;
    stream.set_nodelay(true)?;
    let mut conn = Conn {
        leader,
        addr: addr.to_string(),
        stream,
        buf: BytesMut::new(),
    };
    let mut hello: Vec<&[u8]> = vec![b"HELLO", b"3"];
    if let Some(p) = password {
        hello.extend([&b"AUTH"[..], b"default", p.as_bytes()]);
    }
    let mut out = BytesMut::new();
    encode_request(&hello, &mut out);
    timed(conn.stream.write_all(&out)).await??;
    match read_frame(&mut conn).await? {
        Frame::Error(e) => Err(RelayError::Setup(e)),
        _ => Ok(conn),
    }
}
