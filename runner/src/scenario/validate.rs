//! The rules a scenario must follow, checked on raw values with their spans.
//!
//! [`validate`] turns one variant's [`RawSetup`] into a [`Setup`], the values every later stage
//! takes, or reports every broken rule; [`validate_header`] checks `[scenario]`. Each rule is a
//! small function whose message names the key, says what is wrong and how to fix it.
//!
//! Decisions worth knowing:
//! - a cgroup limit (`memory_max`, `memory_high`) above `vm.memory` is an error: inside the
//!   guest it can never be reached, so the scenario would not test what it says;
//! - `memory_high` must stay below `memory_max` (at or above it, it never throttles), and
//!   cgroup v1 has no `memory.high` at all;
//! - a process may only wait for a phase its `after` process's workload reports, and may not
//!   wait (`start.delay`) past the end of the run;
//! - the guest has no swap device, so a `swap_max` above 0 limits nothing; on cgroup v1 it is
//!   written as memory+swap and needs `memory_max`;
//! - `[cgroup]` needs a process that runs in it, and a process's `cgroup` flag needs `[cgroup]`;
//! - what a process takes (heap, hog, balloon step, file-io anon, vsz-startup touch) fits in
//!   `vm.memory`; a share of `mem_total` or `mem_available` is at most 100%;
//! - sizes and durations have sane bounds (the constants below): nobody means a 1EiB disk, a
//!   run of a week, or a 1KiB cgroup limit.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_spanned::Spanned;

use rsslab_wire::amount::{Amount, Base};
use rsslab_wire::message::CONTAINER_EVENTS;
use rsslab_wire::pod::NodeSpec;
use rsslab_wire::spec::{CgroupSpec, ProcessSpec, Start, Supervisor, Until};
use rsslab_wire::units::{Bytes, Millis};
use rsslab_wire::workload::{
    BalloonArgs, FileIoArgs, HeapChurnArgs, HogArgs, Mapping, VszStartupArgs, Workload,
};

use super::VmConfig;
use super::diag::{Diagnostic, did_you_mean, suggest};
use super::raw::{Knob, ProcessEntry, RawCgroup, RawHeader, RawSetup, RawVm, key_segment};

/// Default `vm.memory`.
pub const DEFAULT_MEMORY: Bytes = Bytes(1 << 30);
/// Default `vm.cpus`.
pub const DEFAULT_CPUS: u32 = 1;
/// Default `sample.every`.
pub const DEFAULT_EVERY: Millis = Millis(250);
/// `vm.timeout` defaults to `sample.duration` plus this (boot, start-up, power-off).
pub const TIMEOUT_MARGIN: Millis = Millis::secs(120);
/// The least guest memory Debian's kernels boot in with the agent.
pub const MIN_MEMORY: Bytes = Bytes::mib(128);
/// The most guest memory a scenario may ask for.
pub const MAX_MEMORY: Bytes = Bytes(64 << 30);
/// The most vCPUs.
pub const MAX_CPUS: i64 = 64;
/// The least scratch disk mkfs.ext4 makes a useful file system on.
pub const MIN_DISK: Bytes = Bytes::mib(16);
/// The shortest sampling interval.
pub const MIN_EVERY: Millis = Millis(10);
/// The smallest heap-churn chunk: one page.
pub const MIN_CHUNK: Bytes = Bytes(4096);
/// The largest scratch disk (a sparse file on the host, formatted with mkfs.ext4).
pub const MAX_DISK: Bytes = Bytes(1 << 40);
/// The longest `sample.duration`: a nightly lab runs every scenario on every kernel.
pub const MAX_DURATION: Millis = Millis::secs(6 * 3600);
/// The longest `vm.timeout`.
pub const MAX_TIMEOUT: Millis = Millis::secs(8 * 3600);
/// The smallest cgroup limit a process can start under.
pub const MIN_CGROUP_LIMIT: Bytes = Bytes::mib(4);
/// The most processes in a scenario.
pub const MAX_PROCESSES: usize = 64;

/// What a variant's runs depend on, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Setup {
    pub vm: VmConfig,
    pub sysctl: BTreeMap<String, String>,
    pub sysfs: BTreeMap<String, String>,
    pub cgroup: Option<CgroupSpec>,
    /// `[node]` and `[[pod]]`: the pods and their kubelet.
    pub node: Option<NodeSpec>,
    pub sample_every: Millis,
    pub duration: Millis,
    /// `[sample] until` and `after`: when the run ends before `duration`.
    pub until: Option<Until>,
    pub processes: Vec<ProcessSpec>,
    /// The kernels to run on, in catalogue order.
    pub kernels: Vec<String>,
    /// What the scenario (or a manifest it reads) says that the lab does not use.
    pub warnings: Vec<Diagnostic>,
}

/// Checks `[scenario]`: the id's characters and a non-empty title.
pub fn validate_header(header: &RawHeader, diags: &mut Vec<Diagnostic>) {
    let id = header.id.get_ref();
    let id_ok = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !id_ok {
        diags.push(
            Diagnostic::at(
                header.id.span(),
                "scenario.id",
                format!("invalid `scenario.id`: `{id}`"),
            )
            .label("use lowercase letters, digits and `-`")
            .help(format!(
                "the id names directories and reports: write e.g. id = \"{}\"",
                slug(id)
            )),
        );
    }
    if header.title.get_ref().trim().is_empty() {
        diags.push(
            Diagnostic::at(
                header.title.span(),
                "scenario.title",
                "`scenario.title` is empty",
            )
            .help("write one line that says what the scenario shows"),
        );
    }
}

/// `Go_Heap churn` -> `go-heap-churn`.
fn slug(text: &str) -> String {
    let slug: String = text
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let slug = slug.trim_matches('-').to_string();
    if slug.is_empty() {
        "my-scenario".to_string()
    } else {
        slug
    }
}

