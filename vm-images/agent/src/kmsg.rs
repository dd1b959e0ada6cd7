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

    /// The log read from `file` instead (a non-blocking pipe in the tests).
    pub fn from_file(file: File) -> Kmsg {
        Kmsg { file }
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
                // (Mutation testing cannot kill `false` here, nor for EINTR below: no test can
                // make the kernel's log overflow or a signal land mid-read; and breaking
                // instead would only delay the rest to the next call.)
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

    /// One record per write, read without blocking, as /dev/kmsg gives them.
    #[test]
    fn the_kills_logged_since_the_last_call_are_read_one_record_at_a_time() {
        use std::io::Write;
        use std::os::fd::OwnedFd;

        let (reader, mut writer) = std::io::pipe().unwrap();
        let reader = OwnedFd::from(reader);
        let flags = nix::fcntl::fcntl(&reader, nix::fcntl::FcntlArg::F_GETFL).unwrap();
        let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(&reader, nix::fcntl::FcntlArg::F_SETFL(flags)).unwrap();
        let mut kmsg = Kmsg::from_file(File::from(reader));
        assert_eq!(kmsg.oom_kills(), [], "nothing logged yet");
        writer
            .write_all(
                b"3,90,1,-;Memory cgroup out of memory: Killed process 77 (hog) total-vm:1kB\n",
            )
            .unwrap();
        assert_eq!(kmsg.oom_kills(), [(77, "hog".to_owned())]);
        assert_eq!(kmsg.oom_kills(), [], "each kill once");
        writer
            .write_all(b"6,91,2,-;oom_reaper: reaped process 77 (hog), now anon-rss:0kB\n")
            .unwrap();
        assert_eq!(kmsg.oom_kills(), []);
        writer
            .write_all(b"3,92,3,-;Out of memory: Killed process 412 (heap-churn) total-vm:1kB\n")
            .unwrap();
        assert_eq!(kmsg.oom_kills(), [(412, "heap-churn".to_owned())]);
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
