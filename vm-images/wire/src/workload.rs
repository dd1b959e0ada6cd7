//! The native workloads and their typed arguments.
//!
//! A scenario's `[[process]]` says `workload = "heap-churn"` and `args = { ... }`; the same
//! [`Workload`] type reads those from the scenario (so bad arguments are caught by `rsslab check`
//! with a line and column) and from the run spec inside the guest, where the workload program
//! receives its arguments as one JSON argument.
//!
//! Workloads report to the agent on stdout, one JSON object a line ([`WorkloadReport`]): a phase
//! marker (`{"phase":"released"}`) and/or metrics in bytes (`{"metrics":{"heap_released":1}}`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::amount::Amount;
use crate::message::Metrics;
use crate::units::{Bytes, Millis};

/// A workload with its arguments. In TOML: `workload = "NAME"` beside `args = { ... }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "workload", content = "args", rename_all = "kebab-case")]
pub enum Workload {
    /// Allocate and touch a heap, keep a live set, release the rest with madvise.
    HeapChurn(HeapChurnArgs),
    /// Allocate and touch a step each interval until guest MemAvailable falls below a floor.
    Balloon(BalloonArgs),
    /// Write files, then re-read a working set of them (read() or mmap) in rounds: page cache.
    FileIo(FileIoArgs),
    /// Take and touch a size (absolute or a share of the guest's memory) and hold it.
    Hog(HogArgs),
    /// Map a large region at start-up (private, MAP_NORESERVE, or reserve-then-commit), touch
    /// part of it, hold; ENOMEM at start-up is reported as `enomem-at-start` (exit 12).
    VszStartup(VszStartupArgs),
    /// A real Go program (vm-images/go/heap-churn) built with the process's Go toolchain:
    /// allocate a heap of []byte, keep a live set, drop the rest, GC, optionally FreeOSMemory.
    GoHeapChurn(GoHeapChurnArgs),
    /// Any program: the user's binary or script, or one from the host's own packages, with
    /// files from the host copied into the guest.
    Exec(ExecArgs),
    /// The user's Go module, built from source with the process's Go toolchain and flags.
    GoSource(GoSourceArgs),
}

/// Every workload name, for messages.
pub const WORKLOAD_NAMES: &[&str] = &[
    "heap-churn",
    "balloon",
    "file-io",
    "hog",
    "vsz-startup",
    "go-heap-churn",
    "exec",
    "go-source",
];

