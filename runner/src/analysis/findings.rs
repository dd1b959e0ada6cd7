//! The lab's findings: per scenario, what differs between its variants and kernels, by how
//! much, and whether an expectation says so, a kernel fact explains it, or it is new.
//!
//! Generated from the numbers alone. Each *measure* is compared across the scenario's runs:
//! the statistic of every metric expectation (`last process.service.rss from
//! service:released+1s to balloon:started`, as measured in each run where it applies, one
//! measure however many expectations share it), and the peak RSS of each process and the
//! cgroup's peak working set (marked by the expectations that look at their metric, if any). A measure's values are
//! grouped (sorted, a new group where the gap to the previous value is more than the
//! tolerance: 4 MiB or 15 % of the larger value for sizes, 15 % or one event for
//! counts, 15 % or 0.1 s for stall time). One group: nothing is said. Otherwise the
//! finding says how the groups split the runs:
//!
//! - by variant, the same on every kernel: "417.0MiB with release=free, 67.0MiB with
//!   release=dontneed, on all 4 kernels";
//! - by kernel: "17.0MiB on 5.10 and 6.1, 4.0MiB on 6.12 and 7.2", and when one kernel fact
//!   (`vm-images/kernels.toml`) takes one value on exactly the kernels of each group (each of
//!   two kernels or more), that it goes as that fact (`mglru_default`): a known kernel
//!   difference;
//! - else per variant, by kernel.
//!
//! A finding of an expectation's measure, or of a peak of a metric an expectation looks at, is
//! [`FindingKind::Expected`] (or [`FindingKind::ExpectationFailed`] when one of its runs failed
//! one); a peak no expectation looks at is [`FindingKind::New`]. Findings come in scenario order, the largest difference
//! first, at most [`MAX_PER_SCENARIO`] each.
//!
//! Entry point: [`find`].

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::analysis::results::RunResult;
use crate::catalogue::KernelFacts;
use crate::scenario::expect::{Unit, format_value, unit_of};

/// Findings listed per scenario: the largest differences.
pub const MAX_PER_SCENARIO: usize = 4;

/// One thing the lab found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub scenario: String,
    /// What was compared (`last process.service.rss from service:released+1s to
    /// balloon:started`, `peak rss of service`).
    pub measure: String,
    /// How it differs, in words and numbers.
    pub text: String,
    pub kind: FindingKind,
    /// The expectations that look at this measure, by name; empty for a new finding.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expectations: Vec<String>,
    /// The kernel facts the split by kernel follows (each true on the kernels of some groups,
    /// false on the others); empty when none does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub facts: Vec<String>,
    /// The runs it rests on (their `dir`), in results order.
    pub runs: Vec<String>,
    /// Largest value over smallest (for ordering; infinite when the smallest is 0).
    pub ratio: f64,
}

/// Whether a finding was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// An expectation looks at it, and held in every run.
    Expected,
    /// An expectation looks at it and failed in at least one run.
    ExpectationFailed,
    /// No expectation looks at it.
    New,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Expected => "expected",
            FindingKind::ExpectationFailed => "expectation failed",
            FindingKind::New => "new",
        }
    }
}

/// One measure's value in one run.
struct Point<'a> {
    run: &'a RunResult,
    value: f64,
}

/// A measure across a scenario's runs.
struct MeasureValues<'a> {
    measure: String,
    unit: Unit,
    points: Vec<Point<'a>>,
    expectations: BTreeSet<String>,
    failed: bool,
}

/// The findings of the runs of `results` (sorted by scenario, as [`crate::analysis::results`]
/// sorts them).
pub fn find(runs: &[RunResult]) -> Vec<Finding> {
    let mut scenarios: Vec<(&str, Vec<&RunResult>)> = Vec::new();
    for run in runs {
        match scenarios.last_mut() {
            Some((id, runs)) if *id == run.scenario => runs.push(run),
            _ => scenarios.push((&run.scenario, vec![run])),
        }
    }
    scenarios
        .into_iter()
        .flat_map(|(_, runs)| scenario_findings(&runs))
        .collect()
}

