//! Names and ids of a manifest's pods: which names Kubernetes accepts, and the ids a cluster
//! would give a pod and its containers, derived from the manifest so that every run of it
//! names the same cgroups.
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
