//! A small blocking RESP client for the client subcommands (`get`, `set`, `update`,
//! `delete`, `cli`), and the printing of replies the way redis-cli does.

use std::error::Error;
use std::io::{Read, Write};
use std::net::TcpStream;

use bytes::BytesMut;
use moodb_core::resp::{decode_frame, encode::encode_request, Frame};

/// Where the server is and how to log in: shared by every client subcommand.
#[derive(Debug, clap::Args)]
pub struct ClientArgs {
    /// Address of the server.
    #[arg(long, default_value = "127.0.0.1:6380", value_name = "HOST:PORT")]
    pub addr: String,
    /// Password of a server started with `requirepass` (sent with AUTH on connecting).
    #[arg(long, value_name = "PASSWORD")]
    pub password: Option<String>,
}

impl ClientArgs {
    /// Connects to the server and authenticates when a password is given.
    pub fn connect(&self) -> Result<Client, Box<dyn Error>> {
        let mut client = Client::connect(&self.addr)?;
        if let Some(password) = &self.password {
            match client.call(&["AUTH", password.as_str()])? {
                Frame::Simple(_) => {}
                Frame::Error(e) => return Err(format!("authentication failed: {e}").into()),
                other => {
                    return Err(
                        format!("unexpected reply to AUTH: {}", format_reply(&other)).into(),
                    )
                }
            }
        }
        Ok(client)
    }
}

/// One connection to a server.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    /// Connects to `addr`.
    pub fn connect(addr: &str) -> Result<Client, Box<dyn Error>> {
        let stream = TcpStream::connect(addr).map_err(|e| {
            format!("cannot connect to {addr}: {e} (is `moodb serve` running there? see --addr)")
        })?;
        let _ = stream.set_nodelay(true);
        Ok(Client {
            stream,
            buf: Vec::new(),
        })
    }

    /// Sends one request and waits for its reply.
    pub fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Frame, Box<dyn Error>> {
        let mut out = BytesMut::new();
        encode_request(args, &mut out);
        self.stream.write_all(&out)?;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some((frame, used)) = decode_frame(&self.buf)? {
                self.buf.drain(..used);
                return Ok(frame);
            }
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err("the server closed the connection".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Formats a reply as redis-cli prints it: `"text"`, `(integer) 1`, `(nil)`, `(error) ...`,
/// numbered lines for arrays.
pub fn format_reply(frame: &Frame) -> String {
    let mut out = String::new();
    format_into(frame, 0, &mut out);
    out
}

fn format_into(frame: &Frame, indent: usize, out: &mut String) {
    match frame {
        Frame::Simple(s) => out.push_str(s),
        Frame::Error(s) => out.push_str(&format!("(error) {s}")),
        Frame::Integer(n) => out.push_str(&format!("(integer) {n}")),
        Frame::Null | Frame::NullArray => out.push_str("(nil)"),
        Frame::Bulk(b) => out.push_str(&format!("{:?}", String::from_utf8_lossy(b))),
        Frame::Array(items) if items.is_empty() => out.push_str("(empty array)"),
        Frame::Array(items) => {
            let width = items.len().to_string().len();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push('\n');
                    out.push_str(&" ".repeat(indent));
                }
                let label = format!("{:>width$}) ", i + 1);
                out.push_str(&label);
                format_into(item, indent + label.len(), out);
            }
        }
        // This client speaks RESP2, but shows a RESP3 reply as a RESP2 one if it gets one.
        resp3 => format_into(&resp3.to_resp2(), indent, out),
    }
}

/// Splits a command line into words; double or single quotes group words, and `\` escapes
/// inside double quotes (`\n`, `\t`, `\"`, `\\`, `\xHH`).
pub fn split_line(line: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            return Ok(words);
        };
        let mut word = Vec::new();
        if first == '"' || first == '\'' {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("unbalanced quotes".into()),
                    Some(c) if c == first => break,
                    Some('\\') if first == '"' => match chars.next() {
                        Some('n') => word.push(b'\n'),
                        Some('r') => word.push(b'\r'),
                        Some('t') => word.push(b'\t'),
                        Some('x') => {
                            let hex: String = chars.by_ref().take(2).collect();
                            let b = u8::from_str_radix(&hex, 16)
                                .map_err(|_| format!("bad escape \\x{hex}"))?;
                            word.push(b);
                        }
                        Some(c) => push_char(&mut word, c),
                        None => return Err("unbalanced quotes".into()),
                    },
                    Some(c) => push_char(&mut word, c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                push_char(&mut word, c);
                chars.next();
            }
        }
        words.push(word);
    }
}

fn push_char(word: &mut Vec<u8>, c: char) {
    let mut buf = [0u8; 4];
    word.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_like_redis_cli() {
        assert_eq!(
            split_line(r#" set "a b" 'c d' e\x "\x41\n" "#).unwrap(),
            vec![
                b"set".to_vec(),
                b"a b".to_vec(),
                b"c d".to_vec(),
                b"e\\x".to_vec(),
                b"A\n".to_vec()
            ]
        );
        assert!(split_line("get \"a").is_err());
    }

    #[test]
    fn replies_print_like_redis_cli() {
        let f = Frame::Array(vec![
            Frame::bulk("a"),
            Frame::Integer(2),
            Frame::Array(vec![Frame::Null, Frame::Simple("OK".into())]),
        ]);
        assert_eq!(
            format_reply(&f),
            "1) \"a\"\n2) (integer) 2\n3) 1) (nil)\n   2) OK"
        );
        assert_eq!(format_reply(&Frame::err("x")), "(error) ERR x");
    }
}
