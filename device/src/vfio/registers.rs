//! The register file behind BAR0, owned by the vfio-user message thread.
//!
//! Reads never wait for the data path: they see the register file's own
//! fields, the indices the queue workers publish ([`QueueRegs`](crate::queue::shared::QueueRegs)) and the
//! shared counters. Control changes (enable, reset, ring programming,
//! feature, MTU and poll changes, IOTLB invalidation) go to every worker as
//! a [`Cmd`] and are acknowledged before the write returns.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use log::{error, info, warn};
use vm_memory::{GuestAddress, GuestMemoryBackend};

use crate::abi::{
    cause, ctrl, feat, iotlb_inv, notify, qreg, reg, status, ITR_MAX_US, MAX_PKT, MAX_QUEUES,
    MAX_SG, MTU_DEFAULT, MTU_MAX, MTU_MIN, VERSION,
};
use crate::counters::{Stat, STAT_COUNT};
use crate::engine::rss::{self, Rss};
use crate::host::memory::GuestRam;
use crate::queue::command::{Cmd, CmdChannel, QueueConfig, RingConfig};
use crate::queue::ring::Ring;
use crate::queue::shared::Shared;

fn lo(v: &mut u64, x: u32) {
    *v = (*v & !0xffff_ffff) | u64::from(x);
}

fn hi(v: &mut u64, x: u32) {
    *v = (*v & 0xffff_ffff) | (u64::from(x) << 32);
}

/// One queue pair's rings and notify block, as programmed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct PairRegs {
    tx: RingConfig,
    rx: RingConfig,
    notify: u64,
}

pub struct Control {
    shared: Arc<Shared>,
    /// One command channel per queue pair.
    workers: Vec<Arc<CmdChannel>>,
    pub ram: Arc<Mutex<GuestRam>>,
    mac: [u8; 6],
    default_mac: [u8; 6],
    enabled: bool,
    features: u32,
    mtu: u32,
    poll: Duration,
    /// QUEUES: pairs in use.
    queues: usize,
    pairs: Vec<PairRegs>,
    rss: Rss,
    inv_pdbr: u64,
    inv_addr: u64,
    warned_fdless: bool,
}

/// What a register offset addresses.
enum Target {
    Global(u64),
    /// A queue pair block register: (pair, offset in the block).
    Pair(usize, u64),
    RssKey(usize),
    RssIndir(usize),
    /// QSTAT: (pair, byte offset in its counter block).
    QStat(usize, u64),
}

fn decode(off: u64) -> Target {
    // The ABI 1.x registers of queue pair 0.
    let legacy = match off {
        reg::NOTIFY_LO => Some(qreg::NOTIFY_LO),
        reg::NOTIFY_HI => Some(qreg::NOTIFY_HI),
        reg::TX_BASE_LO => Some(qreg::TX_BASE_LO),
        reg::TX_BASE_HI => Some(qreg::TX_BASE_HI),
        reg::TX_SIZE => Some(qreg::TX_SIZE),
        reg::TX_HEAD => Some(qreg::TX_HEAD),
        reg::TX_TAIL => Some(qreg::TX_TAIL),
        reg::RX_BASE_LO => Some(qreg::RX_BASE_LO),
        reg::RX_BASE_HI => Some(qreg::RX_BASE_HI),
        reg::RX_SIZE => Some(qreg::RX_SIZE),
        reg::RX_HEAD => Some(qreg::RX_HEAD),
        reg::RX_TAIL => Some(qreg::RX_TAIL),
        _ => None,
    };
    if let Some(r) = legacy {
        return Target::Pair(0, r);
    }
    let key_end = reg::RSS_KEY + rss::KEY_LEN as u64;
    let indir_end = reg::RSS_INDIR + rss::INDIR_LEN as u64;
    let q_end = reg::QUEUE_BASE + reg::QUEUE_STRIDE * MAX_QUEUES as u64;
    let qs_end = reg::QSTAT_BASE + reg::QSTAT_STRIDE * MAX_QUEUES as u64;
    match off {
        o if (reg::RSS_KEY..key_end).contains(&o) => Target::RssKey((o - reg::RSS_KEY) as usize),
        o if (reg::RSS_INDIR..indir_end).contains(&o) => {
            Target::RssIndir((o - reg::RSS_INDIR) as usize)
        }
        o if (reg::QUEUE_BASE..q_end).contains(&o) => {
            let r = o - reg::QUEUE_BASE;
            Target::Pair((r / reg::QUEUE_STRIDE) as usize, r % reg::QUEUE_STRIDE)
        }
        o if (reg::QSTAT_BASE..qs_end).contains(&o) => {
            let r = o - reg::QSTAT_BASE;
            Target::QStat((r / reg::QSTAT_STRIDE) as usize, r % reg::QSTAT_STRIDE)
        }
        o => Target::Global(o),
    }
}

