//! TCP header (RFC 9293 section 3.1):
//!
//! ```text
//!  0               8               16                              31
//! |          Source Port          |       Destination Port        |
//! |                        Sequence Number                        |
//! |                    Acknowledgment Number                      |
//! | DOffset| Rsrvd |C|E|U|A|P|R|S|F|            Window             |
//! |           Checksum            |         Urgent Pointer        |
//! |                    Options (DOffset > 5)                      |
//! ```

use super::ParseError;
use crate::engine::csum;

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const SEQ_NUM: usize = 4;
    pub const ACK_NUM: usize = 8;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: usize = 14;
    pub const CHECKSUM: usize = 16;
    pub const URGENT: usize = 18;
}

/// The header without options.
pub const HEADER_LEN: usize = 20;
/// The header with the most options (data offset 15).
pub const MAX_HEADER_LEN: usize = 60;

/// Where the checksum field is, from the start of the header.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM;

view! {
    /// A view of a TCP segment: the header, then whatever of the payload
    /// the buffer holds.
    pub struct TcpSegment;
    /// Whether the fixed header is present; nothing about the values.
    check_len: HEADER_LEN;
    options after HEADER_LEN;
}

fields! {
    TcpSegment;
    get {
        src_port: u16 @ SRC_PORT,
        dst_port: u16 @ DST_PORT,
        seq_number: u32 @ SEQ_NUM,
        ack_number: u32 @ ACK_NUM,
        /// The flags byte: CWR ECE URG ACK PSH RST SYN FIN (`wire::TCP_*`).
        flags: u8 @ FLAGS,
        window_len: u16 @ WINDOW,
        checksum: u16 @ CHECKSUM,
        urgent_at: u16 @ URGENT,
    }
    set {
        set_seq_number: u32 @ SEQ_NUM,
        set_flags: u8 @ FLAGS,
        set_checksum: u16 @ CHECKSUM,
    }
}

impl<T: AsRef<[u8]>> TcpSegment<T> {
    // Alike in shape to Ipv4Packet::new_checked (the fixed header, then
    // the length field's own checks); the checks differ.

