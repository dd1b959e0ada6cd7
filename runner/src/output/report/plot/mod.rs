//! The report's figures: one function per figure, each returning a standalone SVG document.
//!
//! - [`process_chart`]: each process's RSS split into anon, file and shmem, and its lazyfree;
//! - [`system_chart`]: the cgroup (usage, working set, page cache) and the guest
//!   (MemAvailable, Cached, the kubelet's `memory.available`) against `memory.max` and
//!   `memory.high`;
//! - [`pod_chart`]: per pod, each container's working set, RSS and page cache against the
//!   limit and `memory.high` the kernel read back, and the pod's own limit ([`pod_series`]);
//! - [`pressure_chart`]: the time tasks stalled on memory (PSI), per second, in the guest and
//!   the cgroup; [`reclaim_chart`]: pages scanned, reclaimed and refaulted, major faults and
//!   the cgroup's `memory.events`, per second (both from [`account_series`]);
//! - [`kernel_row`]: small multiples, one panel per kernel on the same axes, of the series that
//!   tell a scenario's story ([`Focus`]).
//!
//! What each figure draws is read from the samples once per run ([`RunSeries`]), so a
//! scenario's axes can be fitted to all its runs before anything is drawn.
//!
//! Plotters draws the frame: background, legend, mesh, axes, titles and event lines. The series
//! and the event labels are then written as plain SVG on top (an "overlay"): plotters draws a
//! dashed line as one element per dash, which made a page of many runs several times larger;
//! here a dashed line is one `<polyline>` with `stroke-dasharray`, decimated to the plot's
//! pixel width ([`decimate`]). Plotters escapes every text it writes, and the overlay's labels
//! go through [`escape_xml`], so labels taken from scenarios and guests (process names, phases,
//! OOM-killed task names) cannot inject markup. Text sizes are plotters' built-in estimate (no
//! font files): the browser renders the real font.

mod account;
mod kernels;
mod pods;
mod run_charts;
mod series;

use std::fmt::Write as _;

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use rsslab_wire::{EventKind, ProcessOutcome};

pub use self::account::account_series;
pub use self::kernels::{KernelPanel, kernel_row};
pub use self::pods::{PodSeries, pod_series};
pub use self::run_charts::{pod_chart, pressure_chart, process_chart, reclaim_chart, system_chart};
pub use self::series::{Focus, RunSeries, decimate, process_names, run_series};
use crate::records::LoadedRun;

/// Width of a run chart, in SVG pixels (CSS scales it to its column).
pub const CHART_WIDTH: u32 = 640;
/// Height of a run chart's plot and axes, without the legend.
const CHART_HEIGHT: u32 = 280;
/// Width of one panel of a kernel row.
const PANEL_WIDTH: u32 = 300;
/// Height of one panel of a kernel row, with its title and axes.
const PANEL_HEIGHT: u32 = 210;
const FONT: &str = "sans-serif";
/// Longest marker label: about the height of the plot at 11px.
const MARKER_LABEL_CHARS: usize = 40;

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
const AVAILABLE_COLOUR: RGBColor = RGBColor(110, 110, 110);
const CACHED_COLOUR: RGBColor = RGBColor(150, 150, 150);
const KUBELET_COLOUR: RGBColor = RGBColor(46, 125, 50);
const USAGE_COLOUR: RGBColor = RGBColor(148, 103, 189);
const WORKING_SET_COLOUR: RGBColor = RGBColor(100, 60, 40);
const FILE_COLOUR: RGBColor = RGBColor(0, 128, 128);
const LIMIT_COLOUR: RGBColor = RGBColor(214, 39, 40);
const HIGH_COLOUR: RGBColor = RGBColor(230, 120, 0);
const COMMITTED_COLOUR: RGBColor = RGBColor(140, 30, 110);
const COMMIT_LIMIT_COLOUR: RGBColor = RGBColor(30, 30, 30);
const STARTED_COLOUR: RGBColor = RGBColor(60, 150, 60);
const PHASE_COLOUR: RGBColor = RGBColor(40, 90, 180);
const ENDED_COLOUR: RGBColor = RGBColor(110, 110, 110);
const OOM_COLOUR: RGBColor = RGBColor(214, 39, 40);

