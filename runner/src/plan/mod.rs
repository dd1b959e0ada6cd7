//! Planning: scenarios x kernels x matrix variants -> the runs of a lab.
//!
//! [`plan`] is pure: each run gets its kernel, its variant, its directory under the output
//! (`runs/<scenario>/<kernel>[/<variant>]`) and the [`RunSpec`] the guest agent will follow.
//! Order: scenario (as loaded), then kernel (catalogue order), then variant (matrix order,
//! first axis outermost), so plans, reports and shards are stable. [`repeat`] runs the whole
//! plan again for `--repeat N`: repeat 1 keeps the directory above, repeat `r > 1` goes into
//! `<dir>/repeat-<r>`, and the plan lists every run once before any runs twice (so slow drift
//! of the host spreads over all of them). [`shard`] cuts a plan into slices for several hosts.
//!
//! [`load_plan`] is the stage's entry: scenario files and the kernel catalogue in, a plan out,
//! or bad input (exit code 2) that says what is wrong.

pub mod shard;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::anyhow;
use rsslab_wire::spec::{DiskMount, RunSpec};

use crate::catalogue::reference::{KernelRef, kernel_dir_name};
use crate::catalogue::{Catalogue, default_catalogue_path, load_catalogue};
use crate::exit::Failure;
use crate::scenario::{Scenario, Variant, VmConfig, load_scenarios};

/// The directory under the output directory that holds one directory per run.
pub const RUNS_DIR: &str = "runs";

/// Where the scratch disk appears in the guest and what is on it.
pub const SCRATCH_DEVICE: &str = "/dev/vda";
pub const SCRATCH_MOUNT: &str = "/scratch";
pub const SCRATCH_FSTYPE: &str = "ext4";

/// Every run of a lab, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub runs: Vec<RunPlan>,
    /// What the scenarios (or the manifests they read) say that the lab does not use.
    pub warnings: Vec<crate::scenario::Diagnostic>,
}

/// One VM: a scenario variant on a kernel.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPlan {
    /// Scenario id.
    pub scenario: String,
    pub title: String,
    /// The scenario's story (Markdown), kept with every run so a report rebuilt from raw
    /// records alone still tells it.
    pub story: String,
    /// The scenario file's text as it was when planned (saved beside the runs).
    pub scenario_source: String,
    pub scenario_path: PathBuf,
    pub scenario_sha256: String,
    /// Catalogue id.
    pub kernel: String,
    /// Matrix key -> value as text; empty without a matrix.
    pub variant: BTreeMap<String, String>,
    /// `release=free` (last path segment = value, joined by `,`); empty without a matrix.
    pub variant_label: String,
    /// `runs/<scenario>/<kernel>` or `runs/<scenario>/<kernel>/<variant_label>`, with
    /// `/repeat-<r>` for repeats after the first.
    pub dir: String,
    /// Which repetition of its scenario, kernel and variant this is (1-based; `--repeat`).
    pub repeat: u32,
    pub vm: VmConfig,
    /// What the guest agent runs; `run_id` is `dir` without `runs/`, `modules` is left for
    /// the image stage to fill.
    pub spec: RunSpec,
    /// The scenario's expectations, all of them (`when` is decided when they are evaluated).
    pub expectations: Vec<crate::scenario::expect::Expectation>,
}

/// Which runs to keep.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanFilter {
    /// `--kernel` catalogue ids: only these of each scenario's own kernels. Empty with
    /// `added` empty: every kernel of each scenario.
    pub kernels: Vec<String>,
    /// `--kernel` Debian versions and files: every scenario runs on each of these (after its
    /// own kernels that `kernels` keeps, which are none when `kernels` is empty).
    pub added: Vec<String>,
}

/// Loads and validates scenarios: bad input is exit code 2.
/// `kernels` are `--kernel` texts: catalogue ids, Debian versions (`debian:6.18`) or kernel
/// files (see [`KernelRef`]); kernels outside the catalogue are resolved later, by the lab.
pub fn load_plan(inputs: &[PathBuf], kernels: &[String]) -> Result<(Catalogue, Plan), Failure> {
    let catalogue = load_catalogue(&default_catalogue_path()).map_err(Failure::infrastructure)?;
    let filter = kernel_filter(&catalogue, kernels).map_err(Failure::bad_input)?;
    let known = catalogue.ids();
    let scenarios = load_scenarios(inputs, &known).map_err(Failure::bad_input)?;
    let mut plan = plan(&scenarios, &filter);
    plan.warnings = scenarios
        .iter()
        .flat_map(|scenario| scenario.warnings.iter().cloned())
        .collect();
    if plan.runs.is_empty() {
        return Err(Failure::bad_input(anyhow!(
            "the plan is empty: no scenario runs on the kernels asked for"
        )));
    }
    Ok((catalogue, plan))
}

