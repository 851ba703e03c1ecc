//! Forwarding on a follower (cluster mode): each client session that sends requests while
//! this node does not lead gets a [`Forwarder`], a task that relays its batches, in order,
//! over one RESP3 connection of its own to the leader's client address and hands the leader's
//! replies back unchanged (as frames: the session encodes them in its protocol). The
//! connection keeps the session's state on the leader (SELECT, MULTI, WATCH). While no leader
//! is known a batch waits up to [`ELECTION_WAIT`], then gets `-TRYAGAIN`; when this node
//! becomes the ready leader the batch goes back to the store owner to run here
//! ([`ExecuteHere`]).
//!
//! **A connection's state across a change of leader.** The forwarder follows what the
//! session's state on the leader is (the database SELECTed, inside MULTI, WATCHing). A new
//! connection (another leader, or a reconnect) SELECTs that database again. A transaction or
//! WATCH under way on the old connection is lost with it, so its EXEC must not run what was
//! queued since as if nothing happened: it is sent as DISCARD and answered with the nil of an
//! aborted transaction (as if a watched key had changed). With such state the forwarder keeps
//! relaying, to this node's own client address, when this node becomes the leader.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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
    /// This node's own id and client address (for a connection whose state must carry over).
    pub me: (NodeId, String),
}

/// One batch of a session on its way to the leader.
pub struct Job {
    pub session: SessionId,
    pub seq: u64,
    pub requests: Vec<Request>,
    pub reply_to: Arc<Recipient<Replies>>,
    pub proto: Protocol,
    /// When waiting for a leader gives up.
    pub deadline: Instant,
}

/// A session's forwarding task.
pub struct Forwarder {
    tx: mpsc::UnboundedSender<Job>,
    pending: Arc<AtomicUsize>,
    /// The session has state on its relayed connection (a database, a transaction).
    stateful: Arc<AtomicBool>,
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
        let stateful = Arc::new(AtomicBool::new(false));
        let task = Task {
            stateful: stateful.clone(),
            view,
            owner,
            password,
            conn: None,
            pending: pending.clone(),
            state: SessionState::default(),
        };
        actix::spawn(task.run(rx));
        Forwarder {
            tx,
            pending,
            stateful,
        }
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

    /// No batch of the session is queued or on its way, and its relayed connection holds no
    /// state: the session's batches may run here directly from now on.
    pub fn idle(&self) -> bool {
        self.pending.load(Ordering::SeqCst) == 0 && !self.stateful.load(Ordering::SeqCst)
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
    /// The session's state on the leader's side, as its replies showed it.
    state: SessionState,
    stateful: Arc<AtomicBool>,
}

/// What a relayed connection holds for the session.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct SessionState {
    db: u16,
    in_multi: bool,
    watching: bool,
    /// A MULTI or WATCH was lost with a connection: the next EXEC aborts.
    lost_txn: bool,
}

impl SessionState {
    fn is_default(&self) -> bool {
        *self == SessionState::default()
    }

    /// Follows `request` answered with `reply`.
    fn note(&mut self, request: &Request, reply: &Frame) {
        let Some(name) = request.first() else {
            return;
        };
        let ok = !matches!(reply, Frame::Error(_));
        let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
        // (A SELECT inside MULTI is only queued: it is not followed.)
        if is("select") && ok && !self.in_multi {
            if let Some(db) = request
                .get(1)
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| d.parse().ok())
            {
                self.db = db;
            }
        } else if is("multi") && ok {
            self.in_multi = true;
        } else if is("watch") && ok {
            self.watching = true;
        } else if is("unwatch") {
            self.watching = false;
            if !self.in_multi {
                self.lost_txn = false;
            }
        } else if is("exec") || is("discard") {
            self.in_multi = false;
            self.watching = false;
            self.lost_txn = false;
        } else if is("reset") {
            *self = SessionState::default();
        }
    }
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
            self.stateful
                .store(!self.state.is_default(), Ordering::SeqCst);
            self.pending.fetch_sub(1, Ordering::SeqCst);
        }
    }

    async fn handle(&mut self, job: Job) {
        loop {
            let view = self.view.borrow_and_update().clone();
            if view.here && self.state.is_default() {
                self.conn = None;
                self.owner.do_send(ExecuteHere(job));
                return;
            }
            if view.here {
                // The session's state lives on a connection: carry it over to this node's
                // own client port like to any leader.
                let (me, addr) = view.me.clone();
                self.relay(job, me, addr).await;
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
            let mut conn = connect(leader, addr, self.password.as_deref()).await?;
            let s = &mut self.state;
            if s.in_multi || s.watching {
                // Lost with the old connection: the transaction must not run half.
                s.lost_txn = true;
                s.watching = false;
            }
            if s.db != 0 {
                let db = s.db.to_string();
                setup(&mut conn, &[b"SELECT".as_slice(), db.as_bytes()]).await?;
            }
            if s.in_multi {
                // Queue the rest of it on the new connection; EXEC becomes DISCARD below.
                setup(&mut conn, &[b"MULTI".as_slice()]).await?;
            }
            self.conn = Some(conn);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(RelayError::Closed);
        };
        let mut out = BytesMut::new();
        let mut aborted = Vec::new();
        for (i, request) in job.requests.iter().enumerate() {
            let exec = request
                .first()
                .is_some_and(|n| n.eq_ignore_ascii_case(b"exec"));
            if exec && self.state.lost_txn {
                encode_request(&[b"DISCARD".as_slice()], &mut out);
                aborted.push(i);
            } else {
                encode_request(request, &mut out);
            }
        }
        timed(conn.stream.write_all(&out)).await??;
        while replies.len() < job.requests.len() {
            let frame = read_frame(conn).await?;
            if matches!(frame, Frame::Push(_)) {
                // Out of band (a Pub/Sub message on the leader): not a reply.
                continue;
            }
            let i = replies.len();
            self.state.note(&job.requests[i], &frame);
            if aborted.contains(&i) {
                replies.push(Frame::NullArray);
            } else {
                replies.push(frame);
            }
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

/// Sends one setup request on a fresh connection; an error reply fails the connection.
async fn setup(conn: &mut Conn, request: &[&[u8]]) -> Result<(), RelayError> {
    let mut out = BytesMut::new();
    encode_request(request, &mut out);
    timed(conn.stream.write_all(&out)).await??;
    match read_frame(conn).await? {
        Frame::Error(e) => Err(RelayError::Setup(e)),
        _ => Ok(()),
    }
}

/// Connects to the leader's client address and switches the connection to RESP3 (with
/// `AUTH default <password>` when the cluster's nodes require one).
async fn connect(leader: NodeId, addr: &str, password: Option<&str>) -> Result<Conn, RelayError> {
    let stream = timed(TcpStream::connect(addr)).await??;
    super::network::refuse_self_connection(&stream)?;
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
