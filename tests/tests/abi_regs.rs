//! The device answers with the values `abi/vmso-abi.toml` gives: read
//! through the vfio-user client, as a driver would read them.

use vmso_device::abi::{self, cause, feat, reg};
use vmso_tests::*;

#[test]
fn identity_and_limit_registers_match_the_spec() {
    let mut h = Harness::bare();
    assert_eq!(
        h.read_config(0),
        u32::from(abi::PCI_DEVICE_ID) << 16 | u32::from(abi::PCI_VENDOR_ID)
    );
    assert_eq!(
        h.read_config(0x2c),
        u32::from(abi::PCI_SUBSYS_ID) << 16 | u32::from(abi::PCI_SUBSYS_VENDOR_ID)
    );
    assert_eq!(
        h.read_config(0x08),
        abi::PCI_CLASS_ETHERNET << 8 | u32::from(abi::PCI_REVISION)
    );
    assert_eq!(h.read_reg(reg::VERSION), abi::VERSION);
    assert_eq!(h.read_reg(reg::DEV_FEATURES), feat::DEVICE);
    assert_eq!(h.read_reg(reg::STAT_NUM) as usize, abi::STAT_COUNT);
    assert_eq!(h.read_reg(reg::MAX_SG) as usize, abi::MAX_SG);
    assert_eq!(h.read_reg(reg::MAX_PKT) as usize, abi::MAX_PKT);
    assert_eq!(h.read_reg(reg::MTU), abi::MTU_DEFAULT);
    assert_eq!(
        h.read_reg(reg::INT_MASK),
        cause::ALL,
        "all masked after reset"
    );
    let n = h.read_reg(reg::NUM_QUEUES);
    assert_eq!(n & 0xffff, n >> 16, "as many TX as RX queues");
    assert!((1..=abi::MAX_QUEUES as u32).contains(&(n & 0xffff)));
    // Past the counters, the STAT block reads 0.
    let past = reg::STAT_BASE + 8 * abi::STAT_COUNT as u64;
    assert_eq!(h.read_reg(past), 0);
}
