//! `summary.md`: the lab in a few lines of GitHub-flavoured Markdown, for a CI job summary
//! (`$GITHUB_STEP_SUMMARY`) or a chat message.
//!
//! 1. A headline: the verdict (all expectations hold, how many failed, runs that hit an
//!    infrastructure fault, runs whose guest found the kernel's facts otherwise than the
//!    catalogue), then the runs by outcome, expectations passed and failed, the accelerator,
//!    when and by which rsslab.
//! 2. The findings ([`crate::analysis::findings`]): per scenario what differs between its
//!    variants and kernels, by how much, and whether an expectation says so.
//! 3. A scenario × kernel table, one row per variant. A cell is the run's outcome, its
//!    expectations passed/total, the row's *figure* (named in its column): the measure of the
//!    scenario's first finding that an expectation looks at, which is what tells its runs
//!    apart, else the peak RSS of the row's main process (the process called `service` if the
//!    scenario has one, else its first `[[process]]`), how that process ended unless it ran to
//!    the end or exited 0, and `⚠️ kernel facts differ` when the guest found them otherwise.
//! 4. Changes against a baseline, when the caller compared with one ([`super::markdown::markdown_body`]).
//! 5. The kernel facts the guest found otherwise than written, grouped by run (under
//!    *Kernel facts the guest found otherwise*), the failed expectations with their detail,
//!    grouped by run, and the runs that did not end `ok` with their reason and console log;
//!    at most [`MAX_LISTED`] lines each, the rest is in the report.
//! 6. A line pointing to `index.html`.
//!
//! Every string that comes from a scenario or a guest (ids, variant labels, expectation names,
//! details, reasons) is escaped with [`escape`], so it cannot break the table or inject
//! markup.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rsslab_wire::{ProcessOutcome, RunOutcome};

use super::markdown::{escape, markdown_body};
use super::report::INDEX_HTML;
use crate::analysis::findings::{Finding, FindingKind, find};
use crate::analysis::results::{Results, RunResult};
use crate::catalogue::versions::compare_kernels;
use crate::records::{CONSOLE_LOG, LoadedRun};
use crate::scenario::expect::{Unit, format_value, unit_of};

/// Lines listed per section (failed expectations, runs not ok); the report has the rest.
pub const MAX_LISTED: usize = 40;

/// The name that makes a process the main one of its scenario.
const MAIN_PROCESS: &str = "service";

/// The summary of `results` (with its comparison with a baseline, when it has one); `runs`
/// (the loaded records) name each scenario's processes in order.
pub fn render_summary(results: &Results, runs: &[LoadedRun]) -> String {
    let mut out = String::new();
    headline(&mut out, results);
    let findings = find(&results.runs);
    findings_list(&mut out, &findings);
    if !results.runs.is_empty() {
        matrix(&mut out, results, runs, &findings);
    }
    if let Some(comparison) = &results.baseline {
        let _ = writeln!(
            out,
            "\n#### Changes against the baseline `{}`\n\n{}",
            comparison.baseline.replace('`', "'"),
            markdown_body(comparison).trim_end()
        );
    }
    fact_mismatches(&mut out, results);
    failed_expectations(&mut out, results);
    runs_not_ok(&mut out, results);
    let _ = writeln!(
        out,
        "\nThe full report, with plots, every expectation and provenance: \
         [`{INDEX_HTML}`]({INDEX_HTML}) next to this file."
    );
    out
}

