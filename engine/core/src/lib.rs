//! MooDB's core: the data model, the write records that go into the log, the `Backend` trait
//! that says where durability lives, the RESP values and their wire format, the commands and
//! their semantics, the [`Store`] state machine and the group-commit path, errors and
//! failpoints. It has no async runtime and does no network I/O.

pub mod backend;
pub mod command;
pub mod cpus;
pub mod error;
pub mod failpoint;
pub mod fast_map;
pub mod group_commit;
pub mod keyspace;
pub mod pubsub;
pub mod record;
pub mod replicated;
pub mod repr;
pub mod resp;
pub mod store;
pub mod value_store;

pub use backend::{
    AppendReport, Backend, BackendStatus, CheckpointJob, CheckpointReport, LogEntry, Recovered,
    RecoveryReport, SyncPolicy,
};
pub use error::StorageError;
pub use group_commit::GroupCommit;
pub use keyspace::{Databases, Keyspace, KeyspacePart, PreparedEntry, Value, ValueRef};
pub use record::{Lsn, Record};
pub use store::{Release, Store, StoreSettings};
