//! The run itself, from the moment processes may start to the verdict: one single-threaded loop
//! that starts processes at their triggers, samples on schedule, reads workload output and the
//! kernel log, reaps children (SIGCHLD through a signalfd), and at the end stops what still runs.

use std::collections::{BTreeMap, HashSet};
use std::os::fd::AsFd;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::signalfd::SignalFd;
use nix::unistd::Pid;
use rsslab_wire::{
    Event, EventKind, GuestMessage, Metrics, ProcessOutcome, RunOutcome, RunSpec, Sample, Verdict,
    message::ProcessResult,
};

use crate::cgroup::Cgroup;
use crate::kmsg::Kmsg;
use crate::pods::PodTree;
use crate::procs::{Exit, Place, State, Table};
use crate::restarts::Lives;
use crate::sampler::{self, Schedule};
use crate::setup::Failure;
use crate::{channel, diag, fault};

/// How long stopped processes get between SIGTERM and SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(2);
/// How long the kernel log is given to name the victim of a SIGKILL (it logs right after).
const OOM_LOG_GRACE: Duration = Duration::from_millis(300);

/// When the run started (processes may start from then on); `t_ms` counts from here.
static RUN_START: OnceLock<Instant> = OnceLock::new();

/// Milliseconds since the run started (0 before).
pub fn run_ms() -> u64 {
    RUN_START
        .get()
        .map_or(0, |start| start.elapsed().as_millis() as u64)
}

/// What the run needs beyond the spec.
pub struct Context {
    pub cgroup: Option<Cgroup>,
    /// The pods' cgroup tree (instead of `cgroup`).
    pub pods: Option<PodTree>,
    /// Where workload programs are (None: [`rsslab_wire::BIN_DIR`]).
    pub bin_dir: Option<String>,
    /// SIGCHLD, blocked in the agent since before the first fork.
    pub sigchld: SignalFd,
}

struct Run {
    ctx: Context,
    table: Table,
    kmsg: Option<Kmsg>,
    start: Instant,
    end_ms: u64,
    /// `[sample] until`, until it comes true (then `end_ms` has moved).
    until: Option<rsslab_wire::Until>,
    /// Whether `until` came true: the run samples to `end_ms` even after every process ended.
    until_fired: bool,
    /// When the last sample was taken.
    last_sample_ms: Option<u64>,
    /// When the kernel log first named an OOM kill (the `oom-kill` event).
    first_oom_ms: Option<u64>,
    schedule: Schedule,
    /// Pids the kernel log named as OOM-killed.
    oom_pids: HashSet<u32>,
    /// Where processes run: the containers' cgroups, or the run's cgroup.
    places: Vec<Place>,
    /// Per process: its place, if any.
    place_of: Vec<Option<usize>>,
    /// Per place: OOM kills in its cgroup already attributed to a process.
    ooms_attributed: Vec<u64>,
    /// With pods: each container's life across restarts.
    lives: Option<Lives>,
    cgroup_peak: Metrics,
    /// A fault to inject (a testing aid), until it strikes.
    fault: Option<rsslab_wire::fault::Fault>,
}

/// Runs the scenario's processes and returns the verdict (not yet sent).
pub fn run(spec: &RunSpec, ctx: Context) -> Verdict {
    let kmsg = Kmsg::open()
        .inspect_err(|error| {
            diag!("cannot read /dev/kmsg ({error}): OOM kills are seen in memory.events only")
        })
        .ok();
    let (places, place_of) = places(spec, &ctx);
    let ooms_attributed = places
        .iter()
        .map(|place| place.cgroup.oom_kills().unwrap_or(0))
        .collect();
    let table = Table::new(&spec.processes, spec.duration.0).with_containers(
        crate::containers::gates(spec.node.as_ref(), &spec.processes),
        crate::containers::mains(&spec.processes),
    );
    let mut run = Run {
        table,
        ctx,
        kmsg,
        start: *RUN_START.get_or_init(Instant::now),
        end_ms: spec.duration.0,
        until: spec.until.clone(),
        until_fired: false,
        last_sample_ms: None,
        first_oom_ms: None,
        schedule: Schedule::new(spec.sample_every.0),
        oom_pids: HashSet::new(),
        places,
        place_of,
        ooms_attributed,
        lives: spec.node.as_ref().map(Lives::new),
        cgroup_peak: Metrics::new(),
        fault: fault::from_kernel().filter(|_| std::process::id() == 1),
    };
    let failure = run.main_loop().err();
    run.stop_all();
    run.verdict(failure)
}

