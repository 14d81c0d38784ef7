// Copyright © 2021 Intel Corporation
//
// SPDX-License-Identifier: Apache-2.0
//

use bitflags::bitflags;
use libc::{c_void, iovec};
use libc::{sysconf, _SC_PAGESIZE};
use std::ffi::CStr;
use std::fs::File;
use std::io::{Read, Write};
use std::mem::size_of;
use std::num::Wrapping;
use std::os::fd::OwnedFd;
use std::os::unix::{
    io::{FromRawFd, RawFd},
    net::{UnixListener, UnixStream},
};
use std::path::{Path, PathBuf};
use thiserror::Error;
use vfio_bindings::bindings::vfio::*;
use vm_memory::{ByteValued, FileOffset};
use vmm_sys_util::sock_ctrl_msg::ScmSocket;

#[macro_use]
extern crate serde_derive;

#[macro_use]
extern crate log;

#[allow(dead_code)]
#[repr(u16)]
#[derive(Clone, Copy, Debug, Default, enumn::N)]
pub enum Command {
    #[default]
    Unknown = 0,
    Version = 1,
    DmaMap = 2,
    DmaUnmap = 3,
    DeviceGetInfo = 4,
    DeviceGetRegionInfo = 5,
    GetRegionIoFds = 6,
    GetIrqInfo = 7,
    SetIrqs = 8,
    RegionRead = 9,
    RegionWrite = 10,
    DmaRead = 11,
    DmaWrite = 12,
    DeviceReset = 13,
    UserDirtyPages = 14,
}

#[allow(dead_code)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum HeaderFlags {
    #[default]
    Command = 0,
    Reply = 1,
    NoReply = 1 << 4,
    Error = 1 << 5,
}

#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
struct Header {
    message_id: u16,
    command: u16,
    message_size: u32,
    flags: u32,
    error: u32,
}

impl Header {
    fn no_reply(&self) -> bool {
        self.flags & HeaderFlags::NoReply as u32 != 0
    }

    fn is_error(&self) -> bool {
        self.flags & HeaderFlags::Error as u32 != 0
    }
}

/// The bits of `Header::flags` that hold the message type (command or reply).
const HEADER_TYPE_MASK: u32 = 0xf;

/// The most file descriptors one message can carry.
const MAX_FDS: usize = 16;

/// The largest data transfer (`REGION_READ`/`REGION_WRITE` data) a server
/// accepts; it is the `max_data_xfer_size` it advertises in VERSION.
pub const MAX_DATA_XFER_SIZE: u32 = 1 << 20;

/// Room for the fixed part of any message besides its data: the largest
/// fixed part is 48 bytes (`DEVICE_GET_REGION_INFO`), and a VERSION
/// message's capabilities are a short JSON object.
const MAX_FIXED_PAYLOAD: usize = 4096;

/// The largest message, header included, a server reads. The size field of
/// every message is checked against this (and against the header size)
/// before anything is allocated for the message.
pub const MAX_MESSAGE_SIZE: usize =
    size_of::<Header>() + MAX_FIXED_PAYLOAD + MAX_DATA_XFER_SIZE as usize;

#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
struct Version {
    header: Header,
    major: u16,
    minor: u16,
}

#[derive(Serialize, Deserialize, Debug)]
struct MigrationCapabilities {
    pgsize: u32,
}

const fn default_max_msg_fds() -> u32 {
    1
}

const fn default_max_data_xfer_size() -> u32 {
    MAX_DATA_XFER_SIZE
}

#[inline(always)]
fn pagesize() -> u32 {
    // SAFETY: sysconf
    unsafe { sysconf(_SC_PAGESIZE) as u32 }
}

fn default_migration_capabilities() -> MigrationCapabilities {
    MigrationCapabilities { pgsize: pagesize() }
}

bitflags! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct DmaMapFlags: u32 {
        const READ = 1 << 0;
        const WRITE = 1 << 1;
        const READ_WRITE = Self::READ.bits() | Self::WRITE.bits();

        // There might be unknown bits and we don't want bitflags to clear them.
        const _ = !0;
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct DmaUnmapFlags: u32 {
        const GET_DIRTY_PAGE_INFO = 1 << 1;
        const UNMAP_ALL = 1 << 2;

        // See above.
        const _ = !0;
    }
}

#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
struct DmaMap {
    header: Header,
    argsz: u32,
    flags: u32,
    offset: u64,
    address: u64,
    size: u64,
}

#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
struct DmaUnmap {
    header: Header,
    argsz: u32,
    flags: u32,
    address: u64,
    size: u64,
}

#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
struct DeviceGetInfo {
    header: Header,
    argsz: u32,
    flags: u32,
    num_regions: u32,
    num_irqs: u32,
}

#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
struct DeviceGetRegionInfo {
    header: Header,
    region_info: vfio_region_info,
}

#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
struct RegionAccess {
    header: Header,
    offset: u64,
    region: u32,
    count: u32,
}

#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
struct GetIrqInfo {
    header: Header,
    argsz: u32,
    flags: u32,
    index: u32,
    count: u32,
}

#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
struct SetIrqs {
    header: Header,
    argsz: u32,
    flags: u32,
    index: u32,
    start: u32,
    count: u32,
}

#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
struct DeviceReset {
    header: Header,
}

// SAFETY: data structure only contain a series of integers
unsafe impl ByteValued for Header {}
// SAFETY: data structure only contain a series of integers
unsafe impl ByteValued for Version {}
// SAFETY: data structure only contain a series of integers
unsafe impl ByteValued for DmaMap {}
// SAFETY: data structure only contain a series of integers
unsafe impl ByteValued for DmaUnmap {}
// SAFETY: data structure only contain a series of integers
unsafe impl ByteValued for DeviceGetInfo {}
// SAFETY: data structure only contain a series of integers
unsafe impl ByteValued for DeviceGetRegionInfo {}
// SAFETY: data structure only contain a series of integers
unsafe impl ByteValued for RegionAccess {}
// SAFETY: data structure only contain a series of integers
unsafe impl ByteValued for GetIrqInfo {}
// SAFETY: data structure only contain a series of integers
unsafe impl ByteValued for SetIrqs {}
// SAFETY: data structure only contain a series of integers
unsafe impl ByteValued for DeviceReset {}

#[derive(Serialize, Deserialize, Debug)]
struct Capabilities {
    #[serde(default = "default_max_msg_fds")]
    max_msg_fds: u32,
    #[serde(default = "default_max_data_xfer_size")]
    max_data_xfer_size: u32,
    #[serde(default = "default_migration_capabilities")]
    migration: MigrationCapabilities,
}

#[derive(Serialize, Deserialize, Debug, Default)]
struct CapabilitiesData {
    capabilities: Capabilities,
}

impl Default for Capabilities {
    fn default() -> Self {
        Self {
            max_msg_fds: default_max_msg_fds(),
            max_data_xfer_size: default_max_data_xfer_size(),
            migration: default_migration_capabilities(),
        }
    }
}

pub struct Client {
    stream: UnixStream,
    next_message_id: Wrapping<u16>,
    num_irqs: u32,
    resettable: bool,
    regions: Vec<Region>,
    strict_replies: bool,
}

#[derive(Debug)]
pub struct Region {
    pub flags: u32,
    pub index: u32,
    pub size: u64,
    pub file_offset: Option<FileOffset>,
    pub sparse_areas: Vec<vfio_region_sparse_mmap_area>,
}

#[derive(Clone, Copy, Debug)]
pub struct IrqInfo {
    pub index: u32,
    pub flags: u32,
    pub count: u32,
}

