//! The `rsslab` command line on temporary directories: validation exit codes and messages,
//! rebuilding a report from raw records, help.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use rsslab::records::{RunRecord, Timing};
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
    fake_record_on(out, "6.1");
}

/// A finished run of `good` on `kernel` under `out`, with the scenario's copy beside it.
fn fake_record_on(out: &Path, kernel: &str) {
    let dir = format!("runs/good/{kernel}");
    let run_dir = out.join(&dir);
    std::fs::create_dir_all(&run_dir).unwrap();
    std::fs::write(out.join("runs/good/scenario.toml"), GOOD).unwrap();
    let spec: RunSpec = serde_json::from_value(serde_json::json!({
        "run_id": format!("good/{kernel}"), "sample_every": "250ms", "duration": "5s",
        "processes": [{"name": "service", "workload": "heap-churn", "args": {"heap": 67108864}}]
    }))
    .unwrap();
    let record = RunRecord {
        scenario: "good".into(),
        title: "good".into(),
        story: "A *story*.".into(),
        kernel: kernel.into(),
        kernel_release: Some(format!("{kernel}.0-50-cloud-amd64")),
        variant: BTreeMap::new(),
        variant_label: String::new(),
        accel: "tcg".into(),
        accel_reason: Some("asked for (--accel tcg)".into()),
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
        dir,
        repeat: 1,
        expectations: Vec::new(),
        kernel_facts: None,
        fact_mismatches: Vec::new(),
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
    assert!(
        summary.contains("| good | — | peak RSS of service |"),
        "{summary}"
    );
}

#[test]
fn report_of_a_directory_without_runs_is_bad_input() {
    let out = tempfile::tempdir().unwrap();
    let output = rsslab(&["report", out.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
}

/// The commands a user types, as `--help` lists them.
const COMMANDS: [&str; 12] = [
    "run",
    "check",
    "report",
    "diff",
    "merge",
    "unpack",
    "export",
    "images",
    "kernels",
    "bisect",
    "doctor",
    "completions",
];

#[test]
fn bash_completes_every_command_and_the_generated_script_loads() {
    let output = rsslab(&["completions", "bash"]);
    assert!(output.status.success());
    let script = String::from_utf8(output.stdout).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rsslab.bash");
    std::fs::write(&path, &script).unwrap();
    // Bash itself loads it and registers the completion, and it offers every command.
    let loaded = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p rsslab >/dev/null && COMP_WORDS=(rsslab '') && COMP_CWORD=1 && _rsslab rsslab '' rsslab && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            path.display()
        ))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&loaded.stdout);
    assert!(
        loaded.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    let offered: Vec<&str> = said.lines().collect();
    for command in COMMANDS {
        assert!(
            offered.contains(&command),
            "{command} not offered: {offered:?}"
        );
    }
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let output = rsslab(&["completions", shell]);
        assert!(output.status.success(), "{shell}");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("export"),
            "{shell}"
        );
    }
}

#[test]
fn the_man_pages_are_generated_from_the_cli_one_per_command() {
    let output = rsslab(&["man"]);
    assert!(output.status.success());
    let page = String::from_utf8(output.stdout).unwrap();
    assert!(page.contains(".TH rsslab 1"), "{page}");
    let dir = tempfile::tempdir().unwrap();
    let output = rsslab(&["man", "--out", dir.path().to_str().unwrap()]);
    assert!(output.status.success());
    for command in COMMANDS {
        let page = std::fs::read_to_string(dir.path().join(format!("rsslab-{command}.1")))
            .unwrap_or_else(|error| panic!("rsslab-{command}.1: {error}"));
        assert!(page.contains(&format!(".TH rsslab-{command} 1")), "{page}");
    }
    let run = std::fs::read_to_string(dir.path().join("rsslab-run.1")).unwrap();
    assert!(run.contains("\\-\\-accel"), "the flags are in the page");
}

#[test]
fn check_json_lists_the_scenarios_or_every_error_with_where_and_the_fix() {
    let output = rsslab(&["check", "--json", "../scenarios"]);
    assert_eq!(output.status.code(), Some(0));
    let checked: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(checked["ok"], true);
    let scenarios = checked["scenarios"].as_array().unwrap();
    assert!(
        scenarios
            .iter()
            .any(|s| s["id"] == "page-cache-memory-high" && s["runs"] == 8)
    );
    let runs: u64 = scenarios.iter().map(|s| s["runs"].as_u64().unwrap()).sum();
    assert_eq!(checked["runs"], runs);

    let output = rsslab(&["check", "--json", "tests/fixtures/bad/expect-bad-stat.toml"]);
    assert_eq!(output.status.code(), Some(2));
    let checked: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(checked["ok"], false);
    let error = &checked["errors"][0];
    assert_eq!(
        (&error["line"], &error["column"], &error["key"]),
        (
            &serde_json::json!(21),
            &serde_json::json!(8),
            &serde_json::json!("expect[0].stat")
        )
    );
    assert!(
        error["help"][0].as_str().unwrap().contains("increase"),
        "{error}"
    );
}

