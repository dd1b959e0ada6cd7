//! Tests of the binary: the workflows (`.github/workflows/nightly.yml`, the nightly lab, and
//! `ci.yml`, every pull request's checks) only run `rsslab` and `just` commands that exist, so
//! they cannot drift from the CLI unnoticed.
//!
//! Every `run:` script of the workflow is split into shell words; each command that starts
//! with `rsslab` (or a path ending in `/rsslab`) is parsed by the CLI's own clap definition
//! ([`Cli`]), and each `just RECIPE ARGS` must name a recipe of the justfile, whose `{{rsslab}}`
//! lines are then parsed with the arguments put in. GitHub expressions (`${{ ... }}`) become
//! `1`. The workflow also may only hash files that exist, and its shard matrix must be 1..=N.
//!
//! The GitHub Action (`action.yml`): the PR workflow gives it only inputs it declares and reads
//! only outputs it declares, its steps refer to step ids that exist, the scripts it runs exist
//! and are executable, and the `rsslab` commands of `scripts/action/lab.sh` parse.

use std::path::{Path, PathBuf};

use clap::Parser;
use yaml_rust2::{Yaml, YamlLoader};

use super::Cli;

const WORKFLOW: &str = ".github/workflows/nightly.yml";
const PR_WORKFLOW: &str = ".github/workflows/ci.yml";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("runner/ is in the repository")
        .to_owned()
}

