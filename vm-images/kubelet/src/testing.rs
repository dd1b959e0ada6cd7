//! Pods, machines and settings for the tests: amounts in MiB and millicores, 0 for none.

use rsslab_wire::Bytes;
use rsslab_wire::pod::{ContainerSpec, KubeVersion, NodeSpec, PodSpec, Resources, RestartPolicy};

use crate::Machine;
use crate::settings::{Settings, resolve};

fn resources((memory_mib, cpu_millis): (u64, u64)) -> Resources {
    Resources {
        memory: (memory_mib > 0).then(|| Bytes::mib(memory_mib)),
        cpu_millis: (cpu_millis > 0).then_some(cpu_millis),
    }
}

/// A container with `requests` and `limits` as (MiB, millicores).
pub fn container(name: &str, requests: (u64, u64), limits: (u64, u64)) -> ContainerSpec {
    ContainerSpec {
        name: name.into(),
        id: "ab".repeat(32),
        requests: resources(requests),
        limits: resources(limits),
        sidecar: false,
    }
}

/// An init container with `restartPolicy: Always`.
pub fn sidecar(name: &str, requests: (u64, u64), limits: (u64, u64)) -> ContainerSpec {
    ContainerSpec {
        sidecar: true,
        ..container(name, requests, limits)
    }
}

/// A pod `web` of these containers.
pub fn pod(containers: Vec<ContainerSpec>) -> PodSpec {
    PodSpec {
        name: "web".into(),
        uid: "0c1f3c1e-7c2a-4d8e-9b1a-3f6d2e5a7b90".into(),
        priority_class_name: None,
        priority: 0,
        restart_policy: RestartPolicy::Always,
        overhead: None,
        init_containers: Vec::new(),
        containers,
    }
}

/// 1000MiB of memory, 4KiB pages, the swap controller.
pub fn machine() -> Machine {
    Machine {
        memory_capacity: 1000 << 20,
        page_size: 4096,
        swap_controller: true,
    }
}

/// A node of Kubernetes 1.`minor` on cgroup `cgroup_version`, every setting at its default.
pub fn node(minor: u32, cgroup_version: u8) -> NodeSpec {
    NodeSpec::new(KubeVersion::new(minor), cgroup_version)
}

/// The default settings of Kubernetes 1.`minor` on cgroup `cgroup_version`.
pub fn settings(minor: u32, cgroup_version: u8) -> Settings {
    resolve(&node(minor, cgroup_version))
}
