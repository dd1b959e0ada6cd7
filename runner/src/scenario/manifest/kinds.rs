//! Which objects of a manifest hold a pod: the workload kinds, the apiVersion each is read in,
//! where its pod spec is, and its typed reading with k8s-openapi's types (the API's own, so a
//! field has the type the API server decodes it to).
//!
//! The entry is [`classify`]; [`Workload::decode`] then reads a workload's document.

use k8s_openapi::Resource;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;

use super::yaml::{Value, Yaml, YamlPath};
use crate::scenario::diag::{Diagnostic, did_you_mean};

/// A kind of object whose pod rsslab reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Pod,
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    Job,
    CronJob,
}

/// What a document of the manifest is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Object {
    /// A workload, in the apiVersion rsslab reads it in.
    Workload(Workload),
    /// Anything else (a Service, a ConfigMap, a custom resource): its kind.
    Other(String),
}

/// A workload as the API server decodes it: its metadata and the pod spec it runs.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub metadata: ObjectMeta,
    /// `None` when the object has no pod spec where its kind keeps one.
    pub pod_spec: Option<PodSpec>,
}

impl Workload {
    pub const ALL: [Workload; 7] = [
        Workload::Pod,
        Workload::Deployment,
        Workload::ReplicaSet,
        Workload::StatefulSet,
        Workload::DaemonSet,
        Workload::Job,
        Workload::CronJob,
    ];

    pub fn kind(self) -> &'static str {
        match self {
            Workload::Pod => Pod::KIND,
            Workload::Deployment => Deployment::KIND,
            Workload::ReplicaSet => ReplicaSet::KIND,
            Workload::StatefulSet => StatefulSet::KIND,
            Workload::DaemonSet => DaemonSet::KIND,
            Workload::Job => Job::KIND,
            Workload::CronJob => CronJob::KIND,
        }
    }

    /// The apiVersion current Kubernetes serves the kind in (`apps/v1`), the one rsslab reads.
    pub fn api_version(self) -> &'static str {
        match self {
            Workload::Pod => Pod::API_VERSION,
            Workload::Deployment => Deployment::API_VERSION,
            Workload::ReplicaSet => ReplicaSet::API_VERSION,
            Workload::StatefulSet => StatefulSet::API_VERSION,
            Workload::DaemonSet => DaemonSet::API_VERSION,
            Workload::Job => Job::API_VERSION,
            Workload::CronJob => CronJob::API_VERSION,
        }
    }

    /// Where the kind keeps its pod spec.
    pub fn pod_spec_path(self) -> YamlPath {
        match self {
            Workload::Pod => YamlPath::of(&["spec"]),
            Workload::CronJob => YamlPath::of(&["spec", "jobTemplate", "spec", "template", "spec"]),
            _ => YamlPath::of(&["spec", "template", "spec"]),
        }
    }

    /// Whether the kind runs its pod to completion (a Job's pods end; the others' run on).
    pub fn runs_to_completion(self) -> bool {
        matches!(self, Workload::Job | Workload::CronJob)
    }

    fn from_kind(kind: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.kind() == kind)
    }

    /// Reads the document into the kind's k8s-openapi type; a value of the wrong type is an
    /// error at its place, with its path (pushed to `errors`; then `None`).
    pub fn decode(self, document: &Yaml, errors: &mut Vec<Diagnostic>) -> Option<Decoded> {
        let json = document.to_json();
        let decoded = match self {
            Workload::Pod => read::<Pod>(json).map(|pod| (pod.metadata, pod.spec)),
            Workload::Deployment => {
                read::<Deployment>(json).map(|d| (d.metadata, d.spec.template.spec))
            }
            Workload::ReplicaSet => read::<ReplicaSet>(json).map(|r| {
                (
                    r.metadata,
                    r.spec.template.and_then(|template| template.spec),
                )
            }),
            Workload::StatefulSet => {
                read::<StatefulSet>(json).map(|s| (s.metadata, s.spec.template.spec))
            }
            Workload::DaemonSet => {
                read::<DaemonSet>(json).map(|d| (d.metadata, d.spec.template.spec))
            }
            Workload::Job => read::<Job>(json)
                .map(|job| (job.metadata, job.spec.and_then(|spec| spec.template.spec))),
            Workload::CronJob => read::<CronJob>(json).map(|cron| {
                let job = cron.spec.job_template.spec;
                (cron.metadata, job.and_then(|spec| spec.template.spec))
            }),
        };
        match decoded {
            Ok((metadata, pod_spec)) => Some(Decoded { metadata, pod_spec }),
            Err(error) => {
                errors.push(type_error(&error, document));
                None
            }
        }
    }
}

