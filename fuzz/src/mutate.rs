//! Near-valid scenarios: a built-in scenario with a few structured mutations.
//!
//! A [`Case`] is what the fuzzer's bytes decode to (with `arbitrary`): which seed scenario, and
//! a list of [`Mutation`]s applied to its lines in order. Values are drawn from pools of what
//! breaks parsers and validators (other types, absurd sizes and durations, names that do not
//! exist, nested arrays and tables), keys from every key the format has, so most cases get past
//! the TOML parser and exercise the validation behind it.

use std::path::Path;
use std::sync::OnceLock;

use arbitrary::Arbitrary;

/// One fuzz case: a seed scenario and what to do to it.
#[derive(Debug, Arbitrary)]
pub struct Case {
    pub seed: u8,
    pub mutations: Vec<Mutation>,
}

/// One edit of the scenario's lines; line and byte numbers wrap around the file.
#[derive(Debug, Arbitrary)]
pub enum Mutation {
    DeleteLine(u16),
    DuplicateLine(u16),
    MoveLine {
        from: u16,
        to: u16,
    },
    /// Cut the file at a byte.
    Truncate(u16),
    /// Replace the value of a `key = value` line.
    SetValue {
        line: u16,
        value: Value,
    },
    /// Replace the key of a `key = value` line.
    RenameKey {
        line: u16,
        key: Key,
    },
    /// Add a `key = value` line after a line.
    AddEntry {
        line: u16,
        key: Key,
        value: Value,
    },
    /// Add a table header after a line.
    AddTable {
        line: u16,
        table: Table,
    },
    /// Insert text at a byte.
    InsertText {
        at: u16,
        text: String,
    },
}

/// A TOML value, mostly of the kinds scenarios hold.
#[derive(Debug, Arbitrary)]
pub enum Value {
    Integer(i64),
    /// An integer of this many digits (past i64 from 19 on).
    Digits(u8),
    Float(f64),
    Bool(bool),
    Text(String),
    Size {
        number: Number,
        unit: Pick<SIZE_UNITS>,
    },
    Duration {
        number: Number,
        unit: Pick<DURATION_UNITS>,
    },
    Name(Name),
    /// `<process>:<phase>`, an event label.
    Event(Name, Pick<PHASES>),
    /// `process.<name>.<metric>`, `cgroup.<metric>`, `guest.<metric>`.
    Metric(Pick<NAMESPACES>, Name, Pick<METRICS>),
    Array(Vec<Value>),
    Table(Vec<(Key, Value)>),
}

/// A number as sizes and durations write it.
#[derive(Debug, Arbitrary)]
pub enum Number {
    Small(u8),
    Any(u64),
    Negative(u16),
    Fraction(u16, u8),
    Digits(u8),
}

/// A process name: one the seeds use, or any text.
#[derive(Debug, Arbitrary)]
pub enum Name {
    Known(Pick<NAMES>),
    Any(String),
}

/// A key: one the format has, or any text.
#[derive(Debug, Arbitrary)]
pub enum Key {
    Known(Pick<KEYS>),
    Any(String),
}

/// A table header.
#[derive(Debug, Arbitrary)]
pub enum Table {
    Known(Pick<TABLES>),
    Any(String),
}

/// An index into one of the pools below (wrapping).
#[derive(Debug, Clone, Copy, Arbitrary)]
pub struct Pick<const POOL: usize>(pub u8);

const SIZE_UNITS: usize = 0;
const DURATION_UNITS: usize = 1;
const PHASES: usize = 2;
const NAMESPACES: usize = 3;
const METRICS: usize = 4;
const NAMES: usize = 5;
const KEYS: usize = 6;
const TABLES: usize = 7;

