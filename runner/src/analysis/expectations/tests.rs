use rsslab_wire::Bytes;

use super::*;
use crate::records::testing::fake_run;
use crate::scenario::expect::fixtures::{FREE_HIGH, errors, expectations};

fn with(expectations: &[Expectation], run: &mut LoadedRun) -> Vec<ExpectationResult> {
    run.record.expectations = expectations.to_vec();
    evaluate(&run.record.expectations, run, &facts())
}

fn facts() -> KernelFacts {
    KernelFacts {
        madv_free: true,
        cgroup_v1_memory: true,
        mglru: true,
        mglru_default: false,
        overcommit_heuristic_total_only: true,
    }
}

#[test]
fn metric_checks_measure_the_window() {
    let read = expectations(FREE_HIGH);
    let mut free = fake_run("demo", "6.1", "free");
    let results = with(&read, &mut free);
    assert_eq!(results.len(), 1);
    assert!(results[0].passed, "{results:?}");
    assert_eq!(
        results[0].detail,
        "last process.service.rss from service:released+1s to balloon:started = 400.0MiB, above 380.0MiB: passed"
    );
    // The same expectation without its `when`, on MADV_DONTNEED: the RSS is gone.
    let mut unconditional = read.clone();
    unconditional[0].when = When::default();
    let mut dontneed = fake_run("demo", "6.1", "dontneed");
    let results = with(&unconditional, &mut dontneed);
    assert!(!results[0].passed);
    assert!(
        results[0]
            .detail
            .ends_with("= 50.0MiB, above 380.0MiB: failed"),
        "{}",
        results[0].detail
    );
    // And with its `when`, that run does not list it.
    assert!(with(&read, &mut dontneed).is_empty());
}

#[test]
fn metric_operands_and_stats() {
    let read = expectations(
        r#"
[[expect]]
name = "stays above 90% of the peak"
metric = "process.service.rss"
stat = "min"
from = "service:released"
to = "balloon:started"
at_least = { metric = "process.service.rss", stat = "max", times = 0.9 }

[[expect]]
name = "lazyfree"
metric = "process.service.lazyfree"
stat = "max"
at_most = "350MiB"

[[expect]]
name = "guest"
metric = "guest.mem_total"
stat = "mean"
below = "1GiB"
"#,
    );
    let mut free = fake_run("demo", "6.1", "free");
    let results = with(&read, &mut free);
    assert!(results[0].passed, "{results:?}");
    assert_eq!(
        results[0].detail,
        "min process.service.rss from service:released to balloon:started = 400.0MiB, at least 360.0MiB (0.9 × max process.service.rss over the whole run = 400.0MiB): passed"
    );
    assert!(results[1].passed, "{results:?}");
    assert!(!results[2].passed, "{results:?}");
    assert!(
        results[2]
            .detail
            .contains("mean guest.mem_total over the whole run = 1024.0MiB")
    );
}

#[test]
fn a_metric_operand_can_add_a_size() {
    let read = expectations(
        r#"
[[expect]]
name = "RSS rose by more than 300MiB from the start to the release"
metric = "process.service.rss"
from = "service:released"
to = "balloon:started"
above = { metric = "process.service.rss", stat = "first", to = "service:allocated", plus = "300MiB" }

[[expect]]
name = "but not by twice its start and 400MiB"
metric = "process.service.rss"
from = "service:released"
to = "balloon:started"
above = { metric = "process.service.rss", stat = "first", times = 2, plus = "400MiB" }
"#,
    );
    let Check::Metric { against, .. } = &read[0].check else {
        panic!("{:?}", read[0].check)
    };
    assert!(
        matches!(against, Operand::Metric { plus, times, .. } if *plus == Bytes::mib(300) && *times == 1.0),
        "{against:?}"
    );
    let mut free = fake_run("demo", "6.1", "free");
    let results = with(&read, &mut free);
    assert_eq!(
        results[0].detail,
        "last process.service.rss from service:released to balloon:started = 400.0MiB, above 311.1MiB (first process.service.rss to service:allocated + 300.0MiB = 11.1MiB + 300.0MiB): passed"
    );
    assert!(results[0].passed);
    assert!(!results[1].passed, "{results:?}");
    assert!(
        results[1]
            .detail
            .contains("(2 × first process.service.rss over the whole run + 400.0MiB"),
        "{}",
        results[1].detail
    );
    assert!(
        errors(
            "[[expect]]\nname = \"x\"\nmetric = \"process.service.rss\"\nabove = { metric = \"process.service.rss\", plus = \"lots\" }\n"
        )
        .contains("expect[0].above.plus"),
    );
}

