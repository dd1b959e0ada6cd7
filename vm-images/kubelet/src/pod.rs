//! What the kubelet writes into a pod's cgroup.
//!
//! Follows `pkg/kubelet/cm/helpers_linux.go` (`ResourceConfigForPod`), applied when the pod's
//! cgroup is made (`pod_container_manager_linux.go`, `EnsureExists`):
//! - the memory limit (v2 `memory.max`, v1 `memory.limit_in_bytes`) = the pod's aggregated
//!   limit ([`crate::resources`]) for a Guaranteed pod, and for a Burstable pod only when every
//!   container declared one; a BestEffort pod gets none;
//! - MemoryQoS (cgroup v2): `memory.min` = the pod's aggregated request when above zero; from
//!   1.36 only with `memoryReservationPolicy: TieredReservation`, as `memory.min` for a
//!   Guaranteed pod and `memory.low` for a Burstable one.

use crate::qos::QosClass;
use crate::resources::PodMemory;
use crate::settings::Settings;
use crate::{Rule, Write, bytes_text};

const SOURCE: &str = "pkg/kubelet/cm/helpers_linux.go ResourceConfigForPod";

/// The writes into a pod's cgroup.
pub fn pod_writes(qos: QosClass, memory: PodMemory, settings: &Settings) -> Vec<Write> {
    let mut writes = Vec::new();
    let limit_file = if settings.cgroup_v2 {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    let limited = match qos {
        QosClass::Guaranteed => Some("Guaranteed"),
        QosClass::Burstable if memory.limits_declared => {
            Some("Burstable, every container has a memory limit")
        }
        _ => None,
    };
    if let Some(why) = limited {
        writes.push(Write::new(
            limit_file,
            memory.limit,
            Rule::new(
                format!(
                    "{why}: the containers' limits aggregated, {}",
                    bytes_text(memory.limit)
                ),
                SOURCE,
            ),
        ));
    }
    if settings.memory_qos && memory.request > 0 {
        let file = match (
            settings.version.minor >= 36,
            settings.tiered_reservation,
            qos,
        ) {
            (false, _, _) => Some("memory.min"),
            (true, true, QosClass::Guaranteed) => Some("memory.min"),
            (true, true, _) => Some("memory.low"),
            (true, false, _) => None,
        };
        if let Some(file) = file {
            writes.push(Write::new(
                file,
                memory.request,
                Rule::new(
                    format!(
                        "MemoryQoS: {file} = the containers' requests aggregated, {}",
                        bytes_text(memory.request)
                    ),
                    SOURCE,
                ),
            ));
        }
    }
    writes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::settings;

    const MIB: u64 = 1 << 20;

    fn memory(request: u64, limit: u64, limits_declared: bool) -> PodMemory {
        PodMemory {
            request: request * MIB,
            limit: limit * MIB,
            limits_declared,
        }
    }

    fn files(writes: &[Write]) -> Vec<(&str, &str)> {
        writes
            .iter()
            .map(|w| (w.file.as_str(), w.value.as_str()))
            .collect()
    }

    #[test]
    fn the_limit_by_qos_class() {
        let v2 = settings(31, 2);
        let guaranteed = pod_writes(QosClass::Guaranteed, memory(256, 256, true), &v2);
        assert_eq!(files(&guaranteed), [("memory.max", "268435456")]);
        let declared = pod_writes(QosClass::Burstable, memory(96, 192, true), &v2);
        assert_eq!(files(&declared), [("memory.max", "201326592")]);
        let undeclared = pod_writes(QosClass::Burstable, memory(96, 192, false), &v2);
        assert!(undeclared.is_empty());
        assert!(pod_writes(QosClass::BestEffort, memory(0, 0, false), &v2).is_empty());
        let v1 = pod_writes(
            QosClass::Guaranteed,
            memory(256, 256, true),
            &settings(31, 1),
        );
        assert_eq!(files(&v1), [("memory.limit_in_bytes", "268435456")]);
    }

    #[test]
    fn memory_qos_protects_the_pods_requests() {
        let mut qos = settings(31, 2);
        qos.memory_qos = true;
        let writes = pod_writes(QosClass::Burstable, memory(96, 192, false), &qos);
        assert_eq!(files(&writes), [("memory.min", "100663296")]);
        qos.version = rsslab_wire::pod::KubeVersion::new(36);
        assert!(pod_writes(QosClass::Burstable, memory(96, 192, false), &qos).is_empty());
        qos.tiered_reservation = true;
        let tiered = pod_writes(QosClass::Burstable, memory(96, 192, false), &qos);
        assert_eq!(files(&tiered), [("memory.low", "100663296")]);
    }
}
