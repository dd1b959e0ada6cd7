//! `rsslab merge DIR... --out DIR`: joins the raw records of several lab output directories
//! (the shards of one plan, each run on its own machine with `rsslab run --shard I/N`) into
//! one, from which [`crate::lab::write_outputs`] then builds every output.
//!
//! [`merge_raw_records`] copies each input's `runs/` tree (run directories and each
//! scenario's `runs/<scenario>/scenario.toml`) into `--out`; the inputs' own summaries
//! (`results.json`, `index.html`, ...) are not copied, they are rebuilt from the records.
//!
//! - A run directory (one with a `run.json`) may be in several inputs only with byte-identical
//!   files (the same shard given twice); otherwise each run belongs to one shard and the
//!   merge is refused, naming both inputs.
//! - `runs/<scenario>/scenario.toml`, the scenario as it ran, must be the same in every input:
//!   shards that ran different versions of a scenario do not make one lab. Any other file
//!   under `runs/` in several inputs must be identical too.
//! - Inputs are only read: `--out` may not be an input or inside one, and must not hold runs
//!   yet. Everything is checked before the first file is copied, so a refused merge writes
//!   nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::exit::{self, Failure};
use crate::plan::RUNS_DIR;
use crate::records::{RUN_JSON, SCENARIO_TOML};

/// What a merge copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// Run directories in the merged output.
    pub runs: usize,
    /// Files copied.
    pub files: usize,
}

