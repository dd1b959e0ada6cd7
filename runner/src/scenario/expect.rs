//! Expectations: what must hold in each run of a scenario (`[[expect]]`), checked at
//! `rsslab check` time and evaluated from the raw records alone.
//!
//! # Syntax
//!
//! Each `[[expect]]` has a `name` (required), an optional `when`, and exactly one check.
//!
//! ```toml
//! [[expect]]
//! name = "MADV_FREE keeps the released heap in RSS while nothing presses"
//! when = { "process.service.args.release" = "free" }
//! metric = "process.service.rss"      # process.<name>.<metric>, cgroup.<metric>, guest.<metric>,
//!                                     # pod.<pod>.<metric>, container.<pod>.<container>.<metric>
//! stat = "last"                       # max, min, mean (of the samples), first, last (default),
//!                                     # slope (least-squares fit, bytes per minute),
//!                                     # increase (how much a counter rose)
//! from = "service:released"           # window start: an event label; omitted = start of run
//! after = "1s"                        # added to the start; default 0s
//! to = "balloon:started"              # window end; omitted = end of run
//! above = "380MiB"                    # or below, at_least, at_most
//!
//! [[expect]]
//! name = "RSS after release stays above 90% of the peak"
//! metric = "process.service.rss"
//! from = "service:released"
//! at_least = { metric = "process.service.rss", stat = "max", times = 0.9 }
//!
//! [[expect]]
//! name = "the service survives"
//! process = "service"
//! outcome = ["running-at-end", "exited(0)"]   # one outcome or a list of them
//!
//! [[expect]]
//! name = "cgroup v1 is refused where the kernel has none"
//! when = { cgroup_v1_memory = false }
//! run_outcome = "unsupported"
//! ```
//!
//! **Checks.** A *metric check* has `metric` and one comparison (`above` >, `below` <,
//! `at_least` >=, `at_most` <=) against either a size (`"300MiB"`, or bytes) or another metric
//! expression `{ metric, stat, from, to, after, times, plus }`, meaning `times` × the metric's
//! statistic + `plus` (its window defaults to the whole run, `times` to 1, `plus` to 0; e.g.
//! `above = { metric = "guest.committed_as", to = "service:started", plus = "85MiB" }`: it rose
//! by more than 85MiB). An *outcome check* has `process` and `outcome`: the process's outcome as in
//! results.json (`exited(N)`, `killed(SIGNAL)`, `oom-killed`, `enomem-at-start`,
//! `running-at-end`, `not-started`). A *run outcome check* has `run_outcome`: `ok`,
//! `unsupported`, `kernel-panic`, `vm-timeout` or `infra-error` (or a list).
//!
//! **Growth.** `stat = "slope"` fits a line through the window's samples (least squares, value
//! against time) and compares its slope, per minute, with a size: `above = "20MiB"` means it
//! grew faster than 20 MiB a minute. It needs two samples in the window.
//!
//! **Counters.** The kernel's account (`cgroup.high`, `guest.pgscan`, `cgroup.psi_full_total`,
//! ...) is cumulative: `stat = "increase"` is how much it rose in the window (the sum of its
//! rises from sample to sample; a value below the one before is a reset, counted from zero).
//! Compare it with a plain number, in the metric's own unit: events, pages or faults, and
//! microseconds for `psi_*_total` (`above = 1000000`: more than a second stalled);
//! `psi_*_avg10` is in hundredths of a percent. Details show each in its unit ([`unit_of`]).
//!
//! **Windows.** Event labels are those of the run's events: `<process>:started`,
//! `<process>:<phase>` (a phase the process's workload reports), `<process>:ended` and
//! `oom-kill` (any OOM kill; one the agent matched to a process is `<process>:oom-kill` too). The window starts at the first `from` event plus `after` (a sample at that
//! millisecond counts) and ends at the first `to` event at or after that start, which it does
//! not include (a sample stamped in the `to` event's millisecond may already see what the event
//! started, so it belongs to the next window). An event that never happened or a window
//! without samples fails the expectation, saying so.
//!
//! **`when`.** Keys: `kernel` (a catalogue id or a list of them), kernel facts of
//! `vm-images/kernels.toml` (`madv_free`, `cgroup_v1_memory`, `mglru`, `mglru_default`,
//! `overcommit_heuristic_total_only` = true/false), and keys of `[matrix]` with one of their
//! values, or a list of them (any one matches). Every key must match; a run it does not match
//! does not list the expectation.
//!
//! **Runs that did not complete.** When a run's outcome is not `ok`, every expectation but a
//! `run_outcome` check fails with "run did not complete: <outcome>".
//!
//! Entry point: [`read_expectations`] (the scenario loader calls it); the evaluation from the
//! raw records is [`crate::analysis::expectations`].

use std::collections::BTreeMap;
use std::ops::Range;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_spanned::Spanned;
use toml::de::{DeTable, DeValue};

use rsslab_wire::message::{CONTAINER_EVENTS, CONTAINER_LIFE_METRICS};
use rsslab_wire::units::{Bytes, Millis};
use rsslab_wire::workload::{PROCESS_METRICS, PROCESS_SCORES};
use rsslab_wire::{ProcessOutcome, RunOutcome};

use crate::catalogue::KernelFacts;

