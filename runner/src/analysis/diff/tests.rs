use std::path::Path;

use rsslab_wire::{ProcessOutcome, RunOutcome};

use super::*;
use crate::catalogue::parse_catalogue;
use crate::catalogue::tests::ONE;
use crate::output::markdown::markdown;
use crate::records::testing::fake_run;

/// A run of `demo` on 6.1 labelled `release=dontneed`, measured as `release` behaves
/// (so a "kernel update" can make DONTNEED behave like FREE), as repeat `repeat`.
fn run(release: &str, repeat: u32) -> LoadedRun {
    let mut run = fake_run("demo", "6.1", release);
    let dontneed = fake_run("demo", "6.1", "dontneed").record;
    run.record.variant = dontneed.variant;
    run.record.variant_label = dontneed.variant_label;
    run.record.dir = if repeat > 1 {
        format!("{}/repeat-{repeat}", dontneed.dir)
    } else {
        dontneed.dir
    };
    run.record.repeat = repeat;
    run
}

fn with_version(mut run: LoadedRun, version: &str) -> LoadedRun {
    run.record.provenance.kernel_packages[0].version = version.into();
    run
}

fn whats(comparison: &Comparison) -> Vec<(String, Verdict)> {
    comparison
        .changes
        .iter()
        .map(|change| (change.what.clone(), change.verdict))
        .collect()
}

#[test]
fn the_same_runs_compare_equal() {
    let base = [run("dontneed", 1), run("free", 1)];
    let comparison = compare(&base, &base, None, "base");
    assert_eq!(comparison.compared, 1);
    assert!(comparison.changes.is_empty(), "{comparison:#?}");
    assert!(markdown(&comparison).contains("Nothing changed beyond run-to-run noise."));
}

#[test]
fn rss_that_stays_high_is_a_regression_with_repeats_tested_by_welch() {
    let base: Vec<LoadedRun> = (1..=3).map(|r| run("dontneed", r)).collect();
    let new: Vec<LoadedRun> = (1..=3).map(|r| run("free", r)).collect();
    let comparison = compare(&base, &new, None, "reports/yesterday");
    let lazy = comparison
        .changes
        .iter()
        .find(|change| change.what == "max process.service.lazyfree")
        .unwrap_or_else(|| panic!("{comparison:#?}"));
    assert_eq!(lazy.verdict, Verdict::Regression);
    assert_eq!(lazy.baseline, "0.0MiB (mean of 3: 0.0MiB–0.0MiB)");
    assert_eq!(lazy.new, "350.0MiB (mean of 3: 350.0MiB–350.0MiB)");
    assert!(
        lazy.detail
            .starts_with("+350.0MiB, Welch's t-test p = 0.00e0"),
        "{}",
        lazy.detail
    );
    // The service's RSS at the end fell under the balloon in both; the peak did not move.
    assert!(
        !whats(&comparison)
            .iter()
            .any(|(what, _)| what == "max process.service.rss"),
        "{comparison:#?}"
    );
    assert!(comparison.regressions() >= 1);
    // Regressions come first.
    assert_eq!(comparison.changes[0].verdict, Verdict::Regression);
}

#[test]
fn a_process_that_survived_and_is_now_oom_killed_is_a_regression() {
    let base = [run("dontneed", 1), run("dontneed", 2)];
    let mut killed = run("dontneed", 1);
    killed.record.processes.get_mut("balloon").unwrap().outcome = ProcessOutcome::OomKilled;
    let new = [killed, run("dontneed", 2)];
    let comparison = compare(&base, &new, None, "base");
    assert_eq!(
        whats(&comparison),
        [("process.balloon.outcome".to_owned(), Verdict::Regression)]
    );
    let change = &comparison.changes[0];
    assert_eq!(change.baseline, "survived ×2");
    assert_eq!(change.new, "oom-killed, survived");
    // And back again: an improvement.
    let back = compare(&new, &base, None, "base");
    assert_eq!(back.changes[0].verdict, Verdict::Improvement);
}

#[test]
fn a_run_that_no_longer_completes_is_a_regression_and_its_numbers_are_not_compared() {
    let base = [run("dontneed", 1)];
    let mut panicked = run("dontneed", 1);
    panicked.record.outcome = RunOutcome::KernelPanic;
    panicked.record.reason = Some("Kernel panic - not syncing".into());
    let comparison = compare(&base, &[panicked], None, "base");
    assert_eq!(
        whats(&comparison),
        [("outcome".to_owned(), Verdict::Regression)]
    );
    assert_eq!(comparison.changes[0].new, "kernel-panic");

    let mut ours = run("dontneed", 1);
    ours.record.outcome = RunOutcome::InfraError;
    let comparison = compare(&base, &[ours], None, "base");
    assert_eq!(
        whats(&comparison),
        [("outcome".to_owned(), Verdict::Changed)],
        "rsslab's own failure is not the kernel's regression"
    );
}

