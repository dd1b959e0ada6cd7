//! A run's "Pods as the kubelet made them" block: the node (Kubernetes version, cgroup version
//! and driver, node allocatable, the settings the scenario set), then per pod its QoS class,
//! every value the kubelet's rules wrote into its cgroups (value written, value the kernel read
//! back, flagged when they differ, the rule with its numbers and its Kubernetes source), and
//! per container its processes with the `oom_score_adj` each read back. Entry point:
//! [`pods_section`].

use rsslab_kubelet::{QosClass, bytes_text};
use rsslab_wire::EventKind;
use rsslab_wire::pod::{CgroupDriver, ContainerSpec, NodeSpec, PodSpec, container_key};
use serde::Serialize;

use crate::analysis::kubelet::{
    KubeletWrite, LIMIT_FILES, OOM_SCORE_ADJ, Owner, kubelet_writes, pod_classes,
};
use crate::records::LoadedRun;

/// The files whose values are sizes in bytes.
const SIZE_FILES: [&str; 7] = [
    "memory.max",
    "memory.high",
    "memory.low",
    "memory.min",
    "memory.swap.max",
    "memory.limit_in_bytes",
    "memory.memsw.limit_in_bytes",
];
/// A size from here up is "no limit" (v1 reads -1 back as the largest multiple of a page).
const NO_LIMIT: u64 = 1 << 62;
/// A part of a cgroup's name longer than this is an id ...
const LONG_ID: usize = 20;
/// ... of which a shortened name keeps this many characters.
const ID_CHARS: usize = 12;

/// The block, when the run has pods.
#[derive(Debug, Serialize)]
pub struct PodsSection {
    pub kubernetes: String,
    pub cgroup_version: u8,
    pub cgroup_driver: &'static str,
    /// `kubepods`' limit as the kernel read it back (`470.0MiB`).
    pub allocatable: Option<String>,
    /// What the scenario set besides the version (`MemoryQoS = true`, `systemReserved = 64MiB`).
    pub settings: Vec<String>,
    /// The values of `kubepods` and the QoS levels (and of any cgroup no pod explains).
    pub node_values: Vec<ValueRow>,
    pub pods: Vec<PodBlock>,
    /// Values in all, and how many of them the kernel read back otherwise.
    pub values: usize,
    pub differing: usize,
}

#[derive(Debug, Serialize)]
pub struct PodBlock {
    pub name: String,
    pub qos: &'static str,
    /// The pod's cgroup's values, then each container's, in the pod's order.
    pub values: Vec<ValueRow>,
    pub containers: Vec<ContainerBlock>,
}

#[derive(Debug, Serialize)]
pub struct ContainerBlock {
    pub name: String,
    /// `sidecar`, `init`, or none.
    pub kind: Option<&'static str>,
    /// `request 64MiB, limit 128MiB`, or `no request, no limit`.
    pub resources: String,
    /// What the kubelet's rules set for its processes.
    pub oom_score_adj: Option<String>,
    /// The scenario's processes in it, its main one first.
    pub processes: Vec<ProcessAdj>,
    /// Each time it ended and what the kubelet did then: `OOMKilled (137) at 2.4 s, restarted
    /// at once`, `... back-off 1 s, restarted at 4.6 s`, `..., not restarted`.
    pub ends: Vec<String>,
}

/// A process of a container and the `oom_score_adj` it read back when it started.
#[derive(Debug, Serialize)]
pub struct ProcessAdj {
    pub name: String,
    /// The container's first process.
    pub main: bool,
    /// `None`: it never started (or its guest did not say).
    pub oom_score_adj: Option<i32>,
    /// It read back otherwise than the kubelet's rules set.
    pub differs: bool,
}

/// One value the kubelet's rules wrote.
#[derive(Debug, Serialize)]
pub struct ValueRow {
    /// Whose cgroup: `kubepods`, `Burstable pods`, `pod`, or the container's name.
    pub whose: String,
    /// The cgroup's own name, long ids cut (`cri-containerd-d12107af….scope`).
    pub cgroup: String,
    /// Its full path under the hierarchy's root, for the title attribute.
    pub cgroup_path: String,
    pub file: String,
    pub value: String,
    /// The value as a size, when it is one (`128MiB`).
    pub value_size: Option<String>,
    pub read: Option<String>,
    pub read_size: Option<String>,
    /// The kernel read back otherwise than written.
    pub differs: bool,
    /// How, in words, when it `differs`.
    pub difference: Option<String>,
    /// `oom_score_adj`: each process reads its own back (the container's processes below).
    pub per_process: bool,
    pub rule: String,
    pub source: String,
}

