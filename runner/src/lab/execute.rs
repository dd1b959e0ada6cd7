//! Executing a plan: its runs in order, as many at once as the host carries
//! ([`super::packing`]), each one's image, VM(s) and record.
//!
//! [`execute_plan`] starts no run once a stop was requested (Ctrl-C, SIGTERM) or the output
//! disk is full, and records the runs that did not start as `infra-error`, saying why. Each
//! run's directory is cleared first (its old record before anything else), its `run.json` is
//! written last and atomically, and an error around its VM becomes an `infra-error` record
//! with the error chain as its reason.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use rsslab_wire::RunOutcome;

use crate::catalogue::{Catalogue, Kernel, KernelOrigin};
use crate::image::{GuestBinaries, Image, build_image};
use crate::lab::packing::{CpuMeter, HostCapacity, Jobs, Packing, RunNeed, host_capacity};
use crate::lab::progress::LabProgress;
use crate::plan::{Plan, RunPlan};
use crate::records::collect::{Collector, classify};
use crate::records::facts::{hello_fact_mismatches, probed_facts};
use crate::records::provenance;
use crate::records::{CONSOLE_LOG, PackageProvenance, Provenance, RUN_JSON, RunRecord, Timing};
use crate::scenario::VmConfig;
use crate::supply::cache::Cache;
use crate::supply::kernel::KernelFiles;
use crate::vm::disk::scratch_disk;
use crate::vm::fault::{FAULT_ENV, Faults};
use crate::vm::{
    Accel, Launch, QemuCommand, RestoreFailed, SnapshotStore, SnapshotUse, qemu::qemu_binary,
    run_vm,
};

/// Everything a run needs that is shared by all runs.
pub struct LabContext {
    pub cache: Cache,
    pub catalogue: Catalogue,
    pub kernels: BTreeMap<String, KernelFiles>,
    pub bins: GuestBinaries,
    pub accel: Accel,
    /// Why [`Self::accel`]: the probe's answer, kept in every run record.
    pub accel_reason: String,
    pub out_dir: PathBuf,
    pub host: provenance::HostProvenance,
    /// Faults to inject (`RSSLAB_FAULT`, a testing aid).
    pub faults: Faults,
    /// Snapshots of booted guests to start VMs from (`None`: `--boot cold`).
    pub snapshots: Option<SnapshotStore>,
}

/// What [`execute_plan`] did.
pub struct Executed {
    /// Each planned run's outcome, by directory (runs that never started: `infra-error`).
    pub outcomes: BTreeMap<String, RunOutcome>,
    /// The error that showed the output disk full, if it filled up.
    pub disk_full: Option<anyhow::Error>,
}

/// What a run's thread tells the dispatcher.
enum RunMessage {
    /// The run's first sample arrived: its boot is over.
    Sampling(usize),
    Finished {
        index: usize,
        outcome: RunOutcome,
        line: String,
        wall: Option<Duration>,
        /// Cores QEMU used on average (its CPU time over its wall time).
        share: Option<f64>,
        error: Option<anyhow::Error>,
    },
}

/// How often the dispatcher looks at the host's idle CPU when no run has said anything.
const DISPATCH_TICK: Duration = Duration::from_millis(250);

