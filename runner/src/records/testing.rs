//! Plausible fake runs for the tests, benchmarks and examples of the stages after the
//! records (analysis, output): a Go-like service that touches 400 MiB, releases all but 50 MiB
//! (MADV_FREE or MADV_DONTNEED), then a balloon that grows 100 MiB a second until the guest's
//! MemAvailable falls below 64 MiB, which makes the kernel reclaim the lazily-freed pages.
//! [`write_lab`] writes them as a lab would.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

use rsslab_wire::message::ProcessResult;
use rsslab_wire::workload::{BalloonArgs, HeapChurnArgs, Release, Workload};
use rsslab_wire::{
    Bytes, CgroupSpec, Event, EventKind, Hello, Metrics, Millis, ProcessOutcome, ProcessSpec,
    RunOutcome, RunSpec, Sample, Start,
};

use crate::records::{LoadedRun, PackageProvenance, Provenance, RunRecord, Timing};

pub const HOSTILE: &str = "<script>alert(1)</script> & \"x\"";

const MIB: u64 = 1 << 20;

fn event(t_ms: u64, process: Option<&str>, kind: EventKind) -> Event {
    Event {
        t_ms,
        process: process.map(str::to_owned),
        kind,
    }
}

fn phase(t_ms: u64, process: &str, phase: &str) -> Event {
    event(
        t_ms,
        Some(process),
        EventKind::Phase {
            phase: phase.into(),
        },
    )
}

/// An expectation on the fake runs, "RSS after release": the service's last RSS between its
/// release + 1 s and the balloon's start, at least 40 MiB (400 MiB with `free`, 50 with
/// `dontneed`).
pub fn rss_after_release() -> crate::scenario::expect::Expectation {
    use crate::scenario::expect::{Check, Comparison, Expectation, Measure, Operand, Stat};
    Expectation {
        name: "RSS after release".into(),
        when: Default::default(),
        check: Check::Metric {
            measure: Measure {
                metric: "process.service.rss".into(),
                stat: Stat::Last,
                from: Some("service:released".into()),
                after: Millis::secs(1),
                to: Some("balloon:started".into()),
            },
            compare: Comparison::AtLeast,
            against: Operand::Size(Bytes::mib(40)),
        },
    }
}

/// A run of the MADV_FREE + balloon story; `release` is `free` or `dontneed`.
pub fn fake_run(scenario: &str, kernel: &str, release: &str) -> LoadedRun {
    fake_run_named(scenario, kernel, release, "service", "balloon")
}

