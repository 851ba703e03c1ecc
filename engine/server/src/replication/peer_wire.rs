//! The wire between raft peers, shared by the dialing side ([`super::network`]) and the
//! listening side ([`super::peer_server`]): the [`ClusterSecret`], length-prefixed frames of
//! bincode, the mutual challenge-response handshake, the request and response messages, and
//! [`PeerError`], what can go wrong on a link.
//!
//! A frame is a big-endian `u32` length followed by that many bytes of bincode (varint
//! integers, little endian, trailing bytes rejected). During the handshake a frame is at most
//! [`HANDSHAKE_FRAME_MAX`] bytes; afterwards at most [`PeerOptions::max_frame`].
//!
//! The handshake, on every new connection (D dials, L listens; `Nd`, `Nl` are 32 random bytes
//! each; `mac(role)` is HMAC-SHA256 under the secret over
//! `"moodb raft v1" ‖ role ‖ from ‖ target ‖ Nd ‖ Nl`, the ids as big-endian `u64`):
//!
//! | step | frame | checks |
//! |---|---|---|
//! | D → L | `Hello { magic, version, from, target, Nd }` | L: magic, version, `target` is L's node id |
//! | L → D | `Challenge { Nl }` or `Refused` | |
//! | D → L | `Proof { mac("dialer") }` | L: constant-time compare, else `Refused(WrongSecret)`, logged |
//! | L → D | `Accepted { mac("listener") }` | D: constant-time compare, else [`PeerError::Unauthenticated`] |
//!
//! Each side proves it holds the secret over a nonce the other chose, so neither a replayed
//! nor a reflected transcript passes, and the secret never crosses the wire. The link after the
//! handshake is neither encrypted nor integrity-protected per frame (see ARCHITECTURE.md,
//! "Deliberately absent").

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bincode::Options;
use hmac::{Hmac, Mac};
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::types::{NodeId, TypeConfig};

/// The first bytes of every connection's first frame.
pub const MAGIC: [u8; 8] = *b"MOODBRFT";
/// The protocol version this build speaks; a peer with another is refused.
pub const VERSION: u16 = 1;
/// The largest frame either side accepts before the handshake completes.
pub const HANDSHAKE_FRAME_MAX: usize = 256;
/// The bytes of one nonce.
pub const NONCE_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// The shared secret peers prove they hold. Its `Debug` and `Display` print `<redacted>`.
#[derive(Clone)]
pub struct ClusterSecret(Arc<[u8]>);

impl ClusterSecret {
    /// A secret from its text; an empty one is refused.
    pub fn new(secret: &str) -> Result<Self, SecretError> {
        if secret.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(ClusterSecret(Arc::from(secret.as_bytes())))
    }

    /// The MAC `role` sends over the handshake's `transcript`.
    fn mac(&self, role: &[u8], transcript: &Transcript) -> [u8; 32] {
        // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
        let mut mac = match HmacSha256::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of every length"),
        };
        mac.update(b"moodb raft v1");
        mac.update(role);
        mac.update(&transcript.from.to_be_bytes());
        mac.update(&transcript.target.to_be_bytes());
        mac.update(&transcript.dialer);
        mac.update(&transcript.listener);
        mac.finalize().into_bytes().into()
    }

    /// Whether `got` is the MAC `role` must send (constant time).
    fn verify(&self, role: &[u8], transcript: &Transcript, got: &[u8; 32]) -> bool {
        self.mac(role, transcript).ct_eq(got).into()
    }
}

/// What both MACs of a handshake cover: who dials whom, and both nonces.
struct Transcript {
    from: NodeId,
    target: NodeId,
    dialer: [u8; NONCE_LEN],
    listener: [u8; NONCE_LEN],
}

impl FromStr for ClusterSecret {
    type Err = SecretError;

    fn from_str(s: &str) -> Result<Self, SecretError> {
        ClusterSecret::new(s)
    }
}

impl fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for ClusterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Why a secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("the cluster secret is empty")]
    Empty,
}

/// Where peer-link events (a refused peer, a peer that refused us) are written: stderr by
/// default; tests collect them.
#[derive(Clone)]
pub struct PeerLog(Arc<dyn Fn(&str) + Send + Sync>);

