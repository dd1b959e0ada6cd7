//! The report's figures: one function per figure, each returning a standalone SVG document.
//!
//! Figures are drawn with plotters' SVG backend, which escapes every text it writes (`<`, `>`,
//! `&`, quotes), so labels taken from scenarios and guests (process names, phases, OOM-killed
//! task names) cannot inject markup. Text sizes are plotters' built-in estimate (no font
//! files): the browser renders the real font.

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use rsslab_wire::{EventKind, ProcessOutcome};

use crate::record::LoadedRun;

/// Width of a run chart, in SVG pixels (CSS scales it down to the page).
pub const CHART_WIDTH: u32 = 960;
/// Height of a run chart's plot and axes, without the legend.
const CHART_HEIGHT: u32 = 340;
/// Height of one legend row.
const LEGEND_ROW: u32 = 20;
const FONT: &str = "sans-serif";
/// Longest marker label: about the height of the plot at 11px.
const MARKER_LABEL_CHARS: usize = 44;

/// Colours of processes, in the order the scenario lists them.
const PROCESS_COLOURS: [RGBColor; 7] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
    RGBColor(188, 189, 34),
    RGBColor(140, 86, 75),
];
const AVAILABLE_COLOUR: RGBColor = RGBColor(120, 120, 120);
const USAGE_COLOUR: RGBColor = RGBColor(148, 103, 189);
const WORKING_SET_COLOUR: RGBColor = RGBColor(100, 60, 40);
const LIMIT_COLOUR: RGBColor = RGBColor(214, 39, 40);
const STARTED_COLOUR: RGBColor = RGBColor(60, 150, 60);
const PHASE_COLOUR: RGBColor = RGBColor(40, 90, 180);
const ENDED_COLOUR: RGBColor = RGBColor(110, 110, 110);
const OOM_COLOUR: RGBColor = RGBColor(214, 39, 40);

/// The axes' ranges, shared by every chart of a scenario so its kernels compare at a glance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Axes {
    /// End of the time axis, in seconds.
    pub t_max_s: f64,
    /// Top of the memory axis, in MiB.
    pub y_max_mib: f64,
}

impl Axes {
    /// Ranges that fit every series and event of `runs`, with some headroom.
    pub fn fitting<'a>(runs: impl IntoIterator<Item = &'a LoadedRun>) -> Axes {
        let mut t_max_s: f64 = 1.0;
        let mut y_max_mib: f64 = 1.0;
        for run in runs {
            for series in run_series(run) {
                for &(t, y) in &series.points {
                    t_max_s = t_max_s.max(t);
                    y_max_mib = y_max_mib.max(y);
                }
            }
            for event in &run.record.events {
                t_max_s = t_max_s.max(seconds(event.t_ms));
            }
        }
        Axes {
            t_max_s: t_max_s * 1.01,
            y_max_mib: y_max_mib * 1.08,
        }
    }
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stroke {
    Solid,
    Dashed,
}

/// One line of a run chart: label, style and points (seconds, MiB).
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub colour: RGBColor,
    pub stroke: Stroke,
    pub width: u32,
    pub points: Vec<(f64, f64)>,
}

/// The process names of a run: the spec's order first, then any other sampled name.
pub fn process_names(run: &LoadedRun) -> Vec<String> {
    let mut names: Vec<String> = run
        .record
        .spec
        .processes
        .iter()
        .map(|process| process.name.clone())
        .collect();
    let mut others: Vec<String> = run
        .samples
        .iter()
        .flat_map(|sample| sample.process.keys())
        .chain(run.record.processes.keys())
        .filter(|name| !names.contains(name))
        .cloned()
        .collect();
    others.sort();
    others.dedup();
    names.extend(others);
    names
}