const POOLS: [&[&str]; 8] = [
    &[
        "B",
        "KiB",
        "MiB",
        "GiB",
        "TiB",
        "PiB",
        "EiB",
        "",
        "kB",
        "MB",
        "GB",
        "mib",
        "Mi",
        "M",
        " MiB",
        "parsecs",
        "% of mem_total",
        "% of mem_available",
        "% of commit_limit",
        "%",
    ],
    &[
        "ms", "s", "m", "min", "h", "", "us", "sec", " s", "d", "MiB",
    ],
    &[
        "started",
        "ended",
        "allocated",
        "released",
        "done",
        "full",
        "holding",
        "mapped",
        "touched",
        "written",
        "round",
        "nope",
        "",
    ],
    &["process", "cgroup", "guest", "cgroups", ""],
    &[
        "rss",
        "vsz",
        "lazyfree",
        "swap",
        "rss_file",
        "heap_released",
        "heap_inuse",
        "balloon",
        "usage",
        "working_set",
        "limit",
        "inactive_file",
        "mem_available",
        "committed_as",
        "commit_limit",
        "kubelet_available",
        "nope",
        "",
    ],
    &[
        "service",
        "balloon",
        "hog",
        "batch",
        "go-control",
        "reserve",
        "nope",
        "",
        "Service",
    ],
    &[
        "id",
        "title",
        "story",
        "kernels",
        "memory",
        "cpus",
        "disk",
        "timeout",
        "version",
        "memory_max",
        "memory_high",
        "swap_max",
        "every",
        "duration",
        "name",
        "workload",
        "go",
        "env",
        "cgroup",
        "start",
        "after",
        "phase",
        "delay",
        "args",
        "no_madv_free",
        "heap",
        "live",
        "release",
        "chunk",
        "cycles",
        "hold",
        "hold_allocated",
        "exit",
        "free_os_memory",
        "step",
        "until_available",
        "max",
        "files",
        "file_size",
        "dir",
        "working_set",
        "mode",
        "repeat",
        "anon",
        "size",
        "mapping",
        "commit",
        "touch",
        "metric",
        "stat",
        "from",
        "to",
        "above",
        "below",
        "at_least",
        "at_most",
        "times",
        "plus",
        "process",
        "outcome",
        "run_outcome",
        "when",
        "kernel",
        "madv_free",
        "cgroup_v1_memory",
        "vm.overcommit_memory",
        "process.service.args.heap",
        "process.service.args.release",
        "process.service.go",
        "process.nope.args.heap",
        "vm.memory",
        "cgroup.memory_max",
        "sample.duration",
        "sysctl.\"vm.overcommit_memory\"",
        "vm.kernels",
        "/sys/kernel/mm/transparent_hugepage/enabled",
    ],
    &[
        "[scenario]",
        "[vm]",
        "[sysctl]",
        "[sysfs]",
        "[cgroup]",
        "[sample]",
        "[[process]]",
        "[matrix]",
        "[[expect]]",
        "[process]",
        "[expect]",
        "[[vm]]",
        "[vm.kernels]",
        "[process.args]",
        "[sysctl.vm]",
        "[[matrix]]",
    ],
];

impl<const POOL: usize> Pick<POOL> {
    fn text(self) -> &'static str {
        let pool = POOLS[POOL];
        pool[usize::from(self.0) % pool.len()]
    }
}

impl Case {
    /// The mutated scenario.
    pub fn text(&self) -> String {
        let seeds = seeds();
        let seed = &seeds[usize::from(self.seed) % seeds.len()];
        let mut lines: Vec<String> = seed.split_inclusive('\n').map(String::from).collect();
        for mutation in &self.mutations {
            mutation.apply(&mut lines);
        }
        lines.concat()
    }
}

impl Mutation {
    fn apply(&self, lines: &mut Vec<String>) {
        if lines.is_empty() {
            lines.push(String::new());
        }
        let at = |n: u16, lines: &Vec<String>| usize::from(n) % lines.len();
        match self {
            Mutation::DeleteLine(n) => {
                lines.remove(at(*n, lines));
            }
            Mutation::DuplicateLine(n) => {
                let i = at(*n, lines);
                lines.insert(i, lines[i].clone());
            }
            Mutation::MoveLine { from, to } => {
                let line = lines.remove(at(*from, lines));
                let to = usize::from(*to) % (lines.len() + 1);
                lines.insert(to, line);
            }
            Mutation::Truncate(n) => {
                let mut text = lines.concat();
                text.truncate(char_boundary(&text, usize::from(*n)));
                *lines = text.split_inclusive('\n').map(String::from).collect();
            }
            Mutation::SetValue { line, value } => {
                let i = at(*line, lines);
                if let Some((key, _)) = lines[i].split_once('=') {
                    lines[i] = format!("{key}= {}\n", value.render());
                }
            }
            Mutation::RenameKey { line, key } => {
                let i = at(*line, lines);
                if let Some((_, value)) = lines[i].split_once('=') {
                    lines[i] = format!("{} ={value}", key.render());
                }
            }
            Mutation::AddEntry { line, key, value } => {
                let i = at(*line, lines) + 1;
                lines.insert(i, format!("{} = {}\n", key.render(), value.render()));
            }
            Mutation::AddTable { line, table } => {
                let i = at(*line, lines) + 1;
                let header = match table {
                    Table::Known(pick) => pick.text().to_string(),
                    Table::Any(text) => format!("[{}]", quote_key(text)),
                };
                lines.insert(i, format!("{header}\n"));
            }
            Mutation::InsertText { at: byte, text } => {
                let mut whole = lines.concat();
                let byte = char_boundary(&whole, usize::from(*byte) % (whole.len() + 1));
                whole.insert_str(byte, text);
                *lines = whole.split_inclusive('\n').map(String::from).collect();
            }
        }
    }
}

