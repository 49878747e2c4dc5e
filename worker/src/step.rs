//! The step function: one message in, its follow-ups published, a [`Handled`] out. The
//! loop acknowledges the delivery only after this returns `Ok`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backfill_broker::{Destination, Headers, Lane, Publisher, SENT_MS_HEADER};
use backfill_contract::{BackfillId, PartitionMessage, Step, idempotency_token};
use backfill_databricks::models::RunNowRequest;
use backfill_databricks::{ApiError, DatabricksClient, RunOutcome, classify};
use backfill_ledger::{
    Backfill, BackfillState, Claim, Guards, Ledger, Partition, PartitionKey, PartitionState,
    RunTimes, now_ms,
};
use backfill_metrics::Metrics;
use rand::Rng;

use crate::dead_letter::DeadLetter;
use crate::freshness::ProductionWatch;
use crate::policy::{
    CheckAction, FailureDecision, RunHistory, TriggerAction, admission_wait, decide_check,
    decide_failure, decide_trigger, next_check_in, remaining_wait, superseded_trigger,
};
use crate::{ApiBudget, FleetBudget, StepError, WorkerConfig};

/// What handling a message did (for logs and metrics); the delivery is acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// A run was started (or found by its token) and its first check scheduled.
    Triggered {
        run_id: i64,
    },
    /// A fresh chain of checks was started for an existing run.
    ChecksRestarted {
        run_id: i64,
    },
    /// Sent round the delay tiers again, for this reason.
    Delayed(String),
    /// The run is still going; the next check is scheduled.
    StillRunning {
        state: String,
        known: bool,
    },
    Succeeded {
        run_id: i64,
    },
    RetryScheduled {
        next_attempt: u32,
    },
    DeadLettered(String),
    /// Nothing to do (stale or already done).
    Dropped(String),
    /// The message itself was bad and went to the dead-letter queue.
    Poisoned(String),
}

/// A worker's shared state: its connections to the ledger and Databricks.
#[derive(Debug)]
pub struct Worker {
    pub(crate) config: WorkerConfig,
    pub(crate) ledger: Ledger,
    pub(crate) client: DatabricksClient,
    /// A backfill's job id and parameters never change once registered.
    backfills: Mutex<HashMap<BackfillId, Arc<Backfill>>>,
    /// Guards per backfill, with when they were read.
    guards: Mutex<HashMap<BackfillId, (std::time::Instant, Guards)>>,
    /// Run lengths per backfill, for adaptive polling, with when they were read.
    histories: Mutex<HashMap<BackfillId, (std::time::Instant, RunHistory)>>,
    /// Partitions waiting to start per backfill (pending or failed), with when counted:
    /// how far apart triggers at the cap ask again.
    backlogs: Mutex<HashMap<BackfillId, (std::time::Instant, i64)>>,
    /// This worker's share of the fleet's API budget (also the client's gate).
    budget: Option<Arc<FleetBudget>>,
    production: ProductionWatch,
    pub(crate) metrics: Arc<Metrics>,
    /// This worker's ledger id (read once): messages stamped with another are not ours.
    ledger_id: tokio::sync::OnceCell<String>,
    /// Cancelled when a message shows this worker belongs to another fleet: it stops
    /// taking work and reports itself not ready until restarted with other settings.
    pub(crate) misconfigured: tokio_util::sync::CancellationToken,
}

/// The `reason` label of a trigger delayed because its backfill is not active.
fn delay_kind(state: BackfillState) -> &'static str {
    match state {
        BackfillState::Paused => "paused",
        _ => "not_active",
    }
}

impl Worker {
    pub fn new(config: WorkerConfig, ledger: Ledger, client: DatabricksClient) -> Self {
        Self {
            config,
            ledger,
            client,
            backfills: Mutex::new(HashMap::new()),
            guards: Mutex::new(HashMap::new()),
            histories: Mutex::new(HashMap::new()),
            backlogs: Mutex::new(HashMap::new()),
            budget: None,
            production: ProductionWatch::default(),
            metrics: Arc::new(Metrics::unregistered()),
            ledger_id: tokio::sync::OnceCell::new(),
            misconfigured: tokio_util::sync::CancellationToken::new(),
        }
    }

