//! Promotion per partition attempt (SPEC invariant 10). A promotion action copies a set of
//! proven partition attempts, each at the staging version its run wrote; every partition of
//! it is an item. At most one live (requested or running) item per partition, so two
//! reconcilers never promote one partition twice at once and promotions of a partition
//! happen in order. A failed action frees its partitions for a new action, with a new token.

use backfill_contract::{BackfillId, PartitionDate, RunId, promotion_token};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::actions::move_action_in;
use crate::events::insert_event;
use crate::model::corrupt;
use crate::{Action, ActionState, Ledger, LedgerError, NewEvent, now_ms};

/// One partition attempt of a promotion action.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromotionItem {
    pub action_key: String,
    /// The action's sequence number: later promotions have larger ones.
    pub seq: i64,
    pub partition_date: String,
    pub attempt: i64,
    pub staging_version: i64,
    /// The action's state.
    pub state: ActionState,
    /// The target's version before and after this partition's commit, as reported.
    pub version_before: Option<i64>,
    pub version_after: Option<i64>,
    /// The rollback action that restored the partition to `version_before`.
    pub rolled_back_by: Option<String>,
}

/// The target's versions around one partition's promotion, as the promotion job reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromotedVersions {
    pub partition_date: String,
    pub version_before: Option<i64>,
    pub version_after: Option<i64>,
}

fn item_from_row(r: &AnyRow) -> Result<PromotionItem, LedgerError> {
    Ok(PromotionItem {
        action_key: r.try_get("action_key").map_err(corrupt)?,
        seq: r.try_get("seq").map_err(corrupt)?,
        partition_date: r.try_get("partition_date").map_err(corrupt)?,
        attempt: r.try_get("attempt").map_err(corrupt)?,
        staging_version: r.try_get("staging_version").map_err(corrupt)?,
        state: r.try_get::<String, _>("state").map_err(corrupt)?.parse()?,
        version_before: r.try_get("version_before").map_err(corrupt)?,
        version_after: r.try_get("version_after").map_err(corrupt)?,
        rolled_back_by: r.try_get("rolled_back_by").map_err(corrupt)?,
    })
}

/// Attempts at creating a promotion action before giving up on a crowd of racing
/// reconcilers (each failed attempt means another one created an action meanwhile).
const CREATE_TRIES: usize = 8;

