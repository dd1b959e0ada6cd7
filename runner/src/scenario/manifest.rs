//! Pods from a Kubernetes manifest: a scenario can take its pods from the YAML a project
//! deploys, read into rsslab's pod type ([`PodSpec`]) as the kubelet would see them, with
//! every problem reported at its file, line and column, its YAML path and its fix.
//!
//! The entry is [`read_manifest`]. Binding programs to the containers is not done here: each
//! container's command, args and literal env are handed over in [`ManifestPod::programs`].
//!
//! # What is read
//!
//! A file of one or more YAML documents (separated by `---`; empty ones are skipped). Each
//! document's `apiVersion` and `kind` decide what it is. A workload yields one pod:
//!
//! | kind (apiVersion) | pod spec at |
//! |---|---|
//! | Pod (`v1`) | `spec` |
//! | Deployment, ReplicaSet, StatefulSet, DaemonSet (`apps/v1`) | `spec.template.spec` |
//! | Job (`batch/v1`) | `spec.template.spec` |
//! | CronJob (`batch/v1`) | `spec.jobTemplate.spec.template.spec` |
//!
//! From the object: `metadata.name` (required, a DNS label, unique in the file: the pod's
//! name), `metadata.namespace` and, for a Pod, `metadata.uid` (a UUID). From the pod spec:
//! `containers` and `initContainers` (an init container with `restartPolicy: Always` is a
//! sidecar) with their `name`, `command`, `args`, `env` (`name` and `value`) and
//! `resources.requests` / `resources.limits` of `memory` and `cpu`; `restartPolicy` (default
//! Always), `priorityClassName`, `priority` and `overhead.memory`.
//!
//! Quantities are read as Kubernetes reads them ([`Quantity`]): memory to bytes
//! (`Value()`: `128Mi`, `1G` = 10^9, `0.5Gi`), cpu to millicores (`MilliValue()`: `500m`,
//! `0.25`, `2`).
//!
//! # What the API server would do, done here
//!
//! - Defaulting (`SetDefaults_Pod`, `pkg/apis/core/v1/defaults.go`): a container with a limit
//!   and no request for a resource requests its limit (per resource; an explicit request, even
//!   0, is kept); `restartPolicy` defaults to Always.
//! - Priority (the Priority admission plugin): `priority` when given, else 2000001000 for
//!   `system-node-critical`, 2000000000 for `system-cluster-critical`, else 0.
//! - Validation, each an error at its place with the fix: a quantity that does not parse or
//!   is negative; a request above its limit; a container name that is not a DNS label or is
//!   repeated in the pod (init containers and containers together); a pod without
//!   containers; an init container's `restartPolicy` other than Always; a pod
//!   `restartPolicy` other than Always, OnFailure or Never; a Job's or CronJob's pod that
//!   would not end (Always) and a Deployment's, ReplicaSet's, StatefulSet's or DaemonSet's
//!   that would (not Always).
//!
//! # What is refused (errors)
//!
//! YAML that does not parse; a value of the wrong type (`containers: "x"`), named by its path
//! (`spec.template.spec.containers`); a workload kind in another apiVersion of its group
//! (`apps/v1beta1` Deployment: write `apps/v1`); a misspelt workload kind; `List` (write the
//! objects as documents) and ReplicationController (write a Deployment); pod-level
//! `spec.resources` (the PodLevelResources feature: rsslab does not model it yet, put the
//! resources on the containers); a workload without `metadata.name` or pod spec; two pods of
//! the same name; a file with no workload at all.
//!
//! # What is warned about
//!
//! Every other field of a workload, at its top-most unused key (one warning for
//! `spec.selector`, not one per label under it), saying what it is and what the lab does
//! instead (`manifest/unused.rs`): `image`, `ports`, probes, `volumeMounts`, labels,
//! `spec.replicas` other than 1 (the lab runs one pod), an `env` entry's `valueFrom` (the
//! variable is not set in the lab), resources other than memory and cpu. Objects that are not
//! workloads (Service, ConfigMap, Ingress, custom resources) are one warning each: rsslab runs
//! pods.
//!
//! # Ids
//!
//! The pod's uid is the Pod's `metadata.uid` when given, else derived from namespace, kind
//! and name; container ids are derived from the uid and the container's name
//! (`manifest/names.rs`), so every run of a manifest names the same cgroups.
//!
//! # How
//!
//! serde-saphyr reads the YAML (serde_yaml is deprecated; serde-saphyr is maintained, does not
//! panic on bad input, bounds what anchors and aliases may expand to, and reports locations)
//! into a tree that keeps each key's and value's place (`manifest/yaml.rs`). Each workload is
//! then read from that tree, as JSON, into k8s-openapi's types (the API's own, so each field
//! has the type the API server decodes it to) through serde_path_to_error, so that a type
//! error names its path, which the tree turns back into a place (`manifest/kinds.rs`). The pod
//! is built and checked from the typed object (`manifest/pod.rs`), and the tree is walked for
//! the fields rsslab does not use (`manifest/unused.rs`).