    /// Shares the fleet's API budget: the client's calls pass through it, and the worker
    /// loop keeps it informed (heartbeats, fleet-wide pauses).
    pub fn with_budget(mut self, budget: ApiBudget) -> Self {
        let gate = FleetBudget::new(
            self.ledger.clone(),
            &self.config.worker_id,
            budget,
            Duration::from_secs(1),
        );
        gate.set_max_pause(self.client.max_retry_after());
        self.client = self.client.clone().with_gate(gate.clone());
        self.budget = Some(gate);
        self
    }

    /// Records into `metrics` (the client's requests too).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.client = self.client.clone().with_metrics(metrics.api.clone());
        self.metrics = metrics;
        self
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn budget(&self) -> Option<&Arc<FleetBudget>> {
        self.budget.as_ref()
    }

    pub fn id(&self) -> &str {
        &self.config.worker_id
    }

    /// The id of this worker's ledger, stamped into what it sends.
    pub async fn ledger_id(&self) -> Result<String, StepError> {
        let id = self
            .ledger_id
            .get_or_try_init(|| self.ledger.ledger_id())
            .await?;
        Ok(id.clone())
    }

    /// Handles one message body from `lane`.
    pub async fn process(
        &self,
        publisher: &Publisher,
        lane: Lane,
        body: &[u8],
    ) -> Result<Handled, StepError> {
        self.process_sent(publisher, lane, body, None).await
    }

    /// [`Worker::process`] for a delivery that says when it was published (the
    /// `x-backfill-sent-ms` header), so its wait in the queue is observed.
    pub async fn process_sent(
        &self,
        publisher: &Publisher,
        lane: Lane,
        body: &[u8],
        sent_ms: Option<i64>,
    ) -> Result<Handled, StepError> {
        let msg = match PartitionMessage::decode(body) {
            Ok(msg) => msg,
            Err(e) => {
                let reason = e.to_string();
                self.send_dead_letter(
                    publisher,
                    body,
                    DeadLetter {
                        kind: "invalid_message",
                        error: &reason,
                        source_lane: lane.key(),
                        worker_id: self.id(),
                        ..Default::default()
                    },
                )
                .await?;
                return Ok(Handled::Poisoned(reason));
            }
        };
        if let Some(theirs) = &msg.ledger_id {
            let mine = self.ledger_id().await?;
            if *theirs != mine && self.ledger.has_backfills_in(publisher.namespace()).await? {
                // This worker's ledger runs backfills in this namespace: the stray is the
                // message (a producer given another ledger), not this worker.
                let reason = format!(
                    "sent by the fleet whose ledger is {theirs} into a namespace whose \
                     backfills are in ledger {mine}"
                );
                return self.poison(publisher, &msg, body, lane, &reason).await;
            }
            if *theirs != mine {
                return Err(StepError::Foreign(format!(
                    "a message of the fleet whose ledger is {theirs} reached this worker, whose \
                     ledger is {mine}: --ledger-url / LEDGER_URL or --namespace / \
                     BACKFILL_NAMESPACE points at another fleet"
                )));
            }
        }
        let now = now_ms();
        if let Some(due) = msg.not_before_ms.or(sent_ms).filter(|due| *due <= now) {
            let waited = Duration::from_millis((now - due) as u64);
            self.metrics.worker.message_wait(lane.key(), waited);
        }
        if let Some(wait) = remaining_wait(msg.not_before_ms, now) {
            let reason = msg.reason.clone().unwrap_or_else(|| "not due yet".into());
            return self
                .delay_not_due(publisher, &msg, lane, wait, &reason)
                .await;
        }
        let key = PartitionKey::new(msg.backfill_id.clone(), msg.partition_date);
        let Some(partition) = self.ledger.partition(&key).await? else {
            return self
                .poison(
                    publisher,
                    &msg,
                    body,
                    lane,
                    "no such backfill partition in the ledger",
                )
                .await;
        };
        match msg.step {
            Step::Trigger => self.on_trigger(publisher, &msg, body, &partition).await,
            Step::Check { run_id, check_seq } => {
                self.on_check(publisher, &msg, body, &partition, run_id, check_seq)
                    .await
            }
        }
    }

