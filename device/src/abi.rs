//! The device ABI, mirrored from `docs/abi.md` (the one written contract).
//! `guest-driver/vmso_hw.h` mirrors the same file; both assert the sizes.

use vm_memory::ByteValued;

pub const PCI_VENDOR_ID: u16 = 0x1234;
pub const PCI_DEVICE_ID: u16 = 0x5650;
pub const PCI_SUBSYS_VENDOR_ID: u16 = 0x1234;
pub const PCI_SUBSYS_ID: u16 = 0x0001;
pub const PCI_CLASS_ETHERNET: u32 = 0x020000;
pub const PCI_REVISION: u8 = 1;

pub const BAR0_SIZE: u64 = 0x4000;
pub const MSIX_TABLE_OFFSET: u32 = 0x2000;
pub const MSIX_PBA_OFFSET: u32 = 0x3000;
/// Queue pairs a device can have (`--queues`).
pub const MAX_QUEUES: usize = 16;
/// MSI-X vectors: misc plus one per queue pair (ABI 2.0).
pub const NUM_VECTORS: u32 = 1 + MAX_QUEUES as u32;
/// Vectors without MQ (ABI 1.x layout, queue pair 0).
pub const VEC_TX: usize = 0;
pub const VEC_RX: usize = 1;
pub const VEC_MISC: usize = 2;
/// Vectors with MQ: misc, then queue pair q at `VEC_MQ_QUEUE0 + q`.
pub const VEC_MQ_MISC: usize = 0;
pub const VEC_MQ_QUEUE0: usize = 1;

pub const VERSION: u32 = 0x0002_0000;
pub const MAX_SG: usize = 64;
pub const MAX_PKT: usize = 65536 + 1024;
pub const MAX_HDR: usize = 256;
/// The smallest segment a packet may ask for: the TSO/USO MSS, and the IP
/// payload of a UFO fragment (after rounding down to 8). With MAX_PKT this
/// bounds one descriptor chain to at most 1040 frames; smaller segments
/// complete with [`TxError::SmallMss`].
pub const MIN_MSS: usize = 64;
pub const MTU_MIN: u32 = 68;
pub const MTU_MAX: u32 = 9000;
pub const MTU_DEFAULT: u32 = 1500;
pub const RING_MIN: u32 = 8;
pub const RING_MAX: u32 = 4096;
pub const ITR_MAX_US: u32 = 10_000;
pub const POLL_MAX_US: u32 = 1000;
pub const RX_BUF_MIN: u32 = 64;
pub const RX_BUF_MAX: u32 = 65536;
pub const MAXPHYADDR: u32 = 46;

/// Register offsets in BAR0.
pub mod reg {
    pub const VERSION: u64 = 0x000;
    pub const DEV_FEATURES: u64 = 0x004;
    pub const DRV_FEATURES: u64 = 0x008;
    pub const CTRL: u64 = 0x00C;
    pub const STATUS: u64 = 0x010;
    pub const MTU: u64 = 0x014;
    pub const MAC_LO: u64 = 0x018;
    pub const MAC_HI: u64 = 0x01C;
    pub const INT_CAUSE: u64 = 0x020;
    pub const INT_MASK: u64 = 0x024;
    pub const INT_MASK_SET: u64 = 0x028;
    pub const INT_MASK_CLR: u64 = 0x02C;
    pub const ITR: u64 = 0x030;
    pub const NUM_QUEUES: u64 = 0x034;
    pub const MAX_SG: u64 = 0x038;
    pub const MAX_PKT: u64 = 0x03C;
    pub const NOTIFY_LO: u64 = 0x040;
    pub const NOTIFY_HI: u64 = 0x044;
    pub const POLL_US: u64 = 0x048;
    pub const QUEUES: u64 = 0x04C;
    pub const TX_BASE_LO: u64 = 0x100;
    pub const TX_BASE_HI: u64 = 0x104;
    pub const TX_SIZE: u64 = 0x108;
    pub const TX_HEAD: u64 = 0x10C;
    pub const TX_TAIL: u64 = 0x110;
    pub const RX_BASE_LO: u64 = 0x140;
    pub const RX_BASE_HI: u64 = 0x144;
    pub const RX_SIZE: u64 = 0x148;
    pub const RX_HEAD: u64 = 0x14C;
    pub const RX_TAIL: u64 = 0x150;
    pub const IOTLB_INV: u64 = 0x200;
    pub const IOTLB_INV_PDBR_LO: u64 = 0x208;
    pub const IOTLB_INV_PDBR_HI: u64 = 0x20C;
    pub const IOTLB_INV_ADDR_LO: u64 = 0x210;
    pub const IOTLB_INV_ADDR_HI: u64 = 0x214;
    pub const FAULT_VA_LO: u64 = 0x240;
    pub const FAULT_VA_HI: u64 = 0x244;
    pub const FAULT_PDBR_LO: u64 = 0x248;
    pub const FAULT_PDBR_HI: u64 = 0x24C;
    pub const FAULT_REASON: u64 = 0x250;
    pub const FAULT_COUNT: u64 = 0x254;
    pub const ERROR_COUNT: u64 = 0x258;
    pub const FAULT_QUEUE: u64 = 0x25C;
    pub const STAT_COUNT: u64 = 0x3FC;
    pub const STAT_BASE: u64 = 0x400;
    pub const RSS_KEY: u64 = 0x600;
    pub const RSS_INDIR: u64 = 0x680;
    /// Queue pair q's block: `QUEUE_BASE + QUEUE_STRIDE * q`.
    pub const QUEUE_BASE: u64 = 0x800;
    pub const QUEUE_STRIDE: u64 = 0x40;
    /// Queue pair q's counters: `QSTAT_BASE + QSTAT_STRIDE * q + 8 * i`.
    pub const QSTAT_BASE: u64 = 0x1000;
    pub const QSTAT_STRIDE: u64 = 0x100;
    /// End of the register space (the MSI-X table follows).
    pub const END: u64 = 0x2000;
}

