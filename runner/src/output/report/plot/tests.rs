use super::*;
use crate::records::testing::{HOSTILE, fake_run, fake_run_named, hostile_run};

/// The charts of one run on axes fitted to it alone.
fn charts(run: &LoadedRun) -> (String, String, RunSeries) {
    let series = run_series(run, &Focus::of([run]));
    let axes = Axes::fitting(series.process.iter().chain(&series.system), series.t_max_s);
    let markers = event_markers(run, axes.t_max_s / 40.0);
    (
        process_chart(&series.process, &markers, &axes).unwrap(),
        system_chart(&series.system, &markers, &axes).unwrap(),
        series,
    )
}

fn texts(svg: &str) -> Vec<String> {
    let document = roxmltree::Document::parse(svg).expect("the chart is well-formed XML");
    assert_eq!(document.root_element().tag_name().name(), "svg");
    document
        .descendants()
        .filter(|node| node.has_tag_name("text"))
        .filter_map(|node| node.text())
        .map(|text| text.trim().to_owned())
        .collect()
}

#[test]
fn run_charts_are_well_formed_xml_with_labels() {
    let run = fake_run("demo", "6.1", "free");
    let (process, system, _) = charts(&run);
    let process_texts = texts(&process);
    for expected in [
        "service rss",
        "service rss_anon",
        "service lazyfree",
        "balloon rss",
        "time (s)",
        "MiB",
    ] {
        assert!(
            process_texts.iter().any(|text| text == expected),
            "no text {expected:?} in {process_texts:?}"
        );
    }
    assert!(
        process_texts
            .iter()
            .any(|text| text.contains("service:released")),
        "{process_texts:?}"
    );
    let system_texts = texts(&system);
    for expected in [
        "cgroup usage",
        "cgroup working set",
        "memory.max",
        "guest MemAvailable",
        "kubelet memory.available",
    ] {
        assert!(
            system_texts.iter().any(|text| text == expected),
            "no text {expected:?} in {system_texts:?}"
        );
    }
    assert!(!process.contains("xmlns"), "inline SVG needs no namespace");
}

#[test]
fn small_parts_of_rss_are_left_out() {
    let run = fake_run("demo", "6.1", "free");
    let series = run_series(&run, &Focus::of([&run]));
    let labels: Vec<&str> = series.process.iter().map(|s| s.label.as_str()).collect();
    // The fake service has no file pages; the balloon's lazyfree is always 0.
    assert!(labels.contains(&"service rss_anon"), "{labels:?}");
    assert!(!labels.contains(&"service rss_file"), "{labels:?}");
    assert!(!labels.contains(&"balloon lazyfree"), "{labels:?}");
    assert!(labels.contains(&"service lazyfree"), "{labels:?}");
}

#[test]
fn memory_high_and_the_limit_come_from_the_spec_when_not_sampled() {
    let mut run = fake_run("demo", "6.1", "free");
    for sample in &mut run.samples {
        sample.cgroup.remove("limit");
    }
    run.record.spec.cgroup.as_mut().unwrap().memory_high = Some(rsslab_wire::Bytes::mib(600));
    let series = run_series(&run, &Focus::of([&run]));
    let level = |label: &str| {
        let line = series
            .system
            .iter()
            .find(|s| s.label == label)
            .unwrap_or_else(|| panic!("no {label}"));
        assert_eq!(line.points.len(), 2);
        line.points[0].1
    };
    assert_eq!(level("memory.max"), 768.0);
    assert_eq!(level("memory.high"), 600.0);
}

