//! The host side of the process: the backend (TAP, or a socketpair in
//! tests), guest RAM as the VMM maps it, metrics, capture, signals, the
//! seccomp filters and what the command line needs.

pub mod backend;
pub mod cli;
pub mod launch;
pub mod memory;
pub mod metrics;
pub mod pcap;
pub mod runtime;
pub mod seccomp;
pub mod tap;
