//! `[matrix]`: the variants of a scenario, as overrides of its settings.
//!
//! Each key of `[matrix]` is a path to one setting and its value a non-empty array; the
//! variants are the cartesian product, the first axis (in file order) outermost. A variant is
//! the scenario's tree with the matrix values put in place, spans and all, so when a variant
//! does not validate, the error points at the matrix value that made it so.
//!
//! Path syntax (segments separated by dots; a segment may be "quoted" to hold dots or slashes):
//!
//! | path | sets |
//! |---|---|
//! | `process.<name>.args.<arg>` | an argument of that process's workload |
//! | `process.<name>.env.<VAR>` | an environment variable |
//! | `process.<name>.start.<after\|phase\|delay>` | its start trigger |
//! | `process.<name>.cgroup` | whether it runs in the cgroup |
//! | `vm.<memory\|cpus\|disk\|timeout>` | VM settings (`vm.kernels` is not a matrix axis: kernels are one already) |
//! | `cgroup.<version\|memory_max\|memory_high\|swap_max>` | the cgroup |
//! | `node.<key>`, `node.feature_gates.<Gate>` | the kubelet: `node.kubernetes`, `node.cgroup_version`, `node.single_process_oom_kill`, `node.feature_gates.MemoryQoS` ... |
//! | `pod.<pod>.<container\|init_container>.<name>.<requests\|limits>.<memory\|cpu>` | a written-out pod's container resources |
//! | `sample.<every\|duration>` | sampling |
//! | `sysctl."<name>"` or `sysctl.<name>` | a sysctl (`sysctl."vm.overcommit_memory"`) |
//! | `sysfs."<path>"` or `sysfs.<path>` | a file under /sys |
//!
//! Values are strings, integers, floats or booleans. Each variant gets a label of
//! `<name>=<value>` pairs joined by `,`, where `<name>` is the path's last segment (for sysfs
//! the file's name; the whole path when two axes would share a name), made filesystem-safe:
//! `release=free`, `vm.overcommit_memory=1,enabled=always`.
//!
//! Entry point: [`expand`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;

use serde_spanned::Spanned;
use toml::de::{DeTable, DeValue};

use super::diag::{Diagnostic, suggest};
use super::raw::{
    Document, Node, RawCgroup, RawNode, RawVm, fields_of, knob_text, quoted_segment,
    workload_schema,
};

/// At most this many variants per scenario: more is almost surely a mistake.
pub const MAX_VARIANTS: usize = 256;

/// One axis of a scenario's matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixAxis {
    /// The key as written in `[matrix]`, e.g. `process.service.args.release`.
    pub key: String,
    /// The short name used in variant labels, e.g. `release`.
    pub name: String,
    /// The values as text, in order.
    pub values: Vec<String>,
}

/// A matrix axis with what is needed to apply it.
struct Axis<'i> {
    public: MatrixAxis,
    steps: Vec<Step>,
    key_span: Range<usize>,
    values: Vec<Node<'i>>,
}

/// One step into the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// One variant: the matrix values it takes and the tree to read it from.
pub struct VariantTree<'i> {
    /// Matrix key -> value as text.
    pub values: BTreeMap<String, String>,
    /// `release=free`; empty without a matrix.
    pub label: String,
    pub body: DeTable<'i>,
}