impl Workload {
    /// The workload's name as written in scenarios (`heap-churn`).
    pub fn name(&self) -> &'static str {
        match self {
            Workload::HeapChurn(_) => "heap-churn",
            Workload::Balloon(_) => "balloon",
            Workload::FileIo(_) => "file-io",
            Workload::Hog(_) => "hog",
            Workload::VszStartup(_) => "vsz-startup",
            Workload::GoHeapChurn(_) => "go-heap-churn",
            Workload::Exec(_) => "exec",
            Workload::GoSource(_) => "go-source",
        }
    }

    /// The program the agent executes: `/bin/<name>` (a link to the multi-call workload binary,
    /// so the kernel's task name, shown in OOM-kill lines, is the workload's name).
    /// Go workloads are built once per toolchain: their program is
    /// [`ProcessSpec::program`](crate::ProcessSpec::program), `/bin/<name>-<go id>`.
    pub fn program(&self) -> String {
        format!("{}/{}", crate::BIN_DIR, self.name())
    }

    /// A Go program (`go-*`), built with the process's Go toolchain, rather than a native one.
    pub fn is_go(&self) -> bool {
        is_go_workload_name(self.name())
    }

    /// The phases the workload reports, in the order it reports them; triggers and
    /// expectation windows may only name these.
    ///
    /// - `heap-churn`: `allocated` (heap touched), `released` (the part above `live` handed
    ///   back; once per cycle), `done` (last cycle's hold over; it stays alive unless `exit`);
    /// - `balloon`: `full` (MemAvailable fell below the floor, or `max` reached);
    /// - `file-io`: `written` (files written, and `anon` touched), `round` (after each re-read
    ///   of the working set), `done` (after the last round; it stays alive unless `exit`);
    /// - `hog`: `holding` (all of `size` touched);
    /// - `vsz-startup`: `mapped` (the region mapped, and committed), `touched` (`touch` bytes
    ///   written); a refused mmap or mprotect is reported as `enomem-at-start` instead, with
    ///   exit code 12 (ENOMEM), which the agent records as the outcome `enomem-at-start`
    ///   (`hog` does the same when its mapping is refused).
    ///
    /// - `go-heap-churn`: like `heap-churn`; `released` comes after `runtime.GC()` (and
    ///   `debug.FreeOSMemory()` with `free_os_memory`).
    ///
    /// - `exec` and `go-source`: the phases named in `reports.phases` (which the program
    ///   reports itself) and in `phases` (output lines that match a pattern), in that order.
    ///
    /// Every process also has the agent's own events `<name>:started` and `<name>:ended`.
    pub fn phases(&self) -> Vec<&str> {
        let builtin: &[&str] = match self {
            Workload::HeapChurn(_) => &["allocated", "released", "done"],
            Workload::Balloon(_) => &["full"],
            Workload::FileIo(_) => &["written", "round", "done"],
            Workload::Hog(_) => &["holding"],
            Workload::VszStartup(_) => &["mapped", "touched"],
            Workload::GoHeapChurn(_) => &["allocated", "released", "done"],
            Workload::Exec(_) | Workload::GoSource(_) => &[],
        };
        let mut phases = builtin.to_vec();
        if let Some(program) = self.program_io() {
            for phase in program.reports.phases.iter().chain(program.phases.keys()) {
                if !phases.contains(&phase.as_str()) {
                    phases.push(phase);
                }
            }
        }
        phases
    }

    /// The metrics the workload reports itself (beside what the agent samples for every
    /// process: [`PROCESS_METRICS`]); expectations may name these too.
    ///
    /// - `heap-churn`: `heap_touched` (at `allocated`), `heap_released` (at `released`),
    ///   `madv_free_fallback` (1 when MADV_FREE was refused and MADV_DONTNEED used);
    /// - `balloon`: `balloon` (bytes held);
    /// - `file-io`: `file_bytes_written`, `file_bytes_read`, `anon_bytes` (the anonymous heap
    ///   it has touched: `anon` and `anon_per_round` for each round so far);
    /// - `hog`: `hog` (bytes held);
    /// - `vsz-startup`: `vsz_mapped`, `committed`, `touched`;
    /// - `go-heap-churn`: the Go runtime's `heap_alloc`, `heap_inuse`, `heap_idle`,
    ///   `heap_released`, `heap_sys` and `go_sys` (runtime.MemStats);
    /// - `exec` and `go-source`: the names in `reports.metrics`.
    pub fn metrics(&self) -> Vec<&str> {
        if let Some(program) = self.program_io() {
            return program.reports.metrics.iter().map(String::as_str).collect();
        }
        let builtin: &[&str] = match self {
            Workload::HeapChurn(_) => &["heap_touched", "heap_released", "madv_free_fallback"],
            Workload::Balloon(_) => &["balloon"],
            Workload::FileIo(_) => &["file_bytes_written", "file_bytes_read", "anon_bytes"],
            Workload::Hog(_) => &["hog"],
            Workload::VszStartup(_) => &["vsz_mapped", "committed", "touched"],
            Workload::GoHeapChurn(_) => &[
                "heap_alloc",
                "heap_inuse",
                "heap_idle",
                "heap_released",
                "heap_sys",
                "go_sys",
            ],
            Workload::Exec(_) | Workload::GoSource(_) => &[],
        };
        builtin.to_vec()
    }

    /// The arguments the program is started with (after its own name): for a built-in
    /// workload its arguments as one JSON argument, for `exec` the rest of `command`, for
    /// `go-source` its `args`.
    pub fn argv(&self) -> Vec<String> {
        match self {
            Workload::Exec(args) => args.command.iter().skip(1).cloned().collect(),
            Workload::GoSource(args) => args.args.clone(),
            _ => {
                let value = serde_json::to_value(self).expect("workload arguments serialize");
                vec![value["args"].to_string()]
            }
        }
    }

    /// What `exec` and `go-source` share: files, output patterns, declared reports.
    pub fn program_io(&self) -> Option<ProgramIo<'_>> {
        match self {
            Workload::Exec(args) => Some(ProgramIo {
                files: &args.files,
                phases: &args.phases,
                reports: &args.reports,
            }),
            Workload::GoSource(args) => Some(ProgramIo {
                files: &args.files,
                phases: &args.phases,
                reports: &args.reports,
            }),
            _ => None,
        }
    }
}

/// The parts of a user program's arguments that are not about what runs: see [`ExecArgs`].
#[derive(Debug, Clone, Copy)]
pub struct ProgramIo<'a> {
    pub files: &'a BTreeMap<String, String>,
    pub phases: &'a BTreeMap<String, String>,
    pub reports: &'a DeclaredReports,
}

