//! Interrupt causes, auto-masking, MSI-X eventfds and moderation (ITR).
//!
//! [`IrqLine`] is shared by the register file (mask/unmask, cause writes) and
//! the data path (raising causes, firing moderated vectors). Its lock covers
//! only the bookkeeping; the eventfd writes happen after it is released.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use vmm_sys_util::eventfd::EventFd;

use crate::abi::{cause, NUM_VECTORS, VEC_MISC, VEC_MQ_MISC, VEC_MQ_QUEUE0, VEC_RX, VEC_TX};
use crate::counters::{Counters, Stat};

const NV: usize = NUM_VECTORS as usize;

/// The vector that carries a cause (of queue pair 0 without MQ).
pub fn vector_of(cause_bit: u32, mq: bool) -> usize {
    match (cause_bit, mq) {
        (_, true) => VEC_MQ_MISC,
        (cause::TX, false) => VEC_TX,
        (cause::RX, false) => VEC_RX,
        _ => VEC_MISC,
    }
}

/// Eventfds to signal once the lock is dropped.
#[derive(Default)]
#[must_use = "the vectors must be signalled"]
pub struct Fire([Option<Arc<EventFd>>; NV]);

impl Fire {
    /// Writes every collected eventfd; counts the interrupts delivered.
    pub fn signal(self, counters: &Counters) {
        for fd in self.0.into_iter().flatten() {
            if fd.write(1).is_ok() {
                counters.inc(Stat::interrupts);
            }
        }
    }
}

#[derive(Default)]
pub struct Irqs {
    fds: [Option<Arc<EventFd>>; NV],
    last: [Option<Instant>; NV],
    /// Vectors held back by moderation, to fire at their deadline.
    held: [Option<Instant>; NV],
    /// Causes raised but not yet signalled (because masked).
    pub cause: u32,
    /// 1 = masked.
    pub mask: u32,
    pub itr: Duration,
    /// MQ negotiated: a vector per queue pair (see `raise_queue`).
    pub mq: bool,
    /// Per queue pair (bit q), with MQ: vector masked, and raised while masked.
    qmask: u32,
    qpending: u32,
}

impl Irqs {
    pub fn reset(&mut self) {
        self.cause = 0;
        self.mask = cause::ALL;
        self.mq = false;
        self.qmask = u32::MAX;
        self.qpending = 0;
        self.itr = Duration::ZERO;
        self.held = Default::default();
        self.last = Default::default();
    }

    pub fn set_fd(&mut self, vector: usize, fd: Option<EventFd>) -> bool {
        match self.fds.get_mut(vector) {
            Some(slot) => {
                *slot = fd.map(Arc::new);
                true
            }
            None => false,
        }
    }

    /// Raises `bits`: unmasked ones are signalled and then masked (auto-mask),
    /// masked ones stay pending in `cause` until unmasked.
    pub fn raise(&mut self, bits: u32, now: Instant) -> Fire {
        self.cause |= bits & cause::ALL;
        self.deliver(now)
    }

    pub fn unmask(&mut self, bits: u32, now: Instant) -> Fire {
        self.mask &= !bits;
        self.deliver(now)
    }

    fn deliver(&mut self, now: Instant) -> Fire {
        let mut out = Fire::default();
        let fire = self.cause & !self.mask;
        if fire == 0 {
            return out;
        }
        self.cause &= !fire;
        self.mask |= fire;
        let mut vectors = [false; NV];
        for b in 0..5 {
            if fire & (1 << b) != 0 {
                vectors[vector_of(1 << b, self.mq)] = true;
            }
        }
        for (v, on) in vectors.into_iter().enumerate() {
            if on {
                self.signal(v, now, &mut out);
            }
        }
        out
    }

    /// Raises TX/RX `bits` of queue pair `q`. Without MQ they are queue 0's
    /// causes in INT_CAUSE; with MQ the pair's vector fires unless masked
    /// (auto-mask), and a raise while masked fires at the next unmask.
    pub fn raise_queue(&mut self, q: usize, bits: u32, now: Instant) -> Fire {
        if !self.mq {
            return self.raise(bits, now);
        }
        let mut out = Fire::default();
        let bit = 1u32 << q;
        if self.qmask & bit != 0 {
            self.qpending |= bit;
        } else {
            self.qmask |= bit;
            self.signal(VEC_MQ_QUEUE0 + q, now, &mut out);
        }
        out
    }

    /// INT_UNMASK of queue pair `q` (with MQ).
    pub fn unmask_queue(&mut self, q: usize, now: Instant) -> Fire {
        let mut out = Fire::default();
        let bit = 1u32 << q;
        self.qmask &= !bit;
        if self.qpending & bit != 0 {
            self.qpending &= !bit;
            self.qmask |= bit;
            self.signal(VEC_MQ_QUEUE0 + q, now, &mut out);
        }
        out
    }