/// The axes and the variants of a document; without a matrix, one variant: the document.
/// `None` if the matrix itself is wrong (reported).
pub fn expand<'i>(
    document: &Document<'i>,
    diags: &mut Vec<Diagnostic>,
) -> Option<(Vec<MatrixAxis>, Vec<VariantTree<'i>>)> {
    let Some(matrix) = &document.matrix else {
        let only = VariantTree {
            values: BTreeMap::new(),
            label: String::new(),
            body: document.body.clone(),
        };
        return Some((Vec::new(), vec![only]));
    };
    let mut axes = read_axes(matrix, &document.body, diags)?;
    if axes.is_empty() {
        diags.push(
            Diagnostic::at(matrix.span(), "matrix", "[matrix] has no axes")
                .help("add a setting with its values, e.g. \"process.service.args.release\" = [\"free\", \"dontneed\"], or remove [matrix]"),
        );
        return None;
    }
    name_axes(&mut axes);
    let count = axes
        .iter()
        .try_fold(1usize, |count, axis| count.checked_mul(axis.values.len()));
    if count.is_none_or(|count| count > MAX_VARIANTS) {
        let count = count.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string());
        diags.push(
            Diagnostic::at(
                matrix.span(),
                "matrix",
                format!("the matrix makes {count} variants"),
            )
            .help(format!(
                "keep it at {MAX_VARIANTS} or fewer: split the scenario or drop values"
            )),
        );
        return None;
    }
    let variants = combinations(&axes)
        .iter()
        .map(|picks| variant(&document.body, &axes, picks))
        .collect();
    Some((axes.into_iter().map(|axis| axis.public).collect(), variants))
}

/// Every axis, in file order; `None` if any is wrong.
fn read_axes<'i>(
    matrix: &Node<'i>,
    body: &DeTable<'i>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<Axis<'i>>> {
    let DeValue::Table(table) = matrix.get_ref() else {
        diags.push(
            Diagnostic::at(matrix.span(), "matrix", "`matrix` must be a table")
                .label(format!("found {}", matrix.get_ref().type_str()))
                .help("write [matrix] (one pair of brackets) with one setting a line: \"vm.memory\" = [\"512MiB\", \"1GiB\"]"),
        );
        return None;
    };
    let before = diags.len();
    let mut axes: Vec<Axis<'i>> = Vec::new();
    for (key, value) in table.iter() {
        if let Some(axis) = read_axis(key, value, body, diags) {
            if axes.iter().any(|other| other.steps == axis.steps) {
                diags.push(
                    Diagnostic::at(
                        key.span(),
                        matrix_path(key.get_ref()),
                        "this setting is already a matrix axis",
                    )
                    .help("give each setting one matrix key with all its values"),
                );
            }
            axes.push(axis);
        }
    }
    axes.sort_by_key(|axis| axis.key_span.start);
    (diags.len() == before).then_some(axes)
}

/// The diagnostic path of a matrix key: `matrix."process.service.args.release"`, its
/// backslashes and quotes escaped so the path reads back as the key.
fn matrix_path(key: &str) -> String {
    format!("matrix.{}", quoted_segment(key))
}

/// One axis: a settable key and a non-empty array of distinct scalar values.
fn read_axis<'i>(
    key: &Spanned<Cow<'i, str>>,
    value: &Node<'i>,
    body: &DeTable<'i>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Axis<'i>> {
    let text = key.get_ref().trim();
    let path = matrix_path(text);
    let resolved = split_path(text)
        .and_then(|segments| resolve(&segments, body).map(|steps| (segments, steps)));
    let (segments, steps) = match resolved {
        Ok(resolved) => resolved,
        Err(why) => {
            diags.push(why.at(key.span(), &path, text));
            return None;
        }
    };
    let values = read_values(value, &path, diags)?;
    let texts: Vec<String> = values
        .iter()
        .map(|value| value_text(value.get_ref()))
        .collect();
    Some(Axis {
        public: MatrixAxis {
            key: text.to_string(),
            name: short_name(&segments),
            values: texts,
        },
        steps,
        key_span: key.span(),
        values,
    })
}

