//! The native workloads and their typed arguments.
//!
//! A scenario's `[[process]]` says `workload = "heap-churn"` and `args = { ... }`; the same
//! [`Workload`] type reads those from the scenario (so bad arguments are caught by `rsslab check`
//! with a line and column) and from the run spec inside the guest, where the workload program
//! receives its arguments as one JSON argument.
//!
//! Workloads report to the agent on stdout, one JSON object a line ([`WorkloadReport`]): a phase
//! marker (`{"phase":"released"}`) and/or metrics in bytes (`{"metrics":{"heap_released":1}}`).

use serde::{Deserialize, Serialize};

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
}

/// Every workload name, for messages.
pub const WORKLOAD_NAMES: &[&str] = &["heap-churn", "balloon"];

impl Workload {
    /// The workload's name as written in scenarios (`heap-churn`).
    pub fn name(&self) -> &'static str {
        match self {
            Workload::HeapChurn(_) => "heap-churn",
            Workload::Balloon(_) => "balloon",
        }
    }

    /// The program the agent executes: `/bin/<name>` (a link to the multi-call workload binary,
    /// so the kernel's task name, shown in OOM-kill lines, is the workload's name).
    pub fn program(&self) -> String {
        format!("{}/{}", crate::BIN_DIR, self.name())
    }

    /// The phases the workload reports, in the order it reports them; triggers and
    /// expectation windows may only name these.
    ///
    /// - `heap-churn`: `allocated` (heap touched), `released` (the part above `live` handed
    ///   back; once per cycle), `done` (last cycle's hold over; it stays alive unless `exit`);
    /// - `balloon`: `full` (MemAvailable fell below the floor, or `max` reached).
    ///
    /// Every process also has the agent's own events `<name>:started` and `<name>:ended`.
    pub fn phases(&self) -> &'static [&'static str] {
        match self {
            Workload::HeapChurn(_) => &["allocated", "released", "done"],
            Workload::Balloon(_) => &["full"],
        }
    }

    /// The arguments as the one JSON argument the workload program reads.
    pub fn args_json(&self) -> String {
        let value = serde_json::to_value(self).expect("workload arguments serialize");
        value["args"].to_string()
    }
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
        let json = workload.args_json();
        let back: HeapChurnArgs = serde_json::from_str(&json).unwrap();
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
