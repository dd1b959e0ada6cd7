//! The lab from scenarios to report: the pipeline of DESIGN.md read top to bottom in
//! [`run_lab`].
//!
//! Raw records come first: each run writes `run.json`, `samples.jsonl` and `console.log` as it
//! ends, so a failed or interrupted lab keeps every finished run; the summary outputs
//! (`results.json`, `index.html`, `junit.xml`, `summary.md`) are then rebuilt from those files
//! by [`write_outputs`], the same function `rsslab report DIR` and `rsslab merge` call.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow};
use rsslab_wire::RunOutcome;

use crate::cache::Cache;
use crate::catalog::{Catalogue, Kernel, default_catalogue_path, load_catalogue};
use crate::collect::{Collector, classify};
use crate::exit::Failure;
use crate::image::{GuestBinaries, Image, build_image, locate_guest_binaries};
use crate::kernel::{KernelFiles, prepare_kernel};
use crate::plan::{Plan, PlanFilter, RunPlan, plan};
use crate::progress::LabProgress;
use crate::record::{
    CONSOLE_LOG, PackageProvenance, Provenance, RUNS_DIR, RunRecord, SCENARIO_TOML, Timing,
};
use crate::scenario::load_scenarios;
use crate::shard::{Shard, shard_plan};
use crate::vm::accel::{AccelChoice, AccelDecision, PROBE_TIMEOUT, choose_accel};
use crate::vm::{Accel, LineAction, QemuCommand, VmExit, qemu::qemu_binary, run_vm};
use crate::{export, fetch, provenance, report, results};

/// What `rsslab run` was asked to do.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// Scenario files or directories.
    pub inputs: Vec<PathBuf>,
    /// `--kernel`: only these catalogue ids (empty: each scenario's own list).
    pub kernels: Vec<String>,
    /// `--out`: the output directory (default `reports/<timestamp>`).
    pub out: Option<PathBuf>,
    /// `--jobs`: VMs at once.
    pub jobs: usize,
    pub accel: AccelChoice,
    /// `--repeat`: runs of each scenario, kernel and variant (at least 1).
    pub repeat: u32,
    /// `--baseline`: a lab to compare this one with.
    pub baseline: Option<PathBuf>,
    /// `--shard I/N`: only this slice of the plan.
    pub shard: Option<Shard>,
}

/// What a finished lab produced.
#[derive(Debug, Clone)]
pub struct LabSummary {
    pub out_dir: PathBuf,
    /// `None` when there was nothing to run (a shard of a plan smaller than its shards).
    pub accel: Option<AccelDecision>,
    pub outcomes: BTreeMap<String, RunOutcome>,
    /// Expectations that failed, over every run of the output directory.
    pub failed_expectations: usize,
    /// Regressions against the baseline (0 without one).
    pub regressions: usize,
}

impl LabSummary {
    /// Runs that ended in an infrastructure outcome.
    pub fn infra_failures(&self) -> usize {
        self.outcomes
            .values()
            .filter(|outcome| {
                matches!(
                    outcome,
                    RunOutcome::KernelPanic | RunOutcome::VmTimeout | RunOutcome::InfraError
                )
            })
            .count()
    }
}

/// Everything a run needs that is shared by all runs.
struct LabContext {
    cache: Cache,
    catalogue: Catalogue,
    kernels: BTreeMap<String, KernelFiles>,
    bins: GuestBinaries,
    accel: Accel,
    out_dir: PathBuf,
    host: provenance::HostProvenance,
}

/// Loads and validates scenarios: bad input is exit code 2.
pub fn load_plan(inputs: &[PathBuf], kernels: &[String]) -> Result<(Catalogue, Plan), Failure> {
    let catalogue = load_catalogue(&default_catalogue_path()).map_err(Failure::infrastructure)?;
    let known = catalogue.ids();
    for kernel in kernels {
        if !known.contains(kernel) {
            return Err(Failure::bad_input(anyhow!(
                "--kernel {kernel}: not in the catalogue (known: {})",
                known.join(", ")
            )));
        }
    }
    let scenarios = load_scenarios(inputs, &known).map_err(Failure::bad_input)?;
    let plan = plan(
        &scenarios,
        &PlanFilter {
            kernels: kernels.to_vec(),
        },
    );
    if plan.runs.is_empty() {
        return Err(Failure::bad_input(anyhow!(
            "the plan is empty: no scenario runs on the kernels asked for"
        )));
    }
    Ok((catalogue, plan))
}

