//! [`PeerNetwork`]: openraft's `RaftNetworkFactory` over TCP, the dialing side of the peer
//! links. A target's address is its `BasicNode.addr` in the membership. Each target keeps one
//! authenticated connection (see [`super::peer_wire`] for frames and the handshake) that
//! outlives the short-lived clients openraft makes for votes; a connection that fails,
//! times out or is cancelled mid-request is dropped and the next request dials again. Every
//! RPC, dial included, is bounded by its `RPCOption` hard TTL; nothing here panics on a
//! network failure: it becomes the `RPCError` openraft expects (`Unreachable` to back off,
//! `Network` to retry, `Timeout`, `PayloadTooLarge` to split a batch).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, Timeout,
    Unreachable,
};
use openraft::network::{Backoff, RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use tokio::net::{TcpSocket, TcpStream};

use super::peer_wire::{
    handshake_dialer, ClusterSecret, Framed, PeerError, PeerOptions, Request, Response,
};
use super::types::{NodeId, TypeConfig};

type Rpc<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

/// Fails a connection that reached itself. On loopback, dialing a port nobody listens on
/// can be answered by the kernel's simultaneous open when it picks that same port as the
/// source: the "connection" then reads back what it writes, and holds the port, so the peer
/// restarting there cannot bind it. Go's dialer refuses the same case (`selfConnect`); the
/// connection is reset rather than closed, so that no TIME-WAIT keeps the port either.
pub(crate) fn refuse_self_connection(stream: &TcpStream) -> std::io::Result<()> {
    let (local, peer) = (stream.local_addr()?, stream.peer_addr()?);
    if local == peer {
        socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO))?;
        return Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            format!("{peer} is not listening (the connection reached itself)"),
        ));
    }
    Ok(())
}

/// An authenticated connection to one peer.
struct Conn {
    framed: Framed<TcpStream>,
}

struct Shared {
    me: NodeId,
    secret: ClusterSecret,
    options: PeerOptions,
    /// Connections not held by a client, by target (and the address they were dialed at).
    idle: Mutex<HashMap<NodeId, (String, Conn)>>,
    /// The misconfiguration last logged per target, so a peer refusing us every retry is
    /// logged once until the link works again.
    reported: Mutex<HashMap<NodeId, String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the maps whole.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The dialing side of the peer links of node `me`; clones share the connections.
#[derive(Clone)]
pub struct PeerNetwork {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PeerNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerNetwork")
            .field("me", &self.shared.me)
            .field("options", &self.shared.options)
            .finish_non_exhaustive()
    }
}

impl PeerNetwork {
    /// Node `me`'s links, authenticated with `secret`, with the default [`PeerOptions`].
    pub fn new(me: NodeId, secret: ClusterSecret) -> Self {
        Self::with_options(me, secret, PeerOptions::default())
    }

    pub fn with_options(me: NodeId, secret: ClusterSecret, options: PeerOptions) -> Self {
        PeerNetwork {
            shared: Arc::new(Shared {
                me,
                secret,
                options,
                idle: Mutex::new(HashMap::new()),
                reported: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Drops every idle connection (the next request to each peer dials again).
    pub fn disconnect_all(&self) {
        lock(&self.shared.idle).clear();
    }
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient {
            shared: self.shared.clone(),
            target,
            // `raft|client` for a node added by RAFT ADD-NODE: the raft part is dialed.
            addr: node.addr.split('|').next().unwrap_or_default().to_string(),
            conn: None,
        }
    }
}

/// The link to one target, as openraft uses it (one request at a time).
pub struct PeerClient {
    shared: Arc<Shared>,
    target: NodeId,
    addr: String,
    conn: Option<Conn>,
}

impl Drop for PeerClient {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            lock(&self.shared.idle)
                .entry(self.target)
                .or_insert_with(|| (self.addr.clone(), conn));
        }
    }
}

/// How a call failed.
enum Failure {
    /// No authenticated connection could be made.
    Dial(PeerError),
    /// The connection failed during the request.
    Call(PeerError),
    /// The request does not fit in a frame.
    TooLarge(PeerError),
    /// The hard TTL ran out.
    Timeout,
}

impl PeerClient {
    /// An authenticated connection: this client's, an idle one to the same address, or a new
    /// one. The flag says whether it was reused (and so may have gone stale).
    async fn connection(&mut self) -> Result<(Conn, bool), PeerError> {
        if let Some(conn) = self.conn.take() {
            return Ok((conn, true));
        }
        let idle = lock(&self.shared.idle).remove(&self.target);
        if let Some((addr, conn)) = idle {
            if addr == self.addr {
                return Ok((conn, true));
            }
        }
        self.dial().await.map(|c| (c, false))
    }

