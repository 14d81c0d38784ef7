//! Building a device from the command line and serving it: the wire
//! (TAP queues, fds handed over, or a test socketpair), the listening
//! socket, metrics and capture, the process runtime, the seccomp filters,
//! and the loop that serves one VMM after another.

use std::os::fd::{OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use log::{error, info, warn};

use crate::host::backend::{Backend, SocketBackend};
use crate::host::cli::{self, derive_mac, format_mac, Args, SeccompArg, TxModeArg};
use crate::host::metrics::{self, MetricsWriter, ProcessInfo};
use crate::host::pcap::{PcapConfig, PcapHandle, PcapWriter};
use crate::host::runtime::{self, Runtime};
use crate::host::tap::{Tap, TapOptions};
use crate::queue::tx::TxMode;
use crate::{Device, DeviceConfig};

/// Puts the queue workers under the seccomp filter, once the TAP is open and
/// the socket listens (the vfio-user thread filters itself when it starts:
/// see `serve_confined`). The signal and metrics threads stay unfiltered:
/// they write files (metrics, capture) and remove the socket.
fn apply_seccomp(mode: SeccompArg, device: &Device) -> Result<(), String> {
    if mode == SeccompArg::Off {
        warn!("seccomp filter off (--seccomp=off)");
        return Ok(());
    }
    crate::host::seccomp::install_handler().map_err(|e| e.to_string())?;
    device.confine_workers().map_err(|e| e.to_string())?;
    info!("seccomp filter installed on the queue workers");
    Ok(())
}

/// Serves VMMs on a thread of its own, under the seccomp filter unless it
/// is off; returns when `serve` does (after one VMM with `--once`).
fn serve_confined(args: &Args, device: &Device, server: &vfio_user::Server, rt: &Runtime) {
    std::thread::scope(|s| {
        let t = std::thread::Builder::new()
            .name("vmso-vfio-user".into())
            .spawn_scoped(s, || {
                if args.seccomp == SeccompArg::On {
                    if let Err(e) =
                        crate::host::seccomp::install_thread(seccompiler::SeccompAction::Trap)
                    {
                        error!("seccomp filter on the vfio-user thread: {e}");
                        return;
                    }
                }
                serve(args, device, server, rt);
            });
        if let Err(e) = t {
            error!("cannot start the vfio-user thread: {e}");
        }
    });
}

/// How often the capture is flushed when no metrics ticker does it.
const PCAP_FLUSH_SECS: u64 = 5;

/// The wire: one backend per queue pair, its name (for the MAC and the
/// capture) and whether it carries a virtio-net header.
struct Wire {
    backends: Vec<Box<dyn Backend>>,
    name: String,
    vnet: bool,
}

/// The number of queue pairs: `--queues`, else one per `--tap-fd` fd.
fn queue_count(args: &Args) -> Result<usize, String> {
    let fds = args.tap_fd.as_ref().map(|f| f.0.len());
    match (args.queues.map(usize::from), fds) {
        (Some(q), Some(n)) if q != n => Err(format!(
            "--tap-fd: {n} fd(s) for --queues {q}: pass one fd per queue"
        )),
        (Some(q), _) if q > 1 && args.socketpair_fd.is_some() => {
            Err("--socketpair-fd: one queue only".into())
        }
        (Some(q), _) => Ok(q),
        (None, Some(n)) => Ok(n),
        (None, None) => Ok(1),
    }
}

fn open_wire(args: &Args) -> Result<Wire, String> {
    let queues = queue_count(args)?;
    if let Some(fd) = args.socketpair_fd {
        let fd = cli::seqpacket_fd(fd).map_err(|e| e.to_string())?;
        let b = SocketBackend::from_fd(fd, false)
            .map_err(|e| format!("--socketpair-fd: set O_NONBLOCK: {e}"))?;
        return Ok(Wire {
            backends: vec![Box::new(b)],
            name: "socketpair".into(),
            vnet: false,
        });
    }
    let taps = match (&args.tap_fd, &args.tap) {
        (Some(fds), _) => Tap::from_fds(&fds.0, !args.no_vnet_hdr).map_err(|e| e.to_string())?,
        (None, Some(name)) => {
            let opts = TapOptions {
                vnet_hdr: !args.no_vnet_hdr,
                host_gro: (args.host_gro_us > 0)
                    .then(|| Duration::from_micros(u64::from(args.host_gro_us))),
            };
            Tap::open_queues(name, queues, opts).map_err(|e| e.to_string())?
        }
        (None, None) => unreachable!("clap requires one of --tap, --tap-fd"),
    };
    let tap = &taps[0];
    info!(
        "attached TAP {} ({} queue{}, {})",
        tap.name(),
        taps.len(),
        if taps.len() == 1 { "" } else { "s" },
        if tap.has_host_offloads() {
            "virtio-net header, host offloads on"
        } else if tap.has_vnet_hdr() {
            "virtio-net header, host offloads refused"
        } else {
            "no virtio-net header"
        }
    );
    Ok(Wire {
        name: tap.name().to_string(),
        vnet: tap.has_vnet_hdr(),
        backends: taps
            .into_iter()
            .map(|t| Box::new(t) as Box<dyn Backend>)
            .collect(),
    })
}

/// The listening socket: bound here (`--socket-path`, removed at exit) or
/// handed over (`--socket-fd`).
enum Listen {
    Path(PathBuf),
    Fd(OwnedFd, RawFd),
}

fn check_listen(args: &Args) -> Result<Listen, String> {
    if let Some(fd) = args.socket_fd {
        let owned = cli::listener_fd(fd).map_err(|e| e.to_string())?;
        return Ok(Listen::Fd(owned, fd));
    }
    let path = args.socket_path.clone().expect("clap requires a socket");
    if path.exists() {
        return Err(format!(
            "--socket-path {}: already exists (another vmso-device running, or a stale socket: remove it)",
            path.display()
        ));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(format!(
            "--socket-path {}: directory {} does not exist (create it, or choose another path)",
            path.display(),
            dir.display()
        ));
    }
    Ok(Listen::Path(path))
}

/// Checks the metrics path before anything is opened or served.
fn open_metrics(args: &Args) -> Result<Option<MetricsWriter>, String> {
    match &args.metrics {
        Some(p) => Ok(Some(MetricsWriter::open(p).map_err(|e| e.to_string())?)),
        None => Ok(None),
    }
}

/// Creates the capture file (its headers name the wire) before anything
/// is served, so that a bad path fails at once.
fn open_pcap(args: &Args, wire: &Wire, tx_mode: TxMode) -> Result<Option<PcapHandle>, String> {
    Ok(match &args.pcap {
        Some(p) => Some(
            PcapWriter::create(PcapConfig {
                path: p.clone(),
                snaplen: args.pcap_snaplen,
                max_bytes: args.pcap_max_bytes,
                iface: wire.name.clone(),
                comment: format!(
                    "vmso-device wire side of {}; tx-mode {}: {}",
                    wire.name,
                    tx_mode_name(tx_mode),
                    match tx_mode {
                        TxMode::Wire => "every outbound frame is a wire (MTU) frame",
                        TxMode::Handoff => "outbound TSO/USO packets are GSO superpackets handed to the host (each commented)",
                    }
                ),
            })
            .map_err(|e| e.to_string())?,
        ),
        None => None,
    })
}

fn tx_mode_name(m: TxMode) -> &'static str {
    match m {
        TxMode::Wire => "wire",
        TxMode::Handoff => "handoff",
    }
}

