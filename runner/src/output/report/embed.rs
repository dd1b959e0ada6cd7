//! The raw records inside the page, so that `index.html` alone can be re-analysed, and the way
//! back out: [`embed_records`] packs them, [`unpack_report`] restores the `runs/` tree.
//!
//! The page ends with
//!
//! ```html
//! <script type="application/x-rsslab-records+tar+gzip;base64" id="rsslab-raw">
//! H4sIAAAAAAAA/+y9...
//! </script>
//! ```
//!
//! whose text is a base64 (standard alphabet, lines of 76 characters) of a gzip-compressed tar
//! archive of the lab's raw records, with paths as under the lab's output directory:
//! `runs/<scenario>/scenario.toml` once per scenario, then for every run
//! `runs/<scenario>/<kernel>[/<variant>]/run.json`, `samples.jsonl` and `console.log`, and
//! `comparison.json` when the lab was compared with a baseline (the report shows it). Files are
//! stored byte for byte as they are on disk (a run rendered from memory, as in tests, has its
//! record and samples serialised as the lab writes them), sorted by path, each with mode 0644,
//! owner 0 and time 0, so the same records always give the same archive. Browsers never run a
//! script of that type; any shell gets the tree back with
//! `sed -n '/id="rsslab-raw">/,/<\/script>/p' index.html | sed '1d;$d' | base64 -d | tar xz`,
//! and `rsslab unpack index.html --out DIR` does it with checks (only regular files under
//! `runs/` and `comparison.json`, no `..`), after which `rsslab report DIR` rebuilds the report.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::Serialize;

use crate::analysis::comparison::COMPARISON_JSON;
use crate::plan::RUNS_DIR;
use crate::records::{CONSOLE_LOG, LoadedRun, RUN_JSON, SAMPLES_JSONL};

/// The `id` of the element that holds the records.
pub const RAW_ELEMENT_ID: &str = "rsslab-raw";
/// Its `type`: not JavaScript, so never executed.
pub const RAW_MEDIA_TYPE: &str = "application/x-rsslab-records+tar+gzip;base64";
/// Base64 line length (as MIME's), so the page has no line of megabytes.
const LINE: usize = 76;

/// The records as the template embeds them.
#[derive(Debug, Clone, Serialize)]
pub struct EmbeddedRecords {
    pub id: &'static str,
    pub media_type: &'static str,
    /// Files and runs in the archive.
    pub files: usize,
    pub runs: usize,
    /// Size of the files, and of the compressed archive.
    pub raw_bytes: u64,
    pub compressed_bytes: u64,
    /// The archive, base64 in lines of 76.
    pub base64: String,
}

/// One file for the archive: its path under the output directory and its bytes.
type File = (String, Vec<u8>);

/// Packs the raw records of `runs` found under `out_dir`, with `scenario_sources` (scenario
/// id -> the `scenario.toml` the lab kept).
pub fn embed_records(
    out_dir: &Path,
    runs: &[LoadedRun],
    scenario_sources: &BTreeMap<String, Vec<u8>>,
) -> Result<EmbeddedRecords> {
    let files = record_files(out_dir, runs, scenario_sources)?;
    let embedded_runs = files
        .iter()
        .filter(|(path, _)| path.ends_with(RUN_JSON))
        .count();
    let raw_bytes = files.iter().map(|(_, bytes)| bytes.len() as u64).sum();
    let archive = tar_gz(&files)?;
    Ok(EmbeddedRecords {
        id: RAW_ELEMENT_ID,
        media_type: RAW_MEDIA_TYPE,
        files: files.len(),
        runs: embedded_runs,
        raw_bytes,
        compressed_bytes: archive.len() as u64,
        base64: base64_lines(&archive),
    })
}

