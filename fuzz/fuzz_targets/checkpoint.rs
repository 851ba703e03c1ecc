//! Fuzz target `checkpoint`: see `moodb_fuzz::checks::checkpoint` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| moodb_fuzz::checks::checkpoint(data));
