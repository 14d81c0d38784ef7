//! A queue worker: one thread per queue pair, an event-manager loop over
//! its wake-up eventfd (doorbells and commands), the backend's readability,
//! the moderation timer and shutdown. It owns its [`QueuePair`] and its
//! backend; nothing it holds is shared under a lock across a syscall.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_manager::{EventOps, EventSet, Events, MutEventSubscriber};
use log::{error, warn};
use vmm_sys_util::eventfd::EventFd;
use vmm_sys_util::timerfd::TimerFd;

use crate::counters::Stat;
use crate::host::backend::Backend;
use crate::queue::command::CmdChannel;
use crate::queue::pair::QueuePair;
use crate::queue::shared::Shared;

/// Frames taken from the backend per wake-up before yielding to TX.
const RX_BUDGET: usize = 256;
/// Largest frame the backend can hand us.
const RX_FRAME_MAX: usize = 65536 + 64;
/// Longest stretch `service` runs before yielding to the event loop.
const SERVICE_MAX: Duration = Duration::from_millis(10);

pub struct DataPath {
    queue: QueuePair,
    shared: Arc<Shared>,
    backend: Box<dyn Backend>,
    /// This worker's command channel.
    cmds: Arc<CmdChannel>,
    /// Every worker's, to wake a pair that RSS steered a frame to.
    peers: Vec<Arc<CmdChannel>>,
    stop: EventFd,
    timer: TimerFd,
    exit: Arc<AtomicBool>,
    buf: Vec<u8>,
}

impl DataPath {
    pub fn new(
        queue: QueuePair,
        shared: Arc<Shared>,
        backend: Box<dyn Backend>,
        peers: Vec<Arc<CmdChannel>>,
        stop: EventFd,
        exit: Arc<AtomicBool>,
    ) -> io::Result<Self> {
        Ok(Self {
            cmds: peers[queue.index()].clone(),
            peers,
            queue,
            shared,
            backend,
            stop,
            timer: TimerFd::new().map_err(io::Error::from)?,
            exit,
            buf: vec![0; RX_FRAME_MAX],
        })
    }

    fn commands(&mut self) {
        let q = &mut self.queue;
        self.cmds.drain(|c| q.apply(c));
    }

    /// Re-queues this worker behind whatever else is pending.
    fn come_back(&self) {
        let _ = self.cmds.wake.write(1);
    }

    /// Services both queues. With the notify block in use, keeps polling the
    /// driver's published tails (and the backend) for the poll window after
    /// the last work, so that a busy driver needs no doorbells; then asks for
    /// doorbells again. Bounded: after `SERVICE_MAX` it re-queues itself so
    /// that other events (shutdown among them) are seen. Commands are
    /// applied between packets.
    fn service(&mut self) {
        let start = Instant::now();
        let mut last_work = start;
        loop {
            self.commands();
            self.queue.sync_tails();
            self.queue.tx_active();
            let cmds = self.cmds.clone();
            let (done, more) = self
                .queue
                .service_tx(self.backend.as_mut(), &|| cmds.pending());
            let rx = self.drain_rx();
            let now = Instant::now();
            let tx = done > 0 || more;
            if now.duration_since(start) > SERVICE_MAX {
                self.come_back();
                return;
            }
            let Some(window) = self.queue.poll_window() else {
                if more || self.cmds.pending() {
                    continue;
                }
                return;
            };
            if tx || rx {
                last_work = now;
                continue;
            }
            if now.duration_since(last_work) < window {
                std::thread::yield_now();
                continue;
            }
            if !self.queue.tx_idle() {
                return;
            }
        }
    }

