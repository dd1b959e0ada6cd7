//! The property of the scenario parser: any text gives a scenario that plans, or diagnostics
//! that say where (inside the file), what and how to fix it.

use std::path::Path;

use rsslab::plan::{PlanFilter, plan};
use rsslab::scenario::{Diagnostic, parse_scenario};

/// The name the text is parsed under; every diagnostic must point into it.
pub const FILE: &str = "fuzz.toml";

/// The kernel catalogue ids scenarios are checked against.
pub fn kernels() -> Vec<String> {
    ["5.10", "6.1", "6.12", "7.2"].map(String::from).to_vec()
}

/// Parses `bytes` decoded lossily (the file reader refuses non-UTF-8 with its own located
/// error, tested with the corpus) and checks the outcome; panics on a violation.
pub fn check_bytes(bytes: &[u8]) {
    check_text(&String::from_utf8_lossy(bytes));
}

/// Parses `text` as a scenario file and checks the outcome; panics on a violation.
pub fn check_text(text: &str) {
    match parse_scenario(Path::new(FILE), text, &kernels()) {
        Ok(scenario) => {
            assert!(!scenario.variants.is_empty(), "a scenario without variants");
            assert!(
                !scenario.processes.is_empty(),
                "a scenario without processes"
            );
            let planned = plan(std::slice::from_ref(&scenario), &PlanFilter::default());
            assert_eq!(
                planned.runs.len(),
                scenario.variants.len() * scenario.kernels.len(),
                "one run per kernel and variant"
            );
        }
        Err(error) => {
            assert!(
                !error.diagnostics().is_empty(),
                "an error without diagnostics"
            );
            let rendered = error.to_string();
            let lines = text.lines().count().max(1);
            for diagnostic in error.diagnostics() {
                check_diagnostic(diagnostic, lines, &rendered);
            }
        }
    }
}

/// Where (inside the file), which key (named in the message), what and how to fix it.
fn check_diagnostic(diagnostic: &Diagnostic, lines: usize, rendered: &str) {
    let context = || format!("{diagnostic:?}\n{rendered}");
    assert_eq!(diagnostic.file, Path::new(FILE), "{}", context());
    assert!(
        (1..=lines + 1).contains(&diagnostic.line) && diagnostic.column >= 1,
        "no position inside the file: {}",
        context()
    );
    assert!(
        !diagnostic.message.trim().is_empty(),
        "no message: {}",
        context()
    );
    assert!(
        diagnostic.help.iter().any(|help| !help.trim().is_empty()),
        "no help: {}",
        context()
    );
    let (name, written) = key_name(&diagnostic.key);
    assert!(
        diagnostic.message.contains(&name) || diagnostic.message.contains(written),
        "the message does not name the key `{}`: {}",
        diagnostic.key,
        context()
    );
    let position = format!("{FILE}:{}:{}", diagnostic.line, diagnostic.column);
    assert!(
        rendered.contains(&position),
        "{position} not drawn: {}",
        context()
    );
}

/// The last name of a dotted key path, unquoted and as written: `heap` for
/// `process[0].args.heap`, `vm.memory` (written `"vm.memory"`) for `sysctl."vm.memory"`, `"`
/// (written `"\""`) for `process[1]."\""`, `process` for `process[64]`. A message may name a
/// key either way: an unknown key by its name, a key written twice as the file wrote it.
fn key_name(key: &str) -> (String, &str) {
    let key = key.trim_end_matches(|c: char| c == ']' || c.is_ascii_digit());
    let key = key.strip_suffix('[').unwrap_or(key);
    let (mut name, mut start) = (String::new(), 0);
    let mut chars = key.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '.' => (name, start) = (String::new(), at + 1),
            '"' => {
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\\' => name.extend(chars.next().map(|(_, c)| c)),
                        '"' => break,
                        c => name.push(c),
                    }
                }
            }
            c => name.push(c),
        }
    }
    (name, &key[start..])
}

#[cfg(test)]
mod tests {
    use super::key_name;

    #[test]
    fn key_names_are_the_last_segment_unquoted_and_as_written() {
        let name = |key| {
            let (name, written) = key_name(key);
            (name, written.to_owned())
        };
        assert_eq!(name("process[0].args.heap"), ("heap".into(), "heap".into()));
        assert_eq!(
            name(r#"sysctl."vm.memory""#),
            ("vm.memory".into(), r#""vm.memory""#.into())
        );
        assert_eq!(name(r#"process[1]."\"""#), ("\"".into(), r#""\"""#.into()));
        assert_eq!(
            name(r#"scenario."a\\b""#),
            ("a\\b".into(), r#""a\\b""#.into())
        );
        assert_eq!(name("process[64]"), ("process".into(), "process".into()));
    }
}
