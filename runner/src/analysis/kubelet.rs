//! Whose each of a run's `kubelet` events is: the node's `kubepods`, a QoS level, a pod or one
//! of its containers, found by the cgroup path the kubelet's rules give each
//! (`rsslab_kubelet::names`), so results.json and the report's pods block can list a pod's
//! values together and its chart can draw each container's limit where the kernel read it
//! back. Entry point: [`kubelet_writes`].

use rsslab_kubelet::QosClass;
use rsslab_kubelet::names;
use rsslab_kubelet::qos::qos_class;
use rsslab_wire::EventKind;
use rsslab_wire::pod::NodeSpec;

use crate::records::LoadedRun;

/// The files that hold a cgroup's hard limit (v2, v1).
pub const LIMIT_FILES: [&str; 2] = ["memory.max", "memory.limit_in_bytes"];
/// The file of a container's `oom_score_adj` events (its processes read theirs back).
pub const OOM_SCORE_ADJ: &str = "oom_score_adj";

/// Whose cgroup a kubelet event wrote into. Indices are into the node's `pods`, and into a
/// pod's containers as [`rsslab_wire::pod::PodSpec::all_containers`] lists them (init
/// containers first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// `kubepods`: node allocatable.
    Node,
    /// The Burstable or BestEffort level.
    Qos(QosClass),
    Pod(usize),
    Container {
        pod: usize,
        container: usize,
    },
    /// A path the node's pods do not explain (a record from another rsslab).
    Unknown,
}

/// One value the kubelet's rules wrote, with whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeletWrite<'a> {
    pub owner: Owner,
    /// Relative to the hierarchy's root.
    pub cgroup: &'a str,
    pub file: &'a str,
    pub value: &'a str,
    /// What the kernel's file said after the write; `None` when it could not be read (and for
    /// `oom_score_adj`, which each process reads back itself).
    pub read: Option<&'a str>,
    pub rule: &'a str,
    pub source: &'a str,
}

impl KubeletWrite<'_> {
    /// The kernel's file reads back otherwise than written (a page-rounded `memory.high`, a
    /// v1 limit of -1 read as the largest page multiple).
    pub fn read_back_differs(&self) -> bool {
        self.read
            .is_some_and(|read| read.trim() != self.value.trim())
    }

    /// What the file holds in bytes: the read-back, else the value written; `None` for `max`
    /// or anything else that is not a number.
    pub fn bytes(&self) -> Option<u64> {
        self.read.unwrap_or(self.value).trim().parse().ok()
    }
}

/// The run's kubelet events in their order, each with its [`Owner`]; empty without pods.
pub fn kubelet_writes(run: &LoadedRun) -> Vec<KubeletWrite<'_>> {
    let Some(node) = run.record.spec.node.as_ref() else {
        return Vec::new();
    };
    let paths = CgroupPaths::of(node);
    run.record
        .events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::Kubelet {
                cgroup,
                file,
                value,
                read,
                rule,
                source,
            } => Some(KubeletWrite {
                owner: paths.owner(cgroup),
                cgroup,
                file,
                value,
                read: read.as_deref(),
                rule,
                source,
            }),
            _ => None,
        })
        .collect()
}

/// The QoS class of each of the node's pods, in order.
pub fn pod_classes(node: &NodeSpec) -> Vec<QosClass> {
    node.pods.iter().map(qos_class).collect()
}

/// Every cgroup path the kubelet's rules give the node's pods, with its owner.
struct CgroupPaths {
    paths: Vec<(String, Owner)>,
}

impl CgroupPaths {
    fn of(node: &NodeSpec) -> CgroupPaths {
        let driver = node.cgroup_driver;
        let mut paths = vec![(names::node(driver), Owner::Node)];
        for qos in [QosClass::Burstable, QosClass::BestEffort] {
            paths.push((names::qos_level(driver, qos), Owner::Qos(qos)));
        }
        for (index, (pod, qos)) in node.pods.iter().zip(pod_classes(node)).enumerate() {
            let pod_path = names::pod(driver, qos, &pod.uid);
            for (container, spec) in pod.all_containers().enumerate() {
                paths.push((
                    names::container(driver, &pod_path, &spec.id),
                    Owner::Container {
                        pod: index,
                        container,
                    },
                ));
            }
            paths.push((pod_path, Owner::Pod(index)));
        }
        CgroupPaths { paths }
    }

    fn owner(&self, cgroup: &str) -> Owner {
        let cgroup = cgroup.trim_matches('/');
        self.paths
            .iter()
            .find(|(path, _)| path == cgroup)
            .map_or(Owner::Unknown, |(_, owner)| *owner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::testing::fake_pod_run;

    #[test]
    fn each_event_is_its_pods_or_containers() {
        let run = fake_pod_run("pods", "6.1", true);
        let writes = kubelet_writes(&run);
        let owners = |file: &str| -> Vec<Owner> {
            writes
                .iter()
                .filter(|write| write.file == file)
                .map(|write| write.owner)
                .collect()
        };
        assert_eq!(owners("memory.max")[0], Owner::Node);
        assert!(owners("memory.max").contains(&Owner::Pod(0)), "{writes:?}");
        // web's containers: the sidecar (an init container) first, then api.
        assert_eq!(
            owners("memory.high"),
            [
                Owner::Container {
                    pod: 0,
                    container: 0
                },
                Owner::Container {
                    pod: 0,
                    container: 1
                }
            ]
        );
        assert_eq!(
            owners(OOM_SCORE_ADJ).last(),
            Some(&Owner::Container {
                pod: 1,
                container: 0
            })
        );
        assert!(writes.iter().all(|write| write.owner != Owner::Unknown));
    }

    #[test]
    fn a_page_rounded_read_back_differs_and_its_bytes_are_the_kernels() {
        let run = fake_pod_run("pods", "6.1", true);
        let writes = kubelet_writes(&run);
        let high = writes
            .iter()
            .find(|write| write.file == "memory.high" && write.read_back_differs())
            .expect("api's memory.high is page-rounded");
        assert_ne!(high.read, Some(high.value));
        assert_eq!(high.bytes(), Some(127_504_384));
        let max = writes
            .iter()
            .find(|write| write.owner == Owner::Node)
            .unwrap();
        assert!(!max.read_back_differs());
        let adj = writes
            .iter()
            .find(|write| write.file == OOM_SCORE_ADJ)
            .unwrap();
        assert!(!adj.read_back_differs(), "no read-back is no difference");
        let unlimited = KubeletWrite {
            value: "max",
            read: Some("max"),
            ..max.clone()
        };
        assert_eq!(unlimited.bytes(), None);
    }

    #[test]
    fn a_path_of_no_pod_is_unknown_and_a_run_without_pods_has_none() {
        let mut run = fake_pod_run("pods", "6.1", true);
        run.record.events.push(rsslab_wire::Event {
            t_ms: 0,
            process: None,
            kind: EventKind::Kubelet {
                cgroup: "system.slice/other.scope".into(),
                file: "memory.max".into(),
                value: "1".into(),
                read: None,
                rule: String::new(),
                source: String::new(),
            },
        });
        assert_eq!(kubelet_writes(&run).last().unwrap().owner, Owner::Unknown);
        run.record.spec.node = None;
        assert!(kubelet_writes(&run).is_empty());
    }
}
