use std::time::Instant;

use super::testing::{HOSTILE, console_log, fake_lab, fake_run, hostile_run, write_run};
use super::*;
use crate::record::load_all;
use crate::results::build_results;

/// Writes `runs` as raw records under `out_dir`, each carrying `story`, then rebuilds
/// everything from the files, as `rsslab report` does.
fn render_lab(out_dir: &Path, runs: &mut [LoadedRun], story: &str) -> String {
    for run in runs.iter_mut() {
        run.record.story = story.to_owned();
        write_run(out_dir, run, &console_log(100));
    }
    let loaded = load_all(out_dir).unwrap();
    assert_eq!(loaded.len(), runs.len());
    let results = build_results(&loaded);
    let path = render_report(out_dir, &loaded, &results).unwrap();
    assert_eq!(path, out_dir.join(INDEX_HTML));
    fs::read_to_string(path).unwrap()
}

/// Every `<svg>...</svg>` of a page.
fn svgs(html: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<svg") {
        let end = rest[start..].find("</svg>").expect("closed svg") + start + "</svg>".len();
        found.push(&rest[start..end]);
        rest = &rest[end..];
    }
    found
}

/// Values of an attribute (`href="..."`) in a page.
fn attribute_values<'a>(html: &'a str, attribute: &str) -> Vec<&'a str> {
    let needle = format!("{attribute}=\"");
    html.match_indices(&needle)
        .map(|(at, _)| {
            let value = &html[at + needle.len()..];
            &value[..value.find('"').unwrap()]
        })
        .collect()
}

const STORY: &str = "Go 1.12 to 1.15 released memory with `MADV_FREE`.\nRSS stayed **high**.\n\n\
    - a list line\n- another\n\n\nThe balloon made the kernel reclaim it.";

#[test]
fn report_shows_matrix_charts_phases_and_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let mut runs = fake_lab();
    let html = render_lab(dir.path(), &mut runs, STORY);

    // One chart per run with samples; each is well-formed XML.
    let with_samples = runs.iter().filter(|run| !run.samples.is_empty()).count();
    let charts = svgs(&html);
    assert_eq!(charts.len(), with_samples);
    assert!(html.contains("No samples were recorded."));
    for svg in charts {
        roxmltree::Document::parse(svg).expect("inline SVG is well-formed");
    }

    // The matrix: kernels in version order, cells linking to the runs' sections.
    let matrix = &html[html.find("<table class=\"matrix\">").unwrap()..];
    let matrix = &matrix[..matrix.find("</table>").unwrap()];
    let headers: Vec<usize> = ["5.10", "6.1", "6.12", "7.2"]
        .iter()
        .map(|k| matrix.find(&format!("<th>{k}</th>")).unwrap())
        .collect();
    assert!(headers.is_sorted(), "{headers:?}");
    let ids = attribute_values(&html, "id");
    for link in attribute_values(matrix, "href") {
        let anchor = link
            .strip_prefix('#')
            .expect("matrix links stay in the page");
        assert!(ids.contains(&anchor), "no id {anchor}");
    }
    assert!(matrix.contains("vm-timeout") && matrix.contains("unsupported"));
    assert!(matrix.contains("oom-killed"));
    assert!(matrix.contains("peak <b>400</b>"), "{matrix}");

    // The story: paragraphs, a list, inline code and emphasis.
    assert!(html.contains(
        "<p>Go 1.12 to 1.15 released memory with <code>MADV_FREE</code>. RSS stayed <strong>high</strong>.</p>"
    ));
    assert!(html.contains("<ul>\n<li>a list line</li>\n<li>another</li>\n</ul>"));

    // The phase table of the MADV_FREE run on 6.1: after release RSS stays, as lazyfree.
    let section = run_section_html(&html, "run-go-madvfree-balloon-6_1-release-free");
    let row = phase_row(section, "service:released");
    assert!(
        row.contains("<td class=\"num\">400</td><td class=\"num\">350</td>"),
        "{row}"
    );
    let row = phase_row(section, "balloon:full");
    assert!(
        row.contains("<td class=\"num\">64</td><td class=\"num\">14</td>"),
        "{row}"
    );
    let section = run_section_html(&html, "run-go-madvfree-balloon-6_1-release-dontneed");
    let row = phase_row(section, "service:released");
    assert!(
        row.contains("<td class=\"num\">50</td><td class=\"num\">0</td>"),
        "{row}"
    );

    // A run that did not end ok shows the end of its console; an ok run does not.
    let timeout = run_section_html(&html, "run-overcommit-startup-6_12-release-free");
    assert!(timeout.contains("last 40 of 100 lines"), "{timeout}");
    assert!(timeout.contains("console line 61\n") && !timeout.contains("console line 60\n"));
    assert!(!section.contains("class=\"console\""));
    let unsupported = run_section_html(&html, "run-overcommit-startup-7_2-release-free");
    assert!(unsupported.contains("mount -t cgroup -o memory: ENOENT"));

    // Raw files, relative.
    let links: Vec<String> = attribute_values(&html, "href")
        .iter()
        .map(|href| href.replace("&#x2f;", "/"))
        .collect();
    assert!(links.contains(&"runs/go-madvfree-balloon/6.1/release=free/console.log".to_owned()));
    // Provenance and accelerator.
    assert!(html.contains("linux-image-6.12.0-28-cloud-amd64"));
    assert!(html.contains(&"0123456789abcdef".repeat(4)));
    assert!(html.contains("QEMU emulator version 10.0.2"));
    assert!(
        html.contains("TCG is QEMU&#x27;s software emulation")
            || html.contains("TCG is QEMU's software emulation")
    );
    assert!(html.contains("1 run booted twice"));
    assert_no_external_references(&html);
}

