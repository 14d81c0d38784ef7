//! The RX queue: places frames into guest-posted buffers and writes back
//! length, checksum verdicts and GSO metadata.

use vm_memory::{Bytes, GuestAddress};

use crate::abi::{rxstat, RxDesc, GSO_TYPE_NONE, RX_BUF_MAX, RX_BUF_MIN, RX_DESC_SIZE};
use crate::counters::{Counters, Stat};
use crate::engine::verdict::RxMeta;
use crate::host::memory::Mem;
use crate::queue::ring::Ring;

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
