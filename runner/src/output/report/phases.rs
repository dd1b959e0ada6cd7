//! The "at each phase" table: what the memory settled at after each event.
//!
//! The events that mark a run's story (a process started or ended, a workload's phase, an
//! OOM kill) cut its time line into windows. For each window the table shows the **last
//! sample before the next event**, i.e. the value things settled at, not a transient: after
//! `service:released` under MADV_FREE the service's RSS stays near its peak with most of it
//! lazyfree; after `balloon:full` the service's RSS has fallen.
//!
//! Columns: per process `rss` and `lazyfree` (and, when sampled, the Go runtime's
//! `heap_released` and the huge pages of `anon_huge`), the guest's MemAvailable, and with a cgroup its
//! `usage`, `working set` and (when sampled) `file`, the page cache.
//!
//! Events with no sample between them share a row (they cannot be told apart by the
//! samples). A window without any sample (events after the last sample, at the end of the
//! run) shows dashes.

use rsslab_wire::{Bytes, EventKind, Sample};
use serde::Serialize;

use super::plot::{seconds, sorted_events};
use crate::records::LoadedRun;

/// A process's columns, in order: `rss` and `lazyfree` always; a Go runtime's own view of
/// what it handed back (`heap_released`) and transparent huge pages (`anon_huge`) when a
/// sample of the process has at least [`OPTIONAL_COLUMN_MIN`] of them.
const PROCESS_COLUMNS: &[&str] = &["rss", "lazyfree", "heap_released", "anon_huge"];
const ALWAYS_SHOWN: &[&str] = &["rss", "lazyfree"];
const OPTIONAL_COLUMN_MIN: u64 = 1 << 20;

/// The table for one run.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseTable {
    /// Column groups after the time and event columns: one per process, then the guest and
    /// (when sampled) the cgroup.
    pub groups: Vec<ColumnGroup>,
    pub rows: Vec<PhaseRow>,
}

/// A heading over several value columns (a process name over "rss" and "lazyfree").
#[derive(Debug, Clone, Serialize)]
pub struct ColumnGroup {
    pub label: String,
    pub columns: Vec<String>,
}

/// One window.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseRow {
    /// When the window starts, in seconds (`12.3`).
    pub t: String,
    /// The events that open it (`service:released`).
    pub events: Vec<String>,
    /// CSS class of the first event's kind: `started`, `phase`, `ended`, `oom`.
    pub kind: String,
    /// When the settled sample was taken, in seconds; empty without one.
    pub settled_at: String,
    /// One value per column of `groups`, in MiB (`—` when not sampled).
    pub values: Vec<String>,
}

