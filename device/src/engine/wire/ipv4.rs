//! IPv4 header (RFC 791 section 3.1):
//!
//! ```text
//!  0       4       8               16      19                      31
//! |Version|  IHL  |  DSCP   |ECN  |          Total Length         |
//! |         Identification        |Flags|     Fragment Offset     |
//! |  Time to Live |    Protocol   |         Header Checksum       |
//! |                       Source Address                          |
//! |                    Destination Address                        |
//! |                    Options (IHL > 5)                          |
//! ```

use super::{get16, set16, ParseError};
use crate::engine::csum;

pub(super) mod field {
    use std::ops::Range;

    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLG_OFF: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC_ADDR: Range<usize> = 12..16;
    pub const DST_ADDR: Range<usize> = 16..20;
}

/// The header without options.
pub const HEADER_LEN: usize = 20;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

view! {
    /// A view of an IPv4 packet: the header, then whatever of the payload
    /// the buffer holds.
    pub struct Ipv4Packet;
    /// Whether the fixed header (every field but the options) is present;
    /// nothing about the values.
    check_len: HEADER_LEN;
    options after HEADER_LEN;
}

fields! {
    Ipv4Packet;
    get {
        total_len: u16 @ LENGTH,
        ident: u16 @ IDENT,
        ttl: u8 @ TTL,
        /// The protocol of the payload (6 TCP, 17 UDP).
        protocol: u8 @ PROTOCOL,
        checksum: u16 @ CHECKSUM,
        src_addr: [u8; 4] @ SRC_ADDR,
        dst_addr: [u8; 4] @ DST_ADDR,
    }
    set {
        set_total_len: u16 @ LENGTH,
        set_ident: u16 @ IDENT,
        set_checksum: u16 @ CHECKSUM,
    }
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// A view of a well-formed header: the fixed header is present
    /// (`Truncated`), the version is 4 and the IHL at least 5 (`BadIp`),
    /// the whole header with its options is present (`Truncated`), and
    /// the total length covers at least the header (`BadIp`). The payload
    /// need not be in `buffer`.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        let ihl = p.header_len();
        if p.version() != 4 || ihl < HEADER_LEN {
            return Err(ParseError::BadIp);
        }
        if p.buffer.as_ref().len() < ihl {
            return Err(ParseError::Truncated);
        }
        if usize::from(p.total_len()) < ihl {
            return Err(ParseError::BadIp);
        }
        Ok(p)
    }

    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// The header length in bytes (IHL * 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    #[inline]
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    #[inline]
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    #[inline]
    fn flg_off(&self) -> u16 {
        get16(self.buffer.as_ref(), field::FLG_OFF)
    }

    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.flg_off() & FLAG_DF != 0
    }

    #[inline]
    pub fn more_frags(&self) -> bool {
        self.flg_off() & FLAG_MF != 0
    }

    /// The fragment offset in bytes (the field counts 8-byte units).
    #[inline]
    pub fn frag_offset(&self) -> usize {
        usize::from(self.flg_off() & OFFSET_MASK) * 8
    }

    /// MF set or a non-zero fragment offset: a fragment, not a whole packet.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flg_off() & (FLAG_MF | OFFSET_MASK) != 0
    }

    /// The source and destination addresses, borrowed from the view.
    #[inline]
    pub(super) fn addr_bytes(&self) -> (&[u8], &[u8]) {
        let b = self.buffer.as_ref();
        (&b[field::SRC_ADDR], &b[field::DST_ADDR])
    }

    /// What follows the header (as much of the payload as the buffer has).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// Whether the header checksum is right.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        csum::fold(csum::partial(self.header())) == 0xffff
    }
}