impl PeerLog {
    /// Lines go to stderr.
    pub fn stderr() -> Self {
        PeerLog(Arc::new(|line| eprintln!("{line}")))
    }

    /// Lines go to `f`.
    pub fn new(f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        PeerLog(Arc::new(f))
    }

    pub(crate) fn line(&self, line: &str) {
        (self.0)(line)
    }
}

impl fmt::Debug for PeerLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PeerLog")
    }
}

/// The limits and knobs of both sides of a peer link.
#[derive(Debug, Clone)]
pub struct PeerOptions {
    /// The largest frame sent or accepted after the handshake. An append batch that does not
    /// fit is split (openraft's `PayloadTooLarge`); a single entry or snapshot chunk that does
    /// not fit cannot be sent, so keep this above the largest record and openraft's
    /// `snapshot_max_chunk_size`.
    pub max_frame: usize,
    /// The longest a dial may take (further bounded by each RPC's hard TTL).
    pub connect_timeout: Duration,
    /// The longest the listening side waits for a connection's handshake.
    pub handshake_timeout: Duration,
    /// The longest the listening side keeps a connection that sends no request (a leader's
    /// heartbeats keep its links busy; a peer gone without a word is let go).
    pub idle_timeout: Duration,
    /// The most peer connections the listening side serves at once; more are closed at once.
    pub max_connections: usize,
    /// The local address outgoing connections are bound to (`None`: the system picks).
    pub source_ip: Option<IpAddr>,
    /// The pause openraft takes before retrying an unreachable peer.
    pub backoff: Duration,
    /// Where link events are written.
    pub log: PeerLog,
}

impl Default for PeerOptions {
    fn default() -> Self {
        PeerOptions {
            // Redis's query buffer limit: the largest transaction record a client can send.
            max_frame: 1 << 30,
            connect_timeout: Duration::from_secs(1),
            handshake_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            max_connections: 256,
            source_ip: None,
            backoff: Duration::from_millis(200),
            log: PeerLog::stderr(),
        }
    }
}

/// The dialer's first frame.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Hello {
    pub magic: [u8; 8],
    pub version: u16,
    /// The dialer's node id (for the listener's log).
    pub from: NodeId,
    /// The node the dialer means to reach.
    pub target: NodeId,
    pub nonce: [u8; NONCE_LEN],
}

/// The listener's answers during the handshake.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ListenerFrame {
    Challenge { nonce: [u8; NONCE_LEN] },
    Accepted { mac: [u8; 32] },
    Refused(Refusal),
}

/// The dialer's proof.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Proof {
    pub mac: [u8; 32],
}

/// Why a listener refused a dialer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    #[error("wrong cluster secret")]
    WrongSecret,
    #[error("protocol version {0} is not spoken here")]
    Version(u16),
    #[error("this address is node {0}")]
    WrongNode(NodeId),
}

/// One request after the handshake.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) enum Request {
    Vote(VoteRequest<NodeId>),
    Append(AppendEntriesRequest<TypeConfig>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
}

/// The answer to one request: what the listener's `Raft` returned.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) enum Response {
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    Append(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
}

/// What can go wrong on a peer link (either side).
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("raft peer {addr}: cannot resolve the address: {source}")]
    Resolve { addr: String, source: io::Error },
    #[error("raft peer {addr}: connect: {source}")]
    Connect { addr: String, source: io::Error },
    #[error("raft peer {addr}: {source}")]
    Io { addr: String, source: io::Error },
    #[error("raft peer {addr}: timed out after {after:?} ({during})")]
    Timeout {
        addr: String,
        during: &'static str,
        after: Duration,
    },
    #[error("raft peer {addr} refused us: {reason}")]
    Refused { addr: String, reason: Refusal },
    #[error("refused raft peer {addr}: {reason}")]
    RefusedPeer { addr: String, reason: Refusal },
    #[error("raft peer {addr} did not prove it holds the cluster secret")]
    Unauthenticated { addr: String },
    #[error("raft peer {addr}: a frame of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge {
        addr: String,
        len: usize,
        max: usize,
    },
    #[error("raft peer {addr}: undecodable frame: {source}")]
    Decode {
        addr: String,
        source: bincode::Error,
    },
    #[error("raft peer {addr}: not a moodb raft peer ({what})")]
    Protocol { addr: String, what: &'static str },
}

