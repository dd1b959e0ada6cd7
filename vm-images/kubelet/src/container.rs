//! What the kubelet (through the runtime) writes into a container's cgroup.
//!
//! Follows `pkg/kubelet/kuberuntime/kuberuntime_container_linux.go`
//! (`generateLinuxContainerResources`, `calculateLinuxResources`, `configureContainerSwapResources`
//! and, from 1.28, `swapConfigurationHelper.ConfigureNoSwap`), as runc turns the result into
//! cgroup files:
//! - the memory limit: v2 `memory.max`, v1 `memory.limit_in_bytes` (no limit: nothing);
//! - `memory.oom.group = 1` on cgroup v2 from 1.28 (kubernetes#117793), unless
//!   `singleProcessOOMKill` (1.32): the kernel then kills every process of the container at once;
//! - no swap: from 1.28 the kubelet asks for none (NoSwap, the default swap behaviour) when the
//!   kernel has the swap controller: v2 `memory.swap.max = 0` for every container, v1
//!   memory+swap = the memory limit; before 1.28 containerd did the same for containers with a
//!   limit (`WithResources` in `internal/cri/opts/spec_linux_opts.go`: swap = limit, which runc's
//!   `ConvertMemorySwapToCgroupV2Value` writes on v2 as `memory.swap.max = 0`);
//! - MemoryQoS (cgroup v2): `memory.min` = the request; `memory.high` = `int64(limit ×
//!   factor)` (or allocatable × factor without a limit) above the request before 1.27, and from
//!   1.27 (kubernetes#115371), when request ≠ limit, `int64(floor(request + factor × (limit, or
//!   allocatable, − request)) / page) × page` above the request; from 1.36 the
//!   `memoryReservationPolicy` decides `memory.min` and `memory.low` (`None`: both 0;
//!   `TieredReservation`: Guaranteed `memory.min` = request, Burstable `memory.low` = request).

use rsslab_wire::pod::ContainerSpec;

use crate::qos::QosClass;
use crate::settings::Settings;
use crate::{Machine, Rule, Write, bytes_text};

const RESOURCES: &str =
    "pkg/kubelet/kuberuntime/kuberuntime_container_linux.go generateLinuxContainerResources";
const CALCULATE: &str =
    "pkg/kubelet/kuberuntime/kuberuntime_container_linux.go calculateLinuxResources";
const NO_SWAP: &str = "pkg/kubelet/kuberuntime/kuberuntime_container_linux_swap.go ConfigureNoSwap";
const CONTAINERD_SWAP: &str = "containerd internal/cri/opts/spec_linux_opts.go WithResources";

