//! Scenario files: parse, validate, expand the matrix.
//!
//! A scenario is one TOML file (the shape is a contract: extended, never broken). Loading one reads it
//! into toml's spanned tree, reads each table into raw serde types ([`raw`]), expands
//! `[matrix]` into variants ([`matrix`]), checks every variant against the rules
//! ([`validate`]), and yields a [`Scenario`], or a [`ScenarioError`] that draws every problem
//! found like rustc does, with file, line, column, key and fix ([`diag`]).
//!
//! # Format
//!
//! | table | keys |
//! |---|---|
//! | `[scenario]` | `id` (`[a-z0-9-]`, required, unique), `title` (required), `story` (markdown) |
//! | `[vm]` | `kernels` (catalogue ids; default: every kernel), `memory` (default 1GiB, 128MiB..=64GiB), `cpus` (default 1, 1..=64), `disk` (optional, 16MiB..=1TiB: ext4 at /scratch), `timeout` (default `sample.duration` + 120s; longer than the duration, at most 8h) |
//! | `[sysctl]` | `"vm.overcommit_memory" = 0`: dotted names (quoted or not), integer or string values |
//! | `[sysfs]` | `"/sys/kernel/mm/transparent_hugepage/enabled" = "always"`: absolute paths under /sys/, integer or string values |
//! | `[cgroup]` | [`CgroupSpec`]: `version` (1 or 2, default 2), `memory_max`, `memory_high` (v2 only, below `memory_max`; `"max"` for none, so a matrix can leave it out of a variant), `swap_max` (only 0: the guest has no swap; on v1 beside `memory_max`); limits between 4MiB and `vm.memory`; at least one process runs in it |
//! | `[node]` | the kubelet of the pods' node: `kubernetes` (required, `"1.25"` to `"1.36"`), `cgroup_version` (default 2), `cgroup_driver` (`systemd`, `cgroupfs`), `system_reserved`, `kube_reserved`, `feature_gates` (`MemoryQoS`, `SidecarContainers`, `KubeletCrashLoopBackOffMax`, `ReduceDefaultCrashLoopBackOffDecay`), `memory_throttling_factor`, `single_process_oom_kill`, `memory_reservation_policy`, `max_container_restart_period`; not beside `[cgroup]`; see [`pods`] |
//! | `[[pod]]` | `name` with `[[pod.container]]` and `[[pod.init_container]]` (`name`, `requests`, `limits`: `{ memory, cpu }`, `restart_policy = "Always"` for a sidecar), `priority_class_name`, `restart_policy`; or `manifest` (a Kubernetes YAML file, [`manifest`]) and optionally `object` |
//! | `[sample]` | `every` (default 250ms, ≥ 10ms, < duration), `duration` (required, more than 0s, at most 6h: the hard deadline), `until` (an event label or a list of them, as in `[[expect]]` windows: `<process>:started`, `<process>:<phase>`, `<process>:ended`, `oom-kill`, `<pod>/<container>:<event>`) and `after` (default 0s, < duration, only with `until`): the run ends `after` once every `until` event has happened, or at `duration` if one never does; a run also ends when every process has ended and none can still start |
//! | `[[process]]` | at most 64; `name` (`[a-z0-9_-]`, unique), `workload` (one of [`WORKLOAD_NAMES`]) and `args` (default: all defaults; what a process takes fits in `vm.memory`), `env`, `cgroup` (default true; only with `[cgroup]`), `container` (`<pod>/<container>`: the container it runs in; its first process is the container's main program), `restart` (`never`, `always`, `on-failure`: a plain supervisor's restarts, at once; not in a container, which the kubelet restarts), `start = { after, phase, delay }` ([`Start`]; `after` a process, or a container `<pod>/<container>` with `phase` one of its events: `restarted`, `oom-killed`, ...; `delay` shorter than the duration); `go` (a Go toolchain id of `vm-images/go-toolchains.toml`; required by `go-*` workloads, refused by the others) |
//! | `[matrix]` | setting path -> array of values, at least one axis, at most 256 variants; see [`matrix`] for the path syntax |
//! | `[[expect]]` | `name`, optional `when`, one check (a metric over a window compared with a size or another metric, a process `outcome`, or `run_outcome`); see [`expect`] |
//!
//! Sizes and durations take human units ("512MiB", "250ms"; [`rsslab_wire::units`]); sizes are
//! binary (`KiB`..`EiB`) or plain bytes, and decimal units (`512MB`) are refused as ambiguous,
//! with the binary and the byte spelling to write instead. Every table denies unknown keys.
//! Paths in messages are dotted, arrays indexed from 0: `vm.memory`, `process[1].args.heap`,
//! `sysctl."vm.overcommit_memory"`.
//!
//! A file is UTF-8 TOML of at most [`MAX_SOURCE_BYTES`]; at most [`MAX_DIAGNOSTICS`] errors
//! are reported per file. `tests/fixtures/bad/` holds a file for each kind of mistake, with
//! the message `rsslab check` prints for it (`tests/bad_input.rs`).
//!
//! Entry points: [`load_scenario`], [`load_scenarios`] and, for text already in memory,
//! [`parse_scenario`].

