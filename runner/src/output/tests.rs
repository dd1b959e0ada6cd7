use rsslab_wire::{Bytes, Millis, ProcessOutcome, RunOutcome};

use super::markdown::escape;
use super::summary::render_summary;
use super::*;
use crate::analysis::results::build_results;
use crate::records::testing::fake_run;
use crate::scenario::expect::{Check, Comparison, Expectation, Measure, Operand, Stat};

/// A small lab with what the exports must show: passed and failed expectations, an
/// unsupported run, an infrastructure error with a hostile reason, a kernel panic after its
/// retry, a scenario without a matrix whose main process is not called `service`, and a run
/// whose guest found a kernel fact otherwise than written.
fn lab() -> Vec<LoadedRun> {
    let held = Expectation {
        name: "RSS stays | *high* after release".into(),
        when: Default::default(),
        check: Check::Metric {
            measure: Measure {
                metric: "process.service.rss".into(),
                stat: Stat::Last,
                from: Some("service:released".into()),
                after: Millis::secs(1),
                to: Some("balloon:started".into()),
            },
            compare: Comparison::Above,
            against: Operand::Size(Bytes::mib(380)),
        },
    };
    let survives = Expectation {
        name: "the service survives".into(),
        when: Default::default(),
        check: Check::Outcome {
            process: "service".into(),
            outcomes: vec![ProcessOutcome::RunningAtEnd],
        },
    };
    let with_expectations = |mut run: LoadedRun| {
        run.record.expectations = vec![held.clone(), survives.clone()];
        run
    };
    // Its guest found MGLRU on at boot, where the facts it ran with say off.
    let free = crate::records::testing::with_fact_mismatch(with_expectations(fake_run(
        "madvfree", "6.1", "free",
    )));
    let mut dontneed = with_expectations(fake_run("madvfree", "6.1", "dontneed"));
    dontneed
        .record
        .processes
        .get_mut("service")
        .unwrap()
        .outcome = ProcessOutcome::OomKilled;

    let mut unsupported = with_expectations(fake_run("madvfree", "6.12", "free"));
    unsupported.record.outcome = RunOutcome::Unsupported;
    unsupported.record.reason =
        Some("no cgroup v1 memory controller (CONFIG_MEMCG_V1 unset)".into());
    unsupported.record.expectations = vec![Expectation {
        name: "cgroup v1 is refused".into(),
        when: Default::default(),
        check: Check::RunOutcome {
            outcomes: vec![RunOutcome::Unsupported],
        },
    }];
    unsupported.samples.clear();
    unsupported.record.processes.clear();

    let mut infra = with_expectations(fake_run("madvfree", "7.2", "free"));
    infra.record.outcome = RunOutcome::InfraError;
    infra.record.reason = Some("QEMU exited 1: <b>|bad|</b>\nqemu: could not open `disk`".into());
    infra.record.processes.clear();
    infra.samples.clear();

    let mut panic = with_expectations(fake_run("madvfree", "5.10", "free"));
    panic.record.outcome = RunOutcome::KernelPanic;
    panic.record.attempts = 2;
    panic.record.reason = Some("Kernel panic - not syncing: VFS: Unable to mount root fs".into());
    panic.record.processes.clear();
    panic.samples.truncate(8);

    // No matrix, no `service`: the scenario's first process (`hog`) is the main one.
    let mut plain =
        crate::records::testing::fake_run_named("plain", "6.1", "free", "worker", "hog");
    plain.record.spec.processes.reverse();
    plain.record.variant.clear();
    plain.record.variant_label.clear();
    plain.record.dir = "runs/plain/6.1".into();
    vec![free, dontneed, unsupported, infra, panic, plain]
}

fn snapshot_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[generated-at]");
    settings.add_filter(&regex_escape(env!("CARGO_PKG_VERSION")), "[version]");
    settings
}

fn regex_escape(text: &str) -> String {
    text.replace('.', r"\.")
}

#[test]
fn summary_snapshot() {
    let runs = lab();
    let results = build_results(&runs);
    let summary = render_summary(&results, &runs);
    snapshot_settings().bind(|| insta::assert_snapshot!("summary.md", summary));
}

#[test]
fn junit_snapshot() {
    let results = build_results(&lab());
    let xml = junit::render_junit(&results).unwrap();
    snapshot_settings().bind(|| insta::assert_snapshot!("junit.xml", xml));
}