    /// A view of a well-formed header: the fixed header is present
    /// (`Truncated`), the data offset is at least 5 (`BadTcpOffset`), and
    /// the whole header with its options is present (`Truncated`).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let s = Self::new_unchecked(buffer);
        s.check_len()?;
        let len = s.header_len();
        if len < HEADER_LEN {
            return Err(ParseError::BadTcpOffset);
        }
        if s.buffer.as_ref().len() < len {
            return Err(ParseError::Truncated);
        }
        Ok(s)
    }

    /// The header length in bytes (data offset * 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpSegment<T> {
    /// Computes and writes the checksum over the pseudo-header (partial sum
    /// `pseudo`, see [`super::IpPacket::pseudo_header_sum`]), this header,
    /// and a payload given by its partial sum: the payload need not follow
    /// the header in this buffer.
    #[inline]
    pub fn fill_checksum(&mut self, pseudo: u64, payload_sum: u64) {
        self.set_checksum(0);
        let sum = pseudo + csum::partial(self.header());
        let sum = csum::combine(sum, payload_sum, self.header_len());
        self.set_checksum(u16::from_be_bytes(csum::finish(sum)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::wire::testutil::{changed, changed_by};
    use crate::engine::wire::{IpPacket, Ipv4Packet, L3, TCP_ACK, TCP_PSH};

    /// A header with the timestamp option: 40000 -> 5201, seq 0x01020304,
    /// ack 0xa0b0c0d0, data offset 8, PSH|ACK, window 501, checksum
    /// 0xbeef, urgent pointer 0, then NOP NOP TS(0x1234, 0x5678).
    const HDR: [u8; 32] = [
        0x9c, 0x40, 0x14, 0x51, // ports 40000 -> 5201
        0x01, 0x02, 0x03, 0x04, // seq
        0xa0, 0xb0, 0xc0, 0xd0, // ack
        0x80, 0x18, 0x01, 0xf5, // data offset 8, PSH|ACK, window 501
        0xbe, 0xef, 0x00, 0x00, // checksum, urgent pointer
        0x01, 0x01, 0x08, 0x0a, // NOP NOP TS len 10
        0x00, 0x00, 0x12, 0x34, // TSval
        0x00, 0x00, 0x56, 0x78, // TSecr
    ];

    #[test]
    fn golden_bytes() {
        let s = TcpSegment::new_checked(&HDR[..]).unwrap();
        assert_eq!(s.src_port(), 40000);
        assert_eq!(s.dst_port(), 5201);
        assert_eq!(s.seq_number(), 0x0102_0304);
        assert_eq!(s.ack_number(), 0xa0b0_c0d0);
        assert_eq!(s.header_len(), 32);
        assert_eq!(s.flags(), TCP_PSH | TCP_ACK);
        assert_eq!(s.window_len(), 501);
        assert_eq!(s.checksum(), 0xbeef);
        assert_eq!(s.urgent_at(), 0);
        assert_eq!(s.header(), &HDR[..]);
        assert_eq!(s.options(), &HDR[20..]);

        let e = etherparse::TcpHeaderSlice::from_slice(&HDR).unwrap();
        assert_eq!(e.source_port(), s.src_port());
        assert_eq!(e.destination_port(), s.dst_port());
        assert_eq!(e.sequence_number(), s.seq_number());
        assert_eq!(e.acknowledgment_number(), s.ack_number());
        assert_eq!(usize::from(e.data_offset()) * 4, s.header_len());
        assert!(e.psh() && e.ack() && !e.fin() && !e.syn() && !e.rst() && !e.urg());
        assert_eq!(e.window_size(), s.window_len());
        assert_eq!(e.checksum(), s.checksum());
        assert_eq!(e.urgent_pointer(), s.urgent_at());
        assert_eq!(e.options(), s.options());

        assert_eq!(
            TcpSegment::new_checked(&HDR[..19]),
            Err(ParseError::Truncated)
        );
        assert_eq!(
            TcpSegment::new_checked(&HDR[..31]),
            Err(ParseError::Truncated)
        );
        let mut b = HDR;
        b[12] = 0x40;
        assert_eq!(
            TcpSegment::new_checked(&b[..]),
            Err(ParseError::BadTcpOffset)
        );
    }

    #[test]
    fn setters_change_only_their_bytes() {
        let set = |f: &dyn Fn(&mut TcpSegment<&mut [u8]>)| {
            changed_by(&HDR, |b| f(&mut TcpSegment::new_unchecked(b)))
        };
        assert_eq!(set(&|s| s.set_seq_number(0x0102_0305)), [(7, 0x05)]);
        assert_eq!(
            set(&|s| s.set_seq_number(0xf0e0_d0c0)),
            [(4, 0xf0), (5, 0xe0), (6, 0xd0), (7, 0xc0)]
        );
        assert_eq!(set(&|s| s.set_flags(TCP_ACK)), [(13, 0x10)]);
        assert_eq!(set(&|s| s.set_checksum(0xbe00)), [(17, 0x00)]);
    }

    /// fill_checksum over the header and a payload given by its sum, with
    /// the pseudo-header of an IPv4 packet, as etherparse computes it.
    #[test]
    fn fill_checksum_matches_etherparse() {
        let ip: [u8; 20] = [
            0x45, 0, 0, 72, 0, 0, 0x40, 0, 64, 6, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2,
        ];
        let payload: Vec<u8> = (0..21u8).map(|i| i.wrapping_mul(37)).collect();
        let mut v = HDR.to_vec();
        let pseudo = IpPacket::new_unchecked(L3::Ipv4, &ip[..])
            .pseudo_header_sum(6, HDR.len() + payload.len());
        TcpSegment::new_unchecked(&mut v[..]).fill_checksum(pseudo, csum::partial(&payload));
        let e = etherparse::TcpHeaderSlice::from_slice(&HDR).unwrap();
        let ipe = etherparse::Ipv4HeaderSlice::from_slice(&ip).unwrap();
        let want = e.calc_checksum_ipv4(&ipe, &payload).unwrap();
        assert_eq!(TcpSegment::new_unchecked(&v[..]).checksum(), want);
        assert_eq!(
            changed(&HDR, &v).iter().map(|c| c.0).collect::<Vec<_>>(),
            [16, 17]
        );
        assert!(Ipv4Packet::new_checked(&ip[..]).is_ok());
    }
}
