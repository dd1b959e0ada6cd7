//! The lab: the stages from scenarios to report, driven top to bottom by [`run_lab`].
//!
//! Raw records come first: each run writes `run.json`, `samples.jsonl` and `console.log` as it
//! ends, so a failed or interrupted lab keeps every finished run; the summary outputs
//! (`results.json`, `index.html`, `junit.xml`, `summary.md`) are then rebuilt from those files
//! by [`write_outputs`], the same function `rsslab report DIR` and `rsslab merge` call.
//!
//! Beside [`run_lab`] (`rsslab run`): [`execute`] runs a plan's VMs and writes their records,
//! showing [`progress`]; [`resume`] finishes a lab that did not finish; [`merge`] joins the
//! shards of one plan; [`images`] prepares kernels and images without running (`rsslab
//! images`); [`kernels`] resolves the kernels the catalogue does not pin (Debian versions,
//! files), [`listing`] lists the archive's kernels (`rsslab kernels`) and [`bisect`] finds the
//! first version whose verdict differs (`rsslab bisect`); [`doctor`] says what this host has and lacks.
//!
//! Before the first run a lab writes `lab.json` and a copy of each scenario, so that
//! `rsslab run --resume DIR` ([`resume`]) can finish it later. The runs themselves are
//! [`execute`]'s: when the lab is stopped (Ctrl-C, SIGTERM) or the output disk fills up, no
//! further run starts; a full disk ends the lab with exit code 3 and what to do next.

pub mod bisect;
pub mod doctor;
pub mod execute;
pub mod images;
pub mod kernels;
pub mod listing;
pub mod merge;
pub mod packing;
pub mod progress;
pub mod resume;

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result, anyhow};
use rsslab_wire::RunOutcome;

use self::execute::{LabContext, execute_plan, full_disk};
use self::resume::{LabFile, resume_plan};
use crate::analysis::diff::compare_with_baseline;
use crate::catalogue::Catalogue;
use crate::exit::Failure;
use crate::image::{GuestBinaries, build_image, empty_spec, locate_guest_binaries};
use crate::output::write_outputs;
use crate::plan::shard::{Shard, shard_plan};
use crate::plan::{Plan, RUNS_DIR, load_plan};
use crate::records::SCENARIO_TOML;
use crate::records::provenance;
use crate::supply::cache::Cache;
use crate::supply::kernel::KernelFiles;
use crate::supply::prepare_kernels;
use crate::vm::accel::{
    AccelChoice, AccelDecision, PROBE_TIMEOUT, choose_accel, host_boot_id, remembered_probe,
};
use crate::vm::fault::{FAULT_ENV, Faults};
use crate::vm::snapshot::BootChoice;
use crate::vm::{
    Accel, Launch, LineAction, QemuCommand, SnapshotStore, VmExit, qemu::qemu_binary, run_vm,
};

/// What `rsslab run` was asked to do.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// Scenario files or directories.
    pub inputs: Vec<PathBuf>,
    /// `--kernel`: catalogue ids keep only these of each scenario's kernels; Debian versions
    /// (`debian:6.18`) and kernel files are added to every scenario (empty: each scenario's own
    /// list).
    pub kernels: Vec<String>,
    /// `--modules`: the modules of the kernel files of `kernels`.
    pub modules: Option<PathBuf>,
    /// `--out`: the output directory (default `reports/<timestamp>`).
    pub out: Option<PathBuf>,
    /// `--jobs`: VMs at once (see [`packing`]).
    pub jobs: packing::Jobs,
    pub accel: AccelChoice,
    /// `--boot`: start VMs from snapshots of booted guests, or boot every one cold.
    pub boot: BootChoice,
    /// `--repeat`: runs of each scenario, kernel and variant (at least 1).
    pub repeat: u32,
    /// `--baseline`: a lab to compare this one with.
    pub baseline: Option<PathBuf>,
    /// `--shard I/N`: only this slice of the plan.
    pub shard: Option<Shard>,
    /// `--resume DIR`: finish the lab in DIR (inputs, kernels, out, repeat and shard come from
    /// there).
    pub resume: Option<PathBuf>,
}

