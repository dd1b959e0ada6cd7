//! `rsslab export` checked by the tools its formats are for: Prometheus' `promtool` lints the
//! Prometheus text and backfills a TSDB block from the OpenMetrics text, pandas' `read_csv`
//! reads the CSV with no options (and Python's csv reader too, RFC 4180). `just test-deps`
//! installs promtool (Debian's `prometheus`) and pandas (`python3-pandas`). And the focused report
//! (`rsslab report DIR --scenario ID`), the one to attach to a postmortem.

mod support;

use std::path::Path;
use std::process::Command;

use rsslab::records::testing::{fake_pod_run, fake_run, write_lab};
use support::rsslab;

fn lab(dir: &Path) {
    let mut runs = vec![
        fake_run("go-madvfree-balloon", "5.10", "free"),
        fake_run("go-madvfree-balloon", "7.2", "dontneed"),
    ];
    runs[0].record.variant_label = "go=1.15,GODEBUG=madvdontneed=0".into();
    for (index, sample) in runs[1].samples.iter_mut().enumerate() {
        sample.cgroup.insert("pgscan".into(), 100 * index as u64);
        sample
            .cgroup
            .insert("psi_some_total".into(), 1000 * index as u64);
    }
    write_lab(dir, &mut runs, 100).unwrap();
}

/// A lab with pods: with and without MemoryQoS.
fn pods_lab(dir: &Path) {
    let mut runs = vec![
        fake_pod_run("pod-group-oom-kill", "6.1", true),
        fake_pod_run("pod-group-oom-kill", "6.1", false),
    ];
    write_lab(dir, &mut runs, 100).unwrap();
}

fn export(dir: &Path, format: &str) -> std::path::PathBuf {
    let output = rsslab(&["export", dir.to_str().unwrap(), "--format", format]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().into()
}

fn promtool() -> Command {
    let found = Command::new("promtool").arg("--version").output();
    assert!(
        found.is_ok_and(|output| output.status.success()),
        "promtool is missing: `just test-deps` installs it (Debian's prometheus package)"
    );
    Command::new("promtool")
}

#[test]
fn promtool_lints_the_prometheus_text_without_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    lab(dir.path());
    let path = export(dir.path(), "prometheus");
    let text = std::fs::File::open(&path).unwrap();
    let output = promtool()
        .args(["check", "metrics"])
        .stdin(text)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn promtool_backfills_a_tsdb_block_from_the_openmetrics_text() {
    let dir = tempfile::tempdir().unwrap();
    lab(dir.path());
    let path = export(dir.path(), "openmetrics");
    let tsdb = dir.path().join("tsdb");
    let output = promtool()
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&path)
        .arg(&tsdb)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{said}");
    // One block (the runs are minutes apart, within one 2-hour block), with the series.
    let blocks: Vec<_> = std::fs::read_dir(&tsdb)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("meta.json").is_file())
        .collect();
    assert_eq!(blocks.len(), 1, "{said}");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(blocks[0].join("meta.json")).unwrap())
            .unwrap();
    let samples = meta["stats"]["numSamples"].as_u64().unwrap();
    let lines = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with('#'))
        .count() as u64;
    assert_eq!(samples, lines, "every point ingested");
}

