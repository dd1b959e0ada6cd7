//! What happens when a container has ended: why the runtime says it ended (its reason),
//! whether the kubelet starts it again, and after how long (CrashLoopBackOff).
//!
//! Sources:
//! - the reason: containerd's CRI plugin sets `OOMKilled` when a `TaskOOM` event came for the
//!   container (`internal/cri/server/events.go`, `handleEvent`), and at exit, without one,
//!   `Completed` for exit code 0 and `Error` for any other (`handleContainerExit`). The shim
//!   publishes `TaskOOM` when the `oom_kill` count of the container cgroup's `memory.events`
//!   rises (cgroup v2, `cmd/containerd-shim-runc-v2/oom_v2.go`, `Run`); on cgroup v1 on the
//!   eventfd of `memory.oom_control` (`oom.go`), read here as its `oom_kill` count rising. A
//!   process killed by a signal exits with 128 + the signal, as runc reports it (137: SIGKILL);
//! - whether: `pkg/kubelet/container/helpers.go`, `ShouldContainerBeRestarted` (Never: no;
//!   OnFailure: only a non-zero exit; Always: yes), and for init containers
//!   `pkg/kubelet/kuberuntime/kuberuntime_container.go`, `computeInitContainerActions`: a
//!   sidecar (restartable init container) is always restarted, an init container that failed
//!   is restarted unless the pod's policy is Never, one that completed is done;
//! - when: `pkg/kubelet/kuberuntime/kuberuntime_manager.go`, `doBackOff`, with client-go's
//!   `util/flowcontrol/backoff.go` (`Backoff.IsInBackOffSince`, `Backoff.Next`): the first
//!   restart is at once and starts the back-off at its initial period; each restart within it
//!   waits until `FinishedAt` + the current period and doubles the period, up to the maximum;
//!   when the container finished more than 600 s after the back-off was last advanced
//!   (`pkg/kubelet/kubelet.go`, `NewMainKubelet`: `HasExpiredFunc`), it starts over. The
//!   periods: 10 s doubling to 300 s (`initialCrashLoopBackOff`, `MaxCrashLoopBackOff`); 1 s
//!   to 60 s with `ReduceDefaultCrashLoopBackOffDecay` (1.33 on); with
//!   `KubeletCrashLoopBackOffMax` (1.32 on, on by default from 1.35) the maximum is
//!   `crashLoopBackOff.maxContainerRestartPeriod` (300 s when unset,
//!   `pkg/kubelet/apis/config/v1beta1/defaults.go`), and the initial period no more than it
//!   (`newCrashLoopBackOff`).
//!
//! rsslab restarts a container at the earliest moment `doBackOff` allows. A real kubelet
//! notices the exit within its PLEG relist period (1 s) and, while a container is backing
//! off, retries the pod's sync on its own schedule (`pod_workers.go`, `completeWork`), so a
//! real restart can come somewhat later than here; the periods themselves are the kubelet's.

use rsslab_wire::pod::RestartPolicy;

use crate::Settings;

/// `HasExpiredFunc`: a back-off last advanced longer ago than this when the container
/// finished starts over.
pub const BACK_OFF_RESET_MS: u64 = 600_000;

/// Why a container ended, as the runtime reports it (`containerStatuses[].lastState
/// .terminated.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    OomKilled,
    Error,
    Completed,
}

impl Reason {
    /// As Kubernetes writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::OomKilled => "OOMKilled",
            Reason::Error => "Error",
            Reason::Completed => "Completed",
        }
    }
}

/// The runtime's reason: `OOMKilled` when the container cgroup's OOM kill count rose while it
/// ran, whatever the exit code; else by the exit code.
pub fn reason(oom_kill_rose: bool, exit_code: i32) -> Reason {
    match (oom_kill_rose, exit_code) {
        (true, _) => Reason::OomKilled,
        (false, 0) => Reason::Completed,
        (false, _) => Reason::Error,
    }
}

/// The exit code the runtime reports for a process that exited with `code` or was killed by
/// `signal`.
pub fn exit_code(code: Option<i32>, signal: Option<i32>) -> i32 {
    match (code, signal) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 0,
    }
}

/// Which kind of container it is, for the restart rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Regular,
    Init,
    /// A restartable init container.
    Sidecar,
}

