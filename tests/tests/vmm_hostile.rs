//! The VMM is hostile: one test per malformed vfio-user message and per bad
//! DMA_MAP. Each checks the errno of the error reply (or that the connection
//! was dropped), the refusal counter, and then that the device still serves:
//! the next message on the same connection, and a good packet for the next
//! VMM (or for the same one, for refused DMA_MAPs).

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::Path;

use vfio_bindings::bindings::vfio::{
    VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_DATA_NONE, VFIO_PCI_BAR0_REGION_INDEX,
    VFIO_PCI_MSIX_IRQ_INDEX,
};
use vfio_user::DmaMapFlags;
use vmso_device::abi::{self, cmd, reg, TxError};
use vmso_device::counters::Stat;
use vmso_device::host::memory::MAX_DMA_MAPS;
use vmso_device::Device;
use vmso_tests::vmm::{self, command, RawVmm};
use vmso_tests::*;

/// Sends a good TSO packet and checks its frames: the device still serves.
fn still_serves(h: &mut Harness) {
    h.still_serves(3000, 0x42, "the refusal");
}

/// Runs `hostile` as the first VMM of a fresh device, then connects a good
/// VMM and checks that `want` messages were refused and a packet goes out.
fn first_vmm_then_serve(want: u64, hostile: impl FnOnce(&Path)) {
    let mut refused_before_next_vmm = None;
    let mut h = Harness::after(|socket: &Path, device: &Device| {
        hostile(socket);
        refused_before_next_vmm = Some(device.counters().get(Stat::vmm_refused));
    });
    assert_eq!(refused_before_next_vmm, Some(want), "vmm_refused");
    assert_eq!(h.stat(Stat::vmm_refused), want, "seen by the next VMM");
    assert_eq!(h.read_reg(reg::VERSION), abi::VERSION);
    still_serves(&mut h);
}

/// A message that cannot be split from the stream: error reply, connection
/// dropped, the next VMM served.
fn dropped(bytes: Vec<u8>, errno: i32) {
    first_vmm_then_serve(1, |socket| {
        let mut v = RawVmm::handshake(socket);
        v.send(&bytes);
        assert_eq!(v.error_reply(), errno);
        assert!(v.closed(), "connection dropped");
    });
}

/// A complete but malformed message: error reply, and the next message on
/// the same connection is served.
fn refused(bytes: Vec<u8>, errno: i32) {
    first_vmm_then_serve(1, |socket| {
        let mut v = RawVmm::handshake(socket);
        v.send(&bytes);
        assert_eq!(v.error_reply(), errno);
        assert_eq!(v.read_reg(reg::VERSION), abi::VERSION, "next message");
    });
}

#[test]
fn version_with_size_below_the_header() {
    // 0.1.7 panicked here: message_size - size_of::<Version>() underflowed.
    first_vmm_then_serve(1, |socket| {
        let mut v = RawVmm::connect(socket);
        v.send(&vmm::message(1, command::VERSION, 8, 0, &[]));
        assert_eq!(v.error_reply(), libc::EINVAL);
        assert!(v.closed(), "connection dropped");
    });
}

#[test]
fn version_without_nul() {
    // 0.1.7 panicked here: CString::from_vec_with_nul(..).unwrap().
    first_vmm_then_serve(2, |socket| {
        let mut v = RawVmm::connect(socket);
        let p = vmm::version_payload(b"{\"capabilities\":{}}");
        v.send(&vmm::command(1, command::VERSION, &p));
        assert_eq!(v.error_reply(), libc::EINVAL);
        let p = vmm::version_payload(b"{\"capa\0bilities\":{}}\0");
        v.send(&vmm::command(2, command::VERSION, &p));
        assert_eq!(v.error_reply(), libc::EINVAL, "interior NUL");
        v.good_version();
        assert_eq!(v.read_reg(reg::VERSION), abi::VERSION);
    });
}