pub fn run(args: Args) -> Result<(), String> {
    let listen = check_listen(&args)?;
    let metrics = open_metrics(&args)?;
    let wire = open_wire(&args)?;
    let tx_mode = match args.tx_mode {
        TxModeArg::Handoff if wire.vnet => TxMode::Handoff,
        TxModeArg::Handoff => {
            warn!(
                "--tx-mode handoff needs a TAP with a virtio-net header: segmenting in the device"
            );
            TxMode::Wire
        }
        TxModeArg::Wire => TxMode::Wire,
    };
    let mac = match args.mac {
        Some(m) => m,
        None => {
            let seed = match &listen {
                Listen::Path(p) if args.socketpair_fd.is_some() => p.display().to_string(),
                _ => wire.name.clone(),
            };
            derive_mac(&seed)
        }
    };
    info!(
        "MAC {}{}",
        format_mac(&mac),
        if args.mac.is_none() {
            " (derived from the wire's name)"
        } else {
            ""
        }
    );
    let pcap = open_pcap(&args, &wire, tx_mode)?;
    let info = ProcessInfo {
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION"),
        mac: format_mac(&mac),
        wire: wire.name.clone(),
        socket: match &listen {
            Listen::Path(p) => p.display().to_string(),
            Listen::Fd(_, n) => format!("fd {n}"),
        },
        tx_mode: tx_mode_name(tx_mode).into(),
        vnet_hdr: wire.vnet,
    };
    // One capture for every queue: each queue's backend records into it.
    let backends: Vec<Box<dyn Backend>> = match &pcap {
        Some(p) => wire.backends.into_iter().map(|b| p.wrap(b)).collect(),
        None => wire.backends,
    };
    let cfg = DeviceConfig { mac, tx_mode };
    let device =
        Arc::new(Device::start_queues(cfg, backends).map_err(|e| format!("start device: {e}"))?);
    let irqs = crate::vfio::server::irqs();
    let regions = crate::vfio::server::regions();
    let (server, created) = match listen {
        Listen::Path(p) => (
            vfio_user::Server::new(&p, true, irqs, regions)
                .map_err(|e| {
                    format!(
                        "--socket-path {}: cannot listen ({e}): the directory must be writable and the path at most 107 bytes",
                        p.display()
                    )
                })?,
            Some(p),
        ),
        Listen::Fd(fd, _) => (
            vfio_user::Server::from_owned_fd(fd, true, irqs, regions),
            None,
        ),
    };
    let rt = start_runtime(&args, info, &device, metrics, pcap, created.clone())?;
    match &created {
        Some(p) => info!("listening on {}", p.display()),
        None => info!(
            "listening on the socket handed over as fd {}",
            args.socket_fd.unwrap_or(-1)
        ),
    }
    apply_seccomp(args.seccomp, &device)?;
    serve_confined(&args, &device, &server, &rt);
    rt.shutdown("served one VMM (--once)", 0)
}

