//! Fuzz target `paper_recover`: see `moodb_fuzz::checks::paper_recover` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| moodb_fuzz::checks::paper_recover(data));
