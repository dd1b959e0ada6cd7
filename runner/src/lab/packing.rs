//! How many VMs run at once: as many as the host carries, never more memory than it has.
//!
//! **Memory is the hard limit.** A run needs its guest's memory plus QEMU's own
//! ([`QEMU_OVERHEAD`]; measured: a 1 GiB TCG guest whose memory is all touched peaks at about
//! 1.2 GiB of QEMU RSS). A run starts only while what the running ones need plus its own fits
//! in the budget: MemAvailable when the lab starts, less a reserve for the host
//! ([`memory_budget`]). Guest memory is counted whole, touched or not, so the host is never
//! oversubscribed. One run always starts, however large (with a warning): a lab never waits
//! for memory that no run frees.
//!
//! **CPU, when `--jobs` is not given.** A guest that waits for its workload costs little (a
//! sampling TCG guest uses a fifth to a half of a core), a booting one a whole core. So the
//! next run starts when the host has room for it, measured, not assumed:
//!
//! - the host's idle CPU over the last [`IDLE_WINDOW`] since the last start (`/proc/stat`) is
//!   at least the CPU share the next run is expected to use: what finished runs of its
//!   scenario used (QEMU's CPU time over its wall time), else what all finished runs used,
//!   else [`FIRST_SHARE`];
//! - fewer runs than cores are still booting (no first sample yet);
//! - fewer than [`MAX_RUNS_PER_CORE`] per core are running.
//!
//! Because the measure is the host's idle time and not the runs' own shares (which shrink when
//! they compete, and would then admit ever more), a busy host (other jobs, a lab that already
//! fills it) starts fewer: the packing cannot run away.
//!
//! With `--jobs N`: at most N at once, within the memory.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// `--jobs`: how many runs at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jobs {
    /// As many as the host's memory and idle CPU carry.
    Auto,
    /// At most this many (within the memory).
    AtMost(usize),
}

/// QEMU's own memory beside its guest's.
pub const QEMU_OVERHEAD: u64 = 256 << 20;
/// The CPU share (cores) a run is expected to use before any run has measured one.
pub const FIRST_SHARE: f64 = 0.5;
/// How far back the host's idle CPU is measured (never before the last start).
pub const IDLE_WINDOW: Duration = Duration::from_secs(2);
/// The shortest measurement of idle CPU that decides a start.
pub const MIN_IDLE_WINDOW: Duration = Duration::from_secs(1);
/// Upper bound on runs at once per core, whatever the idle time says.
pub const MAX_RUNS_PER_CORE: usize = 4;

/// What the host offers the lab.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HostCapacity {
    pub cores: usize,
    /// Bytes the lab's VMs may use at once in all.
    pub memory_budget: u64,
}

/// What one run needs to start.
#[derive(Debug, Clone, PartialEq)]
pub struct RunNeed {
    /// Guest memory plus [`QEMU_OVERHEAD`].
    pub memory: u64,
    pub scenario: String,
}

impl RunNeed {
    pub fn new(guest_memory: u64, scenario: &str) -> Self {
        RunNeed {
            memory: guest_memory + QEMU_OVERHEAD,
            scenario: scenario.to_owned(),
        }
    }
}

#[derive(Debug, Clone)]
struct Running {
    need: RunNeed,
    booting: bool,
}

/// The runs in flight and what finished runs taught; decides whether the next one starts.
#[derive(Debug, Clone)]
pub struct Packing {
    jobs: Jobs,
    capacity: HostCapacity,
    running: BTreeMap<usize, Running>,
    /// Scenario -> CPU shares (cores) of its finished runs.
    shares: BTreeMap<String, Vec<f64>>,
}

impl Packing {
    pub fn new(jobs: Jobs, capacity: HostCapacity) -> Self {
        Packing {
            jobs,
            capacity,
            running: BTreeMap::new(),
            shares: BTreeMap::new(),
        }
    }