/// The 32-bit half of a 64-bit counter at byte offset `off` of a STAT block.
fn stat_word(off: u64, get: impl Fn(usize) -> Option<u64>) -> u32 {
    let v = get((off / 8) as usize).unwrap_or(0);
    if off % 8 >= 4 {
        (v >> 32) as u32
    } else {
        v as u32
    }
}

fn set_byte_lane(bytes: &mut [u8], first: usize, v: u32) {
    for (i, b) in v.to_le_bytes().into_iter().enumerate() {
        if let Some(x) = bytes.get_mut(first + i) {
            *x = b;
        }
    }
}

fn byte_lane(bytes: &[u8], first: usize) -> u32 {
    let mut w = [0u8; 4];
    for (i, x) in w.iter_mut().enumerate() {
        *x = bytes.get(first + i).copied().unwrap_or(0);
    }
    u32::from_le_bytes(w)
}

impl Control {
    pub fn new(
        shared: Arc<Shared>,
        workers: Vec<Arc<CmdChannel>>,
        ram: Arc<Mutex<GuestRam>>,
        mac: [u8; 6],
    ) -> Self {
        let n = workers.len().max(1);
        Self {
            shared,
            workers,
            ram,
            mac,
            default_mac: mac,
            enabled: false,
            features: 0,
            mtu: MTU_DEFAULT,
            poll: Duration::ZERO,
            queues: 1,
            pairs: vec![PairRegs::default(); n],
            rss: Rss::default(),
            inv_pdbr: 0,
            inv_addr: 0,
            warned_fdless: false,
        }
    }

    /// Queue pairs the device has.
    fn n(&self) -> usize {
        self.pairs.len()
    }

    fn ram(&self) -> std::sync::MutexGuard<'_, GuestRam> {
        self.ram.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn send(&self, cmd: Cmd) {
        for w in &self.workers {
            w.call(cmd);
        }
    }

    fn wake(&self, q: usize) {
        if let Some(w) = self.workers.get(q) {
            let _ = w.wake.write(1);
        }
    }

    fn configure(&self) {
        for (q, w) in self.workers.iter().enumerate() {
            let p = self.pairs[q];
            w.call(Cmd::Configure(QueueConfig {
                enabled: self.enabled && q < self.queues,
                device_enabled: self.enabled,
                queues: self.queues,
                tx: p.tx,
                rx: p.rx,
                features: self.features,
                mtu: self.mtu,
                notify: p.notify,
                poll: self.poll,
            }));
        }
    }

    /// A refused queue-pair or RSS register access.
    fn bad_queue_reg(&self, what: std::fmt::Arguments) {
        warn!("{what}");
        self.shared.counters.inc(Stat::bad_queue_regs);
        self.shared.raise(cause::ERROR);
    }

    /// Device reset (vfio-user RESET or CTRL.RESET): everything but the guest
    /// RAM mappings and the interrupt eventfds, which belong to the VMM.
    pub fn reset(&mut self) {
        self.reset_state();
        let summary = self.shared.summary();
        if !summary.is_empty() {
            info!("device counters at reset:\n{summary}");
        }
        self.shared.clear_counters();
    }

    fn reset_state(&mut self) {
        self.send(Cmd::Reset);
        self.shared.reset();
        self.enabled = false;
        self.features = 0;
        self.mtu = MTU_DEFAULT;
        self.poll = Duration::ZERO;
        self.queues = 1;
        self.pairs.iter_mut().for_each(|p| *p = PairRegs::default());
        self.rss = Rss::default();
        self.mac = self.default_mac;
        self.inv_pdbr = 0;
        self.inv_addr = 0;
    }

    pub fn read_reg(&self, off: u64) -> u32 {
        match decode(off) {
            Target::Global(o) => self.read_global(o),
            Target::Pair(q, r) => self.read_pair(q, r),
            Target::RssKey(i) => byte_lane(&self.rss.key, i),
            Target::RssIndir(i) => byte_lane(&self.rss.indir, i),
            Target::QStat(q, r) => match self.shared.queues.get(q) {
                Some(qs) => stat_word(r, |i| qs.counters.get_index(i)),
                None => 0,
            },
        }
    }

