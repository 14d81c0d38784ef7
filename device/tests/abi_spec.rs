//! What `abi/abigen.py` cannot check by itself: that the code which
//! implements the ABI agrees with the constants generated from
//! `abi/vmso-abi.toml`. (The struct sizes and field offsets are asserted at
//! compile time in the generated `abi.rs`; this checks the byte image, the
//! register map's geometry, and the constants the engine keeps on its own.)

use vm_memory::ByteValued;
use vmso_device::abi::{self, cmd, feat, pgmode, reg, RxDesc, Stat, TxDesc};
use vmso_device::engine::mmu::PagingMode;
use vmso_device::engine::rss::{self, HashType};
use vmso_device::queue::ring::Ring;

#[test]
fn version_register_is_the_spec_version() {
    assert_eq!(
        abi::VERSION,
        u32::from(abi::ABI_MAJOR) << 16 | u32::from(abi::ABI_MINOR)
    );
}

/// The descriptors' byte image: every field little-endian at the offset the
/// spec gives (the same offsets the C header asserts).
#[test]
fn descriptor_byte_images() {
    let d = TxDesc {
        addr: 0x0807_0605_0403_0201,
        pdbr: 0x1817_1615_1413_1211,
        len: 0x2322_2120,
        mss: 0x2524,
        cmd: 0x2726,
        status: 0x2928,
        error: 0x2b2a,
        rsvd: 0x2f2e_2d2c,
    };
    let b = d.as_slice();
    assert_eq!(b.len() as u64, abi::TX_DESC_SIZE);
    assert_eq!(&b[0..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(&b[8..16], &[0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18]);
    assert_eq!(&b[16..20], &[0x20, 0x21, 0x22, 0x23]);
    assert_eq!(&b[20..24], &[0x24, 0x25, 0x26, 0x27]);
    let st = abi::TX_DESC_STATUS_OFFSET as usize;
    assert_eq!(&b[st..st + 4], &[0x28, 0x29, 0x2a, 0x2b]);
    assert_eq!(&b[28..32], &[0x2c, 0x2d, 0x2e, 0x2f]);

    let r = RxDesc {
        addr: 0x0807_0605_0403_0201,
        buf_len: 0x1312_1110,
        len: 0x1716_1514,
        status: 0x1918,
        gso_size: 0x1b1a,
        gso_segs: 0x1d1c,
        gso_type: 0x1e,
        hash_type: 0x1f,
        hash: 0x2322_2120,
        rsvd: 0x2726_2524,
    };
    let b = r.as_slice();
    assert_eq!(b.len() as u64, abi::RX_DESC_SIZE);
    assert_eq!(&b[0..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
    let tail: Vec<u8> = (0x10..0x28).collect();
    assert_eq!(&b[8..32], &tail[..]);
}

// The register map's pieces follow each other without overlap (checked by
// the compiler), and the last QSTAT block ends where the VMM's MSI-X table
// starts (below).
const _: () = {
    assert!(reg::STAT_NUM < reg::STAT_BASE);
    assert!(reg::STAT_BASE + 8 * abi::STAT_COUNT as u64 <= reg::RSS_KEY);
    assert!(reg::RSS_KEY + abi::RSS_KEY_SIZE as u64 <= reg::RSS_INDIR);
    assert!(reg::RSS_INDIR + abi::RSS_INDIR_SIZE as u64 <= reg::QUEUE_BASE);
    assert!(reg::QUEUE_BASE + reg::QUEUE_STRIDE * abi::MAX_QUEUES as u64 <= reg::QSTAT_BASE);
    assert!(abi::qreg::INT_UNMASK < reg::QUEUE_STRIDE);
    assert!(abi::QSTAT_MAX <= abi::STAT_COUNT);
    // MSI-X: 16 bytes a vector, then the PBA (8 bytes), all inside BAR0.
    assert!(abi::MSIX_TABLE_OFFSET + 16 * abi::NUM_VECTORS <= abi::MSIX_PBA_OFFSET);
    assert!(abi::MSIX_PBA_OFFSET as u64 + 8 <= abi::BAR0_SIZE);
};

#[test]
fn register_map_geometry() {
    assert_eq!(
        reg::QSTAT_BASE + reg::QSTAT_STRIDE * abi::MAX_QUEUES as u64,
        reg::END
    );
    assert_eq!(reg::END, u64::from(abi::MSIX_TABLE_OFFSET));
    assert_eq!(reg::QSTAT_STRIDE, 8 * abi::QSTAT_MAX as u64);
    // MSI-X: misc, then a vector per pair.
    assert_eq!(
        abi::NUM_VECTORS as usize,
        abi::VEC_MQ_QUEUE0 + abi::MAX_QUEUES
    );
    // Queue pair 0's block holds the same registers as the 1.x layout.
    assert_eq!(
        reg::TX_TAIL - reg::TX_BASE_LO,
        abi::qreg::TX_TAIL - abi::qreg::TX_BASE_LO
    );
    assert_eq!(
        reg::RX_TAIL - reg::RX_BASE_LO,
        abi::qreg::RX_TAIL - abi::qreg::RX_BASE_LO
    );
}

/// Constants the engine keeps in its own modules agree with the spec.
#[test]
fn engine_constants_match_the_spec() {
    assert_eq!(rss::KEY_LEN, abi::RSS_KEY_SIZE);
    assert_eq!(rss::INDIR_LEN, abi::RSS_INDIR_SIZE);
    assert_eq!(HashType::None as u8, abi::HASH_TYPE_NONE);
    assert_eq!(HashType::L3 as u8, abi::HASH_TYPE_L3);
    assert_eq!(HashType::L4 as u8, abi::HASH_TYPE_L4);
    for (mode, v) in [
        (PagingMode::Bits32, pgmode::PG_32),
        (PagingMode::Pae, pgmode::PG_PAE),
        (PagingMode::Level4, pgmode::PG_4L),
        (PagingMode::Level5, pgmode::PG_5L),
    ] {
        assert_eq!(mode.cmd_field(), v);
        assert_eq!(PagingMode::from_cmd_field(v), mode);
        assert_eq!((v << cmd::PGMODE_SHIFT) & !cmd::PGMODE_MASK, 0);
    }
    let ring = |base, size| Ring {
        base,
        size,
        head: 0,
        tail: 0,
    };
    assert!(ring(abi::RING_ALIGN, abi::RING_MIN).is_valid());
    assert!(ring(abi::RING_ALIGN, abi::RING_MAX).is_valid());
    assert!(!ring(abi::RING_ALIGN / 2, abi::RING_MIN).is_valid());
    assert!(!ring(abi::RING_ALIGN, abi::RING_MIN / 2).is_valid());
    assert!(!ring(abi::RING_ALIGN, abi::RING_MAX * 2).is_valid());
    // Every feature bit is implemented, and no CMD bit outside VALID exists.
    assert_eq!(feat::DEVICE, (1 << 15) - 1);
    assert_eq!(cmd::VALID, (1 << 10) - 1);
}

/// Stat's variants carry their names: the Debug name of each is its
/// STAT_NAMES entry (checked at both ends and around the QSTAT window).
#[test]
fn counter_names_and_indices() {
    assert_eq!(abi::STAT_NAMES.len(), abi::STAT_COUNT);
    for s in [
        Stat::tx_packets,
        Stat::iotlb_hits,
        Stat::backend_errors,
        Stat::bad_queue_regs,
        Stat::rx_steered,
    ] {
        assert_eq!(abi::STAT_NAMES[s as usize], format!("{s:?}"));
    }
    assert_eq!(Stat::rx_steered as usize, abi::STAT_COUNT - 1);
    let mut names = abi::STAT_NAMES.to_vec();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), abi::STAT_COUNT, "counter names are unique");
}
