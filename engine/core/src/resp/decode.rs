//! Reads RESP from a byte buffer: requests as servers receive them (arrays of bulk strings,
//! or inline commands such as `PING\r\n`; RESP2 and RESP3 requests are the same), and reply
//! frames of either protocol as clients receive them.
//!
//! Every length read from the wire is checked against [`Limits`] before anything is
//! allocated, so a hostile length costs nothing but an error reply.

use bytes::{Buf, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use super::{Frame, Request};

/// Bounds on what one request and one client may hold (the `limits` section of the
/// configuration; each field is optional). The decoder enforces the first four, the session
/// and the listener the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest bulk string accepted, in bytes (Redis: `proto-max-bulk-len`, 512 MB).
    pub max_bulk_len: usize,
    /// Most arguments in one request, command name included.
    pub max_args: usize,
    /// Longest inline command or header line, in bytes.
    pub max_inline_len: usize,
    /// Most bytes of a request not yet complete that a session holds (Redis:
    /// `client-query-buffer-limit`, 1 GB). Must exceed `max_bulk_len`.
    pub max_query_buffer: usize,
    /// Most reply bytes a session holds for a client that does not read them; past it the
    /// client is disconnected (0: no limit).
    pub max_output_buffer: usize,
    /// Most clients connected at once (Redis: `maxclients`, 10,000); one more is told
    /// `-ERR max number of clients reached` and disconnected.
    pub max_clients: usize,
    /// Seconds a client may stay idle (no request, no reply pending) before it is
    /// disconnected (0: never; Redis: `timeout`).
    pub idle_timeout_s: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            max_args: 1024 * 1024,
            max_inline_len: 64 * 1024,
            max_query_buffer: 1024 * 1024 * 1024,
            max_output_buffer: 1024 * 1024 * 1024,
            max_clients: 10_000,
            idle_timeout_s: 0,
        }
    }
}

/// The bytes are not RESP: the connection gets `-ERR Protocol error: ...` and is closed.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("Protocol error: {0}")]
    Protocol(String),
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
}

fn protocol(msg: impl Into<String>) -> DecodeError {
    DecodeError::Protocol(msg.into())
}

/// Position of the `\r\n` ending the line that starts at `from`, if present.
fn find_crlf(buf: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let cr = from + buf.get(from..)?.iter().position(|&b| b == b'\r')?;
        if buf.get(cr + 1) == Some(&b'\n') {
            return Some(cr);
        }
        from = cr + 1;
    }
}

/// `text` as a decimal `i64`, as `str::parse` reads it (optional sign, digits only).
fn parse_int(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 18 {
        // Empty, or long enough to overflow: let the standard parser decide.
        return std::str::from_utf8(text).ok()?.parse().ok();
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(d - b'0');
    }
    Some(if negative { -n } else { n })
}

/// What an integer line counts, for its error texts.
#[derive(Debug, Clone, Copy)]
enum Count {
    Multibulk,
    Bulk,
    Integer,
}

impl Count {
    /// The word in `invalid <word> length`.
    fn name(self) -> &'static str {
        match self {
            Count::Multibulk => "multibulk",
            Count::Bulk => "bulk",
            Count::Integer => "integer",
        }
    }

    /// The word in `too big <word> count string` (Redis says "mbulk" there).
    fn short(self) -> &'static str {
        match self {
            Count::Multibulk => "mbulk",
            other => other.name(),
        }
    }
}

/// Reads a decimal integer line (after its type byte) starting at `from`. Returns the number
/// and the index after its `\r\n`, or `None` if the line is incomplete. A line longer than
/// `max_len` is an error whether it arrived whole or not (a pending `\r` may still end a line
/// of exactly `max_len`), so the outcome does not depend on how the bytes were split.
fn int_line(
    buf: &[u8],
    from: usize,
    max_len: usize,
    what: Count,
) -> Result<Option<(i64, usize)>, DecodeError> {
    // Fast path, one pass: up to 18 digits (no overflow) then CRLF, as every well-formed
    // count and length is. Anything else (a sign, junk, a long line) takes the general path.
    let mut n: i64 = 0;
    let mut at = from;
    while let Some(&d) = buf.get(at) {
        if !d.is_ascii_digit() || at - from == 18 {
            break;
        }
        n = n * 10 + i64::from(d - b'0');
        at += 1;
    }
    if at > from && at - from <= max_len && buf.get(at..at + 2) == Some(b"\r\n") {
        return Ok(Some((n, at + 2)));
    }
    let too_big = || protocol(format!("too big {} count string", what.short()));
    match find_crlf(buf, from) {
        None if buf.len().saturating_sub(from) > max_len.saturating_add(1) => Err(too_big()),
        None => Ok(None),
        Some(end) if end - from > max_len => Err(too_big()),
        Some(end) => {
            let n = parse_int(&buf[from..end])
                .ok_or_else(|| protocol(format!("invalid {} length", what.name())))?;
            Ok(Some((n, end + 2)))
        }
    }
}