/// The values of an axis: a non-empty array of distinct scalars.
fn read_values<'i>(
    value: &Node<'i>,
    path: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<Node<'i>>> {
    let DeValue::Array(array) = value.get_ref() else {
        diags.push(
            Diagnostic::at(
                value.span(),
                path,
                format!("`{path}` must be an array of values"),
            )
            .label(format!("found {}", value.get_ref().type_str()))
            .help("write the values the variants take, e.g. [\"free\", \"dontneed\"]"),
        );
        return None;
    };
    if array.is_empty() {
        diags.push(
            Diagnostic::at(value.span(), path, format!("`{path}` has no values"))
                .help("give at least one value, or remove the key"),
        );
        return None;
    }
    let before = diags.len();
    let mut seen: Vec<String> = Vec::new();
    for (index, item) in array.iter().enumerate() {
        let item_path = format!("{path}[{index}]");
        if matches!(
            item.get_ref(),
            DeValue::Array(_) | DeValue::Table(_) | DeValue::Datetime(_)
        ) {
            diags.push(
                Diagnostic::at(
                    item.span(),
                    &item_path,
                    "matrix values must be strings, numbers or booleans",
                )
                .help("make one matrix key per setting, e.g. \"process.service.start.delay\""),
            );
            continue;
        }
        let label = sanitize(&value_text(item.get_ref()));
        if seen.contains(&label) {
            diags.push(
                Diagnostic::at(
                    item.span(),
                    &item_path,
                    format!("value `{label}` appears twice in `{path}`"),
                )
                .help("each value makes one variant: remove the repeat"),
            );
        }
        seen.push(label);
    }
    (diags.len() == before).then(|| array.to_vec())
}

/// A matrix value as text, for variant maps and labels.
fn value_text(value: &DeValue<'_>) -> String {
    match value {
        DeValue::Float(float) => float.as_str().to_string(),
        DeValue::Boolean(flag) => flag.to_string(),
        other => knob_text(other).unwrap_or_default(),
    }
}

/// Why a matrix key does not resolve, and what would.
struct Unresolved {
    label: String,
    help: String,
}

impl Unresolved {
    fn new(label: impl Into<String>, help: impl Into<String>) -> Self {
        Unresolved {
            label: label.into(),
            help: help.into(),
        }
    }

    fn at(self, span: Range<usize>, path: &str, key: &str) -> Diagnostic {
        Diagnostic::at(
            span,
            path,
            format!("matrix key `{key}` does not name a setting"),
        )
        .label(self.label)
        .help(self.help)
    }
}

const PATH_SYNTAX: &str = "matrix keys are process.<name>.args.<arg>, process.<name>.env.<VAR>, \
process.<name>.start.<after|phase|delay>, process.<name>.cgroup, vm.<memory|cpus|disk|timeout>, \
cgroup.<key>, node.<key>, node.feature_gates.<Gate>, \
pod.<pod>.container.<name>.<requests|limits>.<memory|cpu>, sample.<every|duration>, \
sysctl.\"<name>\" or sysfs.\"<path>\"";

/// Splits `a.b."c.d"` into `a`, `b`, `c.d`.
fn split_path(key: &str) -> Result<Vec<String>, Unresolved> {
    let mut segments = Vec::new();
    let mut rest = key;
    loop {
        let (segment, after) = if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted
                .find('"')
                .ok_or_else(|| Unresolved::new("a quote is not closed", PATH_SYNTAX))?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = rest.find('.').unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        };
        if segment.is_empty() {
            return Err(Unresolved::new(
                "a segment of the path is empty",
                PATH_SYNTAX,
            ));
        }
        segments.push(segment.to_string());
        match after.strip_prefix('.') {
            Some(next) => rest = next,
            None if after.is_empty() => return Ok(segments),
            None => {
                return Err(Unresolved::new(
                    "expected `.` after a quoted segment",
                    PATH_SYNTAX,
                ));
            }
        }
    }
}

