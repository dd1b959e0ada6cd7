//! What the template shows: [`ReportContext`], assembled by [`report_context`] from the runs,
//! their results, the figures and the embedded records.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use rsslab_wire::RunOutcome;
use serde::Serialize;

use super::baseline::{BaselineSection, baseline_section, regressions_of};
use super::embed::{EmbeddedRecords, embed_records};
use super::figures::{
    ScenarioFigures, ScenarioGroups, ScenarioRuns, draw_figures, group_scenarios,
};
use super::findings::{FindingItem, finding_items};
use super::matrix::{MatrixRow, matrix_cell, scenario_rows};
use super::provenance::{
    ProvenanceSection, ScenarioFile, provenance, scenario_file, scenario_sources,
};
use super::run::{KeyValue, RunSection, key_values, run_section};
use super::{Anchors, Story, run_class, run_slug, slug};
use crate::analysis::findings::find;
use crate::analysis::results::{Results, RunResult};
use crate::catalogue::versions::compare_kernels;
use crate::records::LoadedRun;

/// Everything the template shows.
#[derive(Debug, Serialize)]
pub struct ReportContext {
    lab: String,
    generated_at: String,
    rsslab_version: String,
    run_count: usize,
    scenario_count: usize,
    outcome_counts: Vec<OutcomeCount>,
    expectations_passed: usize,
    expectations_failed: usize,
    accels: Vec<AccelCount>,
    /// Why each accelerator was chosen (the KVM probe's one line), without repeats.
    accel_reasons: Vec<String>,
    tcg: bool,
    retried: usize,
    /// Runs whose guest probed a kernel fact otherwise than the run relied on.
    fact_mismatch_runs: usize,
    kernels: Vec<String>,
    /// What the lab found, first on the page.
    findings: Vec<FindingItem>,
    matrix: Vec<MatrixRow>,
    /// What changed against the baseline, when the lab was compared with one.
    baseline: Option<BaselineSection>,
    scenarios: Vec<ScenarioSection>,
    provenance: ProvenanceSection,
    records: EmbeddedRecords,
}

/// The runs' accelerator reasons, each once, in the order first seen.
fn accel_reasons(runs: &[RunResult]) -> Vec<String> {
    let mut reasons: Vec<String> = Vec::new();
    for reason in runs.iter().filter_map(|run| run.accel_reason.as_ref()) {
        if !reasons.contains(reason) {
            reasons.push(reason.clone());
        }
    }
    reasons
}

#[derive(Debug, Serialize)]
struct OutcomeCount {
    outcome: String,
    class: &'static str,
    count: usize,
}

#[derive(Debug, Serialize)]
struct AccelCount {
    accel: String,
    count: usize,
}

#[derive(Debug, Serialize)]
struct ScenarioSection {
    id: String,
    anchor: String,
    title: String,
    story: Story,
    variants: Vec<VariantRow>,
    /// One row of kernels per variant (SVG).
    kernel_rows: Vec<KernelRow>,
    kernels: Vec<String>,
    scenario_file: Option<ScenarioFile>,
    runs: Vec<RunSection>,
}

/// A variant of a scenario: its label and the matrix overrides that make it.
#[derive(Debug, Serialize)]
struct VariantRow {
    label: String,
    overrides: Vec<KeyValue>,
    runs: usize,
}

#[derive(Debug, Serialize)]
struct KernelRow {
    variant_label: String,
    svg: String,
}

