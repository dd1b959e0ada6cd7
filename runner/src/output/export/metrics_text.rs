//! A lab's samples as metric families in the OpenMetrics text exposition (or Prometheus' text
//! format): one series per run and metric, every sample a point with its timestamp (the run's
//! start plus the sample's time).
//!
//! ```text
//! # HELP rsslab_process_rss_bytes A process's rss, as the guest sampled it.
//! # TYPE rsslab_process_rss_bytes gauge
//! # UNIT rsslab_process_rss_bytes bytes
//! rsslab_process_rss_bytes{scenario="heap-churn-madvise",kernel="6.1",variant="release=free",repeat="1",run="runs/heap-churn-madvise/6.1/release=free",process="service"} 421527552 1733300000.250
//! # HELP rsslab_cgroup_psi_some_seconds The cgroup's psi_some_total, as the guest sampled it.
//! # TYPE rsslab_cgroup_psi_some_seconds counter
//! # UNIT rsslab_cgroup_psi_some_seconds seconds
//! rsslab_cgroup_psi_some_seconds_total{...} 0.61 1733300004.000
//! # EOF
//! ```
//!
//! Names: `rsslab_<process|cgroup|pod|container|guest>_<metric>`, with the unit as suffix.
//! Sizes are gauges in bytes; the kernel's counters (`pgscan`, `memory.events`' `high`, ...)
//! are counters (`_total`); the stall totals are counters in seconds (`psi_some_total` µs /
//! 10^6 as `..._psi_some_seconds_total`); the 10 s pressure averages are gauges as a ratio
//! (`..._psi_some_avg10_ratio`, hundredths of a percent / 10^4). A process's `oom_score` (the
//! OOM killer's badness, 0 to 2000) and what a workload reports itself (`goroutines_started`,
//! ...) are gauges without a unit. Labels: `scenario`, `kernel`, `variant`, `repeat`, `run`
//! (the run's directory) and, for processes, `process`; for pods `pod`; for containers `pod`
//! and `container` (a run with pods: the `cgroup` families are then the node's `kubepods`).
//!
//! A container's working set and RSS are also exposed under cAdvisor's own names,
//! `container_memory_working_set_bytes` and `container_memory_rss` (same labels, and a gauge
//! without a unit for the RSS, as cAdvisor has it), so a dashboard's query by `pod` and
//! `container` works on them as on a kubelet's `/metrics/cadvisor` (filters on labels rsslab
//! has not, `namespace`, `image`, `job`, must go): the guest computes both as cAdvisor does
//! (usage − inactive_file, floored at 0; memory.stat's `anon`, v1 `total_rss`).
//!
//! Families come in name order, each whole; in a family the series in run order, each series'
//! points in time order, as both formats require. OpenMetrics timestamps are seconds (three
//! decimals) and the text ends with `# EOF`; Prometheus' are integer milliseconds.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::UNIX_EPOCH;

use anyhow::{Context, Result};
use rsslab_wire::workload::PROCESS_METRICS;

use super::sampled;
use crate::records::LoadedRun;
use crate::scenario::expect::account_unit;

/// Which text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    OpenMetrics,
    Prometheus,
}

/// How a metric is exposed.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// The family's name (`rsslab_cgroup_psi_some_seconds`); a counter's points add `_total`.
    pub name: String,
    pub counter: bool,
    /// `bytes`, `seconds`, `ratio`, or none.
    pub unit: Option<&'static str>,
    /// Multiplies the sampled value.
    pub scale: f64,
    /// What the HELP line says.
    pub help: String,
}

/// The family of a metric of `scope` (`process`, `cgroup`, `pod`, `container`, `guest`).
pub fn family(scope: &str, metric: &str) -> Family {
    let base = format!("rsslab_{scope}_{}", sanitize(metric));
    let owner = match scope {
        "process" => "A process's",
        "cgroup" => "The cgroup's",
        "pod" => "A pod's cgroup's",
        "container" => "A container's cgroup's",
        _ => "The guest's",
    };
    let help = match (scope, metric) {
        ("process", "oom_score") => "A process's oom_score: the OOM killer's badness of it, \
            0 to 2000 (/proc/<pid>/oom_score), a score, not bytes."
            .to_owned(),
        _ => format!("{owner} {metric}, as the guest sampled it."),
    };
    let account = scope != "process" && account_unit(metric).is_some();
    let (name, counter, unit, scale) = if account && metric.starts_with("psi_") {
        match metric.strip_suffix("_total") {
            Some(stall) => (
                format!("rsslab_{scope}_{stall}_seconds"),
                true,
                Some("seconds"),
                1e-6,
            ),
            None => (format!("{base}_ratio"), false, Some("ratio"), 1e-4),
        }
    } else if account {
        (base, true, None, 1.0)
    } else if scope != "process" || PROCESS_METRICS.contains(&metric) {
        (format!("{base}_bytes"), false, Some("bytes"), 1.0)
    } else {
        (base, false, None, 1.0)
    };
    Family {
        name,
        counter,
        unit,
        scale,
        help,
    }
}

