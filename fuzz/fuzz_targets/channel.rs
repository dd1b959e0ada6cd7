//! Guest channel lines (messages, cut messages, garbage, huge numbers, deep JSON): the
//! collector never panics, records every protocol error and stays usable.
#![no_main]

use rsslab_fuzz::channel::Line;

libfuzzer_sys::fuzz_target!(|lines: Vec<Line>| rsslab_fuzz::channel::check(&lines));