/// Checks one variant; `None` if any rule is broken (all reported). Host paths of user
/// programs are relative to `base_dir`, the scenario file's directory.
pub fn validate(
    raw: RawSetup,
    known_kernels: &[String],
    base_dir: &Path,
    diags: &mut Vec<Diagnostic>,
) -> Option<Setup> {
    let before = diags.len();
    let kernels = check_kernels(&raw.vm, known_kernels, diags);
    let (sample_every, duration) = check_sample(&raw, diags);
    let vm = check_vm(&raw.vm, duration, diags);
    let cgroup = raw
        .cgroup
        .as_ref()
        .map(|cgroup| check_cgroup(cgroup, vm.memory, diags));
    let sysctl = check_sysctl(&raw.sysctl, diags);
    let sysfs = check_sysfs(&raw.sysfs, diags);
    check_process_count(&raw, diags);
    check_process_names(&raw.processes, diags);
    check_triggers(&raw.processes, duration, diags);
    check_cgroup_members(&raw, diags);
    let pods = super::pods::check_pods(&raw, &vm, base_dir, diags);
    let mut processes = raw
        .processes
        .iter()
        .filter_map(|entry| check_process(entry, &vm, base_dir, diags))
        .collect::<Vec<_>>();
    let mut warnings = pods.warnings.clone();
    super::pods::apply_programs(&pods, &mut processes, &raw.processes, &mut warnings);
    let until = check_until(&raw, &processes, duration, diags);
    (diags.len() == before).then_some(Setup {
        vm,
        sysctl,
        sysfs,
        cgroup,
        node: pods.node,
        warnings,
        sample_every,
        duration,
        until,
        processes,
        kernels,
    })
}

/// `vm.kernels`: known, distinct, not empty; omitted means every known kernel.
fn check_kernels(vm: &RawVm, known: &[String], diags: &mut Vec<Diagnostic>) -> Vec<String> {
    let Some(listed) = &vm.kernels else {
        return known.to_vec();
    };
    if listed.get_ref().is_empty() {
        diags.push(
            Diagnostic::at(listed.span(), "vm.kernels", "`vm.kernels` is empty")
                .help("list catalogue ids or Debian versions (debian:6.18), or omit vm.kernels to run on every catalogue kernel"),
        );
    }
    let names: Vec<&str> = known.iter().map(String::as_str).collect();
    let mut seen = BTreeSet::new();
    for (index, kernel) in listed.get_ref().iter().enumerate() {
        let id = kernel.get_ref();
        let key = format!("vm.kernels[{index}]");
        let debian = id.starts_with(crate::catalogue::reference::DEBIAN_PREFIX);
        if debian && let Err(error) = crate::catalogue::reference::KernelSpec::parse_text(id) {
            diags.push(
                Diagnostic::at(kernel.span(), &key, format!("bad Debian kernel `{id}` in `vm.kernels`"))
                    .label(format!("{error:#}"))
                    .help("write debian:<upstream version> (debian:6.12.57), debian:<major.minor> (debian:7.2) or debian:<package version> (debian:6.1.176-1), optionally with :generic, :cloud or :rt"),
            );
        } else if !debian && !names.contains(&id.as_str()) {
            diags.push(
                Diagnostic::at(
                    kernel.span(),
                    &key,
                    format!("unknown kernel `{id}` in `vm.kernels`"),
                )
                .label("not in the kernel catalogue (vm-images/kernels.toml)")
                .help(suggest(id, &names)),
            );
        } else if !seen.insert(id.as_str()) {
            diags.push(
                Diagnostic::at(
                    kernel.span(),
                    &key,
                    format!("kernel `{id}` is listed twice in `vm.kernels`"),
                )
                .help("remove the repeat"),
            );
        }
    }
    // Catalogue kernels in catalogue order, then Debian versions as listed (resolved by the lab).
    let debian = listed
        .get_ref()
        .iter()
        .map(|kernel| kernel.get_ref())
        .filter(|id| id.starts_with(crate::catalogue::reference::DEBIAN_PREFIX));
    known
        .iter()
        .filter(|kernel| seen.contains(kernel.as_str()))
        .chain(debian)
        .cloned()
        .collect()
}

/// `[sample]`: `every` at least 10ms and shorter than `duration`.
fn check_sample(raw: &RawSetup, diags: &mut Vec<Diagnostic>) -> (Millis, Millis) {
    let duration = *raw.sample.duration.get_ref();
    let every = raw
        .sample
        .every
        .as_ref()
        .map_or(DEFAULT_EVERY, |every| *every.get_ref());
    let every_span = raw.sample.every.as_ref().map(Spanned::span);
    if duration.0 == 0 || duration > MAX_DURATION {
        diags.push(
            Diagnostic::at(
                raw.sample.duration.span(),
                "sample.duration",
                format!("`sample.duration` is out of range: {}", human(duration)),
            )
            .label(format!(
                "must be more than 0s and at most {}",
                human(MAX_DURATION)
            ))
            .help("the run samples for this long, then ends: write e.g. duration = \"30s\""),
        );
        return (every, duration);
    }
    if every < MIN_EVERY {
        diags.push(
            Diagnostic::at(every_span.clone().unwrap_or(raw.sample_span.clone()), "sample.every", "`sample.every` is too short")
                .label(format!("{every} is below {MIN_EVERY}"))
                .help("sampling reads /proc and the cgroup files of every process: write every = \"250ms\""),
        );
    } else if every >= duration {
        let (span, key) = match every_span {
            Some(span) => (span, "sample.every"),
            None => (raw.sample.duration.span(), "sample.duration"),
        };
        diags.push(
            Diagnostic::at(span, key, format!("`sample.every` ({every}) is not shorter than `sample.duration` ({duration})"))
                .help(format!("a run takes samples every `every` for `duration`: write e.g. every = \"{DEFAULT_EVERY}\", or a longer duration")),
        );
    }
    (every, duration)
}

/// `[sample] until` and `after`: each label an event the run can have (`<process>:started`,
/// `<process>:<phase>` of its workload, `<process>:ended`, `oom-kill`), `after` only with
/// `until` and shorter than the duration.
fn check_until(
    raw: &RawSetup,
    processes: &[ProcessSpec],
    duration: Millis,
    diags: &mut Vec<Diagnostic>,
) -> Option<Until> {
    let after = raw.sample.after.as_ref();
    let Some(until) = &raw.sample.until else {
        if let Some(after) = after {
            diags.push(
                Diagnostic::at(after.span(), "sample.after", "`sample.after` without `sample.until`")
                    .help("`after` is how long sampling goes on after the `until` events: add e.g. until = \"balloon:full\""),
            );
        }
        return None;
    };
    let labels = until.get_ref().labels();
    if labels.is_empty() {
        diags.push(
            Diagnostic::at(until.span(), "sample.until", "`sample.until` is empty")
                .help("name the events that end the run, e.g. until = \"balloon:full\", or remove the key"),
        );
    }
    for label in &labels {
        if let Err(help) = check_event_label(label, processes) {
            diags.push(
                Diagnostic::at(
                    until.span(),
                    "sample.until",
                    format!(
                        "`sample.until` names `{label}`, which is not an event of this scenario"
                    ),
                )
                .help(help),
            );
        }
    }
    let after_ms = after.map_or(Millis(0), |after| *after.get_ref());
    if after_ms >= duration {
        let span = after.map_or(until.span(), Spanned::span);
        diags.push(
            Diagnostic::at(
                span,
                "sample.after",
                format!(
                    "`sample.after` ({after_ms}) is not shorter than `sample.duration` ({duration})"
                ),
            )
            .help(
                "`after` is the tail sampled after the `until` events: write e.g. after = \"3s\"",
            ),
        );
    }
    Some(Until {
        events: labels,
        after: after_ms,
    })
}

