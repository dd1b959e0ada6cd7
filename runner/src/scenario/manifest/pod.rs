//! A workload's pod spec read into rsslab's pod ([`PodSpec`]): what the API server would
//! refuse is an error at its place, and what it would default is defaulted, so the pod is the
//! one the kubelet sees.
//!
//! The entry is [`read_pod`].

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1 as k8s;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use rsslab_wire::pod::{ContainerSpec, PodSpec, Resources, RestartPolicy};
use rsslab_wire::units::Bytes;

use super::super::pod_names::{as_dns_label, container_id, is_dns_label, priority};
use super::ContainerProgram;
use super::kinds::Workload;
use super::yaml::{Yaml, YamlPath};
use crate::scenario::diag::{Diagnostic, suggest};
use crate::scenario::quantity::Quantity;

/// A workload's pod spec and what it needs to become a pod.
pub struct PodInput<'a> {
    pub workload: Workload,
    /// `metadata.name`, checked.
    pub name: &'a str,
    pub uid: &'a str,
    pub spec: &'a k8s::PodSpec,
    /// The object's document, for the places of errors.
    pub document: &'a Yaml,
    /// Where the pod spec is in the document.
    pub spec_path: &'a YamlPath,
}

/// The pod and what each container runs; `None` when an error was found (it is in `errors`).
pub fn read_pod(
    input: &PodInput,
    errors: &mut Vec<Diagnostic>,
) -> Option<(PodSpec, BTreeMap<String, ContainerProgram>)> {
    let errors_before = errors.len();
    let (spec, spec_path) = (input.spec, input.spec_path);
    if spec.resources.is_some() {
        let path = spec_path.key("resources");
        errors.push(
            input
                .error(&path, "rsslab does not model pod-level resources yet")
                .label("pod-level resources (the PodLevelResources feature)")
                .help(format!(
                    "put the requests and limits on the containers (`resources` of each of \
                     `{}`) and remove `{path}`",
                    spec_path.key("containers")
                )),
        );
    }
    if spec.containers.is_empty() {
        errors.push(
            input
                .error(&spec_path.key("containers"), "the pod has no containers")
                .help("add at least one container: `containers:` with `- name: app` below it"),
        );
    }
    let restart_policy = read_restart_policy(input, errors);
    let init = spec.init_containers.as_deref().unwrap_or_default();
    let init_containers = read_containers(input, init, "initContainers", errors);
    let containers = read_containers(input, &spec.containers, "containers", errors);
    check_unique_names(input, errors);
    let overhead = spec
        .overhead
        .as_ref()
        .and_then(|overhead| overhead.get("memory"))
        .and_then(|memory| {
            let path = spec_path.key("overhead").key("memory");
            read_quantity(input, memory, Resource::Memory, &path, errors)
        })
        .map(Bytes);
    if errors.len() > errors_before {
        return None;
    }
    let priority = priority(spec.priority, spec.priority_class_name.as_deref());
    let programs = init.iter().chain(&spec.containers).map(program).collect();
    let pod = PodSpec {
        name: input.name.to_string(),
        uid: input.uid.to_string(),
        priority_class_name: spec.priority_class_name.clone(),
        priority,
        restart_policy,
        overhead,
        init_containers,
        containers,
    };
    Some((pod, programs))
}

impl PodInput<'_> {
    /// An error about the value at `path` of the document.
    fn error(&self, path: &YamlPath, message: impl Into<String>) -> Diagnostic {
        Diagnostic::at(self.document.place(path), path.to_string(), message)
    }
}

/// `spec.restartPolicy`, `Always` when unset (`SetDefaults_PodSpec`). A Job's (CronJob's) pod
/// must end, and a Deployment's (ReplicaSet's, StatefulSet's, DaemonSet's) must not, as the
/// validation of their templates requires (`pkg/apis/batch/validation`: OnFailure or Never;
/// `pkg/apis/apps/validation`: only Always).
fn read_restart_policy(input: &PodInput, errors: &mut Vec<Diagnostic>) -> RestartPolicy {
    let path = input.spec_path.key("restartPolicy");
    let kind = input.workload.kind();
    let policy = match input.spec.restart_policy.as_deref() {
        None | Some("Always") => RestartPolicy::Always,
        Some("OnFailure") => RestartPolicy::OnFailure,
        Some("Never") => RestartPolicy::Never,
        Some(other) => {
            errors.push(
                input
                    .error(&path, format!("invalid value for `{path}`"))
                    .label(format!("unknown restart policy `{other}`"))
                    .help(suggest(other, &["Always", "OnFailure", "Never"])),
            );
            return RestartPolicy::Always;
        }
    };
    let written = input.spec.restart_policy.is_some();
    if input.workload.runs_to_completion() && policy == RestartPolicy::Always {
        let problem = if written {
            "is Always"
        } else {
            "is unset (Always)"
        };
        errors.push(
            input
                .error(
                    &path,
                    format!("a {kind}'s pod must end: `{path}` {problem}"),
                )
                .label("a Job's pod has restartPolicy OnFailure or Never")
                .help(format!(
                    "write `restartPolicy: Never` (or OnFailure) in `{}`",
                    input.spec_path
                )),
        );
    } else if !input.workload.runs_to_completion()
        && input.workload != Workload::Pod
        && policy != RestartPolicy::Always
    {
        errors.push(
            input
                .error(
                    &path,
                    format!("a {kind}'s pods run on: `{path}` must be Always"),
                )
                .help(
                    "remove `restartPolicy` (it defaults to Always), or make the object a Job \
                     for a pod that ends",
                ),
        );
    }
    policy
}