pub mod diag;
pub mod expect;
pub mod guest_files;
pub mod manifest;
pub mod matrix;
pub mod pod_names;
pub mod pods;
pub mod programs;
pub mod quantity;
pub mod raw;
pub mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use rsslab_wire::pod::NodeSpec;
use rsslab_wire::spec::{CgroupSpec, ProcessSpec, Until};
use rsslab_wire::units::{Bytes, Millis};
#[cfg(doc)]
use rsslab_wire::{spec::Start, workload::WORKLOAD_NAMES};

pub use diag::{Diagnostic, ScenarioError};
pub use matrix::MatrixAxis;
pub use validate::Setup;

/// A checked scenario. With a matrix, the top-level settings are those of the first variant;
/// [`Scenario::variants`] has each.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub id: String,
    pub title: String,
    /// Markdown; empty when the file has none.
    pub story: String,
    /// The file, as given.
    pub path: PathBuf,
    /// The file's text.
    pub source: String,
    /// sha256 of the file's bytes, hex.
    pub sha256: String,
    pub vm: VmConfig,
    pub sysctl: BTreeMap<String, String>,
    pub sysfs: BTreeMap<String, String>,
    pub cgroup: Option<CgroupSpec>,
    /// `[node]` and `[[pod]]`.
    pub node: Option<NodeSpec>,
    pub sample_every: Millis,
    pub duration: Millis,
    /// `[sample] until` / `after`: the run ends `after` once these events have happened.
    pub until: Option<Until>,
    pub processes: Vec<ProcessSpec>,
    /// The matrix axes, in file order; empty without a matrix.
    pub matrix: Vec<MatrixAxis>,
    /// The kernels to run on (catalogue ids, in catalogue order).
    pub kernels: Vec<String>,
    /// Every variant (one, unlabelled, without a matrix), first axis outermost.
    pub variants: Vec<Variant>,
    /// `[[expect]]`, in file order; each run evaluates those whose `when` matches it.
    pub expectations: Vec<expect::Expectation>,
    /// What the file (or a manifest it reads) says that the lab does not use, each once.
    pub warnings: Vec<Diagnostic>,
}

/// The VM a scenario's runs boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmConfig {
    /// Guest RAM. Default: 1GiB.
    pub memory: Bytes,
    /// vCPUs. Default: 1.
    pub cpus: u32,
    /// Scratch ext4 disk at /scratch. Default: none.
    pub disk: Option<Bytes>,
    /// Host-side deadline for the whole VM. Default: the duration + 120s.
    pub timeout: Millis,
}

/// One point of the matrix, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// Matrix key -> value as text; empty without a matrix.
    pub values: BTreeMap<String, String>,
    /// `release=free`; empty without a matrix; filesystem-safe.
    pub label: String,
    pub setup: Setup,
}

