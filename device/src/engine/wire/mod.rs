//! Header parsing and typed header views for the offload engine: Ethernet
//! (one optional 802.1Q tag), IPv4 with options, IPv6 without extension
//! headers, TCP with options, UDP.
//!
//! Two layers, in the style of smoltcp's `wire` module:
//! - the views ([`EthernetFrame`], [`Ipv4Packet`], [`Ipv6Packet`],
//!   [`TcpSegment`], [`UdpDatagram`], and [`IpPacket`] over either IP
//!   version), one file per protocol: a buffer (`T: AsRef<[u8]>`) read
//!   through named getters, and rewritten through setters when
//!   `T: AsMut<[u8]>`. The field offsets of each header are written once,
//!   in its file, and nowhere else in the device;
//! - [`parse`], the entry point: checks a frame's headers once, with the
//!   views' `new_checked`, and returns their offsets as [`Headers`], from
//!   which the rest of the engine makes unchecked views
//!   ([`Headers::ip`], [`Headers::tcp`], ...) without checking again.
//!
//! Every length is checked against the bytes actually present before it is
//! used; a view made without the check (`new_unchecked`) panics on a buffer
//! too short for the field asked for, never reads past it.
//!
//! Not etherparse on the hot path: its slices (`Ipv4HeaderSlice` and so on)
//! check the whole header again each time one is made, and the engine makes
//! a view per segment; its owned headers copy. etherparse is kept for the
//! tests, as an independent reading of the same bytes.

// The views' scaffolding, written once: `view!` declares a view type, and
// `fields!` its plain big-endian field accessors from a table. They come
// before the protocol modules, which use them.