/// Fetches and unpacks every kernel the plan needs. The archive's address is only needed for
/// what is not cached yet, so a warm cache works on a host without apt sources.
pub fn prepare_kernels(
    cache: &Cache,
    catalogue: &Catalogue,
    ids: &[String],
) -> Result<BTreeMap<String, KernelFiles>> {
    let base_url = fetch::archive_base_url();
    let mut prepared = BTreeMap::new();
    for id in ids {
        let kernel = catalogue
            .get(id)
            .ok_or_else(|| anyhow!("kernel {id} is not in the catalogue"))?;
        let files = prepare_kernel(cache, base_url.as_deref().unwrap_or_default(), kernel)
            .map_err(|error| {
                match &base_url {
                    Err(no_archive) => error.context(format!("{no_archive:#}")),
                    Ok(_) => error,
                }
                .context(format!("preparing kernel {id}"))
            })?;
        prepared.insert(id.clone(), files);
    }
    Ok(prepared)
}

/// The kernels a plan uses, in catalogue order.
fn plan_kernels(catalogue: &Catalogue, plan: &Plan) -> Vec<String> {
    catalogue
        .ids()
        .into_iter()
        .filter(|id| plan.runs.iter().any(|run| &run.kernel == id))
        .collect()
}

/// Runs a lab: scenarios -> plan -> kernels and images -> VMs -> raw records -> outputs.
pub fn run_lab(options: &LabOptions) -> Result<LabSummary, Failure> {
    let (catalogue, plan) = load_plan(&options.inputs, &options.kernels)?;
    let plan = crate::plan::repeat(plan, options.repeat);
    if let Some(baseline) = &options.baseline {
        check_lab_dir(baseline, "--baseline")?;
    }
    let plan = match options.shard {
        Some(shard) => {
            let total = plan.runs.len();
            let plan = shard_plan(plan, shard);
            eprintln!(
                "rsslab: shard {shard}: {} of the plan's {total} runs",
                plan.runs.len()
            );
            if plan.runs.is_empty() {
                return empty_lab(options);
            }
            plan
        }
        None => plan,
    };
    let cache = Cache::default_location()?;
    let mut bins = locate_guest_binaries()?;
    bins.go_programs =
        crate::gobuild::build_go_programs(&cache, plan.runs.iter().map(|run| &run.spec))?;
    let kernel_ids = plan_kernels(&catalogue, &plan);
    eprintln!(
        "rsslab: {} runs on kernels {}",
        plan.runs.len(),
        kernel_ids.join(", ")
    );
    let kernels = prepare_kernels(&cache, &catalogue, &kernel_ids)?;

    let probe_kernel = &kernels[&kernel_ids[0]];
    let accel = choose_accel(options.accel, Path::new("/dev/kvm"), || {
        probe_kvm(&cache, probe_kernel, &bins)
    })
    .map_err(|why| Failure::infrastructure(anyhow!(why)))?;
    eprintln!(
        "rsslab: accelerator {} ({})",
        accel.accel.as_str(),
        accel.reason
    );

    let out_dir = options.out.clone().unwrap_or_else(default_out_dir);
    fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    link_latest(&out_dir);
    let context = LabContext {
        cache,
        catalogue,
        kernels,
        bins,
        accel: accel.accel,
        out_dir: out_dir.clone(),
        host: provenance::host_provenance(),
    };
    let outcomes = execute_plan(&context, &plan, options.jobs.max(1));
    if let Some(baseline) = &options.baseline {
        compare_with_baseline(baseline, &out_dir, Some(&context.catalogue))?;
    }
    let outputs = write_outputs(&out_dir)?;
    Ok(LabSummary {
        out_dir,
        accel: Some(accel),
        outcomes,
        failed_expectations: outputs.failed_expectations,
        regressions: outputs.regressions,
    })
}

