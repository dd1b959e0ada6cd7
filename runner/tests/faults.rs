//! Infrastructure faults, each really happening, and what a lab does with them.
//!
//! Real guests (Debian's 6.1 under TCG, a 2s scenario) fail on purpose through the fault hook
//! (`RSSLAB_FAULT`: the kernel really panics, the agent really aborts, the channel really
//! carries garbage or stops mid-line, the agent really hangs); the tests kill a real QEMU, send
//! the runner SIGINT, SIGTERM and SIGKILL, fill the output disk and damage the cached kernel.
//! Each checks the same things: the other runs of the lab go on, finished runs' raw records
//! stay intact and `rsslab report` works on them, the report says what happened, no QEMU and
//! no temporary file is left behind, and `rsslab run --resume` finishes only what is missing.
//! A few cheap cases use a stand-in QEMU script instead (`RSSLAB_QEMU`). They need the kernels
//! in the cache (fetched once) and `just guest`, and run in the serial `vm` group.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::lab::{
    Lab, assert_records_readable, kernel_packages, local_archive, read_json, scenario, wait_until,
};

/// How long a lab of a few short runs may take under TCG on a busy machine.
const LAB_DEADLINE: Duration = Duration::from_secs(240);
/// How long until a run's guest is up, or its record is written.
const RUN_DEADLINE: Duration = Duration::from_secs(90);

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Resumes the lab and checks that it ran exactly `rerun` again (now `ok`), kept `kept`
/// byte for byte, and left nothing behind.
fn assert_resume_finishes(lab: &Lab, kept: &[&str], rerun: &[&str]) {
    let before: Vec<_> = kept.iter().map(|run| lab.files_of(run)).collect();
    let output = lab.resume(&["--jobs", "2"]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "resume failed: {text}");
    let total = kept.len() + rerun.len();
    assert!(
        text.contains(&format!(
            "{} of {total} runs finished (kept), {} to run",
            kept.len(),
            rerun.len()
        )),
        "{text}"
    );
    for (run, files) in kept.iter().zip(before) {
        assert_eq!(lab.files_of(run), files, "{run} was touched by the resume");
    }
    for run in rerun {
        let record = lab.run_json(run);
        assert_eq!(record["outcome"], "ok", "{run}: {}", record["reason"]);
        assert_eq!(record["attempts"], 1, "{run}");
    }
    let results = read_json(&lab.out.join("results.json"));
    assert_eq!(results["runs"].as_array().unwrap().len(), total);
    lab.assert_nothing_left();
}

/// `runs/<id>/6.1/CASE=<case>`.
fn run_of(id: &str, case: &str) -> String {
    format!("{id}/6.1/CASE={case}")
}

/// A fault lab: `cases` as variants (`CASE=<case>`), `faults` as `RSSLAB_FAULT` entries by
/// case; returns the lab, the scenario path and the runner's output.
fn fault_lab(
    id: &str,
    vm_extra: &str,
    cases: &[&str],
    faults: &[(&str, &str)],
    jobs: &str,
) -> (Lab, PathBuf, std::process::Output) {
    let lab = Lab::new();
    let values: Vec<String> = cases.iter().map(|case| format!("{case:?}")).collect();
    let text = scenario(
        id,
        vm_extra,
        &format!("\"process.service.env.CASE\" = [{}]", values.join(", ")),
    );
    let path = lab.scenario(&format!("{id}.toml"), &text);
    let fault: Vec<String> = faults
        .iter()
        .map(|(case, fault)| format!("{}:{fault}", run_of(id, case)))
        .collect();
    let output = lab.run(
        &path,
        &["--jobs", jobs],
        &[("RSSLAB_FAULT", &fault.join(";"))],
    );
    (lab, path, output)
}

/// Asserts a run's outcome, that its reason contains `reason`, and that the report shows both.
fn assert_outcome(lab: &Lab, run: &str, outcome: &str, reason: &str) -> Value {
    let record = lab.run_json(run);
    assert_eq!(record["outcome"], outcome, "{run}: {}", record["reason"]);
    let said = record["reason"].as_str().unwrap_or_default();
    assert!(said.contains(reason), "{run}: reason {said:?}");
    let result = lab.result(run);
    assert_eq!(result["outcome"], outcome, "results.json of {run}");
    assert_eq!(result["reason"], record["reason"], "results.json of {run}");
    lab.assert_report_says(&[outcome, reason]);
    record
}

