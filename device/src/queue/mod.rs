//! The queues: the rings, the TX and RX paths over them, and the worker
//! thread that owns one queue pair. Each pair is touched only by its worker;
//! the register file reaches it through [`command::Cmd`]s and reads what
//! the worker publishes in [`shared`].

pub mod command;
pub mod irq;
pub mod pair;
pub mod ring;
pub mod rx;
pub mod shared;
pub mod tx;
pub mod worker;
