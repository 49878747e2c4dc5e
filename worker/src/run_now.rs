//! Starting a claimed attempt's run: `run-now` with the recorded token, the run id
//! recorded, the first check scheduled; a refused call dead-letters the attempt, and a
//! run started for a partition that moved on meanwhile is cancelled.

use std::collections::BTreeMap;
use std::time::Duration;

use backfill_broker::Lane;
use backfill_contract::jobs::backfill::param;
use backfill_contract::{PartitionMessage, RunId};
use backfill_databricks::ApiError;
use backfill_databricks::models::RunNowRequest;
use backfill_ledger::{PartitionState, now_ms};

use crate::dead_letter::DeadLetter;
use crate::policy::first_check_in;
use crate::received::Received;
use crate::{Handled, StepError, Worker};

impl Worker {
    /// Calls `run-now` with the recorded token, records the run id, schedules the first
    /// check. A retryable failure leaves the claim in place: the delayed message comes
    /// back to re-attach with the same token.
    pub(crate) async fn start_run(&self, m: &Received, token: &str) -> Result<Handled, StepError> {
        let msg = &m.msg;
        let backfill = self.cached.backfill(&self.ledger, &msg.backfill_id).await?;
        let mut params: BTreeMap<String, String> = backfill.params.clone();
        params.insert(param::PARTITION_DATE.into(), msg.partition_date.to_string());
        params.insert(param::BACKFILL_ID.into(), msg.backfill_id.to_string());
        params.insert(param::MANIFEST_ID.into(), backfill.manifest_id.clone());
        params.insert(param::ATTEMPT.into(), msg.attempt.to_string());
        let request = RunNowRequest {
            job_id: backfill.job_id,
            job_parameters: params,
            idempotency_token: Some(token.to_owned()),
        };
        let response = match self.client.run_now(&request).await {
            Ok(r) => r,
            // An unreadable answer may come from a run that was created: retrying with
            // the same token is safe, so treat it like an outage.
            Err(e) if e.is_retryable() || e.is_throttled() => return Err(e.into()),
            Err(e @ ApiError::Decode { .. }) => return Err(StepError::RunMayExist(e)),
            Err(e) => return self.refused(m, &e).await,
        };
        let run_id = RunId::from(response.run_id);
        tracing::Span::current().record("run_id", run_id.get());
        let first = self.first_look(msg).await;
        let due = now_ms() + first.as_millis() as i64;
        let recorded = self
            .ledger
            .record_run(&m.key, msg.attempt, run_id, None, due, self.id())
            .await?;
        match recorded {
            Some(seq) => {
                self.schedule_check(m, run_id, seq, first, "run started")
                    .await?;
                self.metrics.worker.triggered(msg.backfill_id.as_str());
                tracing::info!("run triggered");
                Ok(Handled::Triggered { run_id })
            }
            None => self.not_recorded(m, run_id).await,
        }
    }

    /// When to look at a run just started: `first`, or sooner when the backfill's
    /// finished runs were shorter than that.
    async fn first_look(&self, msg: &PartitionMessage) -> Duration {
        let poll = &self.config.poll;
        let history = self
            .cached
            .run_history(&self.ledger, &msg.backfill_id, poll.min_history)
            .await;
        first_check_in(poll, history)
    }

    /// `run-now` was refused for good: the message goes to the dead-letter queue, then
    /// the claim is dead-lettered (only by its holder, and only while no run is recorded).
    async fn refused(&self, m: &Received, e: &ApiError) -> Result<Handled, StepError> {
        let reason = format!("run-now refused: {e}");
        let dead = DeadLetter::new("trigger_refused", &reason, Lane::Trigger).about(&m.msg);
        self.send_dead_letter(&m.publisher, &m.body, dead).await?;
        if !self
            .ledger
            .dead_letter_claim(&m.key, m.msg.attempt, self.id(), &reason)
            .await?
        {
            return Ok(Handled::Dropped("claim moved on".into()));
        }
        Ok(Handled::DeadLettered(reason))
    }

    /// The run was not recorded: by another worker (the same token gives the same run),
    /// or the partition moved on (cancelled, dead-lettered); then the run just started is
    /// followed by nobody and must not go on.
    async fn not_recorded(&self, m: &Received, run_id: RunId) -> Result<Handled, StepError> {
        let now = self.ledger.partition(&m.key).await?;
        let followed = now.as_ref().is_some_and(|p| {
            p.attempt == m.msg.attempt
                && p.state != PartitionState::Triggering
                && p.run_id == Some(run_id)
        });
        if followed
            || now
                .as_ref()
                .is_some_and(|p| p.state == PartitionState::Triggering)
        {
            return Ok(Handled::Dropped("run recorded by another worker".into()));
        }
        let state = now.map_or("gone".to_owned(), |p| p.state.to_string());
        if let Err(e) = self.client.cancel_run(run_id.get()).await {
            // Nobody follows this run: put it before an operator rather than lose it.
            let reason = format!(
                "run {run_id} was started after the partition moved on ({state}) and \
                 could not be cancelled: {e}; cancel it by hand or with `backfill cancel`"
            );
            let dead = DeadLetter::new("orphan_run", &reason, Lane::Trigger)
                .about(&m.msg)
                .run(run_id, None);
            self.send_dead_letter(&m.publisher, &m.body, dead).await?;
            tracing::error!(reason, "orphan run left running");
            return Ok(Handled::DeadLettered(reason));
        }
        Ok(Handled::Dropped(format!(
            "partition {state}; run {run_id} cancelled"
        )))
    }
}
