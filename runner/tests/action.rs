//! The GitHub Action's scripts (`action.yml`, `scripts/action/`) on real labs: the verdict and
//! outputs `lab.sh` gives for a lab that holds, one whose expectation fails, one that regressed
//! against its baseline (given as the report the action uploads) and bad input; and that
//! `container.sh` hands the container every path the lab and GitHub's files need. Boots VMs
//! (the `vm` test group), one short run each.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/action")
        .join(name)
}

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_rsslab"))
        .parent()
        .expect("the binary's directory")
        .to_owned()
}

/// What one run of the action's lab step left: its exit code, outputs and job summary.
struct Step {
    output: Output,
    outputs: BTreeMap<String, String>,
    summary: String,
}

impl Step {
    fn output(&self, key: &str) -> &str {
        self.outputs
            .get(key)
            .unwrap_or_else(|| panic!("no output {key}: {:?}", self.outputs))
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
}

/// Runs `script` (with `args`) in `workspace` as the action's Lab step does, `inputs` as
/// `INPUT_*` variables, and reads what it wrote into GITHUB_OUTPUT and GITHUB_STEP_SUMMARY.
fn step(workspace: &Path, script: &str, args: &[&str], inputs: &[(&str, &str)]) -> Step {
    let github = workspace.join("github");
    std::fs::create_dir_all(&github).unwrap();
    let outputs_file = github.join("output");
    let summary_file = github.join("summary");
    let _ = std::fs::remove_file(&outputs_file);
    let _ = std::fs::remove_file(&summary_file);
    let mut command = Command::new(repo().join("scripts/action").join(script));
    command
        .args(args)
        .current_dir(workspace)
        .env("RSSLAB_BIN_DIR", bin_dir())
        .env("GITHUB_OUTPUT", &outputs_file)
        .env("GITHUB_STEP_SUMMARY", &summary_file)
        .env("GITHUB_WORKSPACE", workspace)
        .env("RUNNER_TEMP", &github);
    for (key, value) in inputs {
        command.env(format!("INPUT_{key}"), value);
    }
    let output = command.output().expect("running the action's script");
    let outputs = std::fs::read_to_string(&outputs_file)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    let summary = std::fs::read_to_string(&summary_file).unwrap_or_default();
    Step {
        output,
        outputs,
        summary,
    }
}

fn lab(workspace: &Path, inputs: &[(&str, &str)]) -> Step {
    step(workspace, "lab.sh", &[], inputs)
}

#[test]
fn a_lab_that_holds_passes_and_compares_with_the_report_it_uploaded() {
    let workspace = tempfile::tempdir().unwrap();
    let holds = fixture("holds.toml");
    let first = lab(
        workspace.path(),
        &[
            ("SCENARIOS", holds.to_str().unwrap()),
            ("KERNELS", "6.12"),
            ("OUT", "lab"),
        ],
    );
    assert_eq!(first.output.status.code(), Some(0), "{}", first.stderr());
    assert_eq!(first.output("verdict"), "pass");
    assert_eq!(first.output("exit-code"), "0");
    assert_eq!(first.output("failed-expectations"), "0");
    assert_eq!(first.output("regressions"), "0");
    let report_dir = workspace.path().join("lab").canonicalize().unwrap();
    assert_eq!(Path::new(first.output("report-dir")), report_dir);
    assert!(Path::new(first.output("report")).is_file());
    assert!(
        first.summary.contains("| action-holds |") && first.summary.contains("1 passed, 0 failed"),
        "the job summary is the lab's summary.md: {}",
        first.summary
    );

    // The baseline as the action's artifact holds it: the report alone, records embedded.
    let artifact = workspace.path().join("artifact");
    std::fs::create_dir(&artifact).unwrap();
    std::fs::copy(report_dir.join("index.html"), artifact.join("index.html")).unwrap();
    let again = lab(
        workspace.path(),
        &[
            ("SCENARIOS", holds.to_str().unwrap()),
            ("KERNELS", "6.12"),
            ("OUT", "again"),
            ("BASELINE", "artifact"),
            ("ARGS", "--boot 'cold'"),
        ],
    );
    assert_eq!(again.output.status.code(), Some(0), "{}", again.stderr());
    assert_eq!(again.output("verdict"), "pass");
    assert_eq!(again.output("regressions"), "0");
    assert!(
        again.summary.contains("Changes against the baseline"),
        "{}",
        again.summary
    );
    assert!(workspace.path().join("again/comparison.json").is_file());
}

#[test]
fn a_failed_expectation_a_regression_and_bad_input_each_have_their_verdict() {
    let workspace = tempfile::tempdir().unwrap();
    let fails = lab(
        workspace.path(),
        &[
            (
                "SCENARIOS",
                fixture("expectation-fails.toml").to_str().unwrap(),
            ),
            ("OUT", "fails"),
        ],
    );
    assert_eq!(fails.output.status.code(), Some(1), "{}", fails.stderr());
    assert_eq!(fails.output("verdict"), "expectation-failed");
    assert_eq!(fails.output("failed-expectations"), "1");
    assert!(fails.summary.contains("action-fails"), "{}", fails.summary);

    // The same scenario with four times the heap, against a lab of the first: RSS grew.
    let holds = fixture("holds.toml");
    let base = lab(
        workspace.path(),
        &[
            ("SCENARIOS", holds.to_str().unwrap()),
            ("KERNELS", "6.12"),
            ("OUT", "base"),
        ],
    );
    assert_eq!(base.output("verdict"), "pass", "{}", base.stderr());
    let bigger = workspace.path().join("bigger.toml");
    let text = std::fs::read_to_string(&holds).unwrap();
    std::fs::write(
        &bigger,
        text.replace(
            r#"heap = "24MiB", live = "24MiB""#,
            r#"heap = "96MiB", live = "96MiB""#,
        ),
    )
    .unwrap();
    let grew = lab(
        workspace.path(),
        &[
            ("SCENARIOS", "bigger.toml"),
            ("KERNELS", "6.12"),
            ("OUT", "grew"),
            ("BASELINE", "base/results.json"),
        ],
    );
    assert_eq!(grew.output.status.code(), Some(1), "{}", grew.stderr());
    assert_eq!(grew.output("verdict"), "regression");
    assert_eq!(grew.output("failed-expectations"), "0");
    let regressions: u32 = grew.output("regressions").parse().unwrap();
    assert!(regressions >= 1, "{:?}", grew.outputs);
    assert!(grew.summary.contains("Changes against the baseline"));

    std::fs::write(
        workspace.path().join("bad.toml"),
        "[scenario]\nid = \"bad\"\ntitle = \"bad\"\nbogus = 1\n",
    )
    .unwrap();
    let bad = lab(
        workspace.path(),
        &[("SCENARIOS", "bad.toml"), ("OUT", "bad")],
    );
    assert_eq!(bad.output.status.code(), Some(2));
    assert_eq!(bad.output("verdict"), "bad-input");
    assert!(
        bad.summary.contains("bad-input") && bad.summary.contains("bad.toml:4:1"),
        "without a summary.md the job summary shows what rsslab said: {}",
        bad.summary
    );
}

/// A stand-in `docker` that records its arguments, checks that the working directory and every
/// path the lab step hands over are mounted, then runs the container's command on this host
/// (with `apt-get` a no-op: the host has what `just test` installed).
const DOCKER: &str = r#"#!/usr/bin/env bash
set -euo pipefail
printf '%s\n' "$@" > "$RECORD"
volumes=(); envs=(); workdir=""
while [ "$1" != "$IMAGE" ]; do
  case "$1" in
    --volume) volumes+=("${2%%:*}"); shift 2 ;;
    --env) case "$2" in *=*) export "$2" ;; esac; envs+=("${2%%=*}"); shift 2 ;;
    --workdir) workdir="$2"; shift 2 ;;
    --device) shift 2 ;;
    *) shift ;;
  esac
