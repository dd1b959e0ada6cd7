//! The catalogues: what the lab can boot and build, pinned, and what it may rely on. This
//! module is the kernel catalogue, `vm-images/kernels.toml`: Debian's cloud kernels pinned by
//! sha256, with the facts of each (MADV_FREE, cgroup v1 memory, MGLRU, ...) and its known
//! behaviour changes between package versions; [`go`] is the Go toolchain catalogue, and
//! [`versions`] orders kernel ids and Debian versions, [`reference`] reads how a lab names a
//! kernel (a catalogue id, a Debian version, a file), [`facts`] reads a kernel's facts from
//! its config.
//!
//! [`load_catalogue`] reads and validates it; scenarios name kernels by catalogue id (`6.1`).

pub mod facts;
pub mod go;
pub mod reference;
pub mod versions;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// Environment variable that points at another catalogue file.
pub const CATALOGUE_ENV: &str = "RSSLAB_CATALOGUE";

/// Every kernel the lab can boot, in catalogue order (oldest first).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    /// `[[kernel]]` tables.
    #[serde(rename = "kernel", default)]
    pub kernels: Vec<Kernel>,
}

/// One bootable kernel: the packages it comes from and what it can do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kernel {
    /// Catalogue id, what scenarios write (`6.12`).
    pub id: String,
    /// Instead of pins: a Debian kernel by version (`debian = "debian:6.18:cloud"`), resolved
    /// from the archive's signed index when a lab uses it, its facts from its config. Such an
    /// entry has no `suite`, `release`, `[[kernel.package]]` or `[kernel.facts]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debian: Option<String>,
    /// Debian suite the packages come from (`trixie`).
    #[serde(default)]
    pub suite: String,
    /// `uname -r`, also the directory under `lib/modules/` (`6.12.107+deb13-cloud-amd64`).
    #[serde(default)]
    pub release: String,
    /// The .deb files that together hold the image, its modules, config and modules.builtin.
    #[serde(rename = "package", default)]
    pub packages: Vec<KernelPackage>,
    /// What the lab may rely on.
    #[serde(default)]
    pub facts: KernelFacts,
    /// Known changes of behaviour between package versions of this kernel, which
    /// `rsslab diff` labels `expected` instead of reporting them as regressions.
    #[serde(default)]
    pub behaviour_changes: Vec<BehaviourChange>,
    /// Where the kernel comes from: pinned here, or named on the command line or in a
    /// scenario and resolved for this lab (never written in the catalogue file).
    #[serde(skip)]
    pub origin: KernelOrigin,
    /// The facts of a kernel the catalogue does not pin were derived from its config.
    #[serde(skip)]
    pub facts_derived: bool,
}

/// Where a kernel of a lab comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KernelOrigin {
    /// A `[[kernel]]` of the catalogue file: its facts are written there.
    #[default]
    Pinned,
    /// A Debian kernel by version (`debian:6.18`), resolved from the archive's signed index;
    /// its facts come from its config.
    Archive,
    /// A kernel file of the user's (bzImage, vmlinux or `linux-image-*.deb`), with an optional
    /// modules directory; its facts come from its config where it carries one, else from what
    /// the guest probes.
    Local(LocalKernel),
}

/// A kernel of the user's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalKernel {
    /// The file given (absolute).
    pub path: PathBuf,
    /// `--modules DIR`: a `lib/modules/<release>` directory (or its parent) to take modules from.
    pub modules: Option<PathBuf>,
}

impl Kernel {
    /// Whether the kernel's facts are written in the catalogue (else they are derived).
    pub fn is_pinned(&self) -> bool {
        self.origin == KernelOrigin::Pinned && self.debian.is_none()
    }

    /// Whether `facts` hold: written in the catalogue, or derived from the kernel's config.
    /// Else the runs take them from what the guest probes.
    pub fn facts_known(&self) -> bool {
        self.is_pinned() || self.facts_derived
    }
}