/// Starts the signal thread and the metrics ticker, and writes the first
/// metrics document (a path that cannot be written fails here).
fn start_runtime(
    args: &Args,
    info: ProcessInfo,
    device: &Arc<Device>,
    metrics: Option<MetricsWriter>,
    pcap: Option<PcapHandle>,
    socket: Option<PathBuf>,
) -> Result<Runtime, String> {
    let dev = device.clone();
    let source: runtime::Source = Box::new(move || metrics::snapshot(&dev.metrics_sources()));
    let rt = Runtime::new(info, source, metrics, pcap, socket.clone());
    let cleanup = |e: String| {
        if let Some(s) = &socket {
            let _ = std::fs::remove_file(s);
        }
        e
    };
    rt.write_metrics("start")
        .map_err(|e| cleanup(e.to_string()))?;
    rt.spawn_signal_thread()
        .map_err(|e| cleanup(format!("start the signal thread: {e}")))?;
    // Without --metrics, the ticker only flushes the capture.
    let every = match (&args.metrics, &args.pcap) {
        (Some(_), _) => args.metrics_interval,
        (None, Some(_)) => PCAP_FLUSH_SECS,
        (None, None) => 0,
    };
    rt.spawn_ticker(Duration::from_secs(every))
        .map_err(|e| cleanup(format!("start the metrics thread: {e}")))?;
    Ok(rt)
}

/// Serves VMM connections, one after the other (one with `--once`).
fn serve(args: &Args, device: &Device, server: &vfio_user::Server, rt: &Runtime) {
    loop {
        let mut vfio = device.vfio();
        // Defence in depth: a panic while serving one VMM drops that
        // connection, and the next VMM is served.
        let served =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| server.run(&mut vfio)));
        match served {
            Ok(Ok(())) => info!("VMM disconnected"),
            Ok(Err(e)) => error!("vfio-user connection ended with an error: {e}"),
            Err(_) => error!("vfio-user connection handler panicked: connection dropped"),
        }
        info!("device counters:\n{}", device.summary());
        rt.vmm_disconnected();
        // Quiesces the queues, resets the device and drops the VMM's guest
        // RAM mappings and interrupt eventfds: the next VMM starts afresh.
        drop(vfio);
        if args.once {
            return;
        }
    }
}