/// Arguments of `exec`: any program.
///
/// ```toml
/// workload = "exec"
/// args = { command = ["/opt/svc/server", "--port", "8080"],
///          files = { "/opt/svc/server" = "build/server", "/etc/svc" = "conf/" },
///          phases = { ready = "listening on" } }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecArgs {
    /// The program's guest path (absolute) and its arguments. A program that no `files`
    /// entry provides is copied from the same path on the host. Required.
    pub command: Vec<String>,
    /// Host files and directories copied into the guest: guest path (absolute) -> host path
    /// (relative to the scenario file; a directory is copied whole). The run spec holds the
    /// host paths made absolute. Default: none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
    /// Phases from output: phase name -> a regular expression; each stdout or stderr line
    /// that matches is the phase `<process>:<name>`. Default: none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub phases: BTreeMap<String, String>,
    /// What the program reports itself with the line protocol ([`WorkloadReport`]).
    #[serde(default, skip_serializing_if = "DeclaredReports::is_empty")]
    pub reports: DeclaredReports,
}

/// Arguments of `go-source`: a Go module built offline with the process's toolchain (`go`).
///
/// ```toml
/// workload = "go-source"
/// go = "1.22"
/// args = { source = "../service", build_flags = ["-race"], args = ["-mode", "churn"] }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoSourceArgs {
    /// The module directory (holds go.mod), relative to the scenario file; the run spec holds
    /// it absolute. Required.
    pub source: String,
    /// The package to build, relative to the module. Default: `.`.
    #[serde(default = "default_package")]
    pub package: String,
    /// Flags for `go build`, as production passes them: `["-race"]`, `["-tags", "netgo"]`,
    /// `["-ldflags=-s -w"]`, `["-gcflags=all=-N -l"]`. `-o` is rsslab's. Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub build_flags: Vec<String>,
    /// `CGO_ENABLED`. Default: on when the flags need cgo (`-race`, `-msan`, `-asan`), else
    /// off (a static binary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgo: Option<bool>,
    /// The program's arguments. Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// As for `exec`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
    /// As for `exec`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub phases: BTreeMap<String, String>,
    /// As for `exec`.
    #[serde(default, skip_serializing_if = "DeclaredReports::is_empty")]
    pub reports: DeclaredReports,
}

impl GoSourceArgs {
    /// Flags of `go build` that need cgo.
    pub const CGO_FLAGS: &'static [&'static str] = &["-race", "-msan", "-asan"];

    /// Whether the build runs with `CGO_ENABLED=1`.
    pub fn cgo_enabled(&self) -> bool {
        self.cgo.unwrap_or_else(|| {
            self.build_flags
                .iter()
                .any(|flag| Self::CGO_FLAGS.contains(&flag.as_str()))
        })
    }

    /// The name of the built program: the module directory's name (as `go build` names it).
    pub fn program_name(&self) -> &str {
        let trimmed = self.source.trim_end_matches('/');
        trimmed.rsplit('/').next().unwrap_or(trimmed)
    }
}

fn default_package() -> String {
    ".".to_owned()
}

/// The phases and metrics a user program reports on stdout ([`WorkloadReport`] lines), named
/// so that `rsslab check` knows them: `reports = { phases = ["ready"], metrics = ["queue"] }`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredReports {
    #[serde(default)]
    pub phases: Vec<String>,
    #[serde(default)]
    pub metrics: Vec<String>,
}

impl DeclaredReports {
    pub fn is_empty(&self) -> bool {
        self.phases.is_empty() && self.metrics.is_empty()
    }
}

/// What the agent samples for every process, from `/proc/<pid>/status` and `smaps_rollup`
/// (the README's "Metrics"; `anon_huge` is smaps_rollup's AnonHugePages).
pub const PROCESS_METRICS: &[&str] = &[
    "vsz",
    "rss",
    "rss_anon",
    "rss_file",
    "rss_shmem",
    "lazyfree",
    "anon_huge",
    "swap",
];

/// What the agent samples for every process that is not a size: `oom_score`, the kernel's
/// OOM badness of the process (/proc/<pid>/oom_score: its memory as a share of the machine's,
/// shifted by `oom_score_adj`; the OOM killer takes the highest).
pub const PROCESS_SCORES: &[&str] = &["oom_score"];

/// Whether a workload name is a Go program's (`go-heap-churn`).
pub fn is_go_workload_name(name: &str) -> bool {
    name.starts_with("go-")
}

/// The guest path of a Go workload built with toolchain `go`: `/bin/go-heap-churn-1.15`.
pub fn go_program(name: &str, go: &str) -> String {
    format!("{}/{name}-{go}", crate::BIN_DIR)
}

