//! Inline-TOML tests: one or more per rule of the scenario format.

use std::path::Path;

use rsslab_wire::{Bytes, Millis, Release, Workload};

use super::*;

const BASE: &str = r#"
[scenario]
id = "demo"
title = "Demo"

[vm]
memory = "1GiB"

[sample]
duration = "30s"

[[process]]
name = "service"
workload = "heap-churn"
args = { heap = "400MiB", live = "50MiB" }

[[process]]
name = "balloon"
workload = "balloon"
start = { after = "service", phase = "released", delay = "3s" }
"#;

fn kernels() -> Vec<String> {
    ["5.10", "6.1", "6.12", "7.2"].map(String::from).to_vec()
}

fn parse(source: &str) -> Result<Scenario, ScenarioError> {
    parse_scenario(Path::new("x.toml"), source, &kernels())
}

/// BASE with text replaced (each pattern must occur) and more appended.
fn edit(replace: &[(&str, &str)], append: &str) -> String {
    let mut source = BASE.to_string();
    for (from, to) in replace {
        assert!(source.contains(from), "BASE has no {from:?}");
        source = source.replacen(from, to, 1);
    }
    source + append
}

fn ok(source: &str) -> Scenario {
    parse(source).unwrap_or_else(|error| panic!("{error}"))
}

/// The diagnostics of a bad scenario.
fn errors(source: &str) -> Vec<Diagnostic> {
    match parse(source) {
        Ok(_) => panic!("expected errors in:\n{source}"),
        Err(error) => error.into_diagnostics(),
    }
}

/// Asserts that exactly one diagnostic is about `key` and its message holds `text`.
#[track_caller]
fn assert_error(source: &str, key: &str, text: &str) -> Diagnostic {
    let diags = errors(source);
    let found: Vec<_> = diags.iter().filter(|d| d.key == key).collect();
    let rendered = ScenarioError::new(diags.clone()).to_string();
    assert_eq!(
        found.len(),
        1,
        "one error about `{key}` expected:\n{rendered}"
    );
    let all = format!(
        "{} {:?} {:?} {:?}",
        found[0].message, found[0].label, found[0].help, found[0].notes
    );
    assert!(
        all.contains(text),
        "`{text}` not in the error about `{key}`:\n{rendered}"
    );
    found[0].clone()
}

#[test]
fn base_reads_with_defaults() {
    let scenario = ok(BASE);
    assert_eq!(scenario.id, "demo");
    assert_eq!(scenario.story, "");
    assert_eq!(
        scenario.vm,
        VmConfig {
            memory: Bytes(1 << 30),
            cpus: 1,
            disk: None,
            timeout: Millis::secs(150)
        }
    );
    assert_eq!(scenario.sample_every, Millis(250));
    assert_eq!(scenario.kernels, kernels());
    assert_eq!(scenario.variants.len(), 1);
    assert_eq!(scenario.variants[0].label, "");
    let service = &scenario.processes[0];
    assert!(service.cgroup);
    let Workload::HeapChurn(args) = &service.workload else {
        panic!()
    };
    assert_eq!((args.heap, args.release), (Bytes::mib(400), Release::Free));
    let balloon = &scenario.processes[1];
    assert_eq!(balloon.start.after.as_deref(), Some("service"));
    assert_eq!(balloon.start.delay, Millis::secs(3));
    assert_eq!(
        scenario.sha256,
        hex::encode(Sha256::digest(BASE.as_bytes()))
    );
}

#[test]
fn args_may_be_omitted_when_all_have_defaults() {
    let scenario = ok(BASE);
    let Workload::Balloon(args) = &scenario.processes[1].workload else {
        panic!()
    };
    assert_eq!(args.step, Bytes::mib(100));
}

#[test]
fn missing_required_args_name_the_args_table() {
    let error = assert_error(
        &edit(
            &[("args = { heap = \"400MiB\", live = \"50MiB\" }\n", "")],
            "",
        ),
        "process[0].args.heap",
        "missing key `heap`",
    );
    assert_eq!(error.line, 12, "points at the [[process]] header");
}

#[test]
fn the_builtin_scenario_validates() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/heap-churn-madvise.toml");
    let scenario = load_scenario(&path, &kernels()).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(scenario.id, "heap-churn-madvise");
    assert_eq!(scenario.kernels, kernels(), "runs on every kernel");
    assert_eq!(scenario.vm.memory, Bytes(1 << 30));
    let labels: Vec<_> = scenario.variants.iter().map(|v| v.label.as_str()).collect();
    assert_eq!(labels, ["release=free", "release=dontneed"]);
    assert!(scenario.story.contains("LazyFree"));
    assert_eq!(
        scenario.cgroup.as_ref().map(|c| (c.version, c.memory_max)),
        Some((2, None))
    );
    let balloon = &scenario.processes[1];
    assert!(!balloon.cgroup);
    assert_eq!(balloon.start.phase.as_deref(), Some("released"));
}

#[test]
fn the_vm_test_fixtures_validate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vm");
    if dir.is_dir() {
        load_scenarios(&[dir], &kernels()).unwrap_or_else(|error| panic!("{error}"));
    }
}

// [scenario]

#[test]
fn id_charset() {
    let error = assert_error(
        &edit(&[("id = \"demo\"", "id = \"Demo_1\"")], ""),
        "scenario.id",
        "invalid `scenario.id`",
    );
    assert!(error.help[0].contains("\"demo-1\""), "{error:?}");
}

#[test]
fn title_non_empty() {
    assert_error(
        &edit(&[("title = \"Demo\"", "title = \"  \"")], ""),
        "scenario.title",
        "is empty",
    );
}

#[test]
fn scenario_table_required() {
    assert_error(
        &edit(&[("[scenario]\nid = \"demo\"\ntitle = \"Demo\"\n", "")], ""),
        "scenario",
        "missing table [scenario]",
    );
    assert_error(
        &edit(&[("title = \"Demo\"\n", "")], ""),
        "scenario.title",
        "missing key `title`",
    );
}

#[test]
fn story_is_kept() {
    let scenario = ok(&edit(
        &[("title = \"Demo\"", "title = \"Demo\"\nstory = \"*why*\"")],
        "",
    ));
    assert_eq!(scenario.story, "*why*");
}

