//! The procedures an operator runs on a backfill, as a library: the command line keeps
//! only flags, confirmations and printing, and tests call these in-process against the
//! real broker, ledger and simulator. Errors name the problem in the fleet's terms, never
//! a flag or an environment variable.
//!
//! - [`status`]: where a backfill stands (counts by state, spend, rates, the hold).
//! - [`collector`]: ledger state and queue depths copied into gauges.
//! - [`dlq`]: list, show, replay and purge the dead-letter queue without losing a message.
//! - [`pause`], [`cancel`], [`guards`], [`throttle`]: an operator's hand on a backfill.
//! - [`produce`], [`rerun`]: registering, publishing (resuming after a lost connection)
//!   and new attempts.
//! - [`contract`], [`promotion`]: the promotion contract, promotion and rollback.

pub mod broker_source;
pub mod cancel;
pub mod collector;
pub mod contract;
pub mod dlq;
mod error;
pub mod guards;
pub mod lookup;
pub mod pause;
pub mod produce;
pub mod promotion;
pub mod rerun;
pub mod status;
pub mod throttle;

pub use broker_source::BrokerSource;
pub use error::{JobRole, OperationError};
pub use pause::Operator;
