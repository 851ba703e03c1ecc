//! MooDB's server: the actors around the core's store (client sessions, the store owner, the
//! WAL writer, the snapshotter), the session codec, configuration, authentication and the
//! listener with its start-up and shutdown.

pub mod actors;
pub mod auth;
pub mod codec;
pub mod config;
pub mod host;
pub mod live;
pub mod replication;
pub mod server;