    fn signal(&mut self, v: usize, now: Instant, out: &mut Fire) {
        if self.held[v].is_some() {
            return; // already due at its deadline
        }
        if let Some(last) = self.last[v] {
            let due = last + self.itr;
            if now < due {
                self.held[v] = Some(due);
                return;
            }
        }
        self.last[v] = Some(now);
        out.0[v] = self.fds[v].clone();
    }

    /// Collects the held vectors whose deadline has passed; returns them and
    /// the next deadline still pending.
    pub fn fire_due(&mut self, now: Instant) -> (Fire, Option<Instant>) {
        let mut out = Fire::default();
        for v in 0..NV {
            if self.held[v].is_some_and(|d| d <= now) {
                self.held[v] = None;
                self.last[v] = Some(now);
                out.0[v] = self.fds[v].clone();
            }
        }
        (out, self.held.iter().flatten().min().copied())
    }

    /// The earliest moderation deadline, if a vector is held.
    pub fn next_due(&self) -> Option<Instant> {
        self.held.iter().flatten().min().copied()
    }
}

/// The interrupt state shared by the register file and the data path.
#[derive(Default)]
pub struct IrqLine {
    state: Mutex<Irqs>,
}

impl IrqLine {
    /// The bookkeeping, for register reads and writes. Never held across a
    /// syscall: signal the returned [`Fire`] after dropping the guard.
    pub fn lock(&self) -> MutexGuard<'_, Irqs> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn raise(&self, bits: u32, counters: &Counters) {
        let fire = self.lock().raise(bits, Instant::now());
        fire.signal(counters);
    }

    pub fn raise_queue(&self, q: usize, bits: u32, counters: &Counters) {
        let fire = self.lock().raise_queue(q, bits, Instant::now());
        fire.signal(counters);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_mask_and_pending_on_unmask() {
        let c = Counters::default();
        let mut irq = Irqs::default();
        irq.reset();
        let fd = EventFd::new(libc::EFD_NONBLOCK).unwrap();
        irq.set_fd(VEC_TX, Some(fd.try_clone().unwrap()));
        let now = Instant::now();
        irq.raise(cause::TX, now).signal(&c);
        assert!(fd.read().is_err(), "masked: nothing fires");
        irq.unmask(cause::TX, now).signal(&c);
        assert_eq!(fd.read().unwrap(), 1);
        assert_eq!(irq.mask & cause::TX, cause::TX, "auto-masked after firing");
        irq.raise(cause::TX, now).signal(&c);
        assert!(fd.read().is_err());
        assert_eq!(c.get(Stat::interrupts), 1);
    }

    #[test]
    fn mq_vectors_auto_mask_per_queue_pair() {
        let c = Counters::default();
        let mut irq = Irqs::default();
        irq.reset();
        irq.mq = true;
        let fds: Vec<EventFd> = (0..3)
            .map(|_| EventFd::new(libc::EFD_NONBLOCK).unwrap())
            .collect();
        for (v, fd) in fds.iter().enumerate() {
            irq.set_fd(v, Some(fd.try_clone().unwrap()));
        }
        let now = Instant::now();
        irq.raise_queue(1, cause::RX, now).signal(&c);
        assert!(fds[2].read().is_err(), "masked after reset");
        irq.unmask_queue(1, now).signal(&c);
        assert_eq!(fds[2].read().unwrap(), 1, "pending raise fires at unmask");
        irq.raise_queue(1, cause::TX, now).signal(&c);
        assert!(fds[2].read().is_err(), "auto-masked");
        irq.unmask_queue(0, now).signal(&c);
        irq.raise_queue(0, cause::TX, now).signal(&c);
        assert_eq!(fds[1].read().unwrap(), 1, "queue 0 on vector 1");
        irq.unmask(cause::ERROR, now).signal(&c);
        irq.raise(cause::ERROR, now).signal(&c);
        assert_eq!(fds[0].read().unwrap(), 1, "misc on vector 0");
    }

    #[test]
    fn moderation_holds_then_fires() {
        let c = Counters::default();
        let mut irq = Irqs::default();
        irq.reset();
        irq.itr = Duration::from_micros(100);
        let fd = EventFd::new(libc::EFD_NONBLOCK).unwrap();
        irq.set_fd(VEC_RX, Some(fd.try_clone().unwrap()));
        let t0 = Instant::now();
        irq.unmask(cause::RX, t0).signal(&c);
        irq.raise(cause::RX, t0).signal(&c);
        assert_eq!(fd.read().unwrap(), 1);
        irq.unmask(cause::RX, t0).signal(&c);
        irq.raise(cause::RX, t0 + Duration::from_micros(10))
            .signal(&c);
        assert!(fd.read().is_err(), "held by ITR");
        let (f, due) = irq.fire_due(t0 + Duration::from_micros(50));
        f.signal(&c);
        assert_eq!(due, Some(t0 + Duration::from_micros(100)));
        let (f, due) = irq.fire_due(t0 + Duration::from_micros(100));
        f.signal(&c);
        assert_eq!(due, None);
        assert_eq!(fd.read().unwrap(), 1);
    }
}
