//! Scenario files end to end: the rendered messages for bad inputs (insta snapshots under
//! `tests/snapshots/`), the good fixtures, the built-in lab, and the plan they make.

use std::path::PathBuf;

use rsslab::plan::{PlanFilter, plan};
use rsslab::scenario::{load_scenario, load_scenarios};

fn kernels() -> Vec<String> {
    ["5.10", "6.1", "6.12", "7.2"].map(String::from).to_vec()
}

/// The messages `rsslab check` would print for a bad fixture.
fn rendered(name: &str) -> String {
    let path = PathBuf::from(format!("tests/fixtures/scenarios/bad/{name}.toml"));
    match load_scenario(&path, &kernels()) {
        Ok(_) => panic!("{} should not validate", path.display()),
        Err(error) => error.to_string(),
    }
}

macro_rules! bad_fixture {
    ($($test:ident => $name:literal,)*) => {$(
        #[test]
        fn $test() {
            insta::assert_snapshot!($name, rendered($name));
        }
    )*};
}

bad_fixture! {
    misspelled_key => "misspelled-key",
    bad_unit => "bad-unit",
    negative_size => "negative-size",
    unknown_kernel => "unknown-kernel",
    unknown_workload => "unknown-workload",
    missing_trigger_process => "missing-trigger-process",
    unknown_phase => "unknown-phase",
    trigger_cycle => "trigger-cycle",
    bad_matrix_key => "bad-matrix-key",
    cgroup_v1_memory_high => "cgroup-v1-memory-high",
    matrix_variant_too_big => "matrix-variant-too-big",
    expect_unknown_event => "expect-unknown-event",
    expect_unknown_metric => "expect-unknown-metric",
    expect_two_checks => "expect-two-checks",
    expect_bad_when => "expect-bad-when",
    go_toolchain => "go-toolchain",
    several_errors => "several-errors",
    syntax_error => "syntax-error",
    missing_tables => "missing-tables",
}

#[test]
fn every_bad_fixture_has_a_test() {
    let this_file = include_str!("scenario_files.rs");
    for entry in std::fs::read_dir("tests/fixtures/scenarios/bad").unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy();
        assert!(
            this_file.contains(&format!("=> \"{name}\"")),
            "{name}.toml has no snapshot test"
        );
    }
}

#[test]
fn the_bad_directory_reports_every_file() {
    let error =
        load_scenarios(&[PathBuf::from("tests/fixtures/scenarios/bad")], &kernels()).unwrap_err();
    let files: std::collections::BTreeSet<_> =
        error.diagnostics().iter().map(|d| d.file.clone()).collect();
    assert_eq!(
        files.len(),
        std::fs::read_dir("tests/fixtures/scenarios/bad")
            .unwrap()
            .count()
    );
}

#[test]
fn the_good_fixture_plans_every_kernel_and_variant() {
    let scenarios = load_scenarios(
        &[PathBuf::from("tests/fixtures/scenarios/good")],
        &kernels(),
    )
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
        },
    );
    assert_eq!(filtered.runs.len(), 2);
}
