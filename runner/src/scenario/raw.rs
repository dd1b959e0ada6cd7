//! Reading a scenario file into raw, still unchecked values, keeping every span.
//!
//! The file is parsed once into toml's spanned tree ([`DeTable`]); each table is then
//! deserialized on its own from its subtree, so one file yields every error of every table at
//! once, each at its exact position (toml errors carry the span of the value they are about).
//! Before serde sees a table, its keys are checked against the fields of the raw struct
//! ([`fields_of`]), so every misspelled key is reported with a did-you-mean, not only the
//! first.
//!
//! Entry points: [`read_document`] (once per file: syntax, top-level tables, `[scenario]`) and
//! [`read_setup`] (once per matrix variant: everything a run depends on).

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_spanned::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use rsslab_wire::units::{Bytes, Millis};
use rsslab_wire::workload::{
    BalloonArgs, ExecArgs, FileIoArgs, GoSourceArgs, HeapChurnArgs, HogArgs, VszStartupArgs,
    WORKLOAD_NAMES, Workload,
};

use super::diag::{Diagnostic, from_toml_error, join, suggest, table_name};

/// A value in the spanned tree.
pub type Node<'i> = Spanned<DeValue<'i>>;

/// The top-level tables a scenario may have, in the order the docs list them.
pub const TOP_LEVEL: &[&str] = &[
    "scenario", "vm", "sysctl", "sysfs", "cgroup", "node", "pod", "sample", "process", "matrix",
    "expect",
];

/// The file, split: what is read once, and the body every variant is read from.
pub struct Document<'i> {
    /// `[scenario]`, if it read.
    pub header: Option<RawHeader>,
    /// `[matrix]`, unchecked.
    pub matrix: Option<Node<'i>>,
    /// `[[expect]]`, unchecked (read by [`crate::scenario::expect::read_expectations`]).
    pub expect: Option<Node<'i>>,
    /// Everything else (`vm`, `sysctl` with flat dotted names, `sysfs`, `cgroup`, `node`,
    /// `pod`, `sample`, `process`).
    pub body: DeTable<'i>,
}

/// `[scenario]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeader {
    /// `[a-z0-9-]`, unique across the lab. Required.
    pub id: Spanned<String>,
    /// One line for the report. Required.
    pub title: Spanned<String>,
    /// Markdown shown above the scenario's plots. Default: empty.
    #[serde(default)]
    pub story: Option<String>,
}

/// `[vm]`; defaults are applied in validation.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVm {
    pub kernels: Option<Spanned<Vec<Spanned<String>>>>,
    pub memory: Option<Spanned<Bytes>>,
    pub cpus: Option<Spanned<i64>>,
    pub disk: Option<Spanned<Bytes>>,
    pub timeout: Option<Spanned<Millis>>,
}

/// `[cgroup]`: the fields of [`rsslab_wire::CgroupSpec`], with spans.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCgroup {
    pub version: Option<Spanned<i64>>,
    pub memory_max: Option<Spanned<Bytes>>,
    pub memory_high: Option<Spanned<HighLimit>>,
    pub swap_max: Option<Spanned<Bytes>>,
}

/// `memory_high`: a size, or `"max"`, the kernel's word for no soft limit (what memory.high
/// holds until one is written), so a `[matrix]` can set it in one variant and not another.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HighLimit(pub Option<Bytes>);

impl<'de> Deserialize<'de> for HighLimit {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HighVisitor;
        impl serde::de::Visitor<'_> for HighVisitor {
            type Value = HighLimit;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a size such as \"100MiB\", or \"max\" for none")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<HighLimit, E> {
                Ok(HighLimit(Some(Bytes(v))))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<HighLimit, E> {
                u64::try_from(v)
                    .map(|v| HighLimit(Some(Bytes(v))))
                    .map_err(|_| E::custom(format!("a size cannot be negative ({v})")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<HighLimit, E> {
                match v {
                    "max" => Ok(HighLimit(None)),
                    size => size.parse().map(|b| HighLimit(Some(b))).map_err(E::custom),
                }
            }
        }
        deserializer.deserialize_any(HighVisitor)
    }
}

/// `[node]`: the kubelet of the node the pods run on (the fields of
/// [`rsslab_wire::pod::NodeSpec`], with spans).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    pub kubernetes: Spanned<String>,
    pub cgroup_version: Option<Spanned<i64>>,
    pub cgroup_driver: Option<Spanned<String>>,
    pub system_reserved: Option<Spanned<Bytes>>,
    pub kube_reserved: Option<Spanned<Bytes>>,
    pub feature_gates: Option<BTreeMap<String, Spanned<bool>>>,
    pub memory_throttling_factor: Option<Spanned<f64>>,
    pub single_process_oom_kill: Option<Spanned<bool>>,
    pub memory_reservation_policy: Option<Spanned<String>>,
    pub max_container_restart_period: Option<Spanned<Millis>>,
}

