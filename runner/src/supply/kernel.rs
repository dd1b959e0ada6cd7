//! A kernel from Debian's packages made bootable: its packages fetched (verified), unpacked into one cache
//! directory keyed by their sha256s, and the files QEMU and the image builder need located.
//!
//! A warm [`prepare_kernel`] does no network and no unpacking: it finds the complete unpacked
//! directory and returns its paths. The first preparation also extracts the uncompressed
//! `vmlinux` from the bzImage into the same directory (`rsslab-vmlinux`), which QEMU boots
//! through its PVH entry point, skipping the in-guest decompressor (see [`crate::supply::vmlinux`]).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::catalogue::Kernel;
use crate::supply::cache::Cache;
use crate::supply::unpacked::unpacked_packages;

/// The files of one unpacked kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelFiles {
    /// The bzImage as Debian ships it.
    pub vmlinuz: PathBuf,
    /// The uncompressed ELF kernel with a PVH entry, extracted from `vmlinuz`; `None` when it
    /// could not be (then QEMU boots the bzImage).
    pub vmlinux: Option<PathBuf>,
    /// `.../lib/modules/<release>`: `kernel/**.ko[.xz]`, `modules.builtin`.
    pub modules_dir: PathBuf,
    /// `uname -r`.
    pub release: String,
    /// The kernel's build configuration, when the packages carry it.
    pub config: Option<PathBuf>,
    /// No modules came with the kernel (a local one without `--modules`): the modules a run
    /// asks for are taken to be built in.
    pub assume_builtin: bool,
}

/// Fetches, verifies and unpacks `kernel`'s packages (once; cached) and locates its files.
pub fn prepare_kernel(cache: &Cache, base_url: &str, kernel: &Kernel) -> Result<KernelFiles> {
    let dir = unpacked_packages(
        cache,
        base_url,
        &cache.kernels_dir()?,
        &kernel.release,
        &kernel.packages,
        |root| locate_files(root, &kernel.release).map(drop),
    )
    .with_context(|| format!("kernel {}", kernel.id))?;
    let mut files = locate_files(&dir, &kernel.release)
        .with_context(|| format!("kernel {} in {}", kernel.id, dir.display()))?;
    files.vmlinux = pvh_vmlinux(&dir, &files.vmlinuz);
    Ok(files)
}

/// File name of the extracted kernel in the unpacked directory.
pub const VMLINUX_NAME: &str = "rsslab-vmlinux";

impl KernelFiles {
    /// What QEMU boots with `-kernel`: the extracted `vmlinux` (PVH entry) when there is one,
    /// else the bzImage.
    pub fn boot_image(&self) -> &Path {
        self.vmlinux.as_deref().unwrap_or(&self.vmlinuz)
    }
}

/// `dir/rsslab-vmlinux`, extracted from `vmlinuz` the first time; `None` (with a warning)
/// when the bzImage cannot be unpacked to a PVH kernel, so runs boot the bzImage instead.
pub(crate) fn pvh_vmlinux(dir: &Path, vmlinuz: &Path) -> Option<PathBuf> {
    let path = dir.join(VMLINUX_NAME);
    if path.is_file() {
        return Some(path);
    }
    let extracted = std::fs::read(vmlinuz)
        .with_context(|| format!("reading {}", vmlinuz.display()))
        .and_then(|bzimage| crate::supply::vmlinux::extract_vmlinux(&bzimage))
        .and_then(|elf| {
            crate::files::write_atomic_with(&path, |file| {
                std::io::Write::write_all(file, &elf).context("writing vmlinux")
            })
        });
    match extracted {
        Ok(()) => Some(path),
        Err(error) => {
            tracing::warn!(
                "booting {} as a bzImage: no PVH vmlinux from it ({error:#})",
                vmlinuz.display()
            );
            None
        }
    }
}

/// Finds vmlinuz, the modules directory and the config of `release` under `root`, in the
/// places Debian's packages put them (`boot/` and `lib/modules/` up to 6.12, `usr/lib/modules/`
/// with the split packages of 7.x).
pub(crate) fn locate_files(root: &Path, release: &str) -> Result<KernelFiles> {
    let module_dirs = [
        root.join("lib/modules").join(release),
        root.join("usr/lib/modules").join(release),
    ];
    let modules_dir = first_existing(&module_dirs, Path::is_dir, "modules directory")?;
    let vmlinuz_candidates = [
        root.join("boot").join(format!("vmlinuz-{release}")),
        modules_dir.join("vmlinuz"),
    ];
    let vmlinuz = first_existing(&vmlinuz_candidates, Path::is_file, "vmlinuz")?;
    let config_candidates = [
        root.join("boot").join(format!("config-{release}")),
        modules_dir.join("config"),
    ];
    let config = config_candidates.into_iter().find(|path| path.is_file());
    Ok(KernelFiles {
        vmlinuz,
        vmlinux: None,
        modules_dir,
        release: release.to_owned(),
        config,
        assume_builtin: false,
    })
}

