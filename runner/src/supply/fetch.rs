//! Verified downloads of pinned packages from a Debian archive.
//!
//! The archive's base URL is never written into the repository: it comes from
//! `$RSSLAB_DEBIAN_MIRROR` or from the host's apt sources ([`archive_base_url`]).
//! [`fetch_verified`] downloads a [`KernelPackage`] into the cache, keyed by its sha256, and
//! checks size and sha256 before the file appears under its final name; a cached file is
//! re-verified on every use and fetched again if it was tampered with or truncated.
//!
//! Besides `http(s)://`, a base may be `file:///dir` or a plain directory, which tests (and
//! air-gapped hosts with a local mirror) use.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use rsslab_wire::Bytes;
use sha2::{Digest, Sha256};

use crate::catalogue::KernelPackage;
use crate::files::write_atomic_with;
use crate::supply::cache::Cache;

/// Environment variable with the Debian archive's base URL (`http://<mirror>/debian`).
pub const MIRROR_ENV: &str = "RSSLAB_DEBIAN_MIRROR";

/// The host's apt configuration, read in apt's order.
const APT_SOURCES_LIST: &str = "/etc/apt/sources.list";
const APT_SOURCES_DIR: &str = "/etc/apt/sources.list.d";

/// Attempts per download when the transfer itself fails (verification failures are final).
const ATTEMPTS: u32 = 3;

/// A downloaded file is not what the catalogue pins.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{package}: {origin} has {actual} bytes, the catalogue pins {expected}")]
    Size {
        package: String,
        origin: String,
        expected: u64,
        actual: u64,
    },
    #[error("{package}: sha256 mismatch for {origin}: expected {expected}, got {actual}")]
    Digest {
        package: String,
        origin: String,
        expected: String,
        actual: String,
    },
}

/// The Debian archive to fetch from: `$RSSLAB_DEBIAN_MIRROR`, else the first Debian archive
/// (not security) URI in the host's apt sources. Never ends with `/`.
pub fn archive_base_url() -> Result<String> {
    if let Ok(url) = std::env::var(MIRROR_ENV) {
        let url = url.trim();
        if !url.is_empty() {
            return Ok(url.trim_end_matches('/').to_owned());
        }
    }
    let files = read_host_apt_sources();
    let sources: Vec<AptSource> = files
        .iter()
        .flat_map(|(path, text)| parse_apt_sources(path, text))
        .collect();
    choose_archive_uri(&sources).ok_or_else(|| {
        anyhow!(
            "no Debian archive found in the host's apt sources ({APT_SOURCES_LIST}, {APT_SOURCES_DIR}/); \
             set {MIRROR_ENV} to a Debian mirror's base URL (the directory that holds pool/ and dists/)"
        )
    })
}

/// One `deb` entry of an apt sources file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSource {
    /// Base URI of the archive.
    pub uri: String,
    /// Suites (`bookworm`, `bookworm-security`).
    pub suites: Vec<String>,
}

/// Parses an apt sources file by its name: `*.sources` as deb822, anything else one-line.
pub fn parse_apt_sources(path: &Path, text: &str) -> Vec<AptSource> {
    if path.extension().is_some_and(|ext| ext == "sources") {
        parse_deb822_sources(text)
    } else {
        parse_one_line_sources(text)
    }
}

/// Parses one-line style (`deb [options] URI suite [component...]`); `deb-src` is skipped.
pub fn parse_one_line_sources(text: &str) -> Vec<AptSource> {
    let mut sources = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some(rest) = line
            .strip_prefix("deb ")
            .or_else(|| line.strip_prefix("deb\t"))
        else {
            continue;
        };
        let rest = rest.trim_start();
        // Options: `[arch=amd64 signed-by=/usr/share/keyrings/x.gpg]`.
        let rest = match rest.strip_prefix('[') {
            Some(options) => match options.split_once(']') {
                Some((_, after)) => after,
                None => continue,
            },
            None => rest,
        };
        let mut words = rest.split_whitespace();
        if let (Some(uri), Some(suite)) = (words.next(), words.next()) {
            sources.push(AptSource {
                uri: uri.to_owned(),
                suites: vec![suite.to_owned()],
            });
        }
    }
    sources
}

