//! RESP2, the Redis wire protocol: the [`Frame`] type, the request decoder (with its
//! configurable limits) and the reply encoder, plus a `tokio_util` codec joining both for the
//! server's sessions.

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

    /// `-ERR <msg>`.
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

/// The session codec: decodes every complete request in the read buffer as one batch, and
/// encodes reply frames. It holds at most `limits.max_query_buffer` bytes of a request that
/// has not fully arrived.
#[derive(Debug, Clone, Default)]
pub struct RespCodec {
    pub limits: Limits,
    progress: decode::Progress,
}

impl RespCodec {
    pub fn new(limits: Limits) -> Self {
        RespCodec {
            limits,
            progress: decode::Progress::default(),
        }
    }
}

impl tokio_util::codec::Decoder for RespCodec {
    type Item = Vec<Request>;
    type Error = DecodeError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, DecodeError> {
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

impl tokio_util::codec::Encoder<Frame> for RespCodec {
    type Error = std::io::Error;

    fn encode(&mut self, frame: Frame, out: &mut BytesMut) -> Result<(), std::io::Error> {
        encode(&frame, out);
        Ok(())
    }
}
