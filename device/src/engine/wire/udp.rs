//! UDP header (RFC 768):
//!
//! ```text
//!  0               8               16                              31
//! |          Source Port          |       Destination Port        |
//! |            Length             |           Checksum            |
//! ```

use super::ParseError;
use crate::engine::csum;

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
}

pub const HEADER_LEN: usize = 8;

/// Where the checksum field is, from the start of the header.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM;

view! {
    /// A view of a UDP datagram: the header, then whatever of the payload
    /// the buffer holds.
    pub struct UdpDatagram;
    check_len: HEADER_LEN;
}

// Alike in shape to TcpSegment's table (and every view's): a field list.
fields! {
    UdpDatagram;
    get {
        src_port: u16 @ SRC_PORT,
        dst_port: u16 @ DST_PORT,
        /// The length field: header and payload.
        length: u16 @ LENGTH,
        /// The checksum field; 0 over IPv4 means none was computed.
        checksum: u16 @ CHECKSUM,
    }
    set {
        set_length: u16 @ LENGTH,
        set_checksum: u16 @ CHECKSUM,
    }
}

impl<T: AsRef<[u8]>> UdpDatagram<T> {
    /// A view whose header is present (`Truncated` otherwise). The length
    /// field is not checked against anything.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let d = Self::new_unchecked(buffer);
        d.check_len()?;
        Ok(d)
    }

    #[inline]
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..HEADER_LEN]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpDatagram<T> {
    /// Computes and writes the checksum over the pseudo-header (partial sum
    /// `pseudo`), this header, and a payload given by its partial sum. A
    /// computed 0 is sent as 0xffff (RFC 768: 0 means no checksum).
    #[inline]
    pub fn fill_checksum(&mut self, pseudo: u64, payload_sum: u64) {
        self.set_checksum(0);
        let sum = pseudo + csum::partial(self.header());
        let sum = csum::combine(sum, payload_sum, HEADER_LEN);
        let c = match u16::from_be_bytes(csum::finish(sum)) {
            0 => 0xffff,
            c => c,
        };
        self.set_checksum(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::wire::testutil::{changed, changed_by};
    use crate::engine::wire::{IpPacket, L3};

    /// 1234 -> 5678, length 28 (20 bytes of payload), checksum 0xabcd.
    const HDR: [u8; 8] = [
        0x04, 0xd2, 0x16, 0x2e, // ports 1234 -> 5678
        0x00, 0x1c, 0xab, 0xcd, // length 28, checksum
    ];

    #[test]
    fn golden_bytes() {
        let d = UdpDatagram::new_checked(&HDR[..]).unwrap();
        assert_eq!(d.src_port(), 1234);
        assert_eq!(d.dst_port(), 5678);
        assert_eq!(d.length(), 28);
        assert_eq!(d.checksum(), 0xabcd);
        assert_eq!(d.header(), &HDR[..]);

        let e = etherparse::UdpHeaderSlice::from_slice(&HDR).unwrap();
        assert_eq!(e.source_port(), d.src_port());
        assert_eq!(e.destination_port(), d.dst_port());
        assert_eq!(e.length(), d.length());
        assert_eq!(e.checksum(), d.checksum());

        assert_eq!(
            UdpDatagram::new_checked(&HDR[..7]),
            Err(ParseError::Truncated)
        );
    }

    #[test]
    fn setters_change_only_their_bytes() {
        let set = |f: &dyn Fn(&mut UdpDatagram<&mut [u8]>)| {
            changed_by(&HDR, |b| f(&mut UdpDatagram::new_unchecked(b)))
        };
        assert_eq!(set(&|d| d.set_length(0x0100)), [(4, 0x01), (5, 0x00)]);
        assert_eq!(set(&|d| d.set_checksum(0x00cd)), [(6, 0x00)]);
    }

    /// fill_checksum over an IPv6 pseudo-header, as etherparse computes
    /// it; and a sum that comes out 0 is written 0xffff.
    #[test]
    fn fill_checksum_matches_etherparse() {
        let mut ip = [0u8; 40];
        ip[0] = 0x60;
        ip[5] = 28;
        ip[6] = 17;
        ip[7] = 64;
        ip[8..10].copy_from_slice(&[0x20, 0x01]);
        ip[23] = 1;
        ip[24..26].copy_from_slice(&[0x20, 0x01]);
        ip[39] = 2;
        let payload: Vec<u8> = (0..20u8).map(|i| i.wrapping_mul(91)).collect();
        let mut v = HDR.to_vec();
        let pseudo = IpPacket::new_unchecked(L3::Ipv6, &ip[..]).pseudo_header_sum(17, 28);
        UdpDatagram::new_unchecked(&mut v[..]).fill_checksum(pseudo, csum::partial(&payload));
        let e = etherparse::UdpHeaderSlice::from_slice(&HDR)
            .unwrap()
            .to_header();
        let ipe = etherparse::Ipv6HeaderSlice::from_slice(&ip)
            .unwrap()
            .to_header();
        let want = e.calc_checksum_ipv6(&ipe, &payload).unwrap();
        assert_eq!(UdpDatagram::new_unchecked(&v[..]).checksum(), want);
        assert_eq!(
            changed(&HDR, &v).iter().map(|c| c.0).collect::<Vec<_>>(),
            [6, 7]
        );

        // A payload chosen to make the sum come out 0: its last two bytes
        // are the checksum just computed, which brings the total to 0xffff.
        let mut zero = payload.clone();
        zero.extend_from_slice(&want.to_be_bytes());
        let mut v = HDR.to_vec();
        let pseudo = IpPacket::new_unchecked(L3::Ipv6, &ip[..]).pseudo_header_sum(17, 28);
        UdpDatagram::new_unchecked(&mut v[..]).fill_checksum(pseudo, csum::partial(&zero));
        assert_eq!(UdpDatagram::new_unchecked(&v[..]).checksum(), 0xffff);
    }
}
