//! The run's cgroup: creating it with its limits (v2, or v1's memory controller), and reading
//! its figures for samples.
//!
//! v2: `+memory` in the root's subtree_control, `/sys/fs/cgroup/rsslab` with memory.max /
//! memory.high / memory.swap.max. v1: the memory controller mounted at
//! `/sys/fs/cgroup/memory`, `rsslab` under it with memory.limit_in_bytes and
//! memory.memsw.limit_in_bytes. Metric names are the same for both (the README's "Metrics").

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use rsslab_wire::{Bytes, CgroupSpec, Metrics};

use crate::setup::{Failure, report, write_knob};
use crate::{account, parse};

/// Where cgroup2 is mounted.
pub const V2_ROOT: &str = "/sys/fs/cgroup";
/// Where the v1 memory controller is mounted for v1 runs.
pub const V1_MEMORY_ROOT: &str = "/sys/fs/cgroup/memory";
/// The run's cgroup, under either root.
pub const NAME: &str = "rsslab";

/// v1's "no limit" (PAGE_COUNTER_MAX pages): anything this large is not reported as a limit.
const V1_UNLIMITED: u64 = 1 << 62;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// The run's cgroup.
#[derive(Debug, Clone)]
pub struct Cgroup {
    pub version: Version,
    pub dir: PathBuf,
}

/// cAdvisor's `container_memory_working_set_bytes`: usage minus inactive file pages, floored at 0.
pub fn working_set(usage: u64, inactive_file: u64) -> u64 {
    usage.saturating_sub(inactive_file)
}

/// Creates the run's cgroup and sets its limits. For v1, `v1_mount` is the result of
/// [`mount_v1`] if it was done already (else it is done here).
pub fn create(spec: &CgroupSpec, v1_mount: Option<&Result<(), String>>) -> Result<Cgroup, Failure> {
    match spec.version {
        2 => create_v2(spec),
        1 => create_v1(spec, v1_mount),
        other => Err(Failure::infra(format!(
            "cgroup version {other} is neither 1 nor 2"
        ))),
    }
}

fn create_v2(spec: &CgroupSpec) -> Result<Cgroup, Failure> {
    let root = prepare_v2()?;
    let dir = make_dir(root)?;
    let limits = [
        ("memory.max", spec.memory_max),
        ("memory.high", spec.memory_high),
        ("memory.swap.max", spec.swap_max),
    ];
    for (file, limit) in limits {
        if let Some(Bytes(bytes)) = limit {
            write_knob(
                &format!("cgroup {file}"),
                path_str(&dir.join(file)),
                &bytes.to_string(),
            )?;
        }
    }
    Ok(Cgroup {
        version: Version::V2,
        dir,
    })
}

/// Checks that cgroup v2 has the memory controller and enables it for the root's children;
/// returns the root.
pub fn prepare_v2() -> Result<&'static Path, Failure> {
    let root = Path::new(V2_ROOT);
    let controllers =
        std::fs::read_to_string(root.join("cgroup.controllers")).map_err(|error| {
            let reason = format!("cgroup v2 is not mounted at {V2_ROOT}: {error}");
            report("cgroup v2", false, &reason);
            Failure::infra(reason)
        })?;
    if !controllers.split_whitespace().any(|name| name == "memory") {
        let reason = format!(
            "the cgroup v2 memory controller is not available (cgroup.controllers: {})",
            controllers.trim()
        );
        report("cgroup v2", false, &reason);
        return Err(Failure::unsupported(reason));
    }
    enable_memory(root)?;
    Ok(root)
}

/// Lets `dir`'s children have the memory controller (v2 `cgroup.subtree_control`).
pub fn enable_memory(dir: &Path) -> Result<(), Failure> {
    let subtree = dir.join("cgroup.subtree_control");
    write_knob("cgroup subtree_control", path_str(&subtree), "+memory")
}

