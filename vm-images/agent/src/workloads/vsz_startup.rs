//! `vsz-startup`: a service whose start-up maps a large region, the way JVMs, Go's arena
//! reservations or database buffer pools do. `mapping` says how: `private` (read-write: all of
//! it counts against the commit limit), `noreserve` (MAP_NORESERVE: not counted, except under
//! `vm.overcommit_memory = 2`), or `reserve-then-commit` (a PROT_NONE reservation, then `commit`
//! bytes made writable with mprotect, which is where the commit charge is taken).
//!
//! Phases: `mapped` (metrics `vsz_mapped`, `committed`), `touched` (metric `touched`: bytes
//! written, one byte a page), then it holds until killed. If mmap or mprotect fails with ENOMEM
//! it reports `enomem-at-start` and exits with 12 (ENOMEM), as a service refusing to start.

use std::io::Write;
use std::time::Duration;

use rsslab_wire::{Mapping, VszStartupArgs};

use super::{ENOMEM_EXIT, Reporter, meminfo_base, page_size, round_up};
use crate::procs::ENOMEM_PHASE;

/// The sizes in use, page-aligned: the region, the writable part, the touched part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub size: usize,
    pub commit: usize,
    pub touch: usize,
}

/// Resolves and checks the sizes against `base` (meminfo).
pub fn plan(
    args: &VszStartupArgs,
    base: impl Fn(rsslab_wire::Base) -> Option<u64> + Copy,
    page: usize,
) -> Result<Plan, String> {
    let to_usize = |bytes: u64| {
        usize::try_from(bytes).map_err(|_| format!("{bytes} bytes do not fit in memory"))
    };
    let size = to_usize(args.size.resolve(base)?)?;
    if size == 0 {
        return Err(format!("size {} is 0 bytes", args.size));
    }
    let size = round_up(size, page);
    let commit = match (args.mapping, args.commit) {
        (Mapping::ReserveThenCommit, Some(commit)) => {
            round_up(to_usize(commit.resolve(base)?)?, page)
        }
        (_, Some(_)) => return Err("commit applies only to mapping = reserve-then-commit".into()),
        (_, None) => size,
    };
    if commit > size {
        return Err(format!(
            "commit ({commit} bytes) is larger than size ({size} bytes)"
        ));
    }
    let touch = round_up(to_usize(args.touch.resolve(base)?)?, page);
    if touch > commit {
        return Err(format!(
            "touch ({touch} bytes) is larger than the writable part ({commit} bytes)"
        ));
    }
    Ok(Plan {
        size,
        commit,
        touch,
    })
}

