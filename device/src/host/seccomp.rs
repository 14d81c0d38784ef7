//! The seccomp filter of `vmso-device`: after startup (TAP opened, socket
//! listening, threads started) every thread may make only the system calls
//! that serving VMMs needs. Anything else traps: a SIGSYS handler names the
//! refused call on stderr and the process exits with status 159
//! (128 + SIGSYS).
//!
//! The list came from `strace -f -c` over an e2e run (`ci/e2e.sh 4l`, a
//! guest on the device under iperf3 both ways) and over `ci/lifecycle.sh`
//! (VMMs that connect, are killed and reconnect), grouped by who needs it.
//! Not in it, among others: `socket`, `connect`, `bind`, `listen` (the
//! socket is bound before), `execve`,
//! `fork`/`vfork`, `clone` without `CLONE_THREAD`, `ptrace`, `kill` of
//! other processes, `ioctl` (the TAP is configured at open), `mmap` or
//! `mprotect` with `PROT_EXEC`. `open`/`openat` (the TAP is open by then)
//! fail with EACCES, `clone3` with ENOSYS (see `softeners`).

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Exit status after a refused system call (128 + SIGSYS).
pub const REFUSED_EXIT: i32 = 128 + libc::SIGSYS;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("seccomp filter: {0}")]
    Filter(#[from] seccompiler::BackendError),
    #[error("seccomp: {0}")]
    Apply(#[from] seccompiler::Error),
    #[error("seccomp: SIGSYS handler: {0}")]
    Handler(std::io::Error),
    #[error("seccomp filters exist only for x86_64 and aarch64")]
    Arch,
}

/// System calls allowed whatever their arguments.
const ALLOWED: &[libc::c_long] = &[
    // vfio-user server thread: the connection socket, messages with fds,
    // the DMA_MAP checks (fstat, fcntl F_GETFL) and mappings.
    libc::SYS_accept,
    libc::SYS_accept4,
    libc::SYS_recvmsg,
    libc::SYS_sendmsg,
    libc::SYS_recvfrom,
    libc::SYS_sendto,
    libc::SYS_shutdown,
    libc::SYS_getsockopt,
    libc::SYS_fstat,
    libc::SYS_newfstatat,
    libc::SYS_statx,
    libc::SYS_lseek,
    libc::SYS_fcntl,
    libc::SYS_munmap,
    libc::SYS_close,
    libc::SYS_dup,
    // Queue workers: eventfds (doorbells, interrupts, commands), the TAP,
    // epoll, coalescing and moderation timers.
    libc::SYS_read,
    libc::SYS_readv,
    libc::SYS_write,
    libc::SYS_writev,
    libc::SYS_epoll_wait,
    libc::SYS_epoll_pwait,
    libc::SYS_epoll_ctl,
    libc::SYS_eventfd2,
    libc::SYS_timerfd_create,
    libc::SYS_timerfd_settime,
    libc::SYS_timerfd_gettime,
    libc::SYS_poll,
    libc::SYS_ppoll,
    // Threads, locks, sleeping, time, memory (the allocator).
    libc::SYS_futex,
    libc::SYS_sched_yield,
    libc::SYS_sched_getaffinity,
    libc::SYS_nanosleep,
    libc::SYS_clock_nanosleep,
    libc::SYS_clock_gettime,
    libc::SYS_gettid,
    libc::SYS_getpid,
    libc::SYS_getrandom,
    libc::SYS_brk,
    libc::SYS_mremap,
    libc::SYS_madvise,
    libc::SYS_set_robust_list,
    libc::SYS_rseq,
    libc::SYS_sigaltstack,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigreturn,
    libc::SYS_prctl,
    libc::SYS_exit,
    libc::SYS_exit_group,
    // The signal thread: sigwait, then removing the socket.
    libc::SYS_rt_sigtimedwait,
    libc::SYS_unlink,
    // A panic's abort.
    libc::SYS_tgkill,
    // abort() resets the SIGABRT action.
    libc::SYS_rt_sigaction,
    // Event loops a worker may create.
    libc::SYS_epoll_create1,
    // Allowed here, but [`softeners`] fails them with an errno (the
    // stricter of two filters wins; a trap here would win over that).
    libc::SYS_clone3,
    libc::SYS_open,
    libc::SYS_openat,
];

/// `arg` with `mask` cleared (`want` = 0) or set (`want` = mask).
fn masked(arg: u8, mask: u64, want: u64) -> Result<SeccompRule, seccompiler::BackendError> {
    SeccompRule::new(vec![SeccompCondition::new(
        arg,
        SeccompCmpArgLen::Qword,
        SeccompCmpOp::MaskedEq(mask),
        want,
    )?])
}

/// The filter, with `refused` as the action for everything not allowed.
pub fn filter(refused: SeccompAction) -> Result<BpfProgram, Error> {
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|_| Error::Arch)?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        ALLOWED.iter().map(|&nr| (nr, Vec::new())).collect();
    let prot_exec = libc::PROT_EXEC as u64;
    // Memory: never executable (guest RAM and thread stacks are data).
    rules.insert(libc::SYS_mmap, vec![masked(2, prot_exec, 0)?]);
    rules.insert(libc::SYS_mprotect, vec![masked(2, prot_exec, 0)?]);
    // New threads only (pthread_create); no new processes.
    let thread = libc::CLONE_THREAD as u64;
    rules.insert(libc::SYS_clone, vec![masked(0, thread, thread)?]);
    let f = SeccompFilter::new(rules, refused, SeccompAction::Allow, arch)?;
    Ok(f.try_into()?)
}