/// The `--kernel` texts as a filter: catalogue ids keep a scenario's own kernels, anything
/// else is added to every scenario, by its id ([`KernelRef::id`]: a file's absolute path).
fn kernel_filter(catalogue: &Catalogue, kernels: &[String]) -> anyhow::Result<PlanFilter> {
    let base = std::env::current_dir().unwrap_or_default();
    let mut filter = PlanFilter::default();
    for text in kernels {
        match KernelRef::parse(text, catalogue, &base)
            .map_err(|error| anyhow!("--kernel {error:#}"))?
        {
            KernelRef::Pinned(id) => filter.kernels.push(id),
            other => filter.added.push(other.id()),
        }
    }
    Ok(filter)
}

/// The runs of `scenarios` that pass `filter`.
pub fn plan(scenarios: &[Scenario], filter: &PlanFilter) -> Plan {
    let everything = filter.kernels.is_empty() && filter.added.is_empty();
    let runs = scenarios
        .iter()
        .flat_map(|scenario| {
            let own = scenario
                .kernels
                .iter()
                .filter(move |kernel| everything || filter.kernels.contains(kernel));
            own.chain(
                filter
                    .added
                    .iter()
                    .filter(|kernel| !scenario.kernels.contains(kernel)),
            )
            .flat_map(move |kernel| {
                scenario
                    .variants
                    .iter()
                    .map(move |variant| run_plan(scenario, kernel, variant))
            })
        })
        .collect();
    Plan {
        runs,
        warnings: Vec::new(),
    }
}

/// The plan `times` over (`--repeat`): every run of `plan` once, then again, each repeat after
/// the first in its own `repeat-<r>` directory. `times` 0 or 1 leaves the plan as it is.
pub fn repeat(plan: Plan, times: u32) -> Plan {
    let runs = (1..=times.max(1))
        .flat_map(|repeat| {
            plan.runs.iter().map(move |run| {
                let mut run = run.clone();
                if repeat > 1 {
                    run.repeat = repeat;
                    run.dir = format!("{}/{REPEAT_PREFIX}{repeat}", run.dir);
                    run.spec.run_id = format!("{}/{REPEAT_PREFIX}{repeat}", run.spec.run_id);
                }
                run
            })
        })
        .collect();
    Plan {
        runs,
        warnings: plan.warnings,
    }
}

/// The directory of repeat `r > 1` under its run's directory: `repeat-<r>`.
pub const REPEAT_PREFIX: &str = "repeat-";

/// One run.
fn run_plan(scenario: &Scenario, kernel: &str, variant: &Variant) -> RunPlan {
    let run_id = run_id(&scenario.id, kernel, &variant.label);
    let setup = &variant.setup;
    RunPlan {
        scenario: scenario.id.clone(),
        title: scenario.title.clone(),
        story: scenario.story.clone(),
        scenario_source: scenario.source.clone(),
        scenario_path: scenario.path.clone(),
        scenario_sha256: scenario.sha256.clone(),
        kernel: kernel.to_string(),
        variant: variant.values.clone(),
        variant_label: variant.label.clone(),
        dir: format!("{RUNS_DIR}/{run_id}"),
        repeat: 1,
        vm: setup.vm,
        spec: RunSpec {
            run_id,
            sample_every: setup.sample_every,
            duration: setup.duration,
            until: setup.until.clone(),
            sysctl: setup.sysctl.clone(),
            sysfs: setup.sysfs.clone(),
            cgroup: setup.cgroup.clone(),
            node: setup.node.clone(),
            modules: Vec::new(),
            disk: setup.vm.disk.map(|_| scratch_disk()),
            processes: setup.processes.clone(),
        },
        expectations: scenario.expectations.clone(),
    }
}

/// `<scenario>/<kernel>[/<variant>]`, the kernel as a directory name ([`kernel_dir_name`]).
fn run_id(scenario: &str, kernel: &str, label: &str) -> String {
    let kernel = kernel_dir_name(kernel);
    if label.is_empty() {
        format!("{scenario}/{kernel}")
    } else {
        format!("{scenario}/{kernel}/{label}")
    }
}

