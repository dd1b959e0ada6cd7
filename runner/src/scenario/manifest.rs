//! Pods from a Kubernetes manifest (stub until the reader lands).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use super::diag::Diagnostic;

/// The workload objects of a manifest as pods, and what it says that the lab does not use.
pub struct Manifest {
    pub pods: Vec<ManifestPod>,
    pub warnings: Vec<Diagnostic>,
}

/// One workload object's pod.
pub struct ManifestPod {
    pub object: String,
    pub pod: rsslab_wire::pod::PodSpec,
    pub programs: BTreeMap<String, ContainerProgram>,
    pub span: Range<usize>,
}

/// What a container of a manifest runs.
#[derive(Debug, Clone)]
pub struct ContainerProgram {
    pub command: Option<Vec<String>>,
    pub args: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
}

/// Reads every workload object of the file.
pub fn read_manifest(path: &Path, source: &str) -> Result<Manifest, Vec<Diagnostic>> {
    let _ = (path, source);
    Err(vec![Diagnostic::file_level(
        "",
        "manifests are not read yet",
    )])
}
