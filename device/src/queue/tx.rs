//! The TX queue: reads descriptor chains, gathers their buffers (physical or
//! virtual), runs the offload engine and writes the completions back.

use log::{debug, warn};
use vm_memory::{Bytes, GuestAddress};

use crate::abi::{
    cmd, txstat, TxDesc, TxError, MAX_PKT, MAX_SG, TX_DESC_MAX_LEN, TX_DESC_SIZE,
    TX_DESC_STATUS_OFFSET,
};
use crate::counters::{Counters, Stat};
use crate::engine::dma::{phys_slices, DmaError, Translator};
use crate::engine::iotlb::Iotlb;
use crate::engine::mmu::{Fault, PagingMode};
use crate::engine::offload::{self, FrameSink, Request, Slice, Stream};
use crate::engine::rss::Rss;
use crate::engine::vnet::{self, VnetHdr};
use crate::host::backend::Backend;
use crate::host::memory::Mem;
use crate::queue::ring::Ring;

/// Sends frames to the backend as iovecs: the virtio-net header if the
/// backend has one, the frame's header, then guest-memory slices.
pub struct BackendSink<'a> {
    pub backend: &'a mut dyn Backend,
    pub iov: Vec<libc::iovec>,
    /// The backend queue for the current packet (None: the worker's own).
    pub queue: Option<usize>,
    /// The virtio-net header for the frames of the current packet.
    pub vnet: Option<[u8; vnet::LEN]>,
}

impl BackendSink<'_> {
    fn send(&mut self, vnet: Option<[u8; vnet::LEN]>, header: &[u8], payload: &[Slice]) -> bool {
        self.iov.clear();
        if let Some(v) = &vnet {
            self.iov.push(libc::iovec {
                iov_base: v.as_ptr() as *mut libc::c_void,
                iov_len: v.len(),
            });
        }
        if !header.is_empty() {
            self.iov.push(libc::iovec {
                iov_base: header.as_ptr() as *mut libc::c_void,
                iov_len: header.len(),
            });
        }
        self.iov.extend(payload.iter().map(|s| libc::iovec {
            iov_base: s.ptr as *mut libc::c_void,
            iov_len: s.len,
        }));
        match self.queue {
            Some(q) => self.backend.send_to(q, &self.iov).is_ok(),
            None => self.backend.send(&self.iov).is_ok(),
        }
    }
}

impl FrameSink for BackendSink<'_> {
    fn frame(&mut self, header: &[u8], payload: &[Slice]) -> bool {
        self.send(self.vnet, header, payload)
    }

    fn superpacket(&mut self, gso: &offload::Gso, header: &[u8], payload: &[Slice]) -> bool {
        if self.vnet.is_none() {
            return false;
        }
        let h = VnetHdr {
            flags: vnet::flags::NEEDS_CSUM,
            gso_type: gso.gso_type,
            hdr_len: gso.hdr_len,
            gso_size: gso.gso_size,
            csum_start: gso.csum_start,
            csum_offset: gso.csum_offset,
        };
        self.send(Some(h.to_bytes()), header, payload)
    }
}

/// What the device puts on the backend for a TSO/USO packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TxMode {
    /// Segment in the device: only MTU frames reach the backend.
    #[default]
    Wire,
    /// Hand TSO/USO superpackets to the backend in one write, with their
    /// GSO metadata in the virtio-net header (needs a vnet-header backend).
    Handoff,
}

/// Everything one TX pass needs.
pub struct TxPass<'a> {
    pub mem: &'a Mem,
    pub iotlb: &'a mut Iotlb,
    pub counters: &'a Counters,
    pub mtu: u32,
    pub mode: TxMode,
    /// With RSS over several pairs: each packet goes out on the backend
    /// queue of the pair that RSS picks for its replies, so that the host
    /// (a multi-queue TAP learns a flow's queue from what it is sent) hands
    /// every flow back on one queue, to the worker that delivers it, and no
    /// flow is split between two workers (which would reorder it).
    pub pin: Option<(&'a Rss, usize)>,
    /// Faults seen in this pass, for the fault log.
    pub faults: Vec<Fault>,
    /// A descriptor ring or status write fell outside guest RAM.
    pub ring_error: bool,
}