done
shift
mounted() { for v in "${volumes[@]}"; do case "$1/" in "$v"/*) return 0 ;; esac; done; echo "not mounted: $1" >&2; exit 9; }
mounted "$workdir"
for path in "$GITHUB_OUTPUT" "$GITHUB_STEP_SUMMARY" "$RSSLAB_BIN_DIR" "$RSSLAB_CACHE_DIR" "$ACTION"; do mounted "$path"; done
cd "$workdir"
PATH="$STUBS:$PATH" "$@"
"#;

#[test]
fn the_container_step_mounts_every_path_it_hands_over_and_runs_the_lab() {
    let workspace = tempfile::tempdir().unwrap();
    let stubs = workspace.path().join("stubs");
    std::fs::create_dir(&stubs).unwrap();
    let write_program = |name: &str, text: &str| {
        let path = stubs.join(name);
        std::fs::write(&path, text).unwrap();
        Command::new("chmod").arg("+x").arg(&path).status().unwrap();
    };
    write_program("docker", DOCKER);
    write_program("apt-get", "#!/bin/sh\nexit 0\n");
    write_program("chown", "#!/bin/sh\nexit 0\n");
    let record = workspace.path().join("docker-args");
    let cache = std::env::var("RSSLAB_CACHE_DIR").unwrap_or_else(|_| {
        let home = std::env::var("HOME").expect("HOME");
        format!("{home}/.cache/rsslab")
    });
    let path = format!("{}:{}", stubs.display(), std::env::var("PATH").unwrap());
    let holds = fixture("holds.toml");
    let mut command = Command::new(repo().join("scripts/action/container.sh"));
    let github = workspace.path().join("github");
    std::fs::create_dir(&github).unwrap();
    command
        .args(["debian:trixie", repo().to_str().unwrap()])
        .current_dir(workspace.path())
        .env("PATH", &path)
        .env("STUBS", &stubs)
        .env("RECORD", &record)
        .env("IMAGE", "debian:trixie")
        .env("GITHUB_WORKSPACE", workspace.path())
        .env("RUNNER_TEMP", &github)
        .env("GITHUB_OUTPUT", github.join("output"))
        .env("GITHUB_STEP_SUMMARY", github.join("summary"))
        .env("RSSLAB_BIN_DIR", bin_dir())
        .env("RSSLAB_GUEST_BIN_DIR", "")
        .env("RSSLAB_CACHE_DIR", &cache)
        .env("RSSLAB_CATALOGUE", repo().join("vm-images/kernels.toml"))
        .env("INPUT_SCENARIOS", &holds)
        .env("INPUT_KERNELS", "6.12")
        .env("INPUT_OUT", "lab");
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let outputs = std::fs::read_to_string(github.join("output")).unwrap();
    assert!(outputs.contains("verdict=pass"), "{outputs}");
    let args = std::fs::read_to_string(&record).unwrap();
    let args: Vec<&str> = args.lines().collect();
    assert_eq!(args[..2], ["run", "--rm"], "{args:?}");
    assert_eq!(
        args.contains(&"--device"),
        Path::new("/dev/kvm").exists(),
        "/dev/kvm goes in where the runner has one: {args:?}"
    );
    for name in [
        "INPUT_SCENARIOS",
        "INPUT_OUT",
        "GITHUB_OUTPUT",
        "RSSLAB_CATALOGUE",
    ] {
        assert!(args.contains(&name), "--env {name}: {args:?}");
    }
    let image_at = args.iter().position(|a| *a == "debian:trixie").unwrap();
    assert_eq!(args[image_at + 1], "bash", "{args:?}");
}
