//! The checks of user programs (`exec` and `go-source`): the files they bring from the host
//! exist and can be read, the program is an ELF program or a script with `#!` whose
//! libraries can all be found, everything fits the guest's memory, the output patterns
//! compile, and a Go module can be built as asked. Host paths are made absolute here
//! (relative to the scenario file), so the run spec does not depend on the working directory.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use rsslab_wire::spec::is_plain_name;
use rsslab_wire::units::Bytes;
use rsslab_wire::workload::{DeclaredReports, GoSourceArgs, PROCESS_METRICS};
use rsslab_wire::{ExecArgs, Workload};

use super::diag::Diagnostic;
use super::guest_files::{program_host, provided_by, resolve_guest_files};
use super::raw::ProcessEntry;
use crate::elf::program_kind;

/// Guest paths a scenario may not write: the agent's, and the kernel's file systems.
const RESERVED: &[&str] = &[
    "/init",
    "/rsslab",
    "/proc",
    "/sys",
    "/dev",
    rsslab_wire::BIN_DIR,
    rsslab_wire::USER_BUILDS_DIR,
];
/// Phase names the agent gives every process itself.
const AGENT_PHASES: &[&str] = &["started", "ended"];
/// The share of guest memory a process's files may take (they live in RAM: the initramfs
/// is unpacked into it, and the compressed archive is held while it is).
const FILES_SHARE: u64 = 2;

/// Checks an `exec` or `go-source` workload and resolves its host paths; other workloads
/// pass untouched.
pub fn check_program(
    entry: &ProcessEntry,
    workload: &mut Workload,
    go: Option<&str>,
    base_dir: &Path,
    memory: Bytes,
    diags: &mut Vec<Diagnostic>,
) {
    match workload {
        Workload::Exec(args) => check_exec(entry, args, base_dir, memory, diags),
        Workload::GoSource(args) => {
            check_go_source(entry, args, go, base_dir, diags);
            let files_ok = check_files(entry, &mut args.files, base_dir, diags);
            check_phases(entry, &args.phases, diags);
            check_reports(entry, &args.reports, diags);
            if files_ok {
                match resolve_guest_files(&args.files, None) {
                    Ok(files) => check_size(entry, files.bytes(), memory, diags),
                    Err(error) => diags.push(
                        entry
                            .arg_error("files", format!("cannot be brought into the guest: {error:#}"))
                            .help("add what is missing through files = { \"/guest/path\" = \"host/path\" }"),
                    ),
                }
            }
        }
        _ => {}
    }
}