/// The tree steps of a settable path.
fn resolve(segments: &[String], body: &DeTable<'_>) -> Result<Vec<Step>, Unresolved> {
    let key = |name: &str| Step::Key(name.to_string());
    let rest: Vec<&str> = segments[1..].iter().map(String::as_str).collect();
    match (segments[0].as_str(), rest.as_slice()) {
        ("vm", ["kernels"]) => Err(Unresolved::new(
            "kernels are a dimension of every plan already",
            "list them in vm.kernels, or pick some with --kernel",
        )),
        ("vm", [field]) => {
            field_step("vm", field, fields_of::<RawVm>()).map(|step| vec![key("vm"), step])
        }
        ("cgroup", [field]) => field_step("cgroup", field, fields_of::<RawCgroup>())
            .map(|step| vec![key("cgroup"), step]),
        ("sample", [field]) => field_step("sample", field, &["every", "duration"])
            .map(|step| vec![key("sample"), step]),
        ("sysctl", [_, ..]) => Ok(vec![key("sysctl"), Step::Key(rest.join("."))]),
        ("sysfs", [_, ..]) => Ok(vec![key("sysfs"), Step::Key(rest.join("."))]),
        ("process", [name, setting @ ..]) => resolve_process(name, setting, body),
        ("node", ["feature_gates", gate]) => Ok(vec![
            key("node"),
            key("feature_gates"),
            Step::Key((*gate).to_string()),
        ]),
        ("node", [field]) => {
            field_step("node", field, fields_of::<RawNode>()).map(|step| vec![key("node"), step])
        }
        (
            "pod",
            [
                pod,
                list @ ("container" | "init_container"),
                container,
                amounts @ ("requests" | "limits"),
                resource @ ("memory" | "cpu"),
            ],
        ) => {
            let (pod_index, container_index) = resolve_container(pod, list, container, body)?;
            Ok(vec![
                key("pod"),
                Step::Index(pod_index),
                key(list),
                Step::Index(container_index),
                key(amounts),
                key(resource),
            ])
        }
        ("pod", _) => Err(Unresolved::new(
            "a matrix sets a pod's container resources: pod.<pod>.container.<name>.<requests|limits>.<memory|cpu>",
            PATH_SYNTAX,
        )),
        ("scenario", _) => Err(Unresolved::new(
            "a scenario's id, title and story are the same in every variant",
            PATH_SYNTAX,
        )),
        (table, _) => {
            let tables = [
                "process", "vm", "cgroup", "node", "pod", "sample", "sysctl", "sysfs",
            ];
            let label = if tables.contains(&table) {
                format!("`{table}` needs a key after it")
            } else {
                format!(
                    "`{table}` is not a table a matrix can set: {}",
                    suggest(table, &tables)
                )
            };
            Err(Unresolved::new(label, PATH_SYNTAX))
        }
    }
}

/// A field of a fixed table (`vm`, `cgroup`, `sample`).
fn field_step(table: &str, field: &str, fields: &[&str]) -> Result<Step, Unresolved> {
    let settable: Vec<&str> = fields.iter().copied().filter(|f| *f != "kernels").collect();
    if settable.contains(&field) {
        Ok(Step::Key(field.to_string()))
    } else {
        Err(Unresolved::new(
            format!("[{table}] has no key `{field}`"),
            suggest(field, &settable),
        ))
    }
}

/// `process.<name>.<setting>`.
fn resolve_process(
    name: &str,
    setting: &[&str],
    body: &DeTable<'_>,
) -> Result<Vec<Step>, Unresolved> {
    let processes = process_names(body);
    let Some(index) = processes.iter().position(|(process, _)| process == name) else {
        let names: Vec<&str> = processes
            .iter()
            .map(|(process, _)| process.as_str())
            .collect();
        return Err(Unresolved::new(
            format!("there is no process named `{name}`"),
            suggest(name, &names),
        ));
    };
    let mut steps = vec![Step::Key("process".into()), Step::Index(index)];
    let key = |name: &str| Step::Key(name.to_string());
    match setting {
        ["args", arg] => {
            let workload = processes[index].1.as_deref().and_then(workload_schema);
            if let Some(schema) = workload {
                let args = (schema.args)();
                if !args.contains(arg) {
                    return Err(Unresolved::new(
                        format!("{} has no argument `{arg}`", schema.name),
                        suggest(arg, args),
                    ));
                }
            }
            steps.extend([key("args"), key(arg)]);
        }
        ["env", var @ ..] if !var.is_empty() => {
            steps.extend([key("env"), Step::Key(var.join("."))])
        }
        ["start", field @ ("after" | "phase" | "delay")] => {
            steps.extend([key("start"), key(field)])
        }
        ["cgroup"] => steps.push(key("cgroup")),
        ["go"] => steps.push(key("go")),
        ["name" | "workload"] => {
            return Err(Unresolved::new(
                "a matrix cannot rename a process or change its workload",
                "write one [[process]] per workload, or one scenario per workload",
            ));
        }
        _ => {
            return Err(Unresolved::new(
                format!("process `{name}` has no setting `{}`", setting.join(".")),
                PATH_SYNTAX,
            ));
        }
    }
    Ok(steps)
}

