//! Replication glue (issue 14): the openraft type configuration ([`types`]), the raft log
//! storage over the backend's [`moodb_core::replicated::RaftLog`] ([`log_store`]), the state
//! machine over the server's own store ([`store_machine`]; [`state_machine`] is the
//! stand-alone one over a key space, for the storage suite), the leader's [`proposer`], the
//! follower's [`forward`]ing and the start of a node ([`cluster`]); the links between nodes:
//! the authenticated TCP wire ([`peer_wire`]), its dialing side ([`network`]) and its
//! listening side ([`peer_server`]). Nothing here runs unless a cluster is configured; the
//! single-node server does not touch it.
//!
//! Wiring one node (what `tests/tests/it/raft_network.rs` does for each of its nodes; `moodb serve` does it in [`cluster::start`]):
//!
//! ```ignore
//! let secret = ClusterSecret::new(&config.cluster_secret)?;
//! let network = PeerNetwork::new(node_id, secret.clone()); // dials BasicNode.addr
//! let raft = Raft::new(node_id, raft_config, network, LogStore::new(log), state_machine).await?;
//! let listener = tokio::net::TcpListener::bind(raft_addr).await?;
//! let peers = tokio::spawn(serve_peers(listener, raft.clone(), secret));
//! // members: BTreeMap<NodeId, BasicNode::new(raft_addr)>; raft.initialize(members) once
//! // ... on shutdown: raft.shutdown().await?; peers.abort();
//! ```

// openraft's storage traits return its own `StorageError` (224 bytes); the helpers here return
// what those traits return rather than a boxed copy.
#![allow(clippy::result_large_err)]

pub mod cluster;
pub mod forward;
pub mod log_store;
pub mod network;
pub mod peer_server;
pub mod peer_wire;
pub mod proposer;
pub mod state_machine;
pub mod store_machine;
pub mod types;

pub use log_store::LogStore;
pub use network::{PeerClient, PeerNetwork};
pub use peer_server::{serve_peers, serve_peers_with};
pub use peer_wire::{ClusterSecret, PeerError, PeerLog, PeerOptions, Refusal, SecretError};
pub use state_machine::StateMachine;
pub use types::{Applied, TypeConfig, Write};
