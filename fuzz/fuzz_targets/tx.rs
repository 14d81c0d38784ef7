//! TX descriptor-chain processing (`tx::TxPass::run`) over an arbitrary ring
//! and arbitrary guest RAM, with a test backend that counts frames.
//!
//! Kept small and isolated on purpose: the TxPass API is being reworked, and
//! only `run_pass` below touches it.
//!
//! Checked: no panic; the pass consumes every published descriptor (head ends
//! at tail) and completes at most that many packets; every frame the backend
//! gets is readable (each iovec is copied) and at most MTU + 18 bytes; the
//! frames counter matches what the backend saw.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmso_device::abi::{cmd, TxDesc, MTU_MAX, MTU_MIN};
use vmso_device::counters::{Counters, Stat};
use vmso_device::engine::iotlb::Iotlb;
use vmso_device::queue::ring::Ring;

const RAM: usize = 0x10000;
/// The ring lives in the last 4 KiB; descriptors of up to 128 slots fit.
const RING_BASE: u64 = 0xf000;

#[derive(Arbitrary, Debug)]
struct Desc {
    /// A RAM offset (mod RAM), unless `raw_addr` gives any address.
    addr: u32,
    raw_addr: Option<u64>,
    pdbr: u16,
    len: u16,
    mss: u16,
    cmd: u16,
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// log2 of the ring size, taken mod 4, plus 3: 8..64 slots.
    size_log: u8,
    head: u8,
    tail: u8,
    mtu: u16,
    descs: Vec<Desc>,
    /// Guest RAM contents (page tables, headers, payload): (offset, bytes).
    ram: Vec<(u16, Vec<u8>)>,
    /// A frame header written at RAM offset 0 to give the engine something
    /// parseable.
    frame: vmso_fuzz::FrameSpec,
}

/// A backend that copies and counts what it is sent.
struct Counting {
    frames: u64,
    max: usize,
}

impl vmso_device::host::backend::Backend for Counting {
    fn send(&mut self, iov: &[libc::iovec]) -> std::io::Result<usize> {
        let mut n = 0;
        for v in iov {
            // SAFETY: TxPass hands out iovecs over guest RAM it keeps mapped
            // for the pass, or over its own header buffer: all readable.
            let b = unsafe { std::slice::from_raw_parts(v.iov_base as *const u8, v.iov_len) };
            std::hint::black_box(b.iter().map(|&x| u64::from(x)).sum::<u64>());
            n += b.len();
        }
        assert!(
            n <= self.max,
            "frame of {n} bytes over MTU+18 ({})",
            self.max
        );
        self.frames += 1;
        Ok(n)
    }
    fn recv(&mut self, _buf: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::ErrorKind::WouldBlock.into())
    }
    fn fd(&self) -> std::os::fd::RawFd {
        -1
    }
}

fuzz_target!(|inp: Input| {
    thread_local! {
        static MEM: GuestMemoryMmap =
            GuestMemoryMmap::from_ranges(&[(GuestAddress(0), RAM)]).unwrap();
    }
    MEM.with(|mem| run(mem, inp));
});

fn run(mem: &GuestMemoryMmap, inp: Input) {
    mem.write_slice(&vec![0u8; RAM], GuestAddress(0)).unwrap();
    let f = inp.frame.bytes(0x8000);
    mem.write_slice(&f[..f.len().min(0xf000)], GuestAddress(0))
        .unwrap();
    for (off, b) in inp.ram.iter().take(16) {
        let off = usize::from(*off);
        let n = b.len().min(RAM - off);
        mem.write_slice(&b[..n], GuestAddress(off as u64)).unwrap();
    }
    let size = 8u32 << (inp.size_log % 4);
    for (i, d) in inp.descs.iter().take(size as usize).enumerate() {
        let desc = TxDesc {
            addr: d.raw_addr.unwrap_or(u64::from(d.addr) % RAM as u64),
            // 4 KiB-aligned (odd input) or PAE 32-byte aligned, inside RAM.
            pdbr: u64::from(d.pdbr) & if d.pdbr & 1 != 0 { 0xf000 } else { 0xffe0 },
            len: u32::from(d.len),
            mss: d.mss,
            // Mostly valid bits, so the chain gets past the first check.
            cmd: d.cmd & (cmd::VALID | if d.cmd & 0x8000 != 0 { 0xfc00 } else { 0 }),
            ..Default::default()
        };
        mem.write_obj(desc, GuestAddress(RING_BASE + 32 * i as u64))
            .unwrap();
    }
    let mut ring = Ring {
        base: RING_BASE,
        size,
        head: u32::from(inp.head) % size,
        tail: u32::from(inp.tail) % size,
    };
    assert!(ring.is_valid());
    let mtu = MTU_MIN + u32::from(inp.mtu) % (MTU_MAX - MTU_MIN + 1);
    let pending = ring.pending();
    let counters = Counters::default();
    let mut backend = Counting {
        frames: 0,
        max: mtu as usize + 18,
    };
    let done = run_pass(mem, &counters, mtu, &mut ring, &mut backend);
    assert_eq!(ring.head, ring.tail, "every published descriptor consumed");
    assert!(
        done as u32 <= pending,
        "{done} packets from {pending} descriptors"
    );
    assert_eq!(counters.get(Stat::tx_frames), backend.frames);
}

/// The one place that knows the TxPass API.
fn run_pass(
    mem: &GuestMemoryMmap,
    counters: &Counters,
    mtu: u32,
    ring: &mut Ring,
    backend: &mut Counting,
) -> usize {
    let mut iotlb = Iotlb::default();
    let mut pass = vmso_device::queue::tx::TxPass {
        mem,
        iotlb: &mut iotlb,
        counters,
        mtu,
        mode: vmso_device::queue::tx::TxMode::Wire,
        pin: None,
        faults: Vec::new(),
        ring_error: false,
    };
    pass.run(ring, backend, usize::MAX, &|| false)
}
