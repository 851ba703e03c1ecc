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
                        shared.log_limited(peer.ip(), &format!(
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
                    let nowhere = IpAddr::from([0, 0, 0, 0]);
                    shared.log_limited(nowhere, &format!("moodb: raft peer accept failed: {e}"));
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
            let request: Request =
                match tokio::time::timeout(self.options.idle_timeout, framed.recv(max)).await {
                    Ok(Ok(r)) => r,
                    // The peer hung up between requests, or said nothing for long: the normal
                    // end of a link (the dialer dials again when it needs one).
                    Ok(Err(PeerError::Io { source, .. }))
                        if source.kind() == std::io::ErrorKind::UnexpectedEof =>
                    {
                        return Ok(())
                    }
                    Ok(Err(e)) => return Err(e),
                    Err(_) => return Ok(()),
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

    /// Logs why a connection ended, unless it is routine (a reset, a peer gone mid-request:
    /// the dialer retries), at most once per [`REFUSAL_LOG_EVERY`] per address, with the count
    /// of those not logged.
    fn log_failure(&self, peer: SocketAddr, e: &PeerError) {
        let line = match e {
            PeerError::RefusedPeer { reason, .. } => {
                format!("moodb: refused raft peer {peer}: {reason}")
            }
            PeerError::Protocol { what, .. } => {
                format!("moodb: refused raft peer {peer}: not a moodb raft peer ({what})")
            }
            PeerError::Timeout { after, .. } => {
                format!("moodb: refused raft peer {peer}: no handshake within {after:?}")
            }
            // An authenticated peer that sends what cannot be read: a version skew or a bug.
            PeerError::Decode { .. } | PeerError::FrameTooLarge { .. } => format!("moodb: {e}"),
            _ => return,
        };
        self.log_limited(peer.ip(), &line);
    }

    /// Logs `line` about `ip` unless a line about it was logged within [`REFUSAL_LOG_EVERY`].
    fn log_limited(&self, ip: IpAddr, line: &str) {
        let now = Instant::now();
        let suppressed = {
            let mut refusals = self
                .refusals
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if refusals.len() >= REFUSAL_LOG_ADDRESSES {
                refusals.clear();
            }
            match refusals.get_mut(&ip) {
                Some((last, skipped)) if now.duration_since(*last) < REFUSAL_LOG_EVERY => {
                    *skipped += 1;
                    return;
                }
                Some((last, skipped)) => {
                    *last = now;
                    std::mem::take(skipped)
                }
                None => {
                    refusals.insert(ip, (now, 0));
                    0
                }
            }
        };
        if suppressed > 0 {
            self.options
                .log
                .line(&format!("{line} ({suppressed} more from {ip} not logged)"));
        } else {
            self.options.log.line(line);
        }
    }
}
