//! rsslab's guest side: the agent that runs as PID 1 in each VM, and the native workloads.
//!
//! The agent (`src/main.rs`) reads the run spec, sets the guest up (mounts, modules, disk,
//! sysctls, sysfs, cgroup), starts the scenario's processes at their triggers, samples memory
//! figures at a fixed interval, watches for OOM kills, and reports everything as JSON Lines on
//! its serial channel, ending with exactly one verdict before it powers the VM off.
//!
//! The workloads (`src/bin/workload.rs`, multi-call: `/bin/heap-churn`, `/bin/balloon`) are
//! small native programs that allocate memory in known ways and report phases on stdout.
//!
//! Modules, one job each:
//! - [`channel`]: the JSON Lines channel to the host (raw tty, one message a line, one verdict);
//! - [`mounts`]: the table of file systems PID 1 mounts;
//! - [`hello`]: what the guest kernel offers, for the hello message;
//! - [`setup`]: modules, scratch disk, sysctls and sysfs writes, and the [`setup::Failure`] type;
//! - [`cgroup`]: the run's cgroup (v2 or v1): creation, limits, and reading its figures;
//! - [`pods`]: the pods' cgroup tree as the kubelet builds it ([`rsslab_kubelet`]'s rules);
//! - [`containers`]: the order a pod's containers start in, and what ends with a container;
//! - [`parse`]: pure parsers of /proc and cgroup files;
//! - [`account`]: the kernel's account: pressure (PSI) and reclaim, refault and fault counters;
//! - [`sampler`]: one sample of processes, cgroup and guest, and the sampling schedule;
//! - [`kmsg`]: OOM-kill lines from the kernel log;
//! - [`procs`]: the process table: triggers, spawning, output lines, outcomes;
//! - [`restarts`]: containers that end and start again (the runtime's reason, the kubelet's
//!   back-off, a new cgroup per restart);
//! - [`run`]: the event loop from run start to the verdict;
//! - [`seccomp`]: emulating a kernel without MADV_FREE (madvise answers EINVAL);
//! - [`workloads`]: the native workloads;
//! - [`fault`]: faults injected on purpose when the kernel command line asks (a testing aid).

pub mod account;
pub mod cgroup;
pub mod channel;
pub mod containers;
pub mod fault;
pub mod hello;
pub mod kmsg;
pub mod mounts;
pub mod parse;
pub mod pods;
pub mod procs;
pub mod restarts;
pub mod run;
pub mod sampler;
pub mod seccomp;
pub mod setup;
pub mod workloads;

/// Prints a diagnostic line on the agent's stderr (the console, ttyS0).
#[macro_export]
macro_rules! diag {
    ($($arg:tt)*) => {
        eprintln!("rsslab-agent: {}", format_args!($($arg)*))
    };
}
