//! RESP2, the Redis wire protocol: the [`Frame`] type, the request decoder (with its
//! configurable limits) and the reply encoder, and the batch decoder a session
//! runs over its read buffer (the server wraps it in a `tokio_util` codec).

pub mod decode;
pub mod encode;

use bytes::{Bytes, BytesMut};

pub use decode::{decode_frame, decode_request, decode_request_resuming, DecodeError, Limits};
pub use encode::encode;

/// One RESP2 value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// `+OK`
    Simple(String),
    /// `-ERR message`: the text after `-` (it starts with the error kind, e.g. `ERR`).
    Error(String),
    /// `:42`
    Integer(i64),
    /// `$3\r\nabc`
    Bulk(Bytes),
    /// `$-1`: the RESP2 nil.
    Null,
    /// `*2\r\n...`
    Array(Vec<Frame>),
    /// `*-1`: the RESP2 nil array (EXEC of a transaction aborted by WATCH).
    NullArray,
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
}

/// One request: the command name and its arguments, binary safe.
pub type Request = Vec<Bytes>;

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
