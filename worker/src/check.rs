//! The check path: read the run once; still running, hand the chain on and schedule the
//! next check; succeeded, record it; failed, decide once between a new attempt and the
//! dead-letter queue.

use std::time::Duration;

use backfill_contract::{CheckSeq, RunId};
use backfill_databricks::models::Run;
use backfill_databricks::{Failure, RunOutcome, classify};
use backfill_ledger::{Partition, RunTimes, now_ms};
use rand::Rng;

use crate::policy::{CheckAction, FailureDecision, decide_check, decide_failure, next_check_in};
use crate::received::Received;
use crate::{Handled, StepError, Worker};

/// The check a message is: of which run, at which link of its chain.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CheckOf {
    pub run_id: RunId,
    pub check_seq: CheckSeq,
}

impl Worker {
    pub(crate) async fn on_check(
        &self,
        m: &Received,
        p: &Partition,
        check: CheckOf,
    ) -> Result<Handled, StepError> {
        let msg = &m.msg;
        let CheckOf { run_id, check_seq } = check;
        if let CheckAction::Drop(reason) = decide_check(p, msg.attempt, run_id, check_seq) {
            return Ok(Handled::Dropped(reason));
        }
        let run = match self.client.get_run(run_id.get()).await {
            Ok(run) => run,
            Err(e) if e.is_not_found() => {
                let reason = format!("run {run_id} not found at Databricks: {e}");
                return self.give_up(m, check, None, "run_not_found", &reason).await;
            }
            Err(e) => return Err(e.into()),
        };
        let times = RunTimes {
            run_id,
            run_url: run.run_page_url.clone(),
            started_ms: run.start_time.filter(|t| *t > 0),
            ended_ms: run.ended_at(),
        };
        match classify(&run) {
            RunOutcome::InProgress { state, known } => {
                self.still_running(m, p, check, state, known).await
            }
            RunOutcome::Succeeded => {
                self.record_outcome(&run, "succeeded", "none");
                let recorded = self
                    .ledger
                    .record_success(&m.key, msg.attempt, check_seq, times, self.id())
                    .await?;
                if recorded {
                    tracing::info!("partition succeeded");
                    Ok(Handled::Succeeded { run_id })
                } else {
                    Ok(Handled::Dropped("partition moved on".into()))
                }
            }
            RunOutcome::Failed(failure) => {
                let jitter = rand::rng().random_range(-1.0..=1.0);
                let decision = decide_failure(&failure, msg.attempt, &self.config.retry, jitter);
                let result = match decision {
                    FailureDecision::Retry { .. } => "retried",
                    FailureDecision::DeadLetter { .. } => "dead_lettered",
                };
                self.record_outcome(&run, result, failure.class.as_str());
                self.run_failed(m, check, times, &failure, decision).await
            }
        }
    }

    /// The run is still going: hand the chain on, then schedule the next check.
    async fn still_running(
        &self,
        m: &Received,
        p: &Partition,
        check: CheckOf,
        state: String,
        known: bool,
    ) -> Result<Handled, StepError> {
        if !known {
            tracing::warn!(state = %state, "unknown run state; treating it as not terminal");
        }
        let age = Duration::from_millis(
            (now_ms() - p.triggered_at_ms.unwrap_or_else(now_ms)).max(0) as u64,
        );
        let history = self
            .cached
            .run_history(&self.ledger, &m.msg.backfill_id)
            .await;
        let wait = next_check_in(age, &self.config.poll, history);
        let due = now_ms() + wait.as_millis() as i64;
        // Hand the chain on first: a duplicate of this check fails here and dies.
        // If we die before publishing, the sweep re-issues the overdue check.
        let Some(next_seq) = self
            .ledger
            .advance_check(&m.key, m.msg.attempt, check.check_seq, due)
            .await?
        else {
            return Ok(Handled::Dropped("superseded check".into()));
        };
        let reason = format!("run {} is {state}", check.run_id);
        self.schedule_check(m, check.run_id, next_seq, wait, &reason)
            .await?;
        Ok(Handled::StillRunning { state, known })
    }

    /// The run failed: a new attempt after the decided delay, or the dead-letter queue.
    async fn run_failed(
        &self,
        m: &Received,
        check: CheckOf,
        times: RunTimes,
        failure: &Failure,
        decision: FailureDecision,
    ) -> Result<Handled, StepError> {
        match decision {
            FailureDecision::Retry { after } => {
                let error = format!(
                    "{} ({}): {}",
                    failure.code,
                    failure.class.as_str(),
                    failure.message
                );
                let next = m.msg.attempt.next();
                let retry_due = self.publish_retry(m, check, failure, after).await?;
                let scheduled = self
                    .ledger
                    .schedule_retry(
                        &m.key,
                        m.msg.attempt,
                        check.check_seq,
                        times,
                        retry_due,
                        &error,
                        self.id(),
                    )
                    .await?;
                if scheduled {
                    tracing::warn!(error = %error, retry_in_s = after.as_secs(), "run failed; new attempt scheduled");
                    Ok(Handled::RetryScheduled {
                        next_attempt: next.get(),
                    })
                } else {
                    Ok(Handled::Dropped("partition moved on".into()))
                }
            }
            FailureDecision::DeadLetter { reason } => {
                let reason = if failure.message.is_empty() {
                    reason
                } else {
                    format!("{reason}: {}", failure.message)
                };
                self.give_up(m, check, Some(&times), "run_failed", &reason)
                    .await
            }
        }
    }

    /// Counts a terminal run by result (`succeeded`, `retried`, `dead_lettered`), failure
    /// class and termination details, and observes its duration and queue time.
    fn record_outcome(&self, run: &Run, result: &'static str, class: &'static str) {
        let details = run
            .status
            .as_ref()
            .and_then(|s| s.termination_details.as_ref());
        let kind = details
            .and_then(|d| d.kind.as_ref())
            .map_or("NONE", |k| k.as_str());
        let code = details.and_then(|d| d.code.as_deref()).unwrap_or("NONE");
        let w = &self.metrics.worker;
        w.run_outcome(result, class, kind, code);
        let ms = |v: Option<i64>| {
            v.filter(|v| *v > 0)
                .map(|v| Duration::from_millis(v as u64))
        };
        let duration = ms(run.run_duration)
            .or_else(|| ms(run.ended_at().zip(run.start_time).map(|(e, s)| e - s)));
        w.run_times(duration, ms(run.queue_duration));
    }
}
