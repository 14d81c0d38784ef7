//! What every VMM the tests play does, whether the device runs in the test
//! process ([`crate::Harness`]) or as the `vmso-device` binary (the device
//! package's own tests): guest RAM from a memfd, MSI-X eventfds and BAR0
//! registers through a `vfio_user::Client`, RX buffers in guest RAM, and
//! frames on the socketpair that plays the wire.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};

use vfio_bindings::bindings::vfio::{
    VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_DATA_EVENTFD, VFIO_PCI_BAR0_REGION_INDEX,
    VFIO_PCI_MSIX_IRQ_INDEX,
};
use vm_memory::{Bytes, FileOffset, GuestAddress, GuestMemoryMmap, GuestRegionMmap, MmapRegion};
use vmm_sys_util::eventfd::EventFd;
use vmso_device::abi::{cause, ctrl, reg, RxDesc};

/// A memfd of `size` bytes.
pub fn memfd(size: u64) -> File {
    let name = c"vmso-test-ram";
    // SAFETY: memfd_create with a valid C string; the returned fd is owned by
    // the File below.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0, "memfd_create failed");
    // SAFETY: fd is a fresh, valid descriptor we own.
    let f = unsafe { File::from_raw_fd(fd) };
    f.set_len(size).expect("size memfd");
    f
}

/// DMA-maps each `(gpa, size)` of `ram` (at file offset `gpa`) and maps the
/// same ranges here: the guest RAM the test writes and the device reads.
pub fn map_ram(
    client: &mut vfio_user::Client,
    ram: &File,
    ranges: &[(u64, u64)],
) -> GuestMemoryMmap {
    let regions = ranges
        .iter()
        .map(|&(gpa, size)| {
            client
                .dma_map(gpa, gpa, size, ram.as_raw_fd())
                .unwrap_or_else(|e| panic!("dma map {gpa:#x}+{size:#x}: {e:?}"));
            let f = ram.try_clone().unwrap();
            let m = MmapRegion::from_file(FileOffset::new(f, gpa), size as usize).unwrap();
            GuestRegionMmap::new(m, GuestAddress(gpa)).unwrap()
        })
        .collect();
    GuestMemoryMmap::from_regions(regions).unwrap()
}

/// `n` non-blocking eventfds set as MSI-X vectors 0..n, at most 16 fds per
/// message (the protocol's limit), as QEMU splits them.
pub fn set_msix(client: &mut vfio_user::Client, n: u32) -> Vec<EventFd> {
    let irqs: Vec<EventFd> = (0..n)
        .map(|_| EventFd::new(libc::EFD_NONBLOCK).unwrap())
        .collect();
    let fds: Vec<i32> = irqs.iter().map(|e| e.as_raw_fd()).collect();
    for (i, chunk) in fds.chunks(16).enumerate() {
        client
            .set_irqs(
                VFIO_PCI_MSIX_IRQ_INDEX,
                VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
                16 * i as u32,
                chunk.len() as u32,
                chunk,
            )
            .expect("set irqs");
    }
    irqs
}

/// Writes the 32-bit BAR0 register at `off`.
pub fn write_reg(client: &mut vfio_user::Client, off: u64, v: u32) {
    client
        .region_write(VFIO_PCI_BAR0_REGION_INDEX, off, &v.to_le_bytes())
        .expect("BAR0 write");
}

/// Reads the 32-bit BAR0 register at `off`.
pub fn read_reg(client: &mut vfio_user::Client, off: u64) -> u32 {
    let mut b = [0u8; 4];
    client
        .region_read(VFIO_PCI_BAR0_REGION_INDEX, off, &mut b)
        .expect("BAR0 read");
    u32::from_le_bytes(b)
}

/// Programs queue pair 0's rings: `(base, size)` of TX and of RX.
pub fn program_rings(client: &mut vfio_user::Client, tx: (u64, u32), rx: (u64, u32)) {
    write_reg(client, reg::TX_BASE_LO, tx.0 as u32);
    write_reg(client, reg::TX_BASE_HI, (tx.0 >> 32) as u32);
    write_reg(client, reg::TX_SIZE, tx.1);
    write_reg(client, reg::RX_BASE_LO, rx.0 as u32);
    write_reg(client, reg::RX_BASE_HI, (rx.0 >> 32) as u32);
    write_reg(client, reg::RX_SIZE, rx.1);
}

/// Negotiates `features`, enables the device and unmasks every interrupt
/// cause.
pub fn enable(client: &mut vfio_user::Client, features: u32) {
    write_reg(client, reg::DRV_FEATURES, features);
    write_reg(client, reg::CTRL, ctrl::ENABLE);
    write_reg(client, reg::INT_MASK_CLR, cause::ALL);
}

/// Where an RX ring and its buffers lie in guest RAM: `size` descriptors
/// at `ring`, descriptor `i` owning the `buf_len`-byte buffer at
/// `bufs + i * buf_len`.
#[derive(Clone, Copy, Debug)]
pub struct RxRing {
    pub ring: u64,
    pub size: u32,
    pub bufs: u64,
    pub buf_len: u32,
}

impl RxRing {
    /// Writes `n` descriptors from index `*tail` on, advances `*tail` and
    /// rings the RX doorbell (`RX_TAIL`, queue pair 0's).
    pub fn post(
        &self,
        client: &mut vfio_user::Client,
        mem: &GuestMemoryMmap,
        tail: &mut u32,
        n: u32,
    ) {
        for _ in 0..n {
            let i = *tail;
            let d = RxDesc {
                addr: self.bufs + u64::from(i) * u64::from(self.buf_len),
                buf_len: self.buf_len,
                ..Default::default()
            };
            mem.write_obj(d, GuestAddress(self.ring + u64::from(i) * 32))
                .unwrap();
            *tail = (i + 1) % self.size;
        }
        write_reg(client, reg::RX_TAIL, *tail);
    }
}

/// One frame waiting on `fd` (a SOCK_SEQPACKET or packet socket), without
/// blocking.
pub fn recv_frame(fd: RawFd) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 70000];
    // SAFETY: buf is a valid writable buffer; MSG_DONTWAIT never blocks.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
    (n > 0).then(|| {
        buf.truncate(n as usize);
        buf
    })
}

/// Every frame waiting on `fd`, without blocking.
pub fn recv_frames(fd: RawFd) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| recv_frame(fd)).collect()
}

/// Sends `frame` whole on `fd`.
pub fn send_frame(fd: RawFd, frame: &[u8]) {
    // SAFETY: frame is a valid readable buffer.
    let n = unsafe { libc::send(fd, frame.as_ptr().cast(), frame.len(), 0) };
    assert_eq!(
        n as usize,
        frame.len(),
        "send: {}",
        std::io::Error::last_os_error()
    );
}