#[test]
fn help_lists_every_command() {
    let output = rsslab(&["--help"]);
    let help = String::from_utf8_lossy(&output.stdout);
    for command in [
        "run", "check", "report", "diff", "merge", "images", "doctor",
    ] {
        assert!(help.contains(command), "{help}");
    }
}

#[test]
fn report_evaluates_expectations_from_the_records_and_exits_1_on_a_failure() {
    use rsslab::scenario::expect::{Check, Comparison, Expectation, Measure, Operand, Stat};
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
    // Stderr names the one that failed, so a CI log says which without the report.
    assert!(stderr.contains(": RSS reaches 200MiB: "), "{stderr}");
    assert!(!stderr.contains("stays"), "{stderr}");
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

/// Rewrites the fake record's service outcome in `out`.
fn set_service_outcome(out: &Path, outcome: ProcessOutcome) {
    let run_json = out.join("runs/good/6.1/run.json");
    let mut record: RunRecord =
        serde_json::from_str(&std::fs::read_to_string(&run_json).unwrap()).unwrap();
    record.processes.get_mut("service").unwrap().outcome = outcome;
    record.write(run_json.parent().unwrap()).unwrap();
}

#[test]
fn diff_prints_markdown_and_exits_1_on_a_regression() {
    let (base, new) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    fake_record(base.path());
    fake_record(new.path());
    let diff = |a: &Path, b: &Path| rsslab(&["diff", a.to_str().unwrap(), b.to_str().unwrap()]);

    let same = diff(base.path(), new.path());
    let stdout = String::from_utf8_lossy(&same.stdout);
    assert_eq!(same.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("Nothing changed beyond run-to-run noise."),
        "{stdout}"
    );

    set_service_outcome(new.path(), ProcessOutcome::OomKilled);
    let worse = diff(base.path(), new.path());
    let stdout = String::from_utf8_lossy(&worse.stdout);
    assert_eq!(worse.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(
            "| **regression** | good | 6.1 | — | process.service.outcome | survived | oom-killed |"
        ),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&worse.stderr).contains("1 regression against the baseline"));

    // The other way round it is an improvement: exit 0.
    assert_eq!(diff(new.path(), base.path()).status.code(), Some(0));

    let empty = tempfile::tempdir().unwrap();
    let bad = diff(empty.path(), new.path());
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a lab output directory"));
}

#[test]
fn report_with_a_baseline_keeps_the_comparison_in_the_outputs() {
    let (base, new) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    fake_record(base.path());
    fake_record(new.path());
    set_service_outcome(new.path(), ProcessOutcome::EnomemAtStart);
    let output = rsslab(&[
        "report",
        new.path().to_str().unwrap(),
        "--baseline",
        base.path().to_str().unwrap(),
    ]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(new.path().join("results.json")).unwrap())
            .unwrap();
    let change = &results["baseline"]["changes"][0];
    assert_eq!(change["verdict"], "regression");
    assert_eq!(change["what"], "process.service.outcome");
    assert_eq!(change["new"], "enomem-at-start");
    // A later `rsslab report DIR` keeps it (comparison.json), and still exits 1.
    let again = rsslab(&["report", new.path().to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(new.path().join("results.json")).unwrap())
            .unwrap();
    assert_eq!(results["baseline"]["compared"], 1);
}

/// Every file under `dir` with its contents, to show a command left it alone.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, files);
            } else {
                let name = path.strip_prefix(root).unwrap().display().to_string();
                files.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(dir, dir, &mut files);
    files
}

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn run_refuses_a_bad_shard_before_doing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "good.toml", GOOD);
    let out = dir.path().join("out");
    for (shard, wanted) in [
        ("0/4", "at least 1"),
        ("5/4", "1 to 4"),
        ("2", "is not I/N"),
        ("one/two", "is not I/N"),
    ] {
        let output = rsslab(&[
            "run",
            &path,
            "--shard",
            shard,
            "--out",
            out.to_str().unwrap(),
        ]);
        let stderr = stderr_of(&output);
        assert_eq!(output.status.code(), Some(2), "{shard}: {stderr}");
        assert!(
            stderr.contains("--shard") && stderr.contains(shard) && stderr.contains(wanted),
            "{shard}: {stderr}"
        );
        assert!(!out.exists(), "nothing is written for {shard}");
    }
}

