//! A session: one per client connection. It decodes every complete request in its read
//! buffer and sends them to the store owner as one batch, then writes the replies in request
//! order (batches are numbered; replies that come back early wait for those before them).
//! QUIT and protocol errors are answered here, after every earlier reply, and close the
//! connection; so are AUTH, HELLO and, before authentication, every command whose row in the
//! command table lacks the `NO_AUTH` flag (`-NOAUTH`). Which commands the session answers
//! itself is the row's `session` field (QUIT, AUTH, HELLO), not a list here.
//!
//! The session holds the connection's protocol (RESP2 until `HELLO 3`). Replies are typed
//! frames; the encoder writes each for the protocol in force where it stands in the reply
//! stream: a HELLO's reply switches it, so the replies to requests sent before the HELLO
//! still go out in the old protocol even if they are written later.
//!
//! Bounds: the codec holds at most `max_query_buffer` bytes of an incomplete request; replies
//! not yet taken by the client are counted, and a client holding more than
//! `max_output_buffer` of them is disconnected (while the output is above the writer's high
//! watermark the session also stops reading requests); a client idle for `idle_timeout_s` is
//! disconnected; each session holds one of the listener's `max_clients` slots.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use actix::io::{FramedWrite, WriteHandler};
use actix::prelude::*;
use bytes::BytesMut;
use tokio::io::AsyncWrite;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio_util::codec::{Encoder, FramedRead};

use super::ticker;
use super::{
    Batch, Control, Peer, Replies, SessionClosed, SessionNamed, SessionOpened, StoreOwner,
};
use crate::auth::{self, Password};
use crate::codec::RespCodec;
use crate::config::PubSubLimits;
use crate::live::LiveConfig;
use moodb_core::command::server::{self, HelloOption};
use moodb_core::command::table::{self, session_command, Flags, SessionCommand};
use moodb_core::command::txn::SessionId;
use moodb_core::command::ReplyError;
use moodb_core::resp::{DecodeError, Frame, Limits, Protocol, Request};

/// Gives each session its identity (unique for the life of the process).
static NEXT_SESSION_ID: AtomicU64 = AtomicU64::new(1);

/// What every session of a server shares.
#[derive(Debug, Clone, Default)]
pub struct SessionConfig {
    pub limits: Limits,
    /// Clients must AUTH with this password first (`requirepass`).
    pub password: Option<Password>,
    /// The output limit of a client with subscriptions.
    pub pubsub: PubSubLimits,
}

/// One of the listener's `max_clients` slots, given back when the session ends.
#[derive(Debug)]
pub struct ClientSlot(Arc<AtomicUsize>);

impl ClientSlot {
    /// Takes a slot from `count` unless `max` are taken.
    pub fn take(count: &Arc<AtomicUsize>, max: usize) -> Option<ClientSlot> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| ClientSlot(Arc::clone(count)))
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Reply bytes encoded but not yet taken by the socket.
type Pending = Rc<Cell<usize>>;

/// The protocol the next reply written is encoded in (shared by the session and its encoder).
type WireProtocol = Rc<Cell<Protocol>>;

/// The reply encoder: encodes for the connection's protocol, counting what it adds to the
/// write buffer.
struct CountingCodec {
    pending: Pending,
    proto: WireProtocol,
}

impl Encoder<Frame> for CountingCodec {
    type Error = std::io::Error;

    fn encode(&mut self, frame: Frame, out: &mut BytesMut) -> Result<(), std::io::Error> {
        let before = out.len();
        moodb_core::resp::encode(&frame, self.proto.get(), out);
        self.pending.set(self.pending.get() + (out.len() - before));
        Ok(())
    }
}

/// The socket's write half, counting what it takes.
struct CountingWrite(OwnedWriteHalf, Pending);