/// A lab output directory with runs in it, or bad input naming `flag` and the path.
pub fn check_lab_dir(dir: &Path, flag: &str) -> Result<(), Failure> {
    let runs = crate::record::find_run_dirs(dir).map_err(Failure::bad_input)?;
    if runs.is_empty() {
        return Err(Failure::bad_input(anyhow!(
            "{flag} {}: no runs/**/run.json there: not a lab output directory (give the directory `rsslab run --out` wrote)",
            dir.display()
        )));
    }
    Ok(())
}

/// Compares the runs of `out_dir` with `baseline`'s and keeps the comparison in
/// `out_dir/comparison.json`, for [`write_outputs`].
pub fn compare_with_baseline(
    baseline: &Path,
    out_dir: &Path,
    catalogue: Option<&Catalogue>,
) -> Result<crate::diff::Comparison> {
    let comparison = crate::diff::compare_dirs(baseline, out_dir, catalogue)?;
    crate::diff::write_comparison(out_dir, &comparison)?;
    Ok(comparison)
}

/// A shard without runs still leaves a lab output directory (an empty `runs/` and outputs
/// that say so), so the merge of every shard's directory needs no special case.
fn empty_lab(options: &LabOptions) -> Result<LabSummary, Failure> {
    let out_dir = options.out.clone().unwrap_or_else(default_out_dir);
    let runs = out_dir.join(RUNS_DIR);
    fs::create_dir_all(&runs).with_context(|| format!("creating {}", runs.display()))?;
    let outputs = write_outputs(&out_dir)?;
    Ok(LabSummary {
        out_dir,
        accel: None,
        outcomes: BTreeMap::new(),
        failed_expectations: outputs.failed_expectations,
        regressions: outputs.regressions,
    })
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

/// What [`write_outputs`] wrote and found.
#[derive(Debug, Clone)]
pub struct Outputs {
    /// `index.html`.
    pub index: PathBuf,
    /// Expectations that failed, over every run (evaluated from the records).
    pub failed_expectations: usize,
    /// Regressions against the baseline, when `comparison.json` holds a comparison.
    pub regressions: usize,
}

/// Rebuilds `results.json`, `index.html`, `junit.xml` and `summary.md` from the raw records
/// under `out_dir` (with the baseline comparison in `comparison.json`, when there is one).
pub fn write_outputs(out_dir: &Path) -> Result<Outputs> {
    let runs = crate::record::load_all(out_dir)?;
    let mut results = results::build_results(&runs);
    results.baseline = crate::diff::load_comparison(out_dir)?;
    results::write_results(out_dir, &results)?;
    let index = report::render_report(out_dir, &runs, &results)?;
    export::write_exports(out_dir, &runs, &results)?;
    Ok(Outputs {
        index,
        failed_expectations: results.failed_expectations(),
        regressions: results
            .baseline
            .as_ref()
            .map_or(0, crate::diff::Comparison::regressions),
    })
}

/// Runs every planned VM, `jobs` at a time, showing progress; returns each run's outcome by
/// directory.
fn execute_plan(context: &LabContext, plan: &Plan, jobs: usize) -> BTreeMap<String, RunOutcome> {
    let progress = LabProgress::new(plan, jobs, context.accel);
    let next = AtomicUsize::new(0);
    let outcomes = Mutex::new(BTreeMap::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(plan.runs.len()) {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::SeqCst);
                    let Some(run) = plan.runs.get(index) else {
                        break;
                    };
                    if crate::vm::stop_requested() {
                        break;
                    }
                    progress.run_started(index);
                    let label = run.dir.trim_start_matches("runs/").to_owned();
                    let (outcome, line, wall) = match execute_run(context, run) {
                        Ok(record) => {
                            let reason = record
                                .reason
                                .as_deref()
                                .map(|r| format!(": {r}"))
                                .unwrap_or_default();
                            let first = record
                                .timing
                                .boot_to_first_sample_ms
                                .map(|ms| {
                                    format!(", first sample after {:.1}s", ms as f64 / 1000.0)
                                })
                                .unwrap_or_default();
                            (
                                record.outcome,
                                format!(
                                    "{label}: {}{reason} ({:.0}s{first})",
                                    record.outcome,
                                    record.timing.wall_ms as f64 / 1000.0
                                ),
                                Some(Duration::from_millis(record.timing.wall_ms)),
                            )
                        }
                        Err(error) => (
                            RunOutcome::InfraError,
                            format!("{label}: infra-error: {error:#}"),
                            None,
                        ),
                    };
                    progress.run_finished(index, &line, wall, outcome == RunOutcome::Ok);
                    outcomes
                        .lock()
                        .expect("outcomes lock")
                        .insert(run.dir.clone(), outcome);
                }
            });
        }
    });
    progress.finish();
    outcomes.into_inner().expect("outcomes lock")
}

