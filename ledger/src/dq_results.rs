//! Data-quality verdicts: every rule's verdict on a partition's attempt, stored under the
//! policy it was reached with, an event per verdict.

use backfill_contract::{BackfillId, RunId};
use serde::Serialize;
use sqlx::Row;

use crate::events::insert_event;
use crate::model::corrupt;
use crate::{Ledger, LedgerError, NewEvent, PartitionKey, now_ms};

/// One rule's verdict on one partition's attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DqResult {
    pub partition_date: String,
    pub attempt: i64,
    pub run_id: RunId,
    pub rule: String,
    pub passed: bool,
    pub value: String,
    pub threshold: String,
    /// The policy (its SHA-256) the verdict was reached under.
    pub policy_hash: String,
}

impl Ledger {
    /// Stores one evaluation of a partition's attempt (every rule, passed or not), with an
    /// event per failed rule.
    pub async fn record_dq(
        &self,
        key: &PartitionKey,
        attempt: backfill_contract::Attempt,
        actor: &str,
        results: &[DqResult],
    ) -> Result<(), LedgerError> {
        let mut tx = self.pool.begin().await?;
        for r in results {
            sqlx::query(
                "INSERT INTO dq_results (backfill_id, partition_date, attempt, run_id, rule, passed, value, threshold, at_ms, policy_hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(key.backfill_id.to_string())
            .bind(key.date.to_string())
            .bind(r.attempt)
            .bind(r.run_id.get())
            .bind(r.rule.clone())
            .bind(i64::from(r.passed))
            .bind(r.value.clone())
            .bind(r.threshold.clone())
            .bind(now_ms())
            .bind(r.policy_hash.clone())
            .execute(&mut *tx)
            .await?;
            let kind = if r.passed {
                "dq_rule_passed"
            } else {
                "dq_rule_failed"
            };
            let event = NewEvent::partition(actor, key, attempt, kind)
                .run(Some(r.run_id))
                .detail(format!(
                    "{}: value {} against {}",
                    r.rule, r.value, r.threshold
                ));
            insert_event(&mut tx, &event).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The evaluations of every partition's attempts, oldest first.
    pub async fn dq_results(&self, backfill_id: &BackfillId) -> Result<Vec<DqResult>, LedgerError> {
        self.backfill_rows("SELECT partition_date, attempt, run_id, rule, passed, value, threshold, policy_hash FROM dq_results \
             WHERE backfill_id = $1 ORDER BY result_id", backfill_id, |r| {
                Ok(DqResult {
                    partition_date: r.try_get("partition_date").map_err(corrupt)?,
                    attempt: r.try_get("attempt").map_err(corrupt)?,
                    run_id: RunId::from(r.try_get::<i64, _>("run_id").map_err(corrupt)?),
                    rule: r.try_get("rule").map_err(corrupt)?,
                    passed: r.try_get::<i64, _>("passed").map_err(corrupt)? != 0,
                    value: r.try_get("value").map_err(corrupt)?,
                    threshold: r.try_get("threshold").map_err(corrupt)?,
                    policy_hash: r.try_get("policy_hash").map_err(corrupt)?,
                })
            }).await
    }
}