impl PeerError {
    /// Whether the peer answered but the link cannot be authenticated or spoken (a
    /// configuration error worth a log line, not a transient one).
    pub fn is_misconfiguration(&self) -> bool {
        matches!(
            self,
            PeerError::Refused { .. }
                | PeerError::RefusedPeer { .. }
                | PeerError::Unauthenticated { .. }
                | PeerError::Protocol { .. }
        )
    }
}

fn codec(limit: usize) -> impl Options {
    bincode::DefaultOptions::new()
        .with_limit(limit as u64)
        .reject_trailing_bytes()
}

/// A framed connection: reads and writes whole messages.
pub(crate) struct Framed<S> {
    pub stream: S,
    /// The other end's address, for errors.
    pub addr: String,
    buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Framed<S> {
    pub fn new(stream: S, addr: String) -> Self {
        Framed {
            stream,
            addr,
            buf: Vec::new(),
        }
    }

    fn io(&self, source: io::Error) -> PeerError {
        PeerError::Io {
            addr: self.addr.clone(),
            source,
        }
    }

    /// Sends `msg` as one frame of at most `max` bytes.
    pub async fn send<T: Serialize>(&mut self, msg: &T, max: usize) -> Result<(), PeerError> {
        self.buf.clear();
        self.buf.extend_from_slice(&[0; 4]);
        let addr = &self.addr;
        codec(max)
            .serialize_into(&mut self.buf, msg)
            .map_err(|e| match *e {
                bincode::ErrorKind::SizeLimit => PeerError::FrameTooLarge {
                    addr: addr.clone(),
                    len: max.saturating_add(1),
                    max,
                },
                _ => PeerError::Decode {
                    addr: addr.clone(),
                    source: e,
                },
            })?;
        let len = self.buf.len() - 4;
        let header = u32::try_from(len)
            .ok()
            .filter(|_| len <= max)
            .ok_or_else(|| PeerError::FrameTooLarge {
                addr: self.addr.clone(),
                len,
                max,
            })?;
        self.buf[..4].copy_from_slice(&header.to_be_bytes());
        let result = self.stream.write_all(&self.buf).await;
        // Keep a large buffer only while it is in use.
        if self.buf.capacity() > 1 << 20 {
            self.buf = Vec::new();
        }
        result.map_err(|e| self.io(e))?;
        self.stream.flush().await.map_err(|e| self.io(e))
    }

    /// Receives one frame of at most `max` bytes and decodes it.
    pub async fn recv<T: DeserializeOwned>(&mut self, max: usize) -> Result<T, PeerError> {
        let mut header = [0; 4];
        self.stream
            .read_exact(&mut header)
            .await
            .map_err(|e| self.io(e))?;
        let len = u32::from_be_bytes(header) as usize;
        if len > max {
            return Err(PeerError::FrameTooLarge {
                addr: self.addr.clone(),
                len,
                max,
            });
        }
        // Grow as bytes arrive: a length alone does not make us allocate it.
        let mut body = Vec::with_capacity(len.min(1 << 20));
        let got = (&mut self.stream)
            .take(len as u64)
            .read_to_end(&mut body)
            .await
            .map_err(|e| self.io(e))?;
        if got != len {
            return Err(self.io(io::ErrorKind::UnexpectedEof.into()));
        }
        codec(max)
            .deserialize(&body)
            .map_err(|source| PeerError::Decode {
                addr: self.addr.clone(),
                source,
            })
    }
}

/// A fresh random nonce.
fn nonce() -> [u8; NONCE_LEN] {
    use rand::RngCore;
    let mut n = [0; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut n);
    n
}

const DIALER: &[u8] = b"dialer";
const LISTENER: &[u8] = b"listener";

/// The dialer's half of the handshake: proves the secret to the listener and checks the
/// listener's proof.
pub(crate) async fn handshake_dialer<S: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<S>,
    secret: &ClusterSecret,
    from: NodeId,
    target: NodeId,
) -> Result<(), PeerError> {
    let mine = nonce();
    let hello = Hello {
        magic: MAGIC,
        version: VERSION,
        from,
        target,
        nonce: mine,
    };
    framed.send(&hello, HANDSHAKE_FRAME_MAX).await?;
    let theirs = match framed.recv(HANDSHAKE_FRAME_MAX).await? {
        ListenerFrame::Challenge { nonce } => nonce,
        ListenerFrame::Refused(reason) => {
            return Err(PeerError::Refused {
                addr: framed.addr.clone(),
                reason,
            })
        }
        ListenerFrame::Accepted { .. } => {
            return Err(PeerError::Protocol {
                addr: framed.addr.clone(),
                what: "accepted before a proof",
            })
        }
    };
    let transcript = Transcript {
        from,
        target,
        dialer: mine,
        listener: theirs,
    };
    let proof = Proof {
        mac: secret.mac(DIALER, &transcript),
    };
    framed.send(&proof, HANDSHAKE_FRAME_MAX).await?;
    match framed.recv(HANDSHAKE_FRAME_MAX).await? {
        ListenerFrame::Accepted { mac } if secret.verify(LISTENER, &transcript, &mac) => Ok(()),
        ListenerFrame::Accepted { .. } => Err(PeerError::Unauthenticated {
            addr: framed.addr.clone(),
        }),
        ListenerFrame::Refused(reason) => Err(PeerError::Refused {
            addr: framed.addr.clone(),
            reason,
        }),
        ListenerFrame::Challenge { .. } => Err(PeerError::Protocol {
            addr: framed.addr.clone(),
            what: "a second challenge",
        }),
    }
}