/// A filter that fails `calls` with `errno` and allows everything else.
/// Stacked under the main filter, which allows these calls: of two
/// filters the stricter result wins, and an errno is stricter than allow.
fn errno_for(calls: &[libc::c_long], errno: i32) -> Result<BpfProgram, Error> {
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|_| Error::Arch)?;
    let rules = calls.iter().map(|&nr| (nr, Vec::new())).collect();
    let f = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        arch,
    )?;
    Ok(f.try_into()?)
}

/// The filters that soften the main one:
/// - `clone3` takes its flags through a pointer, which a filter cannot
///   read: it fails with ENOSYS, and glibc falls back to `clone`, whose
///   flags the main filter checks;
/// - `open`/`openat` fail with EACCES rather than trap: glibc opens files
///   lazily (malloc reads /proc/sys/vm/overcommit_memory the first time a
///   thread's arena shrinks) and copes with a failure.
fn softeners() -> Result<[BpfProgram; 2], Error> {
    Ok([
        errno_for(&[libc::SYS_clone3], libc::ENOSYS)?,
        errno_for(&[libc::SYS_open, libc::SYS_openat], libc::EACCES)?,
    ])
}

/// Installs the filters on every thread of the process (TSYNC; threads
/// started later inherit them), with a SIGSYS handler that names a
/// refused system call and exits with [`REFUSED_EXIT`].
pub fn install() -> Result<(), Error> {
    let main = filter(SeccompAction::Trap)?;
    let soft = softeners()?;
    install_sigsys_handler()?;
    for f in soft.iter().chain([&main]) {
        seccompiler::apply_filter_all_threads(f)?;
    }
    Ok(())
}

/// Installs the filters on the calling thread only, with `refused` as the
/// action for what is not allowed (the tests use `Errno`).
pub fn install_thread(refused: SeccompAction) -> Result<(), Error> {
    for f in softeners()?.iter().chain([&filter(refused)?]) {
        seccompiler::apply_filter(f)?;
    }
    Ok(())
}

/// Installs the SIGSYS handler (process-wide) that names a refused system
/// call and exits with [`REFUSED_EXIT`]; the filters are per thread
/// ([`install_thread`]).
pub fn install_handler() -> Result<(), Error> {
    install_sigsys_handler()
}

