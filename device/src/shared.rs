//! What the register file and the queue workers share: counters, the
//! interrupt line, the fault log and the ring indices. Nothing here is held
//! across a syscall or a ring pass; the queues themselves belong to their
//! worker (see [`crate::queue`]).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::abi::cause;
use crate::coalesce::FlushStats;
use crate::counters::Counters;
use crate::irq::IrqLine;

#[derive(Clone, Copy, Debug, Default)]
pub struct FaultLog {
    pub va: u64,
    pub pdbr: u64,
    pub reason: u32,
    pub count: u32,
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

#[derive(Default)]
pub struct Shared {
    pub counters: Counters,
    pub irqs: IrqLine,
    fault: Mutex<FaultLog>,
    /// ERROR_COUNT: ERROR causes raised since the last reset.
    pub errors: AtomicU32,
    pub queue: QueueRegs,
    /// The receive coalescer's flush reasons (for the metrics).
    pub flush: Arc<FlushStats>,
}

impl Shared {
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

    /// Clears what a device reset clears here (counters are the caller's).
    pub fn reset(&self) {
        self.irqs.lock().reset();
        *self.fault() = FaultLog::default();
        self.errors.store(0, Ordering::Relaxed);
        self.queue.clear();
    }
}