/// `pod.<pod>.<list>.<container>`: the index of the written-out pod and of its container.
fn resolve_container(
    pod: &str,
    list: &str,
    container: &str,
    body: &DeTable<'_>,
) -> Result<(usize, usize), Unresolved> {
    let names = |node: Option<&Node<'_>>| -> Vec<String> {
        match node.map(|node| node.get_ref()) {
            Some(DeValue::Array(array)) => array
                .iter()
                .map(|item| {
                    item.get_ref()
                        .get("name")
                        .and_then(|name| name.get_ref().as_str())
                        .unwrap_or_default()
                        .to_string()
                })
                .collect(),
            _ => Vec::new(),
        }
    };
    let pods = body.get("pod");
    let pod_names = names(pods);
    let Some(pod_index) = pod_names.iter().position(|name| name == pod) else {
        let known: Vec<&str> = pod_names
            .iter()
            .map(String::as_str)
            .filter(|n| !n.is_empty())
            .collect();
        return Err(Unresolved::new(
            format!(
                "there is no written-out pod named `{pod}` (a manifest's pods are set in the manifest)"
            ),
            suggest(pod, &known),
        ));
    };
    let pod_node = match pods.map(|node| node.get_ref()) {
        Some(DeValue::Array(array)) => array.get(pod_index),
        _ => None,
    };
    let container_names = names(pod_node.and_then(|node| node.get_ref().get(list)));
    let Some(container_index) = container_names.iter().position(|name| name == container) else {
        let known: Vec<&str> = container_names.iter().map(String::as_str).collect();
        return Err(Unresolved::new(
            format!("pod `{pod}` has no {list} named `{container}`"),
            suggest(container, &known),
        ));
    };
    Ok((pod_index, container_index))
}

/// Name and workload of each `[[process]]` of the body, as written.
fn process_names(body: &DeTable<'_>) -> Vec<(String, Option<String>)> {
    let Some(DeValue::Array(array)) = body.get("process").map(|node| node.get_ref()) else {
        return Vec::new();
    };
    let text = |node: &Node<'_>, key: &str| {
        node.get_ref()
            .get(key)
            .and_then(|v| v.get_ref().as_str())
            .map(str::to_string)
    };
    array
        .iter()
        .map(|process| {
            (
                text(process, "name").unwrap_or_default(),
                text(process, "workload"),
            )
        })
        .collect()
}

/// The label name of an axis: the last segment; a sysfs file's name.
fn short_name(segments: &[String]) -> String {
    let last = segments[1..].join(".");
    match segments[0].as_str() {
        "sysctl" => last,
        "sysfs" => last
            .rsplit('/')
            .find(|part| !part.is_empty())
            .unwrap_or(&last)
            .to_string(),
        "process" if segments.get(2).is_some_and(|s| s == "env") => segments[3..].join("."),
        // pod.web.container.api.limits.memory -> api.limits.memory
        "pod" if segments.len() == 6 => segments[3..].join("."),
        _ => segments.last().cloned().unwrap_or_default(),
    }
}

