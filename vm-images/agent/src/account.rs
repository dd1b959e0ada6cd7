//! The kernel's own account of what it did about memory: pressure stall information (PSI) and
//! the reclaim, refault and fault counters, from `/proc/pressure/memory`, `/proc/vmstat` and a
//! cgroup's `memory.pressure` and `memory.stat`.
//!
//! Every figure is sent as the kernel keeps it, cumulative since boot (or since the cgroup was
//! made): the runner derives the per-interval deltas and rates, so a lost sample loses nothing
//! and a counter reset is seen as one. Names (the same in the guest and the cgroup map):
//!
//! | metric                | unit                          | from                                     |
//! |-----------------------|-------------------------------|------------------------------------------|
//! | `psi_some_total`      | µs some task stalled          | `some ... total=` of the pressure file   |
//! | `psi_full_total`      | µs all non-idle tasks stalled | `full ... total=`                        |
//! | `psi_some_avg10`      | hundredths of a percent       | `some avg10=` (the kernel's two decimals)|
//! | `psi_full_avg10`      | hundredths of a percent       | `full avg10=`                            |
//! | `pgscan`, `pgsteal`   | pages scanned, reclaimed      | by every reclaimer (see [`reclaim`])     |
//! | `pgscan_direct`, `pgsteal_direct` | pages             | by allocating tasks (a cgroup's: not 5.10)|
//! | `workingset_refault`  | pages                         | evicted pages faulted back (anon + file) |
//! | `workingset_activate` | pages                         | refaults activated at once               |
//! | `pgmajfault`          | faults                        | major faults                             |
//! | `oom_kill`            | kills                         | `/proc/vmstat` (guest only, 4.13+)       |
//!
//! A kernel without PSI (or with it off: Debian's are built with `CONFIG_PSI_DEFAULT_DISABLED`,
//! so the runner boots them with `psi=1`) has no pressure files, and the `psi_*` figures are
//! simply absent; so are counters a kernel does not keep.

use rsslab_wire::Metrics;

use crate::parse;

/// The `psi_*` figures of a pressure file (`/proc/pressure/memory`, `memory.pressure`):
/// `some avg10=0.12 avg60=0.05 avg300=0.01 total=12345` and a `full` line alike.
pub fn pressure(text: &str) -> Metrics {
    let mut metrics = Metrics::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(kind @ ("some" | "full")) = words.next() else {
            continue;
        };
        for word in words {
            match word.split_once('=') {
                Some(("avg10", value)) => {
                    if let Some(hundredths) = hundredths(value) {
                        metrics.insert(format!("psi_{kind}_avg10"), hundredths);
                    }
                }
                Some(("total", value)) => {
                    if let Ok(micros) = value.parse() {
                        metrics.insert(format!("psi_{kind}_total"), micros);
                    }
                }
                _ => {}
            }
        }
    }
    metrics
}

/// `"12.34"` -> 1234: a percentage with the kernel's two decimals, in hundredths.
fn hundredths(value: &str) -> Option<u64> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, "0"));
    let fraction = format!("{fraction:0<2}");
    Some(whole.parse::<u64>().ok()? * 100 + fraction.get(..2)?.parse::<u64>().ok()?)
}

/// The reclaim, refault and fault counters of `/proc/vmstat` or a v2 `memory.stat` ("key
/// value" lines).
///
/// `pgscan` and `pgsteal` count every reclaim. A cgroup's `memory.stat` has them as such.
/// `/proc/vmstat` has them by LRU type from 5.8 on (`pgscan_anon` + `pgscan_file`, which is
/// what is summed) and by who reclaimed (`pgscan_kswapd`, `_direct`, `_khugepaged`,
/// `_proactive`: summed only on a kernel without the split by type). The two differ: the
/// kernels' own files, captured in the guest after a cgroup's limit made it reclaim
/// (`tests/kernel-files`), show 50 000 pages in `pgscan_file` and none in `pgscan_kswapd` or
/// `pgscan_direct` on 5.10, 6.1 and 6.12, where reclaim forced by a cgroup's limit is left
/// out of those, and all of them in `pgscan_direct` on 7.2. So the guest's `pgscan_direct` is
/// global direct reclaim on the older kernels and includes a cgroup's on 7.2; a cgroup's own
/// `pgscan_direct` counts its limit's reclaim everywhere. Refaults and activations are split
/// into `_anon` and `_file` from 5.9 on (summed), one counter before.
pub fn reclaim(text: &str) -> Metrics {
    let values = parse::keyed_values(text);
    let mut metrics = Metrics::new();
    for counter in ["pgscan", "pgsteal"] {
        let by_reclaimer = ["kswapd", "direct", "khugepaged", "proactive"]
            .map(|who| values.get(&format!("{counter}_{who}")).copied());
        let by_type =
            ["anon", "file"].map(|kind| values.get(&format!("{counter}_{kind}")).copied());
        let total = values
            .get(counter)
            .copied()
            .or_else(|| Some(by_type[0]? + by_type[1]?))
            .or_else(|| {
                let present: Vec<u64> = by_reclaimer.iter().flatten().copied().collect();
                (!present.is_empty()).then(|| present.iter().sum())
            });
        if let Some(total) = total {
            metrics.insert(counter.to_owned(), total);
        }
        if let Some(direct) = by_reclaimer[1] {
            metrics.insert(format!("{counter}_direct"), direct);
        }
    }
    for counter in ["workingset_refault", "workingset_activate"] {
        let split: Vec<u64> = ["anon", "file"]
            .iter()
            .filter_map(|kind| values.get(&format!("{counter}_{kind}")).copied())
            .collect();
        let total = if split.is_empty() {
            values.get(counter).copied()
        } else {
            Some(split.iter().sum())
        };
        if let Some(total) = total {
            metrics.insert(counter.to_owned(), total);
        }
    }
    for counter in ["pgmajfault", "oom_kill"] {
        if let Some(&value) = values.get(counter) {
            metrics.insert(counter.to_owned(), value);
        }
    }
    metrics
}

