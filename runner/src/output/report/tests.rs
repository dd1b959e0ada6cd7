use std::fs;
use std::time::Instant;

use super::*;
use crate::analysis::results::build_results;
use crate::records::load_all;
use crate::records::testing::{
    HOSTILE, fake_lab, fake_pod_run, fake_run, hostile_pod_run, hostile_run, rss_after_release,
    write_lab, write_run,
};

/// Writes `runs` as a lab would under `out_dir`, each carrying `story`, then rebuilds
/// everything from the files, as `rsslab report` does.
fn render_lab(out_dir: &Path, runs: &mut [LoadedRun], story: &str) -> String {
    for run in runs.iter_mut() {
        run.record.story = story.to_owned();
    }
    write_lab(out_dir, runs, 100).unwrap();
    let outputs = crate::output::write_outputs(out_dir).unwrap();
    assert_eq!(outputs.index, out_dir.join(INDEX_HTML));
    let results = fs::read_to_string(out_dir.join(crate::analysis::results::RESULTS_JSON)).unwrap();
    let results: crate::analysis::results::Results = serde_json::from_str(&results).unwrap();
    assert_eq!(results.runs.len(), runs.len());
    fs::read_to_string(outputs.index).unwrap()
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
    let needle = format!(" {attribute}=\"");
    html.match_indices(&needle)
        .map(|(at, _)| {
            let value = &html[at + needle.len()..];
            &value[..value.find('"').unwrap()]
        })
        .collect()
}

/// The page's HTML between `start` and the next `end`.
fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("no {start:?} in the page"));
    let to = html[from..].find(end).unwrap() + from;
    &html[from..to]
}

const STORY: &str = "Go 1.12 to 1.15 released memory with `MADV_FREE`.\nRSS stayed **high**.\n\n\
    - a list line\n- another\n\n\nThe balloon made the kernel reclaim it.";

#[test]
fn report_shows_matrix_charts_phases_and_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let mut runs = fake_lab();
    let html = render_lab(dir.path(), &mut runs, STORY);

    // Two charts per run with samples, one row of kernels per scenario and variant; each is
    // well-formed XML.
    let with_samples = runs.iter().filter(|run| !run.samples.is_empty()).count();
    let charts = svgs(&html);
    let kernel_rows = 2 + 1;
    assert_eq!(charts.len(), 2 * with_samples + kernel_rows);
    assert!(html.contains("No samples were recorded."));
    for svg in charts {
        roxmltree::Document::parse(svg).expect("inline SVG is well-formed");
    }

    // The matrix: kernels in version order, cells linking to the runs' sections.
    let matrix = between(&html, "<table class=\"matrix\">", "</table>");
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
    assert!(
        matrix.contains("working set <b>410</b> · limit <b>768</b>"),
        "{matrix}"
    );

    // The story: paragraphs, a list, inline code and emphasis.
    assert!(html.contains(
        "<p>Go 1.12 to 1.15 released memory with <code>MADV_FREE</code>. RSS stayed <strong>high</strong>.</p>"
    ));
    assert!(html.contains("<ul>\n<li>a list line</li>\n<li>another</li>\n</ul>"));

    // Per scenario: its variants, its kernels compared, its scenario file.
    let scenario = between(&html, "id=\"scenario-go-madvfree-balloon\"", "<article");
    assert!(scenario.contains("<code>process.service.args.release = free</code>"));
    assert_eq!(scenario.matches("<figure class=\"kernels\"").count(), 2);
    for title in ["5.10 · ok", "6.1 · ok", "6.12 · ok", "7.2 · ok"] {
        assert_eq!(scenario.matches(title).count(), 2, "{title}");
    }
    assert!(scenario.contains(
        "<summary>Scenario file <code>runs&#x2f;go-madvfree-balloon&#x2f;scenario.toml</code>"
    ));
    assert!(scenario.contains(", as the runs recorded)"), "{scenario}");
    assert!(scenario.contains("[scenario]\nid = &quot;go-madvfree-balloon&quot;"));

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
    assert_eq!(svgs(section).len(), 2, "a process and a cgroup/guest chart");
    assert!(svgs(section)[1].contains("cgroup working set"));

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
    // Provenance, with the git revision and accelerator; and the raw records.
    assert!(html.contains("linux-image-6.12.0-28-cloud-amd64"));
    assert!(html.contains(&"0123456789abcdef".repeat(4)));
    assert!(html.contains("QEMU emulator version 10.0.2"));
    assert!(html.contains("<tr><th>git revision</th><td class=\"mono\">cbb8ac0</td></tr>"));
    assert!(html.contains("runs from git cbb8ac0"));
    assert!(html.contains("<tr><th>accelerator</th><td>TCG (11 runs)</td></tr>"));
    assert!(html.contains("TCG is QEMU's software emulation"));
    // Why TCG, once, beside the accelerator: the probe's one line from the run records.
    assert_eq!(
        html.matches("<span class=\"detail\"> (asked for (--accel tcg))</span>")
            .count(),
        1
    );
    assert!(html.contains("1 run booted twice"));
    assert!(
        html.contains("35 files of 11 runs"),
        "run.json, samples, console; 2 scenarios"
    );
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
    between(html, &format!("id=\"{anchor}\""), "</article>")
}

