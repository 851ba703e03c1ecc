//! Writes RESP2 frames into a byte buffer.

use bytes::{BufMut, BytesMut};

use super::Frame;

/// Appends the wire form of `frame` to `out`.
pub fn encode(frame: &Frame, out: &mut BytesMut) {
    match frame {
        Frame::Simple(s) => line(out, b'+', s.as_bytes()),
        Frame::Error(s) => line(out, b'-', s.as_bytes()),
        Frame::Integer(n) => line(out, b':', n.to_string().as_bytes()),
        Frame::Bulk(data) => {
            line(out, b'$', data.len().to_string().as_bytes());
            out.reserve(data.len() + 2);
            out.put_slice(data);
            out.put_slice(b"\r\n");
        }
        Frame::Null => out.put_slice(b"$-1\r\n"),
        Frame::Array(items) => {
            line(out, b'*', items.len().to_string().as_bytes());
            for item in items {
                encode(item, out);
            }
        }
    }
}

/// Appends a request (an array of bulk strings) to `out`, as clients send it.
pub fn encode_request<A: AsRef<[u8]>>(args: &[A], out: &mut BytesMut) {
    line(out, b'*', args.len().to_string().as_bytes());
    for arg in args {
        let arg = arg.as_ref();
        line(out, b'$', arg.len().to_string().as_bytes());
        out.put_slice(arg);
        out.put_slice(b"\r\n");
    }
}

fn line(out: &mut BytesMut, tag: u8, body: &[u8]) {
    out.reserve(body.len() + 3);
    out.put_u8(tag);
    // A simple string or error may not contain a line break: replace any with spaces.
    for &b in body {
        out.put_u8(if b == b'\r' || b == b'\n' { b' ' } else { b });
    }
    out.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn wire(frame: &Frame) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode(frame, &mut out);
        out.to_vec()
    }

    #[test]
    fn frames_encode_as_redis_does() {
        assert_eq!(wire(&Frame::ok()), b"+OK\r\n");
        assert_eq!(wire(&Frame::err("boom")), b"-ERR boom\r\n");
        assert_eq!(wire(&Frame::Integer(-3)), b":-3\r\n");
        assert_eq!(wire(&Frame::Null), b"$-1\r\n");
        assert_eq!(
            wire(&Frame::Array(vec![
                Frame::Bulk(Bytes::from_static(b"a\r\nb")),
                Frame::Null
            ])),
            b"*2\r\n$4\r\na\r\nb\r\n$-1\r\n"
        );
        assert_eq!(wire(&Frame::Error("ERR a\r\nb".into())), b"-ERR a  b\r\n");
    }

    #[test]
    fn requests_encode_as_arrays_of_bulks() {
        let mut out = BytesMut::new();
        encode_request(&["SET", "k", ""], &mut out);
        assert_eq!(&out[..], b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
    }
}