fn read(relative: &str) -> String {
    let path = repo_root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn workflow_at(path: &str) -> Yaml {
    YamlLoader::load_from_str(&read(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .remove(0)
}

fn workflow() -> Yaml {
    workflow_at(WORKFLOW)
}

/// `(job, step name, script)` of every `run:` step.
fn scripts(workflow: &Yaml) -> Vec<(String, String, String)> {
    let jobs = workflow["jobs"].as_hash().expect("jobs");
    let mut found = Vec::new();
    for (job, body) in jobs {
        let steps = body["steps"].as_vec().expect("steps of each job");
        for step in steps {
            if let Some(script) = step["run"].as_str() {
                found.push((
                    job.as_str().unwrap_or_default().to_owned(),
                    step["name"].as_str().unwrap_or("(unnamed)").to_owned(),
                    script.to_owned(),
                ));
            }
        }
    }
    found
}

/// `${{ anything }}` -> `1`.
fn without_expressions(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").expect("closed expression") + start + 2;
        out.push('1');
        rest = &rest[end..];
    }
    out + rest
}

/// Shell words that end a command.
fn ends_command(word: &str) -> bool {
    matches!(
        word,
        "&&" | "||" | ";" | "|" | ">" | ">>" | "2>" | "2>&1" | "<" | "then" | "else" | "do" | "fi"
    ) || word.ends_with(';')
}

/// Words that put the next word in command position.
fn starts_command(word: &str) -> bool {
    matches!(
        word,
        "&&" | "||" | ";" | "|" | "then" | "else" | "do" | "if" | "while" | "!" | "time"
    ) || word.ends_with(';')
}

/// Every command of `script` (lines joined at `\`, comments dropped) whose program is
/// `is_program`, as its arguments.
fn commands(script: &str, is_program: impl Fn(&str) -> bool) -> Vec<Vec<String>> {
    let joined = script.replace("\\\n", " ");
    let mut found = Vec::new();
    for line in joined.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let words = shlex::split(&without_expressions(line))
            .unwrap_or_else(|| panic!("not shell words: {line}"));
        let mut at_start = true;
        let mut i = 0;
        while i < words.len() {
            let word = &words[i];
            if at_start && is_program(word) {
                let args: Vec<String> = words[i + 1..]
                    .iter()
                    .take_while(|w| !ends_command(w))
                    .cloned()
                    .collect();
                i += 1 + args.len();
                found.push(args);
                at_start = false;
                continue;
            }
            // `VAR=value cmd` keeps the command position.
            let assignment = word.contains('=') && !word.starts_with('-');
            at_start = starts_command(word) || (at_start && assignment);
            i += 1;
        }
    }
    found
}

fn is_rsslab(word: &str) -> bool {
    word == "rsslab" || word.ends_with("/rsslab")
}

/// One recipe of the justfile: its parameters (a leading `*` or `+` takes the rest) and the
/// argument words of each `{{rsslab}}` line of its body.
#[derive(Debug)]
struct Recipe {
    name: String,
    params: Vec<String>,
    rsslab_lines: Vec<String>,
}

fn recipes(justfile: &str) -> Vec<Recipe> {
    let mut recipes: Vec<Recipe> = Vec::new();
    for line in justfile.lines() {
        if line.starts_with([' ', '\t']) {
            if let (Some(recipe), Some(at)) = (recipes.last_mut(), line.find("{{rsslab}}")) {
                recipe
                    .rsslab_lines
                    .push(line[at + "{{rsslab}}".len()..].trim().to_owned());
            }
            continue;
        }
        let line = line.trim();
        if line.is_empty()
            || line.starts_with('#')
            || line.starts_with("set ")
            || line.contains(":=")
        {
            continue;
        }
        let Some((head, _dependencies)) = line.split_once(':') else {
            continue;
        };
        let mut words = head.split_whitespace();
        let Some(name) = words.next() else { continue };
        recipes.push(Recipe {
            name: name.to_owned(),
            params: words
                .map(|p| p.split('=').next().unwrap_or(p).to_owned())
                .collect(),
            rsslab_lines: Vec::new(),
        });
    }
    recipes
}

/// The `rsslab` argument lists a `just ARGS` command runs, or why it is wrong.
fn just_to_rsslab(args: &[String], recipes: &[Recipe]) -> Result<Vec<Vec<String>>, String> {
    let words: Vec<&String> = args.iter().skip_while(|a| a.starts_with('-')).collect();
    let Some((name, values)) = words.split_first() else {
        return Err("just without a recipe".into());
    };
    let recipe = recipes
        .iter()
        .find(|r| r.name == **name)
        .ok_or_else(|| format!("the justfile has no recipe `{name}`"))?;
    let mut line_words = Vec::new();
    for line in &recipe.rsslab_lines {
        let mut text = line.clone();
        let mut rest: &[&String] = values;
        for param in &recipe.params {
            let (variadic, plain) = match param.strip_prefix(['*', '+']) {
                Some(plain) => (true, plain),
                None => (false, param.as_str()),
            };
            let taken = if variadic {
                rest.len()
            } else {
                rest.len().min(1)
            };
            let value = rest[..taken]
                .iter()
                .map(|v| shlex::try_quote(v).expect("quotable").into_owned())
                .collect::<Vec<_>>()
                .join(" ");
            rest = &rest[taken..];
            text = text.replace(&format!("{{{{{plain}}}}}"), &value);
        }
        line_words.push(shlex::split(&text).ok_or_else(|| format!("not shell words: {text}"))?);
    }
    Ok(line_words)
}

/// Parses `rsslab ARGS` with the CLI's own definition.
fn check_rsslab(args: &[String]) -> Result<(), String> {
    let words = std::iter::once("rsslab".to_owned()).chain(args.iter().cloned());
    Cli::try_parse_from(words)
        .map(|_| ())
        .map_err(|error| error.render().to_string())
}

/// Every rsslab command `path` runs, directly or through a just recipe, each checked against
/// the CLI (panics naming the ones that do not parse).
fn checked_commands(path: &str) -> Vec<Vec<String>> {
    let workflow = workflow_at(path);
    let recipes = recipes(&read("justfile"));
    let mut checked: Vec<Vec<String>> = Vec::new();
    let mut problems = Vec::new();
    for (job, step, script) in scripts(&workflow) {
        let mut rsslab_commands = commands(&script, is_rsslab);
        for args in commands(&script, |w| w == "just") {
            match just_to_rsslab(&args, &recipes) {
                Ok(lines) => rsslab_commands.extend(lines),
                Err(why) => {
                    problems.push(format!("{job} / {step}: just {}: {why}", args.join(" ")))
                }
            }
        }
        for args in rsslab_commands {
            if let Err(why) = check_rsslab(&args) {
                problems.push(format!("{job} / {step}: rsslab {}: {why}", args.join(" ")));
            }
            checked.push(args);
        }
    }
    assert!(problems.is_empty(), "{path}:\n{}", problems.join("\n"));
    checked
}

#[test]
fn every_rsslab_and_just_command_of_the_workflow_exists() {
    let checked = checked_commands(WORKFLOW);
    for (subcommand, flag) in [
        ("run", Some("--shard")),
        ("merge", Some("--out")),
        ("report", Some("--baseline")),
    ] {
        assert!(
            checked
                .iter()
                .any(|args| args.first().map(String::as_str) == Some(subcommand)
                    && flag.is_none_or(|flag| args.iter().any(|a| a == flag))),
            "the workflow runs no `rsslab {subcommand}`: {checked:?}"
        );
    }
}

#[test]
fn the_check_catches_a_wrong_command() {
    let recipes = recipes(&read("justfile"));
    let words = |line: &str| shlex::split(line).unwrap();
    assert!(check_rsslab(&words("merge a b --out c")).is_ok());
    assert!(check_rsslab(&words("run scenarios --shard 1/4 --baseline prev")).is_ok());
    let error = check_rsslab(&words("merge a --output c")).unwrap_err();
    assert!(error.contains("--output"), "{error}");
    assert!(check_rsslab(&words("run --shard 5/4")).is_err());
    assert!(check_rsslab(&words("mege a")).is_err());
    let lines = just_to_rsslab(&words("lab --shard 2/4 --out 'a b'"), &recipes).unwrap();
    assert_eq!(lines, [words("run scenarios --shard 2/4 --out 'a b'")]);
    assert!(
        just_to_rsslab(&words("labb"), &recipes)
            .unwrap_err()
            .contains("labb")
    );
    let found = commands(
        "x=1 rsslab merge a --out b || code=$?\ncargo build -p rsslab\n# rsslab nothing\n\
         if [ -f x ]; then rsslab diff a b > d.md; fi",
        is_rsslab,
    );
    assert_eq!(found, [words("merge a --out b"), words("diff a b")]);
}

/// Checks that every path `hashFiles(...)` names in `text` (the workflow at `path`) is a file
/// of the repository, but those `made` says the workflow makes; returns how many it checked.
fn hashed_files_exist(path: &str, text: &str, made: impl Fn(&str) -> bool) -> usize {
    let mut hashed = 0;
    for (at, _) in text.match_indices("hashFiles(") {
        let call = &text[at..at + text[at..].find(')').expect("closed call")];
        for file in call
            .split('\'')
            .skip(1)
            .step_by(2)
            .filter(|file| !made(file))
        {
            assert!(
                repo_root().join(file).is_file(),
                "{path}: hashFiles('{file}'): no such file"
            );
            hashed += 1;
        }
    }
    hashed
}

#[test]
fn the_workflow_hashes_files_that_exist_and_shards_one_to_n() {
    let text = read(WORKFLOW);
    // Files the workflow itself makes are checked when they are made.
    let hashed = hashed_files_exist(WORKFLOW, &text, |path| path.starts_with("merged/"));
    assert!(
        hashed >= 2,
        "the cache key hashes the kernel and Go catalogues"
    );
    let workflow = workflow();
    let shards: Vec<i64> = workflow["jobs"]["shard"]["strategy"]["matrix"]["shard"]
        .as_vec()
        .expect("a shard matrix")
        .iter()
        .map(|n| n.as_i64().expect("shard numbers"))
        .collect();
    assert_eq!(shards, (1..=shards.len() as i64).collect::<Vec<_>>());
}

#[test]
fn every_pull_request_is_linted_tested_and_runs_a_small_lab_through_the_action() {
    checked_commands(PR_WORKFLOW);
    let workflow = workflow_at(PR_WORKFLOW);
    let on = &workflow["on"];
    assert!(
        !on["pull_request"].is_badvalue(),
        "{PR_WORKFLOW}: on pull_request"
    );
    assert!(!on["push"].is_badvalue(), "{PR_WORKFLOW}: on push");
    let all_scripts: Vec<String> = scripts(&workflow)
        .into_iter()
        .map(|(_, _, script)| script)
        .collect();
    for recipe in ["lint", "test"] {
        assert!(
            all_scripts
                .iter()
                .any(|script| commands(script, |w| w == "just")
                    .iter()
                    .any(|args| args.first().map(String::as_str) == Some(recipe))),
            "{PR_WORKFLOW} runs no `just {recipe}`"
        );
    }
    let uses = action_steps(&workflow);
    let (_, lab) = uses
        .iter()
        .find(|(_, with)| with.get("artifact").is_some_and(|a| !a.is_empty()))
        .expect("a small lab through `uses: ./` that uploads its report");
    let scenarios: Vec<&str> = lab["scenarios"].split_whitespace().collect();
    assert_eq!(scenarios.len(), 2, "two scenarios: {lab:?}");
    assert_eq!(lab["kernels"].split_whitespace().count(), 1, "one kernel");
    assert!(
        lab["args"].contains("--accel"),
        "KVM where the runner has it"
    );
    let failing = uses
        .iter()
        .find(|(step, _)| step["continue-on-error"].as_bool() == Some(true))
        .expect("a step that runs the action on a failing expectation");
    assert!(failing.1["scenarios"].contains("expectation-fails"));
    assert!(
        uses.iter().any(|(_, with)| with.contains_key("baseline")),
        "the action against a baseline"
    );
    for (_, with) in &uses {
        for path in with["scenarios"].split_whitespace() {
            assert!(repo_root().join(path).is_file(), "{PR_WORKFLOW}: {path}");
        }
    }
    let text = read(PR_WORKFLOW);
    assert!(text.contains("--accel kvm") || text.contains("accel=kvm"));
    assert!(
        hashed_files_exist(PR_WORKFLOW, &text, |_| false) >= 2,
        "the test job's cache key hashes the kernel and Go catalogues"
    );
}

const ACTION: &str = "action.yml";

/// `(step, with)` of every step of `workflow` that uses this repository's action (`./`).
fn action_steps(workflow: &Yaml) -> Vec<(Yaml, std::collections::BTreeMap<String, String>)> {
    let mut found = Vec::new();
    for (_, job) in workflow["jobs"].as_hash().expect("jobs") {
        for step in job["steps"].as_vec().expect("steps") {
            if step["uses"].as_str() != Some("./") {
                continue;
            }
            let with = step["with"]
                .as_hash()
                .map(|with| {
                    with.iter()
                        .map(|(key, value)| {
                            let value = match value {
                                Yaml::String(text) => text.clone(),
                                Yaml::Integer(n) => n.to_string(),
                                Yaml::Real(text) => text.clone(),
                                Yaml::Boolean(b) => b.to_string(),
                                other => panic!("with: {other:?}"),
                            };
                            (key.as_str().expect("input names").to_owned(), value)
                        })
                        .collect()
                })
                .unwrap_or_default();
            found.push((step.clone(), with));
        }
    }
    found
}

/// The names under `key` (`inputs` or `outputs`) of action.yml.
fn action_names(key: &str) -> Vec<String> {
    workflow_at(ACTION)[key]
        .as_hash()
        .unwrap_or_else(|| panic!("{ACTION}: {key}"))
        .keys()
        .map(|name| name.as_str().expect("names").to_owned())
        .collect()
}

#[test]
fn the_workflow_gives_the_action_only_its_inputs_and_reads_only_its_outputs() {
    let inputs = action_names("inputs");
    let outputs = action_names("outputs");
    let workflow = workflow_at(PR_WORKFLOW);
    let uses = action_steps(&workflow);
    assert!(
        uses.len() >= 3,
        "{PR_WORKFLOW} uses the action: {}",
        uses.len()
    );
    let mut ids = Vec::new();
    for (step, with) in &uses {
        for key in with.keys() {
            assert!(
                inputs.contains(key),
                "{PR_WORKFLOW}: the action has no input {key}"
            );
        }
        ids.push(step["id"].as_str().expect("each use has an id").to_owned());
    }
    let text = read(PR_WORKFLOW);
    for id in ids {
        let prefix = format!("steps.{id}.outputs.");
        for (at, _) in text.match_indices(&prefix) {
            let name: String = text[at + prefix.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            assert!(
                outputs.contains(&name),
                "{PR_WORKFLOW}: the action has no output {name}"
            );
        }
    }
}

#[test]
fn the_action_runs_scripts_that_exist_with_commands_that_parse() {
    let action = workflow_at(ACTION);
    let steps = action["runs"]["steps"].as_vec().expect("runs.steps");
    let ids: Vec<&str> = steps.iter().filter_map(|s| s["id"].as_str()).collect();
    let text = read(ACTION);
    for (at, _) in text.match_indices("steps.") {
        let id: String = text[at + "steps.".len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        assert!(ids.contains(&id.as_str()), "{ACTION}: no step with id {id}");
    }
    for name in ["verdict", "report-dir", "report", "exit-code"] {
        assert!(
            action_names("outputs").contains(&name.to_owned()),
            "output {name}"
        );
    }
    let mut scripts_run = 0;
    for (at, _) in text.match_indices("$GITHUB_ACTION_PATH/scripts/") {
        let path: String = text[at + "$GITHUB_ACTION_PATH/".len()..]
            .chars()
            .take_while(|c| !matches!(c, '"' | ' ' | '\''))
            .collect();
        let file = repo_root().join(&path);
        let mode = std::fs::metadata(&file)
            .unwrap_or_else(|e| panic!("{ACTION}: {path}: {e}"))
            .permissions();
        assert!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o111 != 0,
            "{path} is executable"
        );
        scripts_run += 1;
    }
    assert!(scripts_run >= 3, "{ACTION} runs its scripts");
    assert!(
        text.contains("actions/upload-artifact"),
        "the report is uploaded"
    );
    assert!(
        text.contains("actions/cache"),
        "kernels and toolchains are cached"
    );
    let lab = read("scripts/action/lab.sh");
    assert!(lab.contains("GITHUB_STEP_SUMMARY"), "the job summary");
    let run = commands(&lab, |w| w == "$rsslab");
    assert!(
        run.iter()
            .any(|args| args.first().map(String::as_str) == Some("run")),
        "lab.sh runs the lab: {run:?}"
    );
    for args in run {
        check_rsslab(&args).unwrap_or_else(|why| panic!("lab.sh: rsslab {args:?}: {why}"));
    }
}
