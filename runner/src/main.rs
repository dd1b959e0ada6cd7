//! The `rsslab` command line: a thin layer over the library's pipeline. `main` maps the one
//! `run()` result to an exit code (0 ok, 1 expectation failed, 2 bad input, 3 infrastructure).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::anyhow;
use clap::{Parser, Subcommand};
use rsslab::analysis::diff::compare_with_baseline;
use rsslab::exit::{self, Failure};
use rsslab::lab::packing::Jobs;
use rsslab::lab::{self, LabOptions};
use rsslab::output::{Outputs, write_outputs};
use rsslab::plan::load_plan;
use rsslab::plan::shard::Shard;
use rsslab::vm::accel::AccelChoice;
use rsslab::vm::snapshot::BootChoice;

/// Reproducible lab for Linux memory behaviour of services: runs TOML scenarios in QEMU VMs
/// on real kernels and writes one self-contained HTML report.
#[derive(Debug, Parser)]
#[command(name = "rsslab", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run scenarios (files or directories; default: scenarios/) and write a report.
    Run {
        /// Scenario files or directories of them.
        paths: Vec<PathBuf>,
        /// Kernels, repeatable: a catalogue id (6.1) keeps only those of each scenario's
        /// kernels; a Debian kernel by version (debian:6.12.57, debian:7.2, debian:6.1.176-1,
        /// with :generic, :cloud (default) or :rt) or a kernel file (bzImage, vmlinux or a
        /// linux-image-*.deb) runs every scenario on it.
        #[arg(long = "kernel", value_name = "KERNEL")]
        kernels: Vec<String>,
        /// Modules for the kernel files of --kernel: a directory holding lib/modules/<release>
        /// (as `make modules_install INSTALL_MOD_PATH=DIR` writes it) or that directory itself.
        #[arg(long, value_name = "DIR")]
        modules: Option<PathBuf>,
        /// Output directory. Default: reports/<UTC timestamp> (and reports/latest points to it).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// VMs run at once, at most. Default: as many as the host's memory and idle CPU carry.
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
        /// KVM only if a probe boot works (auto), or force kvm / tcg.
        #[arg(long, value_enum, default_value_t = AccelChoice::Auto)]
        accel: AccelChoice,
        /// snapshot: start each VM from a snapshot of a booted guest of its shape (kernel,
        /// image, memory, CPUs), saved by the first VM of that shape, kept in the cache;
        /// cold: boot every VM's kernel.
        #[arg(long, value_enum, default_value_t = BootChoice::Snapshot)]
        boot: BootChoice,
        /// Run every scenario, kernel and variant N times (repeats after the first go into
        /// <run dir>/repeat-<r>), so comparisons can tell a change from noise.
        #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
        repeat: u32,
        /// Compare with this earlier lab's output directory; exit 1 on a regression.
        #[arg(long, value_name = "DIR")]
        baseline: Option<PathBuf>,
        /// Run only slice I of N of the plan (1 <= I <= N), e.g. one CI runner's share;
        /// `rsslab merge` joins the shards' output directories.
        #[arg(long, value_name = "I/N")]
        shard: Option<Shard>,
        /// Finish the lab in DIR: run again only its runs without a finished record (ok or
        /// unsupported), planned from DIR's lab.json and scenario copies, then rewrite its
        /// outputs.
        #[arg(long, value_name = "DIR", conflicts_with_all = ["paths", "kernels", "modules", "out", "repeat", "shard"])]
        resume: Option<PathBuf>,
    },
    /// Validate scenarios without running anything (exit 2 on bad input).
    Check {
        /// Scenario files or directories of them. Default: scenarios/.
        paths: Vec<PathBuf>,
        /// Print the result as JSON on stdout: the scenarios and their runs, or each error with
        /// its file, line, column, key, message and help.
        #[arg(long)]
        json: bool,
    },
    /// Rebuild results.json and index.html of a lab from its raw records, re-evaluating its
    /// expectations (exit 1 when one failed).
    Report {
        /// A lab's output directory (reports/<id>).
        dir: PathBuf,
        /// Compare with this earlier lab (kept in DIR/comparison.json); exit 1 on a regression.
        #[arg(long, value_name = "BASE", conflicts_with = "scenario")]
        baseline: Option<PathBuf>,
        /// Write only a focused report of this scenario, DIR/index-<ID>.html (its runs and
        /// their records alone, small enough to attach); the other outputs stay as they are.
        #[arg(long, value_name = "ID")]
        scenario: Option<String>,
    },
    /// Compare two labs: outcome transitions, expectations that flipped and key numbers that
    /// moved beyond run-to-run noise, as Markdown on stdout; exit 1 on a regression.
    Diff {
        /// The baseline lab's output directory.
        base: PathBuf,
        /// The new lab's output directory.
        new: PathBuf,
    },
    /// Join the raw records of several labs' output directories (the shards of one plan) into
    /// one and write all outputs (exit 1 when an expectation failed).
    Merge {
        /// Output directories of `rsslab run` (e.g. one per --shard).
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// The merged output directory: new, or without runs yet.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Write every sample of a lab for other tools: a tidy CSV (pandas, R), the OpenMetrics
    /// text (promtool tsdb create-blocks-from openmetrics, then Prometheus and Grafana) or
    /// Prometheus' text format (promtool check metrics); or every chart as its own SVG or PNG
    /// file, named after its run, for a document. Prints the file (or directory) written.
    Export {
        /// A lab's output directory (reports/<id>).
        dir: PathBuf,
        /// csv (a tidy table), openmetrics (for promtool tsdb create-blocks-from openmetrics),
        /// prometheus (Prometheus' text format, for promtool check metrics), svg or png (the
        /// charts: <scenario>_<kernel>[_<variant>]_<chart>.svg, <chart> one of processes,
        /// cgroup-and-guest, pressure, reclaim, and <scenario>[_<variant>]_kernels).
        #[arg(long, value_enum)]
        format: rsslab::output::export::ExportFormat,
        /// The file to write (a directory for svg and png). Default: DIR/exports/samples.csv,
        /// samples.om.txt, samples.prom, charts-svg/ or charts-png/.
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
    },
    /// Extract the raw records a report embeds into DIR/runs/, so that `rsslab report DIR`
    /// rebuilds it (and anything else can re-analyse them).
    Unpack {
        /// A report written by rsslab (index.html).
        report: PathBuf,
        /// Where to write runs/ (created; must not hold a runs/ already).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Fetch and verify kernels and build guest images, without running.
    Images {
        /// Only these kernels (catalogue ids or Debian versions, as for `run`); repeatable.
        /// Default: every kernel in the catalogue.
        #[arg(long = "kernel", value_name = "KERNEL")]
        kernels: Vec<String>,
    },
    /// List the Debian kernels the archive holds (verified from its signature), per flavour,
    /// and which are cached.
    Kernels {
        /// Only this flavour: generic, cloud or rt.
        #[arg(long, value_name = "FLAVOUR")]
        flavour: Option<String>,
        /// Print the kernels as a JSON array on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Find the first Debian kernel version between a good and a bad one whose verdict on a
    /// scenario differs from the good one's (binary search, one lab per version tried).
    Bisect {
        /// The scenario file.
        scenario: PathBuf,
        /// A version whose verdict is the reference (debian:6.1, debian:6.12.57:rt, ...).
        #[arg(long, value_name = "KERNEL")]
        good: String,
        /// A version whose verdict differs (same flavour).
        #[arg(long, value_name = "KERNEL")]
        bad: String,
        /// Only these expectations (by name) make the verdict; repeatable. Default: all, and
        /// each run's outcome.
        #[arg(long, value_name = "NAME")]
        expect: Vec<String>,
        /// Runs per version; repeats that disagree stop the bisect as flaky.
        #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
        repeat: u32,
        /// Output directory. Default: reports/bisect-<UTC timestamp>.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// VMs run at once, at most. Default: as many as the host carries.
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
        #[arg(long, value_enum, default_value_t = AccelChoice::Auto)]
        accel: AccelChoice,
    },
    /// Check this host: QEMU, KVM, mkfs.ext4, the archive, the cache, the guest binaries.
    Doctor {
        /// Print the checks as JSON on stdout (name, status ok/warn/fail, detail, fix).
        #[arg(long)]
        json: bool,
    },
    /// Print a completion script for SHELL to stdout, e.g.
    /// `rsslab completions bash > ~/.local/share/bash-completion/completions/rsslab`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout (`rsslab man | man -l -`), or with --out write one
    /// page per command into DIR (rsslab.1, rsslab-run.1, ...; `just man` writes target/man).
    #[command(hide = true)]
    Man {
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

/// Ctrl-C and SIGTERM stop every VM; the lab keeps its finished runs.
fn stop_vms_on_signal() -> Result<(), Failure> {
    ctrlc::set_handler(|| {
        eprintln!("\nrsslab: stopping: killing VMs, keeping finished runs");
        rsslab::vm::request_stop();
    })
    .map_err(|error| Failure::infrastructure(anyhow!("installing the signal handler: {error}")))
}

/// `--jobs N`: at most N at once; not given: as many as the host carries.
fn jobs_of(jobs: Option<usize>) -> Jobs {
    jobs.map_or(Jobs::Auto, |jobs| Jobs::AtMost(jobs.max(1)))
}

/// A `--kernel` that names a file, as an absolute path (so `lab.json` resumes anywhere).
fn absolute_kernel_path(kernel: &str) -> String {
    if rsslab::catalogue::reference::looks_like_path(kernel)
        && !kernel.starts_with(rsslab::catalogue::reference::DEBIAN_PREFIX)
    {
        std::path::absolute(kernel)
            .map_or_else(|_| kernel.to_owned(), |path| path.display().to_string())
    } else {
        kernel.to_owned()
    }
}

fn default_paths(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    if paths.is_empty() {
        vec![PathBuf::from("scenarios")]
    } else {
        paths
    }
}

fn run(cli: Cli) -> Result<u8, Failure> {
    match cli.command {
        Command::Run {
            paths,
            kernels,
            modules,
            out,
            jobs,
            accel,
            boot,
            repeat,
            baseline,
            shard,
            resume,
        } => {
            stop_vms_on_signal()?;
            let jobs = jobs_of(jobs);
            let options = LabOptions {
                inputs: default_paths(paths),
                kernels: kernels
                    .iter()
                    .map(|kernel| absolute_kernel_path(kernel))
                    .collect(),
                modules: modules.map(|dir| std::path::absolute(&dir).unwrap_or(dir)),
                out,
                jobs,
                accel,
                boot,
                repeat,
                baseline,
                shard,
                resume,
            };
            let summary = lab::run_lab(&options)?;
            eprintln!(
                "rsslab: report: {}",
                summary.out_dir.join("index.html").display()
            );
            if rsslab::vm::stop_requested() {
                return Err(Failure::infrastructure(anyhow!(
                    "interrupted; finished runs are kept in {0}; `rsslab run --resume {0}` runs the rest",
                    summary.out_dir.display()
                )));
            }
            let failures = summary.infra_failures();
            if failures > 0 {
                eprintln!(
                    "rsslab: {failures} of {} runs failed for infrastructure reasons (see the report); \
                     `rsslab run --resume {}` runs them again",
                    summary.outcomes.len(),
                    summary.out_dir.display()
                );
                return Ok(exit::INFRASTRUCTURE);
            }
            Ok(verdict(&summary.failed_expectations, summary.regressions))
        }
        Command::Check { paths, json } => {
            let paths = default_paths(paths);
            let plan = match load_plan(&paths, &[]) {
                Ok((_, plan)) => plan,
                Err(failure) if json => {
                    let Some(error) = failure
                        .error
                        .downcast_ref::<rsslab::scenario::ScenarioError>()
                    else {
                        return Err(failure);
                    };
                    println!("{}", check_json(&[], Some(error), &[]));
                    return Ok(failure.code);
                }
                Err(failure) => return Err(failure),
            };
            let mut scenarios: Vec<(&str, usize)> = Vec::new();
            for run in &plan.runs {
                match scenarios.last_mut() {
                    Some((id, runs)) if *id == run.scenario => *runs += 1,
                    _ => scenarios.push((&run.scenario, 1)),
                }
            }
            if !json {
                for warning in &plan.warnings {
                    eprint!("{warning}");
                }
            }
            if json {
                println!("{}", check_json(&scenarios, None, &plan.warnings));
            } else {
                println!(
                    "ok: {} scenarios, {} runs",
                    scenarios.len(),
                    plan.runs.len()
                );
            }
            Ok(exit::OK)
        }
        Command::Report {
            dir,
            baseline,
            scenario,
        } => {
            if !dir.join(rsslab::plan::RUNS_DIR).is_dir() {
                return Err(Failure::bad_input(anyhow!(
                    "{}: no runs/ directory: not a lab output directory",
                    dir.display()
                )));
            }
            if let Some(scenario) = scenario {
                let runs =
                    rsslab::output::scenario_runs(&dir, &scenario).map_err(Failure::bad_input)?;
                let (path, failed) = rsslab::output::write_focused_report(&dir, &runs)?;
                println!("{}", path.display());
                return Ok(verdict(&failed, 0));
            }
            if let Some(baseline) = &baseline {
                lab::check_lab_dir(baseline, "--baseline")?;
                compare_with_baseline(baseline, &dir, catalogue().as_ref())?;
            }
            let outputs = write_outputs(&dir)?;
            Ok(outputs_exit(&outputs))
        }
        Command::Diff { base, new } => {
            lab::check_lab_dir(&base, "BASE")?;
            lab::check_lab_dir(&new, "NEW")?;
            let comparison =
                rsslab::analysis::diff::compare_dirs(&base, &new, catalogue().as_ref())?;
            print!("{}", rsslab::output::markdown::markdown(&comparison));
            Ok(verdict(&[], comparison.regressions()))
        }
        Command::Merge { dirs, out } => {
            let merged = rsslab::lab::merge::merge_raw_records(&dirs, &out)?;
            eprintln!(
                "rsslab: merged {} runs of {} directories into {}",
                merged.runs,
                dirs.len(),
                out.display()
            );
            let outputs = write_outputs(&out)?;
            Ok(outputs_exit(&outputs))
        }
        Command::Export { dir, format, out } => {
            let exported = rsslab::output::export::export(&dir, format, out.as_deref())
                .map_err(Failure::bad_input)?;
            println!("{}", exported.path.display());
            if exported.path.is_dir() {
                eprintln!(
                    "rsslab: {} charts in {}",
                    exported.files,
                    exported.path.display()
                );
            }
            Ok(exit::OK)
        }
        Command::Unpack { report, out } => {
            let unpacked =
                rsslab::output::report::unpack_report(&report, &out).map_err(Failure::bad_input)?;
            println!(
                "{}: {} runs ({} files); rebuild the report with: rsslab report {}",
                out.display(),
                unpacked.runs,
                unpacked.files.len(),
                out.display()
            );
            Ok(exit::OK)
        }
        Command::Images { kernels } => {
            rsslab::lab::images::build_all(&kernels)?;
            Ok(exit::OK)
        }
        Command::Kernels { flavour, json } => {
            rsslab::lab::listing::print_archive_kernels(flavour.as_deref(), json)?;
            Ok(exit::OK)
        }
        Command::Bisect {
            scenario,
            good,
            bad,
            expect,
            repeat,
            out,
            jobs,
            accel,
        } => {
            stop_vms_on_signal()?;
            let options = rsslab::lab::bisect::BisectOptions {
                scenario,
                good,
                bad,
                expect,
                repeat,
                out,
                jobs: jobs_of(jobs),
                accel,
            };
            let found = rsslab::lab::bisect::bisect(&options)?;
            println!(
                "first bad: {} (last good: {}); {} versions tried; {}",
                found.first_bad,
                found.last_good,
                found.tried.len(),
                found.out_dir.join("bisect.md").display()
            );
            Ok(exit::OK)
        }
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "rsslab", &mut std::io::stdout());
            Ok(exit::OK)
        }
        Command::Man { out } => {
            let command = <Cli as clap::CommandFactory>::command();
            let written = match &out {
                Some(dir) => std::fs::create_dir_all(dir)
                    .and_then(|()| clap_mangen::generate_to(command, dir)),
                None => clap_mangen::Man::new(command).render(&mut std::io::stdout()),
            };
            written.map_err(|error| {
                Failure::infrastructure(anyhow!("writing the man page: {error}"))
            })?;
            if let Some(dir) = out {
                println!("{}", dir.display());
            }
            Ok(exit::OK)
        }
        Command::Doctor { json } => Ok(if rsslab::lab::doctor::doctor(json) {
            exit::OK
        } else {
            exit::INFRASTRUCTURE
        }),
    }
}

/// The kernel catalogue for known behaviour changes; a comparison without it still works.
fn catalogue() -> Option<rsslab::catalogue::Catalogue> {
    rsslab::catalogue::load_catalogue(&rsslab::catalogue::default_catalogue_path())
        .inspect_err(|error| {
            eprintln!("rsslab: no known kernel behaviour changes (catalogue: {error:#})")
        })
        .ok()
}

/// How many failed expectations the verdict names on stderr; the report has them all.
const NAMED_FAILURES: usize = 10;

/// Exit 1 when an expectation failed or something regressed, saying which; else 0.
fn verdict(failed_expectations: &[String], regressions: usize) -> u8 {
    if !failed_expectations.is_empty() {
        eprintln!(
            "rsslab: {} failed (see the report):",
            expectations(failed_expectations.len())
        );
        for line in failed_expectations.iter().take(NAMED_FAILURES) {
            eprintln!("rsslab:   {line}");
        }
        if failed_expectations.len() > NAMED_FAILURES {
            eprintln!(
                "rsslab:   … and {} more",
                failed_expectations.len() - NAMED_FAILURES
            );
        }
    }
    if regressions > 0 {
        eprintln!(
            "rsslab: {regressions} regression{} against the baseline",
            if regressions == 1 { "" } else { "s" }
        );
    }
    if !failed_expectations.is_empty() || regressions > 0 {
        exit::EXPECTATION_FAILED
    } else {
        exit::OK
    }
}

/// Prints the report's path; exit 1 when an expectation failed or something regressed
/// (`report`, `merge`).
fn outputs_exit(outputs: &Outputs) -> u8 {
    println!("{}", outputs.index.display());
    verdict(&outputs.failed_expectations, outputs.regressions)
}

/// `rsslab check --json`: `{"ok": true, "scenarios": [{"id", "runs"}], "runs": N}`, or
/// `{"ok": false, "errors": [{"file", "line", "column", "key", "message", "label", "help",
/// "notes"}]}`.
fn check_json(
    scenarios: &[(&str, usize)],
    error: Option<&rsslab::scenario::ScenarioError>,
    warnings: &[rsslab::scenario::Diagnostic],
) -> String {
    let diagnostic = |d: &rsslab::scenario::Diagnostic| {
        serde_json::json!({
            "file": d.file,
            "line": d.line,
            "column": d.column,
            "key": d.key,
            "message": d.message,
            "label": d.label,
            "help": d.help,
            "notes": d.notes,
        })
    };
    let value = match error {
        None => serde_json::json!({
            "ok": true,
            "warnings": warnings.iter().map(diagnostic).collect::<Vec<_>>(),
            "scenarios": scenarios
                .iter()
                .map(|(id, runs)| serde_json::json!({ "id": id, "runs": runs }))
                .collect::<Vec<_>>(),
            "runs": scenarios.iter().map(|(_, runs)| runs).sum::<usize>(),
        }),
        Some(error) => serde_json::json!({
            "ok": false,
            "errors": error.diagnostics().iter().map(diagnostic).collect::<Vec<_>>(),
        }),
    };
    serde_json::to_string_pretty(&value).expect("JSON of plain values")
}

/// `1 expectation`, `2 expectations`.
fn expectations(count: usize) -> String {
    if count == 1 {
        "1 expectation".to_string()
    } else {
        format!("{count} expectations")
    }
}

#[cfg(test)]
mod workflow_tests;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RSSLAB_LOG")
                .unwrap_or_else(|_| "rsslab=info".into()),
        )
        .with_writer(std::io::stderr)
        .without_time()
        .init();
    match run(Cli::parse()) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            // Scenario errors draw themselves, each with its own `error:` line.
            if failure.error.is::<rsslab::scenario::ScenarioError>() {
                eprintln!("{failure}");
            } else {
                eprintln!("error: {failure}");
            }
            ExitCode::from(failure.code)
        }
    }
}
