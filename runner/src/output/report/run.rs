//! One run's section of the page: its facts, expectations, charts, its pods as the kubelet
//! made them, the "at each phase" table, processes, cgroup, OOM kills, failed set-up steps,
//! log lines, the end of each process's output, console tail and raw files.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Component, Path};

use rsslab_wire::{EventKind, Mapping, ProcessOutcome, ReadMode, Release, RunOutcome, Workload};
use serde::Serialize;

use super::figures::RunCharts;
use super::phases::{PhaseTable, format_mib, phase_table};
use super::plot::{process_names, seconds};
use super::pods::{PodsSection, pods_section};
use super::{CONSOLE_TAIL_LINES, clean_line, encode_path, format_ms, mib_or_dash, run_class};
use crate::analysis::expectations::ExpectationResult;
use crate::analysis::results::RunResult;
use crate::records::{CONSOLE_LOG, LoadedRun, RUN_JSON, SAMPLES_JSONL, output_files};

/// Log events shown per run (the rest are in `run.json`).
const LOG_LINES: usize = 50;
/// Lines shown of the end of each process's stdout and stderr.
const OUTPUT_TAIL_LINES: usize = 20;

#[derive(Debug, Serialize)]
pub struct RunSection {
    pub anchor: String,
    pub kernel: String,
    pub kernel_release: Option<String>,
    pub variant_label: String,
    pub variant: Vec<KeyValue>,
    pub outcome: String,
    pub class: &'static str,
    pub reason: Option<String>,
    pub accel: String,
    pub attempts: u32,
    /// Which repetition of its combination (`--repeat`), 1-based.
    pub repeat: u32,
    pub started_at: String,
    pub wall: String,
    pub boot: Option<String>,
    pub features: Vec<KeyValue>,
    /// The kernel facts the run relied on that the guest probed otherwise, one sentence each
    /// (`catalogue says mglru_default = false, the guest read lru_gen/enabled = 0x0007`): the
    /// section's red banner.
    pub fact_mismatches: Vec<String>,
    pub image_digest: String,
    pub sample_count: usize,
    /// The charts' SVG (made by plotters, which escapes its text); `None` without samples.
    pub charts: Option<RunCharts>,
    pub phases: PhaseTable,
    pub processes: Vec<ProcessNumbers>,
    pub cgroup: Option<CgroupNumbers>,
    /// The pods as the kubelet's rules made them, when the run has pods.
    pub pods: Option<PodsSection>,
    pub failed_setup: Vec<SetupRow>,
    pub oom_kills: Vec<String>,
    pub logs: Vec<LogRow>,
    pub logs_omitted: usize,
    pub expectations: Vec<ExpectationResult>,
    pub links: RunLinks,
    pub console_tail: Option<ConsoleTail>,
    /// The end of what each process wrote (`<process>.stdout`, `<process>.stderr`).
    pub output_tails: Vec<OutputTail>,
}

#[derive(Debug, Serialize)]
pub struct OutputTail {
    pub process: String,
    pub stream: &'static str,
    pub link: String,
    pub tail: ConsoleTail,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

/// The pairs of a string map, in its order.
pub fn key_values(map: &BTreeMap<String, String>) -> Vec<KeyValue> {
    map.iter()
        .map(|(key, value)| KeyValue {
            key: key.clone(),
            value: value.clone(),
        })
        .collect()
}

/// A process's key numbers, in the matrix and the processes table.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessNumbers {
    pub name: String,
    pub workload: String,
    /// Run with MADV_FREE refused (seccomp), emulating kernels before 4.5.
    pub no_madv_free: bool,
    pub outcome: String,
    pub class: &'static str,
    pub started: String,
    pub ended: String,
    /// MiB, formatted; `—` when never sampled.
    pub peak_rss: String,
    pub end_rss: String,
    pub max_lazyfree: String,
    pub peak_vsz: String,
    pub peak_anon: String,
    pub peak_file: String,
    pub peak_swap: String,
}

/// A run's cgroup: its limits and peaks, in MiB.
#[derive(Debug, Clone, Serialize)]
pub struct CgroupNumbers {
    pub version: u8,
    /// `memory.max` (v1: `memory.limit_in_bytes`), or `none`.
    pub limit: String,
    /// `memory.high`, when set.
    pub high: Option<String>,
    pub peak_usage: String,
    pub peak_working_set: String,
    pub peak_file: String,
}

