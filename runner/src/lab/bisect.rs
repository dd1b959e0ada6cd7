//! `rsslab bisect SCENARIO --good debian:X --bad debian:Y`: the first Debian kernel version
//! between two whose verdict differs from the good one's.
//!
//! The candidates are the archive's kernels of the good end's flavour between the two ends,
//! one package per upstream version (the newest Debian revision of it), ordered by version
//! ([`candidates`]). Each version tried is a lab of its own (`<out>/<kernel>/`, every raw
//! record kept), run on the exact package (`debian:<package version>:<flavour>`); its verdict
//! is the set of expectations that held, per variant (`--expect` narrows it to some), and a
//! version whose repeats (`--repeat`) disagree stops the bisect as flaky rather than guess.
//! Both ends are run first: if they agree there is nothing to find. The search is binary
//! ([`next_probe`]); every version tried is printed as it ends, and at the end all of them are
//! merged into one report (`<out>/report/index.html`) beside `<out>/bisect.md`, which gives
//! the verdict per version, then what changed between the last good and the first bad
//! package: the config options that differ and the changelog entries between them,
//! memory-management and cgroup items first ([`crate::analysis::kernel_diff`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};

use crate::analysis::kernel_diff::{changelog_between, config_diff};
use crate::analysis::results::build_results;
use crate::catalogue::reference::kernel_dir_name;
use crate::catalogue::versions::compare_debian_versions;
use crate::exit::Failure;
use crate::lab::{LabOptions, run_lab};
use crate::records::load_all;
use crate::supply::cache::Cache;
use crate::supply::debian::{ArchiveKernel, KernelSpec, archive_kernels, resolve};
use crate::supply::kernel::prepare_kernel;
use crate::vm::accel::AccelChoice;

/// What `rsslab bisect` was asked.
#[derive(Debug, Clone)]
pub struct BisectOptions {
    pub scenario: PathBuf,
    pub good: String,
    pub bad: String,
    /// `--expect NAME`: only these expectations make the verdict (empty: all).
    pub expect: Vec<String>,
    pub repeat: u32,
    pub out: Option<PathBuf>,
    pub jobs: super::packing::Jobs,
    pub accel: AccelChoice,
}

/// A version's verdict: `<variant>: <expectation>` -> held.
pub type Verdict = BTreeMap<String, bool>;

/// What a bisect found.
#[derive(Debug, Clone)]
pub struct BisectResult {
    pub out_dir: PathBuf,
    pub last_good: String,
    pub first_bad: String,
    /// Every version tried, in version order, with its verdict.
    pub tried: Vec<(String, Verdict)>,
}

/// Runs the bisect (see the module docs).
pub fn bisect(options: &BisectOptions) -> Result<BisectResult, Failure> {
    let cache = Cache::default_location()?;
    let base_url = crate::supply::fetch::archive_base_url().map_err(Failure::infrastructure)?;
    let spec = |text: &str, flag: &str| {
        KernelSpec::parse(text)
            .unwrap_or_else(|| Err(anyhow!("not a Debian kernel: write e.g. debian:6.12.57")))
            .map_err(|error| Failure::bad_input(error.context(format!("{flag} {text}"))))
    };
    let (good_spec, bad_spec) = (spec(&options.good, "--good")?, spec(&options.bad, "--bad")?);
    let listing = archive_kernels(&cache, &base_url).map_err(Failure::infrastructure)?;
    let good = resolve(&good_spec, &listing.kernels)
        .map_err(|error| Failure::bad_input(anyhow!("--good {}: {error}", options.good)))?
        .clone();
    let bad = resolve(&bad_spec, &listing.kernels)
        .map_err(|error| Failure::bad_input(anyhow!("--bad {}: {error}", options.bad)))?
        .clone();
    if good.flavour != bad.flavour {
        return Err(Failure::bad_input(anyhow!(
            "--good {} is {:?} and --bad {} is {:?}: bisect within one flavour",
            options.good,
            good.flavour,
            options.bad,
            bad.flavour
        )));
    }
    let line = candidates(&listing.kernels, &good, &bad);
    let out_dir = options.out.clone().unwrap_or_else(|| {
        PathBuf::from("reports").join(format!(
            "bisect-{}",
            humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                .to_string()
                .replace(':', "")
        ))
    });
    fs::create_dir_all(&out_dir)
        .with_context(|| format!("creating {}", out_dir.display()))
        .map_err(Failure::infrastructure)?;
    eprintln!(
        "rsslab bisect: {} versions from {} to {} ({:?}), about {} labs",
        line.len(),
        good.version,
        bad.version,
        good.flavour,
        2 + (line.len().saturating_sub(2).max(1) as f64).log2().ceil() as usize
    );

    let mut tried: BTreeMap<usize, Verdict> = BTreeMap::new();
    let mut try_version = |index: usize| -> Result<Verdict, Failure> {
        let kernel = &line[index];
        let verdict = version_verdict(options, kernel, &out_dir)?;
        tried.insert(index, verdict.clone());
        Ok(verdict)
    };
    let good_verdict = try_version(0)?;
    let bad_verdict = try_version(line.len() - 1)?;
    report_step(&line[0], &good_verdict, &good_verdict);
    report_step(&line[line.len() - 1], &bad_verdict, &good_verdict);
    if good_verdict == bad_verdict {
        return Err(Failure::bad_input(anyhow!(
            "{} and {} give the same verdict ({}): nothing to bisect; the raw records are in {}",
            good.version,
            bad.version,
            describe(&good_verdict),
            out_dir.display()
        )));
    }
    let (mut low, mut high) = (0, line.len() - 1);
    while let Some(probe) = next_probe(low, high) {
        let verdict = try_version(probe)?;
        report_step(&line[probe], &verdict, &good_verdict);
        if verdict == good_verdict {
            low = probe;
        } else {
            high = probe;
        }
    }
    let tried: Vec<(String, Verdict)> = tried
        .into_iter()
        .map(|(index, verdict)| (line[index].version.clone(), verdict))
        .collect();
    let (last_good, first_bad) = (&line[low], &line[high]);
    eprintln!(
        "rsslab bisect: first version whose verdict differs: {} ({}); last good: {}",
        first_bad.version, first_bad.release, last_good.version
    );
    let summary = write_summary(
        &cache,
        &base_url,
        &out_dir,
        &tried,
        last_good,
        first_bad,
        &good_verdict,
    )
    .map_err(Failure::infrastructure)?;
    eprintln!("rsslab bisect: {}", summary.display());
    merge_report(&out_dir, &line, &tried).map_err(Failure::infrastructure)?;
    Ok(BisectResult {
        out_dir,
        last_good: last_good.version.clone(),
        first_bad: first_bad.version.clone(),
        tried,
    })
}

