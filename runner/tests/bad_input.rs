//! The bad-input corpus, `tests/fixtures/bad/`: each file makes one mistake (its first line says
//! which) and is named after it. `rsslab check FILE` must exit 2, and every error it prints must
//! say where (`file:line:col`), what is wrong and what to do (`= help:`). The messages are
//! snapshots (`tests/snapshots/bad_input__*.snap`, one per file): reviewed by eye, so a change
//! in wording shows up in review. The built-in lab and the good fixtures must pass.

mod support;

use std::ffi::OsStr;
use std::path::Path;

use support::rsslab;

/// The corpus, relative to the runner crate (where `rsslab` runs in these tests).
const CORPUS: &str = "tests/fixtures/bad";

/// `path` relative to the runner crate, so snapshots do not depend on the checkout.
fn relative(path: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Runs `rsslab check` on `target`; asserts exit 2, nothing on stdout, and that every error
/// is placed in a file under `target` and has a help line. Returns stderr.
fn refused(target: &str) -> String {
    let output = rsslab(&["check", target]);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{target}:\n{stderr}");
    assert!(output.stdout.is_empty(), "{target}: stdout is for `ok:`");
    let errors: Vec<&str> = stderr
        .split("\nerror: ")
        .filter(|block| !block.contains("errors in scenario files"))
        .collect();
    assert!(!errors.is_empty(), "{target}: no error:\n{stderr}");
    for error in errors {
        // An error in a file the scenario reads (a manifest) is placed there, and names the
        // scenario that read it.
        let place = if error.contains(&format!("read by the scenario {target}")) {
            ""
        } else {
            target
        };
        let located = error.lines().any(|line| {
            line.trim_start()
                .strip_prefix("--> ")
                .and_then(|at| at.strip_prefix(place))
                .and_then(|at| at.rsplit_once(':'))
                .is_some_and(|(rest, column)| {
                    let line = rest.rsplit(':').next().unwrap_or("");
                    column.parse::<usize>().is_ok_and(|c| c >= 1)
                        && line.parse::<usize>().is_ok_and(|l| l >= 1)
                })
        });
        assert!(located, "{target}: no <file>:<line>:<col> in\n{error}");
        assert!(
            error.contains(" = help: "),
            "{target}: no help (what to do) in\n{error}"
        );
    }
    stderr
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == '_' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

/// Each file of the corpus: refused, placed, fixed, and its message as reviewed.
#[test]
fn every_file() {
    // Host paths are made absolute: shown from the runner crate on.
    let root = regex_escape(env!("CARGO_MANIFEST_DIR"));
    insta::with_settings!({ filters => vec![(root.as_str(), "[runner]")] }, {
        insta::glob!("fixtures/bad/*.toml", |path| {
            insta::assert_snapshot!(refused(&relative(path)));
        });
    });
}

#[test]
fn the_corpus_covers_at_least_fifty_mistakes() {
    let files = std::fs::read_dir(CORPUS)
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|entry| entry.path().extension().is_some_and(|ext| ext == "toml"))
        })
        .count();
    assert!(files >= 50, "{files} files in {CORPUS}");
}

#[test]
fn two_files_with_one_scenario_id_are_refused_at_the_second() {
    let dir = format!("{CORPUS}/duplicate-scenario-id");
    let stderr = refused(&dir);
    assert!(
        stderr.contains(&format!("{dir}/second.toml:3:6")),
        "{stderr}"
    );
    insta::assert_snapshot!("duplicate-scenario-id", stderr);
}

#[test]
fn checking_the_whole_corpus_reports_every_file() {
    let stderr = refused(CORPUS);
    for entry in std::fs::read_dir(CORPUS).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "toml") {
            let name = path.display().to_string();
            assert!(stderr.contains(&format!("{name}:")), "{name} not reported");
        }
    }
}

#[test]
fn the_built_in_lab_and_the_good_fixtures_pass_each_file_on_its_own() {
    for dir in ["../scenarios", "tests/fixtures/good", "tests/fixtures/vm"] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let output = rsslab(&[OsStr::new("check"), path.as_os_str()]);
            assert!(
                output.status.success(),
                "{}:\n{}",
                path.display(),
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(String::from_utf8_lossy(&output.stdout).starts_with("ok: 1 scenarios"));
        }
    }
    let output = rsslab(&["check", "../scenarios"]);
    assert!(output.status.success());
}