#[test]
fn unknown_keys_everywhere() {
    let error = assert_error(
        &edit(&[("memory = \"1GiB\"", "memroy = \"1GiB\"")], ""),
        "vm.memroy",
        "did you mean `memory`?",
    );
    assert_eq!((error.line, error.column), (7, 1));
    assert_error(&edit(&[], "[vmm]\n"), "vmm", "did you mean `vm`?");
    assert_error(
        &edit(&[("delay = \"3s\"", "delay = \"3s\", afterr = \"x\"")], ""),
        "process[1].start.afterr",
        "did you mean `after`?",
    );
    assert_error(
        &edit(&[("live = \"50MiB\"", "lve = \"50MiB\"")], ""),
        "process[0].args.lve",
        "did you mean `live`?",
    );
}

#[test]
fn every_unknown_key_is_reported_at_once() {
    let diags = errors(&edit(
        &[
            ("memory = \"1GiB\"", "memroy = \"1GiB\"\ncpu = 2"),
            ("duration = \"30s\"", "duration = \"30s\"\nevry = \"1s\""),
        ],
        "",
    ));
    let keys: Vec<_> = diags.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(keys, ["vm.memroy", "vm.cpu", "sample.evry"]);
}

#[test]
fn an_unknown_key_that_needs_quotes_is_named_as_toml_writes_it() {
    // Found by the mutated-scenario property: a quote inside a quoted key went into the path
    // unescaped, so the diagnostic's key could not be read back.
    let diags = errors(&edit(
        &[(
            "name = \"balloon\"",
            "name = \"balloon\"\n\"\\\"\" = 1\n\"a.b\" = 2",
        )],
        "",
    ));
    let keys: Vec<_> = diags.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(
        keys,
        [r#"process[1]."\"""#, r#"process[1]."a.b""#],
        "{diags:?}"
    );
    assert_eq!(diags[0].message, "unknown key `\"` in `process[1]`");
}

#[test]
fn a_quoted_key_written_twice_is_named_as_written() {
    let diags = errors(&edit(
        &[],
        "[sysctl]\n\"vm.swappiness\" = 1\n\"vm.swappiness\" = 2\n",
    ));
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].key, r#""vm.swappiness""#);
    assert!(diags[0].message.contains("is written twice"), "{diags:?}");
}

#[test]
fn syntax_errors_have_a_position() {
    let diags = errors("[scenario]\nid = \"x\ntitle = 1\n");
    assert_eq!(diags.len(), 1);
    assert!(diags[0].message.starts_with("invalid TOML"), "{diags:?}");
    assert_eq!(diags[0].line, 2);
}

#[test]
fn an_expectation_without_a_check_is_refused() {
    assert_error(
        &edit(&[], "[[expect]]\nname = \"x\"\n"),
        "expect[0]",
        "checks nothing",
    );
}

// [vm]

#[test]
fn unknown_kernel_lists_the_known_ones() {
    let error = assert_error(
        &edit(&[("[vm]\n", "[vm]\nkernels = [\"6.1\", \"5.15\"]\n")], ""),
        "vm.kernels[1]",
        "unknown kernel `5.15`",
    );
    assert!(error.help[0].contains("5.10, 6.1, 6.12, 7.2"), "{error:?}");
}

#[test]
fn kernels_resolve_in_catalogue_order_and_may_not_repeat_or_be_empty() {
    let scenario = ok(&edit(
        &[("[vm]\n", "[vm]\nkernels = [\"7.2\", \"5.10\"]\n")],
        "",
    ));
    assert_eq!(scenario.kernels, ["5.10", "7.2"]);
    assert_error(
        &edit(&[("[vm]\n", "[vm]\nkernels = [\"6.1\", \"6.1\"]\n")], ""),
        "vm.kernels[1]",
        "listed twice",
    );
    assert_error(
        &edit(&[("[vm]\n", "[vm]\nkernels = []\n")], ""),
        "vm.kernels",
        "is empty",
    );
}

#[test]
fn memory_range() {
    assert_error(
        &edit(&[("memory = \"1GiB\"", "memory = \"64MiB\"")], ""),
        "vm.memory",
        "out of range",
    );
    assert_error(
        &edit(&[("memory = \"1GiB\"", "memory = \"65GiB\"")], ""),
        "vm.memory",
        "out of range",
    );
    ok(&edit(
        &[
            ("memory = \"1GiB\"", "memory = \"128MiB\""),
            ("heap = \"400MiB\", live = \"50MiB\"", "heap = \"64MiB\""),
        ],
        "",
    ));
}

#[test]
fn bad_units_say_how_to_write_them() {
    let error = assert_error(
        &edit(&[("memory = \"1GiB\"", "memory = \"1GB2\"")], ""),
        "vm.memory",
        "not a size",
    );
    assert!(error.help[0].contains("\"512MiB\""), "{error:?}");
    assert_error(
        &edit(&[("duration = \"30s\"", "duration = 30")], ""),
        "sample.duration",
        "write \\\"30s\\\"",
    );
    assert_error(
        &edit(&[("live = \"50MiB\"", "live = -5")], ""),
        "process[0].args.live",
        "cannot be negative",
    );
}

#[test]
fn cpus_range() {
    assert_error(
        &edit(&[("memory = \"1GiB\"", "memory = \"1GiB\"\ncpus = 0")], ""),
        "vm.cpus",
        "between 1 and 64",
    );
    assert_error(
        &edit(&[("memory = \"1GiB\"", "memory = \"1GiB\"\ncpus = 65")], ""),
        "vm.cpus",
        "between 1 and 64",
    );
    assert_error(
        &edit(
            &[("memory = \"1GiB\"", "memory = \"1GiB\"\ncpus = \"two\"")],
            "",
        ),
        "vm.cpus",
        "expected a whole number",
    );
}

#[test]
fn disk_is_optional_and_not_tiny() {
    let scenario = ok(&edit(
        &[("memory = \"1GiB\"", "memory = \"1GiB\"\ndisk = \"1GiB\"")],
        "",
    ));
    assert_eq!(scenario.vm.disk, Some(Bytes(1 << 30)));
    assert_error(
        &edit(
            &[("memory = \"1GiB\"", "memory = \"1GiB\"\ndisk = \"1MiB\"")],
            "",
        ),
        "vm.disk",
        "too small",
    );
}

#[test]
fn timeout_longer_than_duration() {
    assert_error(
        &edit(
            &[("memory = \"1GiB\"", "memory = \"1GiB\"\ntimeout = \"30s\"")],
            "",
        ),
        "vm.timeout",
        "not longer than",
    );
    let scenario = ok(&edit(
        &[("memory = \"1GiB\"", "memory = \"1GiB\"\ntimeout = \"31s\"")],
        "",
    ));
    assert_eq!(scenario.vm.timeout, Millis::secs(31));
}

