//! The host's reading of the guest channel: JSON Lines in, raw records out.
//!
//! Samples are appended to `samples.jsonl` as they arrive (so a run that dies half-way keeps
//! what it sampled), each process's output to `<process>.stdout` and `<process>.stderr`; the
//! hello, events and verdict are kept for `run.json`. The channel must be a `ready` (absent
//! after a snapshot restore: that guest asked before the snapshot), one hello, then samples
//! and events, then exactly one verdict: anything else is a
//! protocol error that makes the run an `infra-error`, reported with the console log.
//! [`classify`] then decides the run's outcome from the channel and how QEMU ended.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use rsslab_wire::{
    CHANNEL_VERSION, Event, GuestMessage, Hello, Output, RunOutcome, Stream, Verdict,
};

use crate::records::{SAMPLES_JSONL, output_file_name};
use crate::vm::{ConsoleFault, LineAction, VmExit, VmOutput};

/// Most protocol errors kept per run (the rest are counted).
const MAX_PROTOCOL_ERRORS: usize = 20;
/// Most characters of a line (and of a parser's message about it) kept in a protocol error.
const SHOWN_CHARS: usize = 200;

/// Reads one run's channel.
pub struct Collector {
    samples: BufWriter<File>,
    run_dir: PathBuf,
    /// The output files written so far, by process and stream.
    outputs: BTreeMap<(String, Stream), BufWriter<File>>,
    started: Instant,
    pub hello: Option<Hello>,
    pub events: Vec<Event>,
    pub verdict: Option<Verdict>,
    /// Lines that broke the protocol, with why: the first [`MAX_PROTOCOL_ERRORS`].
    pub protocol_errors: Vec<String>,
    /// How many lines broke the protocol, kept or not.
    pub protocol_error_count: usize,
    /// Host time from the collector's creation (just before QEMU starts) to the first sample.
    pub first_sample_ms: Option<u64>,
    /// Samples received (the benches' sampler figures).
    pub sample_count: u64,
}

impl Collector {
    /// Starts a collector writing `samples.jsonl` into `run_dir`.
    pub fn new(run_dir: &Path) -> Result<Self> {
        let path = run_dir.join(SAMPLES_JSONL);
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Collector {
            samples: BufWriter::new(file),
            run_dir: run_dir.to_owned(),
            outputs: BTreeMap::new(),
            started: Instant::now(),
            hello: None,
            events: Vec::new(),
            verdict: None,
            protocol_errors: Vec::new(),
            protocol_error_count: 0,
            first_sample_ms: None,
            sample_count: 0,
        })
    }

    fn protocol_error(&mut self, message: String) {
        self.protocol_error_count += 1;
        if self.protocol_errors.len() < MAX_PROTOCOL_ERRORS {
            self.protocol_errors.push(message);
        }
    }

    /// Takes one channel line.
    pub fn line(&mut self, line: &str) -> LineAction {
        if line.trim().is_empty() {
            return LineAction::Continue;
        }
        let message = match serde_json::from_str::<GuestMessage>(line) {
            Ok(message) => message,
            Err(error) => {
                self.protocol_error(format!(
                    "unparseable channel line ({}): {}",
                    shown(&error.to_string()),
                    shown(line)
                ));
                return LineAction::Continue;
            }
        };
        if self.verdict.is_some() {
            self.protocol_error(format!("message after the verdict: {}", shown(line)));
            return LineAction::Continue;
        }
        if let GuestMessage::Ready(ready) = &message {
            if self.hello.is_some() {
                self.protocol_error("ready after the hello".into());
                return LineAction::Continue;
            }
            if ready.protocol != CHANNEL_VERSION {
                self.protocol_error(format!(
                    "agent speaks protocol {}, the runner {CHANNEL_VERSION}: rebuild the guest binaries (just guest)",
                    ready.protocol
                ));
            }
            return LineAction::SpecWanted;
        }
        if self.hello.is_none() && !matches!(message, GuestMessage::Hello(_)) {
            self.protocol_error("the first message was not a hello".into());
        }
        match message {
            GuestMessage::Ready(_) => unreachable!("handled above"),
            GuestMessage::Hello(hello) => {
                if self.hello.is_some() {
                    self.protocol_error("a second hello".into());
                } else if hello.protocol != CHANNEL_VERSION {
                    self.protocol_error(format!(
                        "agent speaks protocol {}, the runner {CHANNEL_VERSION}: rebuild the guest binaries (just guest)",
                        hello.protocol
                    ));
                }
                self.hello.get_or_insert(hello);
            }
            GuestMessage::Sample(sample) => {
                if self.first_sample_ms.is_none() {
                    self.first_sample_ms = Some(self.started.elapsed().as_millis() as u64);
                }
                self.sample_count += 1;
                let written = serde_json::to_string(&sample)
                    .map_err(anyhow::Error::from)
                    .and_then(|json| Ok(writeln!(self.samples, "{json}")?));
                if let Err(error) = written {
                    self.protocol_error(format!("writing {SAMPLES_JSONL}: {error:#}"));
                }
            }
            GuestMessage::Event(event) => self.events.push(event),
            GuestMessage::Output(output) => {
                if let Err(error) = self.output(&output) {
                    self.protocol_error(format!("{error:#}"));
                }
            }
            GuestMessage::Verdict(verdict) => {
                self.verdict = Some(verdict);
                let _ = self.flush();
                return LineAction::VerdictReceived;
            }
        }
        LineAction::Continue
    }

    /// Appends one line to its process's output file (created on its first line).
    fn output(&mut self, output: &Output) -> Result<()> {
        let Some(name) = output_file_name(&output.process, output.stream) else {
            anyhow::bail!(
                "output of a process whose name cannot be a file name: {}",
                shown(&output.process)
            );
        };
        let file = match self.outputs.entry((output.process.clone(), output.stream)) {
            Entry::Occupied(open) => open.into_mut(),
            Entry::Vacant(slot) => {
                let path = self.run_dir.join(&name);
                let file =
                    File::create(&path).with_context(|| format!("creating {}", path.display()))?;
                slot.insert(BufWriter::new(file))
            }
        };
        writeln!(file, "{}", output.line).with_context(|| format!("writing {name}"))
    }

    /// Flushes `samples.jsonl` and the output files.
    pub fn flush(&mut self) -> Result<()> {
        self.samples.flush().context("flushing samples.jsonl")?;
        for ((process, stream), file) in &mut self.outputs {
            file.flush()
                .with_context(|| format!("flushing {process}.{}", stream.as_str()))?;
        }
        Ok(())
    }
}

