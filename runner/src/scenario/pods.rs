//! `[node]` and `[[pod]]`: a scenario's pods, written out or taken from a Kubernetes
//! manifest, checked as the API server and the kubelet would check them, and bound to the
//! processes that run in their containers.
//!
//! ```toml
//! [node]
//! kubernetes = "1.32"                  # required: whose kubelet rules apply (1.25 to 1.36)
//! cgroup_version = 2                   # default 2
//! cgroup_driver = "systemd"            # or "cgroupfs"
//! system_reserved = "64MiB"            # default 0; kube_reserved too
//! feature_gates = { MemoryQoS = true } # MemoryQoS, SidecarContainers
//! memory_throttling_factor = 0.9       # MemoryQoS; default 0.8 before 1.27, then 0.9
//! single_process_oom_kill = true       # 1.32 on; default false (true on cgroup v1)
//! memory_reservation_policy = "None"   # 1.36 on: None or TieredReservation
//! max_container_restart_period = "2s"  # crashLoopBackOff.maxContainerRestartPeriod, 1s to 300s
//!                                      # (gate KubeletCrashLoopBackOffMax: 1.32 on, default from 1.35)
//!
//! [[pod]]
//! name = "web"
//! [[pod.container]]
//! name = "api"
//! requests = { memory = "96MiB", cpu = "250m" }
//! limits = { memory = "128MiB", cpu = 1 }
//! [[pod.init_container]]
//! name = "shipper"
//! restart_policy = "Always"            # a sidecar
//!
//! [[pod]]
//! manifest = "k8s/web.yaml"            # every workload object of the file; or one of them:
//! object = "Deployment/web"
//!
//! [[process]]
//! name = "api"
//! container = "web/api"                # the container's first process is its main program
//! workload = "hog"
//! ```
//!
//! Rules: `[node]` and `[[pod]]` go together, and not with `[cgroup]` (the pods' cgroups are
//! the kubelet's); pod names are DNS labels, unique in the scenario; container names DNS
//! labels, unique in their pod; every container runs at least one process and every
//! `container = ...` names one; a request is at most its limit, and a limit without a request
//! requests the limit (the API server's defaulting, `pkg/apis/core/v1/defaults.go`,
//! `SetDefaults_Pod`); the pods' requests fit the VM's memory less the reservations (else the
//! scheduler would not place them); what the kubelet of that version refuses
//! ([`rsslab_kubelet::check`]) is refused here. A written-out pod's uid and its containers'
//! ids are derived from its name, so runs of the same scenario name the same cgroups.
//!
//! A manifest's container also says what its program gets: `env` (each process of the
//! container gets it; the process's own `env` goes on top), and `command` and `args`, which
//! replace the arguments of the container's main process when it runs a program (`exec`,
//! `go-source`), the way they replace an image's entrypoint and command (`$(VAR)` expanded as
//! the kubelet does, `third_party/forked/golang/expansion/expand.go`); a built-in workload
//! takes neither (a warning says so).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use rsslab_kubelet::resources::pod_memory;
use rsslab_wire::pod::{
    CgroupDriver, ContainerSpec, KubeVersion, NodeSpec, PodSpec, Resources, RestartPolicy,
    container_key,
};
use rsslab_wire::workload::Workload;
use rsslab_wire::{Bytes, ProcessSpec};
use serde_spanned::Spanned;

use super::VmConfig;
use super::diag::{Diagnostic, suggest};
use super::manifest::{ContainerProgram, read_manifest};
use super::pod_names::{container_id, derived_pod_uid, is_dns_label, priority};
use super::quantity::Quantity;
use super::raw::{CpuAmount, PodEntry, RawContainer, RawNode, RawResources, RawSetup};

/// The pods of a variant, checked, and what their manifests say their programs get.
#[derive(Debug, Clone, Default)]
pub struct CheckedPods {
    pub node: Option<NodeSpec>,
    /// Container key -> what its manifest says it runs.
    programs: BTreeMap<String, ContainerProgram>,
    /// What the manifests say that the lab does not use.
    pub warnings: Vec<Diagnostic>,
}

/// A pod as read, before the scenario-wide checks: where to point errors about it.
struct ReadPod {
    spec: PodSpec,
    span: Range<usize>,
    key: String,
}

