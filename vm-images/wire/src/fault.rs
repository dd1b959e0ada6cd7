//! Faults injected on purpose, a testing aid: the runner's fault tests make a guest fail in a
//! chosen way at a chosen time, to check what the lab does with it.
//!
//! The host asks for one with `rsslab.fault=<kind>@<ms>` on the guest kernel's command line
//! ([`Fault::kernel_arg`]); the agent reads `/proc/cmdline` ([`Fault::from_cmdline`]) and, `ms`
//! milliseconds after the run started, does what [`FaultKind`] says. Without the parameter
//! nothing happens.

use std::fmt;

use crate::units::Millis;

/// The kernel command-line parameter that carries a fault.
pub const FAULT_PARAM: &str = "rsslab.fault";

/// What the guest does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The kernel panics for real (`echo c > /proc/sysrq-trigger`).
    Panic,
    /// The agent (PID 1) aborts: the kernel's "Attempted to kill init".
    AgentCrash,
    /// The agent writes a line that is not JSON on the channel, then goes on.
    Garbage,
    /// The agent writes half a line on the channel and powers off at once: no verdict.
    Cut,
    /// The agent stops: no more samples, no verdict, no power-off.
    Hang,
}

impl FaultKind {
    pub const ALL: [FaultKind; 5] = [
        FaultKind::Panic,
        FaultKind::AgentCrash,
        FaultKind::Garbage,
        FaultKind::Cut,
        FaultKind::Hang,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Panic => "panic",
            FaultKind::AgentCrash => "agent-crash",
            FaultKind::Garbage => "garbage",
            FaultKind::Cut => "cut",
            FaultKind::Hang => "hang",
        }
    }

    pub fn from_name(name: &str) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// A fault and when it strikes, counted from the start of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    pub at: Millis,
}

impl Fault {
    /// `rsslab.fault=<kind>@<ms>`.
    pub fn kernel_arg(&self) -> String {
        format!("{FAULT_PARAM}={}@{}", self.kind.name(), self.at.0)
    }

    /// The fault a kernel command line asks for, if any (a malformed one is none).
    pub fn from_cmdline(cmdline: &str) -> Option<Fault> {
        let prefix = format!("{FAULT_PARAM}=");
        let value = cmdline
            .split_whitespace()
            .find_map(|word| word.strip_prefix(&prefix))?;
        let (kind, at) = value.split_once('@')?;
        Some(Fault {
            kind: FaultKind::from_name(kind)?,
            at: Millis(at.parse().ok()?),
        })
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.kind.name(), self.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_round_trips_through_the_kernel_command_line() {
        for kind in FaultKind::ALL {
            let fault = Fault {
                kind,
                at: Millis(1500),
            };
            let cmdline = format!("console=ttyS0 {} rdinit=/init", fault.kernel_arg());
            assert_eq!(Fault::from_cmdline(&cmdline), Some(fault));
        }
        assert_eq!(Fault::from_cmdline("console=ttyS0 rdinit=/init"), None);
        assert_eq!(Fault::from_cmdline("rsslab.fault=melt@1"), None);
        assert_eq!(Fault::from_cmdline("rsslab.fault=panic@soon"), None);
    }
}
