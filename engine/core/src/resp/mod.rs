//! RESP, the Redis wire protocol, in both versions: the [`Frame`] type (RESP2's values and
//! RESP3's), the request decoder (with its configurable limits), the reply encoder (which
//! writes a frame for the connection's [`Protocol`], as Redis does), and the batch decoder a
//! session runs over its read buffer (the server wraps it in a `tokio_util` codec).
//!
//! Commands build typed frames (a map, a set, a double, a null) and never bytes: whether a map
//! goes out as RESP3's `%` or as RESP2's flat array is the encoder's business, so a command
//! answers both protocols with one reply.

pub mod decode;
pub mod encode;

use bytes::{Bytes, BytesMut};
use smallvec::SmallVec;
use std::borrow::Cow;

pub use decode::{decode_frame, decode_request, decode_request_resuming, DecodeError, Limits};
pub use encode::{encode, format_double};

/// The protocol a connection speaks: RESP2 until the client sends `HELLO 3`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Protocol {
    #[default]
    Resp2,
    Resp3,
}

impl Protocol {
    /// `HELLO`'s `protover`: 2 or 3; anything else is not a protocol MooDB speaks.
    pub fn from_version(version: i64) -> Option<Protocol> {
        match version {
            2 => Some(Protocol::Resp2),
            3 => Some(Protocol::Resp3),
            _ => None,
        }
    }

    /// 2 or 3, as HELLO's `proto` field says it.
    pub fn version(self) -> i64 {
        match self {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        }
    }
}

/// A double in a [`Frame`]: equal when the bits are, so a frame can be `Eq` and a NaN equals
/// itself (the decoder reads every NaN as [`f64::NAN`]).
#[derive(Debug, Clone, Copy)]
pub struct Float(pub f64);

impl PartialEq for Float {
    fn eq(&self, other: &Float) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Float {}

/// One RESP value. The first seven are RESP2's; the rest are RESP3's, which the encoder turns
/// into RESP2 as Redis 7 does when the connection speaks RESP2 (see [`Frame::to_resp2`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// `+OK`: a static text for the fixed replies (OK, QUEUED, PONG), so they cost no allocation.
    Simple(Cow<'static, str>),
    /// `-ERR message`: the text after `-` (it starts with the error kind, e.g. `ERR`).
    Error(String),
    /// `:42`
    Integer(i64),
    /// `$3\r\nabc`
    Bulk(Bytes),
    /// Nil where a string was expected: RESP2 `$-1`, RESP3 `_`.
    Null,
    /// `*2\r\n...`
    Array(Vec<Frame>),
    /// Nil where an array was expected (EXEC of a transaction aborted by WATCH): RESP2 `*-1`,
    /// RESP3 `_`.
    NullArray,
    /// RESP3 `%2\r\n` and the pairs; RESP2: a flat array of keys and values.
    Map(Vec<(Frame, Frame)>),
    /// RESP3 `~2\r\n...`; RESP2: an array.
    Set(Vec<Frame>),
    /// RESP3 `,1.5`; RESP2: a bulk string. Both in Redis 7.0's `%.17g` ([`format_double`]).
    Double(Float),
    /// RESP3 `#t` / `#f`; RESP2: `:1` / `:0`.
    Boolean(bool),
    /// RESP3 `=<len>\r\ntxt:<text>` (`format` is the three-byte type, `txt` or `mkd`);
    /// RESP2: a bulk string of `text`.
    Verbatim { format: [u8; 3], text: Bytes },
    /// RESP3 `(<digits>`; RESP2: a bulk string of the digits.
    BigNumber(String),
    /// RESP3 `>2\r\n...`, out-of-band data (pub/sub messages); RESP2: an array.
    Push(Vec<Frame>),
}

impl Frame {
    /// `+OK`.
    pub fn ok() -> Frame {
        Frame::Simple("OK".into())
    }

