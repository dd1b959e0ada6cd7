//! Helpers shared by the integration tests: running the binary, reading raw records.

#![allow(dead_code)]

pub mod lab;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// Runs the `rsslab` binary built for these tests.
pub fn rsslab<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    rsslab_with_env(args, &[])
}

/// Runs `rsslab` with extra environment variables.
pub fn rsslab_with_env<S: AsRef<std::ffi::OsStr>>(args: &[S], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rsslab"));
    command.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("running rsslab")
}

/// A run directory's samples.jsonl, parsed.
pub fn samples_of(run_dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(run_dir.join("samples.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}
