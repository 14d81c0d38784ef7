//! Page tables that change while a chain is in flight, without an IOTLB
//! invalidation (docs/abi.md, "Page tables that change during a
//! transfer"). A thread keeps rewriting leaf PTEs (to another data page,
//! to not-present, to a page outside guest RAM), a PDE (to the other
//! address space's page table) and the PDBR field of the posted
//! descriptors, while TSO packets with a virtual payload flow. The device
//! must not crash, must complete every packet with OK or PAGE_FAULT, and
//! every byte it sends must come from a page that was mapped at some
//! point, one physical page per virtual page and packet.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};
use vmso_device::abi::{cmd, iotlb_inv, reg, TxError, TX_DESC_SIZE};
use vmso_device::counters::Stat;
use vmso_device::engine::mmu::PagingMode;
use vmso_tests::frames::{self, TcpOpts};
use vmso_tests::pagetable::AddressSpace;
use vmso_tests::*;

/// Virtual pages of the payload, and the data pages they may map to.
const PAGES: u64 = 8;
const CANDIDATES: u64 = 16;
/// Byte value filling candidate data page `i`.
const FILL: u8 = 0x40;
const VA: u64 = 0x4000_0000;
const MSS: u16 = 1448;

fn candidate(i: u64) -> u64 {
    DATA_POOL + i * 4096
}

/// A paging entry, written as one aligned store of its width (as a CPU
/// writes a PTE).
fn store(mem: &GuestMemoryMmap, gpa: u64, v: u64, wide: bool) {
    let p = mem.get_host_address(GuestAddress(gpa)).unwrap();
    if wide {
        assert_eq!(p as usize % 8, 0);
        // SAFETY: `p` is an 8-byte-aligned address inside the guest-RAM
        // mapping, which `mem` keeps mapped; other threads (the device)
        // only read it.
        unsafe { (*(p as *const AtomicU64)).store(v, Ordering::Relaxed) };
    } else {
        assert_eq!(p as usize % 4, 0);
        // SAFETY: as above, 4-byte aligned.
        unsafe { (*(p as *const AtomicU32)).store(v as u32, Ordering::Relaxed) };
    }
}

/// Guest-physical address of the entry one level above the leaf (the PDE)
/// for `va`, in 4-level or 32-bit paging.
fn pde_addr(mem: &GuestMemoryMmap, asp: &AddressSpace, va: u64) -> u64 {
    match asp.mode {
        PagingMode::Level4 => {
            let mut table = asp.pdbr;
            for shift in [39, 30] {
                let e: u64 =
                    Bytes::read_obj(mem, GuestAddress(table + ((va >> shift) & 0x1ff) * 8))
                        .unwrap();
                table = e & 0x000f_ffff_ffff_f000;
            }
            table + ((va >> 21) & 0x1ff) * 8
        }
        PagingMode::Bits32 => asp.pdbr + ((va >> 22) & 0x3ff) * 4,
        m => unreachable!("{m:?}"),
    }
}

