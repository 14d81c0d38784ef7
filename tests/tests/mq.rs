//! Multiple queue pairs (ABI 2.0): RSS steering by the driver's key and
//! indirection table, per-pair TX, per-pair counters adding up to the
//! totals, a fault confined to its pair, invalidation reaching every pair,
//! and hostile per-pair registers.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use etherparse::PacketBuilder;
use vm_memory::{Bytes, GuestAddress};
use vmso_device::abi::{self, cmd, ctrl, feat, qreg, reg, RxDesc, TxDesc, TxError};
use vmso_device::counters::Stat;
use vmso_device::engine::mmu::PagingMode;
use vmso_device::engine::rss::{HashType, Rss, INDIR_LEN, KEY_LEN};
use vmso_tests::pagetable::AddressSpace;
use vmso_tests::*;

const N: usize = 4;
const RING: u32 = 64;
const RX_BUF: u32 = 2048;

/// Microsoft's RSS verification key.
const KEY: [u8; KEY_LEN] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

fn qoff(q: usize, r: u64) -> u64 {
    reg::QUEUE_BASE + reg::QUEUE_STRIDE * q as u64 + r
}
fn tx_ring(q: usize) -> u64 {
    0x60_0000 + 0x1_0000 * q as u64
}
fn rx_ring(q: usize) -> u64 {
    tx_ring(q) + 0x8000
}
fn rx_buf(q: usize, i: u32) -> u64 {
    0x100_0000 + 0x20_0000 * q as u64 + u64::from(i) * u64::from(RX_BUF)
}

/// A device with N pairs, MQ and RSS negotiated, every pair programmed,
/// RX buffers posted on every pair, and the table set to `indir`.
struct Mq {
    h: Harness,
    peers: Vec<RawFd>,
    _owned: Vec<OwnedFd>,
    tx_tail: [u32; N],
    rx_next: [u32; N],
    rss: Rss,
}

impl Mq {
    fn new(indir: impl Fn(usize) -> u8) -> Self {
        let (mut h, owned) = Harness::multi(N);
        let mut peers = vec![h.peer.as_raw_fd()];
        peers.extend(owned.iter().map(|p| p.as_raw_fd()));
        h.write_reg(reg::DRV_FEATURES, feat::DEVICE);
        h.write_reg(reg::QUEUES, N as u32);
        for q in 0..N {
            h.write_reg(qoff(q, qreg::TX_BASE_LO), tx_ring(q) as u32);
            h.write_reg(qoff(q, qreg::TX_SIZE), RING);
            h.write_reg(qoff(q, qreg::RX_BASE_LO), rx_ring(q) as u32);
            h.write_reg(qoff(q, qreg::RX_SIZE), RING);
        }
        let mut rss = Rss {
            key: KEY,
            ..Default::default()
        };
        for (i, e) in rss.indir.iter_mut().enumerate() {
            *e = indir(i);
        }
        for w in 0..KEY_LEN / 4 {
            let v = u32::from_le_bytes(KEY[4 * w..4 * w + 4].try_into().unwrap());
            h.write_reg(reg::RSS_KEY + 4 * w as u64, v);
        }
        for w in 0..INDIR_LEN / 4 {
            let v = u32::from_le_bytes(rss.indir[4 * w..4 * w + 4].try_into().unwrap());
            h.write_reg(reg::RSS_INDIR + 4 * w as u64, v);
        }
        h.write_reg(reg::CTRL, ctrl::ENABLE);
        assert_eq!(h.read_reg(reg::CTRL), 1, "enabled");
        let mut m = Self {
            h,
            peers,
            _owned: owned,
            tx_tail: [0; N],
            rx_next: [0; N],
            rss,
        };
        for q in 0..N {
            m.h.write_reg(qoff(q, qreg::INT_UNMASK), 1);
            m.post_rx(q);
        }
        m
    }