use super::diag::{Diagnostic, join, split_fix, suggest};
use super::matrix::MatrixAxis;
use super::raw::{Node, fields_of, knob_text, read_table};

/// One `[[expect]]`, checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expectation {
    pub name: String,
    /// Which runs it applies to; empty = every run.
    #[serde(default, skip_serializing_if = "When::is_empty")]
    pub when: When,
    pub check: Check,
}

/// `when`: every condition must hold for the expectation to apply to a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct When {
    /// Catalogue ids; empty = any kernel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kernels: Vec<String>,
    /// Kernel fact name -> required value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub facts: BTreeMap<String, bool>,
    /// Matrix key (as written in `[matrix]`) -> the values (as text) of which the run's must
    /// be one. Records written before lists were allowed hold one string.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "one_or_many_values"
    )]
    pub matrix: BTreeMap<String, Vec<String>>,
}

/// `when.matrix` as serialized: each value a string or a list of strings.
fn one_or_many_values<'de, D>(deserializer: D) -> Result<BTreeMap<String, Vec<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let map = BTreeMap::<String, OneOrMany>::deserialize(deserializer)?;
    Ok(map
        .into_iter()
        .map(|(key, value)| match value {
            OneOrMany::One(one) => (key, vec![one]),
            OneOrMany::Many(many) => (key, many),
        })
        .collect())
}

impl When {
    pub fn is_empty(&self) -> bool {
        self.kernels.is_empty() && self.facts.is_empty() && self.matrix.is_empty()
    }
}

/// What an expectation checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// A statistic of a metric over a window, compared with a value.
    Metric {
        measure: Measure,
        compare: Comparison,
        against: Operand,
    },
    /// How a process ended: one of these.
    Outcome {
        process: String,
        outcomes: Vec<ProcessOutcome>,
    },
    /// How the run ended: one of these.
    RunOutcome { outcomes: Vec<RunOutcome> },
}

/// A statistic of one metric over a window between events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measure {
    /// `process.<name>.<metric>`, `cgroup.<metric>` or `guest.<metric>`.
    pub metric: String,
    pub stat: Stat,
    /// Event label the window starts at; `None` = start of the run.
    #[serde(default)]
    pub from: Option<String>,
    /// Added to the start.
    #[serde(default)]
    pub after: Millis,
    /// Event label the window ends at; `None` = end of the run.
    #[serde(default)]
    pub to: Option<String>,
}

/// How the samples of a window become one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stat {
    Max,
    Min,
    Mean,
    First,
    Last,
    /// The least-squares slope of the samples over time, in bytes per minute: growth.
    Slope,
    /// How much a counter rose in the window: the sum of its rises from sample to sample (a
    /// value below the one before is a reset, counted from zero).
    Increase,
}

const STATS: &[&str] = &["max", "min", "mean", "first", "last", "slope", "increase"];

impl Stat {
    fn parse(text: &str) -> Option<Stat> {
        Some(match text {
            "max" => Stat::Max,
            "min" => Stat::Min,
            "mean" => Stat::Mean,
            "first" => Stat::First,
            "last" => Stat::Last,
            "slope" => Stat::Slope,
            "increase" => Stat::Increase,
            _ => return None,
        })
    }

    /// The name a scenario writes (`max`).
    pub fn as_str(self) -> &'static str {
        STATS[self as usize]
    }
}

/// The comparison of a metric check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    Above,
    Below,
    AtLeast,
    AtMost,
}

const COMPARISONS: &[&str] = &["above", "below", "at_least", "at_most"];

impl Comparison {
    /// The name a scenario writes (`at_least`).
    pub fn as_str(self) -> &'static str {
        COMPARISONS[self as usize]
    }

    /// Whether `value` compares so with `bound`.
    pub fn holds(self, value: f64, bound: f64) -> bool {
        match self {
            Comparison::Above => value > bound,
            Comparison::Below => value < bound,
            Comparison::AtLeast => value >= bound,
            Comparison::AtMost => value <= bound,
        }
    }
}

/// What a metric is compared with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operand {
    Size(Bytes),
    /// `times` × the measure's value, `plus` a size.
    Metric {
        measure: Measure,
        times: f64,
        #[serde(default)]
        plus: Bytes,
    },
}

/// Cgroup and guest metrics an expectation may name: sizes in bytes, then the kernel's account
/// (see [`unit_of`] for what each counts).
pub const CGROUP_METRICS: &[&str] = &[
    "usage",
    "working_set",
    "anon",
    "file",
    "active_file",
    "inactive_file",
    "shmem",
    "limit",
    "peak",
    // cAdvisor's container_memory_rss (anon) and the kubelet's availableBytes (limit - working set)
    "rss",
    "available",
    // memory.events (v1: `max` = memory.failcnt, `oom_kill` = memory.oom_control)
    "low",
    "high",
    "max",
    "oom",
    "oom_kill",
    "oom_group_kill",
    // memory.pressure (v2) and memory.stat
    "psi_some_total",
    "psi_full_total",
    "psi_some_avg10",
    "psi_full_avg10",
    "pgscan",
    "pgsteal",
    "pgscan_direct",
    "pgsteal_direct",
    "workingset_refault",
    "workingset_activate",
    "pgmajfault",
];
pub const GUEST_METRICS: &[&str] = &[
    "mem_total",
    "mem_free",
    "mem_available",
    "cached",
    "committed_as",
    "commit_limit",
    "anon_huge",
    "kubelet_available",
    // /proc/pressure/memory and /proc/vmstat
    "psi_some_total",
    "psi_full_total",
    "psi_some_avg10",
    "psi_full_avg10",
    "pgscan",
    "pgsteal",
    "pgscan_direct",
    "pgsteal_direct",
    "workingset_refault",
    "workingset_activate",
    "pgmajfault",
    "oom_kill",
];

