//! `rsslab run --resume DIR`: finish a lab that did not finish (interrupted, killed, a broken
//! run), running only what has no finished record.
//!
//! Every lab writes `DIR/lab.json` ([`LabFile`]) before its first run: the scenarios (by id,
//! with their files as given), `--kernel`, `--repeat`, `--shard` and `--baseline`; and
//! `DIR/runs/<scenario>/scenario.toml`, each scenario's text as it ran. [`resume_plan`] plans
//! the same lab again from those copies (so the resumed runs run exactly what the finished
//! ones ran), with the flags of `lab.json`, and sorts its runs:
//!
//! - **kept**: `run.json` reads and its outcome is `ok` or `unsupported`: a run that finished;
//! - **run again**: no `run.json` (the runner died mid-run; the record is written last and
//!   atomically, so a half-written run never has one), an unreadable one, or an outcome of
//!   `infra-error` (also interrupted and never-started runs), `vm-timeout` or `kernel-panic`.
//!
//! It refuses (bad input) when `lab.json` or a copy is missing, when a scenario's file has
//! changed since the lab started (the resumed lab would not be what its file now says; run it
//! into a new `--out`), and when a kept record ran another version of its scenario than the
//! copy (a reused output directory).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use rsslab_wire::RunOutcome;
use serde::{Deserialize, Serialize};

use crate::catalogue::Catalogue;
use crate::exit::Failure;
use crate::plan::Plan;
use crate::plan::RUNS_DIR;
use crate::plan::shard::{Shard, shard_plan};
use crate::records::{RUN_JSON, SCENARIO_TOML, load_run};

/// The file in a lab's output directory that says what the lab was asked to run.
pub const LAB_JSON: &str = "lab.json";

/// `lab.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabFile {
    /// The scenarios of the plan, in plan order.
    pub scenarios: Vec<LabScenario>,
    /// `--kernel` (empty: each scenario's own kernels).
    pub kernels: Vec<String>,
    /// `--repeat`.
    pub repeat: u32,
    /// `--shard I/N`, if any.
    pub shard: Option<String>,
    /// `--baseline`, if any.
    pub baseline: Option<PathBuf>,
    /// `--modules`, if any: the modules of the kernel files of `kernels`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modules: Option<PathBuf>,
}

/// One scenario of a lab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabScenario {
    pub id: String,
    /// The file as given on the command line (kept as the runs' provenance).
    pub path: PathBuf,
    /// The same file as an absolute path, to tell whether it changed since.
    pub file: PathBuf,
}

impl LabFile {
    /// What `plan` (already repeated and sharded) was made from.
    pub fn new(
        plan: &Plan,
        kernels: &[String],
        repeat: u32,
        shard: Option<Shard>,
        baseline: Option<&Path>,
        modules: Option<&Path>,
    ) -> LabFile {
        let mut scenarios: Vec<LabScenario> = Vec::new();
        for run in &plan.runs {
            if scenarios.iter().all(|known| known.id != run.scenario) {
                scenarios.push(LabScenario {
                    id: run.scenario.clone(),
                    path: run.scenario_path.clone(),
                    file: fs::canonicalize(&run.scenario_path)
                        .unwrap_or_else(|_| run.scenario_path.clone()),
                });
            }
        }
        LabFile {
            scenarios,
            kernels: kernels.to_vec(),
            repeat,
            shard: shard.map(|shard| shard.to_string()),
            baseline: baseline.map(Path::to_path_buf),
            modules: modules.map(Path::to_path_buf),
        }
    }

    /// Writes `out_dir/lab.json` atomically.
    pub fn write(&self, out_dir: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_string_pretty(self)? + "\n";
        crate::files::write_atomically(&out_dir.join(LAB_JSON), json.as_bytes())
    }
}

/// Why a lab cannot be resumed.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error(
        "--resume {0}: no {LAB_JSON} there: not the output directory of `rsslab run` (labs \
         written before --resume existed cannot be resumed; run them again into a new --out)"
    )]
    NotALab(PathBuf),
    #[error("--resume: {path}: {why}")]
    BadLabFile { path: PathBuf, why: String },
    #[error(
        "--resume: scenario {id}: its copy {copy} is missing, so the lab cannot be planned again"
    )]
    MissingCopy { id: String, copy: PathBuf },
    #[error(
        "--resume: scenario {id} changed since the lab started: {file} differs from the copy it \
         ran, {copy}; restore the file (its copy is what ran), or run it into a new --out"
    )]
    ScenarioChanged {
        id: String,
        file: PathBuf,
        copy: PathBuf,
    },
    #[error(
        "--resume: {run} ran another version of scenario {id} than {copy} (the output directory \
         was reused); run the lab again into a new --out"
    )]
    OtherVersion {
        run: String,
        id: String,
        copy: PathBuf,
    },
}

/// What [`resume_plan`] found.
#[derive(Debug)]
pub struct Resumed {
    pub catalogue: Catalogue,
    /// The runs to run: without a finished record.
    pub plan: Plan,
    /// The runs with a finished record, kept as they are: directory -> outcome.
    pub kept: BTreeMap<String, RunOutcome>,
    pub lab: LabFile,
}