/// Why the inputs cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error(
        "{0}: not a lab output directory (it has no {RUNS_DIR}/): give the --out directories \
         of `rsslab run`"
    )]
    NotALab(PathBuf),
    #[error("--out {out}: {why}; merge into a new or empty directory")]
    BadOut { out: PathBuf, why: String },
    #[error(
        "run {run} is in {first} and in {second} with different files ({difference}): each run \
         belongs to one shard; merge the shards of one plan, each once"
    )]
    RunConflict {
        run: PathBuf,
        first: PathBuf,
        second: PathBuf,
        difference: String,
    },
    #[error(
        "scenario {scenario}: {first} and {second} ran different versions of it (their \
         {RUNS_DIR}/{scenario}/{SCENARIO_TOML} differ): merge shards run from the same scenario \
         files"
    )]
    ScenarioConflict {
        scenario: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("{path} differs between {first} and {second}: merge shards of one lab")]
    FileConflict {
        path: PathBuf,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl From<MergeError> for Failure {
    fn from(error: MergeError) -> Self {
        let code = match error {
            MergeError::Io { .. } => exit::INFRASTRUCTURE,
            _ => exit::BAD_INPUT,
        };
        Failure {
            code,
            error: error.into(),
        }
    }
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> MergeError + use<> {
    let path = path.to_owned();
    move |source| MergeError::Io {
        action,
        path,
        source,
    }
}

/// Files of one run directory: path relative to the input -> absolute path.
type Files = BTreeMap<PathBuf, PathBuf>;

/// Where a run directory or a loose file was first found.
struct Found<T> {
    input: usize,
    what: T,
}

/// Copies the raw records of `inputs` into `out` (see the module docs for the rules).
pub fn merge_raw_records(inputs: &[PathBuf], out: &Path) -> Result<Merged, MergeError> {
    let mut resolved = Vec::new();
    for input in inputs {
        if !input.join(RUNS_DIR).is_dir() {
            return Err(MergeError::NotALab(input.clone()));
        }
        resolved.push(resolve(input)?);
    }
    check_out(inputs, &resolved, out)?;

    let mut runs: BTreeMap<PathBuf, Found<Files>> = BTreeMap::new();
    let mut loose: BTreeMap<PathBuf, Found<PathBuf>> = BTreeMap::new();
    for (index, root) in resolved.iter().enumerate() {
        let mut files = Vec::new();
        list_files(root, Path::new(RUNS_DIR), &mut files)?;
        let run_dirs: BTreeSet<PathBuf> = files
            .iter()
            .filter(|file| file.file_name().is_some_and(|name| name == RUN_JSON))
            .filter_map(|file| file.parent().map(Path::to_owned))
            .collect();
        let mut mine: BTreeMap<PathBuf, Files> = BTreeMap::new();
        for file in files {
            let absolute = root.join(&file);
            // A file belongs to the deepest run directory it is in, if any.
            match file.ancestors().skip(1).find(|dir| run_dirs.contains(*dir)) {
                Some(dir) => {
                    mine.entry(dir.to_owned())
                        .or_default()
                        .insert(file, absolute);
                }
                None => match loose.get(&file) {
                    Some(first) => {
                        if !same_contents(&first.what, &absolute)? {
                            return Err(loose_conflict(
                                &file,
                                &inputs[first.input],
                                &inputs[index],
                            ));
                        }
                    }
                    None => {
                        loose.insert(
                            file,
                            Found {
                                input: index,
                                what: absolute,
                            },
                        );
                    }
                },
            }
        }
        for (dir, files) in mine {
            match runs.get(&dir) {
                Some(first) => {
                    if let Some(difference) = run_difference(&first.what, &files)? {
                        return Err(MergeError::RunConflict {
                            run: dir,
                            first: inputs[first.input].clone(),
                            second: inputs[index].clone(),
                            difference,
                        });
                    }
                }
                None => {
                    runs.insert(
                        dir,
                        Found {
                            input: index,
                            what: files,
                        },
                    );
                }
            }
        }
    }

    let copies: Vec<(&PathBuf, &PathBuf)> = runs
        .values()
        .flat_map(|found| &found.what)
        .chain(loose.iter().map(|(file, found)| (file, &found.what)))
        .collect();
    fs::create_dir_all(out.join(RUNS_DIR)).map_err(io_error("creating", out))?;
    for (relative, source) in &copies {
        let target = out.join(relative);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(io_error("creating", parent))?;
        }
        fs::copy(source, &target).map_err(io_error("copying to", &target))?;
    }
    Ok(Merged {
        runs: runs.len(),
        files: copies.len(),
    })
}

/// `path` made absolute with symbolic links resolved, also when it does not exist yet.
fn resolve(path: &Path) -> Result<PathBuf, MergeError> {
    let absolute = std::path::absolute(path).map_err(io_error("resolving", path))?;
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => break,
        }
    }
    let mut resolved = existing
        .canonicalize()
        .map_err(io_error("resolving", existing))?;
    resolved.extend(rest.iter().rev());
    Ok(resolved)
}

/// `--out` must not be an input or inside one, and must hold no runs yet.
fn check_out(inputs: &[PathBuf], resolved: &[PathBuf], out: &Path) -> Result<(), MergeError> {
    let out_resolved = resolve(out)?;
    let bad = |why: String| MergeError::BadOut {
        out: out.to_owned(),
        why,
    };
    for (input, root) in inputs.iter().zip(resolved) {
        if out_resolved == *root {
            return Err(bad(format!("it is the input {}", input.display())));
        }
        if out_resolved.starts_with(root) {
            return Err(bad(format!(
                "it is inside the input {} (inputs are only read)",
                input.display()
            )));
        }
    }
    let runs = out.join(RUNS_DIR);
    if runs.is_dir() {
        let mut entries = fs::read_dir(&runs).map_err(io_error("reading", &runs))?;
        if entries.next().is_some() {
            return Err(bad(format!(
                "{} already holds runs (from an earlier run or merge)",
                runs.display()
            )));
        }
    }
    Ok(())
}

/// Every file under `root/relative`, as paths relative to `root`, sorted.
fn list_files(root: &Path, relative: &Path, found: &mut Vec<PathBuf>) -> Result<(), MergeError> {
    let dir = root.join(relative);
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .map_err(io_error("reading", &dir))?
        .map(|entry| entry.map(|entry| entry.file_name()))
        .collect::<Result<_, _>>()
        .map_err(io_error("reading", &dir))?;
    entries.sort();
    for name in entries {
        let path = relative.join(name);
        if root.join(&path).is_dir() {
            list_files(root, &path, found)?;
        } else {
            found.push(path);
        }
    }
    Ok(())
}

