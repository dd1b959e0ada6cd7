//! A lab compared with its baseline: the [`Comparison`] that [`crate::analysis::diff`] makes,
//! kept in the new lab's `comparison.json` so that `rsslab report DIR` shows it again and
//! `results.json` carries it (`baseline`).

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::files::write_atomically;

/// Where `rsslab run --baseline` and `rsslab report --baseline` keep the comparison, in the
/// new lab's output directory (`rsslab report DIR` shows it again).
pub const COMPARISON_JSON: &str = "comparison.json";

/// A lab compared with its baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The baseline's directory, as given.
    pub baseline: String,
    /// Scenario × kernel × variant combinations present on both sides.
    pub compared: usize,
    /// Combinations only the baseline has (`scenario/kernel[/variant]`).
    pub only_in_baseline: Vec<String>,
    /// Combinations only the new lab has.
    pub only_in_new: Vec<String>,
    /// Every change, regressions first.
    pub changes: Vec<Change>,
}

/// One thing that differs between the baseline and the new runs of a combination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub scenario: String,
    pub kernel: String,
    pub variant_label: String,
    /// What differs: `outcome`, `process.<name>.outcome`, `expect: <name>`, or a key number
    /// such as `max process.service.rss`.
    pub what: String,
    pub verdict: Verdict,
    /// The baseline's value(s) in words (`survived ×3`, `51.0MiB`).
    pub baseline: String,
    /// The new value(s) in words.
    pub new: String,
    /// The size of the change and the test that judged it.
    pub detail: String,
    /// The catalogue's note when the change is known kernel behaviour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// How a change is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Worse: `rsslab diff` and `rsslab run --baseline` exit 1.
    Regression,
    /// Known kernel behaviour (the catalogue says so): not a regression.
    Expected,
    /// Different, neither better nor worse.
    Changed,
    /// Better.
    Improvement,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Regression => "regression",
            Verdict::Expected => "expected",
            Verdict::Changed => "changed",
            Verdict::Improvement => "improvement",
        }
    }
}

impl Comparison {
    /// Changes judged regressions.
    pub fn regressions(&self) -> usize {
        self.count(Verdict::Regression)
    }

    pub fn count(&self, verdict: Verdict) -> usize {
        self.changes
            .iter()
            .filter(|change| change.verdict == verdict)
            .count()
    }
}

/// Reads `out_dir/comparison.json` when a baseline comparison was made for it.
pub fn load_comparison(out_dir: &Path) -> Result<Option<Comparison>> {
    let path = out_dir.join(COMPARISON_JSON);
    if !path.is_file() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let comparison =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(Some(comparison))
}

/// Writes `out_dir/comparison.json`.
pub fn write_comparison(out_dir: &Path, comparison: &Comparison) -> Result<()> {
    let json = serde_json::to_string_pretty(comparison).context("serializing the comparison")?;
    write_atomically(&out_dir.join(COMPARISON_JSON), (json + "\n").as_bytes())
}
