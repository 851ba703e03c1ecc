//! The session's `tokio_util` codec: the core's [`BatchDecoder`] for requests, and the RESP
//! reply encoder.

use bytes::BytesMut;
use moodb_core::resp::{encode, BatchDecoder, DecodeError, Frame, Limits, Request};

/// Decodes every complete request in the read buffer as one batch; encodes reply frames.
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

impl tokio_util::codec::Encoder<Frame> for RespCodec {
    type Error = std::io::Error;

    fn encode(&mut self, frame: Frame, out: &mut BytesMut) -> Result<(), std::io::Error> {
        encode(&frame, out);
        Ok(())
    }
}