/// Nothing in the page runs or loads anything: the one `<script>` is the records' data block.
fn assert_no_external_references(html: &str) {
    let opening = format!("<script type=\"{RAW_MEDIA_TYPE}\" id=\"{RAW_ELEMENT_ID}\">");
    assert_eq!(
        html.to_lowercase().matches("<script").count(),
        1,
        "a script in the page"
    );
    assert_eq!(html.matches(&opening).count(), 1);
    assert!(
        html.contains("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"),
        "the page forbids itself any request"
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

    assert_no_external_references(&html);
    assert!(!html.contains("<img"), "raw markup from the story");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt; &amp; &quot;x&quot;"));
    assert!(html.contains("&lt;img src=x onerror=alert(2)&gt;"));
    // What the guest read, quoted in the fact mismatch's banner, is escaped too.
    let banner = between(&html, "<div class=\"facts-banner\"", "</div>");
    assert!(
        banner.contains(
            "catalogue says mglru = false, the guest read lru_gen&#x2f;enabled = \
             &lt;script&gt;alert(1)&lt;&#x2f;script&gt; &amp; &quot;x&quot;"
        ),
        "{banner}"
    );
    // The scenario file in its <details> carries the hostile title and story, escaped.
    let hostile = between(&html, "id=\"scenario-hostile\"", "<article");
    let source = between(hostile, "<details class=\"source\">", "</details>");
    assert!(
        source.contains("title = &#x27;&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
        "{source}"
    );
    // The SVGs carry the hostile process name, escaped by plotters, and stay well-formed.
    let charts = svgs(&html);
    assert_eq!(charts.len(), 2 * 2 + 2, "two runs' charts, two kernel rows");
    for svg in charts {
        roxmltree::Document::parse(svg).expect("well-formed");
    }
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot; rss"));
    // The console of the failed hostile run is shown (escaped by construction: it is text).
    assert!(html.contains("console line 100"));
    // The hostile strings are in the embedded records too, where base64 keeps them inert.
    let unpacked = tempfile::tempdir().unwrap();
    unpack_report(&dir.path().join(INDEX_HTML), unpacked.path()).unwrap();
    let record = fs::read_to_string(
        unpacked
            .path()
            .join(&runs[0].record.dir)
            .join(crate::records::RUN_JSON),
    )
    .unwrap();
    assert!(record.contains("<script>alert(1)</script>"));
}

#[test]
fn a_run_whose_guest_found_other_kernel_facts_has_a_red_banner() {
    let dir = tempfile::tempdir().unwrap();
    let mut runs = vec![
        crate::records::testing::fact_mismatch_run(),
        fake_run("go-madvfree-balloon", "6.1", "free"),
    ];
    let html = render_lab(dir.path(), &mut runs, STORY);

    let section = run_section_html(&html, "run-go-madvfree-balloon-6_12-release-free");
    let banner = between(
        section,
        "<div class=\"facts-banner\" role=\"alert\">",
        "</div>",
    );
    assert!(
        banner.contains(
            "<li>catalogue says mglru_default = false, the guest read lru_gen&#x2f;enabled = 0x0007</li>"
        ),
        "{banner}"
    );
    assert_eq!(banner.matches("<li>").count(), 1, "{banner}");
    // The section's facts show what the guest read.
    assert!(section.contains("madv_free=yes"), "{section}");
    assert!(section.contains("thp_defrag=madvise"), "{section}");

    let clean = run_section_html(&html, "run-go-madvfree-balloon-6_1-release-free");
    assert!(!clean.contains("facts-banner"), "{clean}");

    // The matrix cell and the header say so too.
    let matrix = between(&html, "<table class=\"matrix\">", "</table>");
    assert_eq!(matrix.matches("kernel facts differ").count(), 1, "{matrix}");
    let header = between(&html, "<header>", "</header>");
    assert!(
        header.contains(
            "<span class=\"label\">Kernel facts</span><span class=\"badge bad\">1 run</span>"
        ),
        "{header}"
    );
    let results =
        fs::read_to_string(dir.path().join(crate::analysis::results::RESULTS_JSON)).unwrap();
    assert_eq!(results.matches("\"fact_mismatches\"").count(), 1);
}

#[test]
fn a_lab_without_fact_mismatches_has_no_banner() {
    let dir = tempfile::tempdir().unwrap();
    let mut runs = vec![fake_run("go-madvfree-balloon", "6.1", "free")];
    let html = render_lab(dir.path(), &mut runs, STORY);
    assert!(!html.contains("<div class=\"facts-banner\""));
    assert!(!html.contains("kernel facts differ"));
    assert!(!html.contains("<span class=\"label\">Kernel facts</span>"));
}

#[test]
fn the_page_opens_on_the_findings_linked_to_their_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut runs: Vec<LoadedRun> = ["5.10", "6.1"]
        .iter()
        .flat_map(|kernel| ["free", "dontneed"].map(|release| fake_run("madv", kernel, release)))
        .collect();
    for run in &mut runs {
        run.record.expectations = vec![rss_after_release()];
    }
    let html = render_lab(dir.path(), &mut runs, STORY);
    let findings = between(&html, "<section id=\"findings\">", "</section>");
    assert!(
        html.find("id=\"findings\"").unwrap() < html.find("id=\"matrix\"").unwrap(),
        "the findings come before the matrix"
    );
    assert!(
        findings
            .contains("50.0MiB with release=dontneed, 400.0MiB with release=free, on both kernels"),
        "{findings}"
    );
    assert!(findings.contains(">expected<"), "{findings}");
    // Each of its four runs is linked, to an anchor the page has.
    let links = attribute_values(findings, "href");
    assert_eq!(links.len(), 4, "{findings}");
    for link in links {
        let id = link.trim_start_matches('#');
        assert!(html.contains(&format!("id=\"{id}\"")), "{link}");
    }
}

#[test]
fn runs_that_agree_have_no_findings() {
    let dir = tempfile::tempdir().unwrap();
    let mut runs: Vec<LoadedRun> = ["5.10", "6.1"]
        .iter()
        .map(|kernel| fake_run("madv", kernel, "free"))
        .collect();
    for run in &mut runs {
        run.record.expectations = vec![rss_after_release()];
    }
    let html = render_lab(dir.path(), &mut runs, STORY);
    assert!(!html.contains("id=\"findings\""));
    assert!(!html.contains("href=\"#findings\""));
}

#[test]
fn hostile_console_lines_are_escaped_and_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = hostile_run();
    run.record.scenario = "c".into();
    let console = format!("boot\n\u{1b}[31m{HOSTILE}\u{1b}[0m\u{7}\n");
    write_run(dir.path(), &run, &console).unwrap();
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

/// Files under `dir`, relative, with their bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, files);
            } else {
                let bytes = fs::read(&path).unwrap();
                files.insert(path.strip_prefix(root).unwrap().to_owned(), bytes);
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(dir, dir, &mut files);
    files
}

