//! What each figure draws, read once per run from its samples: [`RunSeries`], in MiB over
//! seconds, and [`decimate`], which keeps a series to a few points per pixel column.

use std::borrow::Cow;

use plotters::style::RGBColor;
use rsslab_wire::{Bytes, Sample};

use super::*;

/// A part of a process's RSS is drawn only when it reaches this share of the process's peak
/// RSS (and [`MIN_PART_MIB`]): a Go runtime's 2 MiB of shared pages are noise beside its heap.
pub(super) const MIN_PART_SHARE: f64 = 0.05;
pub(super) const MIN_PART_MIB: f64 = 1.0;

/// The series that tell a scenario's story across kernels, for its [`kernel_row`]s; decided
/// once per scenario from all its runs, so every panel draws the same things.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Focus {
    /// Some process of some run had lazily-freed memory (MADV_FREE): draw each lazyfree.
    pub lazyfree: bool,
    /// The scenario has a cgroup: draw its working set and `memory.max`.
    pub cgroup: bool,
    /// The scenario sets `vm.overcommit_memory`: draw Committed_AS and CommitLimit.
    pub overcommit: bool,
}

impl Focus {
    /// The focus of a scenario with `runs`. Each process's RSS is always drawn.
    pub fn of<'a>(runs: impl IntoIterator<Item = &'a LoadedRun>) -> Focus {
        let mut focus = Focus::default();
        for run in runs {
            let spec = &run.record.spec;
            focus.cgroup |= spec.cgroup.is_some();
            focus.overcommit |= spec.sysctl.contains_key("vm.overcommit_memory");
            focus.lazyfree |= run.samples.iter().any(|sample| {
                sample.process.values().any(|metrics| {
                    metrics
                        .get("lazyfree")
                        .is_some_and(|&b| Bytes(b).as_mib() >= MIN_PART_MIB)
                })
            });
        }
        focus
    }
}

/// Every series of one run, by figure.
#[derive(Debug, Clone, Default)]
pub struct RunSeries {
    /// [`process_chart`]: each process's RSS, its parts and lazyfree.
    pub process: Vec<Series>,
    /// [`system_chart`]: cgroup and guest.
    pub system: Vec<Series>,
    /// A [`kernel_row`] panel: what the scenario's [`Focus`] says.
    pub focus: Vec<Series>,
    /// [`pressure_chart`]: stall milliseconds per second.
    pub pressure: Vec<Series>,
    /// [`reclaim_chart`]: pages, faults and events per second.
    pub reclaim: Vec<Series>,
    /// [`pod_chart`]s: one per pod of the run's node, none without pods.
    pub pods: Vec<PodSeries>,
    /// The last sample's or event's time, in seconds.
    pub t_max_s: f64,
}

/// The process names of a run: the spec's order first, then any other sampled name.
pub fn process_names(run: &LoadedRun) -> Vec<String> {
    let mut names: Vec<String> = run
        .record
        .spec
        .processes
        .iter()
        .map(|process| process.name.clone())
        .collect();
    let mut others: Vec<String> = run
        .samples
        .iter()
        .flat_map(|sample| sample.process.keys())
        .chain(run.record.processes.keys())
        .filter(|name| !names.contains(name))
        .cloned()
        .collect();
    others.sort();
    others.dedup();
    names.extend(others);
    names
}

