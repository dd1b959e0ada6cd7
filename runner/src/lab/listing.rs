//! `rsslab kernels`: what Debian's archive holds, per flavour, verified from its signature,
//! with the catalogue's pins and the kernels already in the cache marked.

use crate::catalogue::{default_catalogue_path, load_catalogue};
use crate::exit::Failure;
use crate::supply::cache::Cache;
use crate::supply::debian::{Flavour, archive_kernels};

/// Prints the archive's kernels (of `flavour`, if given): one line each, `debian:<version>`
/// as `--kernel` takes it, its suite and release, `pinned <id>` and `cached`.
pub fn print_archive_kernels(flavour: Option<&str>) -> Result<(), Failure> {
    let wanted = match flavour {
        None => None,
        Some("generic") => Some(Flavour::Generic),
        Some("cloud") => Some(Flavour::Cloud),
        Some("rt") => Some(Flavour::Rt),
        Some(other) => {
            return Err(Failure::bad_input(anyhow::anyhow!(
                "--flavour {other}: one of generic, cloud, rt"
            )));
        }
    };
    let cache = Cache::default_location()?;
    let base_url = crate::supply::fetch::archive_base_url().map_err(Failure::infrastructure)?;
    let started = std::time::Instant::now();
    let listing = archive_kernels(&cache, &base_url).map_err(Failure::infrastructure)?;
    let catalogue = load_catalogue(&default_catalogue_path())?;
    for kernel in listing
        .kernels
        .iter()
        .filter(|kernel| wanted.is_none_or(|flavour| kernel.flavour == flavour))
    {
        let pinned = catalogue
            .kernels
            .iter()
            .find(|pin| {
                pin.packages.first().map(|package| &package.version) == Some(&kernel.version)
                    && pin.release == kernel.release
            })
            .map(|pin| format!("  pinned {}", pin.id))
            .unwrap_or_default();
        let cached = kernel.packages.iter().all(|package| {
            cache
                .download_path(&package.sha256, package.file_name())
                .is_file()
        });
        let spec = format!("debian:{}:{}", kernel.version, kernel.flavour.as_str());
        println!(
            "{spec:<34} {:<19} {}{pinned}{}",
            kernel.suite,
            kernel.release,
            if cached { "  cached" } else { "" }
        );
    }
    for (suite, why) in &listing.skipped {
        eprintln!("rsslab: skipped suite {suite}: {why}");
    }
    eprintln!(
        "rsslab: {} kernels in {} suites, verified, in {:.1}s",
        listing.kernels.len(),
        crate::supply::debian::SUITES.len() - listing.skipped.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