#[test]
fn a_guest_kernel_panic_is_retried_once_then_recorded_and_resumed() {
    let id = "panic";
    let (lab, _, output) = fault_lab(id, "", &["panic", "control"], &[("panic", "panic@1s")], "2");
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let panicked = run_of(id, "panic");
    let record = assert_outcome(&lab, &panicked, "kernel-panic", "sysrq triggered crash");
    assert_eq!(record["attempts"], 2, "a kernel fault is retried once");
    assert!(
        record["reason"]
            .as_str()
            .unwrap()
            .contains("fault injected on purpose: panic@1s")
    );
    let first = std::fs::read_to_string(
        lab.out
            .join("runs")
            .join(&panicked)
            .join("console.attempt1.log"),
    )
    .unwrap();
    assert!(first.contains("Kernel panic - not syncing: sysrq triggered crash"));
    let control = run_of(id, "control");
    assert_outcome(&lab, &control, "ok", "");
    assert_records_readable(&lab.out.join("runs").join(&control));
    lab.assert_nothing_left();
    assert_resume_finishes(&lab, &[&control], &[&panicked]);
}

#[test]
fn a_hung_guest_is_killed_at_its_deadline_as_vm_timeout_and_resumed() {
    let lab = Lab::new();
    let id = "hang";
    let text = scenario(id, "", "\"vm.timeout\" = [\"15s\", \"60s\"]");
    let path = lab.scenario("hang.toml", &text);
    let hung = format!("{id}/6.1/timeout=15s");
    let control = format!("{id}/6.1/timeout=60s");
    let output = lab.run(
        &path,
        &["--jobs", "2"],
        &[("RSSLAB_FAULT", &format!("{hung}:hang@1s"))],
    );
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let record = assert_outcome(&lab, &hung, "vm-timeout", "no end within the deadline");
    let wall = record["timing"]["wall_ms"].as_u64().unwrap();
    assert!(
        (15_000..25_000).contains(&wall),
        "killed at the 15s deadline, after {wall}ms"
    );
    let samples = support::samples_of(&lab.out.join("runs").join(&hung));
    assert!(!samples.is_empty(), "it sampled before it hung");
    assert!(
        samples.iter().all(|s| s["t_ms"].as_u64().unwrap() < 1500),
        "nothing after the hang at 1s: {samples:?}"
    );
    assert_outcome(&lab, &control, "ok", "");
    lab.assert_nothing_left();
    assert_resume_finishes(&lab, &[&control], &[&hung]);
}

#[test]
fn a_crashed_or_killed_qemu_is_an_infra_error_and_the_lab_goes_on() {
    let lab = Lab::new();
    let id = "qemu-dies";
    let text = scenario(
        id,
        "",
        "\"process.service.env.CASE\" = [\"segv\", \"kill\", \"control\"]",
    );
    let path = lab.scenario("qemu.toml", &text);
    let runner = lab.spawn(&path, &["--jobs", "1"], &[]);
    let (segv, kill, control) = (
        run_of(id, "segv"),
        run_of(id, "kill"),
        run_of(id, "control"),
    );
    for (run, signal) in [(&segv, libc::SIGSEGV), (&kill, libc::SIGKILL)] {
        lab.wait_for_agent(run, RUN_DEADLINE);
        let qemu = lab.qemu_pid(RUN_DEADLINE);
        // SAFETY: a signal to the QEMU of this lab (found by its environment).
        assert_eq!(unsafe { libc::kill(qemu, signal) }, 0);
        lab.wait_for_record(run, RUN_DEADLINE);
    }
    let (status, text) = runner.wait(LAB_DEADLINE);
    assert_eq!(status.code(), Some(3), "{text}");
    assert_outcome(
        &lab,
        &segv,
        "infra-error",
        "QEMU died of signal 11 (SIGSEGV)",
    );
    assert_outcome(
        &lab,
        &kill,
        "infra-error",
        "QEMU died of signal 9 (SIGKILL)",
    );
    assert_outcome(&lab, &control, "ok", "");
    for run in [&segv, &kill] {
        let console = std::fs::read_to_string(lab.out.join("runs").join(run).join("console.log"));
        assert!(
            console.unwrap().contains("Run /init as init process"),
            "{run}"
        );
    }
    lab.assert_nothing_left();
    assert_resume_finishes(&lab, &[&control], &[&segv, &kill]);
}