/// The row of a run's phase table that `event` opens.
fn phase_row<'a>(section: &'a str, event: &str) -> &'a str {
    let table = &section[section
        .find("<table class=\"data phases\">")
        .expect("a phase table")..];
    let start = table
        .find(event)
        .unwrap_or_else(|| panic!("no row for {event}"));
    &table[start..table[start..].find("</tr>").unwrap() + start]
}

/// The HTML of one run's `<article>`.
fn run_section_html<'a>(html: &'a str, anchor: &str) -> &'a str {
    let start = html
        .find(&format!("id=\"{anchor}\""))
        .unwrap_or_else(|| panic!("no section {anchor}"));
    let end = html[start..].find("</article>").unwrap() + start;
    &html[start..end]
}

fn assert_no_external_references(html: &str) {
    assert!(
        !html.to_lowercase().contains("<script"),
        "a script in the page"
    );
    assert!(
        attribute_values(html, "src").is_empty(),
        "the page loads something"
    );
    for href in attribute_values(html, "href") {
        assert!(
            !href.contains(':') && !href.starts_with("//"),
            "external link {href}"
        );
    }
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "a URL in the page"
    );
    assert!(
        !html.contains("@import") && !html.contains("url("),
        "CSS loads something"
    );
}

#[test]
fn hostile_strings_are_escaped_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let mut runs = vec![
        hostile_run(),
        fake_run("go-madvfree-balloon", "6.1", "free"),
    ];
    let story = format!("{HOSTILE}\n\n<img src=x onerror=alert(2)> see https://example.com/x");
    let html = render_lab(dir.path(), &mut runs, &story);

    assert!(
        !html.to_lowercase().contains("<script"),
        "raw <script> in the page"
    );
    assert!(!html.contains("<img"), "raw markup from the story");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt; &amp; &quot;x&quot;"));
    assert!(html.contains("&lt;img src=x onerror=alert(2)&gt;"));
    assert_no_external_references(&html);
    // The SVG carries the hostile process name, escaped by plotters, and stays well-formed.
    let charts = svgs(&html);
    assert_eq!(charts.len(), 2);
    for svg in charts {
        roxmltree::Document::parse(svg).expect("well-formed");
    }
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot; rss"));
    // The console of the failed hostile run is shown (escaped by construction: it is text).
    assert!(html.contains("console line 100"));
}

#[test]
fn hostile_console_lines_are_escaped_and_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = hostile_run();
    run.record.scenario = "c".into();
    let console = format!("boot\n\u{1b}[31m{HOSTILE}\u{1b}[0m\u{7}\n");
    write_run(dir.path(), &run, &console);
    let runs = load_all(dir.path()).unwrap();
    let html = render_html(
        dir.path(),
        &runs,
        &build_results(&runs),
        &scenario_stories(&runs),
    )
    .unwrap();
    assert!(
        html.contains("<pre class=\"console\">boot\n&lt;script&gt;"),
        "{html}"
    );
    assert!(!html.contains('\u{1b}') && !html.contains('\u{7}'));
}

#[test]
fn the_story_comes_from_the_record() {
    let mut run = fake_run("demo", "6.1", "free");
    run.record.story = "MADV_FREE keeps **RSS** high.".into();
    let stories = scenario_stories(&[run]);
    let story = &stories["demo"];
    assert_eq!(story.blocks.len(), 1);
}

#[test]
fn helpers() {
    assert_eq!(
        encode_path("runs/a b/6.1/x=y<\"javascript:"),
        "runs/a%20b/6.1/x=y%3C%22javascript%3A"
    );
    assert_eq!(
        slug("Go-MadvFree 6.1/release=free"),
        "go-madvfree-6_1-release-free"
    );
    assert_eq!(clean_line("\u{1b}[1;32mok\u{1b}[0m\tdone\r"), "ok    done");
    assert_eq!(format_ms(850), "850 ms");
    assert_eq!(format_ms(41_250), "41.2 s");
    assert_eq!(format_ms(185_000), "3 min 05 s");
    let mut anchors = Anchors::default();
    assert_eq!(anchors.unique("a"), "a");
    assert_eq!(anchors.unique("a"), "a-2");
}

#[test]
fn two_hundred_runs_render() {
    let kernels = ["5.10", "6.1", "6.12", "7.2"];
    let runs: Vec<LoadedRun> = (0..200)
        .map(|i| {
            let release = if i % 2 == 0 { "free" } else { "dontneed" };
            fake_run(
                &format!("scenario-{:02}", i / 8),
                kernels[(i / 2) % 4],
                release,
            )
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let results = build_results(&runs);
    let html = render_html(dir.path(), &runs, &results, &BTreeMap::new()).unwrap();
    let elapsed = started.elapsed();
    println!(
        "rendered 200 runs in {elapsed:?}: {} KiB of HTML",
        html.len() / 1024
    );
    assert_eq!(svgs(&html).len(), 200);
}

/// `RSSLAB_REPORT_SAMPLE=/tmp/report-sample cargo test -p rsslab render_sample` writes a
/// sample lab there, to look at in a browser.
#[test]
fn render_sample() {
    let Some(out) = std::env::var_os("RSSLAB_REPORT_SAMPLE") else {
        return;
    };
    let out = PathBuf::from(out);
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).unwrap();
    let mut runs = fake_lab();
    let html = render_lab(&out, &mut runs, STORY);
    println!(
        "wrote {} ({} KiB)",
        out.join(INDEX_HTML).display(),
        html.len() / 1024
    );
}
