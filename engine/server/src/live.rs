//! The settings that CONFIG SET changes while the server runs and that the store does not
//! apply itself: what every session reads (limits, password, Pub/Sub output limit) and the
//! listener's `maxclients`. The store owner publishes a new [`SessionConfig`] after each
//! change; sessions pick it up at their next read or output check (a generation counter makes
//! the usual case one atomic load), new connections at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use crate::actors::session::SessionConfig;

/// See the module documentation.
#[derive(Debug)]
pub struct LiveConfig {
    generation: AtomicU64,
    current: RwLock<Arc<SessionConfig>>,
}

impl LiveConfig {
    pub fn new(config: SessionConfig) -> Arc<LiveConfig> {
        Arc::new(LiveConfig {
            generation: AtomicU64::new(0),
            current: RwLock::new(Arc::new(config)),
        })
    }

    /// The configuration now.
    pub fn get(&self) -> Arc<SessionConfig> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Increases at every [`LiveConfig::set`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Replaces the configuration.
    pub fn set(&self, config: SessionConfig) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(config);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// `config` again if the configuration changed since `seen` (which is updated).
    pub fn refresh(&self, seen: &mut u64, config: &mut Arc<SessionConfig>) -> bool {
        let now = self.generation();
        if now == *seen {
            return false;
        }
        *seen = now;
        *config = self.get();
        true
    }
}