fn scratch_disk() -> DiskMount {
    DiskMount {
        device: SCRATCH_DEVICE.to_string(),
        mount: SCRATCH_MOUNT.to_string(),
        fstype: SCRATCH_FSTYPE.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::parse_scenario;
    use std::path::Path;

    fn kernels() -> Vec<String> {
        ["5.10", "6.1", "6.12", "7.2"].map(String::from).to_vec()
    }

    fn scenario(extra: &str) -> Scenario {
        let source = format!(
            "[scenario]\nid = \"demo\"\ntitle = \"Demo\"\n[sample]\nduration = \"10s\"\n\
             [[process]]\nname = \"service\"\nworkload = \"heap-churn\"\nargs = {{ heap = \"64MiB\" }}\n{extra}"
        );
        parse_scenario(Path::new("demo.toml"), &source, &kernels())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn dirs(plan: &Plan) -> Vec<&str> {
        plan.runs.iter().map(|run| run.dir.as_str()).collect()
    }

    #[test]
    fn without_a_matrix_one_run_per_kernel_in_catalogue_order() {
        let plan = plan(
            &[scenario("[vm]\nkernels = [\"7.2\", \"5.10\"]\n")],
            &PlanFilter::default(),
        );
        assert_eq!(dirs(&plan), ["runs/demo/5.10", "runs/demo/7.2"]);
        let run = &plan.runs[0];
        assert_eq!((run.variant_label.as_str(), run.variant.len()), ("", 0));
        assert_eq!(run.spec.run_id, "demo/5.10");
        assert_eq!(run.spec.disk, None);
        assert!(run.spec.modules.is_empty());
    }

    #[test]
    fn matrix_expands_first_axis_outermost() {
        let plan = plan(
            &[scenario(
                "[vm]\nkernels = [\"6.1\"]\n[matrix]\n\"process.service.args.release\" = [\"free\", \"dontneed\"]\n\
                 'sysctl.\"vm.overcommit_memory\"' = [0, 1]\n",
            )],
            &PlanFilter::default(),
        );
        assert_eq!(
            dirs(&plan),
            [
                "runs/demo/6.1/release=free,vm.overcommit_memory=0",
                "runs/demo/6.1/release=free,vm.overcommit_memory=1",
                "runs/demo/6.1/release=dontneed,vm.overcommit_memory=0",
                "runs/demo/6.1/release=dontneed,vm.overcommit_memory=1",
            ]
        );
        let run = &plan.runs[2];
        assert_eq!(run.variant["process.service.args.release"], "dontneed");
        assert_eq!(run.variant["sysctl.\"vm.overcommit_memory\""], "0");
        assert_eq!(run.spec.sysctl["vm.overcommit_memory"], "0");
        let rsslab_wire::Workload::HeapChurn(args) = &run.spec.processes[0].workload else {
            panic!()
        };
        assert_eq!(args.release, rsslab_wire::Release::Dontneed);
        assert_eq!(
            run.spec.run_id,
            "demo/6.1/release=dontneed,vm.overcommit_memory=0"
        );
    }

    #[test]
    fn kernel_filter_keeps_the_asked_kernels() {
        let scenarios = [scenario(""), scenario("[vm]\nkernels = [\"6.1\"]\n")];
        let plan = plan(
            &scenarios,
            &PlanFilter {
                kernels: vec!["6.12".into(), "6.1".into()],
                added: vec![],
            },
        );
        assert_eq!(
            dirs(&plan),
            ["runs/demo/6.1", "runs/demo/6.12", "runs/demo/6.1"]
        );
        let none = super::plan(
            &scenarios,
            &PlanFilter {
                kernels: vec!["9.9".into()],
                added: vec![],
            },
        );
        assert!(none.runs.is_empty());
    }

    #[test]
    fn kernels_outside_the_catalogue_are_added_to_every_scenario() {
        let scenarios = [scenario(""), scenario("[vm]\nkernels = [\"6.1\"]\n")];
        let only_added = plan(
            &scenarios,
            &PlanFilter {
                kernels: vec![],
                added: vec!["debian:6.18:rt".into()],
            },
        );
        assert_eq!(
            dirs(&only_added),
            ["runs/demo/debian-6.18-rt", "runs/demo/debian-6.18-rt"]
        );
        assert_eq!(only_added.runs[0].kernel, "debian:6.18:rt");
        let with_an_id = plan(
            &scenarios,
            &PlanFilter {
                kernels: vec!["6.1".into()],
                added: vec!["debian:6.18".into()],
            },
        );
        assert_eq!(
            dirs(&with_an_id),
            [
                "runs/demo/6.1",
                "runs/demo/debian-6.18",
                "runs/demo/6.1",
                "runs/demo/debian-6.18"
            ]
        );
    }

    #[test]
    fn repeats_run_everything_once_before_anything_twice() {
        let once = plan(
            &[scenario(
                "[vm]\nkernels = [\"6.1\", \"6.12\"]\n[matrix]\n\"process.service.args.release\" = [\"free\", \"dontneed\"]\n",
            )],
            &PlanFilter::default(),
        );
        assert_eq!(repeat(once.clone(), 1), once);
        let thrice = repeat(once.clone(), 3);
        assert_eq!(thrice.runs.len(), 12);
        assert_eq!(&thrice.runs[..4], &once.runs[..]);
        assert_eq!(
            dirs(&thrice)[4..6],
            [
                "runs/demo/6.1/release=free/repeat-2",
                "runs/demo/6.1/release=dontneed/repeat-2"
            ]
        );
        let last = thrice.runs.last().unwrap();
        assert_eq!(last.repeat, 3);
        assert_eq!(last.spec.run_id, "demo/6.12/release=dontneed/repeat-3");
        assert_eq!(last.variant, once.runs[3].variant);
    }

    #[test]
    fn runs_carry_the_vm_and_a_scratch_disk() {
        let plan = plan(
            &[scenario(
                "[vm]\nkernels = [\"5.10\"]\nmemory = \"512MiB\"\ndisk = \"1GiB\"\n",
            )],
            &PlanFilter::default(),
        );
        let run = &plan.runs[0];
        assert_eq!(run.vm.memory, rsslab_wire::Bytes::mib(512));
        assert_eq!(run.vm.timeout, rsslab_wire::Millis::secs(130));
        assert_eq!(run.spec.disk, Some(scratch_disk()));
        assert_eq!(run.scenario_sha256.len(), 64);
    }
}
