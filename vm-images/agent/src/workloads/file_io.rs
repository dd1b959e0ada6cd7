//! `file-io`: the image-batch service. It touches an anonymous heap of `anon` bytes (kept),
//! writes `files` files of `file_size` incompressible bytes (xorshift) under `dir` (fsync-ed if
//! asked; with `reuse`, a file already there at its full size is kept as it is) -> `written`
//! (metric `file_bytes_written`), then `repeat` times re-reads the first `working_set` bytes of
//! them, `every` apart, touching `anon_per_round` more anonymous heap (kept) before each ->
//! `round` after each (metrics `file_bytes_read`, cumulative, and `anon_bytes`), `done` after
//! the last; it stays alive unless `exit`.
//!
//! `mode = "read"` reads with read(2) into a 1MiB buffer; `mode = "mmap"` maps the working set
//! once (shared, read-only, kept mapped) and reads a byte of every page each round, so the page
//! cache also shows in the process's RSS as RssFile.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rsslab_wire::{FileIoArgs, ReadMode};

use super::{Region, Reporter, page_size};

/// Bytes written or read per system call.
const BLOCK: usize = 1 << 20;

/// xorshift64: fast, and its output does not compress (nor deduplicate).
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed | 1)
    }

    /// Fills `buf` (its length a multiple of 8, else the tail stays as it was).
    pub fn fill(&mut self, buf: &mut [u8]) {
        for word in buf.chunks_exact_mut(8) {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            word.copy_from_slice(&x.to_le_bytes());
        }
    }
}

/// The files and how much of each is in the working set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub files: Vec<PathBuf>,
    pub file_size: u64,
    /// (file index, bytes) re-read each round.
    pub working: Vec<(usize, u64)>,
}

/// Checks the arguments and lays out the files and the working set.
pub fn plan(args: &FileIoArgs) -> Result<Plan, String> {
    if args.files == 0 {
        return Err("files must be at least 1".into());
    }
    if args.file_size.0 == 0 {
        return Err("file_size must be more than 0 bytes".into());
    }
    let total = u64::from(args.files) * args.file_size.0;
    let mut left = args.working_set.map_or(total, |ws| ws.0);
    if left > total {
        return Err(format!(
            "working_set ({}) is larger than files x file_size ({total} bytes)",
            left
        ));
    }
    let dir = Path::new(&args.dir);
    let files: Vec<PathBuf> = (0..args.files)
        .map(|i| dir.join(format!("file-{i:05}.bin")))
        .collect();
    let mut working = Vec::new();
    for index in 0..files.len() {
        if left == 0 {
            break;
        }
        let bytes = left.min(args.file_size.0);
        working.push((index, bytes));
        left -= bytes;
    }
    Ok(Plan {
        files,
        file_size: args.file_size.0,
        working,
    })
}

/// Writes every file (with `reuse`, those not already there at full size); returns the bytes
/// written.
fn write_files(plan: &Plan, fsync: bool, reuse: bool) -> Result<u64, String> {
    let mut rng = XorShift::new(0x9e37_79b9_7f4a_7c15);
    let mut buf = vec![0u8; BLOCK];
    let mut written = 0u64;
    for path in &plan.files {
        let there = std::fs::metadata(path).is_ok_and(|meta| meta.len() == plan.file_size);
        if reuse && there {
            continue;
        }
        let mut file =
            File::create(path).map_err(|error| format!("creating {}: {error}", path.display()))?;
        let mut left = plan.file_size;
        while left > 0 {
            let len = left.min(BLOCK as u64) as usize;
            rng.fill(&mut buf);
            file.write_all(&buf[..len])
                .map_err(|error| format!("writing {}: {error}", path.display()))?;
            left -= len as u64;
            written += len as u64;
        }
        if fsync {
            file.sync_all()
                .map_err(|error| format!("fsync of {}: {error}", path.display()))?;
        }
    }
    Ok(written)
}

