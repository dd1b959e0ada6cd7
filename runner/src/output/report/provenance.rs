//! The report's provenance: what produced its runs (kernel packages and their sha256, QEMU,
//! accelerator, hosts, rsslab's version and git revision, each scenario file's hash) and the
//! scenario files themselves, as the lab kept them in `runs/<scenario>/scenario.toml`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::embed::scenario_toml_path;
use crate::catalogue::versions::compare_kernels;
use crate::records::{LoadedRun, PackageProvenance};

#[derive(Debug, Serialize)]
pub struct ProvenanceSection {
    pub kernels: Vec<KernelProvenance>,
    pub qemu_versions: Vec<String>,
    /// `TCG (24 runs)`.
    pub accels: Vec<String>,
    pub hosts: Vec<String>,
    /// Versions of the rsslab that ran the VMs.
    pub rsslab: Vec<String>,
    /// Its git revisions (`git describe`), when it ran from a checkout.
    pub git_revisions: Vec<String>,
    pub scenarios: Vec<ScenarioProvenance>,
}

#[derive(Debug, Serialize)]
pub struct KernelProvenance {
    pub kernel: String,
    pub releases: Vec<String>,
    pub packages: Vec<PackageProvenance>,
}

#[derive(Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct ScenarioProvenance {
    pub id: String,
    pub path: String,
    pub sha256: String,
}

/// A scenario file as the lab kept it, for the scenario's section.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioFile {
    /// `runs/<scenario>/scenario.toml`.
    pub path: String,
    /// Its text (invalid UTF-8 replaced).
    pub text: String,
    pub sha256: String,
    /// Its sha256 is the one the runs recorded for their scenario file.
    pub matches_runs: bool,
}

/// The `scenario.toml` of each scenario of `runs` that has one under `out_dir`.
pub fn scenario_sources(out_dir: &Path, runs: &[LoadedRun]) -> BTreeMap<String, Vec<u8>> {
    let ids: BTreeSet<&str> = runs
        .iter()
        .map(|run| run.record.scenario.as_str())
        .collect();
    ids.into_iter()
        // A scenario id is one plain path component ([a-z0-9-]); anything else is not read.
        .filter(|id| {
            let mut parts = Path::new(id).components();
            matches!(parts.next(), Some(std::path::Component::Normal(_))) && parts.next().is_none()
        })
        .filter_map(|id| {
            let bytes = fs::read(out_dir.join(scenario_toml_path(id))).ok()?;
            Some((id.to_owned(), bytes))
        })
        .collect()
}

/// The kept scenario file of `scenario`, if any.
pub fn scenario_file(
    scenario: &str,
    sources: &BTreeMap<String, Vec<u8>>,
    runs: &[&LoadedRun],
) -> Option<ScenarioFile> {
    let bytes = sources.get(scenario)?;
    let sha256 = hex::encode(Sha256::digest(bytes));
    Some(ScenarioFile {
        path: scenario_toml_path(scenario),
        text: String::from_utf8_lossy(bytes).into_owned(),
        matches_runs: runs
            .iter()
            .any(|run| run.record.provenance.scenario_sha256 == sha256),
        sha256,
    })
}

/// What produced `runs`.
pub fn provenance(runs: &[LoadedRun]) -> ProvenanceSection {
    /// Per kernel id: the releases seen and the packages (name, version, sha256).
    type KernelFacts = (BTreeSet<String>, BTreeSet<(String, String, String)>);
    let mut kernels: BTreeMap<&str, KernelFacts> = BTreeMap::new();
    let mut qemu = BTreeSet::new();
    let mut accels: BTreeMap<String, usize> = BTreeMap::new();
    let mut hosts = BTreeSet::new();
    let mut rsslab = BTreeSet::new();
    let mut git_revisions = BTreeSet::new();
    let mut scenarios = BTreeSet::new();
    for run in runs {
        let record = &run.record;
        let entry = kernels.entry(record.kernel.as_str()).or_default();
        if let Some(release) = &record.kernel_release {
            entry.0.insert(release.clone());
        }
        for package in &record.provenance.kernel_packages {
            entry.1.insert((
                package.name.clone(),
                package.version.clone(),
                package.sha256.clone(),
            ));
        }
        *accels.entry(record.accel.to_uppercase()).or_default() += 1;
        let provenance = &record.provenance;
        if !provenance.qemu_version.is_empty() {
            qemu.insert(provenance.qemu_version.clone());
        }
        if !provenance.host.is_empty() {
            hosts.insert(provenance.host.clone());
        }
        if !provenance.rsslab_version.is_empty() {
            rsslab.insert(provenance.rsslab_version.clone());
        }
        if let Some(revision) = &provenance.git_revision {
            git_revisions.insert(revision.clone());
        }
        scenarios.insert(ScenarioProvenance {
            id: record.scenario.clone(),
            path: provenance.scenario_path.clone(),
            sha256: provenance.scenario_sha256.clone(),
        });
    }
    let mut kernels: Vec<KernelProvenance> = kernels
        .into_iter()
        .map(|(kernel, (releases, packages))| KernelProvenance {
            kernel: kernel.to_owned(),
            releases: releases.into_iter().collect(),
            packages: packages
                .into_iter()
                .map(|(name, version, sha256)| PackageProvenance {
                    name,
                    version,
                    sha256,
                })
                .collect(),
        })
        .collect();
    kernels.sort_by(|a, b| compare_kernels(&a.kernel, &b.kernel));
    ProvenanceSection {
        kernels,
        qemu_versions: qemu.into_iter().collect(),
        accels: accels
            .into_iter()
            .map(|(accel, count)| {
                format!("{accel} ({count} run{})", if count == 1 { "" } else { "s" })
            })
            .collect(),
        hosts: hosts.into_iter().collect(),
        rsslab: rsslab.into_iter().collect(),
        git_revisions: git_revisions.into_iter().collect(),
        scenarios: scenarios.into_iter().collect(),
    }
}