/// What a value column reads from a sample.
enum Column {
    Process(String, &'static str),
    Guest(&'static str),
    Cgroup(&'static str),
}

impl Column {
    fn value(&self, sample: &Sample) -> Option<u64> {
        match self {
            Column::Process(name, metric) => sample.process.get(name)?.get(*metric).copied(),
            Column::Guest(metric) => sample.guest.get(*metric).copied(),
            Column::Cgroup(metric) => sample.cgroup.get(*metric).copied(),
        }
    }
}

/// Builds the table of `run`, with one column group per name of `processes`.
pub fn phase_table(run: &LoadedRun, processes: &[String]) -> PhaseTable {
    let mut groups = Vec::new();
    let mut columns = Vec::new();
    for name in processes {
        let mut names = Vec::new();
        for metric in PROCESS_COLUMNS {
            let reaches = |sample: &Sample| {
                sample
                    .process
                    .get(name)
                    .and_then(|metrics| metrics.get(*metric))
                    .is_some_and(|&bytes| bytes >= OPTIONAL_COLUMN_MIN)
            };
            if ALWAYS_SHOWN.contains(metric) || run.samples.iter().any(reaches) {
                names.push((*metric).to_owned());
                columns.push(Column::Process(name.clone(), metric));
            }
        }
        groups.push(ColumnGroup {
            label: name.clone(),
            columns: names,
        });
    }
    groups.push(ColumnGroup {
        label: "guest".into(),
        columns: vec!["MemAvailable".into()],
    });
    columns.push(Column::Guest("mem_available"));
    let has_cgroup = run
        .samples
        .iter()
        .any(|sample| sample.cgroup.contains_key("usage"));
    if has_cgroup {
        let mut names = vec!["usage".to_owned(), "working set".to_owned()];
        columns.push(Column::Cgroup("usage"));
        columns.push(Column::Cgroup("working_set"));
        // Page cache, when the kernel reports it: what the working set may or may not count.
        if run
            .samples
            .iter()
            .any(|sample| sample.cgroup.contains_key("file"))
        {
            names.push("file".into());
            columns.push(Column::Cgroup("file"));
        }
        groups.push(ColumnGroup {
            label: "cgroup".into(),
            columns: names,
        });
    }

    // Marking events, grouped when no sample falls between them.
    let mut windows: Vec<(u64, Vec<String>, &'static str)> = Vec::new();
    for event in sorted_events(run) {
        let (label, kind) = match &event.kind {
            EventKind::Started { .. } => (event.label(), "started"),
            EventKind::Phase { .. } => (event.label(), "phase"),
            EventKind::Ended { outcome } => (format!("{} {outcome}", event.label()), "ended"),
            EventKind::OomKill { task, pid } => (format!("oom-kill {task} ({pid})"), "oom"),
            EventKind::ContainerTerminated {
                container,
                reason,
                exit_code,
                ..
            } => (
                format!("{container} {reason} ({exit_code})"),
                if reason == "OOMKilled" {
                    "oom"
                } else {
                    "ended"
                },
            ),
            EventKind::ContainerBackOff {
                container,
                delay_ms,
                ..
            } => (
                format!("{container} back-off {:.0}s", *delay_ms as f64 / 1000.0),
                "ended",
            ),
            EventKind::ContainerRestarted {
                container,
                restart_count,
                ..
            } => (format!("{container} restart #{restart_count}"), "started"),
            EventKind::Setup { .. } | EventKind::Log { .. } | EventKind::Kubelet { .. } => continue,
        };
        match windows.last_mut() {
            Some((start, labels, _))
                if !run
                    .samples
                    .iter()
                    .any(|s| s.t_ms >= *start && s.t_ms < event.t_ms) =>
            {
                labels.push(label);
            }
            _ => windows.push((event.t_ms, vec![label], kind)),
        }
    }

    let rows = windows
        .iter()
        .enumerate()
        .map(|(index, (start, events, kind))| {
            let end = windows.get(index + 1).map_or(u64::MAX, |next| next.0);
            let settled = run
                .samples
                .iter()
                .rev()
                .find(|s| s.t_ms >= *start && s.t_ms < end);
            PhaseRow {
                t: format!("{:.1}", seconds(*start)),
                events: events.clone(),
                kind: (*kind).to_owned(),
                settled_at: settled.map_or_else(String::new, |s| format!("{:.1}", seconds(s.t_ms))),
                values: columns
                    .iter()
                    .map(|column| match settled.and_then(|s| column.value(s)) {
                        Some(bytes) => format_mib(bytes),
                        None => "—".to_owned(),
                    })
                    .collect(),
            }
        })
        .collect();
    PhaseTable { groups, rows }
}

/// Bytes as a number of MiB for a table cell whose header says MiB: one decimal below 10 MiB,
/// none above (elsewhere measured sizes print with their unit: `scenario::expect::format_value`).
pub fn format_mib(bytes: u64) -> String {
    let value = Bytes(bytes).as_mib();
    if value < 10.0 && bytes != 0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::testing::fake_run;

    fn row<'a>(table: &'a PhaseTable, event: &str) -> &'a PhaseRow {
        table
            .rows
            .iter()
            .find(|row| row.events.iter().any(|label| label == event))
            .unwrap_or_else(|| panic!("no row for {event}: {table:#?}"))
    }

    #[test]
    fn released_under_madv_free_keeps_rss_as_lazyfree() {
        let run = fake_run("demo", "6.1", "free");
        let table = phase_table(&run, &["service".into(), "balloon".into()]);
        assert_eq!(table.groups[0].label, "service");
        assert_eq!(table.groups[2].label, "guest");
        let released = row(&table, "service:released");
        assert_eq!(released.kind, "phase");
        // service rss, service lazyfree: 400 MiB with 350 MiB lazily freed.
        assert_eq!(&released.values[..2], ["400", "350"]);
        // The balloon has not started: its columns are dashes.
        assert_eq!(&released.values[2..4], ["—", "—"]);
        let full = row(&table, "balloon:full");
        let rss: f64 = full.values[0].parse().unwrap();
        assert!(rss < 200.0, "the balloon made the kernel reclaim: {full:?}");
    }

    #[test]
    fn released_under_madv_dontneed_drops_rss() {
        let run = fake_run("demo", "6.1", "dontneed");
        let table = phase_table(&run, &["service".into(), "balloon".into()]);
        let released = row(&table, "service:released");
        assert_eq!(&released.values[..2], ["50", "0"]);
    }

    #[test]
    fn events_without_samples_between_share_a_row() {
        let run = fake_run("demo", "6.1", "free");
        let table = phase_table(&run, &["service".into(), "balloon".into()]);
        let last = table.rows.last().unwrap();
        assert_eq!(last.events.len(), 2, "{last:?}");
        assert!(last.values.iter().all(|value| value == "—"), "{last:?}");
        assert_eq!(last.settled_at, "");
    }

    #[test]
    fn a_go_runtimes_released_heap_and_huge_pages_get_columns_when_sampled() {
        let mut run = fake_run("demo", "6.1", "free");
        let table = phase_table(&run, &["service".into()]);
        assert_eq!(table.groups[0].columns, ["rss", "lazyfree"]);
        for sample in &mut run.samples {
            let service = sample.process.get_mut("service").unwrap();
            service.insert("heap_released".into(), 300 << 20);
            service.insert("anon_huge".into(), 1 << 19);
        }
        let table = phase_table(&run, &["service".into()]);
        // Half a MiB of huge pages is below the column's threshold.
        assert_eq!(
            table.groups[0].columns,
            ["rss", "lazyfree", "heap_released"]
        );
        let released = row(&table, "service:released");
        assert_eq!(&released.values[..3], ["400", "350", "300"]);
    }
}
