//! The series of a run's pod charts ([`pod_chart`]), one chart per pod: each container's
//! working set, RSS and page cache as the guest sampled its cgroup, against the limit and
//! `memory.high` the kernel read back when the kubelet's rules wrote them (the run's `kubelet`
//! events), and the pod's own limit. Entry point: [`pod_series`].

use super::series::{MIN_PART_MIB, MIN_PART_SHARE, constant, level, line};
use super::*;
use crate::analysis::kubelet::{KubeletWrite, LIMIT_FILES, Owner, kubelet_writes, pod_classes};

/// The pod's own limit: grey, as it bounds all of its containers; in long dashes, so a
/// container's limit at the same level shows in their gaps.
const POD_LIMIT_COLOUR: RGBColor = RGBColor(110, 110, 110);

/// The series of one pod's chart.
#[derive(Debug, Clone)]
pub struct PodSeries {
    /// The pod's name (the chart export's file names carry it).
    pub name: String,
    /// `Pod web (Burstable)`.
    pub title: String,
    pub series: Vec<Series>,
}

/// One [`PodSeries`] per pod of the run's node, in the node's order; none without pods. A
/// container in its colour (init containers first, as the pod lists them): its working set
/// (solid, thick), RSS (thin) and page cache (`file`, dotted), each when sampled (RSS and file
/// when they reach 5% of the container's peak working set, or 1 MiB), its limit (dashed) and
/// `memory.high` (dash-dot) at what the kernel read back; the pod's limit in long grey
/// dashes. A limit above the guest's memory (`max` read as a number) says nothing on this
/// axis and is left out.
pub fn pod_series(run: &LoadedRun) -> Vec<PodSeries> {
    let Some(node) = run.record.spec.node.as_ref() else {
        return Vec::new();
    };
    let writes = kubelet_writes(run);
    let mem_total = run
        .samples
        .iter()
        .filter_map(|sample| sample.guest.get("mem_total"))
        .max()
        .copied()
        .unwrap_or(u64::MAX);
    // The last value the kernel holds in `files` of `owner`'s cgroup, if it means anything here.
    let level_of = |owner: Owner, files: &[&str]| -> Option<u64> {
        writes
            .iter()
            .filter(|write| write.owner == owner && files.contains(&write.file))
            .filter_map(KubeletWrite::bytes)
            .next_back()
            .filter(|&bytes| bytes <= mem_total)
    };
    let limit_label = if node.cgroup_version == 1 {
        "memory.limit_in_bytes"
    } else {
        "memory.max"
    };
    let mut pods = Vec::new();
    for (index, (pod, qos)) in node.pods.iter().zip(pod_classes(node)).enumerate() {
        let mut series = Vec::new();
        for (number, container) in pod.all_containers().enumerate() {
            let colour = PROCESS_COLOURS[number % PROCESS_COLOURS.len()];
            let key = rsslab_wire::pod::container_key(&pod.name, &container.name);
            let metric = |metric: &str| {
                level(run, |sample| {
                    sample.container.get(&key)?.get(metric).copied()
                })
            };
            let working_set = metric("working_set");
            let peak = working_set.iter().map(|&(_, y)| y).fold(0.0, f64::max);
            let threshold = (peak * MIN_PART_SHARE).max(MIN_PART_MIB);
            let name = &container.name;
            if !working_set.is_empty() {
                series.push(line(
                    format!("{name} working set"),
                    colour,
                    Stroke::Solid,
                    3,
                    working_set,
                ));
            }
            for (part, stroke, width) in [("rss", Stroke::Solid, 1), ("file", Stroke::Dotted, 2)] {
                let points = metric(part);
                if points.iter().any(|&(_, y)| y >= threshold) {
                    series.push(line(
                        format!("{name} {part}"),
                        colour,
                        stroke,
                        width,
                        points,
                    ));
                }
            }
            let owner = Owner::Container {
                pod: index,
                container: number,
            };
            if let Some(limit) = level_of(owner, &LIMIT_FILES) {
                let label = format!("{name} {limit_label}");
                series.push(line(label, colour, Stroke::Dashed, 2, constant(run, limit)));
            }
            if let Some(high) = level_of(owner, &["memory.high"]) {
                let label = format!("{name} memory.high");
                series.push(line(label, colour, Stroke::DashDot, 2, constant(run, high)));
            }
        }
        if let Some(limit) = level_of(Owner::Pod(index), &LIMIT_FILES) {
            let label = format!("pod {limit_label}");
            series.push(line(
                label,
                POD_LIMIT_COLOUR,
                Stroke::LongDash,
                2,
                constant(run, limit),
            ));
        }
        series.retain(|line| !line.points.is_empty());
        pods.push(PodSeries {
            name: pod.name.clone(),
            // Plotters escapes the title; control characters are dropped, as in legends.
            title: format!("Pod {} ({})", pod.name, qos.as_str())
                .chars()
                .filter(|c| !c.is_control())
                .collect(),
            series,
        });
    }
    pods
}
