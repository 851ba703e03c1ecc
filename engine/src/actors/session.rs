//! A session: one per client connection. It decodes every complete request in its read
//! buffer and sends them to the store owner as one batch, then writes the replies in request
//! order (batches are numbered; replies that come back early wait for those before them).
//! QUIT and protocol errors are answered here, after every earlier reply, and close the
//! connection.

use std::collections::BTreeMap;

use actix::io::{FramedWrite, WriteHandler};
use actix::prelude::*;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio_util::codec::FramedRead;

use super::{Batch, Replies, SessionEvent, StoreOwner};
use crate::resp::{DecodeError, Frame, Limits, Request, RespCodec};

/// One client connection.
pub struct Session {
    store: Addr<StoreOwner>,
    writer: FramedWrite<Frame, OwnedWriteHalf, RespCodec>,
    /// Number given to the next batch.
    next_seq: u64,
    /// Number of the next batch whose replies go out.
    next_out: u64,
    /// Replies that arrived before those of earlier batches.
    ready: BTreeMap<u64, Vec<Frame>>,
    /// Close the connection once the replies of this batch are written.
    close_after: Option<u64>,
    /// The client closed its side; stop once every reply is written.
    eof: bool,
}

impl Session {
    /// Starts a session actor on the current arbiter for `stream`.
    pub fn start(stream: TcpStream, store: Addr<StoreOwner>, limits: Limits) -> Addr<Session> {
        // Replies are written as soon as they are ready: no Nagle delay.
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        Session::create(move |ctx| {
            ctx.add_stream(FramedRead::new(read, RespCodec { limits }));
            Session {
                store,
                writer: FramedWrite::new(write, RespCodec { limits }, ctx),
                next_seq: 0,
                next_out: 0,
                ready: BTreeMap::new(),
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

    fn write_ready(&mut self, ctx: &mut Context<Self>) {
        while let Some(frames) = self.ready.remove(&self.next_out) {
            for frame in frames {
                self.writer.write(frame);
            }
            if self.close_after == Some(self.next_out) {
                // Flushes what is buffered, then shuts the socket; `finished` stops us.
                self.writer.close();
                self.ready.clear();
                return;
            }
            self.next_out += 1;
        }
        if self.eof && self.next_out == self.next_seq {
            ctx.stop();
        }
    }
}

impl Actor for Session {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Context<Self>) {
        self.store.do_send(SessionEvent(true));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.store.do_send(SessionEvent(false));
    }
}

impl StreamHandler<Result<Vec<Request>, DecodeError>> for Session {
    fn handle(&mut self, item: Result<Vec<Request>, DecodeError>, ctx: &mut Context<Self>) {
        if self.close_after.is_some() {
            return;
        }
        match item {
            Ok(mut requests) => {
                let quit = requests
                    .iter()
                    .position(|r| r.first().is_some_and(|n| n.eq_ignore_ascii_case(b"QUIT")));
                if let Some(at) = quit {
                    requests.truncate(at);
                }
                if !requests.is_empty() {
                    let seq = self.take_seq();
                    self.store.do_send(Batch {
                        seq,
                        requests,
                        reply_to: ctx.address().recipient(),
                    });
                }
                if quit.is_some() {
                    self.close_with(Frame::ok(), ctx);
                }
            }
            Err(DecodeError::Protocol(msg)) => {
                self.close_with(Frame::err(format!("Protocol error: {msg}")), ctx)
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
        self.ready.insert(msg.seq, msg.frames);
        self.write_ready(ctx);
    }
}

impl WriteHandler<std::io::Error> for Session {}