pub fn fake_run_named(
    scenario: &str,
    kernel: &str,
    release: &str,
    service: &str,
    balloon: &str,
) -> LoadedRun {
    let free = release == "free";
    let (total, base) = (1024 * MIB, 120 * MIB);
    let (mut service_rss, mut lazy, mut balloon_rss) = (0u64, 0u64, 0u64);
    let mut balloon_running = false;
    let mut full_at = None;
    let mut samples = Vec::new();
    let mut events = vec![
        event(
            200,
            Some(service),
            EventKind::Started {
                pid: 100,
                oom_score_adj: None,
            },
        ),
        phase(2000, service, "allocated"),
        phase(3000, service, "released"),
        event(
            6000,
            Some(balloon),
            EventKind::Started {
                pid: 120,
                oom_score_adj: None,
            },
        ),
        phase(6050, balloon, "started"),
    ];
    for step in 1..=120u64 {
        let t_ms = step * 250;
        if t_ms <= 2000 {
            service_rss = 400 * MIB * (t_ms - 200) / 1800;
        } else if t_ms == 3000 {
            if free {
                lazy = 350 * MIB;
            } else {
                service_rss = 50 * MIB;
            }
        }
        if t_ms >= 6000 {
            balloon_running = true;
        }
        if t_ms >= 7000 && t_ms % 1000 == 0 && full_at.is_none() {
            balloon_rss += 100 * MIB;
            let free_memory = total as i64 - (base + service_rss + balloon_rss) as i64;
            if free_memory < 40 * MIB as i64 && lazy > 0 {
                let reclaim = ((40 * MIB as i64 - free_memory) as u64).min(lazy);
                service_rss -= reclaim;
                lazy -= reclaim;
            }
        }
        let available = total.saturating_sub(base + (service_rss - lazy) + balloon_rss);
        if balloon_rss > 0 && available < 64 * MIB && full_at.is_none() {
            full_at = Some(t_ms);
            events.push(phase(t_ms + 10, balloon, "full"));
        }
        let mut process = BTreeMap::new();
        process.insert(
            service.to_owned(),
            Metrics::from([
                ("rss".into(), service_rss),
                ("rss_anon".into(), service_rss),
                ("lazyfree".into(), lazy),
                ("vsz".into(), 1100 * MIB),
            ]),
        );
        if balloon_running {
            process.insert(
                balloon.to_owned(),
                Metrics::from([
                    ("rss".into(), balloon_rss + 2 * MIB),
                    ("lazyfree".into(), 0),
                    ("vsz".into(), balloon_rss + 8 * MIB),
                ]),
            );
        }
        samples.push(Sample {
            t_ms,
            process,
            cgroup: Metrics::from([
                ("usage".into(), service_rss + 20 * MIB),
                ("working_set".into(), service_rss + 10 * MIB),
                ("limit".into(), 768 * MIB),
            ]),
            guest: Metrics::from([
                ("mem_total".into(), total),
                ("mem_available".into(), available),
                ("mem_free".into(), available.saturating_sub(lazy)),
            ]),
            ..Sample::default()
        });
    }
    events.push(event(
        30_100,
        Some(service),
        EventKind::Ended {
            outcome: ProcessOutcome::RunningAtEnd,
        },
    ));
    events.push(event(
        30_100,
        Some(balloon),
        EventKind::Ended {
            outcome: ProcessOutcome::RunningAtEnd,
        },
    ));
    events.insert(
        0,
        event(
            0,
            None,
            EventKind::Setup {
                step: "sysctl vm.overcommit_memory".into(),
                ok: true,
                detail: "0".into(),
            },
        ),
    );

    let peak = |name: &str| -> Metrics {
        let mut peak = Metrics::new();
        for sample in &samples {
            for (metric, &value) in sample.process.get(name).into_iter().flatten() {
                let entry = peak.entry(metric.clone()).or_insert(0);
                *entry = (*entry).max(value);
            }
        }
        peak
    };
    let processes = BTreeMap::from([
        (
            service.to_owned(),
            ProcessResult {
                outcome: ProcessOutcome::RunningAtEnd,
                peak: peak(service),
                started_ms: Some(200),
                ended_ms: Some(30_100),
            },
        ),
        (
            balloon.to_owned(),
            ProcessResult {
                outcome: ProcessOutcome::RunningAtEnd,
                peak: peak(balloon),
                started_ms: Some(6000),
                ended_ms: Some(30_100),
            },
        ),
    ]);
    let variant_label = format!("release={release}");
    let dir = format!("runs/{scenario}/{kernel}/{variant_label}");
    let release_arg = if free {
        Release::Free
    } else {
        Release::Dontneed
    };
    let spec = RunSpec {
        run_id: format!("{scenario}/{kernel}/{variant_label}"),
        sample_every: Millis(250),
        duration: Millis::secs(30),
        until: None,
        sysctl: BTreeMap::new(),
        sysfs: BTreeMap::new(),
        cgroup: Some(CgroupSpec {
            version: 2,
            memory_max: Some(Bytes::mib(768)),
            memory_high: None,
            swap_max: None,
        }),
        node: None,
        modules: Vec::new(),
        disk: None,
        processes: vec![
            ProcessSpec {
                name: service.to_owned(),
                workload: Workload::HeapChurn(HeapChurnArgs {
                    heap: Bytes::mib(400),
                    live: Bytes::mib(50),
                    release: release_arg,
                    chunk: Bytes::mib(1),
                    cycles: 1,
                    hold_allocated: Millis::secs(1),
                    hold: Millis::secs(60),
                    exit: false,
                }),
                env: BTreeMap::new(),
                cgroup: true,
                container: None,
                start: Start::default(),
                emulate_no_madv_free: false,
                restart: Default::default(),
                go: None,
            },
            ProcessSpec {
                name: balloon.to_owned(),
                workload: Workload::Balloon(BalloonArgs {
                    step: Bytes::mib(100),
                    every: Millis::secs(1),
                    until_available: Bytes::mib(64),
                    max: None,
                }),
                env: BTreeMap::new(),
                cgroup: false,
                container: None,
                start: Start {
                    after: Some(service.to_owned()),
                    phase: Some("released".into()),
                    delay: Millis::secs(3),
                },
                emulate_no_madv_free: false,
                restart: Default::default(),
                go: None,
            },
        ],
    };
    let record = RunRecord {
        scenario: scenario.to_owned(),
        title: "Go 1.12-1.15 keeps RSS high after GC until the kernel needs the memory".into(),
        story: String::new(),
        kernel: kernel.to_owned(),
        kernel_release: Some(format!("{kernel}.0-28-cloud-amd64")),
        variant: BTreeMap::from([("process.service.args.release".into(), release.to_owned())]),
        variant_label,
        accel: "tcg".into(),
        accel_reason: Some("asked for (--accel tcg)".into()),
        outcome: RunOutcome::Ok,
        reason: None,
        attempts: 1,
        processes,
        cgroup_peak: Metrics::from([("usage".into(), 422 * MIB)]),
        events,
        hello: Some(Hello {
            protocol: rsslab_wire::CHANNEL_VERSION,
            kernel_release: format!("{kernel}.0-28-cloud-amd64"),
            boot_ms: 900,
            features: BTreeMap::from([
                ("cgroup_v2".into(), "yes".into()),
                ("thp".into(), "madvise".into()),
            ]),
        }),
        timing: Timing {
            started_at: "2025-01-01T12:00:00Z".into(),
            wall_ms: 41_250,
            boot_to_first_sample_ms: Some(7_400),
            agent_cpu_ms: None,
            qemu_cpu_ms: None,
            boot: None,
        },
        provenance: Provenance {
            kernel_packages: vec![PackageProvenance {
                name: format!("linux-image-{kernel}.0-28-cloud-amd64"),
                version: format!("{kernel}.119-1"),
                sha256: "0123456789abcdef".repeat(4),
            }],
            qemu_version: "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-1)".into(),
            host: "lab-host".into(),
            rsslab_version: "0.1.0".into(),
            git_revision: Some("cbb8ac0".into()),
            scenario_sha256: "fedcba9876543210".repeat(4),
            scenario_path: format!("scenarios/{scenario}.toml"),
            image_digest: "a1b2c3".repeat(10),
        },
        spec,
        dir,
        repeat: 1,
        expectations: Vec::new(),
        kernel_facts: None,
        fact_mismatches: Vec::new(),
    };
    LoadedRun { record, samples }
}

