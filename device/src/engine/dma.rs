//! The DMA engine's gather step: turns a buffer (physical, or virtual with a
//! PDBR) into host slices of mapped guest memory, translating page by page.
//!
//! Pure logic over vm-memory and the IOTLB: no I/O.

use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryRegion, MemoryRegionAddress};

use crate::counters::{Counters, Stat};
use crate::engine::iotlb::Iotlb;
use crate::engine::mmu::{self, Fault, PagingMode, Translation};
use crate::engine::offload::Slice;

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

#[cfg(test)]
mod tests {
    //! Gathers across region boundaries and page sizes; small enough for
    //! Miri (ci/miri.sh), which checks the host pointers they hand out.
    use super::*;
    use vm_memory::{Bytes, GuestMemoryMmap};

    /// Two adjacent regions, [0, 64 KiB) and [64 KiB, 128 KiB), and a hole.
    fn mem() -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[
            (GuestAddress(0), 0x10000),
            (GuestAddress(0x10000), 0x10000),
        ])
        .unwrap()
    }

    fn bytes(out: &[Slice]) -> Vec<u8> {
        out.iter()
            // SAFETY: the slices point into `mem()`'s mappings, alive for the test.
            .flat_map(|s| unsafe { std::slice::from_raw_parts(s.ptr, s.len) }.to_vec())
            .collect()
    }

    #[test]
    fn phys_gather_splits_at_region_boundaries() {
        let m = mem();
        let data: Vec<u8> = (0..0x200u32).map(|i| (i * 13) as u8).collect();
        m.write_slice(&data, GuestAddress(0xff00)).unwrap();
        let mut out = Vec::new();
        phys_slices(&m, 0xff00, 0x200, &mut out).unwrap();
        assert_eq!(
            out.iter().map(|s| s.len).collect::<Vec<_>>(),
            [0x100, 0x100]
        );
        assert_eq!(bytes(&out), data);
        for (gpa, len) in [(0x1ff00, 0x200), (0x30000, 1), (u64::MAX, 2)] {
            let err = phys_slices(&m, gpa, len, &mut Vec::new()).unwrap_err();
            assert_eq!(err, DmaError::OutOfRam { gpa, len });
        }
    }

    #[test]
    fn virt_gather_walks_each_page() {
        let m = mem();
        // 4-level tables at 0x1000..0x4fff mapping VA 0x40_0000.. to PA 0xf000
        // and then 0x10000 (two pages, the second in the other region).
        let va = 0x40_0000u64 + 0xf80;
        for (gpa, e) in [
            (0x1000u64, 0x2003u64),
            (0x2000, 0x3003),
            (0x3000 + 2 * 8, 0x4003),
            (0x4000, 0xf003),
            (0x4008, 0x1_0003),
        ] {
            m.write_obj(e, GuestAddress(gpa)).unwrap();
        }
        let data: Vec<u8> = (0..0x100u32).map(|i| i as u8 ^ 0x5a).collect();
        m.write_slice(&data[..0x80], GuestAddress(0xff80)).unwrap();
        m.write_slice(&data[0x80..], GuestAddress(0x10000)).unwrap();
        let counters = Counters::default();
        let mut iotlb = Iotlb::default();
        let mut t = Translator {
            mem: &m,
            iotlb: &mut iotlb,
            counters: &counters,
        };
        for _ in 0..2 {
            let mut out = Vec::new();
            t.virt_slices(0x1000, PagingMode::Level4, va, 0x100, &mut out)
                .unwrap();
            assert_eq!(bytes(&out), data);
        }
        assert_eq!(
            counters.get(Stat::iotlb_hits),
            2,
            "second pass from the IOTLB"
        );
        let e = t
            .virt_slices(0x1000, PagingMode::Level4, va + 0x2000, 1, &mut Vec::new())
            .unwrap_err();
        assert!(matches!(e, DmaError::Fault(f) if f.reason == crate::abi::FaultReason::NotPresent));
    }
}
