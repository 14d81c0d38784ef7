//! The device state behind BAR0: registers, rings, IOTLB, fault log and
//! interrupts. The vfio-user message thread and the data-path thread share it
//! under one mutex; each holds it only for one access or one batch.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{error, info, warn};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend};

use crate::abi::{
    cause, ctrl, feat, iotlb_inv, notify, reg, status, ITR_MAX_US, MAX_PKT, MAX_SG, MTU_DEFAULT,
    MTU_MAX, MTU_MIN, POLL_MAX_US, VERSION,
};
use crate::backend::Backend;
use crate::coalesce::{self, Coalescer};
use crate::counters::{Counters, Stat, STAT_COUNT};
use crate::iotlb::Iotlb;
use crate::irq::Irqs;
use crate::memory::GuestRam;
use crate::mmu::Fault;
use crate::ring::Ring;
use crate::rx::{self, RxMeta, RxOutcome};
use crate::tx::TxPass;

#[derive(Clone, Copy, Debug, Default)]
pub struct FaultLog {
    pub va: u64,
    pub pdbr: u64,
    pub reason: u32,
    pub count: u32,
}

/// What a register write asks the data path to do next.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Kick {
    pub tx: bool,
    pub rx: bool,
}

pub struct DeviceState {
    pub ram: GuestRam,
    pub counters: Arc<Counters>,
    pub irqs: Irqs,
    pub iotlb: Iotlb,
    pub tx: Ring,
    pub rx: Ring,
    pub fault: FaultLog,
    mac: [u8; 6],
    default_mac: [u8; 6],
    drv_features: u32,
    enabled: bool,
    mtu: u32,
    inv_pdbr: u64,
    inv_addr: u64,
    warned_fdless: bool,
    errors: u32,
    pub coalescer: Coalescer,
    /// Guest-physical address of the notify block; 0 = doorbells only.
    notify: u64,
    poll: Duration,
    /// Frames waiting for RX buffers (see `RxSink`).
    rx_held: VecDeque<(Vec<u8>, RxMeta)>,
}

fn lo(v: &mut u64, x: u32) {
    *v = (*v & !0xffff_ffff) | u64::from(x);
}

fn hi(v: &mut u64, x: u32) {
    *v = (*v & 0xffff_ffff) | (u64::from(x) << 32);
}

impl DeviceState {
    pub fn new(mac: [u8; 6], counters: Arc<Counters>) -> Self {
        let mut s = Self {
            ram: GuestRam::new(),
            counters,
            irqs: Irqs::default(),
            iotlb: Iotlb::default(),
            tx: Ring::default(),
            rx: Ring::default(),
            fault: FaultLog::default(),
            mac,
            default_mac: mac,
            drv_features: 0,
            enabled: false,
            mtu: MTU_DEFAULT,
            inv_pdbr: 0,
            inv_addr: 0,
            warned_fdless: false,
            errors: 0,
            coalescer: Coalescer::new(coalesce::Params::default()),
            rx_held: VecDeque::new(),
            notify: 0,
            poll: Duration::ZERO,
        };
        s.reset();
        s
    }

