//! A running device: the shared state, one worker thread per queue pair,
//! and what the vfio-user server needs to serve it.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use event_manager::{EventManager, MutEventSubscriber, SubscriberOps};
use log::error;
use vmm_sys_util::eventfd::EventFd;

use crate::counters::Counters;
use crate::host::backend::Backend;
use crate::host::memory::GuestRam;
use crate::queue::command::CmdChannel;
use crate::queue::pair::QueuePair;
use crate::queue::shared::Shared;
use crate::queue::tx::TxMode;
use crate::queue::worker::DataPath;
use crate::vfio::registers::Control;
use crate::vfio::server::VfioDevice;

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
        Self::start_queues(cfg, vec![backend])
    }

    /// A device with one queue pair per backend (at most
    /// [`MAX_QUEUES`](crate::abi::MAX_QUEUES)), each served by its own
    /// worker thread on its own backend: the queues of a multi-queue TAP.
    pub fn start_queues(cfg: DeviceConfig, backends: Vec<Box<dyn Backend>>) -> io::Result<Self> {
        let n = backends.len();
        if n == 0 || n > crate::abi::MAX_QUEUES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{n} queue pairs: the device takes 1..={}",
                    crate::abi::MAX_QUEUES
                ),
            ));
        }
        let shared = Arc::new(Shared::new(n));
        shared.irqs.lock().reset();
        let ram = Arc::new(Mutex::new(GuestRam::new()));
        let handle = ram.lock().unwrap_or_else(|p| p.into_inner()).handle();
        let cmds = (0..n)
            .map(|_| CmdChannel::new().map(Arc::new))
            .collect::<io::Result<Vec<_>>>()?;
        let mut workers = Vec::with_capacity(n);
        for (q, backend) in backends.into_iter().enumerate() {
            let stop = EventFd::new(libc::EFD_NONBLOCK)?;
            let exit = Arc::new(AtomicBool::new(false));
            let queue = QueuePair::new(q, shared.clone(), handle.clone(), cfg.tx_mode);
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
                .name(format!("vmso-queue{q}"))
                .spawn(move || {
                    while !exit.load(Ordering::SeqCst) {
                        if let Err(e) = em.run() {
                            error!("queue worker event loop: {e:?}");
                            break;
                        }
                    }
                })?;
            workers.push(Worker {
                cmds: cmds[q].clone(),
                stop,
                thread: Some(thread),
            });
        }
        Ok(Self {
            cfg,
            shared,
            ram,
            workers,
        })
    }

    /// Puts every queue worker under the seccomp filter (applied by each
    /// worker on its own thread, between packets).
    pub fn confine_workers(&self) -> Result<(), io::Error> {
        for w in &self.workers {
            if !w.cmds.call(crate::queue::command::Cmd::Confine) {
                return Err(io::Error::other(
                    "a queue worker did not confirm its seccomp filter",
                ));
            }
        }
        Ok(())
    }

    /// Counters of queue pair `q`.
    pub fn queue_counters(&self, q: usize) -> Option<&Counters> {
        self.shared.queues.get(q).map(|s| &s.counters)
    }

    /// Every counter summed over the device and its queue pairs.
    pub fn summary(&self) -> String {
        self.shared.summary()
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
    pub fn metrics_sources(&self) -> crate::host::metrics::Sources<'_> {
        crate::host::metrics::Sources {
            device: &self.shared.counters,
            queues: self.shared.queues.iter().map(|q| &q.counters).collect(),
            coalescers: self.shared.queues.iter().map(|q| &*q.flush).collect(),
        }
    }
}
