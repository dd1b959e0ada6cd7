//! Building the Go workloads (`vm-images/go/<name>/`) with a catalogue toolchain: static
//! (CGO_ENABLED=0), without network (GOPROXY=off; the programs use the standard library only),
//! and cached by the toolchain's package sha256s and the sources, so a warm lab builds nothing.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use rsslab_wire::RunSpec;

use crate::catalogue::go::go_catalogue;
use crate::supply::cache::Cache;
use crate::supply::toolchain::{GoRoot, prepare_toolchain};

/// Cache subdirectory of built Go programs: `go-builds/<key>/<program>`.
const BUILDS: &str = "go-builds";

/// Cache subdirectory of the go command's own build cache and GOPATH.
const GO_HOME: &str = "go-home";

/// The directory of a Go workload's sources in the repository (`vm-images/go/heap-churn`).
pub fn go_source_dir(program: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../vm-images/go")).join(program)
}

/// Prepares the toolchains and builds the Go workloads the runs need: guest path
/// (`/bin/go-heap-churn-1.15`) -> built binary. The archive's address is only needed for
/// toolchains not cached yet.
pub fn build_go_programs<'a>(
    cache: &Cache,
    specs: impl IntoIterator<Item = &'a RunSpec>,
) -> Result<BTreeMap<String, PathBuf>> {
    let mut wanted = BTreeMap::new();
    for process in specs.into_iter().flat_map(|spec| &spec.processes) {
        if let (true, Some(go)) = (process.workload.is_go(), &process.go) {
            wanted.insert(process.program(), (process.workload.name(), go.clone()));
        }
    }
    let mut goroots: BTreeMap<String, GoRoot> = BTreeMap::new();
    let mut built = BTreeMap::new();
    for (guest_path, (workload, go)) in wanted {
        if !goroots.contains_key(&go) {
            let toolchain = go_catalogue()
                .get(&go)
                .with_context(|| format!("Go toolchain {go} is not in the catalogue"))?;
            let base_url = crate::supply::fetch::archive_base_url();
            let root = prepare_toolchain(cache, base_url.as_deref().unwrap_or_default(), toolchain)
                .map_err(|error| match &base_url {
                    Err(no_archive) => error.context(format!("{no_archive:#}")),
                    Ok(_) => error,
                })
                .with_context(|| format!("preparing Go toolchain {go}"))?;
            goroots.insert(go.clone(), root);
        }
        let program = workload.strip_prefix("go-").unwrap_or(workload);
        let binary = build_go_workload(cache, &goroots[&go], &go_source_dir(program))
            .with_context(|| format!("building {workload} with Go {go}"))?;
        built.insert(guest_path, binary);
    }
    Ok(built)
}

