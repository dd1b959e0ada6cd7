//! Types shared by the rsslab runner (host) and its guest agent (PID 1 in the VM).
//!
//! Everything that crosses the VM boundary is defined here once, so the wire format cannot
//! drift between the two sides:
//!
//! - [`spec::RunSpec`]: what the host asks the guest to run (written into the initramfs as
//!   `/rsslab/run.json`), including the typed workload arguments of [`workload`];
//! - [`message::GuestMessage`]: the JSON Lines the agent sends back on its channel: one
//!   hello, samples, events, the processes' output, and exactly one verdict;
//! - [`pod`]: pods on a node (the kubelet's settings, containers, requests and limits);
//! - [`units`]: byte sizes and durations that read human units ("512MiB", "250ms");
//! - [`fault`]: faults injected on purpose through the kernel command line (a testing aid).

pub mod amount;
pub mod fault;
pub mod message;
pub mod outcome;
pub mod pod;
pub mod spec;
pub mod units;
pub mod workload;

pub use amount::{Amount, Base};
pub use message::{
    Event, EventKind, GuestMessage, Hello, Metrics, Output, Ready, Sample, Stream, Verdict,
};
pub use outcome::{ProcessOutcome, RunOutcome, signal_name};
pub use spec::{CgroupSpec, DiskMount, ProcessSpec, RunSpec, Start, Supervisor, Until};
pub use units::{Bytes, Millis};
pub use workload::{
    BalloonArgs, DeclaredReports, ExecArgs, FileIoArgs, GoSourceArgs, HeapChurnArgs, HogArgs,
    Mapping, ReadMode, Release, VszStartupArgs, Workload, WorkloadReport,
};

/// Directory of kernel modules inside the guest's initramfs (flat, loaded in spec order).
pub const MODULES_DIR: &str = "/rsslab/modules";
/// Directory of workload programs inside the guest (one name per workload, see [`Workload::program`]).
pub const BIN_DIR: &str = "/bin";
/// Where the programs built from a scenario's Go sources go in the guest, one directory per
/// process (see [`ProcessSpec::program`]).
pub const USER_BUILDS_DIR: &str = "/opt/rsslab";
/// The serial device the agent speaks JSON Lines on (the console is ttyS0).
pub const CHANNEL_DEVICE: &str = "/dev/ttyS1";
/// Version of the channel protocol, sent in the hello and checked by the host.
pub const CHANNEL_VERSION: u32 = 5;
