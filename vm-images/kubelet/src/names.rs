//! Where the kubelet and the runtime put each cgroup, relative to the hierarchy's root.
//!
//! The kubelet names cgroups by components (`pkg/kubelet/cm/cgroup_manager_linux.go`,
//! `CgroupName`): the node's `kubepods` (the default cgroup root with `cgroupsPerQOS`,
//! `defaultNodeAllocatableCgroupName`), its QoS children `burstable` and `besteffort`
//! (Guaranteed pods sit in `kubepods` itself: `qos_container_manager_linux.go`, `Start`), and
//! `pod<uid>` (`pod_container_manager_linux.go`, `GetPodContainerName`). The cgroupfs driver
//! joins them as a path (`ToCgroupfs`); the systemd driver escapes `-` as `_` in each component
//! and nests slices named by their prefixes (`ToSystemd`, `escapeSystemdCgroupName`, and
//! `ExpandSlice` of opencontainers/cgroups: `kubepods-burstable-pod<uid>.slice` lies in
//! `kubepods-burstable.slice` in `kubepods.slice`). The container's own cgroup is the
//! runtime's: containerd (`internal/cri/server/helpers.go`, `getCgroupsPath`) gives runc
//! `<pod slice>:cri-containerd:<id>` under the systemd driver, a scope named
//! `cri-containerd-<id>.scope`, and `<pod cgroup>/<id>` under cgroupfs.

use rsslab_wire::pod::CgroupDriver;

use crate::qos::QosClass;

/// The kubelet's name of a cgroup: its components from the root.
fn components(qos: Option<QosClass>, pod_uid: Option<&str>) -> Vec<String> {
    let mut parts = vec!["kubepods".to_owned()];
    match qos {
        Some(QosClass::Burstable) => parts.push("burstable".into()),
        Some(QosClass::BestEffort) => parts.push("besteffort".into()),
        Some(QosClass::Guaranteed) | None => {}
    }
    if let Some(uid) = pod_uid {
        parts.push(format!("pod{uid}"));
    }
    parts
}

/// The path of a kubelet cgroup under `driver`.
fn path(driver: CgroupDriver, parts: &[String]) -> String {
    match driver {
        CgroupDriver::Cgroupfs => parts.join("/"),
        CgroupDriver::Systemd => {
            let escaped: Vec<String> = parts.iter().map(|part| part.replace('-', "_")).collect();
            (1..=escaped.len())
                .map(|depth| format!("{}.slice", escaped[..depth].join("-")))
                .collect::<Vec<_>>()
                .join("/")
        }
    }
}

/// `kubepods` (node allocatable).
pub fn node(driver: CgroupDriver) -> String {
    path(driver, &components(None, None))
}

/// The QoS level of Burstable or BestEffort pods.
pub fn qos_level(driver: CgroupDriver, qos: QosClass) -> String {
    path(driver, &components(Some(qos), None))
}

/// A pod's cgroup.
pub fn pod(driver: CgroupDriver, qos: QosClass, uid: &str) -> String {
    path(driver, &components(Some(qos), Some(uid)))
}

/// A container's cgroup, in its pod's.
pub fn container(driver: CgroupDriver, pod_path: &str, id: &str) -> String {
    match driver {
        CgroupDriver::Cgroupfs => format!("{pod_path}/{id}"),
        CgroupDriver::Systemd => format!("{pod_path}/cri-containerd-{id}.scope"),
    }
}

/// The id of a container's `restart`-th restart, and its cgroup's path from the first
/// container's: the runtime gives every container it creates a new random id (containerd:
/// `util.GenerateID`, 32 random bytes in hex); rsslab derives one, the first id's first 56 hex
/// digits and the restart count in the last 8, so runs name the same cgroups.
pub fn restarted_id(first_id: &str, restart: u32) -> String {
    let keep = first_id.len().saturating_sub(8);
    format!("{}{restart:08x}", &first_id[..keep])
}

/// The cgroup path of the container `restarted_id` that replaces the one at `first_path`
/// (named with `first_id`) in the same pod.
pub fn restarted_path(first_path: &str, first_id: &str, restarted_id: &str) -> String {
    match first_path.rsplit_once('/') {
        Some((pod, leaf)) => format!("{pod}/{}", leaf.replacen(first_id, restarted_id, 1)),
        None => first_path.replacen(first_id, restarted_id, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "0c1f3c1e-7c2a-4d8e-9b1a-3f6d2e5a7b90";

    #[test]
    fn a_restarted_container_has_a_new_id_in_the_same_pod() {
        let first = "ab".repeat(32);
        let second = restarted_id(&first, 2);
        assert_eq!(second.len(), 64);
        assert_eq!(second, format!("{}00000002", "ab".repeat(28)));
        let path = container(CgroupDriver::Systemd, "kubepods.slice/pod.slice", &first);
        assert_eq!(
            restarted_path(&path, &first, &second),
            format!("kubepods.slice/pod.slice/cri-containerd-{second}.scope")
        );
        let path = container(CgroupDriver::Cgroupfs, "kubepods/podx", &first);
        assert_eq!(
            restarted_path(&path, &first, &second),
            format!("kubepods/podx/{second}")
        );
    }

    #[test]
    fn systemd_names_nest_slices_and_escape_dashes() {
        let systemd = CgroupDriver::Systemd;
        assert_eq!(node(systemd), "kubepods.slice");
        assert_eq!(
            qos_level(systemd, QosClass::Burstable),
            "kubepods.slice/kubepods-burstable.slice"
        );
        let burstable = pod(systemd, QosClass::Burstable, UID);
        assert_eq!(
            burstable,
            "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0c1f3c1e_7c2a_4d8e_9b1a_3f6d2e5a7b90.slice"
        );
        assert_eq!(
            pod(systemd, QosClass::Guaranteed, UID),
            "kubepods.slice/kubepods-pod0c1f3c1e_7c2a_4d8e_9b1a_3f6d2e5a7b90.slice"
        );
        assert_eq!(
            container(systemd, &burstable, "ab12"),
            format!("{burstable}/cri-containerd-ab12.scope")
        );
    }

    #[test]
    fn cgroupfs_names_are_plain_paths() {
        let cgroupfs = CgroupDriver::Cgroupfs;
        assert_eq!(node(cgroupfs), "kubepods");
        assert_eq!(
            qos_level(cgroupfs, QosClass::BestEffort),
            "kubepods/besteffort"
        );
        let guaranteed = pod(cgroupfs, QosClass::Guaranteed, UID);
        assert_eq!(guaranteed, format!("kubepods/pod{UID}"));
        assert_eq!(
            container(cgroupfs, &guaranteed, "ab12"),
            format!("kubepods/pod{UID}/ab12")
        );
    }
}
