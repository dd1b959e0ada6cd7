//! `rsslab-floor`: the smallest useful `/init`, for `just bench`'s bare boot. It says so on the
//! console and powers the VM off at once: QEMU start to QEMU exit with this init is the floor
//! that an rsslab run's boot (kernel + agent set-up + channel) is measured against.

use nix::sys::reboot::{RebootMode, reboot};

fn main() {
    println!("rsslab-floor: /init reached, powering off");
    let error = reboot(RebootMode::RB_POWER_OFF).unwrap_err();
    eprintln!("rsslab-floor: power-off failed: {error}");
    std::process::exit(1);
}
