//! Every figure of the page, drawn in parallel: per run its process, cgroup/guest, pod,
//! pressure and reclaim charts, per scenario and variant a row of kernels. A scenario's series
//! are read once, its axes are fitted to all its runs (so kernels and variants compare at a
//! glance; a pod's chart to that pod in every run), then each figure is one job for rayon's
//! pool.

use anyhow::{Context, Result};
use rayon::prelude::*;

use super::plot::{
    Axes, Focus, KernelPanel, Marker, RunSeries, Series, event_markers, kernel_row, pod_chart,
    pressure_chart, process_chart, reclaim_chart, run_series, system_chart,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::analysis::results::{Results, RunResult};
use crate::catalogue::versions::compare_kernels;
use crate::records::LoadedRun;

/// One scenario's runs, as the page lists them.
pub struct ScenarioRuns<'a> {
    pub runs: Vec<(&'a RunResult, Option<&'a LoadedRun>)>,
    /// The kernels of its kernel rows, in order.
    pub kernels: Vec<String>,
    /// Its variant labels, in order: one kernel row each.
    pub variants: Vec<String>,
}

/// A lab's scenarios, side by side (index `i` of each is one scenario): their ids, the
/// indices of their runs in `Results::runs`, and the runs as [`draw_figures`] takes them.
#[derive(Default)]
pub struct ScenarioGroups<'a> {
    pub ids: Vec<&'a str>,
    pub indices: Vec<Vec<usize>>,
    pub runs: Vec<ScenarioRuns<'a>>,
}

/// The runs of `results` by scenario, in results order (sorted by id), each with its records
/// (from `runs`, by run directory), its variants (sorted) and its kernels (oldest first).
pub fn group_scenarios<'a>(results: &'a Results, runs: &'a [LoadedRun]) -> ScenarioGroups<'a> {
    let by_dir: HashMap<&str, &LoadedRun> = runs
        .iter()
        .map(|run| (run.record.dir.as_str(), run))
        .collect();
    let mut ids: Vec<&str> = results
        .runs
        .iter()
        .map(|run| run.scenario.as_str())
        .collect();
    ids.dedup();
    let mut groups = ScenarioGroups::default();
    for id in ids {
        let indices: Vec<usize> = (0..results.runs.len())
            .filter(|&i| results.runs[i].scenario == id)
            .collect();
        let runs: Vec<(&RunResult, Option<&LoadedRun>)> = indices
            .iter()
            .map(|&i| {
                let result = &results.runs[i];
                (result, by_dir.get(result.dir.as_str()).copied())
            })
            .collect();
        let variants: BTreeSet<&str> = runs
            .iter()
            .map(|(result, _)| result.variant_label.as_str())
            .collect();
        let mut kernels: Vec<String> = runs
            .iter()
            .map(|(result, _)| result.kernel.clone())
            .collect();
        kernels.sort_by(|a, b| compare_kernels(a, b));
        kernels.dedup();
        groups.ids.push(id);
        groups.indices.push(indices);
        groups.runs.push(ScenarioRuns {
            variants: variants.into_iter().map(str::to_owned).collect(),
            kernels,
            runs,
        });
    }
    groups
}

/// The figures of one scenario.
#[derive(Debug, Default)]
pub struct ScenarioFigures {
    /// Per run of [`ScenarioRuns::runs`], in order: its charts, or `None` without samples.
    pub runs: Vec<Option<RunCharts>>,
    /// Per variant of [`ScenarioRuns::variants`], in order: its kernel row.
    pub kernel_rows: Vec<String>,
}

#[derive(Debug, serde::Serialize)]
pub struct RunCharts {
    pub process: String,
    pub system: String,
    /// `None` when the guest had no pressure figures (no PSI) or they never moved.
    pub pressure: Option<String>,
    /// `None` when no reclaim counter or `memory.events` counter moved.
    pub reclaim: Option<String>,
    /// One per pod of the run's node, in its order; none without pods.
    pub pods: Vec<PodChart>,
}

/// The chart of one pod of a run.
#[derive(Debug, serde::Serialize)]
pub struct PodChart {
    /// The pod's name.
    pub name: String,
    pub svg: String,
}

