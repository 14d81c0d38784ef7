//! The pure engine: everything here is a function of its inputs and guest
//! memory (through vm-memory), with no syscalls, threads or clocks, so that
//! it can be unit-tested and fuzzed directly (see `fuzz/`).

pub mod coalesce;
pub mod csum;
pub mod dma;
pub mod iotlb;
pub mod mmu;
pub mod offload;
pub mod rss;
pub mod verdict;
pub mod vnet;
pub mod wire;