#[test]
fn size_near_4g_is_refused_before_allocating() {
    // 0.1.7 allocated the claimed size, then waited for the bytes; the
    // E2BIG reply comes from the check that now precedes any allocation.
    dropped(
        vmm::message(3, command::REGION_WRITE, u32::MAX - 15, 0, &[0; 16]),
        libc::E2BIG,
    );
}

#[test]
fn size_just_above_the_maximum() {
    let size = u32::try_from(vfio_user::MAX_MESSAGE_SIZE + 1).unwrap();
    dropped(
        vmm::message(3, command::REGION_WRITE, size, 0, &[0; 16]),
        libc::E2BIG,
    );
}

#[test]
fn truncated_fixed_part() {
    // DMA_MAP with 8 of its 32 bytes after the header.
    refused(vmm::command(3, command::DMA_MAP, &[0; 8]), libc::EINVAL);
}

#[test]
fn region_write_count_beyond_its_data() {
    let region = VFIO_PCI_BAR0_REGION_INDEX;
    let mut p = vmm::region_access(region, reg::TX_TAIL, 4096);
    p.extend_from_slice(&[1, 0, 0, 0]);
    refused(vmm::command(3, command::REGION_WRITE, &p), libc::EINVAL);
}

#[test]
fn region_read_count_beyond_the_maximum() {
    let p = vmm::region_access(VFIO_PCI_BAR0_REGION_INDEX, 0, u32::MAX);
    refused(vmm::command(3, command::REGION_READ, &p), libc::E2BIG);
}

#[test]
fn unknown_command() {
    refused(vmm::command(3, 0x7777, &[]), libc::ENOTSUP);
}

#[test]
fn reply_sent_as_a_command() {
    let p = vmm::region_access(VFIO_PCI_BAR0_REGION_INDEX, 0, 4);
    refused(
        vmm::message(3, command::REGION_READ, 32, vmm::FLAG_REPLY, &p),
        libc::EINVAL,
    );
}

/// A pipe whose read end goes to the server: once the server closes it,
/// writing to the write end fails with EPIPE.
fn pipe() -> (File, File) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-element array it is given.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both descriptors are fresh and owned by nothing else.
    unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
}

/// Once the test drops its read end `r` of a [`pipe`], writing to `w`
/// fails: the server closed every copy it was sent. The connection then
/// serves the next message.
fn closed_and_next_served(v: &mut RawVmm, r: File, mut w: File) {
    drop(r);
    let e = w.write(b"x").expect_err("the server closed its copies");
    assert_eq!(e.raw_os_error(), Some(libc::EPIPE));
    assert_eq!(v.read_reg(reg::VERSION), abi::VERSION, "next message");
}

// Each hostile message below is its own test and repeats the same frame
// (a first VMM that misbehaves, then a good one) on purpose: a failure
// names the message.

#[test]
fn fd_on_a_message_that_takes_none_is_refused_and_closed() {
    first_vmm_then_serve(1, |socket| {
        let mut v = RawVmm::handshake(socket);
        let (r, w) = pipe();
        let p = vmm::region_access(VFIO_PCI_BAR0_REGION_INDEX, reg::VERSION, 4);
        v.send_with_fds(&vmm::command(3, command::REGION_READ, &p), &[r.as_raw_fd()]);
        assert_eq!(v.error_reply(), libc::EBADF);
        closed_and_next_served(&mut v, r, w);
    });
}

