//! Pods in real guests (Debian's 6.1, which has both cgroup versions): the cgroup tree the
//! kubelet would build, read from inside each container and from the kernel's files; group
//! OOM kills against single-process kills; the OOM killer's choice between QoS classes. The
//! numbers expected are worked out here from the Kubernetes rules, not taken from rsslab.
//! Like the other VM tests they run one at a time (nextest group `vm`).

mod support;

use std::path::Path;

use serde_json::Value;
use support::lab::read_json;
use support::{rsslab, samples_of};

const MIB: u64 = 1 << 20;

/// A pod of each QoS class on Kubernetes 1.31 with MemoryQoS, `system_reserved` 32MiB, on
/// cgroup v2 and v1. Every container's main program holds a little memory; a second process
/// in it (what the main program starts) prints the cgroup it is in, from inside. `web` has an
/// init container that must complete first and a sidecar that runs beside the containers.
const TREE: &str = r#"
[scenario]
id = "pod-tree"
title = "the kubelet's tree, read back"

[vm]
kernels = ["6.1"]
memory = "512MiB"

[node]
kubernetes = "1.31"
system_reserved = "32MiB"
feature_gates = { MemoryQoS = true }

[[pod]]
name = "db"
[[pod.container]]
name = "db"
requests = { memory = "64MiB", cpu = "250m" }
limits = { memory = "64MiB", cpu = "250m" }

[[pod]]
name = "web"
[[pod.init_container]]
name = "migrate"
[[pod.init_container]]
name = "shipper"
restart_policy = "Always"
requests = { memory = "16MiB" }
limits = { memory = "32MiB" }
[[pod.container]]
name = "api"
requests = { memory = "64MiB", cpu = "250m" }
limits = { memory = "128MiB", cpu = 1 }
[[pod.container]]
name = "cache"
requests = { memory = "32MiB" }

[[pod]]
name = "batch"
[[pod.container]]
name = "job"

[sample]
every = "200ms"
duration = "60s"
until = ["db-probe:ended", "api-probe:ended", "cache-probe:ended", "shipper-probe:ended", "job-probe:ended"]
after = "200ms"

[[process]]
name = "migrate"
container = "web/migrate"
workload = "exec"
args = { command = ["/bin/cat", "/proc/self/cgroup"] }

[[process]]
name = "shipper"
container = "web/shipper"
workload = "hog"
args = { size = "4MiB" }
[[process]]
name = "shipper-probe"
container = "web/shipper"
workload = "exec"
start = { after = "shipper", phase = "holding" }
args = { command = ["/bin/cat", "/proc/self/cgroup"] }

[[process]]
name = "db"
container = "db/db"
workload = "hog"
args = { size = "4MiB" }
[[process]]
name = "db-probe"
container = "db/db"
workload = "exec"
start = { after = "db", phase = "holding" }
args = { command = ["/bin/cat", "/proc/self/cgroup"] }

[[process]]
name = "api"
container = "web/api"
workload = "hog"
args = { size = "4MiB" }
[[process]]
name = "api-probe"
container = "web/api"
workload = "exec"
start = { after = "api", phase = "holding" }
args = { command = ["/bin/cat", "/proc/self/cgroup"] }

[[process]]
name = "cache"
container = "web/cache"
workload = "hog"
args = { size = "4MiB" }
[[process]]
name = "cache-probe"
container = "web/cache"
workload = "exec"
start = { after = "cache", phase = "holding" }
args = { command = ["/bin/cat", "/proc/self/cgroup"] }

[[process]]
name = "job"
container = "batch/job"
workload = "hog"
args = { size = "4MiB" }
[[process]]
name = "job-probe"
container = "batch/job"
workload = "exec"
start = { after = "job", phase = "holding" }
args = { command = ["/bin/cat", "/proc/self/cgroup"] }

[matrix]
"node.cgroup_version" = [2, 1]
"#;

