//! Where frames go and come from: a TAP device, or a socketpair for tests.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A packet backend. Frames are whole Ethernet frames, each preceded by a
/// virtio-net header of [`Backend::vnet_hdr_len`] bytes (0: no header).
pub trait Backend: Send {
    /// Sends one frame gathered from `iov`.
    fn send(&mut self, iov: &[libc::iovec]) -> io::Result<usize>;
    /// Receives one frame; `WouldBlock` when none is queued.
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// The fd to poll for readability.
    fn fd(&self) -> RawFd;
    /// Length of the virtio-net header on every frame, both ways: 0 or
    /// [`crate::engine::vnet::LEN`].
    fn vnet_hdr_len(&self) -> usize {
        0
    }
    /// Sends one frame on queue `queue` of a multi-queue backend (a TAP
    /// queue another worker reads); a single-queue backend sends it on its
    /// own.
    fn send_to(&mut self, queue: usize, iov: &[libc::iovec]) -> io::Result<usize> {
        let _ = queue;
        self.send(iov)
    }
}

/// writev(2) on a raw fd.
pub fn writev_fd(fd: RawFd, iov: &[libc::iovec]) -> io::Result<usize> {
    let cnt = iov.len().min(libc::UIO_MAXIOV as usize) as libc::c_int;
    // SAFETY: `iov` holds `cnt` valid iovec structs; every base/len pair is
    // readable memory (the TX path builds them from guest RAM it keeps mapped
    // or from live buffers). The kernel only reads them.
    let n = unsafe { libc::writev(fd, iov.as_ptr(), cnt) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// read(2) on a raw fd.
pub fn read_fd(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a valid, writable buffer of `buf.len()` bytes.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// One end of a `SOCK_SEQPACKET` socketpair: frames keep their boundaries.
/// Rootless, for tests and for running the device without a TAP.
pub struct SocketBackend {
    fd: OwnedFd,
    vnet: bool,
}

impl SocketBackend {
    /// Like [`SocketBackend::pair`], with a virtio-net header on every
    /// frame both ways, as on a vnet-header TAP.
    pub fn pair_vnet() -> io::Result<(Self, OwnedFd)> {
        let (mut b, peer) = Self::pair()?;
        b.vnet = true;
        Ok((b, peer))
    }

    /// Returns the device's backend and the peer end (non-blocking device side).
    pub fn pair() -> io::Result<(Self, OwnedFd)> {
        let (a, b) = seqpacket_pair()?;
        set_nonblocking(a.as_raw_fd())?;
        for fd in [&a, &b] {
            let size: libc::c_int = 4 << 20;
            // SAFETY: valid fd and a c_int option value of the right size.
            unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_SNDBUF,
                    (&size as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
        Ok((Self { fd: a, vnet: false }, b))
    }
}

// The same shape as `impl Backend for Tap` (host/tap.rs): both are an fd
// read and written whole frames at a time. Kept as two plain impls rather
// than trait defaults over `fd()`, so that a backend that is not a frame fd
// (pcap, the tests' gated one) must write its own send and recv.
impl Backend for SocketBackend {
    fn send(&mut self, iov: &[libc::iovec]) -> io::Result<usize> {
        writev_fd(self.fd.as_raw_fd(), iov)
    }
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        read_fd(self.fd.as_raw_fd(), buf)
    }
    fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
    fn vnet_hdr_len(&self) -> usize {
        if self.vnet {
            crate::engine::vnet::LEN
        } else {
            0
        }
    }
}

/// An `AF_UNIX` `SOCK_SEQPACKET` socketpair, both ends blocking and
/// close-on-exec: the wire of a [`SocketBackend`] (and of the binary's
/// `--socketpair-fd`, which tests hand over).
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socketpair succeeded, so both fds are open and owned by us.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a valid fd with integer arguments.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl SocketBackend {
    /// Takes over `fd`, a `SOCK_SEQPACKET` socket whose peer plays the wire
    /// (the binary's hidden `--socketpair-fd`, for tests that spawn it);
    /// with `vnet`, frames carry a virtio-net header both ways.
    pub fn from_fd(fd: OwnedFd, vnet: bool) -> io::Result<Self> {
        set_nonblocking(fd.as_raw_fd())?;
        Ok(Self { fd, vnet })
    }
}