    fn post_rx(&mut self, q: usize) {
        for i in 0..RING {
            let d = RxDesc {
                addr: rx_buf(q, i),
                buf_len: RX_BUF,
                ..Default::default()
            };
            let at = rx_ring(q) + u64::from(i) * 32;
            self.h.mem.write_obj(d, GuestAddress(at)).unwrap();
        }
        self.h.write_reg(qoff(q, qreg::RX_TAIL), RING - 1);
    }

    /// The next received frame on pair `q`, if one arrives within `wait`.
    fn recv(&mut self, q: usize, wait: Duration) -> Option<(Vec<u8>, RxDesc)> {
        let deadline = Instant::now() + wait;
        let at = rx_ring(q) + u64::from(self.rx_next[q]) * 32;
        loop {
            let d: RxDesc = self.h.mem.read_obj(GuestAddress(at)).unwrap();
            if d.status & abi::rxstat::DD != 0 {
                assert_ne!(d.status & abi::rxstat::EOP, 0, "small frames only");
                let mut b = vec![0u8; d.len as usize];
                self.h.mem.read_slice(&mut b, GuestAddress(d.addr)).unwrap();
                self.rx_next[q] += 1;
                return Some((b, d));
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    fn inject(&self, q: usize, frame: &[u8]) {
        client::send_frame(self.peers[q], frame);
    }

    fn frames(&self, q: usize) -> Vec<Vec<u8>> {
        client::recv_frames(self.peers[q])
    }

    /// Sends one packet of `descs` on pair `q` and waits for its status.
    fn send(&mut self, q: usize, descs: &[TxDesc]) -> u16 {
        let first = self.tx_tail[q];
        for d in descs {
            let at = tx_ring(q) + u64::from(self.tx_tail[q]) * 32;
            self.h.mem.write_obj(*d, GuestAddress(at)).unwrap();
            self.tx_tail[q] = (self.tx_tail[q] + 1) % RING;
        }
        self.h.write_reg(qoff(q, qreg::TX_TAIL), self.tx_tail[q]);
        let at = tx_ring(q) + u64::from(first) * 32;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let d: TxDesc = self.h.mem.read_obj(GuestAddress(at)).unwrap();
            if d.status & abi::txstat::DD != 0 {
                return d.error;
            }
            assert!(Instant::now() < deadline, "pair {q}: TX never completed");
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    fn qstat(&mut self, q: usize, s: Stat) -> u64 {
        let off = reg::QSTAT_BASE + reg::QSTAT_STRIDE * q as u64 + 8 * s as u64;
        u64::from(self.h.read_reg(off)) | (u64::from(self.h.read_reg(off + 4)) << 32)
    }
}

fn flow_frame(sport: u16, udp: bool) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]).ipv4(
        [198, 18, 0, 1],
        [198, 18, 0, 2],
        64,
    );
    let mut f = Vec::new();
    let payload = pattern(200, sport as u8);
    if udp {
        b.udp(sport, 5201).write(&mut f, &payload).unwrap();
    } else {
        b.tcp(sport, 5201, 1, 512).write(&mut f, &payload).unwrap();
    }
    f
}

#[test]
fn rss_steers_every_frame_to_the_pair_the_table_picks() {
    let mut m = Mq::new(|i| (i * 7 % N) as u8);
    let mut want = vec![Vec::new(); N];
    let mut steered = 0;
    // 64 flows, TCP and UDP, read by the pairs in turn (interleaved).
    for k in 0..64u16 {
        let f = flow_frame(40000 + k * 13, k % 3 == 0);
        let (hash, ty) = m.rss.hash(&f).unwrap();
        assert_eq!(ty, HashType::L4);
        let q = m.rss.queue(hash, N);
        let reader = usize::from(k) % N;
        steered += u64::from(q != reader);
        m.inject(reader, &f);
        want[q].push((f, hash));
    }
    // Each flow here has one frame and the flows come in through different
    // readers, so a pair's frames may arrive in any order: compare as sets.
    for (q, frames) in want.iter_mut().enumerate() {
        let mut got = Vec::new();
        for _ in 0..frames.len() {
            let (f, d) = m
                .recv(q, Duration::from_secs(5))
                .expect("frame on its pair");
            assert_eq!(d.hash_type, HashType::L4 as u8);
            got.push((f, d.hash));
        }
        got.sort();
        frames.sort();
        assert_eq!(&got, frames, "pair {q}: its flows, each with its hash");
        assert!(
            m.recv(q, Duration::from_millis(50)).is_none(),
            "pair {q}: nothing more"
        );
    }
    assert!(want.iter().all(|w| !w.is_empty()), "every pair got flows");
    let per_pair: u64 = (0..N).map(|q| m.qstat(q, Stat::rx_packets)).sum();
    assert_eq!(per_pair, 64);
    assert_eq!(m.h.stat(Stat::rx_packets), 64, "STAT is the total");
    assert_eq!(m.h.stat(Stat::rx_steered), steered);
}

#[test]
fn every_pair_sends_on_its_own_backend_and_counters_add_up() {
    let mut m = Mq::new(|i| (i % N) as u8);
    for round in 0..3u8 {
        for q in 0..N {
            let gpa = DATA_POOL + 0x1000 * q as u64;
            m.h.write(gpa, &[round * 16 + q as u8; 90]);
            assert_eq!(m.send(q, &[desc(gpa, 90, cmd::EOP)]), 0);
        }
    }
    for q in 0..N {
        let f = m.frames(q);
        assert_eq!(f.len(), 3, "pair {q}'s frames leave on its backend");
        assert!(f.iter().all(|x| x[0] % 16 == q as u8));
        assert_eq!(m.qstat(q, Stat::tx_packets), 3);
    }
    assert_eq!(m.h.stat(Stat::tx_packets), 3 * N as u64);
    assert_eq!(
        m.h.read_reg(reg::NUM_QUEUES),
        (N as u32) | ((N as u32) << 16)
    );
}

#[test]
fn a_fault_on_one_pair_leaves_the_others_serving() {
    let mut m = Mq::new(|i| (i % N) as u8);
    let asp = AddressSpace::new(&m.h.mem, &mut m.h.pt, PagingMode::Level4);
    let bad = vdesc(0x7000_0000_0000, 100, cmd::EOP, asp.pdbr, asp.mode);
    assert_eq!(m.send(1, &[bad]), TxError::PageFault as u16);
    assert_eq!(m.h.read_reg(reg::FAULT_QUEUE), 1);
    assert_eq!(m.qstat(1, Stat::page_faults), 1);
    for q in [0, 2, 3] {
        m.h.write(DATA_POOL, &[7; 64]);
        assert_eq!(m.send(q, &[desc(DATA_POOL, 64, cmd::EOP)]), 0, "pair {q}");
        assert_eq!(m.frames(q).len(), 1);
    }
    assert!(m.frames(1).is_empty());
}

#[test]
fn an_invalidation_reaches_every_pair_before_its_write_completes() {
    let mut m = Mq::new(|i| (i % N) as u8);
    let r = Remap::new(&mut m.h, 0x5555_0000_0000, 100);
    let d = r.desc;
    for q in 0..N {
        assert_eq!(m.send(q, &[d]), 0);
        assert_eq!(m.frames(q), vec![vec![0xaa; 100]], "pair {q} warm");
    }
    r.point(&m.h, r.new);
    m.h.write_reg(reg::IOTLB_INV, abi::iotlb_inv::ALL);
    for q in 0..N {
        assert_eq!(m.send(q, &[d]), 0);
        assert_eq!(
            m.frames(q),
            vec![vec![0xbb; 100]],
            "pair {q} sees the new PTE"
        );
    }
}

#[test]
fn hostile_queue_registers_are_refused_and_counted() {
    let (mut h, _peers) = Harness::multi(2);
    h.write_reg(reg::DRV_FEATURES, feat::DEVICE);
    let mut refused = 0;
    let mut bad = |h: &mut Harness, off: u64, v: u32| {
        h.write_reg(off, v);
        refused += 1;
        assert_eq!(
            h.stat(Stat::bad_queue_regs),
            refused,
            "write {v:#x} at {off:#x}"
        );
    };
    // A pair beyond the two the device has.
    bad(&mut h, qoff(2, qreg::TX_BASE_LO), 0x1000);
    bad(&mut h, qoff(15, qreg::TX_TAIL), 1);
    assert_eq!(h.read_reg(qoff(2, qreg::TX_BASE_LO)), 0);
    // QUEUES out of range.
    bad(&mut h, reg::QUEUES, 0);
    bad(&mut h, reg::QUEUES, 3);
    assert_eq!(h.read_reg(reg::QUEUES), 1);
    // An indirection entry naming pair 5.
    bad(&mut h, reg::RSS_INDIR, 0x0500_0100);
    assert_eq!(h.read_reg(reg::RSS_INDIR), 0);
    // Rings of two pairs overlapping: ENABLE refused.
    h.write_reg(reg::QUEUES, 2);
    for q in 0..2 {
        h.write_reg(qoff(q, qreg::TX_BASE_LO), tx_ring(q) as u32);
        h.write_reg(qoff(q, qreg::TX_SIZE), RING);
        h.write_reg(qoff(q, qreg::RX_SIZE), RING);
    }
    h.write_reg(qoff(0, qreg::RX_BASE_LO), rx_ring(0) as u32);
    h.write_reg(qoff(1, qreg::RX_BASE_LO), tx_ring(1) as u32 + 0x100);
    let errors = h.read_reg(reg::ERROR_COUNT);
    h.write_reg(reg::CTRL, ctrl::ENABLE);
    assert_eq!(h.read_reg(reg::CTRL), 0, "stays disabled");
    assert_eq!(h.stat(Stat::bad_queue_regs), refused + 1);
    assert_eq!(h.read_reg(reg::ERROR_COUNT), errors + 1);
    // Fixed, it serves.
    h.write_reg(qoff(1, qreg::RX_BASE_LO), rx_ring(1) as u32);
    h.write_reg(reg::CTRL, ctrl::ENABLE);
    assert_eq!(h.read_reg(reg::CTRL), 1);
}

#[test]
fn a_pair_beyond_queues_hands_what_its_backend_receives_to_the_pairs_in_use() {
    let (mut h, owned) = Harness::multi(2);
    h.write_reg(reg::DRV_FEATURES, feat::DEVICE);
    h.write_reg(reg::QUEUES, 1);
    h.write_reg(qoff(0, qreg::TX_BASE_LO), tx_ring(0) as u32);
    h.write_reg(qoff(0, qreg::TX_SIZE), RING);
    h.write_reg(qoff(0, qreg::RX_BASE_LO), rx_ring(0) as u32);
    h.write_reg(qoff(0, qreg::RX_SIZE), RING);
    h.write_reg(reg::CTRL, ctrl::ENABLE);
    let mut m = Mq {
        peers: vec![h.peer.as_raw_fd(), owned[0].as_raw_fd()],
        h,
        _owned: owned,
        tx_tail: [0; N],
        rx_next: [0; N],
        rss: Rss::default(),
    };
    m.post_rx(0);
    // The host put a frame on TAP queue 1, which no pair in use reads.
    let f = flow_frame(40001, false);
    m.inject(1, &f);
    let (got, _) = m
        .recv(0, Duration::from_secs(5))
        .expect("delivered on pair 0");
    assert_eq!(got, f);
    assert_eq!(m.h.stat(Stat::rx_steered), 1);
}
