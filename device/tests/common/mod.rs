//! What the binary's tests share: spawning `vmso-device` with inherited
//! fds, and a minimal VMM (vfio_user::Client, a memfd as guest RAM, one TX
//! and one RX ring) that sends and receives plain frames through it.
//!
//! This is not `vmso-tests`' Harness, which runs the device in the test
//! process: only this package's own integration tests can reach the binary
//! (`CARGO_BIN_EXE_vmso-device`). What any VMM does (guest RAM, MSI-X,
//! registers, RX buffers, frames on the wire) comes from `vmso_tests::client`
//! (a dev-dependency).

#![allow(dead_code)]

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;
use vmso_device::abi::{cmd, feat, reg, rxstat, txstat, RxDesc, TxDesc};
use vmso_tests::client;
pub use vmso_tests::client::send_frame as send_fd;
use vmso_tests::{RX_RING, TX_RING};

pub const BIN: &str = env!("CARGO_BIN_EXE_vmso-device");

pub use vmso_tests::tmpdir;

/// `vmso-device ARGS`, with `fds` inherited under their own numbers.
pub fn command(args: &[&str], fds: &[RawFd]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args).stdin(Stdio::null());
    let fds = fds.to_vec();
    // SAFETY: between fork and exec only async-signal-safe calls: fcntl.
    unsafe {
        c.pre_exec(move || {
            for &fd in &fds {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    c
}

/// Runs the binary to completion: (success, stderr).
pub fn run(args: &[&str], fds: &[RawFd]) -> (bool, String) {
    let out = command(args, fds).output().expect("run vmso-device");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Spawns the binary (stderr to `log`) and waits for its socket.
pub fn spawn(args: &[&str], fds: &[RawFd], wait_for: &Path, log: &Path) -> Child {
    let mut child = command(args, fds)
        .stderr(File::create(log).unwrap())
        .spawn()
        .expect("spawn vmso-device");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !wait_for.exists() {
        if let Some(st) = child.try_wait().unwrap() {
            panic!(
                "vmso-device exited ({st}) before {}: {}",
                wait_for.display(),
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "no {} after 10 s",
            wait_for.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// A `vmso-device` a test started and waits for: `--socket-path DIR/TAG.sock`
/// and `--metrics DIR/TAG.json`, then the test's own `args` (the wire and
/// the rest); stderr goes to `DIR/TAG.log`.
pub struct Running {
    pub child: Child,
    pub sock: PathBuf,
    pub metrics: PathBuf,
}

impl Running {
    pub fn start(dir: &Path, tag: &str, args: &[&str], fds: &[RawFd]) -> Self {
        Self::start_metrics(dir, tag, &dir.join(format!("{tag}.json")), args, fds)
    }

    /// Like [`Running::start`], with the metrics written to `metrics`.
    pub fn start_metrics(
        dir: &Path,
        tag: &str,
        metrics: &Path,
        args: &[&str],
        fds: &[RawFd],
    ) -> Self {
        let sock = dir.join(format!("{tag}.sock"));
        let metrics = metrics.to_path_buf();
        let mut all = vec![
            "--socket-path",
            sock.to_str().unwrap(),
            "--metrics",
            metrics.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        let child = spawn(&all, fds, &sock, &dir.join(format!("{tag}.log")));
        Self {
            child,
            sock,
            metrics,
        }
    }

    pub fn signal(&self, sig: libc::c_int) {
        signal(&self.child, sig);
    }

    /// SIGTERM, and the device exits with 0 within 10 s.
    pub fn stop(mut self) {
        stop(&mut self.child);
    }
}

/// A `vmso-device` on TAP `name` (opened here as a manager opens it, its fd
/// passed with `--tap-fd` and closed here), and its first metrics document.
pub fn start_on_tap(dir: &Path, tag: &str, name: &str) -> (Running, serde_json::Value) {
    let tap = open_tap(name);
    let tfd = tap.as_raw_fd();
    let device = Running::start(dir, tag, &["--tap-fd", &tfd.to_string()], &[tfd]);
    drop(tap);
    let v = wait_json(&device.metrics, |_| true);
    (device, v)
}

/// SIGTERM to `child`, which exits with 0 within 10 s.
pub fn stop(child: &mut Child) {
    signal(child, libc::SIGTERM);
    assert_eq!(wait_exit(child), 0);
}

pub fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, sig) }, 0);
}

/// Waits up to 10 s for the child to exit; its exit code.
pub fn wait_exit(child: &mut Child) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("vmso-device did not exit within 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A SOCK_SEQPACKET socketpair: (device end, test end). Both close-on-exec
/// (the device end is inherited through [`command`]).
pub fn seqpacket_pair() -> (OwnedFd, OwnedFd) {
    vmso_device::host::backend::seqpacket_pair().expect("socketpair")
}

/// Reads a JSON file once it parses and `ok` accepts it (10 s at most).
pub fn wait_json(path: &Path, ok: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(b) = std::fs::read(path) {
            let v: serde_json::Value =
                serde_json::from_slice(&b).expect("the metrics file is always whole JSON");
            if ok(&v) {
                return v;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} never satisfied the test",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub const RAM: u64 = 64 << 20;
// The rings and RX buffers sit where the Harness keeps them, 64 entries each.
const DATA: u64 = 0x40_0000;
const RING: u32 = 64;
const RX: client::RxRing = client::RxRing {
    size: RING,
    ..vmso_tests::RX
};

/// A minimal VMM on a vmso-device socket.
pub struct Vmm {
    client: vfio_user::Client,
    mem: GuestMemoryMmap,
    _irqs: Vec<EventFd>,
    tx_tail: u32,
    rx_tail: u32,
    rx_next: u32,
}

impl Vmm {
    /// Connects, maps RAM, sets the MSI-X eventfds, programs and enables
    /// the rings.
    pub fn connect(socket: &Path) -> Self {
        let mut client = vfio_user::Client::new(socket).expect("connect");
        let mem = client::map_ram(&mut client, &client::memfd(RAM), &[(0, RAM)]);
        let irqs = client::set_msix(&mut client, 3);
        let mut v = Self {
            client,
            mem,
            _irqs: irqs,
            tx_tail: 0,
            rx_tail: 0,
            rx_next: 0,
        };
        client::program_rings(&mut v.client, (TX_RING, RING), (RX_RING, RING));
        client::enable(&mut v.client, feat::DEVICE);
        v
    }

    pub fn write_reg(&mut self, off: u64, v: u32) {
        client::write_reg(&mut self.client, off, v);
    }

    pub fn read_reg(&mut self, off: u64) -> u32 {
        client::read_reg(&mut self.client, off)
    }

    /// The MAC the guest sees.
    pub fn mac(&mut self) -> [u8; 6] {
        let lo = self.read_reg(reg::MAC_LO).to_le_bytes();
        let hi = self.read_reg(reg::MAC_HI).to_le_bytes();
        [lo[0], lo[1], lo[2], lo[3], hi[0], hi[1]]
    }

    /// Sends one plain frame and waits for its descriptor to complete.
    pub fn send(&mut self, frame: &[u8]) {
        let i = self.tx_tail;
        let addr = DATA + u64::from(i) * 0x1_0000;
        self.mem.write_slice(frame, GuestAddress(addr)).unwrap();
        let d = TxDesc {
            addr,
            len: frame.len() as u32,
            cmd: cmd::EOP,
            ..Default::default()
        };
        let at = GuestAddress(TX_RING + u64::from(i) * 32);
        self.mem.write_obj(d, at).unwrap();
        self.tx_tail = (i + 1) % RING;
        let t = self.tx_tail;
        self.write_reg(reg::TX_TAIL, t);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let d: TxDesc = self.mem.read_obj(at).unwrap();
            if d.status & txstat::DD != 0 {
                assert_eq!(d.error, 0, "TX error");
                return;
            }
            assert!(Instant::now() < deadline, "TX never completed");
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    pub fn post_rx(&mut self, n: u32) {
        RX.post(&mut self.client, &self.mem, &mut self.rx_tail, n);
    }

    /// The next received frame (one buffer), within 10 s.
    pub fn recv(&mut self) -> Option<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let at = GuestAddress(RX_RING + u64::from(self.rx_next) * 32);
        loop {
            let d: RxDesc = self.mem.read_obj(at).unwrap();
            if d.status & rxstat::DD != 0 {
                assert!(d.status & rxstat::EOP != 0, "one buffer per frame here");
                let mut b = vec![0u8; d.len as usize];
                self.mem.read_slice(&mut b, GuestAddress(d.addr)).unwrap();
                self.rx_next = (self.rx_next + 1) % RING;
                return Some(b);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

/// A plain Ethernet frame of `len` bytes (IPv4 ethertype, pattern payload).
pub fn frame(len: usize, seed: u8) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x88, 0xb5];
    f.extend((0..len - 14).map(|i| (i as u8).wrapping_mul(31) ^ seed));
    f
}

/// Frames waiting on a SOCK_SEQPACKET / packet socket (non-blocking drain,
/// after waiting up to 5 s for the first).
pub fn drain(fd: RawFd, want: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while out.len() < want && Instant::now() < deadline {
        match client::recv_frame(fd) {
            Some(f) => out.push(f),
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    out
}

/// [`private_netns`], or false after saying that `test` is skipped.
pub fn private_netns_or_skip(test: &str) -> bool {
    let ok = private_netns();
    if !ok {
        eprintln!("SKIPPED {test}: needs root and /dev/net/tun");
    }
    ok
}

/// Runs `test` in a fresh private directory (see [`tmpdir`]), which is
/// removed after it.
pub fn in_tmpdir(tag: &str, test: impl FnOnce(&Path)) {
    let dir = tmpdir(tag);
    test(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// [`in_tmpdir`] in a private network namespace (see [`private_netns`]);
/// without one the test `name` is skipped, and says so.
pub fn in_private_netns(name: &str, tag: &str, test: impl FnOnce(&Path)) {
    if private_netns_or_skip(name) {
        in_tmpdir(tag, test);
    }
}

/// Moves the calling thread (a test's own) into a new network namespace,
/// so that TAPs and packet sockets it makes are private; false without the
/// privilege (or without /dev/net/tun), and the test should skip.
pub fn private_netns() -> bool {
    if !Path::new("/dev/net/tun").exists() {
        return false;
    }
    // SAFETY: unshare(2) of the network namespace, for this thread only.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return false;
    }
    // No IPv6 chatter (DAD, router solicitations) on the test's interfaces.
    let _ = std::fs::write("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
    true
}

#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

fn ifreq(name: &str, flags: libc::c_int) -> IfReq {
    let mut r = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: flags as libc::c_short,
        _pad: [0; 22],
    };
    r.name[..name.len()].copy_from_slice(name.as_bytes());
    r
}

/// A TAP `name` as a manager opens it: IFF_TAP|IFF_NO_PI|IFF_VNET_HDR,
/// close-on-exec (pass it with [`command`]).
pub fn open_tap(name: &str) -> OwnedFd {
    open_tap_flags(name, 0)
}

/// One queue of a multi-queue TAP `name` (IFF_MULTI_QUEUE).
pub fn open_tap_queue(name: &str) -> OwnedFd {
    open_tap_flags(name, libc::IFF_MULTI_QUEUE)
}

fn open_tap_flags(name: &str, extra: libc::c_int) -> OwnedFd {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .unwrap();
    let mut r = ifreq(
        name,
        libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR | extra,
    );
    // SAFETY: TUNSETIFF reads and writes one ifreq-sized struct.
    let rc = unsafe { libc::ioctl(f.as_raw_fd(), libc::TUNSETIFF, &mut r) };
    assert_eq!(rc, 0, "TUNSETIFF: {}", std::io::Error::last_os_error());
    f.into()
}

/// Sets interface `name` up.
pub fn link_up(name: &str) {
    // SAFETY: a plain datagram socket for the interface ioctls.
    let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    assert!(s >= 0);
    // SAFETY: a fresh fd we own.
    let s = unsafe { OwnedFd::from_raw_fd(s) };
    let mut r = ifreq(name, 0);
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write one ifreq.
    unsafe {
        assert_eq!(libc::ioctl(s.as_raw_fd(), libc::SIOCGIFFLAGS, &mut r), 0);
        r.flags |= libc::IFF_UP as libc::c_short;
        assert_eq!(libc::ioctl(s.as_raw_fd(), libc::SIOCSIFFLAGS, &mut r), 0);
    }
}

/// An AF_PACKET socket on interface `name`: the host's side of the TAP.
pub fn packet_socket(name: &str) -> OwnedFd {
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: socket(2) with constant arguments.
    let s = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            i32::from(proto),
        )
    };
    assert!(s >= 0, "AF_PACKET: {}", std::io::Error::last_os_error());
    // SAFETY: a fresh fd we own.
    let s = unsafe { OwnedFd::from_raw_fd(s) };
    let c = std::ffi::CString::new(name).unwrap();
    // SAFETY: a valid C string.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    assert!(idx > 0);
    // SAFETY: zeroed sockaddr_ll, then filled; bind with its size.
    unsafe {
        let mut sa: libc::sockaddr_ll = std::mem::zeroed();
        sa.sll_family = libc::AF_PACKET as u16;
        sa.sll_protocol = proto;
        sa.sll_ifindex = idx as i32;
        let r = libc::bind(
            s.as_raw_fd(),
            (&sa as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        );
        assert_eq!(r, 0, "bind AF_PACKET: {}", std::io::Error::last_os_error());
    }
    s
}

/// The host's side of interface `name`, set up: a packet socket on it.
pub fn host_side(name: &str) -> OwnedFd {
    link_up(name);
    packet_socket(name)
}

/// Waits up to 5 s for `want` among the frames on `fd` (others skipped).
pub fn wait_frame(fd: RawFd, want: &[u8]) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        for f in drain(fd, 1) {
            if f == want {
                return true;
            }
        }
    }
    false
}
