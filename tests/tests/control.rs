//! RX delivery, interrupts, IOTLB invalidation, reset and config space.

use vmso_device::abi::{self, cmd, reg, rxstat, VEC_RX, VEC_TX};
use vmso_device::counters::Stat;
use vmso_tests::frames::{self, TcpOpts};
use vmso_tests::*;

fn valid_tcp_frame(len: usize) -> Vec<u8> {
    use etherparse::PacketBuilder;
    let payload = pattern(len, 1);
    let b = PacketBuilder::ethernet2(frames::DST_MAC, frames::SRC_MAC)
        .ipv4(frames::DST4, frames::SRC4, 64)
        .tcp(5201, 40000, 1, 512);
    let mut f = Vec::new();
    b.write(&mut f, &payload).unwrap();
    f
}

#[test]
fn config_space_identity_and_capabilities() {
    let mut h = Harness::bare();
    assert_eq!(h.read_config(0), 0x5650_1234);
    assert_eq!(h.read_config(0x08) >> 8, 0x020000, "class Ethernet");
    let cap = h.read_config(0x34) & 0xff;
    assert_eq!(h.read_config(u64::from(cap)) & 0xff, 0x11, "MSI-X first");
    let next = (h.read_config(u64::from(cap)) >> 8) & 0xff;
    assert_eq!(
        h.read_config(u64::from(next)) & 0xff,
        0x10,
        "then PCI Express"
    );
    assert_eq!(
        h.read_config(u64::from(cap)) >> 16 & 0x7ff,
        abi::NUM_VECTORS - 1,
        "MSI-X vectors: misc and one per queue pair"
    );
    assert_eq!(h.read_reg(reg::VERSION), abi::VERSION);
}

#[test]
fn rx_delivery_with_checksum_verdict_and_interrupt() {
    let mut h = Harness::new();
    h.post_rx(16);
    let good = valid_tcp_frame(1000);
    h.inject(&good);
    assert!(h.wait_irq(VEC_RX), "RX interrupt on vector 1");
    let (data, d) = h.recv_rx().expect("frame delivered");
    assert_eq!(data, good);
    assert_eq!(
        d.status & (rxstat::L4_OK | rxstat::IP_OK | rxstat::EOP),
        rxstat::L4_OK | rxstat::IP_OK | rxstat::EOP
    );
    // A corrupted checksum is flagged, not hidden.
    let mut bad = valid_tcp_frame(500);
    let n = bad.len();
    bad[n - 1] ^= 0xff;
    h.inject(&bad);
    let (_, d) = h.recv_rx().expect("bad frame still delivered");
    assert_ne!(d.status & rxstat::CSUM_ERR, 0);
    assert_eq!(d.status & rxstat::L4_OK, 0);
    // A frame larger than one buffer spans several.
    let big = pattern(5000, 2);
    h.inject(&big);
    let (data, _) = h.recv_rx().expect("multi-buffer frame");
    assert_eq!(data, big);
    assert_eq!(h.stat(Stat::rx_packets), 3);
    assert_eq!(h.stat(Stat::rx_csum_bad), 1);
}

#[test]
fn rx_backpressure_until_buffers_are_posted() {
    let mut h = Harness::new();
    h.post_rx(8);
    for i in 0..20 {
        h.inject(&valid_tcp_frame(100 + i));
    }
    let mut lens = Vec::new();
    for _ in 0..8 {
        lens.push(h.recv_rx().expect("posted buffers fill").0.len());
    }
    assert!(
        h.recv_rx_within(std::time::Duration::from_millis(300))
            .is_none(),
        "nothing without buffers"
    );
    // The rest stayed queued in the backend and arrives, in order, once the
    // guest posts more buffers.
    h.post_rx(16);
    for _ in 0..12 {
        lens.push(h.recv_rx().expect("queued frames delivered").0.len());
    }
    let want: Vec<usize> = (0..20).map(|i| valid_tcp_frame(100 + i).len()).collect();
    assert_eq!(lens, want);
    assert_eq!(h.stat(Stat::rx_dropped), 0);
}