fn check_exec(
    entry: &ProcessEntry,
    args: &mut ExecArgs,
    base_dir: &Path,
    memory: Bytes,
    diags: &mut Vec<Diagnostic>,
) {
    let files_ok = check_files(entry, &mut args.files, base_dir, diags);
    check_phases(entry, &args.phases, diags);
    check_reports(entry, &args.reports, diags);
    let Some(program) = args.command.first().cloned() else {
        diags.push(
            entry
                .arg_error("command", "is empty".into())
                .help("write the program's path and its arguments: command = [\"/usr/bin/stress-ng\", \"--vm\", \"1\"]"),
        );
        return;
    };
    if !program.starts_with('/') {
        let on_host = ["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"]
            .iter()
            .map(|dir| format!("{dir}/{program}"))
            .find(|path| Path::new(path).is_file());
        diags.push(
            entry
                .entry_error("command", "0", format!("is `{program}`, not an absolute path"))
                .label("the guest has no search path for programs")
                .help(match on_host {
                    Some(path) => format!("write command = [\"{path}\", ...] (where the host has it)"),
                    None => "write the program's path in the guest, e.g. \"/opt/app/server\", and bring it with files = { \"/opt/app/server\" = \"build/server\" }".into(),
                }),
        );
        return;
    }
    if !files_ok {
        return;
    }
    let host = program_host(&args.files, &program);
    let from = if provided_by(&args.files, &program).is_some() {
        "from `files`"
    } else {
        "from the same path on the host"
    };
    if let Err(error) = program_kind(&host) {
        diags.push(
            entry
                .entry_error("command", "0", format!("cannot run `{program}` ({from}): {error:#}"))
                .help(if host.exists() {
                    "run a program: an ELF executable, or a script whose first line is #! and its interpreter (or name the interpreter: command = [\"/bin/sh\", \"script.sh\"])".to_owned()
                } else {
                    format!("bring it into the guest: files = {{ \"{program}\" = \"path/on/host\" }} (relative to the scenario file)")
                }),
        );
        return;
    }
    if !is_executable(&host) {
        diags.push(
            entry
                .entry_error(
                    "command",
                    "0",
                    format!("`{program}` ({from}: {}) is not executable", host.display()),
                )
                .help(format!("chmod +x {}", host.display())),
        );
        return;
    }
    match resolve_guest_files(&args.files, Some((&program, &host))) {
        Ok(files) => check_size(entry, files.bytes(), memory, diags),
        Err(error) => diags.push(
            entry
                .entry_error(
                    "command",
                    "0",
                    format!("cannot bring `{program}` into the guest: {error:#}"),
                )
                .help("add what is missing through files = { \"/guest/path\" = \"host/path\" }"),
        ),
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|metadata| metadata.permissions().mode() & 0o111 != 0)
}

/// `files`: absolute guest paths outside the agent's, host paths that exist and can be read;
/// host paths become absolute. False if anything is wrong (all reported).
fn check_files(
    entry: &ProcessEntry,
    files: &mut BTreeMap<String, String>,
    base_dir: &Path,
    diags: &mut Vec<Diagnostic>,
) -> bool {
    let before = diags.len();
    let mut resolved = BTreeMap::new();
    for (guest, host) in files.iter() {
        if let Some(problem) = guest_path_problem(guest) {
            diags.push(
                entry
                    .entry_error("files", guest, format!("names the guest path `{guest}`, which {problem}"))
                    .help("write an absolute guest path such as \"/opt/app\" or \"/etc/app.toml\" as the key, the host path as the value"),
            );
            continue;
        }
        let host_path = absolute(base_dir, host);
        if let Err(error) = std::fs::metadata(&host_path).and_then(|metadata| {
            if metadata.is_dir() {
                std::fs::read_dir(&host_path).map(drop)
            } else {
                std::fs::File::open(&host_path).map(drop)
            }
        }) {
            diags.push(
                entry
                    .entry_error("files", guest, format!("cannot read `{}`: {error}", host_path.display()))
                    .help(format!(
                        "a relative host path is relative to the scenario file's directory ({}); a directory is copied whole",
                        display_dir(base_dir)
                    )),
            );
            continue;
        }
        resolved.insert(guest.clone(), host_path.to_string_lossy().into_owned());
    }
    if diags.len() == before {
        *files = resolved;
        true
    } else {
        false
    }
}

fn display_dir(dir: &Path) -> String {
    if dir.as_os_str().is_empty() {
        ".".into()
    } else {
        dir.display().to_string()
    }
}

/// Why `guest` cannot be written by a scenario, if it cannot.
fn guest_path_problem(guest: &str) -> Option<String> {
    let path = Path::new(guest);
    if !path.is_absolute() {
        return Some("is not absolute".into());
    }
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Some("goes up with `..`".into());
    }
    if guest.trim_end_matches('/').is_empty() {
        return Some("is the root".into());
    }
    RESERVED
        .iter()
        .find(|reserved| path.starts_with(reserved))
        .map(|reserved| format!("is under `{reserved}`, which rsslab's agent owns"))
}

/// `base_dir/path` unless `path` is absolute.
fn absolute(base_dir: &Path, path: &str) -> PathBuf {
    let joined = base_dir.join(path);
    if joined.is_absolute() {
        joined
    } else {
        std::env::current_dir().map_or(joined.clone(), |cwd| cwd.join(&joined))
    }
}

