//! Emulating a kernel without MADV_FREE (before 4.5, which Debian's archive cannot boot): a
//! seccomp filter that makes `madvise(..., MADV_FREE)` fail with EINVAL, as such kernels answer.
//! The Go runtime (and heap-churn) then fall back to MADV_DONTNEED for good.
//!
//! [`deny_madv_free`] only makes raw system calls on a static filter, so it may run between fork
//! and exec (`pre_exec`). The filter is inherited across exec and by every descendant.

/// `struct sock_filter` instruction helpers.
const fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// Offsets in `struct seccomp_data`: nr, arch, args[2] (its low 32 bits on little-endian x86-64;
/// the kernel reads the advice as an int).
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARG2_LOW: u32 = 16 + 2 * 8;
const MADV_FREE: u32 = 8;
/// EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE.
const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;

static FILTER: [libc::sock_filter; 8] = [
    stmt(LD_W_ABS, ARCH),
    jump(JEQ_K, AUDIT_ARCH_X86_64, 0, 5), // another ABI: allow
    stmt(LD_W_ABS, NR),
    jump(JEQ_K, libc::SYS_madvise as u32, 0, 3), // not madvise: allow
    stmt(LD_W_ABS, ARG2_LOW),
    jump(JEQ_K, MADV_FREE, 0, 1), // not MADV_FREE: allow
    stmt(RET_K, libc::SECCOMP_RET_ERRNO | libc::EINVAL as u32),
    stmt(RET_K, libc::SECCOMP_RET_ALLOW),
];

/// Installs the filter in the calling process (async-signal-safe).
pub fn deny_madv_free() -> std::io::Result<()> {
    let program = libc::sock_fprog {
        len: FILTER.len() as u16,
        filter: FILTER.as_ptr().cast_mut(),
    };
    // SAFETY: prctl with documented arguments; `program` points to a valid static filter.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &program as *const libc::sock_fprog,
            ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