/// Checks `[node]` and `[[pod]]` and the processes' `container`; manifests are read relative
/// to `base_dir`.
pub fn check_pods(
    raw: &RawSetup,
    vm: &VmConfig,
    base_dir: &Path,
    diags: &mut Vec<Diagnostic>,
) -> CheckedPods {
    let mut checked = CheckedPods::default();
    let Some((node, node_span)) = &raw.node else {
        if let Some(first) = raw.pods.first() {
            diags.push(
                Diagnostic::at(
                    first.span.clone(),
                    format!("pod[{}]", first.index),
                    "[[pod]] without [node]",
                )
                .label("pods run on a node whose kubelet's rules apply")
                .help("add\n[node]\nkubernetes = \"1.32\""),
            );
        }
        // With pods but no node, that is the mistake: the processes' containers are fine.
        for entry in raw.processes.iter().filter(|_| raw.pods.is_empty()) {
            if let Some(container) = &entry.raw.container {
                let key = format!("process[{}].container", entry.index);
                diags.push(
                    Diagnostic::at(
                        container.span(),
                        &key,
                        format!("`{key}` names a container, but the scenario has no pods"),
                    )
                    .help("add [node] and a [[pod]] with this container, or remove the key"),
                );
            }
        }
        return checked;
    };
    if raw.cgroup.is_some() {
        diags.push(
            Diagnostic::at(raw.cgroup_span.clone(), "cgroup", "[cgroup] beside [node]")
                .label("with pods, the cgroups are the kubelet's")
                .help("remove [cgroup] and give the containers requests and limits, or remove [node] and [[pod]]"),
        );
    }
    if raw.pods.is_empty() {
        diags.push(
            Diagnostic::at(node_span.clone(), "node", "[node] without any [[pod]]")
                .help("add\n[[pod]]\nname = \"web\"\n[[pod.container]]\nname = \"api\"\nlimits = { memory = \"128MiB\" }"),
        );
    }
    let mut pods = Vec::new();
    let before = diags.len();
    for entry in &raw.pods {
        read_pod(entry, base_dir, &mut pods, &mut checked, diags);
    }
    // A pod that did not read leaves its containers unknown: naming them missing would only
    // repeat its error.
    let all_read = diags.len() == before;
    check_pod_names(&pods, diags);
    let spec = node_spec(node, &pods, diags);
    if let Some(spec) = &spec {
        for problem in rsslab_kubelet::check(spec) {
            diags.push(kubelet_problem(problem, node, node_span, &pods));
        }
        check_fit(spec, vm, node_span, diags);
    }
    if all_read {
        bind_processes(raw, &pods, diags);
    }
    checked.node = spec;
    checked
}

