//! Guest RAM as the VMM maps it through vfio-user DMA_MAP/DMA_UNMAP.
//!
//! The message thread swaps in a new region collection; the data path takes a
//! snapshot per batch (`GuestMemoryAtomic`), so an unmap never pulls memory
//! from under a frame being sent.
//!
//! Every DMA_MAP is validated before anything is mapped (see
//! [`GuestRam::map_with`]); a refusal is a [`MemError`] that names the
//! operation and the range, is logged on one line, and converts into the
//! `io::Error` (and so the errno) the VMM gets back.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use log::warn;
use vfio_user::DmaMapFlags;
use vm_memory::{
    mmap::MmapRegion, FileOffset, GuestAddress, GuestAddressSpace, GuestMemoryAtomic,
    GuestMemoryMmap, GuestRegionMmap,
};

pub type Mem = GuestMemoryMmap;

/// The most DMA mappings, with or without an fd, a VMM may hold at once.
///
/// QEMU maps a handful (RAM below and above 4 GiB, ROMs, a few holes). Each
/// fd-backed mapping keeps an fd and an mmap alive, so the bound stays well
/// below the usual limit of 1024 open files. A DMA_MAP beyond it is refused
/// with ENOSPC, as Linux VFIO does.
pub const MAX_DMA_MAPS: usize = 256;

/// DMA_MAP addresses, sizes and file offsets must be multiples of this.
pub const DMA_PAGE_SIZE: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum MemError {
    #[error("DMA_MAP of {addr:#x}+{size:#x}: zero or overflowing size")]
    MapRange { addr: u64, size: u64 },
    #[error("DMA_MAP of {addr:#x}+{size:#x} at file offset {offset:#x}: not aligned to {DMA_PAGE_SIZE:#x}")]
    MapUnaligned { addr: u64, size: u64, offset: u64 },
    #[error("DMA_MAP of {addr:#x}+{size:#x}: flags {flags:#x} are not READ or READ|WRITE")]
    MapFlags { addr: u64, size: u64, flags: u32 },
    #[error("DMA_MAP of {addr:#x}+{size:#x}: {MAX_DMA_MAPS} mappings already exist")]
    MapTooMany { addr: u64, size: u64 },
    #[error(
        "DMA_MAP of {addr:#x}+{size:#x}: overlaps the mapping {other_addr:#x}+{other_size:#x}"
    )]
    MapOverlap {
        addr: u64,
        size: u64,
        other_addr: u64,
        other_size: u64,
    },
    #[error("DMA_MAP of {addr:#x}+{size:#x}: fstat of the fd failed: {source}")]
    MapFstat {
        addr: u64,
        size: u64,
        source: io::Error,
    },
    #[error("DMA_MAP of {addr:#x}+{size:#x}: the fd is not a regular file (a memfd or a file)")]
    MapNotRegular { addr: u64, size: u64 },
    #[error("DMA_MAP of {addr:#x}+{size:#x} at file offset {offset:#x}: beyond the end of the {file_size:#x}-byte file")]
    MapBeyondFile {
        addr: u64,
        size: u64,
        offset: u64,
        file_size: u64,
    },
    #[error("DMA_MAP of {addr:#x}+{size:#x}: flags ask for WRITE but the fd {why}")]
    MapNotWritable {
        addr: u64,
        size: u64,
        why: &'static str,
    },
    #[error("DMA_MAP of {addr:#x}+{size:#x}: mmap of the fd failed: {source}")]
    MapMmap {
        addr: u64,
        size: u64,
        source: vm_memory::mmap::MmapRegionError,
    },
    #[error("DMA_UNMAP of {addr:#x}+{size:#x}: no such mapping")]
    Unmap { addr: u64, size: u64 },
}

impl MemError {
    /// The kind of `io::Error` this becomes, which the vfio-user layer turns
    /// into the reply's errno: EINVAL for bad arguments, EEXIST for an
    /// overlap, ENOSPC beyond [`MAX_DMA_MAPS`], EACCES for a permission
    /// mismatch, ENOENT for an unknown unmap.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            MemError::MapOverlap { .. } => io::ErrorKind::AlreadyExists,
            MemError::MapTooMany { .. } => io::ErrorKind::StorageFull,
            MemError::MapNotWritable { .. } => io::ErrorKind::PermissionDenied,
            MemError::Unmap { .. } => io::ErrorKind::NotFound,
            MemError::MapFstat { source, .. } => source.kind(),
            _ => io::ErrorKind::InvalidInput,
        }
    }
}

