//! A run's pods as `results.json` lists them: each pod's QoS class and cgroup values, and per
//! container the values the kubelet's rules wrote (as the kernel read them back), the
//! `oom_score_adj` its processes got, its peaks, its `memory.events` counts, and each time it
//! ended (the runtime's reason, the kubelet's back-off and restart).
//!
//! The values come from the run's `kubelet` events, matched to pods and containers by
//! [`super::kubelet`], the peaks and counts from the samples' `pod` and `container` maps.

use std::collections::BTreeMap;

use rsslab_kubelet::QosClass;
use rsslab_wire::pod::container_key;
use rsslab_wire::{EventKind, Metrics};
use serde::{Deserialize, Serialize};

use super::kubelet::{OOM_SCORE_ADJ, Owner, kubelet_writes, pod_classes};
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
    /// How often the kubelet started it again.
    #[serde(default)]
    pub restarts: u32,
    /// Each time it ended: the runtime's reason and what the kubelet did then.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub terminations: Vec<Termination>,
}

/// One end of a container, from the run's container events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Termination {
    pub t_ms: u64,
    /// `OOMKilled`, `Error` or `Completed`.
    pub reason: String,
    pub exit_code: i32,
    /// The CrashLoopBackOff before the restart (none: restarted at once, or not at all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub back_off_ms: Option<u64>,
    /// When the kubelet started it again (none: not restarted in the run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarted_ms: Option<u64>,
}

/// The terminations of container `key`, in time order, each with its back-off and restart.
pub fn terminations(run: &LoadedRun, key: &str) -> Vec<Termination> {
    let mut ends: Vec<Termination> = Vec::new();
    for event in &run.record.events {
        match &event.kind {
            EventKind::ContainerTerminated {
                container,
                reason,
                exit_code,
                ..
            } if container == key => ends.push(Termination {
                t_ms: event.t_ms,
                reason: reason.clone(),
                exit_code: *exit_code,
                back_off_ms: None,
                restarted_ms: None,
            }),
            EventKind::ContainerBackOff {
                container,
                delay_ms,
                ..
            } if container == key => {
                if let Some(last) = ends.last_mut() {
                    last.back_off_ms = Some(*delay_ms);
                }
            }
            EventKind::ContainerRestarted { container, .. } if container == key => {
                if let Some(last) = ends.last_mut() {
                    last.restarted_ms = Some(event.t_ms);
                }
            }
            _ => {}
        }
    }
    ends
}

/// The pods of `run`, by name; empty without pods.
pub fn pod_summaries(run: &LoadedRun) -> BTreeMap<String, PodSummary> {
    let Some(node) = &run.record.spec.node else {
        return BTreeMap::new();
    };
    let writes = kubelet_writes(run);
    let values = |owner: Owner| -> BTreeMap<String, String> {
        writes
            .iter()
            .filter(|write| write.owner == owner && write.file != OOM_SCORE_ADJ)
            .map(|write| {
                (
                    write.file.to_owned(),
                    write.read.unwrap_or(write.value).to_owned(),
                )
            })
            .collect()
    };
    let mut pods = BTreeMap::new();
    for (index, (pod, qos)) in node.pods.iter().zip(pod_classes(node)).enumerate() {
        let mut containers = BTreeMap::new();
        for (position, container) in pod.all_containers().enumerate() {
            let key = container_key(&pod.name, &container.name);
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
            let terminations_of = terminations(run, &key);
            let owner = Owner::Container {
                pod: index,
                container: position,
            };
            containers.insert(
                container.name.clone(),
                ContainerSummary {
                    values: values(owner),
                    oom_score_adj,
                    restarts: terminations_of
                        .iter()
                        .filter(|end| end.restarted_ms.is_some())
                        .count() as u32,
                    terminations: terminations_of,
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
                values: values(Owner::Pod(index)),
                peak: peaks(samples),
                containers,
            },
        );
    }
    pods
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::testing::{fake_pod_run, fake_run};

    const MIB: u64 = 1 << 20;

    #[test]
    fn each_end_of_a_container_with_its_back_off_and_restart() {
        use rsslab_wire::Event;
        let mut run = fake_pod_run("pods", "6.1", false);
        let event = |t_ms: u64, kind: EventKind| Event {
            t_ms,
            process: None,
            kind,
        };
        let terminated = |t_ms: u64, reason: &str, exit_code: i32| {
            event(
                t_ms,
                EventKind::ContainerTerminated {
                    container: "web/api".into(),
                    reason: reason.into(),
                    exit_code,
                    restart_count: 0,
                },
            )
        };
        let restarted = |t_ms: u64| {
            event(
                t_ms,
                EventKind::ContainerRestarted {
                    container: "web/api".into(),
                    id: "cd".repeat(32),
                    restart_count: 1,
                },
            )
        };
        run.record.events.extend([
            terminated(2_000, "OOMKilled", 137),
            restarted(2_005),
            terminated(3_000, "Error", 1),
            event(
                3_000,
                EventKind::ContainerBackOff {
                    container: "web/api".into(),
                    delay_ms: 10_000,
                    restart_count: 1,
                },
            ),
        ]);
        let api = &pod_summaries(&run)["web"].containers["api"];
        assert_eq!(api.restarts, 1);
        assert_eq!(
            api.terminations,
            [
                Termination {
                    t_ms: 2_000,
                    reason: "OOMKilled".into(),
                    exit_code: 137,
                    back_off_ms: None,
                    restarted_ms: Some(2_005),
                },
                Termination {
                    t_ms: 3_000,
                    reason: "Error".into(),
                    exit_code: 1,
                    back_off_ms: Some(10_000),
                    restarted_ms: None,
                },
            ]
        );
        assert!(
            pod_summaries(&run)["web"].containers["log-shipper"]
                .terminations
                .is_empty()
        );
    }

    #[test]
    fn each_pod_with_its_class_values_and_containers() {
        let run = fake_pod_run("pods", "6.1", true);
        let pods = pod_summaries(&run);
        assert_eq!(pods.keys().collect::<Vec<_>>(), ["batch", "web"]);
        let web = &pods["web"];
        assert_eq!(web.qos, QosClass::Burstable);
        assert_eq!(pods["batch"].qos, QosClass::BestEffort);
        // Every container has a limit: the pod's is api's 128 + the sidecar's 32.
        assert_eq!(web.values["memory.max"], (160 * MIB).to_string());
        let api = &web.containers["api"];
        assert_eq!(api.values["memory.max"], (128 * MIB).to_string());
        assert_eq!(api.values["memory.oom.group"], "1");
        // memory.high as the kernel read it back, page-rounded below what was written.
        let high: u64 = api.values["memory.high"].parse().unwrap();
        assert_eq!(high % 4096, 0);
        assert!(
            api.oom_score_adj
                .is_some_and(|adj| (3..=999).contains(&adj))
        );
        assert!(api.peak["working_set"] > 0);
        assert!(!api.peak.contains_key("available"), "its peak says nothing");
        assert!(web.containers.contains_key("log-shipper"));
    }

    #[test]
    fn a_run_without_pods_has_none() {
        assert!(pod_summaries(&fake_run("demo", "6.1", "free")).is_empty());
    }
}
