//! Ring configuration and index arithmetic shared by the TX and RX queues.

use crate::abi::{RING_MAX, RING_MIN};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ring {
    pub base: u64,
    pub size: u32,
    pub head: u32,
    pub tail: u32,
}

impl Ring {
    /// A ring the device may use: size a power of two in range, base aligned
    /// and not wrapping the address space.
    pub fn is_valid(&self) -> bool {
        self.size.is_power_of_two()
            && (RING_MIN..=RING_MAX).contains(&self.size)
            && self.base.is_multiple_of(16)
            && self.base.checked_add(u64::from(self.size) * 32).is_some()
    }

    pub fn next(&self, idx: u32) -> u32 {
        (idx + 1) & (self.size - 1)
    }

    pub fn advance(&self, idx: u32, n: u32) -> u32 {
        idx.wrapping_add(n) & (self.size - 1)
    }

    pub fn slot_addr(&self, idx: u32, desc_size: u64) -> u64 {
        self.base + u64::from(idx) * desc_size
    }

    /// Descriptors published and not yet consumed.
    pub fn pending(&self) -> u32 {
        self.tail.wrapping_sub(self.head) & (self.size - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_and_wrap() {
        let mut r = Ring {
            base: 0x1000,
            size: 8,
            head: 6,
            tail: 2,
        };
        assert!(r.is_valid());
        assert_eq!(r.pending(), 4);
        assert_eq!(r.next(7), 0);
        assert_eq!(r.advance(6, 3), 1);
        r.size = 0;
        assert!(!r.is_valid());
        r.size = 12;
        assert!(!r.is_valid());
        r.size = 8192;
        assert!(!r.is_valid());
        r.size = 8;
        r.base = u64::MAX - 64;
        assert!(!r.is_valid());
    }
}

#[cfg(test)]
mod desc_view_tests {
    //! The descriptor views (`ByteValued` over guest bytes), read and written
    //! as the rings do; run under Miri by ci/miri.sh.
    use crate::abi::{RxDesc, TxDesc, TX_DESC_STATUS_OFFSET};
    use vm_memory::{ByteValued, Bytes, GuestAddress, GuestMemoryMmap};

    #[test]
    fn descriptors_round_trip_through_guest_memory() {
        let m: GuestMemoryMmap =
            GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x1000)]).unwrap();
        let raw: Vec<u8> = (0..64u8).collect();
        m.write_slice(&raw, GuestAddress(0x100)).unwrap();
        let t: TxDesc = m.read_obj(GuestAddress(0x100)).unwrap();
        assert_eq!(t.as_slice(), &raw[..32]);
        assert_eq!(t.addr, u64::from_le_bytes(raw[0..8].try_into().unwrap()));
        assert_eq!(t.cmd, u16::from_le_bytes([22, 23]));
        // (from_slice would need the bytes 8-aligned; copy into a view instead.)
        let mut r = RxDesc::default();
        r.as_mut_slice().copy_from_slice(&raw[32..]);
        assert_eq!(r.buf_len, u32::from_le_bytes([40, 41, 42, 43]));
        assert_eq!(r.gso_type, 54);
        // A status write lands where the view says it is.
        m.write_obj(0xdead_beefu32, GuestAddress(0x100 + TX_DESC_STATUS_OFFSET))
            .unwrap();
        let t: TxDesc = m.read_obj(GuestAddress(0x100)).unwrap();
        assert_eq!((t.status, t.error), (0xbeef, 0xdead));
        // Unaligned reads are fine too.
        let t2: TxDesc = m.read_obj(GuestAddress(0x101)).unwrap();
        assert_eq!(t2.as_slice()[0], 1);
    }
}