fn headline(out: &mut String, results: &Results) {
    let runs = &results.runs;
    let (passed, failed) = runs.iter().flat_map(|run| &run.expectations).fold(
        (0, 0),
        |(passed, failed), expectation| {
            if expectation.passed {
                (passed + 1, failed)
            } else {
                (passed, failed + 1)
            }
        },
    );
    let infra = runs
        .iter()
        .filter(|run| run.outcome.is_infrastructure())
        .count();
    let mut verdict = Vec::new();
    if failed > 0 {
        verdict.push(format!(
            "❌ {failed} of {} expectations failed",
            passed + failed
        ));
    }
    if infra > 0 {
        verdict.push(format!(
            "⚠️ {} hit an infrastructure fault",
            count(infra, "run")
        ));
    }
    let mismatched = results.runs_with_fact_mismatches().count();
    if mismatched > 0 {
        verdict.push(format!(
            "⚠️ {} found the kernel's facts otherwise than the catalogue",
            count(mismatched, "run")
        ));
    }
    if verdict.is_empty() {
        verdict.push(if runs.is_empty() {
            "no runs".to_owned()
        } else {
            format!("✅ all {} hold", count(passed, "expectation"))
        });
    }
    let _ = writeln!(out, "### rsslab lab: {}\n", verdict.join(", "));

    let outcomes: Vec<String> = RunOutcome::ALL
        .into_iter()
        .filter_map(|outcome| {
            let n = runs.iter().filter(|run| run.outcome == outcome).count();
            (n > 0).then(|| format!("{n} {outcome}"))
        })
        .collect();
    let mut accels: BTreeMap<String, usize> = BTreeMap::new();
    for run in runs {
        *accels.entry(run.accel.to_uppercase()).or_default() += 1;
    }
    let accels: Vec<String> = accels
        .iter()
        .map(|(accel, n)| format!("{} ({n})", escape(accel)))
        .collect();
    let mut parts = vec![format!("**{}**", count(runs.len(), "run"))];
    if !outcomes.is_empty() {
        parts[0] += &format!(": {}", outcomes.join(", "));
    }
    parts.push(format!(
        "**expectations**: {passed} passed, {failed} failed"
    ));
    if !accels.is_empty() {
        let mut reasons: Vec<&str> = runs
            .iter()
            .filter_map(|run| run.accel_reason.as_deref())
            .collect();
        reasons.sort_unstable();
        reasons.dedup();
        let why = if reasons.is_empty() {
            String::new()
        } else {
            format!(": {}", escape(&reasons.join("; ")))
        };
        parts.push(format!("**accel**: {}{why}", accels.join(", ")));
    }
    parts.push(format!(
        "{} · rsslab {}",
        escape(&results.generated_at),
        escape(&results.rsslab_version)
    ));
    let _ = writeln!(out, "{}", parts.join(" · "));
}

