//! The run's pods: the cgroup tree the kubelet and the container runtime would build, made
//! and filled as [`rsslab_kubelet::plan`] says for the machine this guest is, every value read
//! back from the kernel's file and reported as a `kubelet` event (with the rule behind it), and
//! the tree's figures for samples.
//!
//! The machine is read as the kubelet reads it: cAdvisor's `MemoryCapacity` is MemTotal of
//! /proc/meminfo × 1024, the page size the system's, and the swap controller present when a
//! memory cgroup has `memory.swap.max` (v2) or the v1 root `memory.memsw.limit_in_bytes`. On
//! cgroup v1 the root's `memory.use_hierarchy` is set to 1 first, as systemd does on every
//! node at boot (`src/core/cgroup.c`, `manager_setup_cgroup`), so that `kubepods`' limit holds
//! for the pods below it (5.10's default is 0; from 5.11 the kernel is always hierarchical).

use std::collections::BTreeMap;
use std::path::Path;

use rsslab_kubelet::{CgroupPlan, ContainerPlan, KubeletPlan, Level, Machine, names};
use rsslab_wire::pod::NodeSpec;
use rsslab_wire::{Event, EventKind, GuestMessage, Metrics};

use crate::cgroup::{self, Cgroup, Version};
use crate::setup::{Failure, report, write_and_read_back, write_knob};
use crate::{channel, parse};

/// The tree as made: the plan and a [`Cgroup`] for each of its cgroups, in the same order.
pub struct PodTree {
    pub plan: KubeletPlan,
    pub cgroups: Vec<Cgroup>,
}

impl PodTree {
    /// `kubepods`: every pod together.
    pub fn kubepods(&self) -> &Cgroup {
        &self.cgroups[0]
    }

    /// A container's cgroup and plan by its key, `<pod>/<container>`.
    pub fn container(&self, key: &str) -> Option<(&Cgroup, &ContainerPlan)> {
        self.plan
            .pods
            .iter()
            .flat_map(|pod| &pod.containers)
            .find(|container| container.key == key)
            .map(|container| (&self.cgroups[container.cgroup], container))
    }

    /// Replaces container `key`'s cgroup with that of its `restart`-th restart, as the runtime
    /// does: the old cgroup removed (its processes are gone; what it still has charged stays
    /// in the pod's), a new one made with the same values. Returns the new cgroup and id.
    pub fn restart_container(
        &mut self,
        key: &str,
        restart: u32,
    ) -> Result<(Cgroup, String), Failure> {
        let Some(container) = self
            .plan
            .pods
            .iter()
            .flat_map(|pod| &pod.containers)
            .find(|container| container.key == key)
        else {
            return Err(Failure::infra(format!("no container {key} to restart")));
        };
        let planned = &self.plan.cgroups[container.cgroup];
        let id = names::restarted_id(&container.id, restart);
        let path = names::restarted_path(&planned.path, &container.id, &id);
        let old = &self.cgroups[container.cgroup];
        if let Err(error) = std::fs::remove_dir(&old.dir) {
            crate::diag!("removing {}: {error}", old.dir.display());
        }
        let leaf = path.rsplit('/').next().unwrap_or(&path);
        let dir = old.dir.with_file_name(leaf);
        let version = old.version;
        for (write, read) in make_and_write(version, &dir, planned)? {
            if read.trim() != write.value.trim() {
                crate::diag!("{path}: {} = {} reads back {read}", write.file, write.value);
            }
        }
        let cgroup = Cgroup { version, dir };
        self.cgroups[container.cgroup] = cgroup.clone();
        Ok((cgroup, id))
    }

    /// Each pod's and each container's figures now.
    pub fn sample(&self) -> (BTreeMap<String, Metrics>, BTreeMap<String, Metrics>) {
        let mut pods = BTreeMap::new();
        let mut containers = BTreeMap::new();
        for pod in &self.plan.pods {
            pods.insert(pod.name.clone(), self.cgroups[pod.cgroup].sample());
            for container in &pod.containers {
                containers.insert(
                    container.key.clone(),
                    self.cgroups[container.cgroup].sample(),
                );
            }
        }
        (pods, containers)
    }
}