/// The node's settings, with the pods.
fn node_spec(raw: &RawNode, pods: &[ReadPod], diags: &mut Vec<Diagnostic>) -> Option<NodeSpec> {
    let before = diags.len();
    let kubernetes = raw
        .kubernetes
        .get_ref()
        .parse::<KubeVersion>()
        .map_err(|error| {
            diags.push(
                Diagnostic::at(
                    raw.kubernetes.span(),
                    "node.kubernetes",
                    "invalid `node.kubernetes`",
                )
                .label(error)
                .help(format!(
                    "write the kubelet's version, from {} to {}: kubernetes = \"1.32\"",
                    rsslab_kubelet::settings::OLDEST,
                    rsslab_kubelet::settings::NEWEST
                )),
            )
        });
    let cgroup_driver = match raw
        .cgroup_driver
        .as_ref()
        .map(|d| (d.get_ref().as_str(), d.span()))
    {
        None | Some(("systemd", _)) => CgroupDriver::Systemd,
        Some(("cgroupfs", _)) => CgroupDriver::Cgroupfs,
        Some((other, span)) => {
            diags.push(
                Diagnostic::at(
                    span,
                    "node.cgroup_driver",
                    format!("unknown `node.cgroup_driver` `{other}`"),
                )
                .help(suggest(other, &["systemd", "cgroupfs"])),
            );
            CgroupDriver::Systemd
        }
    };
    let cgroup_version = raw.cgroup_version.as_ref().map_or(2, |v| *v.get_ref());
    if let Some(spanned) = raw
        .cgroup_version
        .as_ref()
        .filter(|_| !(1..=2).contains(&cgroup_version))
    {
        diags.push(
            Diagnostic::at(
                spanned.span(),
                "node.cgroup_version",
                format!("`node.cgroup_version`: cgroup version {cgroup_version} does not exist"),
            )
            .label("expected 1 or 2")
            .help("write cgroup_version = 2 (unified hierarchy) or 1 (legacy memory controller)"),
        );
    }
    let kubernetes = kubernetes.ok()?;
    (diags.len() == before).then(|| NodeSpec {
        kubernetes,
        cgroup_version: u8::try_from(cgroup_version).unwrap_or(2),
        cgroup_driver,
        system_reserved: raw
            .system_reserved
            .as_ref()
            .map_or(Bytes(0), |b| *b.get_ref()),
        kube_reserved: raw
            .kube_reserved
            .as_ref()
            .map_or(Bytes(0), |b| *b.get_ref()),
        feature_gates: raw
            .feature_gates
            .iter()
            .flatten()
            .map(|(name, on)| (name.clone(), *on.get_ref()))
            .collect(),
        memory_throttling_factor: raw.memory_throttling_factor.as_ref().map(|f| *f.get_ref()),
        single_process_oom_kill: raw.single_process_oom_kill.as_ref().map(|s| *s.get_ref()),
        max_container_restart_period: raw
            .max_container_restart_period
            .as_ref()
            .map(|period| *period.get_ref()),
        memory_reservation_policy: raw
            .memory_reservation_policy
            .as_ref()
            .map(|p| p.get_ref().clone()),
        pods: pods.iter().map(|pod| pod.spec.clone()).collect(),
    })
}

/// A problem [`rsslab_kubelet::check`] found, at the key it is about.
fn kubelet_problem(
    problem: rsslab_kubelet::Problem,
    raw: &RawNode,
    node_span: &Range<usize>,
    pods: &[ReadPod],
) -> Diagnostic {
    let gate = problem
        .key
        .strip_prefix("feature_gates.")
        .and_then(|gate| raw.feature_gates.as_ref()?.get(gate))
        .map(Spanned::span);
    let pod = problem.key.strip_prefix("pod.").and_then(|rest| {
        pods.iter()
            .find(|pod| rest.starts_with(&format!("{}.", pod.spec.name)))
    });
    let span = match problem.key.as_str() {
        "kubernetes" => Some(raw.kubernetes.span()),
        "cgroup_version" => raw.cgroup_version.as_ref().map(Spanned::span),
        "memory_throttling_factor" => raw.memory_throttling_factor.as_ref().map(Spanned::span),
        "single_process_oom_kill" => raw.single_process_oom_kill.as_ref().map(Spanned::span),
        "memory_reservation_policy" => raw.memory_reservation_policy.as_ref().map(Spanned::span),
        "max_container_restart_period" => {
            raw.max_container_restart_period.as_ref().map(Spanned::span)
        }
        _ => gate.or_else(|| pod.map(|pod| pod.span.clone())),
    };
    let (key, message) = match pod {
        Some(pod) => (pod.key.clone(), problem.message),
        None => (
            format!("node.{}", problem.key),
            format!("`node.{}`: {}", problem.key, problem.message),
        ),
    };
    let gates = rsslab_kubelet::settings::FEATURE_GATES;
    let help = match problem.key.strip_prefix("feature_gates.") {
        Some(gate) if !gates.contains(&gate) => suggest(gate, gates),
        _ => problem.help,
    };
    Diagnostic::at(span.unwrap_or_else(|| node_span.clone()), key, message).help(help)
}

/// The pods' requests must fit the node: the scheduler places no pod that does not.
fn check_fit(
    node: &NodeSpec,
    vm: &VmConfig,
    node_span: &Range<usize>,
    diags: &mut Vec<Diagnostic>,
) {
    let requests: u64 = node
        .pods
        .iter()
        .map(|pod| pod_memory(pod, node.kubernetes).request)
        .sum();
    let room = vm
        .memory
        .0
        .saturating_sub(node.system_reserved.0)
        .saturating_sub(node.kube_reserved.0);
    if requests > room {
        diags.push(
            Diagnostic::at(node_span.clone(), "node", format!(
                "the pods request {} of memory, more than this node can allocate (below {} = vm.memory {} less the reservations)",
                Bytes(requests), Bytes(room), vm.memory
            ))
            .label("the scheduler would not place them all on this node")
            .help("lower the requests, or raise vm.memory"),
        );
    }
}