#[derive(Debug, Serialize)]
pub struct SetupRow {
    pub t: String,
    pub step: String,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct LogRow {
    pub t: String,
    pub process: String,
    pub message: String,
}

/// Relative links to the run's raw files, percent-encoded.
#[derive(Debug, Serialize)]
pub struct RunLinks {
    pub dir: String,
    pub run_json: String,
    pub samples: String,
    pub console: String,
}

#[derive(Debug, Serialize)]
pub struct ConsoleTail {
    /// The last lines, control characters removed.
    pub text: String,
    pub shown: usize,
    pub total: usize,
}

/// The section of the run summarised in `result`, with its raw records `run` (when loaded),
/// its `charts`, and its console log read from `out_dir` when it did not end `ok`.
pub fn run_section(
    out_dir: &Path,
    result: &RunResult,
    run: Option<&LoadedRun>,
    charts: Option<RunCharts>,
    anchor: String,
) -> RunSection {
    let record = run.map(|run| &run.record);
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
    let console_tail = if result.outcome == RunOutcome::Ok {
        None
    } else {
        file_tail(out_dir, &result.dir, CONSOLE_LOG, CONSOLE_TAIL_LINES)
    };
    let output_tails = output_tails(out_dir, result, record);
    RunSection {
        anchor,
        kernel: result.kernel.clone(),
        kernel_release: result.kernel_release.clone(),
        variant_label: result.variant_label.clone(),
        variant: key_values(&result.variant),
        outcome: result.outcome.to_string(),
        class: run_class(result.outcome),
        reason: result.reason.clone(),
        accel: result.accel.to_uppercase(),
        attempts: result.attempts,
        repeat: result.repeat,
        started_at: record
            .map(|record| record.timing.started_at.clone())
            .unwrap_or_default(),
        wall: format_ms(result.wall_ms),
        boot: result.boot_to_first_sample_ms.map(|ms| {
            let came_up = match record.and_then(|record| record.timing.boot) {
                Some(crate::vm::BootKind::Restored) => " (restored from a snapshot)",
                Some(crate::vm::BootKind::Saved) => " (booted, snapshot saved)",
                Some(crate::vm::BootKind::Cold) => " (booted)",
                None => "",
            };
            format!("{}{came_up}", format_ms(ms))
        }),
        features: record
            .and_then(|record| record.hello.as_ref())
            .map(|hello| key_values(&hello.features))
            .unwrap_or_default(),
        fact_mismatches: result
            .fact_mismatches
            .iter()
            .map(ToString::to_string)
            .collect(),
        image_digest: record
            .map(|record| record.provenance.image_digest.clone())
            .unwrap_or_default(),
        sample_count: run.map_or(0, |run| run.samples.len()),
        charts,
        phases,
        processes: process_numbers(result, run),
        cgroup: cgroup_numbers(result, run),
        pods: run.and_then(pods_section),
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
        output_tails,
    }
}

/// The cgroup's limits (from the spec) and peaks (from the result), when the run had one.
pub fn cgroup_numbers(result: &RunResult, run: Option<&LoadedRun>) -> Option<CgroupNumbers> {
    let spec = run?.record.spec.cgroup.as_ref()?;
    Some(CgroupNumbers {
        version: spec.version,
        limit: spec
            .memory_max
            .map_or_else(|| "none".into(), |max| format_mib(max.0)),
        high: spec.memory_high.map(|high| format_mib(high.0)),
        peak_usage: mib_or_dash(result.cgroup_peak.get("usage").copied()),
        peak_working_set: mib_or_dash(result.cgroup_peak.get("working_set").copied()),
        peak_file: mib_or_dash(result.cgroup_peak.get("file").copied()),
    })
}

/// Key numbers of each process: the result's peaks, and from the samples RSS at the end and
/// the largest lazyfree.
pub fn process_numbers(result: &RunResult, run: Option<&LoadedRun>) -> Vec<ProcessNumbers> {
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
            let sampled = |metric: &'static str| {
                samples
                    .iter()
                    .filter_map(|sample| sample.process.get(&name)?.get(metric).copied())
            };
            let end_rss = sampled("rss").next_back();
            let max_lazyfree = sampled("lazyfree")
                .chain(summary.peak.get("lazyfree").copied())
                .max();
            let spec =
                run.and_then(|run| run.record.spec.processes.iter().find(|p| p.name == name));
            let workload = spec
                .map(|process| workload_text(&process.workload))
                .unwrap_or_default();
            let peak = |metric: &str| mib_or_dash(summary.peak.get(metric).copied());
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
                peak_rss: peak("rss"),
                end_rss: mib_or_dash(end_rss),
                max_lazyfree: mib_or_dash(max_lazyfree),
                peak_vsz: peak("vsz"),
                peak_anon: peak("rss_anon"),
                peak_file: peak("rss_file"),
                peak_swap: peak("swap"),
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
        Workload::Exec(args) => format!("exec {}", args.command.join(" ")),
        Workload::GoSource(args) => {
            let flags = args.build_flags.join(" ");
            let built = if flags.is_empty() {
                String::new()
            } else {
                format!(" built with {flags}")
            };
            format!(
                "go-source {}{built} {}",
                args.program_name(),
                args.args.join(" ")
            )
            .trim_end()
            .to_owned()
        }
    }
}

pub fn process_class(outcome: &ProcessOutcome) -> &'static str {
    match outcome {
        ProcessOutcome::RunningAtEnd | ProcessOutcome::Exited(0) => "ok",
        ProcessOutcome::NotStarted => "skip",
        ProcessOutcome::Exited(_) => "warn",
        ProcessOutcome::Killed(_) | ProcessOutcome::OomKilled | ProcessOutcome::EnomemAtStart => {
            "bad"
        }
    }
}

/// The last [`CONSOLE_TAIL_LINES`] lines of a run's console log, if it can be read. Only
/// directories inside `out_dir` are read.
/// The tails of the processes' output files that are there, in process order.
fn output_tails(
    out_dir: &Path,
    result: &RunResult,
    record: Option<&crate::records::RunRecord>,
) -> Vec<OutputTail> {
    let Some(record) = record else {
        return Vec::new();
    };
    output_files(&record.spec)
        .into_iter()
        .filter_map(|(process, stream, name)| {
            let tail = file_tail(out_dir, &result.dir, &name, OUTPUT_TAIL_LINES)?;
            Some(OutputTail {
                process: process.to_owned(),
                stream: stream.as_str(),
                link: encode_path(&format!("{}/{name}", result.dir)),
                tail,
            })
        })
        .collect()
}

/// The last `max_lines` of the file `name` in the run directory `dir`, control characters
/// removed; `None` when there is no such file (or `dir` leaves the output directory).
fn file_tail(out_dir: &Path, dir: &str, name: &str, max_lines: usize) -> Option<ConsoleTail> {
    let relative = Path::new(dir);
    if !relative
        .components()
        .all(|part| matches!(part, Component::Normal(_)))
    {
        return None;
    }
    let bytes = fs::read(out_dir.join(relative).join(name)).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    let shown = lines.len().min(max_lines);
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