/// Makes the pods' cgroup tree. For v1, `v1_mount` is the result of [`cgroup::mount_v1`] if
/// it was done already.
pub fn create(node: &NodeSpec, v1_mount: Option<&Result<(), String>>) -> Result<PodTree, Failure> {
    let (version, root) = match node.cgroup_version {
        1 => {
            let root = cgroup::prepare_v1(v1_mount)?;
            let hierarchy = root.join("memory.use_hierarchy");
            write_knob(
                "cgroup v1 memory.use_hierarchy (as systemd)",
                cgroup::path_str(&hierarchy),
                "1",
            )?;
            (Version::V1, root)
        }
        _ => (Version::V2, cgroup::prepare_v2()?),
    };
    let machine = read_machine(version, root)?;
    let plan = rsslab_kubelet::plan(node, &machine);
    report(
        "kubelet",
        true,
        format!(
            "Kubernetes {}: capacity {} (MemTotal × 1024), node allocatable {}, page {}, swap controller {}",
            plan.version,
            plan.capacity,
            plan.allocatable,
            machine.page_size,
            if machine.swap_controller { "yes" } else { "no" }
        ),
    );
    let mut cgroups = Vec::with_capacity(plan.cgroups.len());
    for planned in &plan.cgroups {
        let dir = root.join(&planned.path);
        for (write, read) in make_and_write(version, &dir, planned)? {
            send(
                &planned.path,
                &write.file,
                &write.value,
                Some(read),
                &write.rule,
            );
        }
        cgroups.push(Cgroup { version, dir });
    }
    for container in plan.pods.iter().flat_map(|pod| &pod.containers) {
        send(
            &plan.cgroups[container.cgroup].path,
            "oom_score_adj",
            &container.oom_score_adj.to_string(),
            None,
            &container.oom_rule,
        );
    }
    Ok(PodTree { plan, cgroups })
}

/// Makes `planned`'s cgroup at `dir` and writes its values: each write with what the kernel's
/// file says after it.
fn make_and_write<'a>(
    version: Version,
    dir: &Path,
    planned: &'a CgroupPlan,
) -> Result<Vec<(&'a rsslab_kubelet::Write, String)>, Failure> {
    cgroup::make(dir)?;
    if version == Version::V2 && !matches!(planned.level, Level::Container { .. }) {
        cgroup::enable_memory(dir)?;
    }
    let mut written = Vec::with_capacity(planned.writes.len());
    for write in &planned.writes {
        let path = dir.join(&write.file);
        match write_and_read_back(cgroup::path_str(&path), &write.value) {
            Ok(read) => written.push((write, read)),
            Err(error) => {
                let reason = format!(
                    "kubelet: writing {} to {}: {error}",
                    write.value,
                    path.display()
                );
                report("kubelet", false, &reason);
                return Err(if error.kind() == std::io::ErrorKind::NotFound {
                    Failure::unsupported(reason)
                } else {
                    Failure::infra(reason)
                });
            }
        }
    }
    Ok(written)
}

/// The machine as the kubelet reads it.
fn read_machine(version: Version, root: &Path) -> Result<Machine, Failure> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let Some(mem_total) = parse::kib_field(&meminfo, "MemTotal") else {
        let reason = "kubelet: /proc/meminfo has no MemTotal".to_owned();
        report("kubelet", false, &reason);
        return Err(Failure::infra(reason));
    };
    // SAFETY: sysconf has no preconditions.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    let swap_controller = match version {
        Version::V1 => root.join("memory.memsw.limit_in_bytes").exists(),
        Version::V2 => cgroup::probe_child_file(root, "memory.swap.max").unwrap_or(false),
    };
    Ok(Machine {
        // parse::kib_field already gives bytes: MemTotal kB × 1024, as cAdvisor.
        memory_capacity: mem_total,
        page_size,
        swap_controller,
    })
}

fn send(cgroup: &str, file: &str, value: &str, read: Option<String>, rule: &rsslab_kubelet::Rule) {
    channel::send(&GuestMessage::Event(Event {
        t_ms: 0,
        process: None,
        kind: EventKind::Kubelet {
            cgroup: cgroup.to_owned(),
            file: file.to_owned(),
            value: value.to_owned(),
            read,
            rule: rule.what.clone(),
            source: rule.source.clone(),
        },
    }));
}