/// Whether `label` names an event the run can have; else the help saying what it can have.
fn check_event_label(label: &str, processes: &[ProcessSpec]) -> Result<(), String> {
    if label == "oom-kill" {
        return Ok(());
    }
    let names: Vec<&str> = processes.iter().map(|p| p.name.as_str()).collect();
    let Some((name, event)) = label.split_once(':') else {
        return Err(
            "write <process>:started, <process>:<phase>, <process>:ended, <pod>/<container>:<event> or oom-kill".into(),
        );
    };
    if name.contains('/') {
        if !processes
            .iter()
            .any(|p| p.container.as_deref() == Some(name))
        {
            return Err(format!(
                "the scenario has no container `{name}` (write <pod>/<container>)"
            ));
        }
        return if CONTAINER_EVENTS.contains(&event) {
            Ok(())
        } else {
            Err(format!(
                "a container has the events {}",
                CONTAINER_EVENTS.join(", ")
            ))
        };
    }
    let Some(process) = processes.iter().find(|p| p.name == name) else {
        return Err(format!(
            "the scenario has no process `{name}`; its processes are {}",
            names.join(", ")
        ));
    };
    let mut events = vec!["started"];
    events.extend(process.workload.phases());
    if !process.restart.is_never() {
        events.push(Supervisor::RESTARTED);
    }
    events.push("ended");
    if events.contains(&event) {
        Ok(())
    } else {
        Err(format!("`{name}` has the events {}", events.join(", ")))
    }
}

/// `[vm]`: memory, cpus, disk, timeout, with defaults.
fn check_vm(vm: &RawVm, duration: Millis, diags: &mut Vec<Diagnostic>) -> VmConfig {
    let memory = vm
        .memory
        .as_ref()
        .map_or(DEFAULT_MEMORY, |memory| *memory.get_ref());
    let out_of_range = !(MIN_MEMORY..=MAX_MEMORY).contains(&memory);
    if let Some(spanned) = vm.memory.as_ref().filter(|_| out_of_range) {
        diags.push(
            Diagnostic::at(
                spanned.span(),
                "vm.memory",
                format!("`vm.memory` is out of range: {memory}"),
            )
            .label(format!("must be between {MIN_MEMORY} and {MAX_MEMORY}"))
            .help("the guest needs 128MiB to boot with the agent; write e.g. memory = \"1GiB\""),
        );
    }
    let cpus = vm
        .cpus
        .as_ref()
        .map_or(i64::from(DEFAULT_CPUS), |cpus| *cpus.get_ref());
    if let Some(spanned) = vm.cpus.as_ref().filter(|_| !(1..=MAX_CPUS).contains(&cpus)) {
        diags.push(
            Diagnostic::at(
                spanned.span(),
                "vm.cpus",
                format!("`vm.cpus` is out of range: {cpus}"),
            )
            .label(format!("must be between 1 and {MAX_CPUS}"))
            .help("write e.g. cpus = 1"),
        );
    }
    let disk = vm.disk.as_ref().map(|disk| *disk.get_ref());
    if let Some(spanned) = vm.disk.as_ref().filter(|disk| *disk.get_ref() < MIN_DISK) {
        diags.push(
            Diagnostic::at(
                spanned.span(),
                "vm.disk",
                format!("`vm.disk` is too small: {}", spanned.get_ref()),
            )
            .label(format!("must be at least {MIN_DISK}"))
            .help("write e.g. disk = \"1GiB\", or omit it for no scratch disk"),
        );
    } else if let Some(spanned) = vm.disk.as_ref().filter(|disk| *disk.get_ref() > MAX_DISK) {
        diags.push(
            Diagnostic::at(
                spanned.span(),
                "vm.disk",
                format!("`vm.disk` is too large: {}", spanned.get_ref()),
            )
            .label(format!("must be at most {MAX_DISK}"))
            .help("the scratch disk holds a file-io workload's files: write e.g. disk = \"1GiB\""),
        );
    }
    let default_timeout = Millis(duration.0.saturating_add(TIMEOUT_MARGIN.0));
    let timeout = vm
        .timeout
        .as_ref()
        .map_or(default_timeout, |t| *t.get_ref());
    if let Some(spanned) = vm.timeout.as_ref().filter(|_| timeout <= duration) {
        diags.push(
            Diagnostic::at(spanned.span(), "vm.timeout", format!("`vm.timeout` ({timeout}) is not longer than `sample.duration` ({duration})"))
                .help(format!("the VM must also boot and power off: write e.g. timeout = \"{default_timeout}\", or omit it for duration + {TIMEOUT_MARGIN}")),
        );
    } else if let Some(spanned) = vm.timeout.as_ref().filter(|_| timeout > MAX_TIMEOUT) {
        diags.push(
            Diagnostic::at(spanned.span(), "vm.timeout", format!("`vm.timeout` is out of range: {}", human(timeout)))
                .label(format!("must be at most {}", human(MAX_TIMEOUT)))
                .help(format!("a VM that has not ended by then hangs: write e.g. timeout = \"{default_timeout}\", or omit it for duration + {TIMEOUT_MARGIN}")),
        );
    }
    VmConfig {
        memory,
        cpus: u32::try_from(cpus).unwrap_or(DEFAULT_CPUS),
        disk,
        timeout,
    }
}

