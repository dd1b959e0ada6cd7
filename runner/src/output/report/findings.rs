//! The findings at the top of the page ([`crate::analysis::findings`]), each with links to the
//! runs it rests on.

use serde::Serialize;

use crate::analysis::findings::{Finding, FindingKind};
use crate::analysis::results::RunResult;

/// One finding as the template shows it.
#[derive(Debug, Serialize)]
pub struct FindingItem {
    scenario: String,
    measure: String,
    text: String,
    /// `expected`, `expectation failed` or `new`.
    kind: &'static str,
    /// The badge's class: `ok`, `bad` or `warn`.
    class: &'static str,
    expectations: Vec<String>,
    runs: Vec<RunLink>,
}

/// A link to a run's section: `6.1 · release=free`.
#[derive(Debug, Serialize)]
pub struct RunLink {
    label: String,
    anchor: String,
}

/// The items of `findings`; `runs` and `run_anchors` are the results' runs and their anchors,
/// in the same order.
pub fn finding_items(
    findings: &[Finding],
    runs: &[RunResult],
    run_anchors: &[String],
) -> Vec<FindingItem> {
    findings
        .iter()
        .map(|finding| FindingItem {
            scenario: finding.scenario.clone(),
            measure: finding.measure.clone(),
            text: finding.text.clone(),
            kind: finding.kind.as_str(),
            class: match finding.kind {
                FindingKind::Expected => "ok",
                FindingKind::ExpectationFailed => "bad",
                FindingKind::New => "warn",
            },
            expectations: finding.expectations.clone(),
            runs: finding
                .runs
                .iter()
                .filter_map(|dir| {
                    let index = runs.iter().position(|run| run.dir == *dir)?;
                    let run = &runs[index];
                    let mut label = run.kernel.clone();
                    if !run.variant_label.is_empty() {
                        label += &format!(" · {}", run.variant_label);
                    }
                    Some(RunLink {
                        label,
                        anchor: run_anchors[index].clone(),
                    })
                })
                .collect(),
        })
        .collect()
}
