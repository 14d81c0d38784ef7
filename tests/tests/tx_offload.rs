//! TX through the whole device: page tables in every paging mode, a physical
//! header followed by virtual payload over scattered 4 KiB pages and across
//! 2 MiB, 4 MiB and 1 GiB pages; frames checked with etherparse.

use vmso_device::abi::{cmd, TxError};
use vmso_device::counters::Stat;
use vmso_device::engine::mmu::PagingMode;
use vmso_tests::frames::{self, TcpOpts};
use vmso_tests::pagetable::AddressSpace;
use vmso_tests::*;

const MSS: u16 = 1448;
const ALL_MODES: [PagingMode; 4] = [
    PagingMode::Bits32,
    PagingMode::Pae,
    PagingMode::Level4,
    PagingMode::Level5,
];

/// A user-like VA for the mode.
fn base_va(mode: PagingMode) -> u64 {
    match mode {
        PagingMode::Bits32 | PagingMode::Pae => 0x0804_8000,
        PagingMode::Level4 => 0x7f12_3450_0000,
        PagingMode::Level5 => 0x00ab_cdef_1230_0000,
    }
}

/// Maps `len` bytes at `va` (page-aligned start) onto shuffled, non-contiguous
/// 4 KiB physical pages and writes `data` through that mapping.
fn map_scattered(h: &mut Harness, asp: &AddressSpace, va: u64, data: &[u8], seed: u64) {
    let pages = data.len().div_ceil(4096) + 1;
    for i in 0..pages {
        // Reverse order, every other page: never physically contiguous.
        let gpa = DATA_POOL + seed * 0x40_0000 + ((pages - i) as u64) * 8192;
        asp.map(&h.mem, &mut h.pt, va + i as u64 * 4096, gpa, 12);
    }
    write_virt(h, asp, va, data);
}

/// Writes through the guest page tables, walking them with the builder's
/// own knowledge (not the device's walker).
fn write_virt(h: &Harness, asp: &AddressSpace, va: u64, data: &[u8]) {
    let mut off = 0;
    while off < data.len() {
        let a = va + off as u64;
        let gpa = soft_translate(h, asp, a);
        let n = (4096 - (a & 0xfff) as usize).min(data.len() - off);
        h.write(gpa, &data[off..off + n]);
        off += n;
    }
}

/// Independent software walk used only to place test data.
fn soft_translate(h: &Harness, asp: &AddressSpace, va: u64) -> u64 {
    use vm_memory::{Bytes, GuestAddress};
    let r64 = |a: u64| -> u64 { h.mem.read_obj(GuestAddress(a)).unwrap() };
    let m = 0x000f_ffff_ffff_f000u64;
    match asp.mode {
        PagingMode::Level4 | PagingMode::Level5 => {
            let levels = if asp.mode == PagingMode::Level5 { 5 } else { 4 };
            let mut t = asp.pdbr;
            for level in (1..=levels).rev() {
                let s = 12 + 9 * (level - 1);
                let e = r64(t + ((va >> s) & 0x1ff) * 8);
                if level == 1 || e & 0x80 != 0 {
                    return (e & m & !((1u64 << s) - 1)) | (va & ((1u64 << s) - 1));
                }
                t = e & m;
            }
            unreachable!()
        }
        PagingMode::Pae => {
            let pd = r64(asp.pdbr + ((va >> 30) & 3) * 8) & m;
            let e = r64(pd + ((va >> 21) & 0x1ff) * 8);
            if e & 0x80 != 0 {
                return (e & m & !0x1f_ffff) | (va & 0x1f_ffff);
            }
            (r64((e & m) + ((va >> 12) & 0x1ff) * 8) & m) | (va & 0xfff)
        }
        PagingMode::Bits32 => {
            let r32 =
                |a: u64| -> u64 { u64::from(h.mem.read_obj::<u32>(GuestAddress(a)).unwrap()) };
            let e = r32(asp.pdbr + ((va >> 22) & 0x3ff) * 4);
            if e & 0x80 != 0 {
                return (e & 0xffc0_0000) | (va & 0x3f_ffff);
            }
            (r32((e & 0xffff_f000) + ((va >> 12) & 0x3ff) * 4) & 0xffff_f000) | (va & 0xfff)
        }
    }
}

