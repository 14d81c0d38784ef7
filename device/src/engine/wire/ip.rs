//! Either IP version, for what TCP and UDP need of it whatever the version:
//! the addresses, the pseudo-header sum, the packet length.

use super::{ipv4, ipv6, Ipv4Packet, Ipv6Packet, ParseError, L3};
use crate::engine::csum;

/// A view of an IPv4 or IPv6 packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpPacket<T> {
    V4(Ipv4Packet<T>),
    V6(Ipv6Packet<T>),
}

impl<T: AsRef<[u8]>> IpPacket<T> {
    /// A view of version `l3` without a check.
    #[inline]
    pub fn new_unchecked(l3: L3, buffer: T) -> Self {
        match l3 {
            L3::Ipv4 => Self::V4(Ipv4Packet::new_unchecked(buffer)),
            L3::Ipv6 => Self::V6(Ipv6Packet::new_unchecked(buffer)),
        }
    }

    /// Whether the fixed header of its version is present.
    #[inline]
    pub fn check_len(&self) -> Result<(), ParseError> {
        match self {
            Self::V4(p) => p.check_len(),
            Self::V6(p) => p.check_len(),
        }
    }

    /// The source address: 4 or 16 bytes.
    #[inline]
    pub fn src_addr(&self) -> &[u8] {
        match self {
            Self::V4(p) => p.addr_bytes().0,
            Self::V6(p) => p.addr_bytes().0,
        }
    }

    /// The destination address: 4 or 16 bytes.
    #[inline]
    pub fn dst_addr(&self) -> &[u8] {
        match self {
            Self::V4(p) => p.addr_bytes().1,
            Self::V6(p) => p.addr_bytes().1,
        }
    }

    /// The partial sum of the TCP/UDP pseudo-header (RFC 9293 3.1, RFC 8200
    /// 8.1) for protocol `proto` and an L4 length of `l4_len` bytes.
    #[inline]
    pub fn pseudo_header_sum(&self, proto: u8, l4_len: usize) -> u64 {
        // After the addresses, RFC 8200's layout: a 32-bit length, 3 zero
        // bytes, the protocol. It sums as RFC 9293's zero, protocol, 16-bit
        // length does, the words being the same up to their order.
        let mut tail = [0u8; 8];
        tail[..4].copy_from_slice(&(l4_len as u32).to_be_bytes());
        tail[7] = proto;
        csum::partial(self.src_addr()) + csum::partial(self.dst_addr()) + csum::partial(&tail)
    }
}

impl<'a> IpPacket<&'a [u8]> {
    /// The source and destination addresses (4 or 16 bytes each), borrowed
    /// for as long as the buffer rather than the view.
    #[inline]
    pub fn into_addrs(self) -> (&'a [u8], &'a [u8]) {
        match self {
            Self::V4(p) => {
                let b = p.into_inner();
                (&b[ipv4::field::SRC_ADDR], &b[ipv4::field::DST_ADDR])
            }
            Self::V6(p) => {
                let b = p.into_inner();
                (&b[ipv6::field::SRC_ADDR], &b[ipv6::field::DST_ADDR])
            }
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IpPacket<T> {
    /// Sets the length field for an L3 packet of `l3_len` bytes, header
    /// included: the IPv4 total length, or the IPv6 payload length (less
    /// the 40-byte header).
    #[inline]
    pub fn set_packet_len(&mut self, l3_len: usize) {
        match self {
            Self::V4(p) => p.set_total_len(l3_len as u16),
            Self::V6(p) => p.set_payload_len((l3_len - super::ipv6::HEADER_LEN) as u16),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::wire::testutil::changed;

    /// IPv4 198.18.0.1 -> 198.18.0.2, total length 40, TCP.
    const V4: [u8; 20] = [
        0x45, 0, 0x00, 0x28, 0, 0, 0x40, 0, 64, 6, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2,
    ];

    fn v6() -> [u8; 40] {
        let mut b = [0u8; 40];
        b[0] = 0x60;
        b[5] = 20; // payload length 20
        b[6] = 6;
        b[7] = 64;
        b[8] = 0xfd;
        b[23] = 1; // fd00::1
        b[24] = 0xfd;
        b[39] = 2; // fd00::2
        b
    }

    #[test]
    fn addresses_and_pseudo_header() {
        let p = IpPacket::new_unchecked(L3::Ipv4, &V4[..]);
        assert_eq!(p.src_addr(), &[198, 18, 0, 1]);
        assert_eq!(p.dst_addr(), &[198, 18, 0, 2]);
        assert_eq!(p.into_addrs(), (&V4[12..16], &V4[16..20]));
        assert!(p.check_len().is_ok());
        assert_eq!(
            IpPacket::new_unchecked(L3::Ipv4, &V4[..19]).check_len(),
            Err(ParseError::Truncated)
        );
        // RFC 9293 3.1: source, destination, zero, protocol, TCP length.
        let pseudo = [198, 18, 0, 1, 198, 18, 0, 2, 0, 6, 0, 20];
        assert_eq!(
            csum::fold(p.pseudo_header_sum(6, 20)),
            csum::fold(csum::partial(&pseudo))
        );

        let b = v6();
        let q = IpPacket::new_unchecked(L3::Ipv6, &b[..]);
        assert_eq!(q.src_addr(), &b[8..24]);
        assert_eq!(q.dst_addr(), &b[24..40]);
        assert_eq!(q.into_addrs(), (&b[8..24], &b[24..40]));
        assert_eq!(
            IpPacket::new_unchecked(L3::Ipv6, &b[..39]).check_len(),
            Err(ParseError::Truncated)
        );
        let e = etherparse::Ipv6HeaderSlice::from_slice(&b).unwrap();
        assert_eq!(q.src_addr(), &e.source());
        assert_eq!(q.dst_addr(), &e.destination());
        // RFC 8200 8.1: source, destination, 32-bit length, 3 zero bytes,
        // next header.
        let mut pseudo = b[8..40].to_vec();
        pseudo.extend_from_slice(&[0, 0, 0, 20, 0, 0, 0, 6]);
        assert_eq!(
            csum::fold(q.pseudo_header_sum(6, 20)),
            csum::fold(csum::partial(&pseudo))
        );
    }

    #[test]
    fn set_packet_len_writes_the_version_s_field() {
        let mut a = V4;
        IpPacket::new_unchecked(L3::Ipv4, &mut a[..]).set_packet_len(1500);
        assert_eq!(changed(&V4, &a), [(2, 0x05), (3, 0xdc)]);
        let b = v6();
        let mut c = b;
        IpPacket::new_unchecked(L3::Ipv6, &mut c[..]).set_packet_len(1500);
        assert_eq!(changed(&b, &c), [(4, 0x05), (5, 0xb4)]);
    }
}
