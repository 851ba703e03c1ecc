//! Implementations of the engine's `Backend` trait: `paper`, the log + checkpoint engine of
//! Birrell, Jones and Wobber (SOSP '87), and `sled`, for comparison. [`open`] picks one by name.

use std::path::Path;

use moodb_core::{Backend, StorageError, SyncPolicy};

pub mod paper;
pub mod sled;
pub mod sync;

/// The backends this build knows, by the name used in configuration and on the command line.
pub const BACKEND_NAMES: &[&str] = &["paper", "sled"];

/// Options common to every backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendOptions {
    pub sync: SyncPolicy,
    /// Keep the valid prefix of a log damaged in the middle instead of refusing to start.
    pub salvage: bool,
    /// Bytes per second a checkpoint is written at, at most (0: unpaced); the paper engine's.
    pub checkpoint_write_rate: u64,
}

impl Default for BackendOptions {
    fn default() -> Self {
        BackendOptions {
            sync: SyncPolicy::Always,
            salvage: false,
            checkpoint_write_rate: 0,
        }
    }
}

/// Opens the backend called `name` with its files in `dir` (created if missing). Call
/// [`Backend::recover`] on the result before appending.
pub fn open(
    name: &str,
    dir: &Path,
    options: &BackendOptions,
) -> Result<Box<dyn Backend>, StorageError> {
    match name {
        "paper" => Ok(Box::new(paper::PaperBackend::open(dir, options)?)),
        "sled" => Ok(Box::new(sled::SledBackend::open(dir, options)?)),
        other => Err(StorageError::InvalidInput(format!(
            "unknown backend {other:?}: expected one of {}",
            BACKEND_NAMES.join(", ")
        ))),
    }
}
