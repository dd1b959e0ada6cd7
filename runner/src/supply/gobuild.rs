//! Building Go programs with a catalogue toolchain, offline (GOPROXY=off, GOTOOLCHAIN=local):
//! the built-in Go workloads (`vm-images/go/<name>/`, standard library only, static with
//! CGO_ENABLED=0) and the user's modules of `go-source` processes (vendored or without
//! dependencies, with their `build_flags`; cgo on when the flags need it, e.g. `-race`).
//!
//! Builds are cached by the toolchain's package sha256s, the source tree, the package, the
//! flags and cgo (`go-builds/<key>/`), with the build log beside the program, so a warm lab
//! builds nothing. A user's module that does not build is bad input (exit 2) with the
//! compiler's message.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use sha2::{Digest, Sha256};

use rsslab_wire::{ProcessSpec, RunSpec, Workload};

use crate::catalogue::go::go_catalogue;
use crate::exit::Failure;
use crate::supply::cache::Cache;
use crate::supply::toolchain::{GoRoot, prepare_toolchain};

/// Cache subdirectory of built Go programs: `go-builds/<key>/<program>`.
const BUILDS: &str = "go-builds";

/// Cache subdirectory of the go command's own build cache and GOPATH.
const GO_HOME: &str = "go-home";

/// The build log beside each built program.
pub const BUILD_LOG: &str = "build.log";

/// The directory of a lab's output that holds the build logs of its user modules.
pub const LAB_BUILD_LOGS: &str = "go-builds";

/// The directory of a Go workload's sources in the repository (`vm-images/go/heap-churn`).
pub fn go_source_dir(program: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../vm-images/go")).join(program)
}

/// One Go build a plan needs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GoBuild {
    /// Toolchain id.
    pub go: String,
    /// The module directory.
    pub source: PathBuf,
    /// The package to build, relative to the module (`.`).
    pub package: String,
    pub flags: Vec<String>,
    pub cgo: bool,
    /// A user's module (its failures are bad input) rather than a built-in workload.
    pub user: bool,
}

impl GoBuild {
    /// The build `process` runs, if it runs a Go program.
    pub fn of(process: &ProcessSpec) -> Option<GoBuild> {
        let go = process.go.clone()?;
        match &process.workload {
            Workload::GoSource(args) => Some(GoBuild {
                go,
                source: PathBuf::from(&args.source),
                package: args.package.clone(),
                flags: args.build_flags.clone(),
                cgo: args.cgo_enabled(),
                user: true,
            }),
            workload if workload.is_go() => {
                let name = workload.name();
                let source = go_source_dir(name.strip_prefix("go-").unwrap_or(name));
                Some(GoBuild::builtin(go, source))
            }
            _ => None,
        }
    }

    /// A built-in Go workload's build: the module in `source`, static, no flags.
    pub fn builtin(go: String, source: PathBuf) -> GoBuild {
        GoBuild {
            go,
            source,
            package: ".".into(),
            flags: Vec::new(),
            cgo: false,
            user: false,
        }
    }
}

/// Prepares the toolchains and makes every Go build the runs need: build -> program. The
/// archive's address is only needed for toolchains not cached yet.
pub fn build_go_programs<'a>(
    cache: &Cache,
    specs: impl IntoIterator<Item = &'a RunSpec>,
) -> Result<BTreeMap<GoBuild, PathBuf>, Failure> {
    let wanted: std::collections::BTreeSet<GoBuild> = specs
        .into_iter()
        .flat_map(|spec| &spec.processes)
        .filter_map(GoBuild::of)
        .collect();
    let mut goroots: BTreeMap<String, GoRoot> = BTreeMap::new();
    let mut built = BTreeMap::new();
    for build in wanted {
        if !goroots.contains_key(&build.go) {
            goroots.insert(build.go.clone(), goroot(cache, &build.go)?);
        }
        let program = build_go_program(cache, &goroots[&build.go], &build).map_err(|error| {
            let error = error.context(format!(
                "building {} with Go {}",
                build.source.display(),
                build.go
            ));
            if build.user && error.downcast_ref::<CompileError>().is_some() {
                Failure::bad_input(error)
            } else {
                Failure::infrastructure(error)
            }
        })?;
        built.insert(build, program);
    }
    Ok(built)
}

