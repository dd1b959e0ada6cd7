//! What one finished run leaves behind: `run.json` ([`RunRecord`]) beside `samples.jsonl` and
//! `console.log` in `runs/<scenario>/<kernel>[/<variant>]/`.
//!
//! Raw records are written as each run ends, before anything is summarised, so a report can be
//! rebuilt from the files alone (`rsslab report DIR`) and an interrupted lab loses nothing it
//! finished. [`collect`] turns what the guest sends into a record, [`provenance`] says what
//! produced it, [`facts`] checks the kernel facts the run relied on against what the guest
//! probed, [`load_all`] reads every record of an output directory back, and [`testing`]
//! makes plausible fake records for the tests and benchmarks of the stages after this one.

pub mod collect;
pub mod facts;
pub mod provenance;
pub mod testing;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rsslab_wire::message::ProcessResult;
use rsslab_wire::{Event, Hello, Metrics, RunOutcome, RunSpec, Sample};
use serde::{Deserialize, Serialize};

use crate::plan::RUNS_DIR;

/// File names inside a run's directory.
pub const RUN_JSON: &str = "run.json";
pub const SAMPLES_JSONL: &str = "samples.jsonl";
pub const CONSOLE_LOG: &str = "console.log";
/// The file in a run's directory that holds what `process` wrote on `stream`
/// (`service.stdout`); `None` for a name that is not a process name of a scenario (the guest
/// is not trusted to name files).
pub fn output_file_name(process: &str, stream: rsslab_wire::Stream) -> Option<String> {
    rsslab_wire::spec::is_plain_name(process).then(|| format!("{process}.{}", stream.as_str()))
}

/// The output files a run of `spec` may hold: process, stream, file name, in process order.
pub fn output_files(spec: &RunSpec) -> Vec<(&str, rsslab_wire::Stream, String)> {
    let streams = [rsslab_wire::Stream::Stdout, rsslab_wire::Stream::Stderr];
    spec.processes
        .iter()
        .flat_map(|process| streams.map(|stream| (process.name.as_str(), stream)))
        .filter_map(|(process, stream)| {
            output_file_name(process, stream).map(|name| (process, stream, name))
        })
        .collect()
}

/// The scenario file as it ran, saved once per scenario in `runs/<scenario>/`.
pub const SCENARIO_TOML: &str = "scenario.toml";

/// `run.json`: one VM run, as the host saw it end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Scenario id.
    pub scenario: String,
    /// Scenario title, for the report.
    pub title: String,
    /// Scenario story (Markdown), for the report.
    #[serde(default)]
    pub story: String,
    /// Kernel catalogue id (`6.1`).
    pub kernel: String,
    /// `uname -r` in the guest, when the guest got far enough to say.
    pub kernel_release: Option<String>,
    /// Matrix overrides of this variant (`process.service.args.release` -> `"free"`); empty
    /// when the scenario has no matrix.
    pub variant: BTreeMap<String, String>,
    /// Short label of the variant (`release=free`), also its directory name; empty without a matrix.
    pub variant_label: String,
    /// `kvm` or `tcg`.
    pub accel: String,
    /// Why that accelerator: the KVM probe boot's result in one line (`/dev/kvm opens but a
    /// probe boot failed (...); using TCG`). Absent in records written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accel_reason: Option<String>,
    pub outcome: RunOutcome,
    /// Why, when the outcome is not `ok`.
    pub reason: Option<String>,
    /// VM boots it took (a kernel panic is retried once).
    pub attempts: u32,
    /// Per process: outcome and peaks, from the verdict.
    pub processes: BTreeMap<String, ProcessResult>,
    /// The cgroup's kernel high-water marks.
    pub cgroup_peak: Metrics,
    /// Every event, in order.
    pub events: Vec<Event>,
    /// The guest's hello.
    pub hello: Option<Hello>,
    /// Timing as measured on the host.
    pub timing: Timing,
    /// Where the inputs came from.
    pub provenance: Provenance,
    /// The spec the guest ran.
    pub spec: RunSpec,
    /// This run's directory relative to the output directory (`runs/demo/6.1/release=free`).
    pub dir: String,
    /// Which repetition of its scenario, kernel and variant (1-based; `--repeat`).
    #[serde(default = "first_repeat")]
    pub repeat: u32,
    /// The scenario's expectations, so a report rebuilt from records evaluates them.
    #[serde(default)]
    pub expectations: Vec<crate::scenario::expect::Expectation>,
    /// The catalogue's facts of the kernel, for the expectations' `when`.
    #[serde(default)]
    pub kernel_facts: Option<crate::catalogue::KernelFacts>,
    /// Facts of `kernel_facts` that the guest's hello found otherwise
    /// ([`facts::record_fact_mismatches`]); absent when there are none (and in records written
    /// before they were checked).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fact_mismatches: Vec<facts::FactMismatch>,
}

