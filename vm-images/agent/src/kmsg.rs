//! OOM kills from the kernel log: /dev/kmsg read without blocking, one record per read, from
//! the moment the run starts. The OOM killer logs "Killed process <pid> (<comm>) ..." (prefixed
//! "Out of memory:" or "Memory cgroup out of memory:") right after it sends SIGKILL.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;

/// The kernel log, positioned at its end when opened.
pub struct Kmsg {
    file: File,
}

impl Kmsg {
    pub fn open() -> std::io::Result<Kmsg> {
        let mut file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")?;
        file.seek(SeekFrom::End(0))?;
        Ok(Kmsg { file })
    }

    /// The OOM kills logged since the last call, as (pid, task name).
    pub fn oom_kills(&mut self) -> Vec<(u32, String)> {
        let mut kills = Vec::new();
        let mut buf = vec![0u8; 8192];
        loop {
            match self.file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if let Some(kill) = killed_process(&String::from_utf8_lossy(&buf[..n])) {
                        kills.push(kill);
                    }
                }
                // EPIPE: records were overwritten before we read them; the next read goes on.
                Err(error) if error.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(error) if error.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break, // EAGAIN: nothing more for now
            }
        }
        kills
    }
}

impl AsFd for Kmsg {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// Parses one /dev/kmsg record ("6,339,5140900,-;Out of memory: Killed process 412
/// (heap-churn) total-vm:...") into (pid, task name). Other records, including the
/// oom_reaper's "reaped process", give None.
pub fn killed_process(record: &str) -> Option<(u32, String)> {
    let message = record
        .split_once(';')
        .map_or(record, |(_, message)| message);
    let message = message.lines().next().unwrap_or_default();
    let rest = &message[message.find("Killed process ")? + "Killed process ".len()..];
    let (pid, rest) = rest.split_once(' ')?;
    let pid = pid.parse().ok()?;
    let rest = rest.strip_prefix('(')?;
    // The task name may itself hold ") ": prefer the field that follows it.
    let end = rest.find(") total-vm").or_else(|| rest.rfind(')'))?;
    Some((pid, rest[..end].to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_oom_kill_line() {
        let record = "3,512,25123456,-;Out of memory: Killed process 412 (heap-churn) total-vm:317540kB, \
anon-rss:307712kB, file-rss:688kB, shmem-rss:0kB, UID:0 pgtables:664kB oom_score_adj:0\n";
        assert_eq!(killed_process(record), Some((412, "heap-churn".into())));
    }

    #[test]
    fn memcg_oom_kill_line_with_odd_task_name() {
        let record = "3,90,1,-;Memory cgroup out of memory: Killed process 77 (a) b) total-vm:1kB, anon-rss:1kB\n SUBSYSTEM=x\n";
        assert_eq!(killed_process(record), Some((77, "a) b".into())));
    }

    #[test]
    fn other_lines_are_not_kills() {
        assert_eq!(
            killed_process("6,1,1,-;oom_reaper: reaped process 412 (heap-churn), now anon-rss:0kB"),
            None
        );
        assert_eq!(
            killed_process("4,2,2,-;heap-churn invoked oom-killer: gfp_mask=0x100cca"),
            None
        );
        assert_eq!(killed_process("garbage"), None);
    }
}