/// Outcome of one chain.
struct Chain {
    descs: usize,
    result: Result<offload::Emitted, TxError>,
}

impl TxPass<'_> {
    fn read_desc(&self, ring: &Ring, idx: u32) -> Option<TxDesc> {
        self.mem
            .read_obj::<TxDesc>(GuestAddress(ring.slot_addr(idx, TX_DESC_SIZE)))
            .ok()
    }

    /// Gathers one chain starting at `ring.head` into `slices`.
    fn gather(&mut self, ring: &Ring, first: &TxDesc, slices: &mut Vec<Slice>) -> Chain {
        let mut idx = ring.head;
        let mut desc = *first;
        let mut n = 0usize;
        let mut total = 0usize;
        let mut err: Option<TxError> = None;
        loop {
            n += 1;
            if err.is_none() {
                err = self.add_buffer(&desc, &mut total, n, slices).err();
            }
            if desc.cmd & cmd::EOP != 0 {
                break;
            }
            idx = ring.next(idx);
            if idx == ring.tail {
                // The doorbell published a chain without its end.
                err = Some(TxError::NoEop);
                break;
            }
            match self.read_desc(ring, idx) {
                Some(d) => desc = d,
                None => {
                    self.ring_error = true;
                    err = Some(TxError::Dma);
                    break;
                }
            }
        }
        Chain {
            descs: n,
            result: err.map_or(Ok(Default::default()), Err),
        }
    }

    fn add_buffer(
        &mut self,
        d: &TxDesc,
        total: &mut usize,
        n: usize,
        slices: &mut Vec<Slice>,
    ) -> Result<(), TxError> {
        if n > MAX_SG {
            return Err(TxError::TooManySg);
        }
        if d.len == 0 || d.len > TX_DESC_MAX_LEN || d.cmd & !cmd::VALID != 0 {
            self.counters.inc(Stat::bad_descs);
            return Err(TxError::BadDesc);
        }
        *total += d.len as usize;
        if *total > MAX_PKT {
            return Err(TxError::TooBig);
        }
        if d.cmd & cmd::VM != 0 {
            self.counters.inc(Stat::tx_va_descs);
            let mode = PagingMode::from_cmd_field((d.cmd & cmd::PGMODE_MASK) >> cmd::PGMODE_SHIFT);
            let mut t = Translator {
                mem: self.mem,
                iotlb: self.iotlb,
                counters: self.counters,
            };
            t.virt_slices(d.pdbr, mode, d.addr, u64::from(d.len), slices)
                .map_err(|e| match e {
                    DmaError::Fault(f) => {
                        self.counters.inc(Stat::page_faults);
                        self.faults.push(f);
                        TxError::PageFault
                    }
                    DmaError::OutOfRam { .. } => TxError::Dma,
                })
        } else {
            phys_slices(self.mem, d.addr, u64::from(d.len), slices).map_err(|_| {
                self.counters.inc(Stat::dma_errors);
                TxError::Dma
            })
        }
    }

    fn complete(&mut self, ring: &Ring, descs: usize, err: TxError) {
        let word = u32::from(txstat::DD) | (u32::from(err as u16) << 16);
        let mut idx = ring.head;
        for _ in 0..descs {
            let at = ring.slot_addr(idx, TX_DESC_SIZE) + TX_DESC_STATUS_OFFSET;
            if self.mem.write_obj(word, GuestAddress(at)).is_err() {
                self.ring_error = true;
            }
            idx = ring.next(idx);
        }
    }

    /// Processes published chains, at most `budget` packets, and stops
    /// early when `interrupted()` (checked between packets) says so.
    /// Returns the number of packets completed.
    pub fn run(
        &mut self,
        ring: &mut Ring,
        backend: &mut dyn Backend,
        budget: usize,
        interrupted: &dyn Fn() -> bool,
    ) -> usize {
        let mut slices = Vec::with_capacity(64);
        let has_vnet = backend.vnet_hdr_len() == vnet::LEN;
        let mut sink = BackendSink {
            backend,
            iov: Vec::with_capacity(64),
            vnet: None,
            queue: None,
        };
        let mut done = 0;
        // At most ring.size descriptors are between head and tail, and each
        // chain consumes at least one, so this loop is bounded, and the
        // budget bounds it further.
        while ring.head != ring.tail && done < budget && !interrupted() {
            let Some(first) = self.read_desc(ring, ring.head) else {
                warn!("TX ring at {:#x} is outside guest RAM", ring.base);
                self.ring_error = true;
                self.counters.inc(Stat::dma_errors);
                ring.head = ring.tail;
                break;
            };
            slices.clear();
            let chain = self.gather(ring, &first, &mut slices);
            let result = chain.result.and_then(|_| {
                // SAFETY: the slices point into `self.mem`, a snapshot of guest
                // RAM that stays mapped for this whole pass.
                let stream = unsafe { Stream::new(&slices) };
                let req = request(&first, self.mtu);
                sink.vnet = has_vnet.then(|| vnet_for(&req).to_bytes());
                sink.queue = self.pin.and_then(|(rss, n)| {
                    let mut hdr = [0u8; 128];
                    let len = stream.copy_out(0, &mut hdr);
                    rss.reply_hash(&hdr[..len]).map(|h| rss.queue(h, n))
                });
                if has_vnet && self.mode == TxMode::Handoff {
                    if let Some(e) = offload::handoff(&stream, &req, &mut sink)? {
                        self.counters.inc(Stat::tx_handoff_packets);
                        return Ok(e);
                    }
                }
                offload::process(&stream, &req, &mut sink)
            });
            let err = match result {
                Ok(e) => {
                    self.count_ok(&first, e);
                    TxError::Ok
                }
                Err(e) => {
                    debug!("TX packet at {} failed: {e:?}", ring.head);
                    self.counters.inc(Stat::tx_errors);
                    if e == TxError::Backend {
                        self.counters.inc(Stat::backend_errors);
                    }
                    e
                }
            };
            self.complete(ring, chain.descs, err);
            ring.head = ring.advance(ring.head, chain.descs as u32);
            done += 1;
        }
        done
    }

    fn count_ok(&self, first: &TxDesc, e: offload::Emitted) {
        let c = self.counters;
        c.inc(Stat::tx_packets);
        c.add(Stat::tx_frames, e.frames);
        c.add(Stat::tx_bytes, e.bytes);
        if first.cmd & cmd::TSO != 0 {
            c.inc(Stat::tx_tso_packets);
            c.add(Stat::tx_tso_segments, e.frames);
        }
        if first.cmd & cmd::USO != 0 {
            c.inc(Stat::tx_uso_packets);
        }
        if first.cmd & cmd::UFO != 0 {
            c.inc(Stat::tx_ufo_packets);
        }
        if first.cmd & (cmd::IPCSUM | cmd::L4CSUM | cmd::TSO | cmd::USO | cmd::UFO) != 0 {
            c.add(Stat::tx_csum_offload, e.frames);
        }
    }
}

/// The virtio-net header of a segmented or checksummed frame: DATA_VALID
/// when the device wrote its L4 checksum (not for IPv4 fragments, whose
/// UDP checksum only the reassembled datagram can show).
fn vnet_for(req: &Request) -> VnetHdr {
    if (req.l4_csum || req.tso || req.uso) && !req.ufo {
        VnetHdr::data_valid()
    } else {
        VnetHdr::default()
    }
}

fn request(first: &TxDesc, mtu: u32) -> Request {
    Request {
        tso: first.cmd & cmd::TSO != 0,
        uso: first.cmd & cmd::USO != 0,
        ufo: first.cmd & cmd::UFO != 0,
        ip_csum: first.cmd & cmd::IPCSUM != 0,
        l4_csum: first.cmd & cmd::L4CSUM != 0,
        snapshot: first.cmd & cmd::SNAPSHOT != 0,
        mss: first.mss,
        mtu,
    }
}
