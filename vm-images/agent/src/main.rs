//! rsslab-agent: PID 1 of every rsslab VM.
//!
//! Mounts the basics, opens the channel (ttyS1), says `ready` and reads the run spec the host
//! sends back (a snapshot of the VM is taken at that point, and restored for later runs),
//! says hello, sets the guest up as the spec asks, runs the processes while sampling, sends
//! exactly one verdict and powers off. A panic or a set-up error still ends in a verdict
//! (`infra-error`, or `unsupported` when the kernel lacks what was asked for) and a power-off.
//!
//! Run as any other PID (for development), it does only the run itself: `rsslab-agent
//! SPEC.json` with the channel on stdout, no mounts, modules, knobs or cgroup, no power-off,
//! and workload programs taken from `$RSSLAB_BIN_DIR` (default /bin).

use std::time::Duration;

use nix::sys::reboot::{RebootMode, reboot};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use rsslab_agent::setup::{self, Failure};
use rsslab_agent::{cgroup, channel, diag, hello, mounts, pods, run};
use rsslab_wire::{
    CHANNEL_DEVICE, CHANNEL_VERSION, GuestMessage, Ready, RunOutcome, RunSpec, Verdict,
};

fn main() {
    let pid1 = std::process::id() == 1;
    install_panic_hook(pid1);
    // Before any fork: SIGCHLD is read through a signalfd by the run loop.
    let sigchld = block_sigchld();

    let mut mounted = if pid1 {
        mounts::mount_all(mounts::BASE)
    } else {
        Vec::new()
    };
    open_channel(pid1);
    // A snapshot of the VM is taken while the agent waits here (see `spec_from_host`).
    let spec = if pid1 {
        spec_from_host()
    } else {
        match std::env::args().nth(1) {
            Some(path) => read_spec(&path),
            None => Err(Failure::infra(String::from(
                "usage: rsslab-agent SPEC.json (outside a VM)",
            ))),
        }
    };
    let cgroup_version = spec.as_ref().ok().and_then(RunSpec::cgroup_version);

    if pid1 {
        mounted.extend(mounts::mount_all(&[if cgroup_version == Some(1) {
            mounts::CGROUP1_ROOT
        } else {
            mounts::CGROUP2
        }]));
    }
    let v1_mount = (pid1 && cgroup_version == Some(1)).then(cgroup::mount_v1);
    let v1_mounted = v1_mount.as_ref().map(Result::is_ok);
    channel::send(&GuestMessage::Hello(hello::hello(
        cgroup_version,
        v1_mounted,
        pid1,
    )));
    for mount in &mounted {
        setup::report(format!("mount {}", mount.target), mount.ok, &mount.detail);
    }

    let verdict = match (spec, sigchld) {
        (Ok(spec), Ok(sigchld)) => match set_up(&spec, pid1, &mounted, v1_mount.as_ref()) {
            Ok((cgroup, pods)) => {
                let bin_dir = if pid1 {
                    None
                } else {
                    std::env::var("RSSLAB_BIN_DIR").ok()
                };
                run::run(
                    &spec,
                    run::Context {
                        cgroup,
                        pods,
                        bin_dir,
                        sigchld,
                    },
                )
            }
            Err(failure) => run::early_verdict(Some(&spec), failure),
        },
        (Err(failure), _) => run::early_verdict(None, failure),
        (Ok(spec), Err(error)) => run::early_verdict(
            Some(&spec),
            Failure::infra(format!("signalfd for SIGCHLD: {error}")),
        ),
    };
    diag!("verdict: {}", verdict.outcome);
    channel::send_verdict(verdict);
    channel::drain();
    if pid1 {
        power_off();
    }
}

/// Everything between the hello and the run: mounts checked, modules, disk, knobs, and the
/// cgroup or the pods' cgroup tree.
fn set_up(
    spec: &RunSpec,
    pid1: bool,
    mounted: &[mounts::Mounted],
    v1_mount: Option<&Result<(), String>>,
) -> Result<(Option<cgroup::Cgroup>, Option<pods::PodTree>), Failure> {
    if let Some(failed) = mounted.iter().find(|mount| !mount.ok) {
        return Err(Failure::infra(failed.detail.clone()));
    }
    if !pid1 {
        diag!("not PID 1: skipping modules, disk, sysctls, sysfs and the cgroup");
        return Ok((None, None));
    }
    setup::apply(spec)?;
    let cgroup = spec
        .cgroup
        .as_ref()
        .map(|cgroup| cgroup::create(cgroup, v1_mount))
        .transpose()?;
    let pods = spec
        .node
        .as_ref()
        .map(|node| pods::create(node, v1_mount))
        .transpose()?;
    Ok((cgroup, pods))
}

/// Says `ready` and reads the run spec the host sends back, one JSON line on the channel.
fn spec_from_host() -> Result<RunSpec, Failure> {
    channel::send(&GuestMessage::Ready(Ready {
        protocol: CHANNEL_VERSION,
    }));
    let line = channel::read_line()
        .map_err(|error| Failure::infra(format!("reading the run spec from the host: {error}")))?;
    serde_json::from_str(&line)
        .map_err(|error| Failure::infra(format!("parsing the run spec from the host: {error}")))
}

fn read_spec(path: &str) -> Result<RunSpec, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| Failure::infra(format!("reading {path}: {error}")))?;
    serde_json::from_str(&text).map_err(|error| Failure::infra(format!("parsing {path}: {error}")))
}

fn block_sigchld() -> nix::Result<SignalFd> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.thread_block()?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
}

/// The channel: ttyS1 in the guest (the node is made if devtmpfs failed), else stdout. If the
/// port cannot be opened, messages go to the console, where the host's log at least keeps them.
fn open_channel(pid1: bool) {
    if !pid1 {
        channel::use_stdout();
        return;
    }
    mounts::ensure_char_device(CHANNEL_DEVICE, 4, 65);
    if let Err(error) = channel::open_tty(CHANNEL_DEVICE) {
        diag!("cannot open the channel {CHANNEL_DEVICE}: {error}; writing messages to the console");
        channel::use_stdout();
    }
}

/// A panic still ends the run properly: an infra-error verdict, then power-off.
fn install_panic_hook(pid1: bool) {
    std::panic::set_hook(Box::new(move |info| {
        diag!("panic: {info}");
        channel::send_verdict_from_panic(Verdict {
            t_ms: run::run_ms(),
            outcome: RunOutcome::InfraError,
            reason: Some(format!("the guest agent panicked: {info}")),
            processes: Default::default(),
            cgroup_peak: Default::default(),
            agent_cpu_ms: None,
        });
        if pid1 {
            power_off();
        }
    }));
}

/// Flushes file systems and powers the VM off. PID 1 must never exit (the kernel would panic).
fn power_off() -> ! {
    nix::unistd::sync();
    let error = reboot(RebootMode::RB_POWER_OFF).unwrap_err();
    diag!("power-off failed: {error}");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
