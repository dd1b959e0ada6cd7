//! `rsslab images`: fetch, verify and unpack kernels and build a guest image for each, so a
//! later `rsslab run` starts booting at once (and works offline).

use crate::catalogue::{default_catalogue_path, load_catalogue};
use crate::exit::Failure;
use crate::image::{build_image, empty_spec, locate_guest_binaries};
use crate::supply::cache::Cache;
use crate::supply::prepare_kernels;

/// Prepares `kernels` (empty: all) and prints what is cached where.
pub fn build_all(kernels: &[String]) -> Result<(), Failure> {
    let catalogue = load_catalogue(&default_catalogue_path())?;
    let ids = if kernels.is_empty() {
        catalogue.ids()
    } else {
        kernels.to_vec()
    };
    catalogue.check_ids(&ids).map_err(Failure::bad_input)?;
    let cache = Cache::default_location()?;
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