#[test]
fn extra_fds_on_dma_map_and_set_irqs_are_refused_and_closed() {
    first_vmm_then_serve(2, |socket| {
        let mut v = RawVmm::handshake(socket);
        let ram = memfd(1 << 20);
        let (r, w) = pipe();
        // DMA_MAP: argsz, flags READ|WRITE, offset, address, size; two fds.
        let p = [
            &32u32.to_le_bytes()[..],
            &3u32.to_le_bytes(),
            &0u64.to_le_bytes(),
            &0u64.to_le_bytes(),
            &(1u64 << 20).to_le_bytes(),
        ]
        .concat();
        v.send_with_fds(
            &vmm::command(3, command::DMA_MAP, &p),
            &[ram.as_raw_fd(), r.as_raw_fd()],
        );
        assert_eq!(v.error_reply(), libc::EBADF);
        // SET_IRQS without DATA_EVENTFD carries no fds.
        let flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER;
        let p = [20, flags, VFIO_PCI_MSIX_IRQ_INDEX, 0, 1u32]
            .map(u32::to_le_bytes)
            .concat();
        v.send_with_fds(&vmm::command(4, command::SET_IRQS, &p), &[r.as_raw_fd()]);
        assert_eq!(v.error_reply(), libc::EBADF);
        closed_and_next_served(&mut v, r, w);
    });
}

#[test]
fn device_get_info_cut_short_by_a_disconnect() {
    // Half a message, then the VMM goes away: not a refusal, nothing counted.
    first_vmm_then_serve(0, |socket| {
        let mut v = RawVmm::handshake(socket);
        let m = vmm::command(3, command::DEVICE_GET_INFO, &[0; 16]);
        v.send(&m[..20]);
    });
}

// ---------------------------------------------------------------- DMA_MAP

/// A harness whose client reports error replies as errors.
fn strict() -> Harness {
    let mut h = Harness::new();
    h.client.set_strict_replies(true);
    h
}

/// The errno of a refused request.
fn errno(r: Result<(), vfio_user::Error>) -> i32 {
    match r {
        Err(vfio_user::Error::Reply { errno, .. }) => errno as i32,
        other => panic!("expected an error reply, got {other:?}"),
    }
}

/// Checks that `n` DMA_MAPs were refused and counted, and that the device
/// still serves.
fn counted(h: &mut Harness, n: u64) {
    assert_eq!(h.stat(Stat::dma_map_refused), n, "dma_map_refused");
    assert_eq!(h.stat(Stat::vmm_refused), n, "vmm_refused");
    still_serves(h);
}

const FREE: u64 = 4 << 30; // guest-physical space the harness leaves unmapped
const MIB: u64 = 1 << 20;

#[test]
fn dma_map_beyond_the_end_of_its_file() {
    let mut h = strict();
    let f = memfd(MIB);
    let r = h.client.dma_map_with(
        DmaMapFlags::READ_WRITE,
        0,
        FREE,
        2 * MIB,
        Some(f.as_raw_fd()),
    );
    assert_eq!(errno(r), libc::EINVAL);
    let r = h
        .client
        .dma_map_with(DmaMapFlags::READ_WRITE, MIB, FREE, MIB, Some(f.as_raw_fd()));
    assert_eq!(errno(r), libc::EINVAL, "offset at the end of the file");
    // 0.1.7 accepted the map and died of SIGBUS here.
    assert_eq!(
        h.send(&[desc(FREE + MIB + 0x100, 64, cmd::EOP)]),
        TxError::Dma as u16
    );
    assert!(h.frames().is_empty());
    counted(&mut h, 2);
}

#[test]
fn dma_map_overlaps_with_and_without_fd() {
    let mut h = strict();
    let f = memfd(4 * MIB);
    let fd = Some(f.as_raw_fd());
    let rw = DmaMapFlags::READ_WRITE;
    h.client.dma_map_with(rw, 0, FREE, MIB, None).unwrap();
    assert_eq!(
        errno(h.client.dma_map_with(rw, 0, FREE, MIB, None)),
        libc::EEXIST
    );
    assert_eq!(
        errno(h.client.dma_map_with(rw, 0, FREE - MIB, 2 * MIB, fd)),
        libc::EEXIST,
        "fd-backed over fd-less"
    );
    assert_eq!(
        errno(
            h.client
                .dma_map_with(rw, 0, REGION_SPLIT - 0x1000, 0x2000, None)
        ),
        libc::EEXIST,
        "fd-less over RAM"
    );
    assert_eq!(
        errno(h.client.dma_map_with(rw, 0, 0x10_0000, MIB, fd)),
        libc::EEXIST,
        "fd-backed over RAM"
    );
    // Adjacent maps are fine, and an unmapped range can be mapped again.
    h.client.dma_map_with(rw, 0, FREE + MIB, MIB, fd).unwrap();
    h.client.dma_unmap(FREE, MIB).unwrap();
    h.client.dma_map_with(rw, MIB, FREE, MIB, fd).unwrap();
    counted(&mut h, 4);
}

