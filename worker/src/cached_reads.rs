//! What a worker remembers of the ledger between messages, each read at most so often:
//! a backfill's immutable fields (for ever), its guards (a second), its finished runs'
//! lengths (30 s; while too few have finished to go by, a second, and again after each
//! success this worker records), how many of its
//! partitions wait to start (2 s), and whether its triggers were lately held at the cap.

use std::sync::Arc;
use std::time::Duration;

use backfill_contract::BackfillId;
use backfill_ledger::{Backfill, Guards, Ledger, LedgerError, PartitionState};

use crate::StepError;
use crate::expiring::Expiring;
use crate::policy::RunHistory;

/// The worker's caches of ledger reads, by backfill.
#[derive(Debug)]
pub(crate) struct CachedReads {
    /// A backfill's job id and parameters never change once registered.
    backfills: Expiring<BackfillId, Arc<Backfill>>,
    guards: Expiring<BackfillId, Guards>,
    /// Run lengths, for adaptive polling.
    histories: Expiring<BackfillId, RunHistory>,
    /// Run lengths while fewer runs have finished than polling needs: they grow fast.
    young_histories: Expiring<BackfillId, RunHistory>,
    /// Partitions waiting to start (pending or failed): how far apart triggers at the cap
    /// ask again.
    backlogs: Expiring<BackfillId, i64>,
    /// Backfills whose triggers this worker lately sent round at the cap: a slot one of
    /// their runs frees is handed to a waiting trigger at once.
    at_cap: Expiring<BackfillId, ()>,
}

impl Default for CachedReads {
    fn default() -> Self {
        Self {
            backfills: Expiring::forever(),
            guards: Expiring::new(Duration::from_secs(1)),
            histories: Expiring::new(Duration::from_secs(30)),
            young_histories: Expiring::new(Duration::from_secs(1)),
            backlogs: Expiring::new(Duration::from_secs(2)),
            at_cap: Expiring::new(Duration::from_secs(60)),
        }
    }
}

impl CachedReads {
    /// The backfill's immutable fields (job, parameters, manifest), read once.
    pub(crate) async fn backfill(
        &self,
        ledger: &Ledger,
        id: &BackfillId,
    ) -> Result<Arc<Backfill>, StepError> {
        let read = async {
            match ledger.backfill(id).await? {
                Some(b) => Ok(Arc::new(b)),
                None => Err(StepError::Ledger(LedgerError::Corrupt(format!(
                    "partition of unknown backfill {id}"
                )))),
            }
        };
        self.backfills.get_or_read(id, read).await
    }

    /// The backfill's guards, re-read at most every second: they change at any time, so
    /// they are not taken from the immutable fields.
    pub(crate) async fn guards(
        &self,
        ledger: &Ledger,
        id: &BackfillId,
    ) -> Result<Guards, StepError> {
        let read = async {
            let backfill = ledger.backfill(id).await?;
            Ok(backfill.map(|b| b.guards).unwrap_or_default())
        };
        self.guards.get_or_read(id, read).await
    }

    /// The backfill's run lengths so far, re-read at most every 30 s once `enough` runs
    /// have finished, every second before (a failed read keeps the last known, or none:
    /// polling without history is only costlier).
    pub(crate) async fn run_history(
        &self,
        ledger: &Ledger,
        id: &BackfillId,
        enough: u32,
    ) -> RunHistory {
        let known = self.histories.last(id).filter(|h| h.finished >= enough);
        let cache = if known.is_some() {
            &self.histories
        } else {
            &self.young_histories
        };
        let read = async {
            let (n, shortest, mean) = ledger.run_lengths(id).await?;
            Ok::<_, LedgerError>(RunHistory {
                finished: u32::try_from(n).unwrap_or(u32::MAX),
                shortest: Duration::from_millis(shortest.max(0) as u64),
                mean: Duration::from_millis(mean.max(0) as u64),
            })
        };
        let failed = |e: LedgerError| {
            tracing::debug!(error = %e, "run history unavailable; polling without it");
        };
        let history = cache.get_or_read_or_last(id, read, failed).await;
        if known.is_none() && history.finished >= enough {
            self.histories.put(id.clone(), history);
        }
        history
    }

    /// A run of the backfill succeeded here: while too few runs have ended for polling
    /// to go by, the next read of its run lengths goes to the ledger rather than waiting
    /// out the second, so the runs triggered next are looked at as the history says at
    /// once.
    pub(crate) fn run_finished(&self, id: &BackfillId, enough: u32) {
        if self.histories.last(id).is_none_or(|h| h.finished < enough) {
            self.young_histories.stale(id);
        }
    }

    /// How many partitions of the backfill wait to start, re-counted at most every 2 s (a
    /// failed count keeps the last known, or none: the triggers then ask every
    /// `admission_delay`, as often as they ever did).
    pub(crate) async fn backlog(&self, ledger: &Ledger, id: &BackfillId) -> i64 {
        let read = async {
            let counts = ledger.state_counts(id).await?;
            Ok::<_, LedgerError>(
                [PartitionState::Pending, PartitionState::Failed]
                    .iter()
                    .map(|s| counts.get(s).copied().unwrap_or(0))
                    .sum(),
            )
        };
        let failed = |e: LedgerError| {
            tracing::debug!(error = %e, "backlog unavailable; asking at the base delay");
        };
        self.backlogs.get_or_read_or_last(id, read, failed).await
    }

    /// Notes that a trigger of the backfill was just sent round at the cap.
    pub(crate) fn held_at_cap(&self, id: &BackfillId) {
        self.at_cap.put(id.clone(), ());
    }

    /// Whether a trigger of the backfill was sent round at the cap in the last minute.
    pub(crate) fn lately_at_cap(&self, id: &BackfillId) -> bool {
        self.at_cap.fresh(id).is_some()
    }
}