/// Reads and checks one scenario file.
pub fn load_scenario(path: &Path, known_kernels: &[String]) -> Result<Scenario, ScenarioError> {
    let source = read_source(path)?;
    parse_scenario(path, &source, known_kernels)
}

/// Reads and checks scenario files; a directory stands for every `*.toml` in it, sorted.
/// Reports the errors of every file, and a scenario id used by two files at the second.
pub fn load_scenarios(
    paths: &[PathBuf],
    known_kernels: &[String],
) -> Result<Vec<Scenario>, ScenarioError> {
    let mut diags = Vec::new();
    let mut scenarios: Vec<Scenario> = Vec::new();
    for file in expand_paths(paths, &mut diags) {
        let loaded =
            read_source(&file).and_then(|source| parse_with_id_span(&file, &source, known_kernels));
        match loaded {
            Ok((scenario, id_span)) => {
                if let Some(first) = scenarios.iter().find(|other| other.id == scenario.id) {
                    let diagnostic = Diagnostic::at(
                        id_span,
                        "scenario.id",
                        format!("scenario id `{}` is used twice", scenario.id),
                    )
                    .note(format!("{} has it already", first.path.display()))
                    .help("scenario ids name report directories: give each scenario its own");
                    diags.extend(diag::locate(vec![diagnostic], &file, &scenario.source));
                } else {
                    scenarios.push(scenario);
                }
            }
            Err(error) => diags.extend(error.into_diagnostics()),
        }
    }
    if diags.is_empty() {
        Ok(scenarios)
    } else {
        Err(ScenarioError::new(diags))
    }
}

/// Files and directories -> scenario files.
fn expand_paths(paths: &[PathBuf], diags: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        let listed = std::fs::read_dir(path).map(|entries| {
            let mut found: Vec<PathBuf> = entries
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|file| file.extension().is_some_and(|ext| ext == "toml") && file.is_file())
                .collect();
            found.sort();
            found
        });
        match listed {
            Ok(found) if found.is_empty() => diags.push(file_error(
                path,
                "no scenario files (*.toml) in this directory",
                "name a directory with scenarios, e.g. scenarios/",
            )),
            Ok(found) => files.extend(found),
            Err(error) => diags.push(file_error(
                path,
                &format!("cannot read the directory: {error}"),
                "check the path",
            )),
        }
    }
    files
}

fn file_error(path: &Path, message: &str, help: &str) -> Diagnostic {
    diag::locate(
        vec![Diagnostic::file_level("", message).help(help)],
        path,
        "",
    )
    .remove(0)
}

/// The largest scenario file read: scenarios are a page or two of TOML.
pub const MAX_SOURCE_BYTES: u64 = 1 << 20;

fn read_source(path: &Path) -> Result<String, ScenarioError> {
    let unreadable = |error: std::io::Error| {
        ScenarioError::new(vec![file_error(
            path,
            &format!("cannot read scenario file: {error}"),
            "check the path; scenarios are TOML files such as scenarios/heap-churn-madvise.toml",
        )])
    };
    let size = std::fs::metadata(path).map_err(unreadable)?.len();
    if size > MAX_SOURCE_BYTES {
        let diagnostic =
            Diagnostic::missing("", format!("the file is {size} bytes: not a scenario"))
                .label(format!(
                    "scenario files are at most {MAX_SOURCE_BYTES} bytes"
                ))
                .help("name a scenario's TOML file; split a very large one into several scenarios");
        return Err(ScenarioError::new(diag::locate(vec![diagnostic], path, "")));
    }
    let bytes = std::fs::read(path).map_err(unreadable)?;
    String::from_utf8(bytes).map_err(|error| {
        let at = error.utf8_error().valid_up_to();
        let source = String::from_utf8_lossy(error.as_bytes()).into_owned();
        let diagnostic = Diagnostic::at(at..at + 1, "", "the file is not UTF-8 text")
            .label("this byte is not UTF-8")
            .help(
                "save the scenario as UTF-8 (TOML files are UTF-8), e.g. iconv -f latin1 -t utf-8",
            );
        ScenarioError::new(diag::locate(vec![diagnostic], path, &source))
    })
}