/// The toolchain `go`, fetched and unpacked (or from the cache).
fn goroot(cache: &Cache, go: &str) -> Result<GoRoot, Failure> {
    let toolchain = go_catalogue()
        .get(go)
        .ok_or_else(|| Failure::bad_input(anyhow!("Go toolchain {go} is not in the catalogue")))?;
    let base_url = crate::supply::fetch::archive_base_url();
    prepare_toolchain(cache, base_url.as_deref().unwrap_or_default(), toolchain)
        .map_err(|error| match &base_url {
            Err(no_archive) => error.context(format!("{no_archive:#}")),
            Ok(_) => error,
        })
        .with_context(|| format!("preparing Go toolchain {go}"))
        .map_err(Failure::infrastructure)
}

/// The compiler refused the sources: the message is the compiler's.
#[derive(Debug, thiserror::Error)]
#[error("go build failed ({status}); the log is {log}:\n{output}")]
pub struct CompileError {
    status: String,
    log: String,
    output: String,
}

/// Builds the Go workload in `source_dir` statically (or reuses the cached build).
pub fn build_go_workload(cache: &Cache, goroot: &GoRoot, source_dir: &Path) -> Result<PathBuf> {
    let build = GoBuild::builtin(goroot.id.clone(), source_dir.to_owned());
    build_go_program(cache, goroot, &build)
}

/// Makes `build` with `goroot` (or reuses the cached program) and returns the program.
pub fn build_go_program(cache: &Cache, goroot: &GoRoot, build: &GoBuild) -> Result<PathBuf> {
    let source_dir = &build.source;
    let sources = source_files(source_dir)?;
    let key = build_key(goroot, build, &sources)?;
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
    if build.cgo {
        check_c_compiler()?;
    }
    let temp = out_dir.join(format!(".tmp-{name}-{}", std::process::id()));
    let home = cache.subdir(GO_HOME)?;
    let go = goroot.go_binary();
    let mut args: Vec<String> = vec!["build".into()];
    args.extend(build.flags.iter().cloned());
    args.extend([
        "-o".into(),
        temp.display().to_string(),
        build.package.clone(),
    ]);
    let env = go_env(goroot, &home, build.cgo);
    let command = duct::cmd(&go, &args)
        .dir(source_dir)
        .full_env(env.clone())
        .stderr_to_stdout()
        .stdout_capture()
        .unchecked();
    tracing::debug!(go = %goroot.id, "running {} {} in {}", go.display(), args.join(" "), source_dir.display());
    let started = Instant::now();
    let output = command
        .run()
        .with_context(|| format!("running {}", go.display()))?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let log = out_dir.join(BUILD_LOG);
    let env_text: String = env
        .iter()
        .filter(|(name, _)| name.starts_with("GO") || name.starts_with("CGO"))
        .map(|(name, value)| format!("{name}={value}\n"))
        .collect();
    fs::write(
        &log,
        format!(
            "# in {}\n{env_text}$ go {}\n{text}# {} in {:.1}s\n",
            source_dir.display(),
            args.join(" "),
            output.status,
            started.elapsed().as_secs_f64()
        ),
    )
    .with_context(|| format!("writing {}", log.display()))?;
    if !output.status.success() {
        fs::remove_file(&temp).ok();
        return Err(CompileError {
            status: output.status.to_string(),
            log: log.display().to_string(),
            output: text,
        }
        .into());
    }
    fs::rename(&temp, &binary)
        .with_context(|| format!("renaming {} to {}", temp.display(), binary.display()))?;
    tracing::info!(go = %goroot.id, "built {name} in {:.1}s", started.elapsed().as_secs_f64());
    Ok(binary)
}

/// Copies the build log of every user module in `built` into `dir` as
/// `<module>.go<version>.<key>.log`, so a lab's output says how its programs were built.
pub fn copy_build_logs(built: &BTreeMap<GoBuild, PathBuf>, dir: &Path) -> Result<()> {
    for (build, program) in built.iter().filter(|(build, _)| build.user) {
        let build_dir = program
            .parent()
            .context("a built program has a directory")?;
        let key = build_dir
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("build");
        let module = program
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("program");
        let copy = dir.join(format!(
            "{module}.go{}.{}.log",
            build.go,
            &key[..key.len().min(12)]
        ));
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        fs::copy(build_dir.join(BUILD_LOG), &copy).with_context(|| {
            format!(
                "copying the build log of {} to {}",
                program.display(),
                copy.display()
            )
        })?;
    }
    Ok(())
}