// [sample]

#[test]
fn sample_every_bounds() {
    assert_error(
        &edit(
            &[("duration = \"30s\"", "duration = \"30s\"\nevery = \"5ms\"")],
            "",
        ),
        "sample.every",
        "too short",
    );
    assert_error(
        &edit(
            &[("duration = \"30s\"", "duration = \"30s\"\nevery = \"30s\"")],
            "",
        ),
        "sample.every",
        "not shorter than",
    );
    assert_error(
        &edit(&[("duration = \"30s\"", "duration = \"100ms\"")], ""),
        "sample.duration",
        "not shorter than",
    );
}

#[test]
fn sample_table_and_duration_required() {
    assert_error(
        &edit(&[("[sample]\nduration = \"30s\"\n", "")], ""),
        "sample",
        "missing table [sample]",
    );
    assert_error(
        &edit(&[("duration = \"30s\"", "every = \"1s\"")], ""),
        "sample.duration",
        "missing key `duration`",
    );
}

// [sysctl] and [sysfs]

#[test]
fn sysctl_values_are_text_and_names_dotted() {
    let scenario = ok(&edit(
        &[],
        "[sysctl]\n\"vm.overcommit_memory\" = 1\nvm.swappiness = \"10\"\n",
    ));
    assert_eq!(scenario.sysctl["vm.overcommit_memory"], "1");
    assert_eq!(scenario.sysctl["vm.swappiness"], "10");
    assert_error(
        &edit(&[], "[sysctl]\n\"vm\" = 1\n"),
        "sysctl.vm",
        "invalid sysctl name",
    );
    assert_error(
        &edit(&[], "[sysctl]\n\"VM.Overcommit\" = 1\n"),
        "sysctl.\"VM.Overcommit\"",
        "invalid sysctl name",
    );
    assert_error(
        &edit(&[], "[sysctl]\n\"vm.overcommit_memory\" = true\n"),
        "sysctl.\"vm.overcommit_memory\"",
        "expected an integer or a string",
    );
    assert_error(
        &edit(&[], "[sysctl]\n\"vm.swappiness\" = 1\nvm.swappiness = 2\n"),
        "sysctl.\"vm.swappiness\"",
        "set twice",
    );
}

#[test]
fn sysfs_paths_stay_under_sys() {
    let scenario = ok(&edit(
        &[],
        "[sysfs]\n\"/sys/kernel/mm/transparent_hugepage/enabled\" = \"never\"\n\"/sys/kernel/mm/lru_gen/enabled\" = 0\n",
    ));
    assert_eq!(scenario.sysfs["/sys/kernel/mm/lru_gen/enabled"], "0");
    assert_error(
        &edit(&[], "[sysfs]\n\"/proc/sys/vm/x\" = 1\n"),
        "sysfs.\"/proc/sys/vm/x\"",
        "under /sys/",
    );
    assert_error(
        &edit(&[], "[sysfs]\n\"/sys/../etc/passwd\" = 1\n"),
        "sysfs.\"/sys/../etc/passwd\"",
        "`..`",
    );
}

// [cgroup]

#[test]
fn cgroup_reads_the_wire_spec() {
    let scenario = ok(&edit(
        &[],
        "[cgroup]\nmemory_max = \"768MiB\"\nmemory_high = \"700MiB\"\n",
    ));
    let cgroup = scenario.cgroup.unwrap();
    assert_eq!(
        (cgroup.version, cgroup.memory_max, cgroup.memory_high),
        (2, Some(Bytes::mib(768)), Some(Bytes::mib(700)))
    );
}

#[test]
fn memory_high_max_is_no_soft_limit_even_under_v1() {
    for version in [1, 2] {
        let scenario = ok(&edit(
            &[],
            &format!("[cgroup]\nversion = {version}\nmemory_high = \"max\"\n"),
        ));
        assert_eq!(scenario.cgroup.unwrap().memory_high, None);
    }
    assert_error(
        &edit(&[], "[cgroup]\nmemory_high = \"maximum\"\n"),
        "cgroup.memory_high",
        "maximum",
    );
}

#[test]
fn cgroup_version_is_1_or_2() {
    assert_error(
        &edit(&[], "[cgroup]\nversion = 3\n"),
        "cgroup.version",
        "expected 1 or 2",
    );
}

#[test]
fn cgroup_v1_has_no_memory_high() {
    assert_error(
        &edit(&[], "[cgroup]\nversion = 1\nmemory_high = \"100MiB\"\n"),
        "cgroup.memory_high",
        "cgroup v1 has no memory.high",
    );
}

#[test]
fn cgroup_limits_within_the_guest() {
    assert_error(
        &edit(&[], "[cgroup]\nmemory_max = \"2GiB\"\n"),
        "cgroup.memory_max",
        "can never reach",
    );
    assert_error(
        &edit(
            &[],
            "[cgroup]\nmemory_max = \"500MiB\"\nmemory_high = \"600MiB\"\n",
        ),
        "cgroup.memory_high",
        "not below",
    );
}

// [[process]]

#[test]
fn process_names_unique_and_charset() {
    assert_error(
        &edit(&[("name = \"balloon\"", "name = \"service\"")], ""),
        "process[1].name",
        "used twice",
    );
    assert_error(
        &edit(&[("name = \"balloon\"", "name = \"Balloon 1\"")], ""),
        "process[1].name",
        "invalid `process[1].name`",
    );
}

#[test]
fn go_workloads_need_a_catalogue_toolchain_and_others_refuse_one() {
    let go = |line: &str| {
        edit(
            &[(
                "workload = \"heap-churn\"\n",
                &format!("workload = \"go-heap-churn\"\n{line}"),
            )],
            "[matrix]\n\"process.service.go\" = [\"1.15\", \"1.24\"]\n",
        )
    };
    let scenario = parse(&go("go = \"1.15\"\n")).unwrap();
    let programs: Vec<String> = scenario
        .variants
        .iter()
        .map(|variant| variant.setup.processes[0].program())
        .collect();
    assert_eq!(
        programs,
        ["/bin/go-heap-churn-1.15", "/bin/go-heap-churn-1.24"]
    );
    let no_go = edit(
        &[(
            "workload = \"heap-churn\"\n",
            "workload = \"go-heap-churn\"\n",
        )],
        "",
    );
    assert_error(&no_go, "process[0]", "names no Go toolchain");
    assert_error(
        &edit(
            &[(
                "workload = \"heap-churn\"\n",
                "workload = \"go-heap-churn\"\ngo = \"1.16\"\n",
            )],
            "",
        ),
        "process[0].go",
        "unknown Go toolchain `1.16`",
    );
    assert_error(
        &edit(
            &[(
                "workload = \"heap-churn\"\n",
                "workload = \"heap-churn\"\ngo = \"1.15\"\n",
            )],
            "",
        ),
        "process[0].go",
        "applies only to Go workloads",
    );
}

