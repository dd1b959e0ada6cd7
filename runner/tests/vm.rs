//! Tests that boot real Debian kernels in QEMU (KVM when it works, else TCG) through the
//! `rsslab` binary, and read what the guests measured. They run one at a time (nextest group
//! `vm`) and need the network once to fetch the kernels into the cache, and `just guest`.

mod support;

use std::path::Path;

use serde_json::Value;
use support::{rsslab, samples_of};

const MIB: f64 = 1048576.0;

fn run_lab(scenario: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/vm")
        .join(scenario);
    let mut args = vec![
        "run".to_owned(),
        fixture.display().to_string(),
        "--out".into(),
        out.display().to_string(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    rsslab(&args)
}

/// The last sample of a process before `t_ms` (the settled value of a phase).
fn before<'a>(samples: &'a [Value], t_ms: u64, process: &str) -> &'a Value {
    samples
        .iter()
        .rev()
        .find(|s| s["t_ms"].as_u64().unwrap() < t_ms && !s["process"][process].is_null())
        .unwrap_or_else(|| panic!("no sample of {process} before {t_ms}ms"))
}

fn event_time(run: &Value, label: &str) -> u64 {
    run["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            let what = e
                .get("phase")
                .and_then(Value::as_str)
                .unwrap_or_else(|| e["event"].as_str().unwrap());
            format!("{}:{}", e["process"].as_str().unwrap_or(""), what) == label
        })
        .unwrap_or_else(|| panic!("no event {label}"))["t_ms"]
        .as_u64()
        .unwrap()
}

#[test]
fn madv_free_keeps_rss_until_the_balloon_and_dontneed_drops_it_on_every_kernel() {
    let out = tempfile::tempdir().unwrap();
    let output = run_lab("heap-churn-short.toml", out.path(), &["--jobs", "2"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "rsslab run failed: {stderr}");
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("results.json")).unwrap())
            .unwrap();
    let runs = results["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 8, "4 kernels x 2 variants");
    for result in runs {
        let dir = out.path().join(result["dir"].as_str().unwrap());
        let run: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
        let samples = samples_of(&dir);
        let name = result["dir"].as_str().unwrap();
        assert_eq!(result["outcome"], "ok", "{name}: {}", run["reason"]);
        let expectations = result["expectations"].as_array().unwrap();
        assert_eq!(
            expectations.len(),
            if name.ends_with("release=free") { 3 } else { 1 },
            "{name}: the fixture's expectations whose `when` matches: {expectations:#?}"
        );
        for expectation in expectations {
            assert_eq!(
                expectation["passed"], true,
                "{name}: {}: {}",
                expectation["name"], expectation["detail"]
            );
        }
        assert!(
            result["kernel_release"]
                .as_str()
                .unwrap()
                .contains(result["kernel"].as_str().unwrap()),
            "{name}"
        );

        // With THP `always` (the fixture's sysfs) the touched heap is in huge pages, which the
        // agent samples as anon_huge (smaps_rollup and meminfo AnonHugePages).
        let released = event_time(&run, "service:released");
        let huge = |scope: &dyn Fn(&Value) -> &Value| {
            samples
                .iter()
                .filter(|s| s["t_ms"].as_u64().unwrap() < released)
                .map(|s| {
                    scope(s)["anon_huge"]
                        .as_u64()
                        .unwrap_or_else(|| panic!("{name}: no anon_huge in {s}"))
                })
                .max()
                .expect("samples before the release") as f64
                / MIB
        };
        let service_huge = huge(&|s| &s["process"]["service"]);
        let guest_huge = huge(&|s| &s["guest"]);
        assert!(
            service_huge > 100.0 && guest_huge >= service_huge,
            "{name}: the 160MiB heap in huge pages: service {service_huge:.0}MiB, guest {guest_huge:.0}MiB"
        );

        let balloon_started = event_time(&run, "balloon:started");
        let settled = before(&samples, balloon_started, "service");
        let rss = settled["process"]["service"]["rss"].as_u64().unwrap() as f64 / MIB;
        let lazyfree = settled["process"]["service"]["lazyfree"]
            .as_u64()
            .unwrap_or_else(|| panic!("{name}: no lazyfree in {settled}"))
            as f64
            / MIB;
        let end = samples
            .iter()
            .rev()
            .find(|s| !s["process"]["service"].is_null())
            .unwrap();
        let rss_end = end["process"]["service"]["rss"].as_u64().unwrap() as f64 / MIB;
        match result["variant"]["process.service.args.release"]
            .as_str()
            .unwrap()
        {
            "free" => {
                assert!(
                    rss > 150.0,
                    "{name}: MADV_FREE keeps RSS near the 160MiB peak, saw {rss:.0}MiB"
                );
                assert!(
                    lazyfree > 110.0,
                    "{name}: ~128MiB lazily freed, saw {lazyfree:.0}MiB"
                );
                // How much the kernel takes back varies (63.5MiB at the least seen, on 5.10).
                assert!(
                    rss_end < rss - 40.0,
                    "{name}: the balloon reclaims lazyfree pages: {rss:.0} -> {rss_end:.0}MiB"
                );
            }
            "dontneed" => {
                assert!(
                    rss < 48.0,
                    "{name}: MADV_DONTNEED drops RSS to the 32MiB live set, saw {rss:.0}MiB"
                );
                assert!(
                    lazyfree < 1.0,
                    "{name}: nothing lazily freed, saw {lazyfree:.0}MiB"
                );
            }
            other => panic!("unexpected variant {other}"),
        }
    }
    let html = std::fs::read_to_string(out.path().join("index.html")).unwrap();
    assert_eq!(
        html.matches("<figure class=\"chart\">").count(),
        32,
        "four charts per run: its processes, its cgroup and guest, pressure and reclaim"
    );
    assert_eq!(html.matches("Pressure: time stalled on memory").count(), 8);
    assert_eq!(
        html.matches("Reclaim: pages and events per second").count(),
        8
    );
    assert_eq!(
        html.matches("<figure class=\"kernels\"").count(),
        2,
        "one row of kernel panels per variant"
    );
}

