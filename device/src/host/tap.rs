//! The TAP backend: `IFF_TAP | IFF_NO_PI`, opened by name. The interface is
//! created if it does not exist (needs CAP_NET_ADMIN), or attached if it is a
//! persistent TAP the caller may use.
//!
//! By default the TAP carries a virtio-net header (`IFF_VNET_HDR`,
//! `TUNSETVNETHDRSZ`) and offers checksum and TCP segmentation offload to the
//! host (`TUNSETOFFLOAD`: `TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6`), so that the
//! host hands the device whole superpackets instead of segmenting them. A
//! kernel that refuses the header gets a plain TAP and one log line.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::sync::Arc;

use log::warn;

use crate::engine::vnet;
use crate::host::backend::{read_fd, set_nonblocking, writev_fd, Backend};

#[derive(Debug, thiserror::Error)]
pub enum TapError {
    #[error("open /dev/net/tun: {0} (is the tun module loaded and /dev/net/tun present?)")]
    OpenTun(#[source] io::Error),
    #[error("TAP name {0:?} is empty or longer than 15 bytes")]
    Name(String),
    #[error("attach TAP {name}: not permitted (run as root, or create a persistent TAP owned by this user: ip tuntap add {name} mode tap user $USER)")]
    NotPermitted { name: String },
    #[error("attach TAP {name}: busy (another process holds it)")]
    Busy { name: String },
    #[error("attach TAP {name} with several queues: refused (a persistent TAP must be created multi-queue: ip tuntap add {name} mode tap multi_queue)")]
    NotMultiQueue { name: String },
    #[error("attach TAP {name}: {source}")]
    Attach { name: String, source: io::Error },
}

#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// How to open a TAP.
#[derive(Clone, Copy, Debug, Default)]
pub struct TapOptions {
    /// A virtio-net header on every frame, and host offloads.
    pub vnet_hdr: bool,
    /// `IFF_NAPI`: the host takes the device's frames through NAPI and GRO,
    /// holding GRO across writes for this long (the TAP's
    /// `gro_flush_timeout`), so that MTU frames of one flow reach the host's
    /// stack as one superpacket and are acknowledged as one.
    pub host_gro: Option<std::time::Duration>,
}

#[derive(Clone, Copy, Debug)]
struct Flags {
    vnet: bool,
    mq: bool,
    napi: bool,
}

/// Sets the TAP's `gro_flush_timeout` (and `napi_defer_hard_irqs`, which
/// keeps NAPI from completing, and so flushing GRO, after every write), in
/// the sysfs of the network namespace the device runs in.
fn hold_host_gro(name: &str, hold: std::time::Duration) {
    let dir = std::path::Path::new("/sys/class/net").join(name);
    let knobs = [
        ("gro_flush_timeout", hold.as_nanos().to_string()),
        ("napi_defer_hard_irqs", "1".to_string()),
    ];
    for (k, v) in knobs {
        if let Err(e) = std::fs::write(dir.join(k), &v) {
            warn!("TAP {name}: cannot set {k} = {v} ({e}): the host flushes GRO after every write");
        }
    }
}

/// Lets every queue of one TAP send on the others (see `Backend::send_to`).
fn share_queues(taps: &mut [Tap]) {
    let all = Arc::new(taps.iter().map(|t| t.file.clone()).collect::<Vec<_>>());
    for t in taps {
        t.queues = all.clone();
    }
}

/// Sets the virtio-net header size and offers the host offloads on a TAP fd
/// attached with `IFF_VNET_HDR`; true if the offloads took (a refusal is
/// logged: the host then segments superpackets itself).
fn vnet_setup(fd: RawFd, name: &str) -> io::Result<bool> {
    ioctl_int(fd, libc::TUNSETVNETHDRSZ, vnet::LEN as libc::c_int)?;
    // SAFETY: TUNSETOFFLOAD takes its flags by value, not through a
    // pointer; nothing is read from or written to our memory.
    let r = unsafe { libc::ioctl(fd, libc::TUNSETOFFLOAD, libc::c_ulong::from(OFFLOADS)) };
    if r < 0 {
        let e = io::Error::last_os_error();
        warn!("TAP {name}: TUNSETOFFLOAD refused ({e}): the host will segment superpackets itself");
    }
    Ok(r == 0)
}

/// The host offloads the device takes from the TAP.
const OFFLOADS: libc::c_uint = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6;

pub struct Tap {
    file: Arc<File>,
    /// Every queue of the TAP (this one among them), shared so that a
    /// queue's fd stays open while any worker may still send on it.
    queues: Arc<Vec<Arc<File>>>,
    name: String,
    vnet: bool,
    /// TUNSETOFFLOAD took: the host may send superpackets.
    offloads: bool,
}

/// `ioctl(fd, req, &arg)` for the TAP ioctls that take an int.
fn ioctl_int(fd: RawFd, req: libc::Ioctl, arg: libc::c_int) -> io::Result<()> {
    // SAFETY: the request takes a pointer to one int, which lives on the
    // stack for the duration of the call.
    let r = unsafe { libc::ioctl(fd, req, &arg) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl Tap {
    /// Opens (or creates) TAP `name`; with `vnet_hdr`, with a virtio-net
    /// header and host offloads (see the module documentation).
    pub fn open(name: &str, vnet_hdr: bool) -> Result<Self, TapError> {
        let opts = TapOptions {
            vnet_hdr,
            ..Default::default()
        };
        let mut v = Self::open_queues(name, 1, opts)?;
        Ok(v.remove(0))
    }

    /// Opens `queues` queues of TAP `name` (`IFF_MULTI_QUEUE` when more
    /// than one), each its own fd, so that the host spreads flows too.
    pub fn open_queues(name: &str, queues: usize, opts: TapOptions) -> Result<Vec<Self>, TapError> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ {
            return Err(TapError::Name(name.to_string()));
        }
        let mut flags = Flags {
            vnet: opts.vnet_hdr,
            mq: queues > 1,
            napi: opts.host_gro.is_some(),
        };
        let mut tried_mq = flags.mq;
        let first = loop {
            match Self::attach(name, flags) {
                Ok(t) => break t,
                // A persistent TAP created multi_queue takes only multi-queue
                // attaches, even of one queue: try that before anything else.
                Err(TapError::Attach { source, .. })
                    if source.raw_os_error() == Some(libc::EINVAL) && !tried_mq =>
                {
                    tried_mq = true;
                    flags.mq = true;
                }
                Err(TapError::NotMultiQueue { .. }) if queues == 1 => {
                    flags.mq = false;
                    if !flags.vnet {
                        return Err(TapError::Attach {
                            name: name.to_string(),
                            source: io::Error::from_raw_os_error(libc::EINVAL),
                        });
                    }
                    warn!("TAP {name} cannot take a virtio-net header: using a plain TAP; the host will segment and checksum every superpacket");
                    flags.vnet = false;
                }
                Err(TapError::Attach { source, .. })
                    if source.raw_os_error() == Some(libc::EINVAL) && flags.vnet && !flags.mq =>
                {
                    warn!("TAP {name} cannot take a virtio-net header ({source}): using a plain TAP; the host will segment and checksum every superpacket");
                    flags.vnet = false;
                }
                Err(TapError::NotPermitted { .. } | TapError::Attach { .. }) if flags.napi => {
                    warn!("TAP {name}: IFF_NAPI refused (it needs CAP_NET_ADMIN): the host will not coalesce the device's frames (GRO)");
                    flags.napi = false;
                }
                Err(e) => return Err(e),
            }
        };
        let mut v = vec![first];
        for _ in 1..queues {
            v.push(Self::attach(name, flags)?);
        }
        if let (true, Some(hold)) = (flags.napi, opts.host_gro) {
            hold_host_gro(name, hold);
        }
        share_queues(&mut v);
        Ok(v)
    }

    /// One queue; [`share_queues`] links the queues of one TAP afterwards.
    fn new(file: File, name: String, vnet: bool, offloads: bool) -> Self {
        let file = Arc::new(file);
        Self {
            queues: Arc::new(vec![file.clone()]),
            file,
            name,
            vnet,
            offloads,
        }
    }

    fn attach(name: &str, f: Flags) -> Result<Self, TapError> {
        let (vnet, mq) = (f.vnet, f.mq);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .map_err(TapError::OpenTun)?;
        let mut flags = libc::IFF_TAP | libc::IFF_NO_PI;
        if vnet {
            flags |= libc::IFF_VNET_HDR;
        }
        if mq {
            flags |= libc::IFF_MULTI_QUEUE;
        }
        if f.napi {
            flags |= libc::IFF_NAPI;
        }
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: flags as libc::c_short,
            _pad: [0; 22],
        };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        // SAFETY: TUNSETIFF reads and writes one `struct ifreq`; IfReq has the
        // same size and layout for the name and flags fields it uses.
        let r = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut req) };
        if r < 0 {
            let e = io::Error::last_os_error();
            let name = name.to_string();
            return Err(match e.raw_os_error() {
                Some(libc::EPERM) | Some(libc::EACCES) => TapError::NotPermitted { name },
                Some(libc::EBUSY) => TapError::Busy { name },
                Some(libc::EINVAL) if mq => TapError::NotMultiQueue { name },
                _ => TapError::Attach { name, source: e },
            });
        }
        let fd = file.as_raw_fd();
        let attach = |source| TapError::Attach {
            name: name.to_string(),
            source,
        };
        set_nonblocking(fd).map_err(attach)?;
        let offloads = if vnet {
            vnet_setup(fd, name).map_err(attach)?
        } else {
            false
        };
        Ok(Self::new(file, name.to_string(), vnet, offloads))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// True if frames carry a virtio-net header.
    pub fn has_vnet_hdr(&self) -> bool {
        self.vnet
    }