impl AsyncWrite for CountingWrite {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.0).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &result {
            this.1.set(this.1.get().saturating_sub(*n));
        }
        result
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// One client connection.
pub struct Session {
    id: SessionId,
    store: Addr<StoreOwner>,
    /// Where the store owner sends this session's replies: made once, shared by every batch
    /// (a fresh `ctx.address().recipient()` per batch cost three allocations).
    reply_to: Arc<Recipient<Replies>>,
    writer: FramedWrite<Frame, CountingWrite, CountingCodec>,
    /// Reply bytes in the write buffer.
    pending_out: Pending,
    config: Arc<SessionConfig>,
    /// Where CONFIG SET's changes to `config` come from, and the change last seen.
    live: Arc<LiveConfig>,
    live_seen: u64,
    authenticated: bool,
    /// The protocol after every request read so far (HELLO changes it).
    proto: Protocol,
    /// The protocol replies are being written in: it follows `proto` in reply order.
    wire_proto: WireProtocol,
    /// Batches whose reply is a HELLO's: the protocol to write in from that reply on.
    switch_at: BTreeMap<u64, Protocol>,
    /// Batches that are a RESET: from its reply on, no subscriptions and no MONITOR.
    reset_at: Vec<u64>,
    /// The session sent MONITOR: its output is bounded as a Pub/Sub client's.
    monitoring: bool,
    /// When the periodic check last saw the session active, for the idle timeout: a clock
    /// read per check instead of one per request and per reply.
    last_active: Instant,
    /// A request was read or a reply written since the last check.
    active: bool,
    peer: String,
    /// The server's address the client connected to, and the socket's descriptor (CLIENT
    /// LIST's `laddr` and `fd`).
    laddr: String,
    fd: i64,
    _slot: ClientSlot,
    /// Number given to the next batch.
    next_seq: u64,
    /// Number of the next batch whose replies go out.
    next_out: u64,
    /// Replies that arrived before those of earlier batches.
    ready: BTreeMap<u64, Vec<Frame>>,
    /// Pub/Sub messages to write after the replies of a batch not yet written.
    pushes_after: BTreeMap<u64, Vec<Frame>>,
    /// About how many bytes `pushes_after` holds: they count toward the output limits, so a
    /// subscriber whose reply waits (a SAVE, a write not yet durable) cannot pile up messages.
    held_push_bytes: usize,
    /// Channels and patterns subscribed, as the last confirmation written said: a client
    /// with subscriptions is under the Pub/Sub output limit.
    subscriptions: i64,
    /// Since when the output has been above the Pub/Sub soft limit.
    soft_since: Option<Instant>,
    /// Close the connection once the replies of this batch are written.
    close_after: Option<u64>,
    /// The client closed its side; stop once every reply is written.
    eof: bool,
}

impl Session {
    /// Starts a session actor on the current arbiter for `stream`, holding `slot`.
    pub fn start(
        stream: TcpStream,
        store: Addr<StoreOwner>,
        live: Arc<LiveConfig>,
        slot: ClientSlot,
    ) -> Addr<Session> {
        let live_seen = live.generation();
        let config = live.get();
        // Replies are written as soon as they are ready: no Nagle delay.
        let _ = stream.set_nodelay(true);
        let peer = stream
            .peer_addr()
            .map_or_else(|_| "?".to_string(), |a| a.to_string());
        let laddr = stream
            .local_addr()
            .map_or_else(|_| "?".to_string(), |a| a.to_string());
        let fd = i64::from(std::os::fd::AsRawFd::as_raw_fd(&stream));
        let (read, write) = stream.into_split();
        Session::create(move |ctx| {
            ctx.add_stream(FramedRead::new(read, RespCodec::new(config.limits)));
            let pending_out = Pending::default();
            let wire_proto = WireProtocol::default();
            let writer = FramedWrite::new(
                CountingWrite(write, Rc::clone(&pending_out)),
                CountingCodec {
                    pending: Rc::clone(&pending_out),
                    proto: Rc::clone(&wire_proto),
                },
                ctx,
            );
            Session {
                id: NEXT_SESSION_ID.fetch_add(1, Ordering::Relaxed),
                store,
                reply_to: Arc::new(ctx.address().recipient()),
                writer,
                pending_out,
                authenticated: config.password.is_none(),
                proto: Protocol::default(),
                wire_proto,
                switch_at: BTreeMap::new(),
                reset_at: Vec::new(),
                monitoring: false,
                config,
                live,
                live_seen,
                last_active: Instant::now(),
                active: false,
                peer,
                laddr,
                fd,
                _slot: slot,
                next_seq: 0,
                next_out: 0,
                ready: BTreeMap::new(),
                pushes_after: BTreeMap::new(),
                held_push_bytes: 0,
                subscriptions: 0,
                soft_since: None,
                close_after: None,
                eof: false,
            }
        })
    }

    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Answers locally with `frame` after every earlier reply, then closes.
    fn close_with(&mut self, frame: Frame, ctx: &mut Context<Self>) {
        let seq = self.take_seq();
        self.close_after = Some(seq);
        self.ready.insert(seq, vec![frame]);
        self.write_ready(ctx);
    }

