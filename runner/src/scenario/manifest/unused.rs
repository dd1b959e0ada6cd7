//! Warnings for what a workload's document says that rsslab does not use, so nothing in a
//! manifest is dropped silently: one warning at each top-most unused key (one for
//! `spec.selector`, not one per label under it), named by its path, with what the lab does
//! instead.
//!
//! The entry is [`unused_fields`]. What is used: `apiVersion`, `kind`, `metadata.name`,
//! `metadata.namespace`, `metadata.uid` (a Pod's), the keys down to the pod spec; in the pod
//! spec `containers`, `initContainers`, `restartPolicy`, `priorityClassName`, `priority`,
//! `overhead.memory` (and `resources`, which is refused elsewhere); in a container `name`,
//! `command`, `args`, `env` (`name` and `value`), `resources.requests` and `resources.limits`
//! (`memory` and `cpu`) and an init container's `restartPolicy`. `spec.replicas: 1` says what
//! the lab does and is not warned about.

use super::kinds::Workload;
use super::yaml::{Entry, Value, Yaml, YamlPath};
use crate::scenario::diag::{Diagnostic, did_you_mean};

/// One warning for each top-most key of `document` that rsslab does not use, in the order
/// written. `object` names the object in messages (`Deployment/web`).
pub fn unused_fields(document: &Yaml, workload: Workload, object: &str) -> Vec<Diagnostic> {
    let mut walk = Walk {
        workload,
        object,
        container: None,
        warnings: Vec::new(),
    };
    walk.object(document);
    walk.warnings
}

struct Walk<'a> {
    workload: Workload,
    object: &'a str,
    /// The name of the container being walked, for the messages about its fields.
    container: Option<String>,
    warnings: Vec<Diagnostic>,
}

