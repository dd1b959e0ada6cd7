//! `rsslab doctor`: what this host has and lacks for running labs, each with the fix, and
//! whether the current user can run them (labs need no root: QEMU under TCG, a cache, a
//! temporary directory and an output directory the user can write; only installing host
//! packages needs root).

use std::path::Path;

use crate::catalogue::{default_catalogue_path, load_catalogue};
use crate::image::locate_guest_binaries;
use crate::records::provenance::qemu_version;
use crate::supply::cache::Cache;
use crate::supply::fetch::archive_base_url;
use crate::supply::prepare_kernels;
use crate::vm::Accel;
use crate::vm::accel::{AccelChoice, kvm_device_usable};

/// One line of the check list.
struct Check {
    name: &'static str,
    result: Result<String, String>,
    /// What to do when it fails.
    fix: &'static str,
    /// Whether a failure stops labs from running (KVM does not: TCG works).
    required: bool,
}

fn qemu_check() -> Result<String, String> {
    let version = qemu_version().ok_or("qemu-system-x86_64 not found")?;
    let major: u32 = version
        .split_whitespace()
        .nth(3)
        .and_then(|v| v.split('.').next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("cannot read the version from `{version}`"))?;
    if major < 10 {
        return Err(format!(
            "{version}: QEMU 10 or newer is needed (older TCG corrupts state on 6.12)"
        ));
    }
    Ok(version)
}

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Failed, but labs still run (no KVM: TCG).
    Warn,
    /// Failed: labs cannot run until it is fixed.
    Fail,
}

/// One line of the check list, as `rsslab doctor --json` prints it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckResult {
    pub name: &'static str,
    pub status: Status,
    /// What was found, or why it failed.
    pub detail: String,
    /// What to do about a failure; absent when it passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<&'static str>,
}

/// What `rsslab doctor` found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Diagnosis {
    pub checks: Vec<CheckResult>,
    /// Whether every required check passed: this user can run labs.
    pub healthy: bool,
    pub uid: u32,
    /// What runs would use: `KVM if its probe boot works, else TCG`, or `TCG`.
    pub accel: &'static str,
}

/// Runs every check.
pub fn diagnose() -> Diagnosis {
    let checks = [
        Check {
            name: "qemu",
            result: qemu_check(),
            fix: "run scripts/install-host-deps.sh (installing packages needs root or sudo)",
            required: true,
        },
        Check {
            name: "user",
            result: Ok(user()),
            fix: "",
            required: false,
        },
        Check {
            name: "kvm",
            result: kvm_check(),
            fix: "none needed: runs use TCG (slower, same memory behaviour); for KVM, this user \
                  needs /dev/kvm (the kvm group) on a host whose KVM boots guests (nested KVM \
                  often does not)",
            required: false,
        },
        Check {
            name: "mkfs.ext4",
            result: which("mkfs.ext4"),
            fix: "apt-get install e2fsprogs (only scenarios with a [vm] disk need it)",
            required: false,
        },
        Check {
            name: "archive",
            result: archive_base_url().map_err(|e| format!("{e:#}")),
            fix: "set RSSLAB_DEBIAN_MIRROR to a Debian archive base URL",
            required: true,
        },
        Check {
            name: "cache",
            result: Cache::default_location()
                .map_err(|e| format!("{e:#}"))
                .and_then(|cache| writable(cache.root())),
            fix: "set RSSLAB_CACHE_DIR to a directory this user can write",
            required: true,
        },
        Check {
            name: "tmpdir",
            result: writable(&std::env::temp_dir()),
            fix: "set TMPDIR to a directory this user can write (scratch disks are made there)",
            required: true,
        },
        Check {
            name: "catalogue",
            result: load_catalogue(&default_catalogue_path())
                .map(|c| format!("kernels {}", c.ids().join(", ")))
                .map_err(|e| format!("{e:#}")),
            fix: "run from a checkout, or set RSSLAB_CATALOGUE to vm-images/kernels.toml",
            required: true,
        },
        Check {
            name: "guest",
            result: locate_guest_binaries()
                .map(|b| b.agent.display().to_string())
                .map_err(|e| format!("{e:#}")),
            fix: "run `just guest`",
            required: true,
        },
    ];
    let mut healthy = true;
    let mut kvm = false;
    let checks = checks
        .into_iter()
        .map(|check| {
            kvm |= check.name == "kvm" && check.result.is_ok();
            let (status, detail) = match check.result {
                Ok(detail) => (Status::Ok, detail),
                Err(why) if check.required => (Status::Fail, why),
                Err(why) => (Status::Warn, why),
            };
            healthy &= status != Status::Fail;
            CheckResult {
                name: check.name,
                status,
                detail,
                fix: (status != Status::Ok).then_some(check.fix),
            }
        })
        .collect();
    Diagnosis {
        checks,
        healthy,
        uid: current_uid(),
        accel: if kvm {
            "KVM if its probe boot works, else TCG"
        } else {
            "TCG"
        },
    }
}