/// Builds the Go program in `source_dir` with `goroot` (or reuses the cached build) and returns
/// the static binary.
pub fn build_go_workload(cache: &Cache, goroot: &GoRoot, source_dir: &Path) -> Result<PathBuf> {
    let sources = source_files(source_dir)?;
    let key = build_key(goroot, &sources)?;
    let name = source_dir
        .file_name()
        .and_then(|name| name.to_str())
        .context("source directory has no name")?;
    let out_dir = cache.subdir(BUILDS)?.join(&key[..32]);
    let binary = out_dir.join(name);
    if binary.is_file() {
        return Ok(binary);
    }
    fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let temp = out_dir.join(format!(".tmp-{name}-{}", std::process::id()));
    let home = cache.subdir(GO_HOME)?;
    let go = goroot.go_binary();
    let command = duct::cmd!(&go, "build", "-o", &temp, ".")
        .dir(source_dir)
        .full_env(go_env(goroot, &home))
        .stdout_capture()
        .stderr_capture()
        .unchecked();
    tracing::debug!(go = %goroot.id, "running {} build -o {} . in {}", go.display(), temp.display(), source_dir.display());
    let started = Instant::now();
    let output = command
        .run()
        .with_context(|| format!("running {}", go.display()))?;
    if !output.status.success() {
        fs::remove_file(&temp).ok();
        bail!(
            "go build of {} with Go {} failed ({}):\n{}{}",
            source_dir.display(),
            goroot.id,
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    fs::rename(&temp, &binary)
        .with_context(|| format!("renaming {} to {}", temp.display(), binary.display()))?;
    tracing::info!(go = %goroot.id, "built {name} in {:.1}s", started.elapsed().as_secs_f64());
    Ok(binary)
}

/// The whole environment of `go build`: nothing from the host's but PATH.
fn go_env(goroot: &GoRoot, home: &Path) -> Vec<(String, String)> {
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
    let home_text = home.display().to_string();
    vec![
        ("PATH".into(), path),
        ("HOME".into(), home_text.clone()),
        ("GOROOT".into(), goroot.root.display().to_string()),
        ("GOCACHE".into(), format!("{home_text}/cache-{}", goroot.id)),
        ("GOPATH".into(), format!("{home_text}/path")),
        ("GOENV".into(), "off".into()),
        ("GOPROXY".into(), "off".into()),
        ("GOTOOLCHAIN".into(), "local".into()),
        ("GOFLAGS".into(), "-trimpath".into()),
        ("CGO_ENABLED".into(), "0".into()),
        ("GOOS".into(), "linux".into()),
        ("GOARCH".into(), "amd64".into()),
    ]
}

/// The files a build reads: `*.go`, `go.mod`, `go.sum` directly in `dir`, sorted by name.
fn source_files(dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_file()
            && (name.ends_with(".go") || name == "go.mod" || name == "go.sum")
        {
            let data = fs::read(entry.path())
                .with_context(|| format!("reading {}", entry.path().display()))?;
            files.push((name, data));
        }
    }
    if !files.iter().any(|(name, _)| name == "go.mod") {
        bail!("{} has no go.mod", dir.display());
    }
    files.sort();
    Ok(files)
}

/// sha256 over the toolchain's package sha256s and every source file's name and content.
fn build_key(goroot: &GoRoot, sources: &[(String, Vec<u8>)]) -> Result<String> {
    let mut hasher = Sha256::new();
    hasher.update(b"rsslab go build v1\n");
    for sha in &goroot.package_sha256s {
        hasher.update(sha.as_bytes());
        hasher.update(b"\n");
    }
    for (name, data) in sources {
        hasher.update(name.as_bytes());
        hasher.update(b"\0");
        hasher.update((data.len() as u64).to_le_bytes());
        hasher.update(data);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn goroot(shas: &[&str]) -> GoRoot {
        GoRoot {
            id: "1.15".into(),
            root: PathBuf::from("/nonexistent"),
            package_sha256s: shas.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn the_build_key_follows_toolchain_and_sources() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("go.mod"), "module x\n\ngo 1.15\n").unwrap();
        fs::write(dir.path().join("main.go"), "package main\nfunc main() {}\n").unwrap();
        fs::write(dir.path().join("README"), "not a source").unwrap();
        let sources = source_files(dir.path()).unwrap();
        assert_eq!(
            sources.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["go.mod", "main.go"]
        );
        let key = build_key(&goroot(&["a", "b"]), &sources).unwrap();
        assert_eq!(key, build_key(&goroot(&["a", "b"]), &sources).unwrap());
        assert_ne!(key, build_key(&goroot(&["a", "c"]), &sources).unwrap());
        fs::write(dir.path().join("README"), "changed, but not a source").unwrap();
        assert_eq!(
            key,
            build_key(&goroot(&["a", "b"]), &source_files(dir.path()).unwrap()).unwrap()
        );
        fs::write(
            dir.path().join("main.go"),
            "package main\nfunc main() { }\n",
        )
        .unwrap();
        assert_ne!(
            key,
            build_key(&goroot(&["a", "b"]), &source_files(dir.path()).unwrap()).unwrap()
        );
    }

    #[test]
    fn a_cached_build_is_reused_without_a_toolchain() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("prog");
        fs::create_dir(&src).unwrap();
        fs::write(src.join("go.mod"), "module x\n").unwrap();
        let cache = Cache::at(dir.path().join("cache"));
        let root = goroot(&["a"]);
        let key = build_key(&root, &source_files(&src).unwrap()).unwrap();
        let cached = cache.subdir(BUILDS).unwrap().join(&key[..32]).join("prog");
        fs::create_dir_all(cached.parent().unwrap()).unwrap();
        fs::write(&cached, b"binary").unwrap();
        assert_eq!(build_go_workload(&cache, &root, &src).unwrap(), cached);
        let error = format!(
            "{:#}",
            build_go_workload(&cache, &goroot(&["b"]), &src).unwrap_err()
        );
        assert!(error.contains("/nonexistent/bin/go"), "{error}");
    }

    #[test]
    fn sources_need_a_go_mod() {
        let dir = tempfile::tempdir().unwrap();
        let error = format!("{:#}", source_files(dir.path()).unwrap_err());
        assert!(error.contains("no go.mod"), "{error}");
    }
}