    fn read_pair(&self, q: usize, r: u64) -> u32 {
        let (Some(p), Some(qs)) = (self.pairs.get(q), self.shared.queues.get(q)) else {
            return 0;
        };
        let ld = |a: &std::sync::atomic::AtomicU32| a.load(Ordering::Acquire);
        match r {
            qreg::TX_BASE_LO => p.tx.base as u32,
            qreg::TX_BASE_HI => (p.tx.base >> 32) as u32,
            qreg::TX_SIZE => p.tx.size,
            qreg::TX_HEAD => ld(&qs.regs.tx_head),
            qreg::TX_TAIL => ld(&qs.regs.tx_tail),
            qreg::RX_BASE_LO => p.rx.base as u32,
            qreg::RX_BASE_HI => (p.rx.base >> 32) as u32,
            qreg::RX_SIZE => p.rx.size,
            qreg::RX_HEAD => ld(&qs.regs.rx_head),
            qreg::RX_TAIL => ld(&qs.regs.rx_tail),
            qreg::NOTIFY_LO => p.notify as u32,
            qreg::NOTIFY_HI => (p.notify >> 32) as u32,
            _ => 0,
        }
    }

    fn read_global(&self, off: u64) -> u32 {
        let n = self.n() as u32;
        match off {
            reg::VERSION => VERSION,
            reg::DEV_FEATURES => feat::DEVICE,
            reg::DRV_FEATURES => self.features,
            reg::CTRL => u32::from(self.enabled),
            reg::STATUS => {
                status::LINK_UP
                    | if self.enabled { status::ENABLED } else { 0 }
                    | if self.shared.fault().reason != 0 {
                        status::FAULT
                    } else {
                        0
                    }
            }
            reg::MTU => self.mtu,
            reg::MAC_LO => u32::from_le_bytes([self.mac[0], self.mac[1], self.mac[2], self.mac[3]]),
            reg::MAC_HI => u32::from(u16::from_le_bytes([self.mac[4], self.mac[5]])),
            reg::INT_CAUSE => self.shared.irqs.lock().cause,
            reg::INT_MASK => self.shared.irqs.lock().mask,
            reg::ITR => self.shared.irqs.lock().itr.as_micros() as u32,
            reg::NUM_QUEUES => n | (n << 16),
            reg::QUEUES => self.queues as u32,
            reg::MAX_SG => MAX_SG as u32,
            reg::MAX_PKT => MAX_PKT as u32,
            reg::POLL_US => self.poll.as_micros() as u32,
            reg::IOTLB_INV_PDBR_LO => self.inv_pdbr as u32,
            reg::IOTLB_INV_PDBR_HI => (self.inv_pdbr >> 32) as u32,
            reg::IOTLB_INV_ADDR_LO => self.inv_addr as u32,
            reg::IOTLB_INV_ADDR_HI => (self.inv_addr >> 32) as u32,
            reg::FAULT_VA_LO..=reg::FAULT_QUEUE => {
                let f = *self.shared.fault();
                match off {
                    reg::FAULT_VA_LO => f.va as u32,
                    reg::FAULT_VA_HI => (f.va >> 32) as u32,
                    reg::FAULT_PDBR_LO => f.pdbr as u32,
                    reg::FAULT_PDBR_HI => (f.pdbr >> 32) as u32,
                    reg::FAULT_REASON => f.reason,
                    reg::FAULT_COUNT => f.count,
                    reg::FAULT_QUEUE => f.queue,
                    reg::ERROR_COUNT => self.shared.errors.load(Ordering::Relaxed),
                    _ => 0,
                }
            }
            reg::STAT_NUM => STAT_COUNT as u32,
            o if (reg::STAT_BASE..reg::STAT_BASE + 8 * STAT_COUNT as u64).contains(&o) => {
                stat_word(o - reg::STAT_BASE, |i| self.shared.total(i))
            }
            _ => 0,
        }
    }

    pub fn write_reg(&mut self, off: u64, v: u32) {
        match decode(off) {
            Target::Global(o) => self.write_global(o, v),
            Target::Pair(q, r) => self.write_pair(q, r, v),
            Target::RssKey(i) => {
                set_byte_lane(&mut self.rss.key, i, v);
                self.send(Cmd::Rss(self.rss));
            }
            Target::RssIndir(i) => {
                let n = self.n();
                if v.to_le_bytes().iter().any(|&e| usize::from(e) >= n) {
                    self.bad_queue_reg(format_args!(
                        "RSS_INDIR entries {v:#010x} name a queue pair beyond the {n} the device has: ignored"
                    ));
                    return;
                }
                set_byte_lane(&mut self.rss.indir, i, v);
                self.send(Cmd::Rss(self.rss));
            }
            Target::QStat(..) => {}
        }
    }

