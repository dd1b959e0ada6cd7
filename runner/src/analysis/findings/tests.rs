use super::*;
use crate::analysis::results::build_results;
use crate::records::LoadedRun;
use crate::records::testing::{fake_run, rss_after_release};
use crate::scenario::expect::{Check, Operand};

const MIB: u64 = 1 << 20;
const KERNELS: [&str; 4] = ["5.10", "6.1", "6.12", "7.2"];

fn facts(mglru_default: bool) -> KernelFacts {
    KernelFacts {
        madv_free: true,
        cgroup_v1_memory: !mglru_default,
        mglru: true,
        mglru_default,
        overcommit_heuristic_total_only: true,
    }
}

fn lab(release_of: impl Fn(&str) -> Vec<&'static str>) -> Vec<LoadedRun> {
    KERNELS
        .iter()
        .flat_map(|kernel| {
            release_of(kernel).into_iter().map(move |release| {
                let mut run = fake_run("madv", kernel, release);
                run.record.expectations = vec![rss_after_release()];
                run.record.kernel_facts = Some(facts(["6.12", "7.2"].contains(kernel)));
                run
            })
        })
        .collect()
}

/// Scales the service's RSS after its release (and its peak stays): a kernel that gives more
/// of the released heap back.
fn shrink_after_release(run: &mut LoadedRun, divide_by: u64) {
    for sample in run.samples.iter_mut().filter(|s| s.t_ms >= 3000) {
        if let Some(rss) = sample
            .process
            .get_mut("service")
            .and_then(|m| m.get_mut("rss"))
        {
            *rss /= divide_by;
        }
    }
}

#[test]
fn variants_that_differ_on_every_kernel_are_said_with_both_figures() {
    let runs = lab(|_| vec!["dontneed", "free"]);
    let findings = find(&build_results(&runs).runs);
    let finding = findings
        .iter()
        .find(|f| f.expectations == ["RSS after release"])
        .unwrap_or_else(|| panic!("{findings:#?}"));
    assert_eq!(
        finding.measure,
        "last process.service.rss from service:released+1s to balloon:started"
    );
    assert_eq!(
        finding.text,
        "50.0MiB with release=dontneed, 400.0MiB with release=free, on all 4 kernels"
    );
    assert_eq!(finding.kind, FindingKind::Expected);
    assert_eq!(finding.runs.len(), 8);
    assert!(finding.facts.is_empty());
    assert_eq!(finding.ratio, 8.0);
}

#[test]
fn kernels_that_differ_name_the_facts_that_split_them_alike() {
    let mut runs = lab(|_| vec!["free"]);
    for run in &mut runs {
        if ["6.12", "7.2"].contains(&run.record.kernel.as_str()) {
            shrink_after_release(run, 4);
        }
    }
    let findings = find(&build_results(&runs).runs);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(
        findings[0].text,
        "100.0MiB on 6.12 and 7.2, 400.0MiB on 5.10 and 6.1, as the kernel facts \
         `cgroup_v1_memory` and `mglru_default` go"
    );
    assert_eq!(findings[0].facts, ["cgroup_v1_memory", "mglru_default"]);
}

#[test]
fn nothing_is_said_where_runs_agree_within_noise() {
    let mut runs = lab(|_| vec!["free"]);
    // 3 MiB apart on one kernel: under the 4 MiB floor.
    for sample in runs[1].samples.iter_mut().filter(|s| s.t_ms >= 3000) {
        *sample
            .process
            .get_mut("service")
            .unwrap()
            .get_mut("rss")
            .unwrap() -= 3 * MIB;
    }
    assert_eq!(find(&build_results(&runs).runs), Vec::<Finding>::new());
}

#[test]
fn a_difference_no_expectation_asks_about_is_new_and_a_failed_one_is_said() {
    let mut runs = lab(|_| vec!["free"]);
    for run in &mut runs {
        run.record.expectations.clear();
        if run.record.kernel == "7.2" {
            for sample in &mut run.samples {
                if let Some(metrics) = sample.process.get_mut("balloon") {
                    *metrics.get_mut("rss").unwrap() *= 2;
                }
            }
            let peak = run.record.processes.get_mut("balloon").unwrap();
            *peak.peak.get_mut("rss").unwrap() *= 2;
        }
    }
    let findings = find(&build_results(&runs).runs);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].measure, "peak rss of balloon");
    assert_eq!(findings[0].kind, FindingKind::New);
    assert!(findings[0].text.ends_with("on 7.2"), "{}", findings[0].text);

    // An expectation that fails where the runs differ.
    let mut runs = lab(|kernel| {
        if kernel == "6.1" {
            vec!["dontneed"]
        } else {
            vec!["free"]
        }
    });
    for run in &mut runs {
        if let Check::Metric { against, .. } = &mut run.record.expectations[0].check {
            *against = Operand::Size(rsslab_wire::Bytes::mib(300));
        }
    }
    let findings = find(&build_results(&runs).runs);
    let finding = findings
        .iter()
        .find(|f| !f.expectations.is_empty())
        .unwrap_or_else(|| panic!("{findings:#?}"));
    assert_eq!(finding.kind, FindingKind::ExpectationFailed);
    assert_eq!(
        finding.text,
        "50.0MiB with release=dontneed on 6.1, 400.0MiB with release=free on 5.10, 6.12 and 7.2"
    );
}

#[test]
fn groups_split_where_the_gap_is_more_than_the_tolerance() {
    assert!(!differ(Unit::Bytes, 100.0 * MIB as f64, 104.0 * MIB as f64));
    assert!(differ(Unit::Bytes, 10.0 * MIB as f64, 15.0 * MIB as f64));
    assert!(!differ(Unit::Bytes, 400.0 * MIB as f64, 450.0 * MIB as f64));
    assert!(differ(Unit::Bytes, 105.0 * MIB as f64, 128.0 * MIB as f64));
    assert!(differ(Unit::Count, 0.0, 2.0));
    assert!(!differ(Unit::Count, 0.0, 1.0));
    assert!(!differ(Unit::Micros, 0.0, 90_000.0));
    assert_eq!(join_words(&["a", "b", "c"]), "a, b and c");
    assert_eq!(value_range(Unit::Count, [3.0, 5.0].into_iter()), "3-5");
}