/// The containers of the pod spec's list `key` (`containers` or `initContainers`).
fn read_containers(
    input: &PodInput,
    list: &[k8s::Container],
    key: &str,
    errors: &mut Vec<Diagnostic>,
) -> Vec<ContainerSpec> {
    let init = key == "initContainers";
    let path = input.spec_path.key(key);
    list.iter()
        .enumerate()
        .map(|(i, container)| read_container(input, container, &path.index(i), init, errors))
        .collect()
}

/// One container: its name checked, its resources read and defaulted, its sidecar flag.
fn read_container(
    input: &PodInput,
    container: &k8s::Container,
    path: &YamlPath,
    init: bool,
    errors: &mut Vec<Diagnostic>,
) -> ContainerSpec {
    let name = container.name.as_str();
    if name.is_empty() {
        errors.push(
            input
                .error(path, "the container has no `name`")
                .help("add `name: app` (a DNS label, unique in the pod)"),
        );
    } else if !is_dns_label(name) {
        let name_path = path.key("name");
        errors.push(
            input
                .error(
                    &name_path,
                    format!("container name `{name}` is not a DNS label"),
                )
                .label("lowercase letters, digits and '-', at most 63")
                .help(format!("write e.g. `name: {}`", as_dns_label(name))),
        );
    }
    let requirements = container.resources.as_ref();
    let resources_path = path.key("resources");
    let limits = read_resources(
        input,
        requirements.and_then(|r| r.limits.as_ref()),
        &resources_path.key("limits"),
        errors,
    );
    let explicit_requests = read_resources(
        input,
        requirements.and_then(|r| r.requests.as_ref()),
        &resources_path.key("requests"),
        errors,
    );
    check_requests_within_limits(input, container, path, &explicit_requests, &limits, errors);
    // `SetDefaults_Pod` (pkg/apis/core/v1/defaults.go): a resource with a limit and no request
    // requests its limit; an explicit request, even 0, is kept.
    let requests = Resources {
        memory: explicit_requests.memory.or(limits.memory),
        cpu_millis: explicit_requests.cpu_millis.or(limits.cpu_millis),
    };
    let sidecar = init && read_init_restart_policy(input, container, path, errors);
    for (i, var) in container.env.iter().flatten().enumerate() {
        if var.name.is_empty() {
            errors.push(
                input
                    .error(&path.key("env").index(i), "an `env` entry has no `name`")
                    .help("add `name: VARIABLE` beside its `value`"),
            );
        }
    }
    ContainerSpec {
        name: name.to_string(),
        id: container_id(input.uid, name),
        requests,
        limits,
        sidecar,
    }
}

/// An init container's `restartPolicy`: `Always` makes it a sidecar; nothing else is allowed.
fn read_init_restart_policy(
    input: &PodInput,
    container: &k8s::Container,
    path: &YamlPath,
    errors: &mut Vec<Diagnostic>,
) -> bool {
    match container.restart_policy.as_deref() {
        None => false,
        Some("Always") => true,
        Some(other) => {
            let path = path.key("restartPolicy");
            errors.push(
                input
                    .error(&path, format!("invalid value for `{path}`"))
                    .label(format!(
                        "`{other}`: an init container's restartPolicy can only be Always"
                    ))
                    .help(
                        "write `restartPolicy: Always` for a sidecar, or remove it for an init \
                         container that runs to completion first",
                    ),
            );
            false
        }
    }
}

/// The resources rsslab models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resource {
    Memory,
    Cpu,
}

impl Resource {
    fn key(self) -> &'static str {
        match self {
            Resource::Memory => "memory",
            Resource::Cpu => "cpu",
        }
    }

    fn of(self, resources: &Resources) -> Option<u64> {
        match self {
            Resource::Memory => resources.memory.map(|bytes| bytes.0),
            Resource::Cpu => resources.cpu_millis,
        }
    }

    fn how_to_write(self) -> &'static str {
        match self {
            Resource::Memory => "write e.g. 128Mi (binary) or 128M (decimal)",
            Resource::Cpu => "write e.g. 500m (millicores) or 0.5 (cores)",
        }
    }
}

