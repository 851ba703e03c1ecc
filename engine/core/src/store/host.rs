//! What the store asks of the process it runs in: a monotonic clock (to time each command for
//! SLOWLOG, LATENCY and INFO commandstats), the process's resource figures (INFO memory and
//! cpu) and the configuration file (CONFIG REWRITE). The store itself reads no clock and does
//! no I/O: the server hands it a [`Host`] that does, tests and the bench a [`FakeHost`].

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::StoreSettings;

/// The process's figures, as INFO reports them (`None`: not known on this platform).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    /// Resident set size in bytes (`/proc/self/statm` on Linux).
    pub rss_bytes: Option<u64>,
    /// CPU time in microseconds (`getrusage`): the process's system and user time, and its
    /// children's.
    pub cpu_sys_us: u64,
    pub cpu_user_us: u64,
    pub cpu_sys_children_us: u64,
    pub cpu_user_children_us: u64,
}

/// The process around the store; see the module documentation.
pub trait Host: Send + Sync + Debug {
    /// Nanoseconds on a monotonic clock (any origin).
    fn monotonic_ns(&self) -> u64;
    /// The process's resource figures now.
    fn resources(&self) -> Resources;
    /// Writes `settings` into the configuration file the server started with; the error text
    /// is the reply's (Redis's for a server without a file:
    /// `The server is running without a config file`).
    fn rewrite_config(&self, settings: &StoreSettings) -> Result<(), String>;
}

/// A shared [`Host`].
pub type SharedHost = Arc<dyn Host>;

/// A deterministic host for tests and the in-process bench: its clock advances by `step_ns` at
/// every reading (so each command appears to take `step_ns`), its figures are fixed, and it has
/// no configuration file.
#[derive(Debug, Default)]
pub struct FakeHost {
    pub step_ns: u64,
    now: AtomicU64,
    pub resources: Resources,
}

impl FakeHost {
    /// A host whose clock advances `step_ns` per reading.
    pub fn stepping(step_ns: u64) -> SharedHost {
        Arc::new(FakeHost {
            step_ns,
            ..FakeHost::default()
        })
    }
}

impl Host for FakeHost {
    fn monotonic_ns(&self) -> u64 {
        self.now.fetch_add(self.step_ns, Ordering::Relaxed) + self.step_ns
    }

    fn resources(&self) -> Resources {
        self.resources
    }

    fn rewrite_config(&self, _: &StoreSettings) -> Result<(), String> {
        Err("The server is running without a config file".into())
    }
}
