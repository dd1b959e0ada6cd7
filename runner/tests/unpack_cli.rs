//! `rsslab unpack REPORT.html --out DIR` on temporary directories: a report's embedded records
//! come back as the lab's `runs/`, and `rsslab report DIR` then rebuilds the same results.

mod support;

use std::fs;
use std::path::Path;

use rsslab::records::testing::{fake_lab, write_lab};
use support::rsslab;

fn results_without_time(dir: &Path) -> serde_json::Value {
    let mut results: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    results["generated_at"] = serde_json::Value::Null;
    results
}

#[test]
fn unpack_then_report_gives_back_the_lab() {
    let root = tempfile::tempdir().unwrap();
    let (lab, out) = (root.path().join("lab"), root.path().join("again"));
    let mut runs = fake_lab();
    write_lab(&lab, &mut runs, 20).unwrap();
    let report = rsslab(&["report", lab.to_str().unwrap()]);
    assert_eq!(
        report.status.code(),
        Some(1),
        "the fake lab has failed expectations"
    );

    // Only the report travels: unpack it somewhere else.
    let index = root.path().join("attached.html");
    fs::copy(lab.join("index.html"), &index).unwrap();
    let unpack = rsslab(&[
        "unpack",
        index.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&unpack.stdout);
    assert!(
        unpack.status.success(),
        "{}",
        String::from_utf8_lossy(&unpack.stderr)
    );
    assert!(stdout.contains(&format!("{} runs", runs.len())), "{stdout}");
    assert!(stdout.contains("rsslab report"), "{stdout}");

    let again = rsslab(&["report", out.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(results_without_time(&lab), results_without_time(&out));
    let sha = |path: &Path| fs::read(path).unwrap();
    for run in &runs {
        for file in ["run.json", "samples.jsonl", "console.log"] {
            let name = Path::new(&run.record.dir).join(file);
            assert!(
                sha(&lab.join(&name)) == sha(&out.join(&name)),
                "{}",
                name.display()
            );
        }
    }
}

#[test]
fn unpack_refuses_a_page_without_records_and_an_occupied_directory() {
    let root = tempfile::tempdir().unwrap();
    let page = root.path().join("old.html");
    fs::write(&page, "<html><body>an old report</body></html>").unwrap();
    let out = root.path().join("out");
    let output = rsslab(&[
        "unpack",
        page.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no records to unpack"), "{stderr}");

    let lab = root.path().join("lab");
    write_lab(&lab, &mut fake_lab(), 5).unwrap();
    rsslab(&["report", lab.to_str().unwrap()]);
    let index = lab.join("index.html");
    let output = rsslab(&[
        "unpack",
        index.to_str().unwrap(),
        "--out",
        lab.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("runs exists"), "{stderr}");
}

#[test]
fn help_lists_unpack() {
    let output = rsslab(&["--help"]);
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("unpack"), "{help}");
}