#[test]
fn focus_follows_the_scenario() {
    let run = fake_run("demo", "6.1", "free");
    let focus = Focus::of([&run]);
    assert_eq!(
        focus,
        Focus {
            lazyfree: true,
            cgroup: true,
            overcommit: false
        }
    );
    let labels: Vec<String> = run_series(&run, &focus)
        .focus
        .into_iter()
        .map(|s| s.label)
        .collect();
    assert_eq!(
        labels,
        [
            "service rss",
            "service lazyfree",
            "balloon rss",
            "cgroup working set",
            "memory.max"
        ]
    );
    let mut overcommit = fake_run("demo", "6.1", "dontneed");
    overcommit.record.spec.cgroup = None;
    overcommit
        .record
        .spec
        .sysctl
        .insert("vm.overcommit_memory".into(), "2".into());
    for sample in &mut overcommit.samples {
        sample.guest.insert("committed_as".into(), 300 << 20);
        sample.guest.insert("commit_limit".into(), 500 << 20);
    }
    let focus = Focus::of([&overcommit]);
    assert!(focus.overcommit && !focus.cgroup && !focus.lazyfree);
    let labels: Vec<String> = run_series(&overcommit, &focus)
        .focus
        .into_iter()
        .map(|s| s.label)
        .collect();
    assert_eq!(
        labels,
        ["service rss", "balloon rss", "Committed_AS", "CommitLimit"]
    );
}

#[test]
fn kernel_row_has_one_panel_per_kernel_on_the_same_axes() {
    let runs: Vec<LoadedRun> = ["5.10", "6.1"]
        .iter()
        .map(|kernel| fake_run("demo", kernel, "free"))
        .collect();
    let focus = Focus::of(&runs);
    let series: Vec<RunSeries> = runs.iter().map(|run| run_series(run, &focus)).collect();
    let axes = Axes::fitting(series.iter().flat_map(|s| &s.focus), 30.0);
    let mut panels: Vec<KernelPanel<'_>> = runs
        .iter()
        .zip(&series)
        .map(|(run, series)| KernelPanel {
            kernel: &run.record.kernel,
            outcome: "ok",
            series: &series.focus,
            markers: event_markers(run, 1.0),
        })
        .collect();
    panels.push(KernelPanel {
        kernel: "7.2",
        outcome: "unsupported",
        series: &[],
        markers: Vec::new(),
    });
    let svg = kernel_row(&panels, &axes).unwrap();
    let texts = texts(&svg);
    for title in ["5.10 · ok", "6.1 · ok", "7.2 · unsupported", "no samples"] {
        assert!(
            texts.iter().any(|t| t == title),
            "no {title:?} in {texts:?}"
        );
    }
    // Five series per run, each one polyline; the legend names each once.
    assert_eq!(svg.matches("stroke-linejoin=\"round\" points=").count(), 10);
    assert_eq!(texts.iter().filter(|t| *t == "service rss").count(), 1);
}

#[test]
fn hostile_labels_are_escaped_in_svg() {
    let run = hostile_run();
    let (process, _, _) = charts(&run);
    assert!(!process.contains("<script"), "{process}");
    let all_text: String = texts(&process).concat();
    assert!(
        all_text.contains("<script>alert(1)</script> & \"x\""),
        "{all_text}"
    );
}

#[test]
fn control_characters_are_dropped_from_svg_text() {
    let mut run = fake_run_named("demo", "6.1", "free", "svc\u{1}\u{8}", "b\u{1b}");
    run.record.events.push(rsslab_wire::Event {
        t_ms: 5000,
        process: Some("svc\u{1}\u{8}".into()),
        kind: EventKind::Phase {
            phase: "ph\u{0}ase".into(),
        },
    });
    let (process, _, _) = charts(&run);
    roxmltree::Document::parse(&process).expect("no control character in the SVG");
    assert!(process.contains("svc:phase"), "{process}");
}

#[test]
fn dashed_series_are_one_element() {
    let run = fake_run("demo", "6.1", "free");
    let (process, system, _) = charts(&run);
    // lazyfree; then active_file is absent, working set is solid: memory.max and kubelet.
    assert_eq!(process.matches("stroke-dasharray").count(), 1);
    assert_eq!(system.matches("stroke-dasharray").count(), 2);
    assert!(process.len() < 30_000, "{} bytes", process.len());
}

