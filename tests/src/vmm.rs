//! A raw vfio-user peer: writes messages byte by byte to the server socket,
//! so that tests can send what `vfio_user::Client` never would.

use std::io::{Read, Write};
use std::os::fd::RawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use vmm_sys_util::sock_ctrl_msg::ScmSocket;

pub const HEADER_SIZE: u32 = 16;

/// vfio-user command numbers. Written out from the protocol, not taken from
/// `vfio_user::Command`: the raw peer checks the server (which uses that
/// crate) against the protocol. Their shape is that of every constant table.
pub mod command {
    pub const VERSION: u16 = 1;
    pub const DMA_MAP: u16 = 2;
    pub const DEVICE_GET_INFO: u16 = 4;
    pub const SET_IRQS: u16 = 8;
    pub const REGION_READ: u16 = 9;
    pub const REGION_WRITE: u16 = 10;
}

/// Header flags.
pub const FLAG_REPLY: u32 = 1;
pub const FLAG_ERROR: u32 = 1 << 5;

/// A reply header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    pub message_id: u16,
    pub command: u16,
    pub size: u32,
    pub flags: u32,
    pub error: u32,
}

impl Reply {
    pub fn is_error(&self) -> bool {
        self.flags & FLAG_ERROR != 0
    }
}

/// A message: a header claiming `size` bytes, then `payload` (whose length
/// need not match).
pub fn message(id: u16, command: u16, size: u32, flags: u32, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(16 + payload.len());
    m.extend_from_slice(&id.to_le_bytes());
    m.extend_from_slice(&command.to_le_bytes());
    m.extend_from_slice(&size.to_le_bytes());
    m.extend_from_slice(&flags.to_le_bytes());
    m.extend_from_slice(&0u32.to_le_bytes());
    m.extend_from_slice(payload);
    m
}

/// A well-formed command: the size field matches the payload.
pub fn command(id: u16, command: u16, payload: &[u8]) -> Vec<u8> {
    message(id, command, HEADER_SIZE + payload.len() as u32, 0, payload)
}

/// A VERSION payload: major 0, minor 1, then `data` as is.
pub fn version_payload(data: &[u8]) -> Vec<u8> {
    let mut p = vec![0, 0, 1, 0];
    p.extend_from_slice(data);
    p
}

/// The fixed part of REGION_READ/REGION_WRITE.
pub fn region_access(region: u32, offset: u64, count: u32) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&offset.to_le_bytes());
    p.extend_from_slice(&region.to_le_bytes());
    p.extend_from_slice(&count.to_le_bytes());
    p
}

pub struct RawVmm {
    pub stream: UnixStream,
}

impl RawVmm {
    /// Connects; every read gives up after 10 s, so that a server that
    /// stops answering fails the test instead of hanging it.
    pub fn connect(socket: &Path) -> Self {
        let stream = UnixStream::connect(socket).expect("connect to the server socket");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Self { stream }
    }

    /// Connects and negotiates the version, as a well-behaved VMM does.
    pub fn handshake(socket: &Path) -> Self {
        let mut v = Self::connect(socket);
        v.good_version();
        v
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    pub fn send_with_fds(&mut self, bytes: &[u8], fds: &[RawFd]) {
        let n = self.stream.send_with_fds(&[bytes], fds).expect("sendmsg");
        assert_eq!(n, bytes.len());
    }

    /// Reads one reply; `None` if the server closed the connection.
    pub fn reply(&mut self) -> Option<(Reply, Vec<u8>)> {
        let mut h = [0u8; 16];
        match self.stream.read(&mut h[..1]) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e) => panic!("no reply: {e}"),
        }
        self.stream.read_exact(&mut h[1..]).expect("reply header");
        let u16_at = |i: usize| u16::from_le_bytes([h[i], h[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let r = Reply {
            message_id: u16_at(0),
            command: u16_at(2),
            size: u32_at(4),
            flags: u32_at(8),
            error: u32_at(12),
        };
        assert!(
            r.size >= HEADER_SIZE,
            "server sent a size below the header: {r:?}"
        );
        let mut rest = vec![0u8; (r.size - HEADER_SIZE) as usize];
        self.stream.read_exact(&mut rest).expect("reply payload");
        Some((r, rest))
    }

    /// Reads an error reply and returns its errno.
    pub fn error_reply(&mut self) -> i32 {
        let (r, _) = self
            .reply()
            .expect("an error reply, not a closed connection");
        assert!(r.is_error() && r.flags & FLAG_REPLY != 0, "{r:?}");
        r.error as i32
    }

    /// True once the server has closed the connection.
    pub fn closed(&mut self) -> bool {
        self.reply().is_none()
    }

    /// Sends a good VERSION and checks the reply.
    pub fn good_version(&mut self) {
        let p = version_payload(b"{\"capabilities\":{\"max_msg_fds\":16}}\0");
        self.send(&command(1, command::VERSION, &p));
        let (r, data) = self.reply().expect("version reply");
        assert!(!r.is_error(), "{r:?}");
        assert_eq!(r.command, command::VERSION);
        assert_eq!(data.last(), Some(&0), "capabilities end with a NUL");
    }

    /// Reads a 4-byte BAR0 register with a well-formed REGION_READ.
    pub fn read_reg(&mut self, offset: u64) -> u32 {
        let region = vfio_bindings::bindings::vfio::VFIO_PCI_BAR0_REGION_INDEX;
        self.send(&command(
            2,
            command::REGION_READ,
            &region_access(region, offset, 4),
        ));
        let (r, data) = self.reply().expect("region read reply");
        assert!(!r.is_error(), "{r:?}");
        assert_eq!(data.len(), 16 + 4);
        u32::from_le_bytes(data[16..20].try_into().unwrap())
    }
}