fn first_existing(
    candidates: &[PathBuf],
    exists: impl Fn(&Path) -> bool,
    what: &str,
) -> Result<PathBuf> {
    if let Some(found) = candidates.iter().find(|path| exists(path)) {
        return Ok(found.clone());
    }
    let tried: Vec<String> = candidates
        .iter()
        .map(|path| path.display().to_string())
        .collect();
    bail!("no {what} (looked for {})", tried.join(", "))
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::catalogue::KernelFacts;
    use crate::supply::deb::tests::{TarItem, data_tar, publish_deb};

    fn facts() -> KernelFacts {
        KernelFacts {
            madv_free: true,
            cgroup_v1_memory: false,
            mglru: true,
            mglru_default: true,
            overcommit_heuristic_total_only: true,
        }
    }

    /// A local archive with a split kernel in two packages, and its catalogue entry.
    fn split_kernel(archive: &Path) -> Kernel {
        let release = "9.9.9-test";
        let binary = data_tar(&[
            TarItem::Dir("usr/lib/modules/9.9.9-test"),
            TarItem::File("usr/lib/modules/9.9.9-test/vmlinuz", b"bzImage", 0o644),
        ]);
        let modules = data_tar(&[
            TarItem::Dir("usr/lib/modules/9.9.9-test/kernel"),
            TarItem::File("usr/lib/modules/9.9.9-test/config", b"CONFIG_X=y\n", 0o644),
            TarItem::File(
                "usr/lib/modules/9.9.9-test/modules.builtin",
                b"kernel/fs/ext4/ext4.ko\n",
                0o644,
            ),
        ]);
        let packages = [
            ("linux-binary-9.9.9-test", binary),
            ("linux-modules-9.9.9-test", modules),
        ]
        .into_iter()
        .map(|(name, tar)| publish_deb(archive, "pool/main/l/linux", name, &tar))
        .collect();
        Kernel {
            id: "9.9".into(),
            debian: None,
            suite: "sid".into(),
            release: release.into(),
            packages,
            facts: facts(),
            behaviour_changes: vec![],
            origin: Default::default(),
            facts_derived: false,
        }
    }

    #[test]
    fn prepares_a_split_kernel_once_and_warm_calls_need_no_archive() {
        let archive = tempfile::tempdir().unwrap();
        let kernel = split_kernel(archive.path());
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(cache_dir.path().to_path_buf());
        let files = prepare_kernel(&cache, archive.path().to_str().unwrap(), &kernel).unwrap();
        assert_eq!(fs::read(&files.vmlinuz).unwrap(), b"bzImage");
        assert!(files.modules_dir.ends_with("usr/lib/modules/9.9.9-test"));
        assert!(
            files
                .config
                .as_ref()
                .unwrap()
                .ends_with("9.9.9-test/config")
        );
        assert_eq!(files.release, "9.9.9-test");

        // Warm: no archive, and the downloads may even be gone.
        fs::remove_dir_all(cache.downloads_dir().unwrap()).unwrap();
        let warm = prepare_kernel(&cache, "/nonexistent", &kernel).unwrap();
        assert_eq!(warm, files);
        let names: Vec<_> = fs::read_dir(cache.kernels_dir().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn packages_without_a_kernel_are_not_published() {
        let archive = tempfile::tempdir().unwrap();
        let mut kernel = split_kernel(archive.path());
        kernel.packages.remove(0); // no vmlinuz
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(cache_dir.path().to_path_buf());
        let error = format!(
            "{:#}",
            prepare_kernel(&cache, archive.path().to_str().unwrap(), &kernel).unwrap_err()
        );
        assert!(error.contains("no vmlinuz"), "{error}");
        assert_eq!(
            fs::read_dir(cache.kernels_dir().unwrap()).unwrap().count(),
            0
        );
    }

    #[test]
    fn locates_the_classic_boot_layout() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("boot")).unwrap();
        fs::create_dir_all(root.path().join("lib/modules/5.10.0-32-cloud-amd64/kernel")).unwrap();
        fs::write(root.path().join("boot/vmlinuz-5.10.0-32-cloud-amd64"), b"k").unwrap();
        fs::write(root.path().join("boot/config-5.10.0-32-cloud-amd64"), b"c").unwrap();
        let files = locate_files(root.path(), "5.10.0-32-cloud-amd64").unwrap();
        assert!(
            files
                .vmlinuz
                .ends_with("boot/vmlinuz-5.10.0-32-cloud-amd64")
        );
        assert!(
            files
                .modules_dir
                .ends_with("lib/modules/5.10.0-32-cloud-amd64")
        );
        assert!(
            files
                .config
                .unwrap()
                .ends_with("boot/config-5.10.0-32-cloud-amd64")
        );
        let error = format!("{:#}", locate_files(root.path(), "6.0").unwrap_err());
        assert!(error.contains("no modules directory"), "{error}");
    }
}
