//! The page walker (`mmu::walk`), the IOTLB and the gather step
//! (`dma::Translator::virt_slices`, `dma::phys_slices`) on arbitrary
//! page-table memory, in every paging mode (32-bit, PAE, 4-level, 5-level).
//!
//! Guest RAM is a small `GuestMemoryMmap` of three regions: two adjacent
//! (so gathers split at a region boundary) and one after a hole. The input
//! writes entries into it: raw 64-bit values, or "pointers" to one of its
//! pages with arbitrary flag bits, so that deep walks are reachable.
//!
//! Checked: no panic; a translation has a page size the mode allows, an
//! aligned base below 2^MAXPHYADDR, and is deterministic; the IOTLB returns
//! what was inserted; every gathered slice lies inside a mapped region,
//! their lengths add up to the request, and their bytes equal what
//! `read_slice` sees at the translated addresses.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};
use vmso_device::abi::MAXPHYADDR;
use vmso_device::counters::Counters;
use vmso_device::engine::dma::{phys_slices, Translator};
use vmso_device::engine::iotlb::Iotlb;
use vmso_device::engine::mmu::{self, PagingMode};
use vmso_device::engine::offload::Slice;

/// Regions: [0, 64 KiB), [64 KiB, 128 KiB), [192 KiB, 196 KiB).
const REGIONS: [(u64, usize); 3] = [(0, 0x10000), (0x10000, 0x10000), (0x30000, 0x1000)];
/// Pages a "pointer" entry may name: every page of the RAM, plus one in the hole.
const PAGES: [u64; 34] = {
    let mut p = [0u64; 34];
    let mut i = 0;
    while i < 32 {
        p[i] = (i as u64) << 12;
        i += 1;
    }
    p[32] = 0x30000;
    p[33] = 0x20000; // the hole
    p
};

#[derive(Arbitrary, Debug)]
enum Entry {
    /// A raw value.
    Raw(u64),
    /// A page of the RAM (index mod PAGES), low 12 flag bits, high bits XORed in.
    Ptr { page: u8, flags: u16, high: u64 },
}

#[derive(Arbitrary, Debug)]
struct Write {
    /// Guest-physical offset (mod 128 KiB, then 4-byte aligned).
    at: u32,
    entry: Entry,
    /// A 32-bit write (for 32-bit paging) instead of 64-bit.
    narrow: bool,
}

#[derive(Arbitrary, Debug)]
struct Input {
    mode: u8,
    /// PDBR: a page of the RAM (plus a PAE 32-byte slot) or a raw value.
    pdbr_page: u8,
    pdbr_slot: u8,
    pdbr_raw: Option<u64>,
    writes: Vec<Write>,
    vas: Vec<(u64, u16)>,
}

fn entry_value(e: &Entry) -> u64 {
    match *e {
        Entry::Raw(v) => v,
        Entry::Ptr { page, flags, high } => {
            let base = PAGES[usize::from(page) % PAGES.len()];
            // Mostly clean entries; `high` set bit 63 (NX) or reserved bits.
            base | u64::from(flags & 0xfff) | (high & !((1u64 << 32) - 1) & (high >> 7))
        }
    }
}

fn within_ram(mem: &GuestMemoryMmap, s: &Slice) -> bool {
    mem.iter().any(|r| {
        let base = r.as_ptr() as usize;
        let p = s.ptr as usize;
        p >= base && p + s.len <= base + r.len() as usize
    })
}

fuzz_target!(|inp: Input| {
    thread_local! {
        static MEM: GuestMemoryMmap = GuestMemoryMmap::from_ranges(
            &REGIONS.map(|(a, l)| (GuestAddress(a), l)),
        )
        .unwrap();
    }
    MEM.with(|mem| run(mem, inp));
});