/// Checks a scenario given as text; `path` is used in messages and kept in the result.
pub fn parse_scenario(
    path: &Path,
    source: &str,
    known_kernels: &[String],
) -> Result<Scenario, ScenarioError> {
    parse_with_id_span(path, source, known_kernels).map(|(scenario, _)| scenario)
}

/// The scenario and where its id is written.
fn parse_with_id_span(
    path: &Path,
    source: &str,
    known_kernels: &[String],
) -> Result<(Scenario, Range<usize>), ScenarioError> {
    let fail = |diags: Vec<Diagnostic>| {
        let located = diag::locate(diags, path, source)
            .into_iter()
            .map(|diagnostic| read_by(diagnostic, path))
            .collect();
        ScenarioError::new(located)
    };
    let mut diags = Vec::new();
    let document = raw::read_document(source, &mut diags).ok_or_else(|| fail(diags.clone()))?;
    if let Some(header) = &document.header {
        validate::validate_header(header, &mut diags);
    }
    let expanded = matrix::expand(&document, &mut diags);
    let variants = match &expanded {
        Some((_, trees)) => {
            let base_dir = path.parent().unwrap_or(Path::new(""));
            check_variants(trees, known_kernels, base_dir, &mut diags)
        }
        None => Vec::new(),
    };
    let expectations = match (&document.expect, &expanded, variants.is_empty()) {
        (Some(node), Some((axes, _)), false) => {
            read_expectations(node, &variants, axes, known_kernels, &mut diags)
        }
        _ => Vec::new(),
    };
    let (Some(header), Some((axes, _)), true) = (document.header, expanded, diags.is_empty())
    else {
        diags.sort_by_key(|d| d.span().map_or(0, |span| span.start));
        return Err(fail(diag::at_most(diags, MAX_DIAGNOSTICS)));
    };
    let first = variants[0].setup.clone();
    let mut warnings: Vec<Diagnostic> = Vec::new();
    for warning in variants.iter().flat_map(|variant| &variant.setup.warnings) {
        if !warnings
            .iter()
            .any(|known| known.identity() == warning.identity())
        {
            warnings.push(warning.clone());
        }
    }
    // Warnings about the scenario file itself are placed in it (a manifest's are already).
    let (own, located): (Vec<Diagnostic>, Vec<Diagnostic>) = warnings
        .into_iter()
        .partition(|warning| warning.file.as_os_str().is_empty());
    let mut warnings = diag::locate(own, path, source);
    warnings.extend(located.into_iter().map(|warning| read_by(warning, path)));
    let scenario = Scenario {
        id: header.id.get_ref().clone(),
        title: header.title.get_ref().clone(),
        story: header.story.unwrap_or_default(),
        path: path.to_path_buf(),
        source: source.to_string(),
        sha256: hex::encode(Sha256::digest(source.as_bytes())),
        vm: first.vm,
        sysctl: first.sysctl,
        sysfs: first.sysfs,
        cgroup: first.cgroup,
        node: first.node,
        sample_every: first.sample_every,
        duration: first.duration,
        until: first.until,
        processes: first.processes,
        matrix: axes,
        kernels: first.kernels,
        variants,
        expectations,
        warnings,
    };
    Ok((scenario, header.id.span()))
}

/// A diagnostic about another file the scenario reads (a manifest) says which scenario read it.
fn read_by(diagnostic: Diagnostic, scenario: &Path) -> Diagnostic {
    if diagnostic.file == scenario {
        return diagnostic;
    }
    let note = format!(
        "read by the scenario {}: a [[pod]]'s manifest",
        scenario.display()
    );
    diagnostic.note(note)
}

