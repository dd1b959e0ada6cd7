//! The live display of a lab while its VMs run: runs done of total, each run in flight
//! (scenario, kernel, variant) with its own elapsed and expected time, the lab's elapsed time
//! and an ETA.
//!
//! The ETA comes from the plan ([`Estimator`]), not from the rate of runs so far, which says
//! nothing before the first run ends and is wild for the next few. A planned run is expected to
//! take what finished `ok` runs of its scenario took: on its kernel if one has, else on any
//! (runs that end on an event, `[sample] until`, are shorter than their duration). Before
//! that, its `[sample] duration` plus an allowance for boot, set-up and power-off, at most its
//! `[vm] timeout`. The allowance starts at [`DEFAULT_OVERHEAD_KVM`] or [`DEFAULT_OVERHEAD_TCG`]
//! and is replaced by what finished runs measured (wall time minus duration): the mean of that
//! kernel's runs once one has ended `ok` (kernels boot at different speeds, Debian's 7.2 about
//! three times slower under TCG), else the mean of all. The runs not finished are then laid in
//! plan order on as many slots as the lab runs at once (`--jobs N`, or with the packing the
//! most it has run at once so far, at first the number of cores), and the ETA is when the last
//! slot is free.
//!
//! The status shows the packing: runs done, running and queued.
//!
//! On a terminal the display is a bar with one line per run in flight (indicatif), and each
//! finished run prints a line above it. When stderr is not a terminal (CI logs) it is plain
//! lines instead: one when a run starts and one when it ends, each with the runs done, the
//! elapsed time and the ETA.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::lab::packing::Jobs;
use crate::plan::Plan;
use crate::vm::Accel;

/// Boot, set-up and power-off expected of a run under KVM before any run measured it.
pub const DEFAULT_OVERHEAD_KVM: Duration = Duration::from_secs(3);
/// The same under TCG (measured on 2 cores: 3-6 s, Debian's 7.2 up to 19 s).
pub const DEFAULT_OVERHEAD_TCG: Duration = Duration::from_secs(8);

/// How often the terminal display redraws (elapsed times and the ETA move on their own).
const TICK: Duration = Duration::from_secs(1);

/// One planned run, as the estimate sees it.
#[derive(Debug, Clone)]
struct Expected {
    scenario: String,
    kernel: String,
    duration: Duration,
    timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Queued,
    Running(Instant),
    Done,
}

/// The lab's remaining time, from the plan and the runs measured so far.
#[derive(Debug, Clone)]
pub struct Estimator {
    runs: Vec<Expected>,
    state: Vec<State>,
    /// Runs at once, as the estimate lays them out.
    slots: usize,
    default_overhead: Duration,
    /// Kernel -> overheads measured on runs that ended `ok`.
    measured: BTreeMap<String, Vec<Duration>>,
    /// (scenario, kernel) -> wall times of its runs that ended `ok`.
    walls: BTreeMap<(String, String), Vec<Duration>>,
}

impl Estimator {
    pub fn new(plan: &Plan, slots: usize, accel: Accel) -> Self {
        let runs: Vec<Expected> = plan
            .runs
            .iter()
            .map(|run| Expected {
                scenario: run.scenario.clone(),
                kernel: run.kernel.clone(),
                duration: run.spec.duration.as_duration(),
                timeout: run.vm.timeout.as_duration(),
            })
            .collect();
        Estimator {
            state: vec![State::Queued; runs.len()],
            runs,
            slots: slots.max(1),
            default_overhead: match accel {
                Accel::Kvm => DEFAULT_OVERHEAD_KVM,
                Accel::Tcg => DEFAULT_OVERHEAD_TCG,
            },
            measured: BTreeMap::new(),
            walls: BTreeMap::new(),
        }
    }

    /// At least `running` runs go at once (the packing's measure of the host).
    pub fn seen_running(&mut self, running: usize) {
        self.slots = self.slots.max(running);
    }

    pub fn started(&mut self, index: usize, at: Instant) {
        self.state[index] = State::Running(at);
    }

