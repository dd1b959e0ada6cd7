//! The Go toolchain catalogue: `vm-images/go-toolchains.toml`, Debian's golang-X.Y packages
//! pinned by sha256, with what each runtime does by default (MADV_FREE or MADV_DONTNEED).
//!
//! The catalogue is compiled in, so scenarios are checked against the same ids the lab builds
//! with ([`crate::supply::toolchain`] fetches and unpacks one).

use std::collections::BTreeSet;
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::KernelPackage;

/// The catalogue as shipped in the repository.
const CATALOGUE_TEXT: &str = include_str!("../../../vm-images/go-toolchains.toml");

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
    /// The packages ship the ThreadSanitizer runtime `go build -race` links for linux/amd64
    /// (`src/runtime/race/race_linux_amd64.syso`, or `internal/amd64v1/race_linux.syso` from
    /// Go 1.21 on), so race-enabled builds work (with cgo and a C compiler).
    pub race: bool,
    /// golang-X.Y-go and golang-X.Y-src.
    #[serde(rename = "package")]
    pub packages: Vec<KernelPackage>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_catalogue_has_an_old_and_a_modern_go() {
        let catalogue = go_catalogue();
        assert_eq!(
            catalogue.ids(),
            [
                "1.15", "1.19", "1.21", "1.22", "1.23", "1.24", "1.25", "1.26", "1.27"
            ]
        );
        let old = catalogue.get("1.15").unwrap();
        assert!(old.madv_free_default);
        assert_eq!(old.goroot, "usr/lib/go-1.15");
        assert_eq!(old.packages.len(), 2);
        assert!(!catalogue.get("1.24").unwrap().madv_free_default);
        assert!(catalogue.get("1.16").is_none());
        assert!(catalogue.get("1.20").is_none());
    }

    #[test]
    fn the_shipped_catalogue_pins_every_debian_go_in_order_with_its_race_runtime() {
        let catalogue = go_catalogue();
        let found: Vec<(&str, &str, bool, bool)> = catalogue
            .toolchains
            .iter()
            .map(|go| {
                (
                    go.id.as_str(),
                    go.suite.as_str(),
                    go.madv_free_default,
                    go.race,
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                ("1.15", "bullseye", true, true),
                ("1.19", "bookworm", false, true),
                ("1.21", "bookworm-backports", false, true),
                ("1.22", "bookworm-backports", false, true),
                ("1.23", "bookworm-backports", false, true),
                ("1.24", "trixie", false, true),
                ("1.25", "trixie-backports", false, true),
                ("1.26", "trixie-backports", false, true),
                ("1.27", "trixie-backports", false, true),
            ]
        );
        for go in &catalogue.toolchains {
            assert_eq!(go.goroot, format!("usr/lib/go-{}", go.id));
            let [bin, src] = go.packages.as_slice() else {
                panic!("{}: expected golang-X.Y-go and golang-X.Y-src", go.id);
            };
            assert_eq!(bin.name, format!("golang-{}-go", go.id));
            assert_eq!(src.name, format!("golang-{}-src", go.id));
            assert_eq!(bin.version, src.version, "{}", go.id);
            assert!(
                bin.version.starts_with(&format!("{}.", go.id)),
                "{}: {}",
                go.id,
                bin.version
            );
            for package in &go.packages {
                assert!(
                    package
                        .filename
                        .starts_with(&format!("pool/main/g/golang-{}/", go.id)),
                    "{}",
                    package.filename
                );
            }
        }
    }

    #[test]
    fn race_is_required() {
        let text = CATALOGUE_TEXT.replacen("race = true\n", "", 1);
        let error = format!("{:#}", parse_go_catalogue(&text).unwrap_err());
        assert!(error.contains("missing field `race`"), "{error}");
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
}
