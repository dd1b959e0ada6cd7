//! A kernel of the user's own, made bootable: a bzImage (`vmlinuz`), an ELF `vmlinux` with a
//! PVH entry, or a local `linux-image-*.deb`, with an optional modules directory.
//!
//! [`prepare_local_kernel`] recognises the file by its content (the boot protocol's `HdrS`
//! header, the ELF magic, the `ar` archive of a .deb; anything else is refused), reads its
//! release (`uname -r`) from the image itself, and finds its config: the .deb's, the one built
//! into the image (`CONFIG_IKCONFIG`), a `config-<release>` or `.config` beside the file, or
//! the modules directory's. With a config, what the lab's guest needs is checked before any
//! VM starts ([`missing_options`]), so a kernel that could not boot the agent is refused with
//! the options to enable. Without modules, the modules a run asks for are assumed built in.
//! Everything derived (the unpacked .deb, the extracted vmlinux, the config) goes into the
//! cache under `kernels/local-<sha256>/`; the user's files are only read.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::catalogue::LocalKernel;
use crate::supply::cache::{Cache, publish_dir, temp_dir_beside};
use crate::supply::kernel::{KernelFiles, locate_files, pvh_vmlinux};

/// The `ar` magic and first member of every .deb.
const DEB_MAGIC: &[u8] = b"!<arch>\ndebian-binary";
const ELF_MAGIC: &[u8] = b"\x7fELF";
/// Where the boot protocol header points at the kernel's version string (plus 0x200).
const KERNEL_VERSION_AT: usize = 0x20e;
/// The markers around the gzip'd config that `CONFIG_IKCONFIG` builds into the kernel.
const IKCONFIG_START: &[u8] = b"IKCFG_ST";
const IKCONFIG_END: &[u8] = b"IKCFG_ED";

/// What kind of file a local kernel is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalKind {
    BzImage,
    Vmlinux,
    Deb,
}

/// The kernel in `local`, recognised, unpacked or extracted into the cache, with its release,
/// modules and config; refused when it is not a kernel or its config lacks what the guest needs.
pub fn prepare_local_kernel(cache: &Cache, local: &LocalKernel) -> Result<(KernelFiles, String)> {
    let path = &local.path;
    let bytes = fs::read(path).with_context(|| format!("reading kernel {}", path.display()))?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let kind = local_kind(&bytes).with_context(|| {
        format!(
            "{}: not a kernel: neither a bzImage (no `HdrS` boot header at 0x202), an ELF \
             vmlinux nor a .deb; give the kernel build's arch/x86/boot/bzImage or vmlinux, or a \
             linux-image-*.deb",
            path.display()
        )
    })?;
    let dir = cache
        .kernels_dir()?
        .join(format!("local-{}", &sha256[..16]));
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut files = match kind {
        LocalKind::Deb => unpacked_deb(path, &dir)?,
        LocalKind::BzImage | LocalKind::Vmlinux => image_files(path, &bytes, kind, &dir)?,
    };
    if let Some(modules) = &local.modules {
        files.modules_dir = modules_dir(modules, &files.release)?;
        files.assume_builtin = false;
        if files.config.is_none() {
            files.config = Some(files.modules_dir.join("config")).filter(|path| path.is_file());
        }
    }
    if let Some(config) = &files.config {
        let text =
            fs::read_to_string(config).with_context(|| format!("reading {}", config.display()))?;
        let missing = missing_options(&text, !files.assume_builtin);
        if !missing.is_empty() {
            bail!(
                "{}: the kernel cannot run rsslab's guest: its config ({}) lacks {}; enable \
                 them (=y) and rebuild",
                path.display(),
                config.display(),
                missing.join(", ")
            );
        }
    }
    Ok((files, sha256))
}

