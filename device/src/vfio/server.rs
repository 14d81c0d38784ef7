//! The vfio-user side: turns the VMM's messages (config and BAR accesses,
//! DMA maps, IRQ eventfds, reset) into device state changes, and doorbells
//! into wake-ups of the queue workers.

use std::fs::File;
use std::io;
use std::os::fd::{FromRawFd, IntoRawFd};

use log::{debug, info, warn};
use vfio_bindings::bindings::vfio::{
    vfio_region_info, VFIO_IRQ_INFO_EVENTFD, VFIO_IRQ_SET_ACTION_TRIGGER,
    VFIO_IRQ_SET_DATA_EVENTFD, VFIO_IRQ_SET_DATA_NONE, VFIO_PCI_BAR0_REGION_INDEX,
    VFIO_PCI_CONFIG_REGION_INDEX, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_PCI_NUM_IRQS, VFIO_PCI_NUM_REGIONS,
    VFIO_REGION_INFO_FLAG_READ, VFIO_REGION_INFO_FLAG_WRITE,
};
use vfio_user::{DmaMapFlags, DmaUnmapFlags, IrqInfo, ServerBackend, ServerRegion};
use vmm_sys_util::eventfd::EventFd;

use crate::abi::{BAR0_SIZE, NUM_VECTORS};
use crate::counters::Stat;
use crate::vfio::pci::{PciConfig, CONFIG_SIZE};
use crate::vfio::registers::Control;

/// One VMM connection's view of the device. Dropping it (the connection
/// ended) turns the device over for the next VMM.
pub struct VfioDevice {
    control: Control,
    config: PciConfig,
}

impl Drop for VfioDevice {
    fn drop(&mut self) {
        self.control.turnover();
    }
}