/// The pods' and containers' families, and cAdvisor's, lint clean and backfill whole.
#[test]
fn promtool_reads_pod_and_container_families_and_cadvisors_names() {
    let dir = tempfile::tempdir().unwrap();
    pods_lab(dir.path());
    let path = export(dir.path(), "prometheus");
    let text = std::fs::read_to_string(&path).unwrap();
    for family in [
        "# TYPE rsslab_pod_working_set_bytes gauge",
        "# TYPE rsslab_container_rss_bytes gauge",
        "# TYPE rsslab_container_oom_kill_total counter",
        "# TYPE container_memory_working_set_bytes gauge",
        "# TYPE container_memory_rss gauge",
        "# TYPE rsslab_process_oom_score gauge",
    ] {
        assert!(text.contains(family), "no {family:?}");
    }
    assert!(text.contains(",pod=\"web\",container=\"log-shipper\"} "));
    let output = promtool()
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&path).unwrap())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let path = export(dir.path(), "openmetrics");
    let output = promtool()
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&path)
        .arg(dir.path().join("tsdb"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_csv_reads_back_with_a_standard_reader() {
    let dir = tempfile::tempdir().unwrap();
    lab(dir.path());
    let path = export(dir.path(), "csv");
    let script = r#"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
variants = sorted({row["variant"] for row in rows})
print(len(rows), variants[0], variants[1], sum(1 for r in rows if r["metric"] == "cgroup.pgscan"))
"#;
    let output = Command::new("python3")
        .args(["-c", script])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let said = String::from_utf8(output.stdout).unwrap();
    let lines = std::fs::read_to_string(&path).unwrap().lines().count() - 1;
    assert_eq!(
        said.trim(),
        format!("{lines} go=1.15,GODEBUG=madvdontneed=0 release=dontneed 120")
    );
}

#[test]
fn pandas_reads_the_csv_with_no_options() {
    let dir = tempfile::tempdir().unwrap();
    lab(dir.path());
    let path = export(dir.path(), "csv");
    let script = r#"
import sys
import pandas
frame = pandas.read_csv(sys.argv[1])
print(len(frame), list(frame.columns))
print(frame["t_s"].dtype, frame["value"].dtype, frame["repeat"].dtype)
print(sorted(frame["variant"].unique()))
pgscan = frame[(frame.metric == "cgroup.pgscan")]
print(pgscan["value"].max(), pgscan["kernel"].unique().tolist(), sorted(frame["kernel"].unique()))
"#;
    // Debian's python, where python3-pandas installs.
    let output = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(&path)
        .output()
        .expect("/usr/bin/python3: `just test-deps` installs python3-pandas");
    assert!(
        output.status.success(),
        "pandas: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let said = String::from_utf8(output.stdout).unwrap();
    let rows = std::fs::read_to_string(&path).unwrap().lines().count() - 1;
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "{rows} ['scenario', 'kernel', 'variant', 'repeat', 'run', 't_s', 'metric', 'value']"
        )
    );
    assert_eq!(
        lines[1], "float64 int64 int64",
        "numbers are read as numbers"
    );
    assert_eq!(
        lines[2], "['go=1.15,GODEBUG=madvdontneed=0', 'release=dontneed']",
        "a variant with a comma stays one field"
    );
    assert_eq!(
        lines[3], "11900 ['v7.2'] ['v5.10', 'v7.2']",
        "kernel ids stay text (5.10 is not 5.1)"
    );
}

#[test]
fn pandas_reads_the_pods_and_containers_columns() {
    let dir = tempfile::tempdir().unwrap();
    pods_lab(dir.path());
    let path = export(dir.path(), "csv");
    let script = r#"
import sys
import pandas
frame = pandas.read_csv(sys.argv[1])
api = frame[frame.metric == "container.web.api.working_set"]
pod = frame[frame.metric == "pod.web.working_set"]
print(len(api) > 0, len(pod) == 2 * len(frame.t_s.unique()), (pod["value"].values >= 0).all())
print(sorted({m.split(".")[0] for m in frame.metric.unique()}))
"#;
    let output = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(&path)
        .output()
        .expect("/usr/bin/python3: `just test-deps` installs python3-pandas");
    assert!(
        output.status.success(),
        "pandas: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let said = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        said,
        "True True True\n['cgroup', 'container', 'guest', 'pod', 'process']\n"
    );
}

#[test]
fn a_focused_report_holds_one_scenario_and_its_records_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut runs = vec![
        fake_run("go-madvfree-balloon", "6.1", "free"),
        fake_run("heap-churn-madvise", "6.1", "dontneed"),
    ];
    write_lab(dir.path(), &mut runs, 100).unwrap();
    let lab = dir.path().to_str().unwrap();
    assert!(rsslab(&["report", lab]).status.success());
    let output = rsslab(&["report", lab, "--scenario", "heap-churn-madvise"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = dir.path().join("index-heap-churn-madvise.html");
    assert_eq!(
        String::from_utf8(output.stdout).unwrap().trim(),
        path.to_str().unwrap()
    );
    let focused = std::fs::read_to_string(&path).unwrap();
    let whole = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
    assert!(focused.contains("heap-churn-madvise"));
    assert!(
        !focused.contains("go-madvfree-balloon"),
        "only its scenario"
    );
    assert!(focused.len() < whole.len());
    // Its embedded records are that scenario's alone: unpacked, they rebuild its report.
    let unpacked = dir.path().join("unpacked");
    let output = rsslab(&[
        "unpack",
        path.to_str().unwrap(),
        "--out",
        unpacked.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(unpacked.join("runs/heap-churn-madvise").is_dir());
    assert!(!unpacked.join("runs/go-madvfree-balloon").exists());
    // A scenario the lab did not run is bad input, naming those it did.
    let output = rsslab(&["report", lab, "--scenario", "nope"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("go-madvfree-balloon, heap-churn-madvise"),
        "{stderr}"
    );
}
