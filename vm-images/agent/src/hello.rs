//! The hello: protocol version, kernel release, boot time, and what the kernel offers
//! (`cgroup_v2`, `cgroup_v1_memory`, `mglru`, `thp`, `smaps_rollup`, `memory_peak`), read in the
//! guest so expectations can be filtered by feature.

use std::collections::BTreeMap;
use std::path::Path;

use nix::time::{ClockId, clock_gettime};
use rsslab_wire::{CHANNEL_VERSION, Hello};

use crate::{cgroup, parse};

/// Builds the hello. `cgroup_version` is the run's (None without a cgroup); `v1_mounted` says
/// whether a v1 run's memory controller mount worked (under v1, memory.peak cannot be probed);
/// `probe` allows the probes that mount and create cgroups (only in the guest).
pub fn hello(cgroup_version: Option<u8>, v1_mounted: Option<bool>, probe: bool) -> Hello {
    let kernel_release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|text| text.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    Hello {
        protocol: CHANNEL_VERSION,
        kernel_release,
        boot_ms: boot_ms(),
        features: features(cgroup_version, v1_mounted, probe),
    }
}

/// Milliseconds since boot (CLOCK_BOOTTIME).
pub fn boot_ms() -> u64 {
    clock_gettime(ClockId::CLOCK_BOOTTIME)
        .map(|ts| ts.tv_sec() as u64 * 1000 + ts.tv_nsec() as u64 / 1_000_000)
        .unwrap_or(0)
}

fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_owned()
}

fn features(
    cgroup_version: Option<u8>,
    v1_mounted: Option<bool>,
    probe: bool,
) -> BTreeMap<String, String> {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let mut features = BTreeMap::new();
    let filesystems = read("/proc/filesystems").unwrap_or_default();
    let cgroup_v2 = filesystems
        .lines()
        .any(|line| line.split_whitespace().last() == Some("cgroup2"));
    features.insert("cgroup_v2".into(), yes_no(cgroup_v2));
    // /proc/cgroups lists `memory` even without CONFIG_MEMCG_V1 (before 6.15), so a mount
    // decides: a probe mount here, or the run's own mount in a v1 run (`unsupported` if it fails).
    let listed = read("/proc/cgroups").is_some_and(|text| parse::proc_cgroups_has_memory(&text));
    let v1_memory = match v1_mounted {
        Some(mounted) => yes_no(mounted),
        None if !listed => yes_no(false),
        None if !probe => "unknown".to_owned(),
        None => cgroup::probe_v1_memory().map_or_else(|| "unknown".to_owned(), yes_no),
    };
    features.insert("cgroup_v1_memory".into(), v1_memory);
    let mglru = read("/sys/kernel/mm/lru_gen/enabled")
        .map_or_else(|| "absent".to_owned(), |text| text.trim().to_owned());
    features.insert("mglru".into(), mglru);
    let thp = read("/sys/kernel/mm/transparent_hugepage/enabled")
        .and_then(|text| parse::bracketed(&text).map(str::to_owned))
        .unwrap_or_else(|| "absent".into());
    features.insert("thp".into(), thp);
    features.insert(
        "smaps_rollup".into(),
        yes_no(Path::new("/proc/self/smaps_rollup").exists()),
    );
    let memory_peak = if probe && cgroup_version != Some(1) {
        cgroup::v2_has_memory_peak().map_or_else(|| "unknown".to_owned(), yes_no)
    } else {
        "unknown".to_owned()
    };
    features.insert("memory_peak".into(), memory_peak);
    features
}
