//! The kubelet's eviction under memory pressure, its rules without the loop that runs them:
//! the `memory.available` signal, thresholds (a quantity or a percentage of capacity, hard or
//! soft with a grace period) and the order in which pods are evicted.
//!
//! Sources (`pkg/kubelet/eviction/`):
//! - the signal, `helpers.go` `makeSignalObservations`: `memory.available` is the node
//!   summary's `AvailableBytes`, the machine's memory capacity less the working set of the
//!   root cgroup (cAdvisor: usage − `inactive_file`; on cgroup v2, whose root has no
//!   `memory.current`, runc's `rootStatsFromMeminfo` takes usage as the root `memory.stat`'s
//!   `anon` + `file`); its capacity is `AvailableBytes + WorkingSetBytes`;
//! - thresholds, `api/types.go` and `helpers.go` `parseThresholdStatement`, `GetThresholdQuantity`:
//!   `memory.available<100Mi` (the default hard threshold on Linux,
//!   `pkg/kubelet/apis/config/v1beta1/defaults_linux.go` `DefaultEvictionHard`), or a
//!   percentage of capacity (`memory.available<10%`); met when the signal is strictly below it
//!   (`thresholdsMet`), a soft one only once it has been met for its grace period
//!   (`thresholdsMetGracePeriod`);
//! - the order, `helpers.go` `rankMemoryPressure`: pods whose memory use exceeds their
//!   requests first (`exceedMemoryRequests`), then by priority, lowest first (`priority`),
//!   then by use above requests, largest first (`memory`); use is the pod's working set.
//!
//! The manager checks every 10 s (`evictionMonitoringPeriod`, `pkg/kubelet/kubelet.go`) and
//! evicts at most one pod a check (`eviction_manager.go`, `synchronize`).

/// How often the eviction manager looks, in ms.
pub const MONITORING_PERIOD_MS: u64 = 10_000;

/// The default hard threshold of `memory.available` on Linux, in bytes (100Mi).
pub const DEFAULT_HARD_BYTES: u64 = 100 << 20;

/// `memory.available`: capacity less the node's working set (usage − inactive file pages),
/// floored at 0.
pub fn memory_available(capacity: u64, usage: u64, inactive_file: u64) -> u64 {
    capacity.saturating_sub(usage.saturating_sub(inactive_file))
}

/// A threshold's value as the kubelet's configuration writes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ThresholdValue {
    Bytes(u64),
    /// A share of capacity, 0 to 1 (`10%` is 0.1).
    Percentage(f64),
}

impl ThresholdValue {
    /// `GetThresholdQuantity`: the threshold in bytes for a signal of `capacity`.
    pub fn bytes(self, capacity: u64) -> u64 {
        match self {
            ThresholdValue::Bytes(bytes) => bytes,
            ThresholdValue::Percentage(share) => (capacity as f64 * share) as u64,
        }
    }
}

/// One `memory.available` threshold: hard (grace 0) or soft (with its grace period).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    pub value: ThresholdValue,
    /// 0 for a hard threshold.
    pub grace_period_ms: u64,
}

impl Threshold {
    /// `thresholdsMet`: the signal is strictly below the threshold.
    pub fn met(&self, available: u64, capacity: u64) -> bool {
        available < self.value.bytes(capacity)
    }
}

/// What the kubelet knows of one pod when it ranks them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodUse {
    pub name: String,
    /// The pod's working set (its cgroup's usage − inactive file pages).
    pub working_set: u64,
    /// The pod's memory request (the sum the API server's resource helpers give).
    pub request: u64,
    /// `spec.priority`.
    pub priority: i32,
}

/// `rankMemoryPressure`: the pods in the order the kubelet evicts them, first first.
pub fn rank(pods: &mut [PodUse]) {
    pods.sort_by(|a, b| {
        let exceeds = |pod: &PodUse| pod.working_set > pod.request;
        // exceedMemoryRequests: the one over its requests first.
        exceeds(b)
            .cmp(&exceeds(a))
            // priority: the lower first.
            .then(a.priority.cmp(&b.priority))
            // memory: the larger use above requests first.
            .then_with(|| above_request(b).cmp(&above_request(a)))
    });
}

