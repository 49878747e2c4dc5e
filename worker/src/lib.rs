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
//! - [`Worker`] (`worker`): building one; `cached_reads` and `expiring`: what it
//!   remembers of the ledger between messages; [`freshness`]: the production watch.
//! - [`Worker::process`] (`dispatch`): the step function, one message in (`received`:
//!   decoded once, with its partition key, body, lane and span), its follow-ups
//!   published, a [`Handled`] out; `trigger` and `run_now`: the trigger path; `check`: the
//!   check path; `follow_up`: publishing checks, retries and delays; `in_process`: the
//!   waits shorter than any delay tier, made in the worker; `dead_letter`: the
//!   dead-letter queue.
//! - `sweep`: re-issuing what the broker lost (overdue checks, stranded triggers), from
//!   the ledger.
//! - `outage`: what follows a failure or a panic (a delay within the outage budget, or
//!   the dead-letter queue).
//! - [`run_worker`] (`consume`): the loop: consume both lanes, bounded concurrency,
//!   reconnect, graceful shutdown.

mod budget;
mod cached_reads;
mod check;
mod config;
mod consume;
mod dead_letter;
mod dispatch;
mod error;
mod expiring;
mod follow_up;
pub mod freshness;
mod handled;
mod in_process;
mod outage;
pub mod policy;
mod received;
mod run_ended;
mod run_now;
mod sweep;
mod trigger;
mod worker;

pub use budget::{ApiBudget, FleetBudget};
pub use config::{PollPolicy, RetryPolicy, WorkerConfig};
pub use consume::run_worker;
pub use error::StepError;
pub use handled::Handled;
pub use worker::Worker;