/// What the number of a metric counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    /// Events, pages or faults, counted up since boot (or since the cgroup was made).
    Count,
    /// Microseconds of stall, counted up (`psi_*_total`).
    Micros,
    /// A share in hundredths of a percent (`psi_*_avg10`: the kernel's 10 s average).
    Hundredths,
}

/// The counters of the kernel's account, cumulative as the kernel keeps them, in the order the
/// report lists them: in the guest map and (where there is one) the cgroup's.
pub const ACCOUNT_COUNTERS: &[&str] = &[
    "psi_some_total",
    "psi_full_total",
    "pgscan",
    "pgsteal",
    "pgscan_direct",
    "pgsteal_direct",
    "workingset_refault",
    "workingset_activate",
    "pgmajfault",
    "oom_kill",
];

/// The `memory.events` counters of a cgroup (v1: `max` from memory.failcnt, `oom_kill`).
pub const CGROUP_EVENTS: &[&str] = &["low", "high", "max", "oom", "oom_kill", "oom_group_kill"];

/// The unit of a cgroup or guest metric that is part of the kernel's account (a counter or a
/// pressure average); `None` for a size.
pub fn account_unit(name: &str) -> Option<Unit> {
    match name {
        name if name.starts_with("psi_") && name.ends_with("_total") => Some(Unit::Micros),
        name if name.starts_with("psi_") => Some(Unit::Hundredths),
        name if ACCOUNT_COUNTERS.contains(&name)
            || CGROUP_EVENTS.contains(&name)
            || CONTAINER_LIFE_METRICS.contains(&name) =>
        {
            Some(Unit::Count)
        }
        _ => None,
    }
}

/// The unit of a metric path (`cgroup.high`, `guest.psi_some_total`, `process.service.rss`):
/// the kernel's account by name ([`account_unit`]), every other metric is a size.
pub fn unit_of(metric: &str) -> Unit {
    if let Some(process_metric) = metric.strip_prefix("process.") {
        let name = process_metric.rsplit('.').next().unwrap_or(process_metric);
        return if PROCESS_SCORES.contains(&name) {
            Unit::Count
        } else {
            Unit::Bytes
        };
    }
    let name = metric.rsplit('.').next().unwrap_or(metric);
    account_unit(name).unwrap_or(Unit::Bytes)
}

/// A value of `unit` for people: `12.5MiB`, `340`, `1.25s`, `12.34%`; a slope per minute
/// (`per_minute`) keeps the unit (`3.9MiB` a minute). The one formatter of measured sizes:
/// expectations, findings, the summary, JUnit and `rsslab diff` all print sizes with it, in
/// MiB with one decimal, so numbers from different places compare at a glance.
pub fn format_value(unit: Unit, value: f64) -> String {
    match unit {
        Unit::Bytes => format!("{:.1}MiB", value / rsslab_wire::units::MIB as f64),
        Unit::Count if value.fract() == 0.0 => format!("{value:.0}"),
        Unit::Count => format!("{value:.1}"),
        Unit::Micros => format!("{:.2}s", value / 1e6),
        Unit::Hundredths => format!("{:.2}%", value / 100.0),
    }
}
const RUN_OUTCOMES: &[RunOutcome] = &RunOutcome::ALL;

/// The first segment of a metric path.
const NAMESPACES: &[&str] = &["process", "cgroup", "guest", "pod", "container"];

// ---------------------------------------------------------------------------------------------
// Reading and checking

/// What expectations are checked against: the scenario as validated.
pub struct ExpectContext<'a> {
    /// Kernel catalogue ids.
    pub kernels: &'a [String],
    /// Process name -> what its workload reports (over every variant).
    pub processes: BTreeMap<String, ProcessFacts>,
    /// The `[matrix]` axes.
    pub matrix: &'a [MatrixAxis],
    /// Whether a variant has a `[cgroup]` or pods (else no sample has cgroup metrics).
    pub cgroup: bool,
    /// Pod names (over every variant).
    pub pods: Vec<String>,
    /// Containers, `<pod>/<container>` (over every variant).
    pub containers: Vec<String>,
}

/// What a process's workload reports, over every variant.
#[derive(Debug, Clone, Default)]
pub struct ProcessFacts {
    /// Its phases, for event labels.
    pub phases: Vec<String>,
    /// The metrics it reports itself (beside [`PROCESS_METRICS`]).
    pub metrics: Vec<String>,
}

/// One `[[expect]]` as serde reads it; `when`, the comparisons and the outcomes are read from
/// the node by hand (they take several shapes), so serde only checks that they are there.
#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    name: Spanned<String>,
    #[serde(default)]
    when: Option<IgnoredAny>,
    metric: Option<Spanned<String>>,
    stat: Option<Spanned<String>>,
    from: Option<Spanned<String>>,
    after: Option<Spanned<Millis>>,
    to: Option<Spanned<String>>,
    #[serde(default)]
    above: Option<IgnoredAny>,
    #[serde(default)]
    below: Option<IgnoredAny>,
    #[serde(default)]
    at_least: Option<IgnoredAny>,
    #[serde(default)]
    at_most: Option<IgnoredAny>,
    process: Option<Spanned<String>>,
    #[serde(default)]
    outcome: Option<IgnoredAny>,
    #[serde(default)]
    run_outcome: Option<IgnoredAny>,
}

