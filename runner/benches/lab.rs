//! `just bench`: the lab's own speed, printed as Markdown tables (numbers, not pass/fail).
//!
//! 1. **Boot overhead**, per kernel: QEMU start to QEMU exit for a bare boot of the kernel
//!    with a one-file initramfs whose `/init` powers off at once (`rsslab-floor`: the floor),
//!    against an rsslab run of an empty spec (the agent's mounts, hello, sampler set-up,
//!    verdict and power-off; the same QEMU command line), measured in the same bench run,
//!    median of `RSSLAB_BENCH_ROUNDS` (default 3) each.
//! 2. **Sampler overhead** in the guest: the agent's own CPU time (getrusage, reported in its
//!    verdict) over a 10 s run with one idle process, sampling every 1 s, 250 ms and 50 ms;
//!    the marginal CPU time per extra sample is the sampler's cost.
//! 3. **A small lab** (one 2 s heap-churn run per kernel) with `--jobs 1` and `--jobs 2`:
//!    wall time, the time spent outside VMs (with one job: the lab's wall time minus the sum
//!    of its VMs' wall times: planning, image builds, outputs) and the speed-up.
//!
//! `RSSLAB_BENCH_KERNELS=6.1,7.2` limits the kernels; `--accel` is decided as for a lab
//! (`RSSLAB_BENCH_ACCEL=auto|kvm|tcg`, default auto). Needs `just guest` and the network
//! once for the kernels, like a lab.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::ValueEnum;
use flate2::Compression;
use flate2::write::GzEncoder;
use rsslab::catalogue::{default_catalogue_path, load_catalogue};
use rsslab::image::cpio::CpioWriter;
use rsslab::image::empty_spec;
use rsslab::image::{GuestBinaries, Image, build_image, locate_guest_binaries};
use rsslab::lab::execute::boot_vm;
use rsslab::lab::{LabOptions, Probe, decide_accel, run_lab};
use rsslab::scenario::VmConfig;
use rsslab::supply::cache::Cache;
use rsslab::supply::kernel::KernelFiles;
use rsslab::supply::prepare_kernels;
use rsslab::vm::accel::AccelChoice;
use rsslab::vm::qemu::qemu_binary;
use rsslab::vm::{Accel, LineAction, QemuCommand, VmExit, run_vm};
use rsslab_wire::{Bytes, Millis, RunOutcome, RunSpec};

/// Guest memory of the boot measurements (both sides).
const BOOT_MEMORY_MIB: u64 = 256;
const BOOT_DEADLINE: Duration = Duration::from_secs(90);
const FLOOR_NAME: &str = "rsslab-floor";
const FLOOR_MARK: &str = "rsslab-floor: /init reached";

