//! The page walker: translates a guest virtual address by walking the guest's
//! own page tables from a PDBR, in every x86 paging mode the device offers.
//!
//! Pure logic: page-table entries are read through vm-memory, nothing else.
//! The walk is bounded by the number of levels of the mode (at most 5 reads),
//! so a self-referencing table can never make it loop.

use vm_memory::{ByteValued, Bytes, GuestAddress, GuestMemoryBackend};

use crate::abi::{FaultReason, MAXPHYADDR};

/// The paging mode named by the descriptor's CMD.PGMODE field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PagingMode {
    /// 32-bit two-level paging: 4 KiB pages and 4 MiB pages (PSE, PSE-36).
    Bits32,
    /// PAE: PDPT, directory, table; 4 KiB and 2 MiB pages.
    Pae,
    /// 4-level long mode: 4 KiB, 2 MiB and 1 GiB pages.
    Level4,
    /// 5-level long mode (LA57).
    Level5,
}

impl PagingMode {
    pub fn from_cmd_field(v: u16) -> Self {
        match v & 3 {
            0 => Self::Bits32,
            1 => Self::Pae,
            2 => Self::Level4,
            _ => Self::Level5,
        }
    }

    pub fn cmd_field(self) -> u16 {
        match self {
            Self::Bits32 => 0,
            Self::Pae => 1,
            Self::Level4 => 2,
            Self::Level5 => 3,
        }
    }
}

/// Why a walk failed, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("page walk of {va:#x} at pdbr {pdbr:#x} failed: {reason:?}")]
pub struct Fault {
    pub va: u64,
    pub pdbr: u64,
    pub reason: FaultReason,
}

/// A successful translation: the page that holds the address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// Guest-physical base of the page.
    pub page_base: u64,
    /// log2 of the page size: 12, 21, 22 or 30.
    pub page_shift: u32,
}

impl Translation {
    pub fn gpa(&self, va: u64) -> u64 {
        self.page_base | (va & ((1u64 << self.page_shift) - 1))
    }
}

const P: u64 = 1 << 0;
const PS: u64 = 1 << 7;
const ADDR_MASK: u64 = ((1u64 << MAXPHYADDR) - 1) & !0xfff;
/// Address bits of an entry between MAXPHYADDR and 51 are reserved.
const RSVD_HIGH: u64 = ((1u64 << 52) - 1) & !((1u64 << MAXPHYADDR) - 1);

fn bits(lo: u32, hi: u32) -> u64 {
    (((1u128 << (hi + 1)) - 1) as u64) & !((1u64 << lo) - 1)
}

struct Walker<'a, M> {
    mem: &'a M,
    va: u64,
    pdbr: u64,
}

