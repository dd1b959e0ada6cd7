//! A suite's `InRelease`, verified: its OpenPGP signature checked by `gpgv` against Debian's
//! archive keyring, only the signed text kept, and refused once its `Valid-Until` has passed.
//!
//! [`verified_release`] fetches it (or reuses the cached copy while it is fresh: until its
//! `Valid-Until`, or for [`STABLE_REFRESH`] for suites without one) and re-verifies the copy on
//! every use, so a cached file is never trusted for having been downloaded once.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};

use crate::supply::fetch::read_url;

/// Debian's archive keyring, from the `debian-archive-keyring` package.
pub const DEFAULT_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
/// Environment variable naming another keyring (a local mirror's own key).
pub const KEYRING_ENV: &str = "RSSLAB_DEBIAN_KEYRING";
/// How long the index of a suite without `Valid-Until` (the stable releases, re-signed at
/// point releases) is used before it is fetched again: kernels are replaced by security and
/// point-release uploads, so a day-old index may name packages that are gone.
pub const STABLE_REFRESH: Duration = Duration::from_secs(6 * 3600);

/// The signed part of an `InRelease` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub suite: String,
    pub date: Option<SystemTime>,
    pub valid_until: Option<SystemTime>,
    /// `SHA256:` entries: path -> (sha256, size).
    pub sha256: Vec<(String, String, u64)>,
}

impl Release {
    /// The sha256 and size InRelease lists for `path` (`main/binary-amd64/Packages.xz`).
    pub fn file(&self, path: &str) -> Option<(&str, u64)> {
        self.sha256
            .iter()
            .find(|(name, _, _)| name == path)
            .map(|(_, sha256, size)| (sha256.as_str(), *size))
    }
}

/// The keyring to verify with: `$RSSLAB_DEBIAN_KEYRING`, else Debian's.
pub fn keyring() -> PathBuf {
    std::env::var_os(KEYRING_ENV)
        .filter(|path| !path.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_KEYRING), PathBuf::from)
}

/// `suite`'s InRelease from `base_url` (or `dir`'s fresh copy), verified with `keyring`.
pub fn verified_release(
    base_url: &str,
    suite: &str,
    dir: &Path,
    keyring: &Path,
) -> Result<Release> {
    let cached = dir.join(format!("{suite}.InRelease"));
    if let Ok(release) = verify_file(&cached, suite, keyring)
        && fresh(&release, &cached)
    {
        return Ok(release);
    }
    let url = format!("{}/dists/{suite}/InRelease", base_url.trim_end_matches('/'));
    let bytes =
        read_url(&url, 16 << 20).with_context(|| format!("fetching {suite}'s InRelease"))?;
    let temp = dir.join(format!(".{suite}.InRelease.{}", std::process::id()));
    fs::write(&temp, &bytes).with_context(|| format!("writing {}", temp.display()))?;
    let release = verify_file(&temp, suite, keyring);
    match release {
        Ok(release) => {
            fs::rename(&temp, &cached).with_context(|| format!("writing {}", cached.display()))?;
            Ok(release)
        }
        Err(error) => {
            fs::remove_file(&temp).ok();
            Err(error)
        }
    }
}

/// Whether a verified cached release may be used without fetching it again.
fn fresh(release: &Release, file: &Path) -> bool {
    match release.valid_until {
        Some(_) => true, // verify_file refuses it once Valid-Until has passed
        None => fs::metadata(file)
            .and_then(|meta| meta.modified())
            .is_ok_and(|modified| modified.elapsed().is_ok_and(|age| age < STABLE_REFRESH)),
    }
}

/// Verifies `path` with gpgv and parses the signed text; refuses a stale one.
pub fn verify_file(path: &Path, suite: &str, keyring: &Path) -> Result<Release> {
    if !path.is_file() {
        bail!("{} does not exist", path.display());
    }
    let signed = gpgv_signed_text(path, keyring).with_context(|| format!("{suite}: InRelease"))?;
    let release = parse_release(suite, &signed)?;
    if let Some(valid_until) = release.valid_until
        && valid_until < SystemTime::now()
    {
        bail!(
            "{suite}: InRelease expired on {} (the archive's copy is stale, as apt would say): \
             its packages cannot be trusted to be current; use another suite's kernel",
            humantime::format_rfc3339_seconds(valid_until)
        );
    }
    Ok(release)
}

