//! The synchronization primitives of the state this crate shares between threads, behind one
//! name so the loom models can swap them: `loom::sync` under `cfg(moodb_loom)`, `std::sync`
//! otherwise (as tokio's `src/loom/mod.rs` does). The cfg is `moodb_loom`, not `loom`: under
//! `--cfg loom` tokio configures out `tokio::net` and `tokio::signal`, which the engine needs.
//!
//! What is shared across threads here: the simulated disk ([`crate::paper::fs::SimFs`]), which
//! the paper backend's appends (store owner's arbiter) and a checkpoint job (snapshotter thread)
//! use at once, exactly as they share the real directory through `StdFs`.

#[cfg(moodb_loom)]
pub use loom::sync::{Arc, Mutex, MutexGuard};

#[cfg(not(moodb_loom))]
pub use std::sync::{Arc, Mutex, MutexGuard};
