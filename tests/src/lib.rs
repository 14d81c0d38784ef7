//! The test harness: plays the VMM against a vmso device through
//! `vfio_user::Client`, with a shared memfd as guest RAM. It builds page
//! tables and rings in that RAM, rings doorbells, and collects the frames the
//! device sends from the other end of a socketpair backend.

pub mod capture;
pub mod client;
pub mod frames;
pub mod pagetable;
pub mod vmm;

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vfio_bindings::bindings::vfio::VFIO_PCI_CONFIG_REGION_INDEX;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;
use vmso_device::abi::{feat, reg, RxDesc, TxDesc};
use vmso_device::counters::Stat;
use vmso_device::host::backend::{Backend, SocketBackend};
use vmso_device::{Device, DeviceConfig};

pub use client::memfd;
pub use vmso_device::abi;

/// Everything the device offers but the multi-queue features: the ABI 1.x
/// view of queue pair 0 (vectors TX, RX, misc), as most tests use it.
pub const ABI1_FEATURES: u32 = feat::DEVICE & !(feat::MQ | feat::RSS);

/// Guest RAM: two DMA regions of one memfd, 0..1 GiB and 1..2 GiB + 64 MiB,
/// so that 1 GiB pages and region boundaries can both be exercised.
pub const RAM_SIZE: u64 = (2 << 30) + (64 << 20);
pub const REGION_SPLIT: u64 = 1 << 30;

/// Fixed guest-physical layout used by the tests.
pub const TX_RING: u64 = 0x10_0000;
pub const RX_RING: u64 = 0x11_0000;
pub const RX_BUFS: u64 = 0x20_0000; // 256 x 2 KiB
pub const HDR_BUF: u64 = 0x40_0000;
pub const PT_POOL: u64 = 0x100_0000; // page-table pages, 16 MiB
pub const DATA_POOL: u64 = 0x200_0000; // payload pages from here up

pub const TX_SIZE: u32 = 256;
pub const RX_SIZE: u32 = 256;
pub const RX_BUF_LEN: u32 = 2048;
/// The RX ring of queue pair 0 and its buffers, as [`Harness::post_rx`]
/// posts them.
pub const RX: client::RxRing = client::RxRing {
    ring: RX_RING,
    size: RX_SIZE,
    bufs: RX_BUFS,
    buf_len: RX_BUF_LEN,
};

pub struct Harness {
    pub client: vfio_user::Client,
    pub mem: GuestMemoryMmap,
    pub device: Device,
    pub peer: OwnedFd,
    pub irqs: Vec<EventFd>,
    pub socket: PathBuf,
    server: Option<std::thread::JoinHandle<()>>,
    /// Set when the harness is dropped: the server stops accepting.
    stop: Arc<AtomicBool>,
    pub tx_tail: u32,
    pub tx_head: u32,
    pub rx_tail: u32,
    pub rx_next: u32,
    pub pt: pagetable::Pool,
}