#[test]
fn embedded_records_unpack_to_the_same_tree_and_the_same_report() {
    let root = tempfile::tempdir().unwrap();
    let (lab, out) = (root.path().join("lab"), root.path().join("unpacked/lab"));
    let mut runs = fake_lab();
    runs.push(hostile_run());
    let html = render_lab(&lab, &mut runs, STORY);

    let unpacked = unpack_report(&lab.join(INDEX_HTML), &out).unwrap();
    assert_eq!(unpacked.runs, runs.len());
    let original = tree(&lab.join(crate::plan::RUNS_DIR));
    let restored = tree(&out.join(crate::plan::RUNS_DIR));
    assert_eq!(
        original.keys().collect::<Vec<_>>(),
        restored.keys().collect::<Vec<_>>()
    );
    assert!(original == restored, "the same bytes in every file");
    assert_eq!(unpacked.files.len(), original.len());

    // `rsslab report` on the unpacked tree rebuilds the same page (but for when it was made).
    let outputs = crate::output::write_outputs(&out).unwrap();
    let rebuilt = fs::read_to_string(outputs.index).unwrap();
    let generated_at = |dir: &Path| {
        let text = fs::read_to_string(dir.join(crate::analysis::results::RESULTS_JSON)).unwrap();
        serde_json::from_str::<crate::analysis::results::Results>(&text)
            .unwrap()
            .generated_at
    };
    assert!(
        html.replace(&generated_at(&lab), "then") == rebuilt.replace(&generated_at(&out), "then"),
        "the rebuilt report differs from the original"
    );

    // A second unpack into the same place is refused rather than mixed in.
    let error = unpack_report(&lab.join(INDEX_HTML), &out).unwrap_err();
    assert!(error.to_string().contains("exists"), "{error:#}");
}

