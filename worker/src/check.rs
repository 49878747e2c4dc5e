//! The check path: read the run once; still running, hand the chain on and schedule the
//! next check; succeeded, record it; failed, decide once between a new attempt and the
//! dead-letter queue.

use std::time::Duration;

use backfill_contract::{CheckSeq, RunId};
use backfill_databricks::models::Run;
use backfill_databricks::{Failure, RunOutcome, classify};
use backfill_ledger::{Partition, RunTimes, now_ms};
use rand::Rng;

use crate::in_process::below_shortest_tier;
use crate::policy::{
    CheckAction, FailureDecision, check_phase, decide_check, decide_failure, next_check_in,
};
use crate::received::Received;
use crate::{Handled, StepError, Worker};

/// How many times one check message may wait out a short gap itself before it hands the
/// chain on through the broker.
const CLOSE_LOOKS: u32 = 3;

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
        // A run due to end sooner than the broker can delay a message is waited for here
        // (never more than a second at a time, so a delivery is never held for long).
        let mut close_looks = 0;
        loop {
            let run = match self.client.get_run(run_id.get()).await {
                Ok(run) => run,
                Err(e) if e.is_not_found() => {
                    let reason = format!("run {run_id} not found at Databricks: {e}");
                    return self.give_up(m, check, None, "run_not_found", &reason).await;
                }
                Err(e) => return Err(e.into()),
            };
            let (state, known) = match classify(&run) {
                RunOutcome::InProgress { state, known } => (state, known),
                RunOutcome::Succeeded => return self.run_succeeded(m, p, check, &run).await,
                RunOutcome::Failed(failure) => {
                    return self.run_ended_in_failure(m, check, &run, failure).await;
                }
            };
            let wait = self.next_look(m, p, &run).await;
            if !below_shortest_tier(m, wait) || close_looks == CLOSE_LOOKS {
                return self.still_running(m, check, state, known, wait).await;
            }
            close_looks += 1;
            tokio::time::sleep(wait).await;
            // Still the live check of a running partition? (An operator may have
            // cancelled it meanwhile.)
            let now = self.ledger.partition(&m.key).await?;
            let action = now.map_or(CheckAction::Drop("partition is gone".into()), |now| {
                decide_check(&now, msg.attempt, run_id, check_seq)
            });
            if let CheckAction::Drop(reason) = action {
                return Ok(Handled::Dropped(reason));
            }
        }
    }

    /// How long until the run is looked at again: by its age since it started at
    /// Databricks (since its trigger while it has not), the backfill's run lengths and
    /// the partition's phase.
    async fn next_look(&self, m: &Received, p: &Partition, run: &Run) -> Duration {
        let now = now_ms();
        let since = run
            .start_time
            .filter(|t| *t > 0)
            .or(p.triggered_at_ms)
            .unwrap_or(now);
        let age = Duration::from_millis((now - since).max(0) as u64);
        let history = self
            .cached
            .run_history(
                &self.ledger,
                &m.msg.backfill_id,
                self.config.poll.min_history,
            )
            .await;
        next_check_in(age, &self.config.poll, history, check_phase(p.date.date()))
    }

    /// The run succeeded: record it, hand its slot on, and look at the runs started with
    /// it while their ends cannot be predicted.
    async fn run_succeeded(
        &self,
        m: &Received,
        p: &Partition,
        check: CheckOf,
        run: &Run,
    ) -> Result<Handled, StepError> {
        self.record_outcome(run, "succeeded", "none");
        let times = run_times(check, run);
        let length = times
            .started_ms
            .zip(times.ended_ms)
            .map(|(s, e)| Duration::from_millis((e - s).max(0) as u64));
        // How long after its end this run was seen (Databricks' clock against ours).
        let seen_after = times
            .ended_ms
            .map(|e| Duration::from_millis((now_ms() - e).max(0) as u64));
        let recorded = self
            .ledger
            .record_success(&m.key, m.msg.attempt, check.check_seq, times, self.id())
            .await?;
        if !recorded {
            return Ok(Handled::Dropped("partition moved on".into()));
        }
        tracing::info!("partition succeeded");
        self.cached
            .run_finished(&m.msg.backfill_id, self.config.poll.min_history);
        self.slot_freed(m).await;
        if let Some(length) = length {
            let seen_after = seen_after.unwrap_or_default();
            self.siblings_may_have_ended(m, p, length, seen_after).await;
        }
        Ok(Handled::Succeeded {
            run_id: check.run_id,
        })
    }

    /// The run failed: decide once between a new attempt and the dead-letter queue.
    async fn run_ended_in_failure(
        &self,
        m: &Received,
        check: CheckOf,
        run: &Run,
        failure: Failure,
    ) -> Result<Handled, StepError> {
        let jitter = rand::rng().random_range(-1.0..=1.0);
        let decision = decide_failure(&failure, m.msg.attempt, &self.config.retry, jitter);
        let result = match decision {
            FailureDecision::Retry { .. } => "retried",
            FailureDecision::DeadLetter { .. } => "dead_lettered",
        };
        self.record_outcome(run, result, failure.class.as_str());
        let handled = self
            .run_failed(m, check, run_times(check, run), &failure, decision)
            .await?;
        if matches!(
            handled,
            Handled::RetryScheduled { .. } | Handled::DeadLettered(_)
        ) {
            self.slot_freed(m).await;
        }
        Ok(handled)
    }

    /// The run is still going: hand the chain on, then schedule the next check `wait`
    /// from now.
    async fn still_running(
        &self,
        m: &Received,
        check: CheckOf,
        state: String,
        known: bool,
        wait: Duration,
    ) -> Result<Handled, StepError> {
        if !known {
            tracing::warn!(state = %state, "unknown run state; treating it as not terminal");
        }
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

/// What the ledger keeps of a terminal run.
fn run_times(check: CheckOf, run: &Run) -> RunTimes {
    RunTimes {
        run_id: check.run_id,
        run_url: run.run_page_url.clone(),
        started_ms: run.start_time.filter(|t| *t > 0),
        ended_ms: run.ended_at(),
    }
}