/// A socketpair backend (no virtio-net header), wrapped by `wrap`.
fn plain(
    wrap: impl FnOnce(SocketBackend) -> Box<dyn Backend>,
) -> impl FnOnce() -> (Box<dyn Backend>, OwnedFd) {
    move || {
        let (b, peer) = SocketBackend::pair().expect("socketpair");
        (wrap(b), peer)
    }
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A fresh private directory `vmso-test-TAG-PID` under the temp dir.
pub fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vmso-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

impl Harness {
    /// A device with the default MAC, RAM mapped, MSI-X eventfds set, rings
    /// programmed and the device enabled.
    pub fn new() -> Self {
        let mut h = Self::bare();
        h.setup_rings();
        h.enable();
        h
    }

    /// A connected device with RAM and IRQs but no rings programmed.
    pub fn bare() -> Self {
        Self::start(
            plain(|b| Box::new(b)),
            DeviceConfig::default(),
            false,
            |_, _| {},
        )
    }

    /// Like [`Harness::new`], on a backend whose frames carry a virtio-net
    /// header both ways, as a vnet-header TAP's do.
    pub fn vnet(cfg: DeviceConfig) -> Self {
        let make = || {
            let (b, peer) = SocketBackend::pair_vnet().expect("socketpair");
            (Box::new(b) as Box<dyn Backend>, peer)
        };
        let mut h = Self::start(make, cfg, false, |_, _| {});
        h.setup_rings();
        h.enable();
        h
    }

    /// [`Harness::vnet`] with `--tx-mode handoff`: TSO and USO packets go
    /// to the backend whole, with their GSO metadata.
    pub fn handoff() -> Self {
        Self::vnet(DeviceConfig {
            tx_mode: vmso_device::queue::tx::TxMode::Handoff,
            ..Default::default()
        })
    }

    /// Like [`Harness::new`], but the server goes on accepting connections
    /// after one ends (as `vmso-device` does), and `first` runs before the
    /// harness's own client connects: another VMM on the same device, which
    /// must have closed its connection when `first` returns.
    pub fn after(first: impl FnOnce(&Path, &Device)) -> Self {
        let mut h = Self::start(plain(|b| Box::new(b)), DeviceConfig::default(), true, first);
        h.setup_rings();
        h.enable();
        h
    }

    /// Like [`Harness::new`], on the socketpair backend wrapped by `wrap`.
    pub fn with_backend(
        wrap: impl FnOnce(SocketBackend) -> Box<dyn Backend>,
        cfg: DeviceConfig,
    ) -> Self {
        let mut h = Self::start(plain(wrap), cfg, false, |_, _| {});
        h.setup_rings();
        h.enable();
        h
    }

    /// A connected device with `n` queue pairs, each on its own socketpair
    /// backend, and no rings programmed. Pair 0's peer is `peer`; the
    /// others are returned, in order.
    pub fn multi(n: usize) -> (Self, Vec<OwnedFd>) {
        let mut peers = Vec::new();
        let mut backends: Vec<Box<dyn Backend>> = Vec::new();
        for _ in 0..n {
            let (b, p) = SocketBackend::pair().expect("socketpair");
            backends.push(Box::new(b));
            peers.push(p);
        }
        let peer0 = peers.remove(0);
        let h = Self::start_queues(
            move || (backends, peer0),
            DeviceConfig::default(),
            false,
            |_, _| {},
        );
        (h, peers)
    }

    fn start(
        make: impl FnOnce() -> (Box<dyn Backend>, OwnedFd),
        cfg: DeviceConfig,
        serve_many: bool,
        first: impl FnOnce(&Path, &Device),
    ) -> Self {
        Self::start_queues(
            move || {
                let (b, p) = make();
                (vec![b], p)
            },
            cfg,
            serve_many,
            first,
        )
    }

    fn start_queues(
        make: impl FnOnce() -> (Vec<Box<dyn Backend>>, OwnedFd),
        cfg: DeviceConfig,
        serve_many: bool,
        first: impl FnOnce(&Path, &Device),
    ) -> Self {
        let (backends, peer) = make();
        let device = Device::start_queues(cfg, backends).expect("device");
        let socket = std::env::temp_dir().join(format!(
            "vmso-test-{}-{}.sock",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_file(&socket);
        let server = vfio_user::Server::new(
            &socket,
            true,
            vmso_device::vfio::server::irqs(),
            vmso_device::vfio::server::regions(),
        )
        .expect("server");
        let connector = device.connector();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        // One VfioDevice per connection, as vmso-device serves them: its
        // drop turns the device over for the next VMM.
        let server = std::thread::spawn(move || loop {
            let mut vfio = connector.vfio();
            let _ = server.run(&mut vfio);
            drop(vfio);
            if !serve_many || stopped.load(Ordering::SeqCst) {
                break;
            }
        });
        first(&socket, &device);
        let mut client = vfio_user::Client::new(&socket).expect("client connects");

        let mem = client::map_ram(
            &mut client,
            &memfd(RAM_SIZE),
            &[(0, REGION_SPLIT), (REGION_SPLIT, RAM_SIZE - REGION_SPLIT)],
        );
        let irqs = client::set_msix(&mut client, abi::NUM_VECTORS);
        Self {
            client,
            mem,
            device,
            peer,
            irqs,
            socket,
            server: Some(server),
            stop,
            tx_tail: 0,
            tx_head: 0,
            rx_tail: 0,
            rx_next: 0,
            pt: pagetable::Pool::new(PT_POOL, 16 << 20),
        }
    }

    pub fn write_reg(&mut self, off: u64, v: u32) {
        client::write_reg(&mut self.client, off, v);
    }

    pub fn read_reg(&mut self, off: u64) -> u32 {
        client::read_reg(&mut self.client, off)
    }

    pub fn read_config(&mut self, off: u64) -> u32 {
        let mut b = [0u8; 4];
        self.client
            .region_read(VFIO_PCI_CONFIG_REGION_INDEX, off, &mut b)
            .expect("config read");
        u32::from_le_bytes(b)
    }

    /// A device statistic, read through the guest-visible STAT block.
    pub fn stat(&mut self, s: Stat) -> u64 {
        let off = reg::STAT_BASE + 8 * s as u64;
        u64::from(self.read_reg(off)) | (u64::from(self.read_reg(off + 4)) << 32)
    }

    pub fn setup_rings(&mut self) {
        client::program_rings(&mut self.client, (TX_RING, TX_SIZE), (RX_RING, RX_SIZE));
        self.tx_tail = 0;
        self.tx_head = 0;
        self.rx_tail = 0;
        self.rx_next = 0;
    }

    pub fn enable(&mut self) {
        client::enable(&mut self.client, ABI1_FEATURES);
    }

    pub fn write(&self, gpa: u64, data: &[u8]) {
        self.mem
            .write_slice(data, GuestAddress(gpa))
            .expect("guest write");
    }

    /// Zeroes TX descriptor `idx` (for a ring that restarts at 0).
    pub fn mem_clear_tx(&self, idx: u32) {
        self.mem
            .write_obj(
                TxDesc::default(),
                GuestAddress(TX_RING + u64::from(idx % TX_SIZE) * 32),
            )
            .unwrap();
    }

    pub fn read_tx_desc(&self, idx: u32) -> TxDesc {
        self.mem
            .read_obj(GuestAddress(TX_RING + u64::from(idx % TX_SIZE) * 32))
            .unwrap()
    }

    /// Posts one chain without ringing the doorbell; returns its first index.
    pub fn post(&mut self, descs: &[TxDesc]) -> u32 {
        let first = self.tx_tail;
        for d in descs {
            self.mem
                .write_obj(*d, GuestAddress(TX_RING + u64::from(self.tx_tail) * 32))
                .unwrap();
            self.tx_tail = (self.tx_tail + 1) % TX_SIZE;
        }
        first
    }

    pub fn doorbell(&mut self) {
        let t = self.tx_tail;
        self.write_reg(reg::TX_TAIL, t);
    }

    /// Waits until the descriptor at `idx` is done; returns its error code.
    pub fn wait_done(&mut self, idx: u32) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let d = self.read_tx_desc(idx);
            if d.status & abi::txstat::DD != 0 {
                return d.error;
            }
            assert!(
                Instant::now() < deadline,
                "TX descriptor {idx} never completed"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Posts a chain, rings, waits; returns the error code of the packet.
    pub fn send(&mut self, descs: &[TxDesc]) -> u16 {
        let first = self.post(descs);
        self.doorbell();
        let last = (first + descs.len() as u32 - 1) % TX_SIZE;
        let e = self.wait_done(last);
        assert_eq!(
            self.wait_done(first),
            e,
            "every descriptor carries the status"
        );
        e
    }

    /// Frames the device has sent so far (non-blocking drain).
    pub fn frames(&self) -> Vec<Vec<u8>> {
        client::recv_frames(self.peer.as_raw_fd())
    }

    /// Injects a frame as if it arrived from the wire.
    pub fn inject(&self, frame: &[u8]) {
        client::send_frame(self.peer.as_raw_fd(), frame);
    }

    /// Posts `n` RX buffers and rings the RX doorbell.
    pub fn post_rx(&mut self, n: u32) {
        RX.post(&mut self.client, &self.mem, &mut self.rx_tail, n);
    }

    /// Waits up to 5 s for the next received frame (following multi-buffer chains).
    pub fn recv_rx(&mut self) -> Option<(Vec<u8>, RxDesc)> {
        self.recv_rx_within(Duration::from_secs(5))
    }

    pub fn recv_rx_within(&mut self, wait: Duration) -> Option<(Vec<u8>, RxDesc)> {
        let deadline = Instant::now() + wait;
        let mut data = Vec::new();
        let mut first = None;
        loop {
            let i = self.rx_next;
            let d: RxDesc = self
                .mem
                .read_obj(GuestAddress(RX_RING + u64::from(i) * 32))
                .unwrap();
            if d.status & abi::rxstat::DD == 0 {
                if Instant::now() > deadline {
                    return None;
                }
                std::thread::sleep(Duration::from_micros(200));
                continue;
            }
            let mut buf = vec![0u8; d.len as usize];
            self.mem.read_slice(&mut buf, GuestAddress(d.addr)).unwrap();
            data.extend_from_slice(&buf);
            first.get_or_insert(d);
            self.rx_next = (self.rx_next + 1) % RX_SIZE;
            if d.status & abi::rxstat::EOP != 0 {
                return Some((data, first.unwrap()));
            }
        }
    }

    /// The two descriptors of one offload packet: `hdr` written at
    /// [`HDR_BUF`] (its descriptor carries `cmd` and `mss`), `payload` at
    /// [`DATA_POOL`] (EOP).
    pub fn offload(&self, hdr: &[u8], payload: &[u8], cmd: u16, mss: u16) -> [TxDesc; 2] {
        self.offload_at((HDR_BUF, hdr), (DATA_POOL, payload), cmd, mss)
    }

    /// [`Harness::offload`] with the header and the payload at the given
    /// guest-physical addresses.
    pub fn offload_at(
        &self,
        (hdr_at, hdr): (u64, &[u8]),
        (data_at, payload): (u64, &[u8]),
        cmd: u16,
        mss: u16,
    ) -> [TxDesc; 2] {
        self.write(hdr_at, hdr);
        self.write(data_at, payload);
        let mut d0 = desc(hdr_at, hdr.len() as u32, cmd);
        d0.mss = mss;
        [d0, desc(data_at, payload.len() as u32, abi::cmd::EOP)]
    }

    /// Sends a good TSO packet of `len` pattern bytes (`seed`), clear of
    /// where the tests put theirs, and checks its frames: the device still
    /// serves after `what` went before.
    pub fn still_serves(&mut self, len: usize, seed: u8, what: &str) {
        let hdr = frames::tcp_template(frames::TcpOpts::default());
        let payload = pattern(len, seed);
        let d = self.offload_at(
            (HDR_BUF + 0x1000, &hdr),
            (DATA_POOL + 0x80_0000, &payload),
            abi::cmd::TSO,
            1448,
        );
        assert_eq!(self.send(&d), 0, "good packet after {what}");
        frames::check_tso(&self.frames(), &payload, 1448, frames::TcpOpts::default());
    }

    /// Waits for an interrupt on `vector`; true if it fired.
    pub fn wait_irq(&self, vector: usize) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.irqs[vector].read().is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        false
    }
}

/// A 4 KiB page of a fresh 4-level address space whose PTE a test moves,
/// for the IOTLB tests: `va` maps `old` ([`DATA_POOL`], filled with 0xaa),
/// `new` (1 MiB above, filled with 0xbb) is where [`Remap::point`] can move
/// it, and `desc` sends the page's first `len` bytes.
pub struct Remap {
    pub asp: pagetable::AddressSpace,
    pub va: u64,
    pub old: u64,
    pub new: u64,
    /// The guest-physical address of the page's PTE.
    pub pte: u64,
    pub desc: TxDesc,
}

impl Remap {
    pub fn new(h: &mut Harness, va: u64, len: usize) -> Self {
        let mode = vmso_device::engine::mmu::PagingMode::Level4;
        let asp = pagetable::AddressSpace::new(&h.mem, &mut h.pt, mode);
        let (old, new) = (DATA_POOL, DATA_POOL + 0x10_0000);
        asp.map(&h.mem, &mut h.pt, va, old, 12);
        h.write(old, &vec![0xaa; len]);
        h.write(new, &vec![0xbb; len]);
        let desc = vdesc(va, len as u32, abi::cmd::EOP, asp.pdbr, asp.mode);
        let pte = asp.leaf_entry(&h.mem, va);
        Self {
            asp,
            va,
            old,
            new,
            pte,
            desc,
        }
    }

    /// Points the PTE at `gpa`, with no invalidation.
    pub fn point(&self, h: &Harness, gpa: u64) {
        h.write(self.pte, &(gpa | 3).to_le_bytes());
    }
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.client.shutdown();
        if let Some(t) = self.server.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// A backend whose sends block while its gate is closed, so that a test can
/// hold the queue worker inside a syscall.
pub struct GatedBackend {
    inner: SocketBackend,
    gate: Gate,
}

/// The test's end of a [`GatedBackend`].
#[derive(Clone, Default)]
pub struct Gate(std::sync::Arc<(std::sync::Mutex<GateState>, std::sync::Condvar)>);

#[derive(Default)]
struct GateState {
    closed: bool,
    /// Sends that reached the gate.
    entered: u64,
}

impl Gate {
    pub fn wrap(&self, inner: SocketBackend) -> Box<dyn Backend> {
        Box::new(GatedBackend {
            inner,
            gate: self.clone(),
        })
    }

    pub fn set_closed(&self, closed: bool) {
        self.0 .0.lock().unwrap().closed = closed;
        self.0 .1.notify_all();
    }

    /// Waits until `n` sends have reached the gate; false after 5 s.
    pub fn wait_entered(&self, n: u64) -> bool {
        let g = self.0 .0.lock().unwrap();
        let (_guard, t) = self
            .0
             .1
            .wait_timeout_while(g, Duration::from_secs(5), |s| s.entered < n)
            .unwrap();
        !t.timed_out()
    }
}

impl Backend for GatedBackend {
    fn send(&mut self, iov: &[libc::iovec]) -> std::io::Result<usize> {
        {
            let mut g = self.gate.0 .0.lock().unwrap();
            g.entered += 1;
            self.gate.0 .1.notify_all();
            while g.closed {
                g = self.gate.0 .1.wait(g).unwrap();
            }
        }
        self.inner.send(iov)
    }
    fn recv(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.recv(buf)
    }
    fn fd(&self) -> std::os::fd::RawFd {
        self.inner.fd()
    }
}

/// A TX descriptor.
pub fn desc(addr: u64, len: u32, cmd: u16) -> TxDesc {
    TxDesc {
        addr,
        len,
        cmd,
        ..Default::default()
    }
}

/// A virtual-address TX descriptor.
pub fn vdesc(
    va: u64,
    len: u32,
    cmd: u16,
    pdbr: u64,
    mode: vmso_device::engine::mmu::PagingMode,
) -> TxDesc {
    TxDesc {
        addr: va,
        pdbr,
        len,
        cmd: cmd | abi::cmd::VM | (mode.cmd_field() << abi::cmd::PGMODE_SHIFT),
        ..Default::default()
    }
}

/// A deterministic payload pattern.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_left(7) as u8 ^ seed)
        .collect()
}
