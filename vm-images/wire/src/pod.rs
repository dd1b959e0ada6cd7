//! Pods on a node, as the host hands them to the guest: the node's kubelet settings and each
//! pod's containers with their requests and limits. In scenarios: `[node]` and `[[pod]]` (or a
//! Kubernetes manifest).
//!
//! No kubelet runs in the guest. The agent applies the kubelet's rules itself (the
//! `rsslab-kubelet` crate, which cites the Kubernetes source of each) with the capacity it
//! reads from the guest, as the kubelet reads it from the machine, and writes what the kubelet
//! and the container runtime would write into the cgroup tree they would build.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::units::{Bytes, Millis};

/// The node the pods run on: which kubelet, which cgroups, what it keeps for itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// The Kubernetes minor version whose kubelet rules apply.
    pub kubernetes: KubeVersion,
    /// cgroup version, 1 or 2.
    pub cgroup_version: u8,
    /// How the kubelet and the runtime name cgroups.
    pub cgroup_driver: CgroupDriver,
    /// The kubelet's `systemReserved` memory.
    #[serde(default)]
    pub system_reserved: Bytes,
    /// The kubelet's `kubeReserved` memory.
    #[serde(default)]
    pub kube_reserved: Bytes,
    /// Feature gates set explicitly (`MemoryQoS`, `SidecarContainers`); the others have the
    /// version's default.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub feature_gates: BTreeMap<String, bool>,
    /// The kubelet's `memoryThrottlingFactor` (MemoryQoS); `None`: the version's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_throttling_factor: Option<f64>,
    /// The kubelet's `singleProcessOOMKill` (1.32 on); `None`: the version's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub single_process_oom_kill: Option<bool>,
    /// The kubelet's `memoryReservationPolicy` (MemoryQoS, 1.36 on): `None` or
    /// `TieredReservation`; `None` here: the version's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation_policy: Option<String>,
    /// The kubelet's `crashLoopBackOff.maxContainerRestartPeriod` (the
    /// `KubeletCrashLoopBackOffMax` gate); `None`: unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_container_restart_period: Option<Millis>,
    /// The pods, in the order the kubelet admits them.
    pub pods: Vec<PodSpec>,
}

impl NodeSpec {
    /// A node of Kubernetes `kubernetes` on cgroup `cgroup_version` with the systemd driver,
    /// nothing reserved, every setting at the version's default, and no pods.
    pub fn new(kubernetes: KubeVersion, cgroup_version: u8) -> NodeSpec {
        NodeSpec {
            kubernetes,
            cgroup_version,
            cgroup_driver: CgroupDriver::Systemd,
            system_reserved: Bytes(0),
            kube_reserved: Bytes(0),
            feature_gates: BTreeMap::new(),
            memory_throttling_factor: None,
            single_process_oom_kill: None,
            memory_reservation_policy: None,
            max_container_restart_period: None,
            pods: Vec::new(),
        }
    }
}

/// A Kubernetes minor version of the 1.x line, written `1.31`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KubeVersion {
    pub minor: u32,
}

impl KubeVersion {
    pub const fn new(minor: u32) -> Self {
        KubeVersion { minor }
    }
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "1.{}", self.minor)
    }
}

impl FromStr for KubeVersion {
    type Err = String;

    /// `1.31` (a patch release, `1.31.4`, names its minor version: the rules are per minor).
    fn from_str(text: &str) -> Result<Self, String> {
        let mut parts = text.trim().trim_start_matches('v').split('.');
        let major = parts.next().and_then(|part| part.parse::<u32>().ok());
        let minor = parts.next().and_then(|part| part.parse::<u32>().ok());
        let patch_ok = parts
            .next()
            .is_none_or(|patch| patch.parse::<u32>().is_ok());
        match (major, minor, patch_ok, parts.next()) {
            (Some(1), Some(minor), true, None) => Ok(KubeVersion { minor }),
            _ => Err(format!(
                "`{text}` is not a Kubernetes version: write \"1.<minor>\", e.g. \"1.31\""
            )),
        }
    }
}

impl Serialize for KubeVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KubeVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The kubelet's `cgroupDriver` (and the runtime's, which must match).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupDriver {
    /// `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/
    /// cri-containerd-<id>.scope`.
    #[default]
    Systemd,
    /// `kubepods/burstable/pod<uid>/<id>`.
    Cgroupfs,
}