/// Mounts the v1 memory controller at [`V1_MEMORY_ROOT`] (v1 runs, before the hello, which
/// reports whether it worked). The error says why, for an `unsupported` verdict.
pub fn mount_v1() -> Result<(), String> {
    let _ = std::fs::create_dir_all(V1_MEMORY_ROOT);
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    match mount(
        Some("cgroup"),
        V1_MEMORY_ROOT,
        Some("cgroup"),
        flags,
        Some("memory"),
    ) {
        Ok(()) | Err(Errno::EBUSY) => Ok(()),
        Err(errno) => Err(format!(
            "the cgroup v1 memory controller is not available on this kernel (mount -t cgroup -o memory: {})",
            errno.desc()
        )),
    }
}

/// Checks that the v1 memory controller is mounted (mounting it unless `mounted` says it was
/// tried already) and has memory limits; returns the root.
pub fn prepare_v1(mounted: Option<&Result<(), String>>) -> Result<&'static Path, Failure> {
    let mounted = mounted.cloned().unwrap_or_else(mount_v1);
    match mounted {
        Ok(()) => report(
            "cgroup v1 memory",
            true,
            format!("mounted at {V1_MEMORY_ROOT}"),
        ),
        Err(reason) => {
            report("cgroup v1 memory", false, &reason);
            return Err(Failure::unsupported(reason));
        }
    }
    let root = Path::new(V1_MEMORY_ROOT);
    if !root.join("memory.limit_in_bytes").exists() {
        let reason = "the cgroup v1 memory controller has no memory.limit_in_bytes on this kernel"
            .to_owned();
        report("cgroup v1 memory", false, &reason);
        return Err(Failure::unsupported(reason));
    }
    Ok(root)
}

fn create_v1(spec: &CgroupSpec, mounted: Option<&Result<(), String>>) -> Result<Cgroup, Failure> {
    if spec.memory_high.is_some() {
        let reason = "memory_high: cgroup v1 has no memory.high".to_owned();
        report("cgroup v1", false, &reason);
        return Err(Failure::unsupported(reason));
    }
    let root = prepare_v1(mounted)?;
    let dir = make_dir(root)?;
    if let Some(Bytes(max)) = spec.memory_max {
        write_knob(
            "cgroup memory.limit_in_bytes",
            path_str(&dir.join("memory.limit_in_bytes")),
            &max.to_string(),
        )?;
    }
    if let Some(Bytes(swap)) = spec.swap_max {
        // v1 limits memory+swap together, so the swap limit only makes sense beside a memory limit.
        let Some(Bytes(max)) = spec.memory_max else {
            let reason =
                "swap_max under cgroup v1 needs memory_max (memsw = memory + swap)".to_owned();
            report("cgroup v1", false, &reason);
            return Err(Failure::unsupported(reason));
        };
        let memsw = max.saturating_add(swap).to_string();
        write_knob(
            "cgroup memory.memsw.limit_in_bytes",
            path_str(&dir.join("memory.memsw.limit_in_bytes")),
            &memsw,
        )?;
    }
    Ok(Cgroup {
        version: Version::V1,
        dir,
    })
}

fn make_dir(root: &Path) -> Result<PathBuf, Failure> {
    let dir = root.join(NAME);
    make(&dir)?;
    Ok(dir)
}

/// Makes `dir` (its parent exists), reporting it; an existing one is fine.
pub fn make(dir: &Path) -> Result<(), Failure> {
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(error) => {
            let reason = format!("creating {}: {error}", dir.display());
            report("cgroup create", false, &reason);
            return Err(Failure::infra(reason));
        }
    }
    report("cgroup create", true, dir.display().to_string());
    Ok(())
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("cgroup paths are UTF-8")
}