/// One `[[pod]]`: its pods (several from a manifest), into `pods`.
fn read_pod(
    entry: &PodEntry,
    base_dir: &Path,
    pods: &mut Vec<ReadPod>,
    checked: &mut CheckedPods,
    diags: &mut Vec<Diagnostic>,
) {
    let key = format!("pod[{}]", entry.index);
    let raw = &entry.raw;
    let Some(manifest) = &raw.manifest else {
        if let Some(object) = &raw.object {
            diags.push(
                Diagnostic::at(
                    object.span(),
                    format!("{key}.object"),
                    "`object` without `manifest`",
                )
                .help("add manifest = \"<file>.yaml\", or remove object"),
            );
        }
        if let Some(pod) = written_pod(entry, diags) {
            pods.push(ReadPod {
                spec: pod,
                span: entry.span.clone(),
                key,
            });
        }
        return;
    };
    let written = [
        ("name", raw.name.as_ref().map(Spanned::span)),
        ("container", raw.container.as_ref().map(Spanned::span)),
        (
            "init_container",
            raw.init_container.as_ref().map(Spanned::span),
        ),
        (
            "priority_class_name",
            raw.priority_class_name.as_ref().map(Spanned::span),
        ),
        (
            "restart_policy",
            raw.restart_policy.as_ref().map(Spanned::span),
        ),
    ];
    for (field, span) in written {
        if let Some(span) = span {
            diags.push(
                Diagnostic::at(
                    span,
                    format!("{key}.{field}"),
                    format!("`{field}` beside `manifest`"),
                )
                .label("the manifest says what the pod is")
                .help("change the manifest, or write the pod out without `manifest`"),
            );
        }
    }
    let path = base_dir.join(manifest.get_ref());
    let source = match std::fs::read_to_string(&path) {
        Ok(source) => source,
        Err(error) => {
            diags.push(
                Diagnostic::at(
                    manifest.span(),
                    format!("{key}.manifest"),
                    format!("cannot read the manifest {}: {error}", path.display()),
                )
                .help("give the path of a Kubernetes YAML file, relative to the scenario file"),
            );
            return;
        }
    };
    let read = match read_manifest(&path, &source) {
        Ok(read) => read,
        Err(errors) => {
            diags.extend(errors);
            return;
        }
    };
    checked.warnings.extend(read.warnings);
    let objects: Vec<&str> = read.pods.iter().map(|pod| pod.object.as_str()).collect();
    if let Some(object) = &raw.object
        && !objects
            .iter()
            .any(|name| name.eq_ignore_ascii_case(object.get_ref()))
    {
        diags.push(
            Diagnostic::at(
                object.span(),
                format!("{key}.object"),
                format!(
                    "{} has no workload object `{}`",
                    manifest.get_ref(),
                    object.get_ref()
                ),
            )
            .help(suggest(object.get_ref(), &objects)),
        );
        return;
    }
    for found in read.pods {
        if raw
            .object
            .as_ref()
            .is_some_and(|object| !found.object.eq_ignore_ascii_case(object.get_ref()))
        {
            continue;
        }
        for (container, program) in found.programs {
            checked
                .programs
                .insert(container_key(&found.pod.name, &container), program);
        }
        pods.push(ReadPod {
            spec: found.pod,
            span: manifest.span(),
            key: key.clone(),
        });
    }
}