#[test]
fn an_agent_crash_mid_run_is_an_infra_error_and_resumed() {
    let id = "agent-crash";
    let (lab, _, output) = fault_lab(
        id,
        "",
        &["crash", "control"],
        &[("crash", "agent-crash@1s")],
        "2",
    );
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let crashed = run_of(id, "crash");
    let record = assert_outcome(
        &lab,
        &crashed,
        "infra-error",
        "the guest agent (PID 1) died",
    );
    assert_eq!(
        record["attempts"], 1,
        "our bug, not the kernel's: not retried"
    );
    assert!(
        !support::samples_of(&lab.out.join("runs").join(&crashed)).is_empty(),
        "the samples before the crash are kept"
    );
    let control = run_of(id, "control");
    assert_outcome(&lab, &control, "ok", "");
    lab.assert_nothing_left();
    assert_resume_finishes(&lab, &[&control], &[&crashed]);
}

#[test]
fn garbage_or_a_line_cut_short_on_the_channel_is_an_infra_error_and_resumed() {
    let id = "channel";
    let (lab, _, output) = fault_lab(
        id,
        "",
        &["garbage", "cut", "control"],
        &[("garbage", "garbage@1s"), ("cut", "cut@1s")],
        "2",
    );
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let garbage = run_of(id, "garbage");
    let record = assert_outcome(&lab, &garbage, "infra-error", "unparseable channel line");
    assert_eq!(
        record["processes"]["service"]["outcome"], "running-at-end",
        "the guest went on to its verdict; the garbage alone spoils the run"
    );
    let cut = run_of(id, "cut");
    let record = assert_outcome(&lab, &cut, "infra-error", "EOF while parsing");
    assert_eq!(record["processes"], serde_json::json!({}), "no verdict");
    let control = run_of(id, "control");
    assert_outcome(&lab, &control, "ok", "");
    lab.assert_nothing_left();
    assert_resume_finishes(&lab, &[&control], &[&garbage, &cut]);
}

/// Stops a lab of `cases` with `signal` while the second run is in flight.
fn stop_mid_lab(id: &str, cases: &[&str], signal: i32) -> Lab {
    let lab = Lab::new();
    let values: Vec<String> = cases.iter().map(|case| format!("{case:?}")).collect();
    let text = scenario(
        id,
        "disk = \"32MiB\"",
        &format!("\"process.service.env.CASE\" = [{}]", values.join(", ")),
    );
    let path = lab.scenario("stop.toml", &text);
    let runner = lab.spawn(&path, &["--jobs", "1"], &[]);
    lab.wait_for_record(&run_of(id, cases[0]), RUN_DEADLINE);
    lab.wait_for_agent(&run_of(id, cases[1]), RUN_DEADLINE);
    runner.signal(signal);
    let (status, text) = runner.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(3), "{text}");
    assert!(text.contains("interrupted"), "{text}");
    lab
}

#[test]
fn sigint_mid_lab_keeps_finished_runs_records_the_rest_and_resume_runs_them() {
    let id = "sigint";
    let lab = stop_mid_lab(id, &["first", "second", "third"], libc::SIGINT);
    let (first, second, third) = (
        run_of(id, "first"),
        run_of(id, "second"),
        run_of(id, "third"),
    );
    assert_outcome(&lab, &first, "ok", "");
    assert_records_readable(&lab.out.join("runs").join(&first));
    assert_outcome(&lab, &second, "infra-error", "interrupted");
    assert_outcome(
        &lab,
        &third,
        "infra-error",
        "not started: the lab was interrupted",
    );
    assert!(
        !lab.out
            .join("runs")
            .join(&third)
            .join("console.log")
            .exists(),
        "no run starts after the stop"
    );
    lab.assert_nothing_left();
    assert_resume_finishes(&lab, &[&first], &[&second, &third]);
}