/// A run on 6.12 whose catalogue facts say MGLRU is off at boot while the guest read it on
/// (`lru_gen/enabled = 0x0007`): one fact mismatch ([`with_fact_mismatch`]).
pub fn fact_mismatch_run() -> LoadedRun {
    with_fact_mismatch(fake_run("go-madvfree-balloon", "6.12", "free"))
}

/// `run` with the facts of a 6.12 kernel, except `mglru_default = false`, and a hello that
/// probed them all with MGLRU on (`0x0007`): exactly the mismatch of `mglru_default`, kept
/// in the record as the runner keeps it.
pub fn with_fact_mismatch(mut run: LoadedRun) -> LoadedRun {
    let record = &mut run.record;
    record.kernel_facts = Some(crate::catalogue::KernelFacts {
        madv_free: true,
        cgroup_v1_memory: false,
        mglru: true,
        mglru_default: false,
        overcommit_heuristic_total_only: true,
    });
    let hello = record.hello.as_mut().expect("fake runs say hello");
    hello.features.extend([
        ("cgroup_v1_memory".to_owned(), "no".to_owned()),
        ("madv_free".to_owned(), "yes".to_owned()),
        ("mglru".to_owned(), "0x0007".to_owned()),
        ("thp_defrag".to_owned(), "madvise".to_owned()),
    ]);
    record.fact_mismatches = crate::records::facts::record_fact_mismatches(record);
    run
}