impl Walk<'_> {
    fn object(&mut self, node: &Yaml) {
        const USED: &[&str] = &["apiVersion", "kind", "metadata", "spec"];
        let path = YamlPath::default();
        for entry in node.entries() {
            let here = path.key(&entry.key);
            match entry.key.as_str() {
                "apiVersion" | "kind" => {}
                "metadata" => self.metadata(&entry.value, &here),
                "spec" if self.workload == Workload::Pod => self.pod_spec(&entry.value, &here),
                "spec" => self.workload_spec(&entry.value, &here),
                _ => self.unused(entry, &here, USED),
            }
        }
    }

    fn metadata(&mut self, node: &Yaml, path: &YamlPath) {
        const USED: &[&str] = &["name", "namespace", "uid"];
        for entry in node.entries() {
            let here = path.key(&entry.key);
            match entry.key.as_str() {
                "name" | "namespace" => {}
                "uid" if self.workload == Workload::Pod => {}
                "uid" => {
                    let kind = self.workload.kind();
                    let reason = format!(
                        "it is the {kind}'s own uid, not its pod's: the pod's uid is derived \
                         from the namespace, kind and name"
                    );
                    self.unused_because(entry, &here, &reason, USED);
                }
                _ => self.unused(entry, &here, USED),
            }
        }
    }

    /// The spec of a Deployment, ReplicaSet, StatefulSet, DaemonSet, Job or CronJob, down to
    /// its pod template.
    fn workload_spec(&mut self, node: &Yaml, path: &YamlPath) {
        let replicated = matches!(
            self.workload,
            Workload::Deployment | Workload::ReplicaSet | Workload::StatefulSet
        );
        let used: &[&str] = match self.workload {
            Workload::CronJob => &["jobTemplate"],
            _ if replicated => &["template", "replicas"],
            _ => &["template"],
        };
        for entry in node.entries() {
            let here = path.key(&entry.key);
            match entry.key.as_str() {
                "template" if self.workload != Workload::CronJob => {
                    self.template(&entry.value, &here);
                }
                "replicas" if replicated => self.replicas(entry, &here),
                "jobTemplate" if self.workload == Workload::CronJob => {
                    self.job_template(&entry.value, &here);
                }
                _ => self.unused(entry, &here, used),
            }
        }
    }

    /// `replicas: 1` is what the lab runs; any other count is not.
    fn replicas(&mut self, entry: &Entry, path: &YamlPath) {
        let Value::Number(count) = &entry.value.value else {
            return;
        };
        if count.as_i64() != Some(1) {
            let message = format!(
                "`{path}` is {count}: the lab runs one pod of `{}`",
                self.object
            );
            self.warn(entry, path, message, &[]);
        }
    }

    /// A CronJob's `jobTemplate` and the Job spec in it.
    fn job_template(&mut self, node: &Yaml, path: &YamlPath) {
        for entry in node.entries() {
            let here = path.key(&entry.key);
            if entry.key != "spec" {
                self.unused(entry, &here, &["spec"]);
                continue;
            }
            for job_entry in entry.value.entries() {
                let job_here = here.key(&job_entry.key);
                match job_entry.key.as_str() {
                    "template" => self.template(&job_entry.value, &job_here),
                    _ => self.unused(job_entry, &job_here, &["template"]),
                }
            }
        }
    }

    fn template(&mut self, node: &Yaml, path: &YamlPath) {
        for entry in node.entries() {
            let here = path.key(&entry.key);
            match entry.key.as_str() {
                "spec" => self.pod_spec(&entry.value, &here),
                _ => self.unused(entry, &here, &["spec"]),
            }
        }
    }

    fn pod_spec(&mut self, node: &Yaml, path: &YamlPath) {
        const USED: &[&str] = &[
            "containers",
            "initContainers",
            "restartPolicy",
            "priorityClassName",
            "priority",
            "overhead",
            "resources",
        ];
        for entry in node.entries() {
            let here = path.key(&entry.key);
            match entry.key.as_str() {
                "containers" | "initContainers" => {
                    let init = entry.key == "initContainers";
                    for (i, container) in entry.value.items().iter().enumerate() {
                        self.container(container, &here.index(i), init);
                    }
                }
                "overhead" => self.quantities(
                    &entry.value,
                    &here,
                    &["memory"],
                    "rsslab models the memory of a pod's overhead only",
                ),
                // `resources` (pod-level) is refused as an error where the pod is read.
                "restartPolicy" | "priorityClassName" | "priority" | "resources" => {}
                _ => self.unused(entry, &here, USED),
            }
        }
    }

    fn container(&mut self, node: &Yaml, path: &YamlPath, init: bool) {
        const USED: &[&str] = &["name", "command", "args", "env", "resources"];
        self.container = node.get("name").and_then(Yaml::as_str).map(str::to_string);
        for entry in node.entries() {
            let here = path.key(&entry.key);
            match entry.key.as_str() {
                "name" | "command" | "args" => {}
                "restartPolicy" if init => {}
                "env" => {
                    for (i, var) in entry.value.items().iter().enumerate() {
                        self.env_var(var, &here.index(i));
                    }
                }
                "resources" => self.resources(&entry.value, &here),
                _ => self.unused(entry, &here, USED),
            }
        }
        self.container = None;
    }

    fn env_var(&mut self, node: &Yaml, path: &YamlPath) {
        const USED: &[&str] = &["name", "value"];
        let name = node.get("name").and_then(Yaml::as_str).unwrap_or("?");
        for entry in node.entries() {
            let here = path.key(&entry.key);
            match entry.key.as_str() {
                "name" | "value" => {}
                "valueFrom" => {
                    let source = entry
                        .value
                        .entries()
                        .first()
                        .map_or("elsewhere".to_string(), |from| format!("a {}", from.key));
                    let reason = format!(
                        "`{name}` is not set in the lab (in a cluster its value comes from \
                         {source})"
                    );
                    self.unused_because(entry, &here, &reason, USED);
                }
                _ => self.unused(entry, &here, USED),
            }
        }
    }

    fn resources(&mut self, node: &Yaml, path: &YamlPath) {
        const USED: &[&str] = &["requests", "limits"];
        for entry in node.entries() {
            let here = path.key(&entry.key);
            match entry.key.as_str() {
                "requests" | "limits" => self.quantities(
                    &entry.value,
                    &here,
                    &["memory", "cpu"],
                    "rsslab models memory and cpu only",
                ),
                _ => self.unused(entry, &here, USED),
            }
        }
    }

    /// A mapping of resource names to quantities, of which rsslab reads `used`.
    fn quantities(&mut self, node: &Yaml, path: &YamlPath, used: &[&str], reason: &str) {
        for entry in node.entries() {
            if !used.contains(&entry.key.as_str()) {
                self.unused_because(entry, &path.key(&entry.key), reason, used);
            }
        }
    }

    /// A warning for `entry`, with the reason its key usually has.
    fn unused(&mut self, entry: &Entry, path: &YamlPath, used: &[&str]) {
        let reason = self.reason(&entry.key);
        self.unused_because(entry, path, &reason, used);
    }

    fn unused_because(&mut self, entry: &Entry, path: &YamlPath, reason: &str, used: &[&str]) {
        self.warn(entry, path, format!("`{path}` is not used: {reason}"), used);
    }

    /// A warning at `entry`'s key; a key close to one of `used` is probably misspelt.
    fn warn(&mut self, entry: &Entry, path: &YamlPath, message: String, used: &[&str]) {
        let mut warning = Diagnostic::at(entry.key_span.clone(), path.to_string(), message)
            .label("not used")
            .warning();
        if let Some(close) = did_you_mean(&entry.key, used.iter().copied()) {
            warning = warning.help(format!("did you mean `{close}`?"));
        }
        self.warnings.push(warning);
    }

    /// Why the lab has no use for a field, by its key.
    fn reason(&self, key: &str) -> String {
        let object = self.object;
        let reason = match key {
            "image" | "imagePullPolicy" => match &self.container {
                Some(container) => {
                    return format!(
                        "the lab runs the program the scenario names for container `{container}`"
                    );
                }
                None => "the lab runs the program the scenario names for the container",
            },
            "metadata" => {
                return format!(
                    "the pod's labels and annotations serve a cluster's selectors and tools; \
                     the lab names the pod after `{object}`"
                );
            }
            "labels" | "annotations" => {
                "labels and annotations serve a cluster's selectors and tools; the lab has neither"
            }
            "selector" => {
                return format!(
                    "a selector finds the pods of `{object}` in a cluster; the lab runs the \
                     template's pod itself"
                );
            }
            "strategy"
            | "updateStrategy"
            | "minReadySeconds"
            | "revisionHistoryLimit"
            | "progressDeadlineSeconds"
            | "paused"
            | "podManagementPolicy"
            | "serviceName"
            | "ordinals"
            | "persistentVolumeClaimRetentionPolicy" => {
                return format!(
                    "it is how a cluster rolls out `{object}`; the lab runs one pod of it"
                );
            }
            "schedule"
            | "concurrencyPolicy"
            | "successfulJobsHistoryLimit"
            | "failedJobsHistoryLimit"
            | "startingDeadlineSeconds"
            | "suspend"
            | "timeZone"
            | "completions"
            | "parallelism"
            | "backoffLimit"
            | "backoffLimitPerIndex"
            | "activeDeadlineSeconds"
            | "ttlSecondsAfterFinished"
            | "completionMode"
            | "podFailurePolicy"
            | "podReplacementPolicy" => {
                return format!(
                    "it is when and how often a cluster runs `{object}`; the lab runs its pod once"
                );
            }
            "livenessProbe" | "readinessProbe" | "startupProbe" => {
                "the lab does not probe containers: a program runs until it ends or the run does"
            }
            "ports" => "the lab has no pod network; nothing connects to a container's ports",
            "volumeMounts" | "volumes" | "volumeDevices" | "volumeClaimTemplates" => {
                "the lab mounts no volumes"
            }
            "envFrom" => "variables from ConfigMaps and Secrets are not set in the lab",
            "lifecycle" => "the lab runs no lifecycle hooks",
            "restartPolicy" => {
                "a container's own restart policy is not modelled: the pod's restartPolicy applies"
            }
            "nodeSelector"
            | "nodeName"
            | "affinity"
            | "tolerations"
            | "topologySpreadConstraints"
            | "schedulerName" => "the lab's one node runs every pod: there is no scheduling",
            "status" => "it is what a cluster reports about the object",
            _ => {
                "rsslab reads a pod's name, priority, restart policy and containers (their \
                 resources, command, args and env)"
            }
        };
        reason.to_string()
    }
}
