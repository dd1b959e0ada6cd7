//! What the kubelet writes into `kubepods` and its QoS levels.
//!
//! - `kubepods`: the memory limit = node allocatable = capacity − `systemReserved` −
//!   `kubeReserved` (at least 0; the hard eviction threshold is not taken off here), with the
//!   default `enforceNodeAllocatable: [pods]` (`pkg/kubelet/cm/node_container_manager_linux.go`,
//!   `createNodeAllocatableCgroups`, `getNodeAllocatableAbsoluteImpl`);
//! - the QoS levels `burstable` and `besteffort` get no memory value
//!   (`pkg/kubelet/cm/qos_container_manager_linux.go`, `Start`; `QOSReserved` is an alpha gate,
//!   off);
//! - MemoryQoS (cgroup v2, `setMemoryQoS` in the same file): `burstable` `memory.min` = the
//!   Burstable pods' requests, `kubepods` `memory.min` = the Guaranteed and Burstable pods'
//!   requests, each when above zero; from 1.36 with `memoryReservationPolicy: None` `kubepods`
//!   `memory.min = 0` and `burstable` `memory.low = 0`, with `TieredReservation` `kubepods`
//!   `memory.min` = both sums and `burstable` `memory.low` = the Burstable sum.

use crate::qos::QosClass;
use crate::settings::Settings;
use crate::{Rule, Write, bytes_text};

const ALLOCATABLE: &str =
    "pkg/kubelet/cm/node_container_manager_linux.go createNodeAllocatableCgroups";
const QOS_MEMORY: &str = "pkg/kubelet/cm/qos_container_manager_linux.go setMemoryQoS";

/// Node allocatable memory: capacity less the reservations, at least 0.
pub fn allocatable(capacity: u64, system_reserved: u64, kube_reserved: u64) -> u64 {
    capacity
        .saturating_sub(system_reserved)
        .saturating_sub(kube_reserved)
}

/// The writes into `kubepods`.
pub fn kubepods_writes(
    capacity: u64,
    reserved: (u64, u64),
    requests: QosRequests,
    settings: &Settings,
) -> Vec<Write> {
    let (system, kube) = reserved;
    let allocatable = allocatable(capacity, system, kube);
    let file = if settings.cgroup_v2 {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    let mut writes = vec![Write::new(
        file,
        allocatable,
        Rule::new(
            format!(
                "node allocatable: capacity {} − systemReserved {} − kubeReserved {}",
                bytes_text(capacity),
                bytes_text(system),
                bytes_text(kube)
            ),
            ALLOCATABLE,
        ),
    )];
    if settings.memory_qos {
        let sum = requests.guaranteed + requests.burstable;
        let what = format!(
            "MemoryQoS: Guaranteed {} + Burstable {} pods' requests",
            bytes_text(requests.guaranteed),
            bytes_text(requests.burstable)
        );
        match (settings.version.minor >= 36, settings.tiered_reservation) {
            (false, _) if sum > 0 => {
                writes.push(Write::new("memory.min", sum, Rule::new(what, QOS_MEMORY)))
            }
            (true, true) => writes.push(Write::new("memory.min", sum, Rule::new(what, QOS_MEMORY))),
            (true, false) => writes.push(Write::text(
                "memory.min",
                "0",
                Rule::new(
                    "MemoryQoS, memoryReservationPolicy None (1.36)".into(),
                    QOS_MEMORY,
                ),
            )),
            _ => {}
        }
    }
    writes
}

/// The writes into a QoS level's cgroup (`burstable`, `besteffort`).
pub fn qos_level_writes(qos: QosClass, requests: QosRequests, settings: &Settings) -> Vec<Write> {
    if qos != QosClass::Burstable || !settings.memory_qos {
        return Vec::new();
    }
    let sum = requests.burstable;
    let what = format!(
        "MemoryQoS: the Burstable pods' requests, {}",
        bytes_text(sum)
    );
    match (settings.version.minor >= 36, settings.tiered_reservation) {
        (false, _) if sum > 0 => vec![Write::new("memory.min", sum, Rule::new(what, QOS_MEMORY))],
        (true, true) => vec![Write::new("memory.low", sum, Rule::new(what, QOS_MEMORY))],
        (true, false) => vec![Write::text(
            "memory.low",
            "0",
            Rule::new(
                "MemoryQoS, memoryReservationPolicy None (1.36)".into(),
                QOS_MEMORY,
            ),
        )],
        _ => Vec::new(),
    }
}

/// The memory requests of the node's pods by QoS class (`getQoSMemoryRequests`: each pod's
/// aggregated request; BestEffort pods request nothing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QosRequests {
    pub guaranteed: u64,
    pub burstable: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::settings;

    const MIB: u64 = 1 << 20;

    fn files(writes: &[Write]) -> Vec<(&str, &str)> {
        writes
            .iter()
            .map(|w| (w.file.as_str(), w.value.as_str()))
            .collect()
    }

    #[test]
    fn kubepods_is_capacity_less_the_reservations() {
        assert_eq!(allocatable(1000 * MIB, 64 * MIB, 100 * MIB), 836 * MIB);
        assert_eq!(
            allocatable(100 * MIB, 64 * MIB, 100 * MIB),
            0,
            "never below 0"
        );
        let writes = kubepods_writes(
            1000 * MIB,
            (64 * MIB, 100 * MIB),
            QosRequests::default(),
            &settings(31, 2),
        );
        assert_eq!(files(&writes), [("memory.max", "876609536")]);
        let v1 = kubepods_writes(1000 * MIB, (0, 0), QosRequests::default(), &settings(31, 1));
        assert_eq!(files(&v1), [("memory.limit_in_bytes", "1048576000")]);
    }

    #[test]
    fn memory_qos_sums_requests_per_level() {
        let mut qos = settings(31, 2);
        qos.memory_qos = true;
        let requests = QosRequests {
            guaranteed: 256 * MIB,
            burstable: 96 * MIB,
        };
        let kubepods = kubepods_writes(1000 * MIB, (0, 0), requests, &qos);
        assert_eq!(
            files(&kubepods),
            [("memory.max", "1048576000"), ("memory.min", "369098752")]
        );
        let burstable = qos_level_writes(QosClass::Burstable, requests, &qos);
        assert_eq!(files(&burstable), [("memory.min", "100663296")]);
        assert!(qos_level_writes(QosClass::BestEffort, requests, &qos).is_empty());
        let nothing = QosRequests::default();
        assert!(
            qos_level_writes(QosClass::Burstable, nothing, &qos).is_empty(),
            "only above 0"
        );
        qos.version = rsslab_wire::pod::KubeVersion::new(36);
        assert_eq!(
            files(&qos_level_writes(QosClass::Burstable, nothing, &qos)),
            [("memory.low", "0")]
        );
    }
}
