//! Facts about the host recorded with every run: QEMU version, host name, git revision.

use std::path::Path;
use std::time::Duration;

use crate::vm::qemu::qemu_binary;

/// Facts gathered once per lab.
#[derive(Debug, Clone, Default)]
pub struct HostProvenance {
    pub qemu_version: String,
    pub host: String,
    pub git_revision: Option<String>,
}

/// Reads the host's facts; a missing fact is left empty, never an error.
pub fn host_provenance() -> HostProvenance {
    HostProvenance {
        qemu_version: qemu_version().unwrap_or_default(),
        host: std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default(),
        git_revision: git_revision(),
    }
}

/// How long `qemu-system-x86_64 --version` may take.
const VERSION_DEADLINE: Duration = Duration::from_secs(10);

/// `qemu-system-x86_64 --version`, first line; `None` if it fails or hangs past its deadline.
pub fn qemu_version() -> Option<String> {
    let handle = duct::cmd(qemu_binary().into_os_string(), ["--version"])
        .stdin_null()
        .stdout_capture()
        .stderr_null()
        .unchecked()
        .start()
        .ok()?;
    let Ok(Some(output)) = handle.wait_timeout(VERSION_DEADLINE) else {
        let _ = handle.kill();
        return None;
    };
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines().next().map(str::to_owned)
}

/// The source tree's `git describe`, when rsslab runs from a checkout.
fn git_revision() -> Option<String> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    let revision = duct::cmd!(
        "git",
        "-C",
        workspace,
        "describe",
        "--always",
        "--dirty",
        "--abbrev=12"
    )
    .stderr_null()
    .read()
    .ok()?;
    Some(revision.trim().to_owned()).filter(|r| !r.is_empty())
}