fn main() -> Result<()> {
    let rounds: usize = std::env::var("RSSLAB_BENCH_ROUNDS")
        .ok()
        .map(|n| n.parse().context("RSSLAB_BENCH_ROUNDS"))
        .transpose()?
        .unwrap_or(3)
        .max(1);
    let choice = match std::env::var("RSSLAB_BENCH_ACCEL") {
        Ok(text) => AccelChoice::from_str(&text, true)
            .map_err(|error| anyhow::anyhow!("RSSLAB_BENCH_ACCEL={text}: {error}"))?,
        Err(_) => AccelChoice::Auto,
    };
    let catalogue = load_catalogue(&default_catalogue_path())?;
    let ids: Vec<String> = match std::env::var("RSSLAB_BENCH_KERNELS") {
        Ok(list) => list.split(',').map(|id| id.trim().to_owned()).collect(),
        Err(_) => catalogue.ids(),
    };
    let cache = Cache::default_location()?;
    let bins = locate_guest_binaries()?;
    let kernels = prepare_kernels(&cache, &catalogue, &ids)?;
    let accel = decide_accel(choice, Probe::Remembered, &cache, &kernels[&ids[0]], &bins)
        .map_err(|failure| failure.error)?;
    let scratch = tempfile::tempdir()?;
    let floor_initrd = floor_initrd(&bins, scratch.path())?;
    println!(
        "# rsslab bench: {} · {} ({}) · {rounds} rounds\n",
        qemu_version(),
        accel.accel.as_str(),
        accel.reason
    );

    println!(
        "## Kernel entry: the bare boot of Debian's bzImage against its extracted vmlinux entered through PVH\n"
    );
    println!("| kernel | bzImage | vmlinux (PVH) | saved |");
    println!("|---|---|---|---|");
    for id in &ids {
        let kernel = &kernels[id];
        let Some(vmlinux) = &kernel.vmlinux else {
            println!("| {id} | — | no PVH vmlinux | — |");
            continue;
        };
        let mut bz = Vec::new();
        let mut pvh = Vec::new();
        // Interleaved, so drift of the host's speed touches both alike.
        for _ in 0..rounds {
            bz.push(floor_boot_of(accel.accel, kernel, &kernel.vmlinuz, &floor_initrd)?.wall);
            pvh.push(floor_boot_of(accel.accel, kernel, vmlinux, &floor_initrd)?.wall);
        }
        println!(
            "| {id} | {} | {} | {:.2} s ({:.0}%) |",
            spread(&bz),
            spread(&pvh),
            median(&bz) - median(&pvh),
            100.0 * (median(&bz) - median(&pvh)) / median(&bz)
        );
    }

    println!(
        "\n## Boot: QEMU start to exit, bare kernel + minimal /init (floor) vs an rsslab run of an empty spec\n"
    );
    println!(
        "| kernel | floor | rsslab empty run | overhead | ratio | kernel to /init: floor, rsslab | /init to power-off: floor, rsslab |"
    );
    println!("|---|---|---|---|---|---|---|");
    for id in &ids {
        let kernel = &kernels[id];
        let floor: Vec<Boot> = (0..rounds)
            .map(|_| floor_boot(accel.accel, kernel, &floor_initrd))
            .collect::<Result<_>>()?;
        let image = build_image(&cache, kernel, &empty_spec("bench"), &bins)?;
        let agent: Vec<Boot> = (0..rounds)
            .map(|_| agent_run(accel.accel, &image, Duration::from_secs(5)).map(|run| run.boot))
            .collect::<Result<_>>()?;
        let walls = |boots: &[Boot]| boots.iter().map(|b| b.wall).collect::<Vec<_>>();
        let of = |boots: &[Boot], pick: fn(&Boot) -> f64| {
            median(&boots.iter().map(pick).collect::<Vec<_>>())
        };
        let (floor_wall, agent_wall) = (walls(&floor), walls(&agent));
        println!(
            "| {id} | {} | {} | {:+.2} s | {:.2} | {:.2} s, {:.2} s | {:.2} s, {:.2} s |",
            spread(&floor_wall),
            spread(&agent_wall),
            median(&agent_wall) - median(&floor_wall),
            median(&agent_wall) / median(&floor_wall),
            of(&floor, |b| b.init),
            of(&agent, |b| b.init),
            of(&floor, |b| b.power_off - b.init),
            of(&agent, |b| b.power_off - b.init),
        );
    }
    println!(
        "\nWall is QEMU start to QEMU exit on the host; the other two columns are the guest \
         kernel's own console timestamps (`Run /init`, `reboot: Power down`); the rest of the \
         wall is QEMU, firmware and loading the kernel and initramfs before the kernel's clock \
         starts."
    );

    let sampler_kernel = ids
        .iter()
        .find(|id| *id == "6.1")
        .unwrap_or(&ids[0])
        .clone();
    println!(
        "\n## Sampler: the guest agent's own CPU time over a 10 s run with one idle process ({sampler_kernel})\n"
    );
    println!(
        "| every | samples | agent CPU | share of one vCPU | per extra sample (vs every 1s) |"
    );
    println!("|---|---|---|---|---|");
    let mut baseline: Option<(u64, u64)> = None;
    for every in [Millis::secs(1), Millis(250), Millis(50)] {
        let spec = idle_spec(every, Millis::secs(10))?;
        let image = build_image(&cache, &kernels[&sampler_kernel], &spec, &bins)?;
        let run = agent_run(accel.accel, &image, Duration::from_secs(60))?;
        let cpu = run
            .agent_cpu_ms
            .context("the agent reported no CPU time (an old guest build? run `just guest`)")?;
        let marginal = match baseline {
            None => {
                baseline = Some((run.samples, cpu));
                "—".to_owned()
            }
            Some((samples, base_cpu)) => format!(
                "{:.2} ms",
                (cpu as f64 - base_cpu as f64) / (run.samples as f64 - samples as f64).max(1.0)
            ),
        };
        println!(
            "| {every} | {} | {cpu} ms | {:.1}% | {marginal} |",
            run.samples,
            100.0 * cpu as f64 / 10_000.0
        );
    }
    println!(
        "\nThe agent's CPU time includes its set-up (mounts, modules, cgroup) and its idle loop; \
         the marginal cost of a sample is what an interval costs. Under TCG guest CPU time is \
         emulated: it is 10-50x what the same work costs natively."
    );

    println!(
        "\n## A small lab: one 2 s heap-churn run per kernel ({})\n",
        ids.join(", ")
    );
    println!("| jobs | wall | sum of VM walls | outside VMs |");
    println!("|---|---|---|---|");
    let scenario = scratch.path().join("bench-lab.toml");
    std::fs::write(&scenario, small_lab(&ids))?;
    let mut walls = Vec::new();
    for jobs in [1, 2] {
        let out = scratch.path().join(format!("lab-jobs-{jobs}"));
        let started = Instant::now();
        let summary = run_lab(&LabOptions {
            inputs: vec![scenario.clone()],
            kernels: Vec::new(),
            modules: None,
            out: Some(out.clone()),
            jobs: rsslab::lab::packing::Jobs::AtMost(jobs),
            accel: match accel.accel {
                Accel::Kvm => AccelChoice::Kvm,
                Accel::Tcg => AccelChoice::Tcg,
            },
            boot: Default::default(),
            repeat: 1,
            baseline: None,
            shard: None,
            resume: None,
        })
        .map_err(|failure| failure.error)?;
        let wall = started.elapsed().as_secs_f64();
        ensure!(
            summary.outcomes.values().all(|o| *o == RunOutcome::Ok),
            "a bench lab run failed: {:?} (see {})",
            summary.outcomes,
            out.display()
        );
        let vm_walls: f64 = rsslab::records::load_all(&out)?
            .iter()
            .map(|run| run.record.timing.wall_ms as f64 / 1000.0)
            .sum();
        let outside = if jobs == 1 {
            format!("{:.1} s", wall - vm_walls)
        } else {
            "—".to_owned()
        };
        println!("| {jobs} | {wall:.1} s | {vm_walls:.1} s | {outside} |");
        walls.push(wall);
    }
    println!(
        "\nSpeed-up of --jobs 2 over --jobs 1: {:.2}x",
        walls[0] / walls[1]
    );
    Ok(())
}

