//! The hello: protocol version, kernel release, boot time, and what the kernel offers
//! (`cgroup_v2`, `cgroup_v1_memory`, `madv_free`, `mglru`, `thp`, `thp_defrag`, `smaps_rollup`,
//! `psi`, `memory_peak`), read in the guest so expectations can be filtered by feature and the
//! catalogue's facts of the kernel checked against it.
//!
//! The hello is sent before the run's set-up (modules, sysctls, sysfs writes, the cgroup), so
//! what it reads are the kernel's boot defaults, not what a scenario wrote (a scenario may write
//! `/sys/kernel/mm/lru_gen/enabled` or the THP modes).

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::mman::{MapFlags, MmapAdvise, ProtFlags, madvise, mmap_anonymous, munmap};
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

/// Whether `madvise(MADV_FREE)` exists: one anonymous page mapped, written and advised.
/// What madvise returned, or `None` when the page could not even be mapped.
pub fn probe_madv_free() -> Option<nix::Result<()>> {
    let page = NonZeroUsize::new(4096)?;
    let prot = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
    let flags = MapFlags::MAP_PRIVATE | MapFlags::MAP_ANONYMOUS;
    // SAFETY: a fresh private mapping of one page, nothing else refers to it.
    let ptr = unsafe { mmap_anonymous(None, page, prot, flags) }.ok()?;
    // SAFETY: `ptr` is the start of the writable page just mapped.
    unsafe { ptr.cast::<u8>().write_volatile(1) };
    // SAFETY: the range is exactly the page mapped above.
    let advised = unsafe { madvise(ptr, page.get(), MmapAdvise::MADV_FREE) };
    // SAFETY: the page is unmapped once, and not used after.
    let _ = unsafe { munmap(ptr, page.get()) };
    Some(advised)
}

/// The `madv_free` feature from what the probe got: `yes` if madvise returned 0, `no` on
/// EINVAL (how a kernel before 4.5 answers an advice it does not know), else `unknown`.
pub fn madv_free_feature(probed: Option<nix::Result<()>>) -> String {
    match probed {
        Some(Ok(())) => yes_no(true),
        Some(Err(Errno::EINVAL)) => yes_no(false),
        _ => "unknown".to_owned(),
    }
}

/// The selected mode of a sysfs choice file (`thp`, `thp_defrag`), or `absent` without one.
pub fn choice_feature(text: Option<&str>) -> String {
    text.and_then(parse::bracketed)
        .map_or_else(|| "absent".to_owned(), str::to_owned)
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
    // decides, whenever the agent may mount: the run's own mount in a v1 run (`unsupported` if
    // it fails), else a probe mount here. Only outside the guest does /proc/cgroups answer,
    // and only a "no".
    let listed = read("/proc/cgroups").is_some_and(|text| parse::proc_cgroups_has_memory(&text));
    let v1_memory = match v1_mounted {
        Some(mounted) => yes_no(mounted),
        None if probe => cgroup::probe_v1_memory().map_or_else(|| "unknown".to_owned(), yes_no),
        None if !listed => yes_no(false),
        None => "unknown".to_owned(),
    };
    features.insert("cgroup_v1_memory".into(), v1_memory);
    features.insert("madv_free".into(), madv_free_feature(probe_madv_free()));
    let mglru = read("/sys/kernel/mm/lru_gen/enabled")
        .map_or_else(|| "absent".to_owned(), |text| text.trim().to_owned());
    features.insert("mglru".into(), mglru);
    let thp = read("/sys/kernel/mm/transparent_hugepage/enabled");
    features.insert("thp".into(), choice_feature(thp.as_deref()));
    let thp_defrag = read("/sys/kernel/mm/transparent_hugepage/defrag");
    features.insert("thp_defrag".into(), choice_feature(thp_defrag.as_deref()));
    if let Some(version) = read("/proc/sys/kernel/version") {
        // With the release, what `uname -a` says of the kernel (build number, preemption, date).
        features.insert("kernel_version".into(), version.trim().to_owned());
    }
    features.insert(
        "smaps_rollup".into(),
        yes_no(Path::new("/proc/self/smaps_rollup").exists()),
    );
    // Pressure stall information: built in and switched on (`psi=1` on the command line, which
    // the runner sets: Debian builds it disabled by default), else the file is missing.
    features.insert(
        "psi".into(),
        yes_no(Path::new("/proc/pressure/memory").exists()),
    );
    let memory_peak = if probe && cgroup_version != Some(1) {
        cgroup::v2_has_memory_peak().map_or_else(|| "unknown".to_owned(), yes_no)
    } else {
        "unknown".to_owned()
    };
    features.insert("memory_peak".into(), memory_peak);
    features
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn madv_free_is_yes_on_0_no_on_einval_else_unknown() {
        assert_eq!(madv_free_feature(Some(Ok(()))), "yes");
        assert_eq!(madv_free_feature(Some(Err(Errno::EINVAL))), "no");
        assert_eq!(madv_free_feature(Some(Err(Errno::ENOMEM))), "unknown");
        assert_eq!(madv_free_feature(None), "unknown");
    }

    #[test]
    fn the_host_kernel_has_madv_free() {
        // Every kernel that builds this crate is newer than 4.5.
        assert_eq!(madv_free_feature(probe_madv_free()), "yes");
    }

    #[test]
    fn choice_files_give_their_bracketed_mode_or_absent() {
        let defrag = "always defer defer+madvise [madvise] never\n";
        assert_eq!(choice_feature(Some(defrag)), "madvise");
        assert_eq!(choice_feature(Some("[always] madvise never\n")), "always");
        assert_eq!(choice_feature(Some("0x0007\n")), "absent");
        assert_eq!(choice_feature(None), "absent");
    }

    #[test]
    fn the_hello_outside_the_guest_reports_every_feature() {
        let features = hello(None, None, false).features;
        let keys: Vec<&str> = features.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "cgroup_v1_memory",
                "cgroup_v2",
                "kernel_version",
                "madv_free",
                "memory_peak",
                "mglru",
                "psi",
                "smaps_rollup",
                "thp",
                "thp_defrag"
            ]
        );
        assert_eq!(features["madv_free"], "yes");
        assert_eq!(
            features["memory_peak"], "unknown",
            "no probe outside the guest"
        );
    }
}
