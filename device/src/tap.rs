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
use std::os::fd::{AsRawFd, RawFd};

use log::warn;

use crate::backend::{read_fd, set_nonblocking, writev_fd, Backend};
use crate::vnet;

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

/// The host offloads the device takes from the TAP.
const OFFLOADS: libc::c_uint = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6;

pub struct Tap {
    file: File,
    name: String,
    vnet: bool,
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
        let mut v = Self::open_queues(name, 1, vnet_hdr)?;
        Ok(v.remove(0))
    }

    /// Opens `queues` queues of TAP `name` (`IFF_MULTI_QUEUE` when more
    /// than one), each its own fd, so that the host spreads flows too.
    pub fn open_queues(name: &str, queues: usize, vnet_hdr: bool) -> Result<Vec<Self>, TapError> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ {
            return Err(TapError::Name(name.to_string()));
        }
        let mq = queues > 1;
        let mut vnet = vnet_hdr;
        if vnet {
            match Self::attach(name, true, mq) {
                Ok(t) => return Self::more_queues(t, name, queues, true, mq),
                Err(TapError::Attach { source, .. })
                    if source.raw_os_error() == Some(libc::EINVAL) && !mq =>
                {
                    warn!("TAP {name} cannot take a virtio-net header ({source}): using a plain TAP; the host will segment and checksum every superpacket");
                    vnet = false;
                }
                Err(e) => return Err(e),
            }
        }
        let first = Self::attach(name, vnet, mq)?;
        Self::more_queues(first, name, queues, vnet, mq)
    }

    fn more_queues(
        first: Self,
        name: &str,
        queues: usize,
        vnet: bool,
        mq: bool,
    ) -> Result<Vec<Self>, TapError> {
        let mut v = vec![first];
        for _ in 1..queues {
            v.push(Self::attach(name, vnet, mq)?);
        }
        Ok(v)
    }

    fn attach(name: &str, vnet: bool, mq: bool) -> Result<Self, TapError> {
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
        if vnet {
            ioctl_int(fd, libc::TUNSETVNETHDRSZ, vnet::LEN as libc::c_int).map_err(attach)?;
            if let Err(e) = ioctl_int(fd, libc::TUNSETOFFLOAD, OFFLOADS as libc::c_int) {
                warn!("TAP {name}: TUNSETOFFLOAD refused ({e}): the host will segment superpackets itself");
            }
        }
        Ok(Self {
            file,
            name: name.to_string(),
            vnet,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// True if frames carry a virtio-net header.
    pub fn has_vnet_hdr(&self) -> bool {
        self.vnet
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
}