/// Memory and cpu of a `requests` or `limits` mapping (other resources are warned about as
/// not used, not read).
fn read_resources(
    input: &PodInput,
    quantities: Option<&BTreeMap<String, K8sQuantity>>,
    path: &YamlPath,
    errors: &mut Vec<Diagnostic>,
) -> Resources {
    let mut read = |resource: Resource| {
        let quantity = quantities?.get(resource.key())?;
        read_quantity(input, quantity, resource, &path.key(resource.key()), errors)
    };
    Resources {
        memory: read(Resource::Memory).map(Bytes),
        cpu_millis: read(Resource::Cpu),
    }
}

/// A quantity as Kubernetes reads it: memory in bytes (`Value()`), cpu in millicores
/// (`MilliValue()`); one that does not parse, is negative or is too large is an error.
fn read_quantity(
    input: &PodInput,
    quantity: &K8sQuantity,
    resource: Resource,
    path: &YamlPath,
    errors: &mut Vec<Diagnostic>,
) -> Option<u64> {
    let text = quantity.0.as_str();
    let error = |label: String| {
        input
            .error(path, format!("invalid quantity for `{path}`"))
            .label(label)
            .help(resource.how_to_write())
    };
    let parsed = match Quantity::parse(text) {
        Ok(parsed) => parsed,
        Err(problem) => {
            errors.push(error(problem));
            return None;
        }
    };
    if parsed.is_negative() {
        errors.push(error(format!(
            "`{text}`: must be greater than or equal to 0"
        )));
        return None;
    }
    let value = match resource {
        Resource::Memory => parsed.value(),
        Resource::Cpu => parsed.milli_value(),
    };
    if value.is_none() {
        errors.push(error(format!(
            "`{text}` is past the largest quantity Kubernetes holds"
        )));
    }
    value
}

/// A request above its limit is refused (`ValidateResourceRequirements`: "must be less than
/// or equal to memory limit of 128Mi"). The two are compared as the integers the kubelet uses
/// (bytes and millicores, rounded up), which differs from the API server's exact comparison
/// only below a byte or a millicore.
fn check_requests_within_limits(
    input: &PodInput,
    container: &k8s::Container,
    path: &YamlPath,
    requests: &Resources,
    limits: &Resources,
    errors: &mut Vec<Diagnostic>,
) {
    let requirements = container.resources.as_ref();
    let written = |quantities: Option<&BTreeMap<String, K8sQuantity>>, key: &str| {
        let quantity = quantities.and_then(|quantities| quantities.get(key));
        quantity.map_or_else(String::new, |quantity| quantity.0.clone())
    };
    for resource in [Resource::Memory, Resource::Cpu] {
        let key = resource.key();
        if let (Some(request), Some(limit)) = (resource.of(requests), resource.of(limits))
            && request > limit
        {
            let request_text = written(requirements.and_then(|r| r.requests.as_ref()), key);
            let limit_text = written(requirements.and_then(|r| r.limits.as_ref()), key);
            let request_path = path.key("resources").key("requests").key(key);
            let message = format!(
                "the {key} request of container `{}` is above its limit",
                container.name
            );
            errors.push(
                input
                    .error(&request_path, message)
                    .label(format!(
                        "{request_text}: must be less than or equal to {key} limit of {limit_text}"
                    ))
                    .help(format!(
                        "lower the request to at most {limit_text}, or raise the limit"
                    )),
            );
        }
    }
}

/// Container names are unique in the pod, init containers and containers together.
fn check_unique_names(input: &PodInput, errors: &mut Vec<Diagnostic>) {
    let spec = input.spec;
    let init = spec.init_containers.as_deref().unwrap_or_default();
    let named = init
        .iter()
        .enumerate()
        .map(|(i, c)| (c, input.spec_path.key("initContainers").index(i)))
        .chain(
            spec.containers
                .iter()
                .enumerate()
                .map(|(i, c)| (c, input.spec_path.key("containers").index(i))),
        );
    let mut seen = BTreeSet::new();
    for (container, path) in named {
        if !container.name.is_empty() && !seen.insert(container.name.as_str()) {
            let path = path.key("name");
            errors.push(
                input
                    .error(
                        &path,
                        format!("two containers of the pod are named `{}`", container.name),
                    )
                    .label("a container name is unique in its pod (init containers too)")
                    .help("rename one of them"),
            );
        }
    }
}

/// What a container runs: its command, args and literal environment.
fn program(container: &k8s::Container) -> (String, ContainerProgram) {
    let env = container
        .env
        .iter()
        .flatten()
        .filter(|var| var.value_from.is_none())
        .map(|var| (var.name.clone(), var.value.clone().unwrap_or_default()))
        .collect();
    let program = ContainerProgram {
        command: container.command.clone(),
        args: container.args.clone(),
        env,
    };
    (container.name.clone(), program)
}
