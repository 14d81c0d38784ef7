//! Control changes, sent from the register file to a queue worker and
//! acknowledged before the register access completes, so that the guest
//! keeps synchronous register semantics while the worker owns its queues.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use log::error;
use vmm_sys_util::eventfd::EventFd;

/// Longest a register access waits for a worker. A worker checks for
/// commands between packets, so this is only reached if it is wedged.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a ring lives, as programmed through the registers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingConfig {
    pub base: u64,
    pub size: u32,
}

/// Everything a queue worker takes from the register file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueConfig {
    /// This pair is in use and the device is enabled.
    pub enabled: bool,
    /// The device is enabled (a pair beyond QUEUES still reads its backend
    /// and hands every frame to a pair in use).
    pub device_enabled: bool,
    /// Queue pairs in use (QUEUES), for RSS steering.
    pub queues: usize,
    pub tx: RingConfig,
    pub rx: RingConfig,
    /// DRV_FEATURES.
    pub features: u32,
    pub mtu: u32,
    /// Guest-physical address of the notify block; 0 = doorbells only.
    pub notify: u64,
    pub poll: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// New configuration. Going from disabled to enabled restarts the ring
    /// indices at 0; going to disabled stops all ring access.
    Configure(QueueConfig),
    /// New RSS key or indirection table.
    Rss(crate::engine::rss::Rss),
    /// IOTLB_INV with its operands.
    Invalidate { op: u32, pdbr: u64, addr: u64 },
    /// Device reset: drop rings, IOTLB, coalescing queues and held frames.
    Reset,
    /// Put the worker thread under the seccomp filter (`crate::host::seccomp`).
    Confine,
}

#[derive(Default)]
struct Inner {
    queue: VecDeque<(u64, Cmd)>,
    next: u64,
    done: u64,
}

/// One worker's command queue: the register file calls, the worker drains.
pub struct CmdChannel {
    inner: Mutex<Inner>,
    acked: Condvar,
    pending: AtomicBool,
    /// Wakes the worker's event loop.
    pub wake: EventFd,
}

impl CmdChannel {
    pub fn new() -> std::io::Result<Self> {
        Ok(Self {
            inner: Mutex::default(),
            acked: Condvar::new(),
            pending: AtomicBool::new(false),
            wake: EventFd::new(libc::EFD_NONBLOCK)?,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `cmd` and waits until the worker has applied it. False if the
    /// worker did not answer within `ACK_TIMEOUT`.
    pub fn call(&self, cmd: Cmd) -> bool {
        let seq = {
            let mut g = self.lock();
            g.next += 1;
            let seq = g.next;
            g.queue.push_back((seq, cmd));
            seq
        };
        self.pending.store(true, Ordering::Release);
        let _ = self.wake.write(1);
        let g = self.lock();
        let (g, t) = self
            .acked
            .wait_timeout_while(g, ACK_TIMEOUT, |g| g.done < seq)
            .unwrap_or_else(|p| p.into_inner());
        drop(g);
        if t.timed_out() {
            error!("queue worker did not apply {cmd:?} within {ACK_TIMEOUT:?}");
            return false;
        }
        true
    }

    /// Cheap check, for the worker between packets.
    pub fn pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Applies every queued command in order, acknowledging each.
    pub fn drain(&self, mut apply: impl FnMut(Cmd)) {
        self.pending.store(false, Ordering::Release);
        loop {
            let Some((seq, cmd)) = self.lock().queue.pop_front() else {
                return;
            };
            apply(cmd);
            self.lock().done = seq;
            self.acked.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn call_returns_after_the_worker_applied_it() {
        let ch = Arc::new(CmdChannel::new().unwrap());
        let applied = Arc::new(Mutex::new(Vec::new()));
        let (c2, a2) = (ch.clone(), applied.clone());
        let worker = std::thread::spawn(move || {
            while c2.wake.read().is_err() {
                std::thread::sleep(Duration::from_millis(1));
            }
            c2.drain(|cmd| a2.lock().unwrap().push(cmd));
        });
        assert!(ch.call(Cmd::Reset));
        assert_eq!(*applied.lock().unwrap(), vec![Cmd::Reset]);
        assert!(!ch.pending());
        worker.join().unwrap();
    }
}
