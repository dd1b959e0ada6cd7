//! The kubelet settings that decide the memory rules, resolved for a Kubernetes version: the
//! feature gates' defaults, `memoryThrottlingFactor`, `singleProcessOOMKill` and
//! `memoryReservationPolicy`, and the settings a kubelet of that version refuses.
//!
//! Sources, per release:
//! - feature gates: `pkg/features/kube_features.go` (`defaultVersionedKubernetesFeatureGates`
//!   from 1.32, the flat `defaultKubernetesFeatureGates` before): `MemoryQoS` alpha and off in
//!   every supported version; `SidecarContainers` alpha and off in 1.28, beta and on in 1.29, GA
//!   (locked on) from 1.33;
//! - `memoryThrottlingFactor`: `pkg/kubelet/apis/config/v1beta1/defaults.go`
//!   (`DefaultMemoryThrottlingFactor`): 0.8 before 1.27, 0.9 from 1.27; validated in (0, 1] by
//!   `pkg/kubelet/apis/config/validation/validation.go` (`ValidateKubeletConfiguration`);
//! - `singleProcessOOMKill` (1.32 on): resolved in `pkg/kubelet/kubelet.go` (`NewMainKubelet`):
//!   always true on cgroup v1, false on v2 unless set; an explicit false on v1 is refused by
//!   `pkg/kubelet/apis/config/validation/validation_linux.go` (`validateKubeletOSConfiguration`);
//! - `memoryReservationPolicy` (1.36 on): `None` by default (`v1beta1/defaults.go`),
//!   `TieredReservation` refused without the `MemoryQoS` gate (validation.go);
//! - the container restart back-off (see [`crate::restart`]): `KubeletCrashLoopBackOffMax`
//!   alpha and off from 1.32, beta and on from 1.35, with `crashLoopBackOff
//!   .maxContainerRestartPeriod` from 1 s to 300 s, refused without the gate (validation.go);
//!   `ReduceDefaultCrashLoopBackOffDecay` alpha and off from 1.33.

use rsslab_wire::pod::{KubeVersion, NodeSpec};

/// The oldest Kubernetes version whose rules rsslab applies.
pub const OLDEST: KubeVersion = KubeVersion::new(25);
/// The newest: its kubelet's source was read for every rule of this crate. 1.37 is not yet:
/// MemoryQoS was to change there (beta).
pub const NEWEST: KubeVersion = KubeVersion::new(36);

/// The feature gates rsslab reads, as the kubelet's `featureGates` names them.
pub const FEATURE_GATES: &[&str] = &[
    "MemoryQoS",
    "SidecarContainers",
    "KubeletCrashLoopBackOffMax",
    "ReduceDefaultCrashLoopBackOffDecay",
];

/// The first version of each gate that did not always exist (`MemoryQoS` is older than
/// every version rsslab knows).
fn gate_since(name: &str) -> u32 {
    match name {
        "SidecarContainers" => 28,
        "KubeletCrashLoopBackOffMax" => 32,
        "ReduceDefaultCrashLoopBackOffDecay" => 33,
        _ => 0,
    }
}

/// `crashLoopBackOff.maxContainerRestartPeriod`'s allowed range, in ms (validation.go).
const RESTART_PERIOD_RANGE_MS: std::ops::RangeInclusive<u64> = 1_000..=300_000;

/// `memoryReservationPolicy` values (1.36).
pub const RESERVATION_POLICIES: &[&str] = &["None", "TieredReservation"];

/// What the rules of [`crate::plan`] depend on, resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub version: KubeVersion,
    pub cgroup_v2: bool,
    /// `MemoryQoS` is on and the node is on cgroup v2 (the kubelet's `enforceMemoryQoS`).
    pub memory_qos: bool,
    /// Restartable init containers are sidecars (`SidecarContainers` on).
    pub sidecars: bool,
    pub throttling_factor: f64,
    /// Containers get `memory.oom.group = 1`: cgroup v2, 1.28 on, and `singleProcessOOMKill`
    /// false.
    pub group_oom_kill: bool,
    /// `singleProcessOOMKill` as the kubelet resolved it (1.32 on; `None` before).
    pub single_process_oom_kill: Option<bool>,
    /// `memoryReservationPolicy: TieredReservation` (1.36 on).
    pub tiered_reservation: bool,
    /// `ReduceDefaultCrashLoopBackOffDecay` is on.
    pub reduced_back_off_decay: bool,
    /// With `KubeletCrashLoopBackOffMax` on: `crashLoopBackOff.maxContainerRestartPeriod`,
    /// defaulted to 300 s.
    pub max_container_restart_period_ms: Option<u64>,
}

