//! Comparing a lab with a baseline (`rsslab diff BASE NEW`, `rsslab run --baseline DIR`): how
//! runs and processes ended, which expectations flipped, and which key numbers moved beyond
//! run-to-run noise. [`compare`] is the entry point; [`compare_dirs`] loads two output
//! directories first, and [`compare_with_baseline`] keeps the result in the new one
//! ([`crate::analysis::comparison`]). `output::markdown` renders it.
//!
//! # What is compared
//!
//! Runs are matched by scenario, kernel (catalogue id) and variant; repeats of one
//! (`--repeat N`) are taken together. For each match:
//!
//! - **`outcome`**, the run's: a baseline that ended `ok` and a new run that ended
//!   `kernel-panic`, `vm-timeout` or `unsupported` is a *regression*; `infra-error` (rsslab's
//!   own failure) is only a *change*;
//! - **`process.<name>.outcome`**: processes that *survived* (`running-at-end`, `exited(0)`)
//!   and now end `oom-killed`, `enomem-at-start`, `killed(..)` or `exited(N)` are a
//!   *regression*, the reverse an *improvement*; any other difference a *change*;
//! - **`expect: <name>`**: an expectation that held in every baseline run and fails in a new
//!   one is a *regression* (and the reverse an improvement);
//! - **key numbers** of runs that ended `ok` on both sides: per process `max` and `last`
//!   `rss` and `max lazyfree`; the cgroup's `max working_set` and `max usage`; the guest's
//!   `min mem_available`. A number that moved by the rule of [`stats`] (an effect floor, and
//!   Welch's t-test with repeats) is a *regression* when memory use grew (or MemAvailable
//!   fell), an *improvement* otherwise.
//!
//! A change that the kernel catalogue records as known behaviour of a package version
//! (`[[kernel.behaviour_changes]]` in `vm-images/kernels.toml`) between the versions the two
//! sides booted is labelled *expected*, with the catalogue's note, and is not a regression.
//! Runs present on one side only are listed, not judged.

pub mod stats;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};
use rsslab_wire::{ProcessOutcome, RunOutcome};

use crate::analysis::comparison::{Change, Comparison, Verdict, write_comparison};
use crate::analysis::results::{RunResult, build_results};
use crate::catalogue::Catalogue;
use crate::catalogue::versions::compare_debian_versions;
use crate::records::LoadedRun;
use crate::scenario::expect::{Unit, format_value};

/// Loads the runs of two output directories and compares them; `baseline_dir` is named in
/// the comparison as given. An input without runs is an error that names it.
pub fn compare_dirs(
    baseline_dir: &Path,
    new_dir: &Path,
    catalogue: Option<&Catalogue>,
) -> Result<Comparison> {
    let load = |dir: &Path| -> Result<Vec<LoadedRun>> {
        let runs = crate::records::load_all(dir)
            .with_context(|| format!("reading the runs of {}", dir.display()))?;
        if runs.is_empty() {
            bail!(
                "{}: no runs (no runs/**/run.json): not a lab output directory",
                dir.display()
            );
        }
        Ok(runs)
    };
    let baseline = load(baseline_dir)?;
    let new = load(new_dir)?;
    Ok(compare(
        &baseline,
        &new,
        catalogue,
        &baseline_dir.display().to_string(),
    ))
}

/// Compares the runs of `out_dir` with `baseline`'s and keeps the comparison in
/// `out_dir/comparison.json`, where the outputs of `out_dir` find it.
pub fn compare_with_baseline(
    baseline: &Path,
    out_dir: &Path,
    catalogue: Option<&Catalogue>,
) -> Result<Comparison> {
    let comparison = compare_dirs(baseline, out_dir, catalogue)?;
    write_comparison(out_dir, &comparison)?;
    Ok(comparison)
}

/// Scenario, kernel, variant label.
type Key = (String, String, String);

/// One run's record and its evaluated summary.
struct Side<'a> {
    run: &'a LoadedRun,
    result: RunResult,
}

