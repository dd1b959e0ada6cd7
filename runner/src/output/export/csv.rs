//! The tidy CSV of a lab's samples: a header, then one row per run, sample time and metric.
//!
//! ```text
//! scenario,kernel,variant,repeat,run,t_s,metric,value
//! go-madvfree-balloon,v6.1,"go=1.15,GODEBUG=madvdontneed=0",1,runs/go-madvfree-balloon/6.1/go=1.15,GODEBUG=madvdontneed=0,0.250,process.service.rss,1970176
//! ```
//!
//! `kernel` is the kernel's id with a `v` in front when it starts with a digit (`v5.10`, as
//! Linux tags its releases; `debian:6.12.41-1` as it is): pandas reads a column of bare
//! `5.10`, `6.1` as numbers, and 5.10 would become 5.1.
//!
//! `metric` is the path expectations use (`process.<name>.<metric>`, `cgroup.<metric>`,
//! `guest.<metric>`; with pods also `pod.<pod>.<metric>` and
//! `container.<pod>.<container>.<metric>`, and `cgroup` is then the node's `kubepods`);
//! `value` is as sampled (bytes for sizes, `oom_score` a score; the kernel's counters as counted,
//! see the README's Metrics); `t_s` is seconds since the run started. Fields are quoted as
//! RFC 4180 says (variant labels hold commas), so `pandas.read_csv` needs no options.

use std::fmt::Write as _;

use super::{Sampled, sampled};
use crate::records::LoadedRun;

/// The header and rows of `runs`, in their order, samples in time order.
pub fn samples_csv(runs: &[LoadedRun]) -> String {
    let mut out = String::from("scenario,kernel,variant,repeat,run,t_s,metric,value\n");
    for run in runs {
        let record = &run.record;
        let kernel = match record.kernel.starts_with(|c: char| c.is_ascii_digit()) {
            true => format!("v{}", record.kernel),
            false => record.kernel.clone(),
        };
        let prefix = [
            record.scenario.as_str(),
            kernel.as_str(),
            record.variant_label.as_str(),
        ]
        .map(field)
        .join(",");
        let run_fields = format!("{prefix},{},{}", record.repeat, field(&record.dir));
        for sample in &run.samples {
            let t_s = sample.t_ms as f64 / 1000.0;
            for value in sampled(sample) {
                let metric = metric_path(&value);
                let _ = writeln!(
                    out,
                    "{run_fields},{t_s:.3},{},{}",
                    field(&metric),
                    value.value
                );
            }
        }
    }
    out
}

/// The path expectations use for `value`: `container.<pod>.<container>.<metric>` for a
/// container (its `<pod>/<container>` key with a dot), `<scope>.<owner>.<metric>` for the
/// other keyed maps, `<scope>.<metric>` for the cgroup and the guest.
fn metric_path(value: &Sampled<'_>) -> String {
    match (value.scope, value.owner) {
        ("container", Some(key)) => {
            format!("container.{}.{}", key.replacen('/', ".", 1), value.metric)
        }
        (scope, Some(owner)) => format!("{scope}.{owner}.{}", value.metric),
        (scope, None) => format!("{scope}.{}", value.metric),
    }
}

/// A CSV field: quoted, with its quotes doubled, when it holds a comma, a quote or a line break.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}
