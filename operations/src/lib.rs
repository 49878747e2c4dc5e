//! The procedures an operator runs on a backfill, as a library: the command line keeps
//! only flags, confirmations and printing, and tests call these in-process against the
//! real broker, ledger and simulator.
//!
//! - [`dlq`]: list, show, replay and purge the dead-letter queue without losing a message.

pub mod dlq;
mod error;

pub use error::{JobRole, OperationError};
