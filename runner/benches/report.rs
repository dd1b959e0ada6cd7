//! How long the report of a large lab takes: synthesizes RUNS runs (default 500) from
//! `rsslab::records::testing`'s fakes (each 30 s sampled every 250 ms, two processes and a
//! cgroup, eight runs per scenario: two variants on four kernels), writes them as a lab in a
//! temporary directory, then times what `rsslab report DIR` does: load the raw records, build
//! `results.json`, render and write `index.html`. Prints numbers; asserts nothing about time.
//!
//! `cargo bench -p rsslab --bench report [-- RUNS]` (or `just bench-report`);
//! `RSSLAB_BENCH_OUT=DIR` keeps the lab and its report in DIR (emptied first) to look at.

use std::time::Instant;

use rsslab::analysis::results::{build_results, write_results};
use rsslab::output::report::render_report;
use rsslab::records::load_all;
use rsslab::records::testing::{fake_run, write_lab};

fn main() -> anyhow::Result<()> {
    let count: usize = match std::env::args().skip(1).find(|arg| !arg.starts_with('-')) {
        Some(arg) => arg.parse()?,
        None => 500,
    };
    let kernels = ["5.10", "6.1", "6.12", "7.2"];
    let mut runs: Vec<_> = (0..count)
        .map(|i| {
            let release = if i % 2 == 0 { "free" } else { "dontneed" };
            fake_run(
                &format!("scenario-{:03}", i / 8),
                kernels[(i / 2) % 4],
                release,
            )
        })
        .collect();
    let temporary = tempfile::tempdir()?;
    let dir = match std::env::var_os("RSSLAB_BENCH_OUT") {
        Some(out) => {
            let out = std::path::PathBuf::from(out);
            let _ = std::fs::remove_dir_all(&out);
            out
        }
        None => temporary.path().to_owned(),
    };
    write_lab(&dir, &mut runs, 200)?;

    let started = Instant::now();
    let loaded = load_all(&dir)?;
    let load = started.elapsed();
    let results = build_results(&loaded);
    write_results(&dir, &results)?;
    let summarise = started.elapsed() - load;
    let index = render_report(&dir, &loaded, &results)?;
    let total = started.elapsed();
    let render = total - load - summarise;

    let samples: usize = loaded.iter().map(|run| run.samples.len()).sum();
    let html = std::fs::read_to_string(&index)?;
    let mib = |bytes: usize| bytes as f64 / 1048576.0;
    let svg: usize = html
        .match_indices("<svg")
        .map(|(start, _)| html[start..].find("</svg>").unwrap_or(0))
        .sum();
    let records = html.len() - html.find("id=\"rsslab-raw\">").unwrap_or(html.len());
    println!(
        "report of {} runs ({samples} samples), {} threads:",
        loaded.len(),
        rayon::current_num_threads()
    );
    println!("  load raw records   {:>8.3} s", load.as_secs_f64());
    println!("  results.json       {:>8.3} s", summarise.as_secs_f64());
    println!(
        "  render index.html  {:>8.3} s  ({:.1} MiB: {:.1} MiB of SVG, {:.1} MiB of embedded records)",
        render.as_secs_f64(),
        mib(html.len()),
        mib(svg),
        mib(records)
    );
    println!("  total              {:>8.3} s", total.as_secs_f64());
    Ok(())
}
