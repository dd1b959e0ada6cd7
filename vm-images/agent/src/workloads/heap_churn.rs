//! `heap-churn`: a heap that is allocated, touched, and partly handed back to the kernel the
//! way a garbage-collected runtime does, with `madvise(MADV_FREE)` or `MADV_DONTNEED` (or
//! not at all), so RSS and LazyFree can be watched.
//!
//! Per cycle: touch every page of the heap chunk by chunk -> `allocated`; hold; release the
//! part above `live` chunk by chunk -> `released`; hold. Then `done`, and it keeps holding its
//! memory (the live part touched every second) unless `exit`. Like the Go runtime, if the kernel
//! refuses MADV_FREE (EINVAL, before 4.5) it falls back to MADV_DONTNEED for good, and says so on
//! stderr and with the metric `madv_free_fallback` = 1.

use std::io::Write;
use std::time::Duration;

use rsslab_wire::{HeapChurnArgs, Release};

use super::{MADV_DONTNEED, MADV_FREE, Region, Reporter, page_size, round_up, sleep_touching};

/// The sizes in use, page-aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub heap: usize,
    pub live: usize,
    pub chunk: usize,
}

/// Checks the arguments and aligns the sizes to pages.
pub fn plan(args: &HeapChurnArgs, page: usize) -> Result<Plan, String> {
    if args.heap.0 == 0 {
        return Err("heap must be more than 0 bytes".into());
    }
    if args.live > args.heap {
        return Err(format!(
            "live ({}) is larger than heap ({})",
            args.live, args.heap
        ));
    }
    if args.cycles == 0 {
        return Err("cycles must be at least 1".into());
    }
    let to_usize = |bytes: u64| {
        usize::try_from(bytes).map_err(|_| format!("{bytes} bytes do not fit in memory"))
    };
    let heap = round_up(to_usize(args.heap.0)?, page);
    let live = round_up(to_usize(args.live.0)?, page).min(heap);
    let chunk = round_up(to_usize(args.chunk.0)?.max(1), page);
    Ok(Plan { heap, live, chunk })
}

/// The heap and how it is released.
pub struct HeapChurn {
    region: Region,
    pub plan: Plan,
    /// madvise advice for release; None keeps everything.
    advice: Option<i32>,
    /// Set once MADV_FREE was refused and MADV_DONTNEED used instead.
    pub fell_back: bool,
    value: u8,
}

impl HeapChurn {
    /// Maps the heap (nothing touched yet).
    pub fn new(args: &HeapChurnArgs) -> Result<HeapChurn, String> {
        let plan = plan(args, page_size())?;
        let region = Region::map(plan.heap)
            .map_err(|error| format!("mmap of {} bytes: {error}", plan.heap))?;
        let advice = match args.release {
            Release::Free => Some(MADV_FREE),
            Release::Dontneed => Some(MADV_DONTNEED),
            Release::None => None,
        };
        Ok(HeapChurn {
            region,
            plan,
            advice,
            fell_back: false,
            value: 0,
        })
    }

    /// Writes every page of the heap, chunk by chunk (a nonzero value that changes per cycle).
    pub fn touch_all(&mut self) {
        self.value = self.value.wrapping_add(1).max(1);
        let mut offset = 0;
        while offset < self.plan.heap {
            self.region.touch(offset, self.plan.chunk, self.value);
            offset += self.plan.chunk;
        }
    }

    /// Writes every page of the live part, so it stays recently used.
    pub fn touch_live(&mut self) {
        self.region.touch(0, self.plan.live, self.value.max(1));
    }

