//! The guest is hostile: one test per malformed shape. Each checks the error
//! status (or refusal) and the counter, then that the device still serves
//! the next good packet.

use vmso_device::abi::{self, cmd, reg, FaultReason, TxDesc, TxError, MAX_SG};
use vmso_device::counters::Stat;
use vmso_device::engine::mmu::PagingMode;
use vmso_tests::frames::{self, TcpOpts};
use vmso_tests::pagetable::AddressSpace;
use vmso_tests::*;

/// Sends a good TSO packet and checks its frames: the device still serves.
fn still_serves(h: &mut Harness) {
    h.still_serves(4000, 0x77, "the bad one");
}

fn expect(h: &mut Harness, descs: &[TxDesc], want: TxError) {
    let errors = h.stat(Stat::tx_errors);
    assert_eq!(h.send(descs), want as u16, "error code");
    assert!(h.frames().is_empty(), "a failed packet emits nothing");
    assert_eq!(h.stat(Stat::tx_errors), errors + 1, "tx_errors counted");
    still_serves(h);
}

fn tso_hdr(h: &mut Harness, hdr: &[u8], mss: u16) -> TxDesc {
    h.write(HDR_BUF, hdr);
    let mut d = desc(HDR_BUF, hdr.len() as u32, cmd::TSO);
    d.mss = mss;
    d
}

fn payload_desc(h: &mut Harness, len: u32) -> TxDesc {
    h.write(DATA_POOL, &pattern(len as usize, 1));
    desc(DATA_POOL, len, cmd::EOP)
}

// The tests below repeat one shape (a fresh harness, a bad chain, `expect`)
// on purpose: one test per hostile input, so that a failure names it. What
// they share is in the helpers above.

#[test]
fn zero_length_descriptor() {
    let mut h = Harness::new();
    let before = h.stat(Stat::bad_descs);
    expect(&mut h, &[desc(DATA_POOL, 0, cmd::EOP)], TxError::BadDesc);
    assert_eq!(h.stat(Stat::bad_descs), before + 1);
}

#[test]
fn descriptor_longer_than_64k() {
    let mut h = Harness::new();
    expect(
        &mut h,
        &[desc(DATA_POOL, 65537, cmd::EOP)],
        TxError::BadDesc,
    );
}

#[test]
fn reserved_cmd_bits() {
    let mut h = Harness::new();
    expect(
        &mut h,
        &[desc(DATA_POOL, 64, cmd::EOP | 0x8000)],
        TxError::BadDesc,
    );
}

/// A TSO packet of `len` payload bytes with `mss`, refused as BadMss.
fn bad_mss(mss: u16, len: u32) {
    let mut h = Harness::new();
    let d0 = tso_hdr(&mut h, &frames::tcp_template(TcpOpts::default()), mss);
    let d1 = payload_desc(&mut h, len);
    expect(&mut h, &[d0, d1], TxError::BadMss);
}

#[test]
fn mss_zero() {
    bad_mss(0, 5000);
}

#[test]
fn mss_beyond_mtu() {
    bad_mss(9000, 20000);
}

#[test]
fn tso_without_payload() {
    let mut h = Harness::new();
    let hdr = frames::tcp_template(TcpOpts::default());
    let mut d0 = tso_hdr(&mut h, &hdr, 1448);
    d0.cmd |= cmd::EOP;
    expect(&mut h, &[d0], TxError::NoPayload);
}

#[test]
fn tcp_header_longer_than_the_packet() {
    let mut h = Harness::new();
    let mut hdr = frames::tcp_template(TcpOpts::default());
    hdr[14 + 20 + 12] = 15 << 4; // data offset 60 bytes, only 20 present
    let mut d0 = tso_hdr(&mut h, &hdr, 1448);
    d0.cmd |= cmd::EOP;
    expect(&mut h, &[d0], TxError::BadHdr);
}

#[test]
fn ihl_that_lies() {
    let mut h = Harness::new();
    for ihl in [3u8, 15] {
        let mut hdr = frames::tcp_template(TcpOpts::default());
        hdr[14] = 0x40 | ihl;
        let mut d0 = tso_hdr(&mut h, &hdr[..54], 1448);
        d0.cmd |= cmd::EOP;
        expect(&mut h, &[d0], TxError::BadHdr);
    }
}

#[test]
fn tcp_data_offset_below_five() {
    let mut h = Harness::new();
    let mut hdr = frames::tcp_template(TcpOpts::default());
    hdr[14 + 20 + 12] = 4 << 4;
    let d0 = tso_hdr(&mut h, &hdr, 1448);
    let d1 = payload_desc(&mut h, 3000);
    expect(&mut h, &[d0, d1], TxError::BadHdr);
}

