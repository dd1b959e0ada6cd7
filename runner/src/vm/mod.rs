//! Runs one QEMU VM to its end: console kept, channel lines handed over as they arrive, a
//! host-side deadline, and QEMU killed on every path.
//!
//! QEMU is owned by a [`QemuGuard`] that kills and reaps it when dropped (error, panic, early
//! return); it also gets `PR_SET_PDEATHSIG` so it dies with the runner even on SIGKILL, and its
//! own process group so a terminal's Ctrl-C reaches the runner, which then stops every VM
//! ([`request_stop`]) and still writes what finished. The channel is a socket pair and the
//! scratch disk an unlinked file ([`disk`]), both handed to QEMU as descriptors: a VM leaves
//! no socket, image or directory behind, even when the runner is killed.
//!
//! The guest is told its run spec on the channel when its agent asks (`ready`); a VM can save
//! a snapshot of itself at that moment, or start from one ([`snapshot`]) and be told at once.

pub mod accel;
pub mod console;
pub mod disk;
pub mod fault;
pub mod qemu;
pub mod qmp;
pub mod snapshot;

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

pub use console::ConsoleFault;
pub use qemu::{Accel, Attached, QemuCommand};
pub use snapshot::{SnapshotStore, SnapshotUse};

use self::qmp::Qmp;

static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);

/// Asks every running VM to stop (Ctrl-C, SIGTERM). Idempotent; safe from a signal handler
/// thread.
pub fn request_stop() {
    STOP_REQUESTED.store(true, Ordering::SeqCst);
}

/// Whether a stop was requested.
pub fn stop_requested() -> bool {
    STOP_REQUESTED.load(Ordering::SeqCst)
}

/// How QEMU ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmExit {
    /// QEMU exited by itself (guest power-off, reboot after a panic, or a QEMU error), with its
    /// exit status.
    Exited(Option<i32>),
    /// QEMU died of a signal the runner did not send: it crashed, or something killed it.
    Signalled(i32),
    /// The host-side deadline passed; QEMU was killed.
    DeadlineExceeded,
    /// The runner was asked to stop; QEMU was killed.
    Interrupted,
    /// The guest said it was done but did not power off in time; QEMU was killed.
    LingeredAfterVerdict,
}

/// What [`run_vm`] saw.
#[derive(Debug, Clone)]
pub struct VmOutput {
    pub exit: VmExit,
    /// The first kernel fault on the console, if any.
    pub fault: Option<ConsoleFault>,
    /// QEMU start to QEMU end.
    pub wall: Duration,
    /// CPU time QEMU used (user + system, all its threads), read from `/proc` while it ran:
    /// at most [`CPU_READ_EVERY`] short of the end.
    pub cpu: Option<Duration>,
    /// How the guest came up.
    pub boot: BootKind,
}

/// How a guest came up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BootKind {
    /// Booted its kernel.
    Cold,
    /// Booted its kernel and saved the snapshot later VMs of its shape start from.
    Saved,
    /// Started from a snapshot of a booted guest.
    Restored,
}

impl BootKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BootKind::Cold => "cold",
            BootKind::Saved => "saved",
            BootKind::Restored => "restored",
        }
    }
}

/// What the guest is told and how it comes up.
#[derive(Debug)]
pub struct Launch<'a> {
    /// The run spec as one JSON line, sent when the agent asks for it (at once after a
    /// restore, whose agent asked before the snapshot).
    pub spec_line: String,
    pub snapshot: SnapshotUse<'a>,
    /// The console log's path: a saved snapshot keeps a copy of it.
    pub console_path: Option<&'a Path>,
}

impl Launch<'_> {
    /// A cold boot told `spec_line`.
    pub fn cold(spec_line: String) -> Launch<'static> {
        Launch {
            spec_line,
            snapshot: SnapshotUse::Cold,
            console_path: None,
        }
    }
}

/// A snapshot that QEMU could not load: the caller deletes it and boots cold.
#[derive(Debug, thiserror::Error)]
#[error("the snapshot {key} did not load: {reason}")]
pub struct RestoreFailed {
    pub key: String,
    pub reason: String,
}

/// What the channel consumer wants after a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineAction {
    Continue,
    /// The agent asked for its run spec.
    SpecWanted,
    /// The verdict arrived: the guest should power off within [`POWER_OFF_GRACE`].
    VerdictReceived,
}

/// How long a guest may take to power off after its verdict.
pub const POWER_OFF_GRACE: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(20);
/// How often QEMU's CPU time is read while it runs.
pub const CPU_READ_EVERY: Duration = Duration::from_millis(200);