/// Every file to embed, sorted by path.
fn record_files(
    out_dir: &Path,
    runs: &[LoadedRun],
    scenario_sources: &BTreeMap<String, Vec<u8>>,
) -> Result<Vec<File>> {
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    if let Ok(comparison) = fs::read(out_dir.join(COMPARISON_JSON)) {
        files.insert(COMPARISON_JSON.to_owned(), comparison);
    }
    for (scenario, source) in scenario_sources {
        files.insert(scenario_toml_path(scenario), source.clone());
    }
    for run in runs {
        let dir = &run.record.dir;
        if !is_safe_records_path(dir) {
            // A record that names a directory outside runs/ is not archived (nor read from).
            tracing::warn!("not embedding run {dir:?}: not a relative path under {RUNS_DIR}/");
            continue;
        }
        let on_disk = |name: &str| fs::read(out_dir.join(dir).join(name)).ok();
        let run_json = match on_disk(RUN_JSON) {
            Some(bytes) => bytes,
            None => (serde_json::to_string_pretty(&run.record)? + "\n").into_bytes(),
        };
        let samples = match on_disk(SAMPLES_JSONL) {
            Some(bytes) => bytes,
            None => {
                let mut text = String::new();
                for sample in &run.samples {
                    text.push_str(&serde_json::to_string(sample)?);
                    text.push('\n');
                }
                text.into_bytes()
            }
        };
        files.insert(format!("{dir}/{RUN_JSON}"), run_json);
        files.insert(format!("{dir}/{SAMPLES_JSONL}"), samples);
        if let Some(console) = on_disk(CONSOLE_LOG) {
            files.insert(format!("{dir}/{CONSOLE_LOG}"), console);
        }
        for (_, _, name) in crate::records::output_files(&run.record.spec) {
            if let Some(output) = on_disk(&name) {
                files.insert(format!("{dir}/{name}"), output);
            }
        }
    }
    Ok(files.into_iter().collect())
}

/// `runs/<scenario>/scenario.toml`.
pub fn scenario_toml_path(scenario: &str) -> String {
    format!("{RUNS_DIR}/{scenario}/{}", crate::records::SCENARIO_TOML)
}

/// A relative path of plain components whose first is `runs`.
fn is_safe_records_path(path: &str) -> bool {
    let path = Path::new(path);
    path.components()
        .all(|part| matches!(part, Component::Normal(_)))
        && path.components().next() == Some(Component::Normal(RUNS_DIR.as_ref()))
}

/// A deterministic tar.gz of `files`.
fn tar_gz(files: &[File]) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    for (path, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        builder
            .append_data(&mut header, path, bytes.as_slice())
            .with_context(|| format!("archiving {path}"))?;
    }
    let encoder = builder
        .into_inner()
        .context("finishing the records archive")?;
    encoder.finish().context("compressing the records archive")
}

fn base64_lines(bytes: &[u8]) -> String {
    let encoded = STANDARD.encode(bytes);
    let mut lines = String::with_capacity(encoded.len() + encoded.len() / LINE + 1);
    for chunk in encoded.as_bytes().chunks(LINE) {
        // Base64 is ASCII.
        lines.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        lines.push('\n');
    }
    lines
}

/// What [`unpack_report`] wrote.
#[derive(Debug, Clone)]
pub struct Unpacked {
    /// Every file written, relative to the output directory, sorted.
    pub files: Vec<PathBuf>,
    /// Runs among them (their `run.json`).
    pub runs: usize,
}

/// Extracts the records embedded in the report at `report` into `out_dir`, which then holds
/// `runs/` (and `comparison.json`) as the lab that wrote the report had it. `out_dir` may
/// exist, but not its `runs/` or `comparison.json`.
pub fn unpack_report(report: &Path, out_dir: &Path) -> Result<Unpacked> {
    let html =
        fs::read_to_string(report).with_context(|| format!("reading {}", report.display()))?;
    let archive = embedded_archive(&html)
        .with_context(|| format!("{}: no records to unpack", report.display()))?;
    for taken in [RUNS_DIR, COMPARISON_JSON] {
        let path = out_dir.join(taken);
        if path.exists() {
            bail!(
                "{} exists: unpack into a new or empty directory",
                path.display()
            );
        }
    }
    let files = read_archive(&archive)
        .with_context(|| format!("{}: the embedded records are damaged", report.display()))?;
    for (path, bytes) in &files {
        let target = out_dir.join(path);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        fs::write(&target, bytes).with_context(|| format!("writing {}", target.display()))?;
    }
    Ok(Unpacked {
        runs: files
            .iter()
            .filter(|(path, _)| path.ends_with(RUN_JSON))
            .count(),
        files: files
            .into_iter()
            .map(|(path, _)| PathBuf::from(path))
            .collect(),
    })
}