#[test]
fn file_io_page_cache_shows_in_the_cgroup_and_vsz_startup_is_refused_under_strict_overcommit() {
    let out = tempfile::tempdir().unwrap();
    let output = run_lab("file-io-vsz.toml", out.path(), &["--kernel", "6.1"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "rsslab run failed: {stderr}");
    let dir = out.path().join("runs/file-io-vsz/6.1");
    let run: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["outcome"], "ok", "{}", run["reason"]);
    assert_eq!(
        run["processes"]["jvm"]["outcome"], "enomem-at-start",
        "2x MemTotal is above CommitLimit under vm.overcommit_memory = 2"
    );
    assert_eq!(run["processes"]["batch"]["outcome"], "running-at-end");
    event_time(&run, "batch:done");
    let samples = samples_of(&dir);
    let cgroup = |metric: &str| {
        samples
            .iter()
            .map(|s| {
                s["cgroup"][metric]
                    .as_u64()
                    .unwrap_or_else(|| panic!("no cgroup.{metric} in {s}"))
            })
            .max()
            .expect("samples") as f64
            / MIB
    };
    // 160MiB written and 64MiB re-read through a 128MiB limit: the page cache is charged
    // to the cgroup (reclaimed, not OOM-killed), the re-read working set becomes active.
    assert!(
        cgroup("file") > 64.0,
        "cgroup file: {:.0}MiB",
        cgroup("file")
    );
    assert!(
        cgroup("active_file") > 48.0,
        "cgroup active_file: {:.0}MiB",
        cgroup("active_file")
    );
    assert!(cgroup("usage") <= 128.0, "usage within memory.max");
    assert_eq!(cgroup("oom_kill"), 0.0, "nothing OOM-killed");
    let rss = run["processes"]["batch"]["peak"]["rss"].as_u64().unwrap() as f64 / MIB;
    assert!(
        rss < 32.0,
        "read() page cache is not in RSS: {rss:.0}MiB (16MiB anon)"
    );
    assert!(
        cgroup("working_set") > rss + 32.0,
        "the working set counts the active page cache, RSS does not: {:.0} vs {rss:.0}MiB",
        cgroup("working_set")
    );
}