/// Declares a header view `$name<T>` over a buffer `T`: the struct,
/// `new_unchecked` and `into_inner`; with `check_len: MIN`, a `check_len`
/// that asks for `MIN` bytes; with `options after FIXED`, `header` and
/// `options` for a header of `self.header_len()` bytes whose options start
/// at `FIXED`. `new_checked`, and whatever has logic, is written by hand.
macro_rules! view {
    (
        $(#[$doc:meta])*
        pub struct $name:ident;
        $( $(#[$check_doc:meta])* check_len: $min:expr; )?
        $( options after $fixed:expr; )?
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name<T> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> $name<T> {
            /// A view without a check: getters panic on a buffer too short.
            #[inline]
            pub const fn new_unchecked(buffer: T) -> Self {
                Self { buffer }
            }

            #[inline]
            pub fn into_inner(self) -> T {
                self.buffer
            }

            $(
                $(#[$check_doc])*
                #[inline]
                pub fn check_len(&self) -> Result<(), ParseError> {
                    if self.buffer.as_ref().len() < $min {
                        Err(ParseError::Truncated)
                    } else {
                        Ok(())
                    }
                }
            )?

            $(
                /// The whole header, options included.
                #[inline]
                pub fn header(&self) -> &[u8] {
                    &self.buffer.as_ref()[..self.header_len()]
                }

                #[inline]
                pub fn options(&self) -> &[u8] {
                    &self.buffer.as_ref()[$fixed..self.header_len()]
                }
            )?
        }
    };
}

/// Declares the plain accessors of view `$view` from a table of its fields:
/// under `get`, `name: Type @ FIELD` reads `field::FIELD` (of the calling
/// module) as a `Type` (`u8`, `u16`, `u32` or `[u8; N]`: see [`Field`]);
/// under `set`, `set_name: Type @ FIELD` writes it. Accessors whose value is part of a byte, or has any logic,
/// are written by hand.
macro_rules! fields {
    (
        $view:ident;
        get {
            $( $(#[$get_doc:meta])* $get:ident: $get_ty:tt @ $get_at:ident, )*
        }
        set {
            $( $(#[$set_doc:meta])* $set:ident: $set_ty:tt @ $set_at:ident, )*
        }
    ) => {
        impl<T: AsRef<[u8]>> $view<T> {
            $(
                $(#[$get_doc])*
                #[inline]
                pub fn $get(&self) -> $get_ty {
                    <$get_ty as $crate::engine::wire::Field>::get(
                        self.buffer.as_ref(),
                        field::$get_at,
                    )
                }
            )*
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $view<T> {
            $(
                $(#[$set_doc])*
                #[inline]
                pub fn $set(&mut self, value: $set_ty) {
                    <$set_ty as $crate::engine::wire::Field>::set(
                        self.buffer.as_mut(),
                        field::$set_at,
                        value,
                    );
                }
            )*
        }
    };
}

mod ethernet;
mod ip;
mod ipv4;
mod ipv6;
mod tcp;
mod udp;

pub use ethernet::{EthernetFrame, HEADER_LEN as ETH_HLEN, VLAN_HEADER_LEN};
pub use ip::IpPacket;
pub use ipv4::Ipv4Packet;
pub use ipv6::Ipv6Packet;
pub use tcp::TcpSegment;
pub use udp::UdpDatagram;

use std::ops::Range;

/// The fixed header lengths, and where the L4 checksum fields are.
pub mod len {
    pub use super::ipv4::HEADER_LEN as IPV4;
    pub use super::ipv6::HEADER_LEN as IPV6;
    pub use super::tcp::HEADER_LEN as TCP;
    pub use super::tcp::MAX_HEADER_LEN as TCP_MAX;
    pub use super::udp::HEADER_LEN as UDP;
}

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

// Big-endian field access for the views (the only readers and writers of
// header bytes). Out-of-bounds is a panic, as for any slice index.

#[inline]
fn get16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
fn get32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
fn set16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline]
fn set32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// A header field's value as the `fields!` accessors read and write it,
/// big-endian: a `u8`, `u16` or `u32` at a byte offset, or the bytes of a
/// `[u8; N]` (an address) over a byte range.
trait Field: Sized {
    /// Where the field is: its offset, or its range for `[u8; N]`.
    type At;
    fn get(b: &[u8], at: Self::At) -> Self;
    fn set(b: &mut [u8], at: Self::At, v: Self);
}

impl Field for u8 {
    type At = usize;
    #[inline]
    fn get(b: &[u8], at: usize) -> u8 {
        b[at]
    }
    #[inline]
    fn set(b: &mut [u8], at: usize, v: u8) {
        b[at] = v;
    }
}

impl Field for u16 {
    type At = usize;
    #[inline]
    fn get(b: &[u8], at: usize) -> u16 {
        get16(b, at)
    }
    #[inline]
    fn set(b: &mut [u8], at: usize, v: u16) {
        set16(b, at, v);
    }
}

impl Field for u32 {
    type At = usize;
    #[inline]
    fn get(b: &[u8], at: usize) -> u32 {
        get32(b, at)
    }
    #[inline]
    fn set(b: &mut [u8], at: usize, v: u32) {
        set32(b, at, v);
    }
}

impl<const N: usize> Field for [u8; N] {
    type At = Range<usize>;
    #[inline]
    fn get(b: &[u8], at: Range<usize>) -> [u8; N] {
        let mut a = [0; N];
        a.copy_from_slice(&b[at]);
        a
    }
    #[inline]
    fn set(b: &mut [u8], at: Range<usize>, v: [u8; N]) {
        b[at].copy_from_slice(&v);
    }
}

/// Parses the headers at the start of `b` (which may hold only the first
/// bytes of the frame). Fails unless the whole L4 header is inside `b`.
pub fn parse(b: &[u8]) -> Result<Headers, ParseError> {
    let eth = EthernetFrame::new_checked(b)?;
    let l3_off = eth.header_len();
    // Each view is made over its predecessor's payload, which the
    // predecessor's check has shown to be there.
    let (l3, proto, l3_hdr, ip_len, is_fragment, l4_bytes) = match eth.payload_ethertype() {
        ETHERTYPE_IPV4 => {
            let ip = Ipv4Packet::new_checked(eth.payload())?;
            (
                L3::Ipv4,
                ip.protocol(),
                ip.header_len(),
                usize::from(ip.total_len()),
                ip.is_fragment(),
                ip.into_payload(),
            )
        }
        ETHERTYPE_IPV6 => {
            let ip = Ipv6Packet::new_checked(eth.payload())?;
            (
                L3::Ipv6,
                ip.next_header(),
                len::IPV6,
                len::IPV6 + usize::from(ip.payload_len()),
                false,
                ip.into_payload(),
            )
        }
        t => return Err(ParseError::EtherType(t)),
    };
    let l4_off = l3_off + l3_hdr;
    let (l4, l4_len) = match proto {
        PROTO_TCP => (L4::Tcp, TcpSegment::new_checked(l4_bytes)?.header_len()),
        PROTO_UDP => {
            UdpDatagram::new_checked(l4_bytes)?;
            (L4::Udp, len::UDP)
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

/// Views of a parsed frame's headers. `frame` is the frame these headers
/// were parsed from (or a copy of its first `hdr_len` bytes or more): the
/// views are made unchecked, [`parse`] having checked them.
impl Headers {
    /// The Ethernet header (with its 802.1Q tag, if any).
    #[inline]
    pub fn ethernet<'a>(&self, frame: &'a [u8]) -> EthernetFrame<&'a [u8]> {
        EthernetFrame::new_unchecked(frame)
    }

    /// The IP header and what follows it.
    #[inline]
    pub fn ip<'a>(&self, frame: &'a [u8]) -> IpPacket<&'a [u8]> {
        IpPacket::new_unchecked(self.l3, &frame[self.l3_off..])
    }

    #[inline]
    pub fn ip_mut<'a>(&self, frame: &'a mut [u8]) -> IpPacket<&'a mut [u8]> {
        IpPacket::new_unchecked(self.l3, &mut frame[self.l3_off..])
    }

    // tcp/tcp_mut and udp/udp_mut are alike by shape (a view over the
    // shared or the mutable frame, one line each), kept as four plain
    // methods rather than a macro: their checks are in `l4_off`.

    /// The TCP header and what follows it; only for `l4 == L4::Tcp`.
    #[inline]
    pub fn tcp<'a>(&self, frame: &'a [u8]) -> TcpSegment<&'a [u8]> {
        TcpSegment::new_unchecked(&frame[self.l4_off(L4::Tcp)..])
    }

    #[inline]
    pub fn tcp_mut<'a>(&self, frame: &'a mut [u8]) -> TcpSegment<&'a mut [u8]> {
        TcpSegment::new_unchecked(&mut frame[self.l4_off(L4::Tcp)..])
    }

    /// The UDP header and what follows it; only for `l4 == L4::Udp`.
    #[inline]
    pub fn udp<'a>(&self, frame: &'a [u8]) -> UdpDatagram<&'a [u8]> {
        UdpDatagram::new_unchecked(&frame[self.l4_off(L4::Udp)..])
    }

    #[inline]
    pub fn udp_mut<'a>(&self, frame: &'a mut [u8]) -> UdpDatagram<&'a mut [u8]> {
        UdpDatagram::new_unchecked(&mut frame[self.l4_off(L4::Udp)..])
    }

    /// `l4_off`, for a view of protocol `l4` (which must be this frame's).
    #[inline]
    fn l4_off(&self, l4: L4) -> usize {
        debug_assert_eq!(self.l4, l4);
        self.l4_off
    }

    #[inline]
    pub fn proto(&self) -> u8 {
        match self.l4 {
            L4::Tcp => PROTO_TCP,
            L4::Udp => PROTO_UDP,
        }
    }

    /// Offset of the L4 checksum field from the start of the L4 header (a
    /// virtio-net `csum_offset`).
    #[inline]
    pub fn l4_csum_offset(&self) -> usize {
        match self.l4 {
            L4::Tcp => tcp::CHECKSUM_OFFSET,
            L4::Udp => udp::CHECKSUM_OFFSET,
        }
    }

    /// Writes the L4 checksum into the headers in `frame`: over the
    /// pseudo-header for an L4 length of `l4_len`, the L4 header, and a
    /// payload (not necessarily in `frame`) whose partial sum is
    /// `payload_sum`.
    #[inline]
    pub fn fill_l4_checksum(&self, frame: &mut [u8], l4_len: usize, payload_sum: u64) {
        let pseudo = self.ip(frame).pseudo_header_sum(self.proto(), l4_len);
        match self.l4 {
            L4::Tcp => self.tcp_mut(frame).fill_checksum(pseudo, payload_sum),
            L4::Udp => self.udp_mut(frame).fill_checksum(pseudo, payload_sum),
        }
    }
}

