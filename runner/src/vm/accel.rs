//! Choosing between KVM and TCG.
//!
//! `--accel auto` uses KVM only when `/dev/kvm` opens read-write *and* a probe boot under KVM
//! reaches the agent's hello within [`PROBE_TIMEOUT`]: on some hosts (nested virtualisation)
//! /dev/kvm opens and then the first vCPU run hangs forever. Otherwise TCG, which is slower but
//! gives the same memory behaviour. The decision and its reason go into every run record.

use std::fs::OpenOptions;
use std::path::Path;
use std::time::Duration;

use clap::ValueEnum;

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

#[cfg(test)]
mod tests {
    use super::*;

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