    /// Answers locally with `frame`, in order with the replies of earlier batches.
    fn reply_here(&mut self, frame: Frame, ctx: &mut Context<Self>) {
        let seq = self.take_seq();
        self.ready.insert(seq, vec![frame]);
        self.write_ready(ctx);
    }

    /// `HELLO [protover [AUTH user pass] [SETNAME name]]`, as Redis 7.0 answers it: the
    /// options take effect in order (an error stops there), then a client that is still not
    /// authenticated is refused; otherwise the protocol switches and the server map comes back
    /// (in the new protocol). Returns the reply and whether it switches the protocol.
    fn hello(&mut self, request: &Request) -> (Frame, bool) {
        let rest = request.get(1..).unwrap_or_default();
        let version = match server::hello_version(rest) {
            Ok(version) => version,
            Err(err) => return (err.into(), false),
        };
        for option in server::hello_options(rest) {
            match option {
                Ok(HelloOption::Auth { user, pass }) => {
                    match auth::hello_auth(user, pass, self.config.password.as_ref()) {
                        Ok(()) => self.authenticated = true,
                        Err(err) => return (err.into(), false),
                    }
                }
                Ok(HelloOption::SetName(name)) => {
                    // Before any later request of this connection reaches the store owner.
                    self.store.do_send(SessionNamed {
                        session: self.id,
                        name: name.clone(),
                    });
                }
                Err(err) => return (err.into(), false),
            }
        }
        if !self.authenticated {
            return (ReplyError::HelloNoAuth.into(), false);
        }
        if let Some(proto) = version {
            self.proto = proto;
        }
        (server::hello_reply(self.id, self.proto), true)
    }

    /// Sends `requests` (if any) to the store owner as one batch.
    fn send_batch(&mut self, requests: &mut Vec<Request>) {
        if !requests.is_empty() {
            let seq = self.take_seq();
            self.store.do_send(Batch {
                session: self.id,
                seq,
                requests: std::mem::take(requests),
                reply_to: Arc::clone(&self.reply_to),
                proto: self.proto,
            });
        }
    }

    fn write_ready(&mut self, ctx: &mut Context<Self>) {
        while let Some(frames) = self.ready.remove(&self.next_out) {
            if !self.write_next(frames, ctx) {
                return;
            }
        }
        if self.eof && self.next_out == self.next_seq {
            ctx.stop();
        }
    }

    /// Writes `frames`, the replies of batch `next_out`. Returns false if the session is
    /// closing or stopping, when nothing more may be written.
    fn write_next(&mut self, frames: Vec<Frame>, ctx: &mut Context<Self>) -> bool {
        self.active = true;
        if let Some(proto) = self.switch_at.remove(&self.next_out) {
            self.wire_proto.set(proto);
        }
        if self.reset_at.first() == Some(&self.next_out) {
            self.reset_at.remove(0);
            self.subscriptions = 0;
            self.monitoring = false;
        }
        self.write_frames(frames);
        if let Some(pushes) = self.pushes_after.remove(&self.next_out) {
            let held: usize = pushes.iter().map(approx_len).sum();
            self.held_push_bytes = self.held_push_bytes.saturating_sub(held);
            self.write_frames(pushes);
        }
        if !self.output_fits(ctx) {
            return false;
        }
        if self.close_after == Some(self.next_out) {
            // Flushes what is buffered, then shuts the socket; `finished` stops us.
            self.writer.close();
            self.ready.clear();
            return false;
        }
        self.next_out += 1;
        true
    }
}

/// About the encoded size of a Pub/Sub message (its strings and a few bytes of framing each).
fn approx_len(frame: &Frame) -> usize {
    match frame {
        Frame::Push(items) | Frame::Array(items) => 4 + items.iter().map(approx_len).sum::<usize>(),
        Frame::Bulk(b) => b.len() + 8,
        _ => 8,
    }
}