/// One boot: host wall time, and the guest kernel's clock at `/init` and at power-off (s).
#[derive(Debug, Clone, Copy)]
struct Boot {
    wall: f64,
    init: f64,
    power_off: f64,
}

impl Boot {
    /// From the host's wall time and the console log's kernel timestamps.
    fn read(wall: Duration, console: &str) -> Result<Boot> {
        let stamp = |marker: &str| -> Result<f64> {
            console
                .lines()
                .find(|line| line.contains(marker))
                .and_then(|line| {
                    line.strip_prefix('[')?
                        .split(']')
                        .next()?
                        .trim()
                        .parse()
                        .ok()
                })
                .with_context(|| format!("no `{marker}` in the console log:\n{console}"))
        };
        Ok(Boot {
            wall: wall.as_secs_f64(),
            init: stamp("Run /init as init process")?,
            power_off: stamp("reboot: Power down")?,
        })
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// `3.91 s (3.80–4.10)`.
fn spread(values: &[f64]) -> String {
    let (low, high) = values
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), &v| (l.min(v), h.max(v)));
    if values.len() == 1 {
        format!("{:.2} s", values[0])
    } else {
        format!("{:.2} s ({low:.2}–{high:.2})", median(values))
    }
}

/// A gzip'd cpio holding `/dev/console` and `rsslab-floor` as `/init`, compressed like
/// rsslab's images.
fn floor_initrd(bins: &GuestBinaries, dir: &Path) -> Result<PathBuf> {
    let floor = bins.agent.with_file_name(FLOOR_NAME);
    let program = std::fs::read(&floor)
        .with_context(|| format!("reading {} (run `just guest`)", floor.display()))?;
    let path = dir.join("floor.cpio.gz");
    let mut cpio = CpioWriter::new(GzEncoder::new(
        std::fs::File::create(&path)?,
        Compression::default(),
    ));
    cpio.dir("/dev", 0o755)?;
    cpio.char_device("/dev/console", 0o600, 5, 1)?;
    cpio.file("/init", 0o755, &program)?;
    cpio.finish()?.finish()?;
    Ok(path)
}

/// One bare boot: QEMU start to exit; the floor's init must have run.
fn floor_boot(accel: Accel, kernel: &KernelFiles, initrd: &Path) -> Result<Boot> {
    floor_boot_of(accel, kernel, kernel.boot_image(), initrd)
}

