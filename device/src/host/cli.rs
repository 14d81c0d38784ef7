//! The binary's command line: its options ([`Args`], clap), and what they
//! need beyond parsing: the default MAC, file descriptors handed over by a
//! manager, and one-line errors.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use clap::Parser;

use crate::host::pcap;

#[derive(Parser, Debug)]
#[command(version, about = "vmso: a vfio-user PCIe NIC with virtual-address DMA")]
#[command(group(clap::ArgGroup::new("listen").required(true).args(["socket_path", "socket_fd"])))]
#[command(group(clap::ArgGroup::new("wire").args(["tap", "tap_fd"])))]
pub struct Args {
    /// vfio-user socket path to create (must not exist); removed at exit.
    #[arg(long = "socket-path", visible_alias = "socket", value_name = "PATH")]
    pub socket_path: Option<PathBuf>,
    /// A listening AF_UNIX stream socket handed over by a manager, by fd
    /// number (instead of --socket-path).
    #[arg(long, value_name = "N")]
    pub socket_fd: Option<RawFd>,
    /// TAP interface to attach (created if missing; needs CAP_NET_ADMIN then).
    #[arg(long, value_name = "NAME", required_unless_present_any = ["tap_fd", "socketpair_fd"])]
    pub tap: Option<String>,
    /// A TAP opened by a manager (IFF_TAP|IFF_NO_PI, optionally
    /// IFF_VNET_HDR), by fd number, as QEMU's `-netdev tap,fd=N`; with
    /// several queues, one fd per queue (IFF_MULTI_QUEUE): `N,N,...`.
    #[arg(long, value_name = "N[,N...]", value_parser = parse_fds)]
    pub tap_fd: Option<Fds>,
    /// Tests only: one end of an AF_UNIX SOCK_SEQPACKET socketpair as the
    /// wire (rootless; frames carry no virtio-net header).
    #[arg(long, value_name = "N", hide = true, conflicts_with_all = ["tap", "tap_fd"])]
    pub socketpair_fd: Option<RawFd>,
    /// MAC address, e.g. 52:54:00:12:34:56. Default: locally administered,
    /// derived from the TAP name (02:xx:xx:xx:xx:xx, the same at every start).
    #[arg(long, value_parser = parse_mac)]
    pub mac: Option<[u8; 6]>,
    /// Log filter (error, warn, info, debug, trace, or env_logger syntax
    /// such as `info,vmso_device::queue::pair=debug`). Overrides RUST_LOG;
    /// without both: info.
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Serve one VMM connection, then exit (default: keep serving).
    #[arg(long)]
    pub once: bool,
    /// What reaches the TAP for a TSO/USO packet: `wire` segments in the
    /// device (only MTU frames, each marked checksum-valid); `handoff`
    /// writes the whole superpacket with its GSO metadata, as QEMU's NICs
    /// do, and lets the host segment it if it must.
    #[arg(long, value_enum, default_value_t = TxModeArg::Wire)]
    pub tx_mode: TxModeArg,
    /// Queue pairs (1..=16): one worker thread and one TAP queue each
    /// (IFF_MULTI_QUEUE when more than one). Default: 1, or one per
    /// `--tap-fd` fd.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=16))]
    pub queues: Option<u16>,
    /// Let the host coalesce the device's frames: open the TAP with
    /// IFF_NAPI and hold GRO for this many µs across writes (sets the TAP's
    /// gro_flush_timeout and napi_defer_hard_irqs; 0 = off). Needs
    /// CAP_NET_ADMIN; without it the TAP opens without NAPI.
    #[arg(long, value_name = "US", default_value_t = 0, conflicts_with_all = ["tap_fd", "socketpair_fd"])]
    pub host_gro_us: u32,
    /// Open the TAP without a virtio-net header: the host then segments and
    /// checksums every superpacket it sends, and `--tx-mode handoff` falls
    /// back to wire.
    #[arg(long)]
    pub no_vnet_hdr: bool,
    /// Write the metrics JSON document (docs/metrics.md) here: a file,
    /// replaced atomically, or a FIFO, one document per line.
    #[arg(long, value_name = "PATH")]
    pub metrics: Option<PathBuf>,
    /// Seconds between metrics documents (0: only on SIGUSR1 and at exit).
    #[arg(long, value_name = "SECS", default_value_t = 60, requires = "metrics")]
    pub metrics_interval: u64,
    /// Capture what crosses the wire side, both ways, to this pcapng file.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// Bytes kept of each captured frame.
    #[arg(long, value_name = "BYTES", default_value_t = pcap::SNAPLEN_DEFAULT,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(pcap::SNAPLEN_MAX)),
          requires = "pcap")]
    pub pcap_snaplen: u32,
    /// Stop capturing before the file grows past this many bytes (0: no cap).
    #[arg(long, value_name = "BYTES", default_value_t = pcap::MAX_BYTES_DEFAULT, requires = "pcap")]
    pub pcap_max_bytes: u64,
    /// `on`: after startup, every thread may make only the system calls
    /// serving needs (see device/src/host/seccomp.rs); `off` is for debugging.
    #[arg(long, value_enum, default_value_t = SeccompArg::On)]
    pub seccomp: SeccompArg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SeccompArg {
    On,
    Off,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum TxModeArg {
    Wire,
    Handoff,
}

/// The fds of `--tap-fd`, one per queue.
#[derive(Clone, Debug)]
pub struct Fds(pub Vec<RawFd>);

/// `N` or `N,N,...` (`:` also separates, as in QEMU's `fds=`).
fn parse_fds(s: &str) -> Result<Fds, String> {
    s.split([',', ':'])
        .map(|p| {
            p.trim()
                .parse::<RawFd>()
                .ok()
                .filter(|&n| n >= 0)
                .ok_or_else(|| format!("{p:?} is not an fd number"))
        })
        .collect::<Result<_, _>>()
        .map(Fds)
}

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(format!(
            "{s:?} is not a MAC address (six hex bytes separated by ':')"
        ));
    }
    let mut mac = [0u8; 6];
    for (m, p) in mac.iter_mut().zip(parts) {
        *m = u8::from_str_radix(p, 16).map_err(|_| format!("{s:?}: {p:?} is not a hex byte"))?;
    }
    if mac[0] & 1 != 0 {
        return Err(format!("{s:?} is a multicast address"));
    }
    Ok(mac)
}

/// Parses the command line; a bad one is one line on stderr and exit 2.
pub fn parse_args() -> Args {
    match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                e.exit();
            }
            eprintln!("vmso-device: {}", one_line(&e.render().to_string()));
            std::process::exit(2);
        }
    }
}

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
