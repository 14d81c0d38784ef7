//! Doorbell suppression through the notify block: the driver publishes its
//! tails in guest RAM and rings only when the device says it is idle.

use std::sync::atomic::{fence, Ordering};

use vm_memory::{Bytes, GuestAddress};
use vmso_device::abi::{self, cmd, notify, reg};
use vmso_device::counters::Stat;
use vmso_tests::*;

const BLOCK: u64 = 0x50_0000;

fn setup(poll_us: u32) -> Harness {
    let mut h = Harness::bare();
    h.setup_rings();
    h.write_reg(reg::NOTIFY_LO, BLOCK as u32);
    h.write_reg(reg::NOTIFY_HI, 0);
    h.write_reg(reg::POLL_US, poll_us);
    h.enable();
    h
}

fn word(h: &Harness, off: u64) -> u32 {
    h.mem.read_obj(GuestAddress(BLOCK + off)).unwrap()
}

/// Posts one packet the way a driver does: publish the tail, fence, and
/// ring only if the device asks for it. Returns true if it rang.
fn post_notify(h: &mut Harness, d: abi::TxDesc) -> bool {
    h.post(&[d]);
    h.mem
        .write_obj(h.tx_tail, GuestAddress(BLOCK + notify::TX_TAIL))
        .unwrap();
    fence(Ordering::SeqCst);
    if word(h, notify::TX_KICK) != 0 {
        h.doorbell();
        return true;
    }
    false
}

fn wait_word(h: &Harness, off: u64, v: u32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while word(h, off) != v {
        assert!(
            std::time::Instant::now() < deadline,
            "notify word {off:#x} never became {v}"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

#[test]
fn idle_device_asks_for_doorbells() {
    let h = setup(100);
    // Once the poll window after enabling has passed, the device is idle.
    wait_word(&h, notify::TX_KICK, 1);
    wait_word(&h, notify::RX_KICK, 1);
}

#[test]
fn busy_device_needs_few_doorbells_and_loses_nothing() {
    let mut h = setup(abi::POLL_MAX_US);
    let frame = pattern(200, 9);
    h.write(DATA_POOL, &frame);
    let n = 100;
    let mut rang = 0;
    let mut last = 0;
    for _ in 0..n {
        last = h.tx_tail;
        rang += u32::from(post_notify(&mut h, desc(DATA_POOL, 200, cmd::EOP)));
    }
    assert_eq!(h.wait_done(last), 0, "every packet completes");
    assert_eq!(h.frames().len(), n as usize);
    assert!(
        rang <= n / 2,
        "{rang} doorbells for {n} packets: suppression does not work"
    );
    // After the poll window the device goes idle and asks again.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while word(&h, notify::TX_KICK) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "device never went idle"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    // And a packet posted then is not lost.
    let i = h.tx_tail;
    assert!(post_notify(&mut h, desc(DATA_POOL, 200, cmd::EOP)));
    assert_eq!(h.wait_done(i), 0);
}

#[test]
fn no_poll_window_still_never_loses_a_packet() {
    let mut h = setup(0);
    let frame = pattern(100, 3);
    h.write(DATA_POOL, &frame);
    for _ in 0..200 {
        let i = h.tx_tail;
        post_notify(&mut h, desc(DATA_POOL, 100, cmd::EOP));
        assert_eq!(h.wait_done(i), 0);
    }
    assert_eq!(h.frames().len(), 200);
}

#[test]
fn rx_out_of_buffers_asks_for_an_rx_doorbell() {
    let mut h = setup(50);
    h.inject(&pattern(300, 1));
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(word(&h, notify::RX_KICK), 1, "blocked on buffers");
    // Post buffers through the block; ring because the device asked.
    for i in 0..8u32 {
        let d = abi::RxDesc {
            addr: RX_BUFS + u64::from(i) * 2048,
            buf_len: 2048,
            ..Default::default()
        };
        h.mem
            .write_obj(d, GuestAddress(RX_RING + u64::from(i) * 32))
            .unwrap();
    }
    h.rx_tail = 8;
    h.mem
        .write_obj(8u32, GuestAddress(BLOCK + notify::RX_TAIL))
        .unwrap();
    fence(Ordering::SeqCst);
    assert_eq!(word(&h, notify::RX_KICK), 1);
    h.write_reg(reg::RX_TAIL, 8);
    let (data, _) = h.recv_rx().expect("delivered after the doorbell");
    assert_eq!(data, pattern(300, 1));
    assert_eq!(
        word(&h, notify::RX_KICK),
        0,
        "room left: no RX doorbells needed"
    );
    // More frames are taken without any doorbell while there is room.
    h.inject(&pattern(301, 2));
    assert_eq!(h.recv_rx().expect("second frame").0, pattern(301, 2));
}

#[test]
fn hostile_notify_block_and_tails() {
    // Outside RAM: the device refuses to enable.
    let mut h = Harness::bare();
    h.setup_rings();
    h.write_reg(reg::NOTIFY_LO, 0);
    h.write_reg(reg::NOTIFY_HI, 0x100);
    h.enable();
    assert_eq!(h.read_reg(reg::STATUS) & abi::status::ENABLED, 0);
    // Misaligned: refused too.
    h.write_reg(reg::NOTIFY_HI, 0);
    h.write_reg(reg::NOTIFY_LO, BLOCK as u32 + 4);
    h.enable();
    assert_eq!(h.read_reg(reg::STATUS) & abi::status::ENABLED, 0);
    // A tail beyond the ring in the block is refused like a bad doorbell.
    let mut h = setup(10);
    h.mem
        .write_obj(TX_SIZE + 3, GuestAddress(BLOCK + notify::TX_TAIL))
        .unwrap();
    h.write_reg(reg::TX_TAIL, 0); // wake the device
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert!(h.stat(Stat::bad_doorbells) >= 1);
    h.mem
        .write_obj(0u32, GuestAddress(BLOCK + notify::TX_TAIL))
        .unwrap();
    let frame = pattern(64, 5);
    h.write(DATA_POOL, &frame);
    let i = h.tx_tail;
    post_notify(&mut h, desc(DATA_POOL, 64, cmd::EOP));
    if word(&h, notify::TX_KICK) == 0 {
        h.doorbell();
    }
    assert_eq!(h.wait_done(i), 0, "still serves");
    assert_eq!(h.frames(), vec![frame]);
}

/// QEMU posts register writes: a doorbell can reach the device after the
/// block has moved on. Its stale tail must not rewind the ring (which would
/// replay old descriptors, whose buffers the driver has reused).
#[test]
fn a_late_doorbell_does_not_rewind_the_ring() {
    let mut h = setup(0);
    for i in 0..10u8 {
        h.write(DATA_POOL + 0x1000 * u64::from(i), &[i; 64]);
        h.post(&[desc(DATA_POOL + 0x1000 * u64::from(i), 64, cmd::EOP)]);
    }
    h.mem
        .write_obj(10u32, GuestAddress(BLOCK + notify::TX_TAIL))
        .unwrap();
    fence(Ordering::SeqCst);
    h.write_reg(reg::TX_TAIL, 10);
    assert_eq!(h.wait_done(9), 0);
    assert_eq!(h.frames().len(), 10);
    // The stale doorbell from before the last five were posted.
    h.write_reg(reg::TX_TAIL, 5);
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert!(h.frames().is_empty(), "no descriptor replayed");
    assert_eq!(h.read_reg(reg::TX_HEAD), 10);
    assert_eq!(h.stat(Stat::tx_packets), 10);
}
