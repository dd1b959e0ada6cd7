//! Any Debian kernel by version, from the archive, verified end to end: each suite's
//! `InRelease` by its OpenPGP signature against Debian's archive keyring ([`release`]), its
//! `Packages` index by the sha256 the signed InRelease lists ([`packages`]), and each `.deb`
//! by the sha256 the index lists (the download itself is [`crate::supply::fetch`]'s, as for
//! pinned kernels): nothing unverified is ever unpacked.
//!
//! [`archive_kernels`] lists what the suites hold (a stale suite is skipped with its reason,
//! not fatal); [`spec`] reads `debian:6.12.57`, `debian:7.2`, `debian:6.1.176-1` with a
//! `:generic`, `:cloud` (default) or `:rt` flavour and resolves it ([`resolve_spec`]) to the
//! newest matching package, or says which versions are nearest.

pub mod packages;
pub mod release;
pub mod spec;

use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::catalogue::versions::compare_debian_versions;
use crate::catalogue::{Kernel, KernelFacts, KernelOrigin};
use crate::supply::cache::Cache;

pub use crate::catalogue::reference::{Flavour, KernelSpec};
pub use spec::{NotInArchive, resolve};

/// The suites searched, oldest first.
pub const SUITES: &[&str] = &[
    "bullseye",
    "bookworm",
    "bookworm-backports",
    "trixie",
    "trixie-backports",
    "sid",
];

/// Cache subdirectory of verified indexes.
const INDEX_DIR: &str = "debian-index";

/// One kernel the archive holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveKernel {
    pub suite: String,
    /// The Debian package version (`6.12.57-1~bpo12+1`).
    pub version: String,
    /// The upstream version (`6.12.57`).
    pub upstream: String,
    pub flavour: Flavour,
    /// `uname -r` (`6.12.57+deb12-cloud-amd64`).
    pub release: String,
    /// The packages that hold its image, modules and config.
    pub packages: Vec<KernelPackage>,
}

use crate::catalogue::KernelPackage;

impl ArchiveKernel {
    /// The kernel as a lab's catalogue entry with id `id`. Its facts are placeholders until
    /// the lab derives them from the kernel's config once unpacked.
    pub fn to_kernel(&self, id: &str) -> Kernel {
        Kernel {
            id: id.to_owned(),
            debian: None,
            suite: self.suite.clone(),
            release: self.release.clone(),
            packages: self.packages.clone(),
            facts: KernelFacts::default(),
            behaviour_changes: Vec::new(),
            origin: KernelOrigin::Archive,
            facts_derived: false,
        }
    }
}

/// What the archive holds, and the suites that could not be read.
#[derive(Debug, Clone, Default)]
pub struct ArchiveListing {
    /// By flavour, then Debian version.
    pub kernels: Vec<ArchiveKernel>,
    /// Suite and why it was skipped (an expired InRelease, a bad signature, no such suite).
    pub skipped: Vec<(String, String)>,
}

/// Every suite's kernels, verified, from the cache while fresh.
pub fn archive_kernels(cache: &Cache, base_url: &str) -> Result<ArchiveListing> {
    archive_kernels_with(cache, base_url, &release::keyring(), SUITES)
}

/// [`archive_kernels`] with a keyring and suites of one's own (tests: a local archive).
pub fn archive_kernels_with(
    cache: &Cache,
    base_url: &str,
    keyring: &Path,
    suites: &[&str],
) -> Result<ArchiveListing> {
    let dir = cache.subdir(INDEX_DIR)?;
    let mut listing = ArchiveListing::default();
    for suite in suites {
        let kernels = release::verified_release(base_url, suite, &dir, keyring)
            .and_then(|release| packages::suite_kernels(base_url, &release, &dir));
        match kernels {
            Ok(kernels) => listing.kernels.extend(kernels),
            Err(error) => {
                tracing::warn!("skipping suite {suite}: {error:#}");
                listing
                    .skipped
                    .push((suite.to_string(), format!("{error:#}")));
            }
        }
    }
    listing.kernels.sort_by(|a, b| {
        a.flavour
            .cmp(&b.flavour)
            .then_with(|| compare_debian_versions(&a.version, &b.version))
            .then_with(|| a.suite.cmp(&b.suite))
    });
    Ok(listing)
}

