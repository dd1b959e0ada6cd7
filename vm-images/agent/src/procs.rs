//! The process table: when each process may start (its trigger), starting it (in the cgroup or
//! not), turning its stdout reports and output lines into events and metrics, forwarding its
//! output (bounded: [`OutputKeeper`]), and how it ended.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use regex_lite::Regex;
use rsslab_wire::{
    Event, EventKind, GuestMessage, Metrics, Output, ProcessOutcome, ProcessSpec, Stream,
    Supervisor, WorkloadReport, signal_name,
};

use crate::channel;
use crate::containers::{Gate, Until};
use crate::setup::Failure;

/// PATH for workloads (env from the spec comes on top).
const PATH: &str = "/bin:/usr/bin:/sbin:/usr/sbin";
/// stderr lines copied to the console per process; later ones are counted, not copied.
const MAX_LOG_LINES: usize = 100;
/// Longest line kept from a workload's output.
const MAX_LINE: usize = 4096;
/// A phase a workload reports when the kernel refused its start-up memory (then it exits).
pub const ENOMEM_PHASE: &str = "enomem-at-start";
/// The exit code of a Go program that died in `runtime.throw` (a "fatal error").
const GO_FATAL_EXIT: i32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Pending,
    Running,
    Ended,
}

/// When a pending process can start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// At this run time (ms).
    At(u64),
    /// Not yet known: what it waits for may still happen.
    Waiting,
    /// Can never fire (the process it waits for ended without the phase, or never starts).
    Never,
}

/// How a child ended, from waitpid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    /// The exit code as the container runtime reports it: 128 + the signal for a signal
    /// ([`rsslab_kubelet::restart::exit_code`]).
    pub fn runtime_code(self) -> i32 {
        match self {
            Exit::Code(code) => rsslab_kubelet::restart::exit_code(Some(code), None),
            Exit::Signal(signal) => rsslab_kubelet::restart::exit_code(None, Some(signal)),
        }
    }
}

/// One process of the run.
pub struct Proc {
    pub spec: ProcessSpec,
    pub state: State,
    pub pid: Option<i32>,
    /// Where it runs (an index of the run's places: its container's cgroup, or the run's
    /// cgroup); `None`: in the root cgroup.
    pub place: Option<usize>,
    /// What it waits for beside its own `start` (its container's order in the pod).
    pub gate: Option<Gate>,
    /// Its container's main process, when it is not the main itself.
    pub main: Option<usize>,
    /// Its container has ended (its main process did): it starts no more, until the container
    /// is restarted.
    pub container_ended: bool,
    /// Its container was restarted: the main process starts then, instead of at its own
    /// `start`.
    pub restart_at: Option<u64>,
    /// How its previous life in a restarted container ended (its outcome until it ends again).
    pub previous_outcome: Option<ProcessOutcome>,
    pub started_ms: Option<u64>,
    pub ended_ms: Option<u64>,
    /// First time each phase was reported.
    pub phases: BTreeMap<String, u64>,
    /// Latest workload-reported metrics.
    pub reported: Metrics,
    /// Highest value seen of every metric.
    pub peak: Metrics,
    pub outcome: Option<ProcessOutcome>,
    /// Set when the agent stops it at the end of the run.
    pub stopping: bool,
    stdout: Option<LineReader>,
    stderr: Option<LineReader>,
    /// What is forwarded of each stream.
    stdout_kept: OutputKeeper,
    stderr_kept: OutputKeeper,
    /// Phases from output lines: name, pattern (`phases` of exec and go-source).
    output_phases: Vec<(String, Regex)>,
    log_lines: usize,
    /// A workload report arrived on stdout: a Go program reached `main`.
    reported_any: bool,
    /// A Go runtime "fatal error: ... out of memory" came before any report: the kernel
    /// refused the runtime's start-up mappings (see [`is_go_runtime_enomem`]).
    go_enomem_before_main: bool,
}

/// Where a process runs: a cgroup to join and the `oom_score_adj` to take (a container's).
#[derive(Debug, Clone)]
pub struct Place {
    pub cgroup: crate::cgroup::Cgroup,
    pub oom_score_adj: Option<i32>,
}

/// Every process of the run, in spec order.
pub struct Table {
    pub procs: Vec<Proc>,
    /// The run's end: a trigger at or after it never fires.
    end_ms: u64,
    /// When each container event first happened (`<pod>/<container>:restarted` -> ms), for
    /// triggers `start = { after = "<pod>/<container>", phase = "<event>" }`.
    pub container_events: BTreeMap<String, u64>,
    /// Containers the kubelet is to start again.
    pub restarts_pending: std::collections::BTreeSet<String>,
}

impl Table {
    pub fn new(specs: &[ProcessSpec], end_ms: u64) -> Table {
        let procs = specs
            .iter()
            .map(|spec| Proc {
                spec: spec.clone(),
                state: State::Pending,
                pid: None,
                place: None,
                gate: None,
                main: None,
                container_ended: false,
                restart_at: None,
                previous_outcome: None,
                started_ms: None,
                ended_ms: None,
                phases: BTreeMap::new(),
                reported: Metrics::new(),
                peak: Metrics::new(),
                outcome: None,
                stopping: false,
                stdout: None,
                stderr: None,
                stdout_kept: OutputKeeper::new(Stream::Stdout),
                stderr_kept: OutputKeeper::new(Stream::Stderr),
                output_phases: output_phases(spec),
                log_lines: 0,
                reported_any: false,
                go_enomem_before_main: false,
            })
            .collect();
        Table {
            procs,
            end_ms,
            container_events: BTreeMap::new(),
            restarts_pending: Default::default(),
        }
    }