impl From<MemError> for io::Error {
    fn from(e: MemError) -> Self {
        io::Error::new(e.kind(), e)
    }
}

/// What the device can do with a mapped range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reach {
    /// Mapped from an fd, readable and writable: part of the guest memory.
    Ram,
    /// Mapped without an fd (the device cannot reach it) or read-only (the
    /// device writes descriptors and RX buffers, so it does not use it).
    None,
}

#[derive(Clone, Copy, Debug)]
struct Mapping {
    addr: u64,
    size: u64,
    reach: Reach,
}

impl Mapping {
    fn overlaps(&self, addr: u64, size: u64) -> bool {
        // Both ranges are non-empty and do not wrap (checked on insertion).
        addr < self.addr + self.size && self.addr < addr + size
    }
}

/// One DMA_MAP request, as [`GuestRam::map_with`] checks and then inserts it.
#[derive(Clone, Copy, Debug)]
struct MapRequest {
    addr: u64,
    size: u64,
    offset: u64,
    flags: DmaMapFlags,
}

/// The guest RAM the device can reach.
pub struct GuestRam {
    mem: GuestMemoryAtomic<Mem>,
    /// Every mapping the VMM holds, reachable or not.
    maps: Vec<Mapping>,
}

impl Default for GuestRam {
    fn default() -> Self {
        Self::new()
    }
}

impl GuestRam {
    pub fn new() -> Self {
        Self {
            mem: GuestMemoryAtomic::new(GuestMemoryMmap::new()),
            maps: Vec::new(),
        }
    }

    /// A snapshot of the current mappings; stays valid while held.
    pub fn snapshot(&self) -> Arc<Mem> {
        self.mem.memory().into_inner()
    }

    /// [`GuestRam::map_with`] for a READ|WRITE mapping.
    pub fn map(
        &mut self,
        addr: u64,
        size: u64,
        offset: u64,
        file: Option<File>,
    ) -> Result<(), MemError> {
        self.map_with(addr, size, offset, DmaMapFlags::READ_WRITE, file)
    }

    /// Maps `size` bytes of `file` at `offset` as guest-physical `addr`, after
    /// checking, in this order:
    /// - the range is not empty and does not wrap;
    /// - `flags` are READ or READ|WRITE, nothing else;
    /// - `addr` and `size` (and `offset`, with a file) are page-aligned;
    /// - fewer than [`MAX_DMA_MAPS`] mappings exist;
    /// - the range overlaps no other mapping, with or without an fd;
    /// - the file is a regular file and `offset + size` lies within it (past
    ///   its end, the first access would kill the process with SIGBUS);
    /// - with WRITE, the file was opened for writing and is not write-sealed.
    ///
    /// Without a file, or READ only, the range is recorded but not reachable
    /// by the device (see [`GuestRam::in_fdless`]).
    pub fn map_with(
        &mut self,
        addr: u64,
        size: u64,
        offset: u64,
        flags: DmaMapFlags,
        file: Option<File>,
    ) -> Result<(), MemError> {
        let req = MapRequest {
            addr,
            size,
            offset,
            flags,
        };
        self.check_map(req, file.as_ref())
            .and_then(|()| self.insert(req, file))
            .inspect_err(|e| warn!("refused: {e}"))
    }

