//! The queue worker owns its queues: register accesses never wait behind a
//! TX pass, and control changes are applied (between packets) before the
//! register write that asked for them completes.

use std::time::{Duration, Instant};

use vmso_device::abi::{self, cmd, ctrl, reg};
use vmso_device::counters::Stat;
use vmso_device::DeviceConfig;
use vmso_tests::*;

/// A harness whose worker blocks in its backend send while the gate is closed.
fn gated() -> (Harness, Gate) {
    let gate = Gate::default();
    let g = gate.clone();
    let h = Harness::with_backend(move |b| g.wrap(b), DeviceConfig::default());
    (h, gate)
}

/// Opens the gate after `after`, from another thread, so that a test that
/// would otherwise hang fails instead.
fn open_later(gate: &Gate, after: Duration) -> std::thread::JoinHandle<()> {
    let g = gate.clone();
    std::thread::spawn(move || {
        std::thread::sleep(after);
        g.set_closed(false);
    })
}

fn post_plain(h: &mut Harness, gpa: u64, fill: u8) -> u32 {
    h.write(gpa, &[fill; 100]);
    h.post(&[desc(gpa, 100, cmd::EOP)])
}

#[test]
fn register_reads_complete_while_the_worker_is_stuck_in_a_send() {
    let (mut h, gate) = gated();
    gate.set_closed(true);
    post_plain(&mut h, DATA_POOL, 1);
    h.doorbell();
    assert!(gate.wait_entered(1), "the worker reached the backend");
    let watchdog = open_later(&gate, Duration::from_secs(3));
    let t0 = Instant::now();
    let head = h.read_reg(reg::TX_HEAD);
    let status = h.read_reg(reg::STATUS);
    let packets = h.stat(Stat::tx_packets);
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "register reads waited {took:?} behind the stuck send"
    );
    assert_eq!(head, 0, "the packet is still in flight");
    assert_ne!(status & abi::status::ENABLED, 0);
    assert_eq!(packets, 0);
    watchdog.join().unwrap();
    assert_eq!(h.wait_done(0), 0);
    assert_eq!(h.frames().len(), 1);
}

#[test]
fn reset_takes_effect_before_its_write_completes() {
    let (mut h, gate) = gated();
    gate.set_closed(true);
    for i in 0..4 {
        post_plain(&mut h, DATA_POOL + 0x1000 * i, i as u8);
    }
    h.doorbell();
    assert!(gate.wait_entered(1));
    let opener = open_later(&gate, Duration::from_millis(300));
    let t0 = Instant::now();
    h.write_reg(reg::CTRL, ctrl::RESET);
    let took = t0.elapsed();
    opener.join().unwrap();
    assert!(
        took >= Duration::from_millis(250),
        "the reset returned after {took:?}, before the worker could apply it"
    );
    // The packet in the send finishes; nothing after it is touched.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(h.frames().len(), 1, "only the packet already in flight");
    assert_eq!(h.read_reg(reg::TX_HEAD), 0);
    assert_eq!(h.read_reg(reg::CTRL), 0);
    for i in 1..4 {
        assert_eq!(h.read_tx_desc(i).status & abi::txstat::DD, 0, "desc {i}");
    }
}

#[test]
fn invalidation_is_applied_between_packets_before_its_write_completes() {
    let (mut h, gate) = gated();
    let r = Remap::new(&mut h, 0x7000_0000_0000, 200);
    let d = r.desc;
    // Warm the IOTLB.
    assert_eq!(h.send(&[d]), 0);
    assert_eq!(h.frames(), vec![vec![0xaa; 200]]);
    gate.set_closed(true);
    h.post(&[d]);
    h.post(&[d]);
    h.doorbell();
    assert!(gate.wait_entered(2), "the first of the two is in its send");
    r.point(&h, r.new);
    let opener = open_later(&gate, Duration::from_millis(300));
    let t0 = Instant::now();
    h.write_reg(reg::IOTLB_INV, abi::iotlb_inv::ALL);
    assert!(t0.elapsed() >= Duration::from_millis(250));
    opener.join().unwrap();
    assert_eq!(h.wait_done(2), 0);
    assert_eq!(
        h.frames(),
        vec![vec![0xaa; 200], vec![0xbb; 200]],
        "gathered before the invalidation, then after it"
    );
}

#[test]
fn no_frame_is_lost_across_disable_and_enable() {
    let mut h = Harness::new();
    for round in 0..20u32 {
        let n = 1 + round % 7;
        let first = h.tx_tail;
        for i in 0..n {
            post_plain(&mut h, DATA_POOL + 0x1000 * u64::from(i), i as u8);
        }
        h.doorbell();
        h.write_reg(reg::CTRL, 0);
        // After the disable, the device touches no descriptor: count the
        // completed ones, then check that exactly that many frames went out.
        let done = (0..n)
            .filter(|i| h.read_tx_desc(first + i).status & abi::txstat::DD != 0)
            .count();
        std::thread::sleep(Duration::from_millis(20));
        let again = (0..n)
            .filter(|i| h.read_tx_desc(first + i).status & abi::txstat::DD != 0)
            .count();
        assert_eq!(done, again, "round {round}: work after the disable");
        assert_eq!(h.frames().len(), done, "round {round}");
        // Re-enable: indices restart at 0.
        for i in 0..TX_SIZE {
            h.mem_clear_tx(i);
        }
        h.setup_rings();
        h.write_reg(reg::CTRL, ctrl::ENABLE);
    }
    still_sends(&mut h);
}

fn still_sends(h: &mut Harness) {
    post_plain(h, DATA_POOL, 9);
    h.doorbell();
    assert_eq!(h.wait_done(0), 0);
    assert_eq!(h.frames(), vec![vec![9; 100]]);
}
