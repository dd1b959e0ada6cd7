//! `results.json`: the machine-readable summary of a lab, built from the raw run records alone.
//!
//! The shape is a contract: CI jobs, `rsslab diff` and people's
//! scripts read it, and `junit.xml` and `summary.md` ([`crate::output`]) are rendered from it.
//! Every field is documented on the structs below; sizes are bytes, times milliseconds. Fields
//! are only ever added, never renamed or removed.
//!
//! ```json
//! {
//!   "generated_at": "2025-01-01T12:00:00Z",
//!   "rsslab_version": "0.1.0",
//!   "runs": [
//!     {
//!       "scenario": "go-madvfree-balloon", "title": "...", "kernel": "6.1",
//!       "kernel_release": "6.1.0-28-cloud-amd64",
//!       "variant": { "process.service.go": "1.15" }, "variant_label": "go=1.15",
//!       "accel": "kvm", "outcome": "ok", "reason": null, "attempts": 1,
//!       "processes": {
//!         "service": {
//!           "outcome": "running-at-end", "peak": { "rss": 423624704, "lazyfree": 367001600 },
//!           "started_ms": 180, "ended_ms": 30100
//!         }
//!       },
//!       "cgroup_peak": { "usage": 442499072 },
//!       "pods": {
//!         "web": {
//!           "qos": "Burstable", "values": { "memory.max": "167772160" },
//!           "peak": { "working_set": 52219904 },
//!           "containers": {
//!             "api": {
//!               "values": { "memory.max": "134217728", "memory.oom.group": "1" },
//!               "oom_score_adj": 796, "peak": { "working_set": 134103040, "rss": 133234688 },
//!               "events": { "oom_kill": 2, "oom_group_kill": 1, "max": 37 }
//!             }
//!           }
//!         }
//!       },
//!       "account": {
//!         "guest": { "psi_some_total": 1830000, "pgscan": 61200, "pgmajfault": 310 },
//!         "cgroup": { "psi_full_total": 950000, "high": 412, "max": 3, "oom_kill": 0 }
//!       },
//!       "expectations": [
//!         { "name": "RSS stays at the peak after release", "passed": true,
//!           "detail": "last process.service.rss from service:released+1s to balloon:started = 401.2MiB, above 380.0MiB: passed" }
//!       ],
//!       "fact_mismatches": [
//!         { "fact": "mglru_default", "written": false, "probed": true,
//!           "detail": "the guest read lru_gen/enabled = 0x0007" }
//!       ],
//!       "dir": "runs/go-madvfree-balloon/6.1/go=1.15",
//!       "boot_to_first_sample_ms": 2100, "wall_ms": 45000
//!     }
//!   ]
//! }
//! ```
//!
//! - `runs` is sorted by scenario, kernel (as versions) and variant label; a merged lab
//!   (`rsslab merge`) lists the runs of every shard.
//! - `outcome` is the run's (`ok`, `unsupported`, `kernel-panic`, `vm-timeout`,
//!   `infra-error`, with `reason` when not `ok`); each process has its own `outcome`.
//! - `expectations` lists those whose `when` matched the run, evaluated from the raw records
//!   (re-evaluated by `rsslab report`); `passed` false on any of them makes the lab exit 1.
//! - `fact_mismatches` lists the kernel facts the run relied on (the catalogue's, or derived
//!   from the kernel's config) that the guest's hello found otherwise: `fact` as the catalogue
//!   names it, what was `written`, what the guest `probed`, and what it read (`detail`);
//!   absent when there are none. A run with one measured a kernel other than the one the
//!   catalogue describes: its expectations' `when` chose by wrong facts.
//! - `account` is what the kernel did over the run ([`crate::analysis::account`]): how much
//!   each counter rose from the first sample to the last, stall in µs, pages, faults, events.
//! - `dir` is relative to the output directory; `run.json` there has what this file leaves
//!   out (events, the spec the guest ran, provenance).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};
use rsslab_wire::{EventKind, Metrics, ProcessOutcome, RunOutcome};
use serde::{Deserialize, Serialize};

