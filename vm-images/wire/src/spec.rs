//! The run spec: everything the guest agent needs to run one VM of a plan.
//!
//! The host derives it from a scenario variant and sends it as one JSON line on the channel
//! when the agent asks for it ([`crate::GuestMessage::Ready`]); the image holds no spec, so
//! one image (and one snapshot of a booted guest) serves every run of the same programs. Sizes are bytes, durations carry
//! their unit.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::units::{Bytes, Millis};
use crate::workload::Workload;

/// One run of a scenario on one kernel in one variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// `<scenario>/<kernel>[/<variant>]`, for logs.
    pub run_id: String,
    /// Sampling interval.
    pub sample_every: Millis,
    /// How long the agent runs the scenario before it stops every process and ends: the hard
    /// deadline, whatever [`RunSpec::until`] says.
    pub duration: Millis,
    /// Ends the run earlier, once the story has been told. In scenarios: `[sample] until` and
    /// `after`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Until>,
    /// Sysctls by dotted name (`vm.overcommit_memory`), written to /proc/sys before anything
    /// starts. A failure is reported, never ignored.
    #[serde(default)]
    pub sysctl: BTreeMap<String, String>,
    /// Writes to files under /sys (`/sys/kernel/mm/transparent_hugepage/enabled`).
    #[serde(default)]
    pub sysfs: BTreeMap<String, String>,
    /// The cgroup processes run in unless they opt out.
    #[serde(default)]
    pub cgroup: Option<CgroupSpec>,
    /// Pods on the node, as the kubelet runs them (instead of `cgroup`): each process of a
    /// container runs in that container's cgroup of the kubelet's tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<crate::pod::NodeSpec>,
    /// Kernel modules to load, in order (dependencies first), as file names under
    /// [`crate::MODULES_DIR`].
    #[serde(default)]
    pub modules: Vec<String>,
    /// The scratch disk, if the scenario asked for one.
    #[serde(default)]
    pub disk: Option<DiskMount>,
    /// The processes, in scenario order.
    pub processes: Vec<ProcessSpec>,
}

impl RunSpec {
    /// The cgroup version the run mounts: its pods' node's, else its cgroup's.
    pub fn cgroup_version(&self) -> Option<u8> {
        match (&self.node, &self.cgroup) {
            (Some(node), _) => Some(node.cgroup_version),
            (None, Some(cgroup)) => Some(cgroup.version),
            (None, None) => None,
        }
    }
}

/// When a run ends before its duration: `after` once every event of `events` has happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Until {
    /// Event labels, as in expectations: `<process>:started`, `<process>:<phase>`,
    /// `<process>:ended`, `oom-kill`. Not empty.
    pub events: Vec<String>,
    /// How long sampling goes on after the last of them (the tail the charts show).
    #[serde(default)]
    pub after: Millis,
}

/// The run's cgroup and its limits. In scenarios this is the `[cgroup]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CgroupSpec {
    /// cgroup version, 1 or 2. Default: 2.
    #[serde(default = "default_cgroup_version")]
    pub version: u8,
    /// Hard limit: v2 `memory.max`, v1 `memory.limit_in_bytes`. Default: none.
    #[serde(default)]
    pub memory_max: Option<Bytes>,
    /// Throttling limit: v2 `memory.high` (v1 has none). Default: none.
    #[serde(default)]
    pub memory_high: Option<Bytes>,
    /// Swap limit: v2 `memory.swap.max`, v1 `memory.memsw.limit_in_bytes`. Default: none.
    #[serde(default)]
    pub swap_max: Option<Bytes>,
}

fn default_cgroup_version() -> u8 {
    2
}

/// Where the scratch disk appears and is mounted in the guest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskMount {
    /// Block device, `/dev/vda`.
    pub device: String,
    /// Mount point, `/scratch`.
    pub mount: String,
    /// File system the host made on it, `ext4`.
    pub fstype: String,
}

/// One process to start in the guest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessSpec {
    /// Unique name within the run, used in samples, events and outcomes.
    pub name: String,
    /// What runs, with its arguments.
    #[serde(flatten)]
    pub workload: Workload,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Whether the process runs in the run's cgroup (when there is one).
    #[serde(default = "default_true")]
    pub cgroup: bool,
    /// The container it runs in, `<pod>/<container>` ([`crate::pod::container_key`]): the
    /// container's first process is its main program, the others what it starts. `None`:
    /// outside every pod (a node daemon, a balloon).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// When it starts.
    #[serde(default)]
    pub start: Start,
    /// Emulates kernels before 4.5: madvise(MADV_FREE) fails with EINVAL (a seccomp filter
    /// installed before exec, inherited by children). In scenarios: `no_madv_free = true`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub emulate_no_madv_free: bool,
    /// A plain supervisor's restarts of a process outside every pod (supervisord, systemd's
    /// `Restart=`): at once, no back-off. In scenarios: `restart = "always"`.
    #[serde(default, skip_serializing_if = "Supervisor::is_never")]
    pub restart: Supervisor,
    /// The Go toolchain (catalogue id, `1.15`) a Go workload is built with; `None` for native
    /// workloads. In scenarios: `go = "1.15"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub go: Option<String>,
}