    async fn on_trigger(
        &self,
        publisher: &Publisher,
        msg: &PartitionMessage,
        body: &[u8],
        p: &Partition,
    ) -> Result<Handled, StepError> {
        let key = p.key();
        if superseded_trigger(p, msg.attempt, msg.issue_seq) {
            return Ok(Handled::Dropped(
                "superseded trigger (a newer one was issued)".into(),
            ));
        }
        let action = decide_trigger(
            p,
            msg.attempt,
            msg.first_sent_ms,
            self.id(),
            now_ms(),
            self.config.claim_lease,
        );
        match action {
            TriggerAction::Drop(reason) => Ok(Handled::Dropped(reason)),
            TriggerAction::Poison(reason) => {
                self.poison(publisher, msg, body, Lane::Trigger, &reason)
                    .await
            }
            TriggerAction::WaitForOwner(reason) => {
                let wait = self.config.admission_delay;
                self.delay(publisher, msg, Lane::Trigger, "claim_owner", wait, &reason)
                    .await
            }
            TriggerAction::WaitForLedger => {
                let reason = format!("waiting for the ledger to record attempt {}", msg.attempt);
                self.delay(
                    publisher,
                    msg,
                    Lane::Trigger,
                    "ledger_catching_up",
                    self.config.admission_delay,
                    &reason,
                )
                .await
            }
            TriggerAction::RestartChecks { run_id } => {
                match self
                    .ledger
                    .restart_checks(&key, msg.attempt, run_id, now_ms(), self.id())
                    .await?
                {
                    Some(seq) => {
                        self.schedule_check(
                            publisher,
                            msg,
                            run_id,
                            seq,
                            Duration::ZERO,
                            "checks restarted",
                        )
                        .await?;
                        Ok(Handled::ChecksRestarted { run_id })
                    }
                    None => Ok(Handled::Dropped("partition moved on".into())),
                }
            }
            TriggerAction::Claim => {
                // Guards change at any time: read them at most a second old, not from the
                // cache of immutable backfill fields (the budget is checked inside the
                // claim itself).
                let guards = self.guards(&msg.backfill_id).await?;
                if let Some(reason) = self.production.hold(&self.client, &guards).await? {
                    return self
                        .delay(
                            publisher,
                            msg,
                            Lane::Trigger,
                            "freshness_guard",
                            self.config.admission_delay,
                            &reason,
                        )
                        .await;
                }
                let ledger_id = self.ledger_id().await?;
                let token = idempotency_token(
                    &ledger_id,
                    &msg.backfill_id,
                    msg.partition_date,
                    msg.attempt,
                );
                match self
                    .ledger
                    .claim_trigger(&key, msg.attempt, &token, self.id())
                    .await?
                {
                    Claim::Claimed => self.start_run(publisher, msg, body, &token).await,
                    Claim::AtCapacity { active, cap } => {
                        let reason = format!("concurrency cap {cap} reached ({active} active)");
                        let waiting = self.backlog(&msg.backfill_id).await;
                        let wait = admission_wait(
                            self.config.admission_delay,
                            waiting,
                            cap,
                            rand::rng().random_range(0.0..1.0),
                        );
                        self.delay(publisher, msg, Lane::Trigger, "at_cap", wait, &reason)
                            .await
                    }
                    Claim::NotActive(BackfillState::Cancelled) => {
                        let why = "backfill cancelled by an operator";
                        self.ledger
                            .cancel_partition(&key, msg.attempt, self.id(), why)
                            .await?;
                        Ok(Handled::Dropped(why.into()))
                    }
                    Claim::NotActive(state) => {
                        let reason = format!("backfill {}", state.as_str());
                        self.delay(
                            publisher,
                            msg,
                            Lane::Trigger,
                            delay_kind(state),
                            self.config.admission_delay,
                            &reason,
                        )
                        .await
                    }
                    Claim::Lost => Ok(Handled::Dropped("claimed by another worker".into())),
                    Claim::Held { detail: reason, .. } => {
                        tracing::info!(backfill_id = %msg.backfill_id, partition = %msg.partition_date, reason, "new run held back");
                        self.delay(
                            publisher,
                            msg,
                            Lane::Trigger,
                            "spend_budget",
                            self.config.admission_delay,
                            &reason,
                        )
                        .await
                    }
                }
            }
            TriggerAction::ReAttach => {
                if p.owner.as_deref() != Some(self.id())
                    && !self
                        .ledger
                        .take_over_trigger(&key, msg.attempt, self.id())
                        .await?
                {
                    return Ok(Handled::Dropped(
                        "claim taken over by another worker".into(),
                    ));
                }
                let token = match p.idempotency_token.clone() {
                    Some(token) => token,
                    None => idempotency_token(
                        &self.ledger_id().await?,
                        &msg.backfill_id,
                        msg.partition_date,
                        msg.attempt,
                    ),
                };
                self.start_run(publisher, msg, body, &token).await
            }
        }
    }