/// Whether the kubelet starts the container again after it ended with `exit_code`.
pub fn should_restart(policy: RestartPolicy, kind: Kind, exit_code: i32) -> bool {
    match kind {
        Kind::Sidecar => true,
        Kind::Init => exit_code != 0 && policy != RestartPolicy::Never,
        Kind::Regular => match policy {
            RestartPolicy::Never => false,
            RestartPolicy::OnFailure => exit_code != 0,
            RestartPolicy::Always => true,
        },
    }
}

/// The back-off's periods as the node's kubelet sets them (`newCrashLoopBackOff`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Periods {
    pub initial_ms: u64,
    pub max_ms: u64,
}

/// `newCrashLoopBackOff`: the initial and maximum back-off.
pub fn periods(settings: &Settings) -> Periods {
    let (mut initial_ms, mut max_ms) = (10_000, 300_000);
    if settings.reduced_back_off_decay {
        (initial_ms, max_ms) = (1_000, 60_000);
    }
    if let Some(max) = settings.max_container_restart_period_ms {
        max_ms = max;
        initial_ms = initial_ms.min(max_ms);
    }
    Periods { initial_ms, max_ms }
}

/// One container's back-off (client-go's per-key `backoffEntry`), on the run's clock in ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackOff {
    periods: Periods,
    /// The current period and when it was last advanced (`Next`).
    entry: Option<(u64, u64)>,
}

/// When the kubelet starts a container again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restart {
    pub at_ms: u64,
    /// How long it backs off first (0: at once; else `CrashLoopBackOff` meanwhile).
    pub delay_ms: u64,
}

impl BackOff {
    pub fn new(periods: Periods) -> BackOff {
        BackOff {
            periods,
            entry: None,
        }
    }