/// Arguments of `go-heap-churn` (vm-images/go/heap-churn/main.go reads them as JSON).
/// GODEBUG, GOGC and GOMEMLIMIT come from the process's `env`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoHeapChurnArgs {
    /// Bytes to allocate as `chunk`-sized []byte, every page touched. Required.
    pub heap: Bytes,
    /// Bytes that stay referenced after release (the live set). Default: 0.
    #[serde(default)]
    pub live: Bytes,
    /// Size of each []byte. Default: 1MiB.
    #[serde(default = "default_chunk")]
    pub chunk: Bytes,
    /// Allocate-release cycles. Default: 1.
    #[serde(default = "default_cycles")]
    pub cycles: u32,
    /// Pause after allocating, before releasing. Default: 1s.
    #[serde(default = "default_hold_allocated")]
    pub hold_allocated: Millis,
    /// Pause after releasing. Default: 2s.
    #[serde(default = "default_hold")]
    pub hold: Millis,
    /// Call `debug.FreeOSMemory()` after the GC, so the runtime returns the freed spans at
    /// once instead of leaving them to the background scavenger. Default: false.
    #[serde(default)]
    pub free_os_memory: bool,
    /// Exit after the last cycle's hold instead of staying alive. Default: false.
    #[serde(default)]
    pub exit: bool,
}

/// How `heap-churn` hands freed memory back to the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Release {
    /// `madvise(MADV_FREE)`: pages stay in RSS (counted as LazyFree) until the kernel needs them.
    Free,
    /// `madvise(MADV_DONTNEED)`: pages leave RSS at once.
    Dontneed,
    /// Keep everything: a leak, for comparison.
    None,
}

/// Arguments of `heap-churn`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeapChurnArgs {
    /// Bytes to allocate (one anonymous private mapping) and touch. Required.
    pub heap: Bytes,
    /// Bytes that stay in use after release (the live set). Default: 0.
    #[serde(default)]
    pub live: Bytes,
    /// How the rest is released. Default: `free` (MADV_FREE).
    #[serde(default = "default_release")]
    pub release: Release,
    /// Granularity of touching and releasing, like a Go span. Default: 1MiB.
    #[serde(default = "default_chunk")]
    pub chunk: Bytes,
    /// Allocate-touch-release cycles. Default: 1.
    #[serde(default = "default_cycles")]
    pub cycles: u32,
    /// Pause after touching, before releasing. Default: 1s.
    #[serde(default = "default_hold_allocated")]
    pub hold_allocated: Millis,
    /// Pause after releasing (before the next cycle; after the last one the process keeps
    /// holding its memory until the run ends unless `exit` is set). Default: 2s.
    #[serde(default = "default_hold")]
    pub hold: Millis,
    /// Exit after the last cycle's hold instead of staying alive. Default: false.
    #[serde(default)]
    pub exit: bool,
}

fn default_release() -> Release {
    Release::Free
}
fn default_chunk() -> Bytes {
    Bytes::mib(1)
}
fn default_cycles() -> u32 {
    1
}
fn default_hold_allocated() -> Millis {
    Millis::secs(1)
}
fn default_hold() -> Millis {
    Millis::secs(2)
}

/// Arguments of `balloon`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalloonArgs {
    /// Bytes allocated and touched per step. Default: 100MiB (the story's balloon).
    #[serde(default = "default_step")]
    pub step: Bytes,
    /// Time between steps. Default: 1s.
    #[serde(default = "default_every")]
    pub every: Millis,
    /// Stop growing once guest MemAvailable is below this. Default: 64MiB.
    #[serde(default = "default_until_available")]
    pub until_available: Bytes,
    /// Never hold more than this. Default: no cap.
    #[serde(default)]
    pub max: Option<Bytes>,
}

fn default_step() -> Bytes {
    Bytes::mib(100)
}
fn default_every() -> Millis {
    Millis::secs(1)
}
fn default_until_available() -> Bytes {
    Bytes::mib(64)
}

/// How `file-io` re-reads its working set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadMode {
    /// read(2) each file into a buffer.
    Read,
    /// mmap(2) each file (shared, read-only, kept mapped for the whole run) and read a byte of
    /// every page: the page cache also shows in the process's RSS (RssFile).
    Mmap,
}