#[test]
fn changes_against_the_baseline_are_listed_and_marked_in_the_matrix() {
    use crate::analysis::comparison::{
        COMPARISON_JSON, Change, Comparison, Verdict, write_comparison,
    };
    let change = |kernel: &str, what: &str, verdict, note: Option<&str>| Change {
        scenario: "go-madvfree-balloon".into(),
        kernel: kernel.into(),
        variant_label: "release=free".into(),
        what: what.into(),
        verdict,
        baseline: "51.0MiB".into(),
        new: "401.0MiB".into(),
        detail: "+350.0MiB".into(),
        note: note.map(str::to_owned),
    };
    let comparison = Comparison {
        baseline: format!("reports/{HOSTILE}"),
        compared: 9,
        only_in_baseline: vec!["gone/6.1".into()],
        only_in_new: vec![],
        changes: vec![
            change("6.1", "max process.service.rss", Verdict::Regression, None),
            change(
                "6.1",
                &format!("expect: {HOSTILE}"),
                Verdict::Regression,
                None,
            ),
            change(
                "7.2",
                "max lazyfree",
                Verdict::Expected,
                Some("MGLRU on by default"),
            ),
        ],
    };
    let root = tempfile::tempdir().unwrap();
    let lab = root.path().join("lab");
    fs::create_dir_all(&lab).unwrap();
    write_comparison(&lab, &comparison).unwrap();
    let html = render_lab(&lab, &mut fake_lab(), STORY);

    assert!(html.contains("<a href=\"#baseline\">Baseline</a>"));
    let section = between(&html, "<section id=\"baseline\">", "</section>");
    assert!(
        section.contains("<span class=\"badge bad\">2 regression</span>"),
        "{section}"
    );
    assert!(section.contains("<span class=\"badge skip\">1 expected</span>"));
    assert!(section.contains("+350.0MiB (MGLRU on by default)"));
    assert!(section.contains("Only in the baseline: gone&#x2f;6.1."));
    assert!(section.contains("href=\"#run-go-madvfree-balloon-6_1-release-free\""));
    assert!(section.contains("expect: &lt;script&gt;"), "{section}");
    assert!(!section.contains("<script"));
    let matrix = between(&html, "<table class=\"matrix\">", "</table>");
    assert_eq!(
        matrix.matches("2 regressions</span>").count(),
        1,
        "only the 6.1 cell"
    );
    assert_no_external_references(&html);

    // The comparison travels with the records, so the unpacked lab shows it again.
    let out = root.path().join("unpacked/lab");
    unpack_report(&lab.join(INDEX_HTML), &out).unwrap();
    assert_eq!(
        fs::read(out.join(COMPARISON_JSON)).unwrap(),
        fs::read(lab.join(COMPARISON_JSON)).unwrap()
    );
    crate::output::write_outputs(&out).unwrap();
    let rebuilt = fs::read_to_string(out.join(INDEX_HTML)).unwrap();
    assert_eq!(
        between(&rebuilt, "<section id=\"baseline\">", "</section>"),
        section
    );
}