/// Reads every figure's series of `run`; `focus` is its scenario's.
pub fn run_series(run: &LoadedRun, focus: &Focus) -> RunSeries {
    let mut all = RunSeries {
        t_max_s: run
            .samples
            .iter()
            .map(|sample| sample.t_ms)
            .chain(run.record.events.iter().map(|event| event.t_ms))
            .max()
            .map_or(0.0, seconds),
        ..RunSeries::default()
    };
    (all.pressure, all.reclaim) = account_series(run);
    all.pods = pod_series(run);
    for (index, name) in process_names(run).iter().enumerate() {
        let colour = PROCESS_COLOURS[index % PROCESS_COLOURS.len()];
        let metric =
            |metric: &str| level(run, |sample| sample.process.get(name)?.get(metric).copied());
        let broken = |series: Series| broken_where_absent(run, name, series);
        let rss = metric("rss");
        let peak = rss.iter().map(|&(_, y)| y).fold(0.0, f64::max);
        let threshold = (peak * MIN_PART_SHARE).max(MIN_PART_MIB);
        let shown = |points: &[(f64, f64)]| points.iter().any(|&(_, y)| y >= threshold);
        let lazyfree = metric("lazyfree");
        if rss.is_empty() {
            // Never sampled (it failed to start, or started after the end): nothing to draw.
            continue;
        }
        all.focus.push(broken(line(
            format!("{name} rss"),
            colour,
            Stroke::Solid,
            2,
            rss.clone(),
        )));
        if focus.lazyfree && lazyfree.iter().any(|&(_, y)| y >= MIN_PART_MIB) {
            all.focus.push(broken(line(
                format!("{name} lazyfree"),
                colour,
                Stroke::Dashed,
                2,
                lazyfree.clone(),
            )));
        }
        all.process.push(broken(line(
            format!("{name} rss"),
            colour,
            Stroke::Solid,
            2,
            rss,
        )));
        for (part, stroke, width) in [
            ("rss_anon", Stroke::Solid, 1),
            ("rss_file", Stroke::Dotted, 2),
            ("rss_shmem", Stroke::DashDot, 1),
            ("anon_huge", Stroke::Dotted, 1),
        ] {
            let points = metric(part);
            if shown(&points) {
                let label = format!("{name} {part}");
                all.process
                    .push(broken(line(label, colour, stroke, width, points)));
            }
        }
        if shown(&lazyfree) {
            all.process.push(broken(line(
                format!("{name} lazyfree"),
                colour,
                Stroke::Dashed,
                2,
                lazyfree,
            )));
        }
    }

    let cgroup = |metric: &'static str| level(run, |sample| sample.cgroup.get(metric).copied());
    let guest = |metric: &'static str| level(run, |sample| sample.guest.get(metric).copied());
    let version = run.record.spec.cgroup.as_ref().map(|spec| spec.version);
    let limit_label = if version == Some(1) {
        "memory.limit_in_bytes"
    } else {
        "memory.max"
    };
    // A limit of "max" may be reported as a huge number: only a limit below the guest's memory
    // means anything on this axis.
    let mem_total = run
        .samples
        .iter()
        .filter_map(|sample| sample.guest.get("mem_total"))
        .max()
        .copied()
        .unwrap_or(1 << 40);
    let mut limit = level(run, |sample| {
        sample
            .cgroup
            .get("limit")
            .copied()
            .filter(|&limit| limit <= mem_total)
    });
    if limit.is_empty()
        && let Some(max) = run
            .record
            .spec
            .cgroup
            .as_ref()
            .and_then(|spec| spec.memory_max)
    {
        limit = constant(run, max.0);
    }
    let high = run
        .record
        .spec
        .cgroup
        .as_ref()
        .and_then(|spec| spec.memory_high)
        .map(|high| constant(run, high.0))
        .unwrap_or_default();
    let working_set = cgroup("working_set");
    let committed = guest("committed_as");
    let commit_limit = guest("commit_limit");
    let kubelet = {
        let reported = guest("kubelet_available");
        if reported.is_empty() {
            // The kubelet's view: capacity - working set, here of the run's cgroup.
            level(run, |sample| {
                Some(
                    sample
                        .guest
                        .get("mem_total")?
                        .saturating_sub(*sample.cgroup.get("working_set")?),
                )
            })
        } else {
            reported
        }
    };

    let push =
        |into: &mut Vec<Series>, label: &str, colour, stroke, width, points: Vec<(f64, f64)>| {
            if !points.is_empty() {
                into.push(line(label.to_owned(), colour, stroke, width, points));
            }
        };
    let system = &mut all.system;
    push(
        system,
        "cgroup usage",
        USAGE_COLOUR,
        Stroke::Solid,
        2,
        cgroup("usage"),
    );
    push(
        system,
        "cgroup working set",
        WORKING_SET_COLOUR,
        Stroke::Solid,
        2,
        working_set.clone(),
    );
    push(
        system,
        "cgroup file",
        FILE_COLOUR,
        Stroke::Solid,
        1,
        cgroup("file"),
    );
    push(
        system,
        "cgroup active_file",
        FILE_COLOUR,
        Stroke::Dashed,
        1,
        cgroup("active_file"),
    );
    push(
        system,
        limit_label,
        LIMIT_COLOUR,
        Stroke::Dashed,
        2,
        limit.clone(),
    );
    push(system, "memory.high", HIGH_COLOUR, Stroke::Dashed, 2, high);
    push(
        system,
        "guest MemAvailable",
        AVAILABLE_COLOUR,
        Stroke::Solid,
        2,
        guest("mem_available"),
    );
    push(
        system,
        "guest Cached",
        CACHED_COLOUR,
        Stroke::Dotted,
        2,
        guest("cached"),
    );
    push(
        system,
        "kubelet memory.available",
        KUBELET_COLOUR,
        Stroke::Dashed,
        1,
        kubelet,
    );
    if focus.overcommit {
        push(
            system,
            "Committed_AS",
            COMMITTED_COLOUR,
            Stroke::Solid,
            1,
            committed.clone(),
        );
        push(
            system,
            "CommitLimit",
            COMMIT_LIMIT_COLOUR,
            Stroke::Dashed,
            1,
            commit_limit.clone(),
        );
    }
    let panel = &mut all.focus;
    if focus.cgroup {
        push(
            panel,
            "cgroup working set",
            WORKING_SET_COLOUR,
            Stroke::Solid,
            2,
            working_set,
        );
        push(panel, limit_label, LIMIT_COLOUR, Stroke::Dashed, 1, limit);
    }
    if focus.overcommit {
        push(
            panel,
            "Committed_AS",
            COMMITTED_COLOUR,
            Stroke::Solid,
            1,
            committed,
        );
        push(
            panel,
            "CommitLimit",
            COMMIT_LIMIT_COLOUR,
            Stroke::Dashed,
            1,
            commit_limit,
        );
    }
    all
}