/// How long a QEMU whose snapshot restore failed is given to show whether a signal ended it.
const SIGNAL_WAIT: Duration = Duration::from_secs(1);

/// The signal that ended QEMU, if it ended by one within `within`.
fn ended_by_signal(guard: &QemuGuard, within: Duration) -> Option<i32> {
    let until = Instant::now() + within;
    loop {
        match guard.0.try_wait() {
            Ok(Some(output)) => return output.status.signal(),
            Ok(None) if Instant::now() < until => std::thread::sleep(POLL),
            _ => return None,
        }
    }
}

/// Owns the QEMU process: kills and reaps it when dropped.
struct QemuGuard(duct::Handle);

impl Drop for QemuGuard {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Boots `command` (or restores it, as `launch` says) with the scratch `disk` (if any),
/// copies the console into `console`, passes each channel line to `on_line`, sends the spec
/// when the agent asks for it, and returns when QEMU has exited or was killed at `deadline`
/// (measured from now). A snapshot that does not load is a [`RestoreFailed`] error.
pub fn run_vm(
    command: &QemuCommand,
    disk: Option<&File>,
    deadline: Duration,
    console: File,
    launch: Launch<'_>,
    on_line: &mut dyn FnMut(&str) -> LineAction,
) -> Result<VmOutput> {
    let started = Instant::now();
    let Launch {
        spec_line,
        snapshot,
        console_path,
    } = launch;
    let (mut claim, restore) = match snapshot {
        SnapshotUse::Cold => (None, None),
        SnapshotUse::Save(claim) => (Some(claim), None),
        SnapshotUse::Restore(snapshot) => (None, Some(snapshot)),
    };
    let command = QemuCommand {
        incoming: restore.as_ref().map(|snapshot| snapshot.state.clone()),
        ..command.clone()
    };
    let (host_end, guest_end) = UnixStream::pair().context("creating the channel socket pair")?;
    let mut spec_writer = host_end
        .try_clone()
        .context("duplicating the channel socket")?;
    // Duplicates are numbered 3 and up, clear of the stdio QEMU gets.
    let guest_end = OwnedFd::from(guest_end)
        .try_clone()
        .context("duplicating the channel")?;
    let (qmp_host, qmp_guest) = if claim.is_some() || restore.is_some() {
        let (host, qemu) = UnixStream::pair().context("creating the QMP socket pair")?;
        let qemu = OwnedFd::from(qemu)
            .try_clone()
            .context("duplicating the QMP socket")?;
        (Some(host), Some(qemu))
    } else {
        (None, None)
    };
    let disk = disk
        .map(|file| file.try_clone().map(OwnedFd::from))
        .transpose()
        .context("duplicating the scratch disk's descriptor")?;
    let attached = Attached {
        channel: guest_end.as_raw_fd(),
        disk: disk.as_ref().map(AsRawFd::as_raw_fd),
        qmp: qmp_guest.as_ref().map(AsRawFd::as_raw_fd),
    };
    let inherited = [Some(attached.channel), attached.disk, attached.qmp];

    let (console_reader, console_writer) = std::io::pipe().context("creating the console pipe")?;
    tracing::debug!(command = %command.display(attached), "starting QEMU");
    let expression = duct::cmd(command.binary.as_os_str(), command.args(attached))
        .stdin_null()
        .stdout_file(console_writer.try_clone()?)
        .stderr_file(console_writer)
        .unchecked()
        .before_spawn(move |cmd| {
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    libc::setpgid(0, 0);
                    for fd in inherited.into_iter().flatten() {
                        if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                    Ok(())
                });
            }
            Ok(())
        });
    let guard = QemuGuard(
        expression
            .start()
            .with_context(|| format!("starting {}", command.binary.display()))?,
    );
    // Drop the expression (it holds the console pipe's write ends) and our copies of what QEMU
    // inherited, or the console and the channel never see EOF.
    drop(expression);
    drop(guest_end);
    drop(qmp_guest);
    drop(disk);

    let fault = Arc::new(Mutex::new(None));
    let console_thread = spawn_console_copier(console_reader, console, Arc::clone(&fault));
    let mut boot = BootKind::Cold;
    let mut qmp = None;
    if let Some(snapshot) = &restore {
        let resumed = qmp_host
            .context("no QMP socket")
            .and_then(Qmp::connect)
            .and_then(|mut connected| {
                snapshot::resume_restored(&mut connected)?;
                send_spec(&mut spec_writer, &spec_line)?;
                Ok(connected)
            });
        match resumed {
            Ok(connected) => qmp = Some(connected),
            // A QEMU that a signal ended while it loaded (it crashed, or something killed it)
            // says nothing of the snapshot: the loop below records how it died.
            Err(error) if ended_by_signal(&guard, SIGNAL_WAIT).is_some() => {
                tracing::warn!(
                    "QEMU died while restoring the snapshot {}: {error:#}",
                    snapshot.key
                );
            }
            Err(error) => {
                drop(guard);
                let _ = console_thread.join();
                return Err(RestoreFailed {
                    key: snapshot.key.clone(),
                    reason: format!("{error:#}"),
                }
                .into());
            }
        }
        boot = BootKind::Restored;
    } else if let Some(host) = qmp_host {
        match Qmp::connect(host) {
            Ok(connected) => qmp = Some(connected),
            Err(error) => {
                tracing::warn!("no QMP, so no snapshot saved: {error:#}");
                claim = None;
            }
        }
    }
    let (line_sender, lines) = mpsc::channel::<String>();
    let channel_thread = spawn_channel_reader(host_end, line_sender);
    let deadline_at = started + deadline;
    let mut grace_until: Option<Instant> = None;
    let pid = guard.0.pids().first().copied();
    let mut cpu = None;
    let mut cpu_read_at = started;
    let mut spec_sent = restore.is_some();

    let exit = loop {
        if cpu_read_at.elapsed() >= CPU_READ_EVERY {
            cpu = pid.and_then(process_cpu_time).or(cpu);
            cpu_read_at = Instant::now();
        }
        while let Ok(line) = lines.try_recv() {
            match on_line(&line) {
                LineAction::VerdictReceived if grace_until.is_none() => {
                    grace_until = Some(Instant::now() + POWER_OFF_GRACE);
                }
                LineAction::SpecWanted if !spec_sent => {
                    spec_sent = true;
                    if let (Some(claim), Some(qmp), Some(console_path)) =
                        (claim.take(), qmp.as_mut(), console_path)
                    {
                        match claim.save(qmp, console_path) {
                            Ok(()) => boot = BootKind::Saved,
                            Err(error) => tracing::warn!(
                                "no snapshot saved for {}: {error:#}",
                                claim.snapshot.key
                            ),
                        }
                    }
                    if let Err(error) = send_spec(&mut spec_writer, &spec_line) {
                        tracing::warn!("sending the run spec: {error:#}");
                    }
                }
                _ => {}
            }
        }
        if let Some(output) = guard.0.try_wait().context("waiting for QEMU")? {
            break match (output.status.code(), output.status.signal()) {
                (None, Some(signal)) => VmExit::Signalled(signal),
                (code, _) => VmExit::Exited(code),
            };
        }
        let now = Instant::now();
        if stop_requested() {
            break VmExit::Interrupted;
        }
        if now >= deadline_at {
            break VmExit::DeadlineExceeded;
        }
        if grace_until.is_some_and(|until| now >= until) {
            break VmExit::LingeredAfterVerdict;
        }
        thread::sleep(POLL);
    };
    // Still running (about to be killed) or a zombie not reaped yet: the last reading.
    cpu = pid.and_then(process_cpu_time).or(cpu);
    drop(guard);
    drop(claim);
    let _ = channel_thread.join();
    while let Ok(line) = lines.try_recv() {
        on_line(&line);
    }
    let _ = console_thread.join();
    let fault = fault.lock().expect("console fault lock").clone();
    Ok(VmOutput {
        exit,
        fault,
        wall: started.elapsed(),
        cpu,
        boot,
    })
}

