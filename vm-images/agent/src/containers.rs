//! How a pod's containers start and end, as the kubelet and the runtime run them, in terms of
//! the run's processes: which process is a container's main program, and what each process
//! waits for before it may start.
//!
//! - A container's first process (in the scenario's order) is its main program; the others
//!   are what it starts, so they start once it has started (and their own `start` allows).
//! - Init containers run one after another, in order (`pkg/kubelet/kuberuntime/
//!   kuberuntime_container.go`, `computeInitContainerActions`): the next starts when the one
//!   before has exited 0, or, for a sidecar (`restartPolicy: Always`), once it has started
//!   (without a startup probe, started is running). The pod's containers start together when
//!   the last init container is done so.
//! - When a container's main process ends, the container has ended: the runtime's PID
//!   namespace goes with its init, and the kernel kills what is left in it
//!   (`zap_pid_ns_processes`). The agent does the same to the container's other processes
//!   ([`crate::run`]); a container that ended starts nothing more, unless the kubelet
//!   starts it again ([`crate::restarts`]): then its processes start as they did the first
//!   time, in its new cgroup.

use rsslab_wire::ProcessSpec;
use rsslab_wire::pod::{NodeSpec, container_key};

/// What a process waits for before it may start, beside its own `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    /// The process waited for (an index of the run's processes).
    pub after: usize,
    pub until: Until,
}

/// What the awaited process must have done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    Started,
    /// Exited with code 0 (an init container that completed).
    ExitedZero,
}

/// Per process: the main process of its container (`None` for a main process and for a
/// process outside every container).
pub fn mains(specs: &[ProcessSpec]) -> Vec<Option<usize>> {
    specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let key = spec.container.as_ref()?;
            let main = specs
                .iter()
                .position(|other| other.container.as_ref() == Some(key))?;
            (main != i).then_some(main)
        })
        .collect()
}

/// Per process: the gate it waits at (`None`: only its own `start`).
pub fn gates(node: Option<&NodeSpec>, specs: &[ProcessSpec]) -> Vec<Option<Gate>> {
    let main_of = |pod: &str, container: &str| {
        let key = container_key(pod, container);
        specs
            .iter()
            .position(|spec| spec.container.as_deref() == Some(key.as_str()))
    };
    let mut gates: Vec<Option<Gate>> = mains(specs)
        .into_iter()
        .map(|main| {
            main.map(|after| Gate {
                after,
                until: Until::Started,
            })
        })
        .collect();
    let Some(node) = node else {
        return gates;
    };
    for pod in &node.pods {
        // The gate the next container in line waits at: the init container before it.
        let mut previous: Option<Gate> = None;
        for init in &pod.init_containers {
            let Some(main) = main_of(&pod.name, &init.name) else {
                continue;
            };
            gates[main] = previous;
            previous = Some(Gate {
                after: main,
                until: if init.sidecar {
                    Until::Started
                } else {
                    Until::ExitedZero
                },
            });
        }
        for container in &pod.containers {
            if let Some(main) = main_of(&pod.name, &container.name) {
                gates[main] = previous;
            }
        }
    }
    gates
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsslab_wire::pod::{ContainerSpec, KubeVersion, PodSpec, RestartPolicy};
    use rsslab_wire::workload::{HogArgs, Workload};

    fn process(name: &str, container: Option<&str>) -> ProcessSpec {
        ProcessSpec {
            name: name.into(),
            workload: Workload::Hog(
                serde_json::from_str::<HogArgs>(r#"{"size":"64MiB"}"#).unwrap(),
            ),
            env: Default::default(),
            cgroup: true,
            container: container.map(str::to_owned),
            start: Default::default(),
            emulate_no_madv_free: false,
            restart: Default::default(),
            go: None,
        }
    }

    fn container(name: &str, sidecar: bool) -> ContainerSpec {
        ContainerSpec {
            name: name.into(),
            id: "00".repeat(32),
            requests: Default::default(),
            limits: Default::default(),
            sidecar,
        }
    }

    fn node(init: Vec<ContainerSpec>, containers: Vec<ContainerSpec>) -> NodeSpec {
        NodeSpec {
            pods: vec![PodSpec {
                name: "web".into(),
                uid: "u".into(),
                priority_class_name: None,
                priority: 0,
                restart_policy: RestartPolicy::Always,
                overhead: None,
                init_containers: init,
                containers,
            }],
            ..NodeSpec::new(KubeVersion::new(31), 2)
        }
    }

    #[test]
    fn a_containers_first_process_is_its_main_and_the_others_follow_it() {
        let specs = [
            process("daemon", None),
            process("api", Some("web/api")),
            process("worker", Some("web/api")),
        ];
        assert_eq!(mains(&specs), [None, None, Some(1)]);
        let gates = gates(Some(&node(vec![], vec![container("api", false)])), &specs);
        assert_eq!(gates[0], None);
        assert_eq!(gates[1], None, "no init containers: at once");
        assert_eq!(
            gates[2],
            Some(Gate {
                after: 1,
                until: Until::Started
            })
        );
    }

    #[test]
    fn init_containers_go_in_order_and_sidecars_only_need_to_start() {
        let specs = [
            process("migrate", Some("web/migrate")),
            process("shipper", Some("web/shipper")),
            process("api", Some("web/api")),
            process("cache", Some("web/cache")),
        ];
        let node = node(
            vec![container("migrate", false), container("shipper", true)],
            vec![container("api", false), container("cache", false)],
        );
        let gates = gates(Some(&node), &specs);
        assert_eq!(gates[0], None);
        assert_eq!(
            gates[1],
            Some(Gate {
                after: 0,
                until: Until::ExitedZero
            }),
            "the sidecar after the migration completed"
        );
        let after_sidecar = Some(Gate {
            after: 1,
            until: Until::Started,
        });
        assert_eq!(
            (gates[2], gates[3]),
            (after_sidecar, after_sidecar),
            "both containers once the sidecar runs"
        );
    }
}
