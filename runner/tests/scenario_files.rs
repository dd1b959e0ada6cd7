//! Scenario files end to end: the good fixtures, the built-in lab, and the plan they make
//! (bad input is `bad_input.rs`).

use std::path::PathBuf;

use rsslab::plan::{PlanFilter, plan};
use rsslab::scenario::load_scenarios;

fn kernels() -> Vec<String> {
    ["5.10", "6.1", "6.12", "7.2"].map(String::from).to_vec()
}

#[test]
fn the_good_fixture_plans_every_kernel_and_variant() {
    let scenarios = load_scenarios(&[PathBuf::from("tests/fixtures/good")], &kernels())
        .unwrap_or_else(|error| panic!("{error}"));
    let plan = plan(&scenarios, &PlanFilter::default());
    let dirs: Vec<&str> = plan.runs.iter().map(|run| run.dir.as_str()).collect();
    insta::assert_debug_snapshot!("good_plan_dirs", dirs);
    let run = &plan.runs[1];
    assert_eq!(
        run.spec.run_id,
        "every-table/5.10/release=free,vm.overcommit_memory=1"
    );
    assert_eq!(run.spec.sysctl["vm.overcommit_memory"], "1");
    assert_eq!(run.spec.sysctl["vm.swappiness"], "10");
    assert_eq!(
        run.spec.disk.as_ref().map(|disk| disk.mount.as_str()),
        Some("/scratch")
    );
    insta::assert_snapshot!(
        "good_run_spec",
        serde_json::to_string_pretty(&run.spec).unwrap()
    );
}

#[test]
fn the_builtin_lab_validates_and_plans_eight_runs() {
    let scenarios = load_scenarios(&[PathBuf::from("../scenarios")], &kernels())
        .unwrap_or_else(|error| panic!("{error}"));
    let madvise = scenarios
        .iter()
        .find(|s| s.id == "heap-churn-madvise")
        .expect("the built-in scenario");
    let plan = plan(std::slice::from_ref(madvise), &PlanFilter::default());
    let dirs: Vec<&str> = plan.runs.iter().map(|run| run.dir.as_str()).collect();
    assert_eq!(
        dirs,
        [
            "runs/heap-churn-madvise/5.10/release=free",
            "runs/heap-churn-madvise/5.10/release=dontneed",
            "runs/heap-churn-madvise/6.1/release=free",
            "runs/heap-churn-madvise/6.1/release=dontneed",
            "runs/heap-churn-madvise/6.12/release=free",
            "runs/heap-churn-madvise/6.12/release=dontneed",
            "runs/heap-churn-madvise/7.2/release=free",
            "runs/heap-churn-madvise/7.2/release=dontneed",
        ]
    );
    let filtered = rsslab::plan::plan(
        std::slice::from_ref(madvise),
        &PlanFilter {
            kernels: vec!["6.1".into()],
            added: vec![],
        },
    );
    assert_eq!(filtered.runs.len(), 2);
}
