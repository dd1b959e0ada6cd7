//! The real workload binary, measured from /proc while it runs: heap-churn's RSS rises when it
//! touches its heap and falls after MADV_DONTNEED; after MADV_FREE it stays, counted as
//! LazyFree; the balloon holds what it reports; the agent's sampler reads a child's RSS as the
//! child holds it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};

use rsslab_wire::WorkloadReport;

const MIB: u64 = 1 << 20;

struct Workload {
    child: Child,
    lines: std::io::Lines<BufReader<ChildStdout>>,
}

impl Workload {
    fn start(program: PathBuf, args: &[&str]) -> Workload {
        let mut child = Command::new(program)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("workload starts");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Workload { child, lines }
    }

    /// Reads reports until `phase`, returning it.
    fn until(&mut self, phase: &str) -> WorkloadReport {
        for line in &mut self.lines {
            let line = line.unwrap();
            let report: WorkloadReport =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
            if report.phase.as_deref() == Some(phase) {
                return report;
            }
        }
        panic!("the workload ended before reporting {phase}");
    }

    /// A "Key: N kB" field of /proc/<pid>/<file>, in bytes.
    fn kib(&self, file: &str, key: &str) -> u64 {
        let text = std::fs::read_to_string(format!("/proc/{}/{file}", self.child.id())).unwrap();
        rsslab_agent::parse::kib_field(&text, key).unwrap_or_else(|| panic!("{key} in {file}"))
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rsslab-workload"))
}

fn heap_churn(release: &str) -> Workload {
    let args = format!(
        r#"{{"heap":"64MiB","live":"16MiB","release":"{release}","hold_allocated":"3s","hold":"3s","exit":true}}"#
    );
    Workload::start(binary(), &["heap-churn", &args])
}

#[test]
fn heap_churn_dontneed_gives_memory_back() {
    let mut churn = heap_churn("dontneed");
    let allocated = churn.until("allocated");
    assert_eq!(allocated.metrics["heap_touched"], 64 * MIB);
    let rss_allocated = churn.kib("status", "RssAnon");
    assert!(
        rss_allocated >= 62 * MIB,
        "RssAnon after touching 64MiB: {rss_allocated}"
    );
    let released = churn.until("released");
    assert_eq!(released.metrics["heap_released"], 48 * MIB);
    let rss_released = churn.kib("status", "RssAnon");
    assert!(
        rss_released <= 20 * MIB,
        "RssAnon after MADV_DONTNEED of 48MiB: {rss_released}"
    );
    assert!(
        rss_released >= 15 * MIB,
        "the live 16MiB stay: {rss_released}"
    );
}

#[test]
fn heap_churn_free_keeps_rss_as_lazyfree() {
    let mut churn = heap_churn("free");
    churn.until("released");
    let rss = churn.kib("status", "RssAnon");
    let lazyfree = churn.kib("smaps_rollup", "LazyFree");
    // Unless this machine is short of memory right now, the kernel keeps the pages.
    assert!(rss >= 60 * MIB, "RssAnon after MADV_FREE: {rss}");
    assert!(
        (44 * MIB..=48 * MIB).contains(&lazyfree),
        "LazyFree after MADV_FREE of 48MiB: {lazyfree}"
    );
}

#[test]
fn called_through_a_link_named_after_the_workload() {
    let dir = std::env::temp_dir().join(format!("rsslab-workload-link-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("balloon");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(binary(), &link).unwrap();
    let mut balloon = Workload::start(
        link,
        &[r#"{"step":"8MiB","every":"20ms","until_available":"0B","max":"20MiB"}"#],
    );
    let full = balloon.until("full");
    assert_eq!(
        full.metrics["balloon"],
        20 * MIB,
        "the last step is cut to max"
    );
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", balloon.child.id())).unwrap();
    assert_eq!(
        comm.trim(),
        "balloon",
        "the kernel's task name is the workload's"
    );
    let rss = balloon.kib("status", "RssAnon");
    assert!(rss >= 20 * MIB, "the balloon holds what it reports: {rss}");
    drop(balloon);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_arguments_exit_nonzero_with_a_message() {
    let output = Command::new(binary())
        .args(["heap-churn", r#"{"heap":"1MiB","bogus":1}"#])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown field `bogus`"));
    let output = Command::new(binary()).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn heap_churn_falls_back_to_dontneed_where_madv_free_is_refused() {
    use std::os::unix::process::CommandExt;
    let args = r#"{"heap":"32MiB","live":"8MiB","release":"free","hold_allocated":"0ms","hold":"3s","exit":true}"#;
    let mut command = Command::new(binary());
    command
        .args(["heap-churn", args])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: deny_madv_free only makes raw system calls.
    unsafe { command.pre_exec(rsslab_agent::seccomp::deny_madv_free) };
    let mut child = command.spawn().unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut churn = Workload { child, lines };
    let released = churn.until("released");
    assert_eq!(released.metrics["madv_free_fallback"], 1);
    assert_eq!(released.metrics["heap_released"], 24 * MIB);
    let rss = churn.kib("status", "RssAnon");
    assert!(
        rss <= 12 * MIB,
        "released with MADV_DONTNEED instead: {rss}"
    );
    assert_eq!(churn.kib("smaps_rollup", "LazyFree"), 0);
    let _ = churn.child.kill();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut churn.child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("falling back to MADV_DONTNEED"), "{stderr}");
}

#[test]
fn file_io_writes_then_rereads_its_working_set() {
    let dir = std::env::temp_dir().join(format!("rsslab-file-io-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let args = format!(
        r#"{{"files":4,"file_size":"2MiB","dir":"{}","fsync":true,"working_set":"3MiB","mode":"mmap","repeat":2,"every":"10ms","anon":"8MiB"}}"#,
        dir.display()
    );
    let mut io = Workload::start(binary(), &["file-io", &args]);
    let written = io.until("written");
    assert_eq!(written.metrics["file_bytes_written"], 8 * MIB);
    let done = io.until("done");
    assert_eq!(
        done.metrics["file_bytes_read"],
        6 * MIB,
        "two rounds of 3MiB"
    );
    // The mmap-ed working set stays mapped, so it shows as file-backed RSS; the heap as anon.
    let rss_file = io.kib("status", "RssFile");
    assert!(
        rss_file >= 3 * MIB,
        "RssFile with 3MiB mapped and read: {rss_file}"
    );
    let rss_anon = io.kib("status", "RssAnon");
    assert!(rss_anon >= 8 * MIB, "RssAnon with an 8MiB heap: {rss_anon}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 4);
    drop(io);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn file_io_grows_its_heap_each_round_and_reuses_the_files_it_finds() {
    let dir = std::env::temp_dir().join(format!("rsslab-file-io-reuse-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let args = format!(
        r#"{{"files":2,"file_size":"1MiB","dir":"{}","repeat":3,"every":"10ms","anon":"2MiB","anon_per_round":"4MiB","reuse":true}}"#,
        dir.display()
    );
    let mut first = Workload::start(binary(), &["file-io", &args]);
    assert_eq!(
        first.until("written").metrics["file_bytes_written"],
        2 * MIB
    );
    let rounds: Vec<u64> = (0..3)
        .map(|_| first.until("round").metrics["anon_bytes"])
        .collect();
    assert_eq!(
        rounds,
        [6 * MIB, 10 * MIB, 14 * MIB],
        "2MiB, then 4MiB more each round"
    );
    let rss_anon = first.kib("status", "RssAnon");
    assert!(
        rss_anon >= 14 * MIB,
        "the grown heap is touched and kept: {rss_anon}"
    );
    drop(first);
    // A second life finds both files at full size: nothing written, the same bytes read.
    let mut second = Workload::start(binary(), &["file-io", &args]);
    assert_eq!(second.until("written").metrics["file_bytes_written"], 0);
    assert_eq!(second.until("done").metrics["file_bytes_read"], 6 * MIB);
    drop(second);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn vsz_startup_reports_enomem_at_start_and_exits_12() {
    // 1TiB private read-write: more than RAM + swap, refused under the heuristic overcommit
    // (mode 0) and strict accounting (2); with mode 1 only more than the address space is.
    let always = std::fs::read_to_string("/proc/sys/vm/overcommit_memory")
        .is_ok_and(|mode| mode.trim() == "1");
    let size = if always { "1000000TiB" } else { "1TiB" };
    let output = Command::new(binary())
        .args([
            "vsz-startup",
            &format!(r#"{{"size":"{size}","mapping":"private"}}"#),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(12), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout, "{\"phase\":\"enomem-at-start\"}\n");
    assert!(String::from_utf8_lossy(&output.stderr).contains("refused"));
}

#[test]
fn vsz_startup_reserves_much_and_commits_little() {
    let mut vsz = Workload::start(
        binary(),
        &[
            "vsz-startup",
            r#"{"size":"64GiB","mapping":"reserve-then-commit","commit":"16MiB","touch":"8MiB"}"#,
        ],
    );
    let mapped = vsz.until("mapped");
    assert_eq!(mapped.metrics["vsz_mapped"], 64 << 30);
    assert_eq!(mapped.metrics["committed"], 16 * MIB);
    vsz.until("touched");
    assert!(vsz.kib("status", "VmSize") >= 64 << 30);
    let rss = vsz.kib("status", "RssAnon");
    assert!((8 * MIB..=12 * MIB).contains(&rss), "RssAnon: {rss}");
}

#[test]
fn hog_takes_and_holds_its_size() {
    let mut hog = Workload::start(binary(), &["hog", r#"{"size":"24MiB"}"#]);
    let holding = hog.until("holding");
    assert_eq!(holding.metrics["hog"], 24 * MIB);
    let rss = hog.kib("status", "RssAnon");
    assert!(rss >= 24 * MIB, "RssAnon: {rss}");
    let mut relative = Workload::start(binary(), &["hog", r#"{"size":"0.1% of mem_total"}"#]);
    assert!(relative.until("holding").metrics["hog"] > 0);
}

/// The sampler on another process (not the test's own): a hog that wrote every page of 64MiB,
/// and again at 16MiB, so a sampler that misread or mixed up processes would show.
#[test]
fn the_sampler_reads_a_childs_rss_as_the_child_holds_it() {
    for size_mib in [64, 16] {
        let mut hog = Workload::start(
            binary(),
            &["hog", &format!(r#"{{"size":"{size_mib}MiB"}}"#)],
        );
        assert_eq!(hog.until("holding").metrics["hog"], size_mib * MIB);
        let figures =
            rsslab_agent::sampler::process(hog.child.id() as i32).expect("the hog's figures");
        let sampled = |metric: &str| figures.metrics[metric] as f64 / MIB as f64;
        let held = size_mib as f64;
        // The pages written, plus the program's own few (text, stack, libc: under 4MiB).
        assert!(
            sampled("rss_anon") >= held && sampled("rss_anon") < held * 1.03 + 1.0,
            "{size_mib}MiB held: rss_anon {:.2}MiB",
            sampled("rss_anon")
        );
        assert!(
            sampled("rss") >= held && sampled("rss") < held * 1.03 + 4.0,
            "{size_mib}MiB held: rss {:.2}MiB",
            sampled("rss")
        );
        assert_eq!(
            figures.metrics["rss"],
            hog.kib("status", "VmRSS"),
            "what the child's own status says"
        );
        assert!(figures.marks["rss"] >= figures.metrics["rss"], "VmHWM");
    }
}