/// A pod written out in the scenario.
fn written_pod(entry: &PodEntry, diags: &mut Vec<Diagnostic>) -> Option<PodSpec> {
    let key = format!("pod[{}]", entry.index);
    let raw = &entry.raw;
    let before = diags.len();
    let Some(name) = &raw.name else {
        diags.push(
            Diagnostic::at(entry.span.clone(), format!("{key}.name"), format!("missing key `name` in `{key}`"))
                .help("name the pod (a DNS label: name = \"web\"), or take it from a manifest: manifest = \"web.yaml\""),
        );
        return None;
    };
    check_dns_label(name, &format!("{key}.name"), diags);
    let restart_policy = match raw
        .restart_policy
        .as_ref()
        .map(|p| (p.get_ref().as_str(), p.span()))
    {
        None | Some(("Always", _)) => RestartPolicy::Always,
        Some(("OnFailure", _)) => RestartPolicy::OnFailure,
        Some(("Never", _)) => RestartPolicy::Never,
        Some((other, span)) => {
            diags.push(
                Diagnostic::at(
                    span,
                    format!("{key}.restart_policy"),
                    format!("unknown `restart_policy` `{other}`"),
                )
                .help(suggest(other, &["Always", "OnFailure", "Never"])),
            );
            RestartPolicy::Always
        }
    };
    let uid = derived_pod_uid(None, "Pod", name.get_ref());
    let mut names: Vec<String> = Vec::new();
    let mut read = |list: &Option<Spanned<Vec<Spanned<RawContainer>>>>, table: &str, init: bool| {
        list.iter()
            .flat_map(|list| list.get_ref().iter().enumerate())
            .filter_map(|(index, container)| {
                let key = format!("{key}.{table}[{index}]");
                let spec = written_container(container, &key, &uid, init, diags)?;
                if names.contains(&spec.name) {
                    diags.push(
                        Diagnostic::at(
                            container.get_ref().name.span(),
                            format!("{key}.name"),
                            format!(
                                "container name `{}` is in pod `{}` twice",
                                spec.name,
                                name.get_ref()
                            ),
                        )
                        .help("give each container of a pod its own name (init containers too)"),
                    );
                }
                names.push(spec.name.clone());
                Some(spec)
            })
            .collect::<Vec<_>>()
    };
    let init_containers = read(&raw.init_container, "init_container", true);
    let containers = read(&raw.container, "container", false);
    if raw
        .container
        .as_ref()
        .is_none_or(|list| list.get_ref().is_empty())
    {
        diags.push(
            Diagnostic::at(
                entry.span.clone(),
                format!("{key}.container"),
                format!("pod `{}` has no container", name.get_ref()),
            )
            .help("add\n[[pod.container]]\nname = \"app\"\nlimits = { memory = \"128MiB\" }"),
        );
    }
    let priority_class_name = raw
        .priority_class_name
        .as_ref()
        .map(|c| c.get_ref().clone());
    (diags.len() == before).then(|| PodSpec {
        name: name.get_ref().clone(),
        priority: priority(None, priority_class_name.as_deref()),
        priority_class_name,
        uid,
        restart_policy,
        overhead: None,
        init_containers,
        containers,
    })
}

/// One `[[pod.container]]` or `[[pod.init_container]]`.
fn written_container(
    raw: &Spanned<RawContainer>,
    key: &str,
    pod_uid: &str,
    init: bool,
    diags: &mut Vec<Diagnostic>,
) -> Option<ContainerSpec> {
    let raw = raw.get_ref();
    let before = diags.len();
    check_dns_label(&raw.name, &format!("{key}.name"), diags);
    let sidecar = match raw
        .restart_policy
        .as_ref()
        .map(|p| (p.get_ref().as_str(), p.span()))
    {
        None => false,
        Some(("Always", _)) if init => true,
        Some((other, span)) => {
            let (message, help) = if init {
                (
                    format!(
                        "an init container's restart_policy is `Always` (a sidecar) or not written, not `{other}`"
                    ),
                    "write restart_policy = \"Always\" for a sidecar, or remove it",
                )
            } else {
                (
                    "restart_policy is for init containers (a sidecar)".to_owned(),
                    "remove it: a pod's containers restart by the pod's restart_policy",
                )
            };
            diags.push(Diagnostic::at(span, format!("{key}.restart_policy"), message).help(help));
            false
        }
    };
    let requests = resources(raw.requests.as_ref(), &format!("{key}.requests"), diags);
    let limits = resources(raw.limits.as_ref(), &format!("{key}.limits"), diags);
    let requests = Resources {
        // A limit without a request requests the limit (SetDefaults_Pod).
        memory: requests.memory.or(limits.memory),
        cpu_millis: requests.cpu_millis.or(limits.cpu_millis),
    };
    for (what, request, limit) in [
        (
            "memory",
            requests.memory.map(|b| b.0),
            limits.memory.map(|b| b.0),
        ),
        ("cpu", requests.cpu_millis, limits.cpu_millis),
    ] {
        if let (Some(request), Some(limit)) = (request, limit)
            && request > limit
        {
            let span = raw.requests.as_ref().map_or(raw.name.span(), Spanned::span);
            diags.push(
                Diagnostic::at(
                    span,
                    format!("{key}.requests.{what}"),
                    format!("the {what} request is above the {what} limit"),
                )
                .label("Kubernetes refuses it: a request must be less than or equal to the limit")
                .help(format!("lower requests.{what}, or raise limits.{what}")),
            );
        }
    }
    (diags.len() == before).then(|| ContainerSpec {
        id: container_id(pod_uid, raw.name.get_ref()),
        name: raw.name.get_ref().clone(),
        requests,
        limits,
        sidecar,
    })
}