/// The listener's half of the handshake: checks the dialer's hello and proof, answers with its
/// own proof. Returns the dialer's node id. A refusal is sent to the dialer before the error
/// is returned.
pub(crate) async fn handshake_listener<S: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<S>,
    secret: &ClusterSecret,
    me: NodeId,
) -> Result<NodeId, PeerError> {
    let hello: Hello = match framed.recv(HANDSHAKE_FRAME_MAX).await {
        Ok(hello) => hello,
        Err(PeerError::Decode { addr, .. }) | Err(PeerError::FrameTooLarge { addr, .. }) => {
            return Err(PeerError::Protocol {
                addr,
                what: "an unreadable hello",
            })
        }
        Err(e) => return Err(e),
    };
    if hello.magic != MAGIC {
        return Err(PeerError::Protocol {
            addr: framed.addr.clone(),
            what: "bad magic",
        });
    }
    let refusal = if hello.version != VERSION {
        Some(Refusal::Version(hello.version))
    } else if hello.target != me {
        Some(Refusal::WrongNode(me))
    } else {
        None
    };
    if let Some(reason) = refusal {
        return refuse(framed, reason).await;
    }
    let mine = nonce();
    framed
        .send(
            &ListenerFrame::Challenge { nonce: mine },
            HANDSHAKE_FRAME_MAX,
        )
        .await?;
    let proof: Proof = framed.recv(HANDSHAKE_FRAME_MAX).await?;
    let transcript = Transcript {
        from: hello.from,
        target: hello.target,
        dialer: hello.nonce,
        listener: mine,
    };
    if !secret.verify(DIALER, &transcript, &proof.mac) {
        return refuse(framed, Refusal::WrongSecret).await;
    }
    let accepted = ListenerFrame::Accepted {
        mac: secret.mac(LISTENER, &transcript),
    };
    framed.send(&accepted, HANDSHAKE_FRAME_MAX).await?;
    Ok(hello.from)
}

