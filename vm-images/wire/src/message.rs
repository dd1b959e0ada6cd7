//! The guest-to-host channel: JSON Lines, one [`GuestMessage`] a line, on the agent's serial
//! port ([`crate::CHANNEL_DEVICE`]).
//!
//! A well-formed channel is a `ready` (the agent asks for its run spec, which the host sends
//! back as one JSON line on the same port; after a snapshot restore the host never sees it),
//! one `hello`, any number of `sample`, `event` and `output` lines, and exactly one `verdict`,
//! last. Anything else (no verdict, two verdicts, a line that does not parse) is
//! an error on the host side, reported with the console log.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::outcome::{ProcessOutcome, RunOutcome};

/// Named values in bytes (or counts, for event counters such as `oom_kill`). Names are a
/// contract: see the README, "Metrics".
pub type Metrics = BTreeMap<String, u64>;

/// One line on the channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum GuestMessage {
    Ready(Ready),
    Hello(Hello),
    Sample(Sample),
    Event(Event),
    Output(Output),
    Verdict(Verdict),
}

impl GuestMessage {
    /// The message as one JSON line, without the newline.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("guest messages serialize")
    }
}

/// The agent is up (base file systems mounted, channel open) and waits for its run spec: one
/// [`crate::RunSpec`] as a JSON line from the host. A snapshot of the VM is taken here, so a
/// restored guest is exactly where a cold boot was when it asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ready {
    /// [`crate::CHANNEL_VERSION`] of the agent.
    pub protocol: u32,
}

/// First message after the spec: what the guest is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// [`crate::CHANNEL_VERSION`] of the agent.
    pub protocol: u32,
    /// `uname -r`.
    pub kernel_release: String,
    /// Milliseconds since the kernel booted (CLOCK_BOOTTIME) when the agent said hello.
    pub boot_ms: u64,
    /// What the guest kernel offers, as read in the guest before the run's set-up (so the
    /// kernel's boot defaults, not what a scenario writes), each `yes`, `no` or `unknown`
    /// unless said otherwise:
    /// - `cgroup_v2`: cgroup2 is in /proc/filesystems;
    /// - `cgroup_v1_memory`: the cgroup v1 memory controller mounts (the run's own mount in a
    ///   v1 run, else a probe mount);
    /// - `madv_free`: `madvise(MADV_FREE)` on a written anonymous page returned 0 (`no`: EINVAL);
    /// - `mglru`: the value of /sys/kernel/mm/lru_gen/enabled (`0x0007`, `0x0000`), or `absent`;
    /// - `thp`, `thp_defrag`: the selected mode of /sys/kernel/mm/transparent_hugepage/enabled
    ///   and .../defrag (`always`, `madvise`, ...), or `absent`;
    /// - `smaps_rollup`: /proc/self/smaps_rollup exists;
    /// - `memory_peak`: a v2 cgroup has memory.peak;
    /// - `kernel_version`: /proc/sys/kernel/version (`#1 SMP PREEMPT_DYNAMIC Debian 6.1.176-1
    ///   (2026-...)`), which with the release is what `uname -a` says of the kernel.
    ///
    /// Agents before `madv_free` and `thp_defrag` do not send them; a reader takes a missing
    /// key as `unknown`.
    pub features: BTreeMap<String, String>,
}

/// One sample. `t_ms` counts from the start of the run (the agent's clock, not the host's);
/// this is also exactly one line of `samples.jsonl`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub t_ms: u64,
    /// Process name -> metrics (`vsz`, `rss`, `rss_anon`, `rss_file`, `rss_shmem`, `lazyfree`,
    /// `swap`, and workload-reported values). Only running processes appear.
    #[serde(default)]
    pub process: BTreeMap<String, Metrics>,
    /// The run's cgroup (`usage`, `working_set`, `anon`, `file`, `active_file`, `inactive_file`,
    /// `shmem`, `limit`, `oom_kill`, `max`, `high`); empty without a cgroup. With pods, the
    /// node's `kubepods` (every pod together, limited to node allocatable).
    #[serde(default)]
    pub cgroup: Metrics,
    /// Pod name -> its cgroup's metrics (as `cgroup`); only with pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod: BTreeMap<String, Metrics>,
    /// `<pod>/<container>` -> its cgroup's metrics (as `cgroup`); only with pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub container: BTreeMap<String, Metrics>,
    /// The guest (`mem_total`, `mem_free`, `mem_available`, `cached`, `committed_as`,
    /// `commit_limit`, `kubelet_available`).
    #[serde(default)]
    pub guest: Metrics,
}

/// Something that happened at a point in time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub t_ms: u64,
    /// The process it concerns, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
    #[serde(flatten)]
    pub kind: EventKind,
}

