//! Expectations evaluated on a run's raw records: each `[[expect]]` of the scenario
//! ([`crate::scenario::expect`], which says what each check and window means) whose `when`
//! matches the run becomes an [`ExpectationResult`], passed or failed with what was measured.
//!
//! Entry points: [`evaluate`], and [`evaluate_with`] when the kernel's facts may be unknown.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rsslab_wire::{RunOutcome, Sample};
use serde::{Deserialize, Serialize};

use crate::catalogue::KernelFacts;
use crate::records::LoadedRun;
use crate::scenario::expect::{
    Check, Expectation, Measure, Operand, Stat, When, format_value, unit_of,
};

/// One expectation of the scenario, evaluated on one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectationResult {
    /// The expectation's `name` in the scenario.
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// What was measured and compared, in words (`last process.service.rss from
    /// service:released+1s to balloon:started = 401.2MiB, above 380.0MiB: passed`); for a
    /// failure that could not measure, why (`run did not complete: vm-timeout`).
    pub detail: String,
    /// For a metric check that could measure: what it measured, so runs compare by number
    /// (the findings, scripts). Absent for outcome checks and for runs that did not measure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<Measured>,
}

/// The statistic a metric check measured in one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// The metric path (`process.service.rss`, `cgroup.high`).
    pub metric: String,
    /// The statistic and window in words (`last process.service.rss from service:released+1s
    /// to balloon:started`).
    pub measure: String,
    /// Its value in the metric's unit (bytes, or bytes a minute for a slope; events, pages,
    /// microseconds of stall: [`crate::scenario::expect::unit_of`]).
    pub value: f64,
}

/// Evaluates a run's expectations, in order; those whose `when` does not match the run are
/// left out.
pub fn evaluate(
    expectations: &[Expectation],
    run: &LoadedRun,
    facts: &KernelFacts,
) -> Vec<ExpectationResult> {
    evaluate_with(expectations, run, Some(facts))
}

/// [`evaluate`] when the kernel's facts may be unknown (a kernel no longer in the catalogue):
/// an expectation whose `when` needs them then fails, saying so.
pub fn evaluate_with(
    expectations: &[Expectation],
    run: &LoadedRun,
    facts: Option<&KernelFacts>,
) -> Vec<ExpectationResult> {
    let facts: Option<BTreeMap<String, bool>> =
        facts.and_then(|facts| serde_json::from_value(serde_json::to_value(facts).ok()?).ok());
    expectations
        .iter()
        .filter_map(|expectation| {
            let result = match applies(&expectation.when, run, facts.as_ref()) {
                Ok(false) => return None,
                Ok(true) => check(&expectation.check, run),
                Err(why) => Err(why),
            };
            let (passed, detail, measured) = match result {
                Ok(Checked {
                    passed,
                    detail,
                    measured,
                }) => (passed, detail, measured),
                Err(why) => (false, why, None),
            };
            Some(ExpectationResult {
                name: expectation.name.clone(),
                passed,
                detail,
                measured,
            })
        })
        .collect()
}

/// Whether `when` matches the run; an error when a fact it needs is unknown.
fn applies(
    when: &When,
    run: &LoadedRun,
    facts: Option<&BTreeMap<String, bool>>,
) -> Result<bool, String> {
    let record = &run.record;
    if !when.kernels.is_empty() && !when.kernels.contains(&record.kernel) {
        return Ok(false);
    }
    if when.matrix.iter().any(|(key, values)| {
        !record
            .variant
            .get(key)
            .is_some_and(|value| values.contains(value))
    }) {
        return Ok(false);
    }
    for (fact, wanted) in &when.facts {
        let known = facts.and_then(|facts| facts.get(fact)).ok_or_else(|| {
            format!(
                "kernel {} has no known `{fact}`: cannot tell whether this expectation applies",
                record.kernel
            )
        })?;
        if known != wanted {
            return Ok(false);
        }
    }
    Ok(true)
}

/// What one check found.
struct Checked {
    passed: bool,
    detail: String,
    measured: Option<Measured>,
}