    /// Device reset (vfio-user RESET or CTRL.RESET): everything but the guest
    /// RAM mappings and the interrupt eventfds, which belong to the VMM.
    pub fn reset(&mut self) {
        self.irqs.reset();
        self.iotlb.invalidate_all();
        self.tx = Ring::default();
        self.rx = Ring::default();
        self.fault = FaultLog::default();
        self.mac = self.default_mac;
        self.drv_features = 0;
        self.enabled = false;
        self.mtu = MTU_DEFAULT;
        self.inv_pdbr = 0;
        self.inv_addr = 0;
        self.errors = 0;
        self.coalescer = Coalescer::new(self.coalescer.params);
        self.rx_held.clear();
        self.notify = 0;
        self.poll = Duration::ZERO;
        let summary = self.counters.summary();
        if !summary.is_empty() {
            info!("device counters at reset:\n{summary}");
        }
        self.counters.clear();
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn rx_csum_enabled(&self) -> bool {
        self.drv_features & feat::RX_CSUM != 0
    }

    pub fn lro_enabled(&self) -> bool {
        self.drv_features & feat::LRO != 0
    }

    fn raise(&mut self, bits: u32) {
        if bits & cause::ERROR != 0 {
            self.errors = self.errors.wrapping_add(1);
        }
        self.irqs.raise(bits, Instant::now(), &self.counters);
    }

    pub fn read_reg(&self, off: u64) -> u32 {
        let f = &self.fault;
        match off {
            reg::VERSION => VERSION,
            reg::DEV_FEATURES => feat::DEVICE,
            reg::DRV_FEATURES => self.drv_features,
            reg::CTRL => u32::from(self.enabled),
            reg::STATUS => {
                status::LINK_UP
                    | if self.enabled { status::ENABLED } else { 0 }
                    | if f.reason != 0 { status::FAULT } else { 0 }
            }
            reg::MTU => self.mtu,
            reg::MAC_LO => u32::from_le_bytes([self.mac[0], self.mac[1], self.mac[2], self.mac[3]]),
            reg::MAC_HI => u32::from(u16::from_le_bytes([self.mac[4], self.mac[5]])),
            reg::INT_CAUSE => self.irqs.cause,
            reg::INT_MASK => self.irqs.mask,
            reg::ITR => self.irqs.itr.as_micros() as u32,
            reg::NUM_QUEUES => 0x0001_0001,
            reg::MAX_SG => MAX_SG as u32,
            reg::MAX_PKT => MAX_PKT as u32,
            reg::NOTIFY_LO => self.notify as u32,
            reg::NOTIFY_HI => (self.notify >> 32) as u32,
            reg::POLL_US => self.poll.as_micros() as u32,
            reg::TX_BASE_LO => self.tx.base as u32,
            reg::TX_BASE_HI => (self.tx.base >> 32) as u32,
            reg::TX_SIZE => self.tx.size,
            reg::TX_HEAD => self.tx.head,
            reg::TX_TAIL => self.tx.tail,
            reg::RX_BASE_LO => self.rx.base as u32,
            reg::RX_BASE_HI => (self.rx.base >> 32) as u32,
            reg::RX_SIZE => self.rx.size,
            reg::RX_HEAD => self.rx.head,
            reg::RX_TAIL => self.rx.tail,
            reg::IOTLB_INV_PDBR_LO => self.inv_pdbr as u32,
            reg::IOTLB_INV_PDBR_HI => (self.inv_pdbr >> 32) as u32,
            reg::IOTLB_INV_ADDR_LO => self.inv_addr as u32,
            reg::IOTLB_INV_ADDR_HI => (self.inv_addr >> 32) as u32,
            reg::FAULT_VA_LO => f.va as u32,
            reg::FAULT_VA_HI => (f.va >> 32) as u32,
            reg::FAULT_PDBR_LO => f.pdbr as u32,
            reg::FAULT_PDBR_HI => (f.pdbr >> 32) as u32,
            reg::FAULT_REASON => f.reason,
            reg::FAULT_COUNT => f.count,
            reg::ERROR_COUNT => self.errors,
            reg::STAT_COUNT => STAT_COUNT as u32,
            o if o >= reg::STAT_BASE => {
                let i = ((o - reg::STAT_BASE) / 8) as usize;
                let v = self.counters.get_index(i).unwrap_or(0);
                if (o - reg::STAT_BASE) % 8 >= 4 {
                    (v >> 32) as u32
                } else {
                    v as u32
                }
            }
            _ => 0,
        }
    }

    pub fn write_reg(&mut self, off: u64, v: u32) -> Kick {
        let mut kick = Kick::default();
        match off {
            reg::DRV_FEATURES => self.drv_features = v & feat::DEVICE,
            reg::CTRL => {
                if v & ctrl::RESET != 0 {
                    info!("device reset through CTRL.RESET");
                    self.reset();
                } else {
                    self.set_enable(v & ctrl::ENABLE != 0);
                    kick = Kick { tx: true, rx: true };
                }
            }
            reg::MTU => {
                if (MTU_MIN..=MTU_MAX).contains(&v) {
                    self.mtu = v;
                } else {
                    warn!("guest wrote MTU {v}, outside {MTU_MIN}..={MTU_MAX}: ignored");
                    self.raise(cause::ERROR);
                }
            }
            reg::MAC_LO => self.mac[..4].copy_from_slice(&v.to_le_bytes()),
            reg::MAC_HI => self.mac[4..].copy_from_slice(&v.to_le_bytes()[..2]),
            reg::INT_CAUSE => self.irqs.cause &= !v,
            reg::INT_MASK_SET => self.irqs.mask |= v & cause::ALL,
            reg::INT_MASK_CLR => self
                .irqs
                .unmask(v & cause::ALL, Instant::now(), &self.counters),
            reg::ITR => self.irqs.itr = Duration::from_micros(u64::from(v.min(ITR_MAX_US))),
            reg::NOTIFY_LO if !self.enabled => lo(&mut self.notify, v),
            reg::NOTIFY_HI if !self.enabled => hi(&mut self.notify, v),
            reg::POLL_US => self.poll = Duration::from_micros(u64::from(v.min(POLL_MAX_US))),
            reg::TX_BASE_LO if !self.enabled => lo(&mut self.tx.base, v),
            reg::TX_BASE_HI if !self.enabled => hi(&mut self.tx.base, v),
            reg::TX_SIZE if !self.enabled => self.tx.size = v,
            reg::RX_BASE_LO if !self.enabled => lo(&mut self.rx.base, v),
            reg::RX_BASE_HI if !self.enabled => hi(&mut self.rx.base, v),
            reg::RX_SIZE if !self.enabled => self.rx.size = v,
            reg::TX_TAIL => kick.tx = self.doorbell(v, true),
            reg::RX_TAIL => kick.rx = self.doorbell(v, false),
            reg::IOTLB_INV => self.invalidate(v),
            reg::IOTLB_INV_PDBR_LO => lo(&mut self.inv_pdbr, v),
            reg::IOTLB_INV_PDBR_HI => hi(&mut self.inv_pdbr, v),
            reg::IOTLB_INV_ADDR_LO => lo(&mut self.inv_addr, v),
            reg::IOTLB_INV_ADDR_HI => hi(&mut self.inv_addr, v),
            reg::FAULT_REASON => self.fault.reason = 0,
            _ => {}
        }
        kick
    }

    fn set_enable(&mut self, on: bool) {
        if !on {
            self.enabled = false;
            return;
        }
        if self.enabled {
            return;
        }
        if !self.tx.is_valid() || !self.rx.is_valid() {
            warn!(
                "guest enabled the device with bad rings (tx {:?}, rx {:?}): staying disabled",
                self.tx, self.rx
            );
            self.counters.inc(Stat::bad_doorbells);
            self.raise(cause::ERROR);
            return;
        }
        if !self.ram.has_fd_backed_ram() && !self.warned_fdless {
            self.warned_fdless = true;
            error!("guest RAM was mapped without an fd: start QEMU with a shared memfd memory backend (-object memory-backend-memfd,id=mem,size=1G,share=on -machine memory-backend=mem)");
        }
        let block_ok = self.notify.is_multiple_of(notify::SIZE)
            && self
                .ram
                .snapshot()
                .check_range(GuestAddress(self.notify), notify::SIZE as usize);
        if self.notify != 0 && !block_ok {
            warn!(
                "notify block at {:#x} is misaligned or outside guest RAM: staying disabled",
                self.notify
            );
            self.raise(cause::ERROR);
            return;
        }
        for r in [&mut self.tx, &mut self.rx] {
            r.head = 0;
            r.tail = 0;
        }
        self.enabled = true;
        // Idle: the driver rings for its first posts.
        self.set_kick(notify::TX_KICK, 1);
        self.set_kick(notify::RX_KICK, 1);
    }

    /// The busy-poll window, when the driver uses the notify block.
    pub fn poll_window(&self) -> Option<Duration> {
        (self.enabled && self.notify != 0).then_some(self.poll)
    }

    fn notify_word(&self, off: u64) -> Option<u32> {
        if self.notify == 0 {
            return None;
        }
        self.ram
            .snapshot()
            .read_obj::<u32>(GuestAddress(self.notify + off))
            .ok()
    }

    fn set_kick(&mut self, off: u64, v: u32) {
        if self.notify != 0
            && self
                .ram
                .snapshot()
                .write_obj(v, GuestAddress(self.notify + off))
                .is_err()
        {
            self.counters.inc(Stat::dma_errors);
        }
    }

    /// Takes the tails the driver published in the notify block. A tail out
    /// of range is refused like a bad doorbell.
    pub fn sync_tails(&mut self) {
        if !self.enabled {
            return;
        }
        for (off, tx) in [(notify::TX_TAIL, true), (notify::RX_TAIL, false)] {
            if let Some(t) = self.notify_word(off) {
                let ring = if tx { &self.tx } else { &self.rx };
                if t != ring.tail {
                    self.doorbell(t, tx);
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
        self.set_kick(notify::TX_KICK, 1);
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        self.sync_tails();
        let work = self.enabled && self.tx.head != self.tx.tail;
        if work {
            self.set_kick(notify::TX_KICK, 0);
        }
        work
    }

    /// Out of RX buffers: asks for RX doorbells, then looks once more. True
    /// if buffers arrived meanwhile.
    pub fn rx_blocked(&mut self) -> bool {
        if self.notify == 0 {
            return false;
        }
        self.set_kick(notify::RX_KICK, 1);
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        self.sync_tails();
        let room = self.enabled && self.rx.head != self.rx.tail;
        if room {
            self.set_kick(notify::RX_KICK, 0);
        }
        room
    }

    pub fn rx_unblocked(&mut self) {
        self.set_kick(notify::RX_KICK, 0);
    }

    fn doorbell(&mut self, v: u32, tx: bool) -> bool {
        let ring = if tx { &mut self.tx } else { &mut self.rx };
        if ring.size == 0 || v >= ring.size {
            warn!(
                "bad {} doorbell {v} (ring size {})",
                if tx { "TX" } else { "RX" },
                ring.size
            );
            self.counters.inc(Stat::bad_doorbells);
            self.raise(cause::ERROR);
            return false;
        }
        ring.tail = v;
        self.enabled
    }

    fn invalidate(&mut self, op: u32) {
        match op {
            iotlb_inv::ALL => self.iotlb.invalidate_all(),
            iotlb_inv::PDBR => self.iotlb.invalidate_pdbr(self.inv_pdbr),
            iotlb_inv::ADDR => self.iotlb.invalidate_addr(self.inv_pdbr, self.inv_addr),
            _ => {
                self.counters.inc(Stat::bad_doorbells);
                self.raise(cause::ERROR);
                return;
            }
        }
        self.counters.inc(Stat::iotlb_invalidations);
    }

    fn log_faults(&mut self, faults: &[Fault]) {
        for f in faults {
            self.fault.va = f.va;
            self.fault.pdbr = f.pdbr;
            self.fault.reason = f.reason as u32;
            self.fault.count = self.fault.count.wrapping_add(1);
            if self.ram.in_fdless(f.pdbr) && !self.warned_fdless {
                self.warned_fdless = true;
                error!("page tables live in guest RAM mapped without an fd: start QEMU with a shared memfd memory backend");
            }
        }
        if let Some(f) = faults.last() {
            info!("TX translation fault: {f}");
            self.raise(cause::FAULT);
        }
    }

    /// Services the TX ring. Returns true if packets were completed.
    pub fn service_tx(&mut self, backend: &mut dyn Backend) -> bool {
        if !self.enabled || self.tx.head == self.tx.tail {
            return false;
        }
        let mem = self.ram.snapshot();
        let mut ring = self.tx;
        let mut pass = TxPass {
            mem: &mem,
            iotlb: &mut self.iotlb,
            counters: &self.counters,
            mtu: self.mtu,
            faults: Vec::new(),
            ring_error: false,
        };
        let done = pass.run(&mut ring, backend);
        let (faults, ring_error) = (std::mem::take(&mut pass.faults), pass.ring_error);
        self.tx.head = ring.head;
        self.log_faults(&faults);
        if ring_error {
            self.raise(cause::ERROR);
        }
        if done > 0 {
            self.raise(cause::TX);
        }
        done > 0
    }

    pub fn rx_held_len(&self) -> usize {
        self.rx_held.len()
    }

    /// Room for at least one frame in the RX ring, and nothing held back.
    pub fn rx_ready(&self) -> bool {
        self.enabled && self.rx.head != self.rx.tail && self.rx_held.is_empty()
    }

    /// Takes one frame from the backend: verifies its checksums, then either
    /// delivers it or, with LRO on, hands it to the coalescer. Returns false
    /// when the caller should stop reading until the next RX doorbell.
    pub fn receive(&mut self, frame: &[u8], now: Instant) -> bool {
        if !self.rx_ready() {
            return false;
        }
        let status = if self.rx_csum_enabled() || self.lro_enabled() {
            rx::verify_checksums(frame)
        } else {
            0
        };
        if status & crate::abi::rxstat::L4_OK != 0 {
            self.counters.inc(Stat::rx_csum_ok);
        }
        if status & crate::abi::rxstat::CSUM_ERR != 0 {
            self.counters.inc(Stat::rx_csum_bad);
        }
        let keep = if self.rx_csum_enabled() { status } else { 0 };
        let mem = self.ram.snapshot();
        let mut sink = RxSink {
            mem: &mem,
            ring: &mut self.rx,
            counters: &self.counters,
            held: &mut self.rx_held,
            ring_error: false,
        };
        if self.drv_features & feat::LRO != 0 {
            let merged = self.coalescer.tally.merged;
            self.coalescer
                .push(frame, status, now, &mut |b, m| sink.deliver(b, m));
            self.counters
                .add(Stat::rx_coalesced, self.coalescer.tally.merged - merged);
        } else {
            let meta = RxMeta {
                status: keep,
                ..Default::default()
            };
            sink.deliver(frame, meta);
        }
        let e = sink.ring_error;
        self.after_delivery(e)
    }

    /// The backend is drained: flush every coalescing queue.
    pub fn receive_idle(&mut self) {
        if self.coalescer.is_empty() {
            return;
        }
        let mem = self.ram.snapshot();
        let mut sink = RxSink {
            mem: &mem,
            ring: &mut self.rx,
            counters: &self.counters,
            held: &mut self.rx_held,
            ring_error: false,
        };
        self.coalescer
            .flush_all(coalesce::Reason::Idle, &mut |b, m| sink.deliver(b, m));
        let e = sink.ring_error;
        self.after_delivery(e);
    }

    /// Delivers frames held back for lack of buffers, in order; true when
    /// none is left.
    pub fn deliver_held(&mut self) -> bool {
        if !self.enabled {
            return self.rx_held.is_empty();
        }
        let mem = self.ram.snapshot();
        let mut ring_error = false;
        while let Some((frame, meta)) = self.rx_held.pop_front() {
            match rx::deliver(&mem, &mut self.rx, &self.counters, &frame, meta) {
                RxOutcome::NoBuffers if !ring_full(&self.rx) => {
                    self.rx_held.push_front((frame, meta));
                    break;
                }
                o => ring_error |= !count(&self.counters, o, frame.len()),
            }
        }
        self.after_delivery(ring_error);
        self.rx_held.is_empty()
    }

    fn after_delivery(&mut self, ring_error: bool) -> bool {
        if ring_error {
            self.raise(cause::ERROR);
            self.rx.head = self.rx.tail;
            return false;
        }
        self.rx_held.is_empty()
    }

    pub fn raise_rx(&mut self) {
        self.raise(cause::RX);
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
struct RxSink<'a> {
    mem: &'a crate::memory::Mem,
    ring: &'a mut Ring,
    counters: &'a Counters,
    held: &'a mut VecDeque<(Vec<u8>, RxMeta)>,
    ring_error: bool,
}

impl RxSink<'_> {
    fn deliver(&mut self, frame: &[u8], meta: RxMeta) {
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
