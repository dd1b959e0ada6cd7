//! Scenario text with expectations, for the tests of reading them (here) and of evaluating
//! them ([`crate::analysis::expectations`]).

use std::path::Path;

use super::Expectation;
use crate::scenario::parse_scenario;

pub fn kernels() -> Vec<String> {
    ["5.10", "6.1", "6.12", "7.2"].map(String::from).to_vec()
}

pub const BASE: &str = r#"[scenario]
id = "demo"
title = "Demo"
[cgroup]
[sample]
duration = "30s"
[[process]]
name = "service"
workload = "heap-churn"
args = { heap = "400MiB", live = "50MiB" }
[[process]]
name = "balloon"
workload = "balloon"
cgroup = false
start = { after = "service", phase = "released", delay = "3s" }
[matrix]
"process.service.args.release" = ["free", "dontneed"]
"#;

pub fn expectations(extra: &str) -> Vec<Expectation> {
    let source = format!("{BASE}{extra}");
    parse_scenario(Path::new("demo.toml"), &source, &kernels())
        .unwrap_or_else(|error| panic!("{error}"))
        .expectations
}

pub const FREE_HIGH: &str = r#"
[[expect]]
name = "MADV_FREE keeps RSS"
when = { "process.service.args.release" = "free" }
metric = "process.service.rss"
from = "service:released"
after = "1s"
to = "balloon:started"
above = "380MiB"
"#;

pub fn errors(extra: &str) -> String {
    let source = format!("{BASE}{extra}");
    match parse_scenario(Path::new("demo.toml"), &source, &kernels()) {
        Ok(_) => panic!("should not validate:\n{extra}"),
        Err(error) => error.to_string(),
    }
}