    /// True if the host may send superpackets (TUNSETOFFLOAD took).
    pub fn has_host_offloads(&self) -> bool {
        self.offloads
    }
}

impl Backend for Tap {
    fn send(&mut self, iov: &[libc::iovec]) -> io::Result<usize> {
        writev_fd(self.file.as_raw_fd(), iov)
    }
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        read_fd(self.file.as_raw_fd(), buf)
    }
    fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
    fn vnet_hdr_len(&self) -> usize {
        if self.vnet {
            vnet::LEN
        } else {
            0
        }
    }
    fn send_to(&mut self, queue: usize, iov: &[libc::iovec]) -> io::Result<usize> {
        match self.queues.get(queue) {
            Some(f) => writev_fd(f.as_raw_fd(), iov),
            None => self.send(iov),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opens a TAP in a network namespace of this thread's own (root only;
    /// skipped otherwise): the header and the offloads must take.
    #[test]
    fn vnet_header_and_host_offloads_take() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 || !std::path::Path::new("/dev/net/tun").exists() {
            eprintln!("skipped: needs root and /dev/net/tun");
            return;
        }
        std::thread::spawn(|| {
            // SAFETY: unshare of the network namespace affects only this
            // thread, which exits at the end of the closure.
            assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
            let taps = Tap::open_queues(
                "vmsotest0",
                2,
                TapOptions {
                    vnet_hdr: true,
                    ..Default::default()
                },
            )
            .expect("multi-queue vnet TAP");
            assert_eq!(taps.len(), 2);
            for t in &taps {
                assert!(t.has_vnet_hdr());
                assert!(t.has_host_offloads(), "TUNSETOFFLOAD took");
                assert_eq!(t.vnet_hdr_len(), vnet::LEN);
            }
            // One queue of a TAP that is multi-queue (as `ip tuntap add ...
            // multi_queue` makes it) attaches too.
            let one = Tap::open("vmsotest0", true).expect("one queue of a multi-queue TAP");
            assert!(one.has_vnet_hdr());
        })
        .join()
        .unwrap();
    }
}

