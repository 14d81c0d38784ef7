//! vmso: an emulated PCIe NIC whose DMA engine gathers TX payload by guest
//! *virtual* address (walking the guest's page tables), segments and
//! checksums it, and writes the frames to a backend (TAP). It is served to a
//! VMM over vfio-user.
//!
//! The layers, each a folder (docs/architecture.md has the threads and a
//! frame's path through them):
//! - [`abi`]: the device contract (registers, descriptors, counter names);
//! - [`engine`]: pure logic, no I/O: page walk, IOTLB, gather, offloads,
//!   checksums, wire views, receive coalescing, RSS; fuzzed directly;
//! - [`queue`]: the rings, TX and RX over them, and the worker thread that
//!   owns a queue pair;
//! - [`vfio`]: the vfio-user server, PCI config space and the register file;
//! - [`host`]: the TAP and other backends, guest RAM mappings, metrics,
//!   capture, signals, seccomp;
//! - [`device`]: one running device, wiring the layers together;
//!   [`counters`]: the statistics every layer counts into.

pub mod abi;
pub mod counters;
pub mod device;
pub mod engine;
pub mod host;
pub mod queue;
pub mod vfio;

pub use device::{Device, DeviceConfig};
