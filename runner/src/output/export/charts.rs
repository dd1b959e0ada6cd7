//! `rsslab export DIR --format svg|png`: every chart of the report as its own file, for a
//! postmortem document or a slide, which take pictures, not HTML.
//!
//! The charts are the report's own (`report::figures`, the same axes fitted to each scenario's
//! runs), each with a caption line naming the run on top, so a pasted picture says what it
//! shows. Files are named `<scenario>_<kernel>[_<variant>]_<chart>` (a run's directory under
//! `runs/` with `/` as `_`), `<chart>` one of `processes`, `cgroup-and-guest`, `pressure`,
//! `reclaim`, and in a run with pods `pod-<pod>` per pod (its name as the scenario gives it);
//! a scenario's kernel rows are `<scenario>[_<variant>]_kernels`. So "the process chart of
//! go-madvfree-balloon on 6.1 with madvdontneed=1" is
//! `go-madvfree-balloon_6.1_madvdontneed=1_processes.png`, and the chart of pod `web` in
//! pod-group-oom-kill on 6.1 with single_process_oom_kill=true is
//! `pod-group-oom-kill_6.1_single_process_oom_kill=true_pod-web.png`.
//!
//! PNG: the SVG rasterized by resvg at twice its size (1280 px wide), text set in the system's
//! sans-serif font (DejaVu Sans, which `scripts/install-host-deps.sh` installs, or Liberation
//! Sans, Noto Sans, Arial); a host without any font is an error that says so, not a picture
//! without its labels. Entry point: [`export_charts`].

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use rayon::prelude::*;

use crate::analysis::results::build_results;
use crate::files::write_atomically;
use crate::output::report::figures::{ScenarioGroups, draw_figures, group_scenarios};
use crate::output::report::plot::escape_xml;
use crate::records::load_all;

/// A picture format of the charts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartFormat {
    Svg,
    Png,
}

impl ChartFormat {
    fn extension(self) -> &'static str {
        match self {
            ChartFormat::Svg => "svg",
            ChartFormat::Png => "png",
        }
    }
}

/// One chart to write: its file stem, caption and SVG.
struct Chart {
    stem: String,
    caption: String,
    svg: String,
}

/// Height of the caption line above each chart, in SVG pixels.
const CAPTION_HEIGHT: u32 = 24;
/// PNG pixels per SVG pixel.
const PNG_SCALE: f32 = 2.0;
/// Sans-serif families tried for PNG text, in order.
const SANS_SERIF: [&str; 4] = ["DejaVu Sans", "Liberation Sans", "Noto Sans", "Arial"];

/// Writes every chart of the lab in `out_dir` into `dest` (created) as `format`; returns the
/// files written, sorted.
pub fn export_charts(out_dir: &Path, format: ChartFormat, dest: &Path) -> Result<Vec<PathBuf>> {
    let runs = load_all(out_dir)?;
    if runs.is_empty() {
        bail!("{}: no runs to draw", out_dir.display());
    }
    let results = build_results(&runs);
    let groups = group_scenarios(&results, &runs);
    let charts = charts_of(&groups)?;
    std::fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    let fonts = match format {
        ChartFormat::Png => Some(font_options()?),
        ChartFormat::Svg => None,
    };
    let mut written: Vec<PathBuf> = charts
        .par_iter()
        .map(|chart| {
            let svg = captioned(&chart.svg, &chart.caption)?;
            let path = dest.join(format!("{}.{}", chart.stem, format.extension()));
            let bytes = match &fonts {
                Some(options) => rasterize(&svg, options)
                    .with_context(|| format!("rasterizing {}", path.display()))?,
                None => svg.into_bytes(),
            };
            write_atomically(&path, &bytes)?;
            Ok(path)
        })
        .collect::<Result<_>>()?;
    written.sort();
    Ok(written)
}