/// What a finished lab produced.
#[derive(Debug, Clone)]
pub struct LabSummary {
    pub out_dir: PathBuf,
    /// `None` when there was nothing to run (a shard of a plan smaller than its shards).
    pub accel: Option<AccelDecision>,
    pub outcomes: BTreeMap<String, RunOutcome>,
    /// Expectations that failed, over every run of the output directory, one line each.
    pub failed_expectations: Vec<String>,
    /// Regressions against the baseline (0 without one).
    pub regressions: usize,
}

impl LabSummary {
    /// Runs that ended in an infrastructure outcome.
    pub fn infra_failures(&self) -> usize {
        self.outcomes
            .values()
            .filter(|outcome| outcome.is_infrastructure())
            .count()
    }
}

/// Where a lab writes, what it keeps and how it compares.
struct Destination {
    out_dir: PathBuf,
    /// `lab.json` to write before the first run (a new lab), `None` when resuming.
    lab_file: Option<LabFile>,
    /// Runs already finished (resuming): directory -> outcome.
    kept: BTreeMap<String, RunOutcome>,
    baseline: Option<PathBuf>,
    /// `--modules` of the lab's kernel files.
    modules: Option<PathBuf>,
}

/// The kernels a plan uses: the catalogue's in catalogue order, then the others (Debian
/// versions and files not resolved yet) in the plan's order.
fn plan_kernels(catalogue: &Catalogue, plan: &Plan) -> Vec<String> {
    let mut ids: Vec<String> = catalogue
        .ids()
        .into_iter()
        .filter(|id| plan.runs.iter().any(|run| &run.kernel == id))
        .collect();
    for run in &plan.runs {
        if !ids.contains(&run.kernel) {
            ids.push(run.kernel.clone());
        }
    }
    ids
}

/// Runs a lab: scenarios -> plan -> kernels and images -> VMs -> raw records -> outputs; with
/// `--resume`, the runs of an earlier lab that did not finish.
/// What the scenarios say that the lab does not use, in one line per file: `rsslab check`
/// names each.
fn warn_unused(plan: &Plan) {
    let mut files: Vec<(String, usize)> = Vec::new();
    for warning in &plan.warnings {
        let file = warning.file.display().to_string();
        match files.iter_mut().find(|(known, _)| *known == file) {
            Some((_, count)) => *count += 1,
            None => files.push((file, 1)),
        }
    }
    for (file, count) in files {
        let what = if count == 1 { "thing" } else { "things" };
        eprintln!(
            "rsslab: {file}: {count} {what} the lab does not use (`rsslab check` names them)"
        );
    }
}

pub fn run_lab(options: &LabOptions) -> Result<LabSummary, Failure> {
    let faults = Faults::from_env().map_err(Failure::bad_input)?;
    if let Some(baseline) = &options.baseline {
        check_lab_dir(baseline, "--baseline")?;
    }
    let (catalogue, plan, destination) = match &options.resume {
        Some(dir) => resumed_lab(dir, options)?,
        None => new_lab(options)?,
    };
    run_plan(catalogue, plan, destination, options, faults)
}

/// The plan of the scenarios given, repeated and sharded, into a new output directory.
fn new_lab(options: &LabOptions) -> Result<(Catalogue, Plan, Destination), Failure> {
    let (catalogue, plan) = load_plan(&options.inputs, &options.kernels)?;
    warn_unused(&plan);
    let plan = crate::plan::repeat(plan, options.repeat);
    let plan = match options.shard {
        Some(shard) => {
            let total = plan.runs.len();
            let plan = shard_plan(plan, shard);
            eprintln!(
                "rsslab: shard {shard}: {} of the plan's {total} runs",
                plan.runs.len()
            );
            plan
        }
        None => plan,
    };
    let lab_file = LabFile::new(
        &plan,
        &options.kernels,
        options.repeat,
        options.shard,
        options.baseline.as_deref(),
        options.modules.as_deref(),
    );
    let destination = Destination {
        out_dir: options.out.clone().unwrap_or_else(default_out_dir),
        lab_file: Some(lab_file),
        kept: BTreeMap::new(),
        baseline: options.baseline.clone(),
        modules: options.modules.clone(),
    };
    Ok((catalogue, plan, destination))
}