fn install_sigsys_handler() -> Result<(), Error> {
    // SAFETY: a zeroed sigaction is valid; we fill in a handler with the
    // SA_SIGINFO signature and an empty mask, then install it for SIGSYS.
    let r = unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigsys as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut())
    };
    if r != 0 {
        return Err(Error::Handler(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// SIGSYS from the filter: writes "vmso-device: seccomp refused system call
/// N" to stderr and exits. Async-signal-safe: no allocation, no locks, only
/// `write` and `exit_group`, both allowed.
extern "C" fn on_sigsys(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // For SIGSYS the kernel fills `_sigsys { void *call_addr; int syscall;
    // unsigned arch; }` after the 16-byte header (si_signo, si_errno,
    // si_code, padding): the syscall number is at byte 24.
    // SAFETY: the kernel passes a valid siginfo_t (128 bytes) to an
    // SA_SIGINFO handler; byte 24 is within it and 4-byte aligned.
    let nr = unsafe { info.cast::<u8>().add(24).cast::<i32>().read() };
    let mut buf = [0u8; 64];
    let prefix = b"vmso-device: seccomp refused system call ";
    buf[..prefix.len()].copy_from_slice(prefix);
    let mut n = prefix.len();
    let mut digits = [0u8; 12];
    let mut d = 0;
    let mut v = nr.unsigned_abs();
    loop {
        digits[d] = b'0' + (v % 10) as u8;
        d += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if nr < 0 {
        buf[n] = b'-';
        n += 1;
    }
    for i in (0..d).rev() {
        buf[n] = digits[i];
        n += 1;
    }
    buf[n] = b'\n';
    n += 1;
    // SAFETY: write(2) and _exit(2) are async-signal-safe; `buf[..n]` is
    // initialised.
    unsafe {
        libc::write(2, buf.as_ptr().cast(), n);
        libc::_exit(REFUSED_EXIT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    fn errno() -> i32 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    }

    /// mmap(2) of one anonymous private page with protection `prot`.
    fn map_page(prot: libc::c_int) -> *mut libc::c_void {
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        // SAFETY: a new anonymous mapping, over no memory in use.
        unsafe { libc::mmap(std::ptr::null_mut(), 4096, prot, flags, -1, 0) }
    }

    /// In a thread of its own (seccomp filters are per thread and cannot be
    /// removed), with EPERM as the refusal: forbidden calls fail, the calls
    /// the device needs still work.
    #[test]
    #[cfg_attr(miri, ignore = "system calls")]
    fn forbidden_calls_are_refused_and_needed_ones_work() {
        std::thread::spawn(|| {
            install_thread(SeccompAction::Errno(libc::EPERM as u32)).unwrap();
            // SAFETY: plain system calls with valid arguments; each result
            // is checked and any fd returned is owned right away.
            unsafe {
                let s = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
                assert_eq!((s, errno()), (-1, libc::EPERM), "socket refused");
                let argv = [c"/bin/true".as_ptr(), std::ptr::null()];
                let r = libc::execve(c"/bin/true".as_ptr(), argv.as_ptr(), std::ptr::null());
                assert_eq!((r, errno()), (-1, libc::EPERM), "execve refused");
                let r = libc::openat(libc::AT_FDCWD, c"/etc/hostname".as_ptr(), libc::O_RDONLY);
                assert_eq!((r, errno()), (-1, libc::EACCES), "open refused");
                let r = libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_long, 0, 0, 0, 0);
                assert_eq!((r, errno()), (-1, libc::EPERM), "fork (clone) refused");
                let r = libc::syscall(libc::SYS_clone3, 0, 0);
                assert_eq!((r, errno()), (-1, libc::ENOSYS), "clone3 gives ENOSYS");
                let p = map_page(libc::PROT_READ | libc::PROT_EXEC);
                assert_eq!((p, errno()), (libc::MAP_FAILED, libc::EPERM), "PROT_EXEC");

                // What the device needs: eventfds, data mappings, threads.
                let e = libc::eventfd(0, libc::EFD_CLOEXEC);
                assert!(e >= 0, "eventfd allowed");
                let e = OwnedFd::from_raw_fd(e);
                let one = 1u64;
                assert_eq!(
                    libc::write(e.as_raw_fd(), (&one as *const u64).cast(), 8),
                    8
                );
                let p = map_page(libc::PROT_READ | libc::PROT_WRITE);
                assert_ne!(p, libc::MAP_FAILED, "data mmap allowed");
                assert_eq!(libc::munmap(p, 4096), 0);
            }
            // A thread (glibc: clone3 -> ENOSYS -> clone with CLONE_THREAD).
            let t = std::thread::spawn(|| 7);
            assert_eq!(t.join().unwrap(), 7, "threads still start");
        })
        .join()
        .unwrap();
    }

    /// With the real action (trap): a forbidden call ends the process with
    /// REFUSED_EXIT and names the call. Runs in a child process: this test
    /// binary, re-run with only `trap_child`.
    #[test]
    #[cfg_attr(miri, ignore = "system calls")]
    fn forbidden_call_ends_the_process() {
        let exe = std::env::current_exe().unwrap();
        // The test's name within this crate, wherever the module sits.
        let (_, module) = module_path!().split_once("::").unwrap();
        let child = format!("{module}::trap_child");
        let out = std::process::Command::new(exe)
            .args(["--exact", &child, "--ignored"])
            .env("VMSO_SECCOMP_CHILD", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(REFUSED_EXIT), "stderr: {stderr}");
        let want = format!("seccomp refused system call {}", libc::SYS_socket);
        assert!(stderr.contains(&want), "stderr: {stderr}");
    }

    #[test]
    #[ignore = "run by forbidden_call_ends_the_process in a child process"]
    fn trap_child() {
        if std::env::var_os("VMSO_SECCOMP_CHILD").is_none() {
            return;
        }
        install().unwrap();
        // SAFETY: a plain socket(2) call; the filter traps it.
        let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
        // Not reached: the SIGSYS handler exits the process.
        eprintln!("socket returned {s}");
        std::process::exit(1);
    }
}