/// `[[kernel.behaviour_changes]]`: a change of what the lab measures that is known to come
/// with a kernel package version, e.g. a stable update that changes reclaim:
///
/// ```toml
/// [[kernel.behaviour_changes]]
/// since = "6.12.110-1"                  # the first package version that behaves so
/// scenario = "image-batch-*"            # scenario ids it shows in (`*` globs); default all
/// what = "max cgroup.working_set"       # what `rsslab diff` names (`*` globs); default all
/// note = "re-read page cache stays inactive since ...; the working set falls"
/// ```
///
/// It applies to a change between a baseline and a new run of this kernel when one booted a
/// version before `since` and the other `since` or later (Debian version order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BehaviourChange {
    /// Debian version of the kernel's packages from which the behaviour holds.
    pub since: String,
    /// Scenario ids it applies to, `*` matching any text. Default: `*`.
    #[serde(default = "any")]
    pub scenario: String,
    /// What changed, as `rsslab diff` names it (`outcome`, `process.<name>.outcome`,
    /// `expect: <name>`, `max process.<name>.rss`, `max cgroup.working_set`, ...), `*`
    /// matching any text. Default: `*`.
    #[serde(default = "any")]
    pub what: String,
    /// Why, for the person reading the comparison.
    pub note: String,
}

fn any() -> String {
    "*".to_owned()
}

/// One pinned .deb, as in the suite's `Packages` index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelPackage {
    /// Package name (`linux-image-6.1.0-50-cloud-amd64`).
    pub name: String,
    /// Debian version (`6.1.176-1`).
    pub version: String,
    /// Pool path relative to the archive's base URL (`pool/main/l/...deb`).
    pub filename: String,
    /// Size in bytes.
    pub size: u64,
    /// sha256 of the file, lower-case hex.
    pub sha256: String,
}

/// Kernel features that decide what a scenario can observe on this kernel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelFacts {
    /// `madvise(MADV_FREE)` exists (Linux >= 4.5).
    pub madv_free: bool,
    /// The cgroup v1 memory controller exists (`CONFIG_MEMCG_V1` on 6.12+).
    pub cgroup_v1_memory: bool,
    /// The multi-generational LRU is built in (`CONFIG_LRU_GEN`).
    pub mglru: bool,
    /// ... and enabled at boot (`CONFIG_LRU_GEN_ENABLED`).
    pub mglru_default: bool,
    /// `vm.overcommit_memory=0` only refuses a single request larger than RAM + swap (>= 5.2).
    pub overcommit_heuristic_total_only: bool,
}

impl Catalogue {
    /// The kernel with this catalogue id.
    pub fn get(&self, id: &str) -> Option<&Kernel> {
        self.kernels.iter().find(|kernel| kernel.id == id)
    }

    /// Every catalogue id, in catalogue order.
    pub fn ids(&self) -> Vec<String> {
        self.kernels
            .iter()
            .map(|kernel| kernel.id.clone())
            .collect()
    }

    /// An error naming the first of `ids` (kernels asked for with `--kernel`) that is not in
    /// the catalogue, and the ones that are.
    pub fn check_ids(&self, ids: &[String]) -> Result<()> {
        match ids.iter().find(|id| self.get(id).is_none()) {
            Some(unknown) => bail!(
                "--kernel {unknown}: not in the catalogue (known: {})",
                self.ids().join(", ")
            ),
            None => Ok(()),
        }
    }
}

impl KernelPackage {
    /// The file's name without its pool directory (`linux-image-..._amd64.deb`).
    pub fn file_name(&self) -> &str {
        self.filename.rsplit('/').next().unwrap_or(&self.filename)
    }
}

/// The catalogue to use: `$RSSLAB_CATALOGUE`, else the repository's `vm-images/kernels.toml`.
pub fn default_catalogue_path() -> PathBuf {
    match std::env::var_os(CATALOGUE_ENV) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../vm-images/kernels.toml"
        )),
    }
}

/// Reads and validates a catalogue file; errors name the file.
pub fn load_catalogue(path: &Path) -> Result<Catalogue> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("reading kernel catalogue {}", path.display()))?;
    parse_catalogue(&text).with_context(|| format!("kernel catalogue {}", path.display()))
}

