//! `rsslab images`: fetch, verify and unpack kernels and build a guest image for each, so a
//! later `rsslab run` starts booting at once (and works offline).

use crate::catalogue::reference::KernelRef;
use crate::catalogue::{default_catalogue_path, load_catalogue};
use crate::exit::Failure;
use crate::image::{build_image, empty_spec, locate_guest_binaries};
use crate::lab::kernels::resolve_kernels;
use crate::supply::cache::Cache;
use crate::supply::prepare_kernels;

/// Prepares `kernels` (empty: all of the catalogue; Debian versions and files as for `rsslab
/// run`) and prints what is cached where.
pub fn build_all(kernels: &[String]) -> Result<(), Failure> {
    let mut catalogue = load_catalogue(&default_catalogue_path())?;
    let base = std::env::current_dir().unwrap_or_default();
    let ids = if kernels.is_empty() {
        catalogue.ids()
    } else {
        kernels
            .iter()
            .map(|text| KernelRef::parse(text, &catalogue, &base).map(|kernel| kernel.id()))
            .collect::<anyhow::Result<Vec<_>>>()
            .map_err(Failure::bad_input)?
    };
    let cache = Cache::default_location()?;
    resolve_kernels(&mut catalogue, &ids, None, &cache)?;
    let bins = locate_guest_binaries()?;
    let prepared = prepare_kernels(&cache, &catalogue, &ids)?;
    for (id, files) in &prepared {
        let image = build_image(&cache, files, &empty_spec("images"), &bins)?;
        println!(
            "{id:>5}  {}  kernel {}  initrd {}",
            files.release,
            files.vmlinuz.display(),
            image.initrd.display()
        );
    }
    Ok(())
}