async fn refuse<S: AsyncRead + AsyncWrite + Unpin, T>(
    framed: &mut Framed<S>,
    reason: Refusal,
) -> Result<T, PeerError> {
    // The dialer may be gone already; the refusal is reported here either way.
    let _ = framed
        .send(&ListenerFrame::Refused(reason.clone()), HANDSHAKE_FRAME_MAX)
        .await;
    let _ = framed.stream.shutdown().await;
    Err(PeerError::RefusedPeer {
        addr: framed.addr.clone(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_secret_is_redacted_and_never_empty() {
        let s = ClusterSecret::new("hunter2").unwrap();
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(format!("{s}"), "<redacted>");
        assert!(matches!(ClusterSecret::new(""), Err(SecretError::Empty)));
        assert!("".parse::<ClusterSecret>().is_err());
    }

    async fn pair(
        dialer: &str,
        listener: &str,
        target: NodeId,
    ) -> (Result<(), PeerError>, Result<NodeId, PeerError>) {
        let (a, b) = tokio::io::duplex(1024);
        let d = ClusterSecret::new(dialer).unwrap();
        let l = ClusterSecret::new(listener).unwrap();
        let mut da = Framed::new(a, "listener".into());
        let mut lb = Framed::new(b, "dialer".into());
        tokio::join!(
            handshake_dialer(&mut da, &d, 7, target),
            handshake_listener(&mut lb, &l, 2)
        )
    }

    #[tokio::test]
    async fn the_handshake_checks_both_sides() {
        let (d, l) = pair("s", "s", 2).await;
        assert!(d.is_ok(), "{d:?}");
        assert_eq!(l.unwrap(), 7);

        let (d, l) = pair("s", "t", 2).await;
        assert!(
            matches!(
                d,
                Err(PeerError::Refused {
                    reason: Refusal::WrongSecret,
                    ..
                })
            ),
            "{d:?}"
        );
        let l = l.unwrap_err();
        assert_eq!(
            l.to_string(),
            "refused raft peer dialer: wrong cluster secret"
        );

        let (d, l) = pair("s", "s", 3).await;
        assert!(
            matches!(
                d,
                Err(PeerError::Refused {
                    reason: Refusal::WrongNode(2),
                    ..
                })
            ),
            "{d:?}"
        );
        assert!(l.is_err());
    }

    #[tokio::test]
    async fn a_listener_that_cannot_prove_the_secret_is_refused_by_the_dialer() {
        // A listener that accepts without the secret: answers with a MAC under another key.
        let (a, b) = tokio::io::duplex(1024);
        let d = ClusterSecret::new("s").unwrap();
        let fake = ClusterSecret::new("guess").unwrap();
        let mut da = Framed::new(a, "listener".into());
        let mut lb = Framed::new(b, "dialer".into());
        let listener = async {
            let hello: Hello = lb.recv(HANDSHAKE_FRAME_MAX).await.unwrap();
            let mine = nonce();
            lb.send(&ListenerFrame::Challenge { nonce: mine }, 256)
                .await
                .unwrap();
            let _: Proof = lb.recv(256).await.unwrap();
            let transcript = Transcript {
                from: hello.from,
                target: hello.target,
                dialer: hello.nonce,
                listener: mine,
            };
            let mac = fake.mac(LISTENER, &transcript);
            lb.send(&ListenerFrame::Accepted { mac }, 256)
                .await
                .unwrap();
        };
        let (r, ()) = tokio::join!(handshake_dialer(&mut da, &d, 1, 2), listener);
        assert!(matches!(r, Err(PeerError::Unauthenticated { .. })), "{r:?}");
    }

    #[tokio::test]
    async fn frames_are_bounded() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let mut fa = Framed::new(a, "a".into());
        let mut fb = Framed::new(b, "b".into());
        let big = vec![7u8; 1000];
        assert!(matches!(
            fa.send(&big, 100).await,
            Err(PeerError::FrameTooLarge { max: 100, .. })
        ));
        fa.send(&big, 2000).await.unwrap();
        assert!(matches!(
            fb.recv::<Vec<u8>>(100).await,
            Err(PeerError::FrameTooLarge { max: 100, .. })
        ));
        // A header announcing 4 GB only reads what arrives.
        let (a, b) = tokio::io::duplex(64);
        let mut raw = a;
        let mut fb = Framed::new(b, "b".into());
        raw.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        raw.write_all(b"short").await.unwrap();
        drop(raw);
        assert!(matches!(
            fb.recv::<Vec<u8>>(usize::MAX).await,
            Err(PeerError::Io { .. })
        ));
    }
}