/// Parses and validates a catalogue's text.
pub fn parse_catalogue(text: &str) -> Result<Catalogue> {
    let catalogue: Catalogue = toml::from_str(text)?;
    validate(&catalogue)?;
    Ok(catalogue)
}

fn validate(catalogue: &Catalogue) -> Result<()> {
    if catalogue.kernels.is_empty() {
        bail!("no [[kernel]] in the catalogue");
    }
    let mut ids = BTreeSet::new();
    for kernel in &catalogue.kernels {
        if !ids.insert(kernel.id.as_str()) {
            bail!("kernel id {:?} appears twice", kernel.id);
        }
        validate_kernel(kernel).with_context(|| format!("kernel {:?}", kernel.id))?;
    }
    Ok(())
}

fn validate_kernel(kernel: &Kernel) -> Result<()> {
    if let Some(debian) = &kernel.debian {
        reference::KernelSpec::parse_text(debian)?;
        if !kernel.packages.is_empty() || !kernel.release.is_empty() || !kernel.suite.is_empty() {
            bail!(
                "`debian = \"{debian}\"` is resolved from the archive: give no suite, release or [[kernel.package]]"
            );
        }
        return Ok(());
    }
    if kernel.id.is_empty() || kernel.release.is_empty() || kernel.release.contains('/') {
        bail!("id and release must be non-empty, release without '/'");
    }
    if kernel.packages.is_empty() {
        bail!("no [[kernel.package]]");
    }
    for package in &kernel.packages {
        validate_package(package).with_context(|| format!("package {:?}", package.name))?;
    }
    for change in &kernel.behaviour_changes {
        if change.since.trim().is_empty() || change.note.trim().is_empty() {
            bail!("a behaviour change needs `since` (a package version) and a `note`");
        }
    }
    Ok(())
}

fn validate_package(package: &KernelPackage) -> Result<()> {
    let sha_ok = package.sha256.len() == 64
        && package
            .sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !sha_ok {
        bail!(
            "sha256 {:?} is not 64 lower-case hex digits",
            package.sha256
        );
    }
    let path_ok = !package.filename.starts_with('/')
        && package.filename.ends_with(".deb")
        && package
            .filename
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..");
    if !path_ok {
        bail!(
            "filename {:?} must be a relative pool path to a .deb",
            package.filename
        );
    }
    if package.size == 0 {
        bail!("size must not be 0");
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn repo_catalogue() -> Catalogue {
        let path = PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../vm-images/kernels.toml"
        ));
        load_catalogue(&path).unwrap()
    }

    #[test]
    fn the_repository_catalogue_loads_with_four_kernels_in_order() {
        let catalogue = repo_catalogue();
        assert_eq!(catalogue.ids(), ["5.10", "6.1", "6.12", "7.2"]);
        let split = catalogue.get("7.2").unwrap();
        assert_eq!(split.packages.len(), 3);
        assert_eq!(split.release, "7.2.12+deb13-cloud-amd64");
        assert!(!split.facts.cgroup_v1_memory);
        assert!(catalogue.get("6.1").unwrap().facts.mglru);
        assert!(!catalogue.get("6.1").unwrap().facts.mglru_default);
        assert!(
            catalogue
                .kernels
                .iter()
                .all(|kernel| kernel.facts.madv_free)
        );
        assert!(catalogue.get("4.14").is_none());
        assert_eq!(
            catalogue.get("5.10").unwrap().packages[0].file_name(),
            "linux-image-5.10.0-32-cloud-amd64_5.10.223-1_amd64.deb"
        );
    }

    #[test]
    fn every_package_name_carries_its_kernels_release() {
        for kernel in repo_catalogue().kernels {
            for package in &kernel.packages {
                assert!(
                    package.name.ends_with(&kernel.release),
                    "{package:?} vs {}",
                    kernel.release
                );
            }
        }
    }

    /// A catalogue of one kernel (6.1), for the tests of the stages that read catalogues.
    pub(crate) const ONE: &str = r#"
