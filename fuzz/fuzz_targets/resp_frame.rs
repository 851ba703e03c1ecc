//! Fuzz target `resp_frame`: see `moodb_fuzz::checks::resp_frame` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| moodb_fuzz::checks::resp_frame(data));