#[test]
fn expectations_that_flip_are_regressions() {
    let scenario = crate::scenario::parse_scenario(
        Path::new("demo.toml"),
        r#"[scenario]
id = "demo"
title = "Demo"
[sample]
duration = "30s"
[[process]]
name = "service"
workload = "heap-churn"
args = { heap = "400MiB", live = "50MiB" }
[[process]]
name = "balloon"
workload = "balloon"
start = { after = "service", phase = "released" }
[[expect]]
name = "RSS falls to the live set"
metric = "process.service.rss"
from = "service:released"
to = "balloon:started"
below = "100MiB"
"#,
        &["6.1".to_owned()],
    )
    .unwrap();
    let with_expectations = |mut run: LoadedRun| {
        run.record.expectations = scenario.expectations.clone();
        run
    };
    let base = [with_expectations(run("dontneed", 1))];
    let new = [with_expectations(run("free", 1))];
    let comparison = compare(&base, &new, None, "base");
    let flipped = comparison
        .changes
        .iter()
        .find(|change| change.what == "expect: RSS falls to the live set")
        .unwrap_or_else(|| panic!("{comparison:#?}"));
    assert_eq!(flipped.verdict, Verdict::Regression);
    assert_eq!(
        (flipped.baseline.as_str(), flipped.new.as_str()),
        ("passed", "failed")
    );
    assert!(
        flipped.detail.contains("400.0MiB, below 100.0MiB: failed"),
        "{}",
        flipped.detail
    );
}

/// The catalogue of one kernel with a behaviour change since 6.1.180-1.
fn catalogue() -> String {
    format!(
        "{ONE}{}",
        r#"[[kernel.behaviour_changes]]
since = "6.1.180-1"
scenario = "de*"
what = "max process.*.lazyfree"
note = "MADV_DONTNEED is MADV_FREE now (a made-up change for this test)"
"#
    )
}

#[test]
fn a_change_the_catalogue_knows_is_expected_not_a_regression() {
    let catalogue = parse_catalogue(&catalogue()).unwrap();
    let base = [with_version(run("dontneed", 1), "6.1.176-1")];
    let new = [with_version(run("free", 1), "6.1.180-1")];
    let comparison = compare(&base, &new, Some(&catalogue), "base");
    let lazy = comparison
        .changes
        .iter()
        .find(|change| change.what == "max process.service.lazyfree")
        .unwrap();
    assert_eq!(lazy.verdict, Verdict::Expected);
    assert_eq!(
        lazy.note.as_deref(),
        Some(
            "known since 6.1.180-1: MADV_DONTNEED is MADV_FREE now (a made-up change for this test)"
        )
    );
    // The same change without a version crossing `since` is still a regression.
    let same_version = [with_version(run("free", 1), "6.1.176-1")];
    let comparison = compare(&base, &same_version, Some(&catalogue), "base");
    assert!(
        comparison
            .changes
            .iter()
            .any(|change| change.what == "max process.service.lazyfree"
                && change.verdict == Verdict::Regression)
    );
}

#[test]
fn runs_on_one_side_only_are_listed() {
    let base = [run("dontneed", 1)];
    let new = [run("dontneed", 1), fake_run("demo", "6.12", "free")];
    let comparison = compare(&base, &new, None, "base");
    assert_eq!(comparison.only_in_new, ["demo/6.12/release=free"]);
    assert!(comparison.only_in_baseline.is_empty());
    assert!(markdown(&comparison).contains("Only in the new lab: `demo/6.12/release=free`."));
}

#[test]
fn markdown_escapes_cells() {
    let comparison = Comparison {
        baseline: "reports/a`b".into(),
        compared: 1,
        only_in_baseline: vec![],
        only_in_new: vec![],
        changes: vec![Change {
            scenario: "demo".into(),
            kernel: "6.1".into(),
            variant_label: String::new(),
            what: "expect: a | b <script>".into(),
            verdict: Verdict::Regression,
            baseline: "passed".into(),
            new: "failed".into(),
            detail: "line\nbreak".into(),
            note: None,
        }],
    };
    insta::assert_snapshot!(markdown(&comparison), @r"
    ## Changes against the baseline `reports/a'b`

    **1 regression**, 0 expected (known kernel behaviour), 0 other changes, 0 improvements in 1 scenario × kernel × variant combinations compared.

    | verdict | scenario | kernel | variant | what | baseline | new | detail |
    |---|---|---|---|---|---|---|---|
    | **regression** | demo | 6.1 | — | expect: a \| b \<script\> | passed | failed | line break |
    ");
}

#[test]
fn globs() {
    assert!(glob_match("*", "anything"));
    assert!(glob_match("image-batch-*", "image-batch-page-cache"));
    assert!(glob_match("max process.*.rss", "max process.service.rss"));
    assert!(!glob_match("max process.*.rss", "last process.service.rss"));
    assert!(glob_match("a*b*c", "axxbyyc"));
    assert!(!glob_match("a*b*c", "axxbyy"));
    assert!(glob_match("exact", "exact"));
}