/// Writes the run spec line on the channel.
fn send_spec(channel: &mut UnixStream, spec_line: &str) -> Result<()> {
    channel
        .write_all(format!("{spec_line}\n").as_bytes())
        .context("writing the run spec on the channel")
}

/// User + system CPU time of process `pid` (all its threads), from `/proc/<pid>/stat`.
pub fn process_cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    cpu_time_of_stat(&stat)
}

/// Fields 14 and 15 (utime, stime, in clock ticks) of a `/proc/<pid>/stat` line; the command
/// name before them is in parentheses and may hold spaces and parentheses itself.
fn cpu_time_of_stat(stat: &str) -> Option<Duration> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ticks_per_second = u64::try_from(ticks_per_second).ok().filter(|&t| t > 0)?;
    Some(Duration::from_millis(
        (utime + stime) * 1000 / ticks_per_second,
    ))
}

/// Longest line kept from the guest, channel or console: a sample of many processes is a few
/// KiB; a guest that never sends a newline must not grow the host's memory without bound.
pub const MAX_GUEST_LINE: usize = 1 << 20;

/// The lines of `reader` without their `\n`, each cut to `max` bytes (the rest of a longer
/// line is read and dropped, so the next line starts where it should), until EOF or an error.
fn bounded_lines(reader: impl Read, max: usize) -> impl Iterator<Item = Vec<u8>> {
    let mut reader = BufReader::new(reader);
    std::iter::from_fn(move || {
        let mut line = Vec::new();
        let read = (&mut reader)
            .take(max as u64 + 1)
            .read_until(b'\n', &mut line)
            .ok()?;
        if read == 0 {
            return None;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        } else if line.len() > max {
            line.truncate(max);
            let mut rest = Vec::new();
            loop {
                rest.clear();
                match (&mut reader).take(64 * 1024).read_until(b'\n', &mut rest) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if rest.last() == Some(&b'\n') => break,
                    Ok(_) => {}
                }
            }
        }
        Some(line)
    })
}