/// One `[[pod]]`: written out (`name` and `[[pod.container]]`), or from a Kubernetes
/// manifest (`manifest`, optionally `object`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPod {
    pub name: Option<Spanned<String>>,
    pub manifest: Option<Spanned<String>>,
    /// `Deployment/web`: one workload object of the manifest.
    pub object: Option<Spanned<String>>,
    pub priority_class_name: Option<Spanned<String>>,
    pub restart_policy: Option<Spanned<String>>,
    pub container: Option<Spanned<Vec<Spanned<RawContainer>>>>,
    pub init_container: Option<Spanned<Vec<Spanned<RawContainer>>>>,
}

/// `[[pod.container]]` or `[[pod.init_container]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawContainer {
    pub name: Spanned<String>,
    pub requests: Option<Spanned<RawResources>>,
    pub limits: Option<Spanned<RawResources>>,
    /// `"Always"` on an init container: a sidecar.
    pub restart_policy: Option<Spanned<String>>,
}

/// `requests` or `limits`: memory a size as everywhere in a scenario, CPU a Kubernetes
/// quantity (`"250m"`, `1`, `0.5`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResources {
    pub memory: Option<Spanned<Bytes>>,
    pub cpu: Option<Spanned<CpuAmount>>,
}

/// A CPU amount as written: a Kubernetes quantity string or a number of cores.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum CpuAmount {
    Cores(f64),
    Quantity(String),
}

/// A pod with where it was written.
#[derive(Debug)]
pub struct PodEntry {
    pub index: usize,
    pub span: Range<usize>,
    pub raw: RawPod,
}

/// `[sample]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSample {
    pub every: Option<Spanned<Millis>>,
    pub duration: Spanned<Millis>,
    /// Event labels that end the run early (with `after`); `duration` stays the deadline.
    pub until: Option<Spanned<EventLabels>>,
    pub after: Option<Spanned<Millis>>,
}

/// One event label or a list of them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum EventLabels {
    One(String),
    Many(Vec<String>),
}

impl EventLabels {
    pub fn labels(&self) -> Vec<String> {
        match self {
            EventLabels::One(label) => vec![label.clone()],
            EventLabels::Many(labels) => labels.clone(),
        }
    }
}

/// One `[[process]]`, its workload arguments aside (they are read by the workload's schema).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProcess {
    pub name: Spanned<String>,
    pub workload: Spanned<String>,
    #[serde(default)]
    pub args: Option<IgnoredAny>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub cgroup: Option<Spanned<bool>>,
    /// `<pod>/<container>`: the container it runs in.
    #[serde(default)]
    pub container: Option<Spanned<String>>,
    #[serde(default)]
    pub start: Option<Spanned<RawStart>>,
    #[serde(default)]
    pub go: Option<Spanned<String>>,
    /// Emulates kernels before 4.5: madvise(MADV_FREE) fails with EINVAL.
    #[serde(default)]
    pub no_madv_free: Option<bool>,
    /// A plain supervisor's restarts: `never`, `always`, `on-failure`.
    #[serde(default)]
    pub restart: Option<Spanned<String>>,
}

/// `start = { after, phase, delay }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStart {
    pub after: Option<Spanned<String>>,
    pub phase: Option<Spanned<String>>,
    #[serde(default)]
    pub delay: Option<Spanned<Millis>>,
}

/// A process with its workload read.
#[derive(Debug)]
pub struct ProcessEntry {
    pub index: usize,
    /// The `[[process]]` header (or inline table).
    pub span: Range<usize>,
    pub raw: RawProcess,
    /// `None` when the workload or its arguments did not read (already reported).
    pub workload: Option<Workload>,
    /// Span of each argument's value, by name.
    pub arg_spans: BTreeMap<String, Range<usize>>,
    /// Span of the `args` table, or of the process when it has none.
    pub args_span: Range<usize>,
    /// Span of each env key, by name.
    pub env_spans: BTreeMap<String, Range<usize>>,
    /// Spans inside table- and array-valued arguments (`files`, `phases`, `command`): argument
    /// name -> entry key (or array index) -> span of the entry's value.
    pub entry_spans: BTreeMap<String, BTreeMap<String, Range<usize>>>,
}