/// Why an fd handed over with `--tap-fd` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TapFdError {
    #[error("--tap-fd {0}: fd {0} is not open (the manager must pass it to vmso-device without FD_CLOEXEC)")]
    Closed(RawFd),
    #[error("--tap-fd {fd}: fd {fd} is not a TAP (TUNGETIFF: {source}): pass an fd of /dev/net/tun attached with TUNSETIFF IFF_TAP|IFF_NO_PI")]
    NotTap { fd: RawFd, source: io::Error },
    #[error("--tap-fd {fd}: {name} is a TUN (layer 3) device: vmso needs a TAP (IFF_TAP)")]
    Tun { fd: RawFd, name: String },
    #[error("--tap-fd {fd}: TAP {name} was attached without IFF_NO_PI: reopen it with IFF_TAP|IFF_NO_PI")]
    PacketInfo { fd: RawFd, name: String },
    #[error("--tap-fd {fd}: TAP {name} carries a virtio-net header (IFF_VNET_HDR) but --no-vnet-hdr was given: drop --no-vnet-hdr or attach the TAP without IFF_VNET_HDR")]
    VnetUnwanted { fd: RawFd, name: String },
    #[error("--tap-fd: fds {first} and {fd} are queues of different TAPs ({first_name}, {name}): pass the queues of one TAP")]
    Mixed {
        first: RawFd,
        first_name: String,
        fd: RawFd,
        name: String,
    },
    #[error("--tap-fd {fd}: TAP {name} was attached without IFF_MULTI_QUEUE, so it cannot be one of several queues: attach every queue with IFF_MULTI_QUEUE")]
    NotMultiQueue { fd: RawFd, name: String },
    #[error("--tap-fd {fd}: set up TAP {name}: {op}: {source}")]
    Setup {
        fd: RawFd,
        name: String,
        op: &'static str,
        source: io::Error,
    },
}