/// The runs of lab `dir` without a finished record, into `dir` ([`resume`]).
fn resumed_lab(
    dir: &Path,
    options: &LabOptions,
) -> Result<(Catalogue, Plan, Destination), Failure> {
    let resumed = resume_plan(dir)?;
    let lab_baseline = resumed.lab.baseline.clone().filter(|baseline| {
        let there = baseline.is_dir();
        if !there {
            eprintln!(
                "rsslab: the lab's baseline {} is gone: no comparison",
                baseline.display()
            );
        }
        there
    });
    let destination = Destination {
        out_dir: dir.to_owned(),
        lab_file: None,
        kept: resumed.kept,
        baseline: options.baseline.clone().or(lab_baseline),
        modules: resumed.lab.modules.clone(),
    };
    Ok((resumed.catalogue, resumed.plan, destination))
}

/// Runs `plan` into `destination`, then writes every output of the directory.
fn run_plan(
    catalogue: Catalogue,
    plan: Plan,
    destination: Destination,
    options: &LabOptions,
    faults: Faults,
) -> Result<LabSummary, Failure> {
    let out_dir = destination.out_dir.clone();
    let mut outcomes = destination.kept.clone();
    let mut accel = None;
    let mut disk_full = None;
    if plan.runs.is_empty() {
        let runs = out_dir.join(RUNS_DIR);
        fs::create_dir_all(&runs).with_context(|| format!("creating {}", runs.display()))?;
        if let Some(lab_file) = &destination.lab_file {
            lab_file.write(&out_dir)?;
        }
    } else {
        let (context, decision) = prepare(catalogue.clone(), &plan, &destination, options, faults)?;
        let executed = execute_plan(&context, &plan, options.jobs);
        outcomes.extend(executed.outcomes);
        disk_full = executed.disk_full;
        accel = Some(decision);
    }
    let full = |error: anyhow::Error| {
        if full_disk(&error) {
            Failure::infrastructure(disk_full_error(&out_dir, &error))
        } else {
            Failure::infrastructure(error)
        }
    };
    if let Some(baseline) = &destination.baseline {
        compare_with_baseline(baseline, &out_dir, Some(&catalogue)).map_err(full)?;
    }
    let outputs = write_outputs(&out_dir).map_err(full)?;
    if let Some(error) = disk_full {
        return Err(Failure::infrastructure(disk_full_error(&out_dir, &error)));
    }
    Ok(LabSummary {
        out_dir,
        accel,
        outcomes,
        failed_expectations: outputs.failed_expectations,
        regressions: outputs.regressions,
    })
}

/// Everything before the first VM: guest binaries, Go programs, kernels, the accelerator, the
/// output directory with `lab.json` and the scenario copies.
fn prepare(
    mut catalogue: Catalogue,
    plan: &Plan,
    destination: &Destination,
    options: &LabOptions,
    faults: Faults,
) -> Result<(LabContext, AccelDecision), Failure> {
    let cache = Cache::default_location()?;
    let mut bins = locate_guest_binaries()?;
    bins.go_programs =
        crate::supply::gobuild::build_go_programs(&cache, plan.runs.iter().map(|run| &run.spec))?;
    let unresolved = plan_kernels(&catalogue, plan);
    kernels::resolve_kernels(
        &mut catalogue,
        &unresolved,
        destination.modules.as_deref(),
        &cache,
    )?;
    let kernel_ids = plan_kernels(&catalogue, plan);
    eprintln!(
        "rsslab: {} runs on kernels {}",
        plan.runs.len(),
        kernel_ids.join(", ")
    );
    let kernels = prepare_kernels(&cache, &catalogue, &kernel_ids)?;
    kernels::derive_facts(&mut catalogue, &kernels);

    let accel = decide_accel(
        options.accel,
        Probe::Remembered,
        &cache,
        &kernels[&kernel_ids[0]],
        &bins,
    )?;
    eprintln!(
        "rsslab: accelerator {} ({})",
        accel.accel.as_str(),
        accel.reason
    );
    let faulty = plan
        .runs
        .iter()
        .filter(|run| faults.for_run(&run.spec.run_id).is_some())
        .count();
    if faulty > 0 {
        eprintln!(
            "rsslab: {FAULT_ENV} is set: injecting faults into {faulty} runs (a testing aid)"
        );
    }

    let out_dir = &destination.out_dir;
    fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    link_latest(out_dir);
    if let Some(lab_file) = &destination.lab_file {
        write_scenario_copies(out_dir, plan)?;
        lab_file.write(out_dir)?;
    }
    crate::supply::gobuild::copy_build_logs(
        &bins.go_programs,
        &out_dir.join(crate::supply::gobuild::LAB_BUILD_LOGS),
    )?;
    let host = provenance::host_provenance();
    let snapshots = match options.boot {
        BootChoice::Snapshot => Some(SnapshotStore::new(
            cache.root().join("snapshots"),
            &host.qemu_version,
        )),
        BootChoice::Cold => None,
    };
    let context = LabContext {
        cache,
        catalogue,
        kernels,
        bins,
        accel: accel.accel,
        accel_reason: accel.reason.clone(),
        out_dir: out_dir.clone(),
        snapshots,
        host,
        faults,
    };
    Ok((context, accel))
}