/// The charts of every run and the kernel rows of every scenario, named and captioned.
fn charts_of(groups: &ScenarioGroups<'_>) -> Result<Vec<Chart>> {
    let figures = draw_figures(&groups.runs)?;
    let mut charts = Vec::new();
    for ((id, scenario), figures) in groups.ids.iter().zip(&groups.runs).zip(figures) {
        for ((result, _), run_charts) in scenario.runs.iter().zip(figures.runs) {
            let Some(run_charts) = run_charts else {
                continue;
            };
            let stem = result
                .dir
                .strip_prefix("runs/")
                .unwrap_or(&result.dir)
                .replace('/', "_");
            let mut caption = format!("{} on {}", result.scenario, result.kernel);
            if !result.variant_label.is_empty() {
                caption.push_str(&format!(", {}", result.variant_label));
            }
            if result.repeat > 1 {
                caption.push_str(&format!(", repeat {}", result.repeat));
            }
            let named = [
                ("processes", Some(run_charts.process)),
                ("cgroup-and-guest", Some(run_charts.system)),
                ("pressure", run_charts.pressure),
                ("reclaim", run_charts.reclaim),
            ];
            for (name, svg) in named {
                if let Some(svg) = svg {
                    charts.push(Chart {
                        stem: format!("{stem}_{name}"),
                        caption: caption.clone(),
                        svg,
                    });
                }
            }
            for pod in run_charts.pods {
                charts.push(Chart {
                    stem: format!("{stem}_pod-{}", pod.name.replace('/', "_")),
                    caption: format!("{caption}, pod {}", pod.name),
                    svg: pod.svg,
                });
            }
        }
        for (variant, svg) in scenario.variants.iter().zip(figures.kernel_rows) {
            // The variant as its runs' directories spell it.
            let variant_dir = scenario
                .runs
                .iter()
                .find(|(result, _)| result.variant_label == *variant)
                .and_then(|(result, _)| {
                    let parts: Vec<&str> = result.dir.split('/').skip(3).collect();
                    (!parts.is_empty()).then(|| parts.join("_"))
                });
            let stem = match variant_dir {
                Some(variant_dir) => format!("{id}_{variant_dir}_kernels"),
                None => format!("{id}_kernels"),
            };
            let mut caption = format!("{id} on {}", scenario.kernels.join(", "));
            if !variant.is_empty() {
                caption.push_str(&format!(", {variant}"));
            }
            charts.push(Chart { stem, caption, svg });
        }
    }
    Ok(charts)
}

/// `svg` under a caption line: a new root as wide as the chart and a caption taller, holding
/// the caption and the chart as a nested `<svg>`.
fn captioned(svg: &str, caption: &str) -> Result<String> {
    let (width, height) = root_size(svg)?;
    let body_at = svg
        .find("<svg")
        .ok_or_else(|| anyhow!("a chart without an <svg> root"))?;
    let nested = format!("<svg y=\"{CAPTION_HEIGHT}\"{}", &svg[body_at + 4..]);
    let total = height + CAPTION_HEIGHT;
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{total}\" \
         viewBox=\"0 0 {width} {total}\">\
         <rect width=\"{width}\" height=\"{total}\" fill=\"white\"/>\
         <text x=\"8\" y=\"17\" font-family=\"sans-serif\" font-size=\"14\" \
         font-weight=\"bold\" fill=\"#222\">{}</text>{nested}</svg>\n",
        escape_xml(caption)
    ))
}

/// The `width` and `height` of the root element of `svg`, in pixels.
fn root_size(svg: &str) -> Result<(u32, u32)> {
    let start = svg
        .find("<svg")
        .ok_or_else(|| anyhow!("a chart without an <svg> root"))?;
    let tag = &svg[start..start + svg[start..].find('>').unwrap_or(0)];
    let attribute = |name: &str| -> Result<u32> {
        let key = format!(" {name}=\"");
        let at = tag
            .find(&key)
            .ok_or_else(|| anyhow!("the chart's <svg> has no {name}"))?
            + key.len();
        let value = &tag[at..at + tag[at..].find('"').unwrap_or(0)];
        value
            .parse()
            .map_err(|_| anyhow!("the chart's {name} is {value:?}, not pixels"))
    };
    Ok((attribute("width")?, attribute("height")?))
}

/// resvg's options with the system's fonts and a sans-serif family that exists.
fn font_options() -> Result<resvg::usvg::Options<'static>> {
    let mut options = resvg::usvg::Options::default();
    let fonts = options.fontdb_mut();
    fonts.load_system_fonts();
    let family = SANS_SERIF
        .iter()
        .find(|family| {
            fonts
                .faces()
                .any(|face| face.families.iter().any(|(name, _)| name == *family))
        })
        .map(|family| family.to_string())
        .or_else(|| {
            fonts
                .faces()
                .next()
                .and_then(|face| face.families.first().map(|(name, _)| name.clone()))
        })
        .ok_or_else(|| {
            anyhow!(
                "no font on this host for the PNG's text (resvg found none in the system's font \
                 directories): install one, e.g. Debian's fonts-dejavu-core (`just deps` does), \
                 or export --format svg"
            )
        })?;
    fonts.set_sans_serif_family(family);
    Ok(options)
}

/// `svg` as a PNG at [`PNG_SCALE`].
fn rasterize(svg: &str, options: &resvg::usvg::Options<'_>) -> Result<Vec<u8>> {
    let tree = resvg::usvg::Tree::from_str(svg, options)?;
    let size = tree.size();
    let width = (size.width() * PNG_SCALE).ceil() as u32;
    let height = (size.height() * PNG_SCALE).ceil() as u32;
    let mut pixmap = resvg::tiny_skia::Pixmap::new(width, height)
        .ok_or_else(|| anyhow!("a {width}x{height} picture"))?;
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::from_scale(PNG_SCALE, PNG_SCALE),
        &mut pixmap.as_mut(),
    );
    Ok(pixmap.encode_png()?)
}
