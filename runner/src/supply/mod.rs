//! Supply: everything a plan boots and runs, fetched from Debian's archive, verified by sha256,
//! unpacked in Rust and kept in a content-keyed cache, so a warm lab fetches nothing.
//!
//! - [`cache`]: the cache's layout (`~/.cache/rsslab`);
//! - [`fetch`]: the archive's address (from apt's sources) and verified downloads;
//! - [`debian`]: any Debian kernel by version, from the archive's signed indexes;
//! - [`deb`] and [`unpacked`]: `.deb` packages unpacked into a published cache directory;
//! - [`kernel`] (with [`vmlinux`]): a kernel's boot image, modules and config; [`local`]: a
//!   kernel file of the user's own;
//! - [`modules`]: the kernel modules a run needs, with their dependencies;
//! - [`toolchain`] and [`gobuild`]: Go toolchains of the catalogue and the Go workloads built
//!   with them.
//!
//! [`prepare_kernels`] is the stage's entry for kernels, [`gobuild::build_go_programs`] for Go
//! programs.

pub mod cache;
pub mod deb;
pub mod debian;
pub mod fetch;
pub mod gobuild;
pub mod kernel;
pub mod local;
pub mod modules;
pub mod toolchain;
pub mod unpacked;
pub mod vmlinux;

use std::collections::BTreeMap;

use anyhow::{Result, anyhow};

use self::cache::Cache;
use self::kernel::{KernelFiles, prepare_kernel};
use crate::catalogue::{Catalogue, KernelOrigin};

/// Fetches and unpacks every kernel the plan needs. The archive's address is only needed for
/// what is not cached yet, so a warm cache works on a host without apt sources.
pub fn prepare_kernels(
    cache: &Cache,
    catalogue: &Catalogue,
    ids: &[String],
) -> Result<BTreeMap<String, KernelFiles>> {
    let base_url = fetch::archive_base_url();
    let mut prepared = BTreeMap::new();
    for id in ids {
        let kernel = catalogue
            .get(id)
            .ok_or_else(|| anyhow!("kernel {id} is not in the catalogue"))?;
        let files = match &kernel.origin {
            KernelOrigin::Local(file) => {
                local::prepare_local_kernel(cache, file).map(|(files, _)| files)
            }
            _ => prepare_kernel(cache, base_url.as_deref().unwrap_or_default(), kernel),
        }
        .map_err(|error| {
            match &base_url {
                Err(no_archive) => error.context(format!("{no_archive:#}")),
                Ok(_) => error,
            }
            .context(format!("preparing kernel {id}"))
        })?;
        prepared.insert(id.clone(), files);
    }
    Ok(prepared)
}