use crate::analysis::account::{AccountTotals, account_totals};
use crate::analysis::comparison::Comparison;
use crate::analysis::expectations::{ExpectationResult, evaluate_with};
use crate::catalogue::KernelFacts;
use crate::catalogue::versions::compare_kernels;
use crate::files::write_atomically;
use crate::records::LoadedRun;
use crate::records::facts::{FactMismatch, record_fact_mismatches};
use crate::scenario::expect::account_unit;

/// File name of the results under the output directory.
pub const RESULTS_JSON: &str = "results.json";

/// `results.json`: one entry per run of the lab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// When the file was written (RFC 3339, UTC, seconds).
    pub generated_at: String,
    /// Version of the rsslab that wrote the file (not necessarily the one that ran the VMs:
    /// see each run's `run.json` provenance for that).
    pub rsslab_version: String,
    /// Every run, sorted by scenario, kernel (numerically: 5.10 before 6.1 before 6.12),
    /// variant label and repeat.
    pub runs: Vec<RunResult>,
    /// The comparison with a baseline lab (`rsslab run --baseline DIR`, `rsslab report DIR
    /// --baseline BASE`), when one was made: see [`Comparison`]. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Comparison>,
}

/// One run: one scenario on one kernel in one variant (one VM).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// Scenario id (`go-madvfree-balloon`).
    pub scenario: String,
    /// Scenario title, as the scenario file said.
    #[serde(default)]
    pub title: String,
    /// Kernel catalogue id (`6.1`).
    pub kernel: String,
    /// `uname -r` in the guest; `null` when the guest never said hello.
    pub kernel_release: Option<String>,
    /// Matrix overrides of this variant, dotted key -> value
    /// (`{"process.service.go": "1.15"}`); empty when the scenario has no matrix.
    pub variant: BTreeMap<String, String>,
    /// Short label of the variant (`go=1.15`), also the last part of `dir`; empty without a
    /// matrix.
    pub variant_label: String,
    /// `kvm` or `tcg` (TCG is emulation: timings are slow, memory figures are real).
    pub accel: String,
    /// Why that accelerator, in one line (the KVM probe boot's result).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accel_reason: Option<String>,
    /// How the run ended: `ok`, `unsupported`, `kernel-panic`, `vm-timeout` or `infra-error`.
    pub outcome: RunOutcome,
    /// Why, when `outcome` is not `ok`.
    pub reason: Option<String>,
    /// VM boots it took (a kernel panic is retried once, so 2 means one retry).
    #[serde(default)]
    pub attempts: u32,
    /// Process name -> how it ended and its peaks.
    pub processes: BTreeMap<String, ProcessSummary>,
    /// The cgroup's kernel high-water marks in bytes (`usage` from memory.peak or
    /// max_usage_in_bytes); empty without a cgroup.
    #[serde(default)]
    pub cgroup_peak: Metrics,
    /// What the kernel did over the run, from the first sample to the last: stall time in µs
    /// (`psi_some_total`, `psi_full_total`), pages scanned and reclaimed, refaults, major
    /// faults, OOM kills, and the cgroup's `memory.events`; absent when the guest sent none.
    #[serde(default, skip_serializing_if = "AccountTotals::is_empty")]
    pub account: AccountTotals,
    /// With pods: pod name -> its QoS class, the values the kubelet's rules set (as read
    /// back), its peaks, and per container the same with its `oom_score_adj` and
    /// `memory.events` counts ([`crate::analysis::pods`]); absent without pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pods: BTreeMap<String, super::pods::PodSummary>,
    /// The scenario's expectations evaluated on this run, in scenario order.
    pub expectations: Vec<ExpectationResult>,
    /// The kernel facts the run relied on that the guest probed otherwise, in the order of
    /// the catalogue's facts; absent when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fact_mismatches: Vec<FactMismatch>,
    /// The kernel facts the run relied on (`when` of its expectations, the findings); absent
    /// for a kernel whose facts are unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<KernelFacts>,
    /// The run's directory relative to the output directory
    /// (`runs/<scenario>/<kernel>[/<variant>]`), holding `run.json`, `samples.jsonl` and
    /// `console.log`.
    pub dir: String,
    /// Which repetition of its scenario, kernel and variant this run is (1-based): with
    /// `rsslab run --repeat N` each appears N times, repeat `r > 1` in `<dir>/repeat-<r>`.
    #[serde(default = "first_repeat")]
    pub repeat: u32,
    /// QEMU start to the first sample, in ms (boot and set-up); `null` without samples.
    pub boot_to_first_sample_ms: Option<u64>,
    /// QEMU start to QEMU exit, in ms, as measured on the host.
    pub wall_ms: u64,
}

