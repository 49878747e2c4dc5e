//! Where a backfill stands, from the ledger's aggregates (its memory does not grow with
//! the backfill's size): counts by state, spend, throughput, ETA, and why new runs are
//! held.

mod counts;
mod hold;
mod listing;
mod rates;
mod report;

pub use counts::StateCounts;
pub use hold::Hold;
pub use listing::{BackfillLine, recent_backfills};
pub use rates::{HOUR_MS, rates, spend_at_completion};
pub use report::{StatusReport, status_report};