impl Checked {
    fn outcome(passed: bool, detail: String) -> Checked {
        Checked {
            passed,
            detail,
            measured: None,
        }
    }
}

/// What a check found, or the reason it could not be evaluated (a failure).
fn check(check: &Check, run: &LoadedRun) -> Result<Checked, String> {
    let record = &run.record;
    if let Check::RunOutcome { outcomes } = check {
        let passed = outcomes.contains(&record.outcome);
        let wanted: Vec<&str> = outcomes.iter().map(|o| o.as_str()).collect();
        return Ok(Checked::outcome(
            passed,
            format!(
                "run outcome {}, expected {}: {}",
                record.outcome,
                wanted.join(" or "),
                verdict(passed)
            ),
        ));
    }
    if record.outcome != RunOutcome::Ok {
        return Err(format!("run did not complete: {}", record.outcome));
    }
    match check {
        Check::Outcome { process, outcomes } => {
            // A completed run's verdict holds every process (`not-started` for one that never
            // started), so there is nothing to look for elsewhere.
            let outcome = record
                .processes
                .get(process)
                .map(|result| result.outcome.clone())
                .ok_or_else(|| format!("no outcome recorded for process {process}"))?;
            let passed = outcomes.contains(&outcome);
            let wanted: Vec<String> = outcomes.iter().map(ToString::to_string).collect();
            Ok(Checked::outcome(
                passed,
                format!(
                    "{process} ended {outcome}, expected {}: {}",
                    wanted.join(" or "),
                    verdict(passed)
                ),
            ))
        }
        Check::Metric {
            measure,
            compare,
            against,
        } => {
            let value = measure_value(measure, run)?;
            let unit = unit_of(&measure.metric);
            let show = |value: f64| format_value(unit, value);
            let (bound, bound_text) = match against {
                Operand::Size(bytes) => (bytes.0 as f64, show(bytes.0 as f64)),
                Operand::Metric {
                    measure,
                    times,
                    plus,
                } => {
                    let other = measure_value(measure, run)?;
                    let bound = other * times + plus.0 as f64;
                    // (`<=` here is the same test: mutation testing's one harmless survivor.)
                    let unscaled = (*times - 1.0).abs() < f64::EPSILON;
                    let scaled = if unscaled {
                        describe(measure)
                    } else {
                        format!("{times} × {}", describe(measure))
                    };
                    let text = match (unscaled, plus.0) {
                        (true, 0) => format!("{} ({scaled})", show(bound)),
                        (false, 0) => format!("{} ({scaled} = {})", show(bound), show(other)),
                        (_, plus) => format!(
                            "{} ({scaled} + {} = {} + {})",
                            show(bound),
                            show(plus as f64),
                            show(other * times),
                            show(plus as f64)
                        ),
                    };
                    (bound, text)
                }
            };
            let passed = compare.holds(value, bound);
            Ok(Checked {
                passed,
                detail: format!(
                    "{} = {}, {} {bound_text}: {}",
                    describe(measure),
                    show(value),
                    compare.as_str().replace('_', " "),
                    verdict(passed)
                ),
                measured: Some(Measured {
                    metric: measure.metric.clone(),
                    measure: describe(measure),
                    value,
                }),
            })
        }
        Check::RunOutcome { .. } => unreachable!("handled above"),
    }
}

fn verdict(passed: bool) -> &'static str {
    if passed { "passed" } else { "failed" }
}

/// `max process.service.rss from service:released+2s to balloon:started`.
pub fn describe(measure: &Measure) -> String {
    let stat = match measure.stat {
        Stat::Slope => "slope per minute of",
        stat => stat.as_str(),
    };
    let mut text = format!("{stat} {}", measure.metric);
    match (&measure.from, measure.after.0) {
        (Some(from), 0) => {
            let _ = write!(text, " from {from}");
        }
        (Some(from), _) => {
            let _ = write!(text, " from {from}+{}", measure.after);
        }
        (None, 0) => {}
        (None, _) => {
            let _ = write!(text, " from start+{}", measure.after);
        }
    }
    match &measure.to {
        Some(to) => {
            let _ = write!(text, " to {to}");
        }
        None if measure.from.is_some() || measure.after.0 > 0 => text.push_str(" to end"),
        None => text.push_str(" over the whole run"),
    }
    text
}