#[test]
fn when_takes_a_list_of_matrix_values() {
    let read = expectations(
        r#"
[[expect]]
name = "either release"
when = { "process.service.args.release" = ["free", "dontneed"] }
run_outcome = "ok"

[[expect]]
name = "only free"
when = { "process.service.args.release" = ["free"] }
run_outcome = "ok"
"#,
    );
    assert_eq!(
        read[0].when.matrix["process.service.args.release"],
        ["free", "dontneed"]
    );
    let names = |results: Vec<ExpectationResult>| -> Vec<String> {
        results.into_iter().map(|r| r.name).collect()
    };
    assert_eq!(
        names(with(&read, &mut fake_run("demo", "6.1", "free"))),
        ["either release", "only free"]
    );
    assert_eq!(
        names(with(&read, &mut fake_run("demo", "6.1", "dontneed"))),
        ["either release"]
    );
    let error = errors(
        "[[expect]]\nname = \"x\"\nwhen = { \"process.service.args.release\" = [\"free\", \"fre\"] }\nrun_outcome = \"ok\"\n",
    );
    assert!(error.contains("never takes this value"), "{error}");
    assert!(error.contains("did you mean `free`?"), "{error}");
    let error = errors(
        "[[expect]]\nname = \"x\"\nwhen = { \"process.service.args.release\" = [] }\nrun_outcome = \"ok\"\n",
    );
    assert!(error.contains("lists no value"), "{error}");
    // Records written when `when` held one value per key still load.
    let old: When =
        serde_json::from_str(r#"{"matrix":{"process.service.args.release":"free"}}"#).unwrap();
    assert_eq!(old.matrix["process.service.args.release"], ["free"]);
}

#[test]
fn missing_events_and_empty_windows_fail() {
    let read = expectations(
        r#"
[[expect]]
name = "oom window"
metric = "process.service.rss"
from = "oom-kill"
above = 1

[[expect]]
name = "balloon before it starts"
metric = "process.balloon.rss"
to = "service:released"
above = 1

[[expect]]
name = "ends before it starts"
metric = "process.service.rss"
from = "balloon:started"
to = "service:allocated"
above = 1
"#,
    );
    let mut run = fake_run("demo", "6.1", "free");
    let results = with(&read, &mut run);
    assert!(results.iter().all(|result| !result.passed), "{results:?}");
    assert!(
        results[0].detail.contains("event oom-kill never happened"),
        "{}",
        results[0].detail
    );
    assert!(
        results[1]
            .detail
            .contains("no samples of process.balloon.rss"),
        "{}",
        results[1].detail
    );
    assert!(
        results[2]
            .detail
            .contains("event service:allocated never happened at or after 6.0s"),
        "{}",
        results[2].detail
    );
}

#[test]
fn an_oom_kill_window_ends_at_a_kill_matched_to_a_process_too() {
    let read = expectations(
        r#"
[[expect]]
name = "before the kill"
metric = "process.service.rss"
stat = "max"
to = "oom-kill"
above = 1
"#,
    );
    let mut run = fake_run("demo", "6.1", "free");
    // The agent names the process the kernel log's victim is: `service:oom-kill`.
    run.record.events.push(rsslab_wire::Event {
        t_ms: 6500,
        process: Some("service".into()),
        kind: rsslab_wire::EventKind::OomKill {
            pid: 100,
            task: "service".into(),
        },
    });
    let results = with(&read, &mut run);
    assert!(results[0].passed, "{results:?}");
    assert!(results[0].detail.contains("to oom-kill"), "{results:?}");
}

#[test]
fn outcomes_and_runs_that_did_not_complete() {
    let read = expectations(
        r#"
[[expect]]
name = "survives"
process = "service"
outcome = ["running-at-end", "exited(0)"]

[[expect]]
name = "is killed"
process = "balloon"
outcome = "oom-killed"

[[expect]]
name = "completes"
run_outcome = "ok"

[[expect]]
name = "rss"
metric = "process.service.rss"
above = 1
"#,
    );
    let mut run = fake_run("demo", "6.1", "free");
    let results = with(&read, &mut run);
    let passed: Vec<bool> = results.iter().map(|r| r.passed).collect();
    assert_eq!(passed, [true, false, true, true]);
    assert_eq!(
        results[1].detail,
        "balloon ended running-at-end, expected oom-killed: failed"
    );
    run.record.outcome = RunOutcome::VmTimeout;
    let results = with(&read, &mut run);
    let passed: Vec<bool> = results.iter().map(|r| r.passed).collect();
    assert_eq!(passed, [false, false, false, false]);
    assert_eq!(results[0].detail, "run did not complete: vm-timeout");
    assert_eq!(
        results[2].detail,
        "run outcome vm-timeout, expected ok: failed"
    );
    assert_eq!(results[3].detail, "run did not complete: vm-timeout");
}

#[test]
fn when_filters_by_kernel_and_facts() {
    let read = expectations(
        r#"
[[expect]]
name = "on 6.1"
when = { kernel = "6.1" }
run_outcome = "ok"

[[expect]]
name = "without cgroup v1"
when = { cgroup_v1_memory = false }
run_outcome = "unsupported"

[[expect]]
name = "with MGLRU off"
when = { mglru_default = false, kernel = ["6.1", "6.12"] }
run_outcome = "ok"
"#,
    );
    let mut run = fake_run("demo", "6.1", "free");
    let names = |results: Vec<ExpectationResult>| -> Vec<String> {
        results.into_iter().map(|r| r.name).collect()
    };
    assert_eq!(names(with(&read, &mut run)), ["on 6.1", "with MGLRU off"]);
    let mut other = fake_run("demo", "7.2", "free");
    assert!(with(&read, &mut other).is_empty());
    // Unknown facts: an expectation that needs them fails rather than vanish.
    let results = evaluate_with(&read, &run, None);
    assert_eq!(results.len(), 3);
    assert!(!results[1].passed);
    assert!(
        results[1].detail.contains("no known `cgroup_v1_memory`"),
        "{}",
        results[1].detail
    );
}

#[test]
fn results_json_carries_the_evaluated_expectations() {
    let mut run = fake_run("demo", "6.1", "free");
    run.record.expectations = expectations(FREE_HIGH);
    run.record.kernel_facts = Some(facts());
    let results = crate::analysis::results::build_results(&[run]);
    assert_eq!(results.failed_expectations(), 0);
    let value = serde_json::to_value(&results).unwrap();
    let listed = &value["runs"][0]["expectations"][0];
    assert_eq!(listed["name"], "MADV_FREE keeps RSS");
    assert_eq!(listed["passed"], true);
    assert!(listed["detail"].as_str().unwrap().contains("400.0MiB"));

    let mut run = fake_run("demo", "6.1", "free");
    run.record.expectations = expectations(FREE_HIGH);
    run.record.outcome = RunOutcome::InfraError;
    assert_eq!(
        crate::analysis::results::build_results(&[run]).failed_expectations(),
        1
    );
}

#[test]
fn a_window_ends_before_the_sample_of_its_to_event() {
    // The fake service reaches 400MiB in the sample stamped 2000 ms, the millisecond of its
    // `allocated` event: that sample belongs after the window, the one at 1750 ms is its last.
    let read = expectations(
        r#"
[[expect]]
name = "RSS while allocating"
metric = "process.service.rss"
from = "service:started"
to = "service:allocated"
below = "350MiB"

[[expect]]
name = "RSS from the allocation on"
metric = "process.service.rss"
stat = "first"
from = "service:allocated"
to = "service:released"
at_least = "400MiB"
"#,
    );
    let mut free = fake_run("demo", "6.1", "free");
    let results = with(&read, &mut free);
    assert_eq!(
        results[0].detail,
        "last process.service.rss from service:started to service:allocated = 344.4MiB, below 350.0MiB: passed"
    );
    assert!(results[1].passed, "{results:?}");
}

#[test]
fn the_slope_is_a_least_squares_fit_per_minute() {
    // 1 MiB a second for ten seconds, with noise that a first-to-last difference would not
    // average out: 60 MiB a minute.
    let mib = (1u64 << 20) as f64;
    let points: Vec<(f64, f64)> = (0..=10)
        .map(|s| {
            let noise = if s % 2 == 0 { 0.25 } else { -0.25 } * mib;
            (s as f64 * 1000.0, s as f64 * mib + noise)
        })
        .collect();
    let slope = slope_per_minute(&points).unwrap();
    assert!((slope / mib - 60.0).abs() < 1.0, "{}", slope / mib);
    let flat: Vec<(f64, f64)> = (0..5).map(|s| (s as f64 * 500.0, 7.0 * mib)).collect();
    assert_eq!(slope_per_minute(&flat), Some(0.0));
    let falling = [(0.0, 2.0 * mib), (30_000.0, mib)];
    assert_eq!(slope_per_minute(&falling), Some(-2.0 * mib));
    assert_eq!(
        slope_per_minute(&[(5.0, 1.0)]),
        None,
        "one sample has no slope"
    );
    assert_eq!(
        slope_per_minute(&[(5.0, 1.0), (5.0, 2.0)]),
        None,
        "nor one instant"
    );
}

#[test]
fn a_slope_expectation_reads_growth_per_minute() {
    let read = expectations(
        r#"
[[expect]]
name = "grows"
metric = "process.service.rss"
stat = "slope"
from = "service:started"
to = "service:released"
above = "10MiB"

[[expect]]
name = "flat after release"
metric = "process.service.rss"
stat = "slope"
from = "service:released"
after = "1s"
to = "balloon:started"
at_most = "1MiB"
"#,
    );
    let mut free = fake_run("demo", "6.1", "free");
    let results = with(&read, &mut free);
    assert!(results[0].passed, "{results:?}");
    assert!(
        results[0].detail.starts_with(
            "slope per minute of process.service.rss from service:started to service:released = "
        ),
        "{}",
        results[0].detail
    );
    assert!(results[1].passed, "{results:?}");
}

/// Every statistic on a window whose values vary, so that none can stand in for another: the
/// window runs from its `from` event (its millisecond included, `after` added) to its `to`
/// event (that millisecond excluded), and the values outside it are far off.
#[test]
fn each_statistic_of_a_varying_window_and_where_the_window_ends() {
    const MIB: u64 = 1 << 20;
    let mut run = fake_run("demo", "6.1", "dontneed");
    // service:allocated at 2000 ms, service:released at 3000 ms; samples every 250 ms.
    let inside: [(u64, u64, u64); 4] =
        [(2000, 10, 5), (2250, 40, 7), (2500, 20, 3), (2750, 50, 10)];
    for sample in &mut run.samples {
        let (rss, high) = match inside.iter().find(|(t, _, _)| *t == sample.t_ms) {
            Some(&(_, rss, high)) => (rss * MIB, high),
            // Before the window and at its end: values that would show if they counted.
            None => (999 * MIB, 1_000_000),
        };
        sample
            .process
            .get_mut("service")
            .unwrap()
            .insert("rss".into(), rss);
        sample.cgroup.insert("high".into(), high);
    }
    let measured = |stat: &str, after: &str, metric: &str, check: &str| -> f64 {
        let text = format!(
            "[[expect]]\nname = \"{stat}\"\nmetric = \"{metric}\"\nstat = \"{stat}\"\n\
             from = \"service:allocated\"\nafter = \"{after}\"\nto = \"service:released\"\n{check}\n"
        );
        let results = evaluate(&expectations(&text), &run, &facts());
        assert!(results[0].passed, "{results:?}");
        results[0]
            .measured
            .as_ref()
            .expect("a measured value")
            .value
    };
    let rss = |stat: &str, after: &str| {
        measured(stat, after, "process.service.rss", "at_least = \"0MiB\"") / MIB as f64
    };
    assert_eq!(rss("min", "0s"), 10.0);
    assert_eq!(
        rss("max", "0s"),
        50.0,
        "the 999MiB at the `to` event is not in"
    );
    assert_eq!(rss("mean", "0s"), 30.0);
    assert_eq!(rss("first", "0s"), 10.0, "the `from` event's sample is in");
    assert_eq!(rss("last", "0s"), 50.0);
    // Least squares through (2000, 10), (2250, 40), (2500, 20), (2750, 50): 0.04 MiB/ms.
    assert!(
        (rss("slope", "0s") - 2400.0).abs() < 1e-9,
        "{}",
        rss("slope", "0s")
    );
    // `after` moves the start: the window is 2250..3000 ms.
    assert_eq!(rss("first", "250ms"), 40.0);
    assert_eq!(rss("min", "250ms"), 20.0);
    assert_eq!(rss("mean", "250ms"), (40.0 + 20.0 + 50.0) / 3.0);
    // How each window is named in the details.
    let window = |text: &str| {
        let results = evaluate(&expectations(text), &run, &facts());
        results[0].detail.split(" = ").next().unwrap().to_owned()
    };
    let head = "[[expect]]\nname = \"w\"\nmetric = \"process.service.rss\"\nat_least = \"0MiB\"\n";
    assert_eq!(
        window(&format!("{head}from = \"service:allocated\"\n")),
        "last process.service.rss from service:allocated to end"
    );
    assert_eq!(
        window(&format!("{head}after = \"1s\"\n")),
        "last process.service.rss from start+1s to end"
    );
    assert_eq!(window(head), "last process.service.rss over the whole run");
    // A counter: 5 -> 7 (+2) -> 3 (a reset: +3) -> 10 (+7).
    let increase = measured("increase", "0s", "cgroup.high", "at_least = 0");
    assert_eq!(increase, 12.0);
}
