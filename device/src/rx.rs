//! The RX queue: places frames into guest-posted buffers and writes back
//! length, checksum verdicts and GSO metadata.

use vm_memory::{Bytes, GuestAddress};

use crate::abi::{rxstat, RxDesc, GSO_TYPE_NONE, RX_BUF_MAX, RX_BUF_MIN, RX_DESC_SIZE};
use crate::counters::{Counters, Stat};
use crate::csum;
use crate::memory::Mem;
use crate::ring::Ring;
use crate::wire::{self, L3, L4};

/// What the device learned about a frame before delivering it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxMeta {
    pub status: u16,
    pub gso_size: u16,
    pub gso_segs: u16,
    pub gso_type: u8,
    /// RSS hash and [`crate::rss::HashType`] (0: none).
    pub hash: u32,
    pub hash_type: u8,
}

/// Verifies the checksums of a received frame: IP_OK / L4_OK / CSUM_ERR.
pub fn verify_checksums(frame: &[u8]) -> u16 {
    let Ok(h) = wire::parse(frame) else {
        return 0;
    };
    let l3_end = h.l3_off + h.ip_len;
    if l3_end > frame.len() || l3_end < h.hdr_len {
        return rxstat::CSUM_ERR;
    }
    let mut st = 0;
    if h.l3 == L3::Ipv4 {
        if csum::fold(csum::partial(&frame[h.l3_off..h.l4_off])) == 0xffff {
            st |= rxstat::IP_OK;
        } else {
            return rxstat::CSUM_ERR;
        }
    }
    if h.is_fragment {
        return st;
    }
    if h.l4 == L4::Udp && h.l3 == L3::Ipv4 && wire::be16(frame, h.l4_off + 6) == 0 {
        return st; // no UDP checksum to verify
    }
    let (src, dst) = h.addrs(frame);
    let l4 = &frame[h.l4_off..l3_end];
    let sum = csum::pseudo_header(src, dst, h.proto(), l4.len() as u32) + csum::partial(l4);
    if csum::fold(sum) == 0xffff {
        st | rxstat::L4_OK
    } else {
        st | rxstat::CSUM_ERR
    }
}

/// The verdict for a frame whose checksums the host vouched for (or the
/// device just wrote): IP_OK for IPv4, L4_OK for unfragmented TCP/UDP.
pub fn trusted_status(frame: &[u8]) -> u16 {
    let Ok(h) = wire::parse(frame) else {
        return 0;
    };
    let ip = if h.l3 == L3::Ipv4 { rxstat::IP_OK } else { 0 };
    if h.is_fragment {
        ip
    } else {
        ip | rxstat::L4_OK
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxOutcome {
    Delivered,
    /// Not enough buffers posted: nothing was written.
    NoBuffers,
    /// A posted buffer was malformed: the frame was dropped and the buffers
    /// up to the bad one handed back empty.
    BadBuffer,
    /// The ring itself is outside guest RAM.
    RingError,
}

fn buffer_ok(mem: &Mem, d: &RxDesc) -> bool {
    use vm_memory::GuestMemoryBackend;
    (RX_BUF_MIN..=RX_BUF_MAX).contains(&d.buf_len)
        && mem.check_range(GuestAddress(d.addr), d.buf_len as usize)
}

/// Writes `frame` into the buffers at `ring.head`, spanning several if needed.
/// Nothing is written unless the whole frame fits in the posted buffers.
pub fn deliver(
    mem: &Mem,
    ring: &mut Ring,
    counters: &Counters,
    frame: &[u8],
    meta: RxMeta,
) -> RxOutcome {
    // First pass: read and check the buffers the frame needs.
    let mut span: Vec<(u64, RxDesc)> = Vec::new();
    let mut need = frame.len();
    let mut idx = ring.head;
    let avail = ring.pending();
    while need > 0 {
        if span.len() as u32 == avail {
            return RxOutcome::NoBuffers;
        }
        let slot = ring.slot_addr(idx, RX_DESC_SIZE);
        let Ok(d) = mem.read_obj::<RxDesc>(GuestAddress(slot)) else {
            return RxOutcome::RingError;
        };
        span.push((slot, d));
        if !buffer_ok(mem, &d) {
            counters.inc(Stat::bad_descs);
            for (slot, mut d) in span.iter().copied() {
                d.len = 0;
                d.status = rxstat::DD | rxstat::EOP;
                let _ = mem.write_obj(d, GuestAddress(slot));
            }
            ring.head = ring.advance(ring.head, span.len() as u32);
            return RxOutcome::BadBuffer;
        }
        need -= need.min(d.buf_len as usize);
        idx = ring.next(idx);
    }
    // Second pass: copy and complete.
    let mut off = 0;
    let count = span.len();
    for (i, (slot, mut d)) in span.into_iter().enumerate() {
        let n = (d.buf_len as usize).min(frame.len() - off);
        if mem
            .write_slice(&frame[off..off + n], GuestAddress(d.addr))
            .is_err()
        {
            return RxOutcome::RingError; // checked above; only an unmap race gets here
        }
        off += n;
        d.len = n as u32;
        d.status = rxstat::DD;
        if i == 0 {
            d.status |= meta.status;
            d.gso_size = meta.gso_size;
            d.gso_segs = meta.gso_segs;
            d.gso_type = meta.gso_type;
            d.hash = meta.hash;
            d.hash_type = meta.hash_type;
        } else {
            d.gso_size = 0;
            d.gso_segs = 0;
            d.gso_type = GSO_TYPE_NONE;
            d.hash = 0;
            d.hash_type = 0;
        }
        if i + 1 == count {
            d.status |= rxstat::EOP;
        }
        // The data must be visible before the descriptor that says DD.
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        if mem.write_obj(d, GuestAddress(slot)).is_err() {
            return RxOutcome::RingError;
        }
    }
    ring.head = ring.advance(ring.head, count as u32);
    RxOutcome::Delivered
}
