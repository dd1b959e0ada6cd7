//! One sample's figures for a process and for the guest, peak bookkeeping, and the sampling
//! schedule (fixed ticks from the run start on CLOCK_MONOTONIC, so it does not drift).

use rsslab_wire::Metrics;

use crate::{account, parse};

/// A process's figures now, and the kernel's own high-water marks (VmPeak, VmHWM).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessFigures {
    pub metrics: Metrics,
    pub marks: Metrics,
}

/// Reads /proc/<pid>/status, smaps_rollup and oom_score. None when the process is gone or a
/// zombie.
pub fn process(pid: i32) -> Option<ProcessFigures> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut metrics = parse::kib_fields(&status, parse::STATUS_FIELDS);
    if metrics.is_empty() {
        return None; // a zombie: its memory is gone
    }
    if let Ok(rollup) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) {
        metrics.extend(parse::kib_fields(&rollup, parse::SMAPS_ROLLUP_FIELDS));
    }
    if let Some(score) = std::fs::read_to_string(format!("/proc/{pid}/oom_score"))
        .ok()
        .and_then(|text| parse::single_value(&text))
    {
        metrics.insert("oom_score".into(), score);
    }
    let marks = parse::kib_fields(&status, parse::STATUS_PEAK_FIELDS);
    Some(ProcessFigures { metrics, marks })
}

/// The guest's figures from /proc/meminfo, with `kubelet_available`, and the kernel's account
/// (pressure, reclaim: [`account::guest`]).
pub fn guest() -> Metrics {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let mut metrics = read("/proc/meminfo")
        .map(|meminfo| guest_metrics(&meminfo))
        .unwrap_or_default();
    metrics.extend(account::guest(
        read("/proc/pressure/memory").as_deref(),
        read("/proc/vmstat").as_deref(),
    ));
    metrics
}

/// Guest metrics from /proc/meminfo text.
pub fn guest_metrics(meminfo: &str) -> Metrics {
    let mut metrics = parse::kib_fields(meminfo, parse::MEMINFO_FIELDS);
    let inactive_file = parse::kib_field(meminfo, "Inactive(file)");
    if let (Some(&total), Some(&free), Some(inactive_file)) = (
        metrics.get("mem_total"),
        metrics.get("mem_free"),
        inactive_file,
    ) {
        metrics.insert(
            "kubelet_available".into(),
            kubelet_available(total, free, inactive_file),
        );
    }
    metrics
}

/// The kubelet's node-level `memory.available` eviction signal: capacity - node working set.
///
/// The kubelet takes the node's figures from the root cgroup, which on cgroup v2 has no
/// memory.current, so runc/cAdvisor derive them from /proc/meminfo: usage = MemTotal - MemFree
/// and working set = usage - Inactive(file). That node view is what evictions act on, so it is
/// used here, with or without a run cgroup (the cgroup's own working set is in the `cgroup`
/// map); it equals MemFree + Inactive(file).
pub fn kubelet_available(mem_total: u64, mem_free: u64, inactive_file: u64) -> u64 {
    let usage = mem_total.saturating_sub(mem_free);
    let working_set = crate::cgroup::working_set(usage, inactive_file);
    mem_total.saturating_sub(working_set)
}

/// Raises each peak to the value if higher.
pub fn raise_peaks(peaks: &mut Metrics, values: &Metrics) {
    for (name, value) in values {
        let peak = peaks.entry(name.clone()).or_insert(*value);
        *peak = (*peak).max(*value);
    }
}

/// Sampling ticks at 0, every, 2*every... ms after the run start. A late sample does not shift
/// later ones; ticks missed entirely are skipped.
#[derive(Debug, Clone)]
pub struct Schedule {
    every_ms: u64,
    next_ms: u64,
}

impl Schedule {
    pub fn new(every_ms: u64) -> Schedule {
        Schedule {
            every_ms: every_ms.max(1),
            next_ms: 0,
        }
    }

    /// When the next sample is due.
    pub fn next_ms(&self) -> u64 {
        self.next_ms
    }

    /// Whether a sample is due at `now_ms`; if so, moves to the first tick after `now_ms`.
    pub fn due(&mut self, now_ms: u64) -> bool {
        if now_ms < self.next_ms {
            return false;
        }
        self.next_ms = (now_ms / self.every_ms + 1) * self.every_ms;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_available_is_free_plus_inactive_file() {
        assert_eq!(kubelet_available(1000, 300, 200), 500);
        assert_eq!(kubelet_available(1000, 1000, 0), 1000);
        // inactive file beyond usage (cannot really happen) floors the working set at 0
        assert_eq!(kubelet_available(1000, 900, 500), 1000);
    }

    #[test]
    fn guest_metrics_from_meminfo() {
        let text = "MemTotal:        1000 kB\nMemFree:          300 kB\nMemAvailable:     600 kB\n\
Cached:           250 kB\nInactive(file):   200 kB\nCommitLimit:      500 kB\nCommitted_AS:     400 kB\n";
        let metrics = guest_metrics(text);
        assert_eq!(metrics["kubelet_available"], 500 * 1024);
        assert_eq!(metrics["mem_available"], 600 * 1024);
        assert_eq!(metrics.len(), 7);
    }

    #[test]
    fn peaks_only_rise() {
        let mut peaks = Metrics::new();
        raise_peaks(
            &mut peaks,
            &[("rss".to_owned(), 10), ("vsz".to_owned(), 50)].into(),
        );
        raise_peaks(
            &mut peaks,
            &[("rss".to_owned(), 30), ("vsz".to_owned(), 20)].into(),
        );
        raise_peaks(&mut peaks, &[("rss".to_owned(), 5)].into());
        assert_eq!((peaks["rss"], peaks["vsz"]), (30, 50));
    }

    #[test]
    fn the_schedule_does_not_drift() {
        let mut schedule = Schedule::new(250);
        assert!(schedule.due(0));
        assert!(!schedule.due(249));
        assert!(schedule.due(260), "10 ms late");
        assert_eq!(schedule.next_ms(), 500, "the lateness is not carried over");
        assert!(schedule.due(1300), "very late: ticks 500..1250 are skipped");
        assert_eq!(schedule.next_ms(), 1500);
    }

    #[test]
    fn this_process_has_figures() {
        let figures = process(std::process::id() as i32).expect("own status");
        assert!(figures.metrics["rss"] > 0);
        assert!(figures.metrics["vsz"] >= figures.metrics["rss"]);
        assert!(figures.marks["rss"] >= figures.metrics["rss"] / 2);
    }
}
