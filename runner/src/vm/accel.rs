//! Choosing between KVM and TCG.
//!
//! `--accel auto` uses KVM only when `/dev/kvm` opens read-write *and* a probe boot under KVM
//! reaches the agent's hello within [`PROBE_TIMEOUT`]: on some hosts (nested virtualisation)
//! /dev/kvm opens and then the first vCPU run hangs forever. Otherwise TCG, which is slower but
//! gives the same memory behaviour. The decision and its reason go into every run record.
//!
//! A failed probe is remembered for the rest of the host's boot ([`remembered_probe`]): KVM
//! that hangs under nested virtualisation does not start working without a reboot of the
//! host, and every probe would cost the lab [`PROBE_TIMEOUT`]. `rsslab doctor` and
//! `--accel kvm` always probe afresh.

use std::fs::OpenOptions;
use std::path::Path;
use std::time::Duration;

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use super::qemu::Accel;

/// How long a KVM probe boot may take to say hello before KVM counts as broken.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the user asked for (`--accel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum AccelChoice {
    /// KVM if it works here (probe boot), else TCG.
    #[default]
    Auto,
    /// KVM; fail if it does not work.
    Kvm,
    /// Software emulation.
    Tcg,
}

/// The accelerator the lab will use, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccelDecision {
    pub accel: Accel,
    pub reason: String,
}

/// Whether /dev/kvm exists and opens read-write; `Err` says why not.
pub fn kvm_device_usable(device: &Path) -> Result<(), String> {
    match OpenOptions::new().read(true).write(true).open(device) {
        Ok(_) => Ok(()),
        Err(error) => Err(format!("{}: {error}", device.display())),
    }
}

/// Decides the accelerator. `probe` boots a VM under KVM and says whether the guest came up in
/// time; it is only called when KVM is a candidate.
pub fn choose_accel(
    choice: AccelChoice,
    device: &Path,
    probe: impl FnOnce() -> Result<(), String>,
) -> Result<AccelDecision, String> {
    match choice {
        AccelChoice::Tcg => Ok(AccelDecision {
            accel: Accel::Tcg,
            reason: "asked for (--accel tcg)".into(),
        }),
        AccelChoice::Kvm => {
            kvm_device_usable(device)?;
            probe().map_err(|why| format!("KVM asked for but the probe boot failed: {why}"))?;
            Ok(AccelDecision {
                accel: Accel::Kvm,
                reason: "asked for (--accel kvm), probe boot ok".into(),
            })
        }
        AccelChoice::Auto => {
            if let Err(why) = kvm_device_usable(device) {
                return Ok(AccelDecision {
                    accel: Accel::Tcg,
                    reason: format!("no usable KVM ({why})"),
                });
            }
            Ok(match probe() {
                Ok(()) => AccelDecision {
                    accel: Accel::Kvm,
                    reason: "KVM probe boot ok".into(),
                },
                Err(why) => AccelDecision {
                    accel: Accel::Tcg,
                    reason: format!("/dev/kvm opens but a probe boot failed ({why}); using TCG"),
                },
            })
        }
    }
}

/// A failed probe, as remembered: the host's boot, the QEMU that probed, and why it failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FailedProbe {
    boot_id: String,
    qemu_version: String,
    failure: String,
}

/// `probe`, unless a probe by the same QEMU already failed in this boot of the host (`boot_id`,
/// from /proc/sys/kernel/random/boot_id): then that failure, saying it was remembered. A
/// failure is written to `memo`, a success removes it. Without a boot id it always probes.
pub fn remembered_probe(
    memo: &Path,
    boot_id: Option<&str>,
    qemu_version: &str,
    probe: impl FnOnce() -> Result<(), String>,
) -> Result<(), String> {
    let Some(boot_id) = boot_id else {
        return probe();
    };
    let remembered = std::fs::read(memo)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<FailedProbe>(&bytes).ok())
        .filter(|failed| failed.boot_id == boot_id && failed.qemu_version == qemu_version);
    if let Some(failed) = remembered {
        return Err(format!(
            "{}, remembered from a probe earlier in this boot of the host; `rsslab doctor` probes again",
            failed.failure
        ));
    }
    let result = probe();
    match &result {
        Ok(()) => {
            let _ = std::fs::remove_file(memo);
        }
        Err(failure) => {
            let failed = FailedProbe {
                boot_id: boot_id.to_owned(),
                qemu_version: qemu_version.to_owned(),
                failure: failure.clone(),
            };
            if let Ok(json) = serde_json::to_vec(&failed) {
                let _ = std::fs::write(memo, json);
            }
        }
    }
    result
}

/// This boot of the host, as the kernel names it.
pub fn host_boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|id| id.trim().to_owned())
        .filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_probe_is_remembered_for_the_same_boot_and_qemu_only() {
        let dir = tempfile::tempdir().unwrap();
        let memo = dir.path().join("kvm-probe.json");
        let hang = || Err::<(), _>("no hello within 10s".to_owned());
        let unreached = || -> Result<(), String> { panic!("probed although remembered") };
        assert_eq!(
            remembered_probe(&memo, Some("boot-a"), "QEMU 10.0", hang),
            Err("no hello within 10s".into())
        );
        let again = remembered_probe(&memo, Some("boot-a"), "QEMU 10.0", unreached).unwrap_err();
        assert!(
            again.starts_with("no hello within 10s, remembered from a probe earlier"),
            "{again}"
        );
        // Another boot of the host, or another QEMU: probe again; a success forgets.
        let mut probed = 0;
        let mut works = || {
            probed += 1;
            Ok(())
        };
        assert_eq!(
            remembered_probe(&memo, Some("boot-b"), "QEMU 10.0", &mut works),
            Ok(())
        );
        assert!(!memo.exists(), "a success removes the memo");
        remembered_probe(&memo, Some("boot-b"), "QEMU 10.0", hang).unwrap_err();
        assert_eq!(
            remembered_probe(&memo, Some("boot-b"), "QEMU 10.1", &mut works),
            Ok(())
        );
        assert_eq!(
            remembered_probe(&memo, None, "QEMU 10.1", &mut works),
            Ok(())
        );
        assert_eq!(probed, 3);
    }

    #[test]
    fn auto_falls_back_to_tcg_without_a_device() {
        let decision = choose_accel(AccelChoice::Auto, Path::new("/nonexistent/kvm"), || {
            panic!("no probe without a device")
        })
        .unwrap();
        assert_eq!(decision.accel, Accel::Tcg);
        assert!(
            decision.reason.contains("/nonexistent/kvm"),
            "{}",
            decision.reason
        );
    }

    #[test]
    fn auto_falls_back_to_tcg_when_the_probe_hangs() {
        let device = tempfile::NamedTempFile::new().unwrap();
        let decision = choose_accel(AccelChoice::Auto, device.path(), || {
            Err("no hello within 10s".into())
        })
        .unwrap();
        assert_eq!(decision.accel, Accel::Tcg);
        assert!(decision.reason.contains("no hello within 10s"));
        let decision = choose_accel(AccelChoice::Auto, device.path(), || Ok(())).unwrap();
        assert_eq!(decision.accel, Accel::Kvm);
    }

    #[test]
    fn explicit_kvm_fails_loudly() {
        let device = tempfile::NamedTempFile::new().unwrap();
        let error =
            choose_accel(AccelChoice::Kvm, device.path(), || Err("hung".into())).unwrap_err();
        assert!(error.contains("hung"), "{error}");
        assert_eq!(
            choose_accel(AccelChoice::Tcg, device.path(), || panic!("no probe"))
                .unwrap()
                .accel,
            Accel::Tcg
        );
    }
}