type DecodeError = serde_path_to_error::Error<serde_json::Error>;

fn read<T: DeserializeOwned>(json: serde_json::Value) -> Result<T, DecodeError> {
    serde_path_to_error::deserialize(json)
}

/// The API groups of the workload kinds: a kind there that is not one rsslab reads is a
/// mistake, where in another group (a custom resource) it is just another object.
const WORKLOAD_GROUPS: [&str; 4] = ["", "apps", "batch", "extensions"];

/// The core group's kinds that are not workloads, so never a misspelt one (`Node` is two
/// letters from `Pod`).
const CORE_KINDS: [&str; 14] = [
    "Binding",
    "ConfigMap",
    "Endpoints",
    "Event",
    "LimitRange",
    "Namespace",
    "Node",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "PodTemplate",
    "ResourceQuota",
    "Secret",
    "Service",
    "ServiceAccount",
];

/// What the document is, from its `apiVersion` and `kind`; `None` (and an error pushed to
/// `errors`) for a document that is not an object, a workload in an apiVersion rsslab does not
/// read, or a misspelt kind.
pub fn classify(document: &Yaml, errors: &mut Vec<Diagnostic>) -> Option<Object> {
    let mut refuse = |error: Diagnostic| {
        errors.push(error);
        None
    };
    if !matches!(document.value, Value::Map(_)) {
        return refuse(
            Diagnostic::at(
                document.span.clone(),
                "",
                "a manifest document is a Kubernetes object",
            )
            .label("not a mapping")
            .help(
                "write a mapping with apiVersion, kind, metadata and spec; separate objects \
                 with `---`",
            ),
        );
    }
    let kind_place = document.place(&YamlPath::of(&["kind"]));
    let Some(kind) = document.get("kind").and_then(Yaml::as_str) else {
        let message = match document.get("kind") {
            Some(_) => "the object's `kind` is not text",
            None => "the object has no `kind`",
        };
        return refuse(Diagnostic::at(kind_place, "kind", message).help(format!(
            "write e.g. `kind: Deployment` (rsslab runs the pods of {})",
            workload_list()
        )));
    };
    let api_version = document.get("apiVersion").and_then(Yaml::as_str);
    let group = api_version.map(|version| version.rsplit_once('/').map_or("", |(group, _)| group));
    if group.is_some_and(|group| !WORKLOAD_GROUPS.contains(&group)) {
        return Some(Object::Other(kind.to_string()));
    }
    if let Some(workload) = Workload::from_kind(kind) {
        return match api_version_error(document, workload, api_version) {
            Some(error) => refuse(error),
            None => Some(Object::Workload(workload)),
        };
    }
    let close = did_you_mean(kind, Workload::ALL.map(Workload::kind));
    match (kind, close) {
        ("List", _) => refuse(
            Diagnostic::at(kind_place, "kind", "a `List` is not read")
                .label("objects inside a List")
                .help("write each object as its own YAML document, separated by `---` lines"),
        ),
        ("ReplicationController", _) => refuse(
            Diagnostic::at(kind_place, "kind", "a ReplicationController is not read").help(
                "write it as a Deployment (apiVersion: apps/v1): the same pod template, under \
                 spec.template",
            ),
        ),
        (_, Some(close)) if !CORE_KINDS.contains(&kind) => refuse(
            Diagnostic::at(kind_place, "kind", format!("unknown kind `{kind}`")).help(format!(
                "did you mean `{close}`? (rsslab runs the pods of {})",
                workload_list()
            )),
        ),
        _ => Some(Object::Other(kind.to_string())),
    }
}

