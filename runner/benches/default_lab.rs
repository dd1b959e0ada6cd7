//! `just bench-lab`: how fast the default lab is, as Markdown (numbers, not pass/fail).
//!
//! Runs `rsslab run scenarios` (the release binary, its default `--jobs`) into a temporary
//! directory, or reads a lab that already ran (`-- DIR`), and prints:
//!
//! - wall time of the lab, the sum of its VMs' wall times (VM-seconds) and runs per minute;
//! - the host CPU the lab used (the runner and every QEMU it waited for: `getrusage` of the
//!   children) as a share of the host's cores over the wall time (only when it ran the lab);
//! - per kernel and way the guest came up (booted cold, booted and saved its snapshot,
//!   restored from one): the median, lowest and highest boot-to-first-sample;
//! - per scenario: VM-seconds per run and the share of each run's sampling after its last
//!   informative event (a process starting, a phase, an OOM kill, a process ending by itself;
//!   not the `running-at-end` endings the run's own end makes), i.e. what a shorter run
//!   could still save.
//!
//! `RSSLAB_BENCH_OUT=DIR` keeps the lab in DIR; extra arguments after `--` other than a
//! directory go to `rsslab run` (e.g. `--jobs 3`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use rsslab::records::{LoadedRun, load_all};
use rsslab_wire::{EventKind, ProcessOutcome};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| arg != "--bench")
        .collect();
    let existing = args.iter().map(PathBuf::from).find(|path| path.is_dir());
    let (dir, measured, _temporary) = match existing {
        Some(dir) => (dir, None, None),
        None => {
            let temporary = tempfile::tempdir()?;
            let dir = match std::env::var_os("RSSLAB_BENCH_OUT") {
                Some(out) => PathBuf::from(out),
                None => temporary.path().join("lab"),
            };
            let measured = run_default_lab(&dir, &args)?;
            (dir, Some(measured), Some(temporary))
        }
    };
    let runs = load_all(&dir).with_context(|| format!("reading the lab in {}", dir.display()))?;
    ensure!(!runs.is_empty(), "no runs in {}", dir.display());
    print!("{}", report(&runs, measured.as_ref()));
    Ok(())
}

/// What the bench measured around the lab it ran.
struct LabMeasurement {
    wall_s: f64,
    cpu_s: f64,
    cores: usize,
}

fn run_default_lab(out: &std::path::Path, extra: &[String]) -> Result<LabMeasurement> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_rsslab"))
        .current_dir(&root)
        .arg("run")
        .arg("scenarios")
        .arg("--out")
        .arg(out)
        .args(extra)
        .status()
        .context("starting rsslab run")?;
    let wall_s = started.elapsed().as_secs_f64();
    eprintln!("rsslab run ended: {status}");
    Ok(LabMeasurement {
        wall_s,
        cpu_s: children_cpu_seconds(),
        cores: std::thread::available_parallelism().map_or(1, usize::from),
    })
}

/// User + system CPU time of every child (and their children) this process has waited for.
fn children_cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given and cannot fail for RUSAGE_CHILDREN.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// The run's sampling span and how much of it came after its last informative event, in ms.
fn tail_after_story(run: &LoadedRun) -> Option<(u64, u64)> {
    let events = &run.record.events;
    let end = run
        .samples
        .last()
        .map(|sample| sample.t_ms)
        .into_iter()
        .chain(events.iter().map(|event| event.t_ms))
        .max()?;
    let last_informative = events
        .iter()
        .filter(|event| match &event.kind {
            EventKind::Started { .. }
            | EventKind::Phase { .. }
            | EventKind::OomKill { .. }
            | EventKind::ContainerTerminated { .. }
            | EventKind::ContainerBackOff { .. }
            | EventKind::ContainerRestarted { .. } => true,
            EventKind::Ended { outcome } => *outcome != ProcessOutcome::RunningAtEnd,
            EventKind::Setup { .. } | EventKind::Log { .. } | EventKind::Kubelet { .. } => false,
        })
        .map(|event| event.t_ms)
        .max()?;
    Some((end, end.saturating_sub(last_informative)))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

fn report(runs: &[LoadedRun], measured: Option<&LabMeasurement>) -> String {
    let vm_seconds: f64 = runs
        .iter()
        .map(|run| run.record.timing.wall_ms as f64 / 1000.0)
        .sum();
    let mut out = String::from("### The default lab\n\n| figure | value |\n|---|---|\n");
    out += &format!("| runs | {} |\n", runs.len());
    out += &format!("| VM-seconds | {vm_seconds:.0} |\n");
    if let Some(lab) = measured {
        out += &format!("| wall time | {:.0} s |\n", lab.wall_s);
        out += &format!(
            "| runs per minute | {:.1} |\n",
            runs.len() as f64 / (lab.wall_s / 60.0)
        );
        out += &format!(
            "| host CPU | {:.0} s, {:.0} % of {} cores |\n",
            lab.cpu_s,
            100.0 * lab.cpu_s / (lab.wall_s * lab.cores as f64),
            lab.cores
        );
    }

    let mut boots: BTreeMap<(&str, &str), Vec<f64>> = BTreeMap::new();
    for run in runs {
        if let Some(ms) = run.record.timing.boot_to_first_sample_ms {
            let came_up = run.record.timing.boot.map_or("cold", |boot| boot.as_str());
            boots
                .entry((&run.record.kernel, came_up))
                .or_default()
                .push(ms as f64 / 1000.0);
        }
    }
    out += "\n| kernel | guest | runs | boot to first sample, median | lowest | highest |\n|---|---|---|---|---|---|\n";
    for ((kernel, came_up), seconds) in &mut boots {
        let lowest = seconds.iter().copied().fold(f64::INFINITY, f64::min);
        let highest = seconds.iter().copied().fold(0.0, f64::max);
        out += &format!(
            "| {kernel} | {came_up} | {} | {:.1} s | {lowest:.1} s | {highest:.1} s |\n",
            seconds.len(),
            median(seconds)
        );
    }

    let mut scenarios: BTreeMap<&str, (usize, f64, u64, u64)> = BTreeMap::new();
    for run in runs {
        let entry = scenarios.entry(&run.record.scenario).or_default();
        entry.0 += 1;
        entry.1 += run.record.timing.wall_ms as f64 / 1000.0;
        if let Some((span, tail)) = tail_after_story(run) {
            entry.2 += span;
            entry.3 += tail;
        }
    }
    out += "\n| scenario | runs | VM-s per run | sampling after the last informative event |\n|---|---|---|---|\n";
    let (mut span_total, mut tail_total) = (0, 0);
    for (scenario, (count, seconds, span, tail)) in &scenarios {
        span_total += span;
        tail_total += tail;
        out += &format!(
            "| {scenario} | {count} | {:.1} | {:.0} % |\n",
            seconds / *count as f64,
            percent(*tail, *span)
        );
    }
    out += &format!(
        "| all | {} | {:.1} | {:.0} % |\n",
        runs.len(),
        vm_seconds / runs.len() as f64,
        percent(tail_total, span_total)
    );
    out
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}
