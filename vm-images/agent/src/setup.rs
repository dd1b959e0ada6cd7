//! Set-up before the run starts: kernel modules, the scratch disk, sysctls and sysfs writes.
//!
//! Every step is reported as a `setup` event. A failure is never ignored: the run ends early
//! with a verdict, `unsupported` when the kernel lacks what was asked for (the knob's file does
//! not exist), `infra-error` otherwise.

use std::ffi::CString;
use std::io::ErrorKind;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use rsslab_wire::{DiskMount, Event, EventKind, GuestMessage, RunOutcome, RunSpec};

use crate::channel;

/// Why the run cannot go on: the verdict's outcome and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub outcome: RunOutcome,
    pub reason: String,
}

impl Failure {
    pub fn infra(reason: impl Into<String>) -> Self {
        Failure {
            outcome: RunOutcome::InfraError,
            reason: reason.into(),
        }
    }

    pub fn unsupported(reason: impl Into<String>) -> Self {
        Failure {
            outcome: RunOutcome::Unsupported,
            reason: reason.into(),
        }
    }
}

/// Sends a `setup` event (before the run starts, so at t_ms 0).
pub fn report(step: impl Into<String>, ok: bool, detail: impl Into<String>) {
    let (step, detail) = (step.into(), detail.into());
    if !ok {
        crate::diag!("{step}: {detail}");
    }
    channel::send(&GuestMessage::Event(Event {
        t_ms: 0,
        process: None,
        kind: EventKind::Setup { step, ok, detail },
    }));
}

/// Runs every set-up step of the spec except the cgroup, in order.
pub fn apply(spec: &RunSpec) -> Result<(), Failure> {
    for module in &spec.modules {
        load_module(module)?;
    }
    if let Some(disk) = &spec.disk {
        mount_disk(disk, Duration::from_secs(10))?;
    }
    for (key, value) in &spec.sysctl {
        let path = sysctl_path(key);
        write_knob(&format!("sysctl {key}"), &path, value)?;
    }
    for (path, value) in &spec.sysfs {
        if !path.starts_with("/sys/") || path.contains("/../") {
            let reason = format!("sysfs {path}: not a path under /sys");
            report(format!("sysfs {path}"), false, &reason);
            return Err(Failure::infra(reason));
        }
        write_knob(&format!("sysfs {path}"), path, value)?;
    }
    Ok(())
}

/// Loads one module file from the modules directory; "already loaded" (built in, or loaded
/// as a dependency) counts as done.
fn load_module(file: &str) -> Result<(), Failure> {
    let step = format!("module {}", file.trim_end_matches(".ko"));
    let path = Path::new(rsslab_wire::MODULES_DIR).join(file);
    let image = match std::fs::read(&path) {
        Ok(image) => image,
        Err(error) => {
            let reason = format!("reading {}: {error}", path.display());
            report(&step, false, &reason);
            return Err(Failure::infra(reason));
        }
    };
    let params = CString::default();
    match nix::kmod::init_module(&image, &params) {
        Ok(()) => {
            report(&step, true, format!("loaded {}", path.display()));
            Ok(())
        }
        Err(Errno::EEXIST) => {
            report(&step, true, "already loaded");
            Ok(())
        }
        Err(errno) => {
            let reason = format!("init_module {}: {}", path.display(), errno.desc());
            report(&step, false, &reason);
            Err(Failure::infra(reason))
        }
    }
}

/// Waits for the disk's device node (modules probe asynchronously), then mounts it.
fn mount_disk(disk: &DiskMount, deadline: Duration) -> Result<(), Failure> {
    let step = format!("disk {} on {}", disk.device, disk.mount);
    let fail = |reason: String| {
        report(&step, false, &reason);
        Err(Failure::infra(reason))
    };
    let started = Instant::now();
    while !Path::new(&disk.device).exists() {
        if started.elapsed() >= deadline {
            return fail(format!(
                "{} did not appear within {deadline:?}",
                disk.device
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let waited = started.elapsed();
    if let Err(error) = std::fs::create_dir_all(&disk.mount) {
        return fail(format!("creating {}: {error}", disk.mount));
    }
    let result = mount(
        Some(disk.device.as_str()),
        disk.mount.as_str(),
        Some(disk.fstype.as_str()),
        MsFlags::empty(),
        None::<&str>,
    );
    match result {
        Ok(()) => {
            let detail = format!(
                "{} mounted after waiting {} ms for the device",
                disk.fstype,
                waited.as_millis()
            );
            report(&step, true, detail);
            Ok(())
        }
        Err(errno) => fail(format!(
            "mount -t {} {} {}: {}",
            disk.fstype,
            disk.device,
            disk.mount,
            errno.desc()
        )),
    }
}

/// `vm.overcommit_memory` -> `/proc/sys/vm/overcommit_memory`.
pub fn sysctl_path(key: &str) -> String {
    format!("/proc/sys/{}", key.trim().replace('.', "/"))
}

/// Writes a value to a /proc/sys or /sys file and reports it with what the file reads back.
/// A missing file means the kernel lacks the knob: `unsupported`; any other error: `infra-error`.
pub fn write_knob(step: &str, path: &str, value: &str) -> Result<(), Failure> {
    match write_and_read_back(path, value) {
        Ok(read_back) => {
            report(
                step,
                true,
                format!("{path} = {value} (reads back: {read_back})"),
            );
            Ok(())
        }
        Err(error) if error.kind() == ErrorKind::NotFound => {
            let reason = format!("{step}: {path} does not exist on this kernel");
            report(step, false, &reason);
            Err(Failure::unsupported(reason))
        }
        Err(error) => {
            let reason = format!("{step}: writing {value:?} to {path}: {error}");
            report(step, false, &reason);
            Err(Failure::infra(reason))
        }
    }
}

/// Writes `value` (one write call, as `echo` would) and reads the file back, trimmed.
pub fn write_and_read_back(path: &str, value: &str) -> std::io::Result<String> {
    if !Path::new(path).exists() {
        return Err(std::io::Error::new(
            ErrorKind::NotFound,
            format!("{path} does not exist"),
        ));
    }
    std::fs::write(path, value.as_bytes())?;
    Ok(std::fs::read_to_string(path)
        .map(|text| text.trim().to_owned())
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_names_become_paths() {
        assert_eq!(
            sysctl_path("vm.overcommit_memory"),
            "/proc/sys/vm/overcommit_memory"
        );
        assert_eq!(sysctl_path("kernel.printk"), "/proc/sys/kernel/printk");
    }

    #[test]
    fn a_missing_knob_is_unsupported_and_names_the_key() {
        channel::use_stdout();
        let failure =
            write_knob("sysctl vm.no_such_knob", "/proc/sys/vm/no_such_knob", "1").unwrap_err();
        assert_eq!(failure.outcome, RunOutcome::Unsupported);
        assert!(
            failure.reason.contains("vm.no_such_knob"),
            "{}",
            failure.reason
        );
    }

    #[test]
    fn a_write_error_is_an_infra_error() {
        channel::use_stdout();
        let dir = std::env::temp_dir().join(format!("rsslab-agent-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Writing to a directory fails with EISDIR: not "missing", so infra-error.
        let failure = write_knob("sysfs dir", dir.to_str().unwrap(), "1").unwrap_err();
        assert_eq!(failure.outcome, RunOutcome::InfraError);
        let file = dir.join("knob");
        std::fs::write(&file, "0").unwrap();
        write_knob("sysfs knob", file.to_str().unwrap(), "always").unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "always");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