#[test]
fn a_kernel_without_madv_free_is_emulated_and_go_falls_back_to_dontneed() {
    let out = tempfile::tempdir().unwrap();
    let scenario =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/no-madv-free-emulated.toml");
    let output = rsslab(&[
        "run",
        scenario.to_str().unwrap(),
        "--kernel",
        "6.1",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "rsslab run failed: {stderr}");
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("results.json")).unwrap())
            .unwrap();
    let run = &results["runs"][0];
    assert_eq!(run["outcome"], "ok");
    let expectations = run["expectations"].as_array().unwrap();
    assert!(!expectations.is_empty());
    for expectation in expectations {
        assert_eq!(expectation["passed"], true, "{}", expectation["detail"]);
    }
    // Read the guest's numbers ourselves, too: the emulated Go process ends near its live set,
    // the control keeps its released heap as lazyfree.
    let samples = samples_of(&out.path().join(run["dir"].as_str().unwrap()));
    let last = samples
        .iter()
        .rev()
        .find(|s| !s["process"]["go-nofree"].is_null())
        .unwrap();
    let nofree = last["process"]["go-nofree"]["rss"].as_u64().unwrap() as f64 / MIB;
    let control_lazy = last["process"]["go-control"]["lazyfree"]
        .as_u64()
        .unwrap_or_else(|| panic!("no lazyfree of go-control in {last}"))
        as f64
        / MIB;
    assert!(
        nofree < 100.0,
        "Go 1.15 without MADV_FREE releases with DONTNEED: rss {nofree:.0}MiB"
    );
    assert!(
        control_lazy > 100.0,
        "Go 1.15 with MADV_FREE keeps lazyfree pages: {control_lazy:.0}MiB"
    );
}

#[test]
fn strict_overcommit_refuses_go_1_15s_runtime_at_start_and_starts_go_1_24() {
    let out = tempfile::tempdir().unwrap();
    let output = run_lab("go-startup-strict.toml", out.path(), &["--jobs", "2"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "rsslab run failed: {stderr}");
    let run_of = |go: &str| -> Value {
        let dir = out
            .path()
            .join(format!("runs/go-startup-strict/6.1/go={go}"));
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap()
    };
    let old = run_of("1.15");
    assert_eq!(old["outcome"], "ok", "{}", old["reason"]);
    assert_eq!(old["processes"]["hog"]["outcome"], "running-at-end");
    assert_eq!(
        old["processes"]["service"]["outcome"], "enomem-at-start",
        "Go 1.15's runtime maps ~100MiB read-write before main; ~85MiB of commit room is left"
    );
    let stderr_file = out
        .path()
        .join("runs/go-startup-strict/6.1/go=1.15/service.stderr");
    let said = std::fs::read_to_string(&stderr_file).unwrap_or_default();
    assert!(
        said.lines()
            .any(|line| line.starts_with("fatal error: out of memory")),
        "the runtime's own fatal error is kept in service.stderr: {said}"
    );

    let new = run_of("1.24");
    assert_eq!(new["outcome"], "ok", "{}", new["reason"]);
    assert_eq!(new["processes"]["service"]["outcome"], "running-at-end");
    let vsz = new["processes"]["service"]["peak"]["vsz"].as_u64().unwrap() as f64 / MIB;
    assert!(
        vsz > 1024.0,
        "Go 1.24 starts with a VSZ above the 512MiB guest's RAM: {vsz:.0}MiB"
    );
}

/// A C program that touches `argv[1]` MiB, then says what its own /proc/self/status says
/// its VmRSS is, every 100 ms, on the line protocol.
const SELF_RSS_C: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static long vmrss(void) {
    char line[256]; long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) kb = atol(line + 6);
    if (f) fclose(f);
    return kb * 1024;
}
int main(int argc, char **argv) {
    size_t size = (size_t)atol(argv[1]) << 20;
    volatile char *heap = malloc(size);  /* volatile: the writes may not be optimised away */
    for (size_t at = 0; at < size; at += 4096) heap[at] = 1;
    printf("{\"phase\":\"touched\"}\n");
    for (;;) {
        printf("{\"metrics\":{\"self_rss\":%ld}}\n", vmrss());
        fflush(stdout);
        usleep(100000);
    }
}
"#;

