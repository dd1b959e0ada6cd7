//! What a lab must never do to its host, and what it must do without root, checked with real
//! labs (Debian's 6.1 under TCG):
//!
//! - a scenario's sysctls, `/sys` knobs and cgroup limits are applied inside the guest only:
//!   the host's `/proc/sys/vm/*`, its THP and MGLRU knobs and its cgroups (the settings of the
//!   runner's own cgroups, their children, anything named rsslab) are the same after the lab,
//!   and QEMU runs in the runner's cgroups;
//! - `rsslab run` works as an unprivileged user who owns only its cache, output and temporary
//!   directories (TCG when /dev/kvm is not theirs), and `rsslab doctor` says whether the
//!   current user can run labs.
//!
//! Escaping of scenario text in the report is tested with the report (`runner/src/output/report/`),
//! verification of downloads in `runner/src/supply/fetch.rs` and end to end in `tests/faults.rs`.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::lab::{Lab, local_archive, read_json, scenario};

/// The sysctls the lab's scenario sets in the guest, with values the host is unlikely to have.
const GUEST_SYSCTLS: &[(&str, &str)] = &[
    ("vm.overcommit_memory", "2"),
    ("vm.overcommit_ratio", "77"),
    ("vm.swappiness", "7"),
    ("vm.dirty_ratio", "13"),
];
/// The `/sys` knobs it sets.
const GUEST_SYSFS: &[(&str, &str)] = &[
    ("/sys/kernel/mm/transparent_hugepage/enabled", "always"),
    ("/sys/kernel/mm/transparent_hugepage/defrag", "never"),
];
/// cgroup files that hold settings (not counters), v1 and v2.
const CGROUP_SETTINGS: &[&str] = &[
    "cgroup.subtree_control",
    "cgroup.type",
    "memory.max",
    "memory.high",
    "memory.low",
    "memory.min",
    "memory.swap.max",
    "memory.oom.group",
    "memory.limit_in_bytes",
    "memory.soft_limit_in_bytes",
    "memory.memsw.limit_in_bytes",
    "memory.swappiness",
    "memory.use_hierarchy",
    "pids.max",
];

/// Every readable file under /proc/sys/vm, and the knobs the scenario touches.
fn host_knobs() -> BTreeMap<String, String> {
    let mut knobs = BTreeMap::new();
    for entry in std::fs::read_dir("/proc/sys/vm").unwrap().flatten() {
        if let Ok(value) = std::fs::read_to_string(entry.path()) {
            knobs.insert(entry.path().display().to_string(), value);
        }
    }
    for (path, _) in GUEST_SYSFS {
        if let Ok(value) = std::fs::read_to_string(path) {
            knobs.insert((*path).to_owned(), value);
        }
    }
    if let Ok(value) = std::fs::read_to_string("/sys/kernel/mm/lru_gen/enabled") {
        knobs.insert("/sys/kernel/mm/lru_gen/enabled".into(), value);
    }
    knobs
}

/// The directories of this process's cgroups, one per hierarchy (v1 controllers and v2).
fn own_cgroup_dirs() -> Vec<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    // mountinfo: id parent dev root mount-point options ... - fstype source super-options
    let mounts: Vec<(&str, &str, &str, &str)> = mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split_whitespace().collect();
            let right: Vec<&str> = right.split_whitespace().collect();
            Some((
                *left.get(3)?,
                *left.get(4)?,
                *right.first()?,
                *right.get(2)?,
            ))
        })
        .collect();
    let mut dirs = Vec::new();
    for line in std::fs::read_to_string("/proc/self/cgroup")
        .unwrap()
        .lines()
    {
        let mut parts = line.splitn(3, ':');
        let (controllers, path) = (parts.nth(1).unwrap(), parts.next().unwrap());
        let mount = mounts.iter().find(|(_, _, fstype, options)| match *fstype {
            "cgroup2" => controllers.is_empty(),
            "cgroup" => {
                !controllers.is_empty()
                    && controllers
                        .split(',')
                        .all(|wanted| options.split(',').any(|option| option == wanted))
            }
            _ => false,
        });
        if let Some((root, point, _, _)) = mount {
            let inside = path.strip_prefix(root).unwrap_or(path);
            dirs.push(Path::new(point).join(inside.trim_start_matches('/')));
        }
    }
    assert!(!dirs.is_empty(), "no cgroup of this process found");
    dirs
}

/// The settings files of this process's cgroups, their child directories, and every cgroup
/// directory named rsslab* (the agent's name for the cgroup it makes in the guest).
fn host_cgroups() -> BTreeMap<String, String> {
    let mut seen = BTreeMap::new();
    for dir in own_cgroup_dirs() {
        for name in CGROUP_SETTINGS {
            if let Ok(value) = std::fs::read_to_string(dir.join(name)) {
                seen.insert(dir.join(name).display().to_string(), value);
            }
        }
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            if entry.file_type().unwrap().is_dir() {
                seen.insert(entry.path().display().to_string(), "a child cgroup".into());
            }
        }
    }
    let mut stack = vec![(PathBuf::from("/sys/fs/cgroup"), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if !entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                continue;
            }
            if entry.file_name().to_string_lossy().starts_with("rsslab") {
                seen.insert(entry.path().display().to_string(), "named rsslab".into());
            }
            if depth < 4 {
                stack.push((entry.path(), depth + 1));
            }
        }
    }
    seen
}