/// Reads the working set with read(2); returns the bytes read.
fn read_round(plan: &Plan, buf: &mut [u8]) -> Result<u64, String> {
    let mut total = 0u64;
    for &(index, bytes) in &plan.working {
        let path = &plan.files[index];
        let mut file =
            File::open(path).map_err(|error| format!("opening {}: {error}", path.display()))?;
        let mut left = bytes;
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            let got = file
                .read(&mut buf[..want])
                .map_err(|error| format!("reading {}: {error}", path.display()))?;
            if got == 0 {
                return Err(format!("{} is shorter than expected", path.display()));
            }
            left -= got as u64;
            total += got as u64;
        }
    }
    Ok(total)
}

/// A read-only shared mapping of (the start of) a file, unmapped on drop.
struct FileMap {
    ptr: *const u8,
    len: usize,
}

impl FileMap {
    fn open(path: &Path, len: u64) -> Result<FileMap, String> {
        use std::os::fd::AsRawFd;
        let file =
            File::open(path).map_err(|error| format!("opening {}: {error}", path.display()))?;
        let len = usize::try_from(len).map_err(|_| format!("{len} bytes do not fit in memory"))?;
        // SAFETY: a fresh read-only mapping of an open file; the fd may close afterwards.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(format!(
                "mmap of {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            ));
        }
        Ok(FileMap {
            ptr: ptr.cast(),
            len,
        })
    }

    /// Reads a byte of every page; returns the bytes covered.
    fn touch(&self, page: usize) -> u64 {
        let mut sum = 0u8;
        let mut at = 0;
        while at < self.len {
            // SAFETY: `at` is inside the mapping, which is readable.
            sum = sum.wrapping_add(unsafe { self.ptr.add(at).read_volatile() });
            at += page;
        }
        std::hint::black_box(sum);
        self.len as u64
    }
}

impl Drop for FileMap {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping; nothing refers to it afterwards.
        unsafe { libc::munmap(self.ptr.cast_mut().cast(), self.len) };
    }
}