impl Tap {
    /// Takes over a TAP that a manager opened and attached (QEMU's
    /// `-netdev tap,fd=N`): checks with TUNGETIFF that it is an
    /// `IFF_TAP | IFF_NO_PI` interface, and uses a virtio-net header
    /// (with the host offloads of [`Tap::open`]) exactly when the fd was
    /// attached with `IFF_VNET_HDR`. `vnet_hdr` false refuses such an fd.
    pub fn from_fd(fd: RawFd, vnet_hdr: bool) -> Result<Self, TapFdError> {
        Self::take_fd(fd, vnet_hdr, false)
    }

    /// [`Tap::from_fd`] for the queues of one TAP (QEMU's `fds=`): every fd
    /// must be a queue of the same interface, attached with
    /// `IFF_MULTI_QUEUE` when there are several.
    pub fn from_fds(fds: &[RawFd], vnet_hdr: bool) -> Result<Vec<Self>, TapFdError> {
        let multi = fds.len() > 1;
        let mut taps: Vec<Self> = Vec::with_capacity(fds.len());
        for &fd in fds {
            let t = Self::take_fd(fd, vnet_hdr, multi)?;
            if let Some(first) = taps.first() {
                if first.name != t.name || first.vnet != t.vnet {
                    return Err(TapFdError::Mixed {
                        first: fds[0],
                        first_name: first.name.clone(),
                        fd,
                        name: t.name.clone(),
                    });
                }
            }
            taps.push(t);
        }
        share_queues(&mut taps);
        Ok(taps)
    }

    fn take_fd(fd: RawFd, vnet_hdr: bool, multi: bool) -> Result<Self, TapFdError> {
        // SAFETY: F_GETFD on any integer is harmless; it fails with EBADF
        // when nothing is open there.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(TapFdError::Closed(fd));
        }
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: 0,
            _pad: [0; 22],
        };
        // SAFETY: TUNGETIFF writes one `struct ifreq` (name and flags), which
        // IfReq matches in size and layout; on a non-TUN fd it fails.
        let r = unsafe { libc::ioctl(fd, libc::TUNGETIFF, &mut req) };
        if r < 0 {
            return Err(TapFdError::NotTap {
                fd,
                source: io::Error::last_os_error(),
            });
        }
        let len = req
            .name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(req.name.len());
        let name = String::from_utf8_lossy(&req.name[..len]).into_owned();
        let flags = libc::c_int::from(req.flags);
        if flags & libc::IFF_TAP == 0 {
            return Err(TapFdError::Tun { fd, name });
        }
        if flags & libc::IFF_NO_PI == 0 {
            return Err(TapFdError::PacketInfo { fd, name });
        }
        if multi && flags & libc::IFF_MULTI_QUEUE == 0 {
            return Err(TapFdError::NotMultiQueue { fd, name });
        }
        let vnet = flags & libc::IFF_VNET_HDR != 0;
        if vnet && !vnet_hdr {
            return Err(TapFdError::VnetUnwanted { fd, name });
        }
        let setup = |op, source| TapFdError::Setup {
            fd,
            name: name.clone(),
            op,
            source,
        };
        // SAFETY: `fd` is open (checked above) and handed to us to own: the
        // manager passed it for this process's exclusive use.
        let file = unsafe { File::from_raw_fd(fd) };
        // SAFETY: F_SETFD with FD_CLOEXEC on an fd we own.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
            return Err(setup("F_SETFD FD_CLOEXEC", io::Error::last_os_error()));
        }
        set_nonblocking(fd).map_err(|e| setup("O_NONBLOCK", e))?;
        let offloads = if vnet {
            vnet_setup(fd, &name).map_err(|e| setup("TUNSETVNETHDRSZ", e))?
        } else {
            false
        };
        Ok(Self::new(file, name, vnet, offloads))
    }
}
