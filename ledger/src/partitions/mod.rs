//! A partition's row: reading it, and moving it through its state machine, each move a
//! compare-and-set committed with its event.
//!
//! - `cas`: the compare-and-set every transition is made of.
//! - `claim`: pending/failed → triggering, with the guards checked inside the claim.
//! - `check_chain`: triggering → running, and the live chain of checks.
//! - `endings`: succeeded, a new attempt, dead-lettered; verified by the reconciler.
//! - `operator`: cancelled, and an operator's re-run.
//! - `reads`: partitions read and counted.
//! - `siblings`: the checks of runs triggered together, made due when one of them ends.

mod cas;
mod check_chain;
mod claim;
mod endings;
mod operator;
mod reads;
mod run_times;
mod siblings;

pub use claim::{Claim, spend_with_next_run};
pub(crate) use reads::columns;
pub use run_times::RunTimes;
pub use siblings::Sibling;