    async fn dial(&self) -> Result<Conn, PeerError> {
        let addr = &self.addr;
        let resolved = tokio::net::lookup_host(addr.as_str())
            .await
            .map_err(|source| PeerError::Resolve {
                addr: addr.clone(),
                source,
            })?
            .next()
            .ok_or_else(|| PeerError::Resolve {
                addr: addr.clone(),
                source: std::io::ErrorKind::NotFound.into(),
            })?;
        let connect = |source| PeerError::Connect {
            addr: addr.clone(),
            source,
        };
        let socket = if resolved.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(connect)?;
        if let Some(ip) = self.shared.options.source_ip {
            socket.bind((ip, 0).into()).map_err(connect)?;
        }
        let stream = socket.connect(resolved).await.map_err(connect)?;
        refuse_self_connection(&stream).map_err(connect)?;
        stream.set_nodelay(true).map_err(connect)?;
        let mut framed = Framed::new(stream, addr.clone());
        handshake_dialer(
            &mut framed,
            &self.shared.secret,
            self.shared.me,
            self.target,
        )
        .await?;
        Ok(Conn { framed })
    }

    /// One request and its response on `conn`.
    async fn exchange(&self, conn: &mut Conn, request: &Request) -> Result<Response, Failure> {
        let max = self.shared.options.max_frame;
        match conn.framed.send(request, max).await {
            Ok(()) => {}
            Err(e @ PeerError::FrameTooLarge { .. }) => return Err(Failure::TooLarge(e)),
            Err(e) => return Err(Failure::Call(e)),
        }
        conn.framed.recv(max).await.map_err(Failure::Call)
    }

    /// Sends `request` and waits for its response, within `ttl`.
    async fn call(&mut self, request: Request, ttl: Duration) -> Result<Response, Failure> {
        let dial_bound = ttl.min(self.shared.options.connect_timeout);
        let attempt = async {
            let (mut conn, reused) = match tokio::time::timeout(dial_bound, self.connection()).await
            {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => return Err(Failure::Dial(e)),
                Err(_) => {
                    return Err(Failure::Dial(PeerError::Timeout {
                        addr: self.addr.clone(),
                        during: "connecting",
                        after: dial_bound,
                    }))
                }
            };
            let response = match self.exchange(&mut conn, &request).await {
                // A reused connection may have died while idle (the peer restarted): dial
                // once more. Raft requests are safe to deliver twice.
                Err(Failure::Call(PeerError::Io { .. })) if reused => {
                    drop(conn);
                    conn = match tokio::time::timeout(dial_bound, self.dial()).await {
                        Ok(Ok(c)) => c,
                        Ok(Err(e)) => return Err(Failure::Dial(e)),
                        Err(_) => {
                            return Err(Failure::Dial(PeerError::Timeout {
                                addr: self.addr.clone(),
                                during: "connecting",
                                after: dial_bound,
                            }))
                        }
                    };
                    self.exchange(&mut conn, &request).await?
                }
                other => other?,
            };
            self.conn = Some(conn);
            Ok(response)
        };
        // Cancelled or timed out mid-request, the connection is dropped with the future: a
        // late response can never be taken for the next request's.
        let result = match tokio::time::timeout(ttl, attempt).await {
            Ok(r) => r,
            Err(_) => Err(Failure::Timeout),
        };
        self.report(&result);
        result
    }