pub fn report_context(
    out_dir: &Path,
    runs: &[LoadedRun],
    results: &Results,
    stories: &BTreeMap<String, Story>,
) -> Result<ReportContext> {
    let mut anchors = Anchors::default();
    let run_anchors: Vec<String> = results
        .runs
        .iter()
        .map(|run| anchors.unique(&format!("run-{}", run_slug(run))))
        .collect();
    let mut kernels: Vec<String> = results.runs.iter().map(|run| run.kernel.clone()).collect();
    kernels.sort_by(|a, b| compare_kernels(a, b));
    kernels.dedup();

    // Scenarios in results order (sorted by id), each with its runs, variants and kernels.
    let ScenarioGroups {
        ids: scenario_ids,
        indices,
        runs: scenario_runs,
    } = group_scenarios(results, runs);

    // The slow parts, side by side: drawing every figure, and packing the raw records.
    let sources = scenario_sources(out_dir, runs);
    let (figures, records) = rayon::join(
        || draw_figures(&scenario_runs),
        || embed_records(out_dir, runs, &sources),
    );
    let (figures, records) = (figures?, records.context("embedding the raw records")?);

    let mut matrix = Vec::new();
    let mut scenarios = Vec::new();
    for (((id, indices), scenario), figures) in scenario_ids
        .iter()
        .zip(&indices)
        .zip(&scenario_runs)
        .zip(figures)
    {
        let anchor = anchors.unique(&format!("scenario-{}", slug(id)));
        let placed = scenario
            .variants
            .iter()
            .map(|variant| {
                kernels
                    .iter()
                    .map(|kernel| {
                        indices
                            .iter()
                            .zip(&scenario.runs)
                            .filter(|(_, (result, _))| {
                                result.kernel == *kernel && result.variant_label == *variant
                            })
                            .map(|(&i, (result, run))| {
                                let regressions = regressions_of(results.baseline.as_ref(), result);
                                matrix_cell(result, *run, &run_anchors[i], regressions)
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        matrix.extend(scenario_rows(id, &anchor, &scenario.variants, placed));
        let run_anchors: Vec<String> = indices.iter().map(|&i| run_anchors[i].clone()).collect();
        let inputs = Inputs {
            out_dir,
            stories,
            scenario_files: &sources,
        };
        scenarios.push(scenario_section(
            &inputs,
            id,
            anchor,
            scenario,
            figures,
            run_anchors,
        ));
    }

    let outcome_counts = RunOutcome::ALL
        .into_iter()
        .map(|outcome| OutcomeCount {
            outcome: outcome.to_string(),
            class: run_class(outcome),
            count: results
                .runs
                .iter()
                .filter(|run| run.outcome == outcome)
                .count(),
        })
        .filter(|count| count.count > 0)
        .collect();
    let mut accels: BTreeMap<String, usize> = BTreeMap::new();
    for run in &results.runs {
        *accels.entry(run.accel.clone()).or_default() += 1;
    }
    let expectations_failed = results.failed_expectations();
    Ok(ReportContext {
        lab: out_dir
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default(),
        generated_at: results.generated_at.clone(),
        rsslab_version: results.rsslab_version.clone(),
        run_count: results.runs.len(),
        scenario_count: scenario_ids.len(),
        outcome_counts,
        expectations_passed: results
            .runs
            .iter()
            .map(|run| run.expectations.len())
            .sum::<usize>()
            - expectations_failed,
        expectations_failed,
        accel_reasons: accel_reasons(&results.runs),
        tcg: accels.contains_key("tcg"),
        accels: accels
            .into_iter()
            .map(|(accel, count)| AccelCount {
                accel: accel.to_uppercase(),
                count,
            })
            .collect(),
        retried: results.runs.iter().filter(|run| run.attempts > 1).count(),
        fact_mismatch_runs: results.runs_with_fact_mismatches().count(),
        kernels,
        findings: finding_items(&find(&results.runs), &results.runs, &run_anchors),
        matrix,
        baseline: results
            .baseline
            .as_ref()
            .map(|comparison| baseline_section(comparison, &results.runs, &run_anchors)),
        scenarios,
        provenance: provenance(runs),
        records,
    })
}

/// What scenario sections read besides their runs.
struct Inputs<'a> {
    /// The lab's directory (console logs).
    out_dir: &'a Path,
    stories: &'a BTreeMap<String, Story>,
    /// `scenario.toml` by scenario id.
    scenario_files: &'a BTreeMap<String, Vec<u8>>,
}

/// The section of one scenario: story, variants, kernel rows, scenario file and runs (whose
/// anchors are `run_anchors`, in order).
fn scenario_section(
    inputs: &Inputs<'_>,
    id: &str,
    anchor: String,
    scenario: &ScenarioRuns<'_>,
    figures: ScenarioFigures,
    run_anchors: Vec<String>,
) -> ScenarioSection {
    let ScenarioFigures {
        runs: charts,
        kernel_rows,
    } = figures;
    let runs = scenario
        .runs
        .iter()
        .zip(charts)
        .zip(run_anchors)
        .map(|(((result, run), charts), anchor)| {
            run_section(inputs.out_dir, result, *run, charts, anchor)
        })
        .collect();
    let variants = scenario
        .variants
        .iter()
        .map(|label| {
            let of_variant: Vec<&RunResult> = scenario
                .runs
                .iter()
                .map(|(result, _)| *result)
                .filter(|result| result.variant_label == *label)
                .collect();
            VariantRow {
                label: label.clone(),
                overrides: of_variant
                    .first()
                    .map(|result| key_values(&result.variant))
                    .unwrap_or_default(),
                runs: of_variant.len(),
            }
        })
        .collect();
    let loaded: Vec<&LoadedRun> = scenario.runs.iter().filter_map(|(_, run)| *run).collect();
    ScenarioSection {
        id: id.to_owned(),
        anchor,
        title: scenario
            .runs
            .iter()
            .map(|(result, _)| &result.title)
            .find(|title| !title.is_empty())
            .cloned()
            .unwrap_or_default(),
        story: inputs.stories.get(id).cloned().unwrap_or_default(),
        variants,
        kernel_rows: scenario
            .variants
            .iter()
            .zip(kernel_rows)
            .map(|(label, svg)| KernelRow {
                variant_label: label.clone(),
                svg,
            })
            .collect(),
        kernels: scenario.kernels.clone(),
        scenario_file: scenario_file(id, inputs.scenario_files, &loaded),
        runs,
    }
}