/// The start of a text, marked when cut: guest lines and parser messages about them can be
/// as long as the guest makes them.
fn shown(text: &str) -> String {
    let mut chars = text.chars();
    let start: String = chars.by_ref().take(SHOWN_CHARS).collect();
    if chars.next().is_some() {
        format!("{start}…")
    } else {
        start
    }
}

/// A run's outcome from how QEMU ended, the console and the channel, with the reason.
///
/// Order matters: a kernel fault explains everything after it, so it wins; then the deadline
/// and interruption; then a broken channel; then the guest's own verdict.
pub fn classify(vm: &VmOutput, collector: &Collector) -> (RunOutcome, Option<String>) {
    match &vm.fault {
        Some(ConsoleFault::KernelPanic(line)) => {
            return (
                RunOutcome::KernelPanic,
                Some(format!("kernel fault on the console: {line}")),
            );
        }
        Some(ConsoleFault::AgentDied(line)) => {
            return (
                RunOutcome::InfraError,
                Some(format!("the guest agent (PID 1) died: {line}")),
            );
        }
        None => {}
    }
    match vm.exit {
        VmExit::DeadlineExceeded => {
            return (
                RunOutcome::VmTimeout,
                Some(format!(
                    "no end within the deadline; QEMU killed after {:.0}s",
                    vm.wall.as_secs_f64()
                )),
            );
        }
        VmExit::Interrupted => {
            return (
                RunOutcome::InfraError,
                Some("interrupted: the runner was asked to stop".into()),
            );
        }
        VmExit::Exited(_) | VmExit::Signalled(_) | VmExit::LingeredAfterVerdict => {}
    }
    if let Some(first) = collector.protocol_errors.first() {
        let more = collector.protocol_error_count.saturating_sub(1);
        let suffix = if more > 0 {
            format!(" (and {more} more)")
        } else {
            String::new()
        };
        return (
            RunOutcome::InfraError,
            Some(format!("channel protocol error: {first}{suffix}")),
        );
    }
    match &collector.verdict {
        Some(verdict) => (verdict.outcome, verdict.reason.clone()),
        None => {
            let how = match vm.exit {
                VmExit::Exited(Some(code)) if code != 0 => {
                    format!("QEMU exited with status {code}")
                }
                VmExit::Exited(None) => "QEMU was killed by a signal".into(),
                VmExit::Signalled(signal) => format!(
                    "QEMU died of signal {signal} ({}): it crashed or something killed it",
                    rsslab_wire::signal_name(signal)
                ),
                _ => "the guest powered off".into(),
            };
            (
                RunOutcome::InfraError,
                Some(format!("no verdict on the channel: {how}; see console.log")),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn vm(exit: VmExit, fault: Option<ConsoleFault>) -> VmOutput {
        VmOutput {
            exit,
            fault,
            wall: Duration::from_secs(5),
            cpu: None,
            boot: crate::vm::BootKind::Cold,
        }
    }

    /// A hello of the protocol this runner speaks.
    fn hello() -> String {
        format!(
            r#"{{"type":"hello","protocol":{},"kernel_release":"6.1.0-50-cloud-amd64","boot_ms":1500,"features":{{}}}}"#,
            rsslab_wire::CHANNEL_VERSION
        )
    }
    const SAMPLE: &str = r#"{"type":"sample","t_ms":250,"process":{"service":{"rss":1048576}},"cgroup":{},"guest":{"mem_available":5}}"#;
    const VERDICT: &str = r#"{"type":"verdict","t_ms":900,"outcome":"ok","processes":{"service":{"outcome":"running-at-end","peak":{"rss":1048576}}}}"#;

    #[test]
    fn a_well_formed_channel_gives_the_verdicts_outcome_and_writes_samples() {
        let dir = tempfile::tempdir().unwrap();
        let mut collector = Collector::new(dir.path()).unwrap();
        assert_eq!(collector.line(&hello()), LineAction::Continue);
        assert_eq!(collector.line(SAMPLE), LineAction::Continue);
        assert_eq!(collector.line(SAMPLE), LineAction::Continue);
        assert_eq!(collector.line(VERDICT), LineAction::VerdictReceived);
        collector.flush().unwrap();
        assert_eq!(collector.sample_count, 2);
        let (outcome, reason) = classify(&vm(VmExit::Exited(Some(0)), None), &collector);
        assert_eq!((outcome, reason), (RunOutcome::Ok, None));
        let written = std::fs::read_to_string(dir.path().join(SAMPLES_JSONL)).unwrap();
        assert_eq!(
            written,
            "{\"t_ms\":250,\"process\":{\"service\":{\"rss\":1048576}},\"cgroup\":{},\"guest\":{\"mem_available\":5}}\n".repeat(2)
        );
    }

    #[test]
    fn ready_asks_for_the_spec_once_before_the_hello() {
        let dir = tempfile::tempdir().unwrap();
        let mut collector = Collector::new(dir.path()).unwrap();
        let ready = format!(r#"{{"type":"ready","protocol":{CHANNEL_VERSION}}}"#);
        assert_eq!(collector.line(&ready), LineAction::SpecWanted);
        assert_eq!(collector.line(&hello()), LineAction::Continue);
        assert!(
            collector.protocol_errors.is_empty(),
            "{:?}",
            collector.protocol_errors
        );
        assert_eq!(
            collector.line(&ready),
            LineAction::Continue,
            "not after the hello"
        );
        assert_eq!(collector.protocol_errors, ["ready after the hello"]);

        let mut old_agent = Collector::new(dir.path()).unwrap();
        assert_eq!(
            old_agent.line(r#"{"type":"ready","protocol":1}"#),
            LineAction::SpecWanted
        );
        assert!(
            old_agent.protocol_errors[0].contains("rebuild the guest binaries"),
            "{:?}",
            old_agent.protocol_errors
        );
    }

    #[test]
    fn output_lines_go_to_one_file_per_process_and_stream() {
        let dir = tempfile::tempdir().unwrap();
        let mut collector = Collector::new(dir.path()).unwrap();
        collector.line(&hello());
        for line in [
            r#"{"type":"output","t_ms":5,"process":"service","stream":"stdout","line":"listening on :80"}"#,
            r#"{"type":"output","t_ms":6,"process":"service","stream":"stderr","line":"warning: x"}"#,
            r#"{"type":"output","t_ms":7,"process":"service","stream":"stdout","line":"{\"phase\":\"ready\"}"}"#,
            r#"{"type":"output","t_ms":8,"process":"../evil","stream":"stdout","line":"x"}"#,
        ] {
            assert_eq!(collector.line(line), LineAction::Continue);
        }
        collector.line(VERDICT);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("service.stdout")).unwrap(),
            "listening on :80\n{\"phase\":\"ready\"}\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("service.stderr")).unwrap(),
            "warning: x\n"
        );
        assert_eq!(
            collector.protocol_error_count, 1,
            "{:?}",
            collector.protocol_errors
        );
        assert!(collector.protocol_errors[0].contains("../evil"));
        assert!(!dir.path().parent().unwrap().join("evil.stdout").exists());
    }

    #[test]
    fn garbage_a_missing_or_second_verdict_is_an_infra_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut collector = Collector::new(dir.path()).unwrap();
        collector.line(&hello());
        collector.line(r#"{"type":"sample","t_ms":2"#);
        collector.line(VERDICT);
        let (outcome, reason) = classify(&vm(VmExit::Exited(Some(0)), None), &collector);
        assert_eq!(outcome, RunOutcome::InfraError);
        let reason = reason.unwrap();
        assert!(reason.contains("unparseable"), "{reason}");
        assert!(
            !reason.contains("more)"),
            "one error: no count of others: {reason}"
        );

        let mut collector = Collector::new(dir.path()).unwrap();
        collector.line(&hello());
        let (outcome, reason) = classify(&vm(VmExit::Exited(Some(0)), None), &collector);
        assert_eq!(outcome, RunOutcome::InfraError);
        assert!(reason.unwrap().contains("no verdict"));
        // Without a verdict, how QEMU ended says why.
        for (exit, why) in [
            (VmExit::Exited(None), "QEMU was killed by a signal"),
            (VmExit::Exited(Some(1)), "QEMU exited with status 1"),
            (VmExit::Signalled(11), "QEMU died of signal 11 (SIGSEGV)"),
            (VmExit::Exited(Some(0)), "the guest powered off"),
        ] {
            let (_, reason) = classify(&vm(exit, None), &collector);
            assert!(reason.as_deref().unwrap().contains(why), "{reason:?}");
        }

        let mut collector = Collector::new(dir.path()).unwrap();
        collector.line(&hello());
        collector.line(VERDICT);
        collector.line(VERDICT);
        let (_, reason) = classify(&vm(VmExit::Exited(Some(0)), None), &collector);
        assert!(reason.unwrap().contains("after the verdict"));
    }

    #[test]
    fn every_protocol_error_is_counted_and_kept_short() {
        let dir = tempfile::tempdir().unwrap();
        let mut collector = Collector::new(dir.path()).unwrap();
        collector.line(&hello());
        for _ in 0..25 {
            collector.line(&format!("{{\"type\":\"{}\"}}", "x".repeat(10_000)));
        }
        assert_eq!(collector.protocol_error_count, 25);
        assert_eq!(collector.protocol_errors.len(), MAX_PROTOCOL_ERRORS);
        assert!(
            collector.protocol_errors[0].chars().count() < 2 * SHOWN_CHARS + 100,
            "{}",
            collector.protocol_errors[0]
        );
        assert_eq!(
            collector.line(VERDICT),
            LineAction::VerdictReceived,
            "still usable"
        );
        let (outcome, reason) = classify(&vm(VmExit::Exited(Some(0)), None), &collector);
        assert_eq!(outcome, RunOutcome::InfraError);
        assert!(reason.unwrap().ends_with("(and 24 more)"));
    }

    #[test]
    fn faults_and_deadlines_win_over_the_channel() {
        let dir = tempfile::tempdir().unwrap();
        let mut collector = Collector::new(dir.path()).unwrap();
        collector.line(&hello());
        collector.line(VERDICT);
        let panic = ConsoleFault::KernelPanic("Kernel panic - not syncing: x".into());
        assert_eq!(
            classify(&vm(VmExit::Exited(Some(0)), Some(panic)), &collector).0,
            RunOutcome::KernelPanic
        );
        assert_eq!(
            classify(&vm(VmExit::DeadlineExceeded, None), &collector).0,
            RunOutcome::VmTimeout
        );
        let died = ConsoleFault::AgentDied("Attempted to kill init".into());
        assert_eq!(
            classify(&vm(VmExit::Exited(Some(0)), Some(died)), &collector).0,
            RunOutcome::InfraError
        );
    }
}