#[test]
fn sigterm_mid_lab_keeps_finished_runs_and_resume_runs_the_rest() {
    let id = "sigterm";
    let lab = stop_mid_lab(id, &["first", "second"], libc::SIGTERM);
    let (first, second) = (run_of(id, "first"), run_of(id, "second"));
    assert_outcome(&lab, &first, "ok", "");
    assert_outcome(&lab, &second, "infra-error", "interrupted");
    lab.assert_nothing_left();
    assert_resume_finishes(&lab, &[&first], &[&second]);
}

#[test]
fn a_sigkilled_runner_leaves_no_half_record_nothing_behind_and_resume_finishes() {
    let lab = Lab::new();
    let id = "sigkill";
    let text = scenario(
        id,
        "disk = \"32MiB\"",
        "\"process.service.env.CASE\" = [\"first\", \"second\"]",
    );
    let path = lab.scenario("sigkill.toml", &text);
    let runner = lab.spawn(&path, &["--jobs", "1"], &[]);
    let (first, second) = (run_of(id, "first"), run_of(id, "second"));
    lab.wait_for_record(&first, RUN_DEADLINE);
    lab.wait_for_agent(&second, RUN_DEADLINE);
    runner.signal(libc::SIGKILL);
    let (status, _) = runner.wait(Duration::from_secs(30));
    assert_eq!(status.code(), None, "killed");
    // QEMU dies with the runner; its socket pair and unlinked scratch disk go with it.
    lab.assert_nothing_left();
    assert!(
        lab.out
            .join("runs")
            .join(&second)
            .join("console.log")
            .is_file()
    );
    assert!(
        !lab.out.join("runs").join(&second).join("run.json").exists(),
        "a run cut short has no record"
    );
    assert_records_readable(&lab.out.join("runs").join(&first));
    lab.assert_report_says(&["ok"]);
    assert_resume_finishes(&lab, &[&first], &[&second]);
}

