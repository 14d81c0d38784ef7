//! The virtio-net header that a vnet-header TAP puts before every frame
//! (`struct virtio_net_hdr`, linux/virtio_net.h, little-endian fields on
//! this little-endian-only device), and the checks a frame from the host
//! must pass before the device acts on its header. Pure code, no I/O.

use crate::engine::csum;
use crate::engine::wire::{self, L3, L4};

/// `struct virtio_net_hdr`: flags, gso_type, hdr_len, gso_size, csum_start,
/// csum_offset. The device sets this size with TUNSETVNETHDRSZ.
pub const LEN: usize = 10;

/// linux/virtio_net.h `VIRTIO_NET_HDR_F_*` (not in the libc crate).
pub mod flags {
    pub const NEEDS_CSUM: u8 = 1;
    pub const DATA_VALID: u8 = 2;
}

/// linux/virtio_net.h `VIRTIO_NET_HDR_GSO_*`.
pub mod gso {
    pub const NONE: u8 = 0;
    pub const TCPV4: u8 = 1;
    pub const UDP: u8 = 3;
    pub const TCPV6: u8 = 4;
    pub const UDP_L4: u8 = 5;
    pub const ECN: u8 = 0x80;
}

/// Largest frame a vnet header may describe: a 64 KiB IP packet plus its
/// Ethernet header.
pub const FRAME_MAX: usize = 65535 + wire::ETH_HLEN;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHdr {
    /// Reads the header at the start of `b`; `None` if `b` is shorter.
    pub fn parse(b: &[u8]) -> Option<Self> {
        let b: &[u8; LEN] = b.get(..LEN)?.try_into().ok()?;
        let le = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        Some(Self {
            flags: b[0],
            gso_type: b[1],
            hdr_len: le(2),
            gso_size: le(4),
            csum_start: le(6),
            csum_offset: le(8),
        })
    }

    pub fn to_bytes(self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
        b
    }

    /// A header for a frame whose checksums the device has written.
    pub const fn data_valid() -> Self {
        Self {
            flags: flags::DATA_VALID,
            gso_type: gso::NONE,
            hdr_len: 0,
            gso_size: 0,
            csum_start: 0,
            csum_offset: 0,
        }
    }
}

/// Why a frame from the host was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VnetError {
    #[error("read of {0} bytes is shorter than the virtio-net header")]
    Short(usize),
    #[error("frame of {0} bytes is over 64 KiB")]
    TooBig(usize),
    #[error("gso_type {0:#x} is not one the device offered")]
    GsoType(u8),
    #[error("GSO with the ECN bit, which the device did not offer")]
    Ecn,
    #[error("GSO frame with gso_size 0")]
    GsoSize,
    #[error("hdr_len {hdr_len} beyond the {len}-byte frame")]
    HdrLen { hdr_len: u16, len: usize },
    #[error("checksum at {start}+{offset} beyond the {len}-byte frame")]
    CsumRange { start: u16, offset: u16, len: usize },
    #[error("GSO frame whose headers do not match its gso_type")]
    Headers,
}

/// What a frame from a vnet-header backend needs before delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxAction {
    /// No claim: verify the checksums as for a frame without a header.
    Verify,
    /// DATA_VALID: the host vouches for the checksums.
    Valid,
    /// NEEDS_CSUM: write the checksum over `start..` at `start + offset`.
    Complete { start: usize, offset: usize },
    /// A TCP superpacket of `gso_size`-byte segments (NEEDS_CSUM implied
    /// for its L4 checksum, which the device never needs to verify).
    Tcp { gso_size: u16, v6: bool },
}