/// `{ metric, stat, from, after, to, times }` on the right of a comparison.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperand {
    metric: Spanned<String>,
    stat: Option<Spanned<String>>,
    from: Option<Spanned<String>>,
    after: Option<Spanned<Millis>>,
    to: Option<Spanned<String>>,
    times: Option<Spanned<f64>>,
    plus: Option<Spanned<Bytes>>,
}

/// Reads and checks the `expect` node of a scenario file (an array of tables); every problem
/// goes to `diags`. Returns the expectations that read.
pub fn read_expectations(
    node: &Node<'_>,
    context: &ExpectContext<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Expectation> {
    let DeValue::Array(array) = node.get_ref() else {
        diags.push(
            Diagnostic::at(node.span(), "expect", "`expect` must be an array of tables")
                .help("write [[expect]] (two pairs of brackets) above each expectation"),
        );
        return Vec::new();
    };
    // A root holding only `expect`, so serde errors are placed at `expect[i].key`.
    let mut root = DeTable::new();
    root.insert(Spanned::new(0..0, "expect".into()), node.clone());
    let mut names = std::collections::BTreeSet::new();
    let mut expectations = Vec::new();
    for (index, item) in array.iter().enumerate() {
        let path = format!("expect[{index}]");
        let Some(raw) = read_table::<RawExpect>(&root, item, &path, diags) else {
            continue;
        };
        let name = raw.name.get_ref().trim().to_string();
        if name.is_empty() {
            diags.push(
                keyed(
                    raw.name.span(),
                    format!("{path}.name"),
                    "empty expectation name",
                )
                .help("say in a few words what must hold; the report lists it by this name"),
            );
        } else if !names.insert(name.clone()) {
            diags.push(
                keyed(
                    raw.name.span(),
                    format!("{path}.name"),
                    format!("expectation name `{name}` is used twice"),
                )
                .help("give each expectation its own name: results list them by name"),
            );
        }
        let reader = Reader {
            root: &root,
            context,
            path: &path,
            item,
        };
        let before = diags.len();
        let when = reader.when(diags);
        let check = reader.check(&raw, diags);
        if let (Some(check), true) = (check, diags.len() == before) {
            expectations.push(Expectation { name, when, check });
        }
    }
    expectations
}

struct Reader<'r, 'i> {
    root: &'r DeTable<'i>,
    context: &'r ExpectContext<'r>,
    path: &'r str,
    item: &'r Node<'i>,
}

impl<'i> Reader<'_, 'i> {
    fn get(&self, key: &str) -> Option<&Node<'i>> {
        self.item.get_ref().get(key)
    }

    fn key(&self, key: &str) -> String {
        join(self.path, key)
    }

    /// `when = { ... }`.
    fn when(&self, diags: &mut Vec<Diagnostic>) -> When {
        let mut when = When::default();
        let Some(node) = self.get("when") else {
            return when;
        };
        let DeValue::Table(table) = node.get_ref() else {
            diags.push(
                Diagnostic::at(node.span(), self.key("when"), format!("`{}` must be a table", self.key("when")))
                    .help("write e.g. when = { kernel = \"6.1\", \"process.service.args.release\" = \"free\" }"),
            );
            return when;
        };
        let mut entries = Vec::new();
        flatten(table, "", None, &mut entries);
        let facts = fields_of::<KernelFacts>();
        for (name, key_span, value) in entries {
            let key = format!(
                "{}.{}",
                self.key("when"),
                crate::scenario::raw::key_segment(&name)
            );
            if name == "kernel" {
                self.when_kernels(&key, &value, &mut when, diags);
            } else if facts.contains(&name.as_str()) {
                match value.get_ref() {
                    DeValue::Boolean(flag) => {
                        when.facts.insert(name, *flag);
                    }
                    other => diags.push(
                        keyed(
                            value.span(),
                            key,
                            format!("kernel fact `{name}` is true or false"),
                        )
                        .label(format!("found {}", other.type_str()))
                        .help(format!("write {name} = true or {name} = false")),
                    ),
                }
            } else if let Some(axis) = self.context.matrix.iter().find(|axis| axis.key == name) {
                let items: Vec<&Node<'_>> = match value.get_ref() {
                    DeValue::Array(array) if !array.is_empty() => array.iter().collect(),
                    DeValue::Array(_) => {
                        diags.push(
                            keyed(value.span(), key, format!("`{name}` lists no value")).help(
                                format!(
                                    "write one of {} or a list of them",
                                    axis.values.join(", ")
                                ),
                            ),
                        );
                        continue;
                    }
                    _ => vec![&value],
                };
                let mut values = Vec::new();
                for item in items {
                    let text = scalar_text(item.get_ref());
                    match text {
                        Some(text) if axis.values.contains(&text) => values.push(text),
                        _ => diags.push(
                            keyed(
                                item.span(),
                                key.clone(),
                                format!("`{name}` never takes this value"),
                            )
                            .label(format!("the matrix gives it {}", axis.values.join(", ")))
                            .help(suggest(
                                &text.unwrap_or_default(),
                                &axis.values.iter().map(String::as_str).collect::<Vec<_>>(),
                            )),
                        ),
                    }
                }
                when.matrix.insert(name, values);
            } else {
                let mut known: Vec<&str> = vec!["kernel"];
                known.extend(facts.iter().copied());
                known.extend(self.context.matrix.iter().map(|axis| axis.key.as_str()));
                let mut diagnostic =
                    keyed(key_span, key, format!("unknown key `{name}` in `when`"))
                        .help(suggest(&name, &known));
                if self.context.matrix.is_empty() && name.contains('.') {
                    diagnostic = diagnostic
                        .note("`when` may name keys of [matrix], and this scenario has none");
                }
                diags.push(diagnostic);
            }
        }
        when
    }

    fn when_kernels(
        &self,
        key: &str,
        value: &Node<'_>,
        when: &mut When,
        diags: &mut Vec<Diagnostic>,
    ) {
        let items: Vec<&Node<'_>> = match value.get_ref() {
            DeValue::String(_) => vec![value],
            DeValue::Array(array) => array.iter().collect(),
            other => {
                diags.push(
                    keyed(
                        value.span(),
                        key,
                        "`kernel` is a catalogue id or a list of them",
                    )
                    .label(format!("found {}", other.type_str()))
                    .help("write kernel = \"6.1\" or kernel = [\"5.10\", \"6.1\"]"),
                );
                return;
            }
        };
        let known: Vec<&str> = self.context.kernels.iter().map(String::as_str).collect();
        for item in items {
            match item.get_ref() {
                DeValue::String(id) if known.contains(&id.as_ref()) => {
                    when.kernels.push(id.to_string())
                }
                DeValue::String(id) => diags.push(
                    keyed(item.span(), key, format!("unknown kernel `{id}`"))
                        .help(suggest(id, &known)),
                ),
                other => diags.push(
                    keyed(item.span(), key, "a kernel is a catalogue id, a string")
                        .label(format!("found {}", other.type_str()))
                        .help(format!(
                            "write kernel = \"{}\" or a list of ids in quotes",
                            known.first().unwrap_or(&"6.1")
                        )),
                ),
            }
        }
    }

    /// Which of the three checks, read.
    fn check(&self, raw: &RawExpect, diags: &mut Vec<Diagnostic>) -> Option<Check> {
        let metric = raw.metric.is_some();
        let outcome = raw.process.is_some() || raw.outcome.is_some();
        let run_outcome = raw.run_outcome.is_some();
        let kinds = [metric, outcome, run_outcome]
            .iter()
            .filter(|k| **k)
            .count();
        let name = raw.name.get_ref();
        if kinds == 0 {
            diags.push(
                keyed(self.item.span(), self.path, format!("expectation `{name}` checks nothing"))
                    .help("add one check: metric = \"process.service.rss\" with above/below/at_least/at_most, or process + outcome, or run_outcome"),
            );
            return None;
        }
        if kinds > 1 {
            let written: Vec<&str> = [
                (metric, "metric"),
                (outcome, "process/outcome"),
                (run_outcome, "run_outcome"),
            ]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, what)| *what)
            .collect();
            diags.push(
                keyed(
                    self.item.span(),
                    self.path,
                    format!("expectation `{name}` has more than one check"),
                )
                .label(format!("it has {}", written.join(" and ")))
                .help("write one check per [[expect]]: split it into several"),
            );
            return None;
        }
        if !metric {
            self.no_metric_keys(raw, diags);
        }
        if metric {
            self.metric_check(raw, diags)
        } else if outcome {
            self.outcome_check(raw, diags)
        } else {
            self.run_outcome_check(diags)
        }
    }

    /// Window and comparison keys without `metric`.
    fn no_metric_keys(&self, raw: &RawExpect, diags: &mut Vec<Diagnostic>) {
        let spans = [
            ("stat", raw.stat.as_ref().map(Spanned::span)),
            ("from", raw.from.as_ref().map(Spanned::span)),
            ("after", raw.after.as_ref().map(Spanned::span)),
            ("to", raw.to.as_ref().map(Spanned::span)),
        ];
        let comparisons = COMPARISONS
            .iter()
            .map(|c| (*c, self.get(c).map(Spanned::span)));
        for (key, span) in spans.into_iter().chain(comparisons) {
            if let Some(span) = span {
                diags.push(
                    keyed(span, self.key(key), format!("`{key}` belongs to a metric check, and this expectation has no `metric`"))
                        .help("add metric = \"process.<name>.rss\" (or cgroup.working_set, guest.mem_available), or remove it"),
                );
            }
        }
    }

    fn metric_check(&self, raw: &RawExpect, diags: &mut Vec<Diagnostic>) -> Option<Check> {
        let measure = self.measure(
            self.path,
            raw.metric.as_ref()?,
            raw.stat.as_ref(),
            raw.from.as_ref(),
            raw.after.as_ref(),
            raw.to.as_ref(),
            diags,
        );
        let written: Vec<(Comparison, &Node<'i>)> = [
            Comparison::Above,
            Comparison::Below,
            Comparison::AtLeast,
            Comparison::AtMost,
        ]
        .into_iter()
        .filter_map(|comparison| self.get(comparison.as_str()).map(|node| (comparison, node)))
        .collect();
        let (compare, node) = match written.as_slice() {
            [one] => *one,
            [] => {
                diags.push(
                    keyed(
                        self.item.span(),
                        self.path,
                        format!(
                            "expectation `{}` compares its metric with nothing",
                            raw.name.get_ref()
                        ),
                    )
                    .help("add one of above, below, at_least, at_most, e.g. above = \"300MiB\""),
                );
                return None;
            }
            [_, second, ..] => {
                diags.push(
                    keyed(second.1.span(), self.key(second.0.as_str()), "a metric check has one comparison")
                        .help("write one of above, below, at_least, at_most; for a range, write two expectations"),
                );
                return None;
            }
        };
        let against = self.operand(compare, node, diags)?;
        Some(Check::Metric {
            measure: measure?,
            compare,
            against,
        })
    }

    /// A size, or a metric expression.
    fn operand(
        &self,
        compare: Comparison,
        node: &Node<'i>,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<Operand> {
        let key = self.key(compare.as_str());
        match node.get_ref() {
            DeValue::String(text) => match text.parse::<Bytes>() {
                Ok(bytes) => Some(Operand::Size(bytes)),
                Err(error) => {
                    let error = error.to_string();
                    let (what, fix) = split_fix(&error);
                    diags.push(
                        Diagnostic::at(node.span(), &key, format!("invalid value for `{key}`"))
                            .label(what)
                            .help(fix.unwrap_or_else(|| "write a size such as \"300MiB\"".into()))
                            .help("or compare with another metric: { metric = \"process.service.rss\", stat = \"max\", times = 0.9 }"),
                    );
                    None
                }
            },
            DeValue::Integer(_) => {
                match knob_text(node.get_ref()).and_then(|n| n.parse::<u64>().ok()) {
                    Some(bytes) => Some(Operand::Size(Bytes(bytes))),
                    None => {
                        diags.push(
                            keyed(node.span(), key, "a size cannot be negative")
                                .help("write e.g. \"300MiB\""),
                        );
                        None
                    }
                }
            }
            DeValue::Table(_) => {
                let raw = read_table::<RawOperand>(self.root, node, &key, diags)?;
                let times = match &raw.times {
                    Some(times) if !(times.get_ref().is_finite() && *times.get_ref() > 0.0) => {
                        diags.push(
                            keyed(
                                times.span(),
                                format!("{key}.times"),
                                "`times` is a positive factor",
                            )
                            .help("write e.g. times = 0.9 for 90%"),
                        );
                        return None;
                    }
                    Some(times) => *times.get_ref(),
                    None => 1.0,
                };
                let measure = self.measure(
                    &key,
                    &raw.metric,
                    raw.stat.as_ref(),
                    raw.from.as_ref(),
                    raw.after.as_ref(),
                    raw.to.as_ref(),
                    diags,
                )?;
                let plus = raw.plus.map(|plus| *plus.get_ref()).unwrap_or_default();
                Some(Operand::Metric {
                    measure,
                    times,
                    plus,
                })
            }
            other => {
                diags.push(
                    keyed(node.span(), key, format!("`{}` takes a size or a metric", compare.as_str()))
                        .label(format!("found {}", other.type_str()))
                        .help("write a size such as \"300MiB\", or { metric = \"process.service.rss\", stat = \"max\", times = 0.9 }"),
                );
                None
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn measure(
        &self,
        path: &str,
        metric: &Spanned<String>,
        stat: Option<&Spanned<String>>,
        from: Option<&Spanned<String>>,
        after: Option<&Spanned<Millis>>,
        to: Option<&Spanned<String>>,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<Measure> {
        let before = diags.len();
        self.check_metric(&join(path, "metric"), metric, diags);
        let stat = match stat {
            None => Some(Stat::Last),
            Some(text) => {
                let parsed = Stat::parse(text.get_ref());
                if parsed.is_none() {
                    diags.push(
                        keyed(
                            text.span(),
                            join(path, "stat"),
                            format!("unknown stat `{}`", text.get_ref()),
                        )
                        .help(suggest(text.get_ref(), STATS)),
                    );
                }
                parsed
            }
        };
        for (key, label) in [("from", from), ("to", to)] {
            if let Some(label) = label {
                self.check_label(&join(path, key), label, diags);
            }
        }
        if diags.len() > before {
            return None;
        }
        Some(Measure {
            metric: metric.get_ref().clone(),
            stat: stat?,
            from: from.map(|label| label.get_ref().clone()),
            after: after.map(|after| *after.get_ref()).unwrap_or_default(),
            to: to.map(|label| label.get_ref().clone()),
        })
    }

    /// `process.<name>.<metric>`, `cgroup.<metric>`, `guest.<metric>`.
    fn check_metric(&self, key: &str, metric: &Spanned<String>, diags: &mut Vec<Diagnostic>) {
        let text = metric.get_ref();
        let parts: Vec<&str> = text.split('.').collect();
        let at = |message: String| keyed(metric.span(), key, message);
        match parts.as_slice() {
            ["process", name, metric_name] if !metric_name.is_empty() => {
                let Some(facts) = self.context.processes.get(*name) else {
                    let names: Vec<&str> = self.context.processes.keys().map(String::as_str).collect();
                    diags.push(
                        at(format!("`{text}` names process `{name}`, which the scenario does not have"))
                            .help(suggest(name, &names)),
                    );
                    return;
                };
                let mut known: Vec<&str> = PROCESS_METRICS.to_vec();
                known.extend(PROCESS_SCORES);
                known.extend(facts.metrics.iter().map(String::as_str));
                if !known.contains(metric_name) {
                    diags.push(
                        at(format!("process `{name}` has no metric `{metric_name}`"))
                            .label(format!("its samples hold {}", known.join(", ")))
                            .help(suggest(metric_name, &known)),
                    );
                }
            }
            ["cgroup", name] => {
                if !CGROUP_METRICS.contains(name) {
                    diags.push(at(format!("unknown cgroup metric `{name}`")).help(suggest(name, CGROUP_METRICS)));
                } else if !self.context.cgroup {
                    diags.push(
                        at(format!("`{text}` needs a cgroup, and the scenario has no [cgroup]"))
                            .label("no sample would hold it")
                            .help("add [cgroup] (e.g. with memory_max = \"512MiB\"), or measure process.<name>.rss or guest.mem_available"),
                    );
                }
            }
            ["guest", name] => {
                if !GUEST_METRICS.contains(name) {
                    diags.push(at(format!("unknown guest metric `{name}`")).help(suggest(name, GUEST_METRICS)));
                }
            }
            ["pod", pod, name] => {
                let pods: Vec<&str> = self.context.pods.iter().map(String::as_str).collect();
                if !pods.contains(pod) {
                    diags.push(at(format!("`{text}` names pod `{pod}`, which the scenario does not have")).help(suggest(pod, &pods)));
                } else if !CGROUP_METRICS.contains(name) {
                    diags.push(at(format!("unknown pod metric `{name}`")).label("a pod has its cgroup's metrics").help(suggest(name, CGROUP_METRICS)));
                }
            }
            ["container", pod, container, name] => {
                let key = format!("{pod}/{container}");
                let containers: Vec<&str> = self.context.containers.iter().map(String::as_str).collect();
                if !containers.contains(&key.as_str()) {
                    diags.push(
                        at(format!("`{text}` names container `{key}`, which the scenario does not have"))
                            .label("containers are container.<pod>.<container>.<metric>")
                            .help(suggest(&key, &containers)),
                    );
                } else if !CGROUP_METRICS.contains(name) && !CONTAINER_LIFE_METRICS.contains(name) {
                    let known: Vec<&str> = CGROUP_METRICS.iter().chain(CONTAINER_LIFE_METRICS).copied().collect();
                    diags.push(at(format!("unknown container metric `{name}`")).label("a container has its cgroup's metrics, `restarts` and `terminated_<reason>`").help(suggest(name, &known)));
                }
            }
            [namespace, ..] if !NAMESPACES.contains(namespace) => diags.push(
                at(format!("unknown metric namespace `{namespace}`"))
                    .label("metrics are process.<name>.<metric>, cgroup.<metric>, guest.<metric>, pod.<pod>.<metric> or container.<pod>.<container>.<metric>")
                    .help(suggest(namespace, NAMESPACES)),
            ),
            _ => diags.push(
                at(format!("`{text}` is not a metric"))
                    .help("write process.<name>.<metric> (e.g. process.service.rss), cgroup.<metric> (e.g. cgroup.working_set), guest.<metric> (e.g. guest.mem_available), pod.<pod>.<metric> or container.<pod>.<container>.<metric> (e.g. container.web.api.working_set)"),
            ),
        }
    }

    /// An event label: `<process>:started`, `<process>:<phase>`, `<process>:ended`, `oom-kill`.
    fn check_label(&self, key: &str, label: &Spanned<String>, diags: &mut Vec<Diagnostic>) {
        let text = label.get_ref();
        if text == "oom-kill" {
            return;
        }
        let at = |message: String| keyed(label.span(), key, message);
        let Some((process, event)) = text.split_once(':') else {
            diags.push(
                at(format!("`{text}` is not an event")).help(
                    "write <process>:started, <process>:<phase>, <process>:ended, <pod>/<container>:<event> or oom-kill",
                ),
            );
            return;
        };
        if process.contains('/') {
            self.check_container_label(text, process, event, &at, diags);
            return;
        }
        let Some(phases) = self
            .context
            .processes
            .get(process)
            .map(|facts| &facts.phases)
        else {
            let names: Vec<&str> = self.context.processes.keys().map(String::as_str).collect();
            diags.push(
                at(format!(
                    "`{text}` names process `{process}`, which the scenario does not have"
                ))
                .help(suggest(process, &names)),
            );
            return;
        };
        let mut events = vec!["started"];
        events.extend(phases.iter().map(String::as_str));
        events.push("ended");
        if !events.contains(&event) {
            diags.push(
                at(format!(
                    "`{text}` never happens: `{process}` has no event `{event}`"
                ))
                .label(format!("{process} has {}", events.join(", ")))
                .help(suggest(event, &events)),
            );
        }
    }

    /// A container's event label: `<pod>/<container>:<event>`.
    fn check_container_label(
        &self,
        text: &str,
        container: &str,
        event: &str,
        at: &dyn Fn(String) -> Diagnostic,
        diags: &mut Vec<Diagnostic>,
    ) {
        if !self
            .context
            .containers
            .iter()
            .any(|known| known == container)
        {
            let known: Vec<&str> = self.context.containers.iter().map(String::as_str).collect();
            diags.push(
                at(format!(
                    "`{text}` names container `{container}`, which the scenario does not have"
                ))
                .help(suggest(container, &known)),
            );
        } else if !CONTAINER_EVENTS.contains(&event) {
            diags.push(
                at(format!(
                    "`{text}` never happens: a container has no event `{event}`"
                ))
                .label(format!("a container has {}", CONTAINER_EVENTS.join(", ")))
                .help(suggest(event, CONTAINER_EVENTS)),
            );
        }
    }

    fn outcome_check(&self, raw: &RawExpect, diags: &mut Vec<Diagnostic>) -> Option<Check> {
        let (Some(process), Some(node)) = (&raw.process, self.get("outcome")) else {
            let (span, message, help) = match &raw.process {
                Some(process) => (
                    process.span(),
                    "`process` without `outcome`",
                    "add e.g. outcome = \"running-at-end\"",
                ),
                None => (
                    self.get("outcome")?.span(),
                    "`outcome` without `process`",
                    "name the process, e.g. process = \"service\"",
                ),
            };
            diags.push(keyed(span, self.path, message).help(help));
            return None;
        };
        if !self.context.processes.contains_key(process.get_ref()) {
            let names: Vec<&str> = self.context.processes.keys().map(String::as_str).collect();
            diags.push(
                keyed(
                    process.span(),
                    self.key("process"),
                    format!("unknown process `{}`", process.get_ref()),
                )
                .help(suggest(process.get_ref(), &names)),
            );
        }
        let example = "write e.g. outcome = \"running-at-end\", or a list: outcome = [\"running-at-end\", \"exited(0)\"]";
        let outcomes = self.one_or_many(&self.key("outcome"), node, example, diags, |text| {
            text.parse::<ProcessOutcome>()
                .map_err(|error| error.to_string())
        })?;
        Some(Check::Outcome {
            process: process.get_ref().clone(),
            outcomes,
        })
    }

    fn run_outcome_check(&self, diags: &mut Vec<Diagnostic>) -> Option<Check> {
        let node = self.get("run_outcome")?;
        let example =
            "write e.g. run_outcome = \"ok\", or a list: run_outcome = [\"ok\", \"unsupported\"]";
        let outcomes =
            self.one_or_many(&self.key("run_outcome"), node, example, diags, |text| {
                RUN_OUTCOMES
                    .iter()
                    .find(|outcome| outcome.as_str() == text)
                    .copied()
                    .ok_or_else(|| {
                        let names: Vec<&str> = RUN_OUTCOMES.iter().map(|o| o.as_str()).collect();
                        format!("`{text}` is not a run outcome ({})", suggest(text, &names))
                    })
            })?;
        Some(Check::RunOutcome { outcomes })
    }

    /// A string or a non-empty array of strings, each read by `parse`; `example` is the help.
    fn one_or_many<T>(
        &self,
        key: &str,
        node: &Node<'_>,
        example: &str,
        diags: &mut Vec<Diagnostic>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<Vec<T>> {
        let items: Vec<&Node<'_>> = match node.get_ref() {
            DeValue::String(_) => vec![node],
            DeValue::Array(array) if !array.is_empty() => array.iter().collect(),
            other => {
                diags.push(
                    keyed(node.span(), key, "expected an outcome or a list of them")
                        .label(format!("found {}", other.type_str()))
                        .help(example),
                );
                return None;
            }
        };
        let before = diags.len();
        let mut parsed = Vec::new();
        for item in items {
            let result = match item.get_ref() {
                DeValue::String(text) => parse(text),
                other => Err(format!("expected a string, found {}", other.type_str())),
            };
            match result {
                Ok(value) => parsed.push(value),
                Err(message) => diags.push(keyed(item.span(), key, message).help(example)),
            }
        }
        (diags.len() == before).then_some(parsed)
    }
}

/// A diagnostic whose message starts with the key it is about: `` `expect[0].stat`: ... ``.
fn keyed(
    span: Range<usize>,
    key: impl Into<String>,
    message: impl std::fmt::Display,
) -> Diagnostic {
    let key = key.into();
    let message = format!("`{key}`: {message}");
    Diagnostic::at(span, key, message)
}

/// `when` entries with nested tables flattened to dotted names (`process.service.args.release
/// = "free"` written without quotes means the same as with).
fn flatten<'i>(
    table: &DeTable<'i>,
    prefix: &str,
    start: Option<usize>,
    out: &mut Vec<(String, Range<usize>, Node<'i>)>,
) {
    for (key, value) in table.iter() {
        let name = join(prefix, key.get_ref());
        let key_start = start.unwrap_or(key.span().start);
        match value.get_ref() {
            DeValue::Table(inner) if name != "kernel" => {
                flatten(inner, &name, Some(key_start), out)
            }
            _ => out.push((
                name,
                key_start..key.span().end.max(key_start),
                value.clone(),
            )),
        }
    }
}

/// A `when` value as the matrix writes its values.
fn scalar_text(value: &DeValue<'_>) -> Option<String> {
    match value {
        DeValue::Boolean(flag) => Some(flag.to_string()),
        DeValue::Float(float) => Some(float.as_str().to_string()),
        other => knob_text(other),
    }
}

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;