#[test]
fn dma_map_unaligned() {
    let mut h = strict();
    let f = memfd(4 * MIB);
    let fd = Some(f.as_raw_fd());
    let rw = DmaMapFlags::READ_WRITE;
    for (offset, addr, size) in [
        (0, FREE + 0x800, MIB),
        (0, FREE, MIB + 1),
        (0x10, FREE, MIB),
    ] {
        let r = h.client.dma_map_with(rw, offset, addr, size, fd);
        assert_eq!(errno(r), libc::EINVAL, "{offset:#x} {addr:#x} {size:#x}");
    }
    counted(&mut h, 3);
}

#[test]
fn dma_map_flags_and_permissions() {
    let mut h = strict();
    let rw = DmaMapFlags::READ_WRITE;
    let r = h
        .client
        .dma_map_with(DmaMapFlags::WRITE, 0, FREE, MIB, None);
    assert_eq!(errno(r), libc::EINVAL, "write-only");
    let r = h
        .client
        .dma_map_with(DmaMapFlags::from_bits_retain(0x13), 0, FREE, MIB, None);
    assert_eq!(errno(r), libc::EINVAL, "unknown flag bits");
    // READ|WRITE asked of a file opened read-only.
    let path = std::env::temp_dir().join(format!("vmso-ro-{}.bin", std::process::id()));
    std::fs::write(&path, vec![0u8; MIB as usize]).unwrap();
    let ro = File::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let r = h
        .client
        .dma_map_with(rw, 0, FREE, MIB, Some(ro.as_raw_fd()));
    assert_eq!(errno(r), libc::EACCES);
    // Not a file at all.
    let r = h
        .client
        .dma_map_with(rw, 0, FREE, 0x1000, Some(h.irqs[0].as_raw_fd()));
    assert_eq!(errno(r), libc::EINVAL, "an eventfd");
    // A read-only map is accepted, but the device does not use it.
    let f = memfd(MIB);
    h.client
        .dma_map_with(DmaMapFlags::READ, 0, FREE, MIB, Some(f.as_raw_fd()))
        .unwrap();
    assert_eq!(h.send(&[desc(FREE, 64, cmd::EOP)]), TxError::Dma as u16);
    assert!(h.frames().is_empty());
    counted(&mut h, 4);
}

#[test]
fn dma_map_count_beyond_the_limit() {
    let mut h = strict();
    let rw = DmaMapFlags::READ_WRITE;
    // The harness holds 2 maps already.
    for i in 0..MAX_DMA_MAPS as u64 - 2 {
        h.client
            .dma_map_with(rw, 0, FREE + i * 0x1000, 0x1000, None)
            .unwrap();
    }
    let last = FREE + (MAX_DMA_MAPS as u64) * 0x1000;
    assert_eq!(
        errno(h.client.dma_map_with(rw, 0, last, 0x1000, None)),
        libc::ENOSPC
    );
    h.client.dma_unmap(FREE, 0x1000).unwrap();
    h.client.dma_map_with(rw, 0, last, 0x1000, None).unwrap();
    counted(&mut h, 1);
}

#[test]
fn dma_unmap_of_an_unknown_range() {
    let mut h = strict();
    let r = h.client.dma_unmap(FREE, MIB);
    assert_eq!(errno(r), libc::ENOENT);
    assert_eq!(h.stat(Stat::vmm_refused), 1);
    assert_eq!(h.stat(Stat::dma_map_refused), 0, "an unmap is not a map");
    still_serves(&mut h);
}