impl Ledger {
    /// Creates a promotion action for the partition attempts in `wanted` (date, attempt,
    /// proven staging version) that no live action holds, with the next sequence number and
    /// a token of its own. `None` when every one of them is held by a live action already.
    pub async fn create_promotion(
        &self,
        backfill_id: &BackfillId,
        wanted: &[(PartitionDate, i64, i64)],
        contract_version: i64,
        ledger_id: &str,
        actor: &str,
    ) -> Result<Option<Action>, LedgerError> {
        for _ in 0..CREATE_TRIES {
            let mut tx = self.pool.begin().await?;
            // A write first: promotions, amendments and rollbacks of one backfill are
            // serialised (a row lock on PostgreSQL, the write lock on SQLite).
            sqlx::query("UPDATE backfills SET state = state WHERE backfill_id = $1")
                .bind(backfill_id.to_string())
                .execute(&mut *tx)
                .await?;
            let seq: i64 = sqlx::query_scalar(
                "SELECT CAST(COALESCE(MAX(seq), 0) + 1 AS BIGINT) FROM actions \
                 WHERE backfill_id = $1 AND kind = 'promote'",
            )
            .bind(backfill_id.to_string())
            .fetch_one(&mut *tx)
            .await?;
            let key = format!("promote-{seq}");
            let token = promotion_token(ledger_id, backfill_id, seq);
            let created = sqlx::query(
                "INSERT INTO actions (backfill_id, action_key, kind, seq, partitions, token, state, \
                 detail, actor, at_ms, contract_version) \
                 VALUES ($1, $2, 'promote', $3, '', $4, 'requested', '', $5, $6, $7) ON CONFLICT DO NOTHING",
            )
            .bind(backfill_id.to_string())
            .bind(key.clone())
            .bind(seq)
            .bind(token)
            .bind(actor.to_owned())
            .bind(now_ms())
            .bind(contract_version)
            .execute(&mut *tx)
            .await?;
            if created.rows_affected() == 0 {
                tx.rollback().await?;
                continue;
            }
            let mut taken = Vec::new();
            for (date, attempt, version) in wanted {
                // Only the partition's current attempt, still succeeded: the row is locked
                // until commit, so a re-run waits for this promotion and then sees it.
                let current = sqlx::query(
                    "UPDATE partitions SET updated_at_ms = updated_at_ms WHERE backfill_id = $1 \
                     AND partition_date = $2 AND attempt = $3 AND state = 'succeeded'",
                )
                .bind(backfill_id.to_string())
                .bind(date.to_string())
                .bind(*attempt)
                .execute(&mut *tx)
                .await?;
                if current.rows_affected() == 0 {
                    continue;
                }
                // Not while the partition is being rolled back.
                let rolling: Option<String> = sqlx::query_scalar(
                    "SELECT action_key FROM actions WHERE backfill_id = $1 AND kind = 'rollback' \
                     AND partitions = $2 AND state IN ('requested', 'running') LIMIT 1",
                )
                .bind(backfill_id.to_string())
                .bind(date.to_string())
                .fetch_optional(&mut *tx)
                .await?;
                if rolling.is_some() {
                    continue;
                }
                let done = sqlx::query(
                    "INSERT INTO promotion_items (backfill_id, action_key, partition_date, attempt, \
                     staging_version, state) VALUES ($1, $2, $3, $4, $5, 'requested') ON CONFLICT DO NOTHING",
                )
                .bind(backfill_id.to_string())
                .bind(key.clone())
                .bind(date.to_string())
                .bind(*attempt)
                .bind(*version)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 1 {
                    taken.push(format!("{date}@{version}"));
                }
            }
            if taken.is_empty() {
                tx.rollback().await?;
                return Ok(None);
            }
            let dates: Vec<&str> = taken
                .iter()
                .map(|t| t.split('@').next().unwrap_or_default())
                .collect();
            sqlx::query(
                "UPDATE actions SET partitions = $1 WHERE backfill_id = $2 AND action_key = $3",
            )
            .bind(dates.join(","))
            .bind(backfill_id.to_string())
            .bind(key.clone())
            .execute(&mut *tx)
            .await?;
            let event = NewEvent::backfill(actor, backfill_id, "action_requested").detail(format!(
                "promote {key} under contract version {contract_version}: {} (date@staging version)",
                taken.join(",")
            ));
            insert_event(&mut tx, &event).await?;
            tx.commit().await?;
            return self
                .action(backfill_id, &key)
                .await?
                .map(Some)
                .ok_or_else(|| LedgerError::Corrupt(format!("action {key} vanished")));
        }
        Err(LedgerError::Refused(format!(
            "{backfill_id}: could not create a promotion action after {CREATE_TRIES} tries (other reconcilers kept creating them)"
        )))
    }

    /// Every promotion item of the backfill, in the order the actions were created.
    pub async fn promotion_items(
        &self,
        backfill_id: &BackfillId,
    ) -> Result<Vec<PromotionItem>, LedgerError> {
        self.backfill_rows(
            "SELECT i.action_key, a.seq, i.partition_date, i.attempt, i.staging_version, i.state, \
             i.version_before, i.version_after, i.rolled_back_by \
             FROM promotion_items i JOIN actions a \
             ON a.backfill_id = i.backfill_id AND a.action_key = i.action_key \
             WHERE i.backfill_id = $1 ORDER BY a.seq, i.partition_date",
            backfill_id,
            item_from_row,
        )
        .await
    }

