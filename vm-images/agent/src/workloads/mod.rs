//! The native workloads, run by the multi-call binary `rsslab-workload`: by the name it is
//! called as (`/bin/heap-churn ARGS_JSON`, so the kernel's task name is the workload's), or as
//! `rsslab-workload NAME ARGS_JSON` for local use.
//!
//! Each workload reads its typed arguments (rsslab_wire) from one JSON argument and reports on
//! stdout as JSON Lines ([`rsslab_wire::WorkloadReport`]), one flushed line per report.
//!
//! This module holds what they share: argument selection, the reporter, an anonymous memory
//! region with touch and madvise, and sleeping.

pub mod balloon;
pub mod file_io;
pub mod heap_churn;
pub mod hog;
pub mod vsz_startup;

use std::io::Write;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use rsslab_wire::{Metrics, WorkloadReport};

/// The name of the multi-call binary itself.
pub const MULTI_CALL: &str = "rsslab-workload";

/// Picks the workload name and its JSON argument from argv: `heap-churn JSON` (called through
/// a link) or `rsslab-workload heap-churn JSON`.
pub fn select(argv: &[String]) -> Result<(String, String), String> {
    let usage = || {
        format!(
            "usage: {MULTI_CALL} NAME ARGS_JSON, or NAME ARGS_JSON through a link named after the workload ({})",
            rsslab_wire::workload::WORKLOAD_NAMES.join(", ")
        )
    };
    let called_as = argv
        .first()
        .map(|arg0| arg0.rsplit('/').next().unwrap_or(arg0))
        .ok_or_else(usage)?;
    let (name, rest) = if called_as == MULTI_CALL {
        (argv.get(1).ok_or_else(usage)?.clone(), &argv[2..])
    } else {
        (called_as.to_owned(), &argv[1..])
    };
    match rest {
        [json] => Ok((name, json.clone())),
        [] => Ok((name, "{}".to_owned())),
        _ => Err(usage()),
    }
}

/// Runs the workload `name` with `json` arguments; returns the exit status.
pub fn dispatch(name: &str, json: &str) -> i32 {
    let mut reporter = Reporter::new(std::io::stdout());
    let result = match name {
        "heap-churn" => serde_json::from_str(json)
            .map_err(|error| format!("bad heap-churn arguments {json}: {error}"))
            .and_then(|args| heap_churn::run(&args, &mut reporter)),
        "balloon" => serde_json::from_str(json)
            .map_err(|error| format!("bad balloon arguments {json}: {error}"))
            .and_then(|args| balloon::run(&args, &mut reporter)),
        "file-io" => serde_json::from_str(json)
            .map_err(|error| format!("bad file-io arguments {json}: {error}"))
            .and_then(|args| file_io::run(&args, &mut reporter)),
        "hog" => serde_json::from_str(json)
            .map_err(|error| format!("bad hog arguments {json}: {error}"))
            .and_then(|args| exit_with(hog::run(&args, &mut reporter))),
        "vsz-startup" => serde_json::from_str(json)
            .map_err(|error| format!("bad vsz-startup arguments {json}: {error}"))
            .and_then(|args| exit_with(vsz_startup::run(&args, &mut reporter))),
        other => Err(format!(
            "unknown workload `{other}` (known: {})",
            rsslab_wire::workload::WORKLOAD_NAMES.join(", ")
        )),
    };
    match result {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("{name}: {message}");
            1
        }
    }
}

/// The exit code of a workload whose start-up memory was refused (ENOMEM), after it reported
/// the phase `enomem-at-start`.
pub const ENOMEM_EXIT: i32 = libc::ENOMEM;

/// Ends the process with `code` when a workload returned a nonzero one.
fn exit_with(result: Result<i32, String>) -> Result<(), String> {
    match result? {
        0 => Ok(()),
        code => std::process::exit(code),
    }
}

/// The guest memory figure `base` from /proc/meminfo, in bytes (for relative sizes).
pub fn meminfo_base(base: rsslab_wire::Base) -> Option<u64> {
    crate::parse::kib_field(
        &std::fs::read_to_string("/proc/meminfo").ok()?,
        base.meminfo_field(),
    )
}

/// Writes reports, one flushed JSON line each.
pub struct Reporter<W: Write> {
    out: W,
}

impl<W: Write> Reporter<W> {
    pub fn new(out: W) -> Self {
        Reporter { out }
    }

    /// Reports a phase, with metrics (may be empty).
    pub fn phase(&mut self, phase: &str, metrics: &[(&str, u64)]) {
        self.report(Some(phase), metrics);
    }

    /// Reports metrics only.
    pub fn metrics(&mut self, metrics: &[(&str, u64)]) {
        self.report(None, metrics);
    }

