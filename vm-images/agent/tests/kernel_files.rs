//! The agent's account parsers on the files real kernels wrote: `kernel-files/<kernel>-cgroup-
//! v<N>.txt` are `tail -n +1` of `/proc/pressure/memory`, `/proc/vmstat` and the run cgroup's
//! files, captured by `just capture-kernel-files` in the guest of each catalogue kernel after
//! a writer and an anonymous hog in a 64 MiB cgroup made the kernel reclaim
//! (`kernel-files/capture-v1.toml`, `capture-v2.toml`). Under v1 the hog is OOM-killed; under
//! v2 `memory.high` at 48 MiB throttled it below memory.max (`max` and `oom_kill` stay 0 there).
//! Cgroup v1 exists on 5.10 and 6.1 only.

use std::collections::BTreeMap;
use std::path::Path;

use rsslab_agent::account;
use rsslab_agent::cgroup::{V1Files, V2Files, v1_metrics, v2_metrics};

const KERNELS: &[&str] = &["5.10", "6.1", "6.12", "7.2"];
const V1_KERNELS: &[&str] = &["5.10", "6.1"];

/// Path -> content of each `==> path <==` section.
fn sections(kernel: &str, version: u8) -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/kernel-files")
        .join(format!("{kernel}-cgroup-v{version}.txt"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "{}: {error}: run `just capture-kernel-files` to capture it",
            path.display()
        )
    });
    let mut sections = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(name) = line
            .strip_prefix("==> ")
            .and_then(|rest| rest.strip_suffix(" <=="))
        {
            if let Some((name, body)) = current.take() {
                sections.insert(name, body);
            }
            current = Some((name.to_owned(), String::new()));
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    if let Some((name, body)) = current {
        sections.insert(name, body);
    }
    sections
}

fn file<'a>(sections: &'a BTreeMap<String, String>, path: &str) -> Option<&'a str> {
    sections.get(path).map(String::as_str)
}

#[test]
fn the_guest_account_of_every_kernel_has_pressure_reclaim_and_the_v1_oom_kill() {
    for kernel in KERNELS {
        for version in [1, 2] {
            if version == 1 && !V1_KERNELS.contains(kernel) {
                continue;
            }
            let sections = sections(kernel, version);
            let guest = account::guest(
                file(&sections, "/proc/pressure/memory"),
                file(&sections, "/proc/vmstat"),
            );
            let at = format!("{kernel}, cgroup v{version}");
            for key in [
                "psi_some_total",
                "psi_full_total",
                "psi_some_avg10",
                "psi_full_avg10",
            ] {
                assert!(guest.contains_key(key), "{at}: no {key} in {guest:?}");
            }
            assert!(guest["psi_some_total"] > 0, "{at}: {guest:?}");
            assert!(
                guest["psi_some_total"] >= guest["psi_full_total"],
                "{at}: some stall includes full stall"
            );
            for key in ["pgscan", "pgsteal", "pgscan_direct", "pgmajfault"] {
                assert!(guest.contains_key(key), "{at}: no {key} in {guest:?}");
            }
            assert!(guest["pgscan"] >= guest["pgsteal"], "{at}: {guest:?}");
            assert!(
                guest["pgsteal"] > 0,
                "{at}: the limit made the kernel reclaim"
            );
            assert!(guest.contains_key("oom_kill"), "{at}");
            if version == 1 {
                assert!(guest["oom_kill"] >= 1, "{at}: the hog was OOM-killed");
            }
            assert!(guest.contains_key("workingset_refault"), "{at}");
            assert!(guest.contains_key("workingset_activate"), "{at}");
        }
    }
}

#[test]
fn a_v2_cgroup_counts_its_own_events_pressure_and_reclaim_on_every_kernel() {
    for kernel in KERNELS {
        let sections = sections(kernel, 2);
        let read = |name: &str| {
            file(&sections, &format!("/sys/fs/cgroup/rsslab/{name}")).map(str::to_owned)
        };
        let metrics = v2_metrics(&V2Files {
            stat: read("memory.stat"),
            events: read("memory.events"),
            pressure: read("memory.pressure"),
            ..V2Files::default()
        });
        let at = format!("{kernel}, cgroup v2");
        for key in ["low", "high", "max", "oom", "oom_kill"] {
            assert!(metrics.contains_key(key), "{at}: no {key} in {metrics:?}");
        }
        assert!(
            metrics["high"] > 100,
            "{at}: memory.high at 48 MiB was crossed"
        );
        assert_eq!(
            (metrics["max"], metrics["oom_kill"]),
            (0, 0),
            "{at}: throttled at memory.high, never at memory.max"
        );
        assert!(metrics["psi_some_total"] > 0, "{at}: {metrics:?}");
        assert!(metrics.contains_key("psi_full_avg10"), "{at}");
        assert!(metrics["pgscan"] >= metrics["pgsteal"], "{at}: {metrics:?}");
        assert!(metrics["pgsteal"] > 0, "{at}: {metrics:?}");
        // 5.10's memory.stat has pgscan and pgsteal, not yet their split by reclaimer.
        assert_eq!(
            metrics.contains_key("pgscan_direct"),
            *kernel != "5.10",
            "{at}"
        );
        assert!(metrics.contains_key("workingset_refault"), "{at}");
        assert!(metrics.contains_key("pgmajfault"), "{at}");
    }
}

#[test]
fn a_v1_cgroup_counts_limit_hits_oom_kills_and_major_faults() {
    for kernel in V1_KERNELS {
        let sections = sections(kernel, 1);
        let read = |name: &str| {
            file(&sections, &format!("/sys/fs/cgroup/memory/rsslab/{name}")).map(str::to_owned)
        };
        let metrics = v1_metrics(&V1Files {
            stat: read("memory.stat"),
            failcnt: read("memory.failcnt"),
            oom_control: read("memory.oom_control"),
            ..V1Files::default()
        });
        let at = format!("{kernel}, cgroup v1");
        assert!(
            metrics["max"] > 0,
            "{at}: memory.failcnt counts the limit's hits"
        );
        assert!(metrics["oom_kill"] >= 1, "{at}: {metrics:?}");
        assert!(metrics.contains_key("pgmajfault"), "{at}: {metrics:?}");
        assert!(
            !metrics.contains_key("psi_some_total"),
            "{at}: v1 has no pressure file"
        );
    }
}