/// How far the decoder got into a multibulk request whose bytes have not all arrived, so the
/// next call resumes there instead of parsing every argument again (a request of a million
/// arguments arriving in small reads would otherwise cost quadratic time).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Arguments the request declares (0: no request in progress).
    count: usize,
    /// Offset of the next argument's `$`.
    at: usize,
    /// Extents of the arguments found so far.
    spans: Vec<(usize, usize)>,
}

/// Takes one complete request off the front of `buf`. `Ok(None)` means more bytes are needed
/// (nothing is consumed); an empty request (blank inline line, `*0`) is returned as empty.
pub fn decode_request(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Request>, DecodeError> {
    decode_request_resuming(buf, limits, &mut Progress::default())
}

/// [`decode_request`] that keeps its place in `progress` between calls on the same buffer.
/// Pass the same `progress` each time until a request (or an error) comes back.
pub fn decode_request_resuming(
    buf: &mut BytesMut,
    limits: &Limits,
    progress: &mut Progress,
) -> Result<Option<Request>, DecodeError> {
    let result = match buf.first() {
        None => Ok(None),
        Some(b'*') => decode_multibulk(buf, limits, progress),
        Some(_) => decode_inline(buf, limits),
    };
    if !matches!(result, Ok(None)) {
        // Start afresh, keeping the span vector's capacity for the next request.
        progress.count = 0;
        progress.at = 0;
        progress.spans.clear();
    }
    result
}

fn decode_multibulk(
    buf: &mut BytesMut,
    limits: &Limits,
    progress: &mut Progress,
) -> Result<Option<Request>, DecodeError> {
    if progress.count == 0 {
        let Some((count, at)) = int_line(buf, 1, limits.max_inline_len, Count::Multibulk)? else {
            return Ok(None);
        };
        if count <= 0 {
            buf.advance(at);
            return Ok(Some(Request::new()));
        }
        if count as u64 > limits.max_args as u64 {
            return Err(protocol("invalid multibulk length"));
        }
        // Never trust a declared count with memory: grow as arguments arrive.
        progress.count = count as usize;
        progress.at = at;
        progress.spans.clear();
        progress.spans.reserve((count as usize).min(1024));
    }
    // Find every argument's extent without copying; keep what was found if incomplete.
    while progress.spans.len() < progress.count {
        let at = progress.at;
        match buf.get(at) {
            None => return Ok(None),
            Some(b'$') => {}
            Some(&other) => {
                return Err(protocol(format!(
                    "expected '$', got '{}'",
                    char::from(other).escape_default()
                )))
            }
        }
        let Some((len, start)) = int_line(buf, at + 1, limits.max_inline_len, Count::Bulk)? else {
            return Ok(None);
        };
        if len < 0 || len as u64 > limits.max_bulk_len as u64 {
            return Err(protocol("invalid bulk length"));
        }
        let end = start + len as usize;
        if buf.len() < end + 2 {
            return Ok(None);
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err(protocol("bulk string not terminated by CRLF"));
        }
        progress.spans.push((start, end));
        progress.at = end + 2;
    }
    let frozen = buf.split_to(progress.at).freeze();
    Ok(Some(
        progress
            .spans
            .drain(..)
            .map(|(s, e)| frozen.slice(s..e))
            .collect(),
    ))
}

fn decode_inline(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Request>, DecodeError> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > limits.max_inline_len {
            return Err(protocol("too big inline request"));
        }
        return Ok(None);
    };
    if nl > limits.max_inline_len {
        return Err(protocol("too big inline request"));
    }
    let line = buf.split_to(nl + 1).freeze();
    let body = line.slice(..line.len() - 1);
    let body = body
        .strip_suffix(b"\r")
        .map_or(body.clone(), |b| body.slice_ref(b));
    let args: Request = body
        .split(|b| b.is_ascii_whitespace())
        .filter(|word| !word.is_empty())
        .map(|word| body.slice_ref(word))
        .collect();
    if args.len() > limits.max_args {
        return Err(protocol("invalid multibulk length"));
    }
    Ok(Some(args))
}