/// A bare boot of `image` (the bzImage or the extracted vmlinux of `kernel`).
fn floor_boot_of(accel: Accel, kernel: &KernelFiles, image: &Path, initrd: &Path) -> Result<Boot> {
    let dir = tempfile::tempdir()?;
    let command = QemuCommand {
        binary: qemu_binary(),
        accel,
        memory: Bytes::mib(BOOT_MEMORY_MIB),
        cpus: 1,
        kernel: image.to_owned(),
        initrd: initrd.to_owned(),
        kernel_args: Vec::new(),
        incoming: None,
    };
    let console = dir.path().join("console.log");
    let output = run_vm(
        &command,
        None,
        BOOT_DEADLINE,
        std::fs::File::create(&console)?,
        rsslab::vm::Launch::cold(String::new()),
        &mut |_| LineAction::Continue,
    )?;
    let log = std::fs::read_to_string(&console)?;
    if output.exit != VmExit::Exited(Some(0)) || !log.contains(FLOOR_MARK) {
        bail!(
            "the floor boot of {} did not power off cleanly ({:?}):\n{log}",
            kernel.release,
            output.exit
        );
    }
    Boot::read(output.wall, &log)
}

/// What an rsslab boot measured.
struct AgentRun {
    boot: Boot,
    samples: u64,
    agent_cpu_ms: Option<u64>,
}

/// One rsslab boot of `image`, through the lab's own [`boot_vm`]; it must end with an `ok`
/// verdict.
fn agent_run(accel: Accel, image: &Image, slack: Duration) -> Result<AgentRun> {
    let dir = tempfile::tempdir()?;
    let vm = VmConfig {
        memory: Bytes::mib(BOOT_MEMORY_MIB),
        cpus: 1,
        disk: None,
        timeout: Millis(
            (image.spec.duration.as_duration() + BOOT_DEADLINE + slack).as_millis() as u64,
        ),
    };
    let (collector, output) = boot_vm(accel, &vm, image, &[], dir.path(), None, &|| {})?;
    let verdict = collector.verdict.as_ref().with_context(|| {
        format!(
            "no verdict ({:?}); console:\n{}",
            output.exit,
            std::fs::read_to_string(dir.path().join("console.log")).unwrap_or_default()
        )
    })?;
    ensure!(
        verdict.outcome == RunOutcome::Ok,
        "the bench run ended {}: {:?}",
        verdict.outcome,
        verdict.reason
    );
    let console = std::fs::read_to_string(dir.path().join("console.log"))?;
    Ok(AgentRun {
        boot: Boot::read(output.wall, &console)?,
        samples: collector.sample_count,
        agent_cpu_ms: verdict.agent_cpu_ms,
    })
}

/// A spec with one process that holds 1MiB and sleeps, sampled every `every` for `duration`.
fn idle_spec(every: Millis, duration: Millis) -> Result<RunSpec> {
    let source = format!(
        "[scenario]\nid = \"bench-sampler\"\ntitle = \"sampler\"\n[vm]\nkernels = [\"6.1\"]\n\
         [sample]\nevery = \"{every}\"\nduration = \"{duration}\"\n\
         [[process]]\nname = \"idle\"\nworkload = \"hog\"\nargs = {{ size = \"1MiB\" }}\n"
    );
    let scenario = rsslab::scenario::parse_scenario(
        Path::new("bench-sampler.toml"),
        &source,
        &["6.1".to_owned()],
    )
    .map_err(|error| anyhow::anyhow!("{error}"))?;
    let plan = rsslab::plan::plan(&[scenario], &Default::default());
    Ok(plan.runs[0].spec.clone())
}

/// One short heap-churn run on each of `kernels`.
fn small_lab(kernels: &[String]) -> String {
    let list: Vec<String> = kernels.iter().map(|id| format!("\"{id}\"")).collect();
    format!(
        "[scenario]\nid = \"bench-lab\"\ntitle = \"bench\"\n[vm]\nkernels = [{}]\nmemory = \"256MiB\"\n\
         [sample]\nevery = \"250ms\"\nduration = \"2s\"\n\
         [[process]]\nname = \"service\"\nworkload = \"heap-churn\"\nargs = {{ heap = \"16MiB\", live = \"4MiB\" }}\n",
        list.join(", ")
    )
}

fn qemu_version() -> String {
    rsslab::records::provenance::host_provenance().qemu_version
}
