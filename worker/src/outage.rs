//! What follows a message that could not be handled: an outage is retried after a
//! pause, within a total outage budget per step; a permanent error, an outage past its
//! budget or a panic dead-letters the message and, where the message still owns it, its
//! partition (invariant 11: every error has an end).

use backfill_contract::{PartitionMessage, Step};
use backfill_ledger::{Partition, PartitionKey, PartitionState, now_ms};

use crate::dead_letter::DeadLetter;
use crate::follow_up::Due;
use crate::policy::superseded_trigger;
use crate::received::Received;
use crate::{StepError, Worker};

impl Worker {
    /// After a failure while handling `m`: a permanent one, or an outage that has lasted
    /// longer than the outage budget, dead-letters the message with the reason; any other
    /// is sent round again after a pause, so it is neither lost nor retried in a hot loop.
    /// Returns `Err` only when the message could be neither delayed nor dead-lettered (it
    /// then goes back to its queue).
    pub(crate) async fn after_error(
        &self,
        m: &Received,
        error: &StepError,
    ) -> Result<(), StepError> {
        let msg = &m.msg;
        // A copy the live message has superseded (the sweep re-issued it while this one
        // was failing) is only dropped: the live one meets the same error and ends it.
        if let Ok(Some(p)) = self.ledger.partition(&m.key).await
            && !owns(&p, msg)
        {
            tracing::info!(error = %error, "superseded message dropped after an error");
            return Ok(());
        }
        if error.is_permanent() {
            let reason = format!("permanent {} error: {error}", error.kind());
            return self.dead_end(m, "permanent_error", &reason).await;
        }
        let now = now_ms();
        // The outage's start is kept in the ledger too, so a re-issued message (the sweep
        // replacing a check that was slow to come back) does not restart the budget; the
        // message's own record covers a ledger that is the thing unavailable.
        let noted = self
            .ledger
            .note_outage(&m.key, msg.attempt, now)
            .await
            .ok()
            .flatten();
        let since = [msg.outage_since_ms, noted]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now);
        let budget = self.config.outage_budget.as_millis() as i64;
        if now - since > budget {
            let reason = format!(
                "{} unavailable for {} s, past the outage budget of {} s; last error: {error}",
                error.kind(),
                (now - since) / 1000,
                budget / 1000
            );
            return self.dead_end(m, "outage_budget_spent", &reason).await;
        }
        let reason = format!("{} outage: {error}", error.kind());
        let mut again = msg.follow_up(msg.attempt, msg.step.clone(), &reason);
        again.outage_since_ms = Some(since);
        // Throttled: come back when the workspace asked (never waited out in a delivery).
        let wait = match error {
            StepError::Databricks(e) => e.retry_after(),
            _ => None,
        }
        .map_or(self.config.outage_delay, |after| {
            after.max(self.config.outage_delay)
        });
        self.delay_follow_up(m, again, m.lane, error.kind(), wait, Due::Record)
            .await?;
        Ok(())
    }

    /// After a panic while handling `m` (caught by its task): the partition's dead end
    /// is recorded where the message owns it, then the message is dead-lettered. Returns
    /// whether it was (else it goes back to its queue).
    pub(crate) async fn after_panic(&self, m: &Received, panic: &str) -> bool {
        let reason = format!("worker panicked handling this message: {panic}");
        tracing::error!(reason, "message handler panicked");
        self.record_dead_end_at(&m.key, &m.msg, &reason).await;
        let dead = DeadLetter::new("handler_panicked", &reason, m.lane);
        self.send_dead_letter(&m.publisher, &m.body, dead)
            .await
            .is_ok()
    }

    /// The message goes to the dead-letter queue with the reason (confirmed first), then
    /// the ledger records the dead end where the message still owns its partition.
    async fn dead_end(
        &self,
        m: &Received,
        kind: &'static str,
        reason: &str,
    ) -> Result<(), StepError> {
        let mut dead = DeadLetter::new(kind, reason, m.lane).about(&m.msg);
        if let Step::Check { run_id, .. } = m.msg.step {
            dead = dead.run(run_id, None);
        }
        self.send_dead_letter(&m.publisher, &m.body, dead).await?;
        self.record_dead_end_at(&m.key, &m.msg, reason).await;
        tracing::warn!(reason, "message dead-lettered");
        Ok(())
    }

    /// Records in the ledger that the message for this partition met a dead end (a
    /// panic, a permanent error, an outage past its budget), so the partition ends
    /// dead-lettered rather than stranded (best effort), touching
    /// only what the message owns: a check only while it is the live check of its run
    /// (whose run is then cancelled: nothing follows it any more), a trigger only while
    /// it is the live trigger of a partition whose run is not recorded (a claimed one is
    /// recorded with its token: its run may exist). A superseded message changes nothing.
    pub async fn record_dead_end(&self, msg: &PartitionMessage, reason: &str) {
        let key = PartitionKey::new(msg.backfill_id.clone(), msg.partition_date);
        self.record_dead_end_at(&key, msg, reason).await;
    }

    /// [`Worker::record_dead_end`] with the message's partition key already built.
    async fn record_dead_end_at(&self, key: &PartitionKey, msg: &PartitionMessage, reason: &str) {
        let recorded = match msg.step {
            Step::Check { run_id, check_seq } => {
                let dead = self
                    .ledger
                    .dead_letter_check(key, msg.attempt, run_id, check_seq, reason, self.id())
                    .await;
                if matches!(dead, Ok(true))
                    && let Err(e) = self.client.cancel_run(run_id.get()).await
                {
                    tracing::warn!(error = %e, "could not cancel the run of a dead-lettered partition");
                }
                dead.map(|_| ())
            }
            Step::Trigger => match self.ledger.partition(key).await {
                Ok(Some(p))
                    if p.attempt == msg.attempt
                        && matches!(
                            p.state,
                            PartitionState::Pending
                                | PartitionState::Failed
                                | PartitionState::Triggering
                        )
                        && !superseded_trigger(&p, msg.attempt, msg.issue_seq) =>
                {
                    // A claimed partition's run may exist: say so, with the token that
                    // names it (`backfill cancel` finds such runs by their parameters).
                    let reason = match (&p.state, &p.idempotency_token) {
                        (PartitionState::Triggering, Some(token)) => format!(
                            "{reason} (claimed with idempotency token {token}: a run may exist)"
                        ),
                        _ => reason.to_owned(),
                    };
                    self.ledger
                        .dead_letter_waiting(
                            key,
                            p.attempt,
                            p.state,
                            p.check_seq,
                            &reason,
                            self.id(),
                        )
                        .await
                        .map(|_| ())
                }
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            },
        };
        if let Err(e) = recorded {
            tracing::error!(error = %e, "could not record the panic in the ledger; the sweep will re-issue");
        }
    }
}

/// Whether `msg` is still the live message of its partition: a check of the live chain of
/// the recorded run, or a trigger of the current, unfinished attempt not superseded by a
/// re-issue.
fn owns(p: &Partition, msg: &PartitionMessage) -> bool {
    if p.attempt != msg.attempt || p.state.is_terminal() {
        return false;
    }
    match msg.step {
        Step::Check { run_id, check_seq } => {
            p.state == PartitionState::Running
                && p.run_id == Some(run_id)
                && p.check_seq == check_seq
        }
        Step::Trigger => !superseded_trigger(p, msg.attempt, msg.issue_seq),
    }
}
