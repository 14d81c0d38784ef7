//! What the binary's command line needs beyond parsing: the default MAC,
//! file descriptors handed over by a manager, and one-line errors.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// The default MAC of a device on wire `name` (the TAP's name): locally
/// administered, unicast (`02:xx:xx:xx:xx:xx`), the other five bytes from
/// a 64-bit FNV-1a hash of the name. Stable across restarts and builds
/// (FNV is fixed, unlike std's hasher), and different per TAP name, so that
/// two instances started with defaults do not collide.
pub fn derive_mac(name: &str) -> [u8; 6] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in "vmso:".bytes().chain(name.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let b = h.to_be_bytes();
    [0x02, b[0], b[1], b[2], b[3], b[4]]
}

pub fn format_mac(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// Why an fd passed on the command line cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FdError {
    #[error("{opt} {fd}: fd {fd} is not open (the manager must pass it to vmso-device without FD_CLOEXEC)")]
    Closed { opt: &'static str, fd: RawFd },
    #[error("{opt} {fd}: fd {fd} is not a socket ({what}): pass a {want}")]
    NotSocket {
        opt: &'static str,
        fd: RawFd,
        what: String,
        want: &'static str,
    },
    #[error("{opt} {fd}: fd {fd} is a {what}: pass a {want}")]
    WrongSocket {
        opt: &'static str,
        fd: RawFd,
        what: &'static str,
        want: &'static str,
    },
    #[error("{opt} {fd}: {op}: {source}")]
    Sys {
        opt: &'static str,
        fd: RawFd,
        op: &'static str,
        source: std::io::Error,
    },
}

fn sockopt(fd: RawFd, opt: libc::c_int) -> std::io::Result<libc::c_int> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `v`, an int on the
    // stack, and updates `len`.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(v)
    }
}

/// Takes ownership of `fd` after checking that it is an AF_UNIX socket of
/// `ty` (and listening, if `listening`); marks it close-on-exec.
fn take_socket(
    opt: &'static str,
    fd: RawFd,
    ty: libc::c_int,
    listening: bool,
    want: &'static str,
) -> Result<OwnedFd, FdError> {
    // SAFETY: F_GETFD on any integer is harmless (EBADF if not open).
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(FdError::Closed { opt, fd });
    }
    let domain = sockopt(fd, libc::SO_DOMAIN).map_err(|e| FdError::NotSocket {
        opt,
        fd,
        what: e.to_string(),
        want,
    })?;
    let sys = |op, source| FdError::Sys {
        opt,
        fd,
        op,
        source,
    };
    let kind = sockopt(fd, libc::SO_TYPE).map_err(|e| sys("getsockopt SO_TYPE", e))?;
    if domain != libc::AF_UNIX {
        return Err(FdError::WrongSocket {
            opt,
            fd,
            what: "socket of another family than AF_UNIX",
            want,
        });
    }
    if kind != ty {
        return Err(FdError::WrongSocket {
            opt,
            fd,
            what: "unix socket of another type",
            want,
        });
    }
    if listening
        && sockopt(fd, libc::SO_ACCEPTCONN).map_err(|e| sys("getsockopt SO_ACCEPTCONN", e))? == 0
    {
        return Err(FdError::WrongSocket {
            opt,
            fd,
            what: "unix socket that is not listening (no listen(2) call)",
            want,
        });
    }
    // SAFETY: F_SETFD with FD_CLOEXEC on an open fd.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        return Err(sys("F_SETFD FD_CLOEXEC", std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` is open (checked above) and was handed to this process
    // to own; nothing else in it refers to it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `--socket-fd N`: a listening AF_UNIX stream socket, bound by a manager.
pub fn listener_fd(fd: RawFd) -> Result<OwnedFd, FdError> {
    take_socket(
        "--socket-fd",
        fd,
        libc::SOCK_STREAM,
        true,
        "listening AF_UNIX SOCK_STREAM socket (socket, bind, listen)",
    )
}

/// The hidden `--socketpair-fd N` (tests): one end of a SOCK_SEQPACKET pair.
pub fn seqpacket_fd(fd: RawFd) -> Result<OwnedFd, FdError> {
    take_socket(
        "--socketpair-fd",
        fd,
        libc::SOCK_SEQPACKET,
        false,
        "SOCK_SEQPACKET AF_UNIX socket (one end of a socketpair)",
    )
}

/// A clap error as one line: the message without the usage block, its
/// lines joined, and where to look.
pub fn one_line(rendered: &str) -> String {
    let msg = rendered
        .split("\n\nUsage:")
        .next()
        .unwrap_or(rendered)
        .split("\n\nFor more information")
        .next()
        .unwrap_or(rendered);
    let msg = msg.trim().strip_prefix("error: ").unwrap_or(msg.trim());
    let joined: Vec<&str> = msg
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    format!("{} (see vmso-device --help)", joined.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_macs_are_local_unicast_stable_and_distinct() {
        let a = derive_mac("vmso0");
        let b = derive_mac("vmso1");
        assert_ne!(a, b);
        assert_eq!(a, derive_mac("vmso0"));
        for m in [a, b] {
            assert_eq!(m[0] & 0x02, 0x02, "locally administered");
            assert_eq!(m[0] & 0x01, 0, "unicast");
        }
        // Pinned (computed independently): a restart with another build
        // keeps the address.
        assert_eq!(format_mac(&a), "02:e2:70:8c:8f:f7");
        assert_eq!(format_mac(&derive_mac("tap0")), "02:40:be:26:a5:f7");
    }

    #[test]
    fn clap_errors_become_one_line() {
        let e = "error: the following required arguments were not provided:\n  --tap <TAP>\n\nUsage: vmso-device --tap <TAP>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(e),
            "the following required arguments were not provided: --tap <TAP> (see vmso-device --help)"
        );
    }

    #[test]
    fn fds_are_checked() {
        let e = listener_fd(987).unwrap_err().to_string();
        assert!(e.contains("not open"), "{e}");
        let f = std::fs::File::open("/dev/null").unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&f);
        let e = listener_fd(fd).unwrap_err().to_string();
        assert!(e.contains("not a socket"), "{e}");
    }
}