/// The archive's kernel for `spec` (see [`spec::resolve`]); a version it does not hold is a
/// [`NotInArchive`] error.
pub fn resolve_spec(cache: &Cache, base_url: &str, spec: &KernelSpec) -> Result<ArchiveKernel> {
    let listing = archive_kernels(cache, base_url)?;
    Ok(resolve(spec, &listing.kernels)
        .map_err(|error| error.with_skipped(&listing.skipped))?
        .clone())
}

#[cfg(test)]
mod tests {
    //! A local archive signed by a throwaway key: what verifies and what is refused.

    use std::fs;
    use std::io::Write;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use sha2::{Digest, Sha256};

    use super::*;

    /// A GnuPG home with one fresh key, and that key exported as a keyring file.
    struct Signer {
        home: tempfile::TempDir,
        keyring: PathBuf,
    }

    impl Signer {
        fn new(name: &str) -> Signer {
            let home = tempfile::tempdir().unwrap();
            let gpg = |args: &[&str]| {
                let output = Command::new("gpg")
                    .arg("--homedir")
                    .arg(home.path())
                    .args(["--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", ""])
                    .args(args)
                    .output()
                    .expect("gpg is needed to sign a test archive: scripts/install-test-deps.sh installs gnupg");
                assert!(
                    output.status.success(),
                    "gpg {args:?}: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
                output.stdout
            };
            gpg(&[
                "--quick-gen-key",
                &format!("{name} <{name}@rsslab.test>"),
                "ed25519",
                "sign",
                "1d",
            ]);
            let keyring = home.path().join("keyring.gpg");
            fs::write(&keyring, gpg(&["--export"])).unwrap();
            Signer { home, keyring }
        }

        /// `text` clearsigned.
        fn sign(&self, text: &str) -> Vec<u8> {
            let mut child = Command::new("gpg")
                .arg("--homedir")
                .arg(self.home.path())
                .args([
                    "--batch",
                    "--quiet",
                    "--pinentry-mode",
                    "loopback",
                    "--passphrase",
                    "",
                    "--clearsign",
                ])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            let output = child.wait_with_output().unwrap();
            assert!(output.status.success());
            output.stdout
        }
    }

    const INDEX: &str = "Package: linux-image-6.16.3+deb13-cloud-amd64\nVersion: 6.16.3-1~bpo13+1\n\
Depends: kmod\nFilename: pool/main/l/linux-signed-amd64/linux-image-6.16.3+deb13-cloud-amd64_6.16.3-1~bpo13+1_amd64.deb\n\
Size: 1000\nSHA256: 00000000000000000000000000000000000000000000000000000000000000ff\n";

    /// Writes `dists/test/` under `root`: Packages.xz and an InRelease signed by `signer`
    /// listing `listed` (the real index's bytes, unless a test lies) valid until `valid_until`.
    fn publish(root: &Path, signer: &Signer, listed: Option<&[u8]>, valid_until: &str) -> Vec<u8> {
        let dir = root.join("dists/test/main/binary-amd64");
        fs::create_dir_all(&dir).unwrap();
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
        xz.write_all(INDEX.as_bytes()).unwrap();
        let packages = xz.finish().unwrap();
        fs::write(dir.join("Packages.xz"), &packages).unwrap();
        let listed = listed.unwrap_or(&packages);
        let release = format!(
            "Origin: Debian\nSuite: test\nDate: Tue, 01 Dec 2026 00:00:00 UTC\n{valid_until}SHA256:\n {} {} main/binary-amd64/Packages.xz\n",
            hex::encode(Sha256::digest(listed)),
            listed.len()
        );
        let signed = signer.sign(&release);
        fs::write(root.join("dists/test/InRelease"), &signed).unwrap();
        signed
    }