/// A run whose every scenario- and guest-provided string is hostile markup.
pub fn hostile_run() -> LoadedRun {
    let mut run = fake_run_named("hostile", "6.1", "free", HOSTILE, "balloon");
    let record = &mut run.record;
    record.title = HOSTILE.into();
    record.kernel_release = Some(HOSTILE.into());
    record.reason = Some(HOSTILE.into());
    record.outcome = RunOutcome::InfraError;
    record.variant = BTreeMap::from([(HOSTILE.into(), HOSTILE.into())]);
    record.variant_label = format!("v={HOSTILE}");
    record.events.push(phase(4000, HOSTILE, HOSTILE));
    record.events.sort_by_key(|event| event.t_ms);
    record.events.push(event(
        1,
        None,
        EventKind::Setup {
            step: HOSTILE.into(),
            ok: false,
            detail: HOSTILE.into(),
        },
    ));
    record.events.push(event(
        2,
        Some(HOSTILE),
        EventKind::Log {
            message: HOSTILE.into(),
        },
    ));
    record.provenance.scenario_path = HOSTILE.into();
    record.provenance.kernel_packages[0].name = HOSTILE.into();
    // A guest that reads markup from lru_gen/enabled: a fact mismatch whose detail quotes it.
    let mut run = with_fact_mismatch(run);
    let record = &mut run.record;
    let hello = record.hello.as_mut().expect("fake runs say hello");
    hello.features.insert("mglru".into(), HOSTILE.into());
    hello.features.insert(HOSTILE.into(), HOSTILE.into());
    if let Some(facts) = record.kernel_facts.as_mut() {
        facts.mglru = false;
    }
    record.fact_mismatches = crate::records::facts::record_fact_mismatches(record);
    run
}

/// Writes a run's raw files under `out_dir` as the collector would (with a console log).
pub fn write_run(out_dir: &Path, run: &LoadedRun, console: &str) -> Result<()> {
    let dir = out_dir.join(&run.record.dir);
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    run.record.write(&dir)?;
    let mut samples = String::new();
    for sample in &run.samples {
        samples.push_str(&serde_json::to_string(sample)?);
        samples.push('\n');
    }
    fs::write(dir.join(crate::records::SAMPLES_JSONL), samples)?;
    fs::write(dir.join(crate::records::CONSOLE_LOG), console)?;
    Ok(())
}

/// Writes `runs` under `out_dir` as a lab would: per scenario the `runs/<scenario>/scenario.toml`
/// it kept (see [`scenario_toml`]), whose sha256 each run then records, and each run's raw
/// files with a console log of `console_lines` lines.
pub fn write_lab(out_dir: &Path, runs: &mut [LoadedRun], console_lines: usize) -> Result<()> {
    use sha2::{Digest, Sha256};
    let console = console_log(console_lines);
    for run in runs {
        let source = scenario_toml(run);
        let dir = out_dir
            .join(crate::plan::RUNS_DIR)
            .join(&run.record.scenario);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(crate::records::SCENARIO_TOML);
        fs::write(&path, &source).with_context(|| format!("writing {}", path.display()))?;
        run.record.provenance.scenario_sha256 = hex::encode(Sha256::digest(&source));
        write_run(out_dir, run, &console)?;
    }
    Ok(())
}

/// A scenario file for `run`'s scenario, carrying its title and story (TOML basic strings,
/// escaped by the serializer).
pub fn scenario_toml(run: &LoadedRun) -> String {
    let header = toml::Table::from_iter([
        (
            "id".to_owned(),
            toml::Value::from(run.record.scenario.as_str()),
        ),
        (
            "title".to_owned(),
            toml::Value::from(run.record.title.as_str()),
        ),
        (
            "story".to_owned(),
            toml::Value::from(run.record.story.as_str()),
        ),
    ]);
    let document = toml::Table::from_iter([("scenario".to_owned(), toml::Value::Table(header))]);
    format!(
        "# A fake scenario of rsslab's report tests.\n{document}\n[vm]\nmemory = \"1GiB\"\n\n[[process]]\nname = \"service\"\nworkload = \"heap-churn\"\n"
    )
}

