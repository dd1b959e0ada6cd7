//! The guest console: copied line by line into `console.log`, and watched for kernel faults.
//!
//! A kernel panic or oops is an infrastructure fault of the run, never a workload outcome; the
//! agent dying (the kernel's "Attempted to kill init") is told apart from a kernel fault because
//! it is our bug, not the kernel's.

/// A fault seen on the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleFault {
    /// The kernel panicked or oopsed; the line that said so.
    KernelPanic(String),
    /// PID 1 (the agent) exited or crashed; the line that said so.
    AgentDied(String),
}

/// Kernel messages that mean the kernel itself failed.
const KERNEL_FAULT_MARKERS: &[&str] = &[
    "Kernel panic - not syncing",
    "Oops:",
    "BUG: unable to handle",
    "general protection fault",
    "kernel BUG at",
];

/// What a console line says about the guest's health, if anything.
pub fn classify_console_line(line: &str) -> Option<ConsoleFault> {
    if line.contains("Attempted to kill init") {
        return Some(ConsoleFault::AgentDied(line.trim().to_owned()));
    }
    // `traps: init[1] general protection fault ip:...`: the kernel reporting a fault of a
    // user-space program; only PID 1 (the agent) matters, and it is not the kernel's fault.
    if let Some((_, task)) = line.split_once("traps: ") {
        return task
            .split_whitespace()
            .next()
            .is_some_and(|task| task.ends_with("[1]"))
            .then(|| ConsoleFault::AgentDied(line.trim().to_owned()));
    }
    KERNEL_FAULT_MARKERS
        .iter()
        .any(|marker| line.contains(marker))
        .then(|| ConsoleFault::KernelPanic(line.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_panics_oopses_and_a_dead_agent() {
        let panic = "[    2.88] Kernel panic - not syncing: VFS: Unable to mount root fs";
        assert!(matches!(
            classify_console_line(panic),
            Some(ConsoleFault::KernelPanic(_))
        ));
        let oops = "[   12.1] Oops: general protection fault, probably for non-canonical address";
        assert!(matches!(
            classify_console_line(oops),
            Some(ConsoleFault::KernelPanic(_))
        ));
        let init =
            "[    3.0] Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b";
        assert!(matches!(
            classify_console_line(init),
            Some(ConsoleFault::AgentDied(_))
        ));
        let agent_trap = "[    4.8] traps: init[1] general protection fault ip:7f93 sp:7ffe error:0 in init[7f93+13b000]";
        assert!(matches!(
            classify_console_line(agent_trap),
            Some(ConsoleFault::AgentDied(_))
        ));
        let workload_trap =
            "[    4.8] traps: heap-churn[212] general protection fault ip:7f93 sp:7ffe error:0";
        assert_eq!(classify_console_line(workload_trap), None);
        assert_eq!(
            classify_console_line("[    0.0] Linux version 6.1.0-50-cloud-amd64"),
            None
        );
        assert_eq!(
            classify_console_line("rsslab-agent: sampling every 250ms"),
            None
        );
    }
}