/// The text `path`'s signature covers, if gpgv finds a good signature by a key of `keyring`.
fn gpgv_signed_text(path: &Path, keyring: &Path) -> Result<String> {
    if !keyring.is_file() {
        bail!(
            "no keyring at {}: install debian-archive-keyring (scripts/install-host-deps.sh does)",
            keyring.display()
        );
    }
    let output_file = tempfile::NamedTempFile::new().context("a temporary file for gpgv")?;
    let output = duct::cmd!(
        "gpgv",
        "--status-fd",
        "1",
        "--keyring",
        keyring,
        "--output",
        output_file.path(),
        path
    )
    .stdout_capture()
    .stderr_capture()
    .unchecked()
    .run()
    .context("running gpgv (install it: scripts/install-host-deps.sh)")?;
    let status = String::from_utf8_lossy(&output.stdout);
    let tokens: Vec<&str> = status
        .lines()
        .filter_map(|line| line.strip_prefix("[GNUPG:] "))
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    let bad = ["BADSIG", "EXPKEYSIG", "REVKEYSIG", "ERRSIG", "NO_PUBKEY"];
    if !output.status.success()
        || !tokens.contains(&"VALIDSIG")
        || tokens.iter().any(|token| bad.contains(token))
    {
        bail!(
            "the signature does not verify against {} ({}): refused",
            keyring.display(),
            String::from_utf8_lossy(&output.stderr)
                .trim()
                .replace('\n', "; ")
        );
    }
    fs::read_to_string(output_file.path()).context("reading gpgv's output")
}

/// The fields of a release file's text.
pub fn parse_release(suite: &str, text: &str) -> Result<Release> {
    let mut release = Release {
        suite: suite.to_owned(),
        date: None,
        valid_until: None,
        sha256: Vec::new(),
    };
    let mut in_sha256 = false;
    for line in text.lines() {
        if let Some(entry) = line.strip_prefix(' ') {
            if in_sha256 {
                let parts: Vec<&str> = entry.split_whitespace().collect();
                if let [sha256, size, name] = parts[..] {
                    release
                        .sha256
                        .push((name.to_owned(), sha256.to_owned(), size.parse()?));
                }
            }
            continue;
        }
        in_sha256 = line.trim_end() == "SHA256:";
        if let Some(value) = line.strip_prefix("Date:") {
            release.date = Some(parse_date(value.trim())?);
        } else if let Some(value) = line.strip_prefix("Valid-Until:") {
            release.valid_until = Some(parse_date(value.trim())?);
        }
    }
    if release.sha256.is_empty() {
        bail!("{suite}: InRelease lists no SHA256 files");
    }
    Ok(release)
}

/// An RFC 2822 date as release files write it (`Wed, 09 Dec 2026 02:09:57 UTC`).
pub fn parse_date(text: &str) -> Result<SystemTime> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, time, zone] = parts[..] else {
        bail!("bad date `{text}`");
    };
    let month = MONTHS
        .iter()
        .position(|name| *name == month)
        .with_context(|| format!("bad month in `{text}`"))?
        + 1;
    if !matches!(zone, "UTC" | "GMT" | "+0000" | "Z") {
        bail!("date `{text}`: only UTC is expected in a release file");
    }
    let day: u32 = day
        .parse()
        .with_context(|| format!("bad day in `{text}`"))?;
    let rfc3339 = format!("{year}-{month:02}-{day:02}T{time}Z");
    humantime::parse_rfc3339(&rfc3339).with_context(|| format!("bad date `{text}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "Origin: Debian\nSuite: trixie-backports\nDate: Wed, 02 Dec 2026 02:09:57 UTC\n\
Valid-Until: Wed, 09 Dec 2026 02:09:57 UTC\nMD5Sum:\n 0123 10 main/binary-amd64/Packages.xz\nSHA256:\n \
aaaa 1234 main/binary-amd64/Packages.xz\n bbbb 99 main/binary-amd64/Release\n";

    #[test]
    fn release_fields_are_read_from_the_signed_text() {
        let release = parse_release("trixie-backports", TEXT).unwrap();
        assert_eq!(
            release.file("main/binary-amd64/Packages.xz"),
            Some(("aaaa", 1234))
        );
        assert_eq!(
            release.file("main/binary-amd64/Release"),
            Some(("bbbb", 99))
        );
        assert_eq!(
            release.sha256.len(),
            2,
            "MD5Sum entries are not SHA256 ones"
        );
        assert_eq!(
            humantime::format_rfc3339_seconds(release.valid_until.unwrap()).to_string(),
            "2026-12-09T02:09:57Z"
        );
        assert!(parse_release("x", "Date: Wed, 02 Dec 2026 02:09:57 UTC\n").is_err());
    }

    #[test]
    fn dates_are_rfc2822_in_utc() {
        assert_eq!(
            humantime::format_rfc3339_seconds(parse_date("Sat, 9 Aug 2025 09:16:30 UTC").unwrap())
                .to_string(),
            "2025-08-09T09:16:30Z"
        );
        assert!(parse_date("Sat, 9 Aug 2025 09:16:30 +0200").is_err());
        assert!(parse_date("yesterday").is_err());
    }
}