#[derive(Error, Debug)]
pub enum Error {
    #[error("Error connecting: {0}")]
    Connect(#[source] std::io::Error),
    #[error("Error serializing capabilities: {0}")]
    SerializeCapabilites(#[source] serde_json::Error),
    #[error("Error deserializing capabilities: {0}")]
    DeserializeCapabilites(#[source] serde_json::Error),
    #[error("Error writing to stream: {0}")]
    StreamWrite(#[source] std::io::Error),
    #[error("Error reading from stream: {0}")]
    StreamRead(#[source] std::io::Error),
    #[error("Error shutting down stream: {0}")]
    StreamShutdown(#[source] std::io::Error),
    #[error("Error writing with file descriptors: {0}")]
    SendWithFd(#[source] vmm_sys_util::errno::Error),
    #[error("Error reading with file descriptors: {0}")]
    ReceiveWithFd(#[source] vmm_sys_util::errno::Error),
    #[error("Not a PCI device")]
    NotPciDevice,
    #[error("Socket path already exists")]
    SocketPathExists,
    #[error("Error binding to socket: {0}")]
    SocketBind(#[source] std::io::Error),
    #[error("Error accepting connection: {0}")]
    SocketAccept(#[source] std::io::Error),
    #[error("Unknown command: {0}")]
    UnknownCommand(u16),
    #[error("Unsupported command: {0:?}")]
    UnsupportedCommand(Command),
    #[error("Unsupported feature")]
    UnsupportedFeature,
    #[error("Error from backend: {0:?}")]
    Backend(#[source] std::io::Error),
    #[error("Invalid input")]
    InvalidInput,
    #[error("No_reply bit unexpectedly set for command: {0:?}")]
    UnexpectedNoReply(Command),
    #[error("Message size {size} of command {command} is below the header size")]
    MessageTooShort { command: u16, size: u32 },
    #[error("Message size {size} of command {command} is above the maximum of {max}", max = MAX_MESSAGE_SIZE)]
    MessageTooLong { command: u16, size: u32 },
    #[error("{command:?} message of {size} bytes is truncated or inconsistent: {need} expected")]
    Truncated {
        command: Command,
        size: usize,
        need: usize,
    },
    #[error("{command:?} message with flags {flags:#x} is not a command")]
    NotACommand { command: Command, flags: u32 },
    #[error("{command:?} message came with {count} file descriptors it does not take")]
    UnexpectedFds { command: Command, count: usize },
    #[error("Data transfer of {0} bytes is above the maximum of {max}", max = MAX_DATA_XFER_SIZE)]
    TransferTooLarge(u32),
    #[error("Invalid version data: {0}")]
    InvalidVersionData(&'static str),
    #[error("Message of {0} bytes is above the maximum of {max}", max = MAX_MESSAGE_SIZE)]
    ReplyTooLong(u32),
    #[error("Server refused command {command:?} with errno {errno}")]
    Reply { command: Command, errno: u32 },
}

/// The errno an `std::io::Error` from a backend stands for: its OS error
/// code if it has one, else the closest code to its kind.
fn io_errno(e: &std::io::Error) -> i32 {
    use std::io::ErrorKind;
    if let Some(errno) = e.raw_os_error().filter(|&n| n > 0) {
        return errno;
    }
    match e.kind() {
        ErrorKind::InvalidInput | ErrorKind::InvalidData => libc::EINVAL,
        ErrorKind::NotFound => libc::ENOENT,
        ErrorKind::PermissionDenied => libc::EACCES,
        ErrorKind::AlreadyExists => libc::EEXIST,
        ErrorKind::Unsupported => libc::ENOTSUP,
        ErrorKind::OutOfMemory => libc::ENOMEM,
        ErrorKind::StorageFull => libc::ENOSPC,
        ErrorKind::WouldBlock => libc::EAGAIN,
        ErrorKind::ResourceBusy => libc::EBUSY,
        ErrorKind::TimedOut => libc::ETIMEDOUT,
        _ => libc::EIO,
    }
}

impl Error {
    /// The errno an error reply for this error carries; never 0.
    pub fn errno(&self) -> i32 {
        match self {
            Error::UnknownCommand(_) | Error::UnsupportedCommand(_) | Error::UnsupportedFeature => {
                libc::ENOTSUP
            }
            Error::Backend(e) => io_errno(e),
            Error::MessageTooLong { .. } | Error::TransferTooLarge(_) | Error::ReplyTooLong(_) => {
                libc::E2BIG
            }
            Error::UnexpectedFds { .. } => libc::EBADF,
            Error::InvalidInput
            | Error::UnexpectedNoReply(_)
            | Error::MessageTooShort { .. }
            | Error::Truncated { .. }
            | Error::NotACommand { .. }
            | Error::InvalidVersionData(_)
            | Error::DeserializeCapabilites(_)
            | Error::NotPciDevice => libc::EINVAL,
            Error::ReceiveWithFd(e) | Error::SendWithFd(e) => e.errno(),
            Error::Reply { errno, .. } => i32::try_from(*errno)
                .ok()
                .filter(|&n| n > 0)
                .unwrap_or(libc::EIO),
            Error::Connect(e)
            | Error::StreamWrite(e)
            | Error::StreamRead(e)
            | Error::StreamShutdown(e)
            | Error::SocketBind(e)
            | Error::SocketAccept(e) => io_errno(e),
            Error::SerializeCapabilites(_) | Error::SocketPathExists => libc::EIO,
        }
    }

    /// True if the peer sent something the server refuses, false if the
    /// connection itself failed (then there is nobody to reply to).
    fn is_refusal(&self) -> bool {
        match self {
            Error::Connect(_)
            | Error::StreamWrite(_)
            | Error::StreamRead(_)
            | Error::StreamShutdown(_)
            | Error::SendWithFd(_)
            | Error::SocketBind(_)
            | Error::SocketAccept(_) => false,
            // More descriptors than MAX_FDS: the kernel truncated them and
            // vmm-sys-util closed them all.
            Error::ReceiveWithFd(e) => e.errno() == libc::ENOBUFS,
            _ => true,
        }
    }
}

/// The header every capability of a region begins with.
#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
struct CapabilityHeader {
    id: u16,
    version: u16,
    next: u32,
}

/// Fixed-size header at the start of a sparse mmap capability.
#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
struct SparseMmapHeader {
    nr_areas: u32,
    reserved: u32,
}

// SAFETY: data structure only contain a series of integers
unsafe impl ByteValued for CapabilityHeader {}
// SAFETY: data structure only contain a series of integers
unsafe impl ByteValued for SparseMmapHeader {}

/// Error encountered while walking a region's capability list.
#[derive(Debug, Error)]
enum CapabilityError {
    #[error("offset {0} does not advance")]
    NotAdvancing(usize),
    #[error("offset {offset} is outside the {len} bytes of capability data")]
    Outside { offset: usize, len: usize },
    #[error("capability at offset {offset} is truncated")]
    Truncated {
        offset: usize,
        #[source]
        source: std::io::Error,
    },
    #[error("sparse mmap capability at offset {offset} claims {count} areas, which do not fit")]
    AreaCount {
        offset: usize,
        count: usize,
        #[source]
        source: std::io::Error,
    },
}

/// One reply as the client received it.
struct Reply {
    header: Header,
    /// Every byte after the header.
    payload: Vec<u8>,
    fd: Option<File>,
}

impl Client {
    pub fn new(path: &Path) -> Result<Client, Error> {
        let stream = UnixStream::connect(path).map_err(Error::Connect)?;

        let mut client = Client {
            next_message_id: Wrapping(0),
            stream,
            num_irqs: 0,
            resettable: false,
            regions: Vec::new(),
            strict_replies: false,
        };

        client.negotiate_version()?;

        client.regions = client.get_regions()?;

        Ok(client)
    }

    /// With `strict` set, every method returns [`Error::Reply`] (which
    /// carries the server's errno) when the server answers with an error
    /// reply. Without it (the default, as in earlier versions) the error is
    /// logged and the method returns `Ok`, leaving any output untouched.
    pub fn set_strict_replies(&mut self, strict: bool) {
        self.strict_replies = strict;
    }

    fn next_id(&mut self) -> u16 {
        let id = self.next_message_id.0;
        self.next_message_id += Wrapping(1);
        id
    }

    /// Receives one reply: the header with at most one file descriptor,
    /// then a payload of the size the header gives, bounded by
    /// [`MAX_MESSAGE_SIZE`]. `Ok(None)` is an error reply the caller is to
    /// ignore (see [`Client::set_strict_replies`]).
    fn recv_reply(&mut self, command: Command) -> Result<Option<Reply>, Error> {
        let mut header = Header::default();
        let (bytes, fd) = self
            .stream
            .recv_with_fd(header.as_mut_slice())
            .map_err(Error::ReceiveWithFd)?;
        if bytes == 0 {
            return Err(Error::StreamRead(std::io::ErrorKind::UnexpectedEof.into()));
        }
        if bytes < size_of::<Header>() {
            self.stream
                .read_exact(&mut header.as_mut_slice()[bytes..])
                .map_err(Error::StreamRead)?;
        }
        debug!("Reply: {header:?}");
        let size = header.message_size as usize;
        if size < size_of::<Header>() {
            return Err(Error::MessageTooShort {
                command: header.command,
                size: header.message_size,
            });
        }
        if size > MAX_MESSAGE_SIZE {
            return Err(Error::ReplyTooLong(header.message_size));
        }
        let mut payload = vec![0u8; size - size_of::<Header>()];
        self.stream
            .read_exact(&mut payload)
            .map_err(Error::StreamRead)?;
        if header.is_error() {
            let error = Error::Reply {
                command,
                errno: header.error,
            };
            if self.strict_replies {
                return Err(error);
            }
            warn!("{error}");
            return Ok(None);
        }
        Ok(Some(Reply {
            header,
            payload,
            fd,
        }))
    }

    fn negotiate_version(&mut self) -> Result<(), Error> {
        let caps = CapabilitiesData::default();

        let version_data = serde_json::to_string(&caps).map_err(Error::SerializeCapabilites)?;

        let version = Version {
            header: Header {
                message_id: self.next_id(),
                command: Command::Version as u16,
                flags: HeaderFlags::Command as u32,
                message_size: (size_of::<Version>() + version_data.len() + 1) as u32,
                ..Default::default()
            },
            major: 0,
            minor: 1,
        };
        debug!("Command: {version:?}");

        let mut message = Vec::with_capacity(version.header.message_size as usize);
        message.extend_from_slice(version.as_slice());
        message.extend_from_slice(version_data.as_bytes());
        message.push(0);
        self.stream
            .write_all(&message)
            .map_err(Error::StreamWrite)?;

        debug!(
            "Sent client version information: major = {} minor = {} capabilities = {:?}",
            version.major, version.minor, caps.capabilities
        );

        // Version negotiation is never optional.
        let strict = std::mem::replace(&mut self.strict_replies, true);
        let reply = self.recv_reply(Command::Version);
        self.strict_replies = strict;
        let Some(reply) = reply? else {
            return Err(Error::InvalidInput);
        };
        let (server_version, data) = parse_message::<Version>(reply.header, &reply.payload)?;
        let server_caps = parse_capabilities(data)?;

        debug!(
            "Received server version information: major = {} minor = {} capabilities = {:?}",
            server_version.major, server_version.minor, server_caps.capabilities
        );

        Ok(())
    }

    pub fn dma_map(
        &mut self,
        offset: u64,
        address: u64,
        size: u64,
        fd: RawFd,
    ) -> Result<(), Error> {
        self.dma_map_with(DmaMapFlags::READ_WRITE, offset, address, size, Some(fd))
    }

    /// DMA_MAP with the given flags, and with or without a file descriptor.
    pub fn dma_map_with(
        &mut self,
        flags: DmaMapFlags,
        offset: u64,
        address: u64,
        size: u64,
        fd: Option<RawFd>,
    ) -> Result<(), Error> {
        let dma_map = DmaMap {
            header: Header {
                message_id: self.next_id(),
                command: Command::DmaMap as u16,
                flags: HeaderFlags::Command as u32,
                message_size: size_of::<DmaMap>() as u32,
                ..Default::default()
            },
            argsz: (size_of::<DmaMap>() - size_of::<Header>()) as u32,
            flags: flags.bits(),
            offset,
            address,
            size,
        };
        debug!("Command: {dma_map:?}");
        let fds: &[RawFd] = match &fd {
            Some(fd) => std::slice::from_ref(fd),
            None => &[],
        };
        self.stream
            .send_with_fds(&[dma_map.as_slice()], fds)
            .map_err(Error::SendWithFd)?;

        self.recv_reply(Command::DmaMap)?;
        Ok(())
    }

    pub fn dma_unmap(&mut self, address: u64, size: u64) -> Result<(), Error> {
        let dma_unmap = DmaUnmap {
            header: Header {
                message_id: self.next_id(),
                command: Command::DmaUnmap as u16,
                flags: HeaderFlags::Command as u32,
                message_size: size_of::<DmaUnmap>() as u32,
                ..Default::default()
            },
            argsz: (size_of::<DmaUnmap>() - size_of::<Header>()) as u32,
            flags: 0,
            address,
            size,
        };
        debug!("Command: {dma_unmap:?}");
        self.stream
            .write_all(dma_unmap.as_slice())
            .map_err(Error::StreamWrite)?;

        self.recv_reply(Command::DmaUnmap)?;
        Ok(())
    }

    pub fn reset(&mut self) -> Result<(), Error> {
        let reset = DeviceReset {
            header: Header {
                message_id: self.next_id(),
                command: Command::DeviceReset as u16,
                flags: HeaderFlags::Command as u32,
                message_size: size_of::<DeviceReset>() as u32,
                ..Default::default()
            },
        };
        debug!("Command: {reset:?}");
        self.stream
            .write_all(reset.as_slice())
            .map_err(Error::StreamWrite)?;

        self.recv_reply(Command::DeviceReset)?;
        Ok(())
    }

    fn get_regions(&mut self) -> Result<Vec<Region>, Error> {
        let get_info = DeviceGetInfo {
            header: Header {
                message_id: self.next_id(),
                command: Command::DeviceGetInfo as u16,
                flags: HeaderFlags::Command as u32,
                message_size: size_of::<DeviceGetInfo>() as u32,
                ..Default::default()
            },
            argsz: size_of::<DeviceGetInfo>() as u32,
            ..Default::default()
        };
        debug!("Command: {get_info:?}");

        self.stream
            .write_all(get_info.as_slice())
            .map_err(Error::StreamWrite)?;

        let Some(reply) = self.recv_reply(Command::DeviceGetInfo)? else {
            return Err(Error::InvalidInput);
        };
        let (reply, _) = parse_message::<DeviceGetInfo>(reply.header, &reply.payload)?;
        debug!("Reply: {reply:?}");
        self.num_irqs = reply.num_irqs;

        if reply.flags & VFIO_DEVICE_FLAGS_PCI != VFIO_DEVICE_FLAGS_PCI {
            return Err(Error::NotPciDevice);
        }

        self.resettable = reply.flags & VFIO_DEVICE_FLAGS_RESET != VFIO_DEVICE_FLAGS_RESET;

        let num_regions = reply.num_regions;
        let mut regions = Vec::new();
        for index in 0..num_regions {
            let (region_info, fd, sparse_areas) = self.get_region_info(index)?;
            regions.push(Region {
                flags: region_info.flags,
                index: region_info.index,
                size: region_info.size,
                file_offset: fd.map(|fd| FileOffset::new(fd, region_info.offset)),
                sparse_areas,
            });
        }

        Ok(regions)
    }

    /// One DEVICE_GET_REGION_INFO round trip with room for `argsz` bytes.
    fn region_info_request(
        &mut self,
        index: u32,
        argsz: u32,
    ) -> Result<(DeviceGetRegionInfo, Vec<u8>, Option<File>), Error> {
        let get_region_info = DeviceGetRegionInfo {
            header: Header {
                message_id: self.next_id(),
                command: Command::DeviceGetRegionInfo as u16,
                flags: HeaderFlags::Command as u32,
                message_size: std::mem::size_of::<DeviceGetRegionInfo>() as u32,
                ..Default::default()
            },
            region_info: vfio_region_info {
                argsz,
                index,
                ..Default::default()
            },
        };
        debug!("Command: {get_region_info:?}");

        self.stream
            .write_all(get_region_info.as_slice())
            .map_err(Error::StreamWrite)?;

        let Some(reply) = self.recv_reply(Command::DeviceGetRegionInfo)? else {
            return Err(Error::InvalidInput);
        };
        let (info, rest) = parse_message::<DeviceGetRegionInfo>(reply.header, &reply.payload)?;
        debug!("Reply: {info:?}");
        Ok((info, rest.to_vec(), reply.fd))
    }

    fn get_region_info(
        &mut self,
        index: u32,
    ) -> Result<
        (
            vfio_region_info,
            Option<File>,
            Vec<vfio_region_sparse_mmap_area>,
        ),
        Error,
    > {
        // Retrieve the region info without capability
        let (reply, _, fd) =
            self.region_info_request(index, size_of::<vfio_region_info>() as u32)?;

        // Retrieve the region info again with capabilities if needed
        if reply.region_info.argsz > size_of::<vfio_region_info>() as u32 {
            let (reply, cap_data, fd) = self.region_info_request(index, reply.region_info.argsz)?;

            let cap_size = (reply.region_info.argsz as usize)
                .checked_sub(size_of::<vfio_region_info>())
                .ok_or(Error::InvalidInput)?;
            if cap_size != cap_data.len() {
                warn!(
                    "Region {index}: argsz announces {cap_size} bytes of capabilities, the reply holds {}",
                    cap_data.len()
                );
                return Err(Error::InvalidInput);
            }

            let sparse_areas = Self::parse_region_caps(&cap_data, &reply.region_info)
                .inspect_err(|error| warn!("Region {index}: {error}"))
                .map_err(|_| Error::InvalidInput)?;

            Ok((reply.region_info, fd, sparse_areas))
        } else {
            Ok((reply.region_info, fd, Vec::new()))
        }
    }

    /// Collects the mmap-able areas of every sparse mmap capability in the
    /// list that follows `vfio_region_info` in a `DEVICE_GET_REGION_INFO`
    /// reply.
    ///
    /// Offsets in the list are relative to the start of the
    /// `vfio_region_info` structure, which `cap_data` does not include.
    fn parse_region_caps(
        cap_data: &[u8],
        region_info: &vfio_region_info,
    ) -> Result<Vec<vfio_region_sparse_mmap_area>, CapabilityError> {
        let mut sparse_areas = Vec::new();
        let mut next = region_info.cap_offset as usize;
        let mut previous = 0;

        while next != 0 {
            let offset = next;
            if next <= previous {
                return Err(CapabilityError::NotAdvancing(offset));
            }
            previous = next;

            let mut capability = next
                .checked_sub(size_of::<vfio_region_info>())
                .and_then(|from| cap_data.get(from..))
                .ok_or(CapabilityError::Outside {
                    offset,
                    len: cap_data.len(),
                })?;

            let header = CapabilityHeader::read_exact_from(&mut capability)
                .map_err(|source| CapabilityError::Truncated { offset, source })?;
            next = header.next as usize;

            if u32::from(header.id) != VFIO_REGION_INFO_CAP_SPARSE_MMAP {
                warn!(
                    "Ignoring unsupported vfio region capability (id = '{}')",
                    header.id
                );
                continue;
            }

            let sparse = SparseMmapHeader::read_exact_from(&mut capability)
                .map_err(|source| CapabilityError::Truncated { offset, source })?;
            let count = sparse.nr_areas as usize;

            for _ in 0..count {
                sparse_areas.push(vfio_region_sparse_mmap_area {
                    offset: u64::read_exact_from(&mut capability).map_err(|source| {
                        CapabilityError::AreaCount {
                            offset,
                            count,
                            source,
                        }
                    })?,
                    size: u64::read_exact_from(&mut capability).map_err(|source| {
                        CapabilityError::AreaCount {
                            offset,
                            count,
                            source,
                        }
                    })?,
                });
            }
        }

        Ok(sparse_areas)
    }

    pub fn region_read(&mut self, region: u32, offset: u64, data: &mut [u8]) -> Result<(), Error> {
        let count = u32::try_from(data.len())
            .ok()
            .filter(|&c| c <= MAX_DATA_XFER_SIZE)
            .ok_or(Error::TransferTooLarge(u32::MAX))?;
        let region_read = RegionAccess {
            header: Header {
                message_id: self.next_id(),
                command: Command::RegionRead as u16,
                flags: HeaderFlags::Command as u32,
                message_size: size_of::<RegionAccess>() as u32,
                ..Default::default()
            },
            offset,
            count,
            region,
        };
        debug!("Command: {region_read:?}");
        self.stream
            .write_all(region_read.as_slice())
            .map_err(Error::StreamWrite)?;

        let Some(reply) = self.recv_reply(Command::RegionRead)? else {
            return Ok(());
        };
        let (reply, reply_data) = parse_message::<RegionAccess>(reply.header, &reply.payload)?;
        debug!("Reply: {reply:?}");
        if reply_data.len() != data.len() {
            return Err(Error::Truncated {
                command: Command::RegionRead,
                size: size_of::<RegionAccess>() + reply_data.len(),
                need: size_of::<RegionAccess>() + data.len(),
            });
        }
        data.copy_from_slice(reply_data);
        Ok(())
    }

    pub fn region_write(&mut self, region: u32, offset: u64, data: &[u8]) -> Result<(), Error> {
        let count = u32::try_from(data.len())
            .ok()
            .filter(|&c| c <= MAX_DATA_XFER_SIZE)
            .ok_or(Error::TransferTooLarge(u32::MAX))?;
        let region_write = RegionAccess {
            header: Header {
                message_id: self.next_id(),
                command: Command::RegionWrite as u16,
                flags: HeaderFlags::Command as u32,
                message_size: size_of::<RegionAccess>() as u32 + count,
                ..Default::default()
            },
            offset,
            count,
            region,
        };
        debug!("Command: {region_write:?}");

        let mut message = Vec::with_capacity(region_write.header.message_size as usize);
        message.extend_from_slice(region_write.as_slice());
        message.extend_from_slice(data);
        self.stream
            .write_all(&message)
            .map_err(Error::StreamWrite)?;

        self.recv_reply(Command::RegionWrite)?;
        Ok(())
    }

    pub fn get_irq_info(&mut self, index: u32) -> Result<IrqInfo, Error> {
        let get_irq_info = GetIrqInfo {
            header: Header {
                message_id: self.next_id(),
                command: Command::GetIrqInfo as u16,
                flags: HeaderFlags::Command as u32,
                message_size: size_of::<GetIrqInfo>() as u32,
                ..Default::default()
            },
            argsz: (size_of::<GetIrqInfo>() - size_of::<Header>()) as u32,
            flags: 0,
            index,
            count: 0,
        };
        debug!("Command: {get_irq_info:?}");

        self.stream
            .write_all(get_irq_info.as_slice())
            .map_err(Error::StreamWrite)?;

        let reply = match self.recv_reply(Command::GetIrqInfo)? {
            Some(reply) => parse_message::<GetIrqInfo>(reply.header, &reply.payload)?.0,
            None => GetIrqInfo::default(),
        };
        debug!("Reply: {reply:?}");

        Ok(IrqInfo {
            index: reply.index,
            flags: reply.flags,
            count: reply.count,
        })
    }

    pub fn set_irqs(
        &mut self,
        index: u32,
        flags: u32,
        start: u32,
        count: u32,
        fds: &[RawFd],
    ) -> Result<(), Error> {
        let set_irqs = SetIrqs {
            header: Header {
                message_id: self.next_id(),
                command: Command::SetIrqs as u16,
                flags: HeaderFlags::Command as u32,
                message_size: size_of::<SetIrqs>() as u32,
                ..Default::default()
            },
            argsz: (size_of::<SetIrqs>() - size_of::<Header>()) as u32,
            flags,
            start,
            index,
            count,
        };
        debug!("Command: {set_irqs:?}");

        self.stream
            .send_with_fds(&[set_irqs.as_slice()], fds)
            .map_err(Error::SendWithFd)?;

        self.recv_reply(Command::SetIrqs)?;
        Ok(())
    }

    pub fn region(&self, region_index: u32) -> Option<&Region> {
        self.regions
            .iter()
            .find(|&region| region.index == region_index)
    }

    pub fn resettable(&self) -> bool {
        self.resettable
    }

    pub fn shutdown(&self) -> Result<(), Error> {
        self.stream
            .shutdown(std::net::Shutdown::Both)
            .map_err(Error::StreamShutdown)
    }
}

pub trait ServerBackend {
    fn region_read(
        &mut self,
        _region: u32,
        _offset: u64,
        _data: &mut [u8],
    ) -> Result<(), std::io::Error>;
    fn region_write(
        &mut self,
        _region: u32,
        _offset: u64,
        _data: &[u8],
    ) -> Result<(), std::io::Error>;
    fn dma_map(
        &mut self,
        _flags: DmaMapFlags,
        _offset: u64,
        _address: u64,
        _size: u64,
        _fd: Option<File>,
    ) -> Result<(), std::io::Error>;
    fn dma_unmap(
        &mut self,
        _flags: DmaUnmapFlags,
        _address: u64,
        _size: u64,
    ) -> Result<(), std::io::Error>;
    fn reset(&mut self) -> Result<(), std::io::Error>;
    fn set_irqs(
        &mut self,
        _index: u32,
        _flags: u32,
        _start: u32,
        _count: u32,
        _fds: Vec<File>,
    ) -> Result<(), std::io::Error>;

    /// Called for every message the server refuses, malformed ones and
    /// those a backend method failed alike, just before the error reply is
    /// sent (and, for a message that ends the connection, before the
    /// connection is dropped). Lets a device count refusals.
    fn message_refused(&mut self, _error: &Error) {}
}

#[derive(Clone, Copy)]
pub struct SparseArea {
    pub area: vfio_region_sparse_mmap_area,
}

#[derive(Clone)]
pub struct ServerRegion {
    pub region_info: vfio_region_info,
    pub sparse_areas: Vec<SparseArea>,
    pub mmap_fd: Option<RawFd>,
}

pub struct Server {
    listener: UnixListener,
    path: Option<PathBuf>,
    resettable: bool,
    irqs: Vec<IrqInfo>,
    regions: Vec<ServerRegion>,
}

impl Server {
    pub fn new(
        path: &Path,
        resettable: bool,
        irqs: Vec<IrqInfo>,
        regions: Vec<ServerRegion>,
    ) -> Result<Server, Error> {
        if path.exists() {
            return Err(Error::SocketPathExists);
        }

        let listener = UnixListener::bind(path).map_err(Error::SocketBind)?;

        Ok(Server {
            listener,
            path: Some(path.to_path_buf()),
            resettable,
            irqs,
            regions,
        })
    }

    pub fn from_owned_fd(
        fd: OwnedFd,
        resettable: bool,
        irqs: Vec<IrqInfo>,
        regions: Vec<ServerRegion>,
    ) -> Server {
        let listener = UnixListener::from(fd);

        Server {
            listener,
            path: None,
            resettable,
            irqs,
            regions,
        }
    }

    /// Handles one complete message: `payload` holds every byte after the
    /// header (already length-checked by [`Server::run`]), `fds` every file
    /// descriptor that came with it. Descriptors the command does not take
    /// are refused; all of them are closed when `fds` is dropped.
    fn handle_command(
        &self,
        backend: &mut dyn ServerBackend,
        stream: &mut UnixStream,
        header: Header,
        payload: &[u8],
        fds: Vec<File>,
    ) -> Result<(), Error> {
        let command = Command::n(header.command).ok_or(Error::UnknownCommand(header.command))?;
        if header.flags & HEADER_TYPE_MASK != HeaderFlags::Command as u32 {
            return Err(Error::NotACommand {
                command,
                flags: header.flags,
            });
        }
        let max_fds = match command {
            Command::DmaMap => 1,
            // The exact count is checked below, once the message is parsed.
            Command::SetIrqs => MAX_FDS,
            _ => 0,
        };
        if fds.len() > max_fds {
            return Err(Error::UnexpectedFds {
                command,
                count: fds.len(),
            });
        }
        match command {
            Command::Unknown
            | Command::GetRegionIoFds
            | Command::DmaRead
            | Command::DmaWrite
            | Command::UserDirtyPages => {
                return Err(Error::UnsupportedCommand(command));
            }
            Command::Version => {
                if header.no_reply() {
                    return Err(Error::UnexpectedNoReply(Command::Version));
                }

                // TODO: Make version/capabilities configurable
                let (client_version, data) = parse_message::<Version>(header, payload)?;
                let client_capabilities = parse_capabilities(data)?;

                info!(
                    "Received client version: major = {} minor = {} capabilities = {:?}",
                    client_version.major, client_version.minor, client_capabilities.capabilities,
                );

                let server_capabilities = CapabilitiesData::default();
                let server_version_data = serde_json::to_string(&server_capabilities)
                    .map_err(Error::SerializeCapabilites)?;
                let server_version = Version {
                    header: Header {
                        message_id: client_version.header.message_id,
                        command: Command::Version as u16,
                        flags: HeaderFlags::Reply as u32,
                        message_size: (size_of::<Version>() + server_version_data.len() + 1) as u32,
                        ..Default::default()
                    },
                    major: 0,
                    minor: 0,
                };

                let mut reply = Vec::with_capacity(server_version.header.message_size as usize);
                reply.extend_from_slice(server_version.as_slice());
                reply.extend_from_slice(server_version_data.as_bytes());
                reply.push(0);
                stream.write_all(&reply).map_err(Error::StreamWrite)?;

                info!(
                    "Sent server version: major = {} minor = {} capabilities = {:?}",
                    server_version.major, server_version.minor, server_capabilities.capabilities
                );
            }
            Command::DmaMap => {
                let (cmd, _) = parse_message::<DmaMap>(header, payload)?;

                let mut fds = fds;
                backend
                    .dma_map(
                        DmaMapFlags::from_bits_truncate(cmd.flags),
                        cmd.offset,
                        cmd.address,
                        cmd.size,
                        fds.pop(),
                    )
                    .map_err(Error::Backend)?;

                if header.no_reply() {
                    return Ok(());
                }

                let reply = Header {
                    message_id: cmd.header.message_id,
                    command: Command::DmaMap as u16,
                    flags: HeaderFlags::Reply as u32,
                    message_size: size_of::<Header>() as u32,
                    ..Default::default()
                };
                stream
                    .write_all(reply.as_slice())
                    .map_err(Error::StreamWrite)?;
            }
            Command::DmaUnmap => {
                let (cmd, _) = parse_message::<DmaUnmap>(header, payload)?;
                let flags = DmaUnmapFlags::from_bits_truncate(cmd.flags);

                // The dirty page bitmap this asks for is not implemented;
                // the reply would lack the bitmap the client waits for.
                if flags.contains(DmaUnmapFlags::GET_DIRTY_PAGE_INFO) {
                    return Err(Error::UnsupportedFeature);
                }

                backend
                    .dma_unmap(flags, cmd.address, cmd.size)
                    .map_err(Error::Backend)?;

                if header.no_reply() {
                    return Ok(());
                }

                let reply = DmaUnmap {
                    header: Header {
                        message_id: cmd.header.message_id,
                        command: Command::DmaUnmap as u16,
                        flags: HeaderFlags::Reply as u32,
                        message_size: size_of::<DmaUnmap>() as u32,
                        ..Default::default()
                    },
                    argsz: cmd.argsz,
                    flags: cmd.flags,
                    address: cmd.address,
                    size: cmd.size,
                };
                stream
                    .write_all(reply.as_slice())
                    .map_err(Error::StreamWrite)?;
            }
            Command::DeviceGetInfo => {
                if header.no_reply() {
                    return Err(Error::UnexpectedNoReply(Command::DeviceGetInfo));
                }

                let (cmd, _) = parse_message::<DeviceGetInfo>(header, payload)?;

                let reply = DeviceGetInfo {
                    header: Header {
                        message_id: cmd.header.message_id,
                        command: Command::DeviceGetInfo as u16,
                        flags: HeaderFlags::Reply as u32,
                        message_size: size_of::<DeviceGetInfo>() as u32,
                        ..Default::default()
                    },
                    argsz: size_of::<DeviceGetInfo>() as u32 - size_of::<Header>() as u32,
                    // TODO: Consider non-PCI devices
                    flags: VFIO_DEVICE_FLAGS_PCI
                        | if self.resettable {
                            VFIO_DEVICE_FLAGS_RESET
                        } else {
                            0
                        },
                    num_regions: self.regions.len() as u32,
                    num_irqs: self.irqs.len() as u32,
                };
                stream
                    .write_all(reply.as_slice())
                    .map_err(Error::StreamWrite)?;
            }
            Command::DeviceGetRegionInfo => {
                if header.no_reply() {
                    return Err(Error::UnexpectedNoReply(Command::DeviceGetRegionInfo));
                }

                let (cmd, _) = parse_message::<DeviceGetRegionInfo>(header, payload)?;

                let server_region = self
                    .regions
                    .get(cmd.region_info.index as usize)
                    .ok_or(Error::InvalidInput)?;
                let mut region_info = server_region.region_info;
                let sparse_areas = &server_region.sparse_areas;

                let mut cap_data: Vec<u8> = Vec::new();
                if !sparse_areas.is_empty() {
                    // The structures the client reads the list back through,
                    // in the order it reads them.
                    let header = CapabilityHeader {
                        id: VFIO_REGION_INFO_CAP_SPARSE_MMAP as u16,
                        version: 1,
                        next: 0,
                    };
                    cap_data.extend_from_slice(header.as_slice());

                    let sparse = SparseMmapHeader {
                        nr_areas: sparse_areas.len() as u32,
                        reserved: 0,
                    };
                    cap_data.extend_from_slice(sparse.as_slice());

                    for sparse_area in sparse_areas {
                        cap_data.extend_from_slice(sparse_area.area.offset.as_slice());
                        cap_data.extend_from_slice(sparse_area.area.size.as_slice());
                    }
                }

                let send_cap_data = if !cap_data.is_empty() {
                    let full_argsz = (size_of::<vfio_region_info>() + cap_data.len()) as u32;
                    region_info.flags |= VFIO_REGION_INFO_FLAG_CAPS;
                    region_info.argsz = full_argsz;
                    region_info.cap_offset = size_of::<vfio_region_info>() as u32;
                    cmd.region_info.argsz >= full_argsz
                } else {
                    false
                };

                let message_size = if send_cap_data {
                    (size_of::<DeviceGetRegionInfo>() + cap_data.len()) as u32
                } else {
                    size_of::<DeviceGetRegionInfo>() as u32
                };

                let reply = DeviceGetRegionInfo {
                    header: Header {
                        message_id: cmd.header.message_id,
                        command: Command::DeviceGetRegionInfo as u16,
                        flags: HeaderFlags::Reply as u32,
                        message_size,
                        ..Default::default()
                    },
                    region_info,
                };

                if send_cap_data {
                    let reply_bytes = reply.as_slice();
                    let mut buf = Vec::with_capacity(reply_bytes.len() + cap_data.len());
                    buf.extend_from_slice(reply_bytes);
                    buf.extend_from_slice(&cap_data);

                    if let Some(fd) = server_region.mmap_fd {
                        stream
                            .send_with_fds(&[&buf[..]], &[fd])
                            .map_err(Error::SendWithFd)?;
                    } else {
                        stream.write_all(&buf).map_err(Error::StreamWrite)?;
                    }
                } else {
                    stream
                        .write_all(reply.as_slice())
                        .map_err(Error::StreamWrite)?;
                }
            }
            Command::GetIrqInfo => {
                if header.no_reply() {
                    return Err(Error::UnexpectedNoReply(Command::GetIrqInfo));
                }

                let (cmd, _) = parse_message::<GetIrqInfo>(header, payload)?;

                let irq = self
                    .irqs
                    .get(cmd.index as usize)
                    .ok_or(Error::InvalidInput)?;

                let reply = GetIrqInfo {
                    header: Header {
                        message_id: cmd.header.message_id,
                        command: Command::GetIrqInfo as u16,
                        flags: HeaderFlags::Reply as u32,
                        message_size: size_of::<GetIrqInfo>() as u32,
                        ..Default::default()
                    },
                    argsz: (size_of::<GetIrqInfo>() - size_of::<Header>()) as u32,
                    index: irq.index,
                    flags: irq.flags,
                    count: irq.count,
                };
                stream
                    .write_all(reply.as_slice())
                    .map_err(Error::StreamWrite)?;
            }
            Command::SetIrqs => {
                let (cmd, _) = parse_message::<SetIrqs>(header, payload)?;

                if cmd.index as usize >= self.irqs.len() {
                    return Err(Error::InvalidInput);
                }

                if cmd.flags & VFIO_IRQ_SET_DATA_BOOL > 0 {
                    return Err(Error::UnsupportedFeature);
                }

                // Eventfds come only with DATA_EVENTFD, and at most one per
                // vector of the range.
                let takes_fds = cmd.flags & VFIO_IRQ_SET_DATA_EVENTFD != 0;
                if (!takes_fds && !fds.is_empty()) || fds.len() > cmd.count as usize {
                    return Err(Error::UnexpectedFds {
                        command,
                        count: fds.len(),
                    });
                }

                backend
                    .set_irqs(cmd.index, cmd.flags, cmd.start, cmd.count, fds)
                    .map_err(Error::Backend)?;

                if header.no_reply() {
                    return Ok(());
                }

                let reply = Header {
                    message_id: cmd.header.message_id,
                    command: Command::SetIrqs as u16,
                    flags: HeaderFlags::Reply as u32,
                    message_size: size_of::<Header>() as u32,
                    ..Default::default()
                };
                stream
                    .write_all(reply.as_slice())
                    .map_err(Error::StreamWrite)?;
            }
            Command::RegionRead => {
                if header.no_reply() {
                    return Err(Error::UnexpectedNoReply(Command::RegionRead));
                }

                let (cmd, _) = parse_message::<RegionAccess>(header, payload)?;

                let (region, offset, count) = (cmd.region, cmd.offset, cmd.count);

                if region as usize >= self.regions.len() {
                    return Err(Error::InvalidInput);
                }
                // The data is allocated here: bound it by what was advertised.
                if count > MAX_DATA_XFER_SIZE {
                    return Err(Error::TransferTooLarge(count));
                }

                let mut data = vec![0u8; count as usize];
                backend
                    .region_read(region, offset, &mut data)
                    .map_err(Error::Backend)?;

                let reply = RegionAccess {
                    header: Header {
                        message_id: cmd.header.message_id,
                        command: Command::RegionRead as u16,
                        flags: HeaderFlags::Reply as u32,
                        message_size: size_of::<RegionAccess>() as u32 + count,
                        ..Default::default()
                    },
                    region,
                    offset,
                    count,
                };
                let mut buf = Vec::with_capacity(size_of::<RegionAccess>() + data.len());
                buf.extend_from_slice(reply.as_slice());
                buf.extend_from_slice(&data);
                stream.write_all(&buf).map_err(Error::StreamWrite)?;
            }
            Command::RegionWrite => {
                let (cmd, data) = parse_message::<RegionAccess>(header, payload)?;

                let (region, offset, count) = (cmd.region, cmd.offset, cmd.count);

                if region as usize >= self.regions.len() {
                    return Err(Error::InvalidInput);
                }
                // The data is what follows the fixed part, and exactly that.
                if data.len() != count as usize {
                    return Err(Error::Truncated {
                        command,
                        size: header.message_size as usize,
                        need: size_of::<RegionAccess>().saturating_add(count as usize),
                    });
                }

                backend
                    .region_write(region, offset, data)
                    .map_err(Error::Backend)?;

                if header.no_reply() {
                    return Ok(());
                }

                let reply = RegionAccess {
                    header: Header {
                        message_id: cmd.header.message_id,
                        command: Command::RegionWrite as u16,
                        flags: HeaderFlags::Reply as u32,
                        message_size: size_of::<RegionAccess>() as u32,
                        ..Default::default()
                    },
                    region,
                    offset,
                    count,
                };
                stream
                    .write_all(reply.as_slice())
                    .map_err(Error::StreamWrite)?;
            }
            Command::DeviceReset => {
                backend.reset().map_err(Error::Backend)?;

                if header.no_reply() {
                    return Ok(());
                }

                let reply = Header {
                    message_id: header.message_id,
                    command: Command::DeviceReset as u16,
                    flags: HeaderFlags::Reply as u32,
                    message_size: size_of::<Header>() as u32,
                    ..Default::default()
                };
                stream
                    .write_all(reply.as_slice())
                    .map_err(Error::StreamWrite)?;
            }
        }

        Ok(())
    }

    /// Receives one message: the header with any file descriptors, then,
    /// once its size is known to be sane, the payload. Returns `None` when
    /// the client closed the connection.
    fn receive_message(stream: &mut UnixStream) -> Result<Option<Message>, Error> {
        let mut header = Header::default();

        // The maximum number of FDs that can be sent is 16 so that is
        // also the maximum that can be received.
        let mut raw_fds = [0; MAX_FDS];
        let (bytes, fds_received) = loop {
            let buf = header.as_mut_slice();
            let mut iovecs = [iovec {
                iov_base: buf.as_mut_ptr() as *mut c_void,
                iov_len: buf.len(),
            }];
            // SAFETY: the iovec covers exactly the bytes of `header`, which
            // any byte pattern is valid for, and `raw_fds` has room for
            // MAX_FDS descriptors.
            match unsafe { stream.recv_with_fds(&mut iovecs, &mut raw_fds) } {
                Ok(r) => break r,
                Err(e) if e.errno() == libc::EINTR => continue,
                Err(e) => return Err(Error::ReceiveWithFd(e)),
            }
        };
        // Own the descriptors first, so that every return below closes them.
        let fds: Vec<File> = raw_fds[..fds_received.min(MAX_FDS)]
            .iter()
            // SAFETY: recv_with_fds returned these descriptors to us; nothing
            // else owns them.
            .map(|fd| unsafe { File::from_raw_fd(*fd) })
            .collect();

        // Other end closed connection
        if bytes == 0 {
            return Ok(None);
        }
        // A stream socket may return the header in pieces.
        if bytes < size_of::<Header>() {
            stream
                .read_exact(&mut header.as_mut_slice()[bytes..])
                .map_err(Error::StreamRead)?;
        }

        let size = header.message_size as usize;
        if size < size_of::<Header>() {
            return Err(Error::MessageTooShort {
                command: header.command,
                size: header.message_size,
            });
        }
        if size > MAX_MESSAGE_SIZE {
            return Err(Error::MessageTooLong {
                command: header.command,
                size: header.message_size,
            });
        }
        let mut payload = vec![0u8; size - size_of::<Header>()];
        stream.read_exact(&mut payload).map_err(Error::StreamRead)?;
        Ok(Some(Message {
            header,
            payload,
            fds,
        }))
    }

    /// Accepts one connection and serves it until the client disconnects
    /// (`Ok`) or the connection can no longer be served (`Err`).
    ///
    /// A message that is malformed but complete gets an error reply with an
    /// errno, and the next message is served. A message whose size field
    /// cannot be trusted (below the header size or above
    /// [`MAX_MESSAGE_SIZE`]) gets an error reply and ends the connection,
    /// since the stream can no longer be split into messages. Every refusal
    /// is reported to [`ServerBackend::message_refused`].
    pub fn run(&self, backend: &mut dyn ServerBackend) -> Result<(), Error> {
        let (mut stream, _) = self.listener.accept().map_err(Error::SocketAccept)?;

        loop {
            let Message {
                header,
                payload,
                fds,
            } = match Self::receive_message(&mut stream) {
                Ok(Some(message)) => message,
                Ok(None) => {
                    info!("Connection closed");
                    return Ok(());
                }
                Err(e) => {
                    if e.is_refusal() {
                        error!("Dropping the connection: {e}");
                        backend.message_refused(&e);
                        // Best effort: the client may learn why.
                        let _ = stream.write_all(error_reply(&e, None).as_slice());
                        discard_pending(&mut stream);
                    }
                    return Err(e);
                }
            };

            if let Err(e) = self.handle_command(backend, &mut stream, header, &payload, fds) {
                if !e.is_refusal() {
                    // The stream itself failed: nobody to reply to.
                    return Err(e);
                }
                error!("Error handling command: {:?}: {e}", header.command);
                backend.message_refused(&e);
                stream
                    .write_all(error_reply(&e, Some(&header)).as_slice())
                    .map_err(Error::StreamWrite)?;
            }
        }
    }
}

/// One message as the server received it.
struct Message {
    header: Header,
    /// Every byte after the header.
    payload: Vec<u8>,
    /// Every file descriptor that came with it.
    fds: Vec<File>,
}

/// Before a connection is dropped: reads (and discards) what the client has
/// already sent, up to a bound and without waiting. A Unix stream socket
/// closed with unread data resets the connection, and on recent kernels the
/// client's read then fails with ECONNRESET before it gets the error reply.
fn discard_pending(stream: &mut UnixStream) {
    let _ = stream.shutdown(std::net::Shutdown::Write);
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let mut buf = [0u8; 4096];
    for _ in 0..16 {
        match stream.read(&mut buf) {
            Ok(n) if n > 0 => continue,
            _ => break,
        }
    }
}

/// The error reply to the message `header` (if it could be read) that `e`
/// refused.
fn error_reply(e: &Error, header: Option<&Header>) -> Header {
    Header {
        message_id: header.map_or(0, |h| h.message_id),
        command: header.map_or(0, |h| h.command),
        flags: HeaderFlags::Error as u32 | HeaderFlags::Reply as u32,
        message_size: size_of::<Header>() as u32,
        error: e.errno() as u32,
    }
}

/// Splits a message into the fixed-size `T` (whose first field is the
/// [`Header`]) and whatever follows it.
fn parse_message<T: ByteValued + Default>(
    header: Header,
    payload: &[u8],
) -> Result<(T, &[u8]), Error> {
    let fixed = size_of::<T>() - size_of::<Header>();
    if payload.len() < fixed {
        return Err(Error::Truncated {
            command: Command::n(header.command).unwrap_or_default(),
            size: size_of::<Header>() + payload.len(),
            need: size_of::<T>(),
        });
    }
    let (body, rest) = payload.split_at(fixed);
    let mut message = T::default();
    let bytes = message.as_mut_slice();
    bytes[..size_of::<Header>()].copy_from_slice(header.as_slice());
    bytes[size_of::<Header>()..].copy_from_slice(body);
    Ok((message, rest))
}

/// Parses the optional capabilities of a VERSION message: a NUL-terminated
/// JSON object in UTF-8. An empty trailer means default capabilities.
fn parse_capabilities(data: &[u8]) -> Result<CapabilitiesData, Error> {
    if data.is_empty() {
        return Ok(CapabilitiesData::default());
    }
    let json = CStr::from_bytes_with_nul(data)
        .map_err(|_| Error::InvalidVersionData("not a single NUL-terminated string"))?
        .to_str()
        .map_err(|_| Error::InvalidVersionData("not UTF-8"))?;
    serde_json::from_str(json).map_err(Error::DeserializeCapabilites)
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            if path.exists() {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    mod parse {
        use super::*;

        fn header(command: Command, payload_len: usize) -> Header {
            Header {
                message_id: 7,
                command: command as u16,
                message_size: (size_of::<Header>() + payload_len) as u32,
                ..Default::default()
            }
        }

        #[test]
        fn capabilities_empty_are_defaults() {
            let caps = parse_capabilities(&[]).unwrap();
            assert_eq!(caps.capabilities.max_msg_fds, 1);
        }

        #[test]
        fn capabilities_need_one_trailing_nul() {
            for data in [&b"{}"[..], b"{\0}\0", b"\0{}"] {
                assert!(
                    matches!(parse_capabilities(data), Err(Error::InvalidVersionData(_))),
                    "{data:?}"
                );
            }
        }

        #[test]
        fn capabilities_must_be_utf8_json() {
            assert!(matches!(
                parse_capabilities(b"\xff\xfe\0"),
                Err(Error::InvalidVersionData(_))
            ));
            assert!(matches!(
                parse_capabilities(b"{\"capabilities\":\0"),
                Err(Error::DeserializeCapabilites(_))
            ));
            let caps = parse_capabilities(b"{\"capabilities\":{\"max_msg_fds\":8}}\0").unwrap();
            assert_eq!(caps.capabilities.max_msg_fds, 8);
        }

        #[test]
        fn short_messages_are_truncated_not_panics() {
            for len in 0..size_of::<DmaMap>() - size_of::<Header>() {
                let payload = vec![0u8; len];
                let e =
                    parse_message::<DmaMap>(header(Command::DmaMap, len), &payload).unwrap_err();
                assert!(matches!(e, Error::Truncated { .. }), "{len}: {e}");
                assert_eq!(e.errno(), libc::EINVAL);
            }
        }

        #[test]
        fn fields_and_trailer_are_split() {
            let mut payload = Vec::new();
            payload.extend_from_slice(&0x10u64.to_ne_bytes()); // offset
            payload.extend_from_slice(&2u32.to_ne_bytes()); // region
            payload.extend_from_slice(&3u32.to_ne_bytes()); // count
            payload.extend_from_slice(b"abc");
            let (cmd, rest) = parse_message::<RegionAccess>(
                header(Command::RegionWrite, payload.len()),
                &payload,
            )
            .unwrap();
            assert_eq!((cmd.offset, cmd.region, cmd.count), (0x10, 2, 3));
            assert_eq!(cmd.header.message_id, 7);
            assert_eq!(rest, b"abc");
        }

        #[test]
        fn every_error_has_a_nonzero_errno() {
            let io = || std::io::Error::other("x");
            let errors = [
                Error::UnknownCommand(99),
                Error::UnsupportedCommand(Command::DmaRead),
                Error::UnsupportedFeature,
                Error::InvalidInput,
                Error::UnexpectedNoReply(Command::Version),
                Error::MessageTooShort {
                    command: 1,
                    size: 3,
                },
                Error::MessageTooLong {
                    command: 1,
                    size: u32::MAX,
                },
                Error::TransferTooLarge(u32::MAX),
                Error::InvalidVersionData("x"),
                Error::UnexpectedFds {
                    command: Command::Version,
                    count: 1,
                },
                Error::NotACommand {
                    command: Command::Version,
                    flags: 1,
                },
                Error::Reply {
                    command: Command::DmaMap,
                    errno: 0,
                },
                Error::Backend(io()),
                Error::Backend(std::io::ErrorKind::AlreadyExists.into()),
                Error::Backend(std::io::Error::from_raw_os_error(libc::EFAULT)),
                Error::StreamRead(io()),
            ];
            for e in &errors {
                assert_ne!(e.errno(), 0, "{e}");
            }
            assert_eq!(errors[2].errno(), libc::ENOTSUP);
            assert_eq!(errors[6].errno(), libc::E2BIG);
            assert_eq!(errors[9].errno(), libc::EBADF);
            assert_eq!(errors[13].errno(), libc::EEXIST);
            assert_eq!(errors[14].errno(), libc::EFAULT);
        }
    }

    /// The message loop, against a backend that records what it is asked.
    mod server {
        use super::*;
        use std::os::fd::AsRawFd;
        use std::sync::atomic::{AtomicU32, Ordering};
        use std::sync::mpsc;

        #[derive(Default)]
        struct Recorder {
            refused: Vec<i32>,
            writes: Vec<(u32, u64, Vec<u8>)>,
        }

        impl ServerBackend for Recorder {
            fn region_read(&mut self, _: u32, _: u64, data: &mut [u8]) -> std::io::Result<()> {
                data.fill(0xab);
                Ok(())
            }
            fn region_write(
                &mut self,
                region: u32,
                offset: u64,
                data: &[u8],
            ) -> std::io::Result<()> {
                self.writes.push((region, offset, data.to_vec()));
                Ok(())
            }
            fn dma_map(
                &mut self,
                _: DmaMapFlags,
                _: u64,
                _: u64,
                _: u64,
                _: Option<File>,
            ) -> std::io::Result<()> {
                Err(std::io::ErrorKind::AlreadyExists.into())
            }
            fn dma_unmap(&mut self, _: DmaUnmapFlags, _: u64, _: u64) -> std::io::Result<()> {
                Ok(())
            }
            fn reset(&mut self) -> std::io::Result<()> {
                Ok(())
            }
            fn set_irqs(
                &mut self,
                _: u32,
                _: u32,
                _: u32,
                _: u32,
                _: Vec<File>,
            ) -> std::io::Result<()> {
                Ok(())
            }
            fn message_refused(&mut self, error: &Error) {
                self.refused.push(error.errno());
            }
        }

        type Outcome = (Result<(), Error>, Recorder);

        /// A server on a fresh socket serving one connection in a thread.
        fn serve() -> (UnixStream, mpsc::Receiver<Outcome>) {
            static N: AtomicU32 = AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "vfio-user-test-{}-{}.sock",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ));
            let _ = std::fs::remove_file(&path);
            let regions = vec![
                ServerRegion {
                    region_info: vfio_region_info {
                        argsz: size_of::<vfio_region_info>() as u32,
                        size: 0x1000,
                        ..Default::default()
                    },
                    sparse_areas: Vec::new(),
                    mmap_fd: None,
                };
                2
            ];
            let server = Server::new(&path, true, Vec::new(), regions).unwrap();
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let mut backend = Recorder::default();
                let r = server.run(&mut backend);
                let _ = tx.send((r, backend));
            });
            let stream = UnixStream::connect(&path).unwrap();
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            (stream, rx)
        }

        fn raw(command: u16, size: u32, payload: &[u8]) -> Vec<u8> {
            let h = Header {
                message_id: 0x55,
                command,
                message_size: size,
                ..Default::default()
            };
            let mut m = h.as_slice().to_vec();
            m.extend_from_slice(payload);
            m
        }

        fn version(data: &[u8]) -> Vec<u8> {
            let mut p = vec![0, 0, 1, 0];
            p.extend_from_slice(data);
            raw(
                Command::Version as u16,
                (size_of::<Header>() + p.len()) as u32,
                &p,
            )
        }

        fn reply(s: &mut UnixStream) -> (Header, Vec<u8>) {
            let mut h = Header::default();
            s.read_exact(h.as_mut_slice()).unwrap();
            let mut rest = vec![0u8; h.message_size as usize - size_of::<Header>()];
            s.read_exact(&mut rest).unwrap();
            (h, rest)
        }

        fn expect_error(s: &mut UnixStream, errno: i32) {
            let (h, _) = reply(s);
            assert!(h.is_error(), "{h:?}");
            assert_eq!(h.error, errno as u32, "{h:?}");
        }

        fn expect_good_version(s: &mut UnixStream) {
            s.write_all(&version(b"{\"capabilities\":{}}\0")).unwrap();
            let (h, data) = reply(s);
            assert!(
                !h.is_error() && h.command == Command::Version as u16,
                "{h:?}"
            );
            assert_eq!(data.last(), Some(&0));
        }

        fn end(s: UnixStream, rx: mpsc::Receiver<Outcome>) -> Outcome {
            drop(s);
            rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap()
        }

        #[test]
        fn size_below_the_header_ends_the_connection() {
            let (mut s, rx) = serve();
            s.write_all(&raw(Command::Version as u16, 3, &[])).unwrap();
            expect_error(&mut s, libc::EINVAL);
            let mut b = [0u8; 1];
            assert_eq!(s.read(&mut b).unwrap(), 0, "connection closed");
            let (r, backend) = end(s, rx);
            assert!(matches!(r, Err(Error::MessageTooShort { size: 3, .. })));
            assert_eq!(backend.refused, [libc::EINVAL]);
        }

        #[test]
        fn size_near_4g_is_refused_before_allocating() {
            let (mut s, rx) = serve();
            s.write_all(&raw(Command::RegionWrite as u16, u32::MAX - 7, &[0; 16]))
                .unwrap();
            expect_error(&mut s, libc::E2BIG);
            let (r, backend) = end(s, rx);
            assert!(matches!(r, Err(Error::MessageTooLong { .. })));
            assert_eq!(backend.refused, [libc::E2BIG]);
        }

        #[test]
        fn version_without_nul_is_refused_and_the_next_is_served() {
            let (mut s, rx) = serve();
            s.write_all(&version(b"{\"capabilities\":{}}")).unwrap();
            expect_error(&mut s, libc::EINVAL);
            s.write_all(&version(b"not json\0")).unwrap();
            expect_error(&mut s, libc::EINVAL);
            expect_good_version(&mut s);
            let (r, backend) = end(s, rx);
            assert!(r.is_ok());
            assert_eq!(backend.refused, [libc::EINVAL, libc::EINVAL]);
        }

        #[test]
        fn truncated_fixed_part_is_refused_and_the_next_is_served() {
            let (mut s, rx) = serve();
            // DMA_MAP with 8 of its 32 bytes, DEVICE_GET_REGION_INFO with none.
            s.write_all(&raw(Command::DmaMap as u16, 24, &[0; 8]))
                .unwrap();
            expect_error(&mut s, libc::EINVAL);
            s.write_all(&raw(Command::DeviceGetRegionInfo as u16, 16, &[]))
                .unwrap();
            expect_error(&mut s, libc::EINVAL);
            expect_good_version(&mut s);
            assert!(end(s, rx).0.is_ok());
        }

        #[test]
        fn unknown_and_unsupported_commands_get_enotsup() {
            let (mut s, rx) = serve();
            s.write_all(&raw(999, 16, &[])).unwrap();
            expect_error(&mut s, libc::ENOTSUP);
            s.write_all(&raw(Command::DmaRead as u16, 20, &[0; 4]))
                .unwrap();
            expect_error(&mut s, libc::ENOTSUP);
            expect_good_version(&mut s);
            assert!(end(s, rx).0.is_ok());
        }

        #[test]
        fn backend_errors_carry_their_errno() {
            let (mut s, rx) = serve();
            s.write_all(&raw(Command::DmaMap as u16, 48, &[0; 32]))
                .unwrap();
            expect_error(&mut s, libc::EEXIST);
            assert_eq!(end(s, rx).1.refused, [libc::EEXIST]);
        }

        #[test]
        fn region_write_count_must_match_the_data() {
            let (mut s, rx) = serve();
            let mut p = Vec::new();
            p.extend_from_slice(&0u64.to_ne_bytes());
            p.extend_from_slice(&0u32.to_ne_bytes());
            p.extend_from_slice(&100u32.to_ne_bytes()); // count, but 4 bytes follow
            p.extend_from_slice(&[1, 2, 3, 4]);
            s.write_all(&raw(Command::RegionWrite as u16, 16 + p.len() as u32, &p))
                .unwrap();
            expect_error(&mut s, libc::EINVAL);
            // A region read larger than advertised is refused before allocating.
            let mut p = Vec::new();
            p.extend_from_slice(&0u64.to_ne_bytes());
            p.extend_from_slice(&0u32.to_ne_bytes());
            p.extend_from_slice(&u32::MAX.to_ne_bytes());
            s.write_all(&raw(Command::RegionRead as u16, 32, &p))
                .unwrap();
            expect_error(&mut s, libc::E2BIG);
            // A good write still lands.
            let mut p = Vec::new();
            p.extend_from_slice(&8u64.to_ne_bytes());
            p.extend_from_slice(&1u32.to_ne_bytes());
            p.extend_from_slice(&2u32.to_ne_bytes());
            p.extend_from_slice(&[9, 9]);
            s.write_all(&raw(Command::RegionWrite as u16, 34, &p))
                .unwrap();
            let (h, _) = reply(&mut s);
            assert!(!h.is_error());
            let (r, backend) = end(s, rx);
            assert!(r.is_ok());
            assert_eq!(backend.writes, [(1, 8, vec![9, 9])]);
        }

        #[test]
        fn unexpected_fds_are_refused_and_closed() {
            let (mut s, rx) = serve();
            let mut fds = [0; 2];
            // SAFETY: pipe2 fills the two-element array.
            assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
            // SAFETY: both descriptors are fresh and owned here.
            let (r, w) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
            let msg = raw(Command::DeviceGetInfo as u16, 32, &[0; 16]);
            s.send_with_fds(&[&msg[..]], &[r.as_raw_fd()]).unwrap();
            drop(r);
            expect_error(&mut s, libc::EBADF);
            // The server closed its copy of the read end: nobody can read.
            let mut w = w;
            let e = w.write(b"x").unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EPIPE));
            expect_good_version(&mut s);
            assert!(end(s, rx).0.is_ok());
        }

        #[test]
        fn a_reply_sent_to_the_server_is_refused() {
            let (mut s, rx) = serve();
            let mut m = version(b"\0");
            m[8] = HeaderFlags::Reply as u8;
            s.write_all(&m).unwrap();
            expect_error(&mut s, libc::EINVAL);
            assert!(end(s, rx).0.is_ok());
        }

        #[test]
        fn header_in_pieces_is_reassembled() {
            let (mut s, rx) = serve();
            let m = version(b"{\"capabilities\":{}}\0");
            s.write_all(&m[..5]).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(20));
            s.write_all(&m[5..]).unwrap();
            let (h, _) = reply(&mut s);
            assert!(!h.is_error());
            assert!(end(s, rx).0.is_ok());
        }
    }

    mod capability {
        use super::*;

        /// Offsets in a capability list are relative to the region info
        /// structure.
        const FIRST_CAPABILITY: u32 = size_of::<vfio_region_info>() as u32;

        fn sparse_cap(next: u32, nr_areas: u32, areas: &[(u64, u64)]) -> Vec<u8> {
            let header = CapabilityHeader {
                id: VFIO_REGION_INFO_CAP_SPARSE_MMAP as u16,
                version: 1,
                next,
            };
            let sparse = SparseMmapHeader {
                nr_areas,
                reserved: 0,
            };

            let mut data = Vec::new();
            data.extend_from_slice(header.as_slice());
            data.extend_from_slice(sparse.as_slice());
            for (offset, size) in areas {
                data.extend_from_slice(offset.as_slice());
                data.extend_from_slice(size.as_slice());
            }
            data
        }

        fn area(offset: u64, size: u64) -> vfio_region_sparse_mmap_area {
            vfio_region_sparse_mmap_area { offset, size }
        }

        fn walk(
            cap_offset: u32,
            cap_data: &[u8],
        ) -> Result<Vec<vfio_region_sparse_mmap_area>, CapabilityError> {
            let region_info = vfio_region_info {
                argsz: (size_of::<vfio_region_info>() + cap_data.len()) as u32,
                flags: VFIO_REGION_INFO_FLAG_CAPS,
                cap_offset,
                ..Default::default()
            };
            Client::parse_region_caps(cap_data, &region_info)
        }

        #[test]
        fn absent_list_collects_none() {
            assert_eq!(walk(0, &[]).ok(), Some(vec![]));
        }

        #[test]
        fn unsupported_id_is_skipped() {
            let mut cap_data = sparse_cap(0, 1, &[(0x0, 0x1000)]);
            cap_data[0..2].copy_from_slice(&0xffffu16.to_ne_bytes());

            assert_eq!(walk(FIRST_CAPABILITY, &cap_data).ok(), Some(vec![]));
        }

        #[test]
        fn offset_inside_region_info_fails() {
            let cap_data = sparse_cap(0, 1, &[(0x0, 0x1000)]);

            assert!(matches!(
                walk(FIRST_CAPABILITY - 4, &cap_data),
                Err(CapabilityError::Outside { .. })
            ));
        }

        #[test]
        fn offset_past_list_fails() {
            let cap_data = sparse_cap(0, 1, &[(0x0, 0x1000)]);
            let past = FIRST_CAPABILITY + cap_data.len() as u32;

            assert!(matches!(
                walk(past, &cap_data),
                Err(CapabilityError::Truncated { .. })
            ));
        }

        #[test]
        fn next_pointing_at_itself_fails() {
            let cap_data = sparse_cap(FIRST_CAPABILITY, 1, &[(0x0, 0x1000)]);

            assert!(matches!(
                walk(FIRST_CAPABILITY, &cap_data),
                Err(CapabilityError::NotAdvancing(_))
            ));
        }

        mod sparse {
            use super::*;

            #[test]
            fn areas_keep_wire_order() {
                let cap_data = sparse_cap(0, 2, &[(0x0, 0x1000), (0x2000, 0x3000)]);

                assert_eq!(
                    walk(FIRST_CAPABILITY, &cap_data).ok(),
                    Some(vec![area(0x0, 0x1000), area(0x2000, 0x3000)])
                );
            }

            #[test]
            fn count_of_zero_collects_none() {
                let cap_data = sparse_cap(0, 0, &[]);

                assert_eq!(walk(FIRST_CAPABILITY, &cap_data).ok(), Some(vec![]));
            }

            #[test]
            fn count_beyond_list_fails() {
                let cap_data = sparse_cap(0, u32::MAX, &[(0x0, 0x1000)]);

                assert!(matches!(
                    walk(FIRST_CAPABILITY, &cap_data),
                    Err(CapabilityError::AreaCount { .. })
                ));
            }

            #[test]
            fn truncated_areas_fail() {
                let cap_data = sparse_cap(0, 2, &[(0x0, 0x1000)]);

                assert!(matches!(
                    walk(FIRST_CAPABILITY, &cap_data),
                    Err(CapabilityError::AreaCount { .. })
                ));
            }
        }
    }
}
