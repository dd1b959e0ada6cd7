//! `index.html`: one self-contained page per lab (inline CSS and SVG, no script, no external
//! request), rebuilt from the raw records alone and printable, to attach to a postmortem.
//!
//! # How to read the report
//!
//! - **Header.** When the page was generated, by which rsslab, how many runs and how they
//!   ended, and the accelerator: KVM, or TCG (software emulation: timings and boot times are
//!   slow, but the memory figures are real, since the guest kernel runs unchanged).
//! - **Matrix.** One row per scenario and variant, one column per kernel. Each cell has the
//!   run's outcome (`ok`, `unsupported`, `kernel-panic`, `vm-timeout`, `infra-error`), how
//!   each process ended, and three numbers per process: **peak** RSS (the kernel's VmHWM or
//!   the highest sample), RSS at the **end** (last sample) and the largest **lazyfree** (pages
//!   freed with MADV_FREE still counted in RSS). A cell links to its run below.
//! - **Scenarios.** Each scenario's title and story, then one section per run:
//!   - the run's kernel (`uname -r`), variant, outcome and reason, boot and wall times;
//!   - a **chart** of memory in MiB over time in seconds: each process's RSS (solid) and
//!     lazyfree (dashed, same colour), the guest's MemAvailable (grey), the cgroup's usage,
//!     working set and limit when the scenario has a cgroup. Vertical lines mark events:
//!     green a process started, blue a workload phase (`service:released`), grey a process
//!     ended, red an OOM kill. All charts of a scenario share their axes, so kernels and
//!     variants compare at a glance;
//!   - the **at each phase** table: for every event, the values things *settled at* (the last
//!     sample before the next event): that is where the story shows, e.g. after
//!     `service:released` RSS stays high with most of it lazyfree under MADV_FREE, but falls
//!     at once under MADV_DONTNEED, and after `balloon:full` the service's RSS has fallen
//!     because the kernel reclaimed the lazily-freed pages;
//!   - the **processes** table (outcome, start and end, peaks in MiB), set-up steps that
//!     failed, OOM kills, the workloads' log lines, and links to the raw files (`run.json`,
//!     `samples.jsonl`, `console.log`) next to `index.html`;
//!   - for a run that did not end `ok`, the last lines of its console log.
//! - **Provenance.** Per kernel, the packages booted with their version and sha256; QEMU's
//!   version, the hosts, rsslab's version and git revision, each scenario file's path and
//!   sha256.
//!
//! Every string that comes from a scenario or a guest is escaped, in HTML by the template
//! engine (autoescape) and in SVG by plotters.

pub mod phases;
pub mod plot;
pub mod story;
#[cfg(test)]
pub(crate) mod testing;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};
use minijinja::{Environment, UndefinedBehavior};
use rsslab_wire::{EventKind, Mapping, ProcessOutcome, ReadMode, Release, RunOutcome, Workload};
use serde::Serialize;

use self::phases::{PhaseTable, format_mib, phase_table};
use self::plot::{Axes, process_names, run_chart, seconds};
pub use self::story::Story;
use crate::record::{CONSOLE_LOG, LoadedRun, PackageProvenance, RUN_JSON, SAMPLES_JSONL};
use crate::results::{ExpectationResult, Results, RunResult, compare_kernels, write_atomically};

/// File name of the report under the output directory.
pub const INDEX_HTML: &str = "index.html";
/// Lines of console log shown for a run that did not end `ok`.
pub const CONSOLE_TAIL_LINES: usize = 40;
/// Log events shown per run (the rest are in `run.json`).
const LOG_LINES: usize = 50;

const TEMPLATE_NAME: &str = "report.html";
const TEMPLATE: &str = include_str!("../../templates/report.html");

/// Writes `out_dir/index.html` for `runs`, summarised in `results`. Scenario stories are read
/// from the scenario files the runs name (see [`scenario_stories`]); console logs from the
/// runs' directories under `out_dir`.
pub fn render_report(out_dir: &Path, runs: &[LoadedRun], results: &Results) -> Result<PathBuf> {
    let stories = scenario_stories(runs);
    let html = render_html(out_dir, runs, results, &stories)?;
    let path = out_dir.join(INDEX_HTML);
    write_atomically(&path, html.as_bytes())?;
    Ok(path)
}