fn scenario_findings(runs: &[&RunResult]) -> Vec<Finding> {
    let mut measures: Vec<MeasureValues<'_>> = Vec::new();
    // Per metric, the expectations that look at it and whether one failed.
    let mut looked_at: BTreeMap<String, (BTreeSet<String>, bool)> = BTreeMap::new();
    for run in runs {
        for expectation in &run.expectations {
            let Some(measured) = &expectation.measured else {
                continue;
            };
            let index = find_or_add(&mut measures, &measured.measure, unit_of(&measured.metric));
            let values = &mut measures[index];
            values.points.push(Point {
                run,
                value: measured.value,
            });
            values.expectations.insert(expectation.name.clone());
            values.failed |= !expectation.passed;
            let metric = looked_at.entry(measured.metric.clone()).or_default();
            metric.0.insert(expectation.name.clone());
            metric.1 |= !expectation.passed;
        }
    }
    // Failed expectations that could not measure still make their measure's finding failed.
    for run in runs {
        for expectation in run.expectations.iter().filter(|e| !e.passed) {
            for values in &mut measures {
                if values.expectations.contains(&expectation.name) {
                    values.failed = true;
                }
            }
        }
    }
    // The peaks, marked by the expectations that look at their metric (if any).
    for run in runs.iter().filter(|run| run.outcome.as_str() == "ok") {
        for (process, summary) in &run.processes {
            if let Some(&rss) = summary.peak.get("rss") {
                let point = Point {
                    run,
                    value: rss as f64,
                };
                let (measure, metric) = (
                    format!("peak rss of {process}"),
                    format!("process.{process}.rss"),
                );
                add_peak(&mut measures, &looked_at, &measure, &metric, point);
            }
        }
        if let Some(&working_set) = run.cgroup_peak.get("working_set") {
            let point = Point {
                run,
                value: working_set as f64,
            };
            add_peak(
                &mut measures,
                &looked_at,
                "peak cgroup working set",
                "cgroup.working_set",
                point,
            );
        }
    }
    let mut findings: Vec<Finding> = measures.iter().filter_map(describe_split).collect();
    findings.sort_by(|a, b| b.ratio.total_cmp(&a.ratio));
    findings.truncate(MAX_PER_SCENARIO);
    findings
}

/// The index of `measure` in `measures`, added when new.
fn find_or_add(measures: &mut Vec<MeasureValues<'_>>, measure: &str, unit: Unit) -> usize {
    if let Some(index) = measures.iter().position(|m| m.measure == measure) {
        return index;
    }
    measures.push(MeasureValues {
        measure: measure.to_owned(),
        unit,
        points: Vec::new(),
        expectations: BTreeSet::new(),
        failed: false,
    });
    measures.len() - 1
}

/// Adds a run's peak to its measure, marked by the expectations that look at its `metric`.
fn add_peak<'a>(
    measures: &mut Vec<MeasureValues<'a>>,
    looked_at: &BTreeMap<String, (BTreeSet<String>, bool)>,
    measure: &str,
    metric: &str,
    point: Point<'a>,
) {
    let index = find_or_add(measures, measure, Unit::Bytes);
    let values = &mut measures[index];
    values.points.push(point);
    if let Some((names, failed)) = looked_at.get(metric) {
        values.expectations.extend(names.iter().cloned());
        values.failed |= *failed;
    }
}

/// Whether two values of `unit` differ by more than noise.
fn differ(unit: Unit, a: f64, b: f64) -> bool {
    let larger = a.abs().max(b.abs());
    let floor = match unit {
        Unit::Bytes => 4.0 * rsslab_wire::units::MIB as f64,
        Unit::Count => 1.0,
        Unit::Micros => 100_000.0,
        Unit::Hundredths => 100.0,
    };
    (a - b).abs() > floor.max(larger * 0.15)
}