#[test]
fn a_lab_never_changes_the_hosts_sysctls_or_cgroups() {
    let knobs_before = host_knobs();
    let cgroups_before = host_cgroups();
    for (name, value) in GUEST_SYSCTLS {
        let path = format!("/proc/sys/{}", name.replace('.', "/"));
        assert_ne!(
            knobs_before.get(&path).map(|v| v.trim()),
            Some(*value),
            "the host already has {name} = {value}: pick another value for the test"
        );
    }

    let lab = Lab::new();
    let sysctls: Vec<String> = GUEST_SYSCTLS
        .iter()
        .map(|(name, value)| format!("\"{name}\" = {value}"))
        .collect();
    let sysfs: Vec<String> = GUEST_SYSFS
        .iter()
        .map(|(path, value)| format!("\"{path}\" = \"{value}\""))
        .collect();
    let text = scenario(
        "host-untouched",
        "",
        "\"process.service.env.CASE\" = [\"only\"]",
    )
    .replace(
        "[sample]",
        &format!(
            "[sysctl]\n{}\n\n[sysfs]\n{}\n\n[cgroup]\nversion = 2\nmemory_max = \"128MiB\"\nmemory_high = \"96MiB\"\n\n[sample]",
            sysctls.join("\n"),
            sysfs.join("\n")
        ),
    );
    let path = lab.scenario("host.toml", &text);
    let runner = lab.spawn(&path, &[], &[]);
    let run = "host-untouched/6.1/CASE=only";
    lab.wait_for_agent(run, Duration::from_secs(90));
    // QEMU stays in the runner's cgroups (the test's): the lab does not move anything.
    let qemu = lab.qemu_pid(Duration::from_secs(30));
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let of_qemu = std::fs::read_to_string(format!("/proc/{qemu}/cgroup")).unwrap();
    assert_eq!(of_qemu, own, "QEMU's cgroups");
    let (status, stderr) = runner.wait(Duration::from_secs(180));
    assert_eq!(status.code(), Some(0), "{stderr}");

    // The guest did apply every setting...
    let record = lab.run_json(run);
    assert_eq!(record["outcome"], "ok", "{}", record["reason"]);
    let events = record["events"].as_array().unwrap();
    let setup = |step: &str| {
        events
            .iter()
            .find(|e| e["event"] == "setup" && e["step"] == step)
            .unwrap_or_else(|| panic!("no setup step {step}: {events:#?}"))
            .clone()
    };
    for (name, value) in GUEST_SYSCTLS {
        let step = setup(&format!("sysctl {name}"));
        assert_eq!(step["ok"], true, "{step}");
        let detail = step["detail"].as_str().unwrap();
        assert!(detail.contains(&format!("reads back: {value}")), "{detail}");
    }
    for (path, _) in GUEST_SYSFS {
        assert_eq!(setup(&format!("sysfs {path}"))["ok"], true);
    }
    let samples = support::samples_of(&lab.out.join("runs").join(run));
    assert!(
        samples
            .iter()
            .any(|s| s["cgroup"]["limit"] == serde_json::json!(128u64 << 20)),
        "the guest's cgroup has the 128MiB limit"
    );
    // ... and the host has none of them.
    assert_eq!(
        host_knobs(),
        knobs_before,
        "the host's sysctls or /sys knobs changed"
    );
    assert_eq!(host_cgroups(), cgroups_before, "the host's cgroups changed");
    lab.assert_nothing_left();
}

/// The unprivileged user the test runs labs as.
const NOBODY: u32 = 65534;

/// Whether this test process can switch to another user (it is root and has setpriv).
/// Panics unless this test can run a lab as another user: root, with setpriv (util-linux).
fn can_switch_user() {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    assert_eq!(
        uid,
        0,
        "not root: cannot run a lab as another user; {}",
        support::lab::AS_ROOT
    );
    if let Err(error) = std::process::Command::new("setpriv")
        .arg("--version")
        .output()
    {
        panic!("setpriv (util-linux): {error}");
    }
}

/// Files and directories under `dir` not owned by `uid`.
fn not_owned_by(dir: &Path, uid: u32) -> Vec<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let meta = entry.metadata().unwrap();
        if meta.uid() != uid {
            found.push(entry.path());
        }
        if meta.is_dir() {
            found.extend(not_owned_by(&entry.path(), uid));
        }
    }
    found
}

