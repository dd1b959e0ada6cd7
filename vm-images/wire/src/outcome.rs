//! How a process and a run ended. The names are a contract (see the README, "Metrics"):
//! processes end `exited(code)`, `killed(SIGNAL)`, `oom-killed`, `enomem-at-start`,
//! `running-at-end` (or `not-started` when their trigger never fired); runs end `ok`,
//! `unsupported`, `kernel-panic`, `vm-timeout` or `infra-error`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The name of signal `signal` as Linux numbers them, the name [`ProcessOutcome::Killed`]
/// holds: `SIGKILL` for 9, `SIG<n>` for a number without a name (the real-time signals).
pub fn signal_name(signal: i32) -> String {
    nix::sys::signal::Signal::try_from(signal).map_or_else(
        |_| format!("SIG{signal}"),
        |signal| signal.as_str().to_owned(),
    )
}

/// How one process of a run ended. Serialized as its contract name, e.g. `"exited(0)"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProcessOutcome {
    /// Exited by itself with this status code.
    Exited(i32),
    /// Killed by this signal, not by the OOM killer (e.g. `SIGSEGV`, or `SIGKILL` from a person).
    Killed(String),
    /// Killed by the kernel's OOM killer (seen in memory.events or the kernel log, not guessed
    /// from SIGKILL alone).
    OomKilled,
    /// The kernel refused the process's start-up memory (ENOMEM): a native workload said so
    /// (phase `enomem-at-start`), the exec itself failed, or a Go program's runtime died with
    /// its out-of-memory fatal error before `main` reported anything.
    EnomemAtStart,
    /// Still running when the run ended; the agent stopped it.
    RunningAtEnd,
    /// Its start trigger never fired.
    NotStarted,
}

impl fmt::Display for ProcessOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessOutcome::Exited(code) => write!(f, "exited({code})"),
            ProcessOutcome::Killed(signal) => write!(f, "killed({signal})"),
            ProcessOutcome::OomKilled => f.write_str("oom-killed"),
            ProcessOutcome::EnomemAtStart => f.write_str("enomem-at-start"),
            ProcessOutcome::RunningAtEnd => f.write_str("running-at-end"),
            ProcessOutcome::NotStarted => f.write_str("not-started"),
        }
    }
}

/// A string that is not one of the outcome names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not an outcome (expected exited(N), killed(SIGNAL), oom-killed, enomem-at-start, running-at-end or not-started)"
)]
pub struct OutcomeParseError(String);

impl FromStr for ProcessOutcome {
    type Err = OutcomeParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || OutcomeParseError(text.to_owned());
        let inner = |prefix: &str| {
            text.strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(')'))
                .map(str::to_owned)
        };
        match text {
            "oom-killed" => Ok(ProcessOutcome::OomKilled),
            "enomem-at-start" => Ok(ProcessOutcome::EnomemAtStart),
            "running-at-end" => Ok(ProcessOutcome::RunningAtEnd),
            "not-started" => Ok(ProcessOutcome::NotStarted),
            _ => {
                if let Some(code) = inner("exited(") {
                    return code.parse().map(ProcessOutcome::Exited).map_err(|_| bad());
                }
                if let Some(signal) = inner("killed(") {
                    return Ok(ProcessOutcome::Killed(signal));
                }
                Err(bad())
            }
        }
    }
}

impl Serialize for ProcessOutcome {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ProcessOutcome {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// How a whole run (one VM) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunOutcome {
    /// The guest ran the scenario to its end and sent a verdict.
    Ok,
    /// The kernel lacks what the scenario asks for (e.g. the cgroup v1 memory controller).
    Unsupported,
    /// The guest kernel panicked or oopsed (an infrastructure fault, retried once).
    KernelPanic,
    /// The host-side deadline passed and the VM was killed.
    VmTimeout,
    /// Anything else that kept the run from producing a result: QEMU failed, the channel broke,
    /// the agent could not set up.
    InfraError,
}

impl RunOutcome {
    /// Every run outcome, in the order reports list them.
    pub const ALL: [RunOutcome; 5] = [
        RunOutcome::Ok,
        RunOutcome::Unsupported,
        RunOutcome::KernelPanic,
        RunOutcome::VmTimeout,
        RunOutcome::InfraError,
    ];

    /// The run did not complete for a reason of the machinery (QEMU, the guest kernel, the
    /// agent, a deadline), not of the scenario: `kernel-panic`, `vm-timeout`, `infra-error`.
    pub fn is_infrastructure(self) -> bool {
        matches!(
            self,
            RunOutcome::KernelPanic | RunOutcome::VmTimeout | RunOutcome::InfraError
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Ok => "ok",
            RunOutcome::Unsupported => "unsupported",
            RunOutcome::KernelPanic => "kernel-panic",
            RunOutcome::VmTimeout => "vm-timeout",
            RunOutcome::InfraError => "infra-error",
        }
    }
}

impl fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_outcomes_round_trip_through_their_names() {
        let all = [
            ProcessOutcome::Exited(0),
            ProcessOutcome::Exited(-3),
            ProcessOutcome::Killed("SIGKILL".into()),
            ProcessOutcome::OomKilled,
            ProcessOutcome::EnomemAtStart,
            ProcessOutcome::RunningAtEnd,
            ProcessOutcome::NotStarted,
        ];
        for outcome in all {
            let json = serde_json::to_string(&outcome).unwrap();
            assert_eq!(
                serde_json::from_str::<ProcessOutcome>(&json).unwrap(),
                outcome
            );
        }
        assert_eq!(ProcessOutcome::Exited(1).to_string(), "exited(1)");
        assert!("exited(x)".parse::<ProcessOutcome>().is_err());
        assert!("crashed".parse::<ProcessOutcome>().is_err());
    }

    #[test]
    fn signals_are_named_as_linux_numbers_them() {
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(11), "SIGSEGV");
        assert_eq!(signal_name(6), "SIGABRT");
        assert_eq!(signal_name(15), "SIGTERM");
        assert_eq!(signal_name(64), "SIG64", "a real-time signal has no name");
        assert_eq!(signal_name(0), "SIG0");
    }

    #[test]
    fn run_outcomes_use_contract_names() {
        assert_eq!(
            serde_json::to_string(&RunOutcome::VmTimeout).unwrap(),
            "\"vm-timeout\""
        );
        assert_eq!(RunOutcome::KernelPanic.to_string(), "kernel-panic");
    }
}