/// One planned run: its record is written whatever happens; an error before or around the VM
/// becomes an `infra-error` record with the error chain as its reason.
fn execute_run(context: &LabContext, run: &RunPlan) -> Result<RunRecord> {
    let run_dir = context.out_dir.join(&run.dir);
    fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    let scenario_copy = context
        .out_dir
        .join(RUNS_DIR)
        .join(&run.scenario)
        .join(SCENARIO_TOML);
    fs::write(&scenario_copy, &run.scenario_source)
        .with_context(|| format!("writing {}", scenario_copy.display()))?;
    let record = attempt_run(context, run, &run_dir).unwrap_or_else(|error| {
        let mut record = empty_record(context, run);
        record.reason = Some(format!("{error:#}"));
        record
    });
    record.write(&run_dir)?;
    Ok(record)
}

/// A record of a run that produced nothing: `infra-error`, no processes.
fn empty_record(context: &LabContext, run: &RunPlan) -> RunRecord {
    RunRecord {
        scenario: run.scenario.clone(),
        title: run.title.clone(),
        story: run.story.clone(),
        kernel: run.kernel.clone(),
        kernel_release: None,
        variant: run.variant.clone(),
        variant_label: run.variant_label.clone(),
        accel: context.accel.as_str().to_owned(),
        outcome: RunOutcome::InfraError,
        reason: None,
        attempts: 0,
        processes: BTreeMap::new(),
        cgroup_peak: BTreeMap::new(),
        events: Vec::new(),
        hello: None,
        timing: Timing::default(),
        provenance: run_provenance(context, run, ""),
        spec: run.spec.clone(),
        dir: run.dir.clone(),
        repeat: run.repeat,
        expectations: run.expectations.clone(),
        kernel_facts: context
            .catalogue
            .get(&run.kernel)
            .map(|kernel| kernel.facts),
    }
}

/// Image, scratch disk, VM (a kernel fault is retried once).
fn attempt_run(context: &LabContext, run: &RunPlan, run_dir: &Path) -> Result<RunRecord> {
    let kernel_files = &context.kernels[&run.kernel];
    let image = build_image(&context.cache, kernel_files, &run.spec, &context.bins)
        .with_context(|| format!("building the image for {}", run.dir))?;
    let disk = run
        .vm
        .disk
        .map(|size| make_scratch_disk(size.0))
        .transpose()?;

    let mut attempts = 0;
    let (collector, vm_output, outcome, reason, started_at) = loop {
        attempts += 1;
        let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        let (collector, vm_output) = boot(
            context,
            run,
            &image,
            disk.as_ref().map(|d| d.path()),
            run_dir,
        )?;
        let (outcome, reason) = classify(&vm_output, &collector);
        if outcome == RunOutcome::KernelPanic && attempts == 1 && !crate::vm::stop_requested() {
            let kept = run_dir.join("console.attempt1.log");
            fs::rename(run_dir.join(CONSOLE_LOG), &kept).ok();
            tracing::warn!(run = %run.dir, "kernel fault, retrying once ({})", reason.as_deref().unwrap_or(""));
            continue;
        }
        break (collector, vm_output, outcome, reason, started_at);
    };

    let verdict = collector.verdict.clone();
    Ok(RunRecord {
        kernel_release: collector
            .hello
            .as_ref()
            .map(|hello| hello.kernel_release.clone()),
        outcome,
        reason,
        attempts,
        processes: verdict
            .as_ref()
            .map(|v| v.processes.clone())
            .unwrap_or_default(),
        cgroup_peak: verdict.map(|v| v.cgroup_peak).unwrap_or_default(),
        events: collector.events.clone(),
        hello: collector.hello.clone(),
        timing: Timing {
            started_at,
            wall_ms: vm_output.wall.as_millis() as u64,
            boot_to_first_sample_ms: collector.first_sample_ms,
        },
        provenance: run_provenance(context, run, &image.digest),
        spec: image.spec.clone(),
        ..empty_record(context, run)
    })
}

