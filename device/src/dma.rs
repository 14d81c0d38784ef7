//! The DMA engine's gather step: turns a buffer (physical, or virtual with a
//! PDBR) into host slices of mapped guest memory, translating page by page.
//!
//! Pure logic over vm-memory and the IOTLB: no I/O.

use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryRegion, MemoryRegionAddress};

use crate::counters::{Counters, Stat};
use crate::iotlb::Iotlb;
use crate::mmu::{self, Fault, PagingMode, Translation};
use crate::offload::Slice;

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DmaError {
    #[error("physical range {gpa:#x}+{len:#x} is outside guest RAM")]
    OutOfRam { gpa: u64, len: u64 },
    #[error("translation failed: {0}")]
    Fault(Fault),
}

/// Appends the host slices of guest-physical `gpa..gpa+len` to `out`,
/// splitting at region boundaries.
pub fn phys_slices<M: GuestMemoryBackend>(
    mem: &M,
    gpa: u64,
    len: u64,
    out: &mut Vec<Slice>,
) -> Result<(), DmaError> {
    let err = DmaError::OutOfRam { gpa, len };
    gpa.checked_add(len).ok_or(err)?;
    let (mut at, mut left) = (gpa, len);
    while left > 0 {
        let region = mem.find_region(GuestAddress(at)).ok_or(err)?;
        let off = at - region.start_addr().0;
        let n = (region.len() - off).min(left);
        let ptr = region
            .get_host_address(MemoryRegionAddress(off))
            .map_err(|_| err)?;
        out.push(Slice {
            ptr,
            len: n as usize,
        });
        at += n;
        left -= n;
    }
    Ok(())
}

/// The translation context of one batch.
pub struct Translator<'a, M> {
    pub mem: &'a M,
    pub iotlb: &'a mut Iotlb,
    pub counters: &'a Counters,
}

impl<M: GuestMemoryBackend> Translator<'_, M> {
    /// Translates one address, through the IOTLB.
    pub fn translate(
        &mut self,
        pdbr: u64,
        mode: PagingMode,
        va: u64,
    ) -> Result<Translation, Fault> {
        self.counters.inc(Stat::va_translations);
        if let Some(t) = self.iotlb.lookup(pdbr, mode, va) {
            self.counters.inc(Stat::iotlb_hits);
            return Ok(t);
        }
        self.counters.inc(Stat::iotlb_misses);
        let t = mmu::walk(self.mem, pdbr, mode, va)?;
        self.iotlb.insert(pdbr, mode, va, t);
        Ok(t)
    }

    /// Appends the host slices of virtual `va..va+len` to `out`, one page
    /// (of whatever size the tables map) at a time.
    pub fn virt_slices(
        &mut self,
        pdbr: u64,
        mode: PagingMode,
        va: u64,
        len: u64,
        out: &mut Vec<Slice>,
    ) -> Result<(), DmaError> {
        if va.checked_add(len).is_none() {
            return Err(DmaError::Fault(Fault {
                va,
                pdbr,
                reason: crate::abi::FaultReason::NonCanonical,
            }));
        }
        let (mut at, mut left) = (va, len);
        while left > 0 {
            let t = self.translate(pdbr, mode, at).map_err(DmaError::Fault)?;
            // The piece runs to the end of the page the walk returned, so a
            // large page goes in one piece.
            let page_left = (1u64 << t.page_shift) - (at & ((1u64 << t.page_shift) - 1));
            let n = page_left.min(left);
            phys_slices(self.mem, t.gpa(at), n, out).map_err(|_| {
                DmaError::Fault(Fault {
                    va: at,
                    pdbr,
                    reason: crate::abi::FaultReason::PageOutOfRam,
                })
            })?;
            at += n;
            left -= n;
        }
        Ok(())
    }
}
