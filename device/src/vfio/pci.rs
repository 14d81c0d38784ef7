//! PCI configuration space: Ethernet class, one 64-bit memory BAR, MSI-X and
//! PCI Express capabilities. Writes go through a per-byte writable mask.

use crate::abi::{
    BAR0_SIZE, MSIX_PBA_OFFSET, MSIX_TABLE_OFFSET, NUM_VECTORS, PCI_CLASS_ETHERNET, PCI_DEVICE_ID,
    PCI_REVISION, PCI_SUBSYS_ID, PCI_SUBSYS_VENDOR_ID, PCI_VENDOR_ID,
};

pub const CONFIG_SIZE: usize = 4096;
const CAP_MSIX: usize = 0x40;
const CAP_PCIE: usize = 0x50;

pub struct PciConfig {
    bytes: Vec<u8>,
    wmask: Vec<u8>,
}

impl Default for PciConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl PciConfig {
    pub fn new() -> Self {
        let mut c = Self {
            bytes: vec![0; CONFIG_SIZE],
            wmask: vec![0; CONFIG_SIZE],
        };
        c.put16(0x00, PCI_VENDOR_ID);
        c.put16(0x02, PCI_DEVICE_ID);
        c.put16(0x06, 0x0010); // status: capabilities list
        c.bytes[0x08] = PCI_REVISION;
        c.put_bytes(0x09, &PCI_CLASS_ETHERNET.to_le_bytes()[..3]);
        // BAR0: 64-bit, non-prefetchable memory.
        c.put32(0x10, 0x4);
        c.put16(0x2c, PCI_SUBSYS_VENDOR_ID);
        c.put16(0x2e, PCI_SUBSYS_ID);
        c.bytes[0x34] = CAP_MSIX as u8;
        // MSI-X: table and PBA in BAR0.
        c.bytes[CAP_MSIX] = 0x11;
        c.bytes[CAP_MSIX + 1] = CAP_PCIE as u8;
        c.put16(CAP_MSIX + 2, (NUM_VECTORS - 1) as u16);
        c.put32(CAP_MSIX + 4, MSIX_TABLE_OFFSET);
        c.put32(CAP_MSIX + 8, MSIX_PBA_OFFSET);
        // PCI Express v2 endpoint, x1 at 2.5 GT/s.
        c.bytes[CAP_PCIE] = 0x10;
        c.bytes[CAP_PCIE + 1] = 0;
        c.put16(CAP_PCIE + 2, 0x0002);
        c.put32(CAP_PCIE + 4, 0x0000_8000 | 1); // devcap: role-based error, 256 B payload
        c.put32(CAP_PCIE + 0x0c, 0x0000_0011); // linkcap: x1, 2.5 GT/s
        c.put16(CAP_PCIE + 0x12, 0x0011); // linksta: x1, 2.5 GT/s
                                          // Writable: command, BAR0 (size-aligned), interrupt line, MSI-X
                                          // enable/function mask, PCIe device control.
        c.mask16(0x04, 0x0546);
        c.mask32(0x10, !(BAR0_SIZE as u32 - 1));
        c.mask32(0x14, 0xffff_ffff);
        c.wmask[0x3c] = 0xff;
        c.mask16(CAP_MSIX + 2, 0xc000);
        c.mask16(CAP_PCIE + 8, 0xffff);
        c
    }

    fn put_bytes(&mut self, off: usize, v: &[u8]) {
        self.bytes[off..off + v.len()].copy_from_slice(v);
    }
    fn put16(&mut self, off: usize, v: u16) {
        self.put_bytes(off, &v.to_le_bytes());
    }
    fn put32(&mut self, off: usize, v: u32) {
        self.put_bytes(off, &v.to_le_bytes());
    }
    fn mask16(&mut self, off: usize, m: u16) {
        self.wmask[off..off + 2].copy_from_slice(&m.to_le_bytes());
    }
    fn mask32(&mut self, off: usize, m: u32) {
        self.wmask[off..off + 4].copy_from_slice(&m.to_le_bytes());
    }

    /// Reads `data.len()` bytes at `off`; false if out of range.
    pub fn read(&self, off: u64, data: &mut [u8]) -> bool {
        let Some(range) = range(off, data.len()) else {
            return false;
        };
        data.copy_from_slice(&self.bytes[range]);
        true
    }

    /// Writes through the writable mask; false if out of range.
    pub fn write(&mut self, off: u64, data: &[u8]) -> bool {
        let Some(range) = range(off, data.len()) else {
            return false;
        };
        for (i, &b) in range.zip(data) {
            let m = self.wmask[i];
            self.bytes[i] = (self.bytes[i] & !m) | (b & m);
        }
        true
    }

    pub fn msix_enabled(&self) -> bool {
        self.bytes[CAP_MSIX + 3] & 0x80 != 0
    }
}

fn range(off: u64, len: usize) -> Option<std::ops::Range<usize>> {
    let start = usize::try_from(off).ok()?;
    let end = start.checked_add(len)?;
    (end <= CONFIG_SIZE).then_some(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_and_bar_sizing() {
        let mut c = PciConfig::new();
        let mut b = [0u8; 4];
        c.read(0, &mut b);
        assert_eq!(u32::from_le_bytes(b), 0x5650_1234);
        c.write(0x10, &[0xff; 4]);
        c.read(0x10, &mut b);
        assert_eq!(u32::from_le_bytes(b), !(BAR0_SIZE as u32 - 1) | 0x4);
        c.write(0x00, &[0; 2]);
        c.read(0, &mut b);
        assert_eq!(u32::from_le_bytes(b), 0x5650_1234, "IDs are read-only");
        assert!(!c.read(4095, &mut b), "out of range read refused");
        assert!(!c.write(u64::MAX, &b));
        assert!(!c.msix_enabled());
        c.write(0x43, &[0x80]);
        assert!(c.msix_enabled());
    }
}
