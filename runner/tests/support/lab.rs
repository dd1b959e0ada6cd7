//! A lab in a temporary directory for the fault and security tests: its own `$TMPDIR`, output
//! directory and scenario files, `rsslab` run or spawned (and owned) with them, and the checks
//! every fault test ends with: nothing left behind, records readable, the report says what
//! happened.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The environment variable that tags every process a lab starts (QEMU inherits it), so that
/// leftovers are found by tag, not by name: other labs may run on the same machine.
const TAG: &str = "RSSLAB_TEST_LAB";

/// Polling interval of [`wait_until`].
const POLL: Duration = Duration::from_millis(50);

/// A scenario for fault tests: one short heap-churn on 6.1 in a 256MiB guest, a 60s deadline,
/// `vm_extra` lines in `[vm]`, and `matrix` (one or more `[matrix]` lines) for its variants.
pub fn scenario(id: &str, vm_extra: &str, matrix: &str) -> String {
    format!(
        r#"# A fault test's lab: one short run per variant.
[scenario]
id = "{id}"
title = "fault test {id}"

[vm]
kernels = ["6.1"]
memory = "256MiB"
timeout = "60s"
{vm_extra}

[sample]
every = "250ms"
duration = "2s"

[[process]]
name = "service"
workload = "heap-churn"
args = {{ heap = "8MiB" }}

[matrix]
{matrix}
"#
    )
}

/// One lab's temporary world.
pub struct Lab {
    root: tempfile::TempDir,
    /// `--out`.
    pub out: PathBuf,
    /// The runner's `$TMPDIR`: must be empty whenever the runner is not running.
    pub tmp: PathBuf,
    env: Vec<(String, String)>,
}