/// The series a run chart shows: each process's RSS (solid) and lazyfree (dashed, when any),
/// guest MemAvailable, and the cgroup's usage, working set and limit when there is a cgroup.
pub fn run_series(run: &LoadedRun) -> Vec<Series> {
    let mut all = Vec::new();
    for (index, name) in process_names(run).iter().enumerate() {
        let colour = PROCESS_COLOURS[index % PROCESS_COLOURS.len()];
        let metric = |metric: &str| -> Vec<(f64, f64)> {
            run.samples
                .iter()
                .filter_map(|sample| {
                    let value = sample.process.get(name)?.get(metric)?;
                    Some((seconds(sample.t_ms), mib(*value)))
                })
                .collect()
        };
        all.push(Series {
            label: format!("{name} rss"),
            colour,
            stroke: Stroke::Solid,
            width: 2,
            points: metric("rss"),
        });
        let lazyfree = metric("lazyfree");
        if lazyfree.iter().any(|&(_, y)| y > 0.0) {
            all.push(Series {
                label: format!("{name} lazyfree"),
                colour,
                stroke: Stroke::Dashed,
                width: 2,
                points: lazyfree,
            });
        }
    }
    let level = |pick: &dyn Fn(&rsslab_wire::Sample) -> Option<u64>| -> Vec<(f64, f64)> {
        run.samples
            .iter()
            .filter_map(|sample| Some((seconds(sample.t_ms), mib(pick(sample)?))))
            .collect()
    };
    let mut push = |label: &str, colour, stroke, width, points: Vec<(f64, f64)>| {
        if !points.is_empty() {
            all.push(Series {
                label: label.to_owned(),
                colour,
                stroke,
                width,
                points,
            });
        }
    };
    push(
        "guest MemAvailable",
        AVAILABLE_COLOUR,
        Stroke::Solid,
        1,
        level(&|sample| sample.guest.get("mem_available").copied()),
    );
    push(
        "cgroup usage",
        USAGE_COLOUR,
        Stroke::Solid,
        1,
        level(&|sample| sample.cgroup.get("usage").copied()),
    );
    push(
        "cgroup working set",
        WORKING_SET_COLOUR,
        Stroke::Dashed,
        1,
        level(&|sample| sample.cgroup.get("working_set").copied()),
    );
    // A limit of "max" is reported as a huge number: only a limit below the guest's memory
    // means anything on this axis.
    let mem_total = run
        .samples
        .iter()
        .filter_map(|s| s.guest.get("mem_total"))
        .max()
        .copied();
    push(
        "cgroup limit",
        LIMIT_COLOUR,
        Stroke::Dashed,
        1,
        level(&|sample| {
            let limit = *sample.cgroup.get("limit")?;
            (limit <= mem_total.unwrap_or(1 << 40)).then_some(limit)
        }),
    );
    all
}

/// One vertical marker of a run chart: events at (nearly) the same time share a marker.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    pub t_s: f64,
    pub label: String,
    pub colour: RGBColor,
}

/// Markers for a run's process starts and ends, phases and OOM kills. Events closer than
/// `min_gap_s` to the previous marker join it, so labels do not overprint.
pub fn event_markers(run: &LoadedRun, min_gap_s: f64) -> Vec<Marker> {
    let mut markers: Vec<Marker> = Vec::new();
    for event in sorted_events(run) {
        let (label, colour) = match &event.kind {
            EventKind::Started { .. } => (event.label(), STARTED_COLOUR),
            EventKind::Phase { .. } => (event.label(), PHASE_COLOUR),
            EventKind::Ended {
                outcome: ProcessOutcome::RunningAtEnd,
            } => (event.label(), ENDED_COLOUR),
            EventKind::Ended { outcome } => (format!("{} {outcome}", event.label()), ENDED_COLOUR),
            EventKind::OomKill { task, .. } => (format!("oom-kill {task}"), OOM_COLOUR),
            EventKind::Setup { .. } | EventKind::Log { .. } => continue,
        };
        let t_s = seconds(event.t_ms);
        match markers.last_mut() {
            Some(last) if t_s - last.t_s < min_gap_s => {
                last.label.push_str(", ");
                last.label.push_str(&label);
                if colour == OOM_COLOUR {
                    last.colour = colour;
                }
            }
            _ => markers.push(Marker { t_s, label, colour }),
        }
    }
    for marker in &mut markers {
        marker.label = truncate(&marker.label, MARKER_LABEL_CHARS);
    }
    markers
}

/// The run's events by time (they are recorded in order; this makes sure).
pub fn sorted_events(run: &LoadedRun) -> Vec<&rsslab_wire::Event> {
    let mut events: Vec<&rsslab_wire::Event> = run.record.events.iter().collect();
    events.sort_by_key(|event| event.t_ms);
    events
}

