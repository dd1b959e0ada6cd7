//! `rsslab kernels`: what Debian's archive holds, per flavour, verified from its signature,
//! with the catalogue's pins and the kernels already in the cache marked.

use crate::catalogue::{default_catalogue_path, load_catalogue};
use crate::exit::Failure;
use crate::supply::cache::Cache;
use crate::supply::debian::{Flavour, archive_kernels};

/// One kernel of the archive, as `rsslab kernels --json` prints it.
#[derive(Debug, serde::Serialize)]
struct ListedKernel {
    /// What `--kernel` takes: `debian:<version>:<flavour>`.
    spec: String,
    version: String,
    flavour: &'static str,
    suite: String,
    release: String,
    /// The catalogue id that pins it, if one does.
    pinned: Option<String>,
    /// Whether its packages are in the cache.
    cached: bool,
}

/// Prints the archive's kernels (of `flavour`, if given): one line each, `debian:<version>`
/// as `--kernel` takes it, its suite and release, `pinned <id>` and `cached`; with `json`, a
/// JSON array of them on stdout.
pub fn print_archive_kernels(flavour: Option<&str>, json: bool) -> Result<(), Failure> {
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
    let listed: Vec<ListedKernel> = listing
        .kernels
        .iter()
        .filter(|kernel| wanted.is_none_or(|flavour| kernel.flavour == flavour))
        .map(|kernel| ListedKernel {
            spec: format!("debian:{}:{}", kernel.version, kernel.flavour.as_str()),
            version: kernel.version.clone(),
            flavour: kernel.flavour.as_str(),
            suite: kernel.suite.to_string(),
            release: kernel.release.clone(),
            pinned: catalogue
                .kernels
                .iter()
                .find(|pin| {
                    pin.packages.first().map(|package| &package.version) == Some(&kernel.version)
                        && pin.release == kernel.release
                })
                .map(|pin| pin.id.clone()),
            cached: kernel.packages.iter().all(|package| {
                cache
                    .download_path(&package.sha256, package.file_name())
                    .is_file()
            }),
        })
        .collect();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&listed).expect("JSON of plain values")
        );
    }
    for kernel in listed.iter().filter(|_| !json) {
        let pinned = kernel
            .pinned
            .as_ref()
            .map(|id| format!("  pinned {id}"))
            .unwrap_or_default();
        println!(
            "{:<34} {:<19} {}{pinned}{}",
            kernel.spec,
            kernel.suite,
            kernel.release,
            if kernel.cached { "  cached" } else { "" }
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
