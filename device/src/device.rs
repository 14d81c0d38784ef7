//! A running device: shared state, the data-path thread, and what the
//! vfio-user server needs to serve it.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use event_manager::{EventManager, MutEventSubscriber, SubscriberOps};
use log::error;
use vmm_sys_util::eventfd::EventFd;

use crate::backend::Backend;
use crate::counters::Counters;
use crate::datapath::DataPath;
use crate::server::{Kicks, VfioDevice};
use crate::state::DeviceState;

pub struct Device {
    state: Arc<Mutex<DeviceState>>,
    kicks: Arc<Kicks>,
    counters: Arc<Counters>,
    stop: EventFd,
    thread: Option<JoinHandle<()>>,
}

impl Device {
    /// Creates the device and starts its data-path thread on `backend`.
    pub fn start(mac: [u8; 6], backend: Box<dyn Backend>) -> io::Result<Self> {
        let counters = Arc::new(Counters::default());
        let state = Arc::new(Mutex::new(DeviceState::new(mac, counters.clone())));
        let kicks = Arc::new(Kicks {
            tx: EventFd::new(libc::EFD_NONBLOCK)?,
            rx: EventFd::new(libc::EFD_NONBLOCK)?,
        });
        let stop = EventFd::new(libc::EFD_NONBLOCK)?;
        let exit = Arc::new(AtomicBool::new(false));
        let dp = DataPath::new(
            state.clone(),
            backend,
            kicks.clone(),
            stop.try_clone()?,
            exit.clone(),
        )?;
        let mut em = EventManager::<Box<dyn MutEventSubscriber + Send>>::new()
            .map_err(|e| io::Error::other(format!("event manager: {e:?}")))?;
        em.add_subscriber(Box::new(dp));
        let thread = std::thread::Builder::new()
            .name("vmso-datapath".into())
            .spawn(move || {
                while !exit.load(Ordering::SeqCst) {
                    if let Err(e) = em.run() {
                        error!("data path event loop: {e:?}");
                        break;
                    }
                }
            })?;
        Ok(Self {
            state,
            kicks,
            counters,
            stop,
            thread: Some(thread),
        })
    }

    /// The vfio-user backend that serves this device.
    pub fn vfio(&self) -> VfioDevice {
        VfioDevice::new(self.state.clone(), self.kicks.clone())
    }

    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    pub fn state(&self) -> &Arc<Mutex<DeviceState>> {
        &self.state
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        let _ = self.stop.write(1);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