#[test]
fn unknown_workload_suggests() {
    assert_error(
        &edit(&[("workload = \"balloon\"", "workload = \"baloon\"")], ""),
        "process[1].workload",
        "did you mean `balloon`?",
    );
    assert_error(
        &edit(
            &[("workload = \"balloon\"", "workload = \"go-heap-chrun\"")],
            "",
        ),
        "process[1].workload",
        "did you mean `go-heap-churn`?",
    );
}

#[test]
fn go_is_refused_until_go_workloads_exist() {
    assert_error(
        &edit(
            &[("name = \"service\"", "name = \"service\"\ngo = \"1.15\"")],
            "",
        ),
        "process[0].go",
        "go applies only to go-* workloads",
    );
}

#[test]
fn env_and_cgroup_flag() {
    let scenario = ok(&edit(
        &[(
            "name = \"balloon\"",
            "name = \"balloon\"\ncgroup = false\nenv = { GODEBUG = \"madvdontneed=1\" }",
        )],
        "[cgroup]\n",
    ));
    assert!(!scenario.processes[1].cgroup);
    assert_eq!(scenario.processes[1].env["GODEBUG"], "madvdontneed=1");
    assert_error(
        &edit(
            &[(
                "name = \"balloon\"",
                "name = \"balloon\"\nenv = { GOGC = 100 }",
            )],
            "",
        ),
        "process[1].env.GOGC",
        "expected a string",
    );
    assert_error(
        &edit(
            &[(
                "name = \"balloon\"",
                "name = \"balloon\"\nenv = { \"A=B\" = \"1\" }",
            )],
            "",
        ),
        "process[1].env",
        "invalid environment variable name",
    );
}

#[test]
fn start_after_names_another_process() {
    assert_error(
        &edit(&[("after = \"service\"", "after = \"servce\"")], ""),
        "process[1].start.after",
        "did you mean `service`?",
    );
    assert_error(
        &edit(&[("after = \"service\"", "after = \"balloon\"")], ""),
        "process[1].start.after",
        "waits for itself",
    );
}

#[test]
fn start_phase_is_one_the_workload_reports() {
    let error = assert_error(
        &edit(&[("phase = \"released\"", "phase = \"relased\"")], ""),
        "process[1].start.phase",
        "did you mean `released`?",
    );
    assert_eq!(
        error.label.as_deref(),
        Some("heap-churn reports allocated, released, done")
    );
}

#[test]
fn phase_needs_after() {
    assert_error(
        &edit(&[("after = \"service\", ", "")], ""),
        "process[1].start.phase",
        "without `process[1].start.after`",
    );
}

#[test]
fn after_without_phase_waits_for_the_end() {
    let scenario = ok(&edit(&[("phase = \"released\", ", "")], ""));
    assert_eq!(scenario.processes[1].start.phase, None);
}

#[test]
fn trigger_cycles_are_reported_once() {
    let source = edit(
        &[(
            "args = { heap = \"400MiB\", live = \"50MiB\" }",
            "args = { heap = \"400MiB\" }\nstart = { after = \"third\" }",
        )],
        "[[process]]\nname = \"third\"\nworkload = \"balloon\"\nstart = { after = \"balloon\" }\n",
    );
    let error = assert_error(
        &source,
        "process[0].start.after",
        "cycle: service → third → balloon → service",
    );
    assert_eq!(errors(&source).len(), 1, "{error:?}");
}

#[test]
fn heap_churn_rules() {
    let args = "args = { heap = \"400MiB\", live = \"50MiB\" }";
    assert_error(
        &edit(&[(args, "args = { heap = 0 }")], ""),
        "process[0].args.heap",
        "`process[0].args.heap` is 0",
    );
    assert_error(
        &edit(
            &[(args, "args = { heap = \"100MiB\", live = \"200MiB\" }")],
            "",
        ),
        "process[0].args.live",
        "larger than `heap`",
    );
    assert_error(
        &edit(
            &[(args, "args = { heap = \"100MiB\", chunk = \"1KiB\" }")],
            "",
        ),
        "process[0].args.chunk",
        "smaller than a page",
    );
    assert_error(
        &edit(&[(args, "args = { heap = \"2GiB\" }")], ""),
        "process[0].args.heap",
        "larger than `vm.memory`",
    );
    assert_error(
        &edit(&[(args, "args = { heap = \"100MiB\", cycles = 0 }")], ""),
        "process[0].args.cycles",
        "`process[0].args.cycles` is 0",
    );
    assert_error(
        &edit(
            &[(args, "args = { heap = \"100MiB\", release = \"frees\" }")],
            "",
        ),
        "process[0].args.release",
        "did you mean `free`?",
    );
}

#[test]
fn balloon_step_positive() {
    assert_error(
        &edit(
            &[("delay = \"3s\" }", "delay = \"3s\" }\nargs = { step = 0 }")],
            "",
        ),
        "process[1].args.step",
        "never grow",
    );
}

#[test]
fn processes_required() {
    let source = "[scenario]\nid = \"x\"\ntitle = \"x\"\n[sample]\nduration = \"1s\"\n";
    assert_error(source, "process", "no [[process]]");
    assert_error(
        &format!("{source}[process]\nname = \"a\"\n"),
        "process",
        "array of tables",
    );
}

// [matrix]

#[test]
fn matrix_variants_in_order_with_labels() {
    let scenario = ok(&edit(
        &[],
        "[matrix]\n\"process.service.args.release\" = [\"free\", \"dontneed\"]\n\"vm.memory\" = [\"512MiB\", \"1GiB\"]\n",
    ));
    let labels: Vec<_> = scenario.variants.iter().map(|v| v.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "release=free,memory=512MiB",
            "release=free,memory=1GiB",
            "release=dontneed,memory=512MiB",
            "release=dontneed,memory=1GiB"
        ]
    );
    assert_eq!(
        scenario.matrix[1],
        MatrixAxis {
            key: "vm.memory".into(),
            name: "memory".into(),
            values: vec!["512MiB".into(), "1GiB".into()]
        }
    );
    assert_eq!(scenario.variants[2].setup.vm.memory, Bytes::mib(512));
    assert_eq!(
        scenario.vm.memory,
        Bytes::mib(512),
        "top level = first variant"
    );
}