/// `[cgroup]`: version 1 or 2, no memory_high on v1, limits the guest can reach.
fn check_cgroup(raw: &RawCgroup, memory: Bytes, diags: &mut Vec<Diagnostic>) -> CgroupSpec {
    let version = raw.version.as_ref().map_or(2, |version| *version.get_ref());
    if let Some(spanned) = raw.version.as_ref().filter(|_| !(1..=2).contains(&version)) {
        diags.push(
            Diagnostic::at(
                spanned.span(),
                "cgroup.version",
                format!("`cgroup.version`: cgroup version {version} does not exist"),
            )
            .label("expected 1 or 2")
            .help(
                "write version = 2 (unified hierarchy) or version = 1 (legacy memory controller)",
            ),
        );
    }
    // "max" is no soft limit: as if memory_high were not written.
    let memory_high: Option<Spanned<Bytes>> = raw.memory_high.as_ref().and_then(|high| {
        high.get_ref()
            .0
            .map(|bytes| Spanned::new(high.span(), bytes))
    });
    if let Some(high) = memory_high.as_ref().filter(|_| version == 1) {
        diags.push(
            Diagnostic::at(
                high.span(),
                "cgroup.memory_high",
                "`cgroup.memory_high` is set, but cgroup v1 has no memory.high",
            )
            .label("only cgroup v2 throttles at a soft limit")
            .help("remove memory_high, or use version = 2"),
        );
    }
    for (key, limit) in [
        ("memory_max", &raw.memory_max),
        ("memory_high", &memory_high),
    ] {
        if let Some(limit) = limit.as_ref().filter(|limit| *limit.get_ref() > memory) {
            diags.push(
                Diagnostic::at(
                    limit.span(),
                    format!("cgroup.{key}"),
                    format!(
                        "`cgroup.{key}` ({}) is above `vm.memory` ({memory})",
                        limit.get_ref()
                    ),
                )
                .label("the guest can never reach this limit")
                .help(format!("lower {key} below {memory}, or raise vm.memory")),
            );
        }
    }
    for (key, limit) in [
        ("memory_max", &raw.memory_max),
        ("memory_high", &memory_high),
    ] {
        if let Some(limit) = limit
            .as_ref()
            .filter(|limit| *limit.get_ref() < MIN_CGROUP_LIMIT)
        {
            diags.push(
                Diagnostic::at(
                    limit.span(),
                    format!("cgroup.{key}"),
                    format!("`cgroup.{key}` ({}) is too small", limit.get_ref()),
                )
                .label(format!(
                    "no process starts under less than {MIN_CGROUP_LIMIT}"
                ))
                .help(format!(
                    "write the limit the service has in production, e.g. {key} = \"256MiB\""
                )),
            );
        }
    }
    check_swap_max(raw, version, diags);
    let limits = memory_high.as_ref().zip(raw.memory_max.as_ref());
    if let Some((high, max)) = limits.filter(|(high, max)| high.get_ref() >= max.get_ref()) {
        diags.push(
            Diagnostic::at(
                high.span(),
                "cgroup.memory_high",
                format!(
                    "`cgroup.memory_high` ({}) is not below `cgroup.memory_max` ({})",
                    high.get_ref(),
                    max.get_ref()
                ),
            )
            .label("it would never throttle")
            .help("set memory_high below memory_max, or remove it"),
        );
    }
    CgroupSpec {
        version: u8::try_from(version).unwrap_or(2),
        memory_max: raw.memory_max.as_ref().map(|v| *v.get_ref()),
        memory_high: memory_high.as_ref().map(|v| *v.get_ref()),
        swap_max: raw.swap_max.as_ref().map(|v| *v.get_ref()),
    }
}

/// `swap_max`: the guest has no swap, so only 0 means something (no swap for the cgroup);
/// cgroup v1 writes it as memory+swap, which needs `memory_max`.
fn check_swap_max(raw: &RawCgroup, version: i64, diags: &mut Vec<Diagnostic>) {
    let Some(swap) = &raw.swap_max else {
        return;
    };
    if swap.get_ref().0 > 0 {
        diags.push(
            Diagnostic::at(
                swap.span(),
                "cgroup.swap_max",
                format!(
                    "`cgroup.swap_max` ({}) limits nothing: the guest has no swap",
                    swap.get_ref()
                ),
            )
            .label("rsslab's VMs boot without a swap device")
            .help("remove swap_max, or write swap_max = 0 to say the cgroup may not swap"),
        );
    } else if version == 1 && raw.memory_max.is_none() {
        diags.push(
            Diagnostic::at(
                swap.span(),
                "cgroup.swap_max",
                "`cgroup.swap_max` on cgroup v1 needs `cgroup.memory_max`",
            )
            .label("v1 limits memory+swap together (memory.memsw.limit_in_bytes)")
            .help("add memory_max = \"...\" to [cgroup], or remove swap_max"),
        );
    }
}

/// `[cgroup]` holds at least one process, and `cgroup = true` on a process needs `[cgroup]`
/// (`cgroup = false` without one says what is true anyway, e.g. on a balloon copied from a
/// scenario that has one).
fn check_cgroup_members(raw: &RawSetup, diags: &mut Vec<Diagnostic>) {
    match &raw.cgroup {
        None => {
            for entry in &raw.processes {
                if let Some(flag) = entry.raw.cgroup.as_ref().filter(|flag| *flag.get_ref()) {
                    let key = format!("process[{}].cgroup", entry.index);
                    diags.push(
                        Diagnostic::at(
                            flag.span(),
                            &key,
                            format!("`{key}` is true, but the scenario has no [cgroup]"),
                        )
                        .label("there is no cgroup to run in")
                        .help("add a [cgroup] table (e.g. with memory_max), or remove this key"),
                    );
                }
            }
        }
        Some(_)
            if raw.processes.iter().all(|entry| {
                entry
                    .raw
                    .cgroup
                    .as_ref()
                    .is_some_and(|flag| !flag.get_ref())
            }) =>
        {
            if let Some(first) = raw.processes.first() {
                diags.push(
                    Diagnostic::at(
                        raw.cgroup_span.clone(),
                        "cgroup",
                        "[cgroup] is set, but every process has `cgroup = false`",
                    )
                    .label("its limits would apply to nothing")
                    .help(format!(
                        "let the service run in it (remove `cgroup = false` from process[{}]), or remove [cgroup]",
                        first.index
                    )),
                );
            }
        }
        Some(_) => {}
    }
}

/// At most [`MAX_PROCESSES`].
fn check_process_count(raw: &RawSetup, diags: &mut Vec<Diagnostic>) {
    if let Some(entry) = raw.processes.get(MAX_PROCESSES) {
        diags.push(
            Diagnostic::at(
                entry.span.clone(),
                format!("process[{}]", entry.index),
                format!(
                    "{} processes: a scenario runs at most {MAX_PROCESSES}",
                    raw.processes.len()
                ),
            )
            .help("one scenario is one small system: split it into several scenarios"),
        );
    }
}

/// `[sysctl]`: dotted names of `[a-z0-9_]` parts, as `sysctl -a` prints them.
fn check_sysctl(knobs: &[Knob], diags: &mut Vec<Diagnostic>) -> BTreeMap<String, String> {
    for knob in knobs {
        let name = &knob.name;
        let parts_ok = name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        });
        if !parts_ok || !name.contains('.') {
            let fixed = name
                .replace('/', ".")
                .trim_start_matches(".proc.sys.")
                .to_lowercase();
            diags.push(
                Diagnostic::at(
                    knob.key_span.clone(),
                    format!("sysctl.{}", key_segment(name)),
                    format!("invalid sysctl name `{name}` in [sysctl]"),
                )
                .label("expected a dotted name of lowercase letters, digits and `_`")
                .help(format!(
                    "write it as `sysctl -a` prints it, e.g. \"vm.overcommit_memory\"{}",
                    hint_fixed(name, &fixed)
                )),
            );
        }
    }
    knobs
        .iter()
        .map(|knob| (knob.name.clone(), knob.value.clone()))
        .collect()
}

