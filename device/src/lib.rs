//! vmso: an emulated PCIe NIC whose DMA engine gathers TX payload by guest
//! *virtual* address (walking the guest's page tables), segments and
//! checksums it, and writes the frames to a backend (TAP). It is served to a
//! VMM over vfio-user.
//!
//! Pure logic, testable without I/O: [`mmu`] (page walk), [`iotlb`],
//! [`offload`] (TSO/USO/UFO/checksums), [`wire`], [`csum`], [`ring`], [`dma`].

pub mod abi;
pub mod backend;
pub mod cli;
pub mod coalesce;
pub mod command;
pub mod control;
pub mod counters;
pub mod csum;
pub mod datapath;
pub mod device;
pub mod dma;
pub mod iotlb;
pub mod irq;
pub mod memory;
pub mod metrics;
pub mod mmu;
pub mod offload;
pub mod pcap;
pub mod pci;
pub mod queue;
pub mod ring;
pub mod rss;
pub mod runtime;
pub mod rx;
pub mod seccomp;
pub mod server;
pub mod shared;
pub mod tap;
pub mod tx;
pub mod vnet;
pub mod wire;

pub use device::{Device, DeviceConfig};
