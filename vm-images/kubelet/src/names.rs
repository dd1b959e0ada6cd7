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

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "0c1f3c1e-7c2a-4d8e-9b1a-3f6d2e5a7b90";

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