/// What the view tests share: which bytes a setter changed.
#[cfg(test)]
pub(crate) mod testutil {
    /// The (index, new value) of every byte that differs.
    pub fn changed(before: &[u8], after: &[u8]) -> Vec<(usize, u8)> {
        assert_eq!(before.len(), after.len());
        before
            .iter()
            .zip(after)
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .map(|(i, (_, b))| (i, *b))
            .collect()
    }

    /// The bytes that `f` changes in a copy of `orig` (see [`changed`]).
    pub fn changed_by(orig: &[u8], f: impl FnOnce(&mut [u8])) -> Vec<(usize, u8)> {
        let mut v = orig.to_vec();
        f(&mut v);
        changed(orig, &v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp4(ihl_words: u8, doff_words: u8) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 60 + 60];
        set16(&mut f, 12, ETHERTYPE_IPV4);
        f[14] = 0x40 | ihl_words;
        set16(&mut f, 16, 100);
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
        set16(&mut f, 12, 0x0806);
        assert_eq!(parse(&f), Err(ParseError::EtherType(0x0806)));
    }

    #[test]
    fn vlan_ipv6_udp() {
        let mut f = vec![0u8; 18 + 40 + 8];
        set16(&mut f, 12, ETHERTYPE_VLAN);
        set16(&mut f, 16, ETHERTYPE_IPV6);
        f[18] = 0x60;
        set16(&mut f, 18 + 4, 8);
        f[18 + 6] = PROTO_UDP;
        let h = parse(&f).unwrap();
        assert_eq!(
            (h.l3, h.l4, h.l3_off, h.hdr_len, h.ip_len),
            (L3::Ipv6, L4::Udp, 18, 66, 48)
        );
    }
}
