//! Pure parsers of the kernel's text files: `/proc/<pid>/status`, `/proc/<pid>/smaps_rollup`,
//! `/proc/meminfo` (all "Key:   123 kB" lines), cgroup `memory.stat` / `memory.events`
//! ("key 123" lines), single-number files, and the selected mode of a sysfs choice file.

use rsslab_wire::Metrics;

/// Per-process fields of /proc/<pid>/status, as (kernel key, metric name).
pub const STATUS_FIELDS: &[(&str, &str)] = &[
    ("VmSize", "vsz"),
    ("VmRSS", "rss"),
    ("RssAnon", "rss_anon"),
    ("RssFile", "rss_file"),
    ("RssShmem", "rss_shmem"),
    ("VmSwap", "swap"),
];

/// High-water marks in /proc/<pid>/status: peaks of `vsz` and `rss`, used only for peaks.
pub const STATUS_PEAK_FIELDS: &[(&str, &str)] = &[("VmPeak", "vsz"), ("VmHWM", "rss")];

/// /proc/<pid>/smaps_rollup fields.
pub const SMAPS_ROLLUP_FIELDS: &[(&str, &str)] =
    &[("LazyFree", "lazyfree"), ("AnonHugePages", "anon_huge")];

/// /proc/meminfo fields reported as guest metrics.
pub const MEMINFO_FIELDS: &[(&str, &str)] = &[
    ("MemTotal", "mem_total"),
    ("MemFree", "mem_free"),
    ("MemAvailable", "mem_available"),
    ("Cached", "cached"),
    ("Committed_AS", "committed_as"),
    ("CommitLimit", "commit_limit"),
    ("AnonHugePages", "anon_huge"),
];

/// Reads "Key:  123 kB" lines (status, smaps_rollup, meminfo) and returns the wanted ones in
/// bytes under their metric names. Values without a unit are taken as they are.
pub fn kib_fields(text: &str, wanted: &[(&str, &str)]) -> Metrics {
    let mut metrics = Metrics::new();
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let Some((_, name)) = wanted
            .iter()
            .find(|(wanted_key, _)| *wanted_key == key.trim())
        else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let Some(Ok(value)) = words.next().map(str::parse::<u64>) else {
            continue;
        };
        let bytes = match words.next() {
            Some("kB") => value.saturating_mul(1024),
            _ => value,
        };
        metrics.insert((*name).to_owned(), bytes);
    }
    metrics
}

/// Reads one "Key:  123 kB" field in bytes.
pub fn kib_field(text: &str, key: &str) -> Option<u64> {
    kib_fields(text, &[(key, "v")]).remove("v")
}

/// Reads "key 123" lines (cgroup memory.stat, memory.events, v1 memory.oom_control).
pub fn keyed_values(text: &str) -> Metrics {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let key = words.next()?;
            let value = words.next()?.parse().ok()?;
            Some((key.to_owned(), value))
        })
        .collect()
}

