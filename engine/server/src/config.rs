//! The server's configuration: one RON file (`moodb.ron`), every field optional with a
//! built-in default; `moodb serve` flags override it.
//!
//! ```ron
//! (
//!     addr: "127.0.0.1:6380",
//!     data_dir: "moodb-data",
//!     sync: "always",            // or "every:100", "never"
//!     backend: "paper",          // or "sled"
//!     salvage: false,
//!     databases: 16,             // SELECT 0 to databases - 1; 1 to 65536
//!     checkpoint: (log_bytes: 67108864, interval_ms: 300000, write_rate: 67108864), // bytes/s; 0: unpaced
//!     limits: (
//!         max_bulk_len: 536870912,
//!         max_args: 1048576,
//!         max_inline_len: 65536,
//!         max_query_buffer: 1073741824,
//!         max_output_buffer: 1073741824,
//!         max_clients: 10000,
//!         idle_timeout_s: 0,
//!     ),
//!     pubsub: (hard_bytes: 33554432, soft_bytes: 8388608, soft_seconds: 60),
//!     notify_keyspace_events: "",  // or "KEA", as Redis's notify-keyspace-events
//!     requirepass: None,         // or Some("a long password")
//!     slowlog_log_slower_than: 10000, // µs; -1: no slow log, 0: every command
//!     slowlog_max_len: 128,
//!     latency_monitor_threshold: 0,   // ms; 0: LATENCY records nothing
//!     insecure: false,
//!     ready_file: None,          // or Some("moodb-ready.json")
//!     maxmemory: "0",            // bytes or Redis's units ("64mb", "1gb"); "0": no limit
//!     maxmemory_policy: None,    // Some("spill") (the default with a limit), Some("noeviction")
//!     maxmemory_compact_below: 33, // percent: a value segment less live than this is compacted
//!     event_loop_cpu: "auto",    // or "off", or a CPU number: see EventLoopCpu
//!     cluster: None,             // or Some((node_id: 1, raft_addr: "127.0.0.1:7101",
//!                                //   peers: {1: ("127.0.0.1:7101", "127.0.0.1:6380"), ...},
//!                                //   secret: "a long shared secret",
//!                                //   snapshot_logs: 50000, snapshot_keep_logs: 1000,
//!                                //   segment_bytes: 67108864, join: false))
//! )
//! ```
//!
//! Safe by default: a server that listens on an address other than loopback refuses to start
//! without `requirepass` unless `insecure` is set.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use moodb_core::backend::SyncPolicy;
pub use moodb_core::command::config::PubSubLimits;
pub use moodb_core::pubsub::NotifyFlags;
use moodb_core::resp::Limits;
pub use moodb_core::store::CheckpointConfig;
use moodb_core::store::{
    MaxmemoryPolicy, MemorySettings, StoreSettings, SLOWLOG_LOG_SLOWER_THAN, SLOWLOG_MAX_LEN,
};