/// The writes into one container's cgroup, in the order runc applies them.
pub fn container_writes(
    container: &ContainerSpec,
    qos: QosClass,
    allocatable: u64,
    machine: &Machine,
    settings: &Settings,
) -> Vec<Write> {
    let mut writes = Vec::new();
    let limit = container.limits.memory_bytes();
    let request = container.requests.memory_bytes();
    let v2 = settings.cgroup_v2;
    if limit != 0 {
        let file = if v2 {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        writes.push(Write::new(
            file,
            limit,
            Rule::new(
                format!("the container's memory limit {}", bytes_text(limit)),
                CALCULATE,
            ),
        ));
    }
    if settings.group_oom_kill {
        let why = match settings.single_process_oom_kill {
            Some(_) => {
                "cgroup v2, 1.28+, singleProcessOOMKill false: the OOM killer takes the whole container"
            }
            None => "cgroup v2, 1.28+: the OOM killer takes the whole container",
        };
        writes.push(Write::text(
            "memory.oom.group",
            "1",
            Rule::new(why.into(), CALCULATE),
        ));
    }
    if machine.swap_controller {
        if settings.version.minor >= 28 {
            if v2 {
                writes.push(Write::text(
                    "memory.swap.max",
                    "0",
                    Rule::new("NoSwap (the default swap behaviour, 1.28+)".into(), NO_SWAP),
                ));
            } else if limit != 0 {
                writes.push(Write::new(
                    "memory.memsw.limit_in_bytes",
                    limit,
                    Rule::new(
                        "NoSwap (1.28+): memory+swap = the memory limit".into(),
                        NO_SWAP,
                    ),
                ));
            }
        } else if limit != 0 {
            let (file, value) = if v2 {
                ("memory.swap.max", 0)
            } else {
                ("memory.memsw.limit_in_bytes", limit)
            };
            writes.push(Write::new(
                file,
                value,
                Rule::new(
                    "containerd (the kubelet asks nothing before 1.28): swap limit = memory limit, no swap above it".into(),
                    CONTAINERD_SWAP,
                ),
            ));
        }
    }
    if settings.memory_qos {
        memory_qos(
            qos,
            request,
            limit,
            allocatable,
            machine,
            settings,
            &mut writes,
        );
    }
    writes
}

/// The MemoryQoS writes (cgroup v2 only; the caller checked the gate).
#[allow(clippy::too_many_arguments)]
fn memory_qos(
    qos: QosClass,
    request: u64,
    limit: u64,
    allocatable: u64,
    machine: &Machine,
    settings: &Settings,
    writes: &mut Vec<Write>,
) {
    let minor = settings.version.minor;
    if minor >= 36 {
        if request != 0 && settings.tiered_reservation {
            let (file, class) = match qos {
                QosClass::Guaranteed => ("memory.min", "Guaranteed"),
                _ => ("memory.low", "Burstable"),
            };
            writes.push(Write::new(
                file,
                request,
                Rule::new(
                    format!(
                        "MemoryQoS, TieredReservation: {class} gets {file} = request {}",
                        bytes_text(request)
                    ),
                    RESOURCES,
                ),
            ));
        } else {
            let why = "MemoryQoS, memoryReservationPolicy None (1.36): no protection";
            writes.push(Write::text(
                "memory.min",
                "0",
                Rule::new(why.into(), RESOURCES),
            ));
            writes.push(Write::text(
                "memory.low",
                "0",
                Rule::new(why.into(), RESOURCES),
            ));
        }
    } else if request != 0 {
        writes.push(Write::new(
            "memory.min",
            request,
            Rule::new(
                format!("MemoryQoS: memory.min = request {}", bytes_text(request)),
                RESOURCES,
            ),
        ));
    }
    let factor = settings.throttling_factor;
    let (ceiling, of) = if limit != 0 {
        (limit, "limit")
    } else {
        (allocatable, "node allocatable")
    };
    let high = if minor >= 27 {
        if request == limit || ceiling == 0 {
            return;
        }
        let page = machine.page_size.max(1) as f64;
        let exact = (request as f64 + (ceiling as f64 - request as f64) * factor).floor();
        ((exact / page) as i64).saturating_mul(machine.page_size as i64)
    } else {
        (ceiling as f64 * factor) as i64
    };
    if high <= 0 || high as u64 <= request {
        return;
    }
    let what = if minor >= 27 {
        format!(
            "MemoryQoS (1.27+): floor((request {} + {factor} × ({of} {} − request)) / page {}) × page = {}",
            bytes_text(request),
            bytes_text(ceiling),
            machine.page_size,
            bytes_text(high as u64)
        )
    } else {
        format!(
            "MemoryQoS (before 1.27): {of} {} × {factor} = {}",
            bytes_text(ceiling),
            bytes_text(high as u64)
        )
    };
    writes.push(Write::new(
        "memory.high",
        high as u64,
        Rule::new(what, RESOURCES),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{container, machine, settings};

    const MIB: u64 = 1 << 20;

    fn values(writes: &[Write]) -> Vec<(&str, &str)> {
        writes
            .iter()
            .map(|write| (write.file.as_str(), write.value.as_str()))
            .collect()
    }

    fn with_qos(minor: u32) -> Settings {
        let mut settings = settings(minor, 2);
        settings.memory_qos = true;
        settings
    }

    #[test]
    fn the_limit_and_group_kill_on_v2_from_1_28() {
        let api = container("api", (64, 250), (128, 1000));
        let writes = container_writes(
            &api,
            QosClass::Burstable,
            900 * MIB,
            &machine(),
            &settings(31, 2),
        );
        assert_eq!(
            values(&writes),
            [
                ("memory.max", "134217728"),
                ("memory.oom.group", "1"),
                ("memory.swap.max", "0")
            ]
        );
        let old = container_writes(
            &api,
            QosClass::Burstable,
            900 * MIB,
            &machine(),
            &settings(27, 2),
        );
        // 1.27: no oom.group; containerd sets swap = limit, i.e. swap.max 0.
        assert_eq!(
            values(&old),
            [("memory.max", "134217728"), ("memory.swap.max", "0")]
        );
    }

    #[test]
    fn v1_has_limit_and_memsw_and_no_group() {
        let api = container("api", (64, 250), (128, 1000));
        let writes = container_writes(
            &api,
            QosClass::Burstable,
            900 * MIB,
            &machine(),
            &settings(31, 1),
        );
        assert_eq!(
            values(&writes),
            [
                ("memory.limit_in_bytes", "134217728"),
                ("memory.memsw.limit_in_bytes", "134217728")
            ]
        );
        let unlimited = container("batch", (0, 0), (0, 0));
        let writes = container_writes(
            &unlimited,
            QosClass::BestEffort,
            900 * MIB,
            &machine(),
            &settings(31, 1),
        );
        assert!(
            writes.is_empty(),
            "memsw = a limit of 0 is nothing: {writes:?}"
        );
    }

    #[test]
    fn no_swap_controller_no_swap_write() {
        let api = container("api", (64, 250), (128, 1000));
        let mut no_swap = machine();
        no_swap.swap_controller = false;
        let writes = container_writes(
            &api,
            QosClass::Burstable,
            900 * MIB,
            &no_swap,
            &settings(31, 2),
        );
        assert_eq!(
            values(&writes),
            [("memory.max", "134217728"), ("memory.oom.group", "1")]
        );
    }

    #[test]
    fn memory_qos_from_1_27_lies_90_percent_of_the_way_from_request_to_limit() {
        // 64MiB + 0.9 × 64MiB = 121.6MiB = 127506841.6 bytes -> floor 127506841 -> / 4096 =
        // 31129.6 -> 31129 pages = 127504384 bytes.
        let api = container("api", (64, 250), (128, 1000));
        let writes = container_writes(
            &api,
            QosClass::Burstable,
            900 * MIB,
            &machine(),
            &with_qos(31),
        );
        let qos: Vec<_> = values(&writes)
            .into_iter()
            .filter(|(f, _)| f.starts_with("memory.m") || f == &"memory.high")
            .collect();
        assert_eq!(
            qos,
            [
                ("memory.max", "134217728"),
                ("memory.min", "67108864"),
                ("memory.high", "127504384")
            ]
        );
    }

    #[test]
    fn memory_qos_without_a_limit_uses_node_allocatable() {
        // 100MiB + 0.9 × (1000MiB − 100MiB) = 910MiB exactly = 954204160 bytes, page-aligned.
        let api = container("api", (100, 0), (0, 0));
        let writes = container_writes(
            &api,
            QosClass::Burstable,
            1000 * MIB,
            &machine(),
            &with_qos(30),
        );
        assert!(
            values(&writes).contains(&("memory.high", "954204160")),
            "{writes:?}"
        );
    }

    #[test]
    fn memory_qos_before_1_27_is_the_limit_times_0_8() {
        // int64(128MiB × 0.8) = 107374182 (107374182.4 truncated), no page rounding.
        let api = container("api", (64, 250), (128, 1000));
        let mut old = with_qos(26);
        old.throttling_factor = 0.8;
        let writes = container_writes(&api, QosClass::Burstable, 900 * MIB, &machine(), &old);
        assert!(
            values(&writes).contains(&("memory.high", "107374182")),
            "{writes:?}"
        );
        // Requesting more than 80% of the limit: high would not be above the request.
        let close = container("api", (120, 250), (128, 1000));
        let writes = container_writes(&close, QosClass::Burstable, 900 * MIB, &machine(), &old);
        assert!(!values(&writes).iter().any(|(f, _)| *f == "memory.high"));
    }

    #[test]
    fn memory_qos_sets_no_high_for_request_equal_to_limit() {
        let db = container("db", (256, 500), (256, 500));
        let writes = container_writes(
            &db,
            QosClass::Guaranteed,
            900 * MIB,
            &machine(),
            &with_qos(31),
        );
        assert!(values(&writes).contains(&("memory.min", "268435456")));
        assert!(!values(&writes).iter().any(|(f, _)| *f == "memory.high"));
    }

    #[test]
    fn memory_qos_in_1_36_follows_the_reservation_policy() {
        let db = container("db", (256, 500), (256, 500));
        let none = container_writes(
            &db,
            QosClass::Guaranteed,
            900 * MIB,
            &machine(),
            &with_qos(36),
        );
        assert!(
            values(&none).contains(&("memory.min", "0"))
                && values(&none).contains(&("memory.low", "0"))
        );
        let mut tiered = with_qos(36);
        tiered.tiered_reservation = true;
        let guaranteed =
            container_writes(&db, QosClass::Guaranteed, 900 * MIB, &machine(), &tiered);
        assert!(values(&guaranteed).contains(&("memory.min", "268435456")));
        let api = container("api", (64, 250), (128, 1000));
        let burstable = container_writes(&api, QosClass::Burstable, 900 * MIB, &machine(), &tiered);
        assert!(values(&burstable).contains(&("memory.low", "67108864")));
        assert!(!values(&burstable).iter().any(|(f, _)| *f == "memory.min"));
    }
}
