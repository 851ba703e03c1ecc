//! Benchmark of the paper backend (filled in below).
fn main() {}
