//! The most recent backfills, one line each: `backfill status` without an id.

use backfill_contract::{BackfillId, PartitionDate};
use backfill_ledger::{BackfillState, Ledger, PartitionState, now_ms};
use serde::Serialize;

use super::counts::StateCounts;
use crate::error::OperationError;
use crate::lookup::load_backfill;

/// One backfill in the listing (the `--json` shape).
#[derive(Debug, Clone, Serialize)]
pub struct BackfillLine {
    pub backfill_id: BackfillId,
    pub state: BackfillState,
    pub start: PartitionDate,
    pub end: PartitionDate,
    pub total: i64,
    /// Counts by partition state (every state present).
    pub states: StateCounts,
    /// Partitions that reached an end (succeeded, dead-lettered, cancelled), in percent.
    pub progress_pct: f64,
}

/// The `limit` most recently registered backfills, newest first.
pub async fn recent_backfills(
    ledger: &Ledger,
    limit: i64,
) -> Result<Vec<BackfillLine>, OperationError> {
    let ids = ledger.recent_backfills(limit).await?;
    let mut lines = Vec::new();
    for id in &ids {
        let backfill = load_backfill(ledger, id).await?;
        let summary = ledger.partition_summary(id, now_ms()).await?;
        let total = summary.total();
        let ended = summary.count(PartitionState::Succeeded)
            + summary.count(PartitionState::DeadLettered)
            + summary.count(PartitionState::Cancelled);
        lines.push(BackfillLine {
            backfill_id: id.clone(),
            state: backfill.state,
            start: backfill.start,
            end: backfill.end,
            total,
            states: StateCounts::from(summary.states),
            progress_pct: if total > 0 {
                (ended as f64 * 1000.0 / total as f64).round() / 10.0
            } else {
                0.0
            },
        });
    }
    Ok(lines)
}
