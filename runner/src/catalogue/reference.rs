//! How a lab names a kernel: a catalogue id (`6.1`), a Debian kernel by version
//! (`debian:6.12.57`, `debian:7.2:rt`, resolved from the archive's signed index), or a kernel
//! file of the user's (`./bzImage`, `/srv/linux-image-7.0.0_amd64.deb`: a path, absolute once
//! named). A Debian version is `debian:6.12.57` (the newest package of upstream 6.12.57),
//! `debian:7.2` (the newest 7.2.x) or `debian:6.1.176-1` (that package: a Debian revision has a
//! `-`), with a `:generic`, `:cloud` (the default) or `:rt` flavour ([`KernelSpec`]). The
//! reference's text is the kernel's id in the plan, the records and the report;
//! [`kernel_dir_name`] is the directory a run on it gets.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use sha2::{Digest, Sha256};

use crate::catalogue::Catalogue;

/// The prefix of a Debian kernel by version.
pub const DEBIAN_PREFIX: &str = "debian:";

/// What `debian:...` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelSpec {
    pub version: VersionQuery,
    pub flavour: Flavour,
}

/// Which versions match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionQuery {
    /// `6.12.57` or `7.2`: every upstream version it is a prefix of, at dots.
    Upstream(String),
    /// `6.1.176-1`: that package version exactly.
    Package(String),
}

impl KernelSpec {
    /// `None` when `text` is not a `debian:` kernel at all; an error when it is one badly written.
    pub fn parse(text: &str) -> Option<Result<KernelSpec>> {
        let rest = text.strip_prefix(DEBIAN_PREFIX)?;
        Some(parse_rest(text, rest))
    }

    /// [`KernelSpec::parse`] for text known to start with `debian:`.
    pub fn parse_text(text: &str) -> Result<KernelSpec> {
        match KernelSpec::parse(text) {
            Some(spec) => spec,
            None => bail!("`{text}` does not start with {DEBIAN_PREFIX}"),
        }
    }
}

fn parse_rest(text: &str, rest: &str) -> Result<KernelSpec> {
    let (version, flavour) = match rest.rsplit_once(':') {
        Some((version, flavour)) if !flavour.chars().next().is_some_and(|c| c.is_ascii_digit()) => {
            let flavour = match flavour {
                "generic" => Flavour::Generic,
                "cloud" => Flavour::Cloud,
                "rt" => Flavour::Rt,
                other => bail!("`{text}`: unknown flavour `{other}` (generic, cloud or rt)"),
            };
            (version, flavour)
        }
        _ => (rest, Flavour::Cloud),
    };
    let valid = version.starts_with(|c: char| c.is_ascii_digit())
        && version.contains('.')
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".+-~:".contains(c));
    if !valid {
        bail!(
            "`{text}`: `{version}` is not a kernel version; write debian:6.12.57, debian:7.2 or \
             debian:6.1.176-1, optionally with :generic, :cloud or :rt"
        );
    }
    let version = if version.contains('-') {
        VersionQuery::Package(version.to_owned())
    } else {
        VersionQuery::Upstream(version.to_owned())
    };
    Ok(KernelSpec { version, flavour })
}

/// A Debian kernel's build flavour, the suffix of its release.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Flavour {
    /// `-amd64`.
    Generic,
    /// `-cloud-amd64`: fewer drivers, what VMs run (the default).
    Cloud,
    /// `-rt-amd64`: PREEMPT_RT.
    Rt,
}

impl Flavour {
    pub fn as_str(self) -> &'static str {
        match self {
            Flavour::Generic => "generic",
            Flavour::Cloud => "cloud",
            Flavour::Rt => "rt",
        }
    }

    /// The flavour a release (`6.12.57+deb13-rt-amd64`) is built as; `None` for other
    /// architectures' or meta packages' names.
    pub fn of_release(release: &str) -> Option<Flavour> {
        let rest = release.strip_suffix("-amd64")?;
        Some(if rest.ends_with("-cloud") {
            Flavour::Cloud
        } else if rest.ends_with("-rt") {
            Flavour::Rt
        } else {
            Flavour::Generic
        })
    }
}

/// A kernel as a lab names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelRef {
    /// A kernel of the catalogue, by id.
    Pinned(String),
    /// A Debian kernel by version: the whole text (`debian:6.18:cloud`).
    Debian(String),
    /// A kernel file of the user's, absolute.
    Local(PathBuf),
}