/// Prints the check list (as JSON with `json`); returns whether every required check passed.
pub fn doctor(json: bool) -> bool {
    let diagnosis = diagnose();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&diagnosis).expect("a diagnosis serializes")
        );
        return diagnosis.healthy;
    }
    for check in &diagnosis.checks {
        match check.status {
            Status::Ok => println!("ok    {:<10} {}", check.name, check.detail),
            status => println!(
                "{}  {:<10} {}\n      {:<10} fix: {}",
                if status == Status::Fail {
                    "FAIL"
                } else {
                    "warn"
                },
                check.name,
                check.detail,
                "",
                check.fix.unwrap_or_default()
            ),
        }
    }
    let uid = diagnosis.uid;
    if diagnosis.healthy {
        println!(
            "this user (uid {uid}) can run labs, under {}",
            diagnosis.accel
        );
    } else {
        println!("this user (uid {uid}) cannot run labs yet: fix the FAIL lines above");
    }
    diagnosis.healthy
}

/// What a lab would decide: where `/dev/kvm` opens, the same probe boot a lab makes (of the
/// catalogue's first kernel, fetched if it is not cached yet); `Err` with its one-line reason
/// when runs would use TCG.
fn kvm_check() -> Result<String, String> {
    kvm_device_usable(Path::new("/dev/kvm"))?;
    let cache = Cache::default_location().map_err(|e| format!("{e:#}"))?;
    let catalogue = load_catalogue(&default_catalogue_path()).map_err(|e| format!("{e:#}"))?;
    let first = catalogue
        .ids()
        .into_iter()
        .next()
        .ok_or("the catalogue has no kernel")?;
    let kernels = prepare_kernels(&cache, &catalogue, std::slice::from_ref(&first))
        .map_err(|e| format!("/dev/kvm opens; no kernel for a probe boot: {e:#}"))?;
    let bins = locate_guest_binaries()
        .map_err(|e| format!("/dev/kvm opens; no guest for a probe boot: {e:#}"))?;
    let decision = super::decide_accel(
        AccelChoice::Auto,
        super::Probe::Afresh,
        &cache,
        &kernels[&first],
        &bins,
    )
    .map_err(|e| format!("{e:#}"))?;
    match decision.accel {
        Accel::Kvm => Ok(format!("{} (kernel {first})", decision.reason)),
        Accel::Tcg => Err(decision.reason),
    }
}

fn current_uid() -> u32 {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() }
}

/// Who runs this, and what that means.
fn user() -> String {
    match current_uid() {
        0 => "root (labs need no root; only installing host packages does)".into(),
        uid => format!(
            "uid {uid}, not root: labs run as this user; installing host packages \
             (scripts/install-host-deps.sh) needs root or sudo"
        ),
    }
}

/// `dir` (created if missing) when this user can create a file in it.
fn writable(dir: &Path) -> Result<String, String> {
    std::fs::create_dir_all(dir)
        .and_then(|()| tempfile::tempfile_in(dir).map(drop))
        .map(|()| format!("{} (writable)", dir.display()))
        .map_err(|error| format!("{}: cannot write there: {error}", dir.display()))
}

fn which(program: &str) -> Result<String, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .map(|found| found.display().to_string())
        .ok_or_else(|| format!("{program} not found"))
}