    fn write_pair(&mut self, q: usize, r: u64, v: u32) {
        let n = self.n();
        if q >= n {
            self.bad_queue_reg(format_args!(
                "write {v:#x} to queue pair {q} (offset {r:#x}), beyond the {n} the device has: ignored"
            ));
            return;
        }
        let enabled = self.enabled;
        let p = &mut self.pairs[q];
        match r {
            qreg::TX_BASE_LO if !enabled => lo(&mut p.tx.base, v),
            qreg::TX_BASE_HI if !enabled => hi(&mut p.tx.base, v),
            qreg::TX_SIZE if !enabled => p.tx.size = v,
            qreg::RX_BASE_LO if !enabled => lo(&mut p.rx.base, v),
            qreg::RX_BASE_HI if !enabled => hi(&mut p.rx.base, v),
            qreg::RX_SIZE if !enabled => p.rx.size = v,
            qreg::NOTIFY_LO if !enabled => lo(&mut p.notify, v),
            qreg::NOTIFY_HI if !enabled => hi(&mut p.notify, v),
            qreg::TX_TAIL => self.doorbell(q, v, true),
            qreg::RX_TAIL => self.doorbell(q, v, false),
            qreg::INT_UNMASK if v & 1 != 0 => {
                let (fire, held) = {
                    let mut irqs = self.shared.irqs.lock();
                    let fire = irqs.unmask_queue(q, Instant::now());
                    (fire, irqs.next_due().is_some())
                };
                fire.signal(&self.shared.queues[q].counters);
                if held {
                    self.wake(q);
                }
            }
            _ => {}
        }
    }

    fn write_global(&mut self, off: u64, v: u32) {
        match off {
            reg::DRV_FEATURES => {
                self.features = v & feat::DEVICE;
                self.configure();
            }
            reg::CTRL => {
                if v & ctrl::RESET != 0 {
                    info!("device reset through CTRL.RESET");
                    self.reset();
                } else {
                    self.set_enable(v & ctrl::ENABLE != 0);
                }
            }
            reg::MTU => {
                if (MTU_MIN..=MTU_MAX).contains(&v) {
                    self.mtu = v;
                    self.configure();
                } else {
                    warn!("guest wrote MTU {v}, outside {MTU_MIN}..={MTU_MAX}: ignored");
                    self.shared.raise(cause::ERROR);
                }
            }
            reg::QUEUES if !self.enabled => {
                let n = self.n();
                if v == 0 || v as usize > n {
                    self.bad_queue_reg(format_args!(
                        "QUEUES {v}: the device has 1..={n} queue pairs: ignored"
                    ));
                } else {
                    self.queues = v as usize;
                }
            }
            reg::MAC_LO => self.mac[..4].copy_from_slice(&v.to_le_bytes()),
            reg::MAC_HI => self.mac[4..].copy_from_slice(&v.to_le_bytes()[..2]),
            reg::INT_CAUSE => self.shared.irqs.lock().cause &= !v,
            reg::INT_MASK_SET => self.shared.irqs.lock().mask |= v & cause::ALL,
            reg::INT_MASK_CLR => {
                let (fire, held) = {
                    let mut irqs = self.shared.irqs.lock();
                    let fire = irqs.unmask(v & cause::ALL, Instant::now());
                    (fire, irqs.next_due().is_some())
                };
                fire.signal(&self.shared.counters);
                if held {
                    // A vector waits for its moderation deadline: the
                    // workers own the timer.
                    self.wake(0);
                }
            }
            reg::ITR => {
                self.shared.irqs.lock().itr = Duration::from_micros(u64::from(v.min(ITR_MAX_US)))
            }
            reg::POLL_US => {
                self.poll = Duration::from_micros(u64::from(v.min(crate::abi::POLL_MAX_US)));
                self.configure();
            }
            reg::IOTLB_INV => self.invalidate(v),
            reg::IOTLB_INV_PDBR_LO => lo(&mut self.inv_pdbr, v),
            reg::IOTLB_INV_PDBR_HI => hi(&mut self.inv_pdbr, v),
            reg::IOTLB_INV_ADDR_LO => lo(&mut self.inv_addr, v),
            reg::IOTLB_INV_ADDR_HI => hi(&mut self.inv_addr, v),
            reg::FAULT_REASON => self.shared.fault().reason = 0,
            _ => {}
        }
    }