/// Use above the request, which may be negative.
fn above_request(pod: &PodUse) -> i128 {
    i128::from(pod.working_set) - i128::from(pod.request)
}

/// A soft threshold's clock: when it was first seen met (`thresholdsFirstObservedAt`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Observed {
    since_ms: Option<u64>,
}

impl Observed {
    /// The threshold was checked at `now_ms` and found `met` or not: whether it counts now
    /// (`thresholdsMetGracePeriod`: met for at least its grace period).
    pub fn check(&mut self, met: bool, now_ms: u64, grace_period_ms: u64) -> bool {
        if !met {
            self.since_ms = None;
            return false;
        }
        let since = *self.since_ms.get_or_insert(now_ms);
        now_ms - since >= grace_period_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn pod(name: &str, working_set_mib: u64, request_mib: u64, priority: i32) -> PodUse {
        PodUse {
            name: name.into(),
            working_set: working_set_mib * MIB,
            request: request_mib * MIB,
            priority,
        }
    }

    #[test]
    fn available_is_capacity_less_the_working_set_active_cache_included() {
        // 1000MiB machine, 700MiB in use of which 200MiB inactive file: working set 500MiB.
        assert_eq!(
            memory_available(1000 * MIB, 700 * MIB, 200 * MIB),
            500 * MIB
        );
        // Active page cache counts: the same usage with only 50MiB inactive leaves 350MiB.
        assert_eq!(memory_available(1000 * MIB, 700 * MIB, 50 * MIB), 350 * MIB);
        assert_eq!(memory_available(100 * MIB, 300 * MIB, 0), 0);
    }

    #[test]
    fn thresholds_in_bytes_or_percent_are_met_strictly_below() {
        let hard = Threshold {
            value: ThresholdValue::Bytes(DEFAULT_HARD_BYTES),
            grace_period_ms: 0,
        };
        assert!(!hard.met(100 * MIB, 1000 * MIB), "100Mi is not below 100Mi");
        assert!(hard.met(100 * MIB - 1, 1000 * MIB));
        // 10% of 1000MiB = 100MiB.
        let percent = ThresholdValue::Percentage(0.10);
        assert_eq!(percent.bytes(1000 * MIB), 100 * MIB);
        // 7.5% of 512MiB = 38.4MiB, truncated to whole bytes.
        assert_eq!(
            ThresholdValue::Percentage(0.075).bytes(512 * MIB),
            40_265_318
        );
    }

    #[test]
    fn a_soft_threshold_counts_once_met_for_its_grace_period() {
        let mut observed = Observed::default();
        assert!(!observed.check(true, 10_000, 30_000), "first seen at 10 s");
        assert!(!observed.check(true, 30_000, 30_000), "20 s of 30");
        assert!(observed.check(true, 40_000, 30_000), "30 s met");
        assert!(
            !observed.check(false, 50_000, 30_000),
            "no longer met: starts over"
        );
        assert!(!observed.check(true, 60_000, 30_000));
        assert!(
            observed.check(true, 60_000, 0),
            "a hard threshold counts at once"
        );
    }

    #[test]
    fn pods_over_their_requests_go_first_then_low_priority_then_the_most_above_request() {
        let mut pods = vec![
            pod("guaranteed-db", 280, 288, 0),     // under its request
            pod("burstable-api", 150, 100, 0),     // 50 over
            pod("besteffort-batch", 40, 0, 0),     // 40 over
            pod("critical-agent", 300, 64, 2_000), // 236 over, high priority
            pod("besteffort-cache", 90, 0, 0),     // 90 over
        ];
        rank(&mut pods);
        let order: Vec<&str> = pods.iter().map(|pod| pod.name.as_str()).collect();
        assert_eq!(
            order,
            [
                "besteffort-cache",
                "burstable-api",
                "besteffort-batch",
                "critical-agent",
                "guaranteed-db"
            ]
        );
    }

    #[test]
    fn among_pods_within_their_requests_priority_then_the_least_headroom() {
        let mut pods = vec![
            pod("a", 10, 100, 5),
            pod("b", 90, 100, 5),
            pod("c", 10, 100, -1),
        ];
        rank(&mut pods);
        let order: Vec<&str> = pods.iter().map(|pod| pod.name.as_str()).collect();
        assert_eq!(order, ["c", "b", "a"]);
    }
}