/// How one process ended, with its peaks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessSummary {
    /// `exited(N)`, `killed(SIGNAL)`, `oom-killed`, `enomem-at-start`, `running-at-end` or
    /// `not-started`. A process the guest sampled but never gave a verdict for (the VM timed
    /// out or broke) is `running-at-end`, unless an `ended` event said otherwise.
    pub outcome: ProcessOutcome,
    /// Highest value of each metric, in bytes: the kernel's own high-water marks where the
    /// guest read them (`rss` from VmHWM, `vsz` from VmPeak), or the highest sampled value,
    /// whichever is larger. Names as in the README, "Metrics" (`rss`, `vsz`, `lazyfree`, ...).
    pub peak: Metrics,
    /// When it started, in ms from the start of the run (the guest's clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<u64>,
    /// When it ended, in ms from the start of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_ms: Option<u64>,
}

/// The kernel facts a run relied on: the record's, or the catalogue's for records written
/// before they were kept.
fn run_facts(run: &LoadedRun) -> Option<KernelFacts> {
    let record = &run.record;
    record.kernel_facts.or_else(|| {
        static CATALOGUE: std::sync::OnceLock<Option<crate::catalogue::Catalogue>> =
            std::sync::OnceLock::new();
        CATALOGUE
            .get_or_init(|| {
                crate::catalogue::load_catalogue(&crate::catalogue::default_catalogue_path()).ok()
            })
            .as_ref()?
            .get(&record.kernel)
            .map(|kernel| kernel.facts)
    })
}

/// The run's expectations evaluated on it (see [`crate::scenario::expect`]) with its facts.
fn evaluate_expectations(run: &LoadedRun, facts: Option<&KernelFacts>) -> Vec<ExpectationResult> {
    if run.record.expectations.is_empty() {
        return Vec::new();
    }
    evaluate_with(&run.record.expectations, run, facts)
}

impl Results {
    /// Runs whose guest found a kernel fact otherwise than written.
    pub fn runs_with_fact_mismatches(&self) -> impl Iterator<Item = &RunResult> {
        self.runs
            .iter()
            .filter(|run| !run.fact_mismatches.is_empty())
    }

    /// Expectations that failed, over every run.
    pub fn failed_expectations(&self) -> usize {
        self.failed_expectation_lines().len()
    }

    /// Each failed expectation in one line: `scenario · kernel · variant: name: detail`.
    pub fn failed_expectation_lines(&self) -> Vec<String> {
        self.runs
            .iter()
            .flat_map(|run| {
                let mut label = format!("{} · {}", run.scenario, run.kernel);
                if !run.variant_label.is_empty() {
                    label += &format!(" · {}", run.variant_label);
                }
                run.expectations
                    .iter()
                    .filter(|expectation| !expectation.passed)
                    .map(move |expectation| {
                        format!("{label}: {}: {}", expectation.name, expectation.detail)
                    })
            })
            .collect()
    }
}

/// Summarises loaded runs into [`Results`], sorted (see [`Results::runs`]).
pub fn build_results(runs: &[LoadedRun]) -> Results {
    let mut results: Vec<RunResult> = runs.iter().map(run_result).collect();
    results.sort_by(|a, b| {
        a.scenario
            .cmp(&b.scenario)
            .then_with(|| compare_kernels(&a.kernel, &b.kernel))
            .then_with(|| a.variant_label.cmp(&b.variant_label))
            .then_with(|| a.repeat.cmp(&b.repeat))
            .then_with(|| a.dir.cmp(&b.dir))
    });
    Results {
        generated_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        rsslab_version: env!("CARGO_PKG_VERSION").to_owned(),
        runs: results,
        baseline: None,
    }
}