    /// The container finished at `finished_ms` and is to be restarted: when, with the back-off
    /// advanced as `doBackOff` advances it at that restart.
    pub fn restart(&mut self, finished_ms: u64) -> Restart {
        let expired =
            |last_update: u64| finished_ms.saturating_sub(last_update) > BACK_OFF_RESET_MS;
        match self.entry {
            // IsInBackOffSince: in back-off until `now - FinishedAt` reaches the period; then
            // Next doubles it (capped), stamped at that moment.
            Some((period, last_update)) if !expired(last_update) => {
                let at_ms = finished_ms + period;
                self.entry = Some(((period * 2).min(self.periods.max_ms), at_ms));
                Restart {
                    at_ms,
                    delay_ms: period,
                }
            }
            // No entry, or an expired one: not in back-off; Next starts it at the initial
            // period, and the container starts now.
            _ => {
                self.entry = Some((self.periods.initial_ms, finished_ms));
                Restart {
                    at_ms: finished_ms,
                    delay_ms: 0,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::node;

    fn settings_with(gates: &[(&str, bool)], max: Option<u64>, minor: u32) -> Settings {
        let mut node = node(minor, 2);
        for (gate, on) in gates {
            node.feature_gates.insert((*gate).to_owned(), *on);
        }
        node.max_container_restart_period = max.map(rsslab_wire::units::Millis);
        crate::settings::resolve(&node)
    }

    #[test]
    fn the_default_back_off_is_10_s_doubling_to_300_s_and_the_first_restart_is_at_once() {
        let mut back_off = BackOff::new(periods(&settings_with(&[], None, 31)));
        // A container that dies 1 s after each start: finished, restarted, finished ...
        let mut finished = 5_000;
        let mut delays = Vec::new();
        for _ in 0..9 {
            let restart = back_off.restart(finished);
            assert_eq!(restart.at_ms, finished + restart.delay_ms);
            delays.push(restart.delay_ms / 1000);
            finished = restart.at_ms + 1_000;
        }
        assert_eq!(delays, [0, 10, 20, 40, 80, 160, 300, 300, 300]);
    }

    #[test]
    fn a_container_that_ran_ten_minutes_past_the_last_restart_starts_over() {
        let mut back_off = BackOff::new(periods(&settings_with(&[], None, 31)));
        assert_eq!(back_off.restart(0).delay_ms, 0);
        // Restarted at 0 (last update 0); finishes 2 s later: 10 s back-off, stamped at 12 s.
        assert_eq!(back_off.restart(2_000).at_ms, 12_000);
        // Finishes exactly 600 s after that stamp: not more than 600 s, still backing off (20 s).
        assert_eq!(back_off.restart(612_000).delay_ms, 20_000);
        // Restarted at 632 s; finishes 600.001 s later: expired, at once, 10 s again next.
        let finished = 632_000 + 600_001;
        assert_eq!(
            back_off.restart(finished),
            Restart {
                at_ms: finished,
                delay_ms: 0
            }
        );
        assert_eq!(back_off.restart(finished + 1).delay_ms, 10_000);
    }

    #[test]
    fn the_kubelets_settings_change_the_periods() {
        // ReduceDefaultCrashLoopBackOffDecay (1.33 alpha): 1 s to 60 s.
        let reduced = settings_with(&[("ReduceDefaultCrashLoopBackOffDecay", true)], None, 33);
        assert_eq!(
            periods(&reduced),
            Periods {
                initial_ms: 1_000,
                max_ms: 60_000
            }
        );
        // KubeletCrashLoopBackOffMax with 4 s: 4 s from the first back-off (initial capped).
        let max = settings_with(&[("KubeletCrashLoopBackOffMax", true)], Some(4_000), 32);
        assert_eq!(
            periods(&max),
            Periods {
                initial_ms: 4_000,
                max_ms: 4_000
            }
        );
        let mut back_off = BackOff::new(periods(&max));
        let delays: Vec<u64> = [0, 100, 200, 300]
            .iter()
            .map(|finished| back_off.restart(finished * 1000).delay_ms)
            .collect();
        assert_eq!(delays, [0, 4_000, 4_000, 4_000]);
        // Both: the maximum set wins over the reduced one, the initial stays 1 s; unset, the
        // gate's default maximum is 300 s (defaults.go), also over the reduced 60 s.
        let both = [
            ("ReduceDefaultCrashLoopBackOffDecay", true),
            ("KubeletCrashLoopBackOffMax", true),
        ];
        assert_eq!(
            periods(&settings_with(&both, Some(20_000), 33)),
            Periods {
                initial_ms: 1_000,
                max_ms: 20_000
            }
        );
        assert_eq!(
            periods(&settings_with(&both, None, 33)),
            Periods {
                initial_ms: 1_000,
                max_ms: 300_000
            }
        );
        // 1.35: KubeletCrashLoopBackOffMax is on by default; unset, still 10 s to 300 s.
        assert_eq!(
            periods(&settings_with(&[], None, 35)),
            Periods {
                initial_ms: 10_000,
                max_ms: 300_000
            }
        );
        assert_eq!(
            periods(&settings_with(&[], Some(2_000), 35)),
            Periods {
                initial_ms: 2_000,
                max_ms: 2_000
            }
        );
    }

    #[test]
    fn restart_policies_as_should_container_be_restarted_and_the_init_container_rules() {
        use RestartPolicy::*;
        let cases = [
            (Always, Kind::Regular, 0, true),
            (Always, Kind::Regular, 137, true),
            (OnFailure, Kind::Regular, 0, false),
            (OnFailure, Kind::Regular, 1, true),
            (Never, Kind::Regular, 137, false),
            (Never, Kind::Sidecar, 0, true),
            (Never, Kind::Init, 1, false),
            (Always, Kind::Init, 0, false),
            (OnFailure, Kind::Init, 2, true),
        ];
        for (policy, kind, code, restarted) in cases {
            assert_eq!(
                should_restart(policy, kind, code),
                restarted,
                "{policy:?} {kind:?} {code}"
            );
        }
    }

    #[test]
    fn the_runtime_says_oom_killed_whenever_the_count_rose() {
        assert_eq!(reason(true, 137), Reason::OomKilled);
        assert_eq!(
            reason(true, 1),
            Reason::OomKilled,
            "a helper was killed, main exited 1"
        );
        assert_eq!(reason(false, 137), Reason::Error, "SIGKILL by someone else");
        assert_eq!(reason(false, 0), Reason::Completed);
        assert_eq!(exit_code(None, Some(9)), 137);
        assert_eq!(exit_code(Some(3), None), 3);
        assert_eq!(Reason::OomKilled.as_str(), "OOMKilled");
    }
}
