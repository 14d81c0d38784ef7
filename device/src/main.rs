//! `vmso-device`: serves one vmso NIC over a vfio-user socket, with a TAP
//! device (or, for tests, a socketpair) as its wire.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use log::{error, info, warn};

use vmso_device::backend::Backend;
use vmso_device::tap::Tap;
use vmso_device::tx::TxMode;
use vmso_device::{Device, DeviceConfig};

#[derive(Parser, Debug)]
#[command(version, about = "vmso: a vfio-user PCIe NIC with virtual-address DMA")]
struct Args {
    /// vfio-user socket path to create (must not exist).
    #[arg(long)]
    socket: PathBuf,
    /// TAP interface to attach (created if missing; needs CAP_NET_ADMIN then).
    #[arg(long)]
    tap: String,
    /// MAC address, e.g. 52:54:00:12:34:56.
    #[arg(long, default_value = "52:54:00:76:6d:01", value_parser = parse_mac)]
    mac: [u8; 6],
    /// Log level: error, warn, info, debug, trace.
    #[arg(long, default_value = "info")]
    log_level: String,
    /// Serve one VMM connection, then exit (default: keep serving).
    #[arg(long)]
    once: bool,
    /// What reaches the TAP for a TSO/USO packet: `wire` segments in the
    /// device (only MTU frames, each marked checksum-valid); `handoff`
    /// writes the whole superpacket with its GSO metadata, as QEMU's NICs
    /// do, and lets the host segment it if it must.
    #[arg(long, value_enum, default_value_t = TxModeArg::Wire)]
    tx_mode: TxModeArg,
    /// Open the TAP without a virtio-net header: the host then segments and
    /// checksums every superpacket it sends, and `--tx-mode handoff` falls
    /// back to wire.
    #[arg(long)]
    no_vnet_hdr: bool,
    /// `on`: after startup, every thread may make only the system calls
    /// serving needs (see device/src/seccomp.rs); `off` is for debugging.
    #[arg(long, value_enum, default_value_t = SeccompArg::On)]
    seccomp: SeccompArg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum SeccompArg {
    On,
    Off,
}

/// Installs the seccomp filter on every thread, once the TAP is open, the
/// socket listens and the threads run.
fn apply_seccomp(mode: SeccompArg) -> Result<(), String> {
    if mode == SeccompArg::Off {
        warn!("seccomp filter off (--seccomp=off)");
        return Ok(());
    }
    vmso_device::seccomp::install().map_err(|e| e.to_string())?;
    info!("seccomp filter installed");
    Ok(())
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum TxModeArg {
    Wire,
    Handoff,
}

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(format!(
            "{s:?} is not a MAC address (six hex bytes separated by ':')"
        ));
    }
    let mut mac = [0u8; 6];
    for (m, p) in mac.iter_mut().zip(parts) {
        *m = u8::from_str_radix(p, 16).map_err(|_| format!("{s:?}: {p:?} is not a hex byte"))?;
    }
    if mac[0] & 1 != 0 {
        return Err(format!("{s:?} is a multicast address"));
    }
    Ok(mac)
}

/// Blocks SIGINT/SIGTERM in every thread and returns a thread that waits for
/// them, removes the socket and exits.
fn handle_signals(socket: PathBuf) -> std::io::Result<()> {
    // SAFETY: sigset manipulation on a local, zero-initialised sigset_t, then
    // pthread_sigmask on the calling (main) thread before any other thread
    // exists, so every thread inherits the mask.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    std::thread::Builder::new()
        .name("vmso-signals".into())
        .spawn(move || {
            let mut sig: libc::c_int = 0;
            // SAFETY: `set` is a valid sigset and `sig` a valid out pointer.
            unsafe { libc::sigwait(&set, &mut sig) };
            info!("signal {sig}: shutting down");
            let _ = std::fs::remove_file(&socket);
            std::process::exit(0);
        })?;
    Ok(())
}

fn run(args: Args) -> Result<(), String> {
    if args.socket.exists() {
        return Err(format!(
            "socket path {} already exists (another vmso-device running, or a stale socket: remove it)",
            args.socket.display()
        ));
    }
    let tap = Tap::open(&args.tap, !args.no_vnet_hdr).map_err(|e| e.to_string())?;
    info!(
        "attached TAP {} ({})",
        tap.name(),
        if tap.has_vnet_hdr() {
            "virtio-net header, host offloads on"
        } else {
            "no virtio-net header"
        }
    );
    let tx_mode = match args.tx_mode {
        TxModeArg::Handoff if tap.has_vnet_hdr() => TxMode::Handoff,
        TxModeArg::Handoff => {
            warn!(
                "--tx-mode handoff needs a TAP with a virtio-net header: segmenting in the device"
            );
            TxMode::Wire
        }
        TxModeArg::Wire => TxMode::Wire,
    };
    handle_signals(args.socket.clone()).map_err(|e| format!("signal thread: {e}"))?;
    let backend: Box<dyn Backend> = Box::new(tap);
    let cfg = DeviceConfig {
        mac: args.mac,
        tx_mode,
    };
    let device = Device::start_with(cfg, backend).map_err(|e| format!("start device: {e}"))?;
    let server = vfio_user::Server::new(
        &args.socket,
        true,
        vmso_device::server::irqs(),
        vmso_device::server::regions(),
    )
    .map_err(|e| format!("listen on {}: {e}", args.socket.display()))?;
    info!("listening on {}", args.socket.display());
    apply_seccomp(args.seccomp)?;
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
        info!("device counters:\n{}", device.counters().summary());
        // Quiesces the queues, resets the device and drops the VMM's guest
        // RAM mappings and interrupt eventfds: the next VMM starts afresh.
        drop(vfio);
        if args.once {
            return Ok(());
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    env_logger::Builder::new()
        .parse_filters(&args.log_level)
        .format_timestamp_millis()
        .init();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vmso-device: {e}");
            ExitCode::FAILURE
        }
    }
}