/// Writes `out_dir/results.json` (pretty-printed) atomically: a temporary file in `out_dir`,
/// then a rename, so a reader never sees half a file.
pub fn write_results(out_dir: &Path, results: &Results) -> Result<PathBuf> {
    let path = out_dir.join(RESULTS_JSON);
    let json = serde_json::to_string_pretty(results).context("serializing results")?;
    write_atomically(&path, (json + "\n").as_bytes())?;
    Ok(path)
}

fn run_result(run: &LoadedRun) -> RunResult {
    let record = &run.record;
    let facts = run_facts(run);
    let mut processes: BTreeMap<String, ProcessSummary> = record
        .processes
        .iter()
        .map(|(name, result)| {
            let summary = ProcessSummary {
                outcome: result.outcome.clone(),
                peak: result.peak.clone(),
                started_ms: result.started_ms,
                ended_ms: result.ended_ms,
            };
            (name.clone(), summary)
        })
        .collect();
    // Processes the guest sampled but gave no verdict for (a timeout, a broken channel).
    for sample in &run.samples {
        for name in sample.process.keys() {
            processes
                .entry(name.clone())
                .or_insert_with(|| ProcessSummary {
                    outcome: ProcessOutcome::RunningAtEnd,
                    peak: Metrics::new(),
                    started_ms: None,
                    ended_ms: None,
                });
        }
    }
    // Their start and end, from the events (the verdict, when there is one, has both).
    for event in &record.events {
        let Some(name) = &event.process else { continue };
        if record.processes.contains_key(name) {
            continue;
        }
        let Some(summary) = processes.get_mut(name) else {
            continue;
        };
        match &event.kind {
            EventKind::Started { .. } if summary.started_ms.is_none() => {
                summary.started_ms = Some(event.t_ms);
            }
            EventKind::Ended { outcome } => {
                summary.outcome = outcome.clone();
                summary.ended_ms = Some(event.t_ms);
            }
            _ => {}
        }
    }
    // Peaks: the larger of the guest's marks and the sampled maxima.
    for sample in &run.samples {
        for (name, metrics) in &sample.process {
            let summary = processes.get_mut(name).expect("inserted above");
            raise_peaks(&mut summary.peak, metrics);
        }
    }
    // The kernel's account is counters, not levels: its "peaks" are only its last values.
    let mut cgroup_peak: Metrics = record
        .cgroup_peak
        .iter()
        .filter(|(metric, _)| account_unit(metric).is_none())
        .map(|(metric, &value)| (metric.clone(), value))
        .collect();
    for sample in &run.samples {
        for (metric, &value) in &sample.cgroup {
            // Counters and the limit are not levels; their "peak" is meaningless or misleading.
            if matches!(
                metric.as_str(),
                "usage"
                    | "working_set"
                    | "anon"
                    | "file"
                    | "active_file"
                    | "inactive_file"
                    | "shmem"
            ) {
                let peak = cgroup_peak.entry(metric.clone()).or_insert(0);
                *peak = (*peak).max(value);
            }
        }
    }
    RunResult {
        scenario: record.scenario.clone(),
        title: record.title.clone(),
        kernel: record.kernel.clone(),
        kernel_release: record.kernel_release.clone(),
        variant: record.variant.clone(),
        variant_label: record.variant_label.clone(),
        accel: record.accel.clone(),
        accel_reason: record.accel_reason.clone(),
        outcome: record.outcome,
        reason: record.reason.clone(),
        attempts: record.attempts,
        processes,
        cgroup_peak,
        account: account_totals(run),
        pods: super::pods::pod_summaries(run),
        expectations: evaluate_expectations(run, facts.as_ref()),
        facts,
        fact_mismatches: fact_mismatches(record),
        dir: record.dir.clone(),
        repeat: record.repeat,
        boot_to_first_sample_ms: record.timing.boot_to_first_sample_ms,
        wall_ms: record.timing.wall_ms,
    }
}