impl Value {
    /// The value in TOML syntax.
    fn render(&self) -> String {
        match self {
            Value::Integer(n) => n.to_string(),
            Value::Digits(n) => digits(*n),
            Value::Float(x) if x.is_nan() => "nan".into(),
            Value::Float(x) if x.is_infinite() => if *x > 0.0 { "inf" } else { "-inf" }.into(),
            Value::Float(x) => format!("{x:?}"),
            Value::Bool(flag) => flag.to_string(),
            Value::Text(text) => quote(text),
            Value::Size { number, unit } => quote(&format!("{}{}", number.render(), unit.text())),
            Value::Duration { number, unit } => {
                quote(&format!("{}{}", number.render(), unit.text()))
            }
            Value::Name(name) => quote(&name.text()),
            Value::Event(name, phase) => quote(&format!("{}:{}", name.text(), phase.text())),
            Value::Metric(namespace, name, metric) => match namespace.text() {
                "process" => quote(&format!("process.{}.{}", name.text(), metric.text())),
                other => quote(&format!("{other}.{}", metric.text())),
            },
            Value::Array(items) => {
                let items: Vec<String> = items.iter().map(Value::render).collect();
                format!("[{}]", items.join(", "))
            }
            Value::Table(entries) => {
                let entries: Vec<String> = entries
                    .iter()
                    .map(|(key, value)| format!("{} = {}", key.render(), value.render()))
                    .collect();
                format!("{{ {} }}", entries.join(", "))
            }
        }
    }
}

impl Number {
    fn render(&self) -> String {
        match self {
            Number::Small(n) => n.to_string(),
            Number::Any(n) => n.to_string(),
            Number::Negative(n) => format!("-{n}"),
            Number::Fraction(whole, part) => format!("{whole}.{part}"),
            Number::Digits(n) => digits(*n),
        }
    }
}

impl Name {
    fn text(&self) -> String {
        match self {
            Name::Known(pick) => pick.text().to_string(),
            Name::Any(text) => text.clone(),
        }
    }
}

impl Key {
    fn render(&self) -> String {
        match self {
            Key::Known(pick) => quote_key(pick.text()),
            Key::Any(text) => quote_key(text),
        }
    }
}

/// `1` followed by zeros: `n` digits in all.
fn digits(n: u8) -> String {
    format!("1{}", "0".repeat(usize::from(n % 64)))
}

/// A TOML basic string (JSON's escapes are TOML's).
fn quote(text: &str) -> String {
    serde_json::to_string(text).expect("strings serialize")
}

/// A key, bare when it can be.
fn quote_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare { key.to_string() } else { quote(key) }
}

/// The largest char boundary at or below `index`.
fn char_boundary(text: &str, index: usize) -> usize {
    let mut index = index.min(text.len());
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

/// The seed scenarios: the built-in lab and the good test fixtures, read once.
pub fn seeds() -> &'static [String] {
    static SEEDS: OnceLock<Vec<String>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut seeds = Vec::new();
        for dir in [
            "scenarios",
            "runner/tests/fixtures/good",
            "runner/tests/fixtures/vm",
        ] {
            let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
                continue;
            };
            let mut files: Vec<_> = entries
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
                .collect();
            files.sort();
            seeds.extend(files.iter().filter_map(|f| std::fs::read_to_string(f).ok()));
        }
        assert!(
            !seeds.is_empty(),
            "no seed scenarios under {}",
            root.display()
        );
        seeds
    })
}
