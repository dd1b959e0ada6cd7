//! Output: every file a lab's reader opens, rebuilt from the raw records alone by
//! [`write_outputs`] (the stage's entry, which `rsslab run`, `rsslab report DIR` and
//! `rsslab merge` all call): `results.json` ([`crate::analysis::results`]), `index.html`
//! ([`report`]), and beside them the machine outputs `junit.xml` ([`junit`]) for the test
//! views of CI systems and `summary.md` ([`summary`]) for a CI job summary or a chat message.
//!
//! One module per format, each with one entry function that renders [`Results`] to text;
//! [`write_exports`] writes the machine outputs, atomically, from the same results as the
//! report. [`markdown`] is the Markdown that `summary.md` and `rsslab diff` share.

pub mod export;
pub mod junit;
pub mod markdown;
pub mod report;
pub mod summary;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use self::report::render_report;
use crate::analysis::comparison::{Comparison, load_comparison};
use crate::analysis::results::{Results, build_results, write_results};
use crate::files::write_atomically;
use crate::records::{LoadedRun, load_all};

/// File names under the output directory.
pub const JUNIT_XML: &str = "junit.xml";
pub const SUMMARY_MD: &str = "summary.md";

/// What [`write_outputs`] wrote and found.
#[derive(Debug, Clone)]
pub struct Outputs {
    /// `index.html`.
    pub index: PathBuf,
    /// Expectations that failed, over every run (evaluated from the records), one line each.
    pub failed_expectations: Vec<String>,
    /// Regressions against the baseline, when `comparison.json` holds a comparison.
    pub regressions: usize,
}

/// Rebuilds `results.json`, `index.html`, `junit.xml` and `summary.md` from the raw records
/// under `out_dir` (with the baseline comparison in `comparison.json`, when there is one).
pub fn write_outputs(out_dir: &Path) -> Result<Outputs> {
    let runs = load_all(out_dir)?;
    let mut results = build_results(&runs);
    results.baseline = load_comparison(out_dir)?;
    write_results(out_dir, &results)?;
    let index = render_report(out_dir, &runs, &results)?;
    write_exports(out_dir, &runs, &results)?;
    Ok(Outputs {
        index,
        failed_expectations: results.failed_expectation_lines(),
        regressions: results.baseline.as_ref().map_or(0, Comparison::regressions),
    })
}

/// The runs of `scenario` in the lab in `out_dir`, for [`write_focused_report`]; a scenario
/// the lab did not run is an error naming those it did.
pub fn scenario_runs(out_dir: &Path, scenario: &str) -> Result<Vec<LoadedRun>> {
    let all = load_all(out_dir)?;
    let mut known: Vec<&str> = all.iter().map(|run| run.record.scenario.as_str()).collect();
    known.dedup();
    if !known.contains(&scenario) {
        anyhow::bail!(
            "{}: no runs of scenario `{scenario}`; the lab ran {}",
            out_dir.display(),
            known.join(", ")
        );
    }
    Ok(all
        .into_iter()
        .filter(|run| run.record.scenario == scenario)
        .collect())
}

/// A focused report: `index-<scenario>.html` beside `index.html`, the same page holding only
/// one scenario's `runs` (from [`scenario_runs`]) and embedding only their records, small
/// enough to attach to a postmortem. Returns its path and the failed expectations of those
/// runs, one line each.
pub fn write_focused_report(out_dir: &Path, runs: &[LoadedRun]) -> Result<(PathBuf, Vec<String>)> {
    let scenario = runs
        .first()
        .map_or("none", |run| run.record.scenario.as_str());
    let results = build_results(runs);
    let stories = report::scenario_stories(runs);
    let html = report::render_html(out_dir, runs, &results, &stories)?;
    let path = out_dir.join(format!("index-{scenario}.html"));
    write_atomically(&path, html.as_bytes())?;
    Ok((path, results.failed_expectation_lines()))
}

/// What [`write_exports`] wrote.
#[derive(Debug, Clone)]
pub struct Exports {
    pub junit: PathBuf,
    pub summary: PathBuf,
}

/// Writes `junit.xml` and `summary.md` into `out_dir` for `runs`, summarised in `results`.
pub fn write_exports(out_dir: &Path, runs: &[LoadedRun], results: &Results) -> Result<Exports> {
    let junit = out_dir.join(JUNIT_XML);
    let xml = junit::render_junit(results).context("serializing junit.xml")?;
    write_atomically(&junit, xml.as_bytes())?;
    let summary = out_dir.join(SUMMARY_MD);
    let markdown = summary::render_summary(results, runs);
    write_atomically(&summary, markdown.as_bytes())?;
    Ok(Exports { junit, summary })
}