#[test]
fn junit_counts_runs_expectations_skips_errors_and_failures() {
    let runs = lab();
    let results = build_results(&runs);
    let xml = junit::render_junit(&results).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");

    let expectations: usize = results.runs.iter().map(|r| r.expectations.len()).sum();
    let failed = results.failed_expectations();
    let cases: Vec<_> = root
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), results.runs.len() + expectations);
    assert_eq!(
        root.attribute("tests").unwrap(),
        cases.len().to_string(),
        "{xml}"
    );
    assert_eq!(root.attribute("failures").unwrap(), failed.to_string());
    // kernel-panic and infra-error are errors; unsupported is skipped.
    assert_eq!(root.attribute("errors").unwrap(), "2");
    let suites: Vec<_> = root.children().filter(|n| n.is_element()).collect();
    let names: Vec<_> = suites
        .iter()
        .map(|s| s.attribute("name").unwrap())
        .collect();
    assert_eq!(names, ["madvfree", "plain"]);

    let case = |classname: &str, name: &str| {
        cases
            .iter()
            .find(|c| {
                c.attribute("classname") == Some(classname) && c.attribute("name") == Some(name)
            })
            .unwrap_or_else(|| panic!("no case {classname} {name} in {xml}"))
            .to_owned()
    };
    let skipped = case("madvfree/6.12/release=free", "run");
    let skip = skipped
        .children()
        .find(|n| n.has_tag_name("skipped"))
        .unwrap();
    assert!(
        skip.attribute("message")
            .unwrap()
            .contains("CONFIG_MEMCG_V1")
    );
    let error = case("madvfree/5.10/release=free", "run");
    let error = error.children().find(|n| n.has_tag_name("error")).unwrap();
    assert_eq!(error.attribute("type"), Some("kernel-panic"));
    assert!(error.attribute("message").unwrap().contains("Kernel panic"));
    let failure = case(
        "madvfree/6.1/release=dontneed",
        "RSS stays | *high* after release",
    );
    let failure = failure
        .children()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    let detail = &results
        .runs
        .iter()
        .find(|r| r.dir.ends_with("6.1/release=dontneed"))
        .unwrap()
        .expectations[0]
        .detail;
    assert_eq!(failure.attribute("message"), Some(detail.as_str()));
    assert!(detail.ends_with("failed"), "{detail}");
    // Times are the runs' wall times.
    let passed = case("madvfree/6.1/release=free", "run");
    assert_eq!(passed.attribute("time"), Some("41.250"));
}

/// Pipes outside backslash escapes: a table row's cell borders.
fn cell_borders(row: &str) -> usize {
    let mut borders = 0;
    let mut escaped = false;
    for c in row.chars() {
        match (escaped, c) {
            (false, '\\') => escaped = true,
            (false, '|') => borders += 1,
            _ => escaped = false,
        }
    }
    borders
}

