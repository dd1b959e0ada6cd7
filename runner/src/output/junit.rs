//! `junit.xml`: the lab as JUnit XML, the format GitHub (through a JUnit action), GitLab
//! (`artifacts:reports:junit`) and Jenkins show as tests. Written by `quick-junit`, the
//! serializer nextest uses.
//!
//! - One `<testsuite>` per scenario (`name` = scenario id, property `title`).
//! - Per run, one `<testcase name="run">` and one per expectation evaluated on it (`name` = the
//!   expectation's name), all with `classname` = the run's id, `<scenario>/<kernel>[/<variant>]`
//!   (its directory under `runs/`; kernel ids and variant labels have dots of their own, so a
//!   dotted class name could not be read back).
//! - The `run` case: passed when the run ended `ok`; *skipped* with the reason when
//!   `unsupported` (the kernel lacks what the scenario asks for); an *error* of type
//!   `kernel-panic`, `vm-timeout` or `infra-error` with the reason and the console log's path.
//!   Its time is the run's wall time (QEMU start to exit); its output names the kernel release,
//!   the accelerator, the attempts and each process's outcome and peak RSS.
//! - An expectation case: passed, or a *failure* (type `expectation`) whose message is the
//!   evaluator's detail (what was measured and compared); a passed one has the detail as its
//!   output.
//! - A suite's time is the sum of its runs' wall times (runs of a lab overlap, so the report
//!   carries none).

use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use rsslab_wire::RunOutcome;

use crate::analysis::results::{Results, RunResult};
use crate::plan::RUNS_DIR;
use crate::records::CONSOLE_LOG;
use crate::scenario::expect::{Unit, format_value};

/// Name of the `run` test case of each run.
pub const RUN_CASE: &str = "run";

/// `results` as JUnit XML.
pub fn render_junit(results: &Results) -> Result<String, quick_junit::SerializeError> {
    let mut report = Report::new("rsslab");
    let mut scenarios: Vec<&str> = results.runs.iter().map(|r| r.scenario.as_str()).collect();
    scenarios.dedup();
    for scenario in scenarios {
        let runs: Vec<&RunResult> = results
            .runs
            .iter()
            .filter(|run| run.scenario == scenario)
            .collect();
        let mut suite = TestSuite::new(scenario);
        if let Some(title) = runs.iter().map(|run| &run.title).find(|t| !t.is_empty()) {
            suite.add_property(Property::new("title", title));
        }
        for run in &runs {
            suite.add_test_cases(run_cases(run));
        }
        suite.set_time(Duration::from_millis(
            runs.iter().map(|run| run.wall_ms).sum(),
        ));
        report.add_test_suite(suite);
    }
    report.to_string()
}

/// `<scenario>/<kernel>[/<variant>]`.
fn run_id(run: &RunResult) -> &str {
    run.dir
        .strip_prefix(RUNS_DIR)
        .and_then(|dir| dir.strip_prefix('/'))
        .unwrap_or(&run.dir)
}

/// The run's `run` case, then one case per expectation.
fn run_cases(run: &RunResult) -> Vec<TestCase> {
    let reason = run.reason.as_deref().unwrap_or("no reason recorded");
    let status = match run.outcome {
        RunOutcome::Ok => TestCaseStatus::success(),
        RunOutcome::Unsupported => {
            let mut status = TestCaseStatus::skipped();
            status
                .set_type(run.outcome.as_str())
                .set_message(format!("unsupported: {}", one_line(reason)));
            status
        }
        RunOutcome::KernelPanic | RunOutcome::VmTimeout | RunOutcome::InfraError => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status
                .set_type(run.outcome.as_str())
                .set_message(format!("{}: {}", run.outcome, one_line(reason)))
                .set_description(format!(
                    "{}: {reason}\nconsole log: {}/{CONSOLE_LOG}",
                    run.outcome, run.dir
                ));
            status
        }
    };
    let mut case = TestCase::new(RUN_CASE, status);
    case.set_classname(run_id(run))
        .set_time(Duration::from_millis(run.wall_ms))
        .set_system_out(run_output(run));
    let mut cases = vec![case];
    for expectation in &run.expectations {
        let status = if expectation.passed {
            TestCaseStatus::success()
        } else {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status
                .set_type("expectation")
                .set_message(one_line(&expectation.detail));
            status
        };
        let mut case = TestCase::new(&expectation.name, status);
        case.set_classname(run_id(run));
        if expectation.passed {
            case.set_system_out(&expectation.detail);
        }
        cases.push(case);
    }
    cases
}

/// What a CI view shows under the `run` case: where and how it ran, how processes ended.
fn run_output(run: &RunResult) -> String {
    let mut lines = vec![
        format!(
            "kernel {} ({}), accel {}, {} attempt{}",
            run.kernel,
            run.kernel_release.as_deref().unwrap_or("never said hello"),
            run.accel,
            run.attempts,
            if run.attempts == 1 { "" } else { "s" }
        ),
        format!("outcome {}, raw records in {}/", run.outcome, run.dir),
    ];
    for (name, process) in &run.processes {
        let peak = process
            .peak
            .get("rss")
            .map(|&bytes| format!(", peak RSS {}", format_value(Unit::Bytes, bytes as f64)))
            .unwrap_or_default();
        lines.push(format!("process {name}: {}{peak}", process.outcome));
    }
    lines.join("\n") + "\n"
}

/// Messages are attributes: one line (the description keeps the whole text).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
