//! Server start-up and shutdown: bind the listener, start the actors on one arbiter (the
//! snapshotter on a thread of its own), accept connections, and on SIGINT/SIGTERM or SHUTDOWN
//! sync the log and return.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use actix::prelude::*;

use crate::actors::session::{ClientSlot, SessionConfig};
use crate::actors::{
    Session, Shutdown, ShutdownError, Snapshotter, StoreOwner, StoreSettings, WalWriter,
};
use crate::auth::Password;
use crate::config::{Config, ConfigError, NotifyFlags};
use crate::host::ServerHost;
use crate::live::LiveConfig;
use crate::replication::cluster::{self, ClusterError};
use crate::replication::store_machine::SharedMeta;
use crate::replication::LogStore;
use moodb_core::backend::{Backend, Recovered};
use moodb_core::command::ReplyError;
use moodb_core::group_commit::GroupCommit;
use moodb_core::replicated::{RaftLog, SnapshotCodec};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source} (is another server running there? pick another with --addr)")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("server I/O failed while {context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("could not sync the log at shutdown: {0}")]
    Shutdown(#[from] ShutdownError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// Where the server's data lives: a single node's backend, or (cluster mode) the raft log.
enum Storage {
    Single {
        backend: Box<dyn Backend>,
        recovered: Recovered,
    },
    Cluster {
        log: Box<dyn RaftLog>,
        codec: Arc<dyn SnapshotCodec>,
        peers: std::net::TcpListener,
    },
}

/// A server whose listener is bound and whose state is recovered, ready to [`Server::run`].
pub struct Server {
    config: Config,
    listener: std::net::TcpListener,
    local_addr: SocketAddr,
    storage: Storage,
    /// The RON file the configuration came from (CONFIG REWRITE writes it).
    config_file: Option<PathBuf>,
}

impl Server {
    /// Checks `config` ([`Config::validate`]: limits, and no exposed address without a
    /// password) and binds `config.addr` (port 0 picks a free port). `backend` has been
    /// recovered into `recovered`.
    pub fn bind(
        config: Config,
        backend: Box<dyn Backend>,
        recovered: Recovered,
    ) -> Result<Server, ServerError> {
        config.validate()?;
        if let Some(db) = recovered.state.highest_used() {
            if usize::from(db) >= config.databases {
                return Err(ConfigError::DataBeyondDatabases {
                    db,
                    databases: config.databases,
                }
                .into());
            }
        }
        Server::listen(config, Storage::Single { backend, recovered })
    }

    /// Cluster mode (`config.cluster` is set): checks `config`, binds the client and the raft
    /// addresses. The store is filled from `log` (the raft log, opened) when the server runs;
    /// `codec` writes and reads snapshots.
    pub fn bind_cluster(
        config: Config,
        log: Box<dyn RaftLog>,
        codec: Arc<dyn SnapshotCodec>,
    ) -> Result<Server, ServerError> {
        config.validate()?;
        let Some(cluster) = &config.cluster else {
            return Err(ConfigError::Cluster("no cluster configured".into()).into());
        };
        let peers = cluster::bind_peers(cluster)?;
        Server::listen(config, Storage::Cluster { log, codec, peers })
    }

    fn listen(config: Config, storage: Storage) -> Result<Server, ServerError> {
        let bind_err = |source| ServerError::Bind {
            addr: config.addr.clone(),
            source,
        };
        let listener = std::net::TcpListener::bind(&config.addr).map_err(bind_err)?;
        listener.set_nonblocking(true).map_err(bind_err)?;
        let local_addr = listener.local_addr().map_err(bind_err)?;
        Ok(Server {
            config,
            listener,
            local_addr,
            storage,
            config_file: None,
        })
    }

    /// The server's configuration came from `path` (flags applied over it): CONFIG REWRITE
    /// writes the running configuration there. Without one, REWRITE answers Redis's error.
    pub fn with_config_file(mut self, path: Option<PathBuf>) -> Server {
        self.config_file = path;
        self
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until SIGINT or SIGTERM, then syncs the log and returns.
    pub fn run(self) -> Result<(), ServerError> {
        self.place_event_loop();
        // actix's runtime, as `System::new` builds it, but for the threads tokio starts for
        // blocking work (cluster mode's snapshot and log I/O): they are helpers, free of the
        // loop's pin.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .on_thread_start(moodb_core::cpus::enter_helper_thread)
            .build()
            .map_err(|source| ServerError::Io {
                context: "starting the event loop's runtime",
                source,
            })?;
        let system = System::with_tokio_rt(move || runtime);
        let result = system.block_on(self.serve());
        System::current().stop();
        result
    }

    /// Pins the calling thread, which is to run the event loop, as `event_loop_cpu` says; a
    /// refusal is reported and the loop runs unpinned (correct, only slower).
    fn place_event_loop(&self) {
        let allowed = match moodb_core::cpus::allowed() {
            Ok(allowed) => allowed,
            Err(err) => {
                eprintln!("moodb: event loop not pinned: cannot read the CPUs this process may use: {err}");
                return;
            }
        };
        let cluster = self.config.cluster.is_some();
        let Some(cpu) = self.config.event_loop_cpu.choose(&allowed, cluster) else {
            return;
        };
        match moodb_core::cpus::pin_event_loop(cpu) {
            Ok(()) => eprintln!(
                "moodb: event loop pinned to CPU {cpu} (helper threads free on {:?}, the snapshotter off CPU {cpu}; --event-loop-cpu off leaves placement to the scheduler)",
                moodb_core::cpus::helper_cpus().unwrap_or_default()
            ),
            Err(err) => eprintln!(
                "moodb: event loop not pinned to CPU {cpu}: {err}; it runs wherever the scheduler puts it"
            ),
        }
    }

    async fn serve(self) -> Result<(), ServerError> {
        let Server {
            config,
            listener,
            local_addr,
            storage,
            config_file,
        } = self;
        let (backend_name, recovery, values) = match &storage {
            Storage::Single { backend, recovered } => (
                backend.name().to_string(),
                recovered.report.to_string(),
                backend.value_store(),
            ),
            // Cluster mode refuses maxmemory (config.rs): no value store.
            Storage::Cluster { .. } => (
                "paper".to_string(),
                "cluster mode: the state comes from the raft log".to_string(),
                None,
            ),
        };
        let host = ServerHost::new(config_file.map(|path| (path, config.clone())));
        let settings = StoreSettings {
            sync: config.sync,
            checkpoint: config.checkpoint,
            limits: config.limits,
            databases: config.databases,
            backend: backend_name,
            data_dir: config.data_dir.clone(),
            port: local_addr.port(),
            process_id: std::process::id(),
            recovery,
            notify_keyspace_events: NotifyFlags::parse(config.notify_keyspace_events.as_bytes())
                .unwrap_or_default(),
            pubsub: config.pubsub,
            requirepass: config.requirepass.clone(),
            slowlog_log_slower_than: config.slowlog_log_slower_than,
            slowlog_max_len: config.slowlog_max_len,
            latency_monitor_threshold: config.latency_monitor_threshold,
            host: Arc::new(host),
            memory: moodb_core::store::MemorySettings {
                values,
                ..config.memory_settings()
            },
        };
        let exit = Arc::new(tokio::sync::Notify::new());
        let exit_for_owner = Arc::clone(&exit);
        let sessions = LiveConfig::new(SessionConfig {
            limits: config.limits,
            pubsub: config.pubsub,
            password: config
                .requirepass
                .as_deref()
                .map(|p| Password::new(p.as_bytes())),
        });
        let live = Arc::clone(&sessions);
        let store = match storage {
            Storage::Single { backend, recovered } => {
                let status = backend.status();
                let snapshotter = SyncArbiter::start(1, || Snapshotter);
                let sync = config.sync;
                StoreOwner::create(move |ctx| {
                    let mut owner =
                        StoreOwner::new(recovered.state, recovered.last_lsn, status, settings);
                    owner.set_exit(exit_for_owner);
                    let log = GroupCommit::new(backend);
                    // Pipelined: busy groups are written and synced on the WAL writer's sync
                    // thread while the event loop goes on (see actors/wal_writer.rs).
                    let wal = WalWriter::new(log, sync, ctx.address(), snapshotter, true).start();
                    owner.set_wal(wal);
                    owner.set_live(live);
                    owner
                })
            }
            Storage::Cluster { log, codec, peers } => {
                let Some(cluster_config) = config.cluster.clone() else {
                    return Err(ConfigError::Cluster("no cluster configured".into()).into());
                };
                let log = LogStore::new(log);
                let meta = SharedMeta::default();
                let link = crate::actors::store_owner::cluster::ClusterLink::new(
                    cluster_config.node_id,
                    cluster::nodes(&cluster_config, &local_addr.to_string()),
                    config.requirepass.clone(),
                    log.clone(),
                    meta.clone(),
                    codec.clone(),
                    config.databases,
                )
                .with_master_name(cluster_config.sentinel_master_name.clone());
                let store = StoreOwner::create(move |_| {
                    let mut owner = StoreOwner::new_cluster(settings, link);
                    owner.set_exit(exit_for_owner);
                    owner.set_live(live);
                    owner
                });
                cluster::start(&cluster_config, peers, store.clone(), log, meta, codec).await?;
                store
            }
        };
        let listener =
            tokio::net::TcpListener::from_std(listener).map_err(|source| ServerError::Io {
                context: "registering the listener",
                source,
            })?;
        let mut terminate = tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        )
        .map_err(|source| ServerError::Io {
            context: "installing the SIGTERM handler",
            source,
        })?;
        let clients = Arc::new(AtomicUsize::new(0));
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => match ClientSlot::take(&clients, sessions.get().limits.max_clients) {
                        Some(slot) => {
                            Session::start(stream, store.clone(), Arc::clone(&sessions), slot);
                        }
                        None => refuse(stream),
                    },
                    // Out of file descriptors and the like: keep serving those connected.
                    Err(err) => {
                        eprintln!("moodb: accept failed: {err}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                },
                _ = tokio::signal::ctrl_c() => break,
                _ = terminate.recv() => break,
                // SHUTDOWN (after its checkpoint, unless NOSAVE).
                _ = exit.notified() => break,
            }
        }
        eprintln!("moodb: shutting down: syncing the log");
        store.send(Shutdown).await.map_err(ShutdownError::from)??;
        eprintln!("moodb: stopped cleanly");
        Ok(())
    }
}

/// Tells a client over the `max_clients` limit so, without waiting on it, and closes.
fn refuse(stream: tokio::net::TcpStream) {
    actix::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let mut stream = stream;
        let mut reply = bytes::BytesMut::new();
        moodb_core::resp::encode(
            &ReplyError::MaxClients.into(),
            moodb_core::resp::Protocol::Resp2,
            &mut reply,
        );
        let write = stream.write_all(&reply);
        // A client that does not take even this is not worth waiting for.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), write).await;
        let _ = stream.shutdown().await;
    });
}
