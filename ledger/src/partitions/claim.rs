//! Claiming a partition's attempt for triggering (the guards inside the claim's
//! transaction: backfill state, concurrency cap, budget) and taking over a lost claim.

use backfill_contract::Attempt;
use sqlx::Row;

use crate::model::corrupt;
use crate::partitions::cas::{Bind, Cas};
use crate::{
    BackfillState, HoldReason, Ledger, LedgerError, NewEvent, PartitionKey, PartitionState, now_ms,
};

/// The result of trying to claim a partition for triggering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This caller holds the attempt; it may call `run-now` with the recorded token.
    Claimed,
    /// The backfill already has `cap` runs active fleet-wide; try again later.
    AtCapacity { active: i64, cap: i64 },
    /// The backfill is paused or cancelled; nothing may start.
    NotActive(BackfillState),
    /// The partition is no longer as expected: someone else claimed it or it moved on.
    Lost,
    /// A guard holds new runs back: which one, and in words.
    Held { reason: HoldReason, detail: String },
}

/// Spend so far plus what the active runs and one more will cost at the average run
/// length seen so far (no finished run yet: no projection, nothing held).
pub fn spend_with_next_run(
    spent_ms: i64,
    finished: i64,
    active: i64,
    price_per_run_hour: f64,
) -> f64 {
    let average = if finished > 0 {
        spent_ms as f64 / finished as f64
    } else {
        0.0
    };
    (spent_ms as f64 + (active + 1) as f64 * average) / 3_600_000.0 * price_per_run_hour
}

impl Ledger {
    /// pending/failed → triggering: claims the attempt and records its idempotency token
    /// before any `run-now`. Only one claimant of an attempt succeeds, and only while the
    /// backfill is active and below its concurrency cap across the whole fleet: the
    /// backfill row is locked first, so concurrent claims are counted one at a time.
    pub async fn claim_trigger(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        token: &str,
        owner: &str,
    ) -> Result<Claim, LedgerError> {
        if self.is_sqlite()
            && let Some(claim) = self.claim_batched(key, attempt, token, owner).await?
        {
            return Ok(claim);
        }
        let mut tx = self.pool.begin().await?;
        let locked = sqlx::query(
            "UPDATE backfills SET state = state WHERE backfill_id = $1 \
             RETURNING state, concurrency_cap, price_per_run_hour, budget",
        )
        .bind(key.backfill_id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(locked) = locked else {
            tx.rollback().await?;
            return Ok(Claim::Lost);
        };
        let state: BackfillState = locked.try_get::<String, _>(0).map_err(corrupt)?.parse()?;
        let cap: i64 = locked.try_get(1).map_err(corrupt)?;
        if state != BackfillState::Active {
            tx.rollback().await?;
            return Ok(Claim::NotActive(state));
        }
        let active: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM partitions WHERE backfill_id = $1 \
             AND state IN ('triggering', 'running')",
        )
        .bind(key.backfill_id.to_string())
        .fetch_one(&mut *tx)
        .await?;
        if active >= cap {
            tx.rollback().await?;
            return Ok(Claim::AtCapacity { active, cap });
        }
        let price: Option<f64> = locked.try_get(2).map_err(corrupt)?;
        let budget: Option<f64> = locked.try_get(3).map_err(corrupt)?;
        if let (Some(price), Some(budget)) = (price, budget) {
            // Every attempt's runs, failed, dead-lettered and cancelled ones included.
            let row = sqlx::query(
                "SELECT CAST(COALESCE(SUM(spent_run_ms), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(runs_finished), 0) AS BIGINT) FROM partitions \
                 WHERE backfill_id = $1",
            )
            .bind(key.backfill_id.to_string())
            .fetch_one(&mut *tx)
            .await?;
            let (spent_ms, finished): (i64, i64) = (
                row.try_get(0).map_err(corrupt)?,
                row.try_get(1).map_err(corrupt)?,
            );
            let projected = spend_with_next_run(spent_ms, finished, active, price);
            if projected > budget {
                tx.rollback().await?;
                return Ok(Claim::Held {
                    reason: HoldReason::Budget,
                    detail: format!(
                        "budget: projected spend {projected:.2} with this run would exceed the budget of {budget:.2}"
                    ),
                });
            }
        }
        let (cas, event) = claim_cas(key, attempt, token, owner);
        if Self::apply_in(&mut tx, cas, Some(event)).await?.is_none() {
            tx.rollback().await?;
            return Ok(Claim::Lost);
        }
        tx.commit().await?;
        Ok(Claim::Claimed)
    }

