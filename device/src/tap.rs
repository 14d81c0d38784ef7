//! The TAP backend: `IFF_TAP | IFF_NO_PI`, opened by name. The interface is
//! created if it does not exist (needs CAP_NET_ADMIN), or attached if it is a
//! persistent TAP the caller may use.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, RawFd};

use crate::backend::{read_fd, set_nonblocking, writev_fd, Backend};

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
    #[error("attach TAP {name}: {source}")]
    Attach { name: String, source: io::Error },
}

#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;

pub struct Tap {
    file: File,
    name: String,
}

impl Tap {
    pub fn open(name: &str) -> Result<Self, TapError> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ {
            return Err(TapError::Name(name.to_string()));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .map_err(TapError::OpenTun)?;
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: IFF_TAP | IFF_NO_PI,
            _pad: [0; 22],
        };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        // SAFETY: TUNSETIFF reads and writes one `struct ifreq`; IfReq has the
        // same size and layout for the name and flags fields it uses.
        let r = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF as _, &mut req) };
        if r < 0 {
            let e = io::Error::last_os_error();
            let name = name.to_string();
            return Err(match e.raw_os_error() {
                Some(libc::EPERM) | Some(libc::EACCES) => TapError::NotPermitted { name },
                Some(libc::EBUSY) => TapError::Busy { name },
                _ => TapError::Attach { name, source: e },
            });
        }
        set_nonblocking(file.as_raw_fd()).map_err(|source| TapError::Attach {
            name: name.to_string(),
            source,
        })?;
        Ok(Self {
            file,
            name: name.to_string(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
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
}