/// Checks the header of a host frame against the frame itself. `frame`
/// excludes the header. Everything a hostile header could claim is bounded
/// here, so the caller may index with the returned offsets.
pub fn classify(h: &VnetHdr, frame: &[u8]) -> Result<RxAction, VnetError> {
    let len = frame.len();
    if len > FRAME_MAX {
        return Err(VnetError::TooBig(len));
    }
    if usize::from(h.hdr_len) > len {
        return Err(VnetError::HdrLen {
            hdr_len: h.hdr_len,
            len,
        });
    }
    let needs = h.flags & flags::NEEDS_CSUM != 0;
    if needs {
        let (start, offset) = (usize::from(h.csum_start), usize::from(h.csum_offset));
        if start + offset + 2 > len {
            return Err(VnetError::CsumRange {
                start: h.csum_start,
                offset: h.csum_offset,
                len,
            });
        }
    }
    if h.gso_type == gso::NONE {
        return Ok(if needs {
            RxAction::Complete {
                start: usize::from(h.csum_start),
                offset: usize::from(h.csum_offset),
            }
        } else if h.flags & flags::DATA_VALID != 0 {
            RxAction::Valid
        } else {
            RxAction::Verify
        });
    }
    if h.gso_type & gso::ECN != 0 {
        return Err(VnetError::Ecn);
    }
    let v6 = match h.gso_type {
        gso::TCPV4 => false,
        gso::TCPV6 => true,
        t => return Err(VnetError::GsoType(t)),
    };
    if h.gso_size == 0 {
        return Err(VnetError::GsoSize);
    }
    let hd = wire::parse(frame).map_err(|_| VnetError::Headers)?;
    let l3_ok = hd.l3 == if v6 { L3::Ipv6 } else { L3::Ipv4 };
    if !l3_ok || hd.l4 != L4::Tcp || hd.is_fragment || hd.hdr_len >= len {
        return Err(VnetError::Headers);
    }
    Ok(RxAction::Tcp {
        gso_size: h.gso_size,
        v6,
    })
}

/// Completes a NEEDS_CSUM checksum in place: the field at `start + offset`
/// holds the pseudo-header sum; the checksum covers `start..`. The range
/// was bounded by [`classify`].
pub fn complete_csum(frame: &mut [u8], start: usize, offset: usize) {
    let at = start + offset;
    let c = csum::finish(csum::partial(&frame[start..]));
    frame[at..at + 2].copy_from_slice(&c);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(flags: u8, gso_type: u8, gso_size: u16) -> VnetHdr {
        VnetHdr {
            flags,
            gso_type,
            gso_size,
            ..Default::default()
        }
    }

    #[test]
    fn bytes_round_trip_little_endian() {
        let h = VnetHdr {
            flags: 1,
            gso_type: 4,
            hdr_len: 0x0102,
            gso_size: 1448,
            csum_start: 54,
            csum_offset: 16,
        };
        let b = h.to_bytes();
        assert_eq!(b, [1, 4, 2, 1, 0xa8, 5, 54, 0, 16, 0]);
        assert_eq!(VnetHdr::parse(&b), Some(h));
        assert_eq!(VnetHdr::parse(&b[..9]), None);
    }

    #[test]
    fn hostile_headers_are_refused() {
        let f = vec![0u8; 100];
        let bad = [
            (hdr(0, gso::TCPV4, 0), VnetError::GsoSize),
            (hdr(0, gso::UDP, 1400), VnetError::GsoType(gso::UDP)),
            (hdr(0, 9, 1400), VnetError::GsoType(9)),
            (hdr(0, gso::TCPV4 | gso::ECN, 1400), VnetError::Ecn),
            (hdr(0, gso::TCPV4, 1400), VnetError::Headers),
        ];
        for (h, e) in bad {
            assert_eq!(classify(&h, &f), Err(e), "{h:?}");
        }
        let h = VnetHdr {
            hdr_len: 101,
            ..Default::default()
        };
        assert!(matches!(classify(&h, &f), Err(VnetError::HdrLen { .. })));
        let h = VnetHdr {
            flags: flags::NEEDS_CSUM,
            csum_start: 90,
            csum_offset: 9,
            ..Default::default()
        };
        assert!(matches!(classify(&h, &f), Err(VnetError::CsumRange { .. })));
        let big = vec![0u8; FRAME_MAX + 1];
        assert_eq!(
            classify(&VnetHdr::default(), &big),
            Err(VnetError::TooBig(FRAME_MAX + 1))
        );
    }

    #[test]
    fn plain_valid_and_complete() {
        let f = vec![0u8; 100];
        assert_eq!(classify(&VnetHdr::default(), &f), Ok(RxAction::Verify));
        assert_eq!(classify(&VnetHdr::data_valid(), &f), Ok(RxAction::Valid));
        let h = VnetHdr {
            flags: flags::NEEDS_CSUM,
            csum_start: 34,
            csum_offset: 16,
            ..Default::default()
        };
        assert_eq!(
            classify(&h, &f),
            Ok(RxAction::Complete {
                start: 34,
                offset: 16
            })
        );
    }
}
