//! How an attempt ends, decided by the worker holding it (succeeded, a new attempt,
//! dead-lettered), and the reconciler's verification of a success.

use backfill_contract::{Attempt, CheckSeq, RunId};

use crate::partitions::RunTimes;
use crate::partitions::cas::{Bind, Cas};
use crate::{Ledger, LedgerError, NewEvent, PartitionKey, PartitionState, now_ms};

impl Ledger {
    /// triggering → dead_lettered, only by the worker holding the claim (its `run-now`
    /// was refused), so a run recorded meanwhile by another worker is never dead-lettered.
    pub async fn dead_letter_claim(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        owner: &str,
        reason: &str,
    ) -> Result<bool, LedgerError> {
        let cas = Cas::on(key, attempt)
            .expect_state(&[PartitionState::Triggering])
            .expect("owner", Bind::Text(owner.to_owned()))
            .move_to(PartitionState::DeadLettered)
            .set("last_error", Bind::Text(reason.to_owned()));
        let event = NewEvent::partition(owner, key, attempt, "dead_lettered").detail(reason);
        Ok(self.apply(cas, event).await?.is_some())
    }

    /// running → succeeded, by the live check chain only.
    pub async fn record_success(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        check_seq: CheckSeq,
        run: RunTimes,
        actor: &str,
    ) -> Result<bool, LedgerError> {
        let cas = Cas::on(key, attempt)
            .expect_state(&[PartitionState::Running])
            .expect("check_seq", Bind::Int(check_seq.get()))
            .move_to(PartitionState::Succeeded)
            .add_finished_run(&run)
            .set("run_url", Bind::OptText(run.run_url.clone()))
            .set("run_started_ms", Bind::OptInt(run.started_ms))
            .set("run_ended_ms", Bind::OptInt(run.ended_ms))
            .set("last_error", Bind::OptText(None));
        let event = NewEvent::partition(actor, key, attempt, "succeeded")
            .run(Some(run.run_id))
            .states(PartitionState::Running, PartitionState::Succeeded);
        Ok(self.apply(cas, event).await?.is_some())
    }

    /// running → failed with the next attempt number: a deliberate, recorded new attempt,
    /// whose trigger is due at `retry_due_ms`.
    #[allow(clippy::too_many_arguments)]
    pub async fn schedule_retry(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        check_seq: CheckSeq,
        run: RunTimes,
        retry_due_ms: i64,
        error: &str,
        actor: &str,
    ) -> Result<bool, LedgerError> {
        let cas = Cas::on(key, attempt)
            .expect_state(&[PartitionState::Running])
            .expect("check_seq", Bind::Int(check_seq.get()))
            .move_to(PartitionState::Failed)
            .add_finished_run(&run)
            .set("run_url", Bind::OptText(run.run_url.clone()))
            .set("attempt", Bind::Int(i64::from(attempt.next().get())))
            .set("idempotency_token", Bind::OptText(None))
            .set("last_error", Bind::Text(error.to_owned()))
            .set("run_started_ms", Bind::OptInt(run.started_ms))
            .set("run_ended_ms", Bind::OptInt(run.ended_ms))
            .set("check_due_ms", Bind::Int(retry_due_ms))
            .set_expr("reissues = 0")
            .set_expr("outage_since_ms = NULL")
            // Out its backoff, not at the cap: no run's end wakes it early.
            .set_expr("waiting_at_cap = 0");
        let event = NewEvent::partition(actor, key, attempt, "retry_scheduled")
            .run(Some(run.run_id))
            .states(PartitionState::Running, PartitionState::Failed)
            .detail(format!("attempt {} failed: {error}", attempt));
        Ok(self.apply(cas, event).await?.is_some())
    }

    /// Any non-terminal state of this attempt → dead_lettered, with the reason. When
    /// `check_seq` is given only the live check chain may do it. `run` is the attempt's
    /// run when it ended (failed for good): its time is recorded and added to the spend.
    pub async fn dead_letter(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        check_seq: Option<CheckSeq>,
        run: Option<&RunTimes>,
        reason: &str,
        actor: &str,
    ) -> Result<bool, LedgerError> {
        let mut cas = Cas::on(key, attempt).expect_state(&[
            PartitionState::Pending,
            PartitionState::Triggering,
            PartitionState::Running,
            PartitionState::Failed,
        ]);
        if let Some(seq) = check_seq {
            cas = cas.expect("check_seq", Bind::Int(seq.get()));
        }
        if let Some(run) = run {
            cas = cas
                .add_finished_run(run)
                .set("run_url", Bind::OptText(run.run_url.clone()))
                .set("run_started_ms", Bind::OptInt(run.started_ms))
                .set("run_ended_ms", Bind::OptInt(run.ended_ms));
        }
        let cas = cas
            .move_to(PartitionState::DeadLettered)
            .set("last_error", Bind::Text(reason.to_owned()));
        let event = NewEvent::partition(actor, key, attempt, "dead_lettered")
            .run(run.map(|r| r.run_id))
            .detail(reason);
        Ok(self.apply(cas, event).await?.is_some())
    }

    /// running → dead_lettered by the live check of `run_id` only (a superseded check of a
    /// partition whose live chain is running changes nothing).
    pub async fn dead_letter_check(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        run_id: RunId,
        check_seq: CheckSeq,
        reason: &str,
        actor: &str,
    ) -> Result<bool, LedgerError> {
        let cas = Cas::on(key, attempt)
            .expect_state(&[PartitionState::Running])
            .expect("run_id", Bind::Int(run_id.get()))
            .expect("check_seq", Bind::Int(check_seq.get()))
            // Its run is cancelled next, its end unknown: counted up to now (an upper bound).
            .add_unfinished_run(now_ms())
            .move_to(PartitionState::DeadLettered)
            .set("last_error", Bind::Text(reason.to_owned()));
        let event = NewEvent::partition(actor, key, attempt, "dead_lettered")
            .run(Some(run_id))
            .states(PartitionState::Running, PartitionState::DeadLettered)
            .detail(reason);
        Ok(self.apply(cas, event).await?.is_some())
    }

    /// Marks a succeeded partition as verified against Databricks by the reconciler.
    pub async fn mark_verified(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        run_id: RunId,
        actor: &str,
    ) -> Result<bool, LedgerError> {
        let cas = Cas::on(key, attempt)
            .expect_state(&[PartitionState::Succeeded])
            .expect("run_id", Bind::Int(run_id.get()))
            .set("verified_at_ms", Bind::Int(now_ms()));
        let cas = Cas {
            wheres: {
                let mut w = cas.wheres;
                w.push("verified_at_ms IS NULL".into());
                w
            },
            ..cas
        };
        let event = NewEvent::partition(actor, key, attempt, "verified").run(Some(run_id));
        Ok(self.apply(cas, event).await?.is_some())
    }
}