#[test]
fn summary_rows_keep_their_cells_and_hostile_text_is_escaped() {
    let mut runs = lab();
    let hostile = crate::records::testing::HOSTILE;
    runs[3].record.variant_label = format!("v={hostile}|x");
    runs[3].record.reason = Some(format!("{hostile}\n| --- |"));
    let results = build_results(&runs);
    let summary = render_summary(&results, &runs);
    let table: Vec<&str> = summary
        .lines()
        .filter(|line| line.starts_with('|'))
        .collect();
    let header = cell_borders(table[0]);
    assert!(table.len() > 3);
    for row in &table {
        assert_eq!(cell_borders(row), header, "{row}");
    }
    assert!(!summary.contains("<script>"), "{summary}");
    assert!(
        summary.contains(r#"\<script\>alert(1)\</script\> \& "x""#),
        "{summary}"
    );
    let reason_line = summary
        .lines()
        .find(|l| l.contains("infra-error:"))
        .unwrap();
    assert!(reason_line.contains(r"\| --- \|"), "{reason_line}");
}

#[test]
fn escape_leaves_plain_text_and_flattens_lines() {
    assert_eq!(
        escape("go=1.15,vm.overcommit_memory=0"),
        r"go=1.15,vm.overcommit\_memory=0"
    );
    assert_eq!(escape("a\n\nb\tc"), "a b c");
    assert_eq!(escape("[x](y) `z` $1"), r"\[x\](y) \`z\` \$1");
}

#[test]
fn summary_has_the_baseline_section_after_the_table() {
    let runs = lab();
    let mut results = build_results(&runs);
    assert!(!render_summary(&results, &runs).contains("Changes against"));
    results.baseline = Some(crate::analysis::comparison::Comparison {
        baseline: "reports/previous-night".into(),
        compared: 1,
        only_in_baseline: vec![],
        only_in_new: vec![],
        changes: vec![crate::analysis::comparison::Change {
            scenario: "madvfree".into(),
            kernel: "6.1".into(),
            variant_label: String::new(),
            what: "max process.service.rss".into(),
            verdict: crate::analysis::comparison::Verdict::Regression,
            baseline: "51.0MiB".into(),
            new: "401.0MiB".into(),
            detail: "+350.0MiB (+686%)".into(),
            note: None,
        }],
    });
    let summary = render_summary(&results, &runs);
    let section = summary
        .find("#### Changes against the baseline `reports/previous-night`")
        .unwrap();
    assert!(
        summary[section..].contains("| max process.service.rss | 51.0MiB | 401.0MiB |"),
        "{summary}"
    );
    assert!(section > summary.find("| scenario |").unwrap());
    assert!(section < summary.find("#### Failed expectations").unwrap());
}

#[test]
fn exports_are_written_beside_the_results() {
    let dir = tempfile::tempdir().unwrap();
    let runs = lab();
    let results = build_results(&runs);
    let exports = write_exports(dir.path(), &runs, &results).unwrap();
    assert_eq!(exports.junit, dir.path().join(JUNIT_XML));
    assert_eq!(exports.summary, dir.path().join(SUMMARY_MD));
    let xml = std::fs::read_to_string(&exports.junit).unwrap();
    roxmltree::Document::parse(&xml).unwrap();
    let md = std::fs::read_to_string(&exports.summary).unwrap();
    assert!(md.starts_with("### rsslab lab: "), "{md}");
}

#[test]
fn fact_mismatches_are_in_the_headline_the_table_and_under_their_heading() {
    let runs = lab();
    let results = build_results(&runs);
    let summary = render_summary(&results, &runs);
    let headline = summary.lines().next().unwrap();
    assert!(
        headline.contains("⚠️ 1 run found the kernel's facts otherwise than the catalogue"),
        "{headline}"
    );
    let row = summary
        .lines()
        .find(|line| line.starts_with("| madvfree | release=free |"))
        .unwrap();
    assert!(
        row.contains("| ✅ ok · 2/2 · **400.0MiB** · ⚠️ kernel facts differ |"),
        "{row}"
    );
    let section = summary
        .split("#### Kernel facts the guest found otherwise (1 run)")
        .nth(1)
        .expect("the heading")
        .split("####")
        .next()
        .unwrap();
    assert!(
        section.contains(
            "- **madvfree** · 6.1 · release=free\n  - catalogue says mglru\\_default = false, \
             the guest read lru\\_gen/enabled = 0x0007\n"
        ),
        "{section}"
    );
    // A hostile value the guest read is escaped like every guest string.
    let mut hostile = lab();
    let record = &mut hostile[0].record;
    let hello = record.hello.as_mut().unwrap();
    hello
        .features
        .insert("mglru".into(), crate::records::testing::HOSTILE.into());
    record.fact_mismatches = crate::records::facts::record_fact_mismatches(record);
    let summary = render_summary(&build_results(&hostile), &hostile);
    assert!(!summary.contains("<script>"), "{summary}");

    // Without mismatches: no heading, no marks.
    let mut clean = lab();
    clean[0].record.fact_mismatches.clear();
    clean[0].record.kernel_facts = None;
    let summary = render_summary(&build_results(&clean), &clean);
    assert!(!summary.contains("Kernel facts"), "{summary}");
    assert!(!summary.contains("facts differ"), "{summary}");
    assert!(!summary.contains("facts otherwise"), "{summary}");
}

#[test]
fn an_empty_lab_has_a_summary_and_an_empty_junit_report() {
    let results = build_results(&[]);
    let summary = render_summary(&results, &[]);
    assert!(summary.starts_with("### rsslab lab: no runs"), "{summary}");
    assert!(!summary.contains("| scenario |"));
    let xml = junit::render_junit(&results).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    assert_eq!(doc.root_element().attribute("tests"), Some("0"));
}
