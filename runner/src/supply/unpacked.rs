//! A set of `.deb` packages fetched, verified and unpacked once into one cache directory keyed
//! by their sha256s: the step kernels and Go toolchains share.
//!
//! The packages are unpacked into a temporary directory beside the final one, checked, marked
//! complete and only then renamed into place, so an interrupted unpack never looks finished.
//! A warm call touches neither the network nor the disk beyond one `stat`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::catalogue::KernelPackage;
use crate::supply::cache::{Cache, publish_dir, temp_dir_beside};
use crate::supply::deb::unpack_deb;
use crate::supply::fetch::fetch_verified;

/// Present in an unpacked directory once it is complete.
const COMPLETE_MARKER: &str = ".rsslab-complete";

/// `packages` unpacked together under `parent/<label>-<key>` (key: the first 16 hex digits of
/// a sha256 over the packages' sha256s). `check` must accept the unpacked tree before it is
/// published.
pub fn unpacked_packages(
    cache: &Cache,
    base_url: &str,
    parent: &Path,
    label: &str,
    packages: &[KernelPackage],
    check: impl Fn(&Path) -> Result<()>,
) -> Result<PathBuf> {
    let dir = parent.join(format!("{label}-{}", packages_key(packages)));
    if dir.join(COMPLETE_MARKER).is_file() {
        return Ok(dir);
    }
    let mut debs = Vec::new();
    for package in packages {
        debs.push(
            fetch_verified(cache, base_url, package)
                .with_context(|| format!("fetching {}", package.name))?,
        );
    }
    let started = Instant::now();
    let temp = temp_dir_beside(&dir)?;
    for deb in &debs {
        unpack_deb(deb, temp.path())?;
    }
    check(temp.path())
        .with_context(|| format!("{label}: the packages do not hold what is expected"))?;
    let marker = temp.path().join(COMPLETE_MARKER);
    fs::write(&marker, format!("{label}\n"))
        .with_context(|| format!("writing {}", marker.display()))?;
    publish_dir(temp, &dir)?;
    tracing::info!(
        "{label}: unpacked {} package(s) in {:.1}s",
        debs.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(dir)
}

fn packages_key(packages: &[KernelPackage]) -> String {
    let mut hasher = Sha256::new();
    for package in packages {
        hasher.update(package.sha256.as_bytes());
        hasher.update(b"\n");
    }
    hex::encode(hasher.finalize())[..16].to_owned()
}