/// Boots the image once, collecting the channel into `run_dir`.
fn boot(
    context: &LabContext,
    run: &RunPlan,
    image: &Image,
    disk: Option<&Path>,
    run_dir: &Path,
) -> Result<(Collector, crate::vm::VmOutput)> {
    let socket_dir = tempfile::Builder::new()
        .prefix("rsslab-")
        .tempdir()
        .context("creating a socket directory")?;
    let command = QemuCommand {
        binary: qemu_binary(),
        accel: context.accel,
        memory: run.vm.memory,
        cpus: run.vm.cpus,
        kernel: image.kernel.clone(),
        initrd: image.initrd.clone(),
        channel_socket: socket_dir.path().join("channel.sock"),
        disk: disk.map(Path::to_path_buf),
    };
    let mut collector = Collector::new(run_dir)?;
    let output = run_vm(
        &command,
        run.vm.timeout.as_duration(),
        &run_dir.join(CONSOLE_LOG),
        &mut |line| collector.line(line),
    )?;
    collector.flush()?;
    Ok((collector, output))
}

/// A sparse raw file of `size` bytes with an ext4 file system, deleted when dropped.
fn make_scratch_disk(size: u64) -> Result<tempfile::NamedTempFile> {
    let file = tempfile::Builder::new()
        .prefix("rsslab-scratch-")
        .suffix(".img")
        .tempfile()?;
    file.as_file().set_len(size)?;
    duct::cmd!(
        "mkfs.ext4",
        "-q",
        "-F",
        "-m",
        "0",
        "-E",
        "lazy_itable_init=0,lazy_journal_init=0",
        file.path()
    )
    .stdout_null()
    .stderr_capture()
    .run()
    .context("mkfs.ext4 on the scratch disk (install e2fsprogs)")?;
    Ok(file)
}

fn run_provenance(context: &LabContext, run: &RunPlan, image_digest: &str) -> Provenance {
    let kernel: &Kernel = context
        .catalogue
        .get(&run.kernel)
        .expect("planned kernels are in the catalogue");
    Provenance {
        kernel_packages: kernel
            .packages
            .iter()
            .map(|package| PackageProvenance {
                name: package.name.clone(),
                version: package.version.clone(),
                sha256: package.sha256.clone(),
            })
            .collect(),
        qemu_version: context.host.qemu_version.clone(),
        host: context.host.host.clone(),
        rsslab_version: env!("CARGO_PKG_VERSION").to_owned(),
        git_revision: context.host.git_revision.clone(),
        scenario_sha256: run.scenario_sha256.clone(),
        scenario_path: run.scenario_path.display().to_string(),
        image_digest: image_digest.to_owned(),
    }
}

/// Boots a VM with no processes under KVM: the guest must say hello within [`PROBE_TIMEOUT`].
fn probe_kvm(cache: &Cache, kernel: &KernelFiles, bins: &GuestBinaries) -> Result<(), String> {
    let spec = crate::images::empty_spec("kvm-probe");
    let image = build_image(cache, kernel, &spec, bins).map_err(|error| format!("{error:#}"))?;
    let scratch = tempfile::tempdir().map_err(|error| error.to_string())?;
    let command = QemuCommand {
        binary: qemu_binary(),
        accel: Accel::Kvm,
        memory: rsslab_wire::Bytes::mib(256),
        cpus: 1,
        kernel: image.kernel.clone(),
        initrd: image.initrd.clone(),
        channel_socket: scratch.path().join("channel.sock"),
        disk: None,
    };
    let mut said_hello = false;
    let output = run_vm(
        &command,
        PROBE_TIMEOUT,
        &scratch.path().join(CONSOLE_LOG),
        &mut |line| {
            said_hello |= line.contains("\"type\":\"hello\"");
            LineAction::Continue
        },
    )
    .map_err(|error| format!("{error:#}"))?;
    match (said_hello, output.exit) {
        (true, _) => Ok(()),
        (false, VmExit::DeadlineExceeded) => {
            Err(format!("no hello within {}s", PROBE_TIMEOUT.as_secs()))
        }
        (false, exit) => Err(format!("no hello; QEMU ended: {exit:?}")),
    }
}
