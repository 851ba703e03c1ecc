//! Helpers for the integration tests: start a real `moodb serve` on 127.0.0.1 with a temporary
//! data directory, and talk to it.
pub mod linearizability;