/// The kernels from `good` to `bad` (either may be the older) of their flavour, one per
/// upstream version (its newest Debian revision; the ends as given), in that direction.
pub fn candidates(
    kernels: &[ArchiveKernel],
    good: &ArchiveKernel,
    bad: &ArchiveKernel,
) -> Vec<ArchiveKernel> {
    let (older, newer) = if compare_debian_versions(&good.version, &bad.version).is_le() {
        (good, bad)
    } else {
        (bad, good)
    };
    let mut between: Vec<&ArchiveKernel> = kernels
        .iter()
        .filter(|kernel| kernel.flavour == good.flavour)
        .filter(|kernel| {
            compare_debian_versions(&kernel.version, &older.version).is_gt()
                && compare_debian_versions(&kernel.version, &newer.version).is_lt()
                && kernel.upstream != older.upstream
                && kernel.upstream != newer.upstream
        })
        .collect();
    between.sort_by(|a, b| compare_debian_versions(&b.version, &a.version));
    let mut seen = std::collections::BTreeSet::new();
    between.retain(|kernel| seen.insert(kernel.upstream.clone()));
    between.reverse();
    let mut line: Vec<ArchiveKernel> = std::iter::once(older)
        .chain(between)
        .chain(std::iter::once(newer))
        .cloned()
        .collect();
    if !std::ptr::eq(older, good) {
        line.reverse();
    }
    line
}

/// The next index to try between a good `low` and a bad `high`, or `None` when they are
/// neighbours (then `high` is the first bad).
pub fn next_probe(low: usize, high: usize) -> Option<usize> {
    (high > low + 1).then(|| low + (high - low) / 2)
}

/// Runs the scenario on `kernel` into `<out>/<kernel>/` and reads its verdict.
fn version_verdict(
    options: &BisectOptions,
    kernel: &ArchiveKernel,
    out_dir: &Path,
) -> Result<Verdict, Failure> {
    let id = exact_id(kernel);
    let lab_dir = out_dir.join(kernel_dir_name(&id));
    let lab_options = LabOptions {
        inputs: vec![options.scenario.clone()],
        kernels: vec![id.clone()],
        modules: None,
        out: Some(lab_dir.clone()),
        jobs: options.jobs,
        accel: options.accel,
        boot: Default::default(),
        repeat: options.repeat,
        baseline: None,
        shard: None,
        resume: None,
    };
    run_lab(&lab_options)?;
    let runs = load_all(&lab_dir).map_err(Failure::infrastructure)?;
    let results = build_results(&runs);
    verdict_of(&results.runs, &options.expect, &id)
}