/// Sends `payload` (already mapped at `va`) behind a physical TCP header,
/// split into `parts` virtual descriptors, with TSO; checks every frame.
fn tso_send(
    h: &mut Harness,
    asp: &AddressSpace,
    va: u64,
    payload: &[u8],
    parts: usize,
    o: TcpOpts,
) {
    // MSS as a stack computes it: what the MTU leaves after the headers.
    let hdr_l3 = frames::tcp_template(o).len() - 14;
    let mss = (1500 - hdr_l3).min(usize::from(MSS)) as u16;
    let hdr = frames::tcp_template(o);
    h.write(HDR_BUF, &hdr);
    let mut descs = vec![desc(HDR_BUF, hdr.len() as u32, cmd::TSO)];
    descs[0].mss = mss;
    let step = payload.len().div_ceil(parts);
    let mut off = 0;
    while off < payload.len() {
        let n = step.min(payload.len() - off);
        descs.push(vdesc(va + off as u64, n as u32, 0, asp.pdbr, asp.mode));
        off += n;
    }
    descs.last_mut().unwrap().cmd |= cmd::EOP;
    assert_eq!(h.send(&descs), TxError::Ok as u16);
    frames::check_tso(&h.frames(), payload, usize::from(mss), o);
}

#[test]
fn tso_over_scattered_4k_pages_in_every_paging_mode() {
    let mut h = Harness::new();
    for (k, mode) in ALL_MODES.into_iter().enumerate() {
        let asp = AddressSpace::new(&h.mem, &mut h.pt, mode);
        let payload = pattern(64000, k as u8);
        let va = base_va(mode);
        map_scattered(&mut h, &asp, va, &payload, k as u64);
        // Start the buffer at an odd offset inside its first page.
        let odd = pattern(64000 - 0x235, k as u8 ^ 0x5a);
        write_virt(&h, &asp, va + 0x235, &odd);
        let o = TcpOpts {
            psh: true,
            fin: true,
            cwr: true,
            ..Default::default()
        };
        tso_send(&mut h, &asp, va + 0x235, &odd, 3, o);
    }
    assert!(h.stat(Stat::va_translations) >= 4 * 16);
    assert_eq!(h.stat(Stat::page_faults), 0);
    assert_eq!(h.stat(Stat::tx_tso_packets), 4);
}

#[test]
fn tso_ipv4_options_tcp_options_and_ipv6() {
    let mut h = Harness::new();
    let asp = AddressSpace::new(&h.mem, &mut h.pt, PagingMode::Level4);
    let payload = pattern(50001, 9);
    map_scattered(&mut h, &asp, 0x4000_0000, &payload, 0);
    for o in [
        TcpOpts {
            ip_options: true,
            tcp_options: true,
            psh: true,
            ..Default::default()
        },
        TcpOpts {
            v6: true,
            tcp_options: true,
            fin: true,
            ..Default::default()
        },
    ] {
        tso_send(&mut h, &asp, 0x4000_0000, &payload, 5, o);
    }
}

/// Payload that runs from 4 KiB pages into a large page.
fn large_page_case(mode: PagingMode, small_va_end: u64, large_gpa: u64, shift: u32) {
    let mut h = Harness::new();
    let asp = AddressSpace::new(&h.mem, &mut h.pt, mode);
    // Two 4 KiB pages just below the boundary, then one large page.
    for i in 1..=2u64 {
        asp.map(
            &h.mem,
            &mut h.pt,
            small_va_end - i * 4096,
            DATA_POOL + i * 0x3000,
            12,
        );
    }
    asp.map(&h.mem, &mut h.pt, small_va_end, large_gpa, shift);
    let va = small_va_end - 5000;
    let payload = pattern(60000, shift as u8);
    write_virt(&h, &asp, va, &payload);
    tso_send(&mut h, &asp, va, &payload, 2, TcpOpts::default());
    assert_eq!(h.stat(Stat::page_faults), 0);
}

#[test]
fn tso_across_2m_pages() {
    large_page_case(PagingMode::Pae, 0x4000_0000, 0x0800_0000, 21);
    large_page_case(PagingMode::Level4, 0x7f00_0000_0000, 0x0800_0000, 21);
    large_page_case(
        PagingMode::Level5,
        0x0100_0000_0000_0000 - (1 << 30),
        0x0800_0000,
        21,
    );
}

#[test]
fn tso_across_4m_page_32bit() {
    large_page_case(PagingMode::Bits32, 0x0080_0000, 0x0c00_0000, 22);
}

#[test]
fn tso_across_1g_pages() {
    // The 1 GiB page maps guest-physical 1 GiB, the second DMA region.
    large_page_case(PagingMode::Level4, 0x40_0000_0000, REGION_SPLIT, 30);
    large_page_case(PagingMode::Level5, 0x0080_0000_0000_0000, REGION_SPLIT, 30);
}

#[test]
fn physical_buffer_across_dma_regions() {
    let mut h = Harness::new();
    let hdr = frames::tcp_template(TcpOpts::default());
    let payload = pattern(9000, 3);
    h.write(HDR_BUF, &hdr);
    let at = REGION_SPLIT - 4000;
    h.write(at, &payload);
    let mut d0 = desc(HDR_BUF, hdr.len() as u32, cmd::TSO);
    d0.mss = MSS;
    assert_eq!(h.send(&[d0, desc(at, 9000, cmd::EOP)]), 0);
    frames::check_tso(&h.frames(), &payload, usize::from(MSS), TcpOpts::default());
}

