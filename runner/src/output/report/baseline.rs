//! What changed against the baseline, when the lab was compared with one
//! (`rsslab run --baseline DIR`, `rsslab report DIR --baseline BASE`; see [`crate::analysis::diff`]):
//! the counts per verdict, every change linking to its run, and the runs on one side only.

use std::collections::HashMap;

use serde::Serialize;

use crate::analysis::comparison::{Comparison, Verdict};
use crate::analysis::results::RunResult;

#[derive(Debug, Serialize)]
pub struct BaselineSection {
    /// The baseline's directory, as given.
    pub baseline: String,
    /// Combinations present on both sides.
    pub compared: usize,
    pub counts: Vec<VerdictCount>,
    pub changes: Vec<ChangeRow>,
    pub only_in_baseline: Vec<String>,
    pub only_in_new: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct VerdictCount {
    pub verdict: &'static str,
    pub class: &'static str,
    pub count: usize,
}

/// One change, as the table shows it.
#[derive(Debug, Serialize)]
pub struct ChangeRow {
    pub scenario: String,
    pub kernel: String,
    pub variant_label: String,
    /// The section of the (first) new run of that combination, when the page has it.
    pub anchor: Option<String>,
    pub what: String,
    pub verdict: &'static str,
    pub class: &'static str,
    pub baseline: String,
    pub new: String,
    pub detail: String,
    /// Why a change is expected: the kernel catalogue's note.
    pub note: Option<String>,
}

/// The section for `comparison`; `runs` with their `anchors` (in the same order) link the
/// changes to the runs.
pub fn baseline_section(
    comparison: &Comparison,
    runs: &[RunResult],
    anchors: &[String],
) -> BaselineSection {
    let mut by_combination: HashMap<(&str, &str, &str), &str> = HashMap::new();
    for (run, anchor) in runs.iter().zip(anchors) {
        by_combination
            .entry((&run.scenario, &run.kernel, &run.variant_label))
            .or_insert(anchor);
    }
    BaselineSection {
        baseline: comparison.baseline.clone(),
        compared: comparison.compared,
        counts: [
            Verdict::Regression,
            Verdict::Expected,
            Verdict::Changed,
            Verdict::Improvement,
        ]
        .into_iter()
        .map(|verdict| VerdictCount {
            verdict: verdict.as_str(),
            class: verdict_class(verdict),
            count: comparison.count(verdict),
        })
        .filter(|count| count.count > 0)
        .collect(),
        changes: comparison
            .changes
            .iter()
            .map(|change| ChangeRow {
                anchor: by_combination
                    .get(&(
                        change.scenario.as_str(),
                        change.kernel.as_str(),
                        change.variant_label.as_str(),
                    ))
                    .map(|anchor| (*anchor).to_owned()),
                scenario: change.scenario.clone(),
                kernel: change.kernel.clone(),
                variant_label: change.variant_label.clone(),
                what: change.what.clone(),
                verdict: change.verdict.as_str(),
                class: verdict_class(change.verdict),
                baseline: change.baseline.clone(),
                new: change.new.clone(),
                detail: change.detail.clone(),
                note: change.note.clone(),
            })
            .collect(),
        only_in_baseline: comparison.only_in_baseline.clone(),
        only_in_new: comparison.only_in_new.clone(),
    }
}

/// Regressions of one scenario, kernel and variant, for its matrix cell.
pub fn regressions_of(comparison: Option<&Comparison>, run: &RunResult) -> usize {
    comparison.map_or(0, |comparison| {
        comparison
            .changes
            .iter()
            .filter(|change| {
                change.verdict == Verdict::Regression
                    && change.scenario == run.scenario
                    && change.kernel == run.kernel
                    && change.variant_label == run.variant_label
            })
            .count()
    })
}

fn verdict_class(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Regression => "bad",
        Verdict::Expected | Verdict::Changed => "skip",
        Verdict::Improvement => "ok",
    }
}
