//! What operators do to partitions: cancel them (with their backfill) and ask for a new
//! attempt of a finished one.

use backfill_contract::Attempt;

use crate::partitions::cas::{Bind, Cas};
use crate::{Ledger, LedgerError, NewEvent, PartitionKey, PartitionState, now_ms};

impl Ledger {
    /// pending/failed → cancelled (nothing runs for it); used when its backfill is cancelled.
    pub async fn cancel_partition(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        actor: &str,
        why: &str,
    ) -> Result<bool, LedgerError> {
        let waiting = [PartitionState::Pending, PartitionState::Failed];
        self.cancel_from(key, attempt, &waiting, actor, why).await
    }

    /// Any non-terminal state → cancelled, by an operator cancelling the backfill (its
    /// run, if any, is cancelled through `runs/cancel` by the caller).
    pub async fn cancel_active(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        actor: &str,
        why: &str,
    ) -> Result<bool, LedgerError> {
        let unfinished = [
            PartitionState::Pending,
            PartitionState::Triggering,
            PartitionState::Running,
            PartitionState::Failed,
        ];
        self.cancel_from(key, attempt, &unfinished, actor, why)
            .await
    }

    /// One of `from` → cancelled, with the reason.
    async fn cancel_from(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        from: &[PartitionState],
        actor: &str,
        why: &str,
    ) -> Result<bool, LedgerError> {
        // The run of a claimed or running partition is being cancelled: its end is not
        // known here, so the spend counts it up to now (an upper bound).
        let cas = Cas::on(key, attempt)
            .expect_state(from)
            .add_unfinished_run(now_ms())
            .move_to(PartitionState::Cancelled)
            .set("last_error", Bind::Text(why.to_owned()));
        let event = NewEvent::partition(actor, key, attempt, "cancelled").detail(why);
        Ok(self.apply(cas, event).await?.is_some())
    }

    /// An operator's deliberate new attempt (for example after a failed data-quality
    /// gate): succeeded/dead_lettered/cancelled → failed with the next attempt number.
    pub async fn request_rerun(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        actor: &str,
        why: &str,
    ) -> Result<bool, LedgerError> {
        let cas = Cas::on(key, attempt)
            .expect_state(&[
                PartitionState::Succeeded,
                PartitionState::DeadLettered,
                PartitionState::Cancelled,
            ])
            .move_to(PartitionState::Failed)
            .set("attempt", Bind::Int(i64::from(attempt.next().get())))
            .set("idempotency_token", Bind::OptText(None))
            .set("verified_at_ms", Bind::OptInt(None))
            .set("check_due_ms", Bind::Int(now_ms()))
            .set_expr("reissues = 0")
            .set_expr("outage_since_ms = NULL")
            .set_expr("waiting_at_cap = 0")
            .set("last_error", Bind::Text(format!("rerun requested: {why}")));
        let event = NewEvent::partition(actor, key, attempt, "rerun_requested")
            .detail(format!("attempt {} requested: {why}", attempt.next()));
        let mut tx = self.pool.begin().await?;
        if Self::apply_in(&mut tx, cas, Some(event)).await?.is_none() {
            tx.rollback().await?;
            return Ok(false);
        }
        // Read after the row is changed (and locked): a promotion created meanwhile is
        // seen, so a re-run never slips under a promotion of the attempt it replaces.
        let live: Option<String> = sqlx::query_scalar(
            "SELECT action_key FROM promotion_items WHERE backfill_id = $1 \
             AND partition_date = $2 AND state IN ('requested', 'running') LIMIT 1",
        )
        .bind(key.backfill_id.to_string())
        .bind(key.date.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(action) = live {
            tx.rollback().await?;
            return Err(LedgerError::Refused(format!(
                "partition {} is being promoted ({action}); let `backfill promote` finish it, then re-run",
                key.date
            )));
        }
        tx.commit().await?;
        Ok(true)
    }
}
