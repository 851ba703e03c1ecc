//! A real raft cluster of `moodb serve` processes on 127.0.0.1 ([`TestCluster`]): each node
//! gets its own temporary data directory, a client port and a raft port picked free before
//! the start (the peers must know them), the same secret, and short raft timings. Nodes can
//! be killed with SIGKILL and restarted on the same data and ports; who leads is read from
//! ROLE. Every wait is bounded.
//!
//! [`TestCluster::start_proxied`] routes the raft links through a [`Proxy`] in front of each
//! node: peers reach node `id` at its proxy, and the node binds its raft port (and the source
//! of its outgoing peer connections) on a loopback address of its own, 127.0.0.(10 + id), so
//! [`TestCluster::isolate`] can cut it off both ways and [`TestCluster::heal`] join it again.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::process::TAIL_LINES;
use crate::proxy::Proxy;
use crate::server::{io, moodb_binary, HarnessError, Launch, Launched, Running};

/// The secret the test cluster's members share.
pub const TEST_SECRET: &str = "moodb test cluster secret";

/// How long a test waits for a leader to be elected and to serve.
pub const ELECT: Duration = Duration::from_secs(10);

/// Waits (bounded by `timeout`) until `cond` holds; panics naming `what` if it never does.
pub fn eventually(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `args` until the reply is not `-TRYAGAIN` (a leader not serving yet), for at most
/// [`ELECT`]; panics on any other error.
pub fn until_served(con: &mut redis::Connection, args: &[&str]) -> redis::Value {
    let deadline = Instant::now() + ELECT;
    loop {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        match cmd.query::<redis::Value>(con) {
            Err(e) if e.code() == Some("TRYAGAIN") && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(v) => return v,
            Err(e) => panic!("{args:?}: {e}"),
        }
    }
}

/// One member of a [`TestCluster`].
pub struct ClusterNode {
    pub id: u64,
    /// Where clients reach it.
    pub addr: SocketAddr,
    /// Where its peers reach it.
    pub raft_addr: SocketAddr,
    pub data_dir: PathBuf,
    /// Proxied clusters: the proxy its peers reach it through, and the address it dials from.
    pub proxy: Option<Proxy>,
    pub source_ip: IpAddr,
    launch: Launch,
    running: Option<Running>,
}

impl ClusterNode {
    /// Starts the node (it is ready once it listens; forming or joining goes on after).
    pub fn start(&mut self) -> Result<(), HarnessError> {
        self.kill9()?;
        match self.launch.start()? {
            Launched::Ready(running) => {
                self.running = Some(*running);
                Ok(())
            }
            Launched::Exited { status, output } => {
                let tail: Vec<&str> = output.lines().collect();
                Err(HarnessError::NotReady {
                    reason: format!("node {} exited with {status}", self.id),
                    stderr: tail[tail.len().saturating_sub(TAIL_LINES)..].join("\n"),
                })
            }
        }
    }

    /// SIGKILL, no chance to sync.
    pub fn kill9(&mut self) -> Result<(), HarnessError> {
        if let Some(r) = &mut self.running {
            if !r.process.reaped() {
                r.process.kill9()?;
            }
        }
        Ok(())
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.running
            .as_ref()
            .filter(|r| !r.process.reaped())
            .map(|r| r.process.id())
    }

    /// Sends `signal` (`STOP`, `CONT`) to the process: a stopped node is a node cut off
    /// from everyone, which resumes later believing what it believed then.
    pub fn signal(&self, signal: &str) -> Result<(), HarnessError> {
        let Some(pid) = self.pid() else {
            return Ok(());
        };
        std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .map_err(io("running kill"))?;
        Ok(())
    }

    /// SIGTERM, and waits for the process to exit (a clean stop: it syncs and says so).
    pub fn stop(&mut self) -> Result<(), HarnessError> {
        if let Some(r) = &mut self.running {
            r.process.terminate()?;
        }
        Ok(())
    }

    /// The files in its data directory named `prefix` and an index, with their sizes, sorted
    /// by name (`raftlog-` segments, `raftsnap-` snapshots; not `raftlog-spare`).
    pub fn files(&self, prefix: &str) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = std::fs::read_dir(&self.data_dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let len = e.metadata().ok()?.len();
                let index = name.strip_prefix(prefix)?;
                (!index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()))
                    .then_some((name, len))
            })
            .collect();
        out.sort();
        out
    }

    pub fn is_up(&self) -> bool {
        self.running.as_ref().is_some_and(|r| !r.process.reaped())
    }

    /// `redis://` URL of the node.
    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// A connection with 5 s read and write timeouts.
    pub fn connect(&self) -> redis::RedisResult<redis::Connection> {
        let con =
            redis::Client::open(self.url())?.get_connection_with_timeout(Duration::from_secs(2))?;
        con.set_read_timeout(Some(Duration::from_secs(5)))?;
        con.set_write_timeout(Some(Duration::from_secs(5)))?;
        Ok(con)
    }

    /// Its output since it started last.
    pub fn output(&self) -> String {
        self.running
            .as_ref()
            .map(|r| r.process.output())
            .unwrap_or_default()
    }

    /// ROLE's first word (`master` / `slave`), if the node answers.
    pub fn role(&self) -> Option<String> {
        let mut con = self.connect().ok()?;
        let v: redis::Value = redis::cmd("ROLE").query(&mut con).ok()?;
        match v {
            redis::Value::Array(items) => match items.first() {
                Some(redis::Value::BulkString(b)) => Some(String::from_utf8_lossy(b).into()),
                _ => None,
            },
            _ => None,
        }
    }

    /// ROLE's offset: the last raft index the node applied.
    pub fn offset(&self) -> Option<i64> {
        let mut con = self.connect().ok()?;
        let v: redis::Value = redis::cmd("ROLE").query(&mut con).ok()?;
        let redis::Value::Array(items) = v else {
            return None;
        };
        let at = match items.first() {
            Some(redis::Value::BulkString(b)) if b == b"master" => 1,
            _ => 4,
        };
        match items.get(at) {
            Some(redis::Value::Int(n)) => Some(*n),
            _ => None,
        }
    }
}