/// Builds `SELF_RSS_C` into `dir` with `cc` and these flags.
fn build_c(dir: &Path, name: &str, flags: &[&str]) {
    let source = dir.join("self_rss.c");
    std::fs::write(&source, SELF_RSS_C).unwrap();
    let output = std::process::Command::new("cc")
        .args(flags)
        .arg("-O2")
        .arg("-o")
        .arg(dir.join(name))
        .arg(&source)
        .output()
        .expect("cc (scripts/install-host-deps.sh installs gcc)");
    assert!(
        output.status.success(),
        "cc: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn user_programs_run_unchanged_and_their_rss_is_what_they_see_themselves() {
    let dir = tempfile::tempdir().unwrap();
    build_c(dir.path(), "self-rss-static", &["-static"]);
    build_c(dir.path(), "self-rss-dynamic", &[]);
    let scenario = r#"
[scenario]
id = "user-programs"
title = "Programs from the host and built by the test"

[vm]
kernels = ["6.1"]
memory = "512MiB"

[sample]
every = "200ms"
duration = "6s"

[[process]]
name = "static"
workload = "exec"
args = { command = ["/opt/test/self-rss-static", "64"], files = { "/opt/test/self-rss-static" = "self-rss-static" }, reports = { phases = ["touched"], metrics = ["self_rss"] } }

[[process]]
name = "dynamic"
workload = "exec"
args = { command = ["/opt/test/self-rss-dynamic", "48"], files = { "/opt/test/self-rss-dynamic" = "self-rss-dynamic" }, reports = { phases = ["touched"], metrics = ["self_rss"] } }

[[process]]
name = "ls"
workload = "exec"
start = { after = "dynamic", phase = "touched" }
args = { command = ["/usr/bin/ls", "-l", "/lib/x86_64-linux-gnu"], phases = { listed = "libselinux" } }
"#;
    let path = dir.path().join("user-programs.toml");
    std::fs::write(&path, scenario).unwrap();
    let out = dir.path().join("out");
    let output = rsslab(&[
        "run".to_owned(),
        path.display().to_string(),
        "--out".into(),
        out.display().to_string(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "rsslab run failed: {stderr}");
    let run_dir = out.join("runs/user-programs/6.1");
    let run: Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["outcome"], "ok", "{}", run["reason"]);
    assert_eq!(run["processes"]["static"]["outcome"], "running-at-end");
    assert_eq!(run["processes"]["dynamic"]["outcome"], "running-at-end");
    assert_eq!(
        run["processes"]["ls"]["outcome"], "exited(0)",
        "a program from the host's packages runs with its loader and libraries"
    );
    event_time(&run, "ls:listed");
    let listing = std::fs::read_to_string(run_dir.join("ls.stdout")).unwrap();
    assert!(listing.contains("libc.so.6"), "{listing}");

    let samples = samples_of(&run_dir);
    for (process, mib) in [("static", 64.0), ("dynamic", 48.0)] {
        let compared: Vec<(f64, f64)> = samples
            .iter()
            .filter_map(|sample| {
                let metrics = &sample["process"][process];
                Some((metrics["rss"].as_f64()?, metrics["self_rss"].as_f64()?))
            })
            .collect();
        assert!(
            compared.len() >= 5,
            "{process}: {} samples with both",
            compared.len()
        );
        for (sampled, said) in &compared {
            assert!(
                (sampled - said).abs() <= said * 0.03,
                "{process}: sampled rss {:.1} MiB, the program read {:.1} MiB",
                sampled / MIB,
                said / MIB
            );
            assert!(
                *said >= mib * MIB,
                "{process}: {:.1} MiB < {mib} MiB touched",
                said / MIB
            );
        }
    }
}

#[test]
fn a_go_module_built_with_race_runs_dynamic_in_the_guest_and_its_growth_is_seen() {
    let out = tempfile::tempdir().unwrap();
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/go-race-growth.toml");
    let output = rsslab(&[
        "run".to_owned(),
        scenario.display().to_string(),
        "--kernel".into(),
        "6.1".into(),
        "--out".into(),
        out.path().display().to_string(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "rsslab run failed (or an expectation did): {stderr}"
    );
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("results.json")).unwrap())
            .unwrap();
    let run = &results["runs"][0];
    assert_eq!(run["outcome"], "ok");
    let expectations = run["expectations"].as_array().unwrap();
    assert!(expectations.len() >= 9, "{expectations:?}");
    for expectation in expectations {
        assert_eq!(expectation["passed"], true, "{}", expectation["detail"]);
    }
    let samples = samples_of(&out.path().join("runs/go-race-growth/6.1"));
    let last = samples
        .iter()
        .rev()
        .find(|sample| !sample["process"]["churn-race-1-27"].is_null())
        .unwrap();
    let race = &last["process"]["churn-race-1-27"];
    let plain = &last["process"]["churn-1-27"];
    assert!(
        race["rss"].as_f64().unwrap() > 2.0 * plain["rss"].as_f64().unwrap(),
        "the -race build holds more than twice the plain one's RSS: {race} vs {plain}"
    );
    let logs: Vec<String> = std::fs::read_dir(out.path().join("go-builds"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let race_log = logs
        .iter()
        .filter(|name| name.starts_with("race-growth.go1.27."))
        .map(|name| std::fs::read_to_string(out.path().join("go-builds").join(name)).unwrap())
        .find(|text| text.contains("$ go build -race"));
    assert!(
        race_log.is_some_and(|text| text.contains("CGO_ENABLED=1")),
        "the lab keeps the build log of the -race build of Go 1.27: {logs:?}"
    );
}

#[test]
fn uncatalogued_debian_kernels_of_each_flavour_and_a_local_bzimage_boot_with_their_facts() {
    // A local bzImage: the pinned 6.1 kernel's, copied where no config lies beside it, so its
    // facts must come from the guest's probes.
    let images = rsslab(&["images", "--kernel", "6.1"]);
    assert!(
        images.status.success(),
        "{}",
        String::from_utf8_lossy(&images.stderr)
    );
    let listing = String::from_utf8_lossy(&images.stdout);
    let vmlinuz = listing
        .split_whitespace()
        .skip_while(|word| *word != "kernel")
        .nth(1)
        .expect("rsslab images names the kernel file");
    let local = tempfile::tempdir().unwrap();
    let bzimage = local.path().join("bzImage");
    std::fs::copy(vmlinuz, &bzimage).unwrap();

    let out = tempfile::tempdir().unwrap();
    let kernels = [
        "debian:6.16.12",
        "debian:6.18.15:generic",
        "debian:7.3.4:rt",
    ];
    let mut extra: Vec<&str> = kernels
        .iter()
        .flat_map(|kernel| ["--kernel", kernel])
        .collect();
    let bzimage_text = bzimage.display().to_string();
    extra.extend(["--kernel", &bzimage_text]);
    let output = run_lab("any-kernel.toml", out.path(), &extra);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "rsslab run failed: {stderr}");
    assert!(
        stderr.contains("verified from the archive's signature"),
        "{stderr}"
    );
    let runs = out.path().join("runs/any-kernel");
    let record = |dir: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(runs.join(dir).join("run.json")).unwrap())
            .unwrap()
    };
    for (dir, release, v1) in [
        ("debian-6.16.12", "6.16.12+deb13-cloud-amd64", false),
        ("debian-6.18.15-generic", "6.18.15+deb13-amd64", false),
        ("debian-7.3.4-rt", "7.3.4+deb13-rt-amd64", false),
    ] {
        let run = record(dir);
        assert_eq!(run["outcome"], "ok", "{dir}: {}", run["reason"]);
        assert_eq!(run["kernel_release"], release);
        assert_eq!(
            run["kernel_facts"]["cgroup_v1_memory"], v1,
            "{dir}: from its config"
        );
        assert_eq!(run["kernel_facts"]["mglru"], true, "{dir}: from its config");
        assert!(
            run["fact_mismatches"]
                .as_array()
                .is_none_or(|found| found.is_empty()),
            "{dir}: the config's facts are what the guest probed: {}",
            run["fact_mismatches"]
        );
        assert!(
            run["provenance"]["kernel_packages"][0]["version"]
                .as_str()
                .unwrap()
                .ends_with("~bpo13+1"),
            "{dir}: the exact package is recorded"
        );
    }
    let local_dir = std::fs::read_dir(&runs)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .find(|name| name.starts_with("local-bzImage-"))
        .expect("a run on the local kernel");
    let run = record(&local_dir);
    assert_eq!(run["outcome"], "ok", "{}", run["reason"]);
    assert_eq!(run["kernel_release"], "6.1.0-50-cloud-amd64");
    let version = run["hello"]["features"]["kernel_version"].as_str().unwrap();
    assert!(
        version.contains("Debian 6.1.176-1"),
        "uname -v of the guest: {version}"
    );
    assert_eq!(run["provenance"]["kernel_packages"][0]["version"], "local");
    let sha256 = run["provenance"]["kernel_packages"][0]["sha256"]
        .as_str()
        .unwrap();
    assert_eq!(sha256.len(), 64);
    // 6.1's facts, probed: MGLRU built in but off, the v1 memory controller there.
    assert_eq!(run["kernel_facts"]["mglru"], true);
    assert_eq!(run["kernel_facts"]["mglru_default"], false);
    assert_eq!(run["kernel_facts"]["cgroup_v1_memory"], true);
}

#[test]
fn a_file_that_is_not_a_kernel_is_bad_input_before_any_vm() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("bzImage");
    std::fs::write(&fake, b"#!/bin/sh\necho not a kernel\n").unwrap();
    let out = dir.path().join("out");
    let output = run_lab(
        "any-kernel.toml",
        &out,
        &["--kernel", &fake.display().to_string()],
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a kernel"), "{stderr}");
    assert!(!out.join("runs").exists(), "no run started");
}

#[test]
fn a_debian_version_the_archive_lacks_is_bad_input_naming_the_nearest() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_lab(
        "any-kernel.toml",
        &dir.path().join("out"),
        &["--kernel", "debian:6.16.4"],
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not in the archive"), "{stderr}");
    assert!(
        stderr.contains("6.16.3-1~bpo13+1"),
        "the nearest below: {stderr}"
    );
    assert!(
        stderr.contains("6.16.12-1~bpo13+1"),
        "the nearest above: {stderr}"
    );
}

#[test]
fn bisect_finds_the_first_debian_kernel_without_the_cgroup_v1_memory_controller() {
    // A short real range of the archive's cloud kernels: 6.1.176 (v1 memory controller built
    // in), 6.12.43 and 6.12.57 (Debian's 6.12 builds without CONFIG_MEMCG_V1): the first
    // version whose verdict differs is 6.12.43, found with one probe between the ends.
    let out = tempfile::tempdir().unwrap();
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vm/cgroup-v1.toml");
    let output = rsslab(&[
        "bisect".to_owned(),
        scenario.display().to_string(),
        "--good".into(),
        "debian:6.1.176-1".into(),
        "--bad".into(),
        "debian:6.12.57-1~bpo12+1".into(),
        "--out".into(),
        out.path().display().to_string(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bisect failed: {stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("first bad: 6.12.43-1~bpo12+1"), "{stdout}");
    assert!(stdout.contains("3 versions tried"), "{stdout}");
    let summary = std::fs::read_to_string(out.path().join("bisect.md")).unwrap();
    assert!(summary.contains("## Config:"), "the config diff: {summary}");
    assert!(
        summary.contains("### 6.12.43-1"),
        "the changelog entries: {summary}"
    );
    assert!(out.path().join("report/index.html").is_file());
    assert!(
        out.path().join("debian-6.1.176-1-cloud/runs").is_dir(),
        "each version's records kept"
    );
}

/// Each run's record of a lab of `heap-churn-short.toml` on 6.1, by variant directory.
fn runs_of(out: &Path) -> Vec<(String, Value)> {
    ["release=free", "release=dontneed"]
        .iter()
        .map(|variant| {
            let dir = out.join("runs/heap-churn-short/6.1").join(variant);
            let text = std::fs::read_to_string(dir.join("run.json")).unwrap();
            (variant.to_string(), serde_json::from_str(&text).unwrap())
        })
        .collect()
}

/// The snapshot file a restored run's console names.
fn restored_from(out: &Path, variant: &str) -> Option<std::path::PathBuf> {
    let console = out
        .join("runs/heap-churn-short/6.1")
        .join(variant)
        .join("console.log");
    let text = std::fs::read_to_string(console).unwrap();
    let line = text
        .lines()
        .find(|line| line.contains("rsslab: restored from"))?;
    let path = line
        .split_whitespace()
        .find(|word| word.ends_with(".vmstate"))?;
    Some(path.into())
}

#[test]
fn a_vm_restored_from_a_snapshot_tells_the_same_story_as_a_cold_boot() {
    let cold = tempfile::tempdir().unwrap();
    let output = run_lab(
        "heap-churn-short.toml",
        cold.path(),
        &["--kernel", "6.1", "--boot", "cold"],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let snapshot = tempfile::tempdir().unwrap();
    let output = run_lab(
        "heap-churn-short.toml",
        snapshot.path(),
        &["--kernel", "6.1"],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let cold_runs = runs_of(cold.path());
    let snapshot_runs = runs_of(snapshot.path());
    for (variant, run) in &cold_runs {
        assert_eq!(run["timing"]["boot"], "cold", "{variant}");
        assert!(restored_from(cold.path(), variant).is_none());
    }
    // The first VM of the shape saved the snapshot (unless an earlier lab did), the other
    // waited for it and was restored.
    let boots: Vec<&str> = snapshot_runs
        .iter()
        .map(|(_, run)| run["timing"]["boot"].as_str().unwrap())
        .collect();
    assert!(
        boots
            .iter()
            .all(|boot| ["saved", "restored"].contains(boot))
            && boots.contains(&"restored"),
        "{boots:?}"
    );
    for ((variant, cold_run), (_, restored_run)) in cold_runs.iter().zip(&snapshot_runs) {
        for run in [cold_run, restored_run] {
            assert_eq!(run["outcome"], "ok", "{variant}: {}", run["reason"]);
            let expectations = run["expectations"].as_array().unwrap();
            assert!(!expectations.is_empty());
        }
        assert_eq!(
            cold_run["processes"]["service"]["outcome"],
            restored_run["processes"]["service"]["outcome"],
            "{variant}"
        );
        let peak = |run: &Value| run["processes"]["service"]["peak"]["rss"].as_f64().unwrap() / MIB;
        assert!(
            (peak(cold_run) - peak(restored_run)).abs() < 8.0,
            "{variant}: peak RSS {:.1} MiB cold, {:.1} MiB restored",
            peak(cold_run),
            peak(restored_run)
        );
    }
    // Every expectation holds either way (results.json evaluates them).
    for out in [cold.path(), snapshot.path()] {
        let results: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap())
                .unwrap();
        let failed: Vec<&Value> = results["runs"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|run| run["expectations"].as_array().unwrap())
            .filter(|result| result["passed"] != true)
            .collect();
        assert!(failed.is_empty(), "{}: {failed:?}", out.display());
    }

    // A snapshot cut short does not load: it is deleted, the VM boots cold and saves it again.
    let (variant, _) = snapshot_runs
        .iter()
        .find(|(_, run)| run["timing"]["boot"] == "restored")
        .unwrap();
    let state = restored_from(snapshot.path(), variant).expect("the console names the snapshot");
    let whole = std::fs::metadata(&state).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&state)
        .unwrap()
        .set_len(whole / 2)
        .unwrap();
    let again = tempfile::tempdir().unwrap();
    let output = run_lab("heap-churn-short.toml", again.path(), &["--kernel", "6.1"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("did not load"), "{stderr}");
    let again_runs = runs_of(again.path());
    // One VM saved it again and the other was restored from what it saved.
    let boots: Vec<&str> = again_runs
        .iter()
        .map(|(_, run)| run["timing"]["boot"].as_str().unwrap())
        .collect();
    assert!(
        boots.contains(&"saved") && boots.contains(&"restored"),
        "{boots:?}"
    );
    for (variant, run) in &again_runs {
        assert_eq!(run["outcome"], "ok", "{variant}: {}", run["reason"]);
    }
    // The stream leaves out zero pages, so its size follows what the guest had touched when it
    // was saved: a few KiB either way between boots, never half.
    let resaved = std::fs::metadata(&state).unwrap().len();
    assert!(
        resaved.abs_diff(whole) < whole / 20,
        "saved {resaved} bytes again, {whole} the first time"
    );
}

/// A writer over its cgroup's memory.high: the kernel's account shows it on an old and a new
/// kernel, the hello says PSI is on (`psi=1`), the expectations on the counters hold, and the
/// report draws the pressure and reclaim charts.
#[test]
fn a_writer_over_memory_high_raises_high_events_and_psi_stall_on_old_and_new_kernels() {
    let out = tempfile::tempdir().unwrap();
    let output = run_lab(
        "memory-high.toml",
        out.path(),
        &["--kernel", "6.1", "--kernel", "7.2"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    for kernel in ["6.1", "7.2"] {
        let dir = out.path().join("runs/memory-high").join(kernel);
        let run: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
        assert_eq!(run["outcome"], "ok", "{kernel}: {}", run["reason"]);
        assert_eq!(run["hello"]["features"]["psi"], "yes", "{kernel}");
        let samples = samples_of(&dir);
        let last = samples.last().unwrap();
        let first = samples.first().unwrap();
        let rose = |map: &str, metric: &str| {
            let value = |sample: &Value| {
                sample[map][metric]
                    .as_u64()
                    .unwrap_or_else(|| panic!("{kernel}: no {map}.{metric} in {sample}"))
            };
            value(last) - value(first)
        };
        assert!(rose("cgroup", "high") > 0, "{kernel}: memory.events high");
        assert!(rose("cgroup", "psi_some_total") > 0, "{kernel}: cgroup PSI");
        assert!(rose("guest", "psi_some_total") > 0, "{kernel}: guest PSI");
        assert!(rose("cgroup", "pgsteal") > 0, "{kernel}: reclaim");
        assert_eq!(rose("cgroup", "oom_kill"), 0, "{kernel}");
    }
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("results.json")).unwrap())
            .unwrap();
    for run in results["runs"].as_array().unwrap() {
        assert_eq!(run["expectations"].as_array().unwrap().len(), 4);
        for expectation in run["expectations"].as_array().unwrap() {
            assert_eq!(expectation["passed"], true, "{}", expectation["detail"]);
        }
        assert!(
            run["account"]["cgroup"]["high"].as_u64().unwrap() > 0,
            "{run}"
        );
        assert!(run["account"]["guest"]["psi_some_total"].as_u64().unwrap() > 0);
    }
    let html = std::fs::read_to_string(out.path().join("index.html")).unwrap();
    assert!(html.contains("Pressure: time stalled on memory"));
    assert!(html.contains("Reclaim: pages and events per second"));
    assert!(html.contains("memory.events high"));
}

#[test]
fn a_hog_over_its_cgroup_limit_is_oom_killed_under_v1_and_v2_with_the_kernel_log_naming_it() {
    let out = tempfile::tempdir().unwrap();
    let output = run_lab("oom-kill.toml", out.path(), &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    for version in [1, 2] {
        let dir = out
            .path()
            .join(format!("runs/oom-kill/6.1/version={version}"));
        let run: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
        let what = format!("cgroup v{version}");
        assert_eq!(run["outcome"], "ok", "{what}: {}", run["reason"]);
        assert_eq!(run["processes"]["hog"]["outcome"], "oom-killed", "{what}");
        // The kernel log's victim is the hog, by pid, before the agent saw it end.
        let events = run["events"].as_array().unwrap();
        let started = events
            .iter()
            .find(|e| e["process"] == "hog" && e["event"] == "started")
            .unwrap_or_else(|| panic!("{what}: the hog never started: {events:?}"));
        let kill = events
            .iter()
            .find(|e| e["event"] == "oom_kill")
            .unwrap_or_else(|| panic!("{what}: no OOM kill from the kernel log: {events:?}"));
        assert_eq!(kill["pid"], started["pid"], "{what}: {kill}");
        assert_eq!(kill["task"], "hog", "{what}: {kill}");
        assert_eq!(kill["process"], "hog", "{what}: {kill}");
        assert!(
            kill["t_ms"].as_u64().unwrap() <= event_time(&run, "hog:ended"),
            "{what}"
        );
        let console = std::fs::read_to_string(dir.join("console.log")).unwrap();
        let pid = started["pid"].as_u64().unwrap();
        assert!(
            console.contains(&format!("Killed process {pid} (hog)")),
            "{what}: the kernel's own line in the console"
        );
        // The cgroup's own count: memory.events oom_kill (v2), memory.oom_control (v1).
        let samples = samples_of(&dir);
        let oom_kills = |sample: &Value| {
            sample["cgroup"]["oom_kill"]
                .as_u64()
                .unwrap_or_else(|| panic!("{what}: no cgroup.oom_kill in {sample}"))
        };
        assert_eq!(oom_kills(samples.first().unwrap()), 0, "{what}");
        assert_eq!(oom_kills(samples.last().unwrap()), 1, "{what}");
        // A hog of 96MiB got no further than the 48MiB limit (its RSS also counts a few pages of
        // its program and shared memory, 49-50MiB measured).
        let peak = run["processes"]["hog"]["peak"]["rss"].as_u64().unwrap() as f64 / MIB;
        assert!(peak > 30.0 && peak < 56.0, "{what}: peak RSS {peak:.1}MiB");
    }
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("results.json")).unwrap())
            .unwrap();
    for run in results["runs"].as_array().unwrap() {
        for expectation in run["expectations"].as_array().unwrap() {
            assert_eq!(expectation["passed"], true, "{}", expectation["detail"]);
        }
    }
}
