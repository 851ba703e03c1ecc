//! `moodb bench`: runs one workload against a backend in-process or against a server over
//! RESP, and prints throughput, latency percentiles and fsync counts. The workload code is the
//! same for every target: a target only says how one operation is executed ([`Client`]).
//!
//! - [`workload`]: what the clients do (operation mix, keys, values, when to stop).
//! - [`runner`]: client threads, latency histograms, the progress bar.
//! - [`inprocess`]: the server's data path without the network: a writer thread owning the
//!   backend, group commit.
//! - [`resp`]: clients talking RESP to a running server.
//! - [`recovery`]: fill, close, reopen and time recovery.
//! - [`report`]: the tables printed at the end.

pub mod inprocess;
pub mod recovery;
pub mod report;
pub mod resp;
pub mod runner;
pub mod workload;

use std::io;

use moodb_core::StorageError;

/// Why a benchmark could not run to the end.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("backend {backend}: {source}")]
    Storage {
        backend: String,
        #[source]
        source: StorageError,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// The server answered with an error or something the benchmark did not expect.
    #[error("server {addr}: {message}")]
    Server { addr: String, message: String },
    /// The in-process writer thread stopped (it panicked, or its backend failed earlier).
    #[error("the in-process writer thread stopped: {0}")]
    WriterGone(String),
    #[error("{0}")]
    Usage(String),
}

/// One client connection (or in-process handle) executing operations one at a time.
pub trait Client: Send {
    fn execute(&mut self, op: &workload::Op) -> Result<(), BenchError>;
}
