//! The matrix at the top of the page: one row per scenario and variant, one column per kernel,
//! each cell a run's outcome, its expectations and key numbers, linking to the run.

use serde::Serialize;

use super::run::{CgroupNumbers, ProcessNumbers, cgroup_numbers, process_numbers};
use super::run_class;
use crate::analysis::results::RunResult;
use crate::records::LoadedRun;

/// One row of the matrix: a scenario's variant across kernels.
#[derive(Debug, Serialize)]
pub struct MatrixRow {
    pub scenario: String,
    pub scenario_anchor: String,
    /// Rows of the same scenario follow each other; the first spans them.
    pub first: bool,
    pub scenario_rows: usize,
    pub variant_label: String,
    /// One cell per kernel of the page; a cell may hold several runs (merged shards) or none.
    pub cells: Vec<Vec<MatrixCell>>,
}

/// One run in the matrix.
#[derive(Debug, Serialize)]
pub struct MatrixCell {
    pub anchor: String,
    pub outcome: String,
    pub class: &'static str,
    pub processes: Vec<ProcessNumbers>,
    pub cgroup: Option<CgroupNumbers>,
    pub expectations_passed: usize,
    pub expectations_failed: usize,
    /// Regressions against the baseline of this scenario, kernel and variant.
    pub regressions: usize,
    /// Kernel facts the guest probed otherwise than the run relied on.
    pub fact_mismatches: usize,
}

/// The cell of the run summarised in `result`, linking to `anchor`, with the `regressions`
/// of its combination against the baseline.
pub fn matrix_cell(
    result: &RunResult,
    run: Option<&LoadedRun>,
    anchor: &str,
    regressions: usize,
) -> MatrixCell {
    let failed = result.expectations.iter().filter(|e| !e.passed).count();
    MatrixCell {
        anchor: anchor.to_owned(),
        outcome: result.outcome.to_string(),
        class: run_class(result.outcome),
        processes: process_numbers(result, run),
        cgroup: cgroup_numbers(result, run),
        expectations_passed: result.expectations.len() - failed,
        expectations_failed: failed,
        regressions,
        fact_mismatches: result.fact_mismatches.len(),
    }
}

/// The rows of one scenario: `placed[variant][kernel]` holds the cells of the runs of that
/// variant on that kernel.
pub fn scenario_rows(
    scenario: &str,
    scenario_anchor: &str,
    variants: &[String],
    placed: Vec<Vec<Vec<MatrixCell>>>,
) -> Vec<MatrixRow> {
    variants
        .iter()
        .zip(placed)
        .enumerate()
        .map(|(row, (variant, cells))| MatrixRow {
            scenario: scenario.to_owned(),
            scenario_anchor: scenario_anchor.to_owned(),
            first: row == 0,
            scenario_rows: variants.len(),
            variant_label: variant.clone(),
            cells,
        })
        .collect()
}
