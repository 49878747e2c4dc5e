//! The proof of a partition attempt (SPEC invariant 10): what its run reported, above all
//! the staging snapshot (Delta version) it wrote, and the policy whose every rule it passed.
//! Promotion copies exactly that snapshot.

use backfill_contract::{Attempt, BackfillId, RunId};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::events::insert_event;
use crate::model::corrupt;
use crate::{Ledger, LedgerError, NewEvent, PartitionKey, now_ms};

/// What one attempt's run reported, and whether it passed the gate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Proof {
    pub partition_date: String,
    pub attempt: i64,
    pub run_id: RunId,
    pub staging_table: Option<String>,
    pub staging_version: Option<i64>,
    /// The run's task output as reported (a JSON object's text).
    pub output_json: String,
    /// The policy key (hash, or `-` without a policy) it last passed every rule of.
    pub passed_policy: Option<String>,
}

fn proof_from_row(r: &AnyRow) -> Result<Proof, LedgerError> {
    Ok(Proof {
        partition_date: r.try_get("partition_date").map_err(corrupt)?,
        attempt: r.try_get("attempt").map_err(corrupt)?,
        run_id: RunId::from(r.try_get::<i64, _>("run_id").map_err(corrupt)?),
        staging_table: r.try_get("staging_table").map_err(corrupt)?,
        staging_version: r.try_get("staging_version").map_err(corrupt)?,
        output_json: r.try_get("output_json").map_err(corrupt)?,
        passed_policy: r.try_get("passed_policy").map_err(corrupt)?,
    })
}

impl Ledger {
    /// Records what an attempt's run reported (once: a run's output never changes).
    #[allow(clippy::too_many_arguments)] // one row, its fields
    pub async fn record_proof(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        run_id: RunId,
        staging_table: Option<&str>,
        staging_version: Option<i64>,
        output_json: &str,
        actor: &str,
    ) -> Result<(), LedgerError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "INSERT INTO proofs (backfill_id, partition_date, attempt, run_id, staging_table, \
             staging_version, output_json, at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT DO NOTHING",
        )
        .bind(key.backfill_id.to_string())
        .bind(key.date.to_string())
        .bind(i64::from(attempt.get()))
        .bind(run_id.get())
        .bind(staging_table.map(str::to_owned))
        .bind(staging_version)
        .bind(output_json.to_owned())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 1 {
            let event = NewEvent::partition(actor, key, attempt, "output_recorded")
                .run(Some(run_id))
                .detail(match (staging_table, staging_version) {
                    (Some(t), Some(v)) => format!("wrote {t} version {v}"),
                    _ => "reported no staging snapshot".to_owned(),
                });
            insert_event(&mut tx, &event).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records that the attempt passed every rule of the policy `policy_key`.
    pub async fn pass_gate(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        policy_key: &str,
        actor: &str,
    ) -> Result<(), LedgerError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE proofs SET passed_policy = $1 WHERE backfill_id = $2 AND partition_date = $3 \
             AND attempt = $4 AND (passed_policy IS NULL OR passed_policy <> $1)",
        )
        .bind(policy_key.to_owned())
        .bind(key.backfill_id.to_string())
        .bind(key.date.to_string())
        .bind(i64::from(attempt.get()))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 1 {
            let detail = if policy_key == "-" {
                "proven without a data-quality policy (the contract records none)".to_owned()
            } else {
                format!("passed every rule of policy sha256 {policy_key}")
            };
            let event = NewEvent::partition(actor, key, attempt, "proven").detail(detail);
            insert_event(&mut tx, &event).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every recorded proof of the backfill, oldest partition and attempt first.
    pub async fn proofs(&self, backfill_id: &BackfillId) -> Result<Vec<Proof>, LedgerError> {
        self.backfill_rows(
            "SELECT partition_date, attempt, run_id, staging_table, staging_version, output_json, \
             passed_policy FROM proofs WHERE backfill_id = $1 ORDER BY partition_date, attempt",
            backfill_id,
            proof_from_row,
        )
        .await
    }
}