/// A tmpfs mounted on a directory for the life of the guard.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).unwrap();
        let output = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|error| error.to_string())?;
        if !output.status.success() {
            return Err(stderr(&output));
        }
        Ok(Tmpfs(dir.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Fills the file system of `dir` to the last byte with `dir/filler`.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    for chunk in [1 << 20, 4096, 1] {
        let block = vec![0xa5u8; chunk];
        while file.write_all(&block).is_ok() {}
    }
    path
}

#[test]
fn a_full_output_disk_fails_the_lab_clearly_keeps_what_was_written_and_resume_finishes_as_root() {
    let lab = Lab::new();
    let mount = Tmpfs::mount(&lab.out, "8m").unwrap_or_else(|why| {
        panic!(
            "cannot mount a tmpfs for --out: {why}; {}",
            support::lab::AS_ROOT
        )
    });
    let id = "disk-full";
    let text = scenario(
        id,
        "",
        "\"process.service.env.CASE\" = [\"first\", \"second\", \"third\"]",
    );
    let path = lab.scenario("full.toml", &text);
    let runner = lab.spawn(&path, &["--jobs", "1"], &[]);
    let (first, second, third) = (
        run_of(id, "first"),
        run_of(id, "second"),
        run_of(id, "third"),
    );
    lab.wait_for_record(&first, RUN_DEADLINE);
    lab.wait_for_agent(&second, RUN_DEADLINE);
    let filler = fill(&lab.out);
    let (status, text) = runner.wait(LAB_DEADLINE);
    assert_eq!(status.code(), Some(3), "{text}");
    assert!(
        text.contains("is full") && text.contains("No space left on device"),
        "{text}"
    );
    assert!(
        text.contains("rsslab run --resume"),
        "says what to do: {text}"
    );
    assert_records_readable(&lab.out.join("runs").join(&first));
    assert!(!lab.out.join("runs").join(&second).join("run.json").exists());
    assert!(
        !lab.out
            .join("runs")
            .join(&third)
            .join("console.log")
            .exists(),
        "no run starts once the disk is full"
    );
    lab.assert_nothing_left();

    std::fs::remove_file(filler).unwrap();
    lab.assert_report_says(&["ok"]);
    assert_eq!(lab.result(&first)["outcome"], "ok");
    assert_resume_finishes(&lab, &[&first], &[&second, &third]);
    drop(mount);
}

/// A lab whose private cache holds kernel 6.1's package damaged by `damage`, fetching from
/// `archive` (a directory); returns the lab, its cache, the damaged file and the output.
fn lab_with_damaged_kernel(
    damage: fn(Vec<u8>) -> Vec<u8>,
    archive: &dyn Fn(&Path) -> PathBuf,
) -> (Lab, PathBuf, PathBuf, std::process::Output) {
    let mut lab = Lab::new();
    let cache = lab.root().join("cache");
    let [(package, cached)] = <[_; 1]>::try_from(kernel_packages("6.1")).unwrap();
    let bytes = damage(std::fs::read(cached).unwrap());
    let damaged =
        cache
            .join("downloads")
            .join(format!("{}-{}", package.sha256, package.file_name()));
    std::fs::create_dir_all(damaged.parent().unwrap()).unwrap();
    std::fs::write(&damaged, &bytes).unwrap();
    let mirror = archive(lab.root());
    lab.env("RSSLAB_CACHE_DIR", cache.display().to_string());
    lab.env(
        "RSSLAB_DEBIAN_MIRROR",
        format!("file://{}", mirror.display()),
    );
    let text = scenario("cache", "", "\"process.service.env.CASE\" = [\"only\"]");
    let path = lab.scenario("cache.toml", &text);
    let output = lab.run(&path, &[], &[]);
    (lab, cache, damaged, output)
}

fn truncate(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes.truncate(bytes.len() / 2);
    bytes
}

fn tamper(mut bytes: Vec<u8>) -> Vec<u8> {
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    bytes
}

#[test]
fn a_truncated_or_tampered_cached_kernel_is_never_used_and_without_an_archive_the_lab_says_so() {
    for (what, damage) in [
        ("truncated", truncate as fn(Vec<u8>) -> Vec<u8>),
        ("tampered", tamper),
    ] {
        let (lab, cache, damaged, output) =
            lab_with_damaged_kernel(damage, &|root| root.join("no-archive"));
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(3), "{what}: {text}");
        assert!(
            text.contains("is damaged, fetching it again"),
            "{what}: {text}"
        );
        let expected = match what {
            "truncated" => "bytes, the catalogue pins",
            _ => "sha256 mismatch",
        };
        assert!(text.contains(expected), "{what}: says why: {text}");
        assert!(
            text.contains("no-archive/pool/") && text.contains("preparing kernel 6.1"),
            "{what}: names what it tried: {text}"
        );
        assert!(!damaged.exists(), "{what}: the damaged file was removed");
        let unpacked = std::fs::read_dir(cache.join("kernels"))
            .map(|entries| entries.count())
            .unwrap_or(0);
        assert_eq!(unpacked, 0, "{what}: nothing unpacked from it");
        assert!(!lab.out.join("runs").exists(), "{what}: nothing booted");
        lab.assert_nothing_left();
    }
}

#[test]
fn a_tampered_cached_kernel_is_fetched_again_verified_and_booted() {
    let (lab, _, damaged, output) = lab_with_damaged_kernel(tamper, &|root| {
        let archive = root.join("archive");
        local_archive(&archive, "6.1");
        archive
    });
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("is damaged, fetching it again"), "{text}");
    let [(package, _)] = <[_; 1]>::try_from(kernel_packages("6.1")).unwrap();
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(std::fs::read(&damaged).unwrap()));
    assert_eq!(
        digest, package.sha256,
        "the cache holds the pinned package again"
    );
    let record = lab.run_json("cache/6.1/CASE=only");
    assert_eq!(record["outcome"], "ok", "{}", record["reason"]);
    assert_eq!(
        record["provenance"]["kernel_packages"][0]["sha256"],
        package.sha256.as_str()
    );
    lab.assert_nothing_left();
}

// Stand-in QEMU cases: what a real guest would add nothing to.

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

fn tiny() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vm/tiny.toml")
}

fn run_tiny(lab: &Lab, qemu: &Path) -> (std::process::Output, Value) {
    let output = lab.run(&tiny(), &[], &[("RSSLAB_QEMU", qemu.to_str().unwrap())]);
    let run_json = lab.out.join("runs/tiny/5.10/run.json");
    assert!(
        run_json.is_file(),
        "no run.json; stderr: {}",
        stderr(&output)
    );
    (output, read_json(&run_json))
}

