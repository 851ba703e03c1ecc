//! The `Backend` trait: where durability lives. The server, the bench tool and the crash test
//! all go through it, so the paper engine and sled are interchangeable.
//!
//! Life of a backend: it is opened by its own constructor, [`Backend::recover`] is called once
//! and gives the state as of the last durable record, then [`Backend::append`] is called for
//! every group of new records (in LSN order), and from time to time a checkpoint is taken with
//! [`Backend::begin_checkpoint`] whose job may run on another thread while appends go on.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::error::StorageError;
use crate::keyspace::Databases;
use crate::record::{Lsn, Record};

/// When appended records reach stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Every `append` syncs before it returns: an acknowledged write survives a power cut.
    /// All records of one `append` share one sync (group commit).
    Always,
    /// Sync at most this often: a crash may lose the writes of the last interval.
    Every(Duration),
    /// Never sync explicitly (the OS writes back when it likes); checkpoints still sync.
    Never,
}

impl fmt::Display for SyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncPolicy::Always => write!(f, "always"),
            SyncPolicy::Every(d) => write!(f, "every:{}", d.as_millis()),
            SyncPolicy::Never => write!(f, "never"),
        }
    }
}

impl FromStr for SyncPolicy {
    type Err = String;

    /// Parses `always`, `never`, `every:<ms>` (or `every` alone, meaning every 1000 ms).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "always" => Ok(SyncPolicy::Always),
            "never" => Ok(SyncPolicy::Never),
            "every" => Ok(SyncPolicy::Every(Duration::from_millis(1000))),
            _ => match s.strip_prefix("every:").map(str::parse::<u64>) {
                Some(Ok(ms)) if ms > 0 => Ok(SyncPolicy::Every(Duration::from_millis(ms))),
                _ => Err(format!(
                    "invalid sync policy {s:?}: expected always, never or every:<milliseconds>"
                )),
            },
        }
    }
}

/// One record to append, with the LSN the store owner gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub lsn: Lsn,
    pub record: Record,
}

/// The state recovered at start-up and how it was obtained.
#[derive(Debug)]
pub struct Recovered {
    /// Every database.
    pub state: Databases,
    /// The LSN of the last record in `state`; new records continue from `last_lsn + 1`.
    pub last_lsn: Lsn,
    pub report: RecoveryReport,
}

/// What recovery did, for the start-up log line, INFO and the crash test.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The checkpoint loaded, if any, and the LSN it covers.
    pub checkpoint: Option<(PathBuf, Lsn)>,
    pub checkpoint_keys: u64,
    pub records_replayed: u64,
    pub log_bytes_replayed: u64,
    /// Bytes of a torn tail cut off the end of the log (0 if the log ended cleanly).
    pub bytes_truncated: u64,
    /// Set when salvage discarded damaged records that had valid records after them.
    pub salvaged: Option<String>,
    pub elapsed: Duration,
}

impl fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.checkpoint {
            Some((path, lsn)) => write!(
                f,
                "loaded checkpoint {} (lsn {lsn}, {} keys)",
                path.display(),
                self.checkpoint_keys
            )?,
            None => write!(f, "no checkpoint")?,
        }
        write!(
            f,
            ", replayed {} records ({} bytes of log), truncated {} bytes of torn tail",
            self.records_replayed, self.log_bytes_replayed, self.bytes_truncated
        )?;
        if let Some(salvaged) = &self.salvaged {
            write!(f, ", SALVAGED: {salvaged}")?;
        }
        write!(f, " in {:.3}s", self.elapsed.as_secs_f64())
    }
}

/// What `append` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendReport {
    /// Bytes written to the log.
    pub bytes: u64,
    /// Whether this call synced (always under `SyncPolicy::Always`).
    pub synced: bool,
}

/// Figures a backend keeps about itself, for INFO and the tools.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackendStatus {
    pub name: &'static str,
    /// Bytes in the current log (for the paper engine; sled reports its size on disk).
    pub log_bytes: u64,
    pub last_checkpoint_lsn: Option<Lsn>,
    /// Unix time in milliseconds of the last completed checkpoint.
    pub last_checkpoint_unix_ms: Option<u64>,
    pub fsyncs: u64,
    pub fsync_total: Duration,
    pub fsync_max: Duration,
    /// The LSN up to which appends are known to be on stable storage.
    pub durable_lsn: Lsn,
}

/// What a finished checkpoint wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointReport {
    pub lsn: Lsn,
    pub keys: u64,
    pub bytes: u64,
    pub path: Option<PathBuf>,
    pub elapsed: Duration,
}

/// A checkpoint in progress: writes the state as of the LSN given to `begin_checkpoint` and
/// makes it current. Runs on any thread; the backend goes on appending meanwhile.
pub trait CheckpointJob: Send {
    /// Writes `state` (which must be the state as of the job's LSN), makes it the current
    /// checkpoint atomically, and deletes the files it supersedes. It takes the snapshot by
    /// value so as to release it part by part as it writes ([`Databases::into_parts`]); a
    /// caller that needs the state afterwards passes a clone (O(1)).
    fn write(self: Box<Self>, state: Databases) -> Result<CheckpointReport, StorageError>;
}

/// A durable home for the key space. Object-safe: the server holds a `Box<dyn Backend>`.
pub trait Backend: Send {
    /// Short name: `paper`, `sled`.
    fn name(&self) -> &'static str;

    /// Loads the last durable state. Call once, before any append.
    fn recover(&mut self) -> Result<Recovered, StorageError>;

    /// Appends `entries` (LSNs increasing, continuing from the last one) and makes them durable
    /// as the sync policy says: under `Always`, when this returns `Ok` every entry is on stable
    /// storage, and one call costs one sync however many entries it holds (group commit). An
    /// `Err` means none of the entries may be acknowledged, and the backend refuses further
    /// appends ([`StorageError::Poisoned`]).
    fn append(&mut self, entries: &[LogEntry]) -> Result<AppendReport, StorageError>;

    /// Makes everything appended so far durable, whatever the policy (used by the `every`
    /// timer and at shutdown).
    fn sync(&mut self) -> Result<(), StorageError>;

    /// Starts a checkpoint as of `lsn`, the LSN of the last appended entry. Records appended
    /// after this call are not covered by it. Returns `None` when the backend has no use for
    /// checkpoints (sled compacts by itself).
    fn begin_checkpoint(
        &mut self,
        lsn: Lsn,
    ) -> Result<Option<Box<dyn CheckpointJob>>, StorageError>;

    /// Called with the outcome of a checkpoint job, so the backend can update its status.
    fn checkpoint_finished(&mut self, report: &CheckpointReport);

    /// Figures for INFO and the tools.
    fn status(&self) -> BackendStatus;

    /// From now on, makes appends durable as `policy` says (CONFIG SET appendfsync). What was
    /// appended before is synced by the next sync, which covers the whole log.
    fn set_sync_policy(&mut self, policy: SyncPolicy);

    /// Where values past `maxmemory` go (issue 15), if this backend has value segments. Call
    /// after [`Backend::recover`]; the store shares it with the backend's checkpoint jobs.
    fn value_store(&self) -> Option<crate::value_store::SharedValueStore> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_policy_parses_and_prints() {
        for s in ["always", "never", "every:250"] {
            let p: SyncPolicy = s.parse().expect("valid policy");
            assert_eq!(p.to_string(), s);
        }
        assert_eq!(
            "every".parse(),
            Ok(SyncPolicy::Every(Duration::from_millis(1000)))
        );
        assert!("every:0".parse::<SyncPolicy>().is_err());
        assert!("sometimes".parse::<SyncPolicy>().is_err());
    }
}
