//! The kubelet's memory rules, applied as a given Kubernetes version applies them.
//!
//! No kubelet runs in rsslab's guests. Given a node ([`NodeSpec`]: the Kubernetes version, the
//! cgroup version and driver, the kubelet's settings and the pods) and the machine as the
//! kubelet reads it ([`Machine`]), [`plan`] says which cgroups the kubelet and the container
//! runtime make, what they write into each (`memory.max`, `memory.min`, `memory.low`,
//! `memory.high`, `memory.oom.group`, `memory.swap.max`, and cgroup v1's
//! `memory.limit_in_bytes` and `memory.memsw.limit_in_bytes`) and the `oom_score_adj` of each
//! container's processes. Every value comes with its [`Rule`]: the formula with the numbers
//! filled in and the Kubernetes source it follows (file and function). [`check`] finds what a
//! kubelet of that version would refuse. The guest agent applies the plan with the capacity it
//! reads in the guest; the runner checks scenarios with [`check`] and shows the rules.
//!
//! The rules were read per release, 1.25 to 1.36, in the kubelet's own source (the versions
//! a stage's docs name are where a rule first appears). One module per Kubernetes source file:
//! - [`settings`]: feature gates, `memoryThrottlingFactor`, `singleProcessOOMKill`,
//!   `memoryReservationPolicy` per version, and what the kubelet refuses;
//! - [`qos`]: the QoS class (`pkg/apis/core/v1/helper/qos/qos.go`);
//! - [`resources`]: a pod's aggregated request and limit (`PodRequests`, `PodLimits`);
//! - [`oom`]: `oom_score_adj` (`pkg/kubelet/qos/policy.go`);
//! - [`names`]: cgroup names under the systemd and cgroupfs drivers;
//! - [`node`]: `kubepods` and the QoS levels (`node_container_manager_linux.go`,
//!   `qos_container_manager_linux.go`);
//! - [`pod`]: a pod's cgroup (`helpers_linux.go`, `ResourceConfigForPod`);
//! - [`container`]: a container's cgroup (`kuberuntime_container_linux.go`);
//! - [`restart`]: a container that ended: the runtime's reason, whether and when the kubelet
//!   starts it again (`ShouldContainerBeRestarted`, `doBackOff`);
//! - [`eviction`]: the eviction manager's signal, thresholds and ranking of pods
//!   (`pkg/kubelet/eviction/helpers.go`); the agent does not run it yet.
//!
//! Not modelled, and said so where it matters: pod-level resources (`spec.resources`, the
//! `PodLevelResources` gate), in-place resize, `QOSReserved`, LimitedSwap (the guest has no
//! swap), the pod's sandbox (pause) container, and CPU (which only decides the QoS class here).

pub mod container;
pub mod eviction;
pub mod names;
pub mod node;
pub mod oom;
pub mod pod;
pub mod qos;
pub mod resources;
pub mod restart;
pub mod settings;
#[cfg(test)]
mod testing;

use rsslab_wire::pod::{NodeSpec, container_key};
use serde::{Deserialize, Serialize};

pub use qos::QosClass;
pub use settings::{Problem, Settings, check};

/// The machine as the kubelet sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Machine {
    /// cAdvisor's `MemoryCapacity`: MemTotal of /proc/meminfo × 1024 (`machine/machine.go`,
    /// `GetMachineMemoryCapacity`).
    pub memory_capacity: u64,
    /// `os.Getpagesize()`, for MemoryQoS's `memory.high`.
    pub page_size: u64,
    /// Whether the kernel has the swap controller (`swapControllerAvailable`: v2
    /// `memory.swap.max` in the kubelet's own cgroup, v1
    /// `memory.memsw.limit_in_bytes`); the kubelet then writes "no swap".
    pub swap_controller: bool,
}

/// Everything the kubelet and the runtime set up for the node's pods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KubeletPlan {
    /// The settings in effect.
    pub version: String,
    pub capacity: u64,
    /// Node allocatable memory (`kubepods`' limit).
    pub allocatable: u64,
    /// Every cgroup, parents before children.
    pub cgroups: Vec<CgroupPlan>,
    /// The pods, in the node's order.
    pub pods: Vec<PodPlan>,
}

/// One cgroup: where, whose, and what is written into it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CgroupPlan {
    /// Relative to the hierarchy's root (`kubepods.slice/kubepods-burstable.slice`).
    pub path: String,
    pub level: Level,
    pub writes: Vec<Write>,
}