fn hint_fixed(name: &str, fixed: &str) -> String {
    if fixed != name && fixed.contains('.') {
        format!(" (here: \"{fixed}\")")
    } else {
        String::new()
    }
}

/// `[sysfs]`: absolute paths under /sys without `..`.
fn check_sysfs(knobs: &[Knob], diags: &mut Vec<Diagnostic>) -> BTreeMap<String, String> {
    for knob in knobs {
        let path = &knob.name;
        let problem = if !path.starts_with("/sys/") || path.len() <= "/sys/".len() {
            Some("expected an absolute path under /sys/")
        } else if path.split('/').any(|part| part == "..") {
            Some("`..` may not leave /sys")
        } else {
            None
        };
        if let Some(problem) = problem {
            diags.push(
                Diagnostic::at(knob.key_span.clone(), format!("sysfs.{}", key_segment(path)), format!("invalid sysfs path `{path}` in [sysfs]"))
                    .label(problem)
                    .help("write the file's absolute path, e.g. \"/sys/kernel/mm/transparent_hugepage/enabled\" = \"always\""),
            );
        }
    }
    knobs
        .iter()
        .map(|knob| (knob.name.clone(), knob.value.clone()))
        .collect()
}

/// Process names: `[a-z0-9_-]`, each used once.
fn check_process_names(processes: &[ProcessEntry], diags: &mut Vec<Diagnostic>) {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for entry in processes {
        let name = entry.raw.name.get_ref();
        let key = format!("process[{}].name", entry.index);
        if !rsslab_wire::spec::is_plain_name(name) {
            diags.push(
                Diagnostic::at(entry.raw.name.span(), &key, format!("invalid `{key}`: `{name}`"))
                    .label("use lowercase letters, digits, `_` and `-`")
                    .help("the name appears in samples, events and file names: write e.g. name = \"service\""),
            );
        }
        if let Some(first) = seen.insert(name, entry.index) {
            diags.push(
                Diagnostic::at(
                    entry.raw.name.span(),
                    &key,
                    format!("`{key}`: process name `{name}` is used twice"),
                )
                .label(format!("process[{first}] has this name already"))
                .help("give each [[process]] its own name"),
            );
        }
    }
}

/// `start`: `after` names another process, `phase` needs `after` and is one its workload
/// reports, the delay ends within the run, and no chain of `after` comes back on itself.
fn check_triggers(processes: &[ProcessEntry], duration: Millis, diags: &mut Vec<Diagnostic>) {
    let names: Vec<&str> = processes
        .iter()
        .map(|entry| entry.raw.name.get_ref().as_str())
        .collect();
    for entry in processes {
        let Some(start) = &entry.raw.start else {
            continue;
        };
        let start = start.get_ref();
        let key = format!("process[{}].start", entry.index);
        let me = entry.raw.name.get_ref();
        if let Some(delay) = start.delay.as_ref().filter(|d| *d.get_ref() >= duration) {
            diags.push(
                Diagnostic::at(
                    delay.span(),
                    format!("{key}.delay"),
                    format!(
                        "`{key}.delay` ({}) is not shorter than `sample.duration` ({duration})",
                        delay.get_ref()
                    ),
                )
                .label("the run ends before the process starts")
                .help("shorten the delay, or make sample.duration longer"),
            );
        }
        match (&start.after, &start.phase) {
            (None, Some(phase)) => diags.push(
                Diagnostic::at(phase.span(), format!("{key}.phase"), format!("`{key}.phase` without `{key}.after`"))
                    .label("whose phase?")
                    .help(format!("name the process that reports it: start = {{ after = \"{}\", phase = \"{}\" }}", names.iter().find(|n| *n != me).unwrap_or(&"service"), phase.get_ref())),
            ),
            (Some(after), _) if after.get_ref() == me => diags.push(
                Diagnostic::at(after.span(), format!("{key}.after"), format!("`{key}.after`: process `{me}` waits for itself"))
                    .help("name another process, or remove `after`"),
            ),
            (Some(after), phase) if after.get_ref().contains('/') => {
                check_container_trigger(&key, after, phase.as_ref(), processes, diags);
            }
            (Some(after), phase) => match processes.iter().find(|other| other.raw.name.get_ref() == after.get_ref()) {
                None => {
                    let others: Vec<&str> = names.iter().copied().filter(|n| n != me).collect();
                    diags.push(
                        Diagnostic::at(after.span(), format!("{key}.after"), format!("`{key}.after` names `{}`, which is not a process of this scenario", after.get_ref()))
                            .help(match did_you_mean(after.get_ref(), others.iter().copied()) {
                                Some(close) => format!("did you mean `{close}`? (processes: {})", others.join(", ")),
                                None => format!("processes: {}", others.join(", ")),
                            }),
                    )
                }
                Some(other) => {
                    let supervised = other
                        .raw
                        .restart
                        .as_ref()
                        .is_some_and(|restart| restart.get_ref() != "never");
                    if let (Some(phase), Some(workload)) = (phase, &other.workload)
                        && !(supervised && phase.get_ref() == Supervisor::RESTARTED)
                    {
                        check_phase(&key, phase, other.raw.name.get_ref(), workload, diags);
                    }
                }
            },
            (None, None) => {}
        }
    }
    check_cycles(processes, diags);
}

/// `start = { after = "<pod>/<container>", phase = "<event>" }`: a container of the scenario
/// and one of a container's events (`restarted`, `oom-killed`, ...).
fn check_container_trigger(
    key: &str,
    after: &Spanned<String>,
    phase: Option<&Spanned<String>>,
    processes: &[ProcessEntry],
    diags: &mut Vec<Diagnostic>,
) {
    let containers: Vec<&str> = processes
        .iter()
        .filter_map(|entry| Some(entry.raw.container.as_ref()?.get_ref().as_str()))
        .collect();
    if !containers.contains(&after.get_ref().as_str()) {
        diags.push(
            Diagnostic::at(
                after.span(),
                format!("{key}.after"),
                format!(
                    "`{key}.after` names container `{}`, which no process of this scenario runs in",
                    after.get_ref()
                ),
            )
            .help(suggest(after.get_ref(), &containers)),
        );
        return;
    }
    match phase {
        None => diags.push(
            Diagnostic::at(
                after.span(),
                format!("{key}.after"),
                format!("`{key}.after` names a container without `{key}.phase`"),
            )
            .label("which of its events?")
            .help(format!(
                "add the event: phase = \"restarted\" (a container has {})",
                CONTAINER_EVENTS.join(", ")
            )),
        ),
        Some(event) if !CONTAINER_EVENTS.contains(&event.get_ref().as_str()) => diags.push(
            Diagnostic::at(
                event.span(),
                format!("{key}.phase"),
                format!(
                    "`{key}.phase`: a container has no event `{}`",
                    event.get_ref()
                ),
            )
            .label(format!("a container has {}", CONTAINER_EVENTS.join(", ")))
            .help(suggest(event.get_ref(), CONTAINER_EVENTS)),
        ),
        Some(_) => {}
    }
}