#[test]
fn ip_total_length_beyond_frame_for_checksum() {
    let mut h = Harness::new();
    let mut hdr = frames::tcp_template(TcpOpts::default());
    hdr[16..18].copy_from_slice(&9000u16.to_be_bytes());
    h.write(HDR_BUF, &hdr);
    expect(
        &mut h,
        &[desc(HDR_BUF, hdr.len() as u32, cmd::EOP | cmd::L4CSUM)],
        TxError::BadHdr,
    );
}

#[test]
fn offload_on_non_ip_frame() {
    let mut h = Harness::new();
    let mut f = pattern(100, 2);
    f[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    h.write(HDR_BUF, &f);
    expect(
        &mut h,
        &[desc(HDR_BUF, 100, cmd::EOP | cmd::IPCSUM)],
        TxError::BadHdr,
    );
}

#[test]
fn tso_on_udp_and_tso_on_fragment() {
    let mut h = Harness::new();
    let d0 = tso_hdr(&mut h, &frames::udp_template(false), 1400);
    let d1 = payload_desc(&mut h, 3000);
    expect(&mut h, &[d0, d1], TxError::BadHdr);
    let mut hdr = frames::tcp_template(TcpOpts::default());
    hdr[14 + 6] = 0x20; // MF
    let d0 = tso_hdr(&mut h, &hdr, 1448);
    let d1 = payload_desc(&mut h, 3000);
    expect(&mut h, &[d0, d1], TxError::BadHdr);
}

#[test]
fn no_eop_anywhere() {
    let mut h = Harness::new();
    h.write(DATA_POOL, &pattern(64, 3));
    expect(
        &mut h,
        &[
            desc(DATA_POOL, 64, 0),
            desc(DATA_POOL, 64, 0),
            desc(DATA_POOL, 64, 0),
        ],
        TxError::NoEop,
    );
}

#[test]
fn more_descriptors_than_the_sg_limit() {
    let mut h = Harness::new();
    h.write(DATA_POOL, &pattern(16, 3));
    let mut chain = vec![desc(DATA_POOL, 16, 0); MAX_SG + 1];
    chain.last_mut().unwrap().cmd = cmd::EOP;
    expect(&mut h, &chain, TxError::TooManySg);
}

#[test]
fn packet_longer_than_max_pkt() {
    let mut h = Harness::new();
    let chain = [desc(DATA_POOL, 65536, 0), desc(DATA_POOL, 65536, cmd::EOP)];
    expect(&mut h, &chain, TxError::TooBig);
}

#[test]
fn plain_frame_over_the_mtu() {
    let mut h = Harness::new();
    expect(&mut h, &[desc(DATA_POOL, 3000, cmd::EOP)], TxError::TooBig);
}

#[test]
fn physical_buffer_outside_ram_and_wrapping() {
    let mut h = Harness::new();
    let dma = h.stat(Stat::dma_errors);
    expect(
        &mut h,
        &[desc(RAM_SIZE + 0x1000, 64, cmd::EOP)],
        TxError::Dma,
    );
    expect(&mut h, &[desc(RAM_SIZE - 32, 64, cmd::EOP)], TxError::Dma);
    expect(&mut h, &[desc(u64::MAX - 10, 64, cmd::EOP)], TxError::Dma);
    assert_eq!(h.stat(Stat::dma_errors), dma + 3);
}

/// A VA packet in 4-level mode whose translation fails for `reason`.
fn fault_case(h: &mut Harness, d: TxDesc, reason: FaultReason) {
    let faults = h.read_reg(reg::FAULT_COUNT);
    expect(h, &[d], TxError::PageFault);
    assert_eq!(h.read_reg(reg::FAULT_REASON), reason as u32, "fault reason");
    assert_eq!(
        h.read_reg(reg::FAULT_VA_LO),
        d.addr as u32,
        "faulting VA logged"
    );
    assert_eq!(h.read_reg(reg::FAULT_PDBR_LO), d.pdbr as u32, "PDBR logged");
    assert_eq!(h.read_reg(reg::FAULT_COUNT), faults + 1);
    assert_ne!(h.read_reg(reg::STATUS) & abi::status::FAULT, 0);
    h.write_reg(reg::FAULT_REASON, 0);
    assert_eq!(
        h.read_reg(reg::STATUS) & abi::status::FAULT,
        0,
        "fault log cleared"
    );
}

/// [`fault_case`] for `len` bytes at `va` in `asp`.
fn fault_at(h: &mut Harness, asp: &AddressSpace, va: u64, len: u32, want: FaultReason) {
    fault_case(h, vdesc(va, len, cmd::EOP, asp.pdbr, asp.mode), want);
}

fn l4(h: &mut Harness) -> AddressSpace {
    AddressSpace::new(&h.mem, &mut h.pt, PagingMode::Level4)
}

#[test]
fn page_not_present() {
    let mut h = Harness::new();
    let asp = l4(&mut h);
    fault_at(&mut h, &asp, 0x1234_5000, 64, FaultReason::NotPresent);
    assert_eq!(h.stat(Stat::page_faults), 1);
}

#[test]
fn non_canonical_va() {
    let mut h = Harness::new();
    let asp = l4(&mut h);
    fault_at(
        &mut h,
        &asp,
        0x0000_9000_0000_0000,
        64,
        FaultReason::NonCanonical,
    );
}

#[test]
fn reserved_pte_bits() {
    let mut h = Harness::new();
    let asp = l4(&mut h);
    let va = 0x7000_0000u64;
    asp.map(&h.mem, &mut h.pt, va, DATA_POOL, 12);
    let pte = asp.leaf_entry(&h.mem, va);
    h.write(pte, &(DATA_POOL | 3 | (1 << 50)).to_le_bytes());
    fault_at(&mut h, &asp, va, 64, FaultReason::Reserved);
}

#[test]
fn page_table_outside_ram() {
    let mut h = Harness::new();
    let asp = l4(&mut h);
    let va = 0x7000_0000u64;
    // The PML4 entry points past the end of RAM.
    h.write(asp.pdbr, &((RAM_SIZE + 0x10_0000) | 3).to_le_bytes());
    fault_at(&mut h, &asp, va, 64, FaultReason::PteOutOfRam);
}

#[test]
fn pdbr_outside_ram_and_misaligned() {
    let mut h = Harness::new();
    let pdbr = RAM_SIZE + 0x1000;
    fault_case(
        &mut h,
        vdesc(0x1000, 64, cmd::EOP, pdbr, PagingMode::Level4),
        FaultReason::PteOutOfRam,
    );
    fault_case(
        &mut h,
        vdesc(0x1000, 64, cmd::EOP, PT_POOL + 8, PagingMode::Level4),
        FaultReason::BadPdbr,
    );
}

#[test]
fn page_outside_ram() {
    let mut h = Harness::new();
    let asp = l4(&mut h);
    let va = 0x7000_0000u64;
    asp.map(&h.mem, &mut h.pt, va, RAM_SIZE + 0x20_0000, 12);
    fault_at(&mut h, &asp, va, 64, FaultReason::PageOutOfRam);
}

#[test]
fn virtual_range_that_wraps() {
    let mut h = Harness::new();
    let asp = l4(&mut h);
    fault_at(
        &mut h,
        &asp,
        u64::MAX - 100,
        1000,
        FaultReason::NonCanonical,
    );
}

#[test]
fn self_referencing_page_table_terminates() {
    let mut h = Harness::new();
    let asp = l4(&mut h);
    // Every PML4 slot points at the PML4 itself: the walk reads the table as
    // its own leaf. It must end after 4 reads with a definite answer.
    for i in 0..512u64 {
        h.write(asp.pdbr + i * 8, &(asp.pdbr | 3).to_le_bytes());
    }
    let d = vdesc(0x10, 64, cmd::EOP, asp.pdbr, asp.mode);
    assert_eq!(h.send(&[d]), 0);
    let f = h.frames();
    assert_eq!(f.len(), 1);
    // VA 0x10 reads the PML4 page itself from offset 16: eight copies of
    // the self-pointing entry.
    assert_eq!(f[0], (asp.pdbr | 3).to_le_bytes().repeat(8));
    still_serves(&mut h);
}

#[test]
fn ring_size_zero_and_not_power_of_two() {
    for size in [0u32, 12, 8192] {
        let mut h = Harness::bare();
        h.setup_rings();
        h.write_reg(reg::TX_SIZE, size);
        h.write_reg(reg::INT_MASK_CLR, abi::cause::ALL);
        h.write_reg(reg::CTRL, abi::ctrl::ENABLE);
        assert_eq!(
            h.read_reg(reg::STATUS) & abi::status::ENABLED,
            0,
            "size {size} refused"
        );
        assert!(h.wait_irq(abi::VEC_MISC), "ERROR cause on the misc vector");
        h.setup_rings();
        h.enable();
        still_serves(&mut h);
    }
}

#[test]
fn tail_beyond_the_ring() {
    let mut h = Harness::new();
    let bad = h.stat(Stat::bad_doorbells);
    h.write_reg(reg::TX_TAIL, TX_SIZE + 5);
    h.write_reg(reg::RX_TAIL, u32::MAX);
    assert_eq!(h.stat(Stat::bad_doorbells), bad + 2);
    assert_eq!(
        h.read_reg(reg::ERROR_COUNT),
        2,
        "each refusal is an ERROR event"
    );
    assert_eq!(h.read_reg(reg::TX_TAIL), 0, "bad doorbell ignored");
    still_serves(&mut h);
}

#[test]
fn tx_ring_outside_ram() {
    let mut h = Harness::bare();
    h.setup_rings();
    h.write_reg(reg::TX_BASE_LO, 0);
    h.write_reg(reg::TX_BASE_HI, 0x100); // 1 TiB: beyond RAM
    h.enable();
    h.write_reg(reg::TX_TAIL, 1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while h.stat(Stat::dma_errors) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "ring error never counted"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    h.write_reg(reg::CTRL, 0);
    h.setup_rings();
    h.enable();
    still_serves(&mut h);
}

#[test]
fn rx_buffer_with_bad_length_or_address() {
    use vm_memory::{Bytes, GuestAddress};
    let mut h = Harness::new();
    let bad = [
        abi::RxDesc {
            addr: RX_BUFS,
            buf_len: 0,
            ..Default::default()
        },
        abi::RxDesc {
            addr: RAM_SIZE,
            buf_len: 2048,
            ..Default::default()
        },
    ];
    for d in bad {
        h.mem
            .write_obj(d, GuestAddress(RX_RING + u64::from(h.rx_tail) * 32))
            .unwrap();
        h.rx_tail += 1;
    }
    h.post_rx(4);
    for seed in 1..=3 {
        h.inject(&pattern(300, seed));
    }
    // The two bad buffers come back empty, the frames meant for them dropped.
    for _ in 0..2 {
        let (data, d) = h.recv_rx().unwrap();
        assert!(data.is_empty() && d.status & abi::rxstat::EOP != 0);
    }
    let (data, _) = h.recv_rx().expect("good buffer used next");
    assert_eq!(data, pattern(300, 3));
    assert_eq!(h.stat(Stat::bad_descs), 2);
    assert_eq!(h.stat(Stat::rx_dropped), 2);
    still_serves(&mut h);
}

#[test]
fn bad_irq_message_gets_an_error_reply_and_the_server_keeps_serving() {
    use vfio_bindings::bindings::vfio::*;
    let mut h = Harness::new();
    // Vectors 15..20 run past the 17 there are; 4 fds for 5 vectors is
    // malformed too.
    let fds: Vec<i32> = h.irqs.iter().map(std::os::fd::AsRawFd::as_raw_fd).collect();
    let flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
    h.client
        .set_irqs(VFIO_PCI_MSIX_IRQ_INDEX, flags, 15, 5, &fds[..4])
        .unwrap();
    h.client
        .set_irqs(VFIO_PCI_INTX_IRQ_INDEX, flags, 0, 1, &fds[..1])
        .unwrap();
    assert_eq!(h.read_reg(reg::VERSION), abi::VERSION);
    // The original eventfds are still wired.
    h.write(DATA_POOL, &pattern(64, 1));
    assert_eq!(h.send(&[desc(DATA_POOL, 64, cmd::EOP)]), 0);
    assert!(h.wait_irq(abi::VEC_TX));
    h.frames();
    still_serves(&mut h);
}

/// Malformed region and DMA messages, on the vfio-user backend directly: the
/// client library cannot read an error reply to a read, so these are checked
/// where the reply is decided.
#[test]
fn bad_region_and_dma_messages_are_refused() {
    use vfio_bindings::bindings::vfio::*;
    use vfio_user::ServerBackend;
    let h = Harness::new();
    let mut dev = h.device.vfio();
    let mut b = [0u8; 4];
    assert!(dev
        .region_read(VFIO_PCI_BAR0_REGION_INDEX, abi::BAR0_SIZE, &mut b)
        .is_err());
    assert!(dev
        .region_read(VFIO_PCI_BAR0_REGION_INDEX, u64::MAX - 1, &mut b)
        .is_err());
    assert!(
        dev.region_write(VFIO_PCI_BAR0_REGION_INDEX, 3, &b).is_err(),
        "unaligned"
    );
    assert!(
        dev.region_read(VFIO_PCI_BAR0_REGION_INDEX, 0, &mut [0u8; 3])
            .is_err(),
        "odd size"
    );
    assert!(dev
        .region_read(VFIO_PCI_CONFIG_REGION_INDEX, 4094, &mut b)
        .is_err());
    assert!(dev.region_write(VFIO_PCI_ROM_REGION_INDEX, 0, &b).is_err());
    assert!(dev
        .dma_unmap(vfio_user::DmaUnmapFlags::empty(), 0x1234_0000, 0x1000)
        .is_err());
    assert!(
        dev.dma_map(vfio_user::DmaMapFlags::READ_WRITE, 0, u64::MAX, 2, None)
            .is_err(),
        "wrapping map"
    );
    assert!(
        dev.dma_map(vfio_user::DmaMapFlags::READ_WRITE, 0, 0, 0, None)
            .is_err(),
        "empty map"
    );
    let mut h = h;
    still_serves(&mut h);
    // A second connection's end turns the device over (drops guest RAM and
    // interrupts): that is the last thing this test does.
    drop(dev);
}