[[kernel]]
id = "6.1"
suite = "bookworm"
release = "6.1.0-50-cloud-amd64"
[[kernel.package]]
name = "linux-image-6.1.0-50-cloud-amd64"
version = "6.1.176-1"
filename = "pool/main/l/x/linux-image.deb"
size = 10
sha256 = "efe19f605b6f54a8352e68d85a629abb2d30b72a085faef603a9152590baa791"
[kernel.facts]
madv_free = true
cgroup_v1_memory = true
mglru = true
mglru_default = false
overcommit_heuristic_total_only = true
"#;

    #[test]
    fn parses_a_minimal_catalogue_with_default_behaviour_changes() {
        let catalogue = parse_catalogue(ONE).unwrap();
        assert!(catalogue.kernels[0].behaviour_changes.is_empty());
    }

    #[test]
    fn reads_behaviour_changes_with_defaults() {
        let text = format!(
            "{ONE}[[kernel.behaviour_changes]]\nsince = \"6.1.180-1\"\nwhat = \"max cgroup.*\"\nnote = \"reclaim\"\n"
        );
        let change = &parse_catalogue(&text).unwrap().kernels[0].behaviour_changes[0];
        assert_eq!(
            (
                change.since.as_str(),
                change.scenario.as_str(),
                change.what.as_str()
            ),
            ("6.1.180-1", "*", "max cgroup.*")
        );
        let no_note = text.replace("note = \"reclaim\"\n", "note = \" \"\n");
        let error = format!("{:#}", parse_catalogue(&no_note).unwrap_err());
        assert!(error.contains("needs `since`"), "{error}");
    }

    #[test]
    fn rejects_unknown_fields_bad_digests_and_paths_and_duplicates() {
        let unknown = ONE.replace("madv_free = true", "madv_free = true\nthp = true");
        let error = format!("{:#}", parse_catalogue(&unknown).unwrap_err());
        assert!(error.contains("unknown field `thp`"), "{error}");

        let bad_sha = ONE.replace("efe19f", "EFE19F");
        let error = format!("{:#}", parse_catalogue(&bad_sha).unwrap_err());
        assert!(error.contains("sha256"), "{error}");

        let bad_path = ONE.replace("pool/main/l/x/", "../");
        let error = format!("{:#}", parse_catalogue(&bad_path).unwrap_err());
        assert!(error.contains("relative pool path"), "{error}");

        let twice = format!("{ONE}{ONE}");
        let error = format!("{:#}", parse_catalogue(&twice).unwrap_err());
        assert!(error.contains("appears twice"), "{error}");
    }

    #[test]
    fn an_entry_may_name_a_debian_version_instead_of_pins() {
        let by_version = format!("{ONE}\n[[kernel]]\nid = \"6.18\"\ndebian = \"debian:6.18:rt\"\n");
        let catalogue = parse_catalogue(&by_version).unwrap();
        let kernel = catalogue.get("6.18").unwrap();
        assert_eq!(kernel.debian.as_deref(), Some("debian:6.18:rt"));
        assert!(kernel.packages.is_empty() && !kernel.is_pinned() && !kernel.facts_known());
        let with_pins = by_version.replace(
            "debian = \"debian:6.18:rt\"",
            "debian = \"debian:6.18\"\nrelease = \"x\"",
        );
        let error = format!("{:#}", parse_catalogue(&with_pins).unwrap_err());
        assert!(error.contains("resolved from the archive"), "{error}");
        let bad = by_version.replace("debian:6.18:rt", "debian:newest");
        assert!(parse_catalogue(&bad).is_err());
    }

    #[test]
    fn load_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kernels.toml");
        fs::write(&path, "[[kernel]]\nid = 1\n").unwrap();
        let error = format!("{:#}", load_catalogue(&path).unwrap_err());
        assert!(error.contains(&path.display().to_string()), "{error}");
        let missing = dir.path().join("missing.toml");
        let error = format!("{:#}", load_catalogue(&missing).unwrap_err());
        assert!(error.contains("missing.toml"), "{error}");
    }
}