/// A `phase` that the `after` process's workload reports.
fn check_phase(
    key: &str,
    phase: &Spanned<String>,
    after: &str,
    workload: &Workload,
    diags: &mut Vec<Diagnostic>,
) {
    let phases = workload.phases();
    if !phases.contains(&phase.get_ref().as_str()) {
        diags.push(
            Diagnostic::at(
                phase.span(),
                format!("{key}.phase"),
                format!(
                    "`{key}.phase` names `{}`, a phase `{after}` never reports",
                    phase.get_ref()
                ),
            )
            .label(format!("{} reports {}", workload.name(), phases.join(", ")))
            .help(match workload.program_io() {
                Some(_) => format!(
                    "name it in `{after}`'s args: reports = {{ phases = [\"{0}\"] }} if the program reports it as {{\"phase\": \"{0}\"}}, or phases = {{ {0} = \"PATTERN\" }} for an output line",
                    phase.get_ref()
                ),
                None => suggest(phase.get_ref(), &phases),
            }),
        );
    }
}

/// Chains of `after` that come back: each cycle reported once, at its first process. Each
/// process waits for at most one other, so one walk from each process finds every cycle.
fn check_cycles(processes: &[ProcessEntry], diags: &mut Vec<Diagnostic>) {
    let index: BTreeMap<&str, usize> = processes
        .iter()
        .enumerate()
        .rev()
        .map(|(i, entry)| (entry.raw.name.get_ref().as_str(), i))
        .collect();
    let after_of = |i: usize| -> Option<usize> {
        let after = processes[i].raw.start.as_ref()?.get_ref().after.as_ref()?;
        index
            .get(after.get_ref().as_str())
            .copied()
            .filter(|&next| next != i)
    };
    // 0: not seen; 1: on the current walk; 2: done.
    let mut state = vec![0u8; processes.len()];
    for first in 0..processes.len() {
        let mut walk = Vec::new();
        let mut current = Some(first);
        while let Some(i) = current.filter(|&i| state[i] == 0) {
            state[i] = 1;
            walk.push(i);
            current = after_of(i);
        }
        if let Some(back) = current.filter(|&i| state[i] == 1) {
            let mut cycle = walk[walk.iter().position(|&i| i == back).unwrap_or(0)..].to_vec();
            let lowest = cycle
                .iter()
                .enumerate()
                .min_by_key(|(_, i)| **i)
                .map_or(0, |(at, _)| at);
            cycle.rotate_left(lowest);
            report_cycle(processes, &cycle, diags);
        }
        for i in walk {
            state[i] = 2;
        }
    }
}

fn report_cycle(processes: &[ProcessEntry], chain: &[usize], diags: &mut Vec<Diagnostic>) {
    let entry = &processes[chain[0]];
    let Some(after) = entry
        .raw
        .start
        .as_ref()
        .and_then(|start| start.get_ref().after.clone())
    else {
        return;
    };
    let mut names: Vec<&str> = chain
        .iter()
        .map(|&i| processes[i].raw.name.get_ref().as_str())
        .collect();
    names.push(names[0]);
    diags.push(
        Diagnostic::at(
            after.span(),
            format!("process[{}].start.after", entry.index),
            format!(
                "`process[{}].start.after`: processes wait for each other in a cycle: {}",
                entry.index,
                names.join(" → ")
            ),
        )
        .label("none of them would ever start")
        .help("let one of them start without `after`, or after a process outside the cycle"),
    );
}

/// One process: `go`, env names, workload arguments; into the wire's [`ProcessSpec`].
fn check_process(
    entry: &ProcessEntry,
    vm: &VmConfig,
    base_dir: &Path,
    diags: &mut Vec<Diagnostic>,
) -> Option<ProcessSpec> {
    let memory = vm.memory;
    let key = format!("process[{}]", entry.index);
    let go = check_go(entry, &key, diags);
    for (name, span) in &entry.env_spans {
        if name.is_empty() || name.contains(['=', '\0']) {
            diags.push(
                Diagnostic::at(span.clone(), format!("{key}.env"), format!("invalid environment variable name `{name}` in `{key}.env`"))
                    .help("names may not be empty or hold `=`: write e.g. env = { GODEBUG = \"madvdontneed=1\" }"),
            );
        }
    }
    let mut workload = entry.workload.clone()?;
    super::programs::check_program(entry, &mut workload, go.as_deref(), base_dir, memory, diags);
    match &workload {
        Workload::HeapChurn(args) => check_heap_churn(entry, args, memory, diags),
        Workload::Balloon(args) => check_balloon(entry, args, memory, diags),
        Workload::FileIo(args) => check_file_io(entry, args, vm, diags),
        Workload::Hog(args) => check_hog(entry, args, memory, diags),
        Workload::VszStartup(args) => check_vsz_startup(entry, args, memory, diags),
        Workload::GoHeapChurn(args) => {
            // The same sizes and counts as heap-churn, checked the same way.
            let native = HeapChurnArgs {
                heap: args.heap,
                live: args.live,
                release: rsslab_wire::workload::Release::Free,
                chunk: args.chunk,
                cycles: args.cycles,
                hold_allocated: args.hold_allocated,
                hold: args.hold,
                exit: args.exit,
            };
            check_heap_churn(entry, &native, memory, diags)
        }
        Workload::Exec(_) | Workload::GoSource(_) => {} // checked above
    }
    let restart = check_restart(entry, &key, diags);
    let start = entry.raw.start.as_ref().map(|start| start.get_ref());
    Some(ProcessSpec {
        restart,
        go,
        name: entry.raw.name.get_ref().clone(),
        workload,
        env: entry.raw.env.clone(),
        cgroup: entry.raw.cgroup.as_ref().is_none_or(|flag| *flag.get_ref()),
        container: entry.raw.container.as_ref().map(|c| c.get_ref().clone()),
        start: Start {
            after: start.and_then(|s| s.after.as_ref().map(|a| a.get_ref().clone())),
            phase: start.and_then(|s| s.phase.as_ref().map(|p| p.get_ref().clone())),
            delay: start
                .and_then(|s| s.delay.as_ref())
                .map_or(Millis(0), |delay| *delay.get_ref()),
        },
        emulate_no_madv_free: entry.raw.no_madv_free.unwrap_or(false),
    })
}