/// Falls back to the whole key for axes whose short names collide.
fn name_axes(axes: &mut [Axis<'_>]) {
    let names: Vec<String> = axes.iter().map(|axis| axis.public.name.clone()).collect();
    for axis in axes.iter_mut() {
        if names
            .iter()
            .filter(|name| **name == axis.public.name)
            .count()
            > 1
        {
            axis.public.name = axis.public.key.replace('"', "");
        }
    }
}

/// Every pick of one value per axis, the first axis outermost.
fn combinations(axes: &[Axis<'_>]) -> Vec<Vec<usize>> {
    axes.iter().fold(vec![Vec::new()], |picks, axis| {
        picks
            .into_iter()
            .flat_map(|pick| {
                (0..axis.values.len()).map(move |value| {
                    let mut pick = pick.clone();
                    pick.push(value);
                    pick
                })
            })
            .collect()
    })
}

/// The body with one value of each axis put in place.
fn variant<'i>(body: &DeTable<'i>, axes: &[Axis<'i>], picks: &[usize]) -> VariantTree<'i> {
    let mut tree = body.clone();
    let mut values = BTreeMap::new();
    let mut parts = Vec::new();
    for (axis, &pick) in axes.iter().zip(picks) {
        let value = &axis.values[pick];
        set(&mut tree, &axis.steps, value.clone(), &axis.key_span);
        let text = &axis.public.values[pick];
        values.insert(axis.public.key.clone(), text.clone());
        parts.push(format!("{}={text}", axis.public.name));
    }
    VariantTree {
        values,
        label: sanitize(&parts.join(",")),
        body: tree,
    }
}

/// Puts `value` at `steps`, creating tables on the way; leaves the tree alone where a step
/// meets something that is not a table (reading the variant reports that).
fn set<'i>(table: &mut DeTable<'i>, steps: &[Step], value: Node<'i>, span: &Range<usize>) {
    let Some((Step::Key(first), rest)) = steps.split_first() else {
        return;
    };
    let key = Spanned::new(span.clone(), Cow::Owned(first.clone()));
    if rest.is_empty() {
        table.insert(key, value);
        return;
    }
    let node = table
        .entry(key)
        .or_insert_with(|| Spanned::new(span.clone(), DeValue::Table(DeTable::new())));
    descend(node, rest, value, span);
}

fn descend<'i>(node: &mut Node<'i>, steps: &[Step], value: Node<'i>, span: &Range<usize>) {
    match (node.get_mut(), steps.split_first()) {
        (DeValue::Table(table), Some((Step::Key(_), _))) => set(table, steps, value, span),
        (DeValue::Array(array), Some((Step::Index(index), rest))) => {
            if let Some(item) = array.get_mut(*index) {
                descend(item, rest, value, span);
            }
        }
        _ => {}
    }
}

/// Keeps a label filesystem-safe: anything but `[A-Za-z0-9._=,+-]` becomes `_`.
pub fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._=,+-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_on_dots_outside_quotes() {
        let split = |key: &str| split_path(key).ok();
        assert_eq!(
            split("process.service.args.release").unwrap(),
            ["process", "service", "args", "release"]
        );
        assert_eq!(
            split("sysctl.\"vm.overcommit_memory\"").unwrap(),
            ["sysctl", "vm.overcommit_memory"]
        );
        assert!(split("sysctl.\"vm").is_none());
        assert!(split("vm..memory").is_none());
    }

    #[test]
    fn short_names_are_the_last_segment() {
        let name = |key: &str| short_name(&split_path(key).ok().unwrap());
        assert_eq!(name("process.service.args.release"), "release");
        assert_eq!(name("sysctl.vm.overcommit_memory"), "vm.overcommit_memory");
        assert_eq!(
            name("sysfs.\"/sys/kernel/mm/transparent_hugepage/enabled\""),
            "enabled"
        );
        assert_eq!(name("process.service.env.GODEBUG"), "GODEBUG");
        assert_eq!(
            name("pod.web.container.api.limits.memory"),
            "api.limits.memory"
        );
        assert_eq!(name("node.feature_gates.MemoryQoS"), "MemoryQoS");
        assert_eq!(name("node.kubernetes"), "kubernetes");
    }

    #[test]
    fn labels_are_filesystem_safe() {
        assert_eq!(
            sanitize("GODEBUG=madvdontneed=1,x=a b/c"),
            "GODEBUG=madvdontneed=1,x=a_b_c"
        );
    }
}