    fn list(root: &Path, keyring: &Path) -> ArchiveListing {
        let cache = Cache::at(root.join("cache"));
        archive_kernels_with(&cache, root.to_str().unwrap(), keyring, &["test"]).unwrap()
    }

    const FUTURE: &str = "Valid-Until: Fri, 01 Dec 2099 00:00:00 UTC\n";

    #[test]
    fn a_signed_archive_is_listed_and_a_warm_listing_reads_the_cache() {
        let archive = tempfile::tempdir().unwrap();
        let signer = Signer::new("archive");
        publish(archive.path(), &signer, None, FUTURE);
        let listing = list(archive.path(), &signer.keyring);
        assert!(listing.skipped.is_empty(), "{:?}", listing.skipped);
        assert_eq!(listing.kernels.len(), 1);
        assert_eq!(listing.kernels[0].release, "6.16.3+deb13-cloud-amd64");
        assert_eq!(listing.kernels[0].upstream, "6.16.3");
        // Warm: the index is gone from the archive, the verified list is cached by its sha256.
        fs::remove_file(
            archive
                .path()
                .join("dists/test/main/binary-amd64/Packages.xz"),
        )
        .unwrap();
        assert_eq!(list(archive.path(), &signer.keyring).kernels.len(), 1);
    }

    #[test]
    fn a_tampered_index_a_bad_or_foreign_signature_and_a_stale_release_are_refused() {
        let refused = |root: &Path, keyring: &Path| {
            let listing = list(root, keyring);
            assert!(listing.kernels.is_empty());
            listing.skipped[0].1.clone()
        };
        let signer = Signer::new("archive");

        let tampered = tempfile::tempdir().unwrap();
        publish(tampered.path(), &signer, Some(b"another index"), FUTURE);
        let why = refused(tampered.path(), &signer.keyring);
        assert!(why.contains("the signed InRelease lists"), "{why}");

        let altered = tempfile::tempdir().unwrap();
        let signed = publish(altered.path(), &signer, None, FUTURE);
        let text = String::from_utf8(signed)
            .unwrap()
            .replace("Suite: test", "Suite: evil");
        fs::write(altered.path().join("dists/test/InRelease"), text).unwrap();
        let why = refused(altered.path(), &signer.keyring);
        assert!(why.contains("signature does not verify"), "{why}");

        let foreign = tempfile::tempdir().unwrap();
        publish(foreign.path(), &Signer::new("stranger"), None, FUTURE);
        let why = refused(foreign.path(), &signer.keyring);
        assert!(why.contains("signature does not verify"), "{why}");

        let stale = tempfile::tempdir().unwrap();
        publish(
            stale.path(),
            &signer,
            None,
            "Valid-Until: Sun, 01 Nov 2026 00:00:00 UTC\n",
        );
        let why = refused(stale.path(), &signer.keyring);
        assert!(why.contains("expired on 2026-11-01"), "{why}");
    }

    #[test]
    #[ignore = "needs the network: the real Debian archive"]
    fn the_real_archive_holds_the_pinned_kernels() {
        let cache = Cache::default_location().unwrap();
        let base = crate::supply::fetch::archive_base_url().unwrap();
        let listing = archive_kernels(&cache, &base).unwrap();
        for (upstream, flavour) in [
            ("5.10", Flavour::Cloud),
            ("6.1", Flavour::Cloud),
            ("6.12", Flavour::Rt),
            ("7.2", Flavour::Generic),
        ] {
            let spec =
                KernelSpec::parse_text(&format!("debian:{upstream}:{}", flavour.as_str())).unwrap();
            let kernel = resolve(&spec, &listing.kernels).unwrap();
            assert!(!kernel.packages.is_empty());
        }
    }
}
