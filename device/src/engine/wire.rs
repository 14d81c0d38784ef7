//! Header parsing for the offload engine: Ethernet (one optional 802.1Q tag),
//! IPv4 with options, IPv6 without extension headers, TCP with options, UDP.
//!
//! Every length is checked against the bytes actually present before it is
//! used, so no accessor can index out of bounds on untrusted input.

pub const ETH_HLEN: usize = 14;
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const ETHERTYPE_VLAN: u16 = 0x8100;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_PSH: u8 = 0x08;
pub const TCP_ACK: u8 = 0x10;
pub const TCP_URG: u8 = 0x20;
pub const TCP_CWR: u8 = 0x80;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L3 {
    Ipv4,
    Ipv6,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L4 {
    Tcp,
    Udp,
}

/// Where the headers of a frame are, all offsets from the frame start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Headers {
    pub l3: L3,
    pub l4: L4,
    pub l3_off: usize,
    pub l4_off: usize,
    /// End of the L4 header: where the payload starts.
    pub hdr_len: usize,
    /// L3 packet length claimed by the IP header (IPv4 total length, or
    /// IPv6 40 + payload length).
    pub ip_len: usize,
    /// IPv4 MF set or fragment offset non-zero.
    pub is_fragment: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("frame too short for its headers")]
    Truncated,
    #[error("ethertype {0:#06x} is not IPv4 or IPv6")]
    EtherType(u16),
    #[error("bad IP version or header length")]
    BadIp,
    #[error("L4 protocol {0} is not TCP or UDP")]
    Protocol(u8),
    #[error("TCP data offset below 5")]
    BadTcpOffset,
}

pub fn be16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

/// `be16`, or `None` past the end of `b`.
pub fn be16_opt(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(off)?, *b.get(off + 1)?]))
}

pub fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

pub fn put16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_be_bytes());
}

pub fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_be_bytes());
}

fn need(b: &[u8], len: usize) -> Result<(), ParseError> {
    if b.len() < len {
        Err(ParseError::Truncated)
    } else {
        Ok(())
    }
}

/// Parses the headers at the start of `b` (which may hold only the first
/// bytes of the frame). Fails unless the whole L4 header is inside `b`.
pub fn parse(b: &[u8]) -> Result<Headers, ParseError> {
    need(b, ETH_HLEN)?;
    let mut l3_off = ETH_HLEN;
    let mut ethertype = be16(b, 12);
    if ethertype == ETHERTYPE_VLAN {
        need(b, ETH_HLEN + 4)?;
        ethertype = be16(b, 16);
        l3_off += 4;
    }
    let (l3, proto, l4_off, ip_len, is_fragment) = match ethertype {
        ETHERTYPE_IPV4 => {
            need(b, l3_off + 20)?;
            let vihl = b[l3_off];
            let ihl = usize::from(vihl & 0xf) * 4;
            if vihl >> 4 != 4 || ihl < 20 {
                return Err(ParseError::BadIp);
            }
            need(b, l3_off + ihl)?;
            let tot = usize::from(be16(b, l3_off + 2));
            if tot < ihl {
                return Err(ParseError::BadIp);
            }
            let frag = be16(b, l3_off + 6);
            let is_fragment = frag & 0x3fff != 0;
            (L3::Ipv4, b[l3_off + 9], l3_off + ihl, tot, is_fragment)
        }
        ETHERTYPE_IPV6 => {
            need(b, l3_off + 40)?;
            if b[l3_off] >> 4 != 6 {
                return Err(ParseError::BadIp);
            }
            let plen = usize::from(be16(b, l3_off + 4));
            (L3::Ipv6, b[l3_off + 6], l3_off + 40, 40 + plen, false)
        }
        t => return Err(ParseError::EtherType(t)),
    };
    let (l4, l4_len) = match proto {
        PROTO_TCP => {
            need(b, l4_off + 20)?;
            let doff = usize::from(b[l4_off + 12] >> 4) * 4;
            if doff < 20 {
                return Err(ParseError::BadTcpOffset);
            }
            need(b, l4_off + doff)?;
            (L4::Tcp, doff)
        }
        PROTO_UDP => {
            need(b, l4_off + 8)?;
            (L4::Udp, 8)
        }
        p => return Err(ParseError::Protocol(p)),
    };
    Ok(Headers {
        l3,
        l4,
        l3_off,
        l4_off,
        hdr_len: l4_off + l4_len,
        ip_len,
        is_fragment,
    })
}

impl Headers {
    /// Source and destination address bytes of the IP header in `b`.
    pub fn addrs<'a>(&self, b: &'a [u8]) -> (&'a [u8], &'a [u8]) {
        match self.l3 {
            L3::Ipv4 => (
                &b[self.l3_off + 12..self.l3_off + 16],
                &b[self.l3_off + 16..self.l3_off + 20],
            ),
            L3::Ipv6 => (
                &b[self.l3_off + 8..self.l3_off + 24],
                &b[self.l3_off + 24..self.l3_off + 40],
            ),
        }
    }

    pub fn proto(&self) -> u8 {
        match self.l4 {
            L4::Tcp => PROTO_TCP,
            L4::Udp => PROTO_UDP,
        }
    }

    /// Offset of the L4 checksum field.
    pub fn l4_csum_off(&self) -> usize {
        match self.l4 {
            L4::Tcp => self.l4_off + 16,
            L4::Udp => self.l4_off + 6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp4(ihl_words: u8, doff_words: u8) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 60 + 60];
        put16(&mut f, 12, ETHERTYPE_IPV4);
        f[14] = 0x40 | ihl_words;
        put16(&mut f, 16, 100);
        f[14 + 9] = PROTO_TCP;
        let l4 = 14 + usize::from(ihl_words) * 4;
        f[l4 + 12] = doff_words << 4;
        f
    }

    #[test]
    fn ipv4_with_options_and_tcp_options() {
        let h = parse(&tcp4(6, 8)).unwrap();
        assert_eq!((h.l4_off, h.hdr_len, h.ip_len), (38, 70, 100));
    }

    #[test]
    fn lies_are_caught() {
        assert_eq!(parse(&tcp4(4, 5)), Err(ParseError::BadIp));
        assert_eq!(parse(&tcp4(5, 4)), Err(ParseError::BadTcpOffset));
        let f = tcp4(15, 15);
        assert_eq!(parse(&f[..14 + 60 + 40]), Err(ParseError::Truncated));
        assert_eq!(parse(&f[..10]), Err(ParseError::Truncated));
        let mut f = tcp4(5, 5);
        f[14 + 9] = 1;
        assert_eq!(parse(&f), Err(ParseError::Protocol(1)));
        put16(&mut f, 12, 0x0806);
        assert_eq!(parse(&f), Err(ParseError::EtherType(0x0806)));
    }

    #[test]
    fn vlan_ipv6_udp() {
        let mut f = vec![0u8; 18 + 40 + 8];
        put16(&mut f, 12, ETHERTYPE_VLAN);
        put16(&mut f, 16, ETHERTYPE_IPV6);
        f[18] = 0x60;
        put16(&mut f, 18 + 4, 8);
        f[18 + 6] = PROTO_UDP;
        let h = parse(&f).unwrap();
        assert_eq!(
            (h.l3, h.l4, h.l3_off, h.hdr_len, h.ip_len),
            (L3::Ipv6, L4::Udp, 18, 66, 48)
        );
    }
}
