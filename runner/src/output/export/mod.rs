//! `rsslab export DIR --format csv|openmetrics|prometheus|svg|png`: every sample of a lab in a
//! format other people's tools read, or every chart as a picture, rebuilt from the raw records
//! like every other output.
//!
//! - `csv` ([`csv`]): a tidy table, one row per run, time and metric, for pandas
//!   (`pd.read_csv(path)`, no options), R or a spreadsheet;
//! - `openmetrics` ([`metrics_text`]): the OpenMetrics text exposition, one series per run and
//!   metric with its samples' timestamps, for `promtool tsdb create-blocks-from openmetrics`
//!   (then Prometheus and Grafana);
//! - `prometheus`: the same families in Prometheus' own text format (timestamps in integer
//!   milliseconds), which `promtool check metrics` lints: Prometheus' linter does not read
//!   OpenMetrics' timestamps in seconds (prometheus/prometheus#10259), so one file cannot serve
//!   both;
//! - `svg`, `png` ([`charts`]): each chart of each run, and each scenario's kernel rows, as its
//!   own captioned file named after the run, for a document.
//!
//! Entry point: [`export`].

pub mod charts;
pub mod csv;
pub mod metrics_text;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rsslab_wire::{Metrics, Sample};

use crate::files::write_atomically;
use crate::records::load_all;

/// One value of a sample: the map it is in (`process`, `cgroup`, `pod`, `container` or
/// `guest`), whose it is in a keyed map (the process's name, the pod's, the container's
/// `<pod>/<container>`), its metric and value.
pub struct Sampled<'a> {
    pub scope: &'static str,
    pub owner: Option<&'a str>,
    pub metric: &'a str,
    pub value: u64,
}

/// Every value of `sample`: its processes' (by name), the cgroup's, each pod's and each
/// container's (by name), then the guest's.
pub fn sampled<'a>(sample: &'a Sample) -> impl Iterator<Item = Sampled<'a>> {
    let keyed = |scope: &'static str, maps: &'a BTreeMap<String, Metrics>| {
        maps.iter().flat_map(move |(owner, metrics)| {
            metrics.iter().map(move |(metric, &value)| Sampled {
                scope,
                owner: Some(owner),
                metric,
                value,
            })
        })
    };
    let map = |scope: &'static str, metrics: &'a Metrics| {
        metrics.iter().map(move |(metric, &value)| Sampled {
            scope,
            owner: None,
            metric,
            value,
        })
    };
    keyed("process", &sample.process)
        .chain(map("cgroup", &sample.cgroup))
        .chain(keyed("pod", &sample.pod))
        .chain(keyed("container", &sample.container))
        .chain(map("guest", &sample.guest))
}

/// What `rsslab export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Csv,
    Openmetrics,
    Prometheus,
    Svg,
    Png,
}

impl ExportFormat {
    /// What is written under `DIR/exports/` when no `--out` is given: a file, or for the
    /// charts a directory.
    pub fn default_name(self) -> &'static str {
        match self {
            ExportFormat::Csv => "samples.csv",
            ExportFormat::Openmetrics => "samples.om.txt",
            ExportFormat::Prometheus => "samples.prom",
            ExportFormat::Svg => "charts-svg",
            ExportFormat::Png => "charts-png",
        }
    }
}

/// What [`export`] wrote: the file, or the directory of charts and how many.
pub struct Exported {
    pub path: PathBuf,
    pub files: usize,
}

/// Writes the lab in `out_dir` as `format` to `dest` (default `out_dir/exports/<name>`): the
/// samples into one file, atomically, or the charts into a directory.
pub fn export(out_dir: &Path, format: ExportFormat, dest: Option<&Path>) -> Result<Exported> {
    let path = match dest {
        Some(path) => path.to_owned(),
        None => {
            let dir = out_dir.join("exports");
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            dir.join(format.default_name())
        }
    };
    let text = match format {
        ExportFormat::Svg => return charts_into(out_dir, charts::ChartFormat::Svg, path),
        ExportFormat::Png => return charts_into(out_dir, charts::ChartFormat::Png, path),
        ExportFormat::Csv => csv::samples_csv(&load_all(out_dir)?),
        ExportFormat::Openmetrics => {
            metrics_text::exposition(&load_all(out_dir)?, metrics_text::Flavour::OpenMetrics)?
        }
        ExportFormat::Prometheus => {
            metrics_text::exposition(&load_all(out_dir)?, metrics_text::Flavour::Prometheus)?
        }
    };
    write_atomically(&path, text.as_bytes())?;
    Ok(Exported { path, files: 1 })
}

fn charts_into(out_dir: &Path, format: charts::ChartFormat, dir: PathBuf) -> Result<Exported> {
    let files = charts::export_charts(out_dir, format, &dir)?;
    Ok(Exported {
        path: dir,
        files: files.len(),
    })
}

#[cfg(test)]
mod tests;