    /// Hands back everything above `live`, chunk by chunk; returns the bytes released.
    pub fn release(&mut self) -> Result<u64, String> {
        let Some(mut advice) = self.advice else {
            return Ok(0);
        };
        let mut released = 0u64;
        let mut offset = self.plan.live;
        while offset < self.plan.heap {
            let len = self.plan.chunk.min(self.plan.heap - offset);
            match self.region.advise(offset, len, advice) {
                Ok(()) => {}
                Err(error) if advice == MADV_FREE && error.raw_os_error() == Some(libc::EINVAL) => {
                    eprintln!(
                        "heap-churn: madvise(MADV_FREE) refused (EINVAL): falling back to MADV_DONTNEED, like the Go runtime"
                    );
                    advice = MADV_DONTNEED;
                    self.advice = Some(MADV_DONTNEED);
                    self.fell_back = true;
                    continue;
                }
                Err(error) => return Err(format!("madvise({advice}) at offset {offset}: {error}")),
            }
            released += len as u64;
            offset += len;
        }
        Ok(released)
    }
}

/// Runs heap-churn to the end (which is never, unless `exit`).
pub fn run<W: Write>(args: &HeapChurnArgs, reporter: &mut Reporter<W>) -> Result<(), String> {
    let mut churn = HeapChurn::new(args)?;
    let heap = churn.plan.heap as u64;
    for _cycle in 0..args.cycles {
        churn.touch_all();
        reporter.phase("allocated", &[("heap_touched", heap)]);
        sleep_touching(args.hold_allocated.as_duration(), || churn.touch_live());
        let released = churn.release()?;
        if churn.fell_back {
            reporter.phase(
                "released",
                &[("heap_released", released), ("madv_free_fallback", 1)],
            );
        } else {
            reporter.phase("released", &[("heap_released", released)]);
        }
        sleep_touching(args.hold.as_duration(), || churn.touch_live());
    }
    reporter.phase("done", &[]);
    if args.exit {
        return Ok(());
    }
    loop {
        sleep_touching(Duration::from_secs(3600), || churn.touch_live());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsslab_wire::{Bytes, Millis};

    fn args(heap: u64, live: u64, release: Release) -> HeapChurnArgs {
        HeapChurnArgs {
            heap: Bytes(heap),
            live: Bytes(live),
            release,
            chunk: Bytes::mib(1),
            cycles: 1,
            hold_allocated: Millis(0),
            hold: Millis(0),
            exit: true,
        }
    }

    #[test]
    fn plan_aligns_and_checks() {
        let plan = plan(&args(10_000, 5_000, Release::Free), 4096).unwrap();
        assert_eq!(
            plan,
            Plan {
                heap: 12_288,
                live: 8192,
                chunk: 1 << 20
            }
        );
        assert!(
            super::plan(&args(0, 0, Release::Free), 4096)
                .unwrap_err()
                .contains("heap")
        );
        assert!(
            super::plan(&args(4096, 8192, Release::Free), 4096)
                .unwrap_err()
                .contains("live")
        );
        let mut zero_cycles = args(4096, 0, Release::Free);
        zero_cycles.cycles = 0;
        assert!(super::plan(&zero_cycles, 4096).is_err());
    }

    #[test]
    fn arguments_come_from_json_with_defaults() {
        let args: HeapChurnArgs =
            serde_json::from_str(r#"{"heap":314572800,"live":52428800,"release":"dontneed"}"#)
                .unwrap();
        assert_eq!(args.release, Release::Dontneed);
        assert_eq!(args.cycles, 1);
        assert!(!args.exit);
    }

    #[test]
    fn one_cycle_reports_its_phases() {
        let mut reporter = Reporter::new(Vec::new());
        run(&args(3 << 20, 1 << 20, Release::Dontneed), &mut reporter).unwrap();
        let text = String::from_utf8(reporter.into_inner()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                r#"{"phase":"allocated","metrics":{"heap_touched":3145728}}"#,
                r#"{"phase":"released","metrics":{"heap_released":2097152}}"#,
                r#"{"phase":"done"}"#,
            ]
        );
    }

    #[test]
    fn release_none_keeps_everything() {
        let mut churn = HeapChurn::new(&args(1 << 20, 0, Release::None)).unwrap();
        churn.touch_all();
        assert_eq!(churn.release().unwrap(), 0);
    }
}