/// Everything `moodb serve` needs to know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port.
    pub addr: String,
    /// Directory holding the log and checkpoints (created if missing).
    pub data_dir: PathBuf,
    /// When appended records reach the disk.
    #[serde(with = "display_text")]
    pub sync: SyncPolicy,
    /// Which backend keeps the data: `paper` or `sled`.
    pub backend: String,
    /// Start even if the log is damaged in the middle, keeping its valid prefix.
    pub salvage: bool,
    /// Number of databases (SELECT 0 to `databases - 1`), 1 to [`MAX_DATABASES`].
    pub databases: usize,
    pub checkpoint: CheckpointConfig,
    pub limits: Limits,
    /// The output limit of clients with subscriptions (Redis's `client-output-buffer-limit
    /// pubsub`).
    pub pubsub: PubSubLimits,
    /// Keyspace notifications, Redis's `notify-keyspace-events` flags (`KEA`, `Ex`, ...);
    /// CONFIG SET changes them while running.
    pub notify_keyspace_events: String,
    /// Clients must `AUTH` with this password before any other command.
    pub requirepass: Option<String>,
    /// Commands taking at least this many µs go to the slow log (-1: none, 0: all; Redis's
    /// `slowlog-log-slower-than`).
    pub slowlog_log_slower_than: i64,
    /// Entries the slow log keeps (`slowlog-max-len`).
    pub slowlog_max_len: u64,
    /// Latency events of at least this many ms are recorded by LATENCY (0: off;
    /// `latency-monitor-threshold`).
    pub latency_monitor_threshold: u64,
    /// Listen on a non-loopback address even without a password.
    pub insecure: bool,
    /// Once listening, `moodb serve` writes its address, pid and recovery figures here as
    /// JSON (written to `<path>.tmp`, then renamed), for scripts and test harnesses.
    pub ready_file: Option<PathBuf>,
    /// Past this many bytes of key space (0: no limit) values spill to disk or writes get
    /// `-OOM`, as `maxmemory_policy` says; Redis's units (`64mb`) in the file.
    #[serde(with = "memory_text")]
    pub maxmemory: u64,
    /// `spill` or `noeviction`; `None`: `spill` when `maxmemory` is set.
    pub maxmemory_policy: Option<String>,
    /// A value segment whose live values fill less than this percentage of it is compacted
    /// (0: never); `maxmemory-compact-below`.
    pub maxmemory_compact_below: u8,
    /// Cluster mode (raft): `None` is a single node, which pays nothing for replication.
    pub cluster: Option<ClusterConfig>,
    /// Where the event loop runs: pinned to one CPU, or left to the scheduler.
    #[serde(with = "display_text")]
    pub event_loop_cpu: EventLoopCpu,
}

/// Where the event loop runs. Pinned, it keeps its CPU while the scheduler would otherwise
/// pack it with a local client onto one; the helper threads (sync thread, ...) stay free to
/// run on any CPU, the snapshotter on any but the loop's (`moodb_core::cpus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventLoopCpu {
    /// A single node that may use two or more CPUs keeps its loop on the last of them; a
    /// node of a cluster (several often share a machine) and a one-CPU machine do not pin.
    Auto,
    /// Wherever the scheduler puts it (for a machine shared with other busy processes).
    Off,
    /// On this CPU.
    Cpu(usize),
}

impl EventLoopCpu {
    /// The CPU to pin the loop to, of `allowed` (the CPUs the process may use), if any.
    pub fn choose(self, allowed: &[usize], cluster: bool) -> Option<usize> {
        match self {
            EventLoopCpu::Off => None,
            EventLoopCpu::Cpu(cpu) => Some(cpu),
            EventLoopCpu::Auto if cluster || allowed.len() < 2 => None,
            EventLoopCpu::Auto => allowed.last().copied(),
        }
    }
}

impl std::fmt::Display for EventLoopCpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EventLoopCpu::Auto => f.write_str("auto"),
            EventLoopCpu::Off => f.write_str("off"),
            EventLoopCpu::Cpu(cpu) => write!(f, "{cpu}"),
        }
    }
}

impl std::str::FromStr for EventLoopCpu {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "auto" => Ok(EventLoopCpu::Auto),
            "off" => Ok(EventLoopCpu::Off),
            n => n
                .parse()
                .map(EventLoopCpu::Cpu)
                .map_err(|_| format!("event loop CPU {n:?} is not auto, off or a CPU number")),
        }
    }
}

