//! Containers that end and start again, as the container runtime and the kubelet do it.
//!
//! When a container's main process has ended (and the rest of the container with it, see
//! [`crate::containers`]), the runtime reports why ([`rsslab_kubelet::restart::reason`]:
//! `OOMKilled` when its cgroup's OOM kill count rose while it ran, else `Error` or
//! `Completed` by the exit code), and the kubelet decides whether to start it again and when
//! (the pod's `restartPolicy` and the CrashLoopBackOff of [`rsslab_kubelet::restart`]). A
//! restart is a new container: the runtime makes a new cgroup for it (a new id, the kubelet's
//! values written again) and removes the old one. What the old container still had charged
//! (its page cache) stays charged to the pod: the kernel keeps a removed memory cgroup until
//! its pages are gone, and counts them in its parents. Each change is an event labelled
//! `<pod>/<container>:oom-killed` (or `:error`, `:completed`), `:back-off` and `:restarted`,
//! and each sample has the container's `restarts` and its terminations by reason.

use std::collections::BTreeMap;

use rsslab_kubelet::restart::{self, BackOff, Kind, Reason};
use rsslab_wire::message::termination_label;
use rsslab_wire::pod::{NodeSpec, container_key};
use rsslab_wire::{Event, EventKind, GuestMessage, Metrics};

use crate::channel;

/// One container's life across its restarts.
pub struct Life {
    /// `<pod>/<container>`.
    pub key: String,
    kind: Kind,
    policy: rsslab_wire::pod::RestartPolicy,
    back_off: BackOff,
    /// How often it was started again.
    pub restarts: u32,
    /// Its cgroup's OOM kill count when it (re)started.
    oom_kills_at_start: u64,
    /// How often it ended, by reason.
    terminated: BTreeMap<Reason, u64>,
    /// When the kubelet starts it again.
    pub restart_at: Option<u64>,
    /// When each of its events first happened (`oom-killed`, `back-off`, ...).
    first: BTreeMap<&'static str, u64>,
}

/// Every container of the node's pods.
pub struct Lives {
    pub lives: Vec<Life>,
}

impl Lives {
    /// Every container of `node`, with the back-off its kubelet uses.
    pub fn new(node: &NodeSpec) -> Lives {
        let periods = restart::periods(&rsslab_kubelet::settings::resolve(node));
        let mut lives = Vec::new();
        for pod in &node.pods {
            let inits = pod.init_containers.iter().map(|container| {
                let kind = if container.sidecar {
                    Kind::Sidecar
                } else {
                    Kind::Init
                };
                (container, kind)
            });
            let regular = pod.containers.iter().map(|c| (c, Kind::Regular));
            for (container, kind) in inits.chain(regular) {
                lives.push(Life {
                    key: container_key(&pod.name, &container.name),
                    kind,
                    policy: pod.restart_policy,
                    back_off: BackOff::new(periods),
                    restarts: 0,
                    oom_kills_at_start: 0,
                    terminated: BTreeMap::new(),
                    restart_at: None,
                    first: BTreeMap::new(),
                });
            }
        }
        Lives { lives }
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Life> {
        self.lives.iter_mut().find(|life| life.key == key)
    }

    /// The earliest restart still to come.
    pub fn next_restart(&self) -> Option<u64> {
        self.lives.iter().filter_map(|life| life.restart_at).min()
    }

    /// When `<pod>/<container>:<event>` first happened.
    pub fn event_ms(&self, label: &str) -> Option<u64> {
        let (key, event) = label.rsplit_once(':')?;
        let life = self.lives.iter().find(|life| life.key == key)?;
        life.first.get(event).copied()
    }

    /// Tells the process table which container events have happened and which containers
    /// are to start again (for triggers on them).
    pub fn update(&self, table: &mut crate::procs::Table) {
        table.restarts_pending = self
            .lives
            .iter()
            .filter(|life| life.restart_at.is_some())
            .map(|life| life.key.clone())
            .collect();
        for life in &self.lives {
            for (event, at) in &life.first {
                table
                    .container_events
                    .entry(format!("{}:{event}", life.key))
                    .or_insert(*at);
            }
        }
    }

    /// Adds each container's `restarts` and terminations to its metrics in a sample.
    pub fn add_to(&self, containers: &mut BTreeMap<String, Metrics>) {
        for life in &self.lives {
            let metrics = containers.entry(life.key.clone()).or_default();
            metrics.insert("restarts".into(), u64::from(life.restarts));
            for reason in [Reason::OomKilled, Reason::Error, Reason::Completed] {
                let count = life.terminated.get(&reason).copied().unwrap_or(0);
                metrics.insert(
                    format!(
                        "terminated_{}",
                        termination_label(reason.as_str()).replace('-', "_")
                    ),
                    count,
                );
            }
        }
    }
}

impl Life {
    /// The container's main process ended at `now_ms` with `exit_code` (as the runtime reports
    /// it); its cgroup's OOM kill count is now `oom_kills`. Sends the termination (and the
    /// back-off) and schedules the restart, if any, before `end_ms`.
    pub fn finished(&mut self, exit_code: i32, oom_kills: u64, now_ms: u64) {
        let reason = restart::reason(oom_kills > self.oom_kills_at_start, exit_code);
        *self.terminated.entry(reason).or_default() += 1;
        crate::diag!(
            "container {} terminated: {} (exit code {exit_code}, restart count {})",
            self.key,
            reason.as_str(),
            self.restarts
        );
        self.send(
            now_ms,
            termination_label(reason.as_str()),
            EventKind::ContainerTerminated {
                container: self.key.clone(),
                reason: reason.as_str().to_owned(),
                exit_code,
                restart_count: self.restarts,
            },
        );
        if !restart::should_restart(self.policy, self.kind, exit_code) {
            crate::diag!("container {}: not restarted ({:?})", self.key, self.policy);
            return;
        }
        let restart = self.back_off.restart(now_ms);
        if restart.delay_ms > 0 {
            crate::diag!(
                "container {}: back-off {} ms (CrashLoopBackOff)",
                self.key,
                restart.delay_ms
            );
            self.send(
                now_ms,
                "back-off",
                EventKind::ContainerBackOff {
                    container: self.key.clone(),
                    delay_ms: restart.delay_ms,
                    restart_count: self.restarts,
                },
            );
        }
        self.restart_at = Some(restart.at_ms);
    }

    /// The container starts again now, as container `id`.
    pub fn restarted(&mut self, id: &str, now_ms: u64) {
        self.restarts += 1;
        self.restart_at = None;
        self.oom_kills_at_start = 0;
        crate::diag!(
            "container {} restarted as {id} (restart count {})",
            self.key,
            self.restarts
        );
        self.send(
            now_ms,
            "restarted",
            EventKind::ContainerRestarted {
                container: self.key.clone(),
                id: id.to_owned(),
                restart_count: self.restarts,
            },
        );
    }

    fn send(&mut self, now_ms: u64, what: &'static str, kind: EventKind) {
        self.first.entry(what).or_insert(now_ms);
        channel::send(&GuestMessage::Event(Event {
            t_ms: now_ms,
            process: None,
            kind,
        }));
    }
}
