//! A run's pods as `results.json` lists them: each pod's QoS class and cgroup values, and per
//! container the values the kubelet's rules wrote (as the kernel read them back), the
//! `oom_score_adj` its processes got, its peaks and its `memory.events` counts.
//!
//! The values come from the run's `kubelet` events, matched to pods and containers by cgroup
//! path ([`rsslab_kubelet::names`]), the peaks and counts from the samples' `pod` and
//! `container` maps.

use std::collections::BTreeMap;

use rsslab_kubelet::QosClass;
use rsslab_kubelet::names;
use rsslab_wire::pod::container_key;
use rsslab_wire::{EventKind, Metrics};
use serde::{Deserialize, Serialize};

use crate::records::LoadedRun;
use crate::scenario::expect::{CGROUP_EVENTS, account_unit};

/// One pod of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodSummary {
    /// `Guaranteed`, `Burstable` or `BestEffort`, derived as Kubernetes derives it.
    pub qos: QosClass,
    /// The pod cgroup's files as the kubelet's rules set them, as read back (`memory.max`:
    /// `"201326592"`).
    pub values: BTreeMap<String, String>,
    /// Highest sampled value of each size of the pod's cgroup (`working_set`, `usage`, ...).
    pub peak: Metrics,
    /// Container name -> its summary.
    pub containers: BTreeMap<String, ContainerSummary>,
}

/// One container of a pod.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerSummary {
    /// The container cgroup's files as set and read back (`memory.max`, `memory.high`,
    /// `memory.oom.group`, ...).
    pub values: BTreeMap<String, String>,
    /// The `oom_score_adj` the kubelet's rules gave it, as its first process read it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i32>,
    /// Highest sampled value of each size (`working_set` as cAdvisor's
    /// `container_memory_working_set_bytes`, `rss`, `usage`, `file`, ...).
    pub peak: Metrics,
    /// `memory.events` counts at the last sample (`oom_kill`, `oom_group_kill`, `max`, ...).
    pub events: Metrics,
}

/// The pods of `run`, by name; empty without pods.
pub fn pod_summaries(run: &LoadedRun) -> BTreeMap<String, PodSummary> {
    let Some(node) = &run.record.spec.node else {
        return BTreeMap::new();
    };
    let written = written_values(run);
    let mut pods = BTreeMap::new();
    for pod in &node.pods {
        let qos = rsslab_kubelet::qos::qos_class(pod);
        let pod_path = names::pod(node.cgroup_driver, qos, &pod.uid);
        let mut containers = BTreeMap::new();
        for container in pod.all_containers() {
            let key = container_key(&pod.name, &container.name);
            let path = names::container(node.cgroup_driver, &pod_path, &container.id);
            let oom_score_adj = run.record.events.iter().find_map(|event| {
                let process = event.process.as_ref()?;
                let spec = run
                    .record
                    .spec
                    .processes
                    .iter()
                    .find(|p| &p.name == process)?;
                match &event.kind {
                    EventKind::Started { oom_score_adj, .. }
                        if spec.container.as_deref() == Some(key.as_str()) =>
                    {
                        *oom_score_adj
                    }
                    _ => None,
                }
            });
            let samples = || run.samples.iter().filter_map(|s| s.container.get(&key));
            containers.insert(
                container.name.clone(),
                ContainerSummary {
                    values: written.get(&path).cloned().unwrap_or_default(),
                    oom_score_adj,
                    peak: peaks(samples()),
                    events: last_events(samples()),
                },
            );
        }
        let samples = run.samples.iter().filter_map(|s| s.pod.get(&pod.name));
        pods.insert(
            pod.name.clone(),
            PodSummary {
                qos,
                values: written.get(&pod_path).cloned().unwrap_or_default(),
                peak: peaks(samples),
                containers,
            },
        );
    }
    pods
}

/// cgroup path -> file -> the value read back (or written, when it could not be read).
pub fn written_values(run: &LoadedRun) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut values: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for event in &run.record.events {
        if let EventKind::Kubelet {
            cgroup,
            file,
            value,
            read,
            ..
        } = &event.kind
            && file != "oom_score_adj"
        {
            values
                .entry(cgroup.clone())
                .or_default()
                .insert(file.clone(), read.clone().unwrap_or_else(|| value.clone()));
        }
    }
    values
}

/// The highest value of each size over `samples` (counters, and `available`, whose highest
/// value says nothing, left out).
fn peaks<'a>(samples: impl Iterator<Item = &'a Metrics>) -> Metrics {
    let mut peak = Metrics::new();
    for metrics in samples {
        let sizes = metrics
            .iter()
            .filter(|(name, _)| account_unit(name).is_none() && *name != "available");
        for (name, &value) in sizes {
            let high = peak.entry(name.clone()).or_insert(value);
            *high = (*high).max(value);
        }
    }
    peak
}

/// The `memory.events` counters of the last sample that has them.
fn last_events<'a>(samples: impl Iterator<Item = &'a Metrics>) -> Metrics {
    samples
        .last()
        .map(|metrics| {
            metrics
                .iter()
                .filter(|(name, _)| CGROUP_EVENTS.contains(&name.as_str()))
                .map(|(name, &value)| (name.clone(), value))
                .collect()
        })
        .unwrap_or_default()
}