    fn set_enable(&mut self, on: bool) {
        if on == self.enabled {
            if on {
                // Re-enabling an enabled device looks for work, as before.
                (0..self.queues).for_each(|q| self.wake(q));
            }
            return;
        }
        if !on {
            self.enabled = false;
            self.configure();
            return;
        }
        if self.features & feat::MQ == 0 {
            self.queues = 1;
        }
        if let Err(why) = self.check_pairs() {
            warn!("guest enabled the device with {why}: staying disabled");
            self.shared.counters.inc(Stat::bad_doorbells);
            self.shared.raise(cause::ERROR);
            return;
        }
        let fd_backed = self.ram().has_fd_backed_ram();
        if !fd_backed && !self.warned_fdless {
            self.warned_fdless = true;
            error!("guest RAM was mapped without an fd: start QEMU with a shared memfd memory backend (-object memory-backend-memfd,id=mem,size=1G,share=on -machine memory-backend=mem)");
        }
        self.shared.irqs.lock().mq = self.features & feat::MQ != 0;
        self.enabled = true;
        self.configure();
    }

    /// The rings and notify blocks of the pairs in use: valid, inside guest
    /// RAM where it matters, and no two rings overlapping.
    fn check_pairs(&self) -> Result<(), String> {
        let ring = |r: RingConfig| Ring {
            base: r.base,
            size: r.size,
            head: 0,
            tail: 0,
        };
        let mem = self.ram().snapshot();
        let mut spans: Vec<(u64, u64, usize)> = Vec::new();
        for (q, p) in self.pairs.iter().take(self.queues).enumerate() {
            let (tx, rx) = (ring(p.tx), ring(p.rx));
            if !tx.is_valid() || !rx.is_valid() {
                return Err(format!("bad rings on pair {q} (tx {tx:?}, rx {rx:?})"));
            }
            let n = p.notify;
            if n != 0
                && !(n.is_multiple_of(notify::SIZE)
                    && mem.check_range(GuestAddress(n), notify::SIZE as usize))
            {
                return Err(format!(
                    "pair {q}'s notify block at {n:#x} misaligned or outside guest RAM"
                ));
            }
            for r in [tx, rx] {
                spans.push((r.base, r.base + u64::from(r.size) * 32, q));
            }
        }
        spans.sort_unstable();
        for w in spans.windows(2) {
            if w[1].0 < w[0].1 {
                self.shared.counters.inc(Stat::bad_queue_regs);
                return Err(format!(
                    "rings of pairs {} and {} overlapping at {:#x}",
                    w[0].2, w[1].2, w[1].0
                ));
            }
        }
        Ok(())
    }

    fn doorbell(&mut self, q: usize, v: u32, tx: bool) {
        let p = self.pairs[q];
        let size = if tx { p.tx.size } else { p.rx.size };
        if size == 0 || v >= size {
            warn!(
                "bad {} doorbell {v} on pair {q} (ring size {size})",
                if tx { "TX" } else { "RX" },
            );
            self.shared.counters.inc(Stat::bad_doorbells);
            self.shared.raise(cause::ERROR);
            return;
        }
        self.shared.queues[q].regs.ring_doorbell(tx, v);
        if self.enabled && q < self.queues {
            self.wake(q);
        }
    }

    fn invalidate(&mut self, op: u32) {
        if !matches!(op, iotlb_inv::ALL | iotlb_inv::PDBR | iotlb_inv::ADDR) {
            self.shared.counters.inc(Stat::bad_doorbells);
            self.shared.raise(cause::ERROR);
            return;
        }
        self.send(Cmd::Invalidate {
            op,
            pdbr: self.inv_pdbr,
            addr: self.inv_addr,
        });
        self.shared.counters.inc(Stat::iotlb_invalidations);
    }

    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Drops every cached translation in every worker (guest RAM changed).
    pub fn invalidate_all(&self) {
        self.send(Cmd::Invalidate {
            op: iotlb_inv::ALL,
            pdbr: 0,
            addr: 0,
        });
    }

    /// The VMM is gone: quiesce the workers, reset, and drop what belonged
    /// to the VMM (guest RAM mappings and interrupt eventfds). The counters
    /// live on: they describe the device process, and a refused VMM is worth
    /// seeing after it left (a guest or VMM reset clears them).
    pub fn turnover(&mut self) {
        self.reset_state();
        self.ram().clear();
        let mut irqs = self.shared.irqs.lock();
        for v in 0..crate::abi::NUM_VECTORS as usize {
            irqs.set_fd(v, None);
        }
    }
}