/// Plans `dir`'s lab again and sorts its runs (see the module docs).
pub fn resume_plan(dir: &Path) -> Result<Resumed, Failure> {
    let lab = read_lab_file(dir).map_err(Failure::bad_input)?;
    let mut copies = Vec::new();
    for scenario in &lab.scenarios {
        let copy = dir.join(RUNS_DIR).join(&scenario.id).join(SCENARIO_TOML);
        let ran = fs::read(&copy).map_err(|_| {
            Failure::bad_input(ResumeError::MissingCopy {
                id: scenario.id.clone(),
                copy: copy.clone(),
            })
        })?;
        if let Ok(now) = fs::read(&scenario.file)
            && now != ran
        {
            return Err(Failure::bad_input(ResumeError::ScenarioChanged {
                id: scenario.id.clone(),
                file: scenario.file.clone(),
                copy,
            }));
        }
        copies.push(copy);
    }
    let (catalogue, plan) = crate::lab::load_plan(&copies, &lab.kernels)?;
    let mut plan = crate::plan::repeat(plan, lab.repeat);
    if let Some(shard) = &lab.shard {
        let shard: Shard = shard.parse().map_err(|error| {
            Failure::bad_input(anyhow!("--resume: {LAB_JSON}: shard {shard}: {error}"))
        })?;
        plan = shard_plan(plan, shard);
    }
    let mut kept = BTreeMap::new();
    let mut to_run = Vec::new();
    let mut why: BTreeMap<String, usize> = BTreeMap::new();
    for mut run in plan.runs {
        if let Some(scenario) = lab.scenarios.iter().find(|s| s.id == run.scenario) {
            run.scenario_path = scenario.path.clone();
        }
        match state_of(&dir.join(&run.dir), &run.scenario_sha256) {
            RunState::Finished(outcome) => {
                kept.insert(run.dir.clone(), outcome);
            }
            RunState::OtherVersion => {
                return Err(Failure::bad_input(ResumeError::OtherVersion {
                    run: run.dir.clone(),
                    id: run.scenario.clone(),
                    copy: dir.join(RUNS_DIR).join(&run.scenario).join(SCENARIO_TOML),
                }));
            }
            RunState::Unfinished(reason) => {
                *why.entry(reason).or_default() += 1;
                to_run.push(run);
            }
        }
    }
    let reasons: Vec<String> = why
        .iter()
        .map(|(reason, count)| format!("{count} {reason}"))
        .collect();
    eprintln!(
        "rsslab: resume {}: {} of {} runs finished (kept), {} to run{}",
        dir.display(),
        kept.len(),
        kept.len() + to_run.len(),
        to_run.len(),
        if reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", reasons.join(", "))
        }
    );
    Ok(Resumed {
        catalogue,
        plan: Plan {
            runs: to_run,
            warnings: plan.warnings,
        },
        kept,
        lab,
    })
}

fn read_lab_file(dir: &Path) -> Result<LabFile, ResumeError> {
    let path = dir.join(LAB_JSON);
    let text = fs::read_to_string(&path).map_err(|_| ResumeError::NotALab(dir.to_owned()))?;
    serde_json::from_str(&text).map_err(|error| ResumeError::BadLabFile {
        path,
        why: error.to_string(),
    })
}

/// Where a planned run stands.
enum RunState {
    Finished(RunOutcome),
    /// Its record is of another version of the scenario.
    OtherVersion,
    /// To run; why, for the summary line (`vm-timeout`, `without a record`).
    Unfinished(String),
}

/// Whether a run's outcome is final: `ok` and `unsupported` are; every infrastructure outcome
/// is worth another try.
pub fn is_finished(outcome: RunOutcome) -> bool {
    matches!(outcome, RunOutcome::Ok | RunOutcome::Unsupported)
}

fn state_of(run_dir: &Path, scenario_sha256: &str) -> RunState {
    if !run_dir.join(RUN_JSON).is_file() {
        return RunState::Unfinished("without a record".into());
    }
    match load_run(run_dir) {
        Err(error) => {
            tracing::warn!(
                "{}: unreadable, running it again: {error:#}",
                run_dir.display()
            );
            RunState::Unfinished("with an unreadable record".into())
        }
        Ok(loaded) if !is_finished(loaded.record.outcome) => {
            RunState::Unfinished(loaded.record.outcome.to_string())
        }
        Ok(loaded) if loaded.record.provenance.scenario_sha256 != scenario_sha256 => {
            RunState::OtherVersion
        }
        Ok(loaded) => RunState::Finished(loaded.record.outcome),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ok_and_unsupported_are_final() {
        assert!(is_finished(RunOutcome::Ok));
        assert!(is_finished(RunOutcome::Unsupported));
        for outcome in [
            RunOutcome::InfraError,
            RunOutcome::VmTimeout,
            RunOutcome::KernelPanic,
        ] {
            assert!(!is_finished(outcome), "{outcome}");
        }
    }

    #[test]
    fn a_directory_without_lab_json_is_not_resumable() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join(RUNS_DIR)).unwrap();
        let failure = resume_plan(dir.path()).unwrap_err();
        assert_eq!(failure.code, crate::exit::BAD_INPUT);
        assert!(failure.to_string().contains(LAB_JSON), "{failure}");
    }
}