impl Drop for ClusterNode {
    fn drop(&mut self) {
        let _ = self.kill9();
    }
}

/// A cluster of real server processes; killed when dropped.
pub struct TestCluster {
    pub nodes: Vec<ClusterNode>,
    _temp: tempfile::TempDir,
}

/// A port free now on 127.0.0.1 (the listener is closed again; another process could take it
/// before the node binds it, which makes the start fail loudly rather than silently).
fn free_port() -> Result<SocketAddr, HarnessError> {
    free_port_on(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// Ports for nodes come from below Linux's ephemeral range (32768-60999): a port in that
/// range can be taken while its node is down by any outgoing connection, even by a peer
/// dialing it (a TCP self-connect, which then sits in TIME-WAIT for a minute), and the node
/// restarting on its fixed port could not bind it. The cursor is per process (one test
/// binary), starting where its process id says, so parallel tests never pick the same port.
const NODE_PORTS: std::ops::Range<u16> = 20_000..32_000;

fn free_port_on(ip: IpAddr) -> Result<SocketAddr, HarnessError> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static CURSOR: AtomicU32 = AtomicU32::new(u32::MAX);
    let span = u32::from(NODE_PORTS.end - NODE_PORTS.start);
    let _ = CURSOR.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % span,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..span {
        let offset = CURSOR.fetch_add(1, Ordering::SeqCst) % span;
        let port = NODE_PORTS.start + offset as u16;
        if let Ok(l) = TcpListener::bind((ip, port)) {
            return l.local_addr().map_err(io("reading a free port"));
        }
    }
    Err(io("finding a free port below the ephemeral range")(
        std::io::ErrorKind::AddrInUse.into(),
    ))
}

impl TestCluster {
    /// Starts `n` nodes (ids 1..=n) on empty data directories: node 1 forms the cluster.
    /// `args` go to every node (e.g. `--sync always`).
    pub fn start(n: u64, args: &[&str]) -> Result<TestCluster, HarnessError> {
        Self::start_with(n, args, false)
    }

    /// [`TestCluster::start`] with every raft link through a proxy (see the module
    /// documentation).
    pub fn start_proxied(n: u64, args: &[&str]) -> Result<TestCluster, HarnessError> {
        Self::start_with(n, args, true)
    }

    fn start_with(n: u64, args: &[&str], proxied: bool) -> Result<TestCluster, HarnessError> {
        let temp = tempfile::Builder::new()
            .prefix("moodb-cluster-")
            .tempdir()
            .map_err(io("creating the cluster's directory"))?;
        let mut addrs = Vec::new();
        let mut proxies = Vec::new();
        for id in 1..=n {
            if proxied {
                let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + id as u8));
                let listen = free_port_on(source)?;
                let proxy = Proxy::start(listen).map_err(io("starting a raft proxy"))?;
                addrs.push((free_port()?, proxy.addr()));
                proxies.push(Some((proxy, listen, source)));
            } else {
                addrs.push((free_port()?, free_port()?));
                proxies.push(None);
            }
        }
        let peers = (1..=n)
            .zip(&addrs)
            .map(|(id, (client, raft))| format!("{id}={raft}/{client}"))
            .collect::<Vec<_>>()
            .join(",");
        // 4 MiB raft log segments: each node writes its next segment's zeros ahead of need, and
        // the default 64 MiB for every node of every test would be gigabytes.
        let config = "(cluster: Some((heartbeat_ms: 50, election_timeout_min_ms: 300, \
                      election_timeout_max_ms: 600, segment_bytes: 4194304)))"
            .to_string();
        let bin = moodb_binary()?;
        let mut nodes = Vec::new();
        for ((id, (client, raft)), proxy) in (1..=n).zip(addrs).zip(proxies) {
            let data_dir = temp.path().join(format!("node{id}"));
            let mut launch = Launch::new(&bin, &data_dir);
            launch.addr = client.to_string();
            launch.config = Some(match &proxy {
                Some((_, listen, _)) => config.replace(
                    "heartbeat_ms: 50,",
                    &format!("heartbeat_ms: 50, raft_listen_addr: \"{listen}\","),
                ),
                None => config.clone(),
            });
            let (proxy, source_ip) = match proxy {
                Some((p, _, source)) => (Some(p), source),
                None => (None, IpAddr::V4(Ipv4Addr::LOCALHOST)),
            };
            launch.args = vec![
                "--node-id".into(),
                id.to_string(),
                "--peers".into(),
                peers.clone(),
                "--cluster-secret".into(),
                TEST_SECRET.into(),
            ];
            launch.args.extend(args.iter().map(|a| a.to_string()));
            nodes.push(ClusterNode {
                id,
                addr: client,
                raft_addr: raft,
                data_dir,
                proxy,
                source_ip,
                launch,
                running: None,
            });
        }
        for node in &mut nodes {
            node.start()?;
        }
        Ok(TestCluster { nodes, _temp: temp })
    }

    /// The index in `nodes` of the node whose ROLE says `master`, other than `not`, waiting
    /// up to `timeout`.
    pub fn leader(&self, not: Option<usize>, timeout: Duration) -> Option<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            for (i, node) in self.nodes.iter().enumerate() {
                if Some(i) != not && node.is_up() && node.role().as_deref() == Some("master") {
                    return Some(i);
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Proxied clusters: cuts node `i` (an index in `nodes`) off from every other node, both
    /// ways (its proxy blackholes everyone; the others' proxies its connections).
    pub fn isolate(&self, i: usize) {
        let source = self.nodes[i].source_ip;
        for (j, node) in self.nodes.iter().enumerate() {
            if let Some(p) = &node.proxy {
                if j == i {
                    p.partition();
                } else {
                    p.block(source);
                }
            }
        }
    }

    /// Proxied clusters: lifts every cut.
    pub fn heal(&self) {
        for node in &self.nodes {
            if let Some(p) = &node.proxy {
                p.heal();
            }
        }
    }

    /// Starts one more node (the next id) with `--join` and `args`: it knows every member
    /// (`--peers` lists them and itself) but forms nothing and waits to be added
    /// (`RAFT ADD-NODE`). Returns its index in `nodes`.
    pub fn add_joining(&mut self, args: &[&str]) -> Result<usize, HarnessError> {
        let id = self.nodes.iter().map(|n| n.id).max().unwrap_or(0) + 1;
        let (client, raft) = (free_port()?, free_port()?);
        let mut peers: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("{}={}/{}", n.id, n.raft_addr, n.addr))
            .collect();
        peers.push(format!("{id}={raft}/{client}"));
        let data_dir = self._temp.path().join(format!("node{id}"));
        let mut launch = Launch::new(moodb_binary()?, &data_dir);
        launch.addr = client.to_string();
        launch.config = Some(
            "(cluster: Some((heartbeat_ms: 50, election_timeout_min_ms: 300, \
             election_timeout_max_ms: 600)))"
                .to_string(),
        );
        launch.args = vec![
            "--node-id".into(),
            id.to_string(),
            "--peers".into(),
            peers.join(","),
            "--cluster-secret".into(),
            TEST_SECRET.into(),
            "--join".into(),
        ];
        launch.args.extend(args.iter().map(|a| a.to_string()));
        let mut node = ClusterNode {
            id,
            addr: client,
            raft_addr: raft,
            data_dir,
            proxy: None,
            source_ip: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            launch,
            running: None,
        };
        node.start()?;
        self.nodes.push(node);
        Ok(self.nodes.len() - 1)
    }

    /// Every node's output, for a failing test's message.
    pub fn outputs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("--- node {} ---\n{}", n.id, n.output()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Each key's last acknowledged value.
pub type Acked = Arc<Mutex<HashMap<String, u64>>>;

/// `clients` writers spread over `urls` (SETs of `w<client>:<n % keys>` to increasing values
/// until `stop`), each recording the value of each SET acknowledged; a failed write (TRYAGAIN,
/// a dropped connection) is not recorded and the writer moves on (reconnecting to the next URL).
pub fn run_writers(
    urls: Vec<String>,
    clients: usize,
    keys: u64,
    stop: Arc<AtomicBool>,
) -> (Vec<std::thread::JoinHandle<()>>, Acked) {
    let acked = Arc::new(Mutex::new(HashMap::new()));
    let threads = (0..clients)
        .map(|c| {
            let urls = urls.clone();
            let acked = Arc::clone(&acked);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut con = None;
                let mut i: u64 = 0;
                let mut attempt = c;
                while !stop.load(Ordering::SeqCst) {
                    if con.is_none() {
                        let url = &urls[attempt % urls.len()];
                        attempt += 1;
                        con = redis::Client::open(url.as_str())
                            .and_then(|cl| cl.get_connection_with_timeout(Duration::from_secs(1)))
                            .ok();
                        if let Some(c) = &con {
                            let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                        }
                        if con.is_none() {
                            std::thread::sleep(Duration::from_millis(20));
                            continue;
                        }
                    }
                    let Some(c2) = con.as_mut() else { continue };
                    i += 1;
                    let key = format!("w{c}:{}", i % keys.max(1));
                    match redis::cmd("SET").arg(&key).arg(i).query::<()>(c2) {
                        Ok(()) => {
                            acked
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .insert(key, i);
                        }
                        Err(e) if e.code() == Some("TRYAGAIN") => {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        Err(_) => con = None,
                    }
                }
            })
        })
        .collect();
    (threads, acked)
}