    /// Logs a misconfigured link once (until it works again).
    fn report(&self, result: &Result<Response, Failure>) {
        let mut reported = lock(&self.shared.reported);
        match result {
            Ok(_) => {
                reported.remove(&self.target);
            }
            Err(Failure::Dial(e)) if e.is_misconfiguration() => {
                let line = format!("moodb: raft node {}: {e}", self.target);
                if reported.get(&self.target) != Some(&line) {
                    self.shared.options.log.line(&line);
                    reported.insert(self.target, line);
                }
            }
            Err(_) => {}
        }
    }

    fn rpc_error<E: std::error::Error>(
        &self,
        failure: Failure,
        action: RPCTypes,
        ttl: Duration,
        entries: usize,
    ) -> RPCError<NodeId, BasicNode, RaftError<NodeId, E>> {
        match failure {
            Failure::Dial(e) => RPCError::Unreachable(Unreachable::new(&e)),
            Failure::Call(e) => RPCError::Network(NetworkError::new(&e)),
            Failure::TooLarge(e) if entries > 1 => RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint((entries / 2) as u64).with_source_error(&e),
            ),
            // A single entry or chunk that can never fit: back off rather than spin.
            Failure::TooLarge(e) => RPCError::Unreachable(Unreachable::new(&e)),
            Failure::Timeout => RPCError::Timeout(Timeout {
                action,
                id: self.shared.me,
                target: self.target,
                timeout: ttl,
            }),
        }
    }

    fn unexpected(&self) -> PeerError {
        PeerError::Protocol {
            addr: self.addr.clone(),
            what: "a response to another request",
        }
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Rpc<AppendEntriesResponse<NodeId>> {
        let ttl = option.hard_ttl();
        let entries = rpc.entries.len();
        match self.call(Request::Append(rpc), ttl).await {
            Ok(Response::Append(Ok(r))) => Ok(r),
            Ok(Response::Append(Err(e))) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(_) => {
                self.conn = None;
                Err(RPCError::Network(NetworkError::new(&self.unexpected())))
            }
            Err(f) => Err(self.rpc_error(f, RPCTypes::AppendEntries, ttl, entries)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Rpc<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        let ttl = option.hard_ttl();
        match self.call(Request::InstallSnapshot(rpc), ttl).await {
            Ok(Response::InstallSnapshot(Ok(r))) => Ok(r),
            Ok(Response::InstallSnapshot(Err(e))) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(_) => {
                self.conn = None;
                Err(RPCError::Network(NetworkError::new(&self.unexpected())))
            }
            Err(f) => Err(self.rpc_error(f, RPCTypes::InstallSnapshot, ttl, 0)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Rpc<VoteResponse<NodeId>> {
        let ttl = option.hard_ttl();
        match self.call(Request::Vote(rpc), ttl).await {
            Ok(Response::Vote(Ok(r))) => Ok(r),
            Ok(Response::Vote(Err(e))) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(_) => {
                self.conn = None;
                Err(RPCError::Network(NetworkError::new(&self.unexpected())))
            }
            Err(f) => Err(self.rpc_error(f, RPCTypes::Vote, ttl, 0)),
        }
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(self.shared.options.backoff))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket bound to a port and connecting to that same port opens onto itself (what the
    /// kernel does by chance when it picks the dialed port as the source): it is refused, and
    /// reset, so that the port can be listened on again at once.
    #[tokio::test]
    async fn a_connection_that_reached_itself_is_refused_and_frees_its_port() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let socket = TcpSocket::new_v4().expect("a socket");
        socket.bind(port).expect("binding the port");
        let stream = socket.connect(port).await.expect("a simultaneous open");
        assert_eq!(stream.local_addr().ok(), stream.peer_addr().ok());
        let err = refuse_self_connection(&stream).expect_err("refused");
        assert!(err.to_string().contains("reached itself"), "{err}");
        drop(stream);
        std::net::TcpListener::bind(port).expect("the port is free again");
    }
}