/// For the hello of a run that does not use v1: whether the kernel has the cgroup v1 memory
/// controller (/proc/cgroups lists it either way before 6.15). Mounts it on a scratch directory
/// and unmounts it, then waits until the controller is back on the v2 hierarchy (the kernel
/// rebinds it asynchronously). Must run before `+memory` is enabled on v2; None if unknown.
pub fn probe_v1_memory() -> Option<bool> {
    let dir = "/run/rsslab-v1-probe";
    std::fs::create_dir_all(dir).ok()?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let result = match mount(Some("cgroup"), dir, Some("cgroup"), flags, Some("memory")) {
        Ok(()) => {
            let _ = nix::mount::umount(dir);
            let controllers = Path::new(V2_ROOT).join("cgroup.controllers");
            let back = || {
                std::fs::read_to_string(&controllers)
                    .is_ok_and(|text| text.split_whitespace().any(|c| c == "memory"))
            };
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
            while !back() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            if !back() {
                crate::diag!(
                    "the memory controller did not come back to cgroup v2 after the v1 probe"
                );
            }
            Some(true)
        }
        Err(Errno::EBUSY) => None,
        Err(_) => Some(false),
    };
    let _ = std::fs::remove_dir(dir);
    result
}

/// For the hello: whether a v2 cgroup with the memory controller has memory.peak (5.19+).
/// Enables `+memory` at the root (as the run's set-up would) and looks into a probe cgroup.
pub fn v2_has_memory_peak() -> Option<bool> {
    let root = Path::new(V2_ROOT);
    std::fs::write(root.join("cgroup.subtree_control"), "+memory").ok()?;
    probe_child_file(root, "memory.peak")
}

/// Whether a new v2 child of `root` (whose children have the memory controller) has `file`:
/// a probe cgroup is made and removed; None when it cannot be made or has no memory files.
pub fn probe_child_file(root: &Path, file: &str) -> Option<bool> {
    let probe = root.join("rsslab-probe");
    std::fs::create_dir(&probe).ok()?;
    let has_current = probe.join("memory.current").exists();
    let has_file = probe.join(file).exists();
    let _ = std::fs::remove_dir(&probe);
    has_current.then_some(has_file)
}

impl Cgroup {
    /// The file a process writes "0" to in order to join.
    pub fn procs_file(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    fn read(&self, file: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.join(file)).ok()
    }

    /// The cgroup's metrics now.
    pub fn sample(&self) -> Metrics {
        match self.version {
            Version::V2 => v2_metrics(&V2Files {
                current: self.read("memory.current"),
                stat: self.read("memory.stat"),
                max: self.read("memory.max"),
                events: self.read("memory.events"),
                peak: self.read("memory.peak"),
                pressure: self.read("memory.pressure"),
            }),
            Version::V1 => v1_metrics(&V1Files {
                usage: self.read("memory.usage_in_bytes"),
                stat: self.read("memory.stat"),
                limit: self.read("memory.limit_in_bytes"),
                oom_control: self.read("memory.oom_control"),
                failcnt: self.read("memory.failcnt"),
                max_usage: self.read("memory.max_usage_in_bytes"),
            }),
        }
    }

    /// How many processes the OOM killer has killed in this cgroup so far.
    pub fn oom_kills(&self) -> Option<u64> {
        let (file, key) = match self.version {
            Version::V2 => ("memory.events", "oom_kill"),
            Version::V1 => ("memory.oom_control", "oom_kill"),
        };
        parse::keyed_values(&self.read(file)?).get(key).copied()
    }
}

/// The v2 files a sample reads (None: missing or unreadable).
#[derive(Debug, Default)]
pub struct V2Files {
    pub current: Option<String>,
    pub stat: Option<String>,
    pub max: Option<String>,
    pub events: Option<String>,
    pub peak: Option<String>,
    pub pressure: Option<String>,
}