    /// `-ERR <msg>`. The server's own error replies are [`crate::command::ReplyError`]s, so
    /// their texts live in one place; this is for tests and tools.
    pub fn err(msg: impl std::fmt::Display) -> Frame {
        Frame::Error(format!("ERR {msg}"))
    }

    /// A bulk string copied from `data`.
    pub fn bulk(data: impl AsRef<[u8]>) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(data.as_ref()))
    }

    /// A double.
    pub fn double(d: f64) -> Frame {
        Frame::Double(Float(d))
    }

    /// A verbatim string of plain text (`txt`), as INFO and CLIENT INFO answer in RESP3.
    pub fn verbatim_text(text: impl Into<Bytes>) -> Frame {
        Frame::Verbatim {
            format: *b"txt",
            text: text.into(),
        }
    }

    /// A map whose keys are bulk strings.
    pub fn map<K: AsRef<[u8]>>(pairs: impl IntoIterator<Item = (K, Frame)>) -> Frame {
        Frame::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (Frame::bulk(k), v))
                .collect(),
        )
    }

    /// The frame a RESP2 client gets for this one: what [`encode`] writes under
    /// [`Protocol::Resp2`] decodes to it. For tools and tests that show replies as RESP2
    /// clients (redis-cli without `-3`) see them; the encoder itself never builds it.
    pub fn to_resp2(&self) -> Frame {
        let all = |items: &[Frame]| Frame::Array(items.iter().map(Frame::to_resp2).collect());
        match self {
            Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => all(items),
            Frame::Map(pairs) => Frame::Array(
                pairs
                    .iter()
                    .flat_map(|(k, v)| [k.to_resp2(), v.to_resp2()])
                    .collect(),
            ),
            Frame::Double(d) => Frame::bulk(format_double(d.0)),
            Frame::Boolean(b) => Frame::Integer(i64::from(*b)),
            Frame::Verbatim { text, .. } => Frame::Bulk(text.clone()),
            Frame::BigNumber(n) => Frame::bulk(n),
            other => other.clone(),
        }
    }
}

/// One request: the command name and its arguments, binary safe. Up to three words (GET k,
/// SET k v, INCR k, DEL k) live inside it, so decoding a request allocates nothing of its own.
pub type Request = SmallVec<[Bytes; REQUEST_INLINE_ARGS]>;

/// The words a [`Request`] holds without an allocation.
pub const REQUEST_INLINE_ARGS: usize = 3;

/// Splits a session's read buffer into batches: every complete request in the buffer, in
/// order, as one batch. It holds at most `limits.max_query_buffer` bytes of a request that has
/// not fully arrived, and resumes a partly read request where it stopped.
#[derive(Debug, Clone, Default)]
pub struct BatchDecoder {
    pub limits: Limits,
    progress: decode::Progress,
}

impl BatchDecoder {
    pub fn new(limits: Limits) -> Self {
        BatchDecoder {
            limits,
            progress: decode::Progress::default(),
        }
    }

    /// Every complete request in `buf` (consumed), or `None` when none is complete yet.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Request>>, DecodeError> {
        let mut batch = Vec::new();
        loop {
            match decode_request_resuming(buf, &self.limits, &mut self.progress) {
                Ok(Some(request)) => {
                    if !request.is_empty() {
                        batch.push(request);
                    }
                }
                Ok(None) => break,
                // Hand over what came before the bad request first; the error comes again on
                // the next call, since the bad bytes are still in the buffer.
                Err(err) if batch.is_empty() => return Err(err),
                Err(_) => break,
            }
        }
        if batch.is_empty() && buf.len() > self.limits.max_query_buffer {
            return Err(DecodeError::Protocol(format!(
                "query buffer of {} bytes holds no complete request; the limit is {} bytes \
                 (limits.max_query_buffer)",
                buf.len(),
                self.limits.max_query_buffer
            )));
        }
        Ok((!batch.is_empty()).then_some(batch))
    }
}
