//! Infrastructure faults with a stand-in for QEMU (`RSSLAB_QEMU`): a kernel panic is retried
//! once and recorded as `kernel-panic`, a hung guest is killed at its deadline, a guest that
//! never speaks is an `infra-error`; every case keeps its console log and exits 3. These need
//! the real kernel in the cache (they build a real image), so they run in the `vm` group.

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use support::rsslab_with_env;

/// Writes an executable stand-in for qemu-system-x86_64 into `dir`: it answers `--version`
/// like QEMU and runs `body` for a boot.
fn fake_qemu(dir: &Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("fake-qemu");
    let version = "if [ \"$1\" = --version ]; then echo 'QEMU emulator version 10.0.0 (stand-in)'; exit 0; fi";
    std::fs::write(&path, format!("#!/bin/bash\n{version}\n{body}\n")).unwrap();
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

/// Waits until `path` exists, up to `deadline`.
fn wait_for_file(path: &Path, deadline: std::time::Duration) -> bool {
    let until = std::time::Instant::now() + deadline;
    while std::time::Instant::now() < until {
        if path.exists() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

/// Whether a process is gone (or a zombie waiting for its parent).
fn gone(pid: &str) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.is_empty() || status.contains("State:\tZ")
}

/// Starts `rsslab run` on the tiny scenario with a stand-in QEMU that hangs, and waits until the
/// stand-in runs; returns the runner and the stand-in's pid.
fn start_hanging_lab(scratch: &Path) -> (std::process::Child, String) {
    let pid_file = scratch.join("pid");
    let qemu = fake_qemu(
        scratch,
        &format!(
            "echo $$ > {}.tmp && mv {0}.tmp {0}\necho 'hanging'\nexec sleep 600",
            pid_file.display()
        ),
    );
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vm/tiny.toml");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_rsslab"))
        .args([
            "run",
            fixture.to_str().unwrap(),
            "--out",
            scratch.join("out").to_str().unwrap(),
            "--accel",
            "tcg",
        ])
        .env("RSSLAB_QEMU", &qemu)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_for_file(&pid_file, std::time::Duration::from_secs(60)),
        "the stand-in QEMU never started"
    );
    let pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_owned();
    (child, pid)
}

/// Waits for `child` to exit, up to `deadline`, killing it past that.
fn wait_child(
    child: &mut std::process::Child,
    deadline: std::time::Duration,
) -> Option<std::process::ExitStatus> {
    let until = std::time::Instant::now() + deadline;
    while std::time::Instant::now() < until {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    None
}

#[test]
fn sigint_stops_the_lab_kills_qemu_and_keeps_the_record() {
    let scratch = tempfile::tempdir().unwrap();
    let (mut runner, qemu_pid) = start_hanging_lab(scratch.path());
    // SAFETY: sending a signal to a child we own.
    unsafe { libc::kill(runner.id() as i32, libc::SIGINT) };
    let status = wait_child(&mut runner, std::time::Duration::from_secs(30))
        .expect("the runner stopped after SIGINT");
    assert_eq!(
        status.code(),
        Some(3),
        "interrupted is an infrastructure exit"
    );
    assert!(gone(&qemu_pid), "QEMU (pid {qemu_pid}) outlived the runner");
    let run: Value = serde_json::from_str(
        &std::fs::read_to_string(scratch.path().join("out/runs/tiny/5.10/run.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(run["outcome"], "infra-error");
    assert!(
        run["reason"].as_str().unwrap().contains("interrupted"),
        "{}",
        run["reason"]
    );
    assert!(
        scratch
            .path()
            .join("out/runs/tiny/5.10/console.log")
            .is_file()
    );
}

#[test]
fn qemu_dies_with_a_runner_killed_by_sigkill() {
    let scratch = tempfile::tempdir().unwrap();
    let (mut runner, qemu_pid) = start_hanging_lab(scratch.path());
    runner.kill().unwrap();
    runner.wait().unwrap();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !gone(&qemu_pid) && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        gone(&qemu_pid),
        "QEMU (pid {qemu_pid}) outlived a SIGKILLed runner"
    );
}
