//! Snapshots of booted guests, so that a run does not boot its kernel again.
//!
//! Where a guest is when its agent says `ready` (kernel booted, base file systems mounted,
//! channel open, waiting for its run spec) depends only on what QEMU was started with: the
//! kernel, the initramfs, memory, CPUs, the accelerator, the kernel command line, the devices
//! and QEMU itself. Those make a snapshot's key ([`snapshot_key`]). The first VM of a key boots
//! cold; when its agent asks for the spec, the VM is paused, migrated to
//! `snapshots/<key>.vmstate` in the cache (a `file:` migration of the paused guest: its
//! non-zero pages, 40 MiB for a freshly booted 1 GiB guest, in about 0.3 s under TCG), resumed
//! and sent its spec like any other. Every later VM of the key starts with `-incoming` on that
//! file, is resumed and sent its spec: running again 0.3 s after QEMU starts, where a cold boot
//! under TCG takes 2 to 5 s. VMs of a key that start while its first VM boots wait for its
//! snapshot ([`SnapshotStore::claim`]).
//!
//! A restored guest is the saving boot's guest from the `ready` on: the same kernel memory,
//! page cache and random state (so the same address-space layout and hash seeds in every run
//! of a key, which a cold boot only approximates). Its console log starts with the saving
//! boot's console, then a line saying it was restored. A snapshot that does not load (a file
//! cut short) is deleted and the run boots cold. A VM with a scratch disk is only snapshotted
//! when `virtio_blk` is a module the agent loads after the spec (see
//! [`crate::lab::execute`]), so no guest has read its disk before the snapshot: each run still
//! gets a fresh disk. `rsslab run --boot cold` boots every VM cold.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::qemu::{Attached, QemuCommand};
use super::qmp::Qmp;

/// `--boot`: start VMs from snapshots of booted guests where one fits, or boot every one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum BootChoice {
    #[default]
    Snapshot,
    Cold,
}

/// How long a VM waits for another VM of its key to save the snapshot, before it boots cold.
const SAVE_WAIT: Duration = Duration::from_secs(60);
/// How long a migration to the snapshot file may take.
const SAVE_TIMEOUT: Duration = Duration::from_secs(120);
/// How often a migration's progress is asked for.
const SAVE_POLL: Duration = Duration::from_millis(10);

/// Where the snapshots are (`<cache>/snapshots`), and which keys a VM is saving right now.
#[derive(Debug)]
pub struct SnapshotStore {
    dir: PathBuf,
    /// `qemu-system-x86_64 --version` and the host CPU's model and flags: part of every key,
    /// as the migration format is QEMU's and a KVM guest's CPU is the host's.
    host: String,
    saving: Mutex<HashSet<String>>,
    saved: Condvar,
}

/// The files of one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub key: String,
    /// The migration stream QEMU loads with `-incoming file:...`.
    pub state: PathBuf,
    /// The saving boot's console up to the snapshot.
    pub console: PathBuf,
}

/// What a VM does about snapshots.
#[derive(Debug)]
pub enum SnapshotUse<'a> {
    /// Boot cold, save nothing.
    Cold,
    /// Boot cold and save the snapshot when the agent asks for its spec.
    Save(SaveClaim<'a>),
    /// Start from the snapshot.
    Restore(Snapshot),
}

/// The right to save one key's snapshot; other VMs of the key wait until it is dropped.
#[derive(Debug)]
pub struct SaveClaim<'a> {
    store: &'a SnapshotStore,
    pub snapshot: Snapshot,
}

