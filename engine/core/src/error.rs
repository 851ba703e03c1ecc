//! The storage error type shared by every backend: what went wrong, where, and what to do.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Why a backend could not do what it was asked. Every variant names its context so the
/// message alone tells an operator what happened and where. Cloneable, so the one failure can
/// travel from the backend to the store and be quoted in every refused reply.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    /// An operating-system call failed (open, write, fsync, rename, ...).
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: Arc<io::Error>,
    },

    /// A file holds bytes that are not a valid record or checkpoint, and they are not a torn
    /// tail that recovery may cut off.
    #[error(
        "{file}: corrupt at byte offset {offset}: {reason}; inspect it with `moodb wal dump` or \
         `moodb snapshot inspect`, or restart with salvage enabled to keep the valid prefix"
    )]
    Corrupt {
        file: PathBuf,
        offset: u64,
        reason: String,
    },

    /// An earlier write or fsync failed, so the backend no longer knows what is on disk and
    /// refuses further writes until the server is restarted (reads go on being served).
    #[error("storage refuses writes after an earlier failure ({0}); fix the cause and restart")]
    Poisoned(Box<StorageError>),

    /// A record or argument the backend cannot store (for example one larger than its limit).
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

impl StorageError {
    /// Wraps an I/O error with a short description of what was being done.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        StorageError::Io {
            context: context.into(),
            source: Arc::new(source),
        }
    }

    /// The error to give for every write after `first` failed: `first` itself when it already
    /// says so, else `first` wrapped in [`StorageError::Poisoned`].
    pub fn poisoned(first: &StorageError) -> StorageError {
        match first {
            StorageError::Poisoned(_) => first.clone(),
            other => StorageError::Poisoned(Box::new(other.clone())),
        }
    }
}

/// Adds context to `io::Result`s: `file.sync_data().context(|| format!("fsync {path:?}"))?`.
pub trait IoContext<T> {
    fn context<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T, StorageError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn context<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T, StorageError> {
        self.map_err(|source| StorageError::io(context(), source))
    }
}