/// What the lab found, by scenario ([`crate::analysis::findings`]); nothing without findings.
fn findings_list(out: &mut String, findings: &[Finding]) {
    if findings.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n#### Findings\n");
    for finding in findings {
        let why = match finding.kind {
            FindingKind::New => "new: no expectation looks at it".to_owned(),
            kind => format!(
                "{}: {}",
                kind.as_str(),
                finding
                    .expectations
                    .iter()
                    .map(|name| format!("*{}*", escape(name)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let sign = match finding.kind {
            FindingKind::Expected => "✅",
            FindingKind::ExpectationFailed => "❌",
            FindingKind::New => "🆕",
        };
        let _ = writeln!(
            out,
            "- {sign} **{}** · {}: {} ({why})",
            escape(&finding.scenario),
            escape(&finding.measure),
            escape(&finding.text)
        );
    }
}

/// The figure a scenario's matrix cells show: the measure of its first finding that an
/// expectation looks at (what tells its variants and kernels apart).
fn discriminating_measure<'a>(findings: &'a [Finding], scenario: &str) -> Option<&'a str> {
    findings
        .iter()
        .find(|finding| finding.scenario == scenario && !finding.expectations.is_empty())
        .map(|finding| finding.measure.as_str())
}

/// The scenario × kernel table.
fn matrix(out: &mut String, results: &Results, runs: &[LoadedRun], findings: &[Finding]) {
    let mut kernels: Vec<&str> = results.runs.iter().map(|run| run.kernel.as_str()).collect();
    kernels.sort_by(|a, b| compare_kernels(a, b));
    kernels.dedup();
    let by_dir: BTreeMap<&str, &LoadedRun> = runs
        .iter()
        .map(|run| (run.record.dir.as_str(), run))
        .collect();

    let _ = writeln!(
        out,
        "\n| scenario | variant | figure | {} |\n|---|---|---|{}",
        kernels
            .iter()
            .map(|kernel| escape(kernel))
            .collect::<Vec<_>>()
            .join(" | "),
        "---|".repeat(kernels.len())
    );
    // Rows: (scenario, variant) in results order (sorted by scenario, then variant label).
    let mut rows: Vec<(&str, &str)> = results
        .runs
        .iter()
        .map(|run| (run.scenario.as_str(), run.variant_label.as_str()))
        .collect();
    rows.sort();
    rows.dedup();
    for (scenario, variant) in rows {
        let row: Vec<&RunResult> = results
            .runs
            .iter()
            .filter(|run| run.scenario == scenario && run.variant_label == variant)
            .collect();
        let main = row
            .iter()
            .find_map(|run| main_process(run, by_dir.get(run.dir.as_str()).copied()));
        let measure = discriminating_measure(findings, scenario);
        let cells: Vec<String> = kernels
            .iter()
            .map(|kernel| {
                row.iter()
                    .filter(|run| run.kernel == *kernel)
                    .map(|run| cell(run, main.as_deref(), measure))
                    .collect::<Vec<_>>()
                    .join("<br>")
            })
            .collect();
        let figure = match (measure, main.as_deref()) {
            (Some(measure), _) => escape(measure),
            (None, Some(main)) => format!("peak RSS of {}", escape(main)),
            (None, None) => String::new(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            escape(scenario),
            if variant.is_empty() {
                "—".to_owned()
            } else {
                escape(variant)
            },
            figure,
            cells.join(" | ")
        );
    }
    let _ = writeln!(
        out,
        "\nA cell: outcome · expectations passed/total · the row's *figure*: the measure that \
         tells the scenario's runs apart (its first finding's), else the peak RSS of its main \
         process (the kernel's VmHWM or the highest sample) · how that process ended, unless it \
         ran to the end or exited 0."
    );
}

/// The process called `service`, else the scenario's first process that has a result.
fn main_process(result: &RunResult, run: Option<&LoadedRun>) -> Option<String> {
    if result.processes.contains_key(MAIN_PROCESS) {
        return Some(MAIN_PROCESS.to_owned());
    }
    run.into_iter()
        .flat_map(|run| &run.record.spec.processes)
        .map(|process| &process.name)
        .find(|name| result.processes.contains_key(*name))
        .or_else(|| result.processes.keys().next())
        .cloned()
}

fn cell(run: &RunResult, main: Option<&str>, measure: Option<&str>) -> String {
    let failed = run.expectations.iter().filter(|e| !e.passed).count();
    let sign = match run.outcome {
        RunOutcome::Ok if failed == 0 => "✅",
        RunOutcome::Ok => "❌",
        RunOutcome::Unsupported => "⏭️",
        RunOutcome::KernelPanic | RunOutcome::VmTimeout | RunOutcome::InfraError => "⚠️",
    };
    let mut parts = vec![format!("{sign} {}", run.outcome)];
    if !run.expectations.is_empty() {
        let total = run.expectations.len();
        let passed = total - failed;
        parts.push(if failed > 0 {
            format!("**{passed}/{total}**")
        } else {
            format!("{passed}/{total}")
        });
    }
    let process = main.and_then(|name| run.processes.get(name));
    let measured = measure.and_then(|measure| {
        run.expectations
            .iter()
            .filter_map(|e| e.measured.as_ref())
            .find(|measured| measured.measure == measure)
    });
    match (measure, measured) {
        (Some(_), Some(measured)) => {
            let value = format_value(unit_of(&measured.metric), measured.value);
            parts.push(format!("**{value}**"));
        }
        (Some(_), None) => parts.push("—".to_owned()),
        (None, _) => {
            if let Some(&bytes) = process.and_then(|process| process.peak.get("rss")) {
                parts.push(format_value(Unit::Bytes, bytes as f64));
            }
        }
    }
    // How the main process ended, when that is news (OOM-killed, refused at start, ...).
    if let Some(process) = process
        && !matches!(
            process.outcome,
            ProcessOutcome::RunningAtEnd | ProcessOutcome::Exited(0)
        )
    {
        parts.push(escape(&process.outcome.to_string()));
    }
    if !run.fact_mismatches.is_empty() {
        parts.push("⚠️ kernel facts differ".to_owned());
    }
    parts.join(" · ")
}

/// `**scenario** · kernel · variant`.
fn run_label(run: &RunResult) -> String {
    let mut label = format!("**{}** · {}", escape(&run.scenario), escape(&run.kernel));
    if !run.variant_label.is_empty() {
        label += &format!(" · {}", escape(&run.variant_label));
    }
    label
}

/// Per run, each kernel fact its guest found otherwise than written.
fn fact_mismatches(out: &mut String, results: &Results) {
    let runs: Vec<&RunResult> = results.runs_with_fact_mismatches().collect();
    if runs.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n#### Kernel facts the guest found otherwise ({})\n\n\
         A kernel's facts decide which expectations apply to it (their `when`): fix them in \
         the catalogue (`vm-images/kernels.toml`).\n",
        count(runs.len(), "run")
    );
    let mut listed = 0;
    let total: usize = runs.iter().map(|run| run.fact_mismatches.len()).sum();
    for run in runs {
        if listed >= MAX_LISTED {
            break;
        }
        let _ = writeln!(out, "- {}", run_label(run));
        for mismatch in run.fact_mismatches.iter().take(MAX_LISTED - listed) {
            let _ = writeln!(out, "  - {}", escape(&mismatch.to_string()));
            listed += 1;
        }
    }
    if listed < total {
        let _ = writeln!(out, "\n… and {} more in the report.", total - listed);
    }
}

fn failed_expectations(out: &mut String, results: &Results) {
    let failing: Vec<&RunResult> = results
        .runs
        .iter()
        .filter(|run| run.expectations.iter().any(|e| !e.passed))
        .collect();
    let total: usize = failing
        .iter()
        .map(|run| run.expectations.iter().filter(|e| !e.passed).count())
        .sum();
    if total == 0 {
        return;
    }
    let _ = writeln!(out, "\n#### Failed expectations ({total})\n");
    let mut listed = 0;
    for run in failing {
        if listed >= MAX_LISTED {
            break;
        }
        let _ = writeln!(out, "- {}", run_label(run));
        for expectation in run.expectations.iter().filter(|e| !e.passed) {
            if listed >= MAX_LISTED {
                break;
            }
            let _ = writeln!(
                out,
                "  - *{}*: {}",
                escape(&expectation.name),
                escape(&expectation.detail)
            );
            listed += 1;
        }
    }
    if listed < total {
        let _ = writeln!(out, "\n… and {} more in the report.", total - listed);
    }
}

fn runs_not_ok(out: &mut String, results: &Results) {
    let not_ok: Vec<&RunResult> = results
        .runs
        .iter()
        .filter(|run| run.outcome != RunOutcome::Ok)
        .collect();
    if not_ok.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n#### Runs that did not end ok ({})\n", not_ok.len());
    for run in not_ok.iter().take(MAX_LISTED) {
        let retried = if run.attempts > 1 {
            format!(" after {} attempts", run.attempts)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "- {}: {}{retried}: {} (console: {}/{CONSOLE_LOG})",
            run_label(run),
            run.outcome,
            escape(run.reason.as_deref().unwrap_or("no reason recorded")),
            escape(&run.dir)
        );
    }
    if not_ok.len() > MAX_LISTED {
        let _ = writeln!(
            out,
            "\n… and {} more in the report.",
            not_ok.len() - MAX_LISTED
        );
    }
}

/// `1 run`, `3 runs`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
