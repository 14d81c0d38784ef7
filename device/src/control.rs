//! The register file behind BAR0, owned by the vfio-user message thread.
//!
//! Reads never wait for the data path: they see the register file's own
//! fields, the indices the queue workers publish ([`QueueRegs`]) and the
//! shared counters. Control changes (enable, reset, ring programming,
//! feature, MTU and poll changes, IOTLB invalidation) go to every worker as
//! a [`Cmd`] and are acknowledged before the write returns.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use log::{error, info, warn};
use vm_memory::{GuestAddress, GuestMemoryBackend};

use crate::abi::{
    cause, ctrl, feat, iotlb_inv, notify, reg, status, ITR_MAX_US, MAX_PKT, MAX_SG, MTU_DEFAULT,
    MTU_MAX, MTU_MIN, VERSION,
};
use crate::command::{Cmd, CmdChannel, QueueConfig, RingConfig};
use crate::counters::{Stat, STAT_COUNT};
use crate::memory::GuestRam;
use crate::ring::Ring;
use crate::shared::Shared;

fn lo(v: &mut u64, x: u32) {
    *v = (*v & !0xffff_ffff) | u64::from(x);
}

fn hi(v: &mut u64, x: u32) {
    *v = (*v & 0xffff_ffff) | (u64::from(x) << 32);
}

pub struct Control {
    shared: Arc<Shared>,
    workers: Vec<Arc<CmdChannel>>,
    pub ram: Arc<Mutex<GuestRam>>,
    mac: [u8; 6],
    default_mac: [u8; 6],
    /// What the workers were last told, plus the rings as programmed.
    cfg: QueueConfig,
    inv_pdbr: u64,
    inv_addr: u64,
    warned_fdless: bool,
}

impl Control {
    pub fn new(
        shared: Arc<Shared>,
        workers: Vec<Arc<CmdChannel>>,
        ram: Arc<Mutex<GuestRam>>,
        mac: [u8; 6],
    ) -> Self {
        Self {
            shared,
            workers,
            ram,
            mac,
            default_mac: mac,
            cfg: Self::reset_config(),
            inv_pdbr: 0,
            inv_addr: 0,
            warned_fdless: false,
        }
    }

    fn reset_config() -> QueueConfig {
        QueueConfig {
            mtu: MTU_DEFAULT,
            ..Default::default()
        }
    }

    fn ram(&self) -> std::sync::MutexGuard<'_, GuestRam> {
        self.ram.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn send(&self, cmd: Cmd) {
        for w in &self.workers {
            w.call(cmd);
        }
    }

    fn configure(&self) {
        self.send(Cmd::Configure(self.cfg));
    }

    /// Device reset (vfio-user RESET or CTRL.RESET): everything but the guest
    /// RAM mappings and the interrupt eventfds, which belong to the VMM.
    pub fn reset(&mut self) {
        self.reset_state();
        let summary = self.shared.counters.summary();
        if !summary.is_empty() {
            info!("device counters at reset:\n{summary}");
        }
        self.shared.counters.clear();
    }

    fn reset_state(&mut self) {
        self.send(Cmd::Reset);
        self.shared.reset();
        self.cfg = Self::reset_config();
        self.mac = self.default_mac;
        self.inv_pdbr = 0;
        self.inv_addr = 0;
    }

    pub fn read_reg(&self, off: u64) -> u32 {
        let q = &self.shared.queue;
        let ld = |a: &std::sync::atomic::AtomicU32| a.load(Ordering::Acquire);
        match off {
            reg::VERSION => VERSION,
            reg::DEV_FEATURES => feat::DEVICE,
            reg::DRV_FEATURES => self.cfg.features,
            reg::CTRL => u32::from(self.cfg.enabled),
            reg::STATUS => {
                status::LINK_UP
                    | if self.cfg.enabled { status::ENABLED } else { 0 }
                    | if self.shared.fault().reason != 0 {
                        status::FAULT
                    } else {
                        0
                    }
            }
            reg::MTU => self.cfg.mtu,
            reg::MAC_LO => u32::from_le_bytes([self.mac[0], self.mac[1], self.mac[2], self.mac[3]]),
            reg::MAC_HI => u32::from(u16::from_le_bytes([self.mac[4], self.mac[5]])),
            reg::INT_CAUSE => self.shared.irqs.lock().cause,
            reg::INT_MASK => self.shared.irqs.lock().mask,
            reg::ITR => self.shared.irqs.lock().itr.as_micros() as u32,
            reg::NUM_QUEUES => 0x0001_0001,
            reg::MAX_SG => MAX_SG as u32,
            reg::MAX_PKT => MAX_PKT as u32,
            reg::NOTIFY_LO => self.cfg.notify as u32,
            reg::NOTIFY_HI => (self.cfg.notify >> 32) as u32,
            reg::POLL_US => self.cfg.poll.as_micros() as u32,
            reg::TX_BASE_LO => self.cfg.tx.base as u32,
            reg::TX_BASE_HI => (self.cfg.tx.base >> 32) as u32,
            reg::TX_SIZE => self.cfg.tx.size,
            reg::TX_HEAD => ld(&q.tx_head),
            reg::TX_TAIL => ld(&q.tx_tail),
            reg::RX_BASE_LO => self.cfg.rx.base as u32,
            reg::RX_BASE_HI => (self.cfg.rx.base >> 32) as u32,
            reg::RX_SIZE => self.cfg.rx.size,
            reg::RX_HEAD => ld(&q.rx_head),
            reg::RX_TAIL => ld(&q.rx_tail),
            reg::IOTLB_INV_PDBR_LO => self.inv_pdbr as u32,
            reg::IOTLB_INV_PDBR_HI => (self.inv_pdbr >> 32) as u32,
            reg::IOTLB_INV_ADDR_LO => self.inv_addr as u32,
            reg::IOTLB_INV_ADDR_HI => (self.inv_addr >> 32) as u32,
            reg::FAULT_VA_LO..=reg::FAULT_COUNT => {
                let f = *self.shared.fault();
                match off {
                    reg::FAULT_VA_LO => f.va as u32,
                    reg::FAULT_VA_HI => (f.va >> 32) as u32,
                    reg::FAULT_PDBR_LO => f.pdbr as u32,
                    reg::FAULT_PDBR_HI => (f.pdbr >> 32) as u32,
                    reg::FAULT_REASON => f.reason,
                    reg::FAULT_COUNT => f.count,
                    _ => 0,
                }
            }
            reg::ERROR_COUNT => self.shared.errors.load(Ordering::Relaxed),
            reg::STAT_COUNT => STAT_COUNT as u32,
            o if o >= reg::STAT_BASE => {
                let i = ((o - reg::STAT_BASE) / 8) as usize;
                let v = self.shared.counters.get_index(i).unwrap_or(0);
                if (o - reg::STAT_BASE) % 8 >= 4 {
                    (v >> 32) as u32
                } else {
                    v as u32
                }
            }
            _ => 0,
        }
    }

