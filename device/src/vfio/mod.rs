//! The VMM-facing side: the vfio-user server (one message thread), the PCI
//! configuration space and the BAR0 register file.

pub mod pci;
pub mod registers;
pub mod server;