/// cgo needs a C compiler on the host.
fn check_c_compiler() -> Result<()> {
    let found = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path)
            .any(|dir| dir.join("gcc").is_file() || dir.join("cc").is_file())
    });
    if !found {
        bail!(
            "this build needs cgo (e.g. for -race) and so a C compiler, but neither gcc nor cc is on PATH: \
             run scripts/install-host-deps.sh (it installs gcc)"
        );
    }
    Ok(())
}

/// The whole environment of `go build`: nothing from the host's but PATH.
fn go_env(goroot: &GoRoot, home: &Path, cgo: bool) -> Vec<(String, String)> {
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
        ("CGO_ENABLED".into(), if cgo { "1" } else { "0" }.into()),
        ("GOOS".into(), "linux".into()),
        ("GOARCH".into(), "amd64".into()),
    ]
}

/// The module's files: every regular file under `dir` (sources, go.mod, go.sum, vendor/,
/// embedded files), by relative path, sorted; `.git` and other dot-directories are skipped.
fn source_files(dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    if !dir.join("go.mod").is_file() {
        bail!("{} has no go.mod", dir.display());
    }
    let mut files = Vec::new();
    collect_files(dir, "", &mut files)?;
    files.sort();
    Ok(files)
}

fn collect_files(dir: &Path, prefix: &str, files: &mut Vec<(String, Vec<u8>)>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let relative = format!("{prefix}{name}");
        let kind = entry.file_type()?;
        if kind.is_dir() && !name.starts_with('.') {
            collect_files(&entry.path(), &format!("{relative}/"), files)?;
        } else if kind.is_file() {
            let data = fs::read(entry.path())
                .with_context(|| format!("reading {}", entry.path().display()))?;
            files.push((relative, data));
        }
    }
    Ok(())
}

/// sha256 over the toolchain's package sha256s, the build's package, flags and cgo, and every
/// source file's name and content.
fn build_key(goroot: &GoRoot, build: &GoBuild, sources: &[(String, Vec<u8>)]) -> Result<String> {
    let mut hasher = Sha256::new();
    hasher.update(b"rsslab go build v2\n");
    for sha in &goroot.package_sha256s {
        hasher.update(sha.as_bytes());
        hasher.update(b"\n");
    }
    let settings = serde_json::json!({
        "package": build.package,
        "flags": build.flags,
        "cgo": build.cgo,
    });
    hasher.update(settings.to_string().as_bytes());
    hasher.update(b"\n");
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

    fn build(source: &Path, flags: &[&str]) -> GoBuild {
        GoBuild {
            go: "1.15".into(),
            source: source.to_owned(),
            package: ".".into(),
            flags: flags.iter().map(|flag| (*flag).to_owned()).collect(),
            cgo: flags.contains(&"-race"),
            user: true,
        }
    }

    #[test]
    fn the_build_key_follows_toolchain_sources_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path();
        fs::write(src.join("go.mod"), "module x\n\ngo 1.15\n").unwrap();
        fs::write(src.join("main.go"), "package main\nfunc main() {}\n").unwrap();
        fs::create_dir_all(src.join("vendor/y")).unwrap();
        fs::write(src.join("vendor/y/y.go"), "package y\n").unwrap();
        fs::create_dir_all(src.join(".git")).unwrap();
        fs::write(src.join(".git/HEAD"), "ref: main\n").unwrap();
        let sources = source_files(src).unwrap();
        assert_eq!(
            sources.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["go.mod", "main.go", "vendor/y/y.go"],
            "the whole tree but dot-directories"
        );
        let plain = build(src, &[]);
        let key = build_key(&goroot(&["a", "b"]), &plain, &sources).unwrap();
        assert_eq!(
            key,
            build_key(&goroot(&["a", "b"]), &plain, &sources).unwrap()
        );
        assert_ne!(
            key,
            build_key(&goroot(&["a", "c"]), &plain, &sources).unwrap()
        );
        let race = build(src, &["-race"]);
        assert_ne!(
            key,
            build_key(&goroot(&["a", "b"]), &race, &sources).unwrap()
        );
        fs::write(src.join(".git/HEAD"), "ref: other\n").unwrap();
        assert_eq!(
            key,
            build_key(&goroot(&["a", "b"]), &plain, &source_files(src).unwrap()).unwrap()
        );
        fs::write(src.join("vendor/y/y.go"), "package y // changed\n").unwrap();
        assert_ne!(
            key,
            build_key(&goroot(&["a", "b"]), &plain, &source_files(src).unwrap()).unwrap()
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
        let key = build_key(&root, &build(&src, &[]), &source_files(&src).unwrap()).unwrap();
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