/// The kind of kernel file `bytes` is, if any.
pub fn local_kind(bytes: &[u8]) -> Option<LocalKind> {
    if bytes.starts_with(DEB_MAGIC) {
        Some(LocalKind::Deb)
    } else if bytes.starts_with(ELF_MAGIC) {
        Some(LocalKind::Vmlinux)
    } else if bytes.get(0x202..0x206) == Some(b"HdrS") {
        Some(LocalKind::BzImage)
    } else {
        None
    }
}

/// A .deb unpacked once into `dir/root`; the release is its `lib/modules/<release>`.
fn unpacked_deb(deb: &Path, dir: &Path) -> Result<KernelFiles> {
    let root = dir.join("root");
    if !root.is_dir() {
        let temp = temp_dir_beside(&root)?;
        crate::supply::deb::unpack_deb(deb, temp.path())
            .with_context(|| format!("unpacking {}", deb.display()))?;
        publish_dir(temp, &root)?;
    }
    let release = ["lib/modules", "usr/lib/modules"]
        .iter()
        .filter_map(|modules| fs::read_dir(root.join(modules)).ok())
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .next()
        .with_context(|| format!("{}: no lib/modules/<release> inside", deb.display()))?;
    let mut files = locate_files(&root, &release)
        .with_context(|| format!("{}: not a kernel package", deb.display()))?;
    files.vmlinux = pvh_vmlinux(dir, &files.vmlinuz);
    Ok(files)
}

/// A bzImage or vmlinux: release from the image, config from IKCONFIG or beside the file.
fn image_files(path: &Path, bytes: &[u8], kind: LocalKind, dir: &Path) -> Result<KernelFiles> {
    let (release, vmlinux) = match kind {
        LocalKind::BzImage => (
            bzimage_release(bytes).with_context(|| format!("{}", path.display()))?,
            pvh_vmlinux(dir, path),
        ),
        _ => {
            let pvh = crate::supply::vmlinux::has_pvh_entry(bytes)
                .with_context(|| format!("{}: not a kernel ELF", path.display()))?;
            if !pvh {
                bail!(
                    "{}: this vmlinux has no PVH entry note, which QEMU needs to boot an ELF \
                     kernel: build it with CONFIG_PVH=y, or give its bzImage",
                    path.display()
                );
            }
            (
                banner_release(bytes)
                    .with_context(|| format!("{}: no `Linux version` banner", path.display()))?,
                Some(path.to_owned()),
            )
        }
    };
    let config = local_config(path, &release, vmlinux.as_deref(), dir)?;
    let modules_dir = dir.join("no-modules");
    fs::create_dir_all(modules_dir.join("kernel"))
        .with_context(|| format!("creating {}", modules_dir.display()))?;
    Ok(KernelFiles {
        vmlinuz: path.to_owned(),
        vmlinux,
        modules_dir,
        release,
        config,
        assume_builtin: true,
    })
}

/// The release in the bzImage header's kernel version string (`6.1.0-50-amd64 (...) #1 ...`).
pub fn bzimage_release(bzimage: &[u8]) -> Result<String> {
    let pointer = bzimage
        .get(KERNEL_VERSION_AT..KERNEL_VERSION_AT + 2)
        .context("truncated boot header")?;
    let at = u16::from_le_bytes([pointer[0], pointer[1]]) as usize + 0x200;
    let text = bzimage
        .get(at..)
        .context("the version string lies outside the file")?;
    let end = text
        .iter()
        .position(|byte| *byte == b' ' || *byte == 0)
        .unwrap_or(0);
    let release = std::str::from_utf8(&text[..end]).unwrap_or_default();
    if release.is_empty() {
        bail!("the boot header has no kernel version string");
    }
    Ok(release.to_owned())
}

