//! What handling a message did, for logs and metrics. Whatever it did, the delivery is
//! acknowledged.

use backfill_contract::RunId;

/// What handling a message did; the delivery is acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// A run was started (or found by its token) and its first check scheduled.
    Triggered {
        run_id: RunId,
    },
    /// A fresh chain of checks was started for an existing run.
    ChecksRestarted {
        run_id: RunId,
    },
    /// Sent round the delay tiers again, for this reason.
    Delayed(String),
    /// The run is still going; the next check is scheduled.
    StillRunning {
        state: String,
        known: bool,
    },
    Succeeded {
        run_id: RunId,
    },
    RetryScheduled {
        next_attempt: u32,
    },
    DeadLettered(String),
    /// Nothing to do (stale or already done).
    Dropped(String),
    /// The message itself was bad and went to the dead-letter queue.
    Poisoned(String),
}
