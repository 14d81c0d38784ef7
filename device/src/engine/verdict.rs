//! Receive verdicts: the metadata the device writes back with a frame, and
//! the checksum verdicts it reaches by verifying a frame or by trusting the
//! host's word for it. Pure functions of the frame's bytes.

use crate::abi::rxstat;
use crate::engine::csum;
use crate::engine::wire::{self, IpPacket, L3, L4};

/// What the device learned about a frame before delivering it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxMeta {
    pub status: u16,
    pub gso_size: u16,
    pub gso_segs: u16,
    pub gso_type: u8,
    /// RSS hash and [`crate::engine::rss::HashType`] (0: none).
    pub hash: u32,
    pub hash_type: u8,
}

/// Verifies the checksums of a received frame: IP_OK / L4_OK / CSUM_ERR.
pub fn verify_checksums(frame: &[u8]) -> u16 {
    let Ok(h) = wire::parse(frame) else {
        return 0;
    };
    let l3_end = h.l3_off + h.ip_len;
    if l3_end > frame.len() || l3_end < h.hdr_len {
        return rxstat::CSUM_ERR;
    }
    let mut st = 0;
    let ip = h.ip(frame);
    if let IpPacket::V4(ip) = &ip {
        if ip.verify_checksum() {
            st |= rxstat::IP_OK;
        } else {
            return rxstat::CSUM_ERR;
        }
    }
    if h.is_fragment {
        return st;
    }
    if h.l4 == L4::Udp && h.l3 == L3::Ipv4 && h.udp(frame).checksum() == 0 {
        return st; // no UDP checksum to verify
    }
    let l4 = &frame[h.l4_off..l3_end];
    let sum = ip.pseudo_header_sum(h.proto(), l4.len()) + csum::partial(l4);
    if csum::fold(sum) == 0xffff {
        st | rxstat::L4_OK
    } else {
        st | rxstat::CSUM_ERR
    }
}

/// The verdict for a frame whose checksums the host vouched for (or the
/// device just wrote): IP_OK for IPv4, L4_OK for unfragmented TCP/UDP.
pub fn trusted_status(frame: &[u8]) -> u16 {
    let Ok(h) = wire::parse(frame) else {
        return 0;
    };
    let ip = if h.l3 == L3::Ipv4 { rxstat::IP_OK } else { 0 };
    if h.is_fragment {
        ip
    } else {
        ip | rxstat::L4_OK
    }
}
