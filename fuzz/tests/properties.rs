//! The fuzz properties as short property tests in the normal suite: each runs for a bounded
//! time (about a second) on random cases from arbtest. A failure prints the seed; rerun one
//! with `.seed(0x...)` and add it to `regressions` below when it is fixed.

use arbitrary::Unstructured;
use rsslab_fuzz::channel::{self, Line};
use rsslab_fuzz::mutate::{Case, seeds};
use rsslab_fuzz::scenario;

/// Time per property, in milliseconds.
const BUDGET_MS: u64 = 1_000;

#[test]
fn scenario_text_from_arbitrary_bytes() {
    arbtest::arbtest(|u| {
        let len = u.arbitrary_len::<u8>()?;
        scenario::check_bytes(u.bytes(len)?);
        Ok(())
    })
    .budget_ms(BUDGET_MS);
}

#[test]
fn scenario_text_from_mutated_scenarios() {
    arbtest::arbtest(|u| {
        let case: Case = u.arbitrary()?;
        scenario::check_text(&case.text());
        Ok(())
    })
    .budget_ms(BUDGET_MS);
}

#[test]
fn channel_lines() {
    arbtest::arbtest(|u| {
        let lines: Vec<Line> = u.arbitrary()?;
        channel::check(&lines);
        Ok(())
    })
    .budget_ms(BUDGET_MS);
}

#[test]
fn the_seed_scenarios_are_valid_and_every_prefix_is_handled() {
    for seed in seeds() {
        scenario::check_text(seed);
        for cut in (0..seed.len())
            .step_by(97)
            .filter(|&at| seed.is_char_boundary(at))
        {
            scenario::check_text(&seed[..cut]);
        }
    }
}

/// Inputs the fuzzers found, kept as text (`fuzz/regressions/`), and the bad-input corpus.
#[test]
fn found_inputs_and_the_bad_corpus_keep_the_property() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for dir in ["regressions", "../runner/tests/fixtures/bad"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                scenario::check_bytes(&std::fs::read(&path).unwrap());
                checked += 1;
            }
        }
    }
    assert!(checked > 50, "{checked} files");
}

#[test]
fn an_empty_case_is_a_seed() {
    let case: Case = Unstructured::new(&[]).arbitrary().unwrap();
    assert!(case.mutations.is_empty());
    assert_eq!(case.text(), seeds()[0]);
}
