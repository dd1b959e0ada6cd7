//! Containers that end and start again, in real guests (Debian's 6.1, cgroup v2 and v1): the
//! runtime's reason, the kubelet's back-off between restarts (shortened with the kubelet's own
//! settings), a new cgroup per restart with the old container's page cache still charged to
//! the pod, and a `Never` policy that stays dead. The delays expected are worked out here from
//! the kubelet's rules, not taken from rsslab. Like the other VM tests they run one at a time
//! (nextest group `vm`).

mod support;

use serde_json::Value;
use support::lab::read_json;
use support::{rsslab, samples_of};

const MIB: u64 = 1 << 20;

/// `batch`: an image-batch worker whose heap grows 16MiB a round past its 64MiB limit while it
/// re-reads a 16MiB file (kept across lives), restartPolicy Always. `reader`: reads a 16MiB file
/// (written in its first life) and exits 0, restartPolicy Always. `once`: a hog over its limit
/// with restartPolicy Never. Kubernetes 1.35 with ReduceDefaultCrashLoopBackOffDecay
/// (1s first back-off) and maxContainerRestartPeriod 2s.
const RESTARTS: &str = r#"
[scenario]
id = "restarts"
title = "restarts with the kubelet's back-off"

[vm]
kernels = ["6.1"]
memory = "512MiB"
disk = "128MiB"

[node]
kubernetes = "1.35"
feature_gates = { ReduceDefaultCrashLoopBackOffDecay = true }
max_container_restart_period = "2s"

[[pod]]
name = "batch"
[[pod.container]]
name = "worker"
requests = { memory = "32MiB" }
limits = { memory = "64MiB" }

[[pod]]
name = "reader"
[[pod.container]]
name = "reader"

[[pod]]
name = "once"
restart_policy = "Never"
[[pod.container]]
name = "job"
limits = { memory = "32MiB" }

[sample]
every = "100ms"
duration = "9s"

[[process]]
name = "worker"
container = "batch/worker"
workload = "file-io"
args = { files = 1, file_size = "16MiB", reuse = true, repeat = 1000, every = "50ms", anon = "8MiB", anon_per_round = "16MiB" }

[[process]]
name = "reader"
container = "reader/reader"
workload = "file-io"
args = { files = 1, file_size = "16MiB", dir = "/scratch/reader", reuse = true, exit = true }

[[process]]
name = "after-restart"
workload = "exec"
start = { after = "batch/worker", phase = "restarted", delay = "100ms" }
args = { command = ["/bin/cat", "/proc/self/cgroup"] }

[[process]]
name = "job"
container = "once/job"
workload = "hog"
args = { size = "64MiB" }

[matrix]
"node.cgroup_version" = [2, 1]
"#;

/// The run's events about container `key`, in order.
fn container_events<'a>(run: &'a Value, key: &str) -> Vec<&'a Value> {
    run["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["container"] == key)
        .collect()
}

fn t(event: &Value) -> u64 {
    event["t_ms"].as_u64().unwrap()
}