mod kinds;
mod pod;
mod unused;
mod yaml;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rsslab_wire::pod::PodSpec;

use super::MAX_DIAGNOSTICS;
use super::diag::{self, Diagnostic};
use super::pod_names as names;
#[cfg(doc)]
use super::quantity::Quantity;
use kinds::{Object, Workload};
use yaml::{Yaml, YamlPath};

/// What a manifest holds for the lab.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// One pod per workload object, in the order of the file.
    pub pods: Vec<ManifestPod>,
    /// What the file says that rsslab does not use, located in the file, in its order.
    pub warnings: Vec<Diagnostic>,
}

/// The pod of one workload object.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestPod {
    /// `Deployment/web`: the object's kind and metadata.name.
    pub object: String,
    /// The pod as the kubelet sees it after the API server's defaulting.
    pub pod: PodSpec,
    /// What each container runs, by container name (init containers too).
    pub programs: BTreeMap<String, ContainerProgram>,
    /// Byte span of the object's document in the manifest (for errors that concern it).
    pub span: Range<usize>,
}

/// What a container of the manifest runs, as written (the kubelet's `$(VAR)` expansion is
/// left to what binds programs to containers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerProgram {
    /// `command` (the image's entrypoint, replaced).
    pub command: Option<Vec<String>>,
    /// `args` (the image's cmd, replaced).
    pub args: Option<Vec<String>>,
    /// Literal `env` entries in order (`value`; `valueFrom` entries are warned about, not set).
    pub env: Vec<(String, String)>,
}

/// Reads every workload object of the file; errors (and warnings) are located in this file.
///
/// `Err` holds the errors (at most [`MAX_DIAGNOSTICS`], in the order of the file), without
/// the warnings, which matter once the file reads.
pub fn read_manifest(path: &Path, source: &str) -> Result<Manifest, Vec<Diagnostic>> {
    let located = |diagnostics| diag::locate(diagnostics, path, source);
    let mut reading = Reading::default();
    let Some(documents) = yaml::parse_documents(source, &mut reading.errors) else {
        return Err(located(reading.errors));
    };
    for document in &documents {
        reading.document(document);
    }
    let Reading {
        pods,
        mut errors,
        mut warnings,
        workloads,
        ..
    } = reading;
    if workloads == 0 && errors.is_empty() {
        errors.push(no_workload(documents.is_empty()));
    }
    if !errors.is_empty() {
        errors.sort_by_key(|error| error.span().map_or(0, |span| span.start));
        return Err(located(diag::at_most(errors, MAX_DIAGNOSTICS)));
    }
    warnings.sort_by_key(|warning| warning.span().map_or(0, |span| span.start));
    Ok(Manifest {
        pods,
        warnings: located(warnings),
    })
}

/// What has been read of the file so far.
#[derive(Default)]
struct Reading {
    pods: Vec<ManifestPod>,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    /// Workload objects seen, read or not.
    workloads: usize,
    /// Pod names taken, and by which object.
    names: BTreeMap<String, String>,
}

impl Reading {
    fn document(&mut self, document: &Yaml) {
        match kinds::classify(document, &mut self.errors) {
            None => {}
            Some(Object::Other(kind)) => {
                let place = document.place(&YamlPath::of(&["kind"]));
                self.warnings.push(
                    Diagnostic::at(
                        place,
                        "kind",
                        format!("rsslab runs pods; this {kind} is not used"),
                    )
                    .label("not a workload")
                    .help(format!(
                        "the lab runs the pods of {}; other objects are left out",
                        kinds::workload_list()
                    ))
                    .warning(),
                );
            }
            Some(Object::Workload(workload)) => {
                self.workloads += 1;
                self.workload(document, workload);
            }
        }
    }