    /// Sets what each process waits for and its container's main process
    /// ([`crate::containers`]).
    pub fn with_containers(mut self, gates: Vec<Option<Gate>>, mains: Vec<Option<usize>>) -> Table {
        for (proc, (gate, main)) in self.procs.iter_mut().zip(gates.into_iter().zip(mains)) {
            proc.gate = gate;
            proc.main = main;
        }
        self
    }

    /// The running processes that share process `main`'s container, which has ended with it.
    pub fn container_of(&mut self, main: usize) -> Vec<usize> {
        let mut running = Vec::new();
        for (i, proc) in self.procs.iter_mut().enumerate() {
            if proc.main == Some(main) {
                proc.container_ended = true;
                if proc.state == State::Running {
                    running.push(i);
                }
            }
        }
        running
    }

    /// The processes of container `key` (`<pod>/<container>`), its main process first.
    pub fn of_container(&self, key: &str) -> Vec<usize> {
        (0..self.procs.len())
            .filter(|&i| self.procs[i].spec.container.as_deref() == Some(key))
            .collect()
    }

    /// Container `key` is started again at `at_ms`: each of its processes is pending again,
    /// the main process due at `at_ms`, the others once it has started (and their own
    /// `start` allows, counted in this life: its phases start afresh). Their outputs go on
    /// where they were.
    pub fn restart_container(&mut self, key: &str, at_ms: u64) {
        for i in self.of_container(key) {
            self.restart(i, at_ms);
        }
    }

    /// Process `i`, outside every container, is started again by its supervisor: pending,
    /// due now, with the event `<process>:restarted`.
    pub fn restart_supervised(&mut self, i: usize, now_ms: u64) {
        self.restart(i, now_ms);
        let proc = &mut self.procs[i];
        proc.phases.insert(Supervisor::RESTARTED.to_owned(), now_ms);
        crate::diag!("{} ended: its supervisor starts it again", proc.spec.name);
        send(
            now_ms,
            Some(&proc.spec.name),
            EventKind::Phase {
                phase: Supervisor::RESTARTED.to_owned(),
            },
        );
    }

    /// Makes process `i` pending again, as new, due at `at_ms` when it is the main program of
    /// its container or outside every container (the others follow their main program).
    fn restart(&mut self, i: usize, at_ms: u64) {
        let proc = &mut self.procs[i];
        proc.previous_outcome = proc.outcome.take().or(proc.previous_outcome.take());
        proc.state = State::Pending;
        proc.pid = None;
        proc.place = None;
        proc.container_ended = false;
        proc.restart_at = proc.main.is_none().then_some(at_ms);
        proc.started_ms = None;
        proc.ended_ms = None;
        proc.phases.clear();
        proc.reported.clear();
        proc.stopping = false;
        proc.stdout_kept = OutputKeeper::new(Stream::Stdout);
        proc.stderr_kept = OutputKeeper::new(Stream::Stderr);
        proc.log_lines = 0;
        proc.reported_any = false;
        proc.go_enomem_before_main = false;
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.procs.iter().position(|proc| proc.spec.name == name)
    }

    pub fn by_pid(&self, pid: i32) -> Option<usize> {
        self.procs
            .iter()
            .position(|proc| proc.pid == Some(pid) && proc.state == State::Running)
    }

    /// When process `i` can start (see [`rsslab_wire::Start`]).
    pub fn trigger(&self, i: usize) -> Trigger {
        self.trigger_at_depth(i, 0)
    }

    fn trigger_at_depth(&self, i: usize, depth: usize) -> Trigger {
        match self.unbounded_trigger(i, depth) {
            Trigger::At(at) if at >= self.end_ms => Trigger::Never,
            trigger => trigger,
        }
    }

    /// The later of the process's own trigger and its gate's.
    fn unbounded_trigger(&self, i: usize, depth: usize) -> Trigger {
        if self.procs[i].container_ended || depth > self.procs.len() {
            return Trigger::Never;
        }
        let own = self.own_trigger(i, depth);
        let Some(gate) = self.procs[i].gate else {
            return own;
        };
        match (own, self.gate_trigger(gate, depth)) {
            (Trigger::Never, _) | (_, Trigger::Never) => Trigger::Never,
            (Trigger::At(own), Trigger::At(gate)) => Trigger::At(own.max(gate)),
            _ => Trigger::Waiting,
        }
    }

    /// When `gate` opens: the awaited process started, or exited 0.
    fn gate_trigger(&self, gate: Gate, depth: usize) -> Trigger {
        let dep = &self.procs[gate.after];
        let opened = match gate.until {
            Until::Started => dep.started_ms,
            Until::ExitedZero => match (&dep.outcome, dep.ended_ms) {
                (Some(ProcessOutcome::Exited(0)), Some(at)) => Some(at),
                (Some(_), _) => return Trigger::Never,
                (None, _) => None,
            },
        };
        if let Some(at) = opened {
            return Trigger::At(at);
        }
        match dep.state {
            State::Running => Trigger::Waiting,
            State::Ended => Trigger::Never,
            State::Pending => match self.trigger_at_depth(gate.after, depth + 1) {
                Trigger::Never => Trigger::Never,
                _ => Trigger::Waiting,
            },
        }
    }