/// `debian:<package version>:<flavour>`: the one package, not the newest of a version.
fn exact_id(kernel: &ArchiveKernel) -> String {
    format!("debian:{}:{}", kernel.version, kernel.flavour.as_str())
}

/// The verdict of one version's runs: each expectation (of `expect`, if given) per variant,
/// and whether each run ended ok. Repeats that disagree are an error (flaky).
pub fn verdict_of(
    runs: &[crate::analysis::results::RunResult],
    expect: &[String],
    kernel: &str,
) -> Result<Verdict, Failure> {
    let mut verdict = Verdict::new();
    for run in runs {
        let variant = if run.variant_label.is_empty() {
            "-"
        } else {
            &run.variant_label
        };
        let mut held: Vec<(String, bool)> = run
            .expectations
            .iter()
            .filter(|result| expect.is_empty() || expect.contains(&result.name))
            .map(|result| (format!("{variant}: {}", result.name), result.passed))
            .collect();
        if expect.is_empty() {
            held.push((format!("{variant}: outcome {}", run.outcome.as_str()), true));
        }
        for (key, passed) in held {
            if let Some(before) = verdict.insert(key.clone(), passed)
                && before != passed
            {
                return Err(Failure::bad_input(anyhow!(
                    "{kernel}: the repeats disagree on `{key}`: the verdict is flaky there; \
                     narrow it with --expect or give the scenario a wider margin"
                )));
            }
        }
    }
    if verdict.is_empty() {
        return Err(Failure::bad_input(anyhow!(
            "{kernel}: no expectation named {} in the scenario's runs",
            expect.join(", ")
        )));
    }
    Ok(verdict)
}

fn report_step(kernel: &ArchiveKernel, verdict: &Verdict, good: &Verdict) {
    let word = if verdict == good { "good" } else { "bad" };
    eprintln!(
        "rsslab bisect: {} ({}): {word}: {}",
        kernel.version,
        kernel.suite,
        describe(verdict)
    );
}

/// `12 held, 2 failed (a, b)`.
fn describe(verdict: &Verdict) -> String {
    let failed: Vec<&str> = verdict
        .iter()
        .filter(|(_, held)| !**held)
        .map(|(name, _)| name.as_str())
        .collect();
    let held = verdict.len() - failed.len();
    if failed.is_empty() {
        format!("{held} held")
    } else {
        format!(
            "{held} held, {} failed ({})",
            failed.len(),
            failed.join("; ")
        )
    }
}

/// `<out>/bisect.md`: the verdict per version, then the config and changelog changes
/// between the last good and the first bad package.
fn write_summary(
    cache: &Cache,
    base_url: &str,
    out_dir: &Path,
    tried: &[(String, Verdict)],
    last_good: &ArchiveKernel,
    first_bad: &ArchiveKernel,
    good_verdict: &Verdict,
) -> anyhow::Result<PathBuf> {
    let mut text = String::new();
    writeln!(text, "# rsslab bisect\n")?;
    writeln!(
        text,
        "First version whose verdict differs from the good one: **{}** (`{}`, {}); last good: **{}**.\n",
        first_bad.version, first_bad.release, first_bad.suite, last_good.version
    )?;
    writeln!(text, "| version | verdict | |\n|---|---|---|")?;
    for (version, verdict) in tried {
        let word = if verdict == good_verdict {
            "good"
        } else {
            "**bad**"
        };
        writeln!(text, "| {version} | {word} | {} |", describe(verdict))?;
    }
    let files = |kernel: &ArchiveKernel| {
        prepare_kernel(cache, base_url, &kernel.to_kernel(&exact_id(kernel)))
    };
    let (good_files, bad_files) = (files(last_good)?, files(first_bad)?);
    let read = |path: Option<&PathBuf>| {
        path.and_then(|path| fs::read_to_string(path).ok())
            .unwrap_or_default()
    };
    let changes = config_diff(
        &read(good_files.config.as_ref()),
        &read(bad_files.config.as_ref()),
    );
    writeln!(
        text,
        "\n## Config: {} options differ (memory-related first)\n",
        changes.len()
    )?;
    for change in changes.iter().take(200) {
        let value = |value: &Option<String>| value.clone().unwrap_or_else(|| "not set".into());
        writeln!(
            text,
            "- {}`CONFIG_{}`: {} -> {}",
            if change.memory { "**mm** " } else { "" },
            change.option,
            value(&change.before),
            value(&change.after)
        )?;
    }
    let changelog = debian_changelog(&bad_files.modules_dir)
        .or_else(|| debian_changelog(&bad_files.vmlinuz))
        .unwrap_or_default();
    let entries = changelog_between(&changelog, &last_good.version, &first_bad.version);
    writeln!(
        text,
        "\n## Changelog from {} to {}\n",
        last_good.version, first_bad.version
    )?;
    if entries.is_empty() {
        writeln!(
            text,
            "(no entries between the two versions in the package's changelog)"
        )?;
    }
    for entry in &entries {
        writeln!(
            text,
            "### {} ({} of {} items about memory or cgroups, first)\n",
            entry.version,
            entry.memory_items,
            entry.items.len()
        )?;
        for item in &entry.items {
            writeln!(text, "- {item}")?;
        }
        writeln!(text)?;
    }
    let path = out_dir.join("bisect.md");
    fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The largest `usr/share/doc/*/changelog*.gz` of the unpacked tree `near` is in, unzipped.
fn debian_changelog(near: &Path) -> Option<String> {
    let root = near
        .ancestors()
        .find(|dir| dir.join("usr/share/doc").is_dir())?;
    let mut logs: Vec<PathBuf> = fs::read_dir(root.join("usr/share/doc"))
        .ok()?
        .flatten()
        .flat_map(|dir| fs::read_dir(dir.path()).into_iter().flatten().flatten())
        .map(|entry| entry.path())
        .filter(|path| {
            let name = path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            name.starts_with("changelog") && name.ends_with(".gz")
        })
        .collect();
    logs.sort_by_key(|path| fs::metadata(path).map_or(0, |meta| meta.len()));
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(fs::File::open(logs.last()?).ok()?),
        &mut text,
    )
    .ok()?;
    Some(text)
}

