//! The kernel's account of a run, derived from its cumulative counters: how much each rose
//! ([`increase`]), how fast from sample to sample ([`rates`]), and the run's totals that
//! `results.json` lists ([`account_totals`]).
//!
//! The guest sends the counters as the kernel keeps them (pressure stall microseconds, pages
//! scanned and reclaimed, refaults, major faults, `memory.events`); every figure here is a
//! difference of two samples. A value below the one before is a reset (a cgroup made again, a
//! counter that wrapped): the new value is counted from zero, so nothing is ever negative.

use std::collections::BTreeMap;

use rsslab_wire::Sample;
use serde::{Deserialize, Serialize};

use crate::records::LoadedRun;
use crate::scenario::expect::{ACCOUNT_COUNTERS, CGROUP_EVENTS};

/// How much a counter rose over `values` (in sample order): the sum of its rises from one
/// sample to the next, a reset counted from zero.
pub fn increase(values: &[u64]) -> u64 {
    values.windows(2).map(|pair| rise(pair[0], pair[1])).sum()
}

fn rise(before: u64, after: u64) -> u64 {
    if after >= before {
        after - before
    } else {
        after
    }
}

/// The rate of a counter per second between consecutive `(t_ms, value)` points, placed at the
/// later one's time (seconds). Points at the same millisecond are skipped.
pub fn rates(points: &[(u64, u64)]) -> Vec<(f64, f64)> {
    points
        .windows(2)
        .filter(|pair| pair[1].0 > pair[0].0)
        .map(|pair| {
            let seconds = (pair[1].0 - pair[0].0) as f64 / 1000.0;
            (
                pair[1].0 as f64 / 1000.0,
                rise(pair[0].1, pair[1].1) as f64 / seconds,
            )
        })
        .collect()
}

/// `(t_ms, value)` of every sample that has the metric `pick` reads.
pub fn counter_points(
    samples: &[Sample],
    pick: impl Fn(&Sample) -> Option<u64>,
) -> Vec<(u64, u64)> {
    samples
        .iter()
        .filter_map(|sample| Some((sample.t_ms, pick(sample)?)))
        .collect()
}

/// What the kernel did over a whole run: per counter, how much it rose from the first sample
/// to the last (stall in µs, pages, faults, events). A counter the kernel does not keep (no
/// PSI, v1, an older kernel) is absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountTotals {
    /// The guest's (`/proc/pressure/memory`, `/proc/vmstat`).
    pub guest: BTreeMap<String, u64>,
    /// The run's cgroup's (`memory.pressure`, `memory.stat`, `memory.events`); empty without
    /// one.
    pub cgroup: BTreeMap<String, u64>,
}

impl AccountTotals {
    pub fn is_empty(&self) -> bool {
        self.guest.is_empty() && self.cgroup.is_empty()
    }
}

/// The run's [`AccountTotals`].
pub fn account_totals(run: &LoadedRun) -> AccountTotals {
    let totals = |counters: &[&str], map: fn(&Sample) -> &rsslab_wire::Metrics| {
        counters
            .iter()
            .filter_map(|&counter| {
                let points =
                    counter_points(&run.samples, |sample| map(sample).get(counter).copied());
                let values: Vec<u64> = points.iter().map(|&(_, value)| value).collect();
                (!values.is_empty()).then(|| (counter.to_owned(), increase(&values)))
            })
            .collect()
    };
    // The cgroup's oom_kill is its memory.events counter.
    let cgroup_counters: Vec<&str> = ACCOUNT_COUNTERS
        .iter()
        .filter(|&&name| name != "oom_kill")
        .chain(CGROUP_EVENTS)
        .copied()
        .collect();
    AccountTotals {
        guest: totals(ACCOUNT_COUNTERS, |sample| &sample.guest),
        cgroup: totals(&cgroup_counters, |sample| &sample.cgroup),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_increase_sums_the_rises_and_counts_a_reset_from_zero() {
        assert_eq!(increase(&[]), 0);
        assert_eq!(increase(&[7]), 0);
        assert_eq!(increase(&[10, 15, 15, 30]), 20);
        // Reset after 30: the counter restarted and reached 4.
        assert_eq!(increase(&[10, 30, 4, 9]), 20 + 4 + 5);
    }

    #[test]
    fn rates_are_per_second_between_samples_at_the_later_time() {
        let points = [(0, 0), (500, 1000), (1000, 1000), (1000, 1200), (2000, 100)];
        assert_eq!(
            rates(&points),
            vec![(0.5, 2000.0), (1.0, 0.0), (2.0, 100.0)]
        );
        assert!(rates(&[(0, 5)]).is_empty());
    }
}
