//! Any bytes as a scenario file: a scenario that plans, or located diagnostics with a fix.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| rsslab_fuzz::scenario::check_bytes(bytes));
