//! Go toolchains on the host: [`prepare_toolchain`] fetches, verifies and unpacks one toolchain
//! of the Go catalogue ([`crate::catalogue::go`]) into the cache, like
//! [`crate::supply::kernel::prepare_kernel`] does for kernels. A warm [`prepare_toolchain`]
//! does no network and no unpacking.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::cache::Cache;
use super::unpacked::unpacked_packages;
use crate::catalogue::go::GoToolchain;

/// Cache subdirectory of unpacked toolchains.
const TOOLCHAINS: &str = "go-toolchains";

/// An unpacked toolchain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoRoot {
    /// Catalogue id.
    pub id: String,
    /// The GOROOT directory (holds `bin/go`, `src/`, `pkg/`).
    pub root: PathBuf,
    /// sha256s of the packages, in catalogue order: the toolchain's identity for build caching.
    pub package_sha256s: Vec<String>,
}

impl GoRoot {
    /// `<root>/bin/go`.
    pub fn go_binary(&self) -> PathBuf {
        self.root.join("bin/go")
    }
}

/// Fetches, verifies and unpacks `go`'s packages (once; cached) and checks its GOROOT.
pub fn prepare_toolchain(cache: &Cache, base_url: &str, go: &GoToolchain) -> Result<GoRoot> {
    let dir = unpacked_packages(
        cache,
        base_url,
        &cache.subdir(TOOLCHAINS)?,
        &format!("go-{}", go.id),
        &go.packages,
        |root| check_goroot(&root.join(&go.goroot)),
    )
    .with_context(|| format!("Go toolchain {}", go.id))?;
    let root = dir.join(&go.goroot);
    check_goroot(&root).with_context(|| format!("Go toolchain {} in {}", go.id, dir.display()))?;
    Ok(GoRoot {
        id: go.id.clone(),
        root,
        package_sha256s: go.packages.iter().map(|p| p.sha256.clone()).collect(),
    })
}

/// A GOROOT has `bin/go`, the standard library's sources (`src/runtime`, through Debian's
/// `src -> ../../share/go-X.Y/src` symlink) and `pkg/tool` (compiler and linker).
fn check_goroot(root: &Path) -> Result<()> {
    for (path, what) in [
        ("bin/go", "the go command"),
        (
            "src/runtime/malloc.go",
            "the standard library sources (golang-X.Y-src)",
        ),
        ("pkg/tool", "the compiler and linker"),
    ] {
        let full = root.join(path);
        // `exists` follows symlinks, so a dangling src link counts as missing.
        if !full.exists() {
            bail!("no {what}: {} is missing", full.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::supply::deb::tests::{TarItem, data_tar, publish_deb};

    /// A fake toolchain in Debian's layout: the src package holds the sources under
    /// usr/share, the go package links them into the GOROOT.
    fn fake_toolchain(archive: &Path, with_src: bool) -> GoToolchain {
        let go = data_tar(&[
            TarItem::Dir("usr/lib/go-9.9/bin"),
            TarItem::File("usr/lib/go-9.9/bin/go", b"#!/bin/sh\n", 0o755),
            TarItem::Dir("usr/lib/go-9.9/pkg/tool/linux_amd64"),
            TarItem::Symlink("usr/lib/go-9.9/src", "../../share/go-9.9/src"),
        ]);
        let src = data_tar(&[
            TarItem::Dir("usr/share/go-9.9/src/runtime"),
            TarItem::File(
                "usr/share/go-9.9/src/runtime/malloc.go",
                b"package runtime\n",
                0o644,
            ),
        ]);
        let mut parts = vec![("golang-9.9-go", go)];
        if with_src {
            parts.push(("golang-9.9-src", src));
        }
        let packages = parts
            .into_iter()
            .map(|(name, tar)| publish_deb(archive, "pool/main/g/golang-9.9", name, &tar))
            .collect();
        GoToolchain {
            id: "9.9".into(),
            suite: "sid".into(),
            goroot: "usr/lib/go-9.9".into(),
            madv_free_default: false,
            race: false,
            packages,
        }
    }

    #[test]
    fn prepares_a_toolchain_once_through_the_src_symlink() {
        let archive = tempfile::tempdir().unwrap();
        let go = fake_toolchain(archive.path(), true);
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(cache_dir.path().to_path_buf());
        let root = prepare_toolchain(&cache, archive.path().to_str().unwrap(), &go).unwrap();
        assert!(root.root.ends_with("usr/lib/go-9.9"));
        assert!(root.go_binary().is_file());
        assert!(root.root.join("src/runtime/malloc.go").is_file());
        assert_eq!(root.package_sha256s.len(), 2);
        fs::remove_dir_all(cache.downloads_dir().unwrap()).unwrap();
        assert_eq!(
            prepare_toolchain(&cache, "/nonexistent", &go).unwrap(),
            root
        );
    }

    #[test]
    fn a_goroot_without_sources_is_not_published() {
        let archive = tempfile::tempdir().unwrap();
        let go = fake_toolchain(archive.path(), false);
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(cache_dir.path().to_path_buf());
        let error = format!(
            "{:#}",
            prepare_toolchain(&cache, archive.path().to_str().unwrap(), &go).unwrap_err()
        );
        assert!(error.contains("standard library sources"), "{error}");
        assert_eq!(
            fs::read_dir(cache.subdir(TOOLCHAINS).unwrap())
                .unwrap()
                .count(),
            0
        );
    }
}
