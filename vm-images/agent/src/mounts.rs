//! The file systems PID 1 mounts before anything else, as a table.
//!
//! The initramfs has empty /dev, /proc, /sys, /tmp, /run; the kernel mounts nothing for us
//! (Debian's cloud kernels have no CONFIG_DEVTMPFS_MOUNT). The cgroup hierarchy depends on the
//! run: cgroup2 at /sys/fs/cgroup, or for a cgroup v1 run a tmpfs there with the v1 memory
//! controller at /sys/fs/cgroup/memory (that mount is done by [`crate::cgroup`], since its
//! failure means "unsupported", not a broken guest).

use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};

/// One mount: what, where, which file system, flags, options.
#[derive(Debug, Clone, Copy)]
pub struct Mount {
    pub source: &'static str,
    pub target: &'static str,
    pub fstype: &'static str,
    pub flags: MsFlags,
    pub data: Option<&'static str>,
}

const NOSUID_NODEV_NOEXEC: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

/// The base table, in order.
pub const BASE: &[Mount] = &[
    Mount {
        source: "proc",
        target: "/proc",
        fstype: "proc",
        flags: NOSUID_NODEV_NOEXEC,
        data: None,
    },
    Mount {
        source: "sysfs",
        target: "/sys",
        fstype: "sysfs",
        flags: NOSUID_NODEV_NOEXEC,
        data: None,
    },
    Mount {
        source: "devtmpfs",
        target: "/dev",
        fstype: "devtmpfs",
        flags: MsFlags::MS_NOSUID,
        data: Some("mode=0755"),
    },
    Mount {
        source: "tmpfs",
        target: "/tmp",
        fstype: "tmpfs",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
        data: Some("mode=1777"),
    },
    Mount {
        source: "tmpfs",
        target: "/run",
        fstype: "tmpfs",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
        data: Some("mode=0755"),
    },
];

/// cgroup2 on /sys/fs/cgroup (every run except cgroup v1 ones).
pub const CGROUP2: Mount = Mount {
    source: "cgroup2",
    target: "/sys/fs/cgroup",
    fstype: "cgroup2",
    flags: NOSUID_NODEV_NOEXEC,
    data: None,
};

/// A tmpfs on /sys/fs/cgroup to hold v1 hierarchies.
pub const CGROUP1_ROOT: Mount = Mount {
    source: "tmpfs",
    target: "/sys/fs/cgroup",
    fstype: "tmpfs",
    flags: NOSUID_NODEV_NOEXEC,
    data: Some("mode=0755"),
};

/// The result of one mount, reported as a setup event once the channel is open.
#[derive(Debug, Clone)]
pub struct Mounted {
    pub target: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// Mounts each entry (creating the mount point); an already mounted target counts as done.
pub fn mount_all(table: &[Mount]) -> Vec<Mounted> {
    table.iter().map(mount_one).collect()
}

fn mount_one(entry: &Mount) -> Mounted {
    let _ = std::fs::create_dir_all(entry.target);
    let result = mount(
        Some(entry.source),
        entry.target,
        Some(entry.fstype),
        entry.flags,
        entry.data,
    );
    let (ok, detail) = match result {
        Ok(()) => (true, format!("{} on {}", entry.fstype, entry.target)),
        Err(Errno::EBUSY) => (true, format!("{} already mounted", entry.target)),
        Err(errno) => (
            false,
            format!(
                "mount {} on {}: {}",
                entry.fstype,
                entry.target,
                errno.desc()
            ),
        ),
    };
    Mounted {
        target: entry.target,
        ok,
        detail,
    }
}

/// Makes sure a character device node exists (if devtmpfs failed, the channel still opens).
pub fn ensure_char_device(path: &str, major: u64, minor: u64) {
    if Path::new(path).exists() {
        return;
    }
    let dev = nix::sys::stat::makedev(major, minor);
    let mode = nix::sys::stat::Mode::from_bits_truncate(0o600);
    if let Err(errno) = nix::sys::stat::mknod(path, nix::sys::stat::SFlag::S_IFCHR, mode, dev) {
        crate::diag!("mknod {path}: {}", errno.desc());
    }
}