    /// Run `index` ended after `wall`; a run that ended `ok` teaches its kernel's overhead.
    pub fn finished(&mut self, index: usize, wall: Option<Duration>, ok: bool) {
        self.state[index] = State::Done;
        if let (Some(wall), true) = (wall, ok) {
            let run = &self.runs[index];
            self.measured
                .entry(run.kernel.clone())
                .or_default()
                .push(wall.saturating_sub(run.duration));
            self.walls
                .entry((run.scenario.clone(), run.kernel.clone()))
                .or_default()
                .push(wall);
        }
    }

    pub fn running(&self) -> usize {
        self.state
            .iter()
            .filter(|s| matches!(s, State::Running(_)))
            .count()
    }

    pub fn queued(&self) -> usize {
        self.state.iter().filter(|s| **s == State::Queued).count()
    }

    pub fn done(&self) -> usize {
        self.state.iter().filter(|s| **s == State::Done).count()
    }

    pub fn total(&self) -> usize {
        self.runs.len()
    }

    /// Boot, set-up and power-off expected on `kernel`.
    fn overhead(&self, kernel: &str) -> Duration {
        let mean = |all: &[Duration]| all.iter().sum::<Duration>() / all.len() as u32;
        match self.measured.get(kernel) {
            Some(mine) => mean(mine),
            None if !self.measured.is_empty() => mean(
                &self
                    .measured
                    .values()
                    .flatten()
                    .copied()
                    .collect::<Vec<_>>(),
            ),
            None => self.default_overhead,
        }
    }

    /// How long run `index` is expected to take in all.
    pub fn expected(&self, index: usize) -> Duration {
        let run = &self.runs[index];
        let mean = |all: &[Duration]| all.iter().sum::<Duration>() / all.len() as u32;
        let same_scenario: Vec<Duration> = self
            .walls
            .iter()
            .filter(|((scenario, _), _)| *scenario == run.scenario)
            .flat_map(|(_, walls)| walls.iter().copied())
            .collect();
        match self.walls.get(&(run.scenario.clone(), run.kernel.clone())) {
            Some(mine) => mean(mine),
            None if !same_scenario.is_empty() => mean(&same_scenario),
            None => run.duration + self.overhead(&run.kernel),
        }
        .min(run.timeout)
    }

    /// Time until the last run ends, at `now`.
    pub fn remaining(&self, now: Instant) -> Duration {
        let mut slots: Vec<Duration> = self
            .state
            .iter()
            .enumerate()
            .filter_map(|(index, state)| match state {
                State::Running(since) => Some(
                    self.expected(index)
                        .saturating_sub(now.saturating_duration_since(*since)),
                ),
                _ => None,
            })
            .collect();
        if slots.len() < self.slots {
            slots.resize(self.slots, Duration::ZERO);
        }
        for index in (0..self.runs.len()).filter(|&i| self.state[i] == State::Queued) {
            let earliest = slots.iter_mut().min().expect("at least one slot");
            *earliest += self.expected(index);
        }
        slots.into_iter().max().unwrap_or_default()
    }
}

/// `45s`, `3m05s`, `1h02m`.
pub fn format_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs < 60 {
        format!("{secs}s")
    } else if secs < 3600 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60)
    }
}

/// The display of one lab; shared by the worker threads.
pub struct LabProgress {
    estimator: Arc<Mutex<Estimator>>,
    /// `scenario · kernel · variant` per planned run.
    labels: Vec<String>,
    began: Instant,
    /// `None` when stderr is not a terminal: plain lines.
    live: Option<Live>,
}

struct Live {
    multi: MultiProgress,
    bar: ProgressBar,
    in_flight: Mutex<BTreeMap<usize, ProgressBar>>,
}

