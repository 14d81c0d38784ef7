//! What the register file and the queue workers share: counters, the
//! interrupt line, the fault log and the ring indices. Nothing here is held
//! across a syscall or a ring pass; the queues themselves belong to their
//! worker (see [`crate::queue::pair`]).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::abi::cause;
use crate::counters::Counters;
use crate::engine::coalesce::FlushStats;
use crate::queue::irq::IrqLine;

#[derive(Clone, Copy, Debug, Default)]
pub struct FaultLog {
    pub va: u64,
    pub pdbr: u64,
    pub reason: u32,
    pub count: u32,
    /// The queue pair of the last fault.
    pub queue: u32,
}

/// "No doorbell since the worker last looked".
pub const NO_DOORBELL: u32 = u32::MAX;

/// The indices of one queue pair, as the registers show them. The worker
/// publishes heads and the tails it adopted; the register file posts
/// doorbells, which the worker takes with [`QueueRegs::take_doorbell`].
#[derive(Debug)]
pub struct QueueRegs {
    pub tx_head: AtomicU32,
    pub tx_tail: AtomicU32,
    pub rx_head: AtomicU32,
    pub rx_tail: AtomicU32,
    tx_doorbell: AtomicU32,
    rx_doorbell: AtomicU32,
}

impl Default for QueueRegs {
    fn default() -> Self {
        Self {
            tx_head: AtomicU32::new(0),
            tx_tail: AtomicU32::new(0),
            rx_head: AtomicU32::new(0),
            rx_tail: AtomicU32::new(0),
            tx_doorbell: AtomicU32::new(NO_DOORBELL),
            rx_doorbell: AtomicU32::new(NO_DOORBELL),
        }
    }
}

impl QueueRegs {
    /// A doorbell write: the tail the driver published.
    pub fn ring_doorbell(&self, tx: bool, tail: u32) {
        let (db, shown) = if tx {
            (&self.tx_doorbell, &self.tx_tail)
        } else {
            (&self.rx_doorbell, &self.rx_tail)
        };
        shown.store(tail, Ordering::Release);
        db.store(tail, Ordering::Release);
    }

    /// The latest doorbell since the last call, if any.
    pub fn take_doorbell(&self, tx: bool) -> Option<u32> {
        let db = if tx {
            &self.tx_doorbell
        } else {
            &self.rx_doorbell
        };
        let v = db.swap(NO_DOORBELL, Ordering::AcqRel);
        (v != NO_DOORBELL).then_some(v)
    }

    pub fn clear(&self) {
        for a in [&self.tx_head, &self.tx_tail, &self.rx_head, &self.rx_tail] {
            a.store(0, Ordering::Release);
        }
        self.tx_doorbell.store(NO_DOORBELL, Ordering::Release);
        self.rx_doorbell.store(NO_DOORBELL, Ordering::Release);
    }
}

/// Reads from the backend that RSS steered to another pair, waiting for it.
pub const INBOX_MAX: usize = 1024;

/// What one queue pair shares: its indices, its counters, and the reads
/// other pairs' workers steered to it.
#[derive(Default)]
pub struct QueueShared {
    pub regs: QueueRegs,
    pub counters: Counters,
    /// The pair's receive coalescer's flush reasons (for the metrics).
    pub flush: Arc<FlushStats>,
    pub inbox: Mutex<std::collections::VecDeque<Vec<u8>>>,
}

impl QueueShared {
    /// Queues a steered read; false (dropped) when the inbox is full.
    pub fn post(&self, read: &[u8]) -> bool {
        let mut q = self.inbox.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() >= INBOX_MAX {
            return false;
        }
        q.push_back(read.to_vec());
        true
    }

    pub fn take_inbox(&self) -> std::collections::VecDeque<Vec<u8>> {
        std::mem::take(&mut *self.inbox.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

pub struct Shared {
    /// Device-wide counters (control path, VMM); the queue pairs keep their
    /// own, and `STAT[i]` is the sum of all.
    pub counters: Counters,
    pub irqs: IrqLine,
    fault: Mutex<FaultLog>,
    /// ERROR_COUNT: ERROR causes raised since the last reset.
    pub errors: AtomicU32,
    pub queues: Vec<QueueShared>,
}

impl Shared {
    pub fn new(queues: usize) -> Self {
        Self {
            counters: Counters::default(),
            irqs: IrqLine::default(),
            fault: Mutex::default(),
            errors: AtomicU32::new(0),
            queues: (0..queues.max(1)).map(|_| QueueShared::default()).collect(),
        }
    }

    /// Counter `i` summed over the device and every queue pair.
    pub fn total(&self, i: usize) -> Option<u64> {
        let mut v = self.counters.get_index(i)?;
        for q in &self.queues {
            v = v.wrapping_add(q.counters.get_index(i).unwrap_or(0));
        }
        Some(v)
    }

    /// Every counter's summary line (`name value`), totals, non-zero only.
    pub fn summary(&self) -> String {
        crate::counters::STAT_NAMES
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                let v = self.total(i).unwrap_or(0);
                (v != 0).then(|| format!("{n} {v}"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn clear_counters(&self) {
        self.counters.clear();
        for q in &self.queues {
            q.counters.clear();
        }
    }

    pub fn fault(&self) -> MutexGuard<'_, FaultLog> {
        self.fault.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Raises interrupt causes; ERROR also counts in ERROR_COUNT.
    pub fn raise(&self, bits: u32) {
        if bits & cause::ERROR != 0 {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.irqs.raise(bits, &self.counters);
    }

    /// Raises TX/RX causes of queue pair `q` (counted on that pair).
    pub fn raise_queue(&self, q: usize, bits: u32) {
        let c = &self.queues.get(q).unwrap_or(&self.queues[0]).counters;
        self.irqs.raise_queue(q, bits, c);
    }

    /// Clears what a device reset clears here (counters are the caller's).
    pub fn reset(&self) {
        self.irqs.lock().reset();
        *self.fault() = FaultLog::default();
        self.errors.store(0, Ordering::Relaxed);
        for q in &self.queues {
            q.regs.clear();
            q.take_inbox();
        }
    }
}
