use super::csv::samples_csv;
use super::metrics_text::{Flavour, exposition, family};
use super::*;
use crate::records::testing::{fake_run, write_lab};

fn lab() -> Vec<crate::records::LoadedRun> {
    let mut run = fake_run("go-madvfree-balloon", "6.1", "free");
    // A variant label with a comma and a quote, as matrix labels can have.
    run.record.variant_label = "go=1.15,GODEBUG=\"x\"".into();
    run.samples[0].cgroup.insert("pgscan".into(), 10);
    run.samples[1].cgroup.insert("pgscan".into(), 25);
    run.samples[0]
        .cgroup
        .insert("psi_some_total".into(), 2_500_000);
    vec![run, fake_run("go-madvfree-balloon", "7.2", "dontneed")]
}

#[test]
fn the_csv_is_one_row_per_run_time_and_metric_with_quoted_fields() {
    let runs = lab();
    let text = samples_csv(&runs);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("scenario,kernel,variant,repeat,run,t_s,metric,value")
    );
    let rows: usize = runs
        .iter()
        .flat_map(|run| &run.samples)
        .map(|s| {
            s.process.values().map(|m| m.len()).sum::<usize>() + s.cgroup.len() + s.guest.len()
        })
        .sum();
    assert_eq!(lines.clone().count(), rows);
    let first = lines.next().unwrap();
    assert!(
        first.starts_with(
            "go-madvfree-balloon,6.1,\"go=1.15,GODEBUG=\"\"x\"\"\",1,runs/go-madvfree-balloon/6.1/release=free,0.250,"
        ),
        "{first}"
    );
    assert!(text.contains(",0.250,cgroup.pgscan,10\n"), "{text}");
    assert!(text.contains(",0.500,cgroup.pgscan,25\n"));
    assert!(text.contains(",0.250,process.service.rss,"));
}

#[test]
fn families_are_named_with_their_unit_and_counters_with_total() {
    let rss = family("process", "rss");
    assert_eq!(
        (rss.name.as_str(), rss.counter, rss.unit),
        ("rsslab_process_rss_bytes", false, Some("bytes"))
    );
    let reported = family("process", "goroutines_started");
    assert_eq!(
        (reported.name.as_str(), reported.unit),
        ("rsslab_process_goroutines_started", None)
    );
    let pgscan = family("cgroup", "pgscan");
    assert_eq!(
        (pgscan.name.as_str(), pgscan.counter),
        ("rsslab_cgroup_pgscan", true)
    );
    let stall = family("guest", "psi_full_total");
    assert_eq!(
        (stall.name.as_str(), stall.counter, stall.unit, stall.scale),
        ("rsslab_guest_psi_full_seconds", true, Some("seconds"), 1e-6)
    );
    let avg = family("cgroup", "psi_some_avg10");
    assert_eq!(
        (avg.name.as_str(), avg.unit, avg.scale),
        ("rsslab_cgroup_psi_some_avg10_ratio", Some("ratio"), 1e-4)
    );
    assert_eq!(
        family("guest", "mem_available").name,
        "rsslab_guest_mem_available_bytes"
    );
}

/// Each family's lines: `# TYPE` once, its points together.
fn families_of(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .map(|rest| rest.split(' ').next().unwrap())
        .collect()
}

#[test]
fn openmetrics_has_timestamps_in_seconds_units_and_an_end() {
    let text = exposition(&lab(), Flavour::OpenMetrics).unwrap();
    assert!(text.ends_with("\n# EOF\n"));
    let families = families_of(&text);
    let mut sorted = families.clone();
    sorted.dedup();
    assert_eq!(families, sorted, "each family once");
    assert!(text.contains("# TYPE rsslab_cgroup_pgscan counter\n"));
    assert!(text.contains("# UNIT rsslab_process_rss_bytes bytes\n"));
    // The fake runs start at 2025-01-01T12:00:00Z = 1735732800 s; a sample at 0.25 s.
    let pgscan: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("rsslab_cgroup_pgscan_total{"))
        .collect();
    assert_eq!(pgscan.len(), 2, "{pgscan:?}");
    assert!(pgscan[0].ends_with("} 10 1735732800.250"), "{}", pgscan[0]);
    assert!(pgscan[1].ends_with("} 25 1735732800.500"), "{}", pgscan[1]);
    assert!(
        pgscan[0].contains(r#"variant="go=1.15,GODEBUG=\"x\"",repeat="1","#),
        "{}",
        pgscan[0]
    );
    assert!(text.contains("rsslab_cgroup_psi_some_seconds_total{"));
    assert!(text.contains("} 2.5 1735732800.250\n"));
    assert!(text.contains(",process=\"service\"} "));
}

#[test]
fn prometheus_text_names_the_metric_and_counts_milliseconds() {
    let text = exposition(&lab(), Flavour::Prometheus).unwrap();
    assert!(!text.contains("# EOF"));
    assert!(!text.contains("# UNIT"));
    assert!(text.contains("# TYPE rsslab_cgroup_pgscan_total counter\n"));
    assert!(text.contains("# TYPE rsslab_process_rss_bytes gauge\n"));
    assert!(text.contains("} 10 1735732800250\n"), "{text}");
}

#[test]
fn export_writes_under_exports_unless_told_where() {
    let dir = tempfile::tempdir().unwrap();
    write_lab(dir.path(), &mut lab(), 100).unwrap();
    let path = export_samples(dir.path(), ExportFormat::Csv, None).unwrap();
    assert_eq!(path, dir.path().join("exports/samples.csv"));
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .starts_with("scenario,")
    );
    let elsewhere = dir.path().join("lab.om");
    let path = export_samples(dir.path(), ExportFormat::Openmetrics, Some(&elsewhere)).unwrap();
    assert_eq!(path, elsewhere);
    assert!(std::fs::read_to_string(&path).unwrap().ends_with("# EOF\n"));
}
