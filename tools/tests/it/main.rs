//! End-to-end tests of the `moodb` binary's tools, linked as one binary (one module per
//! former test file): `moodb bench`, `moodb wal dump` / `moodb snapshot inspect`, and the
//! help text of `moodb serve`.

mod bench_cli;
mod inspect_cli;
mod segment_cli;
mod serve_cli;