/// The block of `run`, when it has pods.
pub fn pods_section(run: &LoadedRun) -> Option<PodsSection> {
    let node = run.record.spec.node.as_ref()?;
    let writes = kubelet_writes(run);
    let mut node_values = rows(&writes, Owner::Node, "kubepods");
    for qos in [QosClass::Burstable, QosClass::BestEffort] {
        let whose = format!("{} pods", qos.as_str());
        node_values.extend(rows(&writes, Owner::Qos(qos), &whose));
    }
    node_values.extend(rows(&writes, Owner::Unknown, "?"));
    let allocatable = writes
        .iter()
        .filter(|write| write.owner == Owner::Node && LIMIT_FILES.contains(&write.file))
        .find_map(KubeletWrite::bytes)
        .map(bytes_text);
    let pods: Vec<PodBlock> = node
        .pods
        .iter()
        .zip(pod_classes(node))
        .enumerate()
        .map(|(index, (pod, qos))| pod_block(run, &writes, index, pod, qos))
        .collect();
    let all_rows = || {
        node_values
            .iter()
            .chain(pods.iter().flat_map(|pod| &pod.values))
    };
    Some(PodsSection {
        kubernetes: node.kubernetes.to_string(),
        cgroup_version: node.cgroup_version,
        cgroup_driver: match node.cgroup_driver {
            CgroupDriver::Systemd => "systemd",
            CgroupDriver::Cgroupfs => "cgroupfs",
        },
        allocatable,
        settings: settings(node),
        values: all_rows().count(),
        differing: all_rows().filter(|row| row.differs).count(),
        node_values,
        pods,
    })
}