impl ProcessSpec {
    /// The program the agent executes: the workload's [`Workload::program`]; for a Go
    /// workload the build for this process's toolchain (`/bin/go-heap-churn-1.15`); for
    /// `exec` the first word of its command; for `go-source` the build of this process
    /// (`/opt/rsslab/<process>/<module directory name>`, so the kernel's task name is the
    /// program's own).
    pub fn program(&self) -> String {
        match (&self.workload, &self.go) {
            (Workload::Exec(args), _) => args.command.first().cloned().unwrap_or_default(),
            (Workload::GoSource(args), _) => {
                format!(
                    "{}/{}/{}",
                    crate::USER_BUILDS_DIR,
                    self.name,
                    args.program_name()
                )
            }
            (workload, Some(go)) if workload.is_go() => {
                crate::workload::go_program(workload.name(), go)
            }
            (workload, _) => workload.program(),
        }
    }
}

/// Whether `name` can name a process (and a phase or a metric of one): lowercase letters,
/// digits, `_` and `-`, not empty. Names appear in samples, events and file names.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn default_true() -> bool {
    true
}

/// When a plain supervisor starts a process again once it has ended (not at the run's end).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Supervisor {
    /// It stays ended.
    #[default]
    Never,
    /// Whatever ended it.
    Always,
    /// Unless it exited 0.
    OnFailure,
}

impl Supervisor {
    pub fn is_never(&self) -> bool {
        *self == Supervisor::Never
    }

    /// Whether a process that ended with `exit_code` (128 + a signal for a signal) starts
    /// again.
    pub fn restarts(self, exit_code: i32) -> bool {
        match self {
            Supervisor::Never => false,
            Supervisor::Always => true,
            Supervisor::OnFailure => exit_code != 0,
        }
    }

    /// The names scenarios write.
    pub const NAMES: [&'static str; 3] = ["never", "always", "on-failure"];

    /// The event of a process its supervisor started again: `<process>:restarted`.
    pub const RESTARTED: &'static str = "restarted";
}

/// When a process starts. In scenarios: `start = { after = "service", phase = "released",
/// delay = "3s" }`.
///
/// - no `after`: `delay` after the run starts (default: at once);
/// - `after` and `phase`: `delay` after that process reports that phase;
/// - `after` alone: `delay` after that process ends;
/// - `after` a container (`<pod>/<container>`) and `phase` one of its events (`restarted`,
///   `oom-killed`, `back-off`, ...): `delay` after that event first happens.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Start {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default)]
    pub delay: Millis,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{BalloonArgs, Release};

    #[test]
    fn run_spec_round_trips_as_json() {
        let spec = RunSpec {
            run_id: "demo/6.1/release=free".into(),
            sample_every: Millis(250),
            duration: Millis::secs(30),
            until: Some(Until {
                events: vec!["balloon:full".into()],
                after: Millis(3000),
            }),
            sysctl: [("vm.overcommit_memory".into(), "1".into())].into(),
            sysfs: BTreeMap::new(),
            cgroup: Some(CgroupSpec {
                version: 2,
                memory_max: Some(Bytes::mib(512)),
                memory_high: None,
                swap_max: None,
            }),
            node: None,
            modules: vec!["virtio_blk.ko".into()],
            disk: None,
            processes: vec![ProcessSpec {
                name: "balloon".into(),
                workload: Workload::Balloon(BalloonArgs {
                    step: Bytes::mib(100),
                    every: Millis::secs(1),
                    until_available: Bytes::mib(64),
                    max: None,
                }),
                env: BTreeMap::new(),
                cgroup: false,
                container: None,
                start: Start {
                    after: Some("service".into()),
                    phase: Some("released".into()),
                    delay: Millis(3000),
                },
                emulate_no_madv_free: true,
                restart: Supervisor::Always,
                go: None,
            }],
        };
        let json = serde_json::to_string_pretty(&spec).unwrap();
        assert!(json.contains("\"workload\": \"balloon\""), "{json}");
        assert_eq!(serde_json::from_str::<RunSpec>(&json).unwrap(), spec);
        let _ = Release::Free;
    }
}