/// `requests` or `limits` as bytes and millicores.
fn resources(
    raw: Option<&Spanned<RawResources>>,
    key: &str,
    diags: &mut Vec<Diagnostic>,
) -> Resources {
    let Some(raw) = raw.map(Spanned::get_ref) else {
        return Resources::default();
    };
    let cpu_millis = raw.cpu.as_ref().and_then(|cpu| {
        let parsed = match cpu.get_ref() {
            CpuAmount::Cores(cores) if *cores >= 0.0 => Quantity::parse(&cores.to_string()),
            CpuAmount::Cores(cores) => Err(format!("{cores} is negative")),
            CpuAmount::Quantity(text) => Quantity::parse(text),
        };
        match parsed.map(|quantity| quantity.milli_value()) {
            Ok(Some(millis)) => Some(millis),
            problem => {
                let label = problem
                    .err()
                    .unwrap_or_else(|| "negative, or too large".into());
                diags.push(
                    Diagnostic::at(
                        cpu.span(),
                        format!("{key}.cpu"),
                        format!("invalid `{key}.cpu`"),
                    )
                    .label(label)
                    .help("write cores as Kubernetes does: cpu = \"250m\", cpu = 1 or cpu = 0.5"),
                );
                None
            }
        }
    });
    Resources {
        memory: raw.memory.as_ref().map(|memory| *memory.get_ref()),
        cpu_millis,
    }
}

/// Pod names are unique in the scenario.
fn check_pod_names(pods: &[ReadPod], diags: &mut Vec<Diagnostic>) {
    for (index, pod) in pods.iter().enumerate() {
        if pods[..index]
            .iter()
            .any(|other| other.spec.name == pod.spec.name)
        {
            diags.push(
                Diagnostic::at(
                    pod.span.clone(),
                    pod.key.clone(),
                    format!("pod `{}` is in the scenario twice", pod.spec.name),
                )
                .help("give each pod its own name (a manifest's pod is named after its object)"),
            );
        }
    }
}

/// Every process's `container` names a container, and every container runs a process.
fn bind_processes(raw: &RawSetup, pods: &[ReadPod], diags: &mut Vec<Diagnostic>) {
    let keys: Vec<String> = pods
        .iter()
        .flat_map(|pod| {
            pod.spec
                .all_containers()
                .map(|c| container_key(&pod.spec.name, &c.name))
        })
        .collect();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    for entry in &raw.processes {
        let Some(container) = &entry.raw.container else {
            continue;
        };
        let key = format!("process[{}].container", entry.index);
        if !key_refs.contains(&container.get_ref().as_str()) {
            diags.push(
                Diagnostic::at(
                    container.span(),
                    &key,
                    format!("no container `{}`", container.get_ref()),
                )
                .label("containers are named <pod>/<container>")
                .help(suggest(container.get_ref(), &key_refs)),
            );
        }
        if let Some(flag) = &entry.raw.cgroup {
            diags.push(
                Diagnostic::at(
                    flag.span(),
                    format!("process[{}].cgroup", entry.index),
                    "`cgroup` on a process of a container",
                )
                .label("it runs in its container's cgroup")
                .help("remove `cgroup`"),
            );
        }
    }
    for pod in pods {
        for container in pod.spec.all_containers() {
            let key = container_key(&pod.spec.name, &container.name);
            let runs = raw.processes.iter().any(|entry| {
                entry
                    .raw
                    .container
                    .as_ref()
                    .is_some_and(|c| *c.get_ref() == key)
            });
            if !runs {
                diags.push(
                    Diagnostic::at(pod.span.clone(), pod.key.clone(), format!("pod `{}`: container `{}` runs no process", pod.spec.name, container.name))
                        .help(format!("add\n[[process]]\nname = \"{}\"\ncontainer = \"{key}\"\nworkload = \"hog\"\nargs = {{ size = \"64MiB\" }}", container.name)),
                );
            }
        }
    }
}

