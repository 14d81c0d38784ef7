//! Bounded work per descriptor chain: a segment size below `MIN_MSS` would
//! make one chain yield tens of thousands of frames, so the device refuses
//! it with `SMALL_MSS`, counts it, and serves the next packet.

use vmso_device::abi::{cmd, TxDesc, TxError, MIN_MSS};
use vmso_device::counters::Stat;
use vmso_tests::frames::{self, TcpOpts};
use vmso_tests::*;

/// One TSO packet (a header descriptor and one payload descriptor).
fn tso(h: &mut Harness, mss: u16, len: u32) -> [TxDesc; 2] {
    let hdr = frames::tcp_template(TcpOpts::default());
    h.offload(&hdr, &pattern(len as usize, 3), cmd::TSO, mss)
}

/// One UDP packet with `offload` (USO or UFO) over IPv4.
fn udp(h: &mut Harness, offload: u16, mss: u16, len: u32) -> [TxDesc; 2] {
    let hdr = frames::udp_template(false);
    h.offload(&hdr, &pattern(len as usize, 4), offload, mss)
}

/// Sends `descs`, expects `SMALL_MSS`, no frame and one more `tx_errors`,
/// then a good TSO packet goes through whole.
fn refused_then_served(h: &mut Harness, descs: &[TxDesc]) {
    let errors = h.stat(Stat::tx_errors);
    let sent = h.stat(Stat::tx_packets);
    assert_eq!(h.send(descs), TxError::SmallMss as u16, "error code");
    assert!(h.frames().is_empty(), "a refused packet emits nothing");
    assert_eq!(h.stat(Stat::tx_errors), errors + 1, "tx_errors counted");
    assert_eq!(h.stat(Stat::tx_packets), sent, "not counted as sent");
    h.still_serves(4000, 0x77, "the refused one");
}

#[test]
fn tso_mss_1_with_64k_payload_is_refused() {
    let mut h = Harness::new();
    let d = tso(&mut h, 1, 65536);
    refused_then_served(&mut h, &d);
}

#[test]
fn mss_just_below_the_minimum_is_refused_and_the_minimum_is_served() {
    let mut h = Harness::new();
    let below = tso(&mut h, MIN_MSS as u16 - 1, 6400);
    refused_then_served(&mut h, &below);
    // At MIN_MSS the packet is segmented as usual.
    let payload = pattern(6400, 3);
    let d = tso(&mut h, MIN_MSS as u16, 6400);
    assert_eq!(h.send(&d), 0);
    frames::check_tso(&h.frames(), &payload, MIN_MSS, TcpOpts::default());
}

#[test]
fn uso_and_ufo_below_the_minimum_are_refused() {
    let mut h = Harness::new();
    let d = udp(&mut h, cmd::USO, 1, 65000);
    refused_then_served(&mut h, &d);
    // UFO: 63 rounds down to a 56-byte fragment; 8 was the old floor.
    for mss in [8, 63] {
        let d = udp(&mut h, cmd::UFO, mss, 60000);
        refused_then_served(&mut h, &d);
    }
    // A 64-byte fragment is served.
    let payload = pattern(2000, 4);
    let d = udp(&mut h, cmd::UFO, 64, 2000);
    assert_eq!(h.send(&d), 0);
    let f = h.frames();
    assert_eq!(f.len(), (2000usize + 8).div_ceil(64));
    assert!(frames::reassemble_ufo(&f, 64) == payload);
}

#[test]
fn handoff_mode_does_not_hand_a_tiny_mss_to_the_host() {
    let mut h = Harness::handoff();
    let d = tso(&mut h, 1, 65536);
    let errors = h.stat(Stat::tx_errors);
    assert_eq!(h.send(&d), TxError::SmallMss as u16);
    assert!(h.frames().is_empty(), "nothing handed to the host");
    assert_eq!(h.stat(Stat::tx_errors), errors + 1);
    assert_eq!(h.stat(Stat::tx_handoff_packets), 0);
}