/// v2 figures: usage, working_set, anon/file/active_file/inactive_file/shmem, limit, the
/// `memory.events` counters (low, high, max, oom, oom_kill), peak (memory.peak, 5.19+), and the
/// kernel's account: `memory.pressure` and the reclaim counters of `memory.stat`.
pub fn v2_metrics(files: &V2Files) -> Metrics {
    let names = ["anon", "file", "active_file", "inactive_file", "shmem"].map(|name| (name, name));
    let mut metrics = usage_and_stat(files.current.as_deref(), files.stat.as_deref(), &names);
    if let Some(limit) = files.max.as_deref().and_then(parse::single_value) {
        metrics.insert("limit".into(), limit);
    }
    let events = files
        .events
        .as_deref()
        .map(parse::keyed_values)
        .unwrap_or_default();
    for key in ["low", "high", "max", "oom", "oom_kill", "oom_group_kill"] {
        if let Some(value) = events.get(key) {
            metrics.insert(key.to_owned(), *value);
        }
    }
    if let Some(peak) = files.peak.as_deref().and_then(parse::single_value) {
        metrics.insert("peak".into(), peak);
    }
    insert_available(&mut metrics);
    metrics.extend(
        files
            .pressure
            .as_deref()
            .map(account::pressure)
            .unwrap_or_default(),
    );
    metrics.extend(
        files
            .stat
            .as_deref()
            .map(account::reclaim)
            .unwrap_or_default(),
    );
    metrics
}

/// The v1 files a sample reads.
#[derive(Debug, Default)]
pub struct V1Files {
    pub usage: Option<String>,
    pub stat: Option<String>,
    pub limit: Option<String>,
    pub oom_control: Option<String>,
    pub failcnt: Option<String>,
    pub max_usage: Option<String>,
}

/// v1 figures under the v2 names: the hierarchical `total_*` stat lines (anon = total_rss,
/// file = total_cache), working_set = usage - total_inactive_file (cAdvisor), `max` =
/// memory.failcnt (times the limit was hit), peak = memory.max_usage_in_bytes, and
/// `pgmajfault` (`total_pgmajfault`: v1 keeps no reclaim counters per cgroup, nor pressure).
pub fn v1_metrics(files: &V1Files) -> Metrics {
    let names = [
        ("total_rss", "anon"),
        ("total_cache", "file"),
        ("total_active_file", "active_file"),
        ("total_inactive_file", "inactive_file"),
        ("total_shmem", "shmem"),
    ];
    let mut metrics = usage_and_stat(files.usage.as_deref(), files.stat.as_deref(), &names);
    if let Some(limit) = files.limit.as_deref().and_then(parse::single_value)
        && limit < V1_UNLIMITED
    {
        metrics.insert("limit".into(), limit);
    }
    if let Some(oom_kill) = files
        .oom_control
        .as_deref()
        .map(parse::keyed_values)
        .and_then(|v| v.get("oom_kill").copied())
    {
        metrics.insert("oom_kill".into(), oom_kill);
    }
    if let Some(failcnt) = files.failcnt.as_deref().and_then(parse::single_value) {
        metrics.insert("max".into(), failcnt);
    }
    if let Some(peak) = files.max_usage.as_deref().and_then(parse::single_value) {
        metrics.insert("peak".into(), peak);
    }
    insert_available(&mut metrics);
    metrics.extend(account::v1_cgroup(files.stat.as_deref()));
    metrics
}

/// The kubelet's `availableBytes` of a limited cgroup: limit - working set
/// (`pkg/kubelet/stats/helper.go`, `cadvisorInfoToCPUandMemoryStats`; Go's unsigned
/// subtraction would wrap below zero, here it stops at 0).
fn insert_available(metrics: &mut Metrics) {
    if let (Some(&limit), Some(&working_set)) = (metrics.get("limit"), metrics.get("working_set")) {
        metrics.insert("available".into(), limit.saturating_sub(working_set));
    }
}