#[test]
fn decimation_keeps_extremes_and_order() {
    let points: Vec<(f64, f64)> = (0..10_000)
        .map(|i| {
            let t = f64::from(i) / 100.0;
            (
                t,
                (t * 3.0).sin() * 100.0 + if i == 4321 { 500.0 } else { 0.0 },
            )
        })
        .collect();
    let kept = decimate(&points, 100.0, 200);
    assert!(kept.len() <= 800, "{}", kept.len());
    assert!(kept.windows(2).all(|pair| pair[0].0 < pair[1].0));
    let max = kept.iter().map(|p| p.1).fold(f64::MIN, f64::max);
    assert_eq!(max, points[4321].1, "the spike survives");
    assert_eq!(kept.first(), points.first());
    assert_eq!(kept.last(), points.last());
    let short = &points[..100];
    assert!(matches!(
        decimate(short, 100.0, 200),
        std::borrow::Cow::Borrowed(_)
    ));
}

#[test]
fn markers_merge_when_close_and_count_repeats() {
    let mut run = fake_run("demo", "6.1", "free");
    let markers = event_markers(&run, 100.0);
    assert_eq!(markers.len(), 1);
    assert!(markers[0].label.contains(", "));
    run.record.events = (0..4)
        .map(|round| rsslab_wire::Event {
            t_ms: 5000 + round * 500,
            process: Some("service".into()),
            kind: EventKind::Phase {
                phase: "round".into(),
            },
        })
        .collect();
    // Merged into the first marker while within the gap of it.
    let markers = event_markers(&run, 2.0);
    assert_eq!(markers.len(), 1);
    assert_eq!(markers[0].label, "service:round ×4");
    assert_eq!(event_markers(&run, 0.4).len(), 4);
}

#[test]
fn empty_run_still_draws() {
    let mut run = fake_run("demo", "6.1", "free");
    run.samples.clear();
    run.record.events.clear();
    let (process, system, _) = charts(&run);
    roxmltree::Document::parse(&process).unwrap();
    roxmltree::Document::parse(&system).unwrap();
}

#[test]
fn a_pod_chart_draws_each_container_against_the_limits_the_kernel_read_back() {
    let run = crate::records::testing::fake_pod_run("pods", "6.1", true);
    let series = run_series(&run, &Focus::of([&run]));
    let titles: Vec<&str> = series.pods.iter().map(|pod| pod.title.as_str()).collect();
    assert_eq!(titles, ["Pod web (Burstable)", "Pod batch (BestEffort)"]);
    let web = &series.pods[0];
    assert_eq!(web.name, "web");
    let labels: Vec<&str> = web.series.iter().map(|s| s.label.as_str()).collect();
    // The sidecar first, as the pod lists it; neither reads files, so neither has a file line.
    assert_eq!(
        labels,
        [
            "log-shipper working set",
            "log-shipper rss",
            "log-shipper memory.max",
            "log-shipper memory.high",
            "api working set",
            "api rss",
            "api memory.max",
            "api memory.high",
            "pod memory.max"
        ]
    );
    let line = |label: &str| web.series.iter().find(|s| s.label == label).unwrap();
    // One colour per container; its lines in that colour, the pod's grey.
    assert_eq!(
        line("api working set").colour,
        line("api memory.max").colour
    );
    assert_ne!(
        line("api working set").colour,
        line("log-shipper working set").colour
    );
    assert_eq!(
        (
            line("api working set").stroke,
            line("api working set").width
        ),
        (Stroke::Solid, 3)
    );
    assert_eq!(line("api rss").width, 1);
    assert_eq!(line("api memory.max").stroke, Stroke::Dashed);
    assert_eq!(line("api memory.high").stroke, Stroke::DashDot);
    assert_eq!(line("pod memory.max").stroke, Stroke::LongDash);
    // Levels at what the kernel read back: api's memory.high page-rounded, not as written.
    let level = |label: &str| line(label).points[0].1;
    assert_eq!(level("api memory.max"), 128.0);
    assert_eq!(level("api memory.high"), 127_504_384.0 / 1048576.0);
    assert_eq!(level("pod memory.max"), 160.0);
    // batch's job reads files: its page cache is drawn; a BestEffort pod has no limit.
    let batch: Vec<&str> = series.pods[1]
        .series
        .iter()
        .map(|s| s.label.as_str())
        .collect();
    assert!(batch.contains(&"job file"), "{batch:?}");
    assert!(!batch.contains(&"pod memory.max"), "{batch:?}");
    // Drawn: a titled, well-formed chart whose legend names the lines.
    let axes = Axes::fitting(&web.series, series.t_max_s);
    let svg = pod_chart(&web.title, &web.series, &event_markers(&run, 0.25), &axes).unwrap();
    let texts = texts(&svg);
    for expected in ["Pod web (Burstable)", "api memory.high", "pod memory.max"] {
        assert!(
            texts.iter().any(|t| t == expected),
            "no {expected:?} in {texts:?}"
        );
    }
    assert!(svg.contains("stroke-dasharray=\"16 7\""));
    // A run without pods has no pod chart.
    let plain = fake_run("demo", "6.1", "free");
    assert!(run_series(&plain, &Focus::of([&plain])).pods.is_empty());
}