/// Runs file-io to the end (which is never, unless `exit`).
pub fn run<W: Write>(args: &FileIoArgs, reporter: &mut Reporter<W>) -> Result<(), String> {
    let plan = plan(args)?;
    let _anon = if args.anon.0 > 0 {
        let len = usize::try_from(args.anon.0)
            .map_err(|_| format!("anon ({}) does not fit in memory", args.anon))?;
        let mut region =
            Region::map(len).map_err(|error| format!("mmap of anon {}: {error}", args.anon))?;
        let len = region.len();
        region.touch(0, len, 0x61);
        Some(region)
    } else {
        None
    };
    std::fs::create_dir_all(&args.dir)
        .map_err(|error| format!("creating {}: {error}", args.dir))?;
    let written = write_files(&plan, args.fsync, args.reuse)?;
    reporter.phase("written", &[("file_bytes_written", written)]);
    let maps = match args.mode {
        ReadMode::Read => Vec::new(),
        ReadMode::Mmap => plan
            .working
            .iter()
            .map(|&(index, bytes)| FileMap::open(&plan.files[index], bytes))
            .collect::<Result<Vec<_>, _>>()?,
    };
    let mut buf = vec![0u8; BLOCK];
    let page = page_size();
    let mut read = 0u64;
    let mut grown = Vec::new();
    let mut anon_bytes = args.anon.0;
    for round in 0..args.repeat {
        if round > 0 {
            std::thread::sleep(args.every.as_duration());
        }
        if args.anon_per_round.0 > 0 {
            let len = usize::try_from(args.anon_per_round.0).map_err(|_| {
                format!(
                    "anon_per_round ({}) does not fit in memory",
                    args.anon_per_round
                )
            })?;
            let mut region = Region::map(len).map_err(|error| {
                format!("mmap of anon_per_round {}: {error}", args.anon_per_round)
            })?;
            let len = region.len();
            region.touch(0, len, 0x62);
            anon_bytes += len as u64;
            grown.push(region);
        }
        read += match args.mode {
            ReadMode::Read => read_round(&plan, &mut buf)?,
            ReadMode::Mmap => maps.iter().map(|map| map.touch(page)).sum(),
        };
        reporter.phase(
            "round",
            &[("file_bytes_read", read), ("anon_bytes", anon_bytes)],
        );
    }
    reporter.phase("done", &[("file_bytes_read", read)]);
    if args.exit {
        return Ok(());
    }
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsslab_wire::{Bytes, Millis};

    fn args(dir: &Path, mode: ReadMode, working_set: Option<u64>) -> FileIoArgs {
        FileIoArgs {
            files: 3,
            file_size: Bytes(1 << 20),
            dir: dir.display().to_string(),
            fsync: true,
            working_set: working_set.map(Bytes),
            mode,
            repeat: 2,
            every: Millis(10),
            anon: Bytes(1 << 20),
            anon_per_round: Bytes(0),
            reuse: false,
            exit: true,
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rsslab-fileio-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn plans_a_working_set_across_files() {
        let dir = Path::new("/x");
        let plan = plan(&args(dir, ReadMode::Read, Some(1_500_000))).unwrap();
        assert_eq!(plan.files.len(), 3);
        assert_eq!(plan.files[2], Path::new("/x/file-00002.bin"));
        assert_eq!(plan.working, vec![(0, 1 << 20), (1, 1_500_000 - (1 << 20))]);
        let all = super::plan(&args(dir, ReadMode::Read, None)).unwrap();
        assert_eq!(all.working.len(), 3);
        assert!(super::plan(&args(dir, ReadMode::Read, Some(4 << 20))).is_err());
    }

    #[test]
    fn data_is_incompressible_looking() {
        let mut rng = XorShift::new(1);
        let mut buf = vec![0u8; 1 << 16];
        rng.fill(&mut buf);
        let mut counts = [0u32; 256];
        for byte in &buf {
            counts[usize::from(*byte)] += 1;
        }
        // Every byte value about equally often (256 expected each).
        assert!(
            counts.iter().all(|&n| (150..400).contains(&n)),
            "{counts:?}"
        );
    }

    #[test]
    fn writes_then_reads_in_rounds_both_ways() {
        for mode in [ReadMode::Read, ReadMode::Mmap] {
            let dir = temp_dir(&format!("{mode:?}"));
            let mut reporter = Reporter::new(Vec::new());
            run(&args(&dir, mode, Some(1_500_000)), &mut reporter).unwrap();
            let text = String::from_utf8(reporter.into_inner()).unwrap();
            let read_per_round: u64 = match mode {
                ReadMode::Read => 1_500_000,
                // mmap covers whole pages of the second file's part.
                ReadMode::Mmap => (1 << 20) + (1_500_000 - (1 << 20)),
            };
            assert_eq!(
                text.lines().collect::<Vec<_>>(),
                [
                    "{\"phase\":\"written\",\"metrics\":{\"file_bytes_written\":3145728}}"
                        .to_owned(),
                    format!(
                        "{{\"phase\":\"round\",\"metrics\":{{\"anon_bytes\":1048576,\"file_bytes_read\":{read_per_round}}}}}"
                    ),
                    format!(
                        "{{\"phase\":\"round\",\"metrics\":{{\"anon_bytes\":1048576,\"file_bytes_read\":{}}}}}",
                        2 * read_per_round
                    ),
                    format!(
                        "{{\"phase\":\"done\",\"metrics\":{{\"file_bytes_read\":{}}}}}",
                        2 * read_per_round
                    ),
                ]
            );
            assert_eq!(
                std::fs::metadata(dir.join("file-00001.bin")).unwrap().len(),
                1 << 20
            );
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
}
