//! Built-in scenarios with structured mutations: the same property as `scenario_text`, on
//! near-valid files that reach validation.
#![no_main]

use rsslab_fuzz::mutate::Case;

libfuzzer_sys::fuzz_target!(|case: Case| rsslab_fuzz::scenario::check_text(&case.text()));