/// The axes' ranges, shared by the charts of a scenario so its kernels compare at a glance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Axes {
    /// End of the time axis, in seconds.
    pub t_max_s: f64,
    /// Top of the y axis: MiB on the memory charts, the chart's own unit on the others.
    pub y_max: f64,
}

impl Axes {
    /// Ranges that fit every point of `series` and the time `t_max_s`, with some headroom.
    pub fn fitting<'a>(series: impl IntoIterator<Item = &'a Series>, t_max_s: f64) -> Axes {
        let mut y_max: f64 = 1.0;
        let mut t_max = t_max_s.max(1.0);
        for line in series {
            for &(t, y) in &line.points {
                t_max = t_max.max(t);
                y_max = y_max.max(y);
            }
        }
        Axes {
            t_max_s: t_max * 1.01,
            y_max: y_max * 1.08,
        }
    }
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stroke {
    Solid,
    Dashed,
    Dotted,
    DashDot,
    /// Long dashes: a line that may lie on a dashed one (a pod's limit on its container's),
    /// whose dashes then show in its gaps.
    LongDash,
}

impl Stroke {
    /// The SVG `stroke-dasharray`, if any.
    fn dasharray(self) -> Option<&'static str> {
        match self {
            Stroke::Solid => None,
            Stroke::Dashed => Some("7 4"),
            Stroke::Dotted => Some("2 3"),
            Stroke::DashDot => Some("8 3 2 3"),
            Stroke::LongDash => Some("16 7"),
        }
    }
}

/// One line of a chart: label, style and points (seconds, and MiB or the chart's own unit).
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub colour: RGBColor,
    pub stroke: Stroke,
    pub width: u32,
    pub points: Vec<(f64, f64)>,
    /// Indices of `points` that start a new stretch of the line: what it measures was not
    /// there in between (a process between its lives in a restarted container).
    pub breaks: Vec<usize>,
}

impl Series {
    /// The stretches of the line, each drawn on its own.
    pub fn stretches(&self) -> impl Iterator<Item = &[(f64, f64)]> {
        let mut starts = vec![0];
        starts.extend(
            self.breaks
                .iter()
                .copied()
                .filter(|&i| i > 0 && i < self.points.len()),
        );
        starts.push(self.points.len());
        starts.dedup();
        (0..starts.len() - 1).map(move |i| &self.points[starts[i]..starts[i + 1]])
    }
}

/// One vertical marker of a chart: events at (nearly) the same time share a marker.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    pub t_s: f64,
    pub label: String,
    pub colour: RGBColor,
}

/// Markers for a run's process starts and ends, phases and OOM kills. Events closer than
/// `min_gap_s` to the previous marker join it, so labels do not overprint; a repeated label
/// is counted (`service:round ×4`).
pub fn event_markers(run: &LoadedRun, min_gap_s: f64) -> Vec<Marker> {
    let mut markers: Vec<(Marker, Vec<(String, usize)>)> = Vec::new();
    for event in sorted_events(run) {
        let (label, colour) = match &event.kind {
            EventKind::Started { .. } => (event.label(), STARTED_COLOUR),
            EventKind::Phase { .. } => (event.label(), PHASE_COLOUR),
            EventKind::Ended {
                outcome: ProcessOutcome::RunningAtEnd,
            } => (event.label(), ENDED_COLOUR),
            EventKind::Ended { outcome } => (format!("{} {outcome}", event.label()), ENDED_COLOUR),
            EventKind::OomKill { task, .. } => (format!("oom-kill {task}"), OOM_COLOUR),
            EventKind::ContainerTerminated { reason, .. } => (
                format!(
                    "{} {reason}",
                    event.label().split(':').next().unwrap_or_default()
                ),
                if reason == "OOMKilled" {
                    OOM_COLOUR
                } else {
                    ENDED_COLOUR
                },
            ),
            EventKind::ContainerBackOff { delay_ms, .. } => (
                format!("{} {:.0}s", event.label(), *delay_ms as f64 / 1000.0),
                ENDED_COLOUR,
            ),
            EventKind::ContainerRestarted { .. } => (event.label(), STARTED_COLOUR),
            EventKind::Setup { .. } | EventKind::Log { .. } | EventKind::Kubelet { .. } => continue,
        };
        let t_s = seconds(event.t_ms);
        match markers.last_mut() {
            Some((last, parts)) if t_s - last.t_s < min_gap_s => {
                match parts.last_mut() {
                    Some((previous, count)) if *previous == label => *count += 1,
                    _ => parts.push((label, 1)),
                }
                if colour == OOM_COLOUR {
                    last.colour = colour;
                }
            }
            _ => markers.push((
                Marker {
                    t_s,
                    label: String::new(),
                    colour,
                },
                vec![(label, 1)],
            )),
        }
    }
    markers
        .into_iter()
        .map(|(mut marker, parts)| {
            let parts: Vec<String> = parts
                .into_iter()
                .map(|(label, count)| match count {
                    1 => label,
                    _ => format!("{label} ×{count}"),
                })
                .collect();
            marker.label = truncate(&parts.join(", "), MARKER_LABEL_CHARS);
            marker
        })
        .collect()
}