impl KernelRef {
    /// What `text` names: a catalogue id, a `debian:` version, else a path (made absolute
    /// against `base`). A text that is none of these is an error naming the catalogue's ids.
    pub fn parse(text: &str, catalogue: &Catalogue, base: &Path) -> Result<KernelRef> {
        if catalogue.get(text).is_some() {
            return Ok(KernelRef::Pinned(text.to_owned()));
        }
        if text.starts_with(DEBIAN_PREFIX) {
            return Ok(KernelRef::Debian(text.to_owned()));
        }
        if looks_like_path(text) {
            return Ok(KernelRef::Local(base.join(text)));
        }
        bail!(
            "kernel `{text}` is neither a catalogue id ({}), a Debian version (e.g. \
             debian:6.12.57, debian:7.2:rt) nor a kernel file (a path, e.g. ./bzImage)",
            catalogue.ids().join(", ")
        )
    }

    /// The kernel's id in the plan and records: the text as written (a path absolute).
    pub fn id(&self) -> String {
        match self {
            KernelRef::Pinned(id) | KernelRef::Debian(id) => id.clone(),
            KernelRef::Local(path) => path.display().to_string(),
        }
    }
}

/// Whether `text` is meant as a file: it has a `/` or names a file that exists.
pub fn looks_like_path(text: &str) -> bool {
    text.contains('/') || Path::new(text).is_file()
}

/// The directory name of runs on kernel `id`: the id where it is a plain name (`6.1`),
/// `debian-6.18-rt` for `debian:6.18:rt`, `local-<file name>-<hash>` for a file.
pub fn kernel_dir_name(id: &str) -> String {
    if id.starts_with('/') {
        let name = Path::new(id)
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let digest = hex::encode(Sha256::digest(id.as_bytes()));
        return format!("local-{}-{}", plain(&name), &digest[..8]);
    }
    plain(id)
}

/// `text` with every character outside `[A-Za-z0-9._+-]` as `-`.
fn plain(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._+-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> Catalogue {
        crate::catalogue::load_catalogue(&crate::catalogue::default_catalogue_path()).unwrap()
    }

    #[test]
    fn ids_debian_versions_and_paths_are_told_apart() {
        let catalogue = catalogue();
        let base = Path::new("/work");
        assert_eq!(
            KernelRef::parse("6.1", &catalogue, base).unwrap(),
            KernelRef::Pinned("6.1".into())
        );
        assert_eq!(
            KernelRef::parse("debian:7.2:rt", &catalogue, base).unwrap(),
            KernelRef::Debian("debian:7.2:rt".into())
        );
        assert_eq!(
            KernelRef::parse("build/bzImage", &catalogue, base).unwrap(),
            KernelRef::Local("/work/build/bzImage".into())
        );
        assert_eq!(
            KernelRef::parse("/k/vmlinux", &catalogue, base).unwrap(),
            KernelRef::Local("/k/vmlinux".into())
        );
        let error = KernelRef::parse("6.99", &catalogue, base).unwrap_err();
        let text = format!("{error:#}");
        assert!(text.contains("6.1, 6.12"), "{text}");
        assert!(text.contains("debian:6.12.57"), "{text}");
    }

    #[test]
    fn specs_read_version_forms_and_flavours() {
        let spec = |text| KernelSpec::parse(text).unwrap().unwrap();
        assert_eq!(
            spec("debian:6.12.57"),
            KernelSpec {
                version: VersionQuery::Upstream("6.12.57".into()),
                flavour: Flavour::Cloud
            }
        );
        assert_eq!(spec("debian:7.2:rt").flavour, Flavour::Rt);
        assert_eq!(
            spec("debian:6.1.176-1:generic"),
            KernelSpec {
                version: VersionQuery::Package("6.1.176-1".into()),
                flavour: Flavour::Generic
            }
        );
        assert_eq!(
            spec("debian:6.12.57-1~bpo12+1").version,
            VersionQuery::Package("6.12.57-1~bpo12+1".into())
        );
        assert!(KernelSpec::parse("6.1").is_none());
        for bad in ["debian:", "debian:latest", "debian:7.2:fast", "debian:7"] {
            assert!(KernelSpec::parse(bad).unwrap().is_err(), "{bad}");
        }
    }

    #[test]
    fn run_directories_of_kernels_are_plain_names() {
        assert_eq!(kernel_dir_name("6.12"), "6.12");
        assert_eq!(kernel_dir_name("debian:6.18:rt"), "debian-6.18-rt");
        assert_eq!(kernel_dir_name("debian:6.1.176-1"), "debian-6.1.176-1");
        let local = kernel_dir_name("/home/me/linux/arch/x86/boot/bzImage");
        assert!(local.starts_with("local-bzImage-"), "{local}");
        assert_ne!(local, kernel_dir_name("/home/me/other/bzImage"));
    }
}