/// Where each process runs: with pods, its container's cgroup with the container's
/// `oom_score_adj` (outside every container: the root cgroup); else the run's cgroup, unless
/// it opted out.
fn places(spec: &RunSpec, ctx: &Context) -> (Vec<Place>, Vec<Option<usize>>) {
    if let Some(pods) = &ctx.pods {
        let mut places = Vec::new();
        let mut keys: Vec<&str> = Vec::new();
        let place_of = spec
            .processes
            .iter()
            .map(|process| {
                let key = process.container.as_deref()?;
                if let Some(index) = keys.iter().position(|known| *known == key) {
                    return Some(index);
                }
                let (cgroup, plan) = pods.container(key)?;
                keys.push(key);
                places.push(Place {
                    cgroup: cgroup.clone(),
                    oom_score_adj: Some(plan.oom_score_adj),
                });
                Some(places.len() - 1)
            })
            .collect();
        return (places, place_of);
    }
    let Some(cgroup) = &ctx.cgroup else {
        return (Vec::new(), vec![None; spec.processes.len()]);
    };
    let place = Place {
        cgroup: cgroup.clone(),
        oom_score_adj: None,
    };
    let place_of = spec
        .processes
        .iter()
        .map(|process| process.cgroup.then_some(0))
        .collect();
    (vec![place], place_of)
}

