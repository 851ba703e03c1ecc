//! The session's `tokio_util` decoder: the core's [`BatchDecoder`] for requests. Replies are
//! encoded by the session's writer, for the connection's protocol (`actors::session`).

use bytes::BytesMut;
use moodb_core::resp::{BatchDecoder, DecodeError, Limits, Request};

/// Decodes every complete request in the read buffer as one batch.
#[derive(Debug, Clone, Default)]
pub struct RespCodec(BatchDecoder);

impl RespCodec {
    pub fn new(limits: Limits) -> Self {
        RespCodec(BatchDecoder::new(limits))
    }
}

impl tokio_util::codec::Decoder for RespCodec {
    type Item = Vec<Request>;
    type Error = DecodeError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, DecodeError> {
        self.0.decode(buf)
    }
}