/// A console log of `lines` numbered lines.
pub fn console_log(lines: usize) -> String {
    (1..=lines)
        .map(|n| format!("[    {n}.000000] console line {n}\n"))
        .collect()
}

/// The scenario whose expectations [`fake_lab`]'s runs carry: MADV_FREE keeps the released
/// heap in RSS (only under `release = free`), the service survives, the balloon is never
/// OOM-killed.
const STORY_SCENARIO: &str = r#"[scenario]
id = "go-madvfree-balloon"
title = "Go 1.12-1.15 keeps RSS high after GC until the kernel needs the memory"
[sample]
duration = "30s"
[[process]]
name = "service"
workload = "heap-churn"
args = { heap = "400MiB", live = "50MiB" }
[[process]]
name = "balloon"
workload = "balloon"
cgroup = false
start = { after = "service", phase = "released", delay = "3s" }
[matrix]
"process.service.args.release" = ["free", "dontneed"]

[[expect]]
name = "MADV_FREE keeps the released heap in RSS while nothing presses"
when = { "process.service.args.release" = "free" }
metric = "process.service.rss"
from = "service:released"
to = "balloon:started"
above = "380MiB"

[[expect]]
name = "the service survives the balloon"
process = "service"
outcome = ["running-at-end", "exited(0)"]

[[expect]]
name = "the balloon is never OOM-killed"
process = "balloon"
outcome = "running-at-end"
"#;

/// The expectations of the story scenario above: MADV_FREE keeps the heap in RSS (under
/// `release = free`), the service survives, the balloon is never OOM-killed.
pub fn story_expectations() -> Vec<crate::scenario::expect::Expectation> {
    let kernels = ["5.10", "6.1", "6.12", "7.2"].map(String::from);
    crate::scenario::parse_scenario(
        Path::new("go-madvfree-balloon.toml"),
        STORY_SCENARIO,
        &kernels,
    )
    .expect("the fake scenario is valid")
    .expectations
}

/// A small lab: the story on four kernels in two variants, plus runs that went wrong; every
/// run carries [`story_expectations`].
pub fn fake_lab() -> Vec<LoadedRun> {
    let mut runs = Vec::new();
    for kernel in ["5.10", "6.1", "6.12", "7.2"] {
        for release in ["free", "dontneed"] {
            runs.push(fake_run("go-madvfree-balloon", kernel, release));
        }
    }
    let mut timeout = fake_run("overcommit-startup", "6.12", "free");
    timeout.record.outcome = RunOutcome::VmTimeout;
    timeout.record.reason = Some("no verdict within 180s; QEMU killed".into());
    timeout.record.attempts = 1;
    timeout.samples.truncate(40);
    timeout.record.events.retain(|event| event.t_ms <= 10_000);
    timeout.record.processes.clear();
    runs.push(timeout);

    let mut unsupported = fake_run("overcommit-startup", "7.2", "free");
    unsupported.record.outcome = RunOutcome::Unsupported;
    unsupported.record.reason =
        Some("the cgroup v1 memory controller is not built in (CONFIG_MEMCG_V1 unset)".into());
    unsupported.samples.clear();
    unsupported.record.events = vec![event(
        0,
        None,
        EventKind::Setup {
            step: "cgroup v1 memory".into(),
            ok: false,
            detail: "mount -t cgroup -o memory: ENOENT".into(),
        },
    )];
    unsupported.record.processes.clear();
    runs.push(unsupported);

    let mut oom = fake_run("overcommit-startup", "6.1", "free");
    oom.record.attempts = 2;
    oom.record
        .events
        .retain(|event| !(event.process.as_deref() == Some("balloon") && event.t_ms > 9_500));
    oom.record.events.push(event(
        9_500,
        None,
        EventKind::OomKill {
            pid: 120,
            task: "balloon".into(),
        },
    ));
    oom.record.events.push(event(
        9_500,
        Some("balloon"),
        EventKind::Ended {
            outcome: ProcessOutcome::OomKilled,
        },
    ));
    oom.record.events.sort_by_key(|event| event.t_ms);
    oom.record.processes.get_mut("balloon").unwrap().outcome = ProcessOutcome::OomKilled;
    for sample in &mut oom.samples {
        if sample.t_ms > 9_500 {
            sample.process.remove("balloon");
        }
    }
    runs.push(oom);
    let expectations = story_expectations();
    for run in &mut runs {
        run.record.expectations = expectations.clone();
    }
    runs
}