impl Run {
    /// The run's cgroup: the scenario's, or with pods `kubepods`.
    fn run_cgroup(&self) -> Option<&Cgroup> {
        match &self.ctx.pods {
            Some(pods) => Some(pods.kubepods()),
            None => self.ctx.cgroup.as_ref(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn main_loop(&mut self) -> Result<(), Failure> {
        loop {
            let now = self.now_ms();
            self.check_until();
            if now >= self.end_ms {
                diag!("end of the run at {} ms", self.end_ms);
                return Ok(());
            }
            if let Some(due) = self.fault.filter(|fault| now >= fault.at.0) {
                self.fault = None;
                fault::strike(due, now);
            }
            self.restart_containers(now)?;
            for i in self.table.due(now) {
                self.start_process(i, now)?;
            }
            if self.schedule.due(now) {
                self.sample(now);
            }
            // What the kernel did as the last process ended (an OOM kill's count, memory given
            // back) is only in a sample taken after it: one now, and more up to the end that
            // `[sample] until` set.
            let restart_due = self
                .lives
                .as_ref()
                .and_then(Lives::next_restart)
                .filter(|at| *at < self.end_ms);
            if self.table.finished()
                && restart_due.is_none()
                && !(self.until_fired && now < self.end_ms)
            {
                let now = self.now_ms();
                if self.last_sample_ms.is_none_or(|last| last < now) {
                    self.sample(now);
                }
                diag!("every process has ended and no trigger can fire");
                return Ok(());
            }
            let wake = [
                Some(self.schedule.next_ms()),
                self.table.next_start(),
                Some(self.end_ms),
                self.fault.map(|fault| fault.at.0),
                // A restart waits for the container's last processes to be reaped.
                restart_due.map(|at| at.max(now + 10)),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now);
            self.wait(wake.saturating_sub(self.now_ms()));
            self.handle_io();
        }
    }

    /// Once every `until` event has happened, the run ends `after` the last of them (never
    /// later than the duration).
    fn check_until(&mut self) {
        let Some(until) = &self.until else { return };
        let times: Option<Vec<u64>> = until
            .events
            .iter()
            .map(|label| match label.as_str() {
                "oom-kill" => self.first_oom_ms,
                label => self
                    .table
                    .event_ms(label)
                    .or_else(|| self.lives.as_ref()?.event_ms(label)),
            })
            .collect();
        let Some(last) = times.and_then(|times| times.into_iter().max()) else {
            return;
        };
        let end = last + until.after.0;
        diag!(
            "{} happened by {last} ms: the run ends at {end} ms",
            until.events.join(", ")
        );
        self.end_ms = self.end_ms.min(end);
        self.table.end_at(self.end_ms);
        self.until = None;
        self.until_fired = true;
    }

    fn start_process(&mut self, i: usize, now: u64) -> Result<(), Failure> {
        let proc = &self.table.procs[i];
        let program = proc.spec.program();
        // Outside a VM (the agent's own tests) the built-in workloads live elsewhere.
        let program = match (
            &self.ctx.bin_dir,
            program.strip_prefix(rsslab_wire::BIN_DIR),
        ) {
            (Some(dir), Some(name)) => format!("{dir}{name}"),
            _ => program,
        };
        let place = self.place_of[i].map(|index| (index, &self.places[index]));
        self.table.spawn(i, now, &program, place)
    }

    /// Sleeps until something is readable (pipes, kernel log, SIGCHLD) or `timeout_ms` passes.
    fn wait(&self, timeout_ms: u64) {
        let pipes = self.table.pipes();
        let mut fds: Vec<PollFd> = pipes
            .iter()
            .map(|fd| PollFd::new(*fd, PollFlags::POLLIN))
            .collect();
        fds.push(PollFd::new(self.ctx.sigchld.as_fd(), PollFlags::POLLIN));
        if let Some(kmsg) = &self.kmsg {
            fds.push(PollFd::new(kmsg.as_fd(), PollFlags::POLLIN));
        }
        let timeout = PollTimeout::from(timeout_ms.min(u64::from(u16::MAX)) as u16);
        let _ = poll(&mut fds, timeout);
    }

    /// Reads output, then the kernel log, then reaps (so an exit's cause is known first).
    fn handle_io(&mut self) {
        let now = self.now_ms();
        self.table.read_output(now);
        self.read_kmsg(now);
        while let Ok(Some(_)) = self.ctx.sigchld.read_signal() {}
        self.reap();
    }

    fn read_kmsg(&mut self, now: u64) {
        let Some(kmsg) = self.kmsg.as_mut() else {
            return;
        };
        for (pid, task) in kmsg.oom_kills() {
            // A group kill (memory.oom.group) logs its victim twice: once chosen, once as a
            // member of the group. One event per process.
            if !self.oom_pids.insert(pid) {
                continue;
            }
            self.first_oom_ms.get_or_insert(now);
            let process = self
                .table
                .by_pid(pid as i32)
                .map(|i| self.table.procs[i].spec.name.clone());
            diag!(
                "OOM killer killed pid {pid} ({task}){}",
                process
                    .as_deref()
                    .map(|name| format!(" = {name}"))
                    .unwrap_or_default()
            );
            channel::send(&GuestMessage::Event(Event {
                t_ms: now,
                process,
                kind: EventKind::OomKill { pid, task },
            }));
        }
    }

    /// Reaps every child that has ended (PID 1 also reaps orphans it inherits).
    fn reap(&mut self) {
        loop {
            let mut status = 0;
            // SAFETY: a zeroed rusage is a valid value; wait4 fills it.
            let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: plain syscall with valid pointers.
            let pid = unsafe { libc::wait4(-1, &mut status, libc::WNOHANG, &mut usage) };
            if pid <= 0 {
                return;
            }
            let exit = if libc::WIFEXITED(status) {
                Exit::Code(libc::WEXITSTATUS(status))
            } else if libc::WIFSIGNALED(status) {
                Exit::Signal(libc::WTERMSIG(status))
            } else {
                continue;
            };
            let Some(i) = self.table.by_pid(pid) else {
                continue;
            };
            let oom_killed = exit == Exit::Signal(libc::SIGKILL)
                && !self.table.procs[i].stopping
                && self.oom_killed(i, pid);
            let max_rss = (usage.ru_maxrss.max(0) as u64) * 1024;
            let now = self.now_ms();
            self.table.ended(i, exit, oom_killed, max_rss, now);
            self.end_container(i, exit, now);
            self.supervise(i, exit, now);
        }
    }

    /// Process `i` ended with `exit`: if it was a container's main process, the container has
    /// ended, what else runs in it is killed (see [`crate::containers`]), and the kubelet
    /// decides about a restart ([`crate::restarts`]), unless the run is stopping it.
    fn end_container(&mut self, i: usize, exit: Exit, now: u64) {
        let proc = &self.table.procs[i];
        if proc.main.is_some() || proc.spec.container.is_none() {
            return;
        }
        let container = proc.spec.container.clone().unwrap_or_default();
        if !proc.stopping {
            let oom_kills = proc
                .place
                .and_then(|place| self.places[place].cgroup.oom_kills())
                .unwrap_or(0);
            let exit_code = exit.runtime_code();
            if let Some(lives) = self.lives.as_mut() {
                if let Some(life) = lives.get_mut(&container) {
                    life.finished(exit_code, oom_kills, now);
                }
                lives.update(&mut self.table);
            }
        }
        for other in self.table.container_of(i) {
            if let Some(pid) = self.table.procs[other].pid {
                diag!(
                    "container {container} ended with its main process: killing {} (pid {pid})",
                    self.table.procs[other].spec.name
                );
                if killpg(Pid::from_raw(pid), Signal::SIGKILL).is_err() {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
        }
    }

    /// Process `i` ended with `exit`: a supervised process outside every container (`restart`)
    /// is started again at once, unless the run is stopping it or its policy says no.
    fn supervise(&mut self, i: usize, exit: Exit, now: u64) {
        let proc = &self.table.procs[i];
        if proc.spec.container.is_none()
            && !proc.stopping
            && proc.spec.restart.restarts(exit.runtime_code())
        {
            self.table.restart_supervised(i, now);
        }
    }

    /// Starts again each container whose restart is due and whose processes are all gone: a
    /// new cgroup for it ([`PodTree::restart_container`]), its processes pending again.
    fn restart_containers(&mut self, now: u64) -> Result<(), Failure> {
        let (Some(lives), Some(pods)) = (self.lives.as_mut(), self.ctx.pods.as_mut()) else {
            return Ok(());
        };
        for life in lives.lives.iter_mut() {
            if life.restart_at.is_none_or(|at| at > now) {
                continue;
            }
            let procs = self.table.of_container(&life.key);
            if procs
                .iter()
                .any(|&i| self.table.procs[i].state == State::Running)
            {
                continue;
            }
            let (cgroup, id) = pods.restart_container(&life.key, life.restarts + 1)?;
            if let Some(place) = procs.iter().find_map(|&i| self.place_of[i]) {
                self.places[place].cgroup = cgroup;
                self.ooms_attributed[place] = 0;
            }
            self.table.restart_container(&life.key, now);
            life.restarted(&id, now);
        }
        lives.update(&mut self.table);
        Ok(())
    }

    /// Whether the OOM killer killed process `i` (pid `pid`): named in the kernel log (given a
    /// moment to appear), or an OOM kill in its cgroup that no other process accounts for.
    fn oom_killed(&mut self, i: usize, pid: i32) -> bool {
        let deadline = Instant::now() + OOM_LOG_GRACE;
        while !self.oom_pids.contains(&(pid as u32))
            && self.kmsg.is_some()
            && Instant::now() < deadline
        {
            if let Some(kmsg) = &self.kmsg {
                let mut fds = [PollFd::new(kmsg.as_fd(), PollFlags::POLLIN)];
                let _ = poll(&mut fds, PollTimeout::from(20u8));
            }
            let now = self.now_ms();
            self.read_kmsg(now);
        }
        let place = self.table.procs[i].place;
        let in_cgroup_kill = place.is_some_and(|place| {
            self.places[place]
                .cgroup
                .oom_kills()
                .is_some_and(|kills| kills > self.ooms_attributed[place])
        });
        if let (true, Some(place)) = (in_cgroup_kill, place) {
            self.ooms_attributed[place] += 1;
        }
        self.oom_pids.contains(&(pid as u32)) || in_cgroup_kill
    }

    /// Takes one sample and sends it.
    fn sample(&mut self, now: u64) {
        let mut sample = Sample {
            t_ms: now,
            ..Sample::default()
        };
        for proc in self
            .table
            .procs
            .iter_mut()
            .filter(|proc| proc.state == State::Running)
        {
            let Some(pid) = proc.pid else { continue };
            let Some(figures) = sampler::process(pid) else {
                continue;
            };
            let mut metrics = figures.metrics;
            metrics.extend(
                proc.reported
                    .iter()
                    .map(|(name, value)| (name.clone(), *value)),
            );
            sampler::raise_peaks(&mut proc.peak, &metrics);
            sampler::raise_peaks(&mut proc.peak, &figures.marks);
            sample.process.insert(proc.spec.name.clone(), metrics);
        }
        if let Some(cgroup) = self.run_cgroup() {
            sample.cgroup = cgroup.sample();
            sampler::raise_peaks(&mut self.cgroup_peak, &sample.cgroup);
        }
        if let Some(pods) = &self.ctx.pods {
            (sample.pod, sample.container) = pods.sample();
        }
        if let Some(lives) = &self.lives {
            lives.add_to(&mut sample.container);
        }
        sample.guest = sampler::guest();
        self.last_sample_ms = Some(now);
        channel::send(&GuestMessage::Sample(sample));
    }

    /// Stops every running process: SIGTERM to its process group, SIGKILL after a grace period.
    fn stop_all(&mut self) {
        let running = |table: &Table| table.procs.iter().any(|proc| proc.state == State::Running);
        if !running(&self.table) {
            return;
        }
        for signal in [Signal::SIGTERM, Signal::SIGKILL] {
            for proc in self
                .table
                .procs
                .iter_mut()
                .filter(|proc| proc.state == State::Running)
            {
                proc.stopping = true;
                if let Some(pid) = proc.pid {
                    diag!("stopping {} (pid {pid}) with {signal}", proc.spec.name);
                    // Its own process group (descendants too), unless it left it.
                    if killpg(Pid::from_raw(pid), signal).is_err() {
                        let _ = kill(Pid::from_raw(pid), signal);
                    }
                }
            }
            let deadline = Instant::now() + TERM_GRACE;
            while running(&self.table) && Instant::now() < deadline {
                self.wait(50);
                self.handle_io();
            }
        }
        // Still there after SIGKILL (cannot really happen): recorded as stopped anyway.
        let now = self.now_ms();
        for i in 0..self.table.procs.len() {
            if self.table.procs[i].state == State::Running {
                diag!("{} did not die", self.table.procs[i].spec.name);
                self.table
                    .ended(i, Exit::Signal(libc::SIGKILL), false, 0, now);
            }
        }
    }

    fn verdict(&mut self, failure: Option<Failure>) -> Verdict {
        let now = self.now_ms();
        // The final figures (counters at their last value, memory.peak), and usage raised to
        // the kernel's own high-water mark.
        if let Some(cgroup) = self.run_cgroup() {
            let last = cgroup.sample();
            sampler::raise_peaks(&mut self.cgroup_peak, &last);
            if let Some(peak) = last.get("peak") {
                sampler::raise_peaks(&mut self.cgroup_peak, &[("usage".to_owned(), *peak)].into());
            }
        }
        let processes = self
            .table
            .procs
            .iter()
            .map(|proc| {
                let result = ProcessResult {
                    outcome: proc
                        .outcome
                        .clone()
                        .or_else(|| proc.previous_outcome.clone())
                        .unwrap_or(ProcessOutcome::NotStarted),
                    peak: proc.peak.clone(),
                    started_ms: proc.started_ms,
                    ended_ms: proc.ended_ms,
                };
                (proc.spec.name.clone(), result)
            })
            .collect::<BTreeMap<_, _>>();
        let (outcome, reason) = match failure {
            None => (RunOutcome::Ok, None),
            Some(failure) => (failure.outcome, Some(failure.reason)),
        };
        Verdict {
            t_ms: now,
            outcome,
            reason,
            processes,
            cgroup_peak: std::mem::take(&mut self.cgroup_peak),
            agent_cpu_ms: agent_cpu_ms(),
        }
    }
}

/// The verdict of a run that ended before it started (set-up failed): every process not started.
pub fn early_verdict(spec: Option<&RunSpec>, failure: Failure) -> Verdict {
    let processes = spec
        .map(|spec| {
            spec.processes
                .iter()
                .map(|proc| {
                    let result = ProcessResult {
                        outcome: ProcessOutcome::NotStarted,
                        peak: Metrics::new(),
                        started_ms: None,
                        ended_ms: None,
                    };
                    (proc.name.clone(), result)
                })
                .collect()
        })
        .unwrap_or_default();
    Verdict {
        t_ms: 0,
        outcome: failure.outcome,
        reason: Some(failure.reason),
        processes,
        cgroup_peak: Metrics::new(),
        agent_cpu_ms: agent_cpu_ms(),
    }
}

/// CPU time (user + system) this process has used so far, in ms.
fn agent_cpu_ms() -> Option<u64> {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_SELF).ok()?;
    let ms =
        |time: nix::sys::time::TimeVal| time.tv_sec() as u64 * 1000 + time.tv_usec() as u64 / 1000;
    Some(ms(usage.user_time()) + ms(usage.system_time()))
}
