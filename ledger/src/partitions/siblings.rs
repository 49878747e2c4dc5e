//! Runs started together end together: when one run of a backfill without a history of
//! run lengths ends, the checks of the runs triggered with it are made due now.

use backfill_contract::{Attempt, BackfillId, CheckSeq, PartitionDate, RunId};
use sqlx::Row;

use crate::model::corrupt;
use crate::{Ledger, LedgerError};

/// A running partition whose chain of checks was restarted to look at its run now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sibling {
    pub date: PartitionDate,
    pub attempt: Attempt,
    pub run_id: RunId,
    /// The sequence of the new chain's first check.
    pub check_seq: CheckSeq,
}

impl Ledger {
    /// Restarts the chain of checks of every running partition of the backfill triggered
    /// between `from_ms` and `to_ms` whose next check is due after `later_than_ms`: its
    /// `check_seq` is bumped (the waiting check message dies on arrival) and the check is
    /// due at `now_ms`, for the caller to publish. Partitions whose check is due sooner
    /// are left alone, so runs ending together do not restart each other's checks in
    /// turn. Not an event: no state changes.
    pub async fn restart_sibling_checks(
        &self,
        backfill_id: &BackfillId,
        (from_ms, to_ms): (i64, i64),
        now_ms: i64,
        later_than_ms: i64,
    ) -> Result<Vec<Sibling>, LedgerError> {
        let rows = sqlx::query(
            "UPDATE partitions SET check_seq = check_seq + 1, check_due_ms = $4 \
             WHERE backfill_id = $1 AND state = 'running' AND run_id IS NOT NULL \
             AND triggered_at_ms BETWEEN $2 AND $3 AND check_due_ms > $5 \
             RETURNING partition_date, attempt, run_id, check_seq",
        )
        .bind(backfill_id.to_string())
        .bind(from_ms)
        .bind(to_ms)
        .bind(now_ms)
        .bind(later_than_ms.max(now_ms))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let date: String = r.try_get(0).map_err(corrupt)?;
                let attempt: i64 = r.try_get(1).map_err(corrupt)?;
                let attempt = u32::try_from(attempt).map_err(corrupt)?;
                Ok(Sibling {
                    date: date.parse().map_err(corrupt)?,
                    attempt: Attempt::try_from(attempt).map_err(corrupt)?,
                    run_id: RunId::from(r.try_get::<i64, _>(2).map_err(corrupt)?),
                    check_seq: CheckSeq::from(r.try_get::<i64, _>(3).map_err(corrupt)?),
                })
            })
            .collect()
    }
}