/// The error for a workload not written in the apiVersion rsslab reads it in.
fn api_version_error(
    document: &Yaml,
    workload: Workload,
    api_version: Option<&str>,
) -> Option<Diagnostic> {
    let (kind, expected) = (workload.kind(), workload.api_version());
    let place = document.place(&YamlPath::of(&["apiVersion"]));
    match api_version {
        Some(version) if version == expected => None,
        Some(version) => Some(
            Diagnostic::at(
                place,
                "apiVersion",
                format!("a {kind} in apiVersion `{version}` is not read"),
            )
            .label(format!("rsslab reads {kind} in {expected}"))
            .help(format!(
                "write `apiVersion: {expected}`, the version current Kubernetes serves (older \
                 versions are no longer served, and their fields and defaults differ)"
            )),
        ),
        None => Some(
            Diagnostic::at(
                place,
                "apiVersion",
                format!("the {kind} has no `apiVersion`"),
            )
            .help(format!("add `apiVersion: {expected}`")),
        ),
    }
}

/// `Pod, Deployment, ..., CronJob`.
pub fn workload_list() -> String {
    Workload::ALL.map(Workload::kind).join(", ")
}

/// A value of the wrong type, at its place, in the words of YAML rather than Go's or Rust's.
fn type_error(error: &DecodeError, document: &Yaml) -> Diagnostic {
    let path = YamlPath::from_serde(error.path());
    let what = plain_words(&error.inner().to_string());
    let key = path.last_key().unwrap_or("value");
    let help = type_help(&what, key);
    Diagnostic::at(
        document.place(&path),
        path.to_string(),
        format!("invalid value for `{path}`"),
    )
    .label(what)
    .help(help)
}

/// serde's "expected a sequence" or "expected i32", in YAML's words.
fn plain_words(message: &str) -> String {
    let Some((found, expected)) = message.split_once(", expected ") else {
        return message.to_string();
    };
    let expected = match expected {
        "a sequence" => "a list".to_string(),
        "a map" => "a mapping".to_string(),
        "a boolean" => "true or false".to_string(),
        "i32" | "i64" | "u32" | "u64" => "a whole number".to_string(),
        "f64" => "a number".to_string(),
        "Quantity" => "a quantity such as 128Mi or 500m".to_string(),
        "IntOrString" => "a number or a string".to_string(),
        "Time" => "a time such as 2025-01-31T12:00:00Z".to_string(),
        name if name.starts_with(|c: char| c.is_ascii_uppercase()) && !name.contains(' ') => {
            format!("a mapping (a {name})")
        }
        other => other.to_string(),
    };
    format!("{found}, expected {expected}")
}

/// How to write a value of the type expected.
fn type_help(what: &str, key: &str) -> String {
    let expected = what.split_once(", expected ").map_or("", |(_, e)| e);
    if expected.starts_with("a list") {
        format!("write a list: one `- item` a line below `{key}:`, or `{key}: [a, b]`")
    } else if expected.starts_with("a mapping") {
        format!("write a mapping: `name: value` lines indented below `{key}:`")
    } else if expected.starts_with("a string") {
        format!("write text, in quotes when YAML would read it otherwise: `{key}: \"...\"`")
    } else if expected.starts_with("a whole number") {
        format!("write a whole number without quotes: `{key}: 1`")
    } else if expected.starts_with("true or false") {
        format!("write `{key}: true` or `{key}: false`")
    } else {
        "see the field in the Kubernetes API reference (`kubectl explain`)".to_string()
    }
}
