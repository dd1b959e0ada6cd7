//! The metric names `rsslab check` accepts in expectations (`rsslab_wire::workload`) are the
//! ones the guest reports: the agent's /proc tables and every name its workloads and the Go
//! workload write. A workload that starts reporting a new metric must list it, or expectations
//! on it are refused.

use std::collections::BTreeSet;
use std::path::Path;

use rsslab_wire::Workload;
use rsslab_wire::workload::{PROCESS_METRICS, WORKLOAD_NAMES};

fn source(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Every workload, with the arguments it requires.
fn workloads() -> Vec<Workload> {
    WORKLOAD_NAMES
        .iter()
        .map(|name| {
            let args = match *name {
                "heap-churn" | "go-heap-churn" => r#"{"heap":1}"#,
                "file-io" => r#"{"files":1,"file_size":1}"#,
                "hog" | "vsz-startup" => r#"{"size":1}"#,
                "exec" => r#"{"command":["/bin/true"]}"#,
                "go-source" => r#"{"source":"."}"#,
                _ => "{}",
            };
            let json = format!(r#"{{"workload":"{name}","args":{args}}}"#);
            serde_json::from_str(&json).unwrap_or_else(|error| panic!("{name}: {error}"))
        })
        .collect()
}

/// The second string of each `("Kernel", "metric")` pair in a `const` table of parse.rs.
fn table_metrics(text: &str, table: &str) -> Vec<String> {
    let start = text.find(&format!("pub const {table}")).expect(table);
    let body = &text[start..start + text[start..].find("];").expect("table end")];
    body.split('(')
        .skip(1)
        .filter_map(|pair| pair.split('"').nth(3).map(str::to_string))
        .collect()
}

#[test]
fn the_sampled_process_metrics_are_the_agents() {
    let parse = source("vm-images/agent/src/parse.rs");
    let mut sampled = table_metrics(&parse, "STATUS_FIELDS");
    sampled.extend(table_metrics(&parse, "SMAPS_ROLLUP_FIELDS"));
    let sampled: BTreeSet<String> = sampled.into_iter().collect();
    let listed: BTreeSet<String> = PROCESS_METRICS.iter().map(|m| m.to_string()).collect();
    assert_eq!(sampled, listed);
}

#[test]
fn every_name_a_native_workload_reports_is_a_phase_or_a_metric_of_the_wire() {
    let all = workloads();
    let known: BTreeSet<&str> = all
        .iter()
        .flat_map(|workload| {
            let mut names = workload.phases();
            names.extend(workload.metrics());
            names
        })
        .collect();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vm-images/agent/src/workloads");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        // `reporter.phase("released", &[("heap_released", n)])`: names open a tuple or a call.
        for name in text
            .split("(\"")
            .skip(1)
            .filter_map(|rest| rest.split_once("\","))
        {
            let name = name.0;
            if name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                seen += 1;
                assert!(
                    known.contains(name),
                    "`{name}` is reported but not in the wire's lists"
                );
            }
        }
    }
    assert!(
        seen > 10,
        "the workloads' sources were not read: {seen} names"
    );
}

#[test]
fn the_go_workloads_metrics_are_listed() {
    let main = source("vm-images/go/heap-churn/main.go");
    let start = main
        .find("Metrics: map[string]uint64{")
        .expect("the Go report's metrics");
    let body = &main[start..start + main[start..].find("}}").expect("its end")];
    let reported: BTreeSet<&str> = body.split('"').skip(1).step_by(2).collect();
    let go = workloads()
        .into_iter()
        .find(|workload| workload.is_go())
        .expect("a Go workload");
    let listed: BTreeSet<&str> = go.metrics().into_iter().collect();
    assert_eq!(reported, listed);
}