/// Uids and container ids of [`fake_pod_run`]'s pods.
const WEB_UID: &str = "0c1f3c1e-7c2a-4d8e-9b1a-3f6d2e5a7b90";
const BATCH_UID: &str = "5d2e8f10-3b4c-4a6d-8e9f-0a1b2c3d4e5f";

/// A run with pods, as a lab writes one: pod `web` (Burstable) with a sidecar `log-shipper`
/// (request 16 MiB, limit 32 MiB, process `shipper`) and a container `api` (request 64 MiB,
/// limit 128 MiB) whose processes `api` and `worker` the kernel kills together when `worker`
/// grows into the limit at 6 s (`memory.oom.group`), and pod `batch` (BestEffort) whose `job`
/// reads files into the page cache. Kubernetes 1.31 on cgroup v2 with the systemd driver; with
/// `memory_qos` the MemoryQoS gate is on, and api's `memory.high` reads back page-rounded
/// below the value written (as a kernel rounds a value the kubelet did not).
pub fn fake_pod_run(scenario: &str, kernel: &str, memory_qos: bool) -> LoadedRun {
    use rsslab_wire::pod::{
        ContainerSpec, KubeVersion, NodeSpec, PodSpec, Resources, RestartPolicy,
    };
    use rsslab_wire::workload::{FileIoArgs, HogArgs};

    let container = |name: &str, id: char, request: u64, limit: u64, sidecar: bool| {
        let memory = |mib: u64| (mib > 0).then(|| Bytes::mib(mib));
        ContainerSpec {
            name: name.into(),
            id: id.to_string().repeat(64),
            requests: Resources {
                memory: memory(request),
                cpu_millis: None,
            },
            limits: Resources {
                memory: memory(limit),
                cpu_millis: None,
            },
            sidecar,
        }
    };
    let pod = |name: &str, uid: &str, init: Vec<ContainerSpec>, containers| PodSpec {
        name: name.into(),
        uid: uid.into(),
        priority_class_name: None,
        priority: 0,
        restart_policy: RestartPolicy::Always,
        overhead: None,
        init_containers: init,
        containers,
    };
    let node = NodeSpec {
        system_reserved: Bytes::mib(64),
        feature_gates: BTreeMap::from([("MemoryQoS".to_owned(), memory_qos)]),
        pods: vec![
            pod(
                "web",
                WEB_UID,
                vec![container("log-shipper", 'a', 16, 32, true)],
                vec![container("api", 'b', 64, 128, false)],
            ),
            pod(
                "batch",
                BATCH_UID,
                vec![],
                vec![container("job", 'c', 0, 0, false)],
            ),
        ],
        ..NodeSpec::new(KubeVersion::new(31), 2)
    };
    let total = 1024 * MIB;
    let plan = rsslab_kubelet::plan(
        &node,
        &rsslab_kubelet::Machine {
            memory_capacity: total,
            page_size: 4096,
            swap_controller: true,
        },
    );

    // The kubelet's writes, read back as written but api's memory.high, written unrounded.
    let api_cgroup = plan.cgroups[plan.pods[0].containers[1].cgroup].path.clone();
    let mut events = Vec::new();
    for cgroup in &plan.cgroups {
        for write in &cgroup.writes {
            let mut value = write.value.clone();
            if cgroup.path == api_cgroup && write.file == "memory.high" {
                value = (value.parse::<u64>().expect("bytes") + 2457).to_string();
            }
            events.push(event(
                0,
                None,
                EventKind::Kubelet {
                    cgroup: cgroup.path.clone(),
                    file: write.file.clone(),
                    read: Some(write.value.clone()),
                    value,
                    rule: write.rule.what.clone(),
                    source: write.rule.source.clone(),
                },
            ));
        }
    }
    for planned in plan.pods.iter().flat_map(|pod| &pod.containers) {
        events.push(event(
            0,
            None,
            EventKind::Kubelet {
                cgroup: plan.cgroups[planned.cgroup].path.clone(),
                file: "oom_score_adj".into(),
                value: planned.oom_score_adj.to_string(),
                read: None,
                rule: planned.oom_rule.what.clone(),
                source: planned.oom_rule.source.clone(),
            },
        ));
    }
    let adj = |key: &str| {
        plan.pods
            .iter()
            .flat_map(|pod| &pod.containers)
            .find(|planned| planned.key == key)
            .map(|planned| planned.oom_score_adj)
    };
    // (process, container, start, end (ms), outcome).
    let processes = [
        (
            "shipper",
            "web/log-shipper",
            100,
            10_100,
            ProcessOutcome::RunningAtEnd,
        ),
        ("api", "web/api", 300, 6_000, ProcessOutcome::OomKilled),
        ("worker", "web/api", 2_000, 6_000, ProcessOutcome::OomKilled),
        (
            "job",
            "batch/job",
            1_000,
            10_100,
            ProcessOutcome::RunningAtEnd,
        ),
    ];
    for (pid, (name, key, start, end, outcome)) in (200..).zip(processes.clone()) {
        events.push(event(
            start,
            Some(name),
            EventKind::Started {
                pid,
                oom_score_adj: adj(key),
            },
        ));
        if outcome == ProcessOutcome::OomKilled {
            events.push(event(
                end,
                None,
                EventKind::OomKill {
                    pid,
                    task: "hog".into(),
                },
            ));
        }
        events.push(event(end, Some(name), EventKind::Ended { outcome }));
    }
    events.sort_by_key(|event| event.t_ms);

    // Sizes in MiB at t ms of each running process: (rss, file pages it reads).
    let sizes = |name: &str, t: u64| -> (u64, u64) {
        match name {
            "shipper" => (9, 0),
            "api" => (50, 0),
            "worker" => ((t - 2_000) * 19 / 1000, 0),
            _ => (20, ((t - 1_000) * 30 / 1000).min(200)),
        }
    };
    let mut samples = Vec::new();
    for step in 1..=40u64 {
        let t_ms = step * 250;
        let mut sample = Sample {
            t_ms,
            ..Sample::default()
        };
        let mut containers: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for &(name, key, start, end, _) in &processes {
            if t_ms < start || t_ms >= end {
                continue;
            }
            let (rss, file) = sizes(name, t_ms);
            sample.process.insert(
                name.to_owned(),
                Metrics::from([
                    ("rss".into(), rss * MIB),
                    ("rss_anon".into(), rss * MIB),
                    ("vsz".into(), (rss + 8) * MIB),
                    ("oom_score".into(), 1000 + rss),
                ]),
            );
            let entry = containers.entry(key.to_owned()).or_default();
            entry.0 += rss * MIB;
            entry.1 += file * MIB;
        }
        let mut pods: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for (key, &(anon, file)) in &containers {
            let pod = key.split('/').next().unwrap_or_default();
            let entry = pods.entry(pod.to_owned()).or_default();
            entry.0 += anon;
            entry.1 += file;
            sample
                .container
                .insert(key.clone(), cgroup_metrics(anon, file, None));
        }
        for (pod, &(anon, file)) in &pods {
            let limit = (pod == "web").then_some(160 * MIB);
            sample
                .pod
                .insert(pod.clone(), cgroup_metrics(anon, file, limit));
        }
        let (anon, file) = pods
            .values()
            .fold((0, 0), |(a, f), &(anon, file)| (a + anon, f + file));
        sample.cgroup = cgroup_metrics(anon, file, Some(plan.allocatable));
        sample.guest = Metrics::from([
            ("mem_total".into(), total),
            ("mem_available".into(), total - 120 * MIB - anon - file / 2),
        ]);
        samples.push(sample);
    }

    let mut run = fake_run(scenario, kernel, "free");
    let record = &mut run.record;
    record.title = "A pod's containers against their limits".into();
    record.variant = BTreeMap::from([(
        "node.feature_gates.MemoryQoS".into(),
        memory_qos.to_string(),
    )]);
    record.variant_label = format!("MemoryQoS={memory_qos}");
    record.dir = format!("runs/{scenario}/{kernel}/{}", record.variant_label);
    record.spec.run_id = format!("{scenario}/{kernel}/{}", record.variant_label);
    record.spec.cgroup = None;
    record.spec.duration = Millis::secs(10);
    record.spec.processes = processes
        .iter()
        .map(|&(name, key, _, _, _)| ProcessSpec {
            name: name.into(),
            workload: if name == "job" {
                Workload::FileIo(
                    serde_json::from_value::<FileIoArgs>(serde_json::json!({
                        "files": 1,
                        "file_size": 200 * MIB,
                    }))
                    .expect("file-io with its defaults"),
                )
            } else {
                Workload::Hog(HogArgs {
                    size: rsslab_wire::Amount::Bytes(Bytes::mib(sizes(name, 6_000).0)),
                })
            },
            env: BTreeMap::new(),
            cgroup: true,
            container: Some(key.to_owned()),
            start: Start::default(),
            emulate_no_madv_free: false,
            restart: Default::default(),
            go: None,
        })
        .collect();
    record.spec.node = Some(node);
    record.events = events;
    record.processes = processes
        .into_iter()
        .map(|(name, _, start, end, outcome)| {
            let mut peak = Metrics::new();
            for sample in &samples {
                for (metric, &value) in sample.process.get(name).into_iter().flatten() {
                    let entry = peak.entry(metric.clone()).or_insert(0);
                    *entry = (*entry).max(value);
                }
            }
            let result = ProcessResult {
                outcome,
                peak,
                started_ms: Some(start),
                ended_ms: Some(end),
            };
            (name.to_owned(), result)
        })
        .collect();
    record.cgroup_peak = samples
        .iter()
        .map(|sample| sample.cgroup["usage"])
        .max()
        .map(|usage| Metrics::from([("usage".into(), usage)]))
        .unwrap_or_default();
    run.samples = samples;
    run
}