#[test]
fn labs_run_without_root_and_doctor_says_whether_the_user_can_as_root() {
    can_switch_user();
    let mut lab = Lab::new();
    let cache = lab.root().join("cache");
    let archive = lab.root().join("archive");
    local_archive(&archive, "6.1");
    lab.env("RSSLAB_CACHE_DIR", cache.display().to_string());
    lab.env(
        "RSSLAB_DEBIAN_MIRROR",
        format!("file://{}", archive.display()),
    );
    // A scratch disk (mkfs.ext4 from /usr/sbin, not on a user's PATH), a cgroup and sysctls:
    // all in the guest, none needs root on the host.
    let text = scenario(
        "unprivileged",
        "disk = \"32MiB\"",
        "\"process.service.env.CASE\" = [\"only\"]",
    )
    .replace(
        "[sample]",
        "[sysctl]\nvm.overcommit_memory = 1\n\n[cgroup]\nmemory_max = \"128MiB\"\n\n[sample]",
    );
    let path = lab.scenario("unprivileged.toml", &text);
    let status = std::process::Command::new("chown")
        .args(["-R", &format!("{NOBODY}:{NOBODY}")])
        .arg(lab.root())
        .status()
        .unwrap();
    assert!(status.success());

    let out = lab.out.to_str().unwrap().to_owned();
    let args = [
        "run",
        path.to_str().unwrap(),
        "--out",
        &out,
        "--accel",
        "auto",
    ];
    let output = lab.command_as(NOBODY, &args, &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let record = read_json(&lab.out.join("runs/unprivileged/6.1/CASE=only/run.json"));
    assert_eq!(record["outcome"], "ok", "{}", record["reason"]);
    assert_eq!(record["processes"]["service"]["outcome"], "running-at-end");
    let kvm_denied = std::process::Command::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            "--clear-groups",
            "--",
            "test",
            "-w",
            "/dev/kvm",
        ])
        .status()
        .is_ok_and(|status| !status.success());
    if kvm_denied {
        assert_eq!(record["accel"], "tcg");
        assert!(stderr.contains("no usable KVM (/dev/kvm"), "{stderr}");
    }
    let strays: Vec<_> = [&lab.out, &cache]
        .iter()
        .flat_map(|dir| not_owned_by(dir, NOBODY))
        .collect();
    assert!(strays.is_empty(), "written as another user: {strays:?}");
    lab.assert_nothing_left();

    let doctor = lab.command_as(NOBODY, &["doctor"], &[]).output().unwrap();
    let said = String::from_utf8_lossy(&doctor.stdout);
    assert_eq!(doctor.status.code(), Some(0), "{said}");
    assert!(
        said.contains(&format!("this user (uid {NOBODY}) can run labs")),
        "{said}"
    );
    assert!(said.contains("not root: labs run as this user"), "{said}");
    // Without a cache it can write (a user without a home), doctor says so and how to fix it.
    let homeless = lab
        .command_as(NOBODY, &["doctor"], &[("RSSLAB_CACHE_DIR", "")])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&homeless.stdout);
    assert_eq!(homeless.status.code(), Some(3), "{said}");
    assert!(said.contains("FAIL  cache"), "{said}");
    assert!(said.contains("set RSSLAB_CACHE_DIR"), "{said}");
    assert!(
        said.contains(&format!("this user (uid {NOBODY}) cannot run labs yet")),
        "{said}"
    );
    // The same for scripts: `--json`, the failed check with its fix, the exit code alike.
    let homeless = lab
        .command_as(NOBODY, &["doctor", "--json"], &[("RSSLAB_CACHE_DIR", "")])
        .output()
        .unwrap();
    assert_eq!(homeless.status.code(), Some(3));
    let diagnosis: serde_json::Value = serde_json::from_slice(&homeless.stdout).unwrap();
    assert_eq!(diagnosis["healthy"], false);
    assert_eq!(diagnosis["uid"], NOBODY);
    let cache_check = diagnosis["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["name"] == "cache")
        .unwrap();
    assert_eq!(cache_check["status"], "fail", "{cache_check}");
    assert!(
        cache_check["fix"]
            .as_str()
            .unwrap()
            .contains("set RSSLAB_CACHE_DIR"),
        "{cache_check}"
    );
}

#[test]
fn installing_host_packages_is_the_one_thing_that_needs_root_and_says_so_as_root() {
    can_switch_user();
    // A PATH with the script's tools but no QEMU and no sudo: it must install, and cannot.
    let bin = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for tool in ["id", "sed", "awk", "tee", "cat", "uname"] {
        let found = ["/usr/bin", "/bin"]
            .iter()
            .map(|dir| Path::new(dir).join(tool))
            .find(|path| path.is_file())
            .unwrap_or_else(|| panic!("{tool} not found"));
        std::os::unix::fs::symlink(found, bin.path().join(tool)).unwrap();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/install-host-deps.sh");
    // By absolute path: the child's PATH would be used to find it.
    let output = std::process::Command::new("/usr/bin/setpriv")
        .args([&format!("--reuid={NOBODY}"), &format!("--regid={NOBODY}")])
        .args(["--clear-groups", "--", "/bin/bash"])
        .arg(&script)
        .env_clear()
        .env("PATH", bin.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{said}");
    assert!(
        said.contains("needs root") && said.contains("rsslab itself needs no root"),
        "{said}"
    );
}
