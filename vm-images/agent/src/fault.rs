//! Faults on purpose, for the runner's fault tests (a testing aid; see [`rsslab_wire::fault`]).
//!
//! The host asks for one on the kernel command line; [`from_kernel`] reads it and the run loop
//! calls [`strike`] when its time has come. Each fault is the real thing: the kernel really
//! panics, the agent really aborts, the channel really carries garbage or stops mid-line.

use std::time::Duration;

use nix::sys::reboot::{RebootMode, reboot};
use rsslab_wire::fault::{Fault, FaultKind};
use rsslab_wire::{GuestMessage, Sample};

use crate::{channel, diag};

/// The fault `/proc/cmdline` asks for, if any.
pub fn from_kernel() -> Option<Fault> {
    let cmdline = std::fs::read_to_string("/proc/cmdline").ok()?;
    let fault = Fault::from_cmdline(&cmdline)?;
    diag!("fault injection asked for: {fault}");
    Some(fault)
}

/// Does what `fault` says (PID 1 only). Returns only for [`FaultKind::Garbage`] (the run goes
/// on).
pub fn strike(fault: Fault, now_ms: u64) {
    diag!("injecting fault {fault} at {now_ms}ms");
    match fault.kind {
        FaultKind::Panic => {
            // Writing `c` crashes the kernel; the write never returns if it works.
            if let Err(error) = std::fs::write("/proc/sysrq-trigger", "c") {
                diag!("cannot panic the kernel through /proc/sysrq-trigger: {error}");
            }
        }
        FaultKind::AgentCrash => std::process::abort(),
        FaultKind::Garbage => channel::write_raw(b"\x00\xff rsslab fault: {this is not JSON\n"),
        FaultKind::Cut => {
            let line = GuestMessage::Sample(Sample {
                t_ms: now_ms,
                ..Sample::default()
            })
            .to_line();
            channel::write_raw(&line.as_bytes()[..line.len() / 2]);
            channel::drain();
            nix::unistd::sync();
            let error = reboot(RebootMode::RB_POWER_OFF).unwrap_err();
            diag!("power-off failed: {error}");
            hang();
        }
        FaultKind::Hang => hang(),
    }
}

fn hang() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
