use std::path::Path;

use super::*;
use crate::report::testing::fake_run;
use crate::scenario::parse_scenario;

fn kernels() -> Vec<String> {
    ["5.10", "6.1", "6.12", "7.2"].map(String::from).to_vec()
}

const BASE: &str = r#"[scenario]
id = "demo"
title = "Demo"
[cgroup]
[sample]
duration = "30s"
[[process]]
name = "service"
workload = "heap-churn"
args = { heap = "400MiB", live = "50MiB" }
[[process]]
name = "balloon"
workload = "balloon"
cgroup = false
start = { after = "service", phase = "released", delay = "3s" }
[matrix]
"process.service.args.release" = ["free", "dontneed"]
"#;

fn expectations(extra: &str) -> Vec<Expectation> {
    let source = format!("{BASE}{extra}");
    parse_scenario(Path::new("demo.toml"), &source, &kernels())
        .unwrap_or_else(|error| panic!("{error}"))
        .expectations
}

fn errors(extra: &str) -> String {
    let source = format!("{BASE}{extra}");
    match parse_scenario(Path::new("demo.toml"), &source, &kernels()) {
        Ok(_) => panic!("should not validate:\n{extra}"),
        Err(error) => error.to_string(),
    }
}

const FREE_HIGH: &str = r#"
[[expect]]
name = "MADV_FREE keeps RSS"
when = { "process.service.args.release" = "free" }
metric = "process.service.rss"
from = "service:released"
after = "1s"
to = "balloon:started"
above = "380MiB"
"#;