/// Arguments of `file-io`: the image-batch service. It writes `files` files of `file_size`
/// incompressible bytes under `dir`, then re-reads the first `working_set` bytes of them
/// `repeat` times, `every` apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileIoArgs {
    /// How many files to write. Required.
    pub files: u32,
    /// The size of each file. Required.
    pub file_size: Bytes,
    /// Where (on the scratch disk: needs `[vm] disk`). Default: `/scratch/fileio`.
    #[serde(default = "default_fileio_dir")]
    pub dir: String,
    /// fsync each file after writing it. Default: false.
    #[serde(default)]
    pub fsync: bool,
    /// Bytes re-read each round, from the first file on. Default: all files.
    #[serde(default)]
    pub working_set: Option<Bytes>,
    /// `read` (read(2) into a buffer) or `mmap` (map and touch every page). Default: `read`.
    #[serde(default = "default_read_mode")]
    pub mode: ReadMode,
    /// Rounds of re-reading. Default: 1.
    #[serde(default = "default_cycles")]
    pub repeat: u32,
    /// Pause between rounds. Default: 1s.
    #[serde(default = "default_every")]
    pub every: Millis,
    /// Anonymous heap allocated and touched at start and kept. Default: 0.
    #[serde(default)]
    pub anon: Bytes,
    /// More anonymous heap allocated, touched and kept with each round (a batch service
    /// whose memory grows a little with every batch). Default: 0.
    #[serde(default)]
    pub anon_per_round: Bytes,
    /// Files already there at their full size are not written again, only read (a restarted
    /// container finds the files its previous life wrote). Default: false.
    #[serde(default)]
    pub reuse: bool,
    /// Exit after the last round instead of staying alive. Default: false.
    #[serde(default)]
    pub exit: bool,
}

/// The default `file-io` directory, on the scratch disk.
pub const DEFAULT_FILEIO_DIR: &str = "/scratch/fileio";

fn default_fileio_dir() -> String {
    DEFAULT_FILEIO_DIR.to_owned()
}
fn default_read_mode() -> ReadMode {
    ReadMode::Read
}

/// Arguments of `hog`: take and touch `size`, hold it until killed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HogArgs {
    /// `"600MiB"`, or a share of a guest memory figure: `"60% of mem_total"`,
    /// `"50% of mem_available"`, `"90% of commit_limit"` (resolved in the guest at start).
    /// Required.
    pub size: Amount,
}

/// How `vsz-startup` maps its region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mapping {
    /// Private read-write anonymous mapping: all of it counts against the commit limit.
    Private,
    /// The same with MAP_NORESERVE (ignored under `vm.overcommit_memory = 2`).
    Noreserve,
    /// A PROT_NONE reservation (not committed), then `commit` bytes mprotect-ed read-write.
    ReserveThenCommit,
}

/// Arguments of `vsz-startup`: a service whose start-up maps a large virtual region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VszStartupArgs {
    /// The region's size, like hog's: `"4GiB"` or `"200% of mem_total"`. Required.
    pub size: Amount,
    /// `private`, `noreserve` or `reserve-then-commit`. Default: `private`.
    #[serde(default = "default_mapping")]
    pub mapping: Mapping,
    /// With `reserve-then-commit`: bytes made writable (from the start of the region).
    /// Default: all of `size`.
    #[serde(default)]
    pub commit: Option<Amount>,
    /// Bytes written (one byte a page, from the start). Default: 0.
    #[serde(default)]
    pub touch: Amount,
}

fn default_mapping() -> Mapping {
    Mapping::Private
}

/// One line a workload writes on stdout.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadReport {
    /// A phase marker, e.g. `allocated`, `released`, `full`; forwarded as an event
    /// `<process>:<phase>` that triggers and expectation windows can refer to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Workload-reported metrics in bytes (e.g. `heap_released`), merged into the process's
    /// samples until updated.
    #[serde(default, skip_serializing_if = "Metrics::is_empty")]
    pub metrics: Metrics,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_workload_and_args_side_by_side_with_defaults() {
        let workload: Workload = toml::from_str(
            "workload = \"heap-churn\"\nargs = { heap = \"400MiB\", live = \"50MiB\", release = \"dontneed\" }",
        )
        .unwrap();
        let Workload::HeapChurn(args) = &workload else {
            panic!("{workload:?}")
        };
        assert_eq!(args.heap, Bytes::mib(400));
        assert_eq!(args.release, Release::Dontneed);
        assert_eq!(args.chunk, Bytes::mib(1));
        assert_eq!(workload.program(), "/bin/heap-churn");
        let argv = workload.argv();
        let back: HeapChurnArgs = serde_json::from_str(&argv[0]).unwrap();
        assert_eq!(&back, args);
    }

    #[test]
    fn rejects_unknown_arguments() {
        let error =
            toml::from_str::<Workload>("workload = \"balloon\"\nargs = { stepp = \"1MiB\" }")
                .unwrap_err()
                .to_string();
        assert!(error.contains("unknown field `stepp`"), "{error}");
    }
}