/// Offsets inside a queue pair block.
pub mod qreg {
    pub const TX_BASE_LO: u64 = 0x00;
    pub const TX_BASE_HI: u64 = 0x04;
    pub const TX_SIZE: u64 = 0x08;
    pub const TX_HEAD: u64 = 0x0C;
    pub const TX_TAIL: u64 = 0x10;
    pub const RX_BASE_LO: u64 = 0x14;
    pub const RX_BASE_HI: u64 = 0x18;
    pub const RX_SIZE: u64 = 0x1C;
    pub const RX_HEAD: u64 = 0x20;
    pub const RX_TAIL: u64 = 0x24;
    pub const NOTIFY_LO: u64 = 0x28;
    pub const NOTIFY_HI: u64 = 0x2C;
    pub const INT_UNMASK: u64 = 0x30;
}

pub mod ctrl {
    pub const ENABLE: u32 = 1 << 0;
    pub const RESET: u32 = 1 << 1;
}

pub mod status {
    pub const LINK_UP: u32 = 1 << 0;
    pub const ENABLED: u32 = 1 << 1;
    pub const FAULT: u32 = 1 << 2;
}

pub mod cause {
    pub const TX: u32 = 1 << 0;
    pub const RX: u32 = 1 << 1;
    pub const FAULT: u32 = 1 << 2;
    pub const LINK: u32 = 1 << 3;
    pub const ERROR: u32 = 1 << 4;
    pub const ALL: u32 = 0x1f;
}

pub mod feat {
    pub const CSUM: u32 = 1 << 0;
    pub const TSO4: u32 = 1 << 1;
    pub const TSO6: u32 = 1 << 2;
    pub const UFO: u32 = 1 << 3;
    pub const USO: u32 = 1 << 4;
    pub const VA_DMA: u32 = 1 << 5;
    pub const PG_32: u32 = 1 << 6;
    pub const PG_PAE: u32 = 1 << 7;
    pub const PG_4L: u32 = 1 << 8;
    pub const PG_5L: u32 = 1 << 9;
    pub const RX_CSUM: u32 = 1 << 10;
    pub const LRO: u32 = 1 << 11;
    pub const NOTIFY: u32 = 1 << 12;
    pub const MQ: u32 = 1 << 13;
    pub const RSS: u32 = 1 << 14;
    /// Everything this device implements.
    pub const DEVICE: u32 = CSUM
        | TSO4
        | TSO6
        | UFO
        | USO
        | VA_DMA
        | PG_32
        | PG_PAE
        | PG_4L
        | PG_5L
        | RX_CSUM
        | LRO
        | NOTIFY
        | MQ
        | RSS;
}