/// A node of a raft cluster: who it is, where its peers reach it, every member's addresses
/// and the secret the peers prove to each other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// This node's id, a key of `peers`.
    pub node_id: u64,
    /// Where this node listens for its peers (loopback by default, as `addr`).
    pub raft_addr: String,
    /// Every member: id → (raft address, client address). The client address is where a
    /// follower forwards requests to when that node leads, and what ROLE shows.
    pub peers: BTreeMap<u64, (String, String)>,
    /// The secret every member holds (required).
    pub secret: String,
    /// Raft timing, ms: the leader's heartbeat, and the range an election timeout is drawn from.
    pub heartbeat_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// The master name SENTINEL answers for (Sentinel-aware clients ask for it by name).
    pub sentinel_master_name: String,
    /// Where this node binds for its peers when that is not the address they reach it at
    /// (`raft_addr`, its entry in `peers`): behind a proxy or a NAT. Empty: `raft_addr`. A
    /// loopback address here is also the source of this node's outgoing peer connections.
    pub raft_listen_addr: String,
    /// A raft snapshot (a checkpoint file) is built once this many entries were applied since
    /// the last one; the raft log before it is then purged.
    pub snapshot_logs: u64,
    /// Entries kept in the raft log below the last snapshot (a follower slightly behind
    /// catches up from the log rather than from a snapshot).
    pub snapshot_keep_logs: u64,
    /// A raft log segment is closed, and can be purged, once it holds this many bytes.
    pub segment_bytes: u64,
    /// This node joins a running cluster (`moodb cluster add-node` adds it): it never forms
    /// a cluster of its own and waits to be added.
    pub join: bool,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            node_id: 1,
            raft_addr: "127.0.0.1:7101".into(),
            peers: BTreeMap::new(),
            secret: String::new(),
            heartbeat_ms: 100,
            election_timeout_min_ms: 400,
            election_timeout_max_ms: 800,
            sentinel_master_name: "mymaster".into(),
            raft_listen_addr: String::new(),
            snapshot_logs: 50_000,
            snapshot_keep_logs: 1_000,
            segment_bytes: 64 << 20,
            join: false,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: "127.0.0.1:6380".into(),
            data_dir: PathBuf::from("moodb-data"),
            sync: SyncPolicy::Always,
            backend: "paper".into(),
            salvage: false,
            databases: 16,
            checkpoint: CheckpointConfig::default(),
            limits: Limits::default(),
            pubsub: PubSubLimits::default(),
            notify_keyspace_events: String::new(),
            requirepass: None,
            slowlog_log_slower_than: SLOWLOG_LOG_SLOWER_THAN,
            slowlog_max_len: SLOWLOG_MAX_LEN,
            latency_monitor_threshold: 0,
            insecure: false,
            ready_file: None,
            maxmemory: 0,
            maxmemory_policy: None,
            maxmemory_compact_below: moodb_core::store::COMPACT_BELOW_PERCENT,
            cluster: None,
            event_loop_cpu: EventLoopCpu::Auto,
        }
    }
}

/// The configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("configuration file {path} is not valid: {message} (every field is optional; see README.md, section Configuration)")]
    Parse { path: PathBuf, message: String },
    #[error(
        "refusing to listen on {addr} without a password: anyone who can reach it could read \
         and change every key. Set a password (--requirepass or `requirepass` in the \
         configuration), listen on 127.0.0.1, or pass --insecure if the network is trusted"
    )]
    Exposed { addr: String },
    #[error("cannot resolve the listen address {addr}: {source}")]
    Resolve {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid limits: {0}")]
    Limits(String),
    #[error("{0}")]
    Memory(String),
    #[error("databases is {0}; it must be 1 to {MAX_DATABASES}")]
    Databases(usize),
    #[error(
        "the data directory holds keys in database {db} but `databases` is {databases}: \
         raise it (configuration or --databases) to at least {}",
        *db as usize + 1
    )]
    DataBeyondDatabases { db: u16, databases: usize },
    #[error("invalid cluster configuration: {0} (see README.md, section Cluster mode)")]
    Cluster(String),
}

/// The most databases a server may have: records name a database with a u16.
pub const MAX_DATABASES: usize = 1 << 16;

