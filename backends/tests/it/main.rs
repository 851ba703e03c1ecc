//! The backends' integration tests, linked as one binary (one module per area; `cargo test -p
//! moodb-backends --test it MODULE::` runs one). `failpoint_skip_checksum.rs` stays a binary
//! of its own: failpoints are read once per process from `MOODB_FAILPOINTS`.

mod backend_suite;
mod common;
mod fuzz_corpus;
mod paper_backend;
mod paper_compaction;
mod paper_crash;
mod paper_fuzz_findings;
mod paper_golden;
mod paper_raft_log;
mod paper_torn;
