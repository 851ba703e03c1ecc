//! Starting a node in cluster mode: the raft configuration from [`ClusterConfig`], the raft
//! node over the log store and the state machine over the store owner, the peer listener
//! ([`serve_peers`]) and the dialing side ([`PeerNetwork`]), and forming: on the first start
//! (an empty raft log everywhere) the member with the lowest id initializes the cluster with
//! every member as a voter; the others wait for it, and a restart rejoins from its log. A
//! node started with `join` never forms: it waits for a member to add it.
//!
//! Snapshots: openraft builds one every `snapshot_logs` applied entries
//! (`SnapshotPolicy::LogsSinceLast`), the state machine writes it as a `raftsnap-<index>`
//! file, and openraft then purges the raft log up to `snapshot_keep_logs` entries below it.
//! A restart loads the newest snapshot file into the store before raft starts, so openraft
//! re-applies only the log after it.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::Addr;
use moodb_core::replicated::SnapshotCodec;
use openraft::{BasicNode, Config, Raft, SnapshotPolicy};

use super::peer_server::serve_peers;
use super::peer_wire::{ClusterSecret, PeerOptions};
use super::store_machine::{SharedMeta, StoreMachine};
use super::types::{NodeId, TypeConfig};
use super::{LogStore, PeerNetwork};
use crate::actors::store_owner::cluster::{AttachRaft, NodeAddrs};
use crate::actors::StoreOwner;
use crate::config::ClusterConfig;

/// Why a cluster node could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot listen for raft peers on {addr}: {source} (pick another with --raft-addr)")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid raft settings: {0}")]
    Raft(String),
    #[error("the cluster secret is not usable: {0}")]
    Secret(String),
}

/// Every member's addresses, this node's client address being `client` (where it listens).
pub fn nodes(config: &ClusterConfig, client: &str) -> BTreeMap<NodeId, NodeAddrs> {
    config
        .peers
        .iter()
        .map(|(id, (raft, c))| {
            let client = if *id == config.node_id {
                client.to_string()
            } else {
                c.clone()
            };
            (
                *id,
                NodeAddrs {
                    raft: raft.clone(),
                    client,
                },
            )
        })
        .collect()
}

/// Where this node binds for its peers: `raft_listen_addr`, else `raft_addr`.
fn listen_addr(config: &ClusterConfig) -> &str {
    if config.raft_listen_addr.is_empty() {
        &config.raft_addr
    } else {
        &config.raft_listen_addr
    }
}

/// The source address of outgoing peer connections: the listen address when it is a
/// loopback one (so nodes sharing a host on loopback are told apart by their source, as a
/// proxy in front of a peer needs to cut one of them off), else the system's choice.
fn source_ip(config: &ClusterConfig) -> Option<std::net::IpAddr> {
    listen_addr(config)
        .parse::<std::net::SocketAddr>()
        .ok()
        .map(|a| a.ip())
        .filter(|ip| ip.is_loopback())
}

/// The raft listener, bound before anything else so that a taken port is reported at once.
pub fn bind_peers(config: &ClusterConfig) -> Result<std::net::TcpListener, ClusterError> {
    let err = |source| ClusterError::Bind {
        addr: listen_addr(config).to_string(),
        source,
    };
    let listener = std::net::TcpListener::bind(listen_addr(config)).map_err(err)?;
    listener.set_nonblocking(true).map_err(err)?;
    Ok(listener)
}

/// Starts the raft node of `owner` (a store owner made with `StoreOwner::new_cluster` over
/// the same `log` and `meta`), serves its peers on `listener`, and forms the cluster on a
/// first start. Runs on the actix system's runtime.
pub async fn start(
    config: &ClusterConfig,
    listener: std::net::TcpListener,
    owner: Addr<StoreOwner>,
    log: LogStore,
    meta: SharedMeta,
    codec: Arc<dyn SnapshotCodec>,
) -> Result<Raft<TypeConfig>, ClusterError> {
    let raft_config = Config {
        cluster_name: "moodb".into(),
        heartbeat_interval: config.heartbeat_ms,
        election_timeout_min: config.election_timeout_min_ms,
        election_timeout_max: config.election_timeout_max_ms,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_logs),
        max_in_snapshot_log_to_keep: config.snapshot_keep_logs,
        purge_batch_size: 1,
        // Installing a snapshot decodes it and writes its file with an fsync.
        install_snapshot_timeout: 5_000,
        ..Config::default()
    }
    .validate()
    .map_err(|e| ClusterError::Raft(e.to_string()))?;
    let secret =
        ClusterSecret::new(&config.secret).map_err(|e| ClusterError::Secret(e.to_string()))?;
    let options = PeerOptions {
        source_ip: source_ip(config),
        ..PeerOptions::default()
    };
    let network = PeerNetwork::with_options(config.node_id, secret.clone(), options);
    let machine = StoreMachine::new(owner.clone(), meta, codec, log.snapshot_files());
    match machine.load_newest().await {
        Ok(Some(id)) => eprintln!("moodb: cluster: loaded the raft snapshot as of {id}"),
        Ok(None) => {}
        Err(e) => {
            return Err(ClusterError::Raft(format!(
                "cannot load the raft snapshot: {e}"
            )))
        }
    }
    let raft = Raft::new(config.node_id, Arc::new(raft_config), network, log, machine)
        .await
        .map_err(|e| ClusterError::Raft(e.to_string()))?;
    let listener =
        tokio::net::TcpListener::from_std(listener).map_err(|source| ClusterError::Bind {
            addr: config.raft_addr.clone(),
            source,
        })?;
    actix::spawn(serve_peers(listener, raft.clone(), secret));
    owner.do_send(AttachRaft(raft.clone()));
    let lowest = config.peers.keys().next().copied();
    let initialized = raft.is_initialized().await.unwrap_or(true);
    if config.join && !initialized {
        eprintln!(
            "moodb: cluster: joining: waiting to be added (moodb cluster add-node {} {} CLIENT_ADDR)",
            config.node_id, config.raft_addr
        );
    } else if lowest == Some(config.node_id) && !initialized {
        let members: BTreeMap<NodeId, BasicNode> = config
            .peers
            .iter()
            .map(|(id, (raft_addr, _))| (*id, BasicNode::new(raft_addr)))
            .collect();
        match raft.initialize(members).await {
            Ok(()) => eprintln!(
                "moodb: cluster: formed with members {:?}",
                config.peers.keys().collect::<Vec<_>>()
            ),
            Err(e) => eprintln!("moodb: cluster: not formed here: {e}"),
        }
    } else if !initialized {
        eprintln!(
            "moodb: cluster: waiting for node {} to form the cluster",
            lowest.unwrap_or_default()
        );
    }
    Ok(raft)
}
