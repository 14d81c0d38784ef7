//! Guest RAM as the VMM maps it through vfio-user DMA_MAP/DMA_UNMAP.
//!
//! The message thread swaps in a new region collection; the data path takes a
//! snapshot per batch (`GuestMemoryAtomic`), so an unmap never pulls memory
//! from under a frame being sent.

use std::fs::File;
use std::sync::Arc;

use vm_memory::{
    mmap::MmapRegion, FileOffset, GuestAddress, GuestAddressSpace, GuestMemoryAtomic,
    GuestMemoryMmap, GuestRegionMmap,
};

pub type Mem = GuestMemoryMmap;

#[derive(Debug, thiserror::Error)]
pub enum MemError {
    #[error("DMA_MAP of {addr:#x}+{size:#x}: zero or overflowing size")]
    MapRange { addr: u64, size: u64 },
    #[error("DMA_MAP of {addr:#x}+{size:#x}: mmap of the fd failed: {source}")]
    MapMmap {
        addr: u64,
        size: u64,
        source: vm_memory::mmap::MmapRegionError,
    },
    #[error("DMA_MAP of {addr:#x}+{size:#x}: overlaps a mapped region")]
    MapOverlap { addr: u64, size: u64 },
    #[error("DMA_UNMAP of {addr:#x}+{size:#x}: no such mapping")]
    Unmap { addr: u64, size: u64 },
}

/// The guest RAM the device can reach.
pub struct GuestRam {
    mem: GuestMemoryAtomic<Mem>,
    /// Ranges the VMM mapped without an fd: the device cannot reach them.
    fdless: Vec<(u64, u64)>,
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
            fdless: Vec::new(),
        }
    }

    /// A snapshot of the current mappings; stays valid while held.
    pub fn snapshot(&self) -> Arc<Mem> {
        self.mem.memory().into_inner()
    }

    /// Maps `size` bytes of `file` at `offset` as guest-physical `addr`.
    /// Without a file the range is recorded as unreachable (see `fdless`).
    pub fn map(
        &mut self,
        addr: u64,
        size: u64,
        offset: u64,
        file: Option<File>,
    ) -> Result<(), MemError> {
        if size == 0 || addr.checked_add(size).is_none() {
            return Err(MemError::MapRange { addr, size });
        }
        let Some(file) = file else {
            self.fdless.push((addr, size));
            return Ok(());
        };
        let region = MmapRegion::from_file(FileOffset::new(file, offset), size as usize)
            .map_err(|source| MemError::MapMmap { addr, size, source })?;
        let region = GuestRegionMmap::new(region, GuestAddress(addr))
            .ok_or(MemError::MapRange { addr, size })?;
        let guard = self.mem.lock().expect("guest memory update lock");
        let next = self
            .mem
            .memory()
            .insert_region(Arc::new(region))
            .map_err(|_| MemError::MapOverlap { addr, size })?;
        guard.replace(next);
        Ok(())
    }

    pub fn unmap(&mut self, addr: u64, size: u64) -> Result<(), MemError> {
        if let Some(i) = self.fdless.iter().position(|&r| r == (addr, size)) {
            self.fdless.swap_remove(i);
            return Ok(());
        }
        let guard = self.mem.lock().expect("guest memory update lock");
        let (next, _) = self
            .mem
            .memory()
            .remove_region(GuestAddress(addr), size)
            .map_err(|_| MemError::Unmap { addr, size })?;
        guard.replace(next);
        Ok(())
    }

    /// True if `gpa` lies in a range mapped without an fd.
    pub fn in_fdless(&self, gpa: u64) -> bool {
        self.fdless.iter().any(|&(a, s)| gpa >= a && gpa - a < s)
    }

    pub fn has_fd_backed_ram(&self) -> bool {
        use vm_memory::GuestMemoryBackend;
        self.mem.memory().num_regions() > 0
    }
}

impl GuestRam {
    /// A handle on the same mappings for a queue worker: it sees every later
    /// map, unmap and [`GuestRam::clear`] without taking any lock.
    pub fn handle(&self) -> GuestMemoryAtomic<Mem> {
        self.mem.clone()
    }

    /// Drops every mapping (the VMM is gone).
    pub fn clear(&mut self) {
        self.fdless.clear();
        let guard = self.mem.lock().expect("guest memory update lock");
        guard.replace(GuestMemoryMmap::new());
    }
}