/// Stories by scenario id, from the runs' records (each record carries its scenario's story,
/// so a report rebuilt from raw files alone still tells it).
pub fn scenario_stories(runs: &[LoadedRun]) -> BTreeMap<String, Story> {
    let mut stories = BTreeMap::new();
    for run in runs {
        stories
            .entry(run.record.scenario.clone())
            .or_insert_with(|| Story::from_markdown(&run.record.story));
    }
    stories
}

/// The page as a string: `runs` summarised in `results`, with `stories` by scenario id.
/// `out_dir` is where the runs' directories are (for console logs).
pub fn render_html(
    out_dir: &Path,
    runs: &[LoadedRun],
    results: &Results,
    stories: &BTreeMap<String, Story>,
) -> Result<String> {
    let context = report_context(out_dir, runs, results, stories)?;
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_template(TEMPLATE_NAME, TEMPLATE)
        .context("parsing the report template")?;
    let template = env.get_template(TEMPLATE_NAME)?;
    template
        .render(&context)
        .context("rendering the report template")
}

/// Everything the template shows.
#[derive(Debug, Serialize)]
struct ReportContext {
    lab: String,
    generated_at: String,
    rsslab_version: String,
    run_count: usize,
    scenario_count: usize,
    outcome_counts: Vec<OutcomeCount>,
    accels: Vec<AccelCount>,
    tcg: bool,
    retried: usize,
    kernels: Vec<String>,
    matrix: Vec<MatrixRow>,
    scenarios: Vec<ScenarioSection>,
    provenance: ProvenanceSection,
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

/// One row of the matrix: a scenario's variant across kernels.
#[derive(Debug, Serialize)]
struct MatrixRow {
    scenario: String,
    scenario_anchor: String,
    /// Rows of the same scenario follow each other; the first spans them.
    first: bool,
    scenario_rows: usize,
    variant_label: String,
    /// One cell per kernel of [`ReportContext::kernels`]; a cell may hold several runs
    /// (merged shards) or none.
    cells: Vec<Vec<MatrixCell>>,
}

#[derive(Debug, Serialize)]
struct MatrixCell {
    anchor: String,
    outcome: String,
    class: &'static str,
    processes: Vec<ProcessNumbers>,
    expectations_passed: usize,
    expectations_failed: usize,
}

/// A process's key numbers, in the matrix and the processes table.
#[derive(Debug, Serialize)]
struct ProcessNumbers {
    name: String,
    workload: String,
    /// Run with MADV_FREE refused (seccomp), emulating kernels before 4.5.
    no_madv_free: bool,
    outcome: String,
    class: &'static str,
    started: String,
    ended: String,
    /// MiB, formatted; `—` when never sampled.
    peak_rss: String,
    end_rss: String,
    max_lazyfree: String,
    peak_vsz: String,
    peak_anon: String,
    peak_swap: String,
}

#[derive(Debug, Serialize)]
struct ScenarioSection {
    id: String,
    anchor: String,
    title: String,
    story: Story,
    runs: Vec<RunSection>,
}

#[derive(Debug, Serialize)]
struct RunSection {
    anchor: String,
    kernel: String,
    kernel_release: Option<String>,
    variant_label: String,
    variant: Vec<KeyValue>,
    outcome: String,
    class: &'static str,
    reason: Option<String>,
    accel: String,
    attempts: u32,
    started_at: String,
    wall: String,
    boot: Option<String>,
    features: Vec<KeyValue>,
    image_digest: String,
    sample_count: usize,
    /// The chart's SVG (made by plotters, which escapes its text); `None` without samples.
    chart: Option<String>,
    phases: PhaseTable,
    processes: Vec<ProcessNumbers>,
    cgroup: Option<CgroupSummary>,
    failed_setup: Vec<SetupRow>,
    oom_kills: Vec<String>,
    logs: Vec<LogRow>,
    logs_omitted: usize,
    expectations: Vec<ExpectationResult>,
    links: RunLinks,
    console_tail: Option<ConsoleTail>,
}

#[derive(Debug, Serialize)]
struct KeyValue {
    key: String,
    value: String,
}

#[derive(Debug, Serialize)]
struct CgroupSummary {
    version: u8,
    limit: String,
    peak_usage: String,
    peak_working_set: String,
}

#[derive(Debug, Serialize)]
struct SetupRow {
    t: String,
    step: String,
    detail: String,
}

#[derive(Debug, Serialize)]
struct LogRow {
    t: String,
    process: String,
    message: String,
}

/// Relative links to the run's raw files, percent-encoded.
#[derive(Debug, Serialize)]
struct RunLinks {
    dir: String,
    run_json: String,
    samples: String,
    console: String,
}

#[derive(Debug, Serialize)]
struct ConsoleTail {
    /// The last lines, control characters removed.
    text: String,
    shown: usize,
    total: usize,
}

#[derive(Debug, Serialize)]
struct ProvenanceSection {
    kernels: Vec<KernelProvenance>,
    qemu_versions: Vec<String>,
    hosts: Vec<String>,
    rsslab: Vec<String>,
    scenarios: Vec<ScenarioProvenance>,
}

#[derive(Debug, Serialize)]
struct KernelProvenance {
    kernel: String,
    releases: Vec<String>,
    packages: Vec<PackageProvenance>,
}

#[derive(Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
struct ScenarioProvenance {
    id: String,
    path: String,
    sha256: String,
}

fn report_context(
    out_dir: &Path,
    runs: &[LoadedRun],
    results: &Results,
    stories: &BTreeMap<String, Story>,
) -> Result<ReportContext> {
    let by_dir: HashMap<&str, &LoadedRun> = runs
        .iter()
        .map(|run| (run.record.dir.as_str(), run))
        .collect();
    let mut anchors = Anchors::default();
    let run_anchors: Vec<String> = results
        .runs
        .iter()
        .map(|run| anchors.unique(&format!("run-{}", run_slug(run))))
        .collect();

    let mut kernels: Vec<String> = results.runs.iter().map(|run| run.kernel.clone()).collect();
    kernels.sort_by(|a, b| compare_kernels(a, b));
    kernels.dedup();

    // Scenarios in results order (sorted by id), each with its runs.
    let mut scenario_ids: Vec<&str> = results
        .runs
        .iter()
        .map(|run| run.scenario.as_str())
        .collect();
    scenario_ids.dedup();
    let scenario_anchors: BTreeMap<&str, String> = scenario_ids
        .iter()
        .map(|id| (*id, anchors.unique(&format!("scenario-{}", slug(id)))))
        .collect();

    let mut matrix = Vec::new();
    let mut scenarios = Vec::new();
    for id in &scenario_ids {
        let indices: Vec<usize> = (0..results.runs.len())
            .filter(|&i| results.runs[i].scenario == *id)
            .collect();
        let loaded: Vec<&LoadedRun> = indices
            .iter()
            .filter_map(|&i| by_dir.get(results.runs[i].dir.as_str()).copied())
            .collect();
        let axes = Axes::fitting(loaded.iter().copied());

        let mut variants: Vec<&str> = indices
            .iter()
            .map(|&i| results.runs[i].variant_label.as_str())
            .collect();
        variants.sort();
        variants.dedup();
        for (row, variant) in variants.iter().enumerate() {
            let cells = kernels
                .iter()
                .map(|kernel| {
                    indices
                        .iter()
                        .filter(|&&i| {
                            let run = &results.runs[i];
                            run.kernel == *kernel && run.variant_label == *variant
                        })
                        .map(|&i| {
                            let result = &results.runs[i];
                            let run = by_dir.get(result.dir.as_str()).copied();
                            MatrixCell {
                                anchor: run_anchors[i].clone(),
                                outcome: result.outcome.to_string(),
                                class: run_class(result.outcome),
                                processes: process_numbers(result, run),
                                expectations_passed: result
                                    .expectations
                                    .iter()
                                    .filter(|e| e.passed)
                                    .count(),
                                expectations_failed: result
                                    .expectations
                                    .iter()
                                    .filter(|e| !e.passed)
                                    .count(),
                            }
                        })
                        .collect()
                })
                .collect();
            matrix.push(MatrixRow {
                scenario: (*id).to_owned(),
                scenario_anchor: scenario_anchors[id].clone(),
                first: row == 0,
                scenario_rows: variants.len(),
                variant_label: (*variant).to_owned(),
                cells,
            });
        }

        let mut sections = Vec::new();
        for &i in &indices {
            let result = &results.runs[i];
            let run = by_dir.get(result.dir.as_str()).copied();
            sections.push(run_section(
                out_dir,
                result,
                run,
                &axes,
                run_anchors[i].clone(),
            )?);
        }
        let title = indices
            .iter()
            .map(|&i| &results.runs[i].title)
            .find(|title| !title.is_empty())
            .cloned()
            .unwrap_or_default();
        scenarios.push(ScenarioSection {
            id: (*id).to_owned(),
            anchor: scenario_anchors[id].clone(),
            title,
            story: stories.get(*id).cloned().unwrap_or_default(),
            runs: sections,
        });
    }

    let outcome_counts = [
        RunOutcome::Ok,
        RunOutcome::Unsupported,
        RunOutcome::KernelPanic,
        RunOutcome::VmTimeout,
        RunOutcome::InfraError,
    ]
    .into_iter()
    .map(|outcome| {
        (
            outcome,
            results
                .runs
                .iter()
                .filter(|run| run.outcome == outcome)
                .count(),
        )
    })
    .filter(|&(_, count)| count > 0);
    let mut accels: BTreeMap<String, usize> = BTreeMap::new();
    for run in &results.runs {
        *accels.entry(run.accel.clone()).or_default() += 1;
    }
    Ok(ReportContext {
        lab: out_dir
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default(),
        generated_at: results.generated_at.clone(),
        rsslab_version: results.rsslab_version.clone(),
        run_count: results.runs.len(),
        scenario_count: scenario_ids.len(),
        outcome_counts: outcome_counts
            .map(|(outcome, count)| OutcomeCount {
                outcome: outcome.to_string(),
                class: run_class(outcome),
                count,
            })
            .collect(),
        tcg: accels.contains_key("tcg"),
        accels: accels
            .into_iter()
            .map(|(accel, count)| AccelCount {
                accel: accel.to_uppercase(),
                count,
            })
            .collect(),
        retried: results.runs.iter().filter(|run| run.attempts > 1).count(),
        kernels,
        matrix,
        scenarios,
        provenance: provenance(runs),
    })
}

fn run_section(
    out_dir: &Path,
    result: &RunResult,
    run: Option<&LoadedRun>,
    axes: &Axes,
    anchor: String,
) -> Result<RunSection> {
    let record = run.map(|run| &run.record);
    let has_samples = run.is_some_and(|run| !run.samples.is_empty());
    let chart = match run {
        Some(run) if has_samples => {
            let svg = run_chart(run, axes)
                .with_context(|| format!("drawing the chart of {}", result.dir))?;
            // Inline SVG in HTML needs no namespace; leaving it out keeps the page free of URLs.
            Some(svg.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1))
        }
        _ => None,
    };
    let phases = match run {
        Some(run) => phase_table(run, &process_names(run)),
        None => PhaseTable {
            groups: Vec::new(),
            rows: Vec::new(),
        },
    };
    let events = record
        .map(|record| record.events.as_slice())
        .unwrap_or_default();
    let failed_setup = events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::Setup {
                step,
                ok: false,
                detail,
            } => Some(SetupRow {
                t: format!("{:.1}", seconds(event.t_ms)),
                step: step.clone(),
                detail: detail.clone(),
            }),
            _ => None,
        })
        .collect();
    let oom_kills = events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::OomKill { pid, task } => {
                Some(format!("{:.1} s: {task} (pid {pid})", seconds(event.t_ms)))
            }
            _ => None,
        })
        .collect();
    let all_logs: Vec<LogRow> = events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::Log { message } => Some(LogRow {
                t: format!("{:.1}", seconds(event.t_ms)),
                process: event.process.clone().unwrap_or_else(|| "agent".into()),
                message: clean_line(message),
            }),
            _ => None,
        })
        .collect();
    let logs_omitted = all_logs.len().saturating_sub(LOG_LINES);
    let logs = all_logs.into_iter().take(LOG_LINES).collect();

    let cgroup = record
        .and_then(|record| record.spec.cgroup.as_ref())
        .map(|spec| CgroupSummary {
            version: spec.version,
            limit: spec
                .memory_max
                .map_or_else(|| "none".into(), |max| max.to_string()),
            peak_usage: mib_or_dash(result.cgroup_peak.get("usage").copied()),
            peak_working_set: mib_or_dash(result.cgroup_peak.get("working_set").copied()),
        });
    let console_tail = if result.outcome == RunOutcome::Ok {
        None
    } else {
        console_tail(out_dir, &result.dir)
    };
    Ok(RunSection {
        anchor,
        kernel: result.kernel.clone(),
        kernel_release: result.kernel_release.clone(),
        variant_label: result.variant_label.clone(),
        variant: result
            .variant
            .iter()
            .map(|(key, value)| KeyValue {
                key: key.clone(),
                value: value.clone(),
            })
            .collect(),
        outcome: result.outcome.to_string(),
        class: run_class(result.outcome),
        reason: result.reason.clone(),
        accel: result.accel.to_uppercase(),
        attempts: result.attempts,
        started_at: record
            .map(|record| record.timing.started_at.clone())
            .unwrap_or_default(),
        wall: format_ms(result.wall_ms),
        boot: result.boot_to_first_sample_ms.map(format_ms),
        features: record
            .and_then(|record| record.hello.as_ref())
            .map(|hello| {
                hello
                    .features
                    .iter()
                    .map(|(key, value)| KeyValue {
                        key: key.clone(),
                        value: value.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        image_digest: record
            .map(|record| record.provenance.image_digest.clone())
            .unwrap_or_default(),
        sample_count: run.map_or(0, |run| run.samples.len()),
        chart,
        phases,
        processes: process_numbers(result, run),
        cgroup,
        failed_setup,
        oom_kills,
        logs,
        logs_omitted,
        expectations: result.expectations.clone(),
        links: RunLinks {
            dir: encode_path(&result.dir) + "/",
            run_json: encode_path(&format!("{}/{RUN_JSON}", result.dir)),
            samples: encode_path(&format!("{}/{SAMPLES_JSONL}", result.dir)),
            console: encode_path(&format!("{}/{CONSOLE_LOG}", result.dir)),
        },
        console_tail,
    })
}

/// Key numbers of each process: the result's peaks, and from the samples RSS at the end and
/// the largest lazyfree.
fn process_numbers(result: &RunResult, run: Option<&LoadedRun>) -> Vec<ProcessNumbers> {
    let names: Vec<String> = match run {
        Some(run) => process_names(run)
            .into_iter()
            .filter(|name| result.processes.contains_key(name))
            .chain(result.processes.keys().cloned())
            .collect::<Vec<_>>(),
        None => result.processes.keys().cloned().collect(),
    };
    let mut seen = BTreeSet::new();
    names
        .into_iter()
        .filter(|name| seen.insert(name.clone()))
        .map(|name| {
            let summary = &result.processes[&name];
            let samples = run.map(|run| run.samples.as_slice()).unwrap_or_default();
            let sampled = |metric: &str| -> Vec<u64> {
                samples
                    .iter()
                    .filter_map(|sample| sample.process.get(&name)?.get(metric).copied())
                    .collect()
            };
            let end_rss = sampled("rss").last().copied();
            let max_lazyfree = sampled("lazyfree")
                .into_iter()
                .chain(summary.peak.get("lazyfree").copied())
                .max();
            let spec =
                run.and_then(|run| run.record.spec.processes.iter().find(|p| p.name == name));
            let workload = spec
                .map(|process| workload_text(&process.workload))
                .unwrap_or_default();
            ProcessNumbers {
                workload,
                no_madv_free: spec.is_some_and(|process| process.emulate_no_madv_free),
                outcome: summary.outcome.to_string(),
                class: process_class(&summary.outcome),
                started: summary
                    .started_ms
                    .map(|t| format!("{:.1}", seconds(t)))
                    .unwrap_or_default(),
                ended: summary
                    .ended_ms
                    .map(|t| format!("{:.1}", seconds(t)))
                    .unwrap_or_default(),
                peak_rss: mib_or_dash(summary.peak.get("rss").copied()),
                end_rss: mib_or_dash(end_rss),
                max_lazyfree: mib_or_dash(max_lazyfree),
                peak_vsz: mib_or_dash(summary.peak.get("vsz").copied()),
                peak_anon: mib_or_dash(summary.peak.get("rss_anon").copied()),
                peak_swap: mib_or_dash(summary.peak.get("swap").copied()),
                name,
            }
        })
        .collect()
}

fn workload_text(workload: &Workload) -> String {
    match workload {
        Workload::HeapChurn(args) => {
            let release = match args.release {
                Release::Free => "MADV_FREE",
                Release::Dontneed => "MADV_DONTNEED",
                Release::None => "no release",
            };
            format!("heap-churn {}, live {}, {release}", args.heap, args.live)
        }
        Workload::Balloon(args) => format!("balloon {} every {}", args.step, args.every),
        Workload::FileIo(args) => {
            let mode = match args.mode {
                ReadMode::Read => "read",
                ReadMode::Mmap => "mmap",
            };
            format!("file-io {} x {}, {mode}", args.files, args.file_size)
        }
        Workload::Hog(args) => format!("hog {}", args.size),
        Workload::VszStartup(args) => {
            let mapping = match args.mapping {
                Mapping::Private => "private",
                Mapping::Noreserve => "noreserve",
                Mapping::ReserveThenCommit => "reserve-then-commit",
            };
            format!("vsz-startup {} {mapping}", args.size)
        }
        Workload::GoHeapChurn(args) => {
            let free = if args.free_os_memory {
                ", FreeOSMemory"
            } else {
                ""
            };
            format!("go-heap-churn {}, live {}{free}", args.heap, args.live)
        }
    }
}

fn provenance(runs: &[LoadedRun]) -> ProvenanceSection {
    /// Per kernel id: the releases seen and the packages (name, version, sha256).
    type KernelFacts = (BTreeSet<String>, BTreeSet<(String, String, String)>);
    let mut kernels: BTreeMap<&str, KernelFacts> = BTreeMap::new();
    let mut qemu = BTreeSet::new();
    let mut hosts = BTreeSet::new();
    let mut rsslab = BTreeSet::new();
    let mut scenarios = BTreeSet::new();
    for run in runs {
        let record = &run.record;
        let entry = kernels.entry(record.kernel.as_str()).or_default();
        if let Some(release) = &record.kernel_release {
            entry.0.insert(release.clone());
        }
        for package in &record.provenance.kernel_packages {
            entry.1.insert((
                package.name.clone(),
                package.version.clone(),
                package.sha256.clone(),
            ));
        }
        let provenance = &record.provenance;
        if !provenance.qemu_version.is_empty() {
            qemu.insert(provenance.qemu_version.clone());
        }
        if !provenance.host.is_empty() {
            hosts.insert(provenance.host.clone());
        }
        rsslab.insert(match &provenance.git_revision {
            Some(revision) => format!("{} (git {revision})", provenance.rsslab_version),
            None => provenance.rsslab_version.clone(),
        });
        scenarios.insert(ScenarioProvenance {
            id: record.scenario.clone(),
            path: provenance.scenario_path.clone(),
            sha256: provenance.scenario_sha256.clone(),
        });
    }
    let mut kernels: Vec<KernelProvenance> = kernels
        .into_iter()
        .map(|(kernel, (releases, packages))| KernelProvenance {
            kernel: kernel.to_owned(),
            releases: releases.into_iter().collect(),
            packages: packages
                .into_iter()
                .map(|(name, version, sha256)| PackageProvenance {
                    name,
                    version,
                    sha256,
                })
                .collect(),
        })
        .collect();
    kernels.sort_by(|a, b| compare_kernels(&a.kernel, &b.kernel));
    ProvenanceSection {
        kernels,
        qemu_versions: qemu.into_iter().collect(),
        hosts: hosts.into_iter().collect(),
        rsslab: rsslab.into_iter().collect(),
        scenarios: scenarios.into_iter().collect(),
    }
}

/// The last [`CONSOLE_TAIL_LINES`] lines of a run's console log, if it can be read. Only
/// directories inside `out_dir` are read.
fn console_tail(out_dir: &Path, dir: &str) -> Option<ConsoleTail> {
    let relative = Path::new(dir);
    if !relative
        .components()
        .all(|part| matches!(part, Component::Normal(_)))
    {
        return None;
    }
    let bytes = fs::read(out_dir.join(relative).join(CONSOLE_LOG)).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    let shown = lines.len().min(CONSOLE_TAIL_LINES);
    let tail: Vec<String> = lines[lines.len() - shown..]
        .iter()
        .map(|line| clean_line(line))
        .collect();
    Some(ConsoleTail {
        text: tail.join("\n"),
        shown,
        total: lines.len(),
    })
}

/// A log line fit for a page: ANSI escape sequences and control characters removed, at most
/// 500 characters.
fn clean_line(line: &str) -> String {
    let mut clean = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte.
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else if c == '\t' {
            clean.push_str("    ");
        } else if !c.is_control() {
            clean.push(c);
        }
    }
    plot::truncate(&clean, 500)
}

/// A relative path for an `href`: every byte outside a small safe set percent-encoded (so
/// no scheme such as `javascript:` can appear).
fn encode_path(path: &str) -> String {
    let mut encoded = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/=+,".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Makes ids unique within the page.
#[derive(Default)]
struct Anchors {
    used: BTreeSet<String>,
}

impl Anchors {
    fn unique(&mut self, wanted: &str) -> String {
        let mut candidate = wanted.to_owned();
        let mut n = 2;
        while !self.used.insert(candidate.clone()) {
            candidate = format!("{wanted}-{n}");
            n += 1;
        }
        candidate
    }
}

/// `[a-z0-9-]` only, for ids.
fn slug(text: &str) -> String {
    let mut slug = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '.' {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_matches('-').replace('.', "_")
}

fn run_slug(run: &RunResult) -> String {
    let variant = if run.variant_label.is_empty() {
        String::new()
    } else {
        format!("-{}", run.variant_label)
    };
    slug(&format!("{}-{}{variant}", run.scenario, run.kernel))
}

fn run_class(outcome: RunOutcome) -> &'static str {
    match outcome {
        RunOutcome::Ok => "ok",
        RunOutcome::Unsupported => "skip",
        RunOutcome::KernelPanic | RunOutcome::VmTimeout | RunOutcome::InfraError => "bad",
    }
}

fn process_class(outcome: &ProcessOutcome) -> &'static str {
    match outcome {
        ProcessOutcome::RunningAtEnd | ProcessOutcome::Exited(0) => "ok",
        ProcessOutcome::NotStarted => "skip",
        ProcessOutcome::Exited(_) => "warn",
        ProcessOutcome::Killed(_) | ProcessOutcome::OomKilled | ProcessOutcome::EnomemAtStart => {
            "bad"
        }
    }
}

fn mib_or_dash(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "—".to_owned(), format_mib)
}

/// `850 ms`, `41.3 s`, `3 min 05 s`.
fn format_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", seconds(ms))
    } else {
        format!("{} min {:02} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

#[cfg(test)]
mod tests;