/// Decodes one reply frame, RESP2 or RESP3, from the front of `buf` (client side), returning
/// it and the bytes it took, or `None` if incomplete. Used by the `moodb` client commands and
/// tests. RESP3's attributes (`|`), blob errors (`!`) and streamed strings (`$?`), which
/// Redis 7 never sends, are protocol errors.
pub fn decode_frame(buf: &[u8]) -> Result<Option<(Frame, usize)>, DecodeError> {
    frame_at(buf, 0, 0)
}

/// Longest line (or length line) a reply may have.
const MAX_LINE: usize = 1 << 20;

fn frame_at(buf: &[u8], at: usize, depth: usize) -> Result<Option<(Frame, usize)>, DecodeError> {
    if depth > 64 {
        return Err(protocol("reply nested too deeply"));
    }
    let Some(&tag) = buf.get(at) else {
        return Ok(None);
    };
    // A one-line frame: its text and the bytes it took.
    let one_line = || -> Result<Option<(&[u8], usize)>, DecodeError> {
        match find_crlf(buf, at + 1) {
            None if buf.len() - at > MAX_LINE => Err(protocol("reply line too long")),
            None => Ok(None),
            Some(end) => Ok(Some((&buf[at + 1..end], end + 2 - at))),
        }
    };
    let text = |line: &[u8]| String::from_utf8_lossy(line).into_owned();
    match tag {
        b'+' => Ok(one_line()?.map(|(l, used)| (Frame::Simple(text(l).into()), used))),
        b'-' => Ok(one_line()?.map(|(l, used)| (Frame::Error(text(l)), used))),
        b':' => Ok(int_line(buf, at + 1, MAX_LINE, Count::Integer)?
            .map(|(n, next)| (Frame::Integer(n), next - at))),
        b'_' => match one_line()? {
            None => Ok(None),
            Some((b"", used)) => Ok(Some((Frame::Null, used))),
            Some(_) => Err(protocol("invalid null")),
        },
        b'#' => match one_line()? {
            None => Ok(None),
            Some((b"t", used)) => Ok(Some((Frame::Boolean(true), used))),
            Some((b"f", used)) => Ok(Some((Frame::Boolean(false), used))),
            Some(_) => Err(protocol("invalid boolean")),
        },
        b',' => {
            let Some((line, used)) = one_line()? else {
                return Ok(None);
            };
            let d: f64 = std::str::from_utf8(line)
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| protocol("invalid double"))?;
            let d = if d.is_nan() { f64::NAN } else { d };
            Ok(Some((Frame::double(d), used)))
        }
        b'(' => {
            let Some((line, used)) = one_line()? else {
                return Ok(None);
            };
            let digits = line.strip_prefix(b"-").unwrap_or(line);
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return Err(protocol("invalid big number"));
            }
            Ok(Some((Frame::BigNumber(text(line)), used)))
        }
        b'$' | b'=' => {
            let Some((len, start)) = int_line(buf, at + 1, MAX_LINE, Count::Bulk)? else {
                return Ok(None);
            };
            if len < 0 && tag == b'$' {
                return Ok(Some((Frame::Null, start - at)));
            }
            let Ok(len) = usize::try_from(len) else {
                return Err(protocol("invalid verbatim length"));
            };
            let Some(end) = start
                .checked_add(len)
                .filter(|e| e.saturating_add(2) <= buf.len())
            else {
                return Ok(None);
            };
            if &buf[end..end + 2] != b"\r\n" {
                return Err(protocol("bulk string not terminated by CRLF"));
            }
            let used = end + 2 - at;
            if tag == b'$' {
                return Ok(Some((Frame::bulk(&buf[start..end]), used)));
            }
            // `=<len>\r\ntxt:<text>`: a three-byte format, a colon, the text.
            let body = &buf[start..end];
            match body.get(..4) {
                Some([a, b, c, b':']) => Ok(Some((
                    Frame::Verbatim {
                        format: [*a, *b, *c],
                        text: bytes::Bytes::copy_from_slice(&body[4..]),
                    },
                    used,
                ))),
                _ => Err(protocol("invalid verbatim string")),
            }
        }
        b'*' | b'~' | b'>' | b'%' => {
            let Some((count, next)) = int_line(buf, at + 1, MAX_LINE, Count::Multibulk)? else {
                return Ok(None);
            };
            if count < 0 {
                return match tag {
                    b'*' => Ok(Some((Frame::NullArray, next - at))),
                    _ => Err(protocol("invalid aggregate length")),
                };
            }
            // A map of n pairs holds 2n frames.
            let frames = if tag == b'%' {
                count
                    .checked_mul(2)
                    .ok_or_else(|| protocol("invalid map length"))?
            } else {
                count
            };
            let Some((mut items, next)) = frames_at(buf, next, frames, depth)? else {
                return Ok(None);
            };
            let frame = match tag {
                b'*' => Frame::Array(items),
                b'~' => Frame::Set(items),
                b'>' => Frame::Push(items),
                _ => {
                    let mut pairs = Vec::with_capacity(items.len() / 2);
                    let mut it = items.drain(..);
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        pairs.push((k, v));
                    }
                    Frame::Map(pairs)
                }
            };
            Ok(Some((frame, next - at)))
        }
        other => Err(protocol(format!("unexpected reply type byte {other:#04x}"))),
    }
}