#[test]
fn matrix_sets_sysctl_env_start_and_sysfs() {
    let scenario = ok(&edit(
        &[],
        "[matrix]\n'sysctl.\"vm.overcommit_memory\"' = [0, 2]\n\"process.balloon.env.GODEBUG\" = [\"madvdontneed=1\"]\n\
         \"process.balloon.start.delay\" = [\"1s\"]\n'sysfs.\"/sys/kernel/mm/transparent_hugepage/enabled\"' = [\"never\"]\n",
    ));
    let last = &scenario.variants[1];
    assert_eq!(
        last.label,
        "vm.overcommit_memory=2,GODEBUG=madvdontneed=1,delay=1s,enabled=never"
    );
    assert_eq!(last.setup.sysctl["vm.overcommit_memory"], "2");
    assert_eq!(last.setup.processes[1].env["GODEBUG"], "madvdontneed=1");
    assert_eq!(last.setup.processes[1].start.delay, Millis::secs(1));
    assert_eq!(
        last.setup.sysfs["/sys/kernel/mm/transparent_hugepage/enabled"],
        "never"
    );
}

#[test]
fn matrix_overrides_unquoted_sysctl_tables() {
    let scenario = ok(&edit(
        &[],
        "[sysctl]\nvm.overcommit_memory = 0\n[matrix]\n\"sysctl.vm.overcommit_memory\" = [1]\n",
    ));
    assert_eq!(scenario.sysctl.len(), 1);
    assert_eq!(scenario.sysctl["vm.overcommit_memory"], "1");
}

#[test]
fn matrix_keys_must_name_settings() {
    let cases = [
        (
            "\"process.servce.args.release\" = [\"free\"]",
            "did you mean `service`?",
        ),
        (
            "\"process.service.args.relase\" = [\"free\"]",
            "did you mean `release`?",
        ),
        ("\"vm.kernels\" = [[\"6.1\"]]", "dimension"),
        ("\"vm.memroy\" = [\"1GiB\"]", "did you mean `memory`?"),
        ("\"scenario.id\" = [\"x\"]", "same in every variant"),
        (
            "\"process.service.workload\" = [\"balloon\"]",
            "cannot rename",
        ),
        ("\"foo.bar\" = [1]", "not a table a matrix can set"),
        ("'sysctl.\"vm.x' = [1]", "not closed"),
    ];
    for (line, text) in cases {
        let key = line.split(" = ").next().unwrap().trim_matches(['"', '\'']);
        assert_error(
            &edit(&[], &format!("[matrix]\n{line}\n")),
            // The key quoted as a path segment: a quote in it escaped.
            &format!("matrix.\"{}\"", key.replace('"', "\\\"")),
            text,
        );
    }
}

#[test]
fn matrix_values_non_empty_scalars_distinct() {
    let key = "matrix.\"vm.memory\"";
    assert_error(
        &edit(&[], "[matrix]\n\"vm.memory\" = []\n"),
        key,
        "has no values",
    );
    assert_error(
        &edit(&[], "[matrix]\n\"vm.memory\" = \"1GiB\"\n"),
        key,
        "array of values",
    );
    assert_error(
        &edit(&[], "[matrix]\n\"vm.memory\" = [{ a = 1 }]\n"),
        "matrix.\"vm.memory\"[0]",
        "strings, numbers or booleans",
    );
    assert_error(
        &edit(&[], "[matrix]\n\"vm.memory\" = [\"1GiB\", \"1GiB\"]\n"),
        "matrix.\"vm.memory\"[1]",
        "appears twice",
    );
}

#[test]
fn each_variant_must_validate_at_the_matrix_value() {
    let source = edit(
        &[],
        "[matrix]\n\"process.service.args.heap\" = [\"100MiB\", \"2GiB\"]\n",
    );
    let error = assert_error(&source, "process[0].args.heap", "larger than `vm.memory`");
    assert_eq!(
        error.line,
        source.lines().count(),
        "points at the matrix line"
    );
    assert_eq!(error.notes, ["in matrix variant heap=2GiB"]);
    let error = assert_error(
        &edit(&[], "[matrix]\n\"vm.memory\" = [\"1GiB\", \"1 GB2\"]\n"),
        "vm.memory",
        "not a size",
    );
    assert_eq!(error.notes, ["in matrix variant memory=1_GB2"]);
}

#[test]
fn errors_common_to_all_variants_are_reported_once_without_a_note() {
    let source = edit(
        &[("memory = \"1GiB\"", "memroy = \"1GiB\"")],
        "[matrix]\n\"process.service.args.release\" = [\"free\", \"dontneed\"]\n",
    );
    let diags = errors(&source);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert!(diags[0].notes.is_empty());
}

#[test]
fn short_names_that_collide_use_the_whole_key() {
    let scenario = ok(&edit(
        &[],
        "[matrix]\n\"process.service.args.hold\" = [\"1s\"]\n\"process.balloon.start.delay\" = [\"2s\"]\n\"process.service.start.delay\" = [\"0s\"]\n",
    ));
    assert_eq!(
        scenario.variants[0].label,
        "hold=1s,process.balloon.start.delay=2s,process.service.start.delay=0s"
    );
}

// files

#[test]
fn directories_load_sorted_and_ids_are_unique() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("b.toml"),
        BASE.replace("title = \"Demo\"", "title = \"B\""),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("a.toml"),
        edit(&[("id = \"demo\"", "id = \"alpha\"")], ""),
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.md"), "not a scenario").unwrap();
    let scenarios = load_scenarios(&[dir.path().to_path_buf()], &kernels()).unwrap();
    let ids: Vec<_> = scenarios.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["alpha", "demo"]);

    std::fs::write(dir.path().join("c.toml"), BASE).unwrap();
    let error = load_scenarios(&[dir.path().to_path_buf()], &kernels()).unwrap_err();
    let [diagnostic] = error.diagnostics() else {
        panic!("{error}")
    };
    assert!(diagnostic.file.ends_with("c.toml"));
    assert_eq!(
        (diagnostic.key.as_str(), diagnostic.line),
        ("scenario.id", 3)
    );
    assert!(diagnostic.message.contains("used twice"));
}

#[test]
fn missing_files_and_empty_directories_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let error = load_scenarios(&[dir.path().to_path_buf()], &kernels()).unwrap_err();
    assert!(error.to_string().contains("no scenario files"), "{error}");
    let error = load_scenario(&dir.path().join("nope.toml"), &kernels()).unwrap_err();
    assert!(
        error.to_string().contains("cannot read scenario file"),
        "{error}"
    );
}