/// The rows of the values written into `owner`'s cgroup, in the order they were written.
fn rows(writes: &[KubeletWrite<'_>], owner: Owner, whose: &str) -> Vec<ValueRow> {
    writes
        .iter()
        .filter(|write| write.owner == owner)
        .map(|write| value_row(write, whose))
        .collect()
}

/// The pod at `index` of the node: its values (its own cgroup's, then each container's) and
/// its containers.
fn pod_block(
    run: &LoadedRun,
    writes: &[KubeletWrite<'_>],
    index: usize,
    pod: &PodSpec,
    qos: QosClass,
) -> PodBlock {
    let mut values = rows(writes, Owner::Pod(index), "pod");
    let containers = pod
        .all_containers()
        .enumerate()
        .map(|(number, container)| {
            let owner = Owner::Container {
                pod: index,
                container: number,
            };
            values.extend(rows(writes, owner, &container.name));
            let planned = writes
                .iter()
                .find(|write| write.owner == owner && write.file == OOM_SCORE_ADJ)
                .map(|write| write.value.trim().to_owned());
            let key = container_key(&pod.name, &container.name);
            ContainerBlock {
                name: container.name.clone(),
                kind: container_kind(number < pod.init_containers.len(), container),
                resources: resources_text(container),
                processes: process_adjs(run, &key, planned.as_deref()),
                oom_score_adj: planned,
                ends: ends_text(run, &key),
            }
        })
        .collect();
    PodBlock {
        name: pod.name.clone(),
        qos: qos.as_str(),
        values,
        containers,
    }
}

/// Each end of container `key`, in words: reason, exit code, when, and the restart.
fn ends_text(run: &LoadedRun, key: &str) -> Vec<String> {
    let seconds = |ms: u64| format!("{:.1} s", ms as f64 / 1000.0);
    crate::analysis::pods::terminations(run, key)
        .iter()
        .map(|end| {
            let then = match (end.back_off_ms, end.restarted_ms) {
                (None, Some(_)) => "restarted at once".to_owned(),
                (Some(delay), Some(at)) => {
                    format!("back-off {}, restarted at {}", seconds(delay), seconds(at))
                }
                (Some(delay), None) => format!("back-off {}", seconds(delay)),
                (None, None) => "not restarted".to_owned(),
            };
            format!(
                "{} ({}) at {}, {then}",
                end.reason,
                end.exit_code,
                seconds(end.t_ms)
            )
        })
        .collect()
}

fn value_row(write: &KubeletWrite<'_>, whose: &str) -> ValueRow {
    let differs = write.read_back_differs();
    let difference = differs.then(|| {
        let read = write.read.unwrap_or_default().trim();
        match (write.value.trim().parse::<i128>(), read.parse::<i128>()) {
            (Ok(value), Ok(read)) if read < value => {
                format!(
                    "the kernel reads back {} bytes less than written",
                    value - read
                )
            }
            (Ok(value), Ok(read)) => {
                format!(
                    "the kernel reads back {} bytes more than written",
                    read - value
                )
            }
            _ => "the kernel reads back another value than written".to_owned(),
        }
    });
    ValueRow {
        whose: whose.to_owned(),
        cgroup: short_cgroup(write.cgroup),
        cgroup_path: write.cgroup.to_owned(),
        file: write.file.to_owned(),
        value: write.value.to_owned(),
        value_size: size_text(write.file, write.value),
        read: write.read.map(str::to_owned),
        read_size: write.read.and_then(|read| size_text(write.file, read)),
        differs,
        difference,
        per_process: write.file == OOM_SCORE_ADJ,
        rule: write.rule.to_owned(),
        source: write.source.to_owned(),
    }
}

/// `value` of `file` as a size (`121.6MiB`, `no limit`), when the file holds one and it is
/// not 0.
fn size_text(file: &str, value: &str) -> Option<String> {
    if !SIZE_FILES.contains(&file) {
        return None;
    }
    match value.trim().parse::<u64>().ok()? {
        0 => None,
        bytes if bytes >= NO_LIMIT => Some("no limit".to_owned()),
        bytes => Some(bytes_text(bytes)),
    }
}

/// A cgroup's own name (the path's last part) with each long id (a part between `-` and `.`
/// of more than [`LONG_ID`] characters: a pod's uid, a container's id) cut to its first
/// [`ID_CHARS`].
pub fn short_cgroup(path: &str) -> String {
    let name = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path);
    let mut short = String::with_capacity(name.len());
    let mut part = String::new();
    let cut = |part: &mut String, short: &mut String| {
        if part.chars().count() > LONG_ID {
            let kept: String = part.chars().take(ID_CHARS).collect();
            short.push_str(kept.trim_end_matches('_'));
            short.push('…');
        } else {
            short.push_str(part);
        }
        part.clear();
    };
    for c in name.chars() {
        if c == '-' || c == '.' {
            cut(&mut part, &mut short);
            short.push(c);
        } else {
            part.push(c);
        }
    }
    cut(&mut part, &mut short);
    short
}

fn container_kind(init: bool, container: &ContainerSpec) -> Option<&'static str> {
    match (container.sidecar, init) {
        (true, _) => Some("sidecar"),
        (false, true) => Some("init"),
        (false, false) => None,
    }
}

fn resources_text(container: &ContainerSpec) -> String {
    let memory = |what: &str, bytes: Option<rsslab_wire::Bytes>| match bytes {
        Some(bytes) => format!("{what} {}", bytes_text(bytes.0)),
        None => format!("no {what}"),
    };
    format!(
        "{}, {}",
        memory("request", container.requests.memory),
        memory("limit", container.limits.memory)
    )
}

/// The node's settings the scenario set (the others are the version's defaults).
fn settings(node: &NodeSpec) -> Vec<String> {
    let mut settings: Vec<String> = node
        .feature_gates
        .iter()
        .map(|(gate, on)| format!("{gate} = {on}"))
        .collect();
    for (name, bytes) in [
        ("systemReserved", node.system_reserved),
        ("kubeReserved", node.kube_reserved),
    ] {
        if bytes.0 > 0 {
            settings.push(format!("{name} = {}", bytes_text(bytes.0)));
        }
    }
    if let Some(factor) = node.memory_throttling_factor {
        settings.push(format!("memoryThrottlingFactor = {factor}"));
    }
    if let Some(single) = node.single_process_oom_kill {
        settings.push(format!("singleProcessOOMKill = {single}"));
    }
    if let Some(policy) = &node.memory_reservation_policy {
        settings.push(format!("memoryReservationPolicy = {policy}"));
    }
    settings
}

