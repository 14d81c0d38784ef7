//! The process around a device: signals (signal-hook), the metrics ticker,
//! and the one shutdown path. SIGUSR1 writes the metrics; SIGTERM and
//! SIGINT shut down. Shutting down (on a signal, or when `--once` has
//! served its VMM) writes the metrics one last time, flushes the capture,
//! removes the socket the process created, and exits.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use log::{info, warn};
use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;

use crate::host::metrics::{DeviceMetrics, Document, MetricsError, MetricsWriter, ProcessInfo};
use crate::host::pcap::PcapHandle;

/// The signals the runtime handles.
pub const SIGNALS: [libc::c_int; 3] = [SIGTERM, SIGINT, SIGUSR1];

/// Reads the device's counters (a closure over the device).
pub type Source = Box<dyn Fn() -> DeviceMetrics + Send + Sync>;

struct Inner {
    started: Instant,
    info: ProcessInfo,
    source: Source,
    writer: Mutex<Option<MetricsWriter>>,
    pcap: Option<PcapHandle>,
    /// The socket path this process created (removed at exit).
    socket: Option<PathBuf>,
    disconnects: AtomicU64,
    shutting_down: AtomicBool,
}

/// Shared by the serving loop, the signal thread and the ticker.
#[derive(Clone)]
pub struct Runtime(Arc<Inner>);

/// Blocks [`SIGNALS`] in the calling thread, so that the threads it starts
/// later inherit the mask and only the signal thread (which unblocks them)
/// takes them. Call first in `main`, before any thread exists.
pub fn block_signals() {
    set_mask(libc::SIG_BLOCK);
}

fn set_mask(how: libc::c_int) {
    // SAFETY: a zeroed sigset_t initialised by sigemptyset/sigaddset, then
    // pthread_sigmask on the calling thread with a null old-set pointer.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in SIGNALS {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(how, &set, std::ptr::null_mut());
    }
}

impl Runtime {
    pub fn new(
        info: ProcessInfo,
        source: Source,
        writer: Option<MetricsWriter>,
        pcap: Option<PcapHandle>,
        socket: Option<PathBuf>,
    ) -> Self {
        Self(Arc::new(Inner {
            started: Instant::now(),
            info,
            source,
            writer: Mutex::new(writer),
            pcap,
            socket,
            disconnects: AtomicU64::new(0),
            shutting_down: AtomicBool::new(false),
        }))
    }

    /// The current document.
    pub fn document(&self, trigger: &'static str) -> Document {
        let i = &self.0;
        let mut d = Document::new(trigger, i.started, i.info.clone(), (i.source)());
        d.vmm.disconnects = i.disconnects.load(Ordering::Relaxed);
        d.pcap = i.pcap.as_ref().map(|p| p.stats());
        d
    }

    /// Writes the metrics (if `--metrics` was given) and flushes the
    /// capture. Errors are returned for the caller to report.
    pub fn write_metrics(&self, trigger: &'static str) -> Result<(), MetricsError> {
        if let Some(p) = &self.0.pcap {
            p.flush();
        }
        let mut writer = self.0.writer.lock().unwrap_or_else(|p| p.into_inner());
        let Some(writer) = writer.as_mut() else {
            return Ok(());
        };
        let mut doc = self.document(trigger);
        writer.write(&mut doc)
    }

    fn write_logged(&self, trigger: &'static str) {
        if let Err(e) = self.write_metrics(trigger) {
            warn!("{e}");
        }
    }

    /// A VMM connection ended.
    pub fn vmm_disconnected(&self) {
        self.0.disconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// Starts the signal thread: SIGUSR1 writes the metrics, SIGTERM and
    /// SIGINT shut down.
    pub fn spawn_signal_thread(&self) -> std::io::Result<()> {
        let mut signals = Signals::new(SIGNALS)?;
        let rt = self.clone();
        std::thread::Builder::new()
            .name("vmso-signals".into())
            .spawn(move || {
                set_mask(libc::SIG_UNBLOCK);
                for sig in signals.forever() {
                    match sig {
                        SIGUSR1 => {
                            info!("SIGUSR1: writing metrics");
                            rt.write_logged("signal");
                        }
                        _ => {
                            let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
                            rt.shutdown(name, 0);
                        }
                    }
                }
            })?;
        Ok(())
    }

    /// Starts the ticker: metrics every `every` (none if zero).
    pub fn spawn_ticker(&self, every: Duration) -> std::io::Result<()> {
        if every.is_zero() {
            return Ok(());
        }
        let rt = self.clone();
        std::thread::Builder::new()
            .name("vmso-metrics".into())
            .spawn(move || loop {
                std::thread::sleep(every);
                rt.write_logged("interval");
            })?;
        Ok(())
    }

    /// The one way out: final metrics, capture flushed and closed, socket
    /// removed, exit with `code`. A second caller (a signal during an exit
    /// already under way) waits for the first to finish the exit.
    pub fn shutdown(&self, why: &str, code: i32) -> ! {
        if self.0.shutting_down.swap(true, Ordering::SeqCst) {
            loop {
                std::thread::park();
            }
        }
        info!("{why}: shutting down");
        self.write_logged("exit");
        if let Some(p) = &self.0.pcap {
            p.close();
            let s = p.stats();
            info!(
                "capture {}: {} frames out, {} in, {} bytes{}",
                s.path,
                s.frames_out,
                s.frames_in,
                s.file_bytes,
                if s.dropped_cap > 0 {
                    format!(", {} frames over the size cap", s.dropped_cap)
                } else {
                    String::new()
                }
            );
        }
        if let Some(sock) = &self.0.socket {
            let _ = std::fs::remove_file(sock);
        }
        log::logger().flush();
        std::process::exit(code);
    }
}