const FILE_IO: &str = r#"
[[process]]
name = "batch"
workload = "file-io"
args = { files = 16, file_size = "8MiB", working_set = "64MiB", mode = "mmap" }
"#;

#[test]
fn file_io_needs_a_disk_that_holds_its_files() {
    let with_disk = |disk: &str| {
        edit(
            &[(
                "memory = \"1GiB\"",
                &format!("memory = \"1GiB\"\ndisk = \"{disk}\""),
            )],
            FILE_IO,
        )
    };
    let scenario = ok(&with_disk("256MiB"));
    let Workload::FileIo(args) = &scenario.processes[2].workload else {
        panic!("{:?}", scenario.processes[2]);
    };
    assert_eq!(args.dir, "/scratch/fileio");
    assert_eq!(args.working_set, Some(Bytes::mib(64)));
    let source = edit(&[], FILE_IO);
    let error = assert_error(&source, "process[2].workload", "needs a scratch disk");
    assert!(
        error
            .help
            .iter()
            .any(|help| help.contains("disk = \"256MiB\""))
    );
    let rendered = ScenarioError::new(errors(&source)).to_string();
    assert!(rendered.contains("x.toml:24:12"), "{rendered}");
    assert_error(
        &with_disk("128MiB"),
        "process[2].args.file_size",
        "does not fit",
    );
    let bigger = with_disk("1GiB").replace("\"64MiB\"", "\"200MiB\"");
    assert_error(
        &bigger,
        "process[2].args.working_set",
        "larger than files x file_size",
    );
    let elsewhere = with_disk("1GiB").replace("mode = \"mmap\"", "dir = \"/tmp/x\"");
    assert_error(&elsewhere, "process[2].args.dir", "not on the scratch disk");
}

#[test]
fn hog_and_vsz_startup_read_absolute_and_relative_sizes() {
    let scenario = ok(&edit(
        &[],
        r#"
[[process]]
name = "hog"
workload = "hog"
args = { size = "60% of mem_total" }

[[process]]
name = "jvm"
workload = "vsz-startup"
args = { size = "200% of commit_limit", mapping = "reserve-then-commit", commit = "64MiB", touch = "32MiB" }
"#,
    ));
    assert_eq!(scenario.processes[2].workload.name(), "hog");
    assert_eq!(
        scenario.processes[3].workload.phases(),
        ["mapped", "touched"]
    );
    assert_error(
        &edit(
            &[],
            "[[process]]\nname = \"h\"\nworkload = \"hog\"\nargs = { size = \"60% of ram\" }\n",
        ),
        "process[2].args.size",
        "60% of mem_total",
    );
    assert_error(
        &edit(
            &[],
            "[[process]]\nname = \"v\"\nworkload = \"vsz-startup\"\nargs = { size = \"1GiB\", commit = \"1MiB\" }\n",
        ),
        "process[2].args.commit",
        "reserve-then-commit",
    );
    assert_error(
        &edit(
            &[],
            "[[process]]\nname = \"v\"\nworkload = \"vsz-startup\"\nargs = { size = \"1GiB\", touch = \"2GiB\" }\n",
        ),
        "process[2].args.touch",
        "writable part",
    );
}

#[test]
fn no_madv_free_emulation_is_per_process() {
    let scenario = ok(&edit(
        &[(
            "name = \"service\"",
            "name = \"service\"\nno_madv_free = true",
        )],
        "",
    ));
    assert!(scenario.processes[0].emulate_no_madv_free);
    assert!(!scenario.processes[1].emulate_no_madv_free);
}

// Rules added for bad input found by the corpus and the fuzzers.

#[test]
fn duration_is_positive_and_bounded_and_the_default_timeout_cannot_overflow() {
    assert_error(
        &edit(&[("duration = \"30s\"", "duration = \"0s\"")], ""),
        "sample.duration",
        "out of range",
    );
    assert_error(
        &edit(&[("duration = \"30s\"", "duration = \"1000h\"")], ""),
        "sample.duration",
        "at most 6h",
    );
    // Once a panic: the default timeout (duration + 120s) overflowed.
    assert_error(
        &edit(
            &[("duration = \"30s\"", "duration = \"18446744073709551s\"")],
            "",
        ),
        "sample.duration",
        "out of range",
    );
    assert_error(
        &edit(
            &[("memory = \"1GiB\"", "memory = \"1GiB\"\ntimeout = \"100h\"")],
            "",
        ),
        "vm.timeout",
        "at most 8h",
    );
}

#[test]
fn disks_are_bounded() {
    assert_error(
        &edit(
            &[("memory = \"1GiB\"", "memory = \"1GiB\"\ndisk = \"1EiB\"")],
            "",
        ),
        "vm.disk",
        "too large",
    );
}

#[test]
fn a_start_delay_ends_within_the_run() {
    assert_error(
        &edit(&[("delay = \"3s\"", "delay = \"30s\"")], ""),
        "process[1].start.delay",
        "the run ends before the process starts",
    );
}

#[test]
fn swap_max_needs_swap_and_v1_needs_memory_max_beside_it() {
    assert_error(
        &edit(&[], "[cgroup]\nswap_max = \"64MiB\"\n"),
        "cgroup.swap_max",
        "the guest has no swap",
    );
    let scenario = ok(&edit(&[], "[cgroup]\nswap_max = 0\n"));
    assert_eq!(scenario.cgroup.unwrap().swap_max, Some(Bytes(0)));
    assert_error(
        &edit(&[], "[cgroup]\nversion = 1\nswap_max = 0\n"),
        "cgroup.swap_max",
        "needs `cgroup.memory_max`",
    );
    ok(&edit(
        &[],
        "[cgroup]\nversion = 1\nmemory_max = \"512MiB\"\nswap_max = 0\n",
    ));
}

#[test]
fn cgroup_limits_are_not_absurdly_small() {
    assert_error(
        &edit(&[], "[cgroup]\nmemory_max = \"1KiB\"\n"),
        "cgroup.memory_max",
        "too small",
    );
}