/// Runs every planned VM, in plan order, as many at once as [`Packing`] admits, showing
/// progress. No run starts once a stop was requested or the output disk is full; those that
/// did not start get a record saying so.
pub fn execute_plan(context: &LabContext, plan: &Plan, jobs: Jobs) -> Executed {
    let capacity = host_capacity().unwrap_or_else(|error| {
        tracing::warn!("reading the host's memory: {error}; one run at a time");
        HostCapacity {
            cores: 1,
            memory_budget: 0,
        }
    });
    let mut packing = Packing::new(jobs, capacity);
    let mut meter = CpuMeter::new(capacity.cores);
    let progress = LabProgress::new(plan, jobs, context.accel);
    let mut outcomes = BTreeMap::new();
    let mut disk_full: Option<anyhow::Error> = None;
    let (sender, messages) = mpsc::channel::<RunMessage>();
    std::thread::scope(|scope| {
        let mut next = 0;
        let mut last_start = Instant::now();
        loop {
            let stopping = crate::vm::stop_requested() || disk_full.is_some();
            if (stopping || next == plan.runs.len()) && packing.running() == 0 {
                break;
            }
            meter.read();
            if !stopping && next < plan.runs.len() {
                let run = &plan.runs[next];
                let need = RunNeed::new(run.vm.memory.0, &run.scenario);
                if packing.admits(&need, meter.idle_cores(last_start)) {
                    if packing.exceeds_budget(&need) {
                        tracing::warn!(
                            "{}: its guest and QEMU need {} MiB, more than the {} MiB this                              host can spare; it runs alone",
                            run.dir,
                            need.memory >> 20,
                            capacity.memory_budget >> 20
                        );
                    }
                    packing.started(next, need);
                    progress.run_started(next, packing.running());
                    last_start = Instant::now();
                    let sender = sender.clone();
                    let index = next;
                    scope.spawn(move || {
                        let sampling = sender.clone();
                        let message = finished_message(
                            index,
                            run,
                            execute_run(context, run, &move || {
                                let _ = sampling.send(RunMessage::Sampling(index));
                            }),
                        );
                        let _ = sender.send(message);
                    });
                    next += 1;
                    continue;
                }
            }
            match messages.recv_timeout(DISPATCH_TICK) {
                Ok(RunMessage::Sampling(index)) => packing.sampling(index),
                Ok(RunMessage::Finished {
                    index,
                    outcome,
                    line,
                    wall,
                    share,
                    error,
                }) => {
                    packing.finished(index, share);
                    progress.run_finished(index, &line, wall, outcome == RunOutcome::Ok);
                    outcomes.insert(plan.runs[index].dir.clone(), outcome);
                    if let Some(error) = error.filter(full_disk) {
                        disk_full.get_or_insert(error);
                    }
                }
                Err(_) => {}
            }
        }
    });
    progress.finish();
    let why = match (&disk_full, crate::vm::stop_requested()) {
        (Some(_), _) => "the output disk is full",
        (None, true) => "the lab was interrupted",
        (None, false) => {
            return Executed {
                outcomes,
                disk_full,
            };
        }
    };
    for run in &plan.runs {
        if !outcomes.contains_key(&run.dir) {
            record_not_started(context, run, why);
            outcomes.insert(run.dir.clone(), RunOutcome::InfraError);
        }
    }
    Executed {
        outcomes,
        disk_full,
    }
}

/// What the dispatcher learns of a run that ended: its outcome, its progress line, its wall
/// time and CPU share; an error (no record written) is an `infra-error`.
fn finished_message(index: usize, run: &RunPlan, result: Result<RunRecord>) -> RunMessage {
    let label = run.dir.trim_start_matches("runs/");
    match result {
        Ok(record) => {
            let reason = record
                .reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            let first = record
                .timing
                .boot_to_first_sample_ms
                .map(|ms| format!(", first sample after {:.1}s", ms as f64 / 1000.0))
                .unwrap_or_default();
            let share = record
                .timing
                .qemu_cpu_ms
                .filter(|_| record.timing.wall_ms > 0)
                .map(|cpu| cpu as f64 / record.timing.wall_ms as f64);
            RunMessage::Finished {
                index,
                outcome: record.outcome,
                line: format!(
                    "{label}: {}{reason} ({:.0}s{first})",
                    record.outcome,
                    record.timing.wall_ms as f64 / 1000.0
                ),
                wall: Some(Duration::from_millis(record.timing.wall_ms)),
                share,
                error: None,
            }
        }
        Err(error) => RunMessage::Finished {
            index,
            outcome: RunOutcome::InfraError,
            line: format!("{label}: infra-error: {error:#}"),
            wall: None,
            share: None,
            error: Some(error),
        },
    }
}