impl ProcessEntry {
    /// Where an argument was written (the args table when it was left at its default).
    pub fn arg_span(&self, arg: &str) -> Range<usize> {
        self.arg_spans
            .get(arg)
            .cloned()
            .unwrap_or_else(|| self.args_span.clone())
    }

    /// An error about one argument.
    pub fn arg_error(&self, arg: &str, message: String) -> Diagnostic {
        let key = format!("process[{}].args.{arg}", self.index);
        Diagnostic::at(self.arg_span(arg), &key, format!("`{key}` {message}"))
    }

    /// An error about one entry of a table or array argument (`files."/opt/app"`,
    /// `command[0]`), pointed at its value.
    pub fn entry_error(&self, arg: &str, entry: &str, message: String) -> Diagnostic {
        let span = self
            .entry_spans
            .get(arg)
            .and_then(|spans| spans.get(entry))
            .cloned()
            .unwrap_or_else(|| self.arg_span(arg));
        let key = match entry.parse::<usize>() {
            Ok(index) => format!("process[{}].args.{arg}[{index}]", self.index),
            Err(_) => format!("process[{}].args.{arg}.{}", self.index, key_segment(entry)),
        };
        Diagnostic::at(span, &key, format!("`{key}` {message}"))
    }
}

/// A `[sysctl]` or `[sysfs]` entry.
#[derive(Debug, Clone)]
pub struct Knob {
    pub name: String,
    pub key_span: Range<usize>,
    pub value: String,
}

/// Everything a variant's run depends on, read but not yet checked.
#[derive(Debug)]
pub struct RawSetup {
    pub vm: RawVm,
    pub sysctl: Vec<Knob>,
    pub sysfs: Vec<Knob>,
    pub cgroup: Option<RawCgroup>,
    /// `[node]` and where it is written.
    pub node: Option<(RawNode, Range<usize>)>,
    pub pods: Vec<PodEntry>,
    pub sample: RawSample,
    pub processes: Vec<ProcessEntry>,
    /// Where to point errors about the file as a whole (the `[sample]` header).
    pub sample_span: Range<usize>,
    /// The `[cgroup]` table, when there is one.
    pub cgroup_span: Range<usize>,
}

/// A native workload as the scenario reader knows it: its argument names and its reader.
pub struct WorkloadSchema {
    pub name: &'static str,
    pub args: fn() -> &'static [&'static str],
    pub read: fn(Node<'_>) -> Result<Workload, toml::de::Error>,
}

/// Every workload of [`WORKLOAD_NAMES`]; a test keeps the two in step.
pub const WORKLOADS: &[WorkloadSchema] = &[
    WorkloadSchema {
        name: "heap-churn",
        args: fields_of::<HeapChurnArgs>,
        read: |node| {
            HeapChurnArgs::deserialize(ValueDeserializer::from(node)).map(Workload::HeapChurn)
        },
    },
    WorkloadSchema {
        name: "balloon",
        args: fields_of::<BalloonArgs>,
        read: |node| BalloonArgs::deserialize(ValueDeserializer::from(node)).map(Workload::Balloon),
    },
    WorkloadSchema {
        name: "file-io",
        args: fields_of::<FileIoArgs>,
        read: |node| FileIoArgs::deserialize(ValueDeserializer::from(node)).map(Workload::FileIo),
    },
    WorkloadSchema {
        name: "hog",
        args: fields_of::<HogArgs>,
        read: |node| HogArgs::deserialize(ValueDeserializer::from(node)).map(Workload::Hog),
    },
    WorkloadSchema {
        name: "vsz-startup",
        args: fields_of::<VszStartupArgs>,
        read: |node| {
            VszStartupArgs::deserialize(ValueDeserializer::from(node)).map(Workload::VszStartup)
        },
    },
    WorkloadSchema {
        name: "exec",
        args: fields_of::<ExecArgs>,
        read: |node| ExecArgs::deserialize(ValueDeserializer::from(node)).map(Workload::Exec),
    },
    WorkloadSchema {
        name: "go-source",
        args: fields_of::<GoSourceArgs>,
        read: |node| {
            GoSourceArgs::deserialize(ValueDeserializer::from(node)).map(Workload::GoSource)
        },
    },
    WorkloadSchema {
        name: "go-heap-churn",
        args: fields_of::<rsslab_wire::workload::GoHeapChurnArgs>,
        read: |node| {
            rsslab_wire::workload::GoHeapChurnArgs::deserialize(ValueDeserializer::from(node))
                .map(Workload::GoHeapChurn)
        },
    },
];

