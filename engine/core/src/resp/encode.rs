//! Writes frames into a byte buffer, for the protocol the connection speaks: RESP3 types as
//! themselves under [`Protocol::Resp3`], and as Redis 7 sends them to a RESP2 client under
//! [`Protocol::Resp2`] (`addReplyMap`, `addReplySet`, `addReplyDouble`, `addReplyBool`,
//! `addReplyVerbatim`, `addReplyBigNum`, `addReplyNull` in redis `networking.c`).

use bytes::{BufMut, BytesMut};

use super::{Frame, Protocol};

/// Appends the wire form of `frame`, for a connection speaking `proto`, to `out`.
pub fn encode(frame: &Frame, proto: Protocol, out: &mut BytesMut) {
    let resp3 = proto == Protocol::Resp3;
    match frame {
        Frame::Simple(s) => line(out, b'+', s.as_bytes()),
        Frame::Error(s) => line(out, b'-', s.as_bytes()),
        Frame::Integer(n) => int_line(out, b':', *n),
        Frame::Bulk(data) => bulk(out, data),
        Frame::Null | Frame::NullArray if resp3 => out.put_slice(b"_\r\n"),
        Frame::Null => out.put_slice(b"$-1\r\n"),
        Frame::NullArray => out.put_slice(b"*-1\r\n"),
        Frame::Array(items) => aggregate(out, b'*', items, proto),
        Frame::Set(items) => aggregate(out, if resp3 { b'~' } else { b'*' }, items, proto),
        Frame::Push(items) => aggregate(out, if resp3 { b'>' } else { b'*' }, items, proto),
        Frame::Map(pairs) => {
            if resp3 {
                int_line(out, b'%', pairs.len() as i64);
            } else {
                int_line(out, b'*', 2 * pairs.len() as i64);
            }
            for (key, value) in pairs {
                encode(key, proto, out);
                encode(value, proto, out);
            }
        }
        Frame::Double(d) => {
            let text = format_double(d.0);
            if resp3 {
                line(out, b',', text.as_bytes());
            } else {
                bulk(out, text.as_bytes());
            }
        }
        Frame::Boolean(b) if resp3 => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
        Frame::Boolean(b) => int_line(out, b':', i64::from(*b)),
        Frame::Verbatim { format, text } if resp3 => {
            int_line(out, b'=', text.len() as i64 + 4);
            out.reserve(text.len() + 6);
            out.put_slice(format);
            out.put_u8(b':');
            out.put_slice(text);
            out.put_slice(b"\r\n");
        }
        Frame::Verbatim { text, .. } => bulk(out, text),
        Frame::BigNumber(n) if resp3 => line(out, b'(', n.as_bytes()),
        Frame::BigNumber(n) => bulk(out, n.as_bytes()),
    }
}

/// A double as Redis 7.0 writes it (C's `%.17g`, which reads back to the same double):
/// `0.10000000000000001`, `3`, `1.0000000000000001e+300`, `-0`, `inf`, `-inf`, `nan`.
pub fn format_double(d: f64) -> String {
    const PRECISION: i32 = 17;
    if d.is_nan() {
        return "nan".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf" } else { "-inf" }.into();
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // `%g` picks the style by the exponent `%e` would print at precision P - 1.
    let sci = format!("{:.*e}", (PRECISION - 1) as usize, d);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..PRECISION).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim_zeros(mantissa), exp.unsigned_abs())
    } else {
        let fixed = format!("{:.*}", (PRECISION - 1 - exp) as usize, d);
        trim_zeros(&fixed).to_string()
    }
}

/// `%g` drops trailing zeros of the fraction, and the point when nothing is left of it.
fn trim_zeros(number: &str) -> &str {
    if number.contains('.') {
        number.trim_end_matches('0').trim_end_matches('.')
    } else {
        number
    }
}

