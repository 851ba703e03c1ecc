//! Fuzz target `resp_request`: see `moodb_fuzz::checks::resp_request` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| moodb_fuzz::checks::resp_request(data));