/// The run's events by time (they are recorded in order; this makes sure).
pub fn sorted_events(run: &LoadedRun) -> Vec<&rsslab_wire::Event> {
    let mut events: Vec<&rsslab_wire::Event> = run.record.events.iter().collect();
    events.sort_by_key(|event| event.t_ms);
    events
}

/// Sizes of a chart's frame: the full run charts or the small panels of a kernel row.
struct FrameStyle {
    label_font: u32,
    desc_font: u32,
    x_labels: usize,
    y_labels: usize,
    x_label_area: u32,
    y_label_area: u32,
    margin_right: u32,
}

// Plotters writes font sizes in points: 15 is 12px.
const FULL_FRAME: FrameStyle = FrameStyle {
    label_font: 15,
    desc_font: 15,
    x_labels: 12,
    y_labels: 8,
    x_label_area: 34,
    y_label_area: 54,
    margin_right: 20,
};

const SMALL_FRAME: FrameStyle = FrameStyle {
    label_font: 13,
    desc_font: 13,
    x_labels: 6,
    y_labels: 5,
    x_label_area: 34,
    y_label_area: 44,
    margin_right: 10,
};

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Draws the mesh and axes of `axes` on `area` (the y axis described as `y_desc`), and a
/// vertical line per marker.
fn frame<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, Shift>,
    axes: &Axes,
    markers: &[Marker],
    style: &FrameStyle,
    y_desc: &str,
) -> Result<Chart<'a, 'b>> {
    let mut chart = ChartBuilder::on(area)
        .margin_left(6)
        .margin_right(style.margin_right)
        .margin_top(6)
        .margin_bottom(4)
        .x_label_area_size(style.x_label_area)
        .y_label_area_size(style.y_label_area)
        .build_cartesian_2d(0f64..axes.t_max_s, 0f64..axes.y_max)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(225, 225, 225))
        .axis_desc_style((FONT, style.desc_font))
        .label_style((FONT, style.label_font))
        .x_desc("time (s)")
        .y_desc(y_desc)
        .x_labels(style.x_labels)
        .y_labels(style.y_labels)
        .x_label_formatter(&|t| format_tick(*t))
        .y_label_formatter(&|y| format_tick(*y))
        .draw()
        .map_err(plot_error)?;
    for marker in markers {
        let style = ShapeStyle::from(marker.colour.mix(0.55)).stroke_width(1);
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(marker.t_s, 0.0), (marker.t_s, axes.y_max)],
                style,
            )))
            .map_err(plot_error)?;
    }
    Ok(chart)
}

/// The overlay of `chart`: each series as one `<polyline>` (decimated to the plot's width) and,
/// when `labels`, each marker's label beside its line.
fn overlay(
    chart: &Chart<'_, '_>,
    axes: &Axes,
    series: &[Series],
    markers: &[Marker],
    labels: bool,
) -> String {
    let columns = chart.plotting_area().dim_in_pixel().0 as usize;
    let mut svg = String::new();
    for line in series {
        for stretch in line.stretches().filter(|stretch| !stretch.is_empty()) {
            let _ = write!(
                svg,
                "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"{}\"",
                hex_colour(line.colour),
                line.width
            );
            if let Some(dash) = line.stroke.dasharray() {
                let _ = write!(svg, " stroke-dasharray=\"{dash}\"");
            }
            svg.push_str(" stroke-linejoin=\"round\" points=\"");
            for (index, point) in decimate(stretch, axes.t_max_s, columns).iter().enumerate() {
                let (x, y) = chart.backend_coord(point);
                if index > 0 {
                    svg.push(' ');
                }
                let _ = write!(svg, "{x},{y}");
            }
            svg.push_str("\"/>\n");
        }
    }
    if labels {
        // Labels last, so lines do not cross them out; rotated to run down beside their marker.
        for marker in markers {
            let (x, y) = chart.backend_coord(&(marker.t_s, axes.y_max));
            let (x, y) = (x + 4, y + 4);
            let _ = writeln!(
                svg,
                "<text x=\"{x}\" y=\"{y}\" transform=\"rotate(90 {x} {y})\" font-family=\"{FONT}\" \
                 font-size=\"11\" fill=\"{}\">{}</text>",
                hex_colour(marker.colour),
                escape_xml(&marker.label),
            );
        }
    }
    svg
}

