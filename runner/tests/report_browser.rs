//! The report as a person opens it: Debian's Chromium, headless and driven over the DevTools
//! protocol, loads a report of fake runs with hostile titles and stories (compared with a
//! baseline) from a temporary directory. The page must log no error or warning, request nothing but itself, draw its
//! charts, print, and look right: the test saves screenshots in its temporary directory and
//! in `target/` (`report-screenshot.png`, the top of the page; `report-screenshot-run.png`,
//! one run) for a person to look at.
//!
//! Chromium comes from `scripts/install-test-deps.sh` (which `just test` runs); without it the
//! test fails and says so. `RSSLAB_CHROMIUM` points at another binary.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use headless_chrome::protocol::cdp::Log::LogEntryLevel;
use headless_chrome::protocol::cdp::Network;
use headless_chrome::protocol::cdp::Page::{self, CaptureScreenshotFormatOption};
use headless_chrome::protocol::cdp::Runtime::ConsoleAPICalledEventTypeOption;
use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::{Browser, LaunchOptions, Tab};
use rsslab::records::testing::{HOSTILE, fake_lab, hostile_pod_run, hostile_run, write_lab};

/// Debian's package installs it here.
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long the page may take to load and draw.
const LOAD_DEADLINE: Duration = Duration::from_secs(60);
/// What the brief of this machine asks of every Chromium: headless, no sandbox (we run as
/// root), no GPU, and none of its own traffic to the network (which refuses it here).
const FLAGS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

fn chromium() -> PathBuf {
    let path =
        std::env::var_os("RSSLAB_CHROMIUM").map_or_else(|| PathBuf::from(CHROMIUM), PathBuf::from);
    assert!(
        path.is_file(),
        "{} not found: the report's browser test needs Chromium; install it with \
         scripts/install-test-deps.sh (`just test` does), or set RSSLAB_CHROMIUM",
        path.display()
    );
    path
}

/// What the page said and asked for while it was open.
#[derive(Debug, Default)]
struct Seen {
    /// Console messages, log entries and exceptions at error or warning level.
    problems: Vec<String>,
    /// URLs of every request the page made, itself included.
    requests: Vec<String>,
}

fn watch(tab: &Tab) -> Arc<Mutex<Seen>> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let sink = Arc::clone(&seen);
    tab.add_event_listener(Arc::new(move |event: &Event| {
        let mut seen = sink.lock().unwrap();
        match event {
            Event::NetworkRequestWillBeSent(sent) => {
                seen.requests.push(sent.params.request.url.clone());
            }
            Event::NetworkLoadingFailed(failed) => seen
                .problems
                .push(format!("loading failed: {}", failed.params.error_text)),
            Event::LogEntryAdded(added) => {
                let entry = &added.params.entry;
                if matches!(entry.level, LogEntryLevel::Error | LogEntryLevel::Warning) {
                    seen.problems
                        .push(format!("log {:?}: {}", entry.level, entry.text));
                }
            }
            Event::RuntimeConsoleAPICalled(called) => {
                if matches!(
                    called.params.Type,
                    ConsoleAPICalledEventTypeOption::Error
                        | ConsoleAPICalledEventTypeOption::Warning
                        | ConsoleAPICalledEventTypeOption::Assert
                ) {
                    seen.problems.push(format!(
                        "console {:?}: {:?}",
                        called.params.Type, called.params.args
                    ));
                }
            }
            Event::RuntimeExceptionThrown(thrown) => seen.problems.push(format!(
                "exception: {}",
                thrown.params.exception_details.text
            )),
            _ => {}
        }
    }))
    .expect("listening to the tab");
    seen
}

/// Evaluates `expression` in the page (DevTools' own evaluation: the page has no script) and
/// parses the JSON string it returns.
fn evaluate(tab: &Tab, expression: &str) -> serde_json::Value {
    let result = tab
        .evaluate(&format!("JSON.stringify({expression})"), false)
        .unwrap_or_else(|error| panic!("evaluating {expression}: {error:#}"));
    let text = result
        .value
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("{expression} returned no JSON"));
    serde_json::from_str(&text).unwrap()
}

/// Waits until `condition` holds, polling, or panics at `deadline` saying `what`.
fn wait_until(what: &str, deadline: Duration, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < deadline,
            "{what}: not within {deadline:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A PNG of the element with id `id`, wherever it is on the page: scrolled to, and once the
/// browser renders it (runs are `content-visibility: auto`, skipped while off screen).
fn element_screenshot(tab: &Tab, id: &str) -> Vec<u8> {
    evaluate(
        tab,
        &format!("document.getElementById('{id}').scrollIntoView()"),
    );
    wait_until("the run is rendered", LOAD_DEADLINE, || {
        evaluate(
            tab,
            &format!(
                "document.querySelector('#{id} svg').checkVisibility({{ contentVisibilityAuto: true }})"
            ),
        ) == true
    });
    let clip = evaluate(
        tab,
        &format!(
            "(() => {{ const box = document.getElementById('{id}').getBoundingClientRect(); \
             return {{ x: box.left + window.scrollX, y: box.top + window.scrollY, \
                       width: box.width, height: box.height, scale: 1 }}; }})()"
        ),
    );
    let capture: Page::CaptureScreenshot = serde_json::from_value(serde_json::json!({
        "format": "png",
        "clip": clip,
        "captureBeyondViewport": false,
    }))
    .unwrap();
    let data = tab.call_method(capture).unwrap().data;
    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, data).unwrap()
}