impl Config {
    /// Reads a RON configuration file; fields it does not set keep their defaults.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    /// Checks what the types cannot: the limits fit together, and a server reachable from
    /// other machines has a password (unless `insecure`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=MAX_DATABASES).contains(&self.databases) {
            return Err(ConfigError::Databases(self.databases));
        }
        let l = &self.limits;
        if l.max_query_buffer <= l.max_bulk_len {
            return Err(ConfigError::Limits(format!(
                "max_query_buffer ({}) must be larger than max_bulk_len ({}), or no request \
                 with the largest bulk string could ever arrive",
                l.max_query_buffer, l.max_bulk_len
            )));
        }
        if l.max_args == 0 || l.max_clients == 0 || l.max_inline_len < 16 {
            return Err(ConfigError::Limits(
                "max_args and max_clients must be at least 1, max_inline_len at least 16".into(),
            ));
        }
        if NotifyFlags::parse(self.notify_keyspace_events.as_bytes()).is_none() {
            return Err(ConfigError::Limits(format!(
                "notify_keyspace_events {:?} has a character that is not an event class; use \
                 'Ag$lshzxeKEtmdn'",
                self.notify_keyspace_events
            )));
        }
        self.check_memory()?;
        if self.backend != "paper" {
            // Only the paper backend has value segments to spill to.
            self.memory_settings()
                .check(&self.backend)
                .map_err(ConfigError::Memory)?;
        }
        if self.requirepass.as_deref().is_some_and(str::is_empty) {
            return Err(ConfigError::Limits(
                "requirepass is empty; leave it out for no password".into(),
            ));
        }
        if self.requirepass.is_none() && !self.insecure && !self.loopback_only()? {
            return Err(ConfigError::Exposed {
                addr: self.addr.clone(),
            });
        }
        if let Some(c) = &self.cluster {
            self.validate_cluster(c)?;
        }
        Ok(())
    }

    /// Cluster mode: the paper backend, a secret, this node among the members at the raft
    /// address it listens on, sane timings.
    fn validate_cluster(&self, c: &ClusterConfig) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Cluster(m));
        if self.backend != "paper" {
            return bad(format!(
                "cluster mode needs the paper backend (its log is the raft log); this \
                 configuration has backend {:?}",
                self.backend
            ));
        }
        if self.maxmemory > 0 {
            return bad(
                "maxmemory is not available in cluster mode yet (a raft snapshot would carry \
                 pointers into this node's value segments); leave maxmemory at 0"
                    .into(),
            );
        }
        if c.secret.is_empty() {
            return bad(
                "a cluster needs a secret (--cluster-secret or `secret`) shared by \
                        every member, so that no one else can join its raft traffic"
                    .into(),
            );
        }
        let Some((raft, _)) = c.peers.get(&c.node_id) else {
            return bad(format!(
                "this node's id {} is not among the peers {:?}",
                c.node_id,
                c.peers.keys().collect::<Vec<_>>()
            ));
        };
        if *raft != c.raft_addr {
            return bad(format!(
                "this node's raft address is {} but the peers list says {raft}",
                c.raft_addr
            ));
        }
        if c.heartbeat_ms == 0 || c.election_timeout_min_ms <= c.heartbeat_ms {
            return bad("the election timeout must be longer than the heartbeat".into());
        }
        if c.election_timeout_max_ms <= c.election_timeout_min_ms {
            return bad("election_timeout_max_ms must be above election_timeout_min_ms".into());
        }
        if c.snapshot_logs == 0 {
            return bad("snapshot_logs must be at least 1".into());
        }
        if c.segment_bytes < 4096 {
            return bad("segment_bytes must be at least 4096".into());
        }
        Ok(())
    }

    /// Whether every address `addr` resolves to is a loopback address.
    fn loopback_only(&self) -> Result<bool, ConfigError> {
        use std::net::ToSocketAddrs;
        let addrs = self
            .addr
            .to_socket_addrs()
            .map_err(|source| ConfigError::Resolve {
                addr: self.addr.clone(),
                source,
            })?;
        let mut any = false;
        for a in addrs {
            any = true;
            if !a.ip().is_loopback() {
                return Ok(false);
            }
        }
        Ok(any)
    }

    /// `maxmemory` and its policy for the store (no value store yet: the server adds the
    /// backend's; sled has none, so `spill` with a limit is refused there).
    pub fn memory_settings(&self) -> MemorySettings {
        MemorySettings {
            maxmemory: self.maxmemory,
            policy: self
                .maxmemory_policy
                .as_deref()
                .and_then(MaxmemoryPolicy::parse),
            compact_below_percent: self.maxmemory_compact_below,
            values: None,
        }
    }

    /// `maxmemory_policy` names a policy.
    fn check_memory(&self) -> Result<(), ConfigError> {
        if self.maxmemory_compact_below > 100 {
            return Err(ConfigError::Memory(format!(
                "maxmemory_compact_below {} is not a percentage (0 to 100)",
                self.maxmemory_compact_below
            )));
        }
        if let Some(p) = &self.maxmemory_policy {
            if MaxmemoryPolicy::parse(p).is_none() {
                return Err(ConfigError::Memory(format!(
                    "maxmemory_policy {p:?} is not noeviction or spill"
                )));
            }
        }
        Ok(())
    }

    /// Parses RON text.
    pub fn parse(text: &str) -> Result<Config, String> {
        ron::from_str(text).map_err(|e| e.to_string())
    }

    /// This configuration with what CONFIG SET may have changed taken from the store's
    /// `settings` (for CONFIG REWRITE); the rest (address, data directory, ...) stays.
    pub fn with_settings(&self, s: &StoreSettings) -> Config {
        Config {
            sync: s.sync,
            checkpoint: s.checkpoint,
            limits: s.limits,
            pubsub: s.pubsub,
            notify_keyspace_events: s.notify_keyspace_events.to_string(),
            requirepass: s.requirepass.clone(),
            slowlog_log_slower_than: s.slowlog_log_slower_than,
            slowlog_max_len: s.slowlog_max_len,
            latency_monitor_threshold: s.latency_monitor_threshold,
            maxmemory: s.memory.maxmemory,
            maxmemory_policy: s.memory.policy.map(|p| p.name().to_string()),
            maxmemory_compact_below: s.memory.compact_below_percent,
            ..self.clone()
        }
    }

    /// The configuration as RON text that [`Config::parse`] reads back.
    pub fn to_ron(&self) -> Result<String, String> {
        let pretty = ron::ser::PrettyConfig::new().struct_names(false);
        ron::ser::to_string_pretty(self, pretty).map_err(|e| e.to_string())
    }
}