/// The value the run's `kubelet` events say was written into `file` of the cgroup at `path`,
/// and what the kernel's file read back.
fn written(run: &Value, path: &str, file: &str) -> Option<(String, String)> {
    run["events"].as_array().unwrap().iter().find_map(|event| {
        (event["event"] == "kubelet" && event["cgroup"] == path && event["file"] == file).then(
            || {
                (
                    event["value"].as_str().unwrap().to_owned(),
                    event["read"].as_str().unwrap_or("").to_owned(),
                )
            },
        )
    })
}

/// Every `(cgroup, file)` the kubelet events name, beside the oom_score_adj notes.
fn all_written(run: &Value) -> Vec<(String, String)> {
    run["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "kubelet" && e["file"] != "oom_score_adj")
        .map(|e| {
            (
                e["cgroup"].as_str().unwrap().to_owned(),
                e["file"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The uid of pod `name` and the id of its container `container`, as the run's spec gave
/// them to the guest.
fn ids(run: &Value, pod: &str, container: &str) -> (String, String) {
    let pod = run["spec"]["node"]["pods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == pod)
        .unwrap();
    let id = pod["containers"]
        .as_array()
        .unwrap()
        .iter()
        .chain(pod["init_containers"].as_array().into_iter().flatten())
        .find(|c| c["name"] == container)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (pod["uid"].as_str().unwrap().to_owned(), id)
}

#[test]
fn the_kubelets_tree_and_every_value_it_writes_are_read_back_on_cgroup_v2_and_v1() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("tree.toml");
    std::fs::write(&scenario, TREE).unwrap();
    let out = dir.path().join("out");
    let output = rsslab(&[
        "run",
        scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    for version in [2, 1] {
        let run_dir = out.join(format!("runs/pod-tree/6.1/cgroup_version={version}"));
        let run = read_json(&run_dir.join("run.json"));
        let what = format!("cgroup v{version}");
        assert_eq!(run["outcome"], "ok", "{what}: {}", run["reason"]);
        // The kubelet reads MemTotal; the guest's samples say it too.
        let capacity = samples_of(&run_dir)[0]["guest"]["mem_total"]
            .as_u64()
            .unwrap();

        // Each container's second process says, from inside, which cgroup it is in: the
        // systemd driver's names, uid dashes as underscores, containerd's scope.
        let slice = |uid: &str| uid.replace('-', "_");
        let (db_uid, db_id) = ids(&run, "db", "db");
        let (web_uid, api_id) = ids(&run, "web", "api");
        let (_, cache_id) = ids(&run, "web", "cache");
        let (_, shipper_id) = ids(&run, "web", "shipper");
        let (_, migrate_id) = ids(&run, "web", "migrate");
        let (batch_uid, job_id) = ids(&run, "batch", "job");
        let kubepods = "kubepods.slice".to_owned();
        let burstable = format!("{kubepods}/kubepods-burstable.slice");
        let best_effort = format!("{kubepods}/kubepods-besteffort.slice");
        let db_pod = format!("{kubepods}/kubepods-pod{}.slice", slice(&db_uid));
        let web_pod = format!(
            "{burstable}/kubepods-burstable-pod{}.slice",
            slice(&web_uid)
        );
        let batch_pod = format!(
            "{best_effort}/kubepods-besteffort-pod{}.slice",
            slice(&batch_uid)
        );
        let scope = |pod: &str, id: &str| format!("{pod}/cri-containerd-{id}.scope");
        let expected_paths = [
            ("migrate", scope(&web_pod, &migrate_id)),
            ("shipper-probe", scope(&web_pod, &shipper_id)),
            ("db-probe", scope(&db_pod, &db_id)),
            ("api-probe", scope(&web_pod, &api_id)),
            ("cache-probe", scope(&web_pod, &cache_id)),
            ("job-probe", scope(&batch_pod, &job_id)),
        ];
        for (process, path) in &expected_paths {
            assert_eq!(
                run["processes"][process]["outcome"], "exited(0)",
                "{what}: {process}"
            );
            let seen = std::fs::read_to_string(run_dir.join(format!("{process}.stdout")))
                .unwrap_or_else(|_| panic!("{what}: {process} wrote nothing"));
            let line = match version {
                2 => format!("0::/{path}"),
                _ => format!(":memory:/{path}"),
            };
            assert!(
                seen.lines().any(|l| l.ends_with(&line)),
                "{what}: {process} is in\n{seen}\nnot /{path}"
            );
        }
        // The init container completed before the containers started; the sidecar started
        // first and ran beside them.
        let t = |label: &str| event_time(&run, label);
        assert!(t("migrate:ended") <= t("shipper:started"), "{what}");
        assert!(t("shipper:started") <= t("api:started"), "{what}");
        assert!(t("shipper:started") <= t("cache:started"), "{what}");

        // Every value, worked out from the rules (Kubernetes 1.31), and nothing else.
        let allocatable = capacity - 32 * MIB;
        let page = |bytes: f64| (bytes / 4096.0).floor() as u64 * 4096;
        let (limit, memsw) = match version {
            2 => ("memory.max", None),
            _ => ("memory.limit_in_bytes", Some("memory.memsw.limit_in_bytes")),
        };
        let db_scope = scope(&db_pod, &db_id);
        let api_scope = scope(&web_pod, &api_id);
        let cache_scope = scope(&web_pod, &cache_id);
        let shipper_scope = scope(&web_pod, &shipper_id);
        let migrate_scope = scope(&web_pod, &migrate_id);
        let job_scope = scope(&batch_pod, &job_id);
        let mut expected: Vec<(&str, &str, u64)> = vec![
            // Node allocatable: capacity less system_reserved.
            (&kubepods, limit, allocatable),
            // Guaranteed: the pod's limit is its containers'; the web pod has a container
            // without a limit (cache), so it has none, and a BestEffort pod none either.
            (&db_pod, limit, 64 * MIB),
            (&db_scope, limit, 64 * MIB),
            (&api_scope, limit, 128 * MIB),
            (&shipper_scope, limit, 32 * MIB),
        ];
        if let Some(memsw) = memsw {
            // NoSwap on v1: memory+swap = the memory limit, for containers with one.
            expected.push((&db_scope, memsw, 64 * MIB));
            expected.push((&api_scope, memsw, 128 * MIB));
            expected.push((&shipper_scope, memsw, 32 * MIB));
        } else {
            // Group kills and NoSwap for every container.
            for container in [
                &db_scope,
                &api_scope,
                &cache_scope,
                &shipper_scope,
                &migrate_scope,
                &job_scope,
            ] {
                expected.push((container, "memory.oom.group", 1));
                expected.push((container, "memory.swap.max", 0));
            }
            // MemoryQoS: memory.min = requests; the web pod's: api 64 + cache 32 + the
            // sidecar 16 (it runs beside them) = 112MiB; kubepods: Guaranteed 64 + Burstable
            // 112; the burstable level: 112.
            expected.extend([
                (&kubepods as &str, "memory.min", 176 * MIB),
                (&burstable, "memory.min", 112 * MIB),
                (&web_pod, "memory.min", 112 * MIB),
                (&db_pod, "memory.min", 64 * MIB),
                (&db_scope, "memory.min", 64 * MIB),
                (&api_scope, "memory.min", 64 * MIB),
                (&cache_scope, "memory.min", 32 * MIB),
                (&shipper_scope, "memory.min", 16 * MIB),
            ]);
            // memory.high = floor((request + 0.9 × (limit, or allocatable, − request)) /
            // page) × page, where request ≠ limit.
            let high = |request: u64, ceiling: u64| {
                let (request, ceiling) = (request as f64, ceiling as f64);
                page((request + 0.9 * (ceiling - request)).floor())
            };
            expected.push((&api_scope, "memory.high", high(64 * MIB, 128 * MIB)));
            expected.push((&shipper_scope, "memory.high", high(16 * MIB, 32 * MIB)));
            expected.push((&cache_scope, "memory.high", high(32 * MIB, allocatable)));
            assert_eq!(
                high(64 * MIB, 128 * MIB),
                31_129 * 4096,
                "121.6MiB, page-aligned"
            );
        }
        for (path, file, value) in &expected {
            let (wrote, read) = written(&run, path, file)
                .unwrap_or_else(|| panic!("{what}: nothing written to {path}/{file}"));
            assert_eq!(wrote, value.to_string(), "{what}: {path}/{file}");
            // The kernel keeps sizes in pages: they read back rounded down to one.
            let kept = match *file {
                "memory.oom.group" => *value,
                _ => value / 4096 * 4096,
            };
            assert_eq!(read, kept.to_string(), "{what}: {path}/{file} read back");
        }
        let mut wanted: Vec<(String, String)> = expected
            .iter()
            .map(|(path, file, _)| (path.to_string(), file.to_string()))
            .collect();
        let mut got = all_written(&run);
        wanted.sort();
        got.sort();
        assert_eq!(got, wanted, "{what}: every write, and no other");

        // oom_score_adj as each process read it back: Guaranteed -997, BestEffort 1000,
        // Burstable 1000 - 1000 × request / capacity (integer division).
        let burstable_adj = |request: u64| 1000 - (1000 * request / capacity) as i64;
        for (process, adj) in [
            ("db", -997),
            ("job", 1000),
            ("api", burstable_adj(64 * MIB)),
            ("cache", burstable_adj(32 * MIB)),
            ("shipper", burstable_adj(16 * MIB)),
            // No memory request: 1000, lowered to 999 (below BestEffort).
            ("migrate", 999),
        ] {
            let started = run["events"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["process"] == process && e["event"] == "started")
                .unwrap();
            assert_eq!(started["oom_score_adj"], adj, "{what}: {process}");
        }
    }
}

fn event_time(run: &Value, label: &str) -> u64 {
    run["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            let what = e
                .get("phase")
                .and_then(Value::as_str)
                .unwrap_or_else(|| e["event"].as_str().unwrap());
            format!("{}:{}", e["process"].as_str().unwrap_or(""), what) == label
        })
        .unwrap_or_else(|| panic!("no event {label}"))["t_ms"]
        .as_u64()
        .unwrap()
}

/// Runs the default lab's scenarios `files` on 6.1 into `out`; every expectation must hold.
fn run_stories(files: &[&str], out: &Path) -> Value {
    let mut args: Vec<String> = vec!["run".into()];
    args.extend(files.iter().map(|file| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios")
            .join(file)
            .display()
            .to_string()
    }));
    args.extend(["--kernel", "6.1", "--out"].map(String::from));
    args.push(out.display().to_string());
    let output = rsslab(&args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let results = read_json(&out.join("results.json"));
    for run in results["runs"].as_array().unwrap() {
        assert_eq!(run["outcome"], "ok", "{}: {}", run["dir"], run["reason"]);
        for expectation in run["expectations"].as_array().unwrap() {
            assert_eq!(
                expectation["passed"], true,
                "{}: {}",
                run["dir"], expectation["detail"]
            );
        }
    }
    results
}

/// The outcome of `process` in the run of `results` whose directory ends with `dir`.
fn outcome<'a>(results: &'a Value, dir: &str, process: &str) -> &'a Value {
    let run = results["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|run| run["dir"].as_str().unwrap().ends_with(dir))
        .unwrap_or_else(|| panic!("no run {dir}"));
    &run["processes"][process]["outcome"]
}

#[test]
fn a_group_kill_takes_the_whole_container_a_single_kill_one_process_and_v1_one() {
    let out = tempfile::tempdir().unwrap();
    let results = run_stories(
        &["pod-group-oom-kill.toml", "pod-group-oom-kill-v1.toml"],
        out.path(),
    );
    let group = "pod-group-oom-kill/6.1/single_process_oom_kill=false";
    let single = "pod-group-oom-kill/6.1/single_process_oom_kill=true";
    let v1 = "pod-group-oom-kill-v1/6.1";
    for dir in [single, v1] {
        assert_eq!(outcome(&results, dir, "renderer"), "oom-killed", "{dir}");
    }
    for dir in [group, single, v1] {
        assert_eq!(outcome(&results, dir, "shipper"), "running-at-end", "{dir}");
    }
    assert_eq!(outcome(&results, single, "api"), "running-at-end");
    assert_eq!(outcome(&results, v1, "api"), "running-at-end");
    // The kernel's own account of it, in the container's memory.events (6.1 has
    // oom_group_kill): the group kill counted, the single kill not. The highest count of any
    // sample: with the group kill the container is restarted, and later samples read the new
    // container's cgroup, whose counts start at 0.
    let highest = |dir: &str, counter: &str| {
        samples_of(&out.path().join("runs").join(dir))
            .iter()
            .filter_map(|sample| sample["container"]["web/api"][counter].as_u64())
            .max()
            .unwrap_or_else(|| panic!("{dir}: no {counter}"))
    };
    assert_eq!(highest(group, "oom_group_kill"), 1);
    assert_eq!(highest(single, "oom_group_kill"), 0);
    assert_eq!(highest(single, "oom_kill"), 1);
    // The kernel log named both processes of the group, the same millisecond.
    let run = read_json(&out.path().join("runs").join(group).join("run.json"));
    let kills: Vec<(u64, String)> = run["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "oom_kill")
        .map(|e| {
            (
                e["t_ms"].as_u64().unwrap(),
                e["process"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    // The first kill: both, the same millisecond (the restarted container may be killed
    // again before the run ends: the same renderer in a new life).
    let first: Vec<&str> = kills
        .iter()
        .filter(|(t, _)| *t == kills[0].0)
        .map(|(_, name)| name.as_str())
        .collect();
    assert!(
        first.len() == 2 && first.contains(&"api") && first.contains(&"renderer"),
        "{kills:?}"
    );
    // The first life of both ended OOM-killed, and so did the container, as the runtime
    // says: OOMKilled, 137. The Deployment restarts it.
    for process in ["api", "renderer"] {
        let first_end = run["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["event"] == "ended" && e["process"] == process)
            .unwrap();
        assert_eq!(first_end["outcome"], "oom-killed", "{process}");
    }
    let terminated = run["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "container_terminated" && e["container"] == "web/api")
        .unwrap();
    assert_eq!(terminated["reason"], "OOMKilled");
    assert_eq!(terminated["exit_code"], 137);
    for dir in [single, v1] {
        let run = read_json(&out.path().join("runs").join(dir).join("run.json"));
        let ended = run["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "container_terminated" && e["container"] == "web/api");
        assert!(!ended, "{dir}: one process killed, the container goes on");
    }
}

#[test]
fn the_oom_killer_takes_the_best_effort_pod_and_memory_min_keeps_the_guaranteed_cache() {
    let out = tempfile::tempdir().unwrap();
    let results = run_stories(&["pod-qos-node-pressure.toml"], out.path());
    for qos in ["false", "true"] {
        let dir = format!("pod-qos-node-pressure/6.1/MemoryQoS={qos}");
        assert_eq!(outcome(&results, &dir, "hog"), "oom-killed", "{dir}");
        assert_eq!(outcome(&results, &dir, "reader"), "oom-killed", "{dir}");
        assert_eq!(outcome(&results, &dir, "db"), "running-at-end", "{dir}");
        let run_dir = out.path().join("runs").join(&dir);
        let run = read_json(&run_dir.join("run.json"));
        let adj = |process: &str| {
            run["events"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["process"] == process && e["event"] == "started")
                .unwrap()["oom_score_adj"]
                .clone()
        };
        assert_eq!(adj("db"), -997, "{dir}: Guaranteed");
        assert_eq!(adj("hog"), 1000, "{dir}: BestEffort");
        // db holds more than the hog had when the kernel chose it.
        let samples = samples_of(&run_dir);
        let peak = |process: &str| {
            samples
                .iter()
                .filter_map(|s| s["process"][process]["rss"].as_u64())
                .max()
                .unwrap()
        };
        assert!(
            peak("db") > peak("hog"),
            "{dir}: {} {}",
            peak("db"),
            peak("hog")
        );
        // The page cache db kept while the hog pressed: all of its 32MiB with memory.min at
        // every sample; without, reclaim took it (db re-reads its file every 250 ms, so the
        // lowest sample tells, not the last before the kill, which a re-read may have filled).
        let kill = run["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["event"] == "oom_kill")
            .unwrap()["t_ms"]
            .as_u64()
            .unwrap();
        let hog_started = event_time(&run, "hog:started");
        let pressed: Vec<u64> = samples
            .iter()
            .filter(|s| (hog_started..kill).contains(&s["t_ms"].as_u64().unwrap()))
            .map(|s| s["container"]["db/db"]["file"].as_u64().unwrap())
            .collect();
        let cache = pressed
            .iter()
            .copied()
            .min()
            .unwrap_or_else(|| panic!("{dir}: no sample while the hog pressed"));
        if qos == "true" {
            assert!(cache >= 31 * MIB, "{dir}: {cache}");
            let min = run["events"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| {
                    e["event"] == "kubelet"
                        && e["file"] == "memory.min"
                        && e["cgroup"].as_str().unwrap().ends_with(".scope")
                })
                .unwrap();
            assert_eq!(min["read"], (288 * MIB).to_string(), "{dir}");
        } else {
            assert!(cache < 16 * MIB, "{dir}: {cache}");
        }
    }
}

#[test]
fn a_deployment_manifest_runs_next_to_its_own_go_program() {
    let out = tempfile::tempdir().unwrap();
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/web-api/scenario.toml");
    let output = rsslab(&[
        "run",
        scenario.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // `rsslab run` says how much of the manifest it does not use; `check` names it.
    assert!(
        stderr.contains("deployment.yaml:") && stderr.contains("the lab does not use"),
        "{stderr}"
    );
    let results = read_json(&out.path().join("results.json"));
    for run in results["runs"].as_array().unwrap() {
        for expectation in run["expectations"].as_array().unwrap() {
            assert_eq!(
                expectation["passed"], true,
                "{}: {}",
                run["dir"], expectation["detail"]
            );
        }
    }
    for (variant, api) in [("false", "oom-killed"), ("true", "running-at-end")] {
        let dir = format!("web-api/6.1/single_process_oom_kill={variant}");
        // How the API's first life ended (with the group kill the Deployment's container is
        // restarted, and a second life follows).
        let run = read_json(&out.path().join("runs").join(&dir).join("run.json"));
        let first_end = run["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["event"] == "ended" && e["process"] == "api")
            .map_or("running-at-end", |e| e["outcome"].as_str().unwrap());
        assert_eq!(first_end, api, "{dir}");
        // The program got the manifest's arguments, `$(PORT)` expanded, and its environment.
        let said =
            std::fs::read_to_string(out.path().join("runs").join(&dir).join("api.stdout")).unwrap();
        assert!(
            said.contains("web-api: listening on :8080, cache 48MiB, GOMEMLIMIT=110MiB"),
            "{dir}: {said}"
        );
        assert!(said.contains("started renderer pid"), "{dir}: {said}");
        assert_eq!(
            said.contains("renderer ended: signal: killed"),
            variant == "true",
            "{dir}: the API lives to see its renderer die only without the group kill: {said}"
        );
    }
    // `rsslab check` names the fields it does not use, at their lines.
    let check = rsslab(&["check", scenario.to_str().unwrap()]);
    let warnings = String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "{warnings}");
    for field in [
        "`spec.replicas` is 3",
        "`spec.template.spec.containers[0].image` is not used",
        "`spec.template.spec.containers[0].env[2].valueFrom` is not used",
        "`spec.template.spec.containers[0].readinessProbe` is not used",
    ] {
        assert!(warnings.contains(field), "{field} in\n{warnings}");
    }
}