    fn check_map(&self, req: MapRequest, file: Option<&File>) -> Result<(), MemError> {
        let MapRequest {
            addr,
            size,
            offset,
            flags,
        } = req;
        if size == 0 || addr.checked_add(size).is_none() {
            return Err(MemError::MapRange { addr, size });
        }
        if flags != DmaMapFlags::READ && flags != DmaMapFlags::READ_WRITE {
            return Err(MemError::MapFlags {
                addr,
                size,
                flags: flags.bits(),
            });
        }
        let aligned = |v: u64| v.is_multiple_of(DMA_PAGE_SIZE);
        if !aligned(addr) || !aligned(size) || (file.is_some() && !aligned(offset)) {
            return Err(MemError::MapUnaligned { addr, size, offset });
        }
        if self.maps.len() >= MAX_DMA_MAPS {
            return Err(MemError::MapTooMany { addr, size });
        }
        if let Some(other) = self.maps.iter().find(|m| m.overlaps(addr, size)) {
            return Err(MemError::MapOverlap {
                addr,
                size,
                other_addr: other.addr,
                other_size: other.size,
            });
        }
        let Some(file) = file else {
            return Ok(());
        };
        let meta = file
            .metadata()
            .map_err(|source| MemError::MapFstat { addr, size, source })?;
        if !meta.file_type().is_file() {
            return Err(MemError::MapNotRegular { addr, size });
        }
        if offset.checked_add(size).is_none_or(|end| end > meta.len()) {
            return Err(MemError::MapBeyondFile {
                addr,
                size,
                offset,
                file_size: meta.len(),
            });
        }
        if flags.contains(DmaMapFlags::WRITE) {
            check_writable(file).map_err(|why| MemError::MapNotWritable { addr, size, why })?;
        }
        Ok(())
    }

    fn insert(&mut self, req: MapRequest, file: Option<File>) -> Result<(), MemError> {
        let MapRequest { addr, size, .. } = req;
        let file = match file {
            Some(file) if req.flags.contains(DmaMapFlags::WRITE) => Some(file),
            Some(_) => {
                log::info!("DMA_MAP {addr:#x}+{size:#x} is read-only: the device will not use it");
                None
            }
            None => None,
        };
        let Some(file) = file else {
            self.maps.push(Mapping {
                addr,
                size,
                reach: Reach::None,
            });
            return Ok(());
        };
        let region = MmapRegion::from_file(FileOffset::new(file, req.offset), size as usize)
            .map_err(|source| MemError::MapMmap { addr, size, source })?;
        let region = GuestRegionMmap::new(region, GuestAddress(addr))
            .ok_or(MemError::MapRange { addr, size })?;
        let guard = self.mem.lock().unwrap_or_else(|p| p.into_inner());
        let next = self
            .mem
            .memory()
            .insert_region(Arc::new(region))
            .map_err(|_| MemError::MapOverlap {
                addr,
                size,
                other_addr: addr,
                other_size: size,
            })?;
        guard.replace(next);
        self.maps.push(Mapping {
            addr,
            size,
            reach: Reach::Ram,
        });
        Ok(())
    }

    /// Removes the mapping of exactly `addr`+`size`.
    pub fn unmap(&mut self, addr: u64, size: u64) -> Result<(), MemError> {
        let i = self
            .maps
            .iter()
            .position(|m| (m.addr, m.size) == (addr, size))
            .ok_or(MemError::Unmap { addr, size })?;
        if self.maps[i].reach == Reach::Ram {
            let guard = self.mem.lock().unwrap_or_else(|p| p.into_inner());
            let (next, _) = self
                .mem
                .memory()
                .remove_region(GuestAddress(addr), size)
                .map_err(|_| MemError::Unmap { addr, size })?;
            guard.replace(next);
        }
        self.maps.swap_remove(i);
        Ok(())
    }

    /// Drops every mapping (for DMA_UNMAP with UNMAP_ALL, and when the VMM
    /// goes away). Snapshots taken before stay valid until released.
    pub fn clear(&mut self) {
        let guard = self.mem.lock().unwrap_or_else(|p| p.into_inner());
        guard.replace(GuestMemoryMmap::new());
        self.maps.clear();
    }

    /// A handle on the same mappings for a queue worker: it sees every later
    /// map, unmap and [`GuestRam::clear`] without taking any lock.
    pub fn handle(&self) -> GuestMemoryAtomic<Mem> {
        self.mem.clone()
    }

    /// The number of mappings the VMM holds, reachable or not.
    pub fn num_maps(&self) -> usize {
        self.maps.len()
    }

