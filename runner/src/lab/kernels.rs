//! The kernels of a plan that the catalogue does not pin, made catalogue entries for this lab:
//! a Debian kernel by version (`debian:6.18:rt`), resolved from the archive's signed index to
//! its exact packages, and a kernel file of the user's, recognised and read for its release.
//!
//! [`resolve_kernels`] adds them to the lab's catalogue before anything is fetched, so the
//! stages after it (supply, image, VM, records) treat every kernel alike; [`derive_facts`]
//! then gives each its facts from its config, once its files are unpacked (a catalogue
//! kernel's facts are written in the catalogue, and the guest's probes check them).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::anyhow;

use crate::catalogue::facts::facts_from_config;
use crate::catalogue::reference::DEBIAN_PREFIX;
use crate::catalogue::{Catalogue, Kernel, KernelOrigin, KernelPackage, LocalKernel};
use crate::exit::Failure;
use crate::supply::cache::Cache;
use crate::supply::debian::{KernelSpec, NotInArchive, resolve_spec};
use crate::supply::kernel::KernelFiles;
use crate::supply::local::prepare_local_kernel;

/// Adds every kernel of `ids` that the catalogue lacks: Debian versions from the archive,
/// files (absolute paths) as local kernels with `modules`. A version the archive does not hold,
/// or a file that is not a kernel, is bad input.
pub fn resolve_kernels(
    catalogue: &mut Catalogue,
    ids: &[String],
    modules: Option<&Path>,
    cache: &Cache,
) -> Result<(), Failure> {
    for id in ids {
        if let Some(index) = catalogue.kernels.iter().position(|kernel| &kernel.id == id) {
            // A catalogue entry by version (`debian = "debian:6.18"`) is resolved like one
            // given on the command line, and keeps its id and behaviour changes.
            if let Some(debian) = catalogue.kernels[index].debian.clone() {
                let resolved = debian_kernel(&debian, cache)?;
                let entry = &mut catalogue.kernels[index];
                entry.suite = resolved.suite;
                entry.release = resolved.release;
                entry.packages = resolved.packages;
                entry.origin = KernelOrigin::Archive;
            }
            continue;
        }
        let kernel = if id.starts_with(DEBIAN_PREFIX) {
            debian_kernel(id, cache)?
        } else {
            local_kernel(id, modules, cache)?
        };
        catalogue.kernels.push(kernel);
    }
    Ok(())
}

/// `debian:...` resolved to the archive's packages of that version.
fn debian_kernel(id: &str, cache: &Cache) -> Result<Kernel, Failure> {
    let spec = KernelSpec::parse(id)
        .unwrap_or_else(|| Err(anyhow!("not a Debian kernel version")))
        .map_err(|error| Failure::bad_input(error.context(format!("kernel {id}"))))?;
    let base_url = crate::supply::fetch::archive_base_url().map_err(Failure::infrastructure)?;
    let found = resolve_spec(cache, &base_url, &spec).map_err(|error| {
        if error.downcast_ref::<NotInArchive>().is_some() {
            Failure::bad_input(error.context(format!("kernel {id}")))
        } else {
            Failure::infrastructure(error.context(format!("resolving kernel {id}")))
        }
    })?;
    eprintln!(
        "rsslab: {id} is {} {} ({}, {} package(s), verified from the archive's signature)",
        found.release,
        found.version,
        found.suite,
        found.packages.len()
    );
    let mut kernel = found.to_kernel(id);
    kernel.origin = KernelOrigin::Archive;
    Ok(kernel)
}

/// A kernel file of the user's, with its release and sha256 (the run records keep both).
fn local_kernel(id: &str, modules: Option<&Path>, cache: &Cache) -> Result<Kernel, Failure> {
    let local = LocalKernel {
        path: id.into(),
        modules: modules.map(Path::to_owned),
    };
    let (files, sha256) = prepare_local_kernel(cache, &local).map_err(Failure::bad_input)?;
    let size = std::fs::metadata(&local.path).map_or(0, |meta| meta.len());
    let name = local
        .path
        .file_name()
        .map_or_else(|| id.to_owned(), |name| name.to_string_lossy().into_owned());
    eprintln!(
        "rsslab: {id} is a local kernel, release {}, sha256 {sha256}{}",
        files.release,
        if files.config.is_some() {
            ""
        } else {
            " (no config: its facts will be probed in the guest)"
        }
    );
    Ok(Kernel {
        id: id.to_owned(),
        suite: "local".into(),
        release: files.release,
        packages: vec![KernelPackage {
            name,
            version: "local".into(),
            filename: id.to_owned(),
            size,
            sha256,
        }],
        debian: None,
        facts: Default::default(),
        behaviour_changes: Vec::new(),
        origin: KernelOrigin::Local(local),
        facts_derived: false,
    })
}

/// Facts of the kernels the catalogue does not pin, from their configs (the release gives the
/// version the written facts need). A kernel without a config keeps no facts here: its runs
/// take them from what the guest probes.
pub fn derive_facts(catalogue: &mut Catalogue, files: &BTreeMap<String, KernelFiles>) {
    for kernel in catalogue
        .kernels
        .iter_mut()
        .filter(|kernel| !kernel.is_pinned())
    {
        let Some(config) = files
            .get(&kernel.id)
            .and_then(|files| files.config.as_ref())
        else {
            continue;
        };
        match std::fs::read_to_string(config) {
            Ok(text) => {
                kernel.facts = facts_from_config(&text, &kernel.release);
                kernel.facts_derived = true;
            }
            Err(error) => tracing::warn!(
                "kernel {}: reading {}: {error}",
                kernel.id,
                config.display()
            ),
        }
    }
}