impl<'a> Ipv4Packet<&'a [u8]> {
    /// [`Ipv4Packet::payload`], borrowed for as long as the buffer.
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        let len = self.header_len();
        &self.buffer[len..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Writes the flags and fragment offset of a fragment: DF clear, MF as
    /// given, the offset in bytes (a multiple of 8).
    #[inline]
    pub fn set_fragment(&mut self, more_frags: bool, offset: usize) {
        debug_assert!(offset.is_multiple_of(8) && offset / 8 <= usize::from(OFFSET_MASK));
        let mf = if more_frags { FLAG_MF } else { 0 };
        set16(
            self.buffer.as_mut(),
            field::FLG_OFF,
            mf | (offset / 8) as u16,
        );
    }

    /// Computes and writes the header checksum.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = csum::finish(csum::partial(self.header()));
        self.set_checksum(u16::from_be_bytes(c));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::wire::testutil::{changed, changed_by};

    /// A UDP packet's header, 192.168.0.1 -> 192.168.0.199: total length
    /// 115, ident 0, DF, TTL 64, checksum 0xb861 (valid).
    const PLAIN: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, // version 4, IHL 5, DSCP/ECN 0, total length 115
        0x00, 0x00, 0x40, 0x00, // ident 0, flags DF, offset 0
        0x40, 0x11, 0xb8, 0x61, // TTL 64, UDP, checksum
        0xc0, 0xa8, 0x00, 0x01, // 192.168.0.1
        0xc0, 0xa8, 0x00, 0xc7, // 192.168.0.199
    ];

    /// A TCP fragment with a Router Alert option (RFC 2113), then 2 bytes
    /// of payload: IHL 6, DSCP 46 (EF), ECN 0, total length 1500, ident
    /// 0x1c46, MF, offset 185 * 8, TTL 63, 10.0.0.1 -> 10.0.0.2, checksum
    /// 0x8f5e (valid).
    const WITH_OPTION: [u8; 26] = [
        0x46, 0xb8, 0x05, 0xdc, // version 4, IHL 6, DSCP 46 ECN 0, length 1500
        0x1c, 0x46, 0x20, 0xb9, // ident, flags MF, offset 185
        0x3f, 0x06, 0x8f, 0x5e, // TTL 63, TCP, checksum
        0x0a, 0x00, 0x00, 0x01, // 10.0.0.1
        0x0a, 0x00, 0x00, 0x02, // 10.0.0.2
        0x94, 0x04, 0x00, 0x00, // Router Alert
        0xaa, 0xbb, // payload
    ];

    #[test]
    fn golden_bytes() {
        let p = Ipv4Packet::new_checked(&PLAIN[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!((p.dscp(), p.ecn()), (0, 0));
        assert_eq!(p.total_len(), 115);
        assert_eq!(p.ident(), 0);
        assert!(p.dont_frag() && !p.more_frags() && !p.is_fragment());
        assert_eq!(p.frag_offset(), 0);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), 17);
        assert_eq!(p.checksum(), 0xb861);
        assert_eq!(p.src_addr(), [192, 168, 0, 1]);
        assert_eq!(p.dst_addr(), [192, 168, 0, 199]);
        assert_eq!(p.header(), &PLAIN[..]);
        assert!(p.options().is_empty());
        assert!(p.verify_checksum());

        // The second packet's fields are asserted as the first's, one line
        // a field (not from a table), so that a failure names the field.
        let q = Ipv4Packet::new_checked(&WITH_OPTION[..]).unwrap();
        assert_eq!(q.header_len(), 24);
        assert_eq!((q.dscp(), q.ecn()), (46, 0));
        assert_eq!(q.total_len(), 1500);
        assert_eq!(q.ident(), 0x1c46);
        assert!(!q.dont_frag() && q.more_frags() && q.is_fragment());
        assert_eq!(q.frag_offset(), 1480);
        assert_eq!(q.ttl(), 63);
        assert_eq!(q.protocol(), 6);
        assert_eq!(q.checksum(), 0x8f5e);
        assert_eq!(q.src_addr(), [10, 0, 0, 1]);
        assert_eq!(q.dst_addr(), [10, 0, 0, 2]);
        assert_eq!(q.header(), &WITH_OPTION[..24]);
        assert_eq!(q.options(), &[0x94, 0x04, 0x00, 0x00]);
        assert!(q.verify_checksum());
        assert_eq!(q.payload(), &[0xaa, 0xbb]);
        assert_eq!(q.into_payload(), &[0xaa, 0xbb]);
        assert!(p.payload().is_empty());

        // etherparse reads the same fields.
        for (b, p) in [(&PLAIN[..], p), (&WITH_OPTION[..], q)] {
            let e = etherparse::Ipv4HeaderSlice::from_slice(b).unwrap();
            assert_eq!(usize::from(e.ihl()) * 4, p.header_len());
            assert_eq!(e.dcp().value(), p.dscp());
            assert_eq!(e.ecn().value(), p.ecn());
            assert_eq!(e.total_len(), p.total_len());
            assert_eq!(e.identification(), p.ident());
            assert_eq!(e.dont_fragment(), p.dont_frag());
            assert_eq!(e.more_fragments(), p.more_frags());
            assert_eq!(
                usize::from(e.fragments_offset().value()) * 8,
                p.frag_offset()
            );
            assert_eq!(e.is_fragmenting_payload(), p.is_fragment());
            assert_eq!(e.ttl(), p.ttl());
            assert_eq!(e.protocol().0, p.protocol());
            assert_eq!(e.header_checksum(), p.checksum());
            assert_eq!(e.to_header().calc_header_checksum(), p.checksum());
            assert_eq!(e.source(), p.src_addr());
            assert_eq!(e.destination(), p.dst_addr());
            assert_eq!(e.options(), p.options());
        }
    }