/// xorshift64: the rewriter's choices, reproducible per run.
fn next(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

/// Stops the rewriter when dropped, also when the main thread panics.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

struct Tally {
    ok: u64,
    faults: u64,
    rewrites: u64,
}

fn race(mode: PagingMode, run_for: Duration) -> Tally {
    let mut h = Harness::new();
    let wide = mode != PagingMode::Bits32;
    // A page outside guest RAM, for a PTE to point at.
    let outside: u64 = if wide { 0x3f_0000_0000 } else { 0xf000_0000 };
    for i in 0..CANDIDATES {
        h.write(candidate(i), &[FILL + i as u8; 4096]);
    }
    // Two address spaces over the same virtual range, with different pages.
    let a = AddressSpace::new(&h.mem, &mut h.pt, mode);
    let b = AddressSpace::new(&h.mem, &mut h.pt, mode);
    for p in 0..PAGES {
        a.map(&h.mem, &mut h.pt, VA + p * 4096, candidate(p), 12);
        b.map(&h.mem, &mut h.pt, VA + p * 4096, candidate(p + PAGES), 12);
    }
    let ptes: Vec<u64> = [&a, &b]
        .iter()
        .flat_map(|s| (0..PAGES).map(|p| s.leaf_entry(&h.mem, VA + p * 4096)))
        .collect();
    let pde_a = pde_addr(&h.mem, &a, VA);
    let pts = [ptes[0] & !0xfff, ptes[PAGES as usize] & !0xfff];
    let pdbrs = [a.pdbr, b.pdbr];

    let hdr = frames::tcp_template(TcpOpts::default());
    h.write(HDR_BUF, &hdr);
    let len = (PAGES * 4096) as u32;
    let mut d0 = desc(HDR_BUF, hdr.len() as u32, cmd::TSO);
    d0.mss = MSS;
    let d1 = vdesc(VA, len, cmd::EOP, a.pdbr, mode);

    let stop = AtomicBool::new(false);
    let mem = h.mem.clone();
    let mut tally = Tally {
        ok: 0,
        faults: 0,
        rewrites: 0,
    };
    std::thread::scope(|s| {
        let rewriter = s.spawn(|| {
            let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ mode as u64;
            let mut n = 0u64;
            let give_up = Instant::now() + run_for + Duration::from_secs(30);
            // Bounded by count, by time and by the main thread's stop flag.
            while !stop.load(Ordering::Relaxed) && n < 50_000_000 && Instant::now() < give_up {
                let r = next(&mut seed);
                match r % 16 {
                    // A leaf PTE: another data page (most of the time),
                    // not present, or a page outside guest RAM.
                    0..=11 => {
                        let pte = ptes[(r >> 8) as usize % ptes.len()];
                        let v = match (r >> 4) % 32 {
                            0 => 0,
                            1 => outside | 3,
                            _ => candidate((r >> 16) % CANDIDATES) | 3,
                        };
                        store(&mem, pte, v, wide);
                    }
                    // A's PDE: its own page table or B's.
                    12 | 13 => store(&mem, pde_a, pts[(r >> 8) as usize % 2] | 3, wide),
                    // The PDBR field of every descriptor slot.
                    _ => {
                        let pdbr = pdbrs[(r >> 8) as usize % 2];
                        for slot in 0..u64::from(TX_SIZE) {
                            store(&mem, TX_RING + slot * TX_DESC_SIZE + 8, pdbr, true);
                        }
                    }
                }
                n += 1;
                if n.is_multiple_of(64) {
                    std::thread::yield_now();
                }
            }
            n
        });

        let stopper = StopOnDrop(&stop);
        let deadline = Instant::now() + run_for;
        let mut sent = 0u32;
        while Instant::now() < deadline && sent < 20_000 {
            let e = h.send(&[d0, d1]);
            let f = h.frames();
            sent += 1;
            if e == TxError::Ok as u16 {
                tally.ok += 1;
                check_frames(&f, len as usize);
            } else {
                assert_eq!(e, TxError::PageFault as u16, "completion OK or PAGE_FAULT");
                assert!(f.is_empty(), "a faulted packet emits nothing");
                tally.faults += 1;
            }
            // Now and then a (legitimate) invalidation, so that walks
            // happen again rather than hitting stale IOTLB entries only.
            if sent.is_multiple_of(4) {
                h.write_reg(reg::IOTLB_INV, iotlb_inv::ALL);
            }
        }
        drop(stopper);
        tally.rewrites = rewriter.join().unwrap();
    });

    // Mappings restored and invalidated: the device serves exactly.
    for p in 0..PAGES {
        store(&h.mem, ptes[p as usize], candidate(p) | 3, wide);
    }
    store(&h.mem, pde_a, pts[0] | 3, wide);
    h.write_reg(reg::IOTLB_INV, iotlb_inv::ALL);
    let d1 = vdesc(VA, len, cmd::EOP, a.pdbr, mode);
    assert_eq!(h.send(&[d0, d1]), 0, "served after the race");
    let mut want = Vec::new();
    for p in 0..PAGES {
        want.extend([FILL + p as u8; 4096]);
    }
    frames::check_tso(&h.frames(), &want, usize::from(MSS), TcpOpts::default());
    assert_eq!(h.stat(Stat::tx_packets), tally.ok + 1);
    assert_eq!(h.stat(Stat::tx_errors), tally.faults);
    tally
}

/// Every frame is a valid segment; every payload byte comes from a
/// candidate page, and all bytes of one virtual page come from one page.
fn check_frames(f: &[Vec<u8>], len: usize) {
    assert_eq!(f.len(), len.div_ceil(usize::from(MSS)), "segment count");
    let mut payload = Vec::with_capacity(len);
    for fr in f {
        payload.extend(frames::check_l4(fr));
    }
    assert_eq!(payload.len(), len);
    for (p, page) in payload.chunks(4096).enumerate() {
        let v = page[0];
        assert!(
            (FILL..FILL + CANDIDATES as u8).contains(&v),
            "virtual page {p} carries {v:#x}: not from a page that was ever mapped"
        );
        assert!(
            page.iter().all(|&b| b == v),
            "virtual page {p} mixes two physical pages in one packet"
        );
    }
}

/// Races for 1.5 s in `mode` (called `name` in the report) and checks that
/// both outcomes, whole packets and page faults, were seen.
fn race_sees_both_outcomes(mode: PagingMode, name: &str) {
    let t = race(mode, Duration::from_millis(1500));
    eprintln!(
        "{name}: {} OK, {} page faults, {} rewrites",
        t.ok, t.faults, t.rewrites
    );
    assert!(t.ok > 0 && t.faults > 0, "both outcomes seen");
}

#[test]
fn ptes_and_pdbr_rewritten_in_flight_4_level() {
    race_sees_both_outcomes(PagingMode::Level4, "4-level");
}

#[test]
fn ptes_and_pdbr_rewritten_in_flight_32_bit() {
    race_sees_both_outcomes(PagingMode::Bits32, "32-bit");
}