    /// Moves a promotion action to `succeeded` with the versions its run reported per
    /// partition, in one transaction. False when another reconciler finished it first.
    pub async fn complete_promotion(
        &self,
        backfill_id: &BackfillId,
        key: &str,
        run_id: RunId,
        detail: &str,
        versions: &[PromotedVersions],
        actor: &str,
    ) -> Result<bool, LedgerError> {
        let mut tx = self.pool.begin().await?;
        let moved = succeed_in(&mut tx, backfill_id, key, run_id, detail, actor).await?;
        if moved {
            for v in versions {
                sqlx::query(
                    "UPDATE promotion_items SET version_before = $1, version_after = $2 \
                     WHERE backfill_id = $3 AND action_key = $4 AND partition_date = $5",
                )
                .bind(v.version_before)
                .bind(v.version_after)
                .bind(backfill_id.to_string())
                .bind(key.to_owned())
                .bind(v.partition_date.clone())
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(moved)
    }

    /// Moves a rollback action to `succeeded` and marks the promotion it undid as rolled
    /// back for that partition, in one transaction.
    pub async fn complete_rollback(
        &self,
        backfill_id: &BackfillId,
        key: &str,
        run_id: RunId,
        detail: &str,
        undone: (&str, &str),
        actor: &str,
    ) -> Result<bool, LedgerError> {
        let (promotion_key, date) = undone;
        let mut tx = self.pool.begin().await?;
        let moved = succeed_in(&mut tx, backfill_id, key, run_id, detail, actor).await?;
        if moved {
            sqlx::query(
                "UPDATE promotion_items SET rolled_back_by = $1 \
                 WHERE backfill_id = $2 AND action_key = $3 AND partition_date = $4",
            )
            .bind(key.to_owned())
            .bind(backfill_id.to_string())
            .bind(promotion_key.to_owned())
            .bind(date.to_owned())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(moved)
    }
}

/// Moves a live action to `succeeded` with the run that did it, inside `tx`. False when
/// another reconciler finished it first.
async fn succeed_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    backfill_id: &BackfillId,
    key: &str,
    run_id: RunId,
    detail: &str,
    actor: &str,
) -> Result<bool, LedgerError> {
    let (from, to) = (&ActionState::LIVE, ActionState::Succeeded);
    move_action_in(tx, backfill_id, key, from, to, Some(run_id), detail, actor).await
}

/// Where a backfill's partitions stand towards production.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct PromotionCounts {
    /// The current attempt's proven snapshot is in production.
    pub promoted: i64,
    /// The current attempt passed the gate under the contract's policy and is not yet
    /// promoted (for example re-run after its promotion): the next `promote` promotes it.
    pub proven_not_promoted: i64,
    /// The current attempt was promoted, then rolled back.
    pub rolled_back: i64,
}

impl PromotionCounts {
    /// Label values and counts, every state present.
    pub fn as_pairs(&self) -> [(&'static str, i64); 3] {
        [
            ("promoted", self.promoted),
            ("proven_not_promoted", self.proven_not_promoted),
            ("rolled_back", self.rolled_back),
        ]
    }
}

impl Ledger {
    /// Counts partitions by where their current attempt stands towards production.
    pub async fn promotion_counts(
        &self,
        backfill_id: &BackfillId,
    ) -> Result<PromotionCounts, LedgerError> {
        let policy = self
            .contract(backfill_id)
            .await?
            .map(|c| c.contract.policy_key().to_owned());
        let rows = sqlx::query(
            "SELECT p.partition_date, p.attempt, f.staging_version, f.passed_policy \
             FROM partitions p JOIN proofs f ON f.backfill_id = p.backfill_id \
             AND f.partition_date = p.partition_date AND f.attempt = p.attempt \
             WHERE p.backfill_id = $1 AND p.state = 'succeeded'",
        )
        .bind(backfill_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        let items = self.promotion_items(backfill_id).await?;
        let mut counts = PromotionCounts::default();
        for r in &rows {
            let date: String = r.try_get(0).map_err(corrupt)?;
            let attempt: i64 = r.try_get(1).map_err(corrupt)?;
            let version: Option<i64> = r.try_get(2).map_err(corrupt)?;
            let passed: Option<String> = r.try_get(3).map_err(corrupt)?;
            let promoted = items.iter().rev().find(|i| {
                i.state == ActionState::Succeeded
                    && i.partition_date == date
                    && i.attempt == attempt
                    && Some(i.staging_version) == version
            });
            match promoted {
                Some(i) if i.rolled_back_by.is_some() => counts.rolled_back += 1,
                Some(_) => counts.promoted += 1,
                None if passed.is_some() && passed == policy => counts.proven_not_promoted += 1,
                None => {}
            }
        }
        Ok(counts)
    }
}