/// `maxmemory` as text in Redis's units (`"64mb"`) or a plain number of bytes.
mod memory_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(n: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&n.to_string())
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        Number(u64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        match Text::deserialize(d)? {
            Text::Number(n) => Ok(n),
            Text::Text(t) => moodb_core::command::config::memtoull(t.as_bytes()).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "maxmemory {t:?} is not a memory value (bytes, or b, k, kb, m, mb, g, gb)"
                ))
            }),
        }
    }
}

/// A field written as its `Display` text and read with `FromStr`.
mod display_text {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<T: Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn empty_file_gives_the_defaults() {
        assert_eq!(Config::parse("()").unwrap(), Config::default());
        let d = Config::default();
        assert_eq!(d.addr, "127.0.0.1:6380");
        assert_eq!(d.sync, SyncPolicy::Always);
    }

    #[test]
    fn the_event_loop_cpu_is_auto_off_or_a_number() {
        assert_eq!(Config::default().event_loop_cpu, EventLoopCpu::Auto);
        for (text, want) in [
            ("auto", EventLoopCpu::Auto),
            ("off", EventLoopCpu::Off),
            ("3", EventLoopCpu::Cpu(3)),
        ] {
            let c = Config::parse(&format!("(event_loop_cpu: {text:?})")).unwrap();
            assert_eq!(c.event_loop_cpu, want);
            assert_eq!(Config::parse(&c.to_ron().unwrap()).unwrap(), c);
        }
        let err = Config::parse(r#"(event_loop_cpu: "fast")"#).unwrap_err();
        assert!(
            err.to_string().contains("not auto, off or a CPU number"),
            "{err}"
        );
        // auto: the last CPU of two or more, not on one CPU, not in a cluster.
        assert_eq!(EventLoopCpu::Auto.choose(&[0, 1, 2], false), Some(2));
        assert_eq!(EventLoopCpu::Auto.choose(&[0], false), None);
        assert_eq!(EventLoopCpu::Auto.choose(&[0, 1], true), None);
        assert_eq!(EventLoopCpu::Off.choose(&[0, 1], false), None);
        assert_eq!(EventLoopCpu::Cpu(0).choose(&[0, 1], true), Some(0));
    }

    #[test]
    fn fields_override_defaults() {
        let c = Config::parse(
            r#"(sync: "every:50", checkpoint: (log_bytes: 10, write_rate: 0), limits: (max_args: 5))"#,
        )
        .unwrap();
        assert_eq!(c.sync, SyncPolicy::Every(Duration::from_millis(50)));
        assert_eq!(c.checkpoint.log_bytes, 10);
        assert_eq!(c.checkpoint.write_rate, 0);
        assert_eq!(Config::default().checkpoint.write_rate, 64 << 20);
        assert_eq!(
            c.checkpoint.interval_ms,
            CheckpointConfig::default().interval_ms
        );
        assert_eq!(c.limits.max_args, 5);
        assert_eq!(c.limits.max_bulk_len, Limits::default().max_bulk_len);
    }

    #[test]
    fn maxmemory_takes_redis_units_and_survives_a_rewrite() {
        let c =
            Config::parse(r#"(maxmemory: "64mb", maxmemory_policy: Some("noeviction"))"#).unwrap();
        assert_eq!(c.maxmemory, 64 << 20);
        assert_eq!(Config::parse("(maxmemory: 1000)").unwrap().maxmemory, 1000);
        assert!(Config::parse(r#"(maxmemory: "64xb")"#)
            .unwrap_err()
            .contains("not a memory value"));
        assert_eq!(Config::parse(&c.to_ron().unwrap()).unwrap(), c);
        let bad = Config {
            maxmemory_policy: Some("allkeys-lru".into()),
            ..Config::default()
        };
        assert!(bad.validate().is_err());
        let sled = Config {
            backend: "sled".into(),
            maxmemory: 1 << 20,
            ..Config::default()
        };
        let err = sled.validate().unwrap_err().to_string();
        assert!(err.contains("sled backend"), "{err}");
        Config::default().validate().unwrap();
    }

    #[test]
    fn mistakes_are_reported() {
        assert!(Config::parse(r#"(sync: "sometimes")"#)
            .unwrap_err()
            .contains("sometimes"));
        assert!(Config::parse("(adress: \"x\")").is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("moodb.ron");
        std::fs::write(&path, "(backend: \"sled\")").unwrap();
        assert_eq!(Config::load(&path).unwrap().backend, "sled");
        let err = Config::load(&dir.path().join("missing.ron")).unwrap_err();
        assert!(err.to_string().contains("missing.ron"));
    }

    #[test]
    fn exposed_addresses_need_a_password_or_insecure() {
        let mut c = Config::default();
        c.validate().unwrap();
        c.addr = "localhost:0".into();
        c.validate().unwrap();
        c.addr = "0.0.0.0:6380".into();
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.contains("refusing to listen on 0.0.0.0:6380 without a password"),
            "{err}"
        );
        assert!(err.contains("--insecure"), "{err}");
        c.insecure = true;
        c.validate().unwrap();
        c.insecure = false;
        c.requirepass = Some("pw".into());
        c.validate().unwrap();
        c.requirepass = Some(String::new());
        assert!(c.validate().is_err());
    }

    #[test]
    fn databases_is_bounded() {
        assert_eq!(Config::default().databases, 16);
        let c = Config::parse("(databases: 0)").unwrap();
        assert!(matches!(c.validate(), Err(ConfigError::Databases(0))));
        let c = Config::parse("(databases: 65537)").unwrap();
        assert!(c.validate().is_err());
        assert!(Config::parse("(databases: 65536)")
            .unwrap()
            .validate()
            .is_ok());
    }

    #[test]
    fn limits_that_cannot_work_are_refused() {
        let mut c = Config::default();
        c.limits.max_query_buffer = c.limits.max_bulk_len;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("max_query_buffer"));
        let mut c = Config::default();
        c.limits.max_clients = 0;
        assert!(c.validate().is_err());
    }

    #[test]
    fn notify_keyspace_events_are_checked() {
        let c = Config::parse("(notify_keyspace_events: \"KEA\")").unwrap();
        c.validate().unwrap();
        let c = Config::parse("(notify_keyspace_events: \"KEQ\")").unwrap();
        assert!(c.validate().is_err());
    }

    #[test]
    fn to_ron_reads_back() {
        let c = Config {
            requirepass: Some("pw \"quoted\"".into()),
            sync: SyncPolicy::Every(Duration::from_millis(250)),
            slowlog_log_slower_than: -1,
            ..Config::default()
        };
        let text = c.to_ron().unwrap();
        assert_eq!(Config::parse(&text).unwrap(), c, "{text}");
    }

    fn cluster(backend: &str, secret: &str, node: u64) -> Config {
        Config::parse(&format!(
            r#"(backend: "{backend}", cluster: Some((node_id: {node}, raft_addr: "127.0.0.1:7101",
                peers: {{1: ("127.0.0.1:7101", "127.0.0.1:6380"), 2: ("127.0.0.1:7102", "127.0.0.1:6381")}},
                secret: "{secret}")))"#
        ))
        .unwrap()
    }

