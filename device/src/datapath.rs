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

    fn service_tx(&mut self) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.service_tx(self.backend.as_mut());
    }

    fn drain_rx(&mut self) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut more = false;
        let now = Instant::now();
        let held = st.rx_held_len();
        let all_out = st.deliver_held();
        let mut delivered = held - st.rx_held_len();
        if !all_out {
            // Still no room: wait for the next RX doorbell.
            if delivered > 0 {
                st.raise_rx();
            }
            return;
        }
        while st.rx_ready() {
            if delivered == RX_BUDGET {
                more = true;
                break;
            }
            match self.backend.recv(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => {
                    if !st.receive(&self.buf[..n], now) {
                        break;
                    }
                    delivered += 1;
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
        if delivered > 0 {
            st.raise_rx();
        }
        drop(st);
        if more {
            // The backend is edge-triggered: come back for the rest after
            // whatever else is pending.
            let _ = self.kicks.rx.write(1);
        }
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
            self.service_tx();
        } else if fd == self.kicks.rx.as_raw_fd() {
            let _ = self.kicks.rx.read();
            self.drain_rx();
        } else if fd == self.backend.fd() {
            self.drain_rx();
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