fn run(mem: &GuestMemoryMmap, inp: Input) {
    // Fresh RAM for every input.
    for (a, l) in REGIONS {
        mem.write_slice(&vec![0u8; l], GuestAddress(a)).unwrap();
    }
    for w in inp.writes.iter().take(64) {
        let at = u64::from(w.at % 0x20000) & !3;
        let v = entry_value(&w.entry);
        let r = if w.narrow {
            mem.write_obj(v as u32, GuestAddress(at))
        } else {
            mem.write_obj(v, GuestAddress(at & !7))
        };
        r.unwrap();
    }
    let mode = PagingMode::from_cmd_field(u16::from(inp.mode));
    let pdbr = inp.pdbr_raw.unwrap_or_else(|| {
        PAGES[usize::from(inp.pdbr_page) % PAGES.len()] | (u64::from(inp.pdbr_slot & 0x7f) << 5)
    });
    let counters = Counters::default();
    let mut iotlb = Iotlb::default();
    for &(va, len) in inp.vas.iter().take(16) {
        let r = mmu::walk(mem, pdbr, mode, va);
        assert_eq!(r, mmu::walk(mem, pdbr, mode, va), "walks are deterministic");
        if let Ok(t) = r {
            let allowed: &[u32] = match mode {
                PagingMode::Bits32 => &[12, 22],
                PagingMode::Pae => &[12, 21],
                PagingMode::Level4 | PagingMode::Level5 => &[12, 21, 30],
            };
            assert!(allowed.contains(&t.page_shift), "{mode:?} {t:?}");
            assert_eq!(t.page_base & ((1u64 << t.page_shift) - 1), 0, "{t:?}");
            assert_eq!(t.page_base >> MAXPHYADDR, 0, "{t:?}");
            assert_eq!(t.gpa(va) >> t.page_shift, t.page_base >> t.page_shift);
            if mode == PagingMode::Bits32 || mode == PagingMode::Pae {
                assert_eq!(va >> 32, 0);
            }
            iotlb.insert(pdbr, mode, va, t);
            assert_eq!(
                iotlb.lookup(pdbr, mode, va),
                Some(t),
                "IOTLB hit after insert"
            );
        }
        // Gather: through a fresh IOTLB and through the warm one.
        for warm in [false, true] {
            let mut cold = Iotlb::default();
            let mut tr = Translator {
                mem,
                iotlb: if warm { &mut iotlb } else { &mut cold },
                counters: &counters,
            };
            let mut out = Vec::new();
            let len = u64::from(len);
            if tr.virt_slices(pdbr, mode, va, len, &mut out).is_ok() {
                check_gather(mem, &out, len);
                // The bytes match a page-by-page read through the walker.
                let mut got = Vec::new();
                for s in &out {
                    // SAFETY: `within_ram` checked the slice lies in a mapping.
                    got.extend_from_slice(unsafe { std::slice::from_raw_parts(s.ptr, s.len) });
                }
                let mut at = va;
                let mut want = Vec::new();
                while want.len() < got.len() {
                    let t = mmu::walk(mem, pdbr, mode, at).expect("walk agrees with the gather");
                    let n = ((1u64 << t.page_shift) - (at & ((1u64 << t.page_shift) - 1)))
                        .min((got.len() - want.len()) as u64) as usize;
                    let mut b = vec![0u8; n];
                    mem.read_slice(&mut b, GuestAddress(t.gpa(at))).unwrap();
                    want.extend_from_slice(&b);
                    at += n as u64;
                }
                assert_eq!(got, want);
            }
        }
        // Physical gathers at the same address.
        let mut out = Vec::new();
        if phys_slices(mem, va, u64::from(len), &mut out).is_ok() {
            check_gather(mem, &out, u64::from(len));
        }
    }
}

fn check_gather(mem: &GuestMemoryMmap, out: &[Slice], len: u64) {
    assert_eq!(out.iter().map(|s| s.len as u64).sum::<u64>(), len);
    for s in out {
        assert!(within_ram(mem, s), "slice outside guest RAM: {s:?}");
    }
}
