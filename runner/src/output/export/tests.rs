use super::csv::samples_csv;
use super::metrics_text::{Flavour, exposition, family};
use super::*;
use crate::records::testing::{fake_pod_run, fake_run, write_lab};

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
            "go-madvfree-balloon,v6.1,\"go=1.15,GODEBUG=\"\"x\"\"\",1,runs/go-madvfree-balloon/6.1/release=free,0.250,"
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
    let path = export(dir.path(), ExportFormat::Csv, None).unwrap().path;
    assert_eq!(path, dir.path().join("exports/samples.csv"));
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .starts_with("scenario,")
    );
    let elsewhere = dir.path().join("lab.om");
    let path = export(dir.path(), ExportFormat::Openmetrics, Some(&elsewhere))
        .unwrap()
        .path;
    assert_eq!(path, elsewhere);
    assert!(std::fs::read_to_string(&path).unwrap().ends_with("# EOF\n"));
}

/// Each run's charts and each variant's kernel row, named after the run, captioned with it,
/// and each a whole SVG document; runs without samples have none.
#[test]
fn every_chart_is_its_own_captioned_svg_named_after_its_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut runs = crate::records::testing::fake_lab();
    write_lab(dir.path(), &mut runs, 10).unwrap();
    let exported = export(dir.path(), ExportFormat::Svg, None).unwrap();
    assert_eq!(exported.path, dir.path().join("exports/charts-svg"));
    let mut names: Vec<String> = std::fs::read_dir(&exported.path)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), exported.files);
    for name in [
        "go-madvfree-balloon_6.1_release=free_processes.svg",
        "go-madvfree-balloon_6.1_release=free_cgroup-and-guest.svg",
        "go-madvfree-balloon_7.2_release=dontneed_processes.svg",
        "go-madvfree-balloon_release=free_kernels.svg",
        "go-madvfree-balloon_release=dontneed_kernels.svg",
        "overcommit-startup_6.1_release=free_processes.svg",
    ] {
        assert!(names.contains(&name.to_owned()), "{name} in {names:?}");
    }
    // The unsupported run has no samples, so no charts.
    assert!(
        !names
            .iter()
            .any(|name| name.starts_with("overcommit-startup_7.2")),
        "{names:?}"
    );
    // 8 story runs and 2 more with samples, 2 charts each at least, and 3 kernel rows.
    assert!(exported.files >= 10 * 2 + 3, "{}", exported.files);
    let svg = std::fs::read_to_string(
        exported
            .path
            .join("go-madvfree-balloon_6.1_release=free_processes.svg"),
    )
    .unwrap();
    let document = roxmltree::Document::parse(&svg).expect("a whole SVG document");
    let root = document.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let caption = root
        .children()
        .find(|node| node.has_tag_name("text"))
        .and_then(|node| node.text())
        .unwrap();
    assert_eq!(caption, "go-madvfree-balloon on 6.1, release=free");
    assert!(svg.contains("Processes: RSS, its parts and lazyfree"));
    let height: u32 = root.attribute("height").unwrap().parse().unwrap();
    let nested = root
        .children()
        .find(|node| node.has_tag_name("svg"))
        .expect("the chart nested under its caption");
    let chart_height: u32 = nested.attribute("height").unwrap().parse().unwrap();
    assert_eq!(height, chart_height + 24);
    assert_eq!(nested.attribute("y"), Some("24"));
}

/// The PNG is the captioned SVG at twice its size, its text drawn (dark pixels where the
/// caption is, none in a blank margin).
#[test]
fn a_png_chart_is_the_svg_at_twice_its_size_with_its_text() {
    let dir = tempfile::tempdir().unwrap();
    let mut runs = vec![fake_run("go-madvfree-balloon", "6.1", "free")];
    write_lab(dir.path(), &mut runs, 10).unwrap();
    let svg_dir = dir.path().join("svg");
    export(dir.path(), ExportFormat::Svg, Some(&svg_dir)).unwrap();
    let exported = export(dir.path(), ExportFormat::Png, None).unwrap();
    let name = "go-madvfree-balloon_6.1_release=free_processes";
    let png = std::fs::read(exported.path.join(format!("{name}.png"))).unwrap();
    let pixmap = resvg::tiny_skia::Pixmap::decode_png(&png).unwrap();
    let svg = std::fs::read_to_string(svg_dir.join(format!("{name}.svg"))).unwrap();
    let root = roxmltree::Document::parse(&svg).unwrap();
    let size = |key: &str| -> u32 { root.root_element().attribute(key).unwrap().parse().unwrap() };
    assert_eq!(
        (pixmap.width(), pixmap.height()),
        (size("width") * 2, size("height") * 2)
    );
    let dark_in = |rows: std::ops::Range<u32>, columns: std::ops::Range<u32>| {
        rows.flat_map(|y| columns.clone().map(move |x| (x, y)))
            .filter(|&(x, y)| {
                let pixel = pixmap.pixel(x, y).unwrap();
                u32::from(pixel.red()) + u32::from(pixel.green()) + u32::from(pixel.blue()) < 200
            })
            .count()
    };
    assert!(
        dark_in(4..44, 10..600) > 500,
        "the caption's text is drawn (a font was found)"
    );
    assert_eq!(dark_in(4..44, 1200..1270), 0, "right of the caption: blank");
}

