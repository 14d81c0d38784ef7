//! IPv6 fixed header (RFC 8200 section 3); extension headers are not
//! followed (the next header must be TCP or UDP for the engine's offloads):
//!
//! ```text
//!  0       4               12                      31
//! |Version| Traffic Class |       Flow Label       |
//! |        Payload Length         |  Next Header  |   Hop Limit   |
//! |                  Source Address (16 bytes)                    |
//! |               Destination Address (16 bytes)                  |
//! ```

use super::ParseError;

pub(super) mod field {
    use std::ops::Range;

    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Range<usize> = 8..24;
    pub const DST_ADDR: Range<usize> = 24..40;
}

/// The fixed header.
pub const HEADER_LEN: usize = 40;

view! {
    /// A view of an IPv6 packet: the fixed header, then whatever of the
    /// payload the buffer holds.
    pub struct Ipv6Packet;
    /// Whether the fixed header is present; nothing about the values.
    check_len: HEADER_LEN;
}

// Alike in shape to Ipv4Packet's table (and every view's): a field list.
fields! {
    Ipv6Packet;
    get {
        /// The length of what follows the fixed header.
        payload_len: u16 @ PAYLOAD_LEN,
        next_header: u8 @ NEXT_HEADER,
        hop_limit: u8 @ HOP_LIMIT,
        src_addr: [u8; 16] @ SRC_ADDR,
        dst_addr: [u8; 16] @ DST_ADDR,
    }
    set {
        set_payload_len: u16 @ PAYLOAD_LEN,
        set_hop_limit: u8 @ HOP_LIMIT,
    }
}
impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// A view of a well-formed header: present (`Truncated`), version 6
    /// (`BadIp`).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        if p.version() != 6 {
            return Err(ParseError::BadIp);
        }
        Ok(p)
    }

    #[inline]
    fn ver_tc_flow(&self) -> u32 {
        let mut w = [0; 4];
        w.copy_from_slice(&self.buffer.as_ref()[field::VER_TC_FLOW]);
        u32::from_be_bytes(w)
    }

    #[inline]
    pub fn version(&self) -> u8 {
        (self.ver_tc_flow() >> 28) as u8
    }

    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (self.ver_tc_flow() >> 20) as u8
    }

    #[inline]
    pub fn flow_label(&self) -> u32 {
        self.ver_tc_flow() & 0x000f_ffff
    }

    /// What follows the fixed header (as much as the buffer has).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// The source and destination addresses, borrowed from the view.
    #[inline]
    pub(super) fn addr_bytes(&self) -> (&[u8], &[u8]) {
        let b = self.buffer.as_ref();
        (&b[field::SRC_ADDR], &b[field::DST_ADDR])
    }
}

impl<'a> Ipv6Packet<&'a [u8]> {
    /// [`Ipv6Packet::payload`], borrowed for as long as the buffer.
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        &self.buffer[HEADER_LEN..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::wire::testutil::changed_by;

    /// A TCP packet's header, 2001:db8::1 -> 2001:db8::2: traffic class
    /// 0xa5, flow label 0xbcdef, payload length 32, hop limit 64, then 2
    /// bytes of payload.
    const HDR: [u8; 42] = [
        0x6a, 0x5b, 0xcd, 0xef, // version 6, traffic class 0xa5, flow 0xbcdef
        0x00, 0x20, 0x06, 0x40, // payload length 32, TCP, hop limit 64
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // src
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // dst
        0xaa, 0xbb,
    ];

    // Each view's golden_bytes test starts alike (one per protocol).
    #[test]
    fn golden_bytes() {
        let p = Ipv6Packet::new_checked(&HDR[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0xa5);
        assert_eq!(p.flow_label(), 0xbcdef);
        assert_eq!(p.payload_len(), 32);
        assert_eq!(p.next_header(), 6);
        assert_eq!(p.hop_limit(), 64);
        let a = |last| {
            let mut a = [0u8; 16];
            a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
            a[15] = last;
            a
        };
        assert_eq!(p.src_addr(), a(1));
        assert_eq!(p.dst_addr(), a(2));
        assert_eq!(p.payload(), &[0xaa, 0xbb]);
        assert_eq!(p.into_payload(), &[0xaa, 0xbb]);

        let e = etherparse::Ipv6HeaderSlice::from_slice(&HDR).unwrap();
        assert_eq!(e.version(), p.version());
        assert_eq!(e.traffic_class(), p.traffic_class());
        assert_eq!(e.flow_label().value(), p.flow_label());
        assert_eq!(e.payload_length(), p.payload_len());
        assert_eq!(e.next_header().0, p.next_header());
        assert_eq!(e.hop_limit(), p.hop_limit());
        assert_eq!(e.source(), p.src_addr());
        assert_eq!(e.destination(), p.dst_addr());

        assert_eq!(
            Ipv6Packet::new_checked(&HDR[..39]),
            Err(ParseError::Truncated)
        );
        let mut b = HDR;
        b[0] = 0x4a;
        assert_eq!(Ipv6Packet::new_checked(&b[..]), Err(ParseError::BadIp));
        assert!(Ipv6Packet::new_unchecked(&b[..]).check_len().is_ok());
    }

    #[test]
    fn setters_change_only_their_bytes() {
        let set = |f: &dyn Fn(&mut Ipv6Packet<&mut [u8]>)| {
            changed_by(&HDR, |b| f(&mut Ipv6Packet::new_unchecked(b)))
        };
        assert_eq!(set(&|p| p.set_payload_len(0x0120)), [(4, 0x01)]);
        assert_eq!(set(&|p| p.set_payload_len(0xffff)), [(4, 0xff), (5, 0xff)]);
        assert_eq!(set(&|p| p.set_hop_limit(1)), [(7, 0x01)]);
    }
}
