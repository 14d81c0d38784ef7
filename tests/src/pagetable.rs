//! Builds x86 page tables in guest RAM, for every paging mode the device
//! walks: 32-bit (4 KiB, 4 MiB), PAE (4 KiB, 2 MiB), 4- and 5-level
//! (4 KiB, 2 MiB, 1 GiB). Written independently of the device's walker.

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmso_device::engine::mmu::PagingMode;

const P_RW: u64 = 0x3;
const PS: u64 = 0x80;

/// A bump allocator of zeroed 4 KiB pages for page tables.
pub struct Pool {
    next: u64,
    end: u64,
}

impl Pool {
    pub fn new(base: u64, size: u64) -> Self {
        Self {
            next: base,
            end: base + size,
        }
    }

    pub fn page(&mut self, mem: &GuestMemoryMmap) -> u64 {
        assert!(self.next < self.end, "page-table pool exhausted");
        let p = self.next;
        self.next += 4096;
        mem.write_slice(&[0u8; 4096], GuestAddress(p)).unwrap();
        p
    }
}

/// One address space.
pub struct AddressSpace {
    pub mode: PagingMode,
    pub pdbr: u64,
}

impl AddressSpace {
    pub fn new(mem: &GuestMemoryMmap, pool: &mut Pool, mode: PagingMode) -> Self {
        let root = pool.page(mem);
        let pdbr = match mode {
            // The PDPT is 32 bytes; put it off the page start to prove that
            // only 32-byte alignment is needed.
            PagingMode::Pae => root + 0x20,
            _ => root,
        };
        Self { mode, pdbr }
    }

    /// Levels of a long-mode (4- or 5-level) walk.
    fn long_levels(&self) -> u32 {
        if self.mode == PagingMode::Level5 {
            5
        } else {
            4
        }
    }

    fn rd64(mem: &GuestMemoryMmap, a: u64) -> u64 {
        mem.read_obj(GuestAddress(a)).unwrap()
    }

    /// Table pointed to by `entry_addr`, created if absent.
    fn next64(mem: &GuestMemoryMmap, pool: &mut Pool, entry_addr: u64, flags: u64) -> u64 {
        let e = Self::rd64(mem, entry_addr);
        if e & 1 != 0 {
            return e & 0x000f_ffff_ffff_f000;
        }
        let t = pool.page(mem);
        mem.write_obj(t | flags, GuestAddress(entry_addr)).unwrap();
        t
    }

    /// Maps the page of size `1 << shift` containing `va` to `gpa`.
    pub fn map(&self, mem: &GuestMemoryMmap, pool: &mut Pool, va: u64, gpa: u64, shift: u32) {
        assert_eq!(va & ((1 << shift) - 1), 0, "va not page-aligned");
        assert_eq!(gpa & ((1 << shift) - 1), 0, "gpa not page-aligned");
        match self.mode {
            PagingMode::Level4 | PagingMode::Level5 => {
                let mut table = self.pdbr;
                for level in (1..=self.long_levels()).rev() {
                    let lshift = 12 + 9 * (level - 1);
                    let ea = table + ((va >> lshift) & 0x1ff) * 8;
                    if lshift == shift {
                        let ps = if shift > 12 { PS } else { 0 };
                        mem.write_obj(gpa | P_RW | ps, GuestAddress(ea)).unwrap();
                        return;
                    }
                    table = Self::next64(mem, pool, ea, P_RW);
                }
                panic!("page shift {shift} not valid in long mode");
            }
            PagingMode::Pae => {
                let pdpte = self.pdbr + ((va >> 30) & 3) * 8;
                let pd = Self::next64(mem, pool, pdpte, 1); // PDPTE: P only
                let pde = pd + ((va >> 21) & 0x1ff) * 8;
                if shift == 21 {
                    mem.write_obj(gpa | P_RW | PS, GuestAddress(pde)).unwrap();
                    return;
                }
                assert_eq!(shift, 12);
                let pt = Self::next64(mem, pool, pde, P_RW);
                mem.write_obj(gpa | P_RW, GuestAddress(pt + ((va >> 12) & 0x1ff) * 8))
                    .unwrap();
            }
            PagingMode::Bits32 => {
                let pde_a = self.pdbr + ((va >> 22) & 0x3ff) * 4;
                if shift == 22 {
                    let e = (gpa as u32 & 0xffc0_0000) | (((gpa >> 32) as u32 & 0xff) << 13);
                    mem.write_obj(e | 0x83, GuestAddress(pde_a)).unwrap();
                    return;
                }
                assert_eq!(shift, 12);
                let pde: u32 = mem.read_obj(GuestAddress(pde_a)).unwrap();
                let pt = if pde & 1 != 0 {
                    u64::from(pde & 0xffff_f000)
                } else {
                    let t = pool.page(mem);
                    mem.write_obj(t as u32 | 3, GuestAddress(pde_a)).unwrap();
                    t
                };
                mem.write_obj(gpa as u32 | 3, GuestAddress(pt + ((va >> 12) & 0x3ff) * 4))
                    .unwrap();
            }
        }
    }

    /// Guest-physical address of the leaf entry for `va` (a 4 KiB mapping).
    pub fn leaf_entry(&self, mem: &GuestMemoryMmap, va: u64) -> u64 {
        match self.mode {
            PagingMode::Level4 | PagingMode::Level5 => {
                let mut table = self.pdbr;
                for level in (2..=self.long_levels()).rev() {
                    let lshift = 12 + 9 * (level - 1);
                    table = Self::rd64(mem, table + ((va >> lshift) & 0x1ff) * 8)
                        & 0x000f_ffff_ffff_f000;
                }
                table + ((va >> 12) & 0x1ff) * 8
            }
            PagingMode::Pae => {
                let pd = Self::rd64(mem, self.pdbr + ((va >> 30) & 3) * 8) & 0x000f_ffff_ffff_f000;
                let pt = Self::rd64(mem, pd + ((va >> 21) & 0x1ff) * 8) & 0x000f_ffff_ffff_f000;
                pt + ((va >> 12) & 0x1ff) * 8
            }
            PagingMode::Bits32 => {
                let pde: u32 = mem
                    .read_obj(GuestAddress(self.pdbr + ((va >> 22) & 0x3ff) * 4))
                    .unwrap();
                u64::from(pde & 0xffff_f000) + ((va >> 12) & 0x3ff) * 4
            }
        }
    }
}