/// The statistic of a measure in this run, in bytes; why not when it has no value.
fn measure_value(measure: &Measure, run: &LoadedRun) -> Result<f64, String> {
    let events = &run.record.events;
    let event_at = |label: &str, not_before: u64| {
        events
            .iter()
            .find(|event| event.t_ms >= not_before && event.is(label))
            .map(|event| event.t_ms)
    };
    let start = match &measure.from {
        Some(from) => event_at(from, 0)
            .ok_or_else(|| format!("{}: event {from} never happened: failed", describe(measure)))?,
        None => 0,
    } + measure.after.0;
    let end = match &measure.to {
        Some(to) => event_at(to, start).ok_or_else(|| {
            format!(
                "{}: event {to} never happened at or after {:.1}s: failed",
                describe(measure),
                start as f64 / 1000.0
            )
        })?,
        None => u64::MAX,
    };
    // The window ends before its `to` event: a sample stamped in the event's millisecond may
    // already see what the event started (a process spawned, a balloon filling).
    let points: Vec<(f64, f64)> = run
        .samples
        .iter()
        .filter(|sample| (start..end).contains(&sample.t_ms))
        .filter_map(|sample| {
            metric_of(sample, &measure.metric).map(|value| (sample.t_ms as f64, value as f64))
        })
        .collect();
    let values: Vec<f64> = points.iter().map(|(_, value)| *value).collect();
    if values.is_empty() {
        return Err(format!(
            "{}: no samples of {} in the window: failed",
            describe(measure),
            measure.metric
        ));
    }
    Ok(match measure.stat {
        Stat::Max => values.iter().copied().fold(f64::MIN, f64::max),
        Stat::Min => values.iter().copied().fold(f64::MAX, f64::min),
        Stat::Mean => values.iter().sum::<f64>() / values.len() as f64,
        Stat::First => values[0],
        Stat::Last => values[values.len() - 1],
        Stat::Slope => slope_per_minute(&points).ok_or_else(|| {
            format!(
                "{}: a slope needs two samples at different times in the window: failed",
                describe(measure)
            )
        })?,
        Stat::Increase => {
            let counts: Vec<u64> = values.iter().map(|&value| value as u64).collect();
            super::account::increase(&counts) as f64
        }
    })
}

/// The least-squares slope of `(t_ms, value)` points, per minute; `None` with fewer than two
/// distinct times.
pub fn slope_per_minute(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    let mean_t = points.iter().map(|(t, _)| t).sum::<f64>() / n;
    let spread: f64 = points.iter().map(|(t, _)| (t - mean_t).powi(2)).sum();
    if points.len() < 2 || spread == 0.0 {
        return None;
    }
    // Σ(t − t̄)(v − v̄) = Σ(t − t̄)·v, as Σ(t − t̄) = 0: the values need no centring.
    let covariance: f64 = points.iter().map(|(t, v)| (t - mean_t) * v).sum();
    Some(covariance / spread * 60_000.0)
}

/// One sample's value of a metric path.
fn metric_of(sample: &Sample, metric: &str) -> Option<u64> {
    let parts: Vec<&str> = metric.split('.').collect();
    match parts.as_slice() {
        ["process", name, metric] => sample.process.get(*name)?.get(*metric).copied(),
        ["cgroup", metric] => sample.cgroup.get(*metric).copied(),
        ["guest", metric] => sample.guest.get(*metric).copied(),
        ["pod", pod, metric] => sample.pod.get(*pod)?.get(*metric).copied(),
        ["container", pod, container, metric] => sample
            .container
            .get(&rsslab_wire::pod::container_key(pod, container))?
            .get(*metric)
            .copied(),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
