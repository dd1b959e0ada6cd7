//! `balloon`: the story's balloon. Every `every` it maps `step` bytes and memsets them, until
//! the guest's MemAvailable is below `until_available` or `max` is reached (then `full`, once),
//! and holds what it has until killed. It reports `balloon` = bytes held after each step (its
//! start is the agent's own `balloon:started` event). A refused mmap is reported (stderr, and `full`) and the balloon holds.

use std::io::Write;
use std::time::{Duration, Instant};

use rsslab_wire::BalloonArgs;

use super::{Region, Reporter};
use crate::parse;

/// What the next step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Allocate this many bytes.
    Grow(u64),
    /// Stop: the floor or the cap is reached.
    Full,
}

/// Decides the next step from what is held, the guest's MemAvailable (None if unreadable: go on)
/// and the arguments. The last step is cut to `max`.
pub fn next_step(args: &BalloonArgs, held: u64, available: Option<u64>) -> Step {
    if available.is_some_and(|available| available < args.until_available.0) {
        return Step::Full;
    }
    let room = args.max.map_or(u64::MAX, |max| max.0.saturating_sub(held));
    match args.step.0.min(room) {
        0 => Step::Full,
        bytes => Step::Grow(bytes),
    }
}

/// MemAvailable from /proc/meminfo, in bytes.
pub fn mem_available() -> Option<u64> {
    parse::kib_field(
        &std::fs::read_to_string("/proc/meminfo").ok()?,
        "MemAvailable",
    )
}

/// Runs the balloon forever (it is stopped by the agent, or by the OOM killer).
pub fn run<W: Write>(args: &BalloonArgs, reporter: &mut Reporter<W>) -> Result<(), String> {
    if args.step.0 == 0 {
        return Err("step must be more than 0 bytes".into());
    }
    let mut regions: Vec<Region> = Vec::new();
    let mut held = 0u64;
    let mut next = Instant::now();
    loop {
        match next_step(args, held, mem_available()) {
            Step::Full => break,
            Step::Grow(bytes) => match Region::map(bytes as usize) {
                Ok(mut region) => {
                    let len = region.len();
                    region.fill(0, len, 0x5a);
                    held += len as u64;
                    regions.push(region);
                    reporter.metrics(&[("balloon", held)]);
                }
                Err(error) => {
                    eprintln!(
                        "balloon: mmap of {bytes} bytes failed with {held} bytes held: {error}"
                    );
                    break;
                }
            },
        }
        next += args.every.as_duration();
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    reporter.phase("full", &[("balloon", held)]);
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsslab_wire::{Bytes, Millis};

    fn args(step: u64, until_available: u64, max: Option<u64>) -> BalloonArgs {
        BalloonArgs {
            step: Bytes(step),
            every: Millis(100),
            until_available: Bytes(until_available),
            max: max.map(Bytes),
        }
    }

    #[test]
    fn grows_until_the_floor() {
        let args = args(100, 64, None);
        assert_eq!(next_step(&args, 0, Some(1000)), Step::Grow(100));
        assert_eq!(
            next_step(&args, 900, Some(64)),
            Step::Grow(100),
            "at the floor is not below it"
        );
        assert_eq!(next_step(&args, 900, Some(63)), Step::Full);
        assert_eq!(
            next_step(&args, 900, None),
            Step::Grow(100),
            "no meminfo: keep going"
        );
    }

    #[test]
    fn stops_at_max_cutting_the_last_step() {
        let args = args(100, 0, Some(250));
        assert_eq!(next_step(&args, 200, Some(1000)), Step::Grow(50));
        assert_eq!(next_step(&args, 250, Some(1000)), Step::Full);
    }

    #[test]
    fn defaults_are_the_storys() {
        let args: BalloonArgs = serde_json::from_str("{}").unwrap();
        assert_eq!(args.step, Bytes::mib(100));
        assert_eq!(args.every, Millis::secs(1));
        assert_eq!(args.until_available, Bytes::mib(64));
    }

    #[test]
    fn meminfo_is_readable_here() {
        assert!(mem_available().is_some_and(|bytes| bytes > 0));
    }
}