fn first_repeat() -> u32 {
    1
}

/// Host-side timing of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// When QEMU was started (RFC 3339, UTC).
    pub started_at: String,
    /// QEMU start to QEMU exit, in ms.
    pub wall_ms: u64,
    /// QEMU start to the first sample arriving, in ms (boot + set-up).
    pub boot_to_first_sample_ms: Option<u64>,
    /// CPU time the guest agent used (its sampling, mostly), in ms, as it measured itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_cpu_ms: Option<u64>,
    /// CPU time QEMU used on the host (all its threads), in ms: with `wall_ms`, the run's
    /// share of a host core, which the lab's packing learns from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qemu_cpu_ms: Option<u64>,
    /// How the guest came up: booted (`cold`), booted and saved the snapshot others start
    /// from (`saved`), or started from that snapshot (`restored`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<crate::vm::BootKind>,
}

/// What produced the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// Kernel packages: name, version, sha256.
    pub kernel_packages: Vec<PackageProvenance>,
    /// `qemu-system-x86_64 --version`, first line.
    pub qemu_version: String,
    /// Host name of the machine that ran the VM.
    pub host: String,
    /// rsslab's version and git revision.
    pub rsslab_version: String,
    pub git_revision: Option<String>,
    /// sha256 of the scenario file.
    pub scenario_sha256: String,
    /// Path of the scenario file as given.
    pub scenario_path: String,
    /// sha256 of the initramfs the VM booted.
    pub image_digest: String,
}

/// One kernel package a run booted from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PackageProvenance {
    pub name: String,
    pub version: String,
    pub sha256: String,
}

/// A run's raw files loaded back: the record and its samples.
#[derive(Debug, Clone)]
pub struct LoadedRun {
    pub record: RunRecord,
    pub samples: Vec<Sample>,
}

impl RunRecord {
    /// Writes `run.json` into `run_dir`, atomically: a run's record is its last file, and a
    /// run interrupted while writing it leaves no record rather than half of one.
    pub fn write(&self, run_dir: &Path) -> Result<()> {
        let path = run_dir.join(RUN_JSON);
        let json = serde_json::to_string_pretty(self)?;
        crate::files::write_atomically(&path, (json + "\n").as_bytes())
            .with_context(|| format!("writing {}", path.display()))
    }
}

/// Every run directory under `out_dir/runs` that holds a `run.json`, sorted by path.
pub fn find_run_dirs(out_dir: &Path) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
        let entries = fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                if path.join(RUN_JSON).is_file() {
                    found.push(path.clone());
                }
                walk(&path, found)?;
            }
        }
        Ok(())
    }
    let mut found = Vec::new();
    let runs = out_dir.join(RUNS_DIR);
    if runs.is_dir() {
        walk(&runs, &mut found)?;
    }
    found.sort();
    Ok(found)
}

/// Loads one run's `run.json` and `samples.jsonl` (a missing samples file is an empty series).
pub fn load_run(run_dir: &Path) -> Result<LoadedRun> {
    let path = run_dir.join(RUN_JSON);
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let record: RunRecord =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let samples_path = run_dir.join(SAMPLES_JSONL);
    let mut samples = Vec::new();
    if samples_path.is_file() {
        let file = fs::File::open(&samples_path)
            .with_context(|| format!("opening {}", samples_path.display()))?;
        for (number, line) in BufReader::new(file).lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let sample = serde_json::from_str(&line).with_context(|| {
                format!("{}:{}: not a sample", samples_path.display(), number + 1)
            })?;
            samples.push(sample);
        }
    }
    Ok(LoadedRun { record, samples })
}

/// Loads every run under `out_dir`.
pub fn load_all(out_dir: &Path) -> Result<Vec<LoadedRun>> {
    find_run_dirs(out_dir)?
        .iter()
        .map(|dir| load_run(dir))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::testing::fake_run;

    #[test]
    fn records_written_before_expectations_still_load() {
        let run = fake_run("demo", "6.1", "free");
        let mut value = serde_json::to_value(&run.record).unwrap();
        let object = value.as_object_mut().unwrap();
        object.remove("expectations").unwrap();
        object.remove("kernel_facts").unwrap();
        assert!(
            !object.contains_key("fact_mismatches"),
            "no mismatches: not written"
        );
        let record: RunRecord = serde_json::from_value(value).unwrap();
        assert!(record.expectations.is_empty());
        assert_eq!(record.kernel_facts, None);
        assert!(record.fact_mismatches.is_empty());
    }

    #[test]
    fn fact_mismatches_are_written_and_read_back() {
        let run = crate::records::testing::fact_mismatch_run();
        assert!(!run.record.fact_mismatches.is_empty());
        let json = serde_json::to_string(&run.record).unwrap();
        assert!(json.contains("\"fact_mismatches\""), "{json}");
        let back: RunRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, run.record);
    }
}