    pub fn write_reg(&mut self, off: u64, v: u32) {
        let enabled = self.cfg.enabled;
        match off {
            reg::DRV_FEATURES => {
                self.cfg.features = v & feat::DEVICE;
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
                    self.cfg.mtu = v;
                    self.configure();
                } else {
                    warn!("guest wrote MTU {v}, outside {MTU_MIN}..={MTU_MAX}: ignored");
                    self.shared.raise(cause::ERROR);
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
                    for w in &self.workers {
                        let _ = w.wake.write(1);
                    }
                }
            }
            reg::ITR => {
                self.shared.irqs.lock().itr = Duration::from_micros(u64::from(v.min(ITR_MAX_US)))
            }
            reg::NOTIFY_LO if !enabled => lo(&mut self.cfg.notify, v),
            reg::NOTIFY_HI if !enabled => hi(&mut self.cfg.notify, v),
            reg::POLL_US => {
                self.cfg.poll = Duration::from_micros(u64::from(v.min(crate::abi::POLL_MAX_US)));
                self.configure();
            }
            reg::TX_BASE_LO if !enabled => lo(&mut self.cfg.tx.base, v),
            reg::TX_BASE_HI if !enabled => hi(&mut self.cfg.tx.base, v),
            reg::TX_SIZE if !enabled => self.cfg.tx.size = v,
            reg::RX_BASE_LO if !enabled => lo(&mut self.cfg.rx.base, v),
            reg::RX_BASE_HI if !enabled => hi(&mut self.cfg.rx.base, v),
            reg::RX_SIZE if !enabled => self.cfg.rx.size = v,
            reg::TX_TAIL => self.doorbell(v, true),
            reg::RX_TAIL => self.doorbell(v, false),
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
        if on == self.cfg.enabled {
            if on {
                // Re-enabling an enabled device looks for work, as before.
                for w in &self.workers {
                    let _ = w.wake.write(1);
                }
            }
            return;
        }
        if !on {
            self.cfg.enabled = false;
            self.configure();
            return;
        }
        let ring = |r: RingConfig| Ring {
            base: r.base,
            size: r.size,
            head: 0,
            tail: 0,
        };
        let (tx, rx) = (ring(self.cfg.tx), ring(self.cfg.rx));
        if !tx.is_valid() || !rx.is_valid() {
            warn!(
                "guest enabled the device with bad rings (tx {tx:?}, rx {rx:?}): staying disabled"
            );
            self.shared.counters.inc(Stat::bad_doorbells);
            self.shared.raise(cause::ERROR);
            return;
        }
        let (fd_backed, block_ok) = {
            let ram = self.ram();
            let n = self.cfg.notify;
            let ok = n.is_multiple_of(notify::SIZE)
                && ram
                    .snapshot()
                    .check_range(GuestAddress(n), notify::SIZE as usize);
            (ram.has_fd_backed_ram(), ok)
        };
        if !fd_backed && !self.warned_fdless {
            self.warned_fdless = true;
            error!("guest RAM was mapped without an fd: start QEMU with a shared memfd memory backend (-object memory-backend-memfd,id=mem,size=1G,share=on -machine memory-backend=mem)");
        }
        if self.cfg.notify != 0 && !block_ok {
            warn!(
                "notify block at {:#x} is misaligned or outside guest RAM: staying disabled",
                self.cfg.notify
            );
            self.shared.raise(cause::ERROR);
            return;
        }
        self.cfg.enabled = true;
        self.configure();
    }

    fn doorbell(&mut self, v: u32, tx: bool) {
        let size = if tx {
            self.cfg.tx.size
        } else {
            self.cfg.rx.size
        };
        if size == 0 || v >= size {
            warn!(
                "bad {} doorbell {v} (ring size {size})",
                if tx { "TX" } else { "RX" },
            );
            self.shared.counters.inc(Stat::bad_doorbells);
            self.shared.raise(cause::ERROR);
            return;
        }
        self.shared.queue.ring_doorbell(tx, v);
        if self.cfg.enabled {
            for w in &self.workers {
                let _ = w.wake.write(1);
            }
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
