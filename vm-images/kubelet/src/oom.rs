//! Each container's `oom_score_adj`: how the kernel's OOM killer weighs its processes.
//!
//! Follows `pkg/kubelet/qos/policy.go` (`GetContainerOOMScoreAdjust`), which the kubelet passes
//! to the runtime for every container (`kuberuntime_container_linux.go`,
//! `generateLinuxContainerResources`), with `memoryCapacity` = cAdvisor's `MemoryCapacity`
//! (`machine/machine.go`, `GetMachineMemoryCapacity`: MemTotal of /proc/meminfo × 1024):
//! - a node-critical pod (`types.IsNodeCriticalPod`: `priorityClassName:
//!   system-node-critical`, whose priority 2000001000 is past `SystemCriticalPriority`): −997;
//! - Guaranteed: −997; BestEffort: 1000;
//! - Burstable: `1000 − (1000 × request) / capacity` in integer arithmetic (Go's int64 division
//!   truncates), at least 3 (1000 + −997: below any Guaranteed container) and, when it comes to
//!   1000, 999 (above no BestEffort one);
//! - from 1.32 (`SidecarContainers` gate; ungated from 1.33), a sidecar's score is at most that
//!   of the pod's regular container with the smallest memory request (`minRegularContainerMemory`
//!   in `pkg/kubelet/qos/helpers.go`), before the clamps.

use rsslab_wire::pod::{ContainerSpec, PodSpec};

use crate::qos::QosClass;
use crate::settings::Settings;
use crate::{Rule, bytes_text};

const SOURCE: &str = "pkg/kubelet/qos/policy.go GetContainerOOMScoreAdjust";
const GUARANTEED: i64 = -997;
const BEST_EFFORT: i64 = 1000;

/// `system-node-critical`, the priority class of a node-critical pod.
pub const SYSTEM_NODE_CRITICAL: &str = "system-node-critical";

/// The `oom_score_adj` of `container`'s processes, with how it came about.
pub fn oom_score_adj(
    pod: &PodSpec,
    qos: QosClass,
    container: &ContainerSpec,
    capacity: u64,
    settings: &Settings,
) -> (i32, Rule) {
    let rule = |what: String| Rule::new(what, SOURCE);
    if pod.priority_class_name.as_deref() == Some(SYSTEM_NODE_CRITICAL) {
        return (
            GUARANTEED as i32,
            rule("node-critical pod (priorityClassName system-node-critical): -997".into()),
        );
    }
    match qos {
        QosClass::Guaranteed => return (GUARANTEED as i32, rule("Guaranteed: -997".into())),
        QosClass::BestEffort => return (BEST_EFFORT as i32, rule("BestEffort: 1000".into())),
        QosClass::Burstable => {}
    }
    let capacity = capacity.max(1) as i64;
    let score = |request: u64| 1000 - (1000 * request as i64) / capacity;
    let request = container.requests.memory_bytes();
    let mut adjust = score(request);
    let mut what = format!(
        "Burstable: 1000 - 1000 × request {} / capacity {} = {adjust}",
        bytes_text(request),
        bytes_text(capacity as u64)
    );
    let sidecar_rule =
        settings.version.minor >= 33 || (settings.version.minor == 32 && settings.sidecars);
    if sidecar_rule
        && container.sidecar
        && pod
            .init_containers
            .iter()
            .any(|init| init.name == container.name)
        && let Some(smallest) = pod
            .containers
            .iter()
            .map(|c| c.requests.memory_bytes())
            .min()
    {
        let floor = score(smallest);
        if adjust > floor {
            adjust = floor;
            what.push_str(&format!(
                "; a sidecar scores at most as the smallest regular container (request {}): {floor}",
                bytes_text(smallest)
            ));
        }
    }
    if adjust < 1000 + GUARANTEED {
        what.push_str(&format!(
            "; raised to {} (above Guaranteed)",
            1000 + GUARANTEED
        ));
        adjust = 1000 + GUARANTEED;
    } else if adjust == BEST_EFFORT {
        what.push_str("; lowered to 999 (below BestEffort)");
        adjust = BEST_EFFORT - 1;
    }
    (adjust as i32, rule(what))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qos::qos_class;
    use crate::testing::{container, pod, settings, sidecar};

    const MIB: u64 = 1 << 20;

    fn adj(pod: &PodSpec, index: usize, capacity: u64, minor: u32) -> i32 {
        let all: Vec<&ContainerSpec> = pod.all_containers().collect();
        oom_score_adj(
            pod,
            qos_class(pod),
            all[index],
            capacity,
            &settings(minor, 2),
        )
        .0
    }

    #[test]
    fn guaranteed_and_best_effort_are_fixed() {
        let guaranteed = pod(vec![container("db", (256, 500), (256, 500))]);
        assert_eq!(adj(&guaranteed, 0, 1024 * MIB, 31), -997);
        let best_effort = pod(vec![container("batch", (0, 0), (0, 0))]);
        assert_eq!(adj(&best_effort, 0, 1024 * MIB, 31), 1000);
    }

    #[test]
    fn burstable_scales_with_the_request_in_integer_arithmetic() {
        // 1000 - 1000 * 96MiB / 1000MiB = 1000 - 96 = 904.
        let web = pod(vec![container("api", (96, 250), (128, 0))]);
        assert_eq!(adj(&web, 0, 1000 * MIB, 31), 904);
        // 1000 - (1000 * 100MiB) / 3000MiB = 1000 - 33 (33.3 truncated) = 967.
        let web = pod(vec![container("api", (100, 0), (0, 0))]);
        assert_eq!(adj(&web, 0, 3000 * MIB, 31), 967);
    }

    #[test]
    fn burstable_stays_between_3_and_999() {
        // Requesting the whole machine: 1000 - 1000 = 0, raised to 3.
        let all = pod(vec![container("api", (1000, 0), (2000, 0))]);
        assert_eq!(adj(&all, 0, 1000 * MIB, 31), 3);
        // A burstable container without a memory request (CPU only): 1000, lowered to 999.
        let cpu_only = pod(vec![container("api", (0, 100), (0, 0))]);
        assert_eq!(adj(&cpu_only, 0, 1000 * MIB, 31), 999);
    }

    #[test]
    fn a_node_critical_pod_scores_as_guaranteed() {
        let mut daemon = pod(vec![container("agent", (0, 0), (0, 0))]);
        daemon.priority_class_name = Some(SYSTEM_NODE_CRITICAL.into());
        assert_eq!(adj(&daemon, 0, 1000 * MIB, 31), -997);
    }

    #[test]
    fn from_1_32_a_sidecar_scores_at_most_as_the_smallest_container() {
        // App requests 200MiB (800), sidecar 20MiB (980): the sidecar gets 800 from 1.32.
        let mut web = pod(vec![container("api", (200, 0), (400, 0))]);
        web.init_containers = vec![sidecar("shipper", (20, 0), (50, 0))];
        assert_eq!(adj(&web, 0, 1000 * MIB, 32), 800);
        assert_eq!(adj(&web, 0, 1000 * MIB, 31), 980, "before PR 128029");
        assert_eq!(adj(&web, 1, 1000 * MIB, 32), 800, "the app itself");
    }
}