/// The first CPU's `model name` and `flags` lines of `/proc/cpuinfo`.
fn host_cpu(cpuinfo: &str) -> String {
    ["model name", "flags"]
        .iter()
        .filter_map(|field| {
            cpuinfo
                .lines()
                .find(|line| line.split(':').next().map(str::trim) == Some(field))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The key of the VM `command` starts (without `-incoming`), with a scratch disk of
/// `disk_size` bytes if any, on `host` (QEMU's version and the host CPU).
pub fn snapshot_key(command: &QemuCommand, disk_size: Option<u64>, host: &str) -> String {
    let shape = QemuCommand {
        incoming: None,
        ..command.clone()
    };
    // Descriptor numbers differ from run to run; what they are does not.
    let attached = Attached {
        channel: 0,
        disk: disk_size.map(|_| 0),
        qmp: Some(0),
    };
    let mut hasher = Sha256::new();
    for part in [
        host,
        &shape.display(attached),
        &format!("disk={disk_size:?}"),
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hex::encode(&hasher.finalize()[..16])
}

impl SnapshotStore {
    /// Snapshots in `dir` (created when the first is saved), for QEMU `qemu_version` on this
    /// host's CPU.
    pub fn new(dir: PathBuf, qemu_version: &str) -> SnapshotStore {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        SnapshotStore {
            dir,
            host: format!("{qemu_version}\n{}", host_cpu(&cpuinfo)),
            saving: Mutex::new(HashSet::new()),
            saved: Condvar::new(),
        }
    }

    /// The key of `command` (see [`snapshot_key`]) in this store.
    pub fn key_of(&self, command: &QemuCommand, disk_size: Option<u64>) -> String {
        snapshot_key(command, disk_size, &self.host)
    }

    fn snapshot(&self, key: &str) -> Snapshot {
        Snapshot {
            key: key.to_owned(),
            state: self.dir.join(format!("{key}.vmstate")),
            console: self.dir.join(format!("{key}.console")),
        }
    }

    /// Restore when `key` has a snapshot; else save one, unless another VM is saving it: then
    /// wait for that (up to [`SAVE_WAIT`], or until a stop is requested) and decide again.
    pub fn claim(&self, key: &str) -> SnapshotUse<'_> {
        let snapshot = self.snapshot(key);
        let give_up_at = Instant::now() + SAVE_WAIT;
        let mut saving = self.saving.lock().expect("snapshot claims lock");
        loop {
            if snapshot.state.is_file() {
                return SnapshotUse::Restore(snapshot);
            }
            if saving.insert(key.to_owned()) {
                return SnapshotUse::Save(SaveClaim {
                    store: self,
                    snapshot,
                });
            }
            let now = Instant::now();
            if now >= give_up_at || super::stop_requested() {
                return SnapshotUse::Cold;
            }
            let wait = (give_up_at - now).min(Duration::from_millis(250));
            saving = self
                .saved
                .wait_timeout(saving, wait)
                .expect("snapshot claims lock")
                .0;
        }
    }

    /// Deletes the snapshot of `key` (one that did not load).
    pub fn discard(&self, key: &str) {
        let snapshot = self.snapshot(key);
        for path in [&snapshot.state, &snapshot.console] {
            let _ = fs::remove_file(path);
        }
    }
}

impl SaveClaim<'_> {
    /// Pauses the guest, migrates it to the snapshot file, keeps `boot_console` (the console
    /// log so far) beside it, and resumes the guest, whatever happened. The snapshot appears
    /// under its name only when complete.
    pub fn save(&self, qmp: &mut Qmp, boot_console: &Path) -> Result<()> {
        fs::create_dir_all(&self.store.dir)
            .with_context(|| format!("creating {}", self.store.dir.display()))?;
        let partial = self
            .snapshot
            .state
            .with_extension(format!("vmstate.{}.tmp", std::process::id()));
        qmp.execute("stop", json!({}))?;
        let saved = migrate_to(qmp, &partial);
        let resumed = qmp.execute("cont", json!({}));
        let kept = saved.and_then(|()| {
            fs::copy(boot_console, &self.snapshot.console)
                .with_context(|| format!("keeping the boot console of {}", self.snapshot.key))?;
            fs::rename(&partial, &self.snapshot.state)
                .with_context(|| format!("renaming {}", partial.display()))?;
            Ok(())
        });
        if kept.is_err() {
            let _ = fs::remove_file(&partial);
        }
        resumed.context("resuming the guest after the snapshot")?;
        kept
    }
}

impl Drop for SaveClaim<'_> {
    fn drop(&mut self) {
        let mut saving = self.store.saving.lock().expect("snapshot claims lock");
        saving.remove(&self.snapshot.key);
        self.store.saved.notify_all();
    }
}

/// Migrates the paused guest into `path` and waits until the migration has completed.
fn migrate_to(qmp: &mut Qmp, path: &Path) -> Result<()> {
    let uri = format!("file:{}", path.display());
    qmp.execute("migrate", json!({ "uri": uri }))?;
    let started = Instant::now();
    loop {
        let progress = qmp.execute("query-migrate", json!({}))?;
        match progress.get("status").and_then(|status| status.as_str()) {
            Some("completed") => return Ok(()),
            Some("failed" | "cancelled") => bail!(
                "saving the snapshot failed: {}",
                progress
                    .get("error-desc")
                    .and_then(|desc| desc.as_str())
                    .unwrap_or("QEMU gave no reason")
            ),
            _ if started.elapsed() > SAVE_TIMEOUT => {
                let _ = qmp.execute("migrate_cancel", json!({}));
                bail!(
                    "saving the snapshot took more than {}s",
                    SAVE_TIMEOUT.as_secs()
                );
            }
            _ => std::thread::sleep(SAVE_POLL),
        }
    }
}

/// Waits until QEMU has loaded its `-incoming` snapshot and resumes the guest (a snapshot of
/// a paused guest loads paused).
pub fn resume_restored(qmp: &mut Qmp) -> Result<()> {
    let started = Instant::now();
    loop {
        let status = qmp.execute("query-status", json!({}))?;
        match status.get("status").and_then(|status| status.as_str()) {
            Some("inmigrate") if started.elapsed() < SAVE_TIMEOUT => std::thread::sleep(SAVE_POLL),
            Some("paused" | "prelaunch") => {
                qmp.execute("cont", json!({}))?;
                return Ok(());
            }
            Some("running") => return Ok(()),
            other => bail!("the snapshot did not load: QEMU is {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsslab_wire::Bytes;

    fn command() -> QemuCommand {
        QemuCommand {
            binary: "qemu-system-x86_64".into(),
            accel: super::super::Accel::Tcg,
            memory: Bytes::mib(1024),
            cpus: 1,
            kernel: "/cache/kernels/6.1-abc/rsslab-vmlinux".into(),
            initrd: "/cache/images/0123.cpio.gz".into(),
            kernel_args: Vec::new(),
            incoming: None,
        }
    }

    #[test]
    fn the_key_is_what_the_guest_was_started_with() {
        let key = snapshot_key(&command(), None, "QEMU 10.0.2");
        assert_eq!(key.len(), 32);
        let restored = QemuCommand {
            incoming: Some("/cache/snapshots/x.vmstate".into()),
            ..command()
        };
        assert_eq!(
            snapshot_key(&restored, None, "QEMU 10.0.2"),
            key,
            "-incoming is not part of it"
        );
        let others = [
            snapshot_key(&command(), None, "QEMU 10.1.0"),
            snapshot_key(&command(), Some(1 << 30), "QEMU 10.0.2"),
            snapshot_key(&command(), Some(2 << 30), "QEMU 10.0.2"),
            snapshot_key(
                &QemuCommand {
                    memory: Bytes::mib(512),
                    ..command()
                },
                None,
                "QEMU 10.0.2",
            ),
            snapshot_key(
                &QemuCommand {
                    cpus: 2,
                    ..command()
                },
                None,
                "QEMU 10.0.2",
            ),
            snapshot_key(
                &QemuCommand {
                    initrd: "/cache/images/4567.cpio.gz".into(),
                    ..command()
                },
                None,
                "QEMU 10.0.2",
            ),
            snapshot_key(
                &QemuCommand {
                    kernel_args: vec!["rsslab.fault=hang@1000".into()],
                    ..command()
                },
                None,
                "QEMU 10.0.2",
            ),
        ];
        let distinct: HashSet<&String> = others.iter().chain([&key]).collect();
        assert_eq!(distinct.len(), others.len() + 1, "{others:?}");
    }

    #[test]
    fn the_host_is_its_cpus_model_and_flags() {
        let cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC 7763\nflags\t\t: fpu sse2 avx2\n\n\
                       processor\t: 1\nmodel name\t: AMD EPYC 7763\nflags\t\t: fpu sse2 avx2\n";
        assert_eq!(
            host_cpu(cpuinfo),
            "model name\t: AMD EPYC 7763\nflags\t\t: fpu sse2 avx2"
        );
    }

    #[test]
    fn the_first_claim_saves_a_second_waits_and_then_restores() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::new(dir.path().to_owned(), "QEMU 10.0.2");
        let SnapshotUse::Save(claim) = store.claim("k") else {
            panic!("the first VM of a key saves")
        };
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| store.claim("k"));
            // The waiter cannot decide until the claim is dropped; the snapshot appears first.
            fs::write(&claim.snapshot.state, b"state").unwrap();
            drop(claim);
            match waiter.join().unwrap() {
                SnapshotUse::Restore(snapshot) => {
                    assert_eq!(snapshot.state, dir.path().join("k.vmstate"))
                }
                other => panic!("expected a restore, got {other:?}"),
            }
        });
        // Another key is independent.
        assert!(matches!(store.claim("other"), SnapshotUse::Save(_)));
    }

    #[test]
    fn a_failed_save_hands_the_claim_on_and_a_discarded_snapshot_is_saved_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::new(dir.path().to_owned(), "QEMU 10.0.2");
        let first = store.claim("k");
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| matches!(store.claim("k"), SnapshotUse::Save(_)));
            drop(first);
            assert!(waiter.join().unwrap(), "the next VM saves instead");
        });
        let snapshot = store.snapshot("k");
        fs::write(&snapshot.state, b"cut short").unwrap();
        fs::write(&snapshot.console, b"boot").unwrap();
        assert!(matches!(store.claim("k"), SnapshotUse::Restore(_)));
        store.discard("k");
        assert!(!snapshot.state.exists() && !snapshot.console.exists());
        assert!(matches!(store.claim("k"), SnapshotUse::Save(_)));
    }
}