/// Compares `new` with `baseline` (see the module docs). `catalogue` supplies the known
/// behaviour changes; without it none are known.
pub fn compare(
    baseline: &[LoadedRun],
    new: &[LoadedRun],
    catalogue: Option<&Catalogue>,
    baseline_label: &str,
) -> Comparison {
    let baseline = group(baseline);
    let new = group(new);
    let label = |(scenario, kernel, variant): &Key| {
        [scenario.as_str(), kernel, variant]
            .iter()
            .filter(|part| !part.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("/")
    };
    let mut changes = Vec::new();
    let mut compared = 0;
    for (key, base_runs) in &baseline {
        let Some(new_runs) = new.get(key) else {
            continue;
        };
        compared += 1;
        let mut found = Vec::new();
        run_outcomes(base_runs, new_runs, &mut found);
        process_outcomes(base_runs, new_runs, &mut found);
        expectations(base_runs, new_runs, &mut found);
        key_numbers(base_runs, new_runs, &mut found);
        let versions = (kernel_versions(base_runs), kernel_versions(new_runs));
        for (what, verdict, baseline, new, detail) in found {
            let mut change = Change {
                scenario: key.0.clone(),
                kernel: key.1.clone(),
                variant_label: key.2.clone(),
                what,
                verdict,
                baseline,
                new,
                detail,
                note: None,
            };
            if let Some(note) = known_change(catalogue, &change, &versions) {
                change.verdict = Verdict::Expected;
                change.note = Some(note);
            }
            changes.push(change);
        }
    }
    changes.sort_by_key(|change| change.verdict);
    Comparison {
        baseline: baseline_label.to_owned(),
        compared,
        only_in_baseline: baseline
            .keys()
            .filter(|key| !new.contains_key(*key))
            .map(label)
            .collect(),
        only_in_new: new
            .keys()
            .filter(|key| !baseline.contains_key(*key))
            .map(label)
            .collect(),
        changes,
    }
}

/// Runs by scenario, kernel and variant (repeats together), with their summaries.
fn group(runs: &[LoadedRun]) -> BTreeMap<Key, Vec<Side<'_>>> {
    let results = build_results(runs);
    let mut by_dir: BTreeMap<&str, &LoadedRun> = BTreeMap::new();
    for run in runs {
        by_dir.insert(run.record.dir.as_str(), run);
    }
    let mut groups: BTreeMap<Key, Vec<Side<'_>>> = BTreeMap::new();
    for result in results.runs {
        let Some(run) = by_dir.get(result.dir.as_str()).copied() else {
            continue;
        };
        let key = (
            result.scenario.clone(),
            result.kernel.clone(),
            result.variant_label.clone(),
        );
        groups.entry(key).or_default().push(Side { run, result });
    }
    groups
}

/// What a comparison step found: what, verdict, baseline, new, detail.
type Found = (String, Verdict, String, String, String);

