//! The data-path thread: an event-manager loop over the TX and RX doorbells,
//! the backend's readability, the moderation timer and shutdown.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use event_manager::{EventOps, EventSet, Events, MutEventSubscriber};
use log::{error, warn};
use vmm_sys_util::eventfd::EventFd;
use vmm_sys_util::timerfd::TimerFd;

use crate::backend::Backend;
use crate::server::Kicks;
use crate::state::DeviceState;

/// Frames taken from the backend per wake-up before yielding to TX.
const RX_BUDGET: usize = 256;
/// Largest frame the backend can hand us.
const RX_FRAME_MAX: usize = 65536 + 64;
/// Longest stretch `service` runs before yielding to the event loop.
const SERVICE_MAX: std::time::Duration = std::time::Duration::from_millis(10);

pub struct DataPath {
    state: Arc<Mutex<DeviceState>>,
    backend: Box<dyn Backend>,
    kicks: Arc<Kicks>,
    stop: EventFd,
    timer: TimerFd,
    exit: Arc<AtomicBool>,
    buf: Vec<u8>,
}

impl DataPath {
    pub fn new(
        state: Arc<Mutex<DeviceState>>,
        backend: Box<dyn Backend>,
        kicks: Arc<Kicks>,
        stop: EventFd,
        exit: Arc<AtomicBool>,
    ) -> io::Result<Self> {
        Ok(Self {
            state,
            backend,
            kicks,
            stop,
            timer: TimerFd::new().map_err(io::Error::from)?,
            exit,
            buf: vec![0; RX_FRAME_MAX],
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, DeviceState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Services both queues. With the notify block in use, keeps polling the
    /// driver's published tails (and the backend) for the poll window after
    /// the last work, so that a busy driver needs no doorbells; then asks for
    /// doorbells again. Bounded: after `SERVICE_MAX` it re-queues itself so
    /// that other events (shutdown among them) are seen.
    fn service(&mut self) {
        let start = Instant::now();
        let mut last_work = start;
        loop {
            let tx = {
                let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
                st.sync_tails();
                st.tx_active();
                st.service_tx(self.backend.as_mut())
            };
            let rx = self.drain_rx();
            let Some(window) = self.state().poll_window() else {
                return;
            };
            let now = Instant::now();
            if now.duration_since(start) > SERVICE_MAX {
                let _ = self.kicks.tx.write(1);
                return;
            }
            if tx || rx {
                last_work = now;
                continue;
            }
            if now.duration_since(last_work) < window {
                std::thread::yield_now();
                continue;
            }
            if !self.state().tx_idle() {
                return;
            }
        }
    }

    /// Moves frames from the backend into the RX ring; true if any moved.
    fn drain_rx(&mut self) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.sync_tails();
        let mut more = false;
        let now = Instant::now();
        let held = st.rx_held_len();
        let all_out = st.deliver_held();
        let mut delivered = held - st.rx_held_len();
        if !all_out && !st.rx_blocked() {
            // Still no room: wait for the next RX doorbell.
            if delivered > 0 {
                st.raise_rx();
            }
            return delivered > 0;
        }
        while st.rx_ready() {
            if delivered == RX_BUDGET {
                more = true;
                break;
            }
            match self.backend.recv(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => {
                    delivered += 1;
                    if !st.receive(&self.buf[..n], now) {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    st.receive_idle();
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    warn!("backend read failed: {e}");
                    st.counters.inc(crate::counters::Stat::backend_errors);
                    break;
                }
            }
        }
        if st.rx_ready() {
            st.rx_unblocked();
        } else if st.enabled() && st.rx_blocked() {
            more = true; // buffers arrived while we looked: go on
        }
        if delivered > 0 {
            st.raise_rx();
        }
        drop(st);
        if more {
            // The backend is edge-triggered: come back for the rest after
            // whatever else is pending.
            let _ = self.kicks.rx.write(1);
        }
        delivered > 0
    }

    fn rearm_timer(&mut self) {
        let next = {
            let mut guard = self.state();
            let st = &mut *guard;
            st.irqs.fire_due(Instant::now(), &st.counters)
        };
        let next = next.map(|d| d.saturating_duration_since(Instant::now()));
        let r = match next {
            Some(d) if !d.is_zero() => self.timer.reset(d, None),
            Some(_) => self.timer.reset(std::time::Duration::from_micros(1), None),
            None => self.timer.clear(),
        };
        if let Err(e) = r {
            error!("moderation timer: {e}");
        }
    }
}

impl MutEventSubscriber for DataPath {
    fn init(&mut self, ops: &mut EventOps) {
        let fds = [
            Events::new(&self.kicks.tx, EventSet::IN),
            Events::new(&self.kicks.rx, EventSet::IN),
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
        if fd == self.kicks.tx.as_raw_fd() {
            let _ = self.kicks.tx.read();
            self.service();
        } else if fd == self.kicks.rx.as_raw_fd() {
            let _ = self.kicks.rx.read();
            self.service();
        } else if fd == self.backend.fd() {
            self.service();
        } else if fd == self.timer.as_raw_fd() {
            let _ = self.timer.wait();
        } else if fd == self.stop.as_raw_fd() {
            let _ = self.stop.read();
            self.exit.store(true, Ordering::SeqCst);
            return;
        }
        self.rearm_timer();
    }
}