/// `restart`: a plain supervisor's policy, for a process outside every container.
fn check_restart(entry: &ProcessEntry, key: &str, diags: &mut Vec<Diagnostic>) -> Supervisor {
    let Some(restart) = &entry.raw.restart else {
        return Supervisor::Never;
    };
    let policy = match restart.get_ref().as_str() {
        "never" => Supervisor::Never,
        "always" => Supervisor::Always,
        "on-failure" => Supervisor::OnFailure,
        other => {
            diags.push(
                Diagnostic::at(
                    restart.span(),
                    format!("{key}.restart"),
                    format!("`{key}.restart`: unknown policy `{other}`"),
                )
                .help(suggest(other, &Supervisor::NAMES)),
            );
            return Supervisor::Never;
        }
    };
    if entry.raw.container.is_some() && !policy.is_never() {
        diags.push(
            Diagnostic::at(
                restart.span(),
                format!("{key}.restart"),
                format!("`{key}.restart`: a container's processes are restarted by the kubelet"),
            )
            .label("the pod's restart_policy decides, with its back-off")
            .help("remove `restart`, and set the pod's restart_policy (Always, OnFailure, Never)"),
        );
    }
    policy
}

/// `go`: a Go toolchain catalogue id, required by go-* workloads and refused by the others.
fn check_go(entry: &ProcessEntry, key: &str, diags: &mut Vec<Diagnostic>) -> Option<String> {
    let is_go = entry.workload.as_ref().map(Workload::is_go);
    let ids = crate::catalogue::go::go_catalogue().ids();
    let names: Vec<&str> = ids.iter().map(String::as_str).collect();
    match (&entry.raw.go, is_go) {
        (Some(go), Some(false)) => {
            diags.push(
                Diagnostic::at(
                    go.span(),
                    format!("{key}.go"),
                    format!("`{key}.go` applies only to Go workloads"),
                )
                .label("this workload is not a Go program")
                .help("go applies only to go-* workloads (go-heap-churn): remove this key"),
            );
            None
        }
        (Some(go), _) if !names.contains(&go.get_ref().as_str()) => {
            diags.push(
                Diagnostic::at(
                    go.span(),
                    format!("{key}.go"),
                    format!("unknown Go toolchain `{}` in `{key}.go`", go.get_ref()),
                )
                .label("not in the Go toolchain catalogue (vm-images/go-toolchains.toml)")
                .help(suggest(go.get_ref(), &names)),
            );
            None
        }
        (Some(go), _) => Some(go.get_ref().clone()),
        (None, Some(true)) => {
            diags.push(
                Diagnostic::at(
                    entry.raw.name.span(),
                    key,
                    format!("`{key}` runs a Go workload but names no Go toolchain"),
                )
                .help(format!(
                    "add go = \"{}\" (one of {})",
                    names[0],
                    names.join(", ")
                )),
            );
            None
        }
        (None, _) => None,
    }
}

/// heap-churn: a heap to churn, that fits the guest; live within it; page-sized chunks.
fn check_heap_churn(
    entry: &ProcessEntry,
    args: &HeapChurnArgs,
    memory: Bytes,
    diags: &mut Vec<Diagnostic>,
) {
    if args.heap.0 == 0 {
        diags.push(
            entry
                .arg_error("heap", "is 0".into())
                .help("write the bytes to allocate, e.g. heap = \"400MiB\""),
        );
    } else {
        check_fits(entry, "heap", Amount::Bytes(args.heap), memory, diags);
    }
    if args.live > args.heap {
        diags.push(
            entry
                .arg_error(
                    "live",
                    format!("({}) is larger than `heap` ({})", args.live, args.heap),
                )
                .label("the live set is part of the heap")
                .help("make live at most heap"),
        );
    }
    if args.chunk < MIN_CHUNK {
        diags.push(
            entry
                .arg_error("chunk", format!("({}) is smaller than a page", args.chunk))
                .help(
                    "madvise works on whole pages: write chunk = \"4KiB\" or more (default 1MiB)",
                ),
        );
    }
    if args.cycles == 0 {
        diags.push(
            entry
                .arg_error("cycles", "is 0".into())
                .help("write cycles = 1 or more"),
        );
    }
}

/// balloon: it must grow.
fn check_balloon(
    entry: &ProcessEntry,
    args: &BalloonArgs,
    memory: Bytes,
    diags: &mut Vec<Diagnostic>,
) {
    if args.step.0 == 0 {
        diags.push(
            entry
                .arg_error("step", "is 0: the balloon would never grow".into())
                .help("write e.g. step = \"64MiB\""),
        );
    } else if args.step > memory {
        diags.push(
            entry
                .arg_error(
                    "step",
                    format!("({}) is larger than `vm.memory` ({memory})", args.step),
                )
                .label("its first step could never be touched")
                .help("the balloon grows a step at a time: write e.g. step = \"64MiB\""),
        );
    }
    if args.every.0 == 0 {
        diags.push(
            entry
                .arg_error("every", "is 0".into())
                .help("write e.g. every = \"500ms\""),
        );
    }
    if args.until_available >= memory {
        diags.push(
            entry.arg_error("until_available",
                format!(
                    "({}) is not below `vm.memory` ({memory})",
                    args.until_available
                ),
            )
            .label("MemAvailable is always below it: the balloon would never grow")
            .help("write the floor it presses the guest down to, e.g. until_available = \"64MiB\""),
        );
    }
    if args.max.is_some_and(|max| max.0 == 0) {
        diags.push(
            entry
                .arg_error("max", "is 0: the balloon would never grow".into())
                .help("write a cap such as max = \"512MiB\", or omit max for none"),
        );
    }
}

/// A size that must fit in the guest: an absolute one at most `vm.memory`, a share of
/// `mem_total` or `mem_available` at most 100%; the error names the argument.
fn check_fits(
    entry: &ProcessEntry,
    arg: &str,
    amount: Amount,
    memory: Bytes,
    diags: &mut Vec<Diagnostic>,
) {
    match amount {
        Amount::Bytes(bytes) if bytes > memory => diags.push(
            entry
                .arg_error(
                    arg,
                    format!("({bytes}) is larger than `vm.memory` ({memory})"),
                )
                .label("the guest cannot hold it")
                .help(format!("lower {arg}, or raise vm.memory")),
        ),
        Amount::Share { percent, of } if percent > 100.0 && of != Base::CommitLimit => diags.push(
            entry
                .arg_error(arg, format!("({amount}) is more than all of it"))
                .label(format!(
                    "{} is the guest's; more cannot be touched",
                    of.name()
                ))
                .help(format!("write at most \"100% of {}\"", of.name())),
        ),
        _ => {}
    }
}

