//! `rsslab run --resume DIR` on lab directories made by hand: what it keeps, what it refuses,
//! and that it boots nothing when nothing is missing. (Resuming real interrupted and broken
//! labs is tested in `tests/faults.rs`.)

mod support;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::Digest;
use support::rsslab_with_env;

const SCENARIO: &str = r#"[scenario]
id = "good"
title = "good"

[sample]
duration = "5s"

[[process]]
name = "service"
workload = "heap-churn"
args = { heap = "64MiB" }
"#;

/// A lab directory as `rsslab run good.toml --kernel 6.1 --out DIR` leaves it, with run
/// `runs/good/6.1` ended as `outcome`; returns the directory and the scenario file.
fn lab_dir(root: &Path, outcome: &str) -> (PathBuf, PathBuf) {
    let scenario = root.join("good.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let out = root.join("out");
    let run_dir = out.join("runs/good/6.1");
    std::fs::create_dir_all(&run_dir).unwrap();
    std::fs::write(out.join("runs/good/scenario.toml"), SCENARIO).unwrap();
    let lab = json!({
        "scenarios": [{"id": "good", "path": scenario, "file": scenario}],
        "kernels": ["6.1"], "repeat": 1, "shard": null, "baseline": null
    });
    std::fs::write(out.join("lab.json"), lab.to_string()).unwrap();
    let sha = hex::encode(sha2::Sha256::digest(SCENARIO));
    write_record(&run_dir, outcome, &sha);
    (out, scenario)
}

fn write_record(run_dir: &Path, outcome: &str, scenario_sha256: &str) {
    let record = json!({
        "scenario": "good", "title": "good", "kernel": "6.1",
        "kernel_release": "6.1.0-50-cloud-amd64", "variant": {}, "variant_label": "",
        "accel": "tcg", "outcome": outcome,
        "reason": if outcome == "ok" { Value::Null } else { json!("it broke") },
        "attempts": 1, "processes": {}, "cgroup_peak": {}, "events": [], "hello": null,
        "timing": {"started_at": "2026-01-01T00:00:00Z", "wall_ms": 9000,
                   "boot_to_first_sample_ms": 4000},
        "provenance": {"kernel_packages": [], "qemu_version": "QEMU emulator version 10.0.2",
                       "host": "h", "rsslab_version": "0.1.0", "git_revision": null,
                       "scenario_sha256": scenario_sha256, "scenario_path": "good.toml",
                       "image_digest": "d"},
        "spec": {"run_id": "good/6.1", "sample_every": "250ms", "duration": "5s",
                 "processes": [{"name": "service", "workload": "heap-churn",
                                "args": {"heap": 67108864}}]},
        "dir": "runs/good/6.1"
    });
    std::fs::write(run_dir.join("run.json"), record.to_string()).unwrap();
    std::fs::write(run_dir.join("samples.jsonl"), "").unwrap();
    std::fs::write(run_dir.join("console.log"), "Linux version 6.1\n").unwrap();
}

/// `rsslab run --resume OUT ARGS`, with a QEMU that does not exist: nothing may boot.
fn resume(out: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["run", "--resume", out.to_str().unwrap(), "--accel", "tcg"];
    all.extend(args);
    rsslab_with_env(&all, &[("RSSLAB_QEMU", "/nonexistent/qemu")])
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_finished_lab_is_kept_and_only_its_outputs_are_rewritten() {
    for outcome in ["ok", "unsupported"] {
        let root = tempfile::tempdir().unwrap();
        let (out, _) = lab_dir(root.path(), outcome);
        let record = std::fs::read(out.join("runs/good/6.1/run.json")).unwrap();
        let output = resume(&out, &[]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert!(
            stderr(&output).contains("1 of 1 runs finished (kept), 0 to run"),
            "{}",
            stderr(&output)
        );
        assert_eq!(
            std::fs::read(out.join("runs/good/6.1/run.json")).unwrap(),
            record
        );
        let results: Value =
            serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
        assert_eq!(results["runs"][0]["outcome"], outcome);
        assert!(out.join("index.html").is_file());
    }
}

#[test]
fn broken_runs_are_run_again() {
    for outcome in ["infra-error", "vm-timeout", "kernel-panic"] {
        let root = tempfile::tempdir().unwrap();
        let (out, _) = lab_dir(root.path(), outcome);
        let output = resume(&out, &[]);
        let text = stderr(&output);
        assert!(
            text.contains(&format!(
                "0 of 1 runs finished (kept), 1 to run (1 {outcome})"
            )),
            "{outcome}: {text}"
        );
        // It tried to boot (and the missing QEMU made the run an infra-error).
        assert_eq!(output.status.code(), Some(3), "{outcome}: {text}");
        let record: Value =
            serde_json::from_slice(&std::fs::read(out.join("runs/good/6.1/run.json")).unwrap())
                .unwrap();
        assert!(
            record["reason"]
                .as_str()
                .unwrap()
                .contains("/nonexistent/qemu"),
            "{outcome}: {record:#}"
        );
    }
}

#[test]
fn a_run_without_a_record_is_run_again_and_its_leftovers_cleared() {
    let root = tempfile::tempdir().unwrap();
    let (out, _) = lab_dir(root.path(), "ok");
    let run_dir = out.join("runs/good/6.1");
    std::fs::remove_file(run_dir.join("run.json")).unwrap();
    std::fs::write(run_dir.join("console.attempt1.log"), "an old attempt\n").unwrap();
    let output = resume(&out, &[]);
    assert!(
        stderr(&output).contains("1 to run (1 without a record)"),
        "{}",
        stderr(&output)
    );
    assert!(!run_dir.join("console.attempt1.log").exists());
    assert!(run_dir.join("run.json").is_file(), "a new record");
}

#[test]
fn a_scenario_changed_since_is_refused_by_name() {
    let root = tempfile::tempdir().unwrap();
    let (out, scenario) = lab_dir(root.path(), "infra-error");
    std::fs::write(&scenario, SCENARIO.replace("64MiB", "96MiB")).unwrap();
    let output = resume(&out, &[]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.contains("scenario good changed since the lab started")
            && text.contains(scenario.to_str().unwrap())
            && text.contains("new --out"),
        "{text}"
    );
    // Gone is not changed: the copy is what ran, and the lab plans from it.
    std::fs::remove_file(&scenario).unwrap();
    assert!(stderr(&resume(&out, &[])).contains("1 to run"));
}

#[test]
fn a_record_of_another_version_of_the_scenario_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let (out, _) = lab_dir(root.path(), "ok");
    write_record(&out.join("runs/good/6.1"), "ok", &"0".repeat(64));
    let output = resume(&out, &[]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.contains("ran another version of scenario good"),
        "{text}"
    );
}

#[test]
fn what_resume_cannot_do_is_bad_input() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("runs")).unwrap();
    let output = resume(root.path(), &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no lab.json there"),
        "{}",
        stderr(&output)
    );

    let (out, scenario) = lab_dir(root.path(), "ok");
    for extra in [
        vec!["--kernel", "6.1"],
        vec!["--repeat", "2"],
        vec!["--shard", "1/2"],
        vec!["--out", "elsewhere"],
        vec![scenario.to_str().unwrap()],
    ] {
        let output = resume(&out, &extra);
        assert_eq!(output.status.code(), Some(2), "{extra:?}");
        assert!(
            stderr(&output).contains("cannot be used with"),
            "{extra:?}: {}",
            stderr(&output)
        );
    }
    std::fs::remove_file(out.join("runs/good/scenario.toml")).unwrap();
    let output = resume(&out, &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("its copy"), "{}", stderr(&output));
}
