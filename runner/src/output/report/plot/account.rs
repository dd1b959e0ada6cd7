//! The series of the kernel's account charts, as rates between samples of its cumulative
//! counters ([`crate::analysis::account::rates`]): stall milliseconds per second for
//! [`pressure_chart`], pages, faults and events per second for [`reclaim_chart`].

use super::*;
use crate::analysis::account::{counter_points, rates};

const SOME_COLOUR: RGBColor = RGBColor(214, 39, 40);
const FULL_COLOUR: RGBColor = RGBColor(120, 20, 20);
const SCAN_COLOUR: RGBColor = RGBColor(31, 119, 180);
const STEAL_COLOUR: RGBColor = RGBColor(44, 160, 44);
const REFAULT_COLOUR: RGBColor = RGBColor(148, 103, 189);
const MAJFAULT_COLOUR: RGBColor = RGBColor(140, 86, 75);
const EVENT_HIGH_COLOUR: RGBColor = RGBColor(230, 120, 0);
const EVENT_MAX_COLOUR: RGBColor = RGBColor(214, 39, 40);
const EVENT_OOM_COLOUR: RGBColor = RGBColor(30, 30, 30);

/// The pressure series and the reclaim series of `run`. A series is left out when its counter
/// is missing (no PSI, a v1 cgroup, an older kernel), and a secondary one (direct reclaim, the
/// cgroup's own reclaim, `high` events) also when it never moved; a chart with no series is
/// not drawn (a run whose guest sent no account).
pub fn account_series(run: &LoadedRun) -> (Vec<Series>, Vec<Series>) {
    let guest = |metric: &'static str| {
        rates(&counter_points(&run.samples, |sample| {
            sample.guest.get(metric).copied()
        }))
    };
    let cgroup = |metric: &'static str| {
        rates(&counter_points(&run.samples, |sample| {
            sample.cgroup.get(metric).copied()
        }))
    };
    let mut pressure = Vec::new();
    // Stall µs per second / 1000 = ms per second.
    let ms = |points: Vec<(f64, f64)>| -> Vec<(f64, f64)> {
        points.into_iter().map(|(t, us)| (t, us / 1000.0)).collect()
    };
    for (label, colour, stroke, points) in [
        (
            "guest some",
            SOME_COLOUR,
            Stroke::Solid,
            ms(guest("psi_some_total")),
        ),
        (
            "guest full",
            FULL_COLOUR,
            Stroke::Dashed,
            ms(guest("psi_full_total")),
        ),
        (
            "cgroup some",
            SOME_COLOUR,
            Stroke::Dotted,
            ms(cgroup("psi_some_total")),
        ),
        (
            "cgroup full",
            FULL_COLOUR,
            Stroke::DashDot,
            ms(cgroup("psi_full_total")),
        ),
    ] {
        push(
            &mut pressure,
            label,
            colour,
            stroke,
            2,
            points,
            Shown::Always,
        );
    }
    let mut reclaim = Vec::new();
    for (label, colour, stroke, width, points, shown) in [
        (
            "pgscan",
            SCAN_COLOUR,
            Stroke::Solid,
            2,
            guest("pgscan"),
            Shown::Always,
        ),
        (
            "pgsteal",
            STEAL_COLOUR,
            Stroke::Solid,
            2,
            guest("pgsteal"),
            Shown::Always,
        ),
        (
            "pgscan_direct",
            SCAN_COLOUR,
            Stroke::Dotted,
            2,
            guest("pgscan_direct"),
            Shown::Moving,
        ),
        (
            "workingset_refault",
            REFAULT_COLOUR,
            Stroke::Solid,
            2,
            guest("workingset_refault"),
            Shown::Always,
        ),
        (
            "pgmajfault",
            MAJFAULT_COLOUR,
            Stroke::Solid,
            1,
            guest("pgmajfault"),
            Shown::Always,
        ),
        (
            "cgroup pgscan",
            SCAN_COLOUR,
            Stroke::Dashed,
            1,
            cgroup("pgscan"),
            Shown::Moving,
        ),
        (
            "cgroup pgsteal",
            STEAL_COLOUR,
            Stroke::Dashed,
            1,
            cgroup("pgsteal"),
            Shown::Moving,
        ),
        (
            "cgroup refault",
            REFAULT_COLOUR,
            Stroke::Dashed,
            1,
            cgroup("workingset_refault"),
            Shown::Moving,
        ),
        (
            "memory.events high",
            EVENT_HIGH_COLOUR,
            Stroke::Solid,
            2,
            cgroup("high"),
            Shown::Moving,
        ),
        (
            "memory.events max",
            EVENT_MAX_COLOUR,
            Stroke::Solid,
            2,
            cgroup("max"),
            Shown::Always,
        ),
        (
            "memory.events oom_kill",
            EVENT_OOM_COLOUR,
            Stroke::Solid,
            2,
            cgroup("oom_kill"),
            Shown::Always,
        ),
    ] {
        push(&mut reclaim, label, colour, stroke, width, points, shown);
    }
    (pressure, reclaim)
}

/// When a series is drawn: whenever its counter was sampled (a flat zero says "none"), or only
/// when it moved (the secondary ones, which would crowd the legend).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shown {
    Always,
    Moving,
}

fn push(
    into: &mut Vec<Series>,
    label: &str,
    colour: RGBColor,
    stroke: Stroke,
    width: u32,
    points: Vec<(f64, f64)>,
    shown: Shown,
) {
    let moved = points.iter().any(|&(_, rate)| rate > 0.0);
    if !points.is_empty() && (shown == Shown::Always || moved) {
        into.push(Series {
            label: label.to_owned(),
            colour,
            stroke,
            width,
            points,
            breaks: Vec::new(),
        });
    }
}