#[test]
fn the_cgroup_holds_a_process_and_the_flag_needs_a_cgroup() {
    assert_error(
        &edit(
            &[("name = \"balloon\"", "name = \"balloon\"\ncgroup = true")],
            "",
        ),
        "process[1].cgroup",
        "has no [cgroup]",
    );
    assert_error(
        &edit(
            &[
                ("name = \"service\"", "name = \"service\"\ncgroup = false"),
                ("name = \"balloon\"", "name = \"balloon\"\ncgroup = false"),
            ],
            "[cgroup]\nmemory_max = \"512MiB\"\n",
        ),
        "cgroup",
        "every process has `cgroup = false`",
    );
    // Saying a process stays out of a cgroup that does not exist is true, not a mistake.
    ok(&edit(
        &[("name = \"balloon\"", "name = \"balloon\"\ncgroup = false")],
        "",
    ));
}

#[test]
fn hogs_and_balloons_fit_in_the_guest() {
    let hog = |size: &str| {
        edit(
            &[],
            &format!(
                "[[process]]\nname = \"hog\"\nworkload = \"hog\"\nargs = {{ size = \"{size}\" }}\n"
            ),
        )
    };
    assert_error(
        &hog("2GiB"),
        "process[2].args.size",
        "larger than `vm.memory`",
    );
    assert_error(
        &hog("150% of mem_total"),
        "process[2].args.size",
        "more than all of it",
    );
    ok(&hog("150% of commit_limit"));
    let balloon = |args: &str| {
        edit(
            &[(
                "delay = \"3s\" }",
                &format!("delay = \"3s\" }}\nargs = {{ {args} }}"),
            )],
            "",
        )
    };
    assert_error(
        &balloon("step = \"2GiB\""),
        "process[1].args.step",
        "larger than `vm.memory`",
    );
    assert_error(
        &balloon("until_available = \"1GiB\""),
        "process[1].args.until_available",
        "would never grow",
    );
    assert_error(&balloon("max = 0"), "process[1].args.max", "never grow");
}

#[test]
fn huge_file_io_sizes_are_reported_not_overflowed() {
    // Once a panic: files x file_size x 100 overflowed while writing the disk hint.
    let source = edit(
        &[],
        "[[process]]\nname = \"batch\"\nworkload = \"file-io\"\nargs = { files = 4294967295, file_size = \"4000TiB\" }\n",
    );
    let error = assert_error(&source, "process[2].workload", "needs a scratch disk");
    assert!(
        error.help[0].contains("more than the largest scratch disk (1TiB)"),
        "{error:?}"
    );
}

#[test]
fn a_matrix_has_axes_and_its_size_cannot_overflow() {
    assert_error(&edit(&[], "[matrix]\n"), "matrix", "no axes");
    // Once a panic: the product of the axes' lengths overflowed.
    let mut axes = String::from("[matrix]\n");
    for axis in 0..12 {
        let values: Vec<String> = (0..100).map(|v| v.to_string()).collect();
        axes.push_str(&format!(
            "\"sysctl.vm.x{axis}\" = [{}]\n",
            values.join(", ")
        ));
    }
    assert_error(&edit(&[], &axes), "matrix", "more than 2^64 variants");
}

#[test]
fn long_trigger_chains_are_checked_in_linear_time() {
    let mut source = edit(&[], "");
    for i in 0..60 {
        source.push_str(&format!(
            "[[process]]\nname = \"p{i}\"\nworkload = \"balloon\"\nstart = {{ after = \"p{}\" }}\n",
            i + 1
        ));
    }
    source.push_str(
        "[[process]]\nname = \"p60\"\nworkload = \"balloon\"\nstart = { after = \"p0\" }\n",
    );
    let error = assert_error(&source, "process[2].start.after", "cycle: p0 → p1 → p2");
    assert!(error.message.ends_with("p60 → p0"), "{}", error.message);
}

#[test]
fn too_many_processes_are_refused() {
    let mut source = edit(&[], "");
    for i in 0..70 {
        source.push_str(&format!(
            "[[process]]\nname = \"p{i}\"\nworkload = \"balloon\"\n"
        ));
    }
    assert_error(&source, "process[64]", "at most 64");
}

#[test]
fn a_crlf_file_with_an_error_at_a_line_end_is_drawn() {
    // Once a panic: the caret range was clamped with its bounds crossed at a `\r`.
    let diags = errors("[scenario]\r\nid = \"x\"\r\ntitle = \"x\r\n");
    assert_eq!(diags.len(), 1, "{diags:?}");
    let rendered = ScenarioError::new(diags).to_string();
    assert!(rendered.contains("x.toml:3:"), "{rendered}");
    assert!(!rendered.contains('\r'), "{rendered:?}");
}

#[test]
fn long_lines_are_drawn_around_the_carets() {
    let source = format!("x = {}\n", "[".repeat(100_000));
    let rendered = ScenarioError::new(errors(&source)).to_string();
    let drawn = rendered.lines().find(|line| line.contains("[[[")).unwrap();
    assert!(drawn.chars().count() <= 120, "{drawn}");
    assert!(drawn.ends_with("..."), "cut, and says so: {drawn}");
}

#[test]
fn a_file_with_thousands_of_mistakes_reports_fifty() {
    let mut source = edit(&[], "");
    source = source.replace("[vm]\n", &format!("[vm]\n{}", "x = 1\n".repeat(0)));
    let keys: String = (0..5000).map(|i| format!("k{i} = 1\n")).collect();
    source = source.replace("memory = \"1GiB\"\n", &format!("memory = \"1GiB\"\n{keys}"));
    let diags = errors(&source);
    assert_eq!(diags.len(), MAX_DIAGNOSTICS);
    assert!(
        diags[MAX_DIAGNOSTICS - 1].notes[0].contains("4950 more errors"),
        "{:?}",
        diags.last()
    );
}

#[test]
fn sample_until_reads_one_event_or_a_list_with_an_after() {
    let one = ok(&edit(
        &[(
            "duration = \"30s\"",
            "duration = \"30s\"\nuntil = \"balloon:full\"\nafter = \"3s\"",
        )],
        "",
    ));
    assert_eq!(
        one.until,
        Some(Until {
            events: vec!["balloon:full".into()],
            after: Millis(3000)
        })
    );
    let list = ok(&edit(
        &[(
            "duration = \"30s\"",
            "duration = \"30s\"\nuntil = [\"service:released\", \"balloon:ended\", \"oom-kill\"]",
        )],
        "",
    ));
    let until = list.until.expect("until");
    assert_eq!(until.events.len(), 3);
    assert_eq!(until.after, Millis(0));
    assert_eq!(ok(BASE).until, None);
}