#[test]
fn hostile_pod_and_container_names_are_escaped_in_the_pod_chart() {
    let run = crate::records::testing::hostile_pod_run();
    let series = run_series(&run, &Focus::of([&run]));
    let pod = &series.pods[0];
    let axes = Axes::fitting(&pod.series, series.t_max_s);
    let svg = pod_chart(&pod.title, &pod.series, &[], &axes).unwrap();
    assert!(!svg.contains("<script"), "{svg}");
    let all_text = texts(&svg).concat();
    assert!(
        all_text.contains(&format!("Pod {HOSTILE} (Burstable)")),
        "{all_text}"
    );
    assert!(
        all_text.contains(&format!("{HOSTILE} working set")),
        "{all_text}"
    );
}

#[test]
fn legend_dashes_follow_their_pattern() {
    assert_eq!(
        dashes(10, 5, 26, &[8, 3, 2, 3]),
        [
            vec![(10, 5), (18, 5)],
            vec![(21, 5), (23, 5)],
            vec![(26, 5), (34, 5)]
        ]
    );
    assert_eq!(dashes(0, 0, 26, &[11, 4]).len(), 2);
    assert!(dashes(0, 0, 26, &[0, 3]).is_empty());
}

#[test]
fn a_process_line_breaks_where_the_process_was_not_there() {
    // The service's samples from 2 s to 3 s (exclusive) are taken out: a restarted
    // container's process between two lives. Its line is two stretches, not one across.
    let mut run = fake_run("demo", "6.1", "free");
    for sample in &mut run.samples {
        if (2_000..3_000).contains(&sample.t_ms) {
            sample.process.remove("service");
        }
    }
    let series = run_series(&run, &Focus::of([&run]));
    let rss = series
        .process
        .iter()
        .find(|line| line.label == "service rss")
        .unwrap();
    assert_eq!(rss.breaks.len(), 1, "{:?}", rss.breaks);
    let stretches: Vec<&[(f64, f64)]> = rss.stretches().collect();
    assert_eq!(stretches.len(), 2);
    assert!(stretches[0].last().unwrap().0 < 2.0 && stretches[1][0].0 >= 3.0);
    let (process, _, _) = charts(&run);
    let polylines = |svg: &str, colour: RGBColor| {
        svg.matches(&format!(
            "stroke=\"{}\" stroke-width=\"2\"",
            hex_colour(colour)
        ))
        .count()
    };
    let balloon = series
        .process
        .iter()
        .find(|line| line.label == "balloon rss")
        .unwrap();
    assert!(balloon.breaks.is_empty(), "the balloon was always there");
    assert!(polylines(&process, rss.colour) >= 2, "{process}");
}