fn einval(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

impl VfioDevice {
    pub fn new(control: Control) -> Self {
        Self {
            control,
            config: PciConfig::new(),
        }
    }

    fn bar_read(&self, offset: u64, data: &mut [u8]) -> io::Result<()> {
        check_bar_access(offset, data.len())?;
        if offset < crate::abi::reg::END {
            let aligned = offset & !3;
            let lo = self.control.read_reg(aligned);
            let hi = self.control.read_reg(aligned + 4);
            let v = u64::from(lo) | (u64::from(hi) << 32);
            let shift = (offset - aligned) * 8;
            let bytes = (v >> shift).to_le_bytes();
            data.copy_from_slice(&bytes[..data.len()]);
        } else {
            data.fill(0);
        }
        Ok(())
    }

    fn bar_write(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        check_bar_access(offset, data.len())?;
        if offset >= crate::abi::reg::END {
            return Ok(()); // MSI-X table/PBA belong to the VMM; the rest is unused
        }
        if !offset.is_multiple_of(4) || (data.len() != 4 && data.len() != 8) {
            warn!(
                "BAR0 write of {} bytes at {offset:#x} ignored: registers take 4-byte writes",
                data.len()
            );
            return Ok(());
        }
        for (i, w) in data.chunks_exact(4).enumerate() {
            let v = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            self.control.write_reg(offset + 4 * i as u64, v);
        }
        Ok(())
    }
}

fn check_bar_access(offset: u64, len: usize) -> io::Result<()> {
    let ok = matches!(len, 1 | 2 | 4 | 8)
        && offset.is_multiple_of(len as u64)
        && offset
            .checked_add(len as u64)
            .is_some_and(|e| e <= BAR0_SIZE);
    if ok {
        Ok(())
    } else {
        Err(einval(format!(
            "BAR0 access of {len} bytes at {offset:#x} is out of range or unaligned"
        )))
    }
}

/// The result of a config space `what` ("read" or "write") of `len` bytes
/// at `offset`, which went through if `done`.
fn config_access(done: bool, what: &str, offset: u64, len: usize) -> io::Result<()> {
    if done {
        Ok(())
    } else {
        Err(einval(format!(
            "config {what} {offset:#x}+{len} out of range"
        )))
    }
}

/// The error for an access (`what`: "read of", "write to") to a region
/// the device does not have.
fn no_region(what: &str, region: u32) -> io::Error {
    einval(format!("{what} region {region}, which has no size"))
}

impl ServerBackend for VfioDevice {
    fn region_read(&mut self, region: u32, offset: u64, data: &mut [u8]) -> io::Result<()> {
        match region {
            VFIO_PCI_CONFIG_REGION_INDEX => {
                config_access(self.config.read(offset, data), "read", offset, data.len())
            }
            VFIO_PCI_BAR0_REGION_INDEX => self.bar_read(offset, data),
            _ => Err(no_region("read of", region)),
        }
    }

    fn region_write(&mut self, region: u32, offset: u64, data: &[u8]) -> io::Result<()> {
        match region {
            VFIO_PCI_CONFIG_REGION_INDEX => {
                config_access(self.config.write(offset, data), "write", offset, data.len())
            }
            VFIO_PCI_BAR0_REGION_INDEX => self.bar_write(offset, data),
            _ => Err(no_region("write to", region)),
        }
    }

    fn dma_map(
        &mut self,
        flags: DmaMapFlags,
        offset: u64,
        address: u64,
        size: u64,
        fd: Option<File>,
    ) -> io::Result<()> {
        debug!(
            "DMA_MAP {address:#x}+{size:#x} offset {offset:#x} flags {flags:?} fd {}",
            fd.is_some()
        );
        if fd.is_none() {
            info!("DMA_MAP {address:#x}+{size:#x} came without an fd: the device cannot reach it (use a shared memfd memory backend for guest RAM)");
        }
        let mut ram = self.control.ram.lock().unwrap_or_else(|p| p.into_inner());
        ram.map_with(address, size, offset, flags, fd).map_err(|e| {
            self.control.shared().counters.inc(Stat::dma_map_refused);
            io::Error::from(e)
        })
    }

    fn dma_unmap(&mut self, flags: DmaUnmapFlags, address: u64, size: u64) -> io::Result<()> {
        debug!("DMA_UNMAP {address:#x}+{size:#x} flags {flags:?}");
        // The workers take a fresh snapshot of guest RAM per pass, and their
        // translations must not outlive the mapping: drop them all first.
        self.control.invalidate_all();
        let mut ram = self.control.ram.lock().unwrap_or_else(|p| p.into_inner());
        if flags.contains(DmaUnmapFlags::UNMAP_ALL) {
            ram.clear();
            return Ok(());
        }
        ram.unmap(address, size).map_err(io::Error::from)
    }

    fn message_refused(&mut self, _error: &vfio_user::Error) {
        // The vfio-user layer has logged the error; count it.
        self.control.shared().counters.inc(Stat::vmm_refused);
    }

    fn reset(&mut self) -> io::Result<()> {
        info!("device reset through vfio-user");
        self.control.reset();
        self.config = PciConfig::new();
        Ok(())
    }

    fn set_irqs(
        &mut self,
        index: u32,
        flags: u32,
        start: u32,
        count: u32,
        fds: Vec<File>,
    ) -> io::Result<()> {
        debug!(
            "SET_IRQS index {index} flags {flags:#x} start {start} count {count} fds {}",
            fds.len()
        );
        if index != VFIO_PCI_MSIX_IRQ_INDEX {
            // INTx/MSI are not offered; accept disables, refuse the rest.
            return if count == 0 || fds.is_empty() {
                Ok(())
            } else {
                Err(einval(format!(
                    "IRQ index {index} is not supported (MSI-X only)"
                )))
            };
        }
        let end = start
            .checked_add(count)
            .filter(|&e| e <= NUM_VECTORS)
            .ok_or_else(|| {
                einval(format!(
                    "MSI-X vectors {start}+{count} beyond {NUM_VECTORS}"
                ))
            })?;
        if flags & VFIO_IRQ_SET_ACTION_TRIGGER == 0 {
            return Ok(()); // mask/unmask actions: the VMM emulates the table
        }
        let mut irqs = self.control.shared().irqs.lock();
        if flags & VFIO_IRQ_SET_DATA_NONE != 0 && count == 0 {
            for v in 0..NUM_VECTORS as usize {
                irqs.set_fd(v, None);
            }
            return Ok(());
        }
        if flags & VFIO_IRQ_SET_DATA_EVENTFD == 0 {
            return Ok(());
        }
        if !fds.is_empty() && fds.len() != count as usize {
            return Err(einval(format!(
                "SET_IRQS with {} fds for {count} vectors",
                fds.len()
            )));
        }
        let mut fds = fds.into_iter();
        for v in start..end {
            // No fds for the range means: tear those vectors down.
            let fd = fds.next().map(|f| {
                // SAFETY: the fd comes from a File we own and give up here;
                // EventFd takes sole ownership of it.
                unsafe { EventFd::from_raw_fd(f.into_raw_fd()) }
            });
            irqs.set_fd(v as usize, fd);
        }
        Ok(())
    }
}

/// The region table the vfio-user server advertises.
pub fn regions() -> Vec<ServerRegion> {
    (0..VFIO_PCI_NUM_REGIONS)
        .map(|index| {
            let size = match index {
                VFIO_PCI_BAR0_REGION_INDEX => BAR0_SIZE,
                VFIO_PCI_CONFIG_REGION_INDEX => CONFIG_SIZE as u64,
                _ => 0,
            };
            let flags = if size > 0 {
                VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE
            } else {
                0
            };
            ServerRegion {
                region_info: vfio_region_info {
                    argsz: std::mem::size_of::<vfio_region_info>() as u32,
                    flags,
                    index,
                    size,
                    ..Default::default()
                },
                sparse_areas: Vec::new(),
                mmap_fd: None,
            }
        })
        .collect()
}

/// The IRQ table: MSI-X only.
pub fn irqs() -> Vec<IrqInfo> {
    (0..VFIO_PCI_NUM_IRQS)
        .map(|index| IrqInfo {
            index,
            flags: if index == VFIO_PCI_MSIX_IRQ_INDEX {
                VFIO_IRQ_INFO_EVENTFD
            } else {
                0
            },
            count: if index == VFIO_PCI_MSIX_IRQ_INDEX {
                NUM_VECTORS
            } else {
                0
            },
        })
        .collect()
}