    /// Whether a run needing `need` starts now, the host having had `idle_cores` idle
    /// (`None`: not measured long enough since the last start).
    pub fn admits(&self, need: &RunNeed, idle_cores: Option<f64>) -> bool {
        if self.running.is_empty() {
            return true;
        }
        if self.committed_memory() + need.memory > self.capacity.memory_budget {
            return false;
        }
        match self.jobs {
            Jobs::AtMost(jobs) => self.running.len() < jobs,
            Jobs::Auto => {
                let cores = self.capacity.cores.max(1);
                let booting = self.running.values().filter(|run| run.booting).count();
                self.running.len() < MAX_RUNS_PER_CORE * cores
                    && booting < cores
                    && idle_cores.is_some_and(|idle| idle >= self.expected_share(&need.scenario))
            }
        }
    }

    /// Whether `need` is more than the memory budget on its own (it starts alone).
    pub fn exceeds_budget(&self, need: &RunNeed) -> bool {
        need.memory > self.capacity.memory_budget
    }

    pub fn started(&mut self, index: usize, need: RunNeed) {
        self.running.insert(
            index,
            Running {
                need,
                booting: true,
            },
        );
    }

    /// Run `index` sent its first sample: its boot is over.
    pub fn sampling(&mut self, index: usize) {
        if let Some(run) = self.running.get_mut(&index) {
            run.booting = false;
        }
    }

    /// Run `index` ended, having used `share` cores on average (QEMU's CPU over its wall).
    pub fn finished(&mut self, index: usize, share: Option<f64>) {
        if let Some(run) = self.running.remove(&index)
            && let Some(share) = share.filter(|share| share.is_finite() && *share >= 0.0)
        {
            self.shares
                .entry(run.need.scenario)
                .or_default()
                .push(share);
        }
    }

    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Cores a run of `scenario` is expected to use: its scenario's measured mean, else all
    /// runs' mean, else [`FIRST_SHARE`].
    pub fn expected_share(&self, scenario: &str) -> f64 {
        let mean = |shares: &[f64]| shares.iter().sum::<f64>() / shares.len() as f64;
        match self.shares.get(scenario) {
            Some(mine) => mean(mine),
            None if !self.shares.is_empty() => {
                mean(&self.shares.values().flatten().copied().collect::<Vec<_>>())
            }
            None => FIRST_SHARE,
        }
    }

    fn committed_memory(&self) -> u64 {
        self.running.values().map(|run| run.need.memory).sum()
    }
}

/// What the lab's VMs may use: MemAvailable less a reserve for the host of a tenth of
/// MemTotal, at least 512 MiB.
pub fn memory_budget(meminfo: &str) -> Option<u64> {
    let available = meminfo_bytes(meminfo, "MemAvailable")?;
    let total = meminfo_bytes(meminfo, "MemTotal")?;
    let reserve = (total / 10).max(512 << 20);
    Some(available.saturating_sub(reserve))
}

/// The host's cores and memory budget, from `/proc`.
pub fn host_capacity() -> std::io::Result<HostCapacity> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")?;
    let memory_budget = memory_budget(&meminfo)
        .ok_or_else(|| std::io::Error::other("no MemAvailable and MemTotal in /proc/meminfo"))?;
    Ok(HostCapacity {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_budget,
    })
}

/// `key:   123 kB` of `/proc/meminfo`, in bytes.
fn meminfo_bytes(meminfo: &str, key: &str) -> Option<u64> {
    meminfo.lines().find_map(|line| {
        let value = line.strip_prefix(key)?.strip_prefix(':')?;
        let kib: u64 = value.trim().strip_suffix("kB")?.trim().parse().ok()?;
        Some(kib * 1024)
    })
}

/// Idle and total time of all CPUs, in clock ticks (the `cpu` line of `/proc/stat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTimes {
    /// idle + iowait.
    pub idle: u64,
    /// Every field but guest and guest_nice, which user and nice already count.
    pub total: u64,
}

/// The `cpu` line of `/proc/stat`.
pub fn cpu_times(stat: &str) -> Option<CpuTimes> {
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    Some(CpuTimes {
        idle,
        total: fields.iter().sum(),
    })
}

/// Readings of the host's CPU times, from which the idle cores of a recent window follow.
#[derive(Debug, Clone)]
pub struct CpuMeter {
    cores: usize,
    readings: VecDeque<(Instant, CpuTimes)>,
}