/// An `infra-error` record for a run that never started, when the disk still takes one.
fn record_not_started(context: &LabContext, run: &RunPlan, why: &str) {
    let mut record = empty_record(context, run);
    record.reason = Some(format!(
        "not started: {why}; `rsslab run --resume {}` runs it",
        context.out_dir.display()
    ));
    let run_dir = context.out_dir.join(&run.dir);
    let written = fs::create_dir_all(&run_dir)
        .map_err(anyhow::Error::from)
        .and_then(|()| clear_run_dir(&run_dir))
        .and_then(|()| record.write(&run_dir));
    if let Err(error) = written {
        tracing::warn!("{}: no record of a run not started: {error:#}", run.dir);
    }
}

/// One planned run: its record is written whatever happens, last; an error before or around
/// the VM becomes an `infra-error` record with the error chain as its reason.
fn execute_run(context: &LabContext, run: &RunPlan, on_sampling: &dyn Fn()) -> Result<RunRecord> {
    let run_dir = context.out_dir.join(&run.dir);
    fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    clear_run_dir(&run_dir)?;
    let fault = context.faults.for_run(&run.spec.run_id);
    let mut record = attempt_run(context, run, &run_dir, on_sampling).unwrap_or_else(|error| {
        let mut record = empty_record(context, run);
        record.reason = Some(format!("{error:#}"));
        record
    });
    if let Some(fault) = fault {
        let observed = record
            .reason
            .take()
            .unwrap_or_else(|| "no fault seen".into());
        record.reason = Some(format!(
            "{observed} [fault injected on purpose: {fault}, {FAULT_ENV}]"
        ));
    }
    record.write(&run_dir)?;
    Ok(record)
}

/// Removes what an earlier run left in `run_dir` (its record first, so that the directory
/// never pairs an old record with new samples); subdirectories (variants, repeats) stay.
fn clear_run_dir(run_dir: &Path) -> Result<()> {
    let record = run_dir.join(RUN_JSON);
    if record.exists() {
        fs::remove_file(&record).with_context(|| format!("removing {}", record.display()))?;
    }
    for entry in fs::read_dir(run_dir).with_context(|| format!("reading {}", run_dir.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            fs::remove_file(entry.path())
                .with_context(|| format!("removing {}", entry.path().display()))?;
        }
    }
    Ok(())
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
        accel_reason: Some(context.accel_reason.clone()),
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
            .filter(|kernel| kernel.facts_known())
            .map(|kernel| kernel.facts),
        fact_mismatches: Vec::new(),
    }
}

/// Image, VM (a kernel fault is retried once, on a fresh scratch disk).
fn attempt_run(
    context: &LabContext,
    run: &RunPlan,
    run_dir: &Path,
    on_sampling: &dyn Fn(),
) -> Result<RunRecord> {
    let kernel_files = &context.kernels[&run.kernel];
    let image = build_image(&context.cache, kernel_files, &run.spec, &context.bins)
        .with_context(|| format!("building the image for {}", run.dir))?;

    let mut attempts = 0;
    let (collector, vm_output, outcome, reason, started_at) = loop {
        attempts += 1;
        let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        let (collector, vm_output) = boot(context, run, &image, run_dir, on_sampling)?;
        let (outcome, reason) = classify(&vm_output, &collector);
        if outcome == RunOutcome::KernelPanic && attempts == 1 && !crate::vm::stop_requested() {
            let kept = run_dir.join("console.attempt1.log");
            fs::rename(run_dir.join(CONSOLE_LOG), &kept).ok();
            tracing::warn!(run = %run.dir, "kernel fault, retrying once ({})", reason.as_deref().unwrap_or(""));
            continue;
        }
        break (collector, vm_output, outcome, reason, started_at);
    };

    let reason = match (&context.catalogue.get(&run.kernel), &collector.hello) {
        (Some(kernel), None) if matches!(kernel.origin, KernelOrigin::Local(_)) => Some(format!(
            "{}; the guest agent never said hello: a kernel of your own needs, built in (=y), \
             CONFIG_BLK_DEV_INITRD, CONFIG_RD_GZIP, CONFIG_SERIAL_8250_CONSOLE (the console and \
             the channel are ttyS0 and ttyS1), CONFIG_DEVTMPFS, CONFIG_PROC_FS, CONFIG_SYSFS, \
             CONFIG_CGROUPS and CONFIG_MEMCG, and for a scratch disk CONFIG_VIRTIO_PCI, \
             CONFIG_VIRTIO_BLK and CONFIG_EXT4_FS (=y, or =m with --modules); see the console \
             log's tail",
            reason.as_deref().unwrap_or("no hello")
        )),
        _ => reason,
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
            agent_cpu_ms: collector.verdict.as_ref().and_then(|v| v.agent_cpu_ms),
            qemu_cpu_ms: vm_output.cpu.map(|cpu| cpu.as_millis() as u64),
            boot: Some(vm_output.boot),
        },
        provenance: run_provenance(context, run, &image.digest),
        spec: image.spec.clone(),
        ..run_facts(empty_record(context, run), collector.hello.as_ref())
    })
}