    fn own_trigger(&self, i: usize, depth: usize) -> Trigger {
        if let Some(at) = self.procs[i].restart_at {
            return Trigger::At(at);
        }
        let start = &self.procs[i].spec.start;
        let Some(after) = &start.after else {
            return Trigger::At(start.delay.0);
        };
        if after.contains('/') {
            return self.container_trigger(after, start.phase.as_deref(), start.delay.0);
        }
        // A cycle of triggers (the runner rejects them) can never fire.
        let Some(dep) = self.index(after).filter(|_| depth <= self.procs.len()) else {
            return Trigger::Never;
        };
        let dep_proc = &self.procs[dep];
        let happened = match &start.phase {
            Some(phase) => dep_proc.phases.get(phase).copied(),
            None => dep_proc.ended_ms,
        };
        if let Some(at) = happened {
            return Trigger::At(at + start.delay.0);
        }
        match dep_proc.state {
            State::Running => Trigger::Waiting,
            State::Ended => Trigger::Never,
            State::Pending => match self.trigger_at_depth(dep, depth + 1) {
                Trigger::Never => Trigger::Never,
                _ => Trigger::Waiting,
            },
        }
    }

    /// When a process waiting for container event `<after>:<event>` starts: `delay` after it
    /// happened; while it has not, waiting as long as the container may still have it (a
    /// process of it pending or running, or a restart to come).
    fn container_trigger(&self, after: &str, event: Option<&str>, delay: u64) -> Trigger {
        let label = format!("{after}:{}", event.unwrap_or_default());
        if let Some(at) = self.container_events.get(&label) {
            return Trigger::At(at + delay);
        }
        let alive = self
            .of_container(after)
            .iter()
            .any(|&i| self.procs[i].state != State::Ended)
            || self.restarts_pending.contains(after);
        if alive {
            Trigger::Waiting
        } else {
            Trigger::Never
        }
    }

    /// Whether the run has nothing left to do: nothing running, and no pending process that
    /// can still start before the end.
    pub fn finished(&self) -> bool {
        self.procs
            .iter()
            .enumerate()
            .all(|(i, proc)| match proc.state {
                State::Running => false,
                State::Ended => true,
                State::Pending => self.trigger(i) == Trigger::Never,
            })
    }

    /// When the event `<process>:started`, `<process>:<phase>` or `<process>:ended` first
    /// happened (`oom-kill` is the run's, not the table's: `None` here).
    pub fn event_ms(&self, label: &str) -> Option<u64> {
        let (name, event) = label.split_once(':')?;
        let proc = &self.procs[self.index(name)?];
        match event {
            "started" => proc.started_ms,
            "ended" => proc.ended_ms,
            phase => proc.phases.get(phase).copied(),
        }
    }

    /// Moves the run's end earlier (a `[sample] until` came true): triggers at or after it
    /// never fire.
    pub fn end_at(&mut self, end_ms: u64) {
        self.end_ms = self.end_ms.min(end_ms);
    }

    /// The earliest known start time of a pending process.
    pub fn next_start(&self) -> Option<u64> {
        (0..self.procs.len())
            .filter(|&i| self.procs[i].state == State::Pending)
            .filter_map(|i| match self.trigger(i) {
                Trigger::At(at) => Some(at),
                _ => None,
            })
            .min()
    }

    /// Pending processes whose trigger time has come.
    pub fn due(&self, now_ms: u64) -> Vec<usize> {
        (0..self.procs.len())
            .filter(|&i| self.procs[i].state == State::Pending)
            .filter(|&i| matches!(self.trigger(i), Trigger::At(at) if at <= now_ms))
            .collect()
    }

