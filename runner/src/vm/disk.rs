//! Scratch disks: a sparse raw file with an ext4 file system that has no name once it is made.
//!
//! The file is created in `$TMPDIR`, formatted with `mkfs.ext4` and unlinked at once; QEMU gets
//! the open descriptor ([`super::run_vm`]), so no image is left behind on any path, not even
//! when the runner is killed. Each boot gets a fresh disk, so a retried run does not see what
//! the first attempt wrote.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Where `mkfs.ext4` is looked for after `$PATH` (a user's `$PATH` often lacks the sbin
/// directories, where Debian installs it).
const SBIN_DIRS: &[&str] = &["/usr/sbin", "/sbin"];

/// A sparse raw file of `size` bytes with an empty ext4 file system, already unlinked.
pub fn scratch_disk(size: u64) -> Result<File> {
    scratch_disk_in(&std::env::temp_dir(), size)
}

fn scratch_disk_in(dir: &Path, size: u64) -> Result<File> {
    let file = tempfile::Builder::new()
        .prefix("rsslab-scratch-")
        .suffix(".img")
        .tempfile_in(dir)
        .with_context(|| format!("creating a scratch disk in {} ($TMPDIR)", dir.display()))?;
    file.as_file()
        .set_len(size)
        .with_context(|| format!("sizing the scratch disk {}", file.path().display()))?;
    let mkfs = mkfs_ext4();
    let command = duct::cmd!(
        &mkfs,
        "-q",
        "-F",
        "-m",
        "0",
        "-E",
        "lazy_itable_init=0,lazy_journal_init=0",
        file.path()
    );
    tracing::debug!("{} {}", mkfs.display(), file.path().display());
    let output = command
        .stdout_null()
        .stderr_capture()
        .unchecked()
        .run()
        .with_context(|| format!("running {} (install e2fsprogs)", mkfs.display()))?;
    if !output.status.success() {
        anyhow::bail!(
            "{} {} failed ({}): {}",
            mkfs.display(),
            file.path().display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(file.into_file())
}

/// `mkfs.ext4` from `$PATH`, else from the sbin directories, else the bare name (whose failure
/// to start then says what to install).
fn mkfs_ext4() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SBIN_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join("mkfs.ext4"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| PathBuf::from("mkfs.ext4"))
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek, SeekFrom};

    use super::*;

    #[test]
    fn a_scratch_disk_is_ext4_and_has_no_name() {
        let dir = tempfile::tempdir().unwrap();
        let disk = scratch_disk_in(dir.path(), 16 << 20).unwrap();
        assert_eq!(disk.metadata().unwrap().len(), 16 << 20);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "the image was unlinked"
        );
        // The ext4 superblock's magic 0xEF53 at offset 1024 + 0x38.
        let mut disk = disk;
        let mut magic = [0u8; 2];
        disk.seek(SeekFrom::Start(1024 + 0x38)).unwrap();
        disk.read_exact(&mut magic).unwrap();
        assert_eq!(magic, [0x53, 0xef]);
    }
}