/// Parses deb822 style (`Types:`, `URIs:`, `Suites:`, `Enabled:` stanzas separated by blank
/// lines); stanzas without type `deb` or with `Enabled: no` are skipped.
pub fn parse_deb822_sources(text: &str) -> Vec<AptSource> {
    let mut sources = Vec::new();
    for stanza in deb822_stanzas(text) {
        let field = |name: &str| {
            stanza
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.as_str())
        };
        let types = field("Types").unwrap_or("");
        if !types.split_whitespace().any(|kind| kind == "deb") {
            continue;
        }
        if field("Enabled").is_some_and(|enabled| enabled.trim().eq_ignore_ascii_case("no")) {
            continue;
        }
        let suites: Vec<String> = field("Suites")
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        for uri in field("URIs").unwrap_or("").split_whitespace() {
            sources.push(AptSource {
                uri: uri.to_owned(),
                suites: suites.clone(),
            });
        }
    }
    sources
}

/// Splits deb822 text into stanzas of (field, value); continuation lines join the value.
fn deb822_stanzas(text: &str) -> Vec<Vec<(String, String)>> {
    let mut stanzas = Vec::new();
    let mut current: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                stanzas.push(std::mem::take(&mut current));
            }
        } else if line.starts_with('#') {
            continue;
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = current.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((key, value)) = line.split_once(':') {
            current.push((key.trim().to_owned(), value.trim().to_owned()));
        }
    }
    if !current.is_empty() {
        stanzas.push(current);
    }
    stanzas
}

/// The first Debian archive URI among `sources` that is not a security archive, preferring a
/// live mirror over a dated snapshot (which lacks newer packages). Trailing `/` removed.
pub fn choose_archive_uri(sources: &[AptSource]) -> Option<String> {
    let candidates: Vec<&AptSource> = sources
        .iter()
        .filter(|source| is_debian_archive(source))
        .collect();
    let live = candidates
        .iter()
        .find(|source| !source.uri.to_ascii_lowercase().contains("snapshot"));
    live.or(candidates.first())
        .map(|source| source.uri.trim_end_matches('/').to_owned())
}

fn is_debian_archive(source: &AptSource) -> bool {
    let uri = source.uri.to_ascii_lowercase();
    let supported_scheme = ["http://", "https://", "file:/"]
        .iter()
        .any(|scheme| uri.starts_with(scheme));
    let security = uri.contains("security")
        || source
            .suites
            .iter()
            .any(|suite| suite.ends_with("-security") || suite.ends_with("/updates"));
    let other_archive = ["debian-ports", "debian-debug", "ubuntu"]
        .iter()
        .any(|name| uri.contains(name));
    supported_scheme && uri.contains("debian") && !security && !other_archive
}

/// The host's apt sources files with their contents, in apt's order (unreadable ones skipped).
fn read_host_apt_sources() -> Vec<(PathBuf, String)> {
    let mut paths = vec![PathBuf::from(APT_SOURCES_LIST)];
    if let Ok(entries) = fs::read_dir(APT_SOURCES_DIR) {
        let mut listed: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| {
                path.extension()
                    .is_some_and(|ext| ext == "list" || ext == "sources")
            })
            .collect();
        listed.sort();
        paths.extend(listed);
    }
    paths
        .into_iter()
        .filter_map(|path| fs::read_to_string(&path).ok().map(|text| (path, text)))
        .collect()
}

/// The package's file in the cache, downloaded from `base_url` if it is not there yet.
///
/// A cached file is re-verified (size and sha256) and, if it does not match, deleted and
/// fetched again. A download goes to a temporary file and is renamed into place only after
/// its size and sha256 match the catalogue; a mismatch is a [`VerifyError`].
pub fn fetch_verified(cache: &Cache, base_url: &str, pkg: &KernelPackage) -> Result<PathBuf> {
    cache.downloads_dir()?;
    let path = cache.download_path(&pkg.sha256, pkg.file_name());
    if path.exists() {
        match verify_file(&path, pkg) {
            Ok(()) => return Ok(path),
            Err(error) => {
                tracing::warn!(
                    "cached {} is damaged, fetching it again: {error:#}",
                    path.display()
                );
                fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            }
        }
    }
    let url = package_url(base_url, &pkg.filename);
    tracing::info!(package = %pkg.name, size = pkg.size, "downloading {url} ({})", Bytes(pkg.size));
    let started = Instant::now();
    download_with_retries(&url, &path, pkg)?;
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(package = %pkg.name, "downloaded {} in {seconds:.1}s", Bytes(pkg.size));
    Ok(path)
}