    #[test]
    fn checks() {
        let mut b = PLAIN;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..19]),
            Err(ParseError::Truncated)
        );
        b[0] = 0x65; // version 6
        assert_eq!(Ipv4Packet::new_checked(&b[..]), Err(ParseError::BadIp));
        b[0] = 0x44; // IHL 4
        assert_eq!(Ipv4Packet::new_checked(&b[..]), Err(ParseError::BadIp));
        b[0] = 0x46; // IHL 6, options not there
        assert_eq!(Ipv4Packet::new_checked(&b[..]), Err(ParseError::Truncated));
        assert!(Ipv4Packet::new_checked(&WITH_OPTION[..24]).is_ok());
        let mut c = PLAIN;
        c[3] = 19; // total length below the header
        assert_eq!(Ipv4Packet::new_checked(&c[..]), Err(ParseError::BadIp));
        // check_len looks at the length alone.
        assert!(Ipv4Packet::new_unchecked(&c[..]).check_len().is_ok());
        assert!(Ipv4Packet::new_unchecked(&c[..19]).check_len().is_err());
    }

    #[test]
    fn setters_change_only_their_bytes() {
        let set = |f: &dyn Fn(&mut Ipv4Packet<&mut [u8]>)| {
            changed_by(&WITH_OPTION, |b| f(&mut Ipv4Packet::new_unchecked(b)))
        };
        assert_eq!(set(&|p| p.set_total_len(0x05dd)), [(3, 0xdd)]);
        assert_eq!(set(&|p| p.set_total_len(0x0100)), [(2, 0x01), (3, 0x00)]);
        assert_eq!(set(&|p| p.set_ident(0x1d47)), [(4, 0x1d), (5, 0x47)]);
        // The last fragment at 2960: MF clear, offset 370 = 0x172.
        assert_eq!(
            set(&|p| p.set_fragment(false, 2960)),
            [(6, 0x01), (7, 0x72)]
        );
        assert_eq!(set(&|p| p.set_fragment(true, 0)), [(7, 0x00)]);
        assert_eq!(set(&|p| p.set_checksum(0x1234)), [(10, 0x12), (11, 0x34)]);
        // The right checksum is already there: nothing changes.
        assert_eq!(set(&|p| p.fill_checksum()), []);
        // After a change, fill_checksum writes what etherparse computes.
        let mut v = WITH_OPTION.to_vec();
        let mut p = Ipv4Packet::new_unchecked(&mut v[..]);
        p.set_ident(7);
        p.fill_checksum();
        let want = etherparse::Ipv4HeaderSlice::from_slice(&v)
            .unwrap()
            .to_header()
            .calc_header_checksum();
        let p = Ipv4Packet::new_unchecked(&v[..]);
        assert_eq!(p.checksum(), want);
        assert!(p.verify_checksum());
        assert_eq!(
            changed(&WITH_OPTION, &v)
                .iter()
                .map(|c| c.0)
                .collect::<Vec<_>>(),
            [4, 5, 10, 11]
        );
    }
}