/// The chart of one run: memory (MiB) over time (s), with event markers, on `axes`.
///
/// Plotters draws the frame: background, legend, mesh, axes and marker lines. The series
/// and the marker labels are then written as plain SVG on top (an "overlay"), because
/// plotters draws a dashed line as one element per dash, which made a page of many runs
/// several times larger; here a dashed line is one `<polyline>` with `stroke-dasharray`.
pub fn run_chart(run: &LoadedRun, axes: &Axes) -> Result<String> {
    let series = run_series(run);
    let markers = event_markers(run, axes.t_max_s / 90.0);
    let legend_rows = legend_layout(&series).last().map_or(1, |item| item.row + 1);
    let legend_height = legend_rows * LEGEND_ROW + 8;
    let mut svg = String::new();
    let overlay;
    {
        let root = SVGBackend::with_string(&mut svg, (CHART_WIDTH, CHART_HEIGHT + legend_height))
            .into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let (legend, plot) = root.split_vertically(legend_height);
        draw_legend(&legend, &series)?;
        overlay = draw_plot(&plot, &series, &markers, axes)?;
        root.present().map_err(plot_error)?;
    }
    let end = svg
        .rfind("</svg>")
        .ok_or_else(|| anyhow!("plotters wrote no </svg>"))?;
    svg.insert_str(end, &overlay);
    Ok(svg)
}

/// Draws the frame and marker lines on `area`; returns the overlay (series and labels) as SVG.
fn draw_plot(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    series: &[Series],
    markers: &[Marker],
    axes: &Axes,
) -> Result<String> {
    let mut chart = ChartBuilder::on(area)
        .margin_left(8)
        .margin_right(24)
        .margin_top(6)
        .margin_bottom(6)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..axes.t_max_s, 0f64..axes.y_max_mib)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(225, 225, 225))
        .axis_desc_style((FONT, 15))
        .label_style((FONT, 14))
        .x_desc("time (s)")
        .y_desc("MiB")
        .x_labels(16)
        .y_labels(10)
        .x_label_formatter(&|t| format_tick(*t))
        .y_label_formatter(&|y| format_tick(*y))
        .draw()
        .map_err(plot_error)?;

    for marker in markers {
        let style = ShapeStyle::from(marker.colour.mix(0.55)).stroke_width(1);
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(marker.t_s, 0.0), (marker.t_s, axes.y_max_mib)],
                style,
            )))
            .map_err(plot_error)?;
    }

    let mut overlay = String::new();
    for line in series {
        if line.points.is_empty() {
            continue;
        }
        let points: Vec<String> = line
            .points
            .iter()
            .map(|&point| {
                let (x, y) = chart.backend_coord(&point);
                format!("{x},{y}")
            })
            .collect();
        let dash = match line.stroke {
            Stroke::Solid => "",
            Stroke::Dashed => " stroke-dasharray=\"7 4\"",
        };
        overlay.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"{}\"{dash} stroke-linejoin=\"round\" points=\"{}\"/>\n",
            hex_colour(line.colour),
            line.width,
            points.join(" "),
        ));
    }
    // Labels last, so lines do not cross them out; rotated to run down beside their marker.
    for marker in markers {
        let (x, y) = chart.backend_coord(&(marker.t_s, axes.y_max_mib));
        let (x, y) = (x + 4, y + 4);
        overlay.push_str(&format!(
            "<text x=\"{x}\" y=\"{y}\" transform=\"rotate(90 {x} {y})\" font-family=\"{FONT}\" \
             font-size=\"11\" fill=\"{}\">{}</text>\n",
            hex_colour(marker.colour),
            escape_xml(&marker.label),
        ));
    }
    Ok(overlay)
}

fn hex_colour(colour: RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", colour.0, colour.1, colour.2)
}

/// Text for SVG: markup characters escaped, control characters (which XML forbids) dropped.
pub fn escape_xml(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '&' => escaped.push_str("&amp;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            c if c.is_control() => {}
            c => escaped.push(c),
        }
    }
    escaped
}

/// Where each legend item goes: row and x offset.
struct LegendItem {
    row: u32,
    x: i32,
}

fn legend_layout(series: &[Series]) -> Vec<LegendItem> {
    let mut items = Vec::new();
    let (mut row, mut x) = (0, 60);
    for line in series {
        let width = 34 + 7 * line.label.chars().count() as i32 + 18;
        if x + width > CHART_WIDTH as i32 - 10 && x > 60 {
            row += 1;
            x = 60;
        }
        items.push(LegendItem { row, x });
        x += width;
    }
    items
}