/// The most diagnostics reported for one file: past that, the file is not a scenario yet.
pub const MAX_DIAGNOSTICS: usize = 50;

/// Reads `[[expect]]` against the processes of every variant and the matrix.
fn read_expectations(
    node: &raw::Node<'_>,
    variants: &[Variant],
    axes: &[MatrixAxis],
    known_kernels: &[String],
    diags: &mut Vec<Diagnostic>,
) -> Vec<expect::Expectation> {
    let mut processes: BTreeMap<String, expect::ProcessFacts> = BTreeMap::new();
    for process in variants.iter().flat_map(|variant| &variant.setup.processes) {
        let facts = processes.entry(process.name.clone()).or_default();
        let restarted = (!process.restart.is_never()).then_some(rsslab_wire::Supervisor::RESTARTED);
        for phase in process.workload.phases().iter().copied().chain(restarted) {
            if !facts.phases.iter().any(|known| known == phase) {
                facts.phases.push(phase.to_owned());
            }
        }
        for metric in process.workload.metrics() {
            if !facts.metrics.iter().any(|known| known == metric) {
                facts.metrics.push(metric.to_owned());
            }
        }
    }
    let context = expect::ExpectContext {
        kernels: known_kernels,
        processes,
        matrix: axes,
        cgroup: variants
            .iter()
            .any(|variant| variant.setup.cgroup.is_some() || variant.setup.node.is_some()),
        pods: variants
            .iter()
            .flat_map(|variant| variant.setup.node.iter().flat_map(|node| &node.pods))
            .map(|pod| pod.name.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect(),
        containers: variants
            .iter()
            .flat_map(|variant| variant.setup.node.iter().flat_map(|node| &node.pods))
            .flat_map(|pod| {
                pod.all_containers()
                    .map(|container| rsslab_wire::pod::container_key(&pod.name, &container.name))
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect(),
    };
    expect::read_expectations(node, &context, diags)
}

/// Reads and validates every variant; the problems of all of them go to `diags`, once each.
fn check_variants(
    trees: &[matrix::VariantTree<'_>],
    known_kernels: &[String],
    base_dir: &Path,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Variant> {
    let mut variants = Vec::new();
    let mut found: Vec<(String, Vec<Diagnostic>)> = Vec::new();
    for tree in trees {
        // The variants of a broken file mostly share its errors: enough is enough.
        if found.iter().map(|(_, diags)| diags.len()).sum::<usize>() >= MAX_DIAGNOSTICS {
            break;
        }
        let mut variant_diags = Vec::new();
        let setup = raw::read_setup(&tree.body, &mut variant_diags)
            .and_then(|raw| validate::validate(raw, known_kernels, base_dir, &mut variant_diags));
        found.push((tree.label.clone(), variant_diags));
        if let Some(setup) = setup {
            variants.push(Variant {
                values: tree.values.clone(),
                label: tree.label.clone(),
                setup,
            });
        }
    }
    diags.extend(merge_variants(found));
    variants
}

/// One list from the diagnostics of each variant: each problem once, with a note naming the
/// variants it occurs in when that is not all of them.
fn merge_variants(found: Vec<(String, Vec<Diagnostic>)>) -> Vec<Diagnostic> {
    let total = found.len();
    let mut merged: Vec<(Diagnostic, Vec<String>)> = Vec::new();
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (label, diags) in found {
        for diagnostic in diags {
            match seen.get(&diagnostic.identity()) {
                Some(&at) => merged[at].1.push(label.clone()),
                None => {
                    seen.insert(diagnostic.identity(), merged.len());
                    merged.push((diagnostic, vec![label.clone()]));
                }
            }
        }
    }
    merged
        .into_iter()
        .map(|(diagnostic, labels)| {
            if labels.len() < total {
                let which = if labels.len() == 1 {
                    "variant"
                } else {
                    "variants"
                };
                diagnostic.note(format!("in matrix {which} {}", labels.join("; ")))
            } else {
                diagnostic
            }
        })
        .collect()
}