/// Every version's raw records merged into `<out>/report/`, with its outputs.
fn merge_report(
    out_dir: &Path,
    line: &[ArchiveKernel],
    tried: &[(String, Verdict)],
) -> anyhow::Result<()> {
    let inputs: Vec<PathBuf> = line
        .iter()
        .filter(|kernel| tried.iter().any(|(version, _)| version == &kernel.version))
        .map(|kernel| out_dir.join(kernel_dir_name(&exact_id(kernel))))
        .collect();
    let report = out_dir.join("report");
    crate::lab::merge::merge_raw_records(&inputs, &report).map_err(|error| anyhow!("{error}"))?;
    crate::lab::write_outputs(&report)?;
    eprintln!(
        "rsslab bisect: report: {}",
        report.join("index.html").display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supply::debian::Flavour;

    fn kernel(version: &str, flavour: Flavour, suite: &str) -> ArchiveKernel {
        ArchiveKernel {
            suite: suite.into(),
            version: version.into(),
            upstream: version.split('-').next().unwrap().into(),
            flavour,
            release: String::new(),
            packages: vec![],
        }
    }

    #[test]
    fn candidates_are_one_package_per_upstream_version_from_good_to_bad() {
        let kernels = [
            kernel("6.12.43-1~bpo12+1", Flavour::Cloud, "bookworm-backports"),
            kernel("6.12.43-1", Flavour::Cloud, "trixie"),
            kernel("6.12.50-1", Flavour::Cloud, "trixie"),
            kernel("6.12.50-1", Flavour::Rt, "trixie"),
            kernel("6.16.3-1~bpo13+1", Flavour::Cloud, "trixie-backports"),
            kernel("6.16.12-1~bpo13+1", Flavour::Cloud, "trixie-backports"),
            kernel("7.2.6-1~bpo13+1", Flavour::Cloud, "trixie-backports"),
        ];
        let versions = |line: Vec<ArchiveKernel>| -> Vec<String> {
            line.into_iter().map(|k| k.version).collect()
        };
        let forward = candidates(&kernels, &kernels[0], &kernels[6]);
        assert_eq!(
            versions(forward),
            [
                "6.12.43-1~bpo12+1",
                "6.12.50-1",
                "6.16.3-1~bpo13+1",
                "6.16.12-1~bpo13+1",
                "7.2.6-1~bpo13+1"
            ]
        );
        // A fix bisect: the good end is the newer one; the line runs from it.
        let backward = candidates(&kernels, &kernels[5], &kernels[2]);
        assert_eq!(
            versions(backward),
            ["6.16.12-1~bpo13+1", "6.16.3-1~bpo13+1", "6.12.50-1"]
        );
    }

    #[test]
    fn binary_search_probes_the_middle_until_neighbours() {
        assert_eq!(next_probe(0, 1), None);
        assert_eq!(next_probe(0, 2), Some(1));
        assert_eq!(next_probe(0, 9), Some(4));
        assert_eq!(next_probe(4, 9), Some(6));
        // Ten candidates take at most four probes after the ends.
        let first_bad = 7;
        let (mut low, mut high, mut probes) = (0, 9, 0);
        while let Some(probe) = next_probe(low, high) {
            probes += 1;
            if probe < first_bad {
                low = probe
            } else {
                high = probe
            }
        }
        assert_eq!((high, probes), (first_bad, 3));
    }
}
