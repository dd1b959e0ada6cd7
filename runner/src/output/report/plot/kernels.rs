//! Small multiples: one row of panels per scenario and variant, one panel per kernel, all on
//! the same axes, so a kernel that changed the memory behaviour stands out at a glance.

use super::*;

/// One panel of a [`kernel_row`]: a kernel's run (or its absence).
#[derive(Debug, Clone)]
pub struct KernelPanel<'a> {
    /// The kernel's catalogue id, the panel's title.
    pub kernel: &'a str,
    /// How the run ended (`ok`, `unsupported`, ...), or `no run`.
    pub outcome: &'a str,
    /// The run's [`RunSeries::focus`]; empty when it has no samples.
    pub series: &'a [Series],
    /// The run's events, drawn as unlabelled lines.
    pub markers: Vec<Marker>,
}

/// The panels side by side under one legend, each with the run's events as thin lines and its
/// outcome in the title (red when not `ok`).
pub fn kernel_row(panels: &[KernelPanel<'_>], axes: &Axes) -> Result<String> {
    const TITLE_HEIGHT: u32 = 18;
    let columns = panels.len().max(1);
    let width = PANEL_WIDTH * columns as u32;
    // The legend names each series once, in the order the panels first draw them.
    let mut legend: Vec<Series> = Vec::new();
    for line in panels.iter().flat_map(|panel| panel.series) {
        if !legend.iter().any(|known| known.label == line.label) {
            legend.push(Series {
                points: Vec::new(),
                breaks: Vec::new(),
                ..line.clone()
            });
        }
    }
    let legend_height = legend_height(&legend, width);
    let mut svg = String::new();
    let mut overlay = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, legend_height + PANEL_HEIGHT))
            .into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let (legend_area, row) = root.split_vertically(legend_height);
        draw_legend(&legend_area, &legend, width)?;
        for (area, panel) in row.split_evenly((1, columns)).iter().zip(panels) {
            let (title, plot) = area.split_vertically(TITLE_HEIGHT);
            let colour = if panel.outcome == "ok" {
                RGBColor(31, 35, 40)
            } else {
                LIMIT_COLOUR
            };
            let style = TextStyle::from((FONT, 15).into_font().style(FontStyle::Bold))
                .color(&colour)
                .pos(Pos::new(HPos::Left, VPos::Center));
            let text = truncate(&format!("{} · {}", panel.kernel, panel.outcome), 36);
            title
                .draw(&Text::new(text, (44, 10), style))
                .map_err(plot_error)?;
            let mut chart = frame(&plot, axes, &panel.markers, &SMALL_FRAME, "MiB")?;
            if panel.series.iter().all(|line| line.points.is_empty()) {
                let style = TextStyle::from((FONT, 15))
                    .color(&AVAILABLE_COLOUR)
                    .pos(Pos::new(HPos::Center, VPos::Center));
                chart
                    .draw_series(std::iter::once(Text::new(
                        "no samples",
                        (axes.t_max_s / 2.0, axes.y_max / 2.0),
                        style,
                    )))
                    .map_err(plot_error)?;
            }
            overlay.push_str(&super::overlay(
                &chart,
                axes,
                panel.series,
                &panel.markers,
                false,
            ));
        }
        root.present().map_err(plot_error)?;
    }
    finish(svg, &overlay)
}