impl Session {
    /// Writes `frames`, noting the subscription count of any confirmation among them.
    fn write_frames(&mut self, frames: Vec<Frame>) {
        for frame in frames {
            if let Frame::Push(items) = &frame {
                if let [Frame::Bulk(kind), _, Frame::Integer(n)] = items.as_slice() {
                    if kind.ends_with(b"subscribe") {
                        self.subscriptions = *n;
                    }
                }
            }
            self.writer.write(frame);
        }
    }

    /// Checks the output limits; a client past one is disconnected (false).
    fn output_fits(&mut self, ctx: &mut Context<Self>) -> bool {
        self.live.refresh(&mut self.live_seen, &mut self.config);
        let pending = self.pending_out.get() + self.held_push_bytes;
        let max = self.config.limits.max_output_buffer;
        let over = if max > 0 && pending > max {
            Some(format!("limits.max_output_buffer ({max})"))
        } else if self.subscriptions > 0 || self.monitoring || self.held_push_bytes > 0 {
            self.pubsub_over(pending)
        } else {
            None
        };
        let Some(limit) = over else {
            return true;
        };
        eprintln!(
            "moodb: disconnecting client {}: {pending} bytes of replies it has not read exceed \
             {limit}",
            self.peer,
        );
        self.ready.clear();
        self.pushes_after.clear();
        self.held_push_bytes = 0;
        ctx.stop();
        false
    }

    /// Which Pub/Sub output limit `pending` bytes break, if any.
    fn pubsub_over(&mut self, pending: usize) -> Option<String> {
        let l = self.config.pubsub;
        if l.hard_bytes > 0 && pending > l.hard_bytes {
            return Some(format!("pubsub.hard_bytes ({})", l.hard_bytes));
        }
        if l.soft_bytes == 0 || pending <= l.soft_bytes {
            self.soft_since = None;
            return None;
        }
        let since = *self.soft_since.get_or_insert_with(Instant::now);
        (since.elapsed() >= Duration::from_secs(l.soft_seconds)).then(|| {
            format!(
                "pubsub.soft_bytes ({}) for pubsub.soft_seconds ({})",
                l.soft_bytes, l.soft_seconds
            )
        })
    }
}

impl Actor for Session {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.store.do_send(SessionOpened {
            session: self.id,
            peer: Peer {
                addr: self.peer.clone(),
                laddr: self.laddr.clone(),
                fd: self.fd,
            },
            control: ctx.address().recipient(),
        });
        // Checked every second (more often for a short timeout), also while it is 0: CONFIG
        // SET timeout applies to connected clients too.
        let idle = self.config.limits.idle_timeout_s;
        let every = if idle > 0 {
            (Duration::from_secs(idle) / 4)
                .clamp(Duration::from_millis(100), Duration::from_secs(1))
        } else {
            Duration::from_secs(1)
        };
        ticker::every(&ctx.address(), every, || Housekeep);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.store.do_send(SessionClosed(self.id));
    }
}

