//! The trigger path: what a trigger message does given its partition's row (drop,
//! poison, wait, restart the checks of a run that exists, re-attach to a claim), and the
//! claim itself behind the guards (freshness here, the budget and the cap inside the
//! claim).

use std::time::Duration;

use backfill_broker::Lane;
use backfill_contract::idempotency_token;
use backfill_ledger::{BackfillState, Claim, HoldReason, Partition, now_ms};
use rand::Rng;

use crate::follow_up::{AT_CAP, Due};
use crate::policy::{TriggerAction, admission_wait, decide_trigger, superseded_trigger};
use crate::received::Received;
use crate::{Handled, StepError, Worker};

/// The `reason` label of a trigger delayed because its backfill is not active.
fn not_active_label(state: BackfillState) -> &'static str {
    match state {
        BackfillState::Paused => HoldReason::Paused.as_str(),
        _ => "not_active",
    }
}

impl Worker {
    pub(crate) async fn on_trigger(
        &self,
        m: &Received,
        p: &Partition,
    ) -> Result<Handled, StepError> {
        let msg = &m.msg;
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
            TriggerAction::Poison(reason) => self.poison(m, &reason).await,
            TriggerAction::WaitForOwner(reason) => {
                let wait = self.config.admission_delay;
                self.delay(m, "claim_owner", wait, &reason).await
            }
            TriggerAction::WaitForLedger => {
                let reason = format!("waiting for the ledger to record attempt {}", msg.attempt);
                let wait = self.config.admission_delay;
                self.delay(m, "ledger_catching_up", wait, &reason).await
            }
            TriggerAction::RestartChecks { run_id } => {
                let restarted = self
                    .ledger
                    .restart_checks(&m.key, msg.attempt, run_id, now_ms(), self.id())
                    .await?;
                match restarted {
                    Some(seq) => {
                        self.schedule_check(m, run_id, seq, Duration::ZERO, "checks restarted")
                            .await?;
                        Ok(Handled::ChecksRestarted { run_id })
                    }
                    None => Ok(Handled::Dropped("partition moved on".into())),
                }
            }
            TriggerAction::Claim => self.claim(m, p).await,
            TriggerAction::ReAttach => {
                if p.owner.as_deref() != Some(self.id())
                    && !self
                        .ledger
                        .take_over_trigger(&m.key, msg.attempt, self.id())
                        .await?
                {
                    return Ok(Handled::Dropped(
                        "claim taken over by another worker".into(),
                    ));
                }
                let token = match p.idempotency_token.clone() {
                    Some(token) => token,
                    None => self.token(m).await?,
                };
                self.start_run(m, &token).await
            }
        }
    }

    /// Claims the attempt unless a guard holds it back, then starts its run; a trigger
    /// held, at the cap or of an inactive backfill goes round the delay tiers.
    async fn claim(&self, m: &Received, p: &Partition) -> Result<Handled, StepError> {
        let msg = &m.msg;
        let admission = self.config.admission_delay;
        // Guards change at any time: read them at most a second old, not from the cache
        // of immutable backfill fields (the budget is checked inside the claim itself).
        let guards = self.cached.guards(&self.ledger, &msg.backfill_id).await?;
        if let Some(hold) = self.production.hold(&self.client, &guards).await? {
            return self
                .wait_again(m, p, hold.reason.as_str(), admission, &hold.detail)
                .await;
        }
        let token = self.token(m).await?;
        let claim = self
            .ledger
            .claim_trigger(&m.key, msg.attempt, &token, self.id())
            .await?;
        match claim {
            Claim::Claimed => self.start_run(m, &token).await,
            Claim::AtCapacity { active, cap } => {
                let reason = format!("concurrency cap {cap} reached ({active} active)");
                let waiting = self.cached.backlog(&self.ledger, &msg.backfill_id).await;
                let sample = rand::rng().random_range(0.0..1.0);
                let wait = admission_wait(admission, waiting, cap, sample);
                self.cached.held_at_cap(&msg.backfill_id);
                self.wait_again(m, p, AT_CAP, wait, &reason).await
            }
            Claim::NotActive(BackfillState::Cancelled) => {
                let why = "backfill cancelled by an operator";
                self.ledger
                    .cancel_partition(&m.key, msg.attempt, self.id(), why)
                    .await?;
                Ok(Handled::Dropped(why.into()))
            }
            Claim::NotActive(state) => {
                let reason = format!("backfill {}", state.as_str());
                self.wait_again(m, p, not_active_label(state), admission, &reason)
                    .await
            }
            Claim::Lost => Ok(Handled::Dropped("claimed by another worker".into())),
            Claim::Held { reason, detail } => {
                tracing::info!(reason = detail, "new run held back");
                self.wait_again(m, p, reason.as_str(), admission, &detail)
                    .await
            }
        }
    }

    /// Sends a trigger that may not start now round the delay tiers for `wait`. It
    /// carries the row's sequence, so a fresh trigger issued meanwhile (woken for a freed
    /// slot, re-issued by the sweep) supersedes it instead of living beside it.
    async fn wait_again(
        &self,
        m: &Received,
        p: &Partition,
        kind: &'static str,
        wait: Duration,
        reason: &str,
    ) -> Result<Handled, StepError> {
        let msg = &m.msg;
        let mut again = msg.follow_up(msg.attempt, msg.step.clone(), reason);
        again.issue_seq = Some(p.check_seq);
        self.delay_follow_up(m, again, Lane::Trigger, kind, wait, Due::Record)
            .await?;
        Ok(Handled::Delayed(reason.to_owned()))
    }

    /// The attempt's idempotency token, derived from this fleet's ledger and the message.
    async fn token(&self, m: &Received) -> Result<String, StepError> {
        let msg = &m.msg;
        Ok(idempotency_token(
            &self.ledger_id().await?,
            &msg.backfill_id,
            msg.partition_date,
            msg.attempt,
        ))
    }
}
