//! The synchronization primitives of the state this crate shares between threads, behind one
//! name so the loom models can swap them: `loom::sync` with the `loom` feature, `std::sync`
//! otherwise (as tokio's `src/loom/mod.rs` does). A crate feature rather than `--cfg loom`:
//! under that cfg tokio configures out `tokio::net` and `tokio::signal`, which the engine needs,
//! and a feature rebuilds only this crate. Only the loom models may run with it on.
//!
//! What is shared across threads here: the simulated disk ([`crate::paper::fs::SimFs`]), which
//! the paper backend's appends (store owner's arbiter) and a checkpoint job (snapshotter thread)
//! use at once, exactly as they share the real directory through `StdFs`.

#[cfg(feature = "loom")]
pub use loom::sync::{Arc, Mutex, MutexGuard};

#[cfg(not(feature = "loom"))]
pub use std::sync::{Arc, Mutex, MutexGuard};