/// A scenario's series, axes and markers, before drawing.
struct Prepared<'a> {
    scenario: &'a ScenarioRuns<'a>,
    series: Vec<RunSeries>,
    markers: Vec<Vec<Marker>>,
    process_axes: Axes,
    system_axes: Axes,
    focus_axes: Axes,
    pressure_axes: Axes,
    reclaim_axes: Axes,
    /// Per pod name: fitted to that pod's series in every run of the scenario.
    pod_axes: BTreeMap<String, Axes>,
}

/// The charts of one run, in the order of [`RunCharts`].
#[derive(Clone, Copy)]
enum RunChart {
    Process,
    System,
    Pressure,
    Reclaim,
}

/// What one drawing job makes.
enum Job {
    Run {
        scenario: usize,
        run: usize,
        chart: RunChart,
    },
    KernelRow {
        scenario: usize,
        variant: usize,
    },
    /// The chart of pod `pod` (an index into [`RunSeries::pods`]).
    Pod {
        scenario: usize,
        run: usize,
        pod: usize,
    },
}

/// Draws the figures of `scenarios`, in parallel.
pub fn draw_figures(scenarios: &[ScenarioRuns<'_>]) -> Result<Vec<ScenarioFigures>> {
    let prepared: Vec<Prepared<'_>> = scenarios.iter().map(prepare).collect();
    let mut jobs = Vec::new();
    for (index, scenario) in prepared.iter().enumerate() {
        for (run, (_, loaded)) in scenario.scenario.runs.iter().enumerate() {
            if loaded.is_some_and(|loaded| !loaded.samples.is_empty()) {
                let series = &scenario.series[run];
                let charts = [RunChart::Process, RunChart::System]
                    .into_iter()
                    .chain((!series.pressure.is_empty()).then_some(RunChart::Pressure))
                    .chain((!series.reclaim.is_empty()).then_some(RunChart::Reclaim));
                for chart in charts {
                    jobs.push(Job::Run {
                        scenario: index,
                        run,
                        chart,
                    });
                }
                for pod in 0..series.pods.len() {
                    jobs.push(Job::Pod {
                        scenario: index,
                        run,
                        pod,
                    });
                }
            }
        }
        for variant in 0..scenario.scenario.variants.len() {
            jobs.push(Job::KernelRow {
                scenario: index,
                variant,
            });
        }
    }
    let drawn: Vec<String> = jobs
        .par_iter()
        .map(|job| draw(&prepared, job))
        .collect::<Result<_>>()?;

    let mut figures: Vec<ScenarioFigures> = prepared
        .iter()
        .map(|scenario| ScenarioFigures {
            runs: scenario.scenario.runs.iter().map(|_| None).collect(),
            kernel_rows: Vec::new(),
        })
        .collect();
    // Per scenario and run: its charts in the order of [`RunChart`], and its pods'.
    type Drawn = ([Option<String>; 4], Vec<PodChart>);
    let mut run_charts: Vec<Vec<Drawn>> = prepared
        .iter()
        .map(|scenario| {
            (0..scenario.scenario.runs.len())
                .map(|_| Default::default())
                .collect()
        })
        .collect();
    for (job, svg) in jobs.into_iter().zip(drawn) {
        match job {
            Job::Run {
                scenario,
                run,
                chart,
            } => run_charts[scenario][run].0[chart as usize] = Some(svg),
            Job::KernelRow { scenario, .. } => figures[scenario].kernel_rows.push(svg),
            // Jobs are in pod order, and so are their results.
            Job::Pod { scenario, run, pod } => {
                let name = prepared[scenario].series[run].pods[pod].name.clone();
                run_charts[scenario][run].1.push(PodChart { name, svg });
            }
        }
    }
    for (scenario, runs) in run_charts.into_iter().enumerate() {
        for (run, ([process, system, pressure, reclaim], pods)) in runs.into_iter().enumerate() {
            if let (Some(process), Some(system)) = (process, system) {
                figures[scenario].runs[run] = Some(RunCharts {
                    process,
                    system,
                    pressure,
                    reclaim,
                    pods,
                });
            }
        }
    }
    Ok(figures)
}

/// Reads the series of a scenario's runs and fits its axes.
fn prepare<'a>(scenario: &'a ScenarioRuns<'a>) -> Prepared<'a> {
    let focus = Focus::of(scenario.runs.iter().filter_map(|(_, loaded)| *loaded));
    let series: Vec<RunSeries> = scenario
        .runs
        .iter()
        .map(|(_, loaded)| loaded.map_or_else(RunSeries::default, |run| run_series(run, &focus)))
        .collect();
    let t_max = series.iter().map(|run| run.t_max_s).fold(0.0, f64::max);
    let process_axes = Axes::fitting(series.iter().flat_map(|run| &run.process), t_max);
    let system_axes = Axes::fitting(series.iter().flat_map(|run| &run.system), t_max);
    let focus_axes = Axes::fitting(series.iter().flat_map(|run| &run.focus), t_max);
    let pressure_axes = Axes::fitting(series.iter().flat_map(|run| &run.pressure), t_max);
    let reclaim_axes = Axes::fitting(series.iter().flat_map(|run| &run.reclaim), t_max);
    let mut pods: BTreeMap<&str, Vec<&Series>> = BTreeMap::new();
    for pod in series.iter().flat_map(|run| &run.pods) {
        pods.entry(&pod.name).or_default().extend(&pod.series);
    }
    let pod_axes = pods
        .into_iter()
        .map(|(name, lines)| (name.to_owned(), Axes::fitting(lines, t_max)))
        .collect();
    let markers = scenario
        .runs
        .iter()
        .map(|(_, loaded)| {
            loaded.map_or_else(Vec::new, |run| {
                event_markers(run, process_axes.t_max_s / 40.0)
            })
        })
        .collect();
    Prepared {
        scenario,
        series,
        markers,
        process_axes,
        system_axes,
        focus_axes,
        pressure_axes,
        reclaim_axes,
        pod_axes,
    }
}

fn draw(prepared: &[Prepared<'_>], job: &Job) -> Result<String> {
    match *job {
        Job::Run {
            scenario,
            run,
            chart,
        } => {
            let prepared = &prepared[scenario];
            let series: &RunSeries = &prepared.series[run];
            type Draw = fn(&[Series], &[Marker], &Axes) -> Result<String>;
            let (draw, lines, axes, what): (Draw, _, _, _) = match chart {
                RunChart::Process => (
                    process_chart,
                    &series.process,
                    &prepared.process_axes,
                    "process",
                ),
                RunChart::System => (
                    system_chart,
                    &series.system,
                    &prepared.system_axes,
                    "cgroup and guest",
                ),
                RunChart::Pressure => (
                    pressure_chart,
                    &series.pressure,
                    &prepared.pressure_axes,
                    "pressure",
                ),
                RunChart::Reclaim => (
                    reclaim_chart,
                    &series.reclaim,
                    &prepared.reclaim_axes,
                    "reclaim",
                ),
            };
            draw(lines, &prepared.markers[run], axes)
                .with_context(|| format!("drawing the {what} chart of {}", prepared.dir(run)))
        }
        Job::Pod { scenario, run, pod } => {
            let prepared = &prepared[scenario];
            let pod = &prepared.series[run].pods[pod];
            pod_chart(
                &pod.title,
                &pod.series,
                &prepared.markers[run],
                &prepared.pod_axes[&pod.name],
            )
            .with_context(|| {
                format!(
                    "drawing the chart of pod {:?} of {}",
                    pod.name,
                    prepared.dir(run)
                )
            })
        }
        Job::KernelRow { scenario, variant } => {
            let prepared = &prepared[scenario];
            let label = &prepared.scenario.variants[variant];
            let panels: Vec<KernelPanel<'_>> = prepared
                .scenario
                .kernels
                .iter()
                .map(|kernel| {
                    let found = prepared.scenario.runs.iter().position(|(result, _)| {
                        result.kernel == *kernel && result.variant_label == *label
                    });
                    match found {
                        Some(run) => KernelPanel {
                            kernel,
                            outcome: prepared.scenario.runs[run].0.outcome.as_str(),
                            series: &prepared.series[run].focus,
                            markers: prepared.markers[run].clone(),
                        },
                        None => KernelPanel {
                            kernel,
                            outcome: "no run",
                            series: &[],
                            markers: Vec::new(),
                        },
                    }
                })
                .collect();
            kernel_row(&panels, &prepared.focus_axes)
                .with_context(|| format!("drawing the kernel row of variant {label:?}"))
        }
    }
}

impl Prepared<'_> {
    fn dir(&self, run: usize) -> &str {
        &self.scenario.runs[run].0.dir
    }
}