/// The schema of a workload name.
pub fn workload_schema(name: &str) -> Option<&'static WorkloadSchema> {
    WORKLOADS.iter().find(|schema| schema.name == name)
}

/// Parses the file and reads what is read once; `None` after a syntax error.
pub fn read_document<'i>(source: &'i str, diags: &mut Vec<Diagnostic>) -> Option<Document<'i>> {
    let root = match DeTable::parse(source) {
        Ok(root) => root.into_inner(),
        Err(error) => {
            diags.push(syntax_error(&error, source));
            return None;
        }
    };
    check_top_level(&root, diags);
    let header = match root.get("scenario") {
        Some(node) => read_table::<RawHeader>(&root, node, "scenario", diags),
        None => {
            diags.push(missing_table(
                "scenario",
                "[scenario]\nid = \"my-scenario\"\ntitle = \"What this scenario shows\"",
            ));
            None
        }
    };
    let matrix = root.get("matrix").cloned();
    let expect = root.get("expect").cloned();
    let mut body = root;
    for key in ["scenario", "matrix", "expect"] {
        body.remove(key);
    }
    flatten_sysctl(&mut body, diags);
    Some(Document {
        header,
        matrix,
        expect,
        body,
    })
}

/// A TOML syntax error, with what the source shows at its place: the key set twice, or a
/// table header with a bracket too many.
fn syntax_error(error: &toml::de::Error, source: &str) -> Diagnostic {
    let diagnostic = from_toml_error(error, "");
    let span = error.span().unwrap_or(0..0);
    let at = source.get(span.clone()).unwrap_or("").trim();
    let line_start = source[..span.start.min(source.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line = source[line_start..]
        .lines()
        .next()
        .unwrap_or("")
        .trim_start();
    if error.message().contains("duplicate key") && !at.is_empty() {
        let (what, name) = match line.strip_prefix('[') {
            Some(_) => ("table", format!("[{}]", at.trim_matches(['[', ']']))),
            None => ("key", format!("`{at}`")),
        };
        let mut diagnostic = diagnostic;
        // The key as the file writes it: a path of TOML keys, quoted ones kept quoted.
        diagnostic.key = at.trim_matches(['[', ']']).to_string();
        diagnostic.message = format!("invalid TOML: the {what} {name} is written twice");
        return diagnostic;
    }
    if error.message().contains("expected newline") && line.starts_with('[') {
        let mut diagnostic = diagnostic;
        diagnostic.help = vec![
            "a table header is [name] alone on its line ([[process]] and [[expect]] with two pairs of brackets)".into(),
        ];
        return diagnostic;
    }
    diagnostic
}

/// Unknown top-level tables.
fn check_top_level(root: &DeTable<'_>, diags: &mut Vec<Diagnostic>) {
    for (key, _) in root.iter() {
        let name = key.get_ref().as_ref();
        if !TOP_LEVEL.contains(&name) {
            diags.push(
                Diagnostic::at(key.span(), name, format!("unknown table `{name}`"))
                    .help(suggest(name, TOP_LEVEL)),
            );
        }
    }
}

/// How to write a table at `path`: a header for a top-level one, `{ ... }` below.
fn table_help(path: &str) -> String {
    match path {
        "sysctl" => "write [sysctl] with one setting a line: \"vm.overcommit_memory\" = 1".into(),
        "sysfs" => "write [sysfs] with one file a line: \"/sys/kernel/mm/transparent_hugepage/enabled\" = \"always\"".into(),
        _ if path.starts_with("process[") && !path.contains('.') => {
            "write [[process]] (two pairs of brackets) above each process".into()
        }
        _ if path.starts_with("expect[") && !path.contains('.') => {
            "write [[expect]] (two pairs of brackets) above each expectation".into()
        }
        _ if path.contains('.') => {
            let key = path.rsplit('.').next().unwrap_or(path);
            format!("write {key} = {{ ... }} with its keys inside")
        }
        _ => format!("write [{path}] on its own line, with its keys below it"),
    }
}

/// An error for a required table that is absent.
pub fn missing_table(name: &str, example: &str) -> Diagnostic {
    Diagnostic::missing(name, format!("missing table [{name}]")).help(format!("add\n{example}"))
}

/// Deserializes one table of the tree, reporting every unknown key first (with a did-you-mean)
/// and then serde's first error. `path` names the table in messages.
pub fn read_table<T: DeserializeOwned>(
    root: &DeTable<'_>,
    node: &Node<'_>,
    path: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<T> {
    let DeValue::Table(table) = node.get_ref() else {
        diags.push(
            Diagnostic::at(node.span(), path, format!("`{path}` must be a table"))
                .label(format!("found {}", node.get_ref().type_str()))
                .help(table_help(path)),
        );
        return None;
    };
    let fields = fields_of::<T>();
    let mut known = table.clone();
    for (key, _) in table.iter() {
        let name = key.get_ref().as_ref();
        if !fields.contains(&name) {
            let help = if TOP_LEVEL.contains(&name) && !path.contains(['.', '[']) {
                format!(
                    "[{name}] is a table of its own: write [{name}] on its own line, with its keys below it"
                )
            } else {
                suggest(name, fields)
            };
            diags.push(
                Diagnostic::at(
                    key.span(),
                    join(path, &key_segment(name)),
                    format!("unknown key `{name}` in {}", table_name(path)),
                )
                .help(help),
            );
            known.remove(name);
        }
    }
    let node = Spanned::new(node.span(), DeValue::Table(known));
    deserialize(
        root,
        node,
        path,
        |node| T::deserialize(ValueDeserializer::from(node)),
        diags,
    )
}

/// Runs a serde reader on a node, turning its error into a diagnostic at the right key.
fn deserialize<'i, T>(
    root: &DeTable<'i>,
    node: Node<'i>,
    path: &str,
    read: impl FnOnce(Node<'i>) -> Result<T, toml::de::Error>,
    diags: &mut Vec<Diagnostic>,
) -> Option<T> {
    let span = node.span();
    match read(node) {
        Ok(value) => Some(value),
        Err(error) => {
            let at = error.span().unwrap_or(span.clone());
            let error_path = if at == span {
                path.to_string()
            } else {
                path_at(root, &at)
            };
            diags.push(from_toml_error(&error, &error_path));
            None
        }
    }
}

/// Reads everything a variant's runs depend on from a body; `None` if anything did not read
/// (all of it reported).
pub fn read_setup(body: &DeTable<'_>, diags: &mut Vec<Diagnostic>) -> Option<RawSetup> {
    let before = diags.len();
    let vm = match body.get("vm") {
        Some(node) => read_table::<RawVm>(body, node, "vm", diags),
        None => Some(RawVm::default()),
    };
    let cgroup = body
        .get("cgroup")
        .and_then(|node| read_table::<RawCgroup>(body, node, "cgroup", diags));
    let cgroup_span = body.get("cgroup").map_or(0..0, |node| node.span());
    let (sample, sample_span) = match body.get("sample") {
        Some(node) => (
            read_table::<RawSample>(body, node, "sample", diags),
            node.span(),
        ),
        None => {
            diags.push(missing_table("sample", "[sample]\nduration = \"30s\""));
            (None, 0..0)
        }
    };
    let node = body.get("node").and_then(|node| {
        read_table::<RawNode>(body, node, "node", diags).map(|raw| (raw, node.span()))
    });
    let pods = read_pods(body, diags);
    let sysctl = knobs(body, "sysctl", diags);
    let sysfs = knobs(body, "sysfs", diags);
    let processes = read_processes(body, diags);
    if diags.len() > before {
        return None;
    }
    Some(RawSetup {
        vm: vm?,
        sysctl,
        sysfs,
        cgroup,
        node,
        pods,
        sample: sample?,
        processes,
        sample_span,
        cgroup_span,
    })
}

/// Every `[[pod]]` (none without).
fn read_pods(body: &DeTable<'_>, diags: &mut Vec<Diagnostic>) -> Vec<PodEntry> {
    let Some(node) = body.get("pod") else {
        return Vec::new();
    };
    let DeValue::Array(array) = node.get_ref() else {
        diags.push(
            Diagnostic::at(node.span(), "pod", "`pod` must be an array of tables")
                .help("write [[pod]] (two pairs of brackets) above each pod"),
        );
        return Vec::new();
    };
    array
        .iter()
        .enumerate()
        .filter_map(|(index, node)| {
            let path = format!("pod[{index}]");
            let raw = read_table::<RawPod>(body, node, &path, diags)?;
            Some(PodEntry {
                index,
                span: node.span(),
                raw,
            })
        })
        .collect()
}

/// Every `[[process]]`.
fn read_processes(body: &DeTable<'_>, diags: &mut Vec<Diagnostic>) -> Vec<ProcessEntry> {
    let Some(node) = body.get("process") else {
        diags.push(
            Diagnostic::missing("process", "no [[process]]: a scenario runs at least one process").help(
                "add\n[[process]]\nname = \"service\"\nworkload = \"heap-churn\"\nargs = { heap = \"400MiB\" }",
            ),
        );
        return Vec::new();
    };
    let DeValue::Array(array) = node.get_ref() else {
        diags.push(
            Diagnostic::at(
                node.span(),
                "process",
                "`process` must be an array of tables",
            )
            .help("write [[process]] (two pairs of brackets) above each process"),
        );
        return Vec::new();
    };
    if array.is_empty() {
        diags.push(
            Diagnostic::at(node.span(), "process", "no processes")
                .help("add at least one [[process]]"),
        );
    }
    array
        .iter()
        .enumerate()
        .filter_map(|(index, node)| read_process(body, index, node, diags))
        .collect()
}

/// One `[[process]]` and its workload.
fn read_process(
    body: &DeTable<'_>,
    index: usize,
    node: &Node<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<ProcessEntry> {
    let path = format!("process[{index}]");
    let raw = read_table::<RawProcess>(body, node, &path, diags)?;
    let args = node.get_ref().get("args");
    let args_span = args.map_or(node.span(), |args| args.span());
    let workload = read_workload(body, &path, &raw.workload, args, node.span(), diags);
    Some(ProcessEntry {
        index,
        span: node.span(),
        workload,
        arg_spans: value_spans(args),
        entry_spans: entry_spans(args),
        args_span,
        env_spans: key_spans(node.get_ref().get("env")),
        raw,
    })
}

/// The workload named by `workload`, with its `args` (all defaults when omitted).
fn read_workload(
    body: &DeTable<'_>,
    path: &str,
    name: &Spanned<String>,
    args: Option<&Node<'_>>,
    process_span: Range<usize>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Workload> {
    let Some(schema) = workload_schema(name.get_ref()) else {
        diags.push(unknown_workload(path, name));
        return None;
    };
    let args_path = format!("{path}.args");
    let args = args
        .cloned()
        .unwrap_or_else(|| Spanned::new(process_span, DeValue::Table(DeTable::new())));
    let DeValue::Table(table) = args.get_ref() else {
        diags.push(
            Diagnostic::at(
                args.span(),
                &args_path,
                format!("`{args_path}` must be a table"),
            )
            .help(format!(
                "write args = {{ ... }} with the arguments of {}",
                schema.name
            )),
        );
        return None;
    };
    let fields = (schema.args)();
    let mut known = table.clone();
    for (key, _) in table.iter() {
        let arg = key.get_ref().as_ref();
        if !fields.contains(&arg) {
            diags.push(
                Diagnostic::at(
                    key.span(),
                    join(&args_path, arg),
                    format!("unknown argument `{arg}` of {}", schema.name),
                )
                .help(suggest(arg, fields)),
            );
            known.remove(arg);
        }
    }
    let node = Spanned::new(args.span(), DeValue::Table(known));
    deserialize(body, node, &args_path, schema.read, diags)
}

/// An unknown workload name, with a did-you-mean.
fn unknown_workload(path: &str, name: &Spanned<String>) -> Diagnostic {
    let key = format!("{path}.workload");
    let text = name.get_ref();
    let diagnostic = Diagnostic::at(
        name.span(),
        &key,
        format!("unknown workload `{text}` in `{key}`"),
    );
    diagnostic.help(suggest(text, WORKLOAD_NAMES))
}

/// `[sysctl]` or `[sysfs]` entries; values are integers or strings, stored as text.
fn knobs(body: &DeTable<'_>, table: &str, diags: &mut Vec<Diagnostic>) -> Vec<Knob> {
    let Some(node) = body.get(table) else {
        return Vec::new();
    };
    let DeValue::Table(entries) = node.get_ref() else {
        diags.push(
            Diagnostic::at(node.span(), table, format!("`{table}` must be a table"))
                .label(format!("found {}", node.get_ref().type_str()))
                .help(table_help(table)),
        );
        return Vec::new();
    };
    let mut knobs = Vec::new();
    for (key, value) in entries.iter() {
        let name = key.get_ref().to_string();
        let path = join(table, &key_segment(&name));
        match knob_text(value.get_ref()) {
            Some(text) => knobs.push(Knob {
                name,
                key_span: key.span(),
                value: text,
            }),
            None => diags.push(
                Diagnostic::at(value.span(), &path, format!("invalid value for `{path}`"))
                    .label(format!(
                        "expected an integer or a string, found {}",
                        value.get_ref().type_str()
                    ))
                    .help(knob_help(table, &name)),
            ),
        }
    }
    knobs
}

fn knob_help(table: &str, name: &str) -> String {
    if table == "sysfs" {
        "write what the kernel expects in the file, e.g. \"always\" or 1".to_string()
    } else {
        format!("write e.g. \"{name}\" = 1 or \"{name}\" = \"some text\"")
    }
}

/// A sysctl or sysfs value as the text written to the file.
pub fn knob_text(value: &DeValue<'_>) -> Option<String> {
    match value {
        DeValue::Integer(integer) => i128::from_str_radix(integer.as_str(), integer.radix())
            .ok()
            .map(|n| n.to_string()),
        DeValue::String(text) => Some(text.to_string()),
        _ => None,
    }
}

/// Replaces nested tables in `[sysctl]` (`vm.overcommit_memory = 0` without quotes) by flat
/// dotted names, so both spellings mean the same and a matrix can override either.
fn flatten_sysctl(body: &mut DeTable<'_>, diags: &mut Vec<Diagnostic>) {
    let Some(node) = body.get_mut("sysctl") else {
        return;
    };
    let DeValue::Table(table) = node.get_ref() else {
        return;
    };
    let mut flat = DeTable::new();
    flatten_into(table, "", None, &mut flat, diags);
    *node.get_mut() = DeValue::Table(flat);
}

fn flatten_into<'i>(
    table: &DeTable<'i>,
    prefix: &str,
    start: Option<usize>,
    flat: &mut DeTable<'i>,
    diags: &mut Vec<Diagnostic>,
) {
    for (key, value) in table.iter() {
        let name = join(prefix, key.get_ref());
        let key_start = start.unwrap_or(key.span().start);
        match value.get_ref() {
            DeValue::Table(inner) => flatten_into(inner, &name, Some(key_start), flat, diags),
            _ => {
                let span = key_start..key.span().end.max(key_start);
                if flat.contains_key(name.as_str()) {
                    let path = join("sysctl", &key_segment(&name));
                    diags.push(
                        Diagnostic::at(
                            span.clone(),
                            &path,
                            format!("sysctl `{name}` is set twice"),
                        )
                        .help("keep one of the two spellings"),
                    );
                }
                flat.insert(Spanned::new(span, name.into()), value.clone());
            }
        }
    }
}

/// Span of each value in a table node, by key.
fn value_spans(node: Option<&Node<'_>>) -> BTreeMap<String, Range<usize>> {
    match node.map(|node| node.get_ref()) {
        Some(DeValue::Table(table)) => table
            .iter()
            .map(|(k, v)| (k.get_ref().to_string(), v.span()))
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// Span of each key in a table node, by key.
/// Spans of the entries of each table or array inside `node` (see [`ProcessEntry::entry_spans`]).
fn entry_spans(node: Option<&Node<'_>>) -> BTreeMap<String, BTreeMap<String, Range<usize>>> {
    let Some(DeValue::Table(table)) = node.map(|node| node.get_ref()) else {
        return BTreeMap::new();
    };
    table
        .iter()
        .filter_map(|(key, value)| {
            let spans: BTreeMap<String, Range<usize>> = match value.get_ref() {
                DeValue::Table(inner) => inner
                    .iter()
                    .map(|(k, v)| (k.get_ref().to_string(), v.span()))
                    .collect(),
                DeValue::Array(items) => items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (i.to_string(), v.span()))
                    .collect(),
                _ => return None,
            };
            Some((key.get_ref().to_string(), spans))
        })
        .collect()
}

fn key_spans(node: Option<&Node<'_>>) -> BTreeMap<String, Range<usize>> {
    match node.map(|node| node.get_ref()) {
        Some(DeValue::Table(table)) => table
            .iter()
            .map(|(k, _)| (k.get_ref().to_string(), k.span()))
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// A key as written in a dotted path: bare if it can be, quoted otherwise.
pub fn key_segment(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_string()
    } else {
        quoted_segment(key)
    }
}

/// `key` as a quoted path segment: in double quotes, its backslashes and quotes escaped.
pub fn quoted_segment(key: &str) -> String {
    format!("\"{}\"", key.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The dotted path of the deepest key or value at `span` (`process[1].args.heap`).
pub fn path_at(root: &DeTable<'_>, span: &Range<usize>) -> String {
    let mut best = (0, String::new());
    walk_table(root, "", 0, span, &mut best);
    best.1
}

fn walk_table(
    table: &DeTable<'_>,
    prefix: &str,
    depth: usize,
    span: &Range<usize>,
    best: &mut (usize, String),
) {
    for (key, value) in table.iter() {
        let path = join(prefix, &key_segment(key.get_ref()));
        if key.span() == *span || covers(&value.span(), span) {
            remember(best, depth + 1, &path);
        }
        walk_value(value, &path, depth + 1, span, best);
    }
}

fn walk_value(
    value: &Node<'_>,
    path: &str,
    depth: usize,
    span: &Range<usize>,
    best: &mut (usize, String),
) {
    match value.get_ref() {
        DeValue::Table(table) => walk_table(table, path, depth, span, best),
        DeValue::Array(array) => {
            for (index, item) in array.iter().enumerate() {
                let path = format!("{path}[{index}]");
                if covers(&item.span(), span) {
                    remember(best, depth + 1, &path);
                }
                walk_value(item, &path, depth + 1, span, best);
            }
        }
        _ => {}
    }
}

fn covers(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end && outer != &(0..0)
}

fn remember(best: &mut (usize, String), depth: usize, path: &str) {
    if depth > best.0 {
        *best = (depth, path.to_string());
    }
}

/// The field names serde knows for a struct, in declaration order, taken from its derived
/// `Deserialize` (so they cannot drift from the struct).
pub fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut grab = FieldGrabber(None);
    let _ = T::deserialize(&mut grab);
    grab.0.unwrap_or(&[])
}

/// A deserializer that only records the field list a struct asks for.
struct FieldGrabber(Option<&'static [&'static str]>);

#[derive(Debug)]
struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field names recorded")
    }
}

impl std::error::Error for Stop {}

impl serde::de::Error for Stop {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Stop
    }
}

impl<'de> serde::Deserializer<'de> for &mut FieldGrabber {
    type Error = Stop;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stop> {
        self.0 = Some(fields);
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_workload_has_a_schema() {
        for name in WORKLOAD_NAMES {
            let schema = workload_schema(name).unwrap_or_else(|| panic!("no schema for {name}"));
            assert!(!(schema.args)().is_empty());
        }
        assert_eq!(WORKLOADS.len(), WORKLOAD_NAMES.len());
    }

    #[test]
    fn field_lists_come_from_the_structs() {
        assert_eq!(
            fields_of::<RawVm>(),
            ["kernels", "memory", "cpus", "disk", "timeout"]
        );
        assert_eq!(
            fields_of::<RawCgroup>(),
            fields_of::<rsslab_wire::CgroupSpec>(),
            "[cgroup] reads the wire's CgroupSpec"
        );
        assert!(fields_of::<BalloonArgs>().contains(&"until_available"));
    }

    #[test]
    fn paths_name_the_deepest_key() {
        let source =
            "[vm]\nmemory = 1\n[[process]]\nname = \"a\"\n[[process]]\nargs = { heap = \"1\" }\n";
        let root = DeTable::parse(source).unwrap().into_inner();
        let heap = source.find("\"1\"").unwrap();
        assert_eq!(path_at(&root, &(heap..heap + 3)), "process[1].args.heap");
        let memory = source.find("memory").unwrap();
        assert_eq!(path_at(&root, &(memory..memory + 6)), "vm.memory");
    }

    #[test]
    fn sysctl_names_are_flattened() {
        let source = "[scenario]\nid = \"x\"\ntitle = \"x\"\n[sysctl]\nvm.overcommit_memory = 1\n\"vm.swappiness\" = \"10\"\n";
        let mut diags = Vec::new();
        let document = read_document(source, &mut diags).unwrap();
        let knobs = knobs(&document.body, "sysctl", &mut diags);
        let names: Vec<_> = knobs
            .iter()
            .map(|k| (k.name.as_str(), k.value.as_str()))
            .collect();
        assert_eq!(
            names,
            [("vm.overcommit_memory", "1"), ("vm.swappiness", "10")]
        );
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(&source[knobs[0].key_span.clone()], "vm.overcommit_memory");
    }
}
