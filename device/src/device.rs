//! A running device: the shared state, one worker thread per queue pair,
//! and what the vfio-user server needs to serve it.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use event_manager::{EventManager, MutEventSubscriber, SubscriberOps};
use log::error;
use vmm_sys_util::eventfd::EventFd;

use crate::backend::Backend;
use crate::command::CmdChannel;
use crate::control::Control;
use crate::counters::Counters;
use crate::datapath::DataPath;
use crate::memory::GuestRam;
use crate::queue::QueuePair;
use crate::server::VfioDevice;
use crate::shared::Shared;
use crate::tx::TxMode;

/// How the device is built.
#[derive(Clone, Copy, Debug)]
pub struct DeviceConfig {
    pub mac: [u8; 6],
    pub tx_mode: TxMode,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        Self {
            mac: [0x52, 0x54, 0, 0x76, 0x6d, 1],
            tx_mode: TxMode::Wire,
        }
    }
}

/// Makes the register file of one VMM connection.
#[derive(Clone)]
pub struct Connector {
    shared: Arc<Shared>,
    cmds: Vec<Arc<CmdChannel>>,
    ram: Arc<Mutex<GuestRam>>,
    mac: [u8; 6],
}

impl Connector {
    pub fn vfio(&self) -> VfioDevice {
        let control = Control::new(
            self.shared.clone(),
            self.cmds.clone(),
            self.ram.clone(),
            self.mac,
        );
        VfioDevice::new(control)
    }
}

struct Worker {
    cmds: Arc<CmdChannel>,
    stop: EventFd,
    thread: Option<JoinHandle<()>>,
}

pub struct Device {
    cfg: DeviceConfig,
    shared: Arc<Shared>,
    ram: Arc<Mutex<GuestRam>>,
    workers: Vec<Worker>,
}

impl Device {
    /// Creates the device and starts its queue worker on `backend`.
    pub fn start(mac: [u8; 6], backend: Box<dyn Backend>) -> io::Result<Self> {
        Self::start_with(
            DeviceConfig {
                mac,
                tx_mode: TxMode::Wire,
            },
            backend,
        )
    }

    pub fn start_with(cfg: DeviceConfig, backend: Box<dyn Backend>) -> io::Result<Self> {
        let shared = Arc::new(Shared::default());
        shared.irqs.lock().reset();
        let ram = Arc::new(Mutex::new(GuestRam::new()));
        let handle = ram.lock().unwrap_or_else(|p| p.into_inner()).handle();
        let cmds = Arc::new(CmdChannel::new()?);
        let stop = EventFd::new(libc::EFD_NONBLOCK)?;
        let exit = Arc::new(AtomicBool::new(false));
        let queue = QueuePair::new(shared.clone(), handle, cfg.tx_mode);
        let dp = DataPath::new(
            queue,
            shared.clone(),
            backend,
            cmds.clone(),
            stop.try_clone()?,
            exit.clone(),
        )?;
        let mut em = EventManager::<Box<dyn MutEventSubscriber + Send>>::new()
            .map_err(|e| io::Error::other(format!("event manager: {e:?}")))?;
        em.add_subscriber(Box::new(dp));
        let thread = std::thread::Builder::new()
            .name("vmso-queue0".into())
            .spawn(move || {
                while !exit.load(Ordering::SeqCst) {
                    if let Err(e) = em.run() {
                        error!("queue worker event loop: {e:?}");
                        break;
                    }
                }
            })?;
        Ok(Self {
            cfg,
            shared,
            ram,
            workers: vec![Worker {
                cmds,
                stop,
                thread: Some(thread),
            }],
        })
    }

    /// The vfio-user backend for one VMM connection. When it is dropped
    /// (the VMM disconnected), the device turns over: see
    /// [`Control::turnover`].
    pub fn vfio(&self) -> VfioDevice {
        self.connector().vfio()
    }

    /// What a server thread needs to make a [`VfioDevice`] per connection.
    pub fn connector(&self) -> Connector {
        Connector {
            shared: self.shared.clone(),
            cmds: self.workers.iter().map(|w| w.cmds.clone()).collect(),
            ram: self.ram.clone(),
            mac: self.cfg.mac,
        }
    }

    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        for w in &mut self.workers {
            let _ = w.stop.write(1);
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
    }
}

impl Device {
    /// Where the metrics document reads this device's counters: the
    /// totals, each queue pair's set and each coalescer's flush reasons.
    pub fn metrics_sources(&self) -> crate::metrics::Sources<'_> {
        crate::metrics::Sources {
            device: &self.shared.counters,
            // One queue pair: its counters are the device's.
            queues: vec![&self.shared.counters],
            coalescers: vec![&self.shared.flush],
        }
    }
}