/// `<base>/<filename>`.
fn package_url(base_url: &str, filename: &str) -> String {
    format!(
        "{}/{}",
        base_url.trim_end_matches('/'),
        filename.trim_start_matches('/')
    )
}

fn download_with_retries(url: &str, path: &Path, pkg: &KernelPackage) -> Result<()> {
    let mut attempt = 1;
    loop {
        match download_to(url, path, pkg) {
            Ok(()) => return Ok(()),
            Err(error)
                if error.downcast_ref::<VerifyError>().is_some()
                    || attempt >= ATTEMPTS
                    || !url.starts_with("http") =>
            {
                return Err(error);
            }
            Err(error) => {
                tracing::warn!(
                    "download of {url} failed (attempt {attempt} of {ATTEMPTS}): {error:#}"
                );
                std::thread::sleep(Duration::from_secs(2 * u64::from(attempt)));
                attempt += 1;
            }
        }
    }
}

/// Streams `url` into a temporary file beside `path`, verifies it and renames it to `path`.
fn download_to(url: &str, path: &Path, pkg: &KernelPackage) -> Result<()> {
    write_atomic_with(path, |file| {
        let reader = open_url(url)?;
        let (size, digest) =
            copy_hashing(reader, file, pkg.size).with_context(|| format!("reading {url}"))?;
        check(pkg, url, size, &digest)?;
        Ok(())
    })
}

/// The whole of `url` (at most `limit` bytes: a larger answer is an error), for indexes
/// that are verified after reading.
pub fn read_url(url: &str, limit: u64) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    open_url(url)?
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {url}"))?;
    if bytes.len() as u64 > limit {
        bail!("{url}: larger than {limit} bytes");
    }
    Ok(bytes)
}

/// Opens `url` for reading: `http(s)://` with timeouts, `file://` or a plain path from disk.
fn open_url(url: &str) -> Result<Box<dyn Read>> {
    if url.starts_with("http://") || url.starts_with("https://") {
        let response = http_agent()
            .get(url)
            .call()
            .with_context(|| format!("GET {url}"))?;
        return Ok(Box::new(response.into_body().into_reader()));
    }
    let path = match url
        .strip_prefix("file://")
        .or_else(|| url.strip_prefix("file:"))
    {
        Some(path) => path,
        None if !url.contains("://") => url,
        None => {
            bail!("{url}: unsupported URL scheme (use http://, https://, file:// or a directory)")
        }
    };
    let file = fs::File::open(path).with_context(|| format!("opening {path}"))?;
    Ok(Box::new(file))
}

fn http_agent() -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .timeout_global(Some(Duration::from_secs(30 * 60)))
        .user_agent(concat!("rsslab/", env!("CARGO_PKG_VERSION")))
        .build();
    config.into()
}

/// Copies at most `expected + 1` bytes (enough to notice a larger file) while hashing them.
fn copy_hashing(
    reader: impl Read,
    out: &mut impl Write,
    expected: u64,
) -> io::Result<(u64, String)> {
    let mut reader = reader.take(expected.saturating_add(1));
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        hasher.update(&buffer[..n]);
        out.write_all(&buffer[..n])?;
        total += n as u64;
    }
    Ok((total, hex::encode(hasher.finalize())))
}

/// Checks a cached file against the package's pinned size and sha256.
fn verify_file(path: &Path, pkg: &KernelPackage) -> Result<()> {
    let file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let (size, digest) = copy_hashing(file, &mut io::sink(), pkg.size)
        .with_context(|| format!("reading {}", path.display()))?;
    check(pkg, &path.display().to_string(), size, &digest)
}

