//! The property of the host's channel parser: `Collector::line` takes any line without
//! panicking, records a protocol error for each line that breaks the protocol (and counts the
//! ones past its cap), keeps what is well-formed, and stays usable.
//!
//! The lines are [`Line`]s: well-formed messages with arbitrary fields, messages cut mid-way,
//! raw bytes, JSON nested deeper than any parser should follow, numbers past u64, fields of
//! the wrong type. The collector is checked against a model of the protocol (one hello first,
//! samples and events, exactly one verdict last, as `rsslab::records::collect`'s docs say).

use std::collections::BTreeMap;
use std::time::Duration;

use arbitrary::Arbitrary;
use rsslab::records::collect::{Collector, classify};
use rsslab::vm::{LineAction, VmExit, VmOutput};
use rsslab_wire::message::ProcessResult;
use rsslab_wire::{
    CHANNEL_VERSION, Event, EventKind, GuestMessage, Hello, Metrics, ProcessOutcome, RunOutcome,
    Sample, Verdict,
};
use serde_json::Value;

/// One line on the channel, as the host's reader hands it over (no newline).
#[derive(Debug, Arbitrary)]
pub enum Line {
    Message(Message),
    /// A strict prefix of a message: the guest died or the port dropped bytes.
    Cut {
        message: Message,
        at: u16,
    },
    /// Raw bytes, decoded lossily as the host's reader does.
    Garbage(Vec<u8>),
    /// A message with a field nested `depth` arrays (or objects) deep, closed or not.
    Deep {
        depth: u16,
        objects: bool,
        closed: bool,
    },
    /// A message with a number of `digits` digits (or an exponent) in a numeric field.
    Huge {
        message: Message,
        digits: u8,
        float: bool,
    },
    /// A message with one field's value replaced.
    Retyped {
        message: Message,
        field: u8,
        value: Replacement,
    },
    Blank(u8),
}

/// A well-formed message with arbitrary contents.
#[derive(Debug, Arbitrary)]
pub enum Message {
    Hello {
        other_protocol: Option<u32>,
        kernel_release: String,
        boot_ms: u64,
        features: BTreeMap<String, String>,
    },
    Sample {
        t_ms: u64,
        process: BTreeMap<String, Metrics>,
        cgroup: Metrics,
        guest: Metrics,
    },
    Event {
        t_ms: u64,
        process: Option<String>,
        kind: Kind,
    },
    Verdict {
        t_ms: u64,
        outcome: u8,
        reason: Option<String>,
        processes: BTreeMap<String, (Outcome, Metrics)>,
        agent_cpu_ms: Option<u64>,
    },
}

#[derive(Debug, Arbitrary)]
pub enum Kind {
    Started(u32),
    Phase(String),
    Ended(Outcome),
    OomKill(u32, String),
    Setup(String, bool, String),
    Log(String),
}

#[derive(Debug, Arbitrary)]
pub enum Outcome {
    Exited(i32),
    Killed(String),
    OomKilled,
    EnomemAtStart,
    RunningAtEnd,
    NotStarted,
}

/// What replaces a field's value.
#[derive(Debug, Arbitrary)]
pub enum Replacement {
    Null,
    Negative(i64),
    Float(f64),
    Text(String),
    Empty,
}

impl Message {
    fn build(&self) -> GuestMessage {
        match self {
            Message::Hello {
                other_protocol,
                kernel_release,
                boot_ms,
                features,
            } => GuestMessage::Hello(Hello {
                protocol: other_protocol.unwrap_or(CHANNEL_VERSION),
                kernel_release: kernel_release.clone(),
                boot_ms: *boot_ms,
                features: features.clone(),
            }),
            Message::Sample {
                t_ms,
                process,
                cgroup,
                guest,
            } => GuestMessage::Sample(Sample {
                t_ms: *t_ms,
                process: process.clone(),
                cgroup: cgroup.clone(),
                guest: guest.clone(),
                ..Sample::default()
            }),
            Message::Event {
                t_ms,
                process,
                kind,
            } => GuestMessage::Event(Event {
                t_ms: *t_ms,
                process: process.clone(),
                kind: kind.build(),
            }),
            Message::Verdict {
                t_ms,
                outcome,
                reason,
                processes,
                agent_cpu_ms,
            } => GuestMessage::Verdict(Verdict {
                t_ms: *t_ms,
                outcome: RUN_OUTCOMES[usize::from(*outcome) % RUN_OUTCOMES.len()],
                reason: reason.clone(),
                processes: processes
                    .iter()
                    .map(|(name, (outcome, peak))| {
                        let result = ProcessResult {
                            outcome: outcome.build(),
                            peak: peak.clone(),
                            started_ms: None,
                            ended_ms: None,
                        };
                        (name.clone(), result)
                    })
                    .collect(),
                cgroup_peak: Metrics::new(),
                agent_cpu_ms: *agent_cpu_ms,
            }),
        }
    }

