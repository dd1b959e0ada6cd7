//! Infrastructure faults with a stand-in for QEMU (`RSSLAB_QEMU`): a kernel panic is retried
//! once and recorded as `kernel-panic`, a hung guest is killed at its deadline, a guest that
//! never speaks is an `infra-error`; every case keeps its console log and exits 3. These need
//! the real kernel in the cache (they build a real image), so they run in the `vm` group.

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use support::rsslab_with_env;

/// Writes an executable stand-in for qemu-system-x86_64 into `dir`.
fn fake_qemu(dir: &Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("fake-qemu");
    std::fs::write(&path, format!("#!/bin/bash\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn run_tiny(qemu: &Path, out: &Path) -> (std::process::Output, Value) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vm/tiny.toml");
    let output = rsslab_with_env(
        &[
            "run",
            fixture.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--accel",
            "tcg",
        ],
        &[("RSSLAB_QEMU", qemu.to_str().unwrap())],
    );
    let run_json = out.join("runs/tiny/5.10/run.json");
    let text = std::fs::read_to_string(&run_json).unwrap_or_else(|_| {
        panic!(
            "no run.json; stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output, serde_json::from_str(&text).unwrap())
}

#[test]
fn a_kernel_panic_is_retried_once_and_recorded() {
    let scratch = tempfile::tempdir().unwrap();
    let count = scratch.path().join("boots");
    let qemu = fake_qemu(
        scratch.path(),
        &format!(
            "echo boot >> {}\necho '[    1.0] Kernel panic - not syncing: stand-in fault'\nexit 0",
            count.display()
        ),
    );
    let out = scratch.path().join("out");
    let (output, run) = run_tiny(&qemu, &out);
    assert_eq!(output.status.code(), Some(3), "infrastructure exit code");
    assert_eq!(run["outcome"], "kernel-panic");
    assert_eq!(run["attempts"], 2);
    assert_eq!(
        std::fs::read_to_string(&count).unwrap().lines().count(),
        2,
        "booted twice"
    );
    let console = std::fs::read_to_string(out.join("runs/tiny/5.10/console.log")).unwrap();
    assert!(console.contains("stand-in fault"));
    assert!(out.join("runs/tiny/5.10/console.attempt1.log").is_file());
    assert!(
        out.join("index.html").is_file(),
        "the report is written even when runs fail"
    );
}

#[test]
fn a_hung_guest_is_killed_at_its_deadline() {
    let scratch = tempfile::tempdir().unwrap();
    let pid_file = scratch.path().join("pid");
    let qemu = fake_qemu(
        scratch.path(),
        &format!(
            "echo $$ > {}\necho 'hanging'\nexec sleep 600",
            pid_file.display()
        ),
    );
    let out = scratch.path().join("out");
    let started = std::time::Instant::now();
    let (output, run) = run_tiny(&qemu, &out);
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(run["outcome"], "vm-timeout");
    assert!(started.elapsed().as_secs() < 60, "the 8s deadline was kept");
    let pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_owned();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    assert!(
        status.is_empty() || status.contains("State:\tZ"),
        "the stand-in QEMU (pid {pid}) outlived the runner: {status}"
    );
    let console = std::fs::read_to_string(out.join("runs/tiny/5.10/console.log")).unwrap();
    assert!(console.contains("hanging"));
}

#[test]
fn a_guest_that_never_speaks_is_an_infra_error() {
    let scratch = tempfile::tempdir().unwrap();
    let qemu = fake_qemu(scratch.path(), "echo 'booted, said nothing'\nexit 0");
    let out = scratch.path().join("out");
    let (output, run) = run_tiny(&qemu, &out);
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(run["outcome"], "infra-error");
    assert!(
        run["reason"].as_str().unwrap().contains("no verdict"),
        "{}",
        run["reason"]
    );
}