/// Reads a file holding one number (memory.current); `None` for "max" or anything else.
pub fn single_value(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// The selected word of a sysfs choice file: "always [madvise] never" -> "madvise".
pub fn bracketed(text: &str) -> Option<&str> {
    let start = text.find('[')? + 1;
    let end = start + text[start..].find(']')?;
    Some(&text[start..end])
}

/// Whether /proc/cgroups lists an enabled `memory` controller (columns: name, hierarchy,
/// num_cgroups, enabled).
pub fn proc_cgroups_has_memory(text: &str) -> bool {
    text.lines().any(|line| {
        let columns: Vec<&str> = line.split_whitespace().collect();
        columns.first() == Some(&"memory") && columns.get(3) == Some(&"1")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\theap-churn\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t412\n\
VmPeak:\t  317544 kB\nVmSize:\t  317540 kB\nVmLck:\t       0 kB\nVmHWM:\t  308428 kB\n\
VmRSS:\t  308400 kB\nRssAnon:\t  307712 kB\nRssFile:\t     688 kB\nRssShmem:\t       0 kB\n\
VmData:\t  307436 kB\nVmSwap:\t       0 kB\nThreads:\t1\n";

    #[test]
    fn status_fields_are_bytes() {
        let metrics = kib_fields(STATUS, STATUS_FIELDS);
        assert_eq!(metrics["vsz"], 317_540 * 1024);
        assert_eq!(metrics["rss"], 308_400 * 1024);
        assert_eq!(metrics["rss_anon"], 307_712 * 1024);
        assert_eq!(metrics["rss_file"], 688 * 1024);
        assert_eq!(metrics["rss_shmem"], 0);
        assert_eq!(metrics["swap"], 0);
        assert_eq!(metrics.len(), 6);
        let peaks = kib_fields(STATUS, STATUS_PEAK_FIELDS);
        assert_eq!(peaks["vsz"], 317_544 * 1024);
        assert_eq!(peaks["rss"], 308_428 * 1024);
    }

    #[test]
    fn a_kernel_thread_or_zombie_status_has_no_memory_fields() {
        let metrics = kib_fields(
            "Name:\tkworker\nState:\tZ (zombie)\nThreads:\t1\n",
            STATUS_FIELDS,
        );
        assert!(metrics.is_empty());
    }

    #[test]
    fn smaps_rollup_lazyfree() {
        let text = "55d0c0a00000-7ffd1b5f2000 ---p 00000000 00:00 0                          [rollup]\n\
Rss:              308400 kB\nPss:              308400 kB\nLazyFree:         256000 kB\n\
AnonHugePages:     36864 kB\nSwap:                  0 kB\n";
        let metrics = kib_fields(text, SMAPS_ROLLUP_FIELDS);
        assert_eq!(metrics["lazyfree"], 256_000 * 1024);
        assert_eq!(metrics["anon_huge"], 36_864 * 1024);
        assert_eq!(kib_field(text, "Rss"), Some(308_400 * 1024));
        assert_eq!(kib_field(text, "Nope"), None);
    }

    #[test]
    fn meminfo_fields() {
        let text = "MemTotal:        1004564 kB\nMemFree:          601048 kB\nMemAvailable:     640252 kB\n\
Buffers:               0 kB\nCached:            48936 kB\nSwapCached:            0 kB\n\
Inactive(file):    12000 kB\nAnonHugePages:     4096 kB\nCommitLimit:      502280 kB\nCommitted_AS:     330640 kB\nHugePages_Total:       0\n";
        let metrics = kib_fields(text, MEMINFO_FIELDS);
        assert_eq!(metrics["mem_total"], 1_004_564 * 1024);
        assert_eq!(metrics["mem_free"], 601_048 * 1024);
        assert_eq!(metrics["mem_available"], 640_252 * 1024);
        assert_eq!(metrics["cached"], 48_936 * 1024);
        assert_eq!(metrics["committed_as"], 330_640 * 1024);
        assert_eq!(metrics["commit_limit"], 502_280 * 1024);
        assert_eq!(metrics["anon_huge"], 4096 * 1024);
        assert_eq!(kib_field(text, "Inactive(file)"), Some(12_000 * 1024));
        assert_eq!(
            kib_field(text, "HugePages_Total"),
            Some(0),
            "no unit: taken as is"
        );
    }

    #[test]
    fn memory_stat_and_events() {
        let stat = "anon 52428800\nfile 104857600\nkernel 1234\nshmem 0\nactive_file 4096\n\
inactive_file 104853504\npgfault 99\n";
        let values = keyed_values(stat);
        assert_eq!(values["anon"], 52_428_800);
        assert_eq!(values["inactive_file"], 104_853_504);
        assert_eq!(values["pgfault"], 99);
        let events = keyed_values("low 0\nhigh 3\nmax 17\noom 1\noom_kill 1\noom_group_kill 0\n");
        assert_eq!(
            (events["high"], events["max"], events["oom_kill"]),
            (3, 17, 1)
        );
        assert!(keyed_values("garbage\nkey notanumber\n").is_empty());
    }

    #[test]
    fn single_values_and_max() {
        assert_eq!(single_value("805306368\n"), Some(805_306_368));
        assert_eq!(single_value("max\n"), None);
    }

    #[test]
    fn bracketed_mode() {
        assert_eq!(bracketed("always [madvise] never\n"), Some("madvise"));
        assert_eq!(bracketed("[always] madvise never"), Some("always"));
        assert_eq!(bracketed("0x0007\n"), None);
    }

    #[test]
    fn proc_cgroups_memory_line() {
        let v1 =
            "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t0\t1\t1\nmemory\t0\t1\t1\n";
        assert!(proc_cgroups_has_memory(v1));
        assert!(!proc_cgroups_has_memory(
            "#subsys_name\thierarchy\tnum_cgroups\tenabled\nmemory\t0\t1\t0\n"
        ));
        assert!(!proc_cgroups_has_memory(
            "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t0\t1\t1\n"
        ));
    }

    #[test]
    fn every_sampled_process_metric_is_one_expectations_know() {
        for (_, name) in STATUS_FIELDS.iter().chain(SMAPS_ROLLUP_FIELDS) {
            assert!(
                rsslab_wire::workload::PROCESS_METRICS.contains(name),
                "{name} is sampled but not in PROCESS_METRICS"
            );
        }
    }
}