/// The record's facts checked against what the guest probed (a loud mismatch when they
/// differ); for a kernel whose facts nothing wrote (a local kernel without a config), the
/// facts are what the guest probed, with the written-only overcommit fact from its release.
fn run_facts(mut record: RunRecord, hello: Option<&rsslab_wire::Hello>) -> RunRecord {
    match (&record.kernel_facts, hello) {
        (Some(facts), _) => {
            record.fact_mismatches = hello_fact_mismatches(hello, Some(facts));
            for mismatch in &record.fact_mismatches {
                tracing::warn!(run = %record.dir, "kernel facts: {mismatch}");
            }
        }
        (None, Some(hello)) => {
            let probed = probed_facts(&hello.features);
            let written = crate::catalogue::facts::facts_from_config("", &hello.kernel_release);
            record.kernel_facts = Some(crate::catalogue::KernelFacts {
                madv_free: probed.madv_free.unwrap_or(written.madv_free),
                cgroup_v1_memory: probed.cgroup_v1_memory.unwrap_or(false),
                mglru: probed.mglru.unwrap_or(false),
                mglru_default: probed.mglru_default.unwrap_or(false),
                overcommit_heuristic_total_only: written.overcommit_heuristic_total_only,
            });
        }
        (None, None) => {}
    }
    record
}

/// Boots the image once for `run`, with its fault (if any), collecting into `run_dir`.
fn boot(
    context: &LabContext,
    run: &RunPlan,
    image: &Image,
    run_dir: &Path,
    on_sampling: &dyn Fn(),
) -> Result<(Collector, crate::vm::VmOutput)> {
    let kernel_args: Vec<String> = context
        .faults
        .for_run(&run.spec.run_id)
        .map(|fault| fault.kernel_arg())
        .into_iter()
        .collect();
    boot_vm(
        context.accel,
        &run.vm,
        image,
        &kernel_args,
        run_dir,
        context.snapshots.as_ref(),
        on_sampling,
    )
}

