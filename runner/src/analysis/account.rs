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

    /// A run's totals: each counter's rise over the samples that have it (a sample without it
    /// is left out, not read as 0), the cgroup's oom_kill from memory.events; nothing for a
    /// counter no sample has, and an empty account is left out of results.json.
    #[test]
    fn totals_rise_over_the_samples_that_have_each_counter() {
        let mut run = crate::records::testing::fake_run("demo", "6.1", "free");
        assert!(
            account_totals(&run).is_empty(),
            "the fake run has no counters"
        );
        let json = serde_json::to_value(crate::analysis::results::build_results(
            std::slice::from_ref(&run),
        ))
        .unwrap();
        assert!(
            json["runs"][0].get("account").is_none(),
            "{}",
            json["runs"][0]
        );
        for (index, sample) in run.samples.iter_mut().enumerate() {
            let index = index as u64;
            sample.guest.insert("pgscan".into(), 100 + 10 * index);
            if index.is_multiple_of(2) {
                sample.cgroup.insert("high".into(), 3 * index);
            }
            sample
                .cgroup
                .insert("oom_kill".into(), u64::from(index >= 60));
            sample.cgroup.insert("pgsteal".into(), 7 * index);
        }
        let samples = run.samples.len() as u64;
        let totals = account_totals(&run);
        assert!(!totals.is_empty());
        assert_eq!(totals.guest["pgscan"], 10 * (samples - 1));
        // Every second sample, from 0 to the last even index.
        let last_even = (samples - 1) / 2 * 2;
        assert_eq!(totals.cgroup["high"], 3 * last_even);
        assert_eq!(totals.cgroup["oom_kill"], 1);
        assert_eq!(
            totals.cgroup["pgsteal"],
            7 * (samples - 1),
            "memory.stat's counters too"
        );
        assert!(!totals.guest.contains_key("pgsteal"), "{totals:?}");
        let json = serde_json::to_value(crate::analysis::results::build_results(&[run])).unwrap();
        assert_eq!(json["runs"][0]["account"]["cgroup"]["oom_kill"], 1);
        let points = counter_points(&[], |sample| sample.guest.get("pgscan").copied());
        assert!(points.is_empty());
        // A run without a cgroup has the guest's account alone: not empty.
        let guest_only = AccountTotals {
            guest: BTreeMap::from([("pgscan".to_owned(), 1)]),
            cgroup: BTreeMap::new(),
        };
        assert!(!guest_only.is_empty());
    }
}