/// What both versions report alike: the `memory.stat` lines of `names` (file key, metric
/// name), the usage, the working set (usage - inactive_file, as cAdvisor computes it) and
/// cAdvisor's `rss` (`container/libcontainer/handler.go`, `setMemoryStats`: v2 `anon`, v1
/// `total_rss`, i.e. `anon` under both).
fn usage_and_stat(usage: Option<&str>, stat: Option<&str>, names: &[(&str, &str)]) -> Metrics {
    let stat = stat.map(parse::keyed_values).unwrap_or_default();
    let mut metrics: Metrics = names
        .iter()
        .filter_map(|(key, name)| Some(((*name).to_owned(), *stat.get(*key)?)))
        .collect();
    if let Some(&anon) = metrics.get("anon") {
        metrics.insert("rss".into(), anon);
    }
    if let Some(usage) = usage.and_then(parse::single_value) {
        metrics.insert("usage".into(), usage);
        if let Some(&inactive_file) = metrics.get("inactive_file") {
            metrics.insert("working_set".into(), working_set(usage, inactive_file));
        }
    }
    metrics
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn working_set_is_usage_minus_inactive_file_floored_at_zero() {
        assert_eq!(working_set(500, 200), 300);
        assert_eq!(working_set(500, 0), 500);
        assert_eq!(
            working_set(100, 200),
            0,
            "inactive_file can briefly exceed usage"
        );
    }

    #[test]
    fn v2_sample_from_files() {
        let files = V2Files {
            current: Some("314572800\n".into()),
            stat: Some("anon 209715200\nfile 104857600\nkernel 1000\nshmem 4096\nactive_file 4194304\ninactive_file 100663296\n".into()),
            max: Some("805306368\n".into()),
            events: Some("low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n".into()),
            peak: Some("320000000\n".into()),
            pressure: Some("some avg10=1.50 avg60=0.20 avg300=0.05 total=800\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=300\n".into()),
        };
        let metrics = v2_metrics(&files);
        assert_eq!(metrics["usage"], 314_572_800);
        assert_eq!(metrics["working_set"], 314_572_800 - 100_663_296);
        assert_eq!(metrics["anon"], 209_715_200);
        assert_eq!(metrics["file"], 104_857_600);
        assert_eq!(metrics["active_file"], 4_194_304);
        assert_eq!(metrics["shmem"], 4096);
        assert_eq!(metrics["limit"], 805_306_368);
        assert_eq!(
            (metrics["oom_kill"], metrics["max"], metrics["high"]),
            (1, 2, 0)
        );
        assert_eq!(metrics["peak"], 320_000_000);
        assert_eq!((metrics["low"], metrics["oom"]), (0, 1));
        assert_eq!(
            (metrics["psi_some_total"], metrics["psi_full_total"]),
            (800, 300)
        );
        assert_eq!(metrics["psi_some_avg10"], 150);
        assert!(!metrics.contains_key("kernel"));
    }

    #[test]
    fn v2_without_limit_or_peak() {
        let files = V2Files {
            current: Some("4096\n".into()),
            stat: Some("anon 4096\ninactive_file 0\n".into()),
            max: Some("max\n".into()),
            ..V2Files::default()
        };
        let metrics = v2_metrics(&files);
        assert!(!metrics.contains_key("limit"), "\"max\" means no limit");
        assert!(!metrics.contains_key("peak"), "memory.peak is 5.19+");
        assert_eq!(metrics["working_set"], 4096);
    }

    #[test]
    fn v1_sample_from_files() {
        let files = V1Files {
            usage: Some("314572800\n".into()),
            stat: Some("cache 1\nrss 2\ntotal_cache 104857600\ntotal_rss 209715200\ntotal_shmem 0\ntotal_active_file 4194304\ntotal_inactive_file 100663296\n".into()),
            limit: Some("9223372036854771712\n".into()),
            oom_control: Some("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n".into()),
            failcnt: Some("12\n".into()),
            max_usage: Some("330000000\n".into()),
        };
        let metrics = v1_metrics(&files);
        assert_eq!(metrics["usage"], 314_572_800);
        assert_eq!(metrics["working_set"], 314_572_800 - 100_663_296);
        assert_eq!(metrics["anon"], 209_715_200);
        assert_eq!(metrics["file"], 104_857_600);
        assert!(
            !metrics.contains_key("limit"),
            "PAGE_COUNTER_MAX means unlimited"
        );
        assert_eq!((metrics["oom_kill"], metrics["max"]), (3, 12));
        assert_eq!(metrics["peak"], 330_000_000);
        let limited = v1_metrics(&V1Files {
            limit: Some("805306368\n".into()),
            ..V1Files::default()
        });
        assert_eq!(limited["limit"], 805_306_368);
    }
}