pub mod cmd {
    pub const EOP: u16 = 1 << 0;
    pub const VM: u16 = 1 << 1;
    pub const TSO: u16 = 1 << 2;
    pub const IPCSUM: u16 = 1 << 3;
    pub const L4CSUM: u16 = 1 << 4;
    pub const USO: u16 = 1 << 5;
    pub const UFO: u16 = 1 << 6;
    pub const SNAPSHOT: u16 = 1 << 7;
    pub const PGMODE_SHIFT: u16 = 8;
    pub const PGMODE_MASK: u16 = 3 << PGMODE_SHIFT;
    pub const VALID: u16 = EOP | VM | TSO | IPCSUM | L4CSUM | USO | UFO | SNAPSHOT | PGMODE_MASK;
}

pub mod txstat {
    pub const DD: u16 = 1 << 0;
}

pub mod rxstat {
    pub const DD: u16 = 1 << 0;
    pub const EOP: u16 = 1 << 1;
    pub const L4_OK: u16 = 1 << 2;
    pub const IP_OK: u16 = 1 << 3;
    pub const COALESCED: u16 = 1 << 4;
    pub const CSUM_ERR: u16 = 1 << 5;
}

/// TX completion error codes (`vmso_tx_desc.error`).
#[repr(u16)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxError {
    Ok = 0,
    BadDesc = 1,
    PageFault = 2,
    Dma = 3,
    BadHdr = 4,
    TooManySg = 5,
    BadMss = 6,
    TooBig = 7,
    NoEop = 8,
    Backend = 9,
    NoPayload = 10,
    SmallMss = 11,
}

/// Fault log reasons (`FAULT_REASON`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultReason {
    NotPresent = 1,
    Reserved = 2,
    NonCanonical = 3,
    PteOutOfRam = 4,
    PageOutOfRam = 5,
    BadPdbr = 6,
}

pub mod iotlb_inv {
    pub const ALL: u32 = 1;
    pub const PDBR: u32 = 2;
    pub const ADDR: u32 = 3;
}

/// TX buffer descriptor: one per buffer, as the invention describes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxDesc {
    pub addr: u64,
    pub pdbr: u64,
    pub len: u32,
    pub mss: u16,
    pub cmd: u16,
    pub status: u16,
    pub error: u16,
    pub rsvd: u32,
}

/// RX buffer descriptor.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxDesc {
    pub addr: u64,
    pub buf_len: u32,
    pub len: u32,
    pub status: u16,
    pub gso_size: u16,
    pub gso_segs: u16,
    pub gso_type: u8,
    /// [`crate::engine::rss::HashType`].
    pub hash_type: u8,
    pub hash: u32,
    pub rsvd: u32,
}

pub const TX_DESC_SIZE: u64 = 32;
pub const RX_DESC_SIZE: u64 = 32;
pub const TX_DESC_STATUS_OFFSET: u64 = 24;

const _: () = assert!(std::mem::size_of::<TxDesc>() == TX_DESC_SIZE as usize);
const _: () = assert!(std::mem::size_of::<RxDesc>() == RX_DESC_SIZE as usize);
const _: () = assert!(std::mem::offset_of!(TxDesc, status) == TX_DESC_STATUS_OFFSET as usize);
const _: () = assert!(std::mem::offset_of!(RxDesc, status) == 16);
const _: () = assert!(std::mem::offset_of!(RxDesc, gso_type) == 22);
const _: () = assert!(std::mem::offset_of!(RxDesc, hash) == 24);

// SAFETY: TxDesc is repr(C), made only of integers, has no padding (size asserted
// above equals the sum of its fields) and every bit pattern is a valid value.
unsafe impl ByteValued for TxDesc {}
// SAFETY: as for TxDesc: repr(C), integers only, no padding, any bit pattern valid.
unsafe impl ByteValued for RxDesc {}

pub const GSO_TYPE_NONE: u8 = 0;
pub const GSO_TYPE_TCPV4: u8 = 1;
pub const GSO_TYPE_TCPV6: u8 = 2;

/// The notify block (doorbell suppression), in guest RAM at NOTIFY_LO/HI.
pub mod notify {
    pub const SIZE: u64 = 64;
    /// le32, written by the driver: its TX tail.
    pub const TX_TAIL: u64 = 0x00;
    /// le32, written by the driver: its RX tail.
    pub const RX_TAIL: u64 = 0x04;
    /// le32, written by the device: 1 = ring TX_TAIL after posting.
    pub const TX_KICK: u64 = 0x08;
    /// le32, written by the device: 1 = ring RX_TAIL after posting.
    pub const RX_KICK: u64 = 0x0c;
}
