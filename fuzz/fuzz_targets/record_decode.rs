//! Fuzz target `record_decode`: see `moodb_fuzz::checks::record_decode` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| moodb_fuzz::checks::record_decode(data));