#[test]
fn every_check_reads() {
    let read = expectations(&format!(
        "{FREE_HIGH}
[[expect]]
name = \"after release, 90% of the peak\"
when = {{ kernel = [\"6.1\", \"7.2\"], mglru_default = false }}
metric = \"cgroup.working_set\"
stat = \"mean\"
from = \"service:released\"
at_least = {{ metric = \"process.service.rss\", stat = \"max\", times = 0.9 }}

[[expect]]
name = \"survives\"
process = \"service\"
outcome = [\"running-at-end\", \"exited(0)\"]

[[expect]]
name = \"runs\"
when = {{ process.service.args.release = \"dontneed\" }}
run_outcome = \"ok\"
"
    ));
    assert_eq!(read.len(), 4);
    assert_eq!(read[0].name, "MADV_FREE keeps RSS");
    assert_eq!(
        read[0].when.matrix,
        BTreeMap::from([("process.service.args.release".into(), vec!["free".into()])])
    );
    let Check::Metric {
        measure,
        compare,
        against,
    } = &read[0].check
    else {
        panic!("{:?}", read[0].check)
    };
    assert_eq!(measure.stat, Stat::Last);
    assert_eq!(measure.after, Millis::secs(1));
    assert_eq!(*compare, Comparison::Above);
    assert_eq!(*against, Operand::Size(Bytes::mib(380)));
    assert_eq!(read[1].when.kernels, ["6.1", "7.2"]);
    assert_eq!(
        read[1].when.facts,
        BTreeMap::from([("mglru_default".into(), false)])
    );
    let Check::Metric { against, .. } = &read[1].check else {
        panic!()
    };
    let Operand::Metric {
        measure,
        times,
        plus,
    } = against
    else {
        panic!("{against:?}")
    };
    assert_eq!(
        (measure.stat, *times, *plus, measure.from.as_ref()),
        (Stat::Max, 0.9, Bytes(0), None)
    );
    assert_eq!(
        read[2].check,
        Check::Outcome {
            process: "service".into(),
            outcomes: vec![ProcessOutcome::RunningAtEnd, ProcessOutcome::Exited(0)]
        }
    );
    assert_eq!(
        read[3].when.matrix["process.service.args.release"],
        ["dontneed"]
    );
    assert_eq!(
        read[3].check,
        Check::RunOutcome {
            outcomes: vec![RunOutcome::Ok]
        }
    );
    // They travel in run.json.
    let json = serde_json::to_string(&read).unwrap();
    let back: Vec<Expectation> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, read);
}

#[test]
fn mistakes_are_placed_and_explained() {
    let cases = [
        (
            "metric = \"proces.service.rss\"\nabove = \"1MiB\"",
            "unknown metric namespace `proces`",
        ),
        (
            "metric = \"process.servce.rss\"\nabove = \"1MiB\"",
            "names process `servce`, which the scenario does not have",
        ),
        (
            "metric = \"cgroup.wrking_set\"\nabove = 1",
            "did you mean `working_set`?",
        ),
        (
            "metric = \"process.service.rsss\"\nabove = 1",
            "process `service` has no metric `rsss`",
        ),
        (
            "metric = \"process.balloon.heap_released\"\nabove = 1",
            "its samples hold vsz, rss, rss_anon, rss_file, rss_shmem, lazyfree, anon_huge, swap, balloon",
        ),
        (
            "metric = \"process.service.rss\"\nabove = \"512MB\"",
            "write \"512MiB\", or 512000000",
        ),
        (
            "metric = \"process.service.rss\"\nstat = \"maximum\"\nabove = 1",
            "unknown stat `maximum`",
        ),
        (
            "metric = \"process.service.rss\"\nfrom = \"service:relased\"\nabove = 1",
            "`service` has no event `relased`",
        ),
        (
            "metric = \"process.service.rss\"\nto = \"baloon:started\"\nabove = 1",
            "names process `baloon`",
        ),
        (
            "metric = \"process.service.rss\"\nabove = 1\nbelow = 2",
            "a metric check has one comparison",
        ),
        (
            "metric = \"process.service.rss\"",
            "compares its metric with nothing",
        ),
        (
            "metric = \"process.service.rss\"\nabove = \"lots\"",
            "`lots` is not a size",
        ),
        (
            "metric = \"process.service.rss\"\nabove = { metric = \"process.service.rss\", times = -1 }",
            "`times` is a positive factor",
        ),
        (
            "metric = \"process.service.rss\"\nabove = 1\nrun_outcome = \"ok\"",
            "has more than one check",
        ),
        ("", "checks nothing"),
        ("process = \"service\"", "`process` without `outcome`"),
        (
            "process = \"service\"\noutcome = \"oom\"",
            "`oom` is not an outcome",
        ),
        (
            "process = \"svc\"\noutcome = \"oom-killed\"",
            "unknown process `svc`",
        ),
        (
            "run_outcome = \"unsuported\"",
            "did you mean `unsupported`?",
        ),
        (
            "run_outcome = \"ok\"\nstat = \"max\"",
            "`stat` belongs to a metric check",
        ),
        (
            "run_outcome = \"ok\"\nwhen = { kernal = \"6.1\" }",
            "unknown key `kernal` in `when`",
        ),
        (
            "run_outcome = \"ok\"\nwhen = { kernel = \"6.2\" }",
            "unknown kernel `6.2`",
        ),
        (
            "run_outcome = \"ok\"\nwhen = { \"process.service.args.release\" = \"fre\" }",
            "never takes this value",
        ),
        (
            "run_outcome = \"ok\"\nwhen = { madv_free = 1 }",
            "is true or false",
        ),
        (
            "run_outcome = \"ok\"\nwhatever = 1",
            "unknown key `whatever` in `expect[0]`",
        ),
    ];
    for (body, wanted) in cases {
        let text = errors(&format!("[[expect]]\nname = \"x\"\n{body}\n"));
        assert!(
            text.contains(wanted),
            "for\n{body}\nwanted {wanted:?} in\n{text}"
        );
        assert!(text.contains("demo.toml:"), "{text}");
    }
    let text = errors(
        "[[expect]]\nname = \"x\"\nrun_outcome = \"ok\"\n[[expect]]\nname = \"x\"\nrun_outcome = \"ok\"\n",
    );
    assert!(
        text.contains("expectation name `x` is used twice"),
        "{text}"
    );
    let text = errors("[[expect]]\nrun_outcome = \"ok\"\n");
    assert!(text.contains("name"), "{text}");
}

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
    let results = crate::results::build_results(&[run]);
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
        crate::results::build_results(&[run]).failed_expectations(),
        1
    );
}

#[test]
fn records_written_before_expectations_still_load() {
    let run = fake_run("demo", "6.1", "free");
    let mut value = serde_json::to_value(&run.record).unwrap();
    let object = value.as_object_mut().unwrap();
    object.remove("expectations").unwrap();
    object.remove("kernel_facts").unwrap();
    let record: crate::record::RunRecord = serde_json::from_value(value).unwrap();
    assert!(record.expectations.is_empty());
    assert_eq!(record.kernel_facts, None);
}

#[test]
fn workload_metrics_are_accepted_and_cgroup_metrics_need_a_cgroup() {
    let read = expectations(
        "[[expect]]\nname = \"x\"\nmetric = \"process.service.heap_released\"\nabove = 1\n",
    );
    assert_eq!(read.len(), 1);
    let source = BASE
        .replace("[cgroup]\n", "")
        .replace("cgroup = false\n", "")
        + "[[expect]]\nname = \"x\"\nmetric = \"cgroup.working_set\"\nbelow = \"1GiB\"\n";
    let error = parse_scenario(Path::new("demo.toml"), &source, &kernels()).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("needs a cgroup, and the scenario has no [cgroup]"),
        "{error}"
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
