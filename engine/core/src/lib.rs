//! MooDB's core: the data model, the write records that go into the log, the `Backend` trait
//! that says where durability lives, the RESP values and their wire format, the commands and
//! their semantics, errors and failpoints. It has no async runtime and does no network I/O.

pub mod backend;
pub mod command;
pub mod error;
pub mod failpoint;
pub mod keyspace;
pub mod record;
pub mod resp;

pub use backend::{
    AppendReport, Backend, BackendStatus, CheckpointJob, CheckpointReport, LogEntry, Recovered,
    RecoveryReport, SyncPolicy,
};
pub use error::StorageError;
pub use keyspace::{Keyspace, Value};
pub use record::{Lsn, Record};