    fn line(&self) -> String {
        self.build().to_line()
    }
}

const RUN_OUTCOMES: [RunOutcome; 5] = RunOutcome::ALL;

impl Kind {
    fn build(&self) -> EventKind {
        match self {
            Kind::Started(pid) => EventKind::Started {
                pid: *pid,
                oom_score_adj: None,
            },
            Kind::Phase(phase) => EventKind::Phase {
                phase: phase.clone(),
            },
            Kind::Ended(outcome) => EventKind::Ended {
                outcome: outcome.build(),
            },
            Kind::OomKill(pid, task) => EventKind::OomKill {
                pid: *pid,
                task: task.clone(),
            },
            Kind::Setup(step, ok, detail) => EventKind::Setup {
                step: step.clone(),
                ok: *ok,
                detail: detail.clone(),
            },
            Kind::Log(message) => EventKind::Log {
                message: message.clone(),
            },
        }
    }
}

impl Outcome {
    fn build(&self) -> ProcessOutcome {
        match self {
            Outcome::Exited(code) => ProcessOutcome::Exited(*code),
            Outcome::Killed(signal) => ProcessOutcome::Killed(signal.clone()),
            Outcome::OomKilled => ProcessOutcome::OomKilled,
            Outcome::EnomemAtStart => ProcessOutcome::EnomemAtStart,
            Outcome::RunningAtEnd => ProcessOutcome::RunningAtEnd,
            Outcome::NotStarted => ProcessOutcome::NotStarted,
        }
    }
}

impl Line {
    /// The line's text, and whether it surely is not a message (`None`: ask the parser).
    fn render(&self) -> (String, Option<bool>) {
        match self {
            Line::Message(message) => (message.line(), Some(false)),
            Line::Cut { message, at } => {
                let line = message.line();
                let mut cut = 1 + usize::from(*at) % (line.len() - 1);
                while !line.is_char_boundary(cut) {
                    cut -= 1;
                }
                (line[..cut].to_string(), Some(true))
            }
            Line::Garbage(bytes) => {
                let bytes: Vec<u8> = bytes.iter().copied().filter(|b| *b != b'\n').collect();
                let text = String::from_utf8_lossy(&bytes);
                (text.trim_end_matches('\r').to_string(), None)
            }
            Line::Deep {
                depth,
                objects,
                closed,
            } => {
                let depth = usize::from(*depth).max(200);
                let (open, close) = if *objects {
                    ("{\"a\":", "}")
                } else {
                    ("[", "]")
                };
                let mut line = format!(
                    r#"{{"type":"sample","t_ms":1,"cgroup":{}1"#,
                    open.repeat(depth)
                );
                if *closed {
                    line.push_str(&close.repeat(depth));
                    line.push('}');
                }
                (line, Some(true))
            }
            Line::Huge {
                message,
                digits,
                float,
            } => {
                let big = if *float {
                    format!("1e{}", 400 + u16::from(*digits))
                } else {
                    format!("1{}", "0".repeat(20 + usize::from(*digits)))
                };
                // Every message has a u64 `t_ms`, but the hello, which has `boot_ms`.
                let field = match message {
                    Message::Hello { .. } => "boot_ms",
                    _ => "t_ms",
                };
                let mut value = serde_json::to_value(message.build()).expect("messages serialize");
                value[field] = Value::Null;
                let text = value.to_string().replacen(
                    &format!("\"{field}\":null"),
                    &format!("\"{field}\":{big}"),
                    1,
                );
                (text, Some(true))
            }
            Line::Retyped {
                message,
                field,
                value,
            } => {
                let mut json = serde_json::to_value(message.build()).expect("messages serialize");
                if let Some(object) = json.as_object_mut() {
                    let keys: Vec<String> = object.keys().cloned().collect();
                    let key = &keys[usize::from(*field) % keys.len()];
                    object.insert(key.clone(), value.json());
                }
                (json.to_string(), None)
            }
            Line::Blank(n) => (" ".repeat(usize::from(*n % 4)), Some(false)),
        }
    }
}