#[test]
fn tx_interrupt_auto_masks_until_unmasked() {
    let mut h = Harness::new();
    let frame = pattern(100, 3);
    h.write(DATA_POOL, &frame);
    assert_eq!(h.send(&[desc(DATA_POOL, 100, cmd::EOP)]), 0);
    assert!(h.wait_irq(VEC_TX));
    assert_ne!(
        h.read_reg(reg::INT_MASK) & abi::cause::TX,
        0,
        "auto-masked after firing"
    );
    assert_eq!(h.send(&[desc(DATA_POOL, 100, cmd::EOP)]), 0);
    assert!(
        h.irqs[VEC_TX].read().is_err(),
        "masked: no second interrupt"
    );
    h.write_reg(reg::INT_MASK_CLR, abi::cause::TX);
    assert!(h.wait_irq(VEC_TX), "pending cause fires on unmask");
}

#[test]
fn iotlb_invalidation_forces_a_new_walk() {
    let mut h = Harness::new();
    let va = 0x5555_0000_0000u64;
    let r = Remap::new(&mut h, va, 200);
    let (asp, d) = (&r.asp, r.desc);
    assert_eq!(h.send(&[d]), 0);
    assert_eq!(h.frames()[0], vec![0xaa; 200]);
    // Change the PTE: without invalidation the cached translation is used.
    r.point(&h, r.new);
    assert_eq!(h.send(&[d]), 0);
    assert_eq!(h.frames()[0], vec![0xaa; 200], "stale until invalidated");
    let misses = h.stat(Stat::iotlb_misses);
    // Invalidate by address.
    h.write_reg(reg::IOTLB_INV_PDBR_LO, asp.pdbr as u32);
    h.write_reg(reg::IOTLB_INV_PDBR_HI, (asp.pdbr >> 32) as u32);
    h.write_reg(reg::IOTLB_INV_ADDR_LO, va as u32);
    h.write_reg(reg::IOTLB_INV_ADDR_HI, (va >> 32) as u32);
    h.write_reg(reg::IOTLB_INV, abi::iotlb_inv::ADDR);
    assert_eq!(h.send(&[d]), 0);
    assert_eq!(
        h.frames()[0],
        vec![0xbb; 200],
        "new PTE seen after invalidate-by-address"
    );
    assert_eq!(h.stat(Stat::iotlb_misses), misses + 1);
    // Back again, invalidated by PDBR, then all.
    r.point(&h, r.old);
    h.write_reg(reg::IOTLB_INV, abi::iotlb_inv::PDBR);
    assert_eq!(h.send(&[d]), 0);
    assert_eq!(h.frames()[0], vec![0xaa; 200]);
    r.point(&h, r.new);
    h.write_reg(reg::IOTLB_INV, abi::iotlb_inv::ALL);
    assert_eq!(h.send(&[d]), 0);
    assert_eq!(h.frames()[0], vec![0xbb; 200]);
    assert_eq!(h.stat(Stat::iotlb_invalidations), 3);
    assert!(h.stat(Stat::iotlb_hits) >= 1);
}

fn reset_then_serve(h: &mut Harness) {
    assert_eq!(
        h.read_reg(reg::STATUS) & abi::status::ENABLED,
        0,
        "disabled after reset"
    );
    assert_eq!(h.read_reg(reg::TX_SIZE), 0);
    assert_eq!(h.stat(Stat::tx_packets), 0, "counters cleared");
    h.setup_rings();
    h.enable();
    let frame = pattern(64, 4);
    h.write(DATA_POOL, &frame);
    assert_eq!(h.send(&[desc(DATA_POOL, 64, cmd::EOP)]), 0);
    assert_eq!(h.frames(), vec![frame]);
}

#[test]
fn reset_through_vfio_user_and_ctrl_register() {
    let mut h = Harness::new();
    let hdr = frames::tcp_template(TcpOpts::default());
    h.write(HDR_BUF, &hdr);
    assert_eq!(
        h.send(&[desc(HDR_BUF, hdr.len() as u32, cmd::EOP | cmd::L4CSUM)]),
        0
    );
    h.frames();
    h.client.reset().expect("vfio-user reset");
    reset_then_serve(&mut h);
    h.write_reg(reg::CTRL, abi::ctrl::RESET);
    reset_then_serve(&mut h);
}