/// cAdvisor's own family for a container's `metric`, when cAdvisor exports it: its name, so
/// that dashboards' queries (`container_memory_working_set_bytes{pod="web",container="api"}`)
/// work on rsslab's samples as they do on a kubelet's `/metrics/cadvisor`. cAdvisor names its
/// RSS without a unit (`container_memory_rss`), so it has none here either.
pub fn cadvisor_family(scope: &str, metric: &str) -> Option<Family> {
    let (name, unit, help) = match (scope, metric) {
        ("container", "working_set") => (
            "container_memory_working_set_bytes",
            Some("bytes"),
            "Current working set in bytes, computed as cAdvisor computes it: the container \
             cgroup's usage minus inactive_file, floored at 0 (rsslab_container_working_set_bytes).",
        ),
        ("container", "rss") => (
            "container_memory_rss",
            None,
            "Size of RSS in bytes, computed as cAdvisor computes it: the container cgroup's \
             anon of memory.stat (v1: total_rss) (rsslab_container_rss_bytes).",
        ),
        _ => return None,
    };
    Some(Family {
        name: name.to_owned(),
        counter: false,
        unit,
        scale: 1.0,
        help: help.to_owned(),
    })
}

/// The labels that say whose a value is: `process`, `pod`, or a container's `pod` and
/// `container` (from its `<pod>/<container>` key), each after a comma; none for the cgroup and
/// the guest.
fn owner_labels(scope: &str, owner: Option<&str>) -> String {
    match (scope, owner) {
        ("container", Some(key)) => {
            let (pod, container) = key.split_once('/').unwrap_or(("", key));
            format!(
                ",pod=\"{}\",container=\"{}\"",
                escape(pod),
                escape(container)
            )
        }
        (scope, Some(owner)) => format!(",{scope}=\"{}\"", escape(owner)),
        (_, None) => String::new(),
    }
}

/// The exposition of every sample of `runs`.
pub fn exposition(runs: &[LoadedRun], flavour: Flavour) -> Result<String> {
    // Family name -> (family, its series: labels -> points).
    type Points = Vec<(f64, f64)>;
    let mut families: BTreeMap<String, (Family, Vec<(String, Points)>)> = BTreeMap::new();
    for run in runs {
        let record = &run.record;
        let started = humantime::parse_rfc3339(&record.timing.started_at)
            .with_context(|| format!("{}: started_at {:?}", record.dir, record.timing.started_at))?
            .duration_since(UNIX_EPOCH)
            .context("a run started before 1970")?
            .as_secs_f64();
        let labels = format!(
            "scenario=\"{}\",kernel=\"{}\",variant=\"{}\",repeat=\"{}\",run=\"{}\"",
            escape(&record.scenario),
            escape(&record.kernel),
            escape(&record.variant_label),
            record.repeat,
            escape(&record.dir)
        );
        let mut series: BTreeMap<(String, String), Points> = BTreeMap::new();
        for sample in &run.samples {
            let t = started + sample.t_ms as f64 / 1000.0;
            for value in sampled(sample) {
                let extra = owner_labels(value.scope, value.owner);
                let own = family(value.scope, value.metric);
                for family in std::iter::once(own).chain(cadvisor_family(value.scope, value.metric))
                {
                    let points = series
                        .entry((family.name.clone(), format!("{labels}{extra}")))
                        .or_default();
                    points.push((t, value.value as f64 * family.scale));
                    families
                        .entry(family.name.clone())
                        .or_insert_with(|| (family, Vec::new()));
                }
            }
        }
        for ((name, labels), points) in series {
            families
                .get_mut(&name)
                .expect("added with its series")
                .1
                .push((labels, points));
        }
    }
    let mut out = String::new();
    for (family, series) in families.values() {
        let sample_name = if family.counter {
            format!("{}_total", family.name)
        } else {
            family.name.clone()
        };
        // OpenMetrics names the family (`x` of `x_total`); Prometheus' format the metric.
        let described = match flavour {
            Flavour::OpenMetrics => &family.name,
            Flavour::Prometheus => &sample_name,
        };
        let _ = writeln!(out, "# HELP {described} {}", family.help);
        let kind = if family.counter { "counter" } else { "gauge" };
        let _ = writeln!(out, "# TYPE {described} {kind}");
        if let (Some(unit), Flavour::OpenMetrics) = (family.unit, flavour) {
            let _ = writeln!(out, "# UNIT {} {unit}", family.name);
        }
        for (labels, points) in series {
            for (t, value) in points {
                match flavour {
                    Flavour::OpenMetrics => {
                        let _ = writeln!(out, "{sample_name}{{{labels}}} {value} {t:.3}");
                    }
                    Flavour::Prometheus => {
                        let ms = (t * 1000.0).round() as i64;
                        let _ = writeln!(out, "{sample_name}{{{labels}}} {value} {ms}");
                    }
                }
            }
        }
    }
    if flavour == Flavour::OpenMetrics {
        out.push_str("# EOF\n");
    }
    Ok(out)
}

/// A metric name's characters: letters, digits and `_`; anything else becomes `_`.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// A label value: backslash, double quote and line feed escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
