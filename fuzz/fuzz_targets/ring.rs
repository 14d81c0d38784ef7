//! Ring configuration and descriptor views: `ring::Ring` on arbitrary
//! base/size/head/tail registers, and TX/RX descriptors read from arbitrary
//! bytes through their `ByteValued` views.
//!
//! Checked: no panic (no overflow, no division by zero); `is_valid` implies a
//! power-of-two size in RING_MIN..=RING_MAX, an aligned base and no wrap of
//! the address space; on a valid ring `pending`, `next` and `advance` stay
//! below the size, slot addresses stay inside the ring, and stepping `next`
//! `pending` times from head reaches tail; a descriptor view reads back the
//! bytes it came from (little-endian fields at the ABI offsets).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use vm_memory::ByteValued;
use vmso_device::abi::{RxDesc, TxDesc, RING_MAX, RING_MIN, RX_DESC_SIZE, TX_DESC_SIZE};
use vmso_device::queue::ring::Ring;

#[derive(Arbitrary, Debug)]
struct Input {
    base: u64,
    size: u32,
    head: u32,
    tail: u32,
    steps: Vec<u32>,
    desc: [u8; 32],
}

fuzz_target!(|inp: Input| {
    let mut r = Ring {
        base: inp.base,
        size: inp.size,
        head: inp.head,
        tail: inp.tail,
    };
    check_descs(&inp.desc);
    if !r.is_valid() {
        return;
    }
    assert!(r.size.is_power_of_two() && (RING_MIN..=RING_MAX).contains(&r.size));
    assert_eq!(r.base % 16, 0);
    let end = r.base.checked_add(u64::from(r.size) * 32).expect("no wrap");
    // Registers as the guest writes them may be out of range: the device
    // masks them, and every result is an index.
    r.head &= r.size - 1;
    r.tail &= r.size - 1;
    let p = r.pending();
    assert!(p < r.size);
    let mut i = r.head;
    for _ in 0..p {
        i = r.next(i);
    }
    assert_eq!(i, r.tail);
    for &n in inp.steps.iter().take(32) {
        let a = r.advance(r.head, n);
        assert!(a < r.size);
        assert_eq!(a, (r.head as u64 + n as u64) as u32 & (r.size - 1));
        for ds in [TX_DESC_SIZE, RX_DESC_SIZE] {
            let s = r.slot_addr(a, ds);
            assert!(s >= r.base && s + ds <= end);
        }
    }
});

fn check_descs(b: &[u8; 32]) {
    let t = TxDesc::from_slice(b).expect("32 bytes");
    assert_eq!(t.as_slice(), b);
    assert_eq!(t.addr, u64::from_le_bytes(b[0..8].try_into().unwrap()));
    assert_eq!(t.len, u32::from_le_bytes(b[16..20].try_into().unwrap()));
    assert_eq!(t.cmd, u16::from_le_bytes(b[22..24].try_into().unwrap()));
    assert_eq!(t.status, u16::from_le_bytes(b[24..26].try_into().unwrap()));
    let r = RxDesc::from_slice(b).expect("32 bytes");
    assert_eq!(r.as_slice(), b);
    assert_eq!(r.buf_len, u32::from_le_bytes(b[8..12].try_into().unwrap()));
    assert_eq!(r.status, u16::from_le_bytes(b[16..18].try_into().unwrap()));
    assert_eq!(r.gso_type, b[22]);
}
