//! A suite's `Packages` index, verified by the sha256 its verified `InRelease` lists, reduced
//! to the kernels it holds: each `linux-image-<release>` of the generic, cloud and rt flavours,
//! with the packages that together carry its image, modules and config (the image package
//! itself up to 6.x; the `linux-binary-`, `linux-modules-` and `linux-base-` packages it
//! depends on since 7.x). The reduced list is cached by the index's sha256.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::catalogue::KernelPackage;
use crate::supply::debian::release::Release;
use crate::supply::debian::{ArchiveKernel, Flavour};
use crate::supply::fetch::read_url;

/// The index of one suite, relative to `dists/<suite>/`.
pub const PACKAGES_XZ: &str = "main/binary-amd64/Packages.xz";
/// The most of an index read before its checks (real ones are about 10 MiB).
const INDEX_LIMIT: u64 = 256 << 20;

/// The kernels of `release`'s suite, from its verified `Packages.xz` (or the list cached for
/// that file's sha256 in `dir`).
pub fn suite_kernels(base_url: &str, release: &Release, dir: &Path) -> Result<Vec<ArchiveKernel>> {
    let suite = &release.suite;
    let Some((sha256, size)) = release.file(PACKAGES_XZ) else {
        bail!("{suite}: InRelease lists no {PACKAGES_XZ}");
    };
    let cached = dir.join(format!("{suite}.kernels.{}.json", &sha256[..16]));
    if let Ok(text) = fs::read_to_string(&cached)
        && let Ok(kernels) = serde_json::from_str(&text)
    {
        return Ok(kernels);
    }
    let url = format!(
        "{}/dists/{suite}/{PACKAGES_XZ}",
        base_url.trim_end_matches('/')
    );
    // Read up to a bound well above any real index; the size and sha256 are checked next.
    let bytes = read_url(&url, INDEX_LIMIT.max(size))
        .with_context(|| format!("fetching {suite}'s index"))?;
    check_index(&url, &bytes, sha256, size)?;
    let mut text = String::new();
    liblzma::read::XzDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .with_context(|| format!("unpacking {url}"))?;
    let kernels = kernels_of(suite, &text);
    crate::files::write_atomically(&cached, serde_json::to_string(&kernels)?.as_bytes())?;
    Ok(kernels)
}

/// `bytes` must be what InRelease says: size and sha256.
pub fn check_index(origin: &str, bytes: &[u8], sha256: &str, size: u64) -> Result<()> {
    let actual = hex::encode(Sha256::digest(bytes));
    if bytes.len() as u64 != size || actual != sha256 {
        bail!(
            "{origin}: {} bytes with sha256 {actual}, but the signed InRelease lists {size} bytes \
             with sha256 {sha256}: refused (a tampered or half-updated mirror)",
            bytes.len()
        );
    }
    Ok(())
}

/// The kernels of an index's text.
pub fn kernels_of(suite: &str, text: &str) -> Vec<ArchiveKernel> {
    let mut stanzas: BTreeMap<(String, String), BTreeMap<String, String>> = BTreeMap::new();
    for stanza in text.split("\n\n") {
        let fields = fields_of(stanza);
        if let (Some(name), Some(version)) = (fields.get("Package"), fields.get("Version")) {
            stanzas
                .entry((name.clone(), version.clone()))
                .or_insert_with(|| fields.clone());
        }
    }
    let package = |name: &str, version: &str| -> Option<KernelPackage> {
        let fields = stanzas.get(&(name.to_owned(), version.to_owned()))?;
        Some(KernelPackage {
            name: name.to_owned(),
            version: version.to_owned(),
            filename: fields.get("Filename")?.clone(),
            size: fields.get("Size")?.parse().ok()?,
            sha256: fields.get("SHA256")?.clone(),
        })
    };
    let mut kernels = Vec::new();
    for ((name, version), fields) in &stanzas {
        let Some(release) = name.strip_prefix("linux-image-") else {
            continue;
        };
        let Some(flavour) = Flavour::of_release(release) else {
            continue;
        };
        if !release.starts_with(|c: char| c.is_ascii_digit()) || release.contains("unsigned") {
            continue;
        }
        let depends = fields
            .get("Depends")
            .map(String::as_str)
            .unwrap_or_default();
        let split: Vec<String> = ["linux-binary", "linux-modules", "linux-base"]
            .iter()
            .map(|part| format!("{part}-{release}"))
            .collect();
        let packages: Option<Vec<KernelPackage>> = if depends.contains(&split[0]) {
            split.iter().map(|name| package(name, version)).collect()
        } else {
            package(name, version).map(|image| vec![image])
        };
        let Some(packages) = packages else {
            continue;
        };
        kernels.push(ArchiveKernel {
            suite: suite.to_owned(),
            version: version.clone(),
            upstream: version.split('-').next().unwrap_or(version).to_owned(),
            flavour,
            release: release.to_owned(),
            packages,
        });
    }
    kernels
}