fn run_outcomes(base: &[Side<'_>], new: &[Side<'_>], found: &mut Vec<Found>) {
    let outcomes = |sides: &[Side<'_>]| -> Vec<String> {
        sides
            .iter()
            .map(|side| side.result.outcome.to_string())
            .collect()
    };
    let (before, after) = (outcomes(base), outcomes(new));
    if distinct(&before) == distinct(&after) {
        return;
    }
    let all_ok = |sides: &[Side<'_>]| sides.iter().all(|s| s.result.outcome == RunOutcome::Ok);
    let kernel_fault = |sides: &[Side<'_>]| {
        sides.iter().any(|s| {
            matches!(
                s.result.outcome,
                RunOutcome::KernelPanic | RunOutcome::VmTimeout | RunOutcome::Unsupported
            )
        })
    };
    let (verdict, detail) = if all_ok(base) && kernel_fault(new) {
        (
            Verdict::Regression,
            "the new runs did not complete".to_owned(),
        )
    } else if all_ok(new) && !all_ok(base) {
        (Verdict::Improvement, "the new runs completed".to_owned())
    } else {
        let reasons: BTreeSet<&str> = new
            .iter()
            .filter_map(|side| side.result.reason.as_deref())
            .collect();
        (
            Verdict::Changed,
            reasons.into_iter().collect::<Vec<_>>().join("; "),
        )
    };
    found.push((
        "outcome".into(),
        verdict,
        tally(&before),
        tally(&after),
        detail,
    ));
}

/// Outcome classes: `survived` for running-at-end and exited(0), else the outcome itself.
fn outcome_class(outcome: &ProcessOutcome) -> String {
    match outcome {
        ProcessOutcome::RunningAtEnd | ProcessOutcome::Exited(0) => "survived".into(),
        other => other.to_string(),
    }
}

/// Ended as a service should not: OOM-killed, refused at start, killed, a non-zero exit.
fn failed(outcome: &ProcessOutcome) -> bool {
    match outcome {
        ProcessOutcome::OomKilled | ProcessOutcome::EnomemAtStart | ProcessOutcome::Killed(_) => {
            true
        }
        ProcessOutcome::Exited(code) => *code != 0,
        ProcessOutcome::RunningAtEnd | ProcessOutcome::NotStarted => false,
    }
}

fn process_outcomes(base: &[Side<'_>], new: &[Side<'_>], found: &mut Vec<Found>) {
    fn ok<'s>(sides: &'s [Side<'_>]) -> Vec<&'s RunResult> {
        sides
            .iter()
            .filter(|s| s.result.outcome == RunOutcome::Ok)
            .map(|s| &s.result)
            .collect()
    }
    let (base, new) = (ok(base), ok(new));
    let names: BTreeSet<&String> = base
        .iter()
        .chain(&new)
        .flat_map(|result| result.processes.keys())
        .collect();
    for name in names {
        let outcomes = |results: &[&RunResult]| -> Vec<ProcessOutcome> {
            results
                .iter()
                .filter_map(|result| result.processes.get(name))
                .map(|process| process.outcome.clone())
                .collect()
        };
        let (before, after) = (outcomes(&base), outcomes(&new));
        if before.is_empty() || after.is_empty() {
            continue;
        }
        let classes = |outcomes: &[ProcessOutcome]| -> Vec<String> {
            outcomes.iter().map(outcome_class).collect()
        };
        let (before_classes, after_classes) = (classes(&before), classes(&after));
        if distinct(&before_classes) == distinct(&after_classes) {
            continue;
        }
        let survived = |outcomes: &[ProcessOutcome]| outcomes.iter().all(|o| !failed(o));
        let verdict = if survived(&before) && !survived(&after) {
            Verdict::Regression
        } else if !survived(&before) && survived(&after) {
            Verdict::Improvement
        } else {
            Verdict::Changed
        };
        found.push((
            format!("process.{name}.outcome"),
            verdict,
            tally(&before_classes),
            tally(&after_classes),
            String::new(),
        ));
    }
}

fn expectations(base: &[Side<'_>], new: &[Side<'_>], found: &mut Vec<Found>) {
    let passes = |sides: &[Side<'_>]| -> BTreeMap<String, Vec<bool>> {
        let mut passes: BTreeMap<String, Vec<bool>> = BTreeMap::new();
        for side in sides {
            for expectation in &side.result.expectations {
                passes
                    .entry(expectation.name.clone())
                    .or_default()
                    .push(expectation.passed);
            }
        }
        passes
    };
    let (before, after) = (passes(base), passes(new));
    for (name, before) in &before {
        let Some(after) = after.get(name) else {
            continue;
        };
        let all = |passes: &[bool]| passes.iter().all(|p| *p);
        let verdict = match (all(before), all(after)) {
            (true, false) => Verdict::Regression,
            (false, true) => Verdict::Improvement,
            _ => continue,
        };
        let detail = new
            .iter()
            .flat_map(|side| &side.result.expectations)
            .find(|e| &e.name == name && !e.passed)
            .or_else(|| {
                base.iter()
                    .flat_map(|side| &side.result.expectations)
                    .find(|e| &e.name == name && !e.passed)
            })
            .map(|e| e.detail.clone())
            .unwrap_or_default();
        found.push((
            format!("expect: {name}"),
            verdict,
            passed_tally(before),
            passed_tally(after),
            detail,
        ));
    }
}

/// A key number: its values per run and whether higher is worse.
struct Number {
    values: Vec<f64>,
    higher_is_worse: bool,
}

/// The key numbers of the runs that ended ok.
fn numbers(sides: &[Side<'_>]) -> BTreeMap<String, Number> {
    let mut numbers: BTreeMap<String, Number> = BTreeMap::new();
    let mut add = |name: String, value: Option<u64>, higher_is_worse: bool| {
        if let Some(value) = value {
            numbers
                .entry(name)
                .or_insert(Number {
                    values: Vec::new(),
                    higher_is_worse,
                })
                .values
                .push(value as f64);
        }
    };
    for side in sides
        .iter()
        .filter(|side| side.result.outcome == RunOutcome::Ok)
    {
        for (name, process) in &side.result.processes {
            add(
                format!("max process.{name}.rss"),
                process.peak.get("rss").copied(),
                true,
            );
            let last_rss = side
                .run
                .samples
                .iter()
                .rev()
                .find_map(|sample| sample.process.get(name)?.get("rss").copied());
            add(format!("last process.{name}.rss"), last_rss, true);
            add(
                format!("max process.{name}.lazyfree"),
                process.peak.get("lazyfree").copied(),
                true,
            );
        }
        for metric in ["working_set", "usage"] {
            add(
                format!("max cgroup.{metric}"),
                side.result.cgroup_peak.get(metric).copied(),
                true,
            );
        }
        let min_available = side
            .run
            .samples
            .iter()
            .filter_map(|sample| sample.guest.get("mem_available").copied())
            .min();
        add("min guest.mem_available".into(), min_available, false);
    }
    numbers
}

fn key_numbers(base: &[Side<'_>], new: &[Side<'_>], found: &mut Vec<Found>) {
    let (before, after) = (numbers(base), numbers(new));
    for (name, before) in &before {
        let Some(after) = after.get(name) else {
            continue;
        };
        let shift = stats::shift(&before.values, &after.values);
        if !shift.changed {
            continue;
        }
        let grew = shift.new_mean > shift.baseline_mean;
        let verdict = if grew == before.higher_is_worse {
            Verdict::Regression
        } else {
            Verdict::Improvement
        };
        let delta = shift.new_mean - shift.baseline_mean;
        let mut detail = format!(
            "{}{}",
            if delta >= 0.0 { "+" } else { "-" },
            format_value(Unit::Bytes, delta.abs())
        );
        if shift.baseline_mean > 0.0 {
            let _ = write!(detail, " ({:+.0}%)", 100.0 * delta / shift.baseline_mean);
        }
        match shift.p {
            Some(p) => {
                let _ = write!(detail, ", Welch's t-test p = {p:.2e}");
            }
            None => detail.push_str(
                ", a single run on a side: no noise estimate, judged by the wider floor (--repeat 3 tests it)",
            ),
        }
        found.push((
            name.clone(),
            verdict,
            describe_values(&before.values),
            describe_values(&after.values),
            detail,
        ));
    }
}

/// The package versions the runs booted (of the kernel's first package).
fn kernel_versions(sides: &[Side<'_>]) -> BTreeSet<String> {
    sides
        .iter()
        .filter_map(|side| side.run.record.provenance.kernel_packages.first())
        .map(|package| package.version.clone())
        .collect()
}

/// The note of a catalogue behaviour change that explains `change`: its kernel, scenario and
/// what match, and `since` lies between a version on one side and a version on the other.
fn known_change(
    catalogue: Option<&Catalogue>,
    change: &Change,
    (base_versions, new_versions): &(BTreeSet<String>, BTreeSet<String>),
) -> Option<String> {
    let kernel = catalogue?.get(&change.kernel)?;
    kernel
        .behaviour_changes
        .iter()
        .find(|known| {
            let crosses = |before: &BTreeSet<String>, after: &BTreeSet<String>| {
                before.iter().any(|old| {
                    compare_debian_versions(old, &known.since) == Ordering::Less
                        && after
                            .iter()
                            .any(|new| compare_debian_versions(new, &known.since) != Ordering::Less)
                })
            };
            glob_match(&known.scenario, &change.scenario)
                && glob_match(&known.what, &change.what)
                && (crosses(base_versions, new_versions) || crosses(new_versions, base_versions))
        })
        .map(|known| format!("known since {}: {}", known.since, known.note))
}

/// `*` matches any run of characters; everything else itself.
fn glob_match(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(tail) = text.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .filter(|&i| tail.is_char_boundary(i))
                .any(|i| glob_match(rest, &tail[i..]))
        }
    }
}

fn distinct(items: &[String]) -> BTreeSet<&str> {
    items.iter().map(String::as_str).collect()
}

/// `survived ×3`, `oom-killed ×2, survived`.
fn tally(items: &[String]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for item in items {
        *counts.entry(item).or_default() += 1;
    }
    counts
        .iter()
        .map(|(item, &count)| {
            if count == 1 {
                (*item).to_owned()
            } else {
                format!("{item} ×{count}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `passed`, `failed ×2, passed`.
fn passed_tally(passes: &[bool]) -> String {
    let words: Vec<String> = passes
        .iter()
        .map(|p| if *p { "passed" } else { "failed" }.to_owned())
        .collect();
    tally(&words)
}

/// `51.0MiB` for one run; `51.0MiB (mean of 3: 50.9MiB–51.1MiB)` for several.
fn describe_values(values: &[f64]) -> String {
    let mib = |bytes: f64| format_value(Unit::Bytes, bytes);
    let mean = stats::mean(values);
    if values.len() == 1 {
        return mib(mean);
    }
    let (low, high) = stats::range(values);
    format!(
        "{} (mean of {}: {}–{})",
        mib(mean),
        values.len(),
        mib(low),
        mib(high)
    )
}

#[cfg(test)]
mod tests;
