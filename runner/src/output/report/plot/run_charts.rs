//! The charts of one run: its processes, its cgroup and guest, its pods, and the kernel's
//! account (pressure, reclaim). All have the same time axis for the scenario and the run's events
//! marked and labelled, so they read side by side.

use super::*;

/// Each process's RSS (solid, thick) split into anon (thin), file (dotted) and shmem
/// (dash-dot), and its lazyfree (dashed), in the process's colour; `series` from
/// [`RunSeries::process`].
pub fn process_chart(series: &[Series], markers: &[Marker], axes: &Axes) -> Result<String> {
    line_chart(
        "Processes: RSS, its parts and lazyfree",
        series,
        markers,
        axes,
        "MiB",
    )
}

/// The cgroup's usage, working set and page cache (`file`, `active_file`) against
/// `memory.max` and `memory.high`, the guest's MemAvailable and Cached and the kubelet's
/// `memory.available` (and Committed_AS against CommitLimit when the scenario sets
/// overcommit); `series` from [`RunSeries::system`].
pub fn system_chart(series: &[Series], markers: &[Marker], axes: &Axes) -> Result<String> {
    let cgroup = series
        .iter()
        .any(|line| line.label.starts_with("cgroup") || line.label.starts_with("memory."));
    let title = if cgroup {
        "cgroup and guest"
    } else {
        "guest (no cgroup)"
    };
    line_chart(title, series, markers, axes, "MiB")
}

/// One pod's containers against their limits, titled `title` (`Pod web (Burstable)`): each
/// container's working set, RSS and page cache, its limit and `memory.high`, and the pod's
/// limit; `series` from [`PodSeries::series`].
pub fn pod_chart(
    title: &str,
    series: &[Series],
    markers: &[Marker],
    axes: &Axes,
) -> Result<String> {
    line_chart(title, series, markers, axes, "MiB")
}

/// Pressure stall information: milliseconds per second in which some task (solid) or every
/// non-idle task (dashed) waited for memory, in the guest and the cgroup; `series` from
/// [`account_series`].
pub fn pressure_chart(series: &[Series], markers: &[Marker], axes: &Axes) -> Result<String> {
    line_chart(
        "Pressure: time stalled on memory",
        series,
        markers,
        axes,
        "ms stalled per s",
    )
}

/// Reclaim and its effects, per second: pages scanned and reclaimed (by kswapd and allocating
/// tasks), refaults, major faults, and the cgroup's `memory.events`; `series` from
/// [`account_series`].
pub fn reclaim_chart(series: &[Series], markers: &[Marker], axes: &Axes) -> Result<String> {
    line_chart(
        "Reclaim: pages and events per second",
        series,
        markers,
        axes,
        "per s",
    )
}

/// A titled chart of `series` with a legend above it and labelled event lines.
fn line_chart(
    title: &str,
    series: &[Series],
    markers: &[Marker],
    axes: &Axes,
    y_desc: &str,
) -> Result<String> {
    const TITLE_HEIGHT: u32 = 22;
    let legend_height = legend_height(series, CHART_WIDTH);
    let mut svg = String::new();
    let overlay;
    {
        let root = SVGBackend::with_string(
            &mut svg,
            (CHART_WIDTH, TITLE_HEIGHT + legend_height + CHART_HEIGHT),
        )
        .into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let (heading, rest) = root.split_vertically(TITLE_HEIGHT);
        let (legend, plot) = rest.split_vertically(legend_height);
        let style = TextStyle::from((FONT, 17).into_font().style(FontStyle::Bold))
            .pos(Pos::new(HPos::Left, VPos::Center));
        heading
            .draw(&Text::new(title, (50, 13), style))
            .map_err(plot_error)?;
        draw_legend(&legend, series, CHART_WIDTH)?;
        let chart = frame(&plot, axes, markers, &FULL_FRAME, y_desc)?;
        overlay = super::overlay(&chart, axes, series, markers, true);
        root.present().map_err(plot_error)?;
    }
    finish(svg, &overlay)
}
