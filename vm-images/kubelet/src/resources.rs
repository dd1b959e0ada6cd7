//! A pod's memory request and limit, aggregated over its containers as the kubelet does, and
//! whether every container declared a memory limit.
//!
//! Follows the helpers `ResourceConfigForPod` (`pkg/kubelet/cm/helpers_linux.go`) calls:
//! - 1.25-1.26: `PodRequestsAndLimits` (`pkg/api/v1/resource/helpers.go`): the sum over
//!   `spec.containers`, then per resource the maximum of that and each init container's own
//!   amount; `memoryLimitsDeclared` is false when any container or init container has no
//!   memory limit (the loops of `ResourceConfigForPod`);
//! - 1.27: `PodRequests` / `PodLimits` (same file): the same sums, `memoryLimitsDeclared` from
//!   their `ContainerFn`, which sees each container's own limits;
//! - 1.28 on (`k8s.io/component-helpers/resource/helpers.go` from 1.32,
//!   `AggregateContainerRequests` / `AggregateContainerLimits`): sidecars (restartable init
//!   containers) run beside the containers, so their amounts are added to the containers' sum,
//!   and an ordinary init container runs beside the sidecars started before it, so it counts
//!   as its own amount plus theirs; the result is the larger of the running sum and the
//!   largest init container so counted. `ContainerFn` sees those cumulative amounts for init
//!   containers, so an init container without a limit after a sidecar with one still counts
//!   as declared.
//!
//! In every version `spec.overhead` is added to the requests, and to a limit that is not zero.

use rsslab_wire::pod::{ContainerSpec, KubeVersion, PodSpec, Resources};

/// The pod's memory, aggregated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PodMemory {
    /// `PodRequests(pod)[memory]`, bytes.
    pub request: u64,
    /// `PodLimits(pod)[memory]`, bytes (0: no limit).
    pub limit: u64,
    /// `memoryLimitsDeclared`: every container (as `ContainerFn` sees it) has a memory limit.
    pub limits_declared: bool,
}

/// The pod's aggregated memory under the rules of `version`.
pub fn pod_memory(pod: &PodSpec, version: KubeVersion) -> PodMemory {
    let (request, _) = aggregate(pod, version, |resources| resources.requests);
    let (limit, limits_declared) = aggregate(pod, version, |resources| resources.limits);
    let overhead = pod.overhead.map_or(0, |bytes| bytes.0);
    PodMemory {
        request: request + overhead,
        limit: if limit > 0 { limit + overhead } else { 0 },
        limits_declared,
    }
}

/// The memory of `which` (requests or limits) aggregated, and whether every amount
/// `ContainerFn` would see is above zero.
fn aggregate(
    pod: &PodSpec,
    version: KubeVersion,
    which: impl Fn(&ContainerSpec) -> Resources,
) -> (u64, bool) {
    let memory = |container: &ContainerSpec| which(container).memory_bytes();
    let mut declared = true;
    let mut sum = 0u64;
    for container in &pod.containers {
        declared &= memory(container) > 0;
        sum += memory(container);
    }
    let mut init_max = 0u64;
    let mut sidecars_so_far = 0u64;
    for container in &pod.init_containers {
        let seen = if version.minor >= 28 {
            if container.sidecar {
                sum += memory(container);
                sidecars_so_far += memory(container);
                sidecars_so_far
            } else {
                memory(container) + sidecars_so_far
            }
        } else {
            memory(container)
        };
        declared &= seen > 0;
        init_max = init_max.max(seen);
    }
    (sum.max(init_max), declared)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{container, pod, sidecar};
    use rsslab_wire::Bytes;

    const MIB: u64 = 1 << 20;

    #[test]
    fn containers_are_summed() {
        let web = pod(vec![
            container("api", (96, 250), (128, 1000)),
            container("cache", (32, 0), (64, 0)),
        ]);
        let memory = pod_memory(&web, KubeVersion::new(31));
        assert_eq!(memory.request, 128 * MIB);
        assert_eq!(memory.limit, 192 * MIB);
        assert!(memory.limits_declared);
    }

    #[test]
    fn an_init_container_counts_when_it_is_the_largest() {
        let mut web = pod(vec![container("api", (96, 0), (128, 0))]);
        web.init_containers = vec![container("migrate", (200, 0), (256, 0))];
        let memory = pod_memory(&web, KubeVersion::new(31));
        // max(96, 200) and max(128, 256).
        assert_eq!((memory.request, memory.limit), (200 * MIB, 256 * MIB));
    }

    #[test]
    fn sidecars_add_to_the_containers_from_1_28() {
        // A sidecar (32/64) before an init container (100/150), then the app (96/128).
        let mut web = pod(vec![container("api", (96, 0), (128, 0))]);
        web.init_containers = vec![
            sidecar("shipper", (32, 0), (64, 0)),
            container("migrate", (100, 0), (150, 0)),
        ];
        let memory = pod_memory(&web, KubeVersion::new(29));
        // Requests: running sum 96 + 32 = 128; init: sidecar 32, migrate 100 + 32 = 132.
        assert_eq!(memory.request, 132 * MIB);
        // Limits: 128 + 64 = 192; init: 64, 150 + 64 = 214.
        assert_eq!(memory.limit, 214 * MIB);
        // Before 1.28 an init container is only itself: max(96, 32, 100) and max(128, 64, 150).
        let old = pod_memory(&web, KubeVersion::new(27));
        assert_eq!((old.request, old.limit), (100 * MIB, 150 * MIB));
    }

    #[test]
    fn limits_declared_needs_every_container_as_container_fn_sees_it() {
        let mut web = pod(vec![container("api", (96, 0), (128, 0))]);
        web.init_containers = vec![
            sidecar("shipper", (32, 0), (64, 0)),
            container("migrate", (0, 0), (0, 0)),
        ];
        // 1.28+: `migrate` is seen as 0 + 64 (the sidecar before it): declared.
        assert!(pod_memory(&web, KubeVersion::new(30)).limits_declared);
        // 1.27 sees migrate's own limit: none.
        assert!(!pod_memory(&web, KubeVersion::new(27)).limits_declared);
        web.containers.push(container("debug", (0, 0), (0, 0)));
        assert!(!pod_memory(&web, KubeVersion::new(30)).limits_declared);
    }

    #[test]
    fn overhead_adds_to_requests_and_to_a_limit() {
        let mut web = pod(vec![container("api", (96, 0), (128, 0))]);
        web.overhead = Some(Bytes::mib(8));
        let memory = pod_memory(&web, KubeVersion::new(33));
        assert_eq!((memory.request, memory.limit), (104 * MIB, 136 * MIB));
        let mut unlimited = pod(vec![container("api", (96, 0), (0, 0))]);
        unlimited.overhead = Some(Bytes::mib(8));
        assert_eq!(
            pod_memory(&unlimited, KubeVersion::new(33)).limit,
            0,
            "no limit stays none"
        );
    }
}
