//! `index.html`: one self-contained page per lab (inline CSS and SVG, no script to run, no
//! external request: its Content-Security-Policy forbids any), rebuilt from the raw records
//! alone, printable, and carrying those records, so the file alone can be attached to a
//! postmortem and re-analysed.
//!
//! # How to read the report
//!
//! - **Header.** When the page was generated, by which rsslab, and from which git revision the
//!   runs came; how many runs of how many scenarios on how many kernels, how they ended
//!   (`ok`, `unsupported`, `kernel-panic`, `vm-timeout`, `infra-error`), how many expectations
//!   passed and failed, the accelerator (KVM, or TCG: software emulation, so timings and boot
//!   times are slow but the memory figures are real, since the guest kernel runs unchanged),
//!   runs retried after a kernel panic, runs whose guest found the kernel's facts otherwise
//!   than the catalogue, the changes against a baseline, and the size of the embedded raw
//!   records.
//! - **Findings.** Per scenario, what differs between its variants and kernels and by how much
//!   ([`crate::analysis::findings`]): the measure of an expectation (badge `expected`, or
//!   `expectation failed`) or a peak no expectation looks at (`new`), with the kernel facts a
//!   split by kernel follows and links to the runs it rests on. Nothing is said where the
//!   runs agree within noise.
//! - **Matrix.** One row per scenario and variant, one column per kernel. Each cell is a run,
//!   linking to its section: its outcome, a badge for its expectations (`3/3 expectations`,
//!   or `1 of 3 expectations failed`), then per process how it ended and three numbers in
//!   MiB: **peak** RSS (the kernel's VmHWM or the highest sample), RSS at the **end** (last
//!   sample) and the largest **lazyfree** (pages freed with MADV_FREE still counted in RSS);
//!   and, when the run has a cgroup, its version, its peak **working set** and its **limit**
//!   (`memory.max`, v1 `memory.limit_in_bytes`; `none` without one) and `memory.high` when set.
//!   A cell whose scenario, kernel and variant regressed against the baseline says how often
//!   (`2 regressions`).
//! - **Against the baseline** (when the lab was compared with one: `rsslab run --baseline`,
//!   `rsslab report --baseline`; see [`crate::analysis::diff`]). The baseline's directory, the counts
//!   per verdict (regression, expected, changed, improvement), a table of every change (the
//!   run it concerns, linked; what changed; the baseline's value and the new one; the size and
//!   the test that judged it, and the kernel catalogue's note when it is expected), and the
//!   combinations on one side only.
//! - **Scenarios.** Per scenario its id, title and story, then:
//!   - **Variants**: each variant's label, the matrix overrides that make it, its runs;
//!   - **Kernels compared**: per variant one row of small charts, one per kernel, all on the
//!     same axes (MiB over seconds), of what tells the scenario's story: each process's RSS,
//!     its lazyfree when a process of the scenario had lazily-freed memory, the cgroup's
//!     working set and `memory.max` when it has a cgroup, Committed_AS and CommitLimit when it
//!     sets `vm.overcommit_memory` ([`plot::Focus`]). Thin vertical lines are events; a
//!     panel's title is the kernel and the run's outcome, red when not `ok`. A kernel that
//!     changed the behaviour is the panel that looks different;
//!   - the **scenario file** as the lab kept it (`runs/<scenario>/scenario.toml`), folded,
//!     with its sha256 and whether it is the file the runs recorded;
//!   - one section per run:
//!     - the run's kernel (`uname -r`), variant, accelerator, wall time and time to the first
//!       sample, boots, samples, start time, initramfs digest and the guest's features; why,
//!       when it did not end `ok`;
//!     - a **red banner** when the guest probed a kernel fact otherwise than the catalogue (or
//!       the kernel's config) says, one line per fact (`catalogue says mglru_default = false,
//!       the guest read lru_gen/enabled = 0x0007`); the run's matrix cell then carries a
//!       `kernel facts differ` badge and the header counts such runs;
//!     - its **expectations**, each passed or failed with what was measured;
//!     - two **charts** side by side on the scenario's axes, MiB over seconds. *Processes*:
//!       per process in its colour, RSS (thick), its anon (thin), file (dotted) and shmem
//!       (dash-dot) parts and lazyfree (dashed); a part that never reaches 5% of the
//!       process's peak RSS (or 1 MiB) is left out. *cgroup and guest*: the cgroup's usage,
//!       working set (usage − inactive_file, what the kubelet and dashboards call memory),
//!       page cache (`file`, `active_file`) against `memory.max` and `memory.high` (dashed red
//!       and orange), the guest's MemAvailable and Cached, and the kubelet's
//!       `memory.available` (the guest's `kubelet_available`, else capacity − working set);
//!       Committed_AS against CommitLimit when the scenario sets overcommit. Vertical lines
//!       mark events, labelled: green a process started, blue a workload phase
//!       (`service:released`), grey a process ended, red an OOM kill. Series are decimated to
//!       a few points per pixel column, keeping every peak and dip. Below them, on the same
//!       time axis and events, what the kernel did, per second between samples: *Pressure*,
//!       the milliseconds in which some task (or every non-idle task) of the guest or the
//!       cgroup waited for memory (PSI), and *Reclaim*, pages scanned and reclaimed, refaults,
//!       major faults and the cgroup's `memory.events` (a flat line: it did not move). A run
//!       with pods has, after the cgroup chart (whose cgroup is then the node's `kubepods`),
//!       one chart per pod titled with its QoS class (`Pod web (Burstable)`), on axes fitted
//!       to that pod in every run of the scenario: per container in its colour its working
//!       set (thick), RSS (thin, cAdvisor's `rss`) and page cache (`file`, dotted) against its
//!       limit (dashed) and `memory.high` (dash-dot) where the kernel read them back after the
//!       kubelet's rules wrote them, and the pod's own limit (dashed grey);
//!     - **Pods as the kubelet made them** (a run with pods; folded): the Kubernetes version,
//!       cgroup version and driver, node allocatable and the node settings the scenario set;
//!       the values of `kubepods` and the QoS levels; per pod its QoS class and a table of
//!       every value written into its cgroup and its containers' (the cgroup's own name, its
//!       full path as a tooltip; the file; the value written and the value the kernel read
//!       back, sizes also in MiB, a read-back that differs from the write marked, as a
//!       page-rounded `memory.high`; the rule with its numbers and the Kubernetes source it
//!       follows), and per container its request and limit and its processes (the main one
//!       first) with the `oom_score_adj` each read back when it started;
//!     - the **at each phase** table: for every event, the values things *settled at* (the
//!       last sample before the next event) of each process's RSS and lazyfree, the guest's
//!       MemAvailable and the cgroup's usage, working set and page cache (`file`): that is
//!       where the story shows, e.g. after
//!       `service:released` RSS stays high with most of it lazyfree under MADV_FREE, but falls
//!       at once under MADV_DONTNEED, and after `balloon:full` the service's RSS has fallen
//!       because the kernel reclaimed the lazily-freed pages;
//!     - the **processes** table (workload, outcome, start and end, peaks in MiB: RSS, RSS at
//!       end, lazyfree, anon, file, VSZ, swap), the cgroup's limits and peaks, OOM kills,
//!       set-up steps that failed, the workloads' log lines, and links to the raw files
//!       (`run.json`, `samples.jsonl`, `console.log`) next to `index.html`;
//!     - for a run that did not end `ok`, the last lines of its console log.
//! - **Provenance.** Per kernel, the packages booted with their version and sha256; each
//!   scenario file's path and sha256; QEMU's version, the accelerators, the rsslab that ran
//!   the VMs and its git revision, the rsslab that wrote the page, the hosts; and the embedded
//!   raw records, with how to get them out.
//!
//! Every string that comes from a scenario or a guest is escaped: in HTML by the template
//! engine (autoescape), in SVG by plotters and [`plot::escape_xml`]; the scenario's story is
//! parsed into text spans ([`story`]), never passed through as markup.
//!
//! # The embedded raw records
//!
//! The page ends with a `<script type="application/x-rsslab-records+tar+gzip;base64"
//! id="rsslab-raw">` element, a type browsers never execute, holding the base64 (lines of 76)
//! of a gzip-compressed tar archive of the lab's raw records with their paths under the output
//! directory: `runs/<scenario>/scenario.toml`, per run `runs/<scenario>/<kernel>[/<variant>]/`
//! `run.json`, `samples.jsonl` and `console.log`, and `comparison.json` when the lab was
//! compared with a baseline; byte for byte, sorted, with fixed metadata.
//! [`unpack_report`] (`rsslab unpack index.html --out DIR`) writes them back into `DIR/runs/`,
//! after which `rsslab report DIR` rebuilds the same report; details in [`embed`].
//!
//! # How it is made
//!
//! [`render_report`] reads nothing but the records it is given and, from `out_dir`, the
//! scenario files, console logs and raw files to embed. The figures ([`figures`]: one job per
//! chart, drawn in parallel on rayon's pool) and the records' archive are made side by side;
//! the page is the template `templates/report.html` filled from a `Serialize` context
//! (`context.rs`). Each run's section is `content-visibility: auto`, so a browser lays out and
//! paints only the runs near the screen: a page of hundreds of runs opens in seconds.