    fn report(&mut self, phase: Option<&str>, metrics: &[(&str, u64)]) {
        let report = WorkloadReport {
            phase: phase.map(str::to_owned),
            metrics: metrics
                .iter()
                .map(|(name, value)| ((*name).to_owned(), *value))
                .collect::<Metrics>(),
        };
        let line = serde_json::to_string(&report).expect("reports serialize");
        // If the agent is gone there is nobody to tell; keep running until killed.
        let _ = writeln!(self.out, "{line}").and_then(|()| self.out.flush());
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// The page size.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 { size as usize } else { 4096 }
}

/// `n` rounded up to a multiple of `to`.
pub fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

/// madvise(2) advice values (MADV_FREE is 8 on every Linux architecture).
pub const MADV_DONTNEED: i32 = libc::MADV_DONTNEED;
pub const MADV_FREE: i32 = 8;

/// An anonymous private mapping, unmapped on drop.
pub struct Region {
    ptr: NonNull<u8>,
    len: usize,
}

impl Region {
    /// Maps `len` bytes (rounded up to pages), readable and writable, not yet touched.
    pub fn map(len: usize) -> std::io::Result<Region> {
        let len = round_up(len.max(1), page_size());
        // SAFETY: a fresh anonymous mapping; no existing memory is affected.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let ptr =
            NonNull::new(ptr.cast()).ok_or_else(|| std::io::Error::other("mmap returned null"))?;
        Ok(Region { ptr, len })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes `value` (nonzero, so the page really gets memory) into one byte of every page of
    /// `[offset, offset + len)`.
    pub fn touch(&mut self, offset: usize, len: usize, value: u8) {
        let end = (offset + len).min(self.len);
        let page = page_size();
        let mut at = offset;
        while at < end {
            // SAFETY: `at` is inside the mapping, which is readable and writable.
            unsafe { self.ptr.as_ptr().add(at).write_volatile(value) };
            at += page;
        }
    }

    /// Fills `[offset, offset + len)` with `value`, like memset.
    pub fn fill(&mut self, offset: usize, len: usize, value: u8) {
        let end = (offset + len).min(self.len);
        if offset < end {
            // SAFETY: the range is inside the mapping, which is writable.
            unsafe { std::ptr::write_bytes(self.ptr.as_ptr().add(offset), value, end - offset) };
        }
    }

    /// madvise(`advice`) on `[offset, offset + len)`; offset must be page-aligned.
    pub fn advise(&mut self, offset: usize, len: usize, advice: i32) -> std::io::Result<()> {
        let len = len.min(self.len.saturating_sub(offset));
        // SAFETY: the range lies inside our own mapping; the advice only drops its contents.
        let result = unsafe { libc::madvise(self.ptr.as_ptr().add(offset).cast(), len, advice) };
        if result == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping we own; nothing refers to it afterwards.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Sleeps for `duration`, calling `every_second` about once a second meanwhile (to keep a
/// live set touched).
pub fn sleep_touching(duration: Duration, mut every_second: impl FnMut()) {
    let until = Instant::now() + duration;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_secs(1)));
        every_second();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<String> {
        args.iter().map(|arg| (*arg).to_owned()).collect()
    }

    #[test]
    fn selects_by_link_name_or_first_argument() {
        assert_eq!(
            select(&argv(&["/bin/heap-churn", "{\"heap\":1}"])).unwrap(),
            ("heap-churn".into(), "{\"heap\":1}".into())
        );
        assert_eq!(
            select(&argv(&["balloon"])).unwrap(),
            ("balloon".into(), "{}".into())
        );
        assert_eq!(
            select(&argv(&[
                "./target/rsslab-workload",
                "balloon",
                "{\"step\":4096}"
            ]))
            .unwrap(),
            ("balloon".into(), "{\"step\":4096}".into())
        );
        assert!(
            select(&argv(&["rsslab-workload"]))
                .unwrap_err()
                .contains("usage")
        );
        assert!(select(&argv(&["heap-churn", "{}", "extra"])).is_err());
        assert!(select(&[]).is_err());
    }

    #[test]
    fn unknown_workloads_and_bad_arguments_fail() {
        assert_eq!(dispatch("no-such-workload", "{}"), 1);
        assert_eq!(dispatch("hog", "{}"), 1, "size is required");
        assert_eq!(dispatch("heap-churn", "{\"heep\":1}"), 1);
        assert_eq!(dispatch("heap-churn", "{}"), 1, "heap is required");
    }

    #[test]
    fn reporter_writes_one_line_per_report() {
        let mut reporter = Reporter::new(Vec::new());
        reporter.phase("allocated", &[("heap_touched", 4096)]);
        reporter.phase("done", &[]);
        reporter.metrics(&[("balloon", 1)]);
        let text = String::from_utf8(reporter.into_inner()).unwrap();
        assert_eq!(
            text,
            "{\"phase\":\"allocated\",\"metrics\":{\"heap_touched\":4096}}\n{\"phase\":\"done\"}\n{\"metrics\":{\"balloon\":1}}\n"
        );
    }

    #[test]
    fn rounding() {
        assert_eq!(round_up(1, 4096), 4096);
        assert_eq!(round_up(4096, 4096), 4096);
        assert_eq!(round_up(0, 4096), 0);
    }
}