fn check(pkg: &KernelPackage, origin: &str, size: u64, digest: &str) -> Result<()> {
    if size != pkg.size {
        return Err(VerifyError::Size {
            package: pkg.name.clone(),
            origin: origin.to_owned(),
            expected: pkg.size,
            actual: size,
        }
        .into());
    }
    if digest != pkg.sha256 {
        return Err(VerifyError::Digest {
            package: pkg.name.clone(),
            origin: origin.to_owned(),
            expected: pkg.sha256.clone(),
            actual: digest.to_owned(),
        }
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb822_takes_the_first_archive_that_is_not_security() {
        let text = "Types: deb\n# http://snapshot.example/archive/debian/20250520T000000Z\nURIs: http://mirror.example/debian\n\
                    Suites: bookworm bookworm-updates\nComponents: main\n\n\
                    Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n";
        let sources = parse_deb822_sources(text);
        assert_eq!(sources.len(), 2);
        assert_eq!(sources[0].suites, ["bookworm", "bookworm-updates"]);
        assert_eq!(
            choose_archive_uri(&sources).unwrap(),
            "http://mirror.example/debian"
        );
        // Security first in the file still yields the main archive.
        let reversed: Vec<_> = sources.iter().rev().cloned().collect();
        assert_eq!(
            choose_archive_uri(&reversed).unwrap(),
            "http://mirror.example/debian"
        );
    }

    #[test]
    fn deb822_skips_disabled_and_source_only_stanzas_and_joins_continuations() {
        let text = "Types: deb-src\nURIs: http://a.example/debian\nSuites: sid\n\n\
                    Types: deb\nEnabled: no\nURIs: http://b.example/debian\nSuites: sid\n\n\
                    Types: deb deb-src\nURIs:\n http://c.example/debian/\n http://d.example/debian\nSuites: sid\n";
        let sources = parse_deb822_sources(text);
        let uris: Vec<_> = sources.iter().map(|s| s.uri.as_str()).collect();
        assert_eq!(
            uris,
            ["http://c.example/debian/", "http://d.example/debian"]
        );
        assert_eq!(
            choose_archive_uri(&sources).unwrap(),
            "http://c.example/debian"
        );
    }

    #[test]
    fn one_line_sources_with_options_comments_and_security() {
        let text = "# deb http://old.example/debian buster main\n\
                    deb-src http://src.example/debian bookworm main\n\
                    deb http://security.example/debian-security bookworm-security main\n\
                    deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] https://m.example/debian/ bookworm main # note\n\
                    deb http://ppa.example/ubuntu jammy main\n";
        let sources = parse_one_line_sources(text);
        assert_eq!(sources.len(), 3);
        assert_eq!(sources[1].uri, "https://m.example/debian/");
        assert_eq!(
            choose_archive_uri(&sources).unwrap(),
            "https://m.example/debian"
        );
    }

    #[test]
    fn snapshots_and_non_debian_sources_are_fallbacks_or_ignored() {
        let snapshot = AptSource {
            uri: "http://snapshot.example/archive/debian/20250101T000000Z".into(),
            suites: vec!["bookworm".into()],
        };
        let other = AptSource {
            uri: "https://packages.example.com/apt".into(),
            suites: vec!["stable".into()],
        };
        let live = AptSource {
            uri: "http://m.example/debian".into(),
            suites: vec!["bookworm".into()],
        };
        assert_eq!(choose_archive_uri(std::slice::from_ref(&other)), None);
        assert_eq!(
            choose_archive_uri(&[snapshot.clone(), other.clone()]).unwrap(),
            snapshot.uri
        );
        assert_eq!(
            choose_archive_uri(&[snapshot, other, live.clone()]).unwrap(),
            live.uri
        );
        assert_eq!(
            parse_apt_sources(
                Path::new("x.sources"),
                "Types: deb\nURIs: http://m.example/debian\nSuites: sid\n"
            )
            .len(),
            1
        );
        assert_eq!(
            parse_apt_sources(
                Path::new("x.list"),
                "deb http://m.example/debian sid main\n"
            )
            .len(),
            1
        );
    }

    /// A local "archive" holding one package, and the package as the catalogue pins it.
    fn archive_with(content: &[u8]) -> (tempfile::TempDir, KernelPackage) {
        let archive = tempfile::tempdir().unwrap();
        let filename = "pool/main/l/linux/linux-image-test_1_amd64.deb";
        let path = archive.path().join(filename);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
        let pkg = KernelPackage {
            name: "linux-image-test".into(),
            version: "1".into(),
            filename: filename.into(),
            size: content.len() as u64,
            sha256: hex::encode(Sha256::digest(content)),
        };
        (archive, pkg)
    }

    fn file_url(dir: &Path) -> String {
        format!("file://{}", dir.display())
    }

    #[test]
    fn fetches_from_a_file_archive_and_reuses_the_cached_copy() {
        let (archive, pkg) = archive_with(b"the package");
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(cache_dir.path().to_path_buf());
        let path = fetch_verified(&cache, &file_url(archive.path()), &pkg).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"the package");
        assert!(
            path.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(&pkg.sha256)
        );
        // The archive is gone: the cached copy is used (a plain directory base works too).
        drop(archive);
        assert_eq!(fetch_verified(&cache, "/nonexistent", &pkg).unwrap(), path);
    }

    #[test]
    fn a_tampered_cached_file_is_fetched_again() {
        let (archive, pkg) = archive_with(b"the package");
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(cache_dir.path().to_path_buf());
        let path = fetch_verified(&cache, archive.path().to_str().unwrap(), &pkg).unwrap();
        fs::write(&path, b"the packagX").unwrap();
        assert_eq!(
            fetch_verified(&cache, &file_url(archive.path()), &pkg).unwrap(),
            path
        );
        assert_eq!(fs::read(&path).unwrap(), b"the package");
        // Truncated in the cache: fetched again too.
        fs::write(&path, b"the").unwrap();
        fetch_verified(&cache, &file_url(archive.path()), &pkg).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"the package");
    }

    #[test]
    fn a_download_with_wrong_content_is_rejected_and_not_cached() {
        let (archive, pkg) = archive_with(b"the package");
        fs::write(archive.path().join(&pkg.filename), b"evil packag").unwrap();
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(cache_dir.path().to_path_buf());
        let error = fetch_verified(&cache, &file_url(archive.path()), &pkg).unwrap_err();
        let text = format!("{error:#}");
        assert!(
            text.contains("linux-image-test") && text.contains(&pkg.sha256),
            "{text}"
        );
        assert!(
            text.contains(&hex::encode(Sha256::digest(b"evil packag"))),
            "{text}"
        );
        assert!(matches!(
            error.downcast_ref::<VerifyError>(),
            Some(VerifyError::Digest { .. })
        ));
        assert!(!cache.download_path(&pkg.sha256, pkg.file_name()).exists());
        assert_eq!(
            fs::read_dir(cache.downloads_dir().unwrap())
                .unwrap()
                .count(),
            0,
            "no temporary file left"
        );
    }

    #[test]
    fn truncated_and_oversized_downloads_are_rejected() {
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(cache_dir.path().to_path_buf());
        for served in [&b"the pack"[..], b"the package and more"] {
            let (archive, pkg) = archive_with(b"the package");
            fs::write(archive.path().join(&pkg.filename), served).unwrap();
            let error = fetch_verified(&cache, &file_url(archive.path()), &pkg).unwrap_err();
            let Some(VerifyError::Size {
                expected, actual, ..
            }) = error.downcast_ref::<VerifyError>()
            else {
                panic!("{error:#}")
            };
            assert_eq!(*expected, 11);
            assert_eq!(*actual, served.len().min(12) as u64);
        }
    }

    #[test]
    fn a_missing_file_names_the_url() {
        let (archive, mut pkg) = archive_with(b"x");
        pkg.filename = "pool/missing.deb".into();
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(cache_dir.path().to_path_buf());
        let error = format!(
            "{:#}",
            download_to(
                &package_url(archive.path().to_str().unwrap(), &pkg.filename),
                &cache.download_path("x", "y"),
                &pkg
            )
            .unwrap_err()
        );
        assert!(error.contains("pool/missing.deb"), "{error}");
        assert_eq!(
            package_url("http://m/debian/", "/pool/a.deb"),
            "http://m/debian/pool/a.deb"
        );
    }

    #[test]
    fn file_uris_from_apt_sources_are_usable_bases() {
        assert_eq!(
            choose_archive_uri(&parse_one_line_sources("deb file:/srv/debian/ sid main")).unwrap(),
            "file:/srv/debian"
        );
        let (archive, pkg) = archive_with(b"local");
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(cache_dir.path().to_path_buf());
        fetch_verified(&cache, &format!("file:{}", archive.path().display()), &pkg).unwrap();
    }
}
