//! `hog`: takes `size` bytes (absolute, or a share of MemTotal, MemAvailable or CommitLimit
//! resolved at start from /proc/meminfo), writes every page, reports `holding` with the metric
//! `hog` = bytes held, and holds them until killed. A refused mapping (ENOMEM, e.g. under
//! `vm.overcommit_memory = 2`) is reported as `enomem-at-start`, exit code 12.

use std::io::Write;
use std::time::Duration;

use rsslab_wire::HogArgs;

use super::{ENOMEM_EXIT, Region, Reporter, meminfo_base};
use crate::procs::ENOMEM_PHASE;

/// Runs the hog: returns only when its mapping is refused (the exit code) or on bad arguments.
pub fn run<W: Write>(args: &HogArgs, reporter: &mut Reporter<W>) -> Result<i32, String> {
    let size = args.size.resolve(meminfo_base)?;
    if size == 0 {
        return Err(format!("size {} is 0 bytes", args.size));
    }
    let size = usize::try_from(size).map_err(|_| format!("{size} bytes do not fit in memory"))?;
    let mut region = match Region::map(size) {
        Ok(region) => region,
        Err(error) if error.raw_os_error() == Some(libc::ENOMEM) => {
            eprintln!("hog: mmap of {size} bytes ({}) refused: {error}", args.size);
            reporter.phase(ENOMEM_PHASE, &[("hog", 0)]);
            return Ok(ENOMEM_EXIT);
        }
        Err(error) => return Err(format!("mmap of {size} bytes: {error}")),
    };
    let len = region.len();
    region.touch(0, len, 0x6b);
    reporter.phase("holding", &[("hog", len as u64)]);
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsslab_wire::{Amount, Bytes};

    #[test]
    fn zero_and_unreadable_sizes_are_errors() {
        let mut reporter = Reporter::new(Vec::new());
        let zero = HogArgs {
            size: Amount::Bytes(Bytes(0)),
        };
        assert!(run(&zero, &mut reporter).unwrap_err().contains("0 bytes"));
        let absurd = HogArgs {
            size: "1000000000% of mem_total".parse().unwrap(),
        };
        assert_eq!(run(&absurd, &mut reporter), Ok(ENOMEM_EXIT));
        let text = String::from_utf8(reporter.into_inner()).unwrap();
        assert_eq!(
            text,
            "{\"phase\":\"enomem-at-start\",\"metrics\":{\"hog\":0}}\n"
        );
    }
}