/// Reads the channel's host end line by line until QEMU closes the other end.
fn spawn_channel_reader(
    stream: UnixStream,
    sender: mpsc::Sender<String>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        for line in bounded_lines(stream, MAX_GUEST_LINE) {
            let line = String::from_utf8_lossy(&line)
                .trim_end_matches('\r')
                .to_owned();
            if sender.send(line).is_err() {
                break;
            }
        }
    })
}

/// Copies QEMU's stdout (the guest console, and QEMU's own messages) into the console log,
/// recording the first kernel fault.
fn spawn_console_copier(
    reader: std::io::PipeReader,
    file: File,
    fault: Arc<Mutex<Option<ConsoleFault>>>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut out = BufWriter::new(file);
        for line in bounded_lines(reader, MAX_GUEST_LINE) {
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches('\r');
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
            if let Some(found) = console::classify_console_line(text) {
                let mut slot = fault.lock().expect("console fault lock");
                slot.get_or_insert(found);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_lines_are_bounded_and_the_next_line_is_kept() {
        let mut input = b"short\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 200_000));
        input.extend(b"\nafter\nlast without newline");
        let lines: Vec<Vec<u8>> = bounded_lines(input.as_slice(), 1000).collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], b"short");
        assert_eq!(lines[1], vec![b'x'; 1000], "cut to the bound");
        assert_eq!(
            lines[2], b"after",
            "the line after a long one starts in the right place"
        );
        assert_eq!(lines[3], b"last without newline");
        // A line of exactly the bound is whole.
        let exact: Vec<Vec<u8>> = bounded_lines(&b"abcd\nef\n"[..], 4).collect();
        assert_eq!(exact, [b"abcd".to_vec(), b"ef".to_vec()]);
    }

    #[test]
    fn cpu_time_is_utime_plus_stime_after_a_name_with_spaces_and_parentheses() {
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        let stat = format!(
            "4242 (qemu (x) 1) S 1 4242 4242 0 -1 4194560 1000 0 0 0 {} {} 0 0 20 0 3 0",
            3 * hz,
            hz / 2
        );
        assert_eq!(cpu_time_of_stat(&stat), Some(Duration::from_millis(3500)));
        assert_eq!(cpu_time_of_stat("4242 (qemu) S 1"), None, "cut short");
    }

    #[test]
    fn cpu_time_from_proc_agrees_with_getrusage() {
        fn rusage_cpu() -> Duration {
            // SAFETY: getrusage writes into the struct it is given.
            let usage = unsafe {
                let mut usage = std::mem::zeroed::<libc::rusage>();
                assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut usage), 0);
                usage
            };
            let time = |t: libc::timeval| {
                Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
            };
            time(usage.ru_utime) + time(usage.ru_stime)
        }
        // Spin until the kernel has counted 300 ms of CPU, however busy the host.
        let start = rusage_cpu();
        let mut x = 0u64;
        while rusage_cpu() - start < Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let from_proc = process_cpu_time(std::process::id()).expect("own /proc stat");
        let from_rusage = rusage_cpu();
        // /proc counts in clock ticks, sampled; getrusage from the scheduler's
        // exact runtime: they agree within a few ticks, not to the millisecond.
        let gap = from_rusage.abs_diff(from_proc);
        assert!(
            from_proc >= Duration::from_millis(250) && gap <= Duration::from_millis(50),
            "/proc says {from_proc:?}, getrusage {from_rusage:?}"
        );
    }
}
