//! The worker (SPEC 5.5): stateless, horizontally scaled, holding nothing that matters.
//!
//! A partition goes through two kinds of message. A **trigger** claims the attempt in the
//! ledger (recording its idempotency token), calls `run-now`, records the run id and
//! schedules the first **check**, then is acknowledged: no delivery is held while a run
//! lasts. Each check reads the run once and either schedules the next check through a
//! delay tier, records success, schedules a new attempt, or dead-letters. The ledger is
//! the source of truth; every handler is idempotent against it, so a redelivered or
//! duplicated message re-attaches instead of acting twice.
//!
//! - [`policy`]: the pure decisions (what a trigger message should do given the ledger;
//!   retry or dead-letter for a failure class; when to look at a run next).
//! - [`Worker::process`]: the step function, one message in, its follow-ups published.
//! - `sweep`: re-issuing what the broker lost (overdue checks, stranded triggers), from
//!   the ledger.
//! - `outage`: what follows a failure (a delay within the outage budget, or the
//!   dead-letter queue).
//! - [`run_worker`]: the loop: consume both lanes, bounded concurrency, reconnect,
//!   graceful shutdown.

mod budget;
mod config;
mod consume;
mod dead_letter;
mod error;
pub mod freshness;
mod outage;
pub mod policy;
mod step;
mod sweep;

pub use budget::{ApiBudget, FleetBudget};
pub use config::{PollPolicy, RetryPolicy, WorkerConfig};
pub use consume::run_worker;
pub use error::StepError;
pub use step::{Handled, Worker};