#[test]
fn a_kernel_panic_is_retried_once_and_recorded() {
    let lab = Lab::new();
    let count = lab.root().join("boots");
    let qemu = fake_qemu(
        lab.root(),
        &format!(
            "echo boot >> {}\necho '[    1.0] Kernel panic - not syncing: stand-in fault'\nexit 0",
            count.display()
        ),
    );
    let (output, run) = run_tiny(&lab, &qemu);
    assert_eq!(output.status.code(), Some(3), "infrastructure exit code");
    assert_eq!(run["outcome"], "kernel-panic");
    assert_eq!(run["attempts"], 2);
    assert_eq!(
        std::fs::read_to_string(&count).unwrap().lines().count(),
        2,
        "booted twice"
    );
    let console = std::fs::read_to_string(lab.out.join("runs/tiny/5.10/console.log")).unwrap();
    assert!(console.contains("stand-in fault"));
    assert!(
        lab.out
            .join("runs/tiny/5.10/console.attempt1.log")
            .is_file()
    );
    assert!(
        lab.out.join("index.html").is_file(),
        "the report is written even when runs fail"
    );
    lab.assert_nothing_left();
}

#[test]
fn a_hung_stand_in_is_killed_at_its_deadline() {
    let lab = Lab::new();
    let qemu = fake_qemu(lab.root(), "echo 'hanging'\nexec sleep 600");
    let started = std::time::Instant::now();
    let (output, run) = run_tiny(&lab, &qemu);
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(run["outcome"], "vm-timeout");
    assert!(started.elapsed().as_secs() < 60, "the 8s deadline was kept");
    let console = std::fs::read_to_string(lab.out.join("runs/tiny/5.10/console.log")).unwrap();
    assert!(console.contains("hanging"));
    lab.assert_nothing_left();
}

#[test]
fn a_guest_that_never_speaks_is_an_infra_error() {
    let lab = Lab::new();
    let qemu = fake_qemu(lab.root(), "echo 'booted, said nothing'\nexit 0");
    let (output, run) = run_tiny(&lab, &qemu);
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(run["outcome"], "infra-error");
    assert!(
        run["reason"].as_str().unwrap().contains("no verdict"),
        "{}",
        run["reason"]
    );
    lab.assert_nothing_left();
}

/// Starts `rsslab run` on the tiny scenario with a stand-in QEMU that hangs, and waits until
/// the stand-in runs.
fn start_hanging_lab(lab: &Lab) -> support::lab::Runner {
    let qemu = fake_qemu(lab.root(), "echo 'hanging'\nexec sleep 600");
    let runner = lab.spawn(&tiny(), &[], &[("RSSLAB_QEMU", qemu.to_str().unwrap())]);
    wait_until(Duration::from_secs(60), "the stand-in QEMU", || {
        let console = lab.out.join("runs/tiny/5.10/console.log");
        std::fs::read_to_string(console)
            .ok()
            .filter(|text| text.contains("hanging"))
    });
    runner
}

#[test]
fn sigint_stops_a_stand_in_lab_kills_qemu_and_keeps_the_record() {
    let lab = Lab::new();
    let runner = start_hanging_lab(&lab);
    runner.signal(libc::SIGINT);
    let (status, text) = runner.wait(Duration::from_secs(30));
    assert_eq!(status.code(), Some(3), "interrupted is exit 3: {text}");
    lab.assert_nothing_left();
    let run = read_json(&lab.out.join("runs/tiny/5.10/run.json"));
    assert_eq!(run["outcome"], "infra-error");
    assert!(
        run["reason"].as_str().unwrap().contains("interrupted"),
        "{}",
        run["reason"]
    );
    assert!(lab.out.join("runs/tiny/5.10/console.log").is_file());
}

#[test]
fn qemu_dies_with_a_runner_killed_by_sigkill() {
    let lab = Lab::new();
    let runner = start_hanging_lab(&lab);
    runner.signal(libc::SIGKILL);
    let (status, _) = runner.wait(Duration::from_secs(30));
    assert_eq!(status.code(), None);
    lab.assert_nothing_left();
}
