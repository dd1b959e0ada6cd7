//! A Debian kernel by version ([`KernelSpec`], read in [`crate::catalogue::reference`])
//! resolved against what the archive holds: the newest matching package of the flavour, or
//! the nearest versions there are.

use std::cmp::Ordering;

use crate::catalogue::reference::{KernelSpec, VersionQuery};
use crate::catalogue::versions::{compare_debian_versions, compare_kernels};
use crate::supply::debian::ArchiveKernel;

/// The archive does not hold the version asked for.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{asked} ({flavour}) is not in the archive; nearest: {nearest}{skipped}")]
pub struct NotInArchive {
    asked: String,
    flavour: &'static str,
    nearest: String,
    skipped: String,
}

impl NotInArchive {
    /// Names the suites that could not be read (they may hold it).
    pub fn with_skipped(mut self, skipped: &[(String, String)]) -> NotInArchive {
        if !skipped.is_empty() {
            let suites: Vec<&str> = skipped.iter().map(|(suite, _)| suite.as_str()).collect();
            self.skipped = format!(" (not searched: {}, see the warnings)", suites.join(", "));
        }
        self
    }
}

/// The newest kernel of `kernels` that `spec` matches.
pub fn resolve<'a>(
    spec: &KernelSpec,
    kernels: &'a [ArchiveKernel],
) -> Result<&'a ArchiveKernel, NotInArchive> {
    let flavoured = kernels
        .iter()
        .filter(|kernel| kernel.flavour == spec.flavour);
    let matching = flavoured.clone().filter(|kernel| match &spec.version {
        VersionQuery::Package(version) => &kernel.version == version,
        VersionQuery::Upstream(prefix) => {
            kernel.upstream == *prefix || kernel.upstream.starts_with(&format!("{prefix}."))
        }
    });
    if let Some(found) = matching.max_by(|a, b| compare_debian_versions(&a.version, &b.version)) {
        return Ok(found);
    }
    let asked = match &spec.version {
        VersionQuery::Package(version) | VersionQuery::Upstream(version) => version.clone(),
    };
    let mut versions: Vec<&ArchiveKernel> = flavoured.collect();
    versions.sort_by(|a, b| order(a, b));
    let below: Vec<&str> = versions
        .iter()
        .filter(|kernel| compare_kernels(&kernel.upstream, &asked) == Ordering::Less)
        .map(|kernel| kernel.version.as_str())
        .collect();
    let above: Vec<&str> = versions
        .iter()
        .filter(|kernel| compare_kernels(&kernel.upstream, &asked) != Ordering::Less)
        .map(|kernel| kernel.version.as_str())
        .collect();
    let mut nearest: Vec<&str> = below.iter().rev().take(2).rev().copied().collect();
    nearest.extend(above.iter().take(2));
    Err(NotInArchive {
        asked,
        flavour: spec.flavour.as_str(),
        nearest: if nearest.is_empty() {
            "none of this flavour".into()
        } else {
            nearest.join(", ")
        },
        skipped: String::new(),
    })
}

fn order(a: &ArchiveKernel, b: &ArchiveKernel) -> Ordering {
    compare_kernels(&a.upstream, &b.upstream)
        .then_with(|| compare_debian_versions(&a.version, &b.version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supply::debian::Flavour;

    fn kernel(version: &str, flavour: Flavour) -> ArchiveKernel {
        ArchiveKernel {
            suite: "test".into(),
            version: version.into(),
            upstream: version.split('-').next().unwrap().into(),
            flavour,
            release: format!("{version}-{}", flavour.as_str()),
            packages: vec![],
        }
    }

    #[test]
    fn resolution_takes_the_newest_match_of_the_flavour() {
        let kernels = [
            kernel("6.12.57-1~bpo12+1", Flavour::Cloud),
            kernel("6.12.57-1", Flavour::Cloud),
            kernel("6.12.60-1", Flavour::Cloud),
            kernel("6.12.60-1", Flavour::Rt),
            kernel("7.2.9-1~bpo13+1", Flavour::Cloud),
            kernel("7.2.12-1~bpo13+1", Flavour::Cloud),
        ];
        let resolve_text = |text| {
            resolve(&KernelSpec::parse_text(text).unwrap(), &kernels).map(|k| k.version.clone())
        };
        assert_eq!(resolve_text("debian:6.12.57").unwrap(), "6.12.57-1");
        assert_eq!(resolve_text("debian:6.12").unwrap(), "6.12.60-1");
        assert_eq!(resolve_text("debian:7.2").unwrap(), "7.2.12-1~bpo13+1");
        assert_eq!(
            resolve_text("debian:6.12.57-1~bpo12+1").unwrap(),
            "6.12.57-1~bpo12+1"
        );
        assert_eq!(resolve_text("debian:6.12:rt").unwrap(), "6.12.60-1");
        assert!(resolve_text("debian:6.1").is_err(), "6.1 is not 6.12");
        let error = resolve_text("debian:6.12.58").unwrap_err().to_string();
        assert!(
            error.contains("nearest: 6.12.57-1~bpo12+1, 6.12.57-1, 6.12.60-1, 7.2.9-1~bpo13+1"),
            "{error}"
        );
        let error = resolve_text("debian:7.3:generic").unwrap_err().to_string();
        assert!(error.contains("none of this flavour"), "{error}");
    }
}