fn same_contents(a: &Path, b: &Path) -> Result<bool, MergeError> {
    let size = |path: &Path| {
        fs::metadata(path)
            .map(|m| m.len())
            .map_err(io_error("reading", path))
    };
    if size(a)? != size(b)? {
        return Ok(false);
    }
    let read = |path: &Path| fs::read(path).map_err(io_error("reading", path));
    Ok(read(a)? == read(b)?)
}

/// How two copies of a run directory differ, if they do.
fn run_difference(first: &Files, second: &Files) -> Result<Option<String>, MergeError> {
    let name = |path: &Path| {
        path.file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    for file in first.keys() {
        if !second.contains_key(file) {
            return Ok(Some(format!("{} only in the first", name(file))));
        }
    }
    for (file, path) in second {
        match first.get(file) {
            None => return Ok(Some(format!("{} only in the second", name(file)))),
            Some(other) if !same_contents(other, path)? => {
                return Ok(Some(format!("{} differs", name(file))));
            }
            Some(_) => {}
        }
    }
    Ok(None)
}

fn loose_conflict(file: &Path, first: &Path, second: &Path) -> MergeError {
    let parts: Vec<_> = file.components().collect();
    match parts.as_slice() {
        [_, scenario, name] if name.as_os_str() == SCENARIO_TOML => MergeError::ScenarioConflict {
            scenario: scenario.as_os_str().to_string_lossy().into_owned(),
            first: first.to_owned(),
            second: second.to_owned(),
        },
        _ => MergeError::FileConflict {
            path: file.to_owned(),
            first: first.to_owned(),
            second: second.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shard directory with the given run directories (each with run.json, samples.jsonl and
    /// console.log) and one scenario.toml per scenario.
    fn shard(root: &Path, runs: &[&str], scenario_toml: &str) {
        for run in runs {
            let dir = root.join(RUNS_DIR).join(run);
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join(RUN_JSON), format!("{{\"dir\": \"runs/{run}\"}}\n")).unwrap();
            fs::write(
                dir.join("samples.jsonl"),
                format!("{{\"t_ms\": 0, \"run\": \"{run}\"}}\n"),
            )
            .unwrap();
            fs::write(dir.join("console.log"), "Linux version\n").unwrap();
            let scenario = run.split('/').next().unwrap();
            fs::write(
                root.join(RUNS_DIR).join(scenario).join(SCENARIO_TOML),
                scenario_toml,
            )
            .unwrap();
        }
        fs::write(root.join("results.json"), "{}").unwrap();
    }

    /// Every file under `dir` with its contents.
    fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut files = Vec::new();
        list_files(dir, Path::new(""), &mut files).unwrap();
        files
            .into_iter()
            .map(|f| (f.clone(), fs::read(dir.join(f)).unwrap()))
            .collect()
    }

    #[test]
    fn merges_runs_of_two_shards_and_leaves_the_inputs_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b, out) = (
            tmp.path().join("a"),
            tmp.path().join("b"),
            tmp.path().join("out"),
        );
        shard(&a, &["demo/6.1/release=free", "other/5.10"], "id = 1");
        shard(
            &b,
            &["demo/6.1/release=dontneed", "demo/7.2/release=free"],
            "id = 1",
        );
        let before = (snapshot(&a), snapshot(&b));

        let merged = merge_raw_records(&[a.clone(), b.clone()], &out).unwrap();
        assert_eq!(
            merged,
            Merged {
                runs: 4,
                files: 4 * 3 + 2
            }
        );
        assert_eq!((snapshot(&a), snapshot(&b)), before);
        let files = snapshot(&out);
        assert_eq!(
            files.len(),
            merged.files,
            "results.json is not copied: {files:?}"
        );
        for run in [
            "demo/6.1/release=free",
            "demo/6.1/release=dontneed",
            "demo/7.2/release=free",
        ] {
            let samples = &files[&Path::new("runs").join(run).join("samples.jsonl")];
            assert!(String::from_utf8_lossy(samples).contains(run));
        }
        assert_eq!(files[Path::new("runs/demo/scenario.toml")], b"id = 1");
        assert!(files.contains_key(Path::new("runs/other/scenario.toml")));
    }

    #[test]
    fn the_same_run_twice_is_fine_when_identical_and_refused_otherwise() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        shard(&a, &["demo/6.1"], "id = 1");
        shard(&b, &["demo/6.1"], "id = 1");
        let merged = merge_raw_records(&[a.clone(), b.clone()], &tmp.path().join("same")).unwrap();
        assert_eq!(merged.runs, 1);

        fs::write(b.join("runs/demo/6.1/console.log"), "another boot\n").unwrap();
        let out = tmp.path().join("refused");
        let error = merge_raw_records(&[a.clone(), b.clone()], &out).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, MergeError::RunConflict { .. }), "{message}");
        for part in [
            "runs/demo/6.1",
            "console.log differs",
            &a.display().to_string(),
            &b.display().to_string(),
        ] {
            assert!(message.contains(part), "{part}: {message}");
        }
        assert!(!out.exists(), "nothing is written on a refusal");

        fs::write(b.join("runs/demo/6.1/console.attempt1.log"), "panic\n").unwrap();
        fs::write(b.join("runs/demo/6.1/console.log"), "Linux version\n").unwrap();
        let message = merge_raw_records(&[a, b], &out).unwrap_err().to_string();
        assert!(
            message.contains("console.attempt1.log only in the second"),
            "{message}"
        );
    }

    #[test]
    fn a_scenario_that_differs_between_shards_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        shard(&a, &["demo/6.1"], "id = 1");
        shard(&b, &["demo/7.2"], "id = 2");
        let error = merge_raw_records(&[a, b], &tmp.path().join("out")).unwrap_err();
        assert!(
            matches!(&error, MergeError::ScenarioConflict { scenario, .. } if scenario == "demo"),
            "{error}"
        );
        assert!(
            error.to_string().contains("runs/demo/scenario.toml differ"),
            "{error}"
        );
        assert_eq!(Failure::from(error).code, exit::BAD_INPUT);
    }

    #[test]
    fn out_may_not_be_an_input_be_inside_one_or_hold_runs() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a");
        shard(&a, &["demo/6.1"], "id = 1");
        let before = snapshot(&a);
        for (out, wanted) in [
            (a.clone(), "it is the input"),
            (a.join("runs/merged"), "inside the input"),
            (a.join("../a/new"), "inside the input"),
        ] {
            let error = merge_raw_records(std::slice::from_ref(&a), &out).unwrap_err();
            assert!(
                error.to_string().contains(wanted),
                "{}: {error}",
                out.display()
            );
        }
        assert_eq!(snapshot(&a), before);

        let used = tmp.path().join("used");
        shard(&used, &["old/6.1"], "");
        let error = merge_raw_records(std::slice::from_ref(&a), &used).unwrap_err();
        assert!(error.to_string().contains("already holds runs"), "{error}");

        let error =
            merge_raw_records(&[tmp.path().join("nothing")], &tmp.path().join("o")).unwrap_err();
        assert!(matches!(error, MergeError::NotALab(_)), "{error}");
    }

    #[test]
    fn an_input_without_runs_in_its_runs_directory_merges_to_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let empty = tmp.path().join("empty");
        fs::create_dir_all(empty.join(RUNS_DIR)).unwrap();
        let out = tmp.path().join("out");
        assert_eq!(
            merge_raw_records(&[empty], &out).unwrap(),
            Merged { runs: 0, files: 0 }
        );
        assert!(out.join(RUNS_DIR).is_dir());
    }
}