/// The files must leave the guest room to run.
fn check_size(entry: &ProcessEntry, bytes: u64, memory: Bytes, diags: &mut Vec<Diagnostic>) {
    let allowed = memory.0 / FILES_SHARE;
    if bytes > allowed {
        diags.push(
            entry
                .arg_error(
                    "files",
                    format!(
                        "with the program and its libraries comes to {}, more than half of the guest's memory ({memory})",
                        Bytes(bytes)
                    ),
                )
                .label("the guest holds its files in RAM")
                .help(format!(
                    "give the VM more memory ([vm] memory = \"{}\") or copy less",
                    Bytes((bytes * FILES_SHARE).next_power_of_two())
                )),
        );
    }
}

/// `phases`: names like the built-in phases', patterns that compile.
fn check_phases(
    entry: &ProcessEntry,
    phases: &BTreeMap<String, String>,
    diags: &mut Vec<Diagnostic>,
) {
    for (phase, pattern) in phases {
        if let Some(problem) = name_problem(phase) {
            diags.push(
                entry
                    .entry_error(
                        "phases",
                        phase,
                        format!("names the phase `{phase}`, which {problem}"),
                    )
                    .help("write e.g. phases = { ready = \"listening on\" }"),
            );
        }
        if let Err(error) = regex_lite::Regex::new(pattern) {
            diags.push(
                entry
                    .entry_error("phases", phase, format!("is not a valid pattern: {error}"))
                    .help("write a regular expression (Rust regex syntax) that matches the line, e.g. \"listening on [0-9.:]+\""),
            );
        }
    }
}

/// `reports`: phase and metric names that cannot be confused with the agent's own.
fn check_reports(entry: &ProcessEntry, reports: &DeclaredReports, diags: &mut Vec<Diagnostic>) {
    for phase in &reports.phases {
        if let Some(problem) = name_problem(phase) {
            diags.push(
                entry
                    .arg_error(
                        "reports",
                        format!("names the phase `{phase}`, which {problem}"),
                    )
                    .help("write the phases the program reports as {\"phase\": \"NAME\"} lines"),
            );
        }
    }
    for metric in &reports.metrics {
        let problem = if PROCESS_METRICS.contains(&metric.as_str()) {
            Some("the agent samples itself".to_owned())
        } else {
            name_problem(metric)
        };
        if let Some(problem) = problem {
            diags.push(
                entry
                    .arg_error("reports", format!("names the metric `{metric}`, which {problem}"))
                    .help("name the metrics the program reports as {\"metrics\": {\"NAME\": N}} lines, in lowercase with `_`"),
            );
        }
    }
}

fn name_problem(name: &str) -> Option<String> {
    if AGENT_PHASES.contains(&name) {
        return Some("the agent reports for every process".into());
    }
    (!is_plain_name(name)).then(|| "is not made of lowercase letters, digits, `_` and `-`".into())
}