impl Event {
    /// The label triggers, plots and expectation windows use: `service:started`,
    /// `service:released`, `service:ended`, `oom-kill`, `setup`, a container's
    /// `web/api:oom-killed`, `web/api:back-off`, `web/api:restarted`...
    pub fn label(&self) -> String {
        let what = match &self.kind {
            EventKind::ContainerTerminated {
                container, reason, ..
            } => return format!("{container}:{}", termination_label(reason)),
            EventKind::ContainerBackOff { container, .. } => {
                return format!("{container}:back-off");
            }
            EventKind::ContainerRestarted { container, .. } => {
                return format!("{container}:restarted");
            }
            EventKind::Started { .. } => "started",
            EventKind::Phase { phase } => phase.as_str(),
            EventKind::Ended { .. } => "ended",
            EventKind::OomKill { .. } => "oom-kill",
            EventKind::Setup { .. } => "setup",
            EventKind::Kubelet { .. } => "kubelet",
            EventKind::Log { .. } => "log",
        };
        match &self.process {
            Some(process) => format!("{process}:{what}"),
            None => what.to_owned(),
        }
    }
}

impl Event {
    /// Whether the event is the one `label` names in a window, a trigger or `until`: its own
    /// label, and for `oom-kill` any OOM kill (one the agent matched to a process is labelled
    /// `<process>:oom-kill` too).
    pub fn is(&self, label: &str) -> bool {
        match self.kind {
            EventKind::OomKill { .. } if label == "oom-kill" => true,
            _ => self.label() == label,
        }
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// The process was started with this pid; `oom_score_adj` as read back from
    /// /proc/<pid>/oom_score_adj when the kubelet's rules set it (a container's process).
    Started {
        pid: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        oom_score_adj: Option<i32>,
    },
    /// The workload reported a phase.
    Phase { phase: String },
    /// The process ended (or was stopped at the end of the run).
    Ended { outcome: ProcessOutcome },
    /// The kernel's OOM killer killed a task (from the kernel log).
    OomKill { pid: u32, task: String },
    /// A set-up step (mount, module, sysctl, sysfs, cgroup): what, and whether it worked.
    Setup {
        step: String,
        ok: bool,
        detail: String,
    },
    /// A line a workload wrote on stderr, or a note from the agent.
    Log { message: String },
    /// A value the kubelet's rules set (before the run starts): a cgroup file of the kubelet's
    /// tree, or a container's `oom_score_adj`, with what the kernel's file says after the
    /// write (`read`, `None` when it could not be read) and the rule behind it.
    Kubelet {
        /// Relative to the cgroup hierarchy's root (`kubepods.slice/...`).
        cgroup: String,
        /// `memory.max`, ..., or `oom_score_adj`.
        file: String,
        value: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        read: Option<String>,
        /// The rule with its numbers.
        rule: String,
        /// The Kubernetes source it follows: file and function.
        source: String,
    },
    /// A pod's container (`<pod>/<container>`) ended: the runtime's reason (`OOMKilled`,
    /// `Error`, `Completed`), its exit code as the runtime reports it (128 + a signal), and
    /// how often it had been restarted before. Labelled `<container>:oom-killed`,
    /// `:error` or `:completed`.
    ContainerTerminated {
        container: String,
        reason: String,
        exit_code: i32,
        restart_count: u32,
    },
    /// The kubelet backs off before starting the container again (CrashLoopBackOff), for
    /// `delay_ms`. Labelled `<container>:back-off`.
    ContainerBackOff {
        container: String,
        delay_ms: u64,
        restart_count: u32,
    },
    /// The kubelet started the container again, as a new container `id` (a new cgroup);
    /// `restart_count` counts this restart. Labelled `<container>:restarted`.
    ContainerRestarted {
        container: String,
        id: String,
        restart_count: u32,
    },
}

/// The label of a container's termination with the runtime's `reason`.
pub fn termination_label(reason: &str) -> &'static str {
    match reason {
        "OOMKilled" => "oom-killed",
        "Completed" => "completed",
        _ => "error",
    }
}

/// What each sample says of a pod's container beside its cgroup's metrics: how often the
/// kubelet restarted it (kube-state-metrics' `kube_pod_container_status_restarts_total`) and
/// how often it ended with each reason, all counts.
pub const CONTAINER_LIFE_METRICS: &[&str] = &[
    "restarts",
    "terminated_oom_killed",
    "terminated_error",
    "terminated_completed",
];

/// The events a pod's container has, after `<pod>/<container>:`.
pub const CONTAINER_EVENTS: &[&str] =
    &["oom-killed", "error", "completed", "back-off", "restarted"];

/// A line a process wrote, as it wrote it (the host keeps them in `<process>.stdout` and
/// `<process>.stderr` in the run's directory). The agent forwards the first
/// [`Output::HEAD_BYTES`] of each stream and the last [`Output::TAIL_BYTES`], with one line
/// [`Output::cut_line`] between them saying what was left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Output {
    pub t_ms: u64,
    pub process: String,
    pub stream: Stream,
    pub line: String,
}