/// The guest's account: `/proc/pressure/memory` and `/proc/vmstat` (either may be missing).
pub fn guest(pressure_text: Option<&str>, vmstat: Option<&str>) -> Metrics {
    let mut metrics = pressure_text.map(pressure).unwrap_or_default();
    metrics.extend(vmstat.map(reclaim).unwrap_or_default());
    metrics
}

/// A v1 cgroup's account: its `memory.stat` has no reclaim counters, only the hierarchical
/// `total_pgmajfault`; v1 has no pressure file.
pub fn v1_cgroup(stat: Option<&str>) -> Metrics {
    stat.map(parse::keyed_values)
        .and_then(|values| values.get("total_pgmajfault").copied())
        .map(|faults| Metrics::from([("pgmajfault".to_owned(), faults)]))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(pairs: &[(&str, u64)]) -> Metrics {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    #[test]
    fn a_pressure_file_gives_the_stall_totals_and_avg10_in_hundredths() {
        let text = "some avg10=12.34 avg60=0.05 avg300=0.01 total=1234567\n\
                    full avg10=0.07 avg60=0.00 avg300=0.00 total=890\n";
        assert_eq!(
            pressure(text),
            metrics(&[
                ("psi_full_avg10", 7),
                ("psi_full_total", 890),
                ("psi_some_avg10", 1234),
                ("psi_some_total", 1234567),
            ])
        );
        assert_eq!(hundredths("100.00"), Some(10000));
        assert_eq!(hundredths("3.5"), Some(350));
        assert_eq!(hundredths("7"), Some(700));
        assert_eq!(hundredths("x"), None);
        assert!(pressure("").is_empty());
        assert!(pressure("cpu avg10=1.00 total=5\n").is_empty());
    }

    #[test]
    fn vmstat_reclaim_is_the_sum_of_the_lru_types_where_the_kernel_splits_them() {
        let vmstat = "pgmajfault 40\npgscan_kswapd 100\npgscan_direct 20\npgscan_khugepaged 3\n\
                      pgscan_direct_throttle 9\npgscan_anon 50\npgscan_file 73\n\
                      pgsteal_kswapd 80\npgsteal_direct 10\npgsteal_anon 30\npgsteal_file 60\n\
                      workingset_refault_anon 5\nworkingset_refault_file 7\n\
                      workingset_activate_anon 1\nworkingset_activate_file 2\noom_kill 1\n";
        assert_eq!(
            reclaim(vmstat),
            metrics(&[
                ("oom_kill", 1),
                ("pgmajfault", 40),
                ("pgscan", 123), // anon + file: kswapd + direct + khugepaged is 123 too here
                ("pgscan_direct", 20),
                ("pgsteal", 90),
                ("pgsteal_direct", 10),
                ("workingset_activate", 3),
                ("workingset_refault", 12),
            ])
        );
    }

    #[test]
    fn reclaim_a_cgroup_limit_forced_counts_even_where_the_reclaimers_do_not_show_it() {
        // /proc/vmstat of 6.1 after reclaim in a cgroup (tests/kernel-files/6.1-cgroup-v2.txt).
        let vmstat = "pgsteal_kswapd 0\npgsteal_direct 0\npgscan_kswapd 0\npgscan_direct 0\n\
                      pgscan_anon 0\npgscan_file 50548\npgsteal_anon 0\npgsteal_file 49157\n";
        let metrics = reclaim(vmstat);
        assert_eq!((metrics["pgscan"], metrics["pgsteal"]), (50548, 49157));
        assert_eq!(
            (metrics["pgscan_direct"], metrics["pgsteal_direct"]),
            (0, 0)
        );
    }

    #[test]
    fn older_kernels_have_one_refault_counter_and_a_cgroup_has_pgscan_itself() {
        let old =
            "workingset_refault 11\nworkingset_activate 4\npgscan_kswapd 2\npgscan_direct 3\n";
        assert_eq!(
            reclaim(old),
            metrics(&[
                ("pgscan", 5),
                ("pgscan_direct", 3),
                ("workingset_activate", 4),
                ("workingset_refault", 11),
            ])
        );
        let memory_stat = "anon 4096\npgscan 70\npgsteal 60\npgscan_kswapd 50\n\
                           pgscan_direct 20\npgsteal_kswapd 45\npgsteal_direct 15\npgmajfault 3\n";
        assert_eq!(
            reclaim(memory_stat),
            metrics(&[
                ("pgmajfault", 3),
                ("pgscan", 70),
                ("pgscan_direct", 20),
                ("pgsteal", 60),
                ("pgsteal_direct", 15),
            ])
        );
    }

    #[test]
    fn a_missing_file_gives_nothing_and_v1_only_its_major_faults() {
        assert!(guest(None, None).is_empty());
        assert_eq!(
            guest(
                Some("some avg10=0.00 avg60=0.00 avg300=0.00 total=5\n"),
                None
            ),
            metrics(&[("psi_some_avg10", 0), ("psi_some_total", 5)])
        );
        assert_eq!(
            v1_cgroup(Some("pgmajfault 2\ntotal_pgmajfault 9\n")),
            metrics(&[("pgmajfault", 9)])
        );
        assert!(v1_cgroup(None).is_empty());
    }
}
