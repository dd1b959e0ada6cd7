//! The Go toolchain catalogue (`vm-images/go-toolchains.toml`: Debian's golang-X.Y packages
//! pinned by sha256) and [`prepare_toolchain`], which fetches, verifies and unpacks one
//! toolchain into the cache, like [`crate::kernel::prepare_kernel`] does for kernels.
//!
//! The catalogue is compiled in, so scenarios are checked against the same ids the lab builds
//! with. A warm [`prepare_toolchain`] does no network and no unpacking.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::cache::Cache;
use crate::catalog::KernelPackage;
use crate::unpacked::unpacked_packages;

/// The catalogue as shipped in the repository.
const CATALOGUE_TEXT: &str = include_str!("../../vm-images/go-toolchains.toml");

/// Cache subdirectory of unpacked toolchains.
const TOOLCHAINS: &str = "go-toolchains";

/// Every Go toolchain, in catalogue order (oldest first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoCatalogue {
    /// `[[go]]` tables.
    #[serde(rename = "go", default)]
    pub toolchains: Vec<GoToolchain>,
}

/// One Go toolchain: the packages it comes from and where its GOROOT lands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoToolchain {
    /// Catalogue id, what scenarios write (`go = "1.15"`).
    pub id: String,
    /// Debian suite the packages come from.
    pub suite: String,
    /// GOROOT relative to the unpacked packages (`usr/lib/go-1.15`).
    pub goroot: String,
    /// The runtime returns memory with MADV_FREE by default (Go 1.12 to 1.15).
    pub madv_free_default: bool,
    /// golang-X.Y-go and golang-X.Y-src.
    #[serde(rename = "package")]
    pub packages: Vec<KernelPackage>,
}

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

impl GoCatalogue {
    /// The toolchain with this id.
    pub fn get(&self, id: &str) -> Option<&GoToolchain> {
        self.toolchains.iter().find(|go| go.id == id)
    }

    /// Every id, in catalogue order.
    pub fn ids(&self) -> Vec<String> {
        self.toolchains.iter().map(|go| go.id.clone()).collect()
    }
}

/// The catalogue compiled into rsslab.
pub fn go_catalogue() -> &'static GoCatalogue {
    static CATALOGUE: OnceLock<GoCatalogue> = OnceLock::new();
    CATALOGUE.get_or_init(|| {
        parse_go_catalogue(CATALOGUE_TEXT).expect("vm-images/go-toolchains.toml is valid")
    })
}

/// Parses and validates a Go toolchain catalogue's text.
pub fn parse_go_catalogue(text: &str) -> Result<GoCatalogue> {
    let catalogue: GoCatalogue = toml::from_str(text)?;
    if catalogue.toolchains.is_empty() {
        bail!("no [[go]] in the Go toolchain catalogue");
    }
    let mut ids = BTreeSet::new();
    for go in &catalogue.toolchains {
        if !ids.insert(go.id.as_str()) {
            bail!("Go toolchain id {:?} appears twice", go.id);
        }
        validate_toolchain(go).with_context(|| format!("Go toolchain {:?}", go.id))?;
    }
    Ok(catalogue)
}

fn validate_toolchain(go: &GoToolchain) -> Result<()> {
    if go.id.is_empty() || !go.id.chars().all(|c| c.is_ascii_digit() || c == '.') {
        bail!("id must be a version such as 1.15");
    }
    if go.goroot.is_empty() || go.goroot.starts_with('/') || go.goroot.contains("..") {
        bail!("goroot must be a relative path inside the packages");
    }
    let names: Vec<&str> = go.packages.iter().map(|p| p.name.as_str()).collect();
    for suffix in ["go", "src"] {
        let wanted = format!("golang-{}-{suffix}", go.id);
        if !names.contains(&wanted.as_str()) {
            bail!(
                "package {wanted} is missing (a toolchain needs golang-X.Y-go and golang-X.Y-src)"
            );
        }
    }
    for package in &go.packages {
        if package.sha256.len() != 64 || !package.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("{}: sha256 must be 64 hex digits", package.name);
        }
        if package.size == 0 || !package.filename.starts_with("pool/") {
            bail!(
                "{}: size must be > 0 and filename a pool path",
                package.name
            );
        }
    }
    Ok(())
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
    use crate::deb::tests::{TarItem, data_tar, publish_deb};

    #[test]
    fn the_shipped_catalogue_has_an_old_and_a_modern_go() {
        let catalogue = go_catalogue();
        assert_eq!(catalogue.ids(), ["1.15", "1.24"]);
        let old = catalogue.get("1.15").unwrap();
        assert!(old.madv_free_default);
        assert_eq!(old.goroot, "usr/lib/go-1.15");
        assert_eq!(old.packages.len(), 2);
        assert!(!catalogue.get("1.24").unwrap().madv_free_default);
        assert!(catalogue.get("1.16").is_none());
    }

    #[test]
    fn a_toolchain_without_its_sources_is_rejected() {
        let text = CATALOGUE_TEXT.replacen("golang-1.15-src", "golang-1.15-doc", 1);
        let error = format!("{:#}", parse_go_catalogue(&text).unwrap_err());
        assert!(error.contains("golang-1.15-src is missing"), "{error}");
        let twice = format!(
            "{CATALOGUE_TEXT}\n{}",
            &CATALOGUE_TEXT[CATALOGUE_TEXT.find("[[go]]").unwrap()..]
        );
        let error = format!("{:#}", parse_go_catalogue(&twice).unwrap_err());
        assert!(error.contains("appears twice"), "{error}");
        let error = format!("{:#}", parse_go_catalogue("").unwrap_err());
        assert!(error.contains("no [[go]]"), "{error}");
    }

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