impl Output {
    /// Bytes of each stream forwarded from its start.
    pub const HEAD_BYTES: usize = 64 * 1024;
    /// Bytes of each stream kept from its end, forwarded when the process ends.
    pub const TAIL_BYTES: usize = 64 * 1024;

    /// The line standing for what was left out between head and tail.
    pub fn cut_line(lines: u64, bytes: u64) -> String {
        format!("[rsslab: {lines} lines ({bytes} bytes) not kept]")
    }
}

/// Which of a process's output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// The last message: how the run ended, as the guest saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub t_ms: u64,
    /// `ok`, `unsupported` or `infra-error` (the host adds `kernel-panic` and `vm-timeout`).
    pub outcome: RunOutcome,
    /// Why, when not `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Per process: how it ended and its peaks.
    pub processes: BTreeMap<String, ProcessResult>,
    /// The cgroup's own high-water marks (`usage` from memory.peak / max_usage_in_bytes).
    #[serde(default)]
    pub cgroup_peak: Metrics,
    /// CPU time the agent itself used (user + system, ms, from getrusage): the sampler's cost
    /// in the guest. Absent from agents that did not measure it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_cpu_ms: Option<u64>,
}

/// How one process ended, with its peaks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessResult {
    pub outcome: ProcessOutcome,
    /// Highest values: the kernel's own marks (`rss` from VmHWM, `vsz` from VmPeak) where they
    /// exist, else the highest sampled value, for every sampled metric.
    pub peak: Metrics,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_containers_events_are_labelled_by_the_container_and_the_reason() {
        let event = |kind: EventKind| Event {
            t_ms: 10,
            process: None,
            kind,
        };
        let terminated = |reason: &str| {
            event(EventKind::ContainerTerminated {
                container: "batch/worker".into(),
                reason: reason.into(),
                exit_code: 137,
                restart_count: 0,
            })
            .label()
        };
        assert_eq!(terminated("OOMKilled"), "batch/worker:oom-killed");
        assert_eq!(terminated("Error"), "batch/worker:error");
        assert_eq!(terminated("Completed"), "batch/worker:completed");
        let back_off = event(EventKind::ContainerBackOff {
            container: "batch/worker".into(),
            delay_ms: 1000,
            restart_count: 1,
        });
        assert!(back_off.is("batch/worker:back-off") && !back_off.is("oom-kill"));
        let restarted = event(EventKind::ContainerRestarted {
            container: "batch/worker".into(),
            id: "ab".repeat(32),
            restart_count: 1,
        });
        assert_eq!(restarted.label(), "batch/worker:restarted");
        let line = serde_json::to_string(&GuestMessage::Event(restarted)).unwrap();
        assert!(line.contains(r#""event":"container_restarted""#), "{line}");
        for label in ["oom-killed", "error", "completed", "back-off", "restarted"] {
            assert!(CONTAINER_EVENTS.contains(&label));
        }
    }

    #[test]
    fn messages_are_tagged_lines() {
        let event = GuestMessage::Event(Event {
            t_ms: 1200,
            process: Some("service".into()),
            kind: EventKind::Phase {
                phase: "released".into(),
            },
        });
        let line = event.to_line();
        assert_eq!(
            line,
            r#"{"type":"event","t_ms":1200,"process":"service","event":"phase","phase":"released"}"#
        );
        assert_eq!(serde_json::from_str::<GuestMessage>(&line).unwrap(), event);
        if let GuestMessage::Event(event) = event {
            assert_eq!(event.label(), "service:released");
            assert!(event.is("service:released") && !event.is("oom-kill"));
        }
        let kill = Event {
            t_ms: 5,
            process: Some("hog".into()),
            kind: EventKind::OomKill {
                pid: 7,
                task: "hog".into(),
            },
        };
        assert_eq!(kill.label(), "hog:oom-kill");
        assert!(kill.is("oom-kill") && kill.is("hog:oom-kill"));
    }

    #[test]
    fn a_sample_line_is_a_samples_jsonl_line() {
        let mut sample = Sample {
            t_ms: 250,
            ..Sample::default()
        };
        sample
            .process
            .insert("service".into(), [("rss".to_owned(), 4096)].into());
        let line = serde_json::to_string(&sample).unwrap();
        assert_eq!(
            line,
            r#"{"t_ms":250,"process":{"service":{"rss":4096}},"cgroup":{},"guest":{}}"#
        );
        let tagged = GuestMessage::Sample(sample.clone()).to_line();
        assert!(
            tagged.starts_with(r#"{"type":"sample","t_ms":250"#),
            "{tagged}"
        );
    }
}