impl<M: GuestMemoryBackend> Walker<'_, M> {
    fn fault(&self, reason: FaultReason) -> Fault {
        Fault {
            va: self.va,
            pdbr: self.pdbr,
            reason,
        }
    }

    fn read<T: ByteValued>(&self, gpa: u64) -> Result<T, Fault> {
        self.mem
            .read_obj::<T>(GuestAddress(gpa))
            .map_err(|_| self.fault(FaultReason::PteOutOfRam))
    }

    /// Reads a 64-bit entry and checks P and the reserved address bits.
    fn entry64(&self, table: u64, index: u64) -> Result<u64, Fault> {
        let e: u64 = self.read(table + index * 8)?;
        if e & P == 0 {
            return Err(self.fault(FaultReason::NotPresent));
        }
        if e & RSVD_HIGH != 0 {
            return Err(self.fault(FaultReason::Reserved));
        }
        Ok(e)
    }

    fn walk_long(&self, levels: u32) -> Result<Translation, Fault> {
        // Canonical: bits 63..(va_bits-1) all equal.
        let va_bits = 12 + 9 * levels;
        let top = (self.va as i64) >> (va_bits - 1);
        if top != 0 && top != -1 {
            return Err(self.fault(FaultReason::NonCanonical));
        }
        let mut table = self.pdbr & ADDR_MASK;
        for level in (1..=levels).rev() {
            let shift = 12 + 9 * (level - 1);
            let e = self.entry64(table, (self.va >> shift) & 0x1ff)?;
            let large = e & PS != 0;
            match (level, large) {
                (1, _) | (2, false) | (3, false) => {}
                (4 | 5, false) => {}
                (2, true) | (3, true) => {
                    // Large page: bits 12 (PAT) .. shift-1 above it are reserved,
                    // bit 12 itself is PAT.
                    if e & bits(13, shift - 1) != 0 {
                        return Err(self.fault(FaultReason::Reserved));
                    }
                    return Ok(Translation {
                        page_base: e & ADDR_MASK & !((1u64 << shift) - 1),
                        page_shift: shift,
                    });
                }
                _ => return Err(self.fault(FaultReason::Reserved)), // PS in PML4E/PML5E
            }
            if level == 1 {
                return Ok(Translation {
                    page_base: e & ADDR_MASK,
                    page_shift: 12,
                });
            }
            table = e & ADDR_MASK;
        }
        unreachable!("the loop returns at level 1")
    }

    fn walk_pae(&self) -> Result<Translation, Fault> {
        if self.va >> 32 != 0 {
            return Err(self.fault(FaultReason::NonCanonical));
        }
        // PDPTE: present, bits 1,2,5..8 and 63..MAXPHYADDR reserved.
        let pdpte: u64 = self.read((self.pdbr & !0x1f) + ((self.va >> 30) & 3) * 8)?;
        if pdpte & P == 0 {
            return Err(self.fault(FaultReason::NotPresent));
        }
        if pdpte & (0b1_1110_0110 | bits(MAXPHYADDR, 63)) != 0 {
            return Err(self.fault(FaultReason::Reserved));
        }
        let pde = self.entry64(pdpte & ADDR_MASK, (self.va >> 21) & 0x1ff)?;
        if pde & PS != 0 {
            if pde & bits(13, 20) != 0 {
                return Err(self.fault(FaultReason::Reserved));
            }
            return Ok(Translation {
                page_base: pde & ADDR_MASK & !0x1f_ffff,
                page_shift: 21,
            });
        }
        let pte = self.entry64(pde & ADDR_MASK, (self.va >> 12) & 0x1ff)?;
        Ok(Translation {
            page_base: pte & ADDR_MASK,
            page_shift: 12,
        })
    }

    fn walk_32(&self) -> Result<Translation, Fault> {
        if self.va >> 32 != 0 {
            return Err(self.fault(FaultReason::NonCanonical));
        }
        let pde: u32 = self.read((self.pdbr & 0xffff_f000) + ((self.va >> 22) & 0x3ff) * 4)?;
        if pde & 1 == 0 {
            return Err(self.fault(FaultReason::NotPresent));
        }
        if pde & (1 << 7) != 0 {
            // 4 MiB page with PSE-36: bits 20:13 are PA bits 39:32, bit 21 reserved.
            let pde = u64::from(pde);
            if pde & (1 << 21) != 0 {
                return Err(self.fault(FaultReason::Reserved));
            }
            let base = (pde & 0xffc0_0000) | (((pde >> 13) & 0xff) << 32);
            if base >> MAXPHYADDR != 0 {
                return Err(self.fault(FaultReason::Reserved));
            }
            return Ok(Translation {
                page_base: base,
                page_shift: 22,
            });
        }
        let pte: u32 = self.read(u64::from(pde & 0xffff_f000) + ((self.va >> 12) & 0x3ff) * 4)?;
        if pte & 1 == 0 {
            return Err(self.fault(FaultReason::NotPresent));
        }
        Ok(Translation {
            page_base: u64::from(pte & 0xffff_f000),
            page_shift: 12,
        })
    }
}

/// Checks a PDBR for the mode: aligned, and within the physical address width.
pub fn check_pdbr(pdbr: u64, mode: PagingMode) -> bool {
    let align_mask = if mode == PagingMode::Pae { 0x1f } else { 0xfff };
    pdbr & align_mask == 0 && pdbr >> MAXPHYADDR == 0
}