mod baseline;
mod context;
pub mod embed;
pub mod figures;
mod findings;
mod matrix;
pub mod phases;
pub mod plot;
mod pods;
mod provenance;
mod run;
pub mod story;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use minijinja::{Environment, UndefinedBehavior};
use rsslab_wire::RunOutcome;

use self::context::report_context;
pub use self::embed::{EmbeddedRecords, RAW_ELEMENT_ID, RAW_MEDIA_TYPE, Unpacked, unpack_report};
use self::phases::format_mib;
use self::plot::seconds;
pub use self::story::Story;
use crate::analysis::results::{Results, RunResult};
use crate::files::write_atomically;
use crate::records::LoadedRun;

/// File name of the report under the output directory.
pub const INDEX_HTML: &str = "index.html";
/// Lines of console log shown for a run that did not end `ok`.
pub const CONSOLE_TAIL_LINES: usize = 40;

const TEMPLATE_NAME: &str = "report.html";
const TEMPLATE: &str = include_str!("../../../templates/report.html");

/// Writes `out_dir/index.html` for `runs`, summarised in `results`. Scenario stories come from
/// the runs' records, scenario files, console logs and raw records from `out_dir`.
pub fn render_report(out_dir: &Path, runs: &[LoadedRun], results: &Results) -> Result<PathBuf> {
    let stories = scenario_stories(runs);
    let html = render_html(out_dir, runs, results, &stories)?;
    let path = out_dir.join(INDEX_HTML);
    write_atomically(&path, html.as_bytes())?;
    Ok(path)
}

