//! Runs one QEMU VM to its end: console kept, channel lines handed over as they arrive, a
//! host-side deadline, and QEMU killed on every path.
//!
//! QEMU is owned by a [`QemuGuard`] that kills and reaps it when dropped (error, panic, early
//! return); it also gets `PR_SET_PDEATHSIG` so it dies with the runner even on SIGKILL, and its
//! own process group so a terminal's Ctrl-C reaches the runner, which then stops every VM
//! ([`request_stop`]) and still writes what finished.

pub mod accel;
pub mod console;
pub mod qemu;

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

pub use console::ConsoleFault;
pub use qemu::{Accel, QemuCommand};

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
}

/// What the channel consumer wants after a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineAction {
    Continue,
    /// The verdict arrived: the guest should power off within [`POWER_OFF_GRACE`].
    VerdictReceived,
}

/// How long a guest may take to power off after its verdict.
pub const POWER_OFF_GRACE: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(20);

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

/// Boots `command`, copies the console into `console_log`, passes each channel line to
/// `on_line`, and returns when QEMU has exited or was killed at `deadline` (measured from now).
pub fn run_vm(
    command: &QemuCommand,
    deadline: Duration,
    console_log: &Path,
    on_line: &mut dyn FnMut(&str) -> LineAction,
) -> Result<VmOutput> {
    let started = Instant::now();
    let listener = UnixListener::bind(&command.channel_socket)
        .with_context(|| format!("listening on {}", command.channel_socket.display()))?;
    listener.set_nonblocking(true)?;

    let (console_reader, console_writer) = std::io::pipe().context("creating the console pipe")?;
    tracing::debug!(command = %command.display(), "starting QEMU");
    let expression = duct::cmd(command.binary.as_os_str(), command.args())
        .stdin_null()
        .stdout_file(console_writer.try_clone()?)
        .stderr_file(console_writer)
        .unchecked()
        .before_spawn(|cmd| {
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    libc::setpgid(0, 0);
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
    // The expression holds the pipe's write ends: drop them, or the console never sees EOF.
    drop(expression);

    let console_file =
        File::create(console_log).with_context(|| format!("creating {}", console_log.display()))?;
    let fault = Arc::new(Mutex::new(None));
    let console_thread = spawn_console_copier(console_reader, console_file, Arc::clone(&fault));

    let (line_sender, lines) = mpsc::channel::<String>();
    let mut channel_thread = None;
    let mut listener = Some(listener);
    let deadline_at = started + deadline;
    let mut grace_until: Option<Instant> = None;

    let exit = loop {
        if let Some(accepting) = &listener
            && let Ok((stream, _)) = accepting.accept()
        {
            stream.set_nonblocking(false)?;
            let sender = line_sender.clone();
            channel_thread = Some(thread::spawn(move || {
                for line in BufReader::new(stream).split(b'\n') {
                    let Ok(line) = line else { break };
                    let line = String::from_utf8_lossy(&line)
                        .trim_end_matches('\r')
                        .to_owned();
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            }));
            listener = None;
        }
        while let Ok(line) = lines.try_recv() {
            if on_line(&line) == LineAction::VerdictReceived && grace_until.is_none() {
                grace_until = Some(Instant::now() + POWER_OFF_GRACE);
            }
        }
        if let Some(output) = guard.0.try_wait().context("waiting for QEMU")? {
            break VmExit::Exited(output.status.code());
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
    drop(guard);
    drop(line_sender);
    if let Some(thread) = channel_thread {
        let _ = thread.join();
    }
    while let Ok(line) = lines.try_recv() {
        on_line(&line);
    }
    let _ = console_thread.join();
    let fault = fault.lock().expect("console fault lock").clone();
    Ok(VmOutput {
        exit,
        fault,
        wall: started.elapsed(),
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
        for line in BufReader::new(reader).split(b'\n') {
            let Ok(line) = line else { break };
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