/// The groups of values: indices into `points`, each group's values close together.
fn groups(unit: Unit, points: &[Point<'_>]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&a, &b| points[a].value.total_cmp(&points[b].value));
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for index in order {
        match groups.last_mut() {
            Some(group)
                if !differ(
                    unit,
                    points[*group.last().expect("never empty")].value,
                    points[index].value,
                ) =>
            {
                group.push(index)
            }
            _ => groups.push(vec![index]),
        }
    }
    // Each group's runs in results order (kernel, then variant), for the words.
    for group in &mut groups {
        group.sort_unstable();
    }
    groups
}

fn describe_split(values: &MeasureValues<'_>) -> Option<Finding> {
    let points = &values.points;
    let groups = groups(values.unit, points);
    if groups.len() < 2 {
        return None;
    }
    let kernels = ordered(points.iter().map(|p| p.run.kernel.as_str()));
    let variants = ordered(points.iter().map(|p| p.run.variant_label.as_str()));
    let group_of: Vec<usize> = {
        let mut group_of = vec![0; points.len()];
        for (group, members) in groups.iter().enumerate() {
            for &index in members {
                group_of[index] = group;
            }
        }
        group_of
    };
    // Whether every run with the same key (variant or kernel) falls in one group.
    let split_by = |key: &dyn Fn(&RunResult) -> &str| {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        points.iter().enumerate().all(|(index, point)| {
            *seen.entry(key(point.run)).or_insert(group_of[index]) == group_of[index]
        })
    };
    let by_variant = variants.len() > 1 && split_by(&|run| run.variant_label.as_str());
    let by_kernel = kernels.len() > 1 && split_by(&|run| run.kernel.as_str());
    let value_of =
        |members: &[usize]| value_range(values.unit, members.iter().map(|&i| points[i].value));
    let mut facts = Vec::new();
    // Whether every variant of the measure ran on every kernel of it.
    let complete = points.len() >= kernels.len() * variants.len()
        && variants.iter().all(|variant| {
            kernels.iter().all(|kernel| {
                points
                    .iter()
                    .any(|p| p.run.variant_label == *variant && p.run.kernel == *kernel)
            })
        });
    let kernels_of = |members: &[usize]| {
        join_words(&ordered(
            members.iter().map(|&i| points[i].run.kernel.as_str()),
        ))
    };
    let text = if by_variant {
        let parts: Vec<String> = groups
            .iter()
            .map(|members| {
                let labels = ordered(
                    members
                        .iter()
                        .map(|&i| points[i].run.variant_label.as_str()),
                );
                let mut part = format!("{} with {}", value_of(members), join_words(&labels));
                if !complete {
                    part.push_str(&format!(" on {}", kernels_of(members)));
                }
                part
            })
            .collect();
        match (complete, kernels.len()) {
            (true, 1) => format!("{}, on {}", parts.join(", "), kernels[0]),
            (true, 2) => format!("{}, on both kernels", parts.join(", ")),
            (true, n) => format!("{}, on all {n} kernels", parts.join(", ")),
            (false, _) => parts.join(", "),
        }
    } else if by_kernel {
        let kernel_groups: Vec<Vec<&str>> = groups
            .iter()
            .map(|members| ordered(members.iter().map(|&i| points[i].run.kernel.as_str())))
            .collect();
        let parts: Vec<String> = groups
            .iter()
            .zip(&kernel_groups)
            .map(|(members, kernels)| format!("{} on {}", value_of(members), join_words(kernels)))
            .collect();
        // A kernel alone differs from the others in many ways: a fact is named only when it
        // splits groups of two kernels or more.
        if kernel_groups.iter().all(|kernels| kernels.len() >= 2) {
            facts = following_facts(points, &kernel_groups);
        }
        let mut text = parts.join(", ");
        if variants.len() > 1 {
            text.push_str(" (every variant alike)");
        }
        if !facts.is_empty() {
            let names: Vec<String> = facts.iter().map(|fact| format!("`{fact}`")).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let noun = if facts.len() == 1 { "fact" } else { "facts" };
            let verb = if facts.len() == 1 { "goes" } else { "go" };
            text.push_str(&format!(
                ", as the kernel {noun} {} {verb}",
                join_words(&names)
            ));
        }
        text
    } else {
        let per_variant: Vec<String> = variants
            .iter()
            .map(|variant| {
                let parts: Vec<String> = groups
                    .iter()
                    .filter_map(|members| {
                        let mine: Vec<usize> = members
                            .iter()
                            .copied()
                            .filter(|&i| points[i].run.variant_label == *variant)
                            .collect();
                        (!mine.is_empty()).then(|| {
                            let kernels =
                                ordered(mine.iter().map(|&i| points[i].run.kernel.as_str()));
                            format!("{} on {}", value_of(&mine), join_words(&kernels))
                        })
                    })
                    .collect();
                if variant.is_empty() {
                    parts.join(", ")
                } else {
                    format!("with {variant}: {}", parts.join(", "))
                }
            })
            .collect();
        per_variant.join("; ")
    };
    let (low, high) = points.iter().fold((f64::MAX, f64::MIN), |(low, high), p| {
        (low.min(p.value), high.max(p.value))
    });
    let ratio = if low.abs() > f64::EPSILON {
        (high / low).abs()
    } else {
        f64::INFINITY
    };
    let kind = if values.expectations.is_empty() {
        FindingKind::New
    } else if values.failed {
        FindingKind::ExpectationFailed
    } else {
        FindingKind::Expected
    };
    Some(Finding {
        scenario: points[0].run.scenario.clone(),
        measure: values.measure.clone(),
        text,
        kind,
        expectations: values.expectations.iter().cloned().collect(),
        facts,
        runs: points.iter().map(|p| p.run.dir.clone()).collect(),
        ratio,
    })
}

/// The kernel facts that are true on exactly the kernels of some of the groups and false on
/// the others (every group's kernels agreeing on each).
fn following_facts(points: &[Point<'_>], kernel_groups: &[Vec<&str>]) -> Vec<String> {
    let facts_of = |kernel: &str| -> Option<BTreeMap<String, bool>> {
        let facts: KernelFacts = points.iter().find(|p| p.run.kernel == kernel)?.run.facts?;
        serde_json::from_value(serde_json::to_value(facts).ok()?).ok()
    };
    let per_group: Vec<Vec<BTreeMap<String, bool>>> = kernel_groups
        .iter()
        .map(|kernels| kernels.iter().filter_map(|k| facts_of(k)).collect())
        .collect();
    if per_group
        .iter()
        .zip(kernel_groups)
        .any(|(facts, kernels)| facts.is_empty() || facts.len() != kernels.len())
    {
        return Vec::new();
    }
    let names: Vec<String> = per_group[0][0].keys().cloned().collect();
    names
        .into_iter()
        .filter(|name| {
            let values: Vec<Option<bool>> = per_group
                .iter()
                .map(|facts| {
                    let first = facts.first()?.get(name).copied();
                    facts
                        .iter()
                        .all(|f| f.get(name).copied() == first)
                        .then_some(first)
                        .flatten()
                })
                .collect();
            values.iter().all(Option::is_some)
                && values.contains(&Some(true))
                && values.contains(&Some(false))
        })
        .collect()
}

/// `12.0MiB`, or `10.1MiB-12.0MiB` when the values show apart.
fn value_range(unit: Unit, values: impl Iterator<Item = f64>) -> String {
    let (low, high) = values.fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(v), h.max(v)));
    let (low, high) = (format_value(unit, low), format_value(unit, high));
    if low == high {
        low
    } else {
        format!("{low}-{high}")
    }
}

/// Distinct items in first-seen order.
fn ordered<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = Vec::new();
    for item in items {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen
}

/// `a`, `a and b`, `a, b and c`.
fn join_words(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests;