/// `add disk = "..."`: a disk that holds `files` bytes of files, if there is one.
fn disk_hint(files: Bytes) -> String {
    let needed = (files.0.saturating_mul(100) / DISK_USABLE_PERCENT)
        .max(MIN_DISK.0)
        .checked_next_power_of_two()
        .map(Bytes);
    match needed.filter(|needed| *needed <= MAX_DISK) {
        Some(needed) => format!(
            "add disk = \"{needed}\" (or more) to [vm]: files x file_size plus room for the file system"
        ),
        None => format!(
            "files x file_size ({files}) is more than the largest scratch disk ({MAX_DISK}) holds: write fewer or smaller files, and add a disk to [vm]"
        ),
    }
}

/// A duration in the largest unit that keeps it whole: `6h`, `2m`, `30s`, `250ms`.
fn human(duration: Millis) -> String {
    match duration.0 {
        ms if ms >= 3_600_000 && ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        ms if ms >= 60_000 && ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ => duration.to_string(),
    }
}

/// The share of `vm.disk` file-io may fill (the rest is ext4's journal, inode tables, reserve).
const DISK_USABLE_PERCENT: u64 = 90;

/// file-io: it needs the scratch disk, files that fit on it, a working set among them, an
/// anonymous heap the guest can hold.
fn check_file_io(
    entry: &ProcessEntry,
    args: &FileIoArgs,
    vm: &VmConfig,
    diags: &mut Vec<Diagnostic>,
) {
    let key = format!("process[{}]", entry.index);
    let total = Bytes(u64::from(args.files).saturating_mul(args.file_size.0));
    match vm.disk {
        None => diags.push(
            Diagnostic::at(
                entry.raw.workload.span(),
                format!("{key}.workload"),
                format!("`{key}.workload`: file-io needs a scratch disk, and [vm] has no `disk`"),
            )
            .label("writes its files to the scratch disk")
            .help(disk_hint(total)),
        ),
        Some(disk) if total.0 > disk.0 / 100 * DISK_USABLE_PERCENT => diags.push(
            entry
                .arg_error(
                    "file_size",
                    format!(
                        "x files ({} x {} = {total}) does not fit on `vm.disk` ({disk})",
                        args.files, args.file_size
                    ),
                )
                .label(format!(
                    "at most {DISK_USABLE_PERCENT}% of the disk holds files"
                ))
                .help("fewer or smaller files, or a larger vm.disk"),
        ),
        Some(_) => {}
    }
    if args.files == 0 {
        diags.push(
            entry
                .arg_error("files", "is 0".into())
                .help("write files = 1 or more"),
        );
    }
    if args.file_size.0 == 0 {
        diags.push(
            entry
                .arg_error("file_size", "is 0".into())
                .help("write e.g. file_size = \"4MiB\""),
        );
    }
    if let Some(working_set) = args.working_set.filter(|ws| *ws > total) {
        diags.push(
            entry
                .arg_error(
                    "working_set",
                    format!("({working_set}) is larger than files x file_size ({total})"),
                )
                .label("the working set is re-read from the files written")
                .help(
                    "make working_set at most files x file_size, or omit it to re-read every file",
                ),
        );
    }
    if !(args.dir == "/scratch" || args.dir.starts_with("/scratch/")) {
        diags.push(
            entry
                .arg_error(
                    "dir",
                    format!("(`{}`) is not on the scratch disk", args.dir),
                )
                .label("anywhere else is the initramfs, in memory")
                .help("write a directory under /scratch, or omit dir for /scratch/fileio"),
        );
    }
    if args.anon > vm.memory {
        diags.push(
            entry
                .arg_error(
                    "anon",
                    format!("({}) is larger than `vm.memory` ({})", args.anon, vm.memory),
                )
                .help("lower anon, or raise vm.memory"),
        );
    }
    if args.repeat == 0 {
        diags.push(
            entry
                .arg_error("repeat", "is 0".into())
                .help("write repeat = 1 or more"),
        );
    }
}

/// hog: it must take something that fits in the guest.
fn check_hog(entry: &ProcessEntry, args: &HogArgs, memory: Bytes, diags: &mut Vec<Diagnostic>) {
    if args.size.is_zero() {
        diags.push(
            entry
                .arg_error("size", "is 0".into())
                .help("write e.g. size = \"600MiB\" or size = \"60% of mem_total\""),
        );
    }
    check_fits(entry, "size", args.size, memory, diags);
}

/// vsz-startup: a region; `commit` only with reserve-then-commit and within the region; a
/// touched part within what is writable and what the guest can hold.
fn check_vsz_startup(
    entry: &ProcessEntry,
    args: &VszStartupArgs,
    memory: Bytes,
    diags: &mut Vec<Diagnostic>,
) {
    if args.size.is_zero() {
        diags.push(
            entry
                .arg_error("size", "is 0".into())
                .help("write e.g. size = \"4GiB\" or size = \"200% of mem_total\""),
        );
    }
    let writable = match (args.mapping, args.commit) {
        (Mapping::ReserveThenCommit, Some(commit)) => {
            if let (Amount::Bytes(commit), Amount::Bytes(size)) = (commit, args.size)
                && commit > size
            {
                diags.push(
                    entry
                        .arg_error(
                            "commit",
                            format!("({commit}) is larger than `size` ({size})"),
                        )
                        .help("commit at most size"),
                );
            }
            commit
        }
        (_, Some(_)) => {
            diags.push(
                entry
                    .arg_error(
                        "commit",
                        "applies only to mapping = \"reserve-then-commit\"".into(),
                    )
                    .help("remove commit, or write mapping = \"reserve-then-commit\""),
            );
            args.size
        }
        (_, None) => args.size,
    };
    if let Amount::Bytes(touch) = args.touch {
        if let Amount::Bytes(writable) = writable
            && touch > writable
        {
            diags.push(
                entry
                    .arg_error(
                        "touch",
                        format!("({touch}) is larger than the writable part ({writable})"),
                    )
                    .help("touch at most size (or commit with reserve-then-commit)"),
            );
        } else {
            check_fits(entry, "touch", Amount::Bytes(touch), memory, diags);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_valid_ids() {
        assert_eq!(slug("Go_Heap churn!"), "go-heap-churn");
        assert_eq!(slug("__"), "my-scenario");
    }
}