impl StreamHandler<Result<Vec<Request>, DecodeError>> for Session {
    fn handle(&mut self, item: Result<Vec<Request>, DecodeError>, ctx: &mut Context<Self>) {
        if self.close_after.is_some() {
            return;
        }
        self.active = true;
        self.live.refresh(&mut self.live_seen, &mut self.config);
        match item {
            Ok(mut requests) => {
                // The usual case: nothing for the session itself to answer, so the decoded
                // batch goes to the store owner as it is (the codec drops empty requests).
                let local = |r: &Request| r.first().is_none_or(|n| session_command(n).is_some());
                if self.authenticated && !requests.iter().any(local) {
                    self.send_batch(&mut requests);
                    return;
                }
                let mut batch = Vec::with_capacity(requests.len());
                for request in requests {
                    let Some(name) = request.first() else {
                        continue;
                    };
                    let spec = table::lookup(name);
                    let config = Arc::clone(&self.config);
                    let password = config.password.as_ref();
                    match spec.and_then(|s| s.session) {
                        Some(SessionCommand::Quit) => {
                            self.send_batch(&mut batch);
                            self.close_with(Frame::ok(), ctx);
                            return;
                        }
                        Some(SessionCommand::Auth) => {
                            self.send_batch(&mut batch);
                            let (reply, ok) = auth::auth(&request, password);
                            self.authenticated |= ok;
                            self.reply_here(reply, ctx);
                            continue;
                        }
                        Some(SessionCommand::Reset) => {
                            // The session's part: RESP2 and, with a password, not
                            // authenticated; the store resets the rest in order.
                            self.send_batch(&mut batch);
                            self.proto = Protocol::Resp2;
                            self.authenticated = password.is_none();
                            self.switch_at.insert(self.next_seq, Protocol::Resp2);
                            self.reset_at.push(self.next_seq);
                            self.send_batch(&mut vec![request]);
                            continue;
                        }
                        Some(SessionCommand::Hello) => {
                            self.send_batch(&mut batch);
                            let (reply, switches) = self.hello(&request);
                            if switches {
                                // The reply's batch number is the next one taken.
                                self.switch_at.insert(self.next_seq, self.proto);
                            }
                            self.reply_here(reply, ctx);
                            continue;
                        }
                        _ if !self.authenticated && !spec.is_some_and(|s| s.is(Flags::NO_AUTH)) => {
                            self.send_batch(&mut batch);
                            self.reply_here(auth::noauth(), ctx);
                            continue;
                        }
                        _ => {}
                    }
                    batch.push(request);
                }
                self.send_batch(&mut batch);
            }
            Err(DecodeError::Protocol(msg)) => {
                self.close_with(ReplyError::Protocol(msg).into(), ctx)
            }
            Err(DecodeError::Io(_)) => ctx.stop(),
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        self.eof = true;
        if self.close_after.is_none() && self.next_out == self.next_seq {
            ctx.stop();
        }
    }
}

impl Handler<Replies> for Session {
    type Result = ();

    fn handle(&mut self, msg: Replies, ctx: &mut Context<Self>) {
        if msg.push {
            if self.close_after.is_some() {
                return;
            }
            if msg.seq < self.next_out {
                // Its batch's replies are written: the messages go out now.
                self.write_frames(msg.frames);
                self.output_fits(ctx);
            } else {
                self.held_push_bytes += msg.frames.iter().map(approx_len).sum::<usize>();
                self.pushes_after
                    .entry(msg.seq)
                    .or_default()
                    .extend(msg.frames);
                self.output_fits(ctx);
            }
            return;
        }
        if msg.seq == self.next_out {
            // In order (the usual case): write them without a trip through `ready`.
            if !self.write_next(msg.frames, ctx) {
                return;
            }
        } else {
            self.ready.insert(msg.seq, msg.frames);
        }
        self.write_ready(ctx);
    }
}

/// The session's periodic check: CONFIG SET's changes, and the idle timeout.
#[derive(Message)]
#[rtype(result = "()")]
struct Housekeep;

impl Handler<Housekeep> for Session {
    type Result = ();

    fn handle(&mut self, _: Housekeep, ctx: &mut Context<Self>) {
        self.live.refresh(&mut self.live_seen, &mut self.config);
        let idle = self.config.limits.idle_timeout_s;
        // As in Redis, a client with subscriptions (or a monitor) is never idle.
        let waiting = self.next_out != self.next_seq
            || self.pending_out.get() > 0
            || self.subscriptions > 0
            || self.monitoring;
        if std::mem::take(&mut self.active) {
            // Active since the last check, which was at most a check period ago: the idle
            // time is counted from now, so a timeout fires late by at most that period,
            // never early.
            self.last_active = Instant::now();
        } else if idle > 0 && !waiting && self.last_active.elapsed() >= Duration::from_secs(idle) {
            ctx.stop();
        }
    }
}

impl Handler<Control> for Session {
    type Result = ();

    fn handle(&mut self, msg: Control, ctx: &mut Context<Self>) {
        match msg {
            Control::Monitor => self.monitoring = true,
            // Killed by another client: gone at once, as Redis frees it.
            Control::Close { after_seq: None } => ctx.stop(),
            Control::Close {
                after_seq: Some(seq),
            } => {
                if seq < self.next_out {
                    self.writer.close();
                    self.close_after = Some(seq);
                } else if self.close_after.is_none_or(|c| c > seq) {
                    self.close_after = Some(seq);
                }
            }
        }
    }
}

impl WriteHandler<std::io::Error> for Session {}