/// A cgroup's metrics as the guest samples them, of `anon` and `file` bytes (a third of the
/// file pages active) under `limit`.
fn cgroup_metrics(anon: u64, file: u64, limit: Option<u64>) -> Metrics {
    let inactive_file = file - file / 3;
    let usage = anon + file;
    let mut metrics = Metrics::from([
        ("usage".into(), usage),
        ("working_set".into(), usage - inactive_file),
        ("anon".into(), anon),
        ("rss".into(), anon),
        ("file".into(), file),
        ("active_file".into(), file / 3),
        ("inactive_file".into(), inactive_file),
        ("oom_kill".into(), 0),
    ]);
    if let Some(limit) = limit {
        metrics.insert("limit".into(), limit);
        metrics.insert(
            "available".into(),
            limit.saturating_sub(usage - inactive_file),
        );
    }
    metrics
}

/// [`fake_pod_run`] (with MemoryQoS) whose pod, container and process names, kubelet rules and
/// sources and read-back values are hostile markup.
pub fn hostile_pod_run() -> LoadedRun {
    let mut run = fake_pod_run("hostile-pods", "6.1", true);
    let record = &mut run.record;
    let node = record.spec.node.as_mut().expect("a run with pods");
    node.pods[0].name = HOSTILE.into();
    node.pods[0].containers[0].name = HOSTILE.into();
    let key = rsslab_wire::pod::container_key(HOSTILE, HOSTILE);
    for process in &mut record.spec.processes {
        if process.container.as_deref() == Some("web/api") {
            process.container = Some(key.clone());
        }
    }
    for event in &mut record.events {
        if let EventKind::Kubelet {
            rule, source, read, ..
        } = &mut event.kind
        {
            *rule = HOSTILE.into();
            *source = HOSTILE.into();
            if read.is_some() {
                *read = Some(HOSTILE.into());
            }
        }
    }
    for sample in &mut run.samples {
        if let Some(metrics) = sample.container.remove("web/api") {
            sample.container.insert(key.clone(), metrics);
        }
        if let Some(metrics) = sample.pod.remove("web") {
            sample.pod.insert(HOSTILE.into(), metrics);
        }
    }
    run
}