/// One pod.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodSpec {
    /// `metadata.name`: a DNS label, unique in the run.
    pub name: String,
    /// `metadata.uid` (a UUID): in the pod's cgroup name.
    pub uid: String,
    /// `spec.priorityClassName`: `system-node-critical` changes the OOM score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// `spec.priority`, as the priority admission plugin resolves it (0 without a class).
    #[serde(default)]
    pub priority: i32,
    /// `spec.restartPolicy`.
    #[serde(default)]
    pub restart_policy: RestartPolicy,
    /// `spec.overhead.memory` (what a RuntimeClass adds to the pod's own resources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overhead: Option<Bytes>,
    /// `spec.initContainers`, in order; those with `restartPolicy: Always` are sidecars.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<ContainerSpec>,
    /// `spec.containers`.
    pub containers: Vec<ContainerSpec>,
}

impl PodSpec {
    /// Every container, init containers first.
    pub fn all_containers(&self) -> impl Iterator<Item = &ContainerSpec> {
        self.init_containers.iter().chain(&self.containers)
    }
}

/// A pod's `restartPolicy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestartPolicy {
    #[default]
    Always,
    OnFailure,
    Never,
}

/// One container of a pod.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerSpec {
    /// A DNS label, unique in its pod.
    pub name: String,
    /// The runtime's container id (64 hex digits): in the container's cgroup name.
    pub id: String,
    /// `resources.requests`, after the API server's defaulting (a limit without a request
    /// requests the limit).
    #[serde(default)]
    pub requests: Resources,
    /// `resources.limits`.
    #[serde(default)]
    pub limits: Resources,
    /// `restartPolicy: Always` on an init container: a sidecar, which keeps running beside the
    /// pod's containers.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sidecar: bool,
}

/// Requests or limits of the resources that decide the QoS class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// Bytes (a Kubernetes quantity's `Value()`, rounded up to a whole byte).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Bytes>,
    /// Millicores (a quantity's `MilliValue()`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_millis: Option<u64>,
}

impl Resources {
    /// Memory in bytes, 0 when unset (what `Quantity.Value()` of a missing entry gives).
    pub fn memory_bytes(&self) -> u64 {
        self.memory.map_or(0, |bytes| bytes.0)
    }
}

/// `<pod>/<container>`: how a process names its container, and the key of a container's
/// metrics in samples.
pub fn container_key(pod: &str, container: &str) -> String {
    format!("{pod}/{container}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_read_and_print_as_kubernetes_writes_them() {
        assert_eq!("1.31".parse::<KubeVersion>(), Ok(KubeVersion::new(31)));
        assert_eq!("v1.28.3".parse::<KubeVersion>(), Ok(KubeVersion::new(28)));
        assert_eq!(KubeVersion::new(27).to_string(), "1.27");
        for bad in ["2.1", "1", "1.x", "1.31.a", "1.31.2.1", ""] {
            assert!(bad.parse::<KubeVersion>().is_err(), "{bad}");
        }
        assert!(KubeVersion::new(28) > KubeVersion::new(9));
    }

    #[test]
    fn a_node_round_trips_as_json() {
        let node = NodeSpec {
            kubernetes: KubeVersion::new(31),
            cgroup_version: 2,
            cgroup_driver: CgroupDriver::Systemd,
            system_reserved: Bytes::mib(64),
            kube_reserved: Bytes(0),
            feature_gates: [("MemoryQoS".to_owned(), true)].into(),
            memory_throttling_factor: Some(0.9),
            single_process_oom_kill: None,
            memory_reservation_policy: None,
            max_container_restart_period: None,
            pods: vec![PodSpec {
                name: "web".into(),
                uid: "0c1f3c1e-7c2a-4d8e-9b1a-3f6d2e5a7b90".into(),
                priority_class_name: None,
                priority: 0,
                restart_policy: RestartPolicy::Always,
                overhead: None,
                init_containers: vec![],
                containers: vec![ContainerSpec {
                    name: "api".into(),
                    id: "ab".repeat(32),
                    requests: Resources {
                        memory: Some(Bytes::mib(64)),
                        cpu_millis: Some(250),
                    },
                    limits: Resources {
                        memory: Some(Bytes::mib(128)),
                        cpu_millis: None,
                    },
                    sidecar: false,
                }],
            }],
        };
        let json = serde_json::to_string(&node).unwrap();
        assert!(json.contains(r#""kubernetes":"1.31""#), "{json}");
        assert!(json.contains(r#""cgroup_driver":"systemd""#), "{json}");
        assert_eq!(serde_json::from_str::<NodeSpec>(&json).unwrap(), node);
        assert_eq!(container_key("web", "api"), "web/api");
    }
}