impl Lab {
    pub fn new() -> Lab {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        let tmp = root.path().join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let tag = root.path().display().to_string();
        Lab {
            root,
            out,
            tmp,
            env: vec![(TAG.into(), tag)],
        }
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Sets an environment variable for every later command.
    pub fn env(&mut self, key: &str, value: impl Into<String>) {
        self.env.push((key.into(), value.into()));
    }

    /// Writes a scenario file into the lab's directory.
    pub fn scenario(&self, name: &str, text: &str) -> PathBuf {
        let path = self.root().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `rsslab ARGS` with the lab's environment and `extra`.
    pub fn command<S: AsRef<OsStr>>(&self, args: &[S], extra: &[(&str, &str)]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rsslab"));
        command
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("TMPDIR", &self.tmp)
            .env_remove("RSSLAB_FAULT");
        for (key, value) in &self.env {
            command.env(key, value);
        }
        for (key, value) in extra {
            command.env(key, value);
        }
        command
    }

    /// `rsslab ARGS` as user `uid` (group `uid` too, no others) through `setpriv`, with a
    /// clean environment as a login would give: `PATH`, `HOME=/nonexistent`, the lab's
    /// `$TMPDIR` and variables, and `extra`.
    pub fn command_as<S: AsRef<OsStr>>(
        &self,
        uid: u32,
        args: &[S],
        extra: &[(&str, &str)],
    ) -> Command {
        let mut command = Command::new("setpriv");
        command
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={uid}"))
            .args(["--clear-groups", "--", "env", "-i"])
            .arg("PATH=/usr/local/bin:/usr/bin:/bin")
            .arg("HOME=/nonexistent")
            .arg(format!("TMPDIR={}", self.tmp.display()));
        for (key, value) in self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(extra.iter().copied())
        {
            command.arg(format!("{key}={value}"));
        }
        command
            .arg(env!("CARGO_BIN_EXE_rsslab"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        command
    }

    /// `rsslab run SCENARIO --out OUT --accel tcg ARGS` to its end.
    pub fn run(&self, scenario: &Path, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let mut all = vec![
            "run",
            scenario.to_str().unwrap(),
            "--out",
            self.out.to_str().unwrap(),
            "--accel",
            "tcg",
        ];
        all.extend(args);
        self.command(&all, extra).output().unwrap()
    }

    /// `rsslab run --resume OUT --accel tcg` to its end (no fault injected).
    pub fn resume(&self, args: &[&str]) -> Output {
        let mut all = vec![
            "run",
            "--resume",
            self.out.to_str().unwrap(),
            "--accel",
            "tcg",
        ];
        all.extend(args);
        self.command(&all, &[]).output().unwrap()
    }

    /// `rsslab run ...` started in the background, owned by the returned guard.
    pub fn spawn(&self, scenario: &Path, args: &[&str], extra: &[(&str, &str)]) -> Runner {
        let mut all = vec![
            "run",
            scenario.to_str().unwrap(),
            "--out",
            self.out.to_str().unwrap(),
            "--accel",
            "tcg",
        ];
        all.extend(args);
        let stderr = self.root().join("runner.stderr");
        let child = self
            .command(&all, extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        Runner {
            child: Some(child),
            stderr,
        }
    }

    /// `runs/<run>/run.json`, parsed.
    pub fn run_json(&self, run: &str) -> Value {
        read_json(&self.out.join("runs").join(run).join("run.json"))
    }

    /// `results.json`'s run in `runs/<run>`.
    pub fn result(&self, run: &str) -> Value {
        let results = read_json(&self.out.join("results.json"));
        let dir = format!("runs/{run}");
        results["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|result| result["dir"] == dir.as_str())
            .unwrap_or_else(|| panic!("{dir} not in results.json: {results:#}"))
            .clone()
    }

    /// Every file of a run directory (not its subdirectories), by name.
    pub fn files_of(&self, run: &str) -> BTreeMap<String, Vec<u8>> {
        let dir = self.out.join("runs").join(run);
        std::fs::read_dir(&dir)
            .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
            .map(|entry| entry.unwrap())
            .filter(|entry| entry.file_type().unwrap().is_file())
            .map(|entry| {
                (
                    entry.file_name().to_string_lossy().into_owned(),
                    std::fs::read(entry.path()).unwrap(),
                )
            })
            .collect()
    }

    /// Asserts that the runner left nothing: no process of this lab, an empty `$TMPDIR`, no
    /// temporary file in the output directory.
    pub fn assert_nothing_left(&self) {
        let tag = &self.env[0].1;
        let leftovers = wait_for(Duration::from_secs(10), || {
            let found = processes_tagged(tag);
            found.is_empty().then_some(()).ok_or(found)
        });
        if let Err(found) = leftovers {
            panic!("processes of the lab outlived it: {found:?}");
        }
        let in_tmp: Vec<_> = std::fs::read_dir(&self.tmp)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        assert!(in_tmp.is_empty(), "left in $TMPDIR: {in_tmp:?}");
        let temporary = temporary_files(&self.out);
        assert!(
            temporary.is_empty(),
            "temporary files in --out: {temporary:?}"
        );
    }

    /// The one process of this lab whose command is QEMU, once there is one.
    pub fn qemu_pid(&self, deadline: Duration) -> i32 {
        let tag = self.env[0].1.clone();
        wait_until(deadline, "a QEMU of the lab", || {
            let qemus: Vec<i32> = processes_tagged(&tag)
                .into_iter()
                .filter(|(_, command)| command.contains("qemu-system-x86_64"))
                .map(|(pid, _)| pid)
                .collect();
            match qemus.as_slice() {
                [pid] => Some(*pid),
                [] => None,
                more => panic!("more than one QEMU at once: {more:?}"),
            }
        })
    }

    /// Waits until the guest of `run` has started its agent (the kernel said so on the
    /// console): its VM is in flight.
    pub fn wait_for_agent(&self, run: &str, deadline: Duration) {
        let console = self.out.join("runs").join(run).join("console.log");
        wait_until(deadline, &format!("{run}'s agent to start"), || {
            std::fs::read_to_string(&console)
                .ok()
                .filter(|text| text.contains("Run /init as init process"))
        });
    }

    /// Waits until `run` has its record (it finished).
    pub fn wait_for_record(&self, run: &str, deadline: Duration) {
        let record = self.out.join("runs").join(run).join("run.json");
        wait_until(deadline, &format!("{run}'s run.json"), || {
            record.is_file().then_some(())
        });
    }

    /// `rsslab report OUT` works on what the lab left, and the report shows each of `says`
    /// (outcome and reason texts).
    pub fn assert_report_says(&self, says: &[&str]) {
        let output = self
            .command(&["report", self.out.to_str().unwrap()], &[])
            .output()
            .unwrap();
        assert!(
            output.status.code().is_some_and(|code| code <= 1),
            "rsslab report failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let html = std::fs::read_to_string(self.out.join("index.html")).unwrap();
        for text in says {
            assert!(html.contains(text), "index.html does not say {text:?}");
        }
    }
}

/// A spawned `rsslab run`, killed and reaped when dropped.
pub struct Runner {
    child: Option<Child>,
    stderr: PathBuf,
}

impl Runner {
    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// Sends `signal` to the runner.
    pub fn signal(&self, signal: i32) {
        // SAFETY: a signal to a child we own and have not reaped.
        assert_eq!(unsafe { libc::kill(self.pid(), signal) }, 0);
    }

    /// Waits for the runner to exit, up to `deadline` (then it is killed and the test fails).
    pub fn wait(mut self, deadline: Duration) -> (ExitStatus, String) {
        let mut child = self.child.take().unwrap();
        let status = wait_for(deadline, || child.try_wait().unwrap().ok_or(()));
        let status = status.unwrap_or_else(|()| {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "rsslab did not exit within {deadline:?}: {}",
                std::fs::read_to_string(&self.stderr).unwrap_or_default()
            )
        });
        (status, std::fs::read_to_string(&self.stderr).unwrap())
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `check` until it gives a value, up to `deadline`; the last miss is the error.
pub fn wait_for<T, E>(deadline: Duration, mut check: impl FnMut() -> Result<T, E>) -> Result<T, E> {
    let until = Instant::now() + deadline;
    loop {
        match check() {
            Ok(value) => return Ok(value),
            Err(miss) if Instant::now() >= until => return Err(miss),
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// Polls `check` until it gives a value; panics naming `what` after `deadline`.
pub fn wait_until<T>(deadline: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    wait_for(deadline, || check().ok_or(()))
        .unwrap_or_else(|()| panic!("no {what} within {deadline:?}"))
}

pub fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Asserts that `run_dir`'s raw records read: run.json, every samples.jsonl line, console.log.
pub fn assert_records_readable(run_dir: &Path) {
    let record = read_json(&run_dir.join("run.json"));
    assert!(record["outcome"].is_string(), "{record:#}");
    let samples = std::fs::read_to_string(run_dir.join("samples.jsonl")).unwrap();
    for line in samples.lines() {
        serde_json::from_str::<Value>(line)
            .unwrap_or_else(|error| panic!("{}: {line}: {error}", run_dir.display()));
    }
    let console = std::fs::read_to_string(run_dir.join("console.log")).unwrap();
    assert!(console.contains("Linux version"), "{}", run_dir.display());
}

/// Live processes (not zombies) whose environment carries `TAG=tag`: pid and command line.
fn processes_tagged(tag: &str) -> Vec<(i32, String)> {
    let wanted = format!("{TAG}={tag}");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ
            .split(|byte| *byte == 0)
            .any(|var| var == wanted.as_bytes())
        {
            let command = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let command = String::from_utf8_lossy(&command).replace('\0', " ");
            found.push((pid, command));
        }
    }
    found
}

/// Files under `dir` named like the temporary files of atomic writes.
fn temporary_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(temporary_files(&path));
        } else if entry.file_name().to_string_lossy().starts_with(".tmp") {
            found.push(path);
        }
    }
    found
}

/// The packages of catalogue kernel `id`, each with its verified file in the user's cache
/// (fetched from the host's Debian archive if it is not there yet).
pub fn kernel_packages(id: &str) -> Vec<(rsslab::catalogue::KernelPackage, PathBuf)> {
    let catalogue =
        rsslab::catalogue::load_catalogue(&rsslab::catalogue::default_catalogue_path()).unwrap();
    let cache = rsslab::supply::cache::Cache::default_location().unwrap();
    let base = rsslab::supply::fetch::archive_base_url().unwrap_or_default();
    catalogue
        .get(id)
        .unwrap()
        .packages
        .iter()
        .map(|package| {
            let path = rsslab::supply::fetch::fetch_verified(&cache, &base, package)
                .unwrap_or_else(|error| panic!("fetching {}: {error:#}", package.name));
            (package.clone(), path)
        })
        .collect()
}

/// A local Debian archive at `dir` holding kernel `id`'s packages (world-readable copies) at
/// their pool paths, for `RSSLAB_DEBIAN_MIRROR=file://<dir>`.
/// What a test whose name ends `_as_root` says when it is not root.
pub const AS_ROOT: &str = "this test needs root: run it as root, or leave the tests that do out \
     with -E '!test(/_as_root$/)' (`just test` does so for other users: nextest reports them as \
     skipped)";

pub fn local_archive(dir: &Path, id: &str) {
    use std::os::unix::fs::PermissionsExt;
    for (package, cached) in kernel_packages(id) {
        let path = dir.join(&package.filename);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::copy(&cached, &path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
}
