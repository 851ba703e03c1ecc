//! MooDB's engine: the data model, the write records that go into the log, the `Backend` trait
//! that says where durability lives, the RESP codec, the commands, the server's actors, its
//! configuration and its start-up.

pub mod actors;
pub mod auth;
pub mod backend;
pub mod command;
pub mod config;
pub mod error;
pub mod failpoint;
pub mod keyspace;
pub mod record;
pub mod resp;
pub mod server;

pub use backend::{
    AppendReport, Backend, BackendStatus, CheckpointJob, CheckpointReport, LogEntry, Recovered,
    RecoveryReport, SyncPolicy,
};
pub use error::StorageError;
pub use keyspace::{Keyspace, Value};
pub use record::{Lsn, Record};
