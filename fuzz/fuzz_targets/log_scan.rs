//! Fuzz target `log_scan`: see `moodb_fuzz::checks::log_scan` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| moodb_fuzz::checks::log_scan(data));
