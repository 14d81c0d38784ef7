//! One queue pair as its worker owns it: the TX and RX rings, the IOTLB, the
//! receive coalescer and the frames held for lack of RX buffers. Only the
//! worker thread touches it; the register file reaches it through
//! [`Cmd`]s and sees its indices through [`QueueRegs`].

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, info};
use vm_memory::{Bytes, GuestAddress, GuestAddressSpace, GuestMemoryAtomic};

use crate::abi::{
    cause, feat, iotlb_inv, notify, rxstat, GSO_TYPE_TCPV4, GSO_TYPE_TCPV6, MTU_DEFAULT,
};
use crate::counters::{Counters, Stat};
use crate::engine::coalesce::{self, Coalescer};
use crate::engine::iotlb::Iotlb;
use crate::engine::mmu::Fault;
use crate::engine::offload;
use crate::engine::rss::Rss;
use crate::engine::verdict::{self, RxMeta};
use crate::engine::vnet::{self, RxAction, VnetHdr};
use crate::engine::wire::{self, IpPacket};
use crate::host::backend::Backend;
use crate::host::memory::Mem;
use crate::queue::command::{Cmd, QueueConfig, RingConfig};
use crate::queue::ring::Ring;
use crate::queue::rx::{self, RxOutcome};
use crate::queue::shared::{QueueRegs, Shared};
use crate::queue::tx::{TxMode, TxPass};

/// TX packets per pass before the worker looks at its other events.
pub const TX_BUDGET: usize = 256;

pub struct QueuePair {
    /// Which queue pair this is.
    index: usize,
    shared: Arc<Shared>,
    ram: GuestMemoryAtomic<Mem>,
    cfg: QueueConfig,
    tx: Ring,
    rx: Ring,
    iotlb: Iotlb,
    coalescer: Coalescer,
    /// Frames waiting for RX buffers (see `RxDelivery`).
    rx_held: VecDeque<(Vec<u8>, RxMeta)>,
    tx_mode: TxMode,
    rss: Rss,
}

/// The delivery of received frames, over the pair's RX ring and held
/// frames. A macro rather than a method: the fields it borrows stay apart
/// from the coalescer, which the callers drive into it at the same time.
macro_rules! rx_delivery {
    ($q:ident, $mem:expr) => {
        RxDelivery {
            mem: $mem,
            ring: &mut $q.rx,
            counters: &$q.shared.queues[$q.index].counters,
            held: &mut $q.rx_held,
            rss: ($q.cfg.features & feat::RSS != 0).then_some(&$q.rss),
            ring_error: false,
        }
    };
}

fn ring(r: RingConfig) -> Ring {
    Ring {
        base: r.base,
        size: r.size,
        head: 0,
        tail: 0,
    }
}

impl QueuePair {
    pub fn new(
        index: usize,
        shared: Arc<Shared>,
        ram: GuestMemoryAtomic<Mem>,
        tx_mode: TxMode,
    ) -> Self {
        let flush = shared.queues[index].flush.clone();
        Self {
            index,
            shared,
            ram,
            cfg: QueueConfig {
                mtu: MTU_DEFAULT,
                ..Default::default()
            },
            tx: Ring::default(),
            rx: Ring::default(),
            iotlb: Iotlb::default(),
            coalescer: Coalescer::with_stats(coalesce::Params::default(), flush),
            rx_held: VecDeque::new(),
            tx_mode,
            rss: Rss::default(),
        }
    }

    pub fn index(&self) -> usize {
        self.index
    }

    fn counters(&self) -> &Counters {
        &self.shared.queues[self.index].counters
    }

    fn regs(&self) -> &QueueRegs {
        &self.shared.queues[self.index].regs
    }

    fn mem(&self) -> Arc<Mem> {
        self.ram.memory().into_inner()
    }