#[test]
fn mac_and_mtu_registers() {
    let mut h = Harness::new();
    assert_eq!(
        h.read_reg(reg::MAC_LO),
        u32::from_le_bytes([0x52, 0x54, 0, 0x76])
    );
    assert_eq!(h.read_reg(reg::MTU), 1500);
    h.write_reg(reg::MTU, 9000);
    assert_eq!(h.read_reg(reg::MTU), 9000);
    h.write_reg(reg::MTU, 20);
    assert_eq!(h.read_reg(reg::MTU), 9000, "out-of-range MTU refused");
}

fn segment(seq: u32, len: usize) -> Vec<u8> {
    use etherparse::PacketBuilder;
    let payload: Vec<u8> = (0..len)
        .map(|i| (i as u32).wrapping_add(seq) as u8)
        .collect();
    let mut f = Vec::new();
    PacketBuilder::ethernet2(frames::DST_MAC, frames::SRC_MAC)
        .ipv4(frames::DST4, frames::SRC4, 64)
        .tcp(5201, 40000, seq, 512)
        .ack(1)
        .write(&mut f, &payload)
        .unwrap();
    f
}

/// Queues `n` in-order segments in the backend before any buffer is posted,
/// so the device drains them in one batch, then posts buffers.
fn burst(h: &mut Harness, n: usize) -> Vec<Vec<u8>> {
    let segs: Vec<_> = (0..n)
        .map(|i| segment(1000 + (i * 1400) as u32, 1400))
        .collect();
    for s in &segs {
        h.inject(s);
    }
    h.post_rx(200);
    segs
}

#[test]
fn lro_coalesces_a_burst_into_one_superpacket() {
    let mut h = Harness::new();
    let segs = burst(&mut h, 20);
    let (frame, d) = h.recv_rx().expect("superpacket");
    assert_ne!(d.status & rxstat::COALESCED, 0);
    assert_eq!(
        (d.gso_size, d.gso_segs, d.gso_type),
        (1400, 20, abi::GSO_TYPE_TCPV4)
    );
    let p = etherparse::PacketHeaders::from_ethernet_slice(&frame).unwrap();
    let Some(etherparse::NetHeaders::Ipv4(ip, _)) = p.net else {
        panic!("IPv4")
    };
    assert_eq!(
        ip.header_checksum,
        ip.calc_header_checksum(),
        "IP header checksum recomputed"
    );
    assert_eq!(usize::from(ip.total_len), frame.len() - 14);
    let want: Vec<u8> = segs.iter().flat_map(|s| s[54..].to_vec()).collect();
    assert!(
        p.payload.slice() == &want[..],
        "payload is the segments' payloads in order"
    );
    assert!(h
        .recv_rx_within(std::time::Duration::from_millis(200))
        .is_none());
    assert_eq!(h.stat(Stat::rx_coalesced), 19);
    assert_eq!(h.stat(Stat::rx_packets), 1);
}

#[test]
fn lro_off_delivers_every_segment() {
    let mut h = Harness::new();
    h.write_reg(reg::DRV_FEATURES, ABI1_FEATURES & !abi::feat::LRO);
    burst(&mut h, 20);
    for _ in 0..20 {
        let (_, d) = h.recv_rx().expect("segment");
        assert_eq!(d.status & rxstat::COALESCED, 0);
        assert_ne!(d.status & rxstat::L4_OK, 0);
    }
    assert_eq!(h.stat(Stat::rx_coalesced), 0);
}

#[test]
fn superpacket_waits_for_buffers_instead_of_dropping() {
    let mut h = Harness::new();
    let segs: Vec<_> = (0..20)
        .map(|i| segment(7 + (i * 1400) as u32, 1400))
        .collect();
    for s in &segs {
        h.inject(s);
    }
    h.post_rx(8); // 16 KiB posted: the 28 KiB superpacket does not fit
    assert!(h
        .recv_rx_within(std::time::Duration::from_millis(300))
        .is_none());
    h.post_rx(32);
    let (frame, d) = h
        .recv_rx()
        .expect("held superpacket delivered once buffers come");
    assert_eq!(d.gso_segs, 20);
    assert_eq!(frame.len(), 54 + 20 * 1400);
    assert_eq!(h.stat(Stat::rx_dropped), 0);
}