    /// True if `gpa` lies in a range mapped without an fd (or read-only).
    pub fn in_fdless(&self, gpa: u64) -> bool {
        self.maps
            .iter()
            .any(|m| m.reach == Reach::None && gpa >= m.addr && gpa - m.addr < m.size)
    }

    pub fn has_fd_backed_ram(&self) -> bool {
        self.maps.iter().any(|m| m.reach == Reach::Ram)
    }
}

/// Why a file cannot back a writable mapping, if it cannot.
fn check_writable(file: &File) -> Result<(), &'static str> {
    // SAFETY: F_GETFL only reads the flags of a descriptor we own.
    let fl = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
    if fl < 0 || fl & libc::O_ACCMODE == libc::O_RDONLY {
        return Err("is open read-only");
    }
    // SAFETY: F_GET_SEALS only reads the seals of a descriptor we own; it
    // fails with EINVAL on files that cannot be sealed, which have none.
    let seals = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GET_SEALS) };
    if seals > 0 && seals & (libc::F_SEAL_WRITE | libc::F_SEAL_FUTURE_WRITE) != 0 {
        return Err("is sealed against writes");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::FromRawFd;
    use vm_memory::Bytes;

    const MIB: u64 = 1 << 20;

    fn memfd(size: u64) -> File {
        // SAFETY: memfd_create with a valid C string; the File owns the fd.
        let fd =
            unsafe { libc::memfd_create(c"vmso-memory-test".as_ptr(), libc::MFD_ALLOW_SEALING) };
        assert!(fd >= 0, "memfd_create");
        // SAFETY: fd is a fresh descriptor nothing else owns.
        let f = unsafe { File::from_raw_fd(fd) };
        f.set_len(size).unwrap();
        f
    }

    fn rw() -> DmaMapFlags {
        DmaMapFlags::READ_WRITE
    }

    #[test]
    fn good_maps_are_reachable_and_unmap_exactly() {
        let mut ram = GuestRam::new();
        let f = memfd(4 * MIB);
        ram.map(0, 2 * MIB, 0, Some(f.try_clone().unwrap()))
            .unwrap();
        ram.map(2 * MIB, 2 * MIB, 2 * MIB, Some(f)).unwrap();
        ram.map_with(8 * MIB, MIB, 0, DmaMapFlags::READ, None)
            .unwrap();
        assert_eq!(ram.num_maps(), 3);
        assert!(ram.has_fd_backed_ram());
        assert!(ram.in_fdless(8 * MIB + 5) && !ram.in_fdless(5));
        ram.snapshot()
            .write_obj(0xabcd_u32, GuestAddress(4 * MIB - 4))
            .unwrap();
        assert!(matches!(ram.unmap(0, MIB), Err(MemError::Unmap { .. })));
        ram.unmap(2 * MIB, 2 * MIB).unwrap();
        assert!(ram
            .snapshot()
            .read_obj::<u32>(GuestAddress(3 * MIB))
            .is_err());
        ram.clear();
        assert_eq!(ram.num_maps(), 0);
        assert!(!ram.has_fd_backed_ram());
    }

    #[test]
    fn map_beyond_the_file_is_refused() {
        let mut ram = GuestRam::new();
        let e = ram.map(0, 2 * MIB, 0, Some(memfd(MIB))).unwrap_err();
        assert!(matches!(e, MemError::MapBeyondFile { file_size, .. } if file_size == MIB));
        let e = ram
            .map(0, MIB, u64::MAX - 4095, Some(memfd(MIB)))
            .unwrap_err();
        assert!(matches!(e, MemError::MapBeyondFile { .. }), "{e}");
        assert_eq!(io::Error::from(e).kind(), io::ErrorKind::InvalidInput);
        assert_eq!(ram.num_maps(), 0);
    }

    #[test]
    fn overlaps_are_refused_with_and_without_fd() {
        let mut ram = GuestRam::new();
        ram.map(0x10_0000, MIB, 0, None).unwrap();
        ram.map(0x40_0000, MIB, 0, Some(memfd(MIB))).unwrap();
        for (addr, size, fd) in [
            (0x10_0000, MIB, false),
            (0x1f_f000, 0x2000, true),
            (0x0, 0x20_0000, false),
            (0x4f_f000, 0x1000, false),
            (0x30_0000, 4 * MIB, true),
        ] {
            let f = fd.then(|| memfd(8 * MIB));
            let e = ram.map(addr, size, 0, f).unwrap_err();
            assert!(matches!(e, MemError::MapOverlap { .. }), "{addr:#x}: {e}");
            assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        }
        // Adjacent is fine.
        ram.map(0x20_0000, 0x20_0000, 0, None).unwrap();
        ram.map(0x50_0000, MIB, 0, Some(memfd(MIB))).unwrap();
    }

    #[test]
    fn unaligned_maps_are_refused() {
        let mut ram = GuestRam::new();
        for (addr, size, offset) in [(0x800, 0x1000, 0), (0, 0x1800, 0), (0, 0x1000, 0x10)] {
            let e = ram.map(addr, size, offset, Some(memfd(MIB))).unwrap_err();
            assert!(matches!(e, MemError::MapUnaligned { .. }), "{e}");
        }
        // Without an fd the offset means nothing.
        ram.map(0, 0x1000, 0x10, None).unwrap();
    }

    #[test]
    fn bad_flags_and_permissions_are_refused() {
        let mut ram = GuestRam::new();
        for flags in [0, 2, 4, 7] {
            let e = ram
                .map_with(0, MIB, 0, DmaMapFlags::from_bits_retain(flags), None)
                .unwrap_err();
            assert!(matches!(e, MemError::MapFlags { .. }), "{flags}: {e}");
        }
        let f = memfd(MIB);
        // SAFETY: F_ADD_SEALS on a memfd we own, created with sealing allowed.
        let rc = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_ADD_SEALS, libc::F_SEAL_WRITE) };
        assert_eq!(rc, 0);
        let e = ram.map_with(0, MIB, 0, rw(), Some(f)).unwrap_err();
        assert!(matches!(e, MemError::MapNotWritable { .. }), "{e}");
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        let path = std::env::temp_dir().join(format!("vmso-ro-{}", std::process::id()));
        std::fs::write(&path, vec![0u8; 4096]).unwrap();
        let ro = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let e = ram.map_with(0, 4096, 0, rw(), Some(ro)).unwrap_err();
        assert!(matches!(e, MemError::MapNotWritable { .. }), "{e}");
        // Read-only is accepted but not reachable.
        let f = memfd(MIB);
        ram.map_with(0, MIB, 0, DmaMapFlags::READ, Some(f)).unwrap();
        assert!(ram.in_fdless(0) && !ram.has_fd_backed_ram());
    }

    #[test]
    fn non_regular_fd_is_refused() {
        let mut ram = GuestRam::new();
        let ev = vmm_sys_util::eventfd::EventFd::new(0).unwrap();
        // SAFETY: dup gives a new descriptor that the File owns.
        let f = unsafe { File::from_raw_fd(libc::dup(ev.as_raw_fd())) };
        let e = ram.map(0, 0x1000, 0, Some(f)).unwrap_err();
        assert!(matches!(e, MemError::MapNotRegular { .. }), "{e}");
    }

    #[test]
    fn map_count_is_bounded() {
        let mut ram = GuestRam::new();
        for i in 0..MAX_DMA_MAPS as u64 {
            ram.map(i * 0x1000, 0x1000, 0, None).unwrap();
        }
        let e = ram.map(1 << 40, 0x1000, 0, None).unwrap_err();
        assert!(matches!(e, MemError::MapTooMany { .. }), "{e}");
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        ram.unmap(0, 0x1000).unwrap();
        ram.map(1 << 40, 0x1000, 0, None).unwrap();
    }

    #[test]
    fn zero_and_wrapping_sizes_are_refused() {
        let mut ram = GuestRam::new();
        assert!(matches!(
            ram.map(0, 0, 0, None),
            Err(MemError::MapRange { .. })
        ));
        assert!(matches!(
            ram.map(u64::MAX - 0xfff, 0x2000, 0, None),
            Err(MemError::MapRange { .. })
        ));
    }
}
