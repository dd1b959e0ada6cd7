//! Names, ids and priorities of a scenario's pods (written out or from a manifest): which
//! names Kubernetes accepts, the ids a cluster would give a pod and its containers, derived
//! from the pod so that every run of it names the same cgroups, and the priority a pod's class
//! gives it.
//!
//! - A pod's uid, when the manifest has none, is sha256 of `<namespace>/<Kind>/<name>`
//!   (namespace `default` when unset) shaped as the API server's uids are: a lowercase
//!   version-4 UUID (`8-4-4-4-12` hex digits, version nibble 4, variant bits `10`).
//! - A container's id is the hex of sha256 of `<pod uid>/<container name>`: 64 hex digits, as
//!   containerd's ids are.

use sha2::{Digest, Sha256};

/// Whether `name` is a DNS label (RFC 1123), as Kubernetes requires of container names: 1 to 63
/// lowercase alphanumerics or `-`, starting and ending with an alphanumeric.
pub fn is_dns_label(name: &str) -> bool {
    let alphanumeric = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let bytes = name.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes.iter().all(|&c| alphanumeric(c) || c == b'-')
        && alphanumeric(bytes[0])
        && alphanumeric(bytes[bytes.len() - 1])
}

/// `name` made a DNS label, for the fix of a name that is not one.
pub fn as_dns_label(name: &str) -> String {
    let lowered: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let trimmed = lowered.trim_matches('-');
    let label: String = trimmed.chars().take(63).collect();
    if label.is_empty() {
        "app".to_string()
    } else {
        label.trim_end_matches('-').to_string()
    }
}

/// The uid of a pod whose manifest gives none.
pub fn derived_pod_uid(namespace: Option<&str>, kind: &str, name: &str) -> String {
    let namespace = namespace.unwrap_or("default");
    let digest = Sha256::digest(format!("{namespace}/{kind}/{name}").as_bytes());
    let mut bytes: [u8; 16] = digest[..16].try_into().expect("sha256 has 32 bytes");
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The runtime's id of a container of the pod `uid`.
pub fn container_id(uid: &str, container: &str) -> String {
    hex::encode(Sha256::digest(format!("{uid}/{container}").as_bytes()))
}

/// The priority of the two system classes, as the Priority admission plugin
/// (`plugin/pkg/admission/priority`) resolves them: `SystemCriticalPriority` of
/// `pkg/apis/scheduling/types.go` (2000000000) for `system-cluster-critical`, 1000 more for
/// `system-node-critical`.
const SYSTEM_CLUSTER_CRITICAL: i32 = 2_000_000_000;
const SYSTEM_NODE_CRITICAL: i32 = SYSTEM_CLUSTER_CRITICAL + 1000;

/// A pod's priority: its own `priority` when it has one, else its class's (0 for none).
pub fn priority(own: Option<i32>, class: Option<&str>) -> i32 {
    own.unwrap_or(match class {
        Some("system-node-critical") => SYSTEM_NODE_CRITICAL,
        Some("system-cluster-critical") => SYSTEM_CLUSTER_CRITICAL,
        _ => 0,
    })
}

/// Whether `text` is shaped as a UUID (`8-4-4-4-12` hex digits, either case): what the
/// kubelet puts into a pod's cgroup name.
pub fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, len)| group.len() == len && group.bytes().all(|c| c.is_ascii_hexdigit()))
}