/// Stories by scenario id, from the runs' records (each record carries its scenario's story,
/// so a report rebuilt from raw files alone still tells it).
pub fn scenario_stories(runs: &[LoadedRun]) -> BTreeMap<String, Story> {
    let mut stories = BTreeMap::new();
    for run in runs {
        stories
            .entry(run.record.scenario.clone())
            .or_insert_with(|| Story::from_markdown(&run.record.story));
    }
    stories
}

/// The page as a string: `runs` summarised in `results`, with `stories` by scenario id.
/// `out_dir` is where the runs' directories are (scenario files, console logs, raw records).
pub fn render_html(
    out_dir: &Path,
    runs: &[LoadedRun],
    results: &Results,
    stories: &BTreeMap<String, Story>,
) -> Result<String> {
    let context = report_context(out_dir, runs, results, stories)?;
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_template(TEMPLATE_NAME, TEMPLATE)
        .context("parsing the report template")?;
    let template = env.get_template(TEMPLATE_NAME)?;
    template
        .render(&context)
        .context("rendering the report template")
}

/// A log line fit for a page: ANSI escape sequences and control characters removed, at most
/// 500 characters.
pub(crate) fn clean_line(line: &str) -> String {
    let mut clean = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte.
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else if c == '\t' {
            clean.push_str("    ");
        } else if !c.is_control() {
            clean.push(c);
        }
    }
    plot::truncate(&clean, 500)
}

/// A relative path for an `href`: every byte outside a small safe set percent-encoded (so
/// no scheme such as `javascript:` can appear).
pub(crate) fn encode_path(path: &str) -> String {
    let mut encoded = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/=+,".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Makes ids unique within the page.
#[derive(Default)]
pub(crate) struct Anchors {
    used: BTreeSet<String>,
}

impl Anchors {
    pub(crate) fn unique(&mut self, wanted: &str) -> String {
        let mut candidate = wanted.to_owned();
        let mut n = 2;
        while !self.used.insert(candidate.clone()) {
            candidate = format!("{wanted}-{n}");
            n += 1;
        }
        candidate
    }
}

/// `[a-z0-9-]` only, for ids.
pub(crate) fn slug(text: &str) -> String {
    let mut slug = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '.' {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_matches('-').replace('.', "_")
}

pub(crate) fn run_slug(run: &RunResult) -> String {
    let variant = if run.variant_label.is_empty() {
        String::new()
    } else {
        format!("-{}", run.variant_label)
    };
    slug(&format!("{}-{}{variant}", run.scenario, run.kernel))
}

pub(crate) fn run_class(outcome: RunOutcome) -> &'static str {
    match outcome {
        RunOutcome::Ok => "ok",
        RunOutcome::Unsupported => "skip",
        RunOutcome::KernelPanic | RunOutcome::VmTimeout | RunOutcome::InfraError => "bad",
    }
}

pub(crate) fn mib_or_dash(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "—".to_owned(), format_mib)
}

/// `850 ms`, `41.3 s`, `3 min 05 s`.
pub(crate) fn format_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", seconds(ms))
    } else {
        format!("{} min {:02} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

#[cfg(test)]
mod tests;
