use std::path::Path;

use super::fixtures::{BASE, FREE_HIGH, errors, expectations, kernels};
use super::*;
use crate::scenario::parse_scenario;

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
            "its samples hold vsz, rss, rss_anon, rss_file, rss_shmem, lazyfree, anon_huge, swap, oom_score, balloon",
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