fn bulk(out: &mut BytesMut, data: &[u8]) {
    int_line(out, b'$', data.len() as i64);
    out.reserve(data.len() + 2);
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

fn aggregate(out: &mut BytesMut, tag: u8, items: &[Frame], proto: Protocol) {
    int_line(out, tag, items.len() as i64);
    for item in items {
        encode(item, proto, out);
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
    use crate::resp::{decode_frame, Float};
    use bytes::Bytes;

    fn wire(frame: &Frame) -> Vec<u8> {
        wire_in(frame, Protocol::Resp2)
    }

    fn wire_in(frame: &Frame, proto: Protocol) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode(frame, proto, &mut out);
        out.to_vec()
    }

    /// `frame` goes out as `resp2` to a RESP2 client and as `resp3` to a RESP3 one, and each
    /// decodes back (RESP3 to the frame itself, RESP2 to its RESP2 form).
    #[track_caller]
    fn both(frame: Frame, resp2: &[u8], resp3: &[u8]) {
        assert_eq!(
            String::from_utf8_lossy(&wire_in(&frame, Protocol::Resp2)),
            String::from_utf8_lossy(resp2),
            "RESP2 of {frame:?}"
        );
        assert_eq!(
            String::from_utf8_lossy(&wire_in(&frame, Protocol::Resp3)),
            String::from_utf8_lossy(resp3),
            "RESP3 of {frame:?}"
        );
        let (back3, used) = decode_frame(resp3).unwrap().unwrap();
        assert_eq!((back3, used), (frame.clone(), resp3.len()));
        let (back2, used) = decode_frame(resp2).unwrap().unwrap();
        assert_eq!((back2, used), (frame.to_resp2(), resp2.len()));
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
    fn resp2_types_are_the_same_in_resp3_but_nil() {
        both(Frame::ok(), b"+OK\r\n", b"+OK\r\n");
        both(Frame::err("boom"), b"-ERR boom\r\n", b"-ERR boom\r\n");
        both(Frame::Integer(-7), b":-7\r\n", b":-7\r\n");
        both(Frame::bulk("abc"), b"$3\r\nabc\r\n", b"$3\r\nabc\r\n");
        both(Frame::bulk(""), b"$0\r\n\r\n", b"$0\r\n\r\n");
        both(
            Frame::Array(vec![Frame::Integer(1), Frame::bulk("x")]),
            b"*2\r\n:1\r\n$1\r\nx\r\n",
            b"*2\r\n:1\r\n$1\r\nx\r\n",
        );
        both(Frame::Array(vec![]), b"*0\r\n", b"*0\r\n");
        // Both nils are `_` in RESP3 (GET of a missing key; EXEC aborted by WATCH).
        both(Frame::Null, b"$-1\r\n", b"_\r\n");
        assert_eq!(wire_in(&Frame::NullArray, Protocol::Resp3), b"_\r\n");
        assert_eq!(
            decode_frame(b"*-1\r\n").unwrap(),
            Some((Frame::NullArray, 5))
        );
        both(
            Frame::Array(vec![Frame::bulk("v"), Frame::Null]),
            b"*2\r\n$1\r\nv\r\n$-1\r\n",
            b"*2\r\n$1\r\nv\r\n_\r\n",
        );
    }

    #[test]
    fn a_map_is_flat_in_resp2() {
        both(
            Frame::map([("save", Frame::bulk("")), ("n", Frame::Integer(2))]),
            b"*4\r\n$4\r\nsave\r\n$0\r\n\r\n$1\r\nn\r\n:2\r\n",
            b"%2\r\n$4\r\nsave\r\n$0\r\n\r\n$1\r\nn\r\n:2\r\n",
        );
        both(Frame::Map(vec![]), b"*0\r\n", b"%0\r\n");
        // Nested: the inner map and set are downgraded too.
        both(
            Frame::map([(
                "m",
                Frame::map([("s", Frame::Set(vec![Frame::Simple("a".into())]))]),
            )]),
            b"*2\r\n$1\r\nm\r\n*2\r\n$1\r\ns\r\n*1\r\n+a\r\n",
            b"%1\r\n$1\r\nm\r\n%1\r\n$1\r\ns\r\n~1\r\n+a\r\n",
        );
    }

    #[test]
    fn a_set_and_a_push_are_arrays_in_resp2() {
        both(
            Frame::Set(vec![
                Frame::Simple("readonly".into()),
                Frame::Simple("fast".into()),
            ]),
            b"*2\r\n+readonly\r\n+fast\r\n",
            b"~2\r\n+readonly\r\n+fast\r\n",
        );
        both(Frame::Set(vec![]), b"*0\r\n", b"~0\r\n");
        both(
            Frame::Push(vec![
                Frame::bulk("message"),
                Frame::bulk("ch"),
                Frame::bulk("hi"),
            ]),
            b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
            b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
        );
    }

    /// The figures are redis-server 7.0.15's ZSCORE replies in both protocols.
    #[test]
    fn a_double_is_a_bulk_string_in_resp2_formatted_as_redis_7_0_does() {
        both(
            Frame::double(0.1),
            b"$19\r\n0.10000000000000001\r\n",
            b",0.10000000000000001\r\n",
        );
        both(
            Frame::double(1e300),
            b"$23\r\n1.0000000000000001e+300\r\n",
            b",1.0000000000000001e+300\r\n",
        );
        both(
            Frame::double(1e-5),
            b"$22\r\n1.0000000000000001e-05\r\n",
            b",1.0000000000000001e-05\r\n",
        );
        both(
            Frame::double(123456789012345678.0),
            b"$22\r\n1.2345678901234568e+17\r\n",
            b",1.2345678901234568e+17\r\n",
        );
        both(Frame::double(3.0), b"$1\r\n3\r\n", b",3\r\n");
        both(Frame::double(0.0), b"$1\r\n0\r\n", b",0\r\n");
        both(Frame::double(-0.0), b"$2\r\n-0\r\n", b",-0\r\n");
        both(Frame::double(-2.5), b"$4\r\n-2.5\r\n", b",-2.5\r\n");
        both(Frame::double(f64::INFINITY), b"$3\r\ninf\r\n", b",inf\r\n");
        both(
            Frame::double(f64::NEG_INFINITY),
            b"$4\r\n-inf\r\n",
            b",-inf\r\n",
        );
        both(Frame::double(f64::NAN), b"$3\r\nnan\r\n", b",nan\r\n");
        // `%g` switches to exponents below 1e-4 and from 1e17.
        assert_eq!(format_double(0.0001), "0.0001");
        assert_eq!(format_double(1e16), "10000000000000000");
        assert_eq!(format_double(1e17), "1e+17");
        assert_eq!(format_double(1.5e-7), "1.4999999999999999e-07");
        assert_eq!(format_double(f64::MAX), "1.7976931348623157e+308");
        assert_eq!(format_double(5e-324), "4.9406564584124654e-324");
        for d in [0.1, 1.0 / 3.0, 1e-300, f64::MAX, f64::MIN_POSITIVE, -7e22] {
            assert_eq!(format_double(d).parse::<f64>().unwrap(), d, "{d}");
        }
        assert_eq!(Frame::double(f64::NAN), Frame::Double(Float(f64::NAN)));
    }

    #[test]
    fn a_boolean_is_an_integer_in_resp2() {
        both(Frame::Boolean(true), b":1\r\n", b"#t\r\n");
        both(Frame::Boolean(false), b":0\r\n", b"#f\r\n");
    }

    #[test]
    fn a_verbatim_string_is_a_bulk_string_in_resp2() {
        both(
            Frame::verbatim_text("# Server\r\nx:1\r\n"),
            b"$15\r\n# Server\r\nx:1\r\n\r\n",
            b"=19\r\ntxt:# Server\r\nx:1\r\n\r\n",
        );
        both(Frame::verbatim_text(""), b"$0\r\n\r\n", b"=4\r\ntxt:\r\n");
        both(
            Frame::Verbatim {
                format: *b"mkd",
                text: Bytes::from_static(b"*hi*"),
            },
            b"$4\r\n*hi*\r\n",
            b"=8\r\nmkd:*hi*\r\n",
        );
    }

    #[test]
    fn a_big_number_is_a_bulk_string_in_resp2() {
        let big = "3492890328409238509324850943850943825024385";
        both(
            Frame::BigNumber(big.into()),
            format!("$43\r\n{big}\r\n").as_bytes(),
            format!("({big}\r\n").as_bytes(),
        );
        both(Frame::BigNumber("-1".into()), b"$2\r\n-1\r\n", b"(-1\r\n");
    }

    #[test]
    fn requests_encode_as_arrays_of_bulks() {
        let mut out = BytesMut::new();
        encode_request(&["SET", "k", ""], &mut out);
        assert_eq!(&out[..], b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
    }
}