/// A setting a kubelet of the node's version refuses or does not know: which key, why, what
/// to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The setting (`kubernetes`, `single_process_oom_kill`, `feature_gates.MemoryQoS`, ...).
    pub key: String,
    pub message: String,
    pub help: String,
}

impl Problem {
    fn new(key: &str, message: String, help: String) -> Problem {
        Problem {
            key: key.to_owned(),
            message,
            help,
        }
    }
}

/// Whether a gate is on: set explicitly, else the version's default.
fn gate(node: &NodeSpec, name: &str) -> bool {
    if let Some(&on) = node.feature_gates.get(name) {
        return on;
    }
    match name {
        "SidecarContainers" => node.kubernetes.minor >= 29,
        "KubeletCrashLoopBackOffMax" => node.kubernetes.minor >= 35,
        _ => false,
    }
}

/// The settings of `node`'s kubelet; [`check`] has said what is wrong with them first.
pub fn resolve(node: &NodeSpec) -> Settings {
    let version = node.kubernetes;
    let cgroup_v2 = node.cgroup_version == 2;
    let single_process_oom_kill =
        (version.minor >= 32).then(|| !cgroup_v2 || node.single_process_oom_kill.unwrap_or(false));
    Settings {
        version,
        cgroup_v2,
        memory_qos: gate(node, "MemoryQoS") && cgroup_v2,
        sidecars: gate(node, "SidecarContainers"),
        throttling_factor: node
            .memory_throttling_factor
            .unwrap_or(if version.minor >= 27 { 0.9 } else { 0.8 }),
        group_oom_kill: cgroup_v2 && version.minor >= 28 && single_process_oom_kill != Some(true),
        single_process_oom_kill,
        tiered_reservation: node.memory_reservation_policy.as_deref() == Some("TieredReservation"),
        reduced_back_off_decay: gate(node, "ReduceDefaultCrashLoopBackOffDecay"),
        max_container_restart_period_ms: gate(node, "KubeletCrashLoopBackOffMax").then(|| {
            node.max_container_restart_period
                .map_or(300_000, |period| period.0)
        }),
    }
}