/// Where each legend item goes: row and x offset.
struct LegendItem {
    row: u32,
    x: i32,
}

/// Height of one legend row.
const LEGEND_ROW: u32 = 18;
/// Font size of legends, in points (12px).
const LEGEND_FONT: u32 = 15;

fn legend_layout(series: &[Series], width: u32) -> Vec<LegendItem> {
    let mut items = Vec::new();
    let (start, mut row) = (50, 0);
    let mut x = start;
    for line in series {
        let item_width = 32 + 7 * line.label.chars().count().min(48) as i32 + 16;
        if x + item_width > width as i32 - 8 && x > start {
            row += 1;
            x = start;
        }
        items.push(LegendItem { row, x });
        x += item_width;
    }
    items
}

/// Height of the legend of `series` on a figure `width` wide.
fn legend_height(series: &[Series], width: u32) -> u32 {
    let rows = legend_layout(series, width)
        .last()
        .map_or(1, |item| item.row + 1);
    rows * LEGEND_ROW + 8
}

fn draw_legend(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    series: &[Series],
    width: u32,
) -> Result<()> {
    for (line, item) in series.iter().zip(legend_layout(series, width)) {
        let y = (item.row * LEGEND_ROW) as i32 + 13;
        let style = ShapeStyle::from(line.colour).stroke_width(line.width.max(2));
        let sample = vec![(item.x, y), (item.x + 26, y)];
        match line.stroke {
            Stroke::Solid => area.draw(&PathElement::new(sample, style)),
            Stroke::Dashed => area.draw(&DashedPathElement::new(sample, 6, 3, style)),
            Stroke::Dotted => area.draw(&DashedPathElement::new(sample, 2, 3, style)),
            // Patterns of two lengths, so a line's dash-dot tells from its dashes.
            Stroke::DashDot | Stroke::LongDash => {
                let pattern: &[i32] = match line.stroke {
                    Stroke::DashDot => &[8, 3, 2, 3],
                    _ => &[11, 4],
                };
                dashes(item.x, y, 26, pattern)
                    .into_iter()
                    .try_for_each(|dash| area.draw(&PathElement::new(dash, style)))
            }
        }
        .map_err(plot_error)?;
        let text = TextStyle::from((FONT, LEGEND_FONT)).pos(Pos::new(HPos::Left, VPos::Center));
        let label: String = line.label.chars().filter(|c| !c.is_control()).collect();
        area.draw(&Text::new(truncate(&label, 48), (item.x + 32, y), text))
            .map_err(plot_error)?;
    }
    Ok(())
}

/// The dashes of a line from `x` over `length` pixels at `y`, drawn `pattern[0]` pixels, left
/// out `pattern[1]`, drawn `pattern[2]`, ... and again.
fn dashes(x: i32, y: i32, length: i32, pattern: &[i32]) -> Vec<Vec<(i32, i32)>> {
    let mut dashes = Vec::new();
    let mut at = 0;
    for (index, &step) in pattern.iter().cycle().enumerate() {
        if at >= length || step <= 0 {
            break;
        }
        let end = (at + step).min(length);
        if index % 2 == 0 {
            dashes.push(vec![(x + at, y), (x + end, y)]);
        }
        at = end;
    }
    dashes
}

/// The SVG plotters wrote, with the overlay added last and without the namespace (inline SVG
/// in HTML needs none; leaving it out keeps the page free of URLs).
fn finish(mut svg: String, overlay: &str) -> Result<String> {
    let end = svg
        .rfind("</svg>")
        .ok_or_else(|| anyhow!("plotters wrote no </svg>"))?;
    svg.insert_str(end, overlay);
    Ok(svg.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1))
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
mod tests;
