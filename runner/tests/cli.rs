//! The `rsslab` command line on temporary directories: validation exit codes and messages,
//! rebuilding a report from raw records, help.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use rsslab::record::{RunRecord, Timing};
use rsslab_wire::message::ProcessResult;
use rsslab_wire::{Event, EventKind, ProcessOutcome, RunOutcome, RunSpec, Sample};
use support::rsslab;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

const GOOD: &str = r#"[scenario]
id = "good"
title = "good"

[sample]
duration = "5s"

[[process]]
name = "service"
workload = "heap-churn"
args = { heap = "64MiB" }
"#;

#[test]
fn check_accepts_the_built_in_scenarios() {
    let output = rsslab(&["check", "../scenarios"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("ok:"));
}

#[test]
fn check_names_file_line_and_column_of_a_misspelled_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "typo.toml",
        &GOOD.replace("duration", "duratoin"),
    );
    let output = rsslab(&["check", &path]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("{path}:6:1")), "{stderr}");
    assert!(stderr.contains("duratoin"), "{stderr}");
    assert!(stderr.contains("duration"), "the fix is named: {stderr}");
}

#[test]
fn check_rejects_a_bad_unit_with_an_example() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "unit.toml",
        &GOOD.replace("\"64MiB\"", "\"64 parsecs\""),
    );
    let output = rsslab(&["check", &path]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("{path}:11:")), "{stderr}");
    assert!(
        stderr.contains("512MiB"),
        "an example of a good size: {stderr}"
    );
}

#[test]
fn check_rejects_an_unknown_kernel() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "kernel.toml",
        &GOOD.replace("[sample]", "[vm]\nkernels = [\"3.16\"]\n\n[sample]"),
    );
    let output = rsslab(&["check", &path]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("3.16") && stderr.contains("6.1"),
        "{stderr}"
    );
}

fn fake_record(out: &Path) {
    let dir = "runs/good/6.1";
    let run_dir = out.join(dir);
    std::fs::create_dir_all(&run_dir).unwrap();
    let spec: RunSpec = serde_json::from_value(serde_json::json!({
        "run_id": "good/6.1", "sample_every": "250ms", "duration": "5s",
        "processes": [{"name": "service", "workload": "heap-churn", "args": {"heap": 67108864}}]
    }))
    .unwrap();
    let record = RunRecord {
        scenario: "good".into(),
        title: "good".into(),
        story: "A *story*.".into(),
        kernel: "6.1".into(),
        kernel_release: Some("6.1.0-50-cloud-amd64".into()),
        variant: BTreeMap::new(),
        variant_label: String::new(),
        accel: "tcg".into(),
        outcome: RunOutcome::Ok,
        reason: None,
        attempts: 1,
        processes: [(
            "service".to_owned(),
            ProcessResult {
                outcome: ProcessOutcome::RunningAtEnd,
                peak: [("rss".to_owned(), 64 << 20)].into(),
                started_ms: Some(0),
                ended_ms: Some(5000),
            },
        )]
        .into(),
        cgroup_peak: BTreeMap::new(),
        events: vec![Event {
            t_ms: 1000,
            process: Some("service".into()),
            kind: EventKind::Phase {
                phase: "released".into(),
            },
        }],
        hello: None,
        timing: Timing::default(),
        provenance: Default::default(),
        spec,
        dir: dir.into(),
        expectations: Vec::new(),
        kernel_facts: None,
    };
    record.write(&run_dir).unwrap();
    let samples: Vec<String> = (0..20)
        .map(|i| {
            let mut sample = Sample {
                t_ms: i * 250,
                ..Sample::default()
            };
            sample.process.insert(
                "service".into(),
                [("rss".to_owned(), (64 - i) << 20)].into(),
            );
            sample.guest.insert("mem_available".into(), 400 << 20);
            serde_json::to_string(&sample).unwrap()
        })
        .collect();
    std::fs::write(run_dir.join("samples.jsonl"), samples.join("\n") + "\n").unwrap();
    std::fs::write(run_dir.join("console.log"), "[    0.0] Linux version 6.1\n").unwrap();
}

#[test]
fn report_rebuilds_results_and_html_from_raw_records_alone() {
    let out = tempfile::tempdir().unwrap();
    fake_record(out.path());
    let output = rsslab(&["report", out.path().to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("results.json")).unwrap())
            .unwrap();
    assert_eq!(results["runs"][0]["kernel"], "6.1");
    assert_eq!(
        results["runs"][0]["processes"]["service"]["outcome"],
        "running-at-end"
    );
    let html = std::fs::read_to_string(out.path().join("index.html")).unwrap();
    assert!(html.contains("<svg"));
    let junit = std::fs::read_to_string(out.path().join("junit.xml")).unwrap();
    assert!(
        junit.contains(r#"<testcase name="run" classname="good/6.1""#),
        "{junit}"
    );
    let summary = std::fs::read_to_string(out.path().join("summary.md")).unwrap();
    assert!(summary.contains("| good | — | service |"), "{summary}");
}

#[test]
fn report_of_a_directory_without_runs_is_bad_input() {
    let out = tempfile::tempdir().unwrap();
    let output = rsslab(&["report", out.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn help_lists_every_command() {
    let output = rsslab(&["--help"]);
    let help = String::from_utf8_lossy(&output.stdout);
    for command in ["run", "check", "report", "images", "doctor"] {
        assert!(help.contains(command), "{help}");
    }
}

#[test]
fn report_evaluates_expectations_from_the_records_and_exits_1_on_a_failure() {
    use rsslab::expect::{Check, Comparison, Expectation, Measure, Operand, Stat};
    let out = tempfile::tempdir().unwrap();
    fake_record(out.path());
    let run_json = out.path().join("runs/good/6.1/run.json");
    let mut record: RunRecord =
        serde_json::from_str(&std::fs::read_to_string(&run_json).unwrap()).unwrap();
    let rss_max = |compare, mib| Check::Metric {
        measure: Measure {
            metric: "process.service.rss".into(),
            stat: Stat::Max,
            from: Some("service:released".into()),
            after: Default::default(),
            to: None,
        },
        compare,
        against: Operand::Size(rsslab_wire::Bytes::mib(mib)),
    };
    record.expectations = vec![
        Expectation {
            name: "RSS <stays> under 100MiB".into(),
            when: Default::default(),
            check: rss_max(Comparison::Below, 100),
        },
        Expectation {
            name: "RSS reaches 200MiB".into(),
            when: Default::default(),
            check: rss_max(Comparison::AtLeast, 200),
        },
    ];
    record.write(run_json.parent().unwrap()).unwrap();

    let output = rsslab(&["report", out.path().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("1 expectation failed"), "{stderr}");
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("results.json")).unwrap())
            .unwrap();
    let listed = results["runs"][0]["expectations"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["passed"], true);
    assert_eq!(listed[1]["passed"], false);
    let detail = listed[1]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("max process.service.rss from service:released to end = ")
            && detail.ends_with("at least 200.0MiB: failed"),
        "{detail}"
    );
    let html = std::fs::read_to_string(out.path().join("index.html")).unwrap();
    assert!(html.contains("1 of 2 expectations failed"), "matrix cell");
    assert!(html.contains("RSS reaches 200MiB"));
    assert!(
        html.contains("RSS &lt;stays&gt; under 100MiB"),
        "names are escaped"
    );
    assert!(html.contains(&detail.replace('>', "&gt;")));
}
