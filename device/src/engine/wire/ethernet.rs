//! Ethernet II header (IEEE 802.3 clause 3.2.6), with at most one IEEE
//! 802.1Q tag between the source address and the ethertype:
//!
//! ```text
//!  0      6      12         14       16          18
//!  | dst  | src  | ethertype | payload ...
//!  | dst  | src  | 0x8100    | TCI    | ethertype | payload ...
//! ```

use super::{get16, set16, ParseError, ETHERTYPE_VLAN};

mod field {
    use std::ops::Range;

    pub const DST_ADDR: Range<usize> = 0..6;
    pub const SRC_ADDR: Range<usize> = 6..12;
    pub const ETHERTYPE: usize = 12;
    /// Inside the 802.1Q tag (when ETHERTYPE is 0x8100).
    pub const VLAN_TCI: usize = 14;
    pub const VLAN_ETHERTYPE: usize = 16;
}

/// An untagged header.
pub const HEADER_LEN: usize = 14;
/// A header with one 802.1Q tag.
pub const VLAN_HEADER_LEN: usize = 18;

view! {
    /// A view of an Ethernet frame.
    pub struct EthernetFrame;
}

fields! {
    EthernetFrame;
    get {
        dst_addr: [u8; 6] @ DST_ADDR,
        src_addr: [u8; 6] @ SRC_ADDR,
        /// The ethertype field after the addresses: 0x8100 for a tagged frame.
        ethertype: u16 @ ETHERTYPE,
    }
    set {
        set_dst_addr: [u8; 6] @ DST_ADDR,
        set_src_addr: [u8; 6] @ SRC_ADDR,
        /// Sets the ethertype field after the addresses (the tag's 0x8100 in
        /// a tagged frame: see [`EthernetFrame::set_payload_ethertype`]).
        set_ethertype: u16 @ ETHERTYPE,
    }
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// A view whose whole header, tag included, is in `buffer`.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let f = Self::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    /// Whether the whole header (with its tag, if any) is in the buffer.
    #[inline]
    pub fn check_len(&self) -> Result<(), ParseError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN || len < self.header_len() {
            Err(ParseError::Truncated)
        } else {
            Ok(())
        }
    }

    #[inline]
    pub fn is_vlan_tagged(&self) -> bool {
        self.ethertype() == ETHERTYPE_VLAN
    }

    /// The 802.1Q tag control information (PCP, DEI, VID), if tagged.
    #[inline]
    pub fn vlan_tci(&self) -> Option<u16> {
        self.is_vlan_tagged()
            .then(|| get16(self.buffer.as_ref(), field::VLAN_TCI))
    }

    /// The ethertype of the payload: after the tag in a tagged frame.
    #[inline]
    pub fn payload_ethertype(&self) -> u16 {
        let b = self.buffer.as_ref();
        match get16(b, field::ETHERTYPE) {
            ETHERTYPE_VLAN => get16(b, field::VLAN_ETHERTYPE),
            t => t,
        }
    }

    /// 14, or 18 with a tag.
    #[inline]
    pub fn header_len(&self) -> usize {
        if self.is_vlan_tagged() {
            VLAN_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    /// The header bytes: addresses, tag and ethertype.
    #[inline]
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.header_len()]
    }

    /// What follows the header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the ethertype of the payload: after the tag in a tagged frame.
    #[inline]
    pub fn set_payload_ethertype(&mut self, t: u16) {
        let at = if self.is_vlan_tagged() {
            field::VLAN_ETHERTYPE
        } else {
            field::ETHERTYPE
        };
        set16(self.buffer.as_mut(), at, t);
    }

    /// Sets the tag control information; only for a tagged frame.
    #[inline]
    pub fn set_vlan_tci(&mut self, tci: u16) {
        debug_assert!(self.is_vlan_tagged());
        set16(self.buffer.as_mut(), field::VLAN_TCI, tci);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::wire::testutil::changed_by;

    /// An untagged IPv4 frame's header, then two payload bytes.
    const UNTAGGED: [u8; 16] = [
        0x02, 0x00, 0x5e, 0x10, 0x20, 0x30, // dst 02:00:5e:10:20:30
        0x52, 0x54, 0x00, 0xab, 0xcd, 0xef, // src 52:54:00:ab:cd:ef
        0x08, 0x00, // IPv4
        0x45, 0x00,
    ];

    /// A tagged IPv6 frame's header: PCP 5, DEI 0, VID 0x123.
    const TAGGED: [u8; 20] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // dst broadcast
        0x52, 0x54, 0x00, 0x01, 0x02, 0x03, // src
        0x81, 0x00, // 802.1Q
        0xa1, 0x23, // TCI: PCP 5 (101), DEI 0, VID 0x123
        0x86, 0xdd, // IPv6
        0x60, 0x00,
    ];

    #[test]
    fn untagged_golden_bytes() {
        let f = EthernetFrame::new_checked(&UNTAGGED[..]).unwrap();
        assert_eq!(f.dst_addr(), [0x02, 0x00, 0x5e, 0x10, 0x20, 0x30]);
        assert_eq!(f.src_addr(), [0x52, 0x54, 0x00, 0xab, 0xcd, 0xef]);
        assert_eq!(f.ethertype(), 0x0800);
        assert!(!f.is_vlan_tagged());
        assert_eq!(f.vlan_tci(), None);
        assert_eq!(f.payload_ethertype(), 0x0800);
        assert_eq!(f.header_len(), 14);
        assert_eq!(f.header(), &UNTAGGED[..14]);
        assert_eq!(f.payload(), &[0x45, 0x00]);

        // etherparse reads the same header.
        let e = etherparse::Ethernet2HeaderSlice::from_slice(&UNTAGGED).unwrap();
        assert_eq!(e.destination(), f.dst_addr());
        assert_eq!(e.source(), f.src_addr());
        assert_eq!(e.ether_type().0, f.ethertype());

        assert_eq!(
            EthernetFrame::new_checked(&UNTAGGED[..13]),
            Err(ParseError::Truncated)
        );
        assert!(EthernetFrame::new_checked(&UNTAGGED[..14]).is_ok());
    }

    // The tagged test repeats the untagged one's shape, kept a separate
    // test so that a failure says which kind of frame it was.
    #[test]
    fn tagged_golden_bytes() {
        let f = EthernetFrame::new_checked(&TAGGED[..]).unwrap();
        assert_eq!(f.dst_addr(), [0xff; 6]);
        assert_eq!(f.src_addr(), [0x52, 0x54, 0x00, 0x01, 0x02, 0x03]);
        assert_eq!(f.ethertype(), 0x8100);
        assert!(f.is_vlan_tagged());
        assert_eq!(f.vlan_tci(), Some(0xa123));
        assert_eq!(f.payload_ethertype(), 0x86dd);
        assert_eq!(f.header_len(), 18);
        assert_eq!(f.header(), &TAGGED[..18]);
        assert_eq!(f.payload(), &[0x60, 0x00]);

        let e = etherparse::Ethernet2HeaderSlice::from_slice(&TAGGED).unwrap();
        assert_eq!(e.ether_type(), etherparse::EtherType::VLAN_TAGGED_FRAME);
        let v = etherparse::SingleVlanHeaderSlice::from_slice(&TAGGED[14..]).unwrap();
        assert_eq!(v.priority_code_point().value(), 5);
        assert!(!v.drop_eligible_indicator());
        assert_eq!(v.vlan_identifier().value(), 0x123);
        assert_eq!(v.ether_type().0, f.payload_ethertype());

        // A tag needs its 4 bytes.
        assert_eq!(
            EthernetFrame::new_checked(&TAGGED[..17]),
            Err(ParseError::Truncated)
        );
        assert!(EthernetFrame::new_checked(&TAGGED[..18]).is_ok());
    }

    #[test]
    fn setters_change_only_their_bytes() {
        let set = |b: &[u8], f: &dyn Fn(&mut EthernetFrame<&mut [u8]>)| {
            changed_by(b, |b| f(&mut EthernetFrame::new_unchecked(b)))
        };
        assert_eq!(
            set(&UNTAGGED, &|f| f
                .set_dst_addr([0x02, 0, 0x5e, 0x10, 0x20, 0x31])),
            [(5, 0x31)]
        );
        assert_eq!(
            set(&UNTAGGED, &|f| f
                .set_src_addr([0x53, 0x54, 0, 0xab, 0xcd, 0xee])),
            [(6, 0x53), (11, 0xee)]
        );
        assert_eq!(
            set(&UNTAGGED, &|f| f.set_ethertype(0x86dd)),
            [(12, 0x86), (13, 0xdd)]
        );
        assert_eq!(
            set(&UNTAGGED, &|f| f.set_payload_ethertype(0x0806)),
            [(13, 0x06)]
        );
        assert_eq!(
            set(&TAGGED, &|f| f.set_payload_ethertype(0x0800)),
            [(16, 0x08), (17, 0x00)]
        );
        assert_eq!(set(&TAGGED, &|f| f.set_vlan_tci(0xa124)), [(15, 0x24)]);
    }
}