/// What a kubelet of `node`'s version would refuse, or rsslab cannot apply.
pub fn check(node: &NodeSpec) -> Vec<Problem> {
    let mut problems = Vec::new();
    let version = node.kubernetes;
    if version < OLDEST || version > NEWEST {
        problems.push(Problem::new(
            "kubernetes",
            format!("Kubernetes {version} is not one rsslab has the kubelet's rules of"),
            format!("write a version from {OLDEST} to {NEWEST}"),
        ));
    }
    if !(1..=2).contains(&node.cgroup_version) {
        problems.push(Problem::new(
            "cgroup_version",
            format!("cgroup version {} does not exist", node.cgroup_version),
            "write cgroup_version = 2 (unified) or 1 (legacy memory controller)".into(),
        ));
    }
    for name in node.feature_gates.keys() {
        if !FEATURE_GATES.contains(&name.as_str()) {
            problems.push(Problem::new(
                &format!("feature_gates.{name}"),
                format!("feature gate `{name}` does not change the memory rules rsslab applies"),
                format!("remove it; the gates read are {}", FEATURE_GATES.join(", ")),
            ));
        }
    }
    if node.feature_gates.get("SidecarContainers") == Some(&false) && version.minor >= 33 {
        problems.push(Problem::new(
            "feature_gates.SidecarContainers",
            format!("SidecarContainers is GA in {version}: the kubelet refuses to turn it off"),
            "remove the gate (it is on)".into(),
        ));
    }
    for name in node.feature_gates.keys() {
        let since = gate_since(name);
        if version.minor < since {
            problems.push(Problem::new(
                &format!("feature_gates.{name}"),
                format!("Kubernetes {version} has no {name} gate (it came in 1.{since})"),
                format!("remove the gate, or use 1.{since} or later"),
            ));
        }
    }
    if let Some(period) = node.max_container_restart_period {
        if !gate(node, "KubeletCrashLoopBackOffMax") {
            problems.push(Problem::new(
                "max_container_restart_period",
                "FeatureGate KubeletCrashLoopBackOffMax not enabled, CrashLoopBackOff.MaxContainerRestartPeriod must not be set".into(),
                if version.minor >= 32 {
                    "add feature_gates = { KubeletCrashLoopBackOffMax = true }, or use 1.35 or later (on by default)".into()
                } else {
                    "use Kubernetes 1.32 or later with feature_gates = { KubeletCrashLoopBackOffMax = true }".into()
                },
            ));
        } else if !RESTART_PERIOD_RANGE_MS.contains(&period.0) {
            problems.push(Problem::new(
                "max_container_restart_period",
                format!(
                    "crashLoopBackOff.maxContainerRestartPeriod {period} is outside 1s to 300s"
                ),
                "write a period from \"1s\" to \"300s\"".into(),
            ));
        }
    }
    if let Some(factor) = node.memory_throttling_factor
        && !(factor > 0.0 && factor <= 1.0)
    {
        problems.push(Problem::new(
            "memory_throttling_factor",
            format!("memoryThrottlingFactor {factor} is outside (0, 1]"),
            "write a factor above 0 and at most 1, e.g. 0.9 (the default from 1.27)".into(),
        ));
    }
    if let Some(single) = node.single_process_oom_kill {
        if version.minor < 32 {
            problems.push(Problem::new(
                "single_process_oom_kill",
                format!("Kubernetes {version} has no singleProcessOOMKill (it came in 1.32)"),
                "remove it, or use 1.32 or later".into(),
            ));
        } else if !single && node.cgroup_version == 1 {
            problems.push(Problem::new(
                "single_process_oom_kill",
                "singleProcessOOMKill must not be explicitly set to false when using cgroup v1"
                    .into(),
                "remove it (on cgroup v1 the kernel kills one process, and the kubelet sets true)"
                    .into(),
            ));
        }
    }
    if let Some(policy) = &node.memory_reservation_policy {
        if version.minor < 36 {
            problems.push(Problem::new(
                "memory_reservation_policy",
                format!("Kubernetes {version} has no memoryReservationPolicy (it came in 1.36)"),
                "remove it, or use 1.36 or later".into(),
            ));
        } else if !RESERVATION_POLICIES.contains(&policy.as_str()) {
            problems.push(Problem::new(
                "memory_reservation_policy",
                format!("unknown memoryReservationPolicy `{policy}`"),
                format!("write one of {}", RESERVATION_POLICIES.join(", ")),
            ));
        } else if policy == "TieredReservation" && !gate(node, "MemoryQoS") {
            problems.push(Problem::new(
                "memory_reservation_policy",
                "memoryReservationPolicy TieredReservation needs the MemoryQoS feature gate".into(),
                "add feature_gates = { MemoryQoS = true }, or remove the policy".into(),
            ));
        }
    }
    let sidecars = gate(node, "SidecarContainers");
    for pod in &node.pods {
        for container in pod.init_containers.iter().filter(|c| c.sidecar) {
            if !sidecars {
                let fix = if version.minor == 28 {
                    "turn the gate on (feature_gates = { SidecarContainers = true }), or use 1.29 or later"
                } else {
                    "use Kubernetes 1.29 or later (1.28 with the SidecarContainers gate)"
                };
                problems.push(Problem::new(
                    &format!("pod.{}.{}", pod.name, container.name),
                    format!(
                        "init container `{}` of pod `{}` is a sidecar (restartPolicy: Always), which Kubernetes {version} does not run",
                        container.name, pod.name
                    ),
                    fix.into(),
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::node;

    #[test]
    fn group_kill_from_1_28_on_v2_unless_single_process_oom_kill() {
        assert!(!resolve(&node(27, 2)).group_oom_kill, "before PR 117793");
        assert!(resolve(&node(28, 2)).group_oom_kill);
        assert!(resolve(&node(31, 2)).group_oom_kill);
        assert!(resolve(&node(32, 2)).group_oom_kill, "nil -> false on v2");
        assert_eq!(resolve(&node(32, 2)).single_process_oom_kill, Some(false));
        let mut single = node(32, 2);
        single.single_process_oom_kill = Some(true);
        assert!(!resolve(&single).group_oom_kill);
        assert!(!resolve(&node(28, 1)).group_oom_kill, "never on v1");
        assert_eq!(resolve(&node(32, 1)).single_process_oom_kill, Some(true));
        assert_eq!(resolve(&node(31, 1)).single_process_oom_kill, None);
    }

    #[test]
    fn throttling_factor_default_moved_from_0_8_to_0_9_in_1_27() {
        assert_eq!(resolve(&node(26, 2)).throttling_factor, 0.8);
        assert_eq!(resolve(&node(27, 2)).throttling_factor, 0.9);
        let mut set = node(30, 2);
        set.memory_throttling_factor = Some(0.7);
        assert_eq!(resolve(&set).throttling_factor, 0.7);
    }

    #[test]
    fn memory_qos_is_off_by_default_and_only_on_cgroup_v2() {
        assert!(!resolve(&node(36, 2)).memory_qos);
        let mut on = node(31, 2);
        on.feature_gates.insert("MemoryQoS".into(), true);
        assert!(resolve(&on).memory_qos);
        on.cgroup_version = 1;
        assert!(!resolve(&on).memory_qos, "enforceMemoryQoS needs cgroup v2");
    }

    #[test]
    fn sidecars_are_on_from_1_29_and_on_1_28_with_the_gate() {
        assert!(!resolve(&node(28, 2)).sidecars);
        assert!(resolve(&node(29, 2)).sidecars);
        let mut gated = node(28, 2);
        gated.feature_gates.insert("SidecarContainers".into(), true);
        assert!(resolve(&gated).sidecars);
        assert!(check(&gated).is_empty());
    }

    #[test]
    fn what_the_kubelet_refuses_is_a_problem_naming_its_key() {
        let keys = |node: &NodeSpec| -> Vec<String> {
            check(node).into_iter().map(|problem| problem.key).collect()
        };
        assert_eq!(keys(&node(24, 2)), ["kubernetes"]);
        assert_eq!(keys(&node(37, 2)), ["kubernetes"]);
        assert!(keys(&node(25, 2)).is_empty() && keys(&node(36, 1)).is_empty());
        let mut early = node(31, 2);
        early.single_process_oom_kill = Some(true);
        assert_eq!(keys(&early), ["single_process_oom_kill"]);
        let mut false_on_v1 = node(32, 1);
        false_on_v1.single_process_oom_kill = Some(false);
        assert_eq!(keys(&false_on_v1), ["single_process_oom_kill"]);
        false_on_v1.single_process_oom_kill = Some(true);
        assert!(keys(&false_on_v1).is_empty(), "true is allowed on v1");
        let mut factor = node(30, 2);
        factor.memory_throttling_factor = Some(0.0);
        assert_eq!(keys(&factor), ["memory_throttling_factor"]);
        factor.memory_throttling_factor = Some(1.0);
        assert!(keys(&factor).is_empty(), "1.0 is inside (0, 1]");
        let mut policy = node(35, 2);
        policy.memory_reservation_policy = Some("None".into());
        assert_eq!(keys(&policy), ["memory_reservation_policy"]);
        policy.kubernetes = KubeVersion::new(36);
        assert!(keys(&policy).is_empty());
        policy.memory_reservation_policy = Some("TieredReservation".into());
        assert_eq!(
            keys(&policy),
            ["memory_reservation_policy"],
            "needs MemoryQoS"
        );
        let mut gates = node(30, 2);
        gates.feature_gates.insert("NodeSwap".into(), true);
        assert_eq!(keys(&gates), ["feature_gates.NodeSwap"]);
        let mut reduced = node(32, 2);
        reduced
            .feature_gates
            .insert("ReduceDefaultCrashLoopBackOffDecay".into(), true);
        assert_eq!(
            keys(&reduced),
            ["feature_gates.ReduceDefaultCrashLoopBackOffDecay"],
            "came in 1.33"
        );
        let mut period = node(34, 2);
        period.max_container_restart_period = Some(rsslab_wire::units::Millis(2_000));
        assert_eq!(keys(&period), ["max_container_restart_period"], "gate off");
        period.kubernetes = KubeVersion::new(35);
        assert!(
            keys(&period).is_empty(),
            "the gate is on by default in 1.35"
        );
        period.max_container_restart_period = Some(rsslab_wire::units::Millis(500));
        assert_eq!(keys(&period), ["max_container_restart_period"], "below 1s");
    }
}