/// `count` frames from `at`, and the index after them; `None` if incomplete. The capacity
/// reserved is bounded, whatever count the wire declared.
fn frames_at(
    buf: &[u8],
    mut next: usize,
    count: i64,
    depth: usize,
) -> Result<Option<(Vec<Frame>, usize)>, DecodeError> {
    let mut items = Vec::with_capacity((count as usize).min(1024));
    for _ in 0..count {
        let Some((item, used)) = frame_at(buf, next, depth + 1)? else {
            return Ok(None);
        };
        items.push(item);
        next += used;
    }
    Ok(Some((items, next)))
}

/// Convenience for tests and tools: the bytes of a request argument as text.
pub fn lossy(arg: &Bytes) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::encode::{encode, encode_request};
    use crate::resp::Protocol;
    use proptest::prelude::*;

    fn req(bytes: &[u8]) -> Result<Option<Vec<Vec<u8>>>, String> {
        let mut buf = BytesMut::from(bytes);
        decode_request(&mut buf, &Limits::default())
            .map(|r| r.map(|args| args.into_iter().map(|a| a.to_vec()).collect()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn multibulk_and_inline_requests_decode() {
        assert_eq!(
            req(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"),
            Ok(Some(vec![b"GET".to_vec(), b"k".to_vec()]))
        );
        assert_eq!(req(b"PING\r\n"), Ok(Some(vec![b"PING".to_vec()])));
        assert_eq!(
            req(b"set  a b\n"),
            Ok(Some(vec![b"set".to_vec(), b"a".to_vec(), b"b".to_vec()]))
        );
        assert_eq!(req(b"\r\n"), Ok(Some(vec![])));
        assert_eq!(req(b"*0\r\n"), Ok(Some(vec![])));
    }

    #[test]
    fn incomplete_requests_wait_and_consume_nothing() {
        let full = b"*2\r\n$3\r\nGET\r\n$5\r\nhello\r\n";
        for cut in 0..full.len() {
            let mut buf = BytesMut::from(&full[..cut]);
            assert!(decode_request(&mut buf, &Limits::default())
                .unwrap()
                .is_none());
            assert_eq!(buf.len(), cut);
        }
    }

    #[test]
    fn hostile_lengths_are_protocol_errors() {
        let limits = Limits {
            max_bulk_len: 10,
            max_args: 3,
            max_inline_len: 16,
            ..Limits::default()
        };
        let check = |bytes: &[u8], want: &str| {
            let mut buf = BytesMut::from(bytes);
            let err = decode_request(&mut buf, &limits).unwrap_err().to_string();
            assert_eq!(err, format!("Protocol error: {want}"), "for {bytes:?}");
        };
        check(b"*4\r\n", "invalid multibulk length");
        check(b"*1\r\n$11\r\n", "invalid bulk length");
        check(b"*1\r\n$-5\r\n", "invalid bulk length");
        check(b"*x\r\n", "invalid multibulk length");
        check(b"*1\r\n:1\r\n", "expected '$', got ':'");
        check(b"*1\r\n$1\r\nabcd", "bulk string not terminated by CRLF");
        check(b"aaaaaaaaaaaaaaaaaaaaaaaa", "too big inline request");
        check(b"*11111111111111111111", "too big mbulk count string");
    }

    /// Found by the `resp_request` fuzz target: a count line longer than the limit was
    /// accepted when it arrived whole and refused when it arrived in pieces.
    #[test]
    fn an_overlong_count_line_fails_however_it_arrives() {
        let limits = Limits {
            max_inline_len: 8,
            ..Limits::default()
        };
        let long = b"*000000000\r\n"; // 9 digits: over the limit
        let exact = b"*00000001\r\n$1\r\nx\r\n"; // 8 digits: at the limit
        for cut in 1..=long.len() {
            let mut buf = BytesMut::from(&long[..cut]);
            match decode_request(&mut buf, &limits) {
                Ok(None) => assert!(cut < long.len(), "a whole line must decide"),
                Ok(Some(r)) => panic!("cut {cut}: accepted {r:?}"),
                Err(e) => assert_eq!(e.to_string(), "Protocol error: too big mbulk count string"),
            }
        }
        for cut in 1..exact.len() {
            let mut buf = BytesMut::from(&exact[..cut]);
            assert!(
                decode_request(&mut buf, &limits).unwrap().is_none(),
                "cut {cut}"
            );
        }
        let mut buf = BytesMut::from(&exact[..]);
        assert_eq!(decode_request(&mut buf, &limits).unwrap().unwrap().len(), 1);
    }

    #[test]
    fn codec_batches_every_complete_request() {
        let mut codec = crate::resp::BatchDecoder::default();
        assert!(codec.decode(&mut BytesMut::new()).unwrap().is_none());
        let mut buf = BytesMut::from(&b"PING\r\n*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPI"[..]);
        let batch = codec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(batch.len(), 2);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"NG\r\n*1\r\n");
        assert_eq!(codec.decode(&mut buf).unwrap().unwrap().len(), 1);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(b"x");
        assert!(codec.decode(&mut buf).is_err());
    }

    #[test]
    fn a_request_arriving_in_pieces_resumes_where_it_stopped() {
        let mut full = BytesMut::new();
        let args: Vec<Vec<u8>> = (0..200).map(|i| format!("arg{i}").into_bytes()).collect();
        crate::resp::encode::encode_request(&args, &mut full);
        let mut progress = Progress::default();
        let mut buf = BytesMut::new();
        let mut got = None;
        for chunk in full.chunks(7) {
            buf.extend_from_slice(chunk);
            if let Some(r) =
                decode_request_resuming(&mut buf, &Limits::default(), &mut progress).unwrap()
            {
                got = Some(r);
            }
        }
        let got: Vec<Vec<u8>> = got.unwrap().iter().map(|a| a.to_vec()).collect();
        assert_eq!(got, args);
        assert!(buf.is_empty());
        assert_eq!(progress, Progress::default());
    }

    #[test]
    fn a_declared_length_reserves_nothing_and_the_query_buffer_is_bounded() {
        let limits = Limits {
            max_query_buffer: 64,
            ..Limits::default()
        };
        let mut codec = crate::resp::BatchDecoder::new(limits);
        let mut buf = BytesMut::from(&b"*1000000\r\n$536870912\r\n"[..]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert!(
            buf.capacity() < 1024,
            "nothing reserved for what was declared"
        );
        buf.extend_from_slice(&[b'x'; 64]);
        let err = codec.decode(&mut buf).unwrap_err().to_string();
        assert!(err.contains("limits.max_query_buffer"), "{err}");
    }

    #[test]
    fn integers_parse_as_the_standard_parser_does() {
        for text in [
            "0",
            "-1",
            "+5",
            "42",
            "",
            "-",
            "+",
            "1x",
            " 1",
            "999999999999999999",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "00012",
        ] {
            assert_eq!(
                parse_int(text.as_bytes()),
                text.parse::<i64>().ok(),
                "{text:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn encoded_requests_decode_back(args in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 1..6)) {
            let mut buf = BytesMut::new();
            encode_request(&args, &mut buf);
            let got = decode_request(&mut buf, &Limits::default()).unwrap().unwrap();
            prop_assert_eq!(got.iter().map(|a| a.to_vec()).collect::<Vec<_>>(), args);
            prop_assert!(buf.is_empty());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut buf = BytesMut::from(&bytes[..]);
            let _ = decode_request(&mut buf, &Limits::default());
            let _ = decode_frame(&bytes);
        }

        #[test]
        fn frames_round_trip(items in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..8), 0..4), n in any::<i64>(), d in any::<f64>(), b in any::<bool>()) {
            let frame = Frame::Array(vec![
                Frame::Integer(n),
                Frame::Null,
                Frame::Simple("OK".into()),
                Frame::Array(items.iter().map(Frame::bulk).collect()),
                Frame::Map(items.iter().map(|i| (Frame::bulk(i), Frame::Set(vec![Frame::Boolean(b)]))).collect()),
                Frame::double(if d.is_nan() { f64::NAN } else { d }),
                Frame::Push(vec![Frame::BigNumber(n.to_string()), Frame::Null]),
                Frame::Verbatim { format: *b"txt", text: items.concat().into() },
            ]);
            for proto in [Protocol::Resp2, Protocol::Resp3] {
                let mut buf = BytesMut::new();
                encode(&frame, proto, &mut buf);
                let (got, used) = decode_frame(&buf).unwrap().unwrap();
                prop_assert_eq!(used, buf.len());
                let want = match proto {
                    Protocol::Resp2 => frame.to_resp2(),
                    Protocol::Resp3 => frame.clone(),
                };
                prop_assert_eq!(got, want);
            }
        }
    }

    #[test]
    fn resp3_replies_decode() {
        let one = |bytes: &[u8]| {
            decode_frame(bytes)
                .map(|f| f.map(|(f, _)| f))
                .map_err(|e| e.to_string())
        };
        assert_eq!(one(b"_\r\n"), Ok(Some(Frame::Null)));
        assert_eq!(one(b"#t\r\n"), Ok(Some(Frame::Boolean(true))));
        assert_eq!(
            one(b",-inf\r\n"),
            Ok(Some(Frame::double(f64::NEG_INFINITY)))
        );
        assert_eq!(one(b",1.5e3\r\n"), Ok(Some(Frame::double(1500.0))));
        assert_eq!(one(b"(-12\r\n"), Ok(Some(Frame::BigNumber("-12".into()))));
        assert_eq!(one(b"=5\r\ntxt:x\r\n"), Ok(Some(Frame::verbatim_text("x"))));
        assert_eq!(
            one(b"%1\r\n+a\r\n~1\r\n:1\r\n"),
            Ok(Some(Frame::Map(vec![(
                Frame::Simple("a".into()),
                Frame::Set(vec![Frame::Integer(1)])
            )])))
        );
        assert_eq!(
            one(b">1\r\n$1\r\nm\r\n"),
            Ok(Some(Frame::Push(vec![Frame::bulk("m")])))
        );
        // Incomplete: wait for more.
        for partial in [
            &b"%1\r\n+a\r\n"[..],
            b"=5\r\ntxt:",
            b",1.5",
            b"_",
            b"~2\r\n:1\r\n",
        ] {
            assert_eq!(one(partial), Ok(None), "{partial:?}");
        }
        for bad in [
            &b"_x\r\n"[..],
            b"#x\r\n",
            b",abc\r\n",
            b"(1a\r\n",
            b"(\r\n",
            b"=3\r\ntxt\r\n",
            b"=-1\r\n",
            b"%-1\r\n",
            b"~-1\r\n",
            b"|1\r\n",
            b"!3\r\nerr\r\n",
            b"$1\r\nabc",
        ] {
            assert!(one(bad).is_err(), "{bad:?}");
        }
    }
}