    /// SQLite: the claim as one job of the group commit. The compare-and-set runs only
    /// while the backfill is active, below its cap and without a budget; a claim that did
    /// not happen reads the guards in the same transaction, to say why as the long way
    /// would. A
    /// backfill with a budget (its projection is computed here, not in SQL) takes the
    /// long way: `None`.
    async fn claim_batched(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        token: &str,
        owner: &str,
    ) -> Result<Option<Claim>, LedgerError> {
        // `$1` is the backfill id (`Cas::on`).
        const ACTIVE: &str = "(SELECT COUNT(*) FROM partitions WHERE backfill_id = $1 \
             AND state IN ('triggering', 'running'))";
        let (mut cas, event) = claim_cas(key, attempt, token, owner);
        cas.wheres.push(format!(
            "EXISTS (SELECT 1 FROM backfills b WHERE b.backfill_id = $1 \
             AND b.state = 'active' AND b.concurrency_cap > {ACTIVE} \
             AND (b.price_per_run_hour IS NULL OR b.budget IS NULL))"
        ));
        // Read only when the claim did not happen (the event's insert changed nothing),
        // to say why; the same transaction, so as the compare-and-set saw them.
        let guards = format!(
            "SELECT state, concurrency_cap, \
             price_per_run_hour IS NOT NULL AND budget IS NOT NULL, {ACTIVE} \
             FROM backfills WHERE backfill_id = $1 AND changes() = 0"
        );
        let rows = self
            .group
            .run(&self.pool, cas.job(Some(event), &[&guards]))
            .await?;
        if rows.first().is_some_and(|rows| !rows.is_empty()) {
            return Ok(Some(Claim::Claimed));
        }
        let Some(guards) = rows.get(2).and_then(|rows| rows.first()) else {
            return Ok(Some(Claim::Lost));
        };
        let state: BackfillState = guards.try_get::<String, _>(0).map_err(corrupt)?.parse()?;
        let cap: i64 = guards.try_get(1).map_err(corrupt)?;
        let budgeted: bool = guards.try_get::<i64, _>(2).map_err(corrupt)? != 0;
        let active: i64 = guards.try_get(3).map_err(corrupt)?;
        Ok(if state != BackfillState::Active {
            Some(Claim::NotActive(state))
        } else if active >= cap {
            Some(Claim::AtCapacity { active, cap })
        } else if budgeted {
            None
        } else {
            Some(Claim::Lost)
        })
    }

    /// Re-takes a claim whose owner is gone (its trigger message came back to another
    /// worker); the token stays, so `run-now` returns the run the first owner started.
    pub async fn take_over_trigger(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        owner: &str,
    ) -> Result<bool, LedgerError> {
        let cas = Cas::on(key, attempt)
            .expect_state(&[PartitionState::Triggering])
            .set("owner", Bind::Text(owner.to_owned()))
            .set("triggered_at_ms", Bind::Int(now_ms()))
            .set("check_due_ms", Bind::Int(now_ms()));
        let event = NewEvent::partition(owner, key, attempt, "claim_taken_over");
        Ok(self.apply(cas, event).await?.is_some())
    }
}

/// pending/failed → triggering with the token recorded, and its event.
fn claim_cas(key: &PartitionKey, attempt: Attempt, token: &str, owner: &str) -> (Cas, NewEvent) {
    let now = now_ms();
    let cas = Cas::on(key, attempt)
        .expect_state(&[PartitionState::Pending, PartitionState::Failed])
        .move_to(PartitionState::Triggering)
        .set("idempotency_token", Bind::Text(token.to_owned()))
        .set("owner", Bind::Text(owner.to_owned()))
        .set("triggered_at_ms", Bind::Int(now))
        .set("check_due_ms", Bind::Int(now))
        .set_expr("reissues = 0")
        .set_expr("outage_since_ms = NULL")
        .set("run_id", Bind::OptInt(None))
        .set("run_url", Bind::OptText(None));
    let event = NewEvent::partition(owner, key, attempt, "claimed")
        .detail(format!("idempotency token {token}"));
    (cas, event)
}