/// A stanza's fields (continuation lines dropped: none of the ones used has any).
fn fields_of(stanza: &str) -> BTreeMap<String, String> {
    stanza
        .lines()
        .filter(|line| !line.starts_with(char::is_whitespace))
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.to_owned(), value.trim().to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stanza(name: &str, version: &str, depends: &str) -> String {
        format!(
            "Package: {name}\nSource: linux-signed-amd64\nVersion: {version}\nDepends: {depends}\n\
             Description: x\n more\nFilename: pool/main/l/x/{name}_{version}_amd64.deb\nSize: 42\nSHA256: {}\n",
            "ab".repeat(32)
        )
    }

    #[test]
    fn kernels_of_an_index_have_their_packages_and_flavours() {
        let index = [
            stanza("linux-image-6.1.0-50-cloud-amd64", "6.1.176-1", "kmod"),
            stanza("linux-image-6.1.0-50-cloud-amd64", "6.1.176-1", "kmod"),
            stanza("linux-image-6.1.0-50-cloud-amd64-dbg", "6.1.176-1", ""),
            stanza("linux-image-6.1.0-50-amd64-unsigned", "6.1.176-1", ""),
            stanza("linux-image-6.1.0-50-rt-amd64", "6.1.176-1", "kmod"),
            stanza("linux-image-cloud-amd64", "6.1.176-1", "linux-image-6.1.0-50-cloud-amd64"),
            stanza(
                "linux-image-7.3.4+deb13-amd64",
                "7.3.4-1~bpo13+1",
                "dracut, linux-base-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1), linux-binary-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1), linux-modules-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1)",
            ),
            stanza("linux-binary-7.3.4+deb13-amd64", "7.3.4-1~bpo13+1", ""),
            stanza("linux-modules-7.3.4+deb13-amd64", "7.3.4-1~bpo13+1", ""),
            stanza("linux-base-7.3.4+deb13-amd64", "7.3.4-1~bpo13+1", ""),
        ]
        .join("\n");
        let kernels = kernels_of("trixie-backports", &index);
        let summary: Vec<(String, Flavour, usize)> = kernels
            .iter()
            .map(|kernel| {
                (
                    kernel.release.clone(),
                    kernel.flavour,
                    kernel.packages.len(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("6.1.0-50-cloud-amd64".to_owned(), Flavour::Cloud, 1),
                ("6.1.0-50-rt-amd64".to_owned(), Flavour::Rt, 1),
                ("7.3.4+deb13-amd64".to_owned(), Flavour::Generic, 3),
            ]
        );
        assert_eq!(kernels[2].upstream, "7.3.4");
        assert_eq!(
            kernels[2].packages[0].name,
            "linux-binary-7.3.4+deb13-amd64"
        );
        assert_eq!(kernels[0].packages[0].size, 42);
    }

    #[test]
    fn an_index_that_is_not_what_inrelease_lists_is_refused() {
        let bytes = b"index";
        let sha256 = hex::encode(Sha256::digest(bytes));
        assert!(check_index("x", bytes, &sha256, 5).is_ok());
        let error = check_index("x", b"indeX", &sha256, 5)
            .unwrap_err()
            .to_string();
        assert!(error.contains("refused"), "{error}");
        assert!(check_index("x", bytes, &sha256, 6).is_err());
    }
}