impl CpuMeter {
    pub fn new(cores: usize) -> Self {
        CpuMeter {
            cores,
            readings: VecDeque::new(),
        }
    }

    /// Reads `/proc/stat` now (a host without it: the meter never measures, and only
    /// `--jobs` or one run at a time apply).
    pub fn read(&mut self) {
        if let Some(times) = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|stat| cpu_times(&stat))
        {
            self.record(Instant::now(), times);
        }
    }

    /// Keeps a reading taken at `at`, dropping those older than the window needs.
    pub fn record(&mut self, at: Instant, times: CpuTimes) {
        self.readings.push_back((at, times));
        while self
            .readings
            .get(1)
            .is_some_and(|(second, _)| at.saturating_duration_since(*second) >= IDLE_WINDOW)
        {
            self.readings.pop_front();
        }
    }

    /// Idle cores on average from the earliest reading within [`IDLE_WINDOW`] and not before
    /// `since`, to the latest; `None` when that spans less than [`MIN_IDLE_WINDOW`].
    pub fn idle_cores(&self, since: Instant) -> Option<f64> {
        let (last_at, last) = *self.readings.back()?;
        let (first_at, first) = *self.readings.iter().find(|(at, _)| {
            *at >= since && last_at.saturating_duration_since(*at) <= IDLE_WINDOW
        })?;
        if last_at.saturating_duration_since(first_at) < MIN_IDLE_WINDOW {
            return None;
        }
        let total = last.total.checked_sub(first.total).filter(|&t| t > 0)?;
        let idle = last.idle.saturating_sub(first.idle);
        Some(idle as f64 / total as f64 * self.cores as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn host(cores: usize, budget: u64) -> HostCapacity {
        HostCapacity {
            cores,
            memory_budget: budget,
        }
    }

    fn need(scenario: &str) -> RunNeed {
        RunNeed::new(GIB, scenario)
    }

    #[test]
    fn memory_is_the_hard_limit_whatever_the_jobs_and_the_idle_cpu() {
        // 1 GiB guests need 1.25 GiB each: three fit in 4 GiB, a fourth does not.
        for jobs in [Jobs::Auto, Jobs::AtMost(8)] {
            let mut packing = Packing::new(jobs, host(8, 4 * GIB));
            for index in 0..3 {
                assert!(
                    packing.admits(&need("a"), Some(8.0)),
                    "{jobs:?} run {index}"
                );
                packing.started(index, need("a"));
                packing.sampling(index);
            }
            assert!(!packing.admits(&need("a"), Some(8.0)), "{jobs:?}");
            packing.finished(1, Some(0.3));
            assert!(packing.admits(&need("a"), Some(8.0)), "{jobs:?}: one ended");
        }
    }

    #[test]
    fn a_run_larger_than_the_budget_still_starts_alone() {
        let mut packing = Packing::new(Jobs::Auto, host(2, GIB));
        let big = RunNeed::new(4 * GIB, "big");
        assert!(packing.exceeds_budget(&big));
        assert!(packing.admits(&big, None), "nothing runs: it starts");
        packing.started(0, big);
        assert!(
            !packing.admits(&need("a"), Some(2.0)),
            "but nothing beside it"
        );
    }

    #[test]
    fn at_most_n_jobs_ignores_the_cpu() {
        let mut packing = Packing::new(Jobs::AtMost(2), host(2, 64 * GIB));
        packing.started(0, need("a"));
        assert!(packing.admits(&need("a"), None), "no measurement needed");
        packing.started(1, need("a"));
        assert!(!packing.admits(&need("a"), Some(2.0)));
    }

    #[test]
    fn auto_starts_a_run_when_the_host_has_its_share_idle() {
        let mut packing = Packing::new(Jobs::Auto, host(2, 64 * GIB));
        packing.started(0, need("a"));
        assert!(
            !packing.admits(&need("a"), None),
            "not measured since the start"
        );
        assert!(
            !packing.admits(&need("a"), Some(0.4)),
            "below the first share"
        );
        assert!(packing.admits(&need("a"), Some(FIRST_SHARE)));
        packing.started(1, need("a"));
        assert!(
            !packing.admits(&need("a"), Some(2.0)),
            "two boots on two cores: the third waits"
        );
        packing.sampling(0);
        assert!(packing.admits(&need("a"), Some(0.6)));

        // Runs of `a` measured 0.25 and 0.75 cores: 0.5 idle is room for one more; `b` has no
        // measure of its own and takes the mean of all.
        packing.finished(0, Some(0.25));
        packing.finished(1, Some(0.75));
        packing.started(2, need("a"));
        packing.sampling(2);
        assert_eq!(packing.expected_share("a"), 0.5);
        assert!(packing.admits(&need("a"), Some(0.5)));
        assert!(!packing.admits(&need("a"), Some(0.49)));
        packing.started(3, need("b"));
        packing.sampling(3);
        packing.finished(3, Some(0.2));
        assert_eq!(packing.expected_share("b"), 0.2, "its own now");
        let all = packing.expected_share("c");
        assert!((all - 0.4).abs() < 1e-9, "the mean of all three: {all}");
    }

    #[test]
    fn auto_never_runs_more_than_four_per_core() {
        let mut packing = Packing::new(Jobs::Auto, host(1, 64 * GIB));
        for index in 0..MAX_RUNS_PER_CORE {
            assert!(packing.admits(&need("a"), Some(1.0)), "run {index}");
            packing.started(index, need("a"));
            packing.sampling(index);
        }
        assert!(!packing.admits(&need("a"), Some(1.0)));
    }

    #[test]
    fn a_share_that_is_not_a_number_teaches_nothing() {
        let mut packing = Packing::new(Jobs::Auto, host(2, 64 * GIB));
        packing.started(0, need("a"));
        packing.finished(0, Some(f64::NAN));
        packing.started(1, need("a"));
        packing.finished(1, None);
        assert_eq!(packing.expected_share("a"), FIRST_SHARE);
        assert_eq!(packing.running(), 0);
    }

    #[test]
    fn the_budget_is_mem_available_less_a_tenth_of_the_total() {
        let meminfo = "MemTotal:       24683664 kB\nMemFree:        17660000 kB\n\
                       MemAvailable:   19431568 kB\n";
        assert_eq!(
            memory_budget(meminfo),
            Some(19_431_568 * 1024 - 24_683_664 * 1024 / 10)
        );
        // A small host keeps at least 512 MiB.
        let small = "MemTotal: 2097152 kB\nMemAvailable: 1048576 kB\n";
        assert_eq!(memory_budget(small), Some(512 << 20));
        assert_eq!(memory_budget("MemTotal: 1 kB\n"), None);
    }

    #[test]
    fn cpu_times_count_iowait_as_idle_and_not_guest_time_twice() {
        let stat = "cpu  100 5 50 800 20 3 2 10 40 0\ncpu0 50 2 25 400 10 1 1 5 20 0\n";
        assert_eq!(
            cpu_times(stat),
            Some(CpuTimes {
                idle: 820,
                total: 100 + 5 + 50 + 800 + 20 + 3 + 2 + 10
            })
        );
        assert_eq!(cpu_times("intr 1 2 3\n"), None);
    }

    #[test]
    fn idle_cores_are_measured_since_the_last_start_over_at_least_a_second() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut meter = CpuMeter::new(2);
        // 2 cores, 100 ticks per second each: a quarter idle, then fully idle.
        meter.record(at(0), CpuTimes { idle: 0, total: 0 });
        meter.record(
            at(1000),
            CpuTimes {
                idle: 50,
                total: 200,
            },
        );
        assert_eq!(meter.idle_cores(t0), Some(0.5));
        assert_eq!(meter.idle_cores(at(500)), None, "since a start 0.5 s ago");
        meter.record(
            at(2000),
            CpuTimes {
                idle: 250,
                total: 400,
            },
        );
        assert_eq!(meter.idle_cores(t0), Some(1.25), "two seconds");
        assert_eq!(
            meter.idle_cores(at(1000)),
            Some(2.0),
            "since a start at 1 s"
        );
        meter.record(
            at(3000),
            CpuTimes {
                idle: 450,
                total: 600,
            },
        );
        assert_eq!(
            meter.idle_cores(t0),
            Some(2.0),
            "only the last two seconds count"
        );
    }
}
