//! A pod's QoS class, derived (never declared) from its containers' requests and limits.
//!
//! Follows `pkg/apis/core/v1/helper/qos/qos.go` (`GetPodQOS`; `ComputePodQOS` from 1.29, which
//! `GetPodQOS` calls when the pod's status has no class yet, as for a pod being created), the
//! same in every supported version for pods without pod-level resources:
//! - containers counted: `spec.containers` and every init container (sidecar or not);
//! - resources counted: `cpu` and `memory` only, and only quantities above zero;
//! - requests and limits are summed over the containers, per resource;
//! - no request and no limit at all: `BestEffort`;
//! - `Guaranteed` when every container has a cpu and a memory limit above zero and, per
//!   resource, the summed requests equal the summed limits (and both name the same
//!   resources); anything else `Burstable`.

use std::collections::BTreeMap;

use rsslab_wire::pod::{PodSpec, Resources};
use serde::{Deserialize, Serialize};

/// A pod's QoS class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum QosClass {
    Guaranteed,
    Burstable,
    BestEffort,
}

impl QosClass {
    pub fn as_str(self) -> &'static str {
        match self {
            QosClass::Guaranteed => "Guaranteed",
            QosClass::Burstable => "Burstable",
            QosClass::BestEffort => "BestEffort",
        }
    }
}

/// `(resource, amount)` of the resources above zero: `("cpu", millicores)`, `("memory", bytes)`.
fn positive(resources: &Resources) -> impl Iterator<Item = (&'static str, u64)> {
    [
        ("cpu", resources.cpu_millis),
        ("memory", resources.memory.map(|bytes| bytes.0)),
    ]
    .into_iter()
    .filter_map(|(name, amount)| amount.filter(|&amount| amount > 0).map(|a| (name, a)))
}

/// The pod's QoS class (`ComputePodQOS`).
pub fn qos_class(pod: &PodSpec) -> QosClass {
    let mut requests: BTreeMap<&str, u64> = BTreeMap::new();
    let mut limits: BTreeMap<&str, u64> = BTreeMap::new();
    let mut guaranteed = true;
    for container in pod.containers.iter().chain(&pod.init_containers) {
        for (name, amount) in positive(&container.requests) {
            *requests.entry(name).or_default() += amount;
        }
        let mut found = Vec::new();
        for (name, amount) in positive(&container.limits) {
            found.push(name);
            *limits.entry(name).or_default() += amount;
        }
        if !(found.contains(&"memory") && found.contains(&"cpu")) {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return QosClass::BestEffort;
    }
    if guaranteed
        && requests
            .iter()
            .all(|(name, request)| limits.get(name) == Some(request))
        && requests.len() == limits.len()
    {
        QosClass::Guaranteed
    } else {
        QosClass::Burstable
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{container, pod};

    #[test]
    fn equal_cpu_and_memory_requests_and_limits_everywhere_is_guaranteed() {
        let web = pod(vec![container("api", (256, 500), (256, 500))]);
        assert_eq!(qos_class(&web), QosClass::Guaranteed);
    }

    #[test]
    fn no_resources_at_all_is_best_effort() {
        let batch = pod(vec![container("job", (0, 0), (0, 0))]);
        assert_eq!(qos_class(&batch), QosClass::BestEffort);
    }

    #[test]
    fn a_missing_cpu_limit_or_unequal_amounts_are_burstable() {
        // Memory request = limit, but no CPU at all: not every container has both limits.
        let memory_only = pod(vec![container("api", (128, 0), (128, 0))]);
        assert_eq!(qos_class(&memory_only), QosClass::Burstable);
        let unequal = pod(vec![container("api", (64, 500), (128, 500))]);
        assert_eq!(qos_class(&unequal), QosClass::Burstable);
        // One guaranteed container and one with nothing: the second has no limits.
        let mixed = pod(vec![
            container("api", (128, 500), (128, 500)),
            container("shell", (0, 0), (0, 0)),
        ]);
        assert_eq!(qos_class(&mixed), QosClass::Burstable);
    }

    #[test]
    fn init_containers_count_like_the_others() {
        let mut web = pod(vec![container("api", (128, 500), (128, 500))]);
        web.init_containers = vec![container("migrate", (0, 0), (0, 0))];
        assert_eq!(
            qos_class(&web),
            QosClass::Burstable,
            "an init container without limits"
        );
        web.init_containers = vec![container("migrate", (64, 100), (64, 100))];
        assert_eq!(
            qos_class(&web),
            QosClass::Guaranteed,
            "sums: 192MiB/600m both ways"
        );
    }

    #[test]
    fn zero_quantities_do_not_count() {
        // A memory limit of 0 is no limit: requests only, so Burstable.
        let zero_limit = pod(vec![container("api", (64, 100), (0, 0))]);
        assert_eq!(qos_class(&zero_limit), QosClass::Burstable);
    }
}
