//! [`Proxy`]: an in-test TCP proxy on 127.0.0.1 in front of one target, for partition tests.
//! While healed it forwards every connection to the target byte for byte. [`Proxy::partition`]
//! cuts every connection it carries and blackholes new ones (accepted, then held without a
//! byte forwarded either way, as a dead link looks to the dialer: its requests time out);
//! [`Proxy::block`] does the same for the connections from one source address only (a peer
//! that binds its outgoing connections to its own loopback address can so be cut off in one
//! direction). [`Proxy::heal`] lifts both and closes the held connections. Threads only; the
//! accept loop polls a stop flag every few milliseconds, and dropping the proxy stops it,
//! closes every connection and joins the accept thread.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the accept loop sleeps when nothing is waiting.
const POLL: Duration = Duration::from_millis(5);
/// The longest a connection to the target may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A forwarded connection: both sockets, kept to cut them.
struct Link {
    source: IpAddr,
    client: TcpStream,
    upstream: TcpStream,
}

impl Link {
    fn cut(&self) {
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.upstream.shutdown(Shutdown::Both);
    }
}

#[derive(Default)]
struct State {
    partitioned: bool,
    blocked: HashSet<IpAddr>,
    links: HashMap<u64, Link>,
    /// Blackholed connections, closed on heal.
    held: Vec<TcpStream>,
    next: u64,
    /// Connections accepted so far (forwarded or held).
    accepted: u64,
}

struct Shared {
    target: SocketAddr,
    stop: AtomicBool,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A TCP proxy in front of one target; stops when dropped.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Proxy {
    /// A proxy on 127.0.0.1 (a port of its own) forwarding to `target`.
    pub fn start(target: SocketAddr) -> io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            target,
            stop: AtomicBool::new(false),
            state: Mutex::new(State::default()),
        });
        let accept = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("proxy {addr}"))
                .spawn(move || accept_loop(&listener, &shared))?
        };
        Ok(Proxy {
            addr,
            shared,
            accept: Some(accept),
        })
    }

    /// Where to connect to reach the target through the proxy.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts every connection and blackholes new ones until [`Proxy::heal`].
    pub fn partition(&self) {
        let mut state = self.shared.lock();
        state.partitioned = true;
        for (_, link) in state.links.drain() {
            link.cut();
        }
    }

    /// Cuts the connections from `source` and blackholes its new ones until [`Proxy::heal`].
    pub fn block(&self, source: IpAddr) {
        let mut state = self.shared.lock();
        state.blocked.insert(source);
        state.links.retain(|_, link| {
            if link.source == source {
                link.cut();
                false
            } else {
                true
            }
        });
    }

    /// Forwards everything again; the blackholed connections are closed (their dialers see
    /// the link fail and dial again).
    pub fn heal(&self) {
        let mut state = self.shared.lock();
        state.partitioned = false;
        state.blocked.clear();
        for held in state.held.drain(..) {
            let _ = held.shutdown(Shutdown::Both);
        }
    }

    /// How many connections the proxy has accepted so far.
    pub fn accepted(&self) -> u64 {
        self.shared.lock().accepted
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        let mut state = self.shared.lock();
        for (_, link) in state.links.drain() {
            link.cut();
        }
        for held in state.held.drain(..) {
            let _ = held.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, peer)) => admit(shared, client, peer),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// Forwards or holds one accepted connection.
fn admit(shared: &Arc<Shared>, client: TcpStream, peer: SocketAddr) {
    if client.set_nonblocking(false).is_err() {
        return;
    }
    let _ = client.set_nodelay(true);
    {
        let mut state = shared.lock();
        state.accepted += 1;
        if state.partitioned || state.blocked.contains(&peer.ip()) {
            state.held.push(client);
            return;
        }
    }
    // The target down: the client sees its connection closed at once.
    let Ok(upstream) = TcpStream::connect_timeout(&shared.target, CONNECT_TIMEOUT) else {
        return;
    };
    let _ = upstream.set_nodelay(true);
    let (Ok(c2), Ok(u2), Ok(c3), Ok(u3)) = (
        client.try_clone(),
        upstream.try_clone(),
        client.try_clone(),
        upstream.try_clone(),
    ) else {
        return;
    };
    let id = {
        let mut state = shared.lock();
        // Partitioned while connecting: hold it instead.
        if state.partitioned || state.blocked.contains(&peer.ip()) {
            state.held.push(client);
            return;
        }
        let id = state.next;
        state.next += 1;
        state.links.insert(
            id,
            Link {
                source: peer.ip(),
                client,
                upstream,
            },
        );
        id
    };
    if !(pump(shared.clone(), id, c2, u2) && pump(shared.clone(), id, u3, c3)) {
        // No thread to carry it: the link is cut.
        if let Some(link) = shared.lock().links.remove(&id) {
            link.cut();
        }
    }
}

/// Copies `from` to `to` on a thread of its own; at the end cuts the whole link. False if no
/// thread could be started.
fn pump(shared: Arc<Shared>, id: u64, mut from: TcpStream, mut to: TcpStream) -> bool {
    std::thread::Builder::new()
        .name(format!("proxy link {id}"))
        .spawn(move || {
            let _ = io::copy(&mut from, &mut to);
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
            if let Some(link) = shared.lock().links.remove(&id) {
                link.cut();
            }
        })
        .is_ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::{Read, Write};

    /// An echo server for one connection at a time, on a thread that ends with the listener.
    fn echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(8) {
                let Ok(mut s) = stream else { return };
                std::thread::spawn(move || {
                    let mut buf = [0; 64];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 || s.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    fn round_trip(s: &mut TcpStream) -> io::Result<Vec<u8>> {
        s.write_all(b"ping")?;
        let mut got = [0; 4];
        s.read_exact(&mut got)?;
        Ok(got.to_vec())
    }

    #[test]
    fn forwards_partitions_and_heals() {
        let proxy = Proxy::start(echo()).unwrap();
        let timeout = Some(Duration::from_millis(300));
        let mut a = TcpStream::connect(proxy.addr()).unwrap();
        a.set_read_timeout(timeout).unwrap();
        assert_eq!(round_trip(&mut a).unwrap(), b"ping");

        proxy.partition();
        // The existing connection is cut, a new one is held without an answer.
        assert!(round_trip(&mut a).is_err());
        let mut b = TcpStream::connect(proxy.addr()).unwrap();
        b.set_read_timeout(timeout).unwrap();
        assert!(round_trip(&mut b).is_err());

        proxy.heal();
        let mut c = TcpStream::connect(proxy.addr()).unwrap();
        c.set_read_timeout(timeout).unwrap();
        assert_eq!(round_trip(&mut c).unwrap(), b"ping");

        proxy.block("127.0.0.1".parse().unwrap());
        assert!(round_trip(&mut c).is_err());
        proxy.heal();
        assert_eq!(proxy.accepted(), 3);
    }
}