/// The mapped region, unmapped on drop.
struct Mapped {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping; nothing refers to it afterwards.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

/// Maps the region as `mapping` says and makes `commit` bytes writable.
fn map(plan: &Plan, mapping: Mapping) -> std::io::Result<Mapped> {
    let (prot, extra) = match mapping {
        Mapping::Private => (libc::PROT_READ | libc::PROT_WRITE, 0),
        Mapping::Noreserve => (libc::PROT_READ | libc::PROT_WRITE, libc::MAP_NORESERVE),
        Mapping::ReserveThenCommit => (libc::PROT_NONE, libc::MAP_NORESERVE),
    };
    // SAFETY: a fresh anonymous mapping; no existing memory is affected.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            plan.size,
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | extra,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    let mapped = Mapped {
        ptr,
        len: plan.size,
    };
    if mapping == Mapping::ReserveThenCommit && plan.commit > 0 {
        // SAFETY: the range is the start of our own mapping.
        let result =
            unsafe { libc::mprotect(ptr, plan.commit, libc::PROT_READ | libc::PROT_WRITE) };
        if result != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(mapped)
}

/// Runs vsz-startup: returns only on ENOMEM at start (the exit code) or on bad arguments.
pub fn run<W: Write>(args: &VszStartupArgs, reporter: &mut Reporter<W>) -> Result<i32, String> {
    let page = page_size();
    let plan = plan(args, meminfo_base, page)?;
    let mapped = match map(&plan, args.mapping) {
        Ok(mapped) => mapped,
        Err(error) if error.raw_os_error() == Some(libc::ENOMEM) => {
            eprintln!(
                "vsz-startup: mapping {} bytes ({}, {:?}, {} writable) refused: {error}",
                plan.size, args.size, args.mapping, plan.commit
            );
            reporter.phase(ENOMEM_PHASE, &[]);
            return Ok(ENOMEM_EXIT);
        }
        Err(error) => return Err(format!("mapping {} bytes: {error}", plan.size)),
    };
    reporter.phase(
        "mapped",
        &[
            ("vsz_mapped", plan.size as u64),
            ("committed", plan.commit as u64),
        ],
    );
    let base = mapped.ptr.cast::<u8>();
    let mut at = 0;
    while at < plan.touch {
        // SAFETY: `at` is inside the writable start of our mapping.
        unsafe { base.add(at).write_volatile(0x76) };
        at += page;
    }
    reporter.phase("touched", &[("touched", plan.touch as u64)]);
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsslab_wire::{Amount, Base, Bytes};

    fn args(size: &str, mapping: Mapping, commit: Option<&str>, touch: &str) -> VszStartupArgs {
        VszStartupArgs {
            size: size.parse().unwrap(),
            mapping,
            commit: commit.map(|c| c.parse().unwrap()),
            touch: touch.parse().unwrap(),
        }
    }

    fn meminfo(base: Base) -> Option<u64> {
        match base {
            Base::MemTotal => Some(1 << 30),
            Base::CommitLimit => Some(3 << 29),
            Base::MemAvailable => None,
        }
    }

    #[test]
    fn plans_relative_sizes_and_defaults() {
        let plan1 = plan(
            &args("200% of mem_total", Mapping::Private, None, "1MiB"),
            meminfo,
            4096,
        )
        .unwrap();
        assert_eq!(
            plan1,
            Plan {
                size: 2 << 30,
                commit: 2 << 30,
                touch: 1 << 20
            }
        );
        let plan2 = plan(
            &args(
                "4GiB",
                Mapping::ReserveThenCommit,
                Some("50% of commit_limit"),
                "0",
            ),
            meminfo,
            4096,
        )
        .unwrap();
        assert_eq!(plan2.commit, 3 << 28);
    }

    #[test]
    fn rejects_inconsistent_sizes() {
        let check = |args: VszStartupArgs| plan(&args, meminfo, 4096).unwrap_err();
        assert!(check(args("0", Mapping::Private, None, "0")).contains("0 bytes"));
        assert!(check(args("1MiB", Mapping::Private, Some("1MiB"), "0")).contains("commit"));
        assert!(
            check(args("1MiB", Mapping::ReserveThenCommit, Some("2MiB"), "0")).contains("larger")
        );
        assert!(
            check(args(
                "1MiB",
                Mapping::ReserveThenCommit,
                Some("4KiB"),
                "8KiB"
            ))
            .contains("touch")
        );
        assert!(
            check(args("10% of mem_available", Mapping::Private, None, "0"))
                .contains("MemAvailable")
        );
        let _ = Amount::Bytes(Bytes(0));
    }

    #[test]
    fn reserve_then_commit_maps_and_touches() {
        let mut reporter = Reporter::new(Vec::new());
        let plan = plan(
            &args("64MiB", Mapping::ReserveThenCommit, Some("4MiB"), "4MiB"),
            meminfo,
            page_size(),
        )
        .unwrap();
        let mapped = map(&plan, Mapping::ReserveThenCommit).unwrap();
        assert_eq!(mapped.len, 64 << 20);
        drop(mapped);
        let absurd = args("1000000TiB", Mapping::Private, None, "0");
        // More than the address space: refused at once, whatever the overcommit policy.
        assert_eq!(run(&absurd, &mut reporter), Ok(ENOMEM_EXIT));
    }
}