/// `runs/<scenario>/scenario.toml` for every scenario of the plan, before any run starts.
fn write_scenario_copies(out_dir: &Path, plan: &Plan) -> Result<()> {
    let mut written = std::collections::BTreeSet::new();
    for run in &plan.runs {
        if written.insert(run.scenario.as_str()) {
            let copy = out_dir
                .join(RUNS_DIR)
                .join(&run.scenario)
                .join(SCENARIO_TOML);
            crate::files::write_atomically(&copy, run.scenario_source.as_bytes())?;
        }
    }
    Ok(())
}

/// What a lab says when its output disk filled up.
fn disk_full_error(out_dir: &Path, error: &anyhow::Error) -> anyhow::Error {
    anyhow!(
        "the disk of the output directory {} is full ({error:#}): the runs that finished before \
         are kept there; free some space, then `rsslab run --resume {0}` runs the rest",
        out_dir.display()
    )
}

/// A lab output directory with runs in it, or bad input naming `flag` and the path.
pub fn check_lab_dir(dir: &Path, flag: &str) -> Result<(), Failure> {
    let runs = crate::records::find_run_dirs(dir).map_err(Failure::bad_input)?;
    if runs.is_empty() {
        return Err(Failure::bad_input(anyhow!(
            "{flag} {}: no runs/**/run.json there: not a lab output directory (give the directory `rsslab run --out` wrote)",
            dir.display()
        )));
    }
    Ok(())
}

/// `reports/<UTC timestamp>`.
fn default_out_dir() -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .replace(':', "-");
    PathBuf::from("reports").join(stamp)
}

/// Points `reports/latest` at the newest lab (best effort: only for the default layout).
fn link_latest(out_dir: &Path) {
    let (Some(parent), Some(name)) = (out_dir.parent(), out_dir.file_name()) else {
        return;
    };
    if parent != Path::new("reports") {
        return;
    }
    let latest = parent.join("latest");
    let _ = fs::remove_file(&latest);
    let _ = std::os::unix::fs::symlink(name, latest);
}

/// How a probe of KVM may be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// From a failed probe earlier in this boot of the host, if any (`--accel auto` in a lab).
    Remembered,
    /// By booting the probe VM (`doctor`, `--accel kvm`).
    Afresh,
}

/// KVM or TCG as `choice` says, probing KVM with a boot of `kernel` when it is a candidate.
pub fn decide_accel(
    choice: AccelChoice,
    probe: Probe,
    cache: &Cache,
    kernel: &KernelFiles,
    bins: &GuestBinaries,
) -> Result<AccelDecision, Failure> {
    let boot_probe = || probe_kvm(cache, kernel, bins);
    choose_accel(choice, Path::new("/dev/kvm"), || match (probe, choice) {
        (Probe::Remembered, AccelChoice::Auto) => remembered_probe(
            &cache.root().join(KVM_PROBE_MEMO),
            host_boot_id().as_deref(),
            &provenance::qemu_version().unwrap_or_default(),
            boot_probe,
        ),
        _ => boot_probe(),
    })
    .map_err(|why| Failure::infrastructure(anyhow!(why)))
}