impl Replacement {
    fn json(&self) -> Value {
        match self {
            Replacement::Null => Value::Null,
            Replacement::Negative(n) => Value::from(-n.saturating_abs().max(1)),
            Replacement::Float(x) => {
                serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number)
            }
            Replacement::Text(text) => Value::from(text.clone()),
            Replacement::Empty => Value::Object(serde_json::Map::new()),
        }
    }
}

/// What the protocol says the collector must end with.
#[derive(Debug, Default)]
struct Model {
    errors: usize,
    hello: bool,
    verdict: Option<RunOutcome>,
    samples: u64,
    events: usize,
}

impl Model {
    fn take(&mut self, line: &str, unparseable: Option<bool>) -> LineAction {
        if line.trim().is_empty() {
            return LineAction::Continue;
        }
        let parsed = serde_json::from_str::<GuestMessage>(line).ok();
        if let Some(expected) = unparseable {
            assert_eq!(
                parsed.is_none(),
                expected,
                "the line parses as expected: {line}"
            );
        }
        let Some(message) = parsed else {
            self.errors += 1;
            return LineAction::Continue;
        };
        if self.verdict.is_some() {
            self.errors += 1;
            return LineAction::Continue;
        }
        if let GuestMessage::Ready(ready) = &message {
            if self.hello || ready.protocol != CHANNEL_VERSION {
                self.errors += 1;
            }
            return if self.hello {
                LineAction::Continue
            } else {
                LineAction::SpecWanted
            };
        }
        if !self.hello && !matches!(message, GuestMessage::Hello(_)) {
            self.errors += 1;
        }
        match message {
            GuestMessage::Ready(_) => unreachable!("handled above"),
            GuestMessage::Hello(hello) => {
                if self.hello || hello.protocol != CHANNEL_VERSION {
                    self.errors += 1;
                }
                self.hello = true;
            }
            GuestMessage::Sample(_) => self.samples += 1,
            GuestMessage::Event(_) => self.events += 1,
            GuestMessage::Output(output) => {
                // The collector writes it to a file, unless the name cannot be one.
                if rsslab::records::output_file_name(&output.process, output.stream).is_none() {
                    self.errors += 1;
                }
            }
            GuestMessage::Verdict(verdict) => {
                self.verdict = Some(verdict.outcome);
                return LineAction::VerdictReceived;
            }
        }
        LineAction::Continue
    }
}

/// Feeds `lines` to a fresh collector, then a well-formed tail, and checks it against the
/// model; panics on a violation.
pub fn check(lines: &[Line]) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut collector = Collector::new(dir.path()).expect("a collector");
    let mut model = Model::default();
    let tail = [
        Line::Message(Message::Sample {
            t_ms: 1,
            process: BTreeMap::new(),
            cgroup: Metrics::new(),
            guest: Metrics::new(),
        }),
        Line::Message(Message::Verdict {
            t_ms: 2,
            outcome: 0,
            reason: None,
            processes: BTreeMap::new(),
            agent_cpu_ms: Some(3),
        }),
    ];
    for line in lines.iter().chain(&tail) {
        let (text, unparseable) = line.render();
        let expected = model.take(&text, unparseable);
        assert_eq!(collector.line(&text), expected, "the action for {text}");
    }
    assert_eq!(
        collector.protocol_error_count, model.errors,
        "{:?}",
        collector.protocol_errors
    );
    assert!(collector.protocol_errors.len() <= collector.protocol_error_count);
    assert!(
        collector
            .protocol_errors
            .iter()
            .all(|error| error.len() < 1024),
        "kept short"
    );
    assert_eq!(collector.verdict.as_ref().map(|v| v.outcome), model.verdict);
    assert_eq!(
        (collector.sample_count, collector.events.len()),
        (model.samples, model.events)
    );
    collector.flush().expect("samples.jsonl flushes");
    let written = std::fs::read_to_string(dir.path().join("samples.jsonl")).expect("samples");
    assert_eq!(written.lines().count() as u64, model.samples);
    for line in written.lines() {
        serde_json::from_str::<Sample>(line).expect("samples.jsonl holds samples");
    }
    let vm = VmOutput {
        exit: VmExit::Exited(Some(0)),
        fault: None,
        wall: Duration::from_secs(1),
        cpu: None,
        boot: rsslab::vm::BootKind::Cold,
    };
    let (outcome, reason) = classify(&vm, &collector);
    match (model.errors, model.verdict) {
        (0, Some(verdict)) => assert_eq!(outcome, verdict),
        _ => {
            assert_eq!(outcome, RunOutcome::InfraError);
            assert!(reason.is_some_and(|reason| !reason.is_empty()));
        }
    }
}