#[test]
fn matrix_cells_read_as_a_person_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut runs = fake_lab();
    let html = render_lab(dir.path(), &mut runs, STORY);
    let matrix = between(&html, "<table class=\"matrix\">", "</table>");
    insta::assert_snapshot!("matrix_text", matrix_text(matrix));
}

/// The matrix as text: a line per scenario and variant, then a line per kernel with the
/// run's badges and one part per process and cgroup, separated by ` | `.
fn matrix_text(matrix: &str) -> String {
    fn plain(html: &str) -> String {
        let mut text = String::new();
        let mut in_tag = false;
        for c in html.chars() {
            match c {
                '<' => {
                    in_tag = true;
                    text.push(' ');
                }
                '>' => in_tag = false,
                c if !in_tag => text.push(c),
                _ => {}
            }
        }
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }
    let kernels: Vec<String> = between(matrix, "<thead>", "</thead>")
        .split("</th>")
        .map(plain)
        .filter(|text| !text.is_empty())
        .skip(2)
        .collect();
    let mut text = String::new();
    let mut scenario = String::new();
    for row in matrix.split("<tr>").skip(2) {
        if row.contains("<th class=\"scenario\"") {
            scenario = plain(between(row, "<th", "</th>"));
        }
        let variant = plain(between(row, "<td class=\"variant\">", "</td>"));
        text.push_str(&format!("{scenario} · {variant}\n"));
        for (kernel, cell) in kernels.iter().zip(row.split("<td class=\"cell\">").skip(1)) {
            let cell = &cell[..cell.find("</td>").unwrap()];
            let parts: Vec<String> = cell
                .replace("<div", "\u{1}<div")
                .split('\u{1}')
                .map(plain)
                .collect();
            text.push_str(&format!("  {kernel}: {}\n", parts.join(" | ")));
        }
    }
    text
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
    // 25 scenarios of 2 variants on 4 kernels: 2 charts per run, a kernel row per variant.
    assert_eq!(svgs(&html).len(), 2 * 200 + 25 * 2);
}