    /// Applies a command from the register file.
    pub fn apply(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Configure(c) => {
                let was = self.cfg.enabled;
                self.cfg = c;
                if c.enabled && !was {
                    self.tx = ring(c.tx);
                    self.rx = ring(c.rx);
                    self.regs().clear();
                    // Idle: the driver rings for its first posts.
                    self.set_kick(notify::TX_KICK, 1);
                    self.set_kick(notify::RX_KICK, 1);
                }
                if !c.enabled {
                    self.coalescer = self.coalescer.renewed();
                    self.rx_held.clear();
                }
            }
            Cmd::Rss(r) => self.rss = r,
            Cmd::Confine => {
                let trap = seccompiler::SeccompAction::Trap;
                if let Err(e) = crate::host::seccomp::install_thread(trap) {
                    log::error!("queue pair {}: seccomp filter: {e}", self.index);
                }
            }
            Cmd::Invalidate { op, pdbr, addr } => match op {
                iotlb_inv::ALL => self.iotlb.invalidate_all(),
                iotlb_inv::PDBR => self.iotlb.invalidate_pdbr(pdbr),
                _ => self.iotlb.invalidate_addr(pdbr, addr),
            },
            Cmd::Reset => {
                self.cfg = QueueConfig {
                    mtu: MTU_DEFAULT,
                    ..Default::default()
                };
                self.tx = Ring::default();
                self.rx = Ring::default();
                self.iotlb.invalidate_all();
                self.coalescer = self.coalescer.renewed();
                self.rx_held.clear();
                self.rss = Rss::default();
            }
        }
    }

    pub fn enabled(&self) -> bool {
        self.cfg.enabled
    }

    fn rx_csum_enabled(&self) -> bool {
        self.cfg.features & feat::RX_CSUM != 0
    }

    pub fn lro_enabled(&self) -> bool {
        self.cfg.features & feat::LRO != 0
    }

    /// The busy-poll window, when the driver uses the notify block.
    pub fn poll_window(&self) -> Option<Duration> {
        (self.cfg.enabled && self.cfg.notify != 0).then_some(self.cfg.poll)
    }

    fn notify_word(&self, off: u64) -> Option<u32> {
        if self.cfg.notify == 0 {
            return None;
        }
        self.mem()
            .read_obj::<u32>(GuestAddress(self.cfg.notify + off))
            .ok()
    }

    fn set_kick(&self, off: u64, v: u32) {
        if self.cfg.notify != 0
            && self
                .mem()
                .write_obj(v, GuestAddress(self.cfg.notify + off))
                .is_err()
        {
            self.counters().inc(Stat::dma_errors);
        }
    }

    /// Adopts a tail the driver published; a tail out of range is refused
    /// like a bad doorbell.
    fn adopt_tail(&mut self, t: u32, tx: bool) {
        let r = if tx { &mut self.tx } else { &mut self.rx };
        if r.size == 0 || t >= r.size {
            self.shared.queues[self.index]
                .counters
                .inc(Stat::bad_doorbells);
            self.shared.raise(cause::ERROR);
            return;
        }
        r.tail = t;
        let q = &self.shared.queues[self.index].regs;
        let shown = if tx { &q.tx_tail } else { &q.rx_tail };
        shown.store(t, Ordering::Release);
    }

    /// Takes the tails the driver published. With the notify block on, the
    /// block is the authority and a doorbell only wakes the worker: a
    /// posted register write can arrive after the block has moved on, and
    /// adopting its stale tail would replay old descriptors.
    pub fn sync_tails(&mut self) {
        if !self.cfg.enabled {
            return;
        }
        for tx in [true, false] {
            if let Some(t) = self.regs().take_doorbell(tx) {
                if self.cfg.notify == 0 {
                    self.adopt_tail(t, tx);
                }
            }
        }
        for (off, tx) in [(notify::TX_TAIL, true), (notify::RX_TAIL, false)] {
            if let Some(t) = self.notify_word(off) {
                let r = if tx { &self.tx } else { &self.rx };
                if t != r.tail {
                    self.adopt_tail(t, tx);
                }
            }
        }
    }

    /// The device is busy: no doorbells needed for TX.
    pub fn tx_active(&mut self) {
        self.set_kick(notify::TX_KICK, 0);
    }

    /// Going idle on TX: asks for doorbells, then looks once more (the
    /// driver publishes its tail before it reads the flag). True if work
    /// arrived meanwhile, in which case the flag is cleared again.
    pub fn tx_idle(&mut self) -> bool {
        self.ask_for_kicks(notify::TX_KICK, |q| &q.tx)
    }

    /// Out of RX buffers: asks for RX doorbells, then looks once more. True
    /// if buffers arrived meanwhile.
    pub fn rx_blocked(&mut self) -> bool {
        if self.cfg.notify == 0 {
            return false;
        }
        self.ask_for_kicks(notify::RX_KICK, |q| &q.rx)
    }

    /// Sets the doorbell flag at `kick`, then looks once more at `ring`
    /// (the driver publishes its tail before it reads the flag). True if
    /// entries arrived meanwhile, in which case the flag is cleared again.
    fn ask_for_kicks(&mut self, kick: u64, ring: fn(&Self) -> &Ring) -> bool {
        self.set_kick(kick, 1);
        std::sync::atomic::fence(Ordering::SeqCst);
        self.sync_tails();
        let r = ring(self);
        let arrived = self.cfg.enabled && r.head != r.tail;
        if arrived {
            self.set_kick(kick, 0);
        }
        arrived
    }

    pub fn rx_unblocked(&mut self) {
        self.set_kick(notify::RX_KICK, 0);
    }

    fn log_faults(&self, faults: &[Fault]) {
        let Some(last) = faults.last() else {
            return;
        };
        {
            let mut log = self.shared.fault();
            for f in faults {
                log.va = f.va;
                log.pdbr = f.pdbr;
                log.reason = f.reason as u32;
                log.count = log.count.wrapping_add(1);
                log.queue = self.index as u32;
            }
        }
        info!("TX translation fault on queue pair {}: {last}", self.index);
        self.shared.raise(cause::FAULT);
    }

    /// Services the TX ring, at most [`TX_BUDGET`] packets, stopping early
    /// when `interrupted` says a command waits. Returns (packets completed,
    /// work left).
    pub fn service_tx(
        &mut self,
        backend: &mut dyn Backend,
        interrupted: &dyn Fn() -> bool,
    ) -> (usize, bool) {
        if !self.cfg.enabled || self.tx.head == self.tx.tail {
            return (0, false);
        }
        let mem = self.mem();
        let mut ring = self.tx;
        let mut pass = TxPass {
            mem: &mem,
            iotlb: &mut self.iotlb,
            counters: &self.shared.queues[self.index].counters,
            mtu: self.cfg.mtu,
            mode: self.tx_mode,
            pin: (self.cfg.features & feat::RSS != 0 && self.cfg.queues > 1)
                .then_some((&self.rss, self.cfg.queues)),
            faults: Vec::new(),
            ring_error: false,
        };
        let done = pass.run(&mut ring, backend, TX_BUDGET, interrupted);
        let (faults, ring_error) = (std::mem::take(&mut pass.faults), pass.ring_error);
        self.tx.head = ring.head;
        self.regs().tx_head.store(ring.head, Ordering::Release);
        self.log_faults(&faults);
        if ring_error {
            self.shared.raise(cause::ERROR);
        }
        if done > 0 {
            self.shared.raise_queue(self.index, cause::TX);
        }
        (done, self.tx.head != self.tx.tail)
    }

    pub fn rx_held_len(&self) -> usize {
        self.rx_held.len()
    }

    /// Room for at least one frame in the RX ring, and nothing held back.
    pub fn rx_ready(&self) -> bool {
        self.cfg.enabled && self.rx.head != self.rx.tail && self.rx_held.is_empty()
    }

    /// Takes one read from the backend: a frame, preceded by a virtio-net
    /// header when `vnet_len` is not 0. A frame whose header does not hold
    /// up is dropped and counted. Returns false when the caller should stop
    /// reading until the next RX doorbell.
    pub fn receive_read(&mut self, buf: &mut [u8], vnet_len: usize, now: Instant) -> bool {
        if vnet_len == 0 {
            return self.receive(buf, None, now);
        }
        let parsed = VnetHdr::parse(buf).ok_or(vnet::VnetError::Short(buf.len()));
        let frame = buf.get_mut(vnet_len..).unwrap_or_default();
        match parsed.and_then(|h| vnet::classify(&h, frame)) {
            Err(e) => {
                debug!("dropped a frame from the backend: {e}");
                self.counters().inc(Stat::rx_vnet_bad);
                true
            }
            Ok(RxAction::Verify) => self.receive(frame, None, now),
            Ok(RxAction::Valid) => {
                let st = verdict::trusted_status(frame);
                self.receive(frame, Some(st), now)
            }
            Ok(RxAction::Complete { start, offset }) => {
                vnet::complete_csum(frame, start, offset);
                let st = verdict::trusted_status(frame);
                self.receive(frame, Some(st), now)
            }
            Ok(RxAction::Tcp { gso_size, v6 }) => {
                self.receive_superpacket(frame, gso_size, v6, now)
            }
        }
    }

    /// A TCP superpacket from the host (its headers checked by
    /// [`vnet::classify`]). With receive coalescing on, it goes to the guest
    /// whole, as a coalesced frame; otherwise the TSO engine cuts it into
    /// `gso_size` segments with their checksums, so that the guest still
    /// receives MTU frames.
    fn receive_superpacket(
        &mut self,
        frame: &mut [u8],
        gso_size: u16,
        v6: bool,
        now: Instant,
    ) -> bool {
        if !self.rx_ready() {
            return false;
        }
        self.counters().inc(Stat::rx_gso_packets);
        if !self.lro_enabled() {
            return self.segment_superpacket(frame, gso_size, now);
        }
        let Ok(h) = wire::parse(frame) else {
            return true; // classify parsed it already
        };
        if let IpPacket::V4(mut ip) = h.ip_mut(frame) {
            ip.fill_checksum();
        }
        let payload = frame.len() - h.hdr_len;
        let segs = payload
            .div_ceil(usize::from(gso_size))
            .min(usize::from(u16::MAX)) as u16;
        let mut meta = RxMeta {
            status: verdict::trusted_status(frame),
            ..Default::default()
        };
        if segs > 1 {
            meta.status |= rxstat::COALESCED;
            meta.gso_size = gso_size;
            meta.gso_segs = segs;
            meta.gso_type = if v6 { GSO_TYPE_TCPV6 } else { GSO_TYPE_TCPV4 };
        }
        self.counters().inc(Stat::rx_csum_ok);
        let mem = self.mem();
        let mut delivery = rx_delivery!(self, &mem);
        self.coalescer
            .flush_flow_of(frame, &mut |b, m| delivery.deliver(b, m));
        delivery.deliver(frame, meta);
        let e = delivery.ring_error;
        self.after_delivery(e)
    }

    fn segment_superpacket(&mut self, frame: &[u8], gso_size: u16, now: Instant) -> bool {
        let req = offload::Request::host_superpacket(gso_size);
        let slices = [offload::Slice::from_bytes(frame)];
        // SAFETY: the slice points into `frame`, borrowed for this call.
        let stream = unsafe { offload::Stream::new(&slices) };
        let mut segs = SegmentBuf::default();
        if let Err(e) = offload::process(&stream, &req, &mut segs) {
            debug!("host superpacket could not be segmented: {e:?}");
            self.counters().inc(Stat::rx_vnet_bad);
            return true;
        }
        let mut go_on = true;
        for r in segs.ranges {
            let seg = &segs.bytes[r];
            let st = verdict::trusted_status(seg);
            // A segment that does not fit now is held by RxDelivery, so the
            // rest of the superpacket follows it there rather than being lost.
            go_on = self.receive_any(seg, Some(st), now);
        }
        go_on
    }

    /// Takes one frame from the backend: verifies its checksums (unless
    /// `trusted` gives the verdict), then either delivers it or, with LRO
    /// on, hands it to the coalescer. Returns false when the caller should
    /// stop reading until the next RX doorbell.
    fn receive(&mut self, frame: &[u8], trusted: Option<u16>, now: Instant) -> bool {
        if !self.rx_ready() {
            return false;
        }
        self.receive_any(frame, trusted, now)
    }

    /// [`QueuePair::receive`] without the readiness check: the frame is
    /// delivered, held, or (ring errors only) dropped.
    fn receive_any(&mut self, frame: &[u8], trusted: Option<u16>, now: Instant) -> bool {
        let status = match trusted {
            Some(st) => st,
            None if self.rx_csum_enabled() || self.lro_enabled() => {
                verdict::verify_checksums(frame)
            }
            None => 0,
        };
        if status & rxstat::L4_OK != 0 {
            self.counters().inc(Stat::rx_csum_ok);
        }
        if status & rxstat::CSUM_ERR != 0 {
            self.counters().inc(Stat::rx_csum_bad);
        }
        let keep = if self.rx_csum_enabled() { status } else { 0 };
        let mem = self.mem();
        let mut delivery = rx_delivery!(self, &mem);
        if self.cfg.features & feat::LRO != 0 {
            let merged = self.coalescer.tally.merged;
            self.coalescer
                .push(frame, status, now, &mut |b, m| delivery.deliver(b, m));
            self.shared
                .counters
                .add(Stat::rx_coalesced, self.coalescer.tally.merged - merged);
        } else {
            let meta = RxMeta {
                status: keep,
                ..Default::default()
            };
            delivery.deliver(frame, meta);
        }
        let e = delivery.ring_error;
        self.after_delivery(e)
    }

    /// The backend is drained: flush every coalescing queue.
    pub fn receive_idle(&mut self) {
        if self.coalescer.is_empty() {
            return;
        }
        let mem = self.mem();
        let mut delivery = rx_delivery!(self, &mem);
        self.coalescer
            .flush_all(coalesce::Reason::Idle, &mut |b, m| delivery.deliver(b, m));
        let e = delivery.ring_error;
        self.after_delivery(e);
    }

    /// Delivers frames held back for lack of buffers, in order; true when
    /// none is left.
    pub fn deliver_held(&mut self) -> bool {
        if !self.cfg.enabled {
            return self.rx_held.is_empty();
        }
        let mem = self.mem();
        let mut ring_error = false;
        while let Some((frame, meta)) = self.rx_held.pop_front() {
            let c = &self.shared.queues[self.index].counters;
            match rx::deliver(&mem, &mut self.rx, c, &frame, meta) {
                RxOutcome::NoBuffers if !ring_full(&self.rx) => {
                    self.rx_held.push_front((frame, meta));
                    break;
                }
                o => ring_error |= !count(c, o, frame.len()),
            }
        }
        self.after_delivery(ring_error);
        self.rx_held.is_empty()
    }

    fn after_delivery(&mut self, ring_error: bool) -> bool {
        if ring_error {
            self.shared.raise(cause::ERROR);
            self.rx.head = self.rx.tail;
        }
        self.regs().rx_head.store(self.rx.head, Ordering::Release);
        !ring_error && self.rx_held.is_empty()
    }

    pub fn raise_rx(&self) {
        self.shared.raise_queue(self.index, cause::RX);
    }

    fn rss_on(&self) -> bool {
        self.cfg.features & feat::RSS != 0
    }

    /// The queue pair RSS picks for a read from the backend, if it is not
    /// this one (the caller hands the read over). A pair beyond QUEUES hands
    /// every read to a pair in use (pair 0 without RSS).
    pub fn steer(&self, read: &[u8], vnet_len: usize) -> Option<usize> {
        let unused = !self.cfg.enabled && self.cfg.device_enabled;
        if !unused && (!self.rss_on() || self.cfg.queues < 2) {
            return None;
        }
        let q = if self.rss_on() {
            let frame = read.get(vnet_len..).unwrap_or_default();
            self.rss
                .hash(frame)
                .map_or(0, |(h, _)| self.rss.queue(h, self.cfg.queues))
        } else {
            0
        };
        (q != self.index).then_some(q)
    }

    /// A pair beyond QUEUES on an enabled device: it only forwards reads.
    pub fn forwarding(&self) -> bool {
        !self.cfg.enabled && self.cfg.device_enabled
    }
}