    #[test]
    fn a_cluster_needs_the_paper_backend_a_secret_and_this_node_among_its_peers() {
        let c = cluster("paper", "s", 1);
        c.validate().unwrap();
        let cc = c.cluster.as_ref().unwrap();
        assert_eq!(
            cc.peers[&2],
            ("127.0.0.1:7102".into(), "127.0.0.1:6381".into())
        );
        assert_eq!(cc.heartbeat_ms, ClusterConfig::default().heartbeat_ms);
        let err = cluster("sled", "s", 1).validate().unwrap_err().to_string();
        assert!(err.contains("needs the paper backend"), "{err}");
        let err = cluster("paper", "", 1).validate().unwrap_err().to_string();
        assert!(err.contains("needs a secret"), "{err}");
        let err = cluster("paper", "s", 3).validate().unwrap_err().to_string();
        assert!(err.contains("id 3 is not among the peers"), "{err}");
        // Node 2's raft address is not the configured raft_addr.
        let err = cluster("paper", "s", 2).validate().unwrap_err().to_string();
        assert!(err.contains("the peers list says 127.0.0.1:7102"), "{err}");
        let mut c = cluster("paper", "s", 1);
        c.cluster.as_mut().unwrap().election_timeout_min_ms = 50;
        assert!(c.validate().is_err());
        let text = cluster("paper", "s", 1).to_ron().unwrap();
        assert_eq!(Config::parse(&text).unwrap(), cluster("paper", "s", 1));
    }

    #[test]
    fn the_documented_example_parses() {
        let doc = include_str!("config.rs");
        let start = doc.find("//! (\n").unwrap();
        let end = doc[start..].find("//! )\n").unwrap() + start + 6;
        let example: String = doc[start..end]
            .lines()
            .map(|l| l.trim_start_matches("//!"))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(Config::parse(&example).unwrap(), Config::default());
    }
}