pub(super) fn line(
    label: String,
    colour: RGBColor,
    stroke: Stroke,
    width: u32,
    points: Vec<(f64, f64)>,
) -> Series {
    Series {
        label,
        colour,
        stroke,
        width,
        points,
        breaks: Vec::new(),
    }
}

/// `series` of process `name`, broken wherever a sample went without the process (between
/// the lives of a restarted container's process).
fn broken_where_absent(run: &LoadedRun, name: &str, mut series: Series) -> Series {
    let absent: Vec<f64> = run
        .samples
        .iter()
        .filter(|sample| !sample.process.contains_key(name))
        .map(|sample| seconds(sample.t_ms))
        .collect();
    series.breaks = (1..series.points.len())
        .filter(|&i| {
            let (from, to) = (series.points[i - 1].0, series.points[i].0);
            absent.iter().any(|&t| t > from && t < to)
        })
        .collect();
    series
}

/// (seconds, MiB) of every sample that has the value `pick` reads.
pub(super) fn level(run: &LoadedRun, pick: impl Fn(&Sample) -> Option<u64>) -> Vec<(f64, f64)> {
    run.samples
        .iter()
        .filter_map(|sample| Some((seconds(sample.t_ms), Bytes(pick(sample)?).as_mib())))
        .collect()
}

/// A level of `bytes` from the first sample to the last (a limit from the spec).
pub(super) fn constant(run: &LoadedRun, bytes: u64) -> Vec<(f64, f64)> {
    match (run.samples.first(), run.samples.last()) {
        (Some(first), Some(last)) => vec![
            (seconds(first.t_ms), Bytes(bytes).as_mib()),
            (seconds(last.t_ms), Bytes(bytes).as_mib()),
        ],
        _ => Vec::new(),
    }
}

/// `points` (sorted by time, from 0 to `t_max`) reduced to at most four per column of
/// `columns`: each column keeps its first, lowest, highest and last point, in time order, so
/// peaks, dips and the shape survive (the M4 method). Short series are returned as they are.
pub fn decimate(points: &[(f64, f64)], t_max: f64, columns: usize) -> Cow<'_, [(f64, f64)]> {
    let columns = columns.max(1);
    if points.len() <= 4 * columns || t_max <= 0.0 {
        return Cow::Borrowed(points);
    }
    let column_of = |t: f64| (((t / t_max) * columns as f64) as usize).min(columns - 1);
    let mut kept = Vec::with_capacity(4 * columns);
    let mut start = 0;
    while start < points.len() {
        let column = column_of(points[start].0);
        let mut end = start + 1;
        while end < points.len() && column_of(points[end].0) == column {
            end += 1;
        }
        let bucket = &points[start..end];
        let (mut low, mut high) = (0, 0);
        for (index, &(_, y)) in bucket.iter().enumerate() {
            if y < bucket[low].1 {
                low = index;
            }
            if y > bucket[high].1 {
                high = index;
            }
        }
        let mut picks = [0, low, high, bucket.len() - 1];
        picks.sort_unstable();
        let mut last = None;
        for pick in picks {
            if last != Some(pick) {
                kept.push(bucket[pick]);
                last = Some(pick);
            }
        }
        start = end;
    }
    Cow::Owned(kept)
}