/// The record's mismatches as the runner kept them; for a record written before they were
/// kept, computed from its hello and facts the same way.
fn fact_mismatches(record: &crate::records::RunRecord) -> Vec<FactMismatch> {
    if record.fact_mismatches.is_empty() {
        record_fact_mismatches(record)
    } else {
        record.fact_mismatches.clone()
    }
}

fn first_repeat() -> u32 {
    1
}

fn raise_peaks(peaks: &mut Metrics, metrics: &Metrics) {
    for (metric, &value) in metrics {
        let peak = peaks.entry(metric.clone()).or_insert(0);
        *peak = (*peak).max(value);
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::records::testing::fake_run;

    #[test]
    fn results_round_trip_and_carry_the_contract_fields() {
        let runs = vec![
            fake_run("demo", "6.12", "free"),
            fake_run("demo", "5.10", "free"),
            fake_run("demo", "6.1", "dontneed"),
        ];
        let results = build_results(&runs);
        let kernels: Vec<_> = results.runs.iter().map(|run| run.kernel.as_str()).collect();
        assert_eq!(kernels, ["5.10", "6.1", "6.12"]);

        let dir = tempfile::tempdir().unwrap();
        let path = write_results(dir.path(), &results).unwrap();
        assert_eq!(path, dir.path().join("results.json"));
        let text = fs::read_to_string(&path).unwrap();
        let back: Results = serde_json::from_str(&text).unwrap();
        assert_eq!(back, results);

        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let run = &value["runs"][0];
        for field in [
            "scenario",
            "kernel",
            "kernel_release",
            "variant",
            "accel",
            "outcome",
            "processes",
            "expectations",
            "dir",
        ] {
            assert!(run.get(field).is_some(), "missing {field} in {run:#}");
        }
        assert_eq!(run["outcome"], "ok");
        assert_eq!(run["variant"]["process.service.args.release"], "free");
        let service = &run["processes"]["service"];
        assert_eq!(service["outcome"], "running-at-end");
        assert!(
            service["peak"]["rss"].as_u64().unwrap() >= 400 << 20,
            "{service:#}"
        );
        assert!(run["expectations"].as_array().unwrap().is_empty());
        // No temporary file left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["results.json"]);
    }

    #[test]
    fn fact_mismatches_are_carried_per_run_and_absent_when_none() {
        let runs = vec![
            crate::records::testing::fact_mismatch_run(),
            fake_run("demo", "6.1", "free"),
        ];
        let results = build_results(&runs);
        let value = serde_json::to_value(&results).unwrap();
        // Sorted by scenario: `demo` first.
        let with = &value["runs"][1];
        assert_eq!(with["scenario"], "go-madvfree-balloon");
        assert_eq!(
            with["fact_mismatches"],
            serde_json::json!([{
                "fact": "mglru_default",
                "written": false,
                "probed": true,
                "detail": "the guest read lru_gen/enabled = 0x0007",
            }])
        );
        assert!(value["runs"][0].get("fact_mismatches").is_none());
        assert_eq!(results.runs_with_fact_mismatches().count(), 1);
        let back: Results = serde_json::from_value(value).unwrap();
        assert_eq!(back, results);

        // A record kept before the mismatches were: computed from its hello and facts.
        let mut old = crate::records::testing::fact_mismatch_run();
        old.record.fact_mismatches.clear();
        assert_eq!(
            build_results(&[old]).runs[0].fact_mismatches,
            results.runs[1].fact_mismatches
        );
    }

    #[test]
    fn processes_without_a_verdict_come_from_samples_and_events() {
        let mut run = fake_run("demo", "6.1", "free");
        run.record.outcome = RunOutcome::VmTimeout;
        run.record.processes.clear();
        let results = build_results(&[run]);
        let balloon = &results.runs[0].processes["balloon"];
        assert_eq!(balloon.outcome, ProcessOutcome::RunningAtEnd);
        assert!(balloon.peak["rss"] > 0);
        assert!(balloon.started_ms.is_some());
    }
}