/// Writes a lab of fake runs, with hostile strings, and its report under `dir`.
fn write_report(dir: &Path) -> (PathBuf, usize) {
    let mut runs = fake_lab();
    runs.push(hostile_run());
    runs.push(hostile_pod_run());
    for run in &mut runs {
        run.record.story = format!("{HOSTILE}\n\n<img src=x onerror=alert(2)> **bold** `code`");
    }
    write_lab(dir, &mut runs, 60).unwrap();
    // As if compared with a baseline where MADV_FREE's RSS had fallen at once.
    let comparison: rsslab::analysis::comparison::Comparison =
        serde_json::from_value(serde_json::json!({
            "baseline": format!("reports/{HOSTILE}"),
            "compared": 8,
            "only_in_baseline": [],
            "only_in_new": [],
            "changes": [{
                "scenario": "go-madvfree-balloon", "kernel": "6.1", "variant_label": "release=free",
                "what": "last process.service.rss", "verdict": "regression",
                "baseline": "51.0MiB", "new": "64.0MiB", "detail": "+13.0MiB (+25%)"
            }]
        }))
        .unwrap();
    rsslab::analysis::comparison::write_comparison(dir, &comparison).unwrap();
    let outputs = rsslab::output::write_outputs(dir).unwrap();
    let with_samples = runs.iter().filter(|run| !run.samples.is_empty()).count();
    (outputs.index, with_samples)
}

#[test]
fn report_in_chromium_loads_nothing_logs_nothing_and_draws_its_charts() {
    let chromium = chromium();
    let work = tempfile::tempdir().unwrap();
    let lab = work.path().join("lab");
    let (index, runs_with_samples) = write_report(&lab);
    let profile = work.path().join("profile");
    fs::create_dir_all(&profile).unwrap();

    let options = LaunchOptions::default_builder()
        .path(Some(chromium))
        .headless(true)
        .sandbox(false)
        .enable_gpu(false)
        .user_data_dir(Some(profile))
        .window_size(Some((1360, 1800)))
        .args(FLAGS.iter().map(OsStr::new).collect())
        .idle_browser_timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let browser = Browser::new(options).expect("starting Chromium");
    let tab = browser.new_tab().unwrap();
    tab.set_default_timeout(LOAD_DEADLINE);
    let seen = watch(&tab);
    let enable: Network::Enable = serde_json::from_str("{}").unwrap();
    tab.call_method(enable).unwrap();
    tab.enable_log().unwrap();
    tab.enable_runtime().unwrap();

    let url = format!("file://{}", index.display());
    tab.navigate_to(&url).unwrap();
    tab.wait_until_navigated().unwrap();
    wait_until("the page is loaded", LOAD_DEADLINE, || {
        evaluate(&tab, "document.readyState") == "complete"
    });

    // Every figure is an SVG drawn with a real size and real lines: two charts per run with
    // samples, one row of kernels per scenario and variant (2 + 1 + 1 + 1), and the run with
    // pods' two pod charts and its reclaim chart (kubepods' memory.events).
    let figures = evaluate(
        &tab,
        "[...document.querySelectorAll('svg')].map(svg => { const box = svg.getBoundingClientRect(); \
         return { width: box.width, height: box.height, \
                  lines: svg.querySelectorAll('polyline[stroke-linejoin]').length, \
                  texts: svg.querySelectorAll('text').length }; })",
    );
    let figures = figures.as_array().unwrap();
    assert_eq!(figures.len(), 2 * runs_with_samples + 5 + 3, "{figures:?}");
    for figure in figures {
        let size = |key: &str| figure[key].as_f64().unwrap();
        assert!(size("width") > 250.0 && size("height") > 150.0, "{figure}");
        assert!(
            figure["lines"].as_u64().unwrap() > 0,
            "no series drawn: {figure}"
        );
        assert!(
            figure["texts"].as_u64().unwrap() > 5,
            "no axes or legend: {figure}"
        );
    }

    // The hostile strings are text on the page, never markup: no image, one inert script.
    let page = evaluate(
        &tab,
        "{ text: document.body.innerText, images: document.images.length, \
           scripts: [...document.scripts].map(s => s.type), \
           raw: document.getElementById('rsslab-raw').textContent.length }",
    );
    assert!(page["text"].as_str().unwrap().contains(HOSTILE));
    assert!(
        page["text"]
            .as_str()
            .unwrap()
            .contains("<img src=x onerror=alert(2)>")
    );
    assert_eq!(page["images"], 0);
    assert_eq!(
        page["scripts"],
        serde_json::json!(["application/x-rsslab-records+tar+gzip;base64"])
    );
    assert!(
        page["raw"].as_u64().unwrap() > 1000,
        "the records are embedded"
    );

    // What a person looks at: the top of the page, and one run.
    let top = tab
        .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
        .unwrap();
    let run = element_screenshot(&tab, "run-go-madvfree-balloon-6_1-release-free");
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/tmp is inside target/")
        .to_owned();
    for (name, png) in [
        ("report-screenshot.png", &top),
        ("report-screenshot-run.png", &run),
    ] {
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 20_000,
            "{name}: {} bytes",
            png.len()
        );
        fs::write(work.path().join(name), png).unwrap();
        fs::write(target.join(name), png).unwrap();
    }
    eprintln!(
        "screenshots: {}",
        target.join("report-screenshot*.png").display()
    );

    // It prints.
    let pdf = tab.print_to_pdf(None).unwrap();
    assert!(
        pdf.starts_with(b"%PDF") && pdf.len() > 50_000,
        "{} bytes of PDF",
        pdf.len()
    );

    let seen = seen.lock().unwrap();
    assert!(
        seen.problems.is_empty(),
        "the page logged: {:#?}",
        seen.problems
    );
    assert!(
        seen.requests.iter().all(|request| *request == url),
        "the page requested more than itself: {:#?}",
        seen.requests
    );
    assert!(
        seen.requests.contains(&url),
        "no request for the page was seen: {:?}",
        seen.requests
    );
}
