//! MooDB's engine: the data model, the write records that go into the log, the `Backend` trait
//! that says where durability lives, and (in later modules) the RESP codec, the commands and
//! the actors of the server.

pub mod backend;
pub mod error;
pub mod keyspace;
pub mod record;

pub use backend::{
    AppendReport, Backend, BackendStatus, CheckpointJob, CheckpointReport, LogEntry, Recovered,
    RecoveryReport, SyncPolicy,
};
pub use error::StorageError;
pub use keyspace::{Keyspace, Value};
pub use record::{Lsn, Record};