/// The segments of a host superpacket, one after another in one buffer.
#[derive(Default)]
struct SegmentBuf {
    bytes: Vec<u8>,
    ranges: Vec<std::ops::Range<usize>>,
}

impl offload::FrameSink for SegmentBuf {
    fn frame(&mut self, header: &[u8], payload: &[offload::Slice]) -> bool {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(header);
        for s in payload {
            // SAFETY: the engine hands out slices of the stream it was given,
            // here the superpacket borrowed by `segment_superpacket`.
            self.bytes
                .extend_from_slice(unsafe { std::slice::from_raw_parts(s.ptr, s.len) });
        }
        self.ranges.push(start..self.bytes.len());
        true
    }
}

/// Every buffer the ring can hold is posted: a frame that does not fit now
/// never will.
fn ring_full(r: &Ring) -> bool {
    r.pending() + 1 >= r.size
}

/// Counts a delivery outcome; false on a ring error.
fn count(counters: &Counters, o: RxOutcome, len: usize) -> bool {
    match o {
        RxOutcome::Delivered => {
            counters.inc(Stat::rx_packets);
            counters.add(Stat::rx_bytes, len as u64);
            true
        }
        RxOutcome::NoBuffers | RxOutcome::BadBuffer => {
            counters.inc(Stat::rx_dropped);
            true
        }
        RxOutcome::RingError => {
            counters.inc(Stat::dma_errors);
            counters.inc(Stat::rx_dropped);
            false
        }
    }
}

/// Where received frames go: into the ring, or, when the posted buffers
/// are too few, into a short queue held until the next RX doorbell. The
/// queue is bounded: the coalescer emits at most one frame per flow plus the
/// packet at hand before the caller stops reading.
struct RxDelivery<'a> {
    mem: &'a Mem,
    ring: &'a mut Ring,
    counters: &'a Counters,
    held: &'a mut VecDeque<(Vec<u8>, RxMeta)>,
    /// With RSS negotiated: report each frame's hash.
    rss: Option<&'a Rss>,
    ring_error: bool,
}

impl RxDelivery<'_> {
    fn deliver(&mut self, frame: &[u8], mut meta: RxMeta) {
        if let Some((hash, ty)) = self.rss.and_then(|r| r.hash(frame)) {
            meta.hash = hash;
            meta.hash_type = ty as u8;
        }
        if !self.held.is_empty() {
            self.held.push_back((frame.to_vec(), meta));
            return;
        }
        match rx::deliver(self.mem, self.ring, self.counters, frame, meta) {
            RxOutcome::NoBuffers if !ring_full(self.ring) => {
                self.held.push_back((frame.to_vec(), meta));
            }
            o => self.ring_error |= !count(self.counters, o, frame.len()),
        }
    }
}