/// `go-source`: a module directory (absolute afterwards), flags `go build` takes, a
/// toolchain that has what the flags need.
fn check_go_source(
    entry: &ProcessEntry,
    args: &mut GoSourceArgs,
    go: Option<&str>,
    base_dir: &Path,
    diags: &mut Vec<Diagnostic>,
) {
    let source = absolute(base_dir, &args.source);
    match std::fs::canonicalize(&source) {
        Ok(dir) if dir.join("go.mod").is_file() => {
            args.source = dir.to_string_lossy().into_owned();
        }
        Ok(dir) => diags.push(
            entry
                .arg_error("source", format!("is `{}`, which holds no go.mod", dir.display()))
                .help("name the Go module's directory (the one with go.mod), relative to the scenario file"),
        ),
        Err(error) => diags.push(
            entry
                .arg_error("source", format!("cannot be read: {}: {error}", source.display()))
                .help(format!(
                    "name the Go module's directory, relative to the scenario file's directory ({})",
                    display_dir(base_dir)
                )),
        ),
    }
    let package = Path::new(&args.package);
    if package.is_absolute()
        || package
            .components()
            .any(|c| matches!(c, Component::ParentDir))
    {
        diags.push(
            entry
                .arg_error("package", format!("is `{}`, outside the module", args.package))
                .help("write the package's directory relative to the module, e.g. package = \"./cmd/server\""),
        );
    }
    for (index, flag) in args.build_flags.iter().enumerate() {
        if flag == "-o" || flag.starts_with("-o=") {
            diags.push(
                entry
                    .entry_error(
                        "build_flags",
                        &index.to_string(),
                        "sets the output, which rsslab chooses".into(),
                    )
                    .help("remove -o: the program goes into the guest under its module's name"),
            );
        }
    }
    let race = args.build_flags.iter().any(|flag| flag == "-race");
    if race && args.cgo == Some(false) {
        diags.push(
            entry
                .arg_error("cgo", "is false, but -race needs cgo".into())
                .help("remove cgo = false (a -race build is made with CGO_ENABLED=1)"),
        );
    }
    let toolchain = go.and_then(|id| crate::catalogue::go::go_catalogue().get(id));
    if let Some(toolchain) = toolchain.filter(|toolchain| race && !toolchain.race) {
        diags.push(
            entry
                .arg_error(
                    "build_flags",
                    format!(
                        "asks for -race, but Go {} as Debian ships it has no race runtime",
                        toolchain.id
                    ),
                )
                .help("pick a toolchain whose catalogue entry says race = true (vm-images/go-toolchains.toml)"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_paths_the_agent_owns_are_refused() {
        assert_eq!(guest_path_problem("/opt/app"), None);
        assert_eq!(guest_path_problem("/etc/app.toml"), None);
        assert!(
            guest_path_problem("opt/app")
                .unwrap()
                .contains("not absolute")
        );
        assert!(guest_path_problem("/opt/../init").unwrap().contains(".."));
        assert!(guest_path_problem("/").unwrap().contains("root"));
        assert!(guest_path_problem("/bin/sh").unwrap().contains("`/bin`"));
        assert!(
            guest_path_problem("/rsslab/run.json")
                .unwrap()
                .contains("agent")
        );
        assert!(
            guest_path_problem("/opt/rsslab/x")
                .unwrap()
                .contains("agent")
        );
        assert_eq!(
            guest_path_problem("/opt/rsslabs"),
            None,
            "a prefix of a name is not under it"
        );
    }

    #[test]
    fn a_go_source_process_whose_files_cannot_be_brought_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let module = dir.path().join("module");
        std::fs::create_dir(&module).unwrap();
        std::fs::write(module.join("go.mod"), "module demo\n").unwrap();
        let tool = dir.path().join("tool.sh");
        std::fs::write(&tool, "#!/nonexistent/interpreter\n").unwrap();
        std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let path = dir.path().join("demo.toml");
        let text = r#"[scenario]
id = "demo"
title = "Demo"
[sample]
duration = "10s"
[[process]]
name = "service"
workload = "go-source"
go = "1.24"
args = { source = "module", files = { "/opt/tool.sh" = "tool.sh" } }
"#;
        let error = crate::scenario::parse_scenario(&path, text, &["6.1".to_owned()])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`process[0].args.files` cannot be brought into the guest"),
            "{error}"
        );
        assert!(error.contains("/nonexistent/interpreter"), "{error}");
    }

    #[test]
    fn phase_and_metric_names() {
        assert_eq!(name_problem("ready"), None);
        assert_eq!(name_problem("gc_done-2"), None);
        assert!(name_problem("started").unwrap().contains("agent"));
        assert!(name_problem("Ready").unwrap().contains("lowercase"));
        assert!(name_problem("").is_some());
    }
}
