//! The JSON Lines channel to the host: one [`GuestMessage`] a line on the agent's serial port.
//!
//! The port is put in raw mode (no `\n` -> `\r\n`, no echo) and every line is written whole and
//! flushed. The channel is process-global so that the panic hook can still send a verdict, and it
//! guarantees that at most one verdict is ever written.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::termios::{self, SetArg};
use rsslab_wire::{GuestMessage, Verdict};

/// Where messages go: the serial device in the guest, stdout when the agent runs locally.
enum Sink {
    Tty(File),
    Stdout,
}

static CHANNEL: Mutex<Option<Sink>> = Mutex::new(None);
static VERDICT_SENT: AtomicBool = AtomicBool::new(false);

/// Opens `device` as the channel: raw mode, CLOCAL (no wait for carrier), blocking writes.
pub fn open_tty(device: &str) -> std::io::Result<()> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(device)?;
    let mut attrs = termios::tcgetattr(&file)?;
    termios::cfmakeraw(&mut attrs);
    attrs.control_flags |= termios::ControlFlags::CLOCAL | termios::ControlFlags::CREAD;
    attrs.control_flags &= !termios::ControlFlags::CRTSCTS;
    termios::tcsetattr(&file, SetArg::TCSANOW, &attrs)?;
    fcntl(&file, FcntlArg::F_SETFL(OFlag::empty()))?;
    *lock() = Some(Sink::Tty(file));
    Ok(())
}

/// Uses stdout as the channel (local runs and tests).
pub fn use_stdout() {
    *lock() = Some(Sink::Stdout);
}

fn lock() -> MutexGuard<'static, Option<Sink>> {
    CHANNEL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sends one message. Errors are reported on the console: there is nobody else to tell.
/// A second verdict is refused (and reported), so the channel ends with exactly one.
pub fn send(message: &GuestMessage) {
    if matches!(message, GuestMessage::Verdict(_)) && VERDICT_SENT.swap(true, Ordering::SeqCst) {
        crate::diag!("refusing to send a second verdict: {}", message.to_line());
        return;
    }
    write_line(&mut lock(), message);
}

/// Sends the verdict unless one was sent already; true if this call sent it.
pub fn send_verdict(verdict: Verdict) -> bool {
    if VERDICT_SENT.load(Ordering::SeqCst) {
        return false;
    }
    send(&GuestMessage::Verdict(verdict));
    true
}

/// For the panic hook: sends a verdict even if the channel's lock is held or poisoned, then
/// waits until it has left the UART.
pub fn send_verdict_from_panic(verdict: Verdict) {
    if VERDICT_SENT.swap(true, Ordering::SeqCst) {
        return;
    }
    let message = GuestMessage::Verdict(verdict);
    match CHANNEL.try_lock() {
        Ok(mut guard) => write_line(&mut guard, &message),
        Err(TryLockError::Poisoned(poisoned)) => write_line(&mut poisoned.into_inner(), &message),
        // Held by the panicking code itself: write through a fresh descriptor.
        Err(TryLockError::WouldBlock) => {
            let mut fresh = OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NOCTTY)
                .open(rsslab_wire::CHANNEL_DEVICE)
                .ok()
                .map(Sink::Tty);
            write_line(&mut fresh, &message);
        }
    }
    drain();
}

fn write_line(sink: &mut Option<Sink>, message: &GuestMessage) {
    let mut line = message.to_line();
    line.push('\n');
    let result = match sink {
        Some(Sink::Tty(file)) => file.write_all(line.as_bytes()).and_then(|()| file.flush()),
        Some(Sink::Stdout) => {
            let mut out = std::io::stdout().lock();
            out.write_all(line.as_bytes()).and_then(|()| out.flush())
        }
        None => Err(std::io::Error::other("the channel is not open")),
    };
    if let Err(error) = result {
        crate::diag!("channel write failed ({error}): {}", line.trim_end());
    }
}

/// Writes raw bytes on the channel, bypassing the message types: only for injected faults
/// ([`crate::fault`]), which exist to break the protocol.
pub fn write_raw(bytes: &[u8]) {
    let result = match lock().as_mut() {
        Some(Sink::Tty(file)) => file.write_all(bytes).and_then(|()| file.flush()),
        Some(Sink::Stdout) => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes).and_then(|()| out.flush())
        }
        None => Err(std::io::Error::other("the channel is not open")),
    };
    if let Err(error) = result {
        crate::diag!("raw channel write failed: {error}");
    }
}

/// Reads one line from the host (the run spec), without its `\n`: byte by byte, so nothing
/// after the line is taken from the port. Only the serial port has a host on the other end.
pub fn read_line() -> std::io::Result<String> {
    let port = match lock().as_ref() {
        Some(Sink::Tty(file)) => file.try_clone()?,
        _ => {
            return Err(std::io::Error::other(
                "the channel is not a serial port: nothing to read the spec from",
            ));
        }
    };
    let mut line = Vec::new();
    for byte in std::io::Read::bytes(port) {
        match byte? {
            b'\n' => return String::from_utf8(line).map_err(std::io::Error::other),
            byte => line.push(byte),
        }
    }
    Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof))
}

/// Waits until everything written has been transmitted (before powering off).
pub fn drain() {
    if let Ok(guard) = CHANNEL.try_lock()
        && let Some(Sink::Tty(file)) = guard.as_ref()
    {
        let _ = termios::tcdrain(file);
    }
}

/// Whether the verdict has been sent.
pub fn verdict_sent() -> bool {
    VERDICT_SENT.load(Ordering::SeqCst)
}