/// The release in the `Linux version <release> (...)` banner of an uncompressed kernel.
pub fn banner_release(image: &[u8]) -> Option<String> {
    const BANNER: &[u8] = b"Linux version ";
    let at = image
        .windows(BANNER.len())
        .position(|window| window == BANNER)?;
    let text = &image[at + BANNER.len()..];
    let end = text.iter().position(|byte| *byte == b' ' || *byte == 0)?;
    let release = std::str::from_utf8(&text[..end]).ok()?;
    (!release.is_empty()).then(|| release.to_owned())
}

/// The config built into `vmlinux` (CONFIG_IKCONFIG), if it is.
pub fn ikconfig(vmlinux: &[u8]) -> Option<String> {
    let start = vmlinux
        .windows(IKCONFIG_START.len())
        .position(|window| window == IKCONFIG_START)?
        + IKCONFIG_START.len();
    let length = vmlinux[start..]
        .windows(IKCONFIG_END.len())
        .position(|window| window == IKCONFIG_END)?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(&vmlinux[start..start + length])
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// The kernel's config: built in, else `config-<release>` or `.config` beside the file.
fn local_config(
    path: &Path,
    release: &str,
    vmlinux: Option<&Path>,
    dir: &Path,
) -> Result<Option<PathBuf>> {
    let saved = dir.join("config");
    if saved.is_file() {
        return Ok(Some(saved));
    }
    if let Some(text) = vmlinux.and_then(|vmlinux| ikconfig(&fs::read(vmlinux).ok()?)) {
        fs::write(&saved, text).with_context(|| format!("writing {}", saved.display()))?;
        return Ok(Some(saved));
    }
    let beside = path.parent().unwrap_or(Path::new("."));
    Ok([
        beside.join(format!("config-{release}")),
        beside.join(".config"),
    ]
    .into_iter()
    .find(|candidate| candidate.is_file()))
}

/// `--modules DIR`: `DIR/lib/modules/<release>`, `DIR/<release>` or DIR itself.
fn modules_dir(dir: &Path, release: &str) -> Result<PathBuf> {
    let candidates = [
        dir.join("lib/modules").join(release),
        dir.join("usr/lib/modules").join(release),
        dir.join(release),
        dir.to_owned(),
    ];
    candidates
        .into_iter()
        .find(|candidate| {
            candidate.join("kernel").is_dir() || candidate.join("modules.builtin").is_file()
        })
        .with_context(|| {
            format!(
                "--modules {}: no modules of {release} there (looked for lib/modules/{release}, \
                 {release}/ and the directory itself, each with kernel/ or modules.builtin; \
                 `make modules_install INSTALL_MOD_PATH=DIR` writes DIR/lib/modules/{release})",
                dir.display()
            )
        })
}

/// Options the lab's guest needs that `config` lacks: an initramfs, the serial ports of the
/// console and the channel, devtmpfs, cgroups with the memory controller, and (`modular`: when
/// the modules are there, `=m` is enough) the virtio block device and ext4 of scratch disks.
pub fn missing_options(config: &str, modular: bool) -> Vec<String> {
    let value = |option: &str| {
        config.lines().find_map(|line| {
            line.strip_prefix(option)
                .and_then(|rest| rest.strip_prefix('='))
                .map(str::trim)
        })
    };
    let built_in = [
        "CONFIG_BLK_DEV_INITRD",
        "CONFIG_RD_GZIP",
        "CONFIG_SERIAL_8250",
        "CONFIG_SERIAL_8250_CONSOLE",
        "CONFIG_DEVTMPFS",
        "CONFIG_CGROUPS",
        "CONFIG_MEMCG",
    ];
    let drivers = ["CONFIG_VIRTIO_PCI", "CONFIG_VIRTIO_BLK", "CONFIG_EXT4_FS"];
    let mut missing: Vec<String> = built_in
        .iter()
        .filter(|option| value(option) != Some("y"))
        .map(|option| format!("{option}=y"))
        .collect();
    missing.extend(
        drivers
            .iter()
            .filter(|option| match value(option) {
                Some("y") => false,
                Some("m") => !modular,
                _ => true,
            })
            .map(|option| format!("{option}=y{}", if modular { " (or =m)" } else { "" })),
    );
    missing
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn kinds_are_told_by_content() {
        let mut bzimage = vec![0u8; 0x400];
        bzimage[0x202..0x206].copy_from_slice(b"HdrS");
        assert_eq!(local_kind(&bzimage), Some(LocalKind::BzImage));
        assert_eq!(local_kind(b"\x7fELF\x02\x01"), Some(LocalKind::Vmlinux));
        assert_eq!(
            local_kind(b"!<arch>\ndebian-binary   1"),
            Some(LocalKind::Deb)
        );
        assert_eq!(local_kind(b"#!/bin/sh\necho not a kernel\n"), None);
        assert_eq!(local_kind(&[0u8; 0x300]), None);
    }

    #[test]
    fn the_release_comes_from_the_boot_header_or_the_banner() {
        let mut bzimage = vec![0u8; 0x1000];
        bzimage[0x202..0x206].copy_from_slice(b"HdrS");
        bzimage[0x20e..0x210].copy_from_slice(&0x700u16.to_le_bytes());
        let version = b"6.18.3-rsslab (me@host) #1 SMP PREEMPT_DYNAMIC\0";
        bzimage[0x900..0x900 + version.len()].copy_from_slice(version);
        assert_eq!(bzimage_release(&bzimage).unwrap(), "6.18.3-rsslab");
        bzimage[0x900] = 0;
        assert!(bzimage_release(&bzimage).is_err());

        let image = b"\0\0Linux version 7.0.1-rt (gcc 14) #2\0more";
        assert_eq!(banner_release(image).unwrap(), "7.0.1-rt");
        assert_eq!(banner_release(b"no banner"), None);
    }

    #[test]
    fn ikconfig_is_read_between_its_markers() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"CONFIG_IKCONFIG=y\nCONFIG_MEMCG=y\n")
            .unwrap();
        let mut image = b"junk IKCFG_ST".to_vec();
        image.extend(gz.finish().unwrap());
        image.extend(b"IKCFG_ED junk");
        assert_eq!(
            ikconfig(&image).unwrap(),
            "CONFIG_IKCONFIG=y\nCONFIG_MEMCG=y\n"
        );
        assert_eq!(ikconfig(b"no config here"), None);
    }

    #[test]
    fn missing_options_name_what_to_enable() {
        let complete = "CONFIG_BLK_DEV_INITRD=y\nCONFIG_RD_GZIP=y\nCONFIG_SERIAL_8250=y\n\
                        CONFIG_SERIAL_8250_CONSOLE=y\nCONFIG_DEVTMPFS=y\nCONFIG_CGROUPS=y\n\
                        CONFIG_MEMCG=y\nCONFIG_VIRTIO_PCI=y\nCONFIG_VIRTIO_BLK=m\nCONFIG_EXT4_FS=y\n";
        assert!(missing_options(complete, true).is_empty());
        assert_eq!(
            missing_options(complete, false),
            ["CONFIG_VIRTIO_BLK=y"],
            "without modules, =m does not count"
        );
        let no_memcg = complete.replace("CONFIG_MEMCG=y\n", "# CONFIG_MEMCG is not set\n");
        assert_eq!(missing_options(&no_memcg, true), ["CONFIG_MEMCG=y"]);
    }

    #[test]
    fn a_file_that_is_not_a_kernel_is_refused_with_what_to_give() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bzImage");
        fs::write(&path, b"#!/bin/sh\n").unwrap();
        let cache = Cache::at(dir.path().join("cache"));
        let error = prepare_local_kernel(
            &cache,
            &LocalKernel {
                path: path.clone(),
                modules: None,
            },
        )
        .unwrap_err();
        let text = format!("{error:#}");
        assert!(text.contains("not a kernel"), "{text}");
        assert!(text.contains("bzImage"), "{text}");
    }
}