fn draw_legend(area: &DrawingArea<SVGBackend<'_>, Shift>, series: &[Series]) -> Result<()> {
    for (line, item) in series.iter().zip(legend_layout(series)) {
        let y = (item.row * LEGEND_ROW) as i32 + 14;
        let style = ShapeStyle::from(line.colour).stroke_width(line.width.max(2));
        let sample = vec![(item.x, y), (item.x + 28, y)];
        match line.stroke {
            Stroke::Solid => area.draw(&PathElement::new(sample, style)),
            Stroke::Dashed => area.draw(&DashedPathElement::new(sample, 6, 3, style)),
        }
        .map_err(plot_error)?;
        let text = TextStyle::from((FONT, 15)).pos(Pos::new(HPos::Left, VPos::Center));
        let label: String = line.label.chars().filter(|c| !c.is_control()).collect();
        area.draw(&Text::new(truncate(&label, 48), (item.x + 34, y), text))
            .map_err(plot_error)?;
    }
    Ok(())
}

/// At most one decimal, none when it is 0: `2`, `2.5`, `10`.
fn format_tick(value: f64) -> String {
    let text = format!("{value:.1}");
    text.strip_suffix(".0").map(str::to_owned).unwrap_or(text)
}

fn plot_error<E: std::fmt::Debug>(error: E) -> anyhow::Error {
    anyhow!("drawing a chart: {error:?}")
}

/// Milliseconds to seconds.
pub fn seconds(t_ms: u64) -> f64 {
    t_ms as f64 / 1000.0
}

/// Bytes to MiB.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

/// At most `max` characters, with an ellipsis when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testing::{fake_run, hostile_run};

    #[test]
    fn run_chart_is_well_formed_xml_with_labels() {
        let run = fake_run("demo", "6.1", "free");
        let svg = run_chart(&run, &Axes::fitting([&run])).unwrap();
        let document = roxmltree::Document::parse(&svg).expect("the chart is well-formed XML");
        assert_eq!(document.root_element().tag_name().name(), "svg");
        let texts: Vec<&str> = document
            .descendants()
            .filter(|node| node.has_tag_name("text"))
            .filter_map(|node| node.text())
            .map(str::trim)
            .collect();
        for expected in [
            "service rss",
            "service lazyfree",
            "guest MemAvailable",
            "time (s)",
            "MiB",
        ] {
            assert!(
                texts.contains(&expected),
                "no text {expected:?} in {texts:?}"
            );
        }
        assert!(
            texts.iter().any(|text| text.contains("service:released")),
            "{texts:?}"
        );
    }

    #[test]
    fn hostile_labels_are_escaped_in_svg() {
        let run = hostile_run();
        let svg = run_chart(&run, &Axes::fitting([&run])).unwrap();
        assert!(!svg.contains("<script"), "{svg}");
        let document = roxmltree::Document::parse(&svg).expect("well-formed despite hostile names");
        let all_text: String = document
            .descendants()
            .filter_map(|node| node.text())
            .collect();
        assert!(
            all_text.contains("<script>alert(1)</script> & \"x\""),
            "{all_text}"
        );
    }

    #[test]
    fn control_characters_are_dropped_from_svg_text() {
        let mut run = crate::report::testing::fake_run_named(
            "demo",
            "6.1",
            "free",
            "svc\u{1}\u{8}",
            "b\u{1b}",
        );
        run.record.events.push(rsslab_wire::Event {
            t_ms: 5000,
            process: Some("svc\u{1}\u{8}".into()),
            kind: EventKind::Phase {
                phase: "ph\u{0}ase".into(),
            },
        });
        let svg = run_chart(&run, &Axes::fitting([&run])).unwrap();
        roxmltree::Document::parse(&svg).expect("no control character in the SVG");
        assert!(svg.contains("svc:phase"), "{svg}");
    }

    #[test]
    fn dashed_series_are_one_element() {
        let run = fake_run("demo", "6.1", "free");
        let svg = run_chart(&run, &Axes::fitting([&run])).unwrap();
        assert_eq!(
            svg.matches("stroke-dasharray").count(),
            3,
            "lazyfree, working set, limit"
        );
        assert!(svg.len() < 30_000, "{} bytes", svg.len());
    }

    #[test]
    fn markers_merge_when_close() {
        let run = fake_run("demo", "6.1", "free");
        let markers = event_markers(&run, 100.0);
        assert_eq!(markers.len(), 1);
        assert!(markers[0].label.contains(", "));
    }

    #[test]
    fn empty_run_still_draws() {
        let mut run = fake_run("demo", "6.1", "free");
        run.samples.clear();
        run.record.events.clear();
        let svg = run_chart(&run, &Axes::fitting([&run])).unwrap();
        roxmltree::Document::parse(&svg).unwrap();
    }
}
