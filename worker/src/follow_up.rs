//! Publishing what follows a message: the next check, a retry's trigger, the same
//! message round the delay tiers (saying why, and telling the ledger when it is due).
//! Every publish is confirmed before the delivery is acknowledged.

use std::time::Duration;

use backfill_broker::{DELAY_REASON_HEADER, Destination, Headers, Lane, SENT_MS_HEADER};
use backfill_contract::{CheckSeq, PartitionMessage, RunId, Step};
use backfill_databricks::Failure;
use backfill_ledger::now_ms;

use crate::check::CheckOf;
use crate::received::Received;
use crate::{Handled, StepError, Worker};

/// The `reason` label of a trigger sent round because the backfill's cap is full.
pub(crate) const AT_CAP: &str = "at_cap";

/// Whether a delayed message's due time is to be written to the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// Tell the ledger, so the sweep does not re-issue a message that is only waiting.
    Record,
    /// The ledger already has it (a message going round again before it is due).
    AlreadyRecorded,
}

impl Worker {
    /// Publishes a check of `run_id` at link `check_seq` of its chain, after `wait`.
    pub(crate) async fn schedule_check(
        &self,
        m: &Received,
        run_id: RunId,
        check_seq: CheckSeq,
        wait: Duration,
        reason: &str,
    ) -> Result<(), StepError> {
        let msg = &m.msg;
        let mut check = msg.follow_up(msg.attempt, Step::Check { run_id, check_seq }, reason);
        let destination = if wait.is_zero() {
            Destination::Lane(Lane::Check)
        } else {
            check.not_before_ms = Some(now_ms() + wait.as_millis() as i64);
            self.metrics.worker.delayed(Lane::Check.key(), "next_check");
            Destination::Delayed(Lane::Check, wait)
        };
        self.publish(m, &check, destination).await
    }

    /// Publishes the trigger of the next attempt after a failed run, due `after` from
    /// now, and returns when it is due.
    pub(crate) async fn publish_retry(
        &self,
        m: &Received,
        check: CheckOf,
        failure: &Failure,
        after: Duration,
    ) -> Result<i64, StepError> {
        let msg = &m.msg;
        let mut retry = msg.follow_up(
            msg.attempt.next(),
            Step::Trigger,
            format!("retry after {}", failure.code),
        );
        let retry_due = now_ms() + after.as_millis() as i64;
        retry.not_before_ms = Some(retry_due);
        // The live check's sequence: schedule_retry keeps it, and a trigger the sweep
        // re-issues later supersedes this one.
        retry.issue_seq = Some(check.check_seq);
        // Publish first: a crash before the ledger records the retry makes the check
        // come back and decide again; a duplicate trigger of the same attempt is harmless.
        self.publish(m, &retry, Destination::Delayed(Lane::Trigger, after))
            .await?;
        self.metrics
            .worker
            .delayed(Lane::Trigger.key(), "retry_backoff");
        Ok(retry_due)
    }

    /// Sends the same message round the delay tiers of its step's lane for `wait`, saying
    /// why. `kind` is the `reason` label of `backfill_messages_delayed_total`: for a
    /// trigger held back, the [`backfill_ledger::HoldReason`] word (`budget`, `paused`,
    /// `protected_window`, `production_running`); otherwise what it waits for
    /// (`at_cap`, `not_active`, `claim_owner`, `ledger_catching_up`).
    pub(crate) async fn delay(
        &self,
        m: &Received,
        kind: &'static str,
        wait: Duration,
        reason: &str,
    ) -> Result<Handled, StepError> {
        let msg = &m.msg;
        let again = msg.follow_up(msg.attempt, msg.step.clone(), reason);
        self.delay_follow_up(m, again, m.step_lane(), kind, wait, Due::Record)
            .await?;
        Ok(Handled::Delayed(reason.to_owned()))
    }

    /// A message that came back before it is due goes round again as it was: an outage
    /// it carries goes on counting.
    pub(crate) async fn delay_not_due(
        &self,
        m: &Received,
        wait: Duration,
        reason: &str,
    ) -> Result<Handled, StepError> {
        let msg = &m.msg;
        let mut again = msg.follow_up(msg.attempt, msg.step.clone(), reason);
        again.outage_since_ms = msg.outage_since_ms;
        // The ledger already has this due time: nothing to record (no write per lap).
        self.delay_follow_up(m, again, m.lane, "not_due", wait, Due::AlreadyRecorded)
            .await?;
        Ok(Handled::Delayed(reason.to_owned()))
    }

    /// Sends `again` (a follow-up of the received message) round the delay tiers of
    /// `lane` for `wait`, and with [`Due::Record`] tells the ledger when it is due.
    pub(crate) async fn delay_follow_up(
        &self,
        m: &Received,
        mut again: PartitionMessage,
        lane: Lane,
        kind: &'static str,
        wait: Duration,
        due: Due,
    ) -> Result<(), StepError> {
        self.metrics.worker.delayed(lane.key(), kind);
        // Sent round without an outage of its own: whatever outage was on record is over.
        let handled = again.outage_since_ms.is_none();
        let due_ms = now_ms() + wait.as_millis() as i64;
        again.not_before_ms = Some(due_ms);
        self.publish(m, &again, Destination::Delayed(lane, wait))
            .await?;
        if due == Due::AlreadyRecorded {
            return Ok(());
        }
        // Tell the sweep when this message is due, so it does not re-issue one that is
        // only waiting (best effort: the message is out; a missed write costs at most one
        // superfluous re-issue).
        let msg = &m.msg;
        let touched = match msg.step {
            // The sequence the message goes round with (a trigger waiting at the cap
            // carries the row's, so a trigger woken meanwhile keeps its due time).
            Step::Trigger => {
                self.ledger
                    .touch_trigger(
                        &m.key,
                        msg.attempt,
                        again.issue_seq,
                        due_ms,
                        handled,
                        kind == AT_CAP,
                    )
                    .await
            }
            Step::Check { check_seq, .. } => {
                self.ledger
                    .touch_check(&m.key, msg.attempt, check_seq, due_ms, handled)
                    .await
            }
        };
        if let Err(e) = touched {
            tracing::debug!(error = %e, "could not record when the delayed message is due");
        }
        Ok(())
    }

    /// Publishes `follow` (confirmed) on the received message's publisher, stamped with
    /// when it was sent and why.
    pub(crate) async fn publish(
        &self,
        m: &Received,
        follow: &PartitionMessage,
        destination: Destination,
    ) -> Result<(), StepError> {
        let mut headers = Headers::new().with(SENT_MS_HEADER, now_ms());
        if let Some(reason) = &follow.reason {
            headers = headers.with(DELAY_REASON_HEADER, reason);
        }
        m.publisher
            .publish(
                destination,
                &follow.encode(),
                &follow.message_id.to_string(),
                &headers,
            )
            .await?;
        Ok(())
    }
}