#[test]
fn checksum_offload_without_tso() {
    let mut h = Harness::new();
    let asp = AddressSpace::new(&h.mem, &mut h.pt, PagingMode::Level4);
    for v6 in [false, true] {
        let mut hdr = frames::tcp_template(TcpOpts {
            v6,
            ..Default::default()
        });
        let payload = pattern(1001, 4);
        // Fix the IP lengths as a stack would for a non-TSO frame.
        let l3 = if v6 { 14 + 4 } else { 14 + 2 };
        let len = if v6 { 20 + 1001 } else { 20 + 20 + 1001 };
        hdr[l3..l3 + 2].copy_from_slice(&(len as u16).to_be_bytes());
        h.write(HDR_BUF, &hdr);
        map_scattered(&mut h, &asp, 0x1000_0000, &payload, 2);
        let descs = [
            desc(HDR_BUF, hdr.len() as u32, cmd::IPCSUM | cmd::L4CSUM),
            vdesc(0x1000_0000, 1001, cmd::EOP, asp.pdbr, asp.mode),
        ];
        assert_eq!(h.send(&descs), 0);
        let f = h.frames();
        assert_eq!(f.len(), 1);
        assert_eq!(frames::check_l4(&f[0]), payload);
    }
}

#[test]
fn udp_segmentation_uso() {
    let mut h = Harness::new();
    for v6 in [false, true] {
        let hdr = frames::udp_template(v6);
        let payload = pattern(20000, 5);
        let d = h.offload(&hdr, &payload, cmd::USO, 1400);
        assert_eq!(h.send(&d), 0);
        let f = h.frames();
        assert_eq!(f.len(), 20000usize.div_ceil(1400));
        let mut got = Vec::new();
        for fr in &f {
            let p = frames::check_l4(fr);
            assert!(p.len() <= 1400);
            got.extend(p);
        }
        assert!(got == payload);
    }
    assert_eq!(h.stat(Stat::tx_uso_packets), 2);
}

#[test]
fn udp_fragmentation_ufo() {
    let mut h = Harness::new();
    let hdr = frames::udp_template(false);
    let payload = pattern(30000, 6);
    let d = h.offload(&hdr, &payload, cmd::UFO, 1480);
    assert_eq!(h.send(&d), 0);
    let f = h.frames();
    assert_eq!(f.len(), (30000usize + 8).div_ceil(1480));
    assert!(frames::reassemble_ufo(&f, 1480) == payload);
    assert_eq!(h.stat(Stat::tx_ufo_packets), 1);
}

#[test]
fn plain_frame_passes_through_untouched() {
    let mut h = Harness::new();
    let frame = pattern(600, 7);
    h.write(DATA_POOL, &frame[..100]);
    h.write(DATA_POOL + 0x10000, &frame[100..]);
    assert_eq!(
        h.send(&[
            desc(DATA_POOL, 100, 0),
            desc(DATA_POOL + 0x10000, 500, cmd::EOP)
        ]),
        0
    );
    assert_eq!(h.frames(), vec![frame]);
    assert_eq!(h.stat(Stat::tx_packets), 1);
}

#[test]
fn many_packets_one_doorbell() {
    let mut h = Harness::new();
    let hdr = frames::tcp_template(TcpOpts::default());
    let d = h.offload(&hdr, &pattern(3000, 8), cmd::TSO, MSS);
    let mut last = 0;
    for _ in 0..100 {
        last = h.post(&d) + 1;
    }
    h.doorbell();
    assert_eq!(h.wait_done(last), 0);
    assert_eq!(h.frames().len(), 300);
    assert_eq!(h.stat(Stat::tx_frames), 300);
}

#[test]
fn snapshot_frames_stay_consistent_while_the_buffer_changes() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let mut h = Harness::new();
    let hdr = frames::tcp_template(TcpOpts::default());
    let d = h.offload(&hdr, &pattern(30000, 1), cmd::TSO | cmd::SNAPSHOT, MSS);
    // A "user" thread keeps rewriting the payload while the device sends it.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (mem, stop) = (h.mem.clone(), stop.clone());
        std::thread::spawn(move || {
            use vm_memory::{Bytes, GuestAddress};
            let mut seed = 0u8;
            while !stop.load(Ordering::Relaxed) {
                seed = seed.wrapping_add(1);
                mem.write_slice(&pattern(30000, seed), GuestAddress(DATA_POOL))
                    .unwrap();
            }
        })
    };
    let mut frames_seen = 0;
    for _ in 0..40 {
        assert_eq!(h.send(&d), 0);
        for f in h.frames() {
            frames::check_l4(&f); // checksums match the bytes sent
            frames_seen += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert_eq!(frames_seen, 40 * 30000usize.div_ceil(usize::from(MSS)));
}