/// Whose cgroup it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "level")]
pub enum Level {
    /// `kubepods`: node allocatable.
    Node,
    /// A QoS level: `burstable` or `besteffort`.
    Qos {
        qos: QosClass,
    },
    Pod {
        pod: String,
    },
    /// `<pod>/<container>`.
    Container {
        container: String,
    },
}

/// One value written into one file, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Write {
    pub file: String,
    pub value: String,
    pub rule: Rule,
}

impl Write {
    fn new(file: &str, bytes: u64, rule: Rule) -> Write {
        Write::text(file, &bytes.to_string(), rule)
    }

    fn text(file: &str, value: &str, rule: Rule) -> Write {
        Write {
            file: file.to_owned(),
            value: value.to_owned(),
            rule,
        }
    }
}

/// Why a value is what it is: the rule with its numbers, and the source it follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// `MemoryQoS (1.27+): floor((request 64MiB + 0.9 × (limit 128MiB − request)) / page 4096) × page = 121.6MiB`.
    pub what: String,
    /// The Kubernetes source: file and function.
    pub source: String,
}

impl Rule {
    fn new(what: String, source: &str) -> Rule {
        Rule {
            what,
            source: source.to_owned(),
        }
    }
}

/// One pod: its class, its cgroup and its containers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodPlan {
    pub name: String,
    pub qos: QosClass,
    /// Index into [`KubeletPlan::cgroups`].
    pub cgroup: usize,
    /// Init containers first, in order, then the containers.
    pub containers: Vec<ContainerPlan>,
}

/// One container: its cgroup and its processes' `oom_score_adj`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerPlan {
    /// `<pod>/<container>`.
    pub key: String,
    pub name: String,
    /// The runtime's id of its first container (a restart is a new container:
    /// [`names::restarted_id`]).
    pub id: String,
    /// Index into [`KubeletPlan::cgroups`].
    pub cgroup: usize,
    pub init: bool,
    pub sidecar: bool,
    pub oom_score_adj: i32,
    pub oom_rule: Rule,
}

/// The kubelet's plan for `node` on `machine`. Run [`check`] first: a setting it refuses is
/// applied here as if it were allowed.
pub fn plan(node: &NodeSpec, machine: &Machine) -> KubeletPlan {
    let settings = settings::resolve(node);
    let driver = node.cgroup_driver;
    let capacity = machine.memory_capacity;
    let reserved = (node.system_reserved.0, node.kube_reserved.0);
    let allocatable = node::allocatable(capacity, reserved.0, reserved.1);
    let classes: Vec<(QosClass, resources::PodMemory)> = node
        .pods
        .iter()
        .map(|pod| {
            (
                qos::qos_class(pod),
                resources::pod_memory(pod, settings.version),
            )
        })
        .collect();
    let mut requests = node::QosRequests::default();
    for (class, memory) in &classes {
        match class {
            QosClass::Guaranteed => requests.guaranteed += memory.request,
            QosClass::Burstable => requests.burstable += memory.request,
            QosClass::BestEffort => {}
        }
    }
    let mut cgroups = vec![CgroupPlan {
        path: names::node(driver),
        level: Level::Node,
        writes: node::kubepods_writes(capacity, reserved, requests, &settings),
    }];
    for qos in [QosClass::Burstable, QosClass::BestEffort] {
        cgroups.push(CgroupPlan {
            path: names::qos_level(driver, qos),
            level: Level::Qos { qos },
            writes: node::qos_level_writes(qos, requests, &settings),
        });
    }
    let mut pods = Vec::new();
    for (spec, (class, memory)) in node.pods.iter().zip(classes) {
        let pod_path = names::pod(driver, class, &spec.uid);
        let pod_cgroup = cgroups.len();
        cgroups.push(CgroupPlan {
            path: pod_path.clone(),
            level: Level::Pod {
                pod: spec.name.clone(),
            },
            writes: pod::pod_writes(class, memory, &settings),
        });
        let mut containers = Vec::new();
        let all = spec
            .init_containers
            .iter()
            .map(|c| (c, true))
            .chain(spec.containers.iter().map(|c| (c, false)));
        for (container, init) in all {
            let key = container_key(&spec.name, &container.name);
            let (oom_score_adj, oom_rule) =
                oom::oom_score_adj(spec, class, container, capacity, &settings);
            containers.push(ContainerPlan {
                key: key.clone(),
                name: container.name.clone(),
                id: container.id.clone(),
                cgroup: cgroups.len(),
                init,
                sidecar: container.sidecar,
                oom_score_adj,
                oom_rule,
            });
            cgroups.push(CgroupPlan {
                path: names::container(driver, &pod_path, &container.id),
                level: Level::Container { container: key },
                writes: container::container_writes(
                    container,
                    class,
                    allocatable,
                    machine,
                    &settings,
                ),
            });
        }
        pods.push(PodPlan {
            name: spec.name.clone(),
            qos: class,
            cgroup: pod_cgroup,
            containers,
        });
    }
    KubeletPlan {
        version: node.kubernetes.to_string(),
        capacity,
        allocatable,
        cgroups,
        pods,
    }
}