/// Where a failed KVM probe is remembered, in the cache.
const KVM_PROBE_MEMO: &str = "kvm-probe.json";

/// Boots a VM with no processes under KVM: the guest must say hello within [`PROBE_TIMEOUT`].
fn probe_kvm(cache: &Cache, kernel: &KernelFiles, bins: &GuestBinaries) -> Result<(), String> {
    let spec = empty_spec("kvm-probe");
    let image = build_image(cache, kernel, &spec, bins).map_err(|error| format!("{error:#}"))?;
    // The probe's console (and QEMU's own messages) go to a file without a name, read back
    // only for the reason of a failure.
    let mut console = tempfile::tempfile().map_err(|error| error.to_string())?;
    let console_for_vm = console.try_clone().map_err(|error| error.to_string())?;
    let command = QemuCommand {
        binary: qemu_binary(),
        accel: Accel::Kvm,
        memory: rsslab_wire::Bytes::mib(256),
        cpus: 1,
        kernel: image.kernel.clone(),
        initrd: image.initrd.clone(),
        kernel_args: Vec::new(),
        incoming: None,
    };
    let spec_line = serde_json::to_string(&image.spec).map_err(|error| error.to_string())?;
    let mut said_hello = false;
    let output = run_vm(
        &command,
        None,
        PROBE_TIMEOUT,
        console_for_vm,
        Launch::cold(spec_line),
        &mut |line| match serde_json::from_str::<rsslab_wire::GuestMessage>(line) {
            Ok(rsslab_wire::GuestMessage::Ready(_)) => LineAction::SpecWanted,
            Ok(rsslab_wire::GuestMessage::Hello(_)) => {
                said_hello = true;
                LineAction::Continue
            }
            _ => LineAction::Continue,
        },
    )
    .map_err(|error| format!("{error:#}"))?;
    match (said_hello, output.exit) {
        (true, _) => Ok(()),
        (false, VmExit::DeadlineExceeded) => {
            Err(format!("no hello within {}s", PROBE_TIMEOUT.as_secs()))
        }
        (false, exit) => {
            let mut text = String::new();
            let _ = console.seek(std::io::SeekFrom::Start(0));
            let _ = console.read_to_string(&mut text);
            Err(qemu_failure_line(&text, &format!("{exit:?}")))
        }
    }
}

/// One line saying why a probe boot failed: QEMU's own KVM error from its output (`KVM: entry
/// failed, hardware error 0x80000021`, `error: kvm run failed Invalid argument`) where it
/// printed one, with how QEMU ended.
fn qemu_failure_line(console: &str, exit: &str) -> String {
    let said = console
        .lines()
        .map(str::trim)
        .filter(|line| {
            let lower = line.to_ascii_lowercase();
            lower.contains("kvm") && !lower.starts_with('[')
        })
        .find(|line| !line.is_empty());
    match said {
        Some(line) => format!("QEMU under KVM: {line} (QEMU ended: {exit})"),
        None => format!("no hello; QEMU ended: {exit}"),
    }
}

#[cfg(test)]
mod tests {
    use super::qemu_failure_line;

    #[test]
    fn a_failed_kvm_probe_says_what_qemu_said_in_one_line() {
        let console = "[    0.000000] Linux version 6.1.0 (kvm guest)\nKVM: entry failed, hardware error 0x80000021\nEAX=00000000 EBX=00000000\n";
        assert_eq!(
            qemu_failure_line(console, "Signalled(6)"),
            "QEMU under KVM: KVM: entry failed, hardware error 0x80000021 (QEMU ended: Signalled(6))"
        );
        assert_eq!(
            qemu_failure_line("[    0.1] booting\n", "Exited(1)"),
            "no hello; QEMU ended: Exited(1)"
        );
    }
}
