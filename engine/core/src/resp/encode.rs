//! Writes RESP2 frames into a byte buffer.

use bytes::{BufMut, BytesMut};

use super::Frame;

/// Appends the wire form of `frame` to `out`.
pub fn encode(frame: &Frame, out: &mut BytesMut) {
    match frame {
        Frame::Simple(s) => line(out, b'+', s.as_bytes()),
        Frame::Error(s) => line(out, b'-', s.as_bytes()),
        Frame::Integer(n) => int_line(out, b':', *n),
        Frame::Bulk(data) => {
            int_line(out, b'$', data.len() as i64);
            out.reserve(data.len() + 2);
            out.put_slice(data);
            out.put_slice(b"\r\n");
        }
        Frame::Null => out.put_slice(b"$-1\r\n"),
        Frame::NullArray => out.put_slice(b"*-1\r\n"),
        Frame::Array(items) => {
            int_line(out, b'*', items.len() as i64);
            for item in items {
                encode(item, out);
            }
        }
    }
}

/// Appends a request (an array of bulk strings) to `out`, as clients send it.
pub fn encode_request<A: AsRef<[u8]>>(args: &[A], out: &mut BytesMut) {
    int_line(out, b'*', args.len() as i64);
    for arg in args {
        let arg = arg.as_ref();
        int_line(out, b'$', arg.len() as i64);
        out.put_slice(arg);
        out.put_slice(b"\r\n");
    }
}

fn line(out: &mut BytesMut, tag: u8, body: &[u8]) {
    out.reserve(body.len() + 3);
    out.put_u8(tag);
    if body.iter().any(|&b| b == b'\r' || b == b'\n') {
        // A simple string or error may not contain a line break: replace any with spaces.
        for &b in body {
            out.put_u8(if b == b'\r' || b == b'\n' { b' ' } else { b });
        }
    } else {
        out.put_slice(body);
    }
    out.put_slice(b"\r\n");
}

/// `tag`, `n` in decimal and `\r\n`, formatted on the stack (no `String` per reply).
fn int_line(out: &mut BytesMut, tag: u8, n: i64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.reserve(digits.len() - at + 4);
    out.put_u8(tag);
    if n < 0 {
        out.put_u8(b'-');
    }
    out.put_slice(&digits[at..]);
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
        assert_eq!(wire(&Frame::Integer(0)), b":0\r\n");
        assert_eq!(
            wire(&Frame::Integer(i64::MIN)),
            b":-9223372036854775808\r\n"
        );
        assert_eq!(wire(&Frame::Integer(i64::MAX)), b":9223372036854775807\r\n");
        assert_eq!(wire(&Frame::Null), b"$-1\r\n");
        assert_eq!(wire(&Frame::NullArray), b"*-1\r\n");
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