/// A manifest's env, command and args into the processes of its containers.
pub fn apply_programs(
    checked: &CheckedPods,
    processes: &mut [ProcessSpec],
    entries: &[super::raw::ProcessEntry],
    warnings: &mut Vec<Diagnostic>,
) {
    let mut mains_seen: Vec<String> = Vec::new();
    for process in processes.iter_mut() {
        let Some(key) = process.container.clone() else {
            continue;
        };
        let Some(program) = checked.programs.get(&key) else {
            continue;
        };
        let mut env: BTreeMap<String, String> = program.env.iter().cloned().collect();
        env.extend(std::mem::take(&mut process.env));
        process.env = env;
        if mains_seen.contains(&key) {
            continue;
        }
        mains_seen.push(key.clone());
        if program.command.is_none() && program.args.is_none() {
            continue;
        }
        let expand = |words: &[String]| -> Vec<String> {
            words
                .iter()
                .map(|word| expand(word, &process.env))
                .collect()
        };
        let mut argv = program
            .command
            .as_deref()
            .map(|c| expand(c.get(1..).unwrap_or(&[])))
            .unwrap_or_default();
        argv.extend(program.args.as_deref().map(expand).unwrap_or_default());
        match &mut process.workload {
            Workload::Exec(args) => {
                args.command.truncate(1);
                args.command.extend(argv);
            }
            Workload::GoSource(args) => args.args = argv,
            other => warnings.push(
                Diagnostic::at(
                    entries
                        .iter()
                        .find(|entry| *entry.raw.name.get_ref() == process.name)
                        .map_or(0..0, |entry| entry.span.clone()),
                    format!("process.{}", process.name),
                    format!(
                        "the manifest's command and args of container `{key}` are not used: process `{}` runs the built-in workload {}",
                        process.name,
                        other.name()
                    ),
                )
                .warning()
                .help("run the program with workload = \"exec\" or \"go-source\" to give it the manifest's arguments"),
            ),
        }
    }
}

/// `$(VAR)` references replaced by the container's variables, `$$` as `$`, unknown references
/// kept as written (`third_party/forked/golang/expansion/expand.go`, `Expand`).
fn expand(text: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match env.get(name) {
                Some(value) => out.push_str(value),
                None => out.push_str(&format!("$({name})")),
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn check_dns_label(name: &Spanned<String>, key: &str, diags: &mut Vec<Diagnostic>) {
    if !is_dns_label(name.get_ref()) {
        diags.push(
            Diagnostic::at(
                name.span(),
                key,
                format!("the name `{}` is not a DNS label", name.get_ref()),
            )
            .label("Kubernetes names are lowercase letters, digits and `-`, at most 63")
            .help("write e.g. name = \"web-api\""),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_expands_variables_in_command_and_args() {
        let env: BTreeMap<String, String> = [("PORT".to_owned(), "8080".to_owned())].into();
        assert_eq!(expand("--port=$(PORT)", &env), "--port=8080");
        assert_eq!(
            expand("$(MISSING) and $$(PORT)", &env),
            "$(MISSING) and $(PORT)"
        );
        assert_eq!(expand("cost: $5", &env), "cost: $5");
        assert_eq!(expand("$(PORT", &env), "$(PORT");
    }

    #[test]
    fn a_written_out_pod_gets_the_uid_a_manifest_pod_of_that_name_would() {
        let uid = derived_pod_uid(None, "Pod", "web");
        assert_eq!(uid, derived_pod_uid(Some("default"), "Pod", "web"));
        assert_ne!(uid, derived_pod_uid(None, "Pod", "batch"));
    }
}