/// The processes of the container `key`, in the scenario's order (the first is its main one),
/// each with the `oom_score_adj` it read back when it first started.
fn process_adjs(run: &LoadedRun, key: &str, planned: Option<&str>) -> Vec<ProcessAdj> {
    let planned: Option<i32> = planned.and_then(|value| value.parse().ok());
    run.record
        .spec
        .processes
        .iter()
        .filter(|process| process.container.as_deref() == Some(key))
        .enumerate()
        .map(|(index, process)| {
            let read = run.record.events.iter().find_map(|event| match event.kind {
                EventKind::Started { oom_score_adj, .. }
                    if event.process.as_deref() == Some(process.name.as_str()) =>
                {
                    Some(oom_score_adj)
                }
                _ => None,
            });
            let oom_score_adj = read.flatten();
            ProcessAdj {
                name: process.name.clone(),
                main: index == 0,
                oom_score_adj,
                differs: oom_score_adj.is_some() && planned.is_some() && oom_score_adj != planned,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::testing::{fake_pod_run, fake_run};

    #[test]
    fn a_run_without_pods_has_no_block() {
        assert!(pods_section(&fake_run("demo", "6.1", "free")).is_none());
    }

    #[test]
    fn the_block_lists_the_node_each_pod_and_its_containers() {
        let run = fake_pod_run("pods", "6.1", true);
        let section = pods_section(&run).unwrap();
        assert_eq!(
            (
                section.kubernetes.as_str(),
                section.cgroup_version,
                section.cgroup_driver
            ),
            ("1.31", 2, "systemd")
        );
        // 1 GiB of capacity less 64 MiB systemReserved.
        assert_eq!(section.allocatable.as_deref(), Some("960MiB"));
        assert_eq!(
            section.settings,
            ["MemoryQoS = true", "systemReserved = 64MiB"]
        );
        assert_eq!(section.node_values[0].whose, "kubepods");
        assert_eq!(section.node_values[0].cgroup, "kubepods.slice");
        let web = &section.pods[0];
        assert_eq!((web.name.as_str(), web.qos), ("web", "Burstable"));
        assert_eq!(section.pods[1].qos, "BestEffort");
        let whose: Vec<&str> = web.values.iter().map(|row| row.whose.as_str()).collect();
        let first_api = whose.iter().position(|w| *w == "api").unwrap();
        assert_eq!(whose[0], "pod");
        assert!(whose[..first_api].contains(&"log-shipper"), "{whose:?}");
        let api_max = web
            .values
            .iter()
            .find(|row| row.whose == "api" && row.file == "memory.max")
            .unwrap();
        assert_eq!(api_max.value, (128u64 << 20).to_string());
        assert_eq!(api_max.value_size.as_deref(), Some("128MiB"));
        assert_eq!(api_max.cgroup, "cri-containerd-bbbbbbbbbbbb….scope");
        assert!(
            api_max
                .cgroup_path
                .ends_with(&format!("{}.scope", "b".repeat(64)))
        );
        assert!(
            api_max.source.contains("kuberuntime_container_linux.go"),
            "{}",
            api_max.source
        );
        let [shipper, api] = &web.containers[..] else {
            panic!("{:?}", web.containers)
        };
        assert_eq!(shipper.kind, Some("sidecar"));
        assert_eq!(shipper.resources, "request 16MiB, limit 32MiB");
        assert_eq!(api.kind, None);
        let processes: Vec<(&str, bool, Option<i32>)> = api
            .processes
            .iter()
            .map(|p| (p.name.as_str(), p.main, p.oom_score_adj))
            .collect();
        let adj: i32 = api.oom_score_adj.as_deref().unwrap().parse().unwrap();
        assert_eq!(
            processes,
            [("api", true, Some(adj)), ("worker", false, Some(adj))]
        );
        assert!(api.processes.iter().all(|p| !p.differs));
        assert_eq!(
            section.pods[1].containers[0].resources,
            "no request, no limit"
        );
    }

    #[test]
    fn each_end_of_a_container_says_what_the_kubelet_did() {
        use rsslab_wire::Event;
        let mut run = fake_pod_run("pods", "6.1", false);
        let event = |t_ms: u64, kind: EventKind| Event {
            t_ms,
            process: None,
            kind,
        };
        let terminated = |t_ms: u64| {
            event(
                t_ms,
                EventKind::ContainerTerminated {
                    container: "web/api".into(),
                    reason: "OOMKilled".into(),
                    exit_code: 137,
                    restart_count: 0,
                },
            )
        };
        run.record.events.extend([
            terminated(2_400),
            event(
                2_410,
                EventKind::ContainerRestarted {
                    container: "web/api".into(),
                    id: "ab".repeat(32),
                    restart_count: 1,
                },
            ),
            terminated(3_600),
            event(
                3_600,
                EventKind::ContainerBackOff {
                    container: "web/api".into(),
                    delay_ms: 10_000,
                    restart_count: 1,
                },
            ),
        ]);
        let section = pods_section(&run).unwrap();
        let web = section.pods.iter().find(|pod| pod.name == "web").unwrap();
        let api = web.containers.iter().find(|c| c.name == "api").unwrap();
        assert_eq!(
            api.ends,
            [
                "OOMKilled (137) at 2.4 s, restarted at once",
                "OOMKilled (137) at 3.6 s, back-off 10.0 s"
            ]
        );
        let shipper = web
            .containers
            .iter()
            .find(|c| c.name == "log-shipper")
            .unwrap();
        assert!(shipper.ends.is_empty());
    }

    #[test]
    fn a_value_read_back_otherwise_is_flagged_and_counted() {
        let run = fake_pod_run("pods", "6.1", true);
        let section = pods_section(&run).unwrap();
        let differing: Vec<&ValueRow> = section
            .pods
            .iter()
            .flat_map(|pod| &pod.values)
            .filter(|row| row.differs)
            .collect();
        assert_eq!(differing.len(), 1);
        assert_eq!(section.differing, 1);
        let high = differing[0];
        assert_eq!(
            (high.whose.as_str(), high.file.as_str()),
            ("api", "memory.high")
        );
        assert_eq!(high.read.as_deref(), Some("127504384"));
        assert_eq!(high.read_size.as_deref(), Some("121.6MiB"));
        assert_eq!(
            high.difference.as_deref(),
            Some("the kernel reads back 2457 bytes less than written")
        );
        assert!(high.rule.starts_with("MemoryQoS (1.27+)"), "{}", high.rule);
        let adj = section.pods[0]
            .values
            .iter()
            .find(|row| row.file == OOM_SCORE_ADJ)
            .unwrap();
        assert!(adj.per_process && !adj.differs && adj.read.is_none());
        let without = pods_section(&fake_pod_run("pods", "6.1", false)).unwrap();
        assert_eq!(without.differing, 0);
        assert!(
            without.pods[0]
                .values
                .iter()
                .all(|row| row.file != "memory.high")
        );
    }

    #[test]
    fn a_process_that_read_back_another_oom_score_adj_is_flagged() {
        let mut run = fake_pod_run("pods", "6.1", false);
        for event in &mut run.record.events {
            if event.process.as_deref() == Some("worker")
                && let EventKind::Started { oom_score_adj, .. } = &mut event.kind
            {
                *oom_score_adj = Some(-998);
            }
        }
        let section = pods_section(&run).unwrap();
        let api = &section.pods[0].containers[1];
        let flagged: Vec<(&str, bool)> = api
            .processes
            .iter()
            .map(|p| (p.name.as_str(), p.differs))
            .collect();
        assert_eq!(flagged, [("api", false), ("worker", true)]);
    }

    #[test]
    fn cgroup_names_are_cut_at_their_ids() {
        assert_eq!(
            short_cgroup(
                "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podb97074a5_4f32_4aab_890d_e07eaab6c71f.slice"
            ),
            "kubepods-burstable-podb97074a5….slice"
        );
        assert_eq!(
            short_cgroup(&format!("a/b/cri-containerd-{}.scope", "d1".repeat(32))),
            "cri-containerd-d1d1d1d1d1d1….scope"
        );
        assert_eq!(short_cgroup("kubepods/besteffort"), "besteffort");
        // cgroupfs: a uid with its dashes is short parts; a container id is one long part.
        let uid = "4a917efd-a9ee-4274-9391-163dbf4d6d08";
        assert_eq!(
            short_cgroup(&format!("kubepods/pod{uid}")),
            format!("pod{uid}")
        );
        assert_eq!(
            short_cgroup(&format!("kubepods/pod{uid}/{}", "ab".repeat(32))),
            "abababababab…"
        );
        assert_eq!(
            size_text("memory.max", "9223372036854771712").as_deref(),
            Some("no limit")
        );
        assert_eq!(size_text("memory.oom.group", "1"), None);
        assert_eq!(size_text("memory.swap.max", "0"), None);
        assert_eq!(size_text("memory.max", "max"), None);
    }
}
