//! [`serve_peers`]: the listening side of the peer links. It accepts connections on the raft
//! address, runs the listener's half of the handshake (a peer without the cluster secret is
//! refused and logged with its address), then answers each vote, append-entries and
//! install-snapshot request with the local `Raft`, one at a time per connection, until the
//! future is dropped or aborted (which ends every connection it serves with it).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::Raft;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::peer_wire::{
    handshake_listener, ClusterSecret, Framed, PeerError, PeerOptions, Request, Response,
};
use super::types::{NodeId, TypeConfig};

/// How often one address's refusals are logged at most.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);
/// How many addresses the refusal log remembers (it forgets all of them past this).
const REFUSAL_LOG_ADDRESSES: usize = 1024;

/// Serves the peers of `raft` on `listener` with the default [`PeerOptions`].
pub async fn serve_peers(listener: TcpListener, raft: Raft<TypeConfig>, secret: ClusterSecret) {
    serve_peers_with(listener, raft, secret, PeerOptions::default()).await
}

/// Serves the peers of `raft` on `listener`; runs until dropped or aborted.
pub async fn serve_peers_with(
    listener: TcpListener,
    raft: Raft<TypeConfig>,
    secret: ClusterSecret,
    options: PeerOptions,
) {
    let me = raft.metrics().borrow().id;
    let shared = Arc::new(Served {
        me,
        raft,
        secret,
        options,
        refusals: Mutex::new(HashMap::new()),
    });
    let permits = Arc::new(Semaphore::new(shared.options.max_connections.max(1)));
    // Dropping this future drops the set, which aborts every connection task.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Ok(permit) = permits.clone().try_acquire_owned() else {
                        shared.options.log.line(&format!(
                            "moodb: refused raft peer {peer}: {} connections already",
                            shared.options.max_connections
                        ));
                        continue;
                    };
                    let shared = shared.clone();
                    connections.spawn(async move {
                        if let Err(e) = shared.serve(stream, peer).await {
                            shared.log_failure(peer, &e);
                        }
                        drop(permit);
                    });
                }
                Err(e) => {
                    // Out of descriptors and the like: transient; do not spin.
                    shared.options.log.line(&format!("moodb: raft peer accept failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

struct Served {
    me: NodeId,
    raft: Raft<TypeConfig>,
    secret: ClusterSecret,
    options: PeerOptions,
    /// Per address: when a refusal was last logged and how many were not logged since.
    refusals: Mutex<HashMap<IpAddr, (Instant, u64)>>,
}

impl Served {
    async fn serve(&self, stream: TcpStream, peer: SocketAddr) -> Result<(), PeerError> {
        let addr = peer.to_string();
        // Only the answers' latency matters; small frames go out at once.
        stream.set_nodelay(true).map_err(|source| PeerError::Io {
            addr: addr.clone(),
            source,
        })?;
        let mut framed = Framed::new(stream, addr.clone());
        let bound = self.options.handshake_timeout;
        match tokio::time::timeout(
            bound,
            handshake_listener(&mut framed, &self.secret, self.me),
        )
        .await
        {
            Ok(r) => r?,
            Err(_) => {
                return Err(PeerError::Timeout {
                    addr,
                    during: "the handshake",
                    after: bound,
                })
            }
        };
        let max = self.options.max_frame;
        loop {
            let request: Request = match framed.recv(max).await {
                Ok(r) => r,
                // The peer hung up between requests: the normal end of a link.
                Err(PeerError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::UnexpectedEof =>
                {
                    return Ok(())
                }
                Err(e) => return Err(e),
            };
            let response = match request {
                Request::Vote(r) => Response::Vote(self.raft.vote(r).await),
                Request::Append(r) => Response::Append(self.raft.append_entries(r).await),
                Request::InstallSnapshot(r) => {
                    Response::InstallSnapshot(self.raft.install_snapshot(r).await)
                }
            };
            framed.send(&response, max).await?;
        }
    }

    /// Logs why a connection ended, unless it is routine; refusals at most once per
    /// [`REFUSAL_LOG_EVERY`] per address, with the count of those not logged.
    fn log_failure(&self, peer: SocketAddr, e: &PeerError) {
        match e {
            PeerError::RefusedPeer { .. }
            | PeerError::Protocol { .. }
            | PeerError::Timeout { .. } => {}
            // A connection reset or a peer that went away mid-request: the dialer retries.
            _ => return,
        }
        let now = Instant::now();
        let suppressed = {
            let mut refusals = self
                .refusals
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if refusals.len() >= REFUSAL_LOG_ADDRESSES {
                refusals.clear();
            }
            match refusals.get_mut(&peer.ip()) {
                Some((last, skipped)) if now.duration_since(*last) < REFUSAL_LOG_EVERY => {
                    *skipped += 1;
                    return;
                }
                Some((last, skipped)) => {
                    *last = now;
                    std::mem::take(skipped)
                }
                None => {
                    refusals.insert(peer.ip(), (now, 0));
                    0
                }
            }
        };
        let line = match e {
            PeerError::RefusedPeer { reason, .. } => {
                format!("moodb: refused raft peer {peer}: {reason}")
            }
            other => format!("moodb: refused raft peer {peer}: {}", Cause(other)),
        };
        if suppressed > 0 {
            self.options.log.line(&format!(
                "{line} ({suppressed} more from {} not logged)",
                peer.ip()
            ));
        } else {
            self.options.log.line(&line);
        }
    }
}

/// The part of a listener-side error after its address.
struct Cause<'a>(&'a PeerError);

impl std::fmt::Display for Cause<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            PeerError::Protocol { what, .. } => write!(f, "not a moodb raft peer ({what})"),
            PeerError::Timeout { during, after, .. } => {
                write!(f, "no handshake within {after:?} ({during})")
            }
            PeerError::RefusedPeer { reason, .. } => write!(f, "{reason}"),
            other => write!(f, "{other}"),
        }
    }
}