impl LabProgress {
    pub fn new(plan: &Plan, jobs: Jobs, accel: Accel) -> Self {
        let slots = match jobs {
            Jobs::AtMost(jobs) => jobs,
            Jobs::Auto => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let estimator = Arc::new(Mutex::new(Estimator::new(plan, slots, accel)));
        let labels = plan
            .runs
            .iter()
            .map(|run| {
                let mut label = format!("{} · {}", run.scenario, run.kernel);
                if !run.variant_label.is_empty() {
                    label += &format!(" · {}", run.variant_label);
                }
                label
            })
            .collect();
        let live = std::io::stderr().is_terminal().then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let eta = Arc::clone(&estimator);
            let style = ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} runs · {packing} · ETA {lab_eta}",
            )
            .expect("progress template")
            .progress_chars("=> ")
            .with_key("packing", {
                let estimator = Arc::clone(&estimator);
                move |_: &indicatif::ProgressState, out: &mut dyn std::fmt::Write| {
                    let estimator = estimator.lock().expect("estimator lock");
                    let _ = write!(
                        out,
                        "{} running · {} queued",
                        estimator.running(),
                        estimator.queued()
                    );
                }
            })
            .with_key(
                "lab_eta",
                move |_: &indicatif::ProgressState, out: &mut dyn std::fmt::Write| {
                    let remaining = eta
                        .lock()
                        .expect("estimator lock")
                        .remaining(Instant::now());
                    let _ = out.write_str(&format_duration(remaining));
                },
            );
            let bar = multi.add(ProgressBar::new(plan.runs.len() as u64).with_style(style));
            bar.enable_steady_tick(TICK);
            Live {
                multi,
                bar,
                in_flight: Mutex::new(BTreeMap::new()),
            }
        });
        LabProgress {
            estimator,
            labels,
            began: Instant::now(),
            live,
        }
    }

    /// `[3/24 done · 4 running · 17 queued · 2m10s elapsed · ETA 6m05s]`.
    fn status(&self) -> String {
        let estimator = self.estimator.lock().expect("estimator lock");
        format!(
            "[{}/{} done · {} running · {} queued · {} elapsed · ETA {}]",
            estimator.done(),
            estimator.total(),
            estimator.running(),
            estimator.queued(),
            format_duration(self.began.elapsed()),
            format_duration(estimator.remaining(Instant::now()))
        )
    }

    /// Run `index` of the plan starts, `running` with it.
    pub fn run_started(&self, index: usize, running: usize) {
        let expected = {
            let mut estimator = self.estimator.lock().expect("estimator lock");
            estimator.started(index, Instant::now());
            estimator.seen_running(running);
            estimator.expected(index)
        };
        let label = &self.labels[index];
        match &self.live {
            Some(live) => {
                let spinner = live.multi.add(
                    ProgressBar::new_spinner()
                        .with_style(
                            ProgressStyle::with_template(
                                "  {spinner} {msg} · {elapsed} of ~{prefix}",
                            )
                            .expect("spinner template"),
                        )
                        .with_message(label.clone())
                        .with_prefix(format_duration(expected)),
                );
                spinner.enable_steady_tick(TICK);
                live.in_flight
                    .lock()
                    .expect("progress lock")
                    .insert(index, spinner);
            }
            None => eprintln!(
                "rsslab: {} start {label} (~{})",
                self.status(),
                format_duration(expected)
            ),
        }
    }

    /// Run `index` ended (`wall`: QEMU start to exit, when it got that far); `line` says how.
    pub fn run_finished(&self, index: usize, line: &str, wall: Option<Duration>, ok: bool) {
        self.estimator
            .lock()
            .expect("estimator lock")
            .finished(index, wall, ok);
        let line = format!("rsslab: {} {line}", self.status());
        match &self.live {
            Some(live) => {
                if let Some(spinner) = live.in_flight.lock().expect("progress lock").remove(&index)
                {
                    spinner.finish_and_clear();
                    live.multi.remove(&spinner);
                }
                let _ = live.multi.println(line);
                live.bar.inc(1);
            }
            None => eprintln!("{line}"),
        }
    }

    /// Clears the display.
    pub fn finish(&self) {
        if let Some(live) = &self.live {
            for spinner in live.in_flight.lock().expect("progress lock").values() {
                spinner.finish_and_clear();
            }
            live.bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::plan::{PlanFilter, plan};
    use crate::scenario::parse_scenario;

    /// One run per kernel and variant (1 to 3 variants) of a scenario sampling for
    /// `duration`, with `timeout`.
    fn lab(kernels: &[&str], duration: &str, timeout: &str, variants: usize) -> Plan {
        let matrix = if variants > 1 {
            let values: Vec<String> = (0..variants).map(|v| v.to_string()).collect();
            format!(
                "[matrix]\n'sysctl.\"vm.overcommit_memory\"' = [{}]\n",
                values.join(", ")
            )
        } else {
            String::new()
        };
        let kernels: Vec<String> = kernels.iter().map(|k| format!("\"{k}\"")).collect();
        let source = format!(
            "[scenario]\nid = \"demo\"\ntitle = \"t\"\n[vm]\nkernels = [{}]\ntimeout = \"{timeout}\"\n\
             [sample]\nduration = \"{duration}\"\n[[process]]\nname = \"service\"\n\
             workload = \"heap-churn\"\nargs = {{ heap = \"64MiB\" }}\n{matrix}",
            kernels.join(", ")
        );
        let known = ["5.10", "6.1", "6.12", "7.2"].map(String::from).to_vec();
        let scenario = parse_scenario(Path::new("demo.toml"), &source, &known)
            .unwrap_or_else(|e| panic!("{e}"));
        plan(&[scenario], &PlanFilter::default())
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn before_any_run_the_eta_is_the_plan_laid_on_the_jobs() {
        // 4 runs of 30 s + 8 s on 2 slots: two rounds.
        let plan = lab(&["6.1", "7.2"], "30s", "180s", 2);
        let estimator = Estimator::new(&plan, 2, Accel::Tcg);
        assert_eq!(estimator.expected(0), 38 * SECOND);
        assert_eq!(estimator.remaining(Instant::now()), 76 * SECOND);
        // One slot: all in a row; more slots than runs: one round.
        assert_eq!(
            Estimator::new(&plan, 1, Accel::Tcg).remaining(Instant::now()),
            152 * SECOND
        );
        assert_eq!(
            Estimator::new(&plan, 8, Accel::Kvm).remaining(Instant::now()),
            33 * SECOND
        );
    }

    #[test]
    fn runs_in_flight_count_down_and_finished_ones_teach_their_kernel() {
        let plan = lab(&["6.1", "7.2"], "30s", "180s", 2);
        let kernels: Vec<&str> = plan.runs.iter().map(|r| r.kernel.as_str()).collect();
        assert_eq!(kernels, ["6.1", "6.1", "7.2", "7.2"]);
        let mut estimator = Estimator::new(&plan, 2, Accel::Tcg);
        let t0 = Instant::now();
        estimator.started(0, t0);
        estimator.started(1, t0);
        // 25 s in: both in flight have 13 s left, then the two 7.2 runs of 38 s.
        assert_eq!(estimator.remaining(t0 + 25 * SECOND), 51 * SECOND);

        // 6.1 measured 4 s of overhead; 7.2 has none yet, so it takes the mean of all.
        estimator.finished(0, Some(34 * SECOND), true);
        assert_eq!(estimator.expected(1), 34 * SECOND);
        assert_eq!(estimator.expected(2), 34 * SECOND);
        estimator.finished(1, Some(36 * SECOND), true);
        assert_eq!(estimator.expected(2), 35 * SECOND);
        estimator.started(2, t0 + 36 * SECOND);
        estimator.finished(2, Some(50 * SECOND), true);
        assert_eq!(estimator.expected(3), 50 * SECOND, "7.2 has its own now");
        // A run that did not end ok teaches nothing.
        estimator.started(3, t0 + 86 * SECOND);
        estimator.finished(3, Some(180 * SECOND), false);
        assert_eq!(estimator.expected(3), 50 * SECOND);
        assert_eq!(estimator.done(), 4);
        assert_eq!(estimator.remaining(t0), Duration::ZERO);
    }

    #[test]
    fn a_run_is_never_expected_past_its_timeout_nor_below_zero_left() {
        let plan = lab(&["6.1"], "30s", "35s", 1);
        let mut estimator = Estimator::new(&plan, 1, Accel::Tcg);
        assert_eq!(estimator.expected(0), 35 * SECOND);
        let t0 = Instant::now();
        estimator.started(0, t0);
        assert_eq!(estimator.remaining(t0 + 100 * SECOND), Duration::ZERO);
    }

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(format_duration(45 * SECOND), "45s");
        assert_eq!(format_duration(185 * SECOND), "3m05s");
        assert_eq!(format_duration(3720 * SECOND), "1h02m");
    }
}