    /// Starts process `i`: `program` with the workload's [`argv`](rsslab_wire::Workload::argv), env from the spec, stdin /dev/null, stdout and
    /// stderr piped to the agent, in its own process group; between fork and exec it joins its
    /// place's cgroup (by writing "0" to the place's `cgroup.procs`, opened here) and takes the
    /// place's `oom_score_adj`, as the runtime gives a container's processes. A refused start
    /// for lack of memory is the process's outcome; any other failure is the run's.
    pub fn spawn(
        &mut self,
        i: usize,
        now_ms: u64,
        program: &str,
        place: Option<(usize, &Place)>,
    ) -> Result<(), Failure> {
        let proc = &mut self.procs[i];
        let name = proc.spec.name.clone();
        let mut command = Command::new(program);
        command
            .args(proc.spec.workload.argv())
            .env_clear()
            .env("PATH", PATH)
            .env("HOME", "/tmp")
            .envs(&proc.spec.env)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let procs_file = match place {
            Some((_, place)) => {
                let path = &place.cgroup.procs_file();
                Some(
                    std::fs::OpenOptions::new()
                        .write(true)
                        .open(path)
                        .map_err(|error| {
                            Failure::infra(format!(
                                "starting {name}: opening {}: {error}",
                                path.display()
                            ))
                        })?,
                )
            }
            None => None,
        };
        if let Some(file) = &procs_file {
            let fd = file.as_raw_fd();
            // SAFETY: between fork and exec only async-signal-safe calls: write(2) on an open fd.
            unsafe {
                command.pre_exec(move || {
                    if libc::write(fd, b"0".as_ptr().cast(), 1) == 1 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        if let Some(adjust) = place.and_then(|(_, place)| place.oom_score_adj) {
            let value = adjust.to_string().into_bytes();
            // SAFETY: between fork and exec only async-signal-safe calls: open(2), write(2),
            // close(2) on the child's own /proc/self/oom_score_adj, with a path and a value
            // made before the fork.
            unsafe {
                command.pre_exec(move || {
                    let fd = libc::open(c"/proc/self/oom_score_adj".as_ptr(), libc::O_WRONLY);
                    if fd < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    let written = libc::write(fd, value.as_ptr().cast(), value.len());
                    libc::close(fd);
                    if written == value.len() as isize {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        if proc.spec.emulate_no_madv_free {
            // SAFETY: deny_madv_free only makes raw system calls on a static filter. pre_exec
            // closures run in the order added: after joining the cgroup, so that write is not
            // filtered (it would not be anyway).
            unsafe { command.pre_exec(crate::seccomp::deny_madv_free) };
        }
        let child = match command.spawn() {
            Ok(child) => child,
            Err(error) if error.raw_os_error() == Some(libc::ENOMEM) => {
                crate::diag!("{name}: {program} refused for lack of memory: {error}");
                proc.not_started(ProcessOutcome::EnomemAtStart, program, &error, now_ms);
                return Ok(());
            }
            Err(error) if proc.spec.workload.program_io().is_some() => {
                // The user's program: its failure to start is its outcome, as a shell
                // reports it (127: not found, 126: found but not executable).
                let code = if error.kind() == ErrorKind::NotFound {
                    127
                } else {
                    126
                };
                crate::diag!("{name}: could not start {program}: {error}");
                proc.not_started(ProcessOutcome::Exited(code), program, &error, now_ms);
                return Ok(());
            }
            Err(error) => {
                return Err(Failure::infra(format!(
                    "starting {name} ({program}): {error}"
                )));
            }
        };
        let pid = child.id() as i32;
        proc.pid = Some(pid);
        proc.place = place.map(|(index, _)| index);
        proc.state = State::Running;
        proc.started_ms = Some(now_ms);
        let mut child = child;
        proc.stdout = child
            .stdout
            .take()
            .map(|pipe| LineReader::new(OwnedFd::from(pipe)));
        proc.stderr = child
            .stderr
            .take()
            .map(|pipe| LineReader::new(OwnedFd::from(pipe)));
        // The child is reaped by the run loop's waitpid(-1); dropping `Child` does not wait.
        crate::diag!("started {name} as pid {pid}: {program}");
        let oom_score_adj = place
            .and_then(|(_, place)| place.oom_score_adj)
            .and_then(|_| std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).ok())
            .and_then(|text| text.trim().parse().ok());
        send(
            now_ms,
            Some(&name),
            EventKind::Started {
                pid: pid as u32,
                oom_score_adj,
            },
        );
        Ok(())
    }

    /// The open output pipes, to poll.
    pub fn pipes(&self) -> Vec<BorrowedFd<'_>> {
        self.procs
            .iter()
            .flat_map(|proc| [proc.stdout.as_ref(), proc.stderr.as_ref()])
            .flatten()
            .filter(|reader| !reader.eof)
            .map(|reader| reader.file.as_fd())
            .collect()
    }

    /// Reads what every process wrote and turns it into events and metrics.
    pub fn read_output(&mut self, now_ms: u64) {
        for i in 0..self.procs.len() {
            self.read_output_of(i, now_ms);
        }
    }

    /// Reads what process `i` wrote (all of it, once it has exited).
    pub fn read_output_of(&mut self, i: usize, now_ms: u64) {
        let proc = &mut self.procs[i];
        if let Some(reader) = proc.stdout.as_mut() {
            for line in reader.read_lines() {
                proc.stdout_line(&line, now_ms);
            }
        }
        if let Some(reader) = proc.stderr.as_mut() {
            for line in reader.read_lines() {
                proc.stderr_line(&line, now_ms);
            }
        }
    }

    /// Records that process `i` ended, and how; closes its pipes and sends `ended`.
    pub fn ended(&mut self, i: usize, exit: Exit, oom_killed: bool, max_rss: u64, now_ms: u64) {
        self.read_output_of(i, now_ms);
        let proc = &mut self.procs[i];
        let enomem = proc.phases.contains_key(ENOMEM_PHASE)
            || (proc.go_enomem_before_main && exit == Exit::Code(GO_FATAL_EXIT));
        let outcome = outcome(exit, proc.stopping, oom_killed, enomem);
        crate::diag!(
            "{} (pid {:?}) ended: {exit:?} -> {outcome}",
            proc.spec.name,
            proc.pid
        );
        crate::sampler::raise_peaks(&mut proc.peak, &[("rss".to_owned(), max_rss)].into());
        if proc.log_lines > MAX_LOG_LINES {
            let dropped = proc.log_lines - MAX_LOG_LINES;
            log(
                &proc.spec.name,
                now_ms,
                format!("{dropped} more stderr lines were not forwarded"),
            );
        }
        proc.stdout_kept.finish(&proc.spec.name, now_ms);
        proc.stderr_kept.finish(&proc.spec.name, now_ms);
        proc.state = State::Ended;
        proc.ended_ms = Some(now_ms);
        proc.stdout = None;
        proc.stderr = None;
        proc.outcome = Some(outcome.clone());
        send(now_ms, Some(&proc.spec.name), EventKind::Ended { outcome });
    }
}

impl Proc {
    /// The exec of `program` failed with `error`: the process ended as it started, with
    /// `outcome`.
    fn not_started(
        &mut self,
        outcome: ProcessOutcome,
        program: &str,
        error: &std::io::Error,
        now_ms: u64,
    ) {
        let name = &self.spec.name;
        log(name, now_ms, format!("could not start {program}: {error}"));
        self.state = State::Ended;
        self.started_ms = Some(now_ms);
        self.ended_ms = Some(now_ms);
        self.outcome = Some(outcome.clone());
        send(now_ms, Some(name), EventKind::Ended { outcome });
    }

    /// A stdout line: forwarded; a [`WorkloadReport`] (phase -> event, metrics -> merged), or
    /// a line matched against the output phases.
    fn stdout_line(&mut self, line: &str, now_ms: u64) {
        self.stdout_kept.line(&self.spec.name, line, now_ms);
        if line.trim().is_empty() {
            return;
        }
        match serde_json::from_str::<WorkloadReport>(line) {
            Ok(report) => {
                self.reported_any = true;
                self.reported.extend(report.metrics);
                if let Some(phase) = report.phase {
                    self.phase(phase, now_ms);
                }
            }
            Err(_) => self.output_line(line, now_ms),
        }
    }

    /// A stderr line: forwarded, copied to the console (up to [`MAX_LOG_LINES`]), matched
    /// against the output phases.
    fn stderr_line(&mut self, line: &str, now_ms: u64) {
        self.stderr_kept.line(&self.spec.name, line, now_ms);
        if self.spec.workload.is_go() && !self.reported_any && is_go_runtime_enomem(line) {
            self.go_enomem_before_main = true;
        }
        self.log_lines += 1;
        if self.log_lines <= MAX_LOG_LINES {
            crate::diag!("{}: {line}", self.spec.name);
        }
        self.output_line(line, now_ms);
    }

    /// A line that is not a report: each output phase whose pattern matches it happens.
    fn output_line(&mut self, line: &str, now_ms: u64) {
        let matched: Vec<String> = self
            .output_phases
            .iter()
            .filter(|(_, pattern)| pattern.is_match(line))
            .map(|(phase, _)| phase.clone())
            .collect();
        for phase in matched {
            self.phase(phase, now_ms);
        }
    }

    /// The process reached `phase`: its first time is kept for triggers, each one is an event.
    fn phase(&mut self, phase: String, now_ms: u64) {
        self.phases.entry(phase.clone()).or_insert(now_ms);
        send(now_ms, Some(&self.spec.name), EventKind::Phase { phase });
    }
}

/// The output phases of `spec`, compiled. The runner checked every pattern with the same
/// engine, so one that does not compile here is left out (and said on the console).
fn output_phases(spec: &ProcessSpec) -> Vec<(String, Regex)> {
    let Some(program) = spec.workload.program_io() else {
        return Vec::new();
    };
    program
        .phases
        .iter()
        .filter_map(|(phase, pattern)| match Regex::new(pattern) {
            Ok(regex) => Some((phase.clone(), regex)),
            Err(error) => {
                crate::diag!("{}: phase {phase}: pattern {pattern:?}: {error}", spec.name);
                None
            }
        })
        .collect()
}

/// What is forwarded of one output stream: every line of the first [`Output::HEAD_BYTES`],
/// then the last [`Output::TAIL_BYTES`] when the process ends, with a line between them
/// saying how much was left out. A process that writes without end costs the channel a
/// bounded amount.
struct OutputKeeper {
    stream: Stream,
    head_bytes: usize,
    tail: std::collections::VecDeque<(u64, String)>,
    tail_bytes: usize,
    dropped_lines: u64,
    dropped_bytes: u64,
}

impl OutputKeeper {
    fn new(stream: Stream) -> OutputKeeper {
        OutputKeeper {
            stream,
            head_bytes: 0,
            tail: Default::default(),
            tail_bytes: 0,
            dropped_lines: 0,
            dropped_bytes: 0,
        }
    }

    fn line(&mut self, process: &str, line: &str, now_ms: u64) {
        let size = line.len() + 1;
        if self.head_bytes + size <= Output::HEAD_BYTES {
            self.head_bytes += size;
            self.send(process, line.to_owned(), now_ms);
            return;
        }
        self.head_bytes = Output::HEAD_BYTES;
        self.tail.push_back((now_ms, line.to_owned()));
        self.tail_bytes += size;
        while self.tail_bytes > Output::TAIL_BYTES {
            let Some((_, old)) = self.tail.pop_front() else {
                break;
            };
            self.tail_bytes -= old.len() + 1;
            self.dropped_lines += 1;
            self.dropped_bytes += old.len() as u64 + 1;
        }
    }

    /// Forwards the tail (once the process has ended).
    fn finish(&mut self, process: &str, now_ms: u64) {
        if self.dropped_lines > 0 {
            let cut = Output::cut_line(self.dropped_lines, self.dropped_bytes);
            self.send(process, cut, now_ms);
            self.dropped_lines = 0;
            self.dropped_bytes = 0;
        }
        while let Some((t_ms, line)) = self.tail.pop_front() {
            self.send(process, line, t_ms);
        }
        self.tail_bytes = 0;
    }

    fn send(&self, process: &str, line: String, t_ms: u64) {
        channel::send(&GuestMessage::Output(Output {
            t_ms,
            process: process.to_owned(),
            stream: self.stream,
            line,
        }));
    }
}

/// How a process ended: SIGKILL with an OOM kill on record -> oom-killed (even when the
/// agent reaped it only while stopping everything at the end: the kernel killed it first);
/// stopped by the agent at the end -> running-at-end; said the kernel refused its start-up
/// memory -> enomem-at-start; otherwise its exit code or signal.
pub fn outcome(
    exit: Exit,
    stopping: bool,
    oom_killed: bool,
    enomem_reported: bool,
) -> ProcessOutcome {
    if oom_killed && exit == Exit::Signal(libc::SIGKILL) {
        return ProcessOutcome::OomKilled;
    }
    if stopping {
        return ProcessOutcome::RunningAtEnd;
    }
    if enomem_reported {
        return ProcessOutcome::EnomemAtStart;
    }
    match exit {
        Exit::Code(code) => ProcessOutcome::Exited(code),
        Exit::Signal(signal) => ProcessOutcome::Killed(signal_name(signal)),
    }
}

/// Whether `line` is the Go runtime's fatal error for a refused mapping. When `mmap` fails with
/// ENOMEM the runtime throws `fatal error: runtime: out of memory` (sysMap),
/// `fatal error: out of memory allocating heap arena map` (sysAlloc, Go 1.15 at start-up under
/// `vm.overcommit_memory = 2`) or `... heap arena metadata`, `runtime: cannot allocate memory`
/// (persistentalloc), and exits 2. Before the program's `main` has reported anything, that
/// is a start-up the kernel refused: `enomem-at-start`, as for the native workloads.
pub fn is_go_runtime_enomem(line: &str) -> bool {
    line.strip_prefix("fatal error: ").is_some_and(|message| {
        message.contains("out of memory") || message.contains("cannot allocate memory")
    })
}

fn send(t_ms: u64, process: Option<&str>, kind: EventKind) {
    channel::send(&GuestMessage::Event(Event {
        t_ms,
        process: process.map(str::to_owned),
        kind,
    }));
}

fn log(process: &str, t_ms: u64, message: String) {
    send(t_ms, Some(process), EventKind::Log { message });
}

/// Splits a non-blocking pipe's bytes into lines.
struct LineReader {
    file: File,
    buf: Vec<u8>,
    eof: bool,
}

impl LineReader {
    fn new(fd: OwnedFd) -> LineReader {
        let _ = fcntl(&fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
        LineReader {
            file: File::from(fd),
            buf: Vec::new(),
            eof: false,
        }
    }

    /// Every complete line available now (and the unterminated rest at end of file).
    fn read_lines(&mut self) -> Vec<String> {
        let mut chunk = [0u8; 8192];
        while !self.eof {
            match self.file.read(&mut chunk) {
                Ok(0) => self.eof = true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(error) if error.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break, // EAGAIN: nothing more for now
            }
        }
        let mut lines = split_lines(&mut self.buf, MAX_LINE);
        if self.eof && !self.buf.is_empty() {
            lines.push(String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned());
        }
        lines
    }
}

/// Takes the complete lines out of `buf` (without their "\n" or "\r\n"), leaving the rest; a run
/// of more than `max` bytes without a newline is cut into a line of its own.
fn split_lines(buf: &mut Vec<u8>, max: usize) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let cut = match buf.iter().position(|&b| b == b'\n') {
            Some(pos) if pos <= max => Some((pos, pos + 1)),
            _ if buf.len() > max => Some((max, max)),
            _ => None,
        };
        let Some((end, next)) = cut else { break };
        let line = String::from_utf8_lossy(&buf[..end])
            .trim_end_matches('\r')
            .to_owned();
        buf.drain(..next);
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsslab_wire::{BalloonArgs, Bytes, Millis, Start, Workload};

    fn spec(name: &str, after: Option<&str>, phase: Option<&str>, delay: u64) -> ProcessSpec {
        ProcessSpec {
            name: name.into(),
            workload: Workload::Balloon(BalloonArgs {
                step: Bytes::mib(1),
                every: Millis(100),
                until_available: Bytes::mib(64),
                max: None,
            }),
            env: BTreeMap::new(),
            cgroup: true,
            container: None,
            start: Start {
                after: after.map(Into::into),
                phase: phase.map(Into::into),
                delay: Millis(delay),
            },
            emulate_no_madv_free: false,
            restart: Default::default(),
            go: None,
        }
    }

    #[test]
    fn triggers_follow_phases_and_ends() {
        let specs = [
            spec("service", None, None, 500),
            spec("balloon", Some("service"), Some("released"), 2000),
            spec("after-end", Some("service"), None, 0),
            spec("chained", Some("balloon"), Some("full"), 0),
        ];
        let mut table = Table::new(&specs, 10_000);
        assert_eq!(table.trigger(0), Trigger::At(500));
        assert_eq!(
            table.trigger(1),
            Trigger::Waiting,
            "service may still start and report"
        );
        assert_eq!(table.trigger(3), Trigger::Waiting);
        assert_eq!(table.due(499), Vec::<usize>::new());
        assert_eq!(table.due(500), vec![0]);
        assert_eq!(table.next_start(), Some(500));
        assert!(!table.finished());

        table.procs[0].state = State::Running;
        table.procs[0].phases.insert("released".into(), 3000);
        assert_eq!(table.trigger(1), Trigger::At(5000));
        assert_eq!(table.trigger(2), Trigger::Waiting);

        table.procs[0].state = State::Ended;
        table.procs[0].ended_ms = Some(7000);
        assert_eq!(table.trigger(2), Trigger::At(7000));
        assert!(!table.finished(), "balloon can still start at 5000");

        let mut short = Table::new(&specs, 4000);
        short.procs[0].state = State::Ended;
        short.procs[0].phases.insert("released".into(), 3000);
        short.procs[0].ended_ms = Some(7000);
        assert_eq!(short.trigger(1), Trigger::Never, "5000 is after the end");
        assert_eq!(
            short.trigger(3),
            Trigger::Never,
            "its predecessor cannot start in time"
        );
        assert!(short.finished(), "nothing can start before the end at 4000");
    }

    #[test]
    fn a_trigger_on_a_container_event_waits_while_the_container_may_still_have_it() {
        let mut worker = spec("worker", None, None, 0);
        worker.container = Some("batch/worker".into());
        let specs = [
            worker,
            spec("loadgen", Some("batch/worker"), Some("restarted"), 500),
        ];
        let mut table = Table::new(&specs, 30_000);
        assert_eq!(
            table.trigger(1),
            Trigger::Waiting,
            "the worker has not started"
        );
        table.procs[0].state = State::Ended;
        assert_eq!(
            table.trigger(1),
            Trigger::Never,
            "ended, no restart to come"
        );
        table.restarts_pending.insert("batch/worker".into());
        assert_eq!(
            table.trigger(1),
            Trigger::Waiting,
            "the kubelet restarts it"
        );
        table
            .container_events
            .insert("batch/worker:restarted".into(), 4_000);
        assert_eq!(table.trigger(1), Trigger::At(4_500));
    }

    #[test]
    fn events_are_found_by_label_and_an_earlier_end_stops_later_triggers() {
        let mut table = Table::new(
            &[
                spec("service", None, None, 0),
                spec("balloon", Some("service"), Some("released"), 4000),
            ],
            30_000,
        );
        table.procs[0].started_ms = Some(10);
        table.procs[0].phases.insert("released".into(), 3000);
        assert_eq!(table.event_ms("service:started"), Some(10));
        assert_eq!(table.event_ms("service:released"), Some(3000));
        assert_eq!(table.event_ms("service:ended"), None);
        assert_eq!(table.event_ms("service:done"), None);
        assert_eq!(table.event_ms("nobody:started"), None);
        assert_eq!(table.event_ms("oom-kill"), None);
        assert_eq!(table.trigger(1), Trigger::At(7000));
        table.end_at(7000);
        assert_eq!(table.trigger(1), Trigger::Never);
        table.end_at(40_000);
        assert_eq!(table.trigger(1), Trigger::Never, "an end never moves later");
    }

    #[test]
    fn a_phase_that_never_came_never_fires() {
        let mut table = Table::new(
            &[
                spec("service", None, None, 0),
                spec("balloon", Some("service"), Some("released"), 0),
                spec("chained", Some("balloon"), None, 0),
                spec("typo", Some("nobody"), None, 0),
            ],
            10_000,
        );
        table.procs[0].state = State::Ended;
        table.procs[0].ended_ms = Some(100);
        assert_eq!(table.trigger(1), Trigger::Never);
        assert_eq!(
            table.trigger(2),
            Trigger::Never,
            "its predecessor never starts"
        );
        assert_eq!(table.trigger(3), Trigger::Never);
        assert!(table.finished());
    }

    #[test]
    fn a_gate_waits_for_a_start_or_a_clean_exit() {
        let specs = [
            spec("migrate", None, None, 0),
            spec("api", None, None, 0),
            spec("worker", None, None, 500),
        ];
        let gates = vec![
            None,
            Some(Gate {
                after: 0,
                until: Until::ExitedZero,
            }),
            Some(Gate {
                after: 1,
                until: Until::Started,
            }),
        ];
        let mut table =
            Table::new(&specs, 60_000).with_containers(gates, vec![None, None, Some(1)]);
        assert_eq!(table.trigger(0), Trigger::At(0));
        assert_eq!(table.trigger(1), Trigger::Waiting, "migrate has not run");
        assert_eq!(table.trigger(2), Trigger::Waiting);
        table.procs[0].state = State::Running;
        table.procs[0].started_ms = Some(0);
        assert_eq!(table.trigger(1), Trigger::Waiting, "migrate runs");
        let mut failed = Table::new(&specs, 60_000).with_containers(
            vec![
                None,
                Some(Gate {
                    after: 0,
                    until: Until::ExitedZero,
                }),
                None,
            ],
            vec![None; 3],
        );
        failed.procs[0].state = State::Ended;
        failed.procs[0].ended_ms = Some(900);
        failed.procs[0].outcome = Some(ProcessOutcome::Exited(1));
        assert_eq!(
            failed.trigger(1),
            Trigger::Never,
            "an init container that failed"
        );
        table.procs[0].state = State::Ended;
        table.procs[0].ended_ms = Some(1200);
        table.procs[0].outcome = Some(ProcessOutcome::Exited(0));
        assert_eq!(table.trigger(1), Trigger::At(1200));
        table.procs[1].state = State::Running;
        table.procs[1].started_ms = Some(1250);
        assert_eq!(
            table.trigger(2),
            Trigger::At(1250),
            "its own 500 ms is earlier"
        );
        // The main process ends: the worker that runs beside it is named, and a pending one
        // never starts.
        table.procs[2].state = State::Running;
        assert_eq!(table.container_of(1), [2]);
        table.procs[2].state = State::Pending;
        assert_eq!(table.trigger(2), Trigger::Never);
    }

    #[test]
    fn a_cycle_never_fires() {
        let table = Table::new(
            &[spec("a", Some("b"), None, 0), spec("b", Some("a"), None, 0)],
            1000,
        );
        assert_eq!(table.trigger(0), Trigger::Never);
        assert!(table.finished());
    }

    #[test]
    fn outcomes() {
        assert_eq!(
            outcome(Exit::Code(0), false, false, false),
            ProcessOutcome::Exited(0)
        );
        assert_eq!(
            outcome(Exit::Signal(9), false, true, false),
            ProcessOutcome::OomKilled
        );
        assert_eq!(
            outcome(Exit::Signal(9), false, false, false),
            ProcessOutcome::Killed("SIGKILL".into())
        );
        assert_eq!(
            outcome(Exit::Signal(11), false, true, false),
            ProcessOutcome::Killed("SIGSEGV".into())
        );
        assert_eq!(
            outcome(Exit::Signal(15), true, false, false),
            ProcessOutcome::RunningAtEnd
        );
        assert_eq!(
            outcome(Exit::Signal(9), true, true, false),
            ProcessOutcome::OomKilled,
            "an OOM kill reaped while the agent was stopping is still an OOM kill"
        );
        assert_eq!(
            outcome(Exit::Code(2), false, false, true),
            ProcessOutcome::EnomemAtStart
        );
    }

    #[test]
    fn go_runtime_enomem_lines() {
        for line in [
            "fatal error: out of memory allocating heap arena map",
            "fatal error: runtime: out of memory",
            "fatal error: runtime: cannot allocate memory",
        ] {
            assert!(is_go_runtime_enomem(line), "{line}");
        }
        for line in [
            "fatal error: all goroutines are asleep - deadlock!",
            "runtime: out of memory: cannot allocate 4194304-byte block (67108864 in use)",
            "panic: out of memory",
        ] {
            assert!(!is_go_runtime_enomem(line), "{line}");
        }
    }

    #[test]
    fn a_go_runtime_enomem_before_main_is_enomem_at_start() {
        channel::use_stdout();
        let mut go = spec("service", None, None, 0);
        go.workload = Workload::GoHeapChurn(rsslab_wire::workload::GoHeapChurnArgs {
            heap: Bytes::mib(4),
            live: Bytes(0),
            chunk: Bytes::mib(1),
            cycles: 1,
            hold_allocated: Millis(0),
            hold: Millis(0),
            free_os_memory: false,
            exit: true,
        });
        let mut table = Table::new(&[go.clone(), go], 1000);
        table.procs[0].stderr_line("fatal error: out of memory allocating heap arena map", 10);
        table.ended(0, Exit::Code(2), false, 0, 20);
        assert_eq!(table.procs[0].outcome, Some(ProcessOutcome::EnomemAtStart));

        let after_main = &mut table.procs[1];
        after_main.stdout_line(r#"{"metrics":{"heap_inuse":1}}"#, 10);
        after_main.stderr_line("fatal error: runtime: out of memory", 20);
        table.ended(1, Exit::Code(2), false, 0, 30);
        assert_eq!(
            table.procs[1].outcome,
            Some(ProcessOutcome::Exited(2)),
            "running out of memory after main is not a refused start-up"
        );
    }

    #[test]
    fn lines_are_split_and_bounded() {
        let mut buf = b"one\r\ntwo\nthr".to_vec();
        assert_eq!(split_lines(&mut buf, 100), vec!["one", "two"]);
        assert_eq!(buf, b"thr");
        let mut long = vec![b'x'; 10];
        long.extend_from_slice(b"\nrest");
        assert_eq!(split_lines(&mut long, 4), vec!["xxxx", "xxxx", "xx"]);
        assert_eq!(long, b"rest");
    }

    #[test]
    fn reports_become_phases_and_metrics() {
        channel::use_stdout();
        let mut table = Table::new(&[spec("service", None, None, 0)], 1000);
        let proc = &mut table.procs[0];
        proc.stdout_line(
            r#"{"phase":"allocated","metrics":{"heap_touched":100}}"#,
            40,
        );
        proc.stdout_line(r#"{"metrics":{"heap_touched":200,"heap_released":50}}"#, 50);
        proc.stdout_line(r#"{"phase":"allocated"}"#, 60);
        proc.stdout_line("not json", 70);
        assert_eq!(
            proc.phases["allocated"], 40,
            "the first report of a phase counts"
        );
        assert_eq!(proc.reported["heap_touched"], 200);
        assert_eq!(proc.reported["heap_released"], 50);
        assert_eq!(
            proc.log_lines, 0,
            "stdout is forwarded, not copied to the console"
        );
    }

    #[test]
    fn output_lines_that_match_a_pattern_are_phases() {
        channel::use_stdout();
        let mut exec = spec("server", None, None, 0);
        exec.workload = Workload::Exec(rsslab_wire::ExecArgs {
            command: vec!["/usr/bin/server".into()],
            files: BTreeMap::new(),
            phases: [
                ("ready".to_owned(), "listening on [0-9]+".to_owned()),
                ("gc".to_owned(), "^gc \\d+".to_owned()),
            ]
            .into(),
            reports: Default::default(),
        });
        let mut table = Table::new(&[exec], 1000);
        let proc = &mut table.procs[0];
        proc.stdout_line("starting", 10);
        assert!(proc.phases.is_empty());
        proc.stderr_line("2026/12/03 listening on 8080", 20);
        proc.stdout_line("gc 1 @0.1s", 30);
        proc.stdout_line("gc 2 @0.2s", 40);
        proc.stdout_line(r#"{"phase":"warm"}"#, 50);
        assert_eq!(
            proc.phases,
            BTreeMap::from([
                ("ready".to_owned(), 20),
                ("gc".to_owned(), 30),
                ("warm".to_owned(), 50)
            ]),
            "first time of each; reports and patterns both count"
        );
    }

    #[test]
    fn output_keeps_its_head_and_tail() {
        channel::use_stdout();
        let mut keeper = OutputKeeper::new(Stream::Stdout);
        let line = "x".repeat(1023); // 1 KiB with its newline
        let lines = (Output::HEAD_BYTES + Output::TAIL_BYTES) / 1024 + 10;
        for i in 0..lines {
            keeper.line("p", &line, i as u64);
        }
        assert_eq!(keeper.head_bytes, Output::HEAD_BYTES);
        assert_eq!(keeper.tail_bytes, Output::TAIL_BYTES);
        assert_eq!(keeper.tail.len(), Output::TAIL_BYTES / 1024);
        assert_eq!(keeper.dropped_lines, 10);
        assert_eq!(keeper.dropped_bytes, 10 * 1024);
        assert_eq!(
            keeper.tail.back().map(|(t, _)| *t),
            Some(lines as u64 - 1),
            "the last line is kept"
        );
        keeper.finish("p", 99);
        assert!(keeper.tail.is_empty());
        assert_eq!((keeper.dropped_lines, keeper.tail_bytes), (0, 0));
    }
}