    /// Reads one workload's pod, or records why it cannot be read.
    fn workload(&mut self, document: &Yaml, workload: Workload) {
        let Some(decoded) = workload.decode(document, &mut self.errors) else {
            return;
        };
        let Some(name) = self.pod_name(document, workload, &decoded.metadata) else {
            return;
        };
        let kind = workload.kind();
        let object = format!("{kind}/{name}");
        let uid = match (workload, decoded.metadata.uid.as_deref()) {
            (Workload::Pod, Some(uid)) if names::is_uuid(uid) => uid.to_string(),
            (Workload::Pod, Some(uid)) => {
                let path = YamlPath::of(&["metadata", "uid"]);
                let message = format!("`metadata.uid` `{uid}` is not a UUID");
                let error = Diagnostic::at(document.place(&path), path.to_string(), message)
                    .label("the kubelet names the pod's cgroup after it")
                    .help(
                        "remove it (rsslab then derives one from the namespace, kind and name) \
                         or write a UUID such as 0c1f3c1e-7c2a-4d8e-9b1a-3f6d2e5a7b90",
                    );
                self.errors.push(error);
                return;
            }
            _ => names::derived_pod_uid(decoded.metadata.namespace.as_deref(), kind, &name),
        };
        let spec_path = workload.pod_spec_path();
        let Some(spec) = &decoded.pod_spec else {
            let error = Diagnostic::at(
                document.place(&spec_path),
                spec_path.to_string(),
                format!("the {kind} has no pod spec at `{spec_path}`"),
            )
            .help(format!(
                "write the pod's spec, with its containers, under `{spec_path}`"
            ));
            self.errors.push(error);
            return;
        };
        let input = pod::PodInput {
            workload,
            name: &name,
            uid: &uid,
            spec,
            document,
            spec_path: &spec_path,
        };
        let Some((pod, programs)) = pod::read_pod(&input, &mut self.errors) else {
            return;
        };
        self.warnings
            .extend(unused::unused_fields(document, workload, &object));
        self.pods.push(ManifestPod {
            object,
            pod,
            programs,
            span: document.extent(),
        });
    }

    /// `metadata.name`, checked: present, a DNS label, not taken by another object.
    fn pod_name(
        &mut self,
        document: &Yaml,
        workload: Workload,
        metadata: &ObjectMeta,
    ) -> Option<String> {
        let kind = workload.kind();
        let path = YamlPath::of(&["metadata", "name"]);
        let place = document.place(&path);
        let Some(name) = metadata.name.as_deref().filter(|name| !name.is_empty()) else {
            let mut error = Diagnostic::at(
                place,
                "metadata.name",
                format!("the {kind} has no `metadata.name`"),
            )
            .help("add `name: web` under `metadata:`: the pod is named after the object");
            if metadata.generate_name.is_some() {
                error =
                    error.note("`metadata.generateName` is not read: the lab needs a fixed name");
            }
            self.errors.push(error);
            return None;
        };
        if !names::is_dns_label(name) {
            self.errors.push(
                Diagnostic::at(
                    place,
                    "metadata.name",
                    format!("`{name}` is not a DNS label"),
                )
                .label("rsslab names the pod after it")
                .help(format!(
                    "use lowercase letters, digits and '-' (at most 63), starting and \
                     ending with a letter or digit: e.g. `name: {}`",
                    names::as_dns_label(name)
                )),
            );
            return None;
        }
        let object = format!("{kind}/{name}");
        if let Some(first) = self.names.insert(name.to_string(), object.clone()) {
            self.errors.push(
                Diagnostic::at(
                    place,
                    "metadata.name",
                    format!("two pods named `{name}`: {first} and {object}"),
                )
                .label("the pod is named after the object")
                .help("rename one: the pods of a manifest need distinct names"),
            );
            return None;
        }
        Some(name.to_string())
    }
}

/// The error for a file without a workload object.
fn no_workload(empty: bool) -> Diagnostic {
    let message = if empty {
        "the manifest is empty: no workload in it"
    } else {
        "no workload in the manifest"
    };
    Diagnostic::missing("", message).help(format!(
        "rsslab runs the pods of {}: add one, or name the file that has them",
        kinds::workload_list()
    ))
}