    /// Calls `run-now` with the recorded token, records the run id, schedules the first
    /// check. A retryable failure leaves the claim in place: the delayed message comes
    /// back to re-attach with the same token.
    async fn start_run(
        &self,
        publisher: &Publisher,
        msg: &PartitionMessage,
        body: &[u8],
        token: &str,
    ) -> Result<Handled, StepError> {
        let key = PartitionKey::new(msg.backfill_id.clone(), msg.partition_date);
        let backfill = self.backfill(&msg.backfill_id).await?;
        let mut params: BTreeMap<String, String> = backfill.params.clone();
        use backfill_contract::jobs::backfill::param;
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
            Err(e) => {
                let reason = format!("run-now refused: {e}");
                self.send_dead_letter(
                    publisher,
                    body,
                    DeadLetter {
                        kind: "trigger_refused",
                        error: &reason,
                        backfill_id: Some(msg.backfill_id.as_str()),
                        partition_date: Some(msg.partition_date.to_string()),
                        attempt: Some(msg.attempt.get()),
                        source_lane: Lane::Trigger.key(),
                        worker_id: self.id(),
                        ..Default::default()
                    },
                )
                .await?;
                // Only the claim's holder, and only while no run is recorded.
                if !self
                    .ledger
                    .dead_letter_claim(&key, msg.attempt, self.id(), &reason)
                    .await?
                {
                    return Ok(Handled::Dropped("claim moved on".into()));
                }
                return Ok(Handled::DeadLettered(reason));
            }
        };
        let run_id = response.run_id;
        let first = self.config.poll.first;
        let due = now_ms() + first.as_millis() as i64;
        match self
            .ledger
            .record_run(&key, msg.attempt, run_id, None, due, self.id())
            .await?
        {
            Some(seq) => {
                self.schedule_check(publisher, msg, run_id, seq, first, "run started")
                    .await?;
                self.metrics.worker.triggered(msg.backfill_id.as_str());
                tracing::info!(backfill_id = %msg.backfill_id, partition = %msg.partition_date, attempt = %msg.attempt, run_id, "run triggered");
                Ok(Handled::Triggered { run_id })
            }
            None => {
                // Recorded by another worker (the same token gives the same run), or the
                // partition moved on (cancelled, dead-lettered): then the run we just
                // started is followed by nobody and must not go on.
                let now = self.ledger.partition(&key).await?;
                let followed = now.as_ref().is_some_and(|p| {
                    p.attempt == msg.attempt
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
                if let Err(e) = self.client.cancel_run(run_id).await {
                    // Nobody follows this run: put it before an operator rather than lose it.
                    let reason = format!(
                        "run {run_id} was started after the partition moved on ({state}) and \
                         could not be cancelled: {e}; cancel it by hand or with `backfill cancel`"
                    );
                    self.send_dead_letter(
                        publisher,
                        body,
                        DeadLetter {
                            kind: "orphan_run",
                            error: &reason,
                            backfill_id: Some(msg.backfill_id.as_str()),
                            partition_date: Some(msg.partition_date.to_string()),
                            attempt: Some(msg.attempt.get()),
                            run_id: Some(run_id),
                            source_lane: Lane::Trigger.key(),
                            worker_id: self.id(),
                            ..Default::default()
                        },
                    )
                    .await?;
                    tracing::error!(run_id, reason, "orphan run left running");
                    return Ok(Handled::DeadLettered(reason));
                }
                Ok(Handled::Dropped(format!(
                    "partition {state}; run {run_id} cancelled"
                )))
            }
        }
    }

    async fn on_check(
        &self,
        publisher: &Publisher,
        msg: &PartitionMessage,
        body: &[u8],
        p: &Partition,
        run_id: i64,
        check_seq: i64,
    ) -> Result<Handled, StepError> {
        if let CheckAction::Drop(reason) = decide_check(p, msg.attempt, run_id, check_seq) {
            return Ok(Handled::Dropped(reason));
        }
        let key = p.key();
        let run = match self.client.get_run(run_id).await {
            Ok(run) => run,
            Err(e) if e.is_not_found() => {
                let reason = format!("run {run_id} not found at Databricks: {e}");
                return self
                    .give_up(
                        publisher,
                        msg,
                        body,
                        p,
                        run_id,
                        None,
                        Some(check_seq),
                        "run_not_found",
                        &reason,
                    )
                    .await;
            }
            Err(e) => return Err(e.into()),
        };
        let times = RunTimes {
            run_id,
            run_url: run.run_page_url.clone(),
            started_ms: run.start_time.filter(|t| *t > 0),
            ended_ms: run.ended_at(),
        };
        let outcome = classify(&run);
        if !matches!(outcome, RunOutcome::InProgress { .. }) {
            self.record_outcome(&run, &outcome, msg.attempt);
        }
        match outcome {
            RunOutcome::InProgress { state, known } => {
                if !known {
                    tracing::warn!(run_id, state = %state, "unknown run state; treating it as not terminal");
                }
                let age = Duration::from_millis(
                    (now_ms() - p.triggered_at_ms.unwrap_or_else(now_ms)).max(0) as u64,
                );
                let history = self.run_history(&msg.backfill_id).await;
                let wait = next_check_in(age, &self.config.poll, history);
                let due = now_ms() + wait.as_millis() as i64;
                // Hand the chain on first: a duplicate of this check fails here and dies.
                // If we die before publishing, the sweep re-issues the overdue check.
                let Some(next_seq) = self
                    .ledger
                    .advance_check(&key, msg.attempt, check_seq, due)
                    .await?
                else {
                    return Ok(Handled::Dropped("superseded check".into()));
                };
                let reason = format!("run {run_id} is {state}");
                self.schedule_check(publisher, msg, run_id, next_seq, wait, &reason)
                    .await?;
                Ok(Handled::StillRunning { state, known })
            }
            RunOutcome::Succeeded => {
                if self
                    .ledger
                    .record_success(&key, msg.attempt, check_seq, times, self.id())
                    .await?
                {
                    tracing::info!(backfill_id = %msg.backfill_id, partition = %msg.partition_date, attempt = %msg.attempt, run_id, "partition succeeded");
                    Ok(Handled::Succeeded { run_id })
                } else {
                    Ok(Handled::Dropped("partition moved on".into()))
                }
            }
            RunOutcome::Failed(failure) => {
                let jitter = rand::rng().random_range(-1.0..=1.0);
                match decide_failure(&failure, msg.attempt, &self.config.retry, jitter) {
                    FailureDecision::Retry { after } => {
                        let error = format!(
                            "{} ({}): {}",
                            failure.code,
                            failure.class.as_str(),
                            failure.message
                        );
                        let next = msg.attempt.next();
                        let mut retry = msg.follow_up(
                            next,
                            Step::Trigger,
                            format!("retry after {}", failure.code),
                        );
                        let retry_due = now_ms() + after.as_millis() as i64;
                        retry.not_before_ms = Some(retry_due);
                        // The live check's sequence: schedule_retry keeps it, and a trigger
                        // the sweep re-issues later supersedes this one.
                        retry.issue_seq = Some(check_seq);
                        // Publish first: a crash before the ledger records the retry makes
                        // the check come back and decide again; a duplicate trigger of the
                        // same attempt is harmless.
                        self.publish(
                            publisher,
                            &retry,
                            Destination::Delayed(Lane::Trigger, after),
                        )
                        .await?;
                        self.metrics
                            .worker
                            .delayed(Lane::Trigger.key(), "retry_backoff");
                        if self
                            .ledger
                            .schedule_retry(
                                &key,
                                msg.attempt,
                                check_seq,
                                times,
                                retry_due,
                                &error,
                                self.id(),
                            )
                            .await?
                        {
                            tracing::warn!(backfill_id = %msg.backfill_id, partition = %msg.partition_date, attempt = %msg.attempt, run_id, error = %error, retry_in_s = after.as_secs(), "run failed; new attempt scheduled");
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
                        self.give_up(
                            publisher,
                            msg,
                            body,
                            p,
                            run_id,
                            Some(&times),
                            Some(check_seq),
                            "run_failed",
                            &reason,
                        )
                        .await
                    }
                }
            }
        }
    }

    /// Dead-letters a partition: the message first (so nothing is lost if we die next),
    /// then the ledger. `run` is the run when it ended (its time goes into the spend);
    /// none when Databricks does not know it.
    #[allow(clippy::too_many_arguments)]
    async fn give_up(
        &self,
        publisher: &Publisher,
        msg: &PartitionMessage,
        body: &[u8],
        p: &Partition,
        run_id: i64,
        run: Option<&RunTimes>,
        check_seq: Option<i64>,
        kind: &'static str,
        reason: &str,
    ) -> Result<Handled, StepError> {
        self.send_dead_letter(
            publisher,
            body,
            DeadLetter {
                kind,
                error: reason,
                backfill_id: Some(msg.backfill_id.as_str()),
                partition_date: Some(msg.partition_date.to_string()),
                attempt: Some(msg.attempt.get()),
                run_id: Some(run_id),
                run_url: run.and_then(|r| r.run_url.as_deref()),
                source_lane: Lane::Check.key(),
                worker_id: self.id(),
            },
        )
        .await?;
        self.ledger
            .dead_letter(&p.key(), msg.attempt, check_seq, run, reason, self.id())
            .await?;
        tracing::warn!(backfill_id = %msg.backfill_id, partition = %msg.partition_date, attempt = %msg.attempt, run_id, reason, "partition dead-lettered");
        Ok(Handled::DeadLettered(reason.to_owned()))
    }

    /// Counts a terminal run by result, failure class and termination details, and
    /// observes its duration and queue time.
    fn record_outcome(
        &self,
        run: &backfill_databricks::models::Run,
        outcome: &RunOutcome,
        attempt: backfill_contract::Attempt,
    ) {
        let details = run
            .status
            .as_ref()
            .and_then(|s| s.termination_details.as_ref());
        let kind = details
            .and_then(|d| d.kind.as_ref())
            .map_or("NONE", |k| k.as_str());
        let code = details.and_then(|d| d.code.as_deref()).unwrap_or("NONE");
        let (result, class) = match outcome {
            RunOutcome::Failed(f) => {
                let retried = decide_failure(f, attempt, &self.config.retry, 0.0);
                let result = if matches!(retried, FailureDecision::Retry { .. }) {
                    "retried"
                } else {
                    "dead_lettered"
                };
                (result, f.class.as_str())
            }
            _ => ("succeeded", "none"),
        };
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

    /// Publishes to the dead-letter queue (confirmed) and counts it.
    pub(crate) async fn send_dead_letter(
        &self,
        publisher: &Publisher,
        body: &[u8],
        dead: DeadLetter<'_>,
    ) -> Result<(), StepError> {
        dead.publish(publisher, body).await?;
        self.metrics
            .worker
            .dead_lettered(dead.source_lane, dead.kind);
        Ok(())
    }

    async fn poison(
        &self,
        publisher: &Publisher,
        msg: &PartitionMessage,
        body: &[u8],
        lane: Lane,
        reason: &str,
    ) -> Result<Handled, StepError> {
        self.send_dead_letter(
            publisher,
            body,
            DeadLetter {
                kind: "invalid_message",
                error: reason,
                backfill_id: Some(msg.backfill_id.as_str()),
                partition_date: Some(msg.partition_date.to_string()),
                attempt: Some(msg.attempt.get()),
                source_lane: lane.key(),
                worker_id: self.id(),
                ..Default::default()
            },
        )
        .await?;
        Ok(Handled::Poisoned(reason.to_owned()))
    }

    pub(crate) async fn schedule_check(
        &self,
        publisher: &Publisher,
        msg: &PartitionMessage,
        run_id: i64,
        check_seq: i64,
        wait: Duration,
        reason: &str,
    ) -> Result<(), StepError> {
        let mut check = msg.follow_up(msg.attempt, Step::Check { run_id, check_seq }, reason);
        let destination = if wait.is_zero() {
            Destination::Lane(Lane::Check)
        } else {
            check.not_before_ms = Some(now_ms() + wait.as_millis() as i64);
            self.metrics.worker.delayed(Lane::Check.key(), "next_check");
            Destination::Delayed(Lane::Check, wait)
        };
        self.publish(publisher, &check, destination).await
    }

    /// Sends the same message round the delay tiers for `wait`, saying why.
    pub(crate) async fn delay(
        &self,
        publisher: &Publisher,
        msg: &PartitionMessage,
        lane: Lane,
        kind: &'static str,
        wait: Duration,
        reason: &str,
    ) -> Result<Handled, StepError> {
        let again = msg.follow_up(msg.attempt, msg.step.clone(), reason);
        self.delay_follow_up(publisher, msg, again, lane, kind, wait, true)
            .await?;
        Ok(Handled::Delayed(reason.to_owned()))
    }

    /// A message that came back before it is due goes round again as it was: an outage
    /// it carries goes on counting.
    async fn delay_not_due(
        &self,
        publisher: &Publisher,
        msg: &PartitionMessage,
        lane: Lane,
        wait: Duration,
        reason: &str,
    ) -> Result<Handled, StepError> {
        let mut again = msg.follow_up(msg.attempt, msg.step.clone(), reason);
        again.outage_since_ms = msg.outage_since_ms;
        // The ledger already has this due time: nothing to record (no write per lap).
        self.delay_follow_up(publisher, msg, again, lane, "not_due", wait, false)
            .await?;
        Ok(Handled::Delayed(reason.to_owned()))
    }

    /// Sends `again` (a follow-up of `msg`) round the delay tiers for `wait`, and with
    /// `record_due` tells the ledger when it is due.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn delay_follow_up(
        &self,
        publisher: &Publisher,
        msg: &PartitionMessage,
        mut again: PartitionMessage,
        lane: Lane,
        kind: &'static str,
        wait: Duration,
        record_due: bool,
    ) -> Result<(), StepError> {
        self.metrics.worker.delayed(lane.key(), kind);
        // Sent round without an outage of its own: whatever outage was on record is over.
        let handled = again.outage_since_ms.is_none();
        let due = now_ms() + wait.as_millis() as i64;
        again.not_before_ms = Some(due);
        self.publish(publisher, &again, Destination::Delayed(lane, wait))
            .await?;
        if !record_due {
            return Ok(());
        }
        // Tell the sweep when this message is due, so it does not re-issue one that is
        // only waiting (best effort: the message is out; a missed write costs at most one
        // superfluous re-issue).
        let key = PartitionKey::new(msg.backfill_id.clone(), msg.partition_date);
        let touched = match msg.step {
            Step::Trigger => {
                self.ledger
                    .touch_trigger(&key, msg.attempt, msg.issue_seq, due, handled)
                    .await
            }
            Step::Check { check_seq, .. } => {
                self.ledger
                    .touch_check(&key, msg.attempt, check_seq, due, handled)
                    .await
            }
        };
        if let Err(e) = touched {
            tracing::debug!(error = %e, "could not record when the delayed message is due");
        }
        Ok(())
    }

    pub(crate) async fn publish(
        &self,
        publisher: &Publisher,
        msg: &PartitionMessage,
        destination: Destination,
    ) -> Result<(), StepError> {
        let mut headers = Headers::new().with(SENT_MS_HEADER, now_ms());
        if let Some(reason) = &msg.reason {
            headers = headers.with("x-backfill-delay-reason", reason);
        }
        publisher
            .publish(
                destination,
                &msg.encode(),
                &msg.message_id.to_string(),
                &headers,
            )
            .await?;
        Ok(())
    }

    async fn backfill(&self, id: &BackfillId) -> Result<Arc<Backfill>, StepError> {
        if let Some(b) = self.lock_backfills().get(id) {
            return Ok(b.clone());
        }
        let Some(b) = self.ledger.backfill(id).await? else {
            return Err(StepError::Ledger(backfill_ledger::LedgerError::Corrupt(
                format!("partition of unknown backfill {id}"),
            )));
        };
        let b = Arc::new(b);
        self.lock_backfills().insert(id.clone(), b.clone());
        Ok(b)
    }

    /// The backfill's guards, re-read at most every second.
    async fn guards(&self, id: &BackfillId) -> Result<Guards, StepError> {
        const FRESH: Duration = Duration::from_secs(1);
        if let Some((at, g)) = self.lock_guards().get(id)
            && at.elapsed() < FRESH
        {
            return Ok(g.clone());
        }
        let guards = self
            .ledger
            .backfill(id)
            .await?
            .map(|b| b.guards)
            .unwrap_or_default();
        self.lock_guards()
            .insert(id.clone(), (std::time::Instant::now(), guards.clone()));
        Ok(guards)
    }

    fn lock_guards(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<BackfillId, (std::time::Instant, Guards)>> {
        self.guards.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The backfill's run lengths so far, re-read at most every 30 s (a failed read
    /// keeps the last known, or none: polling without history is only costlier).
    async fn run_history(&self, id: &BackfillId) -> RunHistory {
        const FRESH: Duration = Duration::from_secs(30);
        let cached = self.lock_histories().get(id).copied();
        if let Some((at, h)) = cached
            && at.elapsed() < FRESH
        {
            return h;
        }
        let fresh = match self.ledger.run_lengths(id).await {
            Ok((n, shortest, mean)) => RunHistory {
                finished: u32::try_from(n).unwrap_or(u32::MAX),
                shortest: Duration::from_millis(shortest.max(0) as u64),
                mean: Duration::from_millis(mean.max(0) as u64),
            },
            Err(e) => {
                tracing::debug!(error = %e, "run history unavailable; polling without it");
                cached.map(|(_, h)| h).unwrap_or_default()
            }
        };
        self.lock_histories()
            .insert(id.clone(), (std::time::Instant::now(), fresh));
        fresh
    }

    /// How many partitions of the backfill wait to start, re-counted at most every 2 s (a
    /// failed count keeps the last known, or none: the triggers then ask every
    /// `admission_delay`, as often as they ever did).
    async fn backlog(&self, id: &BackfillId) -> i64 {
        const FRESH: Duration = Duration::from_secs(2);
        let cached = self.lock_backlogs().get(id).copied();
        if let Some((at, n)) = cached
            && at.elapsed() < FRESH
        {
            return n;
        }
        let fresh = match self.ledger.state_counts(id).await {
            Ok(counts) => [PartitionState::Pending, PartitionState::Failed]
                .iter()
                .map(|s| counts.get(s).copied().unwrap_or(0))
                .sum(),
            Err(e) => {
                tracing::debug!(error = %e, "backlog unavailable; asking at the base delay");
                cached.map_or(0, |(_, n)| n)
            }
        };
        self.lock_backlogs()
            .insert(id.clone(), (std::time::Instant::now(), fresh));
        fresh
    }

    fn lock_backlogs(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<BackfillId, (std::time::Instant, i64)>> {
        self.backlogs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_histories(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<BackfillId, (std::time::Instant, RunHistory)>> {
        self.histories.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_backfills(&self) -> std::sync::MutexGuard<'_, HashMap<BackfillId, Arc<Backfill>>> {
        self.backfills.lock().unwrap_or_else(|p| p.into_inner())
    }
}