#[test]
fn pods_and_containers_are_their_own_columns() {
    let runs = vec![fake_pod_run("pods", "6.1", true)];
    let text = samples_csv(&runs);
    for metric in [
        ",pod.web.working_set,",
        ",pod.batch.file,",
        ",container.web.api.working_set,",
        ",container.web.log-shipper.rss,",
        ",container.batch.job.inactive_file,",
        ",process.api.oom_score,",
    ] {
        assert!(text.contains(metric), "no {metric} in the CSV");
    }
    // The rows are every value of every map, the pods' and containers' too.
    let rows: usize = runs[0]
        .samples
        .iter()
        .map(|s| {
            [&s.process, &s.pod, &s.container]
                .iter()
                .flat_map(|map| map.values())
                .map(|m| m.len())
                .sum::<usize>()
                + s.cgroup.len()
                + s.guest.len()
        })
        .sum();
    assert_eq!(text.lines().count() - 1, rows);
}

#[test]
fn pods_and_containers_are_families_with_their_labels_and_cadvisors_names() {
    let runs = vec![fake_pod_run("pods", "6.1", true)];
    let text = exposition(&runs, Flavour::OpenMetrics).unwrap();
    let series = |name: &str| -> Vec<&str> {
        text.lines()
            .filter(|line| line.starts_with(&format!("{name}{{")))
            .collect()
    };
    let labels = r#"scenario="pods",kernel="6.1",variant="MemoryQoS=true",repeat="1",run="runs/pods/6.1/MemoryQoS=true""#;
    let pod = series("rsslab_pod_working_set_bytes");
    assert!(
        pod[0].starts_with(&format!(
            "rsslab_pod_working_set_bytes{{{labels},pod=\"batch\"}} "
        )),
        "{}",
        pod[0]
    );
    let api = format!("{labels},pod=\"web\",container=\"api\"}}");
    let container = series("rsslab_container_rss_bytes");
    assert!(
        container.iter().any(|line| line.contains(&api)),
        "{container:?}"
    );
    assert!(text.contains("# TYPE rsslab_container_oom_kill counter\n"));
    assert!(text.contains("rsslab_pod_oom_kill_total{"));
    // cAdvisor's names, each point the same as rsslab's own.
    let working_set = series("container_memory_working_set_bytes");
    let own = series("rsslab_container_working_set_bytes");
    assert_eq!(working_set.len(), own.len());
    assert!(working_set.iter().any(|line| line.contains(&api)));
    for (cadvisor, own) in working_set.iter().zip(&own) {
        assert_eq!(
            cadvisor.split_once('{').unwrap().1,
            own.split_once('{').unwrap().1
        );
    }
    assert_eq!(series("container_memory_rss").len(), container.len());
    assert!(text.contains("# TYPE container_memory_working_set_bytes gauge\n"));
    assert!(text.contains("# UNIT container_memory_working_set_bytes bytes\n"));
    assert!(text.contains("# HELP container_memory_working_set_bytes Current working set in bytes, computed as cAdvisor computes it"));
    assert!(text.contains(
        "# HELP container_memory_rss Size of RSS in bytes, computed as cAdvisor computes it"
    ));
    // cAdvisor's RSS has no unit in its name, so no UNIT line (OpenMetrics wants it a suffix).
    assert!(!text.contains("# UNIT container_memory_rss"));
    // The pods' cgroups are no container of cAdvisor's here.
    assert!(
        !series("container_memory_rss")
            .iter()
            .any(|line| !line.contains("container="))
    );
    // A process's oom_score is a score: a gauge without a unit.
    let oom_score = family("process", "oom_score");
    assert_eq!(
        (oom_score.name.as_str(), oom_score.unit, oom_score.counter),
        ("rsslab_process_oom_score", None, false)
    );
    assert!(oom_score.help.contains("not bytes"), "{}", oom_score.help);
    assert!(text.contains("# TYPE rsslab_process_oom_score gauge\n"));
    assert!(!text.contains("oom_score_bytes"));
}

#[test]
fn each_pod_chart_is_its_own_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut runs = vec![
        fake_pod_run("pods", "6.1", true),
        fake_run("demo", "6.1", "free"),
    ];
    write_lab(dir.path(), &mut runs, 10).unwrap();
    let exported = export(dir.path(), ExportFormat::Svg, None).unwrap();
    let svg = |name: &str| std::fs::read_to_string(exported.path.join(name));
    for (name, title) in [
        ("pods_6.1_MemoryQoS=true_pod-web.svg", "Pod web (Burstable)"),
        (
            "pods_6.1_MemoryQoS=true_pod-batch.svg",
            "Pod batch (BestEffort)",
        ),
    ] {
        let text = svg(name).unwrap_or_else(|_| panic!("no {name}"));
        let document = roxmltree::Document::parse(&text).expect("a whole SVG document");
        let caption = document
            .root_element()
            .children()
            .find(|node| node.has_tag_name("text"))
            .and_then(|node| node.text())
            .unwrap();
        let pod = name.split("pod-").last().unwrap().trim_end_matches(".svg");
        assert_eq!(caption, format!("pods on 6.1, MemoryQoS=true, pod {pod}"));
        assert!(text.contains(title));
    }
    let pod_files = std::fs::read_dir(&exported.path)
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("_pod-")
        })
        .count();
    assert_eq!(pod_files, 2, "none for the run without pods");
}