/// The decoded archive of a report's records element.
fn embedded_archive(html: &str) -> Result<Vec<u8>> {
    let opening = format!("<script type=\"{RAW_MEDIA_TYPE}\" id=\"{RAW_ELEMENT_ID}\">");
    let start = html.find(&opening).ok_or_else(|| {
        anyhow!("it has no <script id=\"{RAW_ELEMENT_ID}\"> (not an rsslab report, or one written before records were embedded)")
    })? + opening.len();
    let end = html[start..]
        .find("</script>")
        .ok_or_else(|| anyhow!("the records element is not closed"))?
        + start;
    let text: Vec<u8> = html[start..end]
        .bytes()
        .filter(|byte| !byte.is_ascii_whitespace())
        .collect();
    STANDARD
        .decode(text)
        .context("the records element is not base64")
}

/// The files of a records archive, checked: regular files with safe paths under `runs/`.
fn read_archive(archive: &[u8]) -> Result<Vec<File>> {
    let mut files = Vec::new();
    let mut tar = tar::Archive::new(GzDecoder::new(archive));
    for entry in tar.entries().context("reading the archive")? {
        let mut entry = entry.context("reading an archive entry")?;
        let path = entry.path().context("an archive entry's path")?;
        let path = path
            .to_str()
            .ok_or_else(|| anyhow!("an entry's path is not UTF-8: {}", path.display()))?
            .to_owned();
        if entry.header().entry_type() != tar::EntryType::Regular {
            bail!("{path}: not a regular file");
        }
        if !is_safe_records_path(&path) && path != COMPARISON_JSON {
            bail!("{path}: not a relative path under {RUNS_DIR}/ nor {COMPARISON_JSON}");
        }
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading {path}"))?;
        files.push((path, bytes));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::testing::fake_run;

    #[test]
    fn archive_round_trips_and_is_deterministic() {
        let files: Vec<File> = vec![
            ("runs/a/scenario.toml".into(), b"[scenario]\n".to_vec()),
            (
                format!("runs/a/6.1/{}/run.json", "v".repeat(120)),
                vec![0xff, 0, 1, 2],
            ),
        ];
        let archive = tar_gz(&files).unwrap();
        assert_eq!(archive, tar_gz(&files).unwrap());
        assert_eq!(read_archive(&archive).unwrap(), files);
    }

    #[test]
    fn unsafe_paths_are_refused() {
        for path in ["runs/../etc/passwd", "/runs/a", "etc/a", "./runs/a", ""] {
            assert!(!is_safe_records_path(path), "{path}");
        }
        assert!(is_safe_records_path("runs/a/6.1/x=y/run.json"));
        let archive = {
            let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
            let mut header = tar::Header::new_gnu();
            header.set_size(1);
            header.set_mode(0o644);
            // `append_data` refuses `..` itself; write the name into the header directly.
            header.as_gnu_mut().unwrap().name[..16].copy_from_slice(b"runs/../../evil\0");
            header.set_cksum();
            builder.append(&header, &b"x"[..]).unwrap();
            builder.into_inner().unwrap().finish().unwrap()
        };
        let error = read_archive(&archive).unwrap_err();
        assert!(
            format!("{error:#}").contains("not a relative path"),
            "{error:#}"
        );
    }

    #[test]
    fn a_page_without_records_says_so() {
        let error = embedded_archive("<html><body>old report</body></html>").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("written before records were embedded")
        );
    }

    #[test]
    fn a_record_naming_a_directory_outside_runs_is_left_out() {
        let mut run = fake_run("demo", "6.1", "free");
        run.record.dir = "../../etc".into();
        let dir = tempfile::tempdir().unwrap();
        let files = record_files(dir.path(), &[run], &BTreeMap::new()).unwrap();
        assert!(
            files.is_empty(),
            "{:?}",
            files.iter().map(|f| &f.0).collect::<Vec<_>>()
        );
    }

    #[test]
    fn runs_from_memory_are_serialised_as_the_lab_writes_them() {
        let run = fake_run("demo", "6.1", "free");
        let dir = tempfile::tempdir().unwrap();
        let files = record_files(dir.path(), std::slice::from_ref(&run), &BTreeMap::new()).unwrap();
        let names: Vec<&str> = files.iter().map(|(path, _)| path.as_str()).collect();
        assert_eq!(
            names,
            [
                "runs/demo/6.1/release=free/run.json",
                "runs/demo/6.1/release=free/samples.jsonl"
            ]
        );
        let record: crate::records::RunRecord = serde_json::from_slice(&files[0].1).unwrap();
        assert_eq!(record, run.record);
        let lines = std::str::from_utf8(&files[1].1).unwrap().lines().count();
        assert_eq!(lines, run.samples.len());
    }
}