#[test]
fn an_oom_killed_container_is_restarted_with_the_kubelets_back_off_and_never_means_never() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("restarts.toml");
    std::fs::write(&scenario, RESTARTS).unwrap();
    let out = dir.path().join("out");
    let output = rsslab(&[
        "run",
        scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results = read_json(&out.join("results.json"));
    for version in [2, 1] {
        let what = format!("cgroup v{version}");
        let run_dir = out
            .join("runs")
            .join(format!("restarts/6.1/cgroup_version={version}"));
        let run = read_json(&run_dir.join("run.json"));
        assert_eq!(run["outcome"], "ok", "{what}: {}", run["reason"]);

        // The worker: OOMKilled (137) each time, restarted at once the first time, then after
        // 1s, 2s, 2s ...: min(10s, 2s) = 2s is the cap, and the reduced decay starts at 1s.
        let events = container_events(&run, "batch/worker");
        let ends: Vec<&Value> = events
            .iter()
            .copied()
            .filter(|e| e["event"] == "container_terminated")
            .collect();
        assert!(ends.len() >= 3, "{what}: {events:?}");
        for end in &ends {
            assert_eq!(end["reason"], "OOMKilled", "{what}: {end}");
            assert_eq!(end["exit_code"], 137, "{what}: {end}");
        }
        let mut expected_delays = vec![0u64, 1_000, 2_000, 2_000, 2_000, 2_000];
        expected_delays.truncate(ends.len());
        // Each end with its back-off (none: at once) and its restart, in event order.
        let mut lives: Vec<(u64, u64, Option<&Value>)> = Vec::new();
        for event in &events {
            match event["event"].as_str().unwrap() {
                "container_terminated" => lives.push((t(event), 0, None)),
                "container_back_off" => {
                    lives.last_mut().unwrap().1 = event["delay_ms"].as_u64().unwrap()
                }
                "container_restarted" => lives.last_mut().unwrap().2 = Some(event),
                other => panic!("{what}: {other}"),
            }
        }
        let delays: Vec<u64> = lives.iter().map(|(_, delay, _)| *delay).collect();
        let mut restarts = Vec::new();
        for (end, delay, restart) in &lives {
            if let Some(restart) = restart {
                // At FinishedAt + the back-off, once the container's processes are reaped.
                let waited = t(restart) - end;
                assert!(
                    waited >= *delay && waited < delay + 1000,
                    "{what}: restart {waited} ms after the end, back-off {delay} ms"
                );
                restarts.push(restart["id"].as_str().unwrap().to_owned());
            }
        }
        assert_eq!(delays, expected_delays, "{what}: back-off delays");
        // Every restart is a new container: a new id each time.
        let mut unique = restarts.clone();
        unique.dedup();
        assert_eq!(unique.len(), restarts.len(), "{what}: {restarts:?}");
        // Each sample counts the restarts and kills that came before it (one in the same
        // millisecond may fall on either side of the sample).
        let samples = samples_of(&run_dir);
        for sample in &samples {
            let at = sample["t_ms"].as_u64().unwrap();
            let counts = |event: &str| {
                let of = events.iter().filter(|e| e["event"] == event);
                let before = of.clone().filter(|e| t(e) < at).count() as u64;
                before..=before + of.filter(|e| t(e) == at).count() as u64
            };
            let worker = &sample["container"]["batch/worker"];
            for (metric, event) in [
                ("restarts", "container_restarted"),
                ("terminated_oom_killed", "container_terminated"),
            ] {
                let value = worker[metric].as_u64().unwrap();
                assert!(
                    counts(event).contains(&value),
                    "{what}: {metric} {value} at {at} ms, events {:?}",
                    counts(event)
                );
            }
        }

        // The reader completes and is restarted all the same (Always). Its first life's page
        // cache stays charged to the pod: after the restart the pod holds the file (16MiB)
        // while the new container, which reads it again, has charged almost none of it.
        let reader = container_events(&run, "reader/reader");
        assert_eq!(reader[0]["reason"], "Completed", "{what}: {reader:?}");
        assert_eq!(reader[0]["exit_code"], 0, "{what}");
        let reader_restart = reader
            .iter()
            .find(|e| e["event"] == "container_restarted")
            .map(|e| t(e))
            .unwrap_or_else(|| panic!("{what}: {reader:?}"));
        let carried: Vec<(u64, u64)> = samples
            .iter()
            .filter(|s| s["t_ms"].as_u64().unwrap() > reader_restart + 300)
            .take(3)
            .map(|s| {
                (
                    s["pod"]["reader"]["file"].as_u64().unwrap(),
                    s["container"]["reader/reader"]["file"].as_u64().unwrap(),
                )
            })
            .collect();
        assert!(
            !carried.is_empty()
                && carried
                    .iter()
                    .all(|(pod, container)| *pod >= 15 * MIB && *container < 2 * MIB),
            "{what}: pod and new container's page cache after the restart: {carried:?}"
        );

        // The worker's page cache does not survive its kills: the OOM killer comes only once
        // reclaim has taken it. During each back-off the dead container's cgroup (still there
        // until the restart) and the pod hold (nearly) no file pages: the kill freed the heap,
        // and there was no cache left to keep.
        for (end, delay, _) in lives
            .iter()
            .filter(|(_, delay, restart)| *delay > 0 && restart.is_some())
        {
            let during: Vec<(u64, u64)> = samples
                .iter()
                .filter(|s| {
                    let t = s["t_ms"].as_u64().unwrap();
                    t > end + 150 && t < end + delay
                })
                .map(|s| {
                    (
                        s["container"]["batch/worker"]["file"].as_u64().unwrap(),
                        s["pod"]["batch"]["working_set"].as_u64().unwrap(),
                    )
                })
                .collect();
            assert!(
                !during.is_empty()
                    && during
                        .iter()
                        .all(|(file, pod)| *file < 4 * MIB && *pod < 4 * MIB),
                "{what}: file pages and the pod's working set during the back-off after {end} ms: {during:?}"
            );
        }

        // A process outside the pods started 100 ms after the worker's first restart.
        let started = run["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["event"] == "started" && e["process"] == "after-restart")
            .map(t)
            .unwrap_or_else(|| panic!("{what}: after-restart never started"));
        let first_restart = lives
            .iter()
            .find_map(|(_, _, restart)| restart.map(t))
            .unwrap();
        assert!(
            started >= first_restart + 100 && started < first_restart + 1000,
            "{what}: started at {started}, the worker restarted at {first_restart}"
        );

        // Never: OOMKilled once, no back-off, no restart.
        let once = container_events(&run, "once/job");
        assert_eq!(once.len(), 1, "{what}: {once:?}");
        assert_eq!(once[0]["reason"], "OOMKilled", "{what}");
        assert_eq!(
            samples.last().unwrap()["container"]["once/job"]["restarts"],
            0,
            "{what}"
        );

        // results.json lists each end with what the kubelet did.
        let summary = results["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| {
                r["dir"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!("cgroup_version={version}"))
            })
            .unwrap();
        let worker = &summary["pods"]["batch"]["containers"]["worker"];
        assert_eq!(
            worker["restarts"],
            restarts.len() as u64,
            "{what}: {worker}"
        );
        assert_eq!(
            worker["terminations"].as_array().unwrap().len(),
            ends.len(),
            "{what}: {worker}"
        );
        assert_eq!(
            summary["processes"]["job"]["outcome"], "oom-killed",
            "{what}"
        );
    }
}
