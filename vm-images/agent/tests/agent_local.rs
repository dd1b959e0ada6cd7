//! The agent's run loop end to end, outside a VM: run as an ordinary process it skips the
//! guest set-up and speaks on stdout, starting the real workloads through links named after
//! them. Checks triggers, phases, samples, outcomes and the one verdict at the end.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use rsslab_wire::{EventKind, GuestMessage, ProcessOutcome, RunOutcome};

/// Runs the agent on `spec` in a fresh directory holding links named after `workloads`;
/// returns the directory (the caller removes it) and every message the agent sent.
fn run_agent(name: &str, workloads: &[&str], spec: &str) -> (PathBuf, Vec<GuestMessage>) {
    let dir = std::env::temp_dir().join(format!("rsslab-agent-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for workload in workloads {
        let link = dir.join(workload);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_rsslab-workload"), &link).unwrap();
    }
    let spec_path = dir.join("run.json");
    std::fs::write(&spec_path, spec).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_rsslab-agent"))
        .arg(&spec_path)
        .env("RSSLAB_BIN_DIR", &dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let messages = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect();
    (dir, messages)
}

#[test]
fn a_run_starts_processes_at_their_triggers_and_ends_with_one_verdict() {
    let spec = r#"{
        "run_id": "local/test", "sample_every": "100ms", "duration": "4s",
        "processes": [
            {"name": "service", "workload": "heap-churn",
             "args": {"heap": "32MiB", "live": "8MiB", "release": "dontneed", "hold_allocated": "300ms", "hold": "300ms", "exit": true}},
            {"name": "follower", "workload": "heap-churn", "start": {"after": "service", "phase": "released", "delay": "200ms"},
             "env": {"GODEBUG": "madvdontneed=1"},
             "args": {"heap": "4MiB", "hold_allocated": "0ms", "hold": "0ms", "exit": true}},
            {"name": "after-end", "workload": "balloon", "start": {"after": "follower"},
             "args": {"step": "4MiB", "every": "50ms", "until_available": "0B", "max": "8MiB"}},
            {"name": "never", "workload": "balloon", "start": {"after": "service", "phase": "no-such-phase"}, "args": {}}
        ]
    }"#;
    let (dir, messages) = run_agent("local", &["heap-churn", "balloon"], spec);

    assert!(matches!(messages.first(), Some(GuestMessage::Hello(_))));
    let verdicts: Vec<_> = messages
        .iter()
        .filter(|m| matches!(m, GuestMessage::Verdict(_)))
        .collect();
    assert_eq!(verdicts.len(), 1);
    let Some(GuestMessage::Verdict(verdict)) = messages.last() else {
        panic!("the verdict is last")
    };
    assert_eq!(verdict.outcome, RunOutcome::Ok, "{:?}", verdict.reason);
    assert!(
        verdict.t_ms >= 4000 && verdict.t_ms < 8000,
        "ends at the duration: {}",
        verdict.t_ms
    );

    let outcomes: BTreeMap<&str, &ProcessOutcome> = verdict
        .processes
        .iter()
        .map(|(name, result)| (name.as_str(), &result.outcome))
        .collect();
    assert_eq!(outcomes["service"], &ProcessOutcome::Exited(0));
    assert_eq!(outcomes["follower"], &ProcessOutcome::Exited(0));
    assert_eq!(outcomes["after-end"], &ProcessOutcome::RunningAtEnd);
    assert_eq!(outcomes["never"], &ProcessOutcome::NotStarted);

    // Event times by label.
    let mut at = BTreeMap::new();
    for message in &messages {
        if let GuestMessage::Event(event) = message {
            at.entry(event.label()).or_insert(event.t_ms);
            if let EventKind::Log { message } = &event.kind {
                panic!("unexpected log line: {message}");
            }
        }
    }
    assert!(
        at["follower:started"] >= at["service:released"] + 200,
        "{at:?}"
    );
    assert!(at["after-end:started"] >= at["follower:ended"], "{at:?}");
    assert!(at.contains_key("after-end:full"), "{at:?}");

    let service = &verdict.processes["service"];
    assert!(
        service.peak["rss"] >= 32 << 20,
        "peak rss {}",
        service.peak["rss"]
    );
    assert_eq!(service.peak["heap_released"], 24 << 20);
    let samples: Vec<_> = messages
        .iter()
        .filter_map(|m| {
            if let GuestMessage::Sample(sample) = m {
                Some(sample)
            } else {
                None
            }
        })
        .collect();
    assert!(
        samples.len() >= 30,
        "about 40 samples in 4s: {}",
        samples.len()
    );
    assert!(samples.windows(2).all(|pair| pair[1].t_ms > pair[0].t_ms));
    assert!(
        samples
            .iter()
            .all(|sample| sample.guest["mem_total"] > 0 && sample.cgroup.is_empty())
    );
    let released_rss = samples
        .iter()
        .filter(|sample| sample.t_ms > at["service:released"] + 50)
        .find_map(|sample| {
            sample
                .process
                .get("service")
                .map(|metrics| metrics["rss_anon"])
        });
    // The service holds 300ms after its release, sampled every 100ms.
    let rss_anon = released_rss.expect("a sample of the service after its release");
    assert!(
        rss_anon < 16 << 20,
        "after MADV_DONTNEED of 24MiB: {rss_anon}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_run_ends_after_its_until_event_not_at_the_duration() {
    let spec = r#"{
        "run_id": "local/until", "sample_every": "100ms", "duration": "30s",
        "until": {"events": ["service:released"], "after": "700ms"},
        "processes": [
            {"name": "service", "workload": "heap-churn",
             "args": {"heap": "16MiB", "live": "4MiB", "release": "dontneed", "hold_allocated": "300ms", "hold": "60s"}}
        ]
    }"#;
    let (dir, messages) = run_agent("until", &["heap-churn"], spec);
    let released = messages
        .iter()
        .find_map(|m| match m {
            GuestMessage::Event(event) if event.label() == "service:released" => Some(event.t_ms),
            _ => None,
        })
        .expect("the service reports released");
    let last_sample = messages
        .iter()
        .filter_map(|m| match m {
            GuestMessage::Sample(sample) => Some(sample.t_ms),
            _ => None,
        })
        .max()
        .unwrap();
    let Some(GuestMessage::Verdict(verdict)) = messages.last() else {
        panic!("the verdict is last")
    };
    assert_eq!(verdict.outcome, RunOutcome::Ok, "{:?}", verdict.reason);
    assert!(
        last_sample >= released + 600 && last_sample <= released + 800,
        "sampling goes on 700ms after released ({released} ms), until {last_sample} ms"
    );
    assert!(
        verdict.t_ms < 10_000,
        "the run ends long before its 30s duration: {} ms",
        verdict.t_ms
    );
    assert_eq!(
        verdict.processes["service"].outcome,
        ProcessOutcome::RunningAtEnd
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_supervised_process_is_started_again_at_once_as_its_policy_says() {
    // Each life of `again` lasts about 300 ms and exits 0: `always` starts it again at once,
    // until the run's end at 2 s. `once` exits 0 too: `on-failure` leaves it ended.
    let spec = r#"{
        "run_id": "local/supervisor", "sample_every": "100ms", "duration": "2s",
        "processes": [
            {"name": "again", "workload": "heap-churn", "restart": "always",
             "args": {"heap": "4MiB", "hold_allocated": "150ms", "hold": "150ms", "exit": true}},
            {"name": "once", "workload": "heap-churn", "restart": "on-failure",
             "args": {"heap": "4MiB", "hold_allocated": "0ms", "hold": "0ms", "exit": true}}
        ]
    }"#;
    let (dir, messages) = run_agent("supervisor", &["heap-churn"], spec);
    let times = |label: &str| -> Vec<u64> {
        messages
            .iter()
            .filter_map(|m| match m {
                GuestMessage::Event(event) if event.label() == label => Some(event.t_ms),
                _ => None,
            })
            .collect()
    };
    let starts = times("again:started");
    let restarts = times("again:restarted");
    let ends = times("again:ended");
    assert!(starts.len() >= 3, "started {starts:?}");
    assert_eq!(restarts.len(), starts.len() - 1, "{restarts:?} {starts:?}");
    for (end, restart) in ends.iter().zip(&restarts) {
        assert!(
            restart >= end && restart - end < 50,
            "ended {end}, restarted {restart}"
        );
    }
    assert_eq!(times("once:started").len(), 1);
    assert!(times("once:restarted").is_empty());
    let Some(GuestMessage::Verdict(verdict)) = messages.last() else {
        panic!("the verdict is last")
    };
    assert_eq!(verdict.processes["once"].outcome, ProcessOutcome::Exited(0));
    std::fs::remove_dir_all(&dir).unwrap();
}