#[test]
fn a_run_with_pods_has_a_chart_per_pod_and_the_kubelets_values() {
    let dir = tempfile::tempdir().unwrap();
    let mut runs = vec![
        fake_pod_run("pods", "6.1", true),
        fake_pod_run("pods", "6.1", false),
    ];
    let html = render_lab(dir.path(), &mut runs, "");
    let charts = svgs(&html);
    for svg in &charts {
        roxmltree::Document::parse(svg).expect("inline SVG is well-formed");
    }
    // One chart per pod and run, each after its run's cgroup chart.
    for title in ["Pod web (Burstable)", "Pod batch (BestEffort)"] {
        assert_eq!(
            charts.iter().filter(|svg| svg.contains(title)).count(),
            2,
            "{title}"
        );
    }
    let results: Vec<RunResult> = build_results(&runs).runs;
    let anchor = |label: &str| {
        let result = results.iter().find(|r| r.variant_label == label).unwrap();
        format!("run-{}", run_slug(result))
    };
    let section = run_section_html(&html, &anchor("MemoryQoS=true"));
    let system = section.find("cgroup and guest").unwrap();
    let web = section.find("Pod web (Burstable)").unwrap();
    let pressure = section.find("Reclaim: pages").unwrap();
    assert!(
        system < web && web < pressure,
        "pod charts between the cgroup's and reclaim"
    );

    // The block, folded, its summary saying what a reader needs before opening it.
    let block = between(section, "<details class=\"pods\">", "</details>");
    let summary = between(block, "<summary>", "</summary>");
    assert!(
        summary.contains(
            "Pods as the kubelet made them: Kubernetes 1.31, cgroup v2 (systemd driver), node \
             allocatable 960MiB · web (Burstable), batch (BestEffort)"
        ),
        "{summary}"
    );
    assert!(summary.contains("1 read back otherwise"), "{summary}");
    assert!(block.contains("Set by the scenario: MemoryQoS = true, systemReserved = 64MiB"));
    assert!(block.contains("<h5>Pod web · Burstable</h5>"));
    // api's memory.high: written, read back page-rounded and marked, with its rule and source.
    let high = between(block, "<tr class=\"differs\">", "</tr>");
    assert!(high.contains("<b class=\"wrap\">api</b>"), "{high}");
    assert!(
        high.contains("title=\"kubepods.slice&#x2f;kubepods-burstable.slice&#x2f;"),
        "{high}"
    );
    assert!(high.contains(">memory.high<"), "{high}");
    assert!(high.contains("127506841"), "{high}");
    assert!(
        high.contains("title=\"the kernel reads back 2457 bytes less than written\"><span class=\"badge warn\">differs</span> 127504384 <span class=\"meta\">(121.6MiB)</span>"),
        "{high}"
    );
    assert!(high.contains("MemoryQoS (1.27+): floor((request 64MiB + 0.9 × (limit 128MiB − request)) &#x2f; page 4096) × page = 121.6MiB"), "{high}");
    assert!(
        high.contains("kuberuntime_container_linux.go generateLinuxContainerResources"),
        "{high}"
    );
    // Each container's processes, the main one first, with the oom_score_adj each read back.
    let containers = between(block, "<ul class=\"plain containers\">", "</ul>");
    assert!(containers.contains("<b>log-shipper</b> <span class=\"badge skip\">sidecar</span> · request 16MiB, limit 32MiB"), "{containers}");
    let adj = runs[0]
        .record
        .events
        .iter()
        .find_map(|event| match event.kind {
            rsslab_wire::EventKind::Started { oom_score_adj, .. }
                if event.process.as_deref() == Some("api") =>
            {
                oom_score_adj
            }
            _ => None,
        })
        .unwrap();
    assert!(
        containers.contains(&format!(
            "api (main) read back {adj}, worker read back {adj}"
        )),
        "{containers}"
    );

    // Without MemoryQoS nothing differs, and a run without pods has no block.
    let other = run_section_html(&html, &anchor("MemoryQoS=false"));
    assert!(!other.contains("read back otherwise"));
    let dir = tempfile::tempdir().unwrap();
    let plain = render_lab(dir.path(), &mut [fake_run("demo", "6.1", "free")], "");
    assert!(!plain.contains("<details class=\"pods\">"));
    assert!(!plain.contains("With pods, the cgroup is the node"));
}

#[test]
fn hostile_pod_and_container_names_stay_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let mut runs = vec![hostile_pod_run()];
    let html = render_lab(dir.path(), &mut runs, "");
    assert_no_external_references(&html);
    let escaped = "&lt;script&gt;alert(1)&lt;&#x2f;script&gt; &amp; &quot;x&quot;";
    let block = between(&html, "<details class=\"pods\">", "</details>");
    assert!(
        block.contains(&format!("<h5>Pod {escaped} · Burstable</h5>")),
        "{block}"
    );
    assert!(
        block.contains(&format!("<b>{escaped}</b>")),
        "the container's name"
    );
    // The rule, the source and the read-back of every value come from the guest.
    assert!(
        block.contains(&format!(
            "<td class=\"wrap\">{escaped} <span class=\"meta mono\">· {escaped}</span></td>"
        )),
        "{block}"
    );
    assert!(
        block.contains(&format!(
            "<span class=\"badge warn\">differs</span> {escaped}"
        )),
        "{block}"
    );
    // The pod's chart carries them, escaped by plotters, and stays well-formed.
    let chart = svgs(&html)
        .into_iter()
        .find(|svg| svg.contains("(Burstable)"))
        .expect("the hostile pod's chart");
    roxmltree::Document::parse(chart).expect("well-formed");
    assert!(
        chart.contains("Pod &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot; (Burstable)"),
        "{chart}"
    );
}
