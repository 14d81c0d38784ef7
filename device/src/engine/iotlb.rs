//! The device's IOTLB: caches page walks per (PDBR, mode, page).
//!
//! Hand-rolled rather than a generic cache crate: lookups sit on the per-page
//! hot path and must be a couple of compares; memory must stay bounded
//! whatever addresses a hostile guest sends. It is a direct-mapped table per
//! page size, so capacity is fixed and there is nothing to evict by policy.

use crate::engine::mmu::{PagingMode, Translation};

const SETS: usize = 1024;
/// The page sizes the walker can return, most common first.
const SHIFTS: [u32; 4] = [12, 21, 30, 22];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    pdbr: u64,
    vpn: u64,
    mode: PagingMode,
    page_base: u64,
}

/// A bounded translation cache.
pub struct Iotlb {
    tables: [Vec<Option<Entry>>; 4],
}

impl Default for Iotlb {
    fn default() -> Self {
        Self {
            tables: std::array::from_fn(|_| vec![None; SETS]),
        }
    }
}

fn slot(pdbr: u64, vpn: u64) -> usize {
    // Mix the PDBR in so that processes with the same layout don't thrash.
    let h = vpn ^ (pdbr >> 12).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h as usize) & (SETS - 1)
}

fn shift_index(shift: u32) -> Option<usize> {
    SHIFTS.iter().position(|&s| s == shift)
}

impl Iotlb {
    pub fn lookup(&self, pdbr: u64, mode: PagingMode, va: u64) -> Option<Translation> {
        for (i, &shift) in SHIFTS.iter().enumerate() {
            let vpn = va >> shift;
            if let Some(e) = self.tables[i][slot(pdbr, vpn)] {
                if e.pdbr == pdbr && e.vpn == vpn && e.mode == mode {
                    return Some(Translation {
                        page_base: e.page_base,
                        page_shift: shift,
                    });
                }
            }
        }
        None
    }

    pub fn insert(&mut self, pdbr: u64, mode: PagingMode, va: u64, t: Translation) {
        if let Some(i) = shift_index(t.page_shift) {
            let vpn = va >> t.page_shift;
            self.tables[i][slot(pdbr, vpn)] = Some(Entry {
                pdbr,
                vpn,
                mode,
                page_base: t.page_base,
            });
        }
    }

    pub fn invalidate_all(&mut self) {
        for t in &mut self.tables {
            t.fill(None);
        }
    }

    pub fn invalidate_pdbr(&mut self, pdbr: u64) {
        for t in &mut self.tables {
            for e in t.iter_mut() {
                if e.is_some_and(|e| e.pdbr == pdbr) {
                    *e = None;
                }
            }
        }
    }

    pub fn invalidate_addr(&mut self, pdbr: u64, va: u64) {
        for (i, &shift) in SHIFTS.iter().enumerate() {
            let vpn = va >> shift;
            let e = &mut self.tables[i][slot(pdbr, vpn)];
            if e.is_some_and(|e| e.pdbr == pdbr && e.vpn == vpn) {
                *e = None;
            }
        }
    }

    /// Number of live entries (for tests and debugging).
    pub fn len(&self) -> usize {
        self.tables.iter().flatten().filter(|e| e.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(base: u64, shift: u32) -> Translation {
        Translation {
            page_base: base,
            page_shift: shift,
        }
    }

    #[test]
    fn hit_miss_and_invalidate() {
        let mut tlb = Iotlb::default();
        let m = PagingMode::Level4;
        assert!(tlb.lookup(0x1000, m, 0x7000).is_none());
        tlb.insert(0x1000, m, 0x7123, t(0x9000, 12));
        tlb.insert(0x1000, m, 0xffff_8880_0020_0000, t(0x20_0000, 21));
        tlb.insert(0x2000, m, 0x7000, t(0xa000, 12));
        assert_eq!(tlb.lookup(0x1000, m, 0x7fff).unwrap().gpa(0x7fff), 0x9fff);
        assert!(tlb.lookup(0x1000, PagingMode::Level5, 0x7000).is_none());
        let big = tlb.lookup(0x1000, m, 0xffff_8880_0021_0000).unwrap();
        assert_eq!(big.gpa(0xffff_8880_0021_0000), 0x21_0000);
        tlb.invalidate_addr(0x1000, 0x7800);
        assert!(tlb.lookup(0x1000, m, 0x7000).is_none());
        assert!(tlb.lookup(0x2000, m, 0x7000).is_some());
        tlb.invalidate_pdbr(0x2000);
        assert!(tlb.lookup(0x2000, m, 0x7000).is_none());
        assert_eq!(tlb.len(), 1);
        tlb.invalidate_all();
        assert!(tlb.is_empty());
    }

    #[test]
    #[cfg_attr(miri, ignore = "safe code only, and 80 s under Miri")]
    fn bounded_under_many_inserts() {
        let mut tlb = Iotlb::default();
        for i in 0..100_000u64 {
            tlb.insert(0x1000, PagingMode::Level4, i << 12, t(i << 12, 12));
        }
        assert!(tlb.len() <= SETS);
    }
}