/// Boots `image` once in a VM shaped by `vm` (memory, CPUs, a fresh scratch disk when it has
/// one, deadline), `kernel_args` appended to its command line, its console into
/// `run_dir/console.log` and its channel into a [`Collector`] writing `run_dir/samples.jsonl`;
/// `on_sampling` is called once, when the first sample arrives. With `snapshots`, the VM
/// starts from the snapshot of its shape where there is one (else it saves it); a snapshot
/// that does not load is deleted and the VM boots cold.
pub fn boot_vm(
    accel: Accel,
    vm: &VmConfig,
    image: &Image,
    kernel_args: &[String],
    run_dir: &Path,
    snapshots: Option<&SnapshotStore>,
    on_sampling: &dyn Fn(),
) -> Result<(Collector, crate::vm::VmOutput)> {
    let command = QemuCommand {
        binary: qemu_binary(),
        accel,
        memory: vm.memory,
        cpus: vm.cpus,
        kernel: image.kernel.clone(),
        initrd: image.initrd.clone(),
        kernel_args: kernel_args.to_vec(),
        incoming: None,
    };
    let spec_line = serde_json::to_string(&image.spec).context("writing the run spec")?;
    let disk_size = vm.disk.map(|size| size.0);
    let store = snapshots.filter(|_| snapshot_fits(image, disk_size, kernel_args));
    let claim = |store| claim_snapshot(store, &command, disk_size);
    let snapshot = store.map_or(SnapshotUse::Cold, claim);
    let booted = boot_once(&command, vm, &spec_line, snapshot, run_dir, on_sampling);
    match (booted, store) {
        (Err(error), Some(store)) if error.downcast_ref::<RestoreFailed>().is_some() => {
            let failed = error.downcast_ref::<RestoreFailed>().expect("checked");
            tracing::warn!("{failed}; deleted it, booting cold");
            store.discard(&failed.key);
            boot_once(&command, vm, &spec_line, claim(store), run_dir, on_sampling)
        }
        (booted, _) => booted,
    }
}

fn claim_snapshot<'a>(
    store: &'a SnapshotStore,
    command: &QemuCommand,
    disk_size: Option<u64>,
) -> SnapshotUse<'a> {
    store.claim(&store.key_of(command, disk_size))
}

/// Whether a VM can start from a snapshot: not with an injected fault (it acts during boot),
/// and with a scratch disk only when `virtio_blk` is a module the agent loads after the spec
/// (a built-in driver would read the disk during boot, and each run gets a fresh disk).
fn snapshot_fits(image: &Image, disk_size: Option<u64>, kernel_args: &[String]) -> bool {
    let disk_read_after_spec = || {
        image
            .spec
            .modules
            .iter()
            .any(|module| module.starts_with("virtio_blk."))
    };
    kernel_args.is_empty() && (disk_size.is_none() || disk_read_after_spec())
}

/// One VM of [`boot_vm`]: a restored one's console starts with the saving boot's.
fn boot_once(
    command: &QemuCommand,
    vm: &VmConfig,
    spec_line: &str,
    snapshot: SnapshotUse<'_>,
    run_dir: &Path,
    on_sampling: &dyn Fn(),
) -> Result<(Collector, crate::vm::VmOutput)> {
    let disk = vm.disk.map(|size| scratch_disk(size.0)).transpose()?;
    let console_path = run_dir.join(CONSOLE_LOG);
    let mut console = fs::File::create(&console_path)
        .with_context(|| format!("creating {}", console_path.display()))?;
    if let SnapshotUse::Restore(snapshot) = &snapshot {
        let boot_console = fs::read(&snapshot.console).unwrap_or_default();
        console.write_all(&boot_console)?;
        writeln!(
            console,
            "--- rsslab: restored from {} (a snapshot of the boot above, taken when its agent \
             asked for the run spec); this run's own console follows ---",
            snapshot.state.display()
        )?;
    }
    let mut collector = Collector::new(run_dir)?;
    let launch = Launch {
        spec_line: spec_line.to_owned(),
        snapshot,
        console_path: Some(&console_path),
    };
    let output = run_vm(
        command,
        disk.as_ref(),
        vm.timeout.as_duration(),
        console,
        launch,
        &mut |line| {
            let had_sampled = collector.first_sample_ms.is_some();
            let action = collector.line(line);
            if !had_sampled && collector.first_sample_ms.is_some() {
                on_sampling();
            }
            action
        },
    )?;
    collector.flush()?;
    Ok((collector, output))
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

/// Whether `error` comes from a full disk (or an exhausted quota).
pub fn full_disk(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .any(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            ) || matches!(io.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
        })
}
