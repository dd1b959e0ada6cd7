//! The machine outputs beside `results.json` and `index.html`: `junit.xml` for the test views
//! of CI systems and `summary.md` for a CI job summary or a chat message.
//!
//! One module per format, each with one entry function that renders [`Results`] to text;
//! [`write_exports`] writes them all, atomically, from the same results as the report (so
//! `rsslab report DIR` and `rsslab merge` rebuild them too).

pub mod junit;
pub mod summary;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::record::LoadedRun;
use crate::results::{Results, write_atomically};

/// File names under the output directory.
pub const JUNIT_XML: &str = "junit.xml";
pub const SUMMARY_MD: &str = "summary.md";

/// What [`write_exports`] wrote.
#[derive(Debug, Clone)]
pub struct Exports {
    pub junit: PathBuf,
    pub summary: PathBuf,
}

/// Writes `junit.xml` and `summary.md` into `out_dir` for `runs`, summarised in `results`.
pub fn write_exports(out_dir: &Path, runs: &[LoadedRun], results: &Results) -> Result<Exports> {
    let junit = out_dir.join(JUNIT_XML);
    let xml = junit::render_junit(results).context("serializing junit.xml")?;
    write_atomically(&junit, xml.as_bytes())?;
    let summary = out_dir.join(SUMMARY_MD);
    let markdown = summary::render_summary(results, runs);
    write_atomically(&summary, markdown.as_bytes())?;
    Ok(Exports { junit, summary })
}