    /// A pair beyond QUEUES: hands what its backend queue receives to the
    /// pairs in use, so that nothing the host sends there is stranded.
    fn forward_rx(&mut self) -> bool {
        let me = self.queue.index();
        let vnet_len = self.backend.vnet_hdr_len();
        let mut reads = 0;
        while reads < RX_BUDGET {
            match self.backend.recv(&mut self.buf) {
                Ok(n) => {
                    reads += 1;
                    let read = &self.buf[..n];
                    if n > 0 {
                        let t = self.queue.steer(read, vnet_len).unwrap_or(0);
                        hand_over(&self.shared, &self.peers, me, t, read);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return reads > 0,
            }
        }
        self.come_back();
        true
    }

    /// Moves frames from the backend into the RX ring; true if any moved.
    fn drain_rx(&mut self) -> bool {
        if self.queue.forwarding() {
            return self.forward_rx();
        }
        let me = self.queue.index();
        let q = &mut self.queue;
        q.sync_tails();
        let mut more = false;
        let now = Instant::now();
        let vnet_len = self.backend.vnet_hdr_len();
        let held = q.rx_held_len();
        let all_out = q.deliver_held();
        let mut delivered = held - q.rx_held_len();
        // Reads other pairs steered here first: they were read earlier.
        let mut inbox = self.shared.queues[me].take_inbox();
        while let Some(mut read) = inbox.pop_front() {
            if !q.enabled() {
                break;
            }
            delivered += 1;
            q.receive_read(&mut read, vnet_len, now);
        }
        if !all_out && !q.rx_blocked() {
            // Still no room: wait for the next RX doorbell.
            if delivered > 0 {
                q.raise_rx();
            }
            return delivered > 0;
        }
        let mut empty = 0;
        while q.rx_ready() {
            if delivered + empty == RX_BUDGET || self.cmds.pending() {
                // A budget spent on empty reads only is a closed peer.
                more = delivered > 0 || empty < RX_BUDGET;
                break;
            }
            match self.backend.recv(&mut self.buf) {
                Ok(0) => {
                    // An empty read carries no frame, but more may follow:
                    // the backend is edge-triggered, so keep reading.
                    self.shared.queues[me].counters.inc(Stat::backend_errors);
                    empty += 1;
                }
                Ok(n) => {
                    delivered += 1;
                    let read = &mut self.buf[..n];
                    if let Some(t) = q.steer(read, vnet_len) {
                        hand_over(&self.shared, &self.peers, me, t, read);
                        continue;
                    }
                    if !q.receive_read(read, vnet_len, now) {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    q.receive_idle();
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    warn!("queue pair {me}: backend read failed: {e}");
                    self.shared.queues[me].counters.inc(Stat::backend_errors);
                    break;
                }
            }
        }
        if q.rx_ready() {
            q.rx_unblocked();
        } else if q.enabled() && q.rx_blocked() {
            more = true; // buffers arrived while we looked: go on
        }
        if delivered > 0 {
            q.raise_rx();
        }
        if more {
            // The backend is edge-triggered: come back for the rest after
            // whatever else is pending.
            self.come_back();
        }
        delivered > 0
    }

    fn rearm_timer(&mut self) {
        let (fire, next) = self.shared.irqs.lock().fire_due(Instant::now());
        fire.signal(&self.shared.queues[self.queue.index()].counters);
        let next = next.map(|d| d.saturating_duration_since(Instant::now()));
        let r = match next {
            Some(d) if !d.is_zero() => self.timer.reset(d, None),
            Some(_) => self.timer.reset(Duration::from_micros(1), None),
            None => self.timer.clear(),
        };
        if let Err(e) = r {
            error!("moderation timer: {e}");
        }
    }
}

/// Hands a backend read from pair `me` to pair `t`'s inbox and wakes its
/// worker; counted as steered, or as dropped when the inbox is full.
fn hand_over(shared: &Shared, peers: &[Arc<CmdChannel>], me: usize, t: usize, read: &[u8]) {
    let c = &shared.queues[me].counters;
    if shared.queues[t].post(read) {
        c.inc(Stat::rx_steered);
        let _ = peers[t].wake.write(1);
    } else {
        c.inc(Stat::rx_dropped);
    }
}

impl MutEventSubscriber for DataPath {
    fn init(&mut self, ops: &mut EventOps) {
        let fds = [
            Events::new(&self.cmds.wake, EventSet::IN),
            Events::new_raw(self.backend.fd(), EventSet::IN | EventSet::EDGE_TRIGGERED),
            Events::new(&self.timer, EventSet::IN),
            Events::new(&self.stop, EventSet::IN),
        ];
        for e in fds {
            if let Err(err) = ops.add(e) {
                error!("data path: cannot watch fd {}: {err:?}", e.fd());
            }
        }
    }

    fn process(&mut self, events: Events, _ops: &mut EventOps) {
        let fd = events.fd();
        if fd == self.cmds.wake.as_raw_fd() {
            let _ = self.cmds.wake.read();
            self.service();
        } else if fd == self.backend.fd() {
            self.service();
        } else if fd == self.timer.as_raw_fd() {
            let _ = self.timer.wait();
        } else if fd == self.stop.as_raw_fd() {
            let _ = self.stop.read();
            self.commands();
            self.exit.store(true, Ordering::SeqCst);
            return;
        }
        self.rearm_timer();
    }
}
