//! A VMM that goes away leaves nothing behind: its guest-RAM mappings,
//! interrupt eventfds and device state are dropped, and the next VMM on the
//! same device is served as if the device were fresh.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

use vfio_bindings::bindings::vfio::{
    VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_DATA_EVENTFD, VFIO_PCI_BAR0_REGION_INDEX,
    VFIO_PCI_MSIX_IRQ_INDEX,
};
use vmm_sys_util::eventfd::EventFd;
use vmso_device::abi::{self, cmd, ctrl, reg, VEC_TX};
use vmso_device::Device;
use vmso_tests::*;

fn wr(c: &mut vfio_user::Client, off: u64, v: u32) {
    c.region_write(VFIO_PCI_BAR0_REGION_INDEX, off, &v.to_le_bytes())
        .unwrap();
}

#[test]
fn the_next_vmm_maps_the_same_ram_and_gets_a_fresh_device() {
    let old_irq = EventFd::new(libc::EFD_NONBLOCK).unwrap();
    let old_irq_fd = old_irq.try_clone().unwrap();
    let mut h = Harness::after(move |socket: &Path, _d: &Device| {
        // The first VMM: maps the same guest-physical range the harness
        // will, wires an interrupt, programs and enables the device, leaves.
        let mut c = vfio_user::Client::new(socket).unwrap();
        let ram = memfd(1 << 30);
        c.dma_map(0, 0, 1 << 30, ram.as_raw_fd()).unwrap();
        let fds = [old_irq_fd.as_raw_fd()];
        c.set_irqs(
            VFIO_PCI_MSIX_IRQ_INDEX,
            VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
            VEC_TX as u32,
            1,
            &fds,
        )
        .unwrap();
        wr(&mut c, reg::TX_BASE_LO, TX_RING as u32);
        wr(&mut c, reg::TX_SIZE, TX_SIZE);
        wr(&mut c, reg::RX_BASE_LO, RX_RING as u32);
        wr(&mut c, reg::RX_SIZE, RX_SIZE);
        wr(&mut c, reg::MAC_LO, 0xdead_beef);
        wr(&mut c, reg::CTRL, ctrl::ENABLE);
        wr(&mut c, reg::INT_MASK_CLR, abi::cause::ALL);
        c.shutdown().unwrap();
        // The server sees the disconnect and turns the device over.
        std::thread::sleep(Duration::from_millis(100));
    });
    // Harness::after's own DMA_MAPs of 0..1 GiB succeeded: the old mapping
    // is gone (it would overlap). The device state is fresh too.
    assert_eq!(
        h.read_reg(reg::MAC_LO),
        u32::from_le_bytes([0x52, 0x54, 0, 0x76]),
        "default MAC, not the old VMM's"
    );
    h.write(DATA_POOL, &[5u8; 80]);
    assert_eq!(h.send(&[desc(DATA_POOL, 80, cmd::EOP)]), 0);
    assert_eq!(h.frames(), vec![vec![5u8; 80]]);
    assert!(h.wait_irq(VEC_TX), "the new VMM's vector fires");
    assert!(old_irq.read().is_err(), "the old VMM's eventfd never fires");
    assert_eq!(h.read_reg(reg::CTRL), ctrl::ENABLE);
}