#[test]
fn a_shard_without_runs_leaves_an_empty_lab_that_merges() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "good.toml", GOOD);
    let out = dir.path().join("shard-2");
    // One kernel, one run: shard 2 of 2 has nothing to do, so no VM and no kernel is needed.
    let output = rsslab(&[
        "run",
        &path,
        "--kernel",
        "6.1",
        "--shard",
        "2/2",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("shard 2/2: 0 of the plan's 1 runs"),
        "{stderr}"
    );
    assert!(out.join("runs").is_dir());
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["runs"].as_array().unwrap().len(), 0);
    assert!(out.join("summary.md").is_file() && out.join("junit.xml").is_file());

    let shard_1 = dir.path().join("shard-1");
    fake_record(&shard_1);
    let merged = dir.path().join("merged");
    let output = rsslab(&[
        "merge",
        shard_1.to_str().unwrap(),
        out.to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert!(merged.join("runs/good/6.1/run.json").is_file());
}

#[test]
fn merge_joins_two_shards_into_one_lab_and_leaves_them_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, out) = (
        dir.path().join("shard-1"),
        dir.path().join("shard-2"),
        dir.path().join("merged"),
    );
    fake_record_on(&a, "6.1");
    fake_record_on(&b, "7.2");
    for shard in [&a, &b] {
        let output = rsslab(&["report", shard.to_str().unwrap()]);
        assert!(output.status.success(), "{}", stderr_of(&output));
    }
    let before = (tree(&a), tree(&b));

    let output = rsslab(&[
        "merge",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("merged 2 runs of 2 directories"),
        "{stderr}"
    );
    assert_eq!((tree(&a), tree(&b)), before, "inputs are only read");

    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let dirs: Vec<&str> = results["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| run["dir"].as_str().unwrap())
        .collect();
    assert_eq!(dirs, ["runs/good/6.1", "runs/good/7.2"]);
    for run in &dirs {
        for file in ["run.json", "samples.jsonl", "console.log"] {
            assert!(out.join(run).join(file).is_file(), "{run}/{file}");
        }
    }
    assert_eq!(
        std::fs::read_to_string(out.join("runs/good/scenario.toml")).unwrap(),
        GOOD
    );
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("7.2.0-50-cloud-amd64") && html.contains("6.1.0-50-cloud-amd64"));
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase ").count(), 2, "{junit}");
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("**2 runs**: 2 ok"), "{summary}");
}

#[test]
fn merge_exits_1_when_a_merged_expectation_failed() {
    use rsslab::scenario::expect::{Check, Expectation};
    let dir = tempfile::tempdir().unwrap();
    let (a, b, out) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("out"),
    );
    fake_record_on(&a, "6.1");
    fake_record_on(&b, "7.2");
    let run_json = b.join("runs/good/7.2/run.json");
    let mut record: RunRecord =
        serde_json::from_str(&std::fs::read_to_string(&run_json).unwrap()).unwrap();
    record.expectations = vec![Expectation {
        name: "the service exits".into(),
        when: Default::default(),
        check: Check::Outcome {
            process: "service".into(),
            outcomes: vec![ProcessOutcome::Exited(0)],
        },
    }];
    record.write(run_json.parent().unwrap()).unwrap();
    let output = rsslab(&[
        "merge",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("1 expectation failed"), "{stderr}");
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        summary.contains("*the service exits*: service ended running-at-end"),
        "{summary}"
    );
}

#[test]
fn merge_refuses_clashing_runs_and_scenarios_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    fake_record_on(&a, "6.1");
    fake_record_on(&b, "6.1");
    let merge = |out: &str| {
        let out = dir.path().join(out);
        let output = rsslab(&[
            "merge",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        (output, out)
    };
    // The same shard twice, byte for byte: fine.
    let (output, _) = merge("same");
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));

    // The same run with another console: each run belongs to one shard.
    std::fs::write(b.join("runs/good/6.1/console.log"), "another boot\n").unwrap();
    let (output, out) = merge("clash");
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    for part in [
        "runs/good/6.1",
        "console.log differs",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ] {
        assert!(stderr.contains(part), "{part}: {stderr}");
    }
    assert!(!out.exists());

    // Another version of the scenario in one shard.
    std::fs::remove_dir_all(b.join("runs/good/6.1")).unwrap();
    fake_record_on(&b, "7.2");
    std::fs::write(b.join("runs/good/scenario.toml"), GOOD.replace("5s", "6s")).unwrap();
    let (output, out) = merge("versions");
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("scenario good") && stderr.contains("runs/good/scenario.toml differ"),
        "{stderr}"
    );
    assert!(!out.exists());

    // Not a lab, and an output inside an input.
    let output = rsslab(&["merge", dir.path().to_str().unwrap(), "--out", "x"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).contains("not a lab output directory"));
    let inside = a.join("merged");
    let output = rsslab(&[
        "merge",
        a.to_str().unwrap(),
        "--out",
        inside.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr_of(&output).contains("inside the input"),
        "{}",
        stderr_of(&output)
    );
    assert!(!inside.exists());
}