#[test]
fn sample_until_names_events_the_scenario_has() {
    assert_error(
        &edit(
            &[(
                "duration = \"30s\"",
                "duration = \"30s\"\nuntil = \"balloon:empty\"",
            )],
            "",
        ),
        "sample.until",
        "`balloon` has the events started, full, ended",
    );
    assert_error(
        &edit(
            &[(
                "duration = \"30s\"",
                "duration = \"30s\"\nuntil = \"hog:started\"",
            )],
            "",
        ),
        "sample.until",
        "no process `hog`",
    );
    assert_error(
        &edit(
            &[("duration = \"30s\"", "duration = \"30s\"\nuntil = \"full\"")],
            "",
        ),
        "sample.until",
        "<process>:<phase>",
    );
    assert_error(
        &edit(
            &[("duration = \"30s\"", "duration = \"30s\"\nuntil = []")],
            "",
        ),
        "sample.until",
        "is empty",
    );
}

#[test]
fn sample_after_needs_until_and_is_shorter_than_the_duration() {
    assert_error(
        &edit(
            &[("duration = \"30s\"", "duration = \"30s\"\nafter = \"3s\"")],
            "",
        ),
        "sample.after",
        "without `sample.until`",
    );
    assert_error(
        &edit(
            &[(
                "duration = \"30s\"",
                "duration = \"30s\"\nuntil = \"balloon:full\"\nafter = \"30s\"",
            )],
            "",
        ),
        "sample.after",
        "not shorter than `sample.duration`",
    );
}

const PODS: &str = r#"
[scenario]
id = "pods"
title = "Pods"

[vm]
memory = "1GiB"

[node]
kubernetes = "1.31"

[[pod]]
name = "web"
[[pod.init_container]]
name = "shipper"
restart_policy = "Always"
limits = { memory = "32MiB", cpu = "100m" }
[[pod.container]]
name = "api"
requests = { memory = "96MiB", cpu = "250m" }
limits = { memory = "128MiB", cpu = 1 }

[sample]
duration = "30s"

[[process]]
name = "shipper"
container = "web/shipper"
workload = "hog"
args = { size = "8MiB" }

[[process]]
name = "api"
container = "web/api"
workload = "hog"
args = { size = "48MiB" }
"#;

#[test]
fn a_written_out_pod_is_what_the_api_server_would_hand_the_kubelet() {
    let scenario = ok(PODS);
    let node = scenario.node.as_ref().expect("a node");
    assert_eq!(node.kubernetes.to_string(), "1.31");
    assert_eq!(node.cgroup_version, 2, "the default");
    let web = &node.pods[0];
    let shipper = &web.init_containers[0];
    assert!(shipper.sidecar);
    // A limit without a request requests the limit (SetDefaults_Pod), per resource.
    assert_eq!(shipper.requests.memory, Some(Bytes::mib(32)));
    assert_eq!(shipper.requests.cpu_millis, Some(100));
    let api = &web.containers[0];
    assert_eq!(
        (api.requests.cpu_millis, api.limits.cpu_millis),
        (Some(250), Some(1000))
    );
    assert_eq!(api.limits.memory, Some(Bytes::mib(128)));
    assert_eq!(api.id.len(), 64);
    assert_ne!(api.id, shipper.id);
    let processes: Vec<Option<&str>> = scenario
        .processes
        .iter()
        .map(|process| process.container.as_deref())
        .collect();
    assert_eq!(processes, [Some("web/shipper"), Some("web/api")]);
}

#[test]
fn the_kubernetes_version_and_container_resources_are_matrix_axes() {
    let scenario = ok(&format!(
        "{PODS}\n[matrix]\n\"node.kubernetes\" = [\"1.29\", \"1.32\"]\n\"pod.web.container.api.limits.memory\" = [\"128MiB\", \"256MiB\"]\n"
    ));
    assert_eq!(scenario.variants.len(), 4);
    let labels: Vec<&str> = scenario.variants.iter().map(|v| v.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "kubernetes=1.29,api.limits.memory=128MiB",
            "kubernetes=1.29,api.limits.memory=256MiB",
            "kubernetes=1.32,api.limits.memory=128MiB",
            "kubernetes=1.32,api.limits.memory=256MiB",
        ]
    );
    let last = scenario.variants[3].setup.node.as_ref().unwrap();
    assert_eq!(last.kubernetes.to_string(), "1.32");
    assert_eq!(
        last.pods[0].containers[0].limits.memory,
        Some(Bytes::mib(256))
    );
    // 1.27 has no sidecars: the pod's sidecar is refused there, so a matrix that keeps it
    // names the variant.
    let text = errors(&format!(
        "{PODS}\n[matrix]\n\"node.kubernetes\" = [\"1.27\", \"1.31\"]\n"
    ))
    .iter()
    .map(|d| format!("{} {:?}", d.message, d.notes))
    .collect::<String>();
    assert!(
        text.contains("which Kubernetes 1.27 does not run") && text.contains("kubernetes=1.27"),
        "{text}"
    );
}

#[test]
fn a_manifests_env_and_args_reach_the_containers_program() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("web.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n    - name: api\n      command: [\"/app/api\"]\n      args: [\"--port=$(PORT)\", \"$$(PORT)\"]\n      env:\n        - {name: PORT, value: \"8080\"}\n        - {name: GOGC, value: \"50\"}\n      resources:\n        limits: {memory: 128Mi}\n",
    )
    .unwrap();
    let scenario = dir.path().join("s.toml");
    std::fs::write(
        &scenario,
        r#"
[scenario]
id = "m"
title = "m"
[node]
kubernetes = "1.32"
[[pod]]
manifest = "web.yaml"
[sample]
duration = "10s"
[[process]]
name = "api"
container = "web/api"
workload = "exec"
env = { GOGC = "off" }
args = { command = ["/bin/true", "--ignored"] }
"#,
    )
    .unwrap();
    let loaded = load_scenario(&scenario, &kernels()).unwrap_or_else(|e| panic!("{e}"));
    let api = &loaded.processes[0];
    let Workload::Exec(exec) = &api.workload else {
        panic!("{:?}", api.workload)
    };
    // The program is the scenario's; its arguments the manifest's, $(PORT) expanded and $$
    // kept as one $.
    assert_eq!(exec.command, ["/bin/true", "--port=8080", "$(PORT)"]);
    // The manifest's env, the scenario's on top.
    assert_eq!(api.env["PORT"], "8080");
    assert_eq!(api.env["GOGC"], "off");
    let node = loaded.node.as_ref().unwrap();
    assert_eq!(
        node.pods[0].containers[0].requests.memory,
        Some(Bytes::mib(128)),
        "requested as limited"
    );
    // The manifest's fields the lab does not use (here none but the command's own program).
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}