/// A size for people: `64MiB`, `121.6MiB`, `3.5GiB`, `512KiB`, `100B`; exact sizes stay exact.
pub fn bytes_text(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size {
            return if bytes.is_multiple_of(size) {
                format!("{}{unit}", bytes / size)
            } else {
                format!("{:.1}{unit}", bytes as f64 / size as f64)
            };
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{container, machine, pod, sidecar};
    use rsslab_wire::pod::KubeVersion;

    const MIB: u64 = 1 << 20;

    fn node(pods: Vec<rsslab_wire::pod::PodSpec>) -> NodeSpec {
        NodeSpec {
            system_reserved: rsslab_wire::Bytes::mib(24),
            feature_gates: [("MemoryQoS".to_owned(), true)].into(),
            pods,
            ..NodeSpec::new(KubeVersion::new(31), 2)
        }
    }

    #[test]
    fn a_web_pod_with_a_sidecar_and_a_best_effort_batch_pod() {
        let mut web = pod(vec![container("api", (96, 250), (128, 1000))]);
        web.name = "web".into();
        web.init_containers = vec![sidecar("shipper", (32, 50), (64, 0))];
        let mut batch = pod(vec![container("job", (0, 0), (0, 0))]);
        batch.name = "batch".into();
        batch.uid = "11111111-2222-3333-4444-555555555555".into();
        let plan = plan(&node(vec![web, batch]), &machine());
        // machine(): 1000MiB capacity; allocatable 1000 - 24 = 976MiB.
        assert_eq!(plan.allocatable, 976 * MIB);
        let paths: Vec<&str> = plan.cgroups.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(
            paths[..3],
            [
                "kubepods.slice",
                "kubepods.slice/kubepods-burstable.slice",
                "kubepods.slice/kubepods-besteffort.slice"
            ]
        );
        assert_eq!(plan.pods[0].qos, QosClass::Burstable);
        assert_eq!(plan.pods[1].qos, QosClass::BestEffort);
        assert!(paths[plan.pods[1].cgroup].starts_with(
            "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod11111111_2222"
        ));
        // kubepods: allocatable, and memory.min = the Burstable web pod's requests 96 + 32.
        let kubepods: Vec<(&str, &str)> = plan.cgroups[0]
            .writes
            .iter()
            .map(|w| (w.file.as_str(), w.value.as_str()))
            .collect();
        assert_eq!(
            kubepods,
            [("memory.max", "1023410176"), ("memory.min", "134217728")]
        );
        // The pod: every container has a memory limit: 128 + 64 = 192MiB; memory.min 128MiB.
        let web_pod: Vec<(&str, &str)> = plan.cgroups[plan.pods[0].cgroup]
            .writes
            .iter()
            .map(|w| (w.file.as_str(), w.value.as_str()))
            .collect();
        assert_eq!(
            web_pod,
            [("memory.max", "201326592"), ("memory.min", "134217728")]
        );
        // The sidecar comes first and scores as the API from 1.32 only (here 1.31: 1000 − 32).
        let containers: Vec<(&str, i32)> = plan.pods[0]
            .containers
            .iter()
            .map(|c| (c.key.as_str(), c.oom_score_adj))
            .collect();
        assert_eq!(containers, [("web/shipper", 968), ("web/api", 904)]);
        assert_eq!(plan.pods[1].containers[0].oom_score_adj, 1000);
        let api = &plan.cgroups[plan.pods[0].containers[1].cgroup];
        assert!(
            api.path
                .ends_with(&format!("/cri-containerd-{}.scope", "ab".repeat(32))),
            "{}",
            api.path
        );
        assert!(
            api.writes
                .iter()
                .all(|w| !w.rule.source.is_empty() && !w.rule.what.is_empty())
        );
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(bytes_text(64 * MIB), "64MiB");
        assert_eq!(bytes_text(127_504_384), "121.6MiB");
        assert_eq!(bytes_text(3 << 30), "3GiB");
        assert_eq!(bytes_text(4096), "4KiB");
        assert_eq!(bytes_text(100), "100B");
    }
}