/// Walks the page tables at `pdbr` in `mode` and translates `va`.
pub fn walk<M: GuestMemoryBackend>(
    mem: &M,
    pdbr: u64,
    mode: PagingMode,
    va: u64,
) -> Result<Translation, Fault> {
    let w = Walker { mem, va, pdbr };
    if !check_pdbr(pdbr, mode) {
        return Err(w.fault(FaultReason::BadPdbr));
    }
    match mode {
        PagingMode::Bits32 => w.walk_32(),
        PagingMode::Pae => w.walk_pae(),
        PagingMode::Level4 => w.walk_long(4),
        PagingMode::Level5 => w.walk_long(5),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::GuestMemoryMmap;

    const RAM: usize = 16 << 20;

    fn mem() -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), RAM)]).unwrap()
    }

    fn w64(m: &GuestMemoryMmap, gpa: u64, v: u64) {
        m.write_obj(v, GuestAddress(gpa)).unwrap();
    }

    fn w32(m: &GuestMemoryMmap, gpa: u64, v: u32) {
        m.write_obj(v, GuestAddress(gpa)).unwrap();
    }

    /// 4-level: PML4 at 0x1000, PDPT 0x2000, PD 0x3000, PT 0x4000.
    fn four_level(m: &GuestMemoryMmap, va: u64, page: u64) {
        w64(m, 0x1000 + ((va >> 39) & 0x1ff) * 8, 0x2000 | 3);
        w64(m, 0x2000 + ((va >> 30) & 0x1ff) * 8, 0x3000 | 3);
        w64(m, 0x3000 + ((va >> 21) & 0x1ff) * 8, 0x4000 | 3);
        w64(m, 0x4000 + ((va >> 12) & 0x1ff) * 8, page | 3 | (1 << 63));
    }

    #[test]
    fn level4_4k() {
        let m = mem();
        let va = 0x7fff_1234_5678;
        four_level(&m, va, 0x80_0000);
        let t = walk(&m, 0x1000, PagingMode::Level4, va).unwrap();
        assert_eq!(t.page_shift, 12);
        assert_eq!(t.gpa(va), 0x80_0678);
    }

    #[test]
    fn level4_2m_and_1g() {
        let m = mem();
        let va: u64 = 0xffff_8880_0030_0000 + 0x1_2345;
        w64(&m, 0x1000 + ((va >> 39) & 0x1ff) * 8, 0x2000 | 3);
        w64(&m, 0x2000 + ((va >> 30) & 0x1ff) * 8, 0x3000 | 3);
        w64(&m, 0x3000 + ((va >> 21) & 0x1ff) * 8, 0x20_0000 | PS | 3);
        let t = walk(&m, 0x1000, PagingMode::Level4, va).unwrap();
        assert_eq!(
            (t.page_shift, t.gpa(va)),
            (21, 0x20_0000 + (va & 0x1f_ffff))
        );
        // 1 GiB page mapping guest-physical 0.
        w64(&m, 0x2000 + ((va >> 30) & 0x1ff) * 8, PS | 3);
        let t = walk(&m, 0x1000, PagingMode::Level4, va).unwrap();
        assert_eq!((t.page_shift, t.gpa(va)), (30, va & 0x3fff_ffff));
        // Reserved low bits of a 1 GiB entry.
        w64(&m, 0x2000 + ((va >> 30) & 0x1ff) * 8, PS | 3 | (1 << 20));
        let e = walk(&m, 0x1000, PagingMode::Level4, va).unwrap_err();
        assert_eq!(e.reason, FaultReason::Reserved);
    }

    #[test]
    fn level5() {
        let m = mem();
        let va: u64 = 0x00ff_0000_0000_1000 - 0x1000 + 0x10; // canonical in 57 bits
        w64(&m, 0x5000 + ((va >> 48) & 0x1ff) * 8, 0x1000 | 3);
        four_level(&m, va, 0x90_0000);
        let t = walk(&m, 0x5000, PagingMode::Level5, va).unwrap();
        assert_eq!(t.gpa(va), 0x90_0010);
        // Not canonical in 4-level.
        let e = walk(&m, 0x1000, PagingMode::Level4, va).unwrap_err();
        assert_eq!(e.reason, FaultReason::NonCanonical);
    }

    #[test]
    fn faults() {
        let m = mem();
        let va = 0x4000_0000;
        let e = walk(&m, 0x1000, PagingMode::Level4, va).unwrap_err();
        assert_eq!(e.reason, FaultReason::NotPresent);
        w64(&m, 0x1000, 0x2000 | 3 | (1 << 50));
        let e = walk(&m, 0x1000, PagingMode::Level4, va).unwrap_err();
        assert_eq!(e.reason, FaultReason::Reserved);
        w64(&m, 0x1000, 0x2000 | 3 | PS);
        let e = walk(&m, 0x1000, PagingMode::Level4, va).unwrap_err();
        assert_eq!(e.reason, FaultReason::Reserved);
        // A table outside RAM.
        w64(&m, 0x1000, (RAM as u64 + 0x1000) | 3);
        let e = walk(&m, 0x1000, PagingMode::Level4, va).unwrap_err();
        assert_eq!(e.reason, FaultReason::PteOutOfRam);
        let e = walk(&m, 0x1001, PagingMode::Level4, va).unwrap_err();
        assert_eq!(e.reason, FaultReason::BadPdbr);
    }

    #[test]
    fn self_referencing_table_terminates() {
        let m = mem();
        // Every PML4 slot points back at the PML4 itself (recursive mapping).
        for i in 0..512 {
            w64(&m, 0x1000 + i * 8, 0x1000 | 3);
        }
        let t = walk(&m, 0x1000, PagingMode::Level4, 0x1234).unwrap();
        assert_eq!(t.gpa(0x1234), 0x1234);
    }

    #[test]
    fn bits32_4k_and_4m() {
        let m = mem();
        let va: u64 = 0xc012_3456;
        w32(&m, 0x1000 + (va >> 22) * 4, 0x2000 | 3);
        w32(&m, 0x2000 + ((va >> 12) & 0x3ff) * 4, 0x0070_0000 | 3);
        let t = walk(&m, 0x1000, PagingMode::Bits32, va).unwrap();
        assert_eq!((t.page_shift, t.gpa(va)), (12, 0x70_0456));
        w32(&m, 0x1000 + (va >> 22) * 4, 0x0080_0000 | 0x83);
        let t = walk(&m, 0x1000, PagingMode::Bits32, va).unwrap();
        assert_eq!(
            (t.page_shift, t.gpa(va)),
            (22, 0x80_0000 + (va & 0x3f_ffff))
        );
        w32(&m, 0x1000 + (va >> 22) * 4, 0x0080_0000 | 0x83 | (1 << 21));
        let e = walk(&m, 0x1000, PagingMode::Bits32, va).unwrap_err();
        assert_eq!(e.reason, FaultReason::Reserved);
        let e = walk(&m, 0x1000, PagingMode::Bits32, 1 << 32).unwrap_err();
        assert_eq!(e.reason, FaultReason::NonCanonical);
    }

    // Alike in shape to bits32_4k_and_4m (a small page, a large one, a
    // fault), kept a separate test so that a failure names the mode.
    #[test]
    fn pae_4k_and_2m() {
        let m = mem();
        let va: u64 = 0xbfe0_1234;
        w64(&m, 0x1020 + (va >> 30) * 8, 0x2000 | 1);
        w64(&m, 0x2000 + ((va >> 21) & 0x1ff) * 8, 0x3000 | 3);
        w64(&m, 0x3000 + ((va >> 12) & 0x1ff) * 8, 0x60_0000 | 3);
        let t = walk(&m, 0x1020, PagingMode::Pae, va).unwrap();
        assert_eq!(t.gpa(va), 0x60_0234);
        w64(&m, 0x2000 + ((va >> 21) & 0x1ff) * 8, 0x40_0000 | 0x83);
        let t = walk(&m, 0x1020, PagingMode::Pae, va).unwrap();
        assert_eq!(
            (t.page_shift, t.gpa(va)),
            (21, 0x40_0000 + (va & 0x1f_ffff))
        );
        // Reserved bit 5..8 in a PDPTE.
        w64(&m, 0x1020 + (va >> 30) * 8, 0x2000 | 1 | (1 << 7));
        let e = walk(&m, 0x1020, PagingMode::Pae, va).unwrap_err();
        assert_eq!(e.reason, FaultReason::Reserved);
    }
}
