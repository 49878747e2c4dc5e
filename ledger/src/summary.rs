//! Figures of a backfill computed by the database, so that whoever watches it (status,
//! the metrics collector of every process) holds a few numbers, not one row per partition.

use std::collections::BTreeMap;

use backfill_contract::BackfillId;
use sqlx::Row;

use crate::model::{corrupt, two_columns};
use crate::{ActionKind, ActionState, Ledger, LedgerError, PartitionState};

/// Aggregates over a backfill's partitions.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionSummary {
    /// Partitions in each state (every state present, zero included).
    pub states: BTreeMap<PartitionState, i64>,
    /// Partitions the reconciler proved against Databricks.
    pub verified: i64,
    /// Attempts beyond the first, summed over partitions.
    pub retries: i64,
    /// Runs of every attempt that finished with both a start and an end time.
    pub finished_runs: i64,
    /// Run-milliseconds charged over every attempt: finished runs' lengths (a run ending
    /// before it started counts 0), and an upper bound for runs cancelled or given up
    /// while they ran. Never goes down.
    pub run_ms: i64,
    /// Partitions that reached a terminal state at or after `since_ms`.
    pub finished_since: i64,
    /// When the first run of the backfill was triggered.
    pub first_triggered_ms: Option<i64>,
}

impl PartitionSummary {
    pub fn total(&self) -> i64 {
        self.states.values().sum()
    }

    pub fn count(&self, state: PartitionState) -> i64 {
        self.states.get(&state).copied().unwrap_or(0)
    }

    /// Triggering or running: holding a Databricks run or about to.
    pub fn active(&self) -> i64 {
        self.count(PartitionState::Triggering) + self.count(PartitionState::Running)
    }

    /// Not yet in a terminal state.
    pub fn unfinished(&self) -> i64 {
        self.states
            .iter()
            .filter(|(s, _)| !s.is_terminal())
            .map(|(_, n)| n)
            .sum()
    }
}

impl Ledger {
    /// The backfill's partitions in aggregate; `since_ms` bounds `finished_since`.
    pub async fn partition_summary(
        &self,
        backfill_id: &BackfillId,
        since_ms: i64,
    ) -> Result<PartitionSummary, LedgerError> {
        let states = self.state_counts(backfill_id).await?;
        let row = sqlx::query(
            "SELECT CAST(COUNT(verified_at_ms) AS BIGINT), \
             CAST(COALESCE(SUM(attempt - 1), 0) AS BIGINT), \
             CAST(COALESCE(SUM(runs_finished), 0) AS BIGINT), \
             CAST(COALESCE(SUM(spent_run_ms), 0) AS BIGINT), \
             CAST(COUNT(CASE WHEN state IN ('succeeded', 'dead_lettered', 'cancelled') \
               AND updated_at_ms > $2 THEN 1 END) AS BIGINT), \
             CAST(MIN(triggered_at_ms) AS BIGINT) \
             FROM partitions WHERE backfill_id = $1",
        )
        .bind(backfill_id.to_string())
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(PartitionSummary {
            states,
            verified: row.try_get(0).map_err(corrupt)?,
            retries: row.try_get(1).map_err(corrupt)?,
            finished_runs: row.try_get(2).map_err(corrupt)?,
            run_ms: row.try_get(3).map_err(corrupt)?,
            finished_since: row.try_get(4).map_err(corrupt)?,
            first_triggered_ms: row.try_get(5).map_err(corrupt)?,
        })
    }

    /// Per data-quality rule, how many partitions fail it by their latest verdict (the
    /// highest attempt, and of that the last recorded).
    pub async fn dq_failing(
        &self,
        backfill_id: &BackfillId,
    ) -> Result<Vec<(String, i64)>, LedgerError> {
        self.backfill_rows("SELECT d.rule, CAST(SUM(CASE WHEN d.passed = 0 THEN 1 ELSE 0 END) AS BIGINT) \
             FROM dq_results d WHERE d.backfill_id = $1 AND NOT EXISTS ( \
               SELECT 1 FROM dq_results n WHERE n.backfill_id = d.backfill_id \
               AND n.partition_date = d.partition_date AND n.rule = d.rule \
               AND (n.attempt > d.attempt OR (n.attempt = d.attempt AND n.result_id > d.result_id))) \
             GROUP BY d.rule ORDER BY d.rule", backfill_id, two_columns).await
    }

    /// Promotion and rollback actions counted by kind and state.
    pub async fn action_counts(
        &self,
        backfill_id: &BackfillId,
    ) -> Result<Vec<(ActionKind, ActionState, i64)>, LedgerError> {
        self.backfill_rows(
            "SELECT kind, state, CAST(COUNT(*) AS BIGINT) FROM actions WHERE backfill_id = $1 \
             GROUP BY kind, state ORDER BY kind, state",
            backfill_id,
            |r| {
                let (kind, state): (String, String) = two_columns(r)?;
                Ok((
                    kind.parse()?,
                    state.parse()?,
                    r.try_get(2).map_err(corrupt)?,
                ))
            },
        )
        .await
    }
}
