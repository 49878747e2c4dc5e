//! What the reconciler records: data-quality evaluations, promotion and rollback actions
//! (each created once, by compare-and-set, and moved along by compare-and-set), and the
//! operator's approval.

use backfill_contract::BackfillId;
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::events::insert_event;
use crate::model::corrupt;
use crate::{Ledger, LedgerError, NewEvent, PartitionKey, now_ms};

/// One rule's verdict on one partition's attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DqResult {
    pub partition_date: String,
    pub attempt: i64,
    pub run_id: i64,
    pub rule: String,
    pub passed: bool,
    pub value: String,
    pub threshold: String,
    /// The policy (its SHA-256) the verdict was reached under.
    pub policy_hash: String,
}

/// A promotion wave or a partition's rollback.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Action {
    pub action_key: String,
    pub kind: String,
    pub seq: i64,
    pub partitions: Vec<String>,
    pub token: String,
    /// `requested`, `running`, `succeeded`, `failed`.
    pub state: String,
    pub run_id: Option<i64>,
    /// What the action's run reported (table versions), as JSON text.
    pub detail: String,
    pub actor: String,
    pub at_ms: i64,
    /// The contract version the action was started under.
    pub contract_version: Option<i64>,
}

fn action_from_row(r: &AnyRow) -> Result<Action, LedgerError> {
    let partitions: String = r.try_get("partitions").map_err(corrupt)?;
    Ok(Action {
        action_key: r.try_get("action_key").map_err(corrupt)?,
        kind: r.try_get("kind").map_err(corrupt)?,
        seq: r.try_get("seq").map_err(corrupt)?,
        partitions: partitions
            .split(',')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect(),
        token: r.try_get("token").map_err(corrupt)?,
        state: r.try_get("state").map_err(corrupt)?,
        run_id: r.try_get("run_id").map_err(corrupt)?,
        detail: r.try_get("detail").map_err(corrupt)?,
        actor: r.try_get("actor").map_err(corrupt)?,
        at_ms: r.try_get("at_ms").map_err(corrupt)?,
        contract_version: r.try_get("contract_version").map_err(corrupt)?,
    })
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
            .bind(r.run_id)
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
        let rows = sqlx::query(
            "SELECT partition_date, attempt, run_id, rule, passed, value, threshold, policy_hash FROM dq_results \
             WHERE backfill_id = $1 ORDER BY result_id",
        )
        .bind(backfill_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DqResult {
                    partition_date: r.try_get("partition_date").map_err(corrupt)?,
                    attempt: r.try_get("attempt").map_err(corrupt)?,
                    run_id: r.try_get("run_id").map_err(corrupt)?,
                    rule: r.try_get("rule").map_err(corrupt)?,
                    passed: r.try_get::<i64, _>("passed").map_err(corrupt)? != 0,
                    value: r.try_get("value").map_err(corrupt)?,
                    threshold: r.try_get("threshold").map_err(corrupt)?,
                    policy_hash: r.try_get("policy_hash").map_err(corrupt)?,
                })
            })
            .collect()
    }

    /// Creates the action unless it exists; returns the stored action either way, so that
    /// racing reconcilers share one action (and one idempotency token).
    #[allow(clippy::too_many_arguments)] // one row, its fields
    pub async fn create_action(
        &self,
        backfill_id: &BackfillId,
        key: &str,
        kind: &str,
        seq: i64,
        partitions: &[String],
        token: &str,
        contract_version: Option<i64>,
        actor: &str,
    ) -> Result<Action, LedgerError> {
        let mut tx = self.pool.begin().await?;
        // A write first: serialised with promotions and amendments of the backfill.
        sqlx::query("UPDATE backfills SET state = state WHERE backfill_id = $1")
            .bind(backfill_id.to_string())
            .execute(&mut *tx)
            .await?;
        if kind == "rollback" {
            for p in partitions {
                let live: Option<String> = sqlx::query_scalar(
                    "SELECT action_key FROM promotion_items WHERE backfill_id = $1 \
                     AND partition_date = $2 AND state IN ('requested', 'running') LIMIT 1",
                )
                .bind(backfill_id.to_string())
                .bind(p.clone())
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(action) = live {
                    return Err(LedgerError::Refused(format!(
                        "partition {p} is being promoted ({action}); let `backfill promote` finish it before rolling back"
                    )));
                }
            }
        }
        let created = sqlx::query(
            "INSERT INTO actions (backfill_id, action_key, kind, seq, partitions, token, state, detail, actor, at_ms, contract_version) \
             VALUES ($1, $2, $3, $4, $5, $6, 'requested', '', $7, $8, $9) ON CONFLICT DO NOTHING",
        )
        .bind(backfill_id.to_string())
        .bind(key.to_owned())
        .bind(kind.to_owned())
        .bind(seq)
        .bind(partitions.join(","))
        .bind(token.to_owned())
        .bind(actor.to_owned())
        .bind(now_ms())
        .bind(contract_version)
        .execute(&mut *tx)
        .await?;
        if created.rows_affected() == 1 {
            let event = NewEvent::backfill(actor, backfill_id, "action_requested")
                .detail(format!("{kind} {key}: {}", partitions.join(",")));
            insert_event(&mut tx, &event).await?;
        }
        tx.commit().await?;
        self.action(backfill_id, key)
            .await?
            .ok_or_else(|| LedgerError::Corrupt(format!("action {key} vanished")))
    }

    pub async fn action(
        &self,
        backfill_id: &BackfillId,
        key: &str,
    ) -> Result<Option<Action>, LedgerError> {
        let row = sqlx::query("SELECT * FROM actions WHERE backfill_id = $1 AND action_key = $2")
            .bind(backfill_id.to_string())
            .bind(key.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(action_from_row).transpose()
    }

    pub async fn actions(&self, backfill_id: &BackfillId) -> Result<Vec<Action>, LedgerError> {
        let rows = sqlx::query(
            "SELECT * FROM actions WHERE backfill_id = $1 ORDER BY seq, at_ms, action_key",
        )
        .bind(backfill_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(action_from_row).collect()
    }

    /// Moves an action from one of `from` to `to` (recording its run and what it reported);
    /// false when it was no longer in `from` (another reconciler moved it). A promotion's
    /// items move with it.
    #[allow(clippy::too_many_arguments)] // one compare-and-set, its fields
    pub async fn move_action(
        &self,
        backfill_id: &BackfillId,
        key: &str,
        from: &[&str],
        to: &str,
        run_id: Option<i64>,
        detail: &str,
        actor: &str,
    ) -> Result<bool, LedgerError> {
        let mut tx = self.pool.begin().await?;
        let moved =
            move_action_in(&mut tx, backfill_id, key, from, to, run_id, detail, actor).await?;
        tx.commit().await?;
        Ok(moved)
    }

    /// Records an operator's approval of promotion under contract version
    /// `contract_version` (once; the first approver is kept). An amendment needs approving
    /// again.
    pub async fn approve(
        &self,
        backfill_id: &BackfillId,
        contract_version: i64,
        by: &str,
    ) -> Result<bool, LedgerError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "INSERT INTO contract_approvals (backfill_id, contract_version, approved_by, at_ms) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(backfill_id.to_string())
        .bind(contract_version)
        .bind(by.to_owned())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        let created = done.rows_affected() == 1;
        if created {
            insert_event(
                &mut tx,
                &NewEvent::backfill(by, backfill_id, "promotion_approved")
                    .detail(format!("under contract version {contract_version}")),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(created)
    }

    /// Who approved promotion under contract version `contract_version`, if anyone.
    pub async fn approval(
        &self,
        backfill_id: &BackfillId,
        contract_version: i64,
    ) -> Result<Option<String>, LedgerError> {
        Ok(sqlx::query_scalar(
            "SELECT approved_by FROM contract_approvals WHERE backfill_id = $1 AND contract_version = $2",
        )
        .bind(backfill_id.to_string())
        .bind(contract_version)
        .fetch_optional(&self.pool)
        .await?)
    }
}

/// [`Ledger::move_action`] inside a transaction.
#[allow(clippy::too_many_arguments)] // one compare-and-set, its fields
pub(crate) async fn move_action_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    backfill_id: &BackfillId,
    key: &str,
    from: &[&str],
    to: &str,
    run_id: Option<i64>,
    detail: &str,
    actor: &str,
) -> Result<bool, LedgerError> {
    const STATES: [&str; 4] = ["requested", "running", "succeeded", "failed"];
    if let Some(bad) = from.iter().chain([&to]).find(|s| !STATES.contains(s)) {
        return Err(LedgerError::Corrupt(format!("action state {bad:?}")));
    }
    let list: Vec<String> = from.iter().map(|s| format!("'{s}'")).collect();
    let sql = format!(
        "UPDATE actions SET state = $1, run_id = COALESCE($2, run_id), detail = $3 \
         WHERE backfill_id = $4 AND action_key = $5 AND state IN ({})",
        list.join(", ")
    );
    // Built from the fixed state names checked above; values are bound.
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(to.to_owned())
        .bind(run_id)
        .bind(detail.to_owned())
        .bind(backfill_id.to_string())
        .bind(key.to_owned())
        .execute(&mut **tx)
        .await?;
    let moved = done.rows_affected() == 1;
    if moved {
        sqlx::query(
            "UPDATE promotion_items SET state = $1 WHERE backfill_id = $2 AND action_key = $3",
        )
        .bind(to.to_owned())
        .bind(backfill_id.to_string())
        .bind(key.to_owned())
        .execute(&mut **tx)
        .await?;
        let event = NewEvent::backfill(actor, backfill_id, "action_state")
            .run(run_id)
            .detail(format!("{key} {to} {detail}"));
        insert_event(tx, &event).await?;
    }
    Ok(moved)
}
