//! The real Go 1.15 toolchain from Debian's archive (network on the first run, then cached)
//! builds the go-heap-churn workload statically, and the program, run briefly on the host,
//! reports its phases with the runtime's figures; a user's module that does not compile is bad
//! input.
//!
//! On a machine without the archive, `cargo nextest run --profile offline` leaves it out.

mod support;

use std::time::Instant;

use rsslab::catalogue::go::go_catalogue;
use rsslab::supply::cache::Cache;
use rsslab::supply::gobuild::{build_go_workload, go_source_dir};
use rsslab::supply::toolchain::prepare_toolchain;
use rsslab_wire::WorkloadReport;

#[test]
fn go_1_15_builds_heap_churn_which_reports_released_memory() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let cache = Cache::default_location().unwrap();
    let base_url = rsslab::supply::fetch::archive_base_url().unwrap();
    let toolchain = go_catalogue().get("1.15").unwrap();
    let goroot = prepare_toolchain(&cache, &base_url, toolchain).unwrap();
    assert!(goroot.root.join("src/runtime/malloc.go").is_file());

    let source = go_source_dir("heap-churn");
    let started = Instant::now();
    let binary = build_go_workload(&cache, &goroot, &source).unwrap();
    eprintln!("build took {:.1}s", started.elapsed().as_secs_f64());
    // Warm: the same binary, nothing built.
    let started = Instant::now();
    assert_eq!(build_go_workload(&cache, &goroot, &source).unwrap(), binary);
    assert!(started.elapsed().as_secs() < 5);
    let data = std::fs::read(&binary).unwrap();
    assert_eq!(&data[..4], b"\x7fELF");

    let args = r#"{"heap":67108864,"live":8388608,"free_os_memory":true,"hold_allocated":"100ms","hold":"100ms","exit":true}"#;
    let output = duct::cmd!(&binary, args)
        .env("GODEBUG", "madvdontneed=0")
        .stdout_capture()
        .run()
        .unwrap();
    let reports: Vec<WorkloadReport> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect();
    let phases: Vec<&str> = reports.iter().filter_map(|r| r.phase.as_deref()).collect();
    assert_eq!(phases, ["allocated", "released", "done"]);
    let released = reports
        .iter()
        .find(|r| r.phase.as_deref() == Some("released"))
        .unwrap();
    assert!(released.metrics["heap_released"] > 32 << 20, "{released:?}");
    assert!(released.metrics["heap_inuse"] < 32 << 20, "{released:?}");
}

/// A user's Go module that does not compile is bad input: `rsslab run` exits 2 with the
/// compiler's message and keeps the build log, before any VM boots.
#[test]
fn a_go_source_module_that_does_not_compile_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("broken");
    std::fs::create_dir(&module).unwrap();
    std::fs::write(module.join("go.mod"), "module broken\n\ngo 1.15\n").unwrap();
    std::fs::write(
        module.join("main.go"),
        "package main\n\nfunc main() { undefinedThing() }\n",
    )
    .unwrap();
    let scenario = dir.path().join("broken.toml");
    std::fs::write(
        &scenario,
        r#"[scenario]
id = "broken-build"
title = "A module that does not compile"
[vm]
kernels = ["6.1"]
[sample]
duration = "5s"
[[process]]
name = "service"
workload = "go-source"
go = "1.15"
args = { source = "broken", build_flags = ["-trimpath"] }
"#,
    )
    .unwrap();
    let out = dir.path().join("out");
    let output = support::rsslab(&[
        "run".to_owned(),
        scenario.display().to_string(),
        "--out".into(),
        out.display().to_string(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("undefined: undefinedThing"), "{stderr}");
    let log = stderr
        .split("the log is ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("no log path in {stderr}"));
    let logged = std::fs::read_to_string(log).unwrap();
    assert!(logged.contains("$ go build -trimpath -o "), "{logged}");
    assert!(logged.contains("undefined: undefinedThing"), "{logged}");
    assert!(!out.join("runs").exists(), "no VM was started");
}
